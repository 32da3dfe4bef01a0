// Attacks on the clean-room service (docs/cleanroom.md) by its own parties, on the one-node
// fixture of cleanroom_test_util.h. A test named after a promise fails while an attack breaks
// it; the others pin attacks the service resists today.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "cli/cleanroom_client.h"
#include "crypto/hpke.h"
#include "crypto/sha256.h"
#include "tests/cleanroom_test_util.h"

namespace coffer::e2e {
namespace {

using nlohmann::json;

constexpr size_t kMaxOpenUploads = 16;  // apps/cleanroom_uploads.h
constexpr size_t kMaxChunkPlaintextBytes = 512 * 1024;

// Both banks declare the same column names, so that a join USING a column is possible.
std::string declaration(const std::string& name) {
    json decl = {{"name", name},
                 {"columns",
                  {{{"name", "account"}, {"type", "int"}},
                   {{"name", "grp"}, {"type", "string"}},
                   {{"name", "amount"}, {"type", "decimal"}},
                   {{"name", "note"}, {"type", "string"}}}},
                 {"entity_columns", {"account"}},
                 {"joinable_columns", {"account"}},
                 {"output_columns", {"account", "grp"}}};
    return decl.dump();
}

constexpr const char* kHeader = "account,grp,amount,note\n";

// A SQL analysis document over both banks' datasets.
std::string sql_analysis(const std::string& query, const json& columns_a, const json& columns_b,
                         const json& policy, const json& recipients, const json& triggers) {
    json doc = {{"version", 1},
                {"kind", "sql"},
                {"query", query},
                {"datasets",
                 {{{"name", "acct_a"}, {"columns", columns_a}},
                  {{"name", "acct_b"}, {"columns", columns_b}}}},
                {"output_policy", policy},
                {"recipients", recipients},
                {"triggers", triggers}};
    return doc.dump();
}

class CleanroomAttackTest : public CleanroomFixture {
  protected:
    // Declares acct_a (bank_a) and acct_b (bank_b) and uploads the given rows.
    void declare_and_upload(const std::string& rows_a, const std::string& rows_b) {
        ASSERT_EQ(call(bank_a_, "POST", "/app/cleanroom/datasets", declaration("acct_a")).status,
                  200);
        ASSERT_EQ(call(bank_b_, "POST", "/app/cleanroom/datasets", declaration("acct_b")).status,
                  200);
        Answer a = upload(bank_a_, "acct_a", kHeader + rows_a, 4096);
        ASSERT_EQ(a.status, 200) << a.raw;
        Answer b = upload(bank_b_, "acct_b", kHeader + rows_b, 4096);
        ASSERT_EQ(b.status, 200) << b.raw;
    }

    std::string propose(const Identity& who, const std::string& doc) {
        Answer a = call(who, "POST", "/app/cleanroom/analyses", doc);
        EXPECT_EQ(a.status, 200) << a.raw;
        return a.status == 200 ? a.body.value("id", "") : "";
    }

    void approve_by_both(const std::string& id) {
        for (const Identity* who : {&bank_a_, &bank_b_}) {
            Answer a = call(*who, "POST", "/app/cleanroom/approvals?analysis=" + id, "{}");
            EXPECT_EQ(a.status, 200) << a.raw;
        }
    }

    // Runs `id` as `who` and opens `who`'s result ("" when the run was refused).
    std::string run_and_open(const Identity& who, const std::string& id) {
        Answer run = call(who, "POST", "/app/cleanroom/runs?analysis=" + id);
        if (run.status != 200) {
            return "";
        }
        return open_result(who, run.body.value("run_id", ""));
    }

