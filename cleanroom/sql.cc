#include "cleanroom/sql.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <memory>
#include <optional>

namespace coffer::cleanroom {

namespace {

std::atomic<bool> heap_limit_configured{false};

// The one column of an approved table whose columns are all unapproved (see create_table).
constexpr char kPlaceholderColumn[] = "_coffer_no_column";

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// Scalar, aggregate and window functions a query may call. Deterministic functions only:
// random() and randomblob() would make two runs of one approved analysis differ. printf()
// and format() are left out because a huge width ('%.*c' with 2e9) keeps SQLite inside one
// instruction for many seconds, where neither the progress handler nor the length limit
// stops it.
const std::set<std::string>& allowed_functions() {
    static const std::set<std::string> kAllowed = {
        "abs",         "avg",       "ceil",      "ceiling",      "char",       "coalesce",
        "count",       "cume_dist", "date",      "datetime",     "dense_rank", "exp",
        "first_value", "floor",     "glob",      "group_concat", "hex",        "ifnull",
        "iif",         "instr",     "julianday", "lag",          "last_value", "lead",
        "length",      "like",      "likely",    "ln",           "log",        "log10",
        "log2",        "lower",     "ltrim",     "max",          "min",        "mod",
        "nth_value",   "ntile",     "nullif",    "percent_rank", "pi",         "pow",
        "power",       "quote",     "rank",      "replace",      "round",      "row_number",
        "rtrim",       "sign",      "sqrt",      "strftime",     "string_agg", "substr",
        "substring",   "sum",       "time",      "total",        "trim",       "trunc",
        "typeof",      "unicode",   "unixepoch", "unlikely",     "upper",      "zeroblob"};
    return kAllowed;
}

std::string action_name(int action) {
    static const char* const kNames[] = {"COPY",
                                         "CREATE INDEX",
                                         "CREATE TABLE",
                                         "CREATE TEMP INDEX",
                                         "CREATE TEMP TABLE",
                                         "CREATE TEMP TRIGGER",
                                         "CREATE TEMP VIEW",
                                         "CREATE TRIGGER",
                                         "CREATE VIEW",
                                         "DELETE",
                                         "DROP INDEX",
                                         "DROP TABLE",
                                         "DROP TEMP INDEX",
                                         "DROP TEMP TABLE",
                                         "DROP TEMP TRIGGER",
                                         "DROP TEMP VIEW",
                                         "DROP TRIGGER",
                                         "DROP VIEW",
                                         "INSERT",
                                         "PRAGMA",
                                         "READ",
                                         "SELECT",
                                         "TRANSACTION",
                                         "UPDATE",
                                         "ATTACH",
                                         "DETACH",
                                         "ALTER TABLE",
                                         "REINDEX",
                                         "ANALYZE",
                                         "CREATE VTABLE",
                                         "DROP VTABLE",
                                         "FUNCTION",
                                         "SAVEPOINT",
                                         "RECURSIVE"};
    if (action >= 0 && action < static_cast<int>(std::size(kNames))) {
        return kNames[action];
    }
    return "action " + std::to_string(action);
}

struct AuthState {
    // Lower-case table name -> lower-case approved column names.
    std::map<std::string, std::set<std::string>> approved;
    // Lower-case names of every table of the run's database.
    std::set<std::string> declared;
    // The first denials of the statement being prepared, for the error message.
    std::vector<std::string> denials;
};

// How many denial reasons one error message lists.
constexpr size_t kMaxReportedDenials = 4;

int deny(AuthState& state, std::string reason) {
    const bool seen =
        std::find(state.denials.begin(), state.denials.end(), reason) != state.denials.end();
    if (!seen && state.denials.size() < kMaxReportedDenials) {
        state.denials.push_back(std::move(reason));
    }
    return SQLITE_DENY;
}

std::string denial_message(const AuthState& state) {
    std::string out = "not allowed: ";
    for (size_t i = 0; i < state.denials.size(); ++i) {
        out += (i == 0 ? "" : "; ") + state.denials[i];
    }
    return out;
}

// The first keyword of the statement, upper-cased, after whitespace and comments.
std::string first_keyword(std::string_view sql) {
    size_t i = 0;
    while (i < sql.size()) {
        if (std::isspace(static_cast<unsigned char>(sql[i])) != 0) {
            ++i;
        } else if (sql.substr(i, 2) == "--") {
            const size_t end = sql.find('\n', i);
            i = end == std::string_view::npos ? sql.size() : end + 1;
        } else if (sql.substr(i, 2) == "/*") {
            const size_t end = sql.find("*/", i + 2);
            i = end == std::string_view::npos ? sql.size() : end + 2;
        } else {
            break;
        }
    }
    std::string word;
    while (i < sql.size() && std::isalpha(static_cast<unsigned char>(sql[i])) != 0) {
        word.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(sql[i++]))));
    }
    return word;
}

