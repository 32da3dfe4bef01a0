#include "node/node.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <limits>

#include <openssl/crypto.h>

#include "attestation/platform.h"
#include "common/log.h"
#include "crypto/x25519.h"
#include "node/files.h"
#include "node/genesis_governance.h"
#include "node/governance_maps.h"
#include "node/node_internal.h"
#include "node/rekey.h"

namespace coffer::node {

namespace {

using nlohmann::json;

constexpr size_t kMaxPemFileBytes = 64 * 1024;
constexpr size_t kMaxNodeInfoBytes = 64 * 1024;
constexpr int kNodeInfoVersion = 1;
// The most node records read when refreshing peer addresses.
constexpr size_t kMaxConfigurationNodesListed = 1024;

uint64_t steady_ms() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}

int64_t unix_now() {
    return static_cast<int64_t>(std::time(nullptr));
}

std::string join(const std::string& dir, std::string_view name) {
    return ledger::join_path(dir, name);
}

Result<crypto::Certificate> load_client_cert(const std::string& path) {
    COFFER_ASSIGN_OR_RETURN(std::string pem, read_small_file(path, kMaxPemFileBytes));
    auto cert = crypto::Certificate::from_pem(pem);
    if (!cert.ok()) {
        return error(Errc::kInvalidArgument, path + ": " + cert.status().message());
    }
    auto key = cert->ecdsa_public_key();
    if (!key.ok()) {
        return error(Errc::kInvalidArgument, path + ": " + key.status().message());
    }
    return cert;
}

Result<std::string> load_encryption_key(const std::string& path) {
    COFFER_ASSIGN_OR_RETURN(std::string pem, read_small_file(path, kMaxPemFileBytes));
    auto key = crypto::x25519_public_from_pem(pem);
    if (!key.ok()) {
        return error(Errc::kInvalidArgument, path + ": " + key.status().message());
    }
    return crypto::x25519_public_to_pem(*key);
}

// The members and users of the configuration, as the values of their governance maps keyed
// by certificate fingerprint. A certificate listed twice is refused.
Status load_initial_identities(const NodeConfig& config, json& members, json& users) {
    members = json::object();
    users = json::object();
    if (config.members.empty()) {
        return error(Errc::kInvalidArgument,
                     "a new service needs at least one member: the configuration's \"members\" "
                     "field is empty or missing");
    }
    for (const MemberConfig& m : config.members) {
        COFFER_ASSIGN_OR_RETURN(crypto::Certificate cert, load_client_cert(m.certificate_file));
        COFFER_ASSIGN_OR_RETURN(std::string enc, load_encryption_key(m.encryption_public_key_file));
        std::string fp = cert.fingerprint_sha256_hex();
        if (members.contains(fp)) {
            return error(Errc::kInvalidArgument, m.certificate_file + ": member listed twice");
        }
        members[fp] = {{"cert", cert.to_pem()},
                       {"encryption_public_key", enc},
                       {"status", std::string(kMemberStatusActive)}};
    }
    for (const UserConfig& u : config.users) {
        COFFER_ASSIGN_OR_RETURN(crypto::Certificate cert, load_client_cert(u.certificate_file));
        json enc = nullptr;
        if (u.encryption_public_key_file.has_value()) {
            COFFER_ASSIGN_OR_RETURN(enc, load_encryption_key(*u.encryption_public_key_file));
        }
        std::string fp = cert.fingerprint_sha256_hex();
        if (users.contains(fp) || members.contains(fp)) {
            return error(Errc::kInvalidArgument,
                         u.certificate_file + ": certificate already listed as a user or member");
        }
        users[fp] = {{"cert", cert.to_pem()}, {"encryption_public_key", enc}};
    }
    return Status();
}

}  // namespace

namespace internal {

Result<NodeSecrets> make_fresh_secrets(const NodeConfig& config) {
    int64_t now = unix_now();
    COFFER_ASSIGN_OR_RETURN(ServiceIdentity service,
                            make_service_identity(now, config.certificates.service_validity_s));
    std::vector<std::string> ips = {config.client_address.host, config.node_address.host};
    COFFER_ASSIGN_OR_RETURN(
        NodeIdentity node,
        make_node_identity(service, ips, now, config.certificates.node_validity_s));
    std::vector<ledger::LedgerSecret> ledger_secrets;
    ledger_secrets.push_back(ledger::make_random_ledger_secret(1));
    return NodeSecrets{std::move(service), std::move(node), std::move(ledger_secrets),
                       crypto::x25519_generate()};
}

}  // namespace internal

