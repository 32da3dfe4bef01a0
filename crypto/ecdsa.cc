#include "crypto/ecdsa.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstring>
#include <memory>
#include <utility>

#include "common/check.h"
#include "crypto/openssl_util.h"

namespace coffer::crypto {

using detail::BioPtr;
using detail::MdCtxPtr;

PkeyRef::~PkeyRef() {
    EVP_PKEY_free(pkey_);
}

PkeyRef::PkeyRef(const PkeyRef& other) : pkey_(other.pkey_) {
    if (pkey_ != nullptr) {
        COFFER_CHECK(EVP_PKEY_up_ref(pkey_) == 1, "EVP_PKEY_up_ref failed");
    }
}

PkeyRef& PkeyRef::operator=(const PkeyRef& other) {
    if (this != &other) {
        PkeyRef copy(other);
        std::swap(pkey_, copy.pkey_);
    }
    return *this;
}

PkeyRef::PkeyRef(PkeyRef&& other) noexcept : pkey_(std::exchange(other.pkey_, nullptr)) {}

PkeyRef& PkeyRef::operator=(PkeyRef&& other) noexcept {
    if (this != &other) {
        EVP_PKEY_free(pkey_);
        pkey_ = std::exchange(other.pkey_, nullptr);
    }
    return *this;
}

namespace {

struct EcdsaSigDeleter {
    void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, EcdsaSigDeleter>;

struct BnDeleter {
    void operator()(BIGNUM* b) const { BN_free(b); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;

// The order n of the P-384 group (SEC 2 §2.5.1 / FIPS 186-4 D.1.2.4).
constexpr const char* kP384OrderHex =
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC"
    "52973";

Status not_p384() {
    return error(Errc::kInvalidArgument, "not a P-384 key");
}

// Accepts only EC keys on secp384r1 whose point passes OpenSSL's quick public-key check.
Status check_p384(EVP_PKEY* pkey) {
    if (pkey == nullptr || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC) {
        return not_p384();
    }
    char group[64] = {};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &len) != 1 ||
        std::strcmp(group, "secp384r1") != 0) {
        detail::clear_openssl_errors();
        return not_p384();
    }
    return {};
}

Status check_public_point(EVP_PKEY* pkey) {
    detail::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
    COFFER_CHECK(ctx != nullptr, "EVP_PKEY_CTX_new_from_pkey failed");
    if (EVP_PKEY_public_check_quick(ctx.get()) != 1) {
        return detail::openssl_error(Errc::kInvalidArgument, "invalid P-384 public key");
    }
    return {};
}

// Parses DER and requires that re-encoding reproduces the input exactly (strict DER:
// no BER lengths, no leading zeros, no trailing data).
EcdsaSigPtr parse_strict_der(ByteSpan der) {
    if (der.empty() || der.size() > kP384MaxDerSignatureSize) {
        return nullptr;
    }
    const uint8_t* p = der.data();
    EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
    if (sig == nullptr) {
        detail::clear_openssl_errors();
        return nullptr;
    }
    unsigned char* reencoded = nullptr;
    int len = i2d_ECDSA_SIG(sig.get(), &reencoded);
    bool same = len > 0 && static_cast<size_t>(len) == der.size() &&
                std::memcmp(reencoded, der.data(), der.size()) == 0;
    OPENSSL_free(reencoded);
    return same ? std::move(sig) : nullptr;
}

Bytes encode_der(const ECDSA_SIG* sig) {
    unsigned char* buf = nullptr;
    int len = i2d_ECDSA_SIG(sig, &buf);
    COFFER_CHECK(len > 0, "i2d_ECDSA_SIG failed");
    Bytes out(buf, buf + len);
    OPENSSL_free(buf);
    return out;
}

BnPtr p384_order() {
    BIGNUM* n = nullptr;
    COFFER_CHECK(BN_hex2bn(&n, kP384OrderHex) > 0, "BN_hex2bn failed");
    return BnPtr(n);
}

Status digest_verify(EVP_PKEY* pkey, ByteSpan data, ByteSpan der) {
    MdCtxPtr ctx(EVP_MD_CTX_new());
    COFFER_CHECK(ctx != nullptr, "EVP_MD_CTX_new failed");
    if (EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha384(), nullptr, pkey) != 1) {
        return detail::openssl_error(Errc::kInternal, "EVP_DigestVerifyInit");
    }
    int rc = EVP_DigestVerify(ctx.get(), der.data(), der.size(), data.data(), data.size());
    if (rc != 1) {
        detail::clear_openssl_errors();
        return error(Errc::kCrypto, "ECDSA signature does not verify");
    }
    return {};
}

// The password callback for PEM reads: refuses to decrypt, so an encrypted key fails
// instead of prompting on the terminal.
int no_password(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) {
    return -1;
}

}  // namespace

Result<EcdsaPublicKey> EcdsaPublicKey::from_native(PkeyRef pkey) {
    COFFER_RETURN_IF_ERROR(check_p384(pkey.get()));
    COFFER_RETURN_IF_ERROR(check_public_point(pkey.get()));
    return EcdsaPublicKey(std::move(pkey));
}

Result<EcdsaPublicKey> EcdsaPublicKey::from_pem(std::string_view pem) {
    detail::clear_openssl_errors();
    BioPtr bio = detail::memory_bio(pem);
    PkeyRef pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, no_password, nullptr));
    if (pkey.get() == nullptr) {
        return detail::openssl_error(Errc::kInvalidArgument, "unparsable public key PEM");
    }
    return from_native(std::move(pkey));
}

