// The Replicator as a follower, driven message by message by a fake leader over the real
// node-to-node transport (loopback TLS), with real ledgers on disk.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <thread>

#include "kv/store.h"
#include "ledger/ledger.h"
#include "node/identity.h"
#include "node/peer_transport.h"
#include "node/raft_storage.h"
#include "node/replicator.h"

namespace coffer::node {
namespace {

int64_t now_unix() {
    return static_cast<int64_t>(std::time(nullptr));
}

class Scratch {
  public:
    Scratch()
        : path_(std::filesystem::temp_directory_path() /
                ("coffer-replicator-" + std::to_string(::getpid()))) {
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    ~Scratch() { std::filesystem::remove_all(path_); }
    std::string sub(const std::string& name) const { return (path_ / name).string(); }

  private:
    std::filesystem::path path_;
};

// A store and a consensus-mode ledger signing with `identity`.
struct LedgerUnderTest {
    LedgerUnderTest(const std::string& dir, const ServiceIdentity& service,
                    const NodeIdentity& identity, const ledger::LedgerSecrets& secrets) {
        ledger::LedgerOptions options;
        options.dir = dir;
        options.node_id = identity.node_id;
        options.node_key = identity.key;
        options.node_cert = identity.cert;
        options.service_cert = service.cert;
        options.commit_at_durable_signature = false;
        options.views_from_consensus = true;
        ledger = ledger::Ledger::open(fs, options, store, secrets).value();
    }

    Status put(std::string_view key, std::string_view value) {
        kv::Transaction tx = store.begin();
        COFFER_RETURN_IF_ERROR(tx.put("public:app", as_bytes(key), as_bytes(value)));
        return store.commit(std::move(tx)).status();
    }

    consensus::Entry entry(uint64_t seqno) const {
        return raft_entry_of(ledger->entry_bytes(seqno).value()).value();
    }

    ledger::PosixFileSystem fs;
    kv::Store store;
    std::unique_ptr<ledger::Ledger> ledger;
};

// The fake leader's end: a transport with the leader's identity that records what it gets.
struct FakeLeader {
    std::unique_ptr<PeerTransport> transport;
    std::mutex mu;
    std::vector<consensus::Message> received;

    // Waits for a successful AppendEntriesResponse of `term` acknowledging `match`.
    bool wait_ack(consensus::Term term, consensus::Index match, int timeout_ms) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (std::chrono::steady_clock::now() < deadline) {
            {
                std::lock_guard lock(mu);
                for (const consensus::Message& m : received) {
                    const auto* r = std::get_if<consensus::AppendEntriesResponse>(&m.body);
                    if (r != nullptr && r->term == term && r->success && r->match_index == match) {
                        return true;
                    }
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return false;
    }
};

TransportOptions transport_options(const NodeIdentity& identity, const ServiceIdentity& service) {
    TransportOptions o;
    o.node_id = identity.node_id;
    o.listen = ListenAddress{"127.0.0.1", 0};
    o.node_cert_pem = identity.cert.to_pem();
    o.node_key_pem = identity.key.to_pem();
    o.service_cert = service.cert;
    return o;
}

// A new leader replaces exactly one unsigned entry of the old term with its own entry at the
// same index. The follower's durable index comes back to the value it reported before the
// truncation, yet the entry is new: it must be acknowledged (it used to be skipped as
// "unchanged", which stalled every commit of the new term until a later entry arrived).
TEST(Replicator, AcknowledgesAnEntryRewrittenAtAPreviouslyReportedIndex) {
    Scratch scratch;
    ServiceIdentity service = make_service_identity(now_unix(), 3600).value();
    NodeIdentity leader_id = make_node_identity(service, {"127.0.0.1"}, now_unix(), 3600).value();
    NodeIdentity follower_id = make_node_identity(service, {"127.0.0.1"}, now_unix(), 3600).value();
    ledger::LedgerSecrets secrets;
    ASSERT_TRUE(secrets.add(ledger::make_random_ledger_secret(1)).ok());

    // Term 1: entries 1 (data), 2 (signature), 3 (data, never signed).
    LedgerUnderTest old_term(scratch.sub("old"), service, leader_id, secrets);
    old_term.store.set_view(1);
    ASSERT_TRUE(old_term.put("a", "1").ok());
    ASSERT_TRUE(old_term.ledger->sign_now().ok());
    ASSERT_TRUE(old_term.put("b", "old").ok());
    // Term 2: the same first two entries, then another entry 3.
    LedgerUnderTest new_term(scratch.sub("new"), service, leader_id, secrets);
    ASSERT_TRUE(new_term.ledger->append_replicated(old_term.ledger->entry_bytes(1).value()).ok());
    ASSERT_TRUE(new_term.ledger->append_replicated(old_term.ledger->entry_bytes(2).value()).ok());
    new_term.store.set_view(2);
    ASSERT_TRUE(new_term.put("b", "new").ok());
    ASSERT_EQ(new_term.entry(3).term, 2u);

    // The follower: its own ledger, transport and Replicator; voters leader, follower, other.
    LedgerUnderTest follower(scratch.sub("follower"), service, follower_id, secrets);
    std::atomic<Replicator*> deliver_to{nullptr};
    auto follower_transport =
        PeerTransport::start(transport_options(follower_id, service), [&deliver_to](auto m) {
            if (Replicator* r = deliver_to.load(); r != nullptr) {
                r->deliver(std::move(m));
            }
        });
    ASSERT_TRUE(follower_transport.ok());
    RaftStateFile state;
    state.bootstrap =
        consensus::make_configuration({leader_id.node_id, follower_id.node_id, "other"}).value();
    ReplicatorOptions ro;
    ro.node_id = follower_id.node_id;
    ro.data_dir = scratch.sub("follower");
    auto replicator = Replicator::start(
        ro, follower.store, *follower.ledger, **follower_transport, state,
        [](const Status& s) { ADD_FAILURE() << "replication failed: " << s.to_string(); });
    ASSERT_TRUE(replicator.ok()) << replicator.status().to_string();
    deliver_to.store(replicator->get());

    FakeLeader leader;
    auto leader_transport =
        PeerTransport::start(transport_options(leader_id, service), [&leader](auto m) {
            std::lock_guard lock(leader.mu);
            leader.received.push_back(std::move(m));
        });
    ASSERT_TRUE(leader_transport.ok());
    leader.transport = std::move(leader_transport).value();
    leader.transport->set_address(follower_id.node_id, (*follower_transport)->advertised_address());
    (*follower_transport)->set_address(leader_id.node_id, leader.transport->advertised_address());

    consensus::AppendEntries first{1, 0, 0, 0, 0, {}};
    for (uint64_t s = 1; s <= 3; ++s) {
        first.entries.push_back(old_term.entry(s));
    }
    leader.transport->send(consensus::Message{leader_id.node_id, follower_id.node_id, first});
    ASSERT_TRUE(leader.wait_ack(1, 3, 5000)) << "term 1 entries were not acknowledged";

    consensus::AppendEntries second{2, 2, 1, 0, 0, {new_term.entry(3)}};
    leader.transport->send(consensus::Message{leader_id.node_id, follower_id.node_id, second});
    EXPECT_TRUE(leader.wait_ack(2, 3, 5000))
        << "the rewritten entry 3 of term 2 was never acknowledged as durable";
    EXPECT_EQ(follower.ledger->entry_bytes(3).value(), new_term.ledger->entry_bytes(3).value());

    deliver_to.store(nullptr);
    (*replicator)->stop();
    leader.transport->stop();
    (*follower_transport)->stop();
}

}  // namespace
}  // namespace coffer::node
