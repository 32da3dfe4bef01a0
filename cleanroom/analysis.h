// Analysis documents (the contract parties approve) and running them.
//
// The document format is specified in docs/formats/analysis.md. Its id is the lower-case hex
// SHA-256 of the exact bytes submitted, so changing any byte (even whitespace) makes a new,
// unapproved analysis. run_analysis is the pure engine the node calls once approvals and
// triggers have been checked: it takes decrypted datasets and returns, per recipient, the
// JSON document that the node encrypts to that recipient's key.
// All functions are thread-safe (no shared mutable state; SQL runs share the process-wide
// SQLite heap limit, see sql.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cleanroom/aml.h"
#include "cleanroom/policy.h"
#include "cleanroom/schema.h"
#include "cleanroom/sql.h"
#include "cleanroom/train.h"
#include "common/result.h"

namespace coffer::cleanroom {

constexpr int64_t kAnalysisVersion = 1;
constexpr size_t kMaxAnalysisBytes = 256 * 1024;
constexpr size_t kMaxAnalysisDatasets = 32;
constexpr size_t kMaxRecipients = 64;

enum class AnalysisKind { kSql, kAml, kLogisticRegression };

// "sql", "aml", "logistic_regression".
std::string_view analysis_kind_name(AnalysisKind kind);

struct DatasetRef {
    std::string name;
    // The columns the analysis reads: what the owners approve.
    std::vector<std::string> columns;
};

struct AnalysisDocument {
    std::string id;  // hex SHA-256 of the submitted bytes
    int64_t version = kAnalysisVersion;
    AnalysisKind kind = AnalysisKind::kSql;
    std::string query;                 // kind sql
    std::optional<AmlParams> aml;      // kind aml
    std::optional<LogisticParams> lr;  // kind logistic_regression
    std::vector<DatasetRef> datasets;
    OutputPolicy policy;
    std::vector<std::string> recipients;
    std::vector<std::string> triggers;
};

// Parses a document strictly (unknown or duplicate keys, wrong types, missing members, bad
// names refused) and computes its id. Does not look at datasets: see check_analysis.
// Errors: kInvalidArgument naming the member; kResourceExhausted past the named maxima.
Result<AnalysisDocument> parse_analysis(std::string_view bytes);

// Checks a parsed document against the declared datasets, before anyone approves it: every
// dataset exists and lists existing columns; the columns an AML or training analysis uses
// are listed; a SQL query passes validate_query and its output columns pass
// check_output_columns. Errors as those functions return, kNotFound for an unknown dataset.
Status check_analysis(const AnalysisDocument& doc,
                      const std::map<std::string, DatasetSchema>& declared,
                      const SqlLimits& limits = {});

struct RecipientOutput {
    std::vector<std::string> columns;
    std::vector<Row> rows;
    // The whole output as one JSON document (what the node encrypts): {"version",
    // "analysis_id", "recipient", "kind", "columns", "rows", "aggregates"}.
    std::string json;
};

struct AnalysisResult {
    std::string analysis_id;
    std::map<std::string, RecipientOutput> outputs;  // by recipient
    size_t suppressed_rows = 0;
    size_t unrouted_rows = 0;
    std::map<std::string, size_t> input_rows;  // by dataset
};

struct RunOptions {
    SqlLimits sql_limits;
    // The user asking for the run; must be one of the document's triggers.
    std::string caller;
};

// Runs `doc` over `datasets` (by name; each Table's owner set) and applies the output
// policy. Everything or nothing: on error no output exists. Errors: kPermissionDenied
// (caller not a trigger, authorizer denials, columns outside the policy), kNotFound (a
// dataset missing), kFailedPrecondition (min_input_rows), kResourceExhausted (time, memory
// and output limits), kInvalidArgument (bad data for a built-in analysis).
Result<AnalysisResult> run_analysis(const AnalysisDocument& doc,
                                    const std::map<std::string, Table>& datasets,
                                    const RunOptions& options);

}  // namespace coffer::cleanroom
