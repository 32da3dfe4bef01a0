// Store snapshots: every live key with its value and version as of one seqno, in a public
// and a private part (docs/formats/kv-snapshot.md).
#include <string>

#include "kv/store.h"

namespace coffer::kv {

namespace {

constexpr uint8_t kPartPublic = 1;
constexpr uint8_t kPartPrivate = 2;
constexpr size_t kMinEntrySize = 4 + 8 + 4;                // key length, version, value length
constexpr size_t kMinMapSize = 2 + 1 + 4 + kMinEntrySize;  // a name byte and one entry

uint8_t part_tag(Visibility v) {
    return v == Visibility::kPublic ? kPartPublic : kPartPrivate;
}

Status corrupt_at(size_t offset, std::string_view what) {
    return error(Errc::kCorrupt,
                 "kv snapshot: " + std::string(what) + " at offset " + std::to_string(offset));
}

void patch_u32(Bytes& out, size_t offset, uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        out[offset + i] = static_cast<uint8_t>(v >> (8 * i));
    }
}

}  // namespace

Result<StoreSnapshot> Store::snapshot(Seqno at) const {
    std::shared_lock lock(state_mu_);
    if (at < compacted_ || at > current_.seqno) {
        return error(Errc::kFailedPrecondition,
                     "cannot snapshot at seqno " + std::to_string(at) + ": the store holds " +
                         std::to_string(compacted_) + " to " + std::to_string(current_.seqno));
    }
    StoreSnapshot snap;
    snap.id = TxId{view_at(at), at};
    snap.public_part = serialize_snapshot_part(at, Visibility::kPublic);
    snap.private_part = serialize_snapshot_part(at, Visibility::kPrivate);
    return snap;
}

Bytes Store::serialize_snapshot_part(Seqno at, Visibility which) const {
    Bytes out;
    out.push_back(kSnapshotFormatVersion);
    out.push_back(part_tag(which));
    put_u64(out, view_at(at));
    put_u64(out, at);
    size_t map_count_at = out.size();
    put_u32(out, 0);

    uint32_t map_count = 0;
    for (const auto& [name, data] : maps_) {
        if (visibility_of(name) != which) {
            continue;
        }
        size_t map_start = out.size();
        put_u16(out, static_cast<uint16_t>(name.size()));
        put_bytes(out, as_bytes(name));
        size_t entry_count_at = out.size();
        put_u32(out, 0);
        uint32_t entry_count = 0;
        for (const auto& [key, history] : data) {
            const Version* v = visible(history, at);
            if (v == nullptr || !v->value.has_value()) {
                continue;
            }
            put_u32(out, static_cast<uint32_t>(key.size()));
            put_bytes(out, key);
            put_u64(out, v->seqno);
            put_u32(out, static_cast<uint32_t>(v->value->size()));
            put_bytes(out, *v->value);
            ++entry_count;
        }
        if (entry_count == 0) {
            out.resize(map_start);  // a map with nothing live at `at` is not written
            continue;
        }
        patch_u32(out, entry_count_at, entry_count);
        ++map_count;
    }
    patch_u32(out, map_count_at, map_count);
    return out;
}

Result<std::unique_ptr<Store>> Store::from_snapshot(TxId id, ByteSpan public_part,
                                                    ByteSpan private_part) {
    auto store = std::make_unique<Store>();
    COFFER_RETURN_IF_ERROR(
        store->parse_snapshot_part(id, public_part, Visibility::kPublic).with_context("public"));
    COFFER_RETURN_IF_ERROR(
        store->parse_snapshot_part(id, private_part, Visibility::kPrivate).with_context("private"));
    store->current_ = id;
    store->view_ = id.view;
    store->committed_ = id.seqno;
    store->compacted_ = id.seqno;
    store->view_starts_.push_back(id);
    return store;
}

