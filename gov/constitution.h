// The constitution: the Lua 5.4 program that decides which governance proposals are valid,
// when a vote is over, and what an accepted proposal changes (docs/governance.md,
// "Constitution").
//
// A constitution defines three global functions:
//   validate(proposal)                 -> nil, or a string saying what is wrong
//   resolve(proposal, votes, members)  -> "open" | "accepted" | "rejected"
//   apply(proposal, proposal_id)       -> changes state through the `coffer` host table
// A proposal is the JSON object {"actions": [{"name": ..., "args": {...}}, ...]}.
//
// Every call runs in a fresh sandboxed Lua state: only the base (without dofile, loadfile,
// collectgarbage; print does nothing; load reads text only), string, table, math (without
// random) and utf8 libraries; no io, os, package/require, debug or coroutine. Every call is
// bounded by an instruction budget, a memory limit and a number of writes
// (ConstitutionLimits); exceeding any ends the call with kResourceExhausted and leaves the
// process healthy. pairs() order differs between Lua states, hence between nodes: a
// constitution must use coffer.keys / coffer.sorted_keys where order matters. Lua errors never
// unwind C++ frames without running their destructors: Coffer links the C++ build of Lua
// (liblua5.4-c++), whose errors are C++ exceptions caught inside this module.
//
// Host access is narrow: apply may write only maps whose name starts with
// kGovernanceWritablePrefix and ask the node for effects; resolve may only read public
// maps; validate and the loading of the source have no host access at all.
//
// A Constitution is immutable after load: its const methods are thread-safe, provided each
// concurrent call gets its own GovernanceHost.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace coffer::gov {

// Lua instructions one call may execute (loading the source included). About 0.2 s of
// plain Lua on our machines, far more than any governance decision needs (the default
// constitution uses a few thousand).
constexpr uint64_t kDefaultInstructionBudget = 20'000'000;
// Bytes one call's Lua state may hold (the standard libraries and the source included).
constexpr size_t kDefaultMemoryLimitBytes = size_t{32} << 20;
// Writes (coffer.put, coffer.remove) plus effects one call may make: bounds the write set a
// single proposal hands the node.
constexpr size_t kDefaultMaxHostWrites = 10'000;
// The largest constitution source accepted.
constexpr size_t kMaxConstitutionSourceBytes = size_t{1} << 20;
// JSON passed to or from Lua: nesting depth and number of values (each scalar, array and
// object counts one).
constexpr size_t kMaxConstitutionJsonDepth = 32;
constexpr size_t kMaxConstitutionJsonValues = size_t{1} << 16;
// Map names, keys and effect names handed to the host.
constexpr size_t kMaxGovernanceMapNameBytes = 128;
constexpr size_t kMaxGovernanceKeyBytes = 256;
constexpr size_t kMaxEffectNameBytes = 64;
// Strings the validation helpers (coffer.is_pem_certificate, ...) look at; longer ones are
// refused without parsing.
constexpr size_t kMaxHelperPemBytes = size_t{64} << 10;
// A Lua string pattern (string.find, match, gmatch, gsub) is refused when its estimated
// backtracking work on the subject exceeds this: those functions run in C, where the
// instruction budget does not reach.
constexpr double kMaxPatternWork = 1e8;

// Maps a constitution may write (put, remove). Reads are allowed on kGovernanceReadablePrefix.
inline constexpr std::string_view kGovernanceWritablePrefix = "public:coffer.gov.";
inline constexpr std::string_view kGovernanceReadablePrefix = "public:";

struct ConstitutionLimits {
    uint64_t instruction_budget = kDefaultInstructionBudget;
    size_t memory_limit_bytes = kDefaultMemoryLimitBytes;
    size_t max_host_writes = kDefaultMaxHostWrites;
};

// What the node offers a constitution. The node implements it over one KV transaction that
// it commits only when the whole entry point succeeded: a failed apply may have made some
// calls already, and the caller must discard them.
//
// Implementations must not throw (an exception is turned into kInternal). They may refuse
// anything with an error Status; the constitution sees its message.
class GovernanceHost {
  public:
    virtual ~GovernanceHost() = default;

    // The value at (map, key), or nullopt when absent.
    virtual Result<std::optional<nlohmann::json>> get(std::string_view map,
                                                      std::string_view key) = 0;
    // Writes a JSON object at (map, key). Only called for kGovernanceWritablePrefix maps.
    virtual Status put(std::string_view map, std::string_view key, const nlohmann::json& value) = 0;
    // Removes (map, key); absent keys are not an error. Same map restriction as put.
    virtual Status remove(std::string_view map, std::string_view key) = 0;
    // Every key of `map` (any order: the constitution sees them sorted).
    virtual Result<std::vector<std::string>> keys(std::string_view map) = 0;
    // Something only the node can do (docs/governance.md lists the effects the default
    // constitution asks for: open_service, rekey_ledger, ...). `args` is a JSON object.
    virtual Status effect(std::string_view name, const nlohmann::json& args) = 0;
};

enum class ProposalState { kOpen, kAccepted, kRejected };

// "open", "accepted", "rejected".
std::string_view proposal_state_name(ProposalState state);

// member fingerprint -> true (yes) or false (no).
using Votes = std::map<std::string, bool>;

// The default constitution's source (gov/default_constitution.lua, embedded at build time).
std::string_view default_constitution_source();

class Constitution {
  public:
    // Checks `source` with check_source and keeps it with `limits`.
    // Errors: those of check_source.
    static Result<Constitution> load(std::string source, ConstitutionLimits limits = {});
    // load(default_constitution_source(), limits).
    static Result<Constitution> load_default(ConstitutionLimits limits = {});

    // Compiles `source` as text (binary chunks are refused), runs its top level in the
    // sandbox and checks that it defines validate, resolve and apply as functions.
    // Errors: kInvalidArgument with the Lua message (syntax or runtime error, missing entry
    // point, source over kMaxConstitutionSourceBytes); kResourceExhausted when the top level
    // exceeds the limits.
    static Status check_source(std::string_view source, ConstitutionLimits limits = {});

    // Runs validate(proposal). `proposal` must be a JSON object.
    // Errors: kInvalidArgument with the constitution's message when it returns a string or
    // raises an error; kInvalidArgument for a proposal that is not an object or exceeds the
    // JSON bounds; kResourceExhausted when a limit is exceeded; kFailedPrecondition when
    // validate returns something other than nil or a string.
    Status validate(const nlohmann::json& proposal) const;

    // Runs resolve(proposal, votes, members). `members` is the members map as an object
    // (fingerprint -> member value, docs/formats/governance-maps.md). `host` is read-only here:
    // coffer.get and coffer.keys work, writes and effects raise an error.
    // Errors: kFailedPrecondition with the Lua message on a Lua error or a result that is not
    // one of the three states; kResourceExhausted when a limit is exceeded; a host error's
    // code when a host call failed.
    Result<ProposalState> resolve(const nlohmann::json& proposal, const Votes& votes,
                                  const nlohmann::json& members, GovernanceHost& host) const;

    // Runs apply(proposal, proposal_id): the accepted proposal's actions write through `host`.
    // Errors: as resolve. On error the caller must discard the host's writes and effects.
    Status apply(const nlohmann::json& proposal, std::string_view proposal_id,
                 GovernanceHost& host) const;

    const std::string& source() const { return source_; }
    const ConstitutionLimits& limits() const { return limits_; }

  private:
    Constitution(std::string source, ConstitutionLimits limits)
        : source_(std::move(source)), limits_(limits) {}

    std::string source_;
    ConstitutionLimits limits_;
};

}  // namespace coffer::gov
