#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>

#include "kv/store.h"
#include "ledger/ledger.h"
#include "ledger/ledger_test_util.h"
#include "ledger/memory_file_system.h"
#include "ledger/receipt.h"

namespace coffer::ledger {
namespace {

using testing::identities;
using testing::other_identities;
using testing::put_and_commit;

// A ledger with 5 entries, a committed signature at 6, then one more entry (pending).
class ReceiptTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ledger_ =
            Ledger::open(fs_, testing::test_options("ledger"), store_, testing::test_secrets())
                .value();
        for (int i = 0; i < 5; ++i) {
            std::string key = "k" + std::to_string(i);
            ASSERT_TRUE(put_and_commit(store_, "public:log", key, "public value").ok());
            ASSERT_TRUE(put_and_commit(store_, "private", key, "private value").ok());
        }
        ASSERT_TRUE(ledger_->sign_now().ok());
        ASSERT_TRUE(ledger_->flush().ok());
        ASSERT_EQ(ledger_->committed(), 11u);
        ASSERT_TRUE(put_and_commit(store_, "public:log", "late", "pending").ok());
    }

    MemoryFileSystem fs_;
    kv::Store store_;
    std::unique_ptr<Ledger> ledger_;
};

TEST_F(ReceiptTest, CommittedEntryReceiptVerifiesWithTheServiceCertificate) {
    for (uint64_t seqno = 1; seqno <= 10; ++seqno) {
        auto receipt = ledger_->receipt(seqno, false);
        ASSERT_TRUE(receipt.ok()) << receipt.status().to_string();
        auto parsed = parse_receipt(receipt_to_json(*receipt));
        ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
        auto v = verify_receipt(*parsed, identities().service_cert);
        ASSERT_TRUE(v.ok()) << v.status().to_string();
        EXPECT_EQ(v->tx_id.seqno, seqno);
        EXPECT_EQ(v->signed_at.seqno, 11u);
        EXPECT_EQ(v->root, ledger_->root_at(10));
        EXPECT_EQ(v->node_id, "node-1");
        EXPECT_FALSE(v->public_part_checked);
        // The node certificate expired long ago; the receipt still verifies.
        EXPECT_LT(v->node_cert_not_after_unix, 1800000000);
    }
}

TEST_F(ReceiptTest, IncludedPublicPartIsCheckedAndReadable) {
    auto receipt = ledger_->receipt(1, true);
    ASSERT_TRUE(receipt.ok());
    auto parsed = parse_receipt(receipt_to_json(*receipt));
    ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
    auto v = verify_receipt(*parsed, identities().service_cert);
    ASSERT_TRUE(v.ok()) << v.status().to_string();
    EXPECT_TRUE(v->public_part_checked);
    auto ws = receipt_public_write_set(*parsed);
    ASSERT_TRUE(ws.ok());
    EXPECT_EQ(ws->maps.at("public:log").at(to_bytes("k0")), to_bytes("public value"));
}

TEST_F(ReceiptTest, AnotherServiceCertificateIsRefused) {
    auto receipt = ledger_->receipt(3, false);
    ASSERT_TRUE(receipt.ok());
    auto v = verify_receipt(*receipt, other_identities().service_cert);
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.status().code(), Errc::kCrypto);
}

TEST_F(ReceiptTest, PendingAndMissingEntriesGetNoReceipt) {
    auto pending = ledger_->receipt(12, false);
    ASSERT_FALSE(pending.ok());
    EXPECT_EQ(pending.status().code(), Errc::kFailedPrecondition);
    EXPECT_NE(pending.status().message().find("pending"), std::string::npos);
    // The signature entry itself is committed but only a later signature covers it.
    auto signature = ledger_->receipt(11, false);
    ASSERT_FALSE(signature.ok());
    EXPECT_EQ(signature.status().code(), Errc::kFailedPrecondition);
    EXPECT_EQ(ledger_->receipt(13, false).status().code(), Errc::kNotFound);
    EXPECT_EQ(ledger_->receipt(0, false).status().code(), Errc::kNotFound);

    ASSERT_TRUE(ledger_->sign_now().ok());
    ASSERT_TRUE(ledger_->flush().ok());
    auto now_committed = ledger_->receipt(12, false);
    ASSERT_TRUE(now_committed.ok()) << now_committed.status().to_string();
    EXPECT_TRUE(verify_receipt(*now_committed, identities().service_cert).ok());
    auto sig_receipt = ledger_->receipt(11, false);
    ASSERT_TRUE(sig_receipt.ok());
    auto v = verify_receipt(*sig_receipt, identities().service_cert);
    ASSERT_TRUE(v.ok());
    EXPECT_TRUE(v->is_signature_entry);
}

