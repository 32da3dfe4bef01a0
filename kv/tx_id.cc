#include "kv/tx_id.h"

#include <charconv>

namespace coffer::kv {

namespace {

// Parses a canonical unsigned decimal: digits only, no leading zero unless it is "0".
bool parse_decimal(std::string_view text, uint64_t& out) {
    if (text.empty() || (text.size() > 1 && text[0] == '0')) {
        return false;
    }
    for (char c : text) {
        if (c < '0' || c > '9') {
            return false;
        }
    }
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::string TxId::to_string() const {
    return std::to_string(view) + "." + std::to_string(seqno);
}

Result<TxId> TxId::parse(std::string_view text) {
    size_t dot = text.find('.');
    if (dot == std::string_view::npos) {
        return error(Errc::kInvalidArgument, "transaction id has no '.'");
    }
    TxId id;
    if (!parse_decimal(text.substr(0, dot), id.view) ||
        !parse_decimal(text.substr(dot + 1), id.seqno)) {
        return error(Errc::kInvalidArgument,
                     "transaction id is not of the form view.seqno (canonical decimals)");
    }
    return id;
}

}  // namespace coffer::kv
