// The HTTPS client. Each operation is started asynchronously and driven to completion on the
// caller's thread by the client's own io_context, so that Beast's per-operation deadlines
// (tcp_stream::expires_after) bound every step.
#include "net/client.h"

#include <poll.h>

#include <fmt/format.h>
#include <openssl/x509v3.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "net/tls_config.h"

namespace coffer::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;
using Milliseconds = std::chrono::milliseconds;
using Stream = beast::ssl_stream<beast::tcp_stream>;

constexpr size_t kRawReadChunkBytes = 16 << 10;
// The most bytes send_raw_tls collects from the server.
constexpr size_t kMaxRawResponseBytes = 16 << 20;

bool is_token(std::string_view text) {
    static constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
    if (text.empty()) {
        return false;
    }
    for (char c : text) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && kExtra.find(c) == kExtra.npos) {
            return false;
        }
    }
    return true;
}

bool has_control_or_space(std::string_view text, bool allow_space) {
    for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f || (!allow_space && c == ' ')) {
            if (!(allow_space && c == '\t')) {
                return true;
            }
        }
    }
    return false;
}

Status validate_request(std::string_view method, std::string_view target,
                        const HeaderList& headers) {
    if (!is_token(method)) {
        return error(Errc::kInvalidArgument, "invalid HTTP method");
    }
    if (target.empty() || has_control_or_space(target, false)) {
        return error(Errc::kInvalidArgument, "invalid request target");
    }
    for (const auto& [name, value] : headers) {
        if (!is_token(name) || has_control_or_space(value, true)) {
            return error(Errc::kInvalidArgument, "invalid header \"" + name + "\"");
        }
    }
    return Status();
}

// The words is_server_certificate_refusal looks for (the one message that carries them).
constexpr std::string_view kServerCertificateRefused = "server certificate refused";

}  // namespace

class HttpClient::Impl {
  public:
    explicit Impl(ClientOptions options)
        : options_(std::move(options)), ssl_ctx_(ssl::context::tls_client) {}
    ~Impl() { disconnect(); }
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    Status init();
    Status open_connection();
    Result<HttpResponse> request(std::string_view method, std::string_view target,
                                 std::string_view body, HeaderList headers);
    Result<std::string> exchange_raw(std::string_view bytes, uint32_t read_timeout_ms);

  private:
    // Starts an operation whose completion handler is passed to `start`, and runs the
    // io_context until it (and anything it started) has completed.
    template <typename Start>
    ErrorCode run(Start&& start) {
        ErrorCode result = asio::error::would_block;
        start([&result](const ErrorCode& ec, auto&&...) { result = ec; });
        ioc_.restart();
        ioc_.run();
        return result;
    }

    Status connect_tcp();
    Status handshake();
    bool connection_usable() const;
    Result<HttpResponse> read_response(bool head);
    void disconnect();
    std::string peer_name() const { return fmt::format("{}:{}", options_.host, options_.port); }

    ClientOptions options_;
    asio::io_context ioc_{1};
    ssl::context ssl_ctx_;
    std::unique_ptr<Stream> stream_;
    beast::flat_buffer buffer_;
};

Status HttpClient::Impl::init() {
    SSL_CTX* native = ssl_ctx_.native_handle();
    COFFER_RETURN_IF_ERROR(detail::apply_common_tls_settings(native));
    if (options_.ca_cert_pem.empty()) {
        return error(Errc::kInvalidArgument, "the client needs a pinned CA certificate");
    }
    ErrorCode ec;
    ssl_ctx_.add_certificate_authority(asio::buffer(options_.ca_cert_pem), ec);
    if (ec) {
        detail::drain_openssl_errors();
        return error(Errc::kInvalidArgument, "unusable pinned CA certificate");
    }
    // Any pinned certificate is a trust anchor, even one that is not self-signed.
    X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(native), X509_V_FLAG_PARTIAL_CHAIN);
    ssl_ctx_.set_verify_mode(ssl::verify_peer);
    // Unlike most OpenSSL calls, this one returns 0 on success.
    if (SSL_CTX_set_alpn_protos(native, detail::kAlpnHttp11, sizeof(detail::kAlpnHttp11)) != 0) {
        return error(Errc::kInternal, "setting ALPN");
    }

    if (options_.client_cert_pem.has_value() != options_.client_key_pem.has_value()) {
        return error(Errc::kInvalidArgument, "client certificate and key go together");
    }
    if (options_.client_cert_pem.has_value()) {
        ssl_ctx_.use_certificate_chain(asio::buffer(*options_.client_cert_pem), ec);
        if (!ec) {
            ssl_ctx_.use_private_key(asio::buffer(*options_.client_key_pem), ssl::context::pem, ec);
        }
        if (ec || SSL_CTX_check_private_key(native) != 1) {
            detail::drain_openssl_errors();
            return error(Errc::kInvalidArgument, "unusable client certificate or key");
        }
    }
    return Status();
}

