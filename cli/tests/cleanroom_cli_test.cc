// End-to-end tests of `coffer cleanroom`: the real coffer binary against a real sandbox of
// node processes on loopback, with parties made by `coffer sandbox --users`.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
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
using nlohmann::json;
using namespace coffer::cli_test;

constexpr int kAccounts = 6;
constexpr int kRowsPerAccount = 5;

void write(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
}

// The sandbox.json entry of the node whose GET /node/state reports `role`, or null.
json node_with_role(const json& info, const std::string& role) {
    for (const auto& n : info["nodes"]) {
        std::string address = n["client_address"].get<std::string>();
        coffer::net::ClientOptions o;
        o.port = static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
        o.ca_cert_pem = slurp(info["service_cert"].get<std::string>());
        auto client = coffer::net::HttpClient::connect(o);
        auto state = client.ok() ? (*client)->request("GET", "/node/state")
                                 : coffer::Result<coffer::net::HttpResponse>(client.status());
        auto body = state.ok() ? json::parse(state->body, nullptr, false) : json();
        if (body.is_object() && body.value("role", "") == role) {
            return n;
        }
    }
    return nullptr;
}

// The client address of a follower, or "" if none.
std::string follower_address(const json& info) {
    json n = node_with_role(info, "follower");
    return n.is_object() ? n["client_address"].get<std::string>() : "";
}

// The pid of the leader, or -1.
pid_t leader_pid(const json& info) {
    json n = node_with_role(info, "leader");
    return n.is_object() ? static_cast<pid_t>(n["pid"].get<int64_t>()) : -1;
}

// The first match of `pattern`'s group 1 in `text`, or "".
std::string find(const std::string& text, const std::string& pattern) {
    std::smatch m;
    return std::regex_search(text, m, std::regex(pattern)) ? m[1].str() : "";
}

class CleanroomCli : public ::testing::Test {
  protected:
    void SetUp() override {
        char pattern[] = "/tmp/coffer-cleanroom-cli-XXXXXX";
        ASSERT_NE(mkdtemp(pattern), nullptr);
        dir_ = pattern;
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string dir_;
};

TEST_F(CleanroomCli, BadUsageAndUnreadableInputExitTwo) {
    EXPECT_EQ(run("cleanroom datasets").exit_code, 2);
    EXPECT_EQ(run("cleanroom key --service 127.0.0.1 --service-cert x.pem").exit_code, 2);
    RunResult no_sandbox = run("cleanroom datasets --sandbox " + dir_ + "/none --as bank_0");
    EXPECT_EQ(no_sandbox.exit_code, 2) << no_sandbox.output;
    EXPECT_NE(no_sandbox.output.find("sandbox.json"), std::string::npos) << no_sandbox.output;
    EXPECT_EQ(run("cleanroom decrypt --in " + dir_ + "/missing.json --enc-key x").exit_code, 2);
    EXPECT_EQ(run("cleanroom upload --dataset d").exit_code, 2);
    EXPECT_EQ(run("cleanroom fetch --run run-0000000001 --service 127.0.0.1:1 --service-cert "
                  "x.pem")
                  .exit_code,
              2);
}

TEST_F(CleanroomCli, SandboxRefusesBadOrRepeatedUserNames) {
    for (const char* users : {"bank_0,bank_0", "member0", "user0", "../x", "a b"}) {
        RunResult r = run("sandbox --nodes 1 --dir " + dir_ + "/s --users '" + users + "'");
        EXPECT_EQ(r.exit_code, 2) << users << ": " << r.output;
        EXPECT_FALSE(fs::exists(dir_ + "/s/identities")) << users;
    }
    RunResult none = run("sandbox --nodes 1 --dir " + dir_ + "/s --no-user0");
    EXPECT_EQ(none.exit_code, 2) << none.output;
}

// The dataset of bank_0: kAccounts accounts with kRowsPerAccount transfers each, every one to
// another counterparty.
std::string bank_csv() {
    std::string csv = "account,counterparty,amount\n";
    for (int a = 0; a < kAccounts; ++a) {
        for (int i = 0; i < kRowsPerAccount; ++i) {
            csv += "acct" + std::to_string(a) + ",cp" + std::to_string(a * 10 + i) + "," +
                   std::to_string(100 + a * 7 + i) + ".25\n";
        }
    }
    return csv;
}

const char* kSchema =
    R"({"name": "bank_0_tx",
        "columns": [{"name": "account", "type": "string"},
                    {"name": "counterparty", "type": "string"},
                    {"name": "amount", "type": "decimal"}],
        "entity_columns": ["account"], "joinable_columns": ["account"],
        "output_columns": ["account"]})";

