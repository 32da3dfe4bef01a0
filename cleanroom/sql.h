// The SQL sandbox: one query over an in-memory SQLite database built for one run.
//
// Lock-down (see docs/cleanroom-engine.md for the full rule table):
// - The database is private to the run (":memory:", no shared cache), loaded from the typed
//   tables, then switched to query_only. Extension loading, triggers, views and writable
//   schema are disabled with sqlite3_db_config; SQLITE_LIMIT_ATTACHED is 0.
// - An authorizer decides every action at prepare time, deny unless allowed: SELECT,
//   READ of an approved table.column of the main database (the empty column SQLite passes
//   for `count(*)` needs only the table approved), RECURSIVE (recursive CTEs), and calls of
//   functions on an allow-list. Everything else (PRAGMA, ATTACH, DETACH, writes, CREATE,
//   DROP, ALTER, transactions, reads of sqlite_master / sqlite_schema / pragma_* / any other
//   table, load_extension, NULL detail strings) is denied — never ignored, so an unapproved
//   column cannot steer WHERE or ORDER BY.
// - The database of a run holds ONLY the approved columns of the approved tables: the
//   columns a JOIN ... USING compares reach no authorizer callback (SQLite 3.40), so an
//   unapproved column must not exist there at all. NATURAL JOIN is refused outright.
// - Exactly one statement: anything but whitespace, comments and ';' after it is refused.
// - Limits: a deadline checked by a progress handler ("time limit"), SQLITE_LIMIT_LENGTH and
//   the process-wide heap limit ("memory limit"), a maximum number of output rows.
//
// Thread-safety: each call builds its own connection, so calls may run on different threads
// at once; they share the process-wide SQLite heap limit (configure_sqlite_heap_limit).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cleanroom/schema.h"
#include "common/result.h"

namespace coffer::cleanroom {

constexpr int64_t kDefaultTimeLimitMs = 10'000;
constexpr int64_t kDefaultMaxValueBytes = 16 * 1024 * 1024;
constexpr int64_t kDefaultMaxSqlBytes = 100 * 1024;
constexpr size_t kDefaultMaxOutputRows = 100'000;
constexpr int64_t kDefaultHeapLimitBytes = 1024LL * 1024 * 1024;
// How many SQLite virtual-machine instructions run between two deadline checks.
constexpr int kProgressInstructions = 10'000;

struct SqlLimits {
    int64_t time_limit_ms = kDefaultTimeLimitMs;
    // Largest string or blob a run may build (SQLITE_LIMIT_LENGTH, per connection).
    int64_t max_value_bytes = kDefaultMaxValueBytes;
    int64_t max_sql_bytes = kDefaultMaxSqlBytes;
    size_t max_output_rows = kDefaultMaxOutputRows;
};

// What a query may touch: the tables of the run (schemas, for validation) and, per table,
// the columns its owners approved. A table absent from `approved_columns` is not approved.
struct SqlScope {
    std::vector<DatasetSchema> tables;
    std::map<std::string, std::set<std::string>> approved_columns;
};

struct QueryResult {
    std::vector<std::string> columns;
    // Per output column, "table.column" when the column is a plain dataset column, else "".
    std::vector<std::string> origins;
    std::vector<Row> rows;
};

// Sets SQLite's process-wide hard heap limit (sqlite3_hard_heap_limit64). It is
// process-global by SQLite's design: every clean-room run in the process shares it, which is
// why the per-run guard against one huge value is SQLITE_LIMIT_LENGTH instead. Safe to call
// at any time from any thread; run_query sets kDefaultHeapLimitBytes on first use if this was
// never called.
void configure_sqlite_heap_limit(int64_t bytes);

// Prepares `sql` (without running it) in three passes, each under the same authorizer and
// one-statement rule as a run: against an empty database with the full schemas of `scope`
// (so a forbidden read is named), then the NATURAL rule, then against an empty database
// holding only the approved columns of the approved tables (what a run loads). Returns the
// output column names and origins and no rows. Errors: kPermissionDenied naming the
// forbidden action or table.column ("not allowed: read of a_tx.note"), a NATURAL JOIN, or a
// query that does not prepare with only the approved columns (JOIN ... USING an unapproved
// column); kInvalidArgument for syntax errors, empty queries, more than one statement, or a
// statement that is not read-only.
Result<QueryResult> validate_query(std::string_view sql, const SqlScope& scope,
                                   const SqlLimits& limits = {});

// Checks `sql` as validate_query does, loads the approved columns of `tables` (each must be
// in scope.tables by schema name; unapproved columns and tables are not loaded) into a fresh
// in-memory database and runs `sql` under `scope` and `limits`. The whole result or an error:
// errors of validate_query plus kResourceExhausted "time limit (N ms) exceeded", "memory limit:
// ...", "output row limit (N) exceeded". No partial rows are ever returned.
Result<QueryResult> run_query(std::string_view sql, const std::vector<const Table*>& tables,
                              const SqlScope& scope, const SqlLimits& limits = {});

}  // namespace coffer::cleanroom
