// Consensus messages between nodes and their versioned binary encoding.
//
// The byte layout is specified in docs/formats/consensus-messages.md. Decoding is strict:
// a truncated, over-long or otherwise malformed message is a kInvalidArgument error and an
// unknown version is kUnsupported; a hostile peer can never trip an assertion.
//
// Thread-safety: the functions are pure; the structs are plain values.
#pragma once

#include <cstdint>
#include <variant>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "consensus/types.h"

namespace coffer::consensus {

constexpr uint8_t kMessageFormatVersion = 1;
// Most entries one AppendEntries may carry.
constexpr size_t kMaxEntriesPerMessage = 1024;
// Largest encoded message accepted or produced (entries and snapshot chunks are cut to fit).
// It admits one entry of kMaxEntryPayloadBytes; batching keeps messages far smaller
// (RaftOptions::max_bytes_per_message).
constexpr size_t kMaxMessageBytes = kMaxEntryPayloadBytes + (1u << 20);
// Bytes of an encoded message that are not entry payloads or snapshot data, at most: the
// sender keeps payload + kMessageOverheadBytes within its byte budget.
constexpr size_t kMessageOverheadBytes = 1024;
// Per-entry framing in AppendEntries: term (8) + kind (1) + payload length (4).
constexpr size_t kEntryOverheadBytes = 13;
// Largest snapshot accepted (it is sent in chunks of at most the message budget).
constexpr uint64_t kMaxSnapshotBytes = 1ull << 32;

enum class MessageType : uint8_t {
    kVoteRequest = 1,  // RequestVote and PreVote
    kVoteResponse = 2,
    kAppendEntries = 3,
    kAppendEntriesResponse = 4,
    kInstallSnapshot = 5,
    kInstallSnapshotResponse = 6,
};

// RequestVote (Raft §5.2) or, with pre_vote set, the pre-vote probe (Raft thesis §9.6):
// `term` is the term the candidate is in (or would move to, for a pre-vote). Candidates are
// compared by their last SIGNATURE entry, not their last entry (docs/consensus.md).
struct VoteRequest {
    Term term = 0;
    bool pre_vote = false;
    // Leadership transfer (RaftNode::campaign): voters ignore their leader lease.
    bool force = false;
    Index last_signed_index = 0;
    Term last_signed_term = 0;
    bool operator==(const VoteRequest&) const = default;
};

struct VoteResponse {
    Term term = 0;  // the responder's term (for a pre-vote: the term asked about, if granted)
    bool pre_vote = false;
    bool granted = false;
    bool operator==(const VoteResponse&) const = default;
};

// Entries have consecutive indices prev_index + 1, prev_index + 2, ... (not encoded).
// `read_round` numbers heartbeat rounds for read-index reads.
struct AppendEntries {
    Term term = 0;
    Index prev_index = 0;
    Term prev_term = 0;
    Index leader_commit = 0;
    uint64_t read_round = 0;
    std::vector<Entry> entries;
    bool operator==(const AppendEntries&) const = default;
};

// success: `match_index` entries are durable on the follower and match the leader's log.
// failure: `match_index` is a hint: the last index at which the follower may match (the
// leader retries from match_index + 1).
struct AppendEntriesResponse {
    Term term = 0;
    bool success = false;
    Index match_index = 0;
    uint64_t read_round = 0;
    bool operator==(const AppendEntriesResponse&) const = default;
};

// One chunk of a snapshot at the committed position (last_index, last_term), whose
// configuration is `config`. Chunks are sent in order; `done` marks the last one.
struct InstallSnapshot {
    Term term = 0;
    Index last_index = 0;
    Term last_term = 0;
    Configuration config;
    uint64_t total_bytes = 0;
    uint64_t offset = 0;
    bool done = false;
    Bytes data;
    bool operator==(const InstallSnapshot&) const = default;
};

// `next_offset`: the follower wants the chunk at this offset next; `installed` is set once the
// snapshot at last_index is durably installed (then match_index = last_index).
struct InstallSnapshotResponse {
    Term term = 0;
    Index last_index = 0;
    uint64_t next_offset = 0;
    bool installed = false;
    bool operator==(const InstallSnapshotResponse&) const = default;
};

using MessageBody = std::variant<VoteRequest, VoteResponse, AppendEntries, AppendEntriesResponse,
                                 InstallSnapshot, InstallSnapshotResponse>;

struct Message {
    NodeId from;
    NodeId to;
    MessageBody body;

    MessageType type() const;
    Term term() const;
    bool operator==(const Message&) const = default;
};

// Encodes `msg` (docs/formats/consensus-messages.md). The sender builds messages within
// kMaxMessageBytes and kMaxEntriesPerMessage; encode CHECKs it (a larger message is a bug).
Bytes encode_message(const Message& msg);

// Strict decoding. Errors: kUnsupported (unknown version), kInvalidArgument (unknown type,
// truncation, trailing bytes, a boolean other than 0/1, an unknown entry kind, an empty or
// over-long node id, more than kMaxEntriesPerMessage entries, more than kMaxMessageBytes, a
// snapshot chunk beyond its declared total, a malformed configuration).
Result<Message> decode_message(ByteSpan data);

}  // namespace coffer::consensus
