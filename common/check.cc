#include "common/check.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>

namespace coffer::detail {

void check_failed(const char* expr, std::string_view message, const char* file, int line) {
    // Logged through spdlog (so it lands in the node's log) and also written to stderr
    // directly, in case logging is not set up yet.
    spdlog::critical("invariant.broken expr=\"{}\" at={}:{} message=\"{}\"", expr, file, line,
                     message);
    std::fprintf(stderr, "coffer: invariant broken: %s at %s:%d: %.*s\n", expr, file, line,
                 static_cast<int>(message.size()), message.data());
    std::abort();
}

}  // namespace coffer::detail
