#include "node/config.h"

#include <arpa/inet.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include "net/http.h"

namespace coffer::node {

namespace {

using nlohmann::json;

// The deepest the configuration document nests (an object in an array in an object).
constexpr size_t kMaxConfigJsonDepth = 8;
constexpr size_t kMaxHttpThreads = 64;
constexpr uint32_t kMaxIntervalMs = 3600 * 1000;

// Reads the members of one JSON object, remembering which ones were used, so that every
// member nobody asked for is reported as an unknown field.
class ObjectReader {
  public:
    ObjectReader(const json& object, std::string prefix)
        : object_(object), prefix_(std::move(prefix)) {}

    std::string name(std::string_view field) const { return prefix_ + std::string(field); }

    bool has(std::string_view field) const { return object_.contains(std::string(field)); }

    // The member, or nullptr when absent (an error if `required`).
    Result<const json*> find(std::string_view field, bool required) {
        used_.insert(std::string(field));
        auto it = object_.find(std::string(field));
        if (it == object_.end()) {
            if (required) {
                return error(Errc::kInvalidArgument, "missing field \"" + name(field) + "\"");
            }
            return static_cast<const json*>(nullptr);
        }
        return &*it;
    }

    Status read_string(std::string_view field, bool required, std::string& out) {
        COFFER_ASSIGN_OR_RETURN(const json* v, find(field, required));
        if (v == nullptr) {
            return Status();
        }
        if (!v->is_string() || v->get_ref<const std::string&>().empty()) {
            return error(Errc::kInvalidArgument,
                         "field \"" + name(field) + "\" must be a non-empty string");
        }
        out = v->get<std::string>();
        return Status();
    }

    template <typename T>
    Status read_uint(std::string_view field, uint64_t min, uint64_t max, T& out) {
        COFFER_ASSIGN_OR_RETURN(const json* v, find(field, false));
        if (v == nullptr) {
            return Status();
        }
        if (!v->is_number_unsigned() || v->get<uint64_t>() < min || v->get<uint64_t>() > max) {
            return error(Errc::kInvalidArgument,
                         "field \"" + name(field) + "\" must be an integer between " +
                             std::to_string(min) + " and " + std::to_string(max));
        }
        out = static_cast<T>(v->get<uint64_t>());
        return Status();
    }

    Status read_bool(std::string_view field, bool& out) {
        COFFER_ASSIGN_OR_RETURN(const json* v, find(field, false));
        if (v == nullptr) {
            return Status();
        }
        if (!v->is_boolean()) {
            return error(Errc::kInvalidArgument,
                         "field \"" + name(field) + "\" must be true or false");
        }
        out = v->get<bool>();
        return Status();
    }

    // An optional nested object (nullptr when absent).
    Result<const json*> object(std::string_view field) {
        COFFER_ASSIGN_OR_RETURN(const json* v, find(field, false));
        if (v != nullptr && !v->is_object()) {
            return error(Errc::kInvalidArgument, "field \"" + name(field) + "\" must be an object");
        }
        return v;
    }

    // Errors on the first member that no read asked for.
    Status finish() const {
        for (const auto& [key, value] : object_.items()) {
            if (used_.count(key) == 0) {
                return error(Errc::kInvalidArgument, "unknown field \"" + name(key) + "\"");
            }
        }
        return Status();
    }

