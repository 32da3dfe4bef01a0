#include "consensus/messages.h"

#include <string>
#include <type_traits>

namespace coffer::consensus {
namespace {

constexpr uint8_t kMaxMessageType = 6;

void put_bool(Bytes& out, bool v) {
    out.push_back(v ? 1 : 0);
}

void put_id(Bytes& out, const NodeId& id) {
    COFFER_CHECK(!id.empty() && id.size() <= kMaxNodeIdBytes, "bad node id in message");
    put_u16(out, static_cast<uint16_t>(id.size()));
    put_bytes(out, as_bytes(id));
}

void put_blob(Bytes& out, ByteSpan data) {
    put_u32(out, static_cast<uint32_t>(data.size()));
    put_bytes(out, data);
}

void encode_body(Bytes& out, const VoteRequest& m) {
    put_u64(out, m.term);
    put_bool(out, m.pre_vote);
    put_bool(out, m.force);
    put_u64(out, m.last_signed_index);
    put_u64(out, m.last_signed_term);
}

void encode_body(Bytes& out, const VoteResponse& m) {
    put_u64(out, m.term);
    put_bool(out, m.pre_vote);
    put_bool(out, m.granted);
}

void encode_body(Bytes& out, const AppendEntries& m) {
    COFFER_CHECK(m.entries.size() <= kMaxEntriesPerMessage, "too many entries in a message");
    put_u64(out, m.term);
    put_u64(out, m.prev_index);
    put_u64(out, m.prev_term);
    put_u64(out, m.leader_commit);
    put_u64(out, m.read_round);
    put_u32(out, static_cast<uint32_t>(m.entries.size()));
    for (size_t i = 0; i < m.entries.size(); ++i) {
        const Entry& e = m.entries[i];
        COFFER_CHECK(e.index == m.prev_index + 1 + i, "entries in a message not consecutive");
        put_u64(out, e.term);
        out.push_back(static_cast<uint8_t>(e.kind));
        put_blob(out, e.payload);
    }
}

void encode_body(Bytes& out, const AppendEntriesResponse& m) {
    put_u64(out, m.term);
    put_bool(out, m.success);
    put_u64(out, m.match_index);
    put_u64(out, m.read_round);
}

void encode_body(Bytes& out, const InstallSnapshot& m) {
    put_u64(out, m.term);
    put_u64(out, m.last_index);
    put_u64(out, m.last_term);
    put_blob(out, encode_configuration(m.config));
    put_u64(out, m.total_bytes);
    put_u64(out, m.offset);
    put_bool(out, m.done);
    put_blob(out, m.data);
}

void encode_body(Bytes& out, const InstallSnapshotResponse& m) {
    put_u64(out, m.term);
    put_u64(out, m.last_index);
    put_u64(out, m.next_offset);
    put_bool(out, m.installed);
}

// Reading helpers: each returns false on any malformation; the caller turns that into one
// kInvalidArgument naming the message type.
bool read_bool(ByteReader& r, bool& v) {
    uint8_t b = 0;
    if (!r.read_u8(b) || b > 1) {
        return false;
    }
    v = b == 1;
    return true;
}

bool read_id(ByteReader& r, NodeId& id) {
    uint16_t length = 0;
    ByteSpan bytes;
    if (!r.read_u16(length) || length == 0 || length > kMaxNodeIdBytes ||
        !r.read_span(length, bytes)) {
        return false;
    }
    id = to_string(bytes);
    return true;
}

bool read_blob(ByteReader& r, Bytes& data) {
    uint32_t length = 0;
    return r.read_u32(length) && length <= r.remaining() && r.read_bytes(length, data);
}

bool decode_body(ByteReader& r, VoteRequest& m) {
    return r.read_u64(m.term) && read_bool(r, m.pre_vote) && read_bool(r, m.force) &&
           r.read_u64(m.last_signed_index) && r.read_u64(m.last_signed_term);
}

bool decode_body(ByteReader& r, VoteResponse& m) {
    return r.read_u64(m.term) && read_bool(r, m.pre_vote) && read_bool(r, m.granted);
}

bool decode_entry(ByteReader& r, Index index, Entry& e) {
    uint8_t kind = 0;
    e.index = index;
    if (!r.read_u64(e.term) || !r.read_u8(kind) || kind > kMaxEntryKind ||
        !read_blob(r, e.payload) || e.payload.size() > kMaxEntryPayloadBytes) {
        return false;
    }
    e.kind = static_cast<EntryKind>(kind);
    return true;
}

bool decode_body(ByteReader& r, AppendEntries& m) {
    uint32_t count = 0;
    if (!r.read_u64(m.term) || !r.read_u64(m.prev_index) || !r.read_u64(m.prev_term) ||
        !r.read_u64(m.leader_commit) || !r.read_u64(m.read_round) || !r.read_u32(count) ||
        count > kMaxEntriesPerMessage || count > r.remaining() / kEntryOverheadBytes) {
        return false;
    }
    if (m.prev_index > UINT64_MAX - count) {
        return false;
    }
    m.entries.resize(count);
    for (uint32_t i = 0; i < count; ++i) {
        if (!decode_entry(r, m.prev_index + 1 + i, m.entries[i])) {
            return false;
        }
    }
    return true;
}

bool decode_body(ByteReader& r, AppendEntriesResponse& m) {
    return r.read_u64(m.term) && read_bool(r, m.success) && r.read_u64(m.match_index) &&
           r.read_u64(m.read_round);
}

bool decode_body(ByteReader& r, InstallSnapshot& m) {
    Bytes config;
    if (!r.read_u64(m.term) || !r.read_u64(m.last_index) || !r.read_u64(m.last_term) ||
        !read_blob(r, config)) {
        return false;
    }
    auto decoded = decode_configuration(config);
    if (!decoded.ok()) {
        return false;
    }
    m.config = std::move(decoded).value();
    if (!r.read_u64(m.total_bytes) || !r.read_u64(m.offset) || !read_bool(r, m.done) ||
        !read_blob(r, m.data)) {
        return false;
    }
    // The chunk must lie inside the declared snapshot, and the last chunk must end it.
    return m.total_bytes <= kMaxSnapshotBytes && m.offset <= m.total_bytes &&
           m.data.size() <= m.total_bytes - m.offset &&
           (!m.done || m.offset + m.data.size() == m.total_bytes);
}

bool decode_body(ByteReader& r, InstallSnapshotResponse& m) {
    return r.read_u64(m.term) && r.read_u64(m.last_index) && r.read_u64(m.next_offset) &&
           read_bool(r, m.installed);
}

template <typename Body>
Result<Message> decode_as(ByteReader& r, Message msg) {
    Body body;
    if (!decode_body(r, body)) {
        return error(Errc::kInvalidArgument, "consensus message: malformed body");
    }
    if (!r.at_end()) {
        return error(Errc::kInvalidArgument, "consensus message: trailing bytes");
    }
    msg.body = std::move(body);
    return msg;
}

}  // namespace

MessageType Message::type() const {
    return static_cast<MessageType>(body.index() + 1);
}

Term Message::term() const {
    return std::visit([](const auto& b) { return b.term; }, body);
}

Bytes encode_message(const Message& msg) {
    Bytes out;
    out.push_back(kMessageFormatVersion);
    out.push_back(static_cast<uint8_t>(msg.type()));
    put_id(out, msg.from);
    put_id(out, msg.to);
    std::visit([&out](const auto& b) { encode_body(out, b); }, msg.body);
    COFFER_CHECK(out.size() <= kMaxMessageBytes, "consensus message over kMaxMessageBytes");
    return out;
}

Result<Message> decode_message(ByteSpan data) {
    if (data.size() > kMaxMessageBytes) {
        return error(Errc::kInvalidArgument, "consensus message: larger than kMaxMessageBytes");
    }
    ByteReader r(data);
    uint8_t version = 0;
    uint8_t type = 0;
    Message msg;
    if (!r.read_u8(version)) {
        return error(Errc::kInvalidArgument, "consensus message: empty");
    }
    if (version != kMessageFormatVersion) {
        return error(Errc::kUnsupported,
                     "consensus message: unsupported version " + std::to_string(version));
    }
    if (!r.read_u8(type) || type == 0 || type > kMaxMessageType || !read_id(r, msg.from) ||
        !read_id(r, msg.to)) {
        return error(Errc::kInvalidArgument, "consensus message: malformed header");
    }
    switch (static_cast<MessageType>(type)) {
        case MessageType::kVoteRequest:
            return decode_as<VoteRequest>(r, std::move(msg));
        case MessageType::kVoteResponse:
            return decode_as<VoteResponse>(r, std::move(msg));
        case MessageType::kAppendEntries:
            return decode_as<AppendEntries>(r, std::move(msg));
        case MessageType::kAppendEntriesResponse:
            return decode_as<AppendEntriesResponse>(r, std::move(msg));
        case MessageType::kInstallSnapshot:
            return decode_as<InstallSnapshot>(r, std::move(msg));
        case MessageType::kInstallSnapshotResponse:
            return decode_as<InstallSnapshotResponse>(r, std::move(msg));
    }
    return error(Errc::kInvalidArgument, "consensus message: unknown type");
}

}  // namespace coffer::consensus
