#include "consensus/raft_log.h"

#include <algorithm>

namespace coffer::consensus {

RaftLog::RaftLog(Index base_index, Term base_term, Configuration base_config,
                 ConfigurationDecoder decoder)
    : base_index_(base_index),
      base_term_(base_term),
      base_config_(std::move(base_config)),
      decoder_(std::move(decoder)) {}

Term RaftLog::last_term() const {
    return entries_.empty() ? base_term_ : entries_.back().term;
}

std::optional<Term> RaftLog::term_at(Index index) const {
    if (index == base_index_) {
        return base_term_;
    }
    if (index < base_index_ || index > last_index()) {
        return std::nullopt;
    }
    return at(index).term;
}

const Entry& RaftLog::at(Index index) const {
    COFFER_CHECK(index > base_index_ && index <= last_index(), "log index out of range");
    const Entry& e = entries_[index - base_index_ - 1];
    COFFER_CHECK(e.index == index, "log entry index mismatch");
    return e;
}

LogPosition RaftLog::last_signed() const {
    if (signatures_.empty()) {
        return {base_term_, base_index_};
    }
    Index index = signatures_.back();
    return {at(index).term, index};
}

Index RaftLog::signature_at_or_before(Index limit) const {
    auto it = std::upper_bound(signatures_.begin(), signatures_.end(), limit);
    return it == signatures_.begin() ? 0 : *std::prev(it);
}

const Configuration& RaftLog::configuration() const {
    return configs_.empty() ? base_config_ : configs_.back().second;
}

Index RaftLog::configuration_index() const {
    return configs_.empty() ? base_index_ : configs_.back().first;
}

bool RaftLog::has_configuration_after(Index index) const {
    return !configs_.empty() && configs_.back().first > index;
}

const Configuration& RaftLog::configuration_at(Index index) const {
    const Configuration* config = &base_config_;
    for (const auto& [at_index, c] : configs_) {
        if (at_index > index) {
            break;
        }
        config = &c;
    }
    return *config;
}

void RaftLog::append(Entry entry) {
    COFFER_CHECK(entry.index == last_index() + 1, "log append out of order");
    COFFER_CHECK(entry.term >= last_term(), "log append with a term below the last entry's");
    if (entry.kind == EntryKind::kSignature) {
        signatures_.push_back(entry.index);
    }
    if (entry.kind == EntryKind::kConfiguration) {
        auto config = decode_configuration_with(decoder_, entry.payload);
        COFFER_CHECK(config.ok(), "configuration entry with a malformed payload");
        configs_.emplace_back(entry.index, std::move(config).value());
    }
    entries_.push_back(std::move(entry));
}

void RaftLog::truncate_after(Index last_kept) {
    COFFER_CHECK(last_kept >= base_index_ && last_kept <= last_index(), "truncate out of range");
    entries_.resize(last_kept - base_index_);
    while (!signatures_.empty() && signatures_.back() > last_kept) {
        signatures_.pop_back();
    }
    while (!configs_.empty() && configs_.back().first > last_kept) {
        configs_.pop_back();
    }
}

void RaftLog::compact_to(Index index) {
    COFFER_CHECK(index > base_index_ && index <= last_index(), "compaction out of range");
    base_config_ = configuration_at(index);
    base_term_ = at(index).term;
    entries_.erase(entries_.begin(), entries_.begin() + static_cast<long>(index - base_index_));
    base_index_ = index;
    std::erase_if(signatures_, [index](Index i) { return i <= index; });
    std::erase_if(configs_, [index](const auto& c) { return c.first <= index; });
}

void RaftLog::reset_to_snapshot(Index index, Term term, Configuration config) {
    COFFER_CHECK(index > base_index_, "snapshot not after the log base");
    if (term_at(index) == term && index < last_index()) {
        compact_to(index);
        base_config_ = std::move(config);
        return;
    }
    entries_.clear();
    signatures_.clear();
    configs_.clear();
    base_index_ = index;
    base_term_ = term;
    base_config_ = std::move(config);
}

}  // namespace coffer::consensus
