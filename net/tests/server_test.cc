#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "net/client.h"
#include "net/server.h"
#include "net/tests/test_util.h"

namespace coffer::net {
namespace {

using testing::client_options;
using testing::make_identity;
using testing::make_pki;
using testing::RawTlsConnection;
using testing::server_options;
using testing::start_echo_server;

class ServerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        pki_ = make_pki();
        echo_ = start_echo_server(server_options(pki_));
    }

    std::unique_ptr<HttpClient> connect(ClientOptions options) {
        auto client = HttpClient::connect(std::move(options));
        EXPECT_TRUE(client.ok()) << client.status().to_string();
        return client.ok() ? std::move(client).value() : nullptr;
    }

    testing::TestPki pki_ = make_pki();
    testing::EchoServer echo_;
};

TEST_F(ServerTest, GetAndPostRoundTripOnOneConnection) {
    auto client = connect(client_options(pki_, echo_.server->port()));
    ASSERT_NE(client, nullptr);

    auto get = client->request("GET", "/app/log?id=7&x=a%20b");
    ASSERT_TRUE(get.ok()) << get.status().to_string();
    EXPECT_EQ(get->status, 200);
    EXPECT_EQ(get->header("content-type"), "application/json");
    EXPECT_TRUE(get->header("content-length").has_value());
    EXPECT_FALSE(get->header("server").has_value());
    auto got = nlohmann::json::parse(get->body);
    EXPECT_EQ(got["method"], "GET");
    EXPECT_EQ(got["path"], "/app/log");
    EXPECT_EQ(got["query"]["x"], "a b");
    EXPECT_EQ(got["fingerprint"], "");

    auto post =
        client->request("POST", "/app/log", R"({"id":1})", {{"content-type", "application/json"}});
    ASSERT_TRUE(post.ok()) << post.status().to_string();
    auto posted = nlohmann::json::parse(post->body);
    EXPECT_EQ(posted["body"], R"({"id":1})");
    EXPECT_EQ(posted["remote"], got["remote"]) << "keep-alive reuses the connection";
    EXPECT_EQ(echo_.server->stats().connections_accepted, 1u);
    EXPECT_EQ(echo_.server->stats().requests, 2u);
}

TEST_F(ServerTest, ClientCertificateFingerprintReachesTheHandler) {
    const auto identity = make_identity("member0");
    auto options = client_options(pki_, echo_.server->port());
    options.client_cert_pem = identity.cert_pem;
    options.client_key_pem = identity.key_pem;
    auto client = connect(options);
    ASSERT_NE(client, nullptr);

    auto response = client->request("GET", "/gov/members");
    ASSERT_TRUE(response.ok()) << response.status().to_string();
    EXPECT_EQ(nlohmann::json::parse(response->body)["fingerprint"], identity.fingerprint);
}

TEST_F(ServerTest, ClientRefusesServerNotChainingToThePinnedCertificate) {
    const auto other = make_pki();
    auto client = HttpClient::connect(client_options(other, echo_.server->port()));
    ASSERT_FALSE(client.ok());
    EXPECT_EQ(client.status().code(), Errc::kCrypto);
    EXPECT_NE(client.status().message().find("certificate"), std::string::npos)
        << client.status().message();
    EXPECT_TRUE(is_server_certificate_refusal(client.status()));
    EXPECT_FALSE(is_server_certificate_refusal(error(Errc::kIo, "connection refused")));
    EXPECT_EQ(echo_.calls->load(), 0);
}

TEST(ServerCertificate, ClientChecksTheHostAgainstTheSubjectAltNames) {
    const auto pki = make_pki(3600, /*with_ip_san=*/false);
    auto echo = start_echo_server(server_options(pki));
    auto options = client_options(pki, echo.server->port());
    auto by_ip = HttpClient::connect(options);
    ASSERT_FALSE(by_ip.ok());
    EXPECT_NE(by_ip.status().message().find("mismatch"), std::string::npos)
        << by_ip.status().message();

    options.host = "localhost";
    auto by_name = HttpClient::connect(options);
    EXPECT_TRUE(by_name.ok()) << by_name.status().to_string();
}

TEST_F(ServerTest, ServerRefusesTls11AndTls10) {
    for (int version : {TLS1_VERSION, TLS1_1_VERSION}) {
        RawTlsConnection old(echo_.server->port(), version, version);
        EXPECT_FALSE(old.handshake_ok());
        EXPECT_NE(old.handshake_error().find("protocol version"), std::string::npos)
            << old.handshake_error();
    }
    RawTlsConnection tls12(echo_.server->port(), TLS1_2_VERSION, TLS1_2_VERSION);
    EXPECT_TRUE(tls12.handshake_ok()) << tls12.handshake_error();
    RawTlsConnection tls13(echo_.server->port(), TLS1_3_VERSION, TLS1_3_VERSION);
    EXPECT_TRUE(tls13.handshake_ok()) << tls13.handshake_error();
    EXPECT_GE(echo_.server->stats().tls_handshake_failures, 2u);
}

