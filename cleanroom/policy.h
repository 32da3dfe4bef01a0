// Output policies: what of a result may leave the clean room, and to whom.
//
// A policy is part of the analysis document (docs/formats/analysis.md):
// - columns: the allow-list of output column names. A result column not on it refuses the
//   run. A result column that is a plain copy of a dataset column must in addition be one of
//   that dataset's declared output_columns.
// - min_entities: for SQL analyses, every output row must carry an integer column named
//   `_entities` that the approved query computes as COUNT(DISTINCT <entity column>); rows
//   whose `_entities` is below the threshold are suppressed and counted. The engine cannot
//   check how the query computed the number: approvers must read that expression.
// - min_input_rows: every dataset the analysis reads must hold at least this many rows.
// - routing_column: each recipient receives only the rows whose value in that column is one
//   of its entities (values of the entity columns of the datasets it owns, and of no other
//   party's: a value held by several parties is nobody's, since each party uploads its own
//   entity values and could claim another's); rows with NULL
//   there are aggregate rows and go to every recipient; rows of no recipient go to nobody.
//   Without a routing column every recipient receives every row.
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cleanroom/schema.h"
#include "cleanroom/sql.h"
#include "common/result.h"

namespace coffer::cleanroom {

constexpr char kEntitiesColumn[] = "_entities";

struct OutputPolicy {
    std::vector<std::string> columns;
    int64_t min_entities = 0;
    int64_t min_input_rows = 0;
    std::optional<std::string> routing_column;
};

// Refuses (kPermissionDenied) a result with a column outside the allow-list, or a plain
// dataset column not declared as an output column of `schemas`; refuses (kInvalidArgument)
// a result without `_entities` when min_entities > 0, or without the routing column.
Status check_output_columns(const QueryResult& result, const OutputPolicy& policy,
                            const std::vector<DatasetSchema>& schemas);

// kFailedPrecondition naming the first dataset with fewer than policy.min_input_rows rows.
Status check_min_input_rows(const std::vector<const Table*>& tables, const OutputPolicy& policy);

struct ThresholdOutcome {
    std::vector<Row> rows;
    size_t suppressed_rows = 0;
};

// Keeps the rows whose `_entities` value is >= policy.min_entities (a NULL or non-integer
// `_entities` suppresses the row). With min_entities == 0 keeps every row.
ThresholdOutcome apply_entity_threshold(const QueryResult& result, const OutputPolicy& policy);

// Party -> the value_key of every value in the entity columns of the tables it owns, except
// the values that also appear in the entity columns of another party's tables (those are
// routed to nobody: route_rows counts their rows as unrouted).
std::map<std::string, std::set<std::string>> party_entities(
    const std::vector<const Table*>& tables);

struct RoutedRows {
    std::map<std::string, std::vector<Row>> rows_by_recipient;
    // Rows whose routing value belongs to no recipient (delivered to nobody).
    size_t unrouted_rows = 0;
};

// Splits `rows` (with `columns` names) among `recipients` as the policy's routing says.
// Needs policy.routing_column (if set) to be one of `columns`.
RoutedRows route_rows(const std::vector<std::string>& columns, const std::vector<Row>& rows,
                      const OutputPolicy& policy, const std::vector<std::string>& recipients,
                      const std::map<std::string, std::set<std::string>>& entities);

}  // namespace coffer::cleanroom
