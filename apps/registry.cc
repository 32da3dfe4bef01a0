#include "apps/registry.h"

#include "common/check.h"
#include "node/governance_maps.h"

namespace coffer::apps {

std::string_view policy_name(AuthPolicy policy) {
    switch (policy) {
        case AuthPolicy::kAnonymous:
            return "anonymous";
        case AuthPolicy::kAnyAuthenticated:
            return "any_authenticated";
        case AuthPolicy::kUser:
            return "user";
        case AuthPolicy::kMember:
            return "member";
    }
    return "unknown";
}

std::string_view caller_kind_name(CallerKind kind) {
    switch (kind) {
        case CallerKind::kAnonymous:
            return "anonymous";
        case CallerKind::kUnknownCertificate:
            return "unknown_certificate";
        case CallerKind::kRemovedUser:
            return "removed_user";
        case CallerKind::kUser:
            return "user";
        case CallerKind::kMember:
            return "member";
    }
    return "unknown";
}

std::optional<net::HttpResponse> check_policy(AuthPolicy policy, const Caller& caller) {
    if (policy == AuthPolicy::kAnonymous) {
        return std::nullopt;
    }
    if (caller.kind == CallerKind::kAnonymous) {
        return net::HttpResponse::error(401, "unauthenticated",
                                        "this endpoint needs a client certificate");
    }
    if (caller.kind == CallerKind::kUnknownCertificate) {
        return net::HttpResponse::error(
            401, "unauthenticated", "the client certificate is not a registered user or member");
    }
    if (caller.kind == CallerKind::kRemovedUser) {
        return net::HttpResponse::error(403, "forbidden", "this user was removed by governance");
    }
    if (policy == AuthPolicy::kUser && caller.kind != CallerKind::kUser) {
        return net::HttpResponse::error(403, "forbidden", "only users may call this endpoint");
    }
    if (policy == AuthPolicy::kMember && caller.kind != CallerKind::kMember) {
        return net::HttpResponse::error(403, "forbidden", "only members may call this endpoint");
    }
    return std::nullopt;
}

std::optional<net::HttpResponse> check_service_status(AuthPolicy policy,
                                                      std::string_view service_status) {
    if (policy != AuthPolicy::kUser || service_status == node::kServiceStatusOpen) {
        return std::nullopt;
    }
    if (service_status.empty()) {
        net::HttpResponse r = net::HttpResponse::error(
            503, "service_not_open",
            "the service is not open: this node has no service record yet");
        r.headers.emplace_back("Retry-After", "1");
        return r;
    }
    std::string message =
        "the service is not open: its status is \"" + std::string(service_status) + "\"";
    if (service_status == node::kServiceStatusOpening) {
        message += "; members open it with a transition_service_to_open proposal";
    } else if (service_status == node::kServiceStatusRecovering) {
        message +=
            "; members accept the recovered state with a transition_service_to_open proposal, "
            "then submit their recovery shares";
    } else if (service_status == node::kServiceStatusWaitingForShares) {
        message += "; it opens once enough members submitted their recovery shares";
    }
    return net::HttpResponse::error(503, "service_not_open", message);
}

Caller resolve_caller(kv::Store& store, const net::HttpRequest& request) {
    if (!request.client_cert_fingerprint.has_value()) {
        return Caller{CallerKind::kAnonymous, ""};
    }
    const std::string& fp = *request.client_cert_fingerprint;
    kv::Transaction tx = store.begin();
    if (tx.get(node::kUsersMap, as_bytes(fp)).has_value()) {
        return Caller{CallerKind::kUser, fp};
    }
    if (tx.get(node::kMembersMap, as_bytes(fp)).has_value()) {
        return Caller{CallerKind::kMember, fp};
    }
    if (tx.get(node::kRemovedUsersMap, as_bytes(fp)).has_value()) {
        return Caller{CallerKind::kRemovedUser, fp};
    }
    return Caller{CallerKind::kUnknownCertificate, fp};
}

std::string read_service_status(kv::Store& store) {
    kv::Transaction tx = store.begin();
    auto record = node::read_governance_value(tx, node::kServiceMap, node::kServiceKey);
    if (!record.ok() || !record->has_value()) {
        return "";
    }
    auto status = (*record)->find("status");
    return status != (*record)->end() && status->is_string() ? status->get<std::string>() : "";
}

EndpointRegistry::EndpointRegistry(ServiceStatusReader service_status)
    : service_status_(std::move(service_status)) {
    COFFER_CHECK(service_status_ != nullptr, "a registry needs a service status reader");
}

Status EndpointRegistry::add(Endpoint endpoint) {
    if (!endpoint.handler || endpoint.path.empty() || endpoint.path.front() != '/' ||
        endpoint.method.empty()) {
        return error(Errc::kInvalidArgument, "endpoint needs a method, a path and a handler");
    }
    if (endpoints_.size() >= kMaxEndpoints) {
        return error(Errc::kResourceExhausted, "too many endpoints");
    }
    for (const Endpoint& e : endpoints_) {
        if (e.method == endpoint.method && e.path == endpoint.path) {
            return error(Errc::kInvalidArgument,
                         "endpoint " + e.method + " " + e.path + " registered twice");
        }
    }
    endpoints_.push_back(std::move(endpoint));
    return Status();
}

const Endpoint* EndpointRegistry::find(std::string_view method, std::string_view path,
                                       bool& path_known) const {
    path_known = false;
    for (const Endpoint& e : endpoints_) {
        if (e.path == path) {
            path_known = true;
            if (e.method == method) {
                return &e;
            }
        }
    }
    return nullptr;
}

net::HttpResponse EndpointRegistry::dispatch(const net::HttpRequest& request,
                                             const Caller& caller) const {
    bool path_known = false;
    const Endpoint* endpoint = find(request.method, request.path, path_known);
    if (endpoint == nullptr && !path_known) {
        return net::HttpResponse::error(404, "not_found", "no endpoint " + request.path);
    }
    if (endpoint == nullptr) {
        std::string allow;
        for (const Endpoint& e : endpoints_) {
            if (e.path == request.path) {
                allow += (allow.empty() ? "" : ", ") + e.method;
            }
        }
        net::HttpResponse r = net::HttpResponse::error(
            405, "method_not_allowed", request.method + " is not allowed on " + request.path);
        r.headers.emplace_back("Allow", allow);
        return r;
    }
    if (auto refused = refusal(*endpoint, caller)) {
        return *refused;
    }
    return endpoint->handler(request, caller);
}

std::optional<net::HttpResponse> EndpointRegistry::refusal(const Endpoint& endpoint,
                                                           const Caller& caller) const {
    if (auto refused = check_policy(endpoint.policy, caller)) {
        return refused;
    }
    if (endpoint.policy != AuthPolicy::kUser) {
        return std::nullopt;
    }
    return check_service_status(endpoint.policy, service_status_());
}

nlohmann::json EndpointRegistry::describe() const {
    nlohmann::json out = nlohmann::json::array();
    for (const Endpoint& e : endpoints_) {
        out.push_back({{"method", e.method},
                       {"path", e.path},
                       {"policy", std::string(policy_name(e.policy))},
                       {"description", e.description},
                       {"example_query", e.example_query},
                       {"example_body", e.example_body}});
    }
    return out;
}

}  // namespace coffer::apps
