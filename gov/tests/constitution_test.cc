#include "gov/constitution.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "crypto/ecdsa.h"
#include "crypto/x25519.h"
#include "crypto/x509.h"

namespace coffer::gov {
namespace {

using nlohmann::json;

constexpr std::string_view kMembersMap = "public:coffer.gov.members";
constexpr std::string_view kUsersMap = "public:coffer.gov.users";
constexpr std::string_view kNodesMap = "public:coffer.gov.nodes";

// Small limits for the tests that exceed them on purpose, so they stay fast under ASan.
constexpr ConstitutionLimits kTightLimits{1'000'000, size_t{4} << 20};

// Governance state in memory, recording effects in order.
class MemoryHost : public GovernanceHost {
  public:
    Result<std::optional<json>> get(std::string_view map, std::string_view key) override {
        auto m = maps.find(std::string(map));
        if (m == maps.end()) {
            return std::optional<json>();
        }
        auto it = m->second.find(std::string(key));
        if (it == m->second.end()) {
            return std::optional<json>();
        }
        return std::optional<json>(it->second);
    }

    Status put(std::string_view map, std::string_view key, const json& value) override {
        if (refused_map == map) {
            return error(Errc::kPermissionDenied, "host refuses writes to " + refused_map);
        }
        maps[std::string(map)][std::string(key)] = value;
        return Status();
    }

    Status remove(std::string_view map, std::string_view key) override {
        maps[std::string(map)].erase(std::string(key));
        return Status();
    }

    Result<std::vector<std::string>> keys(std::string_view map) override {
        // Newest-first, as a host might: the constitution must see them sorted anyway.
        std::vector<std::string> out;
        for (auto it = maps[std::string(map)].rbegin(); it != maps[std::string(map)].rend(); ++it) {
            out.push_back(it->first);
        }
        return out;
    }

    Status effect(std::string_view name, const json& args) override {
        effects.emplace_back(std::string(name), args);
        return Status();
    }

