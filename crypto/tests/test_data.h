// Helpers for crypto tests that read the shared reference data (COFFER_DATA_DIR).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "common/bytes.h"

namespace coffer::crypto::testing {

// Full path of a file under COFFER_DATA_DIR.
std::string data_path(const std::string& relative);
// True if the file exists.
bool data_exists(const std::string& relative);
// True if COFFER_ALLOW_MISSING_DATA=1.
bool allow_missing_data();
// Whole file contents (fails the test via ADD_FAILURE if unreadable).
std::string read_file(const std::string& path);
// Hex to bytes; aborts the test run on malformed hex (our own data).
Bytes hex(const std::string& text);

}  // namespace coffer::crypto::testing

// Fails the test when the data file is missing, or skips it if COFFER_ALLOW_MISSING_DATA=1.
#define COFFER_REQUIRE_DATA(relative)                                                        \
    do {                                                                                     \
        if (!::coffer::crypto::testing::data_exists(relative)) {                             \
            const std::string coffer_msg_ =                                                  \
                "reference data missing: " + ::coffer::crypto::testing::data_path(relative); \
            if (::coffer::crypto::testing::allow_missing_data()) {                           \
                GTEST_SKIP() << coffer_msg_ << " (COFFER_ALLOW_MISSING_DATA=1)";             \
            }                                                                                \
            FAIL() << coffer_msg_ << " (set COFFER_ALLOW_MISSING_DATA=1 to skip)";           \
        }                                                                                    \
    } while (0)
