#include "crypto/encoding.h"

#include <openssl/evp.h>

#include <algorithm>
#include <limits>

#include "common/check.h"

namespace coffer::crypto {

namespace {

// Value of a standard base64 character, or -1.
int base64_value(char c) {
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

// EVP_DecodeBlock tolerates whitespace, ignores non-canonical trailing bits and counts
// padding as output bytes, so the input is validated here first and the padding trimmed
// afterwards.
Status validate_base64(std::string_view text, size_t& padding) {
    if (text.size() % 4 != 0) {
        return error(Errc::kInvalidArgument, "base64 length is not a multiple of 4");
    }
    padding = 0;
    if (!text.empty() && text.back() == '=') {
        padding = text[text.size() - 2] == '=' ? 2 : 1;
    }
    for (size_t i = 0; i < text.size() - padding; ++i) {
        if (base64_value(text[i]) < 0) {
            return error(Errc::kInvalidArgument,
                         "invalid base64 character at offset " + std::to_string(i));
        }
    }
    if (padding == 0) {
        return {};
    }
    // Unused bits before the padding must be zero, so each byte string has one encoding.
    int last = base64_value(text[text.size() - padding - 1]);
    int unused_mask = padding == 1 ? 0x03 : 0x0f;
    if ((last & unused_mask) != 0) {
        return error(Errc::kInvalidArgument, "non-canonical base64 (unused bits set)");
    }
    return {};
}

}  // namespace

std::string base64_encode(ByteSpan data) {
    COFFER_CHECK(data.size() <= static_cast<size_t>(std::numeric_limits<int>::max() / 2),
                 "base64 input too large");
    std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
    int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data.data(),
                              static_cast<int>(data.size()));
    COFFER_CHECK(len >= 0 && static_cast<size_t>(len) + 1 == out.size(), "EVP_EncodeBlock");
    out.resize(static_cast<size_t>(len));
    return out;
}

Result<Bytes> base64_decode(std::string_view text) {
    if (text.size() > static_cast<size_t>(std::numeric_limits<int>::max() / 2)) {
        return error(Errc::kInvalidArgument, "base64 input too large");
    }
    size_t padding = 0;
    COFFER_RETURN_IF_ERROR(validate_base64(text, padding));
    if (text.empty()) {
        return Bytes{};
    }
    Bytes out(3 * (text.size() / 4));
    int len = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                              static_cast<int>(text.size()));
    if (len < 0 || static_cast<size_t>(len) != out.size()) {
        return error(Errc::kInvalidArgument, "invalid base64");
    }
    out.resize(out.size() - padding);
    return out;
}

std::string base64url_encode(ByteSpan data) {
    std::string out = base64_encode(data);
    while (!out.empty() && out.back() == '=') {
        out.pop_back();
    }
    std::replace(out.begin(), out.end(), '+', '-');
    std::replace(out.begin(), out.end(), '/', '_');
    return out;
}

Result<Bytes> base64url_decode(std::string_view text) {
    if (text.size() % 4 == 1) {
        return error(Errc::kInvalidArgument, "base64url length is impossible");
    }
    std::string standard;
    standard.reserve(text.size() + 3);
    for (char c : text) {
        if (c == '+' || c == '/' || c == '=') {
            return error(Errc::kInvalidArgument, "invalid base64url character");
        }
        standard.push_back(c == '-' ? '+' : (c == '_' ? '/' : c));
    }
    while (standard.size() % 4 != 0) {
        standard.push_back('=');
    }
    return base64_decode(standard);
}

}  // namespace coffer::crypto
