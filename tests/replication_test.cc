// Replication on real processes: a network of three nodes under a concurrent client load
// while the leader is SIGKILLed and SIGSTOPped at moments drawn from a printed seed
// (COFFER_REPL_SEED replays a run). What the clients saw is judged by the linearizability
// checker (docs/linearizability.md); at the end every node must serve the same state and the
// ledgers must verify and agree on their common committed prefix. Smaller tests cover the
// redirect of writes to the leader, refused join requests, and a restarted follower's
// catch-up.
#include <signal.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "ledger/chunk_store.h"
#include "ledger/file_system.h"
#include "lincheck/checker.h"
#include "lincheck/history.h"
#include "lincheck/history_json.h"
#include "tests/network_fixture.h"

namespace coffer::e2e {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kClients = 8;
constexpr int kKeys = 20;
constexpr int kLeaderKills = 3;
constexpr int kPauses = 1;
// Bound on each client request. Below the pause length, so that a write sent to a paused
// leader times out with an unknown outcome.
constexpr int kClientTimeoutMs = 1200;
// GET /node/tx long poll, below kClientTimeoutMs.
constexpr int kTxWaitMs = 600;
// How long a client pursues one operation before it records its outcome as unknown.
constexpr int kOpDeadlineMs = 8000;
// Redirects one attempt follows before it asks the leader watch again.
constexpr int kMaxRedirects = 4;
// How long wait_caught_up looks for the current leader on each poll.
constexpr int kPollWaitMs = 500;
// Load between two faults, and how long a paused node stays paused (above the election
// timeout maximum, 1000 ms).
constexpr int kMinLoadMs = 800;
constexpr int kMaxLoadMs = 2000;
constexpr int kMinPauseMs = 1500;
constexpr int kMaxPauseMs = 2000;
// Delay between observing the new leader and restarting the killed node.
constexpr int kMinDownMs = 200;
constexpr int kMaxDownMs = 800;
// Bounds on the waits of the fault schedule and the final phase.
constexpr int kElectionWaitMs = 15000;
constexpr int kCatchUpWaitMs = 15000;
constexpr int kSettleWaitMs = 20000;
constexpr int kWatchPeriodMs = 30;
// Generous bound on a failover (SIGKILL of the leader to the first acknowledged new write):
// ten election timeouts. Runs on this machine measure 0.6-1.9 s, with outliers of 4-5 s.
constexpr int64_t kMaxFailoverMs = 10000;
// An id that no tracked key uses, for writes outside the history.
constexpr uint64_t kUntrackedId = 1000;

int64_t now_ns() {
    return lincheck::monotonic_now_ns();
}

// Milliseconds since the first call (the start of the test), for the timeline the test prints.
int64_t since_start_ms() {
    static const int64_t start = now_ns();
    return (now_ns() - start) / 1000000;
}

void sleep_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

json parse(const std::string& body) {
    return json::parse(body, nullptr, false);
}

std::string error_message(const std::string& body) {
    json doc = parse(body);
    if (doc.is_object() && doc.contains("error") && doc["error"].is_object()) {
        return doc["error"].value("message", "");
    }
    return "";
}

bool outcome_unknown(const Status& s) {
    return s.message().find("outcome unknown") != std::string::npos;
}

// A 503 that proves the write was not applied: the node refused before its commit hook
// appended anything ("not leader..." from Node::commit or the Replicator, or no leader known).
bool refused_before_append(const net::HttpResponse& r) {
    std::string m = error_message(r.body);
    return r.status == 503 &&
           (m.starts_with("not leader") || m.find("no leader is known") != std::string::npos);
}

uint32_t test_seed() {
    const char* fixed = std::getenv("COFFER_REPL_SEED");
    return fixed != nullptr ? static_cast<uint32_t>(std::stoul(fixed)) : std::random_device{}();
}

json consensus_config() {
    return {{"consensus",
             {{"election_timeout_min_ms", 500},
              {"election_timeout_max_ms", 1000},
              {"heartbeat_interval_ms", 100}}},
            {"signatures", {{"interval_entries", 100}, {"interval_ms", 20}}}};
}

std::string key_name(int k) {
    return "k" + std::to_string(k);
}

// What the client threads share: the network, the recorder, the leader hint kept by the
// watch thread, and counters.
struct Shared {
    explicit Shared(Network& n) : network(n) {}

    Network& network;
    lincheck::HistoryRecorder recorder;
    std::atomic<bool> stop{false};
    std::atomic<int> leader_hint{-1};
    std::atomic<uint64_t> writes_acked{0};
    std::atomic<uint64_t> writes_unknown{0};
    std::atomic<uint64_t> writes_failed{0};
    std::atomic<uint64_t> reads_ok{0};
    std::atomic<uint64_t> reads_unknown{0};
    std::mutex mu;                                         // guards the members below
    std::vector<std::pair<int64_t, int64_t>> acked_times;  // invoke_ns, complete_ns
    std::vector<std::string> unexpected;                   // answers no correct node gives
    std::map<std::string, int> unknown_reasons;            // why writes ended unknown
    std::map<std::string, int> refusals;                   // 503s that made a write retry

    void note_unknown(const std::string& why) {
        std::lock_guard lock(mu);
        unknown_reasons[why]++;
    }

    void note_unexpected(const std::string& what) {
        std::lock_guard lock(mu);
        unexpected.push_back(std::to_string(since_start_ms()) + " ms: " + what);
    }
};

// Keeps Shared::leader_hint on the node that reports itself leader with the highest term.
void watch_leader(Shared& s) {
    while (!s.stop.load()) {
        int best = -1;
        uint64_t best_term = 0;
        for (int i = 0; i < s.network.size(); ++i) {
            std::optional<NodeStateView> v = s.network.state(i);
            if (v && v->role == "leader" && v->term >= best_term) {
                best = i;
                best_term = v->term;
            }
        }
        if (best >= 0) {
            s.leader_hint = best;
        }
        sleep_ms(kWatchPeriodMs);
    }
}

// One client thread: random writes (unique values) and linearizable reads on kKeys keys,
// each recorded in the history. It follows redirects itself and, on errors, goes back to
// the leader watch's hint. It never repeats a write whose outcome it does not know.
class ChaosClient {
  public:
    ChaosClient(Shared& shared, lincheck::ClientId id, uint32_t seed)
        : s_(shared), id_(id), rng_(seed), clients_(static_cast<size_t>(shared.network.size())) {}

