// The two clean-room scenarios end to end, as the demo runs them: a real `coffer sandbox` of
// three node processes on loopback, and every party step done with the real
// `coffer cleanroom ... --json` commands (declare, upload, propose, approve, run, fetch).
// The inputs are those of cleanroom/samples.h; what each party RECEIVES is compared with the
// independent references of cleanroom/tests/references.h computed on the plaintext, and the
// figures of docs/cleanroom.md ("Scenarios and their figures") are printed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cleanroom/samples.h"
#include "cleanroom/tests/references.h"
#include "common/testing/reference_data.h"
#include "tests/e2e_util.h"

namespace coffer::e2e {
namespace {

namespace cr = ::coffer::cleanroom;
namespace ref = ::coffer::cleanroom::reference;
using nlohmann::json;

constexpr int kSandboxNodes = 3;
constexpr int kSandboxReadyTimeoutMs = 180'000;
constexpr int kSandboxStopTimeoutMs = 30'000;
constexpr int kPollMs = 100;
// One `coffer cleanroom` command; a run answers only once the analysis is done.
constexpr int kCliTimeoutMs = 180'000;
constexpr double kModelTolerance = 1e-6;

const std::vector<std::string> kBanks = {"bank_0", "bank_1", "bank_2"};
const std::vector<std::string> kHospitals = {"hospital_cleveland", "hospital_hungarian",
                                             "hospital_switzerland", "hospital_va"};

// What one command printed, stdout and stderr apart (stdout holds the --json answer).
struct Cli {
    int exit_code = -1;
    std::string out;
    std::string err;
};

// Starts `coffer args...` with stdout and stderr to the given files.
pid_t spawn_coffer(const std::vector<std::string>& args, const std::string& out_path,
                   const std::string& err_path) {
    std::vector<std::string> all = {coffer_binary()};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
        const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (out < 0 || err < 0) {
            ::_exit(127);
        }
        ::dup2(out, STDOUT_FILENO);
        ::dup2(err, STDERR_FILENO);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    return pid;
}

Cli run_cli(const std::vector<std::string>& args, const std::string& scratch) {
    const std::string out_path = scratch + "/cli.out";
    const std::string err_path = scratch + "/cli.err";
    const pid_t pid = spawn_coffer(args, out_path, err_path);
    Cli result;
    if (pid < 0) {
        result.err = "fork failed";
        return result;
    }
    const std::optional<int> code = wait_pid(pid, kCliTimeoutMs);
    if (!code.has_value()) {
        ::kill(pid, SIGKILL);
        wait_pid(pid, kSandboxStopTimeoutMs);
    }
    result.exit_code = code.value_or(-1);
    result.out = read_text_file(out_path);
    result.err = read_text_file(err_path);
    return result;
}

// A running `coffer sandbox`. Stopped by SIGTERM (then SIGKILL) on stop() or destruction; if
// the test process dies first, the kernel stops the nodes (PR_SET_PDEATHSIG in the sandbox).
class Sandbox {
  public:
    Sandbox() = default;
    Sandbox(const Sandbox&) = delete;
    Sandbox& operator=(const Sandbox&) = delete;
    ~Sandbox() { stop(); }

