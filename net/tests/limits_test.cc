// The field cases HTTP-2 (declared sizes and chunk sizes), HTTP-3 (header size, header count,
// slow clients) and HTTP-4 (deeply nested JSON) against a real TLS server on 127.0.0.1.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "net/client.h"
#include "net/server.h"
#include "net/tests/test_util.h"

namespace coffer::net {
namespace {

using Clock = std::chrono::steady_clock;
using testing::client_options;
using testing::make_pki;
using testing::RawTlsConnection;
using testing::server_options;
using testing::start_echo_server;

constexpr uint32_t kReadTimeoutMs = 3000;
// A response that arrives this fast was sent without waiting for the rest of the body.
constexpr auto kPromptly = std::chrono::milliseconds(1500);

struct RawResponse {
    int status = 0;
    std::string head;
    nlohmann::json body;
};

RawResponse parse_raw(const std::string& raw) {
    RawResponse out;
    if (raw.rfind("HTTP/1.1 ", 0) != 0 || raw.size() < 12) {
        return out;
    }
    out.status = std::stoi(raw.substr(9, 3));
    const size_t end = raw.find("\r\n\r\n");
    out.head = raw.substr(0, end);
    if (end != std::string::npos) {
        out.body = nlohmann::json::parse(raw.substr(end + 4), nullptr, false);
    }
    return out;
}

std::string post_head(const std::string& extra_headers) {
    return "POST /app/log HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers + "\r\n";
}

std::string chunked(size_t chunk_bytes, size_t total_bytes, bool terminate) {
    std::string out = post_head("Transfer-Encoding: chunked\r\nConnection: close\r\n");
    char size_line[32];
    std::snprintf(size_line, sizeof(size_line), "%zx\r\n", chunk_bytes);
    for (size_t sent = 0; sent < total_bytes; sent += chunk_bytes) {
        out += size_line + std::string(chunk_bytes, 'x') + "\r\n";
    }
    if (terminate) {
        out += "0\r\n\r\n";
    }
    return out;
}

class LimitsTest : public ::testing::Test {
  protected:
    void SetUp() override { echo_ = start_echo_server(server_options(pki_)); }

    // Sends `bytes`, expects `status` with a JSON error `code`, a closed connection and no
    // handler call; returns how long the answer took.
    Clock::duration expect_refused(const std::string& bytes, int status, const char* code) {
        const int calls_before = echo_.calls->load();
        const auto start = Clock::now();
        auto raw = send_raw_tls(client_options(pki_, echo_.server->port()), bytes, kReadTimeoutMs);
        const auto elapsed = Clock::now() - start;
        EXPECT_TRUE(raw.ok()) << raw.status().to_string();
        const std::string text = raw.ok() ? raw->substr(0, 300) : "";
        const RawResponse response = parse_raw(text);
        EXPECT_EQ(response.status, status) << text;
        EXPECT_EQ(response.body["error"]["code"], code) << text;
        EXPECT_NE(response.head.find("Connection: close"), std::string::npos);
        EXPECT_EQ(echo_.calls->load(), calls_before) << "the handler must not run";
        return elapsed;
    }