// Adjacent literals: the query is one JSON string, longer than a line.
const char* kAnalysis =
    R"({"version": 1, "kind": "sql",
 "query": "SELECT account, count(*) AS total, count(DISTINCT counterparty) AS _entities )"
    R"(FROM bank_0_tx GROUP BY account ORDER BY account",
 "datasets": [{"name": "bank_0_tx", "columns": ["account", "counterparty"]}],
 "output_policy": {"columns": ["account", "total", "_entities"], "min_entities": 2},
 "recipients": ["bank_0", "bank_1"], "triggers": ["bank_1"]}
)";

TEST_F(CleanroomCli, PartiesDeclareUploadProposeApproveRunAndReadTheirResults) {
    std::string sb = dir_ + "/sb";
    SandboxRun sandbox(sb, {"--nodes", "3", "--users", "bank_0,bank_1"});
    json info = sandbox.wait_ready();
    ASSERT_TRUE(info.is_object()) << sandbox.output();
    ASSERT_EQ(info["users"].size(), 3u) << info.dump();
    EXPECT_EQ(info["users"][2]["name"], "bank_1");
    std::string as0 = " --sandbox " + sb + " --as bank_0";
    std::string as1 = " --sandbox " + sb + " --as bank_1";

    RunResult key = run("cleanroom key" + as0);
    ASSERT_EQ(key.exit_code, 0) << key.output;
    EXPECT_NE(key.output.find("clean-room key "), std::string::npos) << key.output;
    EXPECT_GE(std::count(key.output.begin(), key.output.end(), '\n'), 3) << key.output;
    RunResult wrong_measurement =
        run("cleanroom key --expect-measurement " + std::string(64, '0') + as0);
    EXPECT_EQ(wrong_measurement.exit_code, 1) << wrong_measurement.output;
    RunResult wrong_pin =
        run("cleanroom key" + as0 + " --service-cert " + sb + "/identities/bank_0_cert.pem");
    EXPECT_EQ(wrong_pin.exit_code, 1) << wrong_pin.output;

    write(dir_ + "/schema.json", kSchema);
    RunResult declared = run("cleanroom declare --schema " + dir_ + "/schema.json" + as0);
    ASSERT_EQ(declared.exit_code, 0) << declared.output;
    RunResult again = run("cleanroom declare --schema " + dir_ + "/schema.json" + as1);
    EXPECT_EQ(again.exit_code, 1) << again.output;

    std::string bad = bank_csv();
    bad.replace(bad.find(".25\n", bad.find("acct1,cp12")), 3, "x25");  // line 9
    write(dir_ + "/bad.csv", bad);
    RunResult refused =
        run("cleanroom upload --dataset bank_0_tx --csv " + dir_ + "/bad.csv" + as0);
    EXPECT_EQ(refused.exit_code, 1) << refused.output;
    EXPECT_NE(refused.output.find("line 9"), std::string::npos) << refused.output;

    write(dir_ + "/bank.csv", bank_csv());
    RunResult uploaded = run("cleanroom upload --dataset bank_0_tx --chunk-bytes 200 --csv " +
                             dir_ + "/bank.csv" + as0);
    ASSERT_EQ(uploaded.exit_code, 0) << uploaded.output;
    EXPECT_NE(uploaded.output.find(std::to_string(kAccounts * kRowsPerAccount) + " rows"),
              std::string::npos)
        << uploaded.output;
    EXPECT_NE(uploaded.output.find("upload: 100%"), std::string::npos) << uploaded.output;
    RunResult not_owner =
        run("cleanroom upload --dataset bank_0_tx --csv " + dir_ + "/bank.csv" + as1);
    EXPECT_EQ(not_owner.exit_code, 1) << not_owner.output;

    RunResult datasets = run("cleanroom datasets" + as1);
    EXPECT_EQ(datasets.exit_code, 0) << datasets.output;
    EXPECT_NE(datasets.output.find("bank_0_tx"), std::string::npos) << datasets.output;
    EXPECT_EQ(datasets.output.find("cp13"), std::string::npos) << datasets.output;

    write(dir_ + "/analysis.json", kAnalysis);
    RunResult proposed = run("cleanroom propose --analysis " + dir_ + "/analysis.json" + as1);
    ASSERT_EQ(proposed.exit_code, 0) << proposed.output;
    std::string id = find(proposed.output, "analysis id ([0-9a-f]{64})");
    ASSERT_EQ(id.size(), 64u) << proposed.output;

    RunResult early = run("cleanroom run --analysis " + id + as1);
    EXPECT_EQ(early.exit_code, 1) << early.output;
    EXPECT_NE(early.output.find("bank_0"), std::string::npos) << early.output;

    // bank_0 approves through a follower with explicit options: the write follows the 307.
    std::string follower = follower_address(info);
    ASSERT_FALSE(follower.empty()) << info.dump();
    std::string explicit0 = " --service " + follower + " --service-cert " +
                            info["service_cert"].get<std::string>() + " --cert " + sb +
                            "/identities/bank_0_cert.pem --key " + sb +
                            "/identities/bank_0_privk.pem";
    RunResult approved = run("cleanroom approve --analysis " + id + explicit0);
    ASSERT_EQ(approved.exit_code, 0) << approved.output;
    // Reads through the follower are sent on to the leader, which has the approval.
    RunResult via_follower = run("cleanroom analyses" + explicit0);
    EXPECT_NE(via_follower.output.find("\"status\":\"approved\""), std::string::npos)
        << via_follower.output;
    RunResult listed = run("cleanroom analyses" + as0);
    EXPECT_NE(listed.output.find(id), std::string::npos) << listed.output;
    RunResult shown = run("cleanroom show --analysis " + id + as0);
    EXPECT_NE(shown.output.find("GROUP BY account"), std::string::npos) << shown.output;

    RunResult not_trigger = run("cleanroom run --analysis " + id + as0);
    EXPECT_EQ(not_trigger.exit_code, 1) << not_trigger.output;
    RunResult ran = run("cleanroom run --analysis " + id + as1);
    ASSERT_EQ(ran.exit_code, 0) << ran.output;
    std::string run_id = find(ran.output, "(run-[0-9]{10})");
    ASSERT_FALSE(run_id.empty()) << ran.output;
    RunResult runs = run("cleanroom runs --analysis " + id + as0);
    EXPECT_NE(runs.output.find(run_id), std::string::npos) << runs.output;

    std::string sealed = dir_ + "/result.json";
    RunResult fetched = run("cleanroom fetch --run " + run_id + " --out " + sealed + as1);
    ASSERT_EQ(fetched.exit_code, 0) << fetched.output;
    EXPECT_EQ(slurp(sealed).find("acct1"), std::string::npos) << "the stored result is in clear";
    RunResult opened = run("cleanroom decrypt --in " + sealed + " --enc-key " + sb +
                           "/identities/bank_1_enc_privk.pem");
    ASSERT_EQ(opened.exit_code, 0) << opened.output;
    for (int a = 0; a < kAccounts; ++a) {
        EXPECT_NE(opened.output.find("acct" + std::to_string(a)), std::string::npos)
            << opened.output;
    }
    EXPECT_NE(opened.output.find("aggregates:"), std::string::npos) << opened.output;
    RunResult wrong_key = run("cleanroom decrypt --in " + sealed + " --enc-key " + sb +
                              "/identities/bank_0_enc_privk.pem");
    EXPECT_EQ(wrong_key.exit_code, 1) << wrong_key.output;
    json altered = json::parse(slurp(sealed));
    altered["recipient"] = "bank_0";
    write(dir_ + "/altered.json", altered.dump());
    RunResult relabelled = run("cleanroom decrypt --in " + dir_ + "/altered.json --enc-key " + sb +
                               "/identities/bank_0_enc_privk.pem");
    EXPECT_EQ(relabelled.exit_code, 1) << relabelled.output;

    RunResult own = run("cleanroom fetch --run " + run_id + as0);
    EXPECT_EQ(own.exit_code, 0) << own.output;
    EXPECT_NE(own.output.find("acct0"), std::string::npos) << own.output;
    RunResult stranger =
        run("cleanroom fetch --run " + run_id + " --sandbox " + sb + " --as user0");
    EXPECT_EQ(stranger.exit_code, 1) << stranger.output;

    RunResult revoked = run("cleanroom revoke --analysis " + id + as0);
    EXPECT_EQ(revoked.exit_code, 0) << revoked.output;
    RunResult after = run("cleanroom run --analysis " + id + as1);
    EXPECT_EQ(after.exit_code, 1) << after.output;

    EXPECT_EQ(sandbox.stop(), 0) << sandbox.output();
}

}  // namespace

