// The clean-room service (docs/cleanroom.md): the published service key, datasets, encrypted
// chunked uploads, analyses approved by their exact hash, runs on the leader with results
// encrypted per recipient, and the audit records of the runs.
//
// Rows never leave through an endpoint: they are read only by the run handler, which hands
// them to cleanroom::run_analysis and encrypts what the output policy lets out. A run is
// decided twice: before it (so that a refused run costs nothing) and again in the very
// transaction that writes its results and audit record, because the run itself happens
// outside any transaction (it may take seconds) and an approval may be withdrawn meanwhile.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <vector>

#include "apps/apps.h"
#include "apps/cleanroom_state.h"
#include "apps/cleanroom_uploads.h"
#include "cleanroom/analysis.h"
#include "cleanroom/csv.h"
#include "common/log.h"
#include "crypto/hpke.h"
#include "crypto/sha256.h"
#include "node/governance_maps.h"

namespace coffer::apps {

namespace {

using nlohmann::json;
namespace cl = coffer::cleanroom;

// The answer to a refused request. Storage failures go through commit_error_response.
net::HttpResponse refusal(const Status& status) {
    int code = 500;
    switch (status.code()) {
        case Errc::kInvalidArgument:
        case Errc::kResourceExhausted:
        case Errc::kCrypto:
        case Errc::kUnsupported:
            code = 400;
            break;
        case Errc::kPermissionDenied:
            code = 403;
            break;
        case Errc::kNotFound:
            code = 404;
            break;
        case Errc::kFailedPrecondition:
        case Errc::kConflict:
            code = 409;
            break;
        default:
            return net::HttpResponse::error(500, "internal_error",
                                            "the clean room's stored state is unreadable");
    }
    return net::HttpResponse::error(code, errc_name(status.code()), status.message());
}

net::HttpResponse with_tx(json answer, const kv::TxId& id) {
    answer["tx_id"] = id.to_string();
    net::HttpResponse r = net::HttpResponse::json(200, answer);
    r.headers.emplace_back(std::string(kTxIdHeader), id.to_string());
    return r;
}

Result<std::string> query_param(const net::HttpRequest& request, const std::string& name) {
    auto it = request.query.find(name);
    if (it == request.query.end() || it->second.empty()) {
        return error(Errc::kInvalidArgument, "query parameter " + name + " is required");
    }
    return it->second;
}

Result<uint64_t> parse_index(std::string_view text) {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
        return error(Errc::kInvalidArgument, "index must be a non-negative integer");
    }
    return v;
}

bool contains(const std::vector<std::string>& list, const std::string& value) {
    return std::find(list.begin(), list.end(), value) != list.end();
}

// A strict JSON object body with only `allowed` keys ("" counts as {}).
Result<json> parse_body_object(std::string_view body, const std::set<std::string>& allowed) {
    if (body.empty()) {
        return json::object();
    }
    auto doc = net::parse_json(body);
    if (!doc.ok()) {
        return error(Errc::kInvalidArgument, "invalid JSON body: " + doc.status().message());
    }
    if (!doc->is_object()) {
        return error(Errc::kInvalidArgument, "body must be a JSON object");
    }
    for (const auto& [key, value] : doc->items()) {
        if (allowed.count(key) == 0) {
            return error(Errc::kInvalidArgument, "unknown field \"" + key + "\"");
        }
    }
    return std::move(*doc);
}

// The answer to a run the engine refused. Refusals by policy and limits say why; failures
// on the data itself are withheld, because the engine's message may quote a value (AML names
// the transfer whose legs disagree, SQL errors may name a value) and the trigger must learn
// nothing of other parties' rows.
Status run_failure(const Status& status) {
    switch (status.code()) {
        case Errc::kPermissionDenied:
        case Errc::kResourceExhausted:
        case Errc::kFailedPrecondition:
        case Errc::kNotFound:
            return status;
        default:
            return error(Errc::kInvalidArgument,
                         "the analysis failed on the datasets' values (" +
                             std::string(errc_name(status.code())) +
                             "); details are withheld because they could reveal rows");
    }
}

// "run-" and 10 digits: a result key is "<run id>/<party>", so a run id with a '/' could
// name another party's result.
bool valid_run_id(std::string_view id) {
    return id.size() == 14 && id.substr(0, 4) == "run-" &&
           id.substr(4).find_first_not_of("0123456789") == std::string_view::npos;
}

// What one run read: the version and row count of each dataset, in document order.
struct DatasetUse {
    std::string name;
    int64_t version = 0;
    int64_t rows = 0;
};

// Everything a run needs, read from one snapshot before it starts.
struct PreparedRun {
    cl::AnalysisDocument doc;
    cr::Party trigger;
    std::vector<DatasetUse> uses;
    std::map<std::string, cl::Table> tables;
    std::map<std::string, Bytes> recipient_keys;
};

class CleanroomApp {
  public:
    explicit CleanroomApp(node::Node& node) : node_(node) {}

