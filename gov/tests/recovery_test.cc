// Recovery shares: wrapping the ledger secrets, k-of-n shares HPKE-encrypted to members,
// collecting shares and recovering the secrets, with every refusal named.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "crypto/hpke.h"
#include "crypto/sha256.h"
#include "crypto/x25519.h"
#include "gov/recovery.h"

namespace coffer::gov {
namespace {

struct TestMember {
    std::string fingerprint;
    crypto::X25519KeyPair keys;
};

std::string fingerprint_of(std::string_view seed) {
    return to_hex(crypto::sha256(as_bytes(seed)));
}

// Members sorted by fingerprint, as RecoveryMembers orders them.
std::vector<TestMember> make_members(size_t n) {
    std::map<std::string, crypto::X25519KeyPair> sorted;
    for (size_t i = 0; i < n; ++i) {
        sorted.emplace(fingerprint_of("member " + std::to_string(i)), crypto::x25519_generate());
    }
    std::vector<TestMember> members;
    for (auto& [fingerprint, keys] : sorted) {
        members.push_back(TestMember{fingerprint, keys});
    }
    return members;
}

RecoveryMembers recipients(const std::vector<TestMember>& members) {
    RecoveryMembers out;
    for (const auto& m : members) {
        out.emplace(m.fingerprint, m.keys.public_key);
    }
    return out;
}

std::vector<ledger::LedgerSecret> make_secrets(uint32_t count) {
    std::vector<ledger::LedgerSecret> secrets;
    for (uint32_t v = 1; v <= count; ++v) {
        secrets.push_back(ledger::make_random_ledger_secret(v));
    }
    return secrets;
}

RecoveryIssuance issue(const std::vector<ledger::LedgerSecret>& secrets,
                       const std::vector<TestMember>& members, size_t threshold) {
    auto issuance = issue_recovery_shares(secrets, recipients(members), threshold);
    COFFER_CHECK(issuance.ok(), "issue failed in test: " + issuance.status().to_string());
    return std::move(issuance).value();
}

Bytes decrypt(const RecoveryIssuance& issuance, const TestMember& member) {
    auto share = decrypt_share(issuance.shares.at(member.fingerprint), member.keys.private_key,
                               member.fingerprint);
    COFFER_CHECK(share.ok(), "decrypt failed in test: " + share.status().to_string());
    return std::move(share).value();
}

void expect_same_secrets(const std::vector<ledger::LedgerSecret>& got,
                         const std::vector<ledger::LedgerSecret>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].version, want[i].version);
        EXPECT_EQ(got[i].key, want[i].key);
    }
}

bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

TEST(Recovery, TwoOfThreeRoundTripWithRealHpkeKeys) {
    auto members = make_members(3);
    auto secrets = make_secrets(1);
    RecoveryIssuance issuance = issue(secrets, members, 2);

    EXPECT_EQ(issuance.shares.size(), 3u);
    EXPECT_EQ(issuance.recovery["threshold"], 2);
    EXPECT_EQ(issuance.recovery["share_count"], 3);
    EXPECT_EQ(issuance.recovery["share_set"], issuance.share_set);

    std::vector<Bytes> shares = {decrypt(issuance, members[0]), decrypt(issuance, members[2])};
    auto recovered = recover_ledger_secrets(issuance.recovery, shares);
    ASSERT_TRUE(recovered.ok()) << recovered.status().to_string();
    expect_same_secrets(recovered.value(), secrets);
}

TEST(Recovery, AnyTwoOfThreeSharesRecover) {
    auto members = make_members(3);
    auto secrets = make_secrets(1);
    RecoveryIssuance issuance = issue(secrets, members, 2);
    std::vector<Bytes> plain;
    for (const auto& m : members) {
        plain.push_back(decrypt(issuance, m));
    }

    for (size_t a = 0; a < 3; ++a) {
        for (size_t b = 0; b < 3; ++b) {
            if (a == b) {
                continue;
            }
            std::vector<Bytes> pair = {plain[a], plain[b]};
            auto recovered = recover_ledger_secrets(issuance.recovery, pair);
            ASSERT_TRUE(recovered.ok()) << a << "," << b << ": " << recovered.status().to_string();
            expect_same_secrets(recovered.value(), secrets);
        }
    }
}

