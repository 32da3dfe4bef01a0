// Dataset declarations and the typed tables that clean-room analyses read.
//
// A party declares a dataset as JSON before uploading rows:
//
//   {"name": "a_tx",
//    "columns": [{"name": "account", "type": "int"}, {"name": "note", "type": "string"}],
//    "entity_columns": ["account"], "joinable_columns": ["account"],
//    "output_columns": ["account"]}
//
// Types: int (64-bit signed), decimal (IEEE double), string (UTF-8 bytes as given), bool,
// date (ISO 8601 YYYY-MM-DD, kept as its string so that it sorts). Every value may be NULL
// (a missing value). All types and functions here are thread-compatible value types.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"

namespace coffer::cleanroom {

// Named limits of a declaration.
constexpr size_t kMaxColumns = 256;
constexpr size_t kMaxNameLength = 63;
constexpr size_t kMaxDeclarationBytes = 64 * 1024;

enum class ColumnType { kInt, kDecimal, kString, kBool, kDate };

// "int", "decimal", "string", "bool", "date".
std::string_view column_type_name(ColumnType type);

struct Column {
    std::string name;
    ColumnType type = ColumnType::kString;
};

struct DatasetSchema {
    std::string name;
    std::vector<Column> columns;
    // Columns that identify an entity (a customer, a patient): used for the distinct-entity
    // threshold and for per-party routing of outputs.
    std::vector<std::string> entity_columns;
    // Columns that analyses may use to join this dataset with others' (declarative: see
    // docs/cleanroom-engine.md for what the engine enforces).
    std::vector<std::string> joinable_columns;
    // Columns whose raw values may appear in an output row.
    std::vector<std::string> output_columns;

    // Index of the column called `name`, if any.
    std::optional<size_t> column_index(std::string_view name) const;
    bool is_output_column(std::string_view name) const;
};

// One value of a table cell. monostate is NULL (missing).
using Value = std::variant<std::monostate, int64_t, double, std::string, bool>;
using Row = std::vector<Value>;

inline bool is_null(const Value& v) {
    return std::holds_alternative<std::monostate>(v);
}

// A canonical text form of a value, used to compare values across datasets (routing, entity
// sets): ints in decimal, decimals with 17 significant digits (integral decimals as ints),
// bools as true/false, NULL as an empty optional.
std::optional<std::string> value_key(const Value& v);

// A dataset's rows, all of which match `schema` (row.size() == schema.columns.size() and
// each cell holds NULL or the alternative of its column's type; date cells hold strings).
struct Table {
    DatasetSchema schema;
    // The party (user id) that owns the dataset; per-party routing is based on it.
    std::string owner;
    std::vector<Row> rows;
};

// True if `name` matches [a-z_][a-z0-9_]{0,62}.
bool valid_name(std::string_view name);

// Parses and validates a declaration. Errors (kInvalidArgument): malformed JSON, unknown or
// missing keys, bad names or types, duplicate columns, referenced columns that do not
// exist; kResourceExhausted past kMaxColumns or kMaxDeclarationBytes.
Result<DatasetSchema> parse_schema(std::string_view json_text);

// Validates a schema built in code (the same rules as parse_schema).
Status validate_schema(const DatasetSchema& schema);

// The declaration as canonical JSON (keys sorted, no spaces).
std::string schema_to_json(const DatasetSchema& schema);

// Parses a date "YYYY-MM-DD" with a real day of month (years 0001-9999).
bool valid_date(std::string_view text);

}  // namespace coffer::cleanroom