namespace {

// The leader dies in the middle of an upload: the session it held is lost, and the command
// starts the upload again on the new leader, so that the rows are stored exactly once.
TEST_F(CleanroomCli, UploadStartsAgainWhenTheLeaderDiesMidway) {
    constexpr int kRows = 60000;
    constexpr int kUploadTimeoutS = 120;
    std::string sb = dir_ + "/sb";
    SandboxRun sandbox(sb, {"--nodes", "3", "--users", "bank_0"});
    json info = sandbox.wait_ready();
    ASSERT_TRUE(info.is_object()) << sandbox.output();
    std::string as0 = " --sandbox " + sb + " --as bank_0";
    write(dir_ + "/schema.json", kSchema);
    ASSERT_EQ(run("cleanroom declare --schema " + dir_ + "/schema.json" + as0).exit_code, 0);

    std::string csv = "account,counterparty,amount\n";
    for (int i = 0; i < kRows; ++i) {
        csv += "acct" + std::to_string(i % 97) + ",cp" + std::to_string(i) + ",1.5\n";
    }
    write(dir_ + "/big.csv", csv);
    pid_t leader = leader_pid(info);
    ASSERT_GT(leader, 0);

    std::string output = dir_ + "/upload.out";
    pid_t upload =
        spawn_coffer({"cleanroom", "upload", "--dataset", "bank_0_tx", "--chunk-bytes", "2048",
                      "--csv", dir_ + "/big.csv", "--sandbox", sb, "--as", "bank_0"},
                     output);
    auto deadline = SteadyClock::now() + std::chrono::seconds(kUploadTimeoutS);
    while (slurp(output).find("upload: 30%") == std::string::npos &&
           SteadyClock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_NE(slurp(output).find("upload: 30%"), std::string::npos) << slurp(output);
    ASSERT_EQ(slurp(output).find("uploaded"), std::string::npos) << "finished before the kill";
    kill(leader, SIGKILL);

    EXPECT_EQ(wait_exit(upload, kUploadTimeoutS), 0) << slurp(output);
    EXPECT_NE(slurp(output).find("starting again"), std::string::npos) << slurp(output);
    EXPECT_NE(slurp(output).find(std::to_string(kRows) + " rows, version 1"), std::string::npos)
        << slurp(output);
    RunResult datasets = run("cleanroom datasets" + as0);
    EXPECT_NE(datasets.output.find("version 1  rows " + std::to_string(kRows)), std::string::npos)
        << datasets.output;
    sandbox.stop();
}

}  // namespace

namespace {

// --- coffer sandbox --members / --recovery-threshold ---

class SandboxMembers : public CleanroomCli {};

// GET `target` on the node at `address`, anonymously, pinning the sandbox's service certificate;
// the JSON answer, or null.
json get_anonymous(const json& info, const std::string& address, const std::string& target) {
    coffer::net::ClientOptions o;
    o.port = static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
    o.ca_cert_pem = slurp(info["service_cert"].get<std::string>());
    auto client = coffer::net::HttpClient::connect(o);
    if (!client.ok()) {
        return nullptr;
    }
    auto response = (*client)->request("GET", target);
    if (!response.ok() || response->status != 200) {
        return nullptr;
    }
    return json::parse(response->body, nullptr, false);
}

TEST_F(SandboxMembers, ThreeMembersPassEveryStepAndEachDecryptsItsTwoOfThreeShare) {
    std::string sb = dir_ + "/sb";
    SandboxRun sandbox(sb, {"--nodes", "2", "--members", "3", "--recovery-threshold", "2"});
    json info = sandbox.wait_ready();
    ASSERT_TRUE(info.is_object()) << sandbox.output();
    ASSERT_EQ(info["nodes"].size(), 2u) << info.dump(2);

    ASSERT_TRUE(info["members"].is_array()) << info.dump(2);
    ASSERT_EQ(info["members"].size(), 3u) << info.dump(2);
    for (size_t i = 0; i < 3; ++i) {
        const json& m = info["members"][i];
        EXPECT_EQ(m["name"], "member" + std::to_string(i));
        for (const char* field : {"cert", "key", "enc_key", "enc_pub"}) {
            EXPECT_TRUE(fs::exists(m[field].get<std::string>())) << field << " " << m.dump();
        }
        EXPECT_NE(sandbox.output().find(m["cert"].get<std::string>()), std::string::npos)
            << "the summary lists member" << i << "\n"
            << sandbox.output();
    }
    EXPECT_EQ(info["member_cert"], info["members"][0]["cert"]);
    EXPECT_EQ(info["member_enc_key"], info["members"][0]["enc_key"]);

    std::string address = info["nodes"][0]["client_address"].get<std::string>();
    json members = get_anonymous(info, address, "/gov/members");
    ASSERT_TRUE(members.is_object() && members["members"].is_object()) << members.dump();
    int active = 0;
    for (const auto& [fingerprint, record] : members["members"].items()) {
        active += record.value("status", "") == "active" ? 1 : 0;
    }
    EXPECT_EQ(active, 3) << members.dump(2);

    // open, set_recovery_threshold and trust_node: proposed by member0, accepted at the second
    // yes vote (2 of 3), after which nobody votes.
    json proposals = get_anonymous(info, address, "/gov/proposals");
    ASSERT_TRUE(proposals.is_object() && proposals["proposals"].is_array()) << proposals.dump();
    EXPECT_EQ(proposals["proposals"].size(), 3u) << proposals.dump(2);
    for (const json& p : proposals["proposals"]) {
        EXPECT_EQ(p.value("state", ""), "accepted") << p.dump(2);
        EXPECT_EQ(p["final_votes"].size(), 2u) << p.dump(2);
    }

    json recovery = get_anonymous(info, address, "/gov/recovery");
    ASSERT_TRUE(recovery.is_object()) << recovery.dump();
    EXPECT_EQ(recovery.value("threshold", -1), 2) << recovery.dump(2);
    EXPECT_EQ(recovery.value("service_status", ""), "open") << recovery.dump(2);

    std::set<std::string> shares;
    for (const json& m : info["members"]) {
        RunResult share =
            run("member share --decrypt --service " + address + " --service-cert " +
                info["service_cert"].get<std::string>() + " --cert " +
                m["cert"].get<std::string>() + " --key " + m["key"].get<std::string>() +
                " --enc-key " + m["enc_key"].get<std::string>());
        EXPECT_EQ(share.exit_code, 0) << m["name"] << ": " << share.output;
        std::string text = find(share.output, "^([A-Za-z0-9+/=]{92})\\s*$");
        EXPECT_EQ(text.size(), 92u) << m["name"] << ": " << share.output;
        shares.insert(text);
    }
    EXPECT_EQ(shares.size(), 3u) << "every member holds a different share";

    // Another member's encryption key does not open member0's share.
    const json& m0 = info["members"][0];
    RunResult wrong = run("member share --decrypt --service " + address + " --service-cert " +
                          info["service_cert"].get<std::string>() + " --cert " +
                          m0["cert"].get<std::string>() + " --key " + m0["key"].get<std::string>() +
                          " --enc-key " + info["members"][1]["enc_key"].get<std::string>());
    EXPECT_NE(wrong.exit_code, 0) << wrong.output;

    EXPECT_EQ(sandbox.stop(), 0) << sandbox.output();

    // The folder of a stopped sandbox (governance.log included) is taken again: the start gets
    // past the folder check and fails only at its node, which /bin/false cannot run.
    RunResult again =
        run("sandbox --nodes 1 --quiet --timeout-s 5 --coffer-binary /bin/false "
            "--dir " +
            sb);
    EXPECT_EQ(again.exit_code, 1) << again.output;
    EXPECT_EQ(again.output.find("did not make"), std::string::npos) << again.output;
    EXPECT_NE(again.output.find("node 0"), std::string::npos) << again.output;
}

TEST_F(SandboxMembers, SandboxRefusesBadMemberCountsAndThresholdsWithUsageExitCode) {
    std::string sb = " --nodes 1 --dir " + dir_ + "/s";
    for (const char* members : {"0", "17"}) {
        RunResult r = run(std::string("sandbox --members ") + members + sb);
        EXPECT_EQ(r.exit_code, 2) << r.output;
        EXPECT_NE(r.output.find("--members"), std::string::npos) << r.output;
    }
    RunResult high = run("sandbox --members 3 --recovery-threshold 4" + sb);
    EXPECT_EQ(high.exit_code, 2) << high.output;
    EXPECT_NE(high.output.find("--recovery-threshold 4 is more than the 3 member(s)"),
              std::string::npos)
        << high.output;
    RunResult taken = run("sandbox --members 2 --users member1" + sb);
    EXPECT_EQ(taken.exit_code, 2) << taken.output;
    EXPECT_NE(taken.output.find("\"member1\""), std::string::npos) << taken.output;
    EXPECT_FALSE(fs::exists(dir_ + "/s")) << "nothing is made before the options are checked";
}

}  // namespace
