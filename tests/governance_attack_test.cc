// Red-team tests on governance, service states, rekey and disaster recovery, on real node
// processes. Each test asserts the SECURE behaviour: an attack that succeeds fails its test.
//
// GovernanceAttackTest shares one single-node network with three members per process (ctest
// runs each test in its own process, so no test relies on another having run) and attacks
// signed requests, proposals, ballots and withdrawals as a minority member, a user and a
// client without credentials.
//
// RecoveryAttackTest shares the ledger folder of one lost network (three members, shares at
// 2 of 3, member2 removed and the ledger rekeyed afterwards, local_sealing off) and attacks
// disaster recovery as the operator (edited, partial or misplaced ledger folders, killed
// recoveries, two recoveries from the same files) and as members (early, forged, old-set and
// removed members' shares, governance during recovery).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>

#include "crypto/sha256.h"
#include "crypto/x509.h"
#include "gov/recovery.h"
#include "gov/signed_request.h"
#include "tests/network_fixture.h"
#include "tests/recovering_node.h"

namespace coffer::e2e {
namespace {

using nlohmann::json;

constexpr int kRequestTimeoutMs = 15000;
// Chunk size of the lost network: small, so that its ledger folder has many chunks.
constexpr uint64_t kSmallChunkBytes = 4096;
// Private writes made before and after the rekey of the lost network.
constexpr int kWritesPerPhase = 4;
// The id of the private write both recoveries from the same files make first.
constexpr int kForkWriteId = 7777;

uint64_t now_s() {
    return static_cast<uint64_t>(std::time(nullptr));
}

Bytes service_fp_of(const std::string& cert_pem) {
    auto cert = crypto::Certificate::from_pem(cert_pem);
    EXPECT_TRUE(cert.ok());
    return cert.ok() ? from_hex(cert->fingerprint_sha256_hex()).value() : Bytes(32, 0);
}

// A client of 127.0.0.1:`port` pinning `cert_pem`, as `who` (nullptr: anonymous).
std::unique_ptr<net::HttpClient> client_of(uint16_t port, const std::string& cert_pem,
                                           const Identity* who) {
    net::ClientOptions options;
    options.host = "127.0.0.1";
    options.port = port;
    options.ca_cert_pem = cert_pem;
    options.timeout_ms = kRequestTimeoutMs;
    if (who != nullptr) {
        options.client_cert_pem = who->cert_pem;
        options.client_key_pem = who->key_pem;
    }
    auto c = net::HttpClient::connect(options);
    return c.ok() ? std::move(c).value() : nullptr;
}

struct Answer {
    int status = 0;
    json body;
    std::string code() const {
        return body.is_object() && body.contains("error") ? body["error"].value("code", "") : "";
    }
    std::string text() const { return std::to_string(status) + " " + body.dump(); }
};

Answer call(uint16_t port, const std::string& cert_pem, const Identity* who,
            const std::string& method, const std::string& target, const std::string& body = "") {
    auto c = client_of(port, cert_pem, who);
    if (c == nullptr) {
        return {};
    }
    auto r = c->request(method, target, body,
                        {{"content-type", "application/cose"}, {"x-coffer-wait-ms", "5000"}});
    if (!r.ok()) {
        return {};
    }
    return {r->status, json::parse(r->body, nullptr, false)};
}

// The signature's s turned into n - s (the other valid ECDSA encoding of the same signature).
Bytes with_high_s(Bytes message) {
    constexpr size_t kHalf = 48;
    EXPECT_GE(message.size(), 2 * kHalf);
    uint8_t* s_bytes = message.data() + message.size() - kHalf;
    EC_GROUP* group = EC_GROUP_new_by_curve_name(NID_secp384r1);
    BIGNUM* n = BN_new();
    BIGNUM* s = BN_bin2bn(s_bytes, kHalf, nullptr);
    EC_GROUP_get_order(group, n, nullptr);
    BN_sub(s, n, s);
    BN_bn2binpad(s, s_bytes, kHalf);
    BN_free(s);
    BN_free(n);
    EC_GROUP_free(group);
    return message;
}

// ---- ledger chunk files (docs/formats/ledger-chunk.md) ----------------------------------

constexpr size_t kChunkHeaderBytes = 32;
constexpr size_t kFrameHeaderBytes = 24;
constexpr size_t kChecksumBytes = 8;

uint64_t checksum64(ByteSpan data) {
    crypto::Sha256Digest d = crypto::sha256(data);
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) {
        v = (v << 8) | d[static_cast<size_t>(i)];
    }
    return v;
}

uint64_t get_u64_at(const std::string& b, size_t at) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) {
        v = (v << 8) | static_cast<uint8_t>(b[at + static_cast<size_t>(i)]);
    }
    return v;
}

uint32_t get_u32_at(const std::string& b, size_t at) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) {
        v = (v << 8) | static_cast<uint8_t>(b[at + static_cast<size_t>(i)]);
    }
    return v;
}

// The chunk files of a ledger folder, oldest first.
std::vector<std::string> chunk_files(const std::string& dir) {
    std::vector<std::pair<uint64_t, std::string>> found;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        std::string name = e.path().filename().string();
        if (e.is_regular_file() && name.rfind("ledger_", 0) == 0) {
            found.emplace_back(std::stoull(name.substr(7)), e.path().string());
        }
    }
    std::sort(found.begin(), found.end());
    std::vector<std::string> out;
    for (auto& f : found) {
        out.push_back(f.second);
    }
    return out;
}

struct Frame {
    std::string file;
    size_t entry_offset = 0;  // in the file
    size_t entry_size = 0;
    uint64_t seqno = 0;
};

std::vector<Frame> frames_of(const std::string& dir) {
    std::vector<Frame> out;
    for (const std::string& file : chunk_files(dir)) {
        std::string b = read_text_file(file);
        for (size_t at = kChunkHeaderBytes; at + kFrameHeaderBytes <= b.size();) {
            Frame f{file, at + kFrameHeaderBytes, get_u32_at(b, at + 8), get_u64_at(b, at)};
            if (f.entry_offset + f.entry_size + kChecksumBytes > b.size()) {
                break;
            }
            out.push_back(f);
            at = f.entry_offset + f.entry_size + kChecksumBytes;
        }
    }
    return out;
}

