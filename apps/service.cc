#include "apps/apps.h"

#include <charconv>

namespace coffer::apps {

namespace {

// How many views tx_id_at searches back from the current one. A view is used per restart
// and per disk-full rollback, so a node would need this many of them before an old entry's
// id could no longer be named.
constexpr kv::View kMaxViewSearch = 4096;

}  // namespace

std::optional<kv::TxId> tx_id_at(node::Node& node, kv::Seqno seqno) {
    if (seqno == 0) {
        return kv::TxId{0, 0};
    }
    kv::View top = node.store().view();
    kv::View bottom = top > kMaxViewSearch ? top - kMaxViewSearch : 0;
    for (kv::View v = top + 1; v-- > bottom;) {
        ledger::TxStatus s = node.ledger().tx_status(kv::TxId{v, seqno});
        if (s == ledger::TxStatus::kCommitted || s == ledger::TxStatus::kPending) {
            return kv::TxId{v, seqno};
        }
    }
    return std::nullopt;
}

// Storage failures are answered with fixed texts: their messages name server paths, which
// are none of the client's business (the node logs them).
net::HttpResponse commit_error_response(const Status& status) {
    switch (status.code()) {
        case Errc::kNoSpace:
            return net::HttpResponse::error(
                507, "insufficient_storage",
                "the node's disk is full: writes are refused, reads go on");
        case Errc::kIo:
        case Errc::kCorrupt: {
            net::HttpResponse r = net::HttpResponse::error(
                503, "unavailable", "the node's storage failed; the node is stopping");
            r.headers.emplace_back("Retry-After", "1");
            return r;
        }
        case Errc::kFailedPrecondition:
        case Errc::kConflict:
        case Errc::kResourceExhausted: {
            net::HttpResponse r = net::HttpResponse::error(503, "unavailable", status.message());
            r.headers.emplace_back("Retry-After", "1");
            return r;
        }
        case Errc::kInvalidArgument:
            return net::HttpResponse::error(400, "invalid_argument", status.message());
        default:
            return net::HttpResponse::error(500, "internal_error",
                                            "the write failed inside the node");
    }
}

Result<std::shared_ptr<EndpointRegistry>> make_default_registry(node::Node& node) {
    node::Node* n = &node;
    auto registry =
        std::make_shared<EndpointRegistry>([n] { return read_service_status(n->store()); });
    COFFER_RETURN_IF_ERROR(register_node_endpoints(*registry, node));
    COFFER_RETURN_IF_ERROR(register_logging_app(*registry, node));
    COFFER_RETURN_IF_ERROR(register_receipt_endpoint(*registry, node));
    COFFER_RETURN_IF_ERROR(register_cleanroom_app(*registry, node));
    COFFER_RETURN_IF_ERROR(register_governance_endpoints(*registry, node));
    return registry;
}

Result<uint64_t> parse_wait_ms(std::string_view text) {
    uint64_t wait_ms = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), wait_ms);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
        wait_ms > node::kMaxClientWaitMs) {
        return error(Errc::kInvalidArgument, "wait must be an integer from 0 to " +
                                                 std::to_string(node::kMaxClientWaitMs) + " ms");
    }
    return wait_ms;
}

std::optional<net::HttpResponse> redirect_to_leader(node::Node& node,
                                                    const net::HttpRequest& request) {
    if (node.is_leader()) {
        return std::nullopt;
    }
    std::optional<std::string> leader = node.leader_client_address();
    if (!leader.has_value()) {
        net::HttpResponse r = net::HttpResponse::error(
            503, "unavailable", "this node is not the leader and no leader is known yet");
        r.headers.emplace_back("Retry-After", "1");
        return r;
    }
    net::HttpResponse r = net::HttpResponse::error(
        307, "not_leader", "writes and linearizable reads go to the leader at " + *leader);
    r.headers.emplace_back("Location", "https://" + *leader + request.target);
    return r;
}

// A write whose request carries `x-coffer-wait-ms: N` (0 to kMaxClientWaitMs) is answered
// only once its transaction left Pending or N ms passed, with the status in
// `x-coffer-tx-status`: one round trip from write to Committed, without polling.
void wait_for_commit(node::Node& node, const net::HttpRequest& request,
                     net::HttpResponse& response) {
    auto wait = request.header(kWaitHeader);
    if (!wait.has_value() || response.status != 200) {
        return;
    }
    std::optional<std::string> tx_text;
    for (const auto& [name, value] : response.headers) {
        if (name == kTxIdHeader) {
            tx_text = value;
        }
    }
    auto wait_ms = parse_wait_ms(*wait);
    auto id = tx_text.has_value() ? kv::TxId::parse(*tx_text)
                                  : Result<kv::TxId>(error(Errc::kNotFound, ""));
    if (!wait_ms.ok() || !id.ok()) {
        return;
    }
    (void)node.wait_committed(id->seqno, *wait_ms);
    ledger::TxStatus status = node.ledger().tx_status(*id);
    response.headers.emplace_back(std::string(kTxStatusHeader),
                                  std::string(ledger::tx_status_name(status)));
}

bool needs_leader(const net::HttpRequest& request, const Endpoint* endpoint) {
    if (endpoint == nullptr) {
        return false;
    }
    if (request.method != "GET") {
        return true;
    }
    auto consistency = request.query.find("consistency");
    return consistency != request.query.end() && consistency->second == kLinearizable;
}

net::Handler make_http_handler(node::Node& node, std::shared_ptr<const EndpointRegistry> registry) {
    return [&node, registry](const net::HttpRequest& request) {
        Caller caller = resolve_caller(node.store(), request);
        bool path_known = false;
        const Endpoint* endpoint = registry->find(request.method, request.path, path_known);
        // A node that just joined cannot tell users from strangers before it has replicated
        // the governance maps: it asks callers to come back rather than answer 401.
        // Followers redirect writes (and linearizable reads) to the leader; see
        // docs/replication.md, "Clients".
        std::optional<net::HttpResponse> redirect;
        auto wait = request.header(kWaitHeader);
        if (wait.has_value() && !parse_wait_ms(*wait).ok()) {
            // Refused before anything runs: a write must not happen when its wait is invalid.
            redirect = net::HttpResponse::error(
                400, "invalid_argument",
                std::string(kWaitHeader) + ": " + parse_wait_ms(*wait).status().message());
        } else if (endpoint != nullptr && endpoint->policy != AuthPolicy::kAnonymous &&
                   !node.caught_up()) {
            redirect = net::HttpResponse::error(503, "unavailable",
                                                "this node is still catching up with the network");
            redirect->headers.emplace_back("Retry-After", "1");
        } else if (needs_leader(request, endpoint) && !node.is_leader() &&
                   !registry->refusal(*endpoint, caller)) {
            // Checked here only on a follower: the leader's dispatch checks it once.
            redirect = redirect_to_leader(node, request);
        }
        net::HttpResponse response =
            redirect.has_value() ? std::move(*redirect) : registry->dispatch(request, caller);
        if (!redirect.has_value()) {
            wait_for_commit(node, request, response);
        }
        node.metrics().count_request(
            endpoint != nullptr ? endpoint->method + " " + endpoint->path : "unmatched",
            response.status);
        return response;
    };
}

}  // namespace coffer::apps
