#include <string>

#include "kv/store.h"

namespace coffer::kv {

namespace {

// Bytes one entry adds to WriteSet::size_bytes() (docs/formats/write-set.md).
size_t entry_size_bytes(size_t key_size, const std::optional<Bytes>& value) {
    return 4 + key_size + 1 + (value.has_value() ? 4 + value->size() : 0);
}
constexpr size_t kMapOverheadBytes = 2 + 4;

}  // namespace

Transaction::Transaction(Store* store, TxId read_id, uint64_t epoch)
    : store_(store), read_id_(read_id), epoch_(epoch), write_size_bytes_(writes_.size_bytes()) {
    store_->note_transaction_created();
}

Transaction::Transaction(Transaction&& other) noexcept
    : store_(other.store_),
      read_id_(other.read_id_),
      epoch_(other.epoch_),
      writes_(std::move(other.writes_)),
      write_size_bytes_(other.write_size_bytes_),
      read_keys_(std::move(other.read_keys_)),
      range_reads_(std::move(other.range_reads_)) {
    other.store_ = nullptr;
}

Transaction& Transaction::operator=(Transaction&& other) noexcept {
    if (this != &other) {
        release();
        store_ = other.store_;
        read_id_ = other.read_id_;
        epoch_ = other.epoch_;
        writes_ = std::move(other.writes_);
        write_size_bytes_ = other.write_size_bytes_;
        read_keys_ = std::move(other.read_keys_);
        range_reads_ = std::move(other.range_reads_);
        other.store_ = nullptr;
    }
    return *this;
}

Transaction::~Transaction() {
    release();
}

void Transaction::release() {
    if (store_ != nullptr) {
        store_->note_transaction_destroyed();
        store_ = nullptr;
    }
}

std::optional<Bytes> Transaction::get(std::string_view map, ByteSpan key) {
    COFFER_CHECK(store_ != nullptr, "use of a moved-from transaction");
    if (!validate_map_name(map).ok()) {
        return std::nullopt;
    }
    if (const auto* buffered = find_buffered(map, Bytes(key.begin(), key.end()))) {
        return *buffered;
    }
    record_read(map, key);
    return store_->read_value(*this, map, key);
}

std::optional<Seqno> Transaction::get_version(std::string_view map, ByteSpan key) {
    COFFER_CHECK(store_ != nullptr, "use of a moved-from transaction");
    if (!validate_map_name(map).ok()) {
        return std::nullopt;
    }
    record_read(map, key);
    return store_->read_version(*this, map, key);
}

Status Transaction::put(std::string_view map, ByteSpan key, ByteSpan value) {
    return buffer_write(map, key, value);
}

Status Transaction::remove(std::string_view map, ByteSpan key) {
    return buffer_write(map, key, std::nullopt);
}

Status Transaction::buffer_write(std::string_view map, ByteSpan key,
                                 std::optional<ByteSpan> value) {
    COFFER_CHECK(store_ != nullptr, "use of a moved-from transaction");
    if (in_range_) {
        return error(Errc::kFailedPrecondition, "cannot write from inside a range() callback");
    }
    COFFER_RETURN_IF_ERROR(validate_map_name(map));
    if (key.size() > kMaxKeySize) {
        return error(Errc::kInvalidArgument,
                     "key of " + std::to_string(key.size()) + " bytes is above kMaxKeySize");
    }
    if (value.has_value() && value->size() > kMaxValueSize) {
        return error(Errc::kInvalidArgument,
                     "value of " + std::to_string(value->size()) + " bytes is above kMaxValueSize");
    }

    std::optional<Bytes> new_value;
    if (value.has_value()) {
        new_value.emplace(value->begin(), value->end());
    }
    Bytes key_bytes(key.begin(), key.end());
    auto map_it = writes_.maps.find(std::string(map));
    size_t new_size = write_size_bytes_ + entry_size_bytes(key.size(), new_value);
    if (map_it == writes_.maps.end()) {
        new_size += kMapOverheadBytes + map.size();
    } else if (auto old = map_it->second.find(key_bytes); old != map_it->second.end()) {
        new_size -= entry_size_bytes(key.size(), old->second);
    }
    if (new_size > kMaxWriteSetSize) {
        return error(Errc::kResourceExhausted, "write set would exceed kMaxWriteSetSize");
    }

    writes_.maps[std::string(map)][std::move(key_bytes)] = std::move(new_value);
    write_size_bytes_ = new_size;
    COFFER_DCHECK(write_size_bytes_ == writes_.size_bytes(), "write set size out of step");
    return Status::ok_status();
}

void Transaction::record_read(std::string_view map, ByteSpan key) {
    auto it = read_keys_.find(map);
    if (it == read_keys_.end()) {
        it = read_keys_.emplace(std::string(map), std::set<Bytes>{}).first;
    }
    it->second.emplace(key.begin(), key.end());
}

const std::optional<Bytes>* Transaction::find_buffered(std::string_view map,
                                                       const Bytes& key) const {
    auto map_it = writes_.maps.find(std::string(map));
    if (map_it == writes_.maps.end()) {
        return nullptr;
    }
    auto key_it = map_it->second.find(key);
    return key_it == map_it->second.end() ? nullptr : &key_it->second;
}

}  // namespace coffer::kv
