#include "ledger/receipt.h"

#include <nlohmann/json.hpp>

#include <set>
#include <string>
#include <utility>

#include "crypto/encoding.h"
#include "ledger/signature.h"

namespace coffer::ledger {

namespace {

using Json = nlohmann::json;

constexpr const char* kKnownFields[] = {
    "version",        "tx_id",      "header",           "public_digest", "public_part",
    "private_digest", "leaf_index", "tree_size",        "path",          "root",
    "signature",      "node_id",    "node_certificate", "signed_tx_id"};

Status bad_field(std::string_view field, std::string_view problem) {
    return error(Errc::kInvalidArgument,
                 "receipt field \"" + std::string(field) + "\": " + std::string(problem));
}

// Strict lower-case hex of exactly `size` bytes: one receipt has one serialization of
// every hash, so no byte of it can change without changing what it says.
Result<Bytes> strict_hex(const Json& j, std::string_view field, size_t size) {
    if (!j.is_string()) {
        return bad_field(field, "must be a string");
    }
    const auto& s = j.get_ref<const std::string&>();
    if (s.size() != 2 * size) {
        return bad_field(field, "must be " + std::to_string(2 * size) + " hex digits");
    }
    for (char c : s) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return bad_field(field, "must be lower-case hex");
        }
    }
    return from_hex(s);
}

Result<Hash> strict_hash(const Json& j, std::string_view field) {
    COFFER_ASSIGN_OR_RETURN(Bytes b, strict_hex(j, field, crypto::kSha256Size));
    Hash h{};
    std::copy(b.begin(), b.end(), h.begin());
    return h;
}

Result<kv::TxId> strict_tx_id(const Json& j, std::string_view field) {
    if (!j.is_string()) {
        return bad_field(field, "must be a string \"view.seqno\"");
    }
    auto id = kv::TxId::parse(j.get_ref<const std::string&>());
    if (!id.ok()) {
        return bad_field(field, "must be \"view.seqno\"");
    }
    return id;
}

Result<uint64_t> strict_unsigned(const Json& j, std::string_view field) {
    if (!j.is_number_unsigned()) {
        return bad_field(field, "must be a non-negative integer");
    }
    return j.get<uint64_t>();
}

Result<Bytes> strict_base64(const Json& j, std::string_view field) {
    if (!j.is_string()) {
        return bad_field(field, "must be a base64 string");
    }
    auto b = crypto::base64_decode(j.get_ref<const std::string&>());
    if (!b.ok()) {
        return bad_field(field, "must be canonical base64");
    }
    return b;
}

Result<std::string> strict_certificate(const Json& j, std::string_view field) {
    if (!j.is_string()) {
        return bad_field(field, "must be a PEM string");
    }
    const auto& pem = j.get_ref<const std::string&>();
    auto cert = crypto::Certificate::from_pem(pem);
    if (!cert.ok() || cert->to_pem() != pem) {
        return bad_field(field, "must be exactly one canonical PEM certificate");
    }
    return pem;
}

// Parses with a callback that refuses duplicate object keys (nlohmann keeps the last one,
// which would let a second copy of a field override the first).
Result<Json> parse_json_no_duplicates(std::string_view text) {
    std::vector<std::set<std::string>> open_objects;
    bool duplicate = false;
    auto callback = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
        if (event == Json::parse_event_t::object_start) {
            open_objects.emplace_back();
        } else if (event == Json::parse_event_t::object_end && !open_objects.empty()) {
            open_objects.pop_back();
        } else if (event == Json::parse_event_t::key && !open_objects.empty()) {
            duplicate = duplicate || !open_objects.back().insert(parsed.get<std::string>()).second;
        }
        return true;
    };
    Json j = Json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
        return error(Errc::kInvalidArgument, "receipt is not valid JSON");
    }
    if (duplicate) {
        return error(Errc::kInvalidArgument, "receipt has a duplicate field");
    }
    return j;
}