// Replaces the last occurrence of `needle` in any entry by `replacement` (same length) and
// recomputes that frame's entry checksum, as an operator who knows the format would: only the
// signed Merkle tree can notice. Returns the edited seqno, 0 if the needle was not found.
uint64_t edit_entry(const std::string& dir, const std::string& needle,
                    const std::string& replacement) {
    EXPECT_EQ(needle.size(), replacement.size());
    std::vector<Frame> frames = frames_of(dir);
    for (auto f = frames.rbegin(); f != frames.rend(); ++f) {
        std::string b = read_text_file(f->file);
        std::string entry = b.substr(f->entry_offset, f->entry_size);
        size_t hit = entry.rfind(needle);
        if (hit == std::string::npos) {
            continue;
        }
        b.replace(f->entry_offset + hit, replacement.size(), replacement);
        size_t frame_start = f->entry_offset - kFrameHeaderBytes;
        Bytes covered(b.begin() + static_cast<std::ptrdiff_t>(frame_start),
                      b.begin() + static_cast<std::ptrdiff_t>(frame_start + 16));
        covered.insert(covered.end(), b.begin() + static_cast<std::ptrdiff_t>(f->entry_offset),
                       b.begin() + static_cast<std::ptrdiff_t>(f->entry_offset + f->entry_size));
        uint64_t sum = checksum64(covered);
        for (size_t i = 0; i < kChecksumBytes; ++i) {
            b[f->entry_offset + f->entry_size + i] = static_cast<char>((sum >> (8 * i)) & 0xff);
        }
        write_text_file(f->file, b);
        return f->seqno;
    }
    return 0;
}

// The entry bytes at `seqno` ("" if absent).
std::string entry_at(const std::string& dir, uint64_t seqno) {
    for (const Frame& f : frames_of(dir)) {
        if (f.seqno == seqno) {
            return read_text_file(f.file).substr(f.entry_offset, f.entry_size);
        }
    }
    return "";
}

// Whether any file under `dir` contains `needle`.
std::string file_containing(const std::string& dir, const std::string& needle) {
    for (const std::string& file : files_under(dir)) {
        if (read_text_file(file).find(needle) != std::string::npos) {
            return file;
        }
    }
    return "";
}

// =========================================================================================
// Governance: one single-node network with three members, opened by the first test.

struct GovState {
    std::unique_ptr<TempDir> dir;
    std::unique_ptr<Network> network;
    std::vector<Identity> members;
    std::string cert_pem;
    std::string cert_path;
    uint16_t port = 0;
    std::string setup_error;
};

GovState& gov_state() {
    static GovState state;
    return state;
}

class GovernanceAttackTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        GovState& s = gov_state();
        s.dir = std::make_unique<TempDir>();
        s.network = std::make_unique<Network>(s.dir->path() + "/net");
        NetworkOptions options;
        options.nodes = 1;
        options.open_service = false;
        std::string why;
        if (!s.network->form(options, why)) {
            s.setup_error = why;
            return;
        }
        s.port = s.network->node(0).client_port();
        s.cert_pem = s.network->service_cert_pem();
        s.cert_path = s.network->node(0).data_dir() + "/service_cert.pem";
        s.members.push_back(s.network->member());
        for (int i = 1; i < 3; ++i) {
            s.members.push_back(keygen(s.dir->path(), "member" + std::to_string(i)));
            std::vector<Identity> voters(s.members.begin(), s.members.end() - 1);
            json action = {
                {"name", "set_member"},
                {"args",
                 {{"cert", s.members.back().cert_pem},
                  {"encryption_public_key", read_text_file(s.members.back().enc_pub_path)}}}};
            if (!pass_proposal(s.port, s.cert_path, voters, json::array({action}), why)) {
                s.setup_error = why;
                return;
            }
        }
    }
    static void TearDownTestSuite() {
        gov_state().network.reset();
        gov_state().dir.reset();
    }
    void SetUp() override {
        ASSERT_TRUE(gov_state().setup_error.empty()) << gov_state().setup_error;
    }
    void TearDown() override {
        if (HasFailure()) {
            std::cerr << gov_state().network->log_tails();
        }
    }

    GovState& s() { return gov_state(); }
    const Identity& member(size_t i) { return s().members.at(i); }
    const Identity& user() { return s().network->user(0); }

    Bytes sign(const Identity& who, const std::string& type, const json& payload,
               std::optional<std::string> proposal_id = std::nullopt, uint64_t created_at = 0) {
        SignOptions o{type, payload, std::move(proposal_id), created_at == 0 ? now_s() : created_at,
                      ""};
        return sign_request_as(who, service_fp_of(s().cert_pem), o);
    }
    Answer post(const Identity* who, const std::string& path, const Bytes& body) {
        return call(s().port, s().cert_pem, who, "POST", path, to_string(body));
    }
    Answer get(const std::string& target, const Identity* who = nullptr) {
        return call(s().port, s().cert_pem, who, "GET", target);
    }
    std::string proposal_state(const std::string& id) {
        return get("/gov/proposal?id=" + id).body.value("state", "");
    }
    std::string measurement_action_id(const Identity& who, const std::string& tag) {
        json p = {
            {"actions",
             json::array(
                 {{{"name", "add_trusted_measurement"},
                   {"args", {{"measurement", to_hex(as_bytes(tag + "-0123456789abcdef"))}}}}})}};
        Answer a = post(&who, "/gov/proposals", sign(who, "proposal", p));
        EXPECT_EQ(a.status, 200) << a.text();
        return a.body.value("proposal_id", "");
    }
};

TEST_F(GovernanceAttackTest, NobodyReachesApplicationDataBeforeTheServiceOpens) {
    Answer endpoints = get("/node/endpoints");
    ASSERT_EQ(endpoints.status, 200) << endpoints.text();
    int user_endpoints = 0;
    for (const json& e : endpoints.body["endpoints"]) {
        std::string policy = e.value("policy", "");
        std::string target = e.value("path", "");
        if (!e.value("example_query", "").empty()) {
            target += "?" + e.value("example_query", "");
        }
        const std::string method = e.value("method", "");
        const std::string body = e.value("example_body", "");
        if (policy == "user") {
            ++user_endpoints;
            Answer a = call(s().port, s().cert_pem, &user(), method, target, body);
            EXPECT_EQ(a.status, 503) << method << " " << target << ": " << a.text();
            EXPECT_EQ(a.code(), "service_not_open") << method << " " << target;
        }
        if (policy != "anonymous") {
            Answer anon = call(s().port, s().cert_pem, nullptr, method, target, body);
            EXPECT_EQ(anon.status, 401) << method << " " << target << ": " << anon.text();
        }
    }
    EXPECT_GT(user_endpoints, 4);
    // Shares are taken only while a recovered service waits for them, never while opening.
    Answer share = post(&member(0), "/gov/recovery_shares",
                        sign(member(0), "recovery_share", {{"share", "AAAA"}}));
    EXPECT_EQ(share.status, 409) << share.text();
    EXPECT_EQ(share.code(), "not_waiting_for_shares");

    std::string why;
    ASSERT_TRUE(open_service(s().port, s().cert_pem, s().members, why)) << why;
    // A second transition cannot move an open service anywhere.
    auto second = pass_proposal(
        s().port, s().cert_path, s().members,
        json::array({{{"name", "transition_service_to_open"}, {"args", json::object()}}}), why);
    EXPECT_FALSE(second.has_value());
    EXPECT_NE(why.find("already open"), std::string::npos) << why;
    EXPECT_EQ(get("/gov/recovery").body.value("service_status", ""), "open");
}

