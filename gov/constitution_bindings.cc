// The `coffer` table a constitution sees, and JSON <-> Lua conversion.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "crypto/x25519.h"
#include "crypto/x509.h"
#include "gov/constitution_sandbox.h"

namespace coffer::gov::detail {
namespace {

// coffer.null is a light userdata pointing here: equal to itself only, and no other value in
// the sandbox can be a light userdata.
const char kNullSentinel = 0;
// Registry key of the metatable that marks a table as a JSON array.
constexpr const char* kArrayMetatable = "coffer.array";

void* null_sentinel() {
    return const_cast<char*>(&kNullSentinel);
}

bool is_valid_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<uint8_t>(s[i]);
        size_t extra = 0;
        uint32_t code = 0;
        if (c < 0x80) {
            i += 1;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            extra = 1;
            code = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2;
            code = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3;
            code = c & 0x07;
        } else {
            return false;
        }
        if (i + extra >= s.size()) {
            return false;
        }
        for (size_t k = 1; k <= extra; ++k) {
            auto cc = static_cast<uint8_t>(s[i + k]);
            if ((cc & 0xc0) != 0x80) {
                return false;
            }
            code = (code << 6) | (cc & 0x3f);
        }
        static constexpr uint32_t kMinCode[] = {0, 0x80, 0x800, 0x10000};
        if (code < kMinCode[extra] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
            return false;
        }
        i += extra + 1;
    }
    return true;
}

// ---- JSON -> Lua ----

void push_array_metatable(lua_State* L) {
    luaL_getmetatable(L, kArrayMetatable);
}

void push_json_at(lua_State* L, const nlohmann::json& value, size_t depth, size_t& values);

void push_json_container(lua_State* L, const nlohmann::json& value, size_t depth, size_t& values) {
    int size = static_cast<int>(std::min(value.size(), kMaxConstitutionJsonValues));
    if (value.is_array()) {
        lua_createtable(L, size, 0);
        lua_Integer index = 1;
        for (const auto& element : value) {
            push_json_at(L, element, depth + 1, values);
            lua_rawseti(L, -2, index++);
        }
        push_array_metatable(L);
        lua_setmetatable(L, -2);
        return;
    }

    lua_createtable(L, 0, size);
    for (const auto& [key, element] : value.items()) {
        lua_pushlstring(L, key.data(), key.size());
        push_json_at(L, element, depth + 1, values);
        lua_rawset(L, -3);
    }
}

void push_json_at(lua_State* L, const nlohmann::json& value, size_t depth, size_t& values) {
    if (++values > kMaxConstitutionJsonValues) {
        raise_lua_error(
            L, "JSON has more than " + std::to_string(kMaxConstitutionJsonValues) + " values");
    }
    if (depth > kMaxConstitutionJsonDepth) {
        raise_lua_error(L, "JSON nests deeper than " + std::to_string(kMaxConstitutionJsonDepth));
    }
    luaL_checkstack(L, 3, "JSON nests too deeply");

    using Type = nlohmann::json::value_t;
    switch (value.type()) {
        case Type::null:
            lua_pushlightuserdata(L, null_sentinel());
            return;
        case Type::boolean:
            lua_pushboolean(L, value.get<bool>() ? 1 : 0);
            return;
        case Type::number_integer:
            lua_pushinteger(L, value.get<int64_t>());
            return;
        case Type::number_unsigned: {
            auto u = value.get<uint64_t>();
            if (u > static_cast<uint64_t>(std::numeric_limits<lua_Integer>::max())) {
                raise_lua_error(L, "JSON integer " + std::to_string(u) + " exceeds Lua's range");
            }
            lua_pushinteger(L, static_cast<lua_Integer>(u));
            return;
        }
        case Type::number_float:
            lua_pushnumber(L, value.get<double>());
            return;
        case Type::string: {
            const auto& s = value.get_ref<const std::string&>();
            lua_pushlstring(L, s.data(), s.size());
            return;
        }
        case Type::array:
        case Type::object:
            push_json_container(L, value, depth, values);
            return;
        default:
            raise_lua_error(L, "JSON value of an unsupported kind");
    }
}

