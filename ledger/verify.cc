#include "ledger/verify.h"

#include <string>
#include <utility>

#include "common/log.h"
#include "ledger/chunk_store.h"

namespace coffer::ledger {

namespace {

// A signature entry at s signs the root over entries 1..s-1; the previous signature entry p
// already fixed entries 1..p-1, and p's own bytes are covered only by this root (an ECDSA
// signature can be re-encoded and still verify), so a mismatch means one of p..s-1 changed.
Status root_mismatch(const SignatureRecord& record, const Hash& recomputed,
                     uint64_t previous_signature) {
    uint64_t n = record.tree_size;
    std::string range = previous_signature == 0
                            ? "one of entries 1.." + std::to_string(n)
                            : "one of entries " + std::to_string(previous_signature + 1) + ".." +
                                  std::to_string(n) + " (or the signature entry " +
                                  std::to_string(previous_signature) + " itself)";
    if (previous_signature == n) {
        range = "the signature entry " + std::to_string(n);
    }
    return error(Errc::kCorrupt, "the signed root over entries 1.." + std::to_string(n) +
                                     " differs from the recomputed one: " + range +
                                     " was changed (signed " + to_hex(record.root) +
                                     ", recomputed " + to_hex(recomputed) + ")");
}

}  // namespace

Result<std::optional<SignatureRecord>> check_entry_signature(
    const DecodedEntry& entry, const kv::WriteSet& ws, const MerkleTree& tree_before,
    const std::optional<crypto::Certificate>& service_cert, uint64_t previous_signature) {
    if (!entry.header.is_signature()) {
        if (writes_signature_map(ws)) {
            return error(Errc::kCorrupt, "entry writes " + std::string(kSignaturesMap) +
                                             " without the signature flag");
        }
        return std::optional<SignatureRecord>();
    }
    if (!entry.private_part.empty()) {
        return error(Errc::kCorrupt, "signature entry has a private part");
    }
    COFFER_ASSIGN_OR_RETURN(SignatureRecord record, signature_record_from_write_set(ws));
    if (tree_before.size() == 0 || tree_before.size() + 1 != entry.header.seqno) {
        return error(Errc::kCorrupt, "signature entry does not follow the entries it signs");
    }
    Hash recomputed = tree_before.root();
    bool names_itself = record.view == entry.header.view && record.seqno == entry.header.seqno &&
                        record.tree_size + 1 == entry.header.seqno;
    if (names_itself && !constant_time_equal(record.root, recomputed)) {
        return root_mismatch(record, recomputed, previous_signature);
    }
    COFFER_RETURN_IF_ERROR(
        verify_signature_record(record, entry.tx_id(), recomputed, service_cert));
    return std::optional<SignatureRecord>(std::move(record));
}

std::string entry_location(const ChunkStore& chunks, uint64_t seqno) {
    auto loc = chunks.locate(seqno);
    if (!loc.ok()) {
        return "entry " + std::to_string(seqno) + ": ";
    }
    return "entry " + std::to_string(seqno) + " (" + loc->file + " at offset " +
           std::to_string(loc->offset) + "): ";
}

Result<VerifiedEntry> EntryChainVerifier::add(ByteSpan entry_bytes, bool frame_is_signature) {
    VerifiedEntry v;
    COFFER_ASSIGN_OR_RETURN(v.entry, parse_entry(entry_bytes));
    const EntryHeader& h = v.entry.header;
    if (h.seqno != tree_.size() + 1) {
        return error(Errc::kCorrupt, "entry header says seqno " + std::to_string(h.seqno) +
                                         ", expected " + std::to_string(tree_.size() + 1));
    }
    if (h.view < last_view_) {
        return error(Errc::kCorrupt, "entry view " + std::to_string(h.view) +
                                         " is below the previous entry's view " +
                                         std::to_string(last_view_));
    }
    if (h.is_signature() != frame_is_signature) {
        return error(Errc::kCorrupt, "entry signature flag disagrees with its chunk frame");
    }
    COFFER_ASSIGN_OR_RETURN(v.public_write_set, decode_public_write_set(v.entry));
    uint64_t previous_signature = signatures_.empty() ? 0 : signatures_.back();
    static const std::optional<crypto::Certificate> kNoServiceCert;
    const auto& issuer = h.seqno > service_cert_after_seqno_ ? service_cert_ : kNoServiceCert;
    COFFER_ASSIGN_OR_RETURN(v.signature, check_entry_signature(v.entry, v.public_write_set, tree_,
                                                               issuer, previous_signature));

    v.leaf = entry_leaf(v.entry);
    tree_.append(v.leaf);
    if (view_starts_.empty() || h.view != last_view_) {
        view_starts_.emplace_back(h.seqno, h.view);
    }
    last_view_ = h.view;
    if (h.is_signature()) {
        signatures_.push_back(h.seqno);
    }
    return v;
}

namespace {

Result<std::unique_ptr<ChunkStore>> open_for_verify(FileSystem& fs, const std::string& dir,
                                                    OpenReport* report) {
    COFFER_ASSIGN_OR_RETURN(auto chunks, ChunkStore::open_read_only(fs, dir, report));
    if (chunks->first_seqno() != 1) {
        return error(Errc::kUnsupported,
                     "ledger in " + dir + " starts at seqno " +
                         std::to_string(chunks->first_seqno()) +
                         "; verifying a ledger that starts after a snapshot is not supported "
                         "yet, because its Merkle tree needs every earlier leaf");
    }
    return chunks;
}

}  // namespace

Status for_each_ledger_entry(FileSystem& fs, const std::string& dir, uint64_t from_seqno,
                             const std::optional<crypto::Certificate>& service_cert,
                             const std::function<Status(const LedgerEntryInfo&)>& fn,
                             uint64_t service_cert_after_seqno) {
    OpenReport report;
    COFFER_ASSIGN_OR_RETURN(auto chunks, open_for_verify(fs, dir, &report));
    EntryChainVerifier verifier(service_cert, service_cert_after_seqno);
    return chunks->for_each(1, [&](uint64_t seqno, ByteSpan bytes, bool is_signature) -> Status {
        auto v = verifier.add(bytes, is_signature);
        if (!v.ok()) {
            return v.status().with_context(entry_location(*chunks, seqno));
        }
        if (seqno < from_seqno) {
            return Status::ok_status();
        }
        LedgerEntryInfo info;
        info.tx_id = v->entry.tx_id();
        info.header = v->entry.header;
        auto loc = chunks->locate(seqno);
        if (loc.ok()) {
            info.file = loc->file;
            info.offset = loc->offset;
        }
        info.leaf = v->leaf;
        info.public_write_set = std::move(v->public_write_set);
        info.signature = std::move(v->signature);
        return fn(info);
    });
}

Result<VerifySummary> verify_ledger_directory(
    FileSystem& fs, const std::string& dir, const std::optional<crypto::Certificate>& service_cert,
    uint64_t service_cert_after_seqno) {
    OpenReport report;
    COFFER_ASSIGN_OR_RETURN(auto chunks, open_for_verify(fs, dir, &report));
    EntryChainVerifier verifier(service_cert, service_cert_after_seqno);
    COFFER_RETURN_IF_ERROR(
        chunks->for_each(1, [&](uint64_t seqno, ByteSpan bytes, bool is_signature) -> Status {
            auto v = verifier.add(bytes, is_signature);
            if (!v.ok()) {
                return v.status().with_context(entry_location(*chunks, seqno));
            }
            return Status::ok_status();
        }));

    VerifySummary s;
    s.entries = verifier.last_seqno();
    s.last_seqno = verifier.last_seqno();
    s.signatures = verifier.signatures().size();
    s.chunks = report.chunks;
    if (!verifier.signatures().empty()) {
        uint64_t last_sig = verifier.signatures().back();
        uint64_t view = 0;
        for (const auto& [first, v] : verifier.view_starts()) {
            if (first <= last_sig) {
                view = v;
            }
        }
        s.last_signed = kv::TxId{view, last_sig};
        s.unsigned_tail = s.last_seqno - last_sig;
    } else {
        s.unsigned_tail = s.last_seqno;
    }
    if (s.entries > 0) {
        s.root = verifier.tree().root();
    }
    s.torn_file = report.torn_file;
    s.torn_offset = report.torn_offset;
    s.torn_bytes = report.torn_bytes_cut;
    spdlog::debug("ledger.verified dir={} entries={} signatures={} unsigned_tail={}", dir,
                  s.entries, s.signatures, s.unsigned_tail);
    return s;
}

}  // namespace coffer::ledger