TEST_F(GovernanceAttackTest, ReplayedOrReencodedRequestIsRefused) {
    json p = {{"actions", json::array({{{"name", "add_trusted_measurement"},
                                        {"args", {{"measurement", std::string(64, 'a')}}}}})}};
    Bytes request = sign(member(1), "proposal", p);
    Answer first = post(&member(1), "/gov/proposals", request);
    ASSERT_EQ(first.status, 200) << first.text();
    Answer again = post(&member(1), "/gov/proposals", request);
    EXPECT_EQ(again.status, 409) << again.text();
    EXPECT_EQ(again.code(), "replayed");
    // The other encoding of the same signature (n - s).
    Answer high_s = post(&member(1), "/gov/proposals", with_high_s(request));
    EXPECT_EQ(high_s.status, 401) << high_s.text();
    // Another member cannot carry the captured request over its own session.
    Answer carried = post(&member(2), "/gov/proposals", request);
    EXPECT_EQ(carried.status, 401) << carried.text();

    // A ballot replayed, and a second ballot of the same member signed later.
    std::string id = first.body.value("proposal_id", "");
    Bytes ballot = sign(member(1), "ballot", {{"vote", false}}, id);
    ASSERT_EQ(post(&member(1), "/gov/ballots", ballot).status, 200);
    EXPECT_EQ(post(&member(1), "/gov/ballots", ballot).status, 409);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    Answer twice =
        post(&member(1), "/gov/ballots", sign(member(1), "ballot", {{"vote", true}}, id));
    EXPECT_EQ(twice.status, 409) << twice.text();
    EXPECT_EQ(twice.code(), "already_voted");
    EXPECT_EQ(proposal_state(id), "open");
}

TEST_F(GovernanceAttackTest, RequestOfOneTypeIsRefusedOnAnotherEndpoint) {
    std::string id = measurement_action_id(member(0), "cross");
    ASSERT_FALSE(id.empty());
    Bytes ballot = sign(member(1), "ballot", {{"vote", true}}, id);
    Bytes withdrawal = sign(member(0), "withdrawal", json::object(), id);
    Bytes share = sign(member(1), "recovery_share", {{"share", "AAAA"}});
    Bytes proposal =
        sign(member(1), "proposal",
             {{"actions", json::array({{{"name", "rekey_ledger"}, {"args", json::object()}}})}});
    struct Case {
        const Identity* who;
        std::string path;
        Bytes body;
    };
    std::vector<Case> cases = {
        {&member(1), "/gov/proposals", ballot},        {&member(1), "/gov/withdrawals", ballot},
        {&member(0), "/gov/ballots", withdrawal},      {&member(0), "/gov/proposals", withdrawal},
        {&member(1), "/gov/proposals", share},         {&member(1), "/gov/ballots", share},
        {&member(1), "/gov/ballots", proposal},        {&member(1), "/gov/withdrawals", proposal},
        {&member(1), "/gov/recovery_shares", proposal}};
    for (const Case& c : cases) {
        Answer a = post(c.who, c.path, c.body);
        EXPECT_EQ(a.status, 400) << c.path << ": " << a.text();
    }
    // Nothing of them counted: the requests still work once, where they belong.
    EXPECT_EQ(proposal_state(id), "open");
    EXPECT_EQ(post(&member(1), "/gov/ballots", ballot).status, 200);
    EXPECT_EQ(proposal_state(id), "open");
    EXPECT_EQ(post(&member(0), "/gov/withdrawals", withdrawal).status, 200);
    EXPECT_EQ(proposal_state(id), "withdrawn");
}

TEST_F(GovernanceAttackTest, StaleFutureForeignOrMisattributedRequestIsRefused) {
    json p = {{"actions", json::array({{{"name", "rekey_ledger"}, {"args", json::object()}}})}};
    Answer stale = post(&member(1), "/gov/proposals",
                        sign(member(1), "proposal", p, std::nullopt, now_s() - 400));
    EXPECT_EQ(stale.status, 400) << stale.text();
    EXPECT_EQ(stale.code(), "stale_request");
    Answer future = post(&member(1), "/gov/proposals",
                         sign(member(1), "proposal", p, std::nullopt, now_s() + 3600));
    EXPECT_EQ(future.status, 400) << future.text();
    EXPECT_EQ(future.code(), "stale_request");
    Answer far_future = post(&member(1), "/gov/proposals",
                             sign(member(1), "proposal", p, std::nullopt, UINT64_MAX));
    EXPECT_EQ(far_future.status, 400) << far_future.text();

    // Another service's fingerprint.
    Bytes other_fp(32, 0x42);
    SignOptions o{"proposal", p, std::nullopt, now_s(), ""};
    Answer foreign = post(&member(1), "/gov/proposals", sign_request_as(member(1), other_fp, o));
    EXPECT_EQ(foreign.status, 403) << foreign.text();
    // member1's key, member0's kid, over member1's session; and over member0's session.
    o.kid_hex = fingerprint_of(member(0).cert_pem);
    Bytes spoofed = sign_request_as(member(1), service_fp_of(s().cert_pem), o);
    Answer spoof1 = post(&member(1), "/gov/proposals", spoofed);
    EXPECT_EQ(spoof1.status, 403) << spoof1.text();
    Answer spoof0 = post(&member(0), "/gov/proposals", spoofed);
    EXPECT_EQ(spoof0.status, 401) << spoof0.text();
    // A user signing with its own key, and a client without certificate.
    Answer by_user = post(&user(), "/gov/proposals", sign(user(), "proposal", p));
    EXPECT_EQ(by_user.status, 403) << by_user.text();
    Answer anonymous = post(nullptr, "/gov/proposals", sign(member(1), "proposal", p));
    EXPECT_EQ(anonymous.status, 401) << anonymous.text();
    // Garbage bodies.
    EXPECT_EQ(post(&member(1), "/gov/proposals", Bytes()).status, 400);
    EXPECT_EQ(post(&member(1), "/gov/proposals", Bytes(300, 0xd2)).status, 400);
    Answer list = get("/gov/proposals");
    ASSERT_EQ(list.status, 200);
    for (const json& r : list.body["proposals"]) {
        for (const json& a : r["actions"]) {
            EXPECT_NE(a.value("name", ""), "rekey_ledger") << "a refused request was stored";
        }
    }
}

