#include "common/bytes.h"

#include <cstring>

namespace coffer {

std::string to_hex(ByteSpan bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (uint8_t b : bytes) {
        out.push_back(kDigits[b >> 4]);
        out.push_back(kDigits[b & 0x0f]);
    }
    return out;
}

namespace {
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
}  // namespace

Result<Bytes> from_hex(std::string_view hex) {
    if (hex.size() % 2 != 0) {
        return error(Errc::kInvalidArgument, "hex string has odd length");
    }
    Bytes out;
    out.reserve(hex.size() / 2);
    for (size_t i = 0; i < hex.size(); i += 2) {
        int hi = hex_value(hex[i]);
        int lo = hex_value(hex[i + 1]);
        if (hi < 0 || lo < 0) {
            return error(Errc::kInvalidArgument,
                         "invalid hex digit at offset " + std::to_string(hi < 0 ? i : i + 1));
        }
        out.push_back(static_cast<uint8_t>((hi << 4) | lo));
    }
    return out;
}

bool constant_time_equal(ByteSpan a, ByteSpan b) {
    if (a.size() != b.size()) {
        return false;
    }
    uint8_t diff = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        diff |= static_cast<uint8_t>(a[i] ^ b[i]);
    }
    return diff == 0;
}

bool ByteReader::take(size_t n, const uint8_t*& p) {
    if (!ok_ || n > remaining()) {
        ok_ = false;
        return false;
    }
    p = data_.data() + offset_;
    offset_ += n;
    return true;
}

bool ByteReader::read_u8(uint8_t& v) {
    const uint8_t* p = nullptr;
    if (!take(1, p)) {
        return false;
    }
    v = p[0];
    return true;
}

bool ByteReader::read_u16(uint16_t& v) {
    const uint8_t* p = nullptr;
    if (!take(2, p)) {
        return false;
    }
    v = static_cast<uint16_t>(p[0] | (p[1] << 8));
    return true;
}

bool ByteReader::read_u32(uint32_t& v) {
    const uint8_t* p = nullptr;
    if (!take(4, p)) {
        return false;
    }
    v = 0;
    for (int i = 3; i >= 0; --i) {
        v = (v << 8) | p[i];
    }
    return true;
}

bool ByteReader::read_u64(uint64_t& v) {
    const uint8_t* p = nullptr;
    if (!take(8, p)) {
        return false;
    }
    v = 0;
    for (int i = 7; i >= 0; --i) {
        v = (v << 8) | p[i];
    }
    return true;
}

bool ByteReader::read_span(size_t n, ByteSpan& v) {
    const uint8_t* p = nullptr;
    if (!take(n, p)) {
        return false;
    }
    v = ByteSpan(p, n);
    return true;
}

bool ByteReader::read_bytes(size_t n, Bytes& v) {
    ByteSpan s;
    if (!read_span(n, s)) {
        return false;
    }
    v.assign(s.begin(), s.end());
    return true;
}

}  // namespace coffer
