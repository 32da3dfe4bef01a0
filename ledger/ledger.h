// The Ledger: the KV store's commit hook that turns every committed transaction into an
// encrypted, hashed, periodically signed entry in the chunk files, and reads them back.
// The model, replay, torn writes, the nonce rule and limits: docs/ledger.md.
//
// Ownership: a Ledger owns its ChunkStore, Merkle tree and EntryEncoder. The FileSystem and
// the kv::Store are borrowed and must outlive it; open() installs the ledger as the store's
// commit hook and the destructor removes it.
//
// Thread-safety: thread-safe. Store::commit may run on any thread (the store serialises it
// and calls on_commit under its commit lock); flush, maybe_sign, receipt and tx_status may
// be called concurrently with commits. Lock order: the store's commit lock, then the
// ledger's own lock; the ledger never calls into the store while holding its lock. rollback
// and append_replicated must not race with local commits (consensus calls them only when
// the node is not the leader).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/ecdsa.h"
#include "crypto/x509.h"
#include "kv/store.h"
#include "kv/tx_id.h"
#include "ledger/chunk_store.h"
#include "ledger/entry.h"
#include "ledger/file_system.h"
#include "ledger/merkle.h"
#include "ledger/receipt.h"
#include "ledger/secrets.h"
#include "ledger/signature.h"

namespace coffer::ledger {

// How often maybe_sign retries a signature that lost a race with another commit.
constexpr int kMaxSignAttempts = 16;
// The file in the ledger directory that records the highest view this node has used, so a
// restart never reuses a view (docs/ledger.md, "Nonce rule").
constexpr std::string_view kViewFileName = "coffer.view";

struct LedgerOptions {
    std::string dir;
    uint64_t chunk_size_bytes = 4 << 20;
    size_t max_batch_entries = 1024;
    uint32_t flush_interval_ms = 2;
    // A signature entry is due after this many entries or this many ms since the last one.
    uint64_t signature_interval_entries = 100;
    uint32_t signature_interval_ms = 100;
    std::string node_id;
    // The node's signing key and its certificate (endorsed by the service identity). Needed
    // to sign (maybe_sign/sign_now fail with kFailedPrecondition without them).
    std::optional<crypto::EcdsaPrivateKey> node_key;
    crypto::Certificate node_cert;
    // When set, open() and append_replicated() also check that every signature entry's node
    // certificate was issued by this service certificate.
    std::optional<crypto::Certificate> service_cert;
    // Signature entries up to this seqno are not checked against service_cert: they belong to
    // the service this one was recovered from (docs/recovery.md, "Identities").
    uint64_t service_cert_after_seqno = 0;
    // Single-node mode: flush() moves the commit point to the last durable signature entry.
    // Under consensus set it to false and call commit_to().
    bool commit_at_durable_signature = true;
    // What open() does with the entries after the last signature entry (docs/ledger.md,
    // "What a restart keeps"). false (the default): they are cut from the chunk files, never
    // replayed, with one WARN. Nothing authenticates them: a public-only entry carries no GCM
    // tag, so anyone with write access to the directory could have appended it, and the next
    // signature would sign over it. true keeps and replays them as before; only for a caller
    // that authenticates them some other way (consensus does not need it: an unsigned tail
    // was never counted towards a commit, and the leader resends it).
    bool keep_unsigned_tail = false;
    // Under consensus the view is the Raft term, which the caller sets on the store when this
    // node becomes leader (kv::Store::set_view). Then open() does not move to a new view and
    // rollback() does not bump it: a term has one leader, which only ever appends, so
    // (view, seqno) IVs stay unique without the single-node bumps (docs/ledger.md, "Nonce
    // rule"). Needs commit_at_durable_signature = false.
    bool views_from_consensus = false;
    // maybe_sign also signs when entries are unsigned and the last signature entry is already
    // committed. Under consensus this pipelines signatures: a lightly loaded leader signs
    // as soon as the previous signature committed (commit latency is then about one round
    // trip, not the interval), while a busy one signs at most once per commit round.
    bool sign_when_previous_committed = false;
    // Disaster recovery's first phase (docs/recovery.md, "Recovering"): open() verifies every
    // entry (chain, Merkle tree, signatures) but applies only the public part of each, because
    // the ledger secrets are not known yet; `secrets` may then be empty (add one with
    // add_secret() before committing anything). The private maps of the store stay empty, so
    // the caller must not serve private data from it; a later open() with the recovered
    // secrets replays the same files in full.
    bool public_only_replay = false;
    // Learns rekeyed ledger secrets in ledger order (docs/ledger.md, "Rekey"). Called with the
    // write set of every entry this ledger takes (on_commit before the entry is encoded,
    // append_replicated and replay after it was decrypted; not under public_only_replay, whose
    // private parts are unknown). A secret it returns becomes the newest once the entry is in
    // the ledger: the entry that carries it stays under the previous secret, the entries after
    // it use the new one. A version the ledger already holds with the same key changes
    // nothing. Runs under the ledger's lock, so it must not call into this Ledger or the
    // store. An error refuses the entry: nothing is encoded, applied or appended.
    std::function<Result<std::optional<LedgerSecret>>(const kv::WriteSet&)> secret_from_write_set;
    // Monotonic milliseconds (signature timer and chunk flush timer); empty: steady_clock.
    std::function<uint64_t()> now_ms;
};

enum class TxStatus { kUnknown, kPending, kCommitted, kInvalid };
std::string_view tx_status_name(TxStatus status);

class Ledger final : public kv::CommitHook {
  public:
    // Opens (or creates) the ledger in options.dir and replays it into `store`, which must be
    // empty (current() == 0.0). ChunkStore::open repairs a torn tail (one WARN). Unless
    // options.keep_unsigned_tail, the entries after the last signature entry are cut from
    // the chunk files first (one WARN "ledger.unsigned_tail_discarded"), so they are never
    // replayed, signed over, or counted in the tree. Every remaining entry is re-verified
    // (EntryChainVerifier, ledger/verify.h), decrypted with `secrets` and applied with
    // Store::apply. The store's view is then set above every view this ledger has used (entries and
    // the view file), so new entries never reuse an IV. In single-node mode the commit point
    // becomes the last signature entry. `secrets` is copied; add rekeyed versions with
    // add_secret(). Errors: kFailedPrecondition (store not empty), kUnsupported (ledger starting
    // after a snapshot), kCorrupt/kCrypto/kNotFound with "entry <seqno> (<file> at offset <n>):
    // ...", kIo/kNoSpace from storage, kInvalidArgument for bad options.
    static Result<std::unique_ptr<Ledger>> open(FileSystem& fs, LedgerOptions options,
                                                kv::Store& store, const LedgerSecrets& secrets);