TEST(Recovery, OneShareOfTwoIsNotEnough) {
    auto members = make_members(3);
    RecoveryIssuance issuance = issue(make_secrets(1), members, 2);
    std::vector<Bytes> shares = {decrypt(issuance, members[1])};

    auto recovered = recover_ledger_secrets(issuance.recovery, shares);
    ASSERT_FALSE(recovered.ok());
    EXPECT_EQ(recovered.status().code(), Errc::kFailedPrecondition);
    EXPECT_TRUE(contains(recovered.status().message(), "not enough shares (1 of 2)"))
        << recovered.status().message();
}

TEST(Recovery, ForgedShareIsRefusedByItsDigest) {
    auto members = make_members(3);
    RecoveryIssuance issuance = issue(make_secrets(1), members, 2);
    Bytes forged = decrypt(issuance, members[0]);
    forged.back() ^= 0x01;
    std::vector<Bytes> shares = {forged, decrypt(issuance, members[1])};

    auto recovered = recover_ledger_secrets(issuance.recovery, shares);
    ASSERT_FALSE(recovered.ok());
    EXPECT_EQ(recovered.status().code(), Errc::kCrypto);
    EXPECT_TRUE(contains(recovered.status().message(), "share 1 is forged or corrupted"))
        << recovered.status().message();

    auto collector = ShareCollector::create(issuance.recovery);
    ASSERT_TRUE(collector.ok());
    EXPECT_EQ(collector->submit(forged).code(), Errc::kCrypto);
    EXPECT_EQ(collector->received(), 0u);
}

TEST(Recovery, ForgedShareWithForgedDigestDoesNotReconstruct) {
    // Whoever can also rewrite the published digests still cannot make a wrong key pass:
    // the unwrap's AES-GCM tag refuses it.
    auto members = make_members(3);
    RecoveryIssuance issuance = issue(make_secrets(1), members, 2);
    Bytes forged = decrypt(issuance, members[0]);
    forged.back() ^= 0x01;
    nlohmann::json value = issuance.recovery;
    value["share_digests"][0] = recovery_share_digest(forged);
    std::vector<Bytes> shares = {forged, decrypt(issuance, members[1])};

    auto recovered = recover_ledger_secrets(value, shares);
    ASSERT_FALSE(recovered.ok());
    EXPECT_EQ(recovered.status().code(), Errc::kCrypto);
    EXPECT_TRUE(
        contains(recovered.status().message(), "shares do not reconstruct the wrapping key"))
        << recovered.status().message();
}

TEST(Recovery, ShareDecryptedWithAnotherMembersKeyFails) {
    auto members = make_members(2);
    RecoveryIssuance issuance = issue(make_secrets(1), members, 2);

    auto share = decrypt_share(issuance.shares.at(members[0].fingerprint),
                               members[1].keys.private_key, members[0].fingerprint);
    ASSERT_FALSE(share.ok());
    EXPECT_EQ(share.status().code(), Errc::kCrypto);
    EXPECT_TRUE(contains(share.status().message(), "cannot decrypt the recovery share"));
}

TEST(Recovery, ShareMovedToAnotherMembersRecordDoesNotOpen) {
    auto members = make_members(2);
    RecoveryIssuance issuance = issue(make_secrets(1), members, 2);

    // Right key, but the record claims another member: the AAD binds the fingerprint.
    auto share = decrypt_share(issuance.shares.at(members[0].fingerprint),
                               members[0].keys.private_key, members[1].fingerprint);
    ASSERT_FALSE(share.ok());
    EXPECT_EQ(share.status().code(), Errc::kCrypto);
}

TEST(Recovery, AlteredThresholdInShareValueDoesNotOpen) {
    auto members = make_members(3);
    RecoveryIssuance issuance = issue(make_secrets(1), members, 2);
    nlohmann::json value = issuance.shares.at(members[0].fingerprint);
    value["threshold"] = 1;

    auto share = decrypt_share(value, members[0].keys.private_key, members[0].fingerprint);
    ASSERT_FALSE(share.ok());
    EXPECT_EQ(share.status().code(), Errc::kCrypto);
}

