// Shamir secret sharing: every (k, n) up to 10, error reporting, corruption, the share
// format, and a statistical check that the top coefficient is uniform (not forced non-zero).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <numeric>
#include <random>
#include <string>

#include "crypto/random.h"
#include "crypto/shamir.h"

namespace coffer::crypto {
namespace {

// Total random secrets split across all (k, n) pairs of the exhaustive test. The default
// keeps the test around a second; the field acceptance run sets
// COFFER_SHAMIR_TEST_SECRETS=100000.
constexpr size_t kDefaultTestSecrets = 9000;
// Bytes for the uniformity check: 6,250 secrets of 32 bytes.
constexpr size_t kUniformitySecrets = 6250;
constexpr size_t kSecretSize = 32;

size_t test_secret_count() {
    const char* v = std::getenv("COFFER_SHAMIR_TEST_SECRETS");
    if (v == nullptr) {
        return kDefaultTestSecrets;
    }
    return std::max<size_t>(1, std::strtoull(v, nullptr, 10));
}

std::mt19937_64 seeded_rng() {
    uint64_t seed = 0;
    random_fill(std::span<uint8_t>(reinterpret_cast<uint8_t*>(&seed), sizeof(seed)));
    std::cout << "shamir: subset seed " << seed << std::endl;
    return std::mt19937_64(seed);
}

TEST(Shamir, GfArithmeticIsAField) {
    EXPECT_EQ(gf256_mul(0x57, 0x83), 0xc1);  // FIPS 197 §4.2 example
    EXPECT_EQ(gf256_mul(0x57, 0x13), 0xfe);
    EXPECT_EQ(gf256_inv(0), 0);
    for (int a = 1; a < 256; ++a) {
        EXPECT_EQ(gf256_mul(static_cast<uint8_t>(a), gf256_inv(static_cast<uint8_t>(a))), 1) << a;
    }
}

TEST(Shamir, EveryKOfNUpToTenReconstructsFromRandomSubsets) {
    const size_t total = test_secret_count();
    const size_t pairs = 45;                              // 2 <= k <= n <= 10
    const size_t per_pair = (total + pairs - 1) / pairs;  // at least `total` overall
    auto rng = seeded_rng();
    size_t combined = 0;
    for (size_t n = 2; n <= 10; ++n) {
        for (size_t k = 2; k <= n; ++k) {
            for (size_t i = 0; i < per_pair; ++i) {
                Bytes secret = random_bytes(kSecretSize);
                auto shares = shamir_split(secret, k, n);
                ASSERT_TRUE(shares.ok()) << shares.status().to_string();
                ASSERT_EQ(shares->size(), n);
                for (size_t j = 0; j < n; ++j) {
                    ASSERT_EQ((*shares)[j].x, j + 1);  // distinct and never 0
                    ASSERT_EQ((*shares)[j].y.size(), kSecretSize);
                }
                std::shuffle(shares->begin(), shares->end(), rng);
                auto back = shamir_combine(std::span(*shares).first(k), k);
                ASSERT_TRUE(back.ok()) << back.status().to_string();
                ASSERT_EQ(*back, secret) << "k=" << k << " n=" << n;
                ++combined;
            }
        }
    }
    std::cout << "shamir: " << combined << " secrets split and recombined over 45 (k, n) pairs"
              << std::endl;
}

TEST(Shamir, CombineNamesEachProblem) {
    Bytes secret = random_bytes(kSecretSize);
    auto shares = *shamir_split(secret, 3, 5);

    auto few = shamir_combine(std::span(shares).first(2), 3);
    ASSERT_FALSE(few.ok());
    EXPECT_EQ(few.status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(few.status().message(), "need 3 shares, got 2");

    std::vector<ShamirShare> dup = {shares[0], shares[1], shares[1]};
    EXPECT_EQ(shamir_combine(dup, 3).status().message(), "duplicate share x=2");

    std::vector<ShamirShare> zero = {shares[0], shares[1], shares[2]};
    zero[2].x = 0;
    EXPECT_NE(shamir_combine(zero, 3).status().message().find("x=0"), std::string::npos);

    std::vector<ShamirShare> ragged = {shares[0], shares[1], shares[2]};
    ragged[1].y.pop_back();
    EXPECT_NE(shamir_combine(ragged, 3).status().message().find("lengths differ"),
              std::string::npos);
    EXPECT_EQ(shamir_combine(shares, 1).status().code(), Errc::kInvalidArgument);
}

TEST(Shamir, SplitRejectsBadParameters) {
    Bytes secret(32, 7);
    EXPECT_EQ(shamir_split(secret, 1, 3).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(shamir_split(secret, 4, 3).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(shamir_split(secret, 2, 256).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(shamir_split({}, 2, 3).status().code(), Errc::kInvalidArgument);
    auto max = shamir_split(secret, 2, 255);
    ASSERT_TRUE(max.ok());
    EXPECT_EQ(max->back().x, 255);
}

TEST(Shamir, CorruptedShareGivesDifferentSecretUndetected) {
    // Shamir has no integrity: the recovery layer detects this through its key unwrap.
    Bytes secret = random_bytes(kSecretSize);
    auto shares = *shamir_split(secret, 3, 5);
    shares[1].y[7] ^= 0x01;
    auto back = shamir_combine(std::span(shares).first(3), 3);
    ASSERT_TRUE(back.ok());
    EXPECT_NE(*back, secret);
    for (size_t i = 0; i < kSecretSize; ++i) {
        if (i != 7) {
            EXPECT_EQ((*back)[i], secret[i]);
        }
    }
}

TEST(Shamir, TopCoefficientIsUniformIncludingZero) {
    // For k = 3 the line through two shares meets the secret at x = 0 exactly when the top
    // coefficient is 0 (c2 * x1 * x2 = 0), so the hit rate estimates P(c2 = 0) = 1/256. A
    // split that forced c2 != 0 would show a rate of 0.
    size_t hits = 0, bytes = 0;
    for (size_t i = 0; i < kUniformitySecrets; ++i) {
        Bytes secret = random_bytes(kSecretSize);
        auto shares = *shamir_split(secret, 3, 3);
        auto line = shamir_combine(std::span(shares).first(2), 2);
        ASSERT_TRUE(line.ok());
        for (size_t b = 0; b < kSecretSize; ++b) {
            hits += (*line)[b] == secret[b] ? 1 : 0;
            ++bytes;
        }
    }
    double rate = static_cast<double>(hits) / static_cast<double>(bytes);
    std::cout << "shamir: uniformity hits " << hits << " of " << bytes
              << " bytes, rate x 256 = " << rate * 256 << std::endl;
    EXPECT_GE(bytes, 200000u);
    EXPECT_GE(rate, 0.85 / 256);
    EXPECT_LE(rate, 1.15 / 256);
}

TEST(Shamir, ShareFormatRoundTripsAndRejectsMalformed) {
    auto shares = *shamir_split(random_bytes(kSecretSize), 2, 3);
    Bytes wire = serialize_share(shares[2]);
    ASSERT_EQ(wire.size(), 4 + kSecretSize);
    EXPECT_EQ(wire[0], kShamirShareFormatVersion);
    EXPECT_EQ(wire[1], 3);
    EXPECT_EQ(wire[2], kSecretSize);
    EXPECT_EQ(wire[3], 0);
    auto back = parse_share(wire);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, shares[2]);

    Bytes v2 = wire;
    v2[0] = 2;
    EXPECT_EQ(parse_share(v2).status().code(), Errc::kUnsupported);
    Bytes x0 = wire;
    x0[1] = 0;
    EXPECT_EQ(parse_share(x0).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(parse_share(ByteSpan(wire).first(wire.size() - 1)).status().code(),
              Errc::kInvalidArgument);
    Bytes extra = wire;
    extra.push_back(0);
    EXPECT_EQ(parse_share(extra).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(parse_share(Bytes{1, 1, 0, 0}).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(parse_share({}).status().code(), Errc::kInvalidArgument);
}

}  // namespace
}  // namespace coffer::crypto
