// The ledger's Merkle tree: RFC 6962 §2.1 shape over the entry leaves in seqno order
// (leaf index = seqno - 1), with interior nodes SHA-256(0x01 || left || right). Leaves are
// computed by the caller (entry_leaf in ledger/entry.h, which applies the 0x00 prefix).
//
// Storage: level k keeps the hash of every complete, aligned subtree of 2^k leaves, so
// append costs O(1) amortised hashes, root_at(n) O(log n) and inclusion_proof O(log n)
// hashes; memory is about 2 hashes (64 bytes) per leaf. Every past tree size stays
// provable, which receipts need (a signature covers a past size).
//
// Limits: at most kMaxMerkleLeaves leaves (memory, not format: 2^32 leaves would take
// 256 GiB). Not supported yet: evicting old levels to disk, because no deployment so far
// has needed more than a few hundred million entries in memory.
//
// Thread-compatible: const methods may run concurrently; append/truncate need exclusivity.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"
#include "crypto/sha256.h"

namespace coffer::ledger {

using Hash = crypto::Sha256Digest;

constexpr uint64_t kMaxMerkleLeaves = uint64_t{1} << 32;
// An audit path has one hash per level: at most 64 for any 64-bit tree size.
constexpr size_t kMaxInclusionPathLength = 64;

// SHA-256(0x01 || left || right).
Hash merkle_node_hash(const Hash& left, const Hash& right);

class MerkleTree {
  public:
    MerkleTree() = default;

    // Appends a leaf hash. Aborts (COFFER_CHECK) beyond kMaxMerkleLeaves.
    void append(const Hash& leaf);

    uint64_t size() const { return levels_.empty() ? 0 : levels_[0].size(); }

    // The leaf hash at `index`. Needs index < size() (COFFER_CHECK).
    const Hash& leaf(uint64_t index) const;

    // The root of all leaves. Needs size() >= 1 (COFFER_CHECK): RFC 6962 defines the empty
    // tree's hash as SHA-256 of the empty string, but no ledger signs an empty tree.
    Hash root() const { return root_at(size()); }

    // The root of the first `tree_size` leaves. Needs 1 <= tree_size <= size() (COFFER_CHECK).
    Hash root_at(uint64_t tree_size) const;

    // The RFC 9162 §2.1.3.1 audit path of leaf `leaf_index` in the tree of the first
    // `tree_size` leaves, bottom-up.
    // Errors: kInvalidArgument unless leaf_index < tree_size <= size().
    Result<std::vector<Hash>> inclusion_proof(uint64_t leaf_index, uint64_t tree_size) const;

    // RFC 9162 §2.1.3.2: true if `path` proves that `leaf` is at `leaf_index` in the tree of
    // `tree_size` leaves whose root is `root`. Pure function; never aborts on bad input.
    static bool verify_inclusion(const Hash& leaf, uint64_t leaf_index, uint64_t tree_size,
                                 std::span<const Hash> path, const Hash& root);

    // The root that `path` gives for `leaf`, or an error if the path has the wrong length for
    // (leaf_index, tree_size). Errors: kInvalidArgument.
    static Result<Hash> root_from_path(const Hash& leaf, uint64_t leaf_index, uint64_t tree_size,
                                       std::span<const Hash> path);

    // Drops every leaf at index >= new_size (rollback). Needs new_size <= size()
    // (COFFER_CHECK).
    void truncate(uint64_t new_size);

  private:
    // The hash of the aligned complete subtree of 2^level leaves starting at `start`.
    const Hash& perfect(size_t level, uint64_t start) const;
    // RFC 6962 MTH of leaves [start, start + count), where start is a multiple of the
    // smallest power of two >= count (true of every range the RFC recursion visits).
    Hash range_hash(uint64_t start, uint64_t count) const;

    // levels_[k][i] = hash of leaves [i * 2^k, (i + 1) * 2^k).
    std::vector<std::vector<Hash>> levels_;
};

}  // namespace coffer::ledger