// ---- Lua -> JSON ----

bool has_array_marker(lua_State* L, int index) {
    if (lua_getmetatable(L, index) == 0) {
        return false;
    }
    push_array_metatable(L);
    bool marked = lua_rawequal(L, -1, -2) != 0;
    lua_pop(L, 2);
    return marked;
}

std::string checked_string(lua_State* L, int index, std::string_view what) {
    size_t size = 0;
    const char* text = lua_tolstring(L, index, &size);
    std::string_view s(text, size);
    if (!is_valid_utf8(s)) {
        raise_lua_error(
            L, std::string("cannot convert to JSON: ") + std::string(what) + " is not valid UTF-8");
    }
    return std::string(s);
}

nlohmann::json to_json_at(lua_State* L, int index, size_t depth, size_t& values);

struct TableShape {
    size_t count = 0;
    lua_Integer max_index = 0;
    bool string_keys = false;
    bool other_keys = false;
};

TableShape table_shape(lua_State* L, int index) {
    TableShape shape;
    lua_pushnil(L);
    while (lua_next(L, index) != 0) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            shape.string_keys = true;
        } else if (lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1) {
            shape.max_index = std::max(shape.max_index, lua_tointeger(L, -2));
        } else {
            shape.other_keys = true;
        }
        lua_pop(L, 1);
        if (++shape.count > kMaxConstitutionJsonValues) {
            raise_lua_error(L, "cannot convert to JSON: a table has more than " +
                                   std::to_string(kMaxConstitutionJsonValues) + " entries");
        }
    }
    return shape;
}

nlohmann::json table_to_json(lua_State* L, int index, size_t depth, size_t& values) {
    luaL_checkstack(L, 4, "JSON nests too deeply");
    TableShape shape = table_shape(L, index);
    bool marked = has_array_marker(L, index);
    bool integer_keys = shape.max_index > 0;
    if (shape.other_keys || (shape.string_keys && (integer_keys || marked))) {
        raise_lua_error(L, "cannot convert to JSON: a table mixes string keys with other keys");
    }

    if (marked || integer_keys) {
        if (static_cast<size_t>(shape.max_index) != shape.count) {
            raise_lua_error(L, "cannot convert to JSON: an array has holes");
        }
        nlohmann::json array = nlohmann::json::array();
        for (lua_Integer i = 1; i <= shape.max_index; ++i) {
            lua_rawgeti(L, index, i);
            array.push_back(to_json_at(L, -1, depth + 1, values));
            lua_pop(L, 1);
        }
        return array;
    }

    nlohmann::json object = nlohmann::json::object();
    lua_pushnil(L);
    while (lua_next(L, index) != 0) {
        std::string key = checked_string(L, -2, "a key");
        object[key] = to_json_at(L, -1, depth + 1, values);
        lua_pop(L, 1);
    }
    return object;
}

nlohmann::json to_json_at(lua_State* L, int index, size_t depth, size_t& values) {
    index = lua_absindex(L, index);
    if (++values > kMaxConstitutionJsonValues) {
        raise_lua_error(L, "cannot convert to JSON: more than " +
                               std::to_string(kMaxConstitutionJsonValues) + " values");
    }
    if (depth > kMaxConstitutionJsonDepth) {
        raise_lua_error(L, "cannot convert to JSON: nested deeper than " +
                               std::to_string(kMaxConstitutionJsonDepth) +
                               " (or a table contains itself)");
    }

    switch (lua_type(L, index)) {
        case LUA_TNIL:
            return nullptr;
        case LUA_TBOOLEAN:
            return lua_toboolean(L, index) != 0;
        case LUA_TNUMBER: {
            if (lua_isinteger(L, index)) {
                return static_cast<int64_t>(lua_tointeger(L, index));
            }
            double d = lua_tonumber(L, index);
            if (!std::isfinite(d)) {
                raise_lua_error(L, "cannot convert to JSON: a number is NaN or infinite");
            }
            return d;
        }
        case LUA_TSTRING:
            return checked_string(L, index, "a string");
        case LUA_TLIGHTUSERDATA:
            if (lua_touserdata(L, index) == null_sentinel()) {
                return nullptr;
            }
            break;
        case LUA_TTABLE:
            return table_to_json(L, index, depth, values);
        default:
            break;
    }
    raise_lua_error(L, std::string("cannot convert a ") + luaL_typename(L, index) + " to JSON");
}

