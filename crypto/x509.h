// X.509 certificates: the service identity, node certificates endorsed by it, member and
// user client certificates, and (for SEV-SNP) AMD's RSA-PSS signed chain.
//
// A Certificate wraps a reference-counted X509: copies are cheap and share it. It is
// immutable after construction, so const methods are thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/ecdsa.h"

struct x509_st;

namespace coffer::crypto {

// The most certificates read from one PEM bundle.
constexpr size_t kMaxCertificatesInBundle = 64;

class Certificate {
  public:
    Certificate() = default;
    ~Certificate();
    Certificate(const Certificate& other);
    Certificate& operator=(const Certificate& other);
    Certificate(Certificate&& other) noexcept;
    Certificate& operator=(Certificate&& other) noexcept;

    // Parses exactly one "CERTIFICATE" PEM block; only whitespace may surround it (a bundle
    // must go through chain_from_pem). Errors: kInvalidArgument naming the problem.
    static Result<Certificate> from_pem(std::string_view pem);
    // Parses one DER certificate; trailing bytes are refused. Errors: kInvalidArgument.
    static Result<Certificate> from_der(ByteSpan der);
    // All certificates of a PEM bundle, in order. Errors: kInvalidArgument if none parses or
    // a block is malformed; kResourceExhausted beyond kMaxCertificatesInBundle.
    static Result<std::vector<Certificate>> chain_from_pem(std::string_view pem);
    // Adopts one reference to an X509 (takes ownership).
    static Certificate adopt(x509_st* cert);

    std::string to_pem() const;
    Bytes der() const;
    // The subject's commonName, or "" if it has none.
    std::string subject_common_name() const;
    int64_t not_before_unix() const;
    int64_t not_after_unix() const;
    // SHA-256 of the DER encoding, lower-case hex.
    std::string fingerprint_sha256_hex() const;
    // The subject key. Errors: kInvalidArgument "not a P-384 key" for other key types.
    Result<EcdsaPublicKey> ecdsa_public_key() const;
    // True if basicConstraints says cA=TRUE.
    bool is_ca() const;
    // Checks this certificate's signature with `issuer` (no chain or time checks).
    // Errors: kCrypto.
    Status verify_signed_by(const EcdsaPublicKey& issuer) const;

    bool empty() const { return cert_ == nullptr; }
    // Borrowed pointer, valid while this Certificate (or a copy) lives.
    x509_st* native() const { return cert_; }

  private:
    explicit Certificate(x509_st* cert) : cert_(cert) {}
    x509_st* cert_ = nullptr;
};

struct CertificateOptions {
    std::string common_name;
    int64_t not_before_unix = 0;
    int64_t not_after_unix = 0;
    bool is_ca = false;
    std::vector<std::string> dns_names;
    std::vector<std::string> ip_addresses;  // IPv4 or IPv6 literals
};

// A self-signed certificate for `key`: random 16-byte serial, SHA-384 signature,
// basicConstraints (critical), keyUsage (critical; keyCertSign+cRLSign for a CA,
// digitalSignature otherwise), subject key identifier, authority key identifier, and a
// subjectAltName when names are given.
// Errors: kInvalidArgument for an empty common name, not_after < not_before or an
// unparsable IP address; kInternal if OpenSSL fails.
Result<Certificate> make_self_signed_certificate(const EcdsaPrivateKey& key,
                                                 const CertificateOptions& options);

// A certificate for `subject_key` issued by `issuer_cert`/`issuer_key`, same extensions.
// Errors as make_self_signed_certificate, plus kInvalidArgument if issuer_key does not match
// issuer_cert.
Result<Certificate> make_issued_certificate(const EcdsaPublicKey& subject_key,
                                            const CertificateOptions& options,
                                            const EcdsaPrivateKey& issuer_key,
                                            const Certificate& issuer_cert);

// Verifies leaf -> intermediates... -> trusted_root with OpenSSL's X509_verify_cert (any
// signature algorithm OpenSSL supports, RSA-PSS included). With at_unix_time set, validity
// periods are checked at that time; with nullopt they are ignored, because receipts must
// stay verifiable after the certificates expire.
// Errors: kCrypto "certificate chain: <subject CN> (depth d): <OpenSSL reason>".
Status verify_certificate_chain(const Certificate& leaf, std::span<const Certificate> intermediates,
                                const Certificate& trusted_root,
                                std::optional<int64_t> at_unix_time);

}  // namespace coffer::crypto
