// The log storage behind a RaftNode, as its caller maintains it (docs/consensus.md,
// "Driving a RaftNode").
//
// RaftNode never touches storage itself: it emits LogOps, and its caller applies them to a
// LogStore and reports durability back with RaftNode::on_flushed(flush()). The interface is
// what ledger::Ledger offers under consensus: append (append_replicated), truncate (rollback),
// flush (flush, returning the durable seqno). Implementations: sim::MemoryLogStore (simulated
// disk for tests); the node layer backs it with the ledger.
//
// Thread-safety: implementations decide; RaftNode's caller uses one store from one thread.
#pragma once

#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "consensus/raft_node.h"
#include "consensus/types.h"

namespace coffer::consensus {

class LogStore {
  public:
    virtual ~LogStore() = default;

    // Persists the term and vote synchronously (before the output's messages are sent).
    virtual Status save_hard_state(const HardState& state) = 0;

    // Appends `entry` (index = last + 1). May stay buffered until flush().
    virtual Status append(const Entry& entry) = 0;

    // Drops every entry after `last_kept`. Never called below the commit index.
    virtual Status truncate(Index last_kept) = 0;

    // Writes a snapshot received from the leader (Output.snapshot_to_install) durably, before
    // install_snapshot_done(); reset_to_snapshot() then makes it the log's base.
    virtual Status stage_snapshot(const SnapshotMeta& meta, ByteSpan data) = 0;

    // LogOp::kSnapshotReset: the staged snapshot (index, term) becomes the base; entries after
    // it stay only if the stored entry at `index` has `term`, otherwise all entries go.
    virtual Status reset_to_snapshot(Index index, Term term) = 0;

    // Makes every buffered write durable and returns the durable last index (for on_flushed).
    virtual Result<Index> flush() = 0;
};

// Applies `ops` to `store` in order. Errors: the store's.
Status apply_log_ops(LogStore& store, const std::vector<LogOp>& ops);

}  // namespace coffer::consensus
