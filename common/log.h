// The one logging facility of Coffer: spdlog with stable event names and key=value fields.
//
//   spdlog::info("ledger.opened dir={} chunks={} last_seqno={}", dir, n, seqno);
//
// INFO is for lifecycle events only (start, open, election won, snapshot taken, recovery
// finished), never per request. Keys, plaintext, key material and tokens are never logged:
// log ids, lengths and hashes instead.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace coffer {

// Sets the default logger's pattern and level ("trace" … "off"; unknown names mean "info").
// Call once at process start; not thread-safe against concurrent logging.
void init_logging(std::string_view level);

}  // namespace coffer
