#include "lincheck/memo_table.h"

#include <algorithm>

#include "common/check.h"

namespace coffer::lincheck::detail {

namespace {

constexpr uint64_t kFullWord = ~uint64_t{0};

// Keeps the hash of a register value apart from the hash of an operation number.
constexpr uint64_t kStateSalt = uint64_t{1} << 63;

// Buckets the memo starts with; it grows by rehashing.
constexpr size_t kInitialMemoBuckets = 1024;

uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

}  // namespace

LinearizedSet::LinearizedSet(size_t size) : words_((size + 63) / 64, 0) {}

void LinearizedSet::flip(uint32_t bit) {
    size_t w = bit / 64;
    COFFER_DCHECK(w < words_.size(), "bit outside the set");
    words_[w] ^= uint64_t{1} << (bit % 64);
    hash_ ^= splitmix64(bit);

    bool now_set = (words_[w] >> (bit % 64)) & 1;
    if (now_set) {
        high_ = std::max(high_, w + 1);
        while (low_ < words_.size() && words_[low_] == kFullWord) {
            ++low_;
        }
        return;
    }
    low_ = std::min(low_, w);
    while (high_ > 0 && words_[high_ - 1] == 0) {
        --high_;
    }
}

void LinearizedSet::append_encoding(std::vector<uint64_t>& out) const {
    out.push_back(low_);
    for (size_t w = low_; w < high_; ++w) {
        out.push_back(words_[w]);
    }
}

MemoTable::MemoTable() : set_(kInitialMemoBuckets, Hash{this}, Equal{this}) {}

bool MemoTable::insert(const LinearizedSet& set, ValueId state) {
    size_t index = starts_.size();
    starts_.push_back(arena_.size());
    set.append_encoding(arena_);
    states_.push_back(state);
    hashes_.push_back(set.hash() ^ splitmix64(kStateSalt ^ state));
    if (set_.insert(index).second) {
        return true;
    }
    arena_.resize(starts_.back());
    starts_.pop_back();
    states_.pop_back();
    hashes_.pop_back();
    return false;
}

bool MemoTable::equal(size_t a, size_t b) const {
    if (hashes_[a] != hashes_[b] || states_[a] != states_[b]) {
        return false;
    }
    auto end_of = [this](size_t i) {
        return i + 1 < starts_.size() ? starts_[i + 1] : arena_.size();
    };
    auto first = arena_.begin();
    return std::equal(
        first + static_cast<ptrdiff_t>(starts_[a]), first + static_cast<ptrdiff_t>(end_of(a)),
        first + static_cast<ptrdiff_t>(starts_[b]), first + static_cast<ptrdiff_t>(end_of(b)));
}

size_t MemoTable::bytes() const {
    // A node of the hash set holds the index, the next link and allocator overhead.
    constexpr size_t kNodeBytes = 4 * sizeof(void*);
    return arena_.capacity() * sizeof(uint64_t) + starts_.capacity() * sizeof(size_t) +
           states_.capacity() * sizeof(ValueId) + hashes_.capacity() * sizeof(uint64_t) +
           set_.size() * kNodeBytes + set_.bucket_count() * sizeof(void*);
}

}  // namespace coffer::lincheck::detail
