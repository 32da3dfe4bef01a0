#include "cleanroom/json_util.h"

#include <cstdint>
#include <set>

namespace coffer::cleanroom::detail {

using nlohmann::json;

Result<json> parse_json_strict(std::string_view text) {
    std::vector<std::set<std::string>> keys;
    std::string problem;
    json::parser_callback_t callback = [&](int depth, json::parse_event_t event, json& parsed) {
        if (depth > kMaxJsonDepth && problem.empty()) {
            problem = "JSON nested deeper than " + std::to_string(kMaxJsonDepth);
        }
        if (event == json::parse_event_t::object_start) {
            keys.emplace_back();
        } else if (event == json::parse_event_t::object_end && !keys.empty()) {
            keys.pop_back();
        } else if (event == json::parse_event_t::key && !keys.empty()) {
            const std::string key = parsed.get<std::string>();
            if (!keys.back().insert(key).second && problem.empty()) {
                problem = "duplicate key \"" + key + "\"";
            }
        }
        return true;
    };
    try {
        json value = json::parse(text.begin(), text.end(), callback);
        if (!problem.empty()) {
            return error(Errc::kInvalidArgument, problem);
        }
        return value;
    } catch (const json::exception& e) {
        return error(Errc::kInvalidArgument, std::string("malformed JSON: ") + e.what());
    }
}

Status check_keys(const json& obj, std::string_view what,
                  std::initializer_list<std::string_view> required,
                  std::initializer_list<std::string_view> allowed) {
    if (!obj.is_object()) {
        return error(Errc::kInvalidArgument, std::string(what) + ": expected an object");
    }
    for (const auto& [key, unused] : obj.items()) {
        bool known = false;
        for (std::string_view a : allowed) {
            known = known || a == key;
        }
        if (!known) {
            return error(Errc::kInvalidArgument,
                         std::string(what) + ": unknown key \"" + key + "\"");
        }
    }
    for (std::string_view r : required) {
        if (!obj.contains(std::string(r))) {
            return error(Errc::kInvalidArgument,
                         std::string(what) + ": missing key \"" + std::string(r) + "\"");
        }
    }
    return Status();
}

namespace {

Status type_error(std::string_view what, std::string_view key, std::string_view expected) {
    return error(Errc::kInvalidArgument, std::string(what) + "." + std::string(key) +
                                             ": expected " + std::string(expected));
}

}  // namespace

Result<std::string> get_string(const json& obj, std::string_view what, std::string_view key) {
    const json& v = obj.at(std::string(key));
    if (!v.is_string()) {
        return type_error(what, key, "a string");
    }
    return v.get<std::string>();
}

Result<std::vector<std::string>> get_string_list(const json& obj, std::string_view what,
                                                 std::string_view key) {
    const json& v = obj.at(std::string(key));
    if (!v.is_array()) {
        return type_error(what, key, "a list of strings");
    }
    std::vector<std::string> out;
    for (const json& item : v) {
        if (!item.is_string()) {
            return type_error(what, key, "a list of strings");
        }
        out.push_back(item.get<std::string>());
    }
    return out;
}

Result<double> get_number(const json& obj, std::string_view what, std::string_view key) {
    const json& v = obj.at(std::string(key));
    if (!v.is_number()) {
        return type_error(what, key, "a number");
    }
    return v.get<double>();
}

Result<int64_t> get_integer(const json& obj, std::string_view what, std::string_view key) {
    const json& v = obj.at(std::string(key));
    if (!v.is_number_integer() ||
        (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))) {
        return type_error(what, key, "an integer");
    }
    return v.get<int64_t>();
}

Result<bool> get_bool(const json& obj, std::string_view what, std::string_view key) {
    const json& v = obj.at(std::string(key));
    if (!v.is_boolean()) {
        return type_error(what, key, "true or false");
    }
    return v.get<bool>();
}

}  // namespace coffer::cleanroom::detail
