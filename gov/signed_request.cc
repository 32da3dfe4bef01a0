#include "gov/signed_request.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "crypto/sha256.h"
#include "gov/cbor_util.h"

namespace coffer::gov {
namespace {

using detail::CborItemPtr;
using detail::CborWriter;

// The fields of the protected header, in the order of the error messages.
enum class Field { kAlg, kKid, kType, kCreatedAt, kProposalId, kService, kCount };

constexpr std::array<std::string_view, static_cast<size_t>(Field::kCount)> kFieldNames = {
    "alg (1)", "kid (4)", kHeaderMsgType, kHeaderCreatedAt, kHeaderProposalId, kHeaderService};

// The ES384 label as CBOR negint argument: -35 = -1 - 34.
constexpr uint64_t kEs384NegintArgument = 34;
constexpr size_t kCoseSign1Elements = 4;
// The deterministic head of CBOR tag 18: major type 6 with the argument in the initial byte.
constexpr uint8_t kCoseSign1TagByte = 0xc0 | kCoseSign1Tag;
// Error messages quote at most this many characters of an unknown text label.
constexpr size_t kMaxQuotedLabelChars = 64;

Status invalid(std::string message) {
    return error(Errc::kInvalidArgument, "signed request: " + std::move(message));
}

std::string_view field_name(Field f) {
    return kFieldNames[static_cast<size_t>(f)];
}

bool is_known_type(std::string_view type) {
    return std::find(kSignedRequestTypes.begin(), kSignedRequestTypes.end(), type) !=
           kSignedRequestTypes.end();
}

bool type_needs_proposal_id(std::string_view type) {
    return type == "ballot" || type == "withdrawal";
}

bool is_lower_hex(std::string_view s) {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string type_list() {
    std::string out;
    for (std::string_view t : kSignedRequestTypes) {
        out += (out.empty() ? "" : ", ") + std::string(t);
    }
    return out;
}

// A text label as it may appear in an error message: printable ASCII only, bounded.
std::string quote_label(std::string_view label) {
    bool printable =
        std::all_of(label.begin(), label.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
    if (!printable) {
        return "(a non-printable text label)";
    }
    if (label.size() > kMaxQuotedLabelChars) {
        return "\"" + std::string(label.substr(0, kMaxQuotedLabelChars)) + "...\"";
    }
    return "\"" + std::string(label) + "\"";
}

Bytes bstr_value(const cbor_item_t* item) {
    size_t n = cbor_bytestring_length(item);
    const uint8_t* p = cbor_bytestring_handle(item);
    return n == 0 ? Bytes{} : Bytes(p, p + n);
}

std::string tstr_value(const cbor_item_t* item) {
    size_t n = cbor_string_length(item);
    const uint8_t* p = cbor_string_handle(item);
    return n == 0 ? std::string{} : std::string(p, p + n);
}

bool is_definite_bstr(const cbor_item_t* item) {
    return cbor_isa_bytestring(item) && cbor_bytestring_is_definite(item);
}

bool is_definite_tstr(const cbor_item_t* item) {
    return cbor_isa_string(item) && cbor_string_is_definite(item);
}

Bytes encode_envelope(ByteSpan protected_bytes, ByteSpan payload, ByteSpan signature) {
    CborWriter w;
    w.tag(kCoseSign1Tag);
    w.array_head(kCoseSign1Elements);
    w.bstr(protected_bytes);
    w.map_head(0);
    w.bstr(payload);
    w.bstr(signature);
    return w.take();
}

// The low-S form of a P1363 signature: OpenSSL signs with either s, and the verifier
// accepts only s <= n/2 (one signature, one encoding).
Result<Bytes> to_low_s(const Bytes& raw) {
    COFFER_ASSIGN_OR_RETURN(Bytes der, crypto::ecdsa_p1363_to_der(raw));
    if (crypto::ecdsa_signature_is_low_s(der)) {
        return raw;
    }
    COFFER_ASSIGN_OR_RETURN(Bytes low_der, crypto::ecdsa_normalize_low_s(der));
    COFFER_CHECK(crypto::ecdsa_signature_is_low_s(low_der), "low-S normalisation failed");
    return crypto::ecdsa_der_to_p1363(low_der);
}

}  // namespace

Status validate_header(const SignedRequestHeader& header) {
    if (!is_known_type(header.type)) {
        return invalid(std::string(kHeaderMsgType) + " must be one of " + type_list());
    }
    if (type_needs_proposal_id(header.type) && !header.proposal_id.has_value()) {
        return invalid(std::string(kHeaderProposalId) + " is required for a " + header.type);
    }
    if (!type_needs_proposal_id(header.type) && header.proposal_id.has_value()) {
        return invalid(std::string(kHeaderProposalId) + " must be absent for a " + header.type);
    }
    if (header.proposal_id.has_value()) {
        const std::string& id = *header.proposal_id;
        if (id.empty() || id.size() % 2 != 0 || id.size() > kMaxProposalIdChars ||
            !is_lower_hex(id)) {
            return invalid(std::string(kHeaderProposalId) +
                           " must be lower-case hex of an even length, 2 to " +
                           std::to_string(kMaxProposalIdChars) + " characters");
        }
    }
    if (header.kid.size() != kFingerprintSize) {
        return invalid("kid (4) must be a 32-byte SHA-256 certificate fingerprint");
    }
    if (header.service_fingerprint.size() != kFingerprintSize) {
        return invalid(std::string(kHeaderService) +
                       " must be a 32-byte SHA-256 certificate fingerprint");
    }
    return Status::ok_status();
}

Result<Bytes> encode_protected_header(const SignedRequestHeader& header) {
    COFFER_RETURN_IF_ERROR(validate_header(header));

    // RFC 8949 section 4.2.1: map keys sorted by the bytewise order of their encodings.
    std::vector<std::pair<Bytes, Bytes>> entries;
    auto add = [&entries](auto write_key, auto write_value) {
        CborWriter key;
        CborWriter value;
        write_key(key);
        write_value(value);
        entries.emplace_back(key.take(), value.take());
    };
    add([](CborWriter& w) { w.uint(kCoseHeaderAlg); },
        [](CborWriter& w) { w.negint(kEs384NegintArgument); });
    add([](CborWriter& w) { w.uint(kCoseHeaderKid); },
        [&header](CborWriter& w) { w.bstr(header.kid); });
    add([](CborWriter& w) { w.tstr(kHeaderMsgType); },
        [&header](CborWriter& w) { w.tstr(header.type); });
    add([](CborWriter& w) { w.tstr(kHeaderCreatedAt); },
        [&header](CborWriter& w) { w.uint(header.created_at); });
    if (header.proposal_id.has_value()) {
        add([](CborWriter& w) { w.tstr(kHeaderProposalId); },
            [&header](CborWriter& w) { w.tstr(*header.proposal_id); });
    }
    add([](CborWriter& w) { w.tstr(kHeaderService); },
        [&header](CborWriter& w) { w.bstr(header.service_fingerprint); });
    std::sort(entries.begin(), entries.end());

    CborWriter out;
    out.map_head(entries.size());
    for (const auto& [key, value] : entries) {
        out.raw(key);
        out.raw(value);
    }
    COFFER_CHECK(out.bytes().size() <= kMaxProtectedHeaderBytes,
                 "a valid protected header exceeds kMaxProtectedHeaderBytes");
    return out.take();
}

Bytes sig_structure(ByteSpan protected_bytes, ByteSpan payload) {
    static constexpr std::string_view kContext = "Signature1";
    CborWriter w;
    w.array_head(4);
    w.tstr(kContext);
    w.bstr(protected_bytes);
    w.bstr({});
    w.bstr(payload);
    return w.take();
}

Result<Bytes> sign_request(const SignedRequestHeader& header, ByteSpan payload,
                           const crypto::EcdsaPrivateKey& key) {
    if (payload.size() > kMaxRequestPayloadBytes) {
        return invalid("payload of " + std::to_string(payload.size()) + " bytes exceeds " +
                       std::to_string(kMaxRequestPayloadBytes));
    }
    COFFER_ASSIGN_OR_RETURN(Bytes protected_bytes, encode_protected_header(header));

    COFFER_ASSIGN_OR_RETURN(Bytes raw, key.sign_p1363(sig_structure(protected_bytes, payload)));
    COFFER_CHECK(raw.size() == crypto::kP384P1363SignatureSize, "ES384 signature size");
    COFFER_ASSIGN_OR_RETURN(Bytes low_s, to_low_s(raw));

    Bytes out = encode_envelope(protected_bytes, payload, low_s);
    COFFER_CHECK(out.size() <= kMaxSignedRequestBytes, "signed request exceeds its maximum");
    return out;
}

namespace {

Result<Field> identify_label(const cbor_item_t* key) {
    if (cbor_isa_uint(key)) {
        uint64_t label = cbor_get_int(key);
        if (label == static_cast<uint64_t>(kCoseHeaderAlg)) {
            return Field::kAlg;
        }
        if (label == static_cast<uint64_t>(kCoseHeaderKid)) {
            return Field::kKid;
        }
        return invalid("unknown protected header label " + std::to_string(label));
    }
    if (cbor_isa_negint(key)) {
        return invalid("unknown protected header label -1-" + std::to_string(cbor_get_int(key)));
    }
    if (!is_definite_tstr(key)) {
        return invalid("protected header label of an unsupported CBOR type");
    }
    std::string label = tstr_value(key);
    for (Field f : {Field::kType, Field::kCreatedAt, Field::kProposalId, Field::kService}) {
        if (label == field_name(f)) {
            return f;
        }
    }
    return invalid("unknown protected header label " + quote_label(label));
}

Status set_field(Field field, const cbor_item_t* value, SignedRequestHeader& header) {
    switch (field) {
        case Field::kAlg:
            if (!cbor_isa_negint(value) || cbor_get_int(value) != kEs384NegintArgument) {
                return invalid("alg (1) must be ES384 (-35)");
            }
            return Status::ok_status();
        case Field::kKid:
        case Field::kService:
            if (!is_definite_bstr(value)) {
                return invalid(std::string(field_name(field)) + " must be a bstr");
            }
            (field == Field::kKid ? header.kid : header.service_fingerprint) = bstr_value(value);
            return Status::ok_status();
        case Field::kType:
        case Field::kProposalId:
            if (!is_definite_tstr(value)) {
                return invalid(std::string(field_name(field)) + " must be a tstr");
            }
            if (field == Field::kType) {
                header.type = tstr_value(value);
            } else {
                header.proposal_id = tstr_value(value);
            }
            return Status::ok_status();
        case Field::kCreatedAt:
            if (!cbor_isa_uint(value)) {
                return invalid(std::string(kHeaderCreatedAt) + " must be a uint (Unix seconds)");
            }
            header.created_at = cbor_get_int(value);
            return Status::ok_status();
        case Field::kCount:
            break;
    }
    COFFER_CHECK(false, "unreachable protected header field");
    return Status::ok_status();
}

Result<SignedRequestHeader> parse_protected_header(ByteSpan bytes) {
    if (bytes.size() > kMaxProtectedHeaderBytes) {
        return invalid("protected header of " + std::to_string(bytes.size()) + " bytes exceeds " +
                       std::to_string(kMaxProtectedHeaderBytes));
    }
    COFFER_ASSIGN_OR_RETURN(CborItemPtr map,
                            detail::load_cbor(bytes, "signed request: protected header"));
    if (!cbor_isa_map(map.get()) || !cbor_map_is_definite(map.get())) {
        return invalid("protected header must be a CBOR map");
    }

    SignedRequestHeader header;
    std::array<bool, static_cast<size_t>(Field::kCount)> seen{};
    const cbor_pair* pairs = cbor_map_handle(map.get());
    for (size_t i = 0; i < cbor_map_size(map.get()); ++i) {
        COFFER_ASSIGN_OR_RETURN(Field field, identify_label(pairs[i].key));
        bool& was_seen = seen[static_cast<size_t>(field)];
        if (was_seen) {
            return invalid("duplicate protected header label " + std::string(field_name(field)));
        }
        was_seen = true;
        COFFER_RETURN_IF_ERROR(set_field(field, pairs[i].value, header));
    }

    for (Field f : {Field::kAlg, Field::kKid, Field::kType, Field::kCreatedAt, Field::kService}) {
        if (!seen[static_cast<size_t>(f)]) {
            return invalid("missing protected header field " + std::string(field_name(f)));
        }
    }
    COFFER_RETURN_IF_ERROR(validate_header(header));

    // One content, one encoding: the signer's bytes must be exactly what we would write.
    COFFER_ASSIGN_OR_RETURN(Bytes canonical, encode_protected_header(header));
    if (!std::equal(canonical.begin(), canonical.end(), bytes.begin(), bytes.end())) {
        return invalid("protected header is not in deterministic encoding (RFC 8949 4.2.1)");
    }
    return header;
}

Status parse_envelope_items(cbor_item_t** items, ParsedRequest& out) {
    if (!is_definite_bstr(items[0])) {
        return invalid("protected header must be a bstr");
    }
    if (!cbor_isa_map(items[1]) || cbor_map_size(items[1]) != 0) {
        return invalid("unprotected header must be an empty map");
    }
    if (cbor_is_null(items[2])) {
        return invalid("detached payload (nil) is not supported");
    }
    if (!is_definite_bstr(items[2])) {
        return invalid("payload must be a bstr");
    }
    if (cbor_bytestring_length(items[2]) > kMaxRequestPayloadBytes) {
        return invalid("payload exceeds " + std::to_string(kMaxRequestPayloadBytes) + " bytes");
    }
    if (!is_definite_bstr(items[3]) ||
        cbor_bytestring_length(items[3]) != crypto::kP384P1363SignatureSize) {
        return invalid("signature must be a 96-byte bstr (ES384 r || s)");
    }
    out.protected_bytes = bstr_value(items[0]);
    out.payload = bstr_value(items[2]);
    out.signature = bstr_value(items[3]);
    return Status::ok_status();
}

Status check_freshness(uint64_t created_at, const VerifyPolicy& policy) {
    if (policy.now > policy.max_age && created_at < policy.now - policy.max_age) {
        return error(Errc::kFailedPrecondition,
                     "signed request: request is stale: created at " + std::to_string(created_at) +
                         ", more than " + std::to_string(policy.max_age) + " s before now (" +
                         std::to_string(policy.now) + ")");
    }
    if (created_at > policy.now && created_at - policy.now > policy.max_clock_skew) {
        return error(Errc::kFailedPrecondition,
                     "signed request: request is from the future: created at " +
                         std::to_string(created_at) + ", more than " +
                         std::to_string(policy.max_clock_skew) + " s after now (" +
                         std::to_string(policy.now) + ")");
    }
    return Status::ok_status();
}

}  // namespace

Result<ParsedRequest> parse_request(ByteSpan cose) {
    if (cose.size() > kMaxSignedRequestBytes) {
        return invalid("message of " + std::to_string(cose.size()) + " bytes exceeds " +
                       std::to_string(kMaxSignedRequestBytes));
    }
    // libcbor before 0.11 rejects the one-byte heads of tags 6 to 20 (0xc6 to 0xd4) as
    // "unassigned", tag 18 included, so the tag head is checked here and libcbor decodes the
    // array after it. Tag 18 has exactly one deterministic encoding, the byte 0xd2.
    if (cose.empty() || cose[0] != kCoseSign1TagByte) {
        return invalid("not a COSE_Sign1 message (CBOR tag 18, byte 0xd2)");
    }
    COFFER_ASSIGN_OR_RETURN(CborItemPtr array,
                            detail::load_cbor(cose.subspan(1), "signed request"));
    if (!cbor_isa_array(array.get()) || cbor_array_size(array.get()) != kCoseSign1Elements) {
        return invalid("COSE_Sign1 must be an array of 4 items");
    }

    ParsedRequest out;
    COFFER_RETURN_IF_ERROR(parse_envelope_items(cbor_array_handle(array.get()), out));
    COFFER_ASSIGN_OR_RETURN(out.header, parse_protected_header(out.protected_bytes));

    Bytes canonical = encode_envelope(out.protected_bytes, out.payload, out.signature);
    if (!std::equal(canonical.begin(), canonical.end(), cose.begin(), cose.end())) {
        return invalid("message is not in deterministic encoding (RFC 8949 4.2.1)");
    }
    return out;
}

Result<VerifiedRequest> verify_request(ByteSpan cose, const crypto::EcdsaPublicKey& signer,
                                       const VerifyPolicy& policy) {
    COFFER_ASSIGN_OR_RETURN(ParsedRequest request, parse_request(cose));

    // Low-S first: (r, n - s) verifies too, and must not be a second encoding of one
    // signature (RFC 9053 section 2.1 leaves this to the application).
    Result<Bytes> der = crypto::ecdsa_p1363_to_der(request.signature);
    if (!der.ok()) {
        return error(Errc::kCrypto, "signed request: signature is not a valid ECDSA value");
    }
    if (!crypto::ecdsa_signature_is_low_s(*der)) {
        return error(Errc::kCrypto, "signed request: signature is not in low-S form");
    }
    Status sig = signer.verify_p1363(sig_structure(request.protected_bytes, request.payload),
                                     request.signature);
    if (!sig.ok()) {
        return error(Errc::kCrypto, "signed request: signature does not verify");
    }

    if (policy.expected_kid.has_value() && *policy.expected_kid != request.header.kid) {
        return error(Errc::kPermissionDenied, "signed request: kid names another signer");
    }
    if (policy.expected_service_fingerprint.size() != kFingerprintSize) {
        return invalid("policy: expected service fingerprint must be 32 bytes");
    }
    if (policy.expected_service_fingerprint != request.header.service_fingerprint) {
        return error(Errc::kPermissionDenied,
                     "signed request: request was made for another service");
    }
    COFFER_RETURN_IF_ERROR(check_freshness(request.header.created_at, policy));

    Bytes digest = request_digest(request);
    return VerifiedRequest{std::move(request), std::move(digest)};
}

Bytes request_digest(const ParsedRequest& request) {
    crypto::Sha256Digest d =
        crypto::sha256(sig_structure(request.protected_bytes, request.payload));
    return Bytes(d.begin(), d.end());
}

ReplayGuard::ReplayGuard(size_t capacity) : capacity_(capacity) {
    COFFER_CHECK(capacity_ > 0 && capacity_ <= kMaxRememberedRequests,
                 "ReplayGuard capacity out of range");
}

Status ReplayGuard::check_and_remember(ByteSpan digest) {
    if (digest.size() != crypto::kSha256Size) {
        return error(Errc::kInvalidArgument, "replay guard: digest must be 32 bytes");
    }
    Bytes key(digest.begin(), digest.end());
    if (seen_.contains(key)) {
        return error(Errc::kConflict, "request replayed");
    }
    if (seen_.size() >= capacity_) {
        return error(Errc::kResourceExhausted,
                     "replay guard: full at " + std::to_string(capacity_) + " requests");
    }
    seen_.insert(std::move(key));
    return Status::ok_status();
}

}  // namespace coffer::gov
