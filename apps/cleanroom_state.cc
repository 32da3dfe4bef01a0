#include "apps/cleanroom_state.h"

#include <algorithm>
#include <cstdio>

#include "cleanroom/analysis.h"
#include "cleanroom/csv.h"
#include "crypto/x25519.h"
#include "crypto/x509.h"
#include "node/governance_maps.h"

namespace coffer::apps::cr {

namespace {

using nlohmann::json;

Status corrupt(std::string_view what, std::string_view key) {
    return error(Errc::kCorrupt,
                 "stored " + std::string(what) + " " + std::string(key) + " is unreadable");
}

Result<DatasetRecord> dataset_from_json(const std::string& name, const json& value) {
    try {
        DatasetRecord r;
        auto schema = cleanroom::parse_schema(value.at("declaration").dump());
        if (!schema.ok()) {
            return corrupt("dataset", name);
        }
        r.schema = std::move(*schema);
        r.owner = value.at("owner").get<std::string>();
        r.owner_fingerprint = value.at("owner_fingerprint").get<std::string>();
        r.version = value.at("version").get<int64_t>();
        r.rows = value.at("rows").get<int64_t>();
        r.bytes = value.contains("bytes") ? value.at("bytes").get<int64_t>() : 0;
        return r;
    } catch (const json::exception&) {
        return corrupt("dataset", name);
    }
}

std::string rows_key(std::string_view dataset, int64_t version, size_t part) {
    char digits[32];
    std::snprintf(digits, sizeof(digits), "/%010lld/%04zu", static_cast<long long>(version), part);
    return std::string(dataset) + digits;
}

std::string approval_key(std::string_view analysis_id, std::string_view party) {
    return std::string(analysis_id) + "/" + std::string(party);
}

}  // namespace

Status for_each_json(kv::Transaction& tx, std::string_view map,
                     const std::function<Status(const std::string&, const json&)>& fn) {
    Status inner;
    size_t seen = 0;
    Status ranged = tx.range(map, ByteSpan(), std::nullopt, 0, [&](ByteSpan k, ByteSpan v) {
        if (++seen > kMaxListedEntries) {
            inner =
                error(Errc::kResourceExhausted, std::string(map) + " holds more than " +
                                                    std::to_string(kMaxListedEntries) + " entries");
            return false;
        }
        json value = json::parse(to_string(v), nullptr, false);
        if (!value.is_object()) {
            inner = corrupt(map, to_string(k));
            return false;
        }
        inner = fn(to_string(k), value);
        return inner.ok();
    });
    COFFER_RETURN_IF_ERROR(ranged);
    return inner;
}

Result<PartyDirectory> load_parties(kv::Transaction& tx) {
    PartyDirectory parties;
    COFFER_RETURN_IF_ERROR(for_each_json(
        tx, node::kUsersMap, [&](const std::string& fingerprint, const json& value) -> Status {
            auto pem = value.find("cert");
            if (pem == value.end() || !pem->is_string()) {
                return corrupt("user", fingerprint);
            }
            auto cert = crypto::Certificate::from_pem(pem->get<std::string>());
            if (!cert.ok()) {
                return corrupt("user", fingerprint);
            }
            PartyDirectory::User user{fingerprint, std::nullopt};
            auto enc = value.find("encryption_public_key");
            if (enc != value.end() && enc->is_string()) {
                auto key = crypto::x25519_public_from_pem(enc->get<std::string>());
                if (key.ok()) {
                    user.encryption_key = std::move(*key);
                }
            }
            std::string name = cert->subject_common_name();
            parties.name_by_fingerprint[fingerprint] = name;
            parties.by_name[name].push_back(std::move(user));
            return Status();
        }));
    return parties;
}

Result<Party> resolve_party(const PartyDirectory& parties, std::string_view id) {
    auto it = parties.by_name.find(std::string(id));
    if (id.empty() || it == parties.by_name.end()) {
        return error(Errc::kNotFound, "party \"" + std::string(id) + "\" is held by no user");
    }
    if (it->second.size() > 1) {
        return error(Errc::kFailedPrecondition, "party \"" + std::string(id) + "\" is ambiguous: " +
                                                    std::to_string(it->second.size()) +
                                                    " users have that name");
    }
    const PartyDirectory::User& user = it->second.front();
    if (!user.encryption_key.has_value()) {
        return error(Errc::kFailedPrecondition,
                     "party \"" + std::string(id) + "\" has no encryption key registered");
    }
    return Party{std::string(id), user.fingerprint, *user.encryption_key};
}

Result<Party> caller_party(const PartyDirectory& parties, std::string_view fingerprint) {
    auto name = parties.name_by_fingerprint.find(std::string(fingerprint));
    if (name == parties.name_by_fingerprint.end()) {
        return error(Errc::kPermissionDenied, "only users take part in the clean room");
    }
    auto party = resolve_party(parties, name->second);
    if (!party.ok()) {
        return error(Errc::kPermissionDenied,
                     "the caller is not a clean-room party: " + party.status().message());
    }
    return party;
}

Result<Party> caller_party(kv::Transaction& tx, std::string_view fingerprint) {
    COFFER_ASSIGN_OR_RETURN(PartyDirectory parties, load_parties(tx));
    return caller_party(parties, fingerprint);
}

json DatasetRecord::to_json() const {
    return {{"declaration", json::parse(cleanroom::schema_to_json(schema))},
            {"owner", owner},
            {"owner_fingerprint", owner_fingerprint},
            {"version", version},
            {"rows", rows},
            {"bytes", bytes}};
}

Result<std::optional<DatasetRecord>> read_dataset(kv::Transaction& tx, std::string_view name) {
    COFFER_ASSIGN_OR_RETURN(auto value, node::read_governance_value(tx, kDatasetsMap, name));
    if (!value.has_value()) {
        return std::optional<DatasetRecord>();
    }
    COFFER_ASSIGN_OR_RETURN(DatasetRecord record, dataset_from_json(std::string(name), *value));
    return std::optional<DatasetRecord>(std::move(record));
}

Result<std::map<std::string, DatasetRecord>> read_all_datasets(kv::Transaction& tx) {
    std::map<std::string, DatasetRecord> all;
    COFFER_RETURN_IF_ERROR(
        for_each_json(tx, kDatasetsMap, [&](const std::string& name, const json& value) -> Status {
            COFFER_ASSIGN_OR_RETURN(DatasetRecord record, dataset_from_json(name, value));
            all.emplace(name, std::move(record));
            return Status();
        }));
    return all;
}

Status write_dataset(kv::Transaction& tx, const DatasetRecord& record) {
    return node::write_governance_value(tx, kDatasetsMap, record.schema.name, record.to_json());
}

Status write_rows(kv::Transaction& tx, std::string_view dataset, int64_t version,
                  std::string_view csv) {
    size_t parts = csv.empty() ? 1 : (csv.size() + kRowsPartBytes - 1) / kRowsPartBytes;
    if (parts > kMaxRowsParts) {
        return error(Errc::kResourceExhausted, "upload too large to store");
    }
    for (size_t part = 0; part < parts; ++part) {
        std::string_view piece = csv.substr(part * kRowsPartBytes, kRowsPartBytes);
        COFFER_RETURN_IF_ERROR(
            tx.put(kRowsMap, as_bytes(rows_key(dataset, version, part)), as_bytes(piece)));
    }
    return Status();
}

Result<cleanroom::Table> load_table(kv::Transaction& tx, const DatasetRecord& record) {
    cleanroom::Table table;
    table.schema = record.schema;
    table.owner = record.owner;
    for (int64_t version = 1; version <= record.version; ++version) {
        std::string csv;
        for (size_t part = 0; part < kMaxRowsParts; ++part) {
            auto piece = tx.get(kRowsMap, as_bytes(rows_key(record.schema.name, version, part)));
            if (!piece.has_value()) {
                break;
            }
            csv += to_string(*piece);
        }
        auto parsed = cleanroom::parse_csv(record.schema, csv);
        if (!parsed.ok()) {
            return corrupt("upload", rows_key(record.schema.name, version, 0));
        }
        for (cleanroom::Row& row : parsed->rows) {
            table.rows.push_back(std::move(row));
        }
    }
    return table;
}

Result<PartyCounts> read_party_counts(kv::Transaction& tx, std::string_view party) {
    COFFER_ASSIGN_OR_RETURN(auto value, node::read_governance_value(tx, kPartyCountsMap, party));
    PartyCounts counts;
    if (!value.has_value()) {
        return counts;
    }
    try {
        counts.datasets = value->at("datasets").get<int64_t>();
        counts.analyses = value->at("analyses").get<int64_t>();
    } catch (const json::exception&) {
        return corrupt("party counts", party);
    }
    return counts;
}

Status write_party_counts(kv::Transaction& tx, std::string_view party, const PartyCounts& counts) {
    return node::write_governance_value(
        tx, kPartyCountsMap, party, {{"datasets", counts.datasets}, {"analyses", counts.analyses}});
}

json AnalysisRecord::to_json() const {
    return {{"document", document}, {"proposer", proposer}, {"owners", owners}, {"runs", runs}};
}

Result<std::optional<AnalysisRecord>> read_analysis(kv::Transaction& tx, std::string_view id) {
    COFFER_ASSIGN_OR_RETURN(auto value, node::read_governance_value(tx, kAnalysesMap, id));
    if (!value.has_value()) {
        return std::optional<AnalysisRecord>();
    }
    try {
        AnalysisRecord r;
        r.id = std::string(id);
        r.document = value->at("document").get<std::string>();
        r.proposer = value->at("proposer").get<std::string>();
        r.owners = value->at("owners").get<std::vector<std::string>>();
        r.runs = value->at("runs").get<int64_t>();
        return std::optional<AnalysisRecord>(std::move(r));
    } catch (const json::exception&) {
        return corrupt("analysis", id);
    }
}

Status write_analysis(kv::Transaction& tx, const AnalysisRecord& record) {
    return node::write_governance_value(tx, kAnalysesMap, record.id, record.to_json());
}

Result<std::map<std::string, Approval>> read_approvals(kv::Transaction& tx,
                                                       const AnalysisRecord& record) {
    std::map<std::string, Approval> approvals;
    for (const std::string& owner : record.owners) {
        std::string key = approval_key(record.id, owner);
        COFFER_ASSIGN_OR_RETURN(auto value, node::read_governance_value(tx, kApprovalsMap, key));
        if (!value.has_value()) {
            continue;
        }
        Approval a;
        auto status = value->find("status");
        auto max_runs = value->find("max_runs");
        auto versions = value->find("versions");
        if (status == value->end() || !status->is_string() || max_runs == value->end() ||
            !(max_runs->is_null() || max_runs->is_number_integer())) {
            return corrupt("approval", key);
        }
        // An approval stored without versions covers no version: it must be given again.
        if (versions != value->end()) {
            if (!versions->is_object()) {
                return corrupt("approval", key);
            }
            for (const auto& [dataset, version] : versions->items()) {
                if (!version.is_number_integer()) {
                    return corrupt("approval", key);
                }
                a.versions[dataset] = version.get<int64_t>();
            }
        }
        a.approved = *status == "approved";
        if (max_runs->is_number_integer()) {
            a.max_runs = max_runs->get<int64_t>();
        }
        approvals.emplace(owner, a);
    }
    return approvals;
}

Status write_approval(kv::Transaction& tx, std::string_view analysis_id, std::string_view party,
                      const Approval& approval) {
    json value = {
        {"status", approval.approved ? "approved" : "revoked"},
        {"max_runs", approval.max_runs.has_value() ? json(*approval.max_runs) : json(nullptr)},
        {"versions", approval.versions}};
    return node::write_governance_value(tx, kApprovalsMap, approval_key(analysis_id, party), value);
}

Result<std::map<std::string, int64_t>> dataset_versions(kv::Transaction& tx,
                                                        const AnalysisRecord& record) {
    auto doc = cleanroom::parse_analysis(record.document);
    if (!doc.ok()) {
        return corrupt("analysis", record.id);
    }
    std::map<std::string, int64_t> versions;
    for (const cleanroom::DatasetRef& ref : doc->datasets) {
        COFFER_ASSIGN_OR_RETURN(auto dataset, read_dataset(tx, ref.name));
        if (!dataset.has_value()) {
            return error(Errc::kCorrupt, "dataset " + ref.name + " vanished");
        }
        versions[ref.name] = dataset->version;
    }
    return versions;
}

namespace {

// kPermissionDenied unless `approval` of `owner` was given on the `current` versions.
Status check_versions(const std::string& owner, const Approval& approval,
                      const std::map<std::string, int64_t>& current) {
    for (const auto& [dataset, version] : current) {
        auto it = approval.versions.find(dataset);
        if (it == approval.versions.end()) {
            return error(
                Errc::kPermissionDenied,
                "approval of " + owner + " does not cover dataset " + dataset + ": approve again");
        }
        if (it->second != version) {
            return error(Errc::kPermissionDenied,
                         "approval of " + owner + " covers dataset " + dataset + " version " +
                             std::to_string(it->second) + ", which is now version " +
                             std::to_string(version) + ": approve again");
        }
    }
    return Status();
}

}  // namespace

Status check_runnable(const AnalysisRecord& record,
                      const std::map<std::string, Approval>& approvals,
                      const std::map<std::string, int64_t>& current) {
    std::optional<int64_t> cap;
    for (const std::string& owner : record.owners) {
        auto it = approvals.find(owner);
        if (it == approvals.end()) {
            return error(Errc::kPermissionDenied,
                         "analysis " + record.id + " is not approved by " + owner);
        }
        if (!it->second.approved) {
            return error(Errc::kPermissionDenied, "the approval of " + owner + " for analysis " +
                                                      record.id + " was revoked");
        }
        COFFER_RETURN_IF_ERROR(check_versions(owner, it->second, current));
        if (it->second.max_runs.has_value()) {
            cap = std::min(cap.value_or(*it->second.max_runs), *it->second.max_runs);
        }
    }
    if (cap.has_value() && record.runs >= *cap) {
        return error(Errc::kPermissionDenied, "analysis " + record.id + " reached its run cap of " +
                                                  std::to_string(*cap) + " runs");
    }
    return Status();
}

std::string run_id(int64_t sequence) {
    char digits[32];
    std::snprintf(digits, sizeof(digits), "run-%010lld", static_cast<long long>(sequence));
    return digits;
}

Result<int64_t> next_run_sequence(kv::Transaction& tx) {
    COFFER_ASSIGN_OR_RETURN(auto value,
                            node::read_governance_value(tx, kRunCounterMap, kRunCounterKey));
    int64_t next = 1;
    if (value.has_value()) {
        auto n = value->find("next");
        if (n == value->end() || !n->is_number_integer() || n->get<int64_t>() < 1) {
            return corrupt("run counter", kRunCounterKey);
        }
        next = n->get<int64_t>();
    }
    COFFER_RETURN_IF_ERROR(
        node::write_governance_value(tx, kRunCounterMap, kRunCounterKey, {{"next", next + 1}}));
    return next;
}

}  // namespace coffer::apps::cr
