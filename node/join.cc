// Joining a network (docs/replication.md, "Joining"): the joiner's side (Node::join_network)
// and the leader's side (Node::admit_node).
#include <openssl/crypto.h>

#include <chrono>
#include <ctime>
#include <thread>

#include "attestation/platform.h"
#include "common/log.h"
#include "crypto/x25519.h"
#include "net/client.h"
#include "node/files.h"
#include "node/governance_maps.h"
#include "node/node.h"

namespace coffer::node {

namespace {

using nlohmann::json;

constexpr size_t kMaxPemFileBytes = 64 * 1024;
// Redirects followed from a follower to the leader, per attempt.
constexpr int kMaxJoinRedirects = 4;
// Wait between two join attempts that were refused for now (no leader, change in progress).
constexpr uint64_t kJoinRetryMs = 500;
// How long a joiner whose request is pending waits for the members' trust_node proposal.
constexpr uint64_t kJoinPendingTimeoutMs = 30ULL * 60 * 1000;
// How often a pending joiner asks again.
constexpr uint64_t kJoinPendingPollMs = 500;

int64_t unix_now() {
    return static_cast<int64_t>(std::time(nullptr));
}

json ledger_secrets_json(const std::vector<ledger::LedgerSecret>& secrets) {
    json out = json::array();
    for (const ledger::LedgerSecret& s : secrets) {
        out.push_back({{"version", s.version}, {"key", to_hex(s.key)}});
    }
    return out;
}

Result<std::vector<ledger::LedgerSecret>> ledger_secrets_from_json(const json& value) {
    if (!value.is_array() || value.empty()) {
        return error(Errc::kInvalidArgument, "ledger_secrets must be a non-empty array");
    }
    std::vector<ledger::LedgerSecret> out;
    for (const json& s : value) {
        if (!s.is_object() || !s.contains("version") || !s["version"].is_number_unsigned() ||
            !s.contains("key") || !s["key"].is_string()) {
            return error(Errc::kInvalidArgument, "ledger secret must be {version, key}");
        }
        auto key = from_hex(s["key"].get<std::string>());
        if (!key.ok() || key->size() != ledger::kLedgerSecretSize) {
            return error(Errc::kInvalidArgument, "ledger secret key must be 32 bytes of hex");
        }
        out.push_back(ledger::LedgerSecret{s["version"].get<uint32_t>(), std::move(key).value()});
    }
    return out;
}

std::string string_field(const json& doc, const char* name) {
    return doc.is_object() && doc.contains(name) && doc[name].is_string()
               ? doc[name].get<std::string>()
               : std::string();
}

// "https://host:port/..." -> host:port.
Result<ListenAddress> redirect_target(const std::string& location) {
    std::string_view rest = location;
    constexpr std::string_view kScheme = "https://";
    if (rest.substr(0, kScheme.size()) != kScheme) {
        return error(Errc::kInvalidArgument, "redirect is not https: " + location);
    }
    rest.remove_prefix(kScheme.size());
    return parse_listen_address(rest.substr(0, rest.find('/')));
}

}  // namespace

// What a join request must prove before anything is issued: the evidence verifies, binds
// the key the joiner proved it holds in the TLS handshake, and carries a trusted measurement.
Result<Node::JoinClaims> Node::check_join_request(const std::string& client_cert_der,
                                                  const json& request) {
    auto cert = crypto::Certificate::from_der(as_bytes(client_cert_der));
    if (!cert.ok()) {
        return error(Errc::kInvalidArgument, "the joiner's client certificate does not parse");
    }
    COFFER_ASSIGN_OR_RETURN(crypto::EcdsaPublicKey key, cert->ecdsa_public_key());
    if (!request.is_object() || !request.contains("attestation")) {
        return error(Errc::kInvalidArgument,
                     "join request must be {node_address, client_address, attestation}");
    }
    auto node_address = parse_listen_address(string_field(request, "node_address"));
    auto client_address = parse_listen_address(string_field(request, "client_address"));
    if (!node_address.ok() || !client_address.ok() || node_address->port == 0 ||
        client_address->port == 0) {
        return error(Errc::kInvalidArgument,
                     "node_address and client_address must be host:port with a non-zero port");
    }
    auto evidence = attestation::evidence_from_json(request["attestation"]);
    if (!evidence.ok()) {
        return error(Errc::kInvalidArgument, "attestation: " + evidence.status().message());
    }
    auto claims = attestation::verify_evidence(*evidence, {});
    if (!claims.ok()) {
        return error(Errc::kPermissionDenied,
                     "attestation evidence refused: " + claims.status().message());
    }
    Status bound = attestation::check_key_binding(*claims, key.to_der());
    if (!bound.ok()) {
        return error(Errc::kPermissionDenied, "attestation: " + bound.message());
    }
    std::string measurement = to_hex(claims->measurement);
    kv::Transaction tx = store_.begin();
    COFFER_ASSIGN_OR_RETURN(auto trusted,
                            read_governance_value(tx, kTrustedMeasurementsMap, measurement));
    if (!trusted.has_value()) {
        return error(Errc::kPermissionDenied,
                     "measurement " + measurement +
                         " is not trusted by this network: run the binary the network's nodes "
                         "run, or have the members pass an add_trusted_measurement proposal "
                         "for it");
    }
    // Checked after the proof, so that a request without one is refused as such. Rekeys
    // seal new ledger secrets to this key (docs/ledger.md, "Rekey").
    auto encryption_key =
        crypto::x25519_public_from_pem(string_field(request, "encryption_public_key"));
    if (!encryption_key.ok()) {
        return error(Errc::kInvalidArgument,
                     "encryption_public_key must be an X25519 public key (PEM)");
    }
    COFFER_ASSIGN_OR_RETURN(std::string encryption_pem,
                            crypto::x25519_public_to_pem(*encryption_key));
    return JoinClaims{node_id_of(key), key,         *node_address,
                      *client_address, measurement, std::move(encryption_pem)};
}

Result<json> Node::admit_node(const std::string& client_cert_der, const json& request) {
    if (!is_leader()) {
        return error(Errc::kFailedPrecondition, "not leader");
    }
    if (public_only_) {
        // This node holds no ledger secret of the lost network yet: a joiner could not read
        // the ledger it would replicate. It asks again until the service is recovered.
        return error(Errc::kFailedPrecondition,
                     "the service is being recovered: nodes join once its ledger secrets are back");
    }
    COFFER_ASSIGN_OR_RETURN(JoinClaims joining, check_join_request(client_cert_der, request));
    const std::string& joiner = joining.node_id;
    std::optional<json> record;
    {
        kv::Transaction tx = store_.begin();
        COFFER_ASSIGN_OR_RETURN(record, read_governance_value(tx, kNodesMap, joiner));
    }
    const std::string status = record.has_value() ? record->value("status", "") : "";
    if (status == kNodeStatusRetired) {
        return error(Errc::kPermissionDenied,
                     "node " + joiner + " was retired; a retired node cannot join again");
    }
    if (status != kNodeStatusTrusted) {
        return record_pending_node(joining, request);
    }
    // Trusted by an accepted trust_node proposal: issue its certificate, make it a voter and
    // hand it the service's secrets, now that it is here to take part.
    return answer_trusted_joiner(joining, request, *record);
}

Result<json> Node::record_pending_node(const JoinClaims& joining, const json& request) {
    const std::string& joiner = joining.node_id;
    json record = {{"status", std::string(kNodeStatusPending)},
                   {"encryption_public_key", joining.encryption_public_key_pem},
                   {"attestation", request["attestation"]},
                   {"measurement", joining.measurement},
                   {"client_address", joining.client_address.to_string()},
                   {"node_address", joining.node_address.to_string()}};
    auto committed = commit([&](kv::Transaction& tx) -> Status {
        COFFER_ASSIGN_OR_RETURN(auto current, read_governance_value(tx, kNodesMap, joiner));
        if (current.has_value() && *current == record) {
            return Status();  // asked again: nothing new to record
        }
        if (current.has_value() && current->value("status", "") != kNodeStatusPending) {
            return error(Errc::kConflict, "node " + joiner + " changed status meanwhile");
        }
        return write_governance_value(tx, kNodesMap, joiner, record);
    });
    if (!committed.ok()) {
        return committed.status();
    }
    spdlog::info("node.join_pending joiner={} measurement={} node_address={}", joiner,
                 joining.measurement, joining.node_address.to_string());
    return json{
        {"status", std::string(kNodeStatusPending)},
        {"node_id", joiner},
        {"message", "waiting for the members to accept a trust_node proposal for " + joiner}};
}

Result<json> Node::answer_trusted_joiner(const JoinClaims& joining, const json& request,
                                         json record) {
    const std::string& joiner = joining.node_id;
    // The joiner learns later rekeys from the ledger, but a rekey that may still be rolled
    // back must not reach it: it would keep a secret no other node has.
    if (ledger_->newest_learned_version(false) != ledger_->newest_learned_version(true)) {
        return error(Errc::kFailedPrecondition, "a ledger rekey is not committed yet; ask again");
    }
    std::vector<ledger::LedgerSecret> secrets = ledger_secrets();
    int64_t now = unix_now();
    COFFER_ASSIGN_OR_RETURN(
        crypto::Certificate node_cert,
        issue_node_certificate(secrets_.service, joining.key,
                               {joining.client_address.host, joining.node_address.host}, now,
                               config_.certificates.node_validity_s));
    record["cert"] = node_cert.to_pem();
    record["encryption_public_key"] = joining.encryption_public_key_pem;
    record["attestation"] = request["attestation"];
    record["client_address"] = joining.client_address.to_string();
    record["node_address"] = joining.node_address.to_string();
    transport_->set_address(joiner, joining.node_address);
    consensus::Configuration current = replication_status().configuration;
    bool already_voter = current.contains(joiner);
    std::vector<consensus::NodeId> voters = current.voters;
    voters.push_back(joiner);
    COFFER_ASSIGN_OR_RETURN(consensus::Configuration next,
                            consensus::make_configuration(std::move(voters)));
    auto committed = commit([&](kv::Transaction& tx) -> Status {
        COFFER_ASSIGN_OR_RETURN(auto stored, read_governance_value(tx, kNodesMap, joiner));
        if (!stored.has_value() || stored->value("status", "") != kNodeStatusTrusted) {
            return error(Errc::kConflict, "node " + joiner + " is no longer trusted");
        }
        COFFER_RETURN_IF_ERROR(write_governance_value(tx, kNodesMap, joiner, record));
        if (already_voter) {
            return Status();
        }
        return tx.put(kConfigurationMap, as_bytes(kConfigurationKey),
                      as_bytes(configuration_value(next)));
    });
    if (!committed.ok()) {
        return committed.status();
    }
    spdlog::info("node.join_admitted joiner={} measurement={} node_address={} tx={}", joiner,
                 joining.measurement, joining.node_address.to_string(), committed->id.to_string());

    json peers = json::array();
    for (const consensus::NodeId& id : replication_status().configuration.voters) {
        if (id == node_id() || id == joiner) {
            continue;
        }
        if (auto a = transport_->address_of(id); a.has_value()) {
            peers.push_back({{"node_id", id}, {"node_address", a->to_string()}});
        }
    }
    peers.push_back({{"node_id", node_id()}, {"node_address", config_.node_address.to_string()}});
    return json{{"node_id", joiner},
                {"node_certificate", node_cert.to_pem()},
                {"service_certificate", secrets_.service.cert.to_pem()},
                {"service_key", secrets_.service.key.to_pem()},
                {"ledger_secrets", ledger_secrets_json(secrets)},
                {"peers", std::move(peers)},
                {"recovery_base", recovery_base_},
                {"transaction_id", committed->id.to_string()}};
}

namespace {

// One POST /node/join to `target`, over TLS pinned to the service certificate and with
// `self_cert` (for the node key) as the client certificate. Errors: kPermissionDenied when
// the target presents another service's certificate (asking again will not change that; a
// recovered service has a new one); connection and request errors.
Result<net::HttpResponse> send_join_request(const ListenAddress& target,
                                            const crypto::Certificate& pinned,
                                            const crypto::Certificate& self_cert,
                                            const crypto::EcdsaPrivateKey& node_key,
                                            const std::string& body) {
    net::ClientOptions o;
    o.host = target.host;
    o.port = target.port;
    o.ca_cert_pem = pinned.to_pem();
    o.client_cert_pem = self_cert.to_pem();
    o.client_key_pem = node_key.to_pem();
    auto client = net::HttpClient::connect(o);
    if (!client.ok()) {
        if (net::is_server_certificate_refusal(client.status())) {
            return error(Errc::kPermissionDenied,
                         target.to_string() + " does not present the pinned service certificate (" +
                             client.status().message() + "); a recovered service has a new one");
        }
        return client.status();
    }
    return (*client)->request("POST", "/node/join", body, {{"Content-Type", "application/json"}});
}

}  // namespace

Status Node::join_network() {
    const JoinConfig& join = *config_.join;
    COFFER_ASSIGN_OR_RETURN(std::string service_pem,
                            read_small_file(join.service_cert_file, kMaxPemFileBytes));
    COFFER_ASSIGN_OR_RETURN(crypto::Certificate pinned, crypto::Certificate::from_pem(service_pem));
    // A self-signed certificate for the join request only: it proves possession of the key
    // that the attestation evidence binds.
    crypto::CertificateOptions self;
    self.common_name = "Coffer joining node " + secrets_.node.node_id.substr(0, 16);
    self.not_before_unix = unix_now() - 60;
    self.not_after_unix = unix_now() + 3600;
    COFFER_ASSIGN_OR_RETURN(crypto::Certificate self_cert,
                            crypto::make_self_signed_certificate(secrets_.node.key, self));
    COFFER_RETURN_IF_ERROR(make_attestation());
    COFFER_RETURN_IF_ERROR(choose_ports());

    COFFER_ASSIGN_OR_RETURN(std::string encryption_pem,
                            crypto::x25519_public_to_pem(secrets_.encryption.public_key));
    json body = {{"node_address", config_.node_address.to_string()},
                 {"client_address", config_.client_address.to_string()},
                 {"encryption_public_key", encryption_pem},
                 {"attestation", attestation_}};
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kJoinTimeoutMs);
    ListenAddress target = join.target;
    json answer;
    Status last = error(Errc::kFailedPrecondition, "no join attempt made");
    int redirects = 0;
    bool pending_logged = false;
    while (std::chrono::steady_clock::now() < deadline) {
        if (stop_requested_during_open_ != nullptr && stop_requested_during_open_->load()) {
            return error(Errc::kFailedPrecondition, "stopped while joining");
        }
        Result<net::HttpResponse> response =
            send_join_request(target, pinned, self_cert, secrets_.node.key, body.dump());
        if (!response.ok() && response.status().code() == Errc::kPermissionDenied) {
            return response.status().with_context("check join.service_cert_file " +
                                                  join.service_cert_file + ": ");
        }
        if (response.ok() && response->status == 200) {
            answer = json::parse(response->body, nullptr, false);
            last = Status();
            break;
        }
        if (response.ok() && response->status == 202) {
            // Recorded as pending: the members decide. Keep asking (the leader answers with
            // the secrets once a trust_node proposal was accepted) for a much longer time.
            if (!pending_logged) {
                spdlog::info("node.join_pending node_id={} target={}", secrets_.node.node_id,
                             target.to_string());
                pending_logged = true;
                deadline = std::chrono::steady_clock::now() +
                           std::chrono::milliseconds(kJoinPendingTimeoutMs);
            }
            last = error(Errc::kFailedPrecondition,
                         "no trust_node proposal was accepted for node " + secrets_.node.node_id);
            std::this_thread::sleep_for(std::chrono::milliseconds(kJoinPendingPollMs));
            continue;
        }
        if (response.ok() && response->status == 307 && redirects < kMaxJoinRedirects) {
            auto location = response->header("Location");
            auto next = location.has_value()
                            ? redirect_target(*location)
                            : Result<ListenAddress>(error(Errc::kInvalidArgument, "no Location"));
            if (next.ok()) {
                ++redirects;
                target = *next;
                continue;
            }
        }
        if (response.ok() && response->status != 503 && response->status != 307) {
            // Refused for good (evidence, measurement, malformed): no point in retrying.
            return error(Errc::kPermissionDenied, "join refused by " + target.to_string() + ": " +
                                                      std::to_string(response->status) + " " +
                                                      response->body.substr(0, 400));
        }
        last = response.ok() ? error(Errc::kFailedPrecondition,
                                     "join not possible yet: " + response->body.substr(0, 200))
                             : response.status();
        spdlog::info("node.join_retry target={} reason={}", target.to_string(), last.to_string());
        target = join.target;
        redirects = 0;
        std::this_thread::sleep_for(std::chrono::milliseconds(kJoinRetryMs));
    }
    if (!last.ok()) {
        return last.with_context("joining " + join.target.to_string() + ": ");
    }
    return install_join_answer(answer, pinned);
}

