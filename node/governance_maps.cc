#include "node/governance_maps.h"

#include "net/http.h"

namespace coffer::node {

Result<std::optional<nlohmann::json>> read_governance_value(kv::Transaction& tx,
                                                            std::string_view map,
                                                            std::string_view key) {
    std::optional<Bytes> raw = tx.get(map, as_bytes(key));
    if (!raw.has_value()) {
        return std::optional<nlohmann::json>();
    }
    auto parsed = net::parse_json(to_string(*raw), kMaxGovernanceJsonDepth);
    if (!parsed.ok() || !parsed->is_object()) {
        return error(Errc::kCorrupt,
                     std::string(map) + " value for " + std::string(key) + " is not a JSON object");
    }
    return std::optional<nlohmann::json>(std::move(parsed).value());
}

Status write_governance_value(kv::Transaction& tx, std::string_view map, std::string_view key,
                              const nlohmann::json& value) {
    std::string text = value.dump();
    return tx.put(map, as_bytes(key), as_bytes(text));
}

}  // namespace coffer::node
