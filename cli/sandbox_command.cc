// `coffer sandbox --nodes N [--dir DIR]`: a service of N nodes on 127.0.0.1 for development
// and demonstrations, every node a child process of this one (docs/sandbox.md).
//
// The sandbox makes member identities (member0..member{M-1}) and user identities (user0 and the
// --users parties), starts node 0 with `coffer node start` (a new service, "opening"), opens the
// service by member0's transition_service_to_open proposal (voted by the members in order until
// accepted), passes set_recovery_threshold the same way with --recovery-threshold, joins nodes
// 1..N-1 one at a time with `coffer node join`, waits until the network lists every node as
// trusted with exactly one leader, writes
// DIR/sandbox.json and then waits for SIGINT/SIGTERM/SIGHUP, reporting children that die on the
// way. It talks to the nodes only over their public HTTPS endpoints, pinning the service
// certificate.
//
// Single-threaded: the stop signals and SIGCHLD are blocked and taken with sigtimedwait, so no
// work happens in a signal handler.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/check.h"
#include "net/client.h"
#include "node/files.h"
#include "node/governance_maps.h"
#include "node/identity.h"

namespace coffer::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kMaxNodes = 7;
// Users besides user0 (`--users`); each is a clean-room party named by its commonName.
constexpr size_t kMaxUsers = 64;
constexpr size_t kMaxIdentityNameChars = 64;
constexpr const char* kDefaultUser = "user0";
// Members (`--members`); each one is named memberI, I from 0.
constexpr int kMaxMembers = 16;
constexpr const char* kMemberPrefix = "member";
constexpr int64_t kMaxTimeoutS = 3600;
constexpr int kPortsPollMs = 50;
constexpr int kHttpPollMs = 200;
constexpr int kMonitorPollMs = 500;
constexpr int kStopTimeoutMs = 10000;
constexpr uint32_t kRequestTimeoutMs = 2000;
constexpr size_t kMaxSmallFileBytes = 64 * 1024;
constexpr size_t kMaxLogTailBytes = 2048;
constexpr size_t kMaxLogReadBytes = 64u << 20;
constexpr int64_t kIdentityValidityS = 365 * 24 * 3600;
// Short, so that writes made in the sandbox become Committed quickly.
constexpr uint64_t kSignatureIntervalMs = 20;
// A request handler holds its thread while it waits (GET /node/tx?wait_ms, linearizable
// reads), so a sandbox serving many clients that wait for their commits needs more than the
// default four.
constexpr int kHttpThreads = 16;
constexpr int kSandboxFileVersion = 1;
constexpr const char* kSandboxFileName = "sandbox.json";
// The output of the last `coffer member` command the sandbox ran.
constexpr const char* kGovernanceLogName = "governance.log";
constexpr const char* kLoopback = "127.0.0.1";

struct SandboxOptions {
    int nodes = 3;
    int members = 1;
    // 0: no set_recovery_threshold proposal; else 1..members.
    int recovery_threshold = 0;
    std::string dir = "sandbox";
    int64_t timeout_s = 60;
    std::string coffer_binary;
    bool quiet = false;
    bool exit_on_child_death = false;
    // Extra users, made like user0 (names checked by check_user_names).
    std::vector<std::string> users;
    bool no_default_user = false;
};

// Absolute paths of one member or user identity's files (as `coffer keygen` names them).
struct IdentityFiles {
    std::string cert;
    std::string key;
    std::string enc_key;
    std::string enc_pub;
};

struct NodeProcess {
    int index = 0;
    std::string dir;
    std::string config;
    std::string data_dir;
    std::string log;
    pid_t pid = -1;
    bool running = false;
    std::string node_id;
    std::string client_address;
    uint16_t client_port = 0;
    std::string node_address;
    std::string role;
};

std::string signal_name(int sig) {
    const char* name = sigabbrev_np(sig);
    return name != nullptr ? std::string("SIG") + name : std::to_string(sig);
}

std::string describe_exit(int status) {
    if (WIFEXITED(status)) {
        return "exited with code " + std::to_string(WEXITSTATUS(status));
    }
    if (WIFSIGNALED(status)) {
        return "was killed by " + signal_name(WTERMSIG(status));
    }
    return "stopped";
}

// The last lines of a log, for error messages (at most kMaxLogTailBytes).
std::string log_tail(const std::string& path) {
    auto text = node::read_small_file(path, kMaxLogReadBytes);
    if (!text.ok() || text->empty()) {
        return "";
    }
    std::string tail =
        text->size() > kMaxLogTailBytes ? text->substr(text->size() - kMaxLogTailBytes) : *text;
    return "\n--- last lines of " + path + " ---\n" + tail;
}

// True if `pid` is alive and has `word` among its arguments: a pid read from a stale file may
// since belong to an unrelated process.
bool process_runs(int64_t pid, std::string_view word) {
    if (pid <= 0 || pid == ::getpid()) {
        return false;
    }
    auto cmdline =
        node::read_small_file("/proc/" + std::to_string(pid) + "/cmdline", kMaxSmallFileBytes);
    if (!cmdline.ok()) {
        return false;
    }
    std::istringstream in(*cmdline);
    for (std::string arg; std::getline(in, arg, '\0');) {
        if (arg == word) {
            return true;
        }
    }
    return false;
}