    // Starts it in `dir` with `users`; empty on success, else why it did not become ready.
    std::string start(const std::string& dir, const std::vector<std::string>& users) {
        dir_ = dir;
        std::string list;
        for (const std::string& u : users) {
            list += (list.empty() ? "" : ",") + u;
        }
        pid_ = spawn_coffer({"sandbox", "--nodes", std::to_string(kSandboxNodes), "--dir", dir,
                             "--users", list, "--quiet"},
                            dir + ".out", dir + ".err");
        const auto deadline =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(kSandboxReadyTimeoutMs);
        while (std::chrono::steady_clock::now() < deadline) {
            const json info = json::parse(read_text_file(dir + "/sandbox.json"), nullptr, false);
            if (info.is_object() && info.value("pid", int64_t{0}) == pid_) {
                return "";
            }
            if (wait_pid(pid_, 0).has_value()) {
                pid_ = -1;
                return "the sandbox exited: " + read_text_file(dir + ".err");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
        }
        return "the sandbox was not ready in time: " + read_text_file(dir + ".err");
    }

    void stop() {
        if (pid_ <= 0) {
            return;
        }
        ::kill(pid_, SIGTERM);
        if (!wait_pid(pid_, kSandboxStopTimeoutMs).has_value()) {
            ::kill(pid_, SIGKILL);
            wait_pid(pid_, kSandboxStopTimeoutMs);
        }
        pid_ = -1;
    }

    const std::string& dir() const { return dir_; }

  private:
    std::string dir_;
    pid_t pid_ = -1;
};

// The JSON document a command printed on stdout (`propose` prints its "analysis id" line
// first), or null.
json stdout_json(const std::string& out) {
    const size_t start = out.find('{');
    return start == std::string::npos ? json() : json::parse(out.substr(start), nullptr, false);
}

// Recall and precision of flagged accounts against the laundering accounts.
struct Figures {
    size_t flagged = 0;
    size_t true_positives = 0;
    size_t laundering = 0;