Status check_fields(const Json& j) {
    if (!j.is_object()) {
        return error(Errc::kInvalidArgument, "receipt must be a JSON object");
    }
    for (const auto& [key, value] : j.items()) {
        bool known = false;
        for (const char* f : kKnownFields) {
            known = known || key == f;
        }
        if (!known) {
            return bad_field(key, "unknown field");
        }
    }
    for (const char* f : kKnownFields) {
        if (std::string_view(f) != "public_part" && !j.contains(f)) {
            return bad_field(f, "missing");
        }
    }
    const Json& version = j.at("version");
    if (!version.is_number_unsigned()) {
        return bad_field("version", "must be an integer");
    }
    if (version.get<uint64_t>() != kReceiptVersion) {
        return error(Errc::kUnsupported,
                     "receipt version " + version.dump() + " (this build reads version 1)");
    }
    return Status::ok_status();
}

Result<std::vector<Hash>> parse_path(const Json& j) {
    if (!j.is_array()) {
        return bad_field("path", "must be an array");
    }
    if (j.size() > kMaxInclusionPathLength) {
        return bad_field("path", "has more than 64 hashes");
    }
    std::vector<Hash> path;
    for (const Json& h : j) {
        COFFER_ASSIGN_OR_RETURN(Hash step, strict_hash(h, "path"));
        path.push_back(step);
    }
    return path;
}

}  // namespace

std::string receipt_to_json(const Receipt& receipt) {
    Json path = Json::array();
    for (const Hash& h : receipt.path) {
        path.push_back(to_hex(h));
    }
    Json j = {
        {"version", kReceiptVersion},
        {"tx_id", receipt.tx_id.to_string()},
        {"header", to_hex(receipt.header)},
        {"public_digest", to_hex(receipt.public_digest)},
        {"private_digest", to_hex(receipt.private_digest)},
        {"leaf_index", receipt.leaf_index},
        {"tree_size", receipt.tree_size},
        {"path", std::move(path)},
        {"root", to_hex(receipt.root)},
        {"signature", crypto::base64_encode(receipt.signature)},
        {"node_id", receipt.node_id},
        {"node_certificate", receipt.node_certificate_pem},
        {"signed_tx_id", receipt.signed_tx_id.to_string()},
    };
    if (receipt.public_part.has_value()) {
        j["public_part"] = crypto::base64_encode(*receipt.public_part);
    }
    return j.dump();
}

Result<Receipt> parse_receipt(std::string_view json) {
    if (json.size() > kMaxReceiptJsonSize) {
        return error(Errc::kInvalidArgument, "receipt is larger than its maximum size");
    }
    COFFER_ASSIGN_OR_RETURN(Json j, parse_json_no_duplicates(json));
    COFFER_RETURN_IF_ERROR(check_fields(j));

    Receipt r;
    COFFER_ASSIGN_OR_RETURN(r.tx_id, strict_tx_id(j.at("tx_id"), "tx_id"));
    COFFER_ASSIGN_OR_RETURN(r.header, strict_hex(j.at("header"), "header", kEntryHeaderSize));
    COFFER_ASSIGN_OR_RETURN(r.public_digest, strict_hash(j.at("public_digest"), "public_digest"));
    COFFER_ASSIGN_OR_RETURN(r.private_digest,
                            strict_hash(j.at("private_digest"), "private_digest"));
    if (j.contains("public_part")) {
        COFFER_ASSIGN_OR_RETURN(r.public_part, strict_base64(j.at("public_part"), "public_part"));
    }
    COFFER_ASSIGN_OR_RETURN(r.leaf_index, strict_unsigned(j.at("leaf_index"), "leaf_index"));
    COFFER_ASSIGN_OR_RETURN(r.tree_size, strict_unsigned(j.at("tree_size"), "tree_size"));
    COFFER_ASSIGN_OR_RETURN(r.path, parse_path(j.at("path")));
    COFFER_ASSIGN_OR_RETURN(r.root, strict_hash(j.at("root"), "root"));
    COFFER_ASSIGN_OR_RETURN(r.signature, strict_base64(j.at("signature"), "signature"));
    if (r.signature.empty() || r.signature.size() > crypto::kP384MaxDerSignatureSize) {
        return bad_field("signature", "has the wrong size for a P-384 DER signature");
    }
    const Json& node_id = j.at("node_id");
    if (!node_id.is_string() || node_id.get_ref<const std::string&>().empty() ||
        node_id.get_ref<const std::string&>().size() > kMaxNodeIdSize) {
        return bad_field("node_id", "must be a string of 1 to 256 bytes");
    }
    r.node_id = node_id.get<std::string>();
    COFFER_ASSIGN_OR_RETURN(r.node_certificate_pem,
                            strict_certificate(j.at("node_certificate"), "node_certificate"));
    COFFER_ASSIGN_OR_RETURN(r.signed_tx_id, strict_tx_id(j.at("signed_tx_id"), "signed_tx_id"));
    return r;
}