// True for the names of SQLite's own tables and eponymous virtual tables, which no query
// may scan even without reading a column.
bool is_system_table(const std::string& t) {
    return t.rfind("sqlite_", 0) == 0 || t.rfind("pragma_", 0) == 0 || t == "dbstat";
}

int decide_read(AuthState& state, const char* table, const char* column, const char* db) {
    if (table == nullptr || column == nullptr) {
        return deny(state, "read with missing table or column name");
    }
    const std::string t = lower(table);
    const std::string c = lower(column);
    auto it = state.approved.find(t);
    if (c.empty()) {
        // SQLite reports a scan that reads no column (SELECT count(*) FROM x) with an empty
        // column and no database name, for tables and for CTEs alike. It yields no value, so
        // it is allowed unless x is a declared table that is not approved or a system table;
        // the reads inside a CTE are authorized on their own.
        if (it == state.approved.end() && (state.declared.count(t) != 0 || is_system_table(t))) {
            return deny(state, "read of table " + t + " (table not approved)");
        }
        return SQLITE_OK;
    }
    const std::string where = t + "." + c;
    if (db == nullptr || std::string_view(db) != "main") {
        return deny(state, "read of " + where + " outside the main database");
    }
    if (it == state.approved.end()) {
        return deny(state, "read of " + where + " (table not approved)");
    }
    if (it->second.count(c) == 0) {
        return deny(state, "read of " + where);
    }
    return SQLITE_OK;
}

// The authorizer: deny unless allowed, for every action and any NULL detail argument.
int authorize(void* user, int action, const char* a1, const char* a2, const char* db,
              const char* /*trigger_or_view*/) {
    AuthState& state = *static_cast<AuthState*>(user);
    switch (action) {
        case SQLITE_SELECT:
        case SQLITE_RECURSIVE:
            return SQLITE_OK;
        case SQLITE_READ:
            return decide_read(state, a1, a2, db);
        case SQLITE_FUNCTION:
            if (a2 != nullptr && allowed_functions().count(lower(a2)) != 0) {
                return SQLITE_OK;
            }
            return deny(state, "function " + std::string(a2 != nullptr ? a2 : "(unnamed)"));
        default: {
            std::string reason = action_name(action);
            if (a1 != nullptr) {
                reason += std::string(" ") + a1;
            }
            if (a2 != nullptr && action == SQLITE_PRAGMA) {
                reason += std::string(" = ") + a2;
            }
            return deny(state, reason);
        }
    }
}

struct ProgressState {
    std::chrono::steady_clock::time_point deadline;
    bool timed_out = false;
};

int on_progress(void* user) {
    ProgressState& state = *static_cast<ProgressState*>(user);
    if (std::chrono::steady_clock::now() > state.deadline) {
        state.timed_out = true;
        return 1;
    }
    return 0;
}

struct DbCloser {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
    void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

Status sqlite_error(sqlite3* db, std::string_view what) {
    return error(Errc::kInternal, std::string(what) + ": " + sqlite3_errmsg(db));
}

Status exec(sqlite3* db, const std::string& sql) {
    char* message = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
        std::string text = message != nullptr ? message : "unknown error";
        sqlite3_free(message);
        if (text.find("out of memory") != std::string::npos) {
            return error(Errc::kResourceExhausted, "memory limit: loading the datasets: " + text);
        }
        return error(Errc::kInternal, "sqlite: " + text);
    }
    return Status();
}

