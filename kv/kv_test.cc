// Behaviour of Store and Transaction: conflicts, isolation, ranges, seqnos, apply, rollback,
// compaction and limits.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "kv/kv_test_util.h"
#include "kv/store.h"

namespace coffer::kv {
namespace {

using testing::b;
using testing::dump;
using testing::get_str;
using testing::put_one;
using testing::remove_one;

constexpr std::string_view kMap = "accounts";
constexpr std::string_view kPublic = "public:nodes";

// ---- TxId ---------------------------------------------------------------------------------

TEST(TxId, ToStringAndParseRoundTrip) {
    TxId id{3, 42};
    EXPECT_EQ(id.to_string(), "3.42");
    auto parsed = TxId::parse("3.42");
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, id);
    auto max = TxId::parse("18446744073709551615.18446744073709551615");
    ASSERT_TRUE(max.ok());
    EXPECT_EQ(max->view, UINT64_MAX);
    EXPECT_EQ(max->seqno, UINT64_MAX);
    EXPECT_TRUE(TxId::parse("0.0").ok());
}

TEST(TxId, ParseRejectsAnythingButCanonicalDecimals) {
    for (std::string_view bad :
         {"", "1", "1.", ".1", "+1.2", "1.-2", " 1.2", "1.2 ", "01.2", "1.02", "1.2.3", "a.b",
          "18446744073709551616.1", "1.18446744073709551616", "1,2", "0x1.2"}) {
        auto r = TxId::parse(bad);
        EXPECT_FALSE(r.ok()) << "accepted '" << bad << "'";
        if (!r.ok()) {
            EXPECT_EQ(r.status().code(), Errc::kInvalidArgument);
        }
    }
}

TEST(TxId, OrdersByViewThenSeqno) {
    EXPECT_LT((TxId{1, 9}), (TxId{2, 1}));
    EXPECT_LT((TxId{2, 1}), (TxId{2, 2}));
}

// ---- Optimistic concurrency ----------------------------------------------------------------

TEST(Store, OfTwoReadModifyWritesOfOneKeyExactlyOneCommits) {
    Store store;
    put_one(store, kMap, "alice", "10");

    Transaction t1 = store.begin();
    Transaction t2 = store.begin();
    ASSERT_EQ(get_str(t1, kMap, "alice"), "10");
    ASSERT_EQ(get_str(t2, kMap, "alice"), "10");
    ASSERT_TRUE(t1.put(kMap, b("alice"), b("11")).ok());
    ASSERT_TRUE(t2.put(kMap, b("alice"), b("12")).ok());

    ASSERT_TRUE(store.commit(std::move(t1)).ok());
    auto second = store.commit(std::move(t2));
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), Errc::kConflict);
    EXPECT_NE(second.status().message().find("accounts"), std::string::npos);
    EXPECT_NE(second.status().message().find(to_hex(b("alice"))), std::string::npos);

    Transaction retry = store.begin();
    ASSERT_EQ(get_str(retry, kMap, "alice"), "11");
    ASSERT_TRUE(retry.put(kMap, b("alice"), b("12")).ok());
    ASSERT_TRUE(store.commit(std::move(retry)).ok());
    Transaction check = store.begin();
    EXPECT_EQ(get_str(check, kMap, "alice"), "12");
}

TEST(Store, ReadOfAbsentKeyConflictsWithItsInsertion) {
    Store store;
    Transaction t1 = store.begin();
    EXPECT_FALSE(t1.get(kMap, b("new")).has_value());
    ASSERT_TRUE(t1.put(kMap, b("other"), b("x")).ok());
    put_one(store, kMap, "new", "1");
    auto r = store.commit(std::move(t1));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Errc::kConflict);
}