TEST(Recovery, ShareFromEarlierIssuanceIsRefused) {
    auto members = make_members(3);
    auto secrets = make_secrets(1);
    RecoveryIssuance old_issuance = issue(secrets, members, 2);
    RecoveryIssuance new_issuance = issue(secrets, members, 2);
    ASSERT_NE(old_issuance.share_set, new_issuance.share_set);

    std::vector<Bytes> shares = {decrypt(old_issuance, members[0]),
                                 decrypt(new_issuance, members[1])};
    auto recovered = recover_ledger_secrets(new_issuance.recovery, shares);
    ASSERT_FALSE(recovered.ok());
    EXPECT_EQ(recovered.status().code(), Errc::kFailedPrecondition);
    EXPECT_TRUE(contains(recovered.status().message(), "share from another share set"));

    auto collector = ShareCollector::create(new_issuance.recovery);
    ASSERT_TRUE(collector.ok());
    Status submitted = collector->submit(decrypt(old_issuance, members[2]));
    EXPECT_EQ(submitted.code(), Errc::kFailedPrecondition);
    EXPECT_TRUE(contains(submitted.message(), "share from another share set"));
    EXPECT_EQ(collector->received(), 0u);
}

TEST(Recovery, CollectorRefusesDuplicateAndReportsProgress) {
    auto members = make_members(3);
    auto secrets = make_secrets(1);
    RecoveryIssuance issuance = issue(secrets, members, 2);
    auto collector = ShareCollector::create(issuance.recovery);
    ASSERT_TRUE(collector.ok()) << collector.status().to_string();
    EXPECT_EQ(collector->progress(), "0 of 2 shares received");

    Bytes first = decrypt(issuance, members[2]);
    ASSERT_TRUE(collector->submit(first).ok());
    EXPECT_EQ(collector->progress(), "1 of 2 shares received");
    EXPECT_FALSE(collector->complete());
    auto early = collector->recover();
    ASSERT_FALSE(early.ok());
    EXPECT_TRUE(contains(early.status().message(), "not enough shares (1 of 2)"));

    Status duplicate = collector->submit(first);
    EXPECT_EQ(duplicate.code(), Errc::kConflict);
    EXPECT_TRUE(contains(duplicate.message(), "already received"));
    EXPECT_EQ(collector->received(), 1u);

    ASSERT_TRUE(collector->submit(decrypt(issuance, members[0])).ok());
    EXPECT_TRUE(collector->complete());
    EXPECT_EQ(collector->progress(), "2 of 2 shares received");
    auto recovered = collector->recover();
    ASSERT_TRUE(recovered.ok()) << recovered.status().to_string();
    expect_same_secrets(recovered.value(), secrets);
}

TEST(Recovery, DuplicateSharesInRecoverAreRefused) {
    auto members = make_members(3);
    RecoveryIssuance issuance = issue(make_secrets(1), members, 2);
    Bytes share = decrypt(issuance, members[0]);
    std::vector<Bytes> shares = {share, share};

    auto recovered = recover_ledger_secrets(issuance.recovery, shares);
    ASSERT_FALSE(recovered.ok());
    EXPECT_EQ(recovered.status().code(), Errc::kConflict);
}

TEST(Recovery, CollectorRefusesMalformedShare) {
    auto members = make_members(2);
    RecoveryIssuance issuance = issue(make_secrets(1), members, 2);
    auto collector = ShareCollector::create(issuance.recovery);
    ASSERT_TRUE(collector.ok());

    Bytes good = decrypt(issuance, members[0]);
    Bytes truncated(good.begin(), good.end() - 1);
    EXPECT_EQ(collector->submit(truncated).code(), Errc::kInvalidArgument);
    Bytes bad_version = good;
    bad_version[0] = 2;
    EXPECT_EQ(collector->submit(bad_version).code(), Errc::kInvalidArgument);
    Bytes beyond_count = good;
    beyond_count[1 + kShareSetSize + 1] = 9;  // the Shamir point x
    EXPECT_EQ(collector->submit(beyond_count).code(), Errc::kInvalidArgument);
    EXPECT_EQ(collector->received(), 0u);
}

