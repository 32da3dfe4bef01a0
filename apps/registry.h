// The endpoint registry: every HTTP endpoint of a node, with its authentication policy.
//
// An endpoint is (method, path, policy, handler). The registry authenticates the caller
// once (its TLS client certificate's fingerprint, looked up in the governance maps), checks
// the endpoint's policy and only then calls the handler, so no handler can forget to check.
// The whole registry is listed by GET /node/endpoints, which lets tests walk every endpoint
// with every kind of caller (docs/endpoints.md).
//
// Policies and the answer to each caller kind:
//
//   policy              anonymous  unknown cert  user   member
//   kAnonymous          handler    handler       handler handler
//   kAnyAuthenticated   401        401           handler handler
//   kUser               401        401           handler 403
//   kMember             401        401           403     handler
//
// Thread-safety: build the registry on one thread, then dispatch from any number.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "kv/store.h"
#include "net/http.h"

namespace coffer::apps {

// The most endpoints one registry holds.
constexpr size_t kMaxEndpoints = 256;

enum class AuthPolicy { kAnonymous, kAnyAuthenticated, kUser, kMember };
enum class CallerKind { kAnonymous, kUnknownCertificate, kUser, kMember };

// "anonymous", "any_authenticated", "user", "member".
std::string_view policy_name(AuthPolicy policy);
// "anonymous", "unknown_certificate", "user", "member".
std::string_view caller_kind_name(CallerKind kind);

struct Caller {
    CallerKind kind = CallerKind::kAnonymous;
    std::string fingerprint;  // of the client certificate; empty when anonymous
};

using EndpointHandler = std::function<net::HttpResponse(const net::HttpRequest&, const Caller&)>;

struct Endpoint {
    std::string method;  // "GET", "POST"
    std::string path;    // exact path, e.g. "/app/log/private"
    AuthPolicy policy = AuthPolicy::kAnonymous;
    std::string description;
    EndpointHandler handler;
    // A request that an allowed caller can make and that succeeds (2xx) on a running node,
    // once the examples before it in registration order have run: query string (without
    // '?') and body. Tests use them to walk the registry.
    std::string example_query;
    std::string example_body;
};

// The answer for a caller that `policy` refuses (401 or 403 JSON error), or nullopt when the
// caller is allowed.
std::optional<net::HttpResponse> check_policy(AuthPolicy policy, const Caller& caller);

// Maps a request's client certificate to a caller: users and members by fingerprint in the
// governance maps (node/governance_maps.h), read through a fresh transaction of `store`.
Caller resolve_caller(kv::Store& store, const net::HttpRequest& request);

class EndpointRegistry {
  public:
    // Adds an endpoint. Errors: kInvalidArgument for an empty handler, a path not starting
    // with '/', or a (method, path) already registered; kResourceExhausted beyond
    // kMaxEndpoints.
    Status add(Endpoint endpoint);

    // The registered endpoints, in registration order.
    const std::vector<Endpoint>& endpoints() const { return endpoints_; }

    // The endpoint for (method, path), or nullptr. `path_known` tells whether any method is
    // registered for the path (405 rather than 404).
    const Endpoint* find(std::string_view method, std::string_view path, bool& path_known) const;

    // Authenticates (policy check) and runs the endpoint. 404 for unknown paths, 405 with
    // an Allow header for unknown methods of a known path.
    net::HttpResponse dispatch(const net::HttpRequest& request, const Caller& caller) const;

    // [{"method", "path", "policy", "description", "example_query", "example_body"}, ...]
    nlohmann::json describe() const;

  private:
    std::vector<Endpoint> endpoints_;
};

}  // namespace coffer::apps