TEST(Store, ReadOfKeyConflictsWithItsRemoval) {
    Store store;
    put_one(store, kMap, "k", "1");
    Transaction t1 = store.begin();
    EXPECT_EQ(get_str(t1, kMap, "k"), "1");
    ASSERT_TRUE(t1.put(kMap, b("other"), b("x")).ok());
    remove_one(store, kMap, "k");
    EXPECT_EQ(store.commit(std::move(t1)).status().code(), Errc::kConflict);
}

TEST(Store, BlindWritesDoNotConflictAndLastWriterWins) {
    Store store;
    Transaction t1 = store.begin();
    Transaction t2 = store.begin();
    ASSERT_TRUE(t1.put(kMap, b("k"), b("first")).ok());
    ASSERT_TRUE(t2.put(kMap, b("k"), b("second")).ok());
    ASSERT_TRUE(store.commit(std::move(t1)).ok());
    ASSERT_TRUE(store.commit(std::move(t2)).ok());
    Transaction check = store.begin();
    EXPECT_EQ(get_str(check, kMap, "k"), "second");
}

TEST(Store, ReadsOfOtherKeysDoNotConflict) {
    Store store;
    put_one(store, kMap, "a", "1");
    put_one(store, kMap, "b", "1");
    Transaction t1 = store.begin();
    EXPECT_EQ(get_str(t1, kMap, "a"), "1");
    ASSERT_TRUE(t1.put(kMap, b("a"), b("2")).ok());
    put_one(store, kMap, "b", "2");
    EXPECT_TRUE(store.commit(std::move(t1)).ok());
}

// Read-modify-write increments from several threads: none may be lost.
TEST(Store, ConcurrentIncrementsWithRetryAreNeverLost) {
    constexpr int kThreads = 4;
    constexpr int kIncrementsPerThread = 500;
    constexpr int kMaxAttempts = 100000;
    Store store;
    put_one(store, kMap, "counter", "0");

    std::atomic<int> conflicts{0};
    std::atomic<int> failures{0};
    auto worker = [&]() {
        for (int i = 0; i < kIncrementsPerThread; ++i) {
            bool done = false;
            for (int attempt = 0; attempt < kMaxAttempts && !done; ++attempt) {
                Transaction tx = store.begin();
                auto v = tx.get(kMap, b("counter"));
                uint64_t n = std::stoull(to_string(v.value_or(b("0"))));
                if (!tx.put(kMap, b("counter"), b(std::to_string(n + 1))).ok()) {
                    break;
                }
                auto r = store.commit(std::move(tx));
                done = r.ok();
                if (!done && r.status().code() == Errc::kConflict) {
                    ++conflicts;
                } else if (!done) {
                    break;
                }
            }
            if (!done) {
                ++failures;
            }
        }
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back(worker);
    }
    for (auto& t : threads) {
        t.join();
    }

    EXPECT_EQ(failures.load(), 0);
    Transaction check = store.begin();
    EXPECT_EQ(get_str(check, kMap, "counter"), std::to_string(kThreads * kIncrementsPerThread));
    EXPECT_EQ(store.current().seqno, 1u + kThreads * kIncrementsPerThread);
}

// ---- Snapshot isolation --------------------------------------------------------------------

TEST(Transaction, DoesNotSeeCommitsMadeAfterItBegan) {
    Store store;
    put_one(store, kMap, "k", "old");
    Transaction reader = store.begin();
    put_one(store, kMap, "k", "new");
    put_one(store, kMap, "fresh", "x");
    remove_one(store, kMap, "k");
    EXPECT_EQ(get_str(reader, kMap, "k"), "old");
    EXPECT_EQ(get_str(reader, kMap, "fresh"), std::nullopt);
    EXPECT_EQ(reader.get_version(kMap, b("k")), std::optional<Seqno>(1));

    // A read-only transaction is consistent at its snapshot and commits without a seqno.
    auto r = store.commit(std::move(reader));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->id.seqno, 1u);
    EXPECT_TRUE(r->write_set.empty());
    EXPECT_EQ(store.current().seqno, 4u);
}

