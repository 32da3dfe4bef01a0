// AMD's X.509 extensions of a VCEK certificate (AMD "Versioned Chip Endorsement Key (VCEK)
// Certificate and KDS Interface Specification", table "VCEK Certificate Extensions").
//
// The VCEK is derived from the chip's unique secret and the TCB it was issued for; these
// extensions say which chip (hwID) and which TCB (the SPL values). A report signed by the
// VCEK is only evidence of that chip at that TCB if they match the report.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "attestation/snp_report.h"
#include "common/bytes.h"
#include "common/result.h"
#include "crypto/x509.h"

namespace coffer::attestation {

// Extension OIDs under AMD's arc 1.3.6.1.4.1.3704.1.
constexpr std::string_view kVcekOidProductName = "1.3.6.1.4.1.3704.1.2";
constexpr std::string_view kVcekOidBootLoaderSpl = "1.3.6.1.4.1.3704.1.3.1";
constexpr std::string_view kVcekOidTeeSpl = "1.3.6.1.4.1.3704.1.3.2";
constexpr std::string_view kVcekOidSnpSpl = "1.3.6.1.4.1.3704.1.3.3";
constexpr std::string_view kVcekOidMicrocodeSpl = "1.3.6.1.4.1.3704.1.3.8";
constexpr std::string_view kVcekOidHardwareId = "1.3.6.1.4.1.3704.1.4";

// The decoded extensions that verification compares with the report.
struct VcekExtensions {
    uint8_t boot_loader_spl = 0;
    uint8_t tee_spl = 0;
    uint8_t snp_spl = 0;
    uint8_t microcode_spl = 0;
    Bytes hardware_id;         // exactly kSnpChipIdSize bytes
    std::string product_name;  // "" when the extension is absent (it is informational)
};

// Reads the extensions. Each SPL extension's value must be one canonical DER INTEGER in
// 0..255 (the encoding AMD's key distribution service uses); the hwID extension's value is
// the raw 64-byte chip id. Each of these must appear exactly once.
// Errors: kInvalidArgument naming the extension (e.g. "VCEK extension blSPL
// (1.3.6.1.4.1.3704.1.3.1): not a canonical DER INTEGER") for a missing, duplicated or
// malformed extension, and "VCEK hardware ID extension ... must be 64 bytes, got 63".
Result<VcekExtensions> parse_vcek_extensions(const crypto::Certificate& vcek);

// Decodes one canonical (minimal, non-negative, short-form) DER INTEGER that must fill
// `der` exactly and fit in one byte. Exposed for tests.
// Errors: kInvalidArgument describing the defect.
Result<uint8_t> parse_canonical_der_u8(ByteSpan der);

// Compares the extensions with the report. Errors: kPermissionDenied
// "VCEK TCB does not match the report's reported TCB: ..." or "VCEK hardware ID does not
// match the report's chip ID".
Status check_vcek_matches_report(const VcekExtensions& ext, const SnpReport& report);

}  // namespace coffer::attestation
