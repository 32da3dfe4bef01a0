#include "node/replicator.h"

#include <chrono>
#include <random>

#include "common/log.h"
#include "ledger/signature.h"

namespace coffer::node {

namespace {

uint64_t steady_now_ms() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}

bool writes_signature(const kv::WriteSet& ws) {
    return ws.maps.count(std::string(ledger::kSignaturesMap)) != 0;
}

// Entries must be ledger entries whose own header and contents say the same index, term and
// kind as the message. Checked before Raft takes the message: Raft keeps what it accepted in
// memory, so storage must not be the first to find a malformed entry. (The cryptographic
// checks still happen in Ledger::append_replicated; a failure there stops the node.)
Status check_entries(const consensus::Message& msg, uint64_t recovery_base) {
    const auto* append = std::get_if<consensus::AppendEntries>(&msg.body);
    if (append == nullptr) {
        return Status::ok_status();
    }
    for (const consensus::Entry& e : append->entries) {
        auto parsed = raft_entry_of(e.payload, recovery_base);
        if (!parsed.ok()) {
            return parsed.status().with_context("entry " + std::to_string(e.index) + ": ");
        }
        if (parsed->index != e.index || parsed->term != e.term || parsed->kind != e.kind) {
            return error(Errc::kInvalidArgument, "entry " + std::to_string(e.index) +
                                                     ": index, term or kind differ from its bytes");
        }
    }
    return Status::ok_status();
}

}  // namespace

Replicator::Replicator(ReplicatorOptions options, kv::Store& store, ledger::Ledger& ledger,
                       PeerTransport& transport, const RaftStateFile& state, FatalHandler on_fatal)
    : options_(std::move(options)),
      store_(store),
      ledger_(ledger),
      transport_(transport),
      log_store_(ledger, options_.data_dir, state.bootstrap, state.recovery_base),
      recovery_base_(state.recovery_base),
      on_fatal_(std::move(on_fatal)) {}

Replicator::~Replicator() {
    stop();
}

Result<std::unique_ptr<Replicator>> Replicator::start(ReplicatorOptions options, kv::Store& store,
                                                      ledger::Ledger& ledger,
                                                      PeerTransport& transport,
                                                      const RaftStateFile& state,
                                                      FatalHandler on_fatal) {
    COFFER_ASSIGN_OR_RETURN(consensus::RecoveredState recovered, recover_raft_state(ledger, state));
    consensus::RaftOptions raft;
    raft.id = options.node_id;
    raft.election_timeout_min_ms = options.election_timeout_min_ms;
    raft.election_timeout_max_ms = options.election_timeout_max_ms;
    raft.heartbeat_interval_ms = options.heartbeat_interval_ms;
    raft.random_seed = std::random_device{}();
    raft.configuration_decoder = configuration_of_entry;
    COFFER_ASSIGN_OR_RETURN(
        auto node, consensus::RaftNode::create(raft, std::move(recovered), steady_now_ms()));
    std::unique_ptr<Replicator> r(
        new Replicator(std::move(options), store, ledger, transport, state, std::move(on_fatal)));
    r->raft_ = std::move(node);
    {
        std::lock_guard lock(r->raft_mu_);
        r->raft_->on_flushed(ledger.durable_seqno());
    }
    store.set_commit_hook(r.get());
    Replicator* self = r.get();
    r->thread_ = std::thread([self] { self->loop(); });
    spdlog::info(
        "replication.started node_id={} term={} last_seqno={} committed_seqno={} "
        "voters={}",
        self->options_.node_id, state.hard_state.term, ledger.last_seqno(), ledger.committed(),
        self->status().configuration.voters.size());
    return r;
}

void Replicator::stop() {
    {
        std::lock_guard lock(wake_mu_);
        if (stopping_) {
            return;
        }
        stopping_ = true;
    }
    wake_cv_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
    leader_ready_.store(false);
    stopped_.store(true);
    notify_waiters();
    // The ledger takes its own commits again (a stopping node signs its tail through it).
    store_.set_commit_hook(&ledger_);
}

Status Replicator::on_commit(kv::TxId id, const kv::WriteSet& ws) {
    std::lock_guard lock(raft_mu_);
    if (raft_->role() != consensus::Role::kLeader || failed_.load()) {
        return error(Errc::kFailedPrecondition,
                     "not leader; leader=" + raft_->leader().value_or(std::string("unknown")));
    }
    if (id.view != raft_->term() || id.seqno != raft_->log().last_index() + 1) {
        return error(Errc::kFailedPrecondition, "not leader: leadership of term " +
                                                    std::to_string(raft_->term()) +
                                                    " is not ready yet");
    }
    COFFER_ASSIGN_OR_RETURN(std::optional<consensus::Configuration> config, configuration_in(ws));
    if (config.has_value()) {
        COFFER_RETURN_IF_ERROR(raft_->check_propose_configuration(*config));
    } else {
        COFFER_RETURN_IF_ERROR(raft_->check_propose());
    }
    COFFER_RETURN_IF_ERROR(ledger_.on_commit(id, ws));

    auto bytes = ledger_.entry_bytes(id.seqno);
    COFFER_CHECK(bytes.ok(), "an entry the ledger just buffered must be readable");
    Result<consensus::Index> index =
        config.has_value() ? raft_->propose_configuration(*config, std::move(bytes).value())
                           : raft_->propose(std::move(bytes).value(), writes_signature(ws));
    COFFER_CHECK(index.ok() && *index == id.seqno,
                 "Raft refused an entry it had accepted a moment before");
    wake();
    return Status::ok_status();
}