    ~Ledger() override;
    Ledger(const Ledger&) = delete;
    Ledger& operator=(const Ledger&) = delete;

    // kv::CommitHook: encodes the entry under the current ledger secret, buffers it in the
    // chunk store and appends its leaf. Refuses (nothing changes): writes to
    // public:coffer.signatures other than the ledger's own signature (kPermissionDenied), a
    // seqno out of order (kFailedPrecondition), too many unflushed entries or bytes
    // (kResourceExhausted: flush first), and everything after a storage failure.
    Status on_commit(kv::TxId id, const kv::WriteSet& ws) override;

    // Emits a signature entry if signature_interval_entries entries or signature_interval_ms
    // have passed since the last one (and at least one entry is unsigned). Errors as
    // sign_now().
    Status maybe_sign();
    // Emits a signature entry now: a transaction writing public:coffer.signatures committed
    // through the store, so it takes the next seqno. Signs the root of every entry before it.
    // Errors: kFailedPrecondition (no node key/certificate, empty ledger, failed ledger),
    // kConflict (lost kMaxSignAttempts races), commit errors.
    Status sign_now();

    // Group commit: writes and syncs the buffered entries; returns the durable seqno. In
    // single-node mode it then commits up to the last durable signature entry. On kNoSpace
    // the entries that did not reach the disk are rolled back from the tree and the store,
    // and the view is bumped (their IVs are spent). Errors: kIo (the ledger is FAILED and
    // refuses writes until reopened), kNoSpace.
    Result<uint64_t> flush();
    // True when the chunk store's batch is full or its flush interval passed.
    bool flush_due() const;

    // Moves the commit point to `seqno` (consensus mode): it must be a signature entry at or
    // below the durable seqno, and not below committed(). Errors: kFailedPrecondition.
    Status commit_to(uint64_t seqno);

    // Entries received from the leader (follower path): parses and verifies `entry_bytes`
    // as open() does (a signature entry must sign this node's own recomputed root), decrypts
    // it, applies it to the store and appends the exact bytes, so every node's ledger is
    // byte-identical. Never re-encrypts. Errors: kFailedPrecondition (seqno not next),
    // kCorrupt/kCrypto/kNotFound (bad entry), storage errors.
    Status append_replicated(ByteSpan entry_bytes);

    // Discards every entry after `last_kept` from the store, the chunk files and the tree,
    // and bumps the store's view (the discarded entries spent their IVs in the current view).
    // Errors: kFailedPrecondition (last_kept below committed()), kInvalidArgument (beyond the
    // end), storage errors (the ledger is then FAILED).
    Status rollback(uint64_t last_kept);

    // A receipt for the committed entry `seqno`, signed by the first signature entry after
    // it. Errors: kNotFound (no such entry), kFailedPrecondition "pending" (not committed
    // yet, or no committed signature covers it: a signature entry is covered by the next
    // one), storage errors.
    Result<Receipt> receipt(uint64_t seqno, bool include_public_part) const;

    // Status of a transaction id (DESIGN.md): Committed/Pending when an entry at that seqno
    // has that view; Invalid when the seqno holds another view and the id's view can no
    // longer produce it (committed, or a later view took over); Unknown otherwise.
    TxStatus tx_status(kv::TxId id) const;

    // Adds a rekeyed ledger secret; new entries use the newest version. A secret added here is
    // kept by rollback(), and so are those learned before it. Errors as LedgerSecrets::add.
    Status add_secret(LedgerSecret secret);

