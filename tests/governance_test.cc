// Governance end to end, on a real node process with a consortium of three members:
// proposals, ballots and withdrawals as signed requests (by hand and through `coffer
// member`), the default constitution's majority, replacing the constitution, and what an
// attacker holding a captured request or a member's TLS session can and cannot do.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "crypto/ecdsa.h"
#include "crypto/x509.h"
#include "gov/recovery.h"
#include "gov/signed_request.h"
#include "tests/network_fixture.h"

namespace coffer::e2e {
namespace {

using nlohmann::json;

// The P-384 group order n, big-endian (SEC 2 section 2.5.1, FIPS 186-4 D.1.2.4).
constexpr std::string_view kP384OrderHex =
    "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc529"
    "73";

// Bound on an election after the leader is killed, and on a commit.
constexpr int kFailoverWaitMs = 15000;

struct Answer {
    int status = 0;
    json body;
    std::string message() const {
        return body.is_object() && body.contains("error") ? body["error"].value("message", "")
                                                          : std::string();
    }
};

uint64_t now_s() {
    return static_cast<uint64_t>(std::time(nullptr));
}

// The JSON document inside a command's output (the CLI prints one pretty JSON object).
json json_in(const std::string& output) {
    size_t open = output.find('{');
    size_t close = output.rfind('}');
    if (open == std::string::npos || close == std::string::npos || close < open) {
        return json();
    }
    return json::parse(output.substr(open, close - open + 1), nullptr, false);
}

// s -> n - s on the last 48 bytes of a COSE_Sign1 message (its signature's s half).
Bytes flip_s(Bytes cose) {
    auto n = from_hex(kP384OrderHex);
    EXPECT_TRUE(n.ok());
    size_t base = cose.size() - 48;
    int borrow = 0;
    for (size_t i = 48; i-- > 0;) {
        int d = int{(*n)[i]} - int{cose[base + i]} - borrow;
        borrow = d < 0 ? 1 : 0;
        cose[base + i] = static_cast<uint8_t>(d + (borrow != 0 ? 256 : 0));
    }
    EXPECT_EQ(borrow, 0);
    return cose;
}

// POSTs a signed request to `path` with the caller's TLS identity, waiting for its commit.
Answer post_signed(net::HttpClient& c, const std::string& path, const Bytes& body) {
    auto r = c.request("POST", path, to_string(body),
                       {{"content-type", "application/cose"}, {"x-coffer-wait-ms", "5000"}});
    if (!r.ok()) {
        ADD_FAILURE() << path << ": " << r.status().to_string();
        return {};
    }
    return {r->status, json::parse(r->body, nullptr, false)};
}

class GovernanceTest : public ::testing::Test {
  protected:
    // Whether SetUp opens the new service (docs/governance.md, "Service states").
    virtual bool open_at_start() const { return true; }

    void SetUp() override {
        for (int i = 0; i < 3; ++i) {
            members_.push_back(keygen(dir_.path(), "member" + std::to_string(i)));
            ASSERT_FALSE(members_.back().cert_pem.empty());
        }
        user_ = keygen(dir_.path(), "user0");
        newcomer_ = keygen(dir_.path(), "newcomer");
        json member_list = json::array();
        for (const Identity& m : members_) {
            member_list.push_back(
                {{"certificate", m.cert_path}, {"encryption_public_key", m.enc_pub_path}});
        }
        std::string config_path = dir_.path() + "/config.json";
        write_text_file(
            config_path,
            make_config(dir_.path(), members_[0], {user_}, {{"members", member_list}}).dump(2));
        node_ = std::make_unique<NodeProcess>(config_path, dir_.path() + "/data",
                                              dir_.path() + "/node.log");
        std::string why;
        ASSERT_TRUE(node_->start(why)) << why;
        service_cert_path_ = dir_.path() + "/data/service_cert.pem";
        auto service = crypto::Certificate::from_pem(node_->service_cert_pem());
        ASSERT_TRUE(service.ok());
        service_fp_ = from_hex(service->fingerprint_sha256_hex()).value();
        if (open_at_start()) {
            ASSERT_TRUE(open_service(node_->port(), node_->service_cert_pem(), members_, why))
                << why;
        }
    }

    void TearDown() override {
        if (HasFailure()) {
            std::string log = read_text_file(dir_.path() + "/node.log");
            std::cerr << "node log (tail):\n"
                      << log.substr(log.size() > 4000 ? log.size() - 4000 : 0);
        }
    }

