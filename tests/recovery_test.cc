// Disaster recovery end to end (docs/recovery.md), on real node processes: a three-node
// network whose nodes do not seal their secrets (local_sealing off) and whose three members
// hold recovery shares at threshold 2 takes private and public writes, before and after a
// rekey; every node is SIGKILLed; a node restarted from its own folder refuses to start (the
// operator's files alone do not bring the data back); `coffer node recover` brings the service
// back from the most advanced ledger folder under a new identity that endorses the old one;
// it stays locked with one share, refuses a forged share, a share for another service and a
// second share from the same member, and with a second member's share replays the private
// part: every committed write reads back, and the service takes new writes. Field cases GOV-2
// (bogus, duplicate and interrupted shares) and LED-2 (a torn last entry) are covered here.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "crypto/x509.h"
#include "gov/recovery.h"
#include "gov/signed_request.h"
#include "tests/network_fixture.h"
#include "tests/recovering_node.h"

namespace coffer::e2e {
namespace {

using nlohmann::json;

constexpr int kWriteWaitMs = 15000;
constexpr int kPollMs = 50;
// Writes of each kind made before the disaster.
constexpr int kWritesPerMap = 20;

struct Written {
    std::string map;  // "private" or "public"
    int id = 0;
    std::string msg;
};

// The share set of the recovery value the node serves beside `member`'s share.
std::string share_set_of(const RecoveringNode& node, const Identity& member) {
    auto c = node.connect(nullptr);
    if (c == nullptr) {
        return "";
    }
    auto r = c->request("GET", "/gov/recovery_share?member=" + fingerprint_of(member.cert_pem));
    if (!r.ok() || r->status != 200) {
        return "";
    }
    json answer = json::parse(r->body, nullptr, false);
    return answer.is_object() && answer["recovery"].is_object()
               ? answer["recovery"].value("share_set", "")
               : "";
}

class RecoveryTest : public ::testing::Test {
  protected:
    void TearDown() override {
        if (HasFailure()) {
            std::cerr << network_.log_tails();
            if (recovering_ != nullptr) {
                std::cerr << "recovering node log (tail):\n" << recovering_->log() << "\n";
            }
        }
    }

    // `coffer member share --submit` as members_[i] against the recovering node.
    CommandResult submit_share(size_t i, const std::string& previous_cert_path) {
        const Identity& m = members_[i];
        return run_coffer({"member", "share", "--submit", "--service",
                           "127.0.0.1:" + std::to_string(recovering_->port()), "--service-cert",
                           recovering_->cert_path(), "--cert", m.cert_path, "--key", m.key_path,
                           "--enc-key", dir_.path() + "/" + m.name + "_enc_privk.pem",
                           "--previous-service-cert", previous_cert_path});
    }

    // POSTs a signed recovery_share request of members_[i] carrying `share_text`.
    std::pair<int, json> post_share(size_t i, const std::string& share_text) {
        auto service = crypto::Certificate::from_pem(recovering_->cert_pem());
        EXPECT_TRUE(service.ok());
        SignOptions o{"recovery_share", json{{"share", share_text}}, std::nullopt,
                      static_cast<uint64_t>(std::time(nullptr)), ""};
        Bytes body =
            sign_request_as(members_[i], from_hex(service->fingerprint_sha256_hex()).value(), o);
        auto c = recovering_->connect(&members_[i]);
        if (c == nullptr) {
            return {0, json()};
        }
        auto r = c->request("POST", "/gov/recovery_shares", to_string(body),
                            {{"content-type", "application/cose"}});
        if (!r.ok()) {
            return {0, json()};
        }
        return {r->status, json::parse(r->body, nullptr, false)};
    }