namespace {

Status invalid(std::string message) {
    return error(Errc::kInvalidArgument, "receipt: " + std::move(message));
}

// The checks that need no cryptography: header against tx id, indices against sizes, the
// public part against its digest. Returns the parsed header.
Result<EntryHeader> check_receipt_structure(const Receipt& r, bool* public_checked) {
    auto header = parse_entry_header(r.header);
    if (!header.ok()) {
        return invalid("header: " + header.status().message());
    }
    if (header->tx_id() != r.tx_id) {
        return invalid("header names " + header->tx_id().to_string() + ", receipt claims " +
                       r.tx_id.to_string());
    }
    if (r.leaf_index != r.tx_id.seqno - 1) {
        return invalid("leaf index must be seqno - 1");
    }
    if (r.signed_tx_id.seqno < 2 || r.tree_size != r.signed_tx_id.seqno - 1) {
        return invalid("tree size must be the signature entry's seqno - 1");
    }
    if (r.leaf_index >= r.tree_size) {
        return invalid("tree size does not cover the leaf");
    }
    if (header->private_size == 0 && r.private_digest != crypto::sha256({})) {
        return invalid("private digest must be SHA-256 of nothing for an empty private part");
    }
    *public_checked = false;
    if (r.public_part.has_value()) {
        if (r.public_part->size() != header->public_size ||
            crypto::sha256(*r.public_part) != r.public_digest) {
            return invalid("public part does not match its size or digest");
        }
        *public_checked = true;
    }
    return header;
}

}  // namespace

Result<ReceiptVerification> verify_receipt(const Receipt& receipt,
                                           const crypto::Certificate& service_cert) {
    ReceiptVerification v;
    COFFER_ASSIGN_OR_RETURN(v.header, check_receipt_structure(receipt, &v.public_part_checked));

    Hash leaf =
        entry_leaf_from_digests(receipt.header, receipt.public_digest, receipt.private_digest);
    auto root =
        MerkleTree::root_from_path(leaf, receipt.leaf_index, receipt.tree_size, receipt.path);
    if (!root.ok()) {
        return error(Errc::kCrypto, "receipt: " + root.status().message());
    }
    if (!constant_time_equal(*root, receipt.root)) {
        return error(Errc::kCrypto, "receipt: the inclusion path does not lead to the root");
    }

    auto cert = crypto::Certificate::from_pem(receipt.node_certificate_pem);
    if (!cert.ok()) {
        return error(Errc::kInvalidArgument, "receipt: node certificate does not parse");
    }
    auto chain = crypto::verify_certificate_chain(*cert, {}, service_cert, std::nullopt);
    if (!chain.ok()) {
        return chain.with_context("receipt: node certificate not issued by the service: ");
    }
    auto key = cert->ecdsa_public_key();
    if (!key.ok()) {
        return error(Errc::kCrypto, "receipt: node certificate key is not P-384");
    }
    Bytes msg = signature_message(receipt.signed_tx_id.view, receipt.signed_tx_id.seqno,
                                  receipt.tree_size, receipt.root, receipt.node_id);
    if (!key->verify(msg, receipt.signature).ok()) {
        return error(Errc::kCrypto, "receipt: signature over the root does not verify");
    }

    v.tx_id = receipt.tx_id;
    v.signed_at = receipt.signed_tx_id;
    v.root = receipt.root;
    v.is_signature_entry = v.header.is_signature();
    v.node_id = receipt.node_id;
    v.node_cert_not_before_unix = cert->not_before_unix();
    v.node_cert_not_after_unix = cert->not_after_unix();
    return v;
}

Result<kv::WriteSet> receipt_public_write_set(const Receipt& receipt) {
    if (!receipt.public_part.has_value()) {
        return error(Errc::kFailedPrecondition, "receipt does not include the public part");
    }
    return kv::deserialize_write_set(*receipt.public_part, kv::Visibility::kPublic);
}

}  // namespace coffer::ledger
