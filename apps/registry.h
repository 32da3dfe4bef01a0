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
//   policy              anonymous  unknown cert  removed user  user     member
//   kAnonymous          handler    handler       handler       handler  handler
//   kAnyAuthenticated   401        401           403           handler  handler
//   kUser               401        401           403           handler* 403
//   kMember             401        401           403           403      handler
//
// * Users reach the applications only while the service is open (docs/governance.md,
//   "Service states"): a kUser endpoint answers 503 `service_not_open` while the service
//   record's status is anything but "open". Members' governance endpoints, anonymous reads
//   and node-to-node endpoints keep working in every state, since members need them to open
//   or recover the service. A removed user is a certificate that governance removed from the
//   users map (action remove_user, which leaves a record in node::kRemovedUsersMap).
//
// Thread-safety: build the registry on one thread, then dispatch from any number.
#pragma once

#include <functional>
#include <optional>
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
enum class CallerKind { kAnonymous, kUnknownCertificate, kRemovedUser, kUser, kMember };

// "anonymous", "any_authenticated", "user", "member".
std::string_view policy_name(AuthPolicy policy);
// "anonymous", "unknown_certificate", "removed_user", "user", "member".
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

// The answer for an endpoint of `policy` while the service record's status is
// `service_status` (node::kServiceStatus*): 503 `service_not_open`, naming the status and
// what members do about it, for a kUser endpoint unless the status is "open"; nullopt
// otherwise.
std::optional<net::HttpResponse> check_service_status(AuthPolicy policy,
                                                      std::string_view service_status);

// Maps a request's client certificate to a caller: users, members and removed users by
// fingerprint in the governance maps (node/governance_maps.h, kRemovedUsersMap), in that
// order, read through a fresh transaction of `store`.
Caller resolve_caller(kv::Store& store, const net::HttpRequest& request);

// The status of the service record (node::kServiceMap) through a fresh transaction of
// `store`; "" when there is no readable record (a node that has not replicated it yet).
std::string read_service_status(kv::Store& store);

// Returns the current service status; called once per request to a kUser endpoint, from any
// thread.
using ServiceStatusReader = std::function<std::string()>;

class EndpointRegistry {
  public:
    // `service_status` must not be empty; it decides whether kUser endpoints are served.
    explicit EndpointRegistry(ServiceStatusReader service_status);

    // Adds an endpoint. Errors: kInvalidArgument for an empty handler, a path not starting
    // with '/', or a (method, path) already registered; kResourceExhausted beyond
    // kMaxEndpoints.
    Status add(Endpoint endpoint);

    // The registered endpoints, in registration order.
    const std::vector<Endpoint>& endpoints() const { return endpoints_; }

    // The endpoint for (method, path), or nullptr. `path_known` tells whether any method is
    // registered for the path (405 rather than 404).
    const Endpoint* find(std::string_view method, std::string_view path, bool& path_known) const;

    // The answer refusing `caller` on `endpoint`: check_policy first (401/403), then
    // check_service_status (503); nullopt when the handler may run.
    std::optional<net::HttpResponse> refusal(const Endpoint& endpoint, const Caller& caller) const;

    // Authenticates (refusal() above) and runs the endpoint. 404 for unknown paths, 405 with
    // an Allow header for unknown methods of a known path.
    net::HttpResponse dispatch(const net::HttpRequest& request, const Caller& caller) const;

    // [{"method", "path", "policy", "description", "example_query", "example_body"}, ...]
    nlohmann::json describe() const;

  private:
    ServiceStatusReader service_status_;
    std::vector<Endpoint> endpoints_;
};

}  // namespace coffer::apps
