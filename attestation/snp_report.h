// The AMD SEV-SNP ATTESTATION_REPORT: its byte layout and a strict parser.
//
// Layout source: AMD "SEV Secure Nested Paging Firmware ABI Specification", table
// "ATTESTATION_REPORT Structure" (report version 3, ABI 1.55 and later). Every integer is
// little-endian. The report is 0x4A0 bytes; the signature covers bytes [0, 0x2A0).
//
// Parsing only decodes: it checks no signature and trusts nothing. verify_snp_report in
// attestation/snp.h does the checks. All functions are pure and thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/bytes.h"
#include "common/result.h"

namespace coffer::attestation {

// Byte offsets of the fields we read (ABI spec, ATTESTATION_REPORT table).
namespace snp_offsets {
constexpr size_t kVersion = 0x000;
constexpr size_t kGuestSvn = 0x004;
constexpr size_t kPolicy = 0x008;
constexpr size_t kFamilyId = 0x010;
constexpr size_t kImageId = 0x020;
constexpr size_t kVmpl = 0x030;
constexpr size_t kSignatureAlgo = 0x034;
constexpr size_t kCurrentTcb = 0x038;
constexpr size_t kPlatformInfo = 0x040;
constexpr size_t kFlags = 0x048;  // AUTHOR_KEY_EN, MASK_CHIP_KEY, SIGNING_KEY
constexpr size_t kReportData = 0x050;
constexpr size_t kMeasurement = 0x090;
constexpr size_t kHostData = 0x0C0;
constexpr size_t kIdKeyDigest = 0x0E0;
constexpr size_t kAuthorKeyDigest = 0x110;
constexpr size_t kReportId = 0x140;
constexpr size_t kReportIdMa = 0x160;
constexpr size_t kReportedTcb = 0x180;
constexpr size_t kCpuidFamily = 0x188;  // version 3 and later
constexpr size_t kCpuidModel = 0x189;
constexpr size_t kCpuidStepping = 0x18A;
constexpr size_t kChipId = 0x1A0;
constexpr size_t kCommittedTcb = 0x1E0;
constexpr size_t kCurrentBuild = 0x1E8;
constexpr size_t kCurrentMinor = 0x1E9;
constexpr size_t kCurrentMajor = 0x1EA;
constexpr size_t kCommittedBuild = 0x1EC;
constexpr size_t kCommittedMinor = 0x1ED;
constexpr size_t kCommittedMajor = 0x1EE;
constexpr size_t kLaunchTcb = 0x1F0;
constexpr size_t kSignature = 0x2A0;  // r (72 bytes LE), s (72 bytes LE), reserved
constexpr size_t kSignatureR = kSignature;
constexpr size_t kSignatureS = kSignature + 0x48;
}  // namespace snp_offsets

constexpr size_t kSnpReportSize = 0x4A0;
constexpr size_t kSnpSignedSize = snp_offsets::kSignature;
constexpr size_t kSnpReportDataSize = 64;
constexpr size_t kSnpMeasurementSize = 48;
constexpr size_t kSnpChipIdSize = 64;
constexpr size_t kSnpSignatureComponentSize = 72;  // r and s fields, little-endian, zero-padded
constexpr size_t kSnpTcbSize = 8;

static_assert(kSnpReportSize == 1184);
static_assert(snp_offsets::kReportData + kSnpReportDataSize == snp_offsets::kMeasurement);
static_assert(snp_offsets::kMeasurement + kSnpMeasurementSize == snp_offsets::kHostData);
static_assert(snp_offsets::kChipId + kSnpChipIdSize == snp_offsets::kCommittedTcb);
static_assert(snp_offsets::kReportedTcb + kSnpTcbSize == snp_offsets::kCpuidFamily);
static_assert(snp_offsets::kSignatureS + kSnpSignatureComponentSize <= kSnpReportSize);

// The only report version we accept. Version 2 lacks the CPUID family/model/stepping
// fields, without which the TCB layout (which differs between product generations) cannot
// be known. Later versions are not accepted yet, because we have no sample of them to check
// that every field we read keeps its meaning.
constexpr uint32_t kSnpSupportedReportVersion = 3;

// SIGNATURE_ALGO value for ECDSA P-384 with SHA-384.
constexpr uint32_t kSnpSignatureAlgoEcdsaP384Sha384 = 1;

// Guest policy bit 19: the guest may be debugged by the host, so its memory is not private.
constexpr uint64_t kSnpPolicyDebugBit = uint64_t{1} << 19;

// SIGNING_KEY: bits 4:2 of the 32-bit flags word at 0x48.
enum class SnpSigningKey : uint8_t {
    kVcek = 0,  // Versioned Chip Endorsement Key
    kVlek = 1,  // Versioned Loaded Endorsement Key (cloud-provider key)
    kNone = 7,  // the report is not signed
};
constexpr uint32_t kSnpFlagsAuthorKeyEn = 1u << 0;
constexpr uint32_t kSnpFlagsMaskChipKey = 1u << 1;
constexpr uint32_t kSnpFlagsSigningKeyShift = 2;
constexpr uint32_t kSnpFlagsSigningKeyMask = 0x7;

// CPUID family of the generation (Turin) whose TCB_VERSION layout differs from the one we
// decode. Not supported yet, because we have no Turin report or VCEK to test against.
constexpr uint8_t kSnpCpuidFamilyTurin = 0x1A;

// TCB_VERSION as laid out on Milan and Genoa (CPUID family 0x19): byte 0 boot loader,
// byte 1 TEE, bytes 2-5 reserved, byte 6 SNP firmware, byte 7 microcode.
struct SnpTcb {
    uint8_t boot_loader = 0;
    uint8_t tee = 0;
    std::array<uint8_t, 4> reserved{};
    uint8_t snp = 0;
    uint8_t microcode = 0;