TEST(Transaction, ReadsItsOwnWritesAndRemovals) {
    Store store;
    put_one(store, kMap, "k", "stored");
    Transaction tx = store.begin();
    ASSERT_TRUE(tx.put(kMap, b("mine"), b("v")).ok());
    EXPECT_EQ(get_str(tx, kMap, "mine"), "v");
    ASSERT_TRUE(tx.remove(kMap, b("k")).ok());
    EXPECT_EQ(get_str(tx, kMap, "k"), std::nullopt);
    ASSERT_TRUE(tx.put(kMap, b("k"), b("again")).ok());
    EXPECT_EQ(get_str(tx, kMap, "k"), "again");
    // The version reflects the snapshot, not the transaction's own writes.
    EXPECT_EQ(tx.get_version(kMap, b("k")), std::optional<Seqno>(1));
    EXPECT_EQ(tx.get_version(kMap, b("mine")), std::nullopt);
    Transaction other = store.begin();
    EXPECT_EQ(get_str(other, kMap, "mine"), std::nullopt);
}

TEST(Transaction, GetVersionIsTheSeqnoOfTheLastWrite) {
    Store store;
    put_one(store, kMap, "k", "1");
    put_one(store, kMap, "other", "1");
    Seqno s = put_one(store, kMap, "k", "2");
    Transaction tx = store.begin();
    EXPECT_EQ(tx.get_version(kMap, b("k")), std::optional<Seqno>(s));
    remove_one(store, kMap, "k");
    Transaction after = store.begin();
    EXPECT_EQ(after.get_version(kMap, b("k")), std::nullopt);
}

TEST(Transaction, BeginAtReadsAnEarlierSeqno) {
    Store store;
    put_one(store, kMap, "k", "1");
    put_one(store, kMap, "k", "2");
    auto tx = store.begin_at(1);
    ASSERT_TRUE(tx.ok());
    EXPECT_EQ(get_str(*tx, kMap, "k"), "1");
    EXPECT_EQ(store.begin_at(3).status().code(), Errc::kFailedPrecondition);
}

// ---- Range iteration -----------------------------------------------------------------------

std::vector<std::pair<std::string, std::string>> collect(Transaction& tx, std::string_view map,
                                                         std::string_view from,
                                                         std::optional<std::string_view> to,
                                                         size_t limit) {
    std::vector<std::pair<std::string, std::string>> out;
    std::optional<ByteSpan> to_span;
    if (to.has_value()) {
        to_span = as_bytes(*to);
    }
    Status s = tx.range(map, as_bytes(from), to_span, limit, [&](ByteSpan k, ByteSpan v) {
        out.emplace_back(to_string(k), to_string(v));
        return true;
    });
    EXPECT_TRUE(s.ok()) << s.to_string();
    return out;
}

using Pairs = std::vector<std::pair<std::string, std::string>>;

Pairs collect_reverse(Transaction& tx, std::string_view map, std::string_view from,
                      std::optional<std::string_view> to, size_t limit) {
    Pairs out;
    std::optional<ByteSpan> to_span;
    if (to.has_value()) {
        to_span = as_bytes(*to);
    }
    Status s = tx.range_reverse(map, as_bytes(from), to_span, limit, [&](ByteSpan k, ByteSpan v) {
        out.emplace_back(to_string(k), to_string(v));
        return true;
    });
    EXPECT_TRUE(s.ok()) << s.to_string();
    return out;
}

