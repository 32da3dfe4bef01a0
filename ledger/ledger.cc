#include "ledger/ledger.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

#include <openssl/crypto.h>

#include "common/log.h"
#include "ledger/verify.h"

namespace coffer::ledger {

static_assert(kMaxEncodedEntrySize <= kMaxEntrySize,
              "every encoded entry must fit one chunk-store frame");

namespace {

constexpr std::string_view kViewTempFileName = "coffer.view.tmp";
constexpr uint64_t kMaxViewFileSize = 32;

// The value a write set stores under the signature key, or empty if it has another shape.
Bytes signature_value_of(const kv::WriteSet& ws) {
    auto it = ws.maps.find(std::string(kSignaturesMap));
    if (it == ws.maps.end() || it->second.size() != 1) {
        return {};
    }
    const auto& [key, value] = *it->second.begin();
    if (key != to_bytes(kSignatureKey) || !value.has_value()) {
        return {};
    }
    return *value;
}

// Cuts every entry after the last signature entry (docs/ledger.md, "What a restart keeps"):
// nothing authenticates them (a public-only entry has no GCM tag, and no signature covers
// them yet), so a node must not apply, and later sign over, what someone with write access
// to the directory appended. In single-node mode they were never Committed.
Status discard_unsigned_tail(ChunkStore& chunks) {
    uint64_t last = chunks.last_seqno();
    uint64_t keep = chunks.last_signature_seqno().value_or(chunks.first_seqno() - 1);
    if (keep >= last) {
        return Status::ok_status();
    }
    if (keep < chunks.committed_seqno()) {
        return error(Errc::kCorrupt, "ledger: entries " + std::to_string(keep + 1) + ".." +
                                         std::to_string(chunks.committed_seqno()) +
                                         " are in a .committed chunk but no signature entry "
                                         "covers them");
    }
    auto loc = chunks.locate(keep + 1);
    std::string file = loc.ok() ? loc->file : chunks.chunk_files().back();
    COFFER_RETURN_IF_ERROR(chunks.truncate(keep));
    spdlog::warn("ledger.unsigned_tail_discarded file={} from_seqno={} count={}", file, keep + 1,
                 last - keep);
    return Status::ok_status();
}

}  // namespace

std::string_view tx_status_name(TxStatus status) {
    switch (status) {
        case TxStatus::kUnknown:
            return "Unknown";
        case TxStatus::kPending:
            return "Pending";
        case TxStatus::kCommitted:
            return "Committed";
        case TxStatus::kInvalid:
            return "Invalid";
    }
    return "Unknown";
}

Ledger::Ledger(FileSystem& fs, LedgerOptions options, kv::Store& store, LedgerSecrets secrets)
    : fs_(fs),
      options_(std::move(options)),
      store_(store),
      secrets_(std::move(secrets)),
      base_secrets_(secrets_),
      signature_interval_entries_(options_.signature_interval_entries),
      signature_interval_ms_(options_.signature_interval_ms) {}

Ledger::~Ledger() {
    store_.set_commit_hook(nullptr);
    for (auto& [seqno, secret] : learned_) {
        OPENSSL_cleanse(secret.key.data(), secret.key.size());
    }
}

uint64_t Ledger::now_ms() const {
    if (options_.now_ms) {
        return options_.now_ms();
    }
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}

Result<std::unique_ptr<Ledger>> Ledger::open(FileSystem& fs, LedgerOptions options,
                                             kv::Store& store, const LedgerSecrets& secrets) {
    if (options.dir.empty()) {
        return error(Errc::kInvalidArgument, "ledger directory is not set");
    }
    if (secrets.empty() && !options.public_only_replay) {
        return error(Errc::kInvalidArgument, "no ledger secret");
    }
    if (options.views_from_consensus && options.commit_at_durable_signature) {
        return error(Errc::kInvalidArgument,
                     "views_from_consensus needs commit_at_durable_signature = false");
    }
    if (store.current().seqno != 0) {
        return error(Errc::kFailedPrecondition,
                     "the store must be empty before the ledger is replayed into it");
    }
    ChunkStoreOptions chunk_options{options.dir, options.chunk_size_bytes,
                                    options.max_batch_entries, options.flush_interval_ms,
                                    options.now_ms};
    OpenReport report;
    COFFER_ASSIGN_OR_RETURN(auto chunks, ChunkStore::open(fs, std::move(chunk_options), &report));
    if (chunks->first_seqno() != 1) {
        return error(Errc::kUnsupported,
                     "ledger starts at seqno " + std::to_string(chunks->first_seqno()) +
                         "; opening a ledger that starts after a snapshot is not supported "
                         "yet, because the Merkle tree needs every earlier leaf");
    }

    if (!options.keep_unsigned_tail) {
        COFFER_RETURN_IF_ERROR(discard_unsigned_tail(*chunks));
    }

    std::unique_ptr<Ledger> ledger(new Ledger(fs, std::move(options), store, secrets));
    ledger->chunks_ = std::move(chunks);
    COFFER_RETURN_IF_ERROR(ledger->replay());
    COFFER_RETURN_IF_ERROR(ledger->start_after_replay());
    return ledger;
}

Status Ledger::replay() {
    EntryChainVerifier verifier(options_.service_cert, options_.service_cert_after_seqno);
    Status replayed =
        chunks_->for_each(1, [&](uint64_t seqno, ByteSpan bytes, bool is_signature) -> Status {
            auto v = verifier.add(bytes, is_signature);
            if (!v.ok()) {
                return v.status().with_context(entry_location(*chunks_, seqno));
            }
            max_secret_version_used_ =
                std::max(max_secret_version_used_, v->entry.header.secret_version);
            auto priv = options_.public_only_replay ? Result<kv::WriteSet>(kv::WriteSet{})
                                                    : decode_private_write_set(v->entry, secrets_);
            if (!priv.ok()) {
                return priv.status().with_context(entry_location(*chunks_, seqno));
            }
            kv::WriteSet ws = std::move(v->public_write_set);
            if (!kv::merge_write_sets(ws, std::move(priv).value()).ok()) {
                return error(Errc::kCorrupt,
                             entry_location(*chunks_, seqno) + "a map appears in both parts");
            }
            auto learned = secret_to_learn_locked(ws);
            if (!learned.ok()) {
                return learned.status().with_context(entry_location(*chunks_, seqno));
            }
            auto applied = store_.apply(v->entry.tx_id(), ws);
            if (!applied.ok()) {
                return applied.status().with_context(entry_location(*chunks_, seqno));
            }
            if (learned->has_value()) {
                learn_secret_locked(seqno, std::move(**learned));
            }
            return Status::ok_status();
        });
    COFFER_RETURN_IF_ERROR(replayed);

    tree_ = std::move(verifier.mutable_tree());
    view_starts_ = verifier.view_starts();
    signatures_ = verifier.signatures();
    return Status::ok_status();
}

Status Ledger::start_after_replay() {
    // A restart always moves to a view no entry of this node has used, not even one lost
    // before a flush (its ciphertext may have reached a disk block or a follower): the view
    // file records every view used for writing.
    COFFER_ASSIGN_OR_RETURN(uint64_t file_view, read_view_file());
    uint64_t last_view = view_starts_.empty() ? 0 : view_starts_.back().second;
    uint64_t next_view = std::max({last_view, file_view, store_.view()});
    if (!options_.views_from_consensus) {
        ++next_view;
    }
    if (next_view > kMaxEntryView) {
        return error(Errc::kFailedPrecondition, "ledger views exhausted (2^32-1 restarts)");
    }
    persisted_view_ = file_view;
    store_.set_view(next_view);

    uint64_t floor = chunks_->committed_seqno();
    uint64_t target = floor;
    if (options_.commit_at_durable_signature && !signatures_.empty()) {
        target = std::max(floor, signatures_.back());
    }
    if (target > floor) {
        COFFER_RETURN_IF_ERROR(chunks_->set_committed(target));
    }
    if (target > 0) {
        store_.set_committed(target);
    }
    committed_ = target;
    last_signature_ms_ = now_ms();
    store_.set_commit_hook(this);
    spdlog::info("ledger.replayed dir={} entries={} signatures={} committed={} view={}",
                 options_.dir, tree_.size(), signatures_.size(), committed_, next_view);
    return Status::ok_status();
}

Result<uint64_t> Ledger::read_view_file() {
    std::string path = join_path(options_.dir, kViewFileName);
    COFFER_ASSIGN_OR_RETURN(bool exists, fs_.file_exists(path));
    if (!exists) {
        return uint64_t{0};
    }
    COFFER_ASSIGN_OR_RETURN(auto file, fs_.open_read(path));
    COFFER_ASSIGN_OR_RETURN(Bytes content, read_whole_file(*file, kMaxViewFileSize));
    // The file holds one decimal number; TxId's strict parser checks it (no sign, space or
    // leading zero, at most 2^64 - 1).
    std::string text = to_string(content);
    auto parsed = kv::TxId::parse(text + ".0");
    if (!parsed.ok()) {
        return error(Errc::kCorrupt, path + " does not hold a decimal view");
    }
    return parsed->view;
}

Status Ledger::persist_view_locked(uint64_t view) {
    std::string tmp = join_path(options_.dir, kViewTempFileName);
    COFFER_ASSIGN_OR_RETURN(bool stale, fs_.file_exists(tmp));
    if (stale) {
        COFFER_RETURN_IF_ERROR(fs_.remove(tmp));
    }
    COFFER_ASSIGN_OR_RETURN(auto file, fs_.create_new(tmp));
    std::string text = std::to_string(view);
    COFFER_RETURN_IF_ERROR(file->append(as_bytes(text)).status());
    COFFER_RETURN_IF_ERROR(file->sync());
    COFFER_RETURN_IF_ERROR(fs_.rename(tmp, join_path(options_.dir, kViewFileName)));
    COFFER_RETURN_IF_ERROR(fs_.sync_dir(options_.dir));
    persisted_view_ = view;
    return Status::ok_status();
}

Status Ledger::check_writable_locked() const {
    if (!failed_.ok()) {
        return failed_;
    }
    if (rolling_back_) {
        return error(Errc::kFailedPrecondition, "ledger is rolling back");
    }
    return Status::ok_status();
}

Status Ledger::check_own_signature_locked(kv::TxId id, const kv::WriteSet& ws) const {
    bool exact = pending_signature_id_.has_value() && ws.maps.size() == 1 &&
                 signature_value_of(ws) == pending_signature_value_;
    if (!exact) {
        return error(Errc::kPermissionDenied, "map " + std::string(kSignaturesMap) +
                                                  " is written only by the ledger's own "
                                                  "signature entries");
    }
    if (*pending_signature_id_ != id) {
        return error(Errc::kConflict, "signature entry prepared for " +
                                          pending_signature_id_->to_string() + " would land at " +
                                          id.to_string());
    }
    return Status::ok_status();
}

Status Ledger::on_commit(kv::TxId id, const kv::WriteSet& ws) {
    std::lock_guard lock(mu_);
    COFFER_RETURN_IF_ERROR(check_writable_locked());
    bool is_signature = writes_signature_map(ws);
    if (is_signature) {
        COFFER_RETURN_IF_ERROR(check_own_signature_locked(id, ws));
    }
    if (id.seqno != tree_.size() + 1) {
        return error(Errc::kFailedPrecondition, "commit of " + id.to_string() +
                                                    " but the ledger ends at seqno " +
                                                    std::to_string(tree_.size()));
    }
    // Refuse before any IV is spent if the chunk store could not take the entry.
    uint64_t estimate = ws.size_bytes() + kEntryHeaderSize + kEntryPartsSlack + kFrameOverhead;
    if (unflushed_.size() >= kMaxBatchEntries || unflushed_bytes_ + estimate > kMaxPendingBytes) {
        return error(Errc::kResourceExhausted, "too many unflushed ledger entries; flush first");
    }
    const LedgerSecret* secret = secrets_.current();
    if (secret == nullptr) {
        // Only after a public-only replay, before the caller added a secret.
        return error(Errc::kFailedPrecondition, "the ledger holds no secret to write with");
    }
    // Before the encoder spends an IV: a refused secret refuses the whole entry.
    COFFER_ASSIGN_OR_RETURN(std::optional<LedgerSecret> learned, secret_to_learn_locked(ws));
    if (id.view > persisted_view_) {
        COFFER_RETURN_IF_ERROR(persist_view_locked(id.view));
    }
    COFFER_ASSIGN_OR_RETURN(Bytes bytes, encoder_.encode(id, ws, *secret, is_signature));

    // From here the entry's IV is spent: a failure must stop all writes until a reopen (or
    // a rollback) moves to a new view.
    Status appended = chunks_->append(id.seqno, bytes, is_signature);
    if (!appended.ok()) {
        failed_ = appended.with_context("ledger append failed, writes refused until reopen: ");
        spdlog::error("ledger.append_failed seqno={} error={}", id.seqno, failed_.to_string());
        return failed_;
    }
    auto decoded = parse_entry(bytes);
    COFFER_CHECK(decoded.ok(), "an entry the encoder made must parse");
    record_appended_locked(*decoded, entry_leaf(*decoded), bytes.size());
    if (learned.has_value()) {
        learn_secret_locked(id.seqno, std::move(*learned));
    }
    return Status::ok_status();
}

void Ledger::record_appended_locked(const DecodedEntry& entry, const Hash& leaf,
                                    size_t size_bytes) {
    const EntryHeader& h = entry.header;
    COFFER_CHECK(h.seqno == tree_.size() + 1, "ledger leaves stay in seqno order");
    tree_.append(leaf);
    max_secret_version_used_ = std::max(max_secret_version_used_, h.secret_version);
    if (view_starts_.empty() || view_starts_.back().second != h.view) {
        COFFER_CHECK(view_starts_.empty() || view_starts_.back().second < h.view,
                     "ledger views never go back");
        view_starts_.emplace_back(h.seqno, h.view);
    }
    if (h.is_signature()) {
        signatures_.push_back(h.seqno);
        last_signature_ms_ = now_ms();
        pending_signature_id_.reset();
        pending_signature_value_.clear();
    }
    unflushed_.emplace_back(h.seqno, size_bytes + kFrameOverhead);
    unflushed_bytes_ += size_bytes + kFrameOverhead;
}

void Ledger::truncate_state_locked(uint64_t last_kept) {
    tree_.truncate(last_kept);
    forget_learned_after_locked(last_kept);
    while (!signatures_.empty() && signatures_.back() > last_kept) {
        signatures_.pop_back();
    }
    while (!view_starts_.empty() && view_starts_.back().first > last_kept) {
        view_starts_.pop_back();
    }
    while (!unflushed_.empty() && unflushed_.back().first > last_kept) {
        unflushed_bytes_ -= unflushed_.back().second;
        unflushed_.pop_back();
    }
}

Status Ledger::maybe_sign() {
    // Held across the check and the signature: two threads that both find a signature due
    // (a node's replication and background threads) must not both sign, the second one over
    // the first's signature entry.
    std::lock_guard sign_lock(sign_mu_);
    bool due = false;
    {
        std::lock_guard lock(mu_);
        uint64_t last_signed = signatures_.empty() ? 0 : signatures_.back();
        uint64_t unsigned_entries = tree_.size() - last_signed;
        bool previous_committed = last_signed <= committed_;
        due =
            unsigned_entries > 0 && (unsigned_entries >= signature_interval_entries_ ||
                                     now_ms() - last_signature_ms_ >= signature_interval_ms_ ||
                                     (options_.sign_when_previous_committed && previous_committed));
    }
    return due ? sign_locked() : Status::ok_status();
}

Status Ledger::sign_now() {
    std::lock_guard sign_lock(sign_mu_);
    return sign_locked();
}

Status Ledger::sign_locked() {
    if (!options_.node_key.has_value() || options_.node_cert.empty() || options_.node_id.empty()) {
        return error(Errc::kFailedPrecondition, "ledger has no node id, key or certificate");
    }
    for (int attempt = 0; attempt < kMaxSignAttempts; ++attempt) {
        // The store's view is read without the ledger lock (lock order); a race with another
        // commit or a view change is caught in on_commit and retried.
        kv::View view = store_.view();
        uint64_t seqno = 0;
        Hash root{};
        {
            std::lock_guard lock(mu_);
            COFFER_RETURN_IF_ERROR(check_writable_locked());
            if (tree_.size() == 0) {
                return error(Errc::kFailedPrecondition, "empty ledger: nothing to sign");
            }
            seqno = tree_.size() + 1;
            root = tree_.root();
        }
        COFFER_ASSIGN_OR_RETURN(SignatureRecord record,
                                make_signature_record(kv::TxId{view, seqno}, root, options_.node_id,
                                                      options_.node_cert, *options_.node_key));
        Bytes value = serialize_signature_record(record);
        {
            std::lock_guard lock(mu_);
            pending_signature_id_ = kv::TxId{view, seqno};
            pending_signature_value_ = value;
        }
        kv::Transaction tx = store_.begin();
        COFFER_RETURN_IF_ERROR(tx.put(kSignaturesMap, as_bytes(kSignatureKey), value));
        auto committed = store_.commit(std::move(tx));
        {
            std::lock_guard lock(mu_);
            pending_signature_id_.reset();
            pending_signature_value_.clear();
        }
        if (committed.ok()) {
            return Status::ok_status();
        }
        if (committed.status().code() != Errc::kConflict) {
            return committed.status();
        }
    }
    return error(Errc::kConflict, "signature entry lost every race with other commits");
}

bool Ledger::flush_due() const {
    std::lock_guard lock(mu_);
    return chunks_->flush_due();
}

Result<uint64_t> Ledger::flush() {
    std::lock_guard flush_lock(flush_mu_);
    std::optional<uint64_t> candidate;
    uint64_t durable = 0;
    {
        std::lock_guard lock(mu_);
        if (!failed_.ok()) {
            return failed_;
        }
        auto flushed = chunks_->flush();
        if (!flushed.ok() && flushed.status().code() != Errc::kNoSpace) {
            failed_ = flushed.status().with_context("ledger flush failed, writes refused: ");
            spdlog::error("ledger.flush_failed error={}", failed_.to_string());
            return failed_;
        }
        if (!flushed.ok()) {
            // The chunk store dropped every entry it could not write; so must we.
            durable = chunks_->durable_seqno();
            truncate_state_locked(durable);
            unflushed_.clear();
            unflushed_bytes_ = 0;
            rolling_back_ = true;
            spdlog::warn("ledger.no_space durable_seqno={} dropped_tail=true", durable);
            Status dropped = drop_store_tail(durable);
            return dropped.ok() ? flushed.status() : dropped;
        }
        durable = *flushed;
        unflushed_.clear();
        unflushed_bytes_ = 0;
        candidate = commit_candidate_locked(durable);
    }
    if (candidate.has_value()) {
        COFFER_RETURN_IF_ERROR(advance_commit(*candidate));
    }
    return durable;
}

Status Ledger::drop_store_tail(uint64_t last_kept) {
    // Called with mu_ held and rolling_back_ set: release it around the store calls (lock
    // order), while on_commit refuses everything.
    mu_.unlock();
    Status rolled = Status::ok_status();
    if (store_.current().seqno > last_kept) {
        rolled = store_.rollback(last_kept);
    }
    if (rolled.ok() && !options_.views_from_consensus) {
        // The dropped entries spent their IVs in the current view.
        store_.set_view(store_.view() + 1);
    }
    mu_.lock();
    rolling_back_ = false;
    if (!rolled.ok()) {
        failed_ = rolled.with_context("store rollback failed, writes refused: ");
    }
    return rolled;
}

std::optional<uint64_t> Ledger::commit_candidate_locked(uint64_t durable) const {
    if (!options_.commit_at_durable_signature) {
        return std::nullopt;
    }
    auto it = std::upper_bound(signatures_.begin(), signatures_.end(), durable);
    if (it == signatures_.begin()) {
        return std::nullopt;
    }
    uint64_t candidate = *std::prev(it);
    if (candidate <= committed_) {
        return std::nullopt;
    }
    return candidate;
}

Status Ledger::advance_commit(uint64_t seqno) {
    {
        std::lock_guard lock(mu_);
        if (seqno <= committed_) {
            return Status::ok_status();
        }
        Status marked = chunks_->set_committed(seqno);
        if (!marked.ok()) {
            if (marked.code() == Errc::kIo) {
                failed_ = marked.with_context("ledger commit failed, writes refused: ");
            }
            return marked;
        }
        committed_ = seqno;
    }
    store_.set_committed(seqno);
    return Status::ok_status();
}

Status Ledger::commit_to(uint64_t seqno) {
    std::lock_guard flush_lock(flush_mu_);
    {
        std::lock_guard lock(mu_);
        if (!std::binary_search(signatures_.begin(), signatures_.end(), seqno)) {
            return error(Errc::kFailedPrecondition,
                         "commit point " + std::to_string(seqno) + " is not a signature entry");
        }
        if (seqno > chunks_->durable_seqno() || seqno < committed_) {
            return error(Errc::kFailedPrecondition, "commit point " + std::to_string(seqno) +
                                                        " must be durable and not below " +
                                                        std::to_string(committed_));
        }
    }
    return advance_commit(seqno);
}

Status Ledger::append_replicated(ByteSpan entry_bytes) {
    COFFER_ASSIGN_OR_RETURN(DecodedEntry d, parse_entry(entry_bytes));
    kv::WriteSet ws;
    std::optional<LedgerSecret> learned;
    {
        std::lock_guard lock(mu_);
        COFFER_RETURN_IF_ERROR(check_writable_locked());
        if (d.header.seqno != tree_.size() + 1) {
            return error(Errc::kFailedPrecondition, "replicated entry " + d.tx_id().to_string() +
                                                        " does not follow seqno " +
                                                        std::to_string(tree_.size()));
        }
        if (!view_starts_.empty() && d.header.view < view_starts_.back().second) {
            return error(Errc::kCorrupt, "replicated entry " + d.tx_id().to_string() +
                                             " goes back to an earlier view");
        }
        if (options_.public_only_replay) {
            COFFER_ASSIGN_OR_RETURN(ws, decode_public_write_set(d));
        } else {
            COFFER_ASSIGN_OR_RETURN(ws, decode_write_set(d, secrets_));
        }
        uint64_t previous_signature = signatures_.empty() ? 0 : signatures_.back();
        static const std::optional<crypto::Certificate> kNoServiceCert;
        const auto& issuer = d.header.seqno > options_.service_cert_after_seqno
                                 ? options_.service_cert
                                 : kNoServiceCert;
        COFFER_RETURN_IF_ERROR(
            check_entry_signature(d, ws, tree_, issuer, previous_signature).status());
        COFFER_ASSIGN_OR_RETURN(learned, secret_to_learn_locked(ws));
    }

    COFFER_RETURN_IF_ERROR(store_.apply(d.tx_id(), ws).status());

    std::lock_guard lock(mu_);
    Status appended = d.header.seqno == tree_.size() + 1
                          ? chunks_->append(d.header.seqno, entry_bytes, d.header.is_signature())
                          : error(Errc::kInternal, "ledger changed during a replicated append");
    if (!appended.ok()) {
        failed_ = appended.with_context("replicated append failed, writes refused: ");
        return failed_;
    }
    record_appended_locked(d, entry_leaf(d), entry_bytes.size());
    if (learned.has_value()) {
        learn_secret_locked(d.header.seqno, std::move(*learned));
    }
    return Status::ok_status();
}

Status Ledger::rollback(uint64_t last_kept) {
    {
        std::lock_guard lock(mu_);
        COFFER_RETURN_IF_ERROR(check_writable_locked());
        if (last_kept < committed_) {
            return error(Errc::kFailedPrecondition,
                         "cannot roll back to " + std::to_string(last_kept) +
                             ", below the commit point " + std::to_string(committed_));
        }
        if (last_kept > tree_.size()) {
            return error(Errc::kInvalidArgument,
                         "cannot roll back to " + std::to_string(last_kept) + ", beyond the end " +
                             std::to_string(tree_.size()));
        }
        Status cut = chunks_->truncate(last_kept);
        if (!cut.ok()) {
            failed_ = cut.with_context("ledger truncate failed, writes refused: ");
            return failed_;
        }
        truncate_state_locked(last_kept);
        rolling_back_ = true;
        return drop_store_tail(last_kept);
    }
}

Result<Receipt> Ledger::receipt(uint64_t seqno, bool include_public_part) const {
    std::lock_guard lock(mu_);
    if (seqno == 0 || seqno > tree_.size()) {
        return error(Errc::kNotFound, "no ledger entry at seqno " + std::to_string(seqno));
    }
    if (seqno > committed_) {
        return error(Errc::kFailedPrecondition,
                     "entry " + std::to_string(seqno) + " is pending: not committed yet");
    }
    auto it = std::upper_bound(signatures_.begin(), signatures_.end(), seqno);
    if (it == signatures_.end() || *it > committed_) {
        return error(Errc::kFailedPrecondition, "entry " + std::to_string(seqno) +
                                                    " is pending: no committed signature "
                                                    "covers it yet");
    }
    uint64_t sig_seqno = *it;

    COFFER_ASSIGN_OR_RETURN(Bytes bytes, chunks_->read(seqno));
    COFFER_ASSIGN_OR_RETURN(DecodedEntry entry, parse_entry(bytes));
    COFFER_ASSIGN_OR_RETURN(Bytes sig_bytes, chunks_->read(sig_seqno));
    COFFER_ASSIGN_OR_RETURN(DecodedEntry sig_entry, parse_entry(sig_bytes));
    COFFER_ASSIGN_OR_RETURN(kv::WriteSet sig_ws, decode_public_write_set(sig_entry));
    COFFER_ASSIGN_OR_RETURN(SignatureRecord record, signature_record_from_write_set(sig_ws));
    COFFER_ASSIGN_OR_RETURN(crypto::Certificate cert,
                            crypto::Certificate::from_der(record.node_certificate_der));

    Receipt r;
    r.tx_id = entry.tx_id();
    r.header.assign(entry.header_bytes.begin(), entry.header_bytes.end());
    r.public_digest = crypto::sha256(entry.public_part);
    r.private_digest = crypto::sha256(entry.private_part);
    if (include_public_part) {
        r.public_part = Bytes(entry.public_part.begin(), entry.public_part.end());
    }
    r.leaf_index = seqno - 1;
    r.tree_size = record.tree_size;
    COFFER_ASSIGN_OR_RETURN(r.path, tree_.inclusion_proof(r.leaf_index, r.tree_size));
    r.root = record.root;
    r.signature = record.signature;
    r.node_id = record.node_id;
    r.node_certificate_pem = cert.to_pem();
    r.signed_tx_id = sig_entry.tx_id();
    return r;
}

uint64_t Ledger::view_of_locked(uint64_t seqno) const {
    COFFER_CHECK(seqno >= 1 && seqno <= tree_.size() && !view_starts_.empty(),
                 "view of an entry the ledger does not hold");
    auto it = std::upper_bound(
        view_starts_.begin(), view_starts_.end(), seqno,
        [](uint64_t s, const std::pair<uint64_t, uint64_t>& start) { return s < start.first; });
    return std::prev(it)->second;
}

TxStatus Ledger::tx_status(kv::TxId id) const {
    std::lock_guard lock(mu_);
    if (id.seqno == 0) {
        return TxStatus::kUnknown;
    }
    if (id.seqno <= tree_.size()) {
        uint64_t local_view = view_of_locked(id.seqno);
        if (local_view == id.view) {
            return id.seqno <= committed_ ? TxStatus::kCommitted : TxStatus::kPending;
        }
        if (id.seqno <= committed_) {
            return TxStatus::kInvalid;
        }
    }
    // A committed entry in a later view means the id's view ended before it could commit
    // anything more (Raft: terms never decrease along a log).
    if (committed_ > 0 && id.view < view_of_locked(committed_)) {
        return TxStatus::kInvalid;
    }
    return TxStatus::kUnknown;
}

Status Ledger::add_secret(LedgerSecret secret) {
    std::lock_guard lock(mu_);
    COFFER_RETURN_IF_ERROR(secrets_.add(std::move(secret)));
    // The base keeps every version below the new one, so a rollback never leaves a gap.
    base_secrets_ = secrets_;
    for (auto& [seqno, learned] : learned_) {
        OPENSSL_cleanse(learned.key.data(), learned.key.size());
    }
    learned_.clear();
    return Status::ok_status();
}

Result<std::optional<LedgerSecret>> Ledger::secret_to_learn_locked(const kv::WriteSet& ws) const {
    if (!options_.secret_from_write_set || options_.public_only_replay) {
        return std::optional<LedgerSecret>();
    }
    Result<std::optional<LedgerSecret>> hooked = options_.secret_from_write_set(ws);
    if (!hooked.ok() || !hooked->has_value()) {
        return hooked;
    }
    const LedgerSecret& found = **hooked;
    if (found.key.size() != kLedgerSecretSize) {
        return error(Errc::kInvalidArgument, "a learned ledger secret must be 32 bytes");
    }
    std::string version = std::to_string(found.version);
    if (const LedgerSecret* held = secrets_.get(found.version); held != nullptr) {
        if (CRYPTO_memcmp(held->key.data(), found.key.data(), kLedgerSecretSize) == 0) {
            return std::optional<LedgerSecret>();
        }
        return error(Errc::kCorrupt, "ledger secret version " + version +
                                         " arrives with another key than the one this ledger "
                                         "holds");
    }
    const LedgerSecret* newest = secrets_.current();
    if (newest != nullptr && found.version < newest->version) {
        return error(Errc::kCorrupt, "ledger secret version " + version +
                                         " is below the newest held, " +
                                         std::to_string(newest->version));
    }
    if (secrets_.size() >= kMaxLedgerSecrets) {
        return error(Errc::kResourceExhausted, "the ledger holds the most secret versions");
    }
    return hooked;
}

void Ledger::learn_secret_locked(uint64_t seqno, LedgerSecret secret) {
    COFFER_CHECK(learned_.empty() || learned_.back().first < seqno,
                 "secrets are learned in seqno order");
    uint32_t version = secret.version;
    Status added = secrets_.add(secret);
    COFFER_CHECK(added.ok(),
                 "a secret checked by secret_to_learn_locked must add: " + added.to_string());
    learned_.emplace_back(seqno, std::move(secret));
    spdlog::info("ledger.secret_learned seqno={} version={}", seqno, version);
}

void Ledger::forget_learned_after_locked(uint64_t last_kept) {
    if (learned_.empty() || learned_.back().first <= last_kept) {
        return;
    }
    while (!learned_.empty() && learned_.back().first > last_kept) {
        spdlog::warn("ledger.secret_forgotten seqno={} version={} reason=rollback",
                     learned_.back().first, learned_.back().second.version);
        Bytes& key = learned_.back().second.key;
        OPENSSL_cleanse(key.data(), key.size());
        learned_.pop_back();
    }

    LedgerSecrets rebuilt = base_secrets_;
    for (const auto& [seqno, secret] : learned_) {
        Status added = rebuilt.add(secret);
        COFFER_CHECK(added.ok(), "learned secrets stay above the base ones");
    }
    secrets_ = std::move(rebuilt);
}

std::vector<LedgerSecret> Ledger::learned_secrets(bool committed_only) const {
    std::lock_guard lock(mu_);
    std::vector<LedgerSecret> out;
    for (const auto& [seqno, secret] : learned_) {
        if (!committed_only || seqno <= committed_) {
            out.push_back(secret);
        }
    }
    return out;
}

uint32_t Ledger::newest_learned_version(bool committed_only) const {
    std::lock_guard lock(mu_);
    for (auto it = learned_.rbegin(); it != learned_.rend(); ++it) {
        if (!committed_only || it->first <= committed_) {
            return it->second.version;
        }
    }
    return 0;
}

Status Ledger::set_signature_interval(uint64_t entries, uint32_t interval_ms) {
    if (entries == 0 || interval_ms == 0) {
        return error(Errc::kInvalidArgument,
                     "the signature interval needs at least 1 entry and 1 ms");
    }
    std::lock_guard lock(mu_);
    signature_interval_entries_ = entries;
    signature_interval_ms_ = interval_ms;
    return Status::ok_status();
}

uint32_t Ledger::max_secret_version_used() const {
    std::lock_guard lock(mu_);
    return max_secret_version_used_;
}

uint64_t Ledger::last_seqno() const {
    std::lock_guard lock(mu_);
    return tree_.size();
}

uint64_t Ledger::durable_seqno() const {
    std::lock_guard lock(mu_);
    return chunks_->durable_seqno();
}

uint64_t Ledger::committed() const {
    std::lock_guard lock(mu_);
    return committed_;
}

Hash Ledger::root() const {
    std::lock_guard lock(mu_);
    return tree_.root();
}

Hash Ledger::root_at(uint64_t tree_size) const {
    std::lock_guard lock(mu_);
    return tree_.root_at(tree_size);
}

Result<Bytes> Ledger::entry_bytes(uint64_t seqno) const {
    std::lock_guard lock(mu_);
    return chunks_->read(seqno);
}

std::vector<std::string> Ledger::chunk_files() const {
    std::lock_guard lock(mu_);
    return chunks_->chunk_files();
}

}  // namespace coffer::ledger
