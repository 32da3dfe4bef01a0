// RaftNode: log replication, the signature commit rule, membership, reads and snapshots.
#include <algorithm>
#include <string>

#include "common/log.h"
#include "consensus/raft_node.h"

namespace coffer::consensus {
namespace {

// Checks what an honest leader always satisfies; anything else is a hostile or broken peer.
Status validate_append(const AppendEntries& req, const ConfigurationDecoder& decoder) {
    if (req.entries.size() > kMaxEntriesPerMessage) {
        return error(Errc::kInvalidArgument, "append: too many entries");
    }
    Term previous = req.prev_term;
    for (size_t i = 0; i < req.entries.size(); ++i) {
        const Entry& e = req.entries[i];
        if (e.index != req.prev_index + 1 + i || e.term < previous || e.term > req.term) {
            return error(Errc::kInvalidArgument, "append: entries out of order or bad terms");
        }
        if (e.kind == EntryKind::kConfiguration &&
            !decode_configuration_with(decoder, e.payload).ok()) {
            return error(Errc::kInvalidArgument, "append: malformed configuration entry");
        }
        previous = e.term;
    }
    if (req.prev_term > req.term) {
        return error(Errc::kInvalidArgument, "append: prev_term above the leader's term");
    }
    return Status::ok_status();
}

bool one_node_change(const Configuration& from, const Configuration& to) {
    std::vector<NodeId> diff;
    std::set_symmetric_difference(from.voters.begin(), from.voters.end(), to.voters.begin(),
                                  to.voters.end(), std::back_inserter(diff));
    return diff.size() == 1;
}

}  // namespace

// ---- Shared helpers -------------------------------------------------------------------------

Index RaftNode::acknowledgeable_index() const {
    if (options_.planted_bug == PlantedBug::kAckBeforeFlush) {
        return log_.last_index();
    }
    return durable_index_;
}

void RaftNode::set_commit(Index index) {
    COFFER_CHECK(index >= commit_index_, "raft: commit index must never decrease");
    COFFER_CHECK(index <= log_.last_index(), "raft: commit index beyond the log");
    if (index == commit_index_) {
        return;
    }
    commit_index_ = index;
    out_.commit_index = index;
    check_retirement();
}

void RaftNode::append_local(Entry entry) {
    out_.log_ops.push_back(LogOp{LogOp::Kind::kAppend, entry, entry.index, entry.term});
    log_.append(std::move(entry));
}

void RaftNode::truncate_local(Index last_kept) {
    COFFER_CHECK(last_kept >= commit_index_, "raft: never truncate below the commit index");
    log_.truncate_after(last_kept);
    durable_index_ = std::min(durable_index_, last_kept);
    verified_match_ = std::min(verified_match_, last_kept);
    out_.log_ops.push_back(LogOp{LogOp::Kind::kTruncate, Entry{}, last_kept, 0});
}

void RaftNode::on_flushed(Index durable_index) {
    durable_index_ = std::max(durable_index_, std::min(durable_index, log_.last_index()));
    if (role_ == Role::kLeader) {
        advance_leader_commit();
        return;
    }
    maybe_ack_durable();
    advance_follower_commit();
}

// ---- Proposals ------------------------------------------------------------------------------

Status RaftNode::check_propose() const {
    if (role_ != Role::kLeader) {
        return error(Errc::kFailedPrecondition,
                     "raft: not leader; leader=" + leader_.value_or(std::string("unknown")));
    }
    // Only this leader's own backlog counts: entries inherited from earlier terms may all be
    // uncommitted as far as this node knows (after a restart its commit index is 0 until a
    // signature of the new term commits), and the new term's first signature must never be
    // refused for them.
    Index first_own = std::max(commit_index_ + 1, term_start_index_);
    if (log_.last_index() + 1 - first_own >= options_.max_uncommitted_entries) {
        return error(Errc::kResourceExhausted, "raft: too many uncommitted entries");
    }
    return Status::ok_status();
}

Result<Index> RaftNode::propose(Bytes payload, bool is_signature) {
    COFFER_RETURN_IF_ERROR(check_propose());
    if (payload.size() > kMaxEntryPayloadBytes) {
        return error(Errc::kInvalidArgument, "raft: entry larger than kMaxEntryPayloadBytes");
    }
    Index index = log_.last_index() + 1;
    EntryKind kind = is_signature ? EntryKind::kSignature : EntryKind::kData;
    append_local(Entry{term_, index, kind, std::move(payload)});
    broadcast_append(false);
    advance_leader_commit();  // moves only if the new entry is already durable where counted
    return index;
}

Status RaftNode::check_propose_configuration(const Configuration& config) const {
    COFFER_RETURN_IF_ERROR(check_propose());
    // Single-server changes are safe only one at a time, and only once the leader has
    // committed in its own term (Ongaro's 2015 correction to single-server changes).
    if (log_.has_configuration_after(commit_index_) || commit_index_ < term_start_index_) {
        return error(Errc::kFailedPrecondition, "raft: a configuration change is in progress");
    }
    COFFER_ASSIGN_OR_RETURN(Configuration normalized, make_configuration(config.voters));
    if (!one_node_change(log_.configuration(), normalized)) {
        return error(Errc::kInvalidArgument, "raft: configuration must change exactly one node");
    }
    return Status::ok_status();
}

Result<Index> RaftNode::propose_configuration(const Configuration& config,
                                              std::optional<Bytes> payload) {
    COFFER_RETURN_IF_ERROR(check_propose_configuration(config));
    COFFER_ASSIGN_OR_RETURN(Configuration normalized, make_configuration(config.voters));
    if (payload.has_value()) {
        auto decoded = decode_configuration_with(options_.configuration_decoder, *payload);
        if (!decoded.ok() || !(*decoded == normalized)) {
            return error(Errc::kInvalidArgument,
                         "raft: configuration payload does not decode to the configuration");
        }
    } else {
        payload = encode_configuration(normalized);
    }
    if (payload->size() > kMaxEntryPayloadBytes) {
        return error(Errc::kInvalidArgument, "raft: entry larger than kMaxEntryPayloadBytes");
    }
    Index index = log_.last_index() + 1;
    append_local(Entry{term_, index, EntryKind::kConfiguration, std::move(*payload)});
    broadcast_append(false);
    return index;
}

// ---- Follower side of AppendEntries ---------------------------------------------------------

Status RaftNode::handle_append_entries(const NodeId& from, const AppendEntries& req) {
    COFFER_RETURN_IF_ERROR(validate_append(req, options_.configuration_decoder));
    if (req.term < term_) {
        send(from, AppendEntriesResponse{term_, false, 0, req.read_round});
        return Status::ok_status();
    }
    if (req.term == term_ && (role_ == Role::kLeader || (leader_ && *leader_ != from))) {
        return error(Errc::kInvalidArgument, "append: a second leader in one term");
    }
    become_follower(req.term, from);
    last_leader_contact_ms_ = now_ms_;
    reset_election_timer();
    last_round_seen_ = std::max(last_round_seen_, req.read_round);
    if (installing_) {
        return Status::ok_status();
    }

    if (!matching_prefix_end(req)) {
        send(from, AppendEntriesResponse{term_, false, conflict_hint(req), req.read_round});
        return Status::ok_status();
    }
    COFFER_ASSIGN_OR_RETURN(Index verified, append_from(req));

    // CON-2: the commit index may only move over entries verified against THIS leader.
    verified_match_ = std::max(verified_match_, verified);
    leader_commit_seen_ = std::max(leader_commit_seen_, req.leader_commit);
    advance_follower_commit();

    Index ack = std::min(verified, acknowledgeable_index());
    last_acked_ = std::max(last_acked_, ack);
    send(from, AppendEntriesResponse{term_, true, ack, req.read_round});
    return Status::ok_status();
}

std::optional<Index> RaftNode::matching_prefix_end(const AppendEntries& req) const {
    if (req.prev_index < log_.base_index()) {
        // Inside our snapshot: committed, hence identical on every later leader.
        return log_.base_index();
    }
    std::optional<Term> term = log_.term_at(req.prev_index);
    if (!term || *term != req.prev_term) {
        return std::nullopt;
    }
    return req.prev_index;
}

Index RaftNode::conflict_hint(const AppendEntries& req) const {
    if (req.prev_index > log_.last_index()) {
        return log_.last_index();
    }
    // Skip back over the whole conflicting term: none of it can match (Raft §5.3, the
    // optimisation at the end). Committed entries always match.
    Term conflicting = *log_.term_at(req.prev_index);
    Index hint = req.prev_index - 1;
    while (hint > commit_index_ && hint > log_.base_index() && log_.term_at(hint) == conflicting) {
        --hint;
    }
    return std::max(hint, commit_index_);
}

Result<Index> RaftNode::append_from(const AppendEntries& req) {
    for (const Entry& e : req.entries) {
        if (e.index <= log_.base_index()) {
            continue;
        }
        if (e.index <= log_.last_index()) {
            if (log_.term_at(e.index) == e.term) {
                // Log matching (Raft §5.3): one term, one index, one entry.
                if (!(log_.at(e.index) == e)) {
                    return error(Errc::kInvalidArgument, "append: entry " +
                                                             std::to_string(e.index) +
                                                             " differs from ours in the same term");
                }
                continue;
            }
            if (options_.planted_bug == PlantedBug::kSkipTruncateOnConflict) {
                continue;
            }
            if (e.index <= commit_index_) {
                return error(Errc::kInvalidArgument,
                             "append: conflicts with committed entry " + std::to_string(e.index));
            }
            truncate_local(e.index - 1);
        }
        append_local(e);
    }
    return std::max(log_.base_index(), req.prev_index + req.entries.size());
}

void RaftNode::advance_follower_commit() {
    if (role_ == Role::kLeader) {
        return;
    }
    Index limit = std::min({leader_commit_seen_, verified_match_, acknowledgeable_index()});
    Index sig = log_.signature_at_or_before(limit);
    if (sig > commit_index_) {
        set_commit(sig);
    }
}

void RaftNode::maybe_ack_durable() {
    if (role_ != Role::kFollower || !leader_ || installing_) {
        return;
    }
    Index ack = std::min(verified_match_, acknowledgeable_index());
    if (ack <= last_acked_) {
        return;
    }
    last_acked_ = ack;
    send(*leader_, AppendEntriesResponse{term_, true, ack, last_round_seen_});
}

// ---- Leader side ----------------------------------------------------------------------------

Status RaftNode::handle_append_response(const NodeId& from, const AppendEntriesResponse& resp) {
    if (resp.term > term_) {
        become_follower(resp.term, std::nullopt);
        reset_election_timer();
        return Status::ok_status();
    }
    if (role_ != Role::kLeader || resp.term < term_) {
        return Status::ok_status();
    }
    auto it = peers_.find(from);
    if (it == peers_.end()) {
        return Status::ok_status();
    }
    Peer& peer = it->second;
    if (resp.success && resp.match_index > log_.last_index()) {
        return error(Errc::kInvalidArgument, "append response: match beyond the leader's log");
    }
    peer.last_heard_ms = now_ms_;
    peer.acked_round = std::max(peer.acked_round, resp.read_round);
    if (resp.success) {
        peer.match_index = std::max(peer.match_index, resp.match_index);
        peer.next_index = std::max(peer.next_index, peer.match_index + 1);
        advance_leader_commit();
    } else {
        peer.next_index =
            std::max(peer.match_index + 1, std::min(resp.match_index + 1, peer.next_index));
    }
    confirm_reads();
    if (role_ == Role::kLeader) {
        send_append(from, false);
    }
    return Status::ok_status();
}

std::vector<NodeId> RaftNode::replication_targets() const {
    // The current configuration, and the committed one while a change is pending, so that
    // a node being removed still learns of its removal.
    std::vector<NodeId> targets = log_.configuration().voters;
    for (const NodeId& id : log_.configuration_at(commit_index_).voters) {
        if (std::find(targets.begin(), targets.end(), id) == targets.end()) {
            targets.push_back(id);
        }
    }
    std::erase(targets, options_.id);
    return targets;
}

void RaftNode::broadcast_append(bool heartbeat) {
    for (const NodeId& id : replication_targets()) {
        auto [it, inserted] = peers_.try_emplace(id);
        Peer& peer = it->second;
        if (inserted) {
            peer.next_index = log_.last_index() + 1;
            peer.last_heard_ms = now_ms_;
        }
        if (heartbeat && peer.next_index > peer.match_index + 1) {
            // Nothing acknowledged for a heartbeat interval: resend from the last match.
            peer.next_index = peer.match_index + 1;
        }
        send_append(id, heartbeat);
    }
}

Result<Message> RaftNode::build_append_entries(const NodeId& peer, Index next_index,
                                               size_t max_entries) const {
    if (role_ != Role::kLeader || next_index <= log_.base_index() ||
        next_index > log_.last_index() + 1) {
        return error(Errc::kFailedPrecondition, "raft: cannot build append entries");
    }
    AppendEntries req{term_,         next_index - 1, *log_.term_at(next_index - 1),
                      commit_index_, read_round_,    {}};
    size_t budget = options_.max_bytes_per_message - kMessageOverheadBytes;
    size_t used = 0;
    for (Index i = next_index; i <= log_.last_index() && req.entries.size() < max_entries; ++i) {
        const Entry& e = log_.at(i);
        size_t size = e.payload.size() + kEntryOverheadBytes;
        if (!req.entries.empty() && used + size > budget) {
            break;
        }
        used += size;
        req.entries.push_back(e);
    }
    return Message{options_.id, peer, std::move(req)};
}

void RaftNode::send_append(const NodeId& id, bool heartbeat) {
    Peer& peer = peers_[id];
    if (peer.snapshot_offset || peer.next_index <= log_.base_index()) {
        if (heartbeat || !peer.snapshot_offset) {
            send_snapshot_chunk(id);
        }
        return;
    }
    Index inflight_end = peer.match_index + kMaxInflightEntries;
    size_t room = inflight_end >= peer.next_index ? inflight_end - peer.next_index + 1 : 0;
    size_t pending = log_.last_index() + 1 - peer.next_index;
    size_t count = std::min({room, pending, options_.max_entries_per_message});
    if (count == 0 && !heartbeat) {
        return;
    }
    auto msg = build_append_entries(id, peer.next_index, count);
    COFFER_CHECK(msg.ok(), "raft: leader failed to build append entries");
    const auto& req = std::get<AppendEntries>(msg->body);
    peer.next_index += req.entries.size();
    out_.messages.push_back(std::move(msg).value());
}

Index RaftNode::quorum_match_index() const {
    const Configuration& config = log_.configuration();
    std::vector<Index> matches;
    for (const NodeId& voter : config.voters) {
        if (voter == options_.id) {
            // CON-1: the leader counts only what its own storage has made durable.
            matches.push_back(acknowledgeable_index());
            continue;
        }
        auto it = peers_.find(voter);
        matches.push_back(it == peers_.end() ? 0 : it->second.match_index);
    }
    if (matches.empty()) {
        return 0;
    }
    std::sort(matches.begin(), matches.end(), std::greater<>());
    return matches[config.quorum() - 1];
}

void RaftNode::advance_leader_commit() {
    if (role_ != Role::kLeader) {
        return;
    }
    Index limit = std::min(quorum_match_index(), acknowledgeable_index());
    Index sig = log_.signature_at_or_before(limit);
    if (sig <= commit_index_) {
        return;
    }
    // Raft §5.4.2: only an entry of the current term commits by counting replicas; earlier
    // entries commit with it. Here the entry is a signature entry (docs/consensus.md).
    if (log_.at(sig).term != term_ && options_.planted_bug != PlantedBug::kCommitEarlierTerm) {
        return;
    }
    set_commit(sig);
    confirm_reads();
}

void RaftNode::check_retirement() {
    if (role_ != Role::kLeader || is_voter() || commit_index_ < log_.configuration_index()) {
        return;
    }
    // The configuration without this node has committed: hand over (Raft §4.2.2).
    spdlog::info("raft.retired node={} role=leader term={} commit={}", options_.id, term_,
                 commit_index_);
    become_follower(term_, std::nullopt);
    reset_election_timer();
}

// ---- Reads ----------------------------------------------------------------------------------

Result<uint64_t> RaftNode::request_read() {
    if (role_ != Role::kLeader || commit_index_ < term_start_index_) {
        return error(Errc::kFailedPrecondition,
                     "raft: read-index needs a leader that committed in its term; leader=" +
                         leader_.value_or(std::string("unknown")));
    }
    if (pending_reads_.size() >= kMaxPendingReads) {
        return error(Errc::kResourceExhausted, "raft: too many pending reads");
    }
    uint64_t read_id = next_read_id_++;
    pending_reads_[read_id] = {++read_round_, commit_index_};
    broadcast_append(true);
    confirm_reads();
    return read_id;
}

void RaftNode::confirm_reads() {
    if (role_ != Role::kLeader) {
        return;
    }
    const Configuration& config = log_.configuration();
    for (auto it = pending_reads_.begin(); it != pending_reads_.end();) {
        uint64_t round = it->second.first;
        size_t acks = 0;
        for (const NodeId& voter : config.voters) {
            auto peer = peers_.find(voter);
            if (voter == options_.id ||
                (peer != peers_.end() && peer->second.acked_round >= round)) {
                ++acks;
            }
        }
        if (acks >= config.quorum()) {
            out_.reads.push_back(ReadReady{it->first, it->second.second});
            it = pending_reads_.erase(it);
        } else {
            ++it;
        }
    }
}

}  // namespace coffer::consensus
