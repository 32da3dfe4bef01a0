#include "lincheck/register_search.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <optional>

#include "common/check.h"
#include "lincheck/memo_table.h"

namespace coffer::lincheck::detail {

namespace {

constexpr uint32_t kNil = std::numeric_limits<uint32_t>::max();

struct Event {
    uint32_t op = 0;
    bool is_call = false;
    int64_t time_ns = 0;
};

// The events of the history, in time order. At equal times calls come first: two operations
// whose interval ends touch are then concurrent, which can only admit more linearizations
// (the checker must never report a violation that a coarser clock could have caused).
std::vector<Event> sorted_events(const std::vector<RegisterOp>& ops) {
    std::vector<Event> events;
    events.reserve(ops.size() * 2);
    for (size_t i = 0; i < ops.size(); ++i) {
        events.push_back(Event{static_cast<uint32_t>(i), true, ops[i].invoke_ns});
        if (!ops[i].pending) {
            events.push_back(Event{static_cast<uint32_t>(i), false, ops[i].complete_ns});
        }
    }
    std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
        if (a.time_ns != b.time_ns) {
            return a.time_ns < b.time_ns;
        }
        if (a.is_call != b.is_call) {
            return a.is_call;
        }
        return a.op < b.op;
    });
    return events;
}

// Lowe's variant of the Wing & Gong search over a doubly linked list of events. The list
// holds the events of the operations not linearized yet; linearizing an operation lifts its
// call and return out of the list, backtracking puts them back (in reverse order, so the
// links restore exactly).
class RegisterSearch {
  public:
    RegisterSearch(const std::vector<RegisterOp>& ops, const SearchLimits& limits)
        : ops_(ops),
          limits_(limits),
          events_(sorted_events(ops)),
          head_(static_cast<uint32_t>(events_.size())),
          next_(events_.size() + 1, kNil),
          prev_(events_.size() + 1, kNil),
          return_of_(ops.size(), kNil),
          bit_of_(ops.size(), 0),
          linearized_(ops.size()) {
        link_events();
        for (const RegisterOp& op : ops_) {
            remaining_ += op.pending ? 0 : 1;
        }
    }

    SearchReport run();

  private:
    void link_events();
    bool try_linearize(uint32_t call);
    uint32_t backtrack();
    void note_blocked(uint32_t op);
    void lift(uint32_t call);
    void unlift(uint32_t call);

    void unlink(uint32_t e) {
        next_[prev_[e]] = next_[e];
        if (next_[e] != kNil) {
            prev_[next_[e]] = prev_[e];
        }
    }
    void relink(uint32_t e) {
        next_[prev_[e]] = e;
        if (next_[e] != kNil) {
            prev_[next_[e]] = e;
        }
    }
    void flip(uint32_t op) { linearized_.flip(bit_of_[op]); }

    struct Frame {
        uint32_t call = 0;
        ValueId state_before = kAbsent;
    };

    const std::vector<RegisterOp>& ops_;
    SearchLimits limits_;
    std::vector<Event> events_;
    uint32_t head_;  // sentinel: next_[head_] is the first event still in the list
    std::vector<uint32_t> next_;
    std::vector<uint32_t> prev_;
    std::vector<uint32_t> return_of_;

    std::vector<uint32_t> bit_of_;  // an operation's number in invocation order
    LinearizedSet linearized_;
    ValueId state_ = kAbsent;
    std::vector<Frame> stack_;
    size_t remaining_ = 0;  // completed operations not yet linearized
    MemoTable memo_;
    uint64_t steps_ = 0;

    bool has_blocked_ = false;
    SearchReport deepest_;
};

void RegisterSearch::link_events() {
    uint32_t last = head_;
    uint32_t calls = 0;
    for (uint32_t e = 0; e < events_.size(); ++e) {
        next_[last] = e;
        prev_[e] = last;
        last = e;
        if (events_[e].is_call) {
            bit_of_[events_[e].op] = calls++;
        } else {
            return_of_[events_[e].op] = e;
        }
    }
    next_[last] = kNil;
}

