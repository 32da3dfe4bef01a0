#include "crypto/hpke.h"

#include <openssl/crypto.h>

#include <optional>
#include <string_view>

#include "common/check.h"
#include "crypto/aead.h"
#include "crypto/hkdf.h"

namespace coffer::crypto {

namespace {

constexpr std::string_view kVersionLabel = "HPKE-v1";
constexpr uint8_t kModeBase = 0x00;
constexpr size_t kNh = 32;       // HKDF-SHA256 output size
constexpr size_t kNsecret = 32;  // DHKEM(X25519) shared secret size
constexpr size_t kNn = 12;       // nonce size of every supported AEAD

void put_be16(Bytes& out, uint16_t v) {
    out.push_back(static_cast<uint8_t>(v >> 8));
    out.push_back(static_cast<uint8_t>(v));
}

// RFC 9180 §4.1: suite_id = "KEM" || I2OSP(kem_id, 2).
Bytes kem_suite_id() {
    Bytes id = to_bytes("KEM");
    put_be16(id, kHpkeKemX25519Sha256);
    return id;
}

// RFC 9180 §5.1: suite_id = "HPKE" || I2OSP(kem_id, 2) || I2OSP(kdf_id, 2) || I2OSP(aead_id, 2).
Bytes hpke_suite_id(const HpkeSuite& suite) {
    Bytes id = to_bytes("HPKE");
    put_be16(id, suite.kem_id);
    put_be16(id, suite.kdf_id);
    put_be16(id, suite.aead_id);
    return id;
}

// RFC 9180 §4: LabeledExtract(salt, label, ikm).
Bytes labeled_extract(ByteSpan suite_id, ByteSpan salt, std::string_view label, ByteSpan ikm) {
    Bytes labeled = to_bytes(kVersionLabel);
    put_bytes(labeled, suite_id);
    put_bytes(labeled, as_bytes(label));
    put_bytes(labeled, ikm);
    return hkdf_sha256_extract(salt, labeled);
}

// RFC 9180 §4: LabeledExpand(prk, label, info, L), with L < 2^16 and L <= 255 * Nh.
Result<Bytes> labeled_expand(ByteSpan suite_id, ByteSpan prk, std::string_view label, ByteSpan info,
                             size_t length) {
    if (length > kHpkeMaxExportLength) {
        return error(Errc::kInvalidArgument, "HPKE expand length exceeds 255 * Nh");
    }
    Bytes labeled;
    put_be16(labeled, static_cast<uint16_t>(length));
    put_bytes(labeled, as_bytes(kVersionLabel));
    put_bytes(labeled, suite_id);
    put_bytes(labeled, as_bytes(label));
    put_bytes(labeled, info);
    return hkdf_sha256_expand(prk, labeled, length);
}

// Key size Nk of an AEAD id, 0 for export-only, nullopt for unknown ids.
std::optional<size_t> aead_key_size_of(uint16_t aead_id) {
    switch (aead_id) {
        case kHpkeAeadAes128Gcm:
            return 16;
        case kHpkeAeadAes256Gcm:
        case kHpkeAeadChaCha20Poly1305:
            return 32;
        case kHpkeAeadExportOnly:
            return 0;
        default:
            return std::nullopt;
    }
}

AeadAlgorithm aead_algorithm_of(uint16_t aead_id) {
    switch (aead_id) {
        case kHpkeAeadAes128Gcm:
            return AeadAlgorithm::kAes128Gcm;
        case kHpkeAeadAes256Gcm:
            return AeadAlgorithm::kAes256Gcm;
        case kHpkeAeadChaCha20Poly1305:
            return AeadAlgorithm::kChaCha20Poly1305;
        default:
            COFFER_CHECK(false, "aead_algorithm_of on a non-AEAD id");
            return AeadAlgorithm::kAes256Gcm;
    }
}

Status check_suite(const HpkeSuite& suite) {
    if (suite.kem_id != kHpkeKemX25519Sha256 || suite.kdf_id != kHpkeKdfHkdfSha256 ||
        !aead_key_size_of(suite.aead_id).has_value()) {
        return error(Errc::kUnsupported,
                     "HPKE suite not supported (only DHKEM(X25519), HKDF-SHA256, AES-GCM, "
                     "ChaCha20-Poly1305, export-only)");
    }
    return {};
}

Status check_key_size(ByteSpan key, const char* what) {
    if (key.size() != kX25519KeySize) {
        return error(
            Errc::kInvalidArgument,
            std::string("HPKE ") + what + " must be 32 bytes, got " + std::to_string(key.size()));
    }
    return {};
}

// RFC 9180 §4.1 ExtractAndExpand(dh, kem_context).
Result<Bytes> extract_and_expand(ByteSpan dh, ByteSpan enc, ByteSpan pk_recipient) {
    Bytes suite_id = kem_suite_id();
    Bytes eae_prk = labeled_extract(suite_id, {}, "eae_prk", dh);
    Bytes kem_context(enc.begin(), enc.end());
    put_bytes(kem_context, pk_recipient);
    auto shared = labeled_expand(suite_id, eae_prk, "shared_secret", kem_context, kNsecret);
    OPENSSL_cleanse(eae_prk.data(), eae_prk.size());
    return shared;
}

}  // namespace

HpkeContext::~HpkeContext() {
    OPENSSL_cleanse(key_.data(), key_.size());
    OPENSSL_cleanse(exporter_secret_.data(), exporter_secret_.size());
}

Result<HpkeContext> hpke_key_schedule_base(HpkeRole role, HpkeSuite suite, ByteSpan shared_secret,
                                           ByteSpan info) {
    COFFER_RETURN_IF_ERROR(check_suite(suite));
    Bytes suite_id = hpke_suite_id(suite);

    // RFC 9180 §5.1 with mode_base: psk and psk_id are empty.
    Bytes psk_id_hash = labeled_extract(suite_id, {}, "psk_id_hash", {});
    Bytes info_hash = labeled_extract(suite_id, {}, "info_hash", info);
    Bytes context{kModeBase};
    put_bytes(context, psk_id_hash);
    put_bytes(context, info_hash);
    Bytes secret = labeled_extract(suite_id, shared_secret, "secret", {});

    HpkeContext ctx;
    ctx.role_ = role;
    ctx.suite_ = suite;
    size_t nk = *aead_key_size_of(suite.aead_id);
    if (nk > 0) {
        COFFER_ASSIGN_OR_RETURN(ctx.key_, labeled_expand(suite_id, secret, "key", context, nk));
        COFFER_ASSIGN_OR_RETURN(ctx.base_nonce_,
                                labeled_expand(suite_id, secret, "base_nonce", context, kNn));
    }
    COFFER_ASSIGN_OR_RETURN(ctx.exporter_secret_,
                            labeled_expand(suite_id, secret, "exp", context, kNh));
    OPENSSL_cleanse(secret.data(), secret.size());
    return ctx;
}

// RFC 9180 §5.2 ComputeNonce: base_nonce XOR I2OSP(seq, Nn).
Bytes HpkeContext::next_nonce() const {
    COFFER_CHECK(base_nonce_.size() == kNn, "HPKE base nonce missing");
    Bytes nonce = base_nonce_;
    for (size_t i = 0; i < sizeof(seq_); ++i) {
        nonce[kNn - 1 - i] ^= static_cast<uint8_t>(seq_ >> (8 * i));
    }
    return nonce;
}

Status HpkeContext::check_usable(HpkeRole expected) const {
    if (role_ != expected) {
        return error(Errc::kFailedPrecondition, expected == HpkeRole::kSender
                                                    ? "HPKE recipient context cannot seal"
                                                    : "HPKE sender context cannot open");
    }
    if (suite_.aead_id == kHpkeAeadExportOnly) {
        return error(Errc::kFailedPrecondition, "HPKE export-only context cannot seal or open");
    }
    // RFC 9180 §5.2: refuse before the sequence number would wrap (our counter is 64 bits,
    // below the 96-bit limit of the nonce).
    if (seq_ == std::numeric_limits<uint64_t>::max()) {
        return error(Errc::kResourceExhausted, "HPKE message limit reached");
    }
    return {};
}

Result<Bytes> HpkeContext::seal(ByteSpan aad, ByteSpan plaintext) {
    COFFER_RETURN_IF_ERROR(check_usable(HpkeRole::kSender));
    COFFER_ASSIGN_OR_RETURN(
        Bytes ct, aead_seal(aead_algorithm_of(suite_.aead_id), key_, next_nonce(), aad, plaintext));
    ++seq_;
    return ct;
}

Result<Bytes> HpkeContext::open(ByteSpan aad, ByteSpan ciphertext) {
    COFFER_RETURN_IF_ERROR(check_usable(HpkeRole::kRecipient));
    COFFER_ASSIGN_OR_RETURN(Bytes pt, aead_open(aead_algorithm_of(suite_.aead_id), key_,
                                                next_nonce(), aad, ciphertext));
    ++seq_;
    return pt;
}

Result<Bytes> HpkeContext::export_secret(ByteSpan exporter_context, size_t length) const {
    if (length > kHpkeMaxExportLength) {
        return error(Errc::kInvalidArgument, "HPKE export length exceeds 255 * Nh");
    }
    return labeled_expand(hpke_suite_id(suite_), exporter_secret_, "sec", exporter_context, length);
}

Status HpkeContext::skip_to_sequence(uint64_t seq) {
    if (seq < seq_) {
        return error(Errc::kInvalidArgument, "HPKE sequence number cannot move back");
    }
    seq_ = seq;
    return {};
}

Result<X25519KeyPair> hpke_derive_key_pair_x25519(ByteSpan ikm) {
    Bytes suite_id = kem_suite_id();
    Bytes dkp_prk = labeled_extract(suite_id, {}, "dkp_prk", ikm);
    COFFER_ASSIGN_OR_RETURN(Bytes sk, labeled_expand(suite_id, dkp_prk, "sk", {}, kX25519KeySize));
    OPENSSL_cleanse(dkp_prk.data(), dkp_prk.size());
    return x25519_from_private(sk);
}

namespace {

// RFC 9180 §4.1 Encap with a ready ephemeral key pair (sizes checked by the caller).
Result<HpkeEncapsulation> encap_with_pair(ByteSpan pk_recipient, const X25519KeyPair& ephemeral) {
    auto dh = x25519_shared_secret(ephemeral.private_key, pk_recipient);
    if (!dh.ok()) {
        return error(Errc::kCrypto, "invalid recipient public key");
    }
    auto shared = extract_and_expand(*dh, ephemeral.public_key, pk_recipient);
    OPENSSL_cleanse(dh->data(), dh->size());
    if (!shared.ok()) {
        return shared.status();
    }
    return HpkeEncapsulation{std::move(shared).value(), ephemeral.public_key};
}

Result<std::pair<Bytes, HpkeContext>> setup_sender_with_pair(HpkeSuite suite, ByteSpan pk_recipient,
                                                             ByteSpan info,
                                                             const X25519KeyPair& ephemeral) {
    COFFER_RETURN_IF_ERROR(check_suite(suite));
    COFFER_RETURN_IF_ERROR(check_key_size(pk_recipient, "recipient public key"));
    COFFER_ASSIGN_OR_RETURN(HpkeEncapsulation encap, encap_with_pair(pk_recipient, ephemeral));
    auto ctx = hpke_key_schedule_base(HpkeRole::kSender, suite, encap.shared_secret, info);
    OPENSSL_cleanse(encap.shared_secret.data(), encap.shared_secret.size());
    if (!ctx.ok()) {
        return ctx.status();
    }
    return std::make_pair(std::move(encap.enc), std::move(ctx).value());
}

}  // namespace

Result<HpkeEncapsulation> hpke_encap_with_ephemeral(ByteSpan pk_recipient, ByteSpan sk_ephemeral) {
    COFFER_RETURN_IF_ERROR(check_key_size(pk_recipient, "recipient public key"));
    COFFER_RETURN_IF_ERROR(check_key_size(sk_ephemeral, "ephemeral private key"));
    COFFER_ASSIGN_OR_RETURN(X25519KeyPair ephemeral, x25519_from_private(sk_ephemeral));
    auto out = encap_with_pair(pk_recipient, ephemeral);
    OPENSSL_cleanse(ephemeral.private_key.data(), ephemeral.private_key.size());
    return out;
}

Result<Bytes> hpke_decap(ByteSpan enc, ByteSpan sk_recipient) {
    COFFER_RETURN_IF_ERROR(check_key_size(enc, "encapsulated key"));
    COFFER_RETURN_IF_ERROR(check_key_size(sk_recipient, "recipient private key"));
    COFFER_ASSIGN_OR_RETURN(X25519KeyPair recipient, x25519_from_private(sk_recipient));
    auto dh = x25519_shared_secret(recipient.private_key, enc);
    if (!dh.ok()) {
        return error(Errc::kCrypto, "invalid encapsulated key");
    }
    auto shared = extract_and_expand(*dh, enc, recipient.public_key);
    OPENSSL_cleanse(dh->data(), dh->size());
    return shared;
}

Result<std::pair<Bytes, HpkeContext>> hpke_setup_base_sender_with_ephemeral(HpkeSuite suite,
                                                                            ByteSpan pk_recipient,
                                                                            ByteSpan info,
                                                                            ByteSpan sk_ephemeral) {
    COFFER_RETURN_IF_ERROR(check_key_size(sk_ephemeral, "ephemeral private key"));
    COFFER_ASSIGN_OR_RETURN(X25519KeyPair ephemeral, x25519_from_private(sk_ephemeral));
    auto out = setup_sender_with_pair(suite, pk_recipient, info, ephemeral);
    OPENSSL_cleanse(ephemeral.private_key.data(), ephemeral.private_key.size());
    return out;
}

Result<std::pair<Bytes, HpkeContext>> hpke_setup_base_sender(HpkeSuite suite, ByteSpan pk_recipient,
                                                             ByteSpan info) {
    X25519KeyPair ephemeral = x25519_generate();
    auto out = setup_sender_with_pair(suite, pk_recipient, info, ephemeral);
    OPENSSL_cleanse(ephemeral.private_key.data(), ephemeral.private_key.size());
    return out;
}

Result<HpkeContext> hpke_setup_base_recipient(HpkeSuite suite, ByteSpan enc, ByteSpan sk_recipient,
                                              ByteSpan info) {
    COFFER_RETURN_IF_ERROR(check_suite(suite));
    COFFER_ASSIGN_OR_RETURN(Bytes shared, hpke_decap(enc, sk_recipient));
    auto ctx = hpke_key_schedule_base(HpkeRole::kRecipient, suite, shared, info);
    OPENSSL_cleanse(shared.data(), shared.size());
    return ctx;
}

Result<HpkeSealed> hpke_seal(HpkeSuite suite, ByteSpan pk_recipient, ByteSpan info, ByteSpan aad,
                             ByteSpan plaintext) {
    COFFER_ASSIGN_OR_RETURN(auto setup, hpke_setup_base_sender(suite, pk_recipient, info));
    COFFER_ASSIGN_OR_RETURN(Bytes ct, setup.second.seal(aad, plaintext));
    return HpkeSealed{std::move(setup.first), std::move(ct)};
}

Result<Bytes> hpke_open(HpkeSuite suite, ByteSpan sk_recipient, ByteSpan enc, ByteSpan info,
                        ByteSpan aad, ByteSpan ciphertext) {
    COFFER_ASSIGN_OR_RETURN(HpkeContext ctx,
                            hpke_setup_base_recipient(suite, enc, sk_recipient, info));
    return ctx.open(aad, ciphertext);
}

}  // namespace coffer::crypto
