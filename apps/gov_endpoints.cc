// Governance endpoints: members propose, vote and withdraw with signed requests
// (gov/signed_request.h); the constitution (gov/constitution.h) validates, resolves and
// applies. Anyone may read proposals, the constitution and the members: all of it is in the
// public part of the ledger anyway. Behaviour and answers: docs/governance.md, "Proposals and
// ballots"; maps: docs/formats/governance-maps.md.
//
// Every write runs in one transaction: the signed request is checked (signer = TLS caller,
// this service, fresh, never seen), stored with its replay digest, and the proposal is
// resolved and, once accepted, applied. Apply writes go through TxGovernanceHost's buffer,
// copied into the transaction only if the whole apply succeeds, so a failed proposal commits
// its state ("failed", with the reason) and nothing of its actions.
#include <ctime>

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include "apps/apps.h"
#include "apps/governance_host.h"
#include "crypto/x509.h"
#include "gov/recovery.h"
#include "gov/signed_request.h"
#include "node/genesis_governance.h"
#include "node/governance_maps.h"

namespace coffer::apps {

namespace {

using nlohmann::json;

// How old a signed request may be when it arrives (its signed created_at), in seconds.
constexpr uint64_t kMaxRequestAgeS = 300;
// The most actions one proposal carries.
constexpr size_t kMaxProposalActions = 64;
// The most proposals GET /gov/proposals lists (newest state of each, in id order).
constexpr size_t kMaxListedProposals = 1000;
// The most bytes of proposal records GET /gov/proposals answers with.
constexpr size_t kMaxListedProposalBytes = size_t{8} << 20;
// The most ballots one proposal may have (one per member, members of the past included).
constexpr size_t kMaxBallotsPerProposal = 1024;
// The most members the service may have for governance to count them.
constexpr size_t kMaxMembers = 1024;

// One governance write being served: what the handler answers unless the commit fails.
struct GovCall {
    node::Node& node;
    const net::HttpRequest& request;
    const Caller& caller;
    // Set when the request is refused: the transaction is then aborted.
    std::optional<net::HttpResponse> refusal;
    json answer;

