// The logging app end to end: writes and reads over TLS, receipts verified offline, and
// state surviving a clean restart and a SIGKILL.
#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "crypto/x509.h"
#include "ledger/receipt.h"
#include "tests/node_fixture.h"

namespace coffer::e2e {
namespace {

using nlohmann::json;

constexpr int kMessages = 1000;
constexpr int kCommitTimeoutMs = 10000;

json parse(const std::string& body) {
    return json::parse(body, nullptr, false);
}

// POSTs {"id", "msg"} and returns the transaction id (empty on failure, test failed).
std::string post(net::HttpClient& c, const std::string& which, uint64_t id,
                 const std::string& msg) {
    std::string body = json{{"id", id}, {"msg", msg}}.dump();
    auto r = c.request("POST", "/app/log/" + which, body, {{"content-type", "application/json"}});
    if (!r.ok() || r->status != 200) {
        ADD_FAILURE() << "POST " << which << " " << id << ": "
                      << (r.ok() ? r->body : r.status().to_string());
        return "";
    }
    std::string tx = parse(r->body).value("transaction_id", "");
    EXPECT_EQ(r->header("x-coffer-tx-id").value_or(""), tx);
    return tx;
}

// GETs a message; returns its text or "" (test failed) when absent.
std::string get(net::HttpClient& c, const std::string& which, uint64_t id) {
    auto r = c.request("GET", "/app/log/" + which + "?id=" + std::to_string(id));
    if (!r.ok() || r->status != 200) {
        ADD_FAILURE() << "GET " << which << " " << id << ": "
                      << (r.ok() ? std::to_string(r->status) + " " + r->body
                                 : r.status().to_string());
        return "";
    }
    json body = parse(r->body);
    EXPECT_EQ(body.value("id", uint64_t{0}), id);
    EXPECT_FALSE(body.value("transaction_id", "").empty());
    return body.value("msg", "");
}

std::string private_msg(int i) {
    return "private message " + std::to_string(i);
}
std::string public_msg(int i) {
    return "public message " + std::to_string(i);
}

// Polls GET /app/receipt until it answers 200; returns the receipt JSON.
std::string fetch_receipt(net::HttpClient& c, const std::string& tx) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kCommitTimeoutMs);
    while (std::chrono::steady_clock::now() < deadline) {
        auto r = c.request("GET", "/app/receipt?transaction_id=" + tx);
        if (!r.ok()) {
            ADD_FAILURE() << r.status().to_string();
            return "";
        }
        if (r->status == 200) {
            return r->body;
        }
        if (r->status != 202) {
            ADD_FAILURE() << "receipt: " << r->status << " " << r->body;
            return "";
        }
        EXPECT_TRUE(r->header("retry-after").has_value());
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "receipt never became available";
    return "";
}

void expect_all_readable(net::HttpClient& c, int count) {
    for (int i = 0; i < count; ++i) {
        ASSERT_EQ(get(c, "private", static_cast<uint64_t>(i)), private_msg(i));
        ASSERT_EQ(get(c, "public", static_cast<uint64_t>(i)), public_msg(i));
    }
}

class LoggingTest : public NodeFixture {};

TEST_F(LoggingTest, MessagesReceiptsAndRestartsKeepEveryCommittedWrite) {
    auto c = client(&user_);
    ASSERT_NE(c, nullptr);
    std::map<int, std::string> private_tx;
    std::string last_tx;
    for (int i = 0; i < kMessages; ++i) {
        private_tx[i] = post(*c, "private", static_cast<uint64_t>(i), private_msg(i));
        ASSERT_FALSE(private_tx[i].empty());
        last_tx = post(*c, "public", static_cast<uint64_t>(i), public_msg(i));
        ASSERT_FALSE(last_tx.empty());
    }
    // Reads serve committed state: wait until the last write is in it.
    ASSERT_TRUE(wait_committed(*c, last_tx, kCommitTimeoutMs));
    expect_all_readable(*c, kMessages);

    // A receipt for one private write, verified in process and by the CLI.
    std::string tx = private_tx[kMessages / 2];
    ASSERT_TRUE(wait_committed(*c, tx, kCommitTimeoutMs));
    std::string receipt_json = fetch_receipt(*c, tx);
    auto receipt = ledger::parse_receipt(receipt_json);
    ASSERT_TRUE(receipt.ok()) << receipt.status().to_string();
    auto service_cert = crypto::Certificate::from_pem(node_->service_cert_pem());
    ASSERT_TRUE(service_cert.ok());
    auto verified = ledger::verify_receipt(*receipt, *service_cert);
    ASSERT_TRUE(verified.ok()) << verified.status().to_string();
    EXPECT_EQ(verified->tx_id.to_string(), tx);
    std::string receipt_path = dir_.path() + "/receipt.json";
    write_text_file(receipt_path, receipt_json);
    CommandResult cli = run_coffer(
        {"receipt", "verify", receipt_path, "--service-cert", data_dir() + "/service_cert.pem"});
    EXPECT_EQ(cli.exit_code, 0) << cli.output;
    EXPECT_NE(cli.output.find("receipt verified"), std::string::npos);

    // Clean restart: everything is read back, in a later view.
    c.reset();
    ASSERT_EQ(node_->terminate(), 0);
    CommandResult ledger_ok = run_coffer({"ledger", "verify", data_dir() + "/ledger"});
    EXPECT_EQ(ledger_ok.exit_code, 0) << ledger_ok.output;
    restart_node();
    c = client(&user_);
    ASSERT_NE(c, nullptr);
    expect_all_readable(*c, kMessages);
    EXPECT_TRUE(wait_committed(*c, tx, kCommitTimeoutMs));

    // More writes, then SIGKILL: every write seen Committed survives.
    std::vector<std::pair<int, std::string>> committed;
    for (int i = kMessages; i < kMessages + 100; ++i) {
        post(*c, "private", static_cast<uint64_t>(i), private_msg(i));
        committed.emplace_back(i, post(*c, "public", static_cast<uint64_t>(i), public_msg(i)));
    }
    ASSERT_TRUE(wait_committed(*c, committed.back().second, kCommitTimeoutMs));
    c.reset();
    node_->kill_hard();
    restart_node();
    c = client(&user_);
    ASSERT_NE(c, nullptr);
    for (const auto& [i, id] : committed) {
        EXPECT_EQ(get(*c, "public", static_cast<uint64_t>(i)), public_msg(i));
        EXPECT_EQ(get(*c, "private", static_cast<uint64_t>(i)), private_msg(i));
        auto status = c->request("GET", "/node/tx?transaction_id=" + id);
        ASSERT_TRUE(status.ok());
        EXPECT_EQ(parse(status->body).value("status", ""), "Committed") << id;
    }
    EXPECT_EQ(node_->terminate(), 0);
}

TEST_F(LoggingTest, ReceiptAnswersPendingUnknownAndMalformedIds) {
    auto c = client(&user_);
    ASSERT_NE(c, nullptr);
    auto unknown = c->request("GET", "/app/receipt?transaction_id=1.999999");
    ASSERT_TRUE(unknown.ok());
    EXPECT_EQ(unknown->status, 404) << unknown->body;
    for (const char* bad : {"abc", "1.", ".1", "-1.2", "1.2.3", "01.2"}) {
        auto r = c->request("GET", std::string("/app/receipt?transaction_id=") + bad);
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(r->status, 400) << bad;
        EXPECT_NE(parse(r->body)["error"].value("code", ""), "");
    }
    // The genesis transaction is committed before the node serves: its receipt exists.
    auto genesis = c->request("GET", "/app/receipt?transaction_id=1.1");
    ASSERT_TRUE(genesis.ok());
    EXPECT_EQ(genesis->status, 200) << genesis->body;
}

}  // namespace
}  // namespace coffer::e2e

