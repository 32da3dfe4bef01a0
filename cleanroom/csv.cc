#include "cleanroom/csv.h"

#include <charconv>
#include <cmath>

namespace coffer::cleanroom {

namespace {

Status line_error(size_t line, const std::string& what) {
    return error(Errc::kInvalidArgument, "line " + std::to_string(line) + ": " + what);
}

// Reads records one at a time; `line_` counts LFs seen so far (physical lines from 1).
class CsvReader {
  public:
    CsvReader(std::string_view data, const CsvLimits& limits) : data_(data), limits_(limits) {
        if (data_.substr(0, 3) == "\xEF\xBB\xBF") {
            pos_ = 3;
        }
    }

    bool at_end() const { return pos_ >= data_.size(); }

    Result<CsvRecord> next() {
        CsvRecord record;
        record.line = line_;
        for (;;) {
            if (record.fields.size() >= limits_.max_columns) {
                return error(Errc::kResourceExhausted,
                             "line " + std::to_string(record.line) + ": more than " +
                                 std::to_string(limits_.max_columns) + " fields");
            }
            std::string field;
            bool record_done = false;
            Status st = at_quote() ? read_quoted(record.line, field, record_done)
                                   : read_unquoted(record.line, field, record_done);
            COFFER_RETURN_IF_ERROR(st);
            record.fields.push_back(std::move(field));
            if (record_done) {
                return record;
            }
        }
    }

  private:
    bool at_quote() const { return pos_ < data_.size() && data_[pos_] == '"'; }

    Status check_size(size_t line, const std::string& field) const {
        if (field.size() > limits_.max_field_bytes) {
            return error(Errc::kResourceExhausted,
                         "line " + std::to_string(line) + ": field longer than " +
                             std::to_string(limits_.max_field_bytes) + " bytes");
        }
        return Status();
    }

    // Consumes the separator after a field: ',' continues the record, LF / CRLF / end of
    // input ends it. Returns false if something else is there.
    bool take_separator(bool& record_done) {
        if (pos_ >= data_.size()) {
            record_done = true;
            return true;
        }
        const char c = data_[pos_];
        if (c == ',') {
            ++pos_;
            return true;
        }
        if (c == '\n' || (c == '\r' && pos_ + 1 < data_.size() && data_[pos_ + 1] == '\n')) {
            pos_ += (c == '\n') ? 1 : 2;
            ++line_;
            record_done = true;
            return true;
        }
        return false;
    }

    Status read_quoted(size_t line, std::string& field, bool& record_done) {
        ++pos_;
        for (;;) {
            if (pos_ >= data_.size()) {
                return line_error(line, "unterminated quoted field");
            }
            const char c = data_[pos_];
            if (c == '"') {
                if (pos_ + 1 < data_.size() && data_[pos_ + 1] == '"') {
                    field.push_back('"');
                    pos_ += 2;
                    continue;
                }
                ++pos_;
                break;
            }
            if (c == '\n') {
                ++line_;
            }
            field.push_back(c);
            ++pos_;
            COFFER_RETURN_IF_ERROR(check_size(line, field));
        }
        if (!take_separator(record_done)) {
            return line_error(line, "unexpected character after closing quote");
        }
        return Status();
    }

    Status read_unquoted(size_t line, std::string& field, bool& record_done) {
        const size_t start = pos_;
        while (pos_ < data_.size()) {
            const char c = data_[pos_];
            if (c == ',' || c == '\n') {
                break;
            }
            if (c == '\r') {
                if (pos_ + 1 < data_.size() && data_[pos_ + 1] == '\n') {
                    break;
                }
                return line_error(line, "bare CR outside quotes");
            }
            if (c == '"') {
                return line_error(line, "quote inside unquoted field");
            }
            ++pos_;
        }
        field.assign(data_.substr(start, pos_ - start));
        COFFER_RETURN_IF_ERROR(check_size(line, field));
        const bool ok = take_separator(record_done);
        COFFER_CHECK(ok, "an unquoted field stops only at a separator");
        return Status();
    }

    std::string_view data_;
    CsvLimits limits_;
    size_t pos_ = 0;
    size_t line_ = 1;
};

bool all_digits(std::string_view s) {
    if (s.empty()) {
        return false;
    }
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
    }
    return true;
}

bool decimal_syntax(std::string_view s) {
    if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
        s.remove_prefix(1);
    }
    const size_t e = s.find_first_of("eE");
    std::string_view mantissa = s.substr(0, e);
    if (e != std::string_view::npos) {
        std::string_view exponent = s.substr(e + 1);
        if (!exponent.empty() && (exponent[0] == '+' || exponent[0] == '-')) {
            exponent.remove_prefix(1);
        }
        if (!all_digits(exponent)) {
            return false;
        }
    }
    const size_t dot = mantissa.find('.');
    if (dot == std::string_view::npos) {
        return all_digits(mantissa);
    }
    const std::string_view whole = mantissa.substr(0, dot);
    const std::string_view frac = mantissa.substr(dot + 1);
    if (whole.empty() && frac.empty()) {
        return false;
    }
    return (whole.empty() || all_digits(whole)) && (frac.empty() || all_digits(frac));
}

}  // namespace

