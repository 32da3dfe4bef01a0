#include <gtest/gtest.h>

#include "apps/registry.h"

namespace coffer::apps {
namespace {

net::HttpResponse ok_handler(const net::HttpRequest&, const Caller&) {
    return net::HttpResponse::json(200, {{"ok", true}});
}

std::string open_service() {
    return "open";
}

TEST(Registry, PolicyTableAnswersEveryCallerKind) {
    const CallerKind kinds[] = {CallerKind::kAnonymous, CallerKind::kUnknownCertificate,
                                CallerKind::kRemovedUser, CallerKind::kUser, CallerKind::kMember};
    // Rows: policies; columns: kinds above. 0 means the handler runs.
    const std::pair<AuthPolicy, std::array<int, 5>> table[] = {
        {AuthPolicy::kAnonymous, {0, 0, 0, 0, 0}},
        {AuthPolicy::kAnyAuthenticated, {401, 401, 403, 0, 0}},
        {AuthPolicy::kUser, {401, 401, 403, 0, 403}},
        {AuthPolicy::kMember, {401, 401, 403, 403, 0}},
    };
    for (const auto& [policy, expected] : table) {
        for (size_t i = 0; i < 5; ++i) {
            auto refused = check_policy(policy, Caller{kinds[i], "fp"});
            int got = refused.has_value() ? refused->status : 0;
            EXPECT_EQ(got, expected[i])
                << policy_name(policy) << " / " << caller_kind_name(kinds[i]);
        }
    }
}

TEST(Registry, RemovedUserIsToldWhy) {
    auto refused = check_policy(AuthPolicy::kUser, Caller{CallerKind::kRemovedUser, "fp"});
    ASSERT_TRUE(refused.has_value());
    EXPECT_EQ(refused->status, 403);
    EXPECT_NE(refused->body.find("this user was removed by governance"), std::string::npos)
        << refused->body;
}

TEST(Registry, DispatchAnswers404And405AndChecksPolicyFirst) {
    EndpointRegistry registry(open_service);
    ASSERT_TRUE(registry.add({"GET", "/a", AuthPolicy::kUser, "a", ok_handler, "", ""}).ok());
    ASSERT_TRUE(registry.add({"POST", "/a", AuthPolicy::kUser, "a", ok_handler, "", ""}).ok());
    net::HttpRequest request;
    request.method = "GET";
    request.path = "/a";
    EXPECT_EQ(registry.dispatch(request, Caller{CallerKind::kUser, "fp"}).status, 200);
    EXPECT_EQ(registry.dispatch(request, Caller{CallerKind::kMember, "fp"}).status, 403);
    EXPECT_EQ(registry.dispatch(request, Caller{}).status, 401);
    request.method = "DELETE";
    net::HttpResponse not_allowed = registry.dispatch(request, Caller{CallerKind::kUser, "fp"});
    EXPECT_EQ(not_allowed.status, 405);
    EXPECT_EQ(not_allowed.header("allow").value_or(""), "GET, POST");
    request.path = "/b";
    EXPECT_EQ(registry.dispatch(request, Caller{CallerKind::kUser, "fp"}).status, 404);
}

// Users reach kUser endpoints only while the service is open; everything else is served in
// every state, and the policy is checked before the state.
TEST(Registry, UserEndpointsAnswer503UntilTheServiceIsOpen) {
    std::string status = "opening";
    int status_reads = 0;
    EndpointRegistry registry([&] {
        ++status_reads;
        return status;
    });
    ASSERT_TRUE(registry.add({"GET", "/app", AuthPolicy::kUser, "", ok_handler, "", ""}).ok());
    ASSERT_TRUE(registry.add({"GET", "/gov", AuthPolicy::kMember, "", ok_handler, "", ""}).ok());
    ASSERT_TRUE(
        registry.add({"GET", "/both", AuthPolicy::kAnyAuthenticated, "", ok_handler, "", ""}).ok());
    ASSERT_TRUE(
        registry.add({"GET", "/node", AuthPolicy::kAnonymous, "", ok_handler, "", ""}).ok());
    net::HttpRequest request;
    request.method = "GET";
    auto answer = [&](const std::string& path, CallerKind kind) {
        request.path = path;
        return registry.dispatch(request, Caller{kind, "fp"});
    };

    for (const char* state : {"opening", "recovering", "waiting_for_recovery_shares", ""}) {
        status = state;
        net::HttpResponse refused = answer("/app", CallerKind::kUser);
        EXPECT_EQ(refused.status, 503) << state;
        EXPECT_NE(refused.body.find("service_not_open"), std::string::npos) << refused.body;
        EXPECT_EQ(answer("/app", CallerKind::kMember).status, 403) << state;
        EXPECT_EQ(answer("/app", CallerKind::kAnonymous).status, 401) << state;
        EXPECT_EQ(answer("/gov", CallerKind::kMember).status, 200) << state;
        EXPECT_EQ(answer("/both", CallerKind::kUser).status, 200) << state;
        EXPECT_EQ(answer("/node", CallerKind::kAnonymous).status, 200) << state;
    }
    status = "open";
    EXPECT_EQ(answer("/app", CallerKind::kUser).status, 200);
    // Read only for user endpoints that passed the policy.
    EXPECT_EQ(status_reads, 5);
}

TEST(Registry, NotOpenAnswerNamesTheStatusAndWhatMembersDo) {
    auto opening = check_service_status(AuthPolicy::kUser, "opening");
    ASSERT_TRUE(opening.has_value());
    EXPECT_NE(opening->body.find(R"(the service is not open: its status is \"opening\"; members )"
                                 "open it with a transition_service_to_open proposal"),
              std::string::npos)
        << opening->body;
    auto waiting = check_service_status(AuthPolicy::kUser, "waiting_for_recovery_shares");
    ASSERT_TRUE(waiting.has_value());
    EXPECT_NE(waiting->body.find("recovery shares"), std::string::npos) << waiting->body;
    auto unknown = check_service_status(AuthPolicy::kUser, "");
    ASSERT_TRUE(unknown.has_value());
    EXPECT_EQ(unknown->header("retry-after").value_or(""), "1");
    EXPECT_FALSE(check_service_status(AuthPolicy::kUser, "open").has_value());
    EXPECT_FALSE(check_service_status(AuthPolicy::kMember, "opening").has_value());
}

TEST(Registry, RefusesDuplicatesAndIncompleteEndpoints) {
    EndpointRegistry registry(open_service);
    ASSERT_TRUE(registry.add({"GET", "/a", AuthPolicy::kAnonymous, "", ok_handler, "", ""}).ok());
    EXPECT_FALSE(registry.add({"GET", "/a", AuthPolicy::kUser, "", ok_handler, "", ""}).ok());
    EXPECT_FALSE(registry.add({"GET", "b", AuthPolicy::kUser, "", ok_handler, "", ""}).ok());
    EXPECT_FALSE(registry.add({"GET", "/c", AuthPolicy::kUser, "", nullptr, "", ""}).ok());
    nlohmann::json listed = registry.describe();
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0]["policy"], "anonymous");
}

}  // namespace
}  // namespace coffer::apps
