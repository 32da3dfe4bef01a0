// RFC 4180 CSV uploads, parsed all-or-nothing into a typed Table.
//
// Format (RFC 4180 section 2, with the tolerances listed here):
// - The first record is a header whose field names must equal the declared column names, in
//   order.
// - Records end with CRLF or LF; the last record may lack a line end. A UTF-8 byte order mark
//   (EF BB BF) at the very start is skipped.
// - A field that starts with '"' is quoted: it ends at the next '"' not doubled; "" inside
//   is one '"'; LF, CRLF and a bare CR inside quotes are data, kept byte for byte. After the
//   closing quote only ',' or the line end may follow.
// - Unquoted fields may not contain '"' or a bare CR.
// - Values: int = [+-]?[0-9]+ within int64; decimal = [+-]?(digits[.digits?] | .digits)
//   ([eE][+-]?digits)? and finite; bool = true | false | 1 | 0; date = YYYY-MM-DD; string =
//   the bytes as given. An EMPTY field (quoted or not) in an int, decimal, bool or date
//   column is NULL (a missing value); in a string column it is the empty string.
//
// Errors name the PHYSICAL line where the offending record starts, lines being counted by LF
// from 1 (a bare CR is not a line end), so a record that spans lines keeps the number a text
// editor shows for its first line: "line 9: column amount: not a decimal",
// "line 9: unterminated quoted field", "line 4: expected 3 fields, got 2". The first error
// rejects the whole upload: no partial table is returned.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "cleanroom/schema.h"
#include "common/result.h"

namespace coffer::cleanroom {

constexpr size_t kMaxFieldBytes = 64 * 1024;
constexpr size_t kMaxRowsPerUpload = 2'000'000;
constexpr size_t kMaxUploadBytes = 512 * 1024 * 1024;

struct CsvLimits {
    size_t max_columns = kMaxColumns;
    size_t max_field_bytes = kMaxFieldBytes;
    // Data records, the header excluded.
    size_t max_rows = kMaxRowsPerUpload;
    size_t max_bytes = kMaxUploadBytes;
};

// One record as raw fields, with the physical line on which it starts.
struct CsvRecord {
    size_t line = 0;
    std::vector<std::string> fields;
};

// Splits `data` into records (header included) under `limits`. Errors: kInvalidArgument
// ("line N: unterminated quoted field", "line N: unexpected character after closing
// quote", "line N: quote inside unquoted field", "line N: bare CR outside quotes");
// kResourceExhausted naming the limit. Thread-safe (pure function).
Result<std::vector<CsvRecord>> parse_csv_records(std::string_view data,
                                                 const CsvLimits& limits = {});

// Converts one field to a value of `type` (see the value rules above). On failure returns
// the reason without a line ("not an integer", "not a decimal", "not a bool", "not a
// date").
Result<Value> parse_value(std::string_view field, ColumnType type);

// Parses a whole upload against `schema` into a Table (owner left empty). Errors as for
// parse_csv_records plus "line 1: header does not match the declared columns ...",
// "line N: expected K fields, got M" and "line N: column C: not a decimal" (and the other
// value reasons). Thread-safe (pure function).
Result<Table> parse_csv(const DatasetSchema& schema, std::string_view data,
                        const CsvLimits& limits = {});

}  // namespace coffer::cleanroom
