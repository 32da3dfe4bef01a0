#include "crypto/tests/test_data.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace coffer::crypto::testing {

Bytes hex(const std::string& text) {
    auto bytes = from_hex(text);
    COFFER_CHECK(bytes.ok(), "malformed hex in test data: " + text);
    return std::move(bytes).value();
}

}  // namespace coffer::crypto::testing