    TempDir dir_;
    Network network_{dir_.path() + "/net"};
    std::vector<Identity> members_;
    std::unique_ptr<RecoveringNode> recovering_;
};

TEST_F(RecoveryTest, LostNetworkComesBackFromLedgerFilesWithTwoOfThreeShares) {
    NetworkOptions options;
    options.nodes = 3;
    options.extra_config = {{"local_sealing", false}};
    std::string why;
    ASSERT_TRUE(network_.form(options, why)) << why;
    uint16_t port0 = network_.node(0).client_port();
    std::string old_cert_path = network_.node(0).data_dir() + "/service_cert.pem";

    // Three members with encryption keys; shares at threshold 2.
    members_.push_back(network_.member());
    for (int i = 1; i < 3; ++i) {
        members_.push_back(keygen(dir_.path(), "member" + std::to_string(i)));
        std::vector<Identity> voters(members_.begin(), members_.end() - 1);
        json action = {{"name", "set_member"},
                       {"args",
                        {{"cert", members_.back().cert_pem},
                         {"encryption_public_key", read_text_file(members_.back().enc_pub_path)}}}};
        ASSERT_TRUE(pass_proposal(port0, old_cert_path, voters, json::array({action}), why)) << why;
    }
    // The network's member keys live in its own folder; copy the decryption key beside ours.
    std::filesystem::copy_file(network_.dir() + "/" + members_[0].name + "_enc_privk.pem",
                               dir_.path() + "/" + members_[0].name + "_enc_privk.pem");
    ASSERT_TRUE(pass_proposal(
        port0, old_cert_path, members_,
        json::array({{{"name", "set_recovery_threshold"}, {"args", {{"threshold", 2}}}}}), why))
        << why;

    std::vector<Written> written;
    std::string last_tx;
    for (int i = 0; i < 2 * kWritesPerMap; ++i) {
        if (i == kWritesPerMap) {
            // Half of the writes under a second ledger secret: recovery needs both versions,
            // which the shares re-issued at the rekey carry.
            ASSERT_TRUE(pass_proposal(
                port0, old_cert_path, members_,
                json::array({{{"name", "rekey_ledger"}, {"args", json::object()}}}), why))
                << why;
        }
        Written w{i % 2 == 0 ? "private" : "public", 100 + i,
                  "before the disaster " + std::to_string(i)};
        auto tx =
            write_following_redirects(network_, 0, network_.user(0), "/app/log/" + w.map,
                                      json{{"id", w.id}, {"msg", w.msg}}.dump(), kWriteWaitMs);
        ASSERT_TRUE(tx.has_value()) << "write " << i;
        last_tx = *tx;
        written.push_back(w);
    }
    ASSERT_TRUE(wait_tx_committed(network_, last_tx, kWriteWaitMs));

    // The disaster: every node dies at once.
    for (int i = 0; i < network_.size(); ++i) {
        network_.node(i).kill_hard();
    }
    // Without sealed secrets a node cannot restart from its own folder.
    CommandResult restart =
        run_coffer({"node", "start", "--config", network_.dir() + "/n0/config.json"}, 30000);
    EXPECT_EQ(restart.exit_code, 1) << restart.output;
    EXPECT_NE(restart.output.find("coffer node recover"), std::string::npos) << restart.output;

    // Every node's ledger folder is given: the recovery takes the most advanced one, which
    // holds every committed entry.
    std::vector<std::string> folders;
    for (int i = 0; i < network_.size(); ++i) {
        folders.push_back(network_.node(i).data_dir() + "/ledger");
    }
    std::map<std::string, std::vector<std::string>> folders_before;
    for (const std::string& folder : folders) {
        folders_before[folder] = files_under(folder);
    }
    std::string recovered_dir = dir_.path() + "/recovered";
    recovering_ = std::make_unique<RecoveringNode>(recovered_dir);
    recovering_->write_config({{"local_sealing", false}});
    ASSERT_TRUE(recovering_->start(folders, why)) << why;
    std::string log = recovering_->log();
    size_t chosen_at = log.find("recovering from ");
    ASSERT_NE(chosen_at, std::string::npos) << log;
    std::string chosen = log.substr(chosen_at + 16, log.find('\n', chosen_at) - chosen_at - 16);
    int source =
        static_cast<int>(std::find(folders.begin(), folders.end(), chosen) - folders.begin());
    ASSERT_LT(source, network_.size()) << chosen;
    // No folder's last signature comes after the chosen one's (`coffer ledger verify`).
    auto last_signed = [](const std::string& folder) {
        std::string out = run_coffer({"ledger", "verify", folder}).output;
        size_t at = out.find("last signed transaction ");
        std::string id =
            at == std::string::npos ? "" : out.substr(at + 24, out.find(',', at) - at - 24);
        size_t dot = id.find('.');
        return dot == std::string::npos
                   ? std::pair<uint64_t, uint64_t>(0, 0)
                   : std::pair<uint64_t, uint64_t>(std::stoull(id.substr(0, dot)),
                                                   std::stoull(id.substr(dot + 1)));
    };
    for (const std::string& folder : folders) {
        EXPECT_LE(last_signed(folder), last_signed(chosen)) << folder << " is further along";
    }

    // A new identity that names, and endorses, the old one.
    json state = recovering_->recovery();
    EXPECT_EQ(state.value("service_status", ""), "recovering") << state.dump();
    std::string old_fp = fingerprint_of(read_text_file(old_cert_path));
    ASSERT_TRUE(state["previous_fingerprints"].is_array()) << state.dump();
    EXPECT_EQ(state["previous_fingerprints"].back(), old_fp);
    EXPECT_NE(state.value("service_fingerprint", ""), old_fp);
    auto endorsement = crypto::Certificate::from_pem(state.value("previous_endorsement", ""));
    auto new_cert = crypto::Certificate::from_pem(recovering_->cert_pem());
    auto old_cert = crypto::Certificate::from_pem(read_text_file(old_cert_path));
    ASSERT_TRUE(endorsement.ok() && new_cert.ok() && old_cert.ok());
    EXPECT_TRUE(endorsement->verify_signed_by(new_cert->ecdsa_public_key().value()).ok());
    EXPECT_EQ(endorsement->ecdsa_public_key().value().to_der(),
              old_cert->ecdsa_public_key().value().to_der());

    // Users are refused while the service recovers; shares are refused before the members
    // accepted the recovered state.
    auto user = recovering_->connect(&network_.user(0));
    ASSERT_NE(user, nullptr);
    auto locked = user->request("GET", "/app/log/private?id=100");
    ASSERT_TRUE(locked.ok());
    EXPECT_EQ(locked->status, 503) << locked->body;
    CommandResult early = submit_share(0, old_cert_path);
    EXPECT_NE(early.exit_code, 0);
    EXPECT_NE(early.output.find("not_waiting_for_shares"), std::string::npos) << early.output;

    // The members accept the recovered public state (two of three votes).
    ASSERT_TRUE(pass_proposal(
        recovering_->port(), recovering_->cert_path(), members_,
        json::array({{{"name", "transition_service_to_open"}, {"args", json::object()}}}), why))
        << why;
    EXPECT_EQ(recovering_->recovery().value("service_status", ""), "waiting_for_recovery_shares");
    // Members see k before anyone submitted.
    EXPECT_EQ(recovering_->recovery().value("threshold", 0), 2);

    // A member checks which service it helps: a share is never sent to a service that does
    // not recover the one the member pinned.
    CommandResult other_service = submit_share(0, recovering_->cert_path());
    EXPECT_NE(other_service.exit_code, 0);
    EXPECT_NE(other_service.output.find("does not recover the service"), std::string::npos)
        << other_service.output;

    std::string old_share_set = share_set_of(*recovering_, members_[0]);
    ASSERT_FALSE(old_share_set.empty());

    // A forged share (right share set, wrong value) is refused, naming why; nothing counts.
    CommandResult plain = run_coffer(
        {"member", "share", "--decrypt", "--service",
         "127.0.0.1:" + std::to_string(recovering_->port()), "--service-cert",
         recovering_->cert_path(), "--cert", members_[1].cert_path, "--key", members_[1].key_path,
         "--enc-key", dir_.path() + "/" + members_[1].name + "_enc_privk.pem"});
    ASSERT_EQ(plain.exit_code, 0) << plain.output;
    auto share1 = gov::recovery_share_from_text(plain.output.substr(0, plain.output.find('\n')));
    ASSERT_TRUE(share1.ok()) << plain.output;
    Bytes forged = *share1;
    forged.back() ^= 0x01;
    auto [forged_status, forged_body] = post_share(1, gov::recovery_share_to_text(forged));
    EXPECT_EQ(forged_status, 400) << forged_body.dump();
    EXPECT_NE(forged_body.dump().find("forged or corrupted"), std::string::npos)
        << forged_body.dump();
    EXPECT_EQ(recovering_->recovery().value("received", -1), 0);

    // One share: still locked.
    CommandResult first = submit_share(0, old_cert_path);
    ASSERT_EQ(first.exit_code, 0) << first.output;
    EXPECT_NE(first.output.find("1 of 2 shares received"), std::string::npos) << first.output;
    auto still = user->request("GET", "/app/log/private?id=100");
    ASSERT_TRUE(still.ok());
    EXPECT_EQ(still->status, 503) << still->body;
    // The same member cannot count twice with another share, a member cannot submit a share
    // another member already gave, and a repeated submission changes nothing (field case
    // GOV-2).
    auto [again_status, again_body] = post_share(0, gov::recovery_share_to_text(*share1));
    EXPECT_EQ(again_status, 409) << again_body.dump();
    CommandResult m0_plain = run_coffer(
        {"member", "share", "--decrypt", "--service",
         "127.0.0.1:" + std::to_string(recovering_->port()), "--service-cert",
         recovering_->cert_path(), "--cert", members_[0].cert_path, "--key", members_[0].key_path,
         "--enc-key", dir_.path() + "/" + members_[0].name + "_enc_privk.pem"});
    ASSERT_EQ(m0_plain.exit_code, 0) << m0_plain.output;
    std::string share0_text = m0_plain.output.substr(0, m0_plain.output.find('\n'));
    auto [copied_status, copied_body] = post_share(2, share0_text);
    EXPECT_EQ(copied_status, 409) << copied_body.dump();
    EXPECT_NE(copied_body.dump().find("already received"), std::string::npos) << copied_body.dump();
    // A later second: an identical request within the same second is a replay (409).
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    CommandResult repeated = submit_share(0, old_cert_path);
    EXPECT_EQ(repeated.exit_code, 0) << repeated.output;
    EXPECT_NE(repeated.output.find("already counted"), std::string::npos) << repeated.output;
    EXPECT_EQ(recovering_->recovery().value("received", -1), 1);

    // The second member's share: the secrets come back and the node reopens.
    CommandResult second = submit_share(1, old_cert_path);
    ASSERT_EQ(second.exit_code, 0) << second.output;
    ASSERT_TRUE(recovering_->wait_open()) << recovering_->log();

    user = recovering_->connect(&network_.user(0));
    ASSERT_NE(user, nullptr);
    for (const Written& w : written) {
        auto r = user->request("GET", "/app/log/" + w.map + "?id=" + std::to_string(w.id));
        ASSERT_TRUE(r.ok());
        ASSERT_EQ(r->status, 200) << w.map << " " << w.id << ": " << r->body;
        EXPECT_EQ(json::parse(r->body).value("msg", ""), w.msg);
    }
    std::cout << "disaster recovery: " << written.size() << " of " << written.size()
              << " writes (before and after a rekey) read back after all 3 nodes were killed, "
              << "from node " << source << "'s ledger with 2 of 3 shares\n";
    auto after = user->request("POST", "/app/log/private",
                               json{{"id", 999}, {"msg", "after recovery"}}.dump(),
                               {{"x-coffer-wait-ms", "5000"}});
    ASSERT_TRUE(after.ok());
    EXPECT_EQ(after->status, 200) << after->body;

    // The recovered network grows again: a new node joins by trust proposal and replicates
    // the whole ledger, the lost network's entries included, and serves its private data.
    std::string joiner_dir = dir_.path() + "/joiner";
    std::filesystem::create_directories(joiner_dir);
    json joiner_config = {{"client_address", "127.0.0.1:0"},
                          {"node_address", "127.0.0.1:0"},
                          {"data_dir", joiner_dir + "/data"},
                          {"log_level", "info"},
                          {"join",
                           {{"target", "127.0.0.1:" + std::to_string(recovering_->port())},
                            {"service_cert_file", recovering_->cert_path()}}}};
    write_text_file(joiner_dir + "/config.json", joiner_config.dump(2));
    ClusterNode joiner(3, joiner_dir + "/config.json", joiner_dir + "/data",
                       joiner_dir + "/node.log", true);
    std::set<std::string> proposed;
    std::string trust_why;
    ASSERT_TRUE(joiner.start(why, kRecoveryStartMs,
                             [&] {
                                 trust_pending_nodes(recovering_->port(), recovering_->cert_pem(),
                                                     members_, proposed, trust_why);
                             }))
        << why << " " << trust_why << "\n"
        << joiner.log_tail();
    net::ClientOptions joiner_options;
    joiner_options.port = joiner.client_port();
    joiner_options.ca_cert_pem = recovering_->cert_pem();
    joiner_options.client_cert_pem = network_.user(0).cert_pem;
    joiner_options.client_key_pem = network_.user(0).key_pem;
    joiner_options.timeout_ms = 10000;
    auto on_joiner = net::HttpClient::connect(joiner_options);
    ASSERT_TRUE(on_joiner.ok()) << on_joiner.status().to_string();
    const Written& first_private = written.front();
    int joiner_status = 0;
    for (auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWriteWaitMs);
         joiner_status != 200 && std::chrono::steady_clock::now() < until;) {
        auto r =
            (*on_joiner)->request("GET", "/app/log/private?id=" + std::to_string(first_private.id));
        joiner_status = r.ok() ? r->status : 0;
        if (joiner_status == 200) {
            EXPECT_EQ(json::parse(r->body).value("msg", ""), first_private.msg);
        } else {
            std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
        }
    }
    EXPECT_EQ(joiner_status, 200) << joiner.log_tail();
    EXPECT_EQ(joiner.terminate(), 0);

