// The clean-room engine beside plain SQLite doing the same work, on the AMLSim bank split
// (the generated sample of cleanroom/samples.h when ../shared/data/amlsim is missing):
// - CsvLoad: one bank's legs CSV into a queryable SQLite table. Ours: parse_csv (strict
//   RFC 4180, typed values) and run_query loading the table into its sandbox; the reference
//   splits the same text naively and inserts it with one prepared statement in one
//   transaction. Rows per second are in the items_per_second column.
// - SqlAnalysis: one SQL analysis over the three banks' rows. Ours: run_analysis (fresh
//   locked-down database, authorizer, output policy, routing, per-recipient JSON); the
//   reference builds a plain in-memory database from the same parsed rows and runs the same
//   query with SQLite's defaults. SqlSandbox is run_query alone (the sandbox without policy,
//   routing and result documents) against plain SQLite with temporary b-trees in memory as
//   in the sandbox. SqlQueryOnly is the query alone on a plain database built beforehand.
// - AmlJoint: the joint aml analysis of the scenario (no reference: plain SQLite has none).
// The upload of the same CSV through a three-node sandbox (HPKE chunks, commit, replication)
// is timed by scripts/bench.sh beside BM_CleanroomCsvLoad/coffer.
#include <benchmark/benchmark.h>
#include <sqlite3.h>

#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cleanroom/analysis.h"
#include "cleanroom/csv.h"
#include "cleanroom/samples.h"
#include "cleanroom/schema.h"
#include "cleanroom/sql.h"

