// Signed member requests: COSE_Sign1 messages (RFC 9052 section 4.2) signed with ES384,
// the evidence that governance keeps in the ledger of who proposed and voted what.
//
// The byte-level format is specified in docs/formats/signed-request.md. In short: tag 18 over
// [protected header (bstr of a CBOR map), unprotected header (empty map), payload (bstr),
// signature (bstr, r || s, 96 bytes)], every item in deterministic encoding (RFC 8949
// section 4.2.1), so that one request content has exactly one encoding, and every signature
// in low-S form, so that one signature has exactly one encoding.
//
// Replay protection is the caller's: governance stores request_digest() of every accepted
// request and refuses a digest seen before (ReplayGuard is the in-memory form of that). The
// digest covers what was signed, not the signature, so no re-encoding or re-signing of the
// same content escapes it.
//
// All functions are thread-safe (no shared state); ReplayGuard is thread-compatible.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/ecdsa.h"

namespace coffer::gov {

// The message types a member may sign. Kept in one list: the parser, the signer and the
// documentation all follow it.
inline constexpr std::array<std::string_view, 4> kSignedRequestTypes = {
    "proposal", "ballot", "withdrawal", "recovery_share"};

// The largest whole COSE_Sign1 message accepted (parse refuses anything bigger).
constexpr size_t kMaxSignedRequestBytes = size_t{1} << 20;
// The largest encoded protected header.
constexpr size_t kMaxProtectedHeaderBytes = 1024;
// The largest payload: what is left of kMaxSignedRequestBytes after the protected header,
// the signature and the CBOR heads (generously bounded by 256 bytes).
constexpr size_t kMaxRequestPayloadBytes =
    kMaxSignedRequestBytes - kMaxProtectedHeaderBytes - crypto::kP384P1363SignatureSize - 256;
// Proposal ids are lower-case hex of an even number of characters, at most this many.
constexpr size_t kMaxProposalIdChars = 128;
// kid and service fingerprint are SHA-256 digests.
constexpr size_t kFingerprintSize = 32;
// The most request digests one ReplayGuard holds.
constexpr size_t kMaxRememberedRequests = size_t{1} << 16;

// COSE header labels and values (RFC 9052 section 3.1, RFC 9053 section 2.1).
constexpr int64_t kCoseHeaderAlg = 1;
constexpr int64_t kCoseHeaderKid = 4;
constexpr int64_t kCoseAlgEs384 = -35;
constexpr uint64_t kCoseSign1Tag = 18;
inline constexpr std::string_view kHeaderMsgType = "coffer.msg.type";
inline constexpr std::string_view kHeaderCreatedAt = "coffer.msg.created_at";
inline constexpr std::string_view kHeaderProposalId = "coffer.msg.proposal_id";
inline constexpr std::string_view kHeaderService = "coffer.msg.service";

// The signed protected header of a request (alg is implied: always ES384).
struct SignedRequestHeader {
    // One of kSignedRequestTypes.
    std::string type;
    // When the member signed it, Unix seconds.
    uint64_t created_at = 0;
    // The proposal a ballot or withdrawal refers to; absent for every other type.
    std::optional<std::string> proposal_id;
    // SHA-256 of the member's DER certificate (32 bytes): who signed.
    Bytes kid;
    // SHA-256 of the service certificate (32 bytes): which service the request is for.
    Bytes service_fingerprint;

    friend bool operator==(const SignedRequestHeader&, const SignedRequestHeader&) = default;
};

// A well-formed request whose signature has not been checked yet.
struct ParsedRequest {
    SignedRequestHeader header;
    // The protected header exactly as signed (the bstr's content).
    Bytes protected_bytes;
    Bytes payload;
    // r || s, 96 bytes.
    Bytes signature;
};

// What verify_request checks beyond the signature. Times are Unix seconds.
struct VerifyPolicy {
    // SHA-256 of this service's certificate; a request made for another service is refused.
    Bytes expected_service_fingerprint;
    // If set, the kid the request must carry (the fingerprint of the certificate whose key
    // is passed to verify_request). Governance looks the member up by kid, so it sets this.
    std::optional<Bytes> expected_kid;
    uint64_t now = 0;
    // A request created before now - max_age is stale.
    uint64_t max_age = 300;
    // A request created after now + max_clock_skew comes from the future.
    uint64_t max_clock_skew = 60;
};

struct VerifiedRequest {
    ParsedRequest request;
    // request_digest(request): the replay identity.
    Bytes digest;
};

// Checks `header` against the format rules (type in kSignedRequestTypes, proposal_id present
// exactly for ballot and withdrawal and well-formed, 32-byte kid and fingerprint).
// Errors: kInvalidArgument naming the field.
Status validate_header(const SignedRequestHeader& header);

// The deterministic encoding of the protected header map.
// Needs a header that passes validate_header (checked: kInvalidArgument otherwise).
Result<Bytes> encode_protected_header(const SignedRequestHeader& header);

// Sig_structure (RFC 9052 section 4.4) for COSE_Sign1 with empty external_aad:
// ["Signature1", protected_bytes, h'', payload], deterministically encoded. Its SHA-384 is
// what ES384 signs.
Bytes sig_structure(ByteSpan protected_bytes, ByteSpan payload);

// Builds and signs a request with `key` (the member's key, whose certificate's SHA-256 is
// header.kid: not checked here, since only the certificate knows). The signature is in
// low-S form. Errors: kInvalidArgument for a header failing validate_header or a payload over
// kMaxRequestPayloadBytes; kInternal if OpenSSL fails.
Result<Bytes> sign_request(const SignedRequestHeader& header, ByteSpan payload,
                           const crypto::EcdsaPrivateKey& key);

// Decodes a request and checks every format rule, without checking the signature (to find
// the signer's certificate by kid first). Errors: kInvalidArgument naming the problem
// (size, CBOR structure, indefinite length, trailing bytes, missing/duplicate/unknown/
// mistyped header field, non-deterministic encoding, signature length).
Result<ParsedRequest> parse_request(ByteSpan cose);

// parse_request, then the signature with `signer`, then the policy, in that order (so that
// policy errors only ever describe content the signer really signed).
// Errors: as parse_request; kCrypto for a signature that is not low-S ("signature is not in
// low-S form") or does not verify; kPermissionDenied for another kid or another service;
// kFailedPrecondition for a stale request or one from the future.
Result<VerifiedRequest> verify_request(ByteSpan cose, const crypto::EcdsaPublicKey& signer,
                                       const VerifyPolicy& policy);

// The replay identity of a request: SHA-256 of its Sig_structure, i.e. of the protected
// header bytes and payload, NOT of the signature. Any valid signature over the same content
// (s or n - s, another random k) gives the same digest. 32 bytes.
Bytes request_digest(const ParsedRequest& request);

// An in-memory set of accepted request digests. Governance persists its own in a ledger map;
// this form is for tests and single-process tools. Never evicts: forgetting a digest would
// let that request be replayed, so a full guard refuses instead.
class ReplayGuard {
  public:
    // `capacity` must be in [1, kMaxRememberedRequests] (checked).
    explicit ReplayGuard(size_t capacity = kMaxRememberedRequests);

    // Remembers `digest` unless seen before.
    // Errors: kInvalidArgument if not 32 bytes; kConflict "request replayed" if remembered;
    // kResourceExhausted if the guard already holds `capacity` digests.
    Status check_and_remember(ByteSpan digest);

    size_t size() const { return seen_.size(); }

  private:
    size_t capacity_;
    std::set<Bytes> seen_;
};

}  // namespace coffer::gov
