// The pieces the Replicator is built from, one at a time: Raft entries read from ledger
// entries, the term-and-vote file, the ledger-backed log store, and the node-to-node
// transport between real TLS endpoints on loopback.
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <thread>

#include "kv/store.h"
#include "ledger/ledger.h"
#include "node/files.h"
#include "node/governance_maps.h"
#include "node/identity.h"
#include "node/peer_transport.h"
#include "node/raft_storage.h"

namespace coffer::node {
namespace {

int64_t now_unix() {
    return static_cast<int64_t>(std::time(nullptr));
}

class TempFolder {
  public:
    TempFolder() {
        path_ =
            std::filesystem::temp_directory_path() /
            ("coffer-repl-parts-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
        std::filesystem::create_directories(path_);
    }
    ~TempFolder() { std::filesystem::remove_all(path_); }
    std::string str() const { return path_.string(); }

  private:
    static inline int counter_ = 0;
    std::filesystem::path path_;
};

struct LedgerFixture {
    explicit LedgerFixture(const std::string& dir)
        : service(make_service_identity(now_unix(), 3600).value()),
          node(make_node_identity(service, {"127.0.0.1"}, now_unix(), 3600).value()) {
        ledger::LedgerOptions options;
        options.dir = dir;
        options.node_id = node.node_id;
        options.node_key = node.key;
        options.node_cert = node.cert;
        options.service_cert = service.cert;
        options.commit_at_durable_signature = false;
        options.views_from_consensus = true;
        ledger::LedgerSecrets secrets;
        EXPECT_TRUE(secrets.add(ledger::make_random_ledger_secret(1)).ok());
        store.set_view(1);
        ledger = ledger::Ledger::open(fs, options, store, secrets).value();
    }

    Status put(std::string_view map, std::string_view key, std::string_view value) {
        kv::Transaction tx = store.begin();
        COFFER_RETURN_IF_ERROR(tx.put(map, as_bytes(key), as_bytes(value)));
        return store.commit(std::move(tx)).status();
    }

