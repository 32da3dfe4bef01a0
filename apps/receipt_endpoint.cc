// GET /app/receipt?transaction_id=V.S[&include_public=true]: the receipt of a committed
// transaction (ledger/receipt.h, docs/receipts.md).
#include "apps/apps.h"

namespace coffer::apps {

namespace {

net::HttpResponse pending(const kv::TxId& id) {
    net::HttpResponse r =
        net::HttpResponse::json(202, {{"transaction_id", id.to_string()}, {"status", "Pending"}});
    r.headers.emplace_back("Retry-After", std::to_string(kReceiptRetryAfterS));
    return r;
}

net::HttpResponse get_receipt(node::Node& node, const net::HttpRequest& request) {
    auto it = request.query.find("transaction_id");
    if (it == request.query.end()) {
        return net::HttpResponse::error(400, "invalid_argument",
                                        "query parameter transaction_id is required");
    }
    auto id = kv::TxId::parse(it->second);
    if (!id.ok() || id->seqno == 0) {
        return net::HttpResponse::error(400, "invalid_argument",
                                        "transaction_id must look like \"view.seqno\" with "
                                        "seqno >= 1");
    }
    bool include_public = false;
    auto pub = request.query.find("include_public");
    if (pub != request.query.end()) {
        if (pub->second != "true" && pub->second != "false") {
            return net::HttpResponse::error(400, "invalid_argument",
                                            "include_public must be true or false");
        }
        include_public = pub->second == "true";
    }

    ledger::TxStatus status = node.ledger().tx_status(*id);
    if (status == ledger::TxStatus::kUnknown || status == ledger::TxStatus::kInvalid) {
        return net::HttpResponse::error(404, "not_found",
                                        "transaction " + id->to_string() + " is " +
                                            std::string(ledger::tx_status_name(status)) +
                                            ": no receipt exists");
    }
    if (status == ledger::TxStatus::kPending) {
        return pending(*id);
    }
    auto receipt = node.ledger().receipt(id->seqno, include_public);
    if (!receipt.ok()) {
        if (receipt.status().code() == Errc::kFailedPrecondition) {
            return pending(*id);
        }
        if (receipt.status().code() == Errc::kNotFound) {
            return net::HttpResponse::error(404, "not_found", receipt.status().message());
        }
        return net::HttpResponse::error(500, "internal_error", receipt.status().message());
    }
    net::HttpResponse r;
    r.status = 200;
    r.headers.emplace_back("content-type", "application/json");
    r.headers.emplace_back(std::string(kTxIdHeader), id->to_string());
    r.body = ledger::receipt_to_json(*receipt);
    return r;
}

}  // namespace

Status register_receipt_endpoint(EndpointRegistry& registry, node::Node& node) {
    node::Node* n = &node;
    Endpoint e;
    e.method = "GET";
    e.path = "/app/receipt";
    e.policy = AuthPolicy::kAnyAuthenticated;
    e.description = "receipt of a committed transaction ?transaction_id=V.S; 202 while pending";
    e.handler = [n](const net::HttpRequest& r, const Caller&) { return get_receipt(*n, r); };
    e.example_query = "transaction_id=1.1";
    return registry.add(std::move(e));
}

}  // namespace coffer::apps
