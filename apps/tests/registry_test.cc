#include <gtest/gtest.h>

#include "apps/registry.h"

namespace coffer::apps {
namespace {

net::HttpResponse ok_handler(const net::HttpRequest&, const Caller&) {
    return net::HttpResponse::json(200, {{"ok", true}});
}

TEST(Registry, PolicyTableAnswersEveryCallerKind) {
    const CallerKind kinds[] = {CallerKind::kAnonymous, CallerKind::kUnknownCertificate,
                                CallerKind::kUser, CallerKind::kMember};
    // Rows: policies; columns: kinds above. 0 means the handler runs.
    const std::pair<AuthPolicy, std::array<int, 4>> table[] = {
        {AuthPolicy::kAnonymous, {0, 0, 0, 0}},
        {AuthPolicy::kAnyAuthenticated, {401, 401, 0, 0}},
        {AuthPolicy::kUser, {401, 401, 0, 403}},
        {AuthPolicy::kMember, {401, 401, 403, 0}},
    };
    for (const auto& [policy, expected] : table) {
        for (size_t i = 0; i < 4; ++i) {
            auto refused = check_policy(policy, Caller{kinds[i], "fp"});
            int got = refused.has_value() ? refused->status : 0;
            EXPECT_EQ(got, expected[i])
                << policy_name(policy) << " / " << caller_kind_name(kinds[i]);
        }
    }
}

TEST(Registry, DispatchAnswers404And405AndChecksPolicyFirst) {
    EndpointRegistry registry;
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

TEST(Registry, RefusesDuplicatesAndIncompleteEndpoints) {
    EndpointRegistry registry;
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
