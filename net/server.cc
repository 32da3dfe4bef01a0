// The HTTPS server. One Session per TCP connection runs the cycle
//   handshake -> [wait for first byte -> read header -> read body -> handler -> write]*
// as a chain of asynchronous operations on its own strand, with a deadline on each step.
#include "net/server.h"

#include <fmt/format.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <cctype>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/bytes.h"
#include "common/log.h"
#include "crypto/sha256.h"
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

// Bytes asked for per socket read.
constexpr size_t kReadChunkBytes = 16 << 10;
// A request target longer than this gets 414 even if the whole header fits its limit.
constexpr size_t kMaxTargetBytes = 8 << 10;
// Chunk extensions carry nothing we use; a long one is an attack on the parser.
constexpr size_t kMaxChunkExtensionBytes = 1 << 10;
// Chunk sizes that do not fit a signed 64-bit integer are malformed rather than large:
// intermediaries disagree on them, which is how request smuggling starts.
constexpr uint64_t kMaxChunkSize = (uint64_t{1} << 63) - 1;
// After an error response the server stops sending but keeps reading (and discarding) for
// a while, so that the client's unsent body does not turn into a TCP reset that destroys
// the response before the client reads it.
constexpr uint32_t kLingerTimeoutMs = 1000;
constexpr size_t kMaxLingerBytes = 4 << 20;
// Pause before accepting again after accept() failed (e.g. out of file descriptors).
constexpr uint32_t kAcceptRetryDelayMs = 50;

struct Counters {
    std::atomic<uint64_t> connections_accepted{0};
    std::atomic<uint64_t> connections_rejected{0};
    std::atomic<uint64_t> connections_active{0};
    std::atomic<uint64_t> tls_handshake_failures{0};
    std::atomic<uint64_t> requests{0};
    std::atomic<uint64_t> body_too_large{0};
    std::atomic<uint64_t> header_too_large{0};
    std::atomic<uint64_t> bad_request{0};
    std::atomic<uint64_t> timeouts{0};
    std::atomic<uint64_t> handler_errors{0};
};

bool is_http_error(const ErrorCode& ec) {
    return ec.category() == http::make_error_code(http::error::bad_method).category();
}

bool is_quiet_close(const ErrorCode& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == ssl::error::stream_truncated || ec == asio::error::operation_aborted ||
           ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
}

bool is_token_char(char c) {
    static constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
    return std::isalnum(static_cast<unsigned char>(c)) || kExtra.find(c) != kExtra.npos;
}

bool is_valid_header(const std::string& name, const std::string& value) {
    if (name.empty()) {
        return false;
    }
    for (char c : name) {
        if (!is_token_char(c)) {
            return false;
        }
    }
    return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos;
}

bool iequals(std::string_view a, std::string_view b) {
    return beast::iequals(a, b);
}

}  // namespace

class Session;

class HttpServer::Impl {
  public:
    Impl(ServerOptions options, Handler handler)
        : options_(std::move(options)),
          handler_(std::move(handler)),
          ioc_(static_cast<int>(options_.threads)),
          ssl_ctx_(ssl::context::tls_server),
          acceptor_(asio::make_strand(ioc_)),
          retry_timer_(acceptor_.get_executor()) {}
    ~Impl() { stop(); }
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    Status init();
    void run();
    void stop();
    ServerStats stats() const;
    uint16_t port() const { return port_; }

    const ServerOptions& options() const { return options_; }
    const Handler& handler() const { return handler_; }
    Counters& counters() { return counters_; }
    ssl::context& ssl_context() { return ssl_ctx_; }

    // False once stop() began: the caller must close the connection itself.
    bool register_session(Session* session, std::weak_ptr<Session> weak);
    void unregister_session(Session* session);

  private:
    Status init_tls();
    Status init_acceptor();
    void accept_next();
    void on_accept(const ErrorCode& ec, tcp::socket socket);

    ServerOptions options_;
    Handler handler_;
    Counters counters_;
    asio::io_context ioc_;
    ssl::context ssl_ctx_;
    tcp::acceptor acceptor_;
    asio::steady_timer retry_timer_;
    uint16_t port_ = 0;
    std::vector<std::thread> threads_;

    std::mutex mutex_;  // guards sessions_, stopping_ and stopped_
    std::unordered_map<Session*, std::weak_ptr<Session>> sessions_;
    bool stopping_ = false;
    bool stopped_ = false;
};

