#include "crypto/openssl_util.h"

#include <openssl/err.h>

#include <limits>

#include "common/check.h"

namespace coffer::crypto::detail {

std::string openssl_error_string() {
    std::string out;
    unsigned long code = 0;
    while ((code = ERR_get_error()) != 0) {
        char buf[256];
        ERR_error_string_n(code, buf, sizeof(buf));
        if (!out.empty()) {
            out += "; ";
        }
        out += buf;
    }
    return out.empty() ? "unknown error" : out;
}

void clear_openssl_errors() {
    ERR_clear_error();
}

Status openssl_error(Errc code, std::string_view what) {
    return error(code, std::string(what) + ": " + openssl_error_string());
}

BioPtr memory_bio(std::string_view text) {
    COFFER_CHECK(text.size() <= static_cast<size_t>(std::numeric_limits<int>::max()),
                 "PEM text too large for a memory BIO");
    BIO* bio = BIO_new_mem_buf(text.data(), static_cast<int>(text.size()));
    COFFER_CHECK(bio != nullptr, "BIO_new_mem_buf failed (out of memory)");
    return BioPtr(bio);
}

std::string bio_to_string(BIO* bio) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    COFFER_CHECK(len >= 0, "BIO_get_mem_data failed");
    return std::string(data, static_cast<size_t>(len));
}

}  // namespace coffer::crypto::detail
