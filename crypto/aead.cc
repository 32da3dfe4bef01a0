#include "crypto/aead.h"

#include <openssl/evp.h>

#include <string>
#include <utility>

#include "common/check.h"
#include "crypto/openssl_util.h"

namespace coffer::crypto {

namespace {

using detail::CipherCtxPtr;

constexpr size_t kTagSize = 16;
static_assert(kAesGcmTagSize == kTagSize && kChaCha20Poly1305TagSize == kTagSize);

const EVP_CIPHER* aes_gcm_cipher(size_t key_size) {
    switch (key_size) {
        case 16:
            return EVP_aes_128_gcm();
        case 24:
            return EVP_aes_192_gcm();
        case 32:
            return EVP_aes_256_gcm();
        default:
            return nullptr;
    }
}

Status check_message_size(size_t size, size_t aad_size) {
    if (size > kMaxAeadMessageSize || aad_size > kMaxAeadMessageSize) {
        return error(Errc::kInvalidArgument, "AEAD message or AAD exceeds 1 GiB");
    }
    return {};
}

CipherCtxPtr new_cipher_ctx() {
    CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    COFFER_CHECK(ctx != nullptr, "EVP_CIPHER_CTX_new failed (out of memory)");
    return ctx;
}

// Installs cipher, IV length and key (key may be null to keep an installed key) and the IV.
Status init_ctx(EVP_CIPHER_CTX* ctx, const EVP_CIPHER* cipher, ByteSpan key, ByteSpan iv,
                bool seal) {
    const int enc = seal ? 1 : 0;
    if (cipher != nullptr) {
        if (EVP_CipherInit_ex(ctx, cipher, nullptr, nullptr, nullptr, enc) != 1) {
            return detail::openssl_error(Errc::kInternal, "EVP_CipherInit_ex");
        }
        if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, static_cast<int>(iv.size()),
                                nullptr) != 1) {
            detail::clear_openssl_errors();
            return error(Errc::kInvalidArgument,
                         "AEAD IV of " + std::to_string(iv.size()) + " bytes is not supported");
        }
    }
    const uint8_t* key_ptr = key.empty() ? nullptr : key.data();
    if (EVP_CipherInit_ex(ctx, nullptr, nullptr, key_ptr, iv.data(), enc) != 1) {
        return detail::openssl_error(Errc::kInternal, "EVP_CipherInit_ex(key, iv)");
    }
    return {};
}

Status feed_aad(EVP_CIPHER_CTX* ctx, ByteSpan aad) {
    if (aad.empty()) {
        return {};
    }
    int out_len = 0;
    if (EVP_CipherUpdate(ctx, nullptr, &out_len, aad.data(), static_cast<int>(aad.size())) != 1) {
        return detail::openssl_error(Errc::kInternal, "EVP_CipherUpdate(aad)");
    }
    return {};
}

// Seals with a context whose key and IV are installed. Returns ciphertext || tag.
Result<Bytes> seal_with_ctx(EVP_CIPHER_CTX* ctx, ByteSpan aad, ByteSpan plaintext) {
    COFFER_RETURN_IF_ERROR(feed_aad(ctx, aad));

    Bytes out(plaintext.size() + kTagSize);
    int len = 0;
    if (!plaintext.empty() && EVP_CipherUpdate(ctx, out.data(), &len, plaintext.data(),
                                               static_cast<int>(plaintext.size())) != 1) {
        return detail::openssl_error(Errc::kInternal, "EVP_CipherUpdate");
    }
    COFFER_CHECK(static_cast<size_t>(len) == plaintext.size(), "AEAD output length mismatch");

    int final_len = 0;
    if (EVP_CipherFinal_ex(ctx, out.data() + len, &final_len) != 1 || final_len != 0) {
        return detail::openssl_error(Errc::kInternal, "EVP_CipherFinal_ex");
    }
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, kTagSize, out.data() + plaintext.size()) !=
        1) {
        return detail::openssl_error(Errc::kInternal, "EVP_CTRL_AEAD_GET_TAG");
    }
    return out;
}