TEST(Range, IteratesInOrderWithinBoundsAndLimit) {
    Store store;
    for (std::string_view k : {"d", "a", "c", "b", "e", "b\x01"}) {
        put_one(store, kMap, k, std::string(k) + "v");
    }
    put_one(store, "other", "a0", "x");
    Transaction tx = store.begin();
    EXPECT_EQ(
        collect(tx, kMap, "", std::nullopt, 0),
        (Pairs{
            {"a", "av"}, {"b", "bv"}, {"b\x01", "b\x01v"}, {"c", "cv"}, {"d", "dv"}, {"e", "ev"}}));
    EXPECT_EQ(collect(tx, kMap, "b", "d", 0),
              (Pairs{{"b", "bv"}, {"b\x01", "b\x01v"}, {"c", "cv"}}));
    EXPECT_EQ(collect(tx, kMap, "b", std::nullopt, 2), (Pairs{{"b", "bv"}, {"b\x01", "b\x01v"}}));
    EXPECT_EQ(collect(tx, kMap, "c", "c", 0), Pairs{});
    EXPECT_EQ(collect(tx, "missing", "", std::nullopt, 0), Pairs{});

    int calls = 0;
    ASSERT_TRUE(
        tx.range(kMap, {}, std::nullopt, 0, [&](ByteSpan, ByteSpan) { return ++calls < 3; }).ok());
    EXPECT_EQ(calls, 3);
    EXPECT_EQ(
        tx.range(kMap, b("d"), as_bytes("c"), 0, [](ByteSpan, ByteSpan) { return true; }).code(),
        Errc::kInvalidArgument);
}

TEST(Range, MergesOwnWritesAndHidesRemovedKeys) {
    Store store;
    for (std::string_view k : {"a", "c", "e"}) {
        put_one(store, kMap, k, "stored");
    }
    Transaction tx = store.begin();
    ASSERT_TRUE(tx.put(kMap, b("b"), b("mine")).ok());
    ASSERT_TRUE(tx.put(kMap, b("c"), b("changed")).ok());
    ASSERT_TRUE(tx.remove(kMap, b("e")).ok());
    ASSERT_TRUE(tx.put(kMap, b("f"), b("mine")).ok());
    ASSERT_TRUE(tx.remove(kMap, b("zz")).ok());
    EXPECT_EQ(collect(tx, kMap, "", std::nullopt, 0),
              (Pairs{{"a", "stored"}, {"b", "mine"}, {"c", "changed"}, {"f", "mine"}}));
    EXPECT_EQ(collect(tx, kMap, "b", "f", 0), (Pairs{{"b", "mine"}, {"c", "changed"}}));
}

TEST(Range, ReverseIteratesDownwardsWithinBoundsLimitAndOwnWrites) {
    Store store;
    for (std::string_view k : {"a", "b", "c", "d", "e"}) {
        put_one(store, kMap, k, "stored");
    }
    Transaction tx = store.begin();
    ASSERT_TRUE(tx.put(kMap, b("bb"), b("mine")).ok());
    ASSERT_TRUE(tx.remove(kMap, b("d")).ok());
    ASSERT_TRUE(tx.put(kMap, b("z"), b("mine")).ok());
    EXPECT_EQ(collect_reverse(tx, kMap, "", std::nullopt, 0), (Pairs{{"z", "mine"},
                                                                     {"e", "stored"},
                                                                     {"c", "stored"},
                                                                     {"bb", "mine"},
                                                                     {"b", "stored"},
                                                                     {"a", "stored"}}));
    EXPECT_EQ(collect_reverse(tx, kMap, "b", "d", 0),
              (Pairs{{"c", "stored"}, {"bb", "mine"}, {"b", "stored"}}));
    EXPECT_EQ(collect_reverse(tx, kMap, "", "e", 2), (Pairs{{"c", "stored"}, {"bb", "mine"}}));
    EXPECT_EQ(collect_reverse(tx, "missing", "", std::nullopt, 0), Pairs{});
}