    void run() {
        std::uniform_int_distribution<int> key(0, kKeys - 1);
        while (!s_.stop.load()) {
            int k = key(rng_);
            if (rng_() % 2 == 0) {
                write(k);
            } else {
                read(k);
            }
        }
    }

  private:
    // Sends on this thread's connection to `node`. A failure whose message lacks "outcome
    // unknown" was not sent.
    Result<net::HttpResponse> send(int node, std::string_view method, const std::string& target,
                                   const std::string& body = "") {
        std::unique_ptr<net::HttpClient>& c = clients_[static_cast<size_t>(node)];
        if (!s_.network.node(node).running()) {
            return error(Errc::kIo, "node is down");
        }
        if (c == nullptr) {
            auto made = s_.network.connect(node, &s_.network.user(0), kClientTimeoutMs);
            if (!made.ok()) {
                return made.status();
            }
            c = std::move(made).value();
        }
        auto r = c->request(method, target, body);
        if (!r.ok()) {
            c.reset();
        }
        return r;
    }

    int target_node() {
        int hint = s_.leader_hint.load();
        return hint >= 0 ? hint : static_cast<int>(rng_() % s_.network.size());
    }

    // The node a 307 points to, or -1.
    int redirect_target(const net::HttpResponse& r) {
        return s_.network.index_of_port(port_of_address(r.header("Location").value_or("")));
    }

    void write(int k);
    // Sends the POST until a node takes it. Returns the transaction id and the node that
    // gave it; nullopt after recording the outcome (unknown or failed).
    std::optional<std::pair<std::string, int>> post_write(lincheck::HistoryRecorder::OpHandle op,
                                                          uint64_t id, const std::string& value,
                                                          Clock::time_point deadline);
    // Polls GET /node/tx until Committed or Invalid, or the deadline; records the outcome.
    void await_write(lincheck::HistoryRecorder::OpHandle op, int64_t invoked, const std::string& tx,
                     int node, Clock::time_point deadline);
    void read(int k);

    Shared& s_;
    lincheck::ClientId id_;
    std::mt19937 rng_;
    uint64_t next_value_ = 0;
    std::vector<std::unique_ptr<net::HttpClient>> clients_;
};

void ChaosClient::write(int k) {
    std::string value = "c" + std::to_string(id_) + "-" + std::to_string(next_value_++);
    int64_t invoked = now_ns();
    auto op = s_.recorder.invoke_write(id_, key_name(k), value, invoked);
    ASSERT_TRUE(op.ok());
    auto deadline = Clock::now() + std::chrono::milliseconds(kOpDeadlineMs);
    auto taken = post_write(*op, static_cast<uint64_t>(k), value, deadline);
    if (taken.has_value()) {
        await_write(*op, invoked, taken->first, taken->second, deadline);
    }
}

std::optional<std::pair<std::string, int>> ChaosClient::post_write(
    lincheck::HistoryRecorder::OpHandle op, uint64_t id, const std::string& value,
    Clock::time_point deadline) {
    std::string body = json{{"id", id}, {"msg", value}}.dump();
    int node = target_node();
    int hops = 0;
    // Every pass of this loop that goes round again had an answer proving that the write
    // was not applied; every other answer leaves it.
    std::string unknown_because;
    while (Clock::now() < deadline && !s_.stop.load()) {
        auto r = send(node, "POST", "/app/log/public", body);
        if (!r.ok() && outcome_unknown(r.status())) {
            unknown_because = "no answer to the POST";
            break;
        }
        if (r.ok() && r->status == 200) {
            std::string tx = parse(r->body).value("transaction_id", "");
            if (!tx.empty()) {
                return std::make_pair(tx, node);
            }
            s_.note_unexpected("write 200 without transaction_id: " + r->body);
            unknown_because = "200 without transaction id";
            break;
        }
        if (r.ok() && r->status == 307 && hops < kMaxRedirects && redirect_target(*r) >= 0) {
            node = redirect_target(*r);
            ++hops;
            continue;
        }
        if (r.ok() && r->status != 307 && !refused_before_append(*r)) {
            if (r->status != 503) {
                s_.note_unexpected("write to node " + std::to_string(node) + " answered " +
                                   std::to_string(r->status) + ": " + r->body);
            }
            unknown_because = "POST answered " + std::to_string(r->status) + " " +
                              error_message(r->body).substr(0, 40);
            break;
        }
        if (r.ok() && r->status == 503) {
            std::lock_guard lock(s_.mu);
            s_.refusals["node " + std::to_string(node) + ": " + error_message(r->body)]++;
        }
        hops = 0;
        sleep_ms(20);
        node = target_node();
    }
    if (unknown_because.empty()) {
        EXPECT_TRUE(s_.recorder.complete_failed(op).ok());
        s_.writes_failed++;
    } else {
        EXPECT_TRUE(s_.recorder.complete_unknown(op).ok());
        s_.writes_unknown++;
        s_.note_unknown(unknown_because);
    }
    return std::nullopt;
}

void ChaosClient::await_write(lincheck::HistoryRecorder::OpHandle op, int64_t invoked,
                              const std::string& tx, int node, Clock::time_point deadline) {
    std::string target = "/node/tx?transaction_id=" + tx + "&wait_ms=" + std::to_string(kTxWaitMs);
    while (Clock::now() < deadline) {
        auto r = send(node, "GET", target);
        std::string status = r.ok() && r->status == 200 ? parse(r->body).value("status", "") : "";
        if (status == "Committed") {
            int64_t done = now_ns();
            EXPECT_TRUE(s_.recorder.complete_write_ok(op, done).ok());
            s_.writes_acked++;
            std::lock_guard lock(s_.mu);
            s_.acked_times.emplace_back(invoked, done);
            return;
        }
        if (status == "Invalid") {
            EXPECT_TRUE(s_.recorder.complete_failed(op).ok());
            s_.writes_failed++;
            return;
        }
        if (status.empty() || status == "Unknown") {
            // Down, paused, or it has not received the entry yet: ask another node.
            sleep_ms(20);
            node = target_node() == node ? (node + 1) % s_.network.size() : target_node();
        }
    }
    EXPECT_TRUE(s_.recorder.complete_unknown(op).ok());
    s_.writes_unknown++;
    s_.note_unknown("not Committed nor Invalid before the deadline");
}

void ChaosClient::read(int k) {
    auto op = s_.recorder.invoke_read(id_, key_name(k));
    ASSERT_TRUE(op.ok());
    std::string target = "/app/log/public?id=" + std::to_string(k) + "&consistency=linearizable";
    auto deadline = Clock::now() + std::chrono::milliseconds(kOpDeadlineMs);
    int node = target_node();
    int hops = 0;
    // A read has no effect, so any attempt may be repeated: the answer that is recorded
    // came from an attempt inside the recorded interval.
    while (Clock::now() < deadline && !s_.stop.load()) {
        auto r = send(node, "GET", target);
        if (r.ok() && r->status == 200) {
            EXPECT_TRUE(s_.recorder.complete_read_ok(*op, parse(r->body).value("msg", "")).ok());
            s_.reads_ok++;
            return;
        }
        if (r.ok() && r->status == 404) {
            EXPECT_TRUE(s_.recorder.complete_read_ok(*op, std::nullopt).ok());
            s_.reads_ok++;
            return;
        }
        if (r.ok() && r->status == 307 && hops < kMaxRedirects && redirect_target(*r) >= 0) {
            node = redirect_target(*r);
            ++hops;
            continue;
        }
        if (r.ok() && r->status != 503 && r->status != 307) {
            s_.note_unexpected("read on node " + std::to_string(node) + " answered " +
                               std::to_string(r->status) + ": " + r->body);
        }
        hops = 0;
        sleep_ms(20);
        node = target_node();
    }
    EXPECT_TRUE(s_.recorder.complete_unknown(*op).ok());
    s_.reads_unknown++;
}

// Failover of one leader kill: when it was killed, and who led next.
struct Kill {
    int64_t kill_ns = 0;
    int killed = -1;
    uint64_t old_term = 0;
    int new_leader = -1;
    uint64_t new_term = 0;
    int64_t observed_ns = 0;
};

class ReplicationTest : public ::testing::Test {
  protected:
    virtual NetworkOptions network_options() const {
        NetworkOptions options;
        options.extra_config = consensus_config();
        return options;
    }