    // The shares used are spent: a new share set covers the recovered secrets.
    std::string new_share_set = share_set_of(*recovering_, members_[0]);
    EXPECT_FALSE(new_share_set.empty());
    EXPECT_NE(new_share_set, old_share_set);
    // The folders given were only read.
    for (const std::string& folder : folders) {
        EXPECT_EQ(files_under(folder), folders_before[folder]) << folder;
    }
    uint64_t recovered_seqno = recovering_->recovery().value("recovered_seqno", uint64_t{0});
    EXPECT_GT(recovered_seqno, 0u);
    EXPECT_EQ(recovering_->terminate(), 0);

    // Anyone can verify the recovered ledger offline against the new service certificate:
    // the lost network's entries are signed by nodes the new identity did not endorse, which
    // the command finds in the service record (or is told with --recovered-seqno); under the
    // old certificate alone the entries after the recovery fail.
    std::string recovered_ledger = recovered_dir + "/data/ledger";
    CommandResult found = run_coffer(
        {"ledger", "verify", recovered_ledger, "--service-cert", recovering_->cert_path()});
    EXPECT_EQ(found.exit_code, 0) << found.output;
    EXPECT_NE(found.output.find("recovered_seqno " + std::to_string(recovered_seqno)),
              std::string::npos)
        << found.output;
    CommandResult old_only =
        run_coffer({"ledger", "verify", recovered_ledger, "--service-cert", old_cert_path});
    EXPECT_EQ(old_only.exit_code, 1) << old_only.output;
    CommandResult verified = run_coffer({"ledger", "verify", recovered_ledger, "--service-cert",
                                         recovering_->cert_path(), "--recovered-seqno",
                                         std::to_string(recovered_seqno)});
    EXPECT_EQ(verified.exit_code, 0) << verified.output;
    EXPECT_NE(verified.output.find("issued by the service"), std::string::npos) << verified.output;
}

// A recovered service is an ordinary one: with local sealing on it restarts from its own
// folder, and it can itself be recovered again, naming both earlier identities; the entries of
// all three identities stay readable.
TEST_F(RecoveryTest, RecoveredServiceRestartsAndIsRecoveredAgain) {
    NetworkOptions options;
    options.nodes = 1;
    std::string why;
    ASSERT_TRUE(network_.form(options, why)) << why;
    members_.push_back(network_.member());
    std::filesystem::copy_file(network_.dir() + "/" + members_[0].name + "_enc_privk.pem",
                               dir_.path() + "/" + members_[0].name + "_enc_privk.pem");
    std::string first_cert_path = network_.node(0).data_dir() + "/service_cert.pem";
    ASSERT_TRUE(pass_proposal(
        network_.node(0).client_port(), first_cert_path, members_,
        json::array({{{"name", "set_recovery_threshold"}, {"args", {{"threshold", 1}}}}}), why))
        << why;
    std::vector<Written> written;
    auto write = [&](net::HttpClient& c, int id, const std::string& msg) {
        auto r = c.request("POST", "/app/log/private", json{{"id", id}, {"msg", msg}}.dump(),
                           {{"x-coffer-wait-ms", "5000"}});
        ASSERT_TRUE(r.ok());
        ASSERT_EQ(r->status, 200) << r->body;
        written.push_back({"private", id, msg});
    };
    auto read_all = [&](net::HttpClient& c) {
        for (const Written& w : written) {
            auto r = c.request("GET", "/app/log/private?id=" + std::to_string(w.id));
            ASSERT_TRUE(r.ok());
            ASSERT_EQ(r->status, 200) << w.id << ": " << r->body;
            EXPECT_EQ(json::parse(r->body).value("msg", ""), w.msg);
        }
    };
    {
        auto c = network_.connect(0, &network_.user(0), 10000);
        ASSERT_TRUE(c.ok());
        write(**c, 1, "first service");
    }
    network_.node(0).kill_hard();

    // Recovers the service whose ledger is in `ledger_dir` into `name`/, with the one member's
    // share, and returns the folder.
    auto recover = [&](const std::string& name, const std::string& ledger_dir,
                       const std::string& previous_cert_path) -> std::string {
        std::string folder = dir_.path() + "/" + name;
        recovering_ = std::make_unique<RecoveringNode>(folder);
        recovering_->write_config();
        std::string failed;
        EXPECT_TRUE(recovering_->start({ledger_dir}, failed)) << failed;
        EXPECT_TRUE(pass_proposal(
            recovering_->port(), recovering_->cert_path(), members_,
            json::array({{{"name", "transition_service_to_open"}, {"args", json::object()}}}),
            failed))
            << failed;
        CommandResult share = submit_share(0, previous_cert_path);
        EXPECT_EQ(share.exit_code, 0) << share.output;
        EXPECT_TRUE(recovering_->wait_open()) << recovering_->log();
        return folder;
    };

    // A damaged copy of the ledger is refused, naming the entry, and the failed attempt
    // removes its copy, so that a recovery from good files can use the same folder.
    std::string damaged = dir_.path() + "/damaged";
    std::filesystem::copy(network_.node(0).data_dir() + "/ledger", damaged);
    std::vector<std::string> chunks = files_under(damaged);
    ASSERT_FALSE(chunks.empty());
    std::string bytes = read_text_file(chunks.front());
    ASSERT_GT(bytes.size(), 200u);
    bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x20);
    write_text_file(chunks.front(), bytes);
    std::string refused_dir = dir_.path() + "/refused";
    std::filesystem::create_directories(refused_dir);
    write_text_file(refused_dir + "/config.json",
                    make_config(refused_dir, members_[0], {}).dump(2));
    CommandResult refused = run_coffer(
        {"node", "recover", "--config", refused_dir + "/config.json", "--ledger", damaged}, 30000);
    EXPECT_EQ(refused.exit_code, 1) << refused.output;
    EXPECT_NE(refused.output.find("corrupt"), std::string::npos) << refused.output;
    EXPECT_NE(refused.output.find("seqno=1"), std::string::npos) << refused.output;
    EXPECT_TRUE(files_under(refused_dir + "/data/ledger").empty());
    CommandResult empty = run_coffer({"node", "recover", "--config", refused_dir + "/config.json",
                                      "--ledger", dir_.path() + "/no-such-folder"},
                                     30000);
    EXPECT_EQ(empty.exit_code, 1) << empty.output;
    // A data folder given instead of its ledger folder: the answer names the right one.
    CommandResult data_folder =
        run_coffer({"node", "recover", "--config", refused_dir + "/config.json", "--ledger",
                    network_.node(0).data_dir()},
                   30000);
    EXPECT_EQ(data_folder.exit_code, 1) << data_folder.output;
    EXPECT_NE(data_folder.output.find("did you mean " + network_.node(0).data_dir() + "/ledger"),
              std::string::npos)
        << data_folder.output;

