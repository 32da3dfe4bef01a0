#include "ledger/signature.h"

#include <algorithm>
#include <string>
#include <utility>

#include "common/check.h"

namespace coffer::ledger {

namespace {

Status corrupt(std::string message) {
    return error(Errc::kCorrupt, "signature record: " + std::move(message));
}

Bytes signature_key_bytes() {
    return to_bytes(kSignatureKey);
}

}  // namespace

Bytes signature_message(uint64_t view, uint64_t seqno, uint64_t tree_size, const Hash& root,
                        std::string_view node_id) {
    COFFER_CHECK(node_id.size() <= kMaxNodeIdSize, "node id above its maximum");
    Bytes msg = to_bytes(kSignatureDomain);
    put_u64(msg, view);
    put_u64(msg, seqno);
    put_u64(msg, tree_size);
    put_bytes(msg, root);
    put_u16(msg, static_cast<uint16_t>(node_id.size()));
    put_bytes(msg, as_bytes(node_id));
    return msg;
}

Result<SignatureRecord> make_signature_record(kv::TxId at, const Hash& root,
                                              std::string_view node_id,
                                              const crypto::Certificate& node_cert,
                                              const crypto::EcdsaPrivateKey& node_key) {
    if (at.seqno < 2) {
        return error(Errc::kInvalidArgument,
                     "a signature entry needs at least one entry before it");
    }
    if (node_id.empty() || node_id.size() > kMaxNodeIdSize) {
        return error(Errc::kInvalidArgument, "node id must be 1 to 256 bytes");
    }
    if (node_cert.empty()) {
        return error(Errc::kInvalidArgument, "node certificate is missing");
    }
    Bytes der = node_cert.der();
    if (der.size() > kMaxNodeCertificateSize) {
        return error(Errc::kInvalidArgument, "node certificate above its maximum size");
    }
    COFFER_ASSIGN_OR_RETURN(crypto::EcdsaPublicKey cert_key, node_cert.ecdsa_public_key());
    if (!(cert_key == node_key.public_key())) {
        return error(Errc::kInvalidArgument, "node key does not match the node certificate");
    }

    SignatureRecord r;
    r.view = at.view;
    r.seqno = at.seqno;
    r.tree_size = at.seqno - 1;
    r.root = root;
    r.node_id = std::string(node_id);
    r.node_certificate_der = std::move(der);
    auto sig = node_key.sign(signature_message(r.view, r.seqno, r.tree_size, r.root, r.node_id));
    if (!sig.ok()) {
        return error(Errc::kInternal, "signing the ledger root failed: " + sig.status().message());
    }
    r.signature = std::move(sig).value();
    return r;
}

Bytes serialize_signature_record(const SignatureRecord& record) {
    COFFER_CHECK(record.node_id.size() <= kMaxNodeIdSize, "node id size");
    COFFER_CHECK(record.node_certificate_der.size() <= kMaxNodeCertificateSize, "cert size");
    COFFER_CHECK(record.signature.size() <= crypto::kP384MaxDerSignatureSize, "signature size");
    Bytes out;
    out.push_back(record.version);
    put_u64(out, record.view);
    put_u64(out, record.seqno);
    put_u64(out, record.tree_size);
    put_bytes(out, record.root);
    put_u16(out, static_cast<uint16_t>(record.node_id.size()));
    put_bytes(out, as_bytes(record.node_id));
    put_u32(out, static_cast<uint32_t>(record.node_certificate_der.size()));
    put_bytes(out, record.node_certificate_der);
    put_u16(out, static_cast<uint16_t>(record.signature.size()));
    put_bytes(out, record.signature);
    return out;
}

Result<SignatureRecord> parse_signature_record(ByteSpan data) {
    ByteReader r(data);
    SignatureRecord rec;
    if (!r.read_u8(rec.version)) {
        return corrupt("empty");
    }
    if (rec.version != kSignatureRecordVersion) {
        return error(Errc::kUnsupported, "signature record version " + std::to_string(rec.version));
    }
    ByteSpan root;
    uint16_t id_len = 0;
    uint32_t cert_len = 0;
    uint16_t sig_len = 0;
    ByteSpan id;
    r.read_u64(rec.view);
    r.read_u64(rec.seqno);
    r.read_u64(rec.tree_size);
    r.read_span(rec.root.size(), root);
    r.read_u16(id_len);
    if (r.ok() && (id_len == 0 || id_len > kMaxNodeIdSize)) {
        return corrupt("node id length " + std::to_string(id_len) + " out of range");
    }
    r.read_span(id_len, id);
    r.read_u32(cert_len);
    if (r.ok() && cert_len > kMaxNodeCertificateSize) {
        return corrupt("certificate length " + std::to_string(cert_len) + " above maximum");
    }
    r.read_bytes(cert_len, rec.node_certificate_der);
    r.read_u16(sig_len);
    if (r.ok() && sig_len > crypto::kP384MaxDerSignatureSize) {
        return corrupt("signature length " + std::to_string(sig_len) + " above maximum");
    }
    r.read_bytes(sig_len, rec.signature);
    if (!r.ok()) {
        return corrupt("truncated at byte " + std::to_string(r.offset()));
    }
    if (!r.at_end()) {
        return corrupt(std::to_string(r.remaining()) + " trailing bytes");
    }
    if (rec.seqno < 2 || rec.tree_size != rec.seqno - 1) {
        return corrupt("tree size " + std::to_string(rec.tree_size) +
                       " does not cover exactly the entries before seqno " +
                       std::to_string(rec.seqno));
    }
    std::copy(root.begin(), root.end(), rec.root.begin());
    rec.node_id = to_string(id);
    return rec;
}

kv::WriteSet signature_write_set(const SignatureRecord& record) {
    kv::WriteSet ws;
    ws.maps[std::string(kSignaturesMap)][signature_key_bytes()] =
        serialize_signature_record(record);
    return ws;
}

bool writes_signature_map(const kv::WriteSet& ws) {
    auto it = ws.maps.find(std::string(kSignaturesMap));
    return it != ws.maps.end() && !it->second.empty();
}

Result<SignatureRecord> signature_record_from_write_set(const kv::WriteSet& ws) {
    if (ws.maps.size() != 1 || !writes_signature_map(ws)) {
        return corrupt("a signature entry must write only " + std::string(kSignaturesMap));
    }
    const auto& entries = ws.maps.begin()->second;
    if (entries.size() != 1 || entries.begin()->first != signature_key_bytes() ||
        !entries.begin()->second.has_value()) {
        return corrupt("a signature entry must write exactly the key \"" +
                       std::string(kSignatureKey) + "\"");
    }
    return parse_signature_record(*entries.begin()->second);
}

Status verify_signature_record(const SignatureRecord& record, kv::TxId entry_id,
                               const Hash& expected_root,
                               const std::optional<crypto::Certificate>& service_cert) {
    if (record.view != entry_id.view || record.seqno != entry_id.seqno) {
        return corrupt("names tx " + kv::TxId{record.view, record.seqno}.to_string() +
                       " but sits in entry " + entry_id.to_string());
    }
    if (record.tree_size != entry_id.seqno - 1) {
        return corrupt("tree size does not cover the entries before it");
    }
    if (!constant_time_equal(record.root, expected_root)) {
        return corrupt("signed root " + to_hex(record.root) + " differs from the recomputed " +
                       to_hex(expected_root));
    }
    auto cert = crypto::Certificate::from_der(record.node_certificate_der);
    if (!cert.ok()) {
        return error(Errc::kCrypto, "signature record: node certificate does not parse");
    }
    auto key = cert->ecdsa_public_key();
    if (!key.ok()) {
        return error(Errc::kCrypto, "signature record: node certificate key is not P-384");
    }
    Bytes msg =
        signature_message(record.view, record.seqno, record.tree_size, record.root, record.node_id);
    if (!key->verify(msg, record.signature).ok()) {
        return error(Errc::kCrypto, "signature record: signature does not verify");
    }
    if (service_cert.has_value()) {
        auto chain = crypto::verify_certificate_chain(*cert, {}, *service_cert, std::nullopt);
        if (!chain.ok()) {
            return chain.with_context("signature record: node certificate: ");
        }
    }
    return Status::ok_status();
}

}  // namespace coffer::ledger
