// One Coffer node: it starts a new service (first start) or recovers its own (restart),
// keeps the KV store and its ledger, signs and flushes in the background, and serves HTTPS.
// Lifecycle, data directory layout, sealing and identities: docs/node.md.
//
// Life of a Node:
//   open()   first start: makes the service and node identities and the first ledger
//            secret, seals them (unless local_sealing is off), writes the genesis
//            transaction to the governance maps and signs it; the service is open.
//            restart: unseals the secrets and replays the ledger (the ledger moves to a new
//            view), then refreshes this node's attestation in the nodes map.
//            Either way a background thread starts that calls Ledger::maybe_sign and
//            Ledger::flush every ledger.flush_interval_ms.
//   serve()  starts the HTTPS server with the application's handler and writes
//            data_dir/node_ports.json.
//   stop()   stops the server and the background thread, signs what is unsigned and
//            flushes. Also run by the destructor.
//
// Failures: a failed fsync (kIo from Ledger::flush) makes the node FAILED: failure() turns
// non-ok, writes are refused, and the owner (the `coffer node start` command) must stop the
// process with a non-zero exit code. A full disk (kNoSpace) makes writes fail for
// kDiskFullBackoffMs, counted in the metrics, while reads go on.
//
// Thread-safety: after open(), every public method is thread-safe except serve() and stop(),
// which the owning thread calls (once each).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "gov/recovery.h"
#include "kv/store.h"
#include "ledger/file_system.h"
#include "ledger/ledger.h"
#include "net/server.h"
#include "node/config.h"
#include "node/files.h"
#include "node/identity.h"
#include "node/metrics.h"
#include "node/peer_transport.h"
#include "node/replicator.h"
#include "node/sealing.h"

namespace coffer::node {

// Files and folders inside data_dir (docs/node.md, "Data directory").
constexpr std::string_view kLedgerDirName = "ledger";
constexpr std::string_view kServiceCertFileName = "service_cert.pem";
constexpr std::string_view kNodeCertFileName = "node_cert.pem";
constexpr std::string_view kSealedSecretsFileName = "sealed_secrets.json";
constexpr std::string_view kSealingKeyFileName = "sealing_key";
constexpr std::string_view kNodeInfoFileName = "node.json";
constexpr std::string_view kPortsFileName = "node_ports.json";

// How many times an endpoint transaction is retried after losing an optimistic race.
constexpr int kMaxCommitAttempts = 8;
// How long writes are refused after the disk was found full, before they are tried again.
constexpr uint64_t kDiskFullBackoffMs = 1000;
// A WARN is logged once a certificate has less than this left before its not-after.
constexpr int64_t kCertificateExpiryWarningS = 30LL * 24 * 3600;
// How often the background thread checks certificate expiry.
constexpr uint64_t kExpiryCheckIntervalMs = 1000;
// How often the background thread reloads peer addresses from the nodes map.
constexpr uint64_t kPeerRefreshIntervalMs = 1000;
// How long open() waits for a network of one node to elect itself and commit its writes.
constexpr uint64_t kStartupTimeoutMs = 30000;
// How long a joining node keeps asking to be admitted before it gives up.
constexpr uint64_t kJoinTimeoutMs = 60000;
// The longest wait a client may ask for (GET /node/tx wait_ms, linearizable reads).
constexpr uint64_t kMaxClientWaitMs = 10000;
// How long a stopping leader waits for its last signature to commit.
constexpr uint64_t kStopCommitWaitMs = 2000;

enum class NodeState { kStarting, kPartOfNetwork, kStopping, kStopped, kFailed };
std::string_view node_state_name(NodeState state);

// Where a recovering node stands (docs/recovery.md, "Recovering a service").
struct RecoveryProgress {
    bool recovering = false;                // started by open_for_recovery, not reopened yet
    size_t received = 0;                    // shares accepted so far
    size_t threshold = 0;                   // k (0 before the first share arrived)
    bool secrets_recovered = false;         // k shares rebuilt the ledger secrets
    std::vector<std::string> submitted_by;  // member fingerprints, sorted
    bool already_counted = false;           // this submission repeated an accepted share
};

// The body of an endpoint transaction: reads and buffers writes through `tx`. Returning an
// error aborts the transaction (nothing is written) and passes the error on.
using TxBody = std::function<Status(kv::Transaction& tx)>;

class Node {
  public:
    // Starts or recovers the node described by `config` (see the top of this file).
    // Errors: kFailedPrecondition for a data_dir that needs recovery by the members
    // (local_sealing was off), or that holds a ledger but no node.json (an interrupted first
    // start); kCrypto for secrets that do not unseal; kInvalidArgument for unusable
    // member/user files (naming them); ledger and storage errors. A joining node gives up
    // with kFailedPrecondition "stopped while joining" once `*stop_requested` turns true
    // (optional; the owner sets it from its signal handling), and at once with
    // kPermissionDenied when the target does not present the pinned service certificate.
    static Result<std::unique_ptr<Node>> open(NodeConfig config,
                                              const std::atomic<bool>* stop_requested = nullptr);

