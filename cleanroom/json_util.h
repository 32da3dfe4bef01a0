// Strict JSON helpers shared by the clean-room parsers (internal to this folder).
#pragma once

#include <nlohmann/json.hpp>

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace coffer::cleanroom::detail {

// Named limit on nesting of any clean-room JSON document.
constexpr int kMaxJsonDepth = 32;

// Parses JSON, rejecting duplicate object keys (nlohmann silently keeps the last one, which
// would let two readers of the same bytes see different documents) and nesting deeper than
// kMaxJsonDepth. Errors: kInvalidArgument naming the problem.
Result<nlohmann::json> parse_json_strict(std::string_view text);

// Checks that `obj` is an object whose keys are all in `allowed` and that every key of
// `required` is present. `what` names the object in errors.
Status check_keys(const nlohmann::json& obj, std::string_view what,
                  std::initializer_list<std::string_view> required,
                  std::initializer_list<std::string_view> allowed);

// Reads a member as a string / a list of strings / a number, with errors naming `what.key`.
Result<std::string> get_string(const nlohmann::json& obj, std::string_view what,
                               std::string_view key);
Result<std::vector<std::string>> get_string_list(const nlohmann::json& obj, std::string_view what,
                                                 std::string_view key);
Result<double> get_number(const nlohmann::json& obj, std::string_view what, std::string_view key);
Result<int64_t> get_integer(const nlohmann::json& obj, std::string_view what, std::string_view key);
Result<bool> get_bool(const nlohmann::json& obj, std::string_view what, std::string_view key);

}  // namespace coffer::cleanroom::detail