// TLS-2 item 2: an expired server certificate fails the handshake with a clear reason.
TEST(ServerCertificate, ExpiredServerCertificateFailsTheHandshake) {
    const auto pki = make_pki(/*valid_for_s=*/-60);
    auto echo = start_echo_server(server_options(pki));
    auto client = HttpClient::connect(client_options(pki, echo.server->port()));
    ASSERT_FALSE(client.ok());
    EXPECT_EQ(client.status().code(), Errc::kCrypto);
    EXPECT_NE(client.status().message().find("certificate has expired"), std::string::npos)
        << client.status().message();
}

TEST_F(ServerTest, ClientReconnectsAfterTheServerClosedAnIdleConnection) {
    auto options = server_options(pki_);
    options.idle_timeout_ms = 200;
    auto echo = start_echo_server(options);
    auto client = connect(client_options(pki_, echo.server->port()));
    ASSERT_NE(client, nullptr);
    ASSERT_TRUE(client->request("GET", "/a").ok());

    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto second = client->request("GET", "/b");
    ASSERT_TRUE(second.ok()) << second.status().to_string();
    EXPECT_EQ(second->status, 200);
    EXPECT_EQ(echo.server->stats().connections_accepted, 2u);
}

TEST_F(ServerTest, ClientReportsUnknownOutcomeWhenNoResponseArrives) {
    auto calls = std::make_shared<std::atomic<int>>(0);
    auto server = HttpServer::start(server_options(pki_), [calls](const HttpRequest&) {
        calls->fetch_add(1);
        std::this_thread::sleep_for(std::chrono::milliseconds(600));
        return HttpResponse::json(200, {{"ok", true}});
    });
    ASSERT_TRUE(server.ok());
    auto options = client_options(pki_, (*server)->port());
    options.timeout_ms = 300;
    auto client = connect(options);
    ASSERT_NE(client, nullptr);

    auto response = client->request("POST", "/app/log", "{}");
    ASSERT_FALSE(response.ok());
    EXPECT_EQ(response.status().code(), Errc::kIo);
    EXPECT_NE(response.status().message().find("outcome unknown"), std::string::npos);
    EXPECT_EQ(calls->load(), 1) << "the request ran although the client cannot tell";

    // The client did not repeat the request behind the caller's back.
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    EXPECT_EQ(calls->load(), 1);
}

TEST_F(ServerTest, HandlerExceptionsAndInvalidResponsesBecome500) {
    auto server = HttpServer::start(server_options(pki_), [](const HttpRequest& request) {
        if (request.path == "/throw") {
            throw std::runtime_error("boom");
        }
        HttpResponse response;
        response.headers.emplace_back("x-evil", "a\r\nset-cookie: x");
        return response;
    });
    ASSERT_TRUE(server.ok());
    auto client = connect(client_options(pki_, (*server)->port()));
    ASSERT_NE(client, nullptr);
    for (const char* path : {"/throw", "/inject"}) {
        auto response = client->request("GET", path);
        ASSERT_TRUE(response.ok()) << response.status().to_string();
        EXPECT_EQ(response->status, 500);
        EXPECT_EQ(nlohmann::json::parse(response->body)["error"]["code"], "internal_error");
        EXPECT_FALSE(response->header("set-cookie").has_value());
    }
    EXPECT_EQ((*server)->stats().handler_errors, 2u);
}

TEST_F(ServerTest, HeadGetsTheLengthWithoutTheBody) {
    auto client = connect(client_options(pki_, echo_.server->port()));
    ASSERT_NE(client, nullptr);
    auto head = client->request("HEAD", "/x");
    ASSERT_TRUE(head.ok()) << head.status().to_string();
    EXPECT_EQ(head->status, 200);
    EXPECT_TRUE(head->body.empty());
    auto get = client->request("GET", "/x");
    ASSERT_TRUE(get.ok()) << get.status().to_string();
}

TEST_F(ServerTest, StopIsIdempotentAndClosesConnections) {
    auto client = connect(client_options(pki_, echo_.server->port()));
    ASSERT_NE(client, nullptr);
    ASSERT_TRUE(client->request("GET", "/a").ok());
    echo_.server->stop();
    echo_.server->stop();
    EXPECT_EQ(echo_.server->stats().connections_active, 0u);
    EXPECT_FALSE(client->request("GET", "/b").ok());
}

TEST(ServerStart, RejectsBadKeysAndAddresses) {
    const auto pki = make_pki();
    auto options = server_options(pki);
    options.private_key_pem = make_pki().node_key.to_pem();
    const Handler handler = [](const HttpRequest&) { return HttpResponse{}; };
    auto mismatched = HttpServer::start(options, handler);
    ASSERT_FALSE(mismatched.ok());
    EXPECT_EQ(mismatched.status().code(), Errc::kInvalidArgument);

    options = server_options(pki);
    options.address = "not an address";
    EXPECT_FALSE(HttpServer::start(options, handler).ok());
}

}  // namespace
}  // namespace coffer::net