    double recall() const {
        return laundering == 0 ? 0 : static_cast<double>(true_positives) / laundering;
    }
    double precision() const {
        return flagged == 0 ? 0 : static_cast<double>(true_positives) / flagged;
    }
    void add(const Figures& other) {
        flagged += other.flagged;
        true_positives += other.true_positives;
        laundering += other.laundering;
    }
};

using Flags = std::map<int64_t, std::set<std::string>>;

// The flags in an aml result document (columns account, flags; flags comma-separated).
Flags flags_of(const json& doc) {
    Flags flags;
    if (!doc.is_object() || !doc.contains("columns") || !doc.contains("rows")) {
        ADD_FAILURE() << "not an aml result: " << doc.dump();
        return flags;
    }
    const json& columns = doc.at("columns");
    size_t account = columns.size();
    size_t kinds = columns.size();
    for (size_t i = 0; i < columns.size(); ++i) {
        account = columns[i] == "account" ? i : account;
        kinds = columns[i] == "flags" ? i : kinds;
    }
    EXPECT_LT(account, columns.size()) << doc.dump();
    EXPECT_LT(kinds, columns.size()) << doc.dump();
    if (account == columns.size() || kinds == columns.size()) {
        return flags;
    }
    for (const json& row : doc.at("rows")) {
        const std::string list = row.at(kinds).get<std::string>();
        std::set<std::string>& set = flags[row.at(account).get<int64_t>()];
        for (size_t start = 0; start <= list.size();) {
            const size_t comma = std::min(list.find(',', start), list.size());
            set.insert(list.substr(start, comma - start));
            start = comma + 1;
        }
    }
    return flags;
}

// The transfers of AMLSim's transactions.csv (sourceNodeId,targetNodeId,value,time), read
// directly: the reference works on the source, not on what samples.cc made of it.
std::vector<ref::Transfer> read_amlsim_transfers(const std::string& path) {
    const std::string text = read_text_file(path);
    std::vector<ref::Transfer> out;
    size_t start = text.find('\n');
    while (start != std::string::npos && start + 1 < text.size()) {
        const size_t end = std::min(text.find('\n', start + 1), text.size());
        const std::string line = text.substr(start + 1, end - start - 1);
        start = end < text.size() ? end : std::string::npos;
        if (line.empty() || line == "\r") {
            continue;
        }
        ref::Transfer t;
        char* next = nullptr;
        t.src = std::strtoll(line.c_str(), &next, 10);
        t.dst = std::strtoll(next + 1, &next, 10);
        t.amount = std::strtod(next + 1, &next);
        t.time = std::strtoll(next + 1, &next, 10);
        out.push_back(t);
    }
    return out;
}

// Laundering accounts per bank from the scenario's ground_truth.csv
// (account,bank,pattern,pattern_id).
std::map<std::string, std::set<int64_t>> laundering_by_bank(const std::string& csv) {
    std::map<std::string, std::set<int64_t>> out;
    size_t start = csv.find('\n');
    while (start != std::string::npos && start + 1 < csv.size()) {
        const size_t end = std::min(csv.find('\n', start + 1), csv.size());
        const std::string line = csv.substr(start + 1, end - start - 1);
        start = end < csv.size() ? end : std::string::npos;
        const size_t comma = line.find(',');
        if (comma == std::string::npos) {
            continue;
        }
        const size_t comma2 = line.find(',', comma + 1);
        out[line.substr(comma + 1, comma2 - comma - 1)].insert(std::stoll(line.substr(0, comma)));
    }
    return out;
}

Figures score(const Flags& flags, const std::set<int64_t>& laundering) {
    Figures f;
    f.flagged = flags.size();
    f.laundering = laundering.size();
    for (const auto& entry : flags) {
        f.true_positives += laundering.count(entry.first);
    }
    return f;
}

// The reference flags of the accounts of `bank` when the analysis sees `transfers`.
Flags reference_for_bank(const std::vector<ref::Transfer>& transfers, const std::string& bank) {
    const ref::AmlRules rules{cr::kAmlCycleWindow, 6, cr::kAmlFanDegree, cr::kAmlFanWindow};
    Flags out;
    for (const auto& [account, kinds] : ref::aml_flags(transfers, rules)) {
        if (cr::aml_bank_of(account) == bank) {
            out[account] = kinds;
        }
    }
    return out;
}

// The transfers a bank holds alone: those touching one of its accounts.
std::vector<ref::Transfer> transfers_of(const std::vector<ref::Transfer>& all,
                                        const std::string& bank) {
    std::vector<ref::Transfer> out;
    for (const ref::Transfer& t : all) {
        if (cr::aml_bank_of(t.src) == bank || cr::aml_bank_of(t.dst) == bank) {
            out.push_back(t);
        }
    }
    return out;
}

// A hospital's upload parsed back into features (NaN for an empty cell) and labels, by the
// analysis's parameters. The uploads are plain numeric CSV (no quoting).
void matrix_of(const std::string& csv, const json& params, std::vector<std::vector<double>>& x,
               std::vector<int>& y) {
    std::vector<std::vector<std::string>> lines = ref::split_plain_csv(csv);
    ASSERT_FALSE(lines.empty());
    auto column = [&](const std::string& name) {
        const auto found = std::find(lines[0].begin(), lines[0].end(), name);
        EXPECT_NE(found, lines[0].end()) << name;
        return static_cast<size_t>(found - lines[0].begin());
    };
    std::vector<size_t> features;
    for (const json& f : params.at("features")) {
        features.push_back(column(f.get<std::string>()));
    }
    const size_t label = column(params.at("label").get<std::string>());
    const double threshold = params.value("label_threshold", 0.0);
    for (size_t i = 1; i < lines.size(); ++i) {
        std::vector<double> row;
        for (size_t c : features) {
            row.push_back(lines[i].at(c).empty() ? std::nan("") : std::stod(lines[i].at(c)));
        }
        ASSERT_FALSE(lines[i].at(label).empty()) << "a row without a label";
        x.push_back(std::move(row));
        y.push_back(std::stod(lines[i].at(label)) > threshold ? 1 : 0);
    }
}

std::string auc_text(const json& v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.3f", v.is_number() ? v.get<double>() : 0.0);
    return v.is_number() ? buf : "n/a";
}

class CleanroomScenarios : public ::testing::Test {
  protected:
    static void TearDownTestSuite() {
        sandbox_.reset();
        root_.reset();
    }