Result<DbPtr> open_locked_database(const SqlLimits& limits) {
    if (!heap_limit_configured.load()) {
        configure_sqlite_heap_limit(kDefaultHeapLimitBytes);
    }
    sqlite3* raw = nullptr;
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MEMORY |
                      SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE;
    const int rc = sqlite3_open_v2(":memory:", &raw, flags, nullptr);
    DbPtr db(raw);
    if (rc != SQLITE_OK) {
        return error(Errc::kResourceExhausted, "memory limit: cannot open a database");
    }
    for (int option : {SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, SQLITE_DBCONFIG_ENABLE_TRIGGER,
                       SQLITE_DBCONFIG_ENABLE_VIEW, SQLITE_DBCONFIG_TRUSTED_SCHEMA,
                       SQLITE_DBCONFIG_DQS_DML, SQLITE_DBCONFIG_DQS_DDL}) {
        sqlite3_db_config(db.get(), option, 0, nullptr);
    }
    sqlite3_db_config(db.get(), SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
    sqlite3_limit(db.get(), SQLITE_LIMIT_LENGTH, static_cast<int>(limits.max_value_bytes));
    sqlite3_limit(db.get(), SQLITE_LIMIT_SQL_LENGTH, static_cast<int>(limits.max_sql_bytes));
    sqlite3_limit(db.get(), SQLITE_LIMIT_ATTACHED, 0);
    sqlite3_limit(db.get(), SQLITE_LIMIT_WORKER_THREADS, 0);
    sqlite3_limit(db.get(), SQLITE_LIMIT_TRIGGER_DEPTH, 1);
    // Sorts and temporary b-trees stay in memory (under the heap limit), never in files.
    COFFER_RETURN_IF_ERROR(exec(db.get(), "PRAGMA temp_store = MEMORY"));
    return db;
}

std::string sql_type(ColumnType type) {
    switch (type) {
        case ColumnType::kInt:
        case ColumnType::kBool:
            return "INTEGER";
        case ColumnType::kDecimal:
            return "REAL";
        case ColumnType::kString:
        case ColumnType::kDate:
            return "TEXT";
    }
    return "ANY";
}

// Lower-case equality, for table and column names (SQLite compares them case-insensitively).
bool same_name(std::string_view a, std::string_view b) {
    return lower(a) == lower(b);
}

// The indexes of the columns of `schema` that `scope` approves, in declaration order; nullopt
// when the table is not approved at all.
std::optional<std::vector<size_t>> approved_indexes(const DatasetSchema& schema,
                                                    const SqlScope& scope) {
    for (const auto& [table, columns] : scope.approved_columns) {
        if (!same_name(table, schema.name)) {
            continue;
        }
        std::vector<size_t> out;
        for (size_t i = 0; i < schema.columns.size(); ++i) {
            const bool approved = std::any_of(columns.begin(), columns.end(), [&](const auto& c) {
                return same_name(c, schema.columns[i].name);
            });
            if (approved) {
                out.push_back(i);
            }
        }
        return out;
    }
    return std::nullopt;
}

// Creates `schema` with only the columns at `indexes`. SQLite has no table without columns:
// an approved table with no approved column (enough for count(*)) gets kPlaceholderColumn,
// which holds NULL in every row and so carries nothing.
Status create_table(sqlite3* db, const DatasetSchema& schema, const std::vector<size_t>& indexes) {
    std::string sql = "CREATE TABLE \"" + schema.name + "\" (";
    for (size_t i = 0; i < indexes.size(); ++i) {
        const Column& column = schema.columns[indexes[i]];
        sql += (i == 0 ? "\"" : ", \"") + column.name + "\" " + sql_type(column.type);
    }
    if (indexes.empty()) {
        sql += std::string("\"") + kPlaceholderColumn + "\" INTEGER";
    }
    sql += ") STRICT";
    return exec(db, sql);
}

int bind_value(sqlite3_stmt* stmt, int index, const Value& v) {
    if (const auto* i = std::get_if<int64_t>(&v)) {
        return sqlite3_bind_int64(stmt, index, *i);
    }
    if (const auto* d = std::get_if<double>(&v)) {
        return sqlite3_bind_double(stmt, index, *d);
    }
    if (const auto* s = std::get_if<std::string>(&v)) {
        return sqlite3_bind_text64(stmt, index, s->data(), s->size(), SQLITE_TRANSIENT,
                                   SQLITE_UTF8);
    }
    if (const auto* b = std::get_if<bool>(&v)) {
        return sqlite3_bind_int64(stmt, index, *b ? 1 : 0);
    }
    return sqlite3_bind_null(stmt, index);
}

Status insert_rows(sqlite3* db, const Table& table, const std::vector<size_t>& indexes) {
    std::string sql = "INSERT INTO \"" + table.schema.name + "\" VALUES (";
    for (size_t i = 0; i < indexes.size(); ++i) {
        sql += i == 0 ? "?" : ", ?";
    }
    sql += indexes.empty() ? "NULL)" : ")";
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
        return sqlite_error(db, "preparing the insert of " + table.schema.name);
    }
    StmtPtr stmt(raw);
    for (const Row& row : table.rows) {
        COFFER_CHECK(row.size() == table.schema.columns.size(), "row width matches its schema");
        for (size_t i = 0; i < indexes.size(); ++i) {
            bind_value(stmt.get(), static_cast<int>(i + 1), row[indexes[i]]);
        }
        const int rc = sqlite3_step(stmt.get());
        if (rc != SQLITE_DONE) {
            if (rc == SQLITE_NOMEM || rc == SQLITE_FULL) {
                return error(Errc::kResourceExhausted,
                             "memory limit: loading " + table.schema.name);
            }
            return sqlite_error(db, "loading " + table.schema.name);
        }
        sqlite3_reset(stmt.get());
    }
    return Status();
}

