#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "cleanroom/sql.h"
#include "cleanroom/tests/test_util.h"

namespace coffer::cleanroom {
namespace {

Table tx_table(const std::string& name, int64_t rows) {
    Table t;
    t.schema = testing::make_schema(
        name, {"account:int", "counterparty:int", "amount:decimal", "ts:int", "note:string"});
    for (int64_t i = 0; i < rows; ++i) {
        t.rows.push_back(Row{Value{i % 50}, Value{(i * 7) % 50},
                             Value{1.0 + static_cast<double>(i)}, Value{i},
                             Value{std::string("secret ") + std::to_string(i)}});
    }
    return t;
}

// CR-1 set-up: bank A's and bank B's transfers; `note` is not approved.
class Authorizer : public ::testing::Test {
  protected:
    Authorizer() : a_(tx_table("a_tx", 20)), b_(tx_table("b_tx", 20)) {
        scope_.tables = {a_.schema, b_.schema};
        scope_.approved_columns["a_tx"] = {"account", "counterparty", "amount", "ts"};
        scope_.approved_columns["b_tx"] = {"account", "counterparty", "amount", "ts"};
    }

    // Refused both at validation and when run, with `needle` in the message.
    void expect_refused(const std::string& sql, const std::string& needle,
                        Errc code = Errc::kPermissionDenied) {
        const Result<QueryResult> v = validate_query(sql, scope_);
        ASSERT_FALSE(v.ok()) << sql;
        EXPECT_EQ(v.status().code(), code) << sql << " -> " << v.status().to_string();
        bool named = false;
        for (size_t start = 0; start <= needle.size();) {
            const size_t bar = std::min(needle.find('|', start), needle.size());
            named = named || v.status().message().find(needle.substr(start, bar - start)) !=
                                 std::string::npos;
            start = bar + 1;
        }
        EXPECT_TRUE(named) << sql << " -> " << v.status().message();
        const Result<QueryResult> r = run_query(sql, {&a_, &b_}, scope_);
        ASSERT_FALSE(r.ok()) << sql;
        EXPECT_EQ(r.status().code(), code);
    }

