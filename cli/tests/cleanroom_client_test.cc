// Unit tests of the clean-room client logic (cli/cleanroom_client.h): chunking, upload
// encryption, the key publication check, result decryption and formatting.
#include <gtest/gtest.h>

#include <atomic>
#include <ctime>
#include <optional>
#include <sstream>

#include "attestation/platform.h"
#include "cli/cleanroom_client.h"
#include "crypto/hpke.h"
#include "crypto/sha256.h"
#include "crypto/x25519.h"
#include "net/server.h"
#include "node/identity.h"

namespace coffer::cli {
namespace {

using nlohmann::json;

constexpr int64_t kValidityS = 3600;
const crypto::HpkeSuite kSuite{};

int64_t now() {
    return static_cast<int64_t>(std::time(nullptr));
}

TEST(CleanroomChunks, CoverEveryByteOnceInOrder) {
    auto chunks = plan_chunks(1000, 300);
    ASSERT_TRUE(chunks.ok()) << chunks.status().to_string();
    ASSERT_EQ(chunks->size(), 4u);
    size_t next = 0;
    for (const ChunkRange& c : *chunks) {
        EXPECT_EQ(c.offset, next);
        next += c.size;
    }
    EXPECT_EQ(next, 1000u);
    EXPECT_EQ(chunks->back().size, 100u);

    auto exact = plan_chunks(kMaxUploadChunkBytes * 2, kMaxUploadChunkBytes);
    ASSERT_TRUE(exact.ok());
    EXPECT_EQ(exact->size(), 2u);
}

TEST(CleanroomChunks, RefuseEmptyDataAndSizesOutOfRange) {
    EXPECT_EQ(plan_chunks(0, 100).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(plan_chunks(10, 0).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(plan_chunks(10, kMaxUploadChunkBytes + 1).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(plan_chunks(kMaxUploadBytes + 1, kMaxUploadChunkBytes).status().code(),
              Errc::kResourceExhausted);
    EXPECT_EQ(plan_chunks(kMaxUploadChunks + 1, 1).status().code(), Errc::kResourceExhausted);
}

TEST(CleanroomUpload, ChunksOpenWithTheServiceKeyAndTheirOwnAadOnly) {
    crypto::X25519KeyPair service = crypto::x25519_generate();
    std::string data = "account,amount\n";
    for (int i = 0; i < 200; ++i) {
        data += "acct" + std::to_string(i) + "," + std::to_string(i * 7) + ".5\n";
    }
    auto chunks = plan_chunks(data.size(), 512);
    ASSERT_TRUE(chunks.ok());
    ASSERT_GT(chunks->size(), 3u);

    std::string reassembled;
    for (size_t i = 0; i < chunks->size(); ++i) {
        std::string plain = data.substr((*chunks)[i].offset, (*chunks)[i].size);
        auto body = seal_upload_chunk(service.public_key, "up-1", i, as_bytes(plain));
        ASSERT_TRUE(body.ok()) << body.status().to_string();
        ASSERT_GT(body->size(), crypto::kHpkeEncSize);
        ByteSpan enc(body->data(), crypto::kHpkeEncSize);
        ByteSpan ct(body->data() + crypto::kHpkeEncSize, body->size() - crypto::kHpkeEncSize);
        auto opened =
            crypto::hpke_open(kSuite, service.private_key, enc, as_bytes(kCleanroomUploadInfo),
                              as_bytes("up-1/" + std::to_string(i)), ct);
        ASSERT_TRUE(opened.ok()) << opened.status().to_string();
        reassembled += to_string(*opened);

        auto moved =
            crypto::hpke_open(kSuite, service.private_key, enc, as_bytes(kCleanroomUploadInfo),
                              as_bytes("up-1/" + std::to_string(i + 1)), ct);
        EXPECT_EQ(moved.status().code(), Errc::kCrypto) << "chunk " << i << " opened at i+1";
    }
    EXPECT_EQ(reassembled, data);
}

TEST(CleanroomUpload, EveryChunkGetsAFreshEncapsulation) {
    crypto::X25519KeyPair service = crypto::x25519_generate();
    auto a = seal_upload_chunk(service.public_key, "u", 0, as_bytes("same"));
    auto b = seal_upload_chunk(service.public_key, "u", 0, as_bytes("same"));
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_NE(*a, *b);
    EXPECT_FALSE(seal_upload_chunk(as_bytes("short"), "u", 0, as_bytes("x")).ok());
}

TEST(CleanroomAnalysis, IdIsTheSha256OfTheExactBytes) {
    EXPECT_EQ(analysis_id_of("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_NE(analysis_id_of("{\"a\": 1}"), analysis_id_of("{\"a\":1}"));
}

// A service with nodes, and a key publication they would serve.
class KeyPublication : public ::testing::Test {
  protected:
    void SetUp() override {
        auto service = node::make_service_identity(now(), kValidityS);
        ASSERT_TRUE(service.ok());
        service_ = std::move(*service);
        clean_room_ = crypto::x25519_generate();
        for (int i = 0; i < 2; ++i) {
            auto n = node::make_node_identity(*service_, {"127.0.0.1"}, now(), kValidityS);
            ASSERT_TRUE(n.ok());
            nodes_.push_back(*n);
        }
    }

    static Bytes measurement() { return Bytes(32, 0x5a); }

    json evidence_for(const crypto::EcdsaPublicKey& key) {
        attestation::VirtualPlatform platform(measurement());
        auto evidence = platform.get_evidence(attestation::report_data_for_key(key.to_der()));
        EXPECT_TRUE(evidence.ok());
        return attestation::to_json(*evidence);
    }

    json node_entry(const node::NodeIdentity& n) {
        return {{"node_id", n.node_id},
                {"cert", n.cert.to_pem()},
                {"attestation", evidence_for(n.key.public_key())}};
    }

    json document(const crypto::EcdsaPrivateKey& signer) {
        Bytes signed_bytes = to_bytes(kCleanroomKeyLabel);
        put_bytes(signed_bytes, clean_room_.public_key);
        auto signature = signer.sign(signed_bytes);
        EXPECT_TRUE(signature.ok());
        json nodes = json::array();
        for (const auto& n : nodes_) {
            nodes.push_back(node_entry(n));
        }
        return {{"version", 1},
                {"public_key", to_hex(clean_room_.public_key)},
                {"signature", to_hex(*signature)},
                {"service_cert", service_->cert.to_pem()},
                {"nodes", nodes}};
    }

    std::optional<node::ServiceIdentity> service_;
    crypto::X25519KeyPair clean_room_;
    std::vector<node::NodeIdentity> nodes_;
};

TEST_F(KeyPublication, AcceptsTheServiceSignatureAndAttestedNodes) {
    KeyCheckOptions options;
    options.expect_measurement_hex = to_hex(measurement());
    auto key = check_published_key(document(service_->key), service_->cert, options);
    ASSERT_TRUE(key.ok()) << key.status().to_string();
    EXPECT_EQ(key->public_key, clean_room_.public_key);
    ASSERT_EQ(key->nodes.size(), 2u);
    EXPECT_EQ(key->nodes[0].node_id, nodes_[0].node_id);
    EXPECT_EQ(key->nodes[0].platform, "virtual");
    EXPECT_EQ(key->nodes[0].measurement_hex, to_hex(measurement()));
    EXPECT_FALSE(key->nodes[0].hardware_backed);
}

TEST_F(KeyPublication, RefusesASignatureByAnotherKey) {
    auto other = crypto::EcdsaPrivateKey::generate();
    ASSERT_TRUE(other.ok());
    auto key = check_published_key(document(*other), service_->cert, {});
    EXPECT_EQ(key.status().code(), Errc::kCrypto);
    EXPECT_NE(key.status().message().find("not signed by the pinned"), std::string::npos);
}

TEST_F(KeyPublication, RefusesAKeySwappedAfterSigning) {
    json doc = document(service_->key);
    doc["public_key"] = to_hex(crypto::x25519_generate().public_key);
    EXPECT_EQ(check_published_key(doc, service_->cert, {}).status().code(), Errc::kCrypto);
}

TEST_F(KeyPublication, RefusesANodeCertificateFromAnotherService) {
    auto other = node::make_service_identity(now(), kValidityS);
    ASSERT_TRUE(other.ok());
    auto stranger = node::make_node_identity(*other, {"127.0.0.1"}, now(), kValidityS);
    ASSERT_TRUE(stranger.ok());
    json doc = document(service_->key);
    doc["nodes"].push_back(node_entry(*stranger));
    auto key = check_published_key(doc, service_->cert, {});
    EXPECT_EQ(key.status().code(), Errc::kCrypto);
    EXPECT_NE(key.status().message().find(stranger->node_id), std::string::npos)
        << key.status().message();
}

TEST_F(KeyPublication, RefusesEvidenceThatDoesNotBindTheNodeKey) {
    json doc = document(service_->key);
    doc["nodes"][1]["attestation"] = evidence_for(nodes_[0].key.public_key());
    auto key = check_published_key(doc, service_->cert, {});
    EXPECT_EQ(key.status().code(), Errc::kPermissionDenied);
    EXPECT_NE(key.status().message().find(nodes_[1].node_id), std::string::npos);
}

TEST_F(KeyPublication, RefusesAnotherMeasurementWhenOneIsExpected) {
    KeyCheckOptions options;
    options.expect_measurement_hex = std::string(64, '0');
    auto key = check_published_key(document(service_->key), service_->cert, options);
    EXPECT_EQ(key.status().code(), Errc::kPermissionDenied);
    EXPECT_NE(key.status().message().find("measurement"), std::string::npos);
}

TEST_F(KeyPublication, RefusesMissingNodesMislabelledNodesAndOtherVersions) {
    json doc = document(service_->key);
    doc["nodes"] = json::array();
    EXPECT_EQ(check_published_key(doc, service_->cert, {}).status().code(), Errc::kInvalidArgument);

    doc = document(service_->key);
    doc["nodes"][0]["node_id"] = nodes_[1].node_id;
    EXPECT_EQ(check_published_key(doc, service_->cert, {}).status().code(), Errc::kInvalidArgument);

    doc = document(service_->key);
    doc["nodes"][0].erase("attestation");
    EXPECT_EQ(check_published_key(doc, service_->cert, {}).status().code(), Errc::kInvalidArgument);

    doc = document(service_->key);
    doc["version"] = 2;
    EXPECT_EQ(check_published_key(doc, service_->cert, {}).status().code(), Errc::kInvalidArgument);
    EXPECT_EQ(check_published_key(json::array(), service_->cert, {}).status().code(),
              Errc::kInvalidArgument);
}

// A result sealed as the service seals it.
json sealed_result(const Bytes& recipient_public, const std::string& run_id,
                   const std::string& recipient, const std::string& plaintext) {
    auto sealed = crypto::hpke_seal(kSuite, recipient_public, as_bytes(kCleanroomResultInfo),
                                    as_bytes(run_id + "/" + recipient), as_bytes(plaintext));
    EXPECT_TRUE(sealed.ok());
    return {{"run_id", run_id},
            {"recipient", recipient},
            {"enc", to_hex(sealed->enc)},
            {"ciphertext", to_hex(sealed->ciphertext)}};
}

const char* kResultDoc =
    R"({"version": 1, "analysis_id": "abcd", "recipient": "bank_0", "kind": "sql",
        "columns": ["account", "total"], "rows": [["A-1", 12], ["B-22", null]],
        "aggregates": {"input_rows": {"tx": 40}, "suppressed_rows": 3}})";

TEST(CleanroomResult, OpensWithTheRecipientKey) {
    crypto::X25519KeyPair bank = crypto::x25519_generate();
    auto sealed =
        parse_sealed_result(sealed_result(bank.public_key, "run-0000000001", "bank_0", kResultDoc));
    ASSERT_TRUE(sealed.ok()) << sealed.status().to_string();
    auto doc = open_result(*sealed, bank.private_key);
    ASSERT_TRUE(doc.ok()) << doc.status().to_string();
    EXPECT_EQ((*doc)["rows"][0][0], "A-1");
}

TEST(CleanroomResult, RefusesAnotherKeyAnotherRunOrAnotherRecipient) {
    crypto::X25519KeyPair bank = crypto::x25519_generate();
    json served = sealed_result(bank.public_key, "run-0000000001", "bank_0", kResultDoc);

    auto sealed = parse_sealed_result(served);
    ASSERT_TRUE(sealed.ok());
    EXPECT_EQ(open_result(*sealed, crypto::x25519_generate().private_key).status().code(),
              Errc::kCrypto);

    json other_run = served;
    other_run["run_id"] = "run-0000000002";
    EXPECT_EQ(open_result(*parse_sealed_result(other_run), bank.private_key).status().code(),
              Errc::kCrypto);

    json other_recipient = served;
    other_recipient["recipient"] = "bank_1";
    EXPECT_EQ(open_result(*parse_sealed_result(other_recipient), bank.private_key).status().code(),
              Errc::kCrypto);
}

TEST(CleanroomResult, RefusesAPlaintextAddressedToSomeoneElse) {
    crypto::X25519KeyPair bank = crypto::x25519_generate();
    json doc = json::parse(kResultDoc);
    doc["recipient"] = "bank_9";
    auto sealed =
        parse_sealed_result(sealed_result(bank.public_key, "run-0000000001", "bank_0", doc.dump()));
    ASSERT_TRUE(sealed.ok());
    EXPECT_EQ(open_result(*sealed, bank.private_key).status().code(), Errc::kCorrupt);
}

TEST(CleanroomResult, ParsingRefusesMissingOrMalformedMembers) {
    json good = sealed_result(crypto::x25519_generate().public_key, "r", "b", "{}");
    for (const char* name : {"run_id", "recipient", "enc", "ciphertext"}) {
        json bad = good;
        bad.erase(name);
        EXPECT_EQ(parse_sealed_result(bad).status().code(), Errc::kInvalidArgument) << name;
    }
    json short_enc = good;
    short_enc["enc"] = "abcd";
    EXPECT_EQ(parse_sealed_result(short_enc).status().code(), Errc::kInvalidArgument);
}

TEST(CleanroomResult, MustMatchTheDigestOfTheAuditRecord) {
    json served =
        sealed_result(crypto::x25519_generate().public_key, "run-0000000003", "bank_0", kResultDoc);
    auto sealed = parse_sealed_result(served);
    ASSERT_TRUE(sealed.ok());
    std::string digest = to_hex(crypto::sha256(sealed->ciphertext));
    json record = {{"run_id", "run-0000000003"},
                   {"results", {{"bank_0", digest}, {"bank_1", std::string(64, 'a')}}}};
    EXPECT_TRUE(check_result_against_record(*sealed, record).ok());

    record["results"]["bank_0"] = std::string(64, 'a');
    EXPECT_EQ(check_result_against_record(*sealed, record).code(), Errc::kCorrupt);
    record["results"].erase("bank_0");
    EXPECT_EQ(check_result_against_record(*sealed, record).code(), Errc::kNotFound);
    record = {{"run_id", "run-0000000004"}, {"results", {{"bank_0", digest}}}};
    EXPECT_EQ(check_result_against_record(*sealed, record).code(), Errc::kNotFound);
}

TEST(CleanroomResult, FormatsATableThenTheAggregates) {
    std::string text = format_result_document(json::parse(kResultDoc));
    size_t header = text.find("account");
    size_t row = text.find("B-22");
    size_t aggregates = text.find("aggregates:");
    ASSERT_NE(header, std::string::npos) << text;
    ASSERT_NE(row, std::string::npos) << text;
    ASSERT_NE(aggregates, std::string::npos) << text;
    EXPECT_LT(header, row);
    EXPECT_LT(row, aggregates);
    EXPECT_NE(text.find("NULL"), std::string::npos) << text;
    EXPECT_NE(text.find("suppressed_rows"), std::string::npos) << text;
    EXPECT_NE(text.find("(2 rows)"), std::string::npos) << text;
    EXPECT_EQ(text.find(" \n"), std::string::npos) << "trailing spaces:\n" << text;

    std::string cut = format_result_document(json::parse(kResultDoc), 1);
    EXPECT_EQ(cut.find("B-22"), std::string::npos) << cut;
    EXPECT_NE(cut.find("1 more rows not shown"), std::string::npos) << cut;
}

TEST(CleanroomAddresses, ParseHostPortAndRedirectLocations) {
    auto a = parse_host_port("127.0.0.1:8443");
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->first, "127.0.0.1");
    EXPECT_EQ(a->second, 8443);
    auto v6 = parse_host_port("[::1]:9000");
    ASSERT_TRUE(v6.ok());
    EXPECT_EQ(v6->first, "::1");
    for (const char* bad : {"127.0.0.1", ":80", "host:", "host:0", "host:70000", "h:8x"}) {
        EXPECT_FALSE(parse_host_port(bad).ok()) << bad;
    }
    auto r = parse_redirect_location("https://127.0.0.1:4242/app/cleanroom/runs?analysis=ab");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->second, 4242);
    EXPECT_FALSE(parse_redirect_location("http://127.0.0.1:4242/x").ok());
}

TEST(CleanroomSandbox, PartyPathsComeFromTheSandboxFile) {
    json file = {
        {"service_cert", "/s/node0/data/service_cert.pem"},
        {"nodes", {{{"client_address", "127.0.0.1:1"}}, {{"client_address", "127.0.0.1:2"}}}}};
    auto party = sandbox_party(file, "/s", "bank_0");
    ASSERT_TRUE(party.ok()) << party.status().to_string();
    EXPECT_EQ(party->cert_path, "/s/identities/bank_0_cert.pem");
    EXPECT_EQ(party->key_path, "/s/identities/bank_0_privk.pem");
    EXPECT_EQ(party->enc_key_path, "/s/identities/bank_0_enc_privk.pem");
    EXPECT_EQ(party->client_addresses.size(), 2u);
    EXPECT_FALSE(sandbox_party(file, "/s", "../member0").ok());
    EXPECT_FALSE(sandbox_party(json::object(), "/s", "bank_0").ok());
}

TEST(CleanroomProgress, WithoutATerminalPrintsOneLinePerTenth) {
    std::ostringstream out;
    UploadProgress progress(out, false, 1000);
    for (int i = 0; i < 100; ++i) {
        progress.advance(10);
    }
    progress.finish();
    std::string text = out.str();
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 10) << text;
    EXPECT_NE(text.find("upload: 100% (1000 of 1000 bytes)"), std::string::npos) << text;
    EXPECT_EQ(text.find('\r'), std::string::npos);
}

TEST(CleanroomProgress, OnATerminalRedrawsOneLine) {
    std::ostringstream out;
    UploadProgress progress(out, true, 100);
    progress.advance(50);
    progress.advance(50);
    progress.finish();
    std::string text = out.str();
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
    EXPECT_NE(text.find("100%"), std::string::npos) << text;
}

// Two loopback HTTPS servers of one service: a "follower" that redirects writes and
// linearizable reads, and a "leader" that first answers 503 once, then echoes what it got.
class SessionAgainstTwoNodes : public ::testing::Test {
  protected:
    void SetUp() override {
        auto service = node::make_service_identity(now(), kValidityS);
        ASSERT_TRUE(service.ok());
        service_cert_pem_ = service->cert.to_pem();
        auto identity = node::make_node_identity(*service, {"127.0.0.1"}, now(), kValidityS);
        ASSERT_TRUE(identity.ok());
        net::ServerOptions options;
        options.cert_chain_pem = identity->cert.to_pem() + service_cert_pem_;
        options.private_key_pem = identity->key.to_pem();

        auto leader = net::HttpServer::start(options, [this](const net::HttpRequest& r) {
            if (unavailable_left_.fetch_sub(1) > 0) {
                return net::HttpResponse::error(503, "unavailable", "no leader yet");
            }
            return net::HttpResponse::json(200,
                                           {{"target", r.target},
                                            {"body", r.body},
                                            {"wait", r.header("x-coffer-wait-ms").value_or("")}});
        });
        ASSERT_TRUE(leader.ok()) << leader.status().to_string();
        leader_ = std::move(*leader);
        auto follower = net::HttpServer::start(options, [this](const net::HttpRequest& r) {
            bool linearizable = r.query.count("consistency") != 0;
            if (r.method == "GET" && !linearizable) {
                return net::HttpResponse::json(200, {{"served_by", "follower"}});
            }
            net::HttpResponse moved = net::HttpResponse::error(307, "not_leader", "go");
            moved.headers.emplace_back(
                "Location", "https://127.0.0.1:" + std::to_string(leader_->port()) + r.target);
            return moved;
        });
        ASSERT_TRUE(follower.ok()) << follower.status().to_string();
        follower_ = std::move(*follower);
    }

