// Receipts: offline proof that an entry is in the ledger under a root signed by a node the
// service endorsed. JSON format, field by field: docs/formats/receipt.md.
//
// What a receipt proves, checked by verify_receipt with nothing but the service
// certificate: the entry header (hence view, seqno, secret version and part sizes) and the
// digests of its public and private parts are a leaf at index seqno - 1 of a Merkle tree
// whose root was signed, at signed_tx_id, by a node whose certificate the service issued.
// The verifier recomputes the leaf from the header and digests and never trusts a given
// leaf hash. With the public part included it also proves the public writes themselves.
//
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/x509.h"
#include "kv/tx_id.h"
#include "kv/write_set.h"
#include "ledger/entry.h"
#include "ledger/merkle.h"

namespace coffer::ledger {

constexpr int kReceiptVersion = 1;
// Bound on the JSON text parse_receipt accepts (a receipt with the largest public part is
// about 4/3 of kMaxEntryPublicSize).
constexpr size_t kMaxReceiptJsonSize = kMaxEntryPublicSize / 3 * 4 + 64 * 1024;

struct Receipt {
    kv::TxId tx_id;
    Bytes header;  // kEntryHeaderSize bytes, the entry header as on disk
    Hash public_digest{};
    std::optional<Bytes> public_part;  // only when asked for
    Hash private_digest{};
    uint64_t leaf_index = 0;
    uint64_t tree_size = 0;
    std::vector<Hash> path;
    Hash root{};
    Bytes signature;  // DER ECDSA P-384 over signature_message (ledger/signature.h)
    std::string node_id;
    std::string node_certificate_pem;
    kv::TxId signed_tx_id;  // the signature entry
};

// Compact JSON (docs/formats/receipt.md).
std::string receipt_to_json(const Receipt& receipt);

// Strict parser: every field present with its type (no unknown or duplicate fields; only
// "public_part" is optional), "version" == 1, hashes as 64 lower-case hex digits, the
// header as 64 lower-case hex digits, base64 canonical, the certificate a single canonical
// PEM block, node id 1..kMaxNodeIdSize bytes.
// Errors: kUnsupported for another version; kInvalidArgument naming the field otherwise.
Result<Receipt> parse_receipt(std::string_view json);

struct ReceiptVerification {
    kv::TxId tx_id;
    kv::TxId signed_at;
    Hash root{};
    EntryHeader header;
    bool is_signature_entry = false;
    std::string node_id;
    // The node certificate's validity period, reported rather than enforced: a receipt must
    // still verify after the certificate expires.
    int64_t node_cert_not_before_unix = 0;
    int64_t node_cert_not_after_unix = 0;
    bool public_part_checked = false;
};

// Verifies a receipt against the service certificate (see the top of this file for what it
// proves). Errors: kInvalidArgument for inconsistent fields (header vs tx id, indices vs
// tree size, public part vs digest or size); kCrypto for a path that does not lead to the
// signed root, a bad signature, or a node certificate the service did not issue.
Result<ReceiptVerification> verify_receipt(const Receipt& receipt,
                                           const crypto::Certificate& service_cert);

// The public write set carried in a receipt that includes its public part. Verify the
// receipt first: this only decodes. Errors: kFailedPrecondition when the receipt has no
// public part; parser errors otherwise.
Result<kv::WriteSet> receipt_public_write_set(const Receipt& receipt);

}  // namespace coffer::ledger
