// Signed member requests (COSE_Sign1, ES384): encoding, strict parsing, verification,
// freshness and the replay identity.
#include <cbor.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "crypto/ecdsa.h"
#include "crypto/sha256.h"
#include "gov/cbor_util.h"
#include "gov/signed_request.h"

namespace coffer::gov {
namespace {

using detail::CborWriter;

constexpr uint64_t kNow = 1'700'000'000;

// The P-384 group order n, big-endian (SEC 2, section 2.5.1).
constexpr std::string_view kP384OrderHex =
    "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc529"
    "73";

crypto::EcdsaPrivateKey new_key() {
    auto key = crypto::EcdsaPrivateKey::generate();
    COFFER_CHECK(key.ok(), "key generation failed in test");
    return std::move(key).value();
}

Bytes fingerprint(std::string_view seed) {
    crypto::Sha256Digest d = crypto::sha256(as_bytes(seed));
    return Bytes(d.begin(), d.end());
}

SignedRequestHeader ballot_header() {
    SignedRequestHeader h;
    h.type = "ballot";
    h.created_at = kNow;
    h.proposal_id = "00ff10ab";
    h.kid = fingerprint("member certificate");
    h.service_fingerprint = fingerprint("service certificate");
    return h;
}

VerifyPolicy policy() {
    VerifyPolicy p;
    p.expected_service_fingerprint = fingerprint("service certificate");
    p.now = kNow;
    return p;
}

Bytes must_sign(const SignedRequestHeader& h, std::string_view payload,
                const crypto::EcdsaPrivateKey& key) {
    auto signed_request = sign_request(h, as_bytes(payload), key);
    COFFER_CHECK(signed_request.ok(), signed_request.status().to_string());
    return std::move(signed_request).value();
}

// One protected header entry, already encoded.
struct Entry {
    Bytes key;
    Bytes value;
};

Bytes encoded(const std::function<void(CborWriter&)>& write) {
    CborWriter w;
    write(w);
    return w.take();
}

Bytes int_key(uint64_t label) {
    return encoded([&](CborWriter& w) { w.uint(label); });
}
Bytes text(std::string_view s) {
    return encoded([&](CborWriter& w) { w.tstr(s); });
}
Bytes bstr(ByteSpan b) {
    return encoded([&](CborWriter& w) { w.bstr(b); });
}
Bytes uint_value(uint64_t v) {
    return encoded([&](CborWriter& w) { w.uint(v); });
}
Bytes negint_value(uint64_t v) {
    return encoded([&](CborWriter& w) { w.negint(v); });
}

// The entries of ballot_header() in deterministic order (encoded keys sorted bytewise).
std::vector<Entry> ballot_entries() {
    SignedRequestHeader h = ballot_header();
    return {
        {int_key(1), negint_value(34)},
        {int_key(4), bstr(h.kid)},
        {text(kHeaderMsgType), text(h.type)},
        {text(kHeaderService), bstr(h.service_fingerprint)},
        {text(kHeaderCreatedAt), uint_value(h.created_at)},
        {text(kHeaderProposalId), text(*h.proposal_id)},
    };
}

Bytes encode_map(const std::vector<Entry>& entries) {
    CborWriter w;
    w.map_head(entries.size());
    for (const Entry& e : entries) {
        w.raw(e.key);
        w.raw(e.value);
    }
    return w.take();
}

Bytes envelope(ByteSpan protected_bytes, ByteSpan payload, ByteSpan signature) {
    CborWriter w;
    w.tag(kCoseSign1Tag);
    w.array_head(4);
    w.bstr(protected_bytes);
    w.map_head(0);
    w.bstr(payload);
    w.bstr(signature);
    return w.take();
}

// A COSE_Sign1 over arbitrary protected bytes, with a real signature over them.
Bytes signed_with_protected(ByteSpan protected_bytes, const crypto::EcdsaPrivateKey& key) {
    Bytes payload = to_bytes("{}");
    auto sig = key.sign_p1363(sig_structure(protected_bytes, payload));
    COFFER_CHECK(sig.ok(), "signing failed in test");
    return envelope(protected_bytes, payload, *sig);
}

void expect_invalid(ByteSpan message, std::string_view needle) {
    auto parsed = parse_request(message);
    ASSERT_FALSE(parsed.ok()) << "accepted, expected an error containing: " << needle;
    EXPECT_EQ(parsed.status().code(), Errc::kInvalidArgument) << parsed.status().to_string();
    EXPECT_NE(parsed.status().message().find(needle), std::string::npos)
        << "message: " << parsed.status().message() << "\nexpected to contain: " << needle;
}

void expect_header_invalid(const std::vector<Entry>& entries, std::string_view needle) {
    static const crypto::EcdsaPrivateKey key = new_key();
    SCOPED_TRACE(std::string(needle));
    expect_invalid(signed_with_protected(encode_map(entries), key), needle);
}

// n - s for a 48-byte big-endian scalar s.
Bytes p384_negate(ByteSpan s) {
    Bytes n = std::move(from_hex(kP384OrderHex)).value();
    Bytes out(n.size());
    int borrow = 0;
    for (size_t i = n.size(); i-- > 0;) {
        int d = int{n[i]} - int{s[i]} - borrow;
        borrow = d < 0 ? 1 : 0;
        out[i] = static_cast<uint8_t>(d + (borrow << 8));
    }
    COFFER_CHECK(borrow == 0, "s >= n in test");
    return out;
}

TEST(SignedRequest, RoundTripPreservesEveryField) {
    auto key = new_key();
    for (const SignedRequestHeader& h : {ballot_header(), [] {
                                             SignedRequestHeader p = ballot_header();
                                             p.type = "proposal";
                                             p.proposal_id.reset();
                                             return p;
                                         }()}) {
        Bytes message = must_sign(h, R"({"actions":[]})", key);
        auto verified = verify_request(message, key.public_key(), policy());
        ASSERT_TRUE(verified.ok()) << verified.status().to_string();
        EXPECT_EQ(verified->request.header, h);
        EXPECT_EQ(to_string(verified->request.payload), R"({"actions":[]})");
        EXPECT_EQ(verified->digest, request_digest(verified->request));
        EXPECT_EQ(verified->digest.size(), 32u);
    }
}

TEST(SignedRequest, TestEncoderMatchesLibraryEncoding) {
    auto encoded_header = encode_protected_header(ballot_header());
    ASSERT_TRUE(encoded_header.ok());
    EXPECT_EQ(*encoded_header, encode_map(ballot_entries()));
}

TEST(SignedRequest, ProtectedHeaderKnownAnswer) {
    SignedRequestHeader h;
    h.type = "proposal";
    h.created_at = 1;
    h.kid = Bytes(32, 0x11);
    h.service_fingerprint = Bytes(32, 0x22);
    auto encoded_header = encode_protected_header(h);
    ASSERT_TRUE(encoded_header.ok());
    std::string expected =
        "a5"
        "01"
        "38"
        "22"  // {1: -35,
        "04"
        "5820" +
        std::string(64, '1') +  // 4: h'11..',
        "6f" + to_hex(as_bytes(kHeaderMsgType)) + "68" +
        to_hex(as_bytes("proposal")) +  // "coffer.msg.type": "proposal",
        "72" + to_hex(as_bytes(kHeaderService)) + "5820" +
        std::string(64, '2') +                             // "coffer.msg.service": h'22..',
        "75" + to_hex(as_bytes(kHeaderCreatedAt)) + "01";  // created_at: 1}
    EXPECT_EQ(to_hex(*encoded_header), expected);
    EXPECT_EQ(to_hex(sig_structure(to_bytes("P"), to_bytes("x"))),
              "84"
              "6a" +
                  to_hex(as_bytes("Signature1")) +
                  "4150"
                  "40"
                  "4178");
}

TEST(SignedRequest, LibcborDecodesMessageAsTag18ArrayOfFour) {
    auto key = new_key();
    Bytes message = must_sign(ballot_header(), "payload", key);
    ASSERT_EQ(message[0], 0xd2);  // tag 18 in its one-byte head

    // libcbor before 0.11 refuses the one-byte heads of tags 6 to 20; a fixed libcbor must
    // see tag 18 over the array.
    cbor_load_result result{};
    cbor_item_t* root = cbor_load(message.data(), message.size(), &result);
    if (root != nullptr) {
        ASSERT_TRUE(cbor_isa_tag(root));
        EXPECT_EQ(cbor_tag_value(root), 18u);
        cbor_decref(&root);
    } else {
        EXPECT_EQ(result.error.code, CBOR_ERR_MALFORMATED);
        EXPECT_EQ(result.error.position, 0u);
    }

    cbor_item_t* array = cbor_load(message.data() + 1, message.size() - 1, &result);
    ASSERT_NE(array, nullptr);
    EXPECT_EQ(result.read, message.size() - 1);
    ASSERT_TRUE(cbor_isa_array(array));
    ASSERT_EQ(cbor_array_size(array), 4u);
    cbor_item_t** items = cbor_array_handle(array);
    EXPECT_TRUE(cbor_isa_bytestring(items[0]));
    EXPECT_TRUE(cbor_isa_map(items[1]));
    EXPECT_EQ(cbor_map_size(items[1]), 0u);
    EXPECT_EQ(cbor_bytestring_length(items[2]), 7u);
    EXPECT_EQ(cbor_bytestring_length(items[3]), 96u);

    cbor_item_t* header =
        cbor_load(cbor_bytestring_handle(items[0]), cbor_bytestring_length(items[0]), &result);
    ASSERT_NE(header, nullptr);
    EXPECT_TRUE(cbor_isa_map(header));
    EXPECT_EQ(cbor_map_size(header), 6u);
    cbor_decref(&header);
    cbor_decref(&array);
}

TEST(SignedRequest, SignRefusesInvalidHeaders) {
    auto key = new_key();
    std::vector<std::pair<std::function<void(SignedRequestHeader&)>, std::string>> cases = {
        {[](SignedRequestHeader& h) { h.type = "vote"; }, "must be one of"},
        {[](SignedRequestHeader& h) { h.proposal_id.reset(); }, "is required for a ballot"},
        {[](SignedRequestHeader& h) { h.type = "proposal"; }, "must be absent for a proposal"},
        {[](SignedRequestHeader& h) { h.proposal_id = "ABCD"; }, "lower-case hex"},
        {[](SignedRequestHeader& h) { h.proposal_id = "abc"; }, "lower-case hex"},
        {[](SignedRequestHeader& h) { h.proposal_id = ""; }, "lower-case hex"},
        {[](SignedRequestHeader& h) { h.proposal_id = std::string(130, 'a'); }, "lower-case hex"},
        {[](SignedRequestHeader& h) { h.kid.pop_back(); }, "kid (4) must be a 32-byte"},
        {[](SignedRequestHeader& h) { h.service_fingerprint.push_back(0); }, "32-byte"},
    };
    for (const auto& [mutate, needle] : cases) {
        SignedRequestHeader h = ballot_header();
        mutate(h);
        auto result = sign_request(h, as_bytes("x"), key);
        ASSERT_FALSE(result.ok()) << needle;
        EXPECT_EQ(result.status().code(), Errc::kInvalidArgument);
        EXPECT_NE(result.status().message().find(needle), std::string::npos)
            << result.status().message();
    }
    Bytes big(kMaxRequestPayloadBytes + 1, 0);
    EXPECT_EQ(sign_request(ballot_header(), big, key).status().code(), Errc::kInvalidArgument);
}

TEST(SignedRequest, LargestPayloadFitsTheMessageBound) {
    auto key = new_key();
    Bytes big(kMaxRequestPayloadBytes, 0x5a);
    auto message = sign_request(ballot_header(), big, key);
    ASSERT_TRUE(message.ok()) << message.status().to_string();
    EXPECT_LE(message->size(), kMaxSignedRequestBytes);
    EXPECT_TRUE(verify_request(*message, key.public_key(), policy()).ok());
}

TEST(SignedRequest, ParseRefusesMissingFields) {
    const std::vector<std::string> names = {"alg (1)", "kid (4)", std::string(kHeaderMsgType),
                                            std::string(kHeaderService),
                                            std::string(kHeaderCreatedAt)};
    for (size_t i = 0; i < names.size(); ++i) {
        auto entries = ballot_entries();
        entries.erase(entries.begin() + static_cast<std::ptrdiff_t>(i));
        expect_header_invalid(entries, "missing protected header field " + names[i]);
    }
    auto entries = ballot_entries();
    entries.pop_back();
    expect_header_invalid(entries, "coffer.msg.proposal_id is required for a ballot");
}

TEST(SignedRequest, ParseRefusesDuplicatedFields) {
    for (size_t i = 0; i < ballot_entries().size(); ++i) {
        auto entries = ballot_entries();
        entries.insert(entries.begin() + static_cast<std::ptrdiff_t>(i) + 1, entries[i]);
        expect_header_invalid(entries, "duplicate protected header label");
    }
}

TEST(SignedRequest, ParseRefusesUnknownLabels) {
    auto entries = ballot_entries();
    entries.push_back({int_key(3), text("application/json")});
    expect_header_invalid(entries, "unknown protected header label 3");

    entries = ballot_entries();
    entries.push_back({text("coffer.msg.extra"), uint_value(1)});
    expect_header_invalid(entries, "unknown protected header label \"coffer.msg.extra\"");

    entries = ballot_entries();
    entries.push_back({negint_value(0), uint_value(1)});
    expect_header_invalid(entries, "unknown protected header label -1-0");

    entries = ballot_entries();
    entries.push_back({bstr(to_bytes("k")), uint_value(1)});
    expect_header_invalid(entries, "label of an unsupported CBOR type");
}

TEST(SignedRequest, ParseRefusesWrongFieldValues) {
    struct Case {
        size_t index;
        Bytes value;
        std::string needle;
    };
    const std::vector<Case> cases = {
        {0, negint_value(6), "alg (1) must be ES384"},  // -7: ES256
        {0, uint_value(35), "alg (1) must be ES384"},
        {1, bstr(Bytes(31, 1)), "kid (4) must be a 32-byte"},
        {1, text("kid"), "kid (4) must be a bstr"},
        {2, text("vote"), "coffer.msg.type must be one of"},
        {2, bstr(to_bytes("ballot")), "coffer.msg.type must be a tstr"},
        {3, bstr(Bytes(33, 1)), "coffer.msg.service must be a 32-byte"},
        {3, text("service"), "coffer.msg.service must be a bstr"},
        {4, negint_value(0), "coffer.msg.created_at must be a uint"},
        {4, text("1700000000"), "coffer.msg.created_at must be a uint"},
        {5, text("XYZ"), "lower-case hex"},
        {5, uint_value(7), "coffer.msg.proposal_id must be a tstr"},
    };
    for (const Case& c : cases) {
        auto entries = ballot_entries();
        entries[c.index].value = c.value;
        expect_header_invalid(entries, c.needle);
    }

    auto entries = ballot_entries();
    entries[2].value = text("proposal");
    expect_header_invalid(entries, "must be absent for a proposal");
}

TEST(SignedRequest, ParseRefusesNonDeterministicHeaders) {
    auto entries = ballot_entries();
    std::swap(entries[0], entries[1]);
    expect_header_invalid(entries, "not in deterministic encoding");

    entries = ballot_entries();
    Bytes long_uint = {0x1b};  // created_at as an 8-byte argument although it fits in 4
    put_bytes(long_uint, std::move(from_hex("000000006553f100")).value());
    entries[4].value = long_uint;
    expect_header_invalid(entries, "not in deterministic encoding");
}

TEST(SignedRequest, ParseRefusesMalformedProtectedHeaders) {
    auto key = new_key();
    CborWriter array;
    array.array_head(0);
    expect_invalid(signed_with_protected(array.bytes(), key),
                   "protected header must be a CBOR map");

    Bytes indefinite = {0xbf, 0x01, 0x38, 0x22, 0xff};
    expect_invalid(signed_with_protected(indefinite, key), "indefinite-length");

    Bytes trailing = encode_map(ballot_entries());
    trailing.push_back(0x00);
    expect_invalid(signed_with_protected(trailing, key), "trailing bytes");

    expect_invalid(signed_with_protected(Bytes(kMaxProtectedHeaderBytes + 1, 0), key),
                   "protected header of");
}

TEST(SignedRequest, ParseRefusesMalformedEnvelopes) {
    auto key = new_key();
    Bytes good = must_sign(ballot_header(), "{}", key);
    auto parsed = parse_request(good);
    ASSERT_TRUE(parsed.ok());
    const Bytes& prot = parsed->protected_bytes;
    const Bytes& sig = parsed->signature;

    Bytes untagged(good.begin() + 1, good.end());
    expect_invalid(untagged, "not a COSE_Sign1 message");

    Bytes cose_sign = good;
    cose_sign[0] = 0xd8;  // tag 98 (COSE_Sign) in a one-byte argument
    cose_sign.insert(cose_sign.begin() + 1, 98);
    expect_invalid(cose_sign, "not a COSE_Sign1 message");

    CborWriter three;
    three.tag(kCoseSign1Tag);
    three.array_head(3);
    three.bstr(prot);
    three.map_head(0);
    three.bstr(to_bytes("{}"));
    expect_invalid(three.bytes(), "array of 4 items");

    CborWriter unprotected;
    unprotected.tag(kCoseSign1Tag);
    unprotected.array_head(4);
    unprotected.bstr(prot);
    unprotected.map_head(1);
    unprotected.uint(4);
    unprotected.bstr(Bytes(32, 0));
    unprotected.bstr(to_bytes("{}"));
    unprotected.bstr(sig);
    expect_invalid(unprotected.bytes(), "unprotected header must be an empty map");

    CborWriter detached;
    detached.tag(kCoseSign1Tag);
    detached.array_head(4);
    detached.bstr(prot);
    detached.map_head(0);
    detached.raw(Bytes{0xf6});
    detached.bstr(sig);
    expect_invalid(detached.bytes(), "detached payload");

    CborWriter text_protected;
    text_protected.tag(kCoseSign1Tag);
    text_protected.array_head(4);
    text_protected.tstr("{}");
    text_protected.map_head(0);
    text_protected.bstr(to_bytes("{}"));
    text_protected.bstr(sig);
    expect_invalid(text_protected.bytes(), "protected header must be a bstr");

    auto der = crypto::ecdsa_p1363_to_der(sig);
    ASSERT_TRUE(der.ok());
    expect_invalid(envelope(prot, to_bytes("{}"), *der), "96-byte bstr");
    expect_invalid(envelope(prot, to_bytes("{}"), Bytes(sig.begin(), sig.end() - 1)),
                   "96-byte bstr");
}

TEST(SignedRequest, ParseRefusesIndefiniteLengthsAndTrailingBytes) {
    auto key = new_key();
    Bytes good = must_sign(ballot_header(), "{}", key);
    auto parsed = parse_request(good);
    ASSERT_TRUE(parsed.ok());

    // The same message with the payload h'7b7d' as an indefinite bstr of two chunks.
    CborWriter w;
    w.tag(kCoseSign1Tag);
    w.array_head(4);
    w.bstr(parsed->protected_bytes);
    w.map_head(0);
    w.raw(Bytes{0x5f, 0x41, 0x7b, 0x41, 0x7d, 0xff});
    w.bstr(parsed->signature);
    expect_invalid(w.bytes(), "indefinite-length");

    // The outer array as an indefinite array.
    Bytes indefinite_array = good;
    ASSERT_EQ(indefinite_array[1], 0x84);
    indefinite_array[1] = 0x9f;
    indefinite_array.push_back(0xff);
    expect_invalid(indefinite_array, "indefinite-length");

    Bytes trailing = good;
    trailing.push_back(0x00);
    expect_invalid(trailing, "trailing bytes");

    // A non-minimal head (payload length in a one-byte argument although it is < 24).
    Bytes long_head = envelope(parsed->protected_bytes, {}, parsed->signature);
    Bytes spliced;
    put_bytes(spliced, ByteSpan(long_head).first(long_head.size() - 98));
    ASSERT_EQ(spliced.back(), 0x40);  // the empty payload
    spliced.back() = 0x58;
    spliced.push_back(0x00);
    put_bytes(spliced, ByteSpan(long_head).last(98));
    expect_invalid(spliced, "not in deterministic encoding");
}

TEST(SignedRequest, ParseRefusesHostileSizesWithoutAllocating) {
    // Declared lengths far beyond the input: refused by the pre-scan, before libcbor
    // allocates for them.
    expect_invalid(std::move(from_hex("d29bffffffffffffffff")).value(), "declares");
    expect_invalid(std::move(from_hex("d29b0000000100000000")).value(), "declares");
    expect_invalid(std::move(from_hex("d2845bffffffffffffffff")).value(), "truncated");
    Bytes deep(100000, 0x81);
    deep[0] = 0xd2;
    expect_invalid(deep, "more than");
    expect_invalid(Bytes(kMaxSignedRequestBytes + 1, 0), "exceeds");
    expect_invalid(Bytes{}, "not a COSE_Sign1 message");
    expect_invalid(Bytes{0xd2}, "truncated");
    expect_invalid(Bytes{0xff}, "signed request");
}

TEST(SignedRequest, ParseRefusesEveryTruncation) {
    auto key = new_key();
    Bytes good = must_sign(ballot_header(), "{\"ballot\":true}", key);
    for (size_t n = 0; n < good.size(); ++n) {
        auto parsed = parse_request(ByteSpan(good).first(n));
        ASSERT_FALSE(parsed.ok()) << "prefix of " << n << " bytes accepted";
        EXPECT_EQ(parsed.status().code(), Errc::kInvalidArgument);
    }
}

TEST(SignedRequest, VerifyRefusesEveryFlippedByte) {
    auto key = new_key();
    Bytes good = must_sign(ballot_header(), "{\"ballot\":true}", key);
    ASSERT_TRUE(verify_request(good, key.public_key(), policy()).ok());
    for (size_t i = 0; i < good.size(); ++i) {
        for (uint8_t mask : {uint8_t{0x01}, uint8_t{0xff}}) {
            Bytes bad = good;
            bad[i] ^= mask;
            auto verified = verify_request(bad, key.public_key(), policy());
            ASSERT_FALSE(verified.ok()) << "byte " << i << " ^ " << int{mask} << " accepted";
        }
    }
}

TEST(SignedRequest, VerifyRefusesWrongKeyWithCryptoError) {
    auto key = new_key();
    Bytes message = must_sign(ballot_header(), "{}", key);
    auto verified = verify_request(message, new_key().public_key(), policy());
    ASSERT_FALSE(verified.ok());
    EXPECT_EQ(verified.status().code(), Errc::kCrypto);
    EXPECT_NE(verified.status().message().find("does not verify"), std::string::npos);
}

TEST(SignedRequest, VerifyRefusesRequestForAnotherService) {
    auto key = new_key();
    SignedRequestHeader h = ballot_header();
    h.service_fingerprint = fingerprint("another service");
    auto verified = verify_request(must_sign(h, "{}", key), key.public_key(), policy());
    ASSERT_FALSE(verified.ok());
    EXPECT_EQ(verified.status().code(), Errc::kPermissionDenied);
    EXPECT_NE(verified.status().message().find("another service"), std::string::npos);
}

TEST(SignedRequest, VerifyRefusesAnotherKidWhenExpected) {
    auto key = new_key();
    Bytes message = must_sign(ballot_header(), "{}", key);
    VerifyPolicy p = policy();
    p.expected_kid = ballot_header().kid;
    EXPECT_TRUE(verify_request(message, key.public_key(), p).ok());
    p.expected_kid = fingerprint("another member");
    EXPECT_EQ(verify_request(message, key.public_key(), p).status().code(),
              Errc::kPermissionDenied);
}

TEST(SignedRequest, VerifyRefusesStaleAndFutureRequests) {
    auto key = new_key();
    VerifyPolicy p = policy();
    auto at = [&](uint64_t created_at) {
        SignedRequestHeader h = ballot_header();
        h.created_at = created_at;
        return verify_request(must_sign(h, "{}", key), key.public_key(), p);
    };
    EXPECT_TRUE(at(kNow - p.max_age).ok());
    EXPECT_TRUE(at(kNow + p.max_clock_skew).ok());

    auto stale = at(kNow - p.max_age - 1);
    ASSERT_FALSE(stale.ok());
    EXPECT_EQ(stale.status().code(), Errc::kFailedPrecondition);
    EXPECT_NE(stale.status().message().find("request is stale"), std::string::npos);

    auto future = at(kNow + p.max_clock_skew + 1);
    ASSERT_FALSE(future.ok());
    EXPECT_EQ(future.status().code(), Errc::kFailedPrecondition);
    EXPECT_NE(future.status().message().find("from the future"), std::string::npos);

    EXPECT_FALSE(at(UINT64_MAX).ok());
    EXPECT_FALSE(at(0).ok());
}

TEST(SignedRequest, ReplayGuardRefusesResubmittedRequest) {
    auto key = new_key();
    Bytes message = must_sign(ballot_header(), "{}", key);
    ReplayGuard guard;
    auto first = verify_request(message, key.public_key(), policy());
    ASSERT_TRUE(first.ok());
    EXPECT_TRUE(guard.check_and_remember(first->digest).ok());

    auto again = verify_request(message, key.public_key(), policy());
    ASSERT_TRUE(again.ok());
    Status replay = guard.check_and_remember(again->digest);
    EXPECT_EQ(replay.code(), Errc::kConflict);
    EXPECT_EQ(replay.message(), "request replayed");
}

TEST(SignedRequest, HighSFormIsRefusedAndKeepsTheDigest) {
    auto key = new_key();
    Bytes message = must_sign(ballot_header(), "{}", key);
    auto original = verify_request(message, key.public_key(), policy());
    ASSERT_TRUE(original.ok());

    // The signature is the last item: its last 48 bytes are s.
    Bytes high = message;
    Bytes s(high.end() - 48, high.end());
    Bytes high_s = p384_negate(s);
    std::copy(high_s.begin(), high_s.end(), high.end() - 48);
    auto parsed = parse_request(high);
    ASSERT_TRUE(parsed.ok());
    // The malleated signature is mathematically valid, so only the low-S rule refuses it.
    EXPECT_TRUE(key.public_key()
                    .verify_p1363(sig_structure(parsed->protected_bytes, parsed->payload),
                                  parsed->signature)
                    .ok());

    auto verified = verify_request(high, key.public_key(), policy());
    ASSERT_FALSE(verified.ok());
    EXPECT_EQ(verified.status().code(), Errc::kCrypto);
    EXPECT_NE(verified.status().message().find("signature is not in low-S form"),
              std::string::npos);

    EXPECT_EQ(request_digest(*parsed), original->digest);
    ReplayGuard guard;
    ASSERT_TRUE(guard.check_and_remember(original->digest).ok());
    EXPECT_EQ(guard.check_and_remember(request_digest(*parsed)).code(), Errc::kConflict);
}

TEST(SignedRequest, SecondSignatureOverSameContentHasSameDigest) {
    auto key = new_key();
    Bytes first = must_sign(ballot_header(), "{}", key);
    Bytes second = must_sign(ballot_header(), "{}", key);
    ASSERT_NE(first, second);  // ECDSA is randomised

    auto a = verify_request(first, key.public_key(), policy());
    auto b = verify_request(second, key.public_key(), policy());
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE(b.ok());
    EXPECT_NE(a->request.signature, b->request.signature);
    EXPECT_EQ(a->digest, b->digest);

    ReplayGuard guard;
    EXPECT_TRUE(guard.check_and_remember(a->digest).ok());
    EXPECT_EQ(guard.check_and_remember(b->digest).code(), Errc::kConflict);
}

TEST(SignedRequest, DigestDependsOnContent) {
    auto key = new_key();
    auto a = parse_request(must_sign(ballot_header(), "{}", key));
    auto b = parse_request(must_sign(ballot_header(), "{ }", key));
    SignedRequestHeader later = ballot_header();
    later.created_at += 1;
    auto c = parse_request(must_sign(later, "{}", key));
    ASSERT_TRUE(a.ok() && b.ok() && c.ok());
    EXPECT_NE(request_digest(*a), request_digest(*b));
    EXPECT_NE(request_digest(*a), request_digest(*c));
}

TEST(ReplayGuard, RefusesWhenFullAndBadDigests) {
    ReplayGuard guard(2);
    EXPECT_TRUE(guard.check_and_remember(fingerprint("a")).ok());
    EXPECT_TRUE(guard.check_and_remember(fingerprint("b")).ok());
    EXPECT_EQ(guard.check_and_remember(fingerprint("c")).code(), Errc::kResourceExhausted);
    EXPECT_EQ(guard.check_and_remember(fingerprint("a")).code(), Errc::kConflict);
    EXPECT_EQ(guard.check_and_remember(Bytes(31, 0)).code(), Errc::kInvalidArgument);
    EXPECT_EQ(guard.size(), 2u);
}

}  // namespace
}  // namespace coffer::gov
