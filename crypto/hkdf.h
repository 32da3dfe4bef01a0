// HKDF with SHA-256 (RFC 5869) over OpenSSL's EVP_KDF "HKDF". Thread-safe.
#pragma once

#include "common/bytes.h"
#include "common/result.h"

namespace coffer::crypto {

// RFC 5869 §2.3: the output of Expand is at most 255 hash lengths.
constexpr size_t kHkdfSha256MaxOutput = 255 * 32;

// HKDF-Extract: returns the 32-byte pseudorandom key HMAC-SHA-256(salt, ikm). An empty salt
// means 32 zero bytes (RFC 5869 §2.2).
Bytes hkdf_sha256_extract(ByteSpan salt, ByteSpan ikm);

// HKDF-Expand of `prk` (at least 32 bytes) to `length` bytes.
// Errors: kInvalidArgument if length > kHkdfSha256MaxOutput or prk is shorter than 32 bytes.
Result<Bytes> hkdf_sha256_expand(ByteSpan prk, ByteSpan info, size_t length);

// Extract then Expand. Errors: kInvalidArgument if length > kHkdfSha256MaxOutput.
Result<Bytes> hkdf_sha256(ByteSpan salt, ByteSpan ikm, ByteSpan info, size_t length);

}  // namespace coffer::crypto
