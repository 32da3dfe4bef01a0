// Byte strings and the small helpers every module needs for them.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace coffer {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;

inline ByteSpan as_bytes(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline Bytes to_bytes(std::string_view s) {
    return Bytes(s.begin(), s.end());
}
inline std::string to_string(ByteSpan b) {
    return std::string(b.begin(), b.end());
}

// Lower-case hex, two characters per byte.
std::string to_hex(ByteSpan bytes);

// Accepts upper- and lower-case hex of even length; anything else is kInvalidArgument.
Result<Bytes> from_hex(std::string_view hex);

// Compares in time that depends only on the lengths, for secrets and MACs.
bool constant_time_equal(ByteSpan a, ByteSpan b);

// Little-endian fixed-width integers, the byte order of every Coffer format.
inline void put_u16(Bytes& out, uint16_t v) {
    out.push_back(static_cast<uint8_t>(v));
    out.push_back(static_cast<uint8_t>(v >> 8));
}
inline void put_u32(Bytes& out, uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        out.push_back(static_cast<uint8_t>(v >> (8 * i)));
    }
}
inline void put_u64(Bytes& out, uint64_t v) {
    for (int i = 0; i < 8; ++i) {
        out.push_back(static_cast<uint8_t>(v >> (8 * i)));
    }
}
inline void put_bytes(Bytes& out, ByteSpan b) {
    out.insert(out.end(), b.begin(), b.end());
}

// Reads little-endian integers and length-prefixed fields from a buffer, never past its
// end. Every read returns false once the input is exhausted, and the reader stays failed, so
// a parser can read a whole record and check `ok()` once.
class ByteReader {
  public:
    explicit ByteReader(ByteSpan data) : data_(data) {}

    bool read_u8(uint8_t& v);
    bool read_u16(uint16_t& v);
    bool read_u32(uint32_t& v);
    bool read_u64(uint64_t& v);
    // Reads exactly n bytes as a view into the input (valid as long as the input is).
    bool read_span(size_t n, ByteSpan& v);
    bool read_bytes(size_t n, Bytes& v);

    bool ok() const { return ok_; }
    size_t offset() const { return offset_; }
    size_t remaining() const { return data_.size() - offset_; }
    bool at_end() const { return offset_ == data_.size(); }

  private:
    bool take(size_t n, const uint8_t*& p);

    ByteSpan data_;
    size_t offset_ = 0;
    bool ok_ = true;
};

}  // namespace coffer