// Fields of JSON read from files and nodes, without json::value's exception on a wrong type.
int64_t int_field(const json& object, const char* key) {
    auto it = object.find(key);
    return it != object.end() && it->is_number_integer() ? it->get<int64_t>() : -1;
}

std::string string_field(const json& object, const char* key) {
    auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

// The names in a folder. Errors: kIo.
Result<std::vector<std::string>> list_dir(const std::string& dir) {
    std::vector<std::string> names;
    try {
        for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
            names.push_back(entry.path().filename().string());
        }
    } catch (const fs::filesystem_error& e) {
        return error(Errc::kIo, "cannot list " + dir + ": " + e.what());
    }
    return names;
}

Result<json> read_json_file(const std::string& path) {
    COFFER_ASSIGN_OR_RETURN(std::string text, node::read_small_file(path, kMaxSmallFileBytes));
    json value = json::parse(text, nullptr, false);
    if (!value.is_object()) {
        return error(Errc::kCorrupt, path + " is not a JSON object");
    }
    return value;
}

// Only what a sandbox makes may be replaced in DIR, so that `--dir $HOME` never deletes
// anything else.
bool is_sandbox_entry(const std::string& name) {
    if (name == "identities" || name == kGovernanceLogName || name == kSandboxFileName ||
        name == std::string(kSandboxFileName) + ".tmp") {
        return true;
    }
    return name.size() == 5 && name.starts_with("node") && name[4] >= '0' &&
           name[4] < '0' + kMaxNodes;
}

// Runs in the forked child: only async-signal-safe calls until execv.
[[noreturn]] void exec_child(char* const* argv, int log_fd, int null_fd, pid_t parent) {
    // Its own process group: a Ctrl-C in the terminal reaches only the sandbox, which then
    // stops the nodes itself.
    ::setpgid(0, 0);
    // If the sandbox dies without stopping its nodes (SIGKILL), they stop too.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) {
        ::_exit(127);
    }
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::execv(argv[0], argv);
    const char message[] = "coffer sandbox: cannot execute the coffer binary\n";
    [[maybe_unused]] ssize_t n = ::write(2, message, sizeof(message) - 1);
    ::_exit(127);
}

// Starts `binary args...` with stdin from /dev/null and stdout+stderr to `log` (truncated).
Result<pid_t> spawn(const std::string& binary, const std::vector<std::string>& args,
                    const std::string& log) {
    int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0) {
        return error(Errc::kIo, "cannot create " + log + ": " + std::strerror(errno));
    }
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    std::vector<std::string> all = {binary};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid == 0) {
        exec_child(argv.data(), log_fd, null_fd, parent);
    }
    int fork_errno = errno;
    ::close(log_fd);
    if (null_fd >= 0) {
        ::close(null_fd);
    }
    if (pid < 0) {
        return error(Errc::kIo, std::string("fork failed: ") + std::strerror(fork_errno));
    }
    return pid;
}

class Sandbox {
  public:
    Sandbox(SandboxOptions options, sigset_t signals)
        : options_(std::move(options)), signals_(signals) {}

    // Starts the sandbox, waits for a stop signal, stops it. Returns the exit code.
    int run();

  private:
    Status start();
    Status prepare_dir();
    Status refuse_if_running();
    Status make_identities();
    Status write_identity(const std::string& name, IdentityFiles& files);
    json node_config(const NodeProcess& proc) const;
    Status start_node(int index);
    Status wait_for_ports(NodeProcess& proc);
    // Trusts every node the first node lists as pending, by pass_proposal: how the sandbox
    // admits its joiners.
    std::optional<std::string> trust_pending_nodes();
    // Opens the new service the same way, with a transition_service_to_open proposal, once
    // node 0 leads.
    Status open_service();
    // With --recovery-threshold K: passes set_recovery_threshold {"threshold": K} and waits
    // until node 0's committed GET /gov/recovery reports K.
    Status set_recovery_threshold();
    // Proposes `action` with `args` as member0, then votes yes as member0, member1, ... while
    // the proposal is still open; the proposal's final state.
    Result<std::string> pass_proposal(const std::string& action, const json& args);
    // Runs `coffer member COMMAND ...` as members_[member] against the first node; its JSON
    // answer.
    Result<json> member_command(size_t member, const std::string& command,
                                std::vector<std::string> args);
    Status wait_for_network(NodeProcess& proc);
    Status wait_until_ready();
    std::optional<std::string> network_not_ready(size_t expected);
    std::optional<std::string> roles_not_ready();
    Result<json> get_json(const NodeProcess& proc, const std::string& target);
    Status poll_until(const std::string& what, const NodeProcess& proc, int interval_ms,
                      const std::function<std::optional<std::string>()>& probe);
    Status write_sandbox_file();
    void print_summary() const;
    int monitor();
    int watch_children();
    std::optional<std::string> reap(NodeProcess& proc, bool block);
    bool pause_ms(int ms);
    void stop_children();