    std::map<std::string, std::map<std::string, json>> maps;
    std::vector<std::pair<std::string, json>> effects;
    std::string refused_map;
};

struct Identity {
    std::string cert_pem;
    std::string fingerprint;
    std::string encryption_key_pem;
};

Identity make_identity(const std::string& name) {
    auto key = crypto::EcdsaPrivateKey::generate();
    EXPECT_TRUE(key.ok());
    crypto::CertificateOptions options;
    options.common_name = name;
    options.not_before_unix = 1'700'000'000;
    options.not_after_unix = 1'900'000'000;
    auto cert = crypto::make_self_signed_certificate(*key, options);
    EXPECT_TRUE(cert.ok());
    auto encryption_key = crypto::x25519_public_to_pem(crypto::x25519_generate().public_key);
    EXPECT_TRUE(encryption_key.ok());
    return {cert->to_pem(), cert->fingerprint_sha256_hex(), *encryption_key};
}

const Identity& member_identity() {
    static const Identity identity = make_identity("member");
    return identity;
}

const Identity& user_identity() {
    static const Identity identity = make_identity("user");
    return identity;
}

json proposal_of(std::string name, json args) {
    return {{"actions", json::array({{{"name", std::move(name)}, {"args", std::move(args)}}})}};
}

const Constitution& default_constitution() {
    static const Constitution constitution = [] {
        auto c = Constitution::load_default();
        EXPECT_TRUE(c.ok()) << c.status().to_string();
        return std::move(c).value();
    }();
    return constitution;
}

std::string validate_message(const json& proposal) {
    Status status = default_constitution().validate(proposal);
    EXPECT_FALSE(status.ok());
    EXPECT_EQ(status.code(), Errc::kInvalidArgument) << status.to_string();
    return status.message();
}

// A constitution whose three entry points are the given Lua bodies.
Constitution custom(const std::string& validate_body, const std::string& resolve_body,
                    const std::string& apply_body, ConstitutionLimits limits = kTightLimits) {
    std::string source = "function validate(p) " + validate_body +
                         " end\nfunction resolve(p, votes, members) " + resolve_body +
                         " end\nfunction apply(p, id) " + apply_body + " end\n";
    auto c = Constitution::load(source, limits);
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    return std::move(c).value();
}

json three_members() {
    json members = json::object();
    for (const char* fp : {"aa", "bb", "cc"}) {
        members[fp] = {{"cert", "pem"}, {"encryption_public_key", "pem"}, {"status", "active"}};
    }
    return members;
}

TEST(Constitution, DefaultConstitutionDefinesEveryEntryPoint) {
    EXPECT_TRUE(Constitution::check_source(default_constitution_source()).ok());
    EXPECT_EQ(default_constitution().source(), default_constitution_source());
}

TEST(Constitution, CheckSourceRefusesSyntaxErrorsAndMissingEntryPoints) {
    Status syntax = Constitution::check_source("function validate(");
    EXPECT_EQ(syntax.code(), Errc::kInvalidArgument);
    EXPECT_NE(syntax.message().find("constitution:1:"), std::string::npos) << syntax.message();

    Status missing = Constitution::check_source("function validate() end function apply() end");
    EXPECT_EQ(missing.code(), Errc::kInvalidArgument);
    EXPECT_EQ(missing.message(), "constitution does not define a function resolve");
}

TEST(Constitution, DefaultValidateAcceptsWellFormedProposal) {
    const Identity& m = member_identity();
    const Identity& u = user_identity();
    json actions = json::array({
        {{"name", "set_member"},
         {"args", {{"cert", m.cert_pem}, {"encryption_public_key", m.encryption_key_pem}}}},
        {{"name", "set_user"}, {"args", {{"cert", u.cert_pem}}}},
        {{"name", "set_user"},
         {"args", {{"cert", u.cert_pem}, {"encryption_public_key", nullptr}}}},
        {{"name", "remove_user"}, {"args", {{"fingerprint", u.fingerprint}}}},
        {{"name", "remove_member"}, {"args", {{"fingerprint", m.fingerprint}}}},
        {{"name", "trust_node"}, {"args", {{"node_id", std::string(64, 'a')}}}},
        {{"name", "remove_node"}, {"args", {{"node_id", std::string(64, 'b')}}}},
        {{"name", "add_trusted_measurement"}, {"args", {{"measurement", std::string(64, 'c')}}}},
        {{"name", "remove_trusted_measurement"}, {"args", {{"measurement", std::string(96, 'd')}}}},
        {{"name", "set_recovery_threshold"}, {"args", {{"threshold", 2}}}},
        {{"name", "transition_service_to_open"}},
        {{"name", "rekey_ledger"}, {"args", json::object()}},
        {{"name", "set_constitution"},
         {"args", {{"constitution", std::string(default_constitution_source())}}}},
        {{"name", "set_signature_interval"}, {"args", {{"tx_count", 100}, {"interval_ms", 50}}}},
    });
    Status status = default_constitution().validate({{"actions", actions}, {"description", "x"}});
    EXPECT_TRUE(status.ok()) << status.to_string();
}

TEST(Constitution, DefaultValidateRefusesBadArgumentsWithClearMessages) {
    const Identity& m = member_identity();
    EXPECT_EQ(validate_message(proposal_of("set_user", {{"cert", "not a certificate"}})),
              "action set_user: argument cert must be a PEM certificate");
    EXPECT_EQ(validate_message(proposal_of("set_member", {{"cert", m.cert_pem}})),
              "action set_member: argument encryption_public_key is missing");
    EXPECT_EQ(validate_message(proposal_of(
                  "set_member", {{"cert", m.cert_pem}, {"encryption_public_key", m.cert_pem}})),
              "action set_member: argument encryption_public_key must be an X25519 public key "
              "in PEM (SubjectPublicKeyInfo)");
    EXPECT_EQ(validate_message(proposal_of("remove_user", {{"fingerprint", std::string(64, 'A')}})),
              "action remove_user: argument fingerprint must be a SHA-256 fingerprint (64 "
              "lower-case hex characters)");
    EXPECT_EQ(validate_message(proposal_of("set_recovery_threshold", {{"threshold", 0}})),
              "action set_recovery_threshold: argument threshold must be an integer from 1 to "
              "255");
    EXPECT_EQ(validate_message(proposal_of("set_recovery_threshold", {{"threshold", 2.5}})),
              "action set_recovery_threshold: argument threshold must be an integer from 1 to "
              "255");
    EXPECT_EQ(validate_message(proposal_of("add_trusted_measurement", {{"measurement", "abcd"}})),
              "action add_trusted_measurement: argument measurement must be lower-case hex of "
              "16 to 64 bytes");
    EXPECT_EQ(validate_message(proposal_of("rekey_ledger", {{"now", true}})),
              "action rekey_ledger: unknown argument now");
    EXPECT_EQ(validate_message(proposal_of("rekey_ledger", json::array())),
              "action rekey_ledger: arguments must be an object");
}

TEST(Constitution, DefaultValidateRefusesUnknownActionAndMalformedProposals) {
    EXPECT_EQ(validate_message(proposal_of("frobnicate", json::object())),
              "unknown action frobnicate");
    EXPECT_EQ(validate_message({{"actions", json::object()}}),
              "proposal: actions must be an array");
    EXPECT_EQ(validate_message({{"actions", json::array()}}),
              "proposal: actions must hold 1 to 64 actions");
    EXPECT_EQ(validate_message({{"actions", json::array({{{"args", json::object()}}})}}),
              "proposal: action 1 must have a name");
    EXPECT_EQ(
        validate_message({{"actions", json::array({{{"name", "rekey_ledger"}}})}, {"extra", 1}}),
        "proposal: unknown member extra");
    EXPECT_EQ(default_constitution().validate(json::array()).code(), Errc::kInvalidArgument);
}

TEST(Constitution, SetConstitutionValidationCompilesTheCandidate) {
    std::string message =
        validate_message(proposal_of("set_constitution", {{"constitution", "function ("}}));
    EXPECT_EQ(message.rfind("action set_constitution: argument constitution is not a valid "
                            "constitution: constitution:1:",
                            0),
              0u)
        << message;
    message = validate_message(
        proposal_of("set_constitution", {{"constitution", "function validate() end"}}));
    EXPECT_NE(message.find("does not define a function resolve"), std::string::npos) << message;
}

TEST(Constitution, DefaultResolveNeedsStrictMajorityOfActiveMembers) {
    MemoryHost host;
    json members = three_members();
    json proposal = proposal_of("rekey_ledger", json::object());
    auto resolve = [&](const Votes& votes) {
        auto state = default_constitution().resolve(proposal, votes, members, host);
        EXPECT_TRUE(state.ok()) << state.status().to_string();
        return state.ok() ? *state : ProposalState::kOpen;
    };

    EXPECT_EQ(resolve({}), ProposalState::kOpen);
    EXPECT_EQ(resolve({{"aa", true}}), ProposalState::kOpen);
    EXPECT_EQ(resolve({{"aa", true}, {"bb", true}}), ProposalState::kAccepted);
    EXPECT_EQ(resolve({{"aa", false}, {"bb", false}}), ProposalState::kRejected);
    EXPECT_EQ(resolve({{"aa", true}, {"bb", false}}), ProposalState::kOpen);
    // Votes of non-members do not count, nor do members that are not active.
    EXPECT_EQ(resolve({{"aa", true}, {"zz", true}}), ProposalState::kOpen);
    members["cc"]["status"] = "retired";
    EXPECT_EQ(resolve({{"aa", true}}), ProposalState::kOpen);
    EXPECT_EQ(resolve({{"aa", true}, {"cc", true}}), ProposalState::kOpen);
    EXPECT_EQ(resolve({{"aa", true}, {"bb", true}}), ProposalState::kAccepted);
}

TEST(Constitution, UnanimityConstitutionWaitsForEveryActiveMember) {
    Constitution unanimity = custom("return nil",
                                    R"(local n, yes = 0, 0
        for fp, m in pairs(members) do
            if m.status == "active" then
                n = n + 1
                if votes[fp] == false then return "rejected" end
                if votes[fp] == true then yes = yes + 1 end
            end
        end
        if yes == n then return "accepted" end
        return "open")",
                                    "");
    MemoryHost host;
    json members = three_members();
    json proposal = proposal_of("rekey_ledger", json::object());
    auto two = unanimity.resolve(proposal, {{"aa", true}, {"bb", true}}, members, host);
    ASSERT_TRUE(two.ok()) << two.status().to_string();
    EXPECT_EQ(*two, ProposalState::kOpen);
    auto all =
        unanimity.resolve(proposal, {{"aa", true}, {"bb", true}, {"cc", true}}, members, host);
    ASSERT_TRUE(all.ok());
    EXPECT_EQ(*all, ProposalState::kAccepted);
    auto one_no = unanimity.resolve(proposal, {{"aa", true}, {"cc", false}}, members, host);
    ASSERT_TRUE(one_no.ok());
    EXPECT_EQ(*one_no, ProposalState::kRejected);
}

TEST(Constitution, ResolveResultMustBeAState) {
    MemoryHost host;
    Constitution odd = custom("return nil", "return 'maybe'", "");
    auto state = odd.resolve(proposal_of("x", {}), {}, three_members(), host);
    EXPECT_EQ(state.status().code(), Errc::kFailedPrecondition);
    Status validate_number =
        custom("return 42", "return 'open'", "").validate(proposal_of("x", {}));
    EXPECT_EQ(validate_number.code(), Errc::kFailedPrecondition);
    EXPECT_EQ(validate_number.message(),
              "constitution: validate returned a number, expected nil or a string");
    Constitution number = custom("return nil", "return 3", "");
    EXPECT_EQ(number.resolve(proposal_of("x", {}), {}, three_members(), host).status().code(),
              Errc::kFailedPrecondition);
}

TEST(Constitution, LuaErrorsCarryTheirMessage) {
    MemoryHost host;
    Constitution failing =
        custom("error('validate broke', 0)", "error('resolve broke', 0)", "error('apply broke')");
    Status v = failing.validate(proposal_of("x", {}));
    EXPECT_EQ(v.code(), Errc::kInvalidArgument);
    EXPECT_EQ(v.message(), "validate broke");
    auto r = failing.resolve(proposal_of("x", {}), {}, three_members(), host);
    EXPECT_EQ(r.status().code(), Errc::kFailedPrecondition);
    EXPECT_EQ(r.status().message(), "resolve broke");
    Status a = failing.apply(proposal_of("x", {}), "p1", host);
    EXPECT_EQ(a.code(), Errc::kFailedPrecondition);
    EXPECT_EQ(a.message(), "constitution:3: apply broke");
}

TEST(Constitution, InfiniteLoopsAreStoppedByTheInstructionBudget) {
    MemoryHost host;
    Constitution looping =
        custom("while true do end", "while true do end", "local i = 0 while true do i = i + 1 end");
    std::string expected = "constitution exceeded its instruction budget (1000000)";
    auto start = std::chrono::steady_clock::now();

    Status v = looping.validate(proposal_of("x", {}));
    EXPECT_EQ(v.code(), Errc::kResourceExhausted);
    EXPECT_EQ(v.message(), expected);
    auto r = looping.resolve(proposal_of("x", {}), {}, three_members(), host);
    EXPECT_EQ(r.status().code(), Errc::kResourceExhausted);
    EXPECT_EQ(r.status().message(), expected);
    Status a = looping.apply(proposal_of("x", {}), "p1", host);
    EXPECT_EQ(a.code(), Errc::kResourceExhausted);
    EXPECT_EQ(a.message(), expected);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));

    // The process and later calls are unaffected.
    EXPECT_TRUE(default_constitution().validate(proposal_of("rekey_ledger", {})).ok());
}

