#include "crypto/hmac.h"

#include <openssl/evp.h>

#include "common/check.h"

namespace coffer::crypto {

Bytes hmac_sha256(ByteSpan key, ByteSpan data) {
    // An empty span may carry a null pointer, which OpenSSL reads as "no key given".
    static const uint8_t kEmpty = 0;
    const uint8_t* key_ptr = key.empty() ? &kEmpty : key.data();
    const uint8_t* data_ptr = data.empty() ? &kEmpty : data.data();

    Bytes out(kHmacSha256Size);
    size_t out_len = 0;
    const uint8_t* rc = EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key_ptr, key.size(),
                                  data_ptr, data.size(), out.data(), out.size(), &out_len);
    COFFER_CHECK(rc != nullptr && out_len == kHmacSha256Size, "EVP_Q_mac(HMAC-SHA256) failed");
    return out;
}

}  // namespace coffer::crypto