namespace {

struct ParsedEntry {
    Bytes key;
    Seqno version = 0;
    Bytes value;
};

Status parse_snapshot_entry(ByteReader& r, Seqno at, ParsedEntry& e) {
    size_t offset = r.offset();
    uint32_t key_size = 0;
    if (!r.read_u32(key_size) || key_size > kMaxKeySize || key_size > r.remaining()) {
        return corrupt_at(offset, "bad key length");
    }
    (void)r.read_bytes(key_size, e.key);
    offset = r.offset();
    if (!r.read_u64(e.version) || e.version == 0 || e.version > at) {
        return corrupt_at(offset, "bad key version");
    }
    offset = r.offset();
    uint32_t value_size = 0;
    if (!r.read_u32(value_size) || value_size > kMaxValueSize || value_size > r.remaining()) {
        return corrupt_at(offset, "bad value length");
    }
    (void)r.read_bytes(value_size, e.value);
    return Status::ok_status();
}

}  // namespace

namespace {

// Reads and checks the fixed header of one part; leaves `r` at the first map record.
Status parse_snapshot_header(ByteReader& r, TxId id, Visibility which, uint32_t& map_count) {
    uint8_t version = 0;
    uint8_t tag = 0;
    TxId part_id;
    if (!r.read_u8(version)) {
        return corrupt_at(0, "missing version byte");
    }
    if (version != kSnapshotFormatVersion) {
        return error(Errc::kUnsupported,
                     "kv snapshot format version " + std::to_string(version) + " not supported");
    }
    if (!r.read_u8(tag) || !r.read_u64(part_id.view) || !r.read_u64(part_id.seqno) ||
        !r.read_u32(map_count)) {
        return corrupt_at(r.offset(), "truncated header");
    }
    if (tag != part_tag(which)) {
        return corrupt_at(1, "part of the wrong visibility");
    }
    if (part_id != id) {
        return corrupt_at(2, "snapshot id " + part_id.to_string() + " is not " + id.to_string());
    }
    if (map_count > r.remaining() / kMinMapSize) {
        return corrupt_at(r.offset() - 4, "map count out of bounds");
    }
    return Status::ok_status();
}

}  // namespace

Status Store::parse_snapshot_part(TxId id, ByteSpan data, Visibility which) {
    ByteReader r(data);
    uint32_t map_count = 0;
    COFFER_RETURN_IF_ERROR(parse_snapshot_header(r, id, which, map_count));

    std::string previous_name;
    for (uint32_t m = 0; m < map_count; ++m) {
        size_t offset = r.offset();
        uint16_t name_size = 0;
        Bytes name_bytes;
        if (!r.read_u16(name_size) || name_size == 0 || name_size > kMaxMapNameSize ||
            !r.read_bytes(name_size, name_bytes)) {
            return corrupt_at(offset, "bad map name");
        }
        std::string name = to_string(name_bytes);
        if (m > 0 && !(previous_name < name)) {
            return corrupt_at(offset, "map names not strictly increasing");
        }
        if (visibility_of(name) != which) {
            return corrupt_at(offset, "map of the wrong visibility in this part");
        }

        offset = r.offset();
        uint32_t entry_count = 0;
        if (!r.read_u32(entry_count) || entry_count == 0 ||
            entry_count > r.remaining() / kMinEntrySize) {
            return corrupt_at(offset, "entry count out of bounds");
        }
        MapData& map_data = maps_[name];
        for (uint32_t i = 0; i < entry_count; ++i) {
            offset = r.offset();
            ParsedEntry e;
            COFFER_RETURN_IF_ERROR(parse_snapshot_entry(r, id.seqno, e));
            if (!map_data.empty() && !(map_data.rbegin()->first < e.key)) {
                return corrupt_at(offset, "keys not strictly increasing");
            }
            map_data.emplace_hint(map_data.end(), std::move(e.key),
                                  History{Version{e.version, std::move(e.value)}});
        }
        previous_name = std::move(name);
    }
    if (!r.at_end()) {
        return corrupt_at(r.offset(), std::to_string(r.remaining()) + " trailing bytes");
    }
    return Status::ok_status();
}

}  // namespace coffer::kv