namespace {

std::string sealing_key_path(const NodeConfig& config) {
    return config.sealing_key_file.empty() ? join(config.data_dir, kSealingKeyFileName)
                                           : config.sealing_key_file;
}

Result<NodeSecrets> recover_secrets(const NodeConfig& config) {
    std::string info_path = join(config.data_dir, kNodeInfoFileName);
    COFFER_ASSIGN_OR_RETURN(std::string info_text, read_small_file(info_path, kMaxNodeInfoBytes));
    json info = json::parse(info_text, nullptr, false);
    if (info.is_discarded() || !info.is_object() || !info.contains("local_sealing") ||
        !info["local_sealing"].is_boolean()) {
        return error(Errc::kCorrupt, info_path + " is not a node information file");
    }
    std::string sealed_path = join(config.data_dir, kSealedSecretsFileName);
    if (!info["local_sealing"].get<bool>() || !path_exists(sealed_path)) {
        return error(Errc::kFailedPrecondition,
                     "this node's secrets were not sealed (local_sealing was false), so it "
                     "cannot restart on its own: recover the service from this folder's "
                     "ledger with `coffer node recover --config FILE --ledger " +
                         join(config.data_dir, kLedgerDirName) +
                         "` into a new folder, and the members' recovery shares "
                         "(docs/recovery.md)");
    }
    COFFER_ASSIGN_OR_RETURN(Bytes key, read_sealing_key(sealing_key_path(config)));
    COFFER_ASSIGN_OR_RETURN(std::string sealed,
                            read_small_file(sealed_path, kMaxSealedSecretsBytes));
    auto secrets = unseal_secrets(sealed, key);
    OPENSSL_cleanse(key.data(), key.size());
    if (!secrets.ok()) {
        return secrets.status().with_context(sealed_path);
    }
    return secrets;
}

}  // namespace

Status internal::check_fresh_data_dir(const NodeConfig& config) {
    std::string ledger_dir = join(config.data_dir, kLedgerDirName);
    ledger::PosixFileSystem fs;
    auto exists = fs.file_exists(ledger_dir);
    if (exists.ok() && *exists) {
        auto entries = fs.list_dir(ledger_dir);
        if (!entries.ok() || !entries->empty()) {
            return error(Errc::kFailedPrecondition,
                         config.data_dir + " holds a ledger but no " +
                             std::string(kNodeInfoFileName) +
                             ": an earlier first start or recovery was interrupted; remove the "
                             "folder to start a new service, or recover into a new folder");
        }
    }
    return Status();
}

namespace {

// A free TCP port on `host`, found by binding port 0. The port is released again before the
// caller binds it, so another process could take it in between; on loopback that is rare
// and the caller's bind then fails with a clear error.
Result<uint16_t> pick_free_port(const std::string& host) {
    bool v6 = host.find(':') != std::string::npos;
    int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return error(Errc::kIo, "socket() failed while choosing a port");
    }
    sockaddr_storage storage{};
    socklen_t len = 0;
    if (v6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
        a->sin6_family = AF_INET6;
        std::string bare =
            host.size() > 2 && host.front() == '[' ? host.substr(1, host.size() - 2) : host;
        ::inet_pton(AF_INET6, bare.c_str(), &a->sin6_addr);
        len = sizeof(sockaddr_in6);
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&storage);
        a->sin_family = AF_INET;
        ::inet_pton(AF_INET, host.c_str(), &a->sin_addr);
        len = sizeof(sockaddr_in);
    }
    auto* addr = reinterpret_cast<sockaddr*>(&storage);
    if (::bind(fd, addr, len) != 0 || ::getsockname(fd, addr, &len) != 0) {
        ::close(fd);
        return error(Errc::kIo, "cannot bind a free port on " + host);
    }
    uint16_t port = v6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port)
                       : ntohs(reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
    ::close(fd);
    return port;
}

}  // namespace

std::string_view node_state_name(NodeState state) {
    switch (state) {
        case NodeState::kStarting:
            return "starting";
        case NodeState::kPartOfNetwork:
            return "part_of_network";
        case NodeState::kStopping:
            return "stopping";
        case NodeState::kStopped:
            return "stopped";
        case NodeState::kFailed:
            return "failed";
    }
    return "unknown";
}

Node::Node(NodeConfig config, NodeSecrets secrets, DataDirLock lock)
    : config_(std::move(config)), lock_(std::move(lock)), secrets_(std::move(secrets)) {}

Node::~Node() {
    stop();
}

std::string Node::path(std::string_view name) const {
    return join(config_.data_dir, name);
}

Result<std::unique_ptr<Node>> Node::open(NodeConfig config,
                                         const std::atomic<bool>* stop_requested) {
    COFFER_RETURN_IF_ERROR(make_private_dir(config.data_dir));
    COFFER_ASSIGN_OR_RETURN(DataDirLock lock, DataDirLock::acquire(config.data_dir));
    std::unique_ptr<Node> node;
    bool fresh = !path_exists(join(config.data_dir, kNodeInfoFileName));
    if (fresh && config.join.has_value()) {
        COFFER_RETURN_IF_ERROR(internal::check_fresh_data_dir(config));
        // The joiner makes its own node key now; the service identity, its node certificate
        // and the ledger secrets come in the join answer (the service key below is a
        // placeholder that the answer replaces).
        COFFER_ASSIGN_OR_RETURN(crypto::EcdsaPrivateKey node_key,
                                crypto::EcdsaPrivateKey::generate());
        COFFER_ASSIGN_OR_RETURN(crypto::EcdsaPrivateKey placeholder,
                                crypto::EcdsaPrivateKey::generate());
        std::string id = node_id_of(node_key.public_key());
        NodeSecrets secrets{ServiceIdentity{std::move(placeholder), {}},
                            NodeIdentity{std::move(id), std::move(node_key), {}},
                            {},
                            crypto::x25519_generate()};
        node.reset(new Node(std::move(config), std::move(secrets), std::move(lock)));
        node->stop_requested_during_open_ = stop_requested;
        COFFER_RETURN_IF_ERROR(node->join_network());
    } else if (fresh) {
        COFFER_RETURN_IF_ERROR(internal::check_fresh_data_dir(config));
        json members;
        json users;
        COFFER_RETURN_IF_ERROR(load_initial_identities(config, members, users));
        COFFER_ASSIGN_OR_RETURN(NodeSecrets secrets, internal::make_fresh_secrets(config));
        node.reset(new Node(std::move(config), std::move(secrets), std::move(lock)));
        COFFER_RETURN_IF_ERROR(node->first_start(members, users));
    } else {
        COFFER_ASSIGN_OR_RETURN(NodeSecrets secrets, recover_secrets(config));
        // Sealed before nodes had an encryption key: make one now (its record gets it when
        // this node next writes the record; until then rekey_ledger refuses).
        bool new_encryption_key = secrets.encryption.private_key.empty();
        if (new_encryption_key) {
            secrets.encryption = crypto::x25519_generate();
        }
        node.reset(new Node(std::move(config), std::move(secrets), std::move(lock)));
        if (new_encryption_key) {
            COFFER_RETURN_IF_ERROR(node->seal_to_disk());
        }
        COFFER_RETURN_IF_ERROR(node->restart());
    }
    node->check_certificate_expiry();
    node->start_background();
    return node;
}