    // Disaster recovery, first phase (docs/recovery.md): starts a new node in data_dir (which
    // must hold no node) from a copy of `ledger_dir`, the ledger folder of a node of the lost
    // network (only read). Verifies and replays the public part of every entry, makes a new
    // service identity that endorses the previous one, and commits, as the only voter, the
    // service record with status "recovering". Private maps stay empty; members accept the
    // recovered state by proposal, then submit their shares (submit_recovery_share).
    // Errors: kInvalidArgument (a "join" section, an empty or unreadable folder),
    // kFailedPrecondition (data_dir not fresh, a ledger without recovery shares), ledger
    // verification errors naming the entry.
    static Result<std::unique_ptr<Node>> open_for_recovery(NodeConfig config,
                                                           const std::string& ledger_dir);

    // Second phase: reopens the folder that open_for_recovery filled, with the identities
    // and every ledger secret from recovered_secrets() (the first Node must be destroyed
    // first). Replays the whole ledger, private parts included, and leads as the only voter.
    // The caller then commits the service's opening and calls complete_recovery().
    // Errors: those of a restart (a secret version missing names the entry).
    static Result<std::unique_ptr<Node>> open_recovered(NodeConfig config, NodeSecrets secrets);

    ~Node();
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    // Starts the HTTPS server on config.client_address with `handler`, then writes
    // data_dir/node_ports.json ({"pid", "client_address", "client_port"}).
    // Errors: those of HttpServer::start; storage errors for the ports file.
    Status serve(net::Handler handler);

    // Stops serving and the background work; signs and flushes the tail. Idempotent.
    void stop();

    // True once this node's store holds its own record in the nodes map: a node that just
    // joined has not replicated the members and users yet and must not judge callers.
    bool caught_up();

    // Consensus: role, term, leader, configuration.
    ReplicationStatus replication_status() const;
    // True when this node is the leader and takes writes.
    bool is_leader() const;
    // "host:port" of the leader's client address (from the nodes map), when another node is
    // the leader and its record is known: where followers redirect writes.
    std::optional<std::string> leader_client_address();
    // Waits until `seqno` is committed. Errors: kFailedPrecondition on timeout.
    Status wait_committed(kv::Seqno seqno, uint64_t timeout_ms);
    // Leader only: a commit point at which a read is linearizable (Replicator).
    Result<kv::Seqno> linearizable_read_point(uint64_t timeout_ms);

    // Leader only: a joining node asks to be admitted (docs/replication.md, "Joining").
    // `client_cert_der` is the joiner's TLS client certificate (its node key, self-signed);
    // `request` is {"node_address", "client_address", "attestation"}. Verifies the evidence,
    // its key binding and its measurement. A node the members have not trusted yet is
    // recorded as "pending" and the answer is {"status": "pending", ...}: the joiner asks
    // again until an accepted trust_node proposal made it trusted and a voter; then its
    // certificate is issued and the answer holds the service key and the ledger secrets
    // (send it only over the joiner's TLS connection).
    // Errors: kInvalidArgument (malformed request), kPermissionDenied (evidence refused,
    // untrusted measurement, a retired node), kFailedPrecondition (not leader, trusted but
    // the configuration not appended yet: retry), commit errors.
    Result<nlohmann::json> admit_node(const std::string& client_cert_der,
                                      const nlohmann::json& request);

