// Helpers shared by the clean-room tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cleanroom/schema.h"

namespace coffer::cleanroom::testing {

// Path of a file under COFFER_DATA_DIR.
std::string data_path(const std::string& relative);
bool data_exists(const std::string& relative);
bool allow_missing_data();
// Whole file (empty and a test failure if unreadable).
std::string read_file(const std::string& path);

// A schema from "name:type" column specs (no entity, join or output columns).
DatasetSchema make_schema(const std::string& name, const std::vector<std::string>& columns);

}  // namespace coffer::cleanroom::testing

// Fails when the data is missing, or skips when COFFER_ALLOW_MISSING_DATA=1.
#define COFFER_REQUIRE_DATA(relative)                                                            \
    do {                                                                                         \
        if (!::coffer::cleanroom::testing::data_exists(relative)) {                              \
            if (::coffer::cleanroom::testing::allow_missing_data()) {                            \
                GTEST_SKIP() << "reference data " << (relative)                                  \
                             << " is missing (COFFER_ALLOW_MISSING_DATA=1)";                     \
            }                                                                                    \
            FAIL() << "reference data " << (relative) << " is missing under " << COFFER_DATA_DIR \
                   << "; set COFFER_ALLOW_MISSING_DATA=1 to skip";                               \
        }                                                                                        \
    } while (0)