    net::HttpResponse get_key(const net::HttpRequest& request);
    net::HttpResponse post_dataset(const net::HttpRequest& request, const Caller& caller);
    net::HttpResponse get_datasets(const net::HttpRequest& request);
    net::HttpResponse post_upload(const net::HttpRequest& request, const Caller& caller);
    net::HttpResponse post_chunk(const net::HttpRequest& request, const Caller& caller);
    net::HttpResponse post_commit(const net::HttpRequest& request, const Caller& caller);
    net::HttpResponse post_analysis(const net::HttpRequest& request, const Caller& caller);
    net::HttpResponse get_analyses(const net::HttpRequest& request);
    net::HttpResponse get_analysis(const net::HttpRequest& request);
    net::HttpResponse post_approval(const net::HttpRequest& request, const Caller& caller,
                                    bool approve);
    net::HttpResponse post_run(const net::HttpRequest& request, const Caller& caller);
    net::HttpResponse get_runs(const net::HttpRequest& request, const Caller& caller);
    net::HttpResponse get_result(const net::HttpRequest& request, const Caller& caller);

  private:
    // A transaction at this node's committed state: reads never serve Pending writes.
    Result<kv::Transaction> committed_snapshot();
    // Runs `body` in a committed transaction. An error of `body` is a refusal of the
    // request (answered by `refusal`); a failed commit is answered by commit_error_response.
    net::HttpResponse commit(const std::function<Status(kv::Transaction&)>& body,
                             const std::function<json()>& answer);
    Result<Bytes> service_private_key(kv::Transaction& tx);
    Result<size_t> check_upload(const cr::UploadSession& session, const json& body);
    Result<PreparedRun> prepare_run(const std::string& analysis_id, const Caller& caller);
    Status write_run(kv::Transaction& tx, const PreparedRun& run, const cl::AnalysisResult& result,
                     int64_t duration_ms, json& audit);
    Result<json> analysis_summary(kv::Transaction& tx, const cr::AnalysisRecord& record);

