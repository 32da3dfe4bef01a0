// The seed sweep: thousands of randomised runs of 3- and 5-node networks under faults, each
// checked after every step, plus the simulator's self-test against planted bugs.
//
//   COFFER_SIM_SEEDS=N      number of seeds (default 2000; the ASan phase of `make test`
//                           uses fewer, `make soak` 100000)
//   COFFER_SIM_SEED=S       replay exactly one seed
//   COFFER_SIM_FIRST_SEED=F first seed of the sweep (default 1)
//   COFFER_SIM_MAX_FAILURES=M stop after M failing seeds (default 5)
//   COFFER_SIM_BUG=B        run the sweep with planted bug B (1 ack-before-flush,
//                           2 commit-earlier-term, 3 skip-truncate-on-conflict), to replay
//                           the seed a planted-bug test printed
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "consensus/sim/simulator.h"

namespace coffer::consensus::sim {
namespace {

constexpr uint64_t kDefaultSeeds = 2000;
constexpr uint64_t kChaosMs = 8000;
constexpr uint64_t kLivenessMs = 10000;
// Planted bugs are hunted over at most this many seeds each.
constexpr uint64_t kMaxBugHuntSeeds = 2000;

volatile uint64_t g_current_seed = 0;

uint64_t env_u64(const char* name, uint64_t fallback) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') {
        return fallback;
    }
    return std::strtoull(value, nullptr, 10);
}

// An abort (a broken COFFER_CHECK inside the state machine) still names the seed to replay.
void on_abort(int) {
    char buffer[128];
    char digits[24];
    int n = 0;
    uint64_t seed = g_current_seed;
    do {
        digits[n++] = static_cast<char>('0' + seed % 10);
        seed /= 10;
    } while (seed != 0 && n < 20);
    int length = 0;
    const char prefix[] = "\nconsensus_sim_test: aborted in seed; replay: COFFER_SIM_SEED=";
    for (const char* p = prefix; *p != '\0'; ++p) {
        buffer[length++] = *p;
    }
    while (n > 0) {
        buffer[length++] = digits[--n];
    }
    const char suffix[] = " ./consensus_sim_test\n";
    for (const char* p = suffix; *p != '\0'; ++p) {
        buffer[length++] = *p;
    }
    ssize_t ignored = write(STDERR_FILENO, buffer, static_cast<size_t>(length));
    (void)ignored;
}

SimOptions chaos_options(uint64_t seed, PlantedBug bug) {
    SimOptions options;
    options.seed = seed;
    options.raft.election_timeout_min_ms = 150;
    options.raft.election_timeout_max_ms = 300;
    options.raft.heartbeat_interval_ms = 30;
    options.raft.max_entries_per_message = 8;
    options.raft.max_bytes_per_message = kMessageOverheadBytes + 200;
    options.raft.max_uncommitted_entries = 64;
    options.raft.planted_bug = bug;
    // Two signing policies: a new leader signs at once (as CCF does), or only on its timer,
    // which leaves a window in which nothing of the new term is signed.
    options.load.sign_on_election = (seed / 2) % 2 == 0;
    // A quarter of the seeds (5 nodes) change membership under load and faults.
    options.faults.reconfigure_per_step = seed % 4 == 1 ? 0.004 : 0;
    return options;
}

Status run_seed(uint64_t seed, PlantedBug bug, SimStats* totals) {
    g_current_seed = seed;
    Simulator sim(chaos_options(seed, bug));
    int nodes = seed % 2 == 0 ? 3 : 5;
    for (int i = 1; i <= nodes; ++i) {
        COFFER_RETURN_IF_ERROR(sim.add_node("n" + std::to_string(i), true));
    }
    Status s = sim.run_chaos(kChaosMs, kLivenessMs);
    if (totals != nullptr) {
        totals->add(sim.stats());
    }
    return s;
}

