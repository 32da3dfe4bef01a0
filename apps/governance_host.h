// The constitution's view of the service: gov::GovernanceHost over one KV transaction of a
// governance endpoint, with the effects only the node can carry out.
//
// Writes are buffered in the host, not in the transaction: the endpoint copies them in with
// flush() only when a whole apply() succeeded, so that a failed proposal leaves none of its
// actions' writes behind while its own state change ("failed") still commits.
//
// Thread-safety: none; one host serves one transaction on one thread.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "gov/constitution.h"
#include "kv/store.h"
#include "ledger/secrets.h"
#include "node/rekey.h"

namespace coffer::apps {

// The most keys keys() returns for one map (a larger map is refused rather than cut).
constexpr size_t kMaxGovernanceMapKeys = 4096;
// The most bytes of JSON one apply() may buffer, all writes together; well under
// kv::kMaxWriteSetSize so that flush() cannot fail on the transaction's limits.
constexpr size_t kMaxBufferedGovernanceBytes = size_t{8} << 20;

// The effects a constitution may ask for, and which of them the node carries out.
inline constexpr std::string_view kEffectSetConstitution = "set_constitution";
inline constexpr std::string_view kEffectOpenService = "open_service";
inline constexpr std::string_view kEffectReissueRecoveryShares = "reissue_recovery_shares";
inline constexpr std::string_view kEffectUpdateRaftConfiguration = "update_raft_configuration";
inline constexpr std::string_view kEffectSetRecoveryThreshold = "set_recovery_threshold";
inline constexpr std::string_view kEffectRekeyLedger = "rekey_ledger";
inline constexpr std::string_view kEffectSetSignatureInterval = "set_signature_interval";

class TxGovernanceHost final : public gov::GovernanceHost {
  public:
    // `tx` must outlive the host. `proposal_id` is the proposal being applied (kept by
    // set_constitution when it drops the other open proposals); empty outside apply.
    // `current_voters` is the node's Raft configuration (update_raft_configuration writes
    // nothing when the voters it computes are those).
    // `ledger_secrets` (may be null: recovery-share effects then fail) are wrapped into new
    // recovery shares by set_recovery_threshold and reissue_recovery_shares; they must
    // outlive the host.
    TxGovernanceHost(kv::Transaction& tx, std::string proposal_id,
                     std::vector<std::string> current_voters = {},
                     const std::vector<ledger::LedgerSecret>* ledger_secrets = nullptr);

    // Reads see the buffered writes first, then the transaction.
    // Errors: kCorrupt for a stored value that is not a JSON object.
    Result<std::optional<nlohmann::json>> get(std::string_view map, std::string_view key) override;
    // Buffers a write. Errors: kPermissionDenied for a map governance keeps for itself
    // (proposals, ballots, request digests, constitution, service);
    // kInvalidArgument for a non-object value or a key over the KV limit;
    // kResourceExhausted past kMaxBufferedGovernanceBytes.
    Status put(std::string_view map, std::string_view key, const nlohmann::json& value) override;
    // Buffers a removal. Errors: as put().
    Status remove(std::string_view map, std::string_view key) override;
    // The keys of `map` as this host sees them, sorted. Errors: kResourceExhausted past
    // kMaxGovernanceMapKeys; those of Transaction::range.
    Result<std::vector<std::string>> keys(std::string_view map) override;
    // set_constitution {"constitution": source}: checks the source, replaces the current
    // constitution and marks every other open proposal "dropped".
    // open_service {}: moves the service status on by one state: "opening" -> "open",
    // "recovering" -> "waiting_for_recovery_shares"; kFailedPrecondition "the service is
    // already open" / "...already waiting for recovery shares..." otherwise (kCorrupt for a
    // missing record or an unknown status).
    // set_recovery_threshold {"threshold": k}: wraps the ledger secrets and issues k-of-n
    // recovery shares to the active members with an encryption key (gov/recovery.h),
    // replacing every earlier share. reissue_recovery_shares {}: the same with the current
    // threshold, once one was set (nothing before).
    // update_raft_configuration {"voters": [node ids]}: every id must be a trusted node (as
    // this host sees the nodes map); writes the configuration map, which makes the
    // transaction a Raft configuration entry.
    // rekey_ledger {}: makes ledger secret version newest + 1, HPKE-seals it to every trusted
    // node's encryption key in public:coffer.gov.ledger_secret_updates (node/rekey.h; each
    // node learns it when the entry reaches its ledger) and re-issues the recovery shares
    // with it included (same threshold, once one was set). kFailedPrecondition when an
    // admitted trusted node has no encryption key (it could not read the later entries) or
    // the version was issued already.
    // set_signature_interval {"tx_count": n, "interval_ms": m}: writes the service's signature
    // interval to public:coffer.gov.config "signatures"; every node applies it to its ledger.
    // Errors: kInvalidArgument for bad arguments or a source that does not check;
    // kInvalidArgument for an unknown effect; issue_recovery_shares's errors.
    Status effect(std::string_view name, const nlohmann::json& args) override;

    // Copies the buffered writes into the transaction and forgets them.
    // Errors: those of Transaction::put/remove (not expected within the bounds above).
    Status flush();
    // Forgets the buffered writes.
    void discard();

  private:
    Status buffer(std::string_view map, std::string_view key, std::optional<nlohmann::json> value,
                  bool internal);
    Status set_constitution(const nlohmann::json& args);
    Status open_service();
    Status refuse_while_recovering(std::string_view effect);
    Status update_raft_configuration(const nlohmann::json& args);
    Status issue_recovery_shares(std::optional<size_t> threshold,
                                 const std::vector<ledger::LedgerSecret>* secrets);
    Status rekey_ledger();
    Result<std::vector<node::NodeEncryptionKey>> rekey_recipients();
    Status set_signature_interval(const nlohmann::json& args);
    Status drop_open_proposals();

    kv::Transaction& tx_;
    std::string proposal_id_;
    std::vector<std::string> current_voters_;
    const std::vector<ledger::LedgerSecret>* ledger_secrets_;
    // map -> key -> value, nullopt for a removal.
    std::map<std::string, std::map<std::string, std::optional<nlohmann::json>>, std::less<>>
        writes_;
    size_t buffered_bytes_ = 0;
};

}  // namespace coffer::apps