// Skips whitespace, comments and semicolons; true if nothing else follows.
bool only_trivia(std::string_view tail) {
    size_t i = 0;
    while (i < tail.size()) {
        const char c = tail[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == ';') {
            ++i;
        } else if (tail.substr(i, 2) == "--") {
            const size_t end = tail.find('\n', i);
            i = end == std::string_view::npos ? tail.size() : end + 1;
        } else if (tail.substr(i, 2) == "/*") {
            const size_t end = tail.find("*/", i + 2);
            i = end == std::string_view::npos ? tail.size() : end + 2;
        } else {
            return false;
        }
    }
    return true;
}

// Which columns the database of one pass holds.
enum class SchemaMode {
    // Every declared column of every table of the scope: the authorizer names each forbidden
    // read ("not allowed: read of a_tx.note").
    kFull,
    // Only the approved columns of the approved tables: what no authorizer callback covers
    // (the columns a JOIN ... USING compares) cannot reach an unapproved column.
    kApprovedOnly,
};

Status build_database(sqlite3* db, const std::vector<const Table*>& tables, const SqlScope& scope,
                      SchemaMode mode) {
    for (const DatasetSchema& schema : scope.tables) {
        std::vector<size_t> indexes;
        if (mode == SchemaMode::kFull) {
            for (size_t i = 0; i < schema.columns.size(); ++i) {
                indexes.push_back(i);
            }
        } else if (std::optional<std::vector<size_t>> approved = approved_indexes(schema, scope)) {
            indexes = std::move(*approved);
        } else {
            continue;
        }
        COFFER_RETURN_IF_ERROR(create_table(db, schema, indexes));
    }
    COFFER_RETURN_IF_ERROR(exec(db, "BEGIN"));
    for (const Table* table : tables) {
        auto schema =
            std::find_if(scope.tables.begin(), scope.tables.end(),
                         [&](const DatasetSchema& s) { return s.name == table->schema.name; });
        if (schema == scope.tables.end()) {
            return error(Errc::kInvalidArgument,
                         "table " + table->schema.name + " is not in the query's scope");
        }
        COFFER_CHECK(mode == SchemaMode::kApprovedOnly, "rows load only into approved columns");
        std::optional<std::vector<size_t>> indexes = approved_indexes(*schema, scope);
        if (!indexes) {
            continue;
        }
        COFFER_RETURN_IF_ERROR(insert_rows(db, *table, *indexes));
    }
    COFFER_RETURN_IF_ERROR(exec(db, "COMMIT"));
    return exec(db, "PRAGMA query_only = 1");
}

// True when `sql` holds the keyword NATURAL outside string literals, quoted identifiers and
// comments. A NATURAL JOIN compares every pair of columns with the same name, approved or
// not, and the authorizer is never asked about them; it is refused instead of silently
// joining on fewer columns in the approved-only database than the query says. A bare
// identifier spelt "natural" is refused too (quote it).
bool has_natural_keyword(std::string_view sql) {
    size_t i = 0;
    while (i < sql.size()) {
        const char c = sql[i];
        if (sql.substr(i, 2) == "--") {
            const size_t end = sql.find('\n', i);
            i = end == std::string_view::npos ? sql.size() : end + 1;
        } else if (sql.substr(i, 2) == "/*") {
            const size_t end = sql.find("*/", i + 2);
            i = end == std::string_view::npos ? sql.size() : end + 2;
        } else if (c == '\'' || c == '"' || c == '`' || c == '[') {
            // A doubled quote inside a literal reads as two literals back to back: same skip.
            const char close = c == '[' ? ']' : c;
            const size_t end = sql.find(close, i + 1);
            i = end == std::string_view::npos ? sql.size() : end + 1;
        } else if (std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_') {
            size_t end = i;
            while (end < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[end])) != 0 ||
                                        sql[end] == '_' || sql[end] == '$')) {
                ++end;
            }
            if (lower(sql.substr(i, end - i)) == "natural") {
                return true;
            }
            i = end;
        } else {
            ++i;
        }
    }
    return false;
}

}  // namespace

