// Scenario scripts for the consensus simulator: small plain-text programs that drive a
// network step by step and state what must hold (the language: docs/consensus.md,
// "Scenario scripts"; the scripts: consensus/scenarios/*.txt).
//
// A scenario runs without random faults; the simulator's invariants are checked after every
// step as in the seed sweep, and any violation fails the scenario.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace coffer::consensus::sim {

// Longest script accepted, and most commands in one.
constexpr size_t kMaxScenarioBytes = 1 << 20;
constexpr size_t kMaxScenarioCommands = 10000;
// The longest single wait a script may ask for (simulated ms).
constexpr uint64_t kMaxScenarioWaitMs = 600000;

// Runs `script`. Errors: kInvalidArgument "line N: ..." for a syntax error or an unknown
// node; kFailedPrecondition "line N: ..." for a failed expectation or a command that could
// not be carried out; kInternal for a simulator invariant violation. `seed` feeds the
// simulator (scenarios do not depend on it unless they enable faults).
Status run_scenario(std::string_view script, uint64_t seed = 1);

}  // namespace coffer::consensus::sim