    SandboxOptions options_;
    sigset_t signals_;
    int stop_signal_ = 0;
    std::string dir_;
    // member0..member{--members - 1}, in order; never empty.
    std::vector<IdentityFiles> members_;
    // user0 (unless --no-user0) then --users, in order; never empty.
    std::vector<std::pair<std::string, IdentityFiles>> users_;
    std::string service_cert_path_;
    std::string service_cert_pem_;
    std::deque<NodeProcess> nodes_;
    // Pending nodes a trust_node proposal was passed for.
    std::set<std::string> trusted_;
    std::string trust_failure_;
    bool sandbox_file_written_ = false;
};

int Sandbox::run() {
    Status started = start();
    if (!started.ok()) {
        std::cerr << "error: " << started.message() << std::endl;
        stop_children();
        if (sandbox_file_written_) {
            std::error_code ec;
            fs::remove(dir_ + "/" + kSandboxFileName, ec);
        }
        return 1;
    }
    print_summary();
    return monitor();
}

Status Sandbox::start() {
    COFFER_RETURN_IF_ERROR(prepare_dir());
    COFFER_RETURN_IF_ERROR(make_identities());
    for (int i = 0; i < options_.nodes; ++i) {
        COFFER_RETURN_IF_ERROR(start_node(i));
        COFFER_RETURN_IF_ERROR(wait_for_ports(nodes_.back()));
        if (i == 0) {
            COFFER_ASSIGN_OR_RETURN(service_cert_pem_,
                                    node::read_small_file(service_cert_path_, kMaxSmallFileBytes));
            COFFER_RETURN_IF_ERROR(open_service());
        }
        // One configuration change at a time: the next node joins only once this one is in.
        COFFER_RETURN_IF_ERROR(wait_for_network(nodes_.back()));
        if (i == 0) {
            // Before the other nodes join: they then receive the secrets the shares cover.
            COFFER_RETURN_IF_ERROR(set_recovery_threshold());
        }
        if (!options_.quiet) {
            std::cout << "node " << i << ": pid " << nodes_.back().pid << ", serving on "
                      << nodes_.back().client_address << std::endl;
        }
    }
    COFFER_RETURN_IF_ERROR(wait_until_ready());
    return write_sandbox_file();
}

Status Sandbox::prepare_dir() {
    std::error_code ec;
    dir_ = fs::absolute(options_.dir, ec).lexically_normal().string();
    if (ec) {
        return error(Errc::kIo, "cannot resolve " + options_.dir + ": " + ec.message());
    }
    while (dir_.size() > 1 && dir_.back() == '/') {
        dir_.pop_back();
    }
    COFFER_RETURN_IF_ERROR(node::make_private_dir(dir_));
    COFFER_RETURN_IF_ERROR(refuse_if_running());
    COFFER_ASSIGN_OR_RETURN(std::vector<std::string> names, list_dir(dir_));
    for (const std::string& name : names) {
        if (!is_sandbox_entry(name)) {
            return error(Errc::kFailedPrecondition,
                         dir_ + " holds " + name +
                             ", which a sandbox did not make; choose a new or empty --dir");
        }
    }
    // A new service every time: the files of an earlier sandbox in DIR are replaced.
    for (const std::string& name : names) {
        std::error_code removed;
        fs::remove_all(dir_ + "/" + name, removed);
        if (removed) {
            return error(Errc::kIo,
                         "cannot remove " + dir_ + "/" + name + ": " + removed.message());
        }
    }
    return Status();
}

Status Sandbox::refuse_if_running() {
    std::string file = dir_ + "/" + kSandboxFileName;
    if (node::path_exists(file)) {
        auto existing = read_json_file(file);
        int64_t pid = existing.ok() ? int_field(*existing, "pid") : -1;
        if (process_runs(pid, "sandbox")) {
            return error(Errc::kFailedPrecondition, dir_ + " holds a running sandbox (pid " +
                                                        std::to_string(pid) +
                                                        "); stop it first or choose another --dir");
        }
    }
    for (int i = 0; i < kMaxNodes; ++i) {
        std::string ports = dir_ + "/node" + std::to_string(i) + "/data/node_ports.json";
        auto existing = node::path_exists(ports) ? read_json_file(ports) : Result<json>(json{});
        int64_t pid = existing.ok() ? int_field(*existing, "pid") : -1;
        if (process_runs(pid, "node")) {
            return error(Errc::kFailedPrecondition, "a node of an earlier sandbox still runs on " +
                                                        ports + " (pid " + std::to_string(pid) +
                                                        "); stop it first or choose another --dir");
        }
    }
    return Status();
}

Status Sandbox::write_identity(const std::string& name, IdentityFiles& files) {
    auto identity = node::make_client_identity(name, static_cast<int64_t>(std::time(nullptr)),
                                               kIdentityValidityS);
    if (!identity.ok()) {
        return identity.status();
    }
    std::string base = dir_ + "/identities/" + name;
    files = {base + "_cert.pem", base + "_privk.pem", base + "_enc_privk.pem",
             base + "_enc_pubk.pem"};
    COFFER_RETURN_IF_ERROR(node::create_file_exclusive(files.key, identity->private_key_pem, 0600));
    COFFER_RETURN_IF_ERROR(
        node::create_file_exclusive(files.cert, identity->certificate_pem, 0644));
    COFFER_RETURN_IF_ERROR(
        node::create_file_exclusive(files.enc_key, identity->encryption_private_key_pem, 0600));
    return node::create_file_exclusive(files.enc_pub, identity->encryption_public_key_pem, 0644);
}

