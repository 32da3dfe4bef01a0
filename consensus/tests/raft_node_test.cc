// RaftNode driven by hand, one message at a time: the rules that the scenarios and the seed
// sweep exercise at scale, pinned down individually.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <vector>

#include "consensus/raft_node.h"

namespace coffer::consensus {
namespace {

RaftOptions options_for(const NodeId& id) {
    RaftOptions options;
    options.id = id;
    options.election_timeout_min_ms = 100;
    options.election_timeout_max_ms = 200;
    options.heartbeat_interval_ms = 20;
    options.max_uncommitted_entries = 8;
    return options;
}

std::unique_ptr<RaftNode> make_node(const NodeId& id, std::vector<NodeId> voters,
                                    std::vector<Entry> entries = {}, Term term = 0) {
    RecoveredState state;
    state.bootstrap_config = make_configuration(std::move(voters)).value();
    state.entries = std::move(entries);
    state.hard_state.term = term;
    auto node = RaftNode::create(options_for(id), std::move(state), 0);
    EXPECT_TRUE(node.ok()) << node.status().to_string();
    return std::move(node).value();
}

Entry data(Index index, Term term) {
    return Entry{term, index, EntryKind::kData, to_bytes("d")};
}
Entry sig(Index index, Term term) {
    return Entry{term, index, EntryKind::kSignature, to_bytes("s")};
}

template <typename T>
std::vector<T> bodies(const Output& out) {
    std::vector<T> result;
    for (const Message& m : out.messages) {
        if (const T* body = std::get_if<T>(&m.body)) {
            result.push_back(*body);
        }
    }
    return result;
}

// Makes `node` leader of a three-node network by granting it n2's vote.
void elect(RaftNode& node) {
    ASSERT_TRUE(node.campaign().ok());
    node.take_output();
    ASSERT_TRUE(
        node.receive(Message{"n2", node.id(), VoteResponse{node.term(), false, true}}).ok());
    ASSERT_EQ(node.role(), Role::kLeader);
}

TEST(RaftNode, FollowerRefusesWritesAndNamesTheLeader) {
    auto node = make_node("n2", {"n1", "n2", "n3"});
    AppendEntries heartbeat{1, 0, 0, 0, 0, {}};
    ASSERT_TRUE(node->receive(Message{"n1", "n2", heartbeat}).ok());
    auto index = node->propose(to_bytes("x"), false);
    EXPECT_EQ(index.status().code(), Errc::kFailedPrecondition);
    EXPECT_NE(index.status().message().find("leader=n1"), std::string::npos);
    EXPECT_EQ(node->leader(), NodeId("n1"));
}

TEST(RaftNode, SingleNodeCommitsOnlyAfterItsOwnFlush) {
    auto node = make_node("n1", {"n1"});
    ASSERT_TRUE(node->campaign().ok());
    ASSERT_EQ(node->role(), Role::kLeader);
    ASSERT_TRUE(node->propose(to_bytes("tx"), false).ok());
    ASSERT_TRUE(node->propose(to_bytes("sig"), true).ok());
    node->tick(500);
    EXPECT_EQ(node->commit_index(), 0u);  // CON-1: nothing durable yet
    node->on_flushed(1);
    EXPECT_EQ(node->commit_index(), 0u);  // the entry is durable, its signature is not
    node->on_flushed(2);
    EXPECT_EQ(node->commit_index(), 2u);
    EXPECT_EQ(node->take_output().commit_index, std::optional<Index>(2));
}

TEST(RaftNode, FollowerAcknowledgesOnlyDurableEntries) {
    auto node = make_node("n2", {"n1", "n2", "n3"});
    AppendEntries append{1, 0, 0, 0, 0, {data(1, 1), sig(2, 1)}};
    ASSERT_TRUE(node->receive(Message{"n1", "n2", append}).ok());
    auto acks = bodies<AppendEntriesResponse>(node->take_output());
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_TRUE(acks[0].success);
    EXPECT_EQ(acks[0].match_index, 0u);  // appended, not yet durable
    node->on_flushed(2);
    acks = bodies<AppendEntriesResponse>(node->take_output());
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0].match_index, 2u);
}

