#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "net/http.h"

namespace coffer::net {
namespace {

std::string nested_arrays(size_t depth) {
    return std::string(depth, '[') + std::string(depth, ']');
}

TEST(PercentDecode, DecodesEscapesAndKeepsPlus) {
    auto decoded = percent_decode("a%20b+c%2Fd%e2%82%AC");
    ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
    EXPECT_EQ(*decoded, "a b+c/d\xe2\x82\xac");
}

TEST(PercentDecode, RejectsMalformedEscapes) {
    for (const char* bad : {"%", "%2", "abc%", "%zz", "%2g", "%%41", "a%00b"}) {
        auto decoded = percent_decode(bad);
        EXPECT_FALSE(decoded.ok()) << bad;
        if (!decoded.ok()) {
            EXPECT_EQ(decoded.status().code(), Errc::kInvalidArgument);
        }
    }
}

TEST(ParseTarget, SplitsPathAndDecodesQuery) {
    auto parsed = parse_target("/app/log%20s?id=42&name=a%26b&flag&&empty=");
    ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
    EXPECT_EQ(parsed->path, "/app/log s");
    ASSERT_EQ(parsed->query.size(), 4u);
    EXPECT_EQ(parsed->query.at("id"), "42");
    EXPECT_EQ(parsed->query.at("name"), "a&b");
    EXPECT_EQ(parsed->query.at("flag"), "");
    EXPECT_EQ(parsed->query.at("empty"), "");
}

TEST(ParseTarget, RejectsNonOriginFormDuplicatesAndBadEscapes) {
    for (const char* bad : {"", "app/log", "http://example.com/", "*", "/a#frag", "/a?x=1&x=2",
                            "/a?=1", "/a%zz", "/a?k=%4", "/a?%00=1"}) {
        EXPECT_FALSE(parse_target(bad).ok()) << bad;
    }
}

TEST(ParseTarget, LimitsTheNumberOfParameters) {
    std::string target = "/q?";
    for (size_t i = 0; i <= kMaxQueryParameters; ++i) {
        target += "k" + std::to_string(i) + "=v&";
    }
    auto parsed = parse_target(target);
    ASSERT_FALSE(parsed.ok());
    EXPECT_NE(parsed.status().message().find("query parameters"), std::string::npos);
}

TEST(HttpRequest, HeaderLookupIsCaseInsensitive) {
    HttpRequest request;
    request.headers = {{"Content-Type", "application/json"}, {"X-A", "1"}, {"x-a", "2"}};
    EXPECT_EQ(request.header("content-type"), "application/json");
    EXPECT_EQ(request.header("X-a"), "1");
    EXPECT_FALSE(request.header("missing").has_value());
}

TEST(HttpResponse, ErrorHasTheCommonJsonShape) {
    HttpResponse response = HttpResponse::error(404, "not_found", "no such \"thing\"");
    EXPECT_EQ(response.status, 404);
    EXPECT_EQ(response.header("Content-Type"), "application/json");
    auto body = nlohmann::json::parse(response.body);
    EXPECT_EQ(body["error"]["code"], "not_found");
    EXPECT_EQ(body["error"]["message"], "no such \"thing\"");
}

TEST(ParseJson, ParsesOrdinaryDocuments) {
    auto parsed = parse_json(R"({"id":1,"msg":"hi","list":[1,2.5,true,null,{"a":[]}]})");
    ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
    EXPECT_EQ((*parsed)["id"], 1);
    EXPECT_EQ((*parsed)["msg"], "hi");
    EXPECT_EQ((*parsed)["list"][4]["a"].size(), 0u);
    auto scalar = parse_json("  \"x\" ");
    ASSERT_TRUE(scalar.ok());
    EXPECT_EQ(*scalar, "x");
}

TEST(ParseJson, AcceptsDepthUpToTheLimit) {
    auto at_default = parse_json(nested_arrays(kDefaultMaxJsonDepth));
    ASSERT_TRUE(at_default.ok()) << at_default.status().to_string();
    auto sixty = parse_json("{\"id\":1,\"msg\":" + nested_arrays(59) + "}");
    ASSERT_TRUE(sixty.ok()) << sixty.status().to_string();
    EXPECT_TRUE((*sixty)["msg"].is_array());
    EXPECT_TRUE(parse_json(nested_arrays(3), 3).ok());
}

TEST(ParseJson, RejectsDepthOverTheLimitWithAClearMessage) {
    auto over = parse_json(nested_arrays(kDefaultMaxJsonDepth + 1));
    ASSERT_FALSE(over.ok());
    EXPECT_EQ(over.status().code(), Errc::kInvalidArgument);
    EXPECT_NE(over.status().message().find("nesting depth"), std::string::npos);
    EXPECT_FALSE(parse_json("{\"a\":{\"b\":{\"c\":1}}}", 2).ok());
}

// HTTP-4 items 1 and 3: hostile nesting is refused quickly and without deep recursion.
TEST(ParseJson, RefusesHundredThousandOpenBracketsQuickly) {
    const auto start = std::chrono::steady_clock::now();
    const std::string body =
        "{\"id\":1,\"msg\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
    auto parsed = parse_json(body);
    ASSERT_FALSE(parsed.ok());
    EXPECT_NE(parsed.status().message().find("nesting depth"), std::string::npos);

    auto unterminated = parse_json(std::string(10 << 20, '['));
    ASSERT_FALSE(unterminated.ok());
    EXPECT_NE(unterminated.status().message().find("nesting depth"), std::string::npos);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(ParseJson, ReportsSyntaxErrorsWithPosition) {
    auto parsed = parse_json("{\"a\": [1, 2,, 3]}");
    ASSERT_FALSE(parsed.ok());
    EXPECT_NE(parsed.status().message().find("invalid JSON at byte"), std::string::npos)
        << parsed.status().message();
    EXPECT_FALSE(parse_json("").ok());
    EXPECT_FALSE(parse_json("[1] x").ok());
    EXPECT_FALSE(parse_json("{\"a\":1,}").ok());
}

TEST(ParseJson, RejectsDuplicateKeys) {
    auto parsed = parse_json(R"({"a":1,"b":{"c":1,"c":2}})");
    ASSERT_FALSE(parsed.ok());
    EXPECT_NE(parsed.status().message().find("duplicate key"), std::string::npos);
}

}  // namespace
}  // namespace coffer::net

namespace coffer::net {
namespace {

// A syntax error quotes the text last read; a 900 KB number must not come back whole.
TEST(ParseJson, SyntaxErrorMessagesDoNotEchoTheBodyAtLength) {
    std::string body = "{\"id\": 1" + std::string(900'000, '2') + "x}";
    auto parsed = parse_json(body);
    ASSERT_FALSE(parsed.ok());
    EXPECT_LT(parsed.status().message().size(), kMaxJsonErrorChars + 64)
        << parsed.status().message().substr(0, 300);
    EXPECT_NE(parsed.status().message().find("invalid JSON at byte"), std::string::npos);
}

}  // namespace
}  // namespace coffer::net