// Opens with a context whose key and IV are installed. Input is ciphertext || tag.
Result<Bytes> open_with_ctx(EVP_CIPHER_CTX* ctx, ByteSpan aad, ByteSpan ciphertext_and_tag) {
    COFFER_CHECK(ciphertext_and_tag.size() >= kTagSize, "caller checks the tag size");
    ByteSpan ciphertext = ciphertext_and_tag.first(ciphertext_and_tag.size() - kTagSize);
    ByteSpan tag = ciphertext_and_tag.last(kTagSize);
    COFFER_RETURN_IF_ERROR(feed_aad(ctx, aad));

    Bytes out(ciphertext.size());
    int len = 0;
    if (!ciphertext.empty() && EVP_CipherUpdate(ctx, out.data(), &len, ciphertext.data(),
                                                static_cast<int>(ciphertext.size())) != 1) {
        return detail::openssl_error(Errc::kInternal, "EVP_CipherUpdate");
    }
    COFFER_CHECK(static_cast<size_t>(len) == ciphertext.size(), "AEAD output length mismatch");

    // OpenSSL does not modify the tag; the const_cast only satisfies the ctrl signature.
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, kTagSize,
                            const_cast<uint8_t*>(tag.data())) != 1) {
        return detail::openssl_error(Errc::kInternal, "EVP_CTRL_AEAD_SET_TAG");
    }
    int final_len = 0;
    if (EVP_CipherFinal_ex(ctx, out.data() + len, &final_len) != 1) {
        detail::clear_openssl_errors();
        OPENSSL_cleanse(out.data(), out.size());
        return error(Errc::kCrypto, "AEAD tag verification failed");
    }
    return out;
}

Result<Bytes> one_shot(const EVP_CIPHER* cipher, ByteSpan key, ByteSpan iv, ByteSpan aad,
                       ByteSpan input, bool seal) {
    COFFER_RETURN_IF_ERROR(check_message_size(input.size(), aad.size()));
    if (!seal && input.size() < kTagSize) {
        return error(Errc::kInvalidArgument, "AEAD ciphertext shorter than its 16-byte tag");
    }
    CipherCtxPtr ctx = new_cipher_ctx();
    COFFER_RETURN_IF_ERROR(init_ctx(ctx.get(), cipher, key, iv, seal));
    return seal ? seal_with_ctx(ctx.get(), aad, input) : open_with_ctx(ctx.get(), aad, input);
}

Status check_gcm_sizes(ByteSpan key, ByteSpan iv) {
    if (aes_gcm_cipher(key.size()) == nullptr) {
        return error(Errc::kInvalidArgument,
                     "AES-GCM key must be 16, 24 or 32 bytes, got " + std::to_string(key.size()));
    }
    if (iv.empty() || iv.size() > kAesGcmMaxIvSize) {
        return error(Errc::kInvalidArgument,
                     "AES-GCM IV must be 1..128 bytes, got " + std::to_string(iv.size()));
    }
    return {};
}

Status check_chacha_sizes(ByteSpan key, ByteSpan nonce) {
    if (key.size() != kChaCha20Poly1305KeySize) {
        return error(Errc::kInvalidArgument, "ChaCha20-Poly1305 key must be 32 bytes");
    }
    if (nonce.size() != kChaCha20Poly1305NonceSize) {
        return error(Errc::kInvalidArgument, "ChaCha20-Poly1305 nonce must be 12 bytes, got " +
                                                 std::to_string(nonce.size()));
    }
    return {};
}

}  // namespace

size_t aead_key_size(AeadAlgorithm alg) {
    switch (alg) {
        case AeadAlgorithm::kAes128Gcm:
            return 16;
        case AeadAlgorithm::kAes256Gcm:
        case AeadAlgorithm::kChaCha20Poly1305:
            return 32;
    }
    COFFER_CHECK(false, "unknown AeadAlgorithm");
    return 0;
}

size_t aead_nonce_size(AeadAlgorithm /*alg*/) {
    return kAesGcmStandardIvSize;
}

Result<Bytes> aes_gcm_seal(ByteSpan key, ByteSpan iv, ByteSpan aad, ByteSpan plaintext) {
    COFFER_RETURN_IF_ERROR(check_gcm_sizes(key, iv));
    return one_shot(aes_gcm_cipher(key.size()), key, iv, aad, plaintext, true);
}

Result<Bytes> aes_gcm_open(ByteSpan key, ByteSpan iv, ByteSpan aad, ByteSpan ciphertext_and_tag) {
    COFFER_RETURN_IF_ERROR(check_gcm_sizes(key, iv));
    return one_shot(aes_gcm_cipher(key.size()), key, iv, aad, ciphertext_and_tag, false);
}

Result<Bytes> chacha20_poly1305_seal(ByteSpan key, ByteSpan nonce, ByteSpan aad,
                                     ByteSpan plaintext) {
    COFFER_RETURN_IF_ERROR(check_chacha_sizes(key, nonce));
    return one_shot(EVP_chacha20_poly1305(), key, nonce, aad, plaintext, true);
}

Result<Bytes> chacha20_poly1305_open(ByteSpan key, ByteSpan nonce, ByteSpan aad,
                                     ByteSpan ciphertext_and_tag) {
    COFFER_RETURN_IF_ERROR(check_chacha_sizes(key, nonce));
    return one_shot(EVP_chacha20_poly1305(), key, nonce, aad, ciphertext_and_tag, false);
}

namespace {

Status check_generic_sizes(AeadAlgorithm alg, ByteSpan key, ByteSpan nonce) {
    if (key.size() != aead_key_size(alg) || nonce.size() != aead_nonce_size(alg)) {
        return error(Errc::kInvalidArgument, "AEAD key or nonce has the wrong size");
    }
    return {};
}

}  // namespace

