// Access to the shared reference data (../shared/data: test vectors, AMLSim, heart-disease,
// SEV-SNP reports) for GoogleTest tests. Every coffer_test target gets COFFER_DATA_DIR.
//
// A test that needs a file starts with COFFER_REQUIRE_DATA("folder/file"): when the file is
// missing the test FAILS, unless COFFER_ALLOW_MISSING_DATA=1 is set, in which case it is
// skipped with a message. Data is never silently absent.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#ifndef COFFER_DATA_DIR
#error "COFFER_DATA_DIR must be defined (coffer_test targets define it)"
#endif

namespace coffer::reference_data {

// Full path of a file under COFFER_DATA_DIR.
inline std::string data_path(const std::string& relative) {
    return std::string(COFFER_DATA_DIR) + "/" + relative;
}

// True if the path exists (file or folder).
inline bool data_exists(const std::string& relative) {
    std::error_code ec;
    return std::filesystem::exists(data_path(relative), ec);
}

// True if COFFER_ALLOW_MISSING_DATA=1.
inline bool allow_missing_data() {
    const char* v = std::getenv("COFFER_ALLOW_MISSING_DATA");
    return v != nullptr && std::string(v) == "1";
}

// Whole file contents; an unreadable file fails the test (ADD_FAILURE) and gives "".
inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        ADD_FAILURE() << "cannot read " << path;
        return {};
    }
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

}  // namespace coffer::reference_data

// Fails the test when the data is missing, or skips it if COFFER_ALLOW_MISSING_DATA=1.
#define COFFER_REQUIRE_DATA(relative)                                                       \
    do {                                                                                    \
        if (!::coffer::reference_data::data_exists(relative)) {                             \
            const std::string coffer_msg_ =                                                 \
                "reference data missing: " + ::coffer::reference_data::data_path(relative); \
            if (::coffer::reference_data::allow_missing_data()) {                           \
                GTEST_SKIP() << coffer_msg_ << " (COFFER_ALLOW_MISSING_DATA=1)";            \
            }                                                                               \
            FAIL() << coffer_msg_ << " (set COFFER_ALLOW_MISSING_DATA=1 to skip)";          \
        }                                                                                   \
    } while (0)
