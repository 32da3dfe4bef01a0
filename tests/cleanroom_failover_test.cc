// The clean room across a leader failover: three node processes, data uploaded and approved
// through the first leader, which is then killed; the new leader opens the stored rows with
// the replicated clean-room key, runs the analysis and seals results that decrypt to the
// engine's output on the plaintext.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "cleanroom/analysis.h"
#include "crypto/hpke.h"
#include "crypto/sha256.h"
#include "crypto/x25519.h"
#include "tests/cleanroom_test_util.h"
#include "tests/network_fixture.h"

namespace coffer::e2e {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kNodes = 3;
constexpr int kPollMs = 50;
constexpr int kLeaderTimeoutMs = 20000;

constexpr const char* kDecl =
    R"({"name": "accounts", "columns": [{"name": "account", "type": "int"},)"
    R"( {"name": "balance", "type": "decimal"}, {"name": "note", "type": "string"}],)"
    R"( "entity_columns": ["account"], "joinable_columns": [], "output_columns": []})";
constexpr const char* kRows =
    "account,balance,note\n1,10,private-one\n2,20.5,private-two\n3,30,private-three\n";
constexpr const char* kAnalysis =
    R"({"version": 1, "kind": "sql",)"
    R"( "query": "SELECT count(*) AS n, sum(balance) AS total FROM accounts",)"
    R"( "datasets": [{"name": "accounts", "columns": ["balance"]}],)"
    R"( "output_policy": {"columns": ["n", "total"]},)"
    R"( "recipients": ["bank_a"], "triggers": ["bank_a"]})";

class CleanroomFailoverTest : public ::testing::Test {
  protected:
    void TearDown() override {
        for (auto& n : nodes_) {
            if (n->running()) {
                n->kill_hard();
            }
        }
    }

    std::unique_ptr<net::HttpClient> connect(int i, const Identity* who) {
        net::ClientOptions options;
        options.host = "127.0.0.1";
        options.port = nodes_[static_cast<size_t>(i)]->client_port();
        options.ca_cert_pem = service_cert_pem_;
        options.timeout_ms = kStatePollTimeoutMs * 10;
        if (who != nullptr) {
            options.client_cert_pem = who->cert_pem;
            options.client_key_pem = who->key_pem;
        }
        auto client = net::HttpClient::connect(options);
        return client.ok() ? std::move(client).value() : nullptr;
    }

    json state(int i) {
        auto c = connect(i, nullptr);
        if (c == nullptr) {
            return json();
        }
        auto r = c->request("GET", "/node/state");
        return r.ok() && r->status == 200 ? json::parse(r->body, nullptr, false) : json();
    }

