// The simulated disk behind the simulator: what survives a crash.
#include <gtest/gtest.h>

#include "consensus/sim/memory_log_store.h"

namespace coffer::consensus::sim {
namespace {

Entry entry(Index index, Term term, bool signature = false) {
    return Entry{term, index, signature ? EntryKind::kSignature : EntryKind::kData,
                 to_bytes("e" + std::to_string(index))};
}

TEST(MemoryLogStore, CrashLosesUnflushedWrites) {
    MemoryLogStore store;
    ASSERT_TRUE(apply_log_ops(store, {LogOp{LogOp::Kind::kAppend, entry(1, 1), 1, 1}}).ok());
    ASSERT_EQ(store.flush().value(), 1u);
    ASSERT_TRUE(store.append(entry(2, 1)).ok());
    ASSERT_TRUE(store.save_hard_state(HardState{3, NodeId("n2")}).ok());
    EXPECT_TRUE(store.has_unflushed());
    store.crash();
    RecoveredState state = store.recover(Configuration{{"n1"}});
    ASSERT_EQ(state.entries.size(), 1u);
    EXPECT_EQ(state.hard_state, (HardState{3, NodeId("n2")}));  // synchronous
}

TEST(MemoryLogStore, TornCrashKeepsAStrictPrefixOfTheUnflushedWrites) {
    for (uint64_t seed = 0; seed < 20; ++seed) {
        MemoryLogStore store;
        for (Index i = 1; i <= 4; ++i) {
            ASSERT_TRUE(store.append(entry(i, 1)).ok());
        }
        size_t kept = store.crash_torn(seed);
        EXPECT_LT(kept, 4u);
        EXPECT_EQ(store.last(), kept);
        EXPECT_FALSE(store.has_unflushed());
    }
}

TEST(MemoryLogStore, CommitPointIsRecordedOnlyOverDurableEntries) {
    MemoryLogStore store;
    ASSERT_TRUE(store.append(entry(1, 1, true)).ok());
    store.save_commit(1);
    EXPECT_EQ(store.commit_index(), 0u);
    ASSERT_TRUE(store.flush().ok());
    store.save_commit(1);
    EXPECT_EQ(store.commit_index(), 1u);
}

TEST(MemoryLogStore, SnapshotResetKeepsAMatchingSuffixOnly) {
    MemoryLogStore matching;
    MemoryLogStore conflicting;
    for (Index i = 1; i <= 5; ++i) {
        ASSERT_TRUE(matching.append(entry(i, 2)).ok());
        ASSERT_TRUE(conflicting.append(entry(i, 1)).ok());
    }
    SnapshotMeta meta{3, 2, Configuration{{"n1"}}};
    for (MemoryLogStore* store : {&matching, &conflicting}) {
        EXPECT_FALSE(store->reset_to_snapshot(3, 2).ok());  // nothing staged yet
        ASSERT_TRUE(store->stage_snapshot(meta, to_bytes("snap")).ok());
        ASSERT_TRUE(store->reset_to_snapshot(3, 2).ok());
        EXPECT_EQ(store->base(), 3u);
        EXPECT_EQ(store->commit_index(), 3u);
    }
    EXPECT_EQ(matching.last(), 5u);
    EXPECT_EQ(conflicting.last(), 3u);
}

}  // namespace
}  // namespace coffer::consensus::sim
