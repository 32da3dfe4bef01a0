#include "attestation/vcek.h"

#include <fmt/format.h>
#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace coffer::attestation {
namespace {

constexpr uint8_t kDerTagInteger = 0x02;
// The product name is informational; longer values are cut off rather than trusted.
constexpr size_t kMaxProductNameBytes = 64;

struct ObjectDeleter {
    void operator()(ASN1_OBJECT* o) const { ASN1_OBJECT_free(o); }
};

std::string extension_label(std::string_view name, std::string_view oid) {
    return fmt::format("VCEK extension {} ({})", name, oid);
}

// The value (contents of extnValue) of the only extension with `oid`, or nullopt when
// absent. Errors: kInvalidArgument if it appears more than once.
Result<std::optional<Bytes>> extension_value(const crypto::Certificate& cert, std::string_view name,
                                             std::string_view oid) {
    std::string oid_text(oid);
    std::unique_ptr<ASN1_OBJECT, ObjectDeleter> obj(OBJ_txt2obj(oid_text.c_str(), 1));
    COFFER_CHECK(obj != nullptr, "OBJ_txt2obj failed on a constant OID");

    X509* x = cert.native();
    int index = X509_get_ext_by_OBJ(x, obj.get(), -1);
    if (index < 0) {
        return std::optional<Bytes>();
    }
    if (X509_get_ext_by_OBJ(x, obj.get(), index) >= 0) {
        return error(Errc::kInvalidArgument,
                     extension_label(name, oid) + ": appears more than once");
    }

    X509_EXTENSION* ext = X509_get_ext(x, index);
    const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(ext);
    COFFER_CHECK(data != nullptr, "X509 extension without data");
    const uint8_t* p = ASN1_STRING_get0_data(data);
    return std::optional<Bytes>(Bytes(p, p + ASN1_STRING_length(data)));
}

Result<uint8_t> spl_extension(const crypto::Certificate& cert, std::string_view name,
                              std::string_view oid) {
    COFFER_ASSIGN_OR_RETURN(auto value, extension_value(cert, name, oid));
    if (!value.has_value()) {
        return error(Errc::kInvalidArgument, extension_label(name, oid) + ": missing");
    }
    auto spl = parse_canonical_der_u8(*value);
    if (!spl.ok()) {
        return spl.status().with_context(extension_label(name, oid));
    }
    return spl;
}

Result<Bytes> hardware_id_extension(const crypto::Certificate& cert) {
    constexpr std::string_view kName = "hwID";
    COFFER_ASSIGN_OR_RETURN(auto value, extension_value(cert, kName, kVcekOidHardwareId));
    std::string label = "VCEK hardware ID extension (" + std::string(kVcekOidHardwareId) + ")";
    if (!value.has_value()) {
        return error(Errc::kInvalidArgument, label + ": missing");
    }
    if (value->size() != kSnpChipIdSize) {
        return error(Errc::kInvalidArgument, fmt::format("{}: must be {} bytes, got {}", label,
                                                         kSnpChipIdSize, value->size()));
    }
    return std::move(*value);
}

// The product name is a DER IA5String ("Milan-B0"); anything else yields "".
std::string product_name_extension(const crypto::Certificate& cert) {
    auto value = extension_value(cert, "productName", kVcekOidProductName);
    if (!value.ok() || !value->has_value()) {
        return "";
    }
    const Bytes& v = **value;
    constexpr uint8_t kDerTagIa5String = 0x16;
    if (v.size() < 2 || v[0] != kDerTagIa5String || v[1] >= 0x80 || v[1] + 2u != v.size() ||
        v[1] > kMaxProductNameBytes) {
        return "";
    }
    std::string name(v.begin() + 2, v.end());
    for (char c : name) {
        if (c < 0x20 || c > 0x7e) {
            return "";
        }
    }
    return name;
}

}  // namespace

Result<uint8_t> parse_canonical_der_u8(ByteSpan der) {
    if (der.size() < 3 || der[0] != kDerTagInteger) {
        return error(Errc::kInvalidArgument, "not a DER INTEGER");
    }
    size_t length = der[1];
    if (length >= 0x80 || length + 2 != der.size()) {
        return error(Errc::kInvalidArgument, "not a canonical DER INTEGER (length mismatch)");
    }
    ByteSpan content = der.subspan(2);
    // X.690 §8.3.2: the first nine bits must not be all zero or all one.
    if (content.size() > 1 && ((content[0] == 0x00 && (content[1] & 0x80) == 0) ||
                               (content[0] == 0xff && (content[1] & 0x80) != 0))) {
        return error(Errc::kInvalidArgument, "not a canonical DER INTEGER (non-minimal encoding)");
    }
    if ((content[0] & 0x80) != 0) {
        return error(Errc::kInvalidArgument, "negative INTEGER");
    }
    if (content.size() > 2 || (content.size() == 2 && content[0] != 0x00)) {
        return error(Errc::kInvalidArgument, "INTEGER out of range 0..255");
    }
    return content.back();
}

Result<VcekExtensions> parse_vcek_extensions(const crypto::Certificate& vcek) {
    COFFER_CHECK(!vcek.empty(), "parse_vcek_extensions on an empty Certificate");
    VcekExtensions ext;
    COFFER_ASSIGN_OR_RETURN(ext.boot_loader_spl,
                            spl_extension(vcek, "blSPL", kVcekOidBootLoaderSpl));
    COFFER_ASSIGN_OR_RETURN(ext.tee_spl, spl_extension(vcek, "teeSPL", kVcekOidTeeSpl));
    COFFER_ASSIGN_OR_RETURN(ext.snp_spl, spl_extension(vcek, "snpSPL", kVcekOidSnpSpl));
    COFFER_ASSIGN_OR_RETURN(ext.microcode_spl,
                            spl_extension(vcek, "ucodeSPL", kVcekOidMicrocodeSpl));
    COFFER_ASSIGN_OR_RETURN(ext.hardware_id, hardware_id_extension(vcek));
    ext.product_name = product_name_extension(vcek);
    return ext;
}

Status check_vcek_matches_report(const VcekExtensions& ext, const SnpReport& report) {
    const SnpTcb& tcb = report.reported_tcb;
    if (ext.boot_loader_spl != tcb.boot_loader || ext.tee_spl != tcb.tee ||
        ext.snp_spl != tcb.snp || ext.microcode_spl != tcb.microcode) {
        return error(Errc::kPermissionDenied,
                     fmt::format("VCEK TCB does not match the report's reported TCB: VCEK has "
                                 "bl=0x{:02x} tee=0x{:02x} snp=0x{:02x} ucode=0x{:02x}, report "
                                 "has {}",
                                 ext.boot_loader_spl, ext.tee_spl, ext.snp_spl, ext.microcode_spl,
                                 tcb.to_string()));
    }
    if (ext.hardware_id.size() != report.chip_id.size() ||
        !std::equal(ext.hardware_id.begin(), ext.hardware_id.end(), report.chip_id.begin())) {
        return error(Errc::kPermissionDenied,
                     "VCEK hardware ID does not match the report's chip ID (the VCEK belongs to "
                     "another chip, or the chip ID is masked by the guest policy)");
    }
    return {};
}

}  // namespace coffer::attestation
