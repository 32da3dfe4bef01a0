// Runs every scenario script in consensus/scenarios/ and checks the runner itself.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "consensus/sim/scenario.h"

namespace coffer::consensus::sim {
namespace {

std::filesystem::path scenario_dir() {
    return std::filesystem::path(COFFER_SOURCE_DIR) / "consensus" / "scenarios";
}

std::vector<std::filesystem::path> scenario_files() {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(scenario_dir())) {
        if (entry.path().extension() == ".txt") {
            files.push_back(entry.path());
        }
    }
    std::sort(files.begin(), files.end());
    return files;
}

std::string read_all(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

TEST(ConsensusScenario, EveryScriptInTheFolderPasses) {
    spdlog::set_level(spdlog::level::err);
    auto files = scenario_files();
    // The folder holds at least the field-case scenarios (docs/consensus.md lists them).
    ASSERT_GE(files.size(), 9u) << "scenario files missing in " << scenario_dir();
    for (const auto& file : files) {
        Status s = run_scenario(read_all(file));
        EXPECT_TRUE(s.ok()) << file.filename() << ": " << s.to_string();
    }
}

// The field-case scripts fail against the bugs they are about.
TEST(ConsensusScenario, FieldCaseScriptsCatchTheirPlantedBugs) {
    spdlog::set_level(spdlog::level::off);
    std::string con1 = read_all(scenario_dir() / "con1_single_node.txt");
    Status ack_early = run_scenario("planted_bug 1\n" + con1);
    EXPECT_FALSE(ack_early.ok());

    std::string con2 = read_all(scenario_dir() / "con2_divergence.txt");
    Status keep_suffix = run_scenario("planted_bug 3\n" + con2);
    EXPECT_FALSE(keep_suffix.ok());
    spdlog::set_level(spdlog::level::err);
}

TEST(ConsensusScenario, FailedExpectationNamesTheLine) {
    Status s = run_scenario("nodes 3\nelect n1\n\nexpect leader n2\n");
    ASSERT_EQ(s.code(), Errc::kFailedPrecondition);
    EXPECT_NE(s.message().find("line 4"), std::string::npos) << s.to_string();
}

TEST(ConsensusScenario, WaitTimesOutWhenTheConditionNeverHolds) {
    Status s = run_scenario(
        "nodes 3\nelect n1\npartition n1 | n2 n3\npropose n1 x\nsign n1\n"
        "wait committed_value x within 500\n");
    EXPECT_EQ(s.code(), Errc::kFailedPrecondition) << s.to_string();
}

TEST(ConsensusScenario, RejectsUnknownCommandsAndNodes) {
    EXPECT_EQ(run_scenario("nodes 3\nfrobnicate n1\n").code(), Errc::kInvalidArgument);
    EXPECT_EQ(run_scenario("nodes 3\nexpect leader n9\n").code(), Errc::kInvalidArgument);
    EXPECT_EQ(run_scenario("elect n1\n").code(), Errc::kInvalidArgument);
    EXPECT_EQ(run_scenario("nodes 3\nexpect commit n1 ~ 3\n").code(), Errc::kInvalidArgument);
}

TEST(ConsensusScenario, ExpectedFailureOfAProposalIsChecked) {
    // A follower refuses writes: `fails` passes, and the plain form fails the script.
    EXPECT_TRUE(run_scenario("nodes 3\nelect n1\npropose n2 x fails\n").ok());
    EXPECT_EQ(run_scenario("nodes 3\nelect n1\npropose n2 x\n").code(), Errc::kFailedPrecondition);
}

}  // namespace
}  // namespace coffer::consensus::sim
