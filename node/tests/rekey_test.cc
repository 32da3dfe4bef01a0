#include <gtest/gtest.h>

#include "crypto/x25519.h"
#include "kv/store.h"
#include "node/rekey.h"

namespace coffer::node {
namespace {

using nlohmann::json;

// One entry's write set holding `update` under its version.
kv::WriteSet update_write_set(const json& update) {
    kv::WriteSet ws;
    std::string version = std::to_string(update["version"].get<uint32_t>());
    ws.maps[std::string(kLedgerSecretUpdatesMap)][to_bytes(version)] = to_bytes(update.dump());
    return ws;
}

struct Nodes {
    crypto::X25519KeyPair a = crypto::x25519_generate();
    crypto::X25519KeyPair b = crypto::x25519_generate();
    std::vector<NodeEncryptionKey> keys() const {
        return {{"a", a.public_key}, {"b", b.public_key}};
    }
};

TEST(Rekey, EveryNamedNodeOpensItsCopyAndOthersFindNothing) {
    Nodes n;
    ledger::LedgerSecret secret = ledger::make_random_ledger_secret(7);
    json update = seal_ledger_secret_update(secret, n.keys()).value();
    kv::WriteSet ws = update_write_set(update);

    for (const auto& [id, pair] : {std::pair{"a", n.a}, std::pair{"b", n.b}}) {
        auto found = ledger_secret_from_write_set(ws, id, pair.private_key);
        ASSERT_TRUE(found.ok()) << found.status().to_string();
        ASSERT_TRUE(found->has_value());
        EXPECT_EQ((*found)->version, 7u);
        EXPECT_EQ((*found)->key, secret.key);
    }
    auto other = ledger_secret_from_write_set(ws, "c", crypto::x25519_generate().private_key);
    ASSERT_TRUE(other.ok());
    EXPECT_FALSE(other->has_value());

    kv::WriteSet unrelated;
    unrelated.maps["public:log"][to_bytes("k")] = to_bytes("v");
    auto none = ledger_secret_from_write_set(unrelated, "a", n.a.private_key);
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none->has_value());
}

TEST(Rekey, CopyThatDoesNotOpenIsACryptoError) {
    Nodes n;
    json update = seal_ledger_secret_update(ledger::make_random_ledger_secret(2), n.keys()).value();
    // Another node's private key.
    auto wrong_key = ledger_secret_from_write_set(update_write_set(update), "a", n.b.private_key);
    EXPECT_EQ(wrong_key.status().code(), Errc::kCrypto);
    // b's copy moved to a: the AAD names b.
    json swapped = update;
    swapped["sealed"]["a"] = update["sealed"]["b"];
    auto moved = ledger_secret_from_write_set(update_write_set(swapped), "a", n.b.private_key);
    EXPECT_EQ(moved.status().code(), Errc::kCrypto);
    // The same copy under another version: the AAD names the version.
    json renumbered = update;
    renumbered["version"] = 3;
    auto other_version =
        ledger_secret_from_write_set(update_write_set(renumbered), "a", n.a.private_key);
    EXPECT_EQ(other_version.status().code(), Errc::kCrypto);
}

TEST(Rekey, MalformedUpdateIsCorrupt) {
    Nodes n;
    kv::WriteSet ws;
    ws.maps[std::string(kLedgerSecretUpdatesMap)][to_bytes("2")] = to_bytes("{\"version\": 2}");
    EXPECT_EQ(ledger_secret_from_write_set(ws, "a", n.a.private_key).status().code(),
              Errc::kCorrupt);
    json update = seal_ledger_secret_update(ledger::make_random_ledger_secret(2), n.keys()).value();
    kv::WriteSet misfiled;
    misfiled.maps[std::string(kLedgerSecretUpdatesMap)][to_bytes("5")] = to_bytes(update.dump());
    EXPECT_EQ(ledger_secret_from_write_set(misfiled, "a", n.a.private_key).status().code(),
              Errc::kCorrupt);
    kv::WriteSet removed;
    removed.maps[std::string(kLedgerSecretUpdatesMap)][to_bytes("2")] = std::nullopt;
    EXPECT_EQ(ledger_secret_from_write_set(removed, "a", n.a.private_key).status().code(),
              Errc::kCorrupt);
}

TEST(Rekey, SealRefusesNoRecipientsDuplicatesAndBadKeys) {
    Nodes n;
    ledger::LedgerSecret secret = ledger::make_random_ledger_secret(2);
    EXPECT_EQ(seal_ledger_secret_update(secret, {}).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(seal_ledger_secret_update(secret, {{"a", n.a.public_key}, {"a", n.b.public_key}})
                  .status()
                  .code(),
              Errc::kInvalidArgument);
    EXPECT_EQ(seal_ledger_secret_update(secret, {{"a", Bytes(31, 1)}}).status().code(),
              Errc::kInvalidArgument);
    EXPECT_EQ(seal_ledger_secret_update(secret, {{"a", Bytes(32, 0)}}).status().code(),
              Errc::kCrypto);
}

TEST(Rekey, SignatureSettingsParseWithinBoundsAndReadBack) {
    auto ok = parse_signature_settings({{"interval_entries", 5}, {"interval_ms", 20}});
    ASSERT_TRUE(ok.ok());
    EXPECT_EQ(ok->interval_entries, 5u);
    EXPECT_EQ(ok->interval_ms, 20u);
    EXPECT_FALSE(parse_signature_settings({{"interval_entries", 0}, {"interval_ms", 20}}).ok());
    EXPECT_FALSE(parse_signature_settings({{"interval_entries", 5}, {"interval_ms", -1}}).ok());
    EXPECT_FALSE(parse_signature_settings(
                     {{"interval_entries", kMaxSignatureIntervalEntries + 1}, {"interval_ms", 20}})
                     .ok());
    EXPECT_FALSE(parse_signature_settings({{"interval_entries", "5"}, {"interval_ms", 20}}).ok());

    kv::Store store;
    {
        kv::Transaction tx = store.begin();
        auto none = read_signature_settings(tx);
        ASSERT_TRUE(none.ok());
        EXPECT_FALSE(none->has_value());
        ASSERT_TRUE(tx.put(kGovConfigMap, as_bytes(kSignatureSettingsKey),
                           as_bytes(signature_settings_json(*ok).dump()))
                        .ok());
        ASSERT_TRUE(store.commit(std::move(tx)).ok());
    }
    kv::Transaction tx = store.begin();
    auto read = read_signature_settings(tx);
    ASSERT_TRUE(read.ok() && read->has_value());
    EXPECT_EQ(**read, *ok);
}

}  // namespace
}  // namespace coffer::node
