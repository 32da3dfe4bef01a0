#include "common/log.h"

#include <string>

namespace coffer {

void init_logging(std::string_view level) {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%l%$ %v", spdlog::pattern_time_type::utc);
    auto parsed = spdlog::level::from_str(std::string(level));
    if (parsed == spdlog::level::off && level != "off") {
        parsed = spdlog::level::info;
    }
    spdlog::set_level(parsed);
}

}  // namespace coffer