Status HttpClient::Impl::open_connection() {
    disconnect();
    stream_ = std::make_unique<Stream>(ioc_, ssl_ctx_);
    Status status = connect_tcp();
    if (status.ok()) {
        status = handshake();
    }
    if (!status.ok()) {
        disconnect();
    }
    return status;
}

Status HttpClient::Impl::connect_tcp() {
    ErrorCode ec;
    tcp::resolver resolver(ioc_);
    const auto endpoints = resolver.resolve(options_.host, std::to_string(options_.port), ec);
    if (ec) {
        return error(Errc::kIo, fmt::format("cannot resolve {}: {}", options_.host, ec.message()));
    }
    beast::tcp_stream& tcp_stream = beast::get_lowest_layer(*stream_);
    tcp_stream.expires_after(Milliseconds(options_.timeout_ms));
    ec = run([&](auto handler) { tcp_stream.async_connect(endpoints, std::move(handler)); });
    if (ec) {
        return error(Errc::kIo, fmt::format("cannot connect to {}: {}", peer_name(), ec.message()));
    }
    // Small request/response exchanges: no Nagle delay.
    ErrorCode nodelay_ignored;
    tcp_stream.socket().set_option(tcp::no_delay(true), nodelay_ignored);
    return Status();
}

Status HttpClient::Impl::handshake() {
    SSL* ssl = stream_->native_handle();
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    ErrorCode ec;
    asio::ip::make_address(options_.host, ec);
    const bool is_ip = !ec;
    // RFC 6125: an IP literal is matched against IP SANs only, a name against DNS SANs.
    const int set = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, options_.host.c_str())
                          : X509_VERIFY_PARAM_set1_host(param, options_.host.c_str(), 0);
    if (set != 1 || (!is_ip && SSL_set_tlsext_host_name(ssl, options_.host.c_str()) != 1)) {
        return error(Errc::kInvalidArgument, "unusable host name " + options_.host);
    }

    beast::get_lowest_layer(*stream_).expires_after(Milliseconds(options_.timeout_ms));
    ec = run([&](auto handler) {
        stream_->async_handshake(ssl::stream_base::client, std::move(handler));
    });
    if (ec == beast::error::timeout) {
        return error(Errc::kIo, fmt::format("TLS handshake with {} timed out", peer_name()));
    }
    if (ec) {
        const long verify = SSL_get_verify_result(ssl);
        detail::drain_openssl_errors();
        if (verify != X509_V_OK) {
            return error(Errc::kCrypto, fmt::format("TLS handshake with {} failed: {}: {}",
                                                    peer_name(), kServerCertificateRefused,
                                                    X509_verify_cert_error_string(verify)));
        }
        return error(Errc::kCrypto,
                     fmt::format("TLS handshake with {} failed: {}", peer_name(), ec.message()));
    }
    return Status();
}

// A kept-alive connection is idle between responses, so anything readable on it is the
// server's FIN or reset (or bytes it should not have sent): the connection is done.
bool HttpClient::Impl::connection_usable() const {
    if (!stream_ || buffer_.size() != 0) {
        return false;
    }
    pollfd fd{};
    fd.fd = beast::get_lowest_layer(*stream_).socket().native_handle();
    fd.events = POLLIN;
    return ::poll(&fd, 1, 0) == 0;
}

