// The WGL search for one read/write register (internal to lincheck; see checker.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace coffer::lincheck::detail {

// Register values are interned per key: 0 is "absent" (the initial value), 1.. are the
// distinct written values. Equal values share one id, which keeps the search sound when a
// value is written twice.
using ValueId = uint32_t;
inline constexpr ValueId kAbsent = 0;

struct RegisterOp {
    bool is_write = false;
    ValueId value = kAbsent;  // written, or returned by the read
    int64_t invoke_ns = 0;
    // Completed operations must be linearized in [invoke_ns, complete_ns]; a pending write
    // (unknown outcome) has complete_ns == kNeverNs and may be linearized after invoke_ns, or
    // not at all.
    int64_t complete_ns = 0;
    bool pending = false;
};

struct SearchLimits {
    uint64_t max_steps = 0;
    size_t max_memo_bytes = 0;
};

enum class SearchOutcome { kLinearizable, kViolation, kExhausted };

struct SearchReport {
    SearchOutcome outcome = SearchOutcome::kLinearizable;
    uint64_t steps = 0;
    // kViolation: the operation the deepest search path could not place, the path (indices
    // into the input, in linearization order) and the register value it leaves.
    size_t culprit = 0;
    std::vector<size_t> longest_prefix;
    ValueId value_after_prefix = kAbsent;
    std::string exhausted_reason;  // kExhausted: which bound was hit
};

// Searches for a linearization of `ops` as one register starting absent. Pure function.
SearchReport search_register(const std::vector<RegisterOp>& ops, const SearchLimits& limits);

}  // namespace coffer::lincheck::detail