Status Node::make_attestation() {
    COFFER_ASSIGN_OR_RETURN(Bytes measurement, attestation::measure_binary("/proc/self/exe"));
    attestation::VirtualPlatform platform(std::move(measurement));
    Bytes report_data = attestation::report_data_for_key(secrets_.node.key.public_key().to_der());
    COFFER_ASSIGN_OR_RETURN(attestation::Evidence evidence, platform.get_evidence(report_data));
    attestation_ = attestation::to_json(evidence);
    return Status();
}

Status Node::open_ledger() {
    ledger::LedgerOptions options;
    options.dir = path(kLedgerDirName);
    options.chunk_size_bytes = config_.ledger.chunk_size_bytes;
    options.max_batch_entries = config_.ledger.max_batch_entries;
    options.flush_interval_ms = config_.ledger.flush_interval_ms;
    options.signature_interval_entries = config_.signatures.interval_entries;
    options.signature_interval_ms = config_.signatures.interval_ms;
    options.node_id = secrets_.node.node_id;
    options.node_key = secrets_.node.key;
    options.node_cert = secrets_.node.cert;
    options.service_cert = secrets_.service.cert;
    // Every node runs under consensus (a single node is a network of one): the Raft term is
    // the view, and only the leader's commit index moves the commit point.
    options.commit_at_durable_signature = false;
    options.views_from_consensus = true;
    options.sign_when_previous_committed = config_.signatures.when_previous_committed;
    options.public_only_replay = public_only_;
    // Entries up to the recovery point were signed by the nodes of the previous service. In
    // the public replay that point is the end of the files, not known yet.
    options.service_cert_after_seqno =
        public_only_ ? std::numeric_limits<uint64_t>::max() : recovery_base_;
    COFFER_RETURN_IF_ERROR(fs_.make_dir(options.dir));
    ledger::LedgerSecrets ledger_secrets;
    for (const ledger::LedgerSecret& s : secrets_.ledger_secrets) {
        COFFER_RETURN_IF_ERROR(ledger_secrets.add(s));
    }
    // Rekeys: this node's copy of each new secret, in ledger order (node/rekey.h).
    options.secret_from_write_set =
        [id = secrets_.node.node_id, key = secrets_.encryption.private_key](
            const kv::WriteSet& ws) { return ledger_secret_from_write_set(ws, id, key); };
    COFFER_ASSIGN_OR_RETURN(ledger_,
                            ledger::Ledger::open(fs_, std::move(options), store_, ledger_secrets));
    apply_signature_settings();
    return Status();
}

std::vector<ledger::LedgerSecret> Node::ledger_secrets() const {
    std::vector<ledger::LedgerSecret> all = secrets_.ledger_secrets;
    for (ledger::LedgerSecret& s : ledger_->learned_secrets(false)) {
        all.push_back(std::move(s));
    }
    return all;
}

void Node::reseal_after_rekey() {
    uint32_t newest = ledger_->newest_learned_version(true);
    if (!config_.local_sealing || newest == sealed_learned_version_) {
        return;
    }
    NodeSecrets sealed = secrets_;
    for (ledger::LedgerSecret& s : ledger_->learned_secrets(true)) {
        sealed.ledger_secrets.push_back(std::move(s));
    }
    std::string key_path = sealing_key_path(config_);
    auto key = read_sealing_key(key_path);
    auto text = key.ok() ? seal_secrets(sealed, *key) : Result<std::string>(key.status());
    if (key.ok()) {
        OPENSSL_cleanse(key->data(), key->size());
    }
    for (ledger::LedgerSecret& s : sealed.ledger_secrets) {
        OPENSSL_cleanse(s.key.data(), s.key.size());
    }
    Status written =
        text.ok() ? write_file_atomic(path(kSealedSecretsFileName), *text, 0600) : text.status();
    if (!written.ok()) {
        // Retried at the next step; until then a restart re-learns the secret from the ledger.
        spdlog::warn("node.reseal_failed node_id={} error={}", node_id(), written.to_string());
        return;
    }
    sealed_learned_version_ = newest;
    spdlog::info("node.secrets_resealed node_id={} newest_version={} versions={}", node_id(),
                 newest, sealed.ledger_secrets.size());
}