    node::Node& node_;
    cr::UploadSessions uploads_;
};

Result<kv::Transaction> CleanroomApp::committed_snapshot() {
    return node_.store().begin_at(node_.store().committed());
}

net::HttpResponse CleanroomApp::commit(const std::function<Status(kv::Transaction&)>& body,
                                       const std::function<json()>& answer) {
    Status refused;
    auto committed = node_.commit([&](kv::Transaction& tx) {
        refused = body(tx);
        return refused;
    });
    if (!refused.ok()) {
        return refusal(refused);
    }
    if (!committed.ok()) {
        return commit_error_response(committed.status());
    }
    return with_tx(answer(), committed->id);
}

Result<Bytes> CleanroomApp::service_private_key(kv::Transaction& tx) {
    COFFER_ASSIGN_OR_RETURN(
        auto value, node::read_governance_value(tx, cr::kServiceKeyMap, cr::kServiceKeyKey));
    if (!value.has_value() || !value->contains("private_key") ||
        !(*value)["private_key"].is_string()) {
        return error(Errc::kFailedPrecondition, "this service has no clean-room key");
    }
    return from_hex((*value)["private_key"].get<std::string>());
}

net::HttpResponse CleanroomApp::get_key(const net::HttpRequest&) {
    auto tx = committed_snapshot();
    if (!tx.ok()) {
        return net::HttpResponse::error(503, "unavailable", tx.status().message());
    }
    auto value = node::read_governance_value(*tx, cr::kServiceKeyMap, cr::kServiceKeyKey);
    if (!value.ok() || !value->has_value() || !(**value)["public_key"].is_string()) {
        return net::HttpResponse::error(404, "not_found", "this service has no clean-room key");
    }
    std::string public_hex = (**value)["public_key"].get<std::string>();
    auto public_key = from_hex(public_hex);
    if (!public_key.ok() || public_key->size() != crypto::kX25519KeySize) {
        return refusal(error(Errc::kCorrupt, "bad stored key"));
    }
    Bytes statement = to_bytes(cr::kKeyStatementPrefix);
    put_bytes(statement, *public_key);
    auto signature = node_.sign_as_service(statement);
    if (!signature.ok()) {
        return net::HttpResponse::error(500, "internal_error", "signing the key failed");
    }
    json nodes = json::array();
    Status listed = cr::for_each_json(
        *tx, node::kNodesMap, [&](const std::string& id, const json& record) -> Status {
            if (record.value("status", "") == node::kNodeStatusTrusted) {
                nodes.push_back({{"node_id", id},
                                 {"cert", record.value("cert", "")},
                                 {"attestation", record.value("attestation", json())}});
            }
            return Status();
        });
    if (!listed.ok()) {
        return refusal(listed);
    }
    return net::HttpResponse::json(200, {{"version", 1},
                                         {"public_key", public_hex},
                                         {"signature", to_hex(*signature)},
                                         {"service_cert", node_.service_cert().to_pem()},
                                         {"nodes", nodes}});
}

net::HttpResponse CleanroomApp::post_dataset(const net::HttpRequest& request,
                                             const Caller& caller) {
    auto schema = cl::parse_schema(request.body);
    if (!schema.ok()) {
        return refusal(error(Errc::kInvalidArgument, schema.status().message()));
    }
    cr::DatasetRecord record;
    record.schema = std::move(*schema);
    auto body = [&](kv::Transaction& tx) -> Status {
        COFFER_ASSIGN_OR_RETURN(cr::Party party, cr::caller_party(tx, caller.fingerprint));
        COFFER_ASSIGN_OR_RETURN(auto existing, cr::read_dataset(tx, record.schema.name));
        if (existing.has_value()) {
            return error(Errc::kConflict, "dataset " + record.schema.name +
                                              " is already declared (owner " + existing->owner +
                                              ")");
        }
        COFFER_ASSIGN_OR_RETURN(cr::PartyCounts counts, cr::read_party_counts(tx, party.id));
        if (counts.datasets >= cr::kMaxDatasetsPerParty) {
            return error(Errc::kPermissionDenied, party.id + " has declared " +
                                                      std::to_string(counts.datasets) +
                                                      " datasets, the most one party may declare");
        }
        counts.datasets += 1;
        COFFER_RETURN_IF_ERROR(cr::write_party_counts(tx, party.id, counts));
        record.owner = party.id;
        record.owner_fingerprint = party.fingerprint;
        return cr::write_dataset(tx, record);
    };
    return commit(body, [&] {
        return json{{"dataset", record.schema.name}, {"owner", record.owner}, {"version", 0}};
    });
}

net::HttpResponse CleanroomApp::get_datasets(const net::HttpRequest&) {
    auto tx = committed_snapshot();
    if (!tx.ok()) {
        return net::HttpResponse::error(503, "unavailable", tx.status().message());
    }
    auto all = cr::read_all_datasets(*tx);
    if (!all.ok()) {
        return refusal(all.status());
    }
    json list = json::array();
    for (const auto& [name, record] : *all) {
        json entry = record.to_json();
        entry.erase("owner_fingerprint");
        entry["name"] = name;
        list.push_back(std::move(entry));
    }
    return net::HttpResponse::json(200, {{"datasets", list}});
}

net::HttpResponse CleanroomApp::post_upload(const net::HttpRequest& request, const Caller& caller) {
    auto name = query_param(request, "dataset");
    if (!name.ok()) {
        return refusal(name.status());
    }
    kv::Transaction tx = node_.store().begin();
    auto party = cr::caller_party(tx, caller.fingerprint);
    if (!party.ok()) {
        return refusal(party.status());
    }
    auto record = cr::read_dataset(tx, *name);
    if (!record.ok() || !record->has_value()) {
        return record.ok() ? refusal(error(Errc::kNotFound, "no dataset " + *name))
                           : refusal(record.status());
    }
    if ((*record)->owner_fingerprint != party->fingerprint) {
        return refusal(error(Errc::kPermissionDenied, "only the owner of dataset " + *name + " (" +
                                                          (*record)->owner + ") uploads to it"));
    }
    auto id = uploads_.open(*name, party->fingerprint);
    if (!id.ok()) {
        net::HttpResponse r = net::HttpResponse::error(503, "unavailable", id.status().message());
        r.headers.emplace_back("Retry-After", "10");
        return r;
    }
    return net::HttpResponse::json(200, {{"upload_id", *id}, {"dataset", *name}});
}

net::HttpResponse CleanroomApp::post_chunk(const net::HttpRequest& request, const Caller& caller) {
    auto id = query_param(request, "upload");
    auto index_text = query_param(request, "index");
    if (!id.ok() || !index_text.ok()) {
        return refusal(id.ok() ? index_text.status() : id.status());
    }
    auto index = parse_index(*index_text);
    if (!index.ok()) {
        return refusal(index.status());
    }
    Status open = uploads_.check_open(*id, caller.fingerprint);
    if (!open.ok()) {
        return refusal(open);
    }
    if (request.body.size() < crypto::kHpkeEncSize) {
        return refusal(error(Errc::kInvalidArgument, "a chunk is enc (32 bytes) || ciphertext"));
    }
    kv::Transaction tx = node_.store().begin();
    auto key = service_private_key(tx);
    if (!key.ok()) {
        return refusal(key.status());
    }
    ByteSpan body = as_bytes(request.body);
    std::string aad = *id + "/" + std::to_string(*index);
    auto plaintext = crypto::hpke_open(crypto::HpkeSuite{}, *key, body.first(crypto::kHpkeEncSize),
                                       as_bytes(cr::kUploadInfo), as_bytes(aad),
                                       body.subspan(crypto::kHpkeEncSize));
    if (!plaintext.ok()) {
        return refusal(error(Errc::kInvalidArgument,
                             "chunk " + std::to_string(*index) +
                                 " does not decrypt: it must be sealed to the clean-room key "
                                 "with aad \"" +
                                 aad + "\""));
    }
    Status appended = uploads_.append(*id, caller.fingerprint, *index, *plaintext);
    if (!appended.ok()) {
        return refusal(appended);
    }
    return net::HttpResponse::json(200, {{"upload_id", *id}, {"index", *index}});
}

// Checks a closed upload against its commit request and parses it against the dataset's
// declaration (declarations never change, so the latest state is as good as any). Parsed
// once, outside the commit's transaction, which may be retried. Returns the rows.
Result<size_t> CleanroomApp::check_upload(const cr::UploadSession& session, const json& body) {
    if (body["chunks"].get<uint64_t>() != session.next_index) {
        return error(Errc::kInvalidArgument,
                     "the upload received " + std::to_string(session.next_index) +
                         " chunks, the commit says " + body["chunks"].dump());
    }
    std::string digest = to_hex(crypto::sha256(as_bytes(session.plaintext)));
    if (body["sha256"].get<std::string>() != digest) {
        return error(Errc::kInvalidArgument,
                     "sha256 does not match the plaintext received; nothing stored");
    }
    kv::Transaction tx = node_.store().begin();
    COFFER_ASSIGN_OR_RETURN(auto record, cr::read_dataset(tx, session.dataset));
    if (!record.has_value()) {
        return error(Errc::kNotFound, "no dataset " + session.dataset);
    }
    auto table = cl::parse_csv(record->schema, session.plaintext);
    if (!table.ok()) {
        return error(Errc::kInvalidArgument, table.status().message());
    }
    return table->rows.size();
}

// The commit of an upload: the session is closed whatever the outcome, so a refused
// upload leaves nothing behind, in the ledger or in memory.
net::HttpResponse CleanroomApp::post_commit(const net::HttpRequest& request, const Caller& caller) {
    auto id = query_param(request, "upload");
    if (!id.ok()) {
        return refusal(id.status());
    }
    auto body = parse_body_object(request.body, {"chunks", "sha256"});
    if (!body.ok()) {
        return refusal(body.status());
    }
    if (!(*body)["chunks"].is_number_unsigned() || !(*body)["sha256"].is_string()) {
        return refusal(error(Errc::kInvalidArgument,
                             "body must be {\"chunks\": n, \"sha256\": hex of the plaintext}"));
    }
    auto session = uploads_.take(*id, caller.fingerprint);
    if (!session.ok()) {
        return refusal(session.status());
    }
    auto new_rows = check_upload(*session, *body);
    if (!new_rows.ok()) {
        return refusal(new_rows.status());
    }
    cr::DatasetRecord stored;
    auto write = [&](kv::Transaction& tx) -> Status {
        COFFER_ASSIGN_OR_RETURN(auto record, cr::read_dataset(tx, session->dataset));
        if (!record.has_value() || record->owner_fingerprint != caller.fingerprint) {
            return error(Errc::kPermissionDenied,
                         "only the owner of dataset " + session->dataset + " uploads to it");
        }
        stored = std::move(*record);
        const int64_t bytes = static_cast<int64_t>(session->plaintext.size());
        if (bytes > cr::kMaxDatasetBytes - stored.bytes) {
            return error(Errc::kResourceExhausted,
                         "dataset " + stored.schema.name + " holds " +
                             std::to_string(stored.bytes) + " bytes; this upload of " +
                             std::to_string(bytes) + " bytes would pass the limit of " +
                             std::to_string(cr::kMaxDatasetBytes) + " bytes per dataset");
        }
        stored.version += 1;
        stored.rows += static_cast<int64_t>(*new_rows);
        stored.bytes += bytes;
        COFFER_RETURN_IF_ERROR(
            cr::write_rows(tx, stored.schema.name, stored.version, session->plaintext));
        return cr::write_dataset(tx, stored);
    };
    return commit(write, [&] {
        return json{{"dataset", stored.schema.name},
                    {"version", stored.version},
                    {"rows", *new_rows},
                    {"total_rows", stored.rows}};
    });
}

// The owners of the datasets `doc` reads, sorted and unique; the recipients and triggers
// resolved. Errors: kInvalidArgument naming the problem.
Result<std::vector<std::string>> document_owners(
    const cl::AnalysisDocument& doc, const std::map<std::string, cr::DatasetRecord>& datasets,
    const cr::PartyDirectory& parties) {
    std::map<std::string, cl::DatasetSchema> declared;
    for (const auto& [name, record] : datasets) {
        declared.emplace(name, record.schema);
    }
    Status checked = cl::check_analysis(doc, declared);
    if (!checked.ok()) {
        return error(Errc::kInvalidArgument, "analysis refused: " + checked.message());
    }
    std::set<std::string> owners;
    for (const cl::DatasetRef& ref : doc.datasets) {
        owners.insert(datasets.at(ref.name).owner);
    }
    for (const auto* list : {&doc.recipients, &doc.triggers}) {
        for (const std::string& id : *list) {
            auto party = cr::resolve_party(parties, id);
            if (!party.ok()) {
                return error(Errc::kInvalidArgument, party.status().message());
            }
        }
    }
    return std::vector<std::string>(owners.begin(), owners.end());
}

// The records of the datasets `doc` names, by point reads (a missing one is left out, and
// check_analysis names it): a proposal never lists the whole datasets map.
Result<std::map<std::string, cr::DatasetRecord>> read_named_datasets(
    kv::Transaction& tx, const cl::AnalysisDocument& doc) {
    std::map<std::string, cr::DatasetRecord> out;
    for (const cl::DatasetRef& ref : doc.datasets) {
        COFFER_ASSIGN_OR_RETURN(auto record, cr::read_dataset(tx, ref.name));
        if (record.has_value()) {
            out.emplace(ref.name, std::move(*record));
        }
    }
    return out;
}

net::HttpResponse CleanroomApp::post_analysis(const net::HttpRequest& request,
                                              const Caller& caller) {
    auto doc = cl::parse_analysis(request.body);
    if (!doc.ok()) {
        return refusal(error(Errc::kInvalidArgument, doc.status().message()));
    }
    cr::AnalysisRecord record;
    auto body = [&](kv::Transaction& tx) -> Status {
        COFFER_ASSIGN_OR_RETURN(cr::PartyDirectory parties, cr::load_parties(tx));
        COFFER_ASSIGN_OR_RETURN(cr::Party party, cr::caller_party(parties, caller.fingerprint));
        COFFER_ASSIGN_OR_RETURN(auto existing, cr::read_analysis(tx, doc->id));
        if (existing.has_value()) {
            record = std::move(*existing);
            return Status();
        }
        COFFER_ASSIGN_OR_RETURN(cr::PartyCounts counts, cr::read_party_counts(tx, party.id));
        if (counts.analyses >= cr::kMaxAnalysesPerParty) {
            return error(Errc::kPermissionDenied, party.id + " has proposed " +
                                                      std::to_string(counts.analyses) +
                                                      " analyses, the most one party may propose");
        }
        COFFER_ASSIGN_OR_RETURN(auto datasets, read_named_datasets(tx, *doc));
        COFFER_ASSIGN_OR_RETURN(record.owners, document_owners(*doc, datasets, parties));
        counts.analyses += 1;
        COFFER_RETURN_IF_ERROR(cr::write_party_counts(tx, party.id, counts));
        record.id = doc->id;
        record.document = request.body;
        record.proposer = party.id;
        return cr::write_analysis(tx, record);
    };
    return commit(body, [&] { return json{{"id", record.id}, {"owners", record.owners}}; });
}

Result<json> CleanroomApp::analysis_summary(kv::Transaction& tx, const cr::AnalysisRecord& record) {
    COFFER_ASSIGN_OR_RETURN(auto approvals, cr::read_approvals(tx, record));
    COFFER_ASSIGN_OR_RETURN(auto versions, cr::dataset_versions(tx, record));
    json listed = json::object();
    for (const auto& [party, a] : approvals) {
        listed[party] = {{"status", a.approved ? "approved" : "revoked"},
                         {"max_runs", a.max_runs.has_value() ? json(*a.max_runs) : json()},
                         {"versions", a.versions}};
    }
    Status runnable = cr::check_runnable(record, approvals, versions);
    json summary = {{"id", record.id},          {"proposer", record.proposer},
                    {"owners", record.owners},  {"approvals", listed},
                    {"versions", versions},     {"runs", record.runs},
                    {"runnable", runnable.ok()}};
    if (!runnable.ok()) {
        summary["not_runnable_because"] = runnable.message();
    }
    return summary;
}

net::HttpResponse CleanroomApp::get_analyses(const net::HttpRequest&) {
    auto tx = committed_snapshot();
    if (!tx.ok()) {
        return net::HttpResponse::error(503, "unavailable", tx.status().message());
    }
    json list = json::array();
    Status listed =
        cr::for_each_json(*tx, cr::kAnalysesMap, [&](const std::string& id, const json&) -> Status {
            COFFER_ASSIGN_OR_RETURN(auto record, cr::read_analysis(*tx, id));
            COFFER_ASSIGN_OR_RETURN(json summary, analysis_summary(*tx, *record));
            list.push_back(std::move(summary));
            return Status();
        });
    if (!listed.ok()) {
        return refusal(listed);
    }
    return net::HttpResponse::json(200, {{"analyses", list}});
}

net::HttpResponse CleanroomApp::get_analysis(const net::HttpRequest& request) {
    auto id = query_param(request, "id");
    if (!id.ok()) {
        return refusal(id.status());
    }
    auto tx = committed_snapshot();
    if (!tx.ok()) {
        return net::HttpResponse::error(503, "unavailable", tx.status().message());
    }
    auto record = cr::read_analysis(*tx, *id);
    if (!record.ok() || !record->has_value()) {
        return record.ok() ? refusal(error(Errc::kNotFound, "no analysis " + *id))
                           : refusal(record.status());
    }
    auto summary = analysis_summary(*tx, **record);
    if (!summary.ok()) {
        return refusal(summary.status());
    }
    (*summary)["document"] = (*record)->document;
    return net::HttpResponse::json(200, *summary);
}

net::HttpResponse CleanroomApp::post_approval(const net::HttpRequest& request, const Caller& caller,
                                              bool approve) {
    auto id = query_param(request, "analysis");
    auto body = parse_body_object(
        request.body, approve ? std::set<std::string>{"max_runs"} : std::set<std::string>{});
    if (!id.ok() || !body.ok()) {
        return refusal(id.ok() ? body.status() : id.status());
    }
    cr::Approval approval{approve, std::nullopt, {}};
    if (body->contains("max_runs") && !(*body)["max_runs"].is_null()) {
        const json& m = (*body)["max_runs"];
        if (!m.is_number_unsigned() || m.get<uint64_t>() < 1 || m.get<uint64_t>() > INT64_MAX) {
            return refusal(error(Errc::kInvalidArgument, "max_runs must be a positive integer"));
        }
        approval.max_runs = m.get<int64_t>();
    }
    std::string party_id;
    auto write = [&](kv::Transaction& tx) -> Status {
        COFFER_ASSIGN_OR_RETURN(cr::Party party, cr::caller_party(tx, caller.fingerprint));
        party_id = party.id;
        COFFER_ASSIGN_OR_RETURN(auto record, cr::read_analysis(tx, *id));
        if (!record.has_value()) {
            return error(Errc::kNotFound, "no analysis " + *id);
        }
        if (!contains(record->owners, party.id)) {
            return error(Errc::kPermissionDenied,
                         party.id + " owns no dataset that analysis " + *id + " reads");
        }
        if (!approve) {
            COFFER_ASSIGN_OR_RETURN(auto approvals, cr::read_approvals(tx, *record));
            auto it = approvals.find(party.id);
            if (it == approvals.end() || !it->second.approved) {
                return error(Errc::kPermissionDenied,
                             party.id + " has no approval of analysis " + *id + " to withdraw");
            }
            approval.max_runs = it->second.max_runs;
            approval.versions = it->second.versions;
        } else {
            // The approval covers the rows its owner could see when giving it.
            COFFER_ASSIGN_OR_RETURN(approval.versions, cr::dataset_versions(tx, *record));
        }
        return cr::write_approval(tx, *id, party.id, approval);
    };
    return commit(write, [&] {
        return json{{"analysis", *id},
                    {"party", party_id},
                    {"status", approve ? "approved" : "revoked"},
                    {"max_runs", approval.max_runs.has_value() ? json(*approval.max_runs) : json()},
                    {"versions", approval.versions}};
    });
}

Result<PreparedRun> CleanroomApp::prepare_run(const std::string& analysis_id,
                                              const Caller& caller) {
    PreparedRun run;
    kv::Transaction tx = node_.store().begin();
    COFFER_ASSIGN_OR_RETURN(cr::PartyDirectory parties, cr::load_parties(tx));
    COFFER_ASSIGN_OR_RETURN(run.trigger, cr::caller_party(parties, caller.fingerprint));
    COFFER_ASSIGN_OR_RETURN(auto record, cr::read_analysis(tx, analysis_id));
    if (!record.has_value()) {
        return error(Errc::kNotFound, "no analysis " + analysis_id);
    }
    auto doc = cl::parse_analysis(record->document);
    if (!doc.ok()) {
        return error(Errc::kCorrupt, "stored analysis does not parse");
    }
    run.doc = std::move(*doc);
    if (!contains(run.doc.triggers, run.trigger.id)) {
        return error(Errc::kPermissionDenied,
                     run.trigger.id + " is not a trigger of analysis " + analysis_id);
    }
    COFFER_ASSIGN_OR_RETURN(auto approvals, cr::read_approvals(tx, *record));
    COFFER_ASSIGN_OR_RETURN(auto versions, cr::dataset_versions(tx, *record));
    COFFER_RETURN_IF_ERROR(cr::check_runnable(*record, approvals, versions));
    for (const cl::DatasetRef& ref : run.doc.datasets) {
        COFFER_ASSIGN_OR_RETURN(auto dataset, cr::read_dataset(tx, ref.name));
        if (!dataset.has_value()) {
            return error(Errc::kCorrupt, "dataset " + ref.name + " vanished");
        }
        COFFER_ASSIGN_OR_RETURN(cl::Table table, cr::load_table(tx, *dataset));
        run.uses.push_back({ref.name, dataset->version, dataset->rows});
        run.tables.emplace(ref.name, std::move(table));
    }
    for (const std::string& recipient : run.doc.recipients) {
        auto party = cr::resolve_party(parties, recipient);
        if (!party.ok()) {
            return error(Errc::kFailedPrecondition,
                         "recipient " + recipient + ": " + party.status().message());
        }
        run.recipient_keys.emplace(recipient, party->encryption_key);
    }
    return run;
}

// Re-checks the approvals and dataset versions in the transaction that writes the run, then
// writes the encrypted results, the audit record and the counters.
Status CleanroomApp::write_run(kv::Transaction& tx, const PreparedRun& run,
                               const cl::AnalysisResult& result, int64_t duration_ms, json& audit) {
    COFFER_ASSIGN_OR_RETURN(auto record, cr::read_analysis(tx, run.doc.id));
    if (!record.has_value()) {
        return error(Errc::kCorrupt, "analysis " + run.doc.id + " vanished");
    }
    COFFER_ASSIGN_OR_RETURN(auto approvals, cr::read_approvals(tx, *record));
    COFFER_ASSIGN_OR_RETURN(auto versions, cr::dataset_versions(tx, *record));
    Status runnable = cr::check_runnable(*record, approvals, versions);
    if (!runnable.ok()) {
        return error(runnable.code(), "the run's results were discarded: " + runnable.message());
    }
    json datasets = json::array();
    for (const DatasetUse& use : run.uses) {
        COFFER_ASSIGN_OR_RETURN(auto dataset, cr::read_dataset(tx, use.name));
        if (!dataset.has_value() || dataset->version != use.version) {
            return error(Errc::kConflict,
                         "dataset " + use.name + " changed during the run; run it again");
        }
        datasets.push_back({{"name", use.name}, {"version", use.version}, {"rows", use.rows}});
    }
    COFFER_ASSIGN_OR_RETURN(int64_t sequence, cr::next_run_sequence(tx));
    std::string id = cr::run_id(sequence);
    json digests = json::object();
    for (const auto& [recipient, output] : result.outputs) {
        std::string aad = id + "/" + recipient;
        COFFER_ASSIGN_OR_RETURN(
            crypto::HpkeSealed sealed,
            crypto::hpke_seal(crypto::HpkeSuite{}, run.recipient_keys.at(recipient),
                              as_bytes(cr::kResultInfo), as_bytes(aad), as_bytes(output.json)));
        digests[recipient] = to_hex(crypto::sha256(sealed.ciphertext));
        COFFER_RETURN_IF_ERROR(node::write_governance_value(
            tx, cr::kResultsMap, aad,
            {{"enc", to_hex(sealed.enc)}, {"ciphertext", to_hex(sealed.ciphertext)}}));
    }
    audit = {{"version", 1},
             {"run_id", id},
             {"analysis_id", run.doc.id},
             {"trigger", run.trigger.id},
             {"datasets", datasets},
             {"results", digests},
             {"suppressed_rows", result.suppressed_rows},
             {"duration_ms", duration_ms}};
    COFFER_RETURN_IF_ERROR(node::write_governance_value(tx, cr::kRunsMap, id, audit));
    record->runs += 1;
    return cr::write_analysis(tx, *record);
}

net::HttpResponse CleanroomApp::post_run(const net::HttpRequest& request, const Caller& caller) {
    auto id = query_param(request, "analysis");
    if (!id.ok()) {
        return refusal(id.status());
    }
    auto run = prepare_run(*id, caller);
    if (!run.ok()) {
        return refusal(run.status());
    }
    auto started = std::chrono::steady_clock::now();
    cl::RunOptions options;
    options.caller = run->trigger.id;
    auto result = cl::run_analysis(run->doc, run->tables, options);
    int64_t duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - started)
                              .count();
    if (!result.ok()) {
        return refusal(run_failure(result.status()));
    }
    json audit;
    net::HttpResponse answer = commit(
        [&](kv::Transaction& tx) { return write_run(tx, *run, *result, duration_ms, audit); },
        [&] { return audit; });
    spdlog::debug("cleanroom.run analysis_id={} status={} duration_ms={}", *id, answer.status,
                  duration_ms);
    return answer;
}

