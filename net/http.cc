#include "net/http.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace coffer::net {
namespace {

bool iequals(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) ==
               std::tolower(static_cast<unsigned char>(y));
    });
}

std::optional<std::string> find_header(const HeaderList& headers, std::string_view name) {
    for (const auto& [key, value] : headers) {
        if (iequals(key, name)) {
            return value;
        }
    }
    return std::nullopt;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

using Json = nlohmann::json;

// Builds the document from SAX events with an explicit stack of open containers, and stops
// the (already iterative) nlohmann parser as soon as a container would open too deep.
//
// Pointers on the stack stay valid: a container only gains children while it is the top of
// the stack, and adding a child never moves the container itself, only earlier siblings.
class DepthLimitedBuilder final : public nlohmann::json_sax<Json> {
  public:
    explicit DepthLimitedBuilder(size_t max_depth) : max_depth_(max_depth) {}

    bool null() override { return add(Json(nullptr)); }
    bool boolean(bool v) override { return add(Json(v)); }
    bool number_integer(number_integer_t v) override { return add(Json(v)); }
    bool number_unsigned(number_unsigned_t v) override { return add(Json(v)); }
    bool number_float(number_float_t v, const string_t&) override { return add(Json(v)); }
    bool string(string_t& v) override { return add(Json(std::move(v))); }
    bool binary(binary_t& v) override { return add(Json::binary(std::move(v))); }

    bool start_object(size_t) override { return open(Json::object()); }
    bool start_array(size_t) override { return open(Json::array()); }
    bool end_object() override { return close(); }
    bool end_array() override { return close(); }

    bool key(string_t& k) override {
        if (stack_.back()->contains(k)) {
            error_ = fmt::format("duplicate key \"{}\" in a JSON object", k);
            return false;
        }
        key_ = std::move(k);
        return true;
    }

    bool parse_error(size_t position, const std::string&,
                     const nlohmann::detail::exception& ex) override {
        std::string_view what = ex.what();
        const size_t prefix_end = what.find("] ");
        if (prefix_end != std::string_view::npos) {
            what.remove_prefix(prefix_end + 2);
        }
        // nlohmann quotes the text it last read, which can be most of the body (a 900 KB
        // number): an error message must not echo the request back at any length.
        if (what.size() > kMaxJsonErrorChars) {
            what = what.substr(0, kMaxJsonErrorChars);
            error_ = fmt::format("invalid JSON at byte {}: {}...", position, what);
        } else {
            error_ = fmt::format("invalid JSON at byte {}: {}", position, what);
        }
        return false;
    }

    const std::string& error_message() const { return error_; }
    Json take_root() { return std::move(root_); }

  private:
    bool open(Json container) {
        if (stack_.size() >= max_depth_) {
            error_ = fmt::format("JSON nesting depth exceeds the limit of {}", max_depth_);
            return false;
        }
        stack_.push_back(place(std::move(container)));
        return true;
    }

    bool close() {
        stack_.pop_back();
        return true;
    }

    bool add(Json value) {
        place(std::move(value));
        return true;
    }

    Json* place(Json value) {
        if (stack_.empty()) {
            root_ = std::move(value);
            return &root_;
        }
        Json& parent = *stack_.back();
        if (parent.is_array()) {
            parent.push_back(std::move(value));
            return &parent.back();
        }
        Json& slot = parent[key_];
        slot = std::move(value);
        return &slot;
    }

    size_t max_depth_;
    Json root_;
    std::vector<Json*> stack_;
    std::string key_;
    std::string error_;
};

}  // namespace

std::optional<std::string> HttpRequest::header(std::string_view name) const {
    return find_header(headers, name);
}

std::optional<std::string> HttpResponse::header(std::string_view name) const {
    return find_header(headers, name);
}

HttpResponse HttpResponse::json(int status, const nlohmann::json& body) {
    HttpResponse response;
    response.status = status;
    response.headers.emplace_back("content-type", "application/json");
    // Replacement instead of an exception for invalid UTF-8 in strings we did not validate.
    response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return response;
}

HttpResponse HttpResponse::error(int status, std::string_view code, std::string_view message) {
    nlohmann::json body;
    body["error"]["code"] = std::string(code);
    body["error"]["message"] = std::string(message);
    return json(status, body);
}

Result<std::string> percent_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out.push_back(text[i]);
            continue;
        }
        if (i + 2 >= text.size()) {
            return error(Errc::kInvalidArgument,
                         fmt::format("truncated percent-encoding at offset {}", i));
        }
        const int hi = hex_value(text[i + 1]);
        const int lo = hex_value(text[i + 2]);
        if (hi < 0 || lo < 0) {
            return error(Errc::kInvalidArgument,
                         fmt::format("bad percent-encoding at offset {}", i));
        }
        const char c = static_cast<char>(hi * 16 + lo);
        if (c == '\0') {
            return error(Errc::kInvalidArgument, "percent-encoded NUL byte");
        }
        out.push_back(c);
        i += 2;
    }
    return out;
}

Result<ParsedTarget> parse_target(std::string_view target) {
    if (target.empty() || target.front() != '/') {
        return error(Errc::kInvalidArgument, "request target must start with '/'");
    }
    if (target.find('#') != std::string_view::npos) {
        return error(Errc::kInvalidArgument, "request target must not contain a fragment");
    }

    ParsedTarget parsed;
    const size_t question = target.find('?');
    COFFER_ASSIGN_OR_RETURN(parsed.path, percent_decode(target.substr(0, question)));
    if (question == std::string_view::npos) {
        return parsed;
    }

    std::string_view rest = target.substr(question + 1);
    while (!rest.empty()) {
        const size_t amp = rest.find('&');
        const std::string_view param = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
        if (param.empty()) {
            continue;
        }
        if (parsed.query.size() >= kMaxQueryParameters) {
            return error(Errc::kInvalidArgument,
                         fmt::format("more than {} query parameters", kMaxQueryParameters));
        }
        const size_t eq = param.find('=');
        COFFER_ASSIGN_OR_RETURN(std::string key, percent_decode(param.substr(0, eq)));
        std::string value;
        if (eq != std::string_view::npos) {
            COFFER_ASSIGN_OR_RETURN(value, percent_decode(param.substr(eq + 1)));
        }
        if (key.empty()) {
            return error(Errc::kInvalidArgument, "empty query parameter name");
        }
        if (!parsed.query.emplace(key, std::move(value)).second) {
            return error(Errc::kInvalidArgument,
                         fmt::format("duplicate query parameter \"{}\"", key));
        }
    }
    return parsed;
}

Result<nlohmann::json> parse_json(std::string_view body, size_t max_depth) {
    DepthLimitedBuilder builder(max_depth);
    bool ok = false;
    try {
        ok = nlohmann::json::sax_parse(body, &builder, nlohmann::json::input_format_t::json,
                                       /*strict=*/true, /*ignore_comments=*/false);
    } catch (const std::exception& e) {
        return error(Errc::kInvalidArgument, fmt::format("invalid JSON: {}", e.what()));
    }
    if (!ok) {
        std::string message = builder.error_message();
        if (message.empty()) {
            message = "invalid JSON";
        }
        return error(Errc::kInvalidArgument, std::move(message));
    }
    return builder.take_root();
}

}  // namespace coffer::net
