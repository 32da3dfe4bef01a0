// RaftNode: compaction and catch-up from a snapshot (Raft §7).
#include <algorithm>

#include "common/log.h"
#include "consensus/raft_node.h"

namespace coffer::consensus {

Status RaftNode::compact(Index index, Bytes data) {
    if (index > commit_index_ || index <= log_.base_index()) {
        return error(Errc::kFailedPrecondition, "raft: compaction index not committed or old");
    }
    SnapshotMeta meta{index, *log_.term_at(index), log_.configuration_at(index)};
    log_.compact_to(index);
    snapshot_ = std::move(meta);
    snapshot_data_ = std::move(data);
    for (auto& [id, peer] : peers_) {
        if (peer.snapshot_offset) {
            peer.snapshot_offset = 0;  // the transfer restarts with the newer snapshot
        }
    }
    return Status::ok_status();
}

void RaftNode::send_snapshot_chunk(const NodeId& id) {
    COFFER_CHECK(snapshot_.has_value(), "raft: a compacted log without a snapshot");
    Peer& peer = peers_[id];
    uint64_t offset = std::min<uint64_t>(peer.snapshot_offset.value_or(0), snapshot_data_.size());
    if (offset == 0) {
        ++stats_.snapshots_sent;
    }
    uint64_t chunk = std::min<uint64_t>(options_.max_bytes_per_message - kMessageOverheadBytes,
                                        snapshot_data_.size() - offset);
    InstallSnapshot req;
    req.term = term_;
    req.last_index = snapshot_->index;
    req.last_term = snapshot_->term;
    req.config = snapshot_->config;
    req.total_bytes = snapshot_data_.size();
    req.offset = offset;
    req.done = offset + chunk == snapshot_data_.size();
    req.data.assign(snapshot_data_.begin() + static_cast<long>(offset),
                    snapshot_data_.begin() + static_cast<long>(offset + chunk));
    peer.snapshot_offset = offset;
    send(id, std::move(req));
}

Status RaftNode::handle_snapshot_response(const NodeId& from, const InstallSnapshotResponse& resp) {
    if (resp.term > term_) {
        become_follower(resp.term, std::nullopt);
        reset_election_timer();
        return Status::ok_status();
    }
    auto it = peers_.find(from);
    if (role_ != Role::kLeader || resp.term < term_ || it == peers_.end()) {
        return Status::ok_status();
    }
    Peer& peer = it->second;
    peer.last_heard_ms = now_ms_;
    if (resp.installed) {
        if (resp.last_index > commit_index_) {
            return error(Errc::kInvalidArgument, "snapshot response: beyond the commit index");
        }
        peer.match_index = std::max(peer.match_index, resp.last_index);
        peer.next_index = std::max(peer.next_index, peer.match_index + 1);
        peer.snapshot_offset.reset();
        advance_leader_commit();
        if (role_ == Role::kLeader) {
            send_append(from, false);
        }
        return Status::ok_status();
    }
    if (!peer.snapshot_offset || !snapshot_ || resp.last_index != snapshot_->index ||
        resp.next_offset > snapshot_data_.size()) {
        return Status::ok_status();
    }
    if (resp.next_offset != *peer.snapshot_offset) {
        peer.snapshot_offset = resp.next_offset;
        send_snapshot_chunk(from);
    }
    return Status::ok_status();
}

Status RaftNode::handle_install_snapshot(const NodeId& from, const InstallSnapshot& req) {
    // decode_message checks the same; a message built in-process gets the same treatment.
    if (req.total_bytes > kMaxSnapshotBytes || req.offset > req.total_bytes ||
        req.data.size() > req.total_bytes - req.offset || req.last_index == 0) {
        return error(Errc::kInvalidArgument, "snapshot: chunk outside the declared snapshot");
    }
    if (req.term < term_) {
        send(from, InstallSnapshotResponse{term_, req.last_index, 0, false});
        return Status::ok_status();
    }
    if (req.term == term_ && (role_ == Role::kLeader || (leader_ && *leader_ != from))) {
        return error(Errc::kInvalidArgument, "snapshot: a second leader in one term");
    }
    become_follower(req.term, from);
    last_leader_contact_ms_ = now_ms_;
    reset_election_timer();
    if (req.last_index <= commit_index_) {
        // Already covered by our own committed prefix, which matches every leader's.
        send(from, InstallSnapshotResponse{term_, req.last_index, 0, true});
        return Status::ok_status();
    }
    if (installing_) {
        return Status::ok_status();
    }

    bool same = incoming_snapshot_ && incoming_snapshot_->index == req.last_index &&
                incoming_snapshot_->term == req.last_term && incoming_from_ == from;
    if (req.offset == 0 && !same) {
        incoming_snapshot_ = SnapshotMeta{req.last_index, req.last_term, req.config};
        incoming_data_.clear();
        incoming_from_ = from;
        same = true;
    }
    if (!same || req.offset != incoming_data_.size()) {
        uint64_t want = same ? incoming_data_.size() : 0;
        send(from, InstallSnapshotResponse{term_, req.last_index, want, false});
        return Status::ok_status();
    }
    incoming_data_.insert(incoming_data_.end(), req.data.begin(), req.data.end());
    if (!req.done) {
        send(from, InstallSnapshotResponse{term_, req.last_index, incoming_data_.size(), false});
        return Status::ok_status();
    }
    installing_ = true;
    out_.snapshot_to_install = incoming_snapshot_;
    out_.snapshot_data = incoming_data_;
    return Status::ok_status();
}

Status RaftNode::install_snapshot_done(Index index, const Status& result) {
    if (!installing_ || !incoming_snapshot_ || incoming_snapshot_->index != index) {
        return error(Errc::kFailedPrecondition, "raft: no snapshot at this index was handed out");
    }
    installing_ = false;
    SnapshotMeta meta = std::move(*incoming_snapshot_);
    Bytes data = std::move(incoming_data_);
    incoming_snapshot_.reset();
    incoming_data_.clear();
    if (!result.ok()) {
        spdlog::warn("raft.snapshot_install_failed node={} index={} error=\"{}\"", options_.id,
                     index, result.to_string());
        return Status::ok_status();
    }
    if (index > commit_index_) {
        log_.reset_to_snapshot(meta.index, meta.term, meta.config);
        out_.log_ops.push_back(LogOp{LogOp::Kind::kSnapshotReset, Entry{}, meta.index, meta.term});
        durable_index_ = std::max(std::min(durable_index_, log_.last_index()), meta.index);
        verified_match_ = std::max(verified_match_, meta.index);
        leader_commit_seen_ = std::max(leader_commit_seen_, meta.index);
        set_commit(meta.index);
        snapshot_ = std::move(meta);
        snapshot_data_ = std::move(data);
        ++stats_.snapshots_installed;
        spdlog::info("raft.snapshot_installed node={} role={} term={} index={}", options_.id,
                     role_name(role_), term_, index);
    }
    if (role_ == Role::kFollower && leader_ && *leader_ == incoming_from_) {
        last_acked_ = std::max(last_acked_, index);
        send(*leader_, InstallSnapshotResponse{term_, index, 0, true});
    }
    return Status::ok_status();
}

}  // namespace coffer::consensus
