#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cleanroom/analysis.h"
#include "cleanroom/csv.h"
#include "cleanroom/samples.h"
#include "cleanroom/schema.h"
#include "common/testing/reference_data.h"

namespace coffer::cleanroom {
namespace {

using ::coffer::reference_data::allow_missing_data;
using ::coffer::reference_data::read_file;

// Every party's upload parsed against its own declaration, owned by the party.
std::map<std::string, Table> parse_parties(const Scenario& s) {
    std::map<std::string, Table> tables;
    for (const ScenarioParty& p : s.parties) {
        const Result<DatasetSchema> schema = parse_schema(p.declaration);
        EXPECT_TRUE(schema.ok()) << p.party << ": " << schema.status().to_string();
        if (!schema.ok()) {
            continue;
        }
        EXPECT_EQ(schema->name, p.dataset);
        Result<Table> table = parse_csv(*schema, p.csv);
        EXPECT_TRUE(table.ok()) << p.party << ": " << table.status().to_string();
        if (table.ok()) {
            EXPECT_EQ(table->rows.size(), p.rows) << p.party;
            table->owner = p.party;
            tables[p.dataset] = std::move(table).value();
        }
    }
    return tables;
}

const ScenarioAnalysis* find_analysis(const Scenario& s, const std::string& name) {
    for (const ScenarioAnalysis& a : s.analyses) {
        if (a.name == name) {
            return &a;
        }
    }
    ADD_FAILURE() << "no analysis " << name;
    return nullptr;
}

// Parses, checks against the declarations and runs one of the scenario's analyses as its
// first trigger.
Result<AnalysisResult> run_named(const Scenario& s, const std::string& name,
                                 const std::map<std::string, Table>& tables) {
    const ScenarioAnalysis* a = find_analysis(s, name);
    if (a == nullptr) {
        return error(Errc::kNotFound, name);
    }
    COFFER_ASSIGN_OR_RETURN(const AnalysisDocument doc, parse_analysis(a->document));
    std::map<std::string, DatasetSchema> declared;
    for (const auto& [dataset, table] : tables) {
        declared[dataset] = table.schema;
    }
    COFFER_RETURN_IF_ERROR(check_analysis(doc, declared));
    std::map<std::string, Table> in_scope;
    for (const DatasetRef& ref : doc.datasets) {
        in_scope[ref.name] = tables.at(ref.name);
    }
    return run_analysis(doc, in_scope, RunOptions{{}, a->triggers.at(0)});
}

// account -> flag names, as a recipient received them.
std::map<int64_t, std::set<std::string>> received_flags(const RecipientOutput& out) {
    std::map<int64_t, std::set<std::string>> flags;
    for (const Row& row : out.rows) {
        const std::string list = std::get<std::string>(row[1]);
        for (size_t start = 0; start <= list.size();) {
            const size_t comma = std::min(list.find(',', start), list.size());
            flags[std::get<int64_t>(row[0])].insert(list.substr(start, comma - start));
            start = comma + 1;
        }
    }
    return flags;
}

// Laundering accounts per bank from a ground-truth CSV.
std::map<std::string, std::set<int64_t>> truth_by_bank(const std::string& csv) {
    std::map<std::string, std::set<int64_t>> out;
    size_t start = csv.find('\n') + 1;
    while (start < csv.size()) {
        const size_t end = csv.find('\n', start);
        const std::string line = csv.substr(start, end - start);
        const size_t comma = line.find(',');
        const std::string bank = line.substr(comma + 1, line.find(',', comma + 1) - comma - 1);
        out[bank].insert(std::stoll(line.substr(0, comma)));
        start = end + 1;
    }
    return out;
}

struct Score {
    size_t flagged = 0;
    double recall = 0;
    double precision = 0;
};

Score score(const std::map<int64_t, std::set<std::string>>& flags, const std::set<int64_t>& truth) {
    size_t hits = 0;
    for (const auto& [account, kinds] : flags) {
        hits += truth.count(account);
    }
    return Score{flags.size(), double(hits) / double(truth.size()),
                 double(hits) / double(flags.size())};
}

std::string temp_dir(const std::string& name) {
    const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                      ("coffer-samples-" + name + "-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir);
    return dir.string();
}

// ---- AML ----

TEST(AmlSamples, LegCsvsPutEachTransferAtBothBanks) {
    const std::vector<Transfer> transfers = {{0, 1, 12.5, 3}, {3, 6, 7, 4}, {2, 4, 0.1, 5}};
    const std::string header = "tx_id,account,counterparty,direction,amount,ts\n";
    const std::map<std::string, std::string> want = {
        {"bank_0", header + "0,0,1,out,12.5,3\n1,3,6,out,7,4\n1,6,3,in,7,4\n"},
        {"bank_1", header + "0,1,0,in,12.5,3\n2,4,2,in,0.1,5\n"},
        {"bank_2", header + "2,2,4,out,0.1,5\n"}};
    EXPECT_EQ(aml_leg_csvs(transfers), want);
}

TEST(AmlSamples, BankSplitGivesEveryTransferOneOutAndOneInLeg) {
    COFFER_REQUIRE_DATA("amlsim/transactions.csv");
    const Result<Scenario> s = make_aml_scenario(COFFER_DATA_DIR);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    EXPECT_EQ(s->source, "amlsim");
    const std::map<std::string, Table> tables = parse_parties(*s);
    ASSERT_EQ(tables.size(), 3u);

    // An independent reading of transactions.csv: src, dst, time per row.
    const std::string raw = read_file(reference_data::data_path("amlsim/transactions.csv"));
    std::vector<std::array<int64_t, 3>> want;
    for (size_t start = raw.find('\n') + 1; start < raw.size();) {
        const size_t end = std::min(raw.find('\n', start), raw.size());
        long long src = 0, dst = 0, time = 0;
        double amount = 0;
        ASSERT_EQ(std::sscanf(raw.substr(start, end - start).c_str(), "%lld,%lld,%lf,%lld", &src,
                              &dst, &amount, &time),
                  4);
        want.push_back({src, dst, time});
        start = end + 1;
    }
    ASSERT_EQ(want.size(), 120'558u);

    std::vector<int> out_legs(want.size()), in_legs(want.size());
    for (const auto& [bank, table] : tables) {
        for (const Row& r : table.rows) {
            const auto tx = static_cast<size_t>(std::get<int64_t>(r[0]));
            const int64_t account = std::get<int64_t>(r[1]);
            const int64_t other = std::get<int64_t>(r[2]);
            const bool out = std::get<std::string>(r[3]) == "out";
            ASSERT_LT(tx, want.size());
            EXPECT_EQ("bank_" + std::to_string(account % 3), bank);
            EXPECT_EQ(account, out ? want[tx][0] : want[tx][1]) << tx;
            EXPECT_EQ(other, out ? want[tx][1] : want[tx][0]) << tx;
            EXPECT_EQ(std::get<int64_t>(r[5]), want[tx][2]) << tx;
            ++(out ? out_legs : in_legs)[tx];
        }
    }
    EXPECT_EQ(out_legs, std::vector<int>(want.size(), 1));
    EXPECT_EQ(in_legs, std::vector<int>(want.size(), 1));
}

TEST(AmlSamples, AmlSimFilesReproduceTheDocumentedFigures) {
    COFFER_REQUIRE_DATA("amlsim/transactions.csv");
    COFFER_REQUIRE_DATA("amlsim/nodes.csv");
    const Result<Scenario> s = make_aml_scenario(COFFER_DATA_DIR);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    const std::map<std::string, Table> tables = parse_parties(*s);
    const std::map<std::string, std::set<int64_t>> truth = truth_by_bank(s->ground_truth_csv);
    size_t laundering = 0;
    for (const auto& [bank, accounts] : truth) {
        laundering += accounts.size();
    }
    // Counted independently: nodes.csv rows with isFraud 1 (1,804, although AMLSim's
    // metadata.txt says 1,803).
    const std::string nodes = read_file(reference_data::data_path("amlsim/nodes.csv"));
    size_t fraud_rows = 0;
    for (size_t at = nodes.find('\n'); at != std::string::npos; at = nodes.find('\n', at + 1)) {
        const size_t comma = nodes.find(',', at);
        fraud_rows += comma != std::string::npos && nodes.compare(comma, 3, ",1,") == 0 ? 1 : 0;
    }
    EXPECT_EQ(fraud_rows, 1804u);
    EXPECT_EQ(laundering, fraud_rows);

    // docs/cleanroom-engine.md, "AMLSim figures": flagged, recall, precision per bank.
    struct Want {
        Score alone, joint;
    };
    const std::map<std::string, Want> want = {
        {"bank_0", {{584, 0.304, 0.329}, {587, 0.307, 0.330}}},
        {"bank_1", {{562, 0.282, 0.304}, {565, 0.283, 0.304}}},
        {"bank_2", {{537, 0.271, 0.285}, {540, 0.274, 0.287}}}};
    const Result<AnalysisResult> joint = run_named(*s, "joint", tables);
    ASSERT_TRUE(joint.ok()) << joint.status().to_string();
    for (const auto& [bank, w] : want) {
        const Result<AnalysisResult> alone = run_named(*s, "own_" + bank, tables);
        ASSERT_TRUE(alone.ok()) << alone.status().to_string();
        EXPECT_EQ(alone->outputs.size(), 1u);
        const Score a = score(received_flags(alone->outputs.at(bank)), truth.at(bank));
        const Score j = score(received_flags(joint->outputs.at(bank)), truth.at(bank));
        EXPECT_EQ(a.flagged, w.alone.flagged) << bank;
        EXPECT_EQ(j.flagged, w.joint.flagged) << bank;
        EXPECT_NEAR(a.recall, w.alone.recall, 5e-4) << bank;
        EXPECT_NEAR(a.precision, w.alone.precision, 5e-4) << bank;
        EXPECT_NEAR(j.recall, w.joint.recall, 5e-4) << bank;
        EXPECT_NEAR(j.precision, w.joint.precision, 5e-4) << bank;
    }
}

TEST(AmlSamples, GeneratorIsDeterministicPerSeed) {
    AmlGeneratorOptions o;
    o.seed = 7;
    const Result<AmlData> a = generate_aml(o);
    const Result<AmlData> b = generate_aml(o);
    o.seed = 8;
    const Result<AmlData> c = generate_aml(o);
    ASSERT_TRUE(a.ok() && b.ok() && c.ok());
    EXPECT_EQ(a->transfers.size(),
              15'000u + a->laundering.size() - 40);  // a fan's hub has no edge of its own
    EXPECT_EQ(aml_leg_csvs(a->transfers), aml_leg_csvs(b->transfers));
    EXPECT_EQ(aml_ground_truth_csv(*a), aml_ground_truth_csv(*b));
    EXPECT_NE(aml_leg_csvs(a->transfers), aml_leg_csvs(c->transfers));
    EXPECT_NE(aml_ground_truth_csv(*a), aml_ground_truth_csv(*c));
    for (size_t i = 1; i < a->transfers.size(); ++i) {
        ASSERT_LE(a->transfers[i - 1].time, a->transfers[i].time) << i;
    }
}

TEST(AmlSamples, PlantedPatternsAreFoundJointlyAndCyclesByNoBankAlone) {
    AmlScenarioOptions options;
    options.force_generator = true;
    const Result<AmlData> data = generate_aml(options.generator);
    const Result<Scenario> s = make_aml_scenario(COFFER_DATA_DIR, options);
    ASSERT_TRUE(data.ok() && s.ok());
    EXPECT_EQ(s->source, "generated");
    EXPECT_EQ(s->ground_truth_csv, aml_ground_truth_csv(*data));
    const std::map<std::string, Table> tables = parse_parties(*s);

    const Result<AnalysisResult> joint = run_named(*s, "joint", tables);
    ASSERT_TRUE(joint.ok()) << joint.status().to_string();
    std::map<int64_t, std::set<std::string>> joint_flags, alone_flags;
    for (const std::string bank : {"bank_0", "bank_1", "bank_2"}) {
        const auto got = received_flags(joint->outputs.at(bank));
        joint_flags.insert(got.begin(), got.end());
        const Result<AnalysisResult> alone = run_named(*s, "own_" + bank, tables);
        ASSERT_TRUE(alone.ok()) << alone.status().to_string();
        const auto own = received_flags(alone->outputs.at(bank));
        alone_flags.insert(own.begin(), own.end());
    }

    const size_t joint_flagged = joint_flags.size();
    const size_t alone_flagged = alone_flags.size();
    const std::map<std::string, std::string> expected_flag = {
        {"cycle", "cycle"}, {"fan_in_hub", "fan_in"}, {"fan_out_hub", "fan_out"}};
    size_t cycle_accounts = 0, cycle_alone = 0;
    for (const auto& [account, truth] : data->laundering) {
        const auto flag = expected_flag.find(truth.pattern);
        if (flag == expected_flag.end()) {
            continue;
        }
        EXPECT_EQ(joint_flags[account].count(flag->second), 1u)
            << truth.pattern << " account " << account << " of pattern " << truth.pattern_id;
        if (truth.pattern == "cycle") {
            ++cycle_accounts;
            cycle_alone += alone_flags[account].count("cycle");
        }
        if (truth.pattern != "cycle") {
            // A fan is visible to the hub's own bank.
            EXPECT_EQ(alone_flags[account].count(flag->second), 1u) << account;
        }
    }
    std::printf(
        "generated (seed %llu): %zu planted cycle accounts, %zu flagged as cycle by "
        "their banks alone; flagged accounts jointly %zu, alone %zu\n",
        static_cast<unsigned long long>(options.generator.seed), cycle_accounts, cycle_alone,
        joint_flagged, alone_flagged);
    EXPECT_GE(cycle_accounts, 30u * 3);
    // No bank sees a whole planted cycle; only a background coincidence could flag one.
    EXPECT_LT(cycle_alone * 10, cycle_accounts) << cycle_alone << " of " << cycle_accounts;
}

TEST(AmlSamples, GeneratorRefusesOptionsThatCannotHoldThePatterns) {
    AmlGeneratorOptions o;
    o.accounts = 300;
    EXPECT_EQ(generate_aml(o).status().code(), Errc::kInvalidArgument);
    o = AmlGeneratorOptions();
    o.fan_size = kAmlFanDegree - 1;
    EXPECT_EQ(generate_aml(o).status().code(), Errc::kInvalidArgument);
    o = AmlGeneratorOptions();
    o.steps = 20;
    EXPECT_EQ(generate_aml(o).status().code(), Errc::kInvalidArgument);
    o = AmlGeneratorOptions();
    o.background_transfers = kMaxGeneratedTransfers;
    EXPECT_EQ(generate_aml(o).status().code(), Errc::kResourceExhausted);
}

TEST(AmlSamples, WrittenScenarioFilesMatchTheirIndex) {
    const std::string dir = temp_dir("aml");
    AmlScenarioOptions options;
    options.force_generator = true;
    ASSERT_TRUE(write_aml_scenario(dir + "/no-data", dir, options).ok());
    const nlohmann::json index = nlohmann::json::parse(read_file(dir + "/scenario.json"));
    EXPECT_EQ(index["kind"], "aml");
    EXPECT_EQ(index["source"], "generated");
    ASSERT_EQ(index["parties"].size(), 3u);

    std::map<std::string, DatasetSchema> declared;
    size_t legs = 0;
    for (const nlohmann::json& p : index["parties"]) {
        const Result<DatasetSchema> schema =
            parse_schema(read_file(dir + "/" + p["schema"].get<std::string>()));
        ASSERT_TRUE(schema.ok()) << schema.status().to_string();
        const Result<Table> t =
            parse_csv(*schema, read_file(dir + "/" + p["csv"].get<std::string>()));
        ASSERT_TRUE(t.ok()) << t.status().to_string();
        EXPECT_EQ(t->rows.size(), p["rows"].get<size_t>());
        legs += t->rows.size();
        declared[schema->name] = *schema;
    }
    const Result<AmlData> data = generate_aml(options.generator);
    ASSERT_TRUE(data.ok());
    EXPECT_EQ(legs, 2 * data->transfers.size());

    ASSERT_EQ(index["analyses"].size(), 4u);
    for (const nlohmann::json& a : index["analyses"]) {
        const Result<AnalysisDocument> doc =
            parse_analysis(read_file(dir + "/" + a["file"].get<std::string>()));
        ASSERT_TRUE(doc.ok()) << doc.status().to_string();
        EXPECT_EQ(doc->id, a["id"]);
        EXPECT_TRUE(check_analysis(*doc, declared).ok()) << a["name"];
    }
    EXPECT_EQ(read_file(dir + "/" + index["ground_truth"].get<std::string>()),
              aml_ground_truth_csv(*data));
    std::filesystem::remove_all(dir);
}

TEST(AmlSamples, UnreadableAmlSimIsAnError) {
    const Result<AmlData> r = load_amlsim("/nonexistent-coffer-folder");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Errc::kIo);
}

// ---- Hospitals ----

TEST(HospitalSamples, HeartDiseaseFilesReproduceTheDocumentedAucs) {
    COFFER_REQUIRE_DATA("heart-disease/processed.va.data");
    const Result<Scenario> s = make_hospitals_scenario(COFFER_DATA_DIR);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    EXPECT_EQ(s->source, "heart-disease");
    const std::map<std::string, Table> tables = parse_parties(*s);
    ASSERT_EQ(tables.size(), 4u);
    EXPECT_EQ(tables.at("cleveland").rows.size(), 303u);
    EXPECT_EQ(tables.at("switzerland").rows.size(), 123u);

    // docs/cleanroom-engine.md, "Heart-disease preprocessing": held-out rows (positive),
    // joint AUC, own AUC.
    struct Want {
        int64_t test_rows, positives;
        double joint, own;
    };
    const std::map<std::string, Want> want = {{"cleveland", {103, 47, 0.874, 0.880}},
                                              {"hungarian", {100, 36, 0.942, 0.929}},
                                              {"switzerland", {42, 39, 0.496, 0.427}},
                                              {"va", {68, 51, 0.755, 0.666}}};
    const Result<AnalysisResult> r = run_named(*s, "joint", tables);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    for (const auto& [h, w] : want) {
        const RecipientOutput& out = r->outputs.at("hospital_" + h);
        ASSERT_EQ(out.rows.size(), 1u);
        EXPECT_EQ(std::get<std::string>(out.rows[0][0]), h);
        EXPECT_EQ(std::get<int64_t>(out.rows[0][1]), w.test_rows) << h;
        EXPECT_EQ(std::get<int64_t>(out.rows[0][2]), w.positives) << h;
        EXPECT_NEAR(std::get<double>(out.rows[0][3]), w.joint, 5e-4) << h;
        EXPECT_NEAR(std::get<double>(out.rows[0][4]), w.own, 5e-4) << h;
    }
}

TEST(HospitalSamples, BreastCancerFallbackSplitsAcrossThreeHospitals) {
    const std::string csv = std::string(COFFER_SOURCE_DIR) + "/" + kBreastCancerCachePath;
    if (!std::filesystem::exists(csv)) {
        const std::string msg = "fallback data missing: " + csv + " (run scripts/setup.sh)";
        if (allow_missing_data()) {
            GTEST_SKIP() << msg << " (COFFER_ALLOW_MISSING_DATA=1)";
        }
        FAIL() << msg << " (set COFFER_ALLOW_MISSING_DATA=1 to skip)";
    }
    HospitalsScenarioOptions options;
    options.breast_cancer_csv = csv;
    options.force_fallback = true;
    const Result<Scenario> s = make_hospitals_scenario(COFFER_DATA_DIR, options);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    EXPECT_EQ(s->source, "breast-cancer");
    const std::map<std::string, Table> tables = parse_parties(*s);
    ASSERT_EQ(tables.size(), 3u);
    EXPECT_EQ(tables.at("north").rows.size(), 285u);    // round(0.5 * 569)
    EXPECT_EQ(tables.at("central").rows.size(), 171u);  // round(0.3 * 569)
    EXPECT_EQ(tables.at("south").rows.size(), 113u);
    size_t malignant = 0;
    for (const auto& [name, t] : tables) {
        ASSERT_EQ(t.schema.columns.size(), 31u);
        for (const Row& row : t.rows) {
            malignant += std::get<double>(row.back()) > 0 ? 1 : 0;
        }
    }
    EXPECT_EQ(malignant, 212u);  // scikit-learn's description: 212 malignant, 357 benign

    const Result<AnalysisResult> r = run_named(*s, "joint", tables);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    for (const auto& [name, t] : tables) {
        const RecipientOutput& out = r->outputs.at("hospital_" + name);
        ASSERT_EQ(out.rows.size(), 1u);
        EXPECT_EQ(std::get<std::string>(out.rows[0][0]), name);
        // The Wisconsin data separates well: every hospital's held-out AUC is high.
        EXPECT_GT(std::get<double>(out.rows[0][3]), 0.9) << name;
        const Value& own = out.rows[0][4];
        std::printf("breast-cancer %-7s held-out %lld: joint AUC %.3f, own AUC %.3f\n",
                    name.c_str(), static_cast<long long>(std::get<int64_t>(out.rows[0][1])),
                    std::get<double>(out.rows[0][3]), is_null(own) ? -1.0 : std::get<double>(own));
    }

    // Another seed splits differently.
    options.split_seed = 43;
    const Result<Scenario> other = make_hospitals_scenario(COFFER_DATA_DIR, options);
    ASSERT_TRUE(other.ok());
    EXPECT_NE(other->parties[0].csv, s->parties[0].csv);
}

TEST(HospitalSamples, MissingDataAndFallbackIsNotFound) {
    HospitalsScenarioOptions options;
    options.breast_cancer_csv = "/nonexistent-coffer-folder/breast_cancer.csv";
    const Result<Scenario> r = make_hospitals_scenario("/nonexistent-coffer-folder", options);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Errc::kNotFound);
    EXPECT_NE(r.status().message().find("scripts/setup.sh"), std::string::npos);
}

TEST(HospitalSamples, MalformedHeartDiseaseRecordNamesItsFileAndRecord) {
    const std::string dir = temp_dir("heart");
    std::filesystem::create_directories(dir + "/heart-disease");
    const std::string good = "63,1,1,145,233,1,2,150,0,2.3,3,0,6,0\n";
    for (const std::string h : {"cleveland", "hungarian", "switzerland", "va"}) {
        const std::string text = h == "va" ? good + "63,1,1,145,233,1,2,150,0,2.3,3,0,6\n" : good;
        FILE* f = std::fopen((dir + "/heart-disease/processed." + h + ".data").c_str(), "w");
        ASSERT_NE(f, nullptr);
        std::fputs(text.c_str(), f);
        std::fclose(f);
    }
    const Result<Scenario> r = make_hospitals_scenario(dir);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Errc::kInvalidArgument);
    EXPECT_NE(r.status().message().find("processed.va.data: record 2"), std::string::npos)
        << r.status().to_string();
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace coffer::cleanroom
