// Helpers shared by the clean-room tests.
#pragma once

#include <gtest/gtest.h>

#include "common/testing/reference_data.h"

#include <string>
#include <vector>

#include "cleanroom/schema.h"

namespace coffer::cleanroom::testing {

// Path of a file under COFFER_DATA_DIR.
using ::coffer::reference_data::allow_missing_data;
using ::coffer::reference_data::data_exists;
using ::coffer::reference_data::data_path;
// Whole file (empty and a test failure if unreadable).
using ::coffer::reference_data::read_file;

// A schema from "name:type" column specs (no entity, join or output columns).
DatasetSchema make_schema(const std::string& name, const std::vector<std::string>& columns);

}  // namespace coffer::cleanroom::testing