    // Records the refusal and returns an error that aborts the transaction.
    Status refuse(int status, std::string_view code, const std::string& message) {
        refusal = net::HttpResponse::error(status, code, message);
        return error(Errc::kInvalidArgument, message);
    }
};

// ---- reading the governance maps --------------------------------------------------------

Result<json> read_required(kv::Transaction& tx, std::string_view map, std::string_view key) {
    COFFER_ASSIGN_OR_RETURN(auto value, node::read_governance_value(tx, map, key));
    if (!value.has_value()) {
        return error(Errc::kNotFound, std::string(map) + " has no key " + std::string(key));
    }
    return std::move(*value);
}

// Calls fn(key, parsed value) for each key of `map` in [from, to), at most `limit` of them,
// until fn returns false.
// Errors: kCorrupt for a value that is not a JSON object; those of Transaction::range.
Status for_each_value(kv::Transaction& tx, std::string_view map, std::string_view from,
                      std::optional<std::string_view> to, size_t limit,
                      const std::function<bool(std::string, json)>& fn) {
    Status bad;
    std::optional<ByteSpan> end;
    if (to.has_value()) {
        end = as_bytes(*to);
    }
    COFFER_RETURN_IF_ERROR(tx.range(map, as_bytes(from), end, limit, [&](ByteSpan k, ByteSpan v) {
        auto parsed = net::parse_json(to_string(v), node::kMaxGovernanceJsonDepth);
        if (!parsed.ok() || !parsed->is_object()) {
            bad = error(Errc::kCorrupt, std::string(map) + " holds a value that is not an object");
            return false;
        }
        return fn(to_string(k), std::move(*parsed));
    }));
    return bad;
}

// {member fingerprint: vote} of the ballots on `id` whose member is still active: a removed
// member's ballot no longer counts. Errors: kResourceExhausted past kMaxBallotsPerProposal
// (never decide on part of the votes); those of for_each_value.
Result<json> current_votes(kv::Transaction& tx, const std::string& id, const json& members) {
    json votes = json::object();
    size_t seen = 0;
    std::string from = id + "/";
    std::string to = id + "0";  // '0' follows '/' in ASCII: the end of the "<id>/" prefix
    COFFER_RETURN_IF_ERROR(for_each_value(
        tx, node::kBallotsMap, from, to, kMaxBallotsPerProposal + 1, [&](std::string key, json v) {
            ++seen;
            std::string member = key.substr(from.size());
            if (members.contains(member) && v.contains("vote") && v["vote"].is_boolean()) {
                votes[member] = v["vote"];
            }
            return true;
        }));
    if (seen > kMaxBallotsPerProposal) {
        return error(Errc::kResourceExhausted, "proposal " + id + " has more than " +
                                                   std::to_string(kMaxBallotsPerProposal) +
                                                   " ballots");
    }
    return votes;
}

// {fingerprint: record} of the active members. Errors: kResourceExhausted past kMaxMembers
// (never count part of them); those of for_each_value.
Result<json> active_members(kv::Transaction& tx) {
    json members = json::object();
    size_t seen = 0;
    COFFER_RETURN_IF_ERROR(for_each_value(
        tx, node::kMembersMap, "", std::nullopt, kMaxMembers + 1, [&](std::string fp, json record) {
            ++seen;
            if (record.value("status", "") == node::kMemberStatusActive) {
                members[fp] = std::move(record);
            }
            return true;
        }));
    if (seen > kMaxMembers) {
        return error(Errc::kResourceExhausted,
                     "more than " + std::to_string(kMaxMembers) + " members");
    }
    return members;
}

// The constitution in force. A stored source that no longer loads (it passed check_source
// when it was set, but e.g. with other limits) refuses the request, it does not fail the node.
Result<gov::Constitution> current_constitution(GovCall& call, kv::Transaction& tx) {
    COFFER_ASSIGN_OR_RETURN(json record,
                            read_required(tx, node::kConstitutionMap, node::kConstitutionKey));
    if (!record.contains("source") || !record["source"].is_string()) {
        return error(Errc::kCorrupt, "the constitution record has no source");
    }
    auto loaded = gov::Constitution::load(record["source"].get<std::string>());
    if (!loaded.ok()) {
        return call.refuse(400, "constitution_error", "load: " + loaded.status().message());
    }
    return loaded;
}

// ---- checking signed requests -----------------------------------------------------------

// The refusal for an error of gov::verify_request.
Status refuse_verification(GovCall& call, const Status& s) {
    switch (s.code()) {
        case Errc::kCrypto:
            return call.refuse(401, "invalid_signature", s.message());
        case Errc::kPermissionDenied:
            return call.refuse(403, "wrong_signer", s.message());
        case Errc::kFailedPrecondition:
            return call.refuse(400, "stale_request", s.message());
        default:
            return call.refuse(400, "invalid_request", s.message());
    }
}

// Verifies the request body as a request of `type` signed by the calling member for this
// service, and refuses a digest seen before. Records the digest in the transaction.
Result<gov::VerifiedRequest> verify_member_request(GovCall& call, kv::Transaction& tx,
                                                   std::string_view type) {
    COFFER_ASSIGN_OR_RETURN(
        auto member, node::read_governance_value(tx, node::kMembersMap, call.caller.fingerprint));
    if (!member.has_value() || member->value("status", "") != node::kMemberStatusActive) {
        return call.refuse(403, "forbidden", "only active members may do this");
    }
    auto cert = crypto::Certificate::from_pem(member->value("cert", ""));
    if (!cert.ok()) {
        return error(Errc::kCorrupt, "the members map holds an unreadable certificate");
    }
    COFFER_ASSIGN_OR_RETURN(crypto::EcdsaPublicKey key, cert->ecdsa_public_key());

    gov::VerifyPolicy policy;
    COFFER_ASSIGN_OR_RETURN(policy.expected_service_fingerprint,
                            from_hex(call.node.service_cert().fingerprint_sha256_hex()));
    COFFER_ASSIGN_OR_RETURN(Bytes kid, from_hex(call.caller.fingerprint));
    policy.expected_kid = std::move(kid);
    policy.now = static_cast<uint64_t>(std::time(nullptr));
    policy.max_age = kMaxRequestAgeS;
    auto verified = gov::verify_request(as_bytes(call.request.body), key, policy);
    if (!verified.ok()) {
        return refuse_verification(call, verified.status());
    }
    if (verified->request.header.type != type) {
        return call.refuse(400, "invalid_request",
                           "this endpoint takes signed requests of type " + std::string(type) +
                               ", not " + verified->request.header.type);
    }

    std::string digest = to_hex(verified->digest);
    COFFER_ASSIGN_OR_RETURN(auto seen,
                            node::read_governance_value(tx, node::kRequestDigestsMap, digest));
    if (seen.has_value()) {
        return call.refuse(409, "replayed", "request replayed");
    }
    std::string proposal_id = verified->request.header.proposal_id.value_or(digest);
    COFFER_RETURN_IF_ERROR(
        node::write_governance_value(tx, node::kRequestDigestsMap, digest,
                                     {{"type", std::string(type)}, {"proposal_id", proposal_id}}));
    return verified;
}

// The payload as a JSON object. Refuses anything else.
Result<json> parse_payload(GovCall& call, const gov::VerifiedRequest& v) {
    auto payload = net::parse_json(to_string(v.request.payload), node::kMaxGovernanceJsonDepth);
    if (!payload.ok()) {
        return call.refuse(400, "invalid_request",
                           "payload is not valid JSON: " + payload.status().message());
    }
    if (!payload->is_object()) {
        return call.refuse(400, "invalid_request", "payload must be a JSON object");
    }
    return std::move(*payload);
}

// ---- deciding proposals -----------------------------------------------------------------

// The constitution's proposal document: {"actions": [...][, "description"]}.
json proposal_document(const json& record) {
    json doc = {{"actions", record.value("actions", json::array())}};
    if (record.contains("description")) {
        doc["description"] = record["description"];
    }
    return doc;
}

// Applies an accepted proposal: its writes reach the transaction only if every action
// succeeded. Sets the record's state to accepted or failed.
Status apply_accepted(kv::Transaction& tx, gov::Constitution& constitution, const std::string& id,
                      json& record, node::Node& node) {
    std::vector<ledger::LedgerSecret> secrets = node.ledger_secrets();
    TxGovernanceHost host(tx, id, node.replication_status().configuration.voters, &secrets);
    Status applied = constitution.apply(proposal_document(record), id, host);
    if (applied.ok()) {
        COFFER_RETURN_IF_ERROR(host.flush());
        record["state"] = std::string(node::kProposalAccepted);
        return Status();
    }
    host.discard();
    record["state"] = std::string(node::kProposalFailed);
    record["failure"] = applied.message();
    return Status();
}

// Asks the constitution whether the proposal is decided and closes it if so. Writes the
// record (with its new state) into the transaction.
Status settle(GovCall& call, kv::Transaction& tx, gov::Constitution& constitution,
              const std::string& id, json& record) {
    auto members = active_members(tx);
    auto votes = members.ok() ? current_votes(tx, id, *members) : members;
    if (!votes.ok()) {
        if (votes.status().code() != Errc::kResourceExhausted) {
            return votes.status();
        }
        return call.refuse(409, "too_many_voters", votes.status().message());
    }
    gov::Votes ballots;
    for (const auto& [member, vote] : votes->items()) {
        ballots[member] = vote.get<bool>();
    }
    TxGovernanceHost reader(tx, id);
    auto outcome = constitution.resolve(proposal_document(record), ballots, *members, reader);
    if (!outcome.ok()) {
        return call.refuse(400, "constitution_error", "resolve: " + outcome.status().message());
    }
    if (*outcome == gov::ProposalState::kAccepted) {
        record["final_votes"] = *votes;
        COFFER_RETURN_IF_ERROR(apply_accepted(tx, constitution, id, record, call.node));
    } else if (*outcome == gov::ProposalState::kRejected) {
        record["final_votes"] = *votes;
        record["state"] = std::string(node::kProposalRejected);
    }
    COFFER_RETURN_IF_ERROR(node::write_governance_value(tx, node::kProposalsMap, id, record));
    call.answer = {{"proposal_id", id}, {"state", record["state"]}};
    if (record.contains("failure")) {
        call.answer["failure"] = record["failure"];
    }
    return Status();
}

// Checks what the node relies on before the constitution sees the proposal (which checks
// the rest: unknown fields, each action).
Status check_actions_shape(GovCall& call, const json& payload) {
    auto actions = payload.find("actions");
    if (actions == payload.end() || !actions->is_array() || actions->empty()) {
        return call.refuse(400, "invalid_request", "payload needs a non-empty \"actions\" array");
    }
    if (actions->size() > kMaxProposalActions) {
        return call.refuse(
            400, "invalid_request",
            "a proposal has at most " + std::to_string(kMaxProposalActions) + " actions");
    }
    return Status();
}

Status submit_proposal(GovCall& call, kv::Transaction& tx) {
    COFFER_ASSIGN_OR_RETURN(gov::VerifiedRequest v, verify_member_request(call, tx, "proposal"));
    COFFER_ASSIGN_OR_RETURN(json payload, parse_payload(call, v));
    COFFER_RETURN_IF_ERROR(check_actions_shape(call, payload));

    COFFER_ASSIGN_OR_RETURN(gov::Constitution constitution, current_constitution(call, tx));
    Status valid = constitution.validate(payload);
    if (valid.code() == Errc::kInvalidArgument) {
        return call.refuse(400, "invalid_proposal", valid.message());
    }
    if (!valid.ok()) {
        return call.refuse(400, "constitution_error", "validate: " + valid.message());
    }

    std::string id = to_hex(v.digest);
    json record = {{"proposer", call.caller.fingerprint},
                   {"actions", payload["actions"]},
                   {"state", std::string(node::kProposalOpen)},
                   {"request", to_hex(as_bytes(call.request.body))},
                   {"created_at", v.request.header.created_at}};
    if (payload.contains("description")) {
        record["description"] = payload["description"];
    }
    return settle(call, tx, constitution, id, record);
}

// The proposal a ballot or withdrawal names, which must be open.
Result<json> open_proposal(GovCall& call, kv::Transaction& tx, const std::string& id) {
    COFFER_ASSIGN_OR_RETURN(auto record, node::read_governance_value(tx, node::kProposalsMap, id));
    if (!record.has_value()) {
        return call.refuse(404, "not_found", "no proposal " + id);
    }
    std::string state = record->value("state", "");
    if (state != node::kProposalOpen) {
        return call.refuse(409, "proposal_closed",
                           "proposal " + id + " is " + state + ", not open");
    }
    return std::move(*record);
}

Status submit_ballot(GovCall& call, kv::Transaction& tx) {
    COFFER_ASSIGN_OR_RETURN(gov::VerifiedRequest v, verify_member_request(call, tx, "ballot"));
    COFFER_ASSIGN_OR_RETURN(json payload, parse_payload(call, v));
    if (payload.size() != 1 || !payload.contains("vote") || !payload["vote"].is_boolean()) {
        return call.refuse(400, "invalid_request", "a ballot's payload is {\"vote\": true|false}");
    }
    std::string id = *v.request.header.proposal_id;
    COFFER_ASSIGN_OR_RETURN(json record, open_proposal(call, tx, id));

    std::string ballot_key = id + "/" + call.caller.fingerprint;
    COFFER_ASSIGN_OR_RETURN(auto previous,
                            node::read_governance_value(tx, node::kBallotsMap, ballot_key));
    if (previous.has_value()) {
        return call.refuse(
            409, "already_voted",
            "member " + call.caller.fingerprint + " already voted on proposal " + id);
    }
    COFFER_RETURN_IF_ERROR(node::write_governance_value(
        tx, node::kBallotsMap, ballot_key,
        {{"vote", payload["vote"]}, {"request", to_hex(as_bytes(call.request.body))}}));

    COFFER_ASSIGN_OR_RETURN(gov::Constitution constitution, current_constitution(call, tx));
    return settle(call, tx, constitution, id, record);
}

Status submit_withdrawal(GovCall& call, kv::Transaction& tx) {
    COFFER_ASSIGN_OR_RETURN(gov::VerifiedRequest v, verify_member_request(call, tx, "withdrawal"));
    std::string id = *v.request.header.proposal_id;
    COFFER_ASSIGN_OR_RETURN(json record, open_proposal(call, tx, id));
    if (record.value("proposer", "") != call.caller.fingerprint) {
        return call.refuse(403, "forbidden", "only the proposer may withdraw proposal " + id);
    }
    record["state"] = std::string(node::kProposalWithdrawn);
    COFFER_RETURN_IF_ERROR(node::write_governance_value(tx, node::kProposalsMap, id, record));
    call.answer = {{"proposal_id", id}, {"state", record["state"]}};
    return Status();
}

// ---- disaster recovery --------------------------------------------------------------

// The service record's status, "" when there is none.
Result<std::string> service_status(kv::Transaction& tx) {
    COFFER_ASSIGN_OR_RETURN(auto service,
                            node::read_governance_value(tx, node::kServiceMap, node::kServiceKey));
    return service.has_value() ? service->value("status", "") : std::string();
}

// The refusal for an error of Node::submit_recovery_share.
Status refuse_share(GovCall& call, const Status& s) {
    switch (s.code()) {
        case Errc::kConflict:
        case Errc::kFailedPrecondition:
            return call.refuse(409, "share_refused", s.message());
        default:
            return call.refuse(400, "share_refused", s.message());
    }
}

// A member's decrypted recovery share (docs/recovery.md, "Recovering a service"). The signed
// request is kept only as its replay digest, never as a body: it holds the share in clear.
// The ledger records who submitted, and when.
Status submit_recovery_share(GovCall& call, kv::Transaction& tx) {
    COFFER_ASSIGN_OR_RETURN(gov::VerifiedRequest v,
                            verify_member_request(call, tx, "recovery_share"));
    COFFER_ASSIGN_OR_RETURN(json payload, parse_payload(call, v));
    if (payload.size() != 1 || !payload.contains("share") || !payload["share"].is_string()) {
        return call.refuse(400, "invalid_request",
                           "a recovery_share payload is {\"share\": \"<base64 share>\"}");
    }
    COFFER_ASSIGN_OR_RETURN(std::string status, service_status(tx));
    if (status == node::kServiceStatusOpen || status == node::kServiceStatusOpening) {
        return call.refuse(
            409, "not_waiting_for_shares",
            "the service is \"" + status + "\": no recovery is in progress, so no share is needed");
    }
    if (status != node::kServiceStatusWaitingForShares) {
        return call.refuse(409, "not_waiting_for_shares",
                           "the service is \"" + status +
                               "\": shares are taken only while it waits for recovery shares, "
                               "after the members accepted the recovered state with a "
                               "transition_service_to_open proposal");
    }
    auto share = gov::recovery_share_from_text(payload["share"].get<std::string>());
    if (!share.ok()) {
        return call.refuse(400, "share_refused", share.status().message());
    }
    auto progress = call.node.submit_recovery_share(call.caller.fingerprint, *share);
    OPENSSL_cleanse(share->data(), share->size());
    if (!progress.ok()) {
        return refuse_share(call, progress.status());
    }
    COFFER_RETURN_IF_ERROR(
        node::write_governance_value(tx, node::kRecoverySubmissionsMap, call.caller.fingerprint,
                                     {{"created_at", v.request.header.created_at}}));
    call.answer = {{"received", progress->received},
                   {"threshold", progress->threshold},
                   {"secrets_recovered", progress->secrets_recovered}};
    std::string counted =
        progress->already_counted ? "this member's share was already counted; " : "";
    call.answer["message"] =
        progress->secrets_recovered
            ? "the ledger secrets are recovered: the node replays the private part of the "
              "ledger and opens the service (watch GET /gov/recovery)"
            : counted + std::to_string(progress->received) + " of " +
                  std::to_string(progress->threshold) + " shares received";
    return Status();
}

using GovWrite = Status (*)(GovCall&, kv::Transaction&);

net::HttpResponse serve_write(node::Node& node, const net::HttpRequest& request,
                              const Caller& caller, GovWrite write) {
    GovCall call{node, request, caller, std::nullopt, json()};
    auto committed = node.commit([&](kv::Transaction& tx) {
        call.refusal.reset();
        return write(call, tx);
    });
    if (call.refusal.has_value()) {
        return std::move(*call.refusal);
    }
    if (!committed.ok()) {
        if (committed.status().code() == Errc::kCorrupt) {
            spdlog::error("gov.corrupt_state error={}", committed.status().message());
        }
        return commit_error_response(committed.status());
    }
    std::string tx_id = committed->id.to_string();
    std::string state = call.answer.value("state", "");
    if (state != node::kProposalOpen) {
        // Logged once committed: a body may run several times, and its commit may fail.
        spdlog::info("gov.proposal_closed proposal_id={} state={} tx_id={}",
                     call.answer.value("proposal_id", ""), state, tx_id);
    }
    call.answer["transaction_id"] = tx_id;
    net::HttpResponse r = net::HttpResponse::json(200, call.answer);
    r.headers.emplace_back(std::string(kTxIdHeader), tx_id);
    return r;
}

// ---- reads ------------------------------------------------------------------------------

// A transaction on this node's committed state: nothing Pending is ever served.
Result<kv::Transaction> committed_view(node::Node& node) {
    return node.store().begin_at(node.store().committed());
}

net::HttpResponse read_error(const Status& s) {
    if (s.code() == Errc::kNotFound) {
        return net::HttpResponse::error(404, "not_found", s.message());
    }
    net::HttpResponse r = net::HttpResponse::error(503, "unavailable", s.message());
    r.headers.emplace_back("Retry-After", "1");
    return r;
}

net::HttpResponse list_proposals(node::Node& node) {
    auto tx = committed_view(node);
    if (!tx.ok()) {
        return read_error(tx.status());
    }
    json list = json::array();
    size_t bytes = 0;
    bool truncated = false;
    Status s = for_each_value(
        *tx, node::kProposalsMap, "", std::nullopt, 0, [&](std::string id, json record) {
            record.erase("request");
            record["proposal_id"] = std::move(id);
            bytes += record.dump().size();
            if (list.size() == kMaxListedProposals || bytes > kMaxListedProposalBytes) {
                truncated = true;
                return false;
            }
            list.push_back(std::move(record));
            return true;
        });
    if (!s.ok()) {
        return read_error(s);
    }
    return net::HttpResponse::json(200, {{"proposals", list}, {"truncated", truncated}});
}

net::HttpResponse show_proposal(node::Node& node, const net::HttpRequest& request) {
    auto id = request.query.find("id");
    if (id == request.query.end() || id->second.empty() ||
        id->second.size() > gov::kMaxProposalIdChars) {
        return net::HttpResponse::error(400, "invalid_argument",
                                        "query parameter id (a proposal id) is required");
    }
    auto tx = committed_view(node);
    if (!tx.ok()) {
        return read_error(tx.status());
    }
    auto record = read_required(*tx, node::kProposalsMap, id->second);
    if (!record.ok()) {
        return read_error(record.status().code() == Errc::kNotFound
                              ? error(Errc::kNotFound, "no proposal " + id->second)
                              : record.status());
    }
    json ballots = json::object();
    std::string from = id->second + "/";
    Status s = for_each_value(*tx, node::kBallotsMap, from, id->second + "0",
                              kMaxBallotsPerProposal, [&](std::string key, json v) {
                                  ballots[key.substr(from.size())] = v.value("vote", false);
                                  return true;
                              });
    if (!s.ok()) {
        return read_error(s);
    }
    (*record)["proposal_id"] = id->second;
    (*record)["ballots"] = std::move(ballots);
    return net::HttpResponse::json(200, *record);
}

net::HttpResponse show_map_value(node::Node& node, std::string_view map, std::string_view key) {
    auto tx = committed_view(node);
    if (!tx.ok()) {
        return read_error(tx.status());
    }
    auto record = read_required(*tx, map, key);
    if (!record.ok()) {
        return read_error(record.status());
    }
    return net::HttpResponse::json(200, *record);
}

// One member's encrypted recovery share and the recovery value it belongs to (both public:
// only the member's X25519 key opens the share).
net::HttpResponse show_recovery_share(node::Node& node, const net::HttpRequest& request) {
    auto member = request.query.find("member");
    if (member == request.query.end() || member->second.size() != gov::kMemberFingerprintChars) {
        return net::HttpResponse::error(400, "invalid_argument",
                                        "member=FINGERPRINT (64 hex characters) is required");
    }
    auto tx = committed_view(node);
    if (!tx.ok()) {
        return read_error(tx.status());
    }
    auto recovery = read_required(*tx, gov::kRecoveryMap, gov::kRecoveryCurrentKey);
    if (!recovery.ok()) {
        return read_error(recovery.status().code() == Errc::kNotFound
                              ? error(Errc::kNotFound,
                                      "no recovery shares were issued yet (a "
                                      "set_recovery_threshold proposal issues them)")
                              : recovery.status());
    }
    auto share = read_required(*tx, gov::kRecoverySharesMap, member->second);
    if (!share.ok()) {
        return read_error(
            share.status().code() == Errc::kNotFound
                ? error(Errc::kNotFound, "no recovery share for " + member->second +
                                             ": it was not an active member with an encryption "
                                             "key when the shares were last issued")
                : share.status());
    }
    return net::HttpResponse::json(200, {{"recovery", *recovery}, {"share", *share}});
}

// Where a recovery stands: the service record's recovery facts and the node's share count.
net::HttpResponse show_recovery(node::Node& node) {
    auto tx = committed_view(node);
    if (!tx.ok()) {
        return read_error(tx.status());
    }
    auto service = read_required(*tx, node::kServiceMap, node::kServiceKey);
    if (!service.ok()) {
        return read_error(service.status());
    }
    node::RecoveryProgress p = node.recovery_progress();
    if (p.threshold == 0) {
        // Before the first share the node has not read k yet: the recovery value has it.
        auto recovery =
            node::read_governance_value(*tx, gov::kRecoveryMap, gov::kRecoveryCurrentKey);
        if (recovery.ok() && recovery->has_value()) {
            auto info = gov::parse_recovery_value(**recovery);
            if (info.ok()) {
                p.threshold = info->threshold;
            }
        }
    }
    json answer = {
        {"service_status", service->value("status", "")},
        {"service_fingerprint", service->value("fingerprint", "")},
        {"previous_fingerprints", service->value("previous_fingerprints", json::array())},
        {"recovered_seqno", service->value("recovered_seqno", json(nullptr))},
        {"recovering_node", p.recovering},
        {"received", p.received},
        {"threshold", p.threshold},
        {"secrets_recovered", p.secrets_recovered},
        {"submitted_by", p.submitted_by}};
    if (service->contains("previous_cert")) {
        answer["previous_cert"] = (*service)["previous_cert"];
        answer["previous_endorsement"] = service->value("previous_endorsement", "");
    }
    return net::HttpResponse::json(200, answer);
}

net::HttpResponse list_members(node::Node& node) {
    auto tx = committed_view(node);
    if (!tx.ok()) {
        return read_error(tx.status());
    }
    json members = json::object();
    Status s = for_each_value(*tx, node::kMembersMap, "", std::nullopt, kMaxMembers,
                              [&](std::string fp, json record) {
                                  members[fp] = std::move(record);
                                  return true;
                              });
    if (!s.ok()) {
        return read_error(s);
    }
    return net::HttpResponse::json(200, {{"members", members}});
}

Status add_write(EndpointRegistry& registry, node::Node& node, std::string path,
                 std::string description, GovWrite write) {
    node::Node* n = &node;
    Endpoint e;
    e.method = "POST";
    e.path = std::move(path);
    e.policy = AuthPolicy::kMember;
    e.description = std::move(description);
    e.handler = [n, write](const net::HttpRequest& r, const Caller& c) {
        return serve_write(*n, r, c, write);
    };
    return registry.add(std::move(e));
}

Status add_read(EndpointRegistry& registry, std::string path, std::string description,
                EndpointHandler handler, std::string example_query = "") {
    Endpoint e;
    e.method = "GET";
    e.path = std::move(path);
    e.policy = AuthPolicy::kAnonymous;
    e.description = std::move(description);
    e.handler = std::move(handler);
    e.example_query = std::move(example_query);
    return registry.add(std::move(e));
}

}  // namespace

Status finish_recovery(node::Node& node) {
    auto committed = node.commit([&](kv::Transaction& tx) -> Status {
        COFFER_ASSIGN_OR_RETURN(json service,
                                read_required(tx, node::kServiceMap, node::kServiceKey));
        if (service.value("status", "") != node::kServiceStatusWaitingForShares) {
            return error(Errc::kFailedPrecondition, "the recovered service is \"" +
                                                        service.value("status", "") +
                                                        "\", not waiting for recovery shares");
        }
        // Open first: share issuance is refused while the service recovers.
        service["status"] = std::string(node::kServiceStatusOpen);
        COFFER_RETURN_IF_ERROR(
            node::write_governance_value(tx, node::kServiceMap, node::kServiceKey, service));
        // The recovered secrets and the fresh one go to the members in a new share set: the
        // shares just used stop counting.
        std::vector<ledger::LedgerSecret> secrets = node.ledger_secrets();
        TxGovernanceHost host(tx, "recovery", node.replication_status().configuration.voters,
                              &secrets);
        COFFER_RETURN_IF_ERROR(host.effect(kEffectReissueRecoveryShares, json::object()));
        return host.flush();
    });
    COFFER_RETURN_IF_ERROR(committed.status());
    COFFER_RETURN_IF_ERROR(node.wait_committed(committed->id.seqno, node::kStartupTimeoutMs));
    COFFER_RETURN_IF_ERROR(node.complete_recovery());
    spdlog::info("gov.service_recovered tx_id={}", committed->id.to_string());
    return Status();
}

Status register_governance_endpoints(EndpointRegistry& registry, node::Node& node) {
    node::Node* n = &node;
    COFFER_RETURN_IF_ERROR(add_write(registry, node, "/gov/proposals",
                                     "submit a proposal: COSE_Sign1 of type proposal, payload "
                                     "{\"actions\": [...]}",
                                     submit_proposal));
    COFFER_RETURN_IF_ERROR(add_write(registry, node, "/gov/ballots",
                                     "vote: COSE_Sign1 of type ballot, payload {\"vote\": bool}",
                                     submit_ballot));
    COFFER_RETURN_IF_ERROR(add_write(registry, node, "/gov/withdrawals",
                                     "withdraw an open proposal: COSE_Sign1 of type withdrawal "
                                     "(proposer only)",
                                     submit_withdrawal));
    COFFER_RETURN_IF_ERROR(
        add_read(registry, "/gov/proposals", "list proposals (committed)",
                 [n](const net::HttpRequest&, const Caller&) { return list_proposals(*n); }));
    COFFER_RETURN_IF_ERROR(
        add_read(registry, "/gov/proposal", "one proposal ?id=ID with its ballots (committed)",
                 [n](const net::HttpRequest& r, const Caller&) { return show_proposal(*n, r); }));
    COFFER_RETURN_IF_ERROR(
        add_read(registry, "/gov/constitution", "the current constitution {\"source\", \"digest\"}",
                 [n](const net::HttpRequest&, const Caller&) {
                     return show_map_value(*n, node::kConstitutionMap, node::kConstitutionKey);
                 }));
    COFFER_RETURN_IF_ERROR(add_write(registry, node, "/gov/recovery_shares",
                                     "submit a decrypted recovery share while the service waits "
                                     "for them: COSE_Sign1 of type recovery_share, payload "
                                     "{\"share\": base64}",
                                     submit_recovery_share));
    COFFER_RETURN_IF_ERROR(
        add_read(registry, "/gov/recovery",
                 "disaster recovery: service status, previous identities, shares received",
                 [n](const net::HttpRequest&, const Caller&) { return show_recovery(*n); }));
    COFFER_RETURN_IF_ERROR(add_read(
        registry, "/gov/recovery_share",
        "?member=FP: that member's encrypted recovery share and the recovery value (committed)",
        [n](const net::HttpRequest& r, const Caller&) { return show_recovery_share(*n, r); }));
    return add_read(registry, "/gov/members", "the members map (committed)",
                    [n](const net::HttpRequest&, const Caller&) { return list_members(*n); });
}

}  // namespace coffer::apps