// A different character of the same kind (digit, lower-case, upper-case letter), so that
// hex, base64 and decimal fields stay well-formed and only their meaning changes.
char same_kind_replacement(char c) {
    if (c >= '0' && c <= '9') {
        return static_cast<char>('0' + (c - '0' + 1) % 10);
    }
    if (c >= 'a' && c <= 'z') {
        return static_cast<char>('a' + (c - 'a' + 1) % 26);
    }
    if (c >= 'A' && c <= 'Z') {
        return static_cast<char>('A' + (c - 'A' + 1) % 26);
    }
    return static_cast<char>(c ^ 0x01);
}

// Every single-byte change of the serialized receipt (with its public part, so every field
// is present) either fails to parse, fails to verify, or parses to the same receipt.
// Inside the certificate's PEM (about 900 characters, each change costing a P-384
// verification) every third character is changed: base64 packs 3 bytes into 4 characters,
// so that stride still reaches every byte position of the DER.
TEST_F(ReceiptTest, EverySingleByteChangeIsDetected) {
    auto receipt = ledger_->receipt(4, true);
    ASSERT_TRUE(receipt.ok());
    const std::string json = receipt_to_json(*receipt);
    ASSERT_TRUE(verify_receipt(parse_receipt(json).value(), identities().service_cert).ok());
    const std::string cert_key = "\"node_certificate\":\"";
    size_t cert_begin = json.find(cert_key) + cert_key.size();
    size_t cert_end = json.find('"', cert_begin);
    ASSERT_NE(cert_end, std::string::npos);
    size_t tried = 0;
    for (size_t i = 0; i < json.size(); ++i) {
        if (i > cert_begin + 40 && i < cert_end - 40 && i % 3 != 0) {
            continue;
        }
        for (char replacement : {same_kind_replacement(json[i]), static_cast<char>(json[i] ^ 1)}) {
            std::string changed = json;
            changed[i] = replacement;
            ++tried;
            auto parsed = parse_receipt(changed);
            if (!parsed.ok()) {
                continue;
            }
            auto v = verify_receipt(*parsed, identities().service_cert);
            ASSERT_FALSE(v.ok() && receipt_to_json(*parsed) != json)
                << "a change at byte " << i << " ('" << json[i] << "' -> '" << replacement
                << "') verified with another meaning";
            EXPECT_FALSE(v.ok()) << "byte " << i;
        }
    }
    EXPECT_GT(tried, 1500u);
}

TEST(ReceiptParse, StrictParserNamesTheBadField) {
    EXPECT_EQ(parse_receipt("not json").status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(parse_receipt("[]").status().code(), Errc::kInvalidArgument);
    auto missing = parse_receipt(R"({"version":1})");
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.status().message().find("missing"), std::string::npos);
    auto version = parse_receipt(R"({"version":2})");
    EXPECT_FALSE(version.ok());
}

TEST_F(ReceiptTest, ParserRefusesWrongTypesAndDuplicates) {
    auto receipt = ledger_->receipt(2, false);
    ASSERT_TRUE(receipt.ok());
    nlohmann::json j = nlohmann::json::parse(receipt_to_json(*receipt));

    auto expect_field_error = [&](nlohmann::json changed, const std::string& field) {
        auto parsed = parse_receipt(changed.dump());
        ASSERT_FALSE(parsed.ok()) << field;
        EXPECT_NE(parsed.status().message().find(field), std::string::npos)
            << parsed.status().to_string();
    };
    auto j1 = j;
    j1["leaf_index"] = "1";
    expect_field_error(j1, "leaf_index");
    auto j2 = j;
    j2["root"] = std::string(j["root"]).substr(2);
    expect_field_error(j2, "root");
    auto j3 = j;
    std::string upper = j["header"];
    for (char& c : upper) {
        c = static_cast<char>(toupper(c));
    }
    j3["header"] = upper;
    expect_field_error(j3, "header");
    auto j4 = j;
    j4["extra"] = 1;
    expect_field_error(j4, "extra");
    auto j5 = j;
    j5["tree_size"] = -1;
    expect_field_error(j5, "tree_size");
    auto j6 = j;
    j6["version"] = 2;
    EXPECT_EQ(parse_receipt(j6.dump()).status().code(), Errc::kUnsupported);

    std::string dup = receipt_to_json(*receipt);
    dup.insert(1, R"("node_id":"evil",)");
    EXPECT_FALSE(parse_receipt(dup).ok());
}

}  // namespace
}  // namespace coffer::ledger