TEST(Range, ReverseEarlyStopOnlyProtectsTheKeysSeen) {
    Store store;
    for (std::string_view k : {"a", "b", "c"}) {
        put_one(store, kMap, k, "1");
    }
    Transaction tx = store.begin();
    EXPECT_EQ(collect_reverse(tx, kMap, "", std::nullopt, 2).size(), 2u);
    ASSERT_TRUE(tx.put("sums", b("total"), b("2")).ok());
    put_one(store, kMap, "a", "below the keys seen");
    EXPECT_TRUE(store.commit(std::move(tx)).ok());

    Transaction tx2 = store.begin();
    EXPECT_EQ(collect_reverse(tx2, kMap, "", std::nullopt, 2).size(), 2u);
    ASSERT_TRUE(tx2.put("sums", b("total"), b("3")).ok());
    put_one(store, kMap, "d", "inserted above: within the range seen");
    EXPECT_EQ(store.commit(std::move(tx2)).status().code(), Errc::kConflict);
}

TEST(Range, MergesAcrossStoreBatchBoundaries) {
    Store store;
    constexpr int kKeys = static_cast<int>(3 * kRangeBatchEntries + 7);
    Transaction setup = store.begin();
    for (int i = 0; i < kKeys; i += 2) {
        char key[16];
        std::snprintf(key, sizeof(key), "k%05d", i);
        ASSERT_TRUE(setup.put(kMap, as_bytes(key), as_bytes("s")).ok());
    }
    ASSERT_TRUE(store.commit(std::move(setup)).ok());

    Transaction tx = store.begin();
    Pairs expected;
    for (int i = 0; i < kKeys; ++i) {
        char key[16];
        std::snprintf(key, sizeof(key), "k%05d", i);
        if (i % 2 == 1) {
            ASSERT_TRUE(tx.put(kMap, as_bytes(key), as_bytes("t")).ok());
            expected.emplace_back(key, "t");
        } else if (i % 6 == 0) {
            ASSERT_TRUE(tx.remove(kMap, as_bytes(key)).ok());
        } else {
            expected.emplace_back(key, "s");
        }
    }
    EXPECT_EQ(collect(tx, kMap, "", std::nullopt, 0), expected);
    Pairs reversed(expected.rbegin(), expected.rend());
    EXPECT_EQ(collect_reverse(tx, kMap, "", std::nullopt, 0), reversed);
}

TEST(Range, InsertIntoAReadRangeConflicts) {
    Store store;
    put_one(store, kMap, "a", "1");
    put_one(store, kMap, "c", "1");
    Transaction tx = store.begin();
    EXPECT_EQ(collect(tx, kMap, "a", "d", 0).size(), 2u);
    ASSERT_TRUE(tx.put("sums", b("total"), b("2")).ok());
    put_one(store, kMap, "b", "phantom");
    auto r = store.commit(std::move(tx));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Errc::kConflict);
}

TEST(Range, RemovalInsideAReadRangeConflicts) {
    Store store;
    put_one(store, kMap, "a", "1");
    put_one(store, kMap, "c", "1");
    Transaction tx = store.begin();
    EXPECT_EQ(collect(tx, kMap, "", std::nullopt, 0).size(), 2u);
    ASSERT_TRUE(tx.put("sums", b("total"), b("2")).ok());
    remove_one(store, kMap, "c");
    EXPECT_EQ(store.commit(std::move(tx)).status().code(), Errc::kConflict);
}

TEST(Range, ChangesOutsideTheReadRangeDoNotConflict) {
    Store store;
    put_one(store, kMap, "b", "1");
    put_one(store, kMap, "c", "1");
    Transaction tx = store.begin();
    EXPECT_EQ(collect(tx, kMap, "b", "d", 0).size(), 2u);
    ASSERT_TRUE(tx.put("sums", b("total"), b("2")).ok());
    put_one(store, kMap, "a", "outside");
    put_one(store, kMap, "d", "outside: the end is exclusive");
    put_one(store, "other", "b", "other map");
    EXPECT_TRUE(store.commit(std::move(tx)).ok());
}