TEST(ConsensusSim, SeedSweepKeepsEveryInvariant) {
    spdlog::set_level(spdlog::level::err);
    std::signal(SIGABRT, on_abort);
    uint64_t first = env_u64("COFFER_SIM_FIRST_SEED", 1);
    uint64_t count = env_u64("COFFER_SIM_SEEDS", kDefaultSeeds);
    if (std::getenv("COFFER_SIM_SEED") != nullptr) {
        first = env_u64("COFFER_SIM_SEED", 1);
        count = 1;
    }
    auto bug = static_cast<PlantedBug>(std::min<uint64_t>(env_u64("COFFER_SIM_BUG", 0), 3));
    SimStats totals;
    uint64_t failures = 0;
    uint64_t max_failures = env_u64("COFFER_SIM_MAX_FAILURES", 5);
    for (uint64_t seed = first; seed < first + count && failures < max_failures; ++seed) {
        Status s = run_seed(seed, bug, &totals);
        if (!s.ok()) {
            ++failures;
            ADD_FAILURE() << "seed " << seed << ": " << s.to_string()
                          << "\n  replay: COFFER_SIM_SEED=" << seed << " ./consensus_sim_test";
        }
    }
    std::signal(SIGABRT, SIG_DFL);
    std::printf(
        "consensus sim: seeds=%llu steps=%llu elections=%llu crashes=%llu power_losses=%llu "
        "partitions=%llu one_way=%llu torn_writes=%llu dropped=%llu duplicated=%llu "
        "delivered=%llu snapshots_installed=%llu compactions=%llu reconfigurations=%llu "
        "proposals=%llu reads=%llu committed=%llu\n",
        static_cast<unsigned long long>(count), static_cast<unsigned long long>(totals.steps),
        static_cast<unsigned long long>(totals.elections),
        static_cast<unsigned long long>(totals.crashes),
        static_cast<unsigned long long>(totals.power_losses),
        static_cast<unsigned long long>(totals.partitions),
        static_cast<unsigned long long>(totals.one_way_partitions),
        static_cast<unsigned long long>(totals.torn_writes),
        static_cast<unsigned long long>(totals.dropped),
        static_cast<unsigned long long>(totals.duplicated),
        static_cast<unsigned long long>(totals.delivered),
        static_cast<unsigned long long>(totals.snapshots_installed),
        static_cast<unsigned long long>(totals.compactions),
        static_cast<unsigned long long>(totals.reconfigurations),
        static_cast<unsigned long long>(totals.proposals),
        static_cast<unsigned long long>(totals.reads_confirmed),
        static_cast<unsigned long long>(totals.max_committed));
    if (count >= 50) {
        // A sweep that injected no faults of some kind tested nothing about it.
        EXPECT_GT(totals.elections, 0u);
        EXPECT_GT(totals.crashes, 0u);
        EXPECT_GT(totals.partitions, 0u);
        EXPECT_GT(totals.one_way_partitions, 0u);
        EXPECT_GT(totals.torn_writes, 0u);
        EXPECT_GT(totals.dropped, 0u);
        EXPECT_GT(totals.duplicated, 0u);
        EXPECT_GT(totals.snapshots_installed, 0u);
        EXPECT_GT(totals.reads_confirmed, 0u);
        EXPECT_GT(totals.reconfigurations, 0u);
        EXPECT_GT(totals.max_committed, 0u);
    }
}

// Runs seeds first.. in a child process (a planted bug may trip an assertion, which aborts)
// and returns the seed in which the simulator caught the bug, or 0.
uint64_t hunt(PlantedBug bug, uint64_t first, uint64_t count, std::string* how) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        spdlog::set_level(spdlog::level::off);
        for (uint64_t seed = first; seed < first + count; ++seed) {
            ssize_t w = write(fds[1], &seed, sizeof(seed));
            (void)w;
            if (!run_seed(seed, bug, nullptr).ok()) {
                _exit(1);
            }
        }
        _exit(0);
    }
    close(fds[1]);
    uint64_t last = 0;
    uint64_t seed = 0;
    while (read(fds[0], &seed, sizeof(seed)) == static_cast<ssize_t>(sizeof(seed))) {
        last = seed;
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 1) {
        *how = "invariant violation";
        return last;
    }
    if (WIFSIGNALED(status)) {
        *how = "assertion (signal " + std::to_string(WTERMSIG(status)) + ")";
        return last;
    }
    return 0;
}

void expect_caught(PlantedBug bug, const char* name) {
    // Independent of COFFER_SIM_SEEDS: the hunt stops at the first seed that catches the bug.
    uint64_t count = kMaxBugHuntSeeds;
    std::string how;
    uint64_t seed = hunt(bug, 1, count, &how);
    EXPECT_NE(seed, 0u) << "the simulator did not catch planted bug " << name << " in " << count
                        << " seeds";
    if (seed != 0) {
        std::printf(
            "planted bug %s caught by seed %llu (%s); replay: COFFER_SIM_BUG=%d "
            "COFFER_SIM_SEED=%llu ./consensus_sim_test\n",
            name, static_cast<unsigned long long>(seed), how.c_str(), static_cast<int>(bug),
            static_cast<unsigned long long>(seed));
    }
}

TEST(ConsensusSim, CatchesAckBeforeFlush) {
    expect_caught(PlantedBug::kAckBeforeFlush, "ack-before-flush");
}

TEST(ConsensusSim, CatchesCommitOfEarlierTermByCounting) {
    expect_caught(PlantedBug::kCommitEarlierTerm, "commit-earlier-term");
}

TEST(ConsensusSim, CatchesSkippedTruncationOnConflict) {
    expect_caught(PlantedBug::kSkipTruncateOnConflict, "skip-truncate-on-conflict");
}

}  // namespace
}  // namespace coffer::consensus::sim