  private:
    const json& object_;
    std::string prefix_;
    std::set<std::string> used_;
};

std::string resolve_path(const std::string& base_dir, const std::string& path) {
    std::filesystem::path p(path);
    if (p.is_absolute()) {
        return p.lexically_normal().string();
    }
    return (std::filesystem::path(base_dir) / p).lexically_normal().string();
}

Status read_address(ObjectReader& r, std::string_view field, ListenAddress& out) {
    std::string text;
    COFFER_RETURN_IF_ERROR(r.read_string(field, true, text));
    auto parsed = parse_listen_address(text);
    if (!parsed.ok()) {
        return error(Errc::kInvalidArgument,
                     "field \"" + r.name(field) + "\": " + parsed.status().message());
    }
    out = *parsed;
    return Status();
}

Status read_members(ObjectReader& r, const std::string& dir, NodeConfig& config) {
    // Only a node that creates a new service uses the members (Node::open checks that it
    // has some): a joining node learns them from the network, a restarting or recovering one
    // from its ledger.
    COFFER_ASSIGN_OR_RETURN(const json* v, r.find("members", false));
    if (v == nullptr) {
        return Status();
    }
    if (!v->is_array() || v->empty() || v->size() > kMaxInitialMembers) {
        return error(Errc::kInvalidArgument, "field \"members\" must be an array of 1 to " +
                                                 std::to_string(kMaxInitialMembers) + " objects");
    }
    for (size_t i = 0; i < v->size(); ++i) {
        std::string prefix = "members[" + std::to_string(i) + "].";
        if (!(*v)[i].is_object()) {
            return error(Errc::kInvalidArgument,
                         "field \"members[" + std::to_string(i) + "]\" must be an object");
        }
        ObjectReader m((*v)[i], prefix);
        MemberConfig member;
        COFFER_RETURN_IF_ERROR(m.read_string("certificate", true, member.certificate_file));
        COFFER_RETURN_IF_ERROR(
            m.read_string("encryption_public_key", true, member.encryption_public_key_file));
        COFFER_RETURN_IF_ERROR(m.finish());
        member.certificate_file = resolve_path(dir, member.certificate_file);
        member.encryption_public_key_file = resolve_path(dir, member.encryption_public_key_file);
        config.members.push_back(std::move(member));
    }
    return Status();
}

Status read_users(ObjectReader& r, const std::string& dir, NodeConfig& config) {
    COFFER_ASSIGN_OR_RETURN(const json* v, r.find("users", false));
    if (v == nullptr) {
        return Status();
    }
    if (!v->is_array() || v->size() > kMaxInitialUsers) {
        return error(Errc::kInvalidArgument, "field \"users\" must be an array of at most " +
                                                 std::to_string(kMaxInitialUsers) + " objects");
    }
    for (size_t i = 0; i < v->size(); ++i) {
        if (!(*v)[i].is_object()) {
            return error(Errc::kInvalidArgument,
                         "field \"users[" + std::to_string(i) + "]\" must be an object");
        }
        ObjectReader u((*v)[i], "users[" + std::to_string(i) + "].");
        UserConfig user;
        std::string enc;
        COFFER_RETURN_IF_ERROR(u.read_string("certificate", true, user.certificate_file));
        COFFER_RETURN_IF_ERROR(u.read_string("encryption_public_key", false, enc));
        COFFER_RETURN_IF_ERROR(u.finish());
        user.certificate_file = resolve_path(dir, user.certificate_file);
        if (!enc.empty()) {
            user.encryption_public_key_file = resolve_path(dir, enc);
        }
        config.users.push_back(std::move(user));
    }
    return Status();
}

Status read_ledger(ObjectReader& r, NodeConfig& config) {
    COFFER_ASSIGN_OR_RETURN(const json* v, r.object("ledger"));
    if (v != nullptr) {
        ObjectReader l(*v, "ledger.");
        COFFER_RETURN_IF_ERROR(l.read_uint("chunk_size_bytes", 4096, uint64_t{1} << 32,
                                           config.ledger.chunk_size_bytes));
        COFFER_RETURN_IF_ERROR(
            l.read_uint("flush_interval_ms", 1, 10000, config.ledger.flush_interval_ms));
        COFFER_RETURN_IF_ERROR(
            l.read_uint("max_batch_entries", 1, 1 << 20, config.ledger.max_batch_entries));
        COFFER_RETURN_IF_ERROR(l.finish());
    }
    COFFER_ASSIGN_OR_RETURN(const json* s, r.object("signatures"));
    if (s != nullptr) {
        ObjectReader sig(*s, "signatures.");
        COFFER_RETURN_IF_ERROR(
            sig.read_uint("interval_entries", 1, 1 << 20, config.signatures.interval_entries));
        COFFER_RETURN_IF_ERROR(
            sig.read_uint("interval_ms", 1, kMaxIntervalMs, config.signatures.interval_ms));
        COFFER_RETURN_IF_ERROR(
            sig.read_bool("when_previous_committed", config.signatures.when_previous_committed));
        COFFER_RETURN_IF_ERROR(sig.finish());
    }
    return Status();
}

Status read_http(ObjectReader& r, NodeConfig& config) {
    COFFER_ASSIGN_OR_RETURN(const json* v, r.object("http"));
    if (v == nullptr) {
        return Status();
    }
    ObjectReader h(*v, "http.");
    HttpConfig& c = config.http;
    COFFER_RETURN_IF_ERROR(h.read_uint("max_body_bytes", 1024, 64 << 20, c.max_body_bytes));
    COFFER_RETURN_IF_ERROR(h.read_uint("max_header_bytes", 1024, 1 << 20, c.max_header_bytes));
    COFFER_RETURN_IF_ERROR(h.read_uint("max_connections", 1, 100000, c.max_connections));
    COFFER_RETURN_IF_ERROR(h.read_uint("idle_timeout_ms", 100, kMaxIntervalMs, c.idle_timeout_ms));
    COFFER_RETURN_IF_ERROR(
        h.read_uint("header_timeout_ms", 100, kMaxIntervalMs, c.header_timeout_ms));
    COFFER_RETURN_IF_ERROR(h.read_uint("threads", 1, kMaxHttpThreads, c.threads));
    return h.finish();
}

Status read_certificates(ObjectReader& r, NodeConfig& config) {
    COFFER_ASSIGN_OR_RETURN(const json* v, r.object("certificates"));
    if (v == nullptr) {
        return Status();
    }
    constexpr uint64_t kMaxValidityS = 100ULL * 365 * 24 * 3600;
    ObjectReader c(*v, "certificates.");
    COFFER_RETURN_IF_ERROR(c.read_uint("service_validity_s", 1, kMaxValidityS,
                                       config.certificates.service_validity_s));
    COFFER_RETURN_IF_ERROR(
        c.read_uint("node_validity_s", 1, kMaxValidityS, config.certificates.node_validity_s));
    return c.finish();
}

Status read_platform(ObjectReader& r, const std::string& dir, NodeConfig& config) {
    COFFER_RETURN_IF_ERROR(r.read_string("platform", false, config.platform));
    if (config.platform != "virtual") {
        return error(Errc::kInvalidArgument,
                     "field \"platform\" must be \"virtual\" (the only platform that can "
                     "produce evidence on this build)");
    }
    COFFER_RETURN_IF_ERROR(r.read_bool("local_sealing", config.local_sealing));
    COFFER_RETURN_IF_ERROR(r.read_string("sealing_key_file", false, config.sealing_key_file));
    if (!config.sealing_key_file.empty()) {
        config.sealing_key_file = resolve_path(dir, config.sealing_key_file);
    }
    COFFER_RETURN_IF_ERROR(r.read_string("log_level", false, config.log_level));
    static const std::set<std::string> kLevels = {"trace", "debug",    "info", "warn",
                                                  "error", "critical", "off"};
    if (kLevels.count(config.log_level) == 0) {
        return error(Errc::kInvalidArgument,
                     "field \"log_level\" must be one of trace, debug, info, warn, error, "
                     "critical, off");
    }
    return Status();
}

Status read_consensus(ObjectReader& r, NodeConfig& config) {
    COFFER_ASSIGN_OR_RETURN(const json* v, r.object("consensus"));
    if (v == nullptr) {
        return Status();
    }
    ObjectReader c(*v, "consensus.");
    ConsensusConfig& cc = config.consensus;
    COFFER_RETURN_IF_ERROR(
        c.read_uint("election_timeout_min_ms", 10, 600000, cc.election_timeout_min_ms));
    COFFER_RETURN_IF_ERROR(
        c.read_uint("election_timeout_max_ms", 11, 600000, cc.election_timeout_max_ms));
    COFFER_RETURN_IF_ERROR(
        c.read_uint("heartbeat_interval_ms", 1, 600000, cc.heartbeat_interval_ms));
    COFFER_RETURN_IF_ERROR(c.finish());
    if (cc.election_timeout_max_ms <= cc.election_timeout_min_ms ||
        cc.heartbeat_interval_ms >= cc.election_timeout_min_ms) {
        return error(Errc::kInvalidArgument,
                     "field \"consensus\": need heartbeat_interval_ms < election_timeout_min_ms "
                     "< election_timeout_max_ms");
    }
    return Status();
}

Status read_join(ObjectReader& r, const std::string& dir, NodeConfig& config) {
    COFFER_ASSIGN_OR_RETURN(const json* v, r.object("join"));
    if (v == nullptr) {
        return Status();
    }
    ObjectReader j(*v, "join.");
    JoinConfig join;
    std::string target;
    COFFER_RETURN_IF_ERROR(j.read_string("target", true, target));
    auto parsed = parse_listen_address(target);
    if (!parsed.ok() || parsed->port == 0) {
        return error(Errc::kInvalidArgument,
                     "field \"join.target\" must be host:port of a running node's client "
                     "address");
    }
    join.target = *parsed;
    COFFER_RETURN_IF_ERROR(j.read_string("service_cert_file", true, join.service_cert_file));
    join.service_cert_file = resolve_path(dir, join.service_cert_file);
    COFFER_RETURN_IF_ERROR(j.finish());
    config.join = std::move(join);
    return Status();
}

Status read_trusted_measurements(ObjectReader& r, NodeConfig& config) {
    COFFER_ASSIGN_OR_RETURN(const json* v, r.find("trusted_measurements", false));
    if (v == nullptr) {
        return Status();
    }
    if (!v->is_array() || v->size() > kMaxInitialMembers) {
        return error(Errc::kInvalidArgument,
                     "field \"trusted_measurements\" must be an array of at most 64 hex strings");
    }
    for (const json& m : *v) {
        if (!m.is_string() || m.get<std::string>().size() != 64 ||
            m.get<std::string>().find_first_not_of("0123456789abcdef") != std::string::npos) {
            return error(Errc::kInvalidArgument,
                         "field \"trusted_measurements\" entries must be 64 lower-case hex "
                         "digits (SHA-256 of a node binary)");
        }
        config.trusted_measurements.push_back(m.get<std::string>());
    }
    return Status();
}

}  // namespace

std::string ListenAddress::to_string() const {
    bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<ListenAddress> parse_listen_address(std::string_view text) {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || colon + 1 == text.size()) {
        return error(Errc::kInvalidArgument,
                     "expected \"host:port\", got \"" + std::string(text) + "\"");
    }
    std::string host(text.substr(0, colon));
    std::string port_text(text.substr(colon + 1));
    bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
    if (bracketed) {
        host = host.substr(1, host.size() - 2);
    }
    unsigned char buf[sizeof(struct in6_addr)];
    bool v4 = !bracketed && inet_pton(AF_INET, host.c_str(), buf) == 1;
    bool v6 = bracketed && inet_pton(AF_INET6, host.c_str(), buf) == 1;
    if (!v4 && !v6) {
        return error(Errc::kInvalidArgument, "host \"" + host +
                                                 "\" is not an IPv4 literal or a bracketed "
                                                 "IPv6 literal");
    }
    if (port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos) {
        return error(Errc::kInvalidArgument, "port \"" + port_text + "\" is not a number");
    }
    unsigned long port = std::stoul(port_text);
    if (port > std::numeric_limits<uint16_t>::max()) {
        return error(Errc::kInvalidArgument, "port " + port_text + " is above 65535");
    }
    return ListenAddress{host, static_cast<uint16_t>(port)};
}

Result<NodeConfig> parse_config(std::string_view json_text, const std::string& config_dir) {
    auto doc = net::parse_json(json_text, kMaxConfigJsonDepth);
    if (!doc.ok()) {
        return doc.status();
    }
    if (!doc->is_object()) {
        return error(Errc::kInvalidArgument, "the configuration must be a JSON object");
    }
    NodeConfig config;
    config.config_dir = config_dir;
    ObjectReader r(*doc, "");
    COFFER_RETURN_IF_ERROR(read_address(r, "client_address", config.client_address));
    COFFER_RETURN_IF_ERROR(read_address(r, "node_address", config.node_address));
    COFFER_RETURN_IF_ERROR(r.read_string("data_dir", true, config.data_dir));
    config.data_dir = resolve_path(config_dir, config.data_dir);
    COFFER_RETURN_IF_ERROR(read_members(r, config_dir, config));
    COFFER_RETURN_IF_ERROR(read_users(r, config_dir, config));
    COFFER_RETURN_IF_ERROR(read_ledger(r, config));
    COFFER_RETURN_IF_ERROR(read_http(r, config));
    COFFER_RETURN_IF_ERROR(read_certificates(r, config));
    COFFER_RETURN_IF_ERROR(read_platform(r, config_dir, config));
    COFFER_RETURN_IF_ERROR(read_consensus(r, config));
    COFFER_RETURN_IF_ERROR(read_join(r, config_dir, config));
    COFFER_RETURN_IF_ERROR(read_trusted_measurements(r, config));
    COFFER_RETURN_IF_ERROR(r.finish());
    if (config.join.has_value() && (!config.members.empty() || !config.users.empty())) {
        return error(Errc::kInvalidArgument,
                     "a joining node's configuration must not list members or users: they "
                     "come from the network");
    }
    return config;
}

Result<NodeConfig> load_config(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return error(Errc::kNotFound, "cannot open configuration file " + path);
    }
    std::string text;
    char buffer[16 * 1024];
    while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
        text.append(buffer, static_cast<size_t>(in.gcount()));
        if (text.size() > kMaxConfigFileBytes) {
            return error(
                Errc::kResourceExhausted,
                path + " is larger than " + std::to_string(kMaxConfigFileBytes) + " bytes");
        }
    }
    if (in.bad()) {
        return error(Errc::kIo, "cannot read configuration file " + path);
    }
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::absolute(path, ec);
    if (ec) {
        return error(Errc::kIo, "cannot resolve " + path + ": " + ec.message());
    }
    auto config = parse_config(text, abs.parent_path().string());
    if (!config.ok()) {
        return config.status().with_context(path);
    }
    return config;
}

}  // namespace coffer::node
