#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <functional>

#include "cleanroom/csv.h"
#include "cleanroom/sql.h"
#include "cleanroom/tests/test_util.h"

namespace coffer::cleanroom {
namespace {

DatasetSchema csv1_schema() {
    return testing::make_schema("t", {"id:int", "name:string", "amount:decimal"});
}

// CSV-1 file 1: physical lines 1..8 (records 2 and 5 span two lines each).
const std::string kFile1 =
    "id,name,amount\n"
    "1,plain,10.5\n"
    "2,\"two\nlines\",20\n"
    "3,\"say \"\"hi\"\"\",30\n"
    "4,\"bare\rcr\",40\n"
    "5,\"crlf\r\ninside\",50\n";

const std::vector<std::string> kNames = {"plain", "two\nlines", "say \"hi\"", "bare\rcr",
                                         "crlf\r\ninside"};

void expect_five_rows(const Result<Table>& table) {
    ASSERT_TRUE(table.ok()) << table.status().to_string();
    ASSERT_EQ(table->rows.size(), 5u);
    for (size_t i = 0; i < 5; ++i) {
        EXPECT_EQ(std::get<int64_t>(table->rows[i][0]), static_cast<int64_t>(i + 1));
        EXPECT_EQ(std::get<std::string>(table->rows[i][1]), kNames[i]);
    }
    EXPECT_DOUBLE_EQ(std::get<double>(table->rows[0][2]), 10.5);
}

// kFile1 with CRLF record ends; the LF and CRLF inside quotes stay as they are.
std::string crlf_file() {
    return "id,name,amount\r\n1,plain,10.5\r\n2,\"two\nlines\",20\r\n3,\"say \"\"hi\"\"\",30\r\n"
           "4,\"bare\rcr\",40\r\n5,\"crlf\r\ninside\",50\r\n";
}

TEST(Csv, Csv1ValidFileWithLfLineEndsKeepsExactStrings) {
    expect_five_rows(parse_csv(csv1_schema(), kFile1));
}

TEST(Csv, Csv1CrlfBomAndMissingFinalNewlineGiveTheSameRows) {
    const std::string crlf = crlf_file();
    expect_five_rows(parse_csv(csv1_schema(), crlf));
    expect_five_rows(parse_csv(csv1_schema(), "\xEF\xBB\xBF" + kFile1));
    expect_five_rows(parse_csv(csv1_schema(), "\xEF\xBB\xBF" + crlf));
    expect_five_rows(parse_csv(csv1_schema(), kFile1.substr(0, kFile1.size() - 1)));
    expect_five_rows(parse_csv(csv1_schema(), crlf.substr(0, crlf.size() - 2)));
}

TEST(Csv, Csv1RowsReadBackThroughSqlAreByteExact) {
    const Result<Table> table = parse_csv(csv1_schema(), crlf_file());
    ASSERT_TRUE(table.ok());
    SqlScope scope{{table->schema}, {{"t", {"id", "name", "amount"}}}};
    const Result<QueryResult> r = run_query("SELECT name FROM t ORDER BY id", {&*table}, scope);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_EQ(r->rows.size(), 5u);
    for (size_t i = 0; i < 5; ++i) {
        EXPECT_EQ(std::get<std::string>(r->rows[i][0]), kNames[i]);
    }
}

TEST(Csv, Csv1BadDecimalNamesPhysicalLineNine) {
    const Result<Table> t = parse_csv(csv1_schema(), kFile1 + "6,six,abc\n");
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(t.status().message(), "line 9: column amount: not a decimal");
}

TEST(Csv, Csv1UnterminatedQuoteNamesLineWhereRecordStarts) {
    const Result<Table> t = parse_csv(csv1_schema(), kFile1 + "6,\"never closed,1\n7,x,2\n");
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().message(), "line 9: unterminated quoted field");
}

TEST(Csv, Csv1QuotedIdWithNewlineIsNotAnInteger) {
    const Result<Table> t = parse_csv(csv1_schema(), kFile1 + "\"7\n\",x,1\n");
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().message(), "line 9: column id: not an integer");
}

TEST(Csv, WrongFieldCountNamesLineAndCounts) {
    const Result<Table> t = parse_csv(csv1_schema(), "id,name,amount\n1,a\n");
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().message(), "line 2: expected 3 fields, got 2");
    const Result<Table> blank = parse_csv(csv1_schema(), "id,name,amount\n1,a,1\n\n2,b,2\n");
    ASSERT_FALSE(blank.ok());
    EXPECT_EQ(blank.status().message(), "line 3: expected 3 fields, got 1");
}

TEST(Csv, HeaderMustMatchDeclaredColumns) {
    const Result<Table> t = parse_csv(csv1_schema(), "id,amount,name\n1,2,x\n");
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.status().message().find("line 1: header does not match"), std::string::npos);
    EXPECT_FALSE(parse_csv(csv1_schema(), "").ok());
}