class Session : public std::enable_shared_from_this<Session> {
  public:
    Session(HttpServer::Impl& server, tcp::socket socket)
        : server_(server),
          options_(server.options()),
          stream_(std::move(socket), server.ssl_context()),
          buffer_(options_.max_header_bytes + kReadChunkBytes) {
        ErrorCode ec;
        const tcp::endpoint peer = lowest().socket().remote_endpoint(ec);
        if (!ec) {
            remote_address_ = fmt::format("{}:{}", peer.address().to_string(), peer.port());
        }
        chunk_header_callback_ = [this](uint64_t size, std::string_view extensions,
                                        ErrorCode& error) {
            on_chunk_header(size, extensions, error);
        };
    }

    ~Session() {
        server_.counters().connections_active.fetch_sub(1);
        server_.unregister_session(this);
    }

    void start() {
        asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
            self->lowest().expires_after(Milliseconds(self->options_.header_timeout_ms));
            self->stream_.async_handshake(ssl::stream_base::server,
                                          [self](const ErrorCode& ec) { self->on_handshake(ec); });
        });
    }

    // Called by HttpServer::stop(): cancels whatever the session is waiting for.
    void close_from_stop() {
        asio::post(stream_.get_executor(), [self = shared_from_this()] { self->close(); });
    }

  private:
    beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

    void on_handshake(const ErrorCode& ec);
    void wait_for_request();
    void read_header();
    void on_header(const ErrorCode& ec);
    void read_body();
    void on_chunk_header(uint64_t size, std::string_view extensions, ErrorCode& ec);
    void on_read_error(const ErrorCode& ec);
    void on_header_limit();
    void handle_request();
    HttpResponse call_handler(const HttpRequest& request);
    HttpRequest make_request(http::request<http::string_body>& message);
    void send(HttpResponse response, bool close_after, bool head);
    void send_error(int status, std::string_view code, std::string_view message,
                    std::atomic<uint64_t>& counter);
    void linger_close();
    void drain();
    void close();

    HttpServer::Impl& server_;
    const ServerOptions& options_;
    beast::ssl_stream<beast::tcp_stream> stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::function<void(uint64_t, std::string_view, ErrorCode&)> chunk_header_callback_;
    uint64_t chunked_total_ = 0;
    std::string remote_address_;
    std::optional<std::string> client_cert_der_;
    std::optional<std::string> client_cert_fingerprint_;
    std::vector<char> drain_buffer_;
    size_t drained_bytes_ = 0;
};

void Session::on_handshake(const ErrorCode& ec) {
    if (ec) {
        if (ec == beast::error::timeout) {
            server_.counters().timeouts.fetch_add(1);
        } else {
            server_.counters().tls_handshake_failures.fetch_add(1);
        }
        spdlog::debug("net.tls_handshake_failed peer={} error={}", remote_address_, ec.message());
        return close();
    }

    client_cert_der_ = detail::peer_certificate_der(stream_.native_handle());
    if (client_cert_der_.has_value()) {
        client_cert_fingerprint_ = to_hex(crypto::sha256(as_bytes(*client_cert_der_)));
    }
    wait_for_request();
}

// Between requests the connection may sit idle for idle_timeout_ms; once the first byte of
// a request arrives, the whole header must follow within header_timeout_ms.
void Session::wait_for_request() {
    if (buffer_.size() > 0) {
        return read_header();
    }
    lowest().expires_after(Milliseconds(options_.idle_timeout_ms));
    stream_.async_read_some(buffer_.prepare(kReadChunkBytes),
                            [self = shared_from_this()](const ErrorCode& ec, size_t n) {
                                if (ec) {
                                    // An idle keep-alive connection timing out is routine.
                                    return self->close();
                                }
                                self->buffer_.commit(n);
                                self->read_header();
                            });
}

void Session::read_header() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(options_.max_header_bytes));
    // The body limit is enforced here rather than by Beast, which reports an oversized
    // chunk size and an overflowing total alike; see on_header and on_chunk_header. (An
    // empty optional is not "no limit": Beast 1.74 compares lengths against it as if 0.)
    parser_->body_limit(std::numeric_limits<uint64_t>::max());
    parser_->on_chunk_header(chunk_header_callback_);
    chunked_total_ = 0;

    lowest().expires_after(Milliseconds(options_.header_timeout_ms));
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](const ErrorCode& ec, size_t) { self->on_header(ec); });
}

