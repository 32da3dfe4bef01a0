#include "node/sealing.h"

#include <openssl/crypto.h>

#include <nlohmann/json.hpp>

#include "crypto/aead.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "net/http.h"
#include "node/files.h"

namespace coffer::node {

namespace {

using nlohmann::json;

constexpr std::string_view kFormatName = "coffer-sealed-secrets";
constexpr size_t kMaxSealedJsonDepth = 4;

// Wipes a string that held key material before its memory is released.
struct WipedString {
    std::string text;
    ~WipedString() {
        if (!text.empty()) {
            OPENSSL_cleanse(text.data(), text.size());
        }
    }
};

json secrets_to_json(const NodeSecrets& secrets) {
    json ledger_secrets = json::array();
    for (const ledger::LedgerSecret& s : secrets.ledger_secrets) {
        ledger_secrets.push_back({{"version", s.version}, {"key", crypto::base64_encode(s.key)}});
    }
    json out{{"node_id", secrets.node.node_id},
             {"service_key", secrets.service.key.to_pem()},
             {"service_cert", secrets.service.cert.to_pem()},
             {"node_key", secrets.node.key.to_pem()},
             {"node_cert", secrets.node.cert.to_pem()},
             {"ledger_secrets", std::move(ledger_secrets)}};
    if (!secrets.encryption.private_key.empty()) {
        out["encryption_key"] = crypto::base64_encode(secrets.encryption.private_key);
    }
    return out;
}

// The optional encryption_key member (absent in files sealed before nodes had one).
Result<crypto::X25519KeyPair> encryption_key_from_json(const json& j) {
    auto it = j.find("encryption_key");
    if (it == j.end()) {
        return crypto::X25519KeyPair{};
    }
    auto key = it->is_string() ? crypto::base64_decode(it->get<std::string>())
                               : Result<Bytes>(error(Errc::kCorrupt, "not a string"));
    auto pair =
        key.ok() ? crypto::x25519_from_private(*key) : Result<crypto::X25519KeyPair>(key.status());
    if (key.ok()) {
        OPENSSL_cleanse(key->data(), key->size());
    }
    if (!pair.ok()) {
        return error(Errc::kCorrupt, "sealed secrets: malformed encryption_key");
    }
    return std::move(pair).value();
}

Result<std::string> string_field(const json& j, const char* name) {
    auto it = j.find(name);
    if (it == j.end() || !it->is_string()) {
        return error(Errc::kCorrupt,
                     std::string("sealed secrets: field ") + name + " missing or not a string");
    }
    return it->get<std::string>();
}

Result<std::vector<ledger::LedgerSecret>> ledger_secrets_from_json(const json& j) {
    auto it = j.find("ledger_secrets");
    if (it == j.end() || !it->is_array() || it->empty() || it->size() > ledger::kMaxLedgerSecrets) {
        return error(Errc::kCorrupt, "sealed secrets: ledger_secrets must be a non-empty array");
    }
    std::vector<ledger::LedgerSecret> out;
    for (const json& s : *it) {
        if (!s.is_object() || !s.contains("version") || !s["version"].is_number_unsigned() ||
            s["version"].get<uint64_t>() > UINT32_MAX || !s.contains("key") ||
            !s["key"].is_string()) {
            return error(Errc::kCorrupt, "sealed secrets: malformed ledger secret");
        }
        auto key = crypto::base64_decode(s["key"].get<std::string>());
        if (!key.ok() || key->size() != ledger::kLedgerSecretSize) {
            return error(Errc::kCorrupt, "sealed secrets: malformed ledger secret key");
        }
        out.push_back(ledger::LedgerSecret{static_cast<uint32_t>(s["version"].get<uint64_t>()),
                                           std::move(key).value()});
    }
    return out;
}

Result<NodeSecrets> secrets_from_json(const json& j) {
    COFFER_ASSIGN_OR_RETURN(std::string node_id, string_field(j, "node_id"));
    WipedString service_key_pem;
    WipedString node_key_pem;
    COFFER_ASSIGN_OR_RETURN(service_key_pem.text, string_field(j, "service_key"));
    COFFER_ASSIGN_OR_RETURN(node_key_pem.text, string_field(j, "node_key"));
    COFFER_ASSIGN_OR_RETURN(std::string service_cert_pem, string_field(j, "service_cert"));
    COFFER_ASSIGN_OR_RETURN(std::string node_cert_pem, string_field(j, "node_cert"));

    auto service_key = crypto::EcdsaPrivateKey::from_pem(service_key_pem.text);
    auto node_key = crypto::EcdsaPrivateKey::from_pem(node_key_pem.text);
    auto service_cert = crypto::Certificate::from_pem(service_cert_pem);
    auto node_cert = crypto::Certificate::from_pem(node_cert_pem);
    if (!service_key.ok() || !node_key.ok() || !service_cert.ok() || !node_cert.ok()) {
        return error(Errc::kCorrupt, "sealed secrets: unparsable key or certificate");
    }
    if (node_id_of(node_key->public_key()) != node_id) {
        return error(Errc::kCorrupt, "sealed secrets: node id does not match the node key");
    }
    if (!node_cert->verify_signed_by(service_key->public_key()).ok()) {
        return error(Errc::kCorrupt,
                     "sealed secrets: node certificate not issued by the service key");
    }
    COFFER_ASSIGN_OR_RETURN(auto ledger_secrets, ledger_secrets_from_json(j));
    COFFER_ASSIGN_OR_RETURN(crypto::X25519KeyPair encryption, encryption_key_from_json(j));
    return NodeSecrets{
        ServiceIdentity{std::move(service_key).value(), std::move(service_cert).value()},
        NodeIdentity{std::move(node_id), std::move(node_key).value(), std::move(node_cert).value()},
        std::move(ledger_secrets), std::move(encryption)};
}

}  // namespace

Result<std::string> seal_secrets(const NodeSecrets& secrets, ByteSpan sealing_key) {
    if (sealing_key.size() != kSealingKeySize) {
        return error(Errc::kInvalidArgument, "sealing key must be 32 bytes");
    }
    if (secrets.ledger_secrets.empty()) {
        return error(Errc::kInvalidArgument, "nothing to seal: no ledger secret");
    }
    WipedString plaintext{secrets_to_json(secrets).dump()};
    Bytes iv = crypto::random_bytes(crypto::kAesGcmStandardIvSize);
    COFFER_ASSIGN_OR_RETURN(Bytes sealed,
                            crypto::aes_gcm_seal(sealing_key, iv, as_bytes(kSealedSecretsAad),
                                                 as_bytes(plaintext.text)));
    json out = {{"format", std::string(kFormatName)},
                {"version", kSealedSecretsVersion},
                {"platform", "virtual"},
                {"iv", crypto::base64_encode(iv)},
                {"ciphertext", crypto::base64_encode(sealed)}};
    return out.dump(2) + "\n";
}

Result<NodeSecrets> unseal_secrets(std::string_view sealed_json, ByteSpan sealing_key) {
    if (sealing_key.size() != kSealingKeySize) {
        return error(Errc::kInvalidArgument, "sealing key must be 32 bytes");
    }
    auto doc = net::parse_json(sealed_json, kMaxSealedJsonDepth);
    if (!doc.ok() || !doc->is_object()) {
        return error(Errc::kInvalidArgument, "sealed secrets: not a JSON object");
    }
    const json& j = *doc;
    if (!j.contains("format") || j["format"] != std::string(kFormatName) ||
        !j.contains("version") || !j["version"].is_number_unsigned()) {
        return error(Errc::kInvalidArgument, "sealed secrets: missing format or version");
    }
    if (j["version"].get<uint64_t>() != kSealedSecretsVersion) {
        return error(Errc::kUnsupported,
                     "sealed secrets: unsupported version " + j["version"].dump());
    }
    if (!j.contains("platform") || j["platform"] != "virtual") {
        return error(Errc::kUnsupported, "sealed secrets: sealed on another platform");
    }
    if (!j.contains("iv") || !j["iv"].is_string() || !j.contains("ciphertext") ||
        !j["ciphertext"].is_string()) {
        return error(Errc::kInvalidArgument, "sealed secrets: missing iv or ciphertext");
    }
    auto iv = crypto::base64_decode(j["iv"].get<std::string>());
    auto ciphertext = crypto::base64_decode(j["ciphertext"].get<std::string>());
    if (!iv.ok() || !ciphertext.ok() || iv->size() != crypto::kAesGcmStandardIvSize) {
        return error(Errc::kInvalidArgument, "sealed secrets: malformed iv or ciphertext");
    }
    auto opened = crypto::aes_gcm_open(sealing_key, *iv, as_bytes(kSealedSecretsAad), *ciphertext);
    if (!opened.ok()) {
        return error(Errc::kCrypto,
                     "sealed secrets: cannot unseal (wrong sealing key or modified file)");
    }
    WipedString plaintext{to_string(*opened)};
    OPENSSL_cleanse(opened->data(), opened->size());
    auto inner = net::parse_json(plaintext.text, kMaxSealedJsonDepth);
    if (!inner.ok() || !inner->is_object()) {
        return error(Errc::kCorrupt, "sealed secrets: decrypted content is not a JSON object");
    }
    return secrets_from_json(*inner);
}

Result<Bytes> read_sealing_key(const std::string& path) {
    COFFER_ASSIGN_OR_RETURN(std::string data, read_small_file(path, kSealingKeySize + 1));
    if (data.size() != kSealingKeySize) {
        return error(Errc::kCorrupt, path + " is not a sealing key (expected " +
                                         std::to_string(kSealingKeySize) + " bytes)");
    }
    Bytes key = to_bytes(data);
    OPENSSL_cleanse(data.data(), data.size());
    return key;
}

Result<Bytes> create_sealing_key(const std::string& path) {
    Bytes key = crypto::random_bytes(kSealingKeySize);
    COFFER_RETURN_IF_ERROR(create_file_exclusive(path, to_string(key), 0600));
    return key;
}

}  // namespace coffer::node