void Replicator::deliver(consensus::Message msg) {
    {
        std::lock_guard lock(wake_mu_);
        if (stopping_ || inbound_.size() >= kMaxInboundMessages) {
            return;
        }
        inbound_.push_back(std::move(msg));
        work_ = true;
    }
    wake_cv_.notify_one();
}

void Replicator::wake() {
    {
        std::lock_guard lock(wake_mu_);
        work_ = true;
    }
    wake_cv_.notify_one();
}

Status Replicator::campaign() {
    {
        std::lock_guard lock(raft_mu_);
        COFFER_RETURN_IF_ERROR(raft_->campaign());
    }
    wake();
    return Status::ok_status();
}

void Replicator::loop() {
    std::unique_lock lock(wake_mu_);
    while (!stopping_) {
        wake_cv_.wait_for(lock, std::chrono::milliseconds(kReplicationTickMs),
                          [this] { return stopping_ || work_; });
        if (stopping_) {
            break;
        }
        work_ = false;
        std::vector<consensus::Message> inbound = std::move(inbound_);
        inbound_.clear();
        lock.unlock();
        if (!failed_.load()) {
            step(std::move(inbound));
        }
        lock.lock();
    }
    lock.unlock();
    if (!failed_.load()) {
        auto flushed = ledger_.flush();
        if (!flushed.ok()) {
            spdlog::error("replication.final_flush_failed error={}", flushed.status().to_string());
        }
    }
}

void Replicator::step(std::vector<consensus::Message> inbound) {
    consensus::Output out;
    consensus::Term term = 0;
    {
        std::lock_guard lock(raft_mu_);
        raft_->advance_clock(steady_now_ms());
        for (const consensus::Message& m : inbound) {
            Status received = check_entries(m, recovery_base_);
            if (received.ok()) {
                received = raft_->receive(m);
            }
            if (!received.ok()) {
                spdlog::warn("replication.message_rejected from={} error={}", m.from,
                             received.to_string());
            }
        }
        raft_->tick(steady_now_ms());
        out = raft_->take_output();
        term = raft_->term();
    }
    process(std::move(out), term);

    // A leader signs here when a signature is due (ledger.h maybe_sign: the interval, or the
    // previous signature has committed), so that the signature goes out and is flushed
    // together with the entries it covers: one replication round commits them.
    if (leader_ready_.load() && !failed_.load()) {
        Status signed_now = ledger_.maybe_sign();
        if (!signed_now.ok() && signed_now.code() != Errc::kConflict) {
            spdlog::debug("replication.sign_failed error={}", signed_now.to_string());
        }
    }

    // Group commit: one flush covers every entry appended since the last one.
    if (!failed_.load() && ledger_.last_seqno() > ledger_.durable_seqno()) {
        auto flushed = log_store_.flush();
        if (!flushed.ok()) {
            fatal(flushed.status().with_context("ledger flush: "));
            return;
        }
    }
    // Raft is told whenever the ledger holds more durably than Raft knows of. Comparing with
    // the last value reported instead would miss entries rewritten after a truncation (which
    // lowers Raft's durable index) that bring the ledger back to that same value: the node
    // would then never acknowledge them, nor a leader count itself, until a later entry.
    if (failed_.load()) {
        return;
    }
    consensus::Index durable = ledger_.durable_seqno();
    {
        std::lock_guard lock(raft_mu_);
        if (durable <= raft_->durable_index()) {
            return;
        }
        raft_->on_flushed(durable);
        out = raft_->take_output();
        term = raft_->term();
    }
    process(std::move(out), term);
}

void Replicator::process(consensus::Output out, consensus::Term term) {
    if (failed_.load()) {
        return;
    }
    if (out.hard_state.has_value()) {
        Status saved = log_store_.save_hard_state(*out.hard_state);
        if (!saved.ok()) {
            fatal(saved.with_context("saving the term and vote: "));
            return;
        }
    }
    Status applied = consensus::apply_log_ops(log_store_, out.log_ops);
    if (!applied.ok()) {
        fatal(applied.with_context("applying log operations to the ledger: "));
        return;
    }
    for (consensus::Message& m : out.messages) {
        transport_.send(std::move(m));
    }
    if (out.commit_index.has_value() && *out.commit_index > ledger_.committed()) {
        Status committed = ledger_.commit_to(*out.commit_index);
        if (!committed.ok()) {
            fatal(committed.with_context("moving the commit point: "));
            return;
        }
    }
    if (out.snapshot_to_install.has_value()) {
        std::lock_guard lock(raft_mu_);
        (void)raft_->install_snapshot_done(out.snapshot_to_install->index,
                                           error(Errc::kUnsupported, "snapshots not supported"));
    }
    if (!out.reads.empty() || !out.reads_failed.empty() || out.commit_index.has_value()) {
        std::lock_guard lock(wait_mu_);
        for (const consensus::ReadReady& r : out.reads) {
            auto it = reads_.find(r.read_id);
            if (it != reads_.end()) {
                it->second = r.read_index;
            }
        }
        for (uint64_t id : out.reads_failed) {
            if (reads_.count(id) != 0) {
                failed_reads_[id] = true;
            }
        }
    }
    if (out.role_changed.has_value()) {
        spdlog::info("replication.role_changed node_id={} role={} term={}", options_.node_id,
                     consensus::role_name(*out.role_changed), term);
        if (*out.role_changed == consensus::Role::kLeader) {
            become_ready_leader(term);
        } else {
            leader_ready_.store(false);
        }
    }
    notify_waiters();
}