void RegisterSearch::lift(uint32_t call) {
    unlink(call);
    uint32_t ret = return_of_[events_[call].op];
    if (ret != kNil) {
        unlink(ret);
    }
}

void RegisterSearch::unlift(uint32_t call) {
    uint32_t ret = return_of_[events_[call].op];
    if (ret != kNil) {
        relink(ret);
    }
    relink(call);
}

// Applies the operation of `call` to the register if the register allows it there and the
// resulting configuration is new.
bool RegisterSearch::try_linearize(uint32_t call) {
    uint32_t op_index = events_[call].op;
    const RegisterOp& op = ops_[op_index];
    if (!op.is_write && op.value != state_) {
        return false;
    }
    ValueId next_state = op.is_write ? op.value : state_;

    flip(op_index);
    if (!memo_.insert(linearized_, next_state)) {
        flip(op_index);
        return false;
    }
    stack_.push_back(Frame{call, state_});
    state_ = next_state;
    lift(call);
    remaining_ -= op.pending ? 0 : 1;
    return true;
}

// Undoes the last linearization; returns the event after its call, where the scan resumes.
uint32_t RegisterSearch::backtrack() {
    Frame frame = stack_.back();
    stack_.pop_back();
    uint32_t op_index = events_[frame.call].op;
    flip(op_index);
    state_ = frame.state_before;
    unlift(frame.call);
    remaining_ += ops_[op_index].pending ? 0 : 1;
    return next_[frame.call];
}

// The scan met the return of `op` before `op` could be linearized: the current path is dead.
// The deepest dead path is the best explanation of a violation.
void RegisterSearch::note_blocked(uint32_t op) {
    if (has_blocked_ && stack_.size() <= deepest_.longest_prefix.size()) {
        return;
    }
    has_blocked_ = true;
    deepest_.culprit = op;
    deepest_.value_after_prefix = state_;
    deepest_.longest_prefix.clear();
    for (const Frame& frame : stack_) {
        deepest_.longest_prefix.push_back(events_[frame.call].op);
    }
}

SearchReport RegisterSearch::run() {
    uint32_t entry = next_[head_];
    while (remaining_ > 0) {
        if (steps_ >= limits_.max_steps) {
            return SearchReport{SearchOutcome::kExhausted,
                                steps_,
                                0,
                                {},
                                kAbsent,
                                fmt::format("search exceeded {} steps", limits_.max_steps)};
        }
        ++steps_;
        if (memo_.bytes() > limits_.max_memo_bytes) {
            return SearchReport{
                SearchOutcome::kExhausted,
                steps_,
                0,
                {},
                kAbsent,
                fmt::format("memo table exceeded {} bytes", limits_.max_memo_bytes)};
        }

        // While a completed operation is unlinearized its return is still in the list, and
        // every event before the scan position is a call, so the scan cannot run off the end.
        COFFER_CHECK(entry != kNil, "register search ran past the last event");
        if (events_[entry].is_call) {
            entry = try_linearize(entry) ? next_[head_] : next_[entry];
            continue;
        }

        note_blocked(events_[entry].op);
        if (stack_.empty()) {
            deepest_.outcome = SearchOutcome::kViolation;
            deepest_.steps = steps_;
            return deepest_;
        }
        entry = backtrack();
    }
    return SearchReport{SearchOutcome::kLinearizable, steps_, 0, {}, kAbsent, {}};
}

}  // namespace

SearchReport search_register(const std::vector<RegisterOp>& ops, const SearchLimits& limits) {
    COFFER_CHECK(ops.size() < kNil / 2, "too many operations for one register search");
    RegisterSearch search(ops, limits);
    return search.run();
}

}  // namespace coffer::lincheck::detail
