// The real AMD SEV-SNP reports and endorsements of the shared reference data.
#include <gtest/gtest.h>

#include "attestation/snp.h"
#include "attestation/tests/test_util.h"

namespace coffer::attestation {
namespace {

using testing::bundle_cert_pem;
using testing::data_path;
using testing::message_contains;
using testing::read_file;
using testing::read_file_bytes;
using testing::reorder_bundle;

constexpr const char* kMilanReport = "snp/milan_attestation.bin";
constexpr const char* kMilanEndorsements = "snp/milan_endorsements.pem";
constexpr const char* kV2Report = "snp/v2_format_milan_attestation.bin";

class MilanReport : public ::testing::Test {
  protected:
    void SetUp() override {
        COFFER_REQUIRE_DATA(kMilanReport);
        COFFER_REQUIRE_DATA(kMilanEndorsements);
        report_ = read_file_bytes(data_path(kMilanReport));
        bundle_ = read_file(data_path(kMilanEndorsements));
        pinned_.trusted_root_pem = bundle_cert_pem(bundle_, 2);
    }

    // A self-consistent chain made by the test, claiming the Milan report's chip and TCB.
    testing::TestChain impostor_chain() const {
        auto parsed = parse_snp_report(report_);
        COFFER_CHECK(parsed.ok(), "Milan report parses");
        return testing::make_test_chain(
            testing::vcek_extensions_for(parsed->reported_tcb, parsed->chip_id));
    }

