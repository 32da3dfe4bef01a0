#include "gov/constitution_sandbox.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <string>

namespace coffer::gov::detail {
namespace {

// The count hook fires every kHookInterval instructions (or every instruction once a limit
// was hit): a finer interval costs time, a coarser one overshoots the budget more.
constexpr int kHookInterval = 1000;
// Below this the standard libraries alone do not fit.
constexpr size_t kMinMemoryLimitBytes = size_t{256} << 10;
// The chunk name in Lua messages: "constitution:12: ...".
constexpr const char* kChunkName = "=constitution";
constexpr const char* kPreludeChunkName = "=sandbox";

// Lua run before the constitution, in the same global table. It can use `local` upvalues
// to keep the raw functions out of the constitution's reach.
constexpr const char* kPrelude = R"lua(
local raw_setmetatable, rawget, type, error = setmetatable, rawget, type, error
local pairs, tostring, table_sort = pairs, tostring, table.sort

-- Finalizers and weak tables run at the garbage collector's whim: a constitution must
-- behave the same on every node, so neither is available.
function setmetatable(t, mt)
    if type(mt) == "table" and (rawget(mt, "__gc") ~= nil or rawget(mt, "__mode") ~= nil) then
        error("setmetatable: __gc and __mode are not available to a constitution", 2)
    end
    return raw_setmetatable(t, mt)
end

-- table.move loops in C over any range it is given, out of the instruction budget's reach;
-- this Lua version has the same meaning and is counted.
function table.move(a1, f, e, t, a2)
    if a2 == nil then
        a2 = a1
    end
    if e >= f then
        if t > e or t <= f or a1 ~= a2 then
            for i = 0, e - f do
                a2[t + i] = a1[f + i]
            end
        else
            for i = e - f, 0, -1 do
                a2[t + i] = a1[f + i]
            end
        end
    end
    return a2
end

-- table.insert and table.remove shift elements in a C loop bounded by #t, which a __len
-- metamethod can make as large as it likes; these Lua versions mean the same and are counted.
local select, math_type = select, math.type
function table.insert(t, ...)
    local count = select("#", ...)
    local e = #t + 1
    if count == 1 then
        t[e] = ...
        return
    end
    if count ~= 2 then
        error("wrong number of arguments to 'insert'", 2)
    end
    local pos, value = ...
    if math_type(pos) ~= "integer" or pos < 1 or pos > e then
        error("bad argument #2 to 'insert' (position out of bounds)", 2)
    end
    for i = e, pos + 1, -1 do
        t[i] = t[i - 1]
    end
    t[pos] = value
end

function table.remove(t, pos)
    local size = #t
    if pos == nil then
        pos = size
    elseif math_type(pos) ~= "integer" or (pos ~= size and (pos < 1 or pos > size + 1)) then
        error("bad argument #2 to 'remove' (position out of bounds)", 2)
    end
    local result = t[pos]
    while pos < size do
        t[pos] = t[pos + 1]
        pos = pos + 1
    end
    t[pos] = nil
    return result
end

-- The keys of a table in a fixed order (numbers before strings), because pairs() visits
-- them in an order that differs between Lua states and so between nodes.
function coffer.sorted_keys(t)
    local keys = {}
    for k in pairs(t) do
        keys[#keys + 1] = k
    end
    table_sort(keys, function(a, b)
        local ta, tb = type(a), type(b)
        if ta ~= tb then
            return ta < tb
        end
        if ta == "number" or ta == "string" then
            return a < b
        end
        return tostring(a) < tostring(b)
    end)
    return coffer.array(keys)
end
)lua";

void* sandbox_alloc(void* ud, void* ptr, size_t old_size, size_t new_size) {
    auto* state = static_cast<SandboxState*>(ud);
    // For a fresh block Lua passes the object kind in old_size, not a size.
    size_t old_bytes = ptr == nullptr ? 0 : old_size;
    if (new_size == 0) {
        std::free(ptr);
        state->memory_used -= old_bytes;
        return nullptr;
    }

    bool grows = new_size > old_bytes;
    if (grows && !state->unlimited &&
        state->memory_used - old_bytes + new_size > state->limits.memory_limit_bytes) {
        // Marked at once (a refusal during a collection is not retried), confirmed by a
        // failed retry, withdrawn by a successful one.
        state->memory_exceeded = true;
        state->retry_pending = !state->retry_pending;
        state->refused_size = new_size;
        return nullptr;
    }

    void* block = std::realloc(ptr, new_size);
    if (block == nullptr) {
        // A failed shrink must leave the block valid; Lua treats NULL as failure.
        return nullptr;
    }
    state->memory_used = state->memory_used - old_bytes + new_size;
    if (state->retry_pending && new_size == state->refused_size) {
        state->retry_pending = false;
        state->memory_exceeded = false;
    }
    return block;
}

std::string budget_message(const SandboxState& state) {
    return "constitution exceeded its instruction budget (" +
           std::to_string(state.limits.instruction_budget) + ")";
}

std::string memory_message(const SandboxState& state) {
    return "constitution exceeded its memory limit (" +
           std::to_string(state.limits.memory_limit_bytes) + " bytes)";
}

void count_hook(lua_State* L, lua_Debug* /*ar*/) {
    SandboxState& state = sandbox_of(L);
    state.instructions += state.budget_exceeded
                              ? 1
                              : std::min<uint64_t>(kHookInterval, state.limits.instruction_budget);
    if (state.instructions > state.limits.instruction_budget) {
        state.budget_exceeded = true;
    }
    if (!state.budget_exceeded && !state.memory_exceeded) {
        return;
    }

    lua_sethook(L, &count_hook, LUA_MASKCOUNT, 1);
    raise_lua_error(L, state.budget_exceeded ? budget_message(state) : memory_message(state));
}

int print_nothing(lua_State* /*L*/) {
    return 0;
}

// load() with the mode forced to "t": binary chunks would bypass the compiler's checks and
// can crash the interpreter. Upvalue 1: the standard load.
int sandbox_load(lua_State* L) {
    int args = std::max(lua_gettop(L), 3);
    lua_settop(L, args);
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, args, LUA_MULTRET);
    return lua_gettop(L);
}

enum class PatternFunction { kFind, kMatch, kGmatch, kGsub };

// The backtracking work of matching `pattern` against `subject_size` bytes, over-estimated:
// every *, +, - and %b may try each length, ? tries two, and an unanchored search tries each
// start position.
double pattern_work(std::string_view pattern, size_t subject_size, bool anchorable) {
    double n = static_cast<double>(subject_size) + 1;
    double work = anchorable && !pattern.empty() && pattern[0] == '^' ? 1 : n;
    size_t i = 0;
    while (i < pattern.size()) {
        char c = pattern[i];
        if (c == '%') {
            if (i + 1 < pattern.size() && pattern[i + 1] == 'b') {
                work *= n;
            }
            i += 2;
        } else if (c == '[') {
            i += 1;
            if (i < pattern.size() && pattern[i] == '^') {
                i += 1;
            }
            do {
                i += pattern[std::min(i, pattern.size() - 1)] == '%' ? 2 : 1;
            } while (i < pattern.size() && pattern[i] != ']');
            i += 1;
        } else {
            if (c == '*' || c == '+' || c == '-') {
                work *= n;
            } else if (c == '?') {
                work *= 2;
            }
            i += 1;
        }
        if (work > kMaxPatternWork) {
            return work;
        }
    }
    return work;
}

// string.find/match/gmatch/gsub behind a cost check. Upvalue 1: the standard function;
// upvalue 2: the PatternFunction.
int guarded_pattern_function(lua_State* L) {
    auto kind = static_cast<PatternFunction>(lua_tointeger(L, lua_upvalueindex(2)));
    size_t subject_size = 0;
    luaL_checklstring(L, 1, &subject_size);
    size_t pattern_size = 0;
    const char* pattern = luaL_checklstring(L, 2, &pattern_size);
    bool plain = kind == PatternFunction::kFind && lua_toboolean(L, 4);
    bool anchorable = kind != PatternFunction::kGmatch;
    if (!plain &&
        pattern_work({pattern, pattern_size}, subject_size, anchorable) > kMaxPatternWork) {
        raise_lua_error(L, "string pattern too costly for a subject of " +
                               std::to_string(subject_size) +
                               " bytes (use fewer repetitions, an anchor, or a plain find)");
    }

    int args = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, args, LUA_MULTRET);
    return lua_gettop(L);
}

