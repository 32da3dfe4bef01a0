// A test fixture with one running node of an open service: a member, two users (user0,
// user1) and an identity the node does not know (stranger), all made with `coffer keygen`.
// SetUp opens the new service with the member's transition_service_to_open proposal.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "tests/e2e_util.h"

namespace coffer::e2e {

class NodeFixture : public ::testing::Test {
  protected:
    // Extra top-level configuration fields for this fixture's node.
    virtual nlohmann::json extra_config() const { return nlohmann::json::object(); }

    void SetUp() override {
        member_ = keygen(dir_.path(), "member0");
        user_ = keygen(dir_.path(), "user0");
        user1_ = keygen(dir_.path(), "user1");
        stranger_ = keygen(dir_.path(), "stranger");
        ASSERT_FALSE(member_.cert_pem.empty());
        config_path_ = dir_.path() + "/config.json";
        write_text_file(config_path_,
                        make_config(dir_.path(), member_, {user_, user1_}, extra_config()).dump(2));
        log_path_ = dir_.path() + "/node.log";
        node_ = std::make_unique<NodeProcess>(config_path_, data_dir(), log_path_);
        std::string why;
        ASSERT_TRUE(node_->start(why)) << why;
        ASSERT_TRUE(open_service(node_->port(), node_->service_cert_pem(), {member_}, why)) << why;
    }

    std::string data_dir() const { return dir_.path() + "/data"; }

    // Restarts the node after it stopped; fails the test if it does not come up.
    void restart_node() {
        std::string why;
        ASSERT_TRUE(node_->start(why)) << why;
    }

    std::unique_ptr<net::HttpClient> client(const Identity* who) {
        return connect_client(*node_, who);
    }

    TempDir dir_;
    Identity member_;
    Identity user_;
    Identity user1_;
    Identity stranger_;
    std::string config_path_;
    std::string log_path_;
    std::unique_ptr<NodeProcess> node_;
};

}  // namespace coffer::e2e
