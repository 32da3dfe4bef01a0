#include "kv/write_set.h"

#include <string>

namespace coffer::kv {

namespace {

constexpr uint8_t kEntryPut = 1;
constexpr uint8_t kEntryRemove = 2;

// Fixed bytes per item in the binary form (docs/formats/write-set.md).
constexpr size_t kHeaderSize = 1 + 4;     // version, map count
constexpr size_t kMapOverhead = 2 + 4;    // name length, entry count
constexpr size_t kEntryOverhead = 4 + 1;  // key length, kind
constexpr size_t kValueOverhead = 4;      // value length of a put
constexpr size_t kMinEntrySize = kEntryOverhead;
constexpr size_t kMinMapSize = kMapOverhead + 1 + kMinEntrySize;  // non-empty name, >= 1 entry

Status corrupt_at(size_t offset, std::string_view what) {
    return error(Errc::kCorrupt,
                 "write set: " + std::string(what) + " at offset " + std::to_string(offset));
}

}  // namespace

bool is_public_map(std::string_view name) {
    return name.starts_with(kPublicMapPrefix);
}

Status validate_map_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxMapNameSize) {
        return error(Errc::kInvalidArgument, "map name must be 1 to " +
                                                 std::to_string(kMaxMapNameSize) + " bytes, got " +
                                                 std::to_string(name.size()));
    }
    return Status::ok_status();
}

bool WriteSet::empty() const {
    for (const auto& [name, entries] : maps) {
        if (!entries.empty()) {
            return false;
        }
    }
    return true;
}

size_t WriteSet::size_bytes() const {
    size_t total = kHeaderSize;
    for (const auto& [name, entries] : maps) {
        if (entries.empty()) {
            continue;
        }
        total += kMapOverhead + name.size();
        for (const auto& [key, value] : entries) {
            total += kEntryOverhead + key.size();
            if (value.has_value()) {
                total += kValueOverhead + value->size();
            }
        }
    }
    return total;
}

Bytes serialize_write_set(const WriteSet& ws, Visibility which) {
    uint32_t map_count = 0;
    for (const auto& [name, entries] : ws.maps) {
        if (!entries.empty() && visibility_of(name) == which) {
            ++map_count;
        }
    }

    Bytes out;
    out.reserve(ws.size_bytes());
    out.push_back(kWriteSetFormatVersion);
    put_u32(out, map_count);
    for (const auto& [name, entries] : ws.maps) {
        if (entries.empty() || visibility_of(name) != which) {
            continue;
        }
        COFFER_CHECK(validate_map_name(name).ok(), "write set holds an invalid map name");
        put_u16(out, static_cast<uint16_t>(name.size()));
        put_bytes(out, as_bytes(name));
        put_u32(out, static_cast<uint32_t>(entries.size()));
        for (const auto& [key, value] : entries) {
            COFFER_CHECK(key.size() <= kMaxKeySize, "write set key above kMaxKeySize");
            put_u32(out, static_cast<uint32_t>(key.size()));
            put_bytes(out, key);
            if (!value.has_value()) {
                out.push_back(kEntryRemove);
                continue;
            }
            COFFER_CHECK(value->size() <= kMaxValueSize, "write set value above kMaxValueSize");
            out.push_back(kEntryPut);
            put_u32(out, static_cast<uint32_t>(value->size()));
            put_bytes(out, *value);
        }
    }
    COFFER_CHECK(out.size() <= kMaxWriteSetSize, "serialized write set above kMaxWriteSetSize");
    return out;
}

