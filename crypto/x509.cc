#include "crypto/x509.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>
#include <utility>

#include "common/check.h"
#include "crypto/openssl_util.h"
#include "crypto/random.h"
#include "crypto/sha256.h"

namespace coffer::crypto {

using detail::BioPtr;

namespace {

struct X509Deleter {
    void operator()(X509* c) const { X509_free(c); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

struct StoreDeleter {
    void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxDeleter {
    void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct StackDeleter {
    void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }
};
struct GeneralNamesDeleter {
    void operator()(GENERAL_NAMES* g) const { GENERAL_NAMES_free(g); }
};

constexpr size_t kSerialSize = 16;

int no_password(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) {
    return -1;
}

int64_t asn1_time_to_unix(const ASN1_TIME* t) {
    std::tm tm{};
    COFFER_CHECK(t != nullptr && ASN1_TIME_to_tm(t, &tm) == 1, "certificate time unreadable");
    return static_cast<int64_t>(timegm(&tm));
}

std::string common_name_of(const X509* cert) {
    const X509_NAME* name = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (idx < 0) {
        return "";
    }
    const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, data);
    if (len < 0) {
        detail::clear_openssl_errors();
        return "";
    }
    std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
    OPENSSL_free(utf8);
    return out;
}

}  // namespace

Certificate::~Certificate() {
    X509_free(cert_);
}

Certificate::Certificate(const Certificate& other) : cert_(other.cert_) {
    if (cert_ != nullptr) {
        COFFER_CHECK(X509_up_ref(cert_) == 1, "X509_up_ref failed");
    }
}

Certificate& Certificate::operator=(const Certificate& other) {
    if (this != &other) {
        Certificate copy(other);
        std::swap(cert_, copy.cert_);
    }
    return *this;
}

Certificate::Certificate(Certificate&& other) noexcept
    : cert_(std::exchange(other.cert_, nullptr)) {}

Certificate& Certificate::operator=(Certificate&& other) noexcept {
    if (this != &other) {
        X509_free(cert_);
        cert_ = std::exchange(other.cert_, nullptr);
    }
    return *this;
}

Certificate Certificate::adopt(x509_st* cert) {
    return Certificate(cert);
}

Result<Certificate> Certificate::from_pem(std::string_view pem) {
    // Exactly one certificate block with nothing but whitespace around it: a bundle or
    // trailing text here would otherwise silently pin only its first certificate.
    static constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
    static constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
    static constexpr std::string_view kSpace = " \t\r\n";
    size_t first = pem.find_first_not_of(kSpace);
    size_t last = pem.find_last_not_of(kSpace);
    std::string_view body =
        first == std::string_view::npos ? std::string_view() : pem.substr(first, last - first + 1);
    if (!body.starts_with(kBegin) || !body.ends_with(kEnd)) {
        return error(Errc::kInvalidArgument,
                     "certificate PEM must hold exactly one CERTIFICATE block and nothing else");
    }
    if (body.find("-----BEGIN", kBegin.size()) != std::string_view::npos) {
        return error(Errc::kInvalidArgument,
                     "certificate PEM holds more than one block (expected exactly one)");
    }
    detail::clear_openssl_errors();
    BioPtr bio = detail::memory_bio(body);
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr);
    if (cert == nullptr) {
        return detail::openssl_error(Errc::kInvalidArgument, "unparsable certificate PEM");
    }
    return Certificate(cert);
}

Result<Certificate> Certificate::from_der(ByteSpan der) {
    detail::clear_openssl_errors();
    const uint8_t* p = der.data();
    X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
    if (cert == nullptr) {
        return detail::openssl_error(Errc::kInvalidArgument, "unparsable certificate DER");
    }
    if (p != der.data() + der.size()) {
        return error(Errc::kInvalidArgument, "trailing bytes after certificate DER");
    }
    return Certificate(cert.release());
}

Result<std::vector<Certificate>> Certificate::chain_from_pem(std::string_view pem) {
    detail::clear_openssl_errors();
    BioPtr bio = detail::memory_bio(pem);
    std::vector<Certificate> out;
    while (true) {
        X509* cert = PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr);
        if (cert == nullptr) {
            // PEM_R_NO_START_LINE at the end of input means "no more blocks".
            unsigned long err = ERR_peek_last_error();
            if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE &&
                !out.empty()) {
                detail::clear_openssl_errors();
                break;
            }
            return detail::openssl_error(
                Errc::kInvalidArgument,
                "unparsable certificate in PEM bundle at index " + std::to_string(out.size()));
        }
        out.push_back(Certificate(cert));
        if (out.size() > kMaxCertificatesInBundle) {
            return error(Errc::kResourceExhausted, "PEM bundle has more than 64 certificates");
        }
    }
    return out;
}

