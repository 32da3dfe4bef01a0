// Crypto wrappers beside the raw OpenSSL EVP calls doing the same work, in pairs
// `<case>/coffer` and `<case>/raw_openssl` (bench_main.cc prints the ratios).
#include <benchmark/benchmark.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "crypto/aead.h"
#include "crypto/ecdsa.h"
#include "crypto/hpke.h"
#include "crypto/random.h"
#include "crypto/sha256.h"
#include "crypto/x25519.h"

namespace {

using coffer::Bytes;
namespace crypto = coffer::crypto;

constexpr size_t kSmall = 1024;
constexpr size_t kLarge = 64 * 1024;

void BM_Sha256_coffer(benchmark::State& state) {
    Bytes data = crypto::random_bytes(kSmall);
    for (auto _ : state) {
        benchmark::DoNotOptimize(crypto::sha256(data));
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kSmall));
}

void BM_Sha256_raw(benchmark::State& state) {
    Bytes data = crypto::random_bytes(kSmall);
    unsigned char out[32];
    unsigned int len = 0;
    for (auto _ : state) {
        EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr);
        benchmark::DoNotOptimize(out);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kSmall));
}

// Raw AES-256-GCM seal; with `reuse` the key schedule stays in one context across calls.
void raw_gcm_seal(benchmark::State& state, size_t size, bool reuse) {
    Bytes key = crypto::random_bytes(32), iv = crypto::random_bytes(12);
    Bytes pt = crypto::random_bytes(size), out(size + 16);
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key.data(), nullptr);
    for (auto _ : state) {
        if (!reuse) {
            EVP_CIPHER_CTX_reset(ctx);
            EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key.data(), iv.data());
        } else {
            EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, iv.data());
        }
        int len = 0, final_len = 0;
        EVP_EncryptUpdate(ctx, out.data(), &len, pt.data(), static_cast<int>(pt.size()));
        EVP_EncryptFinal_ex(ctx, out.data() + len, &final_len);
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, out.data() + size);
        benchmark::DoNotOptimize(out.data());
    }
    EVP_CIPHER_CTX_free(ctx);
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}

