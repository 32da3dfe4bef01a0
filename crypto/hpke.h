// Hybrid Public Key Encryption, RFC 9180, built from this module's primitives because
// Debian's OpenSSL 3.0 has no HPKE API.
//
// Scope: base mode only (mode_base = 0; no PSK or Auth modes), KEM DHKEM(X25519,
// HKDF-SHA256) (0x0020), KDF HKDF-SHA256 (0x0001), AEADs AES-128-GCM (0x0001), AES-256-GCM
// (0x0002), ChaCha20-Poly1305 (0x0003) and export-only (0xFFFF). Other identifiers are
// refused with kUnsupported.
//
// Uses: clean-room uploads (to the service's clean-room key) and results (to each
// recipient's registered key); recovery shares (to each member's key).
//
// Low-order X25519 points are refused (RFC 9180 §7.1.4 asks DHKEM to check for an all-zero
// shared secret): opening with such an `enc` fails with kCrypto "invalid encapsulated key",
// and encapsulating to such a recipient key fails with kCrypto "invalid recipient public
// key"; in both cases no key is derived.
#pragma once

#include <cstdint>
#include <limits>
#include <utility>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/x25519.h"

namespace coffer::crypto {

constexpr uint16_t kHpkeKemX25519Sha256 = 0x0020;
constexpr uint16_t kHpkeKdfHkdfSha256 = 0x0001;
constexpr uint16_t kHpkeAeadAes128Gcm = 0x0001;
constexpr uint16_t kHpkeAeadAes256Gcm = 0x0002;
constexpr uint16_t kHpkeAeadChaCha20Poly1305 = 0x0003;
constexpr uint16_t kHpkeAeadExportOnly = 0xFFFF;
constexpr size_t kHpkeEncSize = 32;  // Nenc for DHKEM(X25519)
// RFC 9180 §5.3: L must not exceed 255 * Nh for HKDF-SHA256.
constexpr size_t kHpkeMaxExportLength = 255 * 32;

struct HpkeSuite {
    uint16_t kem_id = kHpkeKemX25519Sha256;
    uint16_t kdf_id = kHpkeKdfHkdfSha256;
    uint16_t aead_id = kHpkeAeadAes256Gcm;
};

enum class HpkeRole { kSender, kRecipient };

// An HPKE encryption context (RFC 9180 §5.2). A sender context only seals and a recipient
// context only opens, each with its own sequence number starting at 0. Move-only.
// Thread-compatible: calls mutate the sequence number.
class HpkeContext {
  public:
    HpkeContext(HpkeContext&&) noexcept = default;
    HpkeContext& operator=(HpkeContext&&) noexcept = default;
    HpkeContext(const HpkeContext&) = delete;
    HpkeContext& operator=(const HpkeContext&) = delete;
    ~HpkeContext();

    // Seals the next message (sender only) and advances the sequence number.
    // Errors: kFailedPrecondition on a recipient or export-only context; kResourceExhausted
    // when the sequence number would overflow.
    Result<Bytes> seal(ByteSpan aad, ByteSpan plaintext);
    // Opens the next message (recipient only); the sequence number advances only on success.
    // Errors: kCrypto if the tag does not verify; others as seal.
    Result<Bytes> open(ByteSpan aad, ByteSpan ciphertext);
    // RFC 9180 §5.3 Context.Export. Errors: kInvalidArgument if length > kHpkeMaxExportLength.
    Result<Bytes> export_secret(ByteSpan exporter_context, size_t length) const;

    // Moves the sequence number forward to `seq` (messages seq..current-1 are skipped and can
    // never be sealed or opened with this context). Never moves it back, so a nonce cannot
    // be reused. Errors: kInvalidArgument if seq is lower than the current one.
    Status skip_to_sequence(uint64_t seq);
    uint64_t sequence() const { return seq_; }

