#include "tests/e2e_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "crypto/ecdsa.h"
#include "crypto/x509.h"
#include "gov/signed_request.h"

namespace coffer::e2e {

namespace {

constexpr int kPollMs = 20;

// Forks and execs `coffer args...` with stdout and stderr sent to `out_path` (appended).
// The argument vector is built before fork(): the child of a threaded process may only make
// async-signal-safe calls.
pid_t spawn(const std::vector<std::string>& args, const std::string& out_path) {
    std::string binary = coffer_binary();
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (const std::string& a : args) {
        argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
        int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            ::close(fd);
        }
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

pid_t spawn_coffer(const std::vector<std::string>& args, const std::string& out_path) {
    return spawn(args, out_path);
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
        answer = ballot;
    }
    if (state != "accepted") {
        why = "proposal " + id + " ended " + state + ": " + answer.dump();
        return std::nullopt;
    }
    return id;
}

std::string fingerprint_of(const std::string& cert_pem) {
    auto cert = crypto::Certificate::from_pem(cert_pem);
    return cert.ok() ? cert->fingerprint_sha256_hex() : std::string();
}

Bytes sign_request_as(const Identity& signer, const Bytes& service_fp, const SignOptions& o) {
    gov::SignedRequestHeader h;
    h.type = o.type;
    h.created_at = o.created_at;
    h.proposal_id = o.proposal_id;
    auto kid = from_hex(o.kid_hex.empty() ? fingerprint_of(signer.cert_pem) : o.kid_hex);
    auto key = crypto::EcdsaPrivateKey::from_pem(signer.key_pem);
    if (!kid.ok() || !key.ok()) {
        ADD_FAILURE() << "cannot sign as " << signer.name;
        return Bytes();
    }
    h.kid = *kid;
    h.service_fingerprint = service_fp;
    auto signed_request = gov::sign_request(h, as_bytes(o.payload.dump()), *key);
    EXPECT_TRUE(signed_request.ok()) << signed_request.status().to_string();
    return signed_request.ok() ? *signed_request : Bytes();
}

namespace {

// How long a governance write of open_service waits for its commit (x-coffer-wait-ms).
constexpr const char* kGovernanceWaitMs = "5000";
constexpr int kOpenRetryMs = 100;

// Opens a service as open_service (e2e_util.h) documents.
class ServiceOpener {
  public:
    ServiceOpener(uint16_t port, const std::string& service_cert_pem,
                  const std::vector<Identity>& members)
        : port_(port), service_cert_pem_(service_cert_pem), members_(members) {}

    bool run(std::string& why) {
        auto service = crypto::Certificate::from_pem(service_cert_pem_);
        auto fp = service.ok() ? from_hex(service->fingerprint_sha256_hex())
                               : Result<Bytes>(service.status());
        if (members_.empty() || !fp.ok()) {
            why = members_.empty() ? "no member to propose" : "unreadable service certificate";
            return false;
        }
        service_fp_ = *fp;
        auto deadline =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(kOpenServiceTimeoutMs);
        while (std::chrono::steady_clock::now() < deadline) {
            std::string status = service_status();
            if (status == "open") {
                return true;
            }
            // Anything but a retryable answer (no leader yet, a redirect during the first
            // election, a dropped connection) ends the attempt.
            if (status == "opening" && !propose_and_vote(why)) {
                return service_status() == "open";
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(kOpenRetryMs));
        }
        why = "the service did not open within " + std::to_string(kOpenServiceTimeoutMs) + " ms" +
              (why.empty() ? "" : ": " + why);
        return false;
    }

  private:
    // service_status of GET /node/network; "" when the node does not answer.
    std::string service_status() {
        auto client = connect(nullptr);
        auto r = client != nullptr ? client->request("GET", "/node/network")
                                   : Result<net::HttpResponse>(error(Errc::kIo, "no connection"));
        if (!r.ok() || r->status != 200) {
            return "";
        }
        return nlohmann::json::parse(r->body, nullptr, false).value("service_status", "");
    }

    std::unique_ptr<net::HttpClient> connect(const Identity* who) {
        net::ClientOptions options;
        options.port = port_;
        options.ca_cert_pem = service_cert_pem_;
        if (who != nullptr) {
            options.client_cert_pem = who->cert_pem;
            options.client_key_pem = who->key_pem;
        }
        auto client = net::HttpClient::connect(options);
        return client.ok() ? std::move(client).value() : nullptr;
    }

    // POSTs `o` signed by `who` to `path`; the answer's JSON body when it is 200, nullopt
    // (with `retry` telling whether to try again) otherwise.
    std::optional<nlohmann::json> post(const Identity& who, const std::string& path,
                                       const SignOptions& o, bool& retry, std::string& why) {
        Bytes body = sign_request_as(who, service_fp_, o);
        auto client = connect(&who);
        auto r = client != nullptr ? client->request("POST", path, to_string(body),
                                                     {{"content-type", "application/cose"},
                                                      {"x-coffer-wait-ms", kGovernanceWaitMs}})
                                   : Result<net::HttpResponse>(error(Errc::kIo, "no connection"));
        if (r.ok() && r->status == 200) {
            return nlohmann::json::parse(r->body, nullptr, false);
        }
        retry = !r.ok() || r->status == 503 || r->status == 307;
        why = path + ": " +
              (r.ok() ? std::to_string(r->status) + " " + r->body : r.status().to_string());
        return std::nullopt;
    }

    // One proposal and its ballots. False when the proposal was refused or did not pass (the
    // reason in `why`); true when it passed or is worth sending again.
    bool propose_and_vote(std::string& why) {
        bool retry = false;
        SignOptions proposal;
        proposal.type = "proposal";
        // The attempt number keeps a proposal sent again within the same second from being
        // refused as a replay of one whose answer was lost.
        proposal.payload = {
            {"actions", nlohmann::json::array({{{"name", "transition_service_to_open"}}})},
            {"description", "open the new service, attempt " + std::to_string(++attempts_)}};
        proposal.created_at = static_cast<uint64_t>(std::time(nullptr));
        auto answer = post(members_[0], "/gov/proposals", proposal, retry, why);
        if (!answer.has_value()) {
            return retry;
        }
        std::string id = answer->value("proposal_id", "");
        std::string state = answer->value("state", "");
        for (size_t i = 0; i < members_.size() && state == "open"; ++i) {
            SignOptions ballot;
            ballot.type = "ballot";
            ballot.payload = {{"vote", true}};
            ballot.proposal_id = id;
            ballot.created_at = static_cast<uint64_t>(std::time(nullptr));
            answer = post(members_[i], "/gov/ballots", ballot, retry, why);
            if (!answer.has_value()) {
                return false;
            }
            state = answer->value("state", "");
        }
        if (state != "accepted") {
            why = "the proposal to open the service ended " + state + ": " + answer->dump();
            return false;
        }
        return true;
    }

    uint16_t port_;
    const std::string& service_cert_pem_;
    const std::vector<Identity>& members_;
    Bytes service_fp_;
    int attempts_ = 0;
};

}  // namespace

bool open_service(uint16_t port, const std::string& service_cert_pem,
                  const std::vector<Identity>& members, std::string& why) {
    ServiceOpener opener(port, service_cert_pem, members);
    return opener.run(why);
}

}  // namespace coffer::e2e
