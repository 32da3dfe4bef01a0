// Message encoding: round trips of every type and strict rejection of malformed input.
#include <gtest/gtest.h>

#include <vector>

#include "consensus/messages.h"

namespace coffer::consensus {
namespace {

Entry entry(Index index, Term term, EntryKind kind, std::string_view payload) {
    return Entry{term, index, kind, to_bytes(payload)};
}

std::vector<Message> samples() {
    Configuration config{{"n1", "n2", "n3"}};
    AppendEntries append{7, 41, 6, 40, 3, {}};
    append.entries.push_back(entry(42, 6, EntryKind::kData, "write"));
    append.entries.push_back(entry(43, 7, EntryKind::kSignature, "sig"));
    append.entries.push_back(
        entry(44, 7, EntryKind::kConfiguration, to_string(encode_configuration(config))));
    InstallSnapshot snapshot{7, 100, 5, config, 10, 4, false, to_bytes("abcd")};
    return {
        Message{"n1", "n2", VoteRequest{3, true, false, 17, 2}},
        Message{"n1", "n2", VoteRequest{3, false, true, 17, 2}},
        Message{"n2", "n1", VoteResponse{3, false, true}},
        Message{"n1", "n3", append},
        Message{"n1", "n3", AppendEntries{7, 41, 6, 40, 0, {}}},
        Message{"n3", "n1", AppendEntriesResponse{7, true, 44, 3}},
        Message{"n1", "n3", snapshot},
        Message{"n3", "n1", InstallSnapshotResponse{7, 100, 8, false}},
    };
}

TEST(ConsensusMessages, EveryTypeRoundTrips) {
    for (const Message& msg : samples()) {
        auto decoded = decode_message(encode_message(msg));
        ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
        EXPECT_EQ(decoded.value(), msg);
    }
}

TEST(ConsensusMessages, EveryTruncationIsRejected) {
    for (const Message& msg : samples()) {
        Bytes full = encode_message(msg);
        for (size_t length = 0; length < full.size(); ++length) {
            auto decoded = decode_message(ByteSpan(full.data(), length));
            EXPECT_FALSE(decoded.ok()) << "type " << static_cast<int>(msg.type())
                                       << " accepted when cut to " << length << " bytes";
        }
    }
}

TEST(ConsensusMessages, TrailingBytesAreRejected) {
    for (const Message& msg : samples()) {
        Bytes full = encode_message(msg);
        full.push_back(0);
        EXPECT_EQ(decode_message(full).status().code(), Errc::kInvalidArgument);
    }
}

TEST(ConsensusMessages, UnknownVersionIsUnsupported) {
    Bytes full = encode_message(samples()[0]);
    for (uint8_t version : {0, 2, 255}) {
        full[0] = version;
        EXPECT_EQ(decode_message(full).status().code(), Errc::kUnsupported);
    }
}

TEST(ConsensusMessages, UnknownTypeIsRejected) {
    Bytes full = encode_message(samples()[0]);
    for (uint8_t type : {0, 7, 200}) {
        full[1] = type;
        EXPECT_EQ(decode_message(full).status().code(), Errc::kInvalidArgument);
    }
}

TEST(ConsensusMessages, BadBooleanAndEntryKindAreRejected) {
    Bytes vote = encode_message(samples()[0]);
    // version, type, from (2 + 2), to (2 + 2), term (8), then the pre_vote flag.
    vote[18] = 2;
    EXPECT_EQ(decode_message(vote).status().code(), Errc::kInvalidArgument);

    Bytes append = encode_message(samples()[3]);
    // Header (10), five u64 (40), count (4), first entry's term (8): its kind byte.
    append[62] = 3;
    EXPECT_EQ(decode_message(append).status().code(), Errc::kInvalidArgument);
}

TEST(ConsensusMessages, EmptyNodeIdIsRejected) {
    Bytes full = encode_message(samples()[0]);
    Bytes bad = {full[0], full[1], 0, 0};
    bad.insert(bad.end(), full.begin() + 6, full.end());
    EXPECT_EQ(decode_message(bad).status().code(), Errc::kInvalidArgument);
}

TEST(ConsensusMessages, HugeEntryCountIsRejectedWithoutAllocating) {
    Bytes full = encode_message(Message{"n1", "n3", AppendEntries{7, 41, 6, 40, 0, {}}});
    // The entry count is the last field of an empty AppendEntries.
    full[full.size() - 4] = 0xff;
    full[full.size() - 3] = 0xff;
    full[full.size() - 2] = 0xff;
    full[full.size() - 1] = 0xff;
    EXPECT_EQ(decode_message(full).status().code(), Errc::kInvalidArgument);
}

TEST(ConsensusMessages, SnapshotChunkBeyondItsTotalIsRejected) {
    Configuration config{{"n1"}};
    // 4 bytes at offset 8 of a 10-byte snapshot overrun it.
    Message over{"n1", "n2", InstallSnapshot{1, 5, 1, config, 10, 8, false, to_bytes("abcd")}};
    EXPECT_EQ(decode_message(encode_message(over)).status().code(), Errc::kInvalidArgument);
    // A last chunk that does not reach the total.
    Message short_done{"n1", "n2", InstallSnapshot{1, 5, 1, config, 10, 0, true, to_bytes("ab")}};
    EXPECT_EQ(decode_message(encode_message(short_done)).status().code(), Errc::kInvalidArgument);
}

TEST(ConsensusMessages, ConfigurationCodecIsStrict) {
    Configuration config{{"a", "b"}};
    Bytes good = encode_configuration(config);
    ASSERT_TRUE(decode_configuration(good).ok());
    EXPECT_EQ(decode_configuration(good).value(), config);
    Configuration unsorted{{"b", "a"}};
    EXPECT_FALSE(decode_configuration(encode_configuration(unsorted)).ok());
    Configuration duplicate{{"a", "a"}};
    EXPECT_FALSE(decode_configuration(encode_configuration(duplicate)).ok());
    for (size_t length = 0; length < good.size(); ++length) {
        EXPECT_FALSE(decode_configuration(ByteSpan(good.data(), length)).ok());
    }
}

TEST(ConsensusMessages, MakeConfigurationSortsAndRejectsBadIds) {
    auto config = make_configuration({"n3", "n1", "n2", "n1"});
    ASSERT_TRUE(config.ok());
    EXPECT_EQ(config->voters, (std::vector<NodeId>{"n1", "n2", "n3"}));
    EXPECT_FALSE(make_configuration({""}).ok());
    EXPECT_FALSE(make_configuration({std::string(kMaxNodeIdBytes + 1, 'x')}).ok());
}

}  // namespace
}  // namespace coffer::consensus
