// Ordered range iteration over a transaction's view: snapshot entries merged with its own
// buffered writes. The snapshot is read in batches of kRangeBatchEntries so that the
// callback never runs with a store lock held (it may be slow, or read through get()).
#include <string>

#include "kv/store.h"

namespace coffer::kv {

namespace {

using Entries = std::vector<std::pair<Bytes, Bytes>>;
using Buffered = std::map<Bytes, std::optional<Bytes>>;
using Callback = std::function<bool(ByteSpan key, ByteSpan value)>;

struct Delivery {
    size_t limit = 0;  // 0: no limit
    size_t delivered = 0;
    Bytes last_key;
};

// Merges one batch of snapshot entries (in iteration order) with the buffered writes that
// fall up to the batch's last entry, or up to the range's far end (`in_range`) once the
// snapshot side is exhausted. `before(a, b)` is the iteration order. Returns false once the
// iteration must stop (fn returned false or the limit was reached).
template <typename It, typename Before, typename InRange>
bool merge_batch(const Entries& entries, bool exhausted, It& next, It end, Before before,
                 InRange in_range, Delivery& d, const Callback& fn) {
    auto buffered_in_batch = [&]() {
        if (next == end || !in_range(next->first)) {
            return false;
        }
        return exhausted || !before(entries.back().first, next->first);
    };

    size_t i = 0;
    while (true) {
        bool have_snapshot = i < entries.size();
        bool have_buffered = buffered_in_batch();
        if (!have_snapshot && !have_buffered) {
            return true;
        }
        const Bytes* key = nullptr;
        const Bytes* value = nullptr;
        if (have_buffered && (!have_snapshot || !before(entries[i].first, next->first))) {
            // The transaction's own write shadows the snapshot entry with the same key.
            if (have_snapshot && entries[i].first == next->first) {
                ++i;
            }
            key = &next->first;
            value = next->second.has_value() ? &*next->second : nullptr;
            ++next;
        } else {
            key = &entries[i].first;
            value = &entries[i].second;
            ++i;
        }
        if (value == nullptr) {
            continue;
        }

        ++d.delivered;
        d.last_key = *key;
        if (!fn(*key, *value) || (d.limit != 0 && d.delivered == d.limit)) {
            return false;
        }
    }
}

}  // namespace

Status Transaction::check_range_args(std::string_view map, ByteSpan from,
                                     std::optional<ByteSpan> to_exclusive, Bytes& from_bytes,
                                     std::optional<Bytes>& to_bytes) const {
    COFFER_CHECK(store_ != nullptr, "use of a moved-from transaction");
    COFFER_RETURN_IF_ERROR(validate_map_name(map));
    if (from.size() > kMaxKeySize ||
        (to_exclusive.has_value() && to_exclusive->size() > kMaxKeySize)) {
        return error(Errc::kInvalidArgument, "range bound above kMaxKeySize");
    }
    from_bytes.assign(from.begin(), from.end());
    if (to_exclusive.has_value()) {
        to_bytes.emplace(to_exclusive->begin(), to_exclusive->end());
        if (*to_bytes < from_bytes) {
            return error(Errc::kInvalidArgument, "range end is below its start");
        }
    }
    return Status::ok_status();
}

Status Transaction::range(std::string_view map, ByteSpan from, std::optional<ByteSpan> to_exclusive,
                          size_t limit, const Callback& fn) {
    Bytes from_bytes;
    std::optional<Bytes> to_bytes;
    COFFER_RETURN_IF_ERROR(check_range_args(map, from, to_exclusive, from_bytes, to_bytes));
    const Buffered no_writes;
    auto buffered_map = writes_.maps.find(std::string(map));
    const Buffered& buffered =
        buffered_map == writes_.maps.end() ? no_writes : buffered_map->second;
    auto next = buffered.lower_bound(from_bytes);
    auto before = [](const Bytes& a, const Bytes& b) { return a < b; };
    auto in_range = [&](const Bytes& k) { return !to_bytes.has_value() || k < *to_bytes; };

    Delivery d;
    d.limit = limit;
    Bytes lower = from_bytes;
    bool lower_inclusive = true;
    bool stopped = false;
    in_range_ = true;
    while (!stopped) {
        Store::RangeBatch batch = store_->read_range_batch(*this, map, lower, lower_inclusive,
                                                           to_exclusive, kRangeBatchEntries);
        stopped = !merge_batch(batch.entries, batch.exhausted, next, buffered.end(), before,
                               in_range, d, fn);
        if (batch.exhausted) {
            break;
        }
        lower = batch.entries.back().first;
        lower_inclusive = false;
    }
    in_range_ = false;

    // What was read is [from, to) after a full pass, but only [from, last delivered] after an
    // early stop: keys beyond it were not observed and must not cause conflicts.
    if (stopped) {
        range_reads_.push_back({std::string(map), std::move(from_bytes), d.last_key, true});
    } else {
        range_reads_.push_back({std::string(map), std::move(from_bytes), to_bytes, false});
    }
    return Status::ok_status();
}

Status Transaction::range_reverse(std::string_view map, ByteSpan from,
                                  std::optional<ByteSpan> to_exclusive, size_t limit,
                                  const Callback& fn) {
    Bytes from_bytes;
    std::optional<Bytes> to_bytes;
    COFFER_RETURN_IF_ERROR(check_range_args(map, from, to_exclusive, from_bytes, to_bytes));
    const Buffered no_writes;
    auto buffered_map = writes_.maps.find(std::string(map));
    const Buffered& buffered =
        buffered_map == writes_.maps.end() ? no_writes : buffered_map->second;
    Buffered::const_reverse_iterator next(to_bytes.has_value() ? buffered.lower_bound(*to_bytes)
                                                               : buffered.end());
    auto before = [](const Bytes& a, const Bytes& b) { return b < a; };
    auto in_range = [&](const Bytes& k) { return !(k < from_bytes); };

    Delivery d;
    d.limit = limit;
    std::optional<Bytes> upper = to_bytes;
    bool stopped = false;
    in_range_ = true;
    while (!stopped) {
        std::optional<ByteSpan> upper_span;
        if (upper.has_value()) {
            upper_span = ByteSpan(*upper);
        }
        Store::RangeBatch batch = store_->read_range_batch_reverse(*this, map, from_bytes,
                                                                   upper_span, kRangeBatchEntries);
        stopped = !merge_batch(batch.entries, batch.exhausted, next, buffered.rend(), before,
                               in_range, d, fn);
        if (batch.exhausted) {
            break;
        }
        upper = batch.entries.back().first;
    }
    in_range_ = false;

    // After an early stop only [last delivered, to) was observed.
    Bytes start = stopped ? std::move(d.last_key) : std::move(from_bytes);
    range_reads_.push_back({std::string(map), std::move(start), to_bytes, false});
    return Status::ok_status();
}

}  // namespace coffer::kv