TEST(Recovery, SingleMemberThresholdOne) {
    auto members = make_members(1);
    auto secrets = make_secrets(2);
    RecoveryIssuance issuance = issue(secrets, members, 1);
    std::vector<Bytes> shares = {decrypt(issuance, members[0])};

    auto recovered = recover_ledger_secrets(issuance.recovery, shares);
    ASSERT_TRUE(recovered.ok()) << recovered.status().to_string();
    expect_same_secrets(recovered.value(), secrets);
}

TEST(Recovery, ThresholdOneOfThreeAnyShareAlone) {
    auto members = make_members(3);
    auto secrets = make_secrets(1);
    RecoveryIssuance issuance = issue(secrets, members, 1);
    for (const auto& m : members) {
        std::vector<Bytes> shares = {decrypt(issuance, m)};
        auto recovered = recover_ledger_secrets(issuance.recovery, shares);
        ASSERT_TRUE(recovered.ok()) << recovered.status().to_string();
        expect_same_secrets(recovered.value(), secrets);
    }
}

TEST(Recovery, ThresholdOutsideOneToMemberCountIsRefused) {
    auto members = make_members(2);
    auto zero = issue_recovery_shares(make_secrets(1), recipients(members), 0);
    EXPECT_EQ(zero.status().code(), Errc::kInvalidArgument);
    auto too_high = issue_recovery_shares(make_secrets(1), recipients(members), 3);
    EXPECT_EQ(too_high.status().code(), Errc::kInvalidArgument);
    EXPECT_TRUE(contains(too_high.status().message(), "threshold 3 is outside 1..2"));
    auto nobody = issue_recovery_shares(make_secrets(1), RecoveryMembers{}, 1);
    EXPECT_EQ(nobody.status().code(), Errc::kInvalidArgument);
}

TEST(Recovery, IssueRefusesBadSecretsAndMembers) {
    auto members = recipients(make_members(2));
    auto none = issue_recovery_shares({}, members, 1);
    EXPECT_EQ(none.status().code(), Errc::kInvalidArgument);

    auto secrets = make_secrets(2);
    std::swap(secrets[0], secrets[1]);
    auto unordered = issue_recovery_shares(secrets, members, 1);
    EXPECT_EQ(unordered.status().code(), Errc::kInvalidArgument);

    auto short_key = make_secrets(1);
    short_key[0].key.pop_back();
    EXPECT_EQ(issue_recovery_shares(short_key, members, 1).status().code(), Errc::kInvalidArgument);

    RecoveryMembers bad_fingerprint = {{"ABC", crypto::x25519_generate().public_key}};
    EXPECT_EQ(issue_recovery_shares(make_secrets(1), bad_fingerprint, 1).status().code(),
              Errc::kInvalidArgument);

    // A low-order point (the all-zero key) would give every observer the shared secret.
    RecoveryMembers low_order = {{fingerprint_of("m"), Bytes(32, 0)}};
    auto refused = issue_recovery_shares(make_secrets(1), low_order, 1);
    EXPECT_EQ(refused.status().code(), Errc::kCrypto);
    EXPECT_TRUE(contains(refused.status().message(), fingerprint_of("m")));
}

TEST(Recovery, AllLedgerSecretVersionsRoundTrip) {
    auto members = make_members(4);
    std::vector<ledger::LedgerSecret> secrets = {
        ledger::make_random_ledger_secret(1), ledger::make_random_ledger_secret(2),
        ledger::make_random_ledger_secret(7), ledger::make_random_ledger_secret(40)};
    RecoveryIssuance issuance = issue(secrets, members, 3);
    std::vector<Bytes> shares = {decrypt(issuance, members[3]), decrypt(issuance, members[0]),
                                 decrypt(issuance, members[2])};

    auto recovered = recover_ledger_secrets(issuance.recovery, shares);
    ASSERT_TRUE(recovered.ok()) << recovered.status().to_string();
    expect_same_secrets(recovered.value(), secrets);
}

