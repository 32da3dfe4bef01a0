#include "tests/e2e_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace coffer::e2e {

namespace {

constexpr int kPollMs = 20;

// Forks and execs `coffer args...` with stdout and stderr sent to `out_path` (appended).
pid_t spawn(const std::vector<std::string>& args, const std::string& out_path) {
    std::string binary = coffer_binary();
    pid_t pid = ::fork();
    if (pid == 0) {
        int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            ::close(fd);
        }
        std::vector<char*> argv;
        argv.push_back(const_cast<char*>(binary.c_str()));
        for (const std::string& a : args) {
            argv.push_back(const_cast<char*>(a.c_str()));
        }
        argv.push_back(nullptr);
        ::execv(binary.c_str(), argv.data());
        ::_exit(127);
    }
    return pid;
}

std::string tail(const std::string& text, size_t n) {
    return text.size() <= n ? text : text.substr(text.size() - n);
}

}  // namespace

std::optional<int> wait_pid(pid_t pid, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
        int status = 0;
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        if (r < 0) {
            return -1;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            return std::nullopt;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
    }
}

std::string coffer_binary() {
    return COFFER_BINARY;
}

TempDir::TempDir() {
    const char* base = std::getenv("TMPDIR");
    // mkdtemp replaces the six trailing 'X' characters.
    std::string pattern =
        std::string(base != nullptr ? base : "/tmp") + "/coffer-e2e-" + std::string(6, 'X');
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    char* made = ::mkdtemp(buf.data());
    if (made == nullptr) {
        ADD_FAILURE() << "mkdtemp failed";
        return;
    }
    path_ = made;
}

TempDir::~TempDir() {
    if (!path_.empty() && std::getenv("COFFER_KEEP_TEST_DIRS") == nullptr) {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
}

CommandResult run_coffer(const std::vector<std::string>& args, int timeout_ms) {
    TempDir scratch;
    std::string out_path = scratch.path() + "/out.txt";
    pid_t pid = spawn(args, out_path);
    CommandResult result;
    std::optional<int> code = wait_pid(pid, timeout_ms);
    if (!code.has_value()) {
        ::kill(pid, SIGKILL);
        wait_pid(pid, kStopTimeoutMs);
    }
    result.exit_code = code.value_or(-1);
    result.output = read_text_file(out_path);
    return result;
}

std::string read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_text_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
}

Identity keygen(const std::string& dir, const std::string& name) {
    CommandResult r = run_coffer({"keygen", "--name", name, "--out", dir});
    if (r.exit_code != 0) {
        ADD_FAILURE() << "coffer keygen failed: " << r.output;
        return {};
    }
    Identity id;
    id.name = name;
    id.cert_path = dir + "/" + name + "_cert.pem";
    id.key_path = dir + "/" + name + "_privk.pem";
    id.enc_pub_path = dir + "/" + name + "_enc_pubk.pem";
    id.cert_pem = read_text_file(id.cert_path);
    id.key_pem = read_text_file(id.key_path);
    return id;
}

nlohmann::json make_config(const std::string& dir, const Identity& member,
                           const std::vector<Identity>& users, const nlohmann::json& extra) {
    nlohmann::json user_list = nlohmann::json::array();
    for (const Identity& u : users) {
        user_list.push_back(
            {{"certificate", u.cert_path}, {"encryption_public_key", u.enc_pub_path}});
    }
    nlohmann::json config = {
        {"client_address", "127.0.0.1:0"},
        {"node_address", "127.0.0.1:0"},
        {"data_dir", dir + "/data"},
        {"members",
         {{{"certificate", member.cert_path}, {"encryption_public_key", member.enc_pub_path}}}},
        {"users", user_list},
        {"signatures", {{"interval_entries", 100}, {"interval_ms", 20}}},
        {"log_level", "info"}};
    config.update(extra);
    return config;
}

NodeProcess::NodeProcess(std::string config_path, std::string data_dir, std::string log_path)
    : config_path_(std::move(config_path)),
      data_dir_(std::move(data_dir)),
      log_path_(std::move(log_path)) {}

NodeProcess::~NodeProcess() {
    if (pid_ > 0) {
        kill_hard();
    }
}

bool NodeProcess::start(std::string& why) {
    std::string ports_path = data_dir_ + "/node_ports.json";
    std::error_code ec;
    std::filesystem::remove(ports_path, ec);
    pid_ = spawn({"node", "start", "--config", config_path_}, log_path_);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kStartTimeoutMs);
    while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            why = "node exited during start: " + tail(read_text_file(log_path_), 2000);
            return false;
        }
        nlohmann::json ports = nlohmann::json::parse(read_text_file(ports_path), nullptr, false);
        if (ports.is_object() && ports.value("pid", -1) == pid_) {
            port_ = ports["client_port"].get<uint16_t>();
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
    }
    why = "node did not become ready: " + tail(read_text_file(log_path_), 2000);
    return false;
}