    // A request of `type` signed by `m` for this service.
    Bytes sign(const Identity& m, const std::string& type, const json& payload,
               std::optional<std::string> proposal_id = std::nullopt,
               uint64_t created_at = now_s()) {
        SignOptions o{type, payload, std::move(proposal_id), created_at, ""};
        return sign_request_as(m, service_fp_, o);
    }

    // POSTs `body` as `who` (TLS identity), waiting for the commit.
    Answer post(const Identity* who, const std::string& path, const Bytes& body) {
        auto c = connect_client(*node_, who);
        if (c == nullptr) {
            return {};
        }
        return post_signed(*c, path, body);
    }

    Answer get(const std::string& target) {
        auto c = connect_client(*node_, nullptr);
        auto r = c == nullptr ? Result<net::HttpResponse>(error(Errc::kIo, "no connection"))
                              : c->request("GET", target);
        if (!r.ok()) {
            ADD_FAILURE() << target << ": " << r.status().to_string();
            return {};
        }
        return {r->status, json::parse(r->body, nullptr, false)};
    }

    Answer propose(const Identity& m, const json& actions) {
        return post(&m, "/gov/proposals", sign(m, "proposal", {{"actions", actions}}));
    }
    Answer vote(const Identity& m, const std::string& id, bool yes) {
        return post(&m, "/gov/ballots", sign(m, "ballot", {{"vote", yes}}, id));
    }
    Answer withdraw(const Identity& m, const std::string& id) {
        return post(&m, "/gov/withdrawals", sign(m, "withdrawal", json::object(), id));
    }

    // `coffer member ARGS... --service ... --service-cert ... --cert ... --key ...`.
    CommandResult member_cli(const Identity& m, std::vector<std::string> args) {
        args.insert(args.begin(), "member");
        std::vector<std::string> connection = {
            "--service",      "127.0.0.1:" + std::to_string(node_->port()),
            "--service-cert", service_cert_path_,
            "--cert",         m.cert_path,
            "--key",          m.key_path};
        args.insert(args.end(), connection.begin(), connection.end());
        return run_coffer(args);
    }

    // The state of proposal `id` as GET /gov/proposal reports it.
    std::string state_of(const std::string& id) {
        Answer a = get("/gov/proposal?id=" + id);
        EXPECT_EQ(a.status, 200) << a.body.dump();
        return a.body.is_object() ? a.body.value("state", "") : "";
    }

    // POSTs a log message as `who`; the answer (status 0 when the request failed).
    Answer log_post(const Identity& who) {
        auto c = connect_client(*node_, &who);
        if (c == nullptr) {
            return {};
        }
        // Answered once committed, so that a read right after it finds the message.
        auto r = c->request("POST", "/app/log/private", R"({"id": 7, "msg": "hello"})",
                            {{"content-type", "application/json"}, {"x-coffer-wait-ms", "5000"}});
        if (!r.ok()) {
            return {};
        }
        return {r->status, json::parse(r->body, nullptr, false)};
    }
    // The same; the HTTP status.
    int log_write(const Identity& who) { return log_post(who).status; }

    json set_user_action(const Identity& u) {
        return json::array({{{"name", "set_user"}, {"args", {{"cert", u.cert_pem}}}}});
    }
    json remove_user_action(const Identity& u) {
        return json::array(
            {{{"name", "remove_user"}, {"args", {{"fingerprint", fingerprint_of(u.cert_pem)}}}}});
    }

    // Proposes `actions` as member 0 and has members 0 and 1 vote yes; the final answer.
    // A `description` keeps the request apart from an identical one signed within the same
    // second, which would be refused as a replay.
    Answer pass(const json& actions, const std::string& description = "") {
        json payload = {{"actions", actions}};
        if (!description.empty()) {
            payload["description"] = description;
        }
        Answer p = post(&members_[0], "/gov/proposals", sign(members_[0], "proposal", payload));
        EXPECT_EQ(p.status, 200) << p.body.dump();
        std::string id = p.body.value("proposal_id", "");
        EXPECT_EQ(vote(members_[0], id, true).body.value("state", ""), "open");
        return vote(members_[1], id, true);
    }