TEST_F(GovernanceAttackTest, OversizedOrHostileProposalIsRefusedAndNodeKeepsServing) {
    auto propose = [&](const json& payload) {
        return post(&member(1), "/gov/proposals", sign(member(1), "proposal", payload));
    };
    json deep = json::object();
    for (int i = 0; i < 200; ++i) {
        deep = json{{"x", deep}};
    }
    json many = json::array();
    for (int i = 0; i < 65; ++i) {
        many.push_back({{"name", "rekey_ledger"}, {"args", json::object()}});
    }
    json wide = json::object();
    for (int i = 0; i < 70000; ++i) {
        wide["k" + std::to_string(i)] = i;
    }
    std::vector<std::pair<std::string, json>> payloads = {
        {"deep args", {{"actions", json::array({{{"name", "set_user"}, {"args", deep}}})}}},
        {"65 actions", {{"actions", many}}},
        {"wide args", {{"actions", json::array({{{"name", "set_user"}, {"args", wide}}})}}},
        {"huge description",
         {{"actions", json::array({{{"name", "rekey_ledger"}, {"args", json::object()}}})},
          {"description", std::string(5000, 'd')}}},
        {"unknown action", {{"actions", json::array({{{"name", "frobnicate"}}})}}},
        {"threshold as text",
         {{"actions",
           json::array({{{"name", "set_recovery_threshold"}, {"args", {{"threshold", "2"}}}}})}}},
        {"threshold as float",
         {{"actions",
           json::array({{{"name", "set_recovery_threshold"}, {"args", {{"threshold", 2.0}}}}})}}},
        {"cert not a string",
         {{"actions", json::array({{{"name", "set_user"}, {"args", {{"cert", 5}}}}})}}},
        {"huge cert",
         {{"actions",
           json::array({{{"name", "set_user"}, {"args", {{"cert", std::string(900000, 'A')}}}}})}}},
        {"extra field", {{"actions", json::array({{{"name", "rekey_ledger"}}})}, {"x", 1}}},
        {"actions not an array", {{"actions", {{"name", "rekey_ledger"}}}}},
    };
    for (const auto& [what, payload] : payloads) {
        Answer a = propose(payload);
        EXPECT_EQ(a.status, 400) << what << ": " << a.text();
    }
    // A body over the signed-request bound.
    Bytes huge(2 << 20, 'x');
    Answer too_big = post(&member(1), "/gov/proposals", huge);
    EXPECT_TRUE(too_big.status == 400 || too_big.status == 413) << too_big.text();
    // The node still serves and still takes a good proposal.
    EXPECT_EQ(get("/node/state").status, 200);
    std::string id = measurement_action_id(member(1), "alive");
    EXPECT_EQ(proposal_state(id), "open");
}

TEST_F(GovernanceAttackTest, HostileActionsFailWithoutTakingEffect) {
    // Users must be served at the end: open the service if no earlier test of the suite did.
    std::string open_why;
    ASSERT_TRUE(open_service(s().port, s().cert_pem, s().members, open_why)) << open_why;
    json members_before = get("/gov/members").body;
    std::string node_id = get("/node/state").body.value("node_id", "");
    std::string fp0 = fingerprint_of(member(0).cert_pem);
    std::string fp1 = fingerprint_of(member(1).cert_pem);
    std::string fp2 = fingerprint_of(member(2).cert_pem);
    auto fails = [&](const json& actions, const std::string& expected) {
        std::string why;
        auto id = pass_proposal(s().port, s().cert_path, s().members, actions, why);
        EXPECT_FALSE(id.has_value()) << actions.dump().substr(0, 200) << " was accepted";
        EXPECT_NE(why.find(expected), std::string::npos) << why;
    };
    json user_cert_as_member = {
        {"name", "set_member"},
        {"args",
         {{"cert", user().cert_pem},
          {"encryption_public_key", read_text_file(member(1).enc_pub_path)}}}};
    fails(json::array({user_cert_as_member}), "is a user's");
    fails(json::array({{{"name", "set_user"}, {"args", {{"cert", member(2).cert_pem}}}}}),
          "is a member's");
    fails(json::array({{{"name", "remove_member"}, {"args", {{"fingerprint", fp1}}}},
                       {{"name", "remove_member"}, {"args", {{"fingerprint", fp2}}}},
                       {{"name", "remove_member"}, {"args", {{"fingerprint", fp0}}}}}),
          "no active member left");
    fails(json::array({{{"name", "set_recovery_threshold"}, {"args", {{"threshold", 4}}}}}),
          "exceeds");
    fails(json::array({{{"name", "trust_node"}, {"args", {{"node_id", std::string(64, 'b')}}}}}),
          "no node");
    fails(json::array({{{"name", "remove_node"}, {"args", {{"node_id", node_id}}}}}),
          "no trusted node left");
    fails(json::array(
              {{{"name", "remove_member"}, {"args", {{"fingerprint", std::string(64, 'c')}}}}}),
          "no member");
    fails(json::array({{{"name", "remove_trusted_measurement"},
                        {"args", {{"measurement", std::string(64, 'e')}}}}}),
          "not trusted");
    EXPECT_EQ(get("/gov/members").body, members_before);
    auto state = s().network->state(0);
    ASSERT_TRUE(state.has_value());
    EXPECT_EQ(state->role, "leader");
    EXPECT_EQ(state->voters, std::vector<std::string>{node_id});
    // The service still serves users.
    Answer w = call(s().port, s().cert_pem, &user(), "POST", "/app/log/private",
                    json{{"id", 1}, {"msg", "still here"}}.dump());
    EXPECT_EQ(w.status, 200) << w.text();
}

TEST_F(GovernanceAttackTest, OnlyTheProposerWithdrawsAnOpenProposal) {
    std::string id = measurement_action_id(member(0), "withdraw");
    ASSERT_FALSE(id.empty());
    Answer by_other =
        post(&member(1), "/gov/withdrawals", sign(member(1), "withdrawal", json::object(), id));
    EXPECT_EQ(by_other.status, 403) << by_other.text();
    EXPECT_EQ(proposal_state(id), "open");
    Answer unknown = post(&member(0), "/gov/withdrawals",
                          sign(member(0), "withdrawal", json::object(), std::string(64, 'f')));
    EXPECT_EQ(unknown.status, 404) << unknown.text();
    ASSERT_EQ(
        post(&member(0), "/gov/withdrawals", sign(member(0), "withdrawal", json::object(), id))
            .status,
        200);
    EXPECT_EQ(proposal_state(id), "withdrawn");
    // Nothing revives it: no ballot, no second withdrawal.
    Answer late = post(&member(1), "/gov/ballots", sign(member(1), "ballot", {{"vote", true}}, id));
    EXPECT_EQ(late.status, 409) << late.text();
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    Answer again =
        post(&member(0), "/gov/withdrawals", sign(member(0), "withdrawal", json::object(), id));
    EXPECT_EQ(again.status, 409) << again.text();
}