Result<Bytes> aead_seal(AeadAlgorithm alg, ByteSpan key, ByteSpan nonce, ByteSpan aad,
                        ByteSpan plaintext) {
    COFFER_RETURN_IF_ERROR(check_generic_sizes(alg, key, nonce));
    if (alg == AeadAlgorithm::kChaCha20Poly1305) {
        return chacha20_poly1305_seal(key, nonce, aad, plaintext);
    }
    return aes_gcm_seal(key, nonce, aad, plaintext);
}

Result<Bytes> aead_open(AeadAlgorithm alg, ByteSpan key, ByteSpan nonce, ByteSpan aad,
                        ByteSpan ciphertext_and_tag) {
    COFFER_RETURN_IF_ERROR(check_generic_sizes(alg, key, nonce));
    if (alg == AeadAlgorithm::kChaCha20Poly1305) {
        return chacha20_poly1305_open(key, nonce, aad, ciphertext_and_tag);
    }
    return aes_gcm_open(key, nonce, aad, ciphertext_and_tag);
}

Result<AesGcmKey> AesGcmKey::create(ByteSpan key) {
    const EVP_CIPHER* cipher = aes_gcm_cipher(key.size());
    if (cipher == nullptr) {
        return error(Errc::kInvalidArgument, "AES-GCM key must be 16, 24 or 32 bytes");
    }
    // The key schedule is expanded once per context here; calls then only install IVs.
    static const uint8_t kZeroIv[kAesGcmStandardIvSize] = {};
    AesGcmKey out;
    out.key_size_ = key.size();
    CipherCtxPtr seal_ctx = new_cipher_ctx();
    CipherCtxPtr open_ctx = new_cipher_ctx();
    COFFER_RETURN_IF_ERROR(init_ctx(seal_ctx.get(), cipher, key, kZeroIv, true));
    COFFER_RETURN_IF_ERROR(init_ctx(open_ctx.get(), cipher, key, kZeroIv, false));
    out.seal_ctx_ = seal_ctx.release();
    out.open_ctx_ = open_ctx.release();
    return out;
}

AesGcmKey::~AesGcmKey() {
    reset();
}

void AesGcmKey::reset() {
    EVP_CIPHER_CTX_free(seal_ctx_);
    EVP_CIPHER_CTX_free(open_ctx_);
    seal_ctx_ = nullptr;
    open_ctx_ = nullptr;
}

AesGcmKey::AesGcmKey(AesGcmKey&& other) noexcept
    : seal_ctx_(std::exchange(other.seal_ctx_, nullptr)),
      open_ctx_(std::exchange(other.open_ctx_, nullptr)),
      key_size_(std::exchange(other.key_size_, 0)) {}

AesGcmKey& AesGcmKey::operator=(AesGcmKey&& other) noexcept {
    if (this != &other) {
        reset();
        seal_ctx_ = std::exchange(other.seal_ctx_, nullptr);
        open_ctx_ = std::exchange(other.open_ctx_, nullptr);
        key_size_ = std::exchange(other.key_size_, 0);
    }
    return *this;
}

Result<Bytes> AesGcmKey::seal(ByteSpan iv, ByteSpan aad, ByteSpan plaintext) {
    COFFER_CHECK(seal_ctx_ != nullptr, "AesGcmKey used after move");
    if (iv.size() != kAesGcmStandardIvSize) {
        return error(Errc::kInvalidArgument, "AesGcmKey takes 12-byte IVs only");
    }
    COFFER_RETURN_IF_ERROR(check_message_size(plaintext.size(), aad.size()));
    COFFER_RETURN_IF_ERROR(init_ctx(seal_ctx_, nullptr, {}, iv, true));
    return seal_with_ctx(seal_ctx_, aad, plaintext);
}

Result<Bytes> AesGcmKey::open(ByteSpan iv, ByteSpan aad, ByteSpan ciphertext_and_tag) {
    COFFER_CHECK(open_ctx_ != nullptr, "AesGcmKey used after move");
    if (iv.size() != kAesGcmStandardIvSize) {
        return error(Errc::kInvalidArgument, "AesGcmKey takes 12-byte IVs only");
    }
    COFFER_RETURN_IF_ERROR(check_message_size(ciphertext_and_tag.size(), aad.size()));
    if (ciphertext_and_tag.size() < kTagSize) {
        return error(Errc::kInvalidArgument, "AEAD ciphertext shorter than its 16-byte tag");
    }
    COFFER_RETURN_IF_ERROR(init_ctx(open_ctx_, nullptr, {}, iv, false));
    return open_with_ctx(open_ctx_, aad, ciphertext_and_tag);
}

}  // namespace coffer::crypto
