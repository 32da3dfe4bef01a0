// Sealing: the node's secrets (service key, node key, ledger secrets) encrypted so that only
// this node, on this platform, can read them back at restart. Format, byte by byte:
// docs/formats/sealed-secrets.md.
//
// The virtual platform seals with a random AES-256 key kept in a file (the sealing key
// file). That is as insecure as everything virtual: whoever reads the key file reads the
// secrets. On a TEE the sealing key would be derived by the hardware from the measurement
// (Not supported yet: hardware sealing keys, because no machine we run on has a TEE).
//
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/x25519.h"
#include "ledger/secrets.h"
#include "node/identity.h"

namespace coffer::node {

constexpr int kSealedSecretsVersion = 1;
constexpr size_t kSealingKeySize = 32;
// Bound on the sealed file (a few keys and certificates, and one secret per rekey).
constexpr size_t kMaxSealedSecretsBytes = 1 << 20;
// Additional authenticated data of the AES-GCM seal: binds the ciphertext to this format.
constexpr std::string_view kSealedSecretsAad = "coffer-sealed-secrets-v1";

struct NodeSecrets {
    ServiceIdentity service;
    NodeIdentity node;
    std::vector<ledger::LedgerSecret> ledger_secrets;  // increasing versions, at least one
    // The node's X25519 key pair: rekeys seal new ledger secrets to its public key, which the
    // nodes map publishes (docs/ledger.md, "Rekey"). Empty in a file sealed before nodes had
    // one; Node::open then makes one.
    crypto::X25519KeyPair encryption;
};

// The JSON text of the sealed file: secrets serialised, AES-256-GCM encrypted under
// `sealing_key` (32 bytes) with a fresh random 12-byte IV.
// Errors: kInvalidArgument for a key of the wrong size or no ledger secret.
Result<std::string> seal_secrets(const NodeSecrets& secrets, ByteSpan sealing_key);

// Inverse of seal_secrets. Errors: kUnsupported for another version or platform;
// kInvalidArgument for a malformed file; kCrypto when the tag does not verify (wrong
// sealing key or a modified file); kCorrupt when the decrypted content is inconsistent
// (node id not matching the node key, node certificate not issued by the service).
Result<NodeSecrets> unseal_secrets(std::string_view sealed_json, ByteSpan sealing_key);

// Reads the sealing key file (exactly kSealingKeySize bytes). Errors: kNotFound, kIo,
// kCorrupt for a file of another size.
Result<Bytes> read_sealing_key(const std::string& path);

// Creates a new sealing key file (0600) with fresh random bytes and returns them.
// Errors: kFailedPrecondition if the file exists; kIo, kNoSpace.
Result<Bytes> create_sealing_key(const std::string& path);

}  // namespace coffer::node