    testing::TestPki pki_ = make_pki();
    testing::EchoServer echo_;
};

// HTTP-2 item 1.
TEST_F(LimitsTest, HugeContentLengthGets413BeforeTheBodyIsSent) {
    const auto elapsed = expect_refused(post_head("Content-Length: 10000000000\r\n") + "0123456789",
                                        413, "body_too_large");
    EXPECT_LT(elapsed, kPromptly);
    EXPECT_EQ(echo_.server->stats().body_too_large, 1u);
}

TEST_F(LimitsTest, BodyOfExactlyTheLimitIsAccepted) {
    const size_t limit = server_options(pki_).max_body_bytes;
    auto raw = send_raw_tls(
        client_options(pki_, echo_.server->port()),
        post_head("Content-Length: " + std::to_string(limit) + "\r\nConnection: close\r\n") +
            std::string(limit, 'a'),
        kReadTimeoutMs);
    ASSERT_TRUE(raw.ok()) << raw.status().to_string();
    const RawResponse response = parse_raw(*raw);
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body["body_size"], limit);
}

// HTTP-2 item 2.
TEST_F(LimitsTest, MalformedContentLengthGets400) {
    for (const char* value :
         {"-1", "+5", "0x10", "1e3", "5abc", "123456789012345678901", "", "5, 6"}) {
        SCOPED_TRACE(value);
        expect_refused(post_head(std::string("Content-Length: ") + value + "\r\n") + "hello", 400,
                       "bad_request");
    }
    expect_refused(post_head("Content-Length: 5\r\nContent-Length: 6\r\n") + "hello", 400,
                   "bad_request");
    expect_refused(post_head("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n") + "hello", 400,
                   "bad_request");
}

// RFC 9112 sections 6.1 and 6.3: a body length that two parties could read differently is
// refused before the handler runs, so that no bytes of one request can start another.
TEST_F(LimitsTest, AmbiguousFramingIsRefusedSoNoRequestCanBeSmuggled) {
    const std::string smuggled = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    expect_refused(post_head("Transfer-Encoding: identity\r\n") + smuggled, 501, "not_implemented");
    expect_refused(post_head("Transfer-Encoding: gzip, chunked\r\n") + "5\r\nhello\r\n0\r\n\r\n",
                   501, "not_implemented");
    expect_refused(post_head("Transfer-Encoding: chunked, identity\r\n") + smuggled, 400,
                   "bad_request");
    expect_refused(post_head("Transfer-Encoding: identity\r\nContent-Length: 5\r\n") + "hello", 400,
                   "bad_request");
    expect_refused(post_head("Host: y\r\nContent-Length: 5\r\n") + "hello", 400, "bad_request");
}

// HTTP-2 item 3.
TEST_F(LimitsTest, MalformedChunkSizesGet400) {
    const std::string long_extension = "5;" + std::string(16 << 10, 'a');
    for (const std::string& size_line :
         {std::string("-2"), std::string("fffffffffffffff1"), std::string("1234567890abcdef1234"),
          std::string(""), long_extension}) {
        SCOPED_TRACE(size_line.substr(0, 40));
        expect_refused(
            post_head("Transfer-Encoding: chunked\r\n") + size_line + "\r\nhello\r\n0\r\n\r\n", 400,
            "bad_request");
    }
    EXPECT_EQ(echo_.server->stats().bad_request, 5u);
}

TEST_F(LimitsTest, ChunkedBodyWithinTheLimitIsAccepted) {
    auto raw = send_raw_tls(client_options(pki_, echo_.server->port()),
                            chunked(4096, 512 << 10, true), kReadTimeoutMs);
    ASSERT_TRUE(raw.ok()) << raw.status().to_string();
    const RawResponse response = parse_raw(*raw);
    EXPECT_EQ(response.status, 200) << raw->substr(0, 200);
    EXPECT_EQ(response.body["body_size"], 512u << 10);
}

// HTTP-2 item 4: the answer comes once the running total passes 1 MiB. The first request
// stops sending just past the limit and never terminates the body, so only an early answer
// can arrive; the second sends all 2 MiB.
TEST_F(LimitsTest, ChunkedBodyOverTheLimitGets413AsSoonAsTheTotalPassesIt) {
    const auto early =
        expect_refused(chunked(4096, (1 << 20) + 8192, false), 413, "body_too_large");
    EXPECT_LT(early, kPromptly);
    expect_refused(chunked(4096, 2 << 20, true), 413, "body_too_large");
    EXPECT_EQ(echo_.server->stats().body_too_large, 2u);
}

// HTTP-3 item 1.
TEST_F(LimitsTest, OneMebibyteHeaderValueGets431) {
    expect_refused("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(1 << 20, 'v') + "\r\n\r\n",
                   431, "header_too_large");
}

// HTTP-3 item 2.
TEST_F(LimitsTest, TenThousandHeadersGet431) {
    std::string request = "GET / HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 10000; ++i) {
        request += "X-" + std::to_string(10000 + i) + ": v\r\n";
    }
    expect_refused(request + "\r\n", 431, "header_too_large");
    EXPECT_EQ(echo_.server->stats().header_too_large, 1u);
}

