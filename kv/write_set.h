// Write sets: the buffered writes of one transaction, and their binary form.
//
// A write set is what a committed transaction changed: per map, per key, either the new
// value or a removal. The ledger stores it in two parts: the public maps (names starting
// with "public:") in clear, the private maps encrypted. The binary format is specified byte
// by byte in docs/formats/write-set.md.
//
// Everything here is a pure function of its arguments and thread-safe.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"

namespace coffer::kv {

// Limits, enforced when a transaction writes and when a write set is parsed.
constexpr size_t kMaxMapNameSize = 255;                // bytes of a map name (at least 1)
constexpr size_t kMaxKeySize = 64 * 1024;              // bytes of one key (may be empty)
constexpr size_t kMaxValueSize = 16 * 1024 * 1024;     // bytes of one value (may be empty)
constexpr size_t kMaxWriteSetSize = 64 * 1024 * 1024;  // size_bytes() of one write set, and
                                                       // bytes of one serialized part

// The current (and only) version of the write-set format.
constexpr uint8_t kWriteSetFormatVersion = 1;

// Maps whose name starts with this prefix are written in clear to the ledger.
constexpr std::string_view kPublicMapPrefix = "public:";

enum class Visibility { kPublic, kPrivate };

// True if `name` starts with "public:".
bool is_public_map(std::string_view name);

inline Visibility visibility_of(std::string_view name) {
    return is_public_map(name) ? Visibility::kPublic : Visibility::kPrivate;
}

// OK if `name` is a usable map name: 1 to kMaxMapNameSize bytes. Otherwise kInvalidArgument.
Status validate_map_name(std::string_view name);

struct WriteSet {
    // map name -> key -> new value, or nullopt for "removed". Both levels are sorted
    // byte-lexicographically, which makes serialization deterministic.
    std::map<std::string, std::map<Bytes, std::optional<Bytes>>> maps;

    // True if no map holds an entry (maps without entries count as empty).
    bool empty() const;

    // The number of bytes serialize_write_set would produce if every map were in one part:
    // the bound that kMaxWriteSetSize applies to.
    size_t size_bytes() const;
};

// Serializes the maps of visibility `which` (the others are skipped). Deterministic: equal
// write sets give equal bytes. Maps without entries are omitted. Needs a write set within
// the limits above (Transaction enforces them); violating them is a broken invariant.
Bytes serialize_write_set(const WriteSet& ws, Visibility which);

// Parses one part. Strict: the version byte must be kWriteSetFormatVersion
// (kUnsupported otherwise), no bytes may follow the last map, map names and keys must be
// strictly increasing, every map must have at least one entry and visibility `expected`,
// and every length must be within its limit and the remaining input. Errors: kUnsupported
// (version), kCorrupt (structure, with the byte offset), kInvalidArgument (input larger
// than kMaxWriteSetSize).
Result<WriteSet> deserialize_write_set(ByteSpan data, Visibility expected);

// Moves every map of `from` into `into` (used to join a public and a private part).
// kInvalidArgument, with `into` unchanged, if a map name appears in both.
Status merge_write_sets(WriteSet& into, WriteSet&& from);

}  // namespace coffer::kv
