// The clean-room service on a real node process: parties made with `coffer keygen`, uploads
// sealed with HPKE by the test itself (the client side), approvals, runs and results that
// the test opens with the recipients' private keys and compares with the engine run on the
// plaintext (docs/cleanroom.md).
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

#include "attestation/platform.h"
#include "cleanroom/analysis.h"
#include "cleanroom/csv.h"
#include "crypto/hpke.h"
#include "crypto/sha256.h"
#include "crypto/x25519.h"
#include "crypto/x509.h"
#include "tests/cleanroom_test_util.h"

namespace coffer::e2e {
namespace {

using nlohmann::json;

// Distinctive row values: no answer of any endpoint may contain them.
constexpr const char* kSecretA = "SECRET-A-7f3c";
constexpr const char* kSecretB = "SECRET-B-91d0";
constexpr const char* kSecretAmount = "31337.77";

constexpr const char* kDeclA =
    R"({"name": "a_tx", "columns": [{"name": "account", "type": "int"},)"
    R"( {"name": "counterparty", "type": "int"}, {"name": "amount", "type": "decimal"},)"
    R"( {"name": "note", "type": "string"}], "entity_columns": ["account"],)"
    R"( "joinable_columns": ["account"], "output_columns": ["account"]})";
constexpr const char* kDeclB =
    R"({"name": "b_tx", "columns": [{"name": "account", "type": "int"},)"
    R"( {"name": "counterparty", "type": "int"}, {"name": "amount", "type": "decimal"},)"
    R"( {"name": "note", "type": "string"}], "entity_columns": ["account"],)"
    R"( "joinable_columns": ["account"], "output_columns": ["account"]})";

// Bank A's accounts are 100..104, bank B's 200..202. Accounts 100 (3 counterparties), 101
// and 200 (2 each) pass min_entities 2; the rows of 102..104, 201 and 202 are suppressed.
std::string rows_a_first() {
    return "account,counterparty,amount,note\n"
           "100,1,10.5," +
           std::string(kSecretA) +
           "\n"
           "100,2,20,x\n"
           "100,3," +
           std::string(kSecretAmount) +
           ",y\n"
           "101,1,5,z\n";
}
std::string rows_a_second() {
    return "account,counterparty,amount,note\n"
           "101,4,7,\"" +
           std::string(kSecretA) +
           " quoted, with comma\"\n"
           "102,1,1,a\n103,1,1,b\n104,1,1,c\n";
}
std::string rows_b() {
    return "account,counterparty,amount,note\n"
           "200,1,1," +
           std::string(kSecretB) +
           "\n"
           "200,2,2,q\n201,1,3,r\n202,9,4,s\n";
}

// Per account: transfers and distinct counterparties, routed to the account's owner.
const std::string kJointQuery =
    "SELECT account, count(*) AS transfers, count(DISTINCT counterparty) AS _entities FROM "
    "(SELECT account, counterparty FROM a_tx UNION ALL SELECT account, counterparty FROM b_tx) "
    "GROUP BY account ORDER BY account";

std::string joint_analysis(const std::string& query = kJointQuery,
                           const std::string& triggers = R"(["bank_a"])") {
    json doc = {{"version", 1},
                {"kind", "sql"},
                {"query", query},
                {"datasets",
                 {{{"name", "a_tx"}, {"columns", {"account", "counterparty"}}},
                  {{"name", "b_tx"}, {"columns", {"account", "counterparty"}}}}},
                {"output_policy",
                 {{"columns", {"account", "transfers", "_entities"}},
                  {"min_entities", 2},
                  {"routing_column", "account"}}},
                {"recipients", {"bank_a", "bank_b"}},
                {"triggers", json::parse(triggers)}};
    return doc.dump();
}

class CleanroomServiceTest : public CleanroomFixture {
  protected:
    // Declares a_tx (bank_a, two uploads) and b_tx (bank_b, one upload).
    void declare_and_upload() {
        ASSERT_EQ(call(bank_a_, "POST", "/app/cleanroom/datasets", kDeclA).status, 200);
        ASSERT_EQ(call(bank_b_, "POST", "/app/cleanroom/datasets", kDeclB).status, 200);
        Answer first = upload(bank_a_, "a_tx", rows_a_first(), 40);
        ASSERT_EQ(first.status, 200) << first.raw;
        EXPECT_EQ(first.body["version"], 1);
        EXPECT_EQ(first.body["rows"], 4);
        Answer second = upload(bank_a_, "a_tx", rows_a_second(), 1000);
        ASSERT_EQ(second.status, 200) << second.raw;
        EXPECT_EQ(second.body["version"], 2);
        EXPECT_EQ(second.body["total_rows"], 8);
        ASSERT_EQ(upload(bank_b_, "b_tx", rows_b(), 16).status, 200);
    }