TEST(Range, AnEarlyStopOnlyProtectsTheKeysSeen) {
    Store store;
    put_one(store, kMap, "a", "1");
    put_one(store, kMap, "b", "1");
    put_one(store, kMap, "c", "1");
    Transaction tx = store.begin();
    EXPECT_EQ(collect(tx, kMap, "", std::nullopt, 2).size(), 2u);
    ASSERT_TRUE(tx.put("sums", b("total"), b("2")).ok());
    put_one(store, kMap, "c", "beyond the limit");
    put_one(store, kMap, "d", "beyond the limit");
    EXPECT_TRUE(store.commit(std::move(tx)).ok());

    Transaction tx2 = store.begin();
    EXPECT_EQ(collect(tx2, kMap, "", std::nullopt, 2).size(), 2u);
    ASSERT_TRUE(tx2.put("sums", b("total"), b("3")).ok());
    put_one(store, kMap, "b", "within the limit");
    EXPECT_EQ(store.commit(std::move(tx2)).status().code(), Errc::kConflict);
}

TEST(Range, WritingFromTheCallbackIsRefused) {
    Store store;
    put_one(store, kMap, "a", "1");
    Transaction tx = store.begin();
    Status inner;
    ASSERT_TRUE(tx.range(kMap, {}, std::nullopt, 0, [&](ByteSpan, ByteSpan) {
                      inner = tx.put(kMap, b("x"), b("y"));
                      return true;
                  }).ok());
    EXPECT_EQ(inner.code(), Errc::kFailedPrecondition);
    EXPECT_FALSE(tx.has_writes());
}

// ---- Seqnos and the commit hook ------------------------------------------------------------

class RecordingHook : public CommitHook {
  public:
    Status on_commit(TxId id, const WriteSet& ws) override {
        if (fail_next) {
            fail_next = false;
            return error(Errc::kNoSpace, "disk full");
        }
        seen.emplace_back(id, ws);
        return Status::ok_status();
    }
    bool fail_next = false;
    std::vector<std::pair<TxId, WriteSet>> seen;
};

TEST(Store, CommitsTakeConsecutiveSeqnosInTheCurrentView) {
    Store store;
    store.set_view(2);
    EXPECT_EQ(put_one(store, kMap, "a", "1"), 1u);
    EXPECT_EQ(put_one(store, kMap, "b", "1"), 2u);
    Transaction read_only = store.begin();
    EXPECT_EQ(get_str(read_only, kMap, "a"), "1");
    auto r = store.commit(std::move(read_only));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->id, (TxId{2, 2}));
    store.set_view(5);
    EXPECT_EQ(put_one(store, kMap, "c", "1"), 3u);
    EXPECT_EQ(store.current(), (TxId{5, 3}));
}

TEST(Store, CommitHookSeesEveryCommitInOrder) {
    Store store;
    RecordingHook hook;
    store.set_commit_hook(&hook);
    for (int i = 0; i < 5; ++i) {
        put_one(store, kPublic, "n" + std::to_string(i), "v");
    }
    Transaction read_only = store.begin();
    (void)read_only.get(kMap, b("x"));
    ASSERT_TRUE(store.commit(std::move(read_only)).ok());
    ASSERT_EQ(hook.seen.size(), 5u);
    for (size_t i = 0; i < hook.seen.size(); ++i) {
        EXPECT_EQ(hook.seen[i].first.seqno, i + 1);
        EXPECT_TRUE(
            hook.seen[i].second.maps.at(std::string(kPublic)).contains(b("n" + std::to_string(i))));
    }
}

TEST(Store, FailingHookLeavesTheStoreUnchanged) {
    Store store;
    RecordingHook hook;
    store.set_commit_hook(&hook);
    put_one(store, kMap, "k", "1");
    auto before = dump(store);

    hook.fail_next = true;
    Transaction tx = store.begin();
    ASSERT_TRUE(tx.put(kMap, b("k"), b("2")).ok());
    ASSERT_TRUE(tx.put(kMap, b("new"), b("2")).ok());
    auto r = store.commit(std::move(tx));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Errc::kNoSpace);
    EXPECT_EQ(store.current().seqno, 1u);
    EXPECT_EQ(dump(store), before);

    EXPECT_EQ(put_one(store, kMap, "k", "3"), 2u);
    ASSERT_EQ(hook.seen.size(), 2u);
    EXPECT_EQ(hook.seen[1].first.seqno, 2u);
}