    // Runs `body` in a transaction and commits it, retrying up to kMaxCommitAttempts times
    // on kConflict and flushing when the ledger's unflushed batch is full. Records the
    // commit latency. Errors: the body's error; kNoSpace while the disk is full;
    // kFailedPrecondition when the node failed or is stopping; kConflict after the last
    // attempt; ledger errors.
    Result<kv::CommitResult> commit(const TxBody& body);

    // A member's decrypted recovery share (gov/recovery.h format), while recovering. The
    // caller checked the member's signed request and that the service waits for shares. A
    // member resubmitting the same share changes nothing. With the k-th share the ledger
    // secrets are rebuilt (wait_recovery_secrets then returns true).
    // Errors: kFailedPrecondition (not recovering); kInvalidArgument (a malformed share, "share
    // from another share set"); kCrypto "share N is forged or corrupted"; kConflict (a point
    // already received, or this member already submitted another share); kCrypto when k
    // shares do not open the wrapped secrets (every share is then discarded). A share the
    // node accepted counts even if the caller's transaction then fails: submitting the same
    // share again returns the progress and changes nothing.
    Result<RecoveryProgress> submit_recovery_share(const std::string& member_fingerprint,
                                                   ByteSpan share);
    RecoveryProgress recovery_progress() const;
    // Waits up to timeout_ms for the ledger secrets to be rebuilt; true once they are.
    bool wait_recovery_secrets(uint64_t timeout_ms);
    // This node's identities with every recovered ledger secret version and a fresh newer
    // one, for open_recovered. Secret. Errors: kFailedPrecondition before k shares.
    Result<NodeSecrets> recovered_secrets() const;
    // After open_recovered and the opening transaction: seals the secrets (if local sealing
    // is on) and writes node.json, so that the folder restarts like any node's.
    Status complete_recovery();

    // OK, or the error that made the node fail (a failed fsync).
    Status failure() const;
    NodeState state() const { return state_.load(); }

    const NodeConfig& config() const { return config_; }
    const std::string& node_id() const { return secrets_.node.node_id; }
    const crypto::Certificate& service_cert() const { return secrets_.service.cert; }
    // Every ledger secret version this node holds, oldest first: those it opened or joined
    // with, then those its ledger learned from rekeys (ledger order, uncommitted ones
    // included; a rollback forgets those). A copy. Secret: governance wraps them into
    // recovery shares and the join answer hands them to a new node.
    std::vector<ledger::LedgerSecret> ledger_secrets() const;
    // This node's X25519 public key (32 bytes), published as encryption_public_key in its
    // record of the nodes map: rekeys seal new ledger secrets to it.
    const Bytes& encryption_public_key() const { return secrets_.encryption.public_key; }
    // Signs `data` with the service identity's key (ECDSA P-384 over SHA-384, DER): every
    // trusted node holds that key, so a statement it signs is the service's, whichever node
    // answers (the clean room publishes its key this way). Errors: kCrypto.
    Result<Bytes> sign_as_service(ByteSpan data) const { return secrets_.service.key.sign(data); }
    const crypto::Certificate& node_cert() const { return secrets_.node.cert; }
    // This node's attestation evidence (attestation::to_json of the virtual platform's).
    const nlohmann::json& attestation() const { return attestation_; }

    kv::Store& store() { return store_; }
    ledger::Ledger& ledger() { return *ledger_; }
    Metrics& metrics() { return metrics_; }
    // The bound client port (after serve()), else 0.
    uint16_t client_port() const;
    // Counters of the HTTP server (zeros before serve()).
    net::ServerStats server_stats() const;
    // The bound node-to-node port.
    uint16_t node_port() const;

    // The Prometheus text of GET /node/metrics (metrics() plus ledger and server gauges).
    std::string render_metrics() const;

  private:
    Node(NodeConfig config, NodeSecrets secrets, DataDirLock lock);

