#include "attestation/platform.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "attestation/virtual_evidence.h"
#include "crypto/encoding.h"
#include "crypto/sha256.h"

namespace coffer::attestation {
namespace {

constexpr size_t kReadChunkBytes = 64 * 1024;
// Node binaries are tens of MiB; the bound keeps a mistaken path (a device, a huge file)
// from hashing forever.
constexpr uint64_t kMaxMeasuredFileBytes = uint64_t{4} << 30;

struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};

Status invalid(std::string message) {
    return error(Errc::kInvalidArgument, "evidence: " + std::move(message));
}

Status check_members(const nlohmann::json& json) {
    if (!json.is_object()) {
        return invalid("must be a JSON object");
    }
    for (const auto& item : json.items()) {
        if (item.key() != "platform" && item.key() != "report" && item.key() != "endorsements") {
            return invalid("unknown member \"" + item.key() + "\"");
        }
    }
    for (const char* name : {"platform", "report"}) {
        if (!json.contains(name) || !json.at(name).is_string()) {
            return invalid(std::string("member \"") + name + "\" must be a string");
        }
    }
    if (json.contains("endorsements") && !json.at("endorsements").is_string()) {
        return invalid("member \"endorsements\" must be a string");
    }
    return {};
}

Result<Evidence> evidence_from_checked_json(const nlohmann::json& json) {
    Evidence out;
    auto kind = platform_kind_from_name(json.at("platform").get_ref<const std::string&>());
    if (!kind.ok()) {
        return kind.status().with_context("evidence");
    }
    out.kind = *kind;

    const auto& report_text = json.at("report").get_ref<const std::string&>();
    if (report_text.size() > (kMaxEvidenceReportBytes / 3 + 1) * 4) {
        return invalid("report exceeds the size limit");
    }
    auto report = crypto::base64_decode(report_text);
    if (!report.ok()) {
        return report.status().with_context("evidence: report");
    }
    out.report = std::move(report).value();

    if (json.contains("endorsements")) {
        out.endorsements_pem = json.at("endorsements").get<std::string>();
    }
    if (out.endorsements_pem.size() > kMaxEndorsementsPemBytes) {
        return invalid("endorsements exceed the size limit");
    }
    if (out.kind == PlatformKind::kVirtual && !out.endorsements_pem.empty()) {
        return invalid("virtual evidence has no endorsements");
    }
    return out;
}

Result<VerifiedClaims> verify_by_kind(const Evidence& evidence, const VerifyOptions& options) {
    switch (evidence.kind) {
        case PlatformKind::kVirtual:
            if (!evidence.endorsements_pem.empty()) {
                return invalid("virtual evidence has no endorsements");
            }
            return verify_virtual_report(evidence.report);
        case PlatformKind::kSevSnp:
            return verify_snp_report(evidence.report, evidence.endorsements_pem, options.snp);
    }
    return invalid("unknown platform kind");
}

}  // namespace

nlohmann::json to_json(const Evidence& evidence) {
    nlohmann::json json = {{"platform", std::string(platform_kind_name(evidence.kind))},
                           {"report", crypto::base64_encode(evidence.report)}};
    if (!evidence.endorsements_pem.empty()) {
        json["endorsements"] = evidence.endorsements_pem;
    }
    return json;
}

Result<Evidence> evidence_from_json(const nlohmann::json& json) {
    try {
        COFFER_RETURN_IF_ERROR(check_members(json));
        return evidence_from_checked_json(json);
    } catch (const nlohmann::json::exception& e) {
        return invalid(std::string("malformed JSON: ") + e.what());
    }
}

Result<VerifiedClaims> verify_evidence(const Evidence& evidence, const VerifyOptions& options) {
    COFFER_ASSIGN_OR_RETURN(VerifiedClaims claims, verify_by_kind(evidence, options));
    if (options.require_hardware_backed && !claims.hardware_backed) {
        return error(Errc::kPermissionDenied,
                     fmt::format("{} evidence is not hardware-backed and hardware-backed "
                                 "evidence is required",
                                 platform_kind_name(evidence.kind)));
    }
    return claims;
}

Bytes report_data_for_key(ByteSpan node_public_key_der) {
    crypto::Sha256Digest digest = crypto::sha256(node_public_key_der);
    Bytes out(digest.begin(), digest.end());
    out.resize(kReportDataSize, 0);
    return out;
}

Status check_key_binding(const VerifiedClaims& claims, ByteSpan node_public_key_der) {
    Bytes expected = report_data_for_key(node_public_key_der);
    if (claims.report_data != expected) {
        return error(Errc::kPermissionDenied,
                     "report data does not bind this public key (expected SHA-256 of the DER "
                     "public key followed by 32 zero bytes)");
    }
    return {};
}

Result<Bytes> measure_binary(const std::string& path) {
    std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
    if (!file) {
        return error(Errc::kIo, "cannot open " + path + " to measure it");
    }
    crypto::Sha256Hasher hasher;
    std::vector<uint8_t> buffer(kReadChunkBytes);
    uint64_t total_bytes = 0;
    while (true) {
        size_t n = std::fread(buffer.data(), 1, buffer.size(), file.get());
        hasher.update(ByteSpan(buffer.data(), n));
        total_bytes += n;
        if (total_bytes > kMaxMeasuredFileBytes) {
            return error(Errc::kResourceExhausted, path + " exceeds the 4 GiB measurement limit");
        }
        if (n < buffer.size()) {
            break;
        }
    }
    if (std::ferror(file.get()) != 0) {
        return error(Errc::kIo, "cannot read " + path + " to measure it");
    }
    crypto::Sha256Digest digest = hasher.finish();
    return Bytes(digest.begin(), digest.end());
}

VirtualPlatform::VirtualPlatform(Bytes measurement) : measurement_(std::move(measurement)) {
    COFFER_CHECK(measurement_.size() == kVirtualMeasurementSize,
                 "a virtual measurement is a 32-byte SHA-256");
}

Result<Evidence> VirtualPlatform::get_evidence(ByteSpan report_data) {
    if (report_data.size() > kReportDataSize) {
        return error(Errc::kInvalidArgument, fmt::format("report data is at most {} bytes, got {}",
                                                         kReportDataSize, report_data.size()));
    }
    VirtualReport report;
    std::copy(measurement_.begin(), measurement_.end(), report.measurement.begin());
    std::copy(report_data.begin(), report_data.end(), report.report_data.begin());

    Evidence evidence;
    evidence.kind = PlatformKind::kVirtual;
    evidence.report = encode_virtual_report(report);
    return evidence;
}

}  // namespace coffer::attestation
