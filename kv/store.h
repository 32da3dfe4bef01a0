// The versioned key-value store and its optimistic transactions.
//
// A Store holds named maps of byte-string keys to byte-string values. Every write is
// stamped with the seqno (ledger position) of the entry that made it, and the store keeps
// older versions until compaction, so a transaction reads one consistent snapshot while
// others commit. Transactions buffer their writes and commit with optimistic conflict
// detection: a commit fails with kConflict if a key it read, or a key inside a range it
// iterated, was written after its snapshot. The model, isolation level and costs are
// described in docs/kv.md.
//
// Locking: two locks. `commit_mu_` serialises everything that changes the store (commit,
// apply, rollback, compact, set_view, set_committed); `state_mu_` (a shared mutex) guards
// the data, taken shared by readers and exclusive only for the short moment a change is
// installed. The commit hook runs with `commit_mu_` held but not `state_mu_`, so readers
// are not blocked while the ledger writes to disk.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "kv/tx_id.h"
#include "kv/write_set.h"

namespace coffer::kv {

// The current (and only) version of the store snapshot format (docs/formats/kv-snapshot.md).
constexpr uint8_t kSnapshotFormatVersion = 1;

// How many entries a range iteration copies out of the store per lock acquisition: the
// callback never runs with a store lock held.
constexpr size_t kRangeBatchEntries = 256;

// Called by Store::commit for every write transaction, in seqno order, with the store's
// commit lock held and before the write becomes visible to anyone. If it returns an error,
// the commit fails with that error and nothing changes (the seqno is not consumed). The
// ledger uses it to append the entry, so a full disk refuses writes cleanly.
//
// The hook must not call Store::commit, apply, rollback, compact, set_view or
// set_committed (they would deadlock); it may read through begin().
class CommitHook {
  public:
    virtual ~CommitHook() = default;
    virtual Status on_commit(TxId id, const WriteSet& ws) = 0;
};

struct CommitResult {
    TxId id;             // the entry's id; for a read-only transaction, its snapshot's id
    WriteSet write_set;  // what was written (empty for a read-only transaction)
};

// The whole state as of one seqno, in two separately serialized parts: the ledger layer
// encrypts the private part before it touches a disk.
struct StoreSnapshot {
    TxId id;
    Bytes public_part;
    Bytes private_part;
};

class Store;

// One optimistic transaction: a snapshot to read from, a buffer of writes, and the record
// of what was read (for conflict detection at commit).
//
// Move-only and not thread-safe: one thread at a time uses a transaction. It stays valid
// while the store keeps committing, but the Store must outlive it (checked when the Store
// is destroyed). A moved-from transaction must not be used.
//
// If the store is compacted past the snapshot, or rolled back, while the transaction is
// open, its snapshot is gone: reads from then on may miss data, and commit always fails
// with kConflict ("snapshot too old, retry").
class Transaction {
  public:
    Transaction(Transaction&& other) noexcept;
    Transaction& operator=(Transaction&& other) noexcept;
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    ~Transaction();

    // The value of `key` in `map`: this transaction's own buffered write if there is one,
    // otherwise the value as of the snapshot. nullopt if absent or removed. Records the read
    // for conflict detection (unless answered from a buffered write).
    std::optional<Bytes> get(std::string_view map, ByteSpan key);

    // The seqno at which `key` was last written as of the snapshot (ignoring this
    // transaction's own writes); nullopt if absent there. Records the read.
    std::optional<Seqno> get_version(std::string_view map, ByteSpan key);

    // Buffers a write. kInvalidArgument if the map name, key or value is outside its limit;
    // kResourceExhausted if the write set would exceed kMaxWriteSetSize; kFailedPrecondition
    // from inside a range() callback. On error nothing is buffered.
    Status put(std::string_view map, ByteSpan key, ByteSpan value);

    // Buffers a removal (of a key that may or may not exist). Errors as for put().
    Status remove(std::string_view map, ByteSpan key);