// ---- apply ---------------------------------------------------------------------------------

TEST(Store, FollowerApplyingTheLeadersWriteSetsReachesTheSameState) {
    Store leader;
    RecordingHook hook;
    leader.set_commit_hook(&hook);
    leader.set_view(1);
    put_one(leader, kMap, "a", "1");
    put_one(leader, kPublic, "n1", "x");
    leader.set_view(3);
    put_one(leader, kMap, "a", "2");
    remove_one(leader, kPublic, "n1");
    put_one(leader, kMap, "b", "");

    Store follower;
    for (const auto& [id, ws] : hook.seen) {
        auto r = follower.apply(id, ws);
        ASSERT_TRUE(r.ok()) << r.status().to_string();
    }
    EXPECT_EQ(follower.current(), leader.current());
    EXPECT_EQ(follower.view(), 3u);
    EXPECT_EQ(dump(follower), dump(leader));
    for (Seqno s = 0; s <= leader.current().seqno; ++s) {
        EXPECT_EQ(dump(follower, s), dump(leader, s)) << "at seqno " << s;
    }
}

TEST(Store, ApplyRefusesGapsAndViewsGoingBack) {
    Store store;
    WriteSet ws;
    ws.maps["m"][b("k")] = b("v");
    EXPECT_EQ(store.apply(TxId{1, 2}, ws).status().code(), Errc::kFailedPrecondition);
    ASSERT_TRUE(store.apply(TxId{2, 1}, ws).ok());
    EXPECT_EQ(store.apply(TxId{2, 1}, ws).status().code(), Errc::kFailedPrecondition);
    EXPECT_EQ(store.apply(TxId{1, 2}, ws).status().code(), Errc::kInvalidArgument);
    WriteSet bad;
    bad.maps[""][b("k")] = b("v");
    EXPECT_EQ(store.apply(TxId{2, 2}, bad).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(store.current(), (TxId{2, 1}));
    // An entry of an older view is accepted while the store's view is already higher
    // (a follower catching up), and leaves the view alone.
    store.set_view(7);
    ASSERT_TRUE(store.apply(TxId{2, 2}, ws).ok());
    EXPECT_EQ(store.view(), 7u);
}

// ---- rollback and compaction ---------------------------------------------------------------

TEST(Store, RollbackRestoresTheStateAsOfThatSeqno) {
    Store store;
    store.set_view(1);
    put_one(store, kMap, "a", "1");
    put_one(store, kMap, "b", "1");
    auto at_two = dump(store);
    store.set_view(2);
    put_one(store, kMap, "a", "2");
    remove_one(store, kMap, "b");
    put_one(store, "later", "c", "1");

    Transaction open = store.begin();
    ASSERT_TRUE(open.put(kMap, b("z"), b("1")).ok());
    ASSERT_TRUE(store.rollback(2).ok());
    EXPECT_EQ(store.current(), (TxId{1, 2}));
    EXPECT_EQ(store.view(), 2u);
    EXPECT_EQ(dump(store), at_two);
    EXPECT_EQ(store.map_names(), std::vector<std::string>{std::string(kMap)});
    EXPECT_EQ(store.commit(std::move(open)).status().code(), Errc::kConflict);

    EXPECT_EQ(put_one(store, kMap, "a", "3"), 3u);
    EXPECT_EQ(store.current(), (TxId{2, 3}));
}

TEST(Store, RollbackBelowTheCommitPointIsRefused) {
    Store store;
    put_one(store, kMap, "a", "1");
    put_one(store, kMap, "a", "2");
    store.set_committed(2);
    EXPECT_EQ(store.committed(), 2u);
    EXPECT_EQ(store.rollback(1).code(), Errc::kFailedPrecondition);
    EXPECT_EQ(store.rollback(3).code(), Errc::kInvalidArgument);
    EXPECT_TRUE(store.rollback(2).ok());
    EXPECT_EQ(store.current().seqno, 2u);
}

TEST(Store, CompactionKeepsWhatLaterSnapshotsSee) {
    Store store;
    put_one(store, kMap, "a", "1");  // 1
    put_one(store, kMap, "a", "2");  // 2
    put_one(store, kMap, "b", "1");  // 3
    remove_one(store, kMap, "b");    // 4
    put_one(store, kMap, "a", "3");  // 5
    auto at_four = dump(store, 4);
    auto at_five = dump(store, 5);
    Transaction old = store.begin_at(2).value();
    ASSERT_TRUE(old.put(kMap, b("z"), b("1")).ok());

    store.set_committed(5);
    store.compact(4);
    EXPECT_EQ(store.compacted(), 4u);
    EXPECT_EQ(dump(store, 4), at_four);
    EXPECT_EQ(dump(store, 5), at_five);
    EXPECT_EQ(store.begin_at(3).status().code(), Errc::kFailedPrecondition);
    auto r = store.commit(std::move(old));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Errc::kConflict);
    EXPECT_NE(r.status().message().find("too old"), std::string::npos);

    // Conflict detection still works for keys whose history was cut.
    Transaction t = store.begin();
    EXPECT_EQ(get_str(t, kMap, "a"), "3");
    ASSERT_TRUE(t.put(kMap, b("a"), b("4")).ok());
    put_one(store, kMap, "a", "other");
    EXPECT_EQ(store.commit(std::move(t)).status().code(), Errc::kConflict);
}