// Message framing rules of RFC 9112 that the parser leaves to us. A request whose body
// length two parties could read differently is refused, so that no bytes of one request can
// be taken for the start of another (request smuggling):
// - Transfer-Encoding must be exactly "chunked" (section 6.1: chunked must be the final
//   coding; we implement no other coding, so anything else is 501, or 400 when chunked is
//   present but not final);
// - Transfer-Encoding and Content-Length together are refused (section 6.3);
// - exactly one Host header (section 3.2).
Status check_framing(const http::request<http::string_body>& message) {
    std::vector<std::string> codings;
    size_t hosts = 0;
    for (const auto& field : message) {
        if (field.name() == http::field::host) {
            ++hosts;
        }
        if (field.name() != http::field::transfer_encoding) {
            continue;
        }
        std::string_view value(field.value().data(), field.value().size());
        size_t start = 0;
        while (start <= value.size()) {
            size_t comma = value.find(',', start);
            std::string_view item = value.substr(
                start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
            while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) {
                item.remove_prefix(1);
            }
            while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) {
                item.remove_suffix(1);
            }
            std::string lower(item);
            for (char& c : lower) {
                c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            }
            codings.push_back(lower);
            if (comma == std::string_view::npos) {
                break;
            }
            start = comma + 1;
        }
    }
    if (hosts > 1) {
        return error(Errc::kInvalidArgument, "more than one Host header");
    }
    if (codings.empty()) {
        return Status();
    }
    if (message.count(http::field::content_length) > 0) {
        return error(Errc::kInvalidArgument,
                     "both Transfer-Encoding and Content-Length are present");
    }
    if (codings.size() == 1 && codings[0] == "chunked") {
        return Status();
    }
    for (size_t i = 0; i + 1 < codings.size(); ++i) {
        if (codings[i] == "chunked") {
            return error(Errc::kInvalidArgument, "chunked is not the final transfer coding");
        }
    }
    return error(Errc::kUnsupported, "unsupported transfer coding (only chunked is accepted)");
}

void Session::on_header(const ErrorCode& ec) {
    if (ec) {
        return on_read_error(ec);
    }

    auto& message = parser_->get();
    if (message.target().size() > kMaxTargetBytes) {
        return send_error(414, "uri_too_long",
                          fmt::format("request target longer than {} bytes", kMaxTargetBytes),
                          server_.counters().header_too_large);
    }
    if (auto framing = check_framing(message); !framing.ok()) {
        int status = framing.code() == Errc::kUnsupported ? 501 : 400;
        return send_error(status, status == 501 ? "not_implemented" : "bad_request",
                          framing.message(), server_.counters().bad_request);
    }
    // RFC 9110 section 15.5.14: refuse a declared length at once instead of reading it.
    const auto declared = parser_->content_length();
    if (declared.has_value() && *declared > options_.max_body_bytes) {
        return send_error(413, "body_too_large",
                          fmt::format("request body larger than {} bytes", options_.max_body_bytes),
                          server_.counters().body_too_large);
    }
    if (parser_->is_done()) {
        return handle_request();
    }

    if (!iequals(message[http::field::expect], "100-continue")) {
        return read_body();
    }
    auto interim = std::make_shared<http::response<http::empty_body>>(http::status::continue_,
                                                                      message.version());
    lowest().expires_after(Milliseconds(options_.idle_timeout_ms));
    http::async_write(stream_, *interim,
                      [self = shared_from_this(), interim](const ErrorCode& error, size_t) {
                          if (error) {
                              return self->close();
                          }
                          self->read_body();
                      });
}

void Session::read_body() {
    lowest().expires_after(Milliseconds(options_.idle_timeout_ms));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](const ErrorCode& ec, size_t) {
                         if (ec) {
                             return self->on_read_error(ec);
                         }
                         self->handle_request();
                     });
}

// Runs for every chunk header, before the chunk's data is read (RFC 9112 section 7.1).
void Session::on_chunk_header(uint64_t size, std::string_view extensions, ErrorCode& ec) {
    if (extensions.size() > kMaxChunkExtensionBytes) {
        ec = http::error::bad_chunk_extension;
        return;
    }
    if (size > kMaxChunkSize) {
        ec = http::error::bad_chunk;
        return;
    }
    if (size > options_.max_body_bytes - chunked_total_) {
        ec = http::error::body_limit;
        return;
    }
    chunked_total_ += size;
}

