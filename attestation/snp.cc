#include "attestation/snp.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

#include "attestation/vcek.h"
#include "crypto/ecdsa.h"
#include "crypto/x509.h"

namespace coffer::attestation {
namespace {

constexpr size_t kEndorsementCount = 3;  // VCEK, ASK, ARK
constexpr std::string_view kChainError = "certificate chain does not verify: ";

struct Endorsements {
    crypto::Certificate vcek;
    crypto::Certificate ask;
    crypto::Certificate ark;  // the root actually trusted (pinned or the bundle's own)
    bool root_pinned = false;
};

Status chain_error(std::string detail) {
    return error(Errc::kCrypto, std::string(kChainError) + detail);
}

std::string cn_of(const crypto::Certificate& cert) {
    std::string cn = cert.subject_common_name();
    return cn.empty() ? "<no common name>" : cn;
}

// True if `issuer`'s name and key identifiers match `subject` and `issuer`'s key verifies
// `subject`'s signature (any algorithm OpenSSL knows, RSA-PSS included).
bool issued_by(const crypto::Certificate& subject, const crypto::Certificate& issuer) {
    bool ok = X509_check_issued(issuer.native(), subject.native()) == X509_V_OK;
    EVP_PKEY* key = X509_get0_pubkey(issuer.native());
    ok = ok && key != nullptr && X509_verify(subject.native(), key) == 1;
    ERR_clear_error();
    return ok;
}

Status check_report_header(const SnpReport& r, const SnpVerifyOptions& options) {
    // The signing key is checked first: a VLEK-signed report must not be "verified" with a
    // VCEK chain, whatever the signature says.
    if (r.signing_key() != static_cast<uint8_t>(SnpSigningKey::kVcek)) {
        return error(Errc::kUnsupported,
                     fmt::format("unsupported signing key: {} (only VCEK-signed reports are "
                                 "accepted)",
                                 snp_signing_key_name(r.signing_key())));
    }
    if (r.chip_key_masked()) {
        return error(Errc::kUnsupported,
                     "unsupported signing key: the report's chip key is masked (MASK_CHIP_KEY), "
                     "so it carries no signature");
    }
    if (r.signature_algo != kSnpSignatureAlgoEcdsaP384Sha384) {
        return error(Errc::kUnsupported,
                     fmt::format("unsupported signature algorithm {} (only 1, ECDSA P-384 with "
                                 "SHA-384)",
                                 r.signature_algo));
    }
    if (r.debug_allowed() && !options.allow_debug) {
        return error(Errc::kPermissionDenied,
                     "debug policy: the guest policy allows debugging (bit 19), so the host "
                     "can read the guest's memory");
    }
    return {};
}

Result<Endorsements> load_endorsements(std::string_view pem, const SnpVerifyOptions& options) {
    if (pem.size() > kMaxEndorsementsPemBytes) {
        return error(Errc::kInvalidArgument, "endorsements exceed the size limit");
    }
    auto certs = crypto::Certificate::chain_from_pem(pem);
    if (!certs.ok()) {
        return certs.status().with_context("endorsements");
    }
    if (certs->size() != kEndorsementCount) {
        return error(Errc::kInvalidArgument,
                     fmt::format("endorsements must be the VCEK, ASK and ARK certificates in "
                                 "that order; got {} certificates",
                                 certs->size()));
    }

    Endorsements out{(*certs)[0], (*certs)[1], (*certs)[2], false};
    if (options.trusted_root_pem.has_value()) {
        auto root = crypto::Certificate::from_pem(*options.trusted_root_pem);
        if (!root.ok()) {
            return root.status().with_context("trusted root");
        }
        if (root->der() != out.ark.der()) {
            return chain_error(fmt::format("the bundle's ARK \"{}\" is not the trusted root \"{}\"",
                                           cn_of(out.ark), cn_of(*root)));
        }
        out.ark = *root;
        out.root_pinned = true;
    }
    return out;
}

Status check_chain(const Endorsements& e, const SnpVerifyOptions& options) {
    if (!issued_by(e.ark, e.ark)) {
        return chain_error(fmt::format("ARK \"{}\" is not self-signed", cn_of(e.ark)));
    }
    if (!issued_by(e.ask, e.ark)) {
        return chain_error(
            fmt::format("ASK \"{}\" is not signed by ARK \"{}\"", cn_of(e.ask), cn_of(e.ark)));
    }
    if (!issued_by(e.vcek, e.ask)) {
        return chain_error(
            fmt::format("VCEK \"{}\" is not signed by ASK \"{}\"", cn_of(e.vcek), cn_of(e.ask)));
    }

    // The pairwise checks pin the exact shape VCEK <- ASK <- ARK; OpenSSL's path validation
    // adds the CA constraints, key usages and (optionally) validity periods.
    std::vector<crypto::Certificate> intermediates{e.ask};
    Status status =
        crypto::verify_certificate_chain(e.vcek, intermediates, e.ark, options.at_unix_time);
    if (!status.ok()) {
        return chain_error(status.message());
    }
    return {};
}

// The report stores r and s as 72-byte little-endian integers; P-384 values take 48 bytes, so
// bytes 48..71 of each must be zero. Returns the P1363 form r || s (big-endian, 48 bytes each).
Result<Bytes> signature_to_p1363(const SnpReport& r) {
    Bytes out;
    out.reserve(crypto::kP384P1363SignatureSize);
    for (const auto* field : {&r.signature_r, &r.signature_s}) {
        bool high_zero = std::all_of(field->begin() + crypto::kP384ScalarSize, field->end(),
                                     [](uint8_t b) { return b == 0; });
        if (!high_zero) {
            return error(Errc::kCrypto,
                         "report signature does not verify: a signature component exceeds "
                         "48 bytes");
        }
        std::reverse_copy(field->begin(), field->begin() + crypto::kP384ScalarSize,
                          std::back_inserter(out));
    }
    return out;
}

Status check_signature(ByteSpan report, const SnpReport& parsed, const crypto::Certificate& vcek) {
    auto key = vcek.ecdsa_public_key();
    if (!key.ok()) {
        return key.status().with_context("VCEK public key");
    }
    COFFER_ASSIGN_OR_RETURN(Bytes p1363, signature_to_p1363(parsed));
    if (!key->verify_p1363(report.first(kSnpSignedSize), p1363).ok()) {
        return error(Errc::kCrypto, "report signature does not verify with the VCEK");
    }
    return {};
}

std::string summarize(const SnpReport& r, const Endorsements& e) {
    std::string root =
        e.root_pinned ? fmt::format("the pinned root \"{}\" (sha256 {})", cn_of(e.ark),
                                    e.ark.fingerprint_sha256_hex())
                      : fmt::format(
                            "the bundle's own ARK \"{}\": ROOT NOT PINNED, so this does not prove "
                            "the report comes from AMD hardware",
                            cn_of(e.ark));
    return fmt::format(
        "SEV-SNP report v{} signed by the VCEK (ECDSA P-384/SHA-384); chain VCEK <- ASK <- ARK "
        "verified against {}; VCEK hwID and TCB ({}) match the report; guest debug {}",
        r.version, root, r.reported_tcb.to_string(), r.debug_allowed() ? "ALLOWED" : "disabled");
}

}  // namespace

Result<VerifiedClaims> verify_snp_report(ByteSpan report, std::string_view endorsements_pem,
                                         const SnpVerifyOptions& options) {
    COFFER_ASSIGN_OR_RETURN(SnpReport parsed, parse_snp_report(report));
    COFFER_RETURN_IF_ERROR(check_report_header(parsed, options));

    COFFER_ASSIGN_OR_RETURN(Endorsements endorsements,
                            load_endorsements(endorsements_pem, options));
    COFFER_RETURN_IF_ERROR(check_chain(endorsements, options));

    COFFER_ASSIGN_OR_RETURN(VcekExtensions ext, parse_vcek_extensions(endorsements.vcek));
    COFFER_RETURN_IF_ERROR(check_vcek_matches_report(ext, parsed));

    COFFER_RETURN_IF_ERROR(check_signature(report, parsed, endorsements.vcek));

    VerifiedClaims claims;
    claims.kind = PlatformKind::kSevSnp;
    claims.root_pinned = endorsements.root_pinned;
    claims.hardware_backed = endorsements.root_pinned;
    claims.measurement.assign(parsed.measurement.begin(), parsed.measurement.end());
    claims.report_data.assign(parsed.report_data.begin(), parsed.report_data.end());
    claims.reported_tcb = parsed.reported_tcb;
    claims.product_name = ext.product_name;
    claims.summary = summarize(parsed, endorsements);
    claims.snp_report = std::move(parsed);
    spdlog::debug("attestation.snp_verified tcb=\"{}\" root_pinned={}",
                  claims.reported_tcb->to_string(), claims.root_pinned);
    return claims;
}

}  // namespace coffer::attestation
