// Rekeying the ledger and governed signature settings (docs/ledger.md, "Rekey";
// docs/formats/governance-maps.md).
//
// A rekey_ledger proposal makes a new ledger secret and HPKE-seals it (RFC 9180, base mode,
// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM) to the encryption key of every
// trusted node, in the public map kLedgerSecretUpdatesMap. Each node learns its copy when
// the entry reaches its ledger (ledger::LedgerOptions::secret_from_write_set), so every node
// switches to the new secret at the same entry. Sealing to each node instead of encrypting
// the new secret under the old one keeps the secrets independent: whoever holds an older
// secret (or an older set of recovery shares) cannot read the later ones through a chain.
//
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/bytes.h"
#include "common/result.h"
#include "kv/store.h"
#include "kv/write_set.h"
#include "ledger/secrets.h"

namespace coffer::node {

// key: the version in decimal; value: seal_ledger_secret_update's JSON.
constexpr std::string_view kLedgerSecretUpdatesMap = "public:coffer.gov.ledger_secret_updates";
// Service settings that governance sets; key kSignatureSettingsKey holds
// signature_settings_json's value.
constexpr std::string_view kGovConfigMap = "public:coffer.gov.config";
constexpr std::string_view kSignatureSettingsKey = "signatures";
// HPKE info of every sealed copy; the AAD is ledger_secret_update_aad.
constexpr std::string_view kLedgerSecretUpdateInfo = "coffer-ledger-secret-update-v1";
// The most nodes one update seals the secret to (each copy is about 100 bytes).
constexpr size_t kMaxSecretUpdateRecipients = 1024;
// Bounds of the governed signature interval (the constitution checks the same bounds).
constexpr uint64_t kMaxSignatureIntervalEntries = 1000000;
constexpr uint64_t kMaxSignatureIntervalMs = 3600000;

// A trusted node and its X25519 public key (32 raw bytes).
struct NodeEncryptionKey {
    std::string node_id;
    Bytes public_key;
};

// The AAD of one sealed copy: "coffer-ledger-secret:" || decimal version || ":" || node id.
// It binds the copy to its version and recipient, so a copy moved to another version or
// node does not open.
Bytes ledger_secret_update_aad(uint32_t version, std::string_view node_id);

// The update for `secret`: {"version": v, "sealed": {node_id: {"enc": hex, "ciphertext":
// hex}}}. Errors: kInvalidArgument for no recipient, more than kMaxSecretUpdateRecipients, a
// node listed twice or a key of the wrong size; kCrypto for a low-order public key.
Result<nlohmann::json> seal_ledger_secret_update(const ledger::LedgerSecret& secret,
                                                 const std::vector<NodeEncryptionKey>& nodes);

// The secret that `ws` (one entry's write set) seals to node `node_id`, opened with its
// X25519 private key; nullopt when the entry writes no update or no update names the node.
// Errors: kCorrupt for a malformed update (only the rekey effect writes the map);
// kCrypto when an update names the node but does not open (another key, a modified copy):
// the node must not apply the entry, because it could not read the entries after it.
Result<std::optional<ledger::LedgerSecret>> ledger_secret_from_write_set(
    const kv::WriteSet& ws, std::string_view node_id, ByteSpan encryption_private_key);

struct SignatureSettings {
    uint64_t interval_entries = 0;
    uint32_t interval_ms = 0;
    bool operator==(const SignatureSettings&) const = default;
};

// {"interval_entries": n, "interval_ms": m}, each within 1..its maximum.
// Errors: kInvalidArgument naming the bad member.
Result<SignatureSettings> parse_signature_settings(const nlohmann::json& value);
nlohmann::json signature_settings_json(const SignatureSettings& settings);

// The settings governance stored, read through `tx`; nullopt when none were set.
// Errors: kCorrupt for a stored value that does not parse.
Result<std::optional<SignatureSettings>> read_signature_settings(kv::Transaction& tx);

}  // namespace coffer::node