int NodeProcess::terminate() {
    if (pid_ <= 0) {
        return -1;
    }
    ::kill(pid_, SIGTERM);
    std::optional<int> code = wait_pid(pid_, kStopTimeoutMs);
    if (!code.has_value()) {
        ::kill(pid_, SIGKILL);
        wait_pid(pid_, kStopTimeoutMs);
    }
    pid_ = -1;
    return code.value_or(-1);
}

void NodeProcess::kill_hard() {
    if (pid_ <= 0) {
        return;
    }
    ::kill(pid_, SIGKILL);
    wait_pid(pid_, kStopTimeoutMs);
    pid_ = -1;
}

int NodeProcess::wait_exit(int timeout_ms) {
    if (pid_ <= 0) {
        return -1;
    }
    std::optional<int> code = wait_pid(pid_, timeout_ms);
    if (code.has_value()) {
        pid_ = -1;
    }
    return code.value_or(-1);
}

std::string NodeProcess::service_cert_pem() const {
    return read_text_file(data_dir_ + "/service_cert.pem");
}

std::unique_ptr<net::HttpClient> connect_client(const NodeProcess& node, const Identity* identity) {
    net::ClientOptions options;
    options.host = "127.0.0.1";
    options.port = node.port();
    options.ca_cert_pem = node.service_cert_pem();
    options.timeout_ms = 10000;
    if (identity != nullptr) {
        options.client_cert_pem = identity->cert_pem;
        options.client_key_pem = identity->key_pem;
    }
    auto client = net::HttpClient::connect(options);
    if (!client.ok()) {
        ADD_FAILURE() << "cannot connect: " << client.status().to_string();
        return nullptr;
    }
    return std::move(client).value();
}

bool wait_committed(net::HttpClient& client, const std::string& tx_id, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
        auto r = client.request("GET", "/node/tx?transaction_id=" + tx_id);
        if (r.ok() && r->status == 200) {
            auto body = nlohmann::json::parse(r->body, nullptr, false);
            if (body.is_object() && body.value("status", "") == "Committed") {
                return true;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
    }
    return false;
}

std::vector<std::string> files_under(const std::string& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file()) {
            out.push_back(it->path().string());
        }
    }
    return out;
}

namespace {

// The JSON answer `coffer member propose|vote` prints before its "transaction status" line.
nlohmann::json member_command_answer(const std::string& output) {
    size_t start = output.find('{');
    size_t end = output.rfind('}');
    if (start == std::string::npos || end == std::string::npos || end < start) {
        return nlohmann::json();
    }
    return nlohmann::json::parse(output.substr(start, end - start + 1), nullptr, false);
}

std::vector<std::string> member_args(const std::string& command, uint16_t port,
                                     const std::string& service_cert_path, const Identity& member) {
    return {"member",         command,           "--service", "127.0.0.1:" + std::to_string(port),
            "--service-cert", service_cert_path, "--cert",    member.cert_path,
            "--key",          member.key_path};
}

}  // namespace

std::optional<std::string> pass_proposal(uint16_t port, const std::string& service_cert_path,
                                         const std::vector<Identity>& members,
                                         const nlohmann::json& actions, std::string& why) {
    if (members.empty()) {
        why = "no member to propose";
        return std::nullopt;
    }
    TempDir scratch;
    std::string proposal_path = scratch.path() + "/proposal.json";
    write_text_file(proposal_path, nlohmann::json{{"actions", actions}}.dump());
    std::vector<std::string> args = member_args("propose", port, service_cert_path, members[0]);
    args.insert(args.end(), {"--proposal", proposal_path});
    CommandResult proposed = run_coffer(args);
    nlohmann::json answer = member_command_answer(proposed.output);
    if (proposed.exit_code != 0 || !answer.is_object() || !answer.contains("proposal_id")) {
        why = "propose failed: " + proposed.output;
        return std::nullopt;
    }
    std::string id = answer["proposal_id"].get<std::string>();
    std::string state = answer.value("state", "");
    for (size_t i = 0; i < members.size() && state == "open"; ++i) {
        std::vector<std::string> vote = member_args("vote", port, service_cert_path, members[i]);
        vote.insert(vote.end(), {"--proposal", id, "--yes"});
        CommandResult voted = run_coffer(vote);
        nlohmann::json ballot = member_command_answer(voted.output);
        if (voted.exit_code != 0 || !ballot.is_object()) {
            why = "vote failed: " + voted.output;
            return std::nullopt;
        }
        state = ballot.value("state", "");
    }
    if (state != "accepted") {
        why = "proposal " + id + " ended " + state + ": " + answer.dump();
        return std::nullopt;
    }
    return id;
}

}  // namespace coffer::e2e
