// Cryptographically secure randomness from OpenSSL's default DRBG (RAND_bytes).
//
// Thread-safe. A failure of the system randomness source aborts the process through
// COFFER_CHECK: a machine that cannot produce randomness cannot make keys or nonces, and
// continuing would risk nonce reuse.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/bytes.h"

namespace coffer::crypto {

// Returns n fresh random bytes.
Bytes random_bytes(size_t n);

// Fills `out` with fresh random bytes.
void random_fill(std::span<uint8_t> out);

}  // namespace coffer::crypto
