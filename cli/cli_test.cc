// Tests of the `coffer` command as a user runs it: a real process, real files.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>

namespace {

namespace fs = std::filesystem;

struct RunResult {
    int exit_code = -1;
    std::string output;  // stdout and stderr together
};

RunResult run(const std::string& args) {
    std::string command = std::string(COFFER_BIN) + " " + args + " 2>&1";
    RunResult result;
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) {
        return result;
    }
    std::array<char, 4096> buffer{};
    size_t n = 0;
    while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
        result.output.append(buffer.data(), n);
    }
    int status = pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

class CliTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char pattern[] = "/tmp/coffer-cli-test-XXXXXX";
        ASSERT_NE(mkdtemp(pattern), nullptr);
        dir_ = pattern;
    }
    void TearDown() override { fs::remove_all(dir_); }

    // A small sample ledger with signatures every 10 entries.
    void make_sample(int transactions) {
        RunResult r = run("ledger sample --out " + dir_ + "/s --transactions " +
                          std::to_string(transactions) + " --signature-interval 10");
        ASSERT_EQ(r.exit_code, 0) << r.output;
    }

    std::string dir_;
};

TEST_F(CliTest, SampleLedgerVerifiesAndItsReceiptVerifies) {
    make_sample(120);
    RunResult v =
        run("ledger verify " + dir_ + "/s/ledger --service-cert " + dir_ + "/s/service_cert.pem");
    EXPECT_EQ(v.exit_code, 0) << v.output;
    EXPECT_NE(v.output.find("ledger ok: "), std::string::npos) << v.output;
    EXPECT_NE(v.output.find("node certificates issued by the service"), std::string::npos);

    RunResult r = run("receipt verify " + dir_ + "/s/receipt.json --service-cert " + dir_ +
                      "/s/service_cert.pem");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("receipt verified"), std::string::npos) << r.output;
}

TEST_F(CliTest, ReceiptAgainstAnotherServiceIsRejected) {
    make_sample(30);
    RunResult other = run("ledger sample --out " + dir_ + "/t --transactions 5");
    ASSERT_EQ(other.exit_code, 0) << other.output;
    RunResult r = run("receipt verify " + dir_ + "/s/receipt.json --service-cert " + dir_ +
                      "/t/service_cert.pem");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("receipt rejected"), std::string::npos) << r.output;
}

// The frame start offset of every entry of every chunk, from `coffer ledger show`.
std::map<std::string, std::map<uint64_t, uint64_t>> entry_offsets(const std::string& ledger) {
    RunResult show = run("ledger show " + ledger);
    std::map<std::string, std::map<uint64_t, uint64_t>> out;  // file -> offset -> seqno
    std::regex line(R"(^\d+\.(\d+)(?:  signature)?  (\S+)@(\d+) )");
    std::istringstream in(show.output);
    std::string text;
    while (std::getline(in, text)) {
        std::smatch m;
        if (std::regex_search(text, m, line)) {
            out[fs::path(m[2].str()).filename().string()][std::stoull(m[3].str())] =
                std::stoull(m[1].str());
        }
    }
    return out;
}

TEST_F(CliTest, FlippedByteAnywhereIsFoundAndTheRightEntryNamed) {
    make_sample(40);
    std::string ledger = dir_ + "/s/ledger";
    auto offsets = entry_offsets(ledger);
    ASSERT_FALSE(offsets.empty());

    int checked = 0;
    for (const auto& [file, starts] : offsets) {
        uint64_t size = fs::file_size(ledger + "/" + file);
        // Every 23rd byte: covers chunk headers, frame headers, public and private parts,
        // signature entries and checksums of a 40-transaction ledger.
        for (uint64_t at = 0; at < size; at += 23) {
            fs::remove_all(dir_ + "/copy");
            fs::copy(ledger, dir_ + "/copy");
            {
                std::fstream f(dir_ + "/copy/" + file,
                               std::ios::in | std::ios::out | std::ios::binary);
                f.seekg(static_cast<std::streamoff>(at));
                char c = 0;
                f.get(c);
                f.seekp(static_cast<std::streamoff>(at));
                f.put(static_cast<char>(c ^ 0x20));
            }
            auto it = starts.upper_bound(at);
            uint64_t expected =
                it == starts.begin() ? starts.begin()->second : std::prev(it)->second;
            RunResult v = run("ledger verify " + dir_ + "/copy");
            ASSERT_EQ(v.exit_code, 1) << "flip at " << file << "@" << at << ": " << v.output;
            EXPECT_NE(v.output.find("seqno=" + std::to_string(expected) + " "), std::string::npos)
                << "flip at " << file << "@" << at << " should name seqno " << expected << ": "
                << v.output;
            ++checked;
        }
    }
    EXPECT_GT(checked, 100);
}

TEST_F(CliTest, PathsThatAreNotLedgersAreRefusedWithUsageExitCode) {
    EXPECT_EQ(run("ledger verify " + dir_).exit_code, 2);
    EXPECT_EQ(run("ledger verify " + dir_ + "/missing").exit_code, 2);
    EXPECT_EQ(run("ledger show " + dir_ + "/missing").exit_code, 2);
    EXPECT_EQ(run("receipt verify " + dir_ + "/missing.json --service-cert x").exit_code, 2);
    EXPECT_EQ(run("ledger nonsense").exit_code, 2);
}

TEST_F(CliTest, ShowPrintsPublicWritesAndOnlyTheSizeOfPrivateParts) {
    make_sample(12);
    RunResult show = run("ledger show " + dir_ + "/s/ledger --limit 2");
    EXPECT_EQ(show.exit_code, 0) << show.output;
    EXPECT_NE(show.output.find("public note 1"), std::string::npos) << show.output;
    EXPECT_EQ(show.output.find("private payload"), std::string::npos) << show.output;
    EXPECT_NE(show.output.find("bytes (encrypted)"), std::string::npos) << show.output;
}

}  // namespace