    bool node_alive() { return call(nullptr, "GET", "/node/state").status == 200; }
};

// --- Findings: these fail while the weakness is there. ---

// The authorizer never sees the columns of a USING or NATURAL join (SQLite 3.40 builds those
// comparisons without name resolution, so no SQLITE_READ is reported): an analysis that
// approves only `account` joins on bank_a's unapproved `note` and bank_b learns which of its
// guesses bank_a holds.
TEST_F(CleanroomAttackTest, JoinUsingAnUnapprovedColumnIsRefused) {
    declare_and_upload("1001,g1,10,alpha\n1002,g1,20,bravo\n", "2001,g1,1,alpha\n2002,g1,1,zulu\n");
    json policy = {{"columns", {"probe", "n"}}};
    std::string using_query =
        "SELECT acct_b.account AS probe, count(*) AS n FROM acct_a JOIN acct_b USING (note) "
        "GROUP BY acct_b.account";
    std::string doc =
        sql_analysis(using_query, {"account"}, {"account"}, policy, {"bank_b"}, {"bank_b"});
    Answer proposed = call(bank_b_, "POST", "/app/cleanroom/analyses", doc);
    if (proposed.status == 200) {
        std::string id = proposed.body.value("id", "");
        approve_by_both(id);
        std::string result = run_and_open(bank_b_, id);
        EXPECT_EQ(result.find("2001"), std::string::npos)
            << "bank_b learned that bank_a holds a note \"alpha\": " << result;
    }
    EXPECT_EQ(proposed.status, 400) << proposed.raw;

    std::string natural = "SELECT count(*) AS n FROM acct_a NATURAL JOIN acct_b";
    Answer natural_proposed = call(bank_b_, "POST", "/app/cleanroom/analyses",
                                   sql_analysis(natural, {"account"}, {"account"},
                                                {{"columns", {"n"}}}, {"bank_b"}, {"bank_b"}));
    EXPECT_EQ(natural_proposed.status, 400) << natural_proposed.raw;
}

// One party opens every upload session the leader keeps (a global bound, not a per-party
// one) and no other party can upload until they idle out ten minutes later.
TEST_F(CleanroomAttackTest, OnePartysOpenUploadsDoNotBlockAnotherPartysUpload) {
    ASSERT_EQ(call(bank_a_, "POST", "/app/cleanroom/datasets", declaration("acct_a")).status, 200);
    ASSERT_EQ(call(bank_b_, "POST", "/app/cleanroom/datasets", declaration("acct_b")).status, 200);
    for (size_t i = 0; i < kMaxOpenUploads; ++i) {
        ASSERT_EQ(call(bank_b_, "POST", "/app/cleanroom/uploads?dataset=acct_b").status, 200);
    }
    Answer victim = call(bank_a_, "POST", "/app/cleanroom/uploads?dataset=acct_a");
    EXPECT_EQ(victim.status, 200) << "bank_b's idle uploads lock bank_a out: " << victim.raw;
}

// Routing trusts each party's own entity values: after approving, bank_b uploads a row with
// bank_a's account number and receives bank_a's per-account total.
TEST_F(CleanroomAttackTest, RoutedRowsDoNotReachAPartyThatOnlyClaimsTheEntity) {
    declare_and_upload("1001,g1,123.25,x\n", "2001,g2,7,y\n");
    std::string query =
        "SELECT account, sum(amount) AS total FROM (SELECT account, amount FROM acct_a UNION ALL "
        "SELECT account, amount FROM acct_b) GROUP BY account";
    json policy = {{"columns", {"account", "total"}}, {"routing_column", "account"}};
    std::string id =
        propose(bank_b_, sql_analysis(query, {"account", "amount"}, {"account", "amount"}, policy,
                                      {"bank_a", "bank_b"}, {"bank_b"}));
    ASSERT_FALSE(id.empty());
    approve_by_both(id);

    Answer claim = upload(bank_b_, "acct_b", std::string(kHeader) + "1001,g2,0,claim\n", 4096);
    ASSERT_EQ(claim.status, 200) << claim.raw;
    std::string result = run_and_open(bank_b_, id);
    EXPECT_EQ(result.find("123.25"), std::string::npos)
        << "bank_b received bank_a's total for account 1001: " << result;
}

// min_entities counts the entities of every party together: bank_b pads bank_a's group of
// two accounts with one fake account of its own (uploaded after the approvals) and the
// group's total, which is bank_a's alone, is released to bank_b.
TEST_F(CleanroomAttackTest, MinEntitiesIsNotMetByAnotherPartysPaddingRows) {
    declare_and_upload("1001,g1,40,x\n1002,g1,2.5,y\n", "2001,g2,7,z\n");
    std::string query =
        "SELECT grp, sum(amount) AS total, count(DISTINCT account) AS _entities FROM (SELECT "
        "account, grp, amount FROM acct_a UNION ALL SELECT account, grp, amount FROM acct_b) "
        "GROUP BY grp";
    json policy = {{"columns", {"grp", "total", "_entities"}}, {"min_entities", 3}};
    std::string id = propose(
        bank_b_, sql_analysis(query, {"account", "grp", "amount"}, {"account", "grp", "amount"},
                              policy, {"bank_a", "bank_b"}, {"bank_b"}));
    ASSERT_FALSE(id.empty());
    approve_by_both(id);
    std::string before = run_and_open(bank_b_, id);
    ASSERT_FALSE(before.empty());
    ASSERT_EQ(before.find("42.5"), std::string::npos) << before;

    Answer pad = upload(bank_b_, "acct_b", std::string(kHeader) + "3001,g1,0,pad\n", 4096);
    ASSERT_EQ(pad.status, 200) << pad.raw;
    std::string after = run_and_open(bank_b_, id);
    EXPECT_EQ(after.find("42.5"), std::string::npos)
        << "bank_b learned the sum of bank_a's two g1 accounts: " << after;
}

// The datasets map is listed whole (at most 10,000 entries) by every proposal and by GET
// /app/cleanroom/datasets, and nothing bounds how many datasets one party declares: 10,001
// declarations by bank_b (about 50 s, nothing can delete them) stop every party's proposals.
TEST_F(CleanroomAttackTest, OnePartysDeclarationsDoNotStopOtherPartiesProposals) {
    constexpr int kFlood = 10001;  // apps/cleanroom_state.h kMaxListedEntries + 1
    ASSERT_EQ(call(bank_a_, "POST", "/app/cleanroom/datasets", declaration("acct_a")).status, 200);
    // Several keep-alive connections: one alone takes minutes.
    constexpr int kFlooders = 4;
    std::vector<std::unique_ptr<net::HttpClient>> flooders;
    for (int i = 0; i < kFlooders; ++i) {
        flooders.push_back(connect_client(*node_, &bank_b_));
        ASSERT_NE(flooders.back(), nullptr);
    }
    std::atomic<int> declared{0};
    std::atomic<bool> refused{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < kFlooders; ++t) {
        threads.emplace_back([&, t] {
            for (int i = t; i < kFlood && !refused.load(); i += kFlooders) {
                json decl = {{"name", "flood_" + std::to_string(i)},
                             {"columns", {{{"name", "a"}, {"type", "int"}}}},
                             {"entity_columns", json::array()},
                             {"joinable_columns", json::array()},
                             {"output_columns", json::array()}};
                auto r = flooders[t]->request("POST", "/app/cleanroom/datasets", decl.dump(),
                                              {{"content-type", "application/json"}});
                if (!r.ok() || r->status != 200) {
                    refused = true;  // a per-party quota stopped the flood
                    return;
                }
                declared += 1;
            }
        });
    }
    for (std::thread& t : threads) {
        t.join();
    }
    settled_last_seqno();
    std::string doc = json{
        {"version", 1},
        {"kind", "sql"},
        {"query", "SELECT count(*) AS n FROM acct_a"},
        {"datasets", {{{"name", "acct_a"}, {"columns", {"account"}}}}},
        {"output_policy", {{"columns", {"n"}}}},
        {"recipients", {"bank_a"}},
        {"triggers",
         {"bank_a"}}}.dump();
    Answer proposed = call(bank_a_, "POST", "/app/cleanroom/analyses", doc);
    EXPECT_EQ(proposed.status, 200)
        << "after " << declared.load() << " declarations by bank_b: " << proposed.raw;
    EXPECT_EQ(call(bank_a_, "GET", "/app/cleanroom/datasets").status, 200);
}

// --- Attacks the service resists. ---

TEST_F(CleanroomAttackTest, SqlTricksOnUnapprovedColumnsAreRefusedAtProposal) {
    declare_and_upload("1001,g1,10,alpha\n", "2001,g1,1,zulu\n");
    const std::vector<std::string> queries = {
        "SELECT count(*) AS n FROM acct_a WHERE note = 'alpha'",
        "SELECT count(*) AS n FROM acct_a WHERE account IN (SELECT account FROM acct_a WHERE "
        "length(note) > 3)",
        "SELECT row_number() OVER (ORDER BY note) AS n FROM acct_a",
        "WITH t AS (SELECT note FROM acct_a) SELECT count(*) AS n FROM t",
        "SELECT typeof(note) AS n FROM acct_a",
        "SELECT length(note) AS n FROM acct_a",
        "SELECT account AS n FROM acct_a ORDER BY note",
        "SELECT count(*) AS n FROM acct_a GROUP BY note",
        "SELECT count(*) AS n FROM acct_a a JOIN acct_b b ON a.note = b.note",
        "SELECT max(rowid) AS n FROM acct_a",
        "SELECT count(*) AS n FROM acct_a WHERE acct_a.amount > 5",
        "SELECT count(*) AS n FROM pragma_table_info('acct_a')",
        "SELECT count(*) AS n FROM sqlite_schema",
        "SELECT count(*) AS n FROM acct_a, (SELECT * FROM acct_b)",
        "SELECT sum(1) FILTER (WHERE note > 'm') AS n FROM acct_a",
    };
    for (const std::string& q : queries) {
        Answer a = call(bank_b_, "POST", "/app/cleanroom/analyses",
                        sql_analysis(q, {"account"}, {"account"}, {{"columns", {"n"}}}, {"bank_b"},
                                     {"bank_b"}));
        EXPECT_EQ(a.status, 400) << q << ": " << a.raw;
        EXPECT_EQ(a.raw.find("alpha"), std::string::npos) << q;
    }
    EXPECT_TRUE(node_alive());
}

TEST_F(CleanroomAttackTest, OutputOfANonOutputColumnCopyIsRefused) {
    declare_and_upload("1001,g1,10,alpha\n", "2001,g1,1,zulu\n");
    Answer a = call(bank_b_, "POST", "/app/cleanroom/analyses",
                    sql_analysis("SELECT amount AS n FROM acct_a", {"account", "amount"},
                                 {"account"}, {{"columns", {"n"}}}, {"bank_b"}, {"bank_b"}));
    EXPECT_EQ(a.status, 400) << a.raw;
    Answer b = call(bank_b_, "POST", "/app/cleanroom/analyses",
                    sql_analysis("SELECT account, grp FROM acct_a", {"account", "grp"}, {"account"},
                                 {{"columns", {"account"}}}, {"bank_b"}, {"bank_b"}));
    EXPECT_EQ(b.status, 400) << "grp is not in the policy's allow-list: " << b.raw;
}

TEST_F(CleanroomAttackTest, ChunkReplaysGapsAndBadSizesAreRefused) {
    ASSERT_EQ(call(bank_a_, "POST", "/app/cleanroom/datasets", declaration("acct_a")).status, 200);
    Bytes key = service_key();
    Answer started = call(bank_a_, "POST", "/app/cleanroom/uploads?dataset=acct_a");
    ASSERT_EQ(started.status, 200);
    std::string id = started.body["upload_id"];
    std::string csv = std::string(kHeader) + "1001,g1,10,x\n";
    Bytes piece = to_bytes(csv);

    EXPECT_EQ(send_chunk(bank_a_, id, 1, piece, key, id + "/1").status, 400) << "gap";
    EXPECT_EQ(send_chunk(bank_a_, id, 0, piece, key, id + "/1").status, 400) << "aad index";
    EXPECT_EQ(send_chunk(bank_a_, id, 0, piece, key, id + "/0").status, 200);
    EXPECT_EQ(send_chunk(bank_a_, id, 0, piece, key, id + "/0").status, 400) << "replay";
    Bytes big(kMaxChunkPlaintextBytes + 1, 'a');
    Answer huge = send_chunk(bank_a_, id, 1, big, key, id + "/1");
    EXPECT_TRUE(huge.status == 400 || huge.status == 413) << huge.raw;
    Answer shorty =
        call(bank_a_, "POST", "/app/cleanroom/uploads/chunk?upload=" + id + "&index=1", "short");
    EXPECT_EQ(shorty.status, 400);
    for (const char* index : {"-1", "+1", "1x", "", "99999999999999999999999"}) {
        Answer bad =
            call(bank_a_, "POST", "/app/cleanroom/uploads/chunk?upload=" + id + "&index=" + index,
                 std::string(64, 'z'));
        EXPECT_EQ(bad.status, 400) << index << ": " << bad.raw;
    }

    json commit = {{"chunks", 1}, {"sha256", to_hex(crypto::sha256(as_bytes(csv)))}};
    Answer done =
        call(bank_a_, "POST", "/app/cleanroom/uploads/commit?upload=" + id, commit.dump());
    ASSERT_EQ(done.status, 200) << done.raw;
    EXPECT_EQ(done.body["rows"], 1);
    EXPECT_EQ(done.body["total_rows"], 1);
}

TEST_F(CleanroomAttackTest, UploadsToAnotherPartysDatasetOrSessionAreRefused) {
    ASSERT_EQ(call(bank_a_, "POST", "/app/cleanroom/datasets", declaration("acct_a")).status, 200);
    EXPECT_EQ(call(bank_b_, "POST", "/app/cleanroom/uploads?dataset=acct_a").status, 403);
    EXPECT_EQ(call(viewer_, "POST", "/app/cleanroom/uploads?dataset=acct_a").status, 403);
    EXPECT_EQ(call(twin_, "POST", "/app/cleanroom/uploads?dataset=acct_a").status, 403);
    EXPECT_EQ(call(nullptr, "POST", "/app/cleanroom/uploads?dataset=acct_a").status / 100, 4);

    Bytes key = service_key();
    Answer started = call(bank_a_, "POST", "/app/cleanroom/uploads?dataset=acct_a");
    ASSERT_EQ(started.status, 200);
    std::string id = started.body["upload_id"];
    std::string csv = std::string(kHeader) + "1001,g1,10,x\n";
    EXPECT_EQ(send_chunk(bank_b_, id, 0, to_bytes(csv), key, id + "/0").status, 404);
    json commit = {{"chunks", 0}, {"sha256", to_hex(crypto::sha256(as_bytes("")))}};
    EXPECT_EQ(
        call(bank_b_, "POST", "/app/cleanroom/uploads/commit?upload=" + id, commit.dump()).status,
        404);

    // bank_a's session survived the intrusions.
    EXPECT_EQ(send_chunk(bank_a_, id, 0, to_bytes(csv), key, id + "/0").status, 200);
    commit = {{"chunks", 1}, {"sha256", to_hex(crypto::sha256(as_bytes(csv)))}};
    EXPECT_EQ(
        call(bank_a_, "POST", "/app/cleanroom/uploads/commit?upload=" + id, commit.dump()).status,
        200);
}

TEST_F(CleanroomAttackTest, CommitsWithWrongCountsOrEmptyUploadsStoreNothing) {
    ASSERT_EQ(call(bank_a_, "POST", "/app/cleanroom/datasets", declaration("acct_a")).status, 200);
    Bytes key = service_key();
    std::string csv = std::string(kHeader) + "1001,g1,10,x\n";
    for (const json& commit :
         {json{{"chunks", 2}, {"sha256", to_hex(crypto::sha256(as_bytes(csv)))}},
          json{{"chunks", 0}, {"sha256", to_hex(crypto::sha256(as_bytes(csv)))}},
          json{{"chunks", -1}, {"sha256", "00"}}, json{{"chunks", 1.5}, {"sha256", "00"}},
          json{{"chunks", 1}, {"sha256", 7}}, json{{"chunks", 1}},
          json{{"chunks", 1}, {"sha256", "x"}, {"extra", 1}}}) {
        Answer started = call(bank_a_, "POST", "/app/cleanroom/uploads?dataset=acct_a");
        ASSERT_EQ(started.status, 200);
        std::string id = started.body["upload_id"];
        ASSERT_EQ(send_chunk(bank_a_, id, 0, to_bytes(csv), key, id + "/0").status, 200);
        Answer done =
            call(bank_a_, "POST", "/app/cleanroom/uploads/commit?upload=" + id, commit.dump());
        EXPECT_EQ(done.status, 400) << commit.dump() << ": " << done.raw;
    }
    Answer empty = upload(bank_a_, "acct_a", "", 4096);
    EXPECT_EQ(empty.status, 400) << empty.raw;
    Answer datasets = call(bank_a_, "GET", "/app/cleanroom/datasets");
    ASSERT_EQ(datasets.status, 200);
    EXPECT_EQ(datasets.body["datasets"][0]["version"], 0) << datasets.raw;
    EXPECT_TRUE(node_alive());
}

TEST_F(CleanroomAttackTest, MalformedBodiesAreRefusedEverywhereWithoutCrashing) {
    ASSERT_EQ(call(bank_a_, "POST", "/app/cleanroom/datasets", declaration("acct_a")).status, 200);
    const std::vector<std::string> bodies = {"",
                                             "{",
                                             "[]",
                                             "null",
                                             "\"x\"",
                                             "{\"max_runs\": 0}",
                                             "{\"max_runs\": -1}",
                                             "{\"max_runs\": 1e300}",
                                             "{\"max_runs\": \"1\"}",
                                             std::string(200, '['),
                                             "{\"a\":1,\"a\":2}",
                                             "\xff\xfe",
                                             std::string("{\"x\":\"\0\"}", 10)};
    const std::vector<std::string> targets = {"/app/cleanroom/datasets",
                                              "/app/cleanroom/analyses",
                                              "/app/cleanroom/approvals?analysis=00",
                                              "/app/cleanroom/revocations?analysis=00",
                                              "/app/cleanroom/runs?analysis=00",
                                              "/app/cleanroom/uploads/commit?upload=00",
                                              "/app/cleanroom/uploads/chunk?upload=00&index=0",
                                              "/app/cleanroom/uploads?dataset=acct_a%00"};
    for (const std::string& target : targets) {
        for (const std::string& body : bodies) {
            Answer a = call(bank_a_, "POST", target, body);
            EXPECT_GE(a.status, 400) << target << " " << body;
            EXPECT_LT(a.status, 500) << target << " " << body << ": " << a.raw;
        }
    }
    EXPECT_TRUE(node_alive());
}

TEST_F(CleanroomAttackTest, AnalysisIdsAreExactAndChangedBytesNeedNewApprovals) {
    declare_and_upload("1001,g1,10,x\n", "2001,g1,1,y\n");
    std::string doc = sql_analysis("SELECT count(*) AS n FROM acct_a, acct_b", {"account"},
                                   {"account"}, {{"columns", {"n"}}}, {"bank_b"}, {"bank_b"});
    std::string id = propose(bank_b_, doc);
    ASSERT_EQ(id.size(), 64u);
    approve_by_both(id);

    std::string upper = id;
    for (char& c : upper) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    EXPECT_EQ(call(bank_b_, "POST", "/app/cleanroom/runs?analysis=" + upper).status, 404);
    EXPECT_EQ(call(bank_b_, "GET", "/app/cleanroom/analysis?id=" + upper).status, 404);
    EXPECT_EQ(call(bank_a_, "POST", "/app/cleanroom/approvals?analysis=" + upper, "{}").status,
              404);

    // The same bytes from another party: the same id and the same approvals.
    Answer again = call(bank_a_, "POST", "/app/cleanroom/analyses", doc);
    ASSERT_EQ(again.status, 200);
    EXPECT_EQ(again.body["id"], id);
    Answer one = call(bank_a_, "GET", "/app/cleanroom/analysis?id=" + id);
    EXPECT_EQ(one.body["proposer"], "bank_b");
    EXPECT_TRUE(one.body["runnable"].get<bool>()) << one.raw;

    // One more space: a new analysis that nobody approved.
    std::string spaced = propose(bank_b_, doc + " ");
    ASSERT_FALSE(spaced.empty());
    EXPECT_NE(spaced, id);
    EXPECT_EQ(call(bank_b_, "POST", "/app/cleanroom/runs?analysis=" + spaced).status, 403);
}

TEST_F(CleanroomAttackTest, ResultsGoOnlyToTheirRecipientAfterTheRun) {
    declare_and_upload("1001,g1,10,x\n", "2001,g1,1,y\n");
    std::string doc = sql_analysis("SELECT count(*) AS n FROM acct_a, acct_b", {"account"},
                                   {"account"}, {{"columns", {"n"}}}, {"bank_a"}, {"bank_b"});
    std::string id = propose(bank_b_, doc);
    ASSERT_FALSE(id.empty());
    EXPECT_EQ(call(bank_a_, "GET", "/app/cleanroom/results?run=run-0000000001").status, 404);
    EXPECT_EQ(call(bank_b_, "POST", "/app/cleanroom/runs?analysis=" + id).status, 403);
    approve_by_both(id);
    EXPECT_EQ(call(bank_a_, "POST", "/app/cleanroom/runs?analysis=" + id).status, 403)
        << "bank_a is a recipient, not a trigger";
    Answer run = call(bank_b_, "POST", "/app/cleanroom/runs?analysis=" + id);
    ASSERT_EQ(run.status, 200) << run.raw;
    std::string run_id = run.body["run_id"];

    EXPECT_EQ(call(bank_b_, "GET", "/app/cleanroom/results?run=" + run_id).status, 404);
    EXPECT_EQ(call(bank_c_, "GET", "/app/cleanroom/results?run=" + run_id).status, 404);
    EXPECT_EQ(call(viewer_, "GET", "/app/cleanroom/results?run=" + run_id).status, 403);
    EXPECT_EQ(call(twin_, "GET", "/app/cleanroom/results?run=" + run_id).status, 403);
    EXPECT_EQ(call(nullptr, "GET", "/app/cleanroom/results?run=" + run_id).status / 100, 4);
    for (const char* bad : {"run-0000000001/bank_a", "RUN-0000000001", "run-1", "../x"}) {
        EXPECT_EQ(call(bank_b_, "GET", std::string("/app/cleanroom/results?run=") + bad).status,
                  400)
            << bad;
    }
    std::string opened = open_result(bank_a_, run_id);
    EXPECT_NE(opened.find("\"rows\":[[1]]"), std::string::npos) << opened;

    Answer runs = call(bank_c_, "GET", "/app/cleanroom/runs");
    ASSERT_EQ(runs.status, 200);
    EXPECT_TRUE(runs.body["runs"].empty()) << "bank_c takes no part: " << runs.raw;
}

TEST_F(CleanroomAttackTest, AmbiguousOrKeylessNamesAreNeitherPartiesNorRecipients) {
    EXPECT_EQ(call(twin_, "POST", "/app/cleanroom/datasets", declaration("acct_t")).status, 403);
    EXPECT_EQ(call(viewer_, "POST", "/app/cleanroom/datasets", declaration("acct_v")).status, 403);
    EXPECT_EQ(call(member_, "POST", "/app/cleanroom/datasets", declaration("acct_m")).status / 100,
              4);
    declare_and_upload("1001,g1,10,x\n", "2001,g1,1,y\n");
    for (const char* who : {"twin", "viewer", "member0", "nobody", "BANK_A", "bank_a "}) {
        Answer a = call(bank_b_, "POST", "/app/cleanroom/analyses",
                        sql_analysis("SELECT count(*) AS n FROM acct_a", {"account"}, {"account"},
                                     {{"columns", {"n"}}}, {who}, {"bank_b"}));
        EXPECT_EQ(a.status, 400) << who << ": " << a.raw;
    }
}

TEST_F(CleanroomAttackTest, ConcurrentRunsCannotShareTheLastRunOfACap) {
    declare_and_upload("1001,g1,10,x\n", "2001,g1,1,y\n");
    // Long enough (a few hundred ms) for the runs to overlap.
    std::string query =
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 400000) "
        "SELECT count(*) AS n FROM c, acct_a, acct_b";
    std::string id = propose(bank_b_, sql_analysis(query, {"account"}, {"account"},
                                                   {{"columns", {"n"}}}, {"bank_b"}, {"bank_b"}));
    ASSERT_FALSE(id.empty());
    EXPECT_EQ(call(bank_a_, "POST", "/app/cleanroom/approvals?analysis=" + id, R"({"max_runs": 1})")
                  .status,
              200);
    EXPECT_EQ(call(bank_b_, "POST", "/app/cleanroom/approvals?analysis=" + id, "{}").status, 200);

