#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <string>

namespace coffer {

void init_logging(std::string_view level) {
    // Logs go to stderr so that a command's own output on stdout stays clean for scripts.
    auto logger = spdlog::get("coffer");
    if (!logger) {
        logger = spdlog::stderr_color_mt("coffer");
    }
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%l%$ %v", spdlog::pattern_time_type::utc);
    auto parsed = spdlog::level::from_str(std::string(level));
    if (parsed == spdlog::level::off && level != "off") {
        parsed = spdlog::level::info;
    }
    spdlog::set_level(parsed);
}

}  // namespace coffer