    Status first_start(const nlohmann::json& members, const nlohmann::json& users);
    Status restart();
    Status recover_public_state(const std::string& ledger_dir);
    Status discard_unfinished_recovery();
    Status write_recovery_start(const nlohmann::json& previous_service);
    Status finish_share_collection();
    RecoveryProgress recovery_progress_locked() const;
    Status reopen_with_recovered_secrets();
    struct JoinClaims {
        std::string node_id;
        crypto::EcdsaPublicKey key;
        ListenAddress node_address;
        ListenAddress client_address;
        std::string measurement;  // hex
        std::string encryption_public_key_pem;
    };
    Result<JoinClaims> check_join_request(const std::string& client_cert_der,
                                          const nlohmann::json& request);
    // The joiner's record with status "pending" (members trust it by proposal); answers
    // {"status": "pending", "node_id", "message"}.
    Result<nlohmann::json> record_pending_node(const JoinClaims& joining,
                                               const nlohmann::json& request);
    // Issues the certificate of a trusted joiner and answers with the service's secrets.
    Result<nlohmann::json> answer_trusted_joiner(const JoinClaims& joining,
                                                 const nlohmann::json& request,
                                                 nlohmann::json record);
    Status join_network();
    Status install_join_answer(const nlohmann::json& answer, const crypto::Certificate& pinned);
    Status choose_ports();
    Status start_replication(const RaftStateFile& state);
    void refresh_peer_addresses();
    Status write_node_info(const nlohmann::json& extra);
    Status make_attestation();
    Status open_ledger();
    Status write_genesis(const nlohmann::json& members, const nlohmann::json& users);
    Status refresh_node_record();
    Status seal_to_disk();
    // Seals again when the ledger committed a secret learned from a rekey since the last seal
    // (local sealing only): only committed ones, because a rolled-back rekey's secret must
    // not come back at a restart.
    void reseal_after_rekey();
    // Applies the signature interval governance set (public:coffer.gov.config "signatures")
    // to the ledger when it changed, or the configuration's when none is set.
    void apply_signature_settings();
    // Seals the secrets (unless local sealing is off) and writes the service and node
    // certificates into the data directory.
    Status persist_identity();
    void start_background();
    void background_loop();
    void background_step(uint64_t& next_expiry_check_ms);
    void check_certificate_expiry();
    void fail(const Status& status);
    Status check_writable() const;
    uint64_t ledger_size_bytes() const;
    std::string path(std::string_view name) const;

    NodeConfig config_;
    DataDirLock lock_;  // held while the node lives: one process per data directory
    NodeSecrets secrets_;
    nlohmann::json attestation_;
    ledger::PosixFileSystem fs_;
    kv::Store store_;
    std::unique_ptr<ledger::Ledger> ledger_;
    // Declared after the ledger, so destroyed before it.
    std::unique_ptr<PeerTransport> transport_;
    std::unique_ptr<Replicator> replicator_;
    std::atomic<Replicator*> deliver_to_{nullptr};  // set once replicator_ exists
    std::atomic<bool> caught_up_{false};
    Metrics metrics_;
    std::unique_ptr<net::HttpServer> server_;
    std::atomic<NodeState> state_{NodeState::kStarting};

    mutable std::mutex mu_;  // guards failure_, stop_requested_, expiry warnings
    std::condition_variable cv_;
    Status failure_;
    bool stop_requested_ = false;
    bool warned_service_expiry_ = false;
    bool warned_node_expiry_ = false;
    std::atomic<uint64_t> disk_full_until_ms_{0};
    // Owned by the thread that opens the node, then by the background thread.
    uint32_t sealed_learned_version_ = 0;
    std::optional<kv::Seqno> applied_signature_settings_version_;
    bool signature_settings_applied_ = false;
    std::thread background_;

    const std::atomic<bool>* stop_requested_during_open_ = nullptr;  // see open()

    // Disaster recovery (recovery.cc). public_only_ and recovery_base_ are set before the
    // ledger opens and never change afterwards.
    bool public_only_ = false;
    uint64_t recovery_base_ = 0;
    mutable std::mutex recovery_mu_;  // guards the members below
    std::condition_variable recovery_cv_;
    bool recovering_ = false;
    std::optional<gov::ShareCollector> collector_;
    std::map<std::string, std::string> share_submitters_;  // member -> share digest
    std::optional<std::vector<ledger::LedgerSecret>> recovered_;
};

}  // namespace coffer::node
