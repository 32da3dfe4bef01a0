// Synthetic SEV-SNP reports signed by a test-only chain (field case ATT-1): reported vs
// current TCB, signing-key field, exact VCEK extensions, debug policy, version.
#include <gtest/gtest.h>

#include "attestation/snp.h"
#include "attestation/tests/test_util.h"
#include "attestation/vcek.h"

namespace coffer::attestation {
namespace {

using testing::ExtensionMap;
using testing::make_signed_report;
using testing::make_test_chain;
using testing::message_contains;
using testing::SyntheticReport;
using testing::TestChain;
using testing::vcek_extensions_for;

SyntheticReport base_fields() {
    SyntheticReport f;
    f.current_tcb.boot_loader = 0x07;
    f.current_tcb.tee = 0x01;
    f.current_tcb.snp = 0x19;
    f.current_tcb.microcode = 0xdc;
    // The host may report an older TCB than the one running (to keep using an older VCEK);
    // the VCEK must be the one for the reported TCB.
    f.reported_tcb.boot_loader = 0x04;
    f.reported_tcb.tee = 0x00;
    f.reported_tcb.snp = 0x18;
    f.reported_tcb.microcode = 0xdb;
    for (size_t i = 0; i < f.chip_id.size(); ++i) {
        f.chip_id[i] = static_cast<uint8_t>(0xA0 + i);
    }
    f.measurement.fill(0x5a);
    f.report_data.fill(0x11);
    return f;
}

SnpVerifyOptions pinned_to(const TestChain& chain) {
    SnpVerifyOptions options;
    options.trusted_root_pem = chain.ark.to_pem();
    return options;
}

class SyntheticSnp : public ::testing::Test {
  protected:
    SyntheticSnp()
        : fields_(base_fields()),
          chain_(make_test_chain(vcek_extensions_for(fields_.reported_tcb, fields_.chip_id))) {}

    Result<VerifiedClaims> verify(const Bytes& report) const {
        return verify_snp_report(report, chain_.bundle_pem(), pinned_to(chain_));
    }

    // A chain whose VCEK has `extensions`, and the base report signed by that VCEK.
    Result<VerifiedClaims> verify_with_extensions(const ExtensionMap& extensions) const {
        TestChain chain = make_test_chain(extensions);
        Bytes report = make_signed_report(fields_, chain.vcek_key);
        return verify_snp_report(report, chain.bundle_pem(), pinned_to(chain));
    }