TEST(Constitution, DefaultBudgetStopsALoopWithinASecond) {
    auto looping = Constitution::load(
        "function validate() while true do end end function resolve() end function apply() end");
    ASSERT_TRUE(looping.ok());
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(looping->validate(json::object()).code(), Errc::kResourceExhausted);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST(Constitution, PcallCannotSwallowTheBudget) {
    Constitution stubborn = custom(
        "while true do pcall(function() while true do end end) end", "return 'open'",
        "for i = 1, 1000 do pcall(function() local t = {} while true do t[#t + 1] = 1 end end) "
        "end");
    Status v = stubborn.validate(proposal_of("x", {}));
    EXPECT_EQ(v.code(), Errc::kResourceExhausted) << v.to_string();
    MemoryHost host;
    Status a = stubborn.apply(proposal_of("x", {}), "p", host);
    EXPECT_EQ(a.code(), Errc::kResourceExhausted) << a.to_string();
}

TEST(Constitution, WriteLimitCannotBeSwallowed) {
    MemoryHost host;
    ConstitutionLimits limits = kTightLimits;
    limits.max_host_writes = 3;
    Constitution writer = custom(
        "return nil", "return 'open'",
        "for i = 1, 10 do pcall(coffer.put, 'public:coffer.gov.x', 'k' .. i, {}) end", limits);
    Status status = writer.apply(proposal_of("x", {}), "p", host);
    EXPECT_EQ(status.code(), Errc::kResourceExhausted);
    EXPECT_EQ(status.message(), "constitution exceeded its write limit (3)");
    EXPECT_EQ(host.maps["public:coffer.gov.x"].size(), 3u);
}

TEST(Constitution, TopLevelLoopIsStoppedWhenLoading) {
    Status status = Constitution::check_source("while true do end", kTightLimits);
    EXPECT_EQ(status.code(), Errc::kResourceExhausted);
}

TEST(Constitution, MemoryBombsAreStoppedByTheMemoryLimit) {
    std::string expected = "constitution exceeded its memory limit (4194304 bytes)";
    for (const char* bomb : {
             "local t = {} for i = 1, 1e9 do t[i] = {i} end",
             "local s = 'x' while true do s = s .. s end",
             "local s = string.rep('x', 1 << 30)",
             "local t = {} while true do t[#t + 1] = string.rep('y', 1000) .. #t end",
             "return table.concat({string.rep('z', 3000000), string.rep('z', 3000000)})",
         }) {
        Constitution c = custom(bomb, "return 'open'", "");
        Status status = c.validate(proposal_of("x", {}));
        EXPECT_EQ(status.code(), Errc::kResourceExhausted) << bomb << ": " << status.to_string();
        EXPECT_EQ(status.message(), expected) << bomb;
    }
    EXPECT_TRUE(default_constitution().validate(proposal_of("rekey_ledger", {})).ok());
}

TEST(Constitution, GarbageNearTheMemoryLimitIsCollectedNotRefused) {
    // Over half the limit stays alive, so the collector's next cycle would start past the
    // limit: the garbage is only reclaimed by the emergency collection Lua runs when an
    // allocation is refused, after which the retried allocation succeeds.
    Constitution churn = custom(R"(
        local big = string.rep('kkkkkkkkkk', 10000)
        local keep = {}
        for i = 1, 24 do keep[i] = big .. i end
        for i = 1, 100 do local s = big .. i end
        if #keep ~= 24 then return 'lost' end)",
                                "return 'open'", "");
    Status status = churn.validate(proposal_of("x", {}));
    EXPECT_TRUE(status.ok()) << status.to_string();
}

TEST(Constitution, SandboxOffersNoIoOsRequireDebugOrCoroutine) {
    Constitution probe = custom(R"(
        local present = {}
        for _, name in ipairs({"io", "os", "package", "require", "debug", "coroutine", "dofile",
                               "loadfile", "collectgarbage"}) do
            if _G[name] ~= nil then present[#present + 1] = name end
        end
        if string.dump ~= nil then present[#present + 1] = "string.dump" end
        if math.random ~= nil then present[#present + 1] = "math.random" end
        if #present > 0 then return "present: " .. table.concat(present, ",") end
        print("print is harmless")
        return nil)",
                                "return 'open'", "");
    Status status = probe.validate(proposal_of("x", {}));
    EXPECT_TRUE(status.ok()) << status.to_string();
}

TEST(Constitution, LoadRefusesBinaryChunks) {
    Constitution probe = custom(R"(
        local f, err = load("\27LuaT\0\25\147\13\10\26\10")
        if f ~= nil then return "binary chunk loaded" end
        if not err:find("binary", 1, true) then return "unexpected: " .. err end
        local g = load("return 1 + 1")
        if g() ~= 2 then return "text chunk failed" end
        return nil)",
                                "return 'open'", "");
    Status status = probe.validate(proposal_of("x", {}));
    EXPECT_TRUE(status.ok()) << status.to_string();
    EXPECT_EQ(Constitution::check_source("\x1bLuaT").code(), Errc::kInvalidArgument);
}

TEST(Constitution, CostlyPatternsAndCBuiltinsStayBounded) {
    Constitution patterns =
        custom("return string.rep('a', 5000):find('.-.-.-.-b') and 'found' or 'none'",
               "return 'open'", "table.move({}, 1, 1e15, 1)");
    Status v = patterns.validate(proposal_of("x", {}));
    EXPECT_EQ(v.code(), Errc::kInvalidArgument);
    EXPECT_NE(v.message().find("string pattern too costly"), std::string::npos) << v.message();
    MemoryHost host;
    Status a = patterns.apply(proposal_of("x", {}), "p", host);
    EXPECT_EQ(a.code(), Errc::kResourceExhausted) << a.to_string();

    Constitution lengthy = custom(
        "local t = setmetatable({}, {__len = function() return 1e15 end}) table.insert(t, 1, 'x')",
        "local t = setmetatable({}, {__len = function() return 1e15 end}) table.remove(t, 1) "
        "return 'open'",
        "");
    Status insert = lengthy.validate(proposal_of("x", {}));
    EXPECT_EQ(insert.code(), Errc::kResourceExhausted) << insert.to_string();
    auto remove = lengthy.resolve(proposal_of("x", {}), {}, three_members(), host);
    EXPECT_EQ(remove.status().code(), Errc::kResourceExhausted) << remove.status().to_string();

    Constitution cheap = custom(
        "if ('xyz'):match('^%x+$') then return 'wrong' end "
        "if not ('abc'):find('b', 1, true) then return 'plain' end "
        "if select(2, ('a,b,c'):gsub(',', ';')) ~= 2 then return 'gsub' end "
        "local t = {1, 2, 3} table.insert(t, 'd') table.insert(t, 1, 'z') "
        "if table.concat(t, ',') ~= 'z,1,2,3,d' then return 'insert' end "
        "if table.remove(t, 2) ~= 1 or table.remove(t) ~= 'd' then return 'remove' end "
        "if table.concat(t, ',') ~= 'z,2,3' then return 'after remove' end "
        "local m = table.move({1, 2, 3}, 1, 3, 2) "
        "if table.concat(m, ',') ~= '1,1,2,3' then return 'move' end return nil",
        "return 'open'", "");
    Status ok = cheap.validate(proposal_of("x", {}));
    EXPECT_TRUE(ok.ok()) << ok.to_string();
}

TEST(Constitution, FinalizersAndWeakTablesAreRefused) {
    Constitution gc = custom("setmetatable({}, {__gc = function() end})", "return 'open'", "");
    Status status = gc.validate(proposal_of("x", {}));
    EXPECT_EQ(status.code(), Errc::kInvalidArgument);
    EXPECT_NE(status.message().find("__gc and __mode are not available"), std::string::npos)
        << status.message();
}

TEST(Constitution, WritesOutsideGovernanceMapsAreRefused) {
    MemoryHost host;
    Constitution writer =
        custom("return nil", "return 'open'", "coffer.put('public:logging.public', 'k', {a = 1})");
    Status status = writer.apply(proposal_of("x", {}), "p", host);
    EXPECT_EQ(status.code(), Errc::kFailedPrecondition);
    EXPECT_NE(status.message().find("out of the constitution's reach"), std::string::npos)
        << status.message();
    EXPECT_TRUE(host.maps["public:logging.public"].empty());

    Constitution reader = custom("return nil", "coffer.get('logging.private', 'k') return 'open'",
                                 "coffer.remove('public:coffer.signatures', 'k')");
    EXPECT_EQ(reader.resolve(proposal_of("x", {}), {}, three_members(), host).status().code(),
              Errc::kFailedPrecondition);
    EXPECT_EQ(reader.apply(proposal_of("x", {}), "p", host).code(), Errc::kFailedPrecondition);
}

TEST(Constitution, HostAccessFollowsTheEntryPoint) {
    MemoryHost host;
    Constitution c = custom("coffer.get('public:coffer.gov.members', 'aa')",
                            "coffer.put('public:coffer.gov.members', 'aa', {}) return 'open'",
                            "coffer.effect('rekey_ledger')");
    Status v = c.validate(proposal_of("x", {}));
    EXPECT_EQ(v.message(), "coffer.get is not available during validate");
    auto r = c.resolve(proposal_of("x", {}), {}, three_members(), host);
    EXPECT_EQ(r.status().message(), "coffer.put is not available during resolve");
    EXPECT_TRUE(c.apply(proposal_of("x", {}), "p", host).ok());
    ASSERT_EQ(host.effects.size(), 1u);
    EXPECT_EQ(host.effects[0].first, "rekey_ledger");
    EXPECT_EQ(host.effects[0].second, json::object());
}

TEST(Constitution, ResolveReadsPublicMapsInSortedOrder) {
    MemoryHost host;
    host.maps["public:coffer.gov.members"] = three_members();
    Constitution reader = custom("return nil", R"(
        local keys = coffer.keys('public:coffer.gov.members')
        if table.concat(keys, ',') ~= 'aa,bb,cc' then return 'unsorted' end
        if coffer.get('public:coffer.gov.members', 'bb').status ~= 'active' then return 'get' end
        if coffer.get('public:coffer.gov.members', 'zz') ~= nil then return 'absent' end
        return 'accepted')",
                                 "");
    auto state = reader.resolve(proposal_of("x", {}), {}, three_members(), host);
    ASSERT_TRUE(state.ok()) << state.status().to_string();
    EXPECT_EQ(*state, ProposalState::kAccepted);
}

TEST(Constitution, HostRefusalKeepsItsErrorCode) {
    MemoryHost host;
    host.refused_map = std::string(kUsersMap);
    const Identity& u = user_identity();
    Status status =
        default_constitution().apply(proposal_of("set_user", {{"cert", u.cert_pem}}), "p", host);
    EXPECT_EQ(status.code(), Errc::kPermissionDenied) << status.to_string();
    EXPECT_NE(status.message().find("host refuses writes"), std::string::npos);
}

TEST(Constitution, ApplySetUserWritesTheUsersMapFormat) {
    MemoryHost host;
    const Identity& u = user_identity();
    Status status =
        default_constitution().apply(proposal_of("set_user", {{"cert", u.cert_pem}}), "p1", host);
    ASSERT_TRUE(status.ok()) << status.to_string();
    ASSERT_EQ(host.maps[std::string(kUsersMap)].count(u.fingerprint), 1u);
    EXPECT_EQ(host.maps[std::string(kUsersMap)][u.fingerprint],
              json({{"cert", u.cert_pem}, {"encryption_public_key", nullptr}}));

    status = default_constitution().apply(
        proposal_of("set_user",
                    {{"cert", u.cert_pem}, {"encryption_public_key", u.encryption_key_pem}}),
        "p2", host);
    ASSERT_TRUE(status.ok()) << status.to_string();
    EXPECT_EQ(host.maps[std::string(kUsersMap)][u.fingerprint],
              json({{"cert", u.cert_pem}, {"encryption_public_key", u.encryption_key_pem}}));
    EXPECT_TRUE(host.effects.empty());

    // A certificate is in at most one of the members and users maps.
    Status as_member = default_constitution().apply(
        proposal_of("set_member",
                    {{"cert", u.cert_pem}, {"encryption_public_key", u.encryption_key_pem}}),
        "p3", host);
    EXPECT_EQ(as_member.code(), Errc::kFailedPrecondition);
    EXPECT_NE(as_member.message().find("is a user's"), std::string::npos) << as_member.message();
}

TEST(Constitution, ApplySetMemberWritesMemberAndReissuesShares) {
    MemoryHost host;
    const Identity& m = member_identity();
    Status status = default_constitution().apply(
        proposal_of("set_member",
                    {{"cert", m.cert_pem}, {"encryption_public_key", m.encryption_key_pem}}),
        "p1", host);
    ASSERT_TRUE(status.ok()) << status.to_string();
    EXPECT_EQ(host.maps[std::string(kMembersMap)][m.fingerprint],
              json({{"cert", m.cert_pem},
                    {"encryption_public_key", m.encryption_key_pem},
                    {"status", "active"}}));
    ASSERT_EQ(host.effects.size(), 1u);
    EXPECT_EQ(host.effects[0].first, "reissue_recovery_shares");
}

TEST(Constitution, ApplyRemoveMemberKeepsEnoughShareHolders) {
    MemoryHost host;
    host.maps[std::string(kMembersMap)] = three_members();
    host.maps["public:coffer.gov.recovery"]["current"] = {{"threshold", 3}};
    std::string aa(64, 'a');
    host.maps[std::string(kMembersMap)][aa] = host.maps[std::string(kMembersMap)]["aa"];
    host.maps[std::string(kMembersMap)].erase("aa");

    Status refused = default_constitution().apply(
        proposal_of("remove_member", {{"fingerprint", aa}}), "p", host);
    EXPECT_EQ(refused.code(), Errc::kFailedPrecondition);
    EXPECT_NE(refused.message().find("fewer than the recovery threshold 3"), std::string::npos)
        << refused.message();
    EXPECT_EQ(host.maps[std::string(kMembersMap)].count(aa), 1u);

    host.maps["public:coffer.gov.recovery"]["current"] = {{"threshold", 2}};
    Status ok = default_constitution().apply(proposal_of("remove_member", {{"fingerprint", aa}}),
                                             "p", host);
    ASSERT_TRUE(ok.ok()) << ok.to_string();
    EXPECT_EQ(host.maps[std::string(kMembersMap)].count(aa), 0u);
    ASSERT_EQ(host.effects.size(), 1u);
    EXPECT_EQ(host.effects[0].first, "reissue_recovery_shares");
}

TEST(Constitution, ApplyTrustAndRemoveNodeUpdateTheVoters) {
    MemoryHost host;
    std::string a(64, 'a');
    std::string b(64, 'b');
    json record = {{"cert", "pem"},
                   {"status", "trusted"},
                   {"attestation", {{"platform", "virtual"}, {"report", "00"}}},
                   {"client_address", "127.0.0.1:1"},
                   {"node_address", "127.0.0.1:2"}};
    host.maps[std::string(kNodesMap)][b] = record;
    record["status"] = "pending";
    host.maps[std::string(kNodesMap)][a] = record;

    Status trust =
        default_constitution().apply(proposal_of("trust_node", {{"node_id", a}}), "p", host);
    ASSERT_TRUE(trust.ok()) << trust.to_string();
    record["status"] = "trusted";
    EXPECT_EQ(host.maps[std::string(kNodesMap)][a], record);
    ASSERT_EQ(host.effects.size(), 1u);
    EXPECT_EQ(host.effects[0].first, "update_raft_configuration");
    EXPECT_EQ(host.effects[0].second, json({{"voters", {a, b}}}));

    Status remove =
        default_constitution().apply(proposal_of("remove_node", {{"node_id", b}}), "p", host);
    ASSERT_TRUE(remove.ok()) << remove.to_string();
    EXPECT_EQ(host.maps[std::string(kNodesMap)][b]["status"], "retired");
    EXPECT_EQ(host.effects.back().second, json({{"voters", {a}}}));
}

TEST(Constitution, ApplyRecordsNodeEffectsInOrder) {
    MemoryHost host;
    host.maps[std::string(kMembersMap)] = three_members();
    json actions = json::array({
        {{"name", "set_recovery_threshold"}, {"args", {{"threshold", 2}}}},
        {{"name", "transition_service_to_open"}},
        {{"name", "rekey_ledger"}},
        {{"name", "set_signature_interval"}, {"args", {{"tx_count", 10}, {"interval_ms", 100}}}},
        {{"name", "add_trusted_measurement"}, {"args", {{"measurement", std::string(64, 'e')}}}},
        {{"name", "set_constitution"},
         {"args", {{"constitution", std::string(default_constitution_source())}}}},
    });
    Status status = default_constitution().apply({{"actions", actions}}, "p", host);
    ASSERT_TRUE(status.ok()) << status.to_string();
    std::vector<std::string> names;
    for (const auto& [name, args] : host.effects) {
        names.push_back(name);
    }
    EXPECT_EQ(names,
              (std::vector<std::string>{"set_recovery_threshold", "open_service", "rekey_ledger",
                                        "set_signature_interval", "set_constitution"}));
    EXPECT_EQ(host.effects[0].second, json({{"threshold", 2}}));
    EXPECT_EQ(host.effects[3].second, json({{"tx_count", 10}, {"interval_ms", 100}}));
    EXPECT_EQ(host.effects[4].second["constitution"], default_constitution_source());
    EXPECT_EQ(host.maps["public:coffer.gov.trusted_measurements"][std::string(64, 'e')],
              json({{"source", "governance"}}));

    Status too_high = default_constitution().apply(
        proposal_of("set_recovery_threshold", {{"threshold", 4}}), "p", host);
    EXPECT_EQ(too_high.code(), Errc::kFailedPrecondition);
}

TEST(Constitution, ApplyRevalidatesTheProposal) {
    MemoryHost host;
    Status status =
        default_constitution().apply(proposal_of("set_user", {{"cert", "junk"}}), "p9", host);
    EXPECT_EQ(status.code(), Errc::kFailedPrecondition);
    EXPECT_EQ(status.message(),
              "apply: proposal p9 is no longer valid: action set_user: argument cert must be a "
              "PEM certificate");
    EXPECT_TRUE(host.maps[std::string(kUsersMap)].empty());
}

TEST(Constitution, JsonRoundTripsThroughLua) {
    MemoryHost host;
    Constitution echo = custom("return nil", "return 'open'",
                               "coffer.put('public:coffer.gov.echo', 'k', p.payload)");
    json payload = {{"empty_array", json::array()},
                    {"empty_object", json::object()},
                    {"nested", json::array({1, json::array({2, 3}), {{"a", nullptr}}})},
                    {"null", nullptr},
                    {"float", 1.5},
                    {"big", int64_t{1} << 62},
                    {"negative", -7},
                    {"text", "caf\xc3\xa9"},
                    {"flag", false}};
    Status status = echo.apply({{"payload", payload}}, "p", host);
    ASSERT_TRUE(status.ok()) << status.to_string();
    EXPECT_EQ(host.maps["public:coffer.gov.echo"]["k"], payload);
}

TEST(Constitution, JsonConversionIsBounded) {
    json deep = json::object();
    for (size_t i = 0; i < kMaxConstitutionJsonDepth + 5; ++i) {
        deep = json({{"d", deep}});
    }
    Status status = default_constitution().validate({{"actions", deep}});
    EXPECT_EQ(status.code(), Errc::kInvalidArgument);
    EXPECT_NE(status.message().find("nests deeper"), std::string::npos) << status.message();

    MemoryHost host;
    Constitution cyclic =
        custom("return nil", "return 'open'",
               "local t = {} t.self = t coffer.put('public:coffer.gov.x', 'k', t)");
    Status cycle = cyclic.apply(proposal_of("x", {}), "p", host);
    EXPECT_EQ(cycle.code(), Errc::kFailedPrecondition);
    EXPECT_NE(cycle.message().find("contains itself"), std::string::npos) << cycle.message();

    json huge = {{"actions", json::array({json(std::numeric_limits<uint64_t>::max())})}};
    Status too_big = default_constitution().validate(huge);
    EXPECT_EQ(too_big.code(), Errc::kInvalidArgument);
    EXPECT_NE(too_big.message().find("exceeds Lua's range"), std::string::npos);

    Constitution bad_utf8 = custom("return nil", "return 'open'",
                                   "coffer.put('public:coffer.gov.x', 'k', {s = '\\255'})");
    EXPECT_EQ(bad_utf8.apply(proposal_of("x", {}), "p", host).code(), Errc::kFailedPrecondition);
    EXPECT_TRUE(host.maps["public:coffer.gov.x"].empty());
}

TEST(Constitution, ConcurrentCallsAreIndependent) {
    const Constitution& c = default_constitution();
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&c, &failures] {
            MemoryHost host;
            for (int i = 0; i < 10; ++i) {
                if (!c.validate(proposal_of("rekey_ledger", json::object())).ok() ||
                    !c.apply(proposal_of("rekey_ledger", json::object()), "p", host).ok()) {
                    failures++;
                }
            }
            if (host.effects.size() != 10) {
                failures++;
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(failures.load(), 0);
}

TEST(Constitution, LimitsAreChecked) {
    EXPECT_EQ(
        Constitution::check_source(default_constitution_source(), {0, kDefaultMemoryLimitBytes})
            .code(),
        Errc::kInvalidArgument);
    EXPECT_EQ(Constitution::check_source(std::string(kMaxConstitutionSourceBytes + 1, ' ')).code(),
              Errc::kInvalidArgument);
}

}  // namespace
}  // namespace coffer::gov