Status Sandbox::make_identities() {
    COFFER_RETURN_IF_ERROR(node::make_private_dir(dir_ + "/identities"));
    for (int i = 0; i < options_.members; ++i) {
        IdentityFiles files;
        COFFER_RETURN_IF_ERROR(write_identity(kMemberPrefix + std::to_string(i), files));
        members_.push_back(std::move(files));
    }
    std::vector<std::string> names;
    if (!options_.no_default_user) {
        names.emplace_back(kDefaultUser);
    }
    names.insert(names.end(), options_.users.begin(), options_.users.end());
    for (const std::string& name : names) {
        IdentityFiles files;
        COFFER_RETURN_IF_ERROR(write_identity(name, files));
        users_.emplace_back(name, std::move(files));
    }
    return Status();
}

json Sandbox::node_config(const NodeProcess& proc) const {
    std::string any_port = std::string(kLoopback) + ":0";
    json config = {{"client_address", any_port},
                   {"node_address", any_port},
                   {"data_dir", proc.data_dir},
                   {"signatures", {{"interval_ms", kSignatureIntervalMs}}},
                   {"http", {{"threads", kHttpThreads}}},
                   {"log_level", "info"}};
    if (proc.index == 0) {
        json members = json::array();
        for (const IdentityFiles& files : members_) {
            members.push_back(
                {{"certificate", files.cert}, {"encryption_public_key", files.enc_pub}});
        }
        config["members"] = std::move(members);
        json users = json::array();
        for (const auto& [name, files] : users_) {
            users.push_back(
                {{"certificate", files.cert}, {"encryption_public_key", files.enc_pub}});
        }
        config["users"] = std::move(users);
    } else {
        // Members and users come from the network a joiner joins.
        config["join"] = {{"target", nodes_.front().client_address},
                          {"service_cert_file", service_cert_path_}};
    }
    return config;
}

Status Sandbox::start_node(int index) {
    NodeProcess proc;
    proc.index = index;
    proc.dir = dir_ + "/node" + std::to_string(index);
    proc.config = proc.dir + "/config.json";
    proc.data_dir = proc.dir + "/data";
    proc.log = proc.dir + "/node.log";
    if (index == 0) {
        service_cert_path_ = proc.data_dir + "/service_cert.pem";
    }
    COFFER_RETURN_IF_ERROR(node::make_private_dir(proc.dir));
    COFFER_RETURN_IF_ERROR(
        node::write_file_atomic(proc.config, node_config(proc).dump(2) + "\n", 0644));
    std::vector<std::string> args = {"node", index == 0 ? "start" : "join", "--config",
                                     proc.config};
    auto pid = spawn(options_.coffer_binary, args, proc.log);
    if (!pid.ok()) {
        return pid.status().with_context("node " + std::to_string(index) + ": ");
    }
    proc.pid = *pid;
    proc.running = true;
    nodes_.push_back(std::move(proc));
    return Status();
}

// Polls `probe` (nullopt = done, otherwise why not yet) until done, --timeout-s passes, a
// stop signal arrives, or a started node dies.
Status Sandbox::poll_until(const std::string& what, const NodeProcess& proc, int interval_ms,
                           const std::function<std::optional<std::string>()>& probe) {
    auto deadline = Clock::now() + std::chrono::seconds(options_.timeout_s);
    while (true) {
        for (NodeProcess& n : nodes_) {
            std::optional<std::string> died = reap(n, false);
            if (died.has_value()) {
                return error(Errc::kFailedPrecondition,
                             "node " + std::to_string(n.index) + " (pid " + std::to_string(n.pid) +
                                 ") " + *died + "; see " + n.log + log_tail(n.log));
            }
        }
        std::optional<std::string> not_yet = probe();
        if (!not_yet.has_value()) {
            return Status();
        }
        if (Clock::now() >= deadline) {
            return error(Errc::kFailedPrecondition,
                         what + " within " + std::to_string(options_.timeout_s) + " s (" +
                             *not_yet + "); see " + proc.log + log_tail(proc.log));
        }
        if (pause_ms(interval_ms)) {
            return error(Errc::kFailedPrecondition, "interrupted by " + signal_name(stop_signal_) +
                                                        " before the sandbox was ready");
        }
    }
}

Status Sandbox::wait_for_ports(NodeProcess& proc) {
    std::string path = proc.data_dir + "/node_ports.json";
    std::string what = "node " + std::to_string(proc.index) + " did not write " + path;
    return poll_until(what, proc, kPortsPollMs, [&]() -> std::optional<std::string> {
        auto ports = read_json_file(path);
        if (!ports.ok() && proc.index > 0) {
            // A joiner waits, as pending, for the members to trust it.
            std::optional<std::string> untrusted = trust_pending_nodes();
            return untrusted.has_value() ? *untrusted : "no ports file yet";
        }
        if (!ports.ok()) {
            return "no ports file yet";
        }
        if (int_field(*ports, "pid") != proc.pid) {
            return "the ports file is not from pid " + std::to_string(proc.pid);
        }
        int64_t port = int_field(*ports, "client_port");
        if (port <= 0 || port > 65535) {
            return "the ports file has no client_port";
        }
        proc.client_port = static_cast<uint16_t>(port);
        proc.client_address = string_field(*ports, "client_address");
        proc.node_address = string_field(*ports, "node_address");
        return std::nullopt;
    });
}