    void SetUp() override {
        network_ = std::make_unique<Network>(dir_.path());
        NetworkOptions options = network_options();
        std::string why;
        ASSERT_TRUE(network_->form(options, why)) << why;
    }

    void TearDown() override {
        if (HasFailure()) {
            std::printf("test folder: %s (set COFFER_KEEP_TEST_DIRS=1 to keep it)%s\n",
                        dir_.path().c_str(), network_ ? network_->log_tails().c_str() : "");
        }
    }

    std::unique_ptr<net::HttpClient> client(int i, const Identity* who) {
        auto c = network_->connect(i, who, 5000);
        EXPECT_TRUE(c.ok()) << c.status().to_string();
        return c.ok() ? std::move(c).value() : nullptr;
    }

    std::pair<int, NodeStateView> leader(uint64_t min_term = 0, int exclude = -1) {
        auto found = network_->wait_leader(kElectionWaitMs, min_term, exclude);
        EXPECT_TRUE(found.has_value()) << "no leader elected";
        return found.value_or(std::make_pair(-1, NodeStateView{}));
    }

    // Waits until node i's committed_seqno reaches the leader's (as it is when called).
    void wait_caught_up(int i) {
        auto [l, state] = leader();
        ASSERT_GE(l, 0);
        auto deadline = Clock::now() + std::chrono::milliseconds(kCatchUpWaitMs);
        uint64_t seen = 0;
        while (Clock::now() < deadline) {
            // The leader may change while we wait: compare with the current one.
            if (auto current = network_->wait_leader(kPollWaitMs); current.has_value()) {
                state = current->second;
            }
            std::optional<NodeStateView> s = network_->state(i);
            seen = s ? s->committed_seqno : seen;
            // Caught up: it follows this leader in its term and committed what it had.
            if (s && s->term == state.term && s->leader == state.node_id &&
                seen >= state.committed_seqno) {
                return;
            }
            sleep_ms(20);
        }
        FAIL() << "node " << i << " stuck at committed_seqno " << seen << ", leader at "
               << state.committed_seqno;
    }

    void restart(int i) {
        std::string why;
        ASSERT_TRUE(network_->restart(i, why)) << why;
    }

    // SIGKILLs the leader, waits until another node reports itself leader with a higher
    // term, then restarts the killed node and waits for its catch-up.
    void kill_leader(std::mt19937& rng, std::vector<Kill>& kills) {
        auto [l, state] = leader();
        ASSERT_GE(l, 0);
        Kill k;
        k.killed = l;
        k.old_term = state.term;
        k.kill_ns = now_ns();
        network_->node(l).kill_hard();
        auto next = network_->wait_leader(kElectionWaitMs, state.term, l);
        ASSERT_TRUE(next.has_value()) << "no new leader after killing node " << l;
        k.observed_ns = now_ns();
        k.new_leader = next->first;
        k.new_term = next->second.term;
        kills.push_back(k);
        std::printf(
            "%lld ms: kill: node %d (term %llu) -> node %d leads term %llu, observed "
            "after %lld ms\n",
            static_cast<long long>((k.kill_ns - now_ns()) / 1000000 + since_start_ms()), l,
            static_cast<unsigned long long>(k.old_term), k.new_leader,
            static_cast<unsigned long long>(k.new_term),
            static_cast<long long>((k.observed_ns - k.kill_ns) / 1000000));
        sleep_ms(std::uniform_int_distribution<int>(kMinDownMs, kMaxDownMs)(rng));
        restart(l);
        std::printf("%lld ms: node %d restarted\n", static_cast<long long>(since_start_ms()), l);
        wait_caught_up(l);
    }