void Replicator::become_ready_leader(consensus::Term term) {
    if (store_.view() > term) {
        fatal(error(Errc::kCorrupt, "the store's view " + std::to_string(store_.view()) +
                                        " is above the new term " + std::to_string(term)));
        return;
    }
    store_.set_view(term);
    leader_ready_.store(true);
    // Nothing of the new term commits before a signature entry of it does (CCF writes one at
    // once too); the ledger signs over everything it holds.
    if (ledger_.last_seqno() == 0) {
        return;  // a new network: its genesis transaction comes first
    }
    Status signed_now = ledger_.sign_now();
    if (!signed_now.ok()) {
        spdlog::warn("replication.first_signature_failed term={} error={}", term,
                     signed_now.to_string());
    }
}

void Replicator::fatal(const Status& status) {
    if (failed_.exchange(true)) {
        return;
    }
    leader_ready_.store(false);
    spdlog::error("replication.failed node_id={} error={}", options_.node_id, status.to_string());
    notify_waiters();
    if (on_fatal_) {
        on_fatal_(status);
    }
}

void Replicator::notify_waiters() {
    { std::lock_guard lock(wait_mu_); }
    wait_cv_.notify_all();
}

ReplicationStatus Replicator::status() const {
    std::lock_guard lock(raft_mu_);
    ReplicationStatus s;
    s.role = raft_->role();
    s.term = raft_->term();
    s.leader = raft_->leader();
    s.commit_index = raft_->commit_index();
    s.configuration = raft_->configuration();
    s.leader_ready = leader_ready_.load();
    return s;
}

consensus::RaftStats Replicator::raft_stats() const {
    std::lock_guard lock(raft_mu_);
    return raft_->stats();
}

Status Replicator::wait_leader_ready(uint64_t timeout_ms) {
    std::unique_lock lock(wait_mu_);
    bool ready = wait_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] {
        return leader_ready_.load() || failed_.load() || stopped_.load();
    });
    if (!ready || !leader_ready_.load()) {
        return error(Errc::kFailedPrecondition, "this node did not become leader in time");
    }
    return Status::ok_status();
}

Status Replicator::wait_committed(kv::Seqno seqno, uint64_t timeout_ms) {
    std::unique_lock lock(wait_mu_);
    bool done = wait_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
        return store_.committed() >= seqno || failed_.load() || stopped_.load();
    });
    if (!done || store_.committed() < seqno) {
        return error(Errc::kFailedPrecondition,
                     "seqno " + std::to_string(seqno) + " did not commit in time");
    }
    return Status::ok_status();
}

Result<kv::Seqno> Replicator::linearizable_read_point(uint64_t timeout_ms) {
    uint64_t id = 0;
    {
        std::lock_guard lock(raft_mu_);
        if (!leader_ready_.load()) {
            return error(Errc::kFailedPrecondition, "not leader");
        }
        std::lock_guard wait_lock(wait_mu_);  // after raft_mu_, as everywhere
        if (reads_.size() >= kMaxWaitingReads) {
            return error(Errc::kResourceExhausted, "too many reads waiting for their read index");
        }
        COFFER_ASSIGN_OR_RETURN(id, raft_->request_read());
        reads_[id] = std::nullopt;
    }
    wake();
    std::unique_lock lock(wait_mu_);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    bool confirmed = wait_cv_.wait_until(lock, deadline, [&] {
        return reads_[id].has_value() || failed_reads_.count(id) != 0 || failed_.load() ||
               stopped_.load();
    });
    std::optional<consensus::Index> index = reads_[id];
    bool lost = failed_reads_.count(id) != 0;
    reads_.erase(id);
    failed_reads_.erase(id);
    if (!confirmed || lost || !index.has_value()) {
        return error(Errc::kFailedPrecondition,
                     "the read could not be confirmed by a majority (leadership lost or timeout)");
    }
    bool applied = wait_cv_.wait_until(lock, deadline, [&] {
        return store_.committed() >= *index || failed_.load() || stopped_.load();
    });
    if (!applied || store_.committed() < *index) {
        return error(Errc::kFailedPrecondition, "the read index did not commit in time");
    }
    return store_.committed();
}

}  // namespace coffer::node