void Node::apply_signature_settings() {
    kv::Transaction tx = store_.begin();
    std::optional<kv::Seqno> version =
        tx.get_version(kGovConfigMap, as_bytes(kSignatureSettingsKey));
    if (signature_settings_applied_ && version == applied_signature_settings_version_) {
        return;
    }
    signature_settings_applied_ = true;
    applied_signature_settings_version_ = version;
    SignatureSettings settings{config_.signatures.interval_entries, config_.signatures.interval_ms};
    auto governed = read_signature_settings(tx);
    if (!governed.ok()) {
        spdlog::warn("node.signature_settings_unreadable error={}", governed.status().to_string());
    } else if (governed->has_value()) {
        settings = **governed;
    }
    Status set = ledger_->set_signature_interval(settings.interval_entries, settings.interval_ms);
    if (!set.ok()) {
        spdlog::warn("node.signature_settings_refused error={}", set.to_string());
        return;
    }
    spdlog::info("node.signature_interval node_id={} entries={} ms={} source={}", node_id(),
                 settings.interval_entries, settings.interval_ms,
                 governed.ok() && governed->has_value() ? "governance" : "config");
}

Status Node::seal_to_disk() {
    std::string key_path = sealing_key_path(config_);
    Result<Bytes> key =
        path_exists(key_path) ? read_sealing_key(key_path) : create_sealing_key(key_path);
    if (!key.ok()) {
        return key.status();
    }
    auto sealed = seal_secrets(secrets_, *key);
    OPENSSL_cleanse(key->data(), key->size());
    if (!sealed.ok()) {
        return sealed.status();
    }
    return write_file_atomic(path(kSealedSecretsFileName), *sealed, 0600);
}

Status Node::write_genesis(const json& members, const json& users) {
    COFFER_ASSIGN_OR_RETURN(std::string encryption_pem,
                            crypto::x25519_public_to_pem(secrets_.encryption.public_key));
    json node_record = {{"cert", secrets_.node.cert.to_pem()},
                        {"status", std::string(kNodeStatusTrusted)},
                        {"encryption_public_key", encryption_pem},
                        {"attestation", attestation_},
                        {"client_address", config_.client_address.to_string()},
                        {"node_address", config_.node_address.to_string()}};
    COFFER_ASSIGN_OR_RETURN(attestation::Evidence evidence,
                            attestation::evidence_from_json(attestation_));
    COFFER_ASSIGN_OR_RETURN(attestation::VerifiedClaims claims,
                            attestation::verify_evidence(evidence, {}));
    json service_record = {{"cert", secrets_.service.cert.to_pem()},
                           {"status", std::string(kServiceStatusOpening)},
                           {"fingerprint", secrets_.service.cert.fingerprint_sha256_hex()}};
    kv::Transaction tx = store_.begin();
    COFFER_RETURN_IF_ERROR(write_governance_value(tx, kServiceMap, kServiceKey, service_record));
    for (const auto& [fp, value] : members.items()) {
        COFFER_RETURN_IF_ERROR(write_governance_value(tx, kMembersMap, fp, value));
    }
    for (const auto& [fp, value] : users.items()) {
        COFFER_RETURN_IF_ERROR(write_governance_value(tx, kUsersMap, fp, value));
    }
    COFFER_RETURN_IF_ERROR(
        write_governance_value(tx, kNodesMap, secrets_.node.node_id, node_record));
    COFFER_RETURN_IF_ERROR(write_governance_value(
        tx, kTrustedMeasurementsMap, to_hex(claims.measurement), {{"source", "genesis"}}));
    for (const std::string& m : config_.trusted_measurements) {
        if (m != to_hex(claims.measurement)) {
            COFFER_RETURN_IF_ERROR(
                write_governance_value(tx, kTrustedMeasurementsMap, m, {{"source", "config"}}));
        }
    }
    // The clean room's X25519 key pair (docs/cleanroom.md, "Maps"): made once per service,
    // in a private map so that every trusted node, a new leader after a failover included,
    // can open uploads with it. The name is cr::kServiceKeyMap of apps/cleanroom_state.h,
    // which the node library cannot include (apps builds on node).
    constexpr std::string_view kCleanroomKeyMap = "cleanroom.service_key";
    crypto::X25519KeyPair cleanroom_key = crypto::x25519_generate();
    COFFER_RETURN_IF_ERROR(
        write_governance_value(tx, kCleanroomKeyMap, "current",
                               {{"private_key", to_hex(cleanroom_key.private_key)},
                                {"public_key", to_hex(cleanroom_key.public_key)}}));
    COFFER_RETURN_IF_ERROR(write_genesis_governance(tx));
    auto committed = store_.commit(std::move(tx));
    if (!committed.ok()) {
        return committed.status();
    }
    COFFER_RETURN_IF_ERROR(ledger_->sign_now());
    metrics_.count_signature();
    return replicator_->wait_committed(ledger_->last_seqno(), kStartupTimeoutMs);
}

Status Node::persist_identity() {
    if (config_.local_sealing) {
        COFFER_RETURN_IF_ERROR(seal_to_disk());
    }
    COFFER_RETURN_IF_ERROR(
        write_file_atomic(path(kServiceCertFileName), secrets_.service.cert.to_pem(), 0644));
    return write_file_atomic(path(kNodeCertFileName), secrets_.node.cert.to_pem(), 0644);
}

