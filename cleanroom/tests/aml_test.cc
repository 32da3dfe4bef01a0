#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "cleanroom/aml.h"
#include "cleanroom/analysis.h"
#include "cleanroom/csv.h"
#include "cleanroom/tests/references.h"
#include "cleanroom/tests/test_util.h"

namespace coffer::cleanroom {
namespace {

using Tx = reference::Transfer;

AmlGraph graph_of(const std::vector<Tx>& txs, int64_t accounts) {
    AmlGraph g;
    for (int64_t a = 0; a < accounts; ++a) {
        g.accounts.emplace_back(a);
    }
    for (const Tx& t : txs) {
        g.edges.push_back(
            AmlEdge{static_cast<uint32_t>(t.src), static_cast<uint32_t>(t.dst), t.amount, t.time});
    }
    return g;
}

std::map<int64_t, uint32_t> flagged(const std::vector<Tx>& txs, int64_t accounts,
                                    const AmlParams& p) {
    const Result<std::vector<uint32_t>> flags = run_aml(graph_of(txs, accounts), p);
    EXPECT_TRUE(flags.ok()) << flags.status().to_string();
    std::map<int64_t, uint32_t> out;
    for (size_t i = 0; flags.ok() && i < flags->size(); ++i) {
        if ((*flags)[i] != 0) {
            out[static_cast<int64_t>(i)] = (*flags)[i];
        }
    }
    return out;
}

AmlParams only(uint32_t kinds) {
    AmlParams p;
    p.cycles = (kinds & kFlagCycle) != 0;
    p.fan_in = (kinds & kFlagFanIn) != 0;
    p.fan_out = (kinds & kFlagFanOut) != 0;
    p.pass_through = (kinds & kFlagPassThrough) != 0;
    return p;
}

TEST(Aml, FindsPlantedTimeRespectingCycles) {
    AmlParams p = only(kFlagCycle);
    p.cycle_window = 10;
    const std::vector<Tx> txs = {
        {0, 1, 100, 1}, {1, 2, 90, 2},   {2, 0, 80, 3},     // 3-cycle in order: flagged
        {3, 4, 100, 5}, {4, 3, 100, 5},                     // 2-cycle at equal times: flagged
        {5, 6, 100, 5}, {6, 7, 100, 4},  {7, 5, 100, 6},    // goes back in time: not a cycle
        {8, 9, 100, 1}, {9, 10, 100, 5}, {10, 8, 100, 20},  // longer than the window
        {11, 12, 1, 1}, {12, 13, 1, 1},  {13, 14, 1, 1},   {14, 15, 1, 1},
        {15, 16, 1, 1}, {16, 17, 1, 1},  {17, 11, 1, 1},  // length 7: too long
        {18, 18, 5, 1},                                   // self-transfer: not a cycle
    };
    const std::map<int64_t, uint32_t> got = flagged(txs, 19, p);
    const std::map<int64_t, uint32_t> want = {
        {0, kFlagCycle}, {1, kFlagCycle}, {2, kFlagCycle}, {3, kFlagCycle}, {4, kFlagCycle}};
    EXPECT_EQ(got, want);
    p.cycle_max_length = 2;
    EXPECT_EQ(flagged(txs, 19, p), (std::map<int64_t, uint32_t>{{3, kFlagCycle}, {4, kFlagCycle}}));
}

TEST(Aml, FindsSixCycleButNotThroughARepeatedAccount) {
    AmlParams p = only(kFlagCycle);
    std::vector<Tx> txs;
    for (int64_t i = 0; i < 6; ++i) {
        txs.push_back({i, (i + 1) % 6, 10, i});
    }
    // A figure eight through account 6 whose only way home repeats account 6.
    txs.push_back({6, 7, 1, 0});
    txs.push_back({7, 6, 1, 1});
    txs.push_back({6, 8, 1, 2});
    EXPECT_EQ(flagged(txs, 9, p).size(), 8u);  // 0..5 and the 2-cycle 6-7
    EXPECT_EQ(flagged(txs, 9, p).count(8), 0u);
}

TEST(Aml, FanInAndFanOutNeedDistinctCounterpartiesInOneWindow) {
    AmlParams p = only(kFlagFanIn | kFlagFanOut);
    p.fan_degree = 4;
    p.fan_window = 5;
    std::vector<Tx> txs;
    for (int64_t s = 1; s <= 4; ++s) {
        txs.push_back({s, 0, 10, s});  // 4 senders to 0 within steps 1..4: fan-in
    }
    for (int64_t s = 11; s <= 14; ++s) {
        txs.push_back({s, 10, 10, s * 3});  // 4 senders to 10 spread over 33..42: no
    }
    for (int i = 0; i < 5; ++i) {
        txs.push_back({21, 20, 10, i});  // one sender five times: no
    }
    for (int64_t d = 31; d <= 34; ++d) {
        txs.push_back({30, d, 10, 7});  // fan-out from 30
    }
    const std::map<int64_t, uint32_t> got = flagged(txs, 35, p);
    EXPECT_EQ(got, (std::map<int64_t, uint32_t>{{0, kFlagFanIn}, {30, kFlagFanOut}}));
}

TEST(Aml, PassThroughNeedsMoneyOutCloseToMoneyIn) {
    AmlParams p = only(kFlagPassThrough);
    p.pass_through_window = 2;
    p.pass_through_ratio_min = 0.9;
    p.pass_through_ratio_max = 1.0;
    p.pass_through_min_amount = 1000;
    const std::vector<Tx> txs = {
        {0, 1, 5000, 10}, {1, 2, 4800, 11},   // mule 1: 96% out within a step
        {3, 4, 5000, 10}, {4, 5, 4800, 20},   // out too late
        {6, 7, 5000, 10}, {7, 8, 1000, 11},   // keeps most of it
        {9, 10, 500, 10}, {10, 11, 490, 10},  // too small
    };
    EXPECT_EQ(flagged(txs, 12, p), (std::map<int64_t, uint32_t>{{1, kFlagPassThrough}}));
}

TEST(Aml, CycleSearchIsBounded) {
    // A dense clique with a huge window: the search must stop with a clear error, not hang.
    AmlParams p = only(kFlagCycle);
    p.cycle_window = 1'000'000;
    std::vector<Tx> txs;
    for (int64_t a = 0; a < 120; ++a) {
        for (int64_t b = 0; b < 120; ++b) {
            if (a != b) {
                txs.push_back({a, b, 1, 0});
            }
        }
    }
    const Result<std::vector<uint32_t>> r = run_aml(graph_of(txs, 120), p);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Errc::kResourceExhausted);
}

DatasetSchema leg_schema(const std::string& name) {
    DatasetSchema s = testing::make_schema(name, {"tx_id:int", "account:int", "counterparty:int",
                                                  "direction:string", "amount:decimal", "ts:int"});
    s.entity_columns = {"account"};
    s.output_columns = {"account"};
    return s;
}

Row leg(int64_t tx, int64_t account, int64_t other, const char* dir, double amount, int64_t t) {
    return Row{Value{tx},     Value{account}, Value{other}, Value{std::string(dir)},
               Value{amount}, Value{t}};
}

TEST(Aml, LegsOfBothBanksJoinIntoOneTransferEach) {
    Table a{leg_schema("bank_a"), "a", {leg(1, 0, 1, "out", 10, 1), leg(2, 0, 1, "in", 10, 2)}};
    Table b{leg_schema("bank_b"), "b", {leg(1, 1, 0, "in", 10, 1), leg(2, 1, 0, "out", 10, 2)}};
    const Result<AmlGraph> g = graph_from_legs({&a, &b}, AmlParams());
    ASSERT_TRUE(g.ok()) << g.status().to_string();
    EXPECT_EQ(g->edges.size(), 2u);
    EXPECT_EQ(g->accounts.size(), 2u);

    b.rows[0] = leg(1, 1, 0, "in", 11, 1);
    const Result<AmlGraph> bad = graph_from_legs({&a, &b}, AmlParams());
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("transfer 1"), std::string::npos);
    b.rows[0] = leg(1, 1, 0, "sideways", 10, 1);
    EXPECT_FALSE(graph_from_legs({&a, &b}, AmlParams()).ok());
}

