// The public governance maps the node writes at genesis and reads to authenticate callers.
// Keys, values and who writes them: docs/formats/governance-maps.md. Governance (gov/)
// extends these maps; their names and value shapes are a stable format.
//
// Every value is a UTF-8 JSON object. Keys are ASCII strings (lower-case hex fingerprints,
// node ids, or the fixed key kServiceKey).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "kv/store.h"

namespace coffer::node {

// key: "service" -> {"cert": PEM, "status": "open", "fingerprint": hex}
constexpr std::string_view kServiceMap = "public:coffer.gov.service";
constexpr std::string_view kServiceKey = "service";
// key: SHA-256 fingerprint of the member's DER certificate (hex) ->
//      {"cert": PEM, "encryption_public_key": PEM, "status": "active"}
constexpr std::string_view kMembersMap = "public:coffer.gov.members";
// key: fingerprint (hex) -> {"cert": PEM, "encryption_public_key": PEM or null}
constexpr std::string_view kUsersMap = "public:coffer.gov.users";
// key: node id -> {"cert": PEM, "status": "trusted", "attestation": evidence JSON,
//                  "client_address": "ip:port", "node_address": "ip:port"}
constexpr std::string_view kNodesMap = "public:coffer.gov.nodes";
// key: fingerprint (hex) of a user that governance removed -> {"cert": PEM, "removed_by":
// proposal id}. Written by the default constitution's remove_user action, so that the removed
// certificate is told why it is refused (403) instead of looking unknown (401). Readers of
// the users map need not look here: a removed user is no longer in the users map.
constexpr std::string_view kRemovedUsersMap = "public:coffer.gov.removed_users";
// key: kConfigurationKey -> {"voters": [node id, ...]}: the Raft configuration. A ledger
// entry that writes it is a configuration entry (node/raft_storage.h).
constexpr std::string_view kConfigurationMap = "public:coffer.consensus.configuration";
constexpr std::string_view kConfigurationKey = "voters";
// key: measurement (lower-case hex) -> {"source": "genesis" | "config"}: the measurements a
// joining node may present (docs/replication.md, "Joining").
constexpr std::string_view kTrustedMeasurementsMap = "public:coffer.gov.trusted_measurements";
// key: member fingerprint -> {"created_at": unix seconds of the signed request}: who submitted
// a recovery share during the last recovery (never the share itself).
constexpr std::string_view kRecoverySubmissionsMap = "public:coffer.gov.recovery_submissions";

// Service states (docs/governance.md, "Service states"): a new service starts "opening" and
// members open it by proposal; a service recovered from the ledger files of a lost network is
// "recovering" until members accept the recovered public state by the same proposal, then
// "waiting_for_recovery_shares" until k members submitted their shares, then "open". Users
// reach the applications only while the service is "open".
constexpr std::string_view kServiceStatusOpening = "opening";
constexpr std::string_view kServiceStatusOpen = "open";
constexpr std::string_view kServiceStatusRecovering = "recovering";
constexpr std::string_view kServiceStatusWaitingForShares = "waiting_for_recovery_shares";
constexpr std::string_view kMemberStatusActive = "active";
// A node that asked to join with good evidence and waits for a trust_node proposal.
constexpr std::string_view kNodeStatusPending = "pending";
constexpr std::string_view kNodeStatusTrusted = "trusted";
constexpr std::string_view kNodeStatusRetired = "retired";

// Bound on one governance value read back from the store.
constexpr size_t kMaxGovernanceJsonDepth = 16;

// Reads and parses one value of a governance map through `tx`; nullopt when absent.
// Errors: kCorrupt when the stored value is not a JSON object.
Result<std::optional<nlohmann::json>> read_governance_value(kv::Transaction& tx,
                                                            std::string_view map,
                                                            std::string_view key);

// Writes one value (compact JSON). Errors: those of Transaction::put.
Status write_governance_value(kv::Transaction& tx, std::string_view map, std::string_view key,
                              const nlohmann::json& value);

}  // namespace coffer::node
