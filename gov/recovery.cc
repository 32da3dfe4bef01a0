#include "gov/recovery.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <set>
#include <string>
#include <utility>

#include "common/log.h"
#include "crypto/aead.h"
#include "crypto/encoding.h"
#include "crypto/hpke.h"
#include "crypto/random.h"
#include "crypto/sha256.h"
#include "crypto/shamir.h"
#include "crypto/x25519.h"

namespace coffer::gov {
namespace {

constexpr size_t kWrapIvSize = crypto::kAesGcmStandardIvSize;
// One ledger secret in the wrapped plaintext: u32 version || 32-byte key.
constexpr size_t kWrappedSecretRecordSize = 4 + ledger::kLedgerSecretSize;
// version || iv || (u32 count || records) || tag.
constexpr size_t kMinWrappedBlobSize =
    1 + kWrapIvSize + 4 + kWrappedSecretRecordSize + crypto::kAesGcmTagSize;
constexpr size_t kMaxWrappedBlobSize = 1 + kWrapIvSize + 4 +
                                       ledger::kMaxLedgerSecrets * kWrappedSecretRecordSize +
                                       crypto::kAesGcmTagSize;
// HPKE output for a plaintext share: the share and the AES-256-GCM tag.
constexpr size_t kEncryptedShareSize = kRecoveryShareSize + crypto::kAesGcmTagSize;

// Wipes a secret buffer when it goes out of scope, on every return path.
class Wiper {
  public:
    explicit Wiper(Bytes& bytes) : bytes_(bytes) {}
    ~Wiper() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }
    Wiper(const Wiper&) = delete;
    Wiper& operator=(const Wiper&) = delete;

