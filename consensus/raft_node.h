// RaftNode: Coffer's consensus as a pure, deterministic state machine (docs/consensus.md).
//
// Raft (Ongaro & Ousterhout) adapted as in CCF: an entry commits only once a SIGNATURE entry
// at or after it, written in the leader's current term, is durable on a majority of the
// current configuration. Elections compare the last signed position. Pre-vote, check-quorum,
// single-server membership changes, snapshot catch-up and read-index reads are included.
//
// The node has no threads, no clock, no I/O and no global randomness. The caller drives it:
//   tick(now_ms), receive(msg), propose(...), on_flushed(durable), install_snapshot_done(...)
// and after every call collects take_output(), which it must act on IN THIS ORDER:
//   1. persist `hard_state` (term, vote) synchronously, if set;
//   2. apply `log_ops` to its log storage in order (apply_log_ops in log_store.h; appends may
//      stay buffered until flushed);
//   3. send `messages`;
//   4. apply committed entries up to `commit_index`, install `snapshot_to_install`, answer
//      `reads`, react to `role_changed`.
// When the storage has made entries durable it calls on_flushed(durable index), where the
// index reflects every log op applied so far (after a truncation the durable index never
// covers entries that were rewritten and not yet flushed again). After a truncation the
// durable index may come back to a value reported before, for entries that are new: it must
// be reported again (a caller that skips "unchanged" values stalls commits).
//
// Thread-safety: none. One RaftNode is used by one thread (or under one lock).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "consensus/messages.h"
#include "consensus/raft_log.h"
#include "consensus/types.h"

namespace coffer::consensus {

// The most entries a leader lets wait uncommitted; propose() refuses beyond it.
constexpr size_t kMaxUncommittedEntries = 4096;
// The most entries sent to one follower and not yet acknowledged.
constexpr size_t kMaxInflightEntries = 4 * kMaxEntriesPerMessage;
// The most read-index reads waiting for their heartbeat round.
constexpr size_t kMaxPendingReads = 1024;

// Bugs planted on purpose, for the simulator's self-test only (docs/consensus.md, "Planted
// bugs"). Never set outside tests.
enum class PlantedBug : uint8_t {
    kNone = 0,
    kAckBeforeFlush,         // followers ack and the leader counts itself before fsync
    kCommitEarlierTerm,      // commit a signature of an earlier term by counting replicas
    kSkipTruncateOnConflict  // keep a conflicting suffix instead of truncating it
};

struct RaftOptions {
    NodeId id;
    // Election timeouts are drawn uniformly from [min, max) after every reset.
    uint64_t election_timeout_min_ms = 500;
    uint64_t election_timeout_max_ms = 1000;
    uint64_t heartbeat_interval_ms = 100;
    // Most entries and bytes in one AppendEntries (capped by kMaxEntriesPerMessage and
    // kMaxMessageBytes), and the bytes of one snapshot chunk.
    size_t max_entries_per_message = 64;
    size_t max_bytes_per_message = 1u << 20;
    size_t max_uncommitted_entries = kMaxUncommittedEntries;
    bool pre_vote = true;
    bool check_quorum = true;
    // Seeds the node's own generator for election timeouts (the simulator derives it from
    // its seed; a real node from a random source).
    uint64_t random_seed = 1;
    // Reads configuration entries (types.h); empty: decode_configuration.
    ConfigurationDecoder configuration_decoder;
    PlantedBug planted_bug = PlantedBug::kNone;
};

// What the storage held when the node (re)started.
struct HardState {
    Term term = 0;
    std::optional<NodeId> voted_for;
    bool operator==(const HardState&) const = default;
};

struct SnapshotMeta {
    Index index = 0;
    Term term = 0;
    Configuration config;
};

struct RecoveredState {
    HardState hard_state;
    // The configuration before any configuration entry (the network's first nodes); empty for
    // a node that joins and learns its configuration from the leader.
    Configuration bootstrap_config;
    // The latest durable snapshot, with its bytes (served to lagging followers).
    std::optional<SnapshotMeta> snapshot;
    Bytes snapshot_data;
    // The durable entries, in order, starting right after the snapshot (or at 1).
    std::vector<Entry> entries;
    // The durable commit point (0 if unknown): a signature index within the entries.
    Index commit_index = 0;
};

// An instruction for the log storage (step 2 of the output contract).
struct LogOp {
    enum class Kind : uint8_t {
        kAppend,         // append `entry`
        kTruncate,       // drop every entry after `index`
        kSnapshotReset,  // the snapshot (index, term) is installed: drop entries up to index;
                         // if the stored entry at index has another term, drop all entries
    };
    Kind kind = Kind::kAppend;
    Entry entry;
    Index index = 0;
    Term term = 0;
};

enum class Role : uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };
std::string_view role_name(Role role);

struct ReadReady {
    uint64_t read_id = 0;
    Index read_index = 0;  // serve the read once entries up to here are applied
};

