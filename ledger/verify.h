// Verification of a ledger without its secrets: the shared checks of Ledger::open, and the
// offline verifier behind `coffer ledger verify` and `coffer ledger show`.
//
// What is checked, entry by entry in seqno order: the chunk frames (ChunkStore), the entry
// header and sizes (parse_entry), consecutive seqnos starting at 1, views never going back,
// the signature flag agreeing with the frame and with the write set (only signature entries
// write public:coffer.signatures, and they write nothing else), the public write set
// parsing strictly, and every signature entry: its record names its own (view, seqno), its
// root equals the root recomputed over all earlier entries, its signature verifies with the
// embedded node certificate, and (when a service certificate is given) that certificate was
// issued by the service. Private parts are hashed into the leaves but not decrypted.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/x509.h"
#include "kv/tx_id.h"
#include "kv/write_set.h"
#include "ledger/entry.h"
#include "ledger/file_system.h"
#include "ledger/merkle.h"
#include "ledger/signature.h"

namespace coffer::ledger {

class ChunkStore;

// Checks the signature rules of one parsed entry whose write set is `ws` (public, or public
// and private): a signature entry has no private part, writes exactly its record, and the
// record is valid for this entry over `tree_before` (the tree of every earlier entry; see
// verify_signature_record); any other entry must not write public:coffer.signatures.
// `previous_signature` is the seqno of the signature entry before this one (0 if none): a
// root mismatch then names the entries that may have changed.
// Returns the record of a signature entry, nullopt otherwise.
// Errors: kCorrupt (a root mismatch: "the signed root over entries 1..n differs ..."),
// kCrypto.
Result<std::optional<SignatureRecord>> check_entry_signature(
    const DecodedEntry& entry, const kv::WriteSet& ws, const MerkleTree& tree_before,
    const std::optional<crypto::Certificate>& service_cert, uint64_t previous_signature = 0);

// "entry <seqno> (<file> at offset <n>): ", the prefix of every error about a stored entry.
std::string entry_location(const ChunkStore& chunks, uint64_t seqno);

// One entry as the chain verifier accepted it.
struct VerifiedEntry {
    DecodedEntry entry;  // views into the bytes passed to EntryChainVerifier::add
    kv::WriteSet public_write_set;
    std::optional<SignatureRecord> signature;  // set for signature entries
    Hash leaf{};
};

// Checks a ledger's entries one at a time, in order, and keeps the Merkle tree they build.
// Thread-compatible.
class EntryChainVerifier {
  public:
    // Entries must start at seqno 1 (the tree covers every entry since the start).
    // `service_cert`, when given, must have issued the certificate of every signature entry
    // after seqno `service_cert_after_seqno`: a recovered service's ledger begins with the
    // entries of the service it recovered, signed by that earlier identity's nodes
    // (docs/recovery.md), which are checked against the certificates they carry.
    explicit EntryChainVerifier(std::optional<crypto::Certificate> service_cert,
                                uint64_t service_cert_after_seqno = 0)
        : service_cert_(std::move(service_cert)),
          service_cert_after_seqno_(service_cert_after_seqno) {}

    // Checks the next entry (see the top of this file) and appends its leaf.
    // `frame_is_signature` is the chunk frame's own flag.
    // Errors: kCorrupt or kUnsupported for malformed entries; kCorrupt for a seqno gap, a
    // view going back, a signature flag mismatch or a root mismatch; kCrypto for a bad
    // signature or certificate. Nothing changes on error.
    Result<VerifiedEntry> add(ByteSpan entry_bytes, bool frame_is_signature);

    const MerkleTree& tree() const { return tree_; }
    MerkleTree& mutable_tree() { return tree_; }
    uint64_t last_seqno() const { return tree_.size(); }
    uint64_t last_view() const { return last_view_; }
    // Seqno of every signature entry, increasing.
    const std::vector<uint64_t>& signatures() const { return signatures_; }
    // First seqno of each view, with the view, increasing.
    const std::vector<std::pair<uint64_t, uint64_t>>& view_starts() const { return view_starts_; }

  private:
    std::optional<crypto::Certificate> service_cert_;
    uint64_t service_cert_after_seqno_ = 0;
    MerkleTree tree_;
    uint64_t last_view_ = 0;
    std::vector<uint64_t> signatures_;
    std::vector<std::pair<uint64_t, uint64_t>> view_starts_;
};

struct VerifySummary {
    uint64_t entries = 0;
    uint64_t signatures = 0;
    uint64_t chunks = 0;
    uint64_t last_seqno = 0;
    std::optional<kv::TxId> last_signed;  // the last signature entry's tx id
    uint64_t unsigned_tail = 0;           // entries after the last signature entry
    std::optional<Hash> root;             // of all entries, when there is at least one
    // A torn tail of the newest chunk (reported, not repaired: the directory is untouched).
    std::optional<std::string> torn_file;
    uint64_t torn_offset = 0;
    uint64_t torn_bytes = 0;
};

// Verifies every entry of the ledger in `dir` (read-only; no secrets needed).
// Errors: kNotFound (no directory); kUnsupported (a ledger that does not start at seqno 1);
// otherwise the first failure, with its code, as "entry <seqno> (<file> at offset <n>): ...".
// `service_cert_after_seqno`: as for EntryChainVerifier (a recovered service's ledger).
Result<VerifySummary> verify_ledger_directory(
    FileSystem& fs, const std::string& dir, const std::optional<crypto::Certificate>& service_cert,
    uint64_t service_cert_after_seqno = 0);

// One entry for `coffer ledger show`.
struct LedgerEntryInfo {
    kv::TxId tx_id;
    EntryHeader header;
    std::string file;
    uint64_t offset = 0;
    Hash leaf{};
    kv::WriteSet public_write_set;
    std::optional<SignatureRecord> signature;
};

// Calls fn for each entry from seqno `from_seqno` on, after checking it (and every entry
// before it, since the tree needs them) as verify_ledger_directory does; stops at fn's first
// error and returns it. Errors: as verify_ledger_directory.
Status for_each_ledger_entry(FileSystem& fs, const std::string& dir, uint64_t from_seqno,
                             const std::optional<crypto::Certificate>& service_cert,
                             const std::function<Status(const LedgerEntryInfo&)>& fn,
                             uint64_t service_cert_after_seqno = 0);

}  // namespace coffer::ledger
