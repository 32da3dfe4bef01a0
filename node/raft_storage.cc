#include "node/raft_storage.h"

#include "ledger/entry.h"
#include "node/files.h"
#include "node/governance_maps.h"

namespace coffer::node {

namespace {

using nlohmann::json;

constexpr size_t kMaxRaftStateBytes = 64 * 1024;

std::string state_path(const std::string& data_dir) {
    return ledger::join_path(data_dir, kRaftStateFileName);
}

Result<consensus::Configuration> configuration_from_json(const json& value) {
    if (!value.is_object() || value.size() != 1 || !value.contains("voters") ||
        !value["voters"].is_array()) {
        return error(Errc::kInvalidArgument, "configuration value must be {\"voters\": [ids]}");
    }
    std::vector<consensus::NodeId> ids;
    for (const json& id : value["voters"]) {
        if (!id.is_string()) {
            return error(Errc::kInvalidArgument, "configuration voters must be strings");
        }
        ids.push_back(id.get<std::string>());
    }
    return consensus::make_configuration(std::move(ids));
}

}  // namespace

Result<std::optional<consensus::Configuration>> configuration_in(const kv::WriteSet& ws) {
    auto map = ws.maps.find(std::string(kConfigurationMap));
    if (map == ws.maps.end()) {
        return std::optional<consensus::Configuration>();
    }
    auto write = map->second.find(to_bytes(kConfigurationKey));
    if (map->second.size() != 1 || write == map->second.end() || !write->second.has_value()) {
        return error(Errc::kInvalidArgument,
                     "a configuration write sets exactly the key \"voters\" of " +
                         std::string(kConfigurationMap));
    }
    const Bytes& bytes = *write->second;
    json value = json::parse(bytes.begin(), bytes.end(), nullptr, false);
    if (value.is_discarded()) {
        return error(Errc::kInvalidArgument, "configuration value is not JSON");
    }
    COFFER_ASSIGN_OR_RETURN(consensus::Configuration config, configuration_from_json(value));
    return std::optional<consensus::Configuration>(std::move(config));
}

std::string configuration_value(const consensus::Configuration& config) {
    return json{{"voters", config.voters}}.dump();
}

Result<consensus::Configuration> configuration_of_entry(ByteSpan entry_bytes) {
    COFFER_ASSIGN_OR_RETURN(ledger::DecodedEntry entry, ledger::parse_entry(entry_bytes));
    COFFER_ASSIGN_OR_RETURN(kv::WriteSet ws, ledger::decode_public_write_set(entry));
    COFFER_ASSIGN_OR_RETURN(std::optional<consensus::Configuration> config, configuration_in(ws));
    if (!config.has_value()) {
        return error(Errc::kInvalidArgument, "entry does not set the configuration");
    }
    return *config;
}

Result<consensus::Entry> raft_entry_of(ByteSpan entry_bytes, uint64_t recovery_base) {
    COFFER_ASSIGN_OR_RETURN(ledger::DecodedEntry entry, ledger::parse_entry(entry_bytes));
    consensus::EntryKind kind = consensus::EntryKind::kData;
    if (entry.header.is_signature()) {
        kind = consensus::EntryKind::kSignature;
    } else {
        COFFER_ASSIGN_OR_RETURN(kv::WriteSet ws, ledger::decode_public_write_set(entry));
        COFFER_ASSIGN_OR_RETURN(std::optional<consensus::Configuration> config,
                                configuration_in(ws));
        if (config.has_value() && entry.header.seqno > recovery_base) {
            kind = consensus::EntryKind::kConfiguration;
        }
    }
    return consensus::Entry{entry.header.view, entry.header.seqno, kind,
                            Bytes(entry_bytes.begin(), entry_bytes.end())};
}

Result<RaftStateFile> read_raft_state(const std::string& data_dir) {
    std::string path = state_path(data_dir);
    COFFER_ASSIGN_OR_RETURN(std::string text, read_small_file(path, kMaxRaftStateBytes));
    json doc = json::parse(text, nullptr, false);
    auto corrupt = [&](const std::string& why) { return error(Errc::kCorrupt, path + ": " + why); };
    if (doc.is_discarded() || !doc.is_object()) {
        return corrupt("not a JSON object");
    }
    if (!doc.contains("version") || doc["version"] != kRaftStateVersion) {
        return corrupt("unsupported or missing version");
    }
    if (!doc.contains("term") || !doc["term"].is_number_unsigned() || !doc.contains("voted_for") ||
        !(doc["voted_for"].is_null() || doc["voted_for"].is_string()) ||
        !doc.contains("bootstrap")) {
        return corrupt("missing or mistyped term, voted_for or bootstrap");
    }
    RaftStateFile state;
    state.hard_state.term = doc["term"].get<uint64_t>();
    if (doc["voted_for"].is_string()) {
        state.hard_state.voted_for = doc["voted_for"].get<std::string>();
    }
    auto bootstrap = configuration_from_json(json{{"voters", doc["bootstrap"]}});
    if (!bootstrap.ok()) {
        return corrupt(bootstrap.status().message());
    }
    if (json(bootstrap->voters) != doc["bootstrap"]) {
        return corrupt("bootstrap ids are not sorted and unique");
    }
    state.bootstrap = std::move(bootstrap).value();
    if (doc.contains("recovery_base")) {
        if (!doc["recovery_base"].is_number_unsigned()) {
            return corrupt("recovery_base is not an unsigned integer");
        }
        state.recovery_base = doc["recovery_base"].get<uint64_t>();
    }
    return state;
}

Status write_raft_state(const std::string& data_dir, const RaftStateFile& state) {
    json doc = {
        {"version", kRaftStateVersion},
        {"term", state.hard_state.term},
        {"voted_for", state.hard_state.voted_for.has_value() ? json(*state.hard_state.voted_for)
                                                             : json(nullptr)},
        {"bootstrap", state.bootstrap.voters}};
    if (state.recovery_base != 0) {
        doc["recovery_base"] = state.recovery_base;
    }
    return write_file_atomic(state_path(data_dir), doc.dump() + "\n", 0644);
}

Result<consensus::RecoveredState> recover_raft_state(const ledger::Ledger& ledger,
                                                     const RaftStateFile& state) {
    consensus::RecoveredState recovered;
    recovered.hard_state = state.hard_state;
    recovered.bootstrap_config = state.bootstrap;
    for (uint64_t seqno = 1; seqno <= ledger.last_seqno(); ++seqno) {
        COFFER_ASSIGN_OR_RETURN(Bytes bytes, ledger.entry_bytes(seqno));
        auto entry = raft_entry_of(bytes, state.recovery_base);
        if (!entry.ok()) {
            return error(Errc::kCorrupt, "ledger entry " + std::to_string(seqno) +
                                             " is not a log entry: " + entry.status().message());
        }
        recovered.entries.push_back(std::move(entry).value());
    }
    recovered.commit_index = ledger.committed();
    // A crash between a new term's first entry and the state file's write cannot happen (the
    // term is persisted before anything of it is sent or written), but a state file restored
    // from an older copy could lag: never start below the terms the ledger holds.
    if (!recovered.entries.empty() && recovered.entries.back().term > recovered.hard_state.term) {
        return error(Errc::kCorrupt, std::string(kRaftStateFileName) +
                                         " holds a term below the ledger's last entry: it was "
                                         "replaced by an older copy");
    }
    return recovered;
}

Status LedgerLogStore::save_hard_state(const consensus::HardState& state) {
    return write_raft_state(data_dir_, RaftStateFile{state, bootstrap_, recovery_base_});
}

Status LedgerLogStore::append(const consensus::Entry& entry) {
    if (entry.index <= ledger_.last_seqno()) {
        return Status::ok_status();
    }
    COFFER_ASSIGN_OR_RETURN(consensus::Entry parsed, raft_entry_of(entry.payload, recovery_base_));
    if (parsed.index != entry.index || parsed.term != entry.term || parsed.kind != entry.kind) {
        return error(Errc::kCorrupt, "log entry " + std::to_string(entry.index) +
                                         ": kind, term or index differ from its ledger bytes");
    }
    return ledger_.append_replicated(entry.payload);
}

Status LedgerLogStore::truncate(consensus::Index last_kept) {
    if (last_kept >= ledger_.last_seqno()) {
        return Status::ok_status();
    }
    return ledger_.rollback(last_kept);
}

Status LedgerLogStore::stage_snapshot(const consensus::SnapshotMeta&, ByteSpan) {
    return error(Errc::kUnsupported,
                 "snapshot install is not supported yet: the ledger cannot start after a "
                 "snapshot");
}

Status LedgerLogStore::reset_to_snapshot(consensus::Index, consensus::Term) {
    return error(Errc::kUnsupported, "snapshot install is not supported yet");
}

Result<consensus::Index> LedgerLogStore::flush() {
    return ledger_.flush();
}

}  // namespace coffer::node