namespace coffer::e2e {
namespace {

TEST_F(LoggingTest, WritesCanWaitForTheirCommitAndReadsNameTheirConsistency) {
    auto c = client(&user_);
    ASSERT_NE(c, nullptr);
    // x-coffer-wait-ms: the answer comes once the write is Committed.
    auto w = c->request("POST", "/app/log/public", json{{"id", 42}, {"msg", "waited"}}.dump(),
                        {{"content-type", "application/json"}, {"x-coffer-wait-ms", "5000"}});
    ASSERT_TRUE(w.ok());
    ASSERT_EQ(w->status, 200) << w->body;
    EXPECT_EQ(w->header("x-coffer-tx-status").value_or(""), "Committed");
    std::string tx = parse(w->body).value("transaction_id", "");
    // An invalid wait is refused before the write runs: nothing is written.
    for (const char* wait : {"", "-1", "abc", "10001", "5x"}) {
        auto bad_wait = c->request("POST", "/app/log/public",
                                   json{{"id", 44}, {"msg", "must not exist"}}.dump(),
                                   {{"x-coffer-wait-ms", wait}});
        ASSERT_TRUE(bad_wait.ok());
        EXPECT_EQ(bad_wait->status, 400) << "'" << wait << "' " << bad_wait->body;
    }
    auto absent = c->request("GET", "/app/log/public?id=44");
    ASSERT_TRUE(absent.ok());
    EXPECT_EQ(absent->status, 404) << absent->body;
    // Without the header nothing waits and no status is added.
    auto plain = c->request("POST", "/app/log/public", json{{"id", 43}, {"msg", "p"}}.dump());
    ASSERT_TRUE(plain.ok());
    EXPECT_FALSE(plain->header("x-coffer-tx-status").has_value());

    // A committed read sees the waited write; a linearizable one too (single node).
    for (const char* consistency : {"committed", "linearizable"}) {
        auto r = c->request("GET", std::string("/app/log/public?id=42&consistency=") + consistency);
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(r->status, 200) << consistency << " " << r->body;
        EXPECT_EQ(parse(r->body).value("msg", ""), "waited") << consistency;
    }
    auto bad = c->request("GET", "/app/log/public?id=42&consistency=latest");
    ASSERT_TRUE(bad.ok());
    EXPECT_EQ(bad->status, 400);

    // GET /node/tx?wait_ms: bounded and validated.
    auto waited = c->request("GET", "/node/tx?transaction_id=" + tx + "&wait_ms=1000");
    ASSERT_TRUE(waited.ok());
    EXPECT_EQ(parse(waited->body).value("status", ""), "Committed");
    for (const char* wait : {"-1", "abc", "10001", "5x"}) {
        auto r = c->request("GET", "/node/tx?transaction_id=" + tx + "&wait_ms=" + wait);
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(r->status, 400) << wait;
    }
    // A transaction that was never written is Unknown, not waited for.
    auto unknown = c->request("GET", "/node/tx?transaction_id=99.999999&wait_ms=300");
    ASSERT_TRUE(unknown.ok());
    EXPECT_EQ(parse(unknown->body).value("status", ""), "Unknown");
}

}  // namespace
}  // namespace coffer::e2e
