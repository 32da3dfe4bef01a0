// rekey_ledger and set_signature_interval on a real three-node network (docs/ledger.md,
// "Rekey"; docs/governance.md): every node switches to the new secret at the same entry,
// private data written before and after reads back on followers, after a restart of every
// node and on a node that joins later; the recovery shares are issued again; the ledger
// signs at the interval governance set.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/network_fixture.h"

namespace coffer::e2e {
namespace {

using nlohmann::json;

constexpr int kWaitMs = 20000;
constexpr int kWritesPerPhase = 12;

// One entry of `coffer ledger show`: seqno, secret version, whether it is a signature, and
// the text of its block (its public writes).
struct ShownEntry {
    uint64_t seqno = 0;
    uint32_t secret_version = 0;
    bool signature = false;
    std::string block;
};

std::vector<ShownEntry> show_ledger(const std::string& data_dir) {
    CommandResult shown = run_coffer({"ledger", "show", data_dir + "/ledger"});
    EXPECT_EQ(shown.exit_code, 0) << shown.output.substr(0, 2000);
    std::vector<ShownEntry> out;
    const std::regex head(R"(^(\d+)\.(\d+)(  signature)?  .*secret v(\d+) .*)");
    std::istringstream lines(shown.output);
    std::string line;
    while (std::getline(lines, line)) {
        std::smatch m;
        if (std::regex_match(line, m, head)) {
            out.push_back(
                {std::stoull(m[2]), static_cast<uint32_t>(std::stoul(m[4])), m[3].matched, ""});
        } else if (!out.empty()) {
            out.back().block += line + "\n";
        }
    }
    return out;
}

// The seqno of the first entry that writes `map`, 0 if none.
uint64_t first_writing(const std::vector<ShownEntry>& entries, const std::string& map) {
    for (const ShownEntry& e : entries) {
        if (e.block.find(map) != std::string::npos) {
            return e.seqno;
        }
    }
    return 0;
}

// The longest run of non-signature entries after seqno `from`.
uint64_t longest_unsigned_run(const std::vector<ShownEntry>& entries, uint64_t from) {
    uint64_t longest = 0;
    uint64_t run = 0;
    for (const ShownEntry& e : entries) {
        if (e.seqno <= from) {
            continue;
        }
        run = e.signature ? 0 : run + 1;
        longest = std::max(longest, run);
    }
    return longest;
}

class RekeyTest : public ::testing::Test {
  protected:
    void SetUp() override {
        NetworkOptions options;
        // Signatures only by time, slowly and not pipelined: the entry count that governance
        // sets later is then the only thing that makes them frequent.
        options.extra_config = {{"signatures",
                                 {{"interval_entries", 1000},
                                  {"interval_ms", 200},
                                  {"when_previous_committed", false}}}};
        std::string why;
        ASSERT_TRUE(network_.form(options, why)) << why;
        cert_path_ = dir_.path() + "/service_cert.pem";
        write_text_file(cert_path_, network_.service_cert_pem());
    }

    void pass(const json& actions) {
        std::string why;
        auto id = pass_proposal(network_.node(0).client_port(), cert_path_, {network_.member()},
                                actions, why);
        ASSERT_TRUE(id.has_value()) << why << network_.log_tails();
    }

    // Writes ids [first, first + kWritesPerPhase) to /app/log/private; returns the last tx id.
    std::string write_private(int first) {
        std::string last;
        for (int id = first; id < first + kWritesPerPhase; ++id) {
            auto tx =
                write_following_redirects(network_, 0, network_.user(0), "/app/log/private",
                                          json{{"id", id}, {"msg", message(id)}}.dump(), kWaitMs);
            EXPECT_TRUE(tx.has_value()) << "write " << id;
            last = tx.value_or("");
        }
        return last;
    }

    static std::string message(int id) { return "private message " + std::to_string(id); }

