// Randomised histories: clients of a true sequential register, recorded with intervals
// around the real moments the operations took effect, must always be accepted; a history
// with one read changed so that no linearization can exist must always be rejected.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "lincheck/checker.h"
#include "lincheck/history.h"

namespace coffer::lincheck {
namespace {

struct GeneratorConfig {
    int clients = 8;
    int ops_per_client = 40;
    int keys = 3;
    int read_percent = 50;
    int unknown_percent = 8;  // of writes and of reads
    int failed_percent = 4;   // of writes
};

struct Generated {
    Operation op;
    int64_t effect_ns = 0;  // when it acts on the register
    bool takes_effect = true;
};

// Each client runs its operations one after another; every operation takes effect at one
// instant inside its interval (an unknown write: at any later instant, or never).
std::vector<Generated> plan_operations(const GeneratorConfig& config, std::mt19937_64& rng) {
    auto uniform = [&rng](int64_t lo, int64_t hi) {
        return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
    };
    std::vector<Generated> plan;
    for (int c = 0; c < config.clients; ++c) {
        int64_t now = uniform(0, 100);
        for (int i = 0; i < config.ops_per_client; ++i) {
            Generated g;
            g.op.client = static_cast<ClientId>(c);
            g.op.key = "key" + std::to_string(uniform(0, config.keys - 1));
            g.op.kind = uniform(0, 99) < config.read_percent ? OpKind::kRead : OpKind::kWrite;
            if (g.op.kind == OpKind::kWrite) {
                g.op.value = "c" + std::to_string(c) + "-" + std::to_string(i);
            }
            g.op.invoke_ns = now + uniform(0, 50);
            g.effect_ns = g.op.invoke_ns + uniform(0, 200);
            g.op.complete_ns = g.effect_ns + uniform(0, 200);
            g.op.outcome = Outcome::kOk;

            int64_t roll = uniform(0, 99);
            if (roll < config.unknown_percent) {
                g.op.outcome = Outcome::kUnknown;
                g.takes_effect = g.op.kind == OpKind::kRead || uniform(0, 1) == 1;
                // A lost answer says nothing about when the request acts: maybe much later.
                g.effect_ns = g.op.invoke_ns + uniform(0, 3000);
            } else if (g.op.kind == OpKind::kWrite &&
                       roll < config.unknown_percent + config.failed_percent) {
                g.op.outcome = Outcome::kFailed;
                g.takes_effect = false;
            }
            now = g.op.outcome == Outcome::kUnknown ? g.op.invoke_ns + 400 : g.op.complete_ns;
            plan.push_back(std::move(g));
        }
    }
    return plan;
}

// Executes the plan on a sequential register in effect order, filling in what reads saw.
History execute(std::vector<Generated> plan) {
    std::vector<size_t> order(plan.size());
    for (size_t i = 0; i < order.size(); ++i) {
        order[i] = i;
    }
    std::stable_sort(order.begin(), order.end(),
                     [&plan](size_t a, size_t b) { return plan[a].effect_ns < plan[b].effect_ns; });
    std::map<std::string, std::string> registers;
    for (size_t index : order) {
        Generated& g = plan[index];
        if (!g.takes_effect) {
            continue;
        }
        if (g.op.kind == OpKind::kWrite) {
            registers[g.op.key] = *g.op.value;
        } else if (g.op.outcome == Outcome::kOk) {
            auto it = registers.find(g.op.key);
            g.op.value = it == registers.end() ? std::nullopt : std::optional(it->second);
        }
    }

    History history;
    for (Generated& g : plan) {
        Status status = history.add(std::move(g.op));
        EXPECT_TRUE(status.ok()) << status.to_string();
    }
    return history;
}

History generate(const GeneratorConfig& config, uint64_t seed) {
    std::mt19937_64 rng(seed);
    return execute(plan_operations(config, rng));
}

bool is_ok(const Operation& op, OpKind kind) {
    return op.kind == kind && op.outcome == Outcome::kOk;
}

// The latest invocation of an acknowledged write of `key` that completed before `before_ns`:
// a value written by an acknowledged write that completed before it is provably overwritten
// for any read invoked after `before_ns`.
std::optional<int64_t> last_overwrite_ns(const std::vector<Operation>& ops, const std::string& key,
                                         int64_t before_ns) {
    std::optional<int64_t> latest;
    for (const Operation& w : ops) {
        if (is_ok(w, OpKind::kWrite) && w.key == key && w.complete_ns < before_ns) {
            latest = std::max(latest.value_or(w.invoke_ns), w.invoke_ns);
        }
    }
    return latest;
}

// Makes a read return a value no linearization allows; values are unique per key, so:
// - "future": the value of a write invoked after the read completed, which no write placed
//   before the read can have written;
// - "stale": the value of an acknowledged write W1 when another acknowledged write W2 of the
//   key lies entirely between W1 and the read in real time.
// Returns nullopt when the history offers no such read.
std::optional<History> mutate(const History& history, std::mt19937_64& rng, bool stale) {
    const std::vector<Operation>& ops = history.operations();
    std::vector<std::pair<OpId, std::string>> candidates;
    for (const Operation& read : ops) {
        if (!is_ok(read, OpKind::kRead)) {
            continue;
        }
        std::optional<int64_t> overwrite_ns =
            stale ? last_overwrite_ns(ops, read.key, read.invoke_ns) : std::nullopt;
        for (const Operation& w1 : ops) {
            if (w1.kind != OpKind::kWrite || w1.key != read.key || w1.outcome == Outcome::kFailed) {
                continue;
            }
            bool future = !stale && w1.invoke_ns > read.complete_ns;
            bool overwritten = stale && is_ok(w1, OpKind::kWrite) && overwrite_ns &&
                               w1.complete_ns < *overwrite_ns;
            if (future || overwritten) {
                candidates.emplace_back(read.id, *w1.value);
            }
        }
    }
    if (candidates.empty()) {
        return std::nullopt;
    }

    auto [victim, value] = candidates[rng() % candidates.size()];
    History mutated;
    for (Operation op : ops) {
        if (op.id == victim) {
            op.value = value;
        }
        EXPECT_TRUE(mutated.add(std::move(op)).ok());
    }
    return mutated;
}

CheckResult check_ok(const History& history) {
    Result<CheckResult> result = check_linearizable(history);
    EXPECT_TRUE(result.ok()) << result.status().to_string();
    return result.ok() ? std::move(result).value() : CheckResult{};
}

TEST(RandomHistories, TrueRegisterHistoriesAreAccepted) {
    constexpr uint64_t kSeeds = 300;
    GeneratorConfig config;
    for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
        CheckResult result = check_ok(generate(config, seed));
        ASSERT_EQ(result.verdict, Verdict::kLinearizable)
            << "seed " << seed << ": " << result.summary();
    }
}

TEST(RandomHistories, HighlyConcurrentSingleKeyHistoriesAreAccepted) {
    constexpr uint64_t kSeeds = 100;
    GeneratorConfig config;
    config.keys = 1;
    config.ops_per_client = 60;
    config.unknown_percent = 15;
    for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
        CheckResult result = check_ok(generate(config, seed));
        ASSERT_EQ(result.verdict, Verdict::kLinearizable)
            << "seed " << seed << ": " << result.summary();
    }
}

