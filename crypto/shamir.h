// k-of-n Shamir secret sharing over GF(2^8), byte by byte, used to split the ledger-secret
// wrapping key among the consortium's members for disaster recovery.
//
// Field: GF(2^8) with the AES reduction polynomial x^8 + x^4 + x^3 + x + 1 (0x11B).
// Multiplication is table-free and constant-time (shift-and-add over all 8 bits with masks,
// no secret-dependent branches or memory indices): log/exp tables would index memory by
// secret bytes, which leaks through the cache. Inversion is a^254, also constant-time.
//
// Every polynomial coefficient, the top one included, is drawn uniformly from all 256 field
// values, independently per byte. The top coefficient is not forced non-zero: forcing it
// would make k-1 shares leak information about the secret.
//
// A share cannot be checked on its own: combining a corrupted share silently gives a wrong
// secret. The recovery layer detects that by unwrapping a key with the result (an AEAD tag
// check) and reports "shares do not reconstruct the key".
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"

namespace coffer::crypto {

constexpr size_t kShamirMaxShares = 255;
constexpr size_t kShamirMinThreshold = 2;
// Bound on the secret size (a wrapped key is 32 bytes; this leaves room).
constexpr size_t kShamirMaxSecretSize = 4096;
constexpr uint8_t kShamirShareFormatVersion = 1;

struct ShamirShare {
    uint8_t x = 0;  // evaluation point, 1..255, never 0
    Bytes y;        // one field element per secret byte

    friend bool operator==(const ShamirShare&, const ShamirShare&) = default;
};

// Splits `secret` into n shares with x = 1..n, any k of which reconstruct it.
// Needs 2 <= k <= n <= 255 and 1 <= secret size <= kShamirMaxSecretSize. (k = 1 is refused:
// every share would be the secret itself.) Errors: kInvalidArgument naming the problem.
Result<std::vector<ShamirShare>> shamir_split(ByteSpan secret, size_t k, size_t n);

// Reconstructs the secret from the first k of `shares` by Lagrange interpolation at 0.
// Errors (kInvalidArgument): "need k shares, got m"; "duplicate share x=.."; "share has
// x=0"; "share y lengths differ"; empty shares; k out of range.
// A corrupted share is not detected (see above).
Result<Bytes> shamir_combine(std::span<const ShamirShare> shares, size_t k);

// Serialised share, docs/formats/shamir-share.md: version (1) || x || u16 LE length || y.
Bytes serialize_share(const ShamirShare& share);
// Errors: kUnsupported for another version; kInvalidArgument for a malformed share.
Result<ShamirShare> parse_share(ByteSpan data);

// GF(2^8) arithmetic, exposed for tests.
uint8_t gf256_mul(uint8_t a, uint8_t b);
uint8_t gf256_inv(uint8_t a);  // gf256_inv(0) == 0

}  // namespace coffer::crypto