    TempDir dir_;
    std::vector<Identity> members_;
    Identity user_;
    Identity newcomer_;
    std::unique_ptr<NodeProcess> node_;
    std::string service_cert_path_;
    Bytes service_fp_;
};

TEST_F(GovernanceTest, MajorityAddsAUserAndRemovalRevokesAccess) {
    EXPECT_EQ(log_write(newcomer_), 401);

    // Proposed and voted through the CLI: open after one yes, accepted after two.
    CommandResult proposed = member_cli(members_[0], {"propose", "--action", "set_user", "--args",
                                                      json{{"cert", newcomer_.cert_pem}}.dump()});
    ASSERT_EQ(proposed.exit_code, 0) << proposed.output;
    json answer = json_in(proposed.output);
    std::string id = answer.value("proposal_id", "");
    ASSERT_FALSE(id.empty()) << proposed.output;
    EXPECT_EQ(answer.value("state", ""), "open");

    CommandResult first = member_cli(members_[0], {"vote", "--proposal", id, "--yes"});
    ASSERT_EQ(first.exit_code, 0) << first.output;
    EXPECT_EQ(json_in(first.output).value("state", ""), "open");
    EXPECT_EQ(state_of(id), "open");
    CommandResult second = member_cli(members_[1], {"vote", "--proposal", id, "--yes"});
    ASSERT_EQ(second.exit_code, 0) << second.output;
    EXPECT_EQ(json_in(second.output).value("state", ""), "accepted");

    Answer shown = get("/gov/proposal?id=" + id);
    EXPECT_EQ(shown.body.value("state", ""), "accepted");
    EXPECT_EQ(shown.body["ballots"].size(), 2u) << shown.body.dump();
    EXPECT_EQ(shown.body["final_votes"].size(), 2u) << shown.body.dump();
    EXPECT_EQ(log_write(newcomer_), 200);

    CommandResult listed = member_cli(members_[2], {"list"});
    ASSERT_EQ(listed.exit_code, 0) << listed.output;
    EXPECT_NE(listed.output.find(id), std::string::npos);
    CommandResult shown_cli = member_cli(members_[2], {"show", "--proposal", id});
    ASSERT_EQ(shown_cli.exit_code, 0) << shown_cli.output;
    EXPECT_EQ(json_in(shown_cli.output).value("state", ""), "accepted");

    // Removed again: its certificate is refused as removed (403, see docs/endpoints.md), on
    // every endpoint that needs a certificate, and it is no clean-room party any more.
    Answer removed = pass(remove_user_action(newcomer_));
    EXPECT_EQ(removed.body.value("state", ""), "accepted") << removed.body.dump();
    Answer refused = log_post(newcomer_);
    EXPECT_EQ(refused.status, 403) << refused.body.dump();
    EXPECT_EQ(refused.message(), "this user was removed by governance");
    auto removed_client = connect_client(*node_, &newcomer_);
    ASSERT_NE(removed_client, nullptr);
    auto receipt = removed_client->request("GET", "/app/receipt?transaction_id=2.1");
    ASSERT_TRUE(receipt.ok());
    EXPECT_EQ(receipt->status, 403) << receipt->body;
    EXPECT_EQ(log_write(user_), 200);

    // Set again, it is a user like before.
    Answer again = pass(set_user_action(newcomer_), "the removed user is set again");
    EXPECT_EQ(again.body.value("state", ""), "accepted") << again.body.dump();
    EXPECT_EQ(log_write(newcomer_), 200);

    // The history is in the public part of the ledger, readable offline.
    EXPECT_EQ(node_->terminate(), 0);
    CommandResult shown_ledger = run_coffer(
        {"ledger", "show", dir_.path() + "/data/ledger", "--service-cert", service_cert_path_});
    ASSERT_EQ(shown_ledger.exit_code, 0) << shown_ledger.output.substr(0, 2000);
    for (const char* map : {"public:coffer.gov.constitution", "public:coffer.gov.proposals",
                            "public:coffer.gov.ballots", "public:coffer.gov.request_digests"}) {
        EXPECT_NE(shown_ledger.output.find(map), std::string::npos) << map;
    }
}

TEST_F(GovernanceTest, CapturedAndForgedRequestsAreRefused) {
    Bytes request = sign(members_[0], "proposal", {{"actions", set_user_action(newcomer_)}});
    Answer first = post(&members_[0], "/gov/proposals", request);
    ASSERT_EQ(first.status, 200) << first.body.dump();
    std::string id = first.body.value("proposal_id", "");

    // Byte for byte again, and with its signature re-encoded (s -> n - s).
    Answer replayed = post(&members_[0], "/gov/proposals", request);
    EXPECT_EQ(replayed.status, 409);
    EXPECT_EQ(replayed.message(), "request replayed");
    Answer flipped = post(&members_[0], "/gov/proposals", flip_s(request));
    EXPECT_TRUE(flipped.status == 401 || flipped.status == 409) << flipped.body.dump();

    // Another member's TLS session cannot carry member 0's signed ballot: the signature is
    // checked with the key of the TLS caller's certificate.
    Bytes ballot = sign(members_[0], "ballot", {{"vote", true}}, id);
    Answer carried = post(&members_[1], "/gov/ballots", ballot);
    EXPECT_EQ(carried.status, 401) << carried.body.dump();
    // Nor can member 1 sign with its own key and claim member 0's kid.
    Answer forged_kid =
        post(&members_[1], "/gov/ballots",
             sign_request_as(
                 members_[1], service_fp_,
                 {"ballot", {{"vote", true}}, id, now_s(), fingerprint_of(members_[0].cert_pem)}));
    EXPECT_EQ(forged_kid.status, 403) << forged_kid.body.dump();
    // A user cannot post governance requests at all.
    EXPECT_EQ(post(&user_, "/gov/ballots", ballot).status, 403);
    // Nor may a request be stale, for another service, or of another type.
    Answer stale = post(&members_[0], "/gov/ballots",
                        sign(members_[0], "ballot", {{"vote", true}}, id, now_s() - 1000));
    EXPECT_EQ(stale.status, 400);
    EXPECT_NE(stale.message().find("stale"), std::string::npos) << stale.message();
    EXPECT_EQ(post(&members_[0], "/gov/proposals", ballot).status, 400);
    Bytes saved_fp = service_fp_;
    service_fp_[0] ^= 1;
    EXPECT_EQ(post(&members_[0], "/gov/ballots", sign(members_[0], "ballot", {{"vote", true}}, id))
                  .status,
              403);
    service_fp_ = saved_fp;
    // Garbage is refused before anything else.
    EXPECT_EQ(post(&members_[0], "/gov/ballots", Bytes{0x6e, 0x6f, 0x74}).status, 400);

    // One vote per member, even re-signed later; none on proposals that do not exist.
    EXPECT_EQ(post(&members_[0], "/gov/ballots", ballot).body.value("state", ""), "open");
    Answer twice = vote(members_[0], id, false);
    EXPECT_EQ(twice.status, 409);
    EXPECT_NE(twice.message().find("already voted"), std::string::npos);
    EXPECT_EQ(vote(members_[1], std::string(64, 'a'), true).status, 404);

    // Only the proposer withdraws; a withdrawn proposal takes no votes and no withdrawal.
    EXPECT_EQ(withdraw(members_[1], id).status, 403);
    Answer withdrawn = withdraw(members_[0], id);
    EXPECT_EQ(withdrawn.status, 200) << withdrawn.body.dump();
    EXPECT_EQ(withdrawn.body.value("state", ""), "withdrawn");
    Answer late = vote(members_[1], id, true);
    EXPECT_EQ(late.status, 409);
    EXPECT_NE(late.message().find("withdrawn"), std::string::npos) << late.message();
    EXPECT_EQ(withdraw(members_[0], id).status, 409);
    EXPECT_EQ(state_of(id), "withdrawn");
    EXPECT_EQ(log_write(newcomer_), 401);

    // The replay record is in the ledger: it survives a restart.
    EXPECT_EQ(node_->terminate(), 0);
    std::string why;
    ASSERT_TRUE(node_->start(why)) << why;
    EXPECT_EQ(post(&members_[0], "/gov/proposals", request).message(), "request replayed");
    EXPECT_EQ(post(&members_[1], "/gov/ballots", sign(members_[1], "ballot", {{"vote", true}}, id))
                  .status,
              409);
}

TEST_F(GovernanceTest, BadProposalsAreRefusedAndFailedOnesWriteNothing) {
    Answer bad_arg = propose(
        members_[0], json::array({{{"name", "set_user"}, {"args", {{"cert", "not a PEM"}}}}}));
    EXPECT_EQ(bad_arg.status, 400);
    EXPECT_NE(bad_arg.message().find("set_user"), std::string::npos) << bad_arg.message();
    Answer unknown = propose(members_[0], json::array({{{"name", "make_me_admin"}}}));
    EXPECT_EQ(unknown.status, 400);
    EXPECT_NE(unknown.message().find("make_me_admin"), std::string::npos) << unknown.message();
    EXPECT_EQ(propose(members_[0], json::array()).status, 400);

    // The same through `coffer member propose --proposal FILE`: refused, exit code 1.
    std::string file = dir_.path() + "/proposal.json";
    write_text_file(file, json{{"actions", json::array({{{"name", "make_me_admin"}}})}}.dump());
    CommandResult refused = member_cli(members_[0], {"propose", "--proposal", file});
    EXPECT_EQ(refused.exit_code, 1) << refused.output;
    EXPECT_NE(refused.output.find("unknown action make_me_admin"), std::string::npos)
        << refused.output;
    write_text_file(
        file,
        json{{"actions", set_user_action(newcomer_)}, {"description", "withdrawn at once"}}.dump());
    CommandResult proposed = member_cli(members_[0], {"propose", "--proposal", file});
    ASSERT_EQ(proposed.exit_code, 0) << proposed.output;
    std::string id = json_in(proposed.output).value("proposal_id", "");
    CommandResult withdrawn = member_cli(members_[0], {"withdraw", "--proposal", id});
    ASSERT_EQ(withdrawn.exit_code, 0) << withdrawn.output;
    EXPECT_EQ(json_in(withdrawn.output).value("state", ""), "withdrawn");
    EXPECT_EQ(get("/gov/proposal?id=" + id).body.value("description", ""), "withdrawn at once");

    // An effect the node refuses fails the proposal, and the other actions' writes are
    // discarded with it: two rekeys in one proposal would both make version 2.
    json actions = set_user_action(newcomer_);
    actions.push_back({{"name", "rekey_ledger"}, {"args", json::object()}});
    actions.push_back({{"name", "rekey_ledger"}, {"args", json::object()}});
    Answer failed = pass(actions);
    EXPECT_EQ(failed.status, 200) << failed.body.dump();
    EXPECT_EQ(failed.body.value("state", ""), "failed");
    EXPECT_NE(failed.body.value("failure", "").find("was issued already"), std::string::npos)
        << failed.body.dump();
    EXPECT_EQ(log_write(newcomer_), 401);
}

TEST_F(GovernanceTest, ReplacedConstitutionDropsOpenProposalsAndALoopingOneIsStopped) {
    Answer current = get("/gov/constitution");
    ASSERT_EQ(current.status, 200);
    std::string source = current.body.value("source", "");
    ASSERT_FALSE(source.empty());

    Answer pending = propose(members_[2], set_user_action(newcomer_));
    ASSERT_EQ(pending.status, 200);
    std::string pending_id = pending.body.value("proposal_id", "");

    // Unanimity: the default constitution with resolve redefined at its end.
    std::string unanimity = source + R"(
function resolve(proposal, votes, members)
  local yes, all = 0, 0
  for _, fp in ipairs(coffer.sorted_keys(members)) do
    all = all + 1
    if votes[fp] == false then return "rejected" end
    if votes[fp] == true then yes = yes + 1 end
  end
  if yes == all then return "accepted" end
  return "open"
end
)";
    json set =
        json::array({{{"name", "set_constitution"}, {"args", {{"constitution", unanimity}}}}});
    Answer replaced = pass(set);
    ASSERT_EQ(replaced.body.value("state", ""), "accepted") << replaced.body.dump();
    EXPECT_EQ(state_of(pending_id), "dropped");
    EXPECT_EQ(get("/gov/constitution").body.value("source", ""), unanimity);

