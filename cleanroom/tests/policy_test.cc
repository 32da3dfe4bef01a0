#include <gtest/gtest.h>

#include "cleanroom/policy.h"
#include "cleanroom/tests/test_util.h"

namespace coffer::cleanroom {
namespace {

TEST(Policy, RowsUnderEntityThresholdAreSuppressedAndCounted) {
    QueryResult r;
    r.columns = {"city", "_entities"};
    r.rows = {{Value{std::string("a")}, Value{int64_t{5}}},
              {Value{std::string("b")}, Value{int64_t{2}}},
              {Value{std::string("c")}, Value{}}};
    OutputPolicy p;
    p.columns = {"city", "_entities"};
    p.min_entities = 3;
    const ThresholdOutcome out = apply_entity_threshold(r, p);
    ASSERT_EQ(out.rows.size(), 1u);
    EXPECT_EQ(std::get<std::string>(out.rows[0][0]), "a");
    EXPECT_EQ(out.suppressed_rows, 2u);
}

TEST(Policy, OutputColumnsMustBeAllowedAndDeclared) {
    DatasetSchema s = testing::make_schema("t", {"account:int", "note:string"});
    s.output_columns = {"account"};
    QueryResult r;
    r.columns = {"account", "n"};
    r.origins = {"t.account", ""};
    OutputPolicy p;
    p.columns = {"account"};
    EXPECT_EQ(check_output_columns(r, p, {s}).code(), Errc::kPermissionDenied);
    p.columns = {"account", "n"};
    EXPECT_TRUE(check_output_columns(r, p, {s}).ok());
    r.columns = {"note", "n"};
    r.origins = {"t.note", ""};
    p.columns = {"note", "n"};
    EXPECT_EQ(check_output_columns(r, p, {s}).code(), Errc::kPermissionDenied);
    p.min_entities = 2;
    r.columns = {"account", "n"};
    r.origins = {"t.account", ""};
    p.columns = {"account", "n"};
    EXPECT_EQ(check_output_columns(r, p, {s}).code(), Errc::kInvalidArgument);
}

TEST(Policy, RoutingSendsRowsToTheOwnerOfTheEntityAndAggregatesToAll) {
    DatasetSchema s = testing::make_schema("a", {"account:int"});
    s.entity_columns = {"account"};
    Table a{s, "bank_a", {{Value{int64_t{1}}}, {Value{int64_t{2}}}}};
    s.name = "b";
    Table b{s, "bank_b", {{Value{int64_t{3}}}}};
    OutputPolicy p;
    p.routing_column = "account";
    const std::vector<Row> rows = {{Value{int64_t{1}}, Value{10.0}},
                                   {Value{int64_t{3}}, Value{30.0}},
                                   {Value{}, Value{40.0}},
                                   {Value{int64_t{9}}, Value{90.0}}};
    const RoutedRows routed = route_rows({"account", "total"}, rows, p, {"bank_a", "bank_b", "c"},
                                         party_entities({&a, &b}));
    ASSERT_EQ(routed.rows_by_recipient.at("bank_a").size(), 2u);
    EXPECT_EQ(std::get<int64_t>(routed.rows_by_recipient.at("bank_a")[0][0]), 1);
    ASSERT_EQ(routed.rows_by_recipient.at("bank_b").size(), 2u);
    EXPECT_EQ(std::get<int64_t>(routed.rows_by_recipient.at("bank_b")[0][0]), 3);
    EXPECT_EQ(routed.rows_by_recipient.at("c").size(), 1u);  // the aggregate row only
    EXPECT_EQ(routed.unrouted_rows, 1u);
}

// Entity values are each party's own claim: bank_b holding bank_a's account 1 as well makes
// account 1 nobody's, so bank_b cannot receive bank_a's row by uploading the key.
TEST(Policy, AnEntityClaimedByTwoPartiesIsRoutedToNobody) {
    DatasetSchema s = testing::make_schema("a", {"account:int"});
    s.entity_columns = {"account"};
    Table a{s, "bank_a", {{Value{int64_t{1}}}, {Value{int64_t{2}}}}};
    s.name = "b";
    Table b{s, "bank_b", {{Value{int64_t{3}}}, {Value{int64_t{1}}}}};
    s.name = "a2";
    Table a2{s, "bank_a", {{Value{int64_t{2}}}}};
    const auto entities = party_entities({&a, &b, &a2});
    EXPECT_EQ(entities.at("bank_a").count("1"), 0u);
    EXPECT_EQ(entities.at("bank_b").count("1"), 0u);
    OutputPolicy p;
    p.routing_column = "account";
    const std::vector<Row> rows = {{Value{int64_t{1}}, Value{10.0}},
                                   {Value{int64_t{2}}, Value{20.0}},
                                   {Value{int64_t{3}}, Value{30.0}}};
    const RoutedRows routed =
        route_rows({"account", "total"}, rows, p, {"bank_a", "bank_b"}, entities);
    ASSERT_EQ(routed.rows_by_recipient.at("bank_a").size(), 1u);
    EXPECT_EQ(std::get<int64_t>(routed.rows_by_recipient.at("bank_a")[0][0]), 2);
    ASSERT_EQ(routed.rows_by_recipient.at("bank_b").size(), 1u);
    EXPECT_EQ(std::get<int64_t>(routed.rows_by_recipient.at("bank_b")[0][0]), 3);
    EXPECT_EQ(routed.unrouted_rows, 1u);
}

TEST(Policy, MinInputRowsNamesTheSmallDataset) {
    Table t{testing::make_schema("tiny", {"x:int"}), "p", {{Value{int64_t{1}}}}};
    OutputPolicy p;
    p.min_input_rows = 2;
    const Status st = check_min_input_rows({&t}, p);
    EXPECT_EQ(st.code(), Errc::kFailedPrecondition);
    EXPECT_NE(st.message().find("tiny"), std::string::npos);
}

}  // namespace
}  // namespace coffer::cleanroom