namespace {

using coffer::Result;
using coffer::cleanroom::AnalysisDocument;
using coffer::cleanroom::AnalysisResult;
using coffer::cleanroom::ColumnType;
using coffer::cleanroom::DatasetSchema;
using coffer::cleanroom::kAmlBanks;
using coffer::cleanroom::QueryResult;
using coffer::cleanroom::Row;
using coffer::cleanroom::RunOptions;
using coffer::cleanroom::Scenario;
using coffer::cleanroom::ScenarioParty;
using coffer::cleanroom::SqlScope;
using coffer::cleanroom::Table;
using coffer::cleanroom::Value;

constexpr char kLoadedBank[] = "bank_0";

// Per account over all three banks: legs, money moved, distinct counterparties.
constexpr char kAnalysisSql[] =
    "WITH legs AS ("
    " SELECT account, counterparty, amount FROM bank_0 UNION ALL"
    " SELECT account, counterparty, amount FROM bank_1 UNION ALL"
    " SELECT account, counterparty, amount FROM bank_2) "
    "SELECT account, count(*) AS transfers, sum(amount) AS total,"
    " count(DISTINCT counterparty) AS _entities FROM legs GROUP BY account";

struct Fixture {
    Scenario scenario;
    std::map<std::string, DatasetSchema> schemas;
    std::map<std::string, const ScenarioParty*> parties;
    std::map<std::string, Table> tables;
    AnalysisDocument sql_doc;
    AnalysisDocument aml_doc;
    std::string error;
};

std::string sql_analysis_document() {
    std::string datasets;
    for (int b = 0; b < kAmlBanks; ++b) {
        datasets += std::string(b == 0 ? "" : ",") + "{\"name\": \"bank_" + std::to_string(b) +
                    "\", \"columns\": [\"account\", \"counterparty\", \"amount\"]}";
    }
    return std::string("{\"version\": 1, \"kind\": \"sql\", \"query\": \"") + kAnalysisSql +
           "\", \"datasets\": [" + datasets +
           "], \"output_policy\": {\"columns\": [\"account\", \"transfers\", \"total\", "
           "\"_entities\"], \"min_entities\": 3, \"routing_column\": \"account\"}, "
           "\"recipients\": [\"bank_0\", \"bank_1\", \"bank_2\"], \"triggers\": [\"bank_0\"]}";
}

std::string load_fixture(Fixture& f) {
    const Result<Scenario> s = coffer::cleanroom::make_aml_scenario(COFFER_DATA_DIR);
    if (!s.ok()) {
        return s.status().to_string();
    }
    f.scenario = *s;
    for (const ScenarioParty& p : f.scenario.parties) {
        const Result<DatasetSchema> schema = coffer::cleanroom::parse_schema(p.declaration);
        const Result<Table> table = schema.ok() ? coffer::cleanroom::parse_csv(*schema, p.csv)
                                                : Result<Table>(schema.status());
        if (!table.ok()) {
            return table.status().to_string();
        }
        f.schemas[p.dataset] = *schema;
        f.parties[p.dataset] = &p;
        f.tables[p.dataset] = *table;
        f.tables[p.dataset].owner = p.party;
    }
    const Result<AnalysisDocument> sql_doc =
        coffer::cleanroom::parse_analysis(sql_analysis_document());
    const Result<AnalysisDocument> aml_doc =
        coffer::cleanroom::parse_analysis(f.scenario.analyses.at(0).document);
    if (!sql_doc.ok() || !aml_doc.ok()) {
        return (sql_doc.ok() ? aml_doc.status() : sql_doc.status()).to_string();
    }
    f.sql_doc = *sql_doc;
    f.aml_doc = *aml_doc;
    return "";
}

const Fixture& fixture() {
    static const Fixture* f = [] {
        auto* loaded = new Fixture();
        loaded->error = load_fixture(*loaded);
        return loaded;
    }();
    return *f;
}

// Skips the benchmark with the fixture's error, if any.
bool fixture_ok(benchmark::State& state) {
    if (!fixture().error.empty()) {
        state.SkipWithError(("scenario: " + fixture().error).c_str());
        return false;
    }
    return true;
}

std::string source_label(size_t rows) {
    return fixture().scenario.source + ", " + std::to_string(rows) + " rows";
}

// ---- plain SQLite ----

// A plain in-memory database. memory_temp_store: temporary b-trees (GROUP BY, DISTINCT,
// sorting) in memory, as the sandbox keeps them so that no plaintext reaches a temp file.
struct Db {
    sqlite3* db = nullptr;
    explicit Db(bool memory_temp_store = false) {
        sqlite3_open(":memory:", &db);
        if (memory_temp_store) {
            sqlite3_exec(db, "PRAGMA temp_store = MEMORY", nullptr, nullptr, nullptr);
        }
    }
    ~Db() { sqlite3_close(db); }
    Db(const Db&) = delete;
    Db& operator=(const Db&) = delete;
};

bool exec(sqlite3* db, const std::string& sql) {
    return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK;
}

std::string create_table_sql(const DatasetSchema& s) {
    std::string sql = "CREATE TABLE " + s.name + " (";
    for (size_t i = 0; i < s.columns.size(); ++i) {
        const ColumnType t = s.columns[i].type;
        sql += (i == 0 ? "" : ", ") + s.columns[i].name +
               (t == ColumnType::kInt       ? " INTEGER"
                : t == ColumnType::kDecimal ? " REAL"
                                            : " TEXT");
    }
    return sql + ") STRICT";
}

sqlite3_stmt* insert_statement(sqlite3* db, const DatasetSchema& s) {
    std::string sql = "INSERT INTO " + s.name + " VALUES (";
    for (size_t i = 0; i < s.columns.size(); ++i) {
        sql += i == 0 ? "?" : ", ?";
    }
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db, (sql + ")").c_str(), -1, &stmt, nullptr);
    return stmt;
}