void configure_sqlite_heap_limit(int64_t bytes) {
    sqlite3_hard_heap_limit64(bytes);
    heap_limit_configured.store(true);
}

namespace {

// A database locked down for one statement: the authorizer and progress handler point at
// members, so this object must outlive every statement prepared on `db`.
struct LockedRun {
    DbPtr db;
    AuthState auth;
    ProgressState progress;
    SqlLimits limits;
};

Result<StmtPtr> prepare_locked(LockedRun& run, std::string_view sql, const SqlScope& scope) {
    if (static_cast<int64_t>(sql.size()) > run.limits.max_sql_bytes) {
        return error(Errc::kResourceExhausted,
                     "query longer than " + std::to_string(run.limits.max_sql_bytes) + " bytes");
    }
    for (const auto& [table, columns] : scope.approved_columns) {
        std::set<std::string>& cols = run.auth.approved[lower(table)];
        for (const std::string& c : columns) {
            cols.insert(lower(c));
        }
    }
    for (const DatasetSchema& t : scope.tables) {
        run.auth.declared.insert(lower(t.name));
    }
    sqlite3_set_authorizer(run.db.get(), authorize, &run.auth);

    sqlite3_stmt* raw = nullptr;
    const char* tail = nullptr;
    const int rc =
        sqlite3_prepare_v3(run.db.get(), sql.data(), static_cast<int>(sql.size()), 0, &raw, &tail);
    StmtPtr stmt(raw);
    if (!run.auth.denials.empty()) {
        return error(Errc::kPermissionDenied,
                     denial_message(run.auth) + " (in a " + first_keyword(sql) + " statement)");
    }
    if (rc != SQLITE_OK) {
        return error(Errc::kInvalidArgument,
                     std::string("SQL error: ") + sqlite3_errmsg(run.db.get()));
    }
    if (!stmt) {
        return error(Errc::kInvalidArgument, "empty query");
    }
    const size_t used = static_cast<size_t>(tail - sql.data());
    if (!only_trivia(sql.substr(used))) {
        return error(
            Errc::kInvalidArgument,
            "only one statement is allowed; found more after offset " + std::to_string(used));
    }
    // A statement may pass the authorizer by doing nothing (DROP TRIGGER IF EXISTS on a
    // missing trigger) or by describing instead of querying (EXPLAIN): only queries run.
    const std::string keyword = first_keyword(sql);
    if (keyword != "SELECT" && keyword != "WITH" && keyword != "VALUES") {
        return error(Errc::kPermissionDenied,
                     "not allowed: only SELECT statements may run (got " + keyword + ")");
    }
    if (sqlite3_stmt_readonly(stmt.get()) == 0 || sqlite3_stmt_isexplain(stmt.get()) != 0) {
        return error(Errc::kPermissionDenied, "not allowed: a statement that writes");
    }
    return stmt;
}

QueryResult describe(sqlite3_stmt* stmt) {
    QueryResult result;
    const int n = sqlite3_column_count(stmt);
    for (int i = 0; i < n; ++i) {
        const char* name = sqlite3_column_name(stmt, i);
        const char* table = sqlite3_column_table_name(stmt, i);
        const char* origin = sqlite3_column_origin_name(stmt, i);
        result.columns.emplace_back(name != nullptr ? name : "");
        result.origins.push_back(table != nullptr && origin != nullptr
                                     ? lower(table) + "." + lower(origin)
                                     : std::string());
    }
    return result;
}

Value column_value(sqlite3_stmt* stmt, int i) {
    switch (sqlite3_column_type(stmt, i)) {
        case SQLITE_INTEGER:
            return Value{static_cast<int64_t>(sqlite3_column_int64(stmt, i))};
        case SQLITE_FLOAT:
            return Value{sqlite3_column_double(stmt, i)};
        case SQLITE_TEXT:
        case SQLITE_BLOB: {
            const void* p = sqlite3_column_blob(stmt, i);
            const int n = sqlite3_column_bytes(stmt, i);
            return Value{std::string(static_cast<const char*>(p), static_cast<size_t>(n))};
        }
        default:
            return Value{};
    }
}

Status step_error(LockedRun& run, int rc) {
    const int primary = rc & 0xff;
    if (run.progress.timed_out || primary == SQLITE_INTERRUPT) {
        return error(Errc::kResourceExhausted,
                     "time limit (" + std::to_string(run.limits.time_limit_ms) + " ms) exceeded");
    }
    if (primary == SQLITE_NOMEM) {
        return error(Errc::kResourceExhausted, "memory limit: the SQLite heap limit was reached");
    }
    if (primary == SQLITE_TOOBIG) {
        return error(Errc::kResourceExhausted, "memory limit: a value longer than " +
                                                   std::to_string(run.limits.max_value_bytes) +
                                                   " bytes");
    }
    return error(Errc::kInvalidArgument,
                 std::string("SQL error while running: ") + sqlite3_errmsg(run.db.get()));
}

}  // namespace