// ---- host functions ----

// A string argument, refused when it is not exactly a string (no number coercion) or longer
// than max_bytes.
std::string_view string_arg(lua_State* L, int index, const char* function, const char* what,
                            size_t max_bytes) {
    if (lua_type(L, index) != LUA_TSTRING) {
        raise_lua_error(L, std::string(function) + ": " + what + " must be a string, not " +
                               luaL_typename(L, index));
    }
    size_t size = 0;
    const char* text = lua_tolstring(L, index, &size);
    if (size > max_bytes) {
        raise_lua_error(L, std::string(function) + ": " + what + " exceeds " +
                               std::to_string(max_bytes) + " bytes");
    }
    return {text, size};
}

void require_mode(lua_State* L, const char* function, std::initializer_list<SandboxMode> modes) {
    SandboxState& state = sandbox_of(L);
    if (std::find(modes.begin(), modes.end(), state.mode) == modes.end()) {
        static constexpr const char* kModeNames[] = {"loading", "validate", "resolve", "apply"};
        raise_lua_error(L, std::string(function) + " is not available during " +
                               kModeNames[static_cast<int>(state.mode)]);
    }
}

// Counts one write or effect. Sticky like the other limits: once over, every later write
// fails too, and the call ends with kResourceExhausted even if the constitution catches it.
void count_write(lua_State* L) {
    SandboxState& state = sandbox_of(L);
    if (++state.host_writes > state.limits.max_host_writes) {
        state.writes_exceeded = true;
        raise_lua_error(L, writes_message(state));
    }
}

GovernanceHost& host_of(lua_State* L, const char* function) {
    GovernanceHost* host = sandbox_of(L).host;
    if (host == nullptr) {
        raise_lua_error(L, std::string(function) + ": no host in this call");
    }
    return *host;
}

std::string_view map_arg(lua_State* L, const char* function, std::string_view prefix) {
    std::string_view map = string_arg(L, 1, function, "map", kMaxGovernanceMapNameBytes);
    if (!map.starts_with(prefix)) {
        raise_lua_error(L, std::string(function) + ": map " + std::string(map) +
                               " is out of the constitution's reach (only " + std::string(prefix) +
                               "* maps are)");
    }
    return map;
}

std::string_view key_arg(lua_State* L, const char* function) {
    std::string_view key = string_arg(L, 2, function, "key", kMaxGovernanceKeyBytes);
    if (key.empty()) {
        raise_lua_error(L, std::string(function) + ": key must not be empty");
    }
    return key;
}

// Runs one host call; a host that throws despite the contract gets kInternal, so that no
// foreign exception reaches Lua's error machinery.
template <typename F>
auto guarded_host_call(F&& call) -> decltype(call()) {
    try {
        return call();
    } catch (const std::exception& e) {
        return error(Errc::kInternal, std::string("the host threw: ") + e.what());
    }
}

[[noreturn]] void raise_host_error(lua_State* L, const char* function, const Status& status) {
    SandboxState& state = sandbox_of(L);
    if (!state.host_error) {
        state.host_error = status;
    }
    raise_lua_error(L, std::string(function) + ": " + status.message());
}

