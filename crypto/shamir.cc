#include "crypto/shamir.h"

#include <openssl/crypto.h>

#include <array>
#include <string>

#include "common/check.h"
#include "crypto/random.h"

namespace coffer::crypto {

namespace {

constexpr uint8_t kReductionLow = 0x1b;  // x^8 = x^4 + x^3 + x + 1 (mod 0x11B)
constexpr size_t kShareHeaderSize = 4;   // version, x, u16 length

Status check_split_args(ByteSpan secret, size_t k, size_t n) {
    if (k < kShamirMinThreshold) {
        return error(Errc::kInvalidArgument,
                     "Shamir threshold k must be at least 2, got " + std::to_string(k));
    }
    if (n < k) {
        return error(Errc::kInvalidArgument, "Shamir n (" + std::to_string(n) +
                                                 ") is smaller than k (" + std::to_string(k) + ")");
    }
    if (n > kShamirMaxShares) {
        return error(Errc::kInvalidArgument,
                     "Shamir n must be at most 255, got " + std::to_string(n));
    }
    if (secret.empty() || secret.size() > kShamirMaxSecretSize) {
        return error(Errc::kInvalidArgument, "Shamir secret must be 1..4096 bytes");
    }
    return {};
}

Status check_combine_args(std::span<const ShamirShare> shares, size_t k) {
    if (k < kShamirMinThreshold || k > kShamirMaxShares) {
        return error(Errc::kInvalidArgument,
                     "Shamir threshold k must be 2..255, got " + std::to_string(k));
    }
    if (shares.size() < k) {
        return error(Errc::kInvalidArgument,
                     "need " + std::to_string(k) + " shares, got " + std::to_string(shares.size()));
    }
    std::array<bool, 256> seen{};
    const size_t length = shares[0].y.size();
    for (const auto& share : shares) {
        if (share.x == 0) {
            return error(Errc::kInvalidArgument, "share has x=0 (not a valid share)");
        }
        if (seen[share.x]) {
            return error(Errc::kInvalidArgument, "duplicate share x=" + std::to_string(share.x));
        }
        seen[share.x] = true;
        if (share.y.size() != length) {
            return error(Errc::kInvalidArgument, "share y lengths differ (" +
                                                     std::to_string(length) + " and " +
                                                     std::to_string(share.y.size()) + ")");
        }
    }
    if (length == 0 || length > kShamirMaxSecretSize) {
        return error(Errc::kInvalidArgument, "share y must be 1..4096 bytes");
    }
    return {};
}

}  // namespace

uint8_t gf256_mul(uint8_t a, uint8_t b) {
    // Shift-and-add over all 8 bits of b with masks instead of branches, so the time does
    // not depend on the (secret) operands.
    uint8_t product = 0;
    for (int i = 0; i < 8; ++i) {
        product ^= static_cast<uint8_t>(-(b & 1)) & a;
        uint8_t carry = static_cast<uint8_t>(-(a >> 7));
        a = static_cast<uint8_t>((a << 1) ^ (kReductionLow & carry));
        b = static_cast<uint8_t>(b >> 1);
    }
    return product;
}

uint8_t gf256_inv(uint8_t a) {
    // a^254 = a^-1 in GF(2^8)* (Fermat), and 0 maps to 0. Fixed square-and-multiply chain.
    uint8_t a2 = gf256_mul(a, a);
    uint8_t a3 = gf256_mul(a2, a);
    uint8_t a6 = gf256_mul(a3, a3);
    uint8_t a12 = gf256_mul(a6, a6);
    uint8_t a15 = gf256_mul(a12, a3);
    uint8_t a30 = gf256_mul(a15, a15);
    uint8_t a60 = gf256_mul(a30, a30);
    uint8_t a63 = gf256_mul(a60, a3);
    uint8_t a126 = gf256_mul(a63, a63);
    uint8_t a127 = gf256_mul(a126, a);
    return gf256_mul(a127, a127);
}

Result<std::vector<ShamirShare>> shamir_split(ByteSpan secret, size_t k, size_t n) {
    COFFER_RETURN_IF_ERROR(check_split_args(secret, k, n));

    // coefficients[j * size + b] is the coefficient of x^(j+1) for byte b; all uniform over
    // the 256 field values, the top one included.
    const size_t size = secret.size();
    Bytes coefficients = random_bytes((k - 1) * size);

    std::vector<ShamirShare> shares(n);
    for (size_t i = 0; i < n; ++i) {
        const auto x = static_cast<uint8_t>(i + 1);
        shares[i].x = x;
        shares[i].y.resize(size);
        for (size_t b = 0; b < size; ++b) {
            // Horner: ((c_{k-1} x + c_{k-2}) x + ... + c_1) x + secret.
            uint8_t acc = 0;
            for (size_t j = k - 1; j >= 1; --j) {
                acc = gf256_mul(static_cast<uint8_t>(acc ^ coefficients[(j - 1) * size + b]), x);
            }
            shares[i].y[b] = static_cast<uint8_t>(acc ^ secret[b]);
        }
        COFFER_CHECK(shares[i].x != 0, "Shamir share with x=0 would be the secret");
    }
    OPENSSL_cleanse(coefficients.data(), coefficients.size());
    return shares;
}

Result<Bytes> shamir_combine(std::span<const ShamirShare> shares, size_t k) {
    COFFER_RETURN_IF_ERROR(check_combine_args(shares, k));
    std::span<const ShamirShare> used = shares.first(k);

    // Lagrange basis at 0: l_i(0) = prod_{j != i} x_j / (x_j - x_i); minus is XOR here.
    std::vector<uint8_t> basis(k);
    for (size_t i = 0; i < k; ++i) {
        uint8_t numerator = 1;
        uint8_t denominator = 1;
        for (size_t j = 0; j < k; ++j) {
            if (j != i) {
                numerator = gf256_mul(numerator, used[j].x);
                denominator = gf256_mul(denominator, static_cast<uint8_t>(used[j].x ^ used[i].x));
            }
        }
        COFFER_CHECK(denominator != 0, "distinct x values give a non-zero denominator");
        basis[i] = gf256_mul(numerator, gf256_inv(denominator));
    }

    Bytes secret(used[0].y.size(), 0);
    for (size_t i = 0; i < k; ++i) {
        for (size_t b = 0; b < secret.size(); ++b) {
            secret[b] ^= gf256_mul(used[i].y[b], basis[i]);
        }
    }
    return secret;
}

Bytes serialize_share(const ShamirShare& share) {
    COFFER_CHECK(share.x != 0, "serialising a Shamir share with x=0");
    COFFER_CHECK(!share.y.empty() && share.y.size() <= kShamirMaxSecretSize,
                 "serialising a Shamir share of invalid size");
    Bytes out;
    out.reserve(kShareHeaderSize + share.y.size());
    out.push_back(kShamirShareFormatVersion);
    out.push_back(share.x);
    put_u16(out, static_cast<uint16_t>(share.y.size()));
    put_bytes(out, share.y);
    return out;
}

Result<ShamirShare> parse_share(ByteSpan data) {
    ByteReader reader(data);
    uint8_t version = 0;
    ShamirShare share;
    uint16_t length = 0;
    if (!reader.read_u8(version)) {
        return error(Errc::kInvalidArgument, "Shamir share is empty");
    }
    if (version != kShamirShareFormatVersion) {
        return error(Errc::kUnsupported, "Shamir share format version " + std::to_string(version) +
                                             " is not supported (expected 1)");
    }
    if (!reader.read_u8(share.x) || !reader.read_u16(length) ||
        !reader.read_bytes(length, share.y)) {
        return error(Errc::kInvalidArgument, "Shamir share is truncated");
    }
    if (!reader.at_end()) {
        return error(Errc::kInvalidArgument, "Shamir share has trailing bytes");
    }
    if (share.x == 0) {
        return error(Errc::kInvalidArgument, "share has x=0 (not a valid share)");
    }
    if (length == 0 || length > kShamirMaxSecretSize) {
        return error(Errc::kInvalidArgument, "Shamir share y must be 1..4096 bytes");
    }
    return share;
}

}  // namespace coffer::crypto