TEST(Recovery, ValuesStoredAsJsonTextStillRecover) {
    // The governance maps hold compact JSON text; numbers come back as unsigned integers.
    auto members = make_members(3);
    auto secrets = make_secrets(2);
    RecoveryIssuance issuance = issue(secrets, members, 2);
    nlohmann::json recovery = nlohmann::json::parse(issuance.recovery.dump());
    std::vector<Bytes> shares;
    for (size_t i = 0; i < 2; ++i) {
        nlohmann::json value =
            nlohmann::json::parse(issuance.shares.at(members[i].fingerprint).dump());
        auto share = decrypt_share(value, members[i].keys.private_key, members[i].fingerprint);
        ASSERT_TRUE(share.ok()) << share.status().to_string();
        shares.push_back(std::move(share).value());
    }

    auto recovered = recover_ledger_secrets(recovery, shares);
    ASSERT_TRUE(recovered.ok()) << recovered.status().to_string();
    expect_same_secrets(recovered.value(), secrets);
}

TEST(Recovery, MaximumMemberCountRoundTripsAndOneMoreIsRefused) {
    auto members = make_members(kMaxRecoveryMembers);
    auto secrets = make_secrets(1);
    RecoveryIssuance issuance = issue(secrets, members, 3);
    EXPECT_EQ(issuance.recovery["share_count"], kMaxRecoveryMembers);
    std::vector<Bytes> shares = {decrypt(issuance, members[254]), decrypt(issuance, members[0]),
                                 decrypt(issuance, members[100])};
    EXPECT_EQ(shares[0][1 + kShareSetSize + 1], 255);  // the last point

    auto recovered = recover_ledger_secrets(issuance.recovery, shares);
    ASSERT_TRUE(recovered.ok()) << recovered.status().to_string();
    expect_same_secrets(recovered.value(), secrets);

    RecoveryMembers too_many = recipients(members);
    too_many.emplace(fingerprint_of("one more"), crypto::x25519_generate().public_key);
    auto refused = issue_recovery_shares(secrets, too_many, 3);
    EXPECT_EQ(refused.status().code(), Errc::kInvalidArgument);
}

