#include "ledger/entry.h"

#include <openssl/crypto.h>

#include <string>
#include <utility>

#include "common/check.h"

namespace coffer::ledger {

namespace {

constexpr uint8_t kLeafPrefix = 0x00;

Status corrupt(std::string message) {
    return error(Errc::kCorrupt, std::move(message));
}

void wipe(Bytes& plaintext) {
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
}

}  // namespace

Bytes encode_entry_header(const EntryHeader& header) {
    Bytes out;
    out.reserve(kEntryHeaderSize);
    out.push_back(header.format_version);
    out.push_back(header.flags);
    put_u16(out, 0);
    put_u32(out, header.secret_version);
    put_u64(out, header.view);
    put_u64(out, header.seqno);
    put_u32(out, header.public_size);
    put_u32(out, header.private_size);
    COFFER_CHECK(out.size() == kEntryHeaderSize, "entry header size");
    return out;
}

Result<EntryHeader> parse_entry_header(ByteSpan bytes) {
    if (bytes.size() != kEntryHeaderSize) {
        return corrupt("entry header is " + std::to_string(bytes.size()) + " bytes, expected " +
                       std::to_string(kEntryHeaderSize));
    }
    ByteReader r(bytes);
    EntryHeader h;
    uint16_t reserved = 0;
    r.read_u8(h.format_version);
    r.read_u8(h.flags);
    r.read_u16(reserved);
    r.read_u32(h.secret_version);
    r.read_u64(h.view);
    r.read_u64(h.seqno);
    r.read_u32(h.public_size);
    r.read_u32(h.private_size);
    COFFER_CHECK(r.ok() && r.at_end(), "header reader");

    if (h.format_version != kEntryFormatVersion) {
        return error(Errc::kUnsupported,
                     "entry format version " + std::to_string(h.format_version) +
                         " (this build reads version " + std::to_string(kEntryFormatVersion) + ")");
    }
    if ((h.flags & ~kEntryKnownFlags) != 0) {
        return corrupt("entry header has unknown flags 0x" + to_hex(ByteSpan(&h.flags, 1)));
    }
    if (reserved != 0) {
        return corrupt("entry header reserved field is not zero");
    }
    if (h.seqno == 0) {
        return corrupt("entry header has seqno 0");
    }
    if (h.view > kMaxEntryView) {
        return corrupt("entry header view " + std::to_string(h.view) + " exceeds 2^32-1");
    }
    if (h.public_size > kMaxEntryPublicSize || h.private_size > kMaxEntryPrivateSize) {
        return corrupt("entry header part size above its maximum");
    }
    if (h.private_size != 0 && h.private_size < crypto::kAesGcmTagSize) {
        return corrupt("entry private part is shorter than a GCM tag");
    }
    return h;
}

Result<DecodedEntry> parse_entry(ByteSpan entry) {
    if (entry.size() < kEntryHeaderSize) {
        return corrupt("entry is " + std::to_string(entry.size()) +
                       " bytes, shorter than its header");
    }
    DecodedEntry d;
    d.header_bytes = entry.first(kEntryHeaderSize);
    COFFER_ASSIGN_OR_RETURN(d.header, parse_entry_header(d.header_bytes));

    uint64_t expected = uint64_t{kEntryHeaderSize} + d.header.public_size + d.header.private_size;
    if (expected > kMaxEncodedEntrySize) {
        return corrupt("entry header sizes add up to " + std::to_string(expected) +
                       " bytes, above the maximum entry size");
    }
    if (entry.size() != expected) {
        return corrupt("entry is " + std::to_string(entry.size()) + " bytes, header says " +
                       std::to_string(expected));
    }
    d.public_part = entry.subspan(kEntryHeaderSize, d.header.public_size);
    d.private_part = entry.subspan(kEntryHeaderSize + d.header.public_size);
    return d;
}

std::array<uint8_t, kEntryIvSize> entry_iv(uint64_t view, uint64_t seqno) {
    COFFER_CHECK(view <= kMaxEntryView, "entry view must fit the 32-bit IV field");
    std::array<uint8_t, kEntryIvSize> iv{};
    for (size_t i = 0; i < 4; ++i) {
        iv[i] = static_cast<uint8_t>(view >> (8 * i));
    }
    for (size_t i = 0; i < 8; ++i) {
        iv[4 + i] = static_cast<uint8_t>(seqno >> (8 * i));
    }
    return iv;
}

crypto::Sha256Digest entry_leaf_from_digests(ByteSpan header_bytes,
                                             const crypto::Sha256Digest& public_digest,
                                             const crypto::Sha256Digest& private_digest) {
    crypto::Sha256Hasher h;
    const uint8_t prefix = kLeafPrefix;
    h.update(ByteSpan(&prefix, 1));
    h.update(header_bytes);
    h.update(public_digest);
    h.update(private_digest);
    return h.finish();
}

crypto::Sha256Digest entry_leaf(const DecodedEntry& entry) {
    return entry_leaf_from_digests(entry.header_bytes, crypto::sha256(entry.public_part),
                                   crypto::sha256(entry.private_part));
}

Result<kv::WriteSet> decode_public_write_set(const DecodedEntry& entry) {
    auto ws = kv::deserialize_write_set(entry.public_part, kv::Visibility::kPublic);
    if (!ws.ok()) {
        return ws.status().with_context("public part of entry " + entry.tx_id().to_string() + ": ");
    }
    return ws;
}

Result<kv::WriteSet> decode_private_write_set(const DecodedEntry& entry,
                                              const LedgerSecrets& secrets) {
    if (entry.private_part.empty()) {
        return kv::WriteSet{};
    }
    const LedgerSecret* secret = secrets.get(entry.header.secret_version);
    if (secret == nullptr) {
        return error(Errc::kNotFound, "entry " + entry.tx_id().to_string() +
                                          " needs ledger secret version " +
                                          std::to_string(entry.header.secret_version));
    }

    auto iv = entry_iv(entry.header.view, entry.header.seqno);
    Bytes aad(entry.header_bytes.begin(), entry.header_bytes.end());
    put_bytes(aad, entry.public_part);
    auto plain = crypto::aes_gcm_open(secret->key, iv, aad, entry.private_part);
    if (!plain.ok()) {
        return error(Errc::kCrypto, "private part of entry " + entry.tx_id().to_string() +
                                        " does not decrypt under secret version " +
                                        std::to_string(entry.header.secret_version));
    }

    auto priv = kv::deserialize_write_set(*plain, kv::Visibility::kPrivate);
    wipe(*plain);
    if (!priv.ok()) {
        return priv.status().with_context("private part of entry " + entry.tx_id().to_string() +
                                          ": ");
    }
    return priv;
}

Result<kv::WriteSet> decode_write_set(const DecodedEntry& entry, const LedgerSecrets& secrets) {
    COFFER_ASSIGN_OR_RETURN(kv::WriteSet ws, decode_public_write_set(entry));
    COFFER_ASSIGN_OR_RETURN(kv::WriteSet priv, decode_private_write_set(entry, secrets));
    auto merged = kv::merge_write_sets(ws, std::move(priv));
    if (!merged.ok()) {
        return error(Errc::kCorrupt,
                     "entry " + entry.tx_id().to_string() + ": a map appears in both parts");
    }
    return ws;
}

EntryEncoder::KeyState::~KeyState() {
    wipe(raw_key);
}

Result<EntryEncoder::KeyState*> EntryEncoder::key_state(const LedgerSecret& secret) {
    if (secret.key.size() != kLedgerSecretSize) {
        return error(Errc::kInvalidArgument, "ledger secret has the wrong size");
    }
    auto it = keys_.find(secret.version);
    if (it != keys_.end()) {
        COFFER_CHECK(constant_time_equal(it->second.raw_key, secret.key),
                     "one ledger secret version used with two different keys");
        return &it->second;
    }
    COFFER_ASSIGN_OR_RETURN(crypto::AesGcmKey key, crypto::AesGcmKey::create(secret.key));
    auto [pos, inserted] = keys_.emplace(secret.version, KeyState(std::move(key), secret.key));
    COFFER_CHECK(inserted, "key state inserted");
    return &pos->second;
}

Result<Bytes> EntryEncoder::encode(kv::TxId id, const kv::WriteSet& ws, const LedgerSecret& secret,
                                   bool is_signature) {
    if (id.view > kMaxEntryView) {
        return error(Errc::kInvalidArgument,
                     "view " + std::to_string(id.view) + " does not fit the 32-bit entry IV");
    }
    if (id.seqno == 0) {
        return error(Errc::kInvalidArgument, "entry seqno must be at least 1");
    }
    COFFER_ASSIGN_OR_RETURN(KeyState * state, key_state(secret));

    Bytes public_part = kv::serialize_write_set(ws, kv::Visibility::kPublic);
    Bytes private_plain = kv::serialize_write_set(ws, kv::Visibility::kPrivate);
    // An empty private write set serializes to a bare version byte (or nothing): check the
    // write set itself, not the bytes.
    bool has_private = false;
    for (const auto& [name, entries] : ws.maps) {
        has_private = has_private || (!kv::is_public_map(name) && !entries.empty());
    }
    size_t private_size = has_private ? private_plain.size() + crypto::kAesGcmTagSize : 0;
    if (public_part.size() > kMaxEntryPublicSize || private_size > kMaxEntryPrivateSize ||
        kEntryHeaderSize + public_part.size() + private_size > kMaxEncodedEntrySize) {
        wipe(private_plain);
        return error(Errc::kInvalidArgument,
                     "write set of entry " + id.to_string() + " is above the maximum entry size");
    }

    EntryHeader h;
    h.flags = is_signature ? kEntryFlagSignature : 0;
    h.secret_version = secret.version;
    h.view = id.view;
    h.seqno = id.seqno;
    h.public_size = static_cast<uint32_t>(public_part.size());
    h.private_size = static_cast<uint32_t>(private_size);
    Bytes out = encode_entry_header(h);
    put_bytes(out, public_part);
    if (!has_private) {
        wipe(private_plain);
        return out;
    }

    // The nonce rule: strictly increasing (view, seqno) per key, checked before sealing.
    COFFER_CHECK(state->last_sealed < id, "ledger entry IV reuse: (view, seqno) " + id.to_string() +
                                              " is not above the last sealed " +
                                              state->last_sealed.to_string());
    state->last_sealed = id;
    auto iv = entry_iv(id.view, id.seqno);
    auto sealed = state->key.seal(iv, out, private_plain);
    wipe(private_plain);
    if (!sealed.ok()) {
        return error(Errc::kInternal, "sealing the private part of entry " + id.to_string() +
                                          " failed: " + sealed.status().message());
    }
    COFFER_CHECK(sealed->size() == private_size, "sealed private part size");
    put_bytes(out, *sealed);
    return out;
}

kv::TxId EntryEncoder::last_sealed(uint32_t version) const {
    auto it = keys_.find(version);
    return it == keys_.end() ? kv::TxId{} : it->second.last_sealed;
}

}  // namespace coffer::ledger
