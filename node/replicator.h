// The Replicator drives a node's RaftNode (consensus/raft_node.h) against the real world:
// the ledger as its log storage, the PeerTransport as its network, the steady clock, and
// the KV store's commit hook as the source of new entries (docs/replication.md).
//
// Leader path: Store::commit runs the hook (on_commit) with the store's commit lock held.
// The hook checks that this node leads the term the transaction was stamped with and that
// Raft would take the entry, lets the ledger encode and buffer it, and proposes its exact
// bytes to Raft, which sends them to the followers. Nothing else ever appends on a leader.
//
// The replication thread does everything else, in the order RaftNode's output contract
// requires: persist term and vote, apply log operations to the ledger (follower appends,
// truncations), send messages, flush the ledger and report durability, move the ledger's
// commit point, serve read-index reads, and react to role changes (a new leader stamps its
// term as the store's view and writes a signature entry at once).
//
// Lock order: the store's commit lock, then raft_mu_, then the ledger's locks, then
// wake_mu_ / wait_mu_. The replication thread never holds raft_mu_ while it calls the
// ledger or the store, so a hook waiting for raft_mu_ never waits on the thread.
//
// Failures: an error persisting the term, applying a log operation, flushing or committing
// the ledger is fatal: `on_fatal` is called once and the thread stops (the node stops).
//
// Thread-safety: every public method is thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "consensus/raft_node.h"
#include "kv/store.h"
#include "ledger/ledger.h"
#include "node/peer_transport.h"
#include "node/raft_storage.h"

namespace coffer::node {

// Period of RaftNode::tick (timers are checked this often).
constexpr uint64_t kReplicationTickMs = 10;
// Messages received and not yet handed to Raft; beyond it new ones are dropped.
constexpr size_t kMaxInboundMessages = 16384;
// Reads waiting for their read index.
constexpr size_t kMaxWaitingReads = 4096;

struct ReplicatorOptions {
    std::string node_id;
    std::string data_dir;
    uint64_t election_timeout_min_ms = 500;
    uint64_t election_timeout_max_ms = 1000;
    uint64_t heartbeat_interval_ms = 100;
};

// What the node is in consensus right now.
struct ReplicationStatus {
    consensus::Role role = consensus::Role::kFollower;
    consensus::Term term = 0;
    std::optional<consensus::NodeId> leader;
    consensus::Index commit_index = 0;
    consensus::Configuration configuration;
    // Leader whose term is stamped on the store: writes are accepted.
    bool leader_ready = false;
};

class Replicator final : public kv::CommitHook {
  public:
    using FatalHandler = std::function<void(const Status&)>;

    // Builds the RaftNode from the ledger and `state`, installs itself as the store's commit
    // hook (in front of the ledger) and starts the replication thread. `store`, `ledger` and
    // `transport` must outlive the Replicator. Errors: recover_raft_state's and
    // RaftNode::create's.
    static Result<std::unique_ptr<Replicator>> start(ReplicatorOptions options, kv::Store& store,
                                                     ledger::Ledger& ledger,
                                                     PeerTransport& transport,
                                                     const RaftStateFile& state,
                                                     FatalHandler on_fatal);

    ~Replicator() override;
    Replicator(const Replicator&) = delete;
    Replicator& operator=(const Replicator&) = delete;

    // Stops the thread after a last flush, and gives the commit hook back to the ledger.
    // Idempotent.
    void stop();

    // kv::CommitHook (see the top of this file). Errors: kFailedPrecondition "not leader"
    // (a follower, or a leader whose term is not stamped on the store yet), Raft's refusals
    // (kResourceExhausted beyond the uncommitted bound, a configuration change in progress),
    // the ledger's.
    Status on_commit(kv::TxId id, const kv::WriteSet& ws) override;

    // A message from a peer (PeerTransport's deliver callback).
    void deliver(consensus::Message msg);

    // Starts an election now (a network of one node elects itself at once).
    Status campaign();

    ReplicationStatus status() const;
    bool leader_ready() const { return leader_ready_.load(); }

    // Waits until this node is a ready leader. Errors: kFailedPrecondition on timeout.
    Status wait_leader_ready(uint64_t timeout_ms);

    // Waits until the store's commit point reaches `seqno`. Errors: kFailedPrecondition on
    // timeout or when the node stops.
    Status wait_committed(kv::Seqno seqno, uint64_t timeout_ms);

    // A linearizable read point (Raft read-index): once a heartbeat round of this leader's
    // term reached a majority after the call, and the commit point covers the read index,
    // returns the commit point to read at (Store::begin_at). Errors: kFailedPrecondition
    // (not leader, leadership lost, timeout), kResourceExhausted (too many waiting reads).
    Result<kv::Seqno> linearizable_read_point(uint64_t timeout_ms);

    consensus::RaftStats raft_stats() const;

  private:
    Replicator(ReplicatorOptions options, kv::Store& store, ledger::Ledger& ledger,
               PeerTransport& transport, const RaftStateFile& state, FatalHandler on_fatal);

    void loop();
    void step(std::vector<consensus::Message> inbound);
    void process(consensus::Output out, consensus::Term term);
    void become_ready_leader(consensus::Term term);
    void fatal(const Status& status);
    void wake();
    void notify_waiters();

    ReplicatorOptions options_;
    kv::Store& store_;
    ledger::Ledger& ledger_;
    PeerTransport& transport_;
    LedgerLogStore log_store_;
    uint64_t recovery_base_ = 0;  // see RaftStateFile::recovery_base
    FatalHandler on_fatal_;

    mutable std::mutex raft_mu_;  // guards raft_
    std::unique_ptr<consensus::RaftNode> raft_;

    std::mutex wake_mu_;  // guards inbound_, work_, stopping_
    std::condition_variable wake_cv_;
    std::vector<consensus::Message> inbound_;
    bool work_ = false;
    bool stopping_ = false;
    std::thread thread_;

    std::mutex wait_mu_;  // guards reads_ and the waits below
    std::condition_variable wait_cv_;
    std::map<uint64_t, std::optional<consensus::Index>> reads_;  // id -> index once confirmed
    std::map<uint64_t, bool> failed_reads_;

    std::atomic<bool> leader_ready_{false};
    std::atomic<bool> failed_{false};
    std::atomic<bool> stopped_{false};
};

}  // namespace coffer::node