int host_get(lua_State* L) {
    require_mode(L, "coffer.get", {SandboxMode::kResolve, SandboxMode::kApply});
    std::string_view map = map_arg(L, "coffer.get", kGovernanceReadablePrefix);
    std::string_view key = key_arg(L, "coffer.get");
    auto value = guarded_host_call([&] { return host_of(L, "coffer.get").get(map, key); });
    if (!value.ok()) {
        raise_host_error(L, "coffer.get", value.status());
    }
    if (!value->has_value()) {
        lua_pushnil(L);
        return 1;
    }
    push_json(L, **value);
    return 1;
}

int host_keys(lua_State* L) {
    require_mode(L, "coffer.keys", {SandboxMode::kResolve, SandboxMode::kApply});
    std::string_view map = map_arg(L, "coffer.keys", kGovernanceReadablePrefix);
    auto keys = guarded_host_call([&] { return host_of(L, "coffer.keys").keys(map); });
    if (!keys.ok()) {
        raise_host_error(L, "coffer.keys", keys.status());
    }
    std::sort(keys->begin(), keys->end());
    push_json(L, nlohmann::json(*keys));
    return 1;
}

int host_put(lua_State* L) {
    require_mode(L, "coffer.put", {SandboxMode::kApply});
    count_write(L);
    std::string_view map = map_arg(L, "coffer.put", kGovernanceWritablePrefix);
    std::string_view key = key_arg(L, "coffer.put");
    nlohmann::json value = to_json(L, 3);
    if (!value.is_object()) {
        raise_lua_error(L, "coffer.put: value must be a table that converts to a JSON object");
    }
    Status status =
        guarded_host_call([&] { return host_of(L, "coffer.put").put(map, key, value); });
    if (!status.ok()) {
        raise_host_error(L, "coffer.put", status);
    }
    return 0;
}

int host_remove(lua_State* L) {
    require_mode(L, "coffer.remove", {SandboxMode::kApply});
    count_write(L);
    std::string_view map = map_arg(L, "coffer.remove", kGovernanceWritablePrefix);
    std::string_view key = key_arg(L, "coffer.remove");
    Status status = guarded_host_call([&] { return host_of(L, "coffer.remove").remove(map, key); });
    if (!status.ok()) {
        raise_host_error(L, "coffer.remove", status);
    }
    return 0;
}

bool is_effect_name(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
}

int host_effect(lua_State* L) {
    require_mode(L, "coffer.effect", {SandboxMode::kApply});
    count_write(L);
    std::string_view name = string_arg(L, 1, "coffer.effect", "name", kMaxEffectNameBytes);
    if (!is_effect_name(name)) {
        raise_lua_error(L, "coffer.effect: name must be lower-case letters, digits and _");
    }
    nlohmann::json args = lua_isnoneornil(L, 2) ? nlohmann::json::object() : to_json(L, 2);
    if (!args.is_object()) {
        raise_lua_error(L, "coffer.effect: args must be a table that converts to a JSON object");
    }
    Status status =
        guarded_host_call([&] { return host_of(L, "coffer.effect").effect(name, args); });
    if (!status.ok()) {
        raise_host_error(L, "coffer.effect", status);
    }
    return 0;
}

// The string argument of a validation helper, or nullopt when it is not a string or too long
// to be what the helper checks (helpers answer false/nil rather than raising).
std::optional<std::string_view> helper_arg(lua_State* L) {
    if (lua_type(L, 1) != LUA_TSTRING) {
        return std::nullopt;
    }
    size_t size = 0;
    const char* text = lua_tolstring(L, 1, &size);
    if (size > kMaxHelperPemBytes) {
        return std::nullopt;
    }
    return std::string_view(text, size);
}

int helper_is_pem_certificate(lua_State* L) {
    auto text = helper_arg(L);
    lua_pushboolean(L, text && crypto::Certificate::from_pem(*text).ok() ? 1 : 0);
    return 1;
}