    // SIGSTOPs the leader for longer than the election timeout maximum, then SIGCONTs it.
    void pause_leader(std::mt19937& rng) {
        auto [l, state] = leader();
        ASSERT_GE(l, 0);
        int pause_ms = std::uniform_int_distribution<int>(kMinPauseMs, kMaxPauseMs)(rng);
        auto resume_at = Clock::now() + std::chrono::milliseconds(pause_ms);
        network_->node(l).pause();
        auto next = network_->wait_leader(pause_ms, state.term, l);
        std::this_thread::sleep_until(resume_at);
        network_->node(l).resume();
        std::printf("%lld ms: pause: node %d (term %llu) stopped %d ms; %s\n",
                    static_cast<long long>(since_start_ms()), l,
                    static_cast<unsigned long long>(state.term), pause_ms,
                    next ? ("node " + std::to_string(next->first) + " led term " +
                            std::to_string(next->second.term) + " meanwhile")
                               .c_str()
                         : "no other leader observed meanwhile");
        wait_caught_up(l);
    }

    void run_faults(uint32_t seed, std::vector<Kill>& kills);
    // All nodes up: one committed write, then every node's commit point reaches the leader's.
    // Returns the leader.
    int settle();
    // Linearizable reads of every key on the leader, recorded as client kClients, compared
    // with each node's committed read. Returns key -> value (nullopt: absent).
    std::map<std::string, std::optional<std::string>> final_reads(Shared& shared, int leader);
    void check_last_acknowledged(const lincheck::History& history,
                                 const std::map<std::string, std::optional<std::string>>& finals);
    // Stops every node, verifies each ledger with `coffer ledger verify` and compares entry
    // bytes across nodes up to min_committed (and reports divergence after it).
    void stop_and_compare_ledgers(uint64_t min_committed);