    HpkeRole role() const { return role_; }
    const HpkeSuite& suite() const { return suite_; }
    // The key schedule outputs (secret: for tests against the RFC vectors only).
    const Bytes& key() const { return key_; }
    const Bytes& base_nonce() const { return base_nonce_; }
    const Bytes& exporter_secret() const { return exporter_secret_; }

  private:
    friend Result<HpkeContext> hpke_key_schedule_base(HpkeRole role, HpkeSuite suite,
                                                      ByteSpan shared_secret, ByteSpan info);
    HpkeContext() = default;
    Bytes next_nonce() const;
    Status check_usable(HpkeRole expected) const;

    HpkeRole role_ = HpkeRole::kSender;
    HpkeSuite suite_;
    Bytes key_;
    Bytes base_nonce_;
    Bytes exporter_secret_;
    uint64_t seq_ = 0;
};

// RFC 9180 §5.1 KeySchedule for mode_base from a KEM shared secret. Exposed for the test
// vectors and for callers that run their own KEM. Errors: kUnsupported for unknown ids.
Result<HpkeContext> hpke_key_schedule_base(HpkeRole role, HpkeSuite suite, ByteSpan shared_secret,
                                           ByteSpan info);

// RFC 9180 §7.1.3 DeriveKeyPair for DHKEM(X25519, HKDF-SHA256).
Result<X25519KeyPair> hpke_derive_key_pair_x25519(ByteSpan ikm);

struct HpkeEncapsulation {
    Bytes shared_secret;  // secret
    Bytes enc;            // 32 bytes, the ephemeral public key
};

// RFC 9180 §4.1 Encap with a given ephemeral private key (deterministic; for test vectors).
// Errors: kInvalidArgument for wrong sizes; kCrypto "invalid recipient public key" for a
// low-order recipient key.
Result<HpkeEncapsulation> hpke_encap_with_ephemeral(ByteSpan pk_recipient, ByteSpan sk_ephemeral);
// RFC 9180 §4.1 Decap. Errors: kInvalidArgument for wrong sizes; kCrypto "invalid
// encapsulated key" for a low-order enc.
Result<Bytes> hpke_decap(ByteSpan enc, ByteSpan sk_recipient);

// RFC 9180 §5.1.1 SetupBaseS with a fresh ephemeral key. Returns (enc, sender context).
// Errors: kInvalidArgument for wrong sizes; kUnsupported for unknown suite ids; kCrypto for
// a low-order recipient key.
Result<std::pair<Bytes, HpkeContext>> hpke_setup_base_sender(HpkeSuite suite, ByteSpan pk_recipient,
                                                             ByteSpan info);
// As hpke_setup_base_sender with the ephemeral private key given (for the RFC vectors; never
// reuse an ephemeral key in production).
Result<std::pair<Bytes, HpkeContext>> hpke_setup_base_sender_with_ephemeral(HpkeSuite suite,
                                                                            ByteSpan pk_recipient,
                                                                            ByteSpan info,
                                                                            ByteSpan sk_ephemeral);
// RFC 9180 §5.1.1 SetupBaseR. Errors: kInvalidArgument for wrong sizes; kUnsupported for
// unknown ids; kCrypto "invalid encapsulated key" for a low-order enc.
Result<HpkeContext> hpke_setup_base_recipient(HpkeSuite suite, ByteSpan enc, ByteSpan sk_recipient,
                                              ByteSpan info);

struct HpkeSealed {
    Bytes enc;
    Bytes ciphertext;
};

// RFC 9180 §6.1 single-shot Seal/Open (sequence number 0). Errors as the setup functions;
// hpke_open also returns kCrypto when the ciphertext does not verify, and export-only
// suites are refused with kFailedPrecondition.
Result<HpkeSealed> hpke_seal(HpkeSuite suite, ByteSpan pk_recipient, ByteSpan info, ByteSpan aad,
                             ByteSpan plaintext);
Result<Bytes> hpke_open(HpkeSuite suite, ByteSpan sk_recipient, ByteSpan enc, ByteSpan info,
                        ByteSpan aad, ByteSpan ciphertext);

}  // namespace coffer::crypto
