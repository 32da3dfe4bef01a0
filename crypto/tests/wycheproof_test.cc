// Every test of the in-scope Wycheproof files, with counts printed and asserted.
//
// Decisions (also in docs/crypto.md):
// - AES-GCM: IVs of 0 bytes are refused (Wycheproof marks them invalid). IVs longer than
//   128 bytes (the 2056-bit cases, marked valid) are refused by OpenSSL 3.0: they are
//   counted as excluded, and we assert that our API refuses them with kInvalidArgument.
// - X25519 "acceptable": a case whose expected shared secret is all zero (low-order point)
//   must be rejected by x25519_shared_secret; every other acceptable case (twist points,
//   non-canonical public keys, high bit set) must give the expected secret (RFC 7748 §5).
// - HMAC: tags truncated to tagSize bits compare the first tagSize/8 bytes.
#include <gtest/gtest.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "crypto/aead.h"
#include "crypto/ecdsa.h"
#include "crypto/hkdf.h"
#include "crypto/hmac.h"
#include "crypto/tests/test_data.h"
#include "crypto/x25519.h"

namespace coffer::crypto {
namespace {

using testing::hex;
using Json = nlohmann::json;

Json load_wycheproof(const std::string& file) {
    std::string text = testing::read_file(testing::data_path("wycheproof/" + file));
    return Json::parse(text, nullptr, /*allow_exceptions=*/false);
}

// Counts checked and excluded tests and reports them in the agreed form.
struct Tally {
    std::string file;
    size_t checked = 0;
    size_t excluded = 0;
    std::string exclusion_reason = "none";