    TempDir dir_;
    std::unique_ptr<Network> network_;
};

void ReplicationTest::run_faults(uint32_t seed, std::vector<Kill>& kills) {
    std::mt19937 rng(seed);
    // The schedule: kLeaderKills kills and kPauses pauses, in an order drawn from the seed.
    std::vector<bool> is_kill(kLeaderKills, true);
    is_kill.insert(is_kill.end(), kPauses, false);
    std::shuffle(is_kill.begin(), is_kill.end(), rng);
    for (bool kill : is_kill) {
        sleep_ms(std::uniform_int_distribution<int>(kMinLoadMs, kMaxLoadMs)(rng));
        if (kill) {
            kill_leader(rng, kills);
        } else {
            pause_leader(rng);
        }
        if (HasFatalFailure()) {
            return;
        }
    }
    sleep_ms(std::uniform_int_distribution<int>(kMinLoadMs, kMaxLoadMs)(rng));
}

int ReplicationTest::settle() {
    auto [l, state] = leader();
    if (l < 0) {
        return -1;
    }
    auto tx = write_following_redirects(*network_, l, network_->user(0), "/app/log/public",
                                        json{{"id", kUntrackedId}, {"msg", "settle"}}.dump(),
                                        kSettleWaitMs);
    EXPECT_TRUE(tx.has_value()) << "no write taken after the faults";
    EXPECT_TRUE(tx && wait_tx_committed(*network_, *tx, kSettleWaitMs)) << "settle write";
    auto after = leader();
    EXPECT_TRUE(network_->wait_all_committed(after.second.committed_seqno, kSettleWaitMs))
        << "nodes did not reach the leader's commit point " << after.second.committed_seqno;
    return after.first;
}

std::map<std::string, std::optional<std::string>> ReplicationTest::final_reads(Shared& shared,
                                                                               int l) {
    std::map<std::string, std::optional<std::string>> finals;
    auto lc = client(l, &network_->user(0));
    std::vector<std::unique_ptr<net::HttpClient>> nodes;
    for (int i = 0; i < network_->size(); ++i) {
        nodes.push_back(client(i, &network_->user(0)));
    }
    if (lc == nullptr) {
        return finals;
    }
    for (int k = 0; k < kKeys; ++k) {
        std::string path = "/app/log/public?id=" + std::to_string(k);
        auto op = shared.recorder.invoke_read(kClients, key_name(k));
        auto r = lc->request("GET", path + "&consistency=linearizable");
        if (!r.ok() || (r->status != 200 && r->status != 404)) {
            ADD_FAILURE() << "final linearizable read of " << k
                          << " failed: " << (r.ok() ? r->body : r.status().to_string());
            continue;
        }
        std::optional<std::string> value;
        if (r->status == 200) {
            value = parse(r->body).value("msg", "");
        }
        EXPECT_TRUE(shared.recorder.complete_read_ok(*op, value).ok());
        finals[key_name(k)] = value;
        for (int i = 0; i < network_->size(); ++i) {
            if (nodes[static_cast<size_t>(i)] == nullptr) {
                continue;  // client() already failed the test
            }
            auto c = nodes[static_cast<size_t>(i)]->request("GET", path);
            if (!c.ok()) {
                ADD_FAILURE() << "node " << i << ": " << c.status().to_string();
                continue;
            }
            std::optional<std::string> seen;
            if (c->status == 200) {
                seen = parse(c->body).value("msg", "");
            } else {
                EXPECT_EQ(c->status, 404) << c->body;
            }
            EXPECT_EQ(seen, value) << "node " << i << " serves another value for key " << k;
        }
    }
    return finals;
}

void ReplicationTest::check_last_acknowledged(
    const lincheck::History& history,
    const std::map<std::string, std::optional<std::string>>& finals) {
    std::map<std::string, std::vector<const lincheck::Operation*>> writes;
    for (const lincheck::Operation& op : history.operations()) {
        if (op.kind == lincheck::OpKind::kWrite && op.outcome != lincheck::Outcome::kFailed) {
            writes[op.key].push_back(&op);
        }
    }
    for (const auto& [key, final_value] : finals) {
        // The acknowledged write that completed last, and the writes that may follow it.
        const lincheck::Operation* last = nullptr;
        for (const lincheck::Operation* w : writes[key]) {
            if (w->outcome == lincheck::Outcome::kOk &&
                (last == nullptr || w->complete_ns > last->complete_ns)) {
                last = w;
            }
        }
        std::vector<std::optional<std::string>> allowed;
        if (last != nullptr) {
            allowed.push_back(last->value);
        } else {
            allowed.push_back(std::nullopt);
        }
        for (const lincheck::Operation* w : writes[key]) {
            if (w != last && (last == nullptr || w->complete_ns >= last->invoke_ns)) {
                allowed.push_back(w->value);
            }
        }
        EXPECT_NE(std::find(allowed.begin(), allowed.end(), final_value), allowed.end())
            << "key " << key << " ends with " << final_value.value_or("(absent)") << "; the last"
            << " acknowledged write was " << (last ? last->value.value_or("") : "(none)") << " and "
            << allowed.size() - 1 << " writes could follow it";
    }
}

void ReplicationTest::stop_and_compare_ledgers(uint64_t min_committed) {
    for (int i = 0; i < network_->size(); ++i) {
        EXPECT_EQ(network_->node(i).terminate(), 0) << "node " << i << " did not stop cleanly";
    }
    ledger::PosixFileSystem fs;
    std::vector<std::unique_ptr<ledger::ChunkStore>> stores;
    uint64_t min_last = UINT64_MAX;
    for (int i = 0; i < network_->size(); ++i) {
        std::string dir = network_->node(i).data_dir() + "/ledger";
        CommandResult verified = run_coffer({"ledger", "verify", dir});
        EXPECT_EQ(verified.exit_code, 0) << "node " << i << ": " << verified.output;
        std::printf("node %d: %s", i, verified.output.c_str());
        auto store = ledger::ChunkStore::open_read_only(fs, dir, nullptr);
        ASSERT_TRUE(store.ok()) << store.status().to_string();
        min_last = std::min(min_last, (*store)->last_seqno());
        stores.push_back(std::move(store).value());
    }
    EXPECT_GE(min_last, min_committed) << "a ledger lost committed entries";
    for (uint64_t seqno = 1; seqno <= min_last; ++seqno) {
        auto first = stores[0]->read(seqno);
        ASSERT_TRUE(first.ok()) << first.status().to_string();
        for (size_t i = 1; i < stores.size(); ++i) {
            auto other = stores[i]->read(seqno);
            ASSERT_TRUE(other.ok()) << other.status().to_string();
            if (*other != *first) {
                EXPECT_GT(seqno, min_committed)
                    << "ledgers of node 0 and node " << i << " differ at committed seqno " << seqno;
                std::printf(
                    "ledgers of node 0 and node %zu differ from seqno %llu (committed "
                    "up to %llu)\n",
                    i, static_cast<unsigned long long>(seqno),
                    static_cast<unsigned long long>(min_committed));
                return;
            }
        }
    }
    std::printf("ledgers identical over seqnos 1..%llu (smallest commit point %llu)\n",
                static_cast<unsigned long long>(min_last),
                static_cast<unsigned long long>(min_committed));
}

// For each kill: milliseconds from the SIGKILL to the first acknowledgement of a write
// invoked after it (nullopt: none).
std::vector<std::optional<int64_t>> failover_ms(
    const std::vector<Kill>& kills, const std::vector<std::pair<int64_t, int64_t>>& acked) {
    std::vector<std::optional<int64_t>> out;
    for (const Kill& k : kills) {
        int64_t first = lincheck::kNeverNs;
        for (const auto& [invoked, completed] : acked) {
            if (invoked >= k.kill_ns) {
                first = std::min(first, completed);
            }
        }
        out.push_back(first == lincheck::kNeverNs
                          ? std::nullopt
                          : std::optional<int64_t>((first - k.kill_ns) / 1000000));
    }
    return out;
}

TEST_F(ReplicationTest, LinearizableUnderLeaderKillsAndPauses) {
    uint32_t seed = test_seed();
    since_start_ms();
    std::printf("ReplicationTest seed=%u (COFFER_REPL_SEED replays)\n", seed);
    Shared shared(*network_);
    std::thread watch([&shared] { watch_leader(shared); });
    std::vector<std::thread> threads;
    for (int c = 0; c < kClients; ++c) {
        threads.emplace_back([&shared, c, seed] {
            ChaosClient(shared, static_cast<lincheck::ClientId>(c), seed * 31 + c).run();
        });
    }
    std::vector<Kill> kills;
    run_faults(seed, kills);
    shared.stop = true;
    for (std::thread& t : threads) {
        t.join();
    }
    watch.join();
    ASSERT_FALSE(HasFatalFailure()) << "seed=" << seed;

    int l = settle();
    ASSERT_GE(l, 0) << "seed=" << seed;
    std::map<std::string, std::optional<std::string>> finals = final_reads(shared, l);
    lincheck::History history = shared.recorder.snapshot();
    std::string line = "failover ms:";
    for (std::optional<int64_t> ms : failover_ms(kills, shared.acked_times)) {
        line += ms ? " " + std::to_string(*ms) : std::string(" none");
        EXPECT_TRUE(ms && *ms <= kMaxFailoverMs)
            << "seed=" << seed << ": no write committed within " << kMaxFailoverMs
            << " ms of a leader kill";
    }
    std::printf("%s\n", line.c_str());
    std::printf(
        "ops %zu: writes acked %llu, unknown %llu, failed %llu; reads ok %llu, "
        "unknown %llu\n",
        history.size(), static_cast<unsigned long long>(shared.writes_acked.load()),
        static_cast<unsigned long long>(shared.writes_unknown.load()),
        static_cast<unsigned long long>(shared.writes_failed.load()),
        static_cast<unsigned long long>(shared.reads_ok.load()),
        static_cast<unsigned long long>(shared.reads_unknown.load()));

    {
        std::lock_guard lock(shared.mu);
        for (const auto& [why, count] : shared.unknown_reasons) {
            std::printf("  unknown write outcome x%d: %s\n", count, why.c_str());
        }
        for (const auto& [why, count] : shared.refusals) {
            std::printf("  write refused (retried) x%d: %s\n", count, why.c_str());
        }
    }
    auto checked = lincheck::check_linearizable(history);
    ASSERT_TRUE(checked.ok()) << checked.status().to_string();
    std::printf("lincheck: %s (%zu keys, %zu operations judged, %llu steps)\n",
                std::string(lincheck::verdict_name(checked->verdict)).c_str(),
                checked->keys_checked, checked->operations_judged,
                static_cast<unsigned long long>(checked->search_steps));
    if (checked->verdict != lincheck::Verdict::kLinearizable) {
        std::string path = dir_.path() + "/history.json";
        EXPECT_TRUE(lincheck::write_history_file(history, path).ok());
        ADD_FAILURE() << "seed=" << seed << ": " << checked->summary() << "\nhistory: " << path;
    }
    EXPECT_EQ(kills.size(), static_cast<size_t>(kLeaderKills));
    EXPECT_GE(shared.writes_unknown.load(), 1u)
        << "seed=" << seed << ": no write had an unknown outcome";
    EXPECT_GT(shared.writes_acked.load(), 0u);
    {
        std::lock_guard lock(shared.mu);
        for (const std::string& u : shared.unexpected) {
            ADD_FAILURE() << "unexpected answer at " << u;
        }
    }
    check_last_acknowledged(history, finals);

    uint64_t min_committed = UINT64_MAX;
    for (int i = 0; i < network_->size(); ++i) {
        std::optional<NodeStateView> s = network_->state(i);
        ASSERT_TRUE(s.has_value()) << "node " << i << " does not answer";
        min_committed = std::min(min_committed, s->committed_seqno);
    }
    stop_and_compare_ledgers(min_committed);
    if (HasFailure()) {
        std::printf("failed with seed=%u\n", seed);
    }
}

TEST_F(ReplicationTest, WriteToFollowerIsRedirectedToLeader) {
    auto [l, state] = leader();
    ASSERT_GE(l, 0);
    int f = (l + 1) % network_->size();
    auto c = client(f, &network_->user(0));
    ASSERT_NE(c, nullptr);
    std::string body = json{{"id", 7}, {"msg", "to the leader"}}.dump();
    auto r = c->request("POST", "/app/log/public", body);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_EQ(r->status, 307) << r->body;
    std::string leader_url = "https://127.0.0.1:" + std::to_string(network_->node(l).client_port());
    EXPECT_EQ(r->header("Location").value_or(""), leader_url + "/app/log/public");

    auto read = c->request("GET", "/app/log/public?id=7&consistency=linearizable");
    ASSERT_TRUE(read.ok());
    EXPECT_EQ(read->status, 307);
    EXPECT_EQ(read->header("Location").value_or(""),
              leader_url + "/app/log/public?id=7&consistency=linearizable");

    // Following the redirect commits the write, and the follower then serves it.
    auto lc = client(l, &network_->user(0));
    ASSERT_NE(lc, nullptr);
    auto taken = lc->request("POST", "/app/log/public", body);
    ASSERT_TRUE(taken.ok());
    ASSERT_EQ(taken->status, 200) << taken->body;
    std::string tx = parse(taken->body).value("transaction_id", "");
    ASSERT_TRUE(wait_tx_committed(*network_, tx, kSettleWaitMs)) << tx;
    auto leader_state = network_->state(l);
    ASSERT_TRUE(leader_state.has_value());
    ASSERT_TRUE(network_->wait_all_committed(leader_state->committed_seqno, kCatchUpWaitMs));
    auto served = c->request("GET", "/app/log/public?id=7");
    ASSERT_TRUE(served.ok());
    EXPECT_EQ(served->status, 200) << served->body;
    EXPECT_EQ(parse(served->body).value("msg", ""), "to the leader");
}

// The nodes map (ids and statuses) and the leader's voters.
std::pair<std::vector<std::string>, std::vector<std::string>> membership(net::HttpClient& c) {
    std::vector<std::string> nodes;
    auto r = c.request("GET", "/node/network");
    EXPECT_TRUE(r.ok() && r->status == 200);
    if (r.ok()) {
        for (const json& n : parse(r->body).value("nodes", json::array())) {
            nodes.push_back(n.value("node_id", "") + ":" + n.value("status", ""));
        }
    }
    auto s = c.request("GET", "/node/state");
    EXPECT_TRUE(s.ok() && s->status == 200);
    std::vector<std::string> voters;
    if (s.ok()) {
        voters = parse(s->body).value("voters", std::vector<std::string>{});
    }
    std::sort(nodes.begin(), nodes.end());
    std::sort(voters.begin(), voters.end());
    return {nodes, voters};
}

TEST_F(ReplicationTest, MetricsShowConsensusAndTheNodeToNodeChannel) {
    auto [l, state] = leader();
    ASSERT_GE(l, 0);
    for (int i = 0; i < network_->size(); ++i) {
        auto c = client(i, nullptr);
        ASSERT_NE(c, nullptr);
        auto r = c->request("GET", "/node/metrics");
        ASSERT_TRUE(r.ok());
        ASSERT_EQ(r->status, 200);
        std::string leading = "coffer_raft_is_leader " + std::string(i == l ? "1" : "0");
        EXPECT_NE(r->body.find(leading), std::string::npos) << "node " << i << "\n" << r->body;
        EXPECT_NE(r->body.find("coffer_raft_voters 3"), std::string::npos) << r->body;
        EXPECT_NE(r->body.find("coffer_transport_messages_received_total"), std::string::npos);
    }
}

TEST_F(ReplicationTest, JoinRequestsWithoutProofAreRefused) {
    auto [l, state] = leader();
    ASSERT_GE(l, 0);
    int other = (l + 1) % network_->size();
    Identity stranger = keygen(dir_.path(), "stranger");
    ASSERT_FALSE(stranger.cert_pem.empty());
    auto anon = client(l, nullptr);
    auto joiner = client(l, &stranger);
    auto quote_source = client(other, nullptr);
    ASSERT_TRUE(anon && joiner && quote_source);

    auto quote = quote_source->request("GET", "/node/quote");
    ASSERT_TRUE(quote.ok());
    ASSERT_EQ(quote->status, 200) << quote->body;
    json request = {{"node_address", "127.0.0.1:1"},
                    {"client_address", "127.0.0.1:2"},
                    {"attestation", parse(quote->body)["evidence"]}};
    auto before = membership(*anon);
    EXPECT_EQ(before.second.size(), 3u);

    auto r = anon->request("POST", "/node/join", request.dump());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 401) << r->body;

