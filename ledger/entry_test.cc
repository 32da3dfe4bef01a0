#include <gtest/gtest.h>

#include "common/bytes.h"
#include "crypto/sha256.h"
#include "kv/write_set.h"
#include "ledger/entry.h"
#include "ledger/secrets.h"

namespace coffer::ledger {
namespace {

kv::WriteSet mixed_write_set() {
    kv::WriteSet ws;
    ws.maps["public:accounts"][to_bytes("alice")] = to_bytes("100");
    ws.maps["public:accounts"][to_bytes("bob")] = std::nullopt;
    ws.maps["records"][to_bytes("patient-7")] = to_bytes("diagnosis: private");
    ws.maps["records"][to_bytes("patient-8")] = std::nullopt;
    return ws;
}

LedgerSecrets secrets_v1() {
    LedgerSecrets s;
    EXPECT_TRUE(s.add(make_random_ledger_secret(1)).ok());
    return s;
}

TEST(Entry, RoundTripsPublicAndPrivateWrites) {
    LedgerSecrets secrets = secrets_v1();
    EntryEncoder encoder;
    kv::WriteSet ws = mixed_write_set();
    auto bytes = encoder.encode(kv::TxId{3, 17}, ws, *secrets.current(), false);
    ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();

    auto entry = parse_entry(*bytes);
    ASSERT_TRUE(entry.ok()) << entry.status().to_string();
    EXPECT_EQ(entry->header.view, 3u);
    EXPECT_EQ(entry->header.seqno, 17u);
    EXPECT_EQ(entry->header.secret_version, 1u);
    EXPECT_FALSE(entry->header.is_signature());
    EXPECT_EQ(entry->header_bytes.size(), kEntryHeaderSize);
    EXPECT_GT(entry->private_part.size(), crypto::kAesGcmTagSize);

    auto decoded = decode_write_set(*entry, secrets);
    ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
    EXPECT_EQ(decoded->maps, ws.maps);

    auto pub = decode_public_write_set(*entry);
    ASSERT_TRUE(pub.ok());
    EXPECT_EQ(pub->maps.size(), 1u);
    EXPECT_TRUE(pub->maps.count("public:accounts"));
}

TEST(Entry, PrivatePartDoesNotContainThePlaintext) {
    LedgerSecrets secrets = secrets_v1();
    EntryEncoder encoder;
    auto bytes = encoder.encode(kv::TxId{1, 1}, mixed_write_set(), *secrets.current(), false);
    ASSERT_TRUE(bytes.ok());
    std::string text = to_string(*bytes);
    EXPECT_EQ(text.find("diagnosis"), std::string::npos);
    EXPECT_EQ(text.find("patient-7"), std::string::npos);
    EXPECT_NE(text.find("alice"), std::string::npos);
}

TEST(Entry, EmptyPrivateWriteSetHasNoCiphertext) {
    LedgerSecrets secrets = secrets_v1();
    EntryEncoder encoder;
    kv::WriteSet ws;
    ws.maps["public:a"][to_bytes("k")] = to_bytes("v");
    auto bytes = encoder.encode(kv::TxId{1, 1}, ws, *secrets.current(), true);
    ASSERT_TRUE(bytes.ok());
    auto entry = parse_entry(*bytes);
    ASSERT_TRUE(entry.ok());
    EXPECT_EQ(entry->header.private_size, 0u);
    EXPECT_TRUE(entry->private_part.empty());
    EXPECT_TRUE(entry->header.is_signature());
    // No secret is needed to read it back.
    auto decoded = decode_write_set(*entry, LedgerSecrets{});
    ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
    EXPECT_EQ(decoded->maps, ws.maps);
    // Nothing was sealed, so the same (view, seqno) may still be sealed once.
    EXPECT_EQ(encoder.last_sealed(1), (kv::TxId{0, 0}));
}

TEST(Entry, ChangingAnyPublicOrHeaderByteBreaksThePrivatePart) {
    LedgerSecrets secrets = secrets_v1();
    EntryEncoder encoder;
    auto bytes = encoder.encode(kv::TxId{2, 5}, mixed_write_set(), *secrets.current(), false);
    ASSERT_TRUE(bytes.ok());
    auto clean = parse_entry(*bytes);
    ASSERT_TRUE(clean.ok());
    size_t public_end = kEntryHeaderSize + clean->header.public_size;
    // Header fields that keep the entry parsable (view, seqno) and every public byte.
    std::vector<size_t> offsets = {8, 9, 16, 17};
    for (size_t i = kEntryHeaderSize; i < public_end; ++i) {
        offsets.push_back(i);
    }
    for (size_t offset : offsets) {
        Bytes changed = *bytes;
        changed[offset] ^= 0x01;
        auto entry = parse_entry(changed);
        ASSERT_TRUE(entry.ok()) << offset;
        auto priv = decode_private_write_set(*entry, secrets);
        ASSERT_FALSE(priv.ok()) << "offset " << offset;
        EXPECT_EQ(priv.status().code(), Errc::kCrypto) << offset;
    }
}

TEST(Entry, WrongKeyOrMissingVersionFails) {
    LedgerSecrets secrets = secrets_v1();
    EntryEncoder encoder;
    auto bytes = encoder.encode(kv::TxId{1, 1}, mixed_write_set(), *secrets.current(), false);
    ASSERT_TRUE(bytes.ok());
    auto entry = parse_entry(*bytes);
    ASSERT_TRUE(entry.ok());

    LedgerSecrets other = secrets_v1();  // same version, another key
    auto wrong = decode_write_set(*entry, other);
    ASSERT_FALSE(wrong.ok());
    EXPECT_EQ(wrong.status().code(), Errc::kCrypto);

    LedgerSecrets later;
    ASSERT_TRUE(later.add(make_random_ledger_secret(2)).ok());
    auto missing = decode_write_set(*entry, later);
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.status().code(), Errc::kNotFound);
}

TEST(Entry, RekeyedEntriesDecodeWithEveryVersion) {
    LedgerSecrets secrets = secrets_v1();
    EntryEncoder encoder;
    auto old_entry = encoder.encode(kv::TxId{1, 1}, mixed_write_set(), *secrets.current(), false);
    ASSERT_TRUE(secrets.add(make_random_ledger_secret(2)).ok());
    auto new_entry = encoder.encode(kv::TxId{1, 2}, mixed_write_set(), *secrets.current(), false);
    ASSERT_TRUE(old_entry.ok() && new_entry.ok());
    auto a = parse_entry(*old_entry);
    auto b = parse_entry(*new_entry);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->header.secret_version, 1u);
    EXPECT_EQ(b->header.secret_version, 2u);
    EXPECT_TRUE(decode_write_set(*a, secrets).ok());
    EXPECT_TRUE(decode_write_set(*b, secrets).ok());
}