namespace {

// The first two passes of every query, on empty databases: the full schema (so that a read
// of an unapproved column is refused by name), then the NATURAL rule.
Status check_full_schema(std::string_view sql, const SqlScope& scope, const SqlLimits& limits) {
    LockedRun run;
    run.limits = limits;
    COFFER_ASSIGN_OR_RETURN(run.db, open_locked_database(limits));
    COFFER_RETURN_IF_ERROR(build_database(run.db.get(), {}, scope, SchemaMode::kFull));
    COFFER_ASSIGN_OR_RETURN(StmtPtr stmt, prepare_locked(run, sql, scope));
    if (has_natural_keyword(sql)) {
        return error(Errc::kPermissionDenied,
                     "not allowed: NATURAL JOIN (it compares every column of the same name, "
                     "approved or not); join with ON or USING on approved columns");
    }
    return Status();
}

// Prepares `sql` on `run`, whose database holds only approved columns. A query that passed
// the full-schema pass and fails here names a column that is not approved without the
// authorizer seeing it (JOIN ... USING): refused as such.
Result<StmtPtr> prepare_approved_only(LockedRun& run, std::string_view sql, const SqlScope& scope) {
    Result<StmtPtr> stmt = prepare_locked(run, sql, scope);
    if (!stmt.ok() && stmt.status().code() == Errc::kInvalidArgument) {
        return error(Errc::kPermissionDenied,
                     "not allowed: the query needs a column that is not approved (" +
                         stmt.status().message() +
                         "); the database of a run holds only the approved columns, and a "
                         "JOIN ... USING must name approved columns");
    }
    return stmt;
}

}  // namespace

Result<QueryResult> validate_query(std::string_view sql, const SqlScope& scope,
                                   const SqlLimits& limits) {
    COFFER_RETURN_IF_ERROR(check_full_schema(sql, scope, limits));
    LockedRun run;
    run.limits = limits;
    COFFER_ASSIGN_OR_RETURN(run.db, open_locked_database(limits));
    COFFER_RETURN_IF_ERROR(build_database(run.db.get(), {}, scope, SchemaMode::kApprovedOnly));
    COFFER_ASSIGN_OR_RETURN(StmtPtr stmt, prepare_approved_only(run, sql, scope));
    return describe(stmt.get());
}

Result<QueryResult> run_query(std::string_view sql, const std::vector<const Table*>& tables,
                              const SqlScope& scope, const SqlLimits& limits) {
    COFFER_RETURN_IF_ERROR(check_full_schema(sql, scope, limits));
    LockedRun run;
    run.limits = limits;
    COFFER_ASSIGN_OR_RETURN(run.db, open_locked_database(limits));
    COFFER_RETURN_IF_ERROR(build_database(run.db.get(), tables, scope, SchemaMode::kApprovedOnly));
    COFFER_ASSIGN_OR_RETURN(StmtPtr stmt, prepare_approved_only(run, sql, scope));

    run.progress.deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(limits.time_limit_ms);
    sqlite3_progress_handler(run.db.get(), kProgressInstructions, on_progress, &run.progress);
    QueryResult result = describe(stmt.get());
    const int width = sqlite3_column_count(stmt.get());
    for (;;) {
        const int rc = sqlite3_step(stmt.get());
        if (rc == SQLITE_DONE) {
            break;
        }
        if (rc != SQLITE_ROW) {
            return step_error(run, rc);
        }
        if (result.rows.size() >= limits.max_output_rows) {
            return error(
                Errc::kResourceExhausted,
                "output row limit (" + std::to_string(limits.max_output_rows) + ") exceeded");
        }
        Row row;
        row.reserve(static_cast<size_t>(width));
        for (int i = 0; i < width; ++i) {
            row.push_back(column_value(stmt.get(), i));
        }
        result.rows.push_back(std::move(row));
    }
    return result;
}

}  // namespace coffer::cleanroom