// Last in the suite: it removes member2.
TEST_F(GovernanceAttackTest, RemovedMembersBallotStopsCountingAndMemberCannotAct) {
    std::string id = measurement_action_id(member(2), "removed");
    ASSERT_FALSE(id.empty());
    ASSERT_EQ(
        post(&member(2), "/gov/ballots", sign(member(2), "ballot", {{"vote", true}}, id)).status,
        200);
    std::string why;
    std::vector<Identity> voters = {member(0), member(1)};
    ASSERT_TRUE(pass_proposal(
        s().port, s().cert_path, voters,
        json::array({{{"name", "remove_member"},
                      {"args", {{"fingerprint", fingerprint_of(member(2).cert_pem)}}}}}),
        why))
        << why;
    // Two members are left; member2's yes does not count, member0's alone is no majority.
    Answer one = post(&member(0), "/gov/ballots", sign(member(0), "ballot", {{"vote", true}}, id));
    ASSERT_EQ(one.status, 200) << one.text();
    EXPECT_EQ(one.body.value("state", ""), "open") << one.text();
    // The removed member can do nothing any more.
    Answer removed =
        post(&member(2), "/gov/proposals",
             sign(member(2), "proposal", {{"actions", json::array({{{"name", "rekey_ledger"}}})}}));
    EXPECT_TRUE(removed.status == 401 || removed.status == 403) << removed.text();
    Answer removed_withdraw =
        post(&member(2), "/gov/withdrawals", sign(member(2), "withdrawal", json::object(), id));
    EXPECT_TRUE(removed_withdraw.status == 401 || removed_withdraw.status == 403)
        << removed_withdraw.text();
    Answer two = post(&member(1), "/gov/ballots", sign(member(1), "ballot", {{"vote", true}}, id));
    ASSERT_EQ(two.status, 200) << two.text();
    EXPECT_EQ(two.body.value("state", ""), "accepted") << two.text();
}

// =========================================================================================
// Disaster recovery: the ledger folder of one lost network, recovered several times.

// A signed recovery_share request of `who` for the service `node` recovers.
Bytes share_request(const RecoveringNode& node, const Identity& who,
                    const std::string& share_text) {
    SignOptions o{"recovery_share", json{{"share", share_text}}, std::nullopt, now_s(), ""};
    return sign_request_as(who, service_fp_of(node.cert_pem()), o);
}

Answer post_to(const RecoveringNode& node, const Identity& who, const std::string& path,
               const Bytes& body) {
    return call(node.port(), node.cert_pem(), &who, "POST", path, to_string(body));
}

struct RecState {
    std::unique_ptr<TempDir> dir;
    std::unique_ptr<Network> network;
    std::vector<Identity> members;           // member2 was removed before the disaster
    std::vector<std::string> enc_key_paths;  // X25519 private keys
    std::string old_cert_path;
    std::string ledger_dir;
    json set_a;                         // the recovery value before the removal and rekey
    std::vector<std::string> shares_a;  // members 0..2, plaintext text form
    json set_c;                         // the recovery value at the disaster
    std::vector<std::string> shares_c;  // members 0..1
    std::vector<std::string> private_msgs;
    std::string setup_error;
    // The open recovery of RecoveryRefusesEarlyOldSetForgedAndRemovedMembersShares.
    std::unique_ptr<RecoveringNode> fork;
    uint64_t fork_seqno = 0;
    std::vector<ledger::LedgerSecret> fork_secrets;
};

RecState& rec_state() {
    static RecState state;
    return state;
}

std::string decrypt_share_text(uint16_t port, const std::string& cert_path, const Identity& m,
                               const std::string& enc_key_path, std::string& why) {
    CommandResult r =
        run_coffer({"member", "share", "--decrypt", "--service",
                    "127.0.0.1:" + std::to_string(port), "--service-cert", cert_path, "--cert",
                    m.cert_path, "--key", m.key_path, "--enc-key", enc_key_path});
    if (r.exit_code != 0) {
        why = "decrypt " + m.name + ": " + r.output;
        return "";
    }
    return r.output.substr(0, r.output.find('\n'));
}

json recovery_value(uint16_t port, const std::string& cert_pem, const Identity& m) {
    Answer a = call(port, cert_pem, nullptr, "GET",
                    "/gov/recovery_share?member=" + fingerprint_of(m.cert_pem));
    return a.status == 200 ? a.body["recovery"] : json();
}

// Every ledger secret of a recovered, open service, rebuilt from the share set it issued at
// its opening with members 0 and 1's shares (what those members can do on their own).
std::vector<ledger::LedgerSecret> secrets_of(const RecoveringNode& node, const RecState& s) {
    json value = recovery_value(node.port(), node.cert_pem(), s.members[0]);
    std::vector<Bytes> shares;
    for (size_t i = 0; i < 2; ++i) {
        std::string why;
        auto share = gov::recovery_share_from_text(decrypt_share_text(
            node.port(), node.cert_path(), s.members[i], s.enc_key_paths[i], why));
        EXPECT_TRUE(share.ok()) << why;
        if (share.ok()) {
            shares.push_back(*share);
        }
    }
    auto secrets = gov::recover_ledger_secrets(value, shares);
    EXPECT_TRUE(secrets.ok()) << secrets.status().to_string();
    return secrets.ok() ? *secrets : std::vector<ledger::LedgerSecret>();
}

