#include "tests/cleanroom_test_util.h"

#include <chrono>
#include <thread>

#include "cleanroom/csv.h"
#include "crypto/hpke.h"
#include "crypto/sha256.h"
#include "crypto/x25519.h"

namespace coffer::e2e {

namespace {

using nlohmann::json;

// Waits for writes to commit so that the committed-state reads that follow see them.
constexpr const char* kWriteWaitMs = "5000";
constexpr int kSettleTimeoutMs = 10000;

json user_entry(const Identity& id, bool with_key) {
    json entry = {{"certificate", id.cert_path}};
    if (with_key) {
        entry["encryption_public_key"] = id.enc_pub_path;
    }
    return entry;
}

std::string enc_private_key_path(const Identity& id) {
    std::string suffix = "_enc_pubk.pem";
    return id.enc_pub_path.substr(0, id.enc_pub_path.size() - suffix.size()) + "_enc_privk.pem";
}

// The query string of a clean-room endpoint in the walk.
std::string walk_query(const std::string& path, const std::map<std::string, std::string>& p) {
    auto get = [&](const char* name) {
        auto it = p.find(name);
        return it == p.end() ? std::string() : it->second;
    };
    if (path == "/app/cleanroom/uploads") {
        return "dataset=" + get("dataset");
    }
    if (path == "/app/cleanroom/uploads/chunk") {
        return "upload=unknown&index=0";
    }
    if (path == "/app/cleanroom/uploads/commit") {
        return "upload=unknown";
    }
    if (path == "/app/cleanroom/analysis") {
        return "id=" + get("analysis");
    }
    if (path == "/app/cleanroom/results") {
        return "run=" + get("run");
    }
    if (path == "/app/cleanroom/approvals" || path == "/app/cleanroom/revocations" ||
        path == "/app/cleanroom/runs") {
        return "analysis=" + get("analysis");
    }
    return "";
}

}  // namespace

cleanroom::Table table_of(const std::string& declaration, const std::string& owner,
                          const std::vector<std::string>& uploads) {
    cleanroom::Table table;
    auto schema = cleanroom::parse_schema(declaration);
    EXPECT_TRUE(schema.ok()) << schema.status().to_string();
    if (!schema.ok()) {
        return table;
    }
    table.schema = *schema;
    table.owner = owner;
    for (const std::string& csv : uploads) {
        auto parsed = cleanroom::parse_csv(*schema, csv);
        EXPECT_TRUE(parsed.ok()) << parsed.status().to_string();
        if (parsed.ok()) {
            table.rows.insert(table.rows.end(), parsed->rows.begin(), parsed->rows.end());
        }
    }
    return table;
}

void CleanroomFixture::SetUp() {
    const std::string& d = dir_.path();
    member_ = keygen(d, "member0");
    bank_a_ = keygen(d, "bank_a");
    bank_b_ = keygen(d, "bank_b");
    bank_c_ = keygen(d, "bank_c");
    user0_ = keygen(d, "user0");
    twin_ = keygen(d, "twin");
    twin2_ = keygen(d + "/second", "twin");
    viewer_ = keygen(d, "viewer");
    ASSERT_FALSE(viewer_.cert_pem.empty());
    json config = make_config(d, member_, {});
    config["users"] = json::array();
    for (const Identity* p : {&bank_a_, &bank_b_, &bank_c_, &user0_, &twin_, &twin2_}) {
        config["users"].push_back(user_entry(*p, true));
    }
    config["users"].push_back(user_entry(viewer_, false));
    std::string config_path = d + "/config.json";
    write_text_file(config_path, config.dump(2));
    node_ = std::make_unique<NodeProcess>(config_path, d + "/data", d + "/node.log");
    std::string why;
    ASSERT_TRUE(node_->start(why)) << why;
    ASSERT_TRUE(open_service(node_->port(), node_->service_cert_pem(), {member_}, why)) << why;
}

Answer CleanroomFixture::call(const Identity* who, const std::string& method,
                              const std::string& target, const std::string& body) {
    Answer answer;
    auto& client = clients_[who];
    if (client == nullptr) {
        client = connect_client(*node_, who);
        if (client == nullptr) {
            return answer;
        }
    }
    net::HeaderList headers = {{"content-type", "application/json"}};
    if (method == "POST") {
        headers.emplace_back("x-coffer-wait-ms", kWriteWaitMs);
    }
    auto r = client->request(method, target, body, headers);
    if (!r.ok()) {
        ADD_FAILURE() << method << " " << target << ": " << r.status().to_string();
        return answer;
    }
    answer.status = r->status;
    answer.raw = r->body;
    answer.body = json::parse(r->body, nullptr, false);
    answers_.push_back(r->body);
    for (const auto& [name, value] : r->headers) {
        answers_.push_back(name + ": " + value);
    }
    return answer;
}

Bytes CleanroomFixture::service_key() {
    Answer key = call(nullptr, "GET", "/app/cleanroom/key");
    EXPECT_EQ(key.status, 200) << key.raw;
    auto bytes = from_hex(key.body.value("public_key", ""));
    return bytes.ok() ? *bytes : Bytes();
}

Answer CleanroomFixture::send_chunk(const Identity& who, const std::string& upload_id,
                                    uint64_t index, const Bytes& plaintext, const Bytes& key,
                                    const std::string& aad) {
    auto sealed = crypto::hpke_seal(
        crypto::HpkeSuite{}, key, as_bytes("coffer-cleanroom-upload-v1"), as_bytes(aad), plaintext);
    EXPECT_TRUE(sealed.ok()) << sealed.status().to_string();
    if (!sealed.ok()) {
        return {};
    }
    Bytes body = sealed->enc;
    put_bytes(body, sealed->ciphertext);
    return call(
        who, "POST",
        "/app/cleanroom/uploads/chunk?upload=" + upload_id + "&index=" + std::to_string(index),
        to_string(body));
}

Answer CleanroomFixture::upload(const Identity& who, const std::string& dataset,
                                const std::string& csv, size_t chunk_bytes,
                                const UploadOptions& options) {
    Bytes key = service_key();
    Answer started = call(who, "POST", "/app/cleanroom/uploads?dataset=" + dataset);
    if (started.status != 200) {
        return started;
    }
    std::string id = started.body["upload_id"];
    uint64_t index = 0;
    for (size_t at = 0; at < csv.size(); at += chunk_bytes, ++index) {
        Bytes piece = to_bytes(std::string_view(csv).substr(at, chunk_bytes));
        Answer sent = send_chunk(who, id, index, piece, key, id + "/" + std::to_string(index));
        if (sent.status != 200) {
            return sent;
        }
    }
    json commit = {
        {"chunks", index},
        {"sha256", options.sha256_override.value_or(to_hex(crypto::sha256(as_bytes(csv))))}};
    return call(who, "POST", "/app/cleanroom/uploads/commit?upload=" + id, commit.dump());
}

std::string CleanroomFixture::open_result(const Identity& who, const std::string& run_id) {
    Answer sealed = call(who, "GET", "/app/cleanroom/results?run=" + run_id);
    EXPECT_EQ(sealed.status, 200) << sealed.raw;
    if (sealed.status != 200) {
        return "";
    }
    auto private_key = crypto::x25519_private_from_pem(read_text_file(enc_private_key_path(who)));
    auto enc = from_hex(sealed.body.value("enc", ""));
    auto ciphertext = from_hex(sealed.body.value("ciphertext", ""));
    EXPECT_TRUE(private_key.ok() && enc.ok() && ciphertext.ok());
    if (!private_key.ok() || !enc.ok() || !ciphertext.ok()) {
        return "";
    }
    std::string aad = run_id + "/" + who.name;
    auto plaintext =
        crypto::hpke_open(crypto::HpkeSuite{}, private_key->private_key, *enc,
                          as_bytes("coffer-cleanroom-result-v1"), as_bytes(aad), *ciphertext);
    EXPECT_TRUE(plaintext.ok()) << plaintext.status().to_string();
    return plaintext.ok() ? to_string(*plaintext) : "";
}

uint64_t CleanroomFixture::settled_last_seqno() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kSettleTimeoutMs);
    while (std::chrono::steady_clock::now() < deadline) {
        Answer s = call(nullptr, "GET", "/node/state");
        if (s.status == 200 && s.body["last_seqno"] == s.body["committed_seqno"]) {
            return s.body["last_seqno"].get<uint64_t>();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "the node never settled";
    return 0;
}

void CleanroomFixture::walk_every_endpoint(const std::map<std::string, std::string>& params) {
    Answer listing = call(nullptr, "GET", "/node/endpoints");
    ASSERT_EQ(listing.status, 200);
    const nlohmann::json endpoints = listing.body["endpoints"];
    size_t cleanroom_endpoints = 0;
    for (const Identity* who :
         {&bank_a_, &bank_b_, &bank_c_, &viewer_, &member_, static_cast<Identity*>(nullptr)}) {
        for (const json& e : endpoints) {
            std::string method = e["method"];
            std::string path = e["path"];
            bool cleanroom = path.rfind("/app/cleanroom/", 0) == 0;
            if (method != "GET" && !cleanroom) {
                continue;
            }
            cleanroom_endpoints += cleanroom ? 1 : 0;
            std::string query =
                cleanroom ? walk_query(path, params) : e["example_query"].get<std::string>();
            Answer a = call(who, method, query.empty() ? path : path + "?" + query,
                            e["example_body"].get<std::string>());
            EXPECT_NE(a.status, 0) << method << " " << path;
            EXPECT_LT(a.status, 500) << method << " " << path << ": " << a.raw;
        }
    }
    EXPECT_EQ(cleanroom_endpoints, 14u * 6u);
}

}  // namespace coffer::e2e