    ServiceIdentity service;
    NodeIdentity node;
    ledger::PosixFileSystem fs;
    kv::Store store;
    std::unique_ptr<ledger::Ledger> ledger;
};

consensus::Configuration config_of(std::vector<std::string> ids) {
    return consensus::make_configuration(std::move(ids)).value();
}

TEST(RaftStorage, EntryKindsComeFromTheLedgerEntry) {
    TempFolder dir;
    LedgerFixture f(dir.str());
    ASSERT_TRUE(f.put("public:app", "k", "v").ok());
    consensus::Configuration two = config_of({"a", "b"});
    ASSERT_TRUE(f.put(kConfigurationMap, kConfigurationKey, configuration_value(two)).ok());
    ASSERT_TRUE(f.ledger->sign_now().ok());

    auto data = raft_entry_of(f.ledger->entry_bytes(1).value());
    ASSERT_TRUE(data.ok()) << data.status().to_string();
    EXPECT_EQ(data->kind, consensus::EntryKind::kData);
    EXPECT_EQ(data->term, 1u);
    EXPECT_EQ(data->index, 1u);
    auto config = raft_entry_of(f.ledger->entry_bytes(2).value());
    ASSERT_TRUE(config.ok());
    EXPECT_EQ(config->kind, consensus::EntryKind::kConfiguration);
    EXPECT_EQ(configuration_of_entry(config->payload).value(), two);
    auto sig = raft_entry_of(f.ledger->entry_bytes(3).value());
    ASSERT_TRUE(sig.ok());
    EXPECT_EQ(sig->kind, consensus::EntryKind::kSignature);

    // On a recovered service the lost network's configurations no longer count: at or below
    // the recovery base they are plain data entries.
    auto historic = raft_entry_of(f.ledger->entry_bytes(2).value(), 2);
    ASSERT_TRUE(historic.ok());
    EXPECT_EQ(historic->kind, consensus::EntryKind::kData);
    EXPECT_EQ(raft_entry_of(f.ledger->entry_bytes(2).value(), 1)->kind,
              consensus::EntryKind::kConfiguration);
    EXPECT_EQ(raft_entry_of(f.ledger->entry_bytes(3).value(), 3)->kind,
              consensus::EntryKind::kSignature);

    EXPECT_FALSE(configuration_of_entry(data->payload).ok());
    Bytes cut = data->payload;
    cut.resize(cut.size() / 2);
    EXPECT_FALSE(raft_entry_of(cut).ok());
}

TEST(RaftStorage, MalformedConfigurationWritesAreRefused) {
    for (const char* bad :
         {"[]", "{\"voters\": \"a\"}", "{\"voters\": [1]}", "{\"voters\": [\"\"]}",
          "{\"voters\": [\"a\"], \"x\": 1}", "not json"}) {
        kv::WriteSet ws;
        ws.maps[std::string(kConfigurationMap)][to_bytes(kConfigurationKey)] = to_bytes(bad);
        EXPECT_FALSE(configuration_in(ws).ok()) << bad;
    }
    kv::WriteSet other_key;
    other_key.maps[std::string(kConfigurationMap)][to_bytes("other")] =
        to_bytes("{\"voters\": [\"a\"]}");
    EXPECT_FALSE(configuration_in(other_key).ok());
    kv::WriteSet none;
    none.maps["public:x"][to_bytes("k")] = to_bytes("v");
    EXPECT_FALSE(configuration_in(none).value().has_value());
}

TEST(RaftStorage, StateFileRoundTripsAndRefusesDamage) {
    TempFolder dir;
    EXPECT_EQ(read_raft_state(dir.str()).status().code(), Errc::kNotFound);
    RaftStateFile state;
    state.hard_state.term = 7;
    state.hard_state.voted_for = "n2";
    state.bootstrap = config_of({"n1"});
    ASSERT_TRUE(write_raft_state(dir.str(), state).ok());
    auto back = read_raft_state(dir.str());
    ASSERT_TRUE(back.ok()) << back.status().to_string();
    EXPECT_EQ(back->hard_state, state.hard_state);
    EXPECT_EQ(back->bootstrap, state.bootstrap);
    EXPECT_EQ(back->recovery_base, 0u);
    state.recovery_base = 4242;
    ASSERT_TRUE(write_raft_state(dir.str(), state).ok());
    EXPECT_EQ(read_raft_state(dir.str())->recovery_base, 4242u);

    std::string path = dir.str() + "/" + std::string(kRaftStateFileName);
    for (const char* bad :
         {"", "{}", "{\"version\": 2, \"term\": 1, \"voted_for\": null, \"bootstrap\": []}",
          "{\"version\": 1, \"term\": -1, \"voted_for\": null, \"bootstrap\": []}",
          "{\"version\": 1, \"term\": 1, \"voted_for\": 3, \"bootstrap\": []}",
          "{\"version\": 1, \"term\": 1, \"voted_for\": null, \"bootstrap\": [\"b\", \"a\", "
          "\"a\"]}",
          "{\"version\": 1, \"term\": 1, \"voted_for\": null, \"bootstrap\": [], "
          "\"recovery_base\": -3}"}) {
        ASSERT_TRUE(write_file_atomic(path, bad, 0644).ok());
        EXPECT_EQ(read_raft_state(dir.str()).status().code(), Errc::kCorrupt) << bad;
    }
}

TEST(RaftStorage, RecoveryRefusesATermFileOlderThanTheLedger) {
    TempFolder dir;
    LedgerFixture f(dir.str() + "/ledger");
    ASSERT_TRUE(f.put("public:app", "k", "v").ok());
    ASSERT_TRUE(f.ledger->sign_now().ok());
    RaftStateFile state;
    state.hard_state.term = 1;
    auto recovered = recover_raft_state(*f.ledger, state);
    ASSERT_TRUE(recovered.ok()) << recovered.status().to_string();
    EXPECT_EQ(recovered->entries.size(), 2u);
    state.hard_state.term = 0;  // a copy from before this term
    EXPECT_EQ(recover_raft_state(*f.ledger, state).status().code(), Errc::kCorrupt);
}

TEST(LedgerLogStore, FollowerAppendsVerifyTheBytesAndTheirKind) {
    TempFolder dir;
    LedgerFixture leader(dir.str() + "/leader");
    ASSERT_TRUE(leader.put("public:app", "k", "v").ok());
    ASSERT_TRUE(leader.ledger->sign_now().ok());

    // A follower of the same service. The entries here are public, so it needs no ledger
    // secret of the leader's to apply them.
    ledger::LedgerOptions options;
    options.dir = dir.str() + "/follower";
    options.service_cert = leader.service.cert;
    options.commit_at_durable_signature = false;
    options.views_from_consensus = true;
    ledger::LedgerSecrets secrets;
    ledger::PosixFileSystem fs;
    kv::Store store;
    ASSERT_TRUE(secrets.add(ledger::make_random_ledger_secret(1)).ok());
    auto follower = ledger::Ledger::open(fs, options, store, secrets).value();
    LedgerLogStore log(*follower, dir.str(), config_of({"x"}), 0);

    consensus::Entry first = raft_entry_of(leader.ledger->entry_bytes(1).value()).value();
    consensus::Entry wrong_kind = first;
    wrong_kind.kind = consensus::EntryKind::kSignature;
    EXPECT_EQ(log.append(wrong_kind).code(), Errc::kCorrupt);
    consensus::Entry wrong_term = first;
    wrong_term.term = 5;
    EXPECT_EQ(log.append(wrong_term).code(), Errc::kCorrupt);
    EXPECT_EQ(follower->last_seqno(), 0u);
    ASSERT_TRUE(log.append(first).ok());
    EXPECT_EQ(follower->last_seqno(), 1u);
    ASSERT_TRUE(log.append(raft_entry_of(leader.ledger->entry_bytes(2).value()).value()).ok());
    EXPECT_EQ(log.flush().value(), 2u);
    EXPECT_EQ(follower->entry_bytes(2).value(), leader.ledger->entry_bytes(2).value());
    ASSERT_TRUE(log.truncate(1).ok());
    EXPECT_EQ(follower->last_seqno(), 1u);
    EXPECT_EQ(log.stage_snapshot({}, {}).code(), Errc::kUnsupported);
}

// ---- Transport ---------------------------------------------------------------------------

TEST(PeerTransportFraming, ParsesWhatItFramesAndRefusesDamage) {
    consensus::Message a{"n1", "n2", consensus::VoteRequest{3, false, false, 9, 2}};
    consensus::Message b{"n1", "n2", consensus::AppendEntriesResponse{3, true, 9, 4}};
    std::string body = frame_messages({consensus::encode_message(a), consensus::encode_message(b)});
    auto parsed = parse_framed_messages(body);
    ASSERT_TRUE(parsed.ok());
    ASSERT_EQ(parsed->size(), 2u);
    EXPECT_EQ((*parsed)[0], a);
    EXPECT_EQ((*parsed)[1], b);
    EXPECT_TRUE(parse_framed_messages("").value().empty());
    size_t first_frame = 4 + consensus::encode_message(a).size();
    for (size_t cut = 1; cut < body.size(); ++cut) {
        if (cut != first_frame) {  // cutting between two frames leaves one whole message
            EXPECT_FALSE(parse_framed_messages(body.substr(0, cut)).ok()) << cut;
        }
    }
    std::string huge("\xff\xff\xff\xff", 4);
    EXPECT_FALSE(parse_framed_messages(huge).ok());
}

struct Endpoint {
    explicit Endpoint(NodeIdentity id) : identity(std::move(id)) {}
    NodeIdentity identity;
    std::unique_ptr<PeerTransport> transport;
    std::mutex mu;
    std::vector<consensus::Message> received;
};

std::unique_ptr<Endpoint> start_endpoint(const ServiceIdentity& service,
                                         const crypto::Certificate& trusted_service) {
    auto e = std::make_unique<Endpoint>(
        make_node_identity(service, {"127.0.0.1"}, now_unix(), 3600).value());
    TransportOptions o;
    o.node_id = e->identity.node_id;
    o.listen = ListenAddress{"127.0.0.1", 0};
    o.node_cert_pem = e->identity.cert.to_pem();
    o.node_key_pem = e->identity.key.to_pem();
    o.service_cert = trusted_service;
    o.timeout_ms = 2000;
    Endpoint* raw = e.get();
    auto started = PeerTransport::start(o, [raw](consensus::Message m) {
        std::lock_guard lock(raw->mu);
        raw->received.push_back(std::move(m));
    });
    EXPECT_TRUE(started.ok()) << started.status().to_string();
    e->transport = std::move(started).value();
    return e;
}

size_t wait_received(Endpoint& e, size_t want) {
    for (int i = 0; i < 300; ++i) {
        {
            std::lock_guard lock(e.mu);
            if (e.received.size() >= want) {
                return e.received.size();
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::lock_guard lock(e.mu);
    return e.received.size();
}

TEST(PeerTransport, NodesOfOneServiceExchangeMessagesAndLearnAddresses) {
    ServiceIdentity service = make_service_identity(now_unix(), 3600).value();
    auto a = start_endpoint(service, service.cert);
    auto b = start_endpoint(service, service.cert);
    a->transport->set_address(b->identity.node_id, b->transport->advertised_address());
    for (uint64_t i = 0; i < 50; ++i) {
        a->transport->send(consensus::Message{a->identity.node_id, b->identity.node_id,
                                              consensus::VoteResponse{i, false, true}});
    }
    EXPECT_EQ(wait_received(*b, 50), 50u);
    {
        std::lock_guard lock(b->mu);
        EXPECT_EQ(std::get<consensus::VoteResponse>(b->received[49].body).term, 49u);
    }
    // b learnt a's address from the header of a's requests and can answer.
    auto learnt = b->transport->address_of(a->identity.node_id);
    ASSERT_TRUE(learnt.has_value());
    EXPECT_EQ(learnt->port, a->transport->port());
    b->transport->send(consensus::Message{b->identity.node_id, a->identity.node_id,
                                          consensus::VoteResponse{1, false, true}});
    EXPECT_EQ(wait_received(*a, 1), 1u);
    // A message to a peer whose address is unknown is dropped and counted.
    a->transport->send(
        consensus::Message{a->identity.node_id, "nobody", consensus::VoteResponse{1, false, true}});
    EXPECT_GE(a->transport->stats().messages_dropped, 1u);
}

TEST(PeerTransport, NodesOfAnotherServiceAndForgedSendersAreRefused) {
    ServiceIdentity service = make_service_identity(now_unix(), 3600).value();
    ServiceIdentity other = make_service_identity(now_unix(), 3600).value();
    auto honest = start_endpoint(service, service.cert);
    // An intruder whose certificate another service issued, but which trusts ours.
    auto intruder = start_endpoint(other, service.cert);
    intruder->transport->set_address(honest->identity.node_id,
                                     honest->transport->advertised_address());
    intruder->transport->send(consensus::Message{intruder->identity.node_id,
                                                 honest->identity.node_id,
                                                 consensus::VoteResponse{9, false, true}});
    // A member of the service that claims to be someone else.
    auto liar = start_endpoint(service, service.cert);
    liar->transport->set_address(honest->identity.node_id, honest->transport->advertised_address());
    liar->transport->send(consensus::Message{"somebody-else", honest->identity.node_id,
                                             consensus::VoteResponse{9, false, true}});
    for (int i = 0; i < 100 && honest->transport->stats().requests_refused < 2; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(wait_received(*honest, 1), 0u);
    EXPECT_GE(honest->transport->stats().requests_refused, 1u);
    EXPECT_GE(
        intruder->transport->stats().messages_dropped + liar->transport->stats().messages_dropped,
        2u);
}

}  // namespace
}  // namespace coffer::node