// ---- AMLSim: the joint analysis against an independent reference and against each bank ----

constexpr int kBanks = 3;
// Parameters of the AMLSim figures (docs/cleanroom-engine.md explains the choice).
constexpr int64_t kCycleWindow = 10;
constexpr int64_t kFanDegree = 8;
constexpr int64_t kFanWindow = 30;

struct AmlSim {
    std::vector<Tx> txs;
    std::vector<bool> fraud;  // by account id
};

// Reads the sample through the upload parser (the headers renamed to valid column names).
AmlSim load_amlsim() {
    AmlSim sim;
    std::string tx_csv = testing::read_file(testing::data_path("amlsim/transactions.csv"));
    tx_csv.replace(0, tx_csv.find('\n'), "src,dst,amount,ts");
    const Result<Table> txs = parse_csv(
        testing::make_schema("tx", {"src:int", "dst:int", "amount:decimal", "ts:int"}), tx_csv);
    EXPECT_TRUE(txs.ok()) << txs.status().to_string();
    std::string node_csv = testing::read_file(testing::data_path("amlsim/nodes.csv"));
    node_csv.replace(0, node_csv.find('\n'), "node,is_fraud,init_balance,fraud_step");
    const Result<Table> nodes = parse_csv(
        testing::make_schema(
            "nodes", {"node:int", "is_fraud:int", "init_balance:decimal", "fraud_step:int"}),
        node_csv);
    EXPECT_TRUE(nodes.ok()) << nodes.status().to_string();
    if (!txs.ok() || !nodes.ok()) {
        return sim;
    }
    for (const Row& r : txs->rows) {
        sim.txs.push_back({std::get<int64_t>(r[0]), std::get<int64_t>(r[1]), std::get<double>(r[2]),
                           std::get<int64_t>(r[3])});
    }
    sim.fraud.resize(nodes->rows.size());
    for (const Row& r : nodes->rows) {
        sim.fraud.at(static_cast<size_t>(std::get<int64_t>(r[0]))) = std::get<int64_t>(r[1]) == 1;
    }
    return sim;
}

