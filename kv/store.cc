#include "kv/store.h"

#include <algorithm>
#include <string>

namespace coffer::kv {

namespace {

// Keys in error messages are shown as hex and cut to this many bytes.
constexpr size_t kMaxKeyBytesInMessage = 16;

std::string describe_key(std::string_view map, ByteSpan key) {
    std::string hex = to_hex(key.first(std::min(key.size(), kMaxKeyBytesInMessage)));
    if (key.size() > kMaxKeyBytesInMessage) {
        hex += "...";
    }
    return "map '" + std::string(map) + "' key " + hex;
}

Status validate_write_set_limits(const WriteSet& ws) {
    for (const auto& [name, entries] : ws.maps) {
        COFFER_RETURN_IF_ERROR(validate_map_name(name));
        for (const auto& [key, value] : entries) {
            if (key.size() > kMaxKeySize || (value.has_value() && value->size() > kMaxValueSize)) {
                return error(Errc::kInvalidArgument, "write set entry above the size limits");
            }
        }
    }
    if (ws.size_bytes() > kMaxWriteSetSize) {
        return error(Errc::kInvalidArgument, "write set above kMaxWriteSetSize");
    }
    return Status::ok_status();
}

}  // namespace

bool Store::BytesLess::operator()(ByteSpan a, ByteSpan b) const {
    return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end());
}

Store::Store() = default;

Store::~Store() {
    COFFER_CHECK(live_transactions_.load() == 0, "a Store was destroyed before its transactions");
}

void Store::set_commit_hook(CommitHook* hook) {
    std::lock_guard commit_lock(commit_mu_);
    hook_ = hook;
}

TxId Store::current() const {
    std::shared_lock lock(state_mu_);
    return current_;
}

void Store::set_view(View v) {
    std::lock_guard commit_lock(commit_mu_);
    std::unique_lock lock(state_mu_);
    COFFER_CHECK(v >= view_, "the store's view must not go backwards");
    view_ = v;
}

View Store::view() const {
    std::shared_lock lock(state_mu_);
    return view_;
}

Transaction Store::begin() {
    std::shared_lock lock(state_mu_);
    return Transaction(this, current_, epoch_);
}

Result<Transaction> Store::begin_at(Seqno s) {
    std::shared_lock lock(state_mu_);
    if (s < compacted_ || s > current_.seqno) {
        return error(Errc::kFailedPrecondition,
                     "cannot read at seqno " + std::to_string(s) + ": the store holds seqnos " +
                         std::to_string(compacted_) + " to " + std::to_string(current_.seqno));
    }
    return Transaction(this, TxId{view_at(s), s}, epoch_);
}

Result<CommitResult> Store::commit(Transaction&& tx) {
    COFFER_CHECK(tx.store_ == this, "commit of a transaction from another store or moved-from");
    Transaction local = std::move(tx);

    if (!local.has_writes()) {
        // A snapshot read is serializable at its own seqno: only a lost snapshot can fail.
        std::shared_lock lock(state_mu_);
        if (snapshot_lost(local)) {
            return error(Errc::kConflict, "snapshot too old or rolled back, retry");
        }
        return CommitResult{local.read_id_, WriteSet{}};
    }

    // Holding commit_mu_ excludes every other writer, so the state can be read below
    // without state_mu_: readers only read.
    std::lock_guard commit_lock(commit_mu_);
    COFFER_RETURN_IF_ERROR(validate(local));

    TxId id{view_, current_.seqno + 1};
    if (hook_ != nullptr) {
        COFFER_RETURN_IF_ERROR(hook_->on_commit(id, local.writes_));
    }
    install(id, local.writes_);
    return CommitResult{id, std::move(local.writes_)};
}

Result<TxId> Store::apply(TxId id, const WriteSet& ws) {
    std::lock_guard commit_lock(commit_mu_);
    if (id.seqno != current_.seqno + 1) {
        return error(Errc::kFailedPrecondition, "apply of seqno " + std::to_string(id.seqno) +
                                                    " after " + std::to_string(current_.seqno) +
                                                    ": seqnos must be consecutive");
    }
    if (id.view < current_.view) {
        return error(Errc::kInvalidArgument,
                     "apply of " + id.to_string() + ": view below that of " + current_.to_string());
    }
    COFFER_RETURN_IF_ERROR(validate_write_set_limits(ws));
    install(id, ws);
    return id;
}