Result<EcdsaPublicKey> EcdsaPublicKey::from_der(ByteSpan der) {
    detail::clear_openssl_errors();
    const uint8_t* p = der.data();
    PkeyRef pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
    if (pkey.get() == nullptr) {
        return detail::openssl_error(Errc::kInvalidArgument, "unparsable public key DER");
    }
    if (p != der.data() + der.size()) {
        return error(Errc::kInvalidArgument, "trailing bytes after public key DER");
    }
    return from_native(std::move(pkey));
}

std::string EcdsaPublicKey::to_pem() const {
    BioPtr bio(BIO_new(BIO_s_mem()));
    COFFER_CHECK(bio != nullptr, "BIO_new failed");
    COFFER_CHECK(PEM_write_bio_PUBKEY(bio.get(), pkey_.get()) == 1, "PEM_write_bio_PUBKEY failed");
    return detail::bio_to_string(bio.get());
}

Bytes EcdsaPublicKey::to_der() const {
    unsigned char* buf = nullptr;
    int len = i2d_PUBKEY(pkey_.get(), &buf);
    COFFER_CHECK(len > 0, "i2d_PUBKEY failed");
    Bytes out(buf, buf + len);
    OPENSSL_free(buf);
    return out;
}

Bytes EcdsaPublicKey::to_raw_point() const {
    Bytes out(1 + 2 * kP384ScalarSize);
    size_t len = 0;
    int rc = EVP_PKEY_get_octet_string_param(pkey_.get(), OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                             out.data(), out.size(), &len);
    COFFER_CHECK(rc == 1 && len == out.size(), "cannot read the P-384 public point");
    return out;
}

Status EcdsaPublicKey::verify(ByteSpan data, ByteSpan der_signature) const {
    if (parse_strict_der(der_signature) == nullptr) {
        return error(Errc::kCrypto, "ECDSA signature is not canonical DER");
    }
    return digest_verify(pkey_.get(), data, der_signature);
}

Status EcdsaPublicKey::verify_p1363(ByteSpan data, ByteSpan raw_r_s) const {
    if (raw_r_s.size() != kP384P1363SignatureSize) {
        return error(Errc::kCrypto, "P1363 signature must be 96 bytes");
    }
    auto der = ecdsa_p1363_to_der(raw_r_s);
    if (!der.ok()) {
        return error(Errc::kCrypto, "ECDSA signature does not verify");
    }
    return digest_verify(pkey_.get(), data, *der);
}

Result<EcdsaPrivateKey> EcdsaPrivateKey::generate() {
    PkeyRef pkey(EVP_EC_gen("secp384r1"));
    if (pkey.get() == nullptr) {
        return detail::openssl_error(Errc::kInternal, "P-384 key generation");
    }
    return EcdsaPrivateKey(std::move(pkey));
}

Result<EcdsaPrivateKey> EcdsaPrivateKey::from_pem(std::string_view pem) {
    detail::clear_openssl_errors();
    BioPtr bio = detail::memory_bio(pem);
    PkeyRef pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr));
    if (pkey.get() == nullptr) {
        return detail::openssl_error(Errc::kInvalidArgument,
                                     "unparsable or encrypted private key PEM");
    }
    COFFER_RETURN_IF_ERROR(check_p384(pkey.get()));
    return EcdsaPrivateKey(std::move(pkey));
}

std::string EcdsaPrivateKey::to_pem() const {
    BioPtr bio(BIO_new(BIO_s_mem()));
    COFFER_CHECK(bio != nullptr, "BIO_new failed");
    int rc = PEM_write_bio_PKCS8PrivateKey(bio.get(), pkey_.get(), nullptr, nullptr, 0, nullptr,
                                           nullptr);
    COFFER_CHECK(rc == 1, "PEM_write_bio_PKCS8PrivateKey failed");
    return detail::bio_to_string(bio.get());
}

EcdsaPublicKey EcdsaPrivateKey::public_key() const {
    unsigned char* buf = nullptr;
    int len = i2d_PUBKEY(pkey_.get(), &buf);
    COFFER_CHECK(len > 0, "i2d_PUBKEY failed");
    auto pub = EcdsaPublicKey::from_der(ByteSpan(buf, static_cast<size_t>(len)));
    OPENSSL_free(buf);
    COFFER_CHECK(pub.ok(), "public half of our own P-384 key does not parse");
    return std::move(pub).value();
}

