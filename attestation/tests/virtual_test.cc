// The virtual platform: evidence format, key binding, measurement, JSON.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "attestation/platform.h"
#include "attestation/tests/test_util.h"
#include "attestation/virtual_evidence.h"
#include "crypto/ecdsa.h"
#include "crypto/sha256.h"

namespace coffer::attestation {
namespace {

using testing::message_contains;

Bytes test_measurement() {
    return Bytes(kVirtualMeasurementSize, 0x42);
}

Bytes new_public_key_der() {
    auto key = crypto::EcdsaPrivateKey::generate();
    COFFER_CHECK(key.ok(), "key generation");
    return key->public_key().to_der();
}

Evidence virtual_evidence_for(ByteSpan public_key_der) {
    VirtualPlatform platform(test_measurement());
    auto evidence = platform.get_evidence(report_data_for_key(public_key_der));
    COFFER_CHECK(evidence.ok(), "virtual evidence");
    return std::move(evidence).value();
}

TEST(VirtualPlatform, EvidenceBindsTheNodeKey) {
    Bytes key = new_public_key_der();
    Bytes other = new_public_key_der();
    Evidence evidence = virtual_evidence_for(key);
    EXPECT_EQ(evidence.kind, PlatformKind::kVirtual);
    EXPECT_EQ(evidence.report.size(), kVirtualReportSize);

    auto claims = verify_evidence(evidence, VerifyOptions{});
    ASSERT_TRUE(claims.ok()) << claims.status().to_string();
    EXPECT_TRUE(check_key_binding(*claims, key).ok());
    Status wrong = check_key_binding(*claims, other);
    EXPECT_EQ(wrong.code(), Errc::kPermissionDenied);
    EXPECT_TRUE(message_contains(wrong, "does not bind this public key"));
}

TEST(VirtualPlatform, ReportDataIsKeyHashFollowedByZeros) {
    Bytes key = new_public_key_der();
    Bytes data = report_data_for_key(key);
    ASSERT_EQ(data.size(), kReportDataSize);
    crypto::Sha256Digest digest = crypto::sha256(key);
    EXPECT_TRUE(std::equal(digest.begin(), digest.end(), data.begin()));
    EXPECT_TRUE(std::all_of(data.begin() + 32, data.end(), [](uint8_t b) { return b == 0; }));

    // Only the first 32 bytes bound and the rest not zero must not pass the binding check.
    VerifiedClaims claims;
    claims.report_data = data;
    claims.report_data[40] = 1;
    EXPECT_FALSE(check_key_binding(claims, key).ok());
}

TEST(VirtualPlatform, EvidenceIsNeverHardwareBacked) {
    Evidence evidence = virtual_evidence_for(new_public_key_der());
    auto claims = verify_evidence(evidence, VerifyOptions{});
    ASSERT_TRUE(claims.ok());
    EXPECT_FALSE(claims->hardware_backed);
    EXPECT_EQ(claims->measurement, test_measurement());
    EXPECT_NE(claims->summary.find("INSECURE"), std::string::npos);
    EXPECT_NE(describe(*claims).find("hardware-backed: NO"), std::string::npos);

    VerifyOptions strict;
    strict.require_hardware_backed = true;
    auto refused = verify_evidence(evidence, strict);
    EXPECT_EQ(refused.status().code(), Errc::kPermissionDenied);
    EXPECT_TRUE(message_contains(refused.status(), "not hardware-backed"));
}

TEST(VirtualPlatform, ReportCarriesTheInsecureLabel) {
    Evidence evidence = virtual_evidence_for(new_public_key_der());
    std::string text = to_string(evidence.report);
    EXPECT_NE(text.find("insecure: not hardware-backed"), std::string::npos);
    EXPECT_NE(text.find("virtual"), std::string::npos);
}

TEST(VirtualPlatform, TooLongReportDataIsRefused) {
    VirtualPlatform platform(test_measurement());
    EXPECT_EQ(platform.get_evidence(Bytes(65, 1)).status().code(), Errc::kInvalidArgument);
    auto short_data = platform.get_evidence(Bytes(3, 7));
    ASSERT_TRUE(short_data.ok());
    auto parsed = parse_virtual_report(short_data->report);
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(parsed->report_data[2], 7);
    EXPECT_EQ(parsed->report_data[3], 0);
}

TEST(MeasureBinary, IsSha256OfTheFile) {
    std::string path = ::testing::TempDir() + "/coffer_attestation_measure_test.bin";
    std::string contents(200'000, 'x');
    contents += "tail";
    {
        std::ofstream out(path, std::ios::binary);
        out << contents;
    }
    auto measured = measure_binary(path);
    std::remove(path.c_str());
    ASSERT_TRUE(measured.ok()) << measured.status().to_string();
    crypto::Sha256Digest expected = crypto::sha256(as_bytes(contents));
    EXPECT_EQ(*measured, Bytes(expected.begin(), expected.end()));
}

TEST(MeasureBinary, MeasuresTheRunningBinaryAndRefusesMissingFiles) {
    auto self = measure_binary("/proc/self/exe");
    ASSERT_TRUE(self.ok()) << self.status().to_string();
    EXPECT_EQ(self->size(), kVirtualMeasurementSize);
    EXPECT_EQ(measure_binary("/nonexistent/coffer-node").status().code(), Errc::kIo);
}

TEST(VirtualEvidenceJson, RoundTrips) {
    Evidence evidence = virtual_evidence_for(new_public_key_der());
    nlohmann::json json = to_json(evidence);
    EXPECT_EQ(json.at("platform"), "virtual");
    EXPECT_FALSE(json.contains("endorsements"));

    auto back = evidence_from_json(nlohmann::json::parse(json.dump()));
    ASSERT_TRUE(back.ok()) << back.status().to_string();
    EXPECT_EQ(back->kind, evidence.kind);
    EXPECT_EQ(back->report, evidence.report);
    EXPECT_TRUE(back->endorsements_pem.empty());
}

TEST(VirtualEvidenceJson, SnpEvidenceRoundTripsWithEndorsements) {
    Evidence evidence{PlatformKind::kSevSnp, Bytes(kSnpReportSize, 3), "-----BEGIN X-----\n"};
    auto back = evidence_from_json(to_json(evidence));
    ASSERT_TRUE(back.ok()) << back.status().to_string();
    EXPECT_EQ(back->kind, PlatformKind::kSevSnp);
    EXPECT_EQ(back->report, evidence.report);
    EXPECT_EQ(back->endorsements_pem, evidence.endorsements_pem);
}

TEST(VirtualEvidenceJson, MalformedJsonIsRejected) {
    nlohmann::json good = to_json(virtual_evidence_for(new_public_key_der()));
    std::vector<nlohmann::json> bad = {
        nlohmann::json::array(),
        nlohmann::json("text"),
        nlohmann::json::object(),
        {{"platform", "virtual"}},
        {{"platform", "tdx"}, {"report", good.at("report")}},
        {{"platform", 1}, {"report", good.at("report")}},
        {{"platform", "virtual"}, {"report", "not base64!"}},
        {{"platform", "virtual"}, {"report", 5}},
        {{"platform", "virtual"}, {"report", good.at("report")}, {"extra", 1}},
        {{"platform", "virtual"}, {"report", good.at("report")}, {"endorsements", "PEM"}},
        {{"platform", "sev-snp"}, {"report", good.at("report")}, {"endorsements", 7}},
        {{"platform", "virtual"}, {"report", std::string(8000, 'A')}},
    };
    for (const auto& json : bad) {
        auto evidence = evidence_from_json(json);
        EXPECT_EQ(evidence.status().code(), Errc::kInvalidArgument) << json.dump().substr(0, 80);
    }
}

TEST(VirtualEvidence, MalformedReportsAreRejected) {
    Bytes good = virtual_evidence_for(new_public_key_der()).report;
    auto verify_bytes = [](Bytes report) {
        return verify_evidence(Evidence{PlatformKind::kVirtual, std::move(report), ""},
                               VerifyOptions{});
    };
    ASSERT_TRUE(verify_bytes(good).ok());

    Bytes truncated(good.begin(), good.end() - 1);
    EXPECT_TRUE(message_contains(verify_bytes(truncated).status(), "must be 140 bytes"));
    EXPECT_TRUE(message_contains(verify_bytes(Bytes{1, 0}).status(), "truncated"));

    Bytes version = good;
    version[0] = 2;
    EXPECT_EQ(verify_bytes(version).status().code(), Errc::kUnsupported);

    Bytes platform = good;
    platform[virtual_offsets::kPlatform] = 'V';
    EXPECT_TRUE(message_contains(verify_bytes(platform).status(), "platform"));

    Bytes label = good;
    label[virtual_offsets::kLabel + 3] = 'E';
    EXPECT_TRUE(message_contains(verify_bytes(label).status(), "label"));

    Bytes padding = good;
    padding[virtual_offsets::kLabel + kVirtualLabelSize - 1] = 1;
    EXPECT_FALSE(verify_bytes(padding).ok());

    Evidence with_endorsements{PlatformKind::kVirtual, good, "PEM"};
    EXPECT_FALSE(verify_evidence(with_endorsements, VerifyOptions{}).ok());
}

TEST(VirtualEvidence, VirtualReportPresentedAsSnpIsRejected) {
    Bytes report = virtual_evidence_for(new_public_key_der()).report;
    auto claims = verify_evidence(Evidence{PlatformKind::kSevSnp, report, ""}, VerifyOptions{});
    EXPECT_TRUE(message_contains(claims.status(), "must be 1184 bytes"));
}

TEST(PlatformKindName, RoundTripsAndRejectsUnknownNames) {
    for (PlatformKind kind : {PlatformKind::kVirtual, PlatformKind::kSevSnp}) {
        EXPECT_EQ(*platform_kind_from_name(platform_kind_name(kind)), kind);
    }
    EXPECT_FALSE(platform_kind_from_name("SEV-SNP").ok());
}

}  // namespace
}  // namespace coffer::attestation
