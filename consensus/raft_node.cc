// RaftNode: construction, roles, timers and elections. Replication, commit and snapshots are
// in raft_replication.cc.
#include "consensus/raft_node.h"

#include <algorithm>
#include <string>

#include "common/log.h"

namespace coffer::consensus {
namespace {

// splitmix64: a tiny, well-mixed generator; the node's only source of randomness.
uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

Status check_recovered(const RaftOptions& options, const RecoveredState& state) {
    if (options.id.empty() || options.id.size() > kMaxNodeIdBytes) {
        return error(Errc::kInvalidArgument, "raft: node id empty or too long");
    }
    if (options.election_timeout_min_ms == 0 ||
        options.election_timeout_max_ms <= options.election_timeout_min_ms ||
        options.heartbeat_interval_ms == 0 ||
        options.heartbeat_interval_ms >= options.election_timeout_min_ms) {
        return error(Errc::kInvalidArgument, "raft: inconsistent timeouts");
    }
    if (options.max_entries_per_message == 0 ||
        options.max_entries_per_message > kMaxEntriesPerMessage ||
        options.max_bytes_per_message <= kMessageOverheadBytes ||
        options.max_bytes_per_message > kMaxMessageBytes) {
        return error(Errc::kInvalidArgument, "raft: bad message limits");
    }
    Index expected = state.snapshot ? state.snapshot->index + 1 : 1;
    Term last_term = state.snapshot ? state.snapshot->term : 0;
    bool commit_found = state.commit_index + 1 == expected || state.commit_index == 0;
    for (const Entry& e : state.entries) {
        if (e.index != expected++ || e.term < last_term) {
            return error(Errc::kCorrupt,
                         "raft: recovered entries not consecutive or terms "
                         "decrease at index " +
                             std::to_string(e.index));
        }
        if (e.kind == EntryKind::kConfiguration &&
            !decode_configuration_with(options.configuration_decoder, e.payload).ok()) {
            return error(Errc::kCorrupt, "raft: recovered configuration entry malformed");
        }
        last_term = e.term;
        commit_found = commit_found || (e.index == state.commit_index && e.is_signature());
    }
    if (!commit_found && !(state.snapshot && state.commit_index < state.snapshot->index)) {
        return error(Errc::kCorrupt, "raft: recovered commit index is not a signature entry");
    }
    if (last_term > state.hard_state.term) {
        return error(Errc::kCorrupt, "raft: recovered entries from a term above the current");
    }
    return Status::ok_status();
}

}  // namespace

std::string_view role_name(Role role) {
    switch (role) {
        case Role::kFollower:
            return "follower";
        case Role::kPreCandidate:
            return "pre-candidate";
        case Role::kCandidate:
            return "candidate";
        case Role::kLeader:
            return "leader";
    }
    return "unknown";
}

Result<std::unique_ptr<RaftNode>> RaftNode::create(RaftOptions options, RecoveredState state,
                                                   uint64_t now_ms) {
    COFFER_RETURN_IF_ERROR(check_recovered(options, state));
    return std::unique_ptr<RaftNode>(new RaftNode(std::move(options), std::move(state), now_ms));
}

RaftNode::RaftNode(RaftOptions options, RecoveredState state, uint64_t now_ms)
    : options_(std::move(options)),
      log_(state.snapshot ? state.snapshot->index : 0, state.snapshot ? state.snapshot->term : 0,
           state.snapshot ? state.snapshot->config : state.bootstrap_config,
           options_.configuration_decoder),
      term_(state.hard_state.term),
      voted_for_(std::move(state.hard_state.voted_for)),
      now_ms_(now_ms),
      rng_state_(options_.random_seed) {
    for (Entry& e : state.entries) {
        log_.append(std::move(e));
    }
    commit_index_ = std::max(state.commit_index, log_.base_index());
    durable_index_ = log_.last_index();
    verified_match_ = commit_index_;
    leader_commit_seen_ = commit_index_;
    if (state.snapshot) {
        snapshot_ = std::move(state.snapshot);
        snapshot_data_ = std::move(state.snapshot_data);
    }
    reset_election_timer();
    spdlog::debug("raft.started node={} term={} last={} commit={}", options_.id, term_,
                  log_.last_index(), commit_index_);
}

Output RaftNode::take_output() {
    Output result = std::move(out_);
    out_ = Output{};
    return result;
}

uint64_t RaftNode::next_random() {
    return splitmix64(rng_state_);
}

void RaftNode::reset_election_timer() {
    uint64_t span = options_.election_timeout_max_ms - options_.election_timeout_min_ms;
    election_deadline_ms_ = now_ms_ + options_.election_timeout_min_ms + next_random() % span;
}

void RaftNode::set_role(Role role) {
    if (role == role_) {
        return;
    }
    if (role_ == Role::kLeader) {
        for (const auto& [read_id, pending] : pending_reads_) {
            out_.reads_failed.push_back(read_id);
        }
        pending_reads_.clear();
        peers_.clear();
    }
    role_ = role;
    out_.role_changed = role;
}

void RaftNode::set_term(Term term) {
    COFFER_CHECK(term >= term_, "raft: term must never decrease");
    if (term == term_) {
        return;
    }
    term_ = term;
    voted_for_.reset();
    out_.hard_state = HardState{term_, voted_for_};
}

void RaftNode::become_follower(Term term, std::optional<NodeId> leader) {
    bool new_leadership = term != term_ || leader != leader_;
    set_term(term);
    set_role(Role::kFollower);
    if (new_leadership) {
        // What was verified against an earlier leader says nothing about this one, except
        // for the committed prefix, which every later leader holds (Raft §5.4).
        leader_ = std::move(leader);
        verified_match_ = commit_index_;
        leader_commit_seen_ = commit_index_;
        last_acked_ = 0;
        last_round_seen_ = 0;
    }
}

void RaftNode::become_pre_candidate() {
    set_role(Role::kPreCandidate);
    leader_.reset();
    votes_.clear();
    votes_[options_.id] = true;
    reset_election_timer();
    ++stats_.pre_votes_started;
    broadcast_vote_request(true, term_ + 1);
}

void RaftNode::become_candidate() {
    set_term(term_ + 1);
    voted_for_ = options_.id;
    out_.hard_state = HardState{term_, voted_for_};
    set_role(Role::kCandidate);
    leader_.reset();
    votes_.clear();
    votes_[options_.id] = true;
    reset_election_timer();
    ++stats_.elections_started;
    broadcast_vote_request(false, term_);
}

void RaftNode::become_leader() {
    COFFER_CHECK(role_ == Role::kCandidate, "raft: only a candidate becomes leader");
    set_role(Role::kLeader);
    leader_ = options_.id;
    ++stats_.elections_won;

    // An unsigned tail can never have committed (commit needs a signature after it), and a
    // new leader's log defines the future: drop it before appending (docs/consensus.md).
    Index last_signed = log_.last_signed().index;
    COFFER_CHECK(last_signed >= commit_index_, "raft: last signature below the commit index");
    if (log_.last_index() > last_signed) {
        truncate_local(last_signed);
    }

    peers_.clear();
    leader_since_ms_ = now_ms_;
    term_start_index_ = log_.last_index() + 1;
    read_round_ = 0;
    spdlog::info("raft.elected node={} role=leader term={} last={} commit={}", options_.id, term_,
                 log_.last_index(), commit_index_);
    broadcast_append(true);
    advance_leader_commit();
}

void RaftNode::advance_clock(uint64_t now_ms) {
    now_ms_ = std::max(now_ms_, now_ms);
}

void RaftNode::tick(uint64_t now_ms) {
    now_ms_ = std::max(now_ms_, now_ms);
    if (role_ == Role::kLeader) {
        tick_leader();
    } else {
        tick_follower();
    }
}

void RaftNode::tick_follower() {
    if (now_ms_ < election_deadline_ms_) {
        return;
    }
    if (!is_voter() || installing_) {
        reset_election_timer();
        return;
    }
    // A pre-candidate whose round timed out probes again: only a granted pre-vote may raise
    // the term (Raft thesis §9.6), or an isolated node would disrupt the cluster on return.
    if (options_.pre_vote) {
        become_pre_candidate();
    } else {
        become_candidate();
    }
    if (votes_.size() >= log_.configuration().quorum()) {
        // A one-node configuration wins at once.
        if (role_ == Role::kPreCandidate) {
            become_candidate();
        }
        become_leader();
    }
}

void RaftNode::tick_leader() {
    if (options_.check_quorum && now_ms_ - leader_since_ms_ >= options_.election_timeout_min_ms &&
        !quorum_recently_active()) {
        // A leader cut off from a majority stops claiming leadership (CON-4): its writes
        // cannot commit and its reads would be stale.
        ++stats_.check_quorum_step_downs;
        spdlog::info("raft.step_down node={} role=leader term={} reason=check_quorum", options_.id,
                     term_);
        become_follower(term_, std::nullopt);
        reset_election_timer();
        return;
    }
    broadcast_append(true);
}

bool RaftNode::quorum_recently_active() const {
    size_t active = 0;
    for (const NodeId& voter : log_.configuration().voters) {
        if (voter == options_.id) {
            ++active;
            continue;
        }
        auto it = peers_.find(voter);
        if (it != peers_.end() &&
            now_ms_ - it->second.last_heard_ms < options_.election_timeout_min_ms) {
            ++active;
        }
    }
    return active >= log_.configuration().quorum();
}

Status RaftNode::campaign() {
    if (!is_voter()) {
        return error(Errc::kFailedPrecondition, "raft: not a voter of the configuration");
    }
    if (role_ == Role::kLeader) {
        return Status::ok_status();
    }
    forcing_ = true;
    become_candidate();
    forcing_ = false;
    if (votes_.size() >= log_.configuration().quorum()) {
        become_leader();
    }
    return Status::ok_status();
}

void RaftNode::broadcast_vote_request(bool pre_vote, Term term) {
    LogPosition signed_pos = log_.last_signed();
    for (const NodeId& voter : log_.configuration().voters) {
        if (voter == options_.id) {
            continue;
        }
        VoteRequest req{term, pre_vote, false, signed_pos.index, signed_pos.term};
        req.force = !pre_vote && forcing_;
        send(voter, req);
    }
}

bool RaftNode::leader_lease_active() const {
    if (!options_.check_quorum || !leader_) {
        return false;
    }
    return role_ == Role::kLeader ||
           now_ms_ - last_leader_contact_ms_ < options_.election_timeout_min_ms;
}

bool RaftNode::vote_allowed(const NodeId& from, const VoteRequest& req) const {
    LogPosition candidate{req.last_signed_term, req.last_signed_index};
    if (candidate < log_.last_signed()) {
        return false;
    }
    if (req.pre_vote) {
        return req.term > term_;
    }
    return !voted_for_ || *voted_for_ == from;
}

Status RaftNode::handle_vote_request(const NodeId& from, const VoteRequest& req) {
    bool lease = leader_lease_active() && !(req.force && !req.pre_vote);
    if (req.term < term_ || (req.term > term_ && lease)) {
        // Stale, or a disruptive candidate while our leader is alive (Raft thesis §4.2.3).
        send(from, VoteResponse{term_, req.pre_vote, false});
        return Status::ok_status();
    }
    if (req.pre_vote) {
        bool granted = vote_allowed(from, req);
        send(from, VoteResponse{granted ? req.term : term_, true, granted});
        return Status::ok_status();
    }
    if (req.term > term_) {
        become_follower(req.term, std::nullopt);
    }
    bool granted = role_ != Role::kLeader && vote_allowed(from, req);
    if (granted) {
        voted_for_ = from;
        out_.hard_state = HardState{term_, voted_for_};
        reset_election_timer();
    }
    send(from, VoteResponse{term_, false, granted});
    return Status::ok_status();
}

Status RaftNode::handle_vote_response(const NodeId& from, const VoteResponse& resp) {
    if (resp.term > term_ && !(resp.pre_vote && resp.granted)) {
        become_follower(resp.term, std::nullopt);
        reset_election_timer();
        return Status::ok_status();
    }
    Role expected = resp.pre_vote ? Role::kPreCandidate : Role::kCandidate;
    Term expected_term = resp.pre_vote ? term_ + 1 : term_;
    if (role_ != expected || resp.term != expected_term || !log_.configuration().contains(from)) {
        return Status::ok_status();
    }
    votes_[from] = resp.granted;
    size_t granted =
        std::count_if(votes_.begin(), votes_.end(), [](const auto& v) { return v.second; });
    if (granted < log_.configuration().quorum()) {
        return Status::ok_status();
    }
    if (role_ == Role::kPreCandidate) {
        become_candidate();
        if (votes_.size() < log_.configuration().quorum()) {
            return Status::ok_status();
        }
    }
    become_leader();
    return Status::ok_status();
}

Status RaftNode::receive(const Message& msg) {
    Status status = Status::ok_status();
    if (msg.to != options_.id) {
        status = error(Errc::kInvalidArgument, "raft: message addressed to another node");
    } else if (msg.from == options_.id) {
        status = error(Errc::kInvalidArgument, "raft: message claims to come from this node");
    } else {
        status = std::visit(
            [this, &msg](const auto& body) -> Status { return dispatch(msg.from, body); },
            msg.body);
    }
    if (!status.ok()) {
        ++stats_.messages_rejected;
        spdlog::warn("raft.message_rejected node={} role={} term={} from={} type={} error=\"{}\"",
                     options_.id, role_name(role_), term_, msg.from, static_cast<int>(msg.type()),
                     status.to_string());
    }
    return status;
}

Status RaftNode::dispatch(const NodeId& from, const VoteRequest& m) {
    return handle_vote_request(from, m);
}
Status RaftNode::dispatch(const NodeId& from, const VoteResponse& m) {
    return handle_vote_response(from, m);
}
Status RaftNode::dispatch(const NodeId& from, const AppendEntries& m) {
    return handle_append_entries(from, m);
}
Status RaftNode::dispatch(const NodeId& from, const AppendEntriesResponse& m) {
    return handle_append_response(from, m);
}
Status RaftNode::dispatch(const NodeId& from, const InstallSnapshot& m) {
    return handle_install_snapshot(from, m);
}
Status RaftNode::dispatch(const NodeId& from, const InstallSnapshotResponse& m) {
    return handle_snapshot_response(from, m);
}

void RaftNode::send(const NodeId& to, MessageBody body) {
    out_.messages.push_back(Message{options_.id, to, std::move(body)});
}

}  // namespace coffer::consensus
