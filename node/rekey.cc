#include "node/rekey.h"

#include "crypto/hpke.h"
#include "net/http.h"
#include "node/governance_maps.h"

namespace coffer::node {

namespace {

using nlohmann::json;

constexpr std::string_view kAadPrefix = "coffer-ledger-secret:";
constexpr size_t kMaxUpdateJsonDepth = 4;

Result<Bytes> hex_member(const json& copy, const char* name) {
    auto it = copy.find(name);
    if (it == copy.end() || !it->is_string()) {
        return error(Errc::kCorrupt, std::string("ledger secret update: ") + name + " missing");
    }
    auto bytes = from_hex(it->get<std::string>());
    if (!bytes.ok()) {
        return error(Errc::kCorrupt, std::string("ledger secret update: ") + name + " not hex");
    }
    return std::move(bytes).value();
}

// The sealed copy for `node_id` in one update value, opened; nullopt when it names others.
Result<std::optional<ledger::LedgerSecret>> open_update(ByteSpan key, ByteSpan value,
                                                        std::string_view node_id,
                                                        ByteSpan private_key) {
    auto update = net::parse_json(to_string(value), kMaxUpdateJsonDepth);
    if (!update.ok() || !update->is_object() || !update->contains("version") ||
        !(*update)["version"].is_number_unsigned() || !update->contains("sealed") ||
        !(*update)["sealed"].is_object()) {
        return error(Errc::kCorrupt, "ledger secret update is not {version, sealed}");
    }
    uint64_t version = (*update)["version"].get<uint64_t>();
    if (version > UINT32_MAX || to_string(key) != std::to_string(version)) {
        return error(Errc::kCorrupt, "ledger secret update key does not match its version");
    }
    const json& sealed = (*update)["sealed"];
    auto copy = sealed.find(std::string(node_id));
    if (copy == sealed.end()) {
        return std::optional<ledger::LedgerSecret>();
    }
    COFFER_ASSIGN_OR_RETURN(Bytes enc, hex_member(*copy, "enc"));
    COFFER_ASSIGN_OR_RETURN(Bytes ciphertext, hex_member(*copy, "ciphertext"));
    auto v = static_cast<uint32_t>(version);
    auto opened =
        crypto::hpke_open(crypto::HpkeSuite{}, private_key, enc, as_bytes(kLedgerSecretUpdateInfo),
                          ledger_secret_update_aad(v, node_id), ciphertext);
    if (!opened.ok() || opened->size() != ledger::kLedgerSecretSize) {
        return error(Errc::kCrypto, "ledger secret update " + std::to_string(v) + " names node " +
                                        std::string(node_id) +
                                        " but does not open with its encryption key");
    }
    return std::optional<ledger::LedgerSecret>(ledger::LedgerSecret{v, std::move(opened).value()});
}

}  // namespace

Bytes ledger_secret_update_aad(uint32_t version, std::string_view node_id) {
    return to_bytes(std::string(kAadPrefix) + std::to_string(version) + ":" + std::string(node_id));
}

Result<json> seal_ledger_secret_update(const ledger::LedgerSecret& secret,
                                       const std::vector<NodeEncryptionKey>& nodes) {
    if (nodes.empty() || nodes.size() > kMaxSecretUpdateRecipients) {
        return error(Errc::kInvalidArgument, "a ledger secret update seals to 1.." +
                                                 std::to_string(kMaxSecretUpdateRecipients) +
                                                 " nodes");
    }
    if (secret.key.size() != ledger::kLedgerSecretSize) {
        return error(Errc::kInvalidArgument, "a ledger secret is 32 bytes");
    }
    json sealed = json::object();
    for (const NodeEncryptionKey& node : nodes) {
        if (node.public_key.size() != crypto::kX25519KeySize || sealed.contains(node.node_id)) {
            return error(Errc::kInvalidArgument,
                         "node " + node.node_id + ": listed twice or not an X25519 key");
        }
        COFFER_ASSIGN_OR_RETURN(
            crypto::HpkeSealed copy,
            crypto::hpke_seal(crypto::HpkeSuite{}, node.public_key,
                              as_bytes(kLedgerSecretUpdateInfo),
                              ledger_secret_update_aad(secret.version, node.node_id), secret.key));
        sealed[node.node_id] = {{"enc", to_hex(copy.enc)}, {"ciphertext", to_hex(copy.ciphertext)}};
    }
    return json{{"version", secret.version}, {"sealed", std::move(sealed)}};
}

Result<std::optional<ledger::LedgerSecret>> ledger_secret_from_write_set(
    const kv::WriteSet& ws, std::string_view node_id, ByteSpan encryption_private_key) {
    auto map = ws.maps.find(std::string(kLedgerSecretUpdatesMap));
    if (map == ws.maps.end()) {
        return std::optional<ledger::LedgerSecret>();
    }
    // One rekey writes one version; several in one entry would need an order between them.
    std::optional<ledger::LedgerSecret> found;
    for (const auto& [key, value] : map->second) {
        if (!value.has_value()) {
            return error(Errc::kCorrupt, "ledger secret updates are never removed");
        }
        COFFER_ASSIGN_OR_RETURN(auto opened,
                                open_update(key, *value, node_id, encryption_private_key));
        if (opened.has_value() && found.has_value()) {
            return error(Errc::kCorrupt, "one entry carries two ledger secret updates");
        }
        if (opened.has_value()) {
            found = std::move(opened);
        }
    }
    return found;
}

Result<SignatureSettings> parse_signature_settings(const json& value) {
    auto member = [&](const char* name, uint64_t max) -> Result<uint64_t> {
        auto it = value.is_object() ? value.find(name) : value.end();
        // Values from Lua arrive as signed integers.
        if (it == value.end() || !it->is_number_integer() || it->get<int64_t>() < 1 ||
            static_cast<uint64_t>(it->get<int64_t>()) > max) {
            return error(Errc::kInvalidArgument, std::string("signature settings: ") + name +
                                                     " must be an integer in 1.." +
                                                     std::to_string(max));
        }
        return static_cast<uint64_t>(it->get<int64_t>());
    };
    COFFER_ASSIGN_OR_RETURN(uint64_t entries,
                            member("interval_entries", kMaxSignatureIntervalEntries));
    COFFER_ASSIGN_OR_RETURN(uint64_t ms, member("interval_ms", kMaxSignatureIntervalMs));
    return SignatureSettings{entries, static_cast<uint32_t>(ms)};
}

json signature_settings_json(const SignatureSettings& settings) {
    return json{{"interval_entries", settings.interval_entries},
                {"interval_ms", settings.interval_ms}};
}

Result<std::optional<SignatureSettings>> read_signature_settings(kv::Transaction& tx) {
    COFFER_ASSIGN_OR_RETURN(auto stored,
                            read_governance_value(tx, kGovConfigMap, kSignatureSettingsKey));
    if (!stored.has_value()) {
        return std::optional<SignatureSettings>();
    }
    auto parsed = parse_signature_settings(*stored);
    if (!parsed.ok()) {
        return error(Errc::kCorrupt, parsed.status().message());
    }
    return std::optional<SignatureSettings>(*parsed);
}

}  // namespace coffer::node
