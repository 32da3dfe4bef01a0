// Verification of AMD SEV-SNP attestation reports against AMD's endorsement chain.
//
// What verify_snp_report establishes (see docs/attestation.md for the reasoning):
//   1. the report parses, is version 3 and is signed by a VCEK (not a VLEK, not unsigned);
//   2. the guest policy forbids debugging (unless allow_debug);
//   3. the endorsement bundle is VCEK <- ASK <- ARK, each signed by the next, the ARK
//      self-signed, and the ARK is the caller's pinned root when one is given;
//   4. the VCEK certificate was issued for this report's chip (hwID == CHIP_ID) and for its
//      REPORTED_TCB (blSPL, teeSPL, snpSPL, ucodeSPL, each a canonical DER INTEGER);
//   5. the report's ECDSA P-384/SHA-384 signature over bytes [0, 0x2A0) verifies with the
//      VCEK's key.
// It does not judge the measurement, the report data or the TCB level: those are policy
// decisions of the caller (check_key_binding in attestation/platform.h binds a node key).
//
// Thread-safe: no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "attestation/claims.h"
#include "attestation/snp_report.h"
#include "common/bytes.h"
#include "common/result.h"

namespace coffer::attestation {

struct SnpVerifyOptions {
    // PEM of the AMD root key certificate (ARK) to trust. When set, the bundle's ARK must be
    // this exact certificate. When unset, the bundle's own ARK is used as the root: the
    // cryptographic checks still run, but anyone can make a self-consistent chain, so the
    // result has root_pinned = false and hardware_backed = false.
    std::optional<std::string> trusted_root_pem;
    // Accept guests whose policy allows debugging (their memory is readable by the host).
    bool allow_debug = false;
    // Check certificate validity periods at this time. Unset: validity periods are ignored,
    // because a report carries no time and archived evidence must stay verifiable.
    std::optional<int64_t> at_unix_time;
};

// The most bytes of endorsement PEM accepted (AMD's three certificates take about 6.5 KiB).
constexpr size_t kMaxEndorsementsPemBytes = 64 * 1024;

// Verifies `report` (1,184 bytes) with `endorsements_pem` (VCEK, ASK, ARK, in that order).
// On success, returns claims of kind kSevSnp with the 48-byte measurement, the 64-byte report
// data and the reported TCB.
// Errors (each message names the failed check):
//   kInvalidArgument  wrong size, malformed endorsements or trusted root, malformed VCEK
//                     extension ("VCEK extension blSPL (1.3.6.1.4.1.3704.1.3.1): ...",
//                     "VCEK hardware ID extension (...): must be 64 bytes, got 63");
//   kUnsupported      "unsupported report version N", "unsupported signing key: VLEK" (found
//                     before any signature is checked), "unsupported signature algorithm N",
//                     masked chip key;
//   kPermissionDenied "debug policy: ...", "VCEK TCB does not match the report's reported
//                     TCB: ...", "VCEK hardware ID does not match the report's chip ID";
//   kCrypto           "certificate chain does not verify: ...", "report signature does not
//                     verify", non-zero high bytes in the signature fields.
Result<VerifiedClaims> verify_snp_report(ByteSpan report, std::string_view endorsements_pem,
                                         const SnpVerifyOptions& options);

}  // namespace coffer::attestation
