// HMAC-SHA-256 (RFC 2104) over OpenSSL's EVP_MAC interface. Thread-safe.
#pragma once

#include "common/bytes.h"

namespace coffer::crypto {

constexpr size_t kHmacSha256Size = 32;

// Returns the full 32-byte HMAC-SHA-256 tag of `data` under `key` (any key length).
// Compare tags with constant_time_equal (common/bytes.h), never with ==.
Bytes hmac_sha256(ByteSpan key, ByteSpan data);

}  // namespace coffer::crypto
