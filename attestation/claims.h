// What a successful verification of attestation evidence establishes.
//
// A VerifiedClaims value only exists after every check of its platform passed; its fields
// are then as trustworthy as the platform and its root of trust (see hardware_backed).
// Plain value type; thread-compatible.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "attestation/snp_report.h"
#include "common/bytes.h"
#include "common/result.h"

namespace coffer::attestation {

enum class PlatformKind {
    kVirtual,  // software only: evidence anyone can forge (see docs/attestation.md)
    kSevSnp,   // AMD SEV-SNP confidential VM
};

// "virtual" or "sev-snp", the names used in JSON and on the command line.
std::string_view platform_kind_name(PlatformKind kind);
// Inverse of platform_kind_name. Errors: kInvalidArgument for any other name.
Result<PlatformKind> platform_kind_from_name(std::string_view name);

struct VerifiedClaims {
    PlatformKind kind = PlatformKind::kVirtual;
    // True only for hardware evidence whose chain ends at a root the caller pinned. Always
    // false for the virtual platform, and false for SEV-SNP when the root was not pinned
    // (the bundle's own ARK was used, which anyone can make).
    bool hardware_backed = false;
    // Virtual: SHA-256 of the node binary (32 bytes). SEV-SNP: launch measurement (48 bytes).
    Bytes measurement;
    // 64 bytes chosen by the attested software; Coffer puts SHA-256 of the node's public key
    // in the first 32 and zeros in the rest (see check_key_binding in attestation/platform.h).
    Bytes report_data;
    // SEV-SNP only: the REPORTED_TCB that the VCEK certificate was checked against.
    std::optional<SnpTcb> reported_tcb;
    // SEV-SNP only: the whole decoded report, for display and for policies on other fields.
    std::optional<SnpReport> snp_report;
    // SEV-SNP only: whether the ARK was pinned by the caller.
    bool root_pinned = false;
    // SEV-SNP only: the VCEK's product name extension (e.g. "Milan-B0"), empty if absent.
    std::string product_name;
    // One line saying what was verified and what was not.
    std::string summary;
};

// Multi-line human-readable description of verified claims: platform, report version, TCB,
// measurement and report data in hex, guest policy, chip id prefix, and what was verified.
// For the CLI; the format is not stable and must not be parsed.
std::string describe(const VerifiedClaims& claims);

}  // namespace coffer::attestation
