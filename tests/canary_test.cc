// The canary rule: a private map value appears in no file under data_dir and not in the
// node's log, in any common encoding; a public one does appear (which proves the scan).
#include <gtest/gtest.h>

#include "crypto/encoding.h"
#include "crypto/random.h"
#include "tests/node_fixture.h"

namespace coffer::e2e {
namespace {

using nlohmann::json;

// The encodings a leak could take: raw, hex (both cases), and base64 at the three byte
// alignments the value could start at (only the part of the encoding that does not depend
// on neighbouring bytes is searched).
std::vector<std::string> encodings(const std::string& value) {
    std::vector<std::string> out = {value, to_hex(as_bytes(value))};
    std::string upper = out[1];
    for (char& ch : upper) {
        ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
    out.push_back(upper);
    for (size_t pad = 0; pad < 3; ++pad) {
        std::string padded = std::string(pad, 'x') + value;
        std::string b64 = crypto::base64_encode(as_bytes(padded));
        size_t skip = (pad + 2) / 3 * 4;  // characters that mix in the padding bytes
        size_t keep = (value.size() - (3 - pad) % 3) / 3 * 4;
        out.push_back(b64.substr(skip, keep > 8 ? keep - 4 : keep));
    }
    return out;
}

// Names of the files under the folder (and the log) that contain any encoding of `value`.
std::vector<std::string> files_containing(const std::vector<std::string>& files,
                                          const std::string& value) {
    std::vector<std::string> found;
    std::vector<std::string> needles = encodings(value);
    for (const std::string& f : files) {
        std::string content = read_text_file(f);
        for (const std::string& needle : needles) {
            if (!needle.empty() && content.find(needle) != std::string::npos) {
                found.push_back(f + " (as " + needle + ")");
                break;
            }
        }
    }
    return found;
}

class CanaryTest : public NodeFixture {
  protected:
    nlohmann::json extra_config() const override { return {{"log_level", "trace"}}; }
};

TEST_F(CanaryTest, PrivateValuesNeverReachADiskOrTheLog) {
    std::string private_canary = "canary-" + to_hex(crypto::random_bytes(16));
    std::string public_canary = "public-" + to_hex(crypto::random_bytes(16));
    auto c = client(&user_);
    ASSERT_NE(c, nullptr);
    std::string last;
    for (uint64_t id = 0; id < 20; ++id) {
        auto priv = c->request("POST", "/app/log/private",
                               json{{"id", id}, {"msg", private_canary}}.dump());
        ASSERT_TRUE(priv.ok());
        ASSERT_EQ(priv->status, 200) << priv->body;
        auto pub =
            c->request("POST", "/app/log/public", json{{"id", id}, {"msg", public_canary}}.dump());
        ASSERT_TRUE(pub.ok());
        last = json::parse(pub->body).value("transaction_id", "");
    }
    ASSERT_TRUE(wait_committed(*c, last, 10000));
    auto read = c->request("GET", "/app/log/private?id=3");
    ASSERT_TRUE(read.ok());
    EXPECT_NE(read->body.find(private_canary), std::string::npos);
    // A receipt of a private write carries only its digest.
    auto receipt =
        c->request("GET", "/app/receipt?transaction_id=" + last + "&include_public=true");
    ASSERT_TRUE(receipt.ok());
    c.reset();
    ASSERT_EQ(node_->terminate(), 0);

    std::vector<std::string> files = files_under(data_dir());
    files.push_back(log_path_);
    ASSERT_GT(files.size(), 3u);
    std::vector<std::string> leaks = files_containing(files, private_canary);
    EXPECT_TRUE(leaks.empty()) << "private canary found in " << leaks.front();
    EXPECT_FALSE(files_containing(files, public_canary).empty())
        << "the public canary must be in the ledger, or the scan proves nothing";
    EXPECT_EQ(receipt->body.find(private_canary), std::string::npos);
}

}  // namespace
}  // namespace coffer::e2e
