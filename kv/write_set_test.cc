// Write-set serialization: round trips, determinism, and strict rejection of bad input.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "kv/write_set.h"

namespace coffer::kv {
namespace {

Bytes b(std::string_view s) {
    return to_bytes(s);
}

WriteSet sample_write_set() {
    WriteSet ws;
    ws.maps["public:nodes"][b("n1")] = b("info");
    ws.maps["public:nodes"][b("n0")] = std::nullopt;
    ws.maps["public:sigs"][Bytes{}] = Bytes{};
    ws.maps["accounts"][Bytes{0x00, 0xff, 0x00}] = Bytes{0x01, 0x00, 0x02};
    ws.maps["accounts"][b("alice")] = Bytes{};
    ws.maps["accounts"][b("bob")] = std::nullopt;
    ws.maps["secrets"][b("k")] = Bytes(1000, 0xab);
    return ws;
}

TEST(WriteSet, IsPublicMapLooksAtThePrefixOnly) {
    EXPECT_TRUE(is_public_map("public:x"));
    EXPECT_TRUE(is_public_map("public:"));
    EXPECT_FALSE(is_public_map("public"));
    EXPECT_FALSE(is_public_map("Public:x"));
    EXPECT_FALSE(is_public_map("x public:"));
}

TEST(WriteSet, PartsRoundTripAndMergeBackToTheOriginal) {
    WriteSet ws = sample_write_set();
    Bytes pub = serialize_write_set(ws, Visibility::kPublic);
    Bytes priv = serialize_write_set(ws, Visibility::kPrivate);

    auto pub_ws = deserialize_write_set(pub, Visibility::kPublic);
    auto priv_ws = deserialize_write_set(priv, Visibility::kPrivate);
    ASSERT_TRUE(pub_ws.ok()) << pub_ws.status().to_string();
    ASSERT_TRUE(priv_ws.ok()) << priv_ws.status().to_string();
    EXPECT_EQ(pub_ws->maps.size(), 2u);
    EXPECT_EQ(priv_ws->maps.size(), 2u);

    WriteSet merged = std::move(*pub_ws);
    ASSERT_TRUE(merge_write_sets(merged, std::move(*priv_ws)).ok());
    EXPECT_EQ(merged.maps, ws.maps);
    EXPECT_EQ(serialize_write_set(merged, Visibility::kPublic), pub);
}

TEST(WriteSet, EmptyWriteSetSerializesToAHeaderOnly) {
    WriteSet ws;
    ws.maps["accounts"];  // a map without entries is not written
    EXPECT_TRUE(ws.empty());
    Bytes bytes = serialize_write_set(ws, Visibility::kPrivate);
    EXPECT_EQ(bytes, (Bytes{1, 0, 0, 0, 0}));
    auto parsed = deserialize_write_set(bytes, Visibility::kPrivate);
    ASSERT_TRUE(parsed.ok());
    EXPECT_TRUE(parsed->maps.empty());
}

// The layout of docs/formats/write-set.md, byte by byte.
TEST(WriteSet, BytesFollowTheDocumentedLayout) {
    WriteSet ws;
    ws.maps["m"][b("k")] = b("v");
    ws.maps["m"][b("r")] = std::nullopt;
    EXPECT_EQ(to_hex(serialize_write_set(ws, Visibility::kPrivate)),
              "01"          // format version
              "01000000"    // map count
              "01006d"      // name length, "m"
              "02000000"    // entry count
              "010000006b"  // key length, "k"
              "01"          // put
              "0100000076"  // value length, "v"
              "0100000072"  // key length, "r"
              "02");        // remove
    EXPECT_EQ(ws.size_bytes(), serialize_write_set(ws, Visibility::kPrivate).size());
}

TEST(WriteSet, SerializationIsDeterministic) {
    WriteSet a;
    WriteSet c;
    for (int i = 0; i < 50; ++i) {
        a.maps["m" + std::to_string(i % 7)][b(std::to_string(i))] = b("v" + std::to_string(i));
    }
    for (int i = 49; i >= 0; --i) {
        c.maps["m" + std::to_string(i % 7)][b(std::to_string(i))] = b("v" + std::to_string(i));
    }
    EXPECT_EQ(serialize_write_set(a, Visibility::kPrivate),
              serialize_write_set(c, Visibility::kPrivate));
    EXPECT_EQ(a.size_bytes(), serialize_write_set(a, Visibility::kPrivate).size());
}

TEST(WriteSet, EveryTruncationIsRejected) {
    WriteSet ws = sample_write_set();
    for (Visibility v : {Visibility::kPublic, Visibility::kPrivate}) {
        Bytes full = serialize_write_set(ws, v);
        for (size_t n = 0; n < full.size(); ++n) {
            auto r = deserialize_write_set(ByteSpan(full).first(n), v);
            EXPECT_FALSE(r.ok()) << "accepted a truncation to " << n << " bytes";
        }
    }
}

// Builds a one-map write set by hand so that the tests can break any field.
struct Builder {
    Bytes out{1};
    Builder& u8(uint8_t v) {
        out.push_back(v);
        return *this;
    }
    Builder& u16(uint16_t v) {
        put_u16(out, v);
        return *this;
    }
    Builder& u32(uint32_t v) {
        put_u32(out, v);
        return *this;
    }
    Builder& str(std::string_view s) {
        put_bytes(out, as_bytes(s));
        return *this;
    }
    Builder& name(std::string_view s) { return u16(static_cast<uint16_t>(s.size())).str(s); }
    Builder& put(std::string_view k, std::string_view v) {
        return u32(static_cast<uint32_t>(k.size()))
            .str(k)
            .u8(1)
            .u32(static_cast<uint32_t>(v.size()))
            .str(v);
    }
    Builder& remove(std::string_view k) {
        return u32(static_cast<uint32_t>(k.size())).str(k).u8(2);
    }
};

void expect_rejected(const Bytes& data, Visibility v, Errc code, std::string_view why) {
    auto r = deserialize_write_set(data, v);
    ASSERT_FALSE(r.ok()) << "accepted: " << why;
    EXPECT_EQ(r.status().code(), code) << why << ": " << r.status().to_string();
}

TEST(WriteSet, CorruptionsAreRejected) {
    constexpr auto kPriv = Visibility::kPrivate;
    Bytes good = Builder().u32(1).name("m").u32(2).put("a", "1").remove("b").out;
    ASSERT_TRUE(deserialize_write_set(good, kPriv).ok());

    Bytes wrong_version = good;
    wrong_version[0] = 2;
    expect_rejected(wrong_version, kPriv, Errc::kUnsupported, "version 2");
    wrong_version[0] = 0;
    expect_rejected(wrong_version, kPriv, Errc::kUnsupported, "version 0");

    Bytes trailing = good;
    trailing.push_back(0);
    expect_rejected(trailing, kPriv, Errc::kCorrupt, "trailing byte");

    expect_rejected(good, Visibility::kPublic, Errc::kCorrupt, "private map in public part");
    expect_rejected(Builder().u32(1).name("public:m").u32(1).put("a", "1").out, kPriv,
                    Errc::kCorrupt, "public map in private part");

    expect_rejected(Builder().u32(1).name("m").u32(2).put("b", "1").put("a", "1").out, kPriv,
                    Errc::kCorrupt, "unsorted keys");
    expect_rejected(Builder().u32(1).name("m").u32(2).put("a", "1").remove("a").out, kPriv,
                    Errc::kCorrupt, "duplicate key");
    expect_rejected(
        Builder().u32(2).name("n").u32(1).put("a", "1").name("m").u32(1).put("a", "1").out, kPriv,
        Errc::kCorrupt, "unsorted maps");
    expect_rejected(
        Builder().u32(2).name("m").u32(1).put("a", "1").name("m").u32(1).put("b", "1").out, kPriv,
        Errc::kCorrupt, "duplicate map");

    expect_rejected(Builder().u32(1).name("m").u32(0).out, kPriv, Errc::kCorrupt, "empty map");
    expect_rejected(Builder().u32(1).name("").u32(1).put("a", "1").out, kPriv, Errc::kCorrupt,
                    "empty map name");
    expect_rejected(Builder().u32(1).name(std::string(256, 'm')).u32(1).put("a", "1").out, kPriv,
                    Errc::kCorrupt, "map name too long");
    expect_rejected(Builder().u32(1).name("m").u32(1).u32(1).str("a").u8(3).out, kPriv,
                    Errc::kCorrupt, "unknown entry kind");
    expect_rejected(Builder().u32(1).name("m").u32(1).u32(0xffffffff).str("a").u8(2).out, kPriv,
                    Errc::kCorrupt, "key length past the end");
    expect_rejected(Builder().u32(1).name("m").u32(1).u32(kMaxKeySize + 1).out, kPriv,
                    Errc::kCorrupt, "key length above the limit");
    expect_rejected(Builder().u32(1).name("m").u32(1).u32(1).str("a").u8(1).u32(5).str("ab").out,
                    kPriv, Errc::kCorrupt, "value length past the end");
    expect_rejected(Builder().u32(1).name("m").u32(1).u32(1).str("a").u8(1).u32(0x7fffffff).out,
                    kPriv, Errc::kCorrupt, "value length above the limit");
    expect_rejected(Builder().u32(0xffffffff).out, kPriv, Errc::kCorrupt, "huge map count");
    expect_rejected(Builder().u32(1).name("m").u32(0xffffffff).put("a", "1").out, kPriv,
                    Errc::kCorrupt, "huge entry count");
    expect_rejected(Builder().u32(2).name("m").u32(1).put("a", "1").out, kPriv, Errc::kCorrupt,
                    "fewer maps than counted");

    Bytes huge(kMaxWriteSetSize + 1, 0);
    huge[0] = 1;
    expect_rejected(huge, kPriv, Errc::kInvalidArgument, "input above kMaxWriteSetSize");
}

TEST(WriteSet, ErrorsNameTheOffset) {
    Bytes data = Builder().u32(1).name("m").u32(2).put("b", "1").put("a", "1").out;
    auto r = deserialize_write_set(data, Visibility::kPrivate);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("offset 23"), std::string::npos) << r.status().to_string();
}

// Random single-byte mutations never crash the parser, and whatever it accepts is canonical:
// serializing it again gives the same bytes.
TEST(WriteSet, MutatedInputIsRejectedOrCanonical) {
    constexpr int kMutations = 3000;
    const uint32_t seed = std::random_device{}();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    WriteSet ws = sample_write_set();
    for (Visibility v : {Visibility::kPublic, Visibility::kPrivate}) {
        Bytes full = serialize_write_set(ws, v);
        for (int i = 0; i < kMutations; ++i) {
            Bytes m = full;
            m[rng() % m.size()] = static_cast<uint8_t>(rng());
            auto r = deserialize_write_set(m, v);
            if (r.ok()) {
                EXPECT_EQ(serialize_write_set(*r, v), m);
            }
        }
    }
}

TEST(WriteSet, MergeRefusesAMapPresentInBoth) {
    WriteSet a;
    a.maps["m"][b("k")] = b("1");
    WriteSet c;
    c.maps["m"][b("j")] = b("2");
    c.maps["n"][b("j")] = b("2");
    Status s = merge_write_sets(a, std::move(c));
    EXPECT_EQ(s.code(), Errc::kInvalidArgument);
    EXPECT_EQ(a.maps.size(), 1u);
    EXPECT_EQ(a.maps["m"].size(), 1u);
}

}  // namespace
}  // namespace coffer::kv
