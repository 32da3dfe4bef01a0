#include "cleanroom/schema.h"

#include <cstdio>
#include <set>

#include "cleanroom/json_util.h"

namespace coffer::cleanroom {

using nlohmann::json;

std::string_view column_type_name(ColumnType type) {
    switch (type) {
        case ColumnType::kInt:
            return "int";
        case ColumnType::kDecimal:
            return "decimal";
        case ColumnType::kString:
            return "string";
        case ColumnType::kBool:
            return "bool";
        case ColumnType::kDate:
            return "date";
    }
    return "unknown";
}

namespace {

std::optional<ColumnType> parse_type(std::string_view name) {
    for (ColumnType t : {ColumnType::kInt, ColumnType::kDecimal, ColumnType::kString,
                         ColumnType::kBool, ColumnType::kDate}) {
        if (column_type_name(t) == name) {
            return t;
        }
    }
    return std::nullopt;
}

Status check_references(const DatasetSchema& schema, const std::vector<std::string>& names,
                        std::string_view list) {
    std::set<std::string> seen;
    for (const std::string& n : names) {
        if (!schema.column_index(n)) {
            return error(Errc::kInvalidArgument,
                         std::string(list) + ": no column named \"" + n + "\"");
        }
        if (!seen.insert(n).second) {
            return error(Errc::kInvalidArgument,
                         std::string(list) + ": column \"" + n + "\" listed twice");
        }
    }
    return Status();
}

}  // namespace

std::optional<size_t> DatasetSchema::column_index(std::string_view column) const {
    for (size_t i = 0; i < columns.size(); ++i) {
        if (columns[i].name == column) {
            return i;
        }
    }
    return std::nullopt;
}

bool DatasetSchema::is_output_column(std::string_view column) const {
    for (const std::string& c : output_columns) {
        if (c == column) {
            return true;
        }
    }
    return false;
}

std::optional<std::string> value_key(const Value& v) {
    if (const auto* i = std::get_if<int64_t>(&v)) {
        return std::to_string(*i);
    }
    if (const auto* d = std::get_if<double>(&v)) {
        // Integral decimals compare equal to the same int (an id stored as 5.0 is id 5).
        if (*d > -9.2e18 && *d < 9.2e18 && *d == static_cast<double>(static_cast<int64_t>(*d))) {
            return std::to_string(static_cast<int64_t>(*d));
        }
        char buf[40];
        std::snprintf(buf, sizeof buf, "%.17g", *d);
        return std::string(buf);
    }
    if (const auto* s = std::get_if<std::string>(&v)) {
        return *s;
    }
    if (const auto* b = std::get_if<bool>(&v)) {
        return std::string(*b ? "true" : "false");
    }
    return std::nullopt;
}

bool valid_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxNameLength) {
        return false;
    }
    for (size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        const bool letter = (c >= 'a' && c <= 'z') || c == '_';
        const bool digit = c >= '0' && c <= '9';
        if (!letter && !(digit && i > 0)) {
            return false;
        }
    }
    return true;
}

bool valid_date(std::string_view s) {
    if (s.size() != 10 || s[4] != '-' || s[7] != '-') {
        return false;
    }
    for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    auto num = [&](size_t pos, size_t len) {
        int v = 0;
        for (size_t i = pos; i < pos + len; ++i) {
            v = v * 10 + (s[i] - '0');
        }
        return v;
    };
    const int year = num(0, 4);
    const int month = num(5, 2);
    const int day = num(8, 2);
    if (year < 1 || month < 1 || month > 12 || day < 1) {
        return false;
    }
    static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    const int max_day = kDays[month - 1] + ((month == 2 && leap) ? 1 : 0);
    return day <= max_day;
}

