// A network of Coffer node processes on loopback for end-to-end replication tests: node 0
// runs `coffer node start` (it creates the service), the others `coffer node join` (restart
// runs the same command again: a node that already has node.json restarts instead of
// joining). Each node keeps its ports across restarts (docs/node.md, "Ports file"), so a
// restarted node answers at the same client port.
//
// ClusterNode is one such process; Network makes the identities and configurations, forms
// the network node by node, and offers the polls every replication test needs (GET
// /node/state of a node, the current leader, waiting for catch-up). Every wait is bounded.
// Destruction SIGKILLs (after SIGCONT) every process still running, so a failing test leaves
// nothing behind.
//
// Thread-safety: ClusterNode's signal methods (kill_hard, pause, resume) and the read-only
// accessors may be called from any thread while another thread polls the node over HTTP;
// start/terminate/kill_hard of one node must not run concurrently with each other. Network's
// poll helpers are thread-safe (each call uses its own connection).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "net/client.h"
#include "tests/e2e_util.h"

namespace coffer::e2e {

// Bound on how long a joining node takes to be admitted and write its ports file.
constexpr int kJoinTimeoutMs = 30000;
// Connection and request bound of the short polls (GET /node/state): a paused node must
// not hold a poller for long.
constexpr int kStatePollTimeoutMs = 700;
// How many bytes of a node's log the failure messages show.
constexpr size_t kLogTailBytes = 3000;

// One node process. Its output (stdout and stderr) is appended to `log_path`.
class ClusterNode {
  public:
    ClusterNode(int index, std::string config_path, std::string data_dir, std::string log_path,
                bool joins);
    ~ClusterNode();  // SIGCONT + SIGKILL of a still-running process
    ClusterNode(const ClusterNode&) = delete;
    ClusterNode& operator=(const ClusterNode&) = delete;

    // Spawns `coffer node start|join --config ...` and waits until the process wrote its
    // ports file (with its own pid). False, with the log tail in `why`, if it exited or
    // timed out (it is then killed). `while_waiting` runs at every poll: a joining node
    // waits for the members to trust it (see trust_pending_nodes).
    bool start(std::string& why, int timeout_ms = kJoinTimeoutMs,
               const std::function<void()>& while_waiting = {});
    // SIGTERM (after SIGCONT) and wait; the exit code, -1 on signal death or timeout.
    int terminate();
    // SIGCONT + SIGKILL and wait for the process.
    void kill_hard();
    // SIGSTOP / SIGCONT.
    void pause();
    void resume();

    bool running() const { return pid_.load() > 0; }
    bool paused() const { return paused_.load(); }
    int index() const { return index_; }
    uint16_t client_port() const { return client_port_.load(); }
    const std::string& data_dir() const { return data_dir_; }
    const std::string& log_path() const { return log_path_; }
    std::string service_cert_pem() const;
    std::string log_tail(size_t bytes = kLogTailBytes) const;

  private:
    int index_;
    std::string config_path_;
    std::string data_dir_;
    std::string log_path_;
    bool joins_;
    std::atomic<pid_t> pid_{-1};
    std::atomic<bool> paused_{false};
    std::atomic<uint16_t> client_port_{0};
};

// Trusts, by a proposal of `member` (the only member, so its vote passes it), every node that
// GET /node/network on 127.0.0.1:`port` lists as "pending" and that is not in `proposed`
// yet; adds those to `proposed`. A joining node is admitted only after such a proposal
// (docs/replication.md, "Joining"). False with the reason in `why` if a proposal failed.
bool trust_pending_nodes(uint16_t port, const std::string& service_cert_pem, const Identity& member,
                         std::set<std::string>& proposed, std::string& why);
// The same with several members, who vote in order until each proposal passes.
bool trust_pending_nodes(uint16_t port, const std::string& service_cert_pem,
                         const std::vector<Identity>& members, std::set<std::string>& proposed,
                         std::string& why);

// The part of GET /node/state a test looks at.
struct NodeStateView {
    std::string node_id;
    std::string role;  // leader, follower, candidate, pre_candidate
    uint64_t term = 0;
    std::optional<std::string> leader;
    std::vector<std::string> voters;
    uint64_t last_seqno = 0;
    uint64_t committed_seqno = 0;
};

struct NetworkOptions {
    int nodes = 3;
    int users = 1;
    // Merged at top level into every node's configuration (e.g. "consensus", "signatures").
    nlohmann::json extra_config = nlohmann::json::object();
    // Whether form() also waits, after each join, until the newcomer's committed_seqno
    // reaches node 0's (so that it has replicated the users and members). A node that just
    // joined serves requests before it has (see replication_test.cc).
    bool wait_for_catch_up = true;
    // Whether form() opens the new service (the member's transition_service_to_open proposal)
    // once node 0 leads, before any other node joins.
    bool open_service = true;
};

class Network {
  public:
    // `dir` must outlive the Network; it holds the identities, configurations, data and logs.
    explicit Network(std::string dir);
    ~Network();
    Network(const Network&) = delete;
    Network& operator=(const Network&) = delete;