Status Store::rollback(Seqno last_kept) {
    std::lock_guard commit_lock(commit_mu_);
    if (last_kept < committed_) {
        return error(Errc::kFailedPrecondition, "cannot roll back to " + std::to_string(last_kept) +
                                                    ", below the commit point " +
                                                    std::to_string(committed_));
    }
    if (last_kept > current_.seqno) {
        return error(Errc::kInvalidArgument, "cannot roll back to " + std::to_string(last_kept) +
                                                 ", above the last seqno " +
                                                 std::to_string(current_.seqno));
    }

    std::unique_lock lock(state_mu_);
    for (auto map_it = maps_.begin(); map_it != maps_.end();) {
        MapData& data = map_it->second;
        for (auto key_it = data.begin(); key_it != data.end();) {
            History& h = key_it->second;
            while (!h.empty() && h.back().seqno > last_kept) {
                h.pop_back();
            }
            key_it = h.empty() ? data.erase(key_it) : std::next(key_it);
        }
        map_it = data.empty() ? maps_.erase(map_it) : std::next(map_it);
    }
    while (!view_starts_.empty() && view_starts_.back().seqno > last_kept) {
        view_starts_.pop_back();
    }
    current_ = TxId{view_at(last_kept), last_kept};
    // Snapshots above last_kept described versions that are gone, and their seqnos will be
    // reused by different entries: every open transaction must fail to commit.
    ++epoch_;
    return Status::ok_status();
}

void Store::set_committed(Seqno s) {
    std::lock_guard commit_lock(commit_mu_);
    std::unique_lock lock(state_mu_);
    COFFER_CHECK(s >= committed_, "the commit point must not go backwards");
    COFFER_CHECK(s <= current_.seqno, "the commit point must not pass the last entry");
    committed_ = s;
}

Seqno Store::committed() const {
    std::shared_lock lock(state_mu_);
    return committed_;
}

void Store::compact(Seqno s) {
    std::lock_guard commit_lock(commit_mu_);
    std::unique_lock lock(state_mu_);
    COFFER_CHECK(s <= committed_, "compaction must not pass the commit point");
    if (s <= compacted_) {
        return;
    }
    for (auto map_it = maps_.begin(); map_it != maps_.end();) {
        MapData& data = map_it->second;
        for (auto key_it = data.begin(); key_it != data.end();) {
            History& h = key_it->second;
            auto newest_visible =
                std::find_if(h.rbegin(), h.rend(), [s](const Version& v) { return v.seqno <= s; });
            if (newest_visible != h.rend()) {
                h.erase(h.begin(), std::prev(newest_visible.base()));
                if (!h.front().value.has_value()) {
                    h.erase(h.begin());
                }
            }
            key_it = h.empty() ? data.erase(key_it) : std::next(key_it);
        }
        map_it = data.empty() ? maps_.erase(map_it) : std::next(map_it);
    }
    // Only the view of the newest entry at or below s is still needed by view_at().
    auto first_needed = std::find_if(view_starts_.rbegin(), view_starts_.rend(),
                                     [s](const TxId& id) { return id.seqno <= s; });
    if (first_needed != view_starts_.rend()) {
        view_starts_.erase(view_starts_.begin(), std::prev(first_needed.base()));
    }
    compacted_ = s;
}

Seqno Store::compacted() const {
    std::shared_lock lock(state_mu_);
    return compacted_;
}

std::vector<std::string> Store::map_names() const {
    std::shared_lock lock(state_mu_);
    std::vector<std::string> names;
    names.reserve(maps_.size());
    for (const auto& [name, data] : maps_) {
        names.push_back(name);
    }
    return names;
}

const Store::Version* Store::visible(const History& h, Seqno s) {
    for (auto it = h.rbegin(); it != h.rend(); ++it) {
        if (it->seqno <= s) {
            return &*it;
        }
    }
    return nullptr;
}

bool Store::snapshot_lost(const Transaction& tx) const {
    return tx.epoch_ != epoch_ || tx.read_id_.seqno < compacted_;
}

std::optional<Bytes> Store::read_value(const Transaction& tx, std::string_view map,
                                       ByteSpan key) const {
    std::shared_lock lock(state_mu_);
    auto map_it = maps_.find(map);
    if (map_it == maps_.end()) {
        return std::nullopt;
    }
    auto key_it = map_it->second.find(key);
    if (key_it == map_it->second.end()) {
        return std::nullopt;
    }
    const Version* v = visible(key_it->second, tx.read_id_.seqno);
    return v == nullptr ? std::nullopt : v->value;
}

std::optional<Seqno> Store::read_version(const Transaction& tx, std::string_view map,
                                         ByteSpan key) const {
    std::shared_lock lock(state_mu_);
    auto map_it = maps_.find(map);
    if (map_it == maps_.end()) {
        return std::nullopt;
    }
    auto key_it = map_it->second.find(key);
    if (key_it == map_it->second.end()) {
        return std::nullopt;
    }
    const Version* v = visible(key_it->second, tx.read_id_.seqno);
    if (v == nullptr || !v->value.has_value()) {
        return std::nullopt;
    }
    return v->seqno;
}