    Answer two_of_three = pass(set_user_action(newcomer_));
    EXPECT_EQ(two_of_three.body.value("state", ""), "open") << two_of_three.body.dump();
    std::string id = two_of_three.body.value("proposal_id", "");
    EXPECT_EQ(vote(members_[2], id, true).body.value("state", ""), "accepted");
    EXPECT_EQ(log_write(newcomer_), 200);

    // A constitution whose validate never returns: the instruction bound stops each call.
    json looping = json::array(
        {{{"name", "set_constitution"},
          {"args",
           {{"constitution", unanimity + "\nfunction validate(p) while true do end end\n"}}}}});
    Answer proposed = propose(members_[0], looping);
    ASSERT_EQ(proposed.status, 200) << proposed.body.dump();
    std::string loop_id = proposed.body.value("proposal_id", "");
    vote(members_[0], loop_id, true);
    vote(members_[1], loop_id, true);
    EXPECT_EQ(vote(members_[2], loop_id, true).body.value("state", ""), "accepted");

    auto started = std::chrono::steady_clock::now();
    Answer stuck = propose(members_[0], set_user_action(user_));
    EXPECT_EQ(stuck.status, 400) << stuck.body.dump();
    EXPECT_NE(stuck.message().find("instruction"), std::string::npos) << stuck.message();
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
    EXPECT_EQ(get("/node/state").status, 200);
    EXPECT_EQ(log_write(user_), 200);
}

// set_recovery_threshold 2 issues one share per member; each member fetches and decrypts its
// own with `coffer member share --decrypt`; one share recovers nothing, any two recover the
// same ledger secret, a forged share is named, another member's key opens nothing.
TEST_F(GovernanceTest, RecoveryThresholdIssuesSharesThatAnyTwoMembersRecover) {
    Answer set =
        pass(json::array({{{"name", "set_recovery_threshold"}, {"args", {{"threshold", 2}}}}}));
    ASSERT_EQ(set.body.value("state", ""), "accepted") << set.body.dump();

    std::vector<Bytes> shares;
    for (const Identity& m : members_) {
        std::string enc_key = dir_.path() + "/" + m.name + "_enc_privk.pem";
        CommandResult r = member_cli(m, {"share", "--decrypt", "--enc-key", enc_key});
        ASSERT_EQ(r.exit_code, 0) << r.output;
        std::string text = r.output.substr(0, r.output.find('\n'));
        auto share = gov::recovery_share_from_text(text);
        ASSERT_TRUE(share.ok()) << share.status().to_string() << ": " << r.output;
        shares.push_back(*share);
    }
    std::string wrong_key = dir_.path() + "/" + members_[1].name + "_enc_privk.pem";
    CommandResult wrong = member_cli(members_[0], {"share", "--decrypt", "--enc-key", wrong_key});
    EXPECT_EQ(wrong.exit_code, 1) << wrong.output;

    Answer fetched = get("/gov/recovery_share?member=" + fingerprint_of(members_[0].cert_pem));
    ASSERT_EQ(fetched.status, 200) << fetched.body.dump();
    const json recovery = fetched.body["recovery"];
    auto one = gov::recover_ledger_secrets(recovery, std::vector<Bytes>{shares[0]});
    ASSERT_FALSE(one.ok());
    EXPECT_NE(one.status().message().find("not enough shares"), std::string::npos)
        << one.status().to_string();
    std::optional<Bytes> secret;
    for (size_t i = 0; i < shares.size(); ++i) {
        for (size_t j = i + 1; j < shares.size(); ++j) {
            auto two =
                gov::recover_ledger_secrets(recovery, std::vector<Bytes>{shares[i], shares[j]});
            ASSERT_TRUE(two.ok()) << two.status().to_string();
            ASSERT_EQ(two->size(), 1u);
            if (secret.has_value()) {
                EXPECT_EQ(two->front().key, *secret) << "shares " << i << " and " << j;
            }
            secret = two->front().key;
        }
    }
    Bytes forged = shares[1];
    forged.back() ^= 1;
    auto bad = gov::recover_ledger_secrets(recovery, std::vector<Bytes>{shares[0], forged});
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("forged"), std::string::npos) << bad.status().to_string();
}

