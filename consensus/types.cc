#include "consensus/types.h"

#include <algorithm>

namespace coffer::consensus {

std::string_view entry_kind_name(EntryKind kind) {
    switch (kind) {
        case EntryKind::kData:
            return "data";
        case EntryKind::kSignature:
            return "signature";
        case EntryKind::kConfiguration:
            return "configuration";
    }
    return "unknown";
}

bool Configuration::contains(std::string_view id) const {
    return std::binary_search(voters.begin(), voters.end(), id);
}

Result<Configuration> make_configuration(std::vector<NodeId> ids) {
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    if (ids.size() > kMaxConfigurationNodes) {
        return error(Errc::kInvalidArgument, "configuration has too many nodes");
    }
    for (const NodeId& id : ids) {
        if (id.empty() || id.size() > kMaxNodeIdBytes) {
            return error(Errc::kInvalidArgument, "configuration node id empty or too long");
        }
    }
    return Configuration{std::move(ids)};
}

Bytes encode_configuration(const Configuration& config) {
    COFFER_CHECK(config.voters.size() <= kMaxConfigurationNodes, "configuration too large");
    Bytes out;
    put_u16(out, static_cast<uint16_t>(config.voters.size()));
    for (const NodeId& id : config.voters) {
        COFFER_CHECK(!id.empty() && id.size() <= kMaxNodeIdBytes, "bad node id in config");
        put_u16(out, static_cast<uint16_t>(id.size()));
        put_bytes(out, as_bytes(id));
    }
    return out;
}

Result<Configuration> decode_configuration(ByteSpan data) {
    ByteReader reader(data);
    uint16_t count = 0;
    if (!reader.read_u16(count) || count > kMaxConfigurationNodes) {
        return error(Errc::kInvalidArgument, "configuration: bad node count");
    }
    Configuration config;
    for (uint16_t i = 0; i < count; ++i) {
        uint16_t length = 0;
        ByteSpan id;
        if (!reader.read_u16(length) || length == 0 || length > kMaxNodeIdBytes ||
            !reader.read_span(length, id)) {
            return error(Errc::kInvalidArgument, "configuration: bad node id");
        }
        NodeId node = to_string(id);
        if (!config.voters.empty() && node <= config.voters.back()) {
            return error(Errc::kInvalidArgument, "configuration: ids not sorted and unique");
        }
        config.voters.push_back(std::move(node));
    }
    if (!reader.at_end()) {
        return error(Errc::kInvalidArgument, "configuration: trailing bytes");
    }
    return config;
}

Result<Configuration> decode_configuration_with(const ConfigurationDecoder& decoder,
                                                ByteSpan payload) {
    if (!decoder) {
        return decode_configuration(payload);
    }
    COFFER_ASSIGN_OR_RETURN(Configuration config, decoder(payload));
    // The result must be a configuration make_configuration would produce (sorted, unique,
    // bounded), whatever the decoder did.
    COFFER_ASSIGN_OR_RETURN(Configuration normalized, make_configuration(config.voters));
    if (!(normalized == config)) {
        return error(Errc::kInvalidArgument, "configuration entry: voters not sorted and unique");
    }
    return normalized;
}

}  // namespace coffer::consensus