void Session::on_read_error(const ErrorCode& ec) {
    Counters& counters = server_.counters();
    if (ec == beast::error::timeout) {
        counters.timeouts.fetch_add(1);
        spdlog::debug("net.request_timeout peer={}", remote_address_);
        return close();
    }
    if (ec == http::error::header_limit) {
        return on_header_limit();
    }
    if (ec == http::error::body_limit) {
        return send_error(413, "body_too_large",
                          fmt::format("request body larger than {} bytes", options_.max_body_bytes),
                          counters.body_too_large);
    }
    if (ec == http::error::buffer_overflow && !parser_->is_header_done()) {
        return on_header_limit();
    }
    if (is_http_error(ec)) {
        return send_error(400, "bad_request", "malformed HTTP request: " + ec.message(),
                          counters.bad_request);
    }
    if (!is_quiet_close(ec)) {
        spdlog::debug("net.read_failed peer={} error={}", remote_address_, ec.message());
    }
    close();
}

// The header did not fit max_header_bytes. If not even the request line did, the target
// is what is too long (RFC 9110 section 15.5.15), otherwise the header fields are. Beast
// fills in the method as soon as it has parsed a complete request line.
void Session::on_header_limit() {
    if (parser_->get().method_string().empty()) {
        return send_error(
            414, "uri_too_long",
            fmt::format("request line longer than {} bytes", options_.max_header_bytes),
            server_.counters().header_too_large);
    }
    send_error(431, "header_too_large",
               fmt::format("request header larger than {} bytes", options_.max_header_bytes),
               server_.counters().header_too_large);
}