TEST(RaftNode, FollowerNeverCommitsPastWhatThisMessageVerified) {
    // CON-2: the follower holds 1..11 of term 1, where 10-11 never reached the new leader.
    std::vector<Entry> log;
    for (Index i = 1; i <= 8; ++i) {
        log.push_back(data(i, 1));
    }
    log.push_back(sig(9, 1));
    log.push_back(data(10, 1));
    log.push_back(sig(11, 1));
    auto node = make_node("n1", {"n1", "n2", "n3"}, log, 1);
    AppendEntries heartbeat{2, 9, 1, 11, 0, {}};
    ASSERT_TRUE(node->receive(Message{"n2", "n1", heartbeat}).ok());
    EXPECT_EQ(node->commit_index(), 9u);

    AppendEntries repair{2, 9, 1, 11, 0, {data(10, 2), sig(11, 2)}};
    ASSERT_TRUE(node->receive(Message{"n2", "n1", repair}).ok());
    EXPECT_EQ(node->log().at(10).term, 2u);
    EXPECT_EQ(node->commit_index(), 9u);  // 10-11 replaced but not durable yet
    node->on_flushed(11);
    EXPECT_EQ(node->commit_index(), 11u);
}

TEST(RaftNode, UnsignedTailDoesNotWinElections) {
    // The voter's last signature is at 3; the candidate's at 2, followed by unsigned entries.
    auto voter = make_node("n2", {"n1", "n2", "n3"}, {data(1, 1), sig(2, 1), sig(3, 1)}, 1);
    VoteRequest req{2, false, false, 2, 1};
    ASSERT_TRUE(voter->receive(Message{"n1", "n2", req}).ok());
    auto votes = bodies<VoteResponse>(voter->take_output());
    ASSERT_EQ(votes.size(), 1u);
    EXPECT_FALSE(votes[0].granted);

    VoteRequest better{3, false, false, 3, 1};
    ASSERT_TRUE(voter->receive(Message{"n3", "n2", better}).ok());
    votes = bodies<VoteResponse>(voter->take_output());
    ASSERT_EQ(votes.size(), 1u);
    EXPECT_TRUE(votes[0].granted);
}

TEST(RaftNode, NewLeaderDropsItsUnsignedTail) {
    auto node = make_node("n1", {"n1", "n2", "n3"}, {sig(1, 1), data(2, 1), data(3, 1)}, 1);
    elect(*node);
    EXPECT_EQ(node->log().last_index(), 1u);
    auto out = node->take_output();
    bool truncated = false;
    for (const LogOp& op : out.log_ops) {
        truncated = truncated || (op.kind == LogOp::Kind::kTruncate && op.index == 1);
    }
    EXPECT_TRUE(truncated);
}

TEST(RaftNode, LeaderRefusesBeyondTheUncommittedBound) {
    auto node = make_node("n1", {"n1", "n2", "n3"});
    elect(*node);
    for (int i = 0; i < 8; ++i) {
        ASSERT_TRUE(node->propose(to_bytes("x"), false).ok());
    }
    EXPECT_EQ(node->propose(to_bytes("x"), false).status().code(), Errc::kResourceExhausted);
}

TEST(RaftNode, InheritedEntriesDoNotCountAgainstTheUncommittedBound) {
    // A restarted node does not know its commit index: twenty recovered entries, bound 8.
    std::vector<Entry> recovered;
    for (Index i = 1; i < 20; ++i) {
        recovered.push_back(data(i, 1));
    }
    recovered.push_back(sig(20, 1));
    auto node = make_node("n1", {"n1"}, recovered, 1);
    ASSERT_TRUE(node->campaign().ok());
    ASSERT_EQ(node->role(), Role::kLeader);
    EXPECT_TRUE(node->check_propose().ok());
    for (int i = 0; i < 8; ++i) {
        ASSERT_TRUE(node->propose(to_bytes("own"), false).ok()) << i;
    }
    EXPECT_EQ(node->propose(to_bytes("own"), true).status().code(), Errc::kResourceExhausted);
}

TEST(RaftNode, MessagesStampedByAdvanceClockKeepALeaderThroughASlowStep) {
    // The caller's previous step took longer than an election timeout; replies that queued
    // meanwhile must count as heard now, not at the last tick.
    auto stamped = make_node("n1", {"n1", "n2", "n3"});
    elect(*stamped);
    stamped->advance_clock(1000);
    ASSERT_TRUE(
        stamped->receive(Message{"n2", "n1", AppendEntriesResponse{stamped->term(), true, 0, 0}})
            .ok());
    stamped->tick(1000);
    EXPECT_EQ(stamped->role(), Role::kLeader);

    auto unstamped = make_node("n1", {"n1", "n2", "n3"});
    elect(*unstamped);
    ASSERT_TRUE(
        unstamped
            ->receive(Message{"n2", "n1", AppendEntriesResponse{unstamped->term(), true, 0, 0}})
            .ok());
    unstamped->tick(1000);
    EXPECT_NE(unstamped->role(), Role::kLeader);  // heard "at 0": check-quorum steps down
}