// The documented bank split: account id mod 3.
int bank_of(int64_t account) {
    return static_cast<int>(account % kBanks);
}

// Each bank's legs: every transfer touching one of its accounts, tx_id = row number.
std::map<std::string, Table> bank_tables(const std::vector<Tx>& txs) {
    std::map<std::string, Table> out;
    for (int b = 0; b < kBanks; ++b) {
        const std::string name = "bank_" + std::to_string(b);
        out[name] = Table{leg_schema(name), name, {}};
    }
    for (size_t i = 0; i < txs.size(); ++i) {
        const Tx& t = txs[i];
        const auto id = static_cast<int64_t>(i);
        out["bank_" + std::to_string(bank_of(t.src))].rows.push_back(
            leg(id, t.src, t.dst, "out", t.amount, t.time));
        out["bank_" + std::to_string(bank_of(t.dst))].rows.push_back(
            leg(id, t.dst, t.src, "in", t.amount, t.time));
    }
    return out;
}

std::string aml_document(const std::vector<std::string>& banks) {
    nlohmann::json datasets = nlohmann::json::array();
    for (const std::string& b : banks) {
        datasets.push_back(
            {{"name", b},
             {"columns", {"tx_id", "account", "counterparty", "direction", "amount", "ts"}}});
    }
    const nlohmann::json doc = {
        {"version", 1},
        {"kind", "aml"},
        {"params",
         {{"cycle_window", kCycleWindow}, {"fan_degree", kFanDegree}, {"fan_window", kFanWindow}}},
        {"datasets", datasets},
        {"output_policy", {{"columns", {"account", "flags"}}, {"routing_column", "account"}}},
        {"recipients", banks},
        {"triggers", {banks[0]}}};
    return doc.dump();
}

// Flags per account as each recipient received them.
std::map<int64_t, std::set<std::string>> received_flags(const RecipientOutput& out) {
    std::map<int64_t, std::set<std::string>> flags;
    for (const Row& row : out.rows) {
        std::string list = std::get<std::string>(row[1]);
        for (size_t start = 0; start <= list.size();) {
            const size_t comma = std::min(list.find(',', start), list.size());
            flags[std::get<int64_t>(row[0])].insert(list.substr(start, comma - start));
            start = comma + 1;
        }
    }
    return flags;
}