// Whether `party` may see the runs of the analysis `doc`: it owns a dataset the analysis
// reads, receives its results or triggers it.
bool sees_runs(const cr::AnalysisRecord& record, const cl::AnalysisDocument& doc,
               const std::string& party) {
    return contains(record.owners, party) || contains(doc.recipients, party) ||
           contains(doc.triggers, party);
}

net::HttpResponse CleanroomApp::get_runs(const net::HttpRequest& request, const Caller& caller) {
    auto filter = request.query.find("analysis");
    auto tx = committed_snapshot();
    if (!tx.ok()) {
        return net::HttpResponse::error(503, "unavailable", tx.status().message());
    }
    auto party = cr::caller_party(*tx, caller.fingerprint);
    if (!party.ok()) {
        return refusal(party.status());
    }
    std::map<std::string, bool> visible;  // by analysis id
    json runs = json::array();
    Status listed = cr::for_each_json(
        *tx, cr::kRunsMap, [&](const std::string& run_id, const json& audit) -> Status {
            std::string analysis = audit.value("analysis_id", "");
            if (filter != request.query.end() && filter->second != analysis) {
                return Status();
            }
            if (visible.count(analysis) == 0) {
                COFFER_ASSIGN_OR_RETURN(auto record, cr::read_analysis(*tx, analysis));
                auto doc = record.has_value()
                               ? cl::parse_analysis(record->document)
                               : Result<cl::AnalysisDocument>(error(Errc::kCorrupt, "no analysis"));
                visible[analysis] = doc.ok() && sees_runs(*record, *doc, party->id);
            }
            if (visible[analysis]) {
                json entry = audit;
                auto seqno = tx->get_version(cr::kRunsMap, as_bytes(run_id));
                auto tx_id = seqno.has_value() ? tx_id_at(node_, *seqno) : std::nullopt;
                entry["tx_id"] = tx_id.has_value() ? json(tx_id->to_string()) : json();
                runs.push_back(std::move(entry));
            }
            return Status();
        });
    if (!listed.ok()) {
        return refusal(listed);
    }
    return net::HttpResponse::json(200, {{"runs", runs}});
}