TEST(Recovery, ShareTextRoundTrip) {
    auto members = make_members(2);
    RecoveryIssuance issuance = issue(make_secrets(1), members, 2);
    Bytes share = decrypt(issuance, members[0]);
    ASSERT_EQ(share.size(), kRecoveryShareSize);

    std::string text = recovery_share_to_text(share);
    EXPECT_EQ(text.size(), 92u);
    auto parsed = recovery_share_from_text(text);
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(parsed.value(), share);

    EXPECT_EQ(recovery_share_from_text(text + " ").status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(recovery_share_from_text("AAAA").status().code(), Errc::kInvalidArgument);
}

TEST(Recovery, MalformedRecoveryValuesAreRefused) {
    auto members = make_members(2);
    RecoveryIssuance issuance = issue(make_secrets(1), members, 2);
    std::vector<Bytes> shares = {decrypt(issuance, members[0]), decrypt(issuance, members[1])};
    auto refuse = [&](const nlohmann::json& value, Errc code, std::string_view text) {
        auto recovered = recover_ledger_secrets(value, shares);
        ASSERT_FALSE(recovered.ok());
        EXPECT_EQ(recovered.status().code(), code) << recovered.status().to_string();
        EXPECT_TRUE(contains(recovered.status().message(), text)) << recovered.status().message();
    };

    refuse(nlohmann::json::array(), Errc::kInvalidArgument, "not a JSON object");
    nlohmann::json v = issuance.recovery;
    v["version"] = 2;
    refuse(v, Errc::kUnsupported, "version 2");
    v = issuance.recovery;
    v.erase("threshold");
    refuse(v, Errc::kInvalidArgument, "\"threshold\"");
    v = issuance.recovery;
    v["threshold"] = "2";
    refuse(v, Errc::kInvalidArgument, "\"threshold\"");
    v = issuance.recovery;
    v["threshold"] = 3;
    refuse(v, Errc::kCorrupt, "threshold exceeds");
    v = issuance.recovery;
    v["wrapped_ledger_secrets"] = "zz";
    refuse(v, Errc::kInvalidArgument, "not hex");
    v = issuance.recovery;
    std::string wrapped = v["wrapped_ledger_secrets"];
    wrapped[40] = wrapped[40] == '0' ? '1' : '0';
    v["wrapped_ledger_secrets"] = wrapped;
    refuse(v, Errc::kCorrupt, "share_set is not the digest");
    v = issuance.recovery;
    v["share_digests"].erase(1);
    refuse(v, Errc::kInvalidArgument, "share_digests");
    v = issuance.recovery;
    v.erase("share_digests");
    refuse(v, Errc::kInvalidArgument, "share_digests");
    v = issuance.recovery;
    v["previous_service_fingerprints"] = {"nope"};
    refuse(v, Errc::kInvalidArgument, "previous_service_fingerprints");
}

TEST(Recovery, ThresholdAlteredInRecoveryValueDoesNotUnwrap) {
    // Three shares of a 2-of-3 split still interpolate to the right key with k = 3; only the
    // wrap's AAD (which binds threshold and share count) shows that the value was edited.
    auto members = make_members(3);
    RecoveryIssuance issuance = issue(make_secrets(1), members, 2);
    std::vector<Bytes> shares = {decrypt(issuance, members[0]), decrypt(issuance, members[1]),
                                 decrypt(issuance, members[2])};
    ASSERT_TRUE(recover_ledger_secrets(issuance.recovery, shares).ok());

    nlohmann::json v = issuance.recovery;
    v["threshold"] = 3;
    auto recovered = recover_ledger_secrets(v, shares);
    ASSERT_FALSE(recovered.ok());
    EXPECT_EQ(recovered.status().code(), Errc::kCrypto);
}

TEST(Recovery, MalformedShareValuesAreRefused) {
    auto members = make_members(2);
    RecoveryIssuance issuance = issue(make_secrets(1), members, 2);
    const TestMember& m = members[0];
    auto refuse = [&](const nlohmann::json& value, Errc code) {
        auto share = decrypt_share(value, m.keys.private_key, m.fingerprint);
        ASSERT_FALSE(share.ok());
        EXPECT_EQ(share.status().code(), code) << share.status().to_string();
    };

    refuse("text", Errc::kInvalidArgument);
    nlohmann::json v = issuance.shares.at(m.fingerprint);
    v.erase("enc");
    refuse(v, Errc::kInvalidArgument);
    v = issuance.shares.at(m.fingerprint);
    v["encrypted_share"] = "00";
    refuse(v, Errc::kInvalidArgument);
    v = issuance.shares.at(m.fingerprint);
    v["version"] = 9;
    refuse(v, Errc::kUnsupported);
    v = issuance.shares.at(m.fingerprint);
    std::string ct = v["encrypted_share"];
    ct[0] = ct[0] == 'a' ? 'b' : 'a';
    v["encrypted_share"] = ct;
    refuse(v, Errc::kCrypto);

    auto bad_fp = decrypt_share(issuance.shares.at(m.fingerprint), m.keys.private_key, "xyz");
    EXPECT_EQ(bad_fp.status().code(), Errc::kInvalidArgument);
}

TEST(Recovery, ErrorMessagesHoldNoSecrets) {
    auto members = make_members(3);
    auto secrets = make_secrets(1);
    RecoveryIssuance issuance = issue(secrets, members, 2);
    Bytes a = decrypt(issuance, members[0]);
    Bytes b = decrypt(issuance, members[1]);
    Bytes forged = a;
    forged.back() ^= 0x80;

    std::vector<std::string> messages;
    std::vector<Bytes> forged_pair = {forged, b};
    messages.push_back(recover_ledger_secrets(issuance.recovery, forged_pair).status().message());
    std::vector<Bytes> duplicate = {a, a};
    messages.push_back(recover_ledger_secrets(issuance.recovery, duplicate).status().message());
    std::vector<Bytes> one = {a};
    messages.push_back(recover_ledger_secrets(issuance.recovery, one).status().message());
    messages.push_back(decrypt_share(issuance.shares.at(members[0].fingerprint),
                                     members[1].keys.private_key, members[0].fingerprint)
                           .status()
                           .message());

    std::vector<std::string> secret_hex = {to_hex(secrets[0].key),
                                           to_hex(a),
                                           to_hex(b),
                                           to_hex(ByteSpan(a).subspan(1 + kShareSetSize + 4)),
                                           to_hex(members[0].keys.private_key),
                                           recovery_share_to_text(a)};
    for (const auto& message : messages) {
        EXPECT_FALSE(message.empty());
        for (const auto& secret : secret_hex) {
            EXPECT_FALSE(contains(message, secret)) << message;
            // Also no 16-character window of a secret (a partial hex dump).
            EXPECT_FALSE(contains(message, secret.substr(secret.size() - 16))) << message;
        }
    }
}

TEST(RecoveryFormat, WrappedBlobAndShareSetFollowTheSpec) {
    auto members = make_members(2);
    RecoveryIssuance issuance = issue(make_secrets(3), members, 2);
    auto blob = from_hex(issuance.recovery["wrapped_ledger_secrets"].get<std::string>());
    ASSERT_TRUE(blob.ok());

    EXPECT_EQ(blob->size(), 33u + 36u * 3u);
    EXPECT_EQ((*blob)[0], 1);
    EXPECT_EQ(to_hex(crypto::sha256(blob.value())), issuance.share_set);
    EXPECT_EQ(issuance.recovery["version"], 1);
    EXPECT_TRUE(issuance.recovery["previous_service_fingerprints"].is_array());
}

TEST(RecoveryFormat, ShareValueOpensWithTheDocumentedInfoAndAad) {
    auto members = make_members(2);
    RecoveryIssuance issuance = issue(make_secrets(1), members, 2);
    const TestMember& m = members[1];
    const nlohmann::json& value = issuance.shares.at(m.fingerprint);
    auto enc = from_hex(value["enc"].get<std::string>());
    auto ciphertext = from_hex(value["encrypted_share"].get<std::string>());
    auto share_set = from_hex(issuance.share_set);
    ASSERT_TRUE(enc.ok() && ciphertext.ok() && share_set.ok());
    EXPECT_EQ(ciphertext->size(), 85u);

    Bytes aad = share_set.value();
    put_bytes(aad, as_bytes(m.fingerprint));
    put_u32(aad, 2);
    ASSERT_EQ(aad.size(), 100u);
    auto plain = crypto::hpke_open(crypto::HpkeSuite{}, m.keys.private_key, enc.value(),
                                   as_bytes("coffer-recovery-share-v1"), aad, ciphertext.value());
    ASSERT_TRUE(plain.ok()) << plain.status().to_string();

    // version || share_set || Shamir share (version 1, x, u16 length 32, y).
    ASSERT_EQ(plain->size(), 69u);
    EXPECT_EQ((*plain)[0], 1);
    EXPECT_EQ(Bytes(plain->begin() + 1, plain->begin() + 33), share_set.value());
    EXPECT_EQ((*plain)[33], 1);
    EXPECT_EQ((*plain)[34], 2);  // second member in fingerprint order
    EXPECT_EQ((*plain)[35], 32);
    EXPECT_EQ((*plain)[36], 0);
    EXPECT_EQ(plain.value(), decrypt(issuance, m));
}

TEST(Recovery, MembersFromGovernanceSkipMembersWithoutKey) {
    auto keys = crypto::x25519_generate();
    auto pem = crypto::x25519_public_to_pem(keys.public_key);
    ASSERT_TRUE(pem.ok());
    std::map<std::string, nlohmann::json> map = {
        {fingerprint_of("a"), {{"encryption_public_key", pem.value()}, {"status", "active"}}},
        {fingerprint_of("b"), {{"encryption_public_key", nullptr}, {"status", "active"}}},
        {fingerprint_of("c"), {{"status", "active"}}},
        {fingerprint_of("d"), {{"encryption_public_key", pem.value()}, {"status", "retired"}}}};

    auto members = recovery_members_from_governance(map);
    ASSERT_TRUE(members.ok()) << members.status().to_string();
    ASSERT_EQ(members->size(), 1u);
    EXPECT_EQ(members->at(fingerprint_of("a")), keys.public_key);

    map[fingerprint_of("e")] = {{"encryption_public_key", "not a pem"}, {"status", "active"}};
    EXPECT_EQ(recovery_members_from_governance(map).status().code(), Errc::kInvalidArgument);
}

}  // namespace
}  // namespace coffer::gov