    // "bl=0x04 tee=0x00 snp=0x18 ucode=0xdb"
    std::string to_string() const;

    friend bool operator==(const SnpTcb&, const SnpTcb&) = default;
};

// Decodes 8 bytes of TCB_VERSION. Needs exactly kSnpTcbSize bytes (checked).
SnpTcb snp_tcb_from_bytes(ByteSpan bytes);

// Every field of the report, decoded. Byte arrays are copies of the report's bytes.
struct SnpReport {
    uint32_t version = 0;
    uint32_t guest_svn = 0;
    uint64_t policy = 0;
    std::array<uint8_t, 16> family_id{};
    std::array<uint8_t, 16> image_id{};
    uint32_t vmpl = 0;
    uint32_t signature_algo = 0;
    SnpTcb current_tcb;
    uint64_t platform_info = 0;
    uint32_t flags = 0;
    std::array<uint8_t, kSnpReportDataSize> report_data{};
    std::array<uint8_t, kSnpMeasurementSize> measurement{};
    std::array<uint8_t, 32> host_data{};
    std::array<uint8_t, 48> id_key_digest{};
    std::array<uint8_t, 48> author_key_digest{};
    std::array<uint8_t, 32> report_id{};
    std::array<uint8_t, 32> report_id_ma{};
    SnpTcb reported_tcb;
    uint8_t cpuid_family = 0;
    uint8_t cpuid_model = 0;
    uint8_t cpuid_stepping = 0;
    std::array<uint8_t, kSnpChipIdSize> chip_id{};
    SnpTcb committed_tcb;
    uint8_t current_build = 0;
    uint8_t current_minor = 0;
    uint8_t current_major = 0;
    uint8_t committed_build = 0;
    uint8_t committed_minor = 0;
    uint8_t committed_major = 0;
    SnpTcb launch_tcb;
    std::array<uint8_t, kSnpSignatureComponentSize> signature_r{};  // little-endian
    std::array<uint8_t, kSnpSignatureComponentSize> signature_s{};  // little-endian

    // The raw SIGNING_KEY field (0..7); compare with SnpSigningKey values.
    uint8_t signing_key() const {
        return static_cast<uint8_t>((flags >> kSnpFlagsSigningKeyShift) & kSnpFlagsSigningKeyMask);
    }
    bool debug_allowed() const { return (policy & kSnpPolicyDebugBit) != 0; }
    bool chip_key_masked() const { return (flags & kSnpFlagsMaskChipKey) != 0; }
};

// "VCEK", "VLEK", "none" or "reserved (N)".
std::string snp_signing_key_name(uint8_t signing_key);

// Decodes a report.
// Errors: kInvalidArgument "SEV-SNP report must be 1184 bytes, got N" for any other size;
// kUnsupported "unsupported report version N" for a version other than
// kSnpSupportedReportVersion (version 2 with the reason why), and kUnsupported for a CPUID
// family whose TCB layout we do not decode (Turin).
Result<SnpReport> parse_snp_report(ByteSpan report);

}  // namespace coffer::attestation
