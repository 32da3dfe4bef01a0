// `coffer node recover` as a background process for the disaster-recovery tests
// (tests/recovery_test.cc, tests/governance_attack_test.cc; docs/recovery.md). Everything it
// writes lives in one folder: config.json, data/ and node.log. Not part of any library.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "net/client.h"
#include "tests/e2e_util.h"

namespace coffer::e2e {

// Bound on the recovering node's start (copy and public replay) and on its reopen.
constexpr int kRecoveryStartMs = 60000;

class RecoveringNode {
  public:
    // Creates `folder` if needed.
    explicit RecoveringNode(std::string folder);
    ~RecoveringNode();  // SIGKILL of a still-running process
    RecoveringNode(const RecoveringNode&) = delete;
    RecoveringNode& operator=(const RecoveringNode&) = delete;

    // Writes config.json: loopback addresses on port 0, data_dir FOLDER/data, `extra` merged
    // in at top level (no members or users: a recovery takes them from the ledger).
    void write_config(const nlohmann::json& extra = nlohmann::json::object()) const;

    // Runs `coffer node recover --config FOLDER/config.json --ledger DIR...` and waits for its
    // ports file. False with the log tail in `why` when it exited or did not serve in time.
    bool start(const std::vector<std::string>& ledger_dirs, std::string& why);
    // SIGTERM and wait; the exit code, -1 on signal death or timeout.
    int terminate();
    // SIGKILL and wait.
    void kill_hard();

    uint16_t port() const { return port_; }
    std::string config_path() const { return folder_ + "/config.json"; }
    std::string data_dir() const { return folder_ + "/data"; }
    std::string log_path() const { return folder_ + "/node.log"; }
    std::string cert_path() const { return data_dir() + "/service_cert.pem"; }
    std::string cert_pem() const { return read_text_file(cert_path()); }
    // The last 4,000 bytes of the log.
    std::string log() const;

    // A client pinned to the recovered service's certificate, as `who` (or anonymous);
    // nullptr when it cannot connect.
    std::unique_ptr<net::HttpClient> connect(const Identity* who) const;
    // GET /gov/recovery, or an empty object while the node does not answer (it reopens).
    nlohmann::json recovery() const;
    // Polls GET /gov/recovery until the service is open; false after kRecoveryStartMs.
    bool wait_open() const;

  private:
    std::string folder_;
    pid_t pid_ = -1;
    uint16_t port_ = 0;
};

}  // namespace coffer::e2e