    // Valid evidence, but it binds the other node's key, not the stranger's.
    r = joiner->request("POST", "/node/join", request.dump());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 403) << r->body;

    for (const std::string bad : {"not json", "{}", "[1,2]",
                                  R"({"node_address":"127.0.0.1:1","client_address":"x",)"
                                  R"("attestation":{}})"}) {
        r = joiner->request("POST", "/node/join", bad);
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(r->status, 400) << bad << " -> " << r->body;
    }

    auto after = membership(*anon);
    EXPECT_EQ(after.first, before.first);
    EXPECT_EQ(after.second, before.second);
    for (int i = 0; i < network_->size(); ++i) {
        auto s = network_->state(i);
        ASSERT_TRUE(s.has_value());
        std::sort(s->voters.begin(), s->voters.end());
        EXPECT_EQ(s->voters, before.second) << "node " << i;
    }
}

TEST_F(ReplicationTest, RestartedFollowerCatchesUpOnMissedWrites) {
    auto [l, state] = leader();
    ASSERT_GE(l, 0);
    int f = (l + 1) % network_->size();
    network_->node(f).kill_hard();

    constexpr int kWrites = 30;
    std::string last_tx;
    for (int i = 0; i < kWrites; ++i) {
        auto tx = write_following_redirects(
            *network_, l, network_->user(0), i % 2 == 0 ? "/app/log/public" : "/app/log/private",
            json{{"id", 500 + i}, {"msg", "while down " + std::to_string(i)}}.dump(),
            kSettleWaitMs);
        ASSERT_TRUE(tx.has_value()) << "write " << i;
        last_tx = *tx;
    }
    ASSERT_TRUE(wait_tx_committed(*network_, last_tx, kSettleWaitMs)) << last_tx;
    auto leader_state = network_->state(l);
    ASSERT_TRUE(leader_state.has_value());

    restart(f);
    auto deadline = Clock::now() + std::chrono::milliseconds(kCatchUpWaitMs);
    std::optional<NodeStateView> s;
    while (Clock::now() < deadline) {
        s = network_->state(f);
        if (s && s->committed_seqno >= leader_state->committed_seqno) {
            break;
        }
        sleep_ms(20);
    }
    ASSERT_TRUE(s.has_value());
    ASSERT_GE(s->committed_seqno, leader_state->committed_seqno);

    auto c = client(f, &network_->user(0));
    ASSERT_NE(c, nullptr);
    for (int i = 0; i < kWrites; ++i) {
        std::string map = i % 2 == 0 ? "public" : "private";
        auto r = c->request("GET", "/app/log/" + map + "?id=" + std::to_string(500 + i));
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(r->status, 200) << r->body;
        EXPECT_EQ(parse(r->body).value("msg", ""), "while down " + std::to_string(i));
    }
    auto tx = c->request("GET", "/node/tx?transaction_id=" + last_tx);
    ASSERT_TRUE(tx.ok());
    EXPECT_EQ(parse(tx->body).value("status", ""), "Committed");
}

