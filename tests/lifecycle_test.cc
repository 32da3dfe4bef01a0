// Starting a node: configuration errors, the local_sealing=false restart refusal, keygen
// outputs, and certificate expiry (field case TLS-2).
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <csignal>

#include <ctime>
#include <fstream>
#include <thread>

#include "crypto/x509.h"
#include "ledger/receipt.h"
#include "tests/node_fixture.h"

namespace coffer::e2e {
namespace {

using nlohmann::json;

struct Scratch {
    TempDir dir;
    Identity member;
    Identity user;
};

void make_identities(Scratch& s) {
    s.member = keygen(s.dir.path(), "member0");
    s.user = keygen(s.dir.path(), "user0");
}

CommandResult start_with(Scratch& s, const std::string& text) {
    std::string path = s.dir.path() + "/config.json";
    write_text_file(path, text);
    return run_coffer({"node", "start", "--config", path}, kStartTimeoutMs);
}

TEST(NodeConfig, UnknownFieldStopsTheStartWithExitCode2) {
    Scratch s;
    make_identities(s);
    json config = make_config(s.dir.path(), s.member, {s.user});
    config["ledger"] = {{"chunk_size", 1}};
    CommandResult r = start_with(s, config.dump());
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("unknown field \"ledger.chunk_size\""), std::string::npos) << r.output;
}

TEST(NodeConfig, MissingFieldStopsTheStartWithExitCode2) {
    Scratch s;
    make_identities(s);
    json config = make_config(s.dir.path(), s.member, {s.user});
    config.erase("data_dir");
    CommandResult r = start_with(s, config.dump());
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("missing field \"data_dir\""), std::string::npos) << r.output;

    CommandResult not_json = start_with(s, "{\"client_address\": ");
    EXPECT_EQ(not_json.exit_code, 2) << not_json.output;
    CommandResult no_file = run_coffer({"node", "start", "--config", s.dir.path() + "/nope"});
    EXPECT_EQ(no_file.exit_code, 2) << no_file.output;
}

TEST(NodeConfig, UnreadableMemberCertificateIsNamed) {
    Scratch s;
    make_identities(s);
    json config = make_config(s.dir.path(), s.member, {s.user});
    config["members"][0]["certificate"] = s.member.enc_pub_path;
    CommandResult r = start_with(s, config.dump());
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find(s.member.enc_pub_path), std::string::npos) << r.output;
}

TEST(NodeConfig, NewServiceWithoutMembersIsRefused) {
    Scratch s;
    make_identities(s);
    json config = make_config(s.dir.path(), s.member, {s.user});
    config.erase("members");
    CommandResult r = start_with(s, config.dump());
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("a new service needs at least one member"), std::string::npos)
        << r.output;
}

