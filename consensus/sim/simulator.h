// A deterministic simulator for RaftNode: a whole network in one process, driven by one seed.
//
// Time advances in fixed steps. Each step delivers due messages (through the real message
// codec), ticks every running node, completes due flushes of the simulated disks, injects
// client load and, in chaos mode, faults: message drops, duplicates and delays (reordering),
// symmetric and one-way partitions, crashes that lose unflushed writes (sometimes tearing the
// last write), whole-network power losses, and compaction. After every step the invariants
// of docs/consensus.md ("Simulation") are checked; the first violation is returned as an
// error and the run can be replayed bit for bit from the seed.
//
// Nothing here reads a clock, a random device or the network. Thread-safety: none.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "consensus/raft_node.h"

namespace coffer::consensus::sim {

// xoshiro256** seeded through splitmix64: small, fast and the same on every platform.
class Rng {
  public:
    explicit Rng(uint64_t seed);
    uint64_t next();
    uint64_t below(uint64_t bound);  // uniform in [0, bound); bound > 0
    bool chance(double p);

  private:
    uint64_t s_[4];
};

// Most messages that may be in flight in the simulated network at once (more are dropped).
constexpr size_t kMaxInFlightMessages = 100000;

struct FaultOptions {
    bool enabled = false;
    double drop = 0.02;          // per message
    double duplicate = 0.02;     // per message
    uint64_t max_delay_ms = 25;  // per message, uniform in [1, max]
    uint64_t max_flush_delay_ms = 40;
    double crash_per_step = 0.0015;  // per running node
    double power_loss_per_step = 0.0003;
    double tear_on_crash = 0.5;
    uint64_t min_down_ms = 50;
    uint64_t max_down_ms = 1500;
    double partition_per_step = 0.004;
    uint64_t max_partition_ms = 1200;
    double isolate_leader = 0.5;  // share of symmetric partitions that cut off the leader
    // A new leader crashes within max_leader_crash_delay_ms of its election with this
    // probability: terms that end with partial replication are where commit-rule bugs show.
    double crash_new_leader = 0.2;
    uint64_t max_leader_crash_delay_ms = 60;
    double isolate_new_leader = 0.2;  // per election (replaces an active partition)
    double compact_per_step = 0.01;   // per node whose log holds enough committed entries
    // The leader removes a voter (possibly itself) or adds the missing one back.
    double reconfigure_per_step = 0;
    uint64_t compact_min_entries = 16;
};

struct LoadOptions {
    bool auto_propose = false;
    double propose_per_step = 0.3;
    // A leader signs at once when elected, then every N entries or T ms.
    bool sign_on_election = true;
    bool periodic_signatures = false;
    uint64_t signature_every_entries = 4;
    uint64_t signature_interval_ms = 40;
    double read_per_step = 0.02;
};

struct SimOptions {
    uint64_t seed = 1;
    uint64_t step_ms = 5;
    RaftOptions raft;  // template: id and random_seed are set per node
    FaultOptions faults;
    LoadOptions load;
};

struct SimStats {
    uint64_t steps = 0;
    uint64_t elections = 0;  // leaderships won
    uint64_t crashes = 0;
    uint64_t power_losses = 0;
    uint64_t partitions = 0;
    uint64_t one_way_partitions = 0;
    uint64_t torn_writes = 0;
    uint64_t dropped = 0;
    uint64_t duplicated = 0;
    uint64_t delivered = 0;
    uint64_t snapshots_installed = 0;
    uint64_t compactions = 0;
    uint64_t reconfigurations = 0;
    uint64_t proposals = 0;
    uint64_t reads_confirmed = 0;
    uint64_t max_committed = 0;

    void add(const SimStats& other);
};

class Simulator {
  public:
    explicit Simulator(SimOptions options);
    ~Simulator();

    // Adds a node. `bootstrap` nodes form the first configuration (all must be added before
    // the first step); others start with an empty configuration and join through a
    // configuration entry.
    Status add_node(const NodeId& id, bool bootstrap);

    // One step of simulated time. Returns the first invariant violation, if any.
    Status step();
    // Steps until `ms` of simulated time have passed, stopping at the first violation.
    Status run_for(uint64_t ms);
    // Steps until `done()` holds or `max_ms` passed; kFailedPrecondition on timeout.
    template <typename Pred>
    Status run_until(Pred done, uint64_t max_ms, std::string_view what);

    // A full randomised run: `chaos_ms` with faults and load, then the heal phase (faults
    // off, everything restarted and reconnected) which must elect a leader and commit a new
    // entry on every node within `liveness_ms`.
    Status run_chaos(uint64_t chaos_ms, uint64_t liveness_ms);