void set_global_nil(lua_State* L, const char* name) {
    lua_pushnil(L);
    lua_setglobal(L, name);
}

// Expects the library table on top of the stack.
void set_field_nil(lua_State* L, const char* name) {
    lua_pushnil(L);
    lua_setfield(L, -2, name);
}

void guard_pattern_functions(lua_State* L) {
    lua_getglobal(L, LUA_STRLIBNAME);
    const std::pair<const char*, PatternFunction> functions[] = {
        {"find", PatternFunction::kFind},
        {"match", PatternFunction::kMatch},
        {"gmatch", PatternFunction::kGmatch},
        {"gsub", PatternFunction::kGsub}};
    for (const auto& [name, kind] : functions) {
        lua_getfield(L, -1, name);
        lua_pushinteger(L, static_cast<lua_Integer>(kind));
        lua_pushcclosure(L, &guarded_pattern_function, 2);
        lua_setfield(L, -2, name);
    }
    set_field_nil(L, "dump");
    lua_pop(L, 1);
}

void open_sandbox_libraries(lua_State* L) {
    const std::pair<const char*, lua_CFunction> libraries[] = {{LUA_GNAME, luaopen_base},
                                                               {LUA_STRLIBNAME, luaopen_string},
                                                               {LUA_TABLIBNAME, luaopen_table},
                                                               {LUA_MATHLIBNAME, luaopen_math},
                                                               {LUA_UTF8LIBNAME, luaopen_utf8}};
    for (const auto& [name, open] : libraries) {
        luaL_requiref(L, name, open, 1);
        lua_pop(L, 1);
    }

    for (const char* name : {"dofile", "loadfile", "collectgarbage", "warn", "require"}) {
        set_global_nil(L, name);
    }
    lua_pushcfunction(L, &print_nothing);
    lua_setglobal(L, "print");
    lua_getglobal(L, "load");
    lua_pushcclosure(L, &sandbox_load, 1);
    lua_setglobal(L, "load");

    // math.random would give every node a different answer.
    lua_getglobal(L, LUA_MATHLIBNAME);
    set_field_nil(L, "random");
    set_field_nil(L, "randomseed");
    lua_pop(L, 1);

    guard_pattern_functions(L);
    open_host_table(L);
}

