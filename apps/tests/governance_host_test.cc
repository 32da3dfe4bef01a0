// TxGovernanceHost: the constitution's view of one transaction, with its buffer of writes and
// the node's effects.
#include <gtest/gtest.h>

#include "apps/governance_host.h"
#include "crypto/x25519.h"
#include "gov/recovery.h"
#include "ledger/secrets.h"
#include "node/genesis_governance.h"
#include "node/governance_maps.h"

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

TEST(GovernanceHost, OpenServiceSetsTheServiceStatus) {
    kv::Store store;
    seed(store);
    kv::Transaction tx = store.begin();
    TxGovernanceHost host(tx, "01");
    ASSERT_TRUE(host.effect("open_service", json::object()).ok());
    ASSERT_TRUE(host.flush().ok());
    ASSERT_TRUE(store.commit(std::move(tx)).ok());
    auto service = committed_value(store, node::kServiceMap, node::kServiceKey);
    ASSERT_TRUE(service.has_value());
    EXPECT_EQ((*service)["status"], "open");
    EXPECT_EQ((*service)["cert"], "pem");
}

TEST(GovernanceHost, EffectsTheNodeCannotDoYetSaySo) {
    kv::Store store;
    kv::Transaction tx = store.begin();
    TxGovernanceHost host(tx, "01");
    for (const char* name : {"rekey_ledger", "set_signature_interval"}) {
        Status s = host.effect(name, json::object());
        EXPECT_EQ(s.code(), Errc::kUnsupported) << name;
        EXPECT_EQ(s.message().rfind("not supported yet: " + std::string(name), 0), 0u)
            << s.message();
    }
    EXPECT_TRUE(host.effect("reissue_recovery_shares", json::object()).ok());
    EXPECT_EQ(host.effect("format_disk", json::object()).code(), Errc::kInvalidArgument);
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
