// Authenticated encryption with associated data: AES-GCM (128/192/256-bit keys) and
// ChaCha20-Poly1305 (RFC 8439), over OpenSSL's EVP_CIPHER interface.
//
// Output layout everywhere: ciphertext || 16-byte tag. Opening checks the tag before any
// plaintext is returned; on mismatch nothing is returned (kCrypto).
//
// Nonce rules: a (key, nonce) pair must never be used twice for sealing. Callers that
// derive nonces from counters (ledger, HPKE) own that invariant.
//
// The free functions are thread-safe. AesGcmKey is thread-compatible (see below).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/bytes.h"
#include "common/result.h"

struct evp_cipher_ctx_st;

namespace coffer::crypto {

enum class AeadAlgorithm { kAes128Gcm, kAes256Gcm, kChaCha20Poly1305 };

constexpr size_t kAesGcmTagSize = 16;
constexpr size_t kAesGcmStandardIvSize = 12;
// OpenSSL 3.0 keeps the GCM IV in a 128-byte buffer; longer IVs are refused
// (kInvalidArgument). GCM allows longer IVs but nothing in Coffer uses them.
constexpr size_t kAesGcmMaxIvSize = 128;
constexpr size_t kChaCha20Poly1305KeySize = 32;
constexpr size_t kChaCha20Poly1305NonceSize = 12;
constexpr size_t kChaCha20Poly1305TagSize = 16;
// A bound on one message: OpenSSL takes int lengths.
constexpr size_t kMaxAeadMessageSize = size_t{1} << 30;

// Key length in bytes of an algorithm (16 or 32).
size_t aead_key_size(AeadAlgorithm alg);
// Nonce length in bytes used by aead_seal/aead_open for an algorithm (always 12).
size_t aead_nonce_size(AeadAlgorithm alg);

// AES-GCM seal. The key size picks the cipher: 16, 24 or 32 bytes (AES-128/192/256). The
// IV may be 1..kAesGcmMaxIvSize bytes; 12 bytes is the standard size and the only one
// Coffer itself uses (other sizes exist for interoperability and test vectors; a zero-length
// IV is refused because GCM is undefined for it, NIST SP 800-38D §5.2.1.1).
// Returns ciphertext || 16-byte tag.
// Errors: kInvalidArgument for a bad key or IV size or an oversized message.
Result<Bytes> aes_gcm_seal(ByteSpan key, ByteSpan iv, ByteSpan aad, ByteSpan plaintext);

// AES-GCM open of ciphertext || tag. Same key/IV rules as aes_gcm_seal.
// Errors: kInvalidArgument for bad sizes (including input shorter than the tag);
// kCrypto when the tag does not verify.
Result<Bytes> aes_gcm_open(ByteSpan key, ByteSpan iv, ByteSpan aad, ByteSpan ciphertext_and_tag);

// ChaCha20-Poly1305 (RFC 8439): 32-byte key, 12-byte nonce, 16-byte tag.
// Errors as for AES-GCM.
Result<Bytes> chacha20_poly1305_seal(ByteSpan key, ByteSpan nonce, ByteSpan aad,
                                     ByteSpan plaintext);
Result<Bytes> chacha20_poly1305_open(ByteSpan key, ByteSpan nonce, ByteSpan aad,
                                     ByteSpan ciphertext_and_tag);

// Dispatches on `alg`; the key must have exactly aead_key_size(alg) bytes and the nonce
// aead_nonce_size(alg) bytes (kInvalidArgument otherwise).
Result<Bytes> aead_seal(AeadAlgorithm alg, ByteSpan key, ByteSpan nonce, ByteSpan aad,
                        ByteSpan plaintext);
Result<Bytes> aead_open(AeadAlgorithm alg, ByteSpan key, ByteSpan nonce, ByteSpan aad,
                        ByteSpan ciphertext_and_tag);

// An AES-GCM key whose expanded key schedule is kept in two EVP_CIPHER_CTX (one for
// sealing, one for opening), so that each call only installs a new IV. Use it on hot paths
// (ledger entry encryption). Only 12-byte IVs are accepted.
//
// Thread-compatible, not thread-safe: seal/open mutate the contexts, so concurrent calls on
// one AesGcmKey need external locking (or one AesGcmKey per thread). Move-only.
class AesGcmKey {
  public:
    // Errors: kInvalidArgument unless the key has 16, 24 or 32 bytes.
    static Result<AesGcmKey> create(ByteSpan key);

    ~AesGcmKey();
    AesGcmKey(AesGcmKey&& other) noexcept;
    AesGcmKey& operator=(AesGcmKey&& other) noexcept;
    AesGcmKey(const AesGcmKey&) = delete;
    AesGcmKey& operator=(const AesGcmKey&) = delete;

    // As aes_gcm_seal/aes_gcm_open with this key; the IV must be 12 bytes.
    Result<Bytes> seal(ByteSpan iv, ByteSpan aad, ByteSpan plaintext);
    Result<Bytes> open(ByteSpan iv, ByteSpan aad, ByteSpan ciphertext_and_tag);

    size_t key_size() const { return key_size_; }

  private:
    AesGcmKey() = default;
    void reset();

    evp_cipher_ctx_st* seal_ctx_ = nullptr;
    evp_cipher_ctx_st* open_ctx_ = nullptr;
    size_t key_size_ = 0;
};

}  // namespace coffer::crypto