TEST(RaftNode, PreVoteKeepsTheTermOfAnIsolatedNode) {
    auto node = make_node("n3", {"n1", "n2", "n3"}, {}, 4);
    for (uint64_t t = 0; t <= 5000; t += 10) {
        node->tick(t);
        node->take_output();
    }
    EXPECT_EQ(node->term(), 4u);
    EXPECT_GT(node->stats().pre_votes_started, 0u);
    EXPECT_EQ(node->stats().elections_started, 0u);
}

TEST(RaftNode, LeaderWithoutQuorumStepsDown) {
    auto node = make_node("n1", {"n1", "n2", "n3"});
    elect(*node);
    for (uint64_t t = 0; t <= 100; t += 10) {
        node->tick(t);
    }
    EXPECT_EQ(node->role(), Role::kFollower);
    EXPECT_FALSE(node->leader().has_value());
    EXPECT_EQ(node->stats().check_quorum_step_downs, 1u);
}

TEST(RaftNode, EarlierTermSignatureCommitsOnlyWithOneOfTheCurrentTerm) {
    auto node = make_node("n1", {"n1", "n2", "n3"}, {data(1, 1), sig(2, 1)}, 1);
    node->on_flushed(2);
    elect(*node);
    ASSERT_TRUE(node->receive(Message{"n2", "n1", AppendEntriesResponse{2, true, 2, 0}}).ok());
    EXPECT_EQ(node->commit_index(), 0u);  // Raft §5.4.2
    ASSERT_TRUE(node->propose(to_bytes("sig"), true).ok());
    node->on_flushed(3);
    ASSERT_TRUE(node->receive(Message{"n2", "n1", AppendEntriesResponse{2, true, 3, 0}}).ok());
    EXPECT_EQ(node->commit_index(), 3u);
}

TEST(RaftNode, MalformedPeerInputIsRejectedAndCounted) {
    auto node = make_node("n2", {"n1", "n2", "n3"});
    AppendEntries bad{3, 0, 0, 0, 0, {data(1, 3), data(2, 2)}};  // terms decrease
    EXPECT_EQ(node->receive(Message{"n1", "n2", bad}).code(), Errc::kInvalidArgument);
    EXPECT_EQ(node->receive(Message{"n1", "n9", AppendEntries{}}).code(), Errc::kInvalidArgument);
    EXPECT_EQ(node->stats().messages_rejected, 2u);
    EXPECT_EQ(node->log().last_index(), 0u);
    EXPECT_EQ(node->term(), 0u);
}

TEST(RaftNode, SameIndexAndTermWithDifferentBytesIsRejected) {
    auto node = make_node("n2", {"n1", "n2", "n3"}, {data(1, 1), sig(2, 1)}, 1);
    Entry forged{1, 2, EntryKind::kSignature, to_bytes("forged")};
    AppendEntries req{1, 1, 1, 0, 0, {forged}};
    EXPECT_EQ(node->receive(Message{"n1", "n2", req}).code(), Errc::kInvalidArgument);
    EXPECT_EQ(node->log().at(2).payload, to_bytes("s"));
}

TEST(RaftNode, ReadIndexWaitsForAHeartbeatRoundOfThisTerm) {
    auto node = make_node("n1", {"n1", "n2", "n3"});
    elect(*node);
    EXPECT_EQ(node->request_read().status().code(), Errc::kFailedPrecondition);
    ASSERT_TRUE(node->propose(to_bytes("sig"), true).ok());
    node->on_flushed(1);
    ASSERT_TRUE(node->receive(Message{"n2", "n1", AppendEntriesResponse{1, true, 1, 0}}).ok());
    ASSERT_EQ(node->commit_index(), 1u);
    node->take_output();
    auto read = node->request_read();
    ASSERT_TRUE(read.ok());
    auto heartbeats = bodies<AppendEntries>(node->take_output());
    ASSERT_FALSE(heartbeats.empty());
    uint64_t round = heartbeats[0].read_round;
    EXPECT_TRUE(node->take_output().reads.empty());
    ASSERT_TRUE(node->receive(Message{"n3", "n1", AppendEntriesResponse{1, true, 1, round}}).ok());
    auto reads = node->take_output().reads;
    ASSERT_EQ(reads.size(), 1u);
    EXPECT_EQ(reads[0].read_id, read.value());
    EXPECT_EQ(reads[0].read_index, 1u);
}

