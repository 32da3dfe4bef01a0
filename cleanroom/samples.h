// The inputs of the two clean-room scenarios, produced as the files each party uploads.
//
// The demo, the end-to-end tests and the benchmark all build their uploads here, so that
// they agree on the bank split, the preprocessing and the analysis documents (the rules are
// in docs/cleanroom-engine.md, section "Scenarios"):
// - aml: three banks (bank_0..2, account id mod 3) each uploading the legs of every transfer
//   that touches one of its accounts; a joint aml analysis over the three and one analysis
//   per bank over its own legs. The data is the AMLSim sample when its folder exists, else a
//   seeded generator with planted cycles, fan-ins and fan-outs across banks.
// - hospitals: the UCI heart-disease study as four hospitals and one joint
//   logistic_regression analysis; when that folder is missing, the Wisconsin breast-cancer
//   data (extracted from Debian's python3-sklearn by scripts/setup.sh) split across three
//   hospitals by a seeded rule.
// Everything here is pure apart from reading the source files and write_scenario; all
// functions are thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"

namespace coffer::cleanroom {

// The bank split and the parameters of the joint AML analysis (docs/cleanroom-engine.md,
// "AMLSim figures", explains the choice).
constexpr int kAmlBanks = 3;
constexpr int64_t kAmlCycleWindow = 10;
constexpr int64_t kAmlFanDegree = 8;
constexpr int64_t kAmlFanWindow = 30;
// Training parameters of the hospitals analysis.
constexpr uint64_t kHospitalsSeed = 42;
constexpr double kHospitalsL2 = 1.0;
constexpr int64_t kHospitalsMinInputRows = 50;

// Named maxima for what the samples read and generate.
constexpr size_t kMaxSampleFileBytes = 256 * 1024 * 1024;
constexpr size_t kMaxGeneratedTransfers = 5'000'000;
constexpr int64_t kMaxGeneratedAccounts = 10'000'000;
// Attempts at drawing an unused account for a planted pattern before giving up.
constexpr int kMaxAccountDraws = 10'000;

// Where scripts/setup.sh puts the breast-cancer CSV, relative to the project root.
constexpr char kBreastCancerCachePath[] = "build/cache/sklearn/breast_cancer.csv";

// One transfer; its tx_id is its index in the list it belongs to.
struct Transfer {
    int64_t src = 0;
    int64_t dst = 0;
    double amount = 0;
    int64_t time = 0;
};

// The ground truth of one laundering account. pattern: "amlsim" (AMLSim labels an account
// without saying which pattern), "cycle", "fan_in_hub", "fan_in_source", "fan_out_hub",
// "fan_out_target". pattern_id numbers the planted patterns (-1 for AMLSim).
struct LaunderingAccount {
    std::string pattern;
    int64_t pattern_id = -1;
};

struct AmlData {
    // "amlsim" or "generated".
    std::string source;
    std::vector<Transfer> transfers;
    int64_t accounts = 0;
    std::map<int64_t, LaunderingAccount> laundering;
};

// Reads AMLSim's transactions.csv and nodes.csv from `amlsim_dir` (through the upload CSV
// parser, headers renamed). Errors: kIo for an unreadable file, kInvalidArgument (with the
// line) for malformed rows, kResourceExhausted past kMaxSampleFileBytes.
Result<AmlData> load_amlsim(const std::string& amlsim_dir);

struct AmlGeneratorOptions {
    uint64_t seed = 1;
    // Accounts 0..accounts-1; a multiple of kAmlBanks keeps the banks equal in size.
    int64_t accounts = 3000;
    // Time steps 0..steps-1.
    int64_t steps = 200;
    size_t background_transfers = 15'000;
    size_t cycles = 30;
    size_t fan_ins = 20;
    size_t fan_outs = 20;
    // Counterparties of a planted fan (at least kAmlFanDegree, so the joint analysis can find
    // it).
    int64_t fan_size = 10;
};

// A deterministic transfer graph from `options.seed` (the rule is in docs/cleanroom-engine.md:
// only raw std::mt19937_64 outputs are used, so the output is the same on every platform).
// Planted cycles have 3 to 6 accounts whose banks follow one another (b, b+1, b+2, b, ...
// mod 3), so that no bank alone sees a whole cycle; planted fans have fan_size
// counterparties within 20 steps.
// Errors: kInvalidArgument for options that cannot hold the planted patterns (too few
// accounts or steps, fan_size below kAmlFanDegree), kResourceExhausted past the maxima.
Result<AmlData> generate_aml(const AmlGeneratorOptions& options);

// "bank_<account mod 3>"; needs account >= 0.
std::string aml_bank_of(int64_t account);

// Per bank (bank_0..2) the legs CSV: header tx_id,account,counterparty,direction,amount,ts,
// then for every transfer in order its "out" leg at the sender's bank and its "in" leg at
// the receiver's bank (both at the same bank for a transfer inside one bank).
std::map<std::string, std::string> aml_leg_csvs(const std::vector<Transfer>& transfers);

// The declaration of a bank's legs dataset (entity and output column: account).
std::string aml_declaration(const std::string& bank);

// The joint analysis over bank_0..2 (recipients and triggers: the three banks, routing by
// account), and the same analysis over one bank's own legs (that bank alone).
std::string aml_joint_analysis();
std::string aml_own_analysis(const std::string& bank);

// "account,bank,pattern,pattern_id" rows, by account.
std::string aml_ground_truth_csv(const AmlData& data);

// One party of a scenario: its dataset's declaration and upload.
struct ScenarioParty {
    std::string party;
    std::string dataset;
    std::string declaration;
    std::string csv;
    size_t rows = 0;
};

// One analysis document (name: "joint", "own_bank_0", ...), the exact bytes to submit.
struct ScenarioAnalysis {
    std::string name;
    std::string document;
    std::vector<std::string> triggers;
};

struct Scenario {
    // "aml" or "hospitals".
    std::string kind;
    // "amlsim", "generated", "heart-disease" or "breast-cancer".
    std::string source;
    std::vector<ScenarioParty> parties;
    std::vector<ScenarioAnalysis> analyses;
    // CSV of the laundering accounts (aml only; empty otherwise).
    std::string ground_truth_csv;
};

struct AmlScenarioOptions {
    // Use the generator even when AMLSim is present.
    bool force_generator = false;
    AmlGeneratorOptions generator;
};

// The aml scenario from `data_dir`/amlsim, or from the generator when that folder does not
// exist (or force_generator). Errors: those of load_amlsim / generate_aml.
Result<Scenario> make_aml_scenario(const std::string& data_dir,
                                   const AmlScenarioOptions& options = {});

struct HospitalsScenarioOptions {
    // The breast-cancer CSV used when `data_dir`/heart-disease is missing (scripts/setup.sh
    // puts it at kBreastCancerCachePath under the project root).
    std::string breast_cancer_csv;
    // Use the breast-cancer data even when heart-disease is present.
    bool force_fallback = false;
    // Seed of the breast-cancer split across hospitals.
    uint64_t split_seed = 42;
};

// The hospitals scenario: heart-disease from `data_dir`/heart-disease (four hospitals), or
// the breast-cancer fallback (three hospitals). Errors: kNotFound when neither source exists
// (the message names scripts/setup.sh), kIo for unreadable files, kInvalidArgument (with the
// line) for malformed rows.
Result<Scenario> make_hospitals_scenario(const std::string& data_dir,
                                         const HospitalsScenarioOptions& options = {});

// Writes `scenario` into `out_dir` (created if needed; existing files of the same names are
// replaced): per party `<party>.csv` and `<party>.schema.json`, per analysis
// `analysis.<name>.json`, `ground_truth.csv` when there is one, and the index
// `scenario.json` (format in docs/cleanroom-engine.md). Errors: kIo naming the file.
Status write_scenario(const Scenario& scenario, const std::string& out_dir);

// make_*_scenario followed by write_scenario: what `coffer cleanroom sample aml|hospitals
// --out DIR` runs.
Status write_aml_scenario(const std::string& data_dir, const std::string& out_dir,
                          const AmlScenarioOptions& options = {});
Status write_hospitals_scenario(const std::string& data_dir, const std::string& out_dir,
                                const HospitalsScenarioOptions& options = {});

}  // namespace coffer::cleanroom