class RecoveryAttackTest : public ::testing::Test {
  protected:
    static bool build(RecState& s, std::string& why) {
        s.dir = std::make_unique<TempDir>();
        s.network = std::make_unique<Network>(s.dir->path() + "/net");
        NetworkOptions options;
        options.nodes = 1;
        options.extra_config = {{"local_sealing", false},
                                {"ledger", {{"chunk_size_bytes", kSmallChunkBytes}}}};
        if (!s.network->form(options, why)) {
            return false;
        }
        uint16_t port = s.network->node(0).client_port();
        std::string cert_pem = s.network->service_cert_pem();
        s.old_cert_path = s.dir->path() + "/old_service_cert.pem";
        write_text_file(s.old_cert_path, cert_pem);
        s.members.push_back(s.network->member());
        s.enc_key_paths.push_back(s.network->dir() + "/" + s.members[0].name + "_enc_privk.pem");
        for (int i = 1; i < 3; ++i) {
            s.members.push_back(keygen(s.dir->path(), "member" + std::to_string(i)));
            s.enc_key_paths.push_back(s.dir->path() + "/member" + std::to_string(i) +
                                      "_enc_privk.pem");
            std::vector<Identity> voters(s.members.begin(), s.members.end() - 1);
            json action = {
                {"name", "set_member"},
                {"args",
                 {{"cert", s.members.back().cert_pem},
                  {"encryption_public_key", read_text_file(s.members.back().enc_pub_path)}}}};
            if (!pass_proposal(port, s.old_cert_path, voters, json::array({action}), why)) {
                return false;
            }
        }
        if (!pass_proposal(
                port, s.old_cert_path, s.members,
                json::array({{{"name", "set_recovery_threshold"}, {"args", {{"threshold", 2}}}}}),
                why)) {
            return false;
        }
        s.set_a = recovery_value(port, cert_pem, s.members[0]);
        for (size_t i = 0; i < 3; ++i) {
            s.shares_a.push_back(
                decrypt_share_text(port, s.old_cert_path, s.members[i], s.enc_key_paths[i], why));
            if (s.shares_a.back().empty()) {
                return false;
            }
        }
        auto user = s.network->connect(0, &s.network->user(0), kRequestTimeoutMs);
        if (!user.ok()) {
            why = user.status().to_string();
            return false;
        }
        auto write = [&](int id) {
            std::string msg = "confidential-" + std::to_string(id) + "-do-not-leak";
            auto r =
                (*user)->request("POST", "/app/log/private", json{{"id", id}, {"msg", msg}}.dump(),
                                 {{"x-coffer-wait-ms", "5000"}});
            s.private_msgs.push_back(msg);
            return r.ok() && r->status == 200;
        };
        for (int i = 0; i < kWritesPerPhase; ++i) {
            if (!write(100 + i)) {
                why = "private write failed";
                return false;
            }
        }
        // member2 is removed; then the ledger is rekeyed: its old shares must reach nothing new.
        std::vector<Identity> two(s.members.begin(), s.members.begin() + 2);
        if (!pass_proposal(
                port, s.old_cert_path, two,
                json::array({{{"name", "remove_member"},
                              {"args", {{"fingerprint", fingerprint_of(s.members[2].cert_pem)}}}}}),
                why) ||
            !pass_proposal(port, s.old_cert_path, two,
                           json::array({{{"name", "rekey_ledger"}, {"args", json::object()}}}),
                           why)) {
            return false;
        }
        for (int i = 0; i < kWritesPerPhase; ++i) {
            if (!write(200 + i)) {
                why = "private write after rekey failed";
                return false;
            }
        }
        s.set_c = recovery_value(port, cert_pem, s.members[0]);
        for (size_t i = 0; i < 2; ++i) {
            s.shares_c.push_back(
                decrypt_share_text(port, s.old_cert_path, s.members[i], s.enc_key_paths[i], why));
            if (s.shares_c.back().empty()) {
                return false;
            }
        }
        s.network->node(0).kill_hard();
        s.ledger_dir = s.network->node(0).data_dir() + "/ledger";
        return true;
    }
    static void SetUpTestSuite() {
        std::string why;
        if (!build(rec_state(), why)) {
            rec_state().setup_error = why.empty() ? "set-up failed" : why;
        }
    }
    static void TearDownTestSuite() {
        rec_state().fork.reset();
        rec_state().network.reset();
        rec_state().dir.reset();
    }
    void SetUp() override {
        ASSERT_TRUE(rec_state().setup_error.empty()) << rec_state().setup_error;
    }

    RecState& s() { return rec_state(); }
    std::string folder(const std::string& name) { return s().dir->path() + "/" + name; }
    // A copy of the lost network's ledger folder.
    std::string copy_ledger(const std::string& name) {
        std::string to = folder(name);
        std::filesystem::copy(s().ledger_dir, to);
        return to;
    }
    CommandResult recover_once(const std::string& name, const std::string& ledger) {
        std::string f = folder(name);
        std::filesystem::create_directories(f);
        write_text_file(f + "/config.json",
                        make_config(f, s().members[0], {}, {{"local_sealing", false}}).dump(2));
        return run_coffer({"node", "recover", "--config", f + "/config.json", "--ledger", ledger},
                          kRecoveryStartMs);
    }
    // Starts a recovery in the background from the untouched ledger folder and accepts it.
    std::unique_ptr<RecoveringNode> start_and_accept(const std::string& name) {
        auto node = std::make_unique<RecoveringNode>(folder(name));
        std::string why;
        node->write_config({{"local_sealing", false}});
        EXPECT_TRUE(node->start({s().ledger_dir}, why)) << why;
        std::vector<Identity> two(s().members.begin(), s().members.begin() + 2);
        EXPECT_TRUE(pass_proposal(
            node->port(), node->cert_path(), two,
            json::array({{{"name", "transition_service_to_open"}, {"args", json::object()}}}), why))
            << why << node->log();
        return node;
    }
};

TEST_F(RecoveryAttackTest, RemovedMembersOldShareSetCannotReadSecretsWrittenAfterRekey) {
    auto a0 = gov::recovery_share_from_text(s().shares_a[0]);
    auto a2 = gov::recovery_share_from_text(s().shares_a[2]);
    auto c0 = gov::recovery_share_from_text(s().shares_c[0]);
    auto c1 = gov::recovery_share_from_text(s().shares_c[1]);
    ASSERT_TRUE(a0.ok() && a2.ok() && c0.ok() && c1.ok());
    // The removed member and one colluding holder rebuild the old set: by design they get the
    // secrets of that time...
    std::vector<Bytes> old_shares = {*a0, *a2};
    auto old_secrets = gov::recover_ledger_secrets(s().set_a, old_shares);
    ASSERT_TRUE(old_secrets.ok()) << old_secrets.status().to_string();
    std::vector<Bytes> new_shares = {*c0, *c1};
    auto new_secrets = gov::recover_ledger_secrets(s().set_c, new_shares);
    ASSERT_TRUE(new_secrets.ok()) << new_secrets.status().to_string();
    // ...never the secret the rekey made, nor its key bytes.
    uint32_t old_newest = 0;
    for (const auto& secret : *old_secrets) {
        old_newest = std::max(old_newest, secret.version);
        for (const auto& fresh : *new_secrets) {
            if (fresh.version > secret.version) {
                EXPECT_NE(fresh.key, secret.key) << "a later secret equals an older one";
            }
        }
    }
    ASSERT_FALSE(new_secrets->empty());
    EXPECT_GT(new_secrets->back().version, old_newest);
    // The old set's shares do not combine with the new set.
    std::vector<Bytes> mixed = {*a0, *c1};
    EXPECT_FALSE(gov::recover_ledger_secrets(s().set_c, mixed).ok());
}