// A new service whose fixture does not open it: it stays "opening" until the members pass
// transition_service_to_open.
class OpeningServiceTest : public GovernanceTest {
  protected:
    bool open_at_start() const override { return false; }

    // The answer to `method target` as `who`.
    Answer call(const Identity* who, const std::string& method, const std::string& target) {
        auto c = connect_client(*node_, who);
        auto r = c == nullptr ? Result<net::HttpResponse>(error(Errc::kIo, "no connection"))
                              : c->request(method, target, method == "GET" ? "" : "{}");
        if (!r.ok()) {
            ADD_FAILURE() << target << ": " << r.status().to_string();
            return {};
        }
        return {r->status, json::parse(r->body, nullptr, false)};
    }

    json open_action() const { return json::array({{{"name", "transition_service_to_open"}}}); }
};

TEST_F(OpeningServiceTest, UsersWaitUntilMembersOpenTheServiceByProposal) {
    EXPECT_EQ(get("/node/network").body.value("service_status", ""), "opening");
    Answer early = log_post(user_);
    EXPECT_EQ(early.status, 503) << early.body.dump();
    EXPECT_EQ(early.body["error"].value("code", ""), "service_not_open");
    EXPECT_EQ(early.message(),
              "the service is not open: its status is \"opening\"; members open it with a "
              "transition_service_to_open proposal");
    EXPECT_EQ(call(&user_, "GET", "/app/log/private?id=7").status, 503);
    EXPECT_EQ(call(&user_, "GET", "/app/cleanroom/datasets").status, 503);
    // The policy is checked first: others learn nothing about the state from user endpoints.
    EXPECT_EQ(call(&members_[0], "GET", "/app/log/private?id=7").status, 403);
    EXPECT_EQ(call(&newcomer_, "GET", "/app/log/private?id=7").status, 401);
    EXPECT_EQ(call(nullptr, "GET", "/app/log/private?id=7").status, 401);

    // Members govern and anyone reads governance and node state in every state.
    for (const char* target : {"/gov/members", "/gov/constitution", "/gov/proposals", "/node/state",
                               "/node/network", "/node/endpoints"}) {
        EXPECT_EQ(get(target).status, 200) << target;
    }
    EXPECT_EQ(call(&members_[1], "GET", "/gov/members").status, 200);

    Answer opened = pass(open_action());
    ASSERT_EQ(opened.body.value("state", ""), "accepted") << opened.body.dump();
    EXPECT_EQ(get("/node/network").body.value("service_status", ""), "open");
    EXPECT_EQ(log_write(user_), 200);
    EXPECT_EQ(call(&user_, "GET", "/app/log/private?id=7").status, 200);

    // A second proposal to open fails, says why, and changes nothing.
    Answer again = pass(open_action(), "open it a second time");
    EXPECT_EQ(again.status, 200) << again.body.dump();
    EXPECT_EQ(again.body.value("state", ""), "failed") << again.body.dump();
    EXPECT_NE(again.body.value("failure", "").find("the service is already open"),
              std::string::npos)
        << again.body.dump();
    EXPECT_EQ(get("/node/network").body.value("service_status", ""), "open");

    // The state is in the ledger: a restarted node is open without another proposal.
    EXPECT_EQ(node_->terminate(), 0);
    std::string why;
    ASSERT_TRUE(node_->start(why)) << why;
    EXPECT_EQ(get("/node/network").body.value("service_status", ""), "open");
    EXPECT_EQ(log_write(user_), 200);
}

