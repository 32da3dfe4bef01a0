#include "consensus/sim/simulator.h"

#include "consensus/sim/memory_log_store.h"

#include <algorithm>
#include <functional>
#include <string>

namespace coffer::consensus::sim {
namespace {

uint64_t splitmix(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t fnv1a(uint64_t h, ByteSpan data) {
    for (uint8_t b : data) {
        h = (h ^ b) * 0x100000001b3ull;
    }
    return h;
}

uint64_t chain_next(uint64_t chain, uint64_t entry) {
    uint64_t state = chain ^ entry;
    return splitmix(state);
}

// The simulated application's snapshot: the committed index and the chain hash up to it.
Bytes encode_sim_snapshot(Index index, uint64_t chain) {
    Bytes out;
    put_u64(out, index);
    put_u64(out, chain);
    // Padding so that snapshots span several chunks with small message budgets.
    out.resize(out.size() + 496, 0xab);
    return out;
}

bool empty_output(const Output& out) {
    return !out.hard_state && out.log_ops.empty() && out.messages.empty() && !out.commit_index &&
           !out.role_changed && !out.snapshot_to_install && out.reads.empty() &&
           out.reads_failed.empty();
}

constexpr int kMaxOutputRounds = 8;

}  // namespace

Rng::Rng(uint64_t seed) {
    uint64_t state = seed;
    for (uint64_t& s : s_) {
        s = splitmix(state);
    }
}

uint64_t Rng::next() {
    uint64_t result = rotl(s_[1] * 5, 7) * 9;
    uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
}

uint64_t Rng::below(uint64_t bound) {
    COFFER_CHECK(bound > 0, "rng bound must be positive");
    return next() % bound;
}

bool Rng::chance(double p) {
    if (p <= 0) {
        return false;
    }
    return static_cast<double>(next() >> 11) * 0x1.0p-53 < p;
}

void SimStats::add(const SimStats& o) {
    steps += o.steps;
    elections += o.elections;
    crashes += o.crashes;
    power_losses += o.power_losses;
    partitions += o.partitions;
    one_way_partitions += o.one_way_partitions;
    torn_writes += o.torn_writes;
    dropped += o.dropped;
    duplicated += o.duplicated;
    delivered += o.delivered;
    snapshots_installed += o.snapshots_installed;
    compactions += o.compactions;
    reconfigurations += o.reconfigurations;
    proposals += o.proposals;
    reads_confirmed += o.reads_confirmed;
    max_committed += o.max_committed;
}

uint64_t entry_hash(const Entry& e) {
    Bytes header;
    put_u64(header, e.term);
    header.push_back(static_cast<uint8_t>(e.kind));
    return fnv1a(fnv1a(0xcbf29ce484222325ull, header), e.payload);
}

struct Simulator::SimNode {
    NodeId id;
    bool bootstrap = false;
    std::unique_ptr<RaftNode> raft;
    MemoryLogStore disk;
    std::optional<uint64_t> flush_at_ms;
    bool hold_flush = false;
    uint64_t life = 0;
    // The simulated application: the applied prefix and its chain hash.
    Index applied = 0;
    uint64_t chain = 0;
    uint64_t last_signature_ms = 0;
};

Simulator::Simulator(SimOptions options) : options_(std::move(options)), rng_(options_.seed) {}

Simulator::~Simulator() = default;

Simulator::SimNode& Simulator::at(const NodeId& id) {
    auto it = nodes_.find(id);
    COFFER_CHECK(it != nodes_.end(), "sim: unknown node " + id);
    return *it->second;
}

bool Simulator::is_up(const NodeId& id) const {
    auto it = nodes_.find(id);
    return it != nodes_.end() && it->second->raft != nullptr;
}

RaftNode* Simulator::node(const NodeId& id) {
    auto it = nodes_.find(id);
    return it == nodes_.end() ? nullptr : it->second->raft.get();
}

std::optional<NodeId> Simulator::leader() const {
    std::optional<NodeId> best;
    Term best_term = 0;
    for (const auto& [id, n] : nodes_) {
        if (n->raft && n->raft->role() == Role::kLeader && n->raft->term() >= best_term) {
            best = id;
            best_term = n->raft->term();
        }
    }
    return best;
}

bool Simulator::value_committed(std::string_view value) const {
    return committed_values_.count(std::string(value)) > 0;
}

uint64_t Simulator::node_seed(const NodeId& id) {
    uint64_t state = options_.seed ^ fnv1a(0xcbf29ce484222325ull, as_bytes(id));
    state += at(id).life * 0x9e3779b97f4a7c15ull;
    return splitmix(state);
}

Status Simulator::add_node(const NodeId& id, bool bootstrap) {
    if (nodes_.count(id) != 0) {
        return error(Errc::kInvalidArgument, "sim: node exists: " + id);
    }
    auto n = std::make_unique<SimNode>();
    n->id = id;
    n->bootstrap = bootstrap;
    ids_.push_back(id);
    SimNode& ref = *n;
    nodes_[id] = std::move(n);
    if (bootstrap) {
        bootstrap_.voters.push_back(id);
        std::sort(bootstrap_.voters.begin(), bootstrap_.voters.end());
        for (auto& [other_id, other] : nodes_) {
            if (other->raft) {
                return error(Errc::kFailedPrecondition, "sim: bootstrap nodes come first");
            }
        }
    }
    if (!bootstrap || stats_.steps > 0) {
        return start_node(ref);
    }
    return Status::ok_status();
}

Status Simulator::start_node(SimNode& n) {
    RaftOptions raft = options_.raft;
    raft.id = n.id;
    raft.random_seed = node_seed(n.id);
    auto created =
        RaftNode::create(raft, n.disk.recover(n.bootstrap ? bootstrap_ : Configuration{}), now_ms_);
    if (!created.ok()) {
        return created.status().with_context("restarting " + n.id + ": ");
    }
    n.raft = std::move(created).value();
    ++n.life;
    n.flush_at_ms.reset();
    n.last_signature_ms = now_ms_;

    // Rebuild the application: the snapshot, then the committed entries.
    n.applied = 0;
    n.chain = 0;
    if (n.disk.snapshot()) {
        ByteReader reader(n.disk.snapshot_data());
        COFFER_CHECK(reader.read_u64(n.applied) && reader.read_u64(n.chain), "sim snapshot");
    }
    apply_commits(n, n.raft->commit_index());
    if (n.raft->commit_index() < n.disk.commit_index()) {
        fail("node " + n.id + " restarted with a lower commit index");
    }
    return Status::ok_status();
}

void Simulator::fail(std::string what) {
    if (violation_.ok()) {
        violation_ = error(Errc::kInternal, "t=" + std::to_string(now_ms_) + "ms: " + what);
    }
}

// ---- Output processing ----------------------------------------------------------------------

void Simulator::process(SimNode& n) {
    // Acting on an output (a signature on election, a snapshot installed) can produce more.
    for (int round = 0; round < kMaxOutputRounds && n.raft; ++round) {
        Output out = n.raft->take_output();
        if (out.hard_state) {
            COFFER_CHECK(n.disk.save_hard_state(*out.hard_state).ok(), "sim: hard state");
        }
        apply_log_ops(n, out.log_ops);
        send_all(std::move(out.messages));
        if (out.commit_index) {
            apply_commits(n, *out.commit_index);
        }
        if (out.role_changed) {
            on_role_change(n, *out.role_changed);
        }
        for (const ReadReady& read : out.reads) {
            ++stats_.reads_confirmed;
            auto key = std::make_pair(n.id, read.read_id);
            auto it = read_floor_.find(key);
            if (it != read_floor_.end() && read.read_index < it->second) {
                fail("read-index read on " + n.id + " at " + std::to_string(read.read_index) +
                     " misses a write committed before the read began (" +
                     std::to_string(it->second) + ")");
            }
            read_floor_.erase(key);
        }
        if (out.snapshot_to_install) {
            install_snapshot(n, *out.snapshot_to_install, out.snapshot_data);
        }
        if (empty_output(out)) {
            return;
        }
    }
}

void Simulator::apply_log_ops(SimNode& n, const std::vector<LogOp>& ops) {
    Status status = consensus::apply_log_ops(n.disk, ops);
    if (!status.ok()) {
        fail("log store of " + n.id + " refused an op: " + status.to_string());
    }
    if (n.disk.has_unflushed() && !n.flush_at_ms) {
        uint64_t delay =
            options_.faults.enabled ? rng_.below(options_.faults.max_flush_delay_ms + 1) : 0;
        n.flush_at_ms = now_ms_ + delay;
    }
}

void Simulator::apply_commits(SimNode& n, Index commit) {
    const RaftLog& log = n.raft->log();
    for (Index i = n.applied + 1; i <= commit; ++i) {
        if (i <= log.base_index()) {
            fail("node " + n.id + " committed " + std::to_string(i) +
                 " inside its snapshot "
                 "without having applied it");
            return;
        }
        const Entry& e = log.at(i);
        uint64_t h = entry_hash(e);
        n.chain = chain_next(n.chain, h);
        if (i <= committed_hash_.size()) {
            if (committed_hash_[i - 1] != h || committed_chain_[i - 1] != n.chain) {
                fail("committed entry " + std::to_string(i) + " differs on " + n.id +
                     " from the one committed before (committed prefixes diverge)");
                return;
            }
        } else {
            COFFER_CHECK(i == committed_hash_.size() + 1, "sim: committed record has a gap");
            committed_hash_.push_back(h);
            committed_chain_.push_back(n.chain);
            if (e.kind == EntryKind::kData) {
                committed_values_.insert(to_string(e.payload));
            }
        }
        n.applied = i;
    }
    stats_.max_committed = committed_hash_.size();
    n.disk.save_commit(n.raft->commit_index());
}

void Simulator::install_snapshot(SimNode& n, const SnapshotMeta& meta, const Bytes& data) {
    ByteReader reader(data);
    Index index = 0;
    uint64_t chain = 0;
    COFFER_CHECK(reader.read_u64(index) && reader.read_u64(chain), "sim snapshot malformed");
    if (index != meta.index || index == 0 || index > committed_chain_.size() ||
        committed_chain_[index - 1] != chain) {
        fail("snapshot at " + std::to_string(meta.index) + " sent to " + n.id +
             " does not match the committed prefix");
        return;
    }
    COFFER_CHECK(n.disk.stage_snapshot(meta, data).ok(), "sim: staging a snapshot");
    if (index > n.applied) {
        n.applied = index;
        n.chain = chain;
    }
    ++stats_.snapshots_installed;
    Status s = n.raft->install_snapshot_done(meta.index, Status::ok_status());
    COFFER_CHECK(s.ok(), "sim: install_snapshot_done refused: " + s.to_string());
}

void Simulator::on_role_change(SimNode& n, Role role) {
    if (role != Role::kLeader) {
        return;
    }
    ++stats_.elections;
    Term term = n.raft->term();
    auto [it, inserted] = leader_of_term_.emplace(term, n.id);
    if (!inserted && it->second != n.id) {
        fail("two leaders in term " + std::to_string(term) + ": " + it->second + " and " + n.id);
        return;
    }
    check_leader_completeness(n);
    const FaultOptions& f = options_.faults;
    if (f.enabled && rng_.chance(f.crash_new_leader)) {
        crash_at_ms_[n.id] = now_ms_ + rng_.below(f.max_leader_crash_delay_ms + 1);
    } else if (f.enabled && rng_.chance(f.isolate_new_leader)) {
        // The new leader is cut off before its first entries leave: its term ends with a
        // tail nobody else holds, and it comes back later with it.
        ++stats_.partitions;
        std::vector<NodeId> rest;
        std::copy_if(ids_.begin(), ids_.end(), std::back_inserter(rest),
                     [&n](const NodeId& id) { return id != n.id; });
        partition({{n.id}, rest});
        heal_at_ms_ = now_ms_ + 1 + rng_.below(f.max_partition_ms);
    }
    n.last_signature_ms = now_ms_;
    if (options_.load.sign_on_election) {
        auto sig = n.raft->propose(to_bytes("sig-election"), true);
        if (sig.ok()) {
            ++stats_.proposals;
        }
    }
}

void Simulator::check_leader_completeness(SimNode& n) {
    // Raft §5.4.1: a leader holds every committed entry.
    const RaftLog& log = n.raft->log();
    Index committed = committed_hash_.size();
    if (log.last_index() < committed) {
        fail("leader " + n.id + " of term " + std::to_string(n.raft->term()) +
             " lacks committed "
             "entries (" +
             std::to_string(log.last_index()) + " < " + std::to_string(committed) + ")");
        return;
    }
    for (Index i = log.base_index() + 1; i <= committed; ++i) {
        if (entry_hash(log.at(i)) != committed_hash_[i - 1]) {
            fail("leader " + n.id + " of term " + std::to_string(n.raft->term()) +
                 " holds a different entry at committed index " + std::to_string(i));
            return;
        }
    }
}

// ---- Network --------------------------------------------------------------------------------

bool Simulator::linked(const NodeId& from, const NodeId& to) const {
    return blocked_.count({from, to}) == 0;
}

void Simulator::send_all(std::vector<Message> messages) {
    for (Message& msg : messages) {
        if (network_.size() >= kMaxInFlightMessages) {
            ++stats_.dropped;
            continue;
        }
        const FaultOptions& f = options_.faults;
        if (f.enabled && rng_.chance(f.drop)) {
            ++stats_.dropped;
            continue;
        }
        uint64_t delay = f.enabled ? 1 + rng_.below(f.max_delay_ms) : 1;
        if (f.enabled && rng_.chance(f.duplicate)) {
            ++stats_.duplicated;
            uint64_t dup_delay = 1 + rng_.below(f.max_delay_ms * 2);
            network_.emplace(std::make_pair(now_ms_ + dup_delay, next_message_seq_++), msg);
        }
        network_.emplace(std::make_pair(now_ms_ + delay, next_message_seq_++), std::move(msg));
    }
}

void Simulator::deliver_due() {
    while (!network_.empty() && network_.begin()->first.first <= now_ms_) {
        Message msg = std::move(network_.begin()->second);
        network_.erase(network_.begin());
        if (!linked(msg.from, msg.to) || !is_up(msg.to)) {
            ++stats_.dropped;
            continue;
        }
        // Every message crosses the real codec, as it would cross a socket.
        auto decoded = decode_message(encode_message(msg));
        if (!decoded.ok() || !(decoded.value() == msg)) {
            fail("message codec round trip failed: " + decoded.status().to_string());
            return;
        }
        ++stats_.delivered;
        SimNode& n = at(msg.to);
        Status s = n.raft->receive(decoded.value());
        if (!s.ok()) {
            fail("node " + n.id + " rejected a message from honest peer " + msg.from + ": " +
                 s.to_string());
        }
        process(n);
    }
}

Status Simulator::inject(const Message& msg) {
    if (!is_up(msg.to)) {
        return error(Errc::kFailedPrecondition, "sim: inject to a node that is down");
    }
    SimNode& n = at(msg.to);
    Status s = n.raft->receive(msg);
    process(n);
    return s;
}

// ---- Disks ----------------------------------------------------------------------------------

void Simulator::complete_flush(SimNode& n) {
    auto durable = n.disk.flush();
    COFFER_CHECK(durable.ok(), "sim: memory log flush failed");
    n.flush_at_ms.reset();
    n.raft->on_flushed(durable.value());
    process(n);
    if (n.raft) {
        n.disk.save_commit(n.raft->commit_index());
    }
}

void Simulator::flush_due() {
    for (const NodeId& id : ids_) {
        SimNode& n = at(id);
        if (n.raft && n.flush_at_ms && *n.flush_at_ms <= now_ms_ && !n.hold_flush) {
            complete_flush(n);
        }
    }
}

Status Simulator::flush_now(const NodeId& id) {
    SimNode& n = at(id);
    if (!n.raft) {
        return error(Errc::kFailedPrecondition, "sim: flush on a node that is down");
    }
    complete_flush(n);
    return Status::ok_status();
}

void Simulator::hold_flushes(const NodeId& id, bool hold) {
    at(id).hold_flush = hold;
}

Status Simulator::crash(const NodeId& id, bool tear) {
    SimNode& n = at(id);
    if (!n.raft) {
        return error(Errc::kFailedPrecondition, "sim: node already down: " + id);
    }
    if (tear && n.disk.has_unflushed()) {
        // The last write was cut short: a strict prefix of the unflushed writes reached the
        // disk (the torn frame itself is discarded by recovery).
        n.disk.crash_torn(rng_.next());
        ++stats_.torn_writes;
    } else {
        n.disk.crash();
    }
    if (n.disk.commit_index() > n.disk.last()) {
        fail("durable commit point of " + id + " beyond its durable log");
    }
    n.raft.reset();
    n.flush_at_ms.reset();
    n.hold_flush = false;
    ++stats_.crashes;
    return Status::ok_status();
}

Status Simulator::restart(const NodeId& id) {
    SimNode& n = at(id);
    if (n.raft) {
        return error(Errc::kFailedPrecondition, "sim: node is running: " + id);
    }
    restart_at_ms_.erase(id);
    Status s = start_node(n);
    if (!s.ok()) {
        fail(s.to_string());
    }
    return s;
}

// ---- Partitions -----------------------------------------------------------------------------

void Simulator::partition(const std::vector<std::vector<NodeId>>& groups) {
    blocked_.clear();
    std::map<NodeId, size_t> group_of;
    for (size_t g = 0; g < groups.size(); ++g) {
        for (const NodeId& id : groups[g]) {
            group_of[id] = g;
        }
    }
    for (const NodeId& a : ids_) {
        for (const NodeId& b : ids_) {
            if (a != b && group_of.count(a) && group_of.count(b) && group_of[a] != group_of[b]) {
                blocked_.insert({a, b});
            }
        }
    }
}

void Simulator::block(const NodeId& from, const NodeId& to) {
    blocked_.insert({from, to});
}

void Simulator::heal() {
    blocked_.clear();
}

// ---- Client operations ----------------------------------------------------------------------

Result<Index> Simulator::propose(const NodeId& id, std::string_view value, bool is_signature) {
    SimNode& n = at(id);
    if (!n.raft) {
        return error(Errc::kFailedPrecondition, "sim: node is down: " + id);
    }
    auto index = n.raft->propose(to_bytes(value), is_signature);
    process(n);
    if (index.ok()) {
        ++stats_.proposals;
    }
    return index;
}

Result<Index> Simulator::propose_configuration(const NodeId& id,
                                               const std::vector<NodeId>& voters) {
    SimNode& n = at(id);
    if (!n.raft) {
        return error(Errc::kFailedPrecondition, "sim: node is down: " + id);
    }
    COFFER_ASSIGN_OR_RETURN(Configuration config, make_configuration(voters));
    auto index = n.raft->propose_configuration(config);
    process(n);
    return index;
}

Status Simulator::campaign(const NodeId& id) {
    SimNode& n = at(id);
    if (!n.raft) {
        return error(Errc::kFailedPrecondition, "sim: node is down: " + id);
    }
    Status s = n.raft->campaign();
    process(n);
    return s;
}

Status Simulator::compact(const NodeId& id) {
    SimNode& n = at(id);
    if (!n.raft) {
        return error(Errc::kFailedPrecondition, "sim: node is down: " + id);
    }
    Index index = std::min(n.applied, n.disk.commit_index());
    if (index <= n.raft->log().base_index()) {
        return error(Errc::kFailedPrecondition, "sim: nothing to compact on " + id);
    }
    Bytes data = encode_sim_snapshot(index, committed_chain_[index - 1]);
    SnapshotMeta meta{index, *n.raft->log().term_at(index), n.raft->log().configuration_at(index)};
    COFFER_RETURN_IF_ERROR(n.raft->compact(index, data));
    // The snapshot is written and synced; the log prefix it covers can go.
    COFFER_RETURN_IF_ERROR(n.disk.compact(meta, std::move(data)));
    ++stats_.compactions;
    return Status::ok_status();
}

std::string Simulator::describe() {
    std::string text = "t=" + std::to_string(now_ms_);
    for (const NodeId& id : ids_) {
        RaftNode* n = node(id);
        text += " | " + id + ":";
        if (n == nullptr) {
            text += "down";
            continue;
        }
        text += std::string(role_name(n->role())).substr(0, 1) + " t" + std::to_string(n->term()) +
                " " + std::to_string(n->log().last_index()) + "/" +
                std::to_string(n->durable_index()) + "/" + std::to_string(n->commit_index()) +
                " cfg" + std::to_string(n->configuration().voters.size()) + "@" +
                std::to_string(n->log().configuration_index()) +
                (n->is_voter() ? "" : " non-voter");
    }
    return text;
}

// ---- Steps ----------------------------------------------------------------------------------

Status Simulator::step() {
    if (stats_.steps == 0) {
        for (const NodeId& id : ids_) {
            SimNode& n = at(id);
            if (!n.raft) {
                COFFER_RETURN_IF_ERROR(start_node(n));
            }
        }
    }
    ++stats_.steps;
    now_ms_ += options_.step_ms;
    if (options_.faults.enabled) {
        inject_faults();
    }
    deliver_due();
    for (const NodeId& id : ids_) {
        SimNode& n = at(id);
        if (n.raft) {
            n.raft->tick(now_ms_);
            process(n);
        }
    }
    flush_due();
    drive_load();
    if (options_.faults.enabled) {
        maybe_compact();
        maybe_reconfigure();
    }
    return check_step();
}

Status Simulator::run_for(uint64_t ms) {
    uint64_t end = now_ms_ + ms;
    while (now_ms_ < end) {
        COFFER_RETURN_IF_ERROR(step());
    }
    return Status::ok_status();
}

// A view of one log that a node could lead with: its memory log, or its durable log (what it
// would restart with). Both are states the node's log has actually been in.
struct LogView {
    LogPosition signed_pos;
    Index base = 0;
    Index last = 0;
    std::function<uint64_t(Index)> hash_at;
};

void Simulator::check_committed_safe() {
    // Raft's safety argument in executable form: every log that could win an election (its
    // last signed position is at least that of a majority's weakest state) holds the newest
    // committed entry. A violation means a committed entry can be lost, even if no crash in
    // this run happens to lose it. Checked while the membership is the bootstrap one.
    if (committed_hash_.empty()) {
        return;
    }
    std::vector<LogView> views;
    std::vector<std::pair<size_t, LogPosition>> weakest;  // (node, min position)
    for (size_t k = 0; k < ids_.size(); ++k) {
        SimNode& n = at(ids_[k]);
        const MemoryLogStore& d = n.disk;
        LogPosition weak = d.last_signed();
        views.push_back(
            LogView{weak, d.base(), d.last(), [&d](Index i) { return entry_hash(d.at(i)); }});
        if (n.raft) {
            if (!(n.raft->configuration() == bootstrap_)) {
                return;
            }
            const RaftLog& log = n.raft->log();
            weak = std::min(weak, log.last_signed());
            views.push_back(LogView{log.last_signed(), log.base_index(), log.last_index(),
                                    [&log](Index i) { return entry_hash(log.at(i)); }});
        }
        weakest.emplace_back(k, weak);
        (void)k;
    }
    Index newest = committed_hash_.size();
    size_t view_index = 0;
    for (size_t k = 0; k < ids_.size(); ++k) {
        size_t own_views = at(ids_[k]).raft ? 2 : 1;
        for (size_t v = 0; v < own_views; ++v, ++view_index) {
            const LogView& view = views[view_index];
            size_t supporters = 1;
            for (const auto& [other, pos] : weakest) {
                supporters += other != k && pos <= view.signed_pos ? 1 : 0;
            }
            if (supporters < bootstrap_.quorum() || newest <= view.base) {
                continue;
            }
            if (newest > view.last || view.hash_at(newest) != committed_hash_[newest - 1]) {
                fail("committed entry " + std::to_string(newest) + " could be lost: " + ids_[k] +
                     (v == 0 ? " (durable log)" : " (memory log)") +
                     " could win an election without it");
                return;
            }
        }
    }
}

Status Simulator::check_step() {
    if (!violation_.ok()) {
        return violation_;
    }
    check_committed_safe();
    for (const NodeId& id : ids_) {
        SimNode& n = at(id);
        if (n.raft && n.raft->commit_index() > n.raft->log().last_index()) {
            fail("node " + id + " commit index beyond its log");
        }
    }
    return violation_;
}

void Simulator::drive_load() {
    const LoadOptions& load = options_.load;
    for (const NodeId& id : ids_) {
        SimNode& n = at(id);
        if (!n.raft || n.raft->role() != Role::kLeader) {
            continue;
        }
        if (load.auto_propose && rng_.chance(load.propose_per_step)) {
            std::string value =
                "v" + std::to_string(options_.seed) + "-" + std::to_string(++proposal_counter_);
            if (n.raft->propose(to_bytes(value), false).ok()) {
                ++stats_.proposals;
            }
        }
        // Like the ledger: sign after N unsigned entries (configuration entries included) or
        // T ms after the last signature.
        const RaftLog& log = n.raft->log();
        uint64_t unsigned_entries = log.last_index() - log.last_signed().index;
        bool due =
            unsigned_entries >= load.signature_every_entries ||
            (unsigned_entries > 0 && now_ms_ - n.last_signature_ms >= load.signature_interval_ms);
        if (load.periodic_signatures && due && n.raft->propose(to_bytes("sig"), true).ok()) {
            ++stats_.proposals;
            n.last_signature_ms = now_ms_;
        }
        if (load.auto_propose && rng_.chance(load.read_per_step)) {
            auto read = n.raft->request_read();
            if (read.ok()) {
                read_floor_[{id, read.value()}] = committed_hash_.size();
            }
        }
        process(n);
    }
}

void Simulator::maybe_compact() {
    for (const NodeId& id : ids_) {
        SimNode& n = at(id);
        if (!n.raft || !rng_.chance(options_.faults.compact_per_step)) {
            continue;
        }
        Index index = std::min(n.applied, n.disk.commit_index());
        if (index >= n.raft->log().base_index() + options_.faults.compact_min_entries) {
            Status s = compact(id);
            if (!s.ok()) {
                fail("compaction on " + id + " failed: " + s.to_string());
            }
        }
    }
}

void Simulator::maybe_reconfigure() {
    if (rng_.chance(options_.faults.reconfigure_per_step) && propose_membership_change(false)) {
        ++stats_.reconfigurations;
    }
}

bool Simulator::propose_membership_change(bool restore) {
    auto lead = leader();
    if (!lead) {
        return false;
    }
    RaftNode* n = node(*lead);
    std::vector<NodeId> voters = n->configuration().voters;
    if (voters.size() < bootstrap_.voters.size()) {
        voters = bootstrap_.voters;  // add the missing node back
    } else if (!restore) {
        voters.erase(voters.begin() + static_cast<long>(rng_.below(voters.size())));
    } else {
        return false;
    }
    return propose_configuration(*lead, voters).ok();
}

void Simulator::run_fault_timers() {
    const FaultOptions& f = options_.faults;
    for (auto it = restart_at_ms_.begin(); it != restart_at_ms_.end();) {
        NodeId id = it->first;
        bool due = it->second <= now_ms_;
        ++it;
        if (due) {
            (void)restart(id);
        }
    }
    for (auto it = crash_at_ms_.begin(); it != crash_at_ms_.end();) {
        NodeId id = it->first;
        bool due = it->second <= now_ms_;
        it = due ? crash_at_ms_.erase(it) : std::next(it);
        if (due && is_up(id)) {
            (void)crash(id, rng_.chance(f.tear_on_crash));
            restart_at_ms_[id] =
                now_ms_ + f.min_down_ms + rng_.below(f.max_down_ms - f.min_down_ms);
        }
    }
    if (heal_at_ms_ != 0 && heal_at_ms_ <= now_ms_) {
        heal();
        heal_at_ms_ = 0;
    }
}

void Simulator::inject_faults() {
    const FaultOptions& f = options_.faults;
    run_fault_timers();
    if (rng_.chance(f.power_loss_per_step)) {
        ++stats_.power_losses;
        uint64_t back = now_ms_ + f.min_down_ms + rng_.below(f.max_down_ms - f.min_down_ms);
        for (const NodeId& id : ids_) {
            if (is_up(id)) {
                (void)crash(id, rng_.chance(f.tear_on_crash));
                restart_at_ms_[id] = back;
            }
        }
    }
    for (const NodeId& id : ids_) {
        if (is_up(id) && rng_.chance(f.crash_per_step)) {
            (void)crash(id, rng_.chance(f.tear_on_crash));
            restart_at_ms_[id] =
                now_ms_ + f.min_down_ms + rng_.below(f.max_down_ms - f.min_down_ms);
        }
    }
    if (heal_at_ms_ == 0 && rng_.chance(f.partition_per_step)) {
        start_partition();
    }
}

void Simulator::start_partition() {
    const FaultOptions& f = options_.faults;
    heal_at_ms_ = now_ms_ + 1 + rng_.below(f.max_partition_ms);
    if (rng_.chance(0.3)) {
        ++stats_.one_way_partitions;
        const NodeId& from = ids_[rng_.below(ids_.size())];
        const NodeId& to = ids_[rng_.below(ids_.size())];
        if (from != to) {
            block(from, to);
        }
        return;
    }
    ++stats_.partitions;
    std::vector<std::vector<NodeId>> groups(2);
    auto lead = leader();
    bool isolate_leader = lead && rng_.chance(f.isolate_leader);
    for (const NodeId& id : ids_) {
        // Cutting the leader off is the partition that ends terms with unreplicated
        // tails, where commit-rule bugs live.
        size_t group = isolate_leader ? (id == *lead ? 0 : 1) : rng_.below(2);
        groups[group].push_back(id);
    }
    partition(groups);
}

Status Simulator::run_chaos(uint64_t chaos_ms, uint64_t liveness_ms) {
    options_.faults.enabled = true;
    options_.load.auto_propose = true;
    options_.load.periodic_signatures = true;
    COFFER_RETURN_IF_ERROR(run_for(chaos_ms));

    // Heal: no more faults; every node back and reachable.
    options_.faults.enabled = false;
    heal();
    heal_at_ms_ = 0;
    crash_at_ms_.clear();
    for (const NodeId& id : ids_) {
        if (!is_up(id)) {
            COFFER_RETURN_IF_ERROR(restart(id));
        }
    }
    uint64_t heal_start = now_ms_;
    options_.load.auto_propose = false;

    // Liveness: a leader emerges, and an entry proposed after the heal commits everywhere.
    std::string marker;
    std::optional<Index> marker_index;
    Term marker_term = 0;
    int attempts = 0;
    auto done = [&]() {
        auto lead = leader();
        if (lead && !(node(*lead)->configuration() == bootstrap_)) {
            propose_membership_change(true);  // every node is a voter again before the check
            return false;
        }
        if (lead && (!marker_index || node(*lead)->term() != marker_term) &&
            !(marker_index && value_committed(marker))) {
            // (Re)propose under the current leader: a marker proposed under an earlier one
            // may have been discarded with its unsigned tail.
            marker = "heal-" + std::to_string(options_.seed) + "-" + std::to_string(++attempts);
            auto index = propose(*lead, marker, false);
            if (index.ok() && propose(*lead, "sig-heal", true).ok()) {
                marker_index = index.value();
                marker_term = node(*lead)->term();
            }
        }
        if (!marker_index || !value_committed(marker)) {
            return false;
        }
        for (const NodeId& id : ids_) {
            RaftNode* r = node(id);
            if (r->is_voter() && r->commit_index() < *marker_index) {
                return false;
            }
        }
        return true;
    };
    Status live = run_until(done, liveness_ms, "a leader and a committed entry after heal");
    if (!live.ok()) {
        return error(Errc::kInternal, "liveness violated " + std::to_string(now_ms_ - heal_start) +
                                          "ms after heal: " + live.message() + "; " + describe());
    }
    return Status::ok_status();
}

}  // namespace coffer::consensus::sim
