// Internal to gov/: the sandboxed Lua state behind gov/constitution.h, and the `coffer` host
// table bound into it. Not a public interface (it exposes Lua's API).
//
// Error discipline: Coffer links the C++ build of Lua, so lua_error() and every raising Lua
// API call throw a C++ exception that Lua's own lua_pcall catches. C++ frames between the
// raise and that lua_pcall are unwound normally (destructors run). Two rules follow:
//   - never call a raising Lua function from a noexcept function or a destructor;
//   - never catch (...) around Lua calls (it would swallow Lua's errors); catch
//     std::exception for third-party code instead.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <lua.hpp>
#include <nlohmann/json.hpp>

#include "common/result.h"
#include "gov/constitution.h"

static_assert(LUA_VERSION_NUM == 504, "the constitution sandbox is written for Lua 5.4");

namespace coffer::gov::detail {

// What the host table allows at each point of a call.
enum class SandboxMode {
    kLoad,      // running the source's top level: no host access
    kValidate,  // pure: helpers only (certificate checks, check_constitution)
    kResolve,   // helpers and reads of public maps
    kApply,     // helpers, reads, writes of kGovernanceWritablePrefix maps, effects
};

// The per-call state. It lives on the C++ stack of run_in_sandbox's caller, outside every
// protected Lua frame, and is reached from Lua through the allocator's user data.
struct SandboxState {
    ConstitutionLimits limits;
    SandboxMode mode = SandboxMode::kLoad;
    GovernanceHost* host = nullptr;
    size_t memory_used = 0;
    // Sticky: once a limit is hit, every following instruction raises again, so that a
    // pcall inside the constitution cannot swallow the limit and keep running.
    bool memory_exceeded = false;
    // A refused allocation is retried once by Lua after an emergency collection; only if the
    // retry fails too was the limit really exceeded (sandbox_alloc tracks the retry).
    bool retry_pending = false;
    size_t refused_size = 0;
    bool budget_exceeded = false;
    bool writes_exceeded = false;
    uint64_t instructions = 0;
    size_t host_writes = 0;
    // Set after the protected call: reading the error and closing the state must not fail.
    bool unlimited = false;
    // The first error a host call returned, to give the call's error that code.
    std::optional<Status> host_error;
};

// Runs inside protected mode once the source has been loaded; may raise Lua errors. Its
// Status is run_in_sandbox's result when no Lua error happened.
using SandboxBody = std::function<Status(lua_State*)>;

// A fresh state with the sandboxed libraries and the host table, then `source`'s top level
// (in SandboxMode::kLoad), then `body` with state.mode set to `mode`.
// Errors: kResourceExhausted for an exceeded limit; the host's error code when a host call
// failed during a call that then failed; `lua_error_code` with the Lua message for any other
// Lua error; kInvalidArgument for a source over kMaxConstitutionSourceBytes.
Status run_in_sandbox(std::string_view source, const ConstitutionLimits& limits, SandboxMode mode,
                      GovernanceHost* host, Errc lua_error_code, const SandboxBody& body);

// The sandbox state of `L` (the allocator's user data).
SandboxState& sandbox_of(lua_State* L);

// "constitution exceeded its write limit (N)".
std::string writes_message(const SandboxState& state);

// Pushes the message and raises it as a Lua error. Never returns.
[[noreturn]] void raise_lua_error(lua_State* L, std::string_view message);

// Installs the global `coffer` table (host functions, helpers, null, array marker).
// Raises on memory errors.
void open_host_table(lua_State* L);

// JSON -> Lua: objects become tables, arrays become sequences carrying the array marker
// metatable, null becomes coffer.null. Raises when the bounds are exceeded or an integer
// does not fit in a Lua integer.
void push_json(lua_State* L, const nlohmann::json& value);

// Lua -> JSON for the value at `index`. Tables with the array marker become arrays; other
// tables become objects (string keys) or arrays (keys exactly 1..n); an empty unmarked table
// is an empty object. Raises on functions, userdata, NaN/inf, invalid UTF-8, mixed or sparse
// keys, and exceeded bounds.
nlohmann::json to_json(lua_State* L, int index);

}  // namespace coffer::gov::detail