Status validate_schema(const DatasetSchema& schema) {
    if (!valid_name(schema.name)) {
        return error(Errc::kInvalidArgument,
                     "dataset name \"" + schema.name + "\" does not match [a-z_][a-z0-9_]{0,62}");
    }
    if (schema.columns.empty()) {
        return error(Errc::kInvalidArgument, "a dataset needs at least one column");
    }
    if (schema.columns.size() > kMaxColumns) {
        return error(Errc::kResourceExhausted,
                     "more than " + std::to_string(kMaxColumns) + " columns");
    }
    std::set<std::string> names;
    for (const Column& c : schema.columns) {
        if (!valid_name(c.name)) {
            return error(Errc::kInvalidArgument,
                         "column name \"" + c.name + "\" does not match [a-z_][a-z0-9_]{0,62}");
        }
        if (!names.insert(c.name).second) {
            return error(Errc::kInvalidArgument, "duplicate column \"" + c.name + "\"");
        }
    }
    COFFER_RETURN_IF_ERROR(check_references(schema, schema.entity_columns, "entity_columns"));
    COFFER_RETURN_IF_ERROR(check_references(schema, schema.joinable_columns, "joinable_columns"));
    COFFER_RETURN_IF_ERROR(check_references(schema, schema.output_columns, "output_columns"));
    return Status();
}

namespace {

Result<std::vector<Column>> parse_columns(const json& list) {
    if (!list.is_array()) {
        return error(Errc::kInvalidArgument, "dataset.columns: expected a list");
    }
    if (list.size() > kMaxColumns) {
        return error(Errc::kResourceExhausted,
                     "more than " + std::to_string(kMaxColumns) + " columns");
    }
    std::vector<Column> columns;
    for (const json& item : list) {
        COFFER_RETURN_IF_ERROR(
            detail::check_keys(item, "column", {"name", "type"}, {"name", "type"}));
        COFFER_ASSIGN_OR_RETURN(std::string name, detail::get_string(item, "column", "name"));
        COFFER_ASSIGN_OR_RETURN(std::string type_name, detail::get_string(item, "column", "type"));
        const std::optional<ColumnType> type = parse_type(type_name);
        if (!type) {
            return error(Errc::kInvalidArgument, "column \"" + name + "\": unknown type \"" +
                                                     type_name +
                                                     "\" (int, decimal, string, bool, date)");
        }
        columns.push_back(Column{name, *type});
    }
    return columns;
}

}  // namespace

Result<DatasetSchema> parse_schema(std::string_view json_text) {
    if (json_text.size() > kMaxDeclarationBytes) {
        return error(Errc::kResourceExhausted,
                     "declaration larger than " + std::to_string(kMaxDeclarationBytes) + " bytes");
    }
    COFFER_ASSIGN_OR_RETURN(json doc, detail::parse_json_strict(json_text));
    const std::initializer_list<std::string_view> keys = {"name", "columns", "entity_columns",
                                                          "joinable_columns", "output_columns"};
    COFFER_RETURN_IF_ERROR(detail::check_keys(doc, "dataset", keys, keys));

    DatasetSchema schema;
    COFFER_ASSIGN_OR_RETURN(schema.name, detail::get_string(doc, "dataset", "name"));
    COFFER_ASSIGN_OR_RETURN(schema.columns, parse_columns(doc.at("columns")));
    COFFER_ASSIGN_OR_RETURN(schema.entity_columns,
                            detail::get_string_list(doc, "dataset", "entity_columns"));
    COFFER_ASSIGN_OR_RETURN(schema.joinable_columns,
                            detail::get_string_list(doc, "dataset", "joinable_columns"));
    COFFER_ASSIGN_OR_RETURN(schema.output_columns,
                            detail::get_string_list(doc, "dataset", "output_columns"));
    COFFER_RETURN_IF_ERROR(validate_schema(schema));
    return schema;
}

std::string schema_to_json(const DatasetSchema& schema) {
    json doc;
    doc["name"] = schema.name;
    doc["columns"] = json::array();
    for (const Column& c : schema.columns) {
        doc["columns"].push_back({{"name", c.name}, {"type", column_type_name(c.type)}});
    }
    doc["entity_columns"] = schema.entity_columns;
    doc["joinable_columns"] = schema.joinable_columns;
    doc["output_columns"] = schema.output_columns;
    return doc.dump();
}

}  // namespace coffer::cleanroom
