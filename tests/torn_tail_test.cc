// Field case LED-1, steps 1-3: a node restarted on copies of its data directory whose last
// chunk was cut inside its last entry (or extended with zeros) starts, warns exactly once
// naming the chunk and offset (never for a cut at an entry boundary), serves every committed
// write, and keeps a ledger that verifies after new writes.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "tests/node_fixture.h"

namespace coffer::e2e {
namespace {

using nlohmann::json;

constexpr int kMessagesPerMap = 200;
constexpr int kCommitTimeoutMs = 10000;
// Bytes of a chunk frame header (docs/formats/ledger-chunk.md, "Frame").
constexpr uint64_t kFrameHeaderBytes = 24;

struct LastFrame {
    std::string file;
    uint64_t start = 0;
    uint64_t end = 0;
};

// The file and offset of the last entry, from `coffer ledger show`.
LastFrame last_frame(const std::string& ledger_dir) {
    CommandResult shown = run_coffer({"ledger", "show", ledger_dir});
    EXPECT_EQ(shown.exit_code, 0) << shown.output;
    std::regex where(R"((\S+)@(\d+))");
    LastFrame last;
    for (std::sregex_iterator it(shown.output.begin(), shown.output.end(), where), end; it != end;
         ++it) {
        last.file = (*it)[1];
        last.start = std::stoull((*it)[2]);
    }
    last.end = std::filesystem::file_size(last.file);
    return last;
}

size_t count(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
        ++n;
    }
    return n;
}

class TornTailTest : public NodeFixture {
  protected:
    // Copies the data directory, applies `damage` to the copy's last chunk, starts a node on
    // it and checks the expectations of LED-1. `torn` says whether a repair WARN is due.
    void check_copy(const std::string& name, const LastFrame& last, bool torn,
                    const std::function<void(const std::string&)>& damage) {
        SCOPED_TRACE(name);
        std::string copy_dir = dir_.path() + "/" + name;
        std::filesystem::create_directories(copy_dir);
        std::filesystem::copy(data_dir(), copy_dir + "/data",
                              std::filesystem::copy_options::recursive);
        std::string chunk =
            copy_dir + "/data/ledger/" + std::filesystem::path(last.file).filename().string();
        damage(chunk);

        json config = json::parse(read_text_file(config_path_));
        config["data_dir"] = copy_dir + "/data";
        write_text_file(copy_dir + "/config.json", config.dump());
        std::string log = copy_dir + "/node.log";
        NodeProcess node(copy_dir + "/config.json", copy_dir + "/data", log);
        std::string why;
        ASSERT_TRUE(node.start(why)) << why;

        auto c = connect_client(node, &user_);
        ASSERT_NE(c, nullptr);
        for (int i = 0; i < kMessagesPerMap; ++i) {
            for (const char* map : {"private", "public"}) {
                auto r =
                    c->request("GET", std::string("/app/log/") + map + "?id=" + std::to_string(i));
                ASSERT_TRUE(r.ok());
                ASSERT_EQ(r->status, 200) << map << " " << i << ": " << r->body;
                EXPECT_EQ(json::parse(r->body).value("msg", ""),
                          std::string(map) + " " + std::to_string(i));
            }
        }
        // Entries whose signature was cut are signed again by the restarted node.
        ASSERT_TRUE(wait_committed(*c, committed_.back(), kCommitTimeoutMs));
        for (const std::string& tx : committed_) {
            auto r = c->request("GET", "/node/tx?transaction_id=" + tx);
            ASSERT_TRUE(r.ok());
            EXPECT_EQ(json::parse(r->body).value("status", ""), "Committed") << tx;
        }

        std::string text = read_text_file(log);
        size_t warnings = count(text, "ledger.torn_tail_repaired");
        EXPECT_EQ(warnings, torn ? 1u : 0u) << text;
        if (torn) {
            EXPECT_NE(text.find("file=" + chunk), std::string::npos) << text;
        }

        auto write = c->request("POST", "/app/log/public", R"({"id": 99999, "msg": "after"})");
        ASSERT_TRUE(write.ok());
        ASSERT_EQ(write->status, 200);
        EXPECT_TRUE(wait_committed(*c, json::parse(write->body).value("transaction_id", ""),
                                   kCommitTimeoutMs));
        c.reset();
        EXPECT_EQ(node.terminate(), 0);
        CommandResult verified = run_coffer({"ledger", "verify", copy_dir + "/data/ledger"});
        EXPECT_EQ(verified.exit_code, 0) << verified.output;
    }

    std::vector<std::string> committed_;
};

void cut_at(const std::string& file, uint64_t size) {
    std::filesystem::resize_file(file, size);
}

TEST_F(TornTailTest, RestartOnCutCopiesKeepsEveryCommittedWrite) {
    auto c = client(&user_);
    ASSERT_NE(c, nullptr);
    for (int i = 0; i < kMessagesPerMap; ++i) {
        for (const char* map : {"private", "public"}) {
            std::string body =
                json{{"id", i}, {"msg", std::string(map) + " " + std::to_string(i)}}.dump();
            auto r = c->request("POST", std::string("/app/log/") + map, body);
            ASSERT_TRUE(r.ok());
            ASSERT_EQ(r->status, 200);
            committed_.push_back(json::parse(r->body).value("transaction_id", ""));
        }
    }
    ASSERT_TRUE(wait_committed(*c, committed_.back(), kCommitTimeoutMs));
    c.reset();
    ASSERT_EQ(node_->terminate(), 0);

    LastFrame last = last_frame(data_dir() + "/ledger");
    ASSERT_GT(last.end, last.start + kFrameHeaderBytes);
    uint64_t entry_middle = last.start + kFrameHeaderBytes + (last.end - last.start) / 2;
    check_copy("one_byte_in", last, true, [&](auto& f) { cut_at(f, last.start + 1); });
    check_copy("mid_header", last, true, [&](auto& f) { cut_at(f, last.start + 12); });
    check_copy("header_end", last, true,
               [&](auto& f) { cut_at(f, last.start + kFrameHeaderBytes); });
    check_copy("mid_entry", last, true, [&](auto& f) { cut_at(f, entry_middle); });
    check_copy("one_byte_short", last, true, [&](auto& f) { cut_at(f, last.end - 1); });
    check_copy("at_boundary", last, false, [&](auto& f) { cut_at(f, last.start); });
    check_copy("zeros_appended", last, true, [&](auto& f) { cut_at(f, last.end + 4096); });
}

}  // namespace
}  // namespace coffer::e2e
