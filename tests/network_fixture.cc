#include "tests/network_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

namespace coffer::e2e {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kPollMs = 20;
// Redirects a set-up write follows before it starts over at the next node.
constexpr int kMaxRedirects = 4;
// The wait_ms of one GET /node/tx long poll.
constexpr int kTxWaitMs = 500;

Clock::time_point deadline_in(int ms) {
    return Clock::now() + std::chrono::milliseconds(ms);
}

void sleep_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

std::string tail_of(const std::string& text, size_t n) {
    return text.size() <= n ? text : text.substr(text.size() - n);
}

std::optional<NodeStateView> parse_state(const std::string& body) {
    json doc = json::parse(body, nullptr, false);
    if (!doc.is_object()) {
        return std::nullopt;
    }
    NodeStateView v;
    v.node_id = doc.value("node_id", "");
    v.role = doc.value("role", "");
    v.term = doc.value("term", uint64_t{0});
    if (doc.contains("leader") && doc["leader"].is_string()) {
        v.leader = doc["leader"].get<std::string>();
    }
    if (doc.contains("voters") && doc["voters"].is_array()) {
        for (const json& id : doc["voters"]) {
            if (id.is_string()) {
                v.voters.push_back(id.get<std::string>());
            }
        }
    }
    v.last_seqno = doc.value("last_seqno", uint64_t{0});
    v.committed_seqno = doc.value("committed_seqno", uint64_t{0});
    return v;
}

}  // namespace

ClusterNode::ClusterNode(int index, std::string config_path, std::string data_dir,
                         std::string log_path, bool joins)
    : index_(index),
      config_path_(std::move(config_path)),
      data_dir_(std::move(data_dir)),
      log_path_(std::move(log_path)),
      joins_(joins) {}

ClusterNode::~ClusterNode() {
    kill_hard();
}

bool ClusterNode::start(std::string& why, int timeout_ms,
                        const std::function<void()>& while_waiting) {
    std::string ports_path = data_dir_ + "/node_ports.json";
    pid_t pid =
        spawn_coffer({"node", joins_ ? "join" : "start", "--config", config_path_}, log_path_);
    if (pid <= 0) {
        why = "fork failed";
        return false;
    }
    pid_ = pid;
    paused_ = false;
    auto deadline = deadline_in(timeout_ms);
    while (Clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            pid_ = -1;
            why = "node " + std::to_string(index_) + " exited during start: " + log_tail();
            return false;
        }
        json ports = json::parse(read_text_file(ports_path), nullptr, false);
        if (ports.is_object() && ports.value("pid", -1) == pid) {
            client_port_ = ports["client_port"].get<uint16_t>();
            return true;
        }
        if (while_waiting) {
            while_waiting();
        }
        sleep_ms(kPollMs);
    }
    kill_hard();
    why = "node " + std::to_string(index_) + " did not become ready: " + log_tail();
    return false;
}

int ClusterNode::terminate() {
    pid_t pid = pid_.load();
    if (pid <= 0) {
        return -1;
    }
    ::kill(pid, SIGCONT);
    ::kill(pid, SIGTERM);
    std::optional<int> code = wait_pid(pid, kStopTimeoutMs);
    if (!code.has_value()) {
        ::kill(pid, SIGKILL);
        wait_pid(pid, kStopTimeoutMs);
    }
    pid_ = -1;
    paused_ = false;
    return code.value_or(-1);
}

void ClusterNode::kill_hard() {
    pid_t pid = pid_.load();
    if (pid <= 0) {
        return;
    }
    ::kill(pid, SIGKILL);
    ::kill(pid, SIGCONT);
    wait_pid(pid, kStopTimeoutMs);
    pid_ = -1;
    paused_ = false;
}

void ClusterNode::pause() {
    pid_t pid = pid_.load();
    if (pid > 0) {
        ::kill(pid, SIGSTOP);
        paused_ = true;
    }
}