    // A recovery that dies before any share arrived leaves its own entries after the lost
    // network's; a new recovery from that folder discards them and starts over (field case
    // GOV-2, run 5). Shares live in the recovering process's memory: members resubmit.
    {
        RecoveringNode failed_attempt(dir_.path() + "/attempt");
        failed_attempt.write_config();
        ASSERT_TRUE(failed_attempt.start({network_.node(0).data_dir() + "/ledger"}, why)) << why;
        EXPECT_EQ(failed_attempt.recovery().value("service_status", ""), "recovering");
    }  // SIGKILLed here
    std::string second = recover("second", dir_.path() + "/attempt/data/ledger", first_cert_path);
    EXPECT_NE(read_text_file(dir_.path() + "/second/node.log").find("recovery_attempt_discarded"),
              std::string::npos);
    ASSERT_FALSE(HasFailure());
    std::string second_cert_path = recovering_->cert_path();
    {
        auto c = recovering_->connect(&network_.user(0));
        ASSERT_NE(c, nullptr);
        write(*c, 2, "second service");
        read_all(*c);
    }
    // A clean stop, then an ordinary restart from the sealed secrets.
    ASSERT_EQ(recovering_->terminate(), 0);
    {
        NodeProcess restarted(second + "/config.json", second + "/data", second + "/restart.log");
        ASSERT_TRUE(restarted.start(why)) << why;
        auto c = connect_client(restarted, &network_.user(0));
        ASSERT_NE(c, nullptr);
        read_all(*c);
        write(*c, 3, "second service, restarted");
        restarted.kill_hard();
    }

