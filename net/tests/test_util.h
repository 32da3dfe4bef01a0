// Certificates, servers and raw sockets for the tests of net/.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "crypto/ecdsa.h"
#include "crypto/x509.h"
#include "net/client.h"
#include "net/server.h"

namespace coffer::net::testing {

// A service identity (self-signed) and a node certificate it issued, with IP SAN 127.0.0.1
// (unless with_ip_san is false) and DNS SAN localhost, valid from now - 1 h to now + `valid_for_s`.
struct TestPki {
    crypto::EcdsaPrivateKey service_key;
    crypto::Certificate service_cert;
    crypto::EcdsaPrivateKey node_key;
    crypto::Certificate node_cert;
};
TestPki make_pki(int64_t valid_for_s = 3600, bool with_ip_san = true);

// A self-signed client identity (certificate PEM, key PEM).
struct TestIdentity {
    std::string cert_pem;
    std::string key_pem;
    std::string fingerprint;
};
TestIdentity make_identity(const std::string& name);

ServerOptions server_options(const TestPki& pki);
ClientOptions client_options(const TestPki& pki, uint16_t port);

// A server whose handler echoes the request as JSON and counts its calls.
struct EchoServer {
    std::unique_ptr<HttpServer> server;
    std::shared_ptr<std::atomic<int>> calls;
};
EchoServer start_echo_server(const ServerOptions& options);

// A blocking TCP connection to 127.0.0.1:port (fd), or -1.
int connect_loopback(uint16_t port);

// A blocking OpenSSL client connection for tests that need byte-level control.
class RawTlsConnection {
  public:
    // Connects and handshakes with the given protocol range; trusts nothing (no
    // verification): these tests are about the server's behaviour.
    RawTlsConnection(uint16_t port, int min_version, int max_version);
    ~RawTlsConnection();
    RawTlsConnection(const RawTlsConnection&) = delete;
    RawTlsConnection& operator=(const RawTlsConnection&) = delete;

    bool handshake_ok() const { return handshake_ok_; }
    const std::string& handshake_error() const { return handshake_error_; }
    // Writes bytes; false once the connection is broken.
    bool write(const std::string& bytes);
    // True if the server closed the connection (reads with a short poll).
    bool closed_by_peer(int wait_ms);

  private:
    int fd_ = -1;
    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
    bool handshake_ok_ = false;
    std::string handshake_error_;
};

}  // namespace coffer::net::testing