Status Node::install_join_answer(const json& answer, const crypto::Certificate& pinned) {
    if (!answer.is_object() || string_field(answer, "node_id") != secrets_.node.node_id) {
        return error(Errc::kInvalidArgument, "join answer is malformed or names another node");
    }
    COFFER_ASSIGN_OR_RETURN(secrets_.node.cert, crypto::Certificate::from_pem(
                                                    string_field(answer, "node_certificate")));
    COFFER_ASSIGN_OR_RETURN(secrets_.service.cert, crypto::Certificate::from_pem(string_field(
                                                       answer, "service_certificate")));
    COFFER_ASSIGN_OR_RETURN(secrets_.service.key,
                            crypto::EcdsaPrivateKey::from_pem(string_field(answer, "service_key")));
    if (secrets_.service.cert.fingerprint_sha256_hex() != pinned.fingerprint_sha256_hex()) {
        return error(Errc::kPermissionDenied, "join answer carries another service certificate");
    }
    COFFER_ASSIGN_OR_RETURN(crypto::EcdsaPublicKey issued_key,
                            secrets_.node.cert.ecdsa_public_key());
    COFFER_ASSIGN_OR_RETURN(crypto::EcdsaPublicKey service_key,
                            secrets_.service.cert.ecdsa_public_key());
    if (issued_key.to_der() != secrets_.node.key.public_key().to_der() ||
        !secrets_.node.cert.verify_signed_by(service_key).ok()) {
        return error(Errc::kPermissionDenied,
                     "join answer's node certificate is not ours or not issued by the service");
    }
    COFFER_ASSIGN_OR_RETURN(secrets_.ledger_secrets,
                            ledger_secrets_from_json(answer["ledger_secrets"]));

    // A recovered service's ledger begins with the lost network's entries (docs/recovery.md).
    if (answer.contains("recovery_base")) {
        if (!answer["recovery_base"].is_number_unsigned()) {
            return error(Errc::kInvalidArgument, "join answer's recovery_base is not a number");
        }
        recovery_base_ = answer["recovery_base"].get<uint64_t>();
    }
    COFFER_RETURN_IF_ERROR(persist_identity());
    COFFER_RETURN_IF_ERROR(open_ledger());
    // A joiner has no bootstrap configuration: it learns the voters from the leader's log.
    RaftStateFile state;
    state.recovery_base = recovery_base_;
    COFFER_RETURN_IF_ERROR(write_raft_state(config_.data_dir, state));
    COFFER_RETURN_IF_ERROR(start_replication(state));
    if (answer.contains("peers") && answer["peers"].is_array()) {
        for (const json& p : answer["peers"]) {
            auto address = parse_listen_address(string_field(p, "node_address"));
            if (address.ok()) {
                transport_->set_address(string_field(p, "node_id"), *address);
            }
        }
    }
    COFFER_RETURN_IF_ERROR(
        write_node_info({{"joined_at", string_field(answer, "transaction_id")}}));
    spdlog::info("node.joined node_id={} service_fingerprint={} tx={}", secrets_.node.node_id,
                 secrets_.service.cert.fingerprint_sha256_hex(),
                 string_field(answer, "transaction_id"));
    return Status();
}

}  // namespace coffer::node
