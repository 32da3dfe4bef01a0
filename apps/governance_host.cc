#include "apps/governance_host.h"

#include <algorithm>
#include <array>

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
// decides whether the proposal succeeds.
constexpr std::array<std::string_view, 5> kReservedMaps = {
    node::kProposalsMap, node::kBallotsMap, node::kRequestDigestsMap, node::kConstitutionMap,
    node::kServiceMap};

bool reserved(std::string_view map) {
    for (std::string_view r : kReservedMaps) {
        if (map == r) {
            return true;
        }
    }
    return false;
}

// The effects the constitution may name that the node does not carry out yet, with why.
struct UnsupportedEffect {
    std::string_view name;
    std::string_view why;
};
constexpr std::array<UnsupportedEffect, 2> kUnsupportedEffects = {{
    {"rekey_ledger", "the node cannot make a new ledger secret version yet"},
    {"set_signature_interval", "the signature interval is fixed by each node's configuration"},
}};

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
    if (name == kEffectSetConstitution) {
        return set_constitution(args);
    }
    if (name == kEffectOpenService) {
        COFFER_ASSIGN_OR_RETURN(auto service, get(node::kServiceMap, node::kServiceKey));
        if (!service.has_value()) {
            return error(Errc::kCorrupt, "the service map has no service record");
        }
        (*service)["status"] = std::string(node::kServiceStatusOpen);
        return buffer(node::kServiceMap, node::kServiceKey, *service, true);
    }
    if (name == kEffectUpdateRaftConfiguration) {
        return update_raft_configuration(args);
    }
    if (name == kEffectReissueRecoveryShares) {
        return issue_recovery_shares(std::nullopt);
    }
    if (name == kEffectSetRecoveryThreshold) {
        auto k = args.is_object() ? args.find("threshold") : args.end();
        // Lua integers arrive as signed JSON integers.
        if (k == args.end() || !k->is_number_integer() || k->get<int64_t>() < 1 ||
            k->get<int64_t>() > static_cast<int64_t>(gov::kMaxRecoveryMembers)) {
            return error(Errc::kInvalidArgument,
                         "set_recovery_threshold needs {\"threshold\": 1..255}");
        }
        return issue_recovery_shares(static_cast<size_t>(k->get<int64_t>()));
    }
    for (const UnsupportedEffect& u : kUnsupportedEffects) {
        if (name == u.name) {
            return error(Errc::kUnsupported, "not supported yet: " + std::string(name) +
                                                 ", because " + std::string(u.why));
        }
    }
    return error(Errc::kInvalidArgument, "unknown effect " + std::string(name));
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
Status TxGovernanceHost::issue_recovery_shares(std::optional<size_t> threshold) {
    if (!threshold.has_value()) {
        COFFER_ASSIGN_OR_RETURN(auto current, get(gov::kRecoveryMap, gov::kRecoveryCurrentKey));
        if (!current.has_value()) {
            return Status();  // no threshold set yet: nothing to re-issue
        }
        COFFER_ASSIGN_OR_RETURN(gov::RecoveryInfo info, gov::parse_recovery_value(*current));
        threshold = info.threshold;
    }
    if (ledger_secrets_ == nullptr || ledger_secrets_->empty()) {
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
                            gov::issue_recovery_shares(*ledger_secrets_, holders, *threshold));
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