Result<std::vector<CsvRecord>> parse_csv_records(std::string_view data, const CsvLimits& limits) {
    if (data.size() > limits.max_bytes) {
        return error(Errc::kResourceExhausted,
                     "upload larger than " + std::to_string(limits.max_bytes) + " bytes");
    }
    CsvReader reader(data, limits);
    std::vector<CsvRecord> records;
    while (!reader.at_end()) {
        if (records.size() > limits.max_rows) {
            return error(Errc::kResourceExhausted,
                         "more than " + std::to_string(limits.max_rows) + " rows");
        }
        COFFER_ASSIGN_OR_RETURN(CsvRecord record, reader.next());
        records.push_back(std::move(record));
    }
    return records;
}

Result<Value> parse_value(std::string_view field, ColumnType type) {
    if (field.empty() && type != ColumnType::kString) {
        return Value{};
    }
    switch (type) {
        case ColumnType::kString:
            return Value{std::string(field)};
        case ColumnType::kInt: {
            std::string_view digits = field;
            if (digits[0] == '+' || digits[0] == '-') {
                digits.remove_prefix(1);
            }
            int64_t v = 0;
            const std::string_view text = field[0] == '+' ? field.substr(1) : field;
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
            if (!all_digits(digits) || ec != std::errc() || end != text.data() + text.size()) {
                return error(Errc::kInvalidArgument, "not an integer");
            }
            return Value{v};
        }
        case ColumnType::kDecimal: {
            const std::string_view text = field[0] == '+' ? field.substr(1) : field;
            double v = 0;
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
            if (!decimal_syntax(field) || ec != std::errc() || end != text.data() + text.size() ||
                !std::isfinite(v)) {
                return error(Errc::kInvalidArgument, "not a decimal");
            }
            return Value{v};
        }
        case ColumnType::kBool:
            if (field == "true" || field == "1") {
                return Value{true};
            }
            if (field == "false" || field == "0") {
                return Value{false};
            }
            return error(Errc::kInvalidArgument, "not a bool");
        case ColumnType::kDate:
            if (!valid_date(field)) {
                return error(Errc::kInvalidArgument, "not a date");
            }
            return Value{std::string(field)};
    }
    return error(Errc::kInternal, "unknown column type");
}

namespace {

Status check_header(const DatasetSchema& schema, const std::vector<CsvRecord>& records) {
    std::string expected;
    for (const Column& c : schema.columns) {
        expected += (expected.empty() ? "" : ",") + c.name;
    }
    if (records.empty()) {
        return line_error(1, "missing header (expected " + expected + ")");
    }
    const CsvRecord& header = records[0];
    bool same = header.fields.size() == schema.columns.size();
    for (size_t i = 0; same && i < header.fields.size(); ++i) {
        same = header.fields[i] == schema.columns[i].name;
    }
    if (!same) {
        std::string got;
        for (const std::string& f : header.fields) {
            got += (got.empty() ? "" : ",") + f.substr(0, kMaxNameLength + 1);
        }
        return line_error(header.line, "header does not match the declared columns: expected " +
                                           expected + ", got " + got);
    }
    return Status();
}

}  // namespace

Result<Table> parse_csv(const DatasetSchema& schema, std::string_view data,
                        const CsvLimits& limits) {
    COFFER_RETURN_IF_ERROR(validate_schema(schema));
    COFFER_ASSIGN_OR_RETURN(std::vector<CsvRecord> records, parse_csv_records(data, limits));
    COFFER_RETURN_IF_ERROR(check_header(schema, records));

    Table table;
    table.schema = schema;
    table.rows.reserve(records.size() - 1);
    for (size_t r = 1; r < records.size(); ++r) {
        const CsvRecord& record = records[r];
        if (record.fields.size() != schema.columns.size()) {
            return line_error(record.line, "expected " + std::to_string(schema.columns.size()) +
                                               " fields, got " +
                                               std::to_string(record.fields.size()));
        }
        Row row;
        row.reserve(record.fields.size());
        for (size_t c = 0; c < record.fields.size(); ++c) {
            Result<Value> v = parse_value(record.fields[c], schema.columns[c].type);
            if (!v.ok()) {
                return line_error(record.line,
                                  "column " + schema.columns[c].name + ": " + v.status().message());
            }
            row.push_back(std::move(v).value());
        }
        table.rows.push_back(std::move(row));
    }
    return table;
}

}  // namespace coffer::cleanroom