// ---- limits --------------------------------------------------------------------------------

TEST(Transaction, WritesOutsideTheLimitsAreRefused) {
    Store store;
    Transaction tx = store.begin();
    EXPECT_EQ(tx.put("", b("k"), b("v")).code(), Errc::kInvalidArgument);
    EXPECT_EQ(tx.put(std::string(kMaxMapNameSize + 1, 'm'), b("k"), b("v")).code(),
              Errc::kInvalidArgument);
    EXPECT_EQ(tx.put(kMap, Bytes(kMaxKeySize + 1, 1), b("v")).code(), Errc::kInvalidArgument);
    EXPECT_EQ(tx.put(kMap, b("k"), Bytes(kMaxValueSize + 1, 1)).code(), Errc::kInvalidArgument);
    EXPECT_EQ(tx.remove(kMap, Bytes(kMaxKeySize + 1, 1)).code(), Errc::kInvalidArgument);
    EXPECT_FALSE(tx.has_writes());
    EXPECT_TRUE(tx.put(std::string(kMaxMapNameSize, 'm'), Bytes(kMaxKeySize, 1), Bytes{}).ok());
    EXPECT_TRUE(tx.has_writes());
}

TEST(Transaction, WriteSetAboveItsLimitIsRefused) {
    Store store;
    Transaction tx = store.begin();
    Bytes value(kMaxValueSize, 7);
    size_t puts = 0;
    Status s;
    for (int i = 0; i < 8 && s.ok(); ++i) {
        s = tx.put(kMap, b(std::to_string(i)), value);
        puts += s.ok() ? 1 : 0;
    }
    EXPECT_EQ(s.code(), Errc::kResourceExhausted);
    EXPECT_EQ(puts, kMaxWriteSetSize / kMaxValueSize - 1);
    // Overwriting a key replaces its size rather than adding to it.
    EXPECT_TRUE(tx.put(kMap, b("0"), value).ok());
}

TEST(StoreDeathTest, ViewGoingBackwardsIsABrokenInvariant) {
    Store store;
    store.set_view(3);
    EXPECT_DEATH(store.set_view(2), "view must not go backwards");
}

}  // namespace
}  // namespace coffer::kv