// HTTP-3 item 3, and a target that fits the header limit but not the target limit.
TEST_F(LimitsTest, LongUrlGets414) {
    expect_refused("GET /" + std::string(100 << 10, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", 414,
                   "uri_too_long");
    expect_refused("GET /" + std::string(9 << 10, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", 414,
                   "uri_too_long");
}

TEST_F(LimitsTest, MalformedRequestLinesAndTargetsGet400) {
    for (const char* request :
         {"GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n", "GET http://evil/ HTTP/1.1\r\nHost: x\r\n\r\n",
          "G@T / HTTP/1.1\r\nHost: x\r\n\r\n", "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
          "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"}) {
        SCOPED_TRACE(request);
        expect_refused(request, 400, "bad_request");
    }
}

// HTTP-4 on the wire: the handler parses with parse_json; nesting is refused with 400,
// an unterminated 10 MB body is refused by the body limit, depth 60 parses.
TEST(JsonLimits, NestedJsonIsRefusedOverTheWireAndDepth60Parses) {
    const auto pki = make_pki();
    auto server = HttpServer::start(server_options(pki), [](const HttpRequest& request) {
        auto json = parse_json(request.body);
        if (!json.ok()) {
            return HttpResponse::error(400, "invalid_json", json.status().message());
        }
        if (!(*json)["msg"].is_string()) {
            return HttpResponse::error(400, "invalid_input", "msg must be a string");
        }
        return HttpResponse::json(200, {{"ok", true}});
    });
    ASSERT_TRUE(server.ok());
    auto client = HttpClient::connect(client_options(pki, (*server)->port()));
    ASSERT_TRUE(client.ok()) << client.status().to_string();

    const std::string deep =
        "{\"id\":1,\"msg\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
    auto refused = (*client)->request("POST", "/app/log/public", deep);
    ASSERT_TRUE(refused.ok()) << refused.status().to_string();
    EXPECT_EQ(refused->status, 400);
    EXPECT_NE(refused->body.find("nesting depth"), std::string::npos) << refused->body;

    const std::string sixty =
        "{\"id\":1,\"msg\":" + std::string(59, '[') + std::string(59, ']') + "}";
    auto schema = (*client)->request("POST", "/app/log/public", sixty);
    ASSERT_TRUE(schema.ok());
    EXPECT_EQ(schema->status, 400);
    EXPECT_NE(schema->body.find("msg must be a string"), std::string::npos) << schema->body;

    auto raw = send_raw_tls(client_options(pki, (*server)->port()),
                            post_head("Content-Length: 10485760\r\n") + std::string(64 << 10, '['),
                            kReadTimeoutMs);
    ASSERT_TRUE(raw.ok());
    EXPECT_EQ(parse_raw(*raw).status, 413);
}

// HTTP-3 item 4: 60 connections trickle a request while a normal client keeps working.
TEST(SlowClients, AreCutByTheHeaderTimeoutWhileNormalClientsAreServed) {
    const auto pki = make_pki();
    auto options = server_options(pki);
    options.max_connections = 50;
    options.header_timeout_ms = 1500;
    options.idle_timeout_ms = 4000;
    auto echo = start_echo_server(options);
    const uint16_t port = echo.server->port();
    auto normal = HttpClient::connect(client_options(pki, port));
    ASSERT_TRUE(normal.ok()) << normal.status().to_string();

    std::vector<std::unique_ptr<RawTlsConnection>> slow;
    for (int i = 0; i < 60; ++i) {
        slow.push_back(std::make_unique<RawTlsConnection>(port, TLS1_2_VERSION, 0));
    }
    const std::string request = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";
    int failures = 0;
    int successes = 0;
    for (size_t step = 0; step < 4; ++step) {
        for (auto& connection : slow) {
            (void)connection->write(request.substr(step, 1));
        }
        const auto until = Clock::now() + std::chrono::seconds(1);
        while (Clock::now() < until) {
            auto response = (*normal)->request("GET", "/normal");
            (response.ok() && response->status == 200) ? ++successes : ++failures;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }

    EXPECT_EQ(failures, 0);
    EXPECT_GT(successes, 20);
    int handshakes = 0;
    for (auto& connection : slow) {
        if (connection->handshake_ok()) {
            ++handshakes;
            EXPECT_TRUE(connection->closed_by_peer(500)) << "slow connection still open";
        }
    }
    const ServerStats stats = echo.server->stats();
    EXPECT_EQ(handshakes, 49);
    EXPECT_EQ(stats.connections_rejected, 11u);
    EXPECT_EQ(stats.timeouts, 49u);
    EXPECT_EQ(echo.calls->load(), successes) << "no slow request reached the handler";

    auto fresh = HttpClient::connect(client_options(pki, port));
    ASSERT_TRUE(fresh.ok()) << fresh.status().to_string();
    EXPECT_TRUE((*fresh)->request("GET", "/after").ok());
}

}  // namespace
}  // namespace coffer::net
