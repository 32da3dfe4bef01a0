#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cleanroom/analysis.h"
#include "cleanroom/tests/test_util.h"
#include "common/bytes.h"
#include "crypto/sha256.h"

namespace coffer::cleanroom {
namespace {

Table tx(const std::string& name, const std::string& owner, int64_t first_account) {
    DatasetSchema s = testing::make_schema(
        name, {"account:int", "counterparty:int", "amount:decimal", "ts:int", "note:string"});
    s.entity_columns = {"account"};
    s.output_columns = {"account"};
    Table t{s, owner, {}};
    for (int64_t i = 0; i < 40; ++i) {
        // Account first+0 has 1 row, first+1 has 3 rows, the rest spread over 4 accounts.
        const int64_t account = first_account + (i == 0 ? 0 : i < 4 ? 1 : 2 + i % 4);
        t.rows.push_back(Row{Value{account}, Value{i}, Value{10.0}, Value{i}, Value{"n"}});
    }
    return t;
}

std::string sql_doc(const std::string& query, int min_entities = 2) {
    return nlohmann::json{
        {"version", 1},
        {"kind", "sql"},
        {"query", query},
        {"datasets",
         {{{"name", "a_tx"}, {"columns", {"account", "counterparty", "amount", "ts"}}},
          {{"name", "b_tx"}, {"columns", {"account", "counterparty", "amount", "ts"}}}}},
        {"output_policy",
         {{"columns", {"account", "total", "_entities"}},
          {"min_entities", min_entities},
          {"routing_column", "account"}}},
        {"recipients", {"bank_a", "bank_b"}},
        {"triggers", {"bank_a"}}}
        .dump();
}

class SqlAnalysis : public ::testing::Test {
  protected:
    SqlAnalysis() {
        datasets_["a_tx"] = tx("a_tx", "bank_a", 100);
        datasets_["b_tx"] = tx("b_tx", "bank_b", 200);
    }
    std::map<std::string, Table> datasets_;
};

TEST(AnalysisDocument, IdIsSha256OfExactBytes) {
    const std::string text = sql_doc("SELECT 1");
    const Result<AnalysisDocument> doc = parse_analysis(text);
    ASSERT_TRUE(doc.ok()) << doc.status().to_string();
    EXPECT_EQ(doc->id, to_hex(crypto::sha256(as_bytes(text))));
    const Result<AnalysisDocument> spaced = parse_analysis(text + " ");
    ASSERT_TRUE(spaced.ok());
    EXPECT_NE(spaced->id, doc->id);
}

TEST(AnalysisDocument, ParsingIsStrict) {
    nlohmann::json base = nlohmann::json::parse(sql_doc("SELECT 1"));
    auto variant = [&](auto change) {
        nlohmann::json d = base;
        change(d);
        return parse_analysis(d.dump()).status();
    };
    EXPECT_EQ(variant([](auto& d) { d["extra"] = 1; }).code(), Errc::kInvalidArgument);
    EXPECT_EQ(variant([](auto& d) { d["version"] = 2; }).code(), Errc::kUnsupported);
    EXPECT_EQ(variant([](auto& d) { d["kind"] = "python"; }).code(), Errc::kInvalidArgument);
    EXPECT_EQ(variant([](auto& d) { d["params"] = nlohmann::json::object(); }).code(),
              Errc::kInvalidArgument);
    EXPECT_EQ(variant([](auto& d) { d["recipients"] = nlohmann::json::array(); }).code(),
              Errc::kInvalidArgument);
    EXPECT_EQ(variant([](auto& d) { d["datasets"][0]["name"] = "A-TX"; }).code(),
              Errc::kInvalidArgument);
    EXPECT_EQ(variant([](auto& d) { d["output_policy"]["min_entities"] = "5"; }).code(),
              Errc::kInvalidArgument);
    EXPECT_EQ(parse_analysis(R"({"version":1,"version":1})").status().code(),
              Errc::kInvalidArgument);
    EXPECT_FALSE(parse_analysis("not json").ok());
}

TEST_F(SqlAnalysis, UnapprovedColumnIsRefusedBeforeApproval) {
    const Result<AnalysisDocument> doc = parse_analysis(
        sql_doc("SELECT account, count(*) AS total, count(DISTINCT account) AS _entities "
                "FROM a_tx WHERE note = 'x' GROUP BY account"));
    ASSERT_TRUE(doc.ok());
    std::map<std::string, DatasetSchema> declared = {{"a_tx", datasets_["a_tx"].schema},
                                                     {"b_tx", datasets_["b_tx"].schema}};
    const Status st = check_analysis(*doc, declared);
    EXPECT_EQ(st.code(), Errc::kPermissionDenied);
    EXPECT_NE(st.message().find("a_tx.note"), std::string::npos);
}

TEST_F(SqlAnalysis, ThresholdSuppressesAndRoutingSplitsRows) {
    const Result<AnalysisDocument> doc = parse_analysis(sql_doc(
        "SELECT account, count(*) AS total, count(DISTINCT counterparty) AS _entities FROM "
        "(SELECT account, counterparty FROM a_tx UNION ALL SELECT account, counterparty FROM b_tx) "
        "GROUP BY account ORDER BY account",
        3));
    ASSERT_TRUE(doc.ok()) << doc.status().to_string();
    const Result<AnalysisResult> r = run_analysis(*doc, datasets_, RunOptions{{}, "bank_a"});
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    // Accounts 100 and 200 (1 counterparty) are suppressed; 101 and 201 have exactly 3.
    EXPECT_EQ(r->suppressed_rows, 2u);
    for (const auto& [bank, first] : {std::pair{"bank_a", 100}, std::pair{"bank_b", 200}}) {
        const RecipientOutput& out = r->outputs.at(bank);
        ASSERT_EQ(out.rows.size(), 5u) << bank;
        for (const Row& row : out.rows) {
            const int64_t account = std::get<int64_t>(row[0]);
            EXPECT_TRUE(account > first && account < first + 100) << bank << " got " << account;
        }
        const nlohmann::json j = nlohmann::json::parse(out.json);
        EXPECT_EQ(j["analysis_id"], doc->id);
        EXPECT_EQ(j["aggregates"]["suppressed_rows"], 2);
    }
}

TEST_F(SqlAnalysis, CallerMustBeATrigger) {
    const Result<AnalysisDocument> doc = parse_analysis(sql_doc("SELECT 1"));
    ASSERT_TRUE(doc.ok());
    EXPECT_EQ(run_analysis(*doc, datasets_, RunOptions{{}, "bank_b"}).status().code(),
              Errc::kPermissionDenied);
}

TEST_F(SqlAnalysis, RawColumnOutsideAllowListRefusesTheRun) {
    const Result<AnalysisDocument> doc =
        parse_analysis(sql_doc("SELECT account, amount AS total, 5 AS _entities FROM a_tx"));
    ASSERT_TRUE(doc.ok());
    const Result<AnalysisResult> r = run_analysis(*doc, datasets_, RunOptions{{}, "bank_a"});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Errc::kPermissionDenied);
    EXPECT_NE(r.status().message().find("a_tx.amount"), std::string::npos);
}

}  // namespace
}  // namespace coffer::cleanroom
