// The in-memory view of one node's Raft log: a snapshot base followed by entries.
//
// RaftLog mirrors what the node has asked its storage to hold (durable or not). It keeps
// the indices of signature entries and of configuration entries so that the commit rule
// and the active configuration are cheap to find. It does no I/O.
//
// Thread-safety: none; owned by one RaftNode.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "consensus/types.h"

namespace coffer::consensus {

// A position in the log: (term, index), ordered by term then index (the order in which
// elections compare candidates).
struct LogPosition {
    Term term = 0;
    Index index = 0;
    auto operator<=>(const LogPosition&) const = default;
};

class RaftLog {
  public:
    // An empty log whose base (the snapshot, or 0 for none) is (base_term, base_index) and
    // whose configuration at the base is `base_config`. `decoder` reads configuration
    // entries (types.h; empty: decode_configuration).
    RaftLog(Index base_index, Term base_term, Configuration base_config,
            ConfigurationDecoder decoder = {});

    Index base_index() const { return base_index_; }
    Term base_term() const { return base_term_; }
    Index last_index() const { return base_index_ + entries_.size(); }
    Term last_term() const;

    // The term at `index`, for base_index() <= index <= last_index(); nullopt otherwise.
    std::optional<Term> term_at(Index index) const;
    // The entry at `index`; needs base_index() < index <= last_index().
    const Entry& at(Index index) const;

    // The last signature entry (or the base, which is always a signed position).
    LogPosition last_signed() const;
    // The highest signature index <= `limit`, or 0 if none after the base.
    Index signature_at_or_before(Index limit) const;

    // The configuration in force after the last entry (Raft single-server changes take
    // effect when appended) and the index of its entry (base_index() for the base config).
    const Configuration& configuration() const;
    Index configuration_index() const;
    // True when a configuration entry lies after `index`.
    bool has_configuration_after(Index index) const;
    // The configuration in force at `index` (base_index() <= index <= last_index()).
    const Configuration& configuration_at(Index index) const;

    // Appends `entry`, whose index must be last_index() + 1 and whose term must not be
    // below last_term(). A configuration entry must carry a valid encoded configuration.
    void append(Entry entry);
    // Drops every entry after `last_kept` (base_index() <= last_kept <= last_index()).
    void truncate_after(Index last_kept);
    // Drops entries up to `index` (base_index() < index <= last_index()): they are now
    // covered by a snapshot at `index`.
    void compact_to(Index index);
    // Makes the snapshot (index, term, config) the base. Entries after it are kept only if
    // the log holds `index` with that very term (Raft §7); otherwise the log is emptied.
    void reset_to_snapshot(Index index, Term term, Configuration config);

  private:
    Index base_index_;
    Term base_term_;
    Configuration base_config_;
    ConfigurationDecoder decoder_;
    std::deque<Entry> entries_;
    std::vector<Index> signatures_;                         // ascending, > base
    std::vector<std::pair<Index, Configuration>> configs_;  // ascending, > base
};

}  // namespace coffer::consensus
