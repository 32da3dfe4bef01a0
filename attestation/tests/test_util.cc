#include "attestation/tests/test_util.h"

#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "attestation/vcek.h"

namespace coffer::attestation::testing {
namespace {

constexpr int64_t kNotBefore = 1'600'000'000;  // 2020-09
constexpr int64_t kNotAfter = 2'500'000'000;   // 2049-03
constexpr long kVcekValiditySeconds = 20L * 365 * 24 * 3600;

template <typename T>
T must(Result<T> r, const char* what) {
    COFFER_CHECK(r.ok(), std::string(what) + ": " + r.status().to_string());
    return std::move(r).value();
}

Bytes der_u8(uint8_t v) {
    if (v >= 0x80) {
        return {0x02, 0x02, 0x00, v};
    }
    return {0x02, 0x01, v};
}

void add_raw_extension(X509* x, const std::string& oid, const Bytes& value) {
    ASN1_OBJECT* obj = OBJ_txt2obj(oid.c_str(), 1);
    ASN1_OCTET_STRING* data = ASN1_OCTET_STRING_new();
    COFFER_CHECK(obj != nullptr && data != nullptr, "test extension allocation");
    COFFER_CHECK(ASN1_OCTET_STRING_set(data, value.data(), static_cast<int>(value.size())) == 1,
                 "ASN1_OCTET_STRING_set");
    X509_EXTENSION* ext = X509_EXTENSION_create_by_OBJ(nullptr, obj, 0, data);
    COFFER_CHECK(ext != nullptr && X509_add_ext(x, ext, -1) == 1, "X509_add_ext");
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(data);
    ASN1_OBJECT_free(obj);
}

// A VCEK issued by the ASK the way AMD's KDS issues them: no basicConstraints, AMD
// extensions only, signed with SHA-384.
crypto::Certificate make_vcek(const crypto::EcdsaPrivateKey& vcek_key,
                              const crypto::EcdsaPrivateKey& ask_key,
                              const crypto::Certificate& ask, const ExtensionMap& extensions) {
    X509* x = X509_new();
    COFFER_CHECK(x != nullptr, "X509_new");
    COFFER_CHECK(X509_set_version(x, 2) == 1, "X509_set_version");
    COFFER_CHECK(ASN1_INTEGER_set(X509_get_serialNumber(x), 7) == 1, "serial");

    X509_NAME* name = X509_NAME_new();
    COFFER_CHECK(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                            reinterpret_cast<const unsigned char*>("SEV-VCEK"), -1,
                                            -1, 0) == 1,
                 "subject name");
    COFFER_CHECK(X509_set_subject_name(x, name) == 1, "X509_set_subject_name");
    X509_NAME_free(name);
    COFFER_CHECK(X509_set_issuer_name(x, X509_get_subject_name(ask.native())) == 1,
                 "X509_set_issuer_name");
    COFFER_CHECK(X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, nullptr) != nullptr, "notBefore");
    COFFER_CHECK(
        X509_time_adj_ex(X509_getm_notAfter(x), 0, kVcekValiditySeconds, nullptr) != nullptr,
        "notAfter");
    COFFER_CHECK(X509_set_pubkey(x, vcek_key.native()) == 1, "X509_set_pubkey");

    for (const auto& [oid, value] : extensions) {
        add_raw_extension(x, oid, value);
    }
    COFFER_CHECK(X509_sign(x, ask_key.native(), EVP_sha384()) > 0, "X509_sign");
    return crypto::Certificate::adopt(x);
}

void put_tcb(Bytes& report, size_t offset, const SnpTcb& tcb) {
    report[offset] = tcb.boot_loader;
    report[offset + 1] = tcb.tee;
    std::copy(tcb.reserved.begin(), tcb.reserved.end(), report.begin() + offset + 2);
    report[offset + 6] = tcb.snp;
    report[offset + 7] = tcb.microcode;
}

void put_u32_at(Bytes& report, size_t offset, uint32_t v) {
    for (size_t i = 0; i < 4; ++i) {
        report[offset + i] = static_cast<uint8_t>(v >> (8 * i));
    }
}

}  // namespace

Bytes read_file_bytes(const std::string& path) {
    return to_bytes(read_file(path));
}

std::string bundle_cert_pem(const std::string& bundle, size_t index) {
    auto certs = must(crypto::Certificate::chain_from_pem(bundle), "test bundle");
    COFFER_CHECK(index < certs.size(), "bundle index");
    return certs[index].to_pem();
}

