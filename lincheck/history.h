// Client histories of a replicated key-value store, as input to the linearizability checker.
//
// A history is the list of operations that clients invoked, each with the time it was invoked,
// the time its answer arrived and what the answer was. Times are nanoseconds of one monotonic
// clock shared by every client of the history (in one process: std::chrono::steady_clock, which
// monotonic_now_ns() reads).
//
// Two types:
// - History: a plain value (a validated list of operations), what the checker and the JSON
//   functions take. Not thread-safe for concurrent mutation, like any standard container.
// - HistoryRecorder: the thread-safe builder that concurrent client threads record into.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace coffer::lincheck {

// Completion time of an operation whose answer never arrived: it may take effect at any point
// after its invocation, so it is treated as completing at +infinity.
inline constexpr int64_t kNeverNs = std::numeric_limits<int64_t>::max();

// Most operations one history may hold; a recorder refuses more, a JSON history with more is
// rejected. Sized far above any test run (the checker's search is the real limit).
inline constexpr size_t kMaxHistoryOps = 4'000'000;

using ClientId = uint32_t;
using OpId = uint64_t;

enum class OpKind { kWrite, kRead };

enum class Outcome {
    // The write took effect; the read returned `value` (nullopt: the key was absent).
    kOk,
    // No answer (timeout, dropped connection, client stopped): a write may or may not have
    // taken effect, at any point after its invocation. A read carries no information.
    kUnknown,
    // The operation certainly did not take effect (the server refused it before committing).
    kFailed,
};

std::string_view op_kind_name(OpKind kind);
std::string_view outcome_name(Outcome outcome);

struct Operation {
    OpId id = 0;  // index in the history, assigned by History::add
    ClientId client = 0;
    OpKind kind = OpKind::kRead;
    std::string key;
    // Write: the value written (always set). Read with outcome kOk: the value returned, nullopt
    // when the key was absent. Otherwise unused (nullopt).
    std::optional<std::string> value;
    int64_t invoke_ns = 0;
    int64_t complete_ns = kNeverNs;  // kNeverNs for kUnknown
    Outcome outcome = Outcome::kUnknown;
};

// "op 4: read('k') -> 'v' by client 3 [invoked 100 ns, completed 250 ns, ok]": a short,
// human description for explanations.
// Keys and values are test data, never secrets, so printing them is intended.
std::string describe(const Operation& op);

// A validated list of operations. Ids are indices into operations().
class History {
  public:
    // Appends `op` after checking it, assigning op.id = size(). Errors: kInvalidArgument when
    // a write has no value, a completed operation has complete_ns < invoke_ns or an ok one
    // completes at kNeverNs, invoke_ns is kNeverNs; kResourceExhausted past kMaxHistoryOps.
    // An unknown outcome's complete_ns is normalised to kNeverNs and a read's value is
    // cleared unless the read is ok.
    Status add(Operation op);

    const std::vector<Operation>& operations() const { return ops_; }
    size_t size() const { return ops_.size(); }

  private:
    std::vector<Operation> ops_;
};

// Nanoseconds of std::chrono::steady_clock. Thread-safe.
int64_t monotonic_now_ns();

// Thread-safe recorder for client threads. A client calls invoke_* just BEFORE sending its
// request and complete_* just AFTER its answer arrived (or it gave up), so that the recorded
// interval contains the real effect of the operation. Every method may be called from any
// thread; each takes one mutex briefly.
class HistoryRecorder {
  public:
    struct OpHandle {
        OpId id = 0;
    };

    // Record an invocation. Errors: kResourceExhausted past kMaxHistoryOps; kInvalidArgument
    // when invoke_ns is kNeverNs.
    Result<OpHandle> invoke_write(ClientId client, std::string key, std::string value,
                                  int64_t invoke_ns = monotonic_now_ns());
    Result<OpHandle> invoke_read(ClientId client, std::string key,
                                 int64_t invoke_ns = monotonic_now_ns());

    // Record a completion. Errors: kNotFound for a handle this recorder did not give;
    // kFailedPrecondition when the operation already completed; kInvalidArgument when the
    // kind does not match (complete_read on a write) or complete_ns < invoke_ns.
    Status complete_write_ok(OpHandle handle, int64_t complete_ns = monotonic_now_ns());
    Status complete_read_ok(OpHandle handle, std::optional<std::string> value,
                            int64_t complete_ns = monotonic_now_ns());
    Status complete_unknown(OpHandle handle);
    Status complete_failed(OpHandle handle, int64_t complete_ns = monotonic_now_ns());

    // A copy of everything recorded so far. Operations still in flight are given the outcome
    // kUnknown: their request may still take effect.
    History snapshot() const;

    size_t size() const;

  private:
    struct Slot {
        Operation op;
        bool completed = false;
    };

    Result<OpHandle> invoke(Operation op);
    Status complete(OpHandle handle, OpKind kind, Outcome outcome, std::optional<std::string> value,
                    int64_t complete_ns);
    // The slot of an operation not yet completed. Requires mutex_ held.
    Result<Slot*> open_slot_locked(OpHandle handle);

    mutable std::mutex mutex_;
    std::vector<Slot> slots_;  // guarded by mutex_
};

}  // namespace coffer::lincheck
