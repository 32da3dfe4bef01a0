// Helpers for crypto tests that read the shared reference data (COFFER_DATA_DIR).
#pragma once

#include <gtest/gtest.h>

#include "common/testing/reference_data.h"

#include <cstdlib>
#include <string>

#include "common/bytes.h"

namespace coffer::crypto::testing {

// Full path of a file under COFFER_DATA_DIR.
using ::coffer::reference_data::data_path;
// True if the file exists.
using ::coffer::reference_data::data_exists;
// True if COFFER_ALLOW_MISSING_DATA=1.
using ::coffer::reference_data::allow_missing_data;
// Whole file contents (fails the test via ADD_FAILURE if unreadable).
using ::coffer::reference_data::read_file;
// Hex to bytes; aborts the test run on malformed hex (our own data).
Bytes hex(const std::string& text);

}  // namespace coffer::crypto::testing