TEST(Entry, SecretsRefuseBadSizesAndOldVersions) {
    LedgerSecrets s;
    EXPECT_EQ(s.add(LedgerSecret{1, Bytes(16)}).code(), Errc::kInvalidArgument);
    ASSERT_TRUE(s.add(make_random_ledger_secret(5)).ok());
    EXPECT_EQ(s.add(make_random_ledger_secret(5)).code(), Errc::kInvalidArgument);
    EXPECT_EQ(s.add(make_random_ledger_secret(4)).code(), Errc::kInvalidArgument);
    EXPECT_EQ(s.current()->version, 5u);
    EXPECT_EQ(s.get(4), nullptr);
}

TEST(EntryDeathTest, SealingTheSameViewAndSeqnoTwiceAborts) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(
        {
            LedgerSecrets secrets = secrets_v1();
            EntryEncoder encoder;
            auto first =
                encoder.encode(kv::TxId{4, 9}, mixed_write_set(), *secrets.current(), false);
            COFFER_CHECK(first.ok(), "first encode");
            kv::WriteSet other = mixed_write_set();
            other.maps["records"][to_bytes("patient-9")] = to_bytes("another plaintext");
            (void)encoder.encode(kv::TxId{4, 9}, other, *secrets.current(), false);
        },
        "IV reuse");
}