    Table a_;
    Table b_;
    SqlScope scope_;
};

TEST_F(Authorizer, ApprovedJoinRunsAndReportsOrigins) {
    const Result<QueryResult> r = run_query(
        "SELECT a.account, count(*) AS n FROM a_tx a JOIN b_tx b ON a.account = b.counterparty "
        "GROUP BY a.account ORDER BY a.account",
        {&a_, &b_}, scope_);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_FALSE(r->rows.empty());
    EXPECT_EQ(r->origins[0], "a_tx.account");
    EXPECT_EQ(r->origins[1], "");
    const Result<QueryResult> count = run_query("SELECT count(*) FROM a_tx", {&a_, &b_}, scope_);
    ASSERT_TRUE(count.ok()) << count.status().to_string();
    EXPECT_EQ(std::get<int64_t>(count->rows[0][0]), 20);
}

TEST_F(Authorizer, Cr1AttachIsRefused) {
    expect_refused("ATTACH DATABASE 'other.db' AS o", "ATTACH");
    expect_refused("ATTACH DATABASE ':memory:' AS o; SELECT 1", "ATTACH");
}

TEST_F(Authorizer, Cr1LoadExtensionIsRefused) {
    expect_refused("SELECT load_extension('./x.so')", "function load_extension");
}

TEST_F(Authorizer, Cr1PragmaAndSchemaTablesAreRefused) {
    expect_refused("PRAGMA writable_schema = 1", "PRAGMA writable_schema");
    expect_refused("SELECT * FROM pragma_table_info('a_tx')", "pragma_table_info|sqlite_master");
    expect_refused("SELECT name FROM pragma_table_list", "pragma_table_list|sqlite_master");
    expect_refused("SELECT count(*) FROM pragma_table_info('a_tx')",
                   "pragma_table_info|sqlite_master");
    expect_refused("SELECT sql FROM sqlite_master", "sqlite_master");
    expect_refused("SELECT count(*) FROM sqlite_schema", "sqlite_");
    expect_refused("SELECT * FROM sqlite_temp_master", "sqlite_temp_master");
    expect_refused("SELECT * FROM dbstat", "dbstat|sqlite_master");
}

TEST_F(Authorizer, Cr1WritesAreRefused) {
    expect_refused("CREATE TEMP TABLE t AS SELECT * FROM a_tx", "CREATE statement");
    expect_refused("INSERT INTO a_tx VALUES (1, 2, 3.0, 4, 'x')", "INSERT");
    expect_refused("UPDATE a_tx SET amount = 0", "UPDATE");
    expect_refused("DELETE FROM a_tx", "DELETE");
    expect_refused("DROP TABLE a_tx", "DROP statement");
    expect_refused("ALTER TABLE a_tx ADD COLUMN x", "ALTER TABLE");
    expect_refused("BEGIN", "TRANSACTION");
}

TEST_F(Authorizer, Cr1UnapprovedColumnIsDeniedNeverIgnored) {
    expect_refused("SELECT account FROM a_tx WHERE note = 'secret 3'", "a_tx.note");
    expect_refused("SELECT account FROM a_tx ORDER BY note", "a_tx.note");
    expect_refused("SELECT account FROM a_tx WHERE ts IN (SELECT ts FROM a_tx WHERE note > '')",
                   "a_tx.note");
    expect_refused("WITH c AS (SELECT note FROM a_tx) SELECT count(*) FROM c", "a_tx.note");
    expect_refused("CREATE TEMP VIEW v AS SELECT note FROM a_tx", "CREATE statement");
    expect_refused("SELECT * FROM a_tx", "a_tx.note");
    expect_refused("SELECT NOTE FROM A_TX", "a_tx.note");
    expect_refused("SELECT rowid FROM a_tx", "a_tx.rowid");
    expect_refused("SELECT count(*) FROM a_tx GROUP BY length(note)", "a_tx.note");
}

TEST_F(Authorizer, UnapprovedTableIsDeniedEvenForCounting) {
    scope_.approved_columns.erase("b_tx");
    expect_refused("SELECT count(*) FROM b_tx", "table b_tx");
    expect_refused("SELECT a.account FROM a_tx a JOIN b_tx b ON a.ts = b.ts", "b_tx.");
}

// SQLite 3.40 builds the comparisons of JOIN ... USING and NATURAL JOIN without asking the
// authorizer about their columns: the run's database holds only approved columns, and
// NATURAL JOIN is refused, so an unapproved `note` cannot steer a join.
TEST_F(Authorizer, JoinUsingOrNaturalOnAnUnapprovedColumnIsRefused) {
    expect_refused("SELECT count(*) AS n FROM a_tx JOIN b_tx USING (note)", "note");
    expect_refused("SELECT b_tx.account FROM a_tx JOIN b_tx USING (account, note)", "not approved");
    expect_refused("SELECT count(*) AS n FROM a_tx NATURAL JOIN b_tx", "NATURAL JOIN");
    expect_refused("SELECT count(*) AS n FROM a_tx /* x */ natural\nLEFT JOIN b_tx",
                   "NATURAL JOIN");
}

TEST_F(Authorizer, JoinUsingApprovedColumnsStillRuns) {
    const Result<QueryResult> r = run_query(
        "SELECT count(*) AS n FROM a_tx JOIN b_tx USING (account, ts)", {&a_, &b_}, scope_);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(std::get<int64_t>(r->rows[0][0]), 20);
    const Result<QueryResult> quoted =
        validate_query("SELECT 'natural' AS \"natural\" FROM a_tx", scope_);
    EXPECT_TRUE(quoted.ok()) << quoted.status().to_string();
}

TEST_F(Authorizer, ATableWithoutApprovedColumnsCanStillBeCounted) {
    scope_.approved_columns["b_tx"].clear();
    const Result<QueryResult> r = run_query("SELECT count(*) FROM b_tx", {&a_, &b_}, scope_);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(std::get<int64_t>(r->rows[0][0]), 20);
    expect_refused("SELECT count(*) FROM a_tx JOIN b_tx USING (account)", "account");
}

TEST_F(Authorizer, Cr1SecondStatementIsRefused) {
    expect_refused("SELECT count(*) FROM a_tx; DROP TABLE a_tx", "only one statement",
                   Errc::kInvalidArgument);
    expect_refused("SELECT 1; SELECT 2", "only one statement", Errc::kInvalidArgument);
    const Result<QueryResult> ok =
        run_query("SELECT count(*) FROM a_tx; -- done\n/* trailing */ ;", {&a_, &b_}, scope_);
    EXPECT_TRUE(ok.ok()) << ok.status().to_string();
    expect_refused("  -- nothing\n", "empty query", Errc::kInvalidArgument);
}

TEST_F(Authorizer, Cr1NullDetailArgumentsAreDecidedNormally) {
    // SELECT without a table: the authorizer sees SQLITE_SELECT with NULL details (allowed).
    const Result<QueryResult> r = run_query("SELECT 1 + 1", {&a_, &b_}, scope_);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(std::get<int64_t>(r->rows[0][0]), 2);
    // Actions on a temporary trigger: denied, no crash.
    expect_refused("CREATE TEMP TRIGGER tr AFTER INSERT ON a_tx BEGIN SELECT 1; END",
                   "CREATE TEMP TRIGGER");
    expect_refused("DROP TRIGGER IF EXISTS tr", "DROP");
    expect_refused("SELECT random()", "function random");
}

// CR-2: 10,000-row datasets, a short time limit and a 64 MiB heap.
class RunawaySql : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { configure_sqlite_heap_limit(64LL * 1024 * 1024); }
    static void TearDownTestSuite() { configure_sqlite_heap_limit(kDefaultHeapLimitBytes); }

