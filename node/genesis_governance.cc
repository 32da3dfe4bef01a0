#include "node/genesis_governance.h"

#include "crypto/sha256.h"
#include "gov/constitution.h"
#include "node/governance_maps.h"

namespace coffer::node {

std::string constitution_digest(std::string_view source) {
    crypto::Sha256Digest digest = crypto::sha256(as_bytes(source));
    return to_hex(digest);
}

Status write_genesis_governance(kv::Transaction& tx) {
    std::string_view source = gov::default_constitution_source();
    nlohmann::json record = {{"source", std::string(source)},
                             {"digest", constitution_digest(source)}};
    return write_governance_value(tx, kConstitutionMap, kConstitutionKey, record);
}

}  // namespace coffer::node