HttpRequest Session::make_request(http::request<http::string_body>& message) {
    HttpRequest request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    for (const auto& field : message) {
        request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    request.body = std::move(message.body());
    request.client_cert_der = client_cert_der_;
    request.client_cert_fingerprint = client_cert_fingerprint_;
    request.remote_address = remote_address_;
    return request;
}

void Session::handle_request() {
    auto& message = parser_->get();
    const bool keep_alive = message.keep_alive();
    const bool head = message.method() == http::verb::head;
    HttpRequest request = make_request(message);
    parser_.reset();

    auto target = parse_target(request.target);
    if (!target.ok()) {
        return send_error(400, "bad_request",
                          "malformed request target: " + target.status().message(),
                          server_.counters().bad_request);
    }
    request.path = std::move(target->path);
    request.query = std::move(target->query);

    server_.counters().requests.fetch_add(1);
    send(call_handler(request), !keep_alive, head);
}

HttpResponse Session::call_handler(const HttpRequest& request) {
    HttpResponse response;
    try {
        response = server_.handler()(request);
    } catch (const std::exception& e) {
        server_.counters().handler_errors.fetch_add(1);
        spdlog::warn("net.handler_threw method={} path={} error={}", request.method, request.path,
                     e.what());
        return HttpResponse::error(500, "internal_error", "the request handler failed");
    } catch (...) {
        server_.counters().handler_errors.fetch_add(1);
        spdlog::warn("net.handler_threw method={} path={}", request.method, request.path);
        return HttpResponse::error(500, "internal_error", "the request handler failed");
    }

    bool valid = response.status >= 200 && response.status <= 599;
    for (const auto& [name, value] : response.headers) {
        valid = valid && is_valid_header(name, value);
    }
    if (!valid) {
        server_.counters().handler_errors.fetch_add(1);
        spdlog::warn("net.handler_invalid_response method={} path={} status={}", request.method,
                     request.path, response.status);
        return HttpResponse::error(500, "internal_error", "the request handler failed");
    }
    return response;
}

void Session::send(HttpResponse response, bool close_after, bool head) {
    auto message = std::make_shared<http::response<http::string_body>>();
    message->version(11);
    message->result(static_cast<unsigned>(response.status));
    bool has_content_type = false;
    for (auto& [name, value] : response.headers) {
        if (iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
            iequals(name, "connection")) {
            continue;
        }
        has_content_type = has_content_type || iequals(name, "content-type");
        message->insert(name, value);
    }
    if (!has_content_type) {
        message->set(http::field::content_type, "text/plain; charset=utf-8");
    }
    message->body() = std::move(response.body);
    message->prepare_payload();
    if (head) {
        // RFC 9110 section 9.3.2: the length of the GET response, without its content.
        message->body().clear();
    }
    message->keep_alive(!close_after);

    lowest().expires_after(Milliseconds(options_.idle_timeout_ms));
    http::async_write(
        stream_, *message,
        [self = shared_from_this(), message, close_after](const ErrorCode& ec, size_t) {
            if (ec) {
                return self->close();
            }
            if (close_after) {
                return self->linger_close();
            }
            self->wait_for_request();
        });
}

void Session::send_error(int status, std::string_view code, std::string_view message,
                         std::atomic<uint64_t>& counter) {
    counter.fetch_add(1);
    spdlog::debug("net.request_rejected peer={} status={} code={}", remote_address_, status, code);
    parser_.reset();
    send(HttpResponse::error(status, code, message), /*close_after=*/true, /*head=*/false);
}

// Half-closes, then discards what the client still sends for a bounded time and size.
// The TLS close_notify is skipped: the response carries its length, and OpenSSL would
// fail a TLS shutdown on the application data the client is still sending.
void Session::linger_close() {
    ErrorCode ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    lowest().expires_after(Milliseconds(kLingerTimeoutMs));
    drain_buffer_.resize(kReadChunkBytes);
    drain();
}

void Session::drain() {
    lowest().async_read_some(asio::buffer(drain_buffer_),
                             [self = shared_from_this()](const ErrorCode& ec, size_t n) {
                                 self->drained_bytes_ += n;
                                 if (ec || self->drained_bytes_ > kMaxLingerBytes) {
                                     return self->close();
                                 }
                                 self->drain();
                             });
}

void Session::close() {
    ErrorCode ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close();
}

Status HttpServer::Impl::init() {
    if (options_.threads == 0 || options_.max_connections == 0 || options_.max_body_bytes == 0 ||
        options_.max_header_bytes == 0) {
        return error(Errc::kInvalidArgument,
                     "threads, max_connections and size limits must be positive");
    }
    if (options_.max_header_bytes > std::numeric_limits<uint32_t>::max()) {
        return error(Errc::kInvalidArgument, "max_header_bytes must fit 32 bits");
    }
    COFFER_RETURN_IF_ERROR(init_tls());
    return init_acceptor();
}

Status HttpServer::Impl::init_tls() {
    COFFER_RETURN_IF_ERROR(detail::apply_server_tls_settings(ssl_ctx_.native_handle()));
    ErrorCode ec;
    ssl_ctx_.use_certificate_chain(asio::buffer(options_.cert_chain_pem), ec);
    if (ec) {
        return error(Errc::kInvalidArgument, "unusable server certificate chain: " + ec.message() +
                                                 detail::drain_openssl_errors());
    }
    ssl_ctx_.use_private_key(asio::buffer(options_.private_key_pem), ssl::context::pem, ec);
    if (ec) {
        detail::drain_openssl_errors();
        return error(Errc::kInvalidArgument, "unusable server private key");
    }
    if (SSL_CTX_check_private_key(ssl_ctx_.native_handle()) != 1) {
        detail::drain_openssl_errors();
        return error(Errc::kInvalidArgument,
                     "the server private key does not match the certificate");
    }
    return Status();
}

Status HttpServer::Impl::init_acceptor() {
    ErrorCode ec;
    const auto address = asio::ip::make_address(options_.address, ec);
    if (ec) {
        return error(Errc::kInvalidArgument,
                     fmt::format("bad listen address \"{}\"", options_.address));
    }
    const tcp::endpoint endpoint(address, options_.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) {
        acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    }
    if (!ec) {
        acceptor_.bind(endpoint, ec);
    }
    if (!ec) {
        acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        return error(Errc::kIo, fmt::format("cannot listen on {}:{}: {}", options_.address,
                                            options_.port, ec.message()));
    }
    port_ = acceptor_.local_endpoint(ec).port();
    return Status();
}

void HttpServer::Impl::run() {
    asio::dispatch(acceptor_.get_executor(), [this] { accept_next(); });
    threads_.reserve(options_.threads);
    for (size_t i = 0; i < options_.threads; ++i) {
        threads_.emplace_back([this] { ioc_.run(); });
    }
    spdlog::info("net.server_started address={} port={} threads={}", options_.address, port_,
                 options_.threads);
}

void HttpServer::Impl::accept_next() {
    acceptor_.async_accept(
        asio::make_strand(ioc_),
        [this](const ErrorCode& ec, tcp::socket socket) { on_accept(ec, std::move(socket)); });
}

void HttpServer::Impl::on_accept(const ErrorCode& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) {
        return;
    }
    if (ec) {
        spdlog::warn("net.accept_failed error={}", ec.message());
        retry_timer_.expires_after(Milliseconds(kAcceptRetryDelayMs));
        retry_timer_.async_wait([this](const ErrorCode& timer_ec) {
            if (!timer_ec && acceptor_.is_open()) {
                accept_next();
            }
        });
        return;
    }

    // Refusing right after accept() costs no TLS handshake; the client sees the connection
    // closed at once rather than waiting in the listen queue.
    if (counters_.connections_active.load() >= options_.max_connections) {
        counters_.connections_rejected.fetch_add(1);
        ErrorCode ignored;
        socket.close(ignored);
        return accept_next();
    }
    counters_.connections_active.fetch_add(1);
    counters_.connections_accepted.fetch_add(1);
    // Requests and responses are small and latency-bound: no Nagle delay on top of the
    // peer's delayed ACK.
    ErrorCode nodelay_ignored;
    socket.set_option(tcp::no_delay(true), nodelay_ignored);
    auto session = std::make_shared<Session>(*this, std::move(socket));
    if (register_session(session.get(), session)) {
        session->start();
    }
    accept_next();
}

