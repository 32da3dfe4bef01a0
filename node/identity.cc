#include "node/identity.h"

#include "crypto/sha256.h"
#include "crypto/x25519.h"

namespace coffer::node {

namespace {

// Certificates start a minute in the past so that a client whose clock runs slightly behind
// does not reject a certificate made a moment ago.
constexpr int64_t kNotBeforeSlackS = 60;

Status check_validity(int64_t validity_s) {
    if (validity_s <= 0) {
        return error(Errc::kInvalidArgument, "certificate validity must be positive");
    }
    return Status();
}

std::string san_address(const std::string& ip) {
    if (ip == "0.0.0.0") {
        return "127.0.0.1";
    }
    if (ip == "::") {
        return "::1";
    }
    return ip;
}

}  // namespace

std::string node_id_of(const crypto::EcdsaPublicKey& key) {
    return to_hex(crypto::sha256(key.to_der()));
}

Result<ServiceIdentity> make_service_identity(int64_t now_unix, int64_t validity_s) {
    COFFER_RETURN_IF_ERROR(check_validity(validity_s));
    COFFER_ASSIGN_OR_RETURN(crypto::EcdsaPrivateKey key, crypto::EcdsaPrivateKey::generate());
    crypto::CertificateOptions options;
    options.common_name = std::string(kServiceCommonName);
    options.not_before_unix = now_unix - kNotBeforeSlackS;
    options.not_after_unix = now_unix + validity_s;
    options.is_ca = true;
    COFFER_ASSIGN_OR_RETURN(crypto::Certificate cert,
                            crypto::make_self_signed_certificate(key, options));
    return ServiceIdentity{std::move(key), std::move(cert)};
}

Result<crypto::Certificate> issue_node_certificate(const ServiceIdentity& service,
                                                   const crypto::EcdsaPublicKey& node_key,
                                                   const std::vector<std::string>& ip_addresses,
                                                   int64_t now_unix, int64_t validity_s) {
    COFFER_RETURN_IF_ERROR(check_validity(validity_s));
    std::string id = node_id_of(node_key);
    crypto::CertificateOptions options;
    options.common_name = "Coffer Node " + id.substr(0, 16);
    options.not_before_unix = now_unix - kNotBeforeSlackS;
    options.not_after_unix = now_unix + validity_s;
    options.dns_names = {"localhost"};
    for (const std::string& ip : ip_addresses) {
        std::string san = san_address(ip);
        bool seen = false;
        for (const std::string& existing : options.ip_addresses) {
            seen = seen || existing == san;
        }
        if (!seen) {
            options.ip_addresses.push_back(san);
        }
    }
    return crypto::make_issued_certificate(node_key, options, service.key, service.cert);
}

Result<NodeIdentity> make_node_identity(const ServiceIdentity& service,
                                        const std::vector<std::string>& ip_addresses,
                                        int64_t now_unix, int64_t validity_s) {
    COFFER_RETURN_IF_ERROR(check_validity(validity_s));
    COFFER_ASSIGN_OR_RETURN(crypto::EcdsaPrivateKey key, crypto::EcdsaPrivateKey::generate());
    COFFER_ASSIGN_OR_RETURN(
        crypto::Certificate cert,
        issue_node_certificate(service, key.public_key(), ip_addresses, now_unix, validity_s));
    std::string id = node_id_of(key.public_key());
    return NodeIdentity{std::move(id), std::move(key), std::move(cert)};
}

Result<ClientIdentityPem> make_client_identity(const std::string& name, int64_t now_unix,
                                               int64_t validity_s) {
    if (name.empty()) {
        return error(Errc::kInvalidArgument, "the identity name must not be empty");
    }
    COFFER_RETURN_IF_ERROR(check_validity(validity_s));
    COFFER_ASSIGN_OR_RETURN(crypto::EcdsaPrivateKey key, crypto::EcdsaPrivateKey::generate());
    crypto::CertificateOptions options;
    options.common_name = name;
    options.not_before_unix = now_unix - kNotBeforeSlackS;
    options.not_after_unix = now_unix + validity_s;
    COFFER_ASSIGN_OR_RETURN(crypto::Certificate cert,
                            crypto::make_self_signed_certificate(key, options));

    crypto::X25519KeyPair enc = crypto::x25519_generate();
    COFFER_ASSIGN_OR_RETURN(std::string enc_private,
                            crypto::x25519_private_to_pem(enc.private_key));
    COFFER_ASSIGN_OR_RETURN(std::string enc_public, crypto::x25519_public_to_pem(enc.public_key));
    return ClientIdentityPem{key.to_pem(), cert.to_pem(), std::move(enc_private),
                             std::move(enc_public)};
}

}  // namespace coffer::node
