#include "crypto/sha256.h"

#include <openssl/evp.h>

#include <utility>

#include "common/check.h"

namespace coffer::crypto {

namespace {

void digest_into(const EVP_MD* md, ByteSpan data, uint8_t* out, unsigned int expected_size) {
    unsigned int size = 0;
    int rc = EVP_Digest(data.data(), data.size(), out, &size, md, nullptr);
    COFFER_CHECK(rc == 1 && size == expected_size, "EVP_Digest failed");
}

}  // namespace

Sha256Digest sha256(ByteSpan data) {
    Sha256Digest out{};
    digest_into(EVP_sha256(), data, out.data(), kSha256Size);
    return out;
}

Bytes sha384(ByteSpan data) {
    Bytes out(kSha384Size);
    digest_into(EVP_sha384(), data, out.data(), kSha384Size);
    return out;
}

Sha256Hasher::Sha256Hasher() : ctx_(EVP_MD_CTX_new()) {
    COFFER_CHECK(ctx_ != nullptr, "EVP_MD_CTX_new failed (out of memory)");
    COFFER_CHECK(EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) == 1, "EVP_DigestInit_ex failed");
}

Sha256Hasher::~Sha256Hasher() {
    EVP_MD_CTX_free(ctx_);
}

Sha256Hasher::Sha256Hasher(Sha256Hasher&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)) {}

Sha256Hasher& Sha256Hasher::operator=(Sha256Hasher&& other) noexcept {
    if (this != &other) {
        EVP_MD_CTX_free(ctx_);
        ctx_ = std::exchange(other.ctx_, nullptr);
    }
    return *this;
}

void Sha256Hasher::update(ByteSpan data) {
    COFFER_CHECK(ctx_ != nullptr, "Sha256Hasher used after move");
    COFFER_CHECK(EVP_DigestUpdate(ctx_, data.data(), data.size()) == 1, "EVP_DigestUpdate failed");
}

Sha256Digest Sha256Hasher::finish() {
    COFFER_CHECK(ctx_ != nullptr, "Sha256Hasher used after move");
    Sha256Digest out{};
    unsigned int size = 0;
    COFFER_CHECK(EVP_DigestFinal_ex(ctx_, out.data(), &size) == 1 && size == kSha256Size,
                 "EVP_DigestFinal_ex failed");
    COFFER_CHECK(EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) == 1, "EVP_DigestInit_ex failed");
    return out;
}

}  // namespace coffer::crypto