TEST(NodeLifecycle, KeygenWritesPrivateKeysOwnerOnly) {
    TempDir dir;
    Identity id = keygen(dir.path(), "alice");
    for (const char* suffix : {"_privk.pem", "_enc_privk.pem"}) {
        struct stat st {};
        ASSERT_EQ(::stat((dir.path() + "/alice" + suffix).c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0600u) << suffix;
    }
    auto cert = crypto::Certificate::from_pem(id.cert_pem);
    ASSERT_TRUE(cert.ok());
    EXPECT_EQ(cert->subject_common_name(), "alice");
    CommandResult again = run_coffer({"keygen", "--name", "alice", "--out", dir.path()});
    EXPECT_EQ(again.exit_code, 2) << "keygen must not overwrite keys";
}

TEST(NodeLifecycle, RestartWithoutLocalSealingNeedsRecoveryShares) {
    Scratch s;
    make_identities(s);
    std::string path = s.dir.path() + "/config.json";
    write_text_file(
        path, make_config(s.dir.path(), s.member, {s.user}, {{"local_sealing", false}}).dump());
    NodeProcess node(path, s.dir.path() + "/data", s.dir.path() + "/node.log");
    std::string why;
    ASSERT_TRUE(node.start(why)) << why;
    EXPECT_FALSE(std::ifstream(s.dir.path() + "/data/sealed_secrets.json").good());
    ASSERT_EQ(node.terminate(), 0);
    ASSERT_FALSE(node.start(why));
    EXPECT_NE(why.find("recovery shares"), std::string::npos) << why;
}

// Two processes on one data directory would both append to the ledger and corrupt it for
// good: the second start must refuse, naming the first one's pid, and change nothing.
TEST(NodeLifecycle, SecondNodeOnTheSameDataDirectoryRefusesToStart) {
    Scratch s;
    make_identities(s);
    std::string path = s.dir.path() + "/config.json";
    write_text_file(path, make_config(s.dir.path(), s.member, {s.user}).dump());
    NodeProcess first(path, s.dir.path() + "/data", s.dir.path() + "/first.log");
    std::string why;
    ASSERT_TRUE(first.start(why)) << why;
    std::string ports_before = read_text_file(s.dir.path() + "/data/node_ports.json");

    CommandResult second = run_coffer({"node", "start", "--config", path}, kStartTimeoutMs);
    EXPECT_NE(second.exit_code, 0) << second.output;
    EXPECT_NE(
        second.output.find("in use by another process (pid " + std::to_string(first.pid()) + ")"),
        std::string::npos)
        << second.output;
    EXPECT_EQ(read_text_file(s.dir.path() + "/data/node_ports.json"), ports_before);

    ASSERT_EQ(first.terminate(), 0);
    ASSERT_TRUE(first.start(why)) << "the lock must be released at exit: " << why;
    ASSERT_EQ(first.terminate(), 0);
}

// A closed terminal (SIGHUP) stops the node as cleanly as SIGTERM: exit code 0, and every
// write made before it is Committed after a restart.
TEST(NodeLifecycle, SighupStopsTheNodeCleanly) {
    Scratch s;
    make_identities(s);
    std::string path = s.dir.path() + "/config.json";
    write_text_file(path, make_config(s.dir.path(), s.member, {s.user}).dump());
    NodeProcess node(path, s.dir.path() + "/data", s.dir.path() + "/node.log");
    std::string why;
    ASSERT_TRUE(node.start(why)) << why;
    ASSERT_EQ(::kill(node.pid(), SIGHUP), 0);
    EXPECT_EQ(node.wait_exit(kStartTimeoutMs), 0);
    ASSERT_TRUE(node.start(why)) << why;
    ASSERT_EQ(node.terminate(), 0);
}

// TLS-2: a node certificate that expires a few seconds after start.
TEST(NodeLifecycle, CertificateExpiryIsWarnedAndReceiptsStillVerify) {
    Scratch s;
    make_identities(s);
    std::string path = s.dir.path() + "/config.json";
    constexpr int kValidityS = 4;
    write_text_file(path, make_config(s.dir.path(), s.member, {s.user},
                                      {{"certificates", {{"node_validity_s", kValidityS}}}})
                              .dump());
    std::string log = s.dir.path() + "/node.log";
    NodeProcess node(path, s.dir.path() + "/data", log);
    std::string why;
    ASSERT_TRUE(node.start(why)) << why;
    int64_t started = static_cast<int64_t>(std::time(nullptr));
    ASSERT_TRUE(open_service(node.port(), node.service_cert_pem(), {s.member}, why)) << why;
    auto c = connect_client(node, &s.user);
    ASSERT_NE(c, nullptr);
    EXPECT_NE(read_text_file(log).find("node.certificate_expiring certificate=node"),
              std::string::npos);

    auto network = c->request("GET", "/node/network");
    ASSERT_TRUE(network.ok());
    int64_t not_after = json::parse(network->body)["nodes"][0]["certificate_validity"].value(
        "not_after_unix", int64_t{0});
    EXPECT_LE(not_after, started + kValidityS);

    auto write = c->request("POST", "/app/log/public", R"({"id": 1, "msg": "before"})");
    ASSERT_TRUE(write.ok());
    std::string tx = json::parse(write->body).value("transaction_id", "");
    ASSERT_TRUE(wait_committed(*c, tx, 10000));
    auto receipt = c->request("GET", "/app/receipt?transaction_id=" + tx);
    ASSERT_TRUE(receipt.ok());
    ASSERT_EQ(receipt->status, 200) << receipt->body;

    while (static_cast<int64_t>(std::time(nullptr)) <= not_after + 1) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    // The kept-alive connection still writes and commits across the expiry instant.
    auto after = c->request("POST", "/app/log/public", R"({"id": 2, "msg": "after"})");
    ASSERT_TRUE(after.ok());
    EXPECT_EQ(after->status, 200);
    EXPECT_TRUE(wait_committed(*c, json::parse(after->body).value("transaction_id", ""), 10000));

    // A new handshake is refused because the certificate expired.
    net::ClientOptions options;
    options.port = node.port();
    options.ca_cert_pem = node.service_cert_pem();
    auto fresh = net::HttpClient::connect(options);
    ASSERT_FALSE(fresh.ok());
    EXPECT_NE(fresh.status().message().find("expired"), std::string::npos)
        << fresh.status().to_string();

    // The receipt fetched before expiry still verifies, and says the certificate expired.
    std::string receipt_path = s.dir.path() + "/receipt.json";
    write_text_file(receipt_path, receipt->body);
    CommandResult verified = run_coffer({"receipt", "verify", receipt_path, "--service-cert",
                                         s.dir.path() + "/data/service_cert.pem"});
    EXPECT_EQ(verified.exit_code, 0) << verified.output;
    EXPECT_NE(verified.output.find("not valid now"), std::string::npos) << verified.output;
    EXPECT_EQ(node.terminate(), 0);
}

}  // namespace
}  // namespace coffer::e2e