    constexpr int kRacers = 4;
    std::vector<std::unique_ptr<net::HttpClient>> clients;
    for (int i = 0; i < kRacers; ++i) {
        clients.push_back(connect_client(*node_, &bank_b_));
        ASSERT_NE(clients.back(), nullptr);
    }
    std::atomic<int> succeeded{0};
    std::atomic<int> answered{0};
    std::vector<std::thread> racers;
    for (int i = 0; i < kRacers; ++i) {
        racers.emplace_back([&, i] {
            auto r = clients[i]->request("POST", "/app/cleanroom/runs?analysis=" + id, "",
                                         {{"x-coffer-wait-ms", "5000"}});
            if (r.ok()) {
                answered += 1;
                succeeded += r->status == 200 ? 1 : 0;
            }
        });
    }
    for (std::thread& t : racers) {
        t.join();
    }
    EXPECT_EQ(answered.load(), kRacers);
    EXPECT_EQ(succeeded.load(), 1);
    Answer one = call(bank_b_, "GET", "/app/cleanroom/analysis?id=" + id);
    EXPECT_EQ(one.body["runs"], 1) << one.raw;
    Answer runs = call(bank_b_, "GET", "/app/cleanroom/runs?analysis=" + id);
    EXPECT_EQ(runs.body["runs"].size(), 1u) << runs.raw;
}

// A string value of one party (a group name) reaches another party's terminal through
// `coffer cleanroom fetch`: control characters must not pass through as they are (an escape
// sequence can rewrite the screen or set the clipboard).
TEST(CleanroomAttackCli, ResultTableDoesNotPassTerminalEscapes) {
    json result = {{"version", 1},
                   {"analysis_id", std::string(64, 'a')},
                   {"recipient", "bank_a"},
                   {"kind", "sql"},
                   {"columns", {"grp", "total"}},
                   {"aggregates", json::object()},
                   {"rows", {{"\x1b]52;c;cHduZWQ=\x07\x1b[2Jg1", 1}}}};
    std::string text = cli::format_result_document(result);
    EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
    EXPECT_EQ(text.find('\x07'), std::string::npos) << text;
}

// "Never fails: unexpected shapes are printed as JSON" (cli/cleanroom_client.h), also for a
// row that is not an array.
TEST(CleanroomAttackCli, ResultTableSurvivesARowThatIsNotAnArray) {
    json result = {{"version", 1},
                   {"analysis_id", std::string(64, 'a')},
                   {"recipient", "bank_a"},
                   {"kind", "sql"},
                   {"columns", {"n"}},
                   {"aggregates", json::object()},
                   {"rows", {std::string(40, 'x')}}};
    std::string text;
    EXPECT_NO_THROW(text = cli::format_result_document(result));
    EXPECT_NE(text.find(std::string(40, 'x')), std::string::npos) << text;
}

}  // namespace
}  // namespace coffer::e2e
