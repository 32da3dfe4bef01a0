#include <gtest/gtest.h>

#include "node/config.h"

namespace coffer::node {
namespace {

const char* kMinimal = R"({
  "client_address": "127.0.0.1:0",
  "node_address": "127.0.0.1:0",
  "data_dir": "data",
  "members": [{"certificate": "m0_cert.pem", "encryption_public_key": "m0_enc_pubk.pem"}],
  "users": []
})";

TEST(Config, MinimalConfigGetsDefaultsAndResolvesPaths) {
    auto config = parse_config(kMinimal, "/etc/coffer");
    ASSERT_TRUE(config.ok()) << config.status().to_string();
    EXPECT_EQ(config->data_dir, "/etc/coffer/data");
    EXPECT_EQ(config->members.at(0).certificate_file, "/etc/coffer/m0_cert.pem");
    EXPECT_TRUE(config->local_sealing);
    EXPECT_EQ(config->platform, "virtual");
    EXPECT_EQ(config->http.max_body_bytes, size_t{1} << 20);
    EXPECT_EQ(config->client_address.host, "127.0.0.1");
}

TEST(Config, UnknownNestedFieldIsNamed) {
    std::string text = kMinimal;
    text.insert(text.rfind('}'), R"(, "ledger": {"chunk_size": 5})");
    auto config = parse_config(text, "/x");
    ASSERT_FALSE(config.ok());
    EXPECT_NE(config.status().message().find("unknown field \"ledger.chunk_size\""),
              std::string::npos)
        << config.status().message();
}

TEST(Config, MissingRequiredFieldIsNamed) {
    std::string text = R"({"client_address": "127.0.0.1:1", "node_address": "127.0.0.1:2",
                           "members": [], "users": []})";
    auto config = parse_config(text, "/x");
    ASSERT_FALSE(config.ok());
    EXPECT_NE(config.status().message().find("missing field \"data_dir\""), std::string::npos);
}

TEST(Config, WrongTypeAndRangeAreRefused) {
    std::string text = kMinimal;
    text.insert(text.rfind('}'), R"(, "http": {"threads": 0})");
    auto config = parse_config(text, "/x");
    ASSERT_FALSE(config.ok());
    EXPECT_NE(config.status().message().find("http.threads"), std::string::npos);

    std::string text2 = kMinimal;
    text2.insert(text2.rfind('}'), R"(, "local_sealing": "yes")");
    EXPECT_FALSE(parse_config(text2, "/x").ok());
}

TEST(Config, ListenAddressesParseStrictly) {
    EXPECT_TRUE(parse_listen_address("[::1]:8080").ok());
    EXPECT_EQ(parse_listen_address("[::1]:8080")->to_string(), "[::1]:8080");
    EXPECT_FALSE(parse_listen_address("localhost:80").ok());
    EXPECT_FALSE(parse_listen_address("127.0.0.1").ok());
    EXPECT_FALSE(parse_listen_address("127.0.0.1:65536").ok());
    EXPECT_FALSE(parse_listen_address("127.0.0.1:-1").ok());
    EXPECT_FALSE(parse_listen_address("::1:80").ok());
}

}  // namespace
}  // namespace coffer::node