    SyntheticReport fields_;
    TestChain chain_;
};

TEST_F(SyntheticSnp, VcekForReportedTcbVerifiesWhenCurrentTcbDiffers) {
    ASSERT_NE(fields_.current_tcb, fields_.reported_tcb);
    auto claims = verify(make_signed_report(fields_, chain_.vcek_key));
    ASSERT_TRUE(claims.ok()) << claims.status().to_string();
    EXPECT_EQ(*claims->reported_tcb, fields_.reported_tcb);
    EXPECT_EQ(claims->snp_report->current_tcb, fields_.current_tcb);
    EXPECT_EQ(claims->measurement, Bytes(fields_.measurement.begin(), fields_.measurement.end()));
    EXPECT_TRUE(claims->hardware_backed);
}

TEST_F(SyntheticSnp, VcekForCurrentTcbIsRejected) {
    auto claims = verify_with_extensions(vcek_extensions_for(fields_.current_tcb, fields_.chip_id));
    EXPECT_EQ(claims.status().code(), Errc::kPermissionDenied);
    EXPECT_TRUE(
        message_contains(claims.status(), "VCEK TCB does not match the report's reported TCB"));
}

TEST_F(SyntheticSnp, EachTcbComponentIsCompared) {
    for (int component = 0; component < 4; ++component) {
        SnpTcb tcb = fields_.reported_tcb;
        uint8_t* fields[] = {&tcb.boot_loader, &tcb.tee, &tcb.snp, &tcb.microcode};
        *fields[component] += 1;
        auto claims = verify_with_extensions(vcek_extensions_for(tcb, fields_.chip_id));
        EXPECT_TRUE(message_contains(claims.status(), "VCEK TCB does not match"))
            << "component " << component;
    }
}

// A bad signature shows that the signing-key check runs before any signature check.
TEST_F(SyntheticSnp, VlekOrReservedSigningKeyIsRejectedBeforeSignature) {
    for (uint32_t key : {1u, 2u, 6u, 7u}) {
        SyntheticReport f = fields_;
        f.flags = key << kSnpFlagsSigningKeyShift;
        Bytes report = make_signed_report(f, chain_.vcek_key);
        report[snp_offsets::kSignatureR] ^= 0xff;
        auto claims = verify(report);
        EXPECT_EQ(claims.status().code(), Errc::kUnsupported) << "key " << key;
        EXPECT_TRUE(message_contains(claims.status(), "unsupported signing key")) << "key " << key;
    }
    SyntheticReport vlek = fields_;
    vlek.flags = 1u << kSnpFlagsSigningKeyShift;
    EXPECT_TRUE(message_contains(verify(make_signed_report(vlek, chain_.vcek_key)).status(),
                                 "unsupported signing key: VLEK"));
}

TEST_F(SyntheticSnp, VcekWithoutHardwareIdIsRejected) {
    ExtensionMap ext = vcek_extensions_for(fields_.reported_tcb, fields_.chip_id);
    ext.erase(std::string(kVcekOidHardwareId));
    auto claims = verify_with_extensions(ext);
    EXPECT_TRUE(message_contains(claims.status(), "VCEK hardware ID extension"));
    EXPECT_TRUE(message_contains(claims.status(), "missing"));
}

TEST_F(SyntheticSnp, VcekWith63ByteHardwareIdIsRejected) {
    ExtensionMap ext = vcek_extensions_for(fields_.reported_tcb, fields_.chip_id);
    ext[std::string(kVcekOidHardwareId)].pop_back();
    auto claims = verify_with_extensions(ext);
    EXPECT_TRUE(message_contains(claims.status(), "VCEK hardware ID extension"));
    EXPECT_TRUE(message_contains(claims.status(), "must be 64 bytes, got 63"));
}

TEST_F(SyntheticSnp, VcekForAnotherChipIsRejected) {
    std::array<uint8_t, kSnpChipIdSize> other = fields_.chip_id;
    other[63] ^= 1;
    auto claims = verify_with_extensions(vcek_extensions_for(fields_.reported_tcb, other));
    EXPECT_TRUE(message_contains(claims.status(), "VCEK hardware ID does not match"));
}

TEST_F(SyntheticSnp, NonCanonicalTcbExtensionIsRejectedNamingIt) {
    const std::pair<std::string_view, std::string_view> extensions[] = {
        {kVcekOidBootLoaderSpl, "blSPL"},
        {kVcekOidTeeSpl, "teeSPL"},
        {kVcekOidSnpSpl, "snpSPL"},
        {kVcekOidMicrocodeSpl, "ucodeSPL"},
    };
    for (const auto& [oid, name] : extensions) {
        ExtensionMap ext = vcek_extensions_for(fields_.reported_tcb, fields_.chip_id);
        ext[std::string(oid)] = Bytes{0x02, 0x02, 0x00, 0x05};
        auto claims = verify_with_extensions(ext);
        EXPECT_EQ(claims.status().code(), Errc::kInvalidArgument) << name;
        EXPECT_TRUE(message_contains(claims.status(), name));
        EXPECT_TRUE(message_contains(claims.status(), oid));
        EXPECT_TRUE(message_contains(claims.status(), "non-minimal"));
    }
}

TEST_F(SyntheticSnp, MissingTcbExtensionIsRejectedNamingIt) {
    ExtensionMap ext = vcek_extensions_for(fields_.reported_tcb, fields_.chip_id);
    ext.erase(std::string(kVcekOidSnpSpl));
    EXPECT_TRUE(message_contains(verify_with_extensions(ext).status(),
                                 "VCEK extension snpSPL (1.3.6.1.4.1.3704.1.3.3): missing"));
}

TEST(CanonicalDerInteger, AcceptsOnlyMinimalNonNegativeBytes) {
    EXPECT_EQ(*parse_canonical_der_u8(Bytes{0x02, 0x01, 0x00}), 0);
    EXPECT_EQ(*parse_canonical_der_u8(Bytes{0x02, 0x01, 0x7f}), 0x7f);
    EXPECT_EQ(*parse_canonical_der_u8(Bytes{0x02, 0x02, 0x00, 0xdb}), 0xdb);

    EXPECT_FALSE(parse_canonical_der_u8(Bytes{0x02, 0x02, 0x00, 0x05}).ok());  // non-minimal
    EXPECT_FALSE(parse_canonical_der_u8(Bytes{0x02, 0x01, 0x80}).ok());        // negative
    EXPECT_FALSE(parse_canonical_der_u8(Bytes{0x02, 0x02, 0x01, 0x00}).ok());  // > 255
    EXPECT_FALSE(parse_canonical_der_u8(Bytes{0x02, 0x00}).ok());              // empty
    EXPECT_FALSE(parse_canonical_der_u8(Bytes{0x04, 0x01, 0x05}).ok());        // not INTEGER
    EXPECT_FALSE(parse_canonical_der_u8(Bytes{0x02, 0x01, 0x05, 0x00}).ok());  // trailing
    EXPECT_FALSE(parse_canonical_der_u8(Bytes{0x02, 0x81, 0x01, 0x05}).ok());  // long form
}

TEST_F(SyntheticSnp, DebugPolicyIsRejectedUnlessAllowed) {
    SyntheticReport f = fields_;
    f.policy |= kSnpPolicyDebugBit;
    Bytes report = make_signed_report(f, chain_.vcek_key);
    auto claims = verify(report);
    EXPECT_EQ(claims.status().code(), Errc::kPermissionDenied);
    EXPECT_TRUE(message_contains(claims.status(), "debug policy"));

    SnpVerifyOptions options = pinned_to(chain_);
    options.allow_debug = true;
    auto allowed = verify_snp_report(report, chain_.bundle_pem(), options);
    ASSERT_TRUE(allowed.ok()) << allowed.status().to_string();
    EXPECT_NE(allowed->summary.find("debug ALLOWED"), std::string::npos);
}

TEST_F(SyntheticSnp, VersionTwoAndUnknownVersionsAreRejected) {
    for (uint32_t version : {0u, 1u, 2u, 4u, 5u, 0xffffffffu}) {
        SyntheticReport f = fields_;
        f.version = version;
        auto claims = verify(make_signed_report(f, chain_.vcek_key));
        EXPECT_EQ(claims.status().code(), Errc::kUnsupported);
        EXPECT_TRUE(message_contains(claims.status(),
                                     "unsupported report version " + std::to_string(version)));
    }
}

TEST_F(SyntheticSnp, UnsupportedSignatureAlgorithmIsRejected) {
    SyntheticReport f = fields_;
    f.signature_algo = 2;
    auto claims = verify(make_signed_report(f, chain_.vcek_key));
    EXPECT_TRUE(message_contains(claims.status(), "unsupported signature algorithm 2"));
}

TEST_F(SyntheticSnp, SignatureWithNonZeroHighBytesIsRejected) {
    Bytes report = make_signed_report(fields_, chain_.vcek_key);
    report[snp_offsets::kSignatureS + 71] = 0x01;
    EXPECT_TRUE(message_contains(verify(report).status(), "report signature does not verify"));
}

TEST_F(SyntheticSnp, ReportSignedByAnotherKeyIsRejected) {
    auto other = crypto::EcdsaPrivateKey::generate();
    ASSERT_TRUE(other.ok());
    auto claims = verify(make_signed_report(fields_, *other));
    EXPECT_EQ(claims.status().code(), Errc::kCrypto);
    EXPECT_TRUE(message_contains(claims.status(), "report signature does not verify"));
}

TEST_F(SyntheticSnp, TrustedRootFromAnotherChainIsRejected) {
    TestChain other = make_test_chain(vcek_extensions_for(fields_.reported_tcb, fields_.chip_id));
    auto claims = verify_snp_report(make_signed_report(fields_, chain_.vcek_key),
                                    chain_.bundle_pem(), pinned_to(other));
    EXPECT_TRUE(message_contains(claims.status(), "certificate chain does not verify"));
    EXPECT_TRUE(message_contains(claims.status(), "is not the trusted root"));
}

TEST_F(SyntheticSnp, MalformedEndorsementsAreRejected) {
    Bytes report = make_signed_report(fields_, chain_.vcek_key);
    SnpVerifyOptions options = pinned_to(chain_);
    EXPECT_EQ(verify_snp_report(report, "not a pem", options).status().code(),
              Errc::kInvalidArgument);
    EXPECT_EQ(verify_snp_report(report, "", options).status().code(), Errc::kInvalidArgument);
    options.trusted_root_pem = "garbage";
    EXPECT_TRUE(message_contains(verify_snp_report(report, chain_.bundle_pem(), options).status(),
                                 "trusted root"));
}

}  // namespace
}  // namespace coffer::attestation