    // Reads every id in `ids` from node i; retried until kWaitMs (a node may still catch up).
    void expect_reads(int i, const std::vector<int>& ids) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
        for (int id : ids) {
            std::string last;
            bool read = false;
            while (!read && std::chrono::steady_clock::now() < deadline) {
                auto c = network_.connect(i, &network_.user(0), 5000);
                auto r = c.ok() ? (*c)->request("GET", "/app/log/private?id=" + std::to_string(id))
                                : Result<net::HttpResponse>(c.status());
                last = r.ok() ? std::to_string(r->status) + " " + r->body : r.status().to_string();
                read = r.ok() && r->status == 200 &&
                       json::parse(r->body, nullptr, false).value("msg", "") == message(id);
                if (!read) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(100));
                }
            }
            EXPECT_TRUE(read) << "node " << i << " id " << id << ": " << last;
        }
    }

    std::string share_set() {
        auto c = network_.connect(0, &network_.member(), 5000);
        EXPECT_TRUE(c.ok());
        std::string fp = fingerprint_of(network_.member().cert_pem);
        auto r = (*c)->request("GET", "/gov/recovery_share?member=" + fp);
        EXPECT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().to_string());
        return json::parse(r->body, nullptr, false)["recovery"].value("share_set", "");
    }

    // Starts a node that joins after everything else happened, trusting it by proposal.
    void join_fourth(ClusterNode*& joiner) {
        std::string node_dir = dir_.path() + "/late";
        std::filesystem::create_directories(node_dir);
        json config = {{"client_address", "127.0.0.1:0"},
                       {"node_address", "127.0.0.1:0"},
                       {"data_dir", node_dir + "/data"},
                       {"join",
                        {{"target", "127.0.0.1:" + std::to_string(network_.node(0).client_port())},
                         {"service_cert_file", cert_path_}}}};
        write_text_file(node_dir + "/config.json", config.dump(2));
        late_ = std::make_unique<ClusterNode>(3, node_dir + "/config.json", node_dir + "/data",
                                              node_dir + "/node.log", true);
        std::set<std::string> proposed;
        std::string why;
        std::string trust_why;
        auto trust = [&] {
            trust_pending_nodes(network_.node(0).client_port(), network_.service_cert_pem(),
                                network_.member(), proposed, trust_why);
        };
        ASSERT_TRUE(late_->start(why, kWaitMs, trust)) << why << trust_why;
        joiner = late_.get();
    }

    TempDir dir_;
    Network network_{dir_.path()};
    std::string cert_path_;
    std::unique_ptr<ClusterNode> late_;
};