Status Node::first_start(const json& members, const json& users) {
    COFFER_RETURN_IF_ERROR(make_attestation());
    COFFER_RETURN_IF_ERROR(choose_ports());
    COFFER_RETURN_IF_ERROR(persist_identity());
    COFFER_RETURN_IF_ERROR(open_ledger());
    // The network starts as this one node; it elects itself at once.
    RaftStateFile state;
    COFFER_ASSIGN_OR_RETURN(state.bootstrap, consensus::make_configuration({node_id()}));
    COFFER_RETURN_IF_ERROR(write_raft_state(config_.data_dir, state));
    COFFER_RETURN_IF_ERROR(start_replication(state));
    COFFER_RETURN_IF_ERROR(replicator_->campaign());
    COFFER_RETURN_IF_ERROR(replicator_->wait_leader_ready(kStartupTimeoutMs));
    COFFER_RETURN_IF_ERROR(write_genesis(members, users));

    // Written last: its presence says the service exists and this folder must be recovered,
    // not initialised again.
    COFFER_RETURN_IF_ERROR(write_node_info(json::object()));
    spdlog::info(
        "node.service_created node_id={} service_fingerprint={} members={} users={} "
        "local_sealing={}",
        secrets_.node.node_id, secrets_.service.cert.fingerprint_sha256_hex(), members.size(),
        users.size(), config_.local_sealing);
    return Status();
}

Status Node::refresh_node_record() {
    auto committed = commit([&](kv::Transaction& tx) -> Status {
        COFFER_ASSIGN_OR_RETURN(auto record,
                                read_governance_value(tx, kNodesMap, secrets_.node.node_id));
        if (!record.has_value()) {
            return error(Errc::kCorrupt, "the nodes map does not list this node");
        }
        COFFER_ASSIGN_OR_RETURN(std::string encryption_pem,
                                crypto::x25519_public_to_pem(secrets_.encryption.public_key));
        if ((*record)["attestation"] == attestation_ &&
            record->value("encryption_public_key", "") == encryption_pem) {
            return Status();
        }
        (*record)["attestation"] = attestation_;
        (*record)["encryption_public_key"] = encryption_pem;
        return write_governance_value(tx, kNodesMap, secrets_.node.node_id, *record);
    });
    return committed.ok() ? Status() : committed.status();
}

Status Node::write_node_info(const json& extra) {
    json info = {{"version", kNodeInfoVersion},
                 {"node_id", secrets_.node.node_id},
                 {"service_cert_fingerprint", secrets_.service.cert.fingerprint_sha256_hex()},
                 {"local_sealing", config_.local_sealing},
                 {"created_unix", unix_now()}};
    info.update(extra);
    return write_file_atomic(path(kNodeInfoFileName), info.dump(2) + "\n", 0644);
}

Status Node::restart() {
    COFFER_RETURN_IF_ERROR(make_attestation());
    COFFER_RETURN_IF_ERROR(choose_ports());
    auto state = read_raft_state(config_.data_dir);
    if (!state.ok()) {
        return state.status().code() == Errc::kNotFound
                   ? error(Errc::kCorrupt,
                           path(kRaftStateFileName) + " is missing: the node cannot know its term")
                   : state.status();
    }
    recovery_base_ = state->recovery_base;
    COFFER_RETURN_IF_ERROR(open_ledger());
    COFFER_RETURN_IF_ERROR(start_replication(*state));
    ReplicationStatus rs = replicator_->status();
    if (rs.configuration.voters.size() == 1 && rs.configuration.contains(node_id())) {
        // A network of one: elect itself now rather than after an election timeout, and
        // record the fresh attestation (only a leader can write).
        COFFER_RETURN_IF_ERROR(replicator_->campaign());
        COFFER_RETURN_IF_ERROR(replicator_->wait_leader_ready(kStartupTimeoutMs));
        COFFER_RETURN_IF_ERROR(refresh_node_record());
        // Serve only once the new term's first signature committed: everything replayed is
        // then reported Committed again, as it was before the restart.
        COFFER_RETURN_IF_ERROR(ledger_->sign_now());
        COFFER_RETURN_IF_ERROR(
            replicator_->wait_committed(ledger_->last_seqno(), kStartupTimeoutMs));
    }
    spdlog::info("node.recovered node_id={} view={} last_seqno={} committed_seqno={}",
                 secrets_.node.node_id, store_.view(), ledger_->last_seqno(), ledger_->committed());
    return Status();
}

Status Node::serve(net::Handler handler) {
    net::ServerOptions options;
    options.address = config_.client_address.host;
    options.port = config_.client_address.port;
    options.cert_chain_pem = secrets_.node.cert.to_pem() + secrets_.service.cert.to_pem();
    options.private_key_pem = secrets_.node.key.to_pem();
    options.max_body_bytes = config_.http.max_body_bytes;
    options.max_header_bytes = config_.http.max_header_bytes;
    options.max_connections = config_.http.max_connections;
    options.idle_timeout_ms = config_.http.idle_timeout_ms;
    options.header_timeout_ms = config_.http.header_timeout_ms;
    options.threads = config_.http.threads;
    auto server = net::HttpServer::start(std::move(options), std::move(handler));
    if (!server.ok()) {
        return server.status();
    }
    server_ = std::move(server).value();
    state_.store(NodeState::kPartOfNetwork);

    ListenAddress bound = config_.client_address;
    bound.port = server_->port();
    ListenAddress node_bound = config_.node_address;
    node_bound.port = node_port();
    json ports = {{"pid", static_cast<int64_t>(::getpid())},
                  {"client_address", bound.to_string()},
                  {"client_port", bound.port},
                  {"node_address", node_bound.to_string()},
                  {"node_port", node_bound.port}};
    COFFER_RETURN_IF_ERROR(write_file_atomic(path(kPortsFileName), ports.dump() + "\n", 0644));
    spdlog::info("node.listening node_id={} client_address={} node_address={}",
                 secrets_.node.node_id, bound.to_string(), config_.node_address.to_string());
    return Status();
}

