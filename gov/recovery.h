// Recovery shares: the ledger secrets wrapped for disaster recovery, and the wrapping key
// split k-of-n among the members, each share encrypted to one member's X25519 key.
//
// Model (docs/recovery.md, "Recovery shares"; byte layouts in docs/formats/recovery-shares.md):
//   1. every ledger secret version is encrypted (AES-256-GCM) under a fresh random 32-byte
//      wrapping key W, so that a rekeyed ledger can be read from its first entry;
//   2. W is split with Shamir (crypto/shamir.h) into one share per member that registered an
//      encryption key, any `threshold` of which rebuild W;
//   3. each share is HPKE-sealed (RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256),
//      HKDF-SHA256, AES-256-GCM) to its member's key, with additional data that binds the
//      share set, the member's fingerprint and the threshold.
// Everything is stored in PUBLIC governance maps, because a recovering node must read it
// before it holds any secret. The operator alone (who sees every public map and runs every
// node) learns nothing: W needs `threshold` members' private keys.
//
// Each issuance has a share set id, the lower-case hex SHA-256 of the wrapped blob. Every
// share carries it, so a share from an older issuance (before a rekey or a membership
// change) is refused with a clear reason instead of silently rebuilding a wrong key.
//
// A threshold of 1 is a degree-0 polynomial: every share's y IS the wrapping key (Shamir
// itself refuses k = 1, so this layer handles it explicitly).
//
// Secrets (W, ledger secrets, plaintext shares) are wiped from temporaries and never appear in
// error messages or logs. All free functions are thread-safe; ShareCollector is
// thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/bytes.h"
#include "common/result.h"
#include "ledger/secrets.h"

namespace coffer::gov {

// key kRecoveryCurrentKey -> the recovery value (docs/formats/recovery-shares.md).
constexpr std::string_view kRecoveryMap = "public:coffer.gov.recovery";
constexpr std::string_view kRecoveryCurrentKey = "current";
// key: member fingerprint (lower-case hex SHA-256 of the DER certificate) -> share value.
constexpr std::string_view kRecoverySharesMap = "public:coffer.gov.recovery_shares";

// Version of the recovery value, the share value, the wrapped blob and the plaintext share.
constexpr uint8_t kRecoveryFormatVersion = 1;
// Shamir evaluates at x = 1..255, so at most this many members hold a share.
constexpr size_t kMaxRecoveryMembers = 255;
// A member fingerprint: hex of a SHA-256 digest.
constexpr size_t kMemberFingerprintChars = 64;
// How many previous service fingerprints one recovery value lists at most.
constexpr size_t kMaxPreviousServiceFingerprints = 1024;
// A share set id is a SHA-256 digest.
constexpr size_t kShareSetSize = 32;
// The wrapping key: AES-256.
constexpr size_t kWrappingKeySize = 32;
// The plaintext share: version || share set || Shamir share of the 32-byte key.
constexpr size_t kRecoveryShareSize = 1 + kShareSetSize + 4 + kWrappingKeySize;
static_assert(kRecoveryShareSize == 69, "docs/formats/recovery-shares.md fixes 69 bytes");

// HPKE info and AEAD labels: they name the format and version (RFC 9180 section 5.1 lets
// the application bind its context through info).
inline constexpr std::string_view kRecoveryShareHpkeInfo = "coffer-recovery-share-v1";
inline constexpr std::string_view kWrappedSecretsAadLabel = "coffer-recovery-wrapped-secrets-v1";
inline constexpr std::string_view kShareDigestLabel = "coffer-recovery-share-digest-v1";

// The recipients of one issuance: member fingerprint -> raw 32-byte X25519 public key.
using RecoveryMembers = std::map<std::string, Bytes>;

struct RecoveryIssuance {
    // The share set id (lower-case hex, 64 characters).
    std::string share_set;
    // The value to write at kRecoveryMap / kRecoveryCurrentKey.
    nlohmann::json recovery;
    // The values to write in kRecoverySharesMap, keyed by member fingerprint. The writer must
    // also remove the entries of members that are no longer in `members`.
    std::map<std::string, nlohmann::json> shares;
};

// Wraps every secret of `ledger_secrets` under a fresh key and issues one encrypted share of
// that key per member, any `threshold` of which recover the secrets.
// Needs: 1 to ledger::kMaxLedgerSecrets secrets of 32 bytes with strictly increasing versions
// (pass all versions, not just the current one, so that the whole ledger stays readable);
// 1 to kMaxRecoveryMembers members with well-formed fingerprints and 32-byte keys;
// 1 <= threshold <= members.size(); previous fingerprints well-formed (informational: the
// service identities this ledger lived under, copied into the recovery value).
// Errors: kInvalidArgument naming the problem; kCrypto naming the member whose key is a
// low-order point.
Result<RecoveryIssuance> issue_recovery_shares(
    const std::vector<ledger::LedgerSecret>& ledger_secrets, const RecoveryMembers& members,
    size_t threshold, const std::vector<std::string>& previous_service_fingerprints = {});

// Reads the members map values (fingerprint -> {"encryption_public_key": PEM, "status"})
// into the recipients of an issuance: active members with an encryption key. Members without
// one are skipped (they cannot receive a share).
// Errors: kInvalidArgument for a malformed fingerprint, value or PEM (naming the member);
// kResourceExhausted beyond kMaxRecoveryMembers.
Result<RecoveryMembers> recovery_members_from_governance(
    const std::map<std::string, nlohmann::json>& members_map);

// Decrypts one member's share value (from kRecoverySharesMap) with that member's 32-byte
// X25519 private key. Returns the plaintext share (kRecoveryShareSize bytes, format in
// docs/formats/recovery-shares.md); recovery_share_to_text gives what a member prints.
// The returned bytes are secret: the caller owns them and should wipe them after use.
// Errors: kInvalidArgument / kUnsupported for a malformed value; kCrypto "cannot decrypt the
// recovery share" for another member's key, another fingerprint or a modified value;
// kCorrupt if the decrypted share names another share set than its value.
Result<Bytes> decrypt_share(const nlohmann::json& share_value, ByteSpan member_private_key,
                            std::string_view member_fingerprint);

// The published digest of a plaintext share: lower-case hex SHA-256(kShareDigestLabel ||
// share). The recovery value lists one per share so that a forged or corrupted share is
// refused, and its submitter identified, when it arrives rather than when k shares fail to
// combine. Publishing it reveals nothing usable: the share keeps at least 256 bits of
// entropy for anyone holding fewer than k other shares.
std::string recovery_share_digest(ByteSpan share);

// The text form of a plaintext share (canonical base64, 92 characters) and its parser.
// Errors: kInvalidArgument if not canonical base64 of a well-formed share.
std::string recovery_share_to_text(ByteSpan share);
Result<Bytes> recovery_share_from_text(std::string_view text);

// The public facts of a recovery value, checked for consistency.
struct RecoveryInfo {
    std::string share_set;  // hex
    size_t threshold = 0;
    size_t share_count = 0;
    Bytes wrapped_ledger_secrets;
    // recovery_share_digest of the share with x = i + 1, for i in 0..share_count-1.
    std::vector<std::string> share_digests;
    std::vector<std::string> previous_service_fingerprints;
};

// Parses a recovery value. Errors: kUnsupported for another version; kInvalidArgument for a
// missing or mistyped member (share_digests must list exactly share_count digests);
// kCorrupt if the share set is not the digest of the wrapped blob or the threshold exceeds
// the share count.
Result<RecoveryInfo> parse_recovery_value(const nlohmann::json& recovery_value);

// Accumulates the plaintext shares submitted for one share set until `threshold` arrived.
// Holds secret material (wiped on destruction). Thread-compatible, move-only.
class ShareCollector {
  public:
    // Errors: those of parse_recovery_value.
    static Result<ShareCollector> create(const nlohmann::json& recovery_value);