TEST(EntryDeathTest, SealingAnEarlierViewAndSeqnoAborts) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(
        {
            LedgerSecrets secrets = secrets_v1();
            EntryEncoder encoder;
            COFFER_CHECK(
                encoder.encode(kv::TxId{5, 10}, mixed_write_set(), *secrets.current(), false).ok(),
                "first encode");
            (void)encoder.encode(kv::TxId{4, 11}, mixed_write_set(), *secrets.current(), false);
        },
        "IV reuse");
}

TEST(Entry, HigherViewMayRepeatASeqno) {
    LedgerSecrets secrets = secrets_v1();
    EntryEncoder encoder;
    ASSERT_TRUE(encoder.encode(kv::TxId{1, 10}, mixed_write_set(), *secrets.current(), false).ok());
    auto again = encoder.encode(kv::TxId{2, 10}, mixed_write_set(), *secrets.current(), false);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(encoder.last_sealed(1), (kv::TxId{2, 10}));
}

TEST(Entry, ViewsAbove32BitsAreRefused) {
    LedgerSecrets secrets = secrets_v1();
    EntryEncoder encoder;
    auto r = encoder.encode(kv::TxId{uint64_t{1} << 32, 1}, mixed_write_set(), *secrets.current(),
                            false);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Errc::kInvalidArgument);
}

TEST(Entry, IvIsViewThenSeqnoLittleEndian) {
    auto iv = entry_iv(0x01020304, 0x1122334455667788);
    Bytes expected = *from_hex(
        "04030201"
        "8877665544332211");
    EXPECT_EQ(Bytes(iv.begin(), iv.end()), expected);
}

TEST(Entry, ParseRejectsMalformedEntries) {
    LedgerSecrets secrets = secrets_v1();
    EntryEncoder encoder;
    auto bytes = encoder.encode(kv::TxId{1, 1}, mixed_write_set(), *secrets.current(), false);
    ASSERT_TRUE(bytes.ok());

    Bytes shorter(bytes->begin(), bytes->end() - 1);
    EXPECT_EQ(parse_entry(shorter).status().code(), Errc::kCorrupt);
    Bytes longer = *bytes;
    longer.push_back(0);
    EXPECT_EQ(parse_entry(longer).status().code(), Errc::kCorrupt);
    EXPECT_EQ(parse_entry(ByteSpan(bytes->data(), 10)).status().code(), Errc::kCorrupt);

    Bytes version = *bytes;
    version[0] = 2;
    EXPECT_EQ(parse_entry(version).status().code(), Errc::kUnsupported);
    Bytes flags = *bytes;
    flags[1] = 0x80;
    EXPECT_EQ(parse_entry(flags).status().code(), Errc::kCorrupt);
    Bytes reserved = *bytes;
    reserved[2] = 1;
    EXPECT_EQ(parse_entry(reserved).status().code(), Errc::kCorrupt);
    Bytes seqno_zero = *bytes;
    std::fill(seqno_zero.begin() + 16, seqno_zero.begin() + 24, 0);
    EXPECT_EQ(parse_entry(seqno_zero).status().code(), Errc::kCorrupt);
    Bytes huge_view = *bytes;
    huge_view[12] = 1;  // view byte 4: above 2^32
    EXPECT_EQ(parse_entry(huge_view).status().code(), Errc::kCorrupt);
}

TEST(Entry, LeafFollowsTheDocumentedDefinition) {
    LedgerSecrets secrets = secrets_v1();
    EntryEncoder encoder;
    auto bytes = encoder.encode(kv::TxId{1, 1}, mixed_write_set(), *secrets.current(), false);
    ASSERT_TRUE(bytes.ok());
    auto entry = parse_entry(*bytes);
    ASSERT_TRUE(entry.ok());
    Bytes preimage = {0x00};
    put_bytes(preimage, entry->header_bytes);
    put_bytes(preimage, crypto::sha256(entry->public_part));
    put_bytes(preimage, crypto::sha256(entry->private_part));
    EXPECT_EQ(entry_leaf(*entry), crypto::sha256(preimage));
}

}  // namespace
}  // namespace coffer::ledger