    // The one sandbox both scenarios share (started by the first test that needs it, with
    // the parties of both scenarios), or nullptr after a failure.
    static Sandbox* sandbox() {
        if (sandbox_ == nullptr && !sandbox_failed_) {
            root_ = std::make_unique<TempDir>();
            sandbox_ = std::make_unique<Sandbox>();
            std::vector<std::string> users = kBanks;
            users.insert(users.end(), kHospitals.begin(), kHospitals.end());
            const std::string why = sandbox_->start(root_->path() + "/sandbox", users);
            if (!why.empty()) {
                ADD_FAILURE() << why;
                sandbox_.reset();
                sandbox_failed_ = true;
            }
        }
        return sandbox_.get();
    }

    static std::string scratch() { return root_->path(); }

    // `coffer cleanroom ARGS --sandbox DIR --as PARTY --json`; its JSON answer, or null after
    // reporting a failure.
    json as_party(const std::string& party, std::vector<std::string> args) {
        args.insert(args.begin(), "cleanroom");
        args.insert(args.end(), {"--sandbox", sandbox_->dir(), "--as", party, "--json"});
        last_ = run_cli(args, scratch());
        if (last_.exit_code != 0) {
            ADD_FAILURE() << "coffer cleanroom " << args[1] << " as " << party << " exited "
                          << last_.exit_code << ": " << last_.out << last_.err;
            return json();
        }
        json doc = stdout_json(last_.out);
        EXPECT_TRUE(doc.is_object()) << last_.out;
        return doc;
    }

    // Every party declares its dataset and uploads its rows.
    void declare_and_upload(const cr::Scenario& scenario, const std::string& dir) {
        for (const cr::ScenarioParty& p : scenario.parties) {
            const json declared =
                as_party(p.party, {"declare", "--schema", dir + "/" + p.party + ".schema.json"});
            ASSERT_TRUE(declared.is_object()) << p.party;
            const json uploaded = as_party(
                p.party, {"upload", "--dataset", p.dataset, "--csv", dir + "/" + p.party + ".csv"});
            ASSERT_TRUE(uploaded.is_object()) << p.party;
            EXPECT_EQ(uploaded.value("rows", int64_t{-1}), static_cast<int64_t>(p.rows))
                << uploaded.dump();
        }
    }

    // Proposes analysis `name` as `party`, every party in `approvers` approves it, and
    // `party` runs it. Returns the run id ("" after a failure).
    std::string propose_approve_run(const std::string& dir, const std::string& name,
                                    const std::string& party,
                                    const std::vector<std::string>& approvers) {
        const json proposed =
            as_party(party, {"propose", "--analysis", dir + "/analysis." + name + ".json"});
        const std::string id = proposed.is_object() ? proposed.value("id", "") : "";
        EXPECT_NE(last_.out.find("analysis id " + id), std::string::npos) << last_.out;
        if (id.empty()) {
            return "";
        }
        for (const std::string& approver : approvers) {
            if (!as_party(approver, {"approve", "--analysis", id}).is_object()) {
                return "";
            }
        }
        const json ran = as_party(party, {"run", "--analysis", id});
        const json& record = ran.is_object() && ran.contains("record") ? ran["record"] : ran;
        return record.is_object() ? record.value("run_id", "") : "";
    }

    // `party` fetches and decrypts its result of `run_id`.
    json fetch(const std::string& party, const std::string& run_id) {
        const json doc = as_party(party, {"fetch", "--run", run_id});
        EXPECT_TRUE(doc.is_object() && doc.value("recipient", "") == party) << doc.dump();
        return doc;
    }

    Cli last_;