struct Output {
    std::optional<HardState> hard_state;
    std::vector<LogOp> log_ops;
    std::vector<Message> messages;
    std::optional<Index> commit_index;  // set when the commit index advanced
    std::optional<Role> role_changed;
    // A snapshot received in full: install it, then call install_snapshot_done().
    std::optional<SnapshotMeta> snapshot_to_install;
    Bytes snapshot_data;
    std::vector<ReadReady> reads;
    std::vector<uint64_t> reads_failed;  // leadership lost before the read was confirmed
};

// Counters, for metrics and the simulator's statistics.
struct RaftStats {
    uint64_t elections_started = 0;
    uint64_t elections_won = 0;
    uint64_t pre_votes_started = 0;
    uint64_t messages_rejected = 0;  // from peers, invalid for the current state
    uint64_t snapshots_sent = 0;
    uint64_t snapshots_installed = 0;
    uint64_t check_quorum_step_downs = 0;
};

class RaftNode {
  public:
    // Builds a node from what its storage recovered. Errors: kInvalidArgument when the id is
    // empty or the options are inconsistent; kCorrupt when the recovered entries are not
    // consecutive after the snapshot, terms decrease, or the commit index is not a recovered
    // signature entry.
    static Result<std::unique_ptr<RaftNode>> create(RaftOptions options, RecoveredState state,
                                                    uint64_t now_ms);

    // Advances the node's clock (never backwards) and runs timers: elections, heartbeats,
    // check-quorum, snapshot and entry retransmission.
    void tick(uint64_t now_ms);

    // Moves the clock forward (never backwards) without running timers. A caller that queued
    // messages calls it before receive() so that they are stamped with the time they are
    // handed over, not with the last tick's (a slow storage call between two ticks would
    // otherwise make a leader drop for check-quorum, or a follower campaign, right after
    // hearing from its peers).
    void advance_clock(uint64_t now_ms);

    // Handles one message addressed to this node. Errors (the message changes nothing and is
    // counted in stats().messages_rejected): kInvalidArgument when it is not addressed to this
    // node or contradicts the protocol (e.g. entries with decreasing terms), which an honest
    // peer never sends. Stale messages (older terms) are not errors.
    Status receive(const Message& msg);

    // Leader only: appends a client entry (or a signature entry) and returns its index.
    // Errors: kFailedPrecondition "not leader" (leader() is the hint for a redirect; the
    // message names it too), kResourceExhausted when max_uncommitted_entries wait already.
    Result<Index> propose(Bytes payload, bool is_signature);

    // What propose() would refuse with, without appending anything: a caller that must spend
    // resources (a ledger IV) before it has the payload asks first, then proposes.
    Status check_propose() const;

    // Leader only: appends a configuration entry that adds or removes exactly one voter.
    // `payload` is the entry's bytes when the caller encodes configuration entries itself
    // (RaftOptions::configuration_decoder must read `config` back from it); empty: the
    // payload is encode_configuration(config).
    // Errors: kFailedPrecondition (not leader, a configuration change is still uncommitted, or
    // nothing of this term has committed yet), kInvalidArgument (not a one-node change, bad
    // ids, a payload that does not decode to `config`), kResourceExhausted as propose().
    Result<Index> propose_configuration(const Configuration& config,
                                        std::optional<Bytes> payload = std::nullopt);

    // What propose_configuration(config) would refuse with, without appending anything.
    Status check_propose_configuration(const Configuration& config) const;

    // The storage reports that the log is durable up to `durable_index`.
    void on_flushed(Index durable_index);

    // The caller took a snapshot of the state at the committed signature index `index`:
    // entries up to it leave the in-memory log and `data` is served to lagging followers.
    // Errors: kFailedPrecondition (index above the commit index or not after the base).
    Status compact(Index index, Bytes data);

    // Reports the outcome of installing the snapshot handed out in Output. On success the
    // log restarts after it and the leader is told. Errors: kFailedPrecondition when no
    // snapshot at `index` was handed out.
    Status install_snapshot_done(Index index, const Status& result);

    // Leader only: starts a read-index read; Output.reads reports it once a heartbeat round
    // of this term reached a majority. Errors: kFailedPrecondition (not leader, or nothing of
    // this term committed yet), kResourceExhausted (kMaxPendingReads waiting).
    Result<uint64_t> request_read();

    // Starts an election now, skipping pre-vote (leadership transfer, tests). Errors:
    // kFailedPrecondition when this node is not a voter of its configuration.
    Status campaign();

    // The AppendEntries this leader would send to `peer` if its next index were
    // `next_index`, with at most `max_entries` entries. For tests and scenario scripts.
    // Errors: kFailedPrecondition (not leader, or next_index not in the log).
    Result<Message> build_append_entries(const NodeId& peer, Index next_index,
                                         size_t max_entries) const;

    Output take_output();