// Retirement is a governance decision (remove_node) and a replicated configuration change:
// first a follower, then the leader itself, which leads until the change commits and then
// steps down; the remaining voters go on.
TEST_F(ReplicationTest, RetiringAFollowerAndThenTheLeaderKeepsTheServiceWriting) {
    auto [l, state] = leader();
    ASSERT_GE(l, 0);
    int f = (l + 1) % network_->size();
    auto f_state = network_->state(f);
    ASSERT_TRUE(f_state.has_value());
    std::string cert_path = dir_.path() + "/service_cert.pem";
    write_text_file(cert_path, network_->service_cert_pem());
    auto remove_node = [](const std::string& id) {
        return json::array({{{"name", "remove_node"}, {"args", {{"node_id", id}}}}});
    };

    // Users cannot propose, and a node that does not exist cannot be removed.
    auto as_user = client(l, &network_->user(0));
    ASSERT_NE(as_user, nullptr);
    auto refused = as_user->request("POST", "/gov/proposals", "not a signed request");
    ASSERT_TRUE(refused.ok());
    EXPECT_EQ(refused->status, 403) << "only members may propose";
    std::string why;
    EXPECT_FALSE(pass_proposal(network_->node(l).client_port(), cert_path, {network_->member()},
                               remove_node(std::string(64, '0')), why)
                     .has_value());
    EXPECT_NE(why.find("no node"), std::string::npos) << why;

    // Sent to a follower: `coffer member` follows the redirect to the leader.
    ASSERT_TRUE(pass_proposal(network_->node(f).client_port(), cert_path, {network_->member()},
                              remove_node(f_state->node_id), why)
                    .has_value())
        << why;
    std::optional<NodeStateView> after;
    for (auto deadline = Clock::now() + std::chrono::milliseconds(kSettleWaitMs);
         Clock::now() < deadline;) {
        after = network_->state(l);
        if (after && after->voters.size() == 2u) {
            break;
        }
        sleep_ms(20);
    }
    ASSERT_TRUE(after.has_value());
    EXPECT_EQ(after->voters.size(), 2u);
    EXPECT_EQ(std::count(after->voters.begin(), after->voters.end(), f_state->node_id), 0);

    // Now the leader retires itself; the one voter left takes over and writes go on.
    ASSERT_TRUE(pass_proposal(network_->node(l).client_port(), cert_path, {network_->member()},
                              remove_node(state.node_id), why)
                    .has_value())
        << why;
    int survivor = -1;
    for (int i = 0; i < network_->size(); ++i) {
        if (i != l && i != f) {
            survivor = i;
        }
    }
    auto deadline = Clock::now() + std::chrono::milliseconds(kElectionWaitMs);
    std::optional<NodeStateView> s;
    while (Clock::now() < deadline) {
        s = network_->state(survivor);
        if (s && s->role == "leader" && s->voters.size() == 1) {
            break;
        }
        sleep_ms(20);
    }
    ASSERT_TRUE(s.has_value());
    ASSERT_EQ(s->role, "leader") << "the last voter did not take over";
    auto tx = write_following_redirects(*network_, survivor, network_->user(0), "/app/log/public",
                                        json{{"id", 777}, {"msg", "after retirements"}}.dump(),
                                        kSettleWaitMs);
    ASSERT_TRUE(tx.has_value());
    EXPECT_TRUE(wait_tx_committed(*network_, *tx, kSettleWaitMs));
    auto old_leader = network_->state(l);
    ASSERT_TRUE(old_leader.has_value());
    EXPECT_NE(old_leader->role, "leader");
}