int helper_is_p384_certificate(lua_State* L) {
    auto text = helper_arg(L);
    bool p384 = false;
    if (text) {
        auto cert = crypto::Certificate::from_pem(*text);
        p384 = cert.ok() && cert->ecdsa_public_key().ok();
    }
    lua_pushboolean(L, p384 ? 1 : 0);
    return 1;
}

int helper_is_x25519_public_key_pem(lua_State* L) {
    auto text = helper_arg(L);
    lua_pushboolean(L, text && crypto::x25519_public_from_pem(*text).ok() ? 1 : 0);
    return 1;
}

int helper_fingerprint_of_pem(lua_State* L) {
    auto text = helper_arg(L);
    if (!text) {
        lua_pushnil(L);
        lua_pushliteral(L, "not a string of at most 64 KiB");
        return 2;
    }
    auto cert = crypto::Certificate::from_pem(*text);
    if (!cert.ok()) {
        lua_pushnil(L);
        std::string message = cert.status().message();
        lua_pushlstring(L, message.data(), message.size());
        return 2;
    }
    std::string fingerprint = cert->fingerprint_sha256_hex();
    lua_pushlstring(L, fingerprint.data(), fingerprint.size());
    return 1;
}

// Only in validate and apply: during loading it would let a source check itself recursively.
int helper_check_constitution(lua_State* L) {
    require_mode(L, "coffer.check_constitution", {SandboxMode::kValidate, SandboxMode::kApply});
    std::string_view source =
        string_arg(L, 1, "coffer.check_constitution", "source", kMaxConstitutionSourceBytes);
    Status status = Constitution::check_source(source, sandbox_of(L).limits);
    if (status.ok()) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushlstring(L, status.message().data(), status.message().size());
    return 1;
}

int helper_array(lua_State* L) {
    if (lua_isnoneornil(L, 1)) {
        lua_newtable(L);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_settop(L, 1);
        if (lua_getmetatable(L, 1) != 0) {
            lua_pop(L, 1);
            if (has_array_marker(L, 1)) {
                return 1;
            }
            raise_lua_error(L, "coffer.array: the table already has a metatable");
        }
    }
    push_array_metatable(L);
    lua_setmetatable(L, -2);
    return 1;
}

int helper_is_array(lua_State* L) {
    lua_pushboolean(L, lua_type(L, 1) == LUA_TTABLE && has_array_marker(L, 1) ? 1 : 0);
    return 1;
}

}  // namespace

void push_json(lua_State* L, const nlohmann::json& value) {
    size_t values = 0;
    push_json_at(L, value, 0, values);
}

nlohmann::json to_json(lua_State* L, int index) {
    size_t values = 0;
    return to_json_at(L, index, 0, values);
}

void open_host_table(lua_State* L) {
    luaL_newmetatable(L, kArrayMetatable);
    // A protected metatable: getmetatable() returns this string and setmetatable() refuses
    // to replace it, so a constitution cannot forge or strip the marker by accident.
    lua_pushstring(L, kArrayMetatable);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);

    static const luaL_Reg kFunctions[] = {
        {"get", host_get},
        {"put", host_put},
        {"remove", host_remove},
        {"keys", host_keys},
        {"effect", host_effect},
        {"is_pem_certificate", helper_is_pem_certificate},
        {"is_p384_certificate", helper_is_p384_certificate},
        {"is_x25519_public_key_pem", helper_is_x25519_public_key_pem},
        {"fingerprint_of_pem", helper_fingerprint_of_pem},
        {"check_constitution", helper_check_constitution},
        {"array", helper_array},
        {"is_array", helper_is_array},
        {nullptr, nullptr}};
    luaL_newlib(L, kFunctions);
    lua_pushlightuserdata(L, null_sentinel());
    lua_setfield(L, -2, "null");
    lua_setglobal(L, "coffer");
}

}  // namespace coffer::gov::detail
