#include "cleanroom/analysis.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

#include "cleanroom/json_util.h"
#include "crypto/sha256.h"

namespace coffer::cleanroom {

using nlohmann::json;

std::string_view analysis_kind_name(AnalysisKind kind) {
    switch (kind) {
        case AnalysisKind::kSql:
            return "sql";
        case AnalysisKind::kAml:
            return "aml";
        case AnalysisKind::kLogisticRegression:
            return "logistic_regression";
    }
    return "unknown";
}

namespace {

Status check_names(const std::vector<std::string>& names, std::string_view what, size_t max,
                   bool party_ids) {
    if (names.empty() || names.size() > max) {
        return error(Errc::kInvalidArgument,
                     std::string(what) + ": need 1 to " + std::to_string(max) + " entries");
    }
    std::set<std::string> seen;
    for (const std::string& n : names) {
        const bool ok = party_ids ? !n.empty() && n.size() <= 256 : valid_name(n);
        if (!ok || !seen.insert(n).second) {
            return error(Errc::kInvalidArgument,
                         std::string(what) + ": bad or repeated entry \"" + n + "\"");
        }
    }
    return Status();
}

Result<OutputPolicy> parse_policy(const json& p) {
    constexpr std::string_view kWhat = "output_policy";
    COFFER_RETURN_IF_ERROR(detail::check_keys(
        p, kWhat, {"columns"}, {"columns", "min_entities", "min_input_rows", "routing_column"}));
    OutputPolicy policy;
    COFFER_ASSIGN_OR_RETURN(policy.columns, detail::get_string_list(p, kWhat, "columns"));
    if (p.contains("min_entities")) {
        COFFER_ASSIGN_OR_RETURN(policy.min_entities, detail::get_integer(p, kWhat, "min_entities"));
    }
    if (p.contains("min_input_rows")) {
        COFFER_ASSIGN_OR_RETURN(policy.min_input_rows,
                                detail::get_integer(p, kWhat, "min_input_rows"));
    }
    if (p.contains("routing_column")) {
        COFFER_ASSIGN_OR_RETURN(policy.routing_column,
                                detail::get_string(p, kWhat, "routing_column"));
    }
    if (policy.min_entities < 0 || policy.min_input_rows < 0) {
        return error(Errc::kInvalidArgument, "output_policy: thresholds must be >= 0");
    }
    return policy;
}

Result<std::vector<DatasetRef>> parse_dataset_refs(const json& list) {
    if (!list.is_array() || list.empty() || list.size() > kMaxAnalysisDatasets) {
        return error(Errc::kInvalidArgument,
                     "datasets: need 1 to " + std::to_string(kMaxAnalysisDatasets) + " entries");
    }
    std::vector<DatasetRef> refs;
    std::set<std::string> seen;
    for (const json& item : list) {
        COFFER_RETURN_IF_ERROR(
            detail::check_keys(item, "datasets[]", {"name", "columns"}, {"name", "columns"}));
        DatasetRef ref;
        COFFER_ASSIGN_OR_RETURN(ref.name, detail::get_string(item, "datasets[]", "name"));
        COFFER_ASSIGN_OR_RETURN(ref.columns,
                                detail::get_string_list(item, "datasets[]", "columns"));
        COFFER_RETURN_IF_ERROR(check_names({ref.name}, "datasets[].name", 1, false));
        COFFER_RETURN_IF_ERROR(check_names(ref.columns, "datasets[].columns", kMaxColumns, false));
        if (!seen.insert(ref.name).second) {
            return error(Errc::kInvalidArgument, "datasets: " + ref.name + " listed twice");
        }
        refs.push_back(std::move(ref));
    }
    return refs;
}

Status parse_kind_body(const json& doc, AnalysisDocument& out) {
    COFFER_ASSIGN_OR_RETURN(std::string kind, detail::get_string(doc, "analysis", "kind"));
    if (kind == "sql") {
        out.kind = AnalysisKind::kSql;
        if (!doc.contains("query") || doc.contains("params")) {
            return error(Errc::kInvalidArgument, "analysis: kind sql needs query and no params");
        }
        COFFER_ASSIGN_OR_RETURN(out.query, detail::get_string(doc, "analysis", "query"));
        return Status();
    }
    if (doc.contains("query") || !doc.contains("params")) {
        return error(Errc::kInvalidArgument,
                     "analysis: kind " + kind + " needs params and no query");
    }
    if (kind == "aml") {
        out.kind = AnalysisKind::kAml;
        COFFER_ASSIGN_OR_RETURN(out.aml, parse_aml_params(doc.at("params")));
    } else if (kind == "logistic_regression") {
        out.kind = AnalysisKind::kLogisticRegression;
        COFFER_ASSIGN_OR_RETURN(out.lr, parse_logistic_params(doc.at("params")));
    } else {
        return error(Errc::kInvalidArgument,
                     "analysis: unknown kind \"" + kind + "\" (sql, aml, logistic_regression)");
    }
    if (out.policy.min_entities > 0) {
        return error(Errc::kInvalidArgument,
                     "output_policy.min_entities applies to sql analyses only");
    }
    return Status();
}

}  // namespace

Result<AnalysisDocument> parse_analysis(std::string_view bytes) {
    if (bytes.size() > kMaxAnalysisBytes) {
        return error(Errc::kResourceExhausted, "analysis document larger than " +
                                                   std::to_string(kMaxAnalysisBytes) + " bytes");
    }
    COFFER_ASSIGN_OR_RETURN(json doc, detail::parse_json_strict(bytes));
    COFFER_RETURN_IF_ERROR(detail::check_keys(
        doc, "analysis", {"version", "kind", "datasets", "output_policy", "recipients", "triggers"},
        {"version", "kind", "query", "params", "datasets", "output_policy", "recipients",
         "triggers"}));
    AnalysisDocument out;
    COFFER_ASSIGN_OR_RETURN(out.version, detail::get_integer(doc, "analysis", "version"));
    if (out.version != kAnalysisVersion) {
        return error(Errc::kUnsupported,
                     "analysis version " + std::to_string(out.version) + " is not supported");
    }
    COFFER_ASSIGN_OR_RETURN(out.policy, parse_policy(doc.at("output_policy")));
    COFFER_RETURN_IF_ERROR(parse_kind_body(doc, out));
    COFFER_ASSIGN_OR_RETURN(out.datasets, parse_dataset_refs(doc.at("datasets")));
    COFFER_ASSIGN_OR_RETURN(out.recipients, detail::get_string_list(doc, "analysis", "recipients"));
    COFFER_ASSIGN_OR_RETURN(out.triggers, detail::get_string_list(doc, "analysis", "triggers"));
    COFFER_RETURN_IF_ERROR(check_names(out.recipients, "recipients", kMaxRecipients, true));
    COFFER_RETURN_IF_ERROR(check_names(out.triggers, "triggers", kMaxRecipients, true));
    out.id = to_hex(crypto::sha256(as_bytes(bytes)));
    return out;
}

namespace {

// The columns a built-in analysis reads from each dataset.
std::vector<std::string> builtin_columns(const AnalysisDocument& doc) {
    if (doc.aml) {
        const AmlParams& p = *doc.aml;
        return {p.tx_id_column,     p.account_column, p.counterparty_column,
                p.direction_column, p.amount_column,  p.time_column};
    }
    std::vector<std::string> cols = doc.lr->features;
    cols.push_back(doc.lr->label);
    return cols;
}

Result<SqlScope> scope_of(const AnalysisDocument& doc,
                          const std::map<std::string, DatasetSchema>& declared) {
    SqlScope scope;
    for (const DatasetRef& ref : doc.datasets) {
        auto it = declared.find(ref.name);
        if (it == declared.end()) {
            return error(Errc::kNotFound, "no dataset named " + ref.name);
        }
        for (const std::string& c : ref.columns) {
            if (!it->second.column_index(c)) {
                return error(Errc::kInvalidArgument, "dataset " + ref.name + " has no column " + c);
            }
        }
        if (doc.kind != AnalysisKind::kSql) {
            for (const std::string& c : builtin_columns(doc)) {
                if (std::find(ref.columns.begin(), ref.columns.end(), c) == ref.columns.end()) {
                    return error(Errc::kPermissionDenied, "the analysis reads " + ref.name + "." +
                                                              c + ", which it does not list");
                }
            }
        }
        scope.tables.push_back(it->second);
        scope.approved_columns[ref.name].insert(ref.columns.begin(), ref.columns.end());
    }
    return scope;
}

const std::vector<std::string>& builtin_output_columns(AnalysisKind kind) {
    static const std::vector<std::string> kAml = {"account", "flags"};
    static const std::vector<std::string> kLr = {"dataset", "test_rows", "test_positives",
                                                 "auc_joint", "auc_own"};
    return kind == AnalysisKind::kAml ? kAml : kLr;
}

}  // namespace

Status check_analysis(const AnalysisDocument& doc,
                      const std::map<std::string, DatasetSchema>& declared,
                      const SqlLimits& limits) {
    COFFER_ASSIGN_OR_RETURN(SqlScope scope, scope_of(doc, declared));
    if (doc.kind == AnalysisKind::kSql) {
        COFFER_ASSIGN_OR_RETURN(QueryResult shape, validate_query(doc.query, scope, limits));
        return check_output_columns(shape, doc.policy, scope.tables);
    }
    QueryResult shape;
    shape.columns = builtin_output_columns(doc.kind);
    shape.origins.assign(shape.columns.size(), "");
    if (doc.kind == AnalysisKind::kLogisticRegression && doc.policy.routing_column) {
        return error(Errc::kInvalidArgument,
                     "logistic_regression routes each dataset's evaluation to its owner; "
                     "routing_column must be absent");
    }
    return check_output_columns(shape, doc.policy, scope.tables);
}

namespace {

json value_json(const Value& v) {
    if (const auto* i = std::get_if<int64_t>(&v)) {
        return *i;
    }
    if (const auto* d = std::get_if<double>(&v)) {
        return *d;
    }
    if (const auto* s = std::get_if<std::string>(&v)) {
        return *s;
    }
    if (const auto* b = std::get_if<bool>(&v)) {
        return *b;
    }
    return nullptr;
}

// What every kind produces before routing.
struct RawOutput {
    std::vector<std::string> columns;
    std::vector<Row> rows;
    json aggregates = json::object();
    // Only for logistic_regression: rows by the owner they go to, instead of routing.
    std::map<std::string, std::vector<Row>> rows_by_owner;
    bool routed_by_owner = false;
};

Result<RawOutput> run_sql(const AnalysisDocument& doc, const std::vector<const Table*>& tables,
                          const SqlScope& scope, const RunOptions& options,
                          AnalysisResult& result) {
    COFFER_ASSIGN_OR_RETURN(QueryResult qr,
                            run_query(doc.query, tables, scope, options.sql_limits));
    COFFER_RETURN_IF_ERROR(check_output_columns(qr, doc.policy, scope.tables));
    ThresholdOutcome kept = apply_entity_threshold(qr, doc.policy);
    result.suppressed_rows = kept.suppressed_rows;
    RawOutput out;
    out.columns = qr.columns;
    out.rows = std::move(kept.rows);
    out.aggregates["suppressed_rows"] = kept.suppressed_rows;
    return out;
}

Result<RawOutput> run_aml_kind(const AnalysisDocument& doc,
                               const std::vector<const Table*>& tables) {
    COFFER_ASSIGN_OR_RETURN(AmlGraph graph, graph_from_legs(tables, *doc.aml));
    COFFER_ASSIGN_OR_RETURN(std::vector<uint32_t> flags, run_aml(graph, *doc.aml));
    RawOutput out;
    out.columns = builtin_output_columns(AnalysisKind::kAml);
    std::map<std::string, size_t> by_flag;
    for (const std::string& name : aml_flag_names(~0u)) {
        by_flag[name] = 0;
    }
    size_t flagged = 0;
    for (size_t v = 0; v < flags.size(); ++v) {
        if (flags[v] == 0) {
            continue;
        }
        std::string names;
        for (const std::string& n : aml_flag_names(flags[v])) {
            names += (names.empty() ? "" : ",") + n;
            ++by_flag[n];
        }
        out.rows.push_back(Row{graph.accounts[v], Value{names}});
        ++flagged;
    }
    out.aggregates["accounts"] = graph.accounts.size();
    out.aggregates["transfers"] = graph.edges.size();
    out.aggregates["flagged_accounts"] = flagged;
    out.aggregates["flags"] = by_flag;
    return out;
}

}  // namespace

namespace {

uint64_t fnv1a(std::string_view s) {
    uint64_t h = 1469598103934665603ULL;
    for (char c : s) {
        h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ULL;
    }
    return h;
}

struct Hospital {
    std::vector<std::vector<double>> x;
    std::vector<int> y;
    Split split;
};

template <typename T>
std::vector<T> pick(const std::vector<T>& all, const std::vector<size_t>& idx) {
    std::vector<T> out;
    out.reserve(idx.size());
    for (size_t i : idx) {
        out.push_back(all[i]);
    }
    return out;
}

Value auc_value(const LogisticModel& model, const Hospital& h) {
    std::vector<double> scores;
    for (size_t i : h.split.test) {
        scores.push_back(predict_probability(model, h.x[i]));
    }
    const std::optional<double> a = auc(scores, pick(h.y, h.split.test));
    return a ? Value{*a} : Value{};
}

// The dataset's own model, or nothing when its training rows hold a single class (the
// unpenalised intercept would diverge).
Result<std::optional<LogisticModel>> own_model(const Hospital& h, const LogisticParams& p) {
    const std::vector<int> y = pick(h.y, h.split.train);
    const auto positives = std::count(y.begin(), y.end(), 1);
    if (positives == 0 || positives == static_cast<long>(y.size())) {
        return std::optional<LogisticModel>();
    }
    COFFER_ASSIGN_OR_RETURN(LogisticModel m, fit_logistic(pick(h.x, h.split.train), y, p));
    return std::optional<LogisticModel>(std::move(m));
}

json model_json(const LogisticModel& m, const LogisticParams& p, size_t train_rows) {
    return json{{"features", p.features},     {"intercept", m.intercept}, {"weights", m.weights},
                {"means", m.means},           {"scales", m.scales},       {"l2", p.l2},
                {"iterations", m.iterations}, {"train_rows", train_rows}};
}

Result<RawOutput> run_training(const AnalysisDocument& doc,
                               const std::vector<const Table*>& tables) {
    const LogisticParams& p = *doc.lr;
    std::vector<Hospital> hospitals(tables.size());
    std::vector<std::vector<double>> joint_x;
    std::vector<int> joint_y;
    for (size_t t = 0; t < tables.size(); ++t) {
        Hospital& h = hospitals[t];
        COFFER_RETURN_IF_ERROR(table_to_matrix(*tables[t], p, h.x, h.y));
        h.split = stratified_split(h.y, p.train_fraction, p.seed ^ fnv1a(tables[t]->schema.name));
        for (size_t i : h.split.train) {
            joint_x.push_back(h.x[i]);
            joint_y.push_back(h.y[i]);
        }
    }
    COFFER_ASSIGN_OR_RETURN(LogisticModel joint, fit_logistic(joint_x, joint_y, p));

    RawOutput out;
    out.routed_by_owner = true;
    out.columns = builtin_output_columns(AnalysisKind::kLogisticRegression);
    out.aggregates["model"] = model_json(joint, p, joint_x.size());
    for (size_t t = 0; t < tables.size(); ++t) {
        const Hospital& h = hospitals[t];
        Value own_auc;
        if (p.compare_own_models) {
            COFFER_ASSIGN_OR_RETURN(std::optional<LogisticModel> own, own_model(h, p));
            own_auc = own ? auc_value(*own, h) : Value{};
        }
        const std::vector<int> test_y = pick(h.y, h.split.test);
        Row row{Value{tables[t]->schema.name}, Value{static_cast<int64_t>(test_y.size())},
                Value{static_cast<int64_t>(std::count(test_y.begin(), test_y.end(), 1))},
                auc_value(joint, h), own_auc};
        out.rows_by_owner[tables[t]->owner].push_back(std::move(row));
    }
    return out;
}

Result<std::string> output_json(const AnalysisDocument& doc, const std::string& recipient,
                                const RawOutput& raw, const std::vector<Row>& rows) {
    json out{{"version", kAnalysisVersion}, {"analysis_id", doc.id},
             {"recipient", recipient},      {"kind", analysis_kind_name(doc.kind)},
             {"columns", raw.columns},      {"aggregates", raw.aggregates}};
    json& list = out["rows"] = json::array();
    for (const Row& row : rows) {
        json r = json::array();
        for (const Value& v : row) {
            r.push_back(value_json(v));
        }
        list.push_back(std::move(r));
    }
    try {
        return out.dump();
    } catch (const json::exception& e) {
        return error(Errc::kInvalidArgument,
                     std::string("an output value is not valid UTF-8: ") + e.what());
    }
}

Result<std::vector<const Table*>> tables_of(const AnalysisDocument& doc,
                                            const std::map<std::string, Table>& datasets) {
    std::vector<const Table*> tables;
    for (const DatasetRef& ref : doc.datasets) {
        auto it = datasets.find(ref.name);
        if (it == datasets.end()) {
            return error(Errc::kNotFound, "dataset " + ref.name + " was not provided");
        }
        COFFER_CHECK(it->second.schema.name == ref.name, "datasets are keyed by schema name");
        tables.push_back(&it->second);
    }
    return tables;
}

Status deliver(const AnalysisDocument& doc, const std::vector<const Table*>& tables,
               const RawOutput& raw, AnalysisResult& result) {
    RoutedRows routed;
    if (raw.routed_by_owner) {
        for (const std::string& r : doc.recipients) {
            auto it = raw.rows_by_owner.find(r);
            routed.rows_by_recipient[r] =
                it == raw.rows_by_owner.end() ? std::vector<Row>() : it->second;
        }
    } else {
        routed =
            route_rows(raw.columns, raw.rows, doc.policy, doc.recipients, party_entities(tables));
    }
    result.unrouted_rows = routed.unrouted_rows;
    for (auto& [recipient, rows] : routed.rows_by_recipient) {
        COFFER_ASSIGN_OR_RETURN(std::string text, output_json(doc, recipient, raw, rows));
        result.outputs[recipient] = RecipientOutput{raw.columns, std::move(rows), std::move(text)};
    }
    return Status();
}

}  // namespace

Result<AnalysisResult> run_analysis(const AnalysisDocument& doc,
                                    const std::map<std::string, Table>& datasets,
                                    const RunOptions& options) {
    if (std::find(doc.triggers.begin(), doc.triggers.end(), options.caller) == doc.triggers.end()) {
        return error(Errc::kPermissionDenied, "caller may not trigger this analysis");
    }
    COFFER_ASSIGN_OR_RETURN(std::vector<const Table*> tables, tables_of(doc, datasets));
    std::map<std::string, DatasetSchema> declared;
    AnalysisResult result;
    result.analysis_id = doc.id;
    for (const Table* t : tables) {
        declared[t->schema.name] = t->schema;
        result.input_rows[t->schema.name] = t->rows.size();
    }
    COFFER_RETURN_IF_ERROR(check_analysis(doc, declared, options.sql_limits));
    COFFER_RETURN_IF_ERROR(check_min_input_rows(tables, doc.policy));
    COFFER_ASSIGN_OR_RETURN(SqlScope scope, scope_of(doc, declared));

    Result<RawOutput> raw = doc.kind == AnalysisKind::kSql
                                ? run_sql(doc, tables, scope, options, result)
                            : doc.kind == AnalysisKind::kAml ? run_aml_kind(doc, tables)
                                                             : run_training(doc, tables);
    if (!raw.ok()) {
        return raw.status();
    }
    raw->aggregates["input_rows"] = result.input_rows;
    COFFER_RETURN_IF_ERROR(deliver(doc, tables, *raw, result));
    return result;
}

}  // namespace coffer::cleanroom