    SessionOptions session_options() const {
        SessionOptions o;
        o.addresses = {{"127.0.0.1", follower_->port()}};
        o.service_cert_pem = service_cert_pem_;
        o.timeout_ms = 5000;
        return o;
    }

    std::string service_cert_pem_;
    std::atomic<int> unavailable_left_{0};
    std::unique_ptr<net::HttpServer> leader_;
    std::unique_ptr<net::HttpServer> follower_;
};

TEST_F(SessionAgainstTwoNodes, WritesFollowTheRedirectAndStayOnTheLeader) {
    auto session = CleanroomSession::connect(session_options());
    ASSERT_TRUE(session.ok()) << session.status().to_string();
    auto answer = (*session)->call("POST", "/app/cleanroom/uploads?dataset=d", "{}");
    ASSERT_TRUE(answer.ok()) << answer.status().to_string();
    EXPECT_EQ(answer->json["target"], "/app/cleanroom/uploads?dataset=d");
    EXPECT_EQ(answer->json["body"], "{}");
    EXPECT_EQ(answer->json["wait"], std::to_string(kCommitWaitMs));
    EXPECT_EQ((*session)->current_address(), "127.0.0.1:" + std::to_string(leader_->port()));

    auto read = (*session)->call("GET", "/app/cleanroom/runs?analysis=a");
    ASSERT_TRUE(read.ok()) << read.status().to_string();
    EXPECT_EQ(read->json["target"], "/app/cleanroom/runs?analysis=a&consistency=linearizable");
}

TEST_F(SessionAgainstTwoNodes, ReadsAreSentToTheLeaderAndUnavailableIsWaitedOut) {
    unavailable_left_ = 1;
    auto session = CleanroomSession::connect(session_options());
    ASSERT_TRUE(session.ok()) << session.status().to_string();
    auto read = (*session)->call("GET", "/app/cleanroom/datasets");
    ASSERT_TRUE(read.ok()) << read.status().to_string();
    EXPECT_EQ(read->json["target"], "/app/cleanroom/datasets?consistency=linearizable");
    EXPECT_EQ(unavailable_left_.load(), -1) << "the 503 was not retried exactly once";

    SessionOptions plain = session_options();
    plain.reads_on_leader = false;
    auto local = CleanroomSession::connect(plain);
    ASSERT_TRUE(local.ok());
    auto here = (*local)->call("GET", "/app/cleanroom/datasets");
    ASSERT_TRUE(here.ok());
    EXPECT_EQ(here->json["served_by"], "follower");
}

TEST_F(SessionAgainstTwoNodes, ErrorsCarryTheServiceMessageAndPinningRefusesOtherServices) {
    auto session = CleanroomSession::connect(session_options());
    ASSERT_TRUE(session.ok());
    auto other = node::make_service_identity(now(), kValidityS);
    ASSERT_TRUE(other.ok());
    SessionOptions wrong = session_options();
    wrong.service_cert_pem = other->cert.to_pem();
    EXPECT_FALSE(CleanroomSession::connect(wrong).ok());

    ApiAnswer refused;
    refused.status = 403;
    refused.body = R"({"error": {"code": "permission_denied", "message": "not approved by b"}})";
    refused.json = json::parse(refused.body);
    EXPECT_EQ(service_error_message(refused), "not approved by b");
    refused.json = nullptr;
    refused.body = "plain text";
    EXPECT_EQ(service_error_message(refused), "plain text");
}

TEST(CleanroomUrl, EncodesEverythingButUnreservedCharacters) {
    EXPECT_EQ(url_encode("run-0000000001"), "run-0000000001");
    EXPECT_EQ(url_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
}

}  // namespace
}  // namespace coffer::cli
