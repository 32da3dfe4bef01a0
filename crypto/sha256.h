// SHA-256 (and SHA-384) digests over OpenSSL's EVP_MD interface.
//
// The free functions are thread-safe. A Sha256Hasher is thread-compatible: one thread at a
// time may use a given hasher.
#pragma once

#include <array>
#include <cstdint>

#include "common/bytes.h"

struct evp_md_ctx_st;

namespace coffer::crypto {

constexpr size_t kSha256Size = 32;
constexpr size_t kSha384Size = 48;

using Sha256Digest = std::array<uint8_t, kSha256Size>;

// SHA-256 of `data`.
Sha256Digest sha256(ByteSpan data);

// SHA-384 of `data` (48 bytes).
Bytes sha384(ByteSpan data);

// Incremental SHA-256. Move-only; owns its EVP_MD_CTX. After finish() the hasher is reset
// and may be reused for a new message.
class Sha256Hasher {
  public:
    Sha256Hasher();
    ~Sha256Hasher();
    Sha256Hasher(Sha256Hasher&& other) noexcept;
    Sha256Hasher& operator=(Sha256Hasher&& other) noexcept;
    Sha256Hasher(const Sha256Hasher&) = delete;
    Sha256Hasher& operator=(const Sha256Hasher&) = delete;

    // Appends data to the message. Must not be called on a moved-from hasher.
    void update(ByteSpan data);

    // Returns the digest of everything appended since construction or the last finish().
    Sha256Digest finish();

  private:
    evp_md_ctx_st* ctx_ = nullptr;
};

}  // namespace coffer::crypto