net::HttpResponse CleanroomApp::get_result(const net::HttpRequest& request, const Caller& caller) {
    auto run = query_param(request, "run");
    if (!run.ok() || !valid_run_id(*run)) {
        return refusal(run.ok() ? error(Errc::kInvalidArgument, "run must be run-NNNNNNNNNN")
                                : run.status());
    }
    auto tx = committed_snapshot();
    if (!tx.ok()) {
        return net::HttpResponse::error(503, "unavailable", tx.status().message());
    }
    auto party = cr::caller_party(*tx, caller.fingerprint);
    if (!party.ok()) {
        return refusal(party.status());
    }
    auto sealed = node::read_governance_value(*tx, cr::kResultsMap, *run + "/" + party->id);
    if (!sealed.ok() || !sealed->has_value()) {
        return refusal(error(Errc::kNotFound, "no result of run " + *run + " for " + party->id));
    }
    return net::HttpResponse::json(200, {{"run_id", *run},
                                         {"recipient", party->id},
                                         {"enc", (**sealed).value("enc", "")},
                                         {"ciphertext", (**sealed).value("ciphertext", "")}});
}

// Examples for the registry walk (tests/endpoints_test.cc): they succeed in order when the
// first user is a party called "user0". The chunk and commit of an upload have none: their
// body must be sealed to the service key made at genesis.
constexpr std::string_view kExampleDataset = "example_accounts";
constexpr std::string_view kExampleDeclaration =
    R"({"name": "example_accounts", "columns": [{"name": "account", "type": "int"},)"
    R"( {"name": "amount", "type": "decimal"}], "entity_columns": ["account"],)"
    R"( "joinable_columns": [], "output_columns": []})";