void HttpClient::Impl::disconnect() {
    if (stream_) {
        ErrorCode ignored;
        beast::get_lowest_layer(*stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
        beast::get_lowest_layer(*stream_).close();
        stream_.reset();
    }
    buffer_.clear();
}

Result<HttpResponse> HttpClient::Impl::request(std::string_view method, std::string_view target,
                                               std::string_view body, HeaderList headers) {
    COFFER_RETURN_IF_ERROR(validate_request(method, target, headers));
    // The only transparent retry: nothing of this request has been sent yet.
    if (!connection_usable()) {
        COFFER_RETURN_IF_ERROR(open_connection());
    }

    http::request<http::string_body> message;
    message.version(11);
    message.method_string(method);
    message.target(target);
    message.set(http::field::host, peer_name());
    for (auto& [name, value] : headers) {
        message.insert(name, value);
    }
    message.body() = std::string(body);
    message.content_length(body.size());

    beast::get_lowest_layer(*stream_).expires_after(Milliseconds(options_.timeout_ms));
    const ErrorCode ec =
        run([&](auto handler) { http::async_write(*stream_, message, std::move(handler)); });
    if (ec) {
        disconnect();
        return error(Errc::kIo, fmt::format("outcome unknown: sending the request to {} "
                                            "failed: {}",
                                            peer_name(), ec.message()));
    }
    return read_response(/*head=*/method == "HEAD");
}

Result<HttpResponse> HttpClient::Impl::read_response(bool head) {
    http::response_parser<http::string_body> parser;
    // RFC 9110 section 9.3.2: a HEAD response carries the length but never the content.
    parser.skip(head);
    parser.body_limit(kMaxResponseBodyBytes);
    parser.header_limit(static_cast<uint32_t>(kMaxResponseHeaderBytes));
    const ErrorCode ec =
        run([&](auto handler) { http::async_read(*stream_, buffer_, parser, std::move(handler)); });
    if (ec) {
        disconnect();
        const bool too_large = ec == http::error::body_limit || ec == http::error::header_limit;
        return error(too_large ? Errc::kResourceExhausted : Errc::kIo,
                     fmt::format("outcome unknown: reading the response from {} failed: {}",
                                 peer_name(), ec.message()));
    }

    auto& message = parser.get();
    HttpResponse response;
    response.status = static_cast<int>(message.result_int());
    for (const auto& field : message) {
        response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    response.body = std::move(message.body());
    if (!message.keep_alive()) {
        disconnect();
    }
    return response;
}

Result<std::string> HttpClient::Impl::exchange_raw(std::string_view bytes,
                                                   uint32_t read_timeout_ms) {
    std::string received;
    std::vector<char> chunk(kRawReadChunkBytes);
    std::function<void()> read_more = [&] {
        stream_->async_read_some(asio::buffer(chunk), [&](const ErrorCode& ec, size_t n) {
            received.append(chunk.data(), n);
            if (!ec && received.size() < kMaxRawResponseBytes) {
                read_more();
            }
        });
    };

    beast::get_lowest_layer(*stream_).expires_after(Milliseconds(read_timeout_ms));
    // A failed write is expected when the server refuses early; the read tells the story.
    asio::async_write(*stream_, asio::buffer(bytes.data(), bytes.size()),
                      [](const ErrorCode&, size_t) {});
    read_more();
    ioc_.restart();
    ioc_.run();
    disconnect();
    return received;
}

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpClient::~HttpClient() = default;

Result<std::unique_ptr<HttpClient>> HttpClient::connect(ClientOptions options) {
    auto impl = std::make_unique<Impl>(std::move(options));
    try {
        COFFER_RETURN_IF_ERROR(impl->init());
        COFFER_RETURN_IF_ERROR(impl->open_connection());
    } catch (const std::exception& e) {
        return error(Errc::kInternal, std::string("HTTP client: ") + e.what());
    }
    return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

Result<HttpResponse> HttpClient::request(std::string_view method, std::string_view target,
                                         std::string_view body, HeaderList headers) {
    try {
        return impl_->request(method, target, body, std::move(headers));
    } catch (const std::exception& e) {
        return error(Errc::kIo, std::string("outcome unknown: HTTP client: ") + e.what());
    }
}

Result<std::string> send_raw_tls(const ClientOptions& options, std::string_view bytes,
                                 uint32_t read_timeout_ms) {
    HttpClient::Impl impl(options);
    try {
        COFFER_RETURN_IF_ERROR(impl.init());
        COFFER_RETURN_IF_ERROR(impl.open_connection());
        return impl.exchange_raw(bytes, read_timeout_ms);
    } catch (const std::exception& e) {
        return error(Errc::kIo, std::string("raw TLS exchange: ") + e.what());
    }
}

bool is_server_certificate_refusal(const Status& status) {
    return status.code() == Errc::kCrypto &&
           status.message().find(kServerCertificateRefused) != std::string::npos;
}

}  // namespace coffer::net