bool HttpServer::Impl::register_session(Session* session, std::weak_ptr<Session> weak) {
    std::lock_guard lock(mutex_);
    if (stopping_) {
        return false;
    }
    sessions_.emplace(session, std::move(weak));
    return true;
}

void HttpServer::Impl::unregister_session(Session* session) {
    std::lock_guard lock(mutex_);
    sessions_.erase(session);
}

void HttpServer::Impl::stop() {
    std::vector<std::shared_ptr<Session>> open;
    {
        std::lock_guard lock(mutex_);
        if (stopping_) {
            return;
        }
        stopping_ = true;
        for (auto& [ptr, weak] : sessions_) {
            if (auto session = weak.lock()) {
                open.push_back(std::move(session));
            }
        }
    }

    asio::post(acceptor_.get_executor(), [this] {
        ErrorCode ignored;
        acceptor_.close(ignored);
        retry_timer_.cancel();
    });
    for (auto& session : open) {
        session->close_from_stop();
    }
    open.clear();

    // With the acceptor and every connection closed, each thread's run() returns once the
    // cancelled operations have completed.
    for (auto& thread : threads_) {
        thread.join();
    }
    threads_.clear();
    spdlog::info("net.server_stopped port={}", port_);
}

ServerStats HttpServer::Impl::stats() const {
    ServerStats s;
    s.connections_accepted = counters_.connections_accepted.load();
    s.connections_rejected = counters_.connections_rejected.load();
    s.connections_active = counters_.connections_active.load();
    s.tls_handshake_failures = counters_.tls_handshake_failures.load();
    s.requests = counters_.requests.load();
    s.body_too_large = counters_.body_too_large.load();
    s.header_too_large = counters_.header_too_large.load();
    s.bad_request = counters_.bad_request.load();
    s.timeouts = counters_.timeouts.load();
    s.handler_errors = counters_.handler_errors.load();
    return s;
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(ServerOptions options, Handler handler) {
    if (!handler) {
        return error(Errc::kInvalidArgument, "the server needs a request handler");
    }
    auto impl = std::make_unique<Impl>(std::move(options), std::move(handler));
    try {
        COFFER_RETURN_IF_ERROR(impl->init());
        impl->run();
    } catch (const std::exception& e) {
        return error(Errc::kInternal, std::string("starting the HTTP server: ") + e.what());
    }
    return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
    stop();
}

uint16_t HttpServer::port() const {
    return impl_->port();
}

void HttpServer::stop() {
    impl_->stop();
}

ServerStats HttpServer::stats() const {
    return impl_->stats();
}

}  // namespace coffer::net
