// The checker against an exhaustive search on small random histories of one key: every
// verdict must agree, in both directions. The histories are deliberately hostile: coarse
// times (many ties), repeated values, reads of arbitrary values, unknown and failed outcomes.
#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "lincheck/checker.h"
#include "lincheck/history.h"

namespace coffer::lincheck {
namespace {

// Operations that must be (completed) or may be (unknown writes) placed. Failed operations
// and unknown reads never act, so they are left out.
std::vector<Operation> acting_ops(const History& history) {
    std::vector<Operation> out;
    for (const Operation& op : history.operations()) {
        bool acts = op.outcome == Outcome::kOk ||
                    (op.outcome == Outcome::kUnknown && op.kind == OpKind::kWrite);
        if (acts) {
            out.push_back(op);
        }
    }
    return out;
}

// True when some order of the unplaced operations extends the placed ones legally. An
// operation may go next when no unplaced completed operation finished strictly before it was
// invoked; an unknown write may also never be placed.
bool extend(const std::vector<Operation>& ops, std::vector<bool>& placed,
            const std::optional<std::string>& value) {
    bool all_completed_placed = true;
    for (size_t i = 0; i < ops.size(); ++i) {
        all_completed_placed =
            all_completed_placed && (placed[i] || ops[i].complete_ns == kNeverNs);
    }
    if (all_completed_placed) {
        return true;
    }

    for (size_t i = 0; i < ops.size(); ++i) {
        if (placed[i]) {
            continue;
        }
        bool blocked = false;
        for (size_t j = 0; j < ops.size(); ++j) {
            blocked = blocked || (!placed[j] && ops[j].complete_ns < ops[i].invoke_ns);
        }
        bool legal = ops[i].kind == OpKind::kWrite || ops[i].value == value;
        if (blocked || !legal) {
            continue;
        }
        placed[i] = true;
        bool found = extend(ops, placed, ops[i].kind == OpKind::kWrite ? ops[i].value : value);
        placed[i] = false;
        if (found) {
            return true;
        }
    }
    return false;
}

bool brute_force_linearizable(const History& history) {
    std::vector<Operation> ops = acting_ops(history);
    std::vector<bool> placed(ops.size(), false);
    return extend(ops, placed, std::nullopt);
}

History random_small_history(std::mt19937_64& rng) {
    auto uniform = [&rng](int64_t lo, int64_t hi) {
        return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
    };
    const std::vector<std::string> values = {"a", "b", "c"};
    History history;
    int count = static_cast<int>(uniform(2, 7));
    for (int i = 0; i < count; ++i) {
        Operation op;
        op.client = static_cast<ClientId>(i);
        op.key = "k";
        op.kind = uniform(0, 1) == 0 ? OpKind::kWrite : OpKind::kRead;
        int64_t pick = uniform(0, 3);
        op.value = pick < 3 ? std::optional(values[static_cast<size_t>(pick)]) : std::nullopt;
        if (op.kind == OpKind::kWrite && !op.value) {
            op.value = values[0];
        }
        op.invoke_ns = uniform(0, 12);
        op.complete_ns = op.invoke_ns + uniform(0, 6);
        int64_t roll = uniform(0, 9);
        op.outcome = roll < 7 ? Outcome::kOk : (roll < 9 ? Outcome::kUnknown : Outcome::kFailed);
        EXPECT_TRUE(history.add(std::move(op)).ok());
    }
    return history;
}

TEST(BruteForce, CheckerAgreesWithExhaustiveSearch) {
    constexpr int kHistories = 20000;
    std::mt19937_64 rng(20240611);
    int linearizable = 0;
    for (int i = 0; i < kHistories; ++i) {
        History history = random_small_history(rng);
        bool expected = brute_force_linearizable(history);
        Result<CheckResult> result = check_linearizable(history);
        ASSERT_TRUE(result.ok());
        ASSERT_EQ(result->verdict, expected ? Verdict::kLinearizable : Verdict::kViolation)
            << "history " << i << ": " << result->summary();
        linearizable += expected ? 1 : 0;
    }
    // Both verdicts must be well represented for the comparison to mean something.
    EXPECT_GT(linearizable, kHistories / 5);
    EXPECT_LT(linearizable, kHistories * 4 / 5);
}

}  // namespace
}  // namespace coffer::lincheck
