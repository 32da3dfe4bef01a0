#include "consensus/sim/memory_log_store.h"

#include <algorithm>

namespace coffer::consensus::sim {

Status MemoryLogStore::save_hard_state(const HardState& state) {
    hard_state_ = state;
    return Status::ok_status();
}

Status MemoryLogStore::append(const Entry& entry) {
    pending_.push_back(LogOp{LogOp::Kind::kAppend, entry, entry.index, entry.term});
    return Status::ok_status();
}

Status MemoryLogStore::truncate(Index last_kept) {
    pending_.push_back(LogOp{LogOp::Kind::kTruncate, Entry{}, last_kept, 0});
    return Status::ok_status();
}

Status MemoryLogStore::stage_snapshot(const SnapshotMeta& meta, ByteSpan data) {
    staged_snapshot_ = meta;
    staged_data_.assign(data.begin(), data.end());
    return Status::ok_status();
}

Status MemoryLogStore::reset_to_snapshot(Index index, Term term) {
    if (!staged_snapshot_ || staged_snapshot_->index != index || staged_snapshot_->term != term) {
        return error(Errc::kFailedPrecondition, "memory log: no staged snapshot at this index");
    }
    COFFER_RETURN_IF_ERROR(flush().status());
    bool keep = index > base() && index <= last() && at(index).term == term;
    if (keep) {
        entries_.erase(entries_.begin(), entries_.begin() + static_cast<long>(index - base()));
    } else if (index > base()) {
        entries_.clear();
    }
    snapshot_ = std::move(staged_snapshot_);
    snapshot_data_ = std::move(staged_data_);
    staged_snapshot_.reset();
    commit_index_ = std::max(commit_index_, index);
    return Status::ok_status();
}

void MemoryLogStore::apply(const LogOp& op) {
    if (op.kind == LogOp::Kind::kAppend) {
        COFFER_CHECK(op.entry.index == last() + 1, "memory log: append out of order");
        entries_.push_back(op.entry);
        return;
    }
    COFFER_CHECK(op.kind == LogOp::Kind::kTruncate, "memory log: unexpected pending op");
    COFFER_CHECK(op.index >= base() && op.index <= last(), "memory log: truncate out of range");
    COFFER_CHECK(op.index >= commit_index_, "memory log: truncate below the commit point");
    entries_.resize(op.index - base());
}

Result<Index> MemoryLogStore::flush() {
    for (const LogOp& op : pending_) {
        apply(op);
    }
    pending_.clear();
    return last();
}

void MemoryLogStore::save_commit(Index commit) {
    if (commit > commit_index_ && commit <= last() && pending_.empty()) {
        commit_index_ = commit;
    }
}

Status MemoryLogStore::compact(const SnapshotMeta& meta, Bytes data) {
    if (meta.index > commit_index_ || meta.index <= base()) {
        return error(Errc::kFailedPrecondition, "memory log: compaction point not committed");
    }
    entries_.erase(entries_.begin(), entries_.begin() + static_cast<long>(meta.index - base()));
    snapshot_ = meta;
    snapshot_data_ = std::move(data);
    return Status::ok_status();
}

void MemoryLogStore::crash() {
    pending_.clear();
    staged_snapshot_.reset();
    staged_data_.clear();
}

size_t MemoryLogStore::crash_torn(uint64_t seed) {
    size_t kept = pending_.empty() ? 0 : seed % pending_.size();
    for (size_t i = 0; i < kept; ++i) {
        apply(pending_[i]);
    }
    crash();
    return kept;
}

RecoveredState MemoryLogStore::recover(Configuration bootstrap_config) const {
    RecoveredState state;
    state.hard_state = hard_state_;
    state.bootstrap_config = std::move(bootstrap_config);
    state.snapshot = snapshot_;
    state.snapshot_data = snapshot_data_;
    state.entries = entries_;
    state.commit_index = commit_index_;
    return state;
}

const Entry& MemoryLogStore::at(Index index) const {
    COFFER_CHECK(index > base() && index <= last(), "memory log: index out of range");
    return entries_[index - base() - 1];
}

LogPosition MemoryLogStore::last_signed() const {
    for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
        if (it->is_signature()) {
            return {it->term, it->index};
        }
    }
    return snapshot_ ? LogPosition{snapshot_->term, snapshot_->index} : LogPosition{};
}

}  // namespace coffer::consensus::sim