namespace {

// Reads one entry (key, kind, value) into `entries`, checking order against the previous key.
Status parse_entry(ByteReader& r, std::map<Bytes, std::optional<Bytes>>& entries) {
    size_t at = r.offset();
    uint32_t key_size = 0;
    if (!r.read_u32(key_size)) {
        return corrupt_at(at, "truncated key length");
    }
    if (key_size > kMaxKeySize || key_size > r.remaining()) {
        return corrupt_at(at, "key length " + std::to_string(key_size) + " out of bounds");
    }
    Bytes key;
    (void)r.read_bytes(key_size, key);
    if (!entries.empty() && !(entries.rbegin()->first < key)) {
        return corrupt_at(at, "keys not strictly increasing");
    }

    at = r.offset();
    uint8_t kind = 0;
    if (!r.read_u8(kind)) {
        return corrupt_at(at, "truncated entry kind");
    }
    if (kind == kEntryRemove) {
        entries.emplace_hint(entries.end(), std::move(key), std::nullopt);
        return Status::ok_status();
    }
    if (kind != kEntryPut) {
        return corrupt_at(at, "unknown entry kind " + std::to_string(kind));
    }

    at = r.offset();
    uint32_t value_size = 0;
    if (!r.read_u32(value_size)) {
        return corrupt_at(at, "truncated value length");
    }
    if (value_size > kMaxValueSize || value_size > r.remaining()) {
        return corrupt_at(at, "value length " + std::to_string(value_size) + " out of bounds");
    }
    Bytes value;
    (void)r.read_bytes(value_size, value);
    entries.emplace_hint(entries.end(), std::move(key), std::move(value));
    return Status::ok_status();
}

// Reads one map (name, entries) into `ws`, checking order and visibility.
Status parse_map(ByteReader& r, Visibility expected, WriteSet& ws) {
    size_t at = r.offset();
    uint16_t name_size = 0;
    if (!r.read_u16(name_size)) {
        return corrupt_at(at, "truncated map name length");
    }
    if (name_size == 0 || name_size > kMaxMapNameSize || name_size > r.remaining()) {
        return corrupt_at(at, "map name length " + std::to_string(name_size) + " out of bounds");
    }
    Bytes name_bytes;
    (void)r.read_bytes(name_size, name_bytes);
    std::string name = to_string(name_bytes);
    if (!ws.maps.empty() && !(ws.maps.rbegin()->first < name)) {
        return corrupt_at(at, "map names not strictly increasing");
    }
    if (visibility_of(name) != expected) {
        return corrupt_at(at, "map of the wrong visibility in this part");
    }

    at = r.offset();
    uint32_t entry_count = 0;
    if (!r.read_u32(entry_count)) {
        return corrupt_at(at, "truncated entry count");
    }
    if (entry_count == 0 || entry_count > r.remaining() / kMinEntrySize) {
        return corrupt_at(at, "entry count " + std::to_string(entry_count) + " out of bounds");
    }
    auto& entries = ws.maps[std::move(name)];
    for (uint32_t i = 0; i < entry_count; ++i) {
        COFFER_RETURN_IF_ERROR(parse_entry(r, entries));
    }
    return Status::ok_status();
}

}  // namespace

Result<WriteSet> deserialize_write_set(ByteSpan data, Visibility expected) {
    if (data.size() > kMaxWriteSetSize) {
        return error(Errc::kInvalidArgument,
                     "write set of " + std::to_string(data.size()) + " bytes is above the limit");
    }
    ByteReader r(data);
    uint8_t version = 0;
    if (!r.read_u8(version)) {
        return corrupt_at(0, "missing version byte");
    }
    if (version != kWriteSetFormatVersion) {
        return error(Errc::kUnsupported,
                     "write set format version " + std::to_string(version) + " is not supported");
    }
    uint32_t map_count = 0;
    if (!r.read_u32(map_count)) {
        return corrupt_at(1, "truncated map count");
    }
    if (map_count > r.remaining() / kMinMapSize) {
        return corrupt_at(1, "map count " + std::to_string(map_count) + " out of bounds");
    }

    WriteSet ws;
    for (uint32_t i = 0; i < map_count; ++i) {
        COFFER_RETURN_IF_ERROR(parse_map(r, expected, ws));
    }
    if (!r.at_end()) {
        return corrupt_at(r.offset(), std::to_string(r.remaining()) + " trailing bytes");
    }
    return ws;
}

Status merge_write_sets(WriteSet& into, WriteSet&& from) {
    for (const auto& [name, entries] : from.maps) {
        if (into.maps.contains(name)) {
            return error(Errc::kInvalidArgument,
                         "map '" + name + "' appears in both write sets being merged");
        }
    }
    for (auto& [name, entries] : from.maps) {
        into.maps.emplace(name, std::move(entries));
    }
    from.maps.clear();
    return Status::ok_status();
}

}  // namespace coffer::kv
