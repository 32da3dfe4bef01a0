// Signature entries: the node's signed statement "the Merkle root of the first tree_size
// entries is root". Format, byte by byte: docs/formats/ledger-entry.md (section
// "Signature record").
//
// A signature entry is an ordinary ledger entry with header flag bit 0 set whose write set
// is exactly one write: map kSignaturesMap, key kSignatureKey, value = a serialized
// SignatureRecord. It signs all entries before it (tree_size = its own seqno - 1) and then
// becomes a leaf itself.
//
// Signed message (ECDSA P-384, SHA-384, DER):
//   "coffer-ledger-signature-v1" || u64 view || u64 seqno || u64 tree_size || root (32)
//   || u16 len || node_id
// all integers little-endian. The node id is part of the message so that a receipt cannot
// be re-labelled with another node's name.
//
// Everything here is a pure function and thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/ecdsa.h"
#include "crypto/x509.h"
#include "kv/tx_id.h"
#include "kv/write_set.h"
#include "ledger/merkle.h"

namespace coffer::ledger {

constexpr std::string_view kSignaturesMap = "public:coffer.signatures";
constexpr std::string_view kSignatureKey = "latest";
constexpr std::string_view kSignatureDomain = "coffer-ledger-signature-v1";
constexpr uint8_t kSignatureRecordVersion = 1;

constexpr size_t kMaxNodeIdSize = 256;
constexpr size_t kMaxNodeCertificateSize = 16 * 1024;

struct SignatureRecord {
    uint8_t version = kSignatureRecordVersion;
    uint64_t view = 0;       // of the signature entry itself
    uint64_t seqno = 0;      // of the signature entry itself
    uint64_t tree_size = 0;  // leaves covered: seqno - 1
    Hash root{};
    std::string node_id;
    Bytes node_certificate_der;
    Bytes signature;  // DER ECDSA P-384 over signature_message(...)
};

// The exact bytes that are signed (see above).
Bytes signature_message(uint64_t view, uint64_t seqno, uint64_t tree_size, const Hash& root,
                        std::string_view node_id);

// Builds and signs the record for a signature entry at (view, seqno) over `root` (the root of
// the first seqno - 1 leaves).
// Errors: kInvalidArgument for seqno < 2 (nothing to sign), an empty or oversized node id
// or certificate, or a key that does not match the certificate; kInternal if signing fails.
Result<SignatureRecord> make_signature_record(kv::TxId at, const Hash& root,
                                              std::string_view node_id,
                                              const crypto::Certificate& node_cert,
                                              const crypto::EcdsaPrivateKey& node_key);

// Serialized record: u8 version || u64 view || u64 seqno || u64 tree_size || root ||
// u16 len || node id || u32 len || certificate DER || u16 len || signature DER.
Bytes serialize_signature_record(const SignatureRecord& record);

// Strict: kUnsupported for another version; kCorrupt for wrong lengths, trailing bytes,
// lengths above their maxima, or tree_size != seqno - 1.
Result<SignatureRecord> parse_signature_record(ByteSpan data);

// The write set of a signature entry carrying `record`.
kv::WriteSet signature_write_set(const SignatureRecord& record);

// Extracts the record from a signature entry's public write set, which must hold exactly
// that one write. Errors: kCorrupt.
Result<SignatureRecord> signature_record_from_write_set(const kv::WriteSet& ws);

// True if the write set touches kSignaturesMap at all.
bool writes_signature_map(const kv::WriteSet& ws);

// Checks a record found in the entry `entry_id`: its view and seqno equal the entry's,
// tree_size = seqno - 1, the root equals `expected_root` (the verifier's own recomputation),
// the signature verifies with the embedded certificate's key, and, when `service_cert` is
// given, the certificate is issued by it (validity periods ignored: ledgers outlive them).
// Errors: kCorrupt for mismatched fields or roots; kCrypto for a bad signature or
// certificate.
Status verify_signature_record(const SignatureRecord& record, kv::TxId entry_id,
                               const Hash& expected_root,
                               const std::optional<crypto::Certificate>& service_cert);

}  // namespace coffer::ledger
