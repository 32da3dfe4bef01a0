#include <gtest/gtest.h>

#include <bit>
#include <vector>

#include "common/bytes.h"
#include "crypto/sha256.h"
#include "ledger/merkle.h"

namespace coffer::ledger {
namespace {

// RFC 6962 §2.1 written out recursively, independent of MerkleTree's level arrays.
Hash naive_node(const Hash& l, const Hash& r) {
    Bytes b = {0x01};
    put_bytes(b, l);
    put_bytes(b, r);
    return crypto::sha256(b);
}

uint64_t naive_split(uint64_t n) {
    uint64_t k = 1;
    while (k * 2 < n) {
        k *= 2;
    }
    return k;
}

Hash naive_mth(const std::vector<Hash>& d, uint64_t begin, uint64_t end) {
    uint64_t n = end - begin;
    if (n == 1) {
        return d[begin];
    }
    uint64_t k = naive_split(n);
    return naive_node(naive_mth(d, begin, begin + k), naive_mth(d, begin + k, end));
}

// RFC 6962 §2.1.1 PATH(m, D[begin:end]).
std::vector<Hash> naive_path(const std::vector<Hash>& d, uint64_t m, uint64_t begin, uint64_t end) {
    uint64_t n = end - begin;
    if (n == 1) {
        return {};
    }
    uint64_t k = naive_split(n);
    std::vector<Hash> path;
    if (m < k) {
        path = naive_path(d, m, begin, begin + k);
        path.push_back(naive_mth(d, begin + k, end));
    } else {
        path = naive_path(d, m - k, begin + k, end);
        path.push_back(naive_mth(d, begin, begin + k));
    }
    return path;
}

std::vector<Hash> make_leaves(size_t n) {
    std::vector<Hash> leaves;
    for (size_t i = 0; i < n; ++i) {
        Bytes b = {0x00};
        put_u64(b, i);
        leaves.push_back(crypto::sha256(b));
    }
    return leaves;
}

TEST(Merkle, RootsMatchTheRfcDefinitionForEverySizeUpTo300) {
    auto leaves = make_leaves(300);
    MerkleTree tree;
    for (size_t n = 1; n <= leaves.size(); ++n) {
        tree.append(leaves[n - 1]);
        ASSERT_EQ(tree.root(), naive_mth(leaves, 0, n)) << "size " << n;
    }
    for (size_t n = 1; n <= leaves.size(); ++n) {
        ASSERT_EQ(tree.root_at(n), naive_mth(leaves, 0, n)) << "historical size " << n;
    }
}

TEST(Merkle, InclusionProofsMatchTheRfcAndVerify) {
    auto leaves = make_leaves(300);
    MerkleTree tree;
    for (const Hash& h : leaves) {
        tree.append(h);
    }
    std::vector<uint64_t> sizes;
    for (uint64_t n = 1; n <= 40; ++n) {
        sizes.push_back(n);
    }
    for (uint64_t n : {63, 64, 65, 100, 127, 128, 129, 255, 256, 257, 299, 300}) {
        sizes.push_back(n);
    }
    for (uint64_t n : sizes) {
        Hash root = naive_mth(leaves, 0, n);
        for (uint64_t m = 0; m < n; ++m) {
            auto proof = tree.inclusion_proof(m, n);
            ASSERT_TRUE(proof.ok());
            ASSERT_EQ(*proof, naive_path(leaves, m, 0, n)) << "leaf " << m << " size " << n;
            ASSERT_TRUE(MerkleTree::verify_inclusion(leaves[m], m, n, *proof, root));
        }
    }
}

TEST(Merkle, VerificationRejectsAnyWrongInput) {
    auto leaves = make_leaves(21);
    MerkleTree tree;
    for (const Hash& h : leaves) {
        tree.append(h);
    }
    Hash root = tree.root();
    auto proof = tree.inclusion_proof(6, 21).value();
    ASSERT_TRUE(MerkleTree::verify_inclusion(leaves[6], 6, 21, proof, root));

    EXPECT_FALSE(MerkleTree::verify_inclusion(leaves[7], 6, 21, proof, root));
    EXPECT_FALSE(MerkleTree::verify_inclusion(leaves[6], 7, 21, proof, root));
    // (Trees of 20 and 22 leaves give leaf 6 a path of the same shape, so an audit path alone
    // cannot pin the tree size: receipts get it from the signed message.)
    EXPECT_FALSE(MerkleTree::verify_inclusion(leaves[6], 6, 5, proof, root));
    EXPECT_FALSE(MerkleTree::verify_inclusion(leaves[6], 6, 40, proof, root));
    EXPECT_FALSE(MerkleTree::verify_inclusion(leaves[6], 21, 21, proof, root));
    for (size_t i = 0; i < proof.size(); ++i) {
        auto bad = proof;
        bad[i][0] ^= 1;
        EXPECT_FALSE(MerkleTree::verify_inclusion(leaves[6], 6, 21, bad, root));
    }
    auto longer = proof;
    longer.push_back(root);
    EXPECT_FALSE(MerkleTree::verify_inclusion(leaves[6], 6, 21, longer, root));
    auto shorter = proof;
    shorter.pop_back();
    EXPECT_FALSE(MerkleTree::verify_inclusion(leaves[6], 6, 21, shorter, root));
    EXPECT_FALSE(tree.inclusion_proof(21, 21).ok());
    EXPECT_FALSE(tree.inclusion_proof(0, 22).ok());
}

TEST(Merkle, TruncateThenAppendEqualsAFreshTree) {
    auto leaves = make_leaves(300);
    MerkleTree tree;
    for (const Hash& h : leaves) {
        tree.append(h);
    }
    for (uint64_t cut : {299, 256, 255, 100, 1}) {
        tree.truncate(cut);
        ASSERT_EQ(tree.size(), cut);
        ASSERT_EQ(tree.root(), naive_mth(leaves, 0, cut)) << cut;
    }
    auto other = make_leaves(310);
    for (size_t i = 1; i < 77; ++i) {
        tree.append(other[i + 200]);
    }
    std::vector<Hash> expected = {leaves[0]};
    for (size_t i = 1; i < 77; ++i) {
        expected.push_back(other[i + 200]);
    }
    EXPECT_EQ(tree.root(), naive_mth(expected, 0, expected.size()));
    auto proof = tree.inclusion_proof(40, 77).value();
    EXPECT_EQ(proof, naive_path(expected, 40, 0, 77));
    tree.truncate(0);
    EXPECT_EQ(tree.size(), 0u);
}

}  // namespace
}  // namespace coffer::ledger