std::string Certificate::to_pem() const {
    COFFER_CHECK(cert_ != nullptr, "empty Certificate");
    BioPtr bio(BIO_new(BIO_s_mem()));
    COFFER_CHECK(bio != nullptr, "BIO_new failed");
    COFFER_CHECK(PEM_write_bio_X509(bio.get(), cert_) == 1, "PEM_write_bio_X509 failed");
    return detail::bio_to_string(bio.get());
}

Bytes Certificate::der() const {
    COFFER_CHECK(cert_ != nullptr, "empty Certificate");
    unsigned char* buf = nullptr;
    int len = i2d_X509(cert_, &buf);
    COFFER_CHECK(len > 0, "i2d_X509 failed");
    Bytes out(buf, buf + len);
    OPENSSL_free(buf);
    return out;
}

std::string Certificate::subject_common_name() const {
    COFFER_CHECK(cert_ != nullptr, "empty Certificate");
    return common_name_of(cert_);
}

int64_t Certificate::not_before_unix() const {
    COFFER_CHECK(cert_ != nullptr, "empty Certificate");
    return asn1_time_to_unix(X509_get0_notBefore(cert_));
}

int64_t Certificate::not_after_unix() const {
    COFFER_CHECK(cert_ != nullptr, "empty Certificate");
    return asn1_time_to_unix(X509_get0_notAfter(cert_));
}

std::string Certificate::fingerprint_sha256_hex() const {
    return to_hex(sha256(der()));
}

Result<EcdsaPublicKey> Certificate::ecdsa_public_key() const {
    COFFER_CHECK(cert_ != nullptr, "empty Certificate");
    PkeyRef pkey(X509_get_pubkey(cert_));
    if (pkey.get() == nullptr) {
        return detail::openssl_error(Errc::kInvalidArgument, "certificate key unreadable");
    }
    return EcdsaPublicKey::from_native(std::move(pkey));
}

bool Certificate::is_ca() const {
    COFFER_CHECK(cert_ != nullptr, "empty Certificate");
    return (X509_get_extension_flags(cert_) & EXFLAG_CA) != 0;
}

Status Certificate::verify_signed_by(const EcdsaPublicKey& issuer) const {
    COFFER_CHECK(cert_ != nullptr, "empty Certificate");
    if (X509_verify(cert_, issuer.native()) != 1) {
        detail::clear_openssl_errors();
        return error(Errc::kCrypto, "certificate signature does not verify with the given key");
    }
    return {};
}

namespace {

Status add_conf_extension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value);
    if (ext == nullptr) {
        return detail::openssl_error(Errc::kInternal, "building certificate extension");
    }
    int rc = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    if (rc != 1) {
        return detail::openssl_error(Errc::kInternal, "adding certificate extension");
    }
    return {};
}

Result<GENERAL_NAME*> make_general_name(const std::string& value, bool is_ip) {
    if (is_ip) {
        ASN1_OCTET_STRING* ip = a2i_IPADDRESS(value.c_str());
        if (ip == nullptr) {
            detail::clear_openssl_errors();
            return error(Errc::kInvalidArgument, "not an IP address: " + value);
        }
        GENERAL_NAME* name = GENERAL_NAME_new();
        COFFER_CHECK(name != nullptr, "GENERAL_NAME_new failed");
        GENERAL_NAME_set0_value(name, GEN_IPADD, ip);
        return name;
    }
    if (value.empty()) {
        return error(Errc::kInvalidArgument, "empty DNS name");
    }
    ASN1_IA5STRING* dns = ASN1_IA5STRING_new();
    COFFER_CHECK(dns != nullptr, "ASN1_IA5STRING_new failed");
    COFFER_CHECK(ASN1_STRING_set(dns, value.data(), static_cast<int>(value.size())) == 1,
                 "ASN1_STRING_set failed");
    GENERAL_NAME* name = GENERAL_NAME_new();
    COFFER_CHECK(name != nullptr, "GENERAL_NAME_new failed");
    GENERAL_NAME_set0_value(name, GEN_DNS, dns);
    return name;
}