void Node::stop() {
    {
        std::lock_guard lock(mu_);
        if (stop_requested_) {
            return;
        }
        stop_requested_ = true;
    }
    cv_.notify_all();
    NodeState previous = state_.exchange(NodeState::kStopping);
    if (server_ != nullptr) {
        server_->stop();
    }
    if (background_.joinable()) {
        background_.join();
    }
    if (replicator_ != nullptr) {
        if (failure().ok() && replicator_->leader_ready() && ledger_->last_seqno() > 0) {
            // A leader signs its tail and gives it a moment to commit on a majority.
            if (ledger_->sign_now().ok()) {
                metrics_.count_signature();
            }
            (void)replicator_->wait_committed(ledger_->last_seqno(), kStopCommitWaitMs);
        }
        deliver_to_.store(nullptr);
        replicator_->stop();
    }
    if (transport_ != nullptr) {
        transport_->stop();
    }
    if (ledger_ != nullptr && failure().ok()) {
        auto flushed = ledger_->flush();
        if (!flushed.ok()) {
            spdlog::error("node.final_flush_failed error={}", flushed.status().to_string());
        } else {
            spdlog::info("node.stopped node_id={} last_seqno={} committed_seqno={}",
                         secrets_.node.node_id, ledger_->last_seqno(), ledger_->committed());
        }
    }
    state_.store(previous == NodeState::kFailed ? NodeState::kFailed : NodeState::kStopped);
}

Status Node::failure() const {
    std::lock_guard lock(mu_);
    return failure_;
}

void Node::fail(const Status& status) {
    {
        std::lock_guard lock(mu_);
        if (!failure_.ok()) {
            return;
        }
        failure_ = status;
    }
    state_.store(NodeState::kFailed);
    spdlog::error("node.failed node_id={} error={}", secrets_.node.node_id, status.to_string());
}

Status Node::check_writable() const {
    Status failed = failure();
    if (!failed.ok()) {
        return error(Errc::kFailedPrecondition, "the node has failed: " + failed.message());
    }
    NodeState state = state_.load();
    if (state == NodeState::kStopping || state == NodeState::kStopped) {
        return error(Errc::kFailedPrecondition, "the node is stopping");
    }
    if (steady_ms() < disk_full_until_ms_.load()) {
        return error(Errc::kNoSpace, "the ledger disk is full; writes are refused for now");
    }
    return Status();
}

Result<kv::CommitResult> Node::commit(const TxBody& body) {
    Status writable = check_writable();
    if (writable.ok() && !is_leader()) {
        writable = error(Errc::kFailedPrecondition, "not leader: writes go to the leader");
    }
    if (!writable.ok()) {
        metrics_.count_write_rejection(writable.code() == Errc::kNoSpace ? "no_space" : "failed");
        return writable;
    }
    auto start = std::chrono::steady_clock::now();
    Status last = error(Errc::kConflict, "no attempt made");
    for (int attempt = 0; attempt < kMaxCommitAttempts; ++attempt) {
        kv::Transaction tx = store_.begin();
        COFFER_RETURN_IF_ERROR(body(tx));
        auto committed = store_.commit(std::move(tx));
        if (committed.ok()) {
            std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
            metrics_.observe_commit_latency(took.count());
            return committed;
        }
        last = committed.status();
        if (last.code() == Errc::kResourceExhausted) {
            // The ledger's unflushed batch is full: flush on this thread, then try again.
            auto flushed = ledger_->flush();
            if (!flushed.ok()) {
                last = flushed.status();
                break;
            }
            continue;
        }
        if (last.code() != Errc::kConflict) {
            break;
        }
    }
    if (last.code() == Errc::kNoSpace) {
        disk_full_until_ms_.store(steady_ms() + kDiskFullBackoffMs);
    }
    metrics_.count_write_rejection(std::string(errc_name(last.code())));
    return last;
}

void Node::start_background() {
    background_ = std::thread([this] { background_loop(); });
}

void Node::background_loop() {
    uint64_t next_expiry_check_ms = steady_ms() + kExpiryCheckIntervalMs;
    std::unique_lock lock(mu_);
    while (!stop_requested_ && failure_.ok()) {
        lock.unlock();
        background_step(next_expiry_check_ms);
        lock.lock();
        cv_.wait_for(lock, std::chrono::milliseconds(config_.ledger.flush_interval_ms),
                     [this] { return stop_requested_; });
    }
}