  private:
    Bytes& bytes_;
};

void wipe_shares(std::vector<crypto::ShamirShare>& shares) {
    for (auto& share : shares) {
        OPENSSL_cleanse(share.y.data(), share.y.size());
    }
}

bool is_lower_hex(std::string_view s) {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool is_fingerprint(std::string_view s) {
    return s.size() == kMemberFingerprintChars && is_lower_hex(s);
}

Result<std::string> get_string(const nlohmann::json& value, const char* name) {
    auto it = value.find(name);
    if (it == value.end() || !it->is_string()) {
        return error(Errc::kInvalidArgument,
                     std::string("member \"") + name + "\" is missing or not a string");
    }
    return it->get<std::string>();
}

Result<uint64_t> get_uint(const nlohmann::json& value, const char* name) {
    auto it = value.find(name);
    // A value built in memory holds small literals as signed integers; text parsed by
    // nlohmann_json holds non-negative ones as unsigned. Both are accepted.
    bool non_negative = it != value.end() && it->is_number_integer() &&
                        (it->is_number_unsigned() || it->get<int64_t>() >= 0);
    if (!non_negative) {
        return error(Errc::kInvalidArgument,
                     std::string("member \"") + name + "\" is missing or not an unsigned integer");
    }
    return it->get<uint64_t>();
}

Result<Bytes> get_hex(const nlohmann::json& value, const char* name, size_t max_size) {
    COFFER_ASSIGN_OR_RETURN(std::string text, get_string(value, name));
    if (text.size() > 2 * max_size) {
        return error(Errc::kInvalidArgument, std::string("member \"") + name + "\" is too long");
    }
    auto bytes = from_hex(text);
    if (!bytes.ok()) {
        return error(Errc::kInvalidArgument, std::string("member \"") + name + "\" is not hex");
    }
    return std::move(bytes).value();
}

// An array of at most `max_count` lower-case hex SHA-256 digests.
Result<std::vector<std::string>> parse_digest_list(const nlohmann::json& value, const char* name,
                                                   size_t max_count) {
    auto it = value.find(name);
    if (it == value.end() || !it->is_array() || it->size() > max_count) {
        return error(Errc::kInvalidArgument,
                     std::string("member \"") + name + "\" is missing or not an array of digests");
    }
    std::vector<std::string> out;
    for (const auto& item : *it) {
        if (!item.is_string() || !is_fingerprint(item.get<std::string>())) {
            return error(Errc::kInvalidArgument,
                         std::string("member \"") + name + "\" holds a malformed digest");
        }
        out.push_back(item.get<std::string>());
    }
    return out;
}

Status check_version(const nlohmann::json& value, std::string_view what) {
    if (!value.is_object()) {
        return error(Errc::kInvalidArgument, std::string(what) + " is not a JSON object");
    }
    COFFER_ASSIGN_OR_RETURN(uint64_t version, get_uint(value, "version"));
    if (version != kRecoveryFormatVersion) {
        return error(Errc::kUnsupported, std::string(what) + " version " + std::to_string(version) +
                                             " is not supported");
    }
    return Status::ok_status();
}

Status validate_ledger_secrets(const std::vector<ledger::LedgerSecret>& secrets) {
    if (secrets.empty() || secrets.size() > ledger::kMaxLedgerSecrets) {
        return error(Errc::kInvalidArgument,
                     "need 1 to " + std::to_string(ledger::kMaxLedgerSecrets) +
                         " ledger secrets, got " + std::to_string(secrets.size()));
    }
    for (size_t i = 0; i < secrets.size(); ++i) {
        if (secrets[i].key.size() != ledger::kLedgerSecretSize) {
            return error(Errc::kInvalidArgument,
                         "ledger secret version " + std::to_string(secrets[i].version) +
                             " is not " + std::to_string(ledger::kLedgerSecretSize) + " bytes");
        }
        if (i > 0 && secrets[i].version <= secrets[i - 1].version) {
            return error(Errc::kInvalidArgument, "ledger secret versions must strictly increase");
        }
    }
    return Status::ok_status();
}

Status validate_members(const RecoveryMembers& members, size_t threshold) {
    if (members.empty() || members.size() > kMaxRecoveryMembers) {
        return error(Errc::kInvalidArgument, "need 1 to " + std::to_string(kMaxRecoveryMembers) +
                                                 " members with an encryption key, got " +
                                                 std::to_string(members.size()));
    }
    if (threshold < 1 || threshold > members.size()) {
        return error(Errc::kInvalidArgument, "threshold " + std::to_string(threshold) +
                                                 " is outside 1.." +
                                                 std::to_string(members.size()));
    }
    for (const auto& [fingerprint, public_key] : members) {
        if (!is_fingerprint(fingerprint)) {
            return error(Errc::kInvalidArgument,
                         "member fingerprint is not 64 lower-case hex characters");
        }
        if (public_key.size() != crypto::kX25519KeySize) {
            return error(Errc::kInvalidArgument,
                         "encryption key of member " + fingerprint + " is not 32 bytes");
        }
    }
    return Status::ok_status();
}

Status validate_previous_fingerprints(const std::vector<std::string>& fingerprints) {
    if (fingerprints.size() > kMaxPreviousServiceFingerprints) {
        return error(Errc::kInvalidArgument, "too many previous service fingerprints");
    }
    for (const auto& fingerprint : fingerprints) {
        if (!is_fingerprint(fingerprint)) {
            return error(Errc::kInvalidArgument,
                         "previous service fingerprint is not 64 lower-case hex characters");
        }
    }
    return Status::ok_status();
}

// AAD of the wrapped blob: label || u32 threshold || u32 share count, so that a recovery
// value whose threshold or count was altered no longer unwraps.
Bytes wrap_aad(size_t threshold, size_t share_count) {
    Bytes aad = to_bytes(kWrappedSecretsAadLabel);
    put_u32(aad, static_cast<uint32_t>(threshold));
    put_u32(aad, static_cast<uint32_t>(share_count));
    return aad;
}

Result<Bytes> wrap_ledger_secrets(const std::vector<ledger::LedgerSecret>& secrets,
                                  ByteSpan wrapping_key, size_t threshold, size_t share_count) {
    Bytes plaintext;
    Wiper wipe_plaintext(plaintext);
    plaintext.reserve(4 + secrets.size() * kWrappedSecretRecordSize);
    put_u32(plaintext, static_cast<uint32_t>(secrets.size()));
    for (const auto& secret : secrets) {
        put_u32(plaintext, secret.version);
        put_bytes(plaintext, secret.key);
    }

    Bytes iv = crypto::random_bytes(kWrapIvSize);
    COFFER_ASSIGN_OR_RETURN(
        Bytes sealed,
        crypto::aes_gcm_seal(wrapping_key, iv, wrap_aad(threshold, share_count), plaintext));

    Bytes blob;
    blob.push_back(kRecoveryFormatVersion);
    put_bytes(blob, iv);
    put_bytes(blob, sealed);
    COFFER_CHECK(blob.size() >= kMinWrappedBlobSize && blob.size() <= kMaxWrappedBlobSize,
                 "wrapped ledger secrets size out of the documented range");
    return blob;
}

// The k = 1 case is a degree-0 polynomial: P(x) = W for every x (crypto/shamir.h refuses it).
Result<std::vector<crypto::ShamirShare>> split_wrapping_key(ByteSpan wrapping_key, size_t threshold,
                                                            size_t n) {
    if (threshold >= crypto::kShamirMinThreshold) {
        return crypto::shamir_split(wrapping_key, threshold, n);
    }
    std::vector<crypto::ShamirShare> shares;
    for (size_t i = 1; i <= n; ++i) {
        shares.push_back(crypto::ShamirShare{static_cast<uint8_t>(i),
                                             Bytes(wrapping_key.begin(), wrapping_key.end())});
    }
    return shares;
}

Bytes encode_plain_share(ByteSpan share_set, const crypto::ShamirShare& shamir) {
    Bytes out;
    out.reserve(kRecoveryShareSize);
    out.push_back(kRecoveryFormatVersion);
    put_bytes(out, share_set);
    Bytes serialized = crypto::serialize_share(shamir);
    Wiper wipe_serialized(serialized);
    put_bytes(out, serialized);
    COFFER_CHECK(out.size() == kRecoveryShareSize, "plaintext share size");
    return out;
}

struct PlainShare {
    Bytes share_set;
    crypto::ShamirShare shamir;
};

Result<PlainShare> parse_plain_share(ByteSpan data) {
    if (data.size() != kRecoveryShareSize) {
        return error(Errc::kInvalidArgument, "recovery share must be " +
                                                 std::to_string(kRecoveryShareSize) +
                                                 " bytes, got " + std::to_string(data.size()));
    }
    if (data[0] != kRecoveryFormatVersion) {
        return error(Errc::kInvalidArgument,
                     "recovery share version " + std::to_string(data[0]) + " is not supported");
    }
    PlainShare share;
    share.share_set.assign(data.begin() + 1, data.begin() + 1 + kShareSetSize);
    auto shamir = crypto::parse_share(data.subspan(1 + kShareSetSize));
    if (!shamir.ok() || shamir->y.size() != kWrappingKeySize) {
        return error(Errc::kInvalidArgument, "recovery share holds a malformed Shamir share");
    }
    share.shamir = std::move(shamir).value();
    return share;
}

// AAD of a member's HPKE ciphertext: share set (32) || fingerprint (64 ASCII) || u32
// threshold. A share moved to another member's record, another issuance or another threshold
// does not open.
Bytes share_aad(ByteSpan share_set, std::string_view fingerprint, size_t threshold) {
    Bytes aad(share_set.begin(), share_set.end());
    put_bytes(aad, as_bytes(fingerprint));
    put_u32(aad, static_cast<uint32_t>(threshold));
    return aad;
}

Result<nlohmann::json> seal_member_share(const std::string& fingerprint, ByteSpan public_key,
                                         ByteSpan share_set, size_t threshold,
                                         ByteSpan plain_share) {
    auto sealed =
        crypto::hpke_seal(crypto::HpkeSuite{}, public_key, as_bytes(kRecoveryShareHpkeInfo),
                          share_aad(share_set, fingerprint, threshold), plain_share);
    if (!sealed.ok()) {
        return sealed.status().with_context("encrypting the share of member " + fingerprint + ": ");
    }
    return nlohmann::json{{"version", kRecoveryFormatVersion},
                          {"share_set", to_hex(share_set)},
                          {"threshold", threshold},
                          {"enc", to_hex(sealed->enc)},
                          {"encrypted_share", to_hex(sealed->ciphertext)}};
}

Result<std::vector<ledger::LedgerSecret>> parse_unwrapped(ByteSpan plaintext) {
    ByteReader reader(plaintext);
    uint32_t count = 0;
    if (!reader.read_u32(count) || count == 0 || count > ledger::kMaxLedgerSecrets ||
        reader.remaining() != size_t{count} * kWrappedSecretRecordSize) {
        return error(Errc::kCorrupt, "unwrapped ledger secrets are malformed");
    }
    std::vector<ledger::LedgerSecret> secrets;
    for (uint32_t i = 0; i < count; ++i) {
        ledger::LedgerSecret secret;
        if (!reader.read_u32(secret.version) ||
            !reader.read_bytes(ledger::kLedgerSecretSize, secret.key)) {
            return error(Errc::kCorrupt, "unwrapped ledger secrets are truncated");
        }
        if (!secrets.empty() && secret.version <= secrets.back().version) {
            return error(Errc::kCorrupt, "unwrapped ledger secret versions do not increase");
        }
        secrets.push_back(std::move(secret));
    }
    return secrets;
}

// Parses and checks `shares` against `info`; returns the Shamir shares (secret).
Result<std::vector<crypto::ShamirShare>> collect_shamir_shares(const RecoveryInfo& info,
                                                               std::span<const Bytes> shares) {
    COFFER_ASSIGN_OR_RETURN(Bytes share_set, from_hex(info.share_set));
    std::vector<crypto::ShamirShare> out;
    std::set<uint8_t> points;
    for (const Bytes& data : shares) {
        auto parsed = parse_plain_share(data);
        if (!parsed.ok()) {
            wipe_shares(out);
            return parsed.status();
        }
        Status accepted = Status::ok_status();
        if (parsed->share_set != share_set) {
            accepted = error(Errc::kFailedPrecondition, "share from another share set (" +
                                                            to_hex(parsed->share_set) +
                                                            ", expected " + info.share_set + ")");
        } else if (parsed->shamir.x > info.share_count) {
            accepted =
                error(Errc::kInvalidArgument, "share point " + std::to_string(parsed->shamir.x) +
                                                  " is beyond the share count");
        } else if (recovery_share_digest(data) != info.share_digests[parsed->shamir.x - 1]) {
            accepted = error(Errc::kCrypto, "share " + std::to_string(parsed->shamir.x) +
                                                " is forged or corrupted: it does not match the "
                                                "digest issued for it");
        } else if (!points.insert(parsed->shamir.x).second) {
            accepted = error(Errc::kConflict,
                             "share " + std::to_string(parsed->shamir.x) + " already received");
        }
        out.push_back(std::move(parsed->shamir));
        if (!accepted.ok()) {
            wipe_shares(out);
            return accepted;
        }
    }
    return out;
}

Result<Bytes> combine_wrapping_key(std::vector<crypto::ShamirShare>& shares, size_t threshold) {
    if (threshold == 1) {
        return shares.front().y;
    }
    auto key = crypto::shamir_combine(shares, threshold);
    if (!key.ok()) {
        return error(Errc::kInvalidArgument,
                     "cannot combine the shares: " + key.status().message());
    }
    return std::move(key).value();
}

Result<std::vector<ledger::LedgerSecret>> unwrap(const RecoveryInfo& info, ByteSpan key) {
    ByteSpan blob = info.wrapped_ledger_secrets;
    ByteSpan iv = blob.subspan(1, kWrapIvSize);
    auto plaintext = crypto::aes_gcm_open(key, iv, wrap_aad(info.threshold, info.share_count),
                                          blob.subspan(1 + kWrapIvSize));
    if (!plaintext.ok()) {
        return error(Errc::kCrypto,
                     "shares do not reconstruct the wrapping key (a share is forged, corrupted "
                     "or from another issuance)");
    }
    Wiper wipe_plaintext(plaintext.value());
    return parse_unwrapped(plaintext.value());
}

Result<std::vector<ledger::LedgerSecret>> recover_with_info(const RecoveryInfo& info,
                                                            std::span<const Bytes> shares) {
    COFFER_ASSIGN_OR_RETURN(auto shamir_shares, collect_shamir_shares(info, shares));
    if (shamir_shares.size() < info.threshold) {
        wipe_shares(shamir_shares);
        return error(Errc::kFailedPrecondition, "not enough shares (" +
                                                    std::to_string(shamir_shares.size()) + " of " +
                                                    std::to_string(info.threshold) + ")");
    }

    auto key = combine_wrapping_key(shamir_shares, info.threshold);
    wipe_shares(shamir_shares);
    if (!key.ok()) {
        return key.status();
    }
    Wiper wipe_key(key.value());
    auto secrets = unwrap(info, key.value());
    if (secrets.ok()) {
        spdlog::info("gov.recovery_secrets_unwrapped share_set={} secrets={}", info.share_set,
                     secrets->size());
    }
    return secrets;
}

}  // namespace

Result<RecoveryIssuance> issue_recovery_shares(
    const std::vector<ledger::LedgerSecret>& ledger_secrets, const RecoveryMembers& members,
    size_t threshold, const std::vector<std::string>& previous_service_fingerprints) {
    COFFER_RETURN_IF_ERROR(validate_ledger_secrets(ledger_secrets));
    COFFER_RETURN_IF_ERROR(validate_members(members, threshold));
    COFFER_RETURN_IF_ERROR(validate_previous_fingerprints(previous_service_fingerprints));
    size_t n = members.size();

    Bytes wrapping_key = crypto::random_bytes(kWrappingKeySize);
    Wiper wipe_key(wrapping_key);
    COFFER_ASSIGN_OR_RETURN(Bytes wrapped,
                            wrap_ledger_secrets(ledger_secrets, wrapping_key, threshold, n));
    crypto::Sha256Digest digest = crypto::sha256(wrapped);
    Bytes share_set(digest.begin(), digest.end());

    COFFER_ASSIGN_OR_RETURN(auto shamir_shares, split_wrapping_key(wrapping_key, threshold, n));
    COFFER_CHECK(shamir_shares.size() == n, "one Shamir share per member");

    RecoveryIssuance issuance;
    issuance.share_set = to_hex(share_set);
    std::vector<std::string> share_digests;
    size_t index = 0;
    for (const auto& [fingerprint, public_key] : members) {
        Bytes plain = encode_plain_share(share_set, shamir_shares[index++]);
        Wiper wipe_plain(plain);
        share_digests.push_back(recovery_share_digest(plain));
        auto value = seal_member_share(fingerprint, public_key, share_set, threshold, plain);
        if (!value.ok()) {
            wipe_shares(shamir_shares);
            return value.status();
        }
        issuance.shares.emplace(fingerprint, std::move(value).value());
    }
    wipe_shares(shamir_shares);

    issuance.recovery =
        nlohmann::json{{"version", kRecoveryFormatVersion},
                       {"share_set", issuance.share_set},
                       {"threshold", threshold},
                       {"share_count", n},
                       {"wrapped_ledger_secrets", to_hex(wrapped)},
                       {"share_digests", share_digests},
                       {"previous_service_fingerprints", previous_service_fingerprints}};
    spdlog::info("gov.recovery_shares_issued share_set={} threshold={} members={} secrets={}",
                 issuance.share_set, threshold, n, ledger_secrets.size());
    return issuance;
}

Result<RecoveryMembers> recovery_members_from_governance(
    const std::map<std::string, nlohmann::json>& members_map) {
    RecoveryMembers members;
    for (const auto& [fingerprint, value] : members_map) {
        if (!is_fingerprint(fingerprint)) {
            return error(Errc::kInvalidArgument,
                         "member fingerprint is not 64 lower-case hex characters");
        }
        if (!value.is_object()) {
            return error(Errc::kInvalidArgument, "member " + fingerprint + " is not an object");
        }
        auto status = value.find("status");
        if (status != value.end() && !(status->is_string() && *status == "active")) {
            continue;
        }
        auto pem = value.find("encryption_public_key");
        if (pem == value.end() || pem->is_null()) {
            continue;
        }
        if (!pem->is_string()) {
            return error(Errc::kInvalidArgument,
                         "encryption_public_key of member " + fingerprint + " is not a string");
        }
        auto key = crypto::x25519_public_from_pem(pem->get<std::string>());
        if (!key.ok()) {
            return key.status().with_context("member " + fingerprint + ": ");
        }
        if (members.size() >= kMaxRecoveryMembers) {
            return error(Errc::kResourceExhausted, "more than " +
                                                       std::to_string(kMaxRecoveryMembers) +
                                                       " members with an encryption key");
        }
        members.emplace(fingerprint, std::move(key).value());
    }
    return members;
}

Result<Bytes> decrypt_share(const nlohmann::json& share_value, ByteSpan member_private_key,
                            std::string_view member_fingerprint) {
    COFFER_RETURN_IF_ERROR(check_version(share_value, "recovery share value"));
    if (!is_fingerprint(member_fingerprint)) {
        return error(Errc::kInvalidArgument,
                     "member fingerprint is not 64 lower-case hex characters");
    }
    COFFER_ASSIGN_OR_RETURN(Bytes share_set, get_hex(share_value, "share_set", kShareSetSize));
    COFFER_ASSIGN_OR_RETURN(uint64_t threshold, get_uint(share_value, "threshold"));
    COFFER_ASSIGN_OR_RETURN(Bytes enc, get_hex(share_value, "enc", crypto::kHpkeEncSize));
    COFFER_ASSIGN_OR_RETURN(Bytes ciphertext,
                            get_hex(share_value, "encrypted_share", kEncryptedShareSize));
    if (share_set.size() != kShareSetSize || enc.size() != crypto::kHpkeEncSize ||
        ciphertext.size() != kEncryptedShareSize || threshold < 1 ||
        threshold > kMaxRecoveryMembers) {
        return error(Errc::kInvalidArgument, "recovery share value has a field of the wrong size");
    }

    auto plain = crypto::hpke_open(crypto::HpkeSuite{}, member_private_key, enc,
                                   as_bytes(kRecoveryShareHpkeInfo),
                                   share_aad(share_set, member_fingerprint, threshold), ciphertext);
    if (!plain.ok()) {
        if (plain.status().code() == Errc::kInvalidArgument) {
            return plain.status();
        }
        return error(Errc::kCrypto,
                     "cannot decrypt the recovery share: wrong member key, another member's "
                     "share, or a modified share value");
    }
    auto parsed = parse_plain_share(plain.value());
    if (!parsed.ok() || parsed->share_set != share_set) {
        OPENSSL_cleanse(plain->data(), plain->size());
        if (parsed.ok()) {
            OPENSSL_cleanse(parsed->shamir.y.data(), parsed->shamir.y.size());
        }
        return error(Errc::kCorrupt, "decrypted share does not match its share value");
    }
    OPENSSL_cleanse(parsed->shamir.y.data(), parsed->shamir.y.size());
    return std::move(plain).value();
}

std::string recovery_share_digest(ByteSpan share) {
    crypto::Sha256Hasher hasher;
    hasher.update(as_bytes(kShareDigestLabel));
    hasher.update(share);
    return to_hex(hasher.finish());
}

std::string recovery_share_to_text(ByteSpan share) {
    return crypto::base64_encode(share);
}

Result<Bytes> recovery_share_from_text(std::string_view text) {
    if (text.size() > 2 * kRecoveryShareSize) {
        return error(Errc::kInvalidArgument, "recovery share text is too long");
    }
    auto bytes = crypto::base64_decode(text);
    if (!bytes.ok()) {
        return error(Errc::kInvalidArgument, "recovery share text is not canonical base64");
    }
    auto parsed = parse_plain_share(bytes.value());
    if (!parsed.ok()) {
        OPENSSL_cleanse(bytes->data(), bytes->size());
        return parsed.status();
    }
    OPENSSL_cleanse(parsed->shamir.y.data(), parsed->shamir.y.size());
    return std::move(bytes).value();
}

Result<RecoveryInfo> parse_recovery_value(const nlohmann::json& recovery_value) {
    COFFER_RETURN_IF_ERROR(check_version(recovery_value, "recovery value"));
    RecoveryInfo info;
    COFFER_ASSIGN_OR_RETURN(info.share_set, get_string(recovery_value, "share_set"));
    COFFER_ASSIGN_OR_RETURN(uint64_t threshold, get_uint(recovery_value, "threshold"));
    COFFER_ASSIGN_OR_RETURN(uint64_t share_count, get_uint(recovery_value, "share_count"));
    COFFER_ASSIGN_OR_RETURN(info.wrapped_ledger_secrets,
                            get_hex(recovery_value, "wrapped_ledger_secrets", kMaxWrappedBlobSize));
    if (!is_fingerprint(info.share_set)) {
        return error(Errc::kInvalidArgument, "share_set is not 64 lower-case hex characters");
    }
    if (share_count < 1 || share_count > kMaxRecoveryMembers || threshold < 1) {
        return error(Errc::kInvalidArgument, "threshold or share_count out of range");
    }
    if (threshold > share_count) {
        return error(Errc::kCorrupt, "threshold exceeds the share count");
    }
    info.threshold = threshold;
    info.share_count = share_count;

    const Bytes& blob = info.wrapped_ledger_secrets;
    if (blob.size() < kMinWrappedBlobSize || blob[0] != kRecoveryFormatVersion ||
        (blob.size() - kMinWrappedBlobSize) % kWrappedSecretRecordSize != 0) {
        return error(Errc::kInvalidArgument, "wrapped_ledger_secrets is malformed");
    }
    if (to_hex(crypto::sha256(blob)) != info.share_set) {
        return error(Errc::kCorrupt, "share_set is not the digest of wrapped_ledger_secrets");
    }

    COFFER_ASSIGN_OR_RETURN(info.share_digests,
                            parse_digest_list(recovery_value, "share_digests", share_count));
    if (info.share_digests.size() != share_count) {
        return error(Errc::kInvalidArgument, "share_digests must list share_count digests");
    }
    if (recovery_value.contains("previous_service_fingerprints")) {
        COFFER_ASSIGN_OR_RETURN(info.previous_service_fingerprints,
                                parse_digest_list(recovery_value, "previous_service_fingerprints",
                                                  kMaxPreviousServiceFingerprints));
    }
    return info;
}

Result<std::vector<ledger::LedgerSecret>> recover_ledger_secrets(
    const nlohmann::json& recovery_value, std::span<const Bytes> shares) {
    COFFER_ASSIGN_OR_RETURN(RecoveryInfo info, parse_recovery_value(recovery_value));
    return recover_with_info(info, shares);
}

Result<ShareCollector> ShareCollector::create(const nlohmann::json& recovery_value) {
    COFFER_ASSIGN_OR_RETURN(RecoveryInfo info, parse_recovery_value(recovery_value));
    return ShareCollector(std::move(info));
}

ShareCollector& ShareCollector::operator=(ShareCollector&& other) noexcept {
    if (this != &other) {
        wipe();
        info_ = std::move(other.info_);
        shares_ = std::move(other.shares_);
    }
    return *this;
}

ShareCollector::~ShareCollector() {
    wipe();
}

void ShareCollector::wipe() {
    for (auto& share : shares_) {
        OPENSSL_cleanse(share.data(), share.size());
    }
    shares_.clear();
}

Status ShareCollector::submit(ByteSpan share) {
    std::vector<Bytes> candidate = shares_;
    candidate.emplace_back(share.begin(), share.end());
    auto checked = collect_shamir_shares(info_, candidate);
    for (auto& bytes : candidate) {
        OPENSSL_cleanse(bytes.data(), bytes.size());
    }
    if (!checked.ok()) {
        return checked.status();
    }
    wipe_shares(checked.value());
    shares_.emplace_back(share.begin(), share.end());
    return Status::ok_status();
}

std::string ShareCollector::progress() const {
    return std::to_string(shares_.size()) + " of " + std::to_string(info_.threshold) +
           " shares received";
}

Result<std::vector<ledger::LedgerSecret>> ShareCollector::recover() const {
    return recover_with_info(info_, shares_);
}

}  // namespace coffer::gov