Result<json> Sandbox::member_command(size_t member, const std::string& command,
                                     std::vector<std::string> args) {
    COFFER_CHECK(member < members_.size(), "member_command: no such sandbox member");
    std::string out = dir_ + "/" + kGovernanceLogName;
    args.insert(args.begin(), {"member", command, "--service", nodes_.front().client_address,
                               "--service-cert", service_cert_path_, "--cert",
                               members_[member].cert, "--key", members_[member].key});
    COFFER_ASSIGN_OR_RETURN(pid_t pid, spawn(options_.coffer_binary, args, out));
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    COFFER_ASSIGN_OR_RETURN(std::string printed, node::read_small_file(out, kMaxSmallFileBytes));
    size_t start = printed.find('{');
    size_t end = printed.rfind('}');
    json answer = start == std::string::npos || end == std::string::npos || end < start
                      ? json()
                      : json::parse(printed.substr(start, end - start + 1), nullptr, false);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !answer.is_object()) {
        return error(Errc::kFailedPrecondition,
                     "coffer member " + command + " failed: " + printed.substr(0, 600));
    }
    return answer;
}

std::optional<std::string> Sandbox::trust_pending_nodes() {
    if (!trust_failure_.empty()) {
        return trust_failure_;
    }
    auto network = get_json(nodes_.front(), "/node/network");
    if (!network.ok() || !(*network)["nodes"].is_array()) {
        return "the first node does not list the network yet";
    }
    for (const json& n : (*network)["nodes"]) {
        std::string id = string_field(n, "node_id");
        if (string_field(n, "status") != "pending" || trusted_.count(id) != 0) {
            continue;
        }
        // One attempt per node: a refused proposal is not retried at every poll.
        trusted_.insert(id);
        auto state = pass_proposal("trust_node", {{"node_id", id}});
        if (!state.ok() || *state != "accepted") {
            trust_failure_ =
                "trusting node " + id + ": " +
                (state.ok() ? "the proposal ended " + *state : state.status().message());
            return trust_failure_;
        }
        if (!options_.quiet) {
            std::cout << "member0 proposed trust_node " << id.substr(0, 16)
                      << "...; the members voted: accepted" << std::endl;
        }
    }
    return std::nullopt;
}

Result<std::string> Sandbox::pass_proposal(const std::string& action, const json& args) {
    COFFER_ASSIGN_OR_RETURN(
        json proposed, member_command(0, "propose", {"--action", action, "--args", args.dump()}));
    std::string state = string_field(proposed, "state");
    std::string id = string_field(proposed, "proposal_id");
    // The default constitution accepts at a strict majority of the active members, the
    // proposer's vote included; the loop is bounded by the members (at most kMaxMembers).
    for (size_t member = 0; member < members_.size() && state == "open"; ++member) {
        COFFER_ASSIGN_OR_RETURN(json voted,
                                member_command(member, "vote", {"--proposal", id, "--yes"}));
        state = string_field(voted, "state");
    }
    return state;
}

Status Sandbox::open_service() {
    NodeProcess& first = nodes_.front();
    COFFER_RETURN_IF_ERROR(poll_until(
        "node 0 did not become leader", first, kHttpPollMs, [&]() -> std::optional<std::string> {
            auto state = get_json(first, "/node/state");
            if (!state.ok()) {
                return "node 0: " + state.status().message();
            }
            std::string role = string_field(*state, "role");
            return role == "leader" ? std::nullopt
                                    : std::optional<std::string>("node 0 is " + role);
        }));
    auto state = pass_proposal("transition_service_to_open", json::object());
    if (!state.ok() || *state != "accepted") {
        return error(Errc::kFailedPrecondition,
                     "opening the service: " +
                         (state.ok() ? "the proposal ended " + *state : state.status().message()) +
                         "; see " + dir_ + "/" + kGovernanceLogName);
    }
    if (!options_.quiet) {
        std::cout << "member0 proposed transition_service_to_open; the members voted: accepted"
                  << std::endl;
    }
    return Status();
}

Status Sandbox::set_recovery_threshold() {
    int threshold = options_.recovery_threshold;
    if (threshold == 0) {
        return Status();
    }
    auto state = pass_proposal("set_recovery_threshold", {{"threshold", threshold}});
    if (!state.ok() || *state != "accepted") {
        return error(Errc::kFailedPrecondition,
                     "setting the recovery threshold: " +
                         (state.ok() ? "the proposal ended " + *state : state.status().message()) +
                         "; see " + dir_ + "/" + kGovernanceLogName);
    }
    COFFER_RETURN_IF_ERROR(poll_until("the recovery threshold was not committed", nodes_.front(),
                                      kHttpPollMs, [&]() -> std::optional<std::string> {
                                          auto recovery = get_json(nodes_.front(), "/gov/recovery");
                                          if (!recovery.ok()) {
                                              return "node 0: " + recovery.status().message();
                                          }
                                          int64_t committed = int_field(*recovery, "threshold");
                                          return committed == threshold
                                                     ? std::nullopt
                                                     : std::optional<std::string>(
                                                           "GET /gov/recovery reports threshold " +
                                                           std::to_string(committed));
                                      }));
    if (!options_.quiet) {
        std::cout << "member0 proposed set_recovery_threshold " << threshold
                  << "; the members voted: accepted" << std::endl;
    }
    return Status();
}

