// Helpers for end-to-end tests on real processes: a scratch folder, running the `coffer`
// command, a node process started with `coffer node start`, and HTTPS clients for each kind
// of caller.
//
// A node binds port 0 and writes the chosen port to data_dir/node_ports.json with its pid;
// NodeProcess::wait_ready polls that file (docs/node.md, "Ports file").
//
// Not thread-safe; one test uses its own objects.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/bytes.h"
#include "net/client.h"

namespace coffer::e2e {

// Bound on how long a node may take to start, and to stop after SIGTERM.
constexpr int kStartTimeoutMs = 20000;
constexpr int kStopTimeoutMs = 20000;
// Bound on a `coffer` command other than node start.
constexpr int kCommandTimeoutMs = 30000;
// Bound on opening a new service by proposal (open_service), a fresh node's election included.
constexpr int kOpenServiceTimeoutMs = 20000;

// The path of the built `coffer` binary (compile definition COFFER_BINARY).
std::string coffer_binary();

// A fresh folder under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

struct CommandResult {
    int exit_code = -1;  // -1 if killed by a signal or timed out
    std::string output;  // stdout and stderr, interleaved
};

// Waits for the child `pid` up to timeout_ms. Returns its exit code, -1 for a signal death,
// or nullopt on timeout.
std::optional<int> wait_pid(pid_t pid, int timeout_ms);

// Forks and execs `coffer args...` in the background, stdout and stderr appended to
// `out_path`. Returns the pid (-1 if fork failed); reap it with wait_pid.
pid_t spawn_coffer(const std::vector<std::string>& args, const std::string& out_path);

// Runs `coffer args...` and waits at most timeout_ms (then SIGKILLs it).
CommandResult run_coffer(const std::vector<std::string>& args, int timeout_ms = kCommandTimeoutMs);

std::string read_text_file(const std::string& path);
void write_text_file(const std::string& path, const std::string& text);

// Files made by `coffer keygen --name NAME --out DIR`.
struct Identity {
    std::string name;
    std::string cert_path;
    std::string key_path;
    std::string enc_pub_path;
    std::string cert_pem;
    std::string key_pem;
};
// Runs `coffer keygen`; fails the test (ADD_FAILURE) and returns an empty identity on error.
Identity keygen(const std::string& dir, const std::string& name);

// A node configuration for one member and the given users, data in DIR/data, listening on
// 127.0.0.1 port 0. `extra` fields are merged in at top level.
nlohmann::json make_config(const std::string& dir, const Identity& member,
                           const std::vector<Identity>& users,
                           const nlohmann::json& extra = nlohmann::json::object());

// One `coffer node start` process, its output appended to log_path.
class NodeProcess {
  public:
    NodeProcess(std::string config_path, std::string data_dir, std::string log_path);
    ~NodeProcess();  // SIGKILLs a still-running node
    NodeProcess(const NodeProcess&) = delete;
    NodeProcess& operator=(const NodeProcess&) = delete;

    // Starts the process and waits until it wrote its ports file. False (with the log
    // tail in `why`) if it exited or timed out.
    bool start(std::string& why);
    // SIGTERM and wait; returns the exit code (-1 on signal death or timeout).
    int terminate();
    // SIGKILL and wait.
    void kill_hard();
    // Waits for the process to exit by itself (e.g. a start failure); exit code or -1.
    int wait_exit(int timeout_ms);

    uint16_t port() const { return port_; }
    pid_t pid() const { return pid_; }
    const std::string& data_dir() const { return data_dir_; }
    std::string service_cert_pem() const;

  private:
    std::string config_path_;
    std::string data_dir_;
    std::string log_path_;
    pid_t pid_ = -1;
    uint16_t port_ = 0;
};

// A keep-alive client to a node pinning its service certificate, with an optional client
// identity. Fails the test and returns nullptr if it cannot connect.
std::unique_ptr<net::HttpClient> connect_client(const NodeProcess& node, const Identity* identity);

// Polls GET /node/tx until `tx_id` is Committed (true) or timeout_ms passes.
bool wait_committed(net::HttpClient& client, const std::string& tx_id, int timeout_ms);

// Every regular file under `dir`, recursively.
std::vector<std::string> files_under(const std::string& dir);

// Passes a governance proposal with the real `coffer member` command: `members[0]` proposes
// `actions` (a JSON array of {"name", "args"}) through the node at 127.0.0.1:`port` (the
// command follows redirects to the leader), then members vote yes in order until the
// proposal is accepted. Returns the proposal id, or nullopt with the reason in `why`
// (refused, failed, or still open after every vote).
std::optional<std::string> pass_proposal(uint16_t port, const std::string& service_cert_path,
                                         const std::vector<Identity>& members,
                                         const nlohmann::json& actions, std::string& why);

// SHA-256 fingerprint (lower-case hex) of a PEM certificate; "" if it does not parse.
std::string fingerprint_of(const std::string& cert_pem);

// A governance request to sign by hand (gov/signed_request.h, docs/formats/signed-request.md).
struct SignOptions {
    std::string type;  // "proposal", "ballot" or "withdrawal"
    nlohmann::json payload;
    std::optional<std::string> proposal_id;
    uint64_t created_at = 0;  // Unix seconds
    // A kid other than the signer's own fingerprint (hex), to forge one.
    std::string kid_hex;
};

// The request `o` signed with `signer`'s key for the service whose certificate fingerprint
// is `service_fp` (32 bytes). Fails the test and returns empty bytes on error.
Bytes sign_request_as(const Identity& signer, const Bytes& service_fp, const SignOptions& o);

// Opens a new service (docs/governance.md, "Service states") through the node at
// 127.0.0.1:`port`, which must be (or become) the leader: `members[0]` proposes
// transition_service_to_open with a signed request, then members vote yes in order until the
// proposal is accepted. Waits while the node has no leader yet. True at once when the
// service is already open (a restarted node needs nothing). False with the reason in `why`
// when a proposal was refused or failed, or after kOpenServiceTimeoutMs.
bool open_service(uint16_t port, const std::string& service_cert_pem,
                  const std::vector<Identity>& members, std::string& why);

}  // namespace coffer::e2e