TEST(RaftNode, ConfigurationChangesOneNodeAtATime) {
    auto node = make_node("n1", {"n1", "n2", "n3"});
    elect(*node);
    ASSERT_TRUE(node->propose(to_bytes("sig"), true).ok());
    node->on_flushed(1);
    ASSERT_TRUE(node->receive(Message{"n2", "n1", AppendEntriesResponse{1, true, 1, 0}}).ok());
    Configuration two_more = make_configuration({"n1", "n2", "n3", "n4", "n5"}).value();
    EXPECT_EQ(node->propose_configuration(two_more).status().code(), Errc::kInvalidArgument);
    Configuration one_more = make_configuration({"n1", "n2", "n3", "n4"}).value();
    ASSERT_TRUE(node->propose_configuration(one_more).ok());
    EXPECT_EQ(node->configuration(), one_more);  // in force once appended
    Configuration next = make_configuration({"n1", "n2", "n3", "n4", "n5"}).value();
    EXPECT_EQ(node->propose_configuration(next).status().code(), Errc::kFailedPrecondition);
}

TEST(RaftNode, CallerEncodedConfigurationEntriesUseItsDecoder) {
    // The node layer's configuration entries are ledger entries: a decoder reads the voters
    // out of them. Here the payload is "cfg:" followed by encode_configuration's bytes.
    RaftOptions options = options_for("n1");
    options.configuration_decoder = [](ByteSpan payload) -> Result<Configuration> {
        std::string_view prefix = "cfg:";
        if (payload.size() < prefix.size() ||
            std::string_view(reinterpret_cast<const char*>(payload.data()), prefix.size()) !=
                prefix) {
            return error(Errc::kInvalidArgument, "not a configuration payload");
        }
        return decode_configuration(payload.subspan(prefix.size()));
    };
    RecoveredState state;
    state.bootstrap_config = make_configuration({"n1", "n2", "n3"}).value();
    auto created = RaftNode::create(options, std::move(state), 0);
    ASSERT_TRUE(created.ok());
    RaftNode& node = **created;
    Configuration one_more = make_configuration({"n1", "n2", "n3", "n4"}).value();
    EXPECT_EQ(node.check_propose().code(), Errc::kFailedPrecondition);  // not leader yet
    elect(node);
    ASSERT_TRUE(node.propose(to_bytes("sig"), true).ok());
    node.on_flushed(1);
    ASSERT_TRUE(node.receive(Message{"n2", "n1", AppendEntriesResponse{1, true, 1, 0}}).ok());
    ASSERT_TRUE(node.check_propose().ok());
    ASSERT_TRUE(node.check_propose_configuration(one_more).ok());

    Bytes wrong = to_bytes("cfg:");
    Bytes other = encode_configuration(make_configuration({"n1", "n2", "n3", "n5"}).value());
    wrong.insert(wrong.end(), other.begin(), other.end());
    EXPECT_EQ(node.propose_configuration(one_more, wrong).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(node.propose_configuration(one_more, to_bytes("garbage")).status().code(),
              Errc::kInvalidArgument);
    EXPECT_EQ(node.log().last_index(), 1u);  // refused proposals append nothing

    Bytes right = to_bytes("cfg:");
    Bytes encoded = encode_configuration(one_more);
    right.insert(right.end(), encoded.begin(), encoded.end());
    auto index = node.propose_configuration(one_more, right);
    ASSERT_TRUE(index.ok()) << index.status().to_string();
    EXPECT_EQ(node.configuration(), one_more);
    EXPECT_EQ(node.log().at(*index).payload, right);
    EXPECT_EQ(node.check_propose_configuration(one_more).code(), Errc::kFailedPrecondition);
}

TEST(RaftNode, CreateRejectsInconsistentRecoveredState) {
    RecoveredState gap;
    gap.bootstrap_config = make_configuration({"n1"}).value();
    gap.hard_state.term = 1;
    gap.entries = {data(1, 1), data(3, 1)};
    EXPECT_EQ(RaftNode::create(options_for("n1"), gap, 0).status().code(), Errc::kCorrupt);

    RecoveredState commit_not_signature = gap;
    commit_not_signature.entries = {data(1, 1), sig(2, 1)};
    commit_not_signature.commit_index = 1;
    EXPECT_EQ(RaftNode::create(options_for("n1"), commit_not_signature, 0).status().code(),
              Errc::kCorrupt);

    RaftOptions bad = options_for("n1");
    bad.heartbeat_interval_ms = bad.election_timeout_min_ms;
    EXPECT_EQ(RaftNode::create(bad, RecoveredState{}, 0).status().code(), Errc::kInvalidArgument);
}

}  // namespace
}  // namespace coffer::consensus
