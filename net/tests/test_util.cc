#include "net/tests/test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <ctime>
#include <stdexcept>

namespace coffer::net::testing {
namespace {

template <typename T>
T must(Result<T> result) {
    if (!result.ok()) {
        throw std::runtime_error(result.status().to_string());
    }
    return std::move(result).value();
}

int64_t now_unix() {
    return static_cast<int64_t>(std::time(nullptr));
}

}  // namespace

TestPki make_pki(int64_t valid_for_s, bool with_ip_san) {
    TestPki pki{must(crypto::EcdsaPrivateKey::generate()),
                {},
                must(crypto::EcdsaPrivateKey::generate()),
                {}};
    crypto::CertificateOptions service;
    service.common_name = "coffer test service";
    service.not_before_unix = now_unix() - 3600;
    service.not_after_unix = now_unix() + 365 * 24 * 3600;
    service.is_ca = true;
    pki.service_cert = must(crypto::make_self_signed_certificate(pki.service_key, service));

    crypto::CertificateOptions node;
    node.common_name = "coffer test node";
    node.not_before_unix = now_unix() - 3600;
    node.not_after_unix = now_unix() + valid_for_s;
    node.dns_names = {"localhost"};
    if (with_ip_san) {
        node.ip_addresses = {"127.0.0.1"};
    }
    pki.node_cert = must(crypto::make_issued_certificate(pki.node_key.public_key(), node,
                                                         pki.service_key, pki.service_cert));
    return pki;
}

TestIdentity make_identity(const std::string& name) {
    auto key = must(crypto::EcdsaPrivateKey::generate());
    crypto::CertificateOptions options;
    options.common_name = name;
    options.not_before_unix = now_unix() - 3600;
    options.not_after_unix = now_unix() + 3600;
    auto cert = must(crypto::make_self_signed_certificate(key, options));
    return TestIdentity{cert.to_pem(), key.to_pem(), cert.fingerprint_sha256_hex()};
}

ServerOptions server_options(const TestPki& pki) {
    ServerOptions options;
    options.cert_chain_pem = pki.node_cert.to_pem() + pki.service_cert.to_pem();
    options.private_key_pem = pki.node_key.to_pem();
    return options;
}

ClientOptions client_options(const TestPki& pki, uint16_t port) {
    ClientOptions options;
    options.port = port;
    options.ca_cert_pem = pki.service_cert.to_pem();
    options.timeout_ms = 5000;
    return options;
}

EchoServer start_echo_server(const ServerOptions& options) {
    auto calls = std::make_shared<std::atomic<int>>(0);
    auto server = must(HttpServer::start(options, [calls](const HttpRequest& request) {
        calls->fetch_add(1);
        nlohmann::json out;
        out["method"] = request.method;
        out["path"] = request.path;
        out["query"] = request.query;
        out["body_size"] = request.body.size();
        out["body"] = request.body.size() <= 1024 ? request.body : std::string();
        out["fingerprint"] = request.client_cert_fingerprint.value_or("");
        out["remote"] = request.remote_address;
        return HttpResponse::json(200, out);
    }));
    return EchoServer{std::move(server), calls};
}

int connect_loopback(uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

RawTlsConnection::RawTlsConnection(uint16_t port, int min_version, int max_version) {
    // OpenSSL writes with write(2): a server that closed must not kill the test process.
    std::signal(SIGPIPE, SIG_IGN);
    fd_ = connect_loopback(port);
    ctx_ = SSL_CTX_new(TLS_client_method());
    // Level 0 lets this client offer TLS 1.0/1.1 at all, so a refusal comes from the server.
    SSL_CTX_set_security_level(ctx_, 0);
    SSL_CTX_set_cipher_list(ctx_, "ALL:@SECLEVEL=0");
    SSL_CTX_set_min_proto_version(ctx_, min_version);
    SSL_CTX_set_max_proto_version(ctx_, max_version);
    ssl_ = SSL_new(ctx_);
    if (fd_ < 0) {
        handshake_error_ = "connect failed";
        return;
    }
    SSL_set_fd(ssl_, fd_);
    ERR_clear_error();
    if (SSL_connect(ssl_) == 1) {
        handshake_ok_ = true;
        return;
    }
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
    handshake_error_ = buf;
    ERR_clear_error();
}

RawTlsConnection::~RawTlsConnection() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

bool RawTlsConnection::write(const std::string& bytes) {
    if (!handshake_ok_) {
        return false;
    }
    ERR_clear_error();
    const int n = SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()));
    ERR_clear_error();
    return n == static_cast<int>(bytes.size());
}

bool RawTlsConnection::closed_by_peer(int wait_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, wait_ms) <= 0) {
        return false;
    }
    char buf[512];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
    return n <= 0;
}

}  // namespace coffer::net::testing