    // Controls for scenarios.
    Status crash(const NodeId& id, bool tear);
    Status restart(const NodeId& id);
    void partition(const std::vector<std::vector<NodeId>>& groups);
    void block(const NodeId& from, const NodeId& to);
    void heal();
    void hold_flushes(const NodeId& id, bool hold);
    Status flush_now(const NodeId& id);
    Result<Index> propose(const NodeId& id, std::string_view value, bool is_signature);
    Result<Index> propose_configuration(const NodeId& id, const std::vector<NodeId>& voters);
    Status campaign(const NodeId& id);
    Status compact(const NodeId& id);
    // Delivers `msg` now (bypassing the network), as if it had just arrived.
    Status inject(const Message& msg);
    void set_load(const LoadOptions& load) { options_.load = load; }
    void set_faults(const FaultOptions& faults) { options_.faults = faults; }

    // Observation.
    RaftNode* node(const NodeId& id);  // nullptr when crashed or unknown
    bool is_up(const NodeId& id) const;
    std::optional<NodeId> leader() const;  // a running leader of the highest term
    const std::vector<NodeId>& node_ids() const { return ids_; }
    bool value_committed(std::string_view value) const;
    Index max_committed() const { return committed_hash_.size(); }
    uint64_t now_ms() const { return now_ms_; }
    const SimStats& stats() const { return stats_; }
    // One line per node: role, term, last/durable/commit index, voters (for failures and
    // COFFER_SCENARIO_TRACE).
    std::string describe();
    // The first violation found so far (ok when none).
    const Status& violation() const { return violation_; }

  private:
    struct SimNode;
    struct InFlight;

    SimNode& at(const NodeId& id);
    uint64_t node_seed(const NodeId& id);
    Status start_node(SimNode& n);
    void process(SimNode& n);
    void apply_log_ops(SimNode& n, const std::vector<LogOp>& ops);
    void apply_commits(SimNode& n, Index commit);
    void install_snapshot(SimNode& n, const SnapshotMeta& meta, const Bytes& data);
    void on_role_change(SimNode& n, Role role);
    void send_all(std::vector<Message> messages);
    void deliver_due();
    void flush_due();
    void complete_flush(SimNode& n);
    void drive_load();
    void inject_faults();
    void run_fault_timers();  // scheduled restarts, crashes and heals
    void start_partition();
    void maybe_compact();
    void maybe_reconfigure();
    // Proposes, on the leader, the one-node change towards the bootstrap configuration
    // (when `restore`) or away from it. True when a change was appended.
    bool propose_membership_change(bool restore);
    void fail(std::string what);
    Status check_step();
    void check_leader_completeness(SimNode& n);
    void check_committed_safe();
    bool linked(const NodeId& from, const NodeId& to) const;

    SimOptions options_;
    Rng rng_;
    uint64_t now_ms_ = 0;
    uint64_t next_message_seq_ = 0;
    std::vector<NodeId> ids_;
    std::map<NodeId, std::unique_ptr<SimNode>> nodes_;
    Configuration bootstrap_;
    std::multimap<std::pair<uint64_t, uint64_t>, Message> network_;
    std::set<std::pair<NodeId, NodeId>> blocked_;
    uint64_t heal_at_ms_ = 0;
    std::map<NodeId, uint64_t> restart_at_ms_;
    std::map<NodeId, uint64_t> crash_at_ms_;
    // Global record of every committed entry ever reported: index -> entry hash, and the
    // running chain hash of the committed prefix.
    std::vector<uint64_t> committed_hash_;
    std::vector<uint64_t> committed_chain_;
    std::set<std::string> committed_values_;
    std::map<Term, NodeId> leader_of_term_;
    std::map<std::pair<NodeId, uint64_t>, Index> read_floor_;  // (node, read id) -> floor
    uint64_t proposal_counter_ = 0;
    Status violation_;
    SimStats stats_;
};

template <typename Pred>
Status Simulator::run_until(Pred done, uint64_t max_ms, std::string_view what) {
    uint64_t deadline = now_ms_ + max_ms;
    while (!done()) {
        if (now_ms_ >= deadline) {
            return error(Errc::kFailedPrecondition, "timed out after " + std::to_string(max_ms) +
                                                        " ms waiting for " + std::string(what));
        }
        COFFER_RETURN_IF_ERROR(step());
    }
    return Status::ok_status();
}

// Hash of one entry (term, kind, payload), as the invariant checks record it.
uint64_t entry_hash(const Entry& e);

}  // namespace coffer::consensus::sim
