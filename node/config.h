// The configuration of one node: a JSON file, documented field by field in docs/config.md
// (schema: docs/config.schema.json).
//
// Parsing is strict: unknown fields, missing required fields, wrong types and out-of-range
// values are errors that name the field by its dotted path ("ledger.chunk_size_bytes"), so
// an operator's typo is never silently ignored. Relative paths are resolved against the
// folder of the configuration file.
//
// Plain value types and pure functions: thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace coffer::node {

// Bound on the configuration file itself, and on the number of initial members and users.
constexpr size_t kMaxConfigFileBytes = 1 << 20;
constexpr size_t kMaxInitialMembers = 64;
constexpr size_t kMaxInitialUsers = 1024;

// An IP literal and a port ("127.0.0.1:8000", "[::1]:8000"). Port 0 means "any free port".
struct ListenAddress {
    std::string host;
    uint16_t port = 0;

    // "host:port", with brackets around IPv6 hosts.
    std::string to_string() const;
};

// Parses "host:port" where host is an IPv4 literal or a bracketed IPv6 literal.
// Errors: kInvalidArgument naming the problem.
Result<ListenAddress> parse_listen_address(std::string_view text);

struct MemberConfig {
    std::string certificate_file;            // PEM, absolute after loading
    std::string encryption_public_key_file;  // X25519 PEM, absolute after loading
};

struct UserConfig {
    std::string certificate_file;
    std::optional<std::string> encryption_public_key_file;
};

struct LedgerConfig {
    uint64_t chunk_size_bytes = 4 << 20;
    uint32_t flush_interval_ms = 2;
    size_t max_batch_entries = 1024;
};

struct SignatureConfig {
    uint64_t interval_entries = 100;
    uint32_t interval_ms = 100;
    // Also sign as soon as the previous signature committed (ledger.h,
    // sign_when_previous_committed).
    bool when_previous_committed = true;
};

struct HttpConfig {
    size_t max_body_bytes = 1 << 20;
    size_t max_header_bytes = 16 << 10;
    size_t max_connections = 1024;
    uint32_t idle_timeout_ms = 30000;
    uint32_t header_timeout_ms = 10000;
    size_t threads = 4;
};

struct CertificateConfig {
    // Validity of the service certificate (self-signed, made once at first start).
    int64_t service_validity_s = 10LL * 365 * 24 * 3600;
    // Validity of this node's certificate (issued by the service identity at first start).
    int64_t node_validity_s = 365LL * 24 * 3600;
};

struct ConsensusConfig {
    // Election timeouts are drawn from [min, max); heartbeats must be well below min.
    uint64_t election_timeout_min_ms = 500;
    uint64_t election_timeout_max_ms = 1000;
    uint64_t heartbeat_interval_ms = 100;
};

// Present for `coffer node join`: where to ask to be admitted, and the service certificate
// that node's TLS identity must chain to.
struct JoinConfig {
    ListenAddress target;           // the CLIENT address of any node of the network
    std::string service_cert_file;  // absolute after loading
};

struct NodeConfig {
    std::string config_dir;  // folder of the configuration file (absolute)
    ListenAddress client_address;
    ListenAddress node_address;  // node-to-node (consensus) listener
    std::string data_dir;        // absolute
    std::vector<MemberConfig> members;
    std::vector<UserConfig> users;
    SignatureConfig signatures;
    LedgerConfig ledger;
    HttpConfig http;
    CertificateConfig certificates;
    std::string platform = "virtual";
    bool local_sealing = true;
    // Where the virtual platform keeps its sealing key; empty means data_dir/sealing_key.
    std::string sealing_key_file;
    std::string log_level = "info";
    ConsensusConfig consensus;
    std::optional<JoinConfig> join;
    // Measurements (hex) a joining node may present besides the first node's own; written to
    // the trusted measurements map at the service's creation.
    std::vector<std::string> trusted_measurements;
};

// Parses a configuration document. `config_dir` (absolute) resolves relative paths.
// Errors: kInvalidArgument naming the field: "unknown field \"ledger.chunk\"", "missing
// field \"data_dir\"", "field \"http.threads\" must be an integer between 1 and 64", and
// invalid JSON.
Result<NodeConfig> parse_config(std::string_view json_text, const std::string& config_dir);

// Reads and parses a configuration file. Errors: kNotFound/kIo for the file (naming it),
// kResourceExhausted beyond kMaxConfigFileBytes, and parse_config's errors prefixed with
// the file name.
Result<NodeConfig> load_config(const std::string& path);

}  // namespace coffer::node
