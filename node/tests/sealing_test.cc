#include <gtest/gtest.h>

#include <ctime>

#include "crypto/random.h"
#include "node/sealing.h"

namespace coffer::node {
namespace {

NodeSecrets make_secrets() {
    int64_t now = static_cast<int64_t>(std::time(nullptr));
    auto service = make_service_identity(now, 3600);
    EXPECT_TRUE(service.ok());
    auto node = make_node_identity(*service, {"127.0.0.1"}, now, 3600);
    EXPECT_TRUE(node.ok());
    std::vector<ledger::LedgerSecret> secrets = {ledger::make_random_ledger_secret(1)};
    return NodeSecrets{*service, *node, secrets, {}};
}

TEST(Sealing, UnsealGivesBackEverySecret) {
    NodeSecrets secrets = make_secrets();
    Bytes key = crypto::random_bytes(kSealingKeySize);
    auto sealed = seal_secrets(secrets, key);
    ASSERT_TRUE(sealed.ok());
    auto opened = unseal_secrets(*sealed, key);
    ASSERT_TRUE(opened.ok()) << opened.status().to_string();
    EXPECT_EQ(opened->node.node_id, secrets.node.node_id);
    EXPECT_EQ(opened->service.cert.der(), secrets.service.cert.der());
    EXPECT_EQ(opened->node.key.public_key(), secrets.node.key.public_key());
    ASSERT_EQ(opened->ledger_secrets.size(), 1u);
    EXPECT_EQ(opened->ledger_secrets[0].key, secrets.ledger_secrets[0].key);
}

TEST(Sealing, EncryptionKeyRoundTripsAndAFileWithoutOneStillUnseals) {
    NodeSecrets secrets = make_secrets();
    secrets.encryption = crypto::x25519_generate();
    Bytes key = crypto::random_bytes(kSealingKeySize);
    auto opened = unseal_secrets(seal_secrets(secrets, key).value(), key);
    ASSERT_TRUE(opened.ok()) << opened.status().to_string();
    EXPECT_EQ(opened->encryption.private_key, secrets.encryption.private_key);
    EXPECT_EQ(opened->encryption.public_key, secrets.encryption.public_key);

    // Files sealed before nodes had an encryption key carry no encryption_key member.
    NodeSecrets older = make_secrets();
    auto old_opened = unseal_secrets(seal_secrets(older, key).value(), key);
    ASSERT_TRUE(old_opened.ok()) << old_opened.status().to_string();
    EXPECT_TRUE(old_opened->encryption.private_key.empty());
}

TEST(Sealing, SealedFileHoldsNoKeyInClear) {
    NodeSecrets secrets = make_secrets();
    Bytes key = crypto::random_bytes(kSealingKeySize);
    auto sealed = seal_secrets(secrets, key);
    ASSERT_TRUE(sealed.ok());
    EXPECT_EQ(sealed->find("PRIVATE KEY"), std::string::npos);
    EXPECT_EQ(sealed->find(to_hex(secrets.ledger_secrets[0].key)), std::string::npos);
}

TEST(Sealing, WrongKeyOrModifiedFileIsRefused) {
    NodeSecrets secrets = make_secrets();
    Bytes key = crypto::random_bytes(kSealingKeySize);
    auto sealed = seal_secrets(secrets, key);
    ASSERT_TRUE(sealed.ok());
    Bytes other = crypto::random_bytes(kSealingKeySize);
    EXPECT_EQ(unseal_secrets(*sealed, other).status().code(), Errc::kCrypto);

    std::string modified = *sealed;
    size_t at = modified.find("\"ciphertext\": \"") + 20;
    modified[at] = modified[at] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(unseal_secrets(modified, key).ok());

    std::string future = *sealed;
    future.replace(future.find("\"version\": 1"), 12, "\"version\": 2");
    EXPECT_EQ(unseal_secrets(future, key).status().code(), Errc::kUnsupported);
}

TEST(Identity, NodeCertificateIsIssuedByTheServiceAndNamesItsAddresses) {
    int64_t now = static_cast<int64_t>(std::time(nullptr));
    auto service = make_service_identity(now, 3600);
    ASSERT_TRUE(service.ok());
    auto node = make_node_identity(*service, {"0.0.0.0", "10.1.2.3"}, now, 60);
    ASSERT_TRUE(node.ok());
    EXPECT_TRUE(node->cert.verify_signed_by(service->key.public_key()).ok());
    EXPECT_TRUE(service->cert.is_ca());
    EXPECT_FALSE(node->cert.is_ca());
    EXPECT_EQ(node->cert.not_after_unix(), now + 60);
    EXPECT_EQ(node->node_id, node_id_of(node->key.public_key()));
    EXPECT_EQ(node->node_id.size(), 64u);
}

TEST(Identity, ClientIdentityHasMatchingKeys) {
    auto id = make_client_identity("alice", static_cast<int64_t>(std::time(nullptr)), 3600);
    ASSERT_TRUE(id.ok());
    auto cert = crypto::Certificate::from_pem(id->certificate_pem);
    auto key = crypto::EcdsaPrivateKey::from_pem(id->private_key_pem);
    ASSERT_TRUE(cert.ok());
    ASSERT_TRUE(key.ok());
    EXPECT_EQ(cert->subject_common_name(), "alice");
    EXPECT_EQ(*cert->ecdsa_public_key(), key->public_key());
    EXPECT_FALSE(make_client_identity("", 0, 1).ok());
}

}  // namespace
}  // namespace coffer::node
