#include "tests/recovering_node.h"

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <thread>

namespace coffer::e2e {

namespace {

constexpr int kPollMs = 50;
constexpr size_t kLogTailBytes = 4000;
constexpr int kStopWaitMs = 20000;

}  // namespace

RecoveringNode::RecoveringNode(std::string folder) : folder_(std::move(folder)) {
    std::filesystem::create_directories(folder_);
}

RecoveringNode::~RecoveringNode() {
    kill_hard();
}

void RecoveringNode::write_config(const nlohmann::json& extra) const {
    nlohmann::json config = {{"client_address", "127.0.0.1:0"},
                             {"node_address", "127.0.0.1:0"},
                             {"data_dir", data_dir()},
                             {"signatures", {{"interval_entries", 100}, {"interval_ms", 20}}},
                             {"log_level", "info"}};
    config.update(extra);
    write_text_file(config_path(), config.dump(2));
}

bool RecoveringNode::start(const std::vector<std::string>& ledger_dirs, std::string& why) {
    std::vector<std::string> args = {"node", "recover", "--config", config_path()};
    for (const std::string& dir : ledger_dirs) {
        args.insert(args.end(), {"--ledger", dir});
    }
    pid_ = spawn_coffer(args, log_path());
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kRecoveryStartMs);
    while (std::chrono::steady_clock::now() < deadline) {
        auto ports =
            nlohmann::json::parse(read_text_file(data_dir() + "/node_ports.json"), nullptr, false);
        if (ports.is_object() && ports.value("pid", 0) == pid_) {
            port_ = static_cast<uint16_t>(ports.value("client_port", 0));
            return true;
        }
        if (auto code = wait_pid(pid_, 0); code.has_value()) {
            pid_ = -1;
            why = "coffer node recover exited with " + std::to_string(*code) + ": " + log();
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
    }
    why = "coffer node recover did not serve in time: " + log();
    return false;
}

int RecoveringNode::terminate() {
    if (pid_ <= 0) {
        return -1;
    }
    ::kill(pid_, SIGTERM);
    auto code = wait_pid(pid_, kStopWaitMs);
    if (!code.has_value()) {
        ::kill(pid_, SIGKILL);
        wait_pid(pid_, kStopWaitMs);
    }
    pid_ = -1;
    return code.value_or(-1);
}

void RecoveringNode::kill_hard() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        wait_pid(pid_, kStopWaitMs);
        pid_ = -1;
    }
}

std::string RecoveringNode::log() const {
    std::string text = read_text_file(log_path());
    return text.substr(text.size() > kLogTailBytes ? text.size() - kLogTailBytes : 0);
}

std::unique_ptr<net::HttpClient> RecoveringNode::connect(const Identity* who) const {
    net::ClientOptions options;
    options.host = "127.0.0.1";
    options.port = port_;
    options.ca_cert_pem = cert_pem();
    options.timeout_ms = 10000;
    if (who != nullptr) {
        options.client_cert_pem = who->cert_pem;
        options.client_key_pem = who->key_pem;
    }
    auto client = net::HttpClient::connect(options);
    return client.ok() ? std::move(client).value() : nullptr;
}

nlohmann::json RecoveringNode::recovery() const {
    auto c = connect(nullptr);
    if (c == nullptr) {
        return nlohmann::json::object();
    }
    auto r = c->request("GET", "/gov/recovery");
    if (!r.ok() || r->status != 200) {
        return nlohmann::json::object();
    }
    auto body = nlohmann::json::parse(r->body, nullptr, false);
    return body.is_object() ? body : nlohmann::json::object();
}

bool RecoveringNode::wait_open() const {
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(kRecoveryStartMs);
    while (std::chrono::steady_clock::now() < until) {
        if (recovery().value("service_status", "") == "open") {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
    }
    return false;
}

}  // namespace coffer::e2e
