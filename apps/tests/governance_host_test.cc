// TxGovernanceHost: the constitution's view of one transaction, with its buffer of writes and
// the node's effects.
#include <gtest/gtest.h>

#include "apps/governance_host.h"
#include "crypto/x25519.h"
#include "gov/recovery.h"
#include "ledger/secrets.h"
#include "node/genesis_governance.h"
#include "node/governance_maps.h"
#include "node/rekey.h"

namespace coffer::apps {
namespace {

using nlohmann::json;

constexpr std::string_view kUsers = node::kUsersMap;

std::optional<json> committed_value(kv::Store& store, std::string_view map, std::string_view key) {
    kv::Transaction tx = store.begin();
    auto value = node::read_governance_value(tx, map, key);
    EXPECT_TRUE(value.ok());
    return value.ok() ? *value : std::nullopt;
}

// A store holding the default constitution, the service record, one user and two proposals.
void seed(kv::Store& store) {
    kv::Transaction tx = store.begin();
    ASSERT_TRUE(node::write_genesis_governance(tx).ok());
    ASSERT_TRUE(node::write_governance_value(tx, node::kServiceMap, node::kServiceKey,
                                             {{"cert", "pem"}, {"status", "recovering"}})
                    .ok());
    ASSERT_TRUE(node::write_governance_value(tx, kUsers, "aa", {{"cert", "a"}}).ok());
    ASSERT_TRUE(node::write_governance_value(tx, node::kProposalsMap, "01",
                                             {{"state", "open"}, {"actions", json::array()}})
                    .ok());
    ASSERT_TRUE(node::write_governance_value(tx, node::kProposalsMap, "02",
                                             {{"state", "open"}, {"actions", json::array()}})
                    .ok());
    ASSERT_TRUE(node::write_governance_value(tx, node::kProposalsMap, "03",
                                             {{"state", "rejected"}, {"actions", json::array()}})
                    .ok());
    ASSERT_TRUE(store.commit(std::move(tx)).ok());
}

TEST(GovernanceHost, BufferedWritesAreSeenByTheHostButNotTheTransactionUntilFlushed) {
    kv::Store store;
    seed(store);
    kv::Transaction tx = store.begin();
    TxGovernanceHost host(tx, "01");

    ASSERT_TRUE(host.put(kUsers, "bb", {{"cert", "b"}}).ok());
    ASSERT_TRUE(host.remove(kUsers, "aa").ok());
    EXPECT_EQ(host.get(kUsers, "bb").value(), json({{"cert", "b"}}));
    EXPECT_FALSE(host.get(kUsers, "aa").value().has_value());
    EXPECT_EQ(host.keys(kUsers).value(), std::vector<std::string>{"bb"});
    EXPECT_FALSE(tx.get(kUsers, as_bytes("bb")).has_value());
    EXPECT_TRUE(tx.get(kUsers, as_bytes("aa")).has_value());

    ASSERT_TRUE(host.flush().ok());
    ASSERT_TRUE(store.commit(std::move(tx)).ok());
    EXPECT_TRUE(committed_value(store, kUsers, "bb").has_value());
    EXPECT_FALSE(committed_value(store, kUsers, "aa").has_value());
}

TEST(GovernanceHost, DiscardedWritesNeverReachTheStore) {
    kv::Store store;
    seed(store);
    kv::Transaction tx = store.begin();
    TxGovernanceHost host(tx, "01");
    ASSERT_TRUE(host.put(kUsers, "bb", {{"cert", "b"}}).ok());
    host.discard();
    ASSERT_TRUE(host.flush().ok());
    EXPECT_FALSE(tx.has_writes());
    EXPECT_FALSE(host.get(kUsers, "bb").value().has_value());
}

TEST(GovernanceHost, ActionsCannotWriteGovernanceRecords) {
    kv::Store store;
    seed(store);
    kv::Transaction tx = store.begin();
    TxGovernanceHost host(tx, "01");
    for (std::string_view map : {node::kProposalsMap, node::kBallotsMap, node::kRequestDigestsMap,
                                 node::kConstitutionMap, node::kServiceMap}) {
        EXPECT_EQ(host.put(map, "01", {{"state", "accepted"}}).code(), Errc::kPermissionDenied)
            << map;
        EXPECT_EQ(host.remove(map, "01").code(), Errc::kPermissionDenied) << map;
    }
    EXPECT_EQ(host.put(kUsers, "cc", json::array()).code(), Errc::kInvalidArgument);
    ASSERT_TRUE(host.flush().ok());
    EXPECT_FALSE(tx.has_writes());
}

TEST(GovernanceHost, BufferIsBounded) {
    kv::Store store;
    kv::Transaction tx = store.begin();
    TxGovernanceHost host(tx, "");
    std::string big(kMaxBufferedGovernanceBytes / 4, 'x');
    Status last;
    for (int i = 0; i < 8 && last.ok(); ++i) {
        last = host.put(kUsers, std::to_string(i), {{"cert", big}});
    }
    EXPECT_EQ(last.code(), Errc::kResourceExhausted);
}

TEST(GovernanceHost, KeysRefusesAMapPastItsLimitEvenWhenWritesRemoveSome) {
    kv::Store store;
    kv::Transaction seed_tx = store.begin();
    for (size_t i = 0; i <= kMaxGovernanceMapKeys; ++i) {
        ASSERT_TRUE(
            node::write_governance_value(seed_tx, kUsers, std::to_string(i), json::object()).ok());
    }
    ASSERT_TRUE(store.commit(std::move(seed_tx)).ok());
    kv::Transaction tx = store.begin();
    TxGovernanceHost host(tx, "");
    EXPECT_EQ(host.keys(kUsers).status().code(), Errc::kResourceExhausted);
    ASSERT_TRUE(host.remove(kUsers, "0").ok());
    EXPECT_EQ(host.keys(kUsers).status().code(), Errc::kResourceExhausted);
}

TEST(GovernanceHost, SetConstitutionReplacesItAndDropsTheOtherOpenProposals) {
    kv::Store store;
    seed(store);
    kv::Transaction tx = store.begin();
    TxGovernanceHost host(tx, "01");
    std::string source =
        "function validate(p) return nil end\n"
        "function resolve(p, v, m) return 'open' end\n"
        "function apply(p, id) end\n";
    ASSERT_TRUE(host.effect("set_constitution", {{"constitution", source}}).ok());
    ASSERT_TRUE(host.flush().ok());
    ASSERT_TRUE(store.commit(std::move(tx)).ok());

    auto current = committed_value(store, node::kConstitutionMap, node::kConstitutionKey);
    ASSERT_TRUE(current.has_value());
    EXPECT_EQ((*current)["source"], source);
    EXPECT_EQ((*current)["digest"], node::constitution_digest(source));
    EXPECT_EQ((*committed_value(store, node::kProposalsMap, "01"))["state"], "open");
    EXPECT_EQ((*committed_value(store, node::kProposalsMap, "02"))["state"], "dropped");
    EXPECT_EQ((*committed_value(store, node::kProposalsMap, "03"))["state"], "rejected");
}

TEST(GovernanceHost, SetConstitutionRefusesSourceThatDoesNotCheck) {
    kv::Store store;
    seed(store);
    kv::Transaction tx = store.begin();
    TxGovernanceHost host(tx, "01");
    EXPECT_EQ(host.effect("set_constitution", {{"constitution", "function validate("}}).code(),
              Errc::kInvalidArgument);
    EXPECT_EQ(host.effect("set_constitution", {{"constitution", "x = 1"}}).code(),
              Errc::kInvalidArgument);
    EXPECT_EQ(host.effect("set_constitution", json::object()).code(), Errc::kInvalidArgument);
    ASSERT_TRUE(host.flush().ok());
    EXPECT_FALSE(tx.has_writes());
}

// The service record as open_service leaves it when the service was `from`: its new status,
// or the effect's error.
Result<json> open_service_from(const std::string& from) {
    kv::Store store;
    seed(store);
    {
        kv::Transaction tx = store.begin();
        COFFER_RETURN_IF_ERROR(node::write_governance_value(
            tx, node::kServiceMap, node::kServiceKey, {{"cert", "pem"}, {"status", from}}));
        COFFER_RETURN_IF_ERROR(store.commit(std::move(tx)).status());
    }
    kv::Transaction tx = store.begin();
    TxGovernanceHost host(tx, "01");
    COFFER_RETURN_IF_ERROR(host.effect("open_service", json::object()));
    COFFER_RETURN_IF_ERROR(host.flush());
    COFFER_RETURN_IF_ERROR(store.commit(std::move(tx)).status());
    auto service = committed_value(store, node::kServiceMap, node::kServiceKey);
    if (!service.has_value()) {
        return error(Errc::kNotFound, "no service record");
    }
    return *service;
}

TEST(GovernanceHost, OpenServiceMovesANewOrRecoveredServiceOneStateOn) {
    auto opened = open_service_from("opening");
    ASSERT_TRUE(opened.ok()) << opened.status().to_string();
    EXPECT_EQ((*opened)["status"], "open");
    EXPECT_EQ((*opened)["cert"], "pem");

    auto recovered = open_service_from("recovering");
    ASSERT_TRUE(recovered.ok()) << recovered.status().to_string();
    EXPECT_EQ((*recovered)["status"], "waiting_for_recovery_shares");
}

TEST(GovernanceHost, OpenServiceRefusesAnOpenServiceOrOneWaitingForShares) {
    auto again = open_service_from("open");
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.status().code(), Errc::kFailedPrecondition);
    EXPECT_EQ(again.status().message(), "the service is already open");