std::string reorder_bundle(const std::string& bundle, std::initializer_list<size_t> order) {
    std::string out;
    for (size_t i : order) {
        out += bundle_cert_pem(bundle, i);
    }
    return out;
}

ExtensionMap vcek_extensions_for(const SnpTcb& tcb, ByteSpan chip_id) {
    return {
        {std::string(kVcekOidBootLoaderSpl), der_u8(tcb.boot_loader)},
        {std::string(kVcekOidTeeSpl), der_u8(tcb.tee)},
        {std::string(kVcekOidSnpSpl), der_u8(tcb.snp)},
        {std::string(kVcekOidMicrocodeSpl), der_u8(tcb.microcode)},
        {std::string(kVcekOidHardwareId), Bytes(chip_id.begin(), chip_id.end())},
    };
}

std::string TestChain::bundle_pem() const {
    return vcek.to_pem() + ask.to_pem() + ark.to_pem();
}

TestChain make_test_chain(const ExtensionMap& extensions) {
    auto ark_key = must(crypto::EcdsaPrivateKey::generate(), "ARK key");
    auto ask_key = must(crypto::EcdsaPrivateKey::generate(), "ASK key");
    auto vcek_key = must(crypto::EcdsaPrivateKey::generate(), "VCEK key");

    crypto::CertificateOptions ca;
    ca.common_name = "Test-ARK";
    ca.not_before_unix = kNotBefore;
    ca.not_after_unix = kNotAfter;
    ca.is_ca = true;
    auto ark = must(crypto::make_self_signed_certificate(ark_key, ca), "ARK certificate");
    ca.common_name = "Test-ASK";
    auto ask = must(crypto::make_issued_certificate(ask_key.public_key(), ca, ark_key, ark),
                    "ASK certificate");
    auto vcek = make_vcek(vcek_key, ask_key, ask, extensions);
    return TestChain{ark_key, ask_key, vcek_key, ark, ask, vcek};
}

Bytes make_signed_report(const SyntheticReport& fields, const crypto::EcdsaPrivateKey& vcek_key) {
    namespace o = snp_offsets;
    Bytes report(kSnpReportSize, 0);
    put_u32_at(report, o::kVersion, fields.version);
    put_u32_at(report, o::kPolicy, static_cast<uint32_t>(fields.policy));
    put_u32_at(report, o::kPolicy + 4, static_cast<uint32_t>(fields.policy >> 32));
    put_u32_at(report, o::kSignatureAlgo, fields.signature_algo);
    put_tcb(report, o::kCurrentTcb, fields.current_tcb);
    put_u32_at(report, o::kFlags, fields.flags);
    std::copy(fields.report_data.begin(), fields.report_data.end(),
              report.begin() + o::kReportData);
    std::copy(fields.measurement.begin(), fields.measurement.end(),
              report.begin() + o::kMeasurement);
    put_tcb(report, o::kReportedTcb, fields.reported_tcb);
    report[o::kCpuidFamily] = 0x19;
    report[o::kCpuidModel] = 0x01;
    report[o::kCpuidStepping] = 0x01;
    std::copy(fields.chip_id.begin(), fields.chip_id.end(), report.begin() + o::kChipId);
    put_tcb(report, o::kCommittedTcb, fields.current_tcb);
    put_tcb(report, o::kLaunchTcb, fields.current_tcb);
    resign_report(report, vcek_key);
    return report;
}

void resign_report(Bytes& report, const crypto::EcdsaPrivateKey& vcek_key) {
    COFFER_CHECK(report.size() == kSnpReportSize, "synthetic report size");
    Bytes p1363 = must(vcek_key.sign_p1363(ByteSpan(report).first(kSnpSignedSize)), "sign");
    std::fill(report.begin() + snp_offsets::kSignature, report.end(), 0);
    auto put_le = [&](size_t field, size_t from) {
        for (size_t i = 0; i < crypto::kP384ScalarSize; ++i) {
            report[field + i] = p1363[from + crypto::kP384ScalarSize - 1 - i];
        }
    };
    put_le(snp_offsets::kSignatureR, 0);
    put_le(snp_offsets::kSignatureS, crypto::kP384ScalarSize);
}

::testing::AssertionResult message_contains(const Status& status, std::string_view needle) {
    if (status.ok()) {
        return ::testing::AssertionFailure()
               << "expected an error containing \"" << needle << "\", got ok";
    }
    if (status.message().find(needle) == std::string::npos) {
        return ::testing::AssertionFailure()
               << "expected an error containing \"" << needle << "\", got " << status.to_string();
    }
    return ::testing::AssertionSuccess();
}

}  // namespace coffer::attestation::testing
