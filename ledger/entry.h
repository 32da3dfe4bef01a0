// The ledger entry codec: one committed transaction (or signature) as bytes on disk and on
// the wire. Format, byte by byte: docs/formats/ledger-entry.md.
//
//   entry = header (kEntryHeaderSize bytes) || public part || private part
//
// The public part is the write set of the public maps in clear. The private part is the
// AES-256-GCM ciphertext || tag of the private maps' write set under the ledger secret named
// in the header, with AAD = header || public part, and IV = u32 LE view || u64 LE seqno.
//
// Nonce rule: one (view, seqno) is sealed at most once per secret. A leader never writes two
// different entries at one (view, seqno); EntryEncoder enforces it in-process
// (COFFER_CHECK), and the node bumps its view on every restart (docs/ledger.md) so entries
// lost before a flush are never sealed again at the same IV. Followers never re-encrypt:
// they store the leader's bytes as they are.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <utility>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/aead.h"
#include "crypto/sha256.h"
#include "kv/tx_id.h"
#include "kv/write_set.h"
#include "ledger/secrets.h"

namespace coffer::ledger {

constexpr uint8_t kEntryFormatVersion = 1;
// Header flag bit 0: the entry is a signature entry (writes only public:coffer.signatures).
constexpr uint8_t kEntryFlagSignature = 0x01;
constexpr uint8_t kEntryKnownFlags = kEntryFlagSignature;

// u8 version, u8 flags, u16 reserved, u32 secret version, u64 view, u64 seqno,
// u32 public size, u32 private size.
constexpr size_t kEntryHeaderSize = 1 + 1 + 2 + 4 + 8 + 8 + 4 + 4;
static_assert(kEntryHeaderSize == 32, "the entry header is 32 bytes on disk");

constexpr size_t kEntryIvSize = crypto::kAesGcmStandardIvSize;
static_assert(kEntryIvSize == 4 + 8, "IV = u32 view || u64 seqno");

// Bounds on the two parts: a serialized write-set part is at most kv::kMaxWriteSetSize, and
// the private part adds the GCM tag. The whole entry is bounded more tightly: one write set
// is at most kv::kMaxWriteSetSize in total, and splitting it in two parts adds a few bytes of
// framing (kEntryPartsSlack covers them and the tag). The chunk store's own frame bound
// (kMaxEntrySize in ledger/chunk_store.h) is above kMaxEncodedEntrySize (static_assert in
// ledger.cc).
constexpr size_t kMaxEntryPublicSize = kv::kMaxWriteSetSize;
constexpr size_t kMaxEntryPrivateSize = kv::kMaxWriteSetSize + crypto::kAesGcmTagSize;
constexpr size_t kEntryPartsSlack = 1024;
constexpr size_t kMaxEncodedEntrySize = kEntryHeaderSize + kv::kMaxWriteSetSize + kEntryPartsSlack;

// The largest view an entry can carry: the IV holds it in 32 bits.
constexpr uint64_t kMaxEntryView = UINT32_MAX;

struct EntryHeader {
    uint8_t format_version = kEntryFormatVersion;
    uint8_t flags = 0;
    uint32_t secret_version = 0;
    uint64_t view = 0;
    uint64_t seqno = 0;
    uint32_t public_size = 0;
    uint32_t private_size = 0;

    bool is_signature() const { return (flags & kEntryFlagSignature) != 0; }
    kv::TxId tx_id() const { return kv::TxId{view, seqno}; }
};

// The fixed-size little-endian encoding of a header.
Bytes encode_entry_header(const EntryHeader& header);

// Parses exactly kEntryHeaderSize bytes. Strict: version 1, no unknown flag, reserved 0,
// seqno >= 1, view <= kMaxEntryView, part sizes within their maxima, and a non-empty
// private part at least one GCM tag long.
// Errors: kUnsupported (version), kCorrupt (anything else, with the reason).
Result<EntryHeader> parse_entry_header(ByteSpan bytes);

// A parsed entry: views into the bytes given to parse_entry (valid as long as they are).
struct DecodedEntry {
    EntryHeader header;
    ByteSpan header_bytes;
    ByteSpan public_part;
    ByteSpan private_part;  // ciphertext || tag; empty when the entry has no private writes

