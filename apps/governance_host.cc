#include "apps/governance_host.h"

#include <algorithm>
#include <array>

#include <openssl/crypto.h>

#include "crypto/x25519.h"
#include "gov/recovery.h"
#include "kv/write_set.h"
#include "net/http.h"
#include "node/genesis_governance.h"
#include "node/governance_maps.h"
#include "node/raft_storage.h"

namespace coffer::apps {

namespace {

using nlohmann::json;

// Maps no action may write directly: governance's own records (a proposal must not forge
// ballots or revive itself), and the service record, which only an effect changes. The nodes
// map stays writable: trust_node and remove_node write it, and their configuration effect
// decides whether the proposal succeeds. Rekey updates and the service settings are written
// only by their effects, which check them: a forged update would stop every node it names.
constexpr std::array<std::string_view, 7> kReservedMaps = {
    node::kProposalsMap,    node::kBallotsMap, node::kRequestDigestsMap,
    node::kConstitutionMap, node::kServiceMap, node::kLedgerSecretUpdatesMap,
    node::kGovConfigMap};

bool reserved(std::string_view map) {
    for (std::string_view r : kReservedMaps) {
        if (map == r) {
            return true;
        }
    }
    return false;
}

}  // namespace

TxGovernanceHost::TxGovernanceHost(kv::Transaction& tx, std::string proposal_id,
                                   std::vector<std::string> current_voters,
                                   const std::vector<ledger::LedgerSecret>* ledger_secrets)
    : tx_(tx),
      proposal_id_(std::move(proposal_id)),
      current_voters_(std::move(current_voters)),
      ledger_secrets_(ledger_secrets) {
    std::sort(current_voters_.begin(), current_voters_.end());
}

Result<std::optional<json>> TxGovernanceHost::get(std::string_view map, std::string_view key) {
    auto m = writes_.find(map);
    if (m != writes_.end()) {
        auto k = m->second.find(std::string(key));
        if (k != m->second.end()) {
            return k->second;
        }
    }
    return node::read_governance_value(tx_, map, key);
}

Status TxGovernanceHost::put(std::string_view map, std::string_view key, const json& value) {
    return buffer(map, key, value, false);
}

Status TxGovernanceHost::remove(std::string_view map, std::string_view key) {
    return buffer(map, key, std::nullopt, false);
}

Status TxGovernanceHost::buffer(std::string_view map, std::string_view key,
                                std::optional<json> value, bool internal) {
    if (!internal && reserved(map)) {
        return error(Errc::kPermissionDenied,
                     "actions may not write " + std::string(map) + " directly");
    }
    if (value.has_value() && !value->is_object()) {
        return error(Errc::kInvalidArgument, "governance values must be JSON objects");
    }
    if (key.size() > kv::kMaxKeySize) {
        return error(Errc::kInvalidArgument, "governance key is too long");
    }
    size_t size = map.size() + key.size() + (value.has_value() ? value->dump().size() : 0);
    if (buffered_bytes_ + size > kMaxBufferedGovernanceBytes) {
        return error(Errc::kResourceExhausted, "a proposal may write at most " +
                                                   std::to_string(kMaxBufferedGovernanceBytes) +
                                                   " bytes");
    }
    buffered_bytes_ += size;
    writes_[std::string(map)][std::string(key)] = std::move(value);
    return Status();
}

Result<std::vector<std::string>> TxGovernanceHost::keys(std::string_view map) {
    std::map<std::string, bool> seen;  // key -> present
    Status walked =
        tx_.range(map, {}, std::nullopt, kMaxGovernanceMapKeys + 1, [&](ByteSpan key, ByteSpan) {
            seen[to_string(key)] = true;
            return true;
        });
    COFFER_RETURN_IF_ERROR(walked);
    // Past the limit the walk stopped early: refuse rather than hand back part of the map.
    bool too_many = seen.size() > kMaxGovernanceMapKeys;
    if (auto m = writes_.find(map); m != writes_.end()) {
        for (const auto& [key, value] : m->second) {
            seen[key] = value.has_value();
        }
    }
    std::vector<std::string> out;
    for (const auto& [key, present] : seen) {
        if (present) {
            out.push_back(key);
        }
    }
    if (too_many || out.size() > kMaxGovernanceMapKeys) {
        return error(Errc::kResourceExhausted, std::string(map) + " has more than " +
                                                   std::to_string(kMaxGovernanceMapKeys) + " keys");
    }
    return out;
}

Status TxGovernanceHost::effect(std::string_view name, const json& args) {
    if (name == kEffectReissueRecoveryShares || name == kEffectRekeyLedger ||
        name == kEffectSetRecoveryThreshold) {
        COFFER_RETURN_IF_ERROR(refuse_while_recovering(name));
    }
    if (name == kEffectSetConstitution) {
        return set_constitution(args);
    }
    if (name == kEffectOpenService) {
        return open_service();
    }
    if (name == kEffectUpdateRaftConfiguration) {
        return update_raft_configuration(args);
    }
    if (name == kEffectReissueRecoveryShares) {
        return issue_recovery_shares(std::nullopt, ledger_secrets_);
    }
    if (name == kEffectRekeyLedger) {
        return rekey_ledger();
    }
    if (name == kEffectSetSignatureInterval) {
        return set_signature_interval(args);
    }
    if (name == kEffectSetRecoveryThreshold) {
        auto k = args.is_object() ? args.find("threshold") : args.end();
        // Lua integers arrive as signed JSON integers.
        if (k == args.end() || !k->is_number_integer() || k->get<int64_t>() < 1 ||
            k->get<int64_t>() > static_cast<int64_t>(gov::kMaxRecoveryMembers)) {
            return error(Errc::kInvalidArgument,
                         "set_recovery_threshold needs {\"threshold\": 1..255}");
        }
        return issue_recovery_shares(static_cast<size_t>(k->get<int64_t>()), ledger_secrets_);
    }
    return error(Errc::kInvalidArgument, "unknown effect " + std::string(name));
}

// While a service is recovered, the recovery value in the ledger is the one the members'
// shares belong to, and the node holds no ledger secret to wrap: new shares or a rekey must
// wait until the service is open again (docs/recovery.md).
Status TxGovernanceHost::refuse_while_recovering(std::string_view effect) {
    COFFER_ASSIGN_OR_RETURN(auto service, get(node::kServiceMap, node::kServiceKey));
    std::string status = service.has_value() ? service->value("status", "") : "";
    if (status == node::kServiceStatusRecovering ||
        status == node::kServiceStatusWaitingForShares) {
        return error(Errc::kFailedPrecondition,
                     std::string(effect) + " is refused while the service is \"" + status +
                         "\": the members' recovery shares must stay as they are until the "
                         "service is open again");
    }
    return Status();
}

Status TxGovernanceHost::set_constitution(const json& args) {
    auto source = args.is_object() ? args.find("constitution") : args.end();
    if (!args.is_object() || source == args.end() || !source->is_string()) {
        return error(Errc::kInvalidArgument,
                     "set_constitution needs {\"constitution\": Lua source text}");
    }
    const std::string& text = source->get_ref<const std::string&>();
    COFFER_RETURN_IF_ERROR(gov::Constitution::check_source(text));
    json record = {{"source", text}, {"digest", node::constitution_digest(text)}};
    COFFER_RETURN_IF_ERROR(buffer(node::kConstitutionMap, node::kConstitutionKey, record, true));
    return drop_open_proposals();
}

// One step along the service states (docs/governance.md, "Service states"): a new service
// opens; a recovered one moves on to collecting recovery shares, and the node opens it
// itself once enough shares arrived. Anything else is refused, so that a second proposal
// cannot reopen, or skip the shares of, a service.
Status TxGovernanceHost::open_service() {
    COFFER_ASSIGN_OR_RETURN(auto service, get(node::kServiceMap, node::kServiceKey));
    if (!service.has_value()) {
        return error(Errc::kCorrupt, "the service map has no service record");
    }
    auto status = service->find("status");
    std::string current =
        status != service->end() && status->is_string() ? status->get<std::string>() : "";
    std::string_view next;
    if (current == node::kServiceStatusOpening) {
        next = node::kServiceStatusOpen;
    } else if (current == node::kServiceStatusRecovering) {
        next = node::kServiceStatusWaitingForShares;
    } else if (current == node::kServiceStatusOpen) {
        return error(Errc::kFailedPrecondition, "the service is already open");
    } else if (current == node::kServiceStatusWaitingForShares) {
        return error(Errc::kFailedPrecondition,
                     "the service is already waiting for recovery shares: members submit their "
                     "shares to open it");
    } else {
        return error(Errc::kCorrupt,
                     "the service record has an unknown status \"" + current + "\"");
    }
    (*service)["status"] = std::string(next);
    return buffer(node::kServiceMap, node::kServiceKey, *service, true);
}

// The voters become the given trusted nodes that were admitted: the write to the
// configuration map makes this
// proposal's transaction a Raft configuration entry (node/raft_storage.h), which the leader
// refuses while another configuration change is uncommitted (the request then fails and can
// be sent again).
Status TxGovernanceHost::update_raft_configuration(const json& args) {
    auto voters = args.is_object() ? args.find("voters") : args.end();
    if (voters == args.end() || !voters->is_array() || voters->empty()) {
        return error(Errc::kInvalidArgument,
                     "update_raft_configuration needs {\"voters\": [node ids]}");
    }
    std::vector<consensus::NodeId> ids;
    for (const json& v : *voters) {
        if (!v.is_string()) {
            return error(Errc::kInvalidArgument, "update_raft_configuration: voters are node ids");
        }
        const std::string& id = v.get_ref<const std::string&>();
        COFFER_ASSIGN_OR_RETURN(auto record, get(node::kNodesMap, id));
        if (!record.has_value() || record->value("status", "") != node::kNodeStatusTrusted) {
            return error(Errc::kInvalidArgument,
                         "update_raft_configuration: node " + id + " is not trusted");
        }
        // A node trusted but not admitted yet (no certificate) becomes a voter when it next
        // asks to join, in the transaction that issues its certificate: making it a voter
        // now, while its process only polls, could cost the leader its quorum.
        if (record->contains("cert")) {
            ids.push_back(id);
        }
    }
    if (ids.empty()) {
        return error(Errc::kInvalidArgument,
                     "update_raft_configuration: no admitted node would be left as a voter");
    }
    COFFER_ASSIGN_OR_RETURN(consensus::Configuration next,
                            consensus::make_configuration(std::move(ids)));
    std::vector<std::string> sorted(next.voters.begin(), next.voters.end());
    std::sort(sorted.begin(), sorted.end());
    if (sorted == current_voters_) {
        return Status();  // nothing changes: no configuration entry
    }
    json value = json::parse(node::configuration_value(next), nullptr, false);
    return buffer(node::kConfigurationMap, node::kConfigurationKey, value, true);
}

// New shares replace every earlier one: a share of an older set no longer matches the
// recovery value (gov/recovery.h), and members that hold no share any more lose their entry.
Status TxGovernanceHost::issue_recovery_shares(std::optional<size_t> threshold,
                                               const std::vector<ledger::LedgerSecret>* secrets) {
    if (!threshold.has_value()) {
        COFFER_ASSIGN_OR_RETURN(auto current, get(gov::kRecoveryMap, gov::kRecoveryCurrentKey));
        if (!current.has_value()) {
            return Status();  // no threshold set yet: nothing to re-issue
        }
        COFFER_ASSIGN_OR_RETURN(gov::RecoveryInfo info, gov::parse_recovery_value(*current));
        threshold = info.threshold;
    }
    if (secrets == nullptr || secrets->empty()) {
        return error(Errc::kFailedPrecondition, "no ledger secrets to wrap into recovery shares");
    }
    std::map<std::string, json> members;
    COFFER_ASSIGN_OR_RETURN(std::vector<std::string> fingerprints, keys(node::kMembersMap));
    for (const std::string& fp : fingerprints) {
        COFFER_ASSIGN_OR_RETURN(auto member, get(node::kMembersMap, fp));
        if (member.has_value()) {
            members.emplace(fp, std::move(*member));
        }
    }
    COFFER_ASSIGN_OR_RETURN(gov::RecoveryMembers holders,
                            gov::recovery_members_from_governance(members));
    if (*threshold > holders.size()) {
        return error(Errc::kInvalidArgument,
                     "recovery threshold " + std::to_string(*threshold) + " exceeds the " +
                         std::to_string(holders.size()) +
                         " members that can hold a share (active, with an encryption key)");
    }
    COFFER_ASSIGN_OR_RETURN(gov::RecoveryIssuance issued,
                            gov::issue_recovery_shares(*secrets, holders, *threshold));
    COFFER_RETURN_IF_ERROR(
        buffer(gov::kRecoveryMap, gov::kRecoveryCurrentKey, issued.recovery, true));
    COFFER_ASSIGN_OR_RETURN(std::vector<std::string> old_holders, keys(gov::kRecoverySharesMap));
    for (const std::string& fp : old_holders) {
        if (issued.shares.count(fp) == 0) {
            COFFER_RETURN_IF_ERROR(buffer(gov::kRecoverySharesMap, fp, std::nullopt, true));
        }
    }
    for (auto& [fp, share] : issued.shares) {
        COFFER_RETURN_IF_ERROR(buffer(gov::kRecoverySharesMap, fp, std::move(share), true));
    }
    return Status();
}

// Each trusted node gets its own sealed copy of the new secret rather than one copy under
// the previous secret: a coalition holding an older secret or share set then reads nothing
// written after the rekey (docs/recovery.md, "Re-issuing").
Status TxGovernanceHost::rekey_ledger() {
    if (ledger_secrets_ == nullptr || ledger_secrets_->empty()) {
        return error(Errc::kFailedPrecondition, "rekey_ledger: the node holds no ledger secret");
    }
    uint32_t newest = 0;
    for (const ledger::LedgerSecret& s : *ledger_secrets_) {
        newest = std::max(newest, s.version);
    }
    if (newest == UINT32_MAX) {
        return error(Errc::kResourceExhausted, "rekey_ledger: ledger secret versions exhausted");
    }
    uint32_t version = newest + 1;
    // Reading the key makes two rekeys racing for one version conflict (one is retried).
    COFFER_ASSIGN_OR_RETURN(auto issued,
                            get(node::kLedgerSecretUpdatesMap, std::to_string(version)));
    if (issued.has_value()) {
        return error(Errc::kFailedPrecondition, "rekey_ledger: ledger secret version " +
                                                    std::to_string(version) +
                                                    " was issued already and is not applied yet");
    }
    COFFER_ASSIGN_OR_RETURN(std::vector<node::NodeEncryptionKey> recipients, rekey_recipients());

    std::vector<ledger::LedgerSecret> extended = *ledger_secrets_;
    extended.push_back(ledger::make_random_ledger_secret(version));
    auto update = node::seal_ledger_secret_update(extended.back(), recipients);
    Status done =
        update.ok() ? buffer(node::kLedgerSecretUpdatesMap, std::to_string(version), *update, true)
                    : update.status();
    if (done.ok()) {
        done = issue_recovery_shares(std::nullopt, &extended);
    }
    for (ledger::LedgerSecret& s : extended) {
        OPENSSL_cleanse(s.key.data(), s.key.size());
    }
    return done;
}

// Every trusted node with an encryption key. A trusted node that was not admitted yet (no
// certificate) and has no key gets every secret in its join answer instead; an admitted one
// without a key could not read the entries after the rekey, so the rekey is refused.
Result<std::vector<node::NodeEncryptionKey>> TxGovernanceHost::rekey_recipients() {
    std::vector<node::NodeEncryptionKey> recipients;
    COFFER_ASSIGN_OR_RETURN(std::vector<std::string> ids, keys(node::kNodesMap));
    for (const std::string& id : ids) {
        COFFER_ASSIGN_OR_RETURN(auto record, get(node::kNodesMap, id));
        if (!record.has_value() || record->value("status", "") != node::kNodeStatusTrusted) {
            continue;
        }
        auto pem = record->find("encryption_public_key");
        if (pem == record->end() || !pem->is_string()) {
            if (!record->contains("cert")) {
                continue;
            }
            return error(Errc::kFailedPrecondition,
                         "rekey_ledger: trusted node " + id +
                             " has no encryption_public_key, so it could not read the entries "
                             "after a rekey; restart it to publish one");
        }
        auto key = crypto::x25519_public_from_pem(pem->get<std::string>());
        if (!key.ok()) {
            return error(Errc::kCorrupt,
                         "rekey_ledger: node " + id + " has a malformed encryption_public_key");
        }
        recipients.push_back(node::NodeEncryptionKey{id, std::move(key).value()});
    }
    if (recipients.empty()) {
        return error(Errc::kFailedPrecondition, "rekey_ledger: no trusted node to seal to");
    }
    return recipients;
}

Status TxGovernanceHost::set_signature_interval(const json& args) {
    auto tx_count = args.is_object() ? args.find("tx_count") : args.end();
    auto interval_ms = args.is_object() ? args.find("interval_ms") : args.end();
    auto settings = tx_count == args.end() || interval_ms == args.end()
                        ? Result<node::SignatureSettings>(error(Errc::kInvalidArgument, "missing"))
                        : node::parse_signature_settings(
                              {{"interval_entries", *tx_count}, {"interval_ms", *interval_ms}});
    if (!settings.ok()) {
        return error(Errc::kInvalidArgument,
                     "set_signature_interval needs {\"tx_count\": 1.." +
                         std::to_string(node::kMaxSignatureIntervalEntries) +
                         ", \"interval_ms\": 1.." + std::to_string(node::kMaxSignatureIntervalMs) +
                         "}");
    }
    return buffer(node::kGovConfigMap, node::kSignatureSettingsKey,
                  node::signature_settings_json(*settings), true);
}

// A proposal was written for the rules in force when it was made: once they change, the
// open ones are closed ("dropped") instead of being decided by rules their voters never saw.
Status TxGovernanceHost::drop_open_proposals() {
    std::vector<std::pair<std::string, json>> dropped;
    Status parse_error;
    Status walked =
        tx_.range(node::kProposalsMap, {}, std::nullopt, 0, [&](ByteSpan key, ByteSpan value) {
            std::string id = to_string(key);
            if (id == proposal_id_) {
                return true;
            }
            auto record = net::parse_json(to_string(value), node::kMaxGovernanceJsonDepth);
            if (!record.ok() || !record->is_object()) {
                parse_error = error(Errc::kCorrupt, "proposal " + id +
                                                        " is not a JSON "
                                                        "object");
                return false;
            }
            if (record->value("state", "") == node::kProposalOpen) {
                (*record)["state"] = std::string(node::kProposalDropped);
                dropped.emplace_back(id, std::move(*record));
            }
            return true;
        });
    COFFER_RETURN_IF_ERROR(walked);
    COFFER_RETURN_IF_ERROR(parse_error);
    for (auto& [id, record] : dropped) {
        COFFER_RETURN_IF_ERROR(buffer(node::kProposalsMap, id, std::move(record), true));
    }
    return Status();
}

Status TxGovernanceHost::flush() {
    for (const auto& [map, entries] : writes_) {
        for (const auto& [key, value] : entries) {
            if (value.has_value()) {
                COFFER_RETURN_IF_ERROR(node::write_governance_value(tx_, map, key, *value));
            } else {
                COFFER_RETURN_IF_ERROR(tx_.remove(map, as_bytes(key)));
            }
        }
    }
    discard();
    return Status();
}

void TxGovernanceHost::discard() {
    writes_.clear();
    buffered_bytes_ = 0;
}

}  // namespace coffer::apps
