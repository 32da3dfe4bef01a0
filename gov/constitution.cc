#include "gov/constitution.h"

#include <string>
#include <utility>

#include "gov/constitution_sandbox.h"

namespace coffer::gov {
namespace {

using detail::SandboxMode;

constexpr const char* kEntryPoints[] = {"validate", "resolve", "apply"};

// Pushes the global entry point `name`, raising when it is not a function.
void push_entry_point(lua_State* L, const char* name) {
    if (lua_getglobal(L, name) != LUA_TFUNCTION) {
        detail::raise_lua_error(L, std::string("constitution does not define a function ") + name);
    }
}

// Refused before starting Lua, with a message about the caller's input. The JSON bounds are
// enforced while converting (push_json).
Status check_proposal(const nlohmann::json& proposal) {
    if (!proposal.is_object()) {
        return error(Errc::kInvalidArgument, "proposal must be a JSON object");
    }
    return Status();
}

Status invalid_result(lua_State* L, const char* entry, const char* expected) {
    return error(Errc::kFailedPrecondition, std::string("constitution: ") + entry + " returned a " +
                                                luaL_typename(L, -1) + ", expected " + expected);
}

}  // namespace

std::string_view proposal_state_name(ProposalState state) {
    switch (state) {
        case ProposalState::kOpen:
            return "open";
        case ProposalState::kAccepted:
            return "accepted";
        case ProposalState::kRejected:
            return "rejected";
    }
    return "unknown";
}

Result<Constitution> Constitution::load(std::string source, ConstitutionLimits limits) {
    COFFER_RETURN_IF_ERROR(check_source(source, limits));
    return Constitution(std::move(source), limits);
}

Result<Constitution> Constitution::load_default(ConstitutionLimits limits) {
    return load(std::string(default_constitution_source()), limits);
}

Status Constitution::check_source(std::string_view source, ConstitutionLimits limits) {
    return detail::run_in_sandbox(source, limits, SandboxMode::kLoad, nullptr,
                                  Errc::kInvalidArgument, [](lua_State* L) -> Status {
                                      for (const char* name : kEntryPoints) {
                                          push_entry_point(L, name);
                                          lua_pop(L, 1);
                                      }
                                      return Status();
                                  });
}

Status Constitution::validate(const nlohmann::json& proposal) const {
    COFFER_RETURN_IF_ERROR(check_proposal(proposal));
    return detail::run_in_sandbox(source_, limits_, SandboxMode::kValidate, nullptr,
                                  Errc::kInvalidArgument, [&proposal](lua_State* L) -> Status {
                                      push_entry_point(L, "validate");
                                      detail::push_json(L, proposal);
                                      lua_call(L, 1, 1);
                                      if (lua_isnil(L, -1)) {
                                          return Status();
                                      }
                                      if (lua_type(L, -1) == LUA_TSTRING) {
                                          size_t size = 0;
                                          const char* text = lua_tolstring(L, -1, &size);
                                          return error(Errc::kInvalidArgument,
                                                       std::string(text, size));
                                      }
                                      return invalid_result(L, "validate", "nil or a string");
                                  });
}

Result<ProposalState> Constitution::resolve(const nlohmann::json& proposal, const Votes& votes,
                                            const nlohmann::json& members,
                                            GovernanceHost& host) const {
    COFFER_RETURN_IF_ERROR(check_proposal(proposal));
    if (!members.is_object()) {
        return error(Errc::kInvalidArgument, "members must be a JSON object");
    }

    ProposalState state = ProposalState::kOpen;
    Status status = detail::run_in_sandbox(
        source_, limits_, SandboxMode::kResolve, &host, Errc::kFailedPrecondition,
        [&](lua_State* L) -> Status {
            push_entry_point(L, "resolve");
            detail::push_json(L, proposal);
            detail::push_json(L, nlohmann::json(votes));
            detail::push_json(L, members);
            lua_call(L, 3, 1);
            const char* text = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : nullptr;
            if (text == nullptr) {
                return invalid_result(L, "resolve", "\"open\", \"accepted\" or \"rejected\"");
            }
            for (ProposalState s :
                 {ProposalState::kOpen, ProposalState::kAccepted, ProposalState::kRejected}) {
                if (proposal_state_name(s) == text) {
                    state = s;
                    return Status();
                }
            }
            return error(Errc::kFailedPrecondition,
                         std::string("constitution: resolve returned \"") + text +
                             "\", expected \"open\", \"accepted\" or \"rejected\"");
        });
    COFFER_RETURN_IF_ERROR(status);
    return state;
}

Status Constitution::apply(const nlohmann::json& proposal, std::string_view proposal_id,
                           GovernanceHost& host) const {
    COFFER_RETURN_IF_ERROR(check_proposal(proposal));
    return detail::run_in_sandbox(source_, limits_, SandboxMode::kApply, &host,
                                  Errc::kFailedPrecondition, [&](lua_State* L) -> Status {
                                      push_entry_point(L, "apply");
                                      detail::push_json(L, proposal);
                                      lua_pushlstring(L, proposal_id.data(), proposal_id.size());
                                      lua_call(L, 2, 0);
                                      return Status();
                                  });
}

}  // namespace coffer::gov
