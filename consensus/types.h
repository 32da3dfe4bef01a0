// The vocabulary of Coffer's consensus: log positions, entries and configurations.
//
// A Raft log index is a ledger seqno and a Raft term is a ledger view (kv/tx_id.h). Every
// entry is opaque bytes to consensus except for two facts it must know: whether the entry is
// a SIGNATURE entry (only those commit, docs/consensus.md) and whether it changes the
// CONFIGURATION (the set of voting nodes), whose payload consensus itself encodes.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "kv/tx_id.h"

namespace coffer::consensus {

using Index = kv::Seqno;
using Term = kv::View;
using NodeId = std::string;

// Longest node id accepted anywhere (ids are hex digests or short names).
constexpr size_t kMaxNodeIdBytes = 128;
// Largest entry payload (the ledger's largest entry, ledger/chunk_store.h kMaxEntrySize).
constexpr size_t kMaxEntryPayloadBytes = (64u << 20) + (64u << 10);
// Most voting nodes in one configuration.
constexpr size_t kMaxConfigurationNodes = 64;

enum class EntryKind : uint8_t {
    kData = 0,           // an ordinary transaction
    kSignature = 1,      // a signature entry: the only kind whose replication commits
    kConfiguration = 2,  // payload = encode_configuration(new set of voters)
};
constexpr uint8_t kMaxEntryKind = 2;

std::string_view entry_kind_name(EntryKind kind);

struct Entry {
    Term term = 0;
    Index index = 0;
    EntryKind kind = EntryKind::kData;
    Bytes payload;

    bool is_signature() const { return kind == EntryKind::kSignature; }
    bool operator==(const Entry&) const = default;
};

// The voters of one configuration, sorted and without duplicates.
struct Configuration {
    std::vector<NodeId> voters;

    bool contains(std::string_view id) const;
    size_t quorum() const { return voters.size() / 2 + 1; }
    bool operator==(const Configuration&) const = default;
};

// Sorts and deduplicates `ids` into a configuration. Errors: kInvalidArgument when an id is
// empty or longer than kMaxNodeIdBytes, or there are more than kMaxConfigurationNodes.
Result<Configuration> make_configuration(std::vector<NodeId> ids);

// Configuration payload (docs/formats/consensus-messages.md, "Configuration"): u16 count,
// then per voter u16 length + bytes, sorted.
Bytes encode_configuration(const Configuration& config);
// Strict inverse of encode_configuration: kInvalidArgument on truncation, trailing bytes,
// empty or over-long ids, unsorted or duplicate ids, too many voters.
Result<Configuration> decode_configuration(ByteSpan data);

// Reads the configuration out of a configuration entry's payload. The default (an empty
// function) is decode_configuration. The node keeps every log entry as a ledger entry, so
// its configuration entries are ledger entries too and it supplies a decoder that finds the
// voters in the entry's public write set (node/raft_storage.h). A decoder must be pure and
// deterministic: every node decodes the same bytes to the same configuration.
using ConfigurationDecoder = std::function<Result<Configuration>(ByteSpan payload)>;

// Applies `decoder`, or decode_configuration when it is empty.
Result<Configuration> decode_configuration_with(const ConfigurationDecoder& decoder,
                                                ByteSpan payload);

}  // namespace coffer::consensus