    // Makes the identities, starts node 0 (and opens the service unless options say not to),
    // then joins the others one after the other, each time waiting until node 0 lists the
    // newcomer among its voters. False with the reason (and log tails) in `why`.
    bool form(const NetworkOptions& options, std::string& why);

    int size() const { return static_cast<int>(nodes_.size()); }
    ClusterNode& node(int i) { return *nodes_.at(static_cast<size_t>(i)); }
    const ClusterNode& node(int i) const { return *nodes_.at(static_cast<size_t>(i)); }
    const Identity& member() const { return member_; }
    const Identity& user(int i) const { return users_.at(static_cast<size_t>(i)); }
    const std::string& dir() const { return dir_; }
    // The service certificate every node presents (PEM), read from node 0 at formation.
    const std::string& service_cert_pem() const { return service_cert_pem_; }

    // The node whose client port is `port`, or -1.
    int index_of_port(uint16_t port) const;

    // A client of node i (pinned to the service certificate) with an optional identity and
    // per-request timeout. Errors: those of HttpClient::connect.
    Result<std::unique_ptr<net::HttpClient>> connect(int i, const Identity* who,
                                                     int timeout_ms) const;

    // GET /node/state of node i over a new connection, bounded by kStatePollTimeoutMs.
    std::optional<NodeStateView> state(int i) const;

    // Polls until some running node reports role "leader" with a term above `min_term` and,
    // if `exclude` >= 0, is not node `exclude`. Returns its index and state, or nullopt on
    // timeout.
    std::optional<std::pair<int, NodeStateView>> wait_leader(int timeout_ms, uint64_t min_term = 0,
                                                             int exclude = -1) const;

    // Waits until every running, unpaused node's committed_seqno is at least `seqno`.
    bool wait_all_committed(uint64_t seqno, int timeout_ms) const;

    // Restarts node i after it stopped (same command, same ports). False with `why`.
    bool restart(int i, std::string& why);

    // "node i log (tail):" sections of every node, for failure messages.
    std::string log_tails(size_t bytes = kLogTailBytes) const;

  private:
    bool wait_caught_up_with_node0(int i) const;

    std::string dir_;
    Identity member_;
    std::vector<Identity> users_;
    std::string service_cert_pem_;
    std::vector<std::unique_ptr<ClusterNode>> nodes_;
};

// POSTs `body` to `path` of node `first` as `who`, following 307 redirects to the leader up
// to a few hops, until a node answers 200 or `timeout_ms` passes (sleeping on 503, trying
// the next node on connection errors). Only for set-up writes whose repetition is harmless:
// a request whose outcome is unknown may be repeated. Returns the transaction id.
std::optional<std::string> write_following_redirects(const Network& network, int first,
                                                     const Identity& who, const std::string& path,
                                                     const std::string& body, int timeout_ms);

// Polls GET /node/tx?transaction_id=...&wait_ms=... on every running node until one says
// Committed (true) or Invalid / the timeout (false).
bool wait_tx_committed(const Network& network, const std::string& tx_id, int timeout_ms);

// "127.0.0.1:1234" or "https://127.0.0.1:1234/..." -> 1234; 0 if it does not parse.
uint16_t port_of_address(const std::string& address);

}  // namespace coffer::e2e
