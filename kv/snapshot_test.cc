// Store snapshots: round trips with versions, older seqnos, and strict parsing.
#include <gtest/gtest.h>

#include <string>

#include "kv/kv_test_util.h"
#include "kv/store.h"

namespace coffer::kv {
namespace {

using testing::b;
using testing::dump;
using testing::get_str;
using testing::put_one;
using testing::remove_one;

// A store with public and private maps, removals, empty values and binary keys.
std::unique_ptr<Store> sample_store() {
    auto store = std::make_unique<Store>();
    store->set_view(1);
    put_one(*store, "public:nodes", "n1", "info");
    put_one(*store, "accounts", "alice", "10");
    put_one(*store, "accounts", "bob", "");
    store->set_view(2);
    put_one(*store, "accounts", "alice", "11");
    remove_one(*store, "accounts", "bob");
    put_one(*store, "public:nodes", std::string("\x00\xff", 2), "binary key");
    put_one(*store, "gone", "x", "1");
    remove_one(*store, "gone", "x");
    return store;
}

TEST(Snapshot, RoundTripPreservesValuesVersionsAndIds) {
    auto store = sample_store();
    TxId at = store->current();
    auto snap = store->snapshot(at.seqno);
    ASSERT_TRUE(snap.ok()) << snap.status().to_string();
    EXPECT_EQ(snap->id, at);

    auto restored = Store::from_snapshot(snap->id, snap->public_part, snap->private_part);
    ASSERT_TRUE(restored.ok()) << restored.status().to_string();
    Store& copy = **restored;
    EXPECT_EQ(copy.current(), at);
    EXPECT_EQ(copy.view(), at.view);
    EXPECT_EQ(copy.committed(), at.seqno);
    EXPECT_EQ(dump(copy), dump(*store));
    EXPECT_EQ(copy.map_names(), (std::vector<std::string>{"accounts", "public:nodes"}));

    // Versions survive: a read before a later change still conflicts.
    Transaction tx = copy.begin();
    EXPECT_EQ(tx.get_version("accounts", b("alice")), std::optional<Seqno>(4));
    EXPECT_EQ(get_str(tx, "accounts", "alice"), "11");
    ASSERT_TRUE(tx.put("accounts", b("alice"), b("12")).ok());
    EXPECT_EQ(put_one(copy, "accounts", "alice", "99"), at.seqno + 1);
    EXPECT_EQ(copy.commit(std::move(tx)).status().code(), Errc::kConflict);
    EXPECT_EQ(copy.current(), (TxId{2, at.seqno + 1}));
}

TEST(Snapshot, IsDeterministic) {
    auto store = sample_store();
    auto s1 = store->snapshot(store->current().seqno);
    auto s2 = store->snapshot(store->current().seqno);
    ASSERT_TRUE(s1.ok() && s2.ok());
    EXPECT_EQ(s1->public_part, s2->public_part);
    EXPECT_EQ(s1->private_part, s2->private_part);
}

TEST(Snapshot, AtAnOlderSeqnoReflectsThatSeqno) {
    auto store = sample_store();
    auto snap = store->snapshot(3);
    ASSERT_TRUE(snap.ok());
    EXPECT_EQ(snap->id, (TxId{1, 3}));
    auto restored = Store::from_snapshot(snap->id, snap->public_part, snap->private_part);
    ASSERT_TRUE(restored.ok()) << restored.status().to_string();
    EXPECT_EQ(dump(**restored), dump(*store, 3));
    Transaction tx = (*restored)->begin();
    EXPECT_EQ(get_str(tx, "accounts", "bob"), "");
    EXPECT_EQ(get_str(tx, "accounts", "alice"), "10");
}

TEST(Snapshot, OutsideTheHeldSeqnosIsRefused) {
    auto store = sample_store();
    EXPECT_EQ(store->snapshot(store->current().seqno + 1).status().code(),
              Errc::kFailedPrecondition);
    store->set_committed(5);
    store->compact(5);
    EXPECT_EQ(store->snapshot(4).status().code(), Errc::kFailedPrecondition);
    EXPECT_TRUE(store->snapshot(5).ok());
}

TEST(Snapshot, EveryTruncationOfEitherPartIsRejected) {
    auto store = sample_store();
    auto snap = store->snapshot(store->current().seqno).value();
    for (size_t n = 0; n < snap.public_part.size(); ++n) {
        auto r =
            Store::from_snapshot(snap.id, ByteSpan(snap.public_part).first(n), snap.private_part);
        EXPECT_FALSE(r.ok()) << "accepted a public part cut to " << n;
    }
    for (size_t n = 0; n < snap.private_part.size(); ++n) {
        auto r =
            Store::from_snapshot(snap.id, snap.public_part, ByteSpan(snap.private_part).first(n));
        EXPECT_FALSE(r.ok()) << "accepted a private part cut to " << n;
    }
}

// Header: version(1) tag(1) view(8) seqno(8) map count(4) = 22 bytes; the first map's name
// length is at offset 22.
constexpr size_t kHeaderSize = 22;

void expect_rejected(const StoreSnapshot& snap, const Bytes& pub, const Bytes& priv,
                     std::string_view why, Errc code = Errc::kCorrupt) {
    auto r = Store::from_snapshot(snap.id, pub, priv);
    ASSERT_FALSE(r.ok()) << "accepted: " << why;
    EXPECT_EQ(r.status().code(), code) << why << ": " << r.status().to_string();
}

TEST(Snapshot, CorruptedPartsAreRejected) {
    Store store;
    put_one(store, "accounts", "a", "1");
    put_one(store, "accounts", "b", "2");
    put_one(store, "public:p", "a", "1");
    auto snap = store.snapshot(3).value();
    const Bytes& pub = snap.public_part;
    const Bytes& priv = snap.private_part;
    ASSERT_TRUE(Store::from_snapshot(snap.id, pub, priv).ok());

    Bytes m = priv;
    m[0] = 2;
    expect_rejected(snap, pub, m, "unknown version", Errc::kUnsupported);
    expect_rejected(snap, priv, pub, "parts swapped");
    EXPECT_FALSE(Store::from_snapshot(TxId{0, 2}, pub, priv).ok()) << "wrong id accepted";

    m = priv;
    m.push_back(0);
    expect_rejected(snap, pub, m, "trailing byte");

    // Private layout: header, u16 8 "accounts", u32 2, then entries of
    // u32 1, key, u64 version, u32 1, value (18 bytes each).
    const size_t first_entry = kHeaderSize + 2 + 8 + 4;
    const size_t second_entry = first_entry + 18;
    m = priv;
    std::swap(m[first_entry + 4], m[second_entry + 4]);
    expect_rejected(snap, pub, m, "unsorted keys");
    m = priv;
    m[second_entry + 4] = 'a';
    expect_rejected(snap, pub, m, "duplicate keys");
    m = priv;
    std::fill_n(m.begin() + first_entry + 5, 8, 0);
    expect_rejected(snap, pub, m, "version zero");
    m = priv;
    m[first_entry + 5] = 4;
    expect_rejected(snap, pub, m, "version above the snapshot seqno");
    m = priv;
    m[first_entry] = 0xff;
    expect_rejected(snap, pub, m, "key length past the end");
    m = priv;
    std::copy_n("public:", 7, m.begin() + kHeaderSize + 2);  // "accounts" -> "public:a"

    m[kHeaderSize + 9] = 'a';
    expect_rejected(snap, pub, m, "public map in the private part");
    m = priv;
    m[kHeaderSize - 4] = 0xff;
    expect_rejected(snap, pub, m, "huge map count");
    m = priv;
    m[kHeaderSize + 2 + 8] = 0;
    expect_rejected(snap, pub, m, "entry count smaller than the entries");
}

}  // namespace
}  // namespace coffer::kv
