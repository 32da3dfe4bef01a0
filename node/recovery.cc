// Disaster recovery on the node (docs/recovery.md, "Recovering a service"): a new node starts
// from the ledger files of a lost network, replays their public part, becomes the one voter
// of a new service identity that endorses the previous one, collects the members' recovery
// shares, and once k of them rebuilt the ledger secrets, is reopened over the same files with
// every secret (the private part is replayed then, and verified like any restart).
#include <algorithm>
#include <ctime>
#include <filesystem>

#include <openssl/crypto.h>

#include "attestation/platform.h"
#include "common/log.h"
#include "crypto/x25519.h"
#include "node/files.h"
#include "node/governance_maps.h"
#include "node/node.h"
#include "node/node_internal.h"

namespace coffer::node {

namespace {

using nlohmann::json;

// Bound on one ledger file copied into the recovering node's folder (a chunk is a few MiB;
// a larger file is not one of ours).
constexpr uint64_t kMaxCopiedLedgerFileBytes = uint64_t{1} << 30;
// The most files a ledger folder to recover from may hold.
constexpr size_t kMaxCopiedLedgerFiles = 100000;
// Bytes copied per read.
constexpr size_t kCopyBlockBytes = 1 << 20;
// The previous-identity endorsement is valid as long as the certificate it endorses could be.
constexpr int64_t kEndorsementSlackS = 60;

std::string join_path(const std::string& dir, std::string_view name) {
    return ledger::join_path(dir, name);
}

// Copies one file durably (fsync of the copy; the caller syncs the folder).
Status copy_file_durably(ledger::FileSystem& fs, const std::string& from, const std::string& to) {
    COFFER_ASSIGN_OR_RETURN(auto in, fs.open_read(from));
    COFFER_ASSIGN_OR_RETURN(uint64_t size, in->size());
    if (size > kMaxCopiedLedgerFileBytes) {
        return error(Errc::kInvalidArgument, from + " is larger than any ledger chunk");
    }
    COFFER_ASSIGN_OR_RETURN(auto out, fs.create_new(to));
    Bytes block(kCopyBlockBytes);
    for (uint64_t offset = 0; offset < size;) {
        COFFER_ASSIGN_OR_RETURN(size_t n, in->read_at(offset, block));
        if (n == 0) {
            return error(Errc::kIo, from + " became shorter while it was copied");
        }
        COFFER_RETURN_IF_ERROR(out->append(ByteSpan(block.data(), n)).status());
        offset += n;
    }
    return out->sync();
}

// Copies the regular files of `source` (the lost node's ledger folder) into `target`. The
// source is only read: recovery can be started again from it if this attempt fails.
Status copy_ledger_folder(const std::string& source, const std::string& target) {
    ledger::PosixFileSystem fs;
    auto names = fs.list_dir(source);
    if (!names.ok()) {
        return names.status().with_context("ledger folder " + source + ": ");
    }
    if (names->empty()) {
        return error(Errc::kInvalidArgument, "ledger folder " + source + " is empty");
    }
    if (names->size() > kMaxCopiedLedgerFiles) {
        return error(Errc::kInvalidArgument, "ledger folder " + source + " holds too many files");
    }
    COFFER_RETURN_IF_ERROR(fs.make_dir(target));
    for (const std::string& name : *names) {
        std::string from = join_path(source, name);
        auto file = fs.open_read(from);
        if (!file.ok() && file.status().code() == Errc::kInvalidArgument) {
            continue;  // not a regular file (a sub-folder): not part of a ledger
        }
        COFFER_RETURN_IF_ERROR(file.status());
        COFFER_RETURN_IF_ERROR(copy_file_durably(fs, from, join_path(target, name)));
    }
    return fs.sync_dir(target);
}

// Removes what a failed first phase wrote into the (previously fresh) data folder.
void remove_failed_recovery(const std::string& data_dir) {
    std::error_code ec;
    std::filesystem::remove_all(join_path(data_dir, kLedgerDirName), ec);
    for (std::string_view name :
         {kRaftStateFileName, kServiceCertFileName, kNodeCertFileName, kPortsFileName}) {
        std::filesystem::remove(join_path(data_dir, name), ec);
    }
}

// A certificate for the previous service's key issued by the new service identity: whoever
// trusts the new service can check receipts signed under the old one (docs/recovery.md,
// "Identities").
Result<crypto::Certificate> endorse_previous_identity(const ServiceIdentity& current,
                                                      const crypto::Certificate& previous) {
    COFFER_ASSIGN_OR_RETURN(crypto::EcdsaPublicKey previous_key, previous.ecdsa_public_key());
    crypto::CertificateOptions options;
    options.common_name = std::string(kServiceCommonName) + " (previous identity)";
    options.not_before_unix = previous.not_before_unix() - kEndorsementSlackS;
    options.not_after_unix = std::max(previous.not_after_unix(), current.cert.not_after_unix());
    options.is_ca = true;
    return crypto::make_issued_certificate(previous_key, options, current.key, current.cert);
}

}  // namespace

Result<std::unique_ptr<Node>> Node::open_for_recovery(NodeConfig config,
                                                      const std::string& ledger_dir) {
    if (config.join.has_value()) {
        return error(Errc::kInvalidArgument,
                     "a recovering node starts a new network: remove the \"join\" section");
    }
    COFFER_RETURN_IF_ERROR(make_private_dir(config.data_dir));
    COFFER_ASSIGN_OR_RETURN(DataDirLock lock, DataDirLock::acquire(config.data_dir));
    if (path_exists(join_path(config.data_dir, kNodeInfoFileName))) {
        return error(Errc::kFailedPrecondition,
                     config.data_dir + " already holds a node: recover into a new, empty folder");
    }
    COFFER_RETURN_IF_ERROR(internal::check_fresh_data_dir(config));
    Status copied = copy_ledger_folder(ledger_dir, join_path(config.data_dir, kLedgerDirName));
    if (!copied.ok()) {
        remove_failed_recovery(config.data_dir);
        return copied;
    }
    COFFER_ASSIGN_OR_RETURN(NodeSecrets secrets, internal::make_fresh_secrets(config));
    // The ledger secrets come from the members' shares; until then nothing is encrypted.
    secrets.ledger_secrets.clear();
    std::string data_dir = config.data_dir;
    std::unique_ptr<Node> node(new Node(std::move(config), std::move(secrets), std::move(lock)));
    Status recovered = node->recover_public_state(ledger_dir);
    if (!recovered.ok()) {
        // Nothing of a failed attempt may stay: the folder must be fresh for the next one.
        node.reset();
        remove_failed_recovery(data_dir);
        return recovered;
    }
    node->check_certificate_expiry();
    node->start_background();
    return node;
}

Status Node::recover_public_state(const std::string& ledger_dir) {
    COFFER_RETURN_IF_ERROR(make_attestation());
    COFFER_RETURN_IF_ERROR(choose_ports());
    public_only_ = true;
    COFFER_RETURN_IF_ERROR(open_ledger());
    COFFER_RETURN_IF_ERROR(discard_unfinished_recovery());
    uint64_t base = ledger_->last_seqno();
    if (base == 0) {
        std::string hint = path_exists(join_path(ledger_dir, kLedgerDirName))
                               ? " (did you mean " + join_path(ledger_dir, kLedgerDirName) + "?)"
                               : "";
        return error(Errc::kInvalidArgument,
                     ledger_dir + " holds no signed ledger entry: nothing to recover" + hint);
    }
    kv::Transaction view = store_.begin();
    COFFER_ASSIGN_OR_RETURN(auto previous, read_governance_value(view, kServiceMap, kServiceKey));
    if (!previous.has_value()) {
        return error(Errc::kCorrupt,
                     "the ledger has no service record: it is not the ledger of a Coffer service");
    }
    if (!view.get(gov::kRecoveryMap, as_bytes(gov::kRecoveryCurrentKey)).has_value()) {
        return error(Errc::kFailedPrecondition,
                     "the ledger holds no recovery shares (no set_recovery_threshold proposal "
                     "ever passed), so its private data cannot be recovered");
    }
    // A secret for the entries of this phase, above every version the ledger used. None of
    // them has a private part; the reopen replaces it with a fresh one (docs/recovery.md).
    COFFER_RETURN_IF_ERROR(ledger_->add_secret(
        ledger::make_random_ledger_secret(ledger_->max_secret_version_used() + 1)));

    recovery_base_ = base;
    RaftStateFile state;
    // Terms continue above every view of the old ledger, so no (view, seqno) repeats.
    state.hard_state.term = store_.view();
    COFFER_ASSIGN_OR_RETURN(state.bootstrap, consensus::make_configuration({node_id()}));
    state.recovery_base = base;
    COFFER_RETURN_IF_ERROR(write_raft_state(config_.data_dir, state));
    COFFER_RETURN_IF_ERROR(start_replication(state));
    COFFER_RETURN_IF_ERROR(replicator_->campaign());
    COFFER_RETURN_IF_ERROR(replicator_->wait_leader_ready(kStartupTimeoutMs));
    COFFER_RETURN_IF_ERROR(write_recovery_start(*previous));
    COFFER_RETURN_IF_ERROR(
        write_file_atomic(path(kServiceCertFileName), secrets_.service.cert.to_pem(), 0644));
    COFFER_RETURN_IF_ERROR(
        write_file_atomic(path(kNodeCertFileName), secrets_.node.cert.to_pem(), 0644));
    {
        std::lock_guard lock(recovery_mu_);
        recovering_ = true;
    }
    spdlog::info(
        "node.recovery_started node_id={} service_fingerprint={} previous_fingerprint={} "
        "recovered_seqno={}",
        node_id(), secrets_.service.cert.fingerprint_sha256_hex(),
        previous->value("fingerprint", ""), base);
    return Status();
}

// A ledger folder of a recovery that stopped before its service opened (the process died
// while members were submitting shares) ends with that attempt's entries: its identity, its
// proposals. No share ever covered them and nothing of a user is among them (users were
// refused), so they are cut off, with a WARN, and this recovery starts from the lost network's
// last entry again, as the failed attempt did.
Status Node::discard_unfinished_recovery() {
    kv::Transaction tx = store_.begin();
    COFFER_ASSIGN_OR_RETURN(auto service, read_governance_value(tx, kServiceMap, kServiceKey));
    if (!service.has_value()) {
        return Status();
    }
    std::string status = service->value("status", "");
    if (status != kServiceStatusRecovering && status != kServiceStatusWaitingForShares) {
        return Status();
    }
    auto base = service->find("recovered_seqno");
    if (base == service->end() || !base->is_number_unsigned() ||
        base->get<uint64_t>() >= ledger_->last_seqno() || base->get<uint64_t>() == 0) {
        return error(Errc::kCorrupt,
                     "the ledger ends in an unfinished recovery whose "
                     "recovered_seqno is missing or out of range");
    }
    uint64_t last_kept = base->get<uint64_t>();
    spdlog::warn(
        "node.recovery_attempt_discarded previous_attempt={} entries_discarded={} "
        "recovering_from_seqno={}",
        service->value("fingerprint", ""), ledger_->last_seqno() - last_kept, last_kept);
    return ledger_->rollback(last_kept);
}

// The first transaction of the recovered service: its new identity, endorsing the previous
// one; this node as the only trusted node (the lost nodes are retired); status "recovering"
// until the members accept the recovered public state by proposal. This node is the only
// voter through its bootstrap configuration (raft_state.json): the configuration map keeps
// the lost network's last value, which no longer counts (RaftStateFile::recovery_base), until
// the next node joins.
Status Node::write_recovery_start(const json& previous_service) {
    COFFER_ASSIGN_OR_RETURN(crypto::Certificate previous_cert,
                            crypto::Certificate::from_pem(previous_service.value("cert", "")));
    COFFER_ASSIGN_OR_RETURN(crypto::Certificate endorsement,
                            endorse_previous_identity(secrets_.service, previous_cert));
    json previous_fingerprints = previous_service.value("previous_fingerprints", json::array());
    previous_fingerprints.push_back(previous_cert.fingerprint_sha256_hex());
    json service = {{"cert", secrets_.service.cert.to_pem()},
                    {"fingerprint", secrets_.service.cert.fingerprint_sha256_hex()},
                    {"status", std::string(kServiceStatusRecovering)},
                    {"previous_cert", previous_cert.to_pem()},
                    {"previous_endorsement", endorsement.to_pem()},
                    {"previous_fingerprints", previous_fingerprints},
                    {"recovered_seqno", recovery_base_}};
    COFFER_ASSIGN_OR_RETURN(attestation::Evidence evidence,
                            attestation::evidence_from_json(attestation_));
    COFFER_ASSIGN_OR_RETURN(attestation::VerifiedClaims claims,
                            attestation::verify_evidence(evidence, {}));
    COFFER_ASSIGN_OR_RETURN(std::string encryption_pem,
                            crypto::x25519_public_to_pem(secrets_.encryption.public_key));
    json own = {{"cert", secrets_.node.cert.to_pem()},
                {"status", std::string(kNodeStatusTrusted)},
                {"encryption_public_key", encryption_pem},
                {"attestation", attestation_},
                {"client_address", config_.client_address.to_string()},
                {"node_address", config_.node_address.to_string()}};
    auto committed = commit([&](kv::Transaction& tx) -> Status {
        COFFER_RETURN_IF_ERROR(write_governance_value(tx, kServiceMap, kServiceKey, service));
        std::vector<std::pair<std::string, json>> lost;
        Status parse_error;
        COFFER_RETURN_IF_ERROR(
            tx.range(kNodesMap, {}, std::nullopt, 0, [&](ByteSpan k, ByteSpan v) {
                json record = json::parse(to_string(v), nullptr, false);
                if (!record.is_object()) {
                    parse_error = error(Errc::kCorrupt, "a node record is not a JSON object");
                    return false;
                }
                if (record.value("status", "") != kNodeStatusRetired) {
                    record["status"] = std::string(kNodeStatusRetired);
                    lost.emplace_back(to_string(k), std::move(record));
                }
                return true;
            }));
        COFFER_RETURN_IF_ERROR(parse_error);
        for (const auto& [id, record] : lost) {
            COFFER_RETURN_IF_ERROR(write_governance_value(tx, kNodesMap, id, record));
        }
        COFFER_RETURN_IF_ERROR(write_governance_value(tx, kNodesMap, node_id(), own));
        std::string measurement = to_hex(claims.measurement);
        if (!tx.get(kTrustedMeasurementsMap, as_bytes(measurement)).has_value()) {
            COFFER_RETURN_IF_ERROR(write_governance_value(tx, kTrustedMeasurementsMap, measurement,
                                                          {{"source", "recovery"}}));
        }
        return Status();
    });
    COFFER_RETURN_IF_ERROR(committed.status());
    COFFER_RETURN_IF_ERROR(ledger_->sign_now());
    metrics_.count_signature();
    return replicator_->wait_committed(ledger_->last_seqno(), kStartupTimeoutMs);
}

Result<RecoveryProgress> Node::submit_recovery_share(const std::string& member_fingerprint,
                                                     ByteSpan share) {
    std::lock_guard lock(recovery_mu_);
    if (!recovering_) {
        return error(Errc::kFailedPrecondition, "this node is not recovering a service");
    }
    if (!recovered_.has_value()) {
        if (!collector_.has_value()) {
            kv::Transaction tx = store_.begin();
            auto value = read_governance_value(tx, gov::kRecoveryMap, gov::kRecoveryCurrentKey);
            if (!value.ok() || !value->has_value()) {
                return error(Errc::kCorrupt, "the recovered ledger has no recovery value");
            }
            COFFER_ASSIGN_OR_RETURN(gov::ShareCollector collector,
                                    gov::ShareCollector::create(**value));
            collector_.emplace(std::move(collector));
        }
        std::string digest = gov::recovery_share_digest(share);
        auto earlier = share_submitters_.find(member_fingerprint);
        if (earlier != share_submitters_.end()) {
            if (earlier->second != digest) {
                return error(Errc::kConflict,
                             "member " + member_fingerprint + " already submitted another share");
            }
            RecoveryProgress again = recovery_progress_locked();
            again.already_counted = true;
            return again;
        }
        Status submitted = collector_->submit(share);
        if (submitted.code() == Errc::kFailedPrecondition) {
            // "share from another share set": the share is wrong, the node is not.
            submitted = error(Errc::kInvalidArgument, submitted.message());
        }
        if (!submitted.ok()) {
            spdlog::warn("node.recovery_share_refused member={} reason={}", member_fingerprint,
                         submitted.message());
            return submitted;
        }
        share_submitters_[member_fingerprint] = digest;
        spdlog::info("node.recovery_share_accepted member={} progress=\"{}\"", member_fingerprint,
                     collector_->progress());
        if (collector_->complete()) {
            COFFER_RETURN_IF_ERROR(finish_share_collection());
        }
    }
    return recovery_progress_locked();
}

// With k shares: rebuilds the ledger secrets. If the shares (whose digests all matched) do not
// open the wrapped secrets, every share is dropped so that members can start again.
Status Node::finish_share_collection() {
    auto secrets = collector_->recover();
    if (!secrets.ok()) {
        collector_.reset();
        share_submitters_.clear();
        spdlog::error("node.recovery_failed reason={}", secrets.status().message());
        return secrets.status().with_context(
            "recovery failed, every submitted share was discarded: ");
    }
    uint32_t newest = std::max(ledger_->max_secret_version_used(),
                               secrets->empty() ? 0u : secrets->back().version);
    // A fresh secret for everything written after recovery: two recoveries from the same
    // files must never encrypt under one key with the same (view, seqno).
    secrets->push_back(ledger::make_random_ledger_secret(newest + 1));
    recovered_ = std::move(secrets).value();
    spdlog::info("node.recovery_secrets_rebuilt versions={}", recovered_->size());
    recovery_cv_.notify_all();
    return Status();
}

RecoveryProgress Node::recovery_progress_locked() const {
    RecoveryProgress p;
    p.recovering = recovering_;
    p.secrets_recovered = recovered_.has_value();
    if (collector_.has_value()) {
        p.received = collector_->received();
        p.threshold = collector_->threshold();
    }
    for (const auto& [member, digest] : share_submitters_) {
        p.submitted_by.push_back(member);
    }
    return p;
}

RecoveryProgress Node::recovery_progress() const {
    std::lock_guard lock(recovery_mu_);
    return recovery_progress_locked();
}

bool Node::wait_recovery_secrets(uint64_t timeout_ms) {
    std::unique_lock lock(recovery_mu_);
    return recovery_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                                 [this] { return recovered_.has_value(); });
}

