// The virtual platform's attestation report (spec: docs/formats/virtual-evidence.md).
//
// INSECURE BY DESIGN. A virtual report is a plain, unsigned byte string: anyone can write
// one with any measurement and any report data. It exists so that nodes without a trusted
// execution environment run the same code paths as real ones. Verification checks the
// structure only and always yields hardware_backed = false.
//
// Pure functions; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "attestation/claims.h"
#include "common/bytes.h"
#include "common/result.h"

namespace coffer::attestation {

constexpr uint32_t kVirtualReportVersion = 1;
constexpr size_t kVirtualPlatformNameSize = 8;
constexpr size_t kVirtualLabelSize = 32;
constexpr size_t kVirtualMeasurementSize = 32;  // SHA-256 of the node binary
constexpr size_t kVirtualReportDataSize = 64;
constexpr std::string_view kVirtualPlatformName = "virtual";
// Part of every report, so that no one reading the bytes can mistake them for a hardware
// report.
constexpr std::string_view kVirtualInsecureLabel = "insecure: not hardware-backed";

namespace virtual_offsets {
constexpr size_t kVersion = 0;
constexpr size_t kPlatform = 4;
constexpr size_t kLabel = kPlatform + kVirtualPlatformNameSize;         // 12
constexpr size_t kMeasurement = kLabel + kVirtualLabelSize;             // 44
constexpr size_t kReportData = kMeasurement + kVirtualMeasurementSize;  // 76
}  // namespace virtual_offsets

constexpr size_t kVirtualReportSize = virtual_offsets::kReportData + kVirtualReportDataSize;  // 140

static_assert(kVirtualReportSize == 140);
static_assert(kVirtualPlatformName.size() < kVirtualPlatformNameSize);
static_assert(kVirtualInsecureLabel.size() < kVirtualLabelSize);

struct VirtualReport {
    std::array<uint8_t, kVirtualMeasurementSize> measurement{};
    std::array<uint8_t, kVirtualReportDataSize> report_data{};
};

// Encodes a version-1 report (always kVirtualReportSize bytes).
Bytes encode_virtual_report(const VirtualReport& report);

// Decodes a report, checking every byte that is not measurement or report data.
// Errors: kInvalidArgument for a wrong size, platform name, label or padding;
// kUnsupported "unsupported virtual report version N".
Result<VirtualReport> parse_virtual_report(ByteSpan bytes);

// Claims of a structurally valid report: kind kVirtual, hardware_backed = false, the
// measurement and report data as given. Errors: as parse_virtual_report.
Result<VerifiedClaims> verify_virtual_report(ByteSpan bytes);

}  // namespace coffer::attestation