// Three nodes and one member (tests/network_fixture.h): `coffer member` sent to a follower
// follows its redirect to the leader, and a request accepted before the leader dies stays
// refused as replayed by the next leader.
TEST(GovernanceNetworkTest, CliFollowsRedirectsAndReplayProtectionSurvivesFailover) {
    TempDir dir;
    Network network(dir.path());
    std::string why;
    ASSERT_TRUE(network.form(NetworkOptions{}, why)) << why;
    auto leader = network.wait_leader(kFailoverWaitMs);
    ASSERT_TRUE(leader.has_value());
    int l = leader->first;
    int f = (l + 1) % network.size();
    std::string cert_path = dir.path() + "/service_cert.pem";
    write_text_file(cert_path, network.service_cert_pem());
    const Identity& m = network.member();
    Identity newcomer = keygen(dir.path(), "newcomer");

    CommandResult proposed =
        run_coffer({"member", "propose", "--service",
                    "127.0.0.1:" + std::to_string(network.node(f).client_port()), "--service-cert",
                    cert_path, "--cert", m.cert_path, "--key", m.key_path, "--action", "set_user",
                    "--args", json{{"cert", newcomer.cert_pem}}.dump()});
    ASSERT_EQ(proposed.exit_code, 0) << proposed.output << network.log_tails();
    EXPECT_EQ(json_in(proposed.output).value("state", ""), "open");

    auto service = crypto::Certificate::from_pem(network.service_cert_pem());
    ASSERT_TRUE(service.ok());
    Bytes service_fp = from_hex(service->fingerprint_sha256_hex()).value();
    std::string id = json_in(proposed.output).value("proposal_id", "");
    Bytes ballot = sign_request_as(m, service_fp, {"ballot", {{"vote", true}}, id, now_s(), ""});
    auto c = network.connect(l, &m, 10000);
    ASSERT_TRUE(c.ok());
    Answer accepted = post_signed(**c, "/gov/ballots", ballot);
    ASSERT_EQ(accepted.status, 200) << accepted.body.dump();
    EXPECT_EQ(accepted.body.value("state", ""), "accepted");
    ASSERT_TRUE(
        wait_tx_committed(network, accepted.body.value("transaction_id", ""), kFailoverWaitMs));

    uint64_t old_term = leader->second.term;
    network.node(l).kill_hard();
    auto next = network.wait_leader(kFailoverWaitMs, old_term, l);
    ASSERT_TRUE(next.has_value()) << network.log_tails();
    auto nc = network.connect(next->first, &m, 10000);
    ASSERT_TRUE(nc.ok());
    Answer replayed = post_signed(**nc, "/gov/ballots", ballot);
    EXPECT_EQ(replayed.status, 409) << replayed.body.dump();
    EXPECT_EQ(replayed.message(), "request replayed");
}

