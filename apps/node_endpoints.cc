// GET /node/*: the node's own state, for operators and clients. All anonymous: they reveal
// nothing a client could not learn from the TLS handshake and the public ledger.
#include <ctime>

#include "apps/apps.h"
#include "common/time.h"
#include "node/governance_maps.h"

namespace coffer::apps {

namespace {

using nlohmann::json;

// The most nodes /node/network lists.
constexpr size_t kMaxListedNodes = 1024;

json validity(const crypto::Certificate& cert) {
    return {{"not_before", format_utc_time(cert.not_before_unix())},
            {"not_after", format_utc_time(cert.not_after_unix())},
            {"not_after_unix", cert.not_after_unix()}};
}

net::HttpResponse get_state(node::Node& node) {
    kv::Seqno committed = node.ledger().committed();
    node::ReplicationStatus rs = node.replication_status();
    // "leader" only once the leader takes writes; until then it reports "candidate".
    std::string role(consensus::role_name(rs.role));
    if (rs.role == consensus::Role::kLeader && !rs.leader_ready) {
        role = "candidate";
    }
    return net::HttpResponse::json(
        200, {{"node_id", node.node_id()},
              {"state", std::string(node::node_state_name(node.state()))},
              {"role", role},
              {"term", rs.term},
              {"leader", rs.leader.has_value() ? json(*rs.leader) : json(nullptr)},
              {"voters", rs.configuration.voters},
              {"view", node.store().view()},
              {"last_seqno", node.ledger().last_seqno()},
              {"committed_seqno", committed}});
}

json node_entry(const std::string& node_id, const json& record) {
    json entry = {{"node_id", node_id},
                  {"status", record.value("status", "")},
                  {"client_address", record.value("client_address", "")}};
    auto cert = crypto::Certificate::from_pem(record.value("cert", ""));
    if (cert.ok()) {
        entry["certificate"] = cert->to_pem();
        entry["certificate_validity"] = validity(*cert);
    }
    return entry;
}

net::HttpResponse get_network(node::Node& node) {
    kv::Transaction tx = node.store().begin();
    auto service = node::read_governance_value(tx, node::kServiceMap, node::kServiceKey);
    if (!service.ok() || !service->has_value()) {
        return net::HttpResponse::error(500, "internal_error", "the service record is missing");
    }
    json nodes = json::array();
    Status listed = tx.range(node::kNodesMap, {}, std::nullopt, kMaxListedNodes,
                             [&](ByteSpan key, ByteSpan value) {
                                 json record = json::parse(to_string(value), nullptr, false);
                                 if (record.is_object()) {
                                     nodes.push_back(node_entry(to_string(key), record));
                                 }
                                 return true;
                             });
    if (!listed.ok()) {
        return net::HttpResponse::error(500, "internal_error", listed.message());
    }
    const crypto::Certificate& service_cert = node.service_cert();
    return net::HttpResponse::json(200, {{"service_status", (**service).value("status", "")},
                                         {"service_certificate", service_cert.to_pem()},
                                         {"service_certificate_validity", validity(service_cert)},
                                         {"nodes", std::move(nodes)}});
}

net::HttpResponse get_commit(node::Node& node) {
    std::optional<kv::TxId> id = tx_id_at(node, node.ledger().committed());
    if (!id.has_value()) {
        return net::HttpResponse::error(500, "internal_error", "commit point has no entry");
    }
    return net::HttpResponse::json(200, {{"transaction_id", id->to_string()}});
}

net::HttpResponse get_tx(node::Node& node, const net::HttpRequest& request) {
    auto it = request.query.find("transaction_id");
    if (it == request.query.end()) {
        return net::HttpResponse::error(400, "invalid_argument",
                                        "query parameter transaction_id is required");
    }
    auto id = kv::TxId::parse(it->second);
    if (!id.ok()) {
        return net::HttpResponse::error(400, "invalid_argument",
                                        "transaction_id must look like \"view.seqno\"");
    }
    ledger::TxStatus status = node.ledger().tx_status(*id);
    if (auto wait = request.query.find("wait_ms"); wait != request.query.end()) {
        // Hold the answer until the transaction leaves Pending (or the wait ends), so that
        // a client learns of its commit without polling.
        auto wait_ms = parse_wait_ms(wait->second);
        if (!wait_ms.ok()) {
            return net::HttpResponse::error(400, "invalid_argument",
                                            "wait_ms: " + wait_ms.status().message());
        }
        if (status == ledger::TxStatus::kPending) {
            (void)node.wait_committed(id->seqno, *wait_ms);
            status = node.ledger().tx_status(*id);
        }
    }
    return net::HttpResponse::json(200, {{"transaction_id", id->to_string()},
                                         {"status", std::string(ledger::tx_status_name(status))}});
}

net::HttpResponse post_join(node::Node& node, const net::HttpRequest& request) {
    if (!request.client_cert_der.has_value()) {
        return net::HttpResponse::error(401, "unauthenticated",
                                        "a joining node presents its node key's certificate");
    }
    auto body = net::parse_json(request.body);
    if (!body.ok()) {
        return net::HttpResponse::error(400, "invalid_argument",
                                        "invalid JSON body: " + body.status().message());
    }
    auto answer = node.admit_node(*request.client_cert_der, *body);
    if (!answer.ok()) {
        switch (answer.status().code()) {
            case Errc::kInvalidArgument:
                return net::HttpResponse::error(400, "invalid_argument", answer.status().message());
            case Errc::kPermissionDenied:
                return net::HttpResponse::error(403, "forbidden", answer.status().message());
            default:
                return commit_error_response(answer.status());
        }
    }
    // A node the members have not trusted yet: accepted for consideration, ask again.
    int status = answer->value("status", "") == node::kNodeStatusPending ? 202 : 200;
    return net::HttpResponse::json(status, *answer);
}

net::HttpResponse get_quote(node::Node& node) {
    return net::HttpResponse::json(200, {{"node_id", node.node_id()},
                                         {"node_certificate", node.node_cert().to_pem()},
                                         {"evidence", node.attestation()}});
}

net::HttpResponse get_metrics(node::Node& node) {
    net::HttpResponse r;
    r.status = 200;
    r.headers.emplace_back("content-type", "text/plain; version=0.0.4; charset=utf-8");
    r.body = node.render_metrics();
    return r;
}

Endpoint anonymous_get(std::string path, std::string description, EndpointHandler handler) {
    Endpoint e;
    e.method = "GET";
    e.path = std::move(path);
    e.policy = AuthPolicy::kAnonymous;
    e.description = std::move(description);
    e.handler = std::move(handler);
    return e;
}

}  // namespace

Status register_node_endpoints(EndpointRegistry& registry, node::Node& node) {
    node::Node* n = &node;
    COFFER_RETURN_IF_ERROR(registry.add(
        anonymous_get("/node/state", "node id, state, role, view, last and committed seqno",
                      [n](const net::HttpRequest&, const Caller&) { return get_state(*n); })));
    COFFER_RETURN_IF_ERROR(registry.add(anonymous_get(
        "/node/network", "service certificate, status and the nodes with their certificates",
        [n](const net::HttpRequest&, const Caller&) { return get_network(*n); })));
    COFFER_RETURN_IF_ERROR(registry.add(
        anonymous_get("/node/commit", "id of the last committed transaction",
                      [n](const net::HttpRequest&, const Caller&) { return get_commit(*n); })));
    Endpoint tx = anonymous_get(
        "/node/tx", "status of a transaction id: Unknown, Pending, Committed or Invalid",
        [n](const net::HttpRequest& r, const Caller&) { return get_tx(*n, r); });
    tx.example_query = "transaction_id=1.1";
    COFFER_RETURN_IF_ERROR(registry.add(std::move(tx)));
    COFFER_RETURN_IF_ERROR(registry.add(
        anonymous_get("/node/quote", "this node's attestation evidence and certificate",
                      [n](const net::HttpRequest&, const Caller&) { return get_quote(*n); })));
    COFFER_RETURN_IF_ERROR(registry.add(
        anonymous_get("/node/metrics", "Prometheus text metrics",
                      [n](const net::HttpRequest&, const Caller&) { return get_metrics(*n); })));
    Endpoint join;
    join.method = "POST";
    join.path = "/node/join";
    join.policy = AuthPolicy::kAnonymous;
    join.description =
        "a joining node asks to be admitted (TLS client certificate of its node key; body "
        "{node_address, client_address, attestation}); answers with its certificate and the "
        "service's secrets";
    join.handler = [n](const net::HttpRequest& r, const Caller&) { return post_join(*n, r); };
    COFFER_RETURN_IF_ERROR(registry.add(std::move(join)));
    EndpointRegistry* reg = &registry;
    return registry.add(anonymous_get(
        "/node/endpoints", "every endpoint of this node with its authentication policy",
        [reg](const net::HttpRequest&, const Caller&) {
            return net::HttpResponse::json(200, {{"endpoints", reg->describe()}});
        }));
}

}  // namespace coffer::apps
