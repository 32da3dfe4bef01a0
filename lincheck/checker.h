// Linearizability checker for histories of a key-value store whose keys are read/write
// registers (docs/linearizability.md).
//
// Each key is checked on its own: linearizability is local (Herlihy & Wing 1990, theorem 1),
// so a history is linearizable exactly when every key's sub-history is. A key's sub-history
// is searched with the algorithm of Wing & Gong as improved by Lowe (memoising each pair of
// "set of operations linearized so far" and "register value"), the search that Knossos and
// Porcupine use. Writes with an unknown outcome are pending forever: the search may place them
// anywhere after their invocation, or nowhere.
//
// The checker is sound: it reports a violation only when no linearization exists. When the
// search exceeds its bound it says "inconclusive", never "linearizable".
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "lincheck/history.h"

namespace coffer::lincheck {

// Default bound on the search of one key: loop iterations of the WGL search (each one tries
// one operation, or undoes one). A few seconds of work on a slow machine.
inline constexpr uint64_t kMaxSearchSteps = 20'000'000;

// Default bound on the memory of one key's memo table (the visited configurations).
inline constexpr size_t kMaxMemoBytes = size_t{512} << 20;

struct CheckOptions {
    uint64_t max_search_steps = kMaxSearchSteps;  // per key
    size_t max_memo_bytes = kMaxMemoBytes;        // per key
};

enum class Verdict {
    kLinearizable,
    kViolation,     // at least one key has no linearization
    kInconclusive,  // no violation found, but some key's search hit its bound
};

std::string_view verdict_name(Verdict verdict);

struct KeyViolation {
    std::string key;
    // The operation that no linearization could place: the first completed operation that
    // the deepest search path could not linearize before its completion.
    OpId culprit = 0;
    // The longest linearizable prefix the search found, in linearization order, and the
    // register value it leaves (nullopt: absent). Empty when a cheap pre-check found the
    // violation (a read of a value that no write on the key wrote).
    std::vector<OpId> longest_prefix;
    std::optional<std::string> value_after_prefix;
    std::string explanation;
};

struct CheckResult {
    Verdict verdict = Verdict::kLinearizable;
    std::vector<KeyViolation> violations;  // one per violating key, in key order
    std::vector<std::string> inconclusive_keys;
    size_t keys_checked = 0;
    size_t operations_judged = 0;  // after dropping failed operations and unknown reads
    uint64_t search_steps = 0;     // summed over keys

    // One paragraph for logs and test output: the verdict, then each violation's explanation.
    std::string summary() const;
};

// Checks `history`. Every key is searched, so that all violating keys are reported.
// Thread-safe (no shared state); the history is only read. Errors: kInvalidArgument when
// options bound nothing (a zero limit). A violation or an exhausted search is a CheckResult,
// not an error.
Result<CheckResult> check_linearizable(const History& history, const CheckOptions& options = {});

}  // namespace coffer::lincheck