// A joining node is admitted only once the members trusted it: until then it is listed as
// "pending", is no voter, gets no certificate, and its process has not started serving.
TEST(GovernanceNetworkTest, JoiningNodeWaitsForItsTrustProposal) {
    TempDir dir;
    Network network(dir.path());
    std::string why;
    NetworkOptions options;
    options.nodes = 1;
    ASSERT_TRUE(network.form(options, why)) << why;
    std::string node_dir = dir.path() + "/joiner";
    std::filesystem::create_directories(node_dir);
    json config = {{"client_address", "127.0.0.1:0"},
                   {"node_address", "127.0.0.1:0"},
                   {"data_dir", node_dir + "/data"},
                   {"signatures", {{"interval_entries", 100}, {"interval_ms", 20}}},
                   {"join",
                    {{"target", "127.0.0.1:" + std::to_string(network.node(0).client_port())},
                     {"service_cert_file", network.node(0).data_dir() + "/service_cert.pem"}}}};
    write_text_file(node_dir + "/config.json", config.dump(2));
    ClusterNode joiner(1, node_dir + "/config.json", node_dir + "/data", node_dir + "/node.log",
                       true);

    // For its first two seconds nobody trusts it: it must wait as "pending", without a
    // certificate and without being a voter. Then the member trusts it.
    auto started = std::chrono::steady_clock::now();
    std::string pending_id;
    bool checked = false;
    std::set<std::string> proposed;
    std::string trust_why;
    auto trust_later = [&] {
        if (std::chrono::steady_clock::now() - started < std::chrono::seconds(2)) {
            return;
        }
        if (!checked) {
            checked = true;
            auto c = network.connect(0, nullptr, 10000);
            ASSERT_TRUE(c.ok());
            auto listed = (*c)->request("GET", "/node/network");
            ASSERT_TRUE(listed.ok());
            json network_view = json::parse(listed->body);
            for (const json& n : network_view["nodes"]) {
                if (n.value("status", "") == "pending") {
                    pending_id = n.value("node_id", "");
                    EXPECT_FALSE(n.contains("certificate")) << "a pending node has no certificate";
                }
            }
            EXPECT_FALSE(pending_id.empty()) << listed->body;
            auto before = network.state(0);
            ASSERT_TRUE(before.has_value());
            EXPECT_EQ(before->voters.size(), 1u);
        }
        trust_pending_nodes(network.node(0).client_port(), network.service_cert_pem(),
                            network.member(), proposed, trust_why);
    };
    ASSERT_TRUE(joiner.start(why, kFailoverWaitMs, trust_later)) << why << trust_why;
    ASSERT_TRUE(checked);
    EXPECT_EQ(proposed.count(pending_id), 1u);
    bool voter = false;
    for (int i = 0; i < 100 && !voter; ++i) {
        auto s0 = network.state(0);
        voter = s0.has_value() && std::count(s0->voters.begin(), s0->voters.end(), pending_id);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(voter) << network.log_tails();
    joiner.terminate();
}

// A node waiting for its trust proposal stops on SIGTERM; a node pointed at a service with
// another certificate stops at once with what to check, instead of asking for a minute.
TEST(GovernanceNetworkTest, PendingJoinerStopsOnSigtermAndAWrongCertificateStopsAtOnce) {
    TempDir dir;
    Network network(dir.path());
    std::string why;
    NetworkOptions options;
    options.nodes = 1;
    ASSERT_TRUE(network.form(options, why)) << why;
    auto joiner_config = [&](const std::string& name, const std::string& cert_file) {
        std::string node_dir = dir.path() + "/" + name;
        std::filesystem::create_directories(node_dir);
        json config = {{"client_address", "127.0.0.1:0"},
                       {"node_address", "127.0.0.1:0"},
                       {"data_dir", node_dir + "/data"},
                       {"join",
                        {{"target", "127.0.0.1:" + std::to_string(network.node(0).client_port())},
                         {"service_cert_file", cert_file}}}};
        write_text_file(node_dir + "/config.json", config.dump(2));
        return node_dir;
    };

    std::string pending =
        joiner_config("pending", network.node(0).data_dir() + "/service_cert.pem");
    pid_t pid =
        spawn_coffer({"node", "join", "--config", pending + "/config.json"}, pending + "/node.log");
    ASSERT_GT(pid, 0);
    bool listed = false;
    for (int i = 0; i < 200 && !listed; ++i) {
        listed =
            read_text_file(pending + "/node.log").find("node.join_pending") != std::string::npos;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(listed) << read_text_file(pending + "/node.log");
    ::kill(pid, SIGTERM);
    std::optional<int> code = wait_pid(pid, 5000);
    if (!code.has_value()) {
        ::kill(pid, SIGKILL);
        wait_pid(pid, 5000);
    }
    EXPECT_EQ(code, std::optional<int>(0)) << read_text_file(pending + "/node.log");

    Identity other = keygen(dir.path(), "not_a_service");
    std::string wrong = joiner_config("wrong", other.cert_path);
    auto started = std::chrono::steady_clock::now();
    CommandResult refused = run_coffer({"node", "join", "--config", wrong + "/config.json"});
    EXPECT_EQ(refused.exit_code, 1) << refused.output;
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
    EXPECT_NE(refused.output.find("check join.service_cert_file"), std::string::npos)
        << refused.output;
}

}  // namespace
}  // namespace coffer::e2e