Result<NodeSecrets> Node::recovered_secrets() const {
    std::lock_guard lock(recovery_mu_);
    if (!recovered_.has_value()) {
        return error(Errc::kFailedPrecondition, "the ledger secrets are not recovered yet");
    }
    NodeSecrets secrets = secrets_;
    secrets.ledger_secrets = *recovered_;
    return secrets;
}

Result<std::unique_ptr<Node>> Node::open_recovered(NodeConfig config, NodeSecrets secrets) {
    COFFER_ASSIGN_OR_RETURN(DataDirLock lock, DataDirLock::acquire(config.data_dir));
    std::unique_ptr<Node> node(new Node(std::move(config), std::move(secrets), std::move(lock)));
    COFFER_RETURN_IF_ERROR(node->reopen_with_recovered_secrets());
    node->check_certificate_expiry();
    node->start_background();
    return node;
}

Status Node::reopen_with_recovered_secrets() {
    COFFER_RETURN_IF_ERROR(make_attestation());
    COFFER_RETURN_IF_ERROR(choose_ports());
    COFFER_ASSIGN_OR_RETURN(RaftStateFile state, read_raft_state(config_.data_dir));
    recovery_base_ = state.recovery_base;
    // A full replay: every private part of the old ledger is decrypted and verified now.
    COFFER_RETURN_IF_ERROR(open_ledger());
    COFFER_RETURN_IF_ERROR(start_replication(state));
    COFFER_RETURN_IF_ERROR(replicator_->campaign());
    COFFER_RETURN_IF_ERROR(replicator_->wait_leader_ready(kStartupTimeoutMs));
    COFFER_RETURN_IF_ERROR(ledger_->sign_now());
    COFFER_RETURN_IF_ERROR(replicator_->wait_committed(ledger_->last_seqno(), kStartupTimeoutMs));
    spdlog::info("node.recovery_private_replayed node_id={} last_seqno={} secret_versions={}",
                 node_id(), ledger_->last_seqno(), secrets_.ledger_secrets.size());
    return Status();
}

Status Node::complete_recovery() {
    COFFER_RETURN_IF_ERROR(persist_identity());
    // Written last, as at a first start: from now on this folder restarts like any node's.
    return write_node_info({{"recovered_seqno", recovery_base_}});
}

}  // namespace coffer::node