    // The secrets learned through options.secret_from_write_set that the ledger still holds,
    // oldest first; with committed_only, only those whose entry is at or below committed().
    // rollback() forgets the secrets of the entries it discards. Key material: the caller
    // wipes the copies.
    std::vector<LedgerSecret> learned_secrets(bool committed_only) const;
    // The newest learned version (0 when none); with committed_only, among those whose entry
    // is committed. Cheap: callers poll it to notice a rekey.
    uint32_t newest_learned_version(bool committed_only) const;

    // Replaces the signature interval of options (a signature entry is due after `entries`
    // entries or `interval_ms` ms). Takes effect at the next maybe_sign. Errors:
    // kInvalidArgument for 0 in either.
    Status set_signature_interval(uint64_t entries, uint32_t interval_ms);

    // The highest ledger secret version named by any entry of this ledger (0 when none):
    // a secret made for new entries after a public-only replay must be above it.
    uint32_t max_secret_version_used() const;

    uint64_t last_seqno() const;
    uint64_t durable_seqno() const;
    uint64_t committed() const;
    Hash root() const;  // root of all entries; needs last_seqno() >= 1
    // The Merkle root over the first `tree_size` entries. Needs 1 <= tree_size <= last_seqno().
    Hash root_at(uint64_t tree_size) const;
    // The exact bytes of entry `seqno`. Errors: kNotFound, kCorrupt, kIo.
    Result<Bytes> entry_bytes(uint64_t seqno) const;
    // Paths of the chunk files, oldest first.
    std::vector<std::string> chunk_files() const;

  private:
    Ledger(FileSystem& fs, LedgerOptions options, kv::Store& store, LedgerSecrets secrets);

    // sign_now's work; needs sign_mu_ held.
    Status sign_locked();
    Status replay();
    Status start_after_replay();
    Result<uint64_t> read_view_file();
    Status persist_view_locked(uint64_t view);
    Status check_writable_locked() const;
    Status check_own_signature_locked(kv::TxId id, const kv::WriteSet& ws) const;
    void record_appended_locked(const DecodedEntry& entry, const Hash& leaf, size_t size_bytes);
    void truncate_state_locked(uint64_t last_kept);
    // Rolls the store back to `last_kept` and bumps its view. Called with mu_ held and
    // rolling_back_ set; releases mu_ around the store calls (lock order) and returns with
    // it held again and rolling_back_ cleared.
    Status drop_store_tail(uint64_t last_kept);
    std::optional<uint64_t> commit_candidate_locked(uint64_t durable) const;
    Status advance_commit(uint64_t seqno);
    uint64_t view_of_locked(uint64_t seqno) const;
    uint64_t now_ms() const;
    // The secret options.secret_from_write_set finds in `ws` that the ledger does not hold
    // yet, checked so that learn_secret_locked cannot fail. Errors: the hook's; kCorrupt for
    // a version held with another key or not above every held one; kInvalidArgument for a
    // key of the wrong size; kResourceExhausted past kMaxLedgerSecrets.
    Result<std::optional<LedgerSecret>> secret_to_learn_locked(const kv::WriteSet& ws) const;
    void learn_secret_locked(uint64_t seqno, LedgerSecret secret);
    // Forgets the secrets learned from entries after `last_kept`.
    void forget_learned_after_locked(uint64_t last_kept);

    FileSystem& fs_;
    const LedgerOptions options_;
    kv::Store& store_;

    mutable std::mutex sign_mu_;   // one signature at a time; taken before mu_
    mutable std::mutex flush_mu_;  // one flush or commit_to at a time; taken before mu_
    mutable std::mutex mu_;        // guards everything below
    LedgerSecrets secrets_;
    // The secrets given to open() and add_secret(); secrets_ is these plus learned_.
    LedgerSecrets base_secrets_;
    // (seqno of the entry that carried it, secret), in seqno and version order; every version
    // is above every one of base_secrets_.
    std::vector<std::pair<uint64_t, LedgerSecret>> learned_;
    uint64_t signature_interval_entries_ = 0;
    uint32_t signature_interval_ms_ = 0;
    std::unique_ptr<ChunkStore> chunks_;
    MerkleTree tree_;
    EntryEncoder encoder_;
    std::vector<std::pair<uint64_t, uint64_t>> view_starts_;  // (first seqno, view)
    std::vector<uint64_t> signatures_;                        // signature entry seqnos
    uint32_t max_secret_version_used_ = 0;
    uint64_t committed_ = 0;
    uint64_t last_signature_ms_ = 0;
    uint64_t persisted_view_ = 0;  // the view recorded in kViewFileName
    // Unflushed entries (seqno, frame bytes), to stay within the chunk store's limits
    // before an IV is spent.
    std::vector<std::pair<uint64_t, uint64_t>> unflushed_;
    uint64_t unflushed_bytes_ = 0;
    // The signature entry the ledger is committing right now (only it may write the
    // signatures map).
    std::optional<kv::TxId> pending_signature_id_;
    Bytes pending_signature_value_;
    bool rolling_back_ = false;
    Status failed_;  // set after a storage failure; every write is refused
};

}  // namespace coffer::ledger
