// ECDSA P-384 keys and signatures, and X.509 certificate creation and chain verification.
#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <ctime>
#include <string>

#include "crypto/ecdsa.h"
#include "crypto/openssl_util.h"
#include "crypto/tests/test_data.h"
#include "crypto/x509.h"

namespace coffer::crypto {
namespace {

constexpr int64_t kDay = 86400;

EcdsaPrivateKey new_key() {
    auto key = EcdsaPrivateKey::generate();
    COFFER_CHECK(key.ok(), "key generation failed in test");
    return std::move(key).value();
}

// PEM of a key on another curve, written with OpenSSL directly.
std::string p256_private_pem() {
    EVP_PKEY* pkey = EVP_EC_gen("prime256v1");
    COFFER_CHECK(pkey != nullptr, "P-256 keygen failed");
    detail::BioPtr bio(BIO_new(BIO_s_mem()));
    COFFER_CHECK(
        PEM_write_bio_PKCS8PrivateKey(bio.get(), pkey, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM write failed");
    std::string pem = detail::bio_to_string(bio.get());
    EVP_PKEY_free(pkey);
    return pem;
}

std::string p256_public_pem() {
    EVP_PKEY* pkey = EVP_EC_gen("prime256v1");
    detail::BioPtr bio(BIO_new(BIO_s_mem()));
    COFFER_CHECK(PEM_write_bio_PUBKEY(bio.get(), pkey) == 1, "PEM write failed");
    std::string pem = detail::bio_to_string(bio.get());
    EVP_PKEY_free(pkey);
    return pem;
}

TEST(Ecdsa, SignVerifyRoundTripInBothEncodings) {
    EcdsaPrivateKey key = new_key();
    EcdsaPublicKey pub = key.public_key();
    Bytes data = to_bytes("proposal: add member");
    auto der = key.sign(data);
    ASSERT_TRUE(der.ok());
    EXPECT_TRUE(pub.verify(data, *der).ok());
    auto raw = key.sign_p1363(data);
    ASSERT_TRUE(raw.ok());
    ASSERT_EQ(raw->size(), kP384P1363SignatureSize);
    EXPECT_TRUE(pub.verify_p1363(data, *raw).ok());

    auto as_raw = ecdsa_der_to_p1363(*der);
    ASSERT_TRUE(as_raw.ok());
    EXPECT_TRUE(pub.verify_p1363(data, *as_raw).ok());
    auto as_der = ecdsa_p1363_to_der(*as_raw);
    ASSERT_TRUE(as_der.ok());
    EXPECT_EQ(*as_der, *der);
}

TEST(Ecdsa, RejectsTamperedDataSignatureAndWrongKey) {
    EcdsaPrivateKey key = new_key();
    Bytes data = to_bytes("ballot");
    Bytes sig = *key.sign(data);
    EXPECT_EQ(key.public_key().verify(to_bytes("ballos"), sig).code(), Errc::kCrypto);
    Bytes bad = sig;
    bad[bad.size() - 1] ^= 1;
    EXPECT_EQ(key.public_key().verify(data, bad).code(), Errc::kCrypto);
    EXPECT_EQ(new_key().public_key().verify(data, sig).code(), Errc::kCrypto);
    EXPECT_EQ(key.public_key().verify(data, {}).code(), Errc::kCrypto);
    EXPECT_EQ(key.public_key().verify_p1363(data, Bytes(95)).code(), Errc::kCrypto);
    // BER long-form length for the SEQUENCE: same signature, non-canonical encoding.
    Bytes ber = {0x30, 0x81, sig[1]};
    ber.insert(ber.end(), sig.begin() + 2, sig.end());
    EXPECT_EQ(key.public_key().verify(data, ber).code(), Errc::kCrypto);
    // Our own parser (used without OpenSSL's verify) is strict too.
    EXPECT_EQ(ecdsa_der_to_p1363(ber).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(ecdsa_normalize_low_s(ber).status().code(), Errc::kInvalidArgument);
    Bytes trailing = sig;
    trailing.push_back(0);
    EXPECT_EQ(ecdsa_der_to_p1363(trailing).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(key.public_key().verify(data, trailing).code(), Errc::kCrypto);
}

TEST(Ecdsa, PemAndDerRoundTrip) {
    EcdsaPrivateKey key = new_key();
    std::string pem = key.to_pem();
    EXPECT_NE(pem.find("BEGIN PRIVATE KEY"), std::string::npos);
    auto back = EcdsaPrivateKey::from_pem(pem);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->public_key(), key.public_key());

    auto pub_pem = EcdsaPublicKey::from_pem(key.public_key().to_pem());
    ASSERT_TRUE(pub_pem.ok());
    EXPECT_EQ(*pub_pem, key.public_key());
    auto pub_der = EcdsaPublicKey::from_der(key.public_key().to_der());
    ASSERT_TRUE(pub_der.ok());
    EXPECT_EQ(pub_der->to_raw_point().size(), 97u);

    Bytes trailing = key.public_key().to_der();
    trailing.push_back(0);
    EXPECT_EQ(EcdsaPublicKey::from_der(trailing).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(EcdsaPrivateKey::from_pem("garbage").status().code(), Errc::kInvalidArgument);
}

TEST(Ecdsa, RejectsKeysOnOtherCurves) {
    auto priv = EcdsaPrivateKey::from_pem(p256_private_pem());
    ASSERT_FALSE(priv.ok());
    EXPECT_EQ(priv.status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(priv.status().message(), "not a P-384 key");
    auto pub = EcdsaPublicKey::from_pem(p256_public_pem());
    ASSERT_FALSE(pub.ok());
    EXPECT_EQ(pub.status().message(), "not a P-384 key");
}

TEST(Ecdsa, LowSHelpersDetectAndNormaliseMalleatedSignatures) {
    EcdsaPrivateKey key = new_key();
    Bytes data = to_bytes("vote yes");
    int high_seen = 0;
    for (int i = 0; i < 16; ++i) {
        Bytes sig = *key.sign(data);
        auto low = ecdsa_normalize_low_s(sig);
        ASSERT_TRUE(low.ok());
        EXPECT_TRUE(ecdsa_signature_is_low_s(*low));
        EXPECT_TRUE(key.public_key().verify(data, *low).ok());
        if (!ecdsa_signature_is_low_s(sig)) {
            ++high_seen;
            EXPECT_NE(*low, sig);
        } else {
            EXPECT_EQ(*low, sig);
        }
        // Normalising the low form and flipping it back: (r, n - s) also verifies.
        EXPECT_EQ(*ecdsa_normalize_low_s(*low), *low);
    }
    // Each signature is high-S with probability 1/2: 16 low-S in a row is a 2^-16 event.
    EXPECT_GT(high_seen, 0);
    EXPECT_FALSE(ecdsa_signature_is_low_s(to_bytes("junk")));
    EXPECT_EQ(ecdsa_normalize_low_s(to_bytes("junk")).status().code(), Errc::kInvalidArgument);
}

CertificateOptions options(const std::string& cn, bool ca, int64_t from, int64_t to) {
    CertificateOptions o;
    o.common_name = cn;
    o.is_ca = ca;
    o.not_before_unix = from;
    o.not_after_unix = to;
    return o;
}

TEST(X509, SelfSignedCertificateHasRequestedFields) {
    EcdsaPrivateKey key = new_key();
    const int64_t now = std::time(nullptr);
    CertificateOptions o = options("service identity", true, now - kDay, now + 365 * kDay);
    o.dns_names = {"node0.coffer.test"};
    o.ip_addresses = {"127.0.0.1", "::1"};
    auto cert = make_self_signed_certificate(key, o);
    ASSERT_TRUE(cert.ok()) << cert.status().to_string();
    EXPECT_EQ(cert->subject_common_name(), "service identity");
    EXPECT_EQ(cert->not_before_unix(), now - kDay);
    EXPECT_EQ(cert->not_after_unix(), now + 365 * kDay);
    EXPECT_TRUE(cert->is_ca());
    EXPECT_EQ(*cert->ecdsa_public_key(), key.public_key());
    EXPECT_TRUE(cert->verify_signed_by(key.public_key()).ok());
    EXPECT_EQ(cert->verify_signed_by(new_key().public_key()).code(), Errc::kCrypto);
    EXPECT_EQ(cert->fingerprint_sha256_hex().size(), 64u);

    auto from_pem = Certificate::from_pem(cert->to_pem());
    ASSERT_TRUE(from_pem.ok());
    EXPECT_EQ(from_pem->der(), cert->der());
    auto from_der = Certificate::from_der(cert->der());
    ASSERT_TRUE(from_der.ok());
    EXPECT_EQ(from_der->fingerprint_sha256_hex(), cert->fingerprint_sha256_hex());
    EXPECT_TRUE(verify_certificate_chain(*cert, {}, *cert, now).ok());

    o.ip_addresses = {"not-an-ip"};
    EXPECT_EQ(make_self_signed_certificate(key, o).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(make_self_signed_certificate(key, options("", false, 0, 1)).status().code(),
              Errc::kInvalidArgument);
    EXPECT_EQ(make_self_signed_certificate(key, options("x", false, 10, 1)).status().code(),
              Errc::kInvalidArgument);
}

struct Pki {
    EcdsaPrivateKey root_key = new_key();
    EcdsaPrivateKey mid_key = new_key();
    EcdsaPrivateKey leaf_key = new_key();
    Certificate root, mid, leaf;
};

Pki make_pki(int64_t from, int64_t to) {
    Pki p;
    p.root = *make_self_signed_certificate(p.root_key, options("root", true, from, to));
    p.mid = *make_issued_certificate(p.mid_key.public_key(),
                                     options("intermediate", true, from, to), p.root_key, p.root);
    p.leaf = *make_issued_certificate(p.leaf_key.public_key(), options("node 1", false, from, to),
                                      p.mid_key, p.mid);
    return p;
}

TEST(X509, IssuedChainVerifiesAndWrongRootFails) {
    const int64_t now = std::time(nullptr);
    Pki p = make_pki(now - kDay, now + kDay);
    EXPECT_FALSE(p.leaf.is_ca());
    EXPECT_TRUE(p.leaf.verify_signed_by(p.mid_key.public_key()).ok());
    std::vector<Certificate> mids = {p.mid};
    Status ok = verify_certificate_chain(p.leaf, mids, p.root, now);
    EXPECT_TRUE(ok.ok()) << ok.to_string();

    Pki other = make_pki(now - kDay, now + kDay);
    Status wrong = verify_certificate_chain(p.leaf, mids, other.root, now);
    ASSERT_FALSE(wrong.ok());
    EXPECT_EQ(wrong.code(), Errc::kCrypto);
    EXPECT_NE(wrong.message().find("intermediate"), std::string::npos) << wrong.message();

    Status missing = verify_certificate_chain(p.leaf, {}, p.root, now);
    EXPECT_FALSE(missing.ok());
    EXPECT_EQ(make_issued_certificate(p.leaf_key.public_key(), options("x", false, 0, 1),
                                      other.root_key, p.root)
                  .status()
                  .code(),
              Errc::kInvalidArgument);
}

TEST(X509, ExpiredChainVerifiesWhenTimeIgnoredAndFailsAfterNotAfter) {
    const int64_t now = std::time(nullptr);
    Pki p = make_pki(now - 10 * kDay, now - 5 * kDay);
    std::vector<Certificate> mids = {p.mid};
    EXPECT_TRUE(verify_certificate_chain(p.leaf, mids, p.root, std::nullopt).ok());
    EXPECT_TRUE(verify_certificate_chain(p.leaf, mids, p.root, now - 7 * kDay).ok());
    Status late = verify_certificate_chain(p.leaf, mids, p.root, now);
    ASSERT_FALSE(late.ok());
    EXPECT_NE(late.message().find("expired"), std::string::npos) << late.message();
    Status early = verify_certificate_chain(p.leaf, mids, p.root, now - 20 * kDay);
    EXPECT_FALSE(early.ok());
}

TEST(X509, ChainFromPemReadsBundleInOrder) {
    const int64_t now = std::time(nullptr);
    Pki p = make_pki(now, now + kDay);
    auto chain = Certificate::chain_from_pem(p.leaf.to_pem() + p.mid.to_pem() + p.root.to_pem());
    ASSERT_TRUE(chain.ok()) << chain.status().to_string();
    ASSERT_EQ(chain->size(), 3u);
    EXPECT_EQ((*chain)[0].subject_common_name(), "node 1");
    EXPECT_EQ((*chain)[2].subject_common_name(), "root");
    EXPECT_FALSE(Certificate::chain_from_pem("").ok());
    EXPECT_FALSE(Certificate::chain_from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END "
                                             "CERTIFICATE-----\n")
                     .ok());
    Bytes der = p.leaf.der();
    der.push_back(0);
    EXPECT_FALSE(Certificate::from_der(der).ok());
}

TEST(X509, AmdRsaPssChainVerifiesWithTimeIgnored) {
    COFFER_REQUIRE_DATA("snp/milan_endorsements.pem");
    std::string pem = testing::read_file(testing::data_path("snp/milan_endorsements.pem"));
    auto chain = Certificate::chain_from_pem(pem);
    ASSERT_TRUE(chain.ok()) << chain.status().to_string();
    ASSERT_EQ(chain->size(), 3u);  // VCEK, ASK, ARK
    EXPECT_EQ((*chain)[2].subject_common_name(), "ARK-Milan");
    std::vector<Certificate> ask = {(*chain)[1]};
    Status st = verify_certificate_chain((*chain)[0], ask, (*chain)[2], std::nullopt);
    EXPECT_TRUE(st.ok()) << st.to_string();
    // The VCEK is a P-384 key (it signs attestation reports); the ARK is RSA.
    EXPECT_TRUE((*chain)[0].ecdsa_public_key().ok());
    EXPECT_EQ((*chain)[2].ecdsa_public_key().status().message(), "not a P-384 key");
    // Against a foreign root the chain must fail.
    EcdsaPrivateKey key = new_key();
    auto foreign = make_self_signed_certificate(key, options("ARK-Milan", true, 0, 1));
    ASSERT_TRUE(foreign.ok());
    EXPECT_FALSE(verify_certificate_chain((*chain)[0], ask, *foreign, std::nullopt).ok());
}

}  // namespace
}  // namespace coffer::crypto

namespace coffer::crypto {
namespace {

TEST(Certificate, FromPemRefusesBundlesAndSurroundingText) {
    auto key = EcdsaPrivateKey::generate();
    ASSERT_TRUE(key.ok());
    CertificateOptions opts;
    opts.common_name = "strict pem";
    opts.not_before_unix = 0;
    opts.not_after_unix = 4102444800;
    auto cert = make_self_signed_certificate(*key, opts);
    ASSERT_TRUE(cert.ok());
    std::string pem = cert->to_pem();

    EXPECT_TRUE(Certificate::from_pem("\n  " + pem + "\n\n").ok());
    EXPECT_EQ(Certificate::from_pem(pem + pem).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(Certificate::from_pem("junk\n" + pem).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(Certificate::from_pem(pem + "junk").status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(Certificate::from_pem("").status().code(), Errc::kInvalidArgument);
    auto both = Certificate::chain_from_pem(pem + pem);
    ASSERT_TRUE(both.ok());
    EXPECT_EQ(both->size(), 2u);
}

}  // namespace
}  // namespace coffer::crypto
