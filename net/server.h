// The HTTPS server of a node: TLS 1.3 (TLS 1.2 with ECDHE + AEAD only), HTTP/1.1 with
// keep-alive, strict limits on every part of a request, and optional client certificates
// that the application maps to members and users by fingerprint.
//
// The Boost.Asio/Beast machinery lives in server.cc only; this header is Boost-free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "net/http.h"

namespace coffer::net {

struct ServerOptions {
    // Listening address: an IP literal. Port 0 picks a free port (see HttpServer::port()).
    std::string address = "127.0.0.1";
    uint16_t port = 0;
    // PEM: the server certificate first, then any intermediates (e.g. the service cert).
    std::string cert_chain_pem;
    // PEM private key of the first certificate of cert_chain_pem.
    std::string private_key_pem;
    // Not used to verify clients: clients may present any certificate, and the application
    // maps fingerprints to identities. Kept so that callers can pass their trust store.
    std::vector<std::string> extra_ca_pem;
    // A request whose body is larger gets 413 (for Content-Length, before the body is read;
    // for chunked bodies, as soon as the running total passes it).
    size_t max_body_bytes = 1 << 20;
    // Request line plus header fields; larger gets 431 (414 if the request line alone does
    // not fit).
    size_t max_header_bytes = 16 << 10;
    // Further connections are closed right after accept() and counted as rejected.
    size_t max_connections = 1024;
    // The longest wait for the first byte of a request on an open connection, for a body
    // to arrive completely, and for a response to be written.
    uint32_t idle_timeout_ms = 30000;
    // The longest time for the TLS handshake, and for a request's header once its first
    // byte arrived: slow clients cannot hold a connection by trickling bytes.
    uint32_t header_timeout_ms = 10000;
    // Threads running the I/O loop, and therefore the most handler calls at once.
    size_t threads = 2;
};

// Counters since start. Every error response the server itself produces is counted under
// exactly one reason.
struct ServerStats {
    uint64_t connections_accepted = 0;
    uint64_t connections_rejected = 0;  // over max_connections
    uint64_t connections_active = 0;
    uint64_t tls_handshake_failures = 0;
    uint64_t requests = 0;          // complete requests passed to the handler
    uint64_t body_too_large = 0;    // 413
    uint64_t header_too_large = 0;  // 431 and 414
    uint64_t bad_request = 0;       // 400: malformed HTTP or request target
    uint64_t timeouts = 0;          // connections cut by header_timeout_ms / idle_timeout_ms
    uint64_t handler_errors = 0;    // 500: the handler threw or returned an invalid response
};

// Produces the response to one complete request.
//
// Called on one of the server's I/O threads, possibly concurrently for different
// connections (at most ServerOptions::threads calls at once), never concurrently for one
// connection. While it runs, its thread serves no other connection: it may block briefly
// (a KV commit, a ledger flush), but long work belongs on another thread. An exception
// escaping it becomes a 500 response.
using Handler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
  public:
    // Binds, starts `options.threads` I/O threads and begins accepting.
    // Errors: kInvalidArgument for an unusable certificate, key or address, or a key that
    // does not match the certificate; kIo if the address cannot be bound.
    static Result<std::unique_ptr<HttpServer>> start(ServerOptions options, Handler handler);

    // Stops the server (see stop()).
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // The bound port (the chosen one when options.port was 0).
    uint16_t port() const;

    // Stops accepting, closes every connection (requests whose handler is running finish
    // it, but their responses are not sent) and joins the I/O threads. Idempotent and
    // thread-safe; must not be called from within the handler.
    void stop();

    // A snapshot of the counters. Thread-safe.
    ServerStats stats() const;

    class Impl;

  private:
    explicit HttpServer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace coffer::net
