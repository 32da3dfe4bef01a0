// An HTTPS client that pins the service certificate, keeps one persistent TLS connection,
// and never repeats a request whose outcome it does not know.
//
// The Boost.Asio/Beast machinery lives in client.cc only; this header is Boost-free.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "net/http.h"

namespace coffer::net {

// The largest response body and header the client reads.
constexpr size_t kMaxResponseBodyBytes = 64 << 20;
constexpr size_t kMaxResponseHeaderBytes = 64 << 10;

struct ClientOptions {
    // An IP literal or a DNS name; the server certificate must name it (IP or DNS
    // subjectAltName), checked as in RFC 6125.
    std::string host = "127.0.0.1";
    uint16_t port = 0;
    // PEM of the pinned trust anchor (the service certificate): the server's chain must
    // verify to it. The system trust store is never consulted.
    std::string ca_cert_pem;
    // Optional client certificate (PEM chain) and its private key (PEM).
    std::optional<std::string> client_cert_pem;
    std::optional<std::string> client_key_pem;
    // Bound on each connect + handshake, and on each request's write + response read.
    uint32_t timeout_ms = 10000;
};

class HttpClient {
  public:
    // Connects and completes the TLS handshake (so that certificate problems surface here).
    // Errors: kInvalidArgument for unusable PEM in the options; kIo when the connection
    // fails or times out; kCrypto when the handshake fails, with the certificate reason
    // ("certificate has expired", "hostname mismatch", "unable to get local issuer
    // certificate") when the server certificate was refused.
    static Result<std::unique_ptr<HttpClient>> connect(ClientOptions options);

    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    // Sends one request and reads its response; any HTTP status is a successful Result.
    // Content-Length is always sent; `headers` are added as given.
    //
    // If the connection is closed (the server closed it, or an earlier request failed), a
    // new one is made before anything is sent; that is the only retry. Once request bytes
    // may have left, a failure is returned as kIo with "outcome unknown" in the message:
    // the server may or may not have executed the request, and the caller must find out
    // (e.g. by transaction id) before repeating a non-idempotent request.
    // Errors: kIo (connection failures, timeouts, "outcome unknown"); kCrypto (handshake
    // on reconnect); kInvalidArgument (a method or header the HTTP grammar forbids);
    // kResourceExhausted (a response larger than the kMaxResponse* limits).
    // Not thread-safe: one request at a time per client.
    Result<HttpResponse> request(std::string_view method, std::string_view target,
                                 std::string_view body = "", HeaderList headers = {});

    class Impl;

  private:
    explicit HttpClient(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// For tests of malformed input: connects with `options` (same certificate checks), writes
// `bytes` over TLS while reading, and returns everything the server sent until it closed
// the connection or `read_timeout_ms` passed after the handshake. A write the server cut
// short is not an error. Errors: as HttpClient::connect.
Result<std::string> send_raw_tls(const ClientOptions& options, std::string_view bytes,
                                 uint32_t read_timeout_ms);

// True for the error of connect() when the server's certificate did not verify against the
// pinned one (another service, an expired or mismatched certificate): asking again will not
// change the answer, unlike a refused or reset connection.
bool is_server_certificate_refusal(const Status& status);

}  // namespace coffer::net
