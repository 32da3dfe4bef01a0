#include "crypto/random.h"

#include <openssl/rand.h>

#include <algorithm>
#include <climits>

#include "common/check.h"

namespace coffer::crypto {

void random_fill(std::span<uint8_t> out) {
    // RAND_bytes takes an int length; fill in bounded pieces.
    constexpr size_t kMaxChunk = size_t{1} << 20;
    size_t done = 0;
    while (done < out.size()) {
        size_t n = std::min(kMaxChunk, out.size() - done);
        int rc = RAND_bytes(out.data() + done, static_cast<int>(n));
        COFFER_CHECK(rc == 1, "RAND_bytes failed: no secure randomness available");
        done += n;
    }
}

Bytes random_bytes(size_t n) {
    Bytes out(n);
    random_fill(out);
    return out;
}

}  // namespace coffer::crypto
