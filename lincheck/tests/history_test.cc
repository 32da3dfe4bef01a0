#include "lincheck/history.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "lincheck/checker.h"

namespace coffer::lincheck {
namespace {

Operation make_op(OpKind kind, std::optional<std::string> value, int64_t invoke_ns,
                  int64_t complete_ns, Outcome outcome) {
    Operation op;
    op.client = 7;
    op.kind = kind;
    op.key = "k";
    op.value = std::move(value);
    op.invoke_ns = invoke_ns;
    op.complete_ns = complete_ns;
    op.outcome = outcome;
    return op;
}

TEST(History, AddAssignsIdsInOrder) {
    History history;
    ASSERT_TRUE(history.add(make_op(OpKind::kWrite, "a", 0, 5, Outcome::kOk)).ok());
    ASSERT_TRUE(history.add(make_op(OpKind::kRead, "a", 6, 9, Outcome::kOk)).ok());
    ASSERT_EQ(history.size(), 2u);
    EXPECT_EQ(history.operations()[0].id, 0u);
    EXPECT_EQ(history.operations()[1].id, 1u);
}

TEST(History, AddRejectsWriteWithoutValue) {
    History history;
    Status status = history.add(make_op(OpKind::kWrite, std::nullopt, 0, 5, Outcome::kOk));
    EXPECT_EQ(status.code(), Errc::kInvalidArgument);
    EXPECT_EQ(history.size(), 0u);
}

TEST(History, AddRejectsCompletionBeforeInvocation) {
    History history;
    Status status = history.add(make_op(OpKind::kRead, "a", 10, 5, Outcome::kOk));
    EXPECT_EQ(status.code(), Errc::kInvalidArgument);
    status = history.add(make_op(OpKind::kWrite, "a", 10, 5, Outcome::kFailed));
    EXPECT_EQ(status.code(), Errc::kInvalidArgument);
}

TEST(History, AddRejectsOkOperationThatNeverCompleted) {
    History history;
    Status status = history.add(make_op(OpKind::kWrite, "a", 0, kNeverNs, Outcome::kOk));
    EXPECT_EQ(status.code(), Errc::kInvalidArgument);
}

TEST(History, AddNormalisesUnknownOutcomes) {
    History history;
    ASSERT_TRUE(history.add(make_op(OpKind::kWrite, "a", 0, 5, Outcome::kUnknown)).ok());
    ASSERT_TRUE(history.add(make_op(OpKind::kRead, "a", 0, 5, Outcome::kUnknown)).ok());
    EXPECT_EQ(history.operations()[0].complete_ns, kNeverNs);
    EXPECT_EQ(history.operations()[1].complete_ns, kNeverNs);
    EXPECT_FALSE(history.operations()[1].value.has_value());
}

TEST(HistoryRecorder, RecordsEveryOutcome) {
    HistoryRecorder recorder;
    auto w = recorder.invoke_write(1, "k", "a", 100);
    auto r = recorder.invoke_read(2, "k", 110);
    auto lost = recorder.invoke_write(3, "k", "b", 120);
    auto refused = recorder.invoke_write(4, "k", "c", 130);
    auto in_flight = recorder.invoke_read(5, "k", 140);
    ASSERT_TRUE(w.ok() && r.ok() && lost.ok() && refused.ok() && in_flight.ok());
    ASSERT_TRUE(recorder.complete_write_ok(*w, 150).ok());
    ASSERT_TRUE(recorder.complete_read_ok(*r, "a", 160).ok());
    ASSERT_TRUE(recorder.complete_unknown(*lost).ok());
    ASSERT_TRUE(recorder.complete_failed(*refused, 170).ok());

    History history = recorder.snapshot();
    ASSERT_EQ(history.size(), 5u);
    const auto& ops = history.operations();
    EXPECT_EQ(ops[0].outcome, Outcome::kOk);
    EXPECT_EQ(ops[0].complete_ns, 150);
    EXPECT_EQ(ops[1].value, std::optional<std::string>("a"));
    EXPECT_EQ(ops[1].client, 2u);
    EXPECT_EQ(ops[2].outcome, Outcome::kUnknown);
    EXPECT_EQ(ops[2].complete_ns, kNeverNs);
    EXPECT_EQ(ops[3].outcome, Outcome::kFailed);
    EXPECT_EQ(ops[4].outcome, Outcome::kUnknown) << "in-flight operations may still act";
}

TEST(HistoryRecorder, RejectsDoubleCompletion) {
    HistoryRecorder recorder;
    auto w = recorder.invoke_write(1, "k", "a", 0);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(recorder.complete_write_ok(*w, 5).ok());
    EXPECT_EQ(recorder.complete_write_ok(*w, 6).code(), Errc::kFailedPrecondition);
    EXPECT_EQ(recorder.complete_unknown(*w).code(), Errc::kFailedPrecondition);
}

TEST(HistoryRecorder, RejectsWrongKindUnknownHandleAndBackwardsTime) {
    HistoryRecorder recorder;
    auto w = recorder.invoke_write(1, "k", "a", 100);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(recorder.complete_read_ok(*w, "a", 200).code(), Errc::kInvalidArgument);
    EXPECT_EQ(recorder.complete_write_ok(*w, 50).code(), Errc::kInvalidArgument);
    EXPECT_EQ(recorder.complete_failed(*w, 50).code(), Errc::kInvalidArgument);
    EXPECT_EQ(recorder.complete_write_ok(HistoryRecorder::OpHandle{99}, 200).code(),
              Errc::kNotFound);
    EXPECT_TRUE(recorder.complete_write_ok(*w, 200).ok());
}

// Threads run against a store whose every operation happens under one mutex, inside the
// recorded interval: a truly linearizable execution that the checker must accept.
TEST(HistoryRecorder, ConcurrentClientsOfAtomicStoreAreLinearizable) {
    constexpr int kClients = 8;
    constexpr int kOpsPerClient = 300;
    HistoryRecorder recorder;
    std::mutex store_mutex;
    std::map<std::string, std::string> store;

    auto client = [&](ClientId id) {
        std::mt19937 rng(id);
        for (int i = 0; i < kOpsPerClient; ++i) {
            std::string key = "k" + std::to_string(rng() % 4);
            if (rng() % 2 == 0) {
                std::string value = std::to_string(id) + "-" + std::to_string(i);
                auto handle = recorder.invoke_write(id, key, value);
                ASSERT_TRUE(handle.ok());
                {
                    std::lock_guard lock(store_mutex);
                    store[key] = value;
                }
                ASSERT_TRUE(recorder.complete_write_ok(*handle).ok());
            } else {
                auto handle = recorder.invoke_read(id, key);
                ASSERT_TRUE(handle.ok());
                std::optional<std::string> value;
                {
                    std::lock_guard lock(store_mutex);
                    auto it = store.find(key);
                    value = it == store.end() ? std::nullopt : std::optional(it->second);
                }
                ASSERT_TRUE(recorder.complete_read_ok(*handle, value).ok());
            }
        }
    };
    std::vector<std::thread> threads;
    for (ClientId id = 0; id < kClients; ++id) {
        threads.emplace_back(client, id);
    }
    for (std::thread& thread : threads) {
        thread.join();
    }

    History history = recorder.snapshot();
    ASSERT_EQ(history.size(), static_cast<size_t>(kClients * kOpsPerClient));
    Result<CheckResult> result = check_linearizable(history);
    ASSERT_TRUE(result.ok()) << result.status().to_string();
    EXPECT_EQ(result->verdict, Verdict::kLinearizable) << result->summary();
}

}  // namespace
}  // namespace coffer::lincheck
