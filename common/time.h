// Wall-clock time formatting shared by the node's endpoints and the CLI.
#pragma once

#include <cstdint>
#include <string>

namespace coffer {

// "2026-12-04T18:05:17Z" (RFC 3339, UTC, whole seconds). Thread-safe.
std::string format_utc_time(int64_t unix_seconds);

}  // namespace coffer