TEST(Csv, MalformedQuotingIsRejected) {
    EXPECT_EQ(parse_csv(csv1_schema(), "id,name,amount\n1,\"a\"b,1\n").status().message(),
              "line 2: unexpected character after closing quote");
    EXPECT_EQ(parse_csv(csv1_schema(), "id,name,amount\n1,a\"b,1\n").status().message(),
              "line 2: quote inside unquoted field");
    EXPECT_EQ(parse_csv(csv1_schema(), "id,name,amount\n1,a\rb,1\n").status().message(),
              "line 2: bare CR outside quotes");
}

TEST(Csv, ValuesAreParsedStrictly) {
    EXPECT_TRUE(parse_value("-42", ColumnType::kInt).ok());
    EXPECT_TRUE(parse_value("+42", ColumnType::kInt).ok());
    for (const char* bad : {"4.0", " 4", "4 ", "0x10", "9223372036854775808", "--1", "+"}) {
        EXPECT_FALSE(parse_value(bad, ColumnType::kInt).ok()) << bad;
    }
    for (const char* good : {"1", "-1.5", ".7", "3.", "1e3", "+2.5E-2"}) {
        EXPECT_TRUE(parse_value(good, ColumnType::kDecimal).ok()) << good;
    }
    for (const char* bad : {"nan", "inf", "1e999", ".", "1.2.3", "1e", "0x1p3", "1,5"}) {
        EXPECT_FALSE(parse_value(bad, ColumnType::kDecimal).ok()) << bad;
    }
    EXPECT_TRUE(is_null(*parse_value("", ColumnType::kDecimal)));
    EXPECT_EQ(std::get<std::string>(*parse_value("", ColumnType::kString)), "");
    EXPECT_TRUE(std::get<bool>(*parse_value("true", ColumnType::kBool)));
    EXPECT_FALSE(parse_value("yes", ColumnType::kBool).ok());
    EXPECT_TRUE(parse_value("2024-02-29", ColumnType::kDate).ok());
    EXPECT_FALSE(parse_value("2023-02-29", ColumnType::kDate).ok());
}

TEST(Csv, NamedLimitsAreEnforced) {
    CsvLimits limits;
    limits.max_rows = 2;
    EXPECT_EQ(parse_csv(csv1_schema(), kFile1, limits).status().code(), Errc::kResourceExhausted);
    limits = CsvLimits();
    limits.max_field_bytes = 4;
    EXPECT_EQ(parse_csv(csv1_schema(), kFile1, limits).status().code(), Errc::kResourceExhausted);
}

TEST(Schema, DeclarationIsValidatedStrictly) {
    const char* good =
        R"({"name":"a_tx",
            "columns":[{"name":"account","type":"int"},{"name":"note","type":"string"}],
            "entity_columns":["account"],"joinable_columns":["account"],"output_columns":[]})";
    const Result<DatasetSchema> s = parse_schema(good);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    EXPECT_EQ(s->columns[0].type, ColumnType::kInt);
    EXPECT_TRUE(parse_schema(schema_to_json(*s)).ok());

    const nlohmann::json base = nlohmann::json::parse(good);
    const std::vector<std::function<void(nlohmann::json&)>> changes = {
        [](auto& d) { d["name"] = "A"; },
        [](auto& d) { d["columns"][1]["name"] = "account"; },
        [](auto& d) { d["columns"][0]["type"] = "float"; },
        [](auto& d) { d["entity_columns"] = {"missing"}; },
        [](auto& d) {
            d["output_columns"] = {"note", "note"};
        },
        [](auto& d) { d["extra"] = 1; },
        [](auto& d) { d["columns"][0]["name"] = "9a"; },
        [](auto& d) { d["columns"] = nlohmann::json::array(); },
    };
    for (size_t i = 0; i < changes.size(); ++i) {
        nlohmann::json d = base;
        changes[i](d);
        EXPECT_EQ(parse_schema(d.dump()).status().code(), Errc::kInvalidArgument) << i;
    }
    EXPECT_EQ(parse_schema(R"({"name":"t","name":"u"})").status().code(), Errc::kInvalidArgument);
}

TEST(Csv, BoolDateAndMissingValuesReachSqlTyped) {
    const DatasetSchema schema =
        testing::make_schema("p", {"id:int", "ok:bool", "day:date", "score:decimal"});
    const Result<Table> t = parse_csv(schema, "id,ok,day,score\n1,true,2024-02-29,\n2,0,,1.5\n");
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    SqlScope scope{{schema}, {{"p", {"id", "ok", "day", "score"}}}};
    const Result<QueryResult> r =
        run_query("SELECT ok, day, score IS NULL, typeof(score) FROM p ORDER BY id", {&*t}, scope);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(std::get<int64_t>(r->rows[0][0]), 1);
    EXPECT_EQ(std::get<std::string>(r->rows[0][1]), "2024-02-29");
    EXPECT_EQ(std::get<int64_t>(r->rows[0][2]), 1);
    EXPECT_TRUE(is_null(r->rows[1][1]));
    EXPECT_EQ(std::get<std::string>(r->rows[1][3]), "real");
}

}  // namespace
}  // namespace coffer::cleanroom