    void report_and_assert(const Json& doc) {
        size_t declared = doc.at("numberOfTests").get<size_t>();
        std::cout << "wycheproof " << file << ": checked " << checked << " of numberOfTests "
                  << declared << " (excluded " << excluded << ": " << exclusion_reason << ")"
                  << std::endl;
        ::testing::Test::RecordProperty(file + "_checked", static_cast<int>(checked));
        EXPECT_EQ(checked, declared - excluded) << file;
    }
};

std::string test_label(const std::string& file, const Json& t) {
    return file + " tcId " + std::to_string(t.at("tcId").get<int>()) + " (" +
           t.at("comment").get<std::string>() + ")";
}

// One AEAD test: valid ones must seal to ct||tag and open back; invalid ones must not open.
template <typename SealFn, typename OpenFn>
void check_aead_case(const std::string& label, const Json& t, SealFn seal, OpenFn open) {
    Bytes key = hex(t.at("key")), iv = hex(t.at("iv")), aad = hex(t.at("aad"));
    Bytes msg = hex(t.at("msg"));
    Bytes ct_tag = hex(t.at("ct"));
    Bytes tag = hex(t.at("tag"));
    ct_tag.insert(ct_tag.end(), tag.begin(), tag.end());
    const std::string result = t.at("result");

    auto opened = open(key, iv, aad, ct_tag);
    if (result == "valid") {
        auto sealed = seal(key, iv, aad, msg);
        ASSERT_TRUE(sealed.ok()) << label << ": " << sealed.status().to_string();
        EXPECT_EQ(*sealed, ct_tag) << label;
        ASSERT_TRUE(opened.ok()) << label << ": " << opened.status().to_string();
        EXPECT_EQ(*opened, msg) << label;
    } else {
        ASSERT_EQ(result, "invalid") << label << ": no acceptable cases expected";
        EXPECT_FALSE(opened.ok()) << label;
    }
}

TEST(Wycheproof, AesGcmAllKeyAndIvSizes) {
    const std::string file = "aes_gcm_test.json";
    COFFER_REQUIRE_DATA("wycheproof/" + file);
    Json doc = load_wycheproof(file);
    ASSERT_FALSE(doc.is_discarded());
    Tally tally{file};
    tally.exclusion_reason =
        "IV longer than 128 bytes, unsupported by OpenSSL 3.0; asserted "
        "to be refused with kInvalidArgument";
    for (const auto& group : doc.at("testGroups")) {
        for (const auto& t : group.at("tests")) {
            const std::string label = test_label(file, t);
            Bytes key = hex(t.at("key")), iv = hex(t.at("iv"));
            if (iv.size() > kAesGcmMaxIvSize) {
                auto r = aes_gcm_seal(key, iv, {}, {});
                ASSERT_FALSE(r.ok()) << label;
                EXPECT_EQ(r.status().code(), Errc::kInvalidArgument) << label;
                ++tally.excluded;
                continue;
            }
            if (iv.empty()) {
                auto r = aes_gcm_seal(key, iv, {}, {});
                ASSERT_FALSE(r.ok()) << label;
                EXPECT_EQ(r.status().code(), Errc::kInvalidArgument) << label;
            }
            check_aead_case(label, t, aes_gcm_seal, aes_gcm_open);
            ++tally.checked;
        }
    }
    tally.report_and_assert(doc);
}

TEST(Wycheproof, ChaCha20Poly1305) {
    const std::string file = "chacha20_poly1305_test.json";
    COFFER_REQUIRE_DATA("wycheproof/" + file);
    Json doc = load_wycheproof(file);
    ASSERT_FALSE(doc.is_discarded());
    Tally tally{file};
    for (const auto& group : doc.at("testGroups")) {
        for (const auto& t : group.at("tests")) {
            check_aead_case(test_label(file, t), t, chacha20_poly1305_seal, chacha20_poly1305_open);
            ++tally.checked;
        }
    }
    tally.report_and_assert(doc);
}

void run_ecdsa_file(const std::string& file, bool p1363) {
    Json doc = load_wycheproof(file);
    ASSERT_FALSE(doc.is_discarded());
    Tally tally{file};
    for (const auto& group : doc.at("testGroups")) {
        ASSERT_EQ(group.at("sha").get<std::string>(), "SHA-384");
        auto key = EcdsaPublicKey::from_der(hex(group.at("publicKeyDer")));
        ASSERT_TRUE(key.ok()) << file << ": " << key.status().to_string();
        // The PEM form of the same key must parse to the same key.
        auto pem_key = EcdsaPublicKey::from_pem(group.at("publicKeyPem").get<std::string>());
        ASSERT_TRUE(pem_key.ok()) << pem_key.status().to_string();
        EXPECT_EQ(*pem_key, *key);
        for (const auto& t : group.at("tests")) {
            const std::string label = test_label(file, t);
            Bytes msg = hex(t.at("msg")), sig = hex(t.at("sig"));
            Status st = p1363 ? key->verify_p1363(msg, sig) : key->verify(msg, sig);
            const std::string result = t.at("result");
            ASSERT_NE(result, "acceptable") << label << ": no acceptable cases expected";
            if (result == "valid") {
                EXPECT_TRUE(st.ok()) << label << ": " << st.to_string();
            } else {
                EXPECT_FALSE(st.ok()) << label;
                EXPECT_EQ(st.code(), Errc::kCrypto) << label;
            }
            ++tally.checked;
        }
    }
    tally.report_and_assert(doc);
}

TEST(Wycheproof, EcdsaP384Sha384StrictDer) {
    COFFER_REQUIRE_DATA("wycheproof/ecdsa_secp384r1_sha384_test.json");
    run_ecdsa_file("ecdsa_secp384r1_sha384_test.json", false);
}

TEST(Wycheproof, EcdsaP384Sha384P1363) {
    COFFER_REQUIRE_DATA("wycheproof/ecdsa_secp384r1_sha384_p1363_test.json");
    run_ecdsa_file("ecdsa_secp384r1_sha384_p1363_test.json", true);
}

TEST(Wycheproof, X25519RejectsLowOrderAndMatchesEverythingElse) {
    const std::string file = "x25519_test.json";
    COFFER_REQUIRE_DATA("wycheproof/" + file);
    Json doc = load_wycheproof(file);
    ASSERT_FALSE(doc.is_discarded());
    Tally tally{file};
    size_t zero_rejected = 0;
    const Bytes zero(32, 0);
    for (const auto& group : doc.at("testGroups")) {
        ASSERT_EQ(group.at("curve").get<std::string>(), "curve25519");
        for (const auto& t : group.at("tests")) {
            const std::string label = test_label(file, t);
            Bytes sk = hex(t.at("private")), pk = hex(t.at("public"));
            Bytes expected = hex(t.at("shared"));
            const std::string result = t.at("result");
            ASSERT_NE(result, "invalid") << label << ": no invalid cases expected";
            auto shared = x25519_shared_secret(sk, pk);
            if (expected == zero) {
                ASSERT_EQ(result, "acceptable") << label;
                ASSERT_FALSE(shared.ok()) << label;
                EXPECT_EQ(shared.status().code(), Errc::kCrypto);
                EXPECT_NE(shared.status().message().find("low-order"), std::string::npos);
                ++zero_rejected;
            } else {
                ASSERT_TRUE(shared.ok()) << label << ": " << shared.status().to_string();
                EXPECT_EQ(*shared, expected) << label;
            }
            ++tally.checked;
        }
    }
    std::cout << "wycheproof " << file << ": " << zero_rejected
              << " zero-shared-secret cases rejected as low-order" << std::endl;
    EXPECT_GT(zero_rejected, 0u);
    tally.report_and_assert(doc);
}

TEST(Wycheproof, HkdfSha256) {
    const std::string file = "hkdf_sha256_test.json";
    COFFER_REQUIRE_DATA("wycheproof/" + file);
    Json doc = load_wycheproof(file);
    ASSERT_FALSE(doc.is_discarded());
    Tally tally{file};
    for (const auto& group : doc.at("testGroups")) {
        for (const auto& t : group.at("tests")) {
            const std::string label = test_label(file, t);
            auto okm = hkdf_sha256(hex(t.at("salt")), hex(t.at("ikm")), hex(t.at("info")),
                                   t.at("size").get<size_t>());
            if (t.at("result") == "valid") {
                ASSERT_TRUE(okm.ok()) << label << ": " << okm.status().to_string();
                EXPECT_EQ(*okm, hex(t.at("okm"))) << label;
            } else {
                ASSERT_EQ(t.at("result"), "invalid") << label;
                ASSERT_FALSE(okm.ok()) << label;
                EXPECT_EQ(okm.status().code(), Errc::kInvalidArgument) << label;
            }
            ++tally.checked;
        }
    }
    tally.report_and_assert(doc);
}

TEST(Wycheproof, HmacSha256IncludingTruncatedTags) {
    const std::string file = "hmac_sha256_test.json";
    COFFER_REQUIRE_DATA("wycheproof/" + file);
    Json doc = load_wycheproof(file);
    ASSERT_FALSE(doc.is_discarded());
    Tally tally{file};
    for (const auto& group : doc.at("testGroups")) {
        const size_t tag_bytes = group.at("tagSize").get<size_t>() / 8;
        for (const auto& t : group.at("tests")) {
            const std::string label = test_label(file, t);
            Bytes mac = hmac_sha256(hex(t.at("key")), hex(t.at("msg")));
            Bytes tag = hex(t.at("tag"));
            ASSERT_LE(tag_bytes, mac.size());
            bool match =
                tag.size() == tag_bytes && constant_time_equal(ByteSpan(mac).first(tag_bytes), tag);
            EXPECT_EQ(match, t.at("result") == "valid") << label;
            ++tally.checked;
        }
    }
    tally.report_and_assert(doc);
}

}  // namespace
}  // namespace coffer::crypto