    // Calls fn(key, value) for the keys of `map` in [from, to_exclusive) (to the end of the
    // map if to_exclusive is nullopt), in increasing byte-lexicographic order, as seen by this
    // transaction: snapshot values merged with its own buffered writes, removed keys hidden.
    // Stops when fn returns false or after `limit` calls (0 means no limit). The spans are
    // valid only during the call. fn may use this transaction's get(); writes through it are
    // refused (kFailedPrecondition) while the iteration runs.
    //
    // Records the part of the range actually covered (up to the last key delivered if the
    // iteration stopped early): the commit fails with kConflict if any key in it was
    // inserted, changed or removed after the snapshot (phantom protection).
    // Errors: kInvalidArgument for a bad map name or bound.
    Status range(std::string_view map, ByteSpan from, std::optional<ByteSpan> to_exclusive,
                 size_t limit, const std::function<bool(ByteSpan key, ByteSpan value)>& fn);

    // As range(), over the same keys [from, to_exclusive), in decreasing order. After an
    // early stop, the part recorded for conflict detection is [last key delivered, end).
    Status range_reverse(std::string_view map, ByteSpan from, std::optional<ByteSpan> to_exclusive,
                         size_t limit, const std::function<bool(ByteSpan key, ByteSpan value)>& fn);

    // The seqno of the snapshot this transaction reads.
    Seqno read_seqno() const { return read_id_.seqno; }

    // True if the transaction has buffered at least one put or remove.
    bool has_writes() const { return !writes_.empty(); }

  private:
    friend class Store;

    // A key range that a range() call covered: [from, end), or [from, end] if
    // end_inclusive; no end means "to the end of the map".
    struct RangeRead {
        std::string map;
        Bytes from;
        std::optional<Bytes> end;
        bool end_inclusive = false;
    };

    Transaction(Store* store, TxId read_id, uint64_t epoch);

    Status buffer_write(std::string_view map, ByteSpan key, std::optional<ByteSpan> value);
    void record_read(std::string_view map, ByteSpan key);
    const std::optional<Bytes>* find_buffered(std::string_view map, const Bytes& key) const;
    Status check_range_args(std::string_view map, ByteSpan from,
                            std::optional<ByteSpan> to_exclusive, Bytes& from_bytes,
                            std::optional<Bytes>& to_bytes) const;
    void release();

    Store* store_ = nullptr;
    TxId read_id_;
    uint64_t epoch_ = 0;
    WriteSet writes_;
    size_t write_size_bytes_ = 0;
    std::map<std::string, std::set<Bytes>, std::less<>> read_keys_;
    std::vector<RangeRead> range_reads_;
    bool in_range_ = false;  // a range() callback is running: writes are refused
};

class Store {
  public:
    // An empty store at TxId{0, 0}, view 0.
    Store();
    // Checks that no Transaction of this store is still alive.
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // Installs the hook that commit() calls (nullptr: none). Not owned; it must outlive the
    // store or be reset first. Not to be called while commits are running.
    void set_commit_hook(CommitHook* hook);

    // The id of the last entry applied or committed ({0, 0} for an empty store).
    TxId current() const;

    // The view that commit() stamps new entries with. Views never go backwards: a lower
    // value is a broken invariant (COFFER_CHECK).
    void set_view(View v);
    View view() const;

    // A transaction reading the snapshot at current().seqno.
    Transaction begin();

    // A transaction reading the snapshot at seqno `s`. kFailedPrecondition if s is below the
    // compaction point or above current().seqno.
    Result<Transaction> begin_at(Seqno s);

    // Commits `tx`. A read-only transaction returns its snapshot's id and an empty write set,
    // consuming no seqno. Otherwise its reads are validated (kConflict naming the map and key
    // whose read changed, or if its snapshot was compacted or rolled back), it gets
    // TxId{view(), current().seqno + 1}, the commit hook runs (its error is returned and
    // nothing changes), and its writes become visible at that seqno. Thread-safe.
    Result<CommitResult> commit(Transaction&& tx);

    // Applies an entry replicated from the leader or replayed from the ledger: no conflict
    // checks and no hook. Needs id.seqno == current().seqno + 1 (kFailedPrecondition
    // otherwise) and id.view >= current().view (kInvalidArgument otherwise); a view above
    // view() raises view() to it. The write set must be within the limits (as any write set
    // from deserialize_write_set is); otherwise kInvalidArgument and nothing changes.
    Result<TxId> apply(TxId id, const WriteSet& ws);

    // Discards every version written after `last_kept`, so the state is again the state as
    // of that seqno (a new leader discards an unsigned tail). Open transactions become
    // unable to commit. kFailedPrecondition if last_kept < committed(); kInvalidArgument if
    // last_kept > current().seqno. Costs a pass over every key.
    Status rollback(Seqno last_kept);

