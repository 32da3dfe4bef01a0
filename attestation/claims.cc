#include "attestation/claims.h"

#include <fmt/format.h>

namespace coffer::attestation {
namespace {

constexpr size_t kChipIdPrefixBytes = 8;

std::string describe_snp(const SnpReport& r) {
    std::string out;
    out += fmt::format("report version: {}\n", r.version);
    out += fmt::format("product:        CPUID family 0x{:02x} model 0x{:02x} stepping 0x{:02x}\n",
                       r.cpuid_family, r.cpuid_model, r.cpuid_stepping);
    out += fmt::format("firmware:       {}.{} build {}\n", r.current_major, r.current_minor,
                       r.current_build);
    out += fmt::format("reported TCB:   {}\n", r.reported_tcb.to_string());
    out += fmt::format("current TCB:    {}\n", r.current_tcb.to_string());
    out += fmt::format("committed TCB:  {}\n", r.committed_tcb.to_string());
    out += fmt::format("launch TCB:     {}\n", r.launch_tcb.to_string());
    out += fmt::format("guest policy:   0x{:016x} (debug {})\n", r.policy,
                       r.debug_allowed() ? "ALLOWED" : "disabled");
    out += fmt::format("guest svn:      {}  vmpl: {}\n", r.guest_svn, r.vmpl);
    out += fmt::format("signing key:    {}\n", snp_signing_key_name(r.signing_key()));
    out += fmt::format("chip id:        {}...\n",
                       to_hex(ByteSpan(r.chip_id.data(), kChipIdPrefixBytes)));
    out += fmt::format("host data:      {}\n", to_hex(r.host_data));
    return out;
}

}  // namespace

std::string_view platform_kind_name(PlatformKind kind) {
    switch (kind) {
        case PlatformKind::kVirtual:
            return "virtual";
        case PlatformKind::kSevSnp:
            return "sev-snp";
    }
    COFFER_CHECK(false, "unknown PlatformKind");
    return "";
}

Result<PlatformKind> platform_kind_from_name(std::string_view name) {
    if (name == "virtual") {
        return PlatformKind::kVirtual;
    }
    if (name == "sev-snp") {
        return PlatformKind::kSevSnp;
    }
    return error(Errc::kInvalidArgument, fmt::format("unknown platform \"{}\"", name));
}

std::string describe(const VerifiedClaims& claims) {
    std::string out;
    out += fmt::format("platform:       {}\n", platform_kind_name(claims.kind));
    out += fmt::format("hardware-backed: {}\n", claims.hardware_backed ? "yes" : "NO");
    if (claims.snp_report.has_value()) {
        out += describe_snp(*claims.snp_report);
        if (!claims.product_name.empty()) {
            out += fmt::format("VCEK product:   {}\n", claims.product_name);
        }
        out += fmt::format("root pinned:    {}\n", claims.root_pinned ? "yes" : "NO");
    }
    out += fmt::format("measurement:    {}\n", to_hex(claims.measurement));
    out += fmt::format("report data:    {}\n", to_hex(claims.report_data));
    out += fmt::format("verified:       {}\n", claims.summary);
    return out;
}

}  // namespace coffer::attestation
