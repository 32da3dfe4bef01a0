// HTTP requests and responses as plain values, target and query parsing, and a JSON parser
// with a nesting-depth limit. Free of Boost so that endpoint code including it compiles fast.
//
// Everything here is a value type or a pure function: thread-safe to call concurrently.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace coffer::net {

// The deepest nesting of arrays and objects parse_json accepts by default. Deep enough for
// any document our APIs define (they nest fewer than 10 levels), shallow enough that code
// walking a parsed document recursively cannot exhaust its stack.
constexpr size_t kDefaultMaxJsonDepth = 64;
// The longest description of a JSON syntax error parse_json returns (it quotes the input).
constexpr size_t kMaxJsonErrorChars = 200;

// The most query parameters one target may carry.
constexpr size_t kMaxQueryParameters = 64;

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
    std::string method;                        // as sent, e.g. "GET"
    std::string target;                        // as sent, e.g. "/app/log?id=1"
    std::string path;                          // percent-decoded path of target, e.g. "/app/log"
    std::map<std::string, std::string> query;  // percent-decoded; '+' is kept literally
    HeaderList headers;                        // in the order received
    std::string body;
    // The client's TLS certificate (DER) if it presented one. The TLS layer accepts any
    // certificate whose private key the client proved to hold; the application decides
    // who it belongs to, by fingerprint.
    std::optional<std::string> client_cert_der;
    // SHA-256 of client_cert_der, lower-case hex.
    std::optional<std::string> client_cert_fingerprint;
    std::string remote_address;  // "ip:port" of the peer

    // The value of the first header called `name` (ASCII case-insensitive), if any.
    std::optional<std::string> header(std::string_view name) const;
};

struct HttpResponse {
    int status = 200;
    // Content-Length, Transfer-Encoding and Connection are set by the server and dropped
    // from here. Without a Content-Type, the server sends "text/plain; charset=utf-8".
    HeaderList headers;
    std::string body;

    // The value of the first header called `name` (ASCII case-insensitive), if any.
    std::optional<std::string> header(std::string_view name) const;

    // `body` serialised as JSON with Content-Type application/json.
    static HttpResponse json(int status, const nlohmann::json& body);
    // The error shape of every Coffer API: {"error":{"code":code,"message":message}}.
    // `code` is a stable snake_case name clients may branch on; `message` is for humans.
    static HttpResponse error(int status, std::string_view code, std::string_view message);
};

// The parts of an origin-form request target (RFC 9112 section 3.2.1).
struct ParsedTarget {
    std::string path;
    std::map<std::string, std::string> query;
};

// Percent-decodes `text` (RFC 3986 section 2.1). '+' is not special.
// Errors: kInvalidArgument for '%' not followed by two hex digits, or a decoded NUL byte.
Result<std::string> percent_decode(std::string_view text);

// Splits "/path?k=v&k2=v2" into a decoded path and query map. The target must start with
// '/' and contain no '#'. Query parameters are separated by '&'; a parameter without '='
// has the empty value; empty parameters ("a=1&&b=2") are skipped.
// Errors: kInvalidArgument for a target not in origin form, bad percent-encoding, an
// empty or duplicate query key, or more than kMaxQueryParameters parameters.
Result<ParsedTarget> parse_target(std::string_view target);

// Parses a JSON document (RFC 8259) whose arrays and objects nest at most `max_depth`
// deep ("[]" has depth 1, "[[1]]" depth 2, a scalar depth 0). The parser is iterative and
// stops at the first container deeper than the limit, so hostile input cannot exhaust the
// stack or build a huge tree. Duplicate keys in one object are rejected rather than
// silently resolved, so that two readers cannot see different documents.
// Errors: kInvalidArgument with "nesting depth exceeds <max_depth>" for too-deep input,
// "duplicate key" for repeated keys, and "invalid JSON at byte <n>: ..." otherwise.
Result<nlohmann::json> parse_json(std::string_view body, size_t max_depth = kDefaultMaxJsonDepth);

}  // namespace coffer::net