void Node::background_step(uint64_t& next_expiry_check_ms) {
    uint64_t now = steady_ms();
    if (now >= next_expiry_check_ms) {
        next_expiry_check_ms = now + kExpiryCheckIntervalMs;
        check_certificate_expiry();
        refresh_peer_addresses();
    }
    apply_signature_settings();
    reseal_after_rekey();
    // The replication thread flushes; the background thread only signs, and only a leader
    // signs.
    if (!is_leader()) {
        return;
    }
    kv::Seqno signed_before = ledger_->last_seqno();
    Status signed_now = ledger_->maybe_sign();
    if (signed_now.ok() && ledger_->last_seqno() > signed_before) {
        auto tx = store_.begin();
        std::optional<kv::Seqno> version =
            tx.get_version(ledger::kSignaturesMap, as_bytes(ledger::kSignatureKey));
        if (version.has_value() && *version > signed_before) {
            metrics_.count_signature();
        }
    } else if (!signed_now.ok() && signed_now.code() != Errc::kConflict) {
        spdlog::debug("node.sign_failed error={}", signed_now.to_string());
    }
}

void Node::check_certificate_expiry() {
    int64_t now = unix_now();
    auto warn = [&](const crypto::Certificate& cert, const char* which, bool& warned) {
        int64_t left = cert.not_after_unix() - now;
        if (left < kCertificateExpiryWarningS && !warned) {
            warned = true;
            spdlog::warn(
                "node.certificate_expiring certificate={} fingerprint={} not_after_unix={} "
                "seconds_left={}",
                which, cert.fingerprint_sha256_hex(), cert.not_after_unix(), left);
        }
    };
    std::lock_guard lock(mu_);
    warn(secrets_.service.cert, "service", warned_service_expiry_);
    warn(secrets_.node.cert, "node", warned_node_expiry_);
}

uint16_t Node::client_port() const {
    return server_ != nullptr ? server_->port() : 0;
}

net::ServerStats Node::server_stats() const {
    return server_ != nullptr ? server_->stats() : net::ServerStats{};
}

uint64_t Node::ledger_size_bytes() const {
    uint64_t total = 0;
    for (const std::string& file : ledger_->chunk_files()) {
        struct stat st {};
        if (::stat(file.c_str(), &st) == 0) {
            total += static_cast<uint64_t>(st.st_size);
        }
    }
    return total;
}

std::string Node::render_metrics() const {
    net::ServerStats s = server_stats();
    auto d = [](uint64_t v) { return static_cast<double>(v); };
    std::vector<Metrics::Sample> extra = {
        {"coffer_ledger_size_bytes", "gauge", "Bytes in the ledger chunk files.",
         d(ledger_size_bytes())},
        {"coffer_ledger_last_seqno", "gauge", "Last ledger entry.", d(ledger_->last_seqno())},
        {"coffer_ledger_committed_seqno", "gauge", "Commit point.", d(ledger_->committed())},
        {"coffer_net_connections_accepted_total", "counter", "TLS connections accepted.",
         d(s.connections_accepted)},
        {"coffer_net_connections_active", "gauge", "Open connections.", d(s.connections_active)},
        {"coffer_net_connections_rejected_total", "counter",
         "Connections refused over http.max_connections.", d(s.connections_rejected)},
        {"coffer_net_tls_handshake_failures_total", "counter", "Failed TLS handshakes.",
         d(s.tls_handshake_failures)},
        {"coffer_net_body_too_large_total", "counter", "Requests refused with 413.",
         d(s.body_too_large)},
        {"coffer_net_header_too_large_total", "counter", "Requests refused with 431 or 414.",
         d(s.header_too_large)},
        {"coffer_net_bad_request_total", "counter", "Malformed HTTP requests (400).",
         d(s.bad_request)},
        {"coffer_net_timeouts_total", "counter", "Connections cut by a timeout.", d(s.timeouts)},
        {"coffer_net_handler_errors_total", "counter", "Handler failures answered with 500.",
         d(s.handler_errors)},
        {"coffer_node_certificate_not_after_seconds", "gauge", "Node certificate not-after.",
         static_cast<double>(secrets_.node.cert.not_after_unix())},
    };
    if (replicator_ != nullptr && transport_ != nullptr) {
        ReplicationStatus rs = replicator_->status();
        consensus::RaftStats raft = replicator_->raft_stats();
        TransportStats t = transport_->stats();
        std::vector<Metrics::Sample> replication = {
            {"coffer_raft_term", "gauge", "Current Raft term (the view of new entries).",
             d(rs.term)},
            {"coffer_raft_is_leader", "gauge", "1 when this node leads and takes writes.",
             rs.leader_ready ? 1.0 : 0.0},
            {"coffer_raft_voters", "gauge", "Voters in the current configuration.",
             d(rs.configuration.voters.size())},
            {"coffer_raft_elections_started_total", "counter", "Elections this node started.",
             d(raft.elections_started)},
            {"coffer_raft_check_quorum_step_downs_total", "counter",
             "Times this leader stepped down for lack of a quorum.",
             d(raft.check_quorum_step_downs)},
            {"coffer_raft_messages_rejected_total", "counter",
             "Consensus messages refused as invalid for the current state.",
             d(raft.messages_rejected)},
            {"coffer_transport_messages_sent_total", "counter", "Consensus messages sent.",
             d(t.messages_sent)},
            {"coffer_transport_messages_received_total", "counter", "Consensus messages received.",
             d(t.messages_received)},
            {"coffer_transport_messages_dropped_total", "counter",
             "Consensus messages dropped (queue full, unknown peer, failed connection).",
             d(t.messages_dropped)},
            {"coffer_transport_requests_refused_total", "counter",
             "Node-to-node requests refused (certificate, framing, sender).",
             d(t.requests_refused)},
        };
        extra.insert(extra.end(), replication.begin(), replication.end());
    }
    return metrics_.render(extra);
}