    // The commit point (what a majority holds), tracked apart from the append point
    // current(). Monotonic and <= current().seqno: anything else is a broken invariant.
    void set_committed(Seqno s);
    Seqno committed() const;

    // Drops versions that no snapshot at >= s can see (superseded versions, and removals at
    // or below s). Needs s <= committed() (COFFER_CHECK); a point at or below the current
    // compaction point does nothing. Open transactions reading below s can no longer
    // commit. Costs a pass over every key, with readers blocked.
    void compact(Seqno s);
    Seqno compacted() const;

    // Serializes every live key with its value and version as of seqno `at`.
    // kFailedPrecondition if `at` is below the compaction point or above current().seqno.
    // Holds the read lock for the whole pass, delaying commits (not readers).
    Result<StoreSnapshot> snapshot(Seqno at) const;

    // Builds a store from the two parts of a snapshot taken at `id`. Its current() is id,
    // committed() and compacted() are id.seqno, view() is id.view. Strict parsing: kUnsupported
    // for an unknown version, kCorrupt (with byte offsets) for anything malformed, or if a
    // part's id differs from `id`, or a map is in the wrong part.
    static Result<std::unique_ptr<Store>> from_snapshot(TxId id, ByteSpan public_part,
                                                        ByteSpan private_part);

    // Names of the maps that hold at least one version (live or removed), sorted.
    std::vector<std::string> map_names() const;

  private:
    friend class Transaction;

    // Transparent byte-lexicographic order, so lookups by ByteSpan need no copy.
    struct BytesLess {
        using is_transparent = void;
        bool operator()(ByteSpan a, ByteSpan b) const;
        bool operator()(const Bytes& a, const Bytes& b) const { return a < b; }
        bool operator()(const Bytes& a, ByteSpan b) const { return (*this)(ByteSpan(a), b); }
        bool operator()(ByteSpan a, const Bytes& b) const { return (*this)(a, ByteSpan(b)); }
    };

    // One write of a key: the value, or nullopt for a removal.
    struct Version {
        Seqno seqno = 0;
        std::optional<Bytes> value;
    };
    // Versions of one key, oldest first, seqnos strictly increasing, never empty.
    using History = std::vector<Version>;
    using MapData = std::map<Bytes, History, BytesLess>;

    struct RangeBatch {
        std::vector<std::pair<Bytes, Bytes>> entries;
        bool exhausted = false;  // true if no visible key remains after the last entry
    };

    static const Version* visible(const History& h, Seqno s);
    bool snapshot_lost(const Transaction& tx) const;
    std::optional<Bytes> read_value(const Transaction& tx, std::string_view map,
                                    ByteSpan key) const;
    std::optional<Seqno> read_version(const Transaction& tx, std::string_view map,
                                      ByteSpan key) const;
    RangeBatch read_range_batch(const Transaction& tx, std::string_view map, ByteSpan lower,
                                bool lower_inclusive, std::optional<ByteSpan> to_exclusive,
                                size_t max_entries) const;
    // Up to max_entries visible entries below upper_exclusive (or from the map's end) and
    // at or above `from`, in decreasing order.
    RangeBatch read_range_batch_reverse(const Transaction& tx, std::string_view map, ByteSpan from,
                                        std::optional<ByteSpan> upper_exclusive,
                                        size_t max_entries) const;
    Status validate(const Transaction& tx) const;
    Status validate_range(const Transaction& tx, const Transaction::RangeRead& r) const;
    void install(TxId id, const WriteSet& ws);
    View view_at(Seqno s) const;
    void note_transaction_created() { live_transactions_.fetch_add(1); }
    void note_transaction_destroyed() { live_transactions_.fetch_sub(1); }

    Bytes serialize_snapshot_part(Seqno at, Visibility which) const;
    Status parse_snapshot_part(TxId id, ByteSpan data, Visibility which);

    mutable std::mutex commit_mu_;        // serialises changes; held while the hook runs
    mutable std::shared_mutex state_mu_;  // guards everything below
    std::map<std::string, MapData, std::less<>> maps_;
    TxId current_;
    View view_ = 0;
    Seqno committed_ = 0;
    Seqno compacted_ = 0;
    uint64_t epoch_ = 0;             // bumped by every rollback
    std::vector<TxId> view_starts_;  // first entry of each view, for view_at()
    CommitHook* hook_ = nullptr;
    std::atomic<int64_t> live_transactions_{0};
};

}  // namespace coffer::kv