Status add_subject_alt_names(X509* cert, const CertificateOptions& options) {
    if (options.dns_names.empty() && options.ip_addresses.empty()) {
        return {};
    }
    std::unique_ptr<GENERAL_NAMES, GeneralNamesDeleter> names(sk_GENERAL_NAME_new_null());
    COFFER_CHECK(names != nullptr, "sk_GENERAL_NAME_new_null failed");
    for (const auto& dns : options.dns_names) {
        COFFER_ASSIGN_OR_RETURN(GENERAL_NAME * name, make_general_name(dns, false));
        COFFER_CHECK(sk_GENERAL_NAME_push(names.get(), name) > 0, "sk push failed");
    }
    for (const auto& ip : options.ip_addresses) {
        COFFER_ASSIGN_OR_RETURN(GENERAL_NAME * name, make_general_name(ip, true));
        COFFER_CHECK(sk_GENERAL_NAME_push(names.get(), name) > 0, "sk push failed");
    }
    if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
        return detail::openssl_error(Errc::kInternal, "adding subjectAltName");
    }
    return {};
}

Status set_serial_and_times(X509* cert, const CertificateOptions& options) {
    // Random 128-bit serial (RFC 5280 §4.1.2.2 allows up to 20 octets); the top bit is
    // cleared so the INTEGER is positive, and a zero serial is made 1.
    Bytes serial = random_bytes(kSerialSize);
    serial[0] &= 0x7f;
    serial[0] |= (serial[0] == 0) ? 0x01 : 0x00;
    std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(
        BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr), BN_free);
    COFFER_CHECK(bn != nullptr, "BN_bin2bn failed");
    ASN1_INTEGER* asn1 = BN_to_ASN1_INTEGER(bn.get(), nullptr);
    COFFER_CHECK(asn1 != nullptr, "BN_to_ASN1_INTEGER failed");
    int rc = X509_set_serialNumber(cert, asn1);
    ASN1_INTEGER_free(asn1);
    COFFER_CHECK(rc == 1, "X509_set_serialNumber failed");

    if (ASN1_TIME_set(X509_getm_notBefore(cert), static_cast<time_t>(options.not_before_unix)) ==
            nullptr ||
        ASN1_TIME_set(X509_getm_notAfter(cert), static_cast<time_t>(options.not_after_unix)) ==
            nullptr) {
        return detail::openssl_error(Errc::kInvalidArgument, "certificate validity time");
    }
    return {};
}

Status check_options(const CertificateOptions& options) {
    if (options.common_name.empty()) {
        return error(Errc::kInvalidArgument, "certificate common name is empty");
    }
    if (options.not_after_unix < options.not_before_unix) {
        return error(Errc::kInvalidArgument, "certificate not_after is before not_before");
    }
    return {};
}