Result<Bytes> EcdsaPrivateKey::sign(ByteSpan data) const {
    MdCtxPtr ctx(EVP_MD_CTX_new());
    COFFER_CHECK(ctx != nullptr, "EVP_MD_CTX_new failed");
    if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha384(), nullptr, pkey_.get()) != 1) {
        return detail::openssl_error(Errc::kInternal, "EVP_DigestSignInit");
    }
    Bytes sig(kP384MaxDerSignatureSize);
    size_t len = sig.size();
    if (EVP_DigestSign(ctx.get(), sig.data(), &len, data.data(), data.size()) != 1) {
        return detail::openssl_error(Errc::kInternal, "EVP_DigestSign");
    }
    COFFER_CHECK(len <= sig.size(), "ECDSA signature longer than its maximum");
    sig.resize(len);
    return sig;
}

Result<Bytes> EcdsaPrivateKey::sign_p1363(ByteSpan data) const {
    COFFER_ASSIGN_OR_RETURN(Bytes der, sign(data));
    return ecdsa_der_to_p1363(der);
}

Result<Bytes> ecdsa_der_to_p1363(ByteSpan der) {
    EcdsaSigPtr sig = parse_strict_der(der);
    if (sig == nullptr) {
        return error(Errc::kInvalidArgument, "ECDSA signature is not canonical DER");
    }
    const BIGNUM* r = ECDSA_SIG_get0_r(sig.get());
    const BIGNUM* s = ECDSA_SIG_get0_s(sig.get());
    if (BN_is_negative(r) || BN_is_negative(s) || BN_num_bytes(r) > int{kP384ScalarSize} ||
        BN_num_bytes(s) > int{kP384ScalarSize}) {
        return error(Errc::kInvalidArgument, "ECDSA r or s out of range for P-384");
    }
    Bytes out(kP384P1363SignatureSize);
    COFFER_CHECK(BN_bn2binpad(r, out.data(), kP384ScalarSize) == kP384ScalarSize, "bn2binpad");
    COFFER_CHECK(BN_bn2binpad(s, out.data() + kP384ScalarSize, kP384ScalarSize) == kP384ScalarSize,
                 "bn2binpad");
    return out;
}

Result<Bytes> ecdsa_p1363_to_der(ByteSpan raw) {
    if (raw.size() != kP384P1363SignatureSize) {
        return error(Errc::kInvalidArgument, "P1363 signature must be 96 bytes");
    }
    BnPtr r(BN_bin2bn(raw.data(), kP384ScalarSize, nullptr));
    BnPtr s(BN_bin2bn(raw.data() + kP384ScalarSize, kP384ScalarSize, nullptr));
    COFFER_CHECK(r != nullptr && s != nullptr, "BN_bin2bn failed");
    EcdsaSigPtr sig(ECDSA_SIG_new());
    COFFER_CHECK(sig != nullptr, "ECDSA_SIG_new failed");
    COFFER_CHECK(ECDSA_SIG_set0(sig.get(), r.release(), s.release()) == 1, "ECDSA_SIG_set0");
    return encode_der(sig.get());
}

bool ecdsa_signature_is_low_s(ByteSpan der) {
    EcdsaSigPtr sig = parse_strict_der(der);
    if (sig == nullptr) {
        return false;
    }
    BnPtr half = p384_order();
    COFFER_CHECK(BN_rshift1(half.get(), half.get()) == 1, "BN_rshift1");
    const BIGNUM* s = ECDSA_SIG_get0_s(sig.get());
    return !BN_is_negative(s) && BN_cmp(s, half.get()) <= 0;
}

Result<Bytes> ecdsa_normalize_low_s(ByteSpan der) {
    EcdsaSigPtr sig = parse_strict_der(der);
    if (sig == nullptr) {
        return error(Errc::kInvalidArgument, "ECDSA signature is not canonical DER");
    }
    BnPtr n = p384_order();
    const BIGNUM* s = ECDSA_SIG_get0_s(sig.get());
    if (BN_is_negative(s) || BN_cmp(s, n.get()) >= 0) {
        return error(Errc::kInvalidArgument, "ECDSA s out of range for P-384");
    }
    if (ecdsa_signature_is_low_s(der)) {
        return Bytes(der.begin(), der.end());
    }
    BnPtr r(BN_dup(ECDSA_SIG_get0_r(sig.get())));
    BnPtr low_s(BN_new());
    COFFER_CHECK(r != nullptr && low_s != nullptr, "BN allocation failed");
    COFFER_CHECK(BN_sub(low_s.get(), n.get(), s) == 1, "BN_sub failed");
    EcdsaSigPtr out(ECDSA_SIG_new());
    COFFER_CHECK(out != nullptr, "ECDSA_SIG_new failed");
    COFFER_CHECK(ECDSA_SIG_set0(out.get(), r.release(), low_s.release()) == 1, "ECDSA_SIG_set0");
    return encode_der(out.get());
}

}  // namespace coffer::crypto