void ClusterNode::resume() {
    pid_t pid = pid_.load();
    if (pid > 0) {
        ::kill(pid, SIGCONT);
        paused_ = false;
    }
}

std::string ClusterNode::service_cert_pem() const {
    return read_text_file(data_dir_ + "/service_cert.pem");
}

std::string ClusterNode::log_tail(size_t bytes) const {
    return tail_of(read_text_file(log_path_), bytes);
}

Network::Network(std::string dir) : dir_(std::move(dir)) {}

Network::~Network() {
    for (auto& n : nodes_) {
        n->kill_hard();
    }
}

bool Network::form(const NetworkOptions& options, std::string& why) {
    member_ = keygen(dir_, "member0");
    for (int i = 0; i < options.users; ++i) {
        users_.push_back(keygen(dir_, "user" + std::to_string(i)));
    }
    if (member_.cert_pem.empty()) {
        why = "keygen failed";
        return false;
    }
    for (int i = 0; i < options.nodes; ++i) {
        std::string node_dir = dir_ + "/n" + std::to_string(i);
        std::filesystem::create_directories(node_dir);
        json config;
        if (i == 0) {
            config = make_config(node_dir, member_, users_, options.extra_config);
        } else {
            config = {{"client_address", "127.0.0.1:0"},
                      {"node_address", "127.0.0.1:0"},
                      {"data_dir", node_dir + "/data"},
                      {"signatures", {{"interval_entries", 100}, {"interval_ms", 20}}},
                      {"log_level", "info"},
                      {"join",
                       {{"target", "127.0.0.1:" + std::to_string(nodes_[0]->client_port())},
                        {"service_cert_file", nodes_[0]->data_dir() + "/service_cert.pem"}}}};
            config.update(options.extra_config);
        }
        std::string config_path = node_dir + "/config.json";
        write_text_file(config_path, config.dump(2));
        nodes_.push_back(std::make_unique<ClusterNode>(i, config_path, node_dir + "/data",
                                                       node_dir + "/node.log", i > 0));
        std::set<std::string> proposed;
        std::string trust_why;
        auto trust = [&] {
            if (i > 0) {
                trust_pending_nodes(nodes_[0]->client_port(), service_cert_pem_, member_, proposed,
                                    trust_why);
            }
        };
        if (!nodes_.back()->start(why, kJoinTimeoutMs, trust)) {
            why += trust_why.empty() ? "" : " (trusting it: " + trust_why + ")";
            return false;
        }
        if (i == 0) {
            service_cert_pem_ = nodes_[0]->service_cert_pem();
            if (!wait_leader(kStartTimeoutMs).has_value()) {
                why = "node 0 did not become leader: " + log_tails();
                return false;
            }
            if (options.open_service &&
                !e2e::open_service(nodes_[0]->client_port(), service_cert_pem_, {member_}, why)) {
                why = "opening the service: " + why + log_tails();
                return false;
            }
            continue;
        }
        std::optional<NodeStateView> joined;
        for (auto deadline = deadline_in(kJoinTimeoutMs); !joined && Clock::now() < deadline;) {
            joined = state(i);
            if (!joined) {
                sleep_ms(kPollMs);
            }
        }
        if (!joined) {
            why = "node " + std::to_string(i) + " does not answer: " + log_tails();
            return false;
        }
        bool listed = false;
        for (auto deadline = deadline_in(kJoinTimeoutMs); !listed && Clock::now() < deadline;) {
            std::optional<NodeStateView> s0 = state(0);
            listed = s0 && std::count(s0->voters.begin(), s0->voters.end(), joined->node_id) > 0;
            if (!listed) {
                sleep_ms(kPollMs);
            }
        }
        if (!listed) {
            why = "node 0 never listed node " + std::to_string(i) + " as a voter: " + log_tails();
            return false;
        }
        if (options.wait_for_catch_up && !wait_caught_up_with_node0(i)) {
            why = "node " + std::to_string(i) + " did not catch up with node 0: " + log_tails();
            return false;
        }
    }
    return true;
}