    // Proposes `doc` as bank_a; returns its id.
    std::string propose(const std::string& doc) {
        Answer a = call(bank_a_, "POST", "/app/cleanroom/analyses", doc);
        EXPECT_EQ(a.status, 200) << doc << ": " << a.raw;
        return a.body.value("id", "");
    }

    void approve_all(const std::string& id) {
        ASSERT_EQ(call(bank_a_, "POST", "/app/cleanroom/approvals?analysis=" + id, "{}").status,
                  200);
        ASSERT_EQ(call(bank_b_, "POST", "/app/cleanroom/approvals?analysis=" + id, "{}").status,
                  200);
    }

    // The engine's output for every recipient, run here on the plaintext.
    std::map<std::string, std::string> expected_outputs(const std::string& doc_text) {
        auto doc = cleanroom::parse_analysis(doc_text);
        EXPECT_TRUE(doc.ok()) << doc.status().to_string();
        std::map<std::string, cleanroom::Table> tables;
        tables["a_tx"] = table_of(kDeclA, "bank_a", {rows_a_first(), rows_a_second()});
        tables["b_tx"] = table_of(kDeclB, "bank_b", {rows_b()});
        cleanroom::RunOptions options;
        options.caller = "bank_a";
        auto result = cleanroom::run_analysis(*doc, tables, options);
        EXPECT_TRUE(result.ok()) << result.status().to_string();
        std::map<std::string, std::string> out;
        for (const auto& [recipient, output] : result->outputs) {
            out[recipient] = output.json;
        }
        return out;
    }
};

TEST_F(CleanroomServiceTest, PublishedKeyVerifiesWithTheServiceCertificate) {
    Answer key = call(nullptr, "GET", "/app/cleanroom/key");
    ASSERT_EQ(key.status, 200) << key.raw;
    auto service = crypto::Certificate::from_pem(node_->service_cert_pem());
    ASSERT_TRUE(service.ok());
    EXPECT_EQ(key.body["service_cert"].get<std::string>(), service->to_pem());
    auto public_key = from_hex(key.body["public_key"].get<std::string>());
    ASSERT_TRUE(public_key.ok());
    ASSERT_EQ(public_key->size(), 32u);
    Bytes statement = to_bytes("coffer-cleanroom-key-v1:");
    put_bytes(statement, *public_key);
    auto signature = from_hex(key.body["signature"].get<std::string>());
    ASSERT_TRUE(signature.ok());
    auto service_key = service->ecdsa_public_key();
    ASSERT_TRUE(service_key.ok());
    EXPECT_TRUE(service_key->verify(statement, *signature).ok());
    // One flipped byte of the key no longer verifies.
    statement.back() ^= 1;
    EXPECT_FALSE(service_key->verify(statement, *signature).ok());

    ASSERT_EQ(key.body["nodes"].size(), 1u);
    const json& n = key.body["nodes"][0];
    auto node_cert = crypto::Certificate::from_pem(n["cert"].get<std::string>());
    ASSERT_TRUE(node_cert.ok());
    EXPECT_TRUE(node_cert->verify_signed_by(*service_key).ok());
    auto evidence = attestation::evidence_from_json(n["attestation"]);
    ASSERT_TRUE(evidence.ok()) << evidence.status().to_string();
    auto claims = attestation::verify_evidence(*evidence, {});
    ASSERT_TRUE(claims.ok()) << claims.status().to_string();
    auto node_key = node_cert->ecdsa_public_key();
    ASSERT_TRUE(node_key.ok());
    EXPECT_TRUE(attestation::check_key_binding(*claims, node_key->to_der()).ok());
}

TEST_F(CleanroomServiceTest, ApprovedRunDeliversEncryptedRoutedResultsAndNoRows) {
    declare_and_upload();
    std::string doc = joint_analysis();
    std::string id = propose(doc);
    EXPECT_EQ(id, to_hex(crypto::sha256(as_bytes(doc))));

    // Before every owner approved, the run is refused naming the missing approval.
    Answer early = call(bank_a_, "POST", "/app/cleanroom/runs?analysis=" + id);
    EXPECT_EQ(early.status, 403);
    EXPECT_NE(early.raw.find("not approved by bank_a"), std::string::npos) << early.raw;
    ASSERT_EQ(call(bank_a_, "POST", "/app/cleanroom/approvals?analysis=" + id, "{}").status, 200);
    Answer half = call(bank_a_, "POST", "/app/cleanroom/runs?analysis=" + id);
    EXPECT_EQ(half.status, 403);
    EXPECT_NE(half.raw.find("not approved by bank_b"), std::string::npos) << half.raw;
    ASSERT_EQ(call(bank_b_, "POST", "/app/cleanroom/approvals?analysis=" + id, "{}").status, 200);

    Answer run = call(bank_a_, "POST", "/app/cleanroom/runs?analysis=" + id);
    ASSERT_EQ(run.status, 200) << run.raw;
    std::string run_id = run.body["run_id"];
    EXPECT_EQ(run.body["suppressed_rows"], 5);
    EXPECT_EQ(run.body["trigger"], "bank_a");
    EXPECT_EQ(run.body["datasets"][0], json({{"name", "a_tx"}, {"version", 2}, {"rows", 8}}));
    EXPECT_EQ(run.body["datasets"][1], json({{"name", "b_tx"}, {"version", 1}, {"rows", 4}}));

    // Each recipient opens its own result, equal to the engine's output on the plaintext,
    // and holding only its own accounts.
    auto expected = expected_outputs(doc);
    for (Identity* who : {&bank_a_, &bank_b_}) {
        std::string plaintext = open_result(*who, run_id);
        EXPECT_EQ(plaintext, expected[who->name]) << who->name;
        json result = json::parse(plaintext);
        EXPECT_EQ(result["aggregates"]["suppressed_rows"], 5);
        for (const json& row : result["rows"]) {
            int account = row[0].get<int>();
            EXPECT_EQ(account / 100, who == &bank_a_ ? 1 : 2) << plaintext;
        }
        EXPECT_EQ(
            run.body["results"][who->name],
            to_hex(crypto::sha256(from_hex(call(*who, "GET", "/app/cleanroom/results?run=" + run_id)
                                               .body["ciphertext"]
                                               .get<std::string>())
                                      .value())));
    }
    EXPECT_EQ(json::parse(open_result(bank_a_, run_id))["rows"],
              json::parse("[[100, 3, 3], [101, 2, 2]]"));
    EXPECT_EQ(json::parse(open_result(bank_b_, run_id))["rows"], json::parse("[[200, 2, 2]]"));

    // A party that is no recipient gets nothing, and does not see the run.
    EXPECT_EQ(call(bank_c_, "GET", "/app/cleanroom/results?run=" + run_id).status, 404);
    EXPECT_EQ(call(bank_c_, "GET", "/app/cleanroom/runs").body["runs"].size(), 0u);
    Answer runs = call(bank_b_, "GET", "/app/cleanroom/runs?analysis=" + id);
    ASSERT_EQ(runs.body["runs"].size(), 1u);
    std::string tx_id = runs.body["runs"][0]["tx_id"];
    EXPECT_EQ(tx_id, run.body["tx_id"]);
    EXPECT_EQ(call(bank_b_, "GET", "/app/receipt?transaction_id=" + tx_id).status / 100, 2);

    // Every endpoint, as every kind of caller: no answer holds a row value.
    walk_every_endpoint({{"analysis", id}, {"run", run_id}, {"dataset", "a_tx"}});
    for (const std::string& answer : answers_) {
        for (const char* secret : {kSecretA, kSecretB, kSecretAmount}) {
            EXPECT_EQ(answer.find(secret), std::string::npos) << answer.substr(0, 300);
        }
    }
}

TEST_F(CleanroomServiceTest, ApprovalsRevocationsAndRunCapsDecideWhoRuns) {
    declare_and_upload();
    std::string doc = joint_analysis(kJointQuery, R"(["bank_a", "bank_c"])");
    std::string id = propose(doc);
    ASSERT_EQ(call(bank_a_, "POST", "/app/cleanroom/approvals?analysis=" + id, R"({"max_runs": 3})")
                  .status,
              200);
    ASSERT_EQ(call(bank_b_, "POST", "/app/cleanroom/approvals?analysis=" + id, R"({"max_runs": 2})")
                  .status,
              200);
    // Only owners approve; only triggers run.
    EXPECT_EQ(call(bank_c_, "POST", "/app/cleanroom/approvals?analysis=" + id, "{}").status, 403);
    Answer not_trigger = call(bank_b_, "POST", "/app/cleanroom/runs?analysis=" + id);
    EXPECT_EQ(not_trigger.status, 403);
    EXPECT_NE(not_trigger.raw.find("not a trigger"), std::string::npos) << not_trigger.raw;

    // One changed byte is a new analysis that nobody approved.
    std::string changed = doc;
    changed.back() = ' ';
    changed += "}";
    std::string other = propose(changed);
    EXPECT_NE(other, id);
    EXPECT_EQ(call(bank_a_, "GET", "/app/cleanroom/analysis?id=" + other).body["runnable"], false);
    EXPECT_EQ(call(bank_a_, "POST", "/app/cleanroom/runs?analysis=" + other).status, 403);
    // The same bytes again answer the same id.
    EXPECT_EQ(propose(doc), id);

    // The cap is the smallest max_runs: 2.
    EXPECT_EQ(call(bank_a_, "POST", "/app/cleanroom/runs?analysis=" + id).status, 200);
    EXPECT_EQ(call(bank_c_, "POST", "/app/cleanroom/runs?analysis=" + id).status, 200);
    Answer capped = call(bank_a_, "POST", "/app/cleanroom/runs?analysis=" + id);
    EXPECT_EQ(capped.status, 403);
    EXPECT_NE(capped.raw.find("run cap of 2"), std::string::npos) << capped.raw;

    // A revoked approval stops runs, even after the cap is lifted by a new approval.
    ASSERT_EQ(
        call(bank_b_, "POST", "/app/cleanroom/approvals?analysis=" + id, R"({"max_runs": 10})")
            .status,
        200);
    EXPECT_EQ(call(bank_a_, "POST", "/app/cleanroom/runs?analysis=" + id).status, 200);
    ASSERT_EQ(call(bank_a_, "POST", "/app/cleanroom/revocations?analysis=" + id).status, 200);
    Answer revoked = call(bank_c_, "POST", "/app/cleanroom/runs?analysis=" + id);
    EXPECT_EQ(revoked.status, 403);
    EXPECT_NE(revoked.raw.find("revoked"), std::string::npos) << revoked.raw;
    EXPECT_EQ(call(bank_a_, "POST", "/app/cleanroom/revocations?analysis=" + id).status, 403);
    Answer listed = call(bank_c_, "GET", "/app/cleanroom/runs?analysis=" + id);
    EXPECT_EQ(listed.body["runs"].size(), 3u);
}

TEST_F(CleanroomServiceTest, ProposalsAreCheckedBeforeAnyoneApproves) {
    ASSERT_EQ(call(bank_a_, "POST", "/app/cleanroom/datasets", kDeclA).status, 200);
    ASSERT_EQ(call(bank_b_, "POST", "/app/cleanroom/datasets", kDeclB).status, 200);
    struct Case {
        std::string query;
        std::string message;
    };
    const Case cases[] = {
        {"SELECT account, note AS transfers, 1 AS _entities FROM a_tx", "read of a_tx.note"},
        {"INSERT INTO a_tx VALUES (1, 2, 3, 'x')", "not allowed"},
        {"ATTACH DATABASE ':memory:' AS other", "ATTACH"},
        {"SELECT account, load_extension('x') AS transfers, 1 AS _entities FROM a_tx",
         "load_extension"},
    };
    for (const Case& c : cases) {
        Answer a = call(bank_a_, "POST", "/app/cleanroom/analyses", joint_analysis(c.query));
        EXPECT_EQ(a.status, 400) << c.query;
        EXPECT_NE(a.raw.find(c.message), std::string::npos) << c.query << ": " << a.raw;
    }
    Answer unknown = call(bank_a_, "POST", "/app/cleanroom/analyses",
                          joint_analysis(kJointQuery, R"(["nobody"])"));
    EXPECT_EQ(unknown.status, 400);
    EXPECT_NE(unknown.raw.find("\\\"nobody\\\" is held by no user"), std::string::npos)
        << unknown.raw;
    Answer twins = call(bank_a_, "POST", "/app/cleanroom/analyses",
                        joint_analysis(kJointQuery, R"(["twin"])"));
    EXPECT_EQ(twins.status, 400);
    EXPECT_NE(twins.raw.find("is ambiguous: 2 users have that name"), std::string::npos)
        << twins.raw;
    EXPECT_EQ(call(twin_, "POST", "/app/cleanroom/datasets", kDeclA).status, 403);
    Answer no_key = call(viewer_, "POST", "/app/cleanroom/analyses", joint_analysis());
    EXPECT_EQ(no_key.status, 403);
    EXPECT_NE(no_key.raw.find("no encryption key"), std::string::npos) << no_key.raw;
    EXPECT_EQ(call(bank_b_, "POST", "/app/cleanroom/datasets", kDeclA).status, 409);
    EXPECT_EQ(call(bank_a_, "GET", "/app/cleanroom/analyses").body["analyses"].size(), 0u);
}

TEST_F(CleanroomServiceTest, RefusedUploadsStoreNothing) {
    ASSERT_EQ(call(bank_a_, "POST", "/app/cleanroom/datasets", kDeclA).status, 200);
    ASSERT_EQ(upload(bank_a_, "a_tx", rows_a_first(), 64).status, 200);
    uint64_t before = settled_last_seqno();

    // A malformed row: 400 naming the line, the version unchanged.
    std::string bad = "account,counterparty,amount,note\n1,2,3,x\n1,2,3,y\n1,2,abc,z\n";
    Answer malformed = upload(bank_a_, "a_tx", bad, 20);
    EXPECT_EQ(malformed.status, 400);
    EXPECT_NE(malformed.raw.find("line 4: column amount: not a decimal"), std::string::npos)
        << malformed.raw;
    // A wrong sha256 on commit.
    UploadOptions wrong_hash;
    wrong_hash.sha256_override = std::string(64, '0');
    EXPECT_EQ(upload(bank_a_, "a_tx", rows_a_second(), 64, wrong_hash).status, 400);
    // Only the owner starts an upload.
    EXPECT_EQ(call(bank_b_, "POST", "/app/cleanroom/uploads?dataset=a_tx").status, 403);

    Answer started = call(bank_a_, "POST", "/app/cleanroom/uploads?dataset=a_tx");
    ASSERT_EQ(started.status, 200);
    std::string upload_id = started.body["upload_id"];
    Bytes plaintext = to_bytes(rows_a_second());
    // Sealed to a key other than the service's.
    crypto::X25519KeyPair other = crypto::x25519_generate();
    Answer wrong_key =
        send_chunk(bank_a_, upload_id, 0, plaintext, other.public_key, upload_id + "/0");
    EXPECT_EQ(wrong_key.status, 400);
    EXPECT_NE(wrong_key.raw.find("does not decrypt"), std::string::npos) << wrong_key.raw;
    // Sealed with the aad of another index or upload.
    EXPECT_EQ(send_chunk(bank_a_, upload_id, 0, plaintext, service_key(), upload_id + "/1").status,
              400);
    EXPECT_EQ(send_chunk(bank_a_, upload_id, 0, plaintext, service_key(), "other/0").status, 400);
    // Another party cannot add to it or commit it.
    EXPECT_EQ(send_chunk(bank_b_, upload_id, 0, plaintext, service_key(), upload_id + "/0").status,
              404);
    // A gap in the indexes.
    EXPECT_EQ(send_chunk(bank_a_, upload_id, 1, plaintext, service_key(), upload_id + "/1").status,
              400);
    std::string digest = to_hex(crypto::sha256(plaintext));
    json commit = {{"chunks", 0}, {"sha256", digest}};
    EXPECT_EQ(
        call(bank_b_, "POST", "/app/cleanroom/uploads/commit?upload=" + upload_id, commit.dump())
            .status,
        404);

    EXPECT_EQ(settled_last_seqno(), before);
    json datasets = call(bank_a_, "GET", "/app/cleanroom/datasets").body["datasets"];
    ASSERT_EQ(datasets.size(), 1u);
    EXPECT_EQ(datasets[0]["version"], 1);
    EXPECT_EQ(datasets[0]["rows"], 4);
}

// The approvals are checked again in the transaction that writes the run: an approval
// withdrawn while the run is computing stops it, and no result or audit record is written.
TEST_F(CleanroomServiceTest, RevocationDuringARunStopsIt) {
    declare_and_upload();
    // A query that computes for a second or two (SQLite steps a recursive CTE), so that the
    // revocation sent 500 ms after the run started lands while it computes.
    std::string slow =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000000) "
        "SELECT a_tx.account AS account, (SELECT count(*) FROM c) AS transfers, "
        "count(DISTINCT counterparty) AS _entities FROM a_tx GROUP BY account";
    std::string id = propose(joint_analysis(slow));
    approve_all(id);