void load_and_run(lua_State* L, std::string_view text, const char* chunk_name) {
    if (luaL_loadbufferx(L, text.data(), text.size(), chunk_name, "t") != LUA_OK) {
        lua_error(L);
    }
    lua_call(L, 0, 0);
}

struct ProtectedCall {
    std::string_view source;
    SandboxMode mode;
    const SandboxBody* body;
    Status result;
};

int protected_main(lua_State* L) {
    auto* call = static_cast<ProtectedCall*>(lua_touserdata(L, 1));
    lua_settop(L, 0);
    open_sandbox_libraries(L);
    load_and_run(L, kPrelude, kPreludeChunkName);
    load_and_run(L, call->source, kChunkName);

    sandbox_of(L).mode = call->mode;
    std::optional<std::string> failure;
    try {
        call->result = (*call->body)(L);
    } catch (const std::exception& e) {
        // Only C++ exceptions of our own or the host's code land here: Lua's errors are not
        // std::exception and pass through to lua_pcall.
        failure = e.what();
    }
    if (failure) {
        raise_lua_error(L, "constitution: unexpected failure: " + *failure);
    }
    return 0;
}

// The Status for a failed protected call. Runs with the memory limit lifted.
Status lua_failure(lua_State* L, const SandboxState& state, Errc lua_error_code) {
    if (state.writes_exceeded) {
        return error(Errc::kResourceExhausted, writes_message(state));
    }
    if (state.budget_exceeded) {
        return error(Errc::kResourceExhausted, budget_message(state));
    }
    if (state.memory_exceeded) {
        return error(Errc::kResourceExhausted, memory_message(state));
    }

    std::string message;
    if (lua_type(L, -1) == LUA_TSTRING) {
        size_t size = 0;
        const char* text = lua_tolstring(L, -1, &size);
        message.assign(text, size);
    } else {
        message =
            std::string("constitution raised an error object of type ") + luaL_typename(L, -1);
    }
    if (state.host_error) {
        return error(state.host_error->code(), message);
    }
    return error(lua_error_code, message);
}

}  // namespace

SandboxState& sandbox_of(lua_State* L) {
    void* ud = nullptr;
    lua_getallocf(L, &ud);
    return *static_cast<SandboxState*>(ud);
}

std::string writes_message(const SandboxState& state) {
    return "constitution exceeded its write limit (" +
           std::to_string(state.limits.max_host_writes) + ")";
}

void raise_lua_error(lua_State* L, std::string_view message) {
    lua_pushlstring(L, message.data(), message.size());
    lua_error(L);
    std::abort();  // lua_error never returns
}

Status run_in_sandbox(std::string_view source, const ConstitutionLimits& limits, SandboxMode mode,
                      GovernanceHost* host, Errc lua_error_code, const SandboxBody& body) {
    if (source.size() > kMaxConstitutionSourceBytes) {
        return error(Errc::kInvalidArgument, "constitution source exceeds " +
                                                 std::to_string(kMaxConstitutionSourceBytes) +
                                                 " bytes");
    }
    if (limits.instruction_budget == 0 || limits.memory_limit_bytes < kMinMemoryLimitBytes) {
        return error(Errc::kInvalidArgument,
                     "constitution limits: the instruction budget must be positive and the "
                     "memory limit at least " +
                         std::to_string(kMinMemoryLimitBytes) + " bytes");
    }

    SandboxState state;
    state.limits = limits;
    state.host = host;
    lua_State* L = lua_newstate(&sandbox_alloc, &state);
    if (L == nullptr) {
        return error(Errc::kResourceExhausted, memory_message(state));
    }

    uint64_t interval = std::min<uint64_t>(kHookInterval, limits.instruction_budget);
    lua_sethook(L, &count_hook, LUA_MASKCOUNT, static_cast<int>(interval));
    ProtectedCall call{source, mode, &body, Status()};
    lua_pushcfunction(L, &protected_main);
    lua_pushlightuserdata(L, &call);
    int rc = lua_pcall(L, 1, 0, 0);

    state.unlimited = true;
    lua_sethook(L, nullptr, 0, 0);
    Status result = call.result;
    if (rc != LUA_OK) {
        result = lua_failure(L, state, lua_error_code);
    } else if (state.budget_exceeded || state.memory_exceeded || state.writes_exceeded) {
        result = lua_failure(L, state, lua_error_code);
    }
    lua_close(L);
    return result;
}

}  // namespace coffer::gov::detail