bool Network::wait_caught_up_with_node0(int i) const {
    for (auto deadline = deadline_in(kJoinTimeoutMs); Clock::now() < deadline;) {
        std::optional<NodeStateView> s0 = state(0);
        std::optional<NodeStateView> s = state(i);
        if (s0 && s && s->committed_seqno >= s0->committed_seqno) {
            return true;
        }
        sleep_ms(kPollMs);
    }
    return false;
}

int Network::index_of_port(uint16_t port) const {
    for (const auto& n : nodes_) {
        if (port != 0 && n->client_port() == port) {
            return n->index();
        }
    }
    return -1;
}

Result<std::unique_ptr<net::HttpClient>> Network::connect(int i, const Identity* who,
                                                          int timeout_ms) const {
    net::ClientOptions options;
    options.host = "127.0.0.1";
    options.port = nodes_.at(static_cast<size_t>(i))->client_port();
    options.ca_cert_pem = service_cert_pem_;
    options.timeout_ms = static_cast<uint32_t>(timeout_ms);
    if (who != nullptr) {
        options.client_cert_pem = who->cert_pem;
        options.client_key_pem = who->key_pem;
    }
    return net::HttpClient::connect(options);
}

std::optional<NodeStateView> Network::state(int i) const {
    const ClusterNode& n = *nodes_.at(static_cast<size_t>(i));
    if (!n.running() || n.paused()) {
        return std::nullopt;
    }
    auto client = connect(i, nullptr, kStatePollTimeoutMs);
    if (!client.ok()) {
        return std::nullopt;
    }
    auto r = (*client)->request("GET", "/node/state");
    if (!r.ok() || r->status != 200) {
        return std::nullopt;
    }
    return parse_state(r->body);
}

std::optional<std::pair<int, NodeStateView>> Network::wait_leader(int timeout_ms, uint64_t min_term,
                                                                  int exclude) const {
    auto deadline = deadline_in(timeout_ms);
    while (true) {
        std::optional<std::pair<int, NodeStateView>> best;
        for (int i = 0; i < size(); ++i) {
            if (i == exclude) {
                continue;
            }
            std::optional<NodeStateView> s = state(i);
            if (s && s->role == "leader" && s->term > min_term &&
                (!best || s->term > best->second.term)) {
                best = std::make_pair(i, *s);
            }
        }
        if (best) {
            return best;
        }
        if (Clock::now() >= deadline) {
            return std::nullopt;
        }
        sleep_ms(kPollMs);
    }
}

bool Network::wait_all_committed(uint64_t seqno, int timeout_ms) const {
    auto deadline = deadline_in(timeout_ms);
    while (true) {
        bool all = true;
        for (int i = 0; i < size() && all; ++i) {
            const ClusterNode& n = *nodes_[static_cast<size_t>(i)];
            if (!n.running() || n.paused()) {
                continue;
            }
            std::optional<NodeStateView> s = state(i);
            all = s && s->committed_seqno >= seqno;
        }
        if (all) {
            return true;
        }
        if (Clock::now() >= deadline) {
            return false;
        }
        sleep_ms(kPollMs);
    }
}

bool Network::restart(int i, std::string& why) {
    return nodes_.at(static_cast<size_t>(i))->start(why);
}

std::string Network::log_tails(size_t bytes) const {
    std::string out;
    for (const auto& n : nodes_) {
        out += "\n----- node " + std::to_string(n->index()) + " log (" + n->log_path() +
               ", tail) -----\n" + n->log_tail(bytes);
    }
    return out;
}

uint16_t port_of_address(const std::string& address) {
    std::string_view rest = address;
    constexpr std::string_view kScheme = "https://";
    if (rest.starts_with(kScheme)) {
        rest.remove_prefix(kScheme.size());
    }
    rest = rest.substr(0, rest.find('/'));
    size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) {
        return 0;
    }
    std::string_view digits = rest.substr(colon + 1);
    if (digits.empty() || digits.size() > 5 ||
        digits.find_first_not_of("0123456789") != std::string_view::npos) {
        return 0;
    }
    unsigned long port = std::stoul(std::string(digits));
    return port <= 65535 ? static_cast<uint16_t>(port) : 0;
}

