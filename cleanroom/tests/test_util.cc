#include "cleanroom/tests/test_util.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace coffer::cleanroom::testing {

DatasetSchema make_schema(const std::string& name, const std::vector<std::string>& columns) {
    DatasetSchema s;
    s.name = name;
    for (const std::string& spec : columns) {
        const size_t colon = spec.find(':');
        const std::string type = spec.substr(colon + 1);
        ColumnType t = ColumnType::kString;
        if (type == "int") {
            t = ColumnType::kInt;
        } else if (type == "decimal") {
            t = ColumnType::kDecimal;
        } else if (type == "bool") {
            t = ColumnType::kBool;
        } else if (type == "date") {
            t = ColumnType::kDate;
        }
        s.columns.push_back(Column{spec.substr(0, colon), t});
    }
    return s;
}

}  // namespace coffer::cleanroom::testing
