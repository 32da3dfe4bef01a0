// A LogStore on a simulated disk, for the simulator and tests.
//
// It keeps the durable state (hard state, snapshot, entries, commit point) apart from the
// writes not yet flushed, so that a simulated crash shows what a power loss could:
//   - save_hard_state, stage_snapshot, reset_to_snapshot and compact are durable at once
//     (reset_to_snapshot first flushes: installing a snapshot syncs the log);
//   - append and truncate wait for flush();
//   - crash() loses every unflushed write; crash_torn() keeps a strict prefix of them (the
//     last write was cut short and recovery discards the torn frame).
// Everything is deterministic. Thread-safety: none.
#pragma once

#include <optional>
#include <vector>

#include "consensus/log_store.h"

namespace coffer::consensus::sim {

class MemoryLogStore final : public LogStore {
  public:
    Status save_hard_state(const HardState& state) override;
    Status append(const Entry& entry) override;
    Status truncate(Index last_kept) override;
    Status stage_snapshot(const SnapshotMeta& meta, ByteSpan data) override;
    Status reset_to_snapshot(Index index, Term term) override;
    Result<Index> flush() override;

    // Records the commit point durably once durable entries cover it and nothing is pending
    // (as the ledger marks chunks committed). Never moves it back.
    void save_commit(Index commit);
    // The caller snapshotted committed state at meta.index: it becomes the durable base and
    // the durable prefix it covers is dropped. Needs meta.index <= commit_index().
    Status compact(const SnapshotMeta& meta, Bytes data);

    // Faults.
    void crash();
    // Keeps a prefix of the unflushed writes, its length drawn from `seed` and strictly
    // shorter than all of them; returns how many were kept. Then as crash().
    size_t crash_torn(uint64_t seed);

    // What a restart reads.
    RecoveredState recover(Configuration bootstrap_config) const;

    bool has_unflushed() const { return !pending_.empty(); }
    Index base() const { return snapshot_ ? snapshot_->index : 0; }
    Index last() const { return base() + entries_.size(); }
    // A durable entry: base() < index <= last().
    const Entry& at(Index index) const;
    LogPosition last_signed() const;
    Index commit_index() const { return commit_index_; }
    const std::optional<SnapshotMeta>& snapshot() const { return snapshot_; }
    const Bytes& snapshot_data() const { return snapshot_data_; }

  private:
    void apply(const LogOp& op);

    HardState hard_state_;
    std::optional<SnapshotMeta> snapshot_;
    Bytes snapshot_data_;
    std::vector<Entry> entries_;  // durable, after the snapshot
    Index commit_index_ = 0;
    std::vector<LogOp> pending_;  // applied by the next flush
    std::optional<SnapshotMeta> staged_snapshot_;
    Bytes staged_data_;
};

}  // namespace coffer::consensus::sim
