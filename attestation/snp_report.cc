#include "attestation/snp_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace coffer::attestation {
namespace {

// Fixed-offset readers over a buffer whose size the caller has checked to be
// kSnpReportSize; the static offsets above keep every read in bounds.
uint32_t u32_at(ByteSpan report, size_t offset) {
    COFFER_CHECK(offset + 4 <= report.size(), "SNP field read out of bounds");
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) {
        v |= static_cast<uint32_t>(report[offset + i]) << (8 * i);
    }
    return v;
}

uint64_t u64_at(ByteSpan report, size_t offset) {
    return static_cast<uint64_t>(u32_at(report, offset)) |
           (static_cast<uint64_t>(u32_at(report, offset + 4)) << 32);
}

template <size_t N>
void copy_at(ByteSpan report, size_t offset, std::array<uint8_t, N>& out) {
    COFFER_CHECK(offset + N <= report.size(), "SNP field read out of bounds");
    std::memcpy(out.data(), report.data() + offset, N);
}

SnpTcb tcb_at(ByteSpan report, size_t offset) {
    return snp_tcb_from_bytes(report.subspan(offset, kSnpTcbSize));
}

Status check_version(uint32_t version) {
    if (version == kSnpSupportedReportVersion) {
        return {};
    }
    std::string message = fmt::format("unsupported report version {}", version);
    if (version == 2) {
        message +=
            " (version 2 has no CPUID family/model fields, so the product and its TCB layout "
            "cannot be determined; version 3 is required)";
    } else {
        message += fmt::format(" (only version {} is accepted)", kSnpSupportedReportVersion);
    }
    return error(Errc::kUnsupported, std::move(message));
}

void decode_header(ByteSpan r, SnpReport& out) {
    namespace o = snp_offsets;
    out.version = u32_at(r, o::kVersion);
    out.guest_svn = u32_at(r, o::kGuestSvn);
    out.policy = u64_at(r, o::kPolicy);
    copy_at(r, o::kFamilyId, out.family_id);
    copy_at(r, o::kImageId, out.image_id);
    out.vmpl = u32_at(r, o::kVmpl);
    out.signature_algo = u32_at(r, o::kSignatureAlgo);
    out.current_tcb = tcb_at(r, o::kCurrentTcb);
    out.platform_info = u64_at(r, o::kPlatformInfo);
    out.flags = u32_at(r, o::kFlags);
}

void decode_body(ByteSpan r, SnpReport& out) {
    namespace o = snp_offsets;
    copy_at(r, o::kReportData, out.report_data);
    copy_at(r, o::kMeasurement, out.measurement);
    copy_at(r, o::kHostData, out.host_data);
    copy_at(r, o::kIdKeyDigest, out.id_key_digest);
    copy_at(r, o::kAuthorKeyDigest, out.author_key_digest);
    copy_at(r, o::kReportId, out.report_id);
    copy_at(r, o::kReportIdMa, out.report_id_ma);
    out.reported_tcb = tcb_at(r, o::kReportedTcb);
    out.cpuid_family = r[o::kCpuidFamily];
    out.cpuid_model = r[o::kCpuidModel];
    out.cpuid_stepping = r[o::kCpuidStepping];
    copy_at(r, o::kChipId, out.chip_id);
    out.committed_tcb = tcb_at(r, o::kCommittedTcb);
    out.current_build = r[o::kCurrentBuild];
    out.current_minor = r[o::kCurrentMinor];
    out.current_major = r[o::kCurrentMajor];
    out.committed_build = r[o::kCommittedBuild];
    out.committed_minor = r[o::kCommittedMinor];
    out.committed_major = r[o::kCommittedMajor];
    out.launch_tcb = tcb_at(r, o::kLaunchTcb);
    copy_at(r, o::kSignatureR, out.signature_r);
    copy_at(r, o::kSignatureS, out.signature_s);
}

}  // namespace

std::string SnpTcb::to_string() const {
    return fmt::format("bl=0x{:02x} tee=0x{:02x} snp=0x{:02x} ucode=0x{:02x}", boot_loader, tee,
                       snp, microcode);
}

SnpTcb snp_tcb_from_bytes(ByteSpan bytes) {
    COFFER_CHECK(bytes.size() == kSnpTcbSize, "TCB_VERSION is 8 bytes");
    SnpTcb tcb;
    tcb.boot_loader = bytes[0];
    tcb.tee = bytes[1];
    std::copy(bytes.begin() + 2, bytes.begin() + 6, tcb.reserved.begin());
    tcb.snp = bytes[6];
    tcb.microcode = bytes[7];
    return tcb;
}

std::string snp_signing_key_name(uint8_t signing_key) {
    switch (signing_key) {
        case static_cast<uint8_t>(SnpSigningKey::kVcek):
            return "VCEK";
        case static_cast<uint8_t>(SnpSigningKey::kVlek):
            return "VLEK";
        case static_cast<uint8_t>(SnpSigningKey::kNone):
            return "none";
        default:
            return fmt::format("reserved ({})", signing_key);
    }
}

Result<SnpReport> parse_snp_report(ByteSpan report) {
    if (report.size() != kSnpReportSize) {
        return error(Errc::kInvalidArgument, fmt::format("SEV-SNP report must be {} bytes, got {}",
                                                         kSnpReportSize, report.size()));
    }

    SnpReport out;
    decode_header(report, out);
    COFFER_RETURN_IF_ERROR(check_version(out.version));

    decode_body(report, out);
    if (out.cpuid_family == kSnpCpuidFamilyTurin) {
        return error(Errc::kUnsupported,
                     "unsupported product: CPUID family 0x1a (Turin) lays out TCB_VERSION "
                     "differently; only Milan and Genoa (family 0x19) are decoded");
    }
    return out;
}

}  // namespace coffer::attestation