    ShareCollector(ShareCollector&&) noexcept = default;
    ShareCollector& operator=(ShareCollector&&) noexcept;
    ShareCollector(const ShareCollector&) = delete;
    ShareCollector& operator=(const ShareCollector&) = delete;
    ~ShareCollector();

    // Adds one plaintext share. Errors (nothing is kept): kInvalidArgument for a malformed
    // share or one whose point is outside 1..share_count; kFailedPrecondition "share from
    // another share set"; kCrypto "share N is forged or corrupted" when it does not match
    // its published digest; kConflict "share already received" for a duplicate point.
    Status submit(ByteSpan share);

    size_t received() const { return shares_.size(); }
    size_t threshold() const { return info_.threshold; }
    size_t share_count() const { return info_.share_count; }
    bool complete() const { return shares_.size() >= info_.threshold; }
    // "1 of 2 shares received" (the threshold is the denominator).
    std::string progress() const;

    // Recovers the ledger secrets once complete. Errors: as recover_ledger_secrets.
    Result<std::vector<ledger::LedgerSecret>> recover() const;

  private:
    explicit ShareCollector(RecoveryInfo info) : info_(std::move(info)) {}
    void wipe();

    RecoveryInfo info_;
    std::vector<Bytes> shares_;
};

// Rebuilds the wrapping key from `shares` (plaintext shares, at least `threshold` of them,
// of the recovery value's share set) and unwraps every ledger secret, oldest first.
// Errors: those of parse_recovery_value; kFailedPrecondition "not enough shares (m of k)" and
// "share from another share set"; kInvalidArgument for a malformed share; kConflict for two
// shares with the same point; kCrypto "share N is forged or corrupted" for a share that does
// not match its published digest, and "shares do not reconstruct the wrapping key" when the
// unwrap's tag fails (shares and digests forged together); kCorrupt if the unwrapped
// content is malformed.
Result<std::vector<ledger::LedgerSecret>> recover_ledger_secrets(
    const nlohmann::json& recovery_value, std::span<const Bytes> shares);

}  // namespace coffer::gov
