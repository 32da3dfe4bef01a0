// Tests of the `coffer` command as a user runs it: a real process, real files.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/tests/cli_test_util.h"
#include "net/client.h"

namespace {

namespace fs = std::filesystem;
using namespace coffer::cli_test;

class CliTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char pattern[] = "/tmp/coffer-cli-test-XXXXXX";
        ASSERT_NE(mkdtemp(pattern), nullptr);
        dir_ = pattern;
    }
    void TearDown() override { fs::remove_all(dir_); }

    // A small sample ledger with signatures every 10 entries.
    void make_sample(int transactions) {
        RunResult r = run("ledger sample --out " + dir_ + "/s --transactions " +
                          std::to_string(transactions) + " --signature-interval 10");
        ASSERT_EQ(r.exit_code, 0) << r.output;
    }

    std::string dir_;
};

TEST_F(CliTest, SampleLedgerVerifiesAndItsReceiptVerifies) {
    make_sample(120);
    RunResult v =
        run("ledger verify " + dir_ + "/s/ledger --service-cert " + dir_ + "/s/service_cert.pem");
    EXPECT_EQ(v.exit_code, 0) << v.output;
    EXPECT_NE(v.output.find("ledger ok: "), std::string::npos) << v.output;
    EXPECT_NE(v.output.find("node certificates issued by the service"), std::string::npos);

    RunResult r = run("receipt verify " + dir_ + "/s/receipt.json --service-cert " + dir_ +
                      "/s/service_cert.pem");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("receipt verified"), std::string::npos) << r.output;
}

TEST_F(CliTest, ReceiptAgainstAnotherServiceIsRejected) {
    make_sample(30);
    RunResult other = run("ledger sample --out " + dir_ + "/t --transactions 5");
    ASSERT_EQ(other.exit_code, 0) << other.output;
    RunResult r = run("receipt verify " + dir_ + "/s/receipt.json --service-cert " + dir_ +
                      "/t/service_cert.pem");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("receipt rejected"), std::string::npos) << r.output;
}

// The frame start offset of every entry of every chunk, from `coffer ledger show`.
std::map<std::string, std::map<uint64_t, uint64_t>> entry_offsets(const std::string& ledger) {
    RunResult show = run("ledger show " + ledger);
    std::map<std::string, std::map<uint64_t, uint64_t>> out;  // file -> offset -> seqno
    std::regex line(R"(^\d+\.(\d+)(?:  signature)?  (\S+)@(\d+) )");
    std::istringstream in(show.output);
    std::string text;
    while (std::getline(in, text)) {
        std::smatch m;
        if (std::regex_search(text, m, line)) {
            out[fs::path(m[2].str()).filename().string()][std::stoull(m[3].str())] =
                std::stoull(m[1].str());
        }
    }
    return out;
}

TEST_F(CliTest, FlippedByteAnywhereIsFoundAndTheRightEntryNamed) {
    make_sample(40);
    std::string ledger = dir_ + "/s/ledger";
    auto offsets = entry_offsets(ledger);
    ASSERT_FALSE(offsets.empty());

    int checked = 0;
    for (const auto& [file, starts] : offsets) {
        uint64_t size = fs::file_size(ledger + "/" + file);
        // Every 23rd byte: covers chunk headers, frame headers, public and private parts,
        // signature entries and checksums of a 40-transaction ledger.
        for (uint64_t at = 0; at < size; at += 23) {
            fs::remove_all(dir_ + "/copy");
            fs::copy(ledger, dir_ + "/copy");
            {
                std::fstream f(dir_ + "/copy/" + file,
                               std::ios::in | std::ios::out | std::ios::binary);
                f.seekg(static_cast<std::streamoff>(at));
                char c = 0;
                f.get(c);
                f.seekp(static_cast<std::streamoff>(at));
                f.put(static_cast<char>(c ^ 0x20));
            }
            auto it = starts.upper_bound(at);
            uint64_t expected =
                it == starts.begin() ? starts.begin()->second : std::prev(it)->second;
            RunResult v = run("ledger verify " + dir_ + "/copy");
            ASSERT_EQ(v.exit_code, 1) << "flip at " << file << "@" << at << ": " << v.output;
            EXPECT_NE(v.output.find("seqno=" + std::to_string(expected) + " "), std::string::npos)
                << "flip at " << file << "@" << at << " should name seqno " << expected << ": "
                << v.output;
            ++checked;
        }
    }
    EXPECT_GT(checked, 100);
}

TEST_F(CliTest, PathsThatAreNotLedgersAreRefusedWithUsageExitCode) {
    EXPECT_EQ(run("ledger verify " + dir_).exit_code, 2);
    EXPECT_EQ(run("ledger verify " + dir_ + "/missing").exit_code, 2);
    EXPECT_EQ(run("ledger show " + dir_ + "/missing").exit_code, 2);
    EXPECT_EQ(run("receipt verify " + dir_ + "/missing.json --service-cert x").exit_code, 2);
    EXPECT_EQ(run("ledger nonsense").exit_code, 2);
}

TEST_F(CliTest, ShowPrintsPublicWritesAndOnlyTheSizeOfPrivateParts) {
    make_sample(12);
    RunResult show = run("ledger show " + dir_ + "/s/ledger --limit 2");
    EXPECT_EQ(show.exit_code, 0) << show.output;
    EXPECT_NE(show.output.find("public note 1"), std::string::npos) << show.output;
    EXPECT_EQ(show.output.find("private payload"), std::string::npos) << show.output;
    EXPECT_NE(show.output.find("bytes (encrypted)"), std::string::npos) << show.output;
}

// --- coffer sandbox ---