void expect_mutations_rejected(bool stale) {
    constexpr uint64_t kSeeds = 300;
    GeneratorConfig config;
    int mutated_count = 0;
    for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
        std::mt19937_64 rng(seed * 7919);
        std::optional<History> mutated = mutate(generate(config, seed), rng, stale);
        if (!mutated) {
            continue;
        }
        ++mutated_count;
        CheckResult result = check_ok(*mutated);
        ASSERT_EQ(result.verdict, Verdict::kViolation)
            << "seed " << seed << ": " << result.summary();
        ASSERT_EQ(result.violations.size(), 1u);
    }
    // Nearly every seed offers a candidate; the test means nothing if few did.
    EXPECT_GT(mutated_count, static_cast<int>(kSeeds * 9 / 10));
}

TEST(RandomHistories, ReadOfValueWrittenInTheFutureIsRejected) {
    expect_mutations_rejected(false);
}

TEST(RandomHistories, ProvablyStaleReadIsRejected) {
    expect_mutations_rejected(true);
}

TEST(RandomHistories, LargeHistoryChecksQuickly) {
    GeneratorConfig config;
    config.clients = 8;
    config.ops_per_client = 2000;
    config.keys = 50;
    config.unknown_percent = 3;
    History history = generate(config, 42);

    auto start = std::chrono::steady_clock::now();
    CheckResult result = check_ok(history);
    auto elapsed = std::chrono::steady_clock::now() - start;
    double ms = std::chrono::duration<double, std::milli>(elapsed).count();
    std::printf("lincheck: %zu operations over %zu keys checked in %.1f ms (%llu steps)\n",
                history.size(), result.keys_checked, ms,
                static_cast<unsigned long long>(result.search_steps));
    EXPECT_EQ(result.verdict, Verdict::kLinearizable) << result.summary();
    EXPECT_EQ(result.keys_checked, 50u);
}

}  // namespace
}  // namespace coffer::lincheck