TEST_F(RekeyTest, EveryNodeSwitchesSecretAtTheRekeyAndReadsEverythingAfterRestartAndJoin) {
    pass(json::array({{{"name", "set_recovery_threshold"}, {"args", {{"threshold", 1}}}}}));
    std::string shares_before = share_set();
    write_private(100);
    pass(json::array({{{"name", "rekey_ledger"}}}));
    std::string last = write_private(200);
    ASSERT_TRUE(wait_tx_committed(network_, last, kWaitMs)) << network_.log_tails();
    // (e) The shares were issued again, now wrapping both secrets.
    EXPECT_NE(share_set(), shares_before);

    // (b) A follower reads what was written under either secret.
    std::vector<int> ids;
    for (int id = 100; id < 100 + kWritesPerPhase; ++id) {
        ids.push_back(id);
        ids.push_back(id + 100);
    }
    auto leader = network_.wait_leader(kWaitMs);
    ASSERT_TRUE(leader.has_value());
    expect_reads((leader->first + 1) % network_.size(), ids);

    // (c) Every node stops and starts again from its sealed secrets and its ledger.
    for (int i = 0; i < network_.size(); ++i) {
        network_.node(i).terminate();
    }
    for (int i = 0; i < network_.size(); ++i) {
        std::string why;
        ASSERT_TRUE(network_.restart(i, why)) << why;
    }
    ASSERT_TRUE(network_.wait_leader(kWaitMs).has_value()) << network_.log_tails();
    for (int i = 0; i < network_.size(); ++i) {
        expect_reads(i, ids);
        std::ifstream log(network_.node(i).log_path());
        std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
        EXPECT_NE(text.find("node.secrets_resealed"), std::string::npos) << "node " << i;
    }

    // (d) A node that joins now reads data from before and after the rekey.
    ClusterNode* joiner = nullptr;
    join_fourth(joiner);
    ASSERT_NE(joiner, nullptr);
    std::string tail = write_private(300);
    ASSERT_TRUE(wait_tx_committed(network_, tail, kWaitMs));
    for (int id = 300; id < 300 + kWritesPerPhase; ++id) {
        ids.push_back(id);
    }
    {
        auto c = net::HttpClient::connect([&] {
            net::ClientOptions o;
            o.host = "127.0.0.1";
            o.port = joiner->client_port();
            o.ca_cert_pem = network_.service_cert_pem();
            o.client_cert_pem = network_.user(0).cert_pem;
            o.client_key_pem = network_.user(0).key_pem;
            return o;
        }());
        ASSERT_TRUE(c.ok());
        for (int id : ids) {
            std::string last_answer;
            bool read = false;
            for (int attempt = 0; attempt < 200 && !read; ++attempt) {
                auto r = (*c)->request("GET", "/app/log/private?id=" + std::to_string(id));
                read = r.ok() && r->status == 200 &&
                       json::parse(r->body, nullptr, false).value("msg", "") == message(id);
                last_answer = r.ok() ? r->body : r.status().to_string();
                if (!read) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(100));
                }
            }
            EXPECT_TRUE(read) << "late node, id " << id << ": " << last_answer;
        }
    }

    // (a) On every node the entry carrying the update is the last under version 1.
    joiner->terminate();
    for (int i = 0; i < network_.size(); ++i) {
        network_.node(i).terminate();
    }
    std::vector<std::string> dirs;
    for (int i = 0; i < network_.size(); ++i) {
        dirs.push_back(network_.node(i).data_dir());
    }
    dirs.push_back(joiner->data_dir());
    for (const std::string& d : dirs) {
        std::vector<ShownEntry> entries = show_ledger(d);
        uint64_t rekey = first_writing(entries, "public:coffer.gov.ledger_secret_updates");
        ASSERT_GT(rekey, 0u) << d;
        size_t after = 0;
        for (const ShownEntry& e : entries) {
            EXPECT_EQ(e.secret_version, e.seqno <= rekey ? 1u : 2u) << d << " seqno " << e.seqno;
            after += e.seqno > rekey ? 1 : 0;
        }
        EXPECT_GT(after, static_cast<size_t>(3 * kWritesPerPhase)) << d;
    }
}

TEST_F(RekeyTest, LedgerSignsAtTheEntryIntervalGovernanceSets) {
    write_private(100);
    pass(json::array({{{"name", "set_signature_interval"},
                       {"args", {{"tx_count", 2}, {"interval_ms", 1000}}}}}));
    // Give every node's background step time to apply the settings.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::string last = write_private(200);
    ASSERT_TRUE(wait_tx_committed(network_, last, kWaitMs)) << network_.log_tails();
    for (int i = 0; i < network_.size(); ++i) {
        network_.node(i).terminate();
    }
    std::vector<ShownEntry> entries = show_ledger(network_.node(0).data_dir());
    uint64_t set_at = first_writing(entries, "public:coffer.gov.config");
    ASSERT_GT(set_at, 0u);
    // Before, only the 200 ms timer signed: the quick writes made longer unsigned runs.
    // After, the count signs long before the 1 s timer would.
    uint64_t before = 0;
    uint64_t run = 0;
    for (const ShownEntry& e : entries) {
        if (e.seqno < set_at) {
            run = e.signature ? 0 : run + 1;
            before = std::max(before, run);
        }
    }
    EXPECT_GT(before, 2u);
    // After (leaving the settings' own entry and the one after it, written before every node
    // applied them), a signature follows every second entry.
    EXPECT_LE(longest_unsigned_run(entries, set_at + 2), 2u);
    size_t signatures = 0;
    for (const ShownEntry& e : entries) {
        signatures += e.seqno > set_at && e.signature ? 1 : 0;
    }
    EXPECT_GE(signatures, static_cast<size_t>(kWritesPerPhase / 2));
}

}  // namespace
}  // namespace coffer::e2e