TEST_F(RecoveryAttackTest, EditedRecoveryValueInAChunkIsRefused) {
    std::string edited = copy_ledger("edited-threshold");
    uint64_t seqno = edit_entry(edited, "\"threshold\":2", "\"threshold\":1");
    ASSERT_GT(seqno, 0u) << "no recovery value found in the chunk files";
    CommandResult r = recover_once("edited-threshold-node", edited);
    EXPECT_NE(r.output.find("signed root"), std::string::npos) << r.output;
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_TRUE(files_under(folder("edited-threshold-node") + "/data/ledger").empty());

    // The members map: member1's encryption key swapped for one the operator holds.
    std::string edited_members = copy_ledger("edited-members");
    std::string member1_key = read_text_file(s().members[1].enc_pub_path);
    Identity mine = keygen(s().dir->path(), "operator");
    std::string operator_key = read_text_file(mine.enc_pub_path);
    auto body = [](const std::string& pem) { return pem.substr(pem.find('\n') + 1, 60); };
    ASSERT_GT(edit_entry(edited_members, body(member1_key), body(operator_key)), 0u);
    CommandResult r2 = recover_once("edited-members-node", edited_members);
    EXPECT_NE(r2.output.find("signed root"), std::string::npos) << r2.output;
    EXPECT_NE(r2.exit_code, 0) << r2.output;
}

TEST_F(RecoveryAttackTest, LedgerFolderMissingAMiddleChunkIsRefused) {
    std::string partial = copy_ledger("partial");
    std::vector<std::string> chunks = chunk_files(partial);
    ASSERT_GE(chunks.size(), 3u) << "the lost ledger has too few chunks to remove a middle one";
    std::filesystem::remove(chunks[chunks.size() / 2]);
    CommandResult r = recover_once("partial-node", partial);
    EXPECT_NE(r.output.find("missing chunk"), std::string::npos) << r.output;
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_TRUE(files_under(folder("partial-node") + "/data/ledger").empty());
}

TEST_F(RecoveryAttackTest, LedgerFolderInsideTheRecoveringDataDirIsRefusedAndKept) {
    std::string f = folder("own");
    std::filesystem::create_directories(f + "/data");
    std::filesystem::copy(s().ledger_dir, f + "/data/ledger");
    std::vector<std::string> before = files_under(f + "/data/ledger");
    CommandResult r = recover_once("own", f + "/data/ledger");
    EXPECT_NE(r.output.find("holds a ledger but no node.json"), std::string::npos) << r.output;
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_EQ(files_under(f + "/data/ledger"), before) << "the operator's only copy was touched";
    // The data folder itself as the ledger folder.
    std::string g = folder("own2");
    CommandResult r2 = recover_once("own2", g + "/data");
    EXPECT_NE(r2.output.find("nothing to recover"), std::string::npos) << r2.output;
    EXPECT_NE(r2.exit_code, 0) << r2.output;
}

