#include "attestation/virtual_evidence.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace coffer::attestation {
namespace {

// A name padded with zero bytes to `size`.
void put_padded(Bytes& out, std::string_view text, size_t size) {
    COFFER_CHECK(text.size() < size, "padded field too short for its text");
    put_bytes(out, as_bytes(text));
    out.insert(out.end(), size - text.size(), 0);
}

bool is_padded(ByteSpan field, std::string_view text) {
    if (field.size() <= text.size()) {
        return false;
    }
    bool prefix = std::equal(text.begin(), text.end(), field.begin(),
                             [](char c, uint8_t b) { return static_cast<uint8_t>(c) == b; });
    return prefix && std::all_of(field.begin() + static_cast<ptrdiff_t>(text.size()), field.end(),
                                 [](uint8_t b) { return b == 0; });
}

}  // namespace

Bytes encode_virtual_report(const VirtualReport& report) {
    Bytes out;
    out.reserve(kVirtualReportSize);
    put_u32(out, kVirtualReportVersion);
    put_padded(out, kVirtualPlatformName, kVirtualPlatformNameSize);
    put_padded(out, kVirtualInsecureLabel, kVirtualLabelSize);
    put_bytes(out, report.measurement);
    put_bytes(out, report.report_data);
    COFFER_CHECK(out.size() == kVirtualReportSize, "virtual report size");
    return out;
}

Result<VirtualReport> parse_virtual_report(ByteSpan bytes) {
    ByteReader reader(bytes);
    uint32_t version = 0;
    if (!reader.read_u32(version)) {
        return error(Errc::kInvalidArgument, "virtual report is truncated");
    }
    if (version != kVirtualReportVersion) {
        return error(Errc::kUnsupported,
                     fmt::format("unsupported virtual report version {}", version));
    }
    if (bytes.size() != kVirtualReportSize) {
        return error(Errc::kInvalidArgument, fmt::format("virtual report must be {} bytes, got {}",
                                                         kVirtualReportSize, bytes.size()));
    }

    ByteSpan platform;
    ByteSpan label;
    ByteSpan measurement;
    ByteSpan report_data;
    reader.read_span(kVirtualPlatformNameSize, platform);
    reader.read_span(kVirtualLabelSize, label);
    reader.read_span(kVirtualMeasurementSize, measurement);
    reader.read_span(kVirtualReportDataSize, report_data);
    COFFER_CHECK(reader.ok() && reader.at_end(), "virtual report layout and size disagree");

    if (!is_padded(platform, kVirtualPlatformName)) {
        return error(Errc::kInvalidArgument, "virtual report: platform field is not \"virtual\"");
    }
    if (!is_padded(label, kVirtualInsecureLabel)) {
        return error(Errc::kInvalidArgument,
                     "virtual report: the \"insecure: not hardware-backed\" label is missing");
    }

    VirtualReport out;
    std::memcpy(out.measurement.data(), measurement.data(), kVirtualMeasurementSize);
    std::memcpy(out.report_data.data(), report_data.data(), kVirtualReportDataSize);
    return out;
}

Result<VerifiedClaims> verify_virtual_report(ByteSpan bytes) {
    COFFER_ASSIGN_OR_RETURN(VirtualReport report, parse_virtual_report(bytes));
    VerifiedClaims claims;
    claims.kind = PlatformKind::kVirtual;
    claims.hardware_backed = false;
    claims.measurement.assign(report.measurement.begin(), report.measurement.end());
    claims.report_data.assign(report.report_data.begin(), report.report_data.end());
    claims.summary =
        "virtual report v1: structure only. INSECURE: not hardware-backed; anyone can forge "
        "this evidence with any measurement and report data";
    return claims;
}

}  // namespace coffer::attestation
