// Assertions in two tiers.
//
// COFFER_CHECK stays on in every build, release included. Use it for anything whose
// violation could corrupt replicated or persisted state (a nonce reused under one key, a
// seqno going backwards, a torn invariant of the Merkle tree). It logs and aborts.
//
// COFFER_DCHECK is for costly checks that only debug and sanitizer builds run
// (COFFER_EXPENSIVE_CHECKS defined).
//
// Neither is for input from a client, a peer or a file: such input gets a Status error.
#pragma once

#include <string_view>

namespace coffer::detail {
[[noreturn]] void check_failed(const char* expr, std::string_view message, const char* file,
                               int line);
}  // namespace coffer::detail

#define COFFER_CHECK(cond, message)                                               \
    do {                                                                          \
        if (!(cond)) [[unlikely]] {                                               \
            ::coffer::detail::check_failed(#cond, (message), __FILE__, __LINE__); \
        }                                                                         \
    } while (0)

#ifdef COFFER_EXPENSIVE_CHECKS
#define COFFER_DCHECK(cond, message) COFFER_CHECK(cond, message)
#else
#define COFFER_DCHECK(cond, message) \
    do {                             \
        (void)sizeof(cond);          \
    } while (0)
#endif