    const NodeId& id() const { return options_.id; }
    Role role() const { return role_; }
    Term term() const { return term_; }
    // The leader of the current term, if known: the redirect target for client writes.
    std::optional<NodeId> leader() const { return leader_; }
    Index commit_index() const { return commit_index_; }
    Index durable_index() const { return durable_index_; }
    const RaftLog& log() const { return log_; }
    const Configuration& configuration() const { return log_.configuration(); }
    const RaftStats& stats() const { return stats_; }

    // For tests: the membership of the current configuration of this node.
    bool is_voter() const { return log_.configuration().contains(options_.id); }

  private:
    struct Peer {
        Index next_index = 1;
        Index match_index = 0;
        uint64_t last_heard_ms = 0;
        uint64_t acked_round = 0;
        // Snapshot transfer: the offset the follower asked for; active while set.
        std::optional<uint64_t> snapshot_offset;
    };

    RaftNode(RaftOptions options, RecoveredState state, uint64_t now_ms);

    // Roles.
    void become_follower(Term term, std::optional<NodeId> leader);
    void become_pre_candidate();
    void become_candidate();
    void become_leader();
    void set_role(Role role);
    void set_term(Term term);

    // Timers.
    void reset_election_timer();
    void tick_follower();
    void tick_leader();
    bool quorum_recently_active() const;

    // Message dispatch; each handler owns its branches and state changes.
    Status dispatch(const NodeId& from, const VoteRequest& m);
    Status dispatch(const NodeId& from, const VoteResponse& m);
    Status dispatch(const NodeId& from, const AppendEntries& m);
    Status dispatch(const NodeId& from, const AppendEntriesResponse& m);
    Status dispatch(const NodeId& from, const InstallSnapshot& m);
    Status dispatch(const NodeId& from, const InstallSnapshotResponse& m);

    // Elections.
    Status handle_vote_request(const NodeId& from, const VoteRequest& req);
    Status handle_vote_response(const NodeId& from, const VoteResponse& resp);
    bool vote_allowed(const NodeId& from, const VoteRequest& req) const;
    bool leader_lease_active() const;
    void broadcast_vote_request(bool pre_vote, Term term);

    // Replication (follower side).
    Status handle_append_entries(const NodeId& from, const AppendEntries& req);
    std::optional<Index> matching_prefix_end(const AppendEntries& req) const;
    Index conflict_hint(const AppendEntries& req) const;
    Result<Index> append_from(const AppendEntries& req);
    void advance_follower_commit();
    void maybe_ack_durable();

    // Replication (leader side).
    Status handle_append_response(const NodeId& from, const AppendEntriesResponse& resp);
    std::vector<NodeId> replication_targets() const;
    void send_append(const NodeId& peer, bool heartbeat);
    void broadcast_append(bool heartbeat);
    void advance_leader_commit();
    Index quorum_match_index() const;
    void check_retirement();
    void confirm_reads();

    // Snapshots.
    Status handle_install_snapshot(const NodeId& from, const InstallSnapshot& req);
    Status handle_snapshot_response(const NodeId& from, const InstallSnapshotResponse& resp);
    void send_snapshot_chunk(const NodeId& peer);

    // Helpers that change nothing.
    Index acknowledgeable_index() const;
    void set_commit(Index index);
    void append_local(Entry entry);
    void truncate_local(Index last_kept);
    void send(const NodeId& to, MessageBody body);
    uint64_t next_random();

    RaftOptions options_;
    RaftLog log_;
    Role role_ = Role::kFollower;
    Term term_ = 0;
    std::optional<NodeId> voted_for_;
    std::optional<NodeId> leader_;
    Index commit_index_ = 0;
    Index durable_index_ = 0;
    uint64_t now_ms_ = 0;
    uint64_t rng_state_;

    // Election state.
    uint64_t election_deadline_ms_ = 0;
    uint64_t last_leader_contact_ms_ = 0;
    bool forcing_ = false;  // campaign(): the vote requests ask voters to ignore leases
    std::map<NodeId, bool> votes_;

    // Follower state: highest index verified to match the current leader's log in this
    // term, the leader's commit index as last seen, and the last durable ack sent.
    Index verified_match_ = 0;
    Index leader_commit_seen_ = 0;
    Index last_acked_ = 0;
    uint64_t last_round_seen_ = 0;

    // Leader state.
    std::map<NodeId, Peer> peers_;
    uint64_t leader_since_ms_ = 0;
    Index term_start_index_ = 0;  // first index appended in this term as leader
    uint64_t read_round_ = 0;
    std::map<uint64_t, std::pair<uint64_t, Index>> pending_reads_;  // id -> (round, index)
    uint64_t next_read_id_ = 1;

    // Snapshot state: the latest local snapshot (served to followers) and one being received.
    std::optional<SnapshotMeta> snapshot_;
    Bytes snapshot_data_;
    std::optional<SnapshotMeta> incoming_snapshot_;
    Bytes incoming_data_;
    bool installing_ = false;
    NodeId incoming_from_;

    Output out_;
    RaftStats stats_;
};

}  // namespace coffer::consensus