    // The index of a running node that reports itself leader, or -1 on timeout.
    int wait_leader(int exclude) {
        for (auto end = Clock::now() + std::chrono::milliseconds(kLeaderTimeoutMs);
             Clock::now() < end;) {
            for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) {
                if (i != exclude && nodes_[static_cast<size_t>(i)]->running() &&
                    state(i).value("role", "") == "leader") {
                    return i;
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
        }
        return -1;
    }

    // Node i lists `voters` voters and has committed at least `seqno`.
    bool wait_state(int i, size_t voters, uint64_t seqno) {
        for (auto end = Clock::now() + std::chrono::milliseconds(kJoinTimeoutMs);
             Clock::now() < end;) {
            json s = state(i);
            if (s.is_object() && s["voters"].size() >= voters &&
                s.value("committed_seqno", uint64_t{0}) >= seqno) {
                return true;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
        }
        return false;
    }

    void form() {
        const std::string& d = dir_.path();
        member_ = keygen(d, "member0");
        bank_a_ = keygen(d, "bank_a");
        ASSERT_FALSE(bank_a_.cert_pem.empty());
        for (int i = 0; i < kNodes; ++i) {
            std::string node_dir = d + "/n" + std::to_string(i);
            std::filesystem::create_directories(node_dir);
            json config;
            if (i == 0) {
                config = make_config(node_dir, member_, {});
                config["users"] = {{{"certificate", bank_a_.cert_path},
                                    {"encryption_public_key", bank_a_.enc_pub_path}}};
            } else {
                config = {{"client_address", "127.0.0.1:0"},
                          {"node_address", "127.0.0.1:0"},
                          {"data_dir", node_dir + "/data"},
                          {"signatures", {{"interval_entries", 100}, {"interval_ms", 20}}},
                          {"join",
                           {{"target", "127.0.0.1:" + std::to_string(nodes_[0]->client_port())},
                            {"service_cert_file", d + "/n0/data/service_cert.pem"}}}};
            }
            std::string config_path = node_dir + "/config.json";
            write_text_file(config_path, config.dump(2));
            nodes_.push_back(std::make_unique<ClusterNode>(i, config_path, node_dir + "/data",
                                                           node_dir + "/node.log", i > 0));
            std::string why;
            std::set<std::string> proposed;
            std::string trust_why;
            auto trust = [&] {
                if (i > 0) {
                    trust_pending_nodes(nodes_[0]->client_port(), service_cert_pem_, member_,
                                        proposed, trust_why);
                }
            };
            ASSERT_TRUE(nodes_.back()->start(why, kJoinTimeoutMs, trust)) << why << trust_why;
            if (i == 0) {
                service_cert_pem_ = nodes_[0]->service_cert_pem();
                ASSERT_EQ(wait_leader(-1), 0);
                ASSERT_TRUE(
                    open_service(nodes_[0]->client_port(), service_cert_pem_, {member_}, why))
                    << why;
            } else {
                uint64_t seqno = state(0).value("committed_seqno", uint64_t{0});
                ASSERT_TRUE(wait_state(0, static_cast<size_t>(i) + 1, 0));
                ASSERT_TRUE(wait_state(i, static_cast<size_t>(i) + 1, seqno));
            }
        }
    }

    // POST as bank_a to node i, waiting for the commit; the parsed answer.
    std::pair<int, json> post(int i, const std::string& target, const std::string& body) {
        auto c = connect(i, &bank_a_);
        if (c == nullptr) {
            return {0, json()};
        }
        auto r = c->request("POST", target, body, {{"x-coffer-wait-ms", "5000"}});
        if (!r.ok()) {
            return {0, json()};
        }
        return {r->status, json::parse(r->body, nullptr, false)};
    }

    // bank_a's result of `run_id`, fetched from node i (once it has it) and opened with its
    // private key; "" (with a test failure) when it cannot be.
    std::string open_result_on(int i, const std::string& run_id) {
        auto c = connect(i, &bank_a_);
        if (c == nullptr) {
            ADD_FAILURE() << "cannot connect to node " << i;
            return "";
        }
        auto fetched = c->request("GET", "/app/cleanroom/results?run=" + run_id);
        for (auto end = Clock::now() + std::chrono::milliseconds(kLeaderTimeoutMs);
             Clock::now() < end && fetched.ok() && fetched->status != 200;) {
            std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
            fetched = c->request("GET", "/app/cleanroom/results?run=" + run_id);
        }
        if (!fetched.ok() || fetched->status != 200) {
            ADD_FAILURE() << "no result: " << (fetched.ok() ? fetched->body : "no answer");
            return "";
        }
        json result = json::parse(fetched->body);
        auto private_key =
            crypto::x25519_private_from_pem(read_text_file(dir_.path() + "/bank_a_enc_privk.pem"));
        auto enc = from_hex(result.value("enc", ""));
        auto ciphertext = from_hex(result.value("ciphertext", ""));
        if (!private_key.ok() || !enc.ok() || !ciphertext.ok()) {
            ADD_FAILURE() << "unusable key or result";
            return "";
        }
        auto plaintext = crypto::hpke_open(crypto::HpkeSuite{}, private_key->private_key, *enc,
                                           as_bytes("coffer-cleanroom-result-v1"),
                                           as_bytes(run_id + "/bank_a"), *ciphertext);
        EXPECT_TRUE(plaintext.ok()) << plaintext.status().to_string();
        return plaintext.ok() ? to_string(*plaintext) : "";
    }

    TempDir dir_;
    Identity member_;
    Identity bank_a_;
    std::string service_cert_pem_;
    std::vector<std::unique_ptr<ClusterNode>> nodes_;
};

TEST_F(CleanroomFailoverTest, NewLeaderRunsOnRowsUploadedThroughTheOldOne) {
    form();
    ASSERT_FALSE(HasFatalFailure());
    auto key_answer = connect(0, nullptr)->request("GET", "/app/cleanroom/key");
    ASSERT_TRUE(key_answer.ok());
    std::string public_hex = json::parse(key_answer->body)["public_key"];
    Bytes public_key = from_hex(public_hex).value();

    ASSERT_EQ(post(0, "/app/cleanroom/datasets", kDecl).first, 200);
    auto [started, upload] = post(0, "/app/cleanroom/uploads?dataset=accounts", "");
    ASSERT_EQ(started, 200);
    std::string id = upload["upload_id"];
    auto sealed =
        crypto::hpke_seal(crypto::HpkeSuite{}, public_key, as_bytes("coffer-cleanroom-upload-v1"),
                          as_bytes(id + "/0"), as_bytes(kRows));
    ASSERT_TRUE(sealed.ok());
    Bytes chunk = sealed->enc;
    put_bytes(chunk, sealed->ciphertext);
    ASSERT_EQ(
        post(0, "/app/cleanroom/uploads/chunk?upload=" + id + "&index=0", to_string(chunk)).first,
        200);
    json commit = {{"chunks", 1}, {"sha256", to_hex(crypto::sha256(as_bytes(kRows)))}};
    ASSERT_EQ(post(0, "/app/cleanroom/uploads/commit?upload=" + id, commit.dump()).first, 200);
    auto [proposed, analysis] = post(0, "/app/cleanroom/analyses", kAnalysis);
    ASSERT_EQ(proposed, 200);
    std::string analysis_id = analysis["id"];
    ASSERT_EQ(post(0, "/app/cleanroom/approvals?analysis=" + analysis_id, "{}").first, 200);
    uint64_t committed = state(0).value("committed_seqno", uint64_t{0});
    for (int i = 1; i < kNodes; ++i) {
        ASSERT_TRUE(wait_state(i, kNodes, committed)) << nodes_[1]->log_tail();
    }

    nodes_[0]->kill_hard();
    int leader = wait_leader(0);
    ASSERT_GT(leader, 0) << nodes_[1]->log_tail() << nodes_[2]->log_tail();
    auto republished = connect(leader, nullptr)->request("GET", "/app/cleanroom/key");
    ASSERT_TRUE(republished.ok());
    EXPECT_EQ(json::parse(republished->body)["public_key"], public_hex);

    std::pair<int, json> run;
    for (auto end = Clock::now() + std::chrono::milliseconds(kLeaderTimeoutMs);
         Clock::now() < end && run.first != 200;) {
        run = post(leader, "/app/cleanroom/runs?analysis=" + analysis_id, "");
        if (run.first != 200) {
            // The new leader may still be committing its first signature: retry shortly.
            std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs * 4));
        }
    }
    ASSERT_EQ(run.first, 200) << run.second.dump();
    std::string run_id = run.second["run_id"];
    std::string plaintext = open_result_on(leader, run_id);
    ASSERT_FALSE(plaintext.empty());

    auto doc = cleanroom::parse_analysis(kAnalysis);
    ASSERT_TRUE(doc.ok());
    std::map<std::string, cleanroom::Table> tables;
    tables["accounts"] = table_of(kDecl, "bank_a", {kRows});
    cleanroom::RunOptions options;
    options.caller = "bank_a";
    auto expected = cleanroom::run_analysis(*doc, tables, options);
    ASSERT_TRUE(expected.ok());
    EXPECT_EQ(plaintext, expected->outputs.at("bank_a").json);
    EXPECT_EQ(json::parse(plaintext)["rows"], json::parse("[[3, 60.5]]"));
}

}  // namespace
}  // namespace coffer::e2e