bool process_gone(int64_t pid) {
    auto deadline = SteadyClock::now() + std::chrono::seconds(2);
    while (kill(static_cast<pid_t>(pid), 0) == 0 && SteadyClock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

uint16_t port_of(const std::string& address) {
    return static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
}

coffer::net::ClientOptions client_options(const nlohmann::json& info, const std::string& address,
                                          bool as_user) {
    coffer::net::ClientOptions o;
    o.port = port_of(address);
    o.ca_cert_pem = slurp(info["service_cert"].get<std::string>());
    if (as_user) {
        o.client_cert_pem = slurp(info["user_cert"].get<std::string>());
        o.client_key_pem = slurp(info["user_key"].get<std::string>());
    }
    return o;
}

// POSTs a message as user0 to `address` and reads it back there. Reads show committed state
// by default, so the read is repeated (bounded) until the write has committed.
void expect_user_write_and_read(const nlohmann::json& info, const std::string& address) {
    constexpr int kMaxReadAttempts = 100;
    auto client = coffer::net::HttpClient::connect(client_options(info, address, true));
    ASSERT_TRUE(client.ok()) << client.status().to_string();
    auto written = (*client)->request("POST", "/app/log/private",
                                      R"({"id": 7, "msg": "hello from the sandbox test"})",
                                      {{"content-type", "application/json"}});
    ASSERT_TRUE(written.ok()) << written.status().to_string();
    EXPECT_EQ(written->status, 200) << written->body;
    coffer::Result<coffer::net::HttpResponse> read = coffer::error(coffer::Errc::kNotFound, "");
    for (int i = 0; i < kMaxReadAttempts; ++i) {
        read = (*client)->request("GET", "/app/log/private?id=7");
        ASSERT_TRUE(read.ok()) << read.status().to_string();
        if (read->status != 404) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(read->status, 200) << read->body;
    EXPECT_NE(read->body.find("hello from the sandbox test"), std::string::npos) << read->body;
}

// The roles the nodes of a sandbox report on GET /node/state, by client address.
std::map<std::string, std::string> roles(const nlohmann::json& info) {
    std::map<std::string, std::string> out;
    for (const auto& n : info["nodes"]) {
        std::string address = n["client_address"].get<std::string>();
        auto client = coffer::net::HttpClient::connect(client_options(info, address, false));
        auto state = client.ok() ? (*client)->request("GET", "/node/state")
                                 : coffer::Result<coffer::net::HttpResponse>(client.status());
        auto body = state.ok() ? nlohmann::json::parse(state->body, nullptr, false) : nullptr;
        out[address] = body.is_object() ? body.value("role", "") : "unreachable";
    }
    return out;
}

TEST_F(CliTest, SandboxOfOneNodeServesItsUserAndStopsItsNodeOnSigterm) {
    std::string dir = dir_ + "/sandbox";
    SandboxRun sandbox(dir, {"--nodes", "1"});
    nlohmann::json info = sandbox.wait_ready();
    ASSERT_TRUE(info.is_object()) << sandbox.output();
    ASSERT_EQ(info["nodes"].size(), 1u) << info.dump();
    EXPECT_EQ(info["nodes"][0]["node_id"].get<std::string>().size(), 64u) << info.dump();
    int64_t node_pid = info["nodes"][0]["pid"].get<int64_t>();
    EXPECT_EQ(kill(static_cast<pid_t>(node_pid), 0), 0);

    expect_user_write_and_read(info, info["nodes"][0]["client_address"].get<std::string>());
    RunResult second = run("sandbox --nodes 1 --dir " + dir);
    EXPECT_EQ(second.exit_code, 1) << second.output;
    EXPECT_NE(second.output.find("running sandbox"), std::string::npos) << second.output;

    EXPECT_EQ(sandbox.stop(), 0) << sandbox.output();
    EXPECT_TRUE(process_gone(node_pid)) << "node pid " << node_pid << " still exists";
    EXPECT_FALSE(fs::exists(dir + "/sandbox.json"));
    EXPECT_NE(sandbox.output().find("sandbox stopped"), std::string::npos) << sandbox.output();
}

TEST_F(CliTest, SandboxRefusesAFolderHoldingOtherFiles) {
    std::string dir = dir_ + "/mine";
    fs::create_directories(dir);
    std::ofstream(dir + "/notes.txt") << "keep me";
    RunResult r = run("sandbox --nodes 1 --dir " + dir);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("notes.txt"), std::string::npos) << r.output;
    EXPECT_EQ(slurp(dir + "/notes.txt"), "keep me");
    EXPECT_FALSE(fs::exists(dir + "/identities"));
}

TEST_F(CliTest, SandboxOfThreeNodesHasOneLeaderAndServesWrites) {
    std::string dir = dir_ + "/sandbox3";
    SandboxRun sandbox(dir, {"--nodes", "3"});
    nlohmann::json info = sandbox.wait_ready();
    ASSERT_TRUE(info.is_object()) << sandbox.output();
    ASSERT_EQ(info["nodes"].size(), 3u) << info.dump();
    std::set<std::string> ids;
    for (const auto& n : info["nodes"]) {
        ids.insert(n["node_id"].get<std::string>());
    }
    EXPECT_EQ(ids.size(), 3u) << info.dump();

    std::string leader;
    int leaders = 0;
    for (const auto& [address, role] : roles(info)) {
        leaders += role == "leader" ? 1 : 0;
        leader = role == "leader" ? address : leader;
    }
    ASSERT_EQ(leaders, 1) << info.dump();
    expect_user_write_and_read(info, leader);

    EXPECT_EQ(sandbox.stop(), 0) << sandbox.output();
    for (const auto& n : info["nodes"]) {
        EXPECT_TRUE(process_gone(n["pid"].get<int64_t>())) << n.dump();
    }
}

}  // namespace
