// ECDSA on NIST P-384 with SHA-384, the signature scheme of every Coffer identity (service,
// nodes, members, users).
//
// Keys wrap a reference-counted EVP_PKEY: copies are cheap and share the key. Keys are
// immutable after construction, so const methods are thread-safe.
//
// Signature encodings: DER (X9.62 Ecdsa-Sig-Value, what X.509 and TLS use) and IEEE P1363
// (r || s, 48 bytes each, what COSE and JWS use). Verification of DER is strict: only the
// canonical DER encoding is accepted, so that one signature has exactly one encoding.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "common/bytes.h"
#include "common/result.h"

struct evp_pkey_st;

namespace coffer::crypto {

constexpr size_t kP384ScalarSize = 48;
constexpr size_t kP384P1363SignatureSize = 2 * kP384ScalarSize;
// The longest DER signature: SEQUENCE of two 49-byte INTEGERs (a leading zero each).
constexpr size_t kP384MaxDerSignatureSize = 104;

// A shared, immutable reference to an EVP_PKEY (internal helper, also used by x509).
class PkeyRef {
  public:
    PkeyRef() = default;
    // Takes ownership of one reference.
    explicit PkeyRef(evp_pkey_st* pkey) : pkey_(pkey) {}
    ~PkeyRef();
    PkeyRef(const PkeyRef& other);
    PkeyRef& operator=(const PkeyRef& other);
    PkeyRef(PkeyRef&& other) noexcept;
    PkeyRef& operator=(PkeyRef&& other) noexcept;

    evp_pkey_st* get() const { return pkey_; }

  private:
    evp_pkey_st* pkey_ = nullptr;
};

class EcdsaPublicKey {
  public:
    // Parses a "PUBLIC KEY" (SubjectPublicKeyInfo) PEM block.
    // Errors: kInvalidArgument if unparsable or "not a P-384 key".
    static Result<EcdsaPublicKey> from_pem(std::string_view pem);
    // Parses a DER SubjectPublicKeyInfo. Errors as from_pem.
    static Result<EcdsaPublicKey> from_der(ByteSpan der);
    // Adopts an EVP_PKEY reference after checking it is a P-384 key. Errors as from_pem.
    static Result<EcdsaPublicKey> from_native(PkeyRef pkey);

    std::string to_pem() const;
    // DER SubjectPublicKeyInfo.
    Bytes to_der() const;
    // Uncompressed point 0x04 || x || y (97 bytes).
    Bytes to_raw_point() const;

    // Verifies a strict-DER ECDSA signature over SHA-384(data).
    // Errors: kCrypto for a non-canonical encoding or a signature that does not verify.
    Status verify(ByteSpan data, ByteSpan der_signature) const;
    // Verifies an IEEE P1363 signature (r || s, exactly 96 bytes) over SHA-384(data).
    // Errors: kCrypto for a wrong size or a signature that does not verify.
    Status verify_p1363(ByteSpan data, ByteSpan raw_r_s) const;

    evp_pkey_st* native() const { return pkey_.get(); }

    friend bool operator==(const EcdsaPublicKey& a, const EcdsaPublicKey& b) {
        return a.to_der() == b.to_der();
    }

  private:
    explicit EcdsaPublicKey(PkeyRef pkey) : pkey_(std::move(pkey)) {}
    PkeyRef pkey_;
};

class EcdsaPrivateKey {
  public:
    // A fresh random P-384 key. Errors: kInternal if OpenSSL fails.
    static Result<EcdsaPrivateKey> generate();
    // Parses an unencrypted "PRIVATE KEY" (PKCS#8) or "EC PRIVATE KEY" (SEC1) PEM block.
    // Errors: kInvalidArgument if unparsable, encrypted, or "not a P-384 key".
    static Result<EcdsaPrivateKey> from_pem(std::string_view pem);

    // Unencrypted PKCS#8 PEM. The result holds the secret key: treat it as such.
    std::string to_pem() const;
    EcdsaPublicKey public_key() const;

    // DER signature over SHA-384(data) (randomised k from OpenSSL's DRBG).
    Result<Bytes> sign(ByteSpan data) const;
    // P1363 signature (r || s, 96 bytes) over SHA-384(data).
    Result<Bytes> sign_p1363(ByteSpan data) const;

    evp_pkey_st* native() const { return pkey_.get(); }

  private:
    explicit EcdsaPrivateKey(PkeyRef pkey) : pkey_(std::move(pkey)) {}
    PkeyRef pkey_;
};

// Converts between DER and P1363 encodings of a P-384 signature.
// Errors: kInvalidArgument for malformed or non-canonical input, or r/s out of size.
Result<Bytes> ecdsa_der_to_p1363(ByteSpan der);
Result<Bytes> ecdsa_p1363_to_der(ByteSpan raw);

// True if the DER signature parses and s <= n/2 (the "low-S" form). ECDSA signatures are
// malleable: (r, n - s) is valid whenever (r, s) is; governance refuses high-S forms so a
// ballot has one signature. Returns false for unparsable input.
bool ecdsa_signature_is_low_s(ByteSpan der);
// Returns the low-S form (r, min(s, n - s)) of a DER signature, re-encoded as DER.
// Errors: kInvalidArgument for unparsable input.
Result<Bytes> ecdsa_normalize_low_s(ByteSpan der);

}  // namespace coffer::crypto
