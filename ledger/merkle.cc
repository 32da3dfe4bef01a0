#include "ledger/merkle.h"

#include <algorithm>
#include <array>
#include <bit>
#include <string>

#include "common/bytes.h"
#include "common/check.h"

namespace coffer::ledger {

namespace {

constexpr uint8_t kNodePrefix = 0x01;

// The largest power of two strictly below n (n >= 2), the RFC 6962 §2.1 split point.
uint64_t split_point(uint64_t n) {
    COFFER_DCHECK(n >= 2, "split of a tree with fewer than 2 leaves");
    return std::bit_floor(n - 1);
}

}  // namespace

Hash merkle_node_hash(const Hash& left, const Hash& right) {
    // One contiguous buffer and a one-shot digest: about half the cost of an incremental
    // hasher for a 65-byte input.
    std::array<uint8_t, 1 + 2 * crypto::kSha256Size> buffer;
    buffer[0] = kNodePrefix;
    std::copy(left.begin(), left.end(), buffer.begin() + 1);
    std::copy(right.begin(), right.end(), buffer.begin() + 1 + crypto::kSha256Size);
    return crypto::sha256(buffer);
}

void MerkleTree::append(const Hash& leaf) {
    COFFER_CHECK(size() < kMaxMerkleLeaves, "Merkle tree is full");
    if (levels_.empty()) {
        levels_.emplace_back();
    }
    levels_[0].push_back(leaf);

    // Each time a level gets an even count, its last two hashes complete a subtree of the
    // level above.
    size_t level = 0;
    while (levels_[level].size() % 2 == 0) {
        const auto& row = levels_[level];
        Hash parent = merkle_node_hash(row[row.size() - 2], row[row.size() - 1]);
        if (levels_.size() == level + 1) {
            levels_.emplace_back();
        }
        levels_[level + 1].push_back(parent);
        ++level;
    }
}

const Hash& MerkleTree::leaf(uint64_t index) const {
    COFFER_CHECK(index < size(), "Merkle leaf index out of range");
    return levels_[0][index];
}

const Hash& MerkleTree::perfect(size_t level, uint64_t start) const {
    COFFER_CHECK(level < levels_.size(), "Merkle level out of range");
    COFFER_CHECK(start % (uint64_t{1} << level) == 0, "Merkle subtree is not aligned");
    uint64_t index = start >> level;
    COFFER_CHECK(index < levels_[level].size(), "Merkle subtree is not complete");
    return levels_[level][index];
}

Hash MerkleTree::range_hash(uint64_t start, uint64_t count) const {
    COFFER_CHECK(count >= 1, "hash of an empty range");
    // MTH splits at the largest power of two below the count, so the range decomposes into
    // the complete subtrees of count's binary digits, highest first, joined right to left.
    Hash subtrees[kMaxInclusionPathLength];
    size_t n = 0;
    uint64_t offset = start;
    uint64_t remaining = count;
    while (remaining > 0) {
        uint64_t width = std::bit_floor(remaining);
        subtrees[n++] = perfect(static_cast<size_t>(std::countr_zero(width)), offset);
        offset += width;
        remaining -= width;
    }
    Hash acc = subtrees[n - 1];
    for (size_t i = n - 1; i-- > 0;) {
        acc = merkle_node_hash(subtrees[i], acc);
    }
    return acc;
}

Hash MerkleTree::root_at(uint64_t tree_size) const {
    COFFER_CHECK(tree_size >= 1 && tree_size <= size(), "Merkle root of an unknown size");
    return range_hash(0, tree_size);
}

Result<std::vector<Hash>> MerkleTree::inclusion_proof(uint64_t leaf_index,
                                                      uint64_t tree_size) const {
    if (tree_size > size() || leaf_index >= tree_size) {
        return error(Errc::kInvalidArgument, "no inclusion proof for leaf " +
                                                 std::to_string(leaf_index) + " in a tree of " +
                                                 std::to_string(tree_size) + " (have " +
                                                 std::to_string(size()) + " leaves)");
    }
    // RFC 6962 §2.1.1 PATH(m, D[n]), unrolled top-down; the path lists siblings bottom-up.
    std::vector<Hash> path;
    uint64_t start = 0;
    uint64_t n = tree_size;
    uint64_t m = leaf_index;
    while (n > 1) {
        uint64_t k = split_point(n);
        if (m < k) {
            path.push_back(range_hash(start + k, n - k));
            n = k;
        } else {
            path.push_back(perfect(static_cast<size_t>(std::countr_zero(k)), start));
            start += k;
            m -= k;
            n -= k;
        }
    }
    std::reverse(path.begin(), path.end());
    COFFER_CHECK(path.size() <= kMaxInclusionPathLength, "inclusion path length");
    return path;
}

Result<Hash> MerkleTree::root_from_path(const Hash& leaf, uint64_t leaf_index, uint64_t tree_size,
                                        std::span<const Hash> path) {
    if (leaf_index >= tree_size) {
        return error(Errc::kInvalidArgument, "leaf index is not below the tree size");
    }
    if (path.size() > kMaxInclusionPathLength) {
        return error(Errc::kInvalidArgument, "inclusion path is too long");
    }
    // RFC 9162 §2.1.3.2, step by step.
    uint64_t fn = leaf_index;
    uint64_t sn = tree_size - 1;
    Hash r = leaf;
    for (const Hash& p : path) {
        if (sn == 0) {
            return error(Errc::kInvalidArgument, "inclusion path is too long for the tree");
        }
        if ((fn & 1) != 0 || fn == sn) {
            r = merkle_node_hash(p, r);
            while ((fn & 1) == 0 && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            r = merkle_node_hash(r, p);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0) {
        return error(Errc::kInvalidArgument, "inclusion path is too short for the tree");
    }
    return r;
}

bool MerkleTree::verify_inclusion(const Hash& leaf, uint64_t leaf_index, uint64_t tree_size,
                                  std::span<const Hash> path, const Hash& root) {
    auto computed = root_from_path(leaf, leaf_index, tree_size, path);
    return computed.ok() && constant_time_equal(*computed, root);
}

void MerkleTree::truncate(uint64_t new_size) {
    COFFER_CHECK(new_size <= size(), "Merkle truncate beyond the end");
    for (size_t level = 0; level < levels_.size(); ++level) {
        levels_[level].resize(new_size >> level);
    }
    while (!levels_.empty() && levels_.back().empty()) {
        levels_.pop_back();
    }
}

}  // namespace coffer::ledger