    auto waiting = open_service_from("waiting_for_recovery_shares");
    ASSERT_FALSE(waiting.ok());
    EXPECT_EQ(waiting.status().code(), Errc::kFailedPrecondition);
    EXPECT_EQ(waiting.status().message().rfind("the service is already waiting for recovery "
                                               "shares",
                                               0),
              0u)
        << waiting.status().message();

    auto unknown = open_service_from("paused");
    ASSERT_FALSE(unknown.ok());
    EXPECT_EQ(unknown.status().code(), Errc::kCorrupt);
}

TEST(GovernanceHost, OpenServiceRefusalWritesNothing) {
    kv::Store store;
    seed(store);
    kv::Transaction tx = store.begin();
    TxGovernanceHost host(tx, "01");
    ASSERT_TRUE(host.effect("open_service", json::object()).ok());
    // The buffered "waiting_for_recovery_shares" is what a second open in the same proposal
    // sees: it is refused.
    EXPECT_EQ(host.effect("open_service", json::object()).code(), Errc::kFailedPrecondition);
    host.discard();
    ASSERT_TRUE(host.flush().ok());
    EXPECT_FALSE(tx.has_writes());
}

TEST(GovernanceHost, UnknownEffectIsRefused) {
    kv::Store store;
    kv::Transaction tx = store.begin();
    TxGovernanceHost host(tx, "01");
    EXPECT_TRUE(host.effect("reissue_recovery_shares", json::object()).ok());
    EXPECT_EQ(host.effect("format_disk", json::object()).code(), Errc::kInvalidArgument);
}

// Nodes a (trusted, admitted), b (trusted, not admitted yet), c (pending), d (retired), all
// with encryption keys; members m1..m3 with theirs.
struct RekeyFixture {
    std::map<std::string, crypto::X25519KeyPair> node_keys;
    kv::Store store;