Store::RangeBatch Store::read_range_batch(const Transaction& tx, std::string_view map,
                                          ByteSpan lower, bool lower_inclusive,
                                          std::optional<ByteSpan> to_exclusive,
                                          size_t max_entries) const {
    RangeBatch batch;
    std::shared_lock lock(state_mu_);
    auto map_it = maps_.find(map);
    if (map_it == maps_.end()) {
        batch.exhausted = true;
        return batch;
    }
    const MapData& data = map_it->second;
    auto it = lower_inclusive ? data.lower_bound(lower) : data.upper_bound(lower);
    BytesLess less;
    for (; it != data.end(); ++it) {
        if (to_exclusive.has_value() && !less(it->first, *to_exclusive)) {
            break;
        }
        const Version* v = visible(it->second, tx.read_id_.seqno);
        if (v == nullptr || !v->value.has_value()) {
            continue;
        }
        if (batch.entries.size() == max_entries) {
            return batch;
        }
        batch.entries.emplace_back(it->first, *v->value);
    }
    batch.exhausted = true;
    return batch;
}

Store::RangeBatch Store::read_range_batch_reverse(const Transaction& tx, std::string_view map,
                                                  ByteSpan from,
                                                  std::optional<ByteSpan> upper_exclusive,
                                                  size_t max_entries) const {
    RangeBatch batch;
    std::shared_lock lock(state_mu_);
    auto map_it = maps_.find(map);
    if (map_it == maps_.end()) {
        batch.exhausted = true;
        return batch;
    }
    const MapData& data = map_it->second;
    auto it = upper_exclusive.has_value() ? data.lower_bound(*upper_exclusive) : data.end();
    BytesLess less;
    while (it != data.begin()) {
        --it;
        if (less(it->first, from)) {
            break;
        }
        const Version* v = visible(it->second, tx.read_id_.seqno);
        if (v == nullptr || !v->value.has_value()) {
            continue;
        }
        if (batch.entries.size() == max_entries) {
            return batch;
        }
        batch.entries.emplace_back(it->first, *v->value);
    }
    batch.exhausted = true;
    return batch;
}

Status Store::validate(const Transaction& tx) const {
    if (tx.epoch_ != epoch_) {
        return error(Errc::kConflict, "the store was rolled back since the snapshot, retry");
    }
    if (tx.read_id_.seqno < compacted_) {
        return error(Errc::kConflict, "snapshot too old, retry");
    }
    for (const auto& [map, keys] : tx.read_keys_) {
        auto map_it = maps_.find(map);
        if (map_it == maps_.end()) {
            continue;
        }
        for (const Bytes& key : keys) {
            auto key_it = map_it->second.find(key);
            if (key_it != map_it->second.end() && key_it->second.back().seqno > tx.read_id_.seqno) {
                return error(Errc::kConflict,
                             "read of " + describe_key(map, key) + " changed at seqno " +
                                 std::to_string(key_it->second.back().seqno) + ", retry");
            }
        }
    }
    for (const auto& r : tx.range_reads_) {
        COFFER_RETURN_IF_ERROR(validate_range(tx, r));
    }
    return Status::ok_status();
}

Status Store::validate_range(const Transaction& tx, const Transaction::RangeRead& r) const {
    auto map_it = maps_.find(r.map);
    if (map_it == maps_.end()) {
        return Status::ok_status();
    }
    const MapData& data = map_it->second;
    for (auto it = data.lower_bound(r.from); it != data.end(); ++it) {
        if (r.end.has_value() && (r.end_inclusive ? *r.end < it->first : !(it->first < *r.end))) {
            break;
        }
        if (it->second.back().seqno > tx.read_id_.seqno) {
            return error(Errc::kConflict, "range read over " + describe_key(r.map, it->first) +
                                              " changed at seqno " +
                                              std::to_string(it->second.back().seqno) + ", retry");
        }
    }
    return Status::ok_status();
}

void Store::install(TxId id, const WriteSet& ws) {
    std::unique_lock lock(state_mu_);
    COFFER_CHECK(id.seqno == current_.seqno + 1, "entries must be installed in seqno order");
    for (const auto& [name, entries] : ws.maps) {
        if (entries.empty()) {
            continue;
        }
        auto map_it = maps_.find(name);
        if (map_it == maps_.end()) {
            map_it = maps_.emplace(name, MapData{}).first;
        }
        for (const auto& [key, value] : entries) {
            History& h = map_it->second[key];
            COFFER_CHECK(h.empty() || h.back().seqno < id.seqno, "key versions must increase");
            h.push_back(Version{id.seqno, value});
        }
    }
    if (view_starts_.empty() || view_starts_.back().view != id.view) {
        view_starts_.push_back(id);
    }
    current_ = id;
    view_ = std::max(view_, id.view);
}

View Store::view_at(Seqno s) const {
    for (auto it = view_starts_.rbegin(); it != view_starts_.rend(); ++it) {
        if (it->seqno <= s) {
            return it->view;
        }
    }
    return 0;
}

}  // namespace coffer::kv