    // The last chunk ends in a torn entry, as a crash in the middle of a write leaves it: the
    // recovery keeps every complete entry (field case LED-2).
    std::string open_chunk;
    for (const std::string& file : files_under(second + "/data/ledger")) {
        if (file.size() > 5 && file.compare(file.size() - 5, 5, ".open") == 0) {
            open_chunk = file;
        }
    }
    ASSERT_FALSE(open_chunk.empty());
    {
        std::ofstream torn(open_chunk, std::ios::binary | std::ios::app);
        // Fewer bytes than a frame header: the start of an entry whose write was cut.
        torn << std::string("\x40\x00\x00\x00\x01\x02\x03\x04\x05\x06", 10);
    }
    std::string third = recover("third", second + "/data/ledger", second_cert_path);
    EXPECT_NE(read_text_file(dir_.path() + "/third/node.log").find("torn"), std::string::npos);
    ASSERT_FALSE(HasFailure());
    json state = recovering_->recovery();
    json expected = json::array({fingerprint_of(read_text_file(first_cert_path)),
                                 fingerprint_of(read_text_file(second_cert_path))});
    EXPECT_EQ(state["previous_fingerprints"], expected) << state.dump();
    auto c = recovering_->connect(&network_.user(0));
    ASSERT_NE(c, nullptr);
    read_all(*c);
    EXPECT_EQ(recovering_->terminate(), 0);
}

}  // namespace
}  // namespace coffer::e2e