void coffer_gcm_seal(benchmark::State& state, size_t size) {
    Bytes key = crypto::random_bytes(32), iv = crypto::random_bytes(12);
    Bytes pt = crypto::random_bytes(size);
    for (auto _ : state) {
        auto ct = crypto::aes_gcm_seal(key, iv, {}, pt);
        benchmark::DoNotOptimize(ct);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}

void coffer_gcm_key_seal(benchmark::State& state, size_t size) {
    Bytes key = crypto::random_bytes(32), iv = crypto::random_bytes(12);
    Bytes pt = crypto::random_bytes(size);
    auto cached = crypto::AesGcmKey::create(key);
    for (auto _ : state) {
        auto ct = cached->seal(iv, {}, pt);
        benchmark::DoNotOptimize(ct);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}

void BM_Gcm1_coffer(benchmark::State& s) {
    coffer_gcm_seal(s, kSmall);
}
void BM_Gcm1_raw(benchmark::State& s) {
    raw_gcm_seal(s, kSmall, false);
}
void BM_Gcm64_coffer(benchmark::State& s) {
    coffer_gcm_seal(s, kLarge);
}
void BM_Gcm64_raw(benchmark::State& s) {
    raw_gcm_seal(s, kLarge, false);
}
void BM_GcmKey1_coffer(benchmark::State& s) {
    coffer_gcm_key_seal(s, kSmall);
}
void BM_GcmKey1_raw(benchmark::State& s) {
    raw_gcm_seal(s, kSmall, true);
}
void BM_GcmKey64_coffer(benchmark::State& s) {
    coffer_gcm_key_seal(s, kLarge);
}
void BM_GcmKey64_raw(benchmark::State& s) {
    raw_gcm_seal(s, kLarge, true);
}

void BM_EcdsaSign_coffer(benchmark::State& state) {
    auto key = crypto::EcdsaPrivateKey::generate();
    Bytes data = crypto::random_bytes(kSmall);
    for (auto _ : state) {
        benchmark::DoNotOptimize(key->sign(data));
    }
}

void BM_EcdsaSign_raw(benchmark::State& state) {
    EVP_PKEY* pkey = EVP_EC_gen("secp384r1");
    Bytes data = crypto::random_bytes(kSmall), sig(104);
    for (auto _ : state) {
        EVP_MD_CTX* ctx = EVP_MD_CTX_new();
        size_t len = sig.size();
        EVP_DigestSignInit(ctx, nullptr, EVP_sha384(), nullptr, pkey);
        EVP_DigestSign(ctx, sig.data(), &len, data.data(), data.size());
        EVP_MD_CTX_free(ctx);
        benchmark::DoNotOptimize(sig.data());
    }
    EVP_PKEY_free(pkey);
}

void BM_EcdsaVerify_coffer(benchmark::State& state) {
    auto key = crypto::EcdsaPrivateKey::generate();
    Bytes data = crypto::random_bytes(kSmall);
    Bytes sig = *key->sign(data);
    crypto::EcdsaPublicKey pub = key->public_key();
    for (auto _ : state) {
        if (!pub.verify(data, sig).ok()) {
            state.SkipWithError("verify failed");
            return;
        }
    }
}

void BM_EcdsaVerify_raw(benchmark::State& state) {
    auto key = crypto::EcdsaPrivateKey::generate();
    Bytes data = crypto::random_bytes(kSmall);
    Bytes sig = *key->sign(data);
    crypto::EcdsaPublicKey pub = key->public_key();
    EVP_PKEY* pkey = pub.native();
    for (auto _ : state) {
        EVP_MD_CTX* ctx = EVP_MD_CTX_new();
        EVP_DigestVerifyInit(ctx, nullptr, EVP_sha384(), nullptr, pkey);
        int rc = EVP_DigestVerify(ctx, sig.data(), sig.size(), data.data(), data.size());
        EVP_MD_CTX_free(ctx);
        if (rc != 1) {
            state.SkipWithError("verify failed");
            return;
        }
    }
}

void BM_HpkeSeal_coffer(benchmark::State& state) {
    crypto::X25519KeyPair r = crypto::x25519_generate();
    Bytes pt = crypto::random_bytes(kSmall);
    crypto::HpkeSuite suite;
    for (auto _ : state) {
        benchmark::DoNotOptimize(crypto::hpke_seal(suite, r.public_key, {}, {}, pt));
    }
}

// No raw HPKE in OpenSSL 3.0: the nearest raw work is an ephemeral X25519 key, one derive
// and one AES-256-GCM seal (HPKE adds its HKDF key schedule on top).
void BM_HpkeSeal_raw(benchmark::State& state) {
    crypto::X25519KeyPair r = crypto::x25519_generate();
    EVP_PKEY* peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, r.public_key.data(),
                                                 r.public_key.size());
    Bytes pt = crypto::random_bytes(kSmall), out(kSmall + 16), iv(12, 0);
    for (auto _ : state) {
        EVP_PKEY* eph = EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519");
        EVP_PKEY_CTX* dctx = EVP_PKEY_CTX_new_from_pkey(nullptr, eph, nullptr);
        unsigned char secret[32];
        size_t slen = sizeof(secret);
        EVP_PKEY_derive_init(dctx);
        EVP_PKEY_derive_set_peer(dctx, peer);
        EVP_PKEY_derive(dctx, secret, &slen);
        EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
        int len = 0, final_len = 0;
        EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), nullptr, secret, iv.data());
        EVP_EncryptUpdate(c, out.data(), &len, pt.data(), static_cast<int>(pt.size()));
        EVP_EncryptFinal_ex(c, out.data() + len, &final_len);
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, out.data() + kSmall);
        EVP_CIPHER_CTX_free(c);
        EVP_PKEY_CTX_free(dctx);
        EVP_PKEY_free(eph);
        benchmark::DoNotOptimize(out.data());
    }
    EVP_PKEY_free(peer);
}

}  // namespace

BENCHMARK(BM_Sha256_coffer)->Name("BM_Sha256_1KiB/coffer");
BENCHMARK(BM_Sha256_raw)->Name("BM_Sha256_1KiB/raw_openssl");
BENCHMARK(BM_Gcm1_coffer)->Name("BM_AesGcm256Seal_1KiB/coffer");
BENCHMARK(BM_Gcm1_raw)->Name("BM_AesGcm256Seal_1KiB/raw_openssl");
BENCHMARK(BM_Gcm64_coffer)->Name("BM_AesGcm256Seal_64KiB/coffer");
BENCHMARK(BM_Gcm64_raw)->Name("BM_AesGcm256Seal_64KiB/raw_openssl");
BENCHMARK(BM_GcmKey1_coffer)->Name("BM_AesGcm256SealCachedKey_1KiB/coffer");
BENCHMARK(BM_GcmKey1_raw)->Name("BM_AesGcm256SealCachedKey_1KiB/raw_openssl_reused_ctx");
BENCHMARK(BM_GcmKey64_coffer)->Name("BM_AesGcm256SealCachedKey_64KiB/coffer");
BENCHMARK(BM_GcmKey64_raw)->Name("BM_AesGcm256SealCachedKey_64KiB/raw_openssl_reused_ctx");
BENCHMARK(BM_EcdsaSign_coffer)->Name("BM_EcdsaP384Sign_1KiB/coffer");
BENCHMARK(BM_EcdsaSign_raw)->Name("BM_EcdsaP384Sign_1KiB/raw_openssl");
BENCHMARK(BM_EcdsaVerify_coffer)->Name("BM_EcdsaP384Verify_1KiB/coffer");
BENCHMARK(BM_EcdsaVerify_raw)->Name("BM_EcdsaP384Verify_1KiB/raw_openssl");
BENCHMARK(BM_HpkeSeal_coffer)->Name("BM_HpkeSeal_1KiB/coffer");
BENCHMARK(BM_HpkeSeal_raw)->Name("BM_HpkeSeal_1KiB/raw_x25519_aesgcm");