Status Node::choose_ports() {
    // Port 0 means "any free port", but peers and clients must learn a node's real ports
    // from the nodes map, which is written before the servers start: choose them now. A
    // restarting node takes the ports it had, so that the records stay right.
    json previous;
    if (path_exists(path(kPortsFileName))) {
        auto text = read_small_file(path(kPortsFileName), kMaxNodeInfoBytes);
        if (text.ok()) {
            previous = json::parse(*text, nullptr, false);
        }
    }
    auto choose = [&](ListenAddress& address, const char* field) -> Status {
        if (address.port != 0) {
            return Status();
        }
        if (previous.is_object() && previous.contains(field) &&
            previous[field].is_number_unsigned() && previous[field].get<uint64_t>() > 0 &&
            previous[field].get<uint64_t>() <= 65535) {
            address.port = static_cast<uint16_t>(previous[field].get<uint64_t>());
            return Status();
        }
        COFFER_ASSIGN_OR_RETURN(address.port, pick_free_port(address.host));
        return Status();
    };
    COFFER_RETURN_IF_ERROR(choose(config_.client_address, "client_port"));
    COFFER_RETURN_IF_ERROR(choose(config_.node_address, "node_port"));
    if (config_.client_address.to_string() == config_.node_address.to_string()) {
        return error(Errc::kInvalidArgument, "client_address and node_address must differ");
    }
    return Status();
}

Status Node::start_replication(const RaftStateFile& state) {
    TransportOptions t;
    t.node_id = node_id();
    t.listen = config_.node_address;
    t.node_cert_pem = secrets_.node.cert.to_pem();
    t.node_key_pem = secrets_.node.key.to_pem();
    t.service_cert = secrets_.service.cert;
    COFFER_ASSIGN_OR_RETURN(transport_, PeerTransport::start(std::move(t), [this](auto msg) {
                                if (Replicator* r = deliver_to_.load(); r != nullptr) {
                                    r->deliver(std::move(msg));
                                }
                            }));
    refresh_peer_addresses();
    ReplicatorOptions r;
    r.node_id = node_id();
    r.data_dir = config_.data_dir;
    r.election_timeout_min_ms = config_.consensus.election_timeout_min_ms;
    r.election_timeout_max_ms = config_.consensus.election_timeout_max_ms;
    r.heartbeat_interval_ms = config_.consensus.heartbeat_interval_ms;
    COFFER_ASSIGN_OR_RETURN(replicator_,
                            Replicator::start(std::move(r), store_, *ledger_, *transport_, state,
                                              [this](const Status& s) { fail(s); }));
    deliver_to_.store(replicator_.get());
    return Status();
}

void Node::refresh_peer_addresses() {
    if (transport_ == nullptr) {
        return;
    }
    kv::Transaction tx = store_.begin();
    (void)tx.range(kNodesMap, {}, std::nullopt, kMaxConfigurationNodesListed,
                   [&](ByteSpan key, ByteSpan value) {
                       json record = json::parse(to_string(value), nullptr, false);
                       if (record.is_object() && record.contains("node_address") &&
                           record["node_address"].is_string()) {
                           auto address =
                               parse_listen_address(record["node_address"].get<std::string>());
                           if (address.ok() && address->port != 0) {
                               transport_->set_address(to_string(key), *address);
                           }
                       }
                       return true;
                   });
}

bool Node::caught_up() {
    if (caught_up_.load()) {
        return true;
    }
    kv::Transaction tx = store_.begin();
    if (tx.get(kNodesMap, as_bytes(node_id())).has_value()) {
        caught_up_.store(true);
        return true;
    }
    return false;
}

ReplicationStatus Node::replication_status() const {
    return replicator_ != nullptr ? replicator_->status() : ReplicationStatus{};
}

bool Node::is_leader() const {
    return replicator_ != nullptr && replicator_->leader_ready();
}

std::optional<std::string> Node::leader_client_address() {
    ReplicationStatus s = replication_status();
    if (!s.leader.has_value() || *s.leader == node_id()) {
        return std::nullopt;
    }
    kv::Transaction tx = store_.begin();
    auto record = read_governance_value(tx, kNodesMap, *s.leader);
    if (!record.ok() || !record->has_value() || !(**record).contains("client_address") ||
        !(**record)["client_address"].is_string()) {
        return std::nullopt;
    }
    return (**record)["client_address"].get<std::string>();
}

Status Node::wait_committed(kv::Seqno seqno, uint64_t timeout_ms) {
    if (replicator_ == nullptr) {
        return error(Errc::kFailedPrecondition, "replication is not running");
    }
    return replicator_->wait_committed(seqno, timeout_ms);
}

Result<kv::Seqno> Node::linearizable_read_point(uint64_t timeout_ms) {
    if (replicator_ == nullptr) {
        return error(Errc::kFailedPrecondition, "replication is not running");
    }
    return replicator_->linearizable_read_point(timeout_ms);
}

uint16_t Node::node_port() const {
    return transport_ != nullptr ? transport_->port() : 0;
}

}  // namespace coffer::node
