// JSON form of a History, so that a failing test can dump what its clients saw and the
// checker (or lincheck_tool) can judge it again later. Format: docs/linearizability.md.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"
#include "lincheck/history.h"

namespace coffer::lincheck {

inline constexpr std::string_view kHistoryFormatName = "coffer-lincheck-history";
inline constexpr int kHistoryFormatVersion = 1;

// Largest history file read_history_file accepts.
inline constexpr size_t kMaxHistoryFileBytes = size_t{1} << 30;

// The history as JSON text, one operation per line. Errors: kInvalidArgument when a key or
// value is not valid UTF-8 (JSON strings cannot carry arbitrary bytes; hex-encode binary
// keys and values before recording them).
Result<std::string> history_to_json(const History& history);

// Parses JSON text produced by history_to_json (or written by hand). Strict: unknown fields,
// wrong types, a missing field, an id that is not the operation's index, an unsupported
// format or version, and anything History::add refuses, are errors. Errors:
// kInvalidArgument (malformed text or field, with the operation index), kUnsupported (other
// format version), kResourceExhausted (more than kMaxHistoryOps operations).
Result<History> history_from_json(std::string_view text);

// Writes history_to_json(history) to `path`, replacing the file. Errors: those of
// history_to_json, kIo when the file cannot be written.
Status write_history_file(const History& history, const std::string& path);

// Reads and parses a file written by write_history_file. Errors: kIo when it cannot be
// read, kResourceExhausted past kMaxHistoryFileBytes, those of history_from_json.
Result<History> read_history_file(const std::string& path);

}  // namespace coffer::lincheck