std::optional<std::string> write_following_redirects(const Network& network, int first,
                                                     const Identity& who, const std::string& path,
                                                     const std::string& body, int timeout_ms) {
    auto deadline = deadline_in(timeout_ms);
    int target = first;
    int hops = 0;
    while (Clock::now() < deadline) {
        auto client = network.connect(target, &who, kStatePollTimeoutMs * 4);
        auto r = client.ok() ? (*client)->request("POST", path, body)
                             : Result<net::HttpResponse>(client.status());
        if (r.ok() && r->status == 200) {
            return json::parse(r->body, nullptr, false).value("transaction_id", "");
        }
        int next = -1;
        if (r.ok() && r->status == 307 && hops < kMaxRedirects) {
            next = network.index_of_port(port_of_address(r->header("Location").value_or("")));
        }
        if (next >= 0) {
            ++hops;
            target = next;
            continue;
        }
        hops = 0;
        target = (target + 1) % network.size();
        sleep_ms(kPollMs * 5);
    }
    return std::nullopt;
}

bool wait_tx_committed(const Network& network, const std::string& tx_id, int timeout_ms) {
    auto deadline = deadline_in(timeout_ms);
    while (Clock::now() < deadline) {
        for (int i = 0; i < network.size(); ++i) {
            if (!network.node(i).running() || network.node(i).paused()) {
                continue;
            }
            auto client = network.connect(i, nullptr, kTxWaitMs + kStatePollTimeoutMs);
            if (!client.ok()) {
                continue;
            }
            auto r = (*client)->request("GET", "/node/tx?transaction_id=" + tx_id +
                                                   "&wait_ms=" + std::to_string(kTxWaitMs));
            if (!r.ok() || r->status != 200) {
                continue;
            }
            std::string status = json::parse(r->body, nullptr, false).value("status", "");
            if (status == "Committed") {
                return true;
            }
            if (status == "Invalid") {
                return false;
            }
        }
        sleep_ms(kPollMs);
    }
    return false;
}

bool trust_pending_nodes(uint16_t port, const std::string& service_cert_pem, const Identity& member,
                         std::set<std::string>& proposed, std::string& why) {
    return trust_pending_nodes(port, service_cert_pem, std::vector<Identity>{member}, proposed,
                               why);
}

bool trust_pending_nodes(uint16_t port, const std::string& service_cert_pem,
                         const std::vector<Identity>& members, std::set<std::string>& proposed,
                         std::string& why) {
    net::ClientOptions options;
    options.port = port;
    options.ca_cert_pem = service_cert_pem;
    options.timeout_ms = kStatePollTimeoutMs;
    auto client = net::HttpClient::connect(options);
    if (!client.ok()) {
        why = client.status().to_string();
        return false;
    }
    auto answer = (*client)->request("GET", "/node/network");
    if (!answer.ok() || answer->status != 200) {
        why = "GET /node/network failed";
        return false;
    }
    json network = json::parse(answer->body, nullptr, false);
    if (!network.is_object() || !network["nodes"].is_array()) {
        why = "GET /node/network: unexpected answer";
        return false;
    }
    TempDir scratch;
    std::string cert_path = scratch.path() + "/service_cert.pem";
    write_text_file(cert_path, service_cert_pem);
    for (const json& n : network["nodes"]) {
        std::string id = n.value("node_id", "");
        if (n.value("status", "") != "pending" || proposed.count(id) != 0) {
            continue;
        }
        json actions = json::array({{{"name", "trust_node"}, {"args", {{"node_id", id}}}}});
        if (!pass_proposal(port, cert_path, members, actions, why).has_value()) {
            return false;
        }
        proposed.insert(id);
    }
    return true;
}

}  // namespace coffer::e2e
