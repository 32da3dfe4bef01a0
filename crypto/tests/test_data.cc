#include "crypto/tests/test_data.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace coffer::crypto::testing {

std::string data_path(const std::string& relative) {
    return std::string(COFFER_DATA_DIR) + "/" + relative;
}

bool data_exists(const std::string& relative) {
    std::error_code ec;
    return std::filesystem::is_regular_file(data_path(relative), ec);
}

bool allow_missing_data() {
    const char* v = std::getenv("COFFER_ALLOW_MISSING_DATA");
    return v != nullptr && std::string(v) == "1";
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        ADD_FAILURE() << "cannot read " << path;
        return "";
    }
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

Bytes hex(const std::string& text) {
    auto bytes = from_hex(text);
    COFFER_CHECK(bytes.ok(), "malformed hex in test data: " + text);
    return std::move(bytes).value();
}

}  // namespace coffer::crypto::testing