constexpr std::string_view kExampleAnalysis =
    R"({"version": 1, "kind": "sql", "query": "SELECT count(*) AS n FROM example_accounts",)"
    R"( "datasets": [{"name": "example_accounts", "columns": ["account"]}],)"
    R"( "output_policy": {"columns": ["n"]}, "recipients": ["user0"], "triggers": ["user0"]})";

struct Route {
    const char* method;
    const char* path;
    AuthPolicy policy;
    const char* description;
    std::function<net::HttpResponse(CleanroomApp&, const net::HttpRequest&, const Caller&)> call;
    std::string example_query;
    std::string example_body;
};

std::vector<Route> cleanroom_routes() {
    std::string example_id = to_hex(crypto::sha256(as_bytes(kExampleAnalysis)));
    std::string by_id = "analysis=" + example_id;
    using A = CleanroomApp;
    using Rq = net::HttpRequest;
    using C = Caller;
    return {
        {"GET", "/app/cleanroom/key", AuthPolicy::kAnonymous,
         "the clean room's public key, signed by the service, with the nodes' attestation",
         [](A& a, const Rq& r, const C&) { return a.get_key(r); }, "", ""},
        {"POST", "/app/cleanroom/datasets", AuthPolicy::kUser,
         "declare a dataset (body: the declaration); the caller owns it",
         [](A& a, const Rq& r, const C& c) { return a.post_dataset(r, c); }, "",
         std::string(kExampleDeclaration)},
        {"GET", "/app/cleanroom/datasets", AuthPolicy::kUser,
         "every dataset's declaration, owner, version and row count (never rows)",
         [](A& a, const Rq& r, const C&) { return a.get_datasets(r); }, "", ""},
        {"POST", "/app/cleanroom/uploads", AuthPolicy::kUser,
         "start an upload ?dataset=NAME (the owner only); answers upload_id",
         [](A& a, const Rq& r, const C& c) { return a.post_upload(r, c); },
         "dataset=" + std::string(kExampleDataset), ""},
        {"POST", "/app/cleanroom/uploads/chunk", AuthPolicy::kUser,
         "chunk ?upload=ID&index=N: enc || HPKE ciphertext to the clean-room key",
         [](A& a, const Rq& r, const C& c) { return a.post_chunk(r, c); }, "", ""},
        {"POST", "/app/cleanroom/uploads/commit", AuthPolicy::kUser,
         "commit ?upload=ID with {chunks, sha256}: parse the CSV, store all or nothing",
         [](A& a, const Rq& r, const C& c) { return a.post_commit(r, c); }, "", ""},
        {"POST", "/app/cleanroom/analyses", AuthPolicy::kUser,
         "propose an analysis (body: the document); answers its id and owners",
         [](A& a, const Rq& r, const C& c) { return a.post_analysis(r, c); }, "",
         std::string(kExampleAnalysis)},
        {"GET", "/app/cleanroom/analyses", AuthPolicy::kUser,
         "every analysis: id, proposer, owners, approvals, runs, runnable",
         [](A& a, const Rq& r, const C&) { return a.get_analyses(r); }, "", ""},
        {"GET", "/app/cleanroom/analysis", AuthPolicy::kUser,
         "one analysis ?id=ID with its document",
         [](A& a, const Rq& r, const C&) { return a.get_analysis(r); }, "id=" + example_id, ""},
        {"POST", "/app/cleanroom/approvals", AuthPolicy::kUser,
         "approve ?analysis=ID (an owner; body {} or {\"max_runs\": n})",
         [](A& a, const Rq& r, const C& c) { return a.post_approval(r, c, true); }, by_id, "{}"},
        {"POST", "/app/cleanroom/runs", AuthPolicy::kUser,
         "run ?analysis=ID now on the leader (a trigger); answers the audit record",
         [](A& a, const Rq& r, const C& c) { return a.post_run(r, c); }, by_id, ""},
        {"GET", "/app/cleanroom/runs", AuthPolicy::kUser,
         "audit records [?analysis=ID] the caller may see (owners, recipients, triggers)",
         [](A& a, const Rq& r, const C& c) { return a.get_runs(r, c); }, "", ""},
        {"GET", "/app/cleanroom/results", AuthPolicy::kUser,
         "the caller's encrypted result of ?run=ID",
         [](A& a, const Rq& r, const C& c) { return a.get_result(r, c); }, "run=run-0000000001",
         ""},
        {"POST", "/app/cleanroom/revocations", AuthPolicy::kUser,
         "withdraw the caller's approval of ?analysis=ID",
         [](A& a, const Rq& r, const C& c) { return a.post_approval(r, c, false); }, by_id, ""},
    };
}

Status register_cleanroom_endpoints(EndpointRegistry& registry, std::shared_ptr<CleanroomApp> app) {
    for (Route& route : cleanroom_routes()) {
        Endpoint e;
        e.method = route.method;
        e.path = route.path;
        e.policy = route.policy;
        e.description = route.description;
        e.handler = [app, call = std::move(route.call)](
                        const net::HttpRequest& r, const Caller& c) { return call(*app, r, c); };
        e.example_query = std::move(route.example_query);
        e.example_body = std::move(route.example_body);
        COFFER_RETURN_IF_ERROR(registry.add(std::move(e)));
    }
    return Status();
}

}  // namespace

Status register_cleanroom_app(EndpointRegistry& registry, node::Node& node) {
    return register_cleanroom_endpoints(registry, std::make_shared<CleanroomApp>(node));
}

}  // namespace coffer::apps