    Bytes report_;
    std::string bundle_;
    SnpVerifyOptions pinned_;
};

TEST_F(MilanReport, VerifiesAgainstPinnedArk) {
    auto claims = verify_snp_report(report_, bundle_, pinned_);
    ASSERT_TRUE(claims.ok()) << claims.status().to_string();

    EXPECT_EQ(claims->kind, PlatformKind::kSevSnp);
    EXPECT_TRUE(claims->hardware_backed);
    EXPECT_TRUE(claims->root_pinned);
    ASSERT_TRUE(claims->snp_report.has_value());
    EXPECT_EQ(claims->snp_report->version, 3u);
    ASSERT_TRUE(claims->reported_tcb.has_value());
    EXPECT_EQ(claims->reported_tcb->boot_loader, 0x04);
    EXPECT_EQ(claims->reported_tcb->tee, 0x00);
    EXPECT_EQ(claims->reported_tcb->snp, 0x18);
    EXPECT_EQ(claims->reported_tcb->microcode, 0xdb);
    EXPECT_EQ(claims->measurement.size(), kSnpMeasurementSize);
    EXPECT_EQ(claims->report_data.size(), kSnpReportDataSize);
    EXPECT_EQ(claims->product_name, "Milan-B0");
}

TEST_F(MilanReport, ParsesFieldsAtSpecOffsets) {
    auto parsed = parse_snp_report(report_);
    ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
    EXPECT_EQ(parsed->signature_algo, kSnpSignatureAlgoEcdsaP384Sha384);
    EXPECT_EQ(parsed->signing_key(), static_cast<uint8_t>(SnpSigningKey::kVcek));
    EXPECT_FALSE(parsed->debug_allowed());
    EXPECT_EQ(parsed->cpuid_family, 0x19);
    EXPECT_EQ(parsed->cpuid_model, 0x01);
    EXPECT_EQ(parsed->current_major, 1);
    EXPECT_EQ(parsed->current_minor, 0x37);
    EXPECT_EQ(to_hex(ByteSpan(parsed->measurement).first(4)), "5feee30d");
    EXPECT_EQ(to_hex(ByteSpan(parsed->chip_id).first(4)), "4ffb5cb4");
}

TEST_F(MilanReport, DescribeShowsTcbAndTrust) {
    auto claims = verify_snp_report(report_, bundle_, pinned_);
    ASSERT_TRUE(claims.ok()) << claims.status().to_string();
    std::string text = describe(*claims);
    EXPECT_NE(text.find("bl=0x04 tee=0x00 snp=0x18 ucode=0xdb"), std::string::npos) << text;
    EXPECT_NE(text.find("root pinned:    yes"), std::string::npos) << text;
    EXPECT_NE(text.find("4ffb5cb4fd594f3f"), std::string::npos) << text;
    EXPECT_NE(text.find("debug disabled"), std::string::npos) << text;
}

TEST_F(MilanReport, UnpinnedRootVerifiesButIsNotHardwareBacked) {
    auto claims = verify_snp_report(report_, bundle_, SnpVerifyOptions{});
    ASSERT_TRUE(claims.ok()) << claims.status().to_string();
    EXPECT_FALSE(claims->root_pinned);
    EXPECT_FALSE(claims->hardware_backed);
    EXPECT_NE(claims->summary.find("ROOT NOT PINNED"), std::string::npos);
}

TEST_F(MilanReport, TestChainIsRefusedByPinnedMilanArk) {
    auto chain = impostor_chain();
    auto claims = verify_snp_report(report_, chain.bundle_pem(), pinned_);
    EXPECT_EQ(claims.status().code(), Errc::kCrypto);
    EXPECT_TRUE(message_contains(claims.status(), "certificate chain does not verify"));
}

TEST_F(MilanReport, ImpostorVcekClaimingTheSameChipFailsTheSignature) {
    auto chain = impostor_chain();
    SnpVerifyOptions options;
    options.trusted_root_pem = chain.ark.to_pem();
    auto claims = verify_snp_report(report_, chain.bundle_pem(), options);
    EXPECT_TRUE(message_contains(claims.status(), "report signature does not verify"));
}

TEST_F(MilanReport, MilanVcekUnderForeignAskFailsNamingTheChain) {
    auto chain = impostor_chain();
    std::string mixed =
        bundle_cert_pem(bundle_, 0) + chain.ask.to_pem() + bundle_cert_pem(bundle_, 2);
    auto claims = verify_snp_report(report_, mixed, pinned_);
    EXPECT_TRUE(message_contains(claims.status(), "certificate chain does not verify"));
    EXPECT_TRUE(message_contains(claims.status(), "is not signed by ARK"));
}

TEST_F(MilanReport, SwappedAskAndArkFail) {
    std::string swapped = reorder_bundle(bundle_, {0, 2, 1});
    auto pinned = verify_snp_report(report_, swapped, pinned_);
    EXPECT_TRUE(message_contains(pinned.status(), "certificate chain does not verify"));

    auto unpinned = verify_snp_report(report_, swapped, SnpVerifyOptions{});
    EXPECT_TRUE(message_contains(unpinned.status(), "certificate chain does not verify"));
    EXPECT_TRUE(message_contains(unpinned.status(), "not self-signed"));
}

TEST_F(MilanReport, BundleWithoutArkIsRefused) {
    std::string two = reorder_bundle(bundle_, {0, 1});
    auto claims = verify_snp_report(report_, two, pinned_);
    EXPECT_EQ(claims.status().code(), Errc::kInvalidArgument);
    EXPECT_TRUE(message_contains(claims.status(), "VCEK, ASK and ARK"));
}

TEST_F(MilanReport, ExpiredCertificatesFailWhenTimeIsChecked) {
    SnpVerifyOptions options = pinned_;
    options.at_unix_time = 4'000'000'000;  // 2096, after every certificate expired
    auto claims = verify_snp_report(report_, bundle_, options);
    EXPECT_TRUE(message_contains(claims.status(), "certificate chain does not verify"));

    options.at_unix_time = 1'800'000'000;  // 2027, within every validity period
    EXPECT_TRUE(verify_snp_report(report_, bundle_, options).ok());
}

// Every byte of the signed region is covered: a flip is refused, and when no earlier check
// catches it (version, flags, policy, TCB, chip id), the signature check does.
TEST_F(MilanReport, AnyFlippedByteInSignedRegionIsRefused) {
    namespace o = snp_offsets;
    for (size_t i = 0; i < kSnpSignedSize; ++i) {
        Bytes tampered = report_;
        tampered[i] ^= 0x01;
        auto claims = verify_snp_report(tampered, bundle_, pinned_);
        ASSERT_FALSE(claims.ok()) << "flip at offset " << i << " was accepted";
        size_t tcb_byte = i - o::kReportedTcb;
        bool tcb_compared = i >= o::kReportedTcb && i < o::kReportedTcb + kSnpTcbSize &&
                            (tcb_byte < 2 || tcb_byte >= 6);
        bool caught_earlier = i < 4 || (i >= o::kSignatureAlgo && i < o::kSignatureAlgo + 4) ||
                              tcb_compared || (i >= o::kChipId && i < o::kChipId + kSnpChipIdSize);
        if (!caught_earlier) {
            ASSERT_TRUE(message_contains(claims.status(), "report signature does not verify"))
                << "offset " << i;
        }
    }
}

TEST_F(MilanReport, FlippedSignatureByteIsRefused) {
    for (size_t i : {snp_offsets::kSignatureR, snp_offsets::kSignatureR + 47,
                     snp_offsets::kSignatureS + 10, snp_offsets::kSignatureR + 60}) {
        Bytes tampered = report_;
        tampered[i] ^= 0x80;
        auto claims = verify_snp_report(tampered, bundle_, pinned_);
        EXPECT_TRUE(message_contains(claims.status(), "report signature does not verify"))
            << "offset " << i;
    }
}

TEST_F(MilanReport, TruncatedOrExtendedReportIsRefusedBySize) {
    Bytes truncated(report_.begin(), report_.end() - 1);
    auto claims = verify_snp_report(truncated, bundle_, pinned_);
    EXPECT_EQ(claims.status().code(), Errc::kInvalidArgument);
    EXPECT_TRUE(message_contains(claims.status(), "must be 1184 bytes, got 1183"));

    Bytes extended = report_;
    extended.push_back(0);
    EXPECT_TRUE(message_contains(verify_snp_report(extended, bundle_, pinned_).status(),
                                 "must be 1184 bytes, got 1185"));
    EXPECT_FALSE(verify_snp_report(Bytes{}, bundle_, pinned_).ok());
}

TEST(SnpV2Report, IsRefusedAsUnsupportedVersion) {
    COFFER_REQUIRE_DATA(kV2Report);
    COFFER_REQUIRE_DATA(kMilanEndorsements);
    Bytes report = read_file_bytes(data_path(kV2Report));
    std::string bundle = read_file(data_path(kMilanEndorsements));

    auto parsed = parse_snp_report(report);
    EXPECT_EQ(parsed.status().code(), Errc::kUnsupported);
    EXPECT_TRUE(message_contains(parsed.status(), "unsupported report version 2"));

    auto claims = verify_snp_report(report, bundle, SnpVerifyOptions{});
    EXPECT_TRUE(message_contains(claims.status(), "unsupported report version 2"));
}

}  // namespace
}  // namespace coffer::attestation
