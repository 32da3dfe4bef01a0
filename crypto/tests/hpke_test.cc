// HPKE against the RFC 9180 Appendix A vectors, plus round trips and low-order refusals.
#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "crypto/hpke.h"
#include "crypto/tests/test_data.h"

namespace coffer::crypto {
namespace {

using testing::hex;
using Fields = std::map<std::string, std::string>;

// One "### ... Setup Information" section of the RFC text with its encryptions and exports.
struct HpkeVector {
    std::string title;
    Fields setup;
    std::vector<Fields> encryptions;
    std::vector<Fields> exports;
};

bool is_hex_line(const std::string& line) {
    return !line.empty() && line.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
}

// Parses the text rendering: sections start at "### <Mode> Setup Information"; inside ~~~
// fences, "name: value" lines start a field whose hex value may continue on the following
// lines; records in the encryption and export blocks start at "sequence number" and
// "exporter_context".
std::vector<HpkeVector> parse_rfc9180_vectors(const std::string& text) {
    std::vector<HpkeVector> out;
    std::istringstream in(text);
    std::string line, block, last_key, suite_title;
    bool fenced = false;
    Fields* current = nullptr;
    while (std::getline(in, line)) {
        if (line.rfind("## ", 0) == 0) {
            suite_title = line.substr(3);
        } else if (line.rfind("### ", 0) == 0) {
            out.push_back(HpkeVector{suite_title + " / " + line.substr(4), {}, {}, {}});
            block = "setup";
        } else if (line.rfind("#### ", 0) == 0) {
            block = line.find("Encryptions") != std::string::npos ? "enc" : "exp";
        } else if (line == "~~~") {
            fenced = !fenced;
            current = nullptr;
            if (fenced && !out.empty() && block == "setup") {
                current = &out.back().setup;
            }
        } else if (fenced && !out.empty()) {
            size_t colon = line.find(':');
            if (colon != std::string::npos) {
                std::string key = line.substr(0, colon);
                std::string value = line.substr(colon + 1);
                value.erase(0, value.find_first_not_of(' '));
                if (block == "enc" && key == "sequence number") {
                    current = &out.back().encryptions.emplace_back();
                } else if (block == "exp" && key == "exporter_context") {
                    current = &out.back().exports.emplace_back();
                }
                if (current != nullptr) {
                    (*current)[key] = value;
                    last_key = key;
                }
            } else if (is_hex_line(line) && current != nullptr) {
                (*current)[last_key] += line;
            }
        }
    }
    return out;
}

struct Counts {
    size_t vectors = 0, encryptions = 0, exports = 0;
};

Bytes nonce_for(const Bytes& base_nonce, uint64_t seq) {
    Bytes nonce = base_nonce;
    for (size_t i = 0; i < 8; ++i) {
        nonce[nonce.size() - 1 - i] ^= static_cast<uint8_t>(seq >> (8 * i));
    }
    return nonce;
}

void check_vector(const HpkeVector& v, Counts& counts) {
    const Fields& s = v.setup;
    SCOPED_TRACE(v.title);
    HpkeSuite suite{static_cast<uint16_t>(std::stoi(s.at("kem_id"))),
                    static_cast<uint16_t>(std::stoi(s.at("kdf_id"))),
                    static_cast<uint16_t>(std::stoi(s.at("aead_id")))};
    auto kp_r = hpke_derive_key_pair_x25519(hex(s.at("ikmR")));
    auto kp_e = hpke_derive_key_pair_x25519(hex(s.at("ikmE")));
    ASSERT_TRUE(kp_r.ok() && kp_e.ok());
    EXPECT_EQ(to_hex(kp_r->private_key), s.at("skRm"));
    EXPECT_EQ(to_hex(kp_r->public_key), s.at("pkRm"));
    EXPECT_EQ(to_hex(kp_e->private_key), s.at("skEm"));
    EXPECT_EQ(to_hex(kp_e->public_key), s.at("pkEm"));

    auto encap = hpke_encap_with_ephemeral(hex(s.at("pkRm")), hex(s.at("skEm")));
    ASSERT_TRUE(encap.ok());
    EXPECT_EQ(to_hex(encap->shared_secret), s.at("shared_secret"));
    EXPECT_EQ(to_hex(*hpke_decap(hex(s.at("enc")), hex(s.at("skRm")))), s.at("shared_secret"));

    const Bytes info = hex(s.at("info"));
    auto sender =
        hpke_setup_base_sender_with_ephemeral(suite, hex(s.at("pkRm")), info, hex(s.at("skEm")));
    ASSERT_TRUE(sender.ok()) << sender.status().to_string();
    EXPECT_EQ(to_hex(sender->first), s.at("enc"));
    HpkeContext& sctx = sender->second;
    EXPECT_EQ(to_hex(sctx.key()), s.at("key"));
    EXPECT_EQ(to_hex(sctx.base_nonce()), s.at("base_nonce"));
    EXPECT_EQ(to_hex(sctx.exporter_secret()), s.at("exporter_secret"));
    auto recipient = hpke_setup_base_recipient(suite, hex(s.at("enc")), hex(s.at("skRm")), info);
    ASSERT_TRUE(recipient.ok()) << recipient.status().to_string();
    EXPECT_EQ(recipient->key(), sctx.key());

    for (const Fields& e : v.encryptions) {
        uint64_t seq = std::stoull(e.at("sequence number"));
        EXPECT_EQ(to_hex(nonce_for(sctx.base_nonce(), seq)), e.at("nonce"));
        ASSERT_TRUE(sctx.skip_to_sequence(seq).ok());
        ASSERT_TRUE(recipient->skip_to_sequence(seq).ok());
        auto ct = sctx.seal(hex(e.at("aad")), hex(e.at("pt")));
        ASSERT_TRUE(ct.ok()) << ct.status().to_string();
        EXPECT_EQ(to_hex(*ct), e.at("ct")) << "seq " << seq;
        auto pt = recipient->open(hex(e.at("aad")), hex(e.at("ct")));
        ASSERT_TRUE(pt.ok()) << pt.status().to_string();
        EXPECT_EQ(to_hex(*pt), e.at("pt"));
        ++counts.encryptions;
    }
    if (suite.aead_id == kHpkeAeadExportOnly) {
        EXPECT_EQ(sctx.seal({}, {}).status().code(), Errc::kFailedPrecondition);
    }
    for (const Fields& x : v.exports) {
        size_t length = std::stoul(x.at("L"));
        auto a = sctx.export_secret(hex(x.at("exporter_context")), length);
        auto b = recipient->export_secret(hex(x.at("exporter_context")), length);
        ASSERT_TRUE(a.ok() && b.ok());
        EXPECT_EQ(to_hex(*a), x.at("exported_value"));
        EXPECT_EQ(*b, *a);
        ++counts.exports;
    }
    ++counts.vectors;
}

bool applicable(const HpkeVector& v) {
    const Fields& s = v.setup;
    if (!s.contains("mode") || s.at("mode") != "0" || s.at("kem_id") != "32" ||
        s.at("kdf_id") != "1") {
        return false;
    }
    const std::string& aead = s.at("aead_id");
    return aead == "1" || aead == "2" || aead == "3" || aead == "65535";
}

TEST(Hpke, MatchesEveryApplicableRfc9180BaseModeVector) {
    COFFER_REQUIRE_DATA("hpke/rfc9180-test-vectors.txt");
    auto vectors = parse_rfc9180_vectors(
        testing::read_file(testing::data_path("hpke/rfc9180-test-vectors.txt")));
    ASSERT_GT(vectors.size(), 0u);
    Counts counts;
    size_t applicable_found = 0, skipped = 0;
    for (const auto& v : vectors) {
        if (!applicable(v)) {
            ++skipped;
            continue;
        }
        ++applicable_found;
        check_vector(v, counts);
    }
    std::cout << "hpke: checked " << counts.vectors << " base-mode vectors (" << counts.encryptions
              << " encryptions, " << counts.exports << " exports), skipped " << skipped
              << " non-applicable (other KEM/KDF/mode)" << std::endl;
    EXPECT_GT(counts.vectors, 0u);
    EXPECT_EQ(counts.vectors, applicable_found);
    EXPECT_GT(counts.encryptions, 0u);
}

TEST(Hpke, SingleShotRoundTripsForEveryAead) {
    X25519KeyPair recipient = x25519_generate();
    for (uint16_t aead : {kHpkeAeadAes128Gcm, kHpkeAeadAes256Gcm, kHpkeAeadChaCha20Poly1305}) {
        HpkeSuite suite{kHpkeKemX25519Sha256, kHpkeKdfHkdfSha256, aead};
        auto sealed = hpke_seal(suite, recipient.public_key, as_bytes("info"), as_bytes("aad"),
                                as_bytes("rows of a clean-room result"));
        ASSERT_TRUE(sealed.ok()) << sealed.status().to_string();
        auto opened = hpke_open(suite, recipient.private_key, sealed->enc, as_bytes("info"),
                                as_bytes("aad"), sealed->ciphertext);
        ASSERT_TRUE(opened.ok()) << opened.status().to_string();
        EXPECT_EQ(to_string(*opened), "rows of a clean-room result");

        EXPECT_EQ(hpke_open(suite, recipient.private_key, sealed->enc, as_bytes("other"),
                            as_bytes("aad"), sealed->ciphertext)
                      .status()
                      .code(),
                  Errc::kCrypto);
        EXPECT_EQ(hpke_open(suite, x25519_generate().private_key, sealed->enc, as_bytes("info"),
                            as_bytes("aad"), sealed->ciphertext)
                      .status()
                      .code(),
                  Errc::kCrypto);
    }
}

TEST(Hpke, ContextsEnforceRolesSequenceAndSizes) {
    X25519KeyPair r = x25519_generate();
    HpkeSuite suite;
    auto sender = hpke_setup_base_sender(suite, r.public_key, {});
    ASSERT_TRUE(sender.ok());
    auto recipient = hpke_setup_base_recipient(suite, sender->first, r.private_key, {});
    ASSERT_TRUE(recipient.ok());
    EXPECT_EQ(sender->second.open({}, Bytes(16)).status().code(), Errc::kFailedPrecondition);
    EXPECT_EQ(recipient->seal({}, {}).status().code(), Errc::kFailedPrecondition);

    Bytes c0 = *sender->second.seal({}, as_bytes("m0"));
    Bytes c1 = *sender->second.seal({}, as_bytes("m1"));
    EXPECT_EQ(recipient->open({}, c1).status().code(), Errc::kCrypto);  // out of order
    EXPECT_EQ(to_string(*recipient->open({}, c0)), "m0");
    EXPECT_EQ(to_string(*recipient->open({}, c1)), "m1");
    EXPECT_EQ(recipient->sequence(), 2u);
    EXPECT_EQ(recipient->skip_to_sequence(1).code(), Errc::kInvalidArgument);

    ASSERT_TRUE(sender->second.skip_to_sequence(std::numeric_limits<uint64_t>::max()).ok());
    EXPECT_EQ(sender->second.seal({}, {}).status().code(), Errc::kResourceExhausted);
    EXPECT_EQ(sender->second.export_secret({}, kHpkeMaxExportLength + 1).status().code(),
              Errc::kInvalidArgument);

    EXPECT_EQ(hpke_setup_base_sender(suite, Bytes(31), {}).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(hpke_setup_base_recipient(suite, Bytes(33), r.private_key, {}).status().code(),
              Errc::kInvalidArgument);
    EXPECT_EQ(hpke_setup_base_recipient(suite, sender->first, Bytes(5), {}).status().code(),
              Errc::kInvalidArgument);
    HpkeSuite p256{0x0010, 1, 1};
    EXPECT_EQ(hpke_seal(p256, r.public_key, {}, {}, {}).status().code(), Errc::kUnsupported);
}

// CRY-2: every low-order X25519 point from Wycheproof (shared secret zero).
std::vector<Bytes> low_order_points() {
    std::string text = testing::read_file(testing::data_path("wycheproof/x25519_test.json"));
    auto doc = nlohmann::json::parse(text, nullptr, false);
    std::vector<Bytes> out;
    const std::string zero(64, '0');
    for (const auto& group : doc.at("testGroups")) {
        for (const auto& t : group.at("tests")) {
            if (t.at("shared") == zero) {
                out.push_back(hex(t.at("public")));
            }
        }
    }
    return out;
}

TEST(Hpke, OpenRejectsLowOrderEncapsulatedKeyAndSealRejectsLowOrderRecipient) {
    COFFER_REQUIRE_DATA("wycheproof/x25519_test.json");
    std::vector<Bytes> points = low_order_points();
    ASSERT_GT(points.size(), 0u);
    X25519KeyPair r = x25519_generate();
    HpkeSuite suite;
    for (const Bytes& point : points) {
        auto opened = hpke_open(suite, r.private_key, point, {}, {}, Bytes(32));
        ASSERT_FALSE(opened.ok());
        EXPECT_EQ(opened.status().code(), Errc::kCrypto);
        EXPECT_EQ(opened.status().message(), "invalid encapsulated key");
        auto ctx = hpke_setup_base_recipient(suite, point, r.private_key, {});
        EXPECT_EQ(ctx.status().message(), "invalid encapsulated key");

        auto sealed = hpke_seal(suite, point, {}, {}, as_bytes("secret"));
        ASSERT_FALSE(sealed.ok());
        EXPECT_EQ(sealed.status().code(), Errc::kCrypto);
        EXPECT_EQ(sealed.status().message(), "invalid recipient public key");
    }
    std::cout << "hpke: " << points.size() << " low-order points refused as enc and as "
              << "recipient key" << std::endl;
}

}  // namespace
}  // namespace coffer::crypto