    RekeyFixture() {
        kv::Transaction tx = store.begin();
        const std::vector<std::pair<std::string, json>> nodes = {
            {"a", {{"status", "trusted"}, {"cert", "pem a"}}},
            {"b", {{"status", "trusted"}}},
            {"c", {{"status", "pending"}}},
            {"d", {{"status", "retired"}, {"cert", "pem d"}}}};
        for (auto [id, record] : nodes) {
            node_keys[id] = crypto::x25519_generate();
            record["encryption_public_key"] =
                crypto::x25519_public_to_pem(node_keys[id].public_key).value();
            EXPECT_TRUE(node::write_governance_value(tx, node::kNodesMap, id, record).ok());
        }
        for (char c : {'1', '2', '3'}) {
            auto pem = crypto::x25519_public_to_pem(crypto::x25519_generate().public_key);
            EXPECT_TRUE(
                node::write_governance_value(
                    tx, node::kMembersMap, std::string(64, c),
                    {{"cert", "pem"}, {"encryption_public_key", pem.value()}, {"status", "active"}})
                    .ok());
        }
        EXPECT_TRUE(store.commit(std::move(tx)).ok());
    }

    // The secret that the update written under `version` seals to `id`.
    Result<std::optional<ledger::LedgerSecret>> open_copy(TxGovernanceHost& host,
                                                          const std::string& version,
                                                          const std::string& id) {
        auto update = host.get(node::kLedgerSecretUpdatesMap, version);
        if (!update.ok() || !update->has_value()) {
            return error(Errc::kNotFound, "no update " + version);
        }
        kv::WriteSet ws;
        ws.maps[std::string(node::kLedgerSecretUpdatesMap)][to_bytes(version)] =
            to_bytes((*update)->dump());
        return node::ledger_secret_from_write_set(ws, id, node_keys[id].private_key);
    }
};

// While a service is recovered the members' shares must stay as they are: effects that would
// replace them are refused, with secrets at hand or not.
TEST(GovernanceHost, ShareIssuanceAndRekeyAreRefusedWhileRecovering) {
    RekeyFixture f;
    const std::vector<ledger::LedgerSecret> secrets = {ledger::make_random_ledger_secret(1)};
    for (const char* status : {"recovering", "waiting_for_recovery_shares"}) {
        kv::Transaction tx = f.store.begin();
        ASSERT_TRUE(node::write_governance_value(tx, node::kServiceMap, node::kServiceKey,
                                                 {{"cert", "pem"}, {"status", status}})
                        .ok());
        TxGovernanceHost host(tx, "01", {}, &secrets);
        for (const auto& [effect, args] : std::vector<std::pair<std::string, json>>{
                 {"set_recovery_threshold", {{"threshold", 1}}},
                 {"reissue_recovery_shares", json::object()},
                 {"rekey_ledger", json::object()}}) {
            Status refused = host.effect(effect, args);
            EXPECT_EQ(refused.code(), Errc::kFailedPrecondition) << effect << " " << status;
            EXPECT_NE(refused.message().find("refused while the service is"), std::string::npos)
                << refused.message();
        }
        EXPECT_FALSE(host.get(gov::kRecoveryMap, gov::kRecoveryCurrentKey).value().has_value());
    }
}

TEST(GovernanceHost, RekeySealsTheNextVersionToEveryTrustedNodeAndReissuesTheShares) {
    RekeyFixture f;
    const std::vector<ledger::LedgerSecret> secrets = {ledger::make_random_ledger_secret(1),
                                                       ledger::make_random_ledger_secret(2)};
    kv::Transaction tx = f.store.begin();
    TxGovernanceHost host(tx, "01", {}, &secrets);
    ASSERT_TRUE(host.effect("set_recovery_threshold", {{"threshold", 2}}).ok());
    auto before = host.get(gov::kRecoveryMap, gov::kRecoveryCurrentKey).value().value();

    Status rekeyed = host.effect("rekey_ledger", json::object());
    ASSERT_TRUE(rekeyed.ok()) << rekeyed.to_string();
    auto a = f.open_copy(host, "3", "a");
    auto b = f.open_copy(host, "3", "b");
    ASSERT_TRUE(a.ok() && a->has_value()) << a.status().to_string();
    ASSERT_TRUE(b.ok() && b->has_value()) << b.status().to_string();
    EXPECT_EQ((*a)->version, 3u);
    EXPECT_EQ((*a)->key, (*b)->key);
    EXPECT_NE((*a)->key, secrets[1].key);
    for (const char* outsider : {"c", "d"}) {
        auto none = f.open_copy(host, "3", outsider);
        ASSERT_TRUE(none.ok());
        EXPECT_FALSE(none->has_value()) << outsider;
    }

    // New shares, same threshold, wrapping one more secret.
    auto after = host.get(gov::kRecoveryMap, gov::kRecoveryCurrentKey).value().value();
    EXPECT_NE(after["share_set"], before["share_set"]);
    EXPECT_EQ(after["threshold"], 2);
    auto before_info = gov::parse_recovery_value(before).value();
    auto after_info = gov::parse_recovery_value(after).value();
    EXPECT_GT(after_info.wrapped_ledger_secrets.size(), before_info.wrapped_ledger_secrets.size());

    // A second rekey in the same transaction would reuse version 3: refused.
    EXPECT_EQ(host.effect("rekey_ledger", json::object()).code(), Errc::kFailedPrecondition);
    ASSERT_TRUE(host.flush().ok());
    ASSERT_TRUE(f.store.commit(std::move(tx)).ok());
    EXPECT_TRUE(committed_value(f.store, node::kLedgerSecretUpdatesMap, "3").has_value());
}

TEST(GovernanceHost, RekeyRefusesAnAdmittedNodeWithoutEncryptionKeyAndNeedsSecrets) {
    RekeyFixture f;
    const std::vector<ledger::LedgerSecret> secrets = {ledger::make_random_ledger_secret(1)};
    kv::Transaction tx = f.store.begin();
    TxGovernanceHost host(tx, "01", {}, &secrets);
    ASSERT_TRUE(host.put(node::kNodesMap, "e", {{"status", "trusted"}, {"cert", "pem e"}}).ok());
    Status refused = host.effect("rekey_ledger", json::object());
    EXPECT_EQ(refused.code(), Errc::kFailedPrecondition);
    EXPECT_NE(refused.message().find("node e has no encryption_public_key"), std::string::npos)
        << refused.message();
    EXPECT_FALSE(host.get(node::kLedgerSecretUpdatesMap, "2").value().has_value());

    TxGovernanceHost without_secrets(tx, "01");
    EXPECT_EQ(without_secrets.effect("rekey_ledger", json::object()).code(),
              Errc::kFailedPrecondition);
}

TEST(GovernanceHost, SetSignatureIntervalChecksItsArgumentsAndWritesTheConfig) {
    kv::Store store;
    kv::Transaction tx = store.begin();
    TxGovernanceHost host(tx, "01");
    for (const json& bad : {json::object(), json{{"tx_count", 0}, {"interval_ms", 10}},
                            json{{"tx_count", 10}, {"interval_ms", 0}}, json{{"tx_count", 10}},
                            json{{"tx_count", 1000001}, {"interval_ms", 10}},
                            json{{"tx_count", 10}, {"interval_ms", 3600001}},
                            json{{"tx_count", "10"}, {"interval_ms", 10}}}) {
        EXPECT_EQ(host.effect("set_signature_interval", bad).code(), Errc::kInvalidArgument)
            << bad.dump();
    }
    EXPECT_FALSE(host.get(node::kGovConfigMap, node::kSignatureSettingsKey).value().has_value());
    ASSERT_TRUE(
        host.effect("set_signature_interval", {{"tx_count", 5}, {"interval_ms", 250}}).ok());
    ASSERT_TRUE(host.flush().ok());
    ASSERT_TRUE(store.commit(std::move(tx)).ok());
    auto stored = committed_value(store, node::kGovConfigMap, node::kSignatureSettingsKey);
    ASSERT_TRUE(stored.has_value());
    EXPECT_EQ(*stored, (json{{"interval_entries", 5}, {"interval_ms", 250}}));
}

TEST(GovernanceHost, ActionsCannotWriteRekeyUpdatesOrServiceSettingsDirectly) {
    kv::Store store;
    kv::Transaction tx = store.begin();
    TxGovernanceHost host(tx, "01");
    EXPECT_EQ(host.put(node::kLedgerSecretUpdatesMap, "2", {{"version", 2}}).code(),
              Errc::kPermissionDenied);
    EXPECT_EQ(host.put(node::kGovConfigMap, node::kSignatureSettingsKey, {{"x", 1}}).code(),
              Errc::kPermissionDenied);
}

TEST(GovernanceHost, ConfigurationEffectNeedsTrustedNodesAndWritesTheAdmittedVoters) {
    const std::string a(64, 'a');
    const std::string b(64, 'b');
    const std::string c(64, 'c');
    kv::Store store;
    {
        kv::Transaction tx = store.begin();
        ASSERT_TRUE(node::write_governance_value(tx, node::kNodesMap, a,
                                                 {{"status", "trusted"}, {"cert", "pem a"}})
                        .ok());
        ASSERT_TRUE(
            node::write_governance_value(tx, node::kNodesMap, b, {{"status", "pending"}}).ok());
        ASSERT_TRUE(node::write_governance_value(tx, node::kNodesMap, c,
                                                 {{"status", "trusted"}, {"cert", "pem c"}})
                        .ok());
        ASSERT_TRUE(store.commit(std::move(tx)).ok());
    }
    kv::Transaction tx = store.begin();
    TxGovernanceHost host(tx, "01");
    Status pending = host.effect("update_raft_configuration", {{"voters", json::array({a, b})}});
    EXPECT_EQ(pending.code(), Errc::kInvalidArgument);
    EXPECT_NE(pending.message().find("is not trusted"), std::string::npos) << pending.message();
    EXPECT_EQ(host.effect("update_raft_configuration", json::object()).code(),
              Errc::kInvalidArgument);

    // b trusted but not admitted yet: it becomes a voter when it next asks to join.
    ASSERT_TRUE(host.put(node::kNodesMap, b, {{"status", "trusted"}}).ok());
    ASSERT_TRUE(
        host.effect("update_raft_configuration", {{"voters", json::array({c, b, a})}}).ok());
    ASSERT_TRUE(host.flush().ok());
    ASSERT_TRUE(store.commit(std::move(tx)).ok());
    auto voters = committed_value(store, node::kConfigurationMap, node::kConfigurationKey);
    ASSERT_TRUE(voters.has_value());
    EXPECT_EQ((*voters)["voters"], json::array({a, c}));
}

TEST(GovernanceHost, RecoverySharesFollowTheThresholdAndTheMembers) {
    const std::vector<ledger::LedgerSecret> secrets = {ledger::make_random_ledger_secret(1)};
    kv::Store store;
    {
        kv::Transaction tx = store.begin();
        for (char c : {'a', 'b', 'c'}) {
            auto pem = crypto::x25519_public_to_pem(crypto::x25519_generate().public_key);
            ASSERT_TRUE(pem.ok());
            ASSERT_TRUE(
                node::write_governance_value(
                    tx, node::kMembersMap, std::string(64, c),
                    {{"cert", "pem"}, {"encryption_public_key", *pem}, {"status", "active"}})
                    .ok());
        }
        ASSERT_TRUE(store.commit(std::move(tx)).ok());
    }
    kv::Transaction tx = store.begin();
    TxGovernanceHost host(tx, "01", {}, &secrets);
    // Nothing to re-issue before a threshold exists; a threshold above the holders fails.
    ASSERT_TRUE(host.effect("reissue_recovery_shares", json::object()).ok());
    EXPECT_TRUE(host.keys(gov::kRecoverySharesMap)->empty());
    EXPECT_EQ(host.effect("set_recovery_threshold", {{"threshold", 4}}).code(),
              Errc::kInvalidArgument);
    EXPECT_EQ(host.effect("set_recovery_threshold", {{"threshold", 0}}).code(),
              Errc::kInvalidArgument);

    ASSERT_TRUE(host.effect("set_recovery_threshold", {{"threshold", 2}}).ok());
    EXPECT_EQ(host.keys(gov::kRecoverySharesMap)->size(), 3u);
    auto first = host.get(gov::kRecoveryMap, gov::kRecoveryCurrentKey);
    ASSERT_TRUE(first.ok() && first->has_value());
    EXPECT_EQ((**first)["threshold"], 2);

    // A member leaves: the shares are issued again, with the same threshold, to the others.
    ASSERT_TRUE(host.remove(node::kMembersMap, std::string(64, 'c')).ok());
    ASSERT_TRUE(host.effect("reissue_recovery_shares", json::object()).ok());
    auto holders = host.keys(gov::kRecoverySharesMap);
    ASSERT_TRUE(holders.ok());
    EXPECT_EQ(*holders, (std::vector<std::string>{std::string(64, 'a'), std::string(64, 'b')}));
    auto second = host.get(gov::kRecoveryMap, gov::kRecoveryCurrentKey);
    ASSERT_TRUE(second.ok() && second->has_value());
    EXPECT_EQ((**second)["threshold"], 2);
    EXPECT_NE((**second)["share_set"], (**first)["share_set"]);

    TxGovernanceHost without_secrets(tx, "01");
    EXPECT_EQ(without_secrets.effect("set_recovery_threshold", {{"threshold", 2}}).code(),
              Errc::kFailedPrecondition);
}

}  // namespace
}  // namespace coffer::apps
