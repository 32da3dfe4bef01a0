// The built-in endpoints of a node and the HTTP handler that serves a registry.
// Every endpoint, its policy, parameters and answers: docs/endpoints.md.
//
// The registration functions keep a reference to the Node: it must outlive the registry
// and every handler call. Handlers are thread-safe (they go through the Node's store and
// ledger, which are).
#pragma once

#include <memory>
#include <string_view>

#include "apps/registry.h"
#include "common/result.h"
#include "kv/tx_id.h"
#include "net/server.h"
#include "node/node.h"

namespace coffer::apps {

// The maps of the logging app: the private one is encrypted in the ledger, the public one
// is written in clear. Keys are the message id as 8 bytes big-endian (so that keys sort by
// id); values are the message bytes.
constexpr std::string_view kLogPrivateMap = "logging.private";
constexpr std::string_view kLogPublicMap = "public:logging.public";
// The response header that carries the transaction id of a write.
constexpr std::string_view kTxIdHeader = "x-coffer-tx-id";
// Request header: hold a write's answer until its transaction leaves Pending (at most this
// many ms, capped by node::kMaxClientWaitMs); the answer then carries kTxStatusHeader.
constexpr std::string_view kWaitHeader = "x-coffer-wait-ms";
constexpr std::string_view kTxStatusHeader = "x-coffer-tx-status";
// Query parameter `consistency` of reads: "committed" (the default: this node's committed
// state) or "linearizable" (the leader confirms it still leads before reading). Nothing
// serves Pending writes: they may still be rolled back.
constexpr std::string_view kLinearizable = "linearizable";
constexpr std::string_view kCommitted = "committed";
// How long a linearizable read waits for its read index.
constexpr uint64_t kLinearizableReadTimeoutMs = 5000;
// The largest message the logging app stores (the HTTP body limit applies first).
constexpr size_t kMaxLogMessageBytes = 1 << 20;
// Seconds a client is asked to wait before asking again for a pending receipt.
constexpr int kReceiptRetryAfterS = 1;

// GET /node/state, /node/network, /node/commit, /node/tx, /node/quote, /node/metrics and
// /node/endpoints (all anonymous). /node/endpoints lists `registry` itself, which must
// outlive the node's server.
Status register_node_endpoints(EndpointRegistry& registry, node::Node& node);

// POST and GET /app/log/private and /app/log/public (users only).
Status register_logging_app(EndpointRegistry& registry, node::Node& node);

// GET /app/receipt (users and members).
Status register_receipt_endpoint(EndpointRegistry& registry, node::Node& node);

// POST /gov/proposals, /gov/ballots, /gov/withdrawals (members, signed requests) and GET
// /gov/proposals, /gov/proposal, /gov/constitution, /gov/members (anonymous):
// docs/governance.md, "Proposals and ballots".
Status register_governance_endpoints(EndpointRegistry& registry, node::Node& node);

// The end of a disaster recovery, on the node that open_recovered returned: opens the
// service and re-issues the recovery shares over every ledger secret, in one transaction,
// then seals and writes node.json (Node::complete_recovery). Errors: kFailedPrecondition when
// the service is not waiting for shares; commit and storage errors.
Status finish_recovery(node::Node& node);

// The clean-room service under /app/cleanroom/ (docs/cleanroom.md). Keeps open upload
// sessions in memory for as long as the registry lives.
Status register_cleanroom_app(EndpointRegistry& registry, node::Node& node);

// A registry with all of the above, in that order.
Result<std::shared_ptr<EndpointRegistry>> make_default_registry(node::Node& node);

// The server handler: resolves the caller, dispatches through `registry` and counts the
// response in the node's metrics.
net::Handler make_http_handler(node::Node& node, std::shared_ptr<const EndpointRegistry> registry);

// The id of the entry at `seqno` (its view found through Ledger::tx_status), or nullopt
// when there is none. {0, 0} for seqno 0.
std::optional<kv::TxId> tx_id_at(node::Node& node, kv::Seqno seqno);

// The JSON error answer for a failed endpoint commit: 507 for kNoSpace, 503 for a failed or
// stopping node and for kConflict after every retry, 400 for kInvalidArgument, 500
// otherwise.
net::HttpResponse commit_error_response(const Status& status);

// Parses a wait in milliseconds (the wait_ms query parameter, the x-coffer-wait-ms header):
// a decimal integer from 0 to node::kMaxClientWaitMs. Errors: kInvalidArgument saying so.
Result<uint64_t> parse_wait_ms(std::string_view text);

}  // namespace coffer::apps