Result<json> Sandbox::get_json(const NodeProcess& proc, const std::string& target) {
    net::ClientOptions options;
    options.host = kLoopback;
    options.port = proc.client_port;
    options.ca_cert_pem = service_cert_pem_;
    options.timeout_ms = kRequestTimeoutMs;
    COFFER_ASSIGN_OR_RETURN(std::unique_ptr<net::HttpClient> client,
                            net::HttpClient::connect(std::move(options)));
    COFFER_ASSIGN_OR_RETURN(net::HttpResponse response, client->request("GET", target));
    if (response.status != 200) {
        return error(Errc::kFailedPrecondition,
                     "GET " + target + " answered " + std::to_string(response.status));
    }
    json body = json::parse(response.body, nullptr, false);
    if (!body.is_object()) {
        return error(Errc::kCorrupt, "GET " + target + " did not answer a JSON object");
    }
    return body;
}

// Why GET /node/network on node 0 does not yet show an open service of exactly `expected`
// trusted nodes; nullopt when it does.
std::optional<std::string> Sandbox::network_not_ready(size_t expected) {
    auto network = get_json(nodes_.front(), "/node/network");
    if (!network.ok()) {
        return "node 0: " + network.status().message();
    }
    if (string_field(*network, "service_status") != node::kServiceStatusOpen) {
        return "service status is \"" + string_field(*network, "service_status") + "\"";
    }
    auto found = network->find("nodes");
    if (found == network->end() || !found->is_array()) {
        return "GET /node/network has no node list";
    }
    const json& listed = *found;
    size_t trusted = 0;
    for (const json& n : listed) {
        if (n.is_object() && string_field(n, "status") == node::kNodeStatusTrusted) {
            ++trusted;
        }
    }
    if (listed.size() != expected || trusted != expected) {
        return std::to_string(trusted) + " of " + std::to_string(listed.size()) +
               " listed nodes trusted, " + std::to_string(expected) + " expected";
    }
    return std::nullopt;
}

Status Sandbox::wait_for_network(NodeProcess& proc) {
    std::string what =
        proc.index == 0 ? "the service did not open"
                        : "node " + std::to_string(proc.index) + " was not admitted to the network";
    return poll_until(what, proc, kHttpPollMs,
                      [&] { return network_not_ready(static_cast<size_t>(proc.index) + 1); });
}

// Why the nodes do not yet all report part_of_network with exactly one leader; nullopt when
// they do. Fills each node's node_id and role.
std::optional<std::string> Sandbox::roles_not_ready() {
    int leaders = 0;
    std::set<std::string> ids;
    for (NodeProcess& n : nodes_) {
        auto state = get_json(n, "/node/state");
        if (!state.ok()) {
            return "node " + std::to_string(n.index) + ": " + state.status().message();
        }
        if (string_field(*state, "state") != "part_of_network") {
            return "node " + std::to_string(n.index) + " is " + string_field(*state, "state");
        }
        n.node_id = string_field(*state, "node_id");
        n.role = string_field(*state, "role");
        ids.insert(n.node_id);
        leaders += n.role == "leader" ? 1 : 0;
    }
    if (ids.size() != nodes_.size()) {
        return "two nodes report the same node id";
    }
    if (leaders != 1) {
        return std::to_string(leaders) + " nodes report role leader";
    }
    return std::nullopt;
}

Status Sandbox::wait_until_ready() {
    auto probe = [&]() -> std::optional<std::string> {
        std::optional<std::string> network = network_not_ready(nodes_.size());
        return network.has_value() ? network : roles_not_ready();
    };
    return poll_until("the network was not ready", nodes_.front(), kHttpPollMs, probe);
}

Status Sandbox::write_sandbox_file() {
    json nodes = json::array();
    for (const NodeProcess& n : nodes_) {
        nodes.push_back({{"node_id", n.node_id},
                         {"client_address", n.client_address},
                         {"node_address", n.node_address},
                         {"data_dir", n.data_dir},
                         {"log", n.log},
                         {"pid", static_cast<int64_t>(n.pid)}});
    }
    auto identity = [](const std::string& name, const IdentityFiles& files) {
        return json{{"name", name},
                    {"cert", files.cert},
                    {"key", files.key},
                    {"enc_key", files.enc_key},
                    {"enc_pub", files.enc_pub}};
    };
    json members = json::array();
    for (size_t i = 0; i < members_.size(); ++i) {
        members.push_back(identity(kMemberPrefix + std::to_string(i), members_[i]));
    }
    json users = json::array();
    for (const auto& [name, files] : users_) {
        users.push_back(identity(name, files));
    }
    json file = {{"version", kSandboxFileVersion},
                 {"pid", static_cast<int64_t>(::getpid())},
                 {"service_cert", service_cert_path_},
                 {"member_cert", members_.front().cert},
                 {"member_key", members_.front().key},
                 {"member_enc_key", members_.front().enc_key},
                 {"members", std::move(members)},
                 {"recovery_threshold", options_.recovery_threshold},
                 {"user_cert", users_.front().second.cert},
                 {"user_key", users_.front().second.key},
                 {"user_enc_key", users_.front().second.enc_key},
                 {"users", std::move(users)},
                 {"nodes", std::move(nodes)}};
    sandbox_file_written_ = true;
    return node::write_file_atomic(dir_ + "/" + kSandboxFileName, file.dump(2) + "\n", 0644);
}

