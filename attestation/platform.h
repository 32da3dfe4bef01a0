// Node attestation: the platform a node runs on produces evidence; any party verifies it.
//
// Evidence = a platform report (which carries a measurement of the software and 64 bytes of
// report data chosen by it) plus, for SEV-SNP, the endorsement certificates. A node binds
// its identity key to its evidence by putting SHA-256 of the key's DER SubjectPublicKeyInfo
// in the first 32 bytes of report data (the other 32 are zero); check_key_binding checks it.
//
// Platforms:
//   virtual  the default on machines without a trusted execution environment. Its evidence
//            is unsigned and anyone can forge it (docs/formats/virtual-evidence.md); it is
//            verified for structure only and never counts as hardware-backed.
//   sev-snp  AMD SEV-SNP. Verification only (attestation/snp.h). Not supported yet:
//            producing SNP evidence (requesting a report from /dev/sev-guest), because no
//            machine we build or test on has SEV-SNP.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "attestation/claims.h"
#include "attestation/snp.h"
#include "common/bytes.h"
#include "common/result.h"

namespace coffer::attestation {

// The most bytes of a report accepted from JSON (SNP reports are 1,184, virtual 140).
constexpr size_t kMaxEvidenceReportBytes = 4096;
// Report data is 64 bytes on every platform we support.
constexpr size_t kReportDataSize = 64;

struct Evidence {
    PlatformKind kind = PlatformKind::kVirtual;
    Bytes report;
    // SEV-SNP: PEM of the VCEK, ASK and ARK certificates, in that order. Virtual: empty.
    std::string endorsements_pem;
};

// {"platform": "virtual" | "sev-snp", "report": "<base64>", "endorsements": "<PEM>"}; the
// "endorsements" member is present only when non-empty.
nlohmann::json to_json(const Evidence& evidence);

// Strict inverse of to_json: an object with exactly those members, a known platform,
// canonical base64, sizes within kMaxEvidenceReportBytes and kMaxEndorsementsPemBytes, and
// no endorsements for the virtual platform. Does not verify anything.
// Errors: kInvalidArgument naming the problem.
Result<Evidence> evidence_from_json(const nlohmann::json& json);

struct VerifyOptions {
    // Refuse evidence that is not hardware-backed (virtual, or SNP with an unpinned root)
    // with kPermissionDenied. Off by default, because every node runs on the virtual
    // platform where no TEE exists; callers must then treat claims.hardware_backed as false.
    bool require_hardware_backed = false;
    SnpVerifyOptions snp;
};

// Verifies evidence according to its kind (verify_virtual_report or verify_snp_report).
// Errors: those of the platform's verifier, and kPermissionDenied when
// require_hardware_backed is set and the evidence is not hardware-backed.
Result<VerifiedClaims> verify_evidence(const Evidence& evidence, const VerifyOptions& options);

// The report data that binds `node_public_key_der` (DER SubjectPublicKeyInfo): SHA-256 of it
// followed by 32 zero bytes.
Bytes report_data_for_key(ByteSpan node_public_key_der);

// Checks that verified claims bind this public key (report data == report_data_for_key).
// Errors: kPermissionDenied "report data does not bind this public key".
Status check_key_binding(const VerifiedClaims& claims, ByteSpan node_public_key_der);

// SHA-256 of a file's contents, the virtual platform's measurement of a binary (use
// "/proc/self/exe" for the running one). Errors: kIo if the file cannot be read;
// kResourceExhausted beyond 4 GiB.
Result<Bytes> measure_binary(const std::string& path);

// A source of evidence for the node it runs in. Implementations are thread-safe.
class Platform {
  public:
    virtual ~Platform() = default;
    virtual PlatformKind kind() const = 0;
    // Evidence carrying `report_data` (at most kReportDataSize bytes, zero-padded to it).
    // Errors: kInvalidArgument if report_data is too long; platform-specific failures.
    virtual Result<Evidence> get_evidence(ByteSpan report_data) = 0;
};

// Produces virtual reports with a fixed measurement. Stateless after construction.
class VirtualPlatform final : public Platform {
  public:
    // `measurement` must be 32 bytes (as measure_binary returns); checked.
    explicit VirtualPlatform(Bytes measurement);

    PlatformKind kind() const override { return PlatformKind::kVirtual; }
    Result<Evidence> get_evidence(ByteSpan report_data) override;

  private:
    Bytes measurement_;
};

}  // namespace coffer::attestation