struct Figures {
    size_t flagged = 0, true_positives = 0, fraud = 0;
    double recall() const { return fraud == 0 ? 0 : double(true_positives) / double(fraud); }
    double precision() const { return flagged == 0 ? 0 : double(true_positives) / double(flagged); }
};

Figures score(const std::map<int64_t, std::set<std::string>>& flags, const AmlSim& sim, int bank) {
    Figures f;
    for (size_t a = 0; a < sim.fraud.size(); ++a) {
        if (bank >= 0 && bank_of(static_cast<int64_t>(a)) != bank) {
            continue;
        }
        const bool flagged = flags.count(static_cast<int64_t>(a)) != 0;
        f.fraud += sim.fraud[a] ? 1 : 0;
        f.flagged += flagged ? 1 : 0;
        f.true_positives += flagged && sim.fraud[a] ? 1 : 0;
    }
    return f;
}

TEST(AmlSim, JointFlagsEqualReferenceAndBeatEachBankAlone) {
    COFFER_REQUIRE_DATA("amlsim/transactions.csv");
    COFFER_REQUIRE_DATA("amlsim/nodes.csv");
    const AmlSim sim = load_amlsim();
    ASSERT_EQ(sim.txs.size(), 120'558u);
    const std::map<std::string, Table> tables = bank_tables(sim.txs);
    const std::vector<std::string> banks = {"bank_0", "bank_1", "bank_2"};

    const Result<AnalysisDocument> doc = parse_analysis(aml_document(banks));
    ASSERT_TRUE(doc.ok()) << doc.status().to_string();
    const auto start = std::chrono::steady_clock::now();
    const Result<AnalysisResult> joint = run_analysis(*doc, tables, RunOptions{{}, "bank_0"});
    const double joint_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(joint.ok()) << joint.status().to_string();

    // The independent reference (cleanroom/tests/references.h) on the whole plaintext.
    const std::map<int64_t, std::set<std::string>> expected =
        reference::aml_flags(sim.txs, reference::AmlRules{kCycleWindow, 6, kFanDegree, kFanWindow});
    std::map<int64_t, std::set<std::string>> joint_flags;
    Figures alone_total;
    for (int b = 0; b < kBanks; ++b) {
        // What the bank received equals the reference restricted to its own accounts.
        const auto got = received_flags(joint->outputs.at(banks[b]));
        std::map<int64_t, std::set<std::string>> want;
        for (const auto& [account, kinds] : expected) {
            if (bank_of(account) == b) {
                want[account] = kinds;
            }
        }
        EXPECT_EQ(got, want) << banks[b];
        joint_flags.insert(got.begin(), got.end());

        // The same analysis on the bank's own legs only, flags about its own accounts.
        const Result<AnalysisDocument> own = parse_analysis(aml_document({banks[b]}));
        ASSERT_TRUE(own.ok());
        const Result<AnalysisResult> alone =
            run_analysis(*own, {{banks[b], tables.at(banks[b])}}, RunOptions{{}, banks[b]});
        ASSERT_TRUE(alone.ok()) << alone.status().to_string();
        const Figures fa = score(received_flags(alone->outputs.at(banks[b])), sim, b);
        const Figures fj = score(got, sim, b);
        std::printf(
            "AMLSim %s: alone recall %.3f precision %.3f (%zu flagged) | joint recall "
            "%.3f precision %.3f (%zu flagged)\n",
            banks[b].c_str(), fa.recall(), fa.precision(), fa.flagged, fj.recall(), fj.precision(),
            fj.flagged);
        EXPECT_GT(fj.true_positives, fa.true_positives) << banks[b];
        alone_total.flagged += fa.flagged;
        alone_total.true_positives += fa.true_positives;
        alone_total.fraud += fa.fraud;
    }
    const Figures fj = score(joint_flags, sim, -1);
    std::printf(
        "AMLSim all banks: alone recall %.3f precision %.3f | joint recall %.3f "
        "precision %.3f | joint run %.2f s\n",
        alone_total.recall(), alone_total.precision(), fj.recall(), fj.precision(), joint_s);
    EXPECT_GT(fj.true_positives, alone_total.true_positives);
    EXPECT_GE(fj.precision(), alone_total.precision());
}

}  // namespace
}  // namespace coffer::cleanroom
