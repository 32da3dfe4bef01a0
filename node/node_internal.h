// Pieces of node.cc that recovery.cc shares. Not part of the node's interface.
#pragma once

#include "common/result.h"
#include "node/config.h"
#include "node/sealing.h"

namespace coffer::node::internal {

// A fresh service identity, a node identity issued by it for the configured addresses, and
// a first ledger secret (version 1). Errors: those of make_service_identity and
// make_node_identity.
Result<NodeSecrets> make_fresh_secrets(const NodeConfig& config);

// OK when data_dir holds no ledger entries. Errors: kFailedPrecondition naming the folder
// (an interrupted first start or recovery left a ledger behind).
Status check_fresh_data_dir(const NodeConfig& config);

}  // namespace coffer::node::internal
