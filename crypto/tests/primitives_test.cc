// Round trips and negative tests for random, SHA-2, HMAC, HKDF, AEAD, base64 and X25519.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "crypto/aead.h"
#include "crypto/encoding.h"
#include "crypto/hkdf.h"
#include "crypto/hmac.h"
#include "crypto/random.h"
#include "crypto/sha256.h"
#include "crypto/tests/test_data.h"
#include "crypto/x25519.h"

namespace coffer::crypto {
namespace {

using testing::hex;

TEST(Random, ProducesRequestedLengthAndDistinctOutputs) {
    EXPECT_EQ(random_bytes(0).size(), 0u);
    std::set<Bytes> seen;
    for (int i = 0; i < 64; ++i) {
        Bytes b = random_bytes(16);
        ASSERT_EQ(b.size(), 16u);
        seen.insert(b);
    }
    EXPECT_EQ(seen.size(), 64u);
}

TEST(Sha256, MatchesFips180Vectors) {
    EXPECT_EQ(to_hex(sha256(as_bytes("abc"))),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(to_hex(sha256({})),
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(to_hex(sha384(as_bytes("abc"))),
              "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358b"
              "aeca134c825a7");
}

TEST(Sha256, HasherMatchesOneShotAndResetsAfterFinish) {
    Bytes data = random_bytes(1000);
    Sha256Hasher hasher;
    hasher.update(ByteSpan(data).first(1));
    hasher.update(ByteSpan(data).subspan(1, 500));
    hasher.update(ByteSpan(data).subspan(501));
    EXPECT_EQ(hasher.finish(), sha256(data));
    hasher.update(as_bytes("abc"));
    Sha256Hasher moved = std::move(hasher);
    EXPECT_EQ(moved.finish(), sha256(as_bytes("abc")));
}

TEST(Hmac, MatchesRfc4231Case2) {
    EXPECT_EQ(to_hex(hmac_sha256(as_bytes("Jefe"), as_bytes("what do ya want for nothing?"))),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Hkdf, MatchesRfc5869Case1AndSplitsIntoExtractExpand) {
    Bytes ikm(22, 0x0b);
    Bytes salt = hex("000102030405060708090a0b0c");
    Bytes info = hex("f0f1f2f3f4f5f6f7f8f9");
    Bytes prk = hkdf_sha256_extract(salt, ikm);
    EXPECT_EQ(to_hex(prk), "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
    auto okm = hkdf_sha256_expand(prk, info, 42);
    ASSERT_TRUE(okm.ok());
    EXPECT_EQ(to_hex(*okm),
              "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185"
              "865");
    auto full = hkdf_sha256(salt, ikm, info, 42);
    ASSERT_TRUE(full.ok());
    EXPECT_EQ(*full, *okm);
}

TEST(Hkdf, RejectsOutputLongerThan255HashLengths) {
    auto ok = hkdf_sha256({}, as_bytes("ikm"), {}, kHkdfSha256MaxOutput);
    ASSERT_TRUE(ok.ok());
    EXPECT_EQ(ok->size(), kHkdfSha256MaxOutput);
    auto too_long = hkdf_sha256({}, as_bytes("ikm"), {}, kHkdfSha256MaxOutput + 1);
    ASSERT_FALSE(too_long.ok());
    EXPECT_EQ(too_long.status().code(), Errc::kInvalidArgument);
    auto expand = hkdf_sha256_expand(Bytes(32, 1), {}, kHkdfSha256MaxOutput + 1);
    EXPECT_EQ(expand.status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(hkdf_sha256_expand(Bytes(31, 1), {}, 16).status().code(), Errc::kInvalidArgument);
}

TEST(AesGcm, RoundTripsAndRejectsTamperedTagCiphertextAndAad) {
    Bytes key = random_bytes(32), iv = random_bytes(12), aad = to_bytes("header");
    Bytes pt = to_bytes("the ledger secret wraps this");
    auto ct = aes_gcm_seal(key, iv, aad, pt);
    ASSERT_TRUE(ct.ok());
    ASSERT_EQ(ct->size(), pt.size() + kAesGcmTagSize);
    auto back = aes_gcm_open(key, iv, aad, *ct);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, pt);

    Bytes bad_tag = *ct;
    bad_tag.back() ^= 1;
    EXPECT_EQ(aes_gcm_open(key, iv, aad, bad_tag).status().code(), Errc::kCrypto);
    Bytes bad_ct = *ct;
    bad_ct[0] ^= 1;
    EXPECT_EQ(aes_gcm_open(key, iv, aad, bad_ct).status().code(), Errc::kCrypto);
    EXPECT_EQ(aes_gcm_open(key, iv, as_bytes("other"), *ct).status().code(), Errc::kCrypto);
    EXPECT_EQ(aes_gcm_open(key, iv, aad, ByteSpan(*ct).first(15)).status().code(),
              Errc::kInvalidArgument);
}

TEST(AesGcm, RejectsBadKeyAndIvSizes) {
    EXPECT_EQ(aes_gcm_seal(Bytes(20), Bytes(12), {}, {}).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(aes_gcm_seal(Bytes(16), Bytes(), {}, {}).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(aes_gcm_seal(Bytes(16), Bytes(129), {}, {}).status().code(), Errc::kInvalidArgument);
    EXPECT_TRUE(aes_gcm_seal(Bytes(24), Bytes(1), {}, {}).ok());
    EXPECT_TRUE(aes_gcm_seal(Bytes(16), Bytes(128), {}, {}).ok());
}

TEST(AesGcm, CachedKeyMatchesOneShotAcrossManyIvs) {
    Bytes key = random_bytes(32);
    auto cached = AesGcmKey::create(key);
    ASSERT_TRUE(cached.ok());
    for (int i = 0; i < 20; ++i) {
        Bytes iv = random_bytes(12), aad = random_bytes(static_cast<size_t>(i));
        Bytes pt = random_bytes(static_cast<size_t>(i * 37));
        auto ours = cached->seal(iv, aad, pt);
        auto ref = aes_gcm_seal(key, iv, aad, pt);
        ASSERT_TRUE(ours.ok() && ref.ok());
        EXPECT_EQ(*ours, *ref);
        auto back = cached->open(iv, aad, *ours);
        ASSERT_TRUE(back.ok());
        EXPECT_EQ(*back, pt);
        Bytes bad = *ours;
        bad.back() ^= 0x80;
        EXPECT_EQ(cached->open(iv, aad, bad).status().code(), Errc::kCrypto);
    }
    EXPECT_EQ(cached->seal(Bytes(16), {}, {}).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(AesGcmKey::create(Bytes(17)).status().code(), Errc::kInvalidArgument);
}

TEST(Aead, GenericDispatchRoundTripsEveryAlgorithm) {
    for (auto alg :
         {AeadAlgorithm::kAes128Gcm, AeadAlgorithm::kAes256Gcm, AeadAlgorithm::kChaCha20Poly1305}) {
        Bytes key = random_bytes(aead_key_size(alg)), nonce = random_bytes(aead_nonce_size(alg));
        auto ct = aead_seal(alg, key, nonce, as_bytes("aad"), as_bytes("message"));
        ASSERT_TRUE(ct.ok());
        auto pt = aead_open(alg, key, nonce, as_bytes("aad"), *ct);
        ASSERT_TRUE(pt.ok());
        EXPECT_EQ(to_string(*pt), "message");
        (*ct)[0] ^= 1;
        EXPECT_EQ(aead_open(alg, key, nonce, as_bytes("aad"), *ct).status().code(), Errc::kCrypto);
        EXPECT_EQ(aead_seal(alg, Bytes(8), nonce, {}, {}).status().code(), Errc::kInvalidArgument);
    }
    EXPECT_EQ(chacha20_poly1305_seal(Bytes(32), Bytes(8), {}, {}).status().code(),
              Errc::kInvalidArgument);
}

TEST(Base64, RoundTripsAllLengths) {
    for (size_t n = 0; n < 40; ++n) {
        Bytes data = random_bytes(n);
        std::string text = base64_encode(data);
        EXPECT_EQ(text.size() % 4, 0u);
        auto back = base64_decode(text);
        ASSERT_TRUE(back.ok()) << text;
        EXPECT_EQ(*back, data);
        std::string url = base64url_encode(data);
        EXPECT_EQ(url.find_first_of("+/="), std::string::npos);
        auto url_back = base64url_decode(url);
        ASSERT_TRUE(url_back.ok()) << url;
        EXPECT_EQ(*url_back, data);
    }
    EXPECT_EQ(base64_encode(as_bytes("foobar")), "Zm9vYmFy");
    EXPECT_EQ(to_string(*base64_decode("Zm9vYg==")), "foob");
}

TEST(Base64, StrictDecoderRejectsMalformedInput) {
    for (const char* bad : {"Zm9vYg=", "Zm9vYg", "Zm9v\nYg==", "Zm9vYh==", "Zm9vYmE!", "Zm=vYmFy",
                            "====", "Zm9vYmF=x", " Zm9v", "Zm9vYm=="}) {
        auto r = base64_decode(bad);
        EXPECT_FALSE(r.ok()) << bad;
        if (!r.ok()) {
            EXPECT_EQ(r.status().code(), Errc::kInvalidArgument) << bad;
        }
    }
    EXPECT_FALSE(base64url_decode("Zm9vYg==").ok());
    EXPECT_FALSE(base64url_decode("Zm9v+g").ok());
    EXPECT_FALSE(base64url_decode("Z").ok());
}

TEST(X25519, AgreesBothWaysAndRoundTripsPem) {
    X25519KeyPair a = x25519_generate(), b = x25519_generate();
    auto ab = x25519_shared_secret(a.private_key, b.public_key);
    auto ba = x25519_shared_secret(b.private_key, a.public_key);
    ASSERT_TRUE(ab.ok() && ba.ok());
    EXPECT_EQ(*ab, *ba);

    auto again = x25519_from_private(a.private_key);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->public_key, a.public_key);

    auto sk_pem = x25519_private_to_pem(a.private_key);
    auto pk_pem = x25519_public_to_pem(a.public_key);
    ASSERT_TRUE(sk_pem.ok() && pk_pem.ok());
    EXPECT_NE(sk_pem->find("BEGIN PRIVATE KEY"), std::string::npos);
    auto sk_back = x25519_private_from_pem(*sk_pem);
    auto pk_back = x25519_public_from_pem(*pk_pem);
    ASSERT_TRUE(sk_back.ok() && pk_back.ok());
    EXPECT_EQ(sk_back->private_key, a.private_key);
    EXPECT_EQ(sk_back->public_key, a.public_key);
    EXPECT_EQ(*pk_back, a.public_key);
}

TEST(X25519, RejectsWrongSizesAndForeignPem) {
    EXPECT_EQ(x25519_shared_secret(Bytes(31), Bytes(32)).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(x25519_shared_secret(Bytes(32), Bytes(33)).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(x25519_from_private(Bytes(16)).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(x25519_public_from_pem("not pem").status().code(), Errc::kInvalidArgument);
    // The all-zero public key is a low-order point.
    auto zero = x25519_shared_secret(x25519_generate().private_key, Bytes(32, 0));
    EXPECT_EQ(zero.status().code(), Errc::kCrypto);
}

}  // namespace
}  // namespace coffer::crypto