void Sandbox::print_summary() const {
    if (options_.quiet) {
        return;
    }
    const NodeProcess* leader = &nodes_.front();
    std::ostringstream out;
    out << "\nCoffer sandbox: " << nodes_.size() << " node(s) on " << kLoopback << " in " << dir_
        << "\n  service certificate  " << service_cert_path_ << "\n";
    for (const NodeProcess& n : nodes_) {
        out << "  node " << n.index << "  https://" << std::left << std::setw(22)
            << n.client_address << std::setw(10) << n.role << "pid " << std::setw(8) << n.pid
            << "log " << n.log << "\n";
        leader = n.role == "leader" ? &n : leader;
    }
    for (size_t i = 0; i < members_.size(); ++i) {
        const IdentityFiles& m = members_[i];
        out << "  " << std::left << std::setw(8) << (kMemberPrefix + std::to_string(i)) << " "
            << m.cert << " " << m.key << " " << m.enc_key << "\n";
    }
    if (options_.recovery_threshold > 0) {
        out << "  recovery threshold  " << options_.recovery_threshold << " of " << members_.size()
            << " members\n";
    }
    for (const auto& [name, files] : users_) {
        out << "  " << std::left << std::setw(8) << name << " " << files.cert << " " << files.key
            << " " << files.enc_key << "\n";
    }
    out << "  details  " << dir_ << "/" << kSandboxFileName << "\n\n";
    std::string url = "https://" + leader->client_address;
    const auto& [user_name, user] = users_.front();
    std::string as_user =
        "curl --cacert " + service_cert_path_ + " --cert " + user.cert + " --key " + user.key;
    out << "Try (as " << user_name << ", on the leader):\n"
        << "  " << as_user << " -H 'content-type: application/json' -d '{\"id\": 1, \"msg\": "
        << "\"hello\"}' " << url << "/app/log/private\n"
        << "  " << as_user << " '" << url << "/app/log/private?id=1'\n"
        << "  curl --cacert " << service_cert_path_ << " " << url << "/node/network\n\n"
        << "Press Ctrl-C to stop." << std::endl;
    std::cout << out.str() << std::flush;
}

// Reaps `proc` if it has exited (waiting for it when `block`); returns how it ended, or nullopt
// while it runs.
std::optional<std::string> Sandbox::reap(NodeProcess& proc, bool block) {
    if (!proc.running) {
        return std::nullopt;
    }
    int status = 0;
    pid_t done = ::waitpid(proc.pid, &status, block ? 0 : WNOHANG);
    if (done == 0 || (done < 0 && errno == EINTR)) {
        return std::nullopt;
    }
    proc.running = false;
    return done < 0 ? std::string("vanished") : describe_exit(status);
}

// Sleeps up to `ms`; returns true when a stop signal arrived (SIGCHLD only ends the sleep).
bool Sandbox::pause_ms(int ms) {
    timespec timeout{ms / 1000, static_cast<long>(ms % 1000) * 1000 * 1000};
    int sig = ::sigtimedwait(&signals_, nullptr, &timeout);
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
        stop_signal_ = sig;
        return true;
    }
    return false;
}

// Waits for a stop signal, reporting nodes that exit on their own; returns 0 after a stop
// signal, 1 after a node's exit with --exit-on-child-death.
int Sandbox::watch_children() {
    while (!pause_ms(kMonitorPollMs)) {
        for (NodeProcess& n : nodes_) {
            std::optional<std::string> died = reap(n, false);
            if (!died.has_value()) {
                continue;
            }
            std::cerr << "node " << n.index << " (pid " << n.pid << ") " << *died << "; see "
                      << n.log << std::endl;
            if (options_.exit_on_child_death) {
                return 1;
            }
        }
    }
    return 0;
}

int Sandbox::monitor() {
    int exit_code = watch_children();
    stop_children();
    std::error_code ec;
    fs::remove(dir_ + "/" + kSandboxFileName, ec);
    if (!options_.quiet) {
        std::cout << "sandbox stopped" << std::endl;
    }
    return exit_code;
}

// SIGTERM to every running node, then up to kStopTimeoutMs for them all to exit (a second
// stop signal cuts the wait short), then SIGKILL for the rest.
void Sandbox::stop_children() {
    for (const NodeProcess& n : nodes_) {
        if (n.running) {
            ::kill(n.pid, SIGTERM);
        }
    }
    auto deadline = Clock::now() + std::chrono::milliseconds(kStopTimeoutMs);
    bool any_running = true;
    while (any_running && Clock::now() < deadline) {
        any_running = false;
        for (NodeProcess& n : nodes_) {
            reap(n, false);
            any_running = any_running || n.running;
        }
        if (any_running && pause_ms(kPortsPollMs)) {
            break;
        }
    }
    for (NodeProcess& n : nodes_) {
        if (n.running) {
            std::cerr << "node " << n.index << " (pid " << n.pid
                      << ") did not stop after SIGTERM; sending SIGKILL" << std::endl;
            ::kill(n.pid, SIGKILL);
            reap(n, true);
        }
    }
}

