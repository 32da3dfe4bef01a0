// The storage of a node's Raft log: the ledger itself, plus a small file for the term and
// vote (docs/replication.md, "Storage").
//
// Every Raft entry is one ledger entry and its payload is the entry's exact bytes, so every
// node's ledger is byte-identical. The Raft entry kind comes from the ledger entry: the
// signature flag makes a signature entry, and a write to kConfigurationMap makes a
// configuration entry whose voters are read from that write (configuration_of_entry).
//
// Thread-safety: LedgerLogStore is used by the replication thread only; the free functions
// are pure.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "consensus/log_store.h"
#include "consensus/raft_node.h"
#include "kv/write_set.h"
#include "ledger/ledger.h"

namespace coffer::node {

// The file in data_dir that holds the Raft term, vote and bootstrap configuration.
constexpr std::string_view kRaftStateFileName = "raft_state.json";
constexpr int kRaftStateVersion = 1;

// The configuration a write set sets, if it writes kConfigurationMap. Errors:
// kInvalidArgument when the value is not {"voters": [ids]} or the ids are not a valid
// configuration.
Result<std::optional<consensus::Configuration>> configuration_in(const kv::WriteSet& ws);

// The value to write to kConfigurationMap for `config`.
std::string configuration_value(const consensus::Configuration& config);

// The configuration decoder of RaftOptions: the voters of a ledger entry's configuration
// write. Errors: kInvalidArgument for an entry that does not parse or does not write one.
Result<consensus::Configuration> configuration_of_entry(ByteSpan entry_bytes);

// The Raft entry for ledger entry bytes (term = view, index = seqno, kind as above). Entries
// at or below `recovery_base` are history of the service this one was recovered from: their
// configuration writes name nodes that are gone, so they count as plain data entries.
Result<consensus::Entry> raft_entry_of(ByteSpan entry_bytes, uint64_t recovery_base = 0);

// What raft_state.json holds: the hard state and the configuration of the network's first
// nodes (empty for a node that joined and learns its configuration from the leader).
struct RaftStateFile {
    consensus::HardState hard_state;
    consensus::Configuration bootstrap;
    // The last seqno of the lost network's ledger when this service was recovered from it
    // (docs/recovery.md), else 0: see raft_entry_of.
    uint64_t recovery_base = 0;
};

// Reads data_dir/raft_state.json. Errors: kNotFound when absent, kCorrupt when malformed.
Result<RaftStateFile> read_raft_state(const std::string& data_dir);
// Writes it atomically and durably (node/files.h write_file_atomic).
Status write_raft_state(const std::string& data_dir, const RaftStateFile& state);

// What a restarting node hands to RaftNode::create: every ledger entry, the ledger's commit
// point (0 if the ledger does not know it), and the persisted hard state and bootstrap.
// Errors: ledger read errors; kCorrupt for an entry that does not map to a Raft entry.
Result<consensus::RecoveredState> recover_raft_state(const ledger::Ledger& ledger,
                                                     const RaftStateFile& state);

class LedgerLogStore final : public consensus::LogStore {
  public:
    // `ledger` must outlive the store.
    LedgerLogStore(ledger::Ledger& ledger, std::string data_dir, consensus::Configuration bootstrap,
                   uint64_t recovery_base)
        : ledger_(ledger),
          data_dir_(std::move(data_dir)),
          bootstrap_(std::move(bootstrap)),
          recovery_base_(recovery_base) {}

    Status save_hard_state(const consensus::HardState& state) override;
    // Entries at or below the ledger's last seqno are this leader's own (the commit hook
    // already wrote them): nothing to do. Later ones come from the leader and go through
    // Ledger::append_replicated, which verifies them; their kind must match the bytes.
    Status append(const consensus::Entry& entry) override;
    Status truncate(consensus::Index last_kept) override;
    // Not supported yet: the ledger cannot start after a snapshot, so a node catches up from
    // the leader's whole ledger and never installs a snapshot (kUnsupported).
    Status stage_snapshot(const consensus::SnapshotMeta& meta, ByteSpan data) override;
    Status reset_to_snapshot(consensus::Index index, consensus::Term term) override;
    Result<consensus::Index> flush() override;

  private:
    ledger::Ledger& ledger_;
    std::string data_dir_;
    consensus::Configuration bootstrap_;
    uint64_t recovery_base_ = 0;
};

}  // namespace coffer::node