    RunawaySql() : a_(tx_table("a_tx", 10'000)) {
        scope_.tables = {a_.schema};
        scope_.approved_columns["a_tx"] = {"account", "counterparty", "amount", "ts"};
        limits_.time_limit_ms = 500;
    }

    Status run(const std::string& sql) {
        const Result<QueryResult> r = run_query(sql, {&a_}, scope_, limits_);
        EXPECT_TRUE(r.ok() || r.status().code() == Errc::kResourceExhausted)
            << r.status().to_string();
        return r.ok() ? Status() : r.status();
    }

    Table a_;
    SqlScope scope_;
    SqlLimits limits_;
};

TEST_F(RunawaySql, Cr2UnboundedRecursiveCteHitsTimeLimit) {
    const auto start = std::chrono::steady_clock::now();
    const Status st =
        run("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
            "SELECT count(*) FROM c");
    EXPECT_EQ(st.message(), "time limit (500 ms) exceeded");
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST_F(RunawaySql, Cr2FourWayCrossJoinHitsTimeLimit) {
    const Status st = run("SELECT count(*) FROM a_tx a, a_tx b, a_tx c, a_tx d");
    EXPECT_EQ(st.message(), "time limit (500 ms) exceeded");
}

TEST_F(RunawaySql, Cr2HugeValuesHitMemoryLimit) {
    for (const char* sql : {"SELECT length(zeroblob(2000000000))",
                            "WITH RECURSIVE r(s, n) AS (SELECT 'x', 0 UNION ALL "
                            "SELECT replace(s, 'x', 'xx'), n + 1 FROM r WHERE n < 40) SELECT "
                            "max(length(s)) FROM r"}) {
        const Status st = run(sql);
        EXPECT_NE(st.message().find("memory limit"), std::string::npos)
            << sql << ": " << st.message();
    }
}

TEST_F(RunawaySql, Cr2HugePrintfWidthIsRefusedBeforeRunning) {
    const Result<QueryResult> r =
        validate_query("SELECT length(printf('%.*c', 2000000000, 'x'))", scope_, limits_);
    EXPECT_EQ(r.status().message().rfind("not allowed: function printf", 0), 0u)
        << r.status().message();
}

TEST_F(RunawaySql, Cr2LargeSortHitsHeapLimit) {
    limits_.time_limit_ms = 5'000;
    const Status st =
        run("SELECT count(*) FROM (SELECT a.ts, b.ts, a.amount * b.amount AS p FROM a_tx a, a_tx b "
            "ORDER BY p)");
    EXPECT_NE(st.message().find("memory limit"), std::string::npos) << st.message();
}

TEST_F(RunawaySql, Cr2OrdinaryRunCompletesWhileRunawayRuns) {
    Status runaway;
    std::thread t([&] {
        runaway =
            run("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                "SELECT count(*) FROM c");
    });
    const Result<QueryResult> ordinary =
        run_query("SELECT count(*), sum(amount) FROM a_tx", {&a_}, scope_, limits_);
    t.join();
    ASSERT_TRUE(ordinary.ok()) << ordinary.status().to_string();
    EXPECT_EQ(std::get<int64_t>(ordinary->rows[0][0]), 10'000);
    EXPECT_EQ(runaway.message(), "time limit (500 ms) exceeded");
}

TEST_F(RunawaySql, OutputRowLimitRefusesWholeResult) {
    limits_.max_output_rows = 100;
    const Status st = run("SELECT ts FROM a_tx");
    EXPECT_EQ(st.message(), "output row limit (100) exceeded");
}

}  // namespace
}  // namespace coffer::cleanroom
