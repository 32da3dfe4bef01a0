// Identities: the service identity (the key and self-signed certificate clients pin), a
// node's own key and certificate endorsed by the service identity, and member/user client
// identities (`coffer keygen`). docs/node.md, section "Identities".
//
// Every signing key is ECDSA P-384; certificates are made by crypto/x509.h. Pure functions
// of their inputs and OpenSSL's randomness: thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "crypto/ecdsa.h"
#include "crypto/x509.h"

namespace coffer::node {

constexpr std::string_view kServiceCommonName = "Coffer Service";

struct ServiceIdentity {
    crypto::EcdsaPrivateKey key;
    crypto::Certificate cert;  // self-signed CA certificate
};

struct NodeIdentity {
    std::string node_id;  // node_id_of(key's public key)
    crypto::EcdsaPrivateKey key;
    crypto::Certificate cert;  // issued by the service identity
};

// A node's id: SHA-256 of the DER SubjectPublicKeyInfo of its key, lower-case hex, so that
// anyone holding the node certificate can recompute it.
std::string node_id_of(const crypto::EcdsaPublicKey& key);

// A fresh service key and self-signed CA certificate valid [now - 60 s, now + validity_s].
// The minute of slack lets clients with a slightly slow clock accept it.
// Errors: kInternal from OpenSSL; kInvalidArgument for validity_s <= 0.
Result<ServiceIdentity> make_service_identity(int64_t now_unix, int64_t validity_s);

// A fresh node key and a certificate for it issued by `service`, valid
// [now - 60 s, now + validity_s], with subjectAltName IP entries for `ip_addresses` (the
// unspecified addresses 0.0.0.0 and :: are replaced by the loopback ones) and DNS
// "localhost". Errors as make_service_identity; kInvalidArgument for a bad IP literal.
Result<NodeIdentity> make_node_identity(const ServiceIdentity& service,
                                        const std::vector<std::string>& ip_addresses,
                                        int64_t now_unix, int64_t validity_s);

// A certificate for `node_key` issued by `service`, as make_node_identity makes (used when
// the network admits a joining node, which made its own key). Errors as make_node_identity.
Result<crypto::Certificate> issue_node_certificate(const ServiceIdentity& service,
                                                   const crypto::EcdsaPublicKey& node_key,
                                                   const std::vector<std::string>& ip_addresses,
                                                   int64_t now_unix, int64_t validity_s);

// A member or user identity: a P-384 key with a self-signed certificate (CN = name) and an
// X25519 encryption key pair, all as PEM text. The private parts are secrets.
struct ClientIdentityPem {
    std::string private_key_pem;
    std::string certificate_pem;
    std::string encryption_private_key_pem;
    std::string encryption_public_key_pem;
};

// Errors: kInvalidArgument for an empty name; kInternal from OpenSSL.
Result<ClientIdentityPem> make_client_identity(const std::string& name, int64_t now_unix,
                                               int64_t validity_s);

}  // namespace coffer::node
