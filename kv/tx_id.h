// Transaction ids: "view.seqno", the Raft term and the ledger position of an entry.
//
// Every ledger entry (transactions and signature entries alike) takes the next seqno; under
// consensus the seqno is the Raft log index and the view is the Raft term.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace coffer::kv {

using Seqno = uint64_t;
using View = uint64_t;

struct TxId {
    View view = 0;
    Seqno seqno = 0;

    // "view.seqno" in decimal, e.g. "2.15".
    std::string to_string() const;

    // Parses the form to_string() produces, strictly: one or more decimal digits, '.', one or
    // more decimal digits; no sign, space, leading zero (other than "0" itself) or value
    // above 2^64-1. Anything else is kInvalidArgument.
    static Result<TxId> parse(std::string_view text);

    // Views first, then seqnos: the order of entries in one ledger.
    auto operator<=>(const TxId&) const = default;
};

}  // namespace coffer::kv