// The reference CSV load: naive splitting (no quotes, no checks) and typed binds.
int64_t raw_sqlite_csv_load(const DatasetSchema& s, std::string_view csv) {
    Db db;
    exec(db.db, create_table_sql(s));
    sqlite3_stmt* insert = insert_statement(db.db, s);
    exec(db.db, "BEGIN");
    size_t start = csv.find('\n') + 1;
    std::string field;
    while (start < csv.size()) {
        const size_t end = csv.find('\n', start);
        int column = 0;
        for (size_t f = start; f <= end; ++column) {
            const size_t comma = std::min(csv.find(',', f), end);
            field.assign(csv.substr(f, comma - f));
            const ColumnType t = s.columns[static_cast<size_t>(column)].type;
            if (t == ColumnType::kInt) {
                sqlite3_bind_int64(insert, column + 1, std::strtoll(field.c_str(), nullptr, 10));
            } else if (t == ColumnType::kDecimal) {
                sqlite3_bind_double(insert, column + 1, std::strtod(field.c_str(), nullptr));
            } else {
                sqlite3_bind_text(insert, column + 1, field.data(), static_cast<int>(field.size()),
                                  SQLITE_TRANSIENT);
            }
            f = comma + 1;
        }
        sqlite3_step(insert);
        sqlite3_reset(insert);
        start = end + 1;
    }
    exec(db.db, "COMMIT");
    sqlite3_finalize(insert);
    sqlite3_stmt* count = nullptr;
    sqlite3_prepare_v2(db.db, ("SELECT count(*) FROM " + s.name).c_str(), -1, &count, nullptr);
    sqlite3_step(count);
    const int64_t rows = sqlite3_column_int64(count, 0);
    sqlite3_finalize(count);
    return rows;
}

void load_table(sqlite3* db, const Table& t) {
    exec(db, create_table_sql(t.schema));
    sqlite3_stmt* insert = insert_statement(db, t.schema);
    exec(db, "BEGIN");
    for (const Row& row : t.rows) {
        for (size_t c = 0; c < row.size(); ++c) {
            const int i = static_cast<int>(c) + 1;
            if (const auto* v = std::get_if<int64_t>(&row[c])) {
                sqlite3_bind_int64(insert, i, *v);
            } else if (const auto* d = std::get_if<double>(&row[c])) {
                sqlite3_bind_double(insert, i, *d);
            } else if (const auto* s = std::get_if<std::string>(&row[c])) {
                sqlite3_bind_text(insert, i, s->data(), static_cast<int>(s->size()), SQLITE_STATIC);
            } else {
                sqlite3_bind_null(insert, i);
            }
        }
        sqlite3_step(insert);
        sqlite3_reset(insert);
    }
    exec(db, "COMMIT");
    sqlite3_finalize(insert);
}

// Runs the analysis query and copies every row out, as the engine does.
size_t raw_query(sqlite3* db) {
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db, kAnalysisSql, -1, &stmt, nullptr);
    std::vector<Row> rows;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        rows.push_back(
            Row{Value{sqlite3_column_int64(stmt, 0)}, Value{sqlite3_column_int64(stmt, 1)},
                Value{sqlite3_column_double(stmt, 2)}, Value{sqlite3_column_int64(stmt, 3)}});
    }
    sqlite3_finalize(stmt);
    return rows.size();
}

// ---- benchmarks ----

void BM_CsvLoad_coffer(benchmark::State& state) {
    if (!fixture_ok(state)) {
        return;
    }
    const DatasetSchema& schema = fixture().schemas.at(kLoadedBank);
    const std::string& csv = fixture().parties.at(kLoadedBank)->csv;
    SqlScope scope;
    scope.tables = {schema};
    scope.approved_columns[kLoadedBank] = {};
    size_t rows = 0;
    for (auto _ : state) {
        Result<Table> t = coffer::cleanroom::parse_csv(schema, csv);
        const Table* loaded = t.ok() ? &*t : nullptr;
        const Result<QueryResult> r =
            t.ok() ? coffer::cleanroom::run_query(
                         std::string("SELECT count(*) AS n FROM ") + kLoadedBank, {loaded}, scope)
                   : Result<QueryResult>(t.status());
        if (!r.ok()) {
            state.SkipWithError(r.status().to_string().c_str());
            return;
        }
        rows = t->rows.size();
        benchmark::DoNotOptimize(r->rows.size());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(rows));
    state.SetLabel(source_label(rows));
}

void BM_CsvLoad_raw(benchmark::State& state) {
    if (!fixture_ok(state)) {
        return;
    }
    const DatasetSchema& schema = fixture().schemas.at(kLoadedBank);
    const std::string& csv = fixture().parties.at(kLoadedBank)->csv;
    int64_t rows = 0;
    for (auto _ : state) {
        rows = raw_sqlite_csv_load(schema, csv);
        benchmark::DoNotOptimize(rows);
    }
    state.SetItemsProcessed(state.iterations() * rows);
    state.SetLabel(source_label(static_cast<size_t>(rows)));
}

