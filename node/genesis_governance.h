// The governance maps of proposals and ballots (docs/formats/governance-maps.md) and what the
// genesis transaction writes to them: the default constitution.
//
// Map names and value shapes are a stable format: the endpoints of apps/gov_endpoints.cc
// write them, auditors read them from the public part of the ledger.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"
#include "kv/store.h"

namespace coffer::node {

// key: kConstitutionKey -> {"source": Lua text, "digest": hex SHA-256 of the source}
constexpr std::string_view kConstitutionMap = "public:coffer.gov.constitution";
constexpr std::string_view kConstitutionKey = "current";
// key: proposal id (hex of the proposal request's digest) ->
//      {"proposer", "actions", "state", "request", "created_at"[, "final_votes"][, "failure"]}
constexpr std::string_view kProposalsMap = "public:coffer.gov.proposals";
// key: "<proposal id>/<member fingerprint>" -> {"vote": bool, "request": hex}
constexpr std::string_view kBallotsMap = "public:coffer.gov.ballots";
// key: hex of a request digest (gov::request_digest) -> {"type", "proposal_id"}
constexpr std::string_view kRequestDigestsMap = "public:coffer.gov.request_digests";

// Proposal states. Only kProposalOpen changes afterwards.
constexpr std::string_view kProposalOpen = "open";
constexpr std::string_view kProposalAccepted = "accepted";
constexpr std::string_view kProposalWithdrawn = "withdrawn";
constexpr std::string_view kProposalRejected = "rejected";
constexpr std::string_view kProposalFailed = "failed";
constexpr std::string_view kProposalDropped = "dropped";

// Lower-case hex SHA-256 of a constitution's source: the "digest" of its record.
std::string constitution_digest(std::string_view source);

// Writes the default constitution (gov/default_constitution.lua) as the current one.
// Called once, inside the genesis transaction. Errors: those of Transaction::put.
Status write_genesis_governance(kv::Transaction& tx);

}  // namespace coffer::node
