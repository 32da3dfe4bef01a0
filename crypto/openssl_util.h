// Internal helpers for the OpenSSL wrappers of this module (not part of the public API).
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"

namespace coffer::crypto::detail {

// Drains and formats OpenSSL's error queue ("reason; reason"), or "unknown error".
std::string openssl_error_string();
// Clears OpenSSL's thread-local error queue so earlier failures do not leak into messages.
void clear_openssl_errors();

// A Status for a failed OpenSSL call: "<what>: <OpenSSL reason>".
Status openssl_error(Errc code, std::string_view what);

struct BioDeleter {
    void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

struct PkeyCtxDeleter {
    void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter>;

struct MdCtxDeleter {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

struct CipherCtxDeleter {
    void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

// A read-only memory BIO over `text` (valid while text lives).
BioPtr memory_bio(std::string_view text);
// Everything written to a memory BIO, as a string.
std::string bio_to_string(BIO* bio);

}  // namespace coffer::crypto::detail