  private:
    static inline std::unique_ptr<TempDir> root_;
    static inline std::unique_ptr<Sandbox> sandbox_;
    static inline bool sandbox_failed_ = false;
};

void print_aml_line(const std::string& who, const Figures& joint, const Figures& own) {
    std::printf(
        "aml figures: %-7s laundering %zu | joint found %zu flagged %zu recall %.3f precision "
        "%.3f | own found %zu flagged %zu recall %.3f precision %.3f\n",
        who.c_str(), joint.laundering, joint.true_positives, joint.flagged, joint.recall(),
        joint.precision(), own.true_positives, own.flagged, own.recall(), own.precision());
}

TEST_F(CleanroomScenarios, AmlJointFlagsEqualTheReferenceAndFindMoreLaunderingThanEachBank) {
    COFFER_REQUIRE_DATA("amlsim/transactions.csv");
    COFFER_REQUIRE_DATA("amlsim/nodes.csv");
    const Result<cr::Scenario> scenario = cr::make_aml_scenario(COFFER_DATA_DIR);
    ASSERT_TRUE(scenario.ok()) << scenario.status().to_string();
    ASSERT_EQ(scenario->source, "amlsim");
    ASSERT_NE(sandbox(), nullptr);
    const std::string dir = scratch() + "/aml";
    ASSERT_TRUE(cr::write_scenario(*scenario, dir).ok());
    declare_and_upload(*scenario, dir);

    // Every bank approves the joint analysis; bank_1 runs it; each bank reads its own flags.
    const std::string joint_run = propose_approve_run(dir, "joint", "bank_1", kBanks);
    ASSERT_FALSE(joint_run.empty());
    std::map<std::string, Flags> joint;
    std::map<std::string, Flags> own;
    for (const std::string& bank : kBanks) {
        joint[bank] = flags_of(fetch(bank, joint_run));
        const std::string own_run = propose_approve_run(dir, "own_" + bank, bank, {bank});
        ASSERT_FALSE(own_run.empty()) << bank;
        own[bank] = flags_of(fetch(bank, own_run));
    }

    const std::vector<ref::Transfer> transfers =
        read_amlsim_transfers(reference_data::data_path("amlsim/transactions.csv"));
    ASSERT_EQ(transfers.size(), 120'558u);
    const auto laundering = laundering_by_bank(scenario->ground_truth_csv);
    Figures joint_total;
    Figures own_total;
    for (const std::string& bank : kBanks) {
        EXPECT_EQ(joint.at(bank), reference_for_bank(transfers, bank)) << bank;
        EXPECT_EQ(own.at(bank), reference_for_bank(transfers_of(transfers, bank), bank)) << bank;
        const Figures fj = score(joint.at(bank), laundering.at(bank));
        const Figures fo = score(own.at(bank), laundering.at(bank));
        print_aml_line(bank, fj, fo);
        joint_total.add(fj);
        own_total.add(fo);
    }
    print_aml_line("overall", joint_total, own_total);
    EXPECT_GT(joint_total.true_positives, own_total.true_positives);
    EXPECT_GE(joint_total.precision(), own_total.precision());
}

// The plain reference fit ({intercept, weights...}) on the joint training rows rebuilt from
// each hospital's upload by the documented split; their number in `train_rows`.
std::vector<double> reference_model(const cr::Scenario& scenario, const json& document,
                                    size_t& train_rows) {
    const json& params = document.at("params");
    const double fraction = params.value("train_fraction", 0.66);
    const uint64_t seed = params.value("seed", uint64_t{1});
    std::vector<std::vector<double>> joint_x;
    std::vector<int> joint_y;
    for (const json& d : document.at("datasets")) {
        const std::string name = d.at("name").get<std::string>();
        for (const cr::ScenarioParty& p : scenario.parties) {
            if (p.dataset != name) {
                continue;
            }
            std::vector<std::vector<double>> x;
            std::vector<int> y;
            matrix_of(p.csv, params, x, y);
            for (size_t i : ref::training_rows(y, fraction, seed ^ ref::fnv1a64(name))) {
                joint_x.push_back(x[i]);
                joint_y.push_back(y[i]);
            }
        }
    }
    EXPECT_FALSE(joint_x.empty());
    train_rows = joint_x.size();
    return joint_x.empty() ? std::vector<double>()
                           : ref::logistic_fit(joint_x, joint_y, params.value("l2", 1.0));
}

// One value of a one-row result by column name.
json cell(const json& doc, const std::string& column) {
    const json& columns = doc.at("columns");
    for (size_t i = 0; i < columns.size(); ++i) {
        if (columns[i] == column) {
            return doc.at("rows").at(0).at(i);
        }
    }
    ADD_FAILURE() << "no column " << column << " in " << doc.dump();
    return json();
}

TEST_F(CleanroomScenarios, HospitalsReceiveThePlainModelAndTheJointModelBeatsOwnModels) {
    COFFER_REQUIRE_DATA("heart-disease");
    const Result<cr::Scenario> scenario = cr::make_hospitals_scenario(COFFER_DATA_DIR);
    ASSERT_TRUE(scenario.ok()) << scenario.status().to_string();
    ASSERT_EQ(scenario->source, "heart-disease");
    ASSERT_EQ(scenario->parties.size(), kHospitals.size());
    ASSERT_NE(sandbox(), nullptr);
    const std::string dir = scratch() + "/hospitals";
    ASSERT_TRUE(cr::write_scenario(*scenario, dir).ok());
    declare_and_upload(*scenario, dir);

    const std::string run = propose_approve_run(dir, "joint", kHospitals[0], kHospitals);
    ASSERT_FALSE(run.empty());
    const json document = json::parse(scenario->analyses.at(0).document);
    size_t train_rows = 0;
    const std::vector<double> want = reference_model(*scenario, document, train_rows);
    ASSERT_FALSE(want.empty());

    double joint_sum = 0;
    double own_sum = 0;
    int joint_n = 0;
    int own_n = 0;
    for (const cr::ScenarioParty& p : scenario->parties) {
        const json doc = fetch(p.party, run);
        ASSERT_TRUE(doc.is_object()) << p.party;
        const json& model = doc.at("aggregates").at("model");
        EXPECT_EQ(model.at("train_rows").get<size_t>(), train_rows) << p.party;
        EXPECT_EQ(model.at("features"), document.at("params").at("features")) << p.party;
        EXPECT_NEAR(model.at("intercept").get<double>(), want[0], kModelTolerance) << p.party;
        ASSERT_EQ(model.at("weights").size() + 1, want.size()) << p.party;
        for (size_t j = 0; j + 1 < want.size(); ++j) {
            EXPECT_NEAR(model["weights"][j].get<double>(), want[j + 1], kModelTolerance)
                << p.party << " weight " << j;
        }
        ASSERT_EQ(doc.at("rows").size(), 1u) << p.party << " sees another hospital's row";
        EXPECT_EQ(cell(doc, "dataset"), p.dataset);
        const json auc_joint = cell(doc, "auc_joint");
        const json auc_own = cell(doc, "auc_own");
        std::printf(
            "hospital figures: %-20s held-out %3lld (%3lld positive) joint AUC %s own AUC %s\n",
            p.party.c_str(), cell(doc, "test_rows").get<long long>(),
            cell(doc, "test_positives").get<long long>(), auc_text(auc_joint).c_str(),
            auc_text(auc_own).c_str());
        joint_sum += auc_joint.is_number() ? auc_joint.get<double>() : 0;
        joint_n += auc_joint.is_number() ? 1 : 0;
        own_sum += auc_own.is_number() ? auc_own.get<double>() : 0;
        own_n += auc_own.is_number() ? 1 : 0;
    }
    // n/a AUCs (too few held-out rows or one class) are left out of the means.
    ASSERT_GT(joint_n, 0);
    ASSERT_GT(own_n, 0);
    std::printf("hospital figures: mean joint AUC %.3f (%d hospitals) own AUC %.3f (%d)\n",
                joint_sum / joint_n, joint_n, own_sum / own_n, own_n);
    EXPECT_GT(joint_sum / joint_n, own_sum / own_n);
}

}  // namespace
}  // namespace coffer::e2e