// Builds and signs a certificate. `issuer_cert` is null for a self-signed one.
Result<Certificate> build_certificate(EVP_PKEY* subject_key, const CertificateOptions& options,
                                      EVP_PKEY* issuer_key, X509* issuer_cert) {
    COFFER_RETURN_IF_ERROR(check_options(options));
    detail::clear_openssl_errors();
    X509Ptr cert(X509_new());
    COFFER_CHECK(cert != nullptr, "X509_new failed");
    COFFER_CHECK(X509_set_version(cert.get(), X509_VERSION_3) == 1, "X509_set_version failed");
    COFFER_RETURN_IF_ERROR(set_serial_and_times(cert.get(), options));

    X509_NAME* subject = X509_get_subject_name(cert.get());
    const auto* cn = reinterpret_cast<const unsigned char*>(options.common_name.c_str());
    if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, cn, -1, -1, 0) != 1) {
        return detail::openssl_error(Errc::kInvalidArgument, "certificate common name");
    }
    X509* issuer = issuer_cert != nullptr ? issuer_cert : cert.get();
    COFFER_CHECK(X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer)) == 1,
                 "X509_set_issuer_name failed");
    COFFER_CHECK(X509_set_pubkey(cert.get(), subject_key) == 1, "X509_set_pubkey failed");

    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert.get(), nullptr, nullptr, 0);
    COFFER_RETURN_IF_ERROR(
        add_conf_extension(cert.get(), &ctx, NID_basic_constraints,
                           options.is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE"));
    COFFER_RETURN_IF_ERROR(add_conf_extension(cert.get(), &ctx, NID_key_usage,
                                              options.is_ca
                                                  ? "critical,digitalSignature,keyCertSign,cRLSign"
                                                  : "critical,digitalSignature"));
    COFFER_RETURN_IF_ERROR(
        add_conf_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
    COFFER_RETURN_IF_ERROR(
        add_conf_extension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
    COFFER_RETURN_IF_ERROR(add_subject_alt_names(cert.get(), options));

    if (X509_sign(cert.get(), issuer_key, EVP_sha384()) <= 0) {
        return detail::openssl_error(Errc::kInternal, "X509_sign");
    }
    return Certificate::adopt(cert.release());
}

}  // namespace

Result<Certificate> make_self_signed_certificate(const EcdsaPrivateKey& key,
                                                 const CertificateOptions& options) {
    return build_certificate(key.native(), options, key.native(), nullptr);
}

Result<Certificate> make_issued_certificate(const EcdsaPublicKey& subject_key,
                                            const CertificateOptions& options,
                                            const EcdsaPrivateKey& issuer_key,
                                            const Certificate& issuer_cert) {
    if (issuer_cert.empty() ||
        X509_check_private_key(issuer_cert.native(), issuer_key.native()) != 1) {
        detail::clear_openssl_errors();
        return error(Errc::kInvalidArgument, "issuer key does not match the issuer certificate");
    }
    return build_certificate(subject_key.native(), options, issuer_key.native(),
                             issuer_cert.native());
}

Status verify_certificate_chain(const Certificate& leaf, std::span<const Certificate> intermediates,
                                const Certificate& trusted_root,
                                std::optional<int64_t> at_unix_time) {
    COFFER_CHECK(!leaf.empty() && !trusted_root.empty(), "empty Certificate in chain check");
    detail::clear_openssl_errors();
    std::unique_ptr<X509_STORE, StoreDeleter> store(X509_STORE_new());
    std::unique_ptr<X509_STORE_CTX, StoreCtxDeleter> ctx(X509_STORE_CTX_new());
    std::unique_ptr<STACK_OF(X509), StackDeleter> untrusted(sk_X509_new_null());
    COFFER_CHECK(store && ctx && untrusted, "X509 store allocation failed");
    COFFER_CHECK(X509_STORE_add_cert(store.get(), trusted_root.native()) == 1,
                 "X509_STORE_add_cert failed");
    for (const auto& cert : intermediates) {
        COFFER_CHECK(!cert.empty(), "empty intermediate Certificate");
        COFFER_CHECK(sk_X509_push(untrusted.get(), cert.native()) > 0, "sk_X509_push failed");
    }
    COFFER_CHECK(X509_STORE_CTX_init(ctx.get(), store.get(), leaf.native(), untrusted.get()) == 1,
                 "X509_STORE_CTX_init failed");

    // The given root is the only trust anchor; PARTIAL_CHAIN lets it be a non-self-signed
    // certificate (for example an intermediate pinned by the caller).
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
    unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN;
    if (at_unix_time.has_value()) {
        X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(*at_unix_time));
    } else {
        flags |= X509_V_FLAG_NO_CHECK_TIME;
    }
    X509_VERIFY_PARAM_set_flags(param, flags);

    if (X509_verify_cert(ctx.get()) == 1) {
        return {};
    }
    int err = X509_STORE_CTX_get_error(ctx.get());
    int depth = X509_STORE_CTX_get_error_depth(ctx.get());
    X509* failing = X509_STORE_CTX_get_current_cert(ctx.get());
    std::string name = failing != nullptr ? common_name_of(failing) : "<unknown>";
    detail::clear_openssl_errors();
    return error(Errc::kCrypto, "certificate chain: \"" + name + "\" (depth " +
                                    std::to_string(depth) +
                                    "): " + X509_verify_cert_error_string(err));
}

}  // namespace coffer::crypto
