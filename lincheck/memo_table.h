// The memo of the register search (internal to lincheck): which configurations
// (set of linearized operations, register value) were already explored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_set>
#include <vector>

#include "lincheck/register_search.h"

namespace coffer::lincheck::detail {

// A set of operation numbers with an incrementally maintained hash and a compact canonical
// encoding. Operations are numbered in invocation order, and the search linearizes them
// roughly in that order, so the set is almost always "every operation below some number,
// plus a few above it": the encoding keeps only the words between the first word that is
// not full and the last word that is not empty.
class LinearizedSet {
  public:
    explicit LinearizedSet(size_t size);

    // Adds `bit` if absent, removes it if present.
    void flip(uint32_t bit);

    // Zobrist hash: a function of the set's contents only.
    uint64_t hash() const { return hash_; }

    // Appends the encoding to `out`: the index of the first word that is not full, then the
    // words from there to the last nonzero word. Equal sets give equal encodings.
    void append_encoding(std::vector<uint64_t>& out) const;

  private:
    std::vector<uint64_t> words_;
    size_t low_ = 0;   // first word that is not all ones; words_.size() if none
    size_t high_ = 0;  // one past the last nonzero word; 0 if none
    uint64_t hash_ = 0;
};

// The explored configurations. A configuration fully determines the rest of the search (the
// events still in the list are those of the operations outside the set), so meeting one
// again can only repeat a failure (Lowe, "Testing for linearizability", 2017, section 3).
// Memory grows with every insert; bytes() reports it so that
// the search can stop at its bound.
class MemoTable {
  public:
    MemoTable();
    MemoTable(const MemoTable&) = delete;
    MemoTable& operator=(const MemoTable&) = delete;

    // Adds the configuration (set, state); false when it was already present.
    bool insert(const LinearizedSet& set, ValueId state);

    // An estimate of the heap memory held, allocator overhead included.
    size_t bytes() const;

  private:
    struct Hash {
        const MemoTable* table;
        size_t operator()(size_t index) const { return table->hashes_[index]; }
    };
    struct Equal {
        const MemoTable* table;
        bool operator()(size_t a, size_t b) const { return table->equal(a, b); }
    };

    bool equal(size_t a, size_t b) const;

    // Entry i: encoded set in arena_[starts_[i], starts_[i + 1]) (the last one ends at
    // arena_.size()), register value states_[i], hash hashes_[i].
    std::vector<uint64_t> arena_;
    std::vector<size_t> starts_;
    std::vector<ValueId> states_;
    std::vector<uint64_t> hashes_;
    std::unordered_set<size_t, Hash, Equal> set_;
};

}  // namespace coffer::lincheck::detail