    Answer run;
    std::thread runner([&] {
        auto c = connect_client(*node_, &bank_a_);
        if (c == nullptr) {
            return;
        }
        auto r = c->request("POST", "/app/cleanroom/runs?analysis=" + id, "",
                            {{"x-coffer-wait-ms", "5000"}});
        if (r.ok()) {
            run.status = r->status;
            run.raw = r->body;
        }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    Answer revoked = call(bank_b_, "POST", "/app/cleanroom/revocations?analysis=" + id);
    runner.join();
    ASSERT_EQ(revoked.status, 200) << revoked.raw;
    EXPECT_EQ(run.status, 403) << run.raw;
    EXPECT_NE(run.raw.find("results were discarded: the approval of bank_b"), std::string::npos)
        << run.raw;
    EXPECT_EQ(call(bank_a_, "GET", "/app/cleanroom/runs").body["runs"].size(), 0u);
    EXPECT_EQ(call(bank_a_, "GET", "/app/cleanroom/analysis?id=" + id).body["runs"], 0);
}

std::string aml_declaration(const std::string& name) {
    json decl = {{"name", name},
                 {"columns",
                  {{{"name", "tx_id"}, {"type", "int"}},
                   {{"name", "account"}, {"type", "int"}},
                   {{"name", "counterparty"}, {"type", "int"}},
                   {{"name", "direction"}, {"type", "string"}},
                   {{"name", "amount"}, {"type", "decimal"}},
                   {{"name", "ts"}, {"type", "int"}}}},
                 {"entity_columns", {"account"}},
                 {"joinable_columns", json::array()},
                 {"output_columns", {"account"}}};
    return decl.dump();
}

// A run that fails on the values themselves (two legs of transfer 987654 disagree) does not
// quote them to the trigger.
TEST_F(CleanroomServiceTest, RunFailuresOnTheDataDoNotQuoteValues) {
    ASSERT_EQ(call(bank_a_, "POST", "/app/cleanroom/datasets", aml_declaration("aml_a")).status,
              200);
    ASSERT_EQ(call(bank_b_, "POST", "/app/cleanroom/datasets", aml_declaration("aml_b")).status,
              200);
    ASSERT_EQ(upload(bank_a_, "aml_a",
                     "tx_id,account,counterparty,direction,amount,ts\n"
                     "987654,100,200,out,55.5,3\n",
                     64)
                  .status,
              200);
    ASSERT_EQ(upload(bank_b_, "aml_b",
                     "tx_id,account,counterparty,direction,amount,ts\n"
                     "987654,200,100,in,66.25,3\n",
                     64)
                  .status,
              200);
    json legs = {"tx_id", "account", "counterparty", "direction", "amount", "ts"};
    json doc = {
        {"version", 1},
        {"kind", "aml"},
        {"params", json::object()},
        {"datasets",
         {{{"name", "aml_a"}, {"columns", legs}}, {{"name", "aml_b"}, {"columns", legs}}}},
        {"output_policy", {{"columns", {"account", "flags"}}, {"routing_column", "account"}}},
        {"recipients", {"bank_a", "bank_b"}},
        {"triggers", {"bank_a"}}};
    std::string id = propose(doc.dump());
    approve_all(id);
    Answer failed = call(bank_a_, "POST", "/app/cleanroom/runs?analysis=" + id);
    EXPECT_EQ(failed.status, 400);
    EXPECT_NE(failed.raw.find("details are withheld"), std::string::npos) << failed.raw;
    for (const char* value : {"987654", "66.25", "55.5"}) {
        EXPECT_EQ(failed.raw.find(value), std::string::npos) << failed.raw;
    }
    EXPECT_EQ(call(bank_a_, "GET", "/app/cleanroom/runs").body["runs"].size(), 0u);
}

// The registry walk of tests/endpoints_test.cc, for the clean-room endpoints, as a party
// called user0: every example succeeds in registration order. The chunk and commit of an
// upload have no example (their body must be sealed to this service's key).
TEST_F(CleanroomServiceTest, RegistryExamplesSucceedForAPartyNamedUser0) {
    Answer listing = call(nullptr, "GET", "/node/endpoints");
    ASSERT_EQ(listing.status, 200);
    size_t walked = 0;
    for (const json& e : listing.body["endpoints"]) {
        std::string path = e["path"];
        if (path.rfind("/app/cleanroom/", 0) != 0) {
            continue;
        }
        std::string query = e["example_query"];
        std::string body = e["example_body"];
        if (path == "/app/cleanroom/uploads/chunk" || path == "/app/cleanroom/uploads/commit") {
            EXPECT_TRUE(query.empty() && body.empty()) << path;
            continue;
        }
        Answer a = call(user0_, e["method"], query.empty() ? path : path + "?" + query, body);
        EXPECT_EQ(a.status / 100, 2) << e["method"] << " " << path << "?" << query << ": " << a.raw;
        walked += 1;
    }
    EXPECT_EQ(walked, 12u);
}

}  // namespace
}  // namespace coffer::e2e