TEST_F(RecoveryAttackTest, RecoveryRefusesBadSharesAndTwoRecoveriesNeverShareAKey) {
    const Identity& m0 = s().members[0];
    const Identity& m1 = s().members[1];
    const Identity& m2 = s().members[2];
    auto first = std::make_unique<RecoveringNode>(folder("first"));
    std::string why;
    first->write_config({{"local_sealing", false}});
    ASSERT_TRUE(first->start({s().ledger_dir}, why)) << why;
    std::string share_set =
        first->recovery().is_object()
            ? recovery_value(first->port(), first->cert_pem(), m0).value("share_set", "")
            : "";
    ASSERT_EQ(share_set, s().set_c.value("share_set", ""));

    // Users get nothing while recovering.
    Answer read = call(first->port(), first->cert_pem(), &s().network->user(0), "GET",
                       "/app/log/private?id=100");
    EXPECT_EQ(read.status, 503) << read.text();
    // Shares before the members accepted the recovered state.
    Answer early =
        post_to(*first, m0, "/gov/recovery_shares", share_request(*first, m0, s().shares_c[0]));
    EXPECT_EQ(early.status, 409) << early.text();
    // Governance during recovery must not replace the share set the members hold.
    std::vector<Identity> two = {m0, m1};
    for (const json& action :
         {json{{"name", "rekey_ledger"}, {"args", json::object()}},
          json{{"name", "set_recovery_threshold"}, {"args", {{"threshold", 1}}}},
          json{{"name", "set_member"},
               {"args",
                {{"cert", m2.cert_pem},
                 {"encryption_public_key", read_text_file(m2.enc_pub_path)}}}}}) {
        std::string failed;
        auto id =
            pass_proposal(first->port(), first->cert_path(), two, json::array({action}), failed);
        EXPECT_FALSE(id.has_value()) << action.dump().substr(0, 80) << " passed while recovering";
        EXPECT_EQ(recovery_value(first->port(), first->cert_pem(), m0).value("share_set", ""),
                  share_set)
            << action.dump().substr(0, 80) << " replaced the share set while recovering";
    }
    ASSERT_TRUE(pass_proposal(
        first->port(), first->cert_path(), two,
        json::array({{{"name", "transition_service_to_open"}, {"args", json::object()}}}), why))
        << why;
    EXPECT_EQ(first->recovery().value("service_status", ""), "waiting_for_recovery_shares");
    // A second transition cannot skip the shares.
    std::string second_why;
    EXPECT_FALSE(pass_proposal(
        first->port(), first->cert_path(), two,
        json::array({{{"name", "transition_service_to_open"}, {"args", json::object()}}}),
        second_why));
    EXPECT_NE(first->recovery().value("service_status", ""), "open");

    // Shares of the older set (the removed member's, or a current member's), a forged share,
    // and the removed member itself.
    Answer old_set =
        post_to(*first, m0, "/gov/recovery_shares", share_request(*first, m0, s().shares_a[2]));
    // docs/endpoints.md promises 400 for a share of another share set; the node answers 409
    // (kFailedPrecondition in refuse_share). Either refuses it; the mismatch is reported.
    EXPECT_TRUE(old_set.status == 400 || old_set.status == 409) << old_set.text();
    EXPECT_NE(old_set.body.dump().find("another share set"), std::string::npos) << old_set.text();
    Answer own_old =
        post_to(*first, m1, "/gov/recovery_shares", share_request(*first, m1, s().shares_a[1]));
    EXPECT_TRUE(own_old.status == 400 || own_old.status == 409) << own_old.text();
    EXPECT_NE(own_old.body.dump().find("another share set"), std::string::npos) << own_old.text();
    auto plain = gov::recovery_share_from_text(s().shares_c[1]);
    ASSERT_TRUE(plain.ok());
    Bytes forged = *plain;
    forged.back() ^= 0x01;
    Answer forged_answer = post_to(*first, m1, "/gov/recovery_shares",
                                   share_request(*first, m1, gov::recovery_share_to_text(forged)));
    EXPECT_EQ(forged_answer.status, 400) << forged_answer.text();
    Answer removed =
        post_to(*first, m2, "/gov/recovery_shares", share_request(*first, m2, s().shares_a[2]));
    EXPECT_TRUE(removed.status == 401 || removed.status == 403) << removed.text();
    EXPECT_EQ(first->recovery().value("received", -1), 0);

    // One good share, then the recovering process dies: the next attempt starts from zero
    // and the captured request is useless there.
    Bytes captured = share_request(*first, m0, s().shares_c[0]);
    Answer one = post_to(*first, m0, "/gov/recovery_shares", captured);
    ASSERT_EQ(one.status, 200) << one.text();
    EXPECT_EQ(post_to(*first, m0, "/gov/recovery_shares", captured).status, 409);
    first->kill_hard();

    s().fork = start_and_accept("second");
    RecoveringNode& second = *s().fork;
    EXPECT_EQ(second.recovery().value("received", -1), 0);
    Answer replayed = post_to(second, m0, "/gov/recovery_shares", captured);
    EXPECT_EQ(replayed.status, 403) << replayed.text();
    Answer still_locked = call(second.port(), second.cert_pem(), &s().network->user(0), "GET",
                               "/app/log/private?id=100");
    EXPECT_EQ(still_locked.status, 503);
    Bytes last = share_request(second, m1, s().shares_c[1]);
    ASSERT_EQ(
        post_to(second, m0, "/gov/recovery_shares", share_request(second, m0, s().shares_c[0]))
            .status,
        200);
    ASSERT_EQ(post_to(second, m1, "/gov/recovery_shares", last).status, 200);
    ASSERT_TRUE(second.wait_open()) << second.log();

    // Every private write comes back, before and after the lost network's rekey.
    auto user = client_of(second.port(), second.cert_pem(), &s().network->user(0));
    ASSERT_NE(user, nullptr);
    for (int i = 0; i < kWritesPerPhase; ++i) {
        for (int id : {100 + i, 200 + i}) {
            auto r = user->request("GET", "/app/log/private?id=" + std::to_string(id));
            ASSERT_TRUE(r.ok());
            EXPECT_EQ(r->status, 200) << id << ": " << r->body;
        }
    }
    // Shares submitted after the recovery are refused.
    EXPECT_EQ(post_to(second, m1, "/gov/recovery_shares", last).status, 409);
    Answer after =
        post_to(second, m1, "/gov/recovery_shares", share_request(second, m1, s().shares_c[1]));
    EXPECT_EQ(after.status, 409) << after.text();

    auto w =
        user->request("POST", "/app/log/private",
                      json{{"id", kForkWriteId}, {"msg", "same plaintext in both forks"}}.dump(),
                      {{"x-coffer-wait-ms", "5000"}});
    ASSERT_TRUE(w.ok());
    ASSERT_EQ(w->status, 200) << w->body;
    std::string tx = json::parse(w->body).value("transaction_id", "");
    s().fork_seqno = std::stoull(tx.substr(tx.find('.') + 1));
    s().fork_secrets = secrets_of(second, s());

    // No share in clear and no plaintext of a private write in any file or log.
    for (const std::string& share : {s().shares_c[0], s().shares_c[1], s().shares_a[2]}) {
        EXPECT_EQ(file_containing(s().dir->path(), share), "") << "a share reached a file";
    }
    for (const std::string& msg : s().private_msgs) {
        EXPECT_EQ(file_containing(s().dir->path(), msg), "") << msg << " reached a file";
    }

    // Two recoveries from the same files never encrypt under one key (a second fork from the
    // same folder writes the same plaintext; its secret differs from the first fork's).
    {
        auto other = start_and_accept("third");
        ASSERT_EQ(post_to(*other, s().members[0], "/gov/recovery_shares",
                          share_request(*other, s().members[0], s().shares_c[0]))
                      .status,
                  200);
        ASSERT_EQ(post_to(*other, s().members[1], "/gov/recovery_shares",
                          share_request(*other, s().members[1], s().shares_c[1]))
                      .status,
                  200);
        ASSERT_TRUE(other->wait_open()) << other->log();
        auto other_user = client_of(other->port(), other->cert_pem(), &s().network->user(0));
        ASSERT_NE(other_user, nullptr);
        auto other_write = other_user->request(
            "POST", "/app/log/private",
            json{{"id", kForkWriteId}, {"msg", "same plaintext in both forks"}}.dump(),
            {{"x-coffer-wait-ms", "5000"}});
        ASSERT_TRUE(other_write.ok());
        ASSERT_EQ(other_write->status, 200) << other_write->body;
        std::string other_tx = json::parse(other_write->body).value("transaction_id", "");
        uint64_t seqno = std::stoull(other_tx.substr(other_tx.find('.') + 1));
        std::vector<ledger::LedgerSecret> other_secrets = secrets_of(*other, s());
        s().fork->kill_hard();
        other->kill_hard();

        std::string a = entry_at(s().fork->data_dir() + "/ledger", s().fork_seqno);
        std::string b = entry_at(other->data_dir() + "/ledger", seqno);
        ASSERT_GT(a.size(), 32u);
        ASSERT_GT(b.size(), 32u);
        uint32_t private_a = get_u32_at(a, 28);
        uint32_t private_b = get_u32_at(b, 28);
        ASSERT_GT(private_a, 16u);
        ASSERT_GT(private_b, 16u);
        bool same_iv =
            get_u64_at(a, 8) == get_u64_at(b, 8) && get_u64_at(a, 16) == get_u64_at(b, 16);
        std::cerr << "fork entries: seqno " << s().fork_seqno << " / " << seqno
                  << ", secret version " << get_u32_at(a, 4) << " / " << get_u32_at(b, 4)
                  << ", same (view, seqno): " << same_iv << "\n";
        std::string ct_a = a.substr(a.size() - private_a, private_a - 16);
        std::string ct_b = b.substr(b.size() - private_b, private_b - 16);
        // The secret each fork encrypts its new entries with must differ, whatever its version.
        auto find = [](const std::vector<ledger::LedgerSecret>& all, uint32_t version) -> Bytes {
            for (const auto& secret : all) {
                if (secret.version == version) {
                    return secret.key;
                }
            }
            return Bytes();
        };
        auto key_a = find(s().fork_secrets, get_u32_at(a, 4));
        auto key_b = find(other_secrets, get_u32_at(b, 4));
        ASSERT_FALSE(key_a.empty());
        ASSERT_FALSE(key_b.empty());
        EXPECT_NE(key_a, key_b) << "two recoveries from the same files encrypt under one key";
        // Same plaintext: equal ciphertexts under the same IV would mean the same key.
        if (same_iv && ct_a.size() == ct_b.size()) {
            EXPECT_NE(ct_a, ct_b) << "two recoveries encrypted under the same key and nonce";
        }
    }
}

}  // namespace
}  // namespace coffer::e2e