    kv::TxId tx_id() const { return header.tx_id(); }
};

// Splits an entry into its header and parts. Strict: the sizes in the header must add up to
// exactly the input size, at most kMaxEncodedEntrySize. Does not decrypt or parse the write
// sets. Errors: as parse_entry_header, plus kCorrupt "entry is N bytes, header says M".
Result<DecodedEntry> parse_entry(ByteSpan entry);

// The IV of the entry at (view, seqno): u32 LE view || u64 LE seqno. Needs view <=
// kMaxEntryView (COFFER_CHECK: callers validate first).
std::array<uint8_t, kEntryIvSize> entry_iv(uint64_t view, uint64_t seqno);

// The Merkle leaf of an entry (docs/formats/ledger-entry.md):
//   SHA-256(0x00 || header bytes || SHA-256(public part) || SHA-256(private part)).
crypto::Sha256Digest entry_leaf(const DecodedEntry& entry);
crypto::Sha256Digest entry_leaf_from_digests(ByteSpan header_bytes,
                                             const crypto::Sha256Digest& public_digest,
                                             const crypto::Sha256Digest& private_digest);

// The public write set (parsed strictly by kv::deserialize_write_set).
// Errors: kCorrupt or kUnsupported from the parser, with context.
Result<kv::WriteSet> decode_public_write_set(const DecodedEntry& entry);

// The private write set alone: decrypted with the secret of the header's version and parsed
// (empty when the entry has no private part). Errors as decode_write_set.
Result<kv::WriteSet> decode_private_write_set(const DecodedEntry& entry,
                                              const LedgerSecrets& secrets);

// The whole write set: public part parsed, private part decrypted with the secret of the
// header's version and parsed, then merged.
// Errors: kNotFound if the secret version is missing; kCrypto if the tag does not verify
// (wrong key, or any byte of header, public or private part changed); kCorrupt/kUnsupported
// from the parsers.
Result<kv::WriteSet> decode_write_set(const DecodedEntry& entry, const LedgerSecrets& secrets);

// Encodes entries for the leader. Remembers, per secret version, the last (view, seqno) it
// sealed and refuses (COFFER_CHECK, aborting the process) anything that is not strictly
// greater, so that no GCM nonce is ever reused under one key in this process.
//
// Keeps one expanded AesGcmKey per secret version. Thread-compatible: one caller at a time
// (the Ledger calls it under its lock).
class EntryEncoder {
  public:
    EntryEncoder() = default;
    EntryEncoder(EntryEncoder&&) noexcept = default;
    EntryEncoder& operator=(EntryEncoder&&) noexcept = default;

    // The entry for the write set `ws` committed at `id`, encrypted under `secret`.
    // Needs: id.seqno >= 1; the write set within kv limits. An empty private write set gives
    // private_size 0 and no ciphertext (nothing is sealed, so no nonce is used).
    // Errors: kInvalidArgument for id.view > kMaxEntryView, a seqno of 0, a malformed secret,
    // or an entry above kMaxEncodedEntrySize; kInternal if encryption fails.
    // Aborts (COFFER_CHECK) if (view, seqno) is not above the last one sealed under this
    // secret version, or if one version is seen with two different keys.
    Result<Bytes> encode(kv::TxId id, const kv::WriteSet& ws, const LedgerSecret& secret,
                         bool is_signature);

    // The last (view, seqno) sealed under `version`, or {0, 0}.
    kv::TxId last_sealed(uint32_t version) const;

  private:
    struct KeyState {
        KeyState(crypto::AesGcmKey k, Bytes raw) : key(std::move(k)), raw_key(std::move(raw)) {}
        ~KeyState();
        KeyState(KeyState&&) noexcept = default;
        KeyState& operator=(KeyState&&) noexcept = default;

        crypto::AesGcmKey key;
        Bytes raw_key;  // to detect one version used with two keys; wiped on destruction
        kv::TxId last_sealed;
    };

    Result<KeyState*> key_state(const LedgerSecret& secret);

    std::map<uint32_t, KeyState> keys_;
};

}  // namespace coffer::ledger