size_t input_rows() {
    size_t rows = 0;
    for (const auto& [name, t] : fixture().tables) {
        rows += t.rows.size();
    }
    return rows;
}

void run_engine(benchmark::State& state, const AnalysisDocument& doc) {
    if (!fixture_ok(state)) {
        return;
    }
    for (auto _ : state) {
        const Result<AnalysisResult> r =
            coffer::cleanroom::run_analysis(doc, fixture().tables, RunOptions{{}, "bank_0"});
        if (!r.ok()) {
            state.SkipWithError(r.status().to_string().c_str());
            return;
        }
        benchmark::DoNotOptimize(r->outputs.size());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(input_rows()));
    state.SetLabel(source_label(input_rows()));
}

void BM_SqlAnalysis_coffer(benchmark::State& state) {
    run_engine(state, fixture().sql_doc);
}

void raw_load_and_query(benchmark::State& state, bool memory_temp_store) {
    if (!fixture_ok(state)) {
        return;
    }
    for (auto _ : state) {
        Db db(memory_temp_store);
        for (const auto& [name, t] : fixture().tables) {
            load_table(db.db, t);
        }
        benchmark::DoNotOptimize(raw_query(db.db));
    }
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(input_rows()));
    state.SetLabel(source_label(input_rows()));
}

void BM_SqlAnalysis_raw(benchmark::State& state) {
    raw_load_and_query(state, false);
}

void BM_SqlAnalysis_raw_memory_temp(benchmark::State& state) {
    raw_load_and_query(state, true);
}

// The sandbox alone (fresh locked-down database, load, authorizer, query) without the output
// policy, routing and result documents of run_analysis.
void BM_SqlSandbox_coffer(benchmark::State& state) {
    if (!fixture_ok(state)) {
        return;
    }
    SqlScope scope;
    std::vector<const Table*> tables;
    for (const auto& [name, t] : fixture().tables) {
        scope.tables.push_back(t.schema);
        scope.approved_columns[name] = {"account", "counterparty", "amount"};
        tables.push_back(&t);
    }
    for (auto _ : state) {
        const Result<QueryResult> r = coffer::cleanroom::run_query(kAnalysisSql, tables, scope);
        if (!r.ok()) {
            state.SkipWithError(r.status().to_string().c_str());
            return;
        }
        benchmark::DoNotOptimize(r->rows.size());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(input_rows()));
    state.SetLabel(source_label(input_rows()));
}

void BM_SqlQueryOnly_raw(benchmark::State& state) {
    if (!fixture_ok(state)) {
        return;
    }
    Db db;
    for (const auto& [name, t] : fixture().tables) {
        load_table(db.db, t);
    }
    for (auto _ : state) {
        benchmark::DoNotOptimize(raw_query(db.db));
    }
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(input_rows()));
    state.SetLabel(source_label(input_rows()));
}

void BM_AmlJoint_coffer(benchmark::State& state) {
    run_engine(state, fixture().aml_doc);
}

}  // namespace

BENCHMARK(BM_CsvLoad_coffer)->Name("BM_CleanroomCsvLoad/coffer")->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CsvLoad_raw)
    ->Name("BM_CleanroomCsvLoad/raw_sqlite_insert")
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SqlAnalysis_coffer)
    ->Name("BM_CleanroomSqlAnalysis/coffer")
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SqlAnalysis_raw)
    ->Name("BM_CleanroomSqlAnalysis/raw_sqlite_load_and_query")
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SqlSandbox_coffer)
    ->Name("BM_CleanroomSqlSandbox/coffer")
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SqlAnalysis_raw_memory_temp)
    ->Name("BM_CleanroomSqlSandbox/raw_sqlite_memory_temp_store")
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SqlQueryOnly_raw)
    ->Name("BM_CleanroomSqlQueryOnly/raw_sqlite")
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AmlJoint_coffer)
    ->Name("BM_CleanroomAmlJoint/coffer")
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);