// Field case CON-4: a paused old leader resumes, still believing it leads, and is asked at
// once to read and to write. It must not serve the write as data, anywhere, ever; its reads
// name the state they reflect; it stops claiming leadership within an election timeout.
TEST_F(ReplicationTest, PausedOldLeaderServesNothingFreshLooking) {
    auto [old, old_state] = leader();
    ASSERT_GE(old, 0);
    auto old_user = client(old, &network_->user(0));
    ASSERT_NE(old_user, nullptr);
    network_->node(old).pause();
    sleep_ms(3 * 1000);  // three times the longest election timeout

    auto [next, next_state] = leader(old_state.term, old);
    ASSERT_GE(next, 0);
    ASSERT_NE(next, old);
    auto fresh = client(next, &network_->user(0));
    ASSERT_NE(fresh, nullptr);
    auto seven = fresh->request("POST", "/app/log/public", json{{"id", 7}, {"msg", "new"}}.dump(),
                                {{"x-coffer-wait-ms", "5000"}});
    ASSERT_TRUE(seven.ok());
    ASSERT_EQ(seven->header("x-coffer-tx-status").value_or(""), "Committed") << seven->body;
    std::string seven_tx = parse(seven->body).value("transaction_id", "");

    network_->node(old).resume();
    // Back to back, before the old leader can hear from the others.
    auto read = old_user->request("GET", "/app/log/public?id=7");
    auto stale =
        old_user->request("POST", "/app/log/public", json{{"id", 8}, {"msg", "stale"}}.dump());
    ASSERT_TRUE(read.ok());
    if (read->status == 200) {
        // Whatever it served carries the id of the state it read.
        EXPECT_FALSE(read->header("x-coffer-tx-id").value_or("").empty());
    }
    std::string stale_tx;
    if (stale.ok() && stale->status == 200) {
        stale_tx = parse(stale->body).value("transaction_id", "");
    }

    // Within an election timeout the old leader no longer claims to lead.
    auto deadline = Clock::now() + std::chrono::milliseconds(1000);
    std::optional<NodeStateView> s;
    while (Clock::now() < deadline) {
        s = network_->state(old);
        if (s && s->role != "leader") {
            break;
        }
        sleep_ms(20);
    }
    ASSERT_TRUE(s.has_value());
    EXPECT_NE(s->role, "leader") << "the resumed old leader still claims leadership";

    // The stale write never commits, and key 8 is readable nowhere, key 7 everywhere.
    if (!stale_tx.empty()) {
        auto status =
            fresh->request("GET", "/node/tx?transaction_id=" + stale_tx + "&wait_ms=2000");
        ASSERT_TRUE(status.ok());
        EXPECT_NE(parse(status->body).value("status", ""), "Committed") << stale_tx;
    }
    ASSERT_TRUE(network_->wait_all_committed(
        static_cast<uint64_t>(std::stoull(seven_tx.substr(seven_tx.find('.') + 1))),
        kCatchUpWaitMs));
    for (int i = 0; i < network_->size(); ++i) {
        auto c = client(i, &network_->user(0));
        ASSERT_NE(c, nullptr);
        auto eight = c->request("GET", "/app/log/public?id=8");
        ASSERT_TRUE(eight.ok());
        EXPECT_NE(eight->status, 200) << "node " << i << " serves the stale write: " << eight->body;
        auto seven_back = c->request("GET", "/app/log/public?id=7");
        ASSERT_TRUE(seven_back.ok());
        EXPECT_EQ(parse(seven_back->body).value("msg", ""), "new") << "node " << i;
    }
    if (!stale_tx.empty()) {
        auto status = fresh->request("GET", "/node/tx?transaction_id=" + stale_tx);
        ASSERT_TRUE(status.ok());
        EXPECT_EQ(parse(status->body).value("status", ""), "Invalid") << stale_tx;
    }
}

// A network formed without waiting for the joined nodes to catch up.
class ReplicationJoinTest : public ReplicationTest {
  protected:
    NetworkOptions network_options() const override {
        NetworkOptions options = ReplicationTest::network_options();
        options.wait_for_catch_up = false;
        return options;
    }
};

// A node that has just joined serves requests before it has replicated the users map. A
// registered user must then be told to retry (503) or be redirected, never refused as
// unknown (401): a client would take that refusal as final.
TEST_F(ReplicationJoinTest, JustJoinedNodeDoesNotRefuseRegisteredUsers) {
    int last = network_->size() - 1;
    auto c = client(last, &network_->user(0));
    ASSERT_NE(c, nullptr);
    auto deadline = Clock::now() + std::chrono::milliseconds(kCatchUpWaitMs);
    int answers = 0;
    while (Clock::now() < deadline) {
        auto r = c->request("GET", "/app/log/public?id=1");
        ASSERT_TRUE(r.ok()) << r.status().to_string();
        ++answers;
        EXPECT_NE(r->status, 401) << "answer " << answers
                                  << " of the node that just joined: " << r->body;
        if (r->status == 401) {
            break;
        }
        auto mine = network_->state(last);
        auto first = network_->state(0);
        if (mine && first && mine->committed_seqno >= first->committed_seqno) {
            break;
        }
    }
}

}  // namespace
}  // namespace coffer::e2e
