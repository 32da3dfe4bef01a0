#include "crypto/hkdf.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <memory>
#include <string>

#include "common/check.h"
#include "crypto/hmac.h"

namespace coffer::crypto {

namespace {

struct KdfCtxDeleter {
    void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};

// Empty spans may carry null pointers, which OpenSSL reads as "parameter absent".
void* param_ptr(ByteSpan s) {
    static uint8_t empty = 0;
    return s.empty() ? &empty : const_cast<uint8_t*>(s.data());
}

// One EVP_KDF "HKDF" derivation. `key` is the IKM (extract modes) or the PRK (expand only).
// The salt and info parameters are omitted when empty: OpenSSL then uses a zero-length salt
// (equivalent to HashLen zero bytes, RFC 5869 §2.2) and empty info.
Bytes hkdf_derive(int mode, ByteSpan salt, ByteSpan key, ByteSpan info, size_t length) {
    // Fetching is a provider lookup; do it once. A fetched EVP_KDF is immutable and may be
    // shared by threads (each call has its own EVP_KDF_CTX). It lives until process exit.
    static EVP_KDF* const kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
    COFFER_CHECK(kdf != nullptr, "EVP_KDF_fetch(HKDF) failed");
    std::unique_ptr<EVP_KDF_CTX, KdfCtxDeleter> ctx(EVP_KDF_CTX_new(kdf));
    COFFER_CHECK(ctx != nullptr, "EVP_KDF_CTX_new failed");

    char digest[] = "SHA256";
    OSSL_PARAM params[6];
    size_t n = 0;
    params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
    params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, param_ptr(key), key.size());
    if (!salt.empty()) {
        params[n++] =
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, param_ptr(salt), salt.size());
    }
    if (!info.empty()) {
        params[n++] =
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, param_ptr(info), info.size());
    }
    params[n] = OSSL_PARAM_construct_end();

    Bytes out(length);
    int rc = EVP_KDF_derive(ctx.get(), out.data(), out.size(), params);
    COFFER_CHECK(rc == 1, "EVP_KDF_derive(HKDF) failed");
    return out;
}

Status check_length(size_t length) {
    if (length > kHkdfSha256MaxOutput) {
        return error(Errc::kInvalidArgument, "HKDF-SHA256 output of " + std::to_string(length) +
                                                 " bytes exceeds the maximum of 8160");
    }
    return {};
}

}  // namespace

Bytes hkdf_sha256_extract(ByteSpan salt, ByteSpan ikm) {
    return hkdf_derive(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, salt, ikm, {}, kHmacSha256Size);
}

Result<Bytes> hkdf_sha256_expand(ByteSpan prk, ByteSpan info, size_t length) {
    COFFER_RETURN_IF_ERROR(check_length(length));
    if (prk.size() < kHmacSha256Size) {
        return error(Errc::kInvalidArgument, "HKDF-SHA256 PRK must be at least 32 bytes");
    }
    if (length == 0) {
        return Bytes{};
    }
    return hkdf_derive(EVP_KDF_HKDF_MODE_EXPAND_ONLY, {}, prk, info, length);
}

Result<Bytes> hkdf_sha256(ByteSpan salt, ByteSpan ikm, ByteSpan info, size_t length) {
    COFFER_RETURN_IF_ERROR(check_length(length));
    if (length == 0) {
        return Bytes{};
    }
    return hkdf_derive(EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND, salt, ikm, info, length);
}

}  // namespace coffer::crypto
