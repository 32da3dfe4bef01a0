#include "cleanroom/policy.h"

#include <algorithm>

namespace coffer::cleanroom {

namespace {

std::optional<size_t> find_column(const std::vector<std::string>& columns, std::string_view name) {
    for (size_t i = 0; i < columns.size(); ++i) {
        if (columns[i] == name) {
            return i;
        }
    }
    return std::nullopt;
}

}  // namespace

Status check_output_columns(const QueryResult& result, const OutputPolicy& policy,
                            const std::vector<DatasetSchema>& schemas) {
    std::set<std::string> seen;
    for (size_t i = 0; i < result.columns.size(); ++i) {
        const std::string& name = result.columns[i];
        if (!seen.insert(name).second) {
            return error(Errc::kInvalidArgument, "output column \"" + name + "\" appears twice");
        }
        if (std::find(policy.columns.begin(), policy.columns.end(), name) == policy.columns.end()) {
            return error(Errc::kPermissionDenied,
                         "output column \"" + name + "\" is not in the policy's allow-list");
        }
        const std::string& origin = i < result.origins.size() ? result.origins[i] : "";
        if (origin.empty()) {
            continue;
        }
        const size_t dot = origin.find('.');
        const std::string table = origin.substr(0, dot);
        const std::string column = origin.substr(dot + 1);
        for (const DatasetSchema& s : schemas) {
            if (s.name == table && !s.is_output_column(column)) {
                return error(Errc::kPermissionDenied,
                             "output column \"" + name + "\" copies " + origin +
                                 ", which is not a declared output column");
            }
        }
    }
    if (policy.min_entities > 0 && !find_column(result.columns, kEntitiesColumn)) {
        return error(Errc::kInvalidArgument,
                     "min_entities needs an output column named _entities "
                     "(COUNT(DISTINCT entity) of each row)");
    }
    if (policy.routing_column && !find_column(result.columns, *policy.routing_column)) {
        return error(Errc::kInvalidArgument,
                     "the routing column \"" + *policy.routing_column + "\" is not in the output");
    }
    return Status();
}

Status check_min_input_rows(const std::vector<const Table*>& tables, const OutputPolicy& policy) {
    for (const Table* t : tables) {
        if (static_cast<int64_t>(t->rows.size()) < policy.min_input_rows) {
            return error(Errc::kFailedPrecondition, "dataset " + t->schema.name + " has " +
                                                        std::to_string(t->rows.size()) +
                                                        " rows, fewer than min_input_rows " +
                                                        std::to_string(policy.min_input_rows));
        }
    }
    return Status();
}

ThresholdOutcome apply_entity_threshold(const QueryResult& result, const OutputPolicy& policy) {
    ThresholdOutcome out;
    const std::optional<size_t> col = find_column(result.columns, kEntitiesColumn);
    for (const Row& row : result.rows) {
        bool keep = policy.min_entities <= 0;
        if (!keep && col) {
            const auto* n = std::get_if<int64_t>(&row[*col]);
            keep = n != nullptr && *n >= policy.min_entities;
        }
        if (keep) {
            out.rows.push_back(row);
        } else {
            ++out.suppressed_rows;
        }
    }
    return out;
}

std::map<std::string, std::set<std::string>> party_entities(
    const std::vector<const Table*>& tables) {
    std::map<std::string, std::set<std::string>> out;
    // Value -> the first party seen holding it, or "" once a second party holds it too.
    std::map<std::string, std::string> holder;
    for (const Table* t : tables) {
        std::set<std::string>& keys = out[t->owner];
        for (const std::string& column : t->schema.entity_columns) {
            const std::optional<size_t> idx = t->schema.column_index(column);
            COFFER_CHECK(idx.has_value(), "entity columns were validated with the schema");
            for (const Row& row : t->rows) {
                if (std::optional<std::string> key = value_key(row[*idx])) {
                    auto [it, fresh] = holder.emplace(*key, t->owner);
                    if (!fresh && it->second != t->owner) {
                        it->second.clear();
                    }
                    keys.insert(std::move(*key));
                }
            }
        }
    }
    // A party's entity values are only its own claim: a value that several parties hold
    // belongs to none of them, so no party receives another's row by uploading its key.
    for (const auto& [key, party] : holder) {
        if (party.empty()) {
            for (auto& [owner, keys] : out) {
                keys.erase(key);
            }
        }
    }
    return out;
}

RoutedRows route_rows(const std::vector<std::string>& columns, const std::vector<Row>& rows,
                      const OutputPolicy& policy, const std::vector<std::string>& recipients,
                      const std::map<std::string, std::set<std::string>>& entities) {
    RoutedRows out;
    for (const std::string& r : recipients) {
        out.rows_by_recipient[r];
    }
    std::optional<size_t> col;
    if (policy.routing_column) {
        col = find_column(columns, *policy.routing_column);
        COFFER_CHECK(col.has_value(), "routing column was checked against the output");
    }
    for (const Row& row : rows) {
        const std::optional<std::string> key = col ? value_key(row[*col]) : std::nullopt;
        if (!key) {
            for (const std::string& r : recipients) {
                out.rows_by_recipient[r].push_back(row);
            }
            continue;
        }
        bool delivered = false;
        for (const std::string& r : recipients) {
            auto it = entities.find(r);
            if (it != entities.end() && it->second.count(*key) != 0) {
                out.rows_by_recipient[r].push_back(row);
                delivered = true;
            }
        }
        if (!delivered) {
            ++out.unrouted_rows;
        }
    }
    return out;
}

}  // namespace coffer::cleanroom