Result<std::string> own_binary() {
    std::error_code ec;
    fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (ec) {
        return error(Errc::kIo, "cannot find this program's path: " + ec.message());
    }
    return self.string();
}

bool valid_identity_name(const std::string& name) {
    if (name.empty() || name.size() > kMaxIdentityNameChars || name == "." || name == "..") {
        return false;
    }
    return std::all_of(name.begin(), name.end(), [](unsigned char c) {
        return std::isalnum(c) != 0 || c == '_' || c == '-' || c == '.';
    });
}

// --recovery-threshold K needs K <= --members (the constitution refuses a threshold above the
// members with an encryption key). Errors: kInvalidArgument.
Status check_members(const SandboxOptions& options) {
    if (options.recovery_threshold > options.members) {
        return error(Errc::kInvalidArgument,
                     "--recovery-threshold " + std::to_string(options.recovery_threshold) +
                         " is more than the " + std::to_string(options.members) +
                         " member(s) of --members; choose 0 (none) or 1 to " +
                         std::to_string(options.members));
    }
    return Status();
}

// The user names of --users: valid file prefixes and commonNames, distinct, not a member's name
// (member0..) or (unless --no-user0) user0, at least one user in all. Errors: kInvalidArgument.
Status check_user_names(const SandboxOptions& options) {
    if (options.users.size() > kMaxUsers) {
        return error(Errc::kInvalidArgument,
                     "--users: at most " + std::to_string(kMaxUsers) + " users");
    }
    std::set<std::string> seen;
    for (int i = 0; i < options.members; ++i) {
        seen.insert(kMemberPrefix + std::to_string(i));
    }
    if (!options.no_default_user) {
        seen.insert(kDefaultUser);
    }
    for (const std::string& name : options.users) {
        if (!valid_identity_name(name)) {
            return error(Errc::kInvalidArgument, "--users: \"" + name +
                                                     "\" is not 1 to 64 characters of "
                                                     "[A-Za-z0-9_.-]");
        }
        if (!seen.insert(name).second) {
            return error(Errc::kInvalidArgument,
                         "--users: \"" + name + "\" is given twice or names another identity");
        }
    }
    if (options.no_default_user && options.users.empty()) {
        return error(Errc::kInvalidArgument, "--no-user0 needs at least one name in --users");
    }
    return Status();
}

int run_sandbox(SandboxOptions options) {
    // Blocked before anything else, in this single thread: taken only through sigtimedwait.
    sigset_t signals;
    sigemptyset(&signals);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) {
        sigaddset(&signals, sig);
    }
    ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    Status names = check_members(options);
    if (names.ok()) {
        names = check_user_names(options);
    }
    if (!names.ok()) {
        std::cerr << "error: " << names.message() << "\n";
        return 2;
    }
    if (options.coffer_binary.empty()) {
        auto self = own_binary();
        if (!self.ok()) {
            std::cerr << "error: " << self.status().message() << "\n";
            return 1;
        }
        options.coffer_binary = *self;
    }
    if (::access(options.coffer_binary.c_str(), X_OK) != 0) {
        std::cerr << "error: " << options.coffer_binary << " is not an executable file\n";
        return 2;
    }
    Sandbox sandbox(std::move(options), signals);
    return sandbox.run();
}

}  // namespace

void add_sandbox_command(CLI::App& app, int& exit_code) {
    CLI::App* cmd = app.add_subcommand(
        "sandbox", "run a local service of N nodes on 127.0.0.1 until Ctrl-C (docs/sandbox.md)");
    auto options = std::make_shared<SandboxOptions>();
    cmd->add_option("--nodes", options->nodes, "number of nodes")
        ->check(CLI::Range(1, kMaxNodes))
        ->capture_default_str();
    cmd->add_option("--members", options->members,
                    "number of members (member0..), all voting on the sandbox's proposals")
        ->check(CLI::Range(1, kMaxMembers))
        ->capture_default_str();
    cmd->add_option("--recovery-threshold", options->recovery_threshold,
                    "recovery shares: K of the members rebuild the secrets (0: none; 1..members)")
        ->check(CLI::Range(0, kMaxMembers))
        ->capture_default_str();
    cmd->add_option("--dir", options->dir, "folder for identities, node data and logs")
        ->capture_default_str();
    cmd->add_option("--timeout-s", options->timeout_s,
                    "bound on each wait while starting (a node's start, join, the election)")
        ->check(CLI::Range(int64_t{1}, kMaxTimeoutS))
        ->capture_default_str();
    cmd->add_option("--coffer-binary", options->coffer_binary,
                    "coffer binary to run the nodes with (default: this program)");
    cmd->add_flag("--quiet", options->quiet, "print only errors");
    cmd->add_flag("--exit-on-child-death", options->exit_on_child_death,
                  "stop the sandbox (exit 1) when a node exits on its own");
    cmd->add_option("--users", options->users,
                    "extra users (clean-room parties), comma-separated, made like user0")
        ->delimiter(',');
    cmd->add_flag("--no-user0", options->no_default_user, "do not make user0 (needs --users)");
    cmd->callback([&exit_code, options] { exit_code = run_sandbox(*options); });
}

}  // namespace coffer::cli
