// The logging app: a sample application that stores messages by id, in a private map
// (encrypted in the ledger) or a public one (in clear). Users only.
//
// Writes answer with the transaction id (Pending until a signature covering it is durable;
// poll GET /node/tx or GET /app/receipt). Reads see the latest state of this node, committed
// or not, and say which transaction id that state is as of (docs/endpoints.md).
#include "apps/apps.h"

namespace coffer::apps {

namespace {

using nlohmann::json;

Bytes log_key(uint64_t id) {
    Bytes key(8);
    for (int i = 0; i < 8; ++i) {
        key[static_cast<size_t>(i)] = static_cast<uint8_t>(id >> (56 - 8 * i));
    }
    return key;
}

net::HttpResponse bad_request(const std::string& message) {
    return net::HttpResponse::error(400, "invalid_argument", message);
}

struct LogMessage {
    uint64_t id = 0;
    std::string msg;
};

// Strict schema: an object with exactly "id" (an integer in [0, 2^64-1]) and "msg" (a
// string). Returns the 400 answer for anything else.
Result<LogMessage> parse_log_message(std::string_view body) {
    auto doc = net::parse_json(body);
    if (!doc.ok()) {
        return error(Errc::kInvalidArgument, "invalid JSON body: " + doc.status().message());
    }
    if (!doc->is_object()) {
        return error(Errc::kInvalidArgument, "body must be a JSON object");
    }
    for (const auto& [key, value] : doc->items()) {
        if (key != "id" && key != "msg") {
            return error(Errc::kInvalidArgument, "unknown field \"" + key + "\"");
        }
    }
    auto id = doc->find("id");
    if (id == doc->end()) {
        return error(Errc::kInvalidArgument, "missing field \"id\"");
    }
    // nlohmann parses integers above 2^64-1 as floating point, and negative ones as signed.
    if (!id->is_number_unsigned()) {
        return error(Errc::kInvalidArgument,
                     "id must be a non-negative integer that fits in 64 bits");
    }
    auto msg = doc->find("msg");
    if (msg == doc->end()) {
        return error(Errc::kInvalidArgument, "missing field \"msg\"");
    }
    if (!msg->is_string()) {
        return error(Errc::kInvalidArgument, "msg must be a string");
    }
    if (msg->get_ref<const std::string&>().size() > kMaxLogMessageBytes) {
        return error(Errc::kInvalidArgument,
                     "msg is longer than " + std::to_string(kMaxLogMessageBytes) + " bytes");
    }
    return LogMessage{id->get<uint64_t>(), msg->get<std::string>()};
}

Result<uint64_t> parse_id_param(const net::HttpRequest& request) {
    auto it = request.query.find("id");
    if (it == request.query.end()) {
        return error(Errc::kInvalidArgument, "query parameter id is required");
    }
    const std::string& text = it->second;
    bool digits = !text.empty() && text.size() <= 20 &&
                  text.find_first_not_of("0123456789") == std::string::npos &&
                  (text.size() == 1 || text[0] != '0');
    if (digits) {
        try {
            return static_cast<uint64_t>(std::stoull(text));
        } catch (const std::exception&) {
            // Out of range: answered below.
        }
    }
    return error(Errc::kInvalidArgument, "id must be a non-negative integer that fits in 64 bits");
}

net::HttpResponse post_message(node::Node& node, std::string_view map,
                               const net::HttpRequest& request) {
    auto message = parse_log_message(request.body);
    if (!message.ok()) {
        return bad_request(message.status().message());
    }
    Bytes key = log_key(message->id);
    auto committed =
        node.commit([&](kv::Transaction& tx) { return tx.put(map, key, as_bytes(message->msg)); });
    if (!committed.ok()) {
        return commit_error_response(committed.status());
    }
    std::string id = committed->id.to_string();
    net::HttpResponse r = net::HttpResponse::json(200, {{"transaction_id", id}});
    r.headers.emplace_back(std::string(kTxIdHeader), id);
    return r;
}

net::HttpResponse get_message(node::Node& node, std::string_view map,
                              const net::HttpRequest& request) {
    auto id = parse_id_param(request);
    if (!id.ok()) {
        return bad_request(id.status().message());
    }
    // Read a snapshot whose id we know, so the answer can say which state it reflects.
    std::string consistency(kCommitted);
    if (auto c = request.query.find("consistency"); c != request.query.end()) {
        consistency = c->second;
    }
    kv::Seqno point = 0;
    if (consistency == kCommitted) {
        point = node.store().committed();
    } else if (consistency == kLinearizable) {
        auto confirmed = node.linearizable_read_point(kLinearizableReadTimeoutMs);
        if (!confirmed.ok()) {
            net::HttpResponse r =
                net::HttpResponse::error(503, "unavailable", confirmed.status().message());
            r.headers.emplace_back("Retry-After", "1");
            return r;
        }
        point = *confirmed;
    } else {
        // No "latest" level on purpose: a Pending write may still be rolled back (a paused
        // old leader accepts writes in its stale term), and must never be served as data.
        return bad_request("consistency must be committed or linearizable");
    }
    std::optional<kv::TxId> found = tx_id_at(node, point);
    if (!found.has_value()) {
        return net::HttpResponse::error(503, "unavailable", "the read point has no entry yet");
    }
    kv::TxId as_of = *found;
    auto tx = node.store().begin_at(as_of.seqno);
    if (!tx.ok()) {
        return net::HttpResponse::error(503, "unavailable", tx.status().message());
    }
    std::optional<Bytes> value = tx->get(map, log_key(*id));
    if (!value.has_value()) {
        return net::HttpResponse::error(404, "not_found",
                                        "no message with id " + std::to_string(*id));
    }
    net::HttpResponse r = net::HttpResponse::json(
        200, {{"id", *id}, {"msg", to_string(*value)}, {"transaction_id", as_of.to_string()}});
    r.headers.emplace_back(std::string(kTxIdHeader), as_of.to_string());
    return r;
}

Status register_pair(EndpointRegistry& registry, node::Node& node, const std::string& path,
                     std::string_view map, uint64_t example_id) {
    node::Node* n = &node;
    Endpoint post;
    post.method = "POST";
    post.path = path;
    post.policy = AuthPolicy::kUser;
    post.description = "store {\"id\": uint64, \"msg\": string} in " + std::string(map);
    post.handler = [n, map](const net::HttpRequest& r, const Caller&) {
        return post_message(*n, map, r);
    };
    post.example_body = json{{"id", example_id}, {"msg", "example message"}}.dump();
    COFFER_RETURN_IF_ERROR(registry.add(std::move(post)));

    Endpoint get;
    get.method = "GET";
    get.path = path;
    get.policy = AuthPolicy::kUser;
    get.description = "read message ?id=N from " + std::string(map) +
                      " (&consistency=committed (default) or linearizable)";
    get.handler = [n, map](const net::HttpRequest& r, const Caller&) {
        return get_message(*n, map, r);
    };
    get.example_query = "id=" + std::to_string(example_id) + "&consistency=committed";
    return registry.add(std::move(get));
}

}  // namespace

Status register_logging_app(EndpointRegistry& registry, node::Node& node) {
    constexpr uint64_t kExampleId = 18446744073709551615ULL;
    COFFER_RETURN_IF_ERROR(
        register_pair(registry, node, "/app/log/private", kLogPrivateMap, kExampleId));
    return register_pair(registry, node, "/app/log/public", kLogPublicMap, kExampleId);
}

}  // namespace coffer::apps
