#include "lincheck/checker.h"

#include <gtest/gtest.h>

#include <string>

#include "lincheck/tests/test_histories.h"

namespace coffer::lincheck {
namespace {

using testing::HistoryBuilder;
using testing::kAbsentValue;

CheckResult check(const History& history, const CheckOptions& options = {}) {
    Result<CheckResult> result = check_linearizable(history, options);
    EXPECT_TRUE(result.ok()) << result.status().to_string();
    return result.ok() ? std::move(result).value() : CheckResult{};
}

void expect_linearizable(const HistoryBuilder& builder) {
    CheckResult result = check(builder.history());
    EXPECT_EQ(result.verdict, Verdict::kLinearizable) << result.summary();
    EXPECT_TRUE(result.violations.empty());
}

// Expects exactly one violating key and returns its report.
KeyViolation expect_violation(const HistoryBuilder& builder, const std::string& key) {
    CheckResult result = check(builder.history());
    EXPECT_EQ(result.verdict, Verdict::kViolation) << result.summary();
    if (result.violations.size() != 1) {
        ADD_FAILURE() << "expected one violation: " << result.summary();
        return KeyViolation{};
    }
    EXPECT_EQ(result.violations[0].key, key);
    EXPECT_NE(result.violations[0].explanation.find("key '" + key + "'"), std::string::npos)
        << result.violations[0].explanation;
    return result.violations[0];
}

// --- histories that must be accepted ---

TEST(Checker, EmptyHistoryIsLinearizable) {
    HistoryBuilder b;
    CheckResult result = check(b.history());
    EXPECT_EQ(result.verdict, Verdict::kLinearizable);
    EXPECT_EQ(result.keys_checked, 0u);
}

TEST(Checker, SequentialHistoryIsLinearizable) {
    HistoryBuilder b;
    b.write(1, "k", "a", 0, 10);
    b.read(1, "k", "a", 20, 30);
    b.write(2, "k", "b", 40, 50);
    b.read(3, "k", "b", 60, 70);
    b.read(1, "k", "b", 80, 90);
    expect_linearizable(b);
}

TEST(Checker, ReadsOfAbsentKeyBeforeAnyWriteAreLinearizable) {
    HistoryBuilder b;
    b.read(1, "k", kAbsentValue, 0, 10);
    b.read(2, "k", kAbsentValue, 5, 25);
    b.write(3, "k", "a", 30, 40);
    b.read(1, "k", "a", 50, 60);
    expect_linearizable(b);
}

TEST(Checker, ReadConcurrentWithFirstWriteMaySeeAbsent) {
    HistoryBuilder b;
    b.write(1, "k", "a", 0, 100);
    b.read(2, "k", "a", 10, 20);
    b.read(3, "k", kAbsentValue, 5, 15);
    expect_linearizable(b);
}

TEST(Checker, ConcurrentOverlappingWritesLetReadsSeeEither) {
    HistoryBuilder b;
    b.write(1, "k", "a", 0, 100);
    b.write(2, "k", "b", 10, 90);
    // During the writes a read may see either value, and the order may even be b then a.
    b.read(3, "k", "b", 20, 30);
    b.read(4, "k", "a", 40, 50);
    // After both, every read agrees on the last one in the chosen order.
    b.read(3, "k", "a", 110, 120);
    b.read(4, "k", "a", 130, 140);
    expect_linearizable(b);
}

TEST(Checker, OtherOrderOfOverlappingWritesIsAlsoAccepted) {
    HistoryBuilder b;
    b.write(1, "k", "a", 0, 100);
    b.write(2, "k", "b", 10, 90);
    b.read(3, "k", "b", 110, 120);
    expect_linearizable(b);
}

TEST(Checker, UnknownWriteThatTookEffectIsAccepted) {
    HistoryBuilder b;
    b.write(1, "k", "a", 0, 10);
    b.write_unknown(2, "k", "b", 20);
    b.read(3, "k", "b", 30, 40);
    b.read(1, "k", "b", 50, 60);
    expect_linearizable(b);
}

TEST(Checker, UnknownWriteThatNeverTookEffectIsAccepted) {
    HistoryBuilder b;
    b.write(1, "k", "a", 0, 10);
    b.write_unknown(2, "k", "b", 20);
    b.read(3, "k", "a", 30, 40);
    b.read(1, "k", "a", 1000, 1010);
    expect_linearizable(b);
}

TEST(Checker, UnknownWriteMayTakeEffectLongAfterItsInvocation) {
    HistoryBuilder b;
    b.write(1, "k", "a", 0, 10);
    b.write_unknown(2, "k", "b", 20);
    b.read(3, "k", "a", 500, 510);
    b.write(1, "k", "c", 600, 610);
    b.read(3, "k", "c", 700, 710);
    b.read(4, "k", "b", 5000, 5010);
    expect_linearizable(b);
}

TEST(Checker, FailedAndUnknownReadsAreIgnored) {
    HistoryBuilder b;
    b.write(1, "k", "a", 0, 10);
    b.write_failed(2, "k", "b", 20, 30);
    b.read_unknown(3, "k", 40);
    b.read(1, "k", "a", 50, 60);
    expect_linearizable(b);
}

TEST(Checker, KeysAreJudgedIndependently) {
    HistoryBuilder b;
    b.write(1, "x", "a", 0, 10);
    b.read(2, "y", kAbsentValue, 20, 30);
    b.write(2, "y", "b", 40, 50);
    b.read(1, "x", "a", 60, 70);
    CheckResult result = check(b.history());
    EXPECT_EQ(result.verdict, Verdict::kLinearizable) << result.summary();
    EXPECT_EQ(result.keys_checked, 2u);
    EXPECT_EQ(result.operations_judged, 4u);
}

TEST(Checker, OperationsTouchingInTimeAreConcurrent) {
    // The write completes at the instant the read is invoked: with one clock tick of
    // uncertainty the read may precede the write, so the checker must accept.
    HistoryBuilder b;
    b.write(1, "k", "a", 0, 10);
    b.read(2, "k", kAbsentValue, 10, 20);
    expect_linearizable(b);
}

TEST(Checker, RepeatedValueIsAcceptedWhenTheLaterWriteExplainsTheRead) {
    HistoryBuilder b;
    b.write(1, "k", "a", 0, 10);
    b.write(2, "k", "b", 20, 30);
    b.write(3, "k", "a", 40, 50);
    b.read(1, "k", "a", 60, 70);
    expect_linearizable(b);
}

// --- planted violations ---

TEST(Checker, StaleReadAfterCompletedWriteIsViolation) {
    HistoryBuilder b;
    b.write(1, "k", "a", 0, 10);
    OpId stale = b.read(2, "k", kAbsentValue, 20, 30);
    KeyViolation v = expect_violation(b, "k");
    EXPECT_EQ(v.culprit, stale);
    EXPECT_EQ(v.longest_prefix, std::vector<OpId>{0});
    EXPECT_EQ(v.value_after_prefix, std::optional<std::string>("a"));
    EXPECT_NE(v.explanation.find("read('k') -> absent"), std::string::npos) << v.explanation;
    EXPECT_NE(v.explanation.find("invoked 20 ns, completed 30 ns"), std::string::npos)
        << v.explanation;
}

TEST(Checker, ReadOfValueNeverWrittenIsViolation) {
    HistoryBuilder b;
    b.write(1, "k", "a", 0, 10);
    OpId bad = b.read(2, "k", "zzz", 20, 30);
    KeyViolation v = expect_violation(b, "k");
    EXPECT_EQ(v.culprit, bad);
    EXPECT_NE(v.explanation.find("no write on this key wrote"), std::string::npos);
}

TEST(Checker, ReadOfFailedWriteIsViolation) {
    HistoryBuilder b;
    b.write_failed(1, "k", "a", 0, 10);
    OpId bad = b.read(2, "k", "a", 20, 30);
    EXPECT_EQ(expect_violation(b, "k").culprit, bad);
}

TEST(Checker, LostAcknowledgedWriteIsViolation) {
    HistoryBuilder b;
    b.write(1, "k", "old", 0, 10);
    b.write(2, "k", "new", 20, 30);
    OpId lost = b.read(3, "k", "old", 40, 50);
    KeyViolation v = expect_violation(b, "k");
    EXPECT_EQ(v.culprit, lost);
    EXPECT_EQ(v.longest_prefix, (std::vector<OpId>{0, 1}));
    EXPECT_EQ(v.value_after_prefix, std::optional<std::string>("new"));
}

TEST(Checker, ReadThatFlipsBackIsViolation) {
    HistoryBuilder b;
    b.write(1, "k", "old", 0, 10);
    b.write(2, "k", "new", 15, 1000);
    b.read(3, "k", "new", 20, 30);
    OpId flipped = b.read(3, "k", "old", 40, 50);
    KeyViolation v = expect_violation(b, "k");
    EXPECT_EQ(v.culprit, flipped);
    EXPECT_EQ(v.longest_prefix.size(), 3u);
}

TEST(Checker, NonMonotonicReadsAcrossTwoClientsIsViolation) {
    HistoryBuilder b;
    b.write(1, "k", "old", 0, 10);
    b.write(2, "k", "new", 15, 1000);
    b.read(3, "k", "new", 20, 30);
    b.read(4, "k", "old", 40, 50);
    expect_violation(b, "k");
}

TEST(Checker, UnknownWriteSeenThenUnseenThenSeenIsViolation) {
    HistoryBuilder b;
    b.write(1, "k", "a", 0, 10);
    b.write_unknown(2, "k", "b", 20);
    b.read(3, "k", "b", 30, 40);
    b.read(3, "k", "a", 50, 60);
    b.read(3, "k", "b", 70, 80);
    expect_violation(b, "k");
}

TEST(Checker, UnknownWriteSeenBeforeItsInvocationIsViolation) {
    HistoryBuilder b;
    OpId early = b.read(1, "k", "b", 0, 10);
    b.write_unknown(2, "k", "b", 20);
    EXPECT_EQ(expect_violation(b, "k").culprit, early);
}

TEST(Checker, RepeatedValueDoesNotHideStaleRead) {
    HistoryBuilder b;
    b.write(1, "k", "a", 0, 10);
    b.write(2, "k", "b", 20, 30);
    OpId stale = b.read(3, "k", "a", 32, 38);
    b.write(1, "k", "a", 40, 50);
    EXPECT_EQ(expect_violation(b, "k").culprit, stale);
}

TEST(Checker, AcknowledgedWriteThatCannotBePlacedIsViolation) {
    // Both reads are pinned: the write of b must land between them, but the second read
    // still sees a, and no other write of a exists after b.
    HistoryBuilder b;
    b.write(1, "k", "a", 0, 10);
    b.read(2, "k", "a", 20, 30);
    b.write(3, "k", "b", 25, 35);
    b.read(2, "k", "a", 40, 50);
    b.read(4, "k", "b", 60, 70);
    expect_violation(b, "k");
}

TEST(Checker, EveryViolatingKeyIsReported) {
    HistoryBuilder b;
    b.write(1, "x", "a", 0, 10);
    b.read(2, "x", kAbsentValue, 20, 30);
    b.write(1, "y", "a", 0, 10);
    b.read(2, "y", "a", 20, 30);
    b.write(1, "z", "a", 0, 10);
    b.read(2, "z", "q", 20, 30);
    CheckResult result = check(b.history());
    EXPECT_EQ(result.verdict, Verdict::kViolation);
    ASSERT_EQ(result.violations.size(), 2u) << result.summary();
    EXPECT_EQ(result.violations[0].key, "x");
    EXPECT_EQ(result.violations[1].key, "z");
}

// --- the search bound ---

HistoryBuilder busy_history() {
    HistoryBuilder b;
    for (int round = 0; round < 20; ++round) {
        int64_t base = round * 100;
        for (ClientId c = 0; c < 8; ++c) {
            b.write(c, "k", "v" + std::to_string(round) + "-" + std::to_string(c), base + c,
                    base + 50 + c);
        }
    }
    return b;
}

TEST(Checker, ExhaustedSearchIsInconclusiveNotLinearizable) {
    HistoryBuilder b = busy_history();
    CheckOptions tight;
    tight.max_search_steps = 5;
    CheckResult result = check(b.history(), tight);
    EXPECT_EQ(result.verdict, Verdict::kInconclusive) << result.summary();
    EXPECT_EQ(result.inconclusive_keys, std::vector<std::string>{"k"});
    EXPECT_EQ(result.search_steps, 5u);

    EXPECT_EQ(check(b.history()).verdict, Verdict::kLinearizable);
}

TEST(Checker, ExhaustedSearchOfViolatingHistoryIsInconclusive) {
    HistoryBuilder b;
    b.write(1, "k", "old", 0, 10);
    b.write(2, "k", "new", 15, 1000);
    b.read(3, "k", "new", 20, 30);
    b.read(3, "k", "old", 40, 50);
    CheckOptions tight;
    tight.max_search_steps = 2;
    EXPECT_EQ(check(b.history(), tight).verdict, Verdict::kInconclusive);
}

TEST(Checker, MemoBoundGivesInconclusive) {
    HistoryBuilder b = busy_history();
    CheckOptions tight;
    tight.max_memo_bytes = 1;
    EXPECT_EQ(check(b.history(), tight).verdict, Verdict::kInconclusive);
}

TEST(Checker, ViolationOnOneKeyWinsOverInconclusiveOther) {
    HistoryBuilder b = busy_history();
    b.write(1, "x", "a", 0, 10);
    b.read(2, "x", "zzz", 20, 30);
    CheckOptions tight;
    tight.max_search_steps = 5;
    CheckResult result = check(b.history(), tight);
    EXPECT_EQ(result.verdict, Verdict::kViolation);
    EXPECT_EQ(result.inconclusive_keys, std::vector<std::string>{"k"});
}

TEST(Checker, ZeroLimitsAreRejected) {
    HistoryBuilder b;
    CheckOptions zero;
    zero.max_search_steps = 0;
    Result<CheckResult> result = check_linearizable(b.history(), zero);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), Errc::kInvalidArgument);
}

}  // namespace
}  // namespace coffer::lincheck
