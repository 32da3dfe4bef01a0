#include "cleanroom/samples.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string_view>
#include <utility>

#include "cleanroom/analysis.h"
#include "cleanroom/csv.h"
#include "cleanroom/schema.h"

namespace coffer::cleanroom {
namespace {

using json = nlohmann::json;

const std::vector<std::string> kLegColumns = {"tx_id",     "account", "counterparty",
                                              "direction", "amount",  "ts"};
const std::vector<std::string> kHeartColumns = {
    "age",     "sex",   "cp",      "trestbps", "chol", "fbs",  "restecg",
    "thalach", "exang", "oldpeak", "slope",    "ca",   "thal", "num"};
constexpr size_t kHeartCholIndex = 4;
const std::vector<std::string> kHeartHospitals = {"cleveland", "hungarian", "switzerland", "va"};

// scikit-learn's feature names of the Wisconsin data, snake-cased: mean_<x>, <x>_error,
// worst_<x> for each of the ten measurements.
const std::vector<std::string> kBreastCancerMeasures = {
    "radius",      "texture",   "perimeter",      "area",     "smoothness",
    "compactness", "concavity", "concave_points", "symmetry", "fractal_dimension"};
constexpr size_t kBreastCancerFeatures = 30;
// The fallback hospitals and their shares of the shuffled rows (the last takes the rest).
const std::vector<std::string> kBreastCancerHospitals = {"north", "central", "south"};
const std::vector<double> kBreastCancerShares = {0.5, 0.3};

// Spans (in time steps) of the planted patterns: a cycle of 6 transfers advancing at most 2
// steps each spans 10 (= kAmlCycleWindow); fan transfers fall within 20 (< kAmlFanWindow).
constexpr int64_t kPlantedCycleSpan = 10;
constexpr int64_t kPlantedCycleMaxStep = 2;
constexpr int64_t kPlantedFanSpan = 20;
constexpr int64_t kMaxFanSize = 1000;
constexpr int64_t kMaxCycleAccounts = 6;

Result<std::string> read_text(const std::string& path) {
    std::error_code ec;
    const uintmax_t size = std::filesystem::file_size(path, ec);
    if (ec) {
        return error(Errc::kIo, "cannot read " + path + ": " + ec.message());
    }
    if (size > kMaxSampleFileBytes) {
        return error(Errc::kResourceExhausted,
                     path + " is larger than " + std::to_string(kMaxSampleFileBytes) + " bytes");
    }
    std::ifstream in(path, std::ios::binary);
    std::string text(static_cast<size_t>(size), '\0');
    if (!in || !in.read(text.data(), static_cast<std::streamsize>(size))) {
        return error(Errc::kIo, "cannot read " + path);
    }
    return text;
}

Status write_text(const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out || !out.write(text.data(), static_cast<std::streamsize>(text.size())) ||
        !out.flush()) {
        return error(Errc::kIo, "cannot write " + path.string());
    }
    return Status();
}

// The shortest text that parses back to the same double (std::to_chars round trip).
std::string format_decimal(double v) {
    char buf[64];
    const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), v);
    COFFER_CHECK(r.ec == std::errc(), "to_chars of a double cannot overflow 64 bytes");
    return std::string(buf, r.ptr);
}

std::vector<std::string> split(const std::string& line, char sep) {
    std::vector<std::string> fields;
    for (size_t start = 0; start <= line.size();) {
        const size_t end = std::min(line.find(sep, start), line.size());
        fields.push_back(line.substr(start, end - start));
        start = end + 1;
    }
    return fields;
}

// The non-empty lines of a text file, without their CR LF / LF ends.
std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    for (std::string& line : split(text, '\n')) {
        if (!line.empty() && line.back() == '\r') {
            line.pop_back();
        }
        if (!line.empty()) {
            lines.push_back(std::move(line));
        }
    }
    return lines;
}

DatasetSchema schema_of(const std::string& name,
                        const std::vector<std::pair<std::string, ColumnType>>& columns) {
    DatasetSchema s;
    s.name = name;
    for (const auto& [column, type] : columns) {
        s.columns.push_back(Column{column, type});
    }
    return s;
}

// Account ids read from files stay far below INT64_MAX, so that id + 1 cannot overflow.
constexpr int64_t kMaxAccountId = 1'000'000'000'000'000;

bool valid_account(int64_t account) {
    return account >= 0 && account <= kMaxAccountId;
}

Result<int64_t> int_cell(const Row& row, size_t index, const std::string& what) {
    if (const auto* v = std::get_if<int64_t>(&row[index])) {
        return *v;
    }
    return error(Errc::kInvalidArgument, what + ": missing value");
}

// Parses a headed CSV file against `schema` after replacing its header line by `header`.
Result<Table> parse_renamed(const std::string& path, const std::string& header,
                            const DatasetSchema& schema) {
    COFFER_ASSIGN_OR_RETURN(std::string text, read_text(path));
    const size_t eol = text.find('\n');
    text.replace(0, eol == std::string::npos ? text.size() : eol, header);
    Result<Table> table = parse_csv(schema, text);
    if (!table.ok()) {
        return table.status().with_context(path + ": ");
    }
    return table;
}

}  // namespace

Result<AmlData> load_amlsim(const std::string& amlsim_dir) {
    const DatasetSchema tx_schema = schema_of("transactions", {{"src", ColumnType::kInt},
                                                               {"dst", ColumnType::kInt},
                                                               {"amount", ColumnType::kDecimal},
                                                               {"ts", ColumnType::kInt}});
    COFFER_ASSIGN_OR_RETURN(
        Table txs, parse_renamed(amlsim_dir + "/transactions.csv", "src,dst,amount,ts", tx_schema));
    const DatasetSchema node_schema = schema_of("nodes", {{"node", ColumnType::kInt},
                                                          {"is_fraud", ColumnType::kInt},
                                                          {"init_balance", ColumnType::kDecimal},
                                                          {"fraud_step", ColumnType::kInt}});
    COFFER_ASSIGN_OR_RETURN(Table nodes,
                            parse_renamed(amlsim_dir + "/nodes.csv",
                                          "node,is_fraud,init_balance,fraud_step", node_schema));

    AmlData data;
    data.source = "amlsim";
    for (size_t i = 0; i < txs.rows.size(); ++i) {
        const Row& r = txs.rows[i];
        const std::string what = "transactions.csv row " + std::to_string(i + 1);
        Transfer t;
        COFFER_ASSIGN_OR_RETURN(t.src, int_cell(r, 0, what));
        COFFER_ASSIGN_OR_RETURN(t.dst, int_cell(r, 1, what));
        COFFER_ASSIGN_OR_RETURN(t.time, int_cell(r, 3, what));
        const double* amount = std::get_if<double>(&r[2]);
        if (amount == nullptr || !valid_account(t.src) || !valid_account(t.dst)) {
            return error(Errc::kInvalidArgument, what + ": missing amount or account out of range");
        }
        t.amount = *amount;
        data.accounts = std::max({data.accounts, t.src + 1, t.dst + 1});
        data.transfers.push_back(t);
    }

    for (size_t i = 0; i < nodes.rows.size(); ++i) {
        const std::string what = "nodes.csv row " + std::to_string(i + 1);
        COFFER_ASSIGN_OR_RETURN(const int64_t node, int_cell(nodes.rows[i], 0, what));
        COFFER_ASSIGN_OR_RETURN(const int64_t fraud, int_cell(nodes.rows[i], 1, what));
        if (!valid_account(node)) {
            return error(Errc::kInvalidArgument, what + ": account out of range");
        }
        data.accounts = std::max(data.accounts, node + 1);
        if (fraud == 1) {
            data.laundering[node] = LaunderingAccount{"amlsim", -1};
        }
    }
    return data;
}

namespace {

// Only raw generator outputs are used: the std distributions are implementation-defined,
// and the generated files must be the same on every platform.
class Draw {
  public:
    explicit Draw(uint64_t seed) : rng_(seed) {}

    // Uniform in [0, n) (modulo bias is irrelevant for sample data); needs n > 0.
    int64_t below(int64_t n) { return static_cast<int64_t>(rng_() % static_cast<uint64_t>(n)); }

    // Uniform in [0, 1).
    double unit() { return static_cast<double>(rng_() >> 11) * 0x1p-53; }

  private:
    std::mt19937_64 rng_;
};

double cents(double v) {
    return std::round(v * 100) / 100;
}

// Plants the laundering patterns of generate_aml, reserving their accounts.
class Planter {
  public:
    Planter(const AmlGeneratorOptions& options, Draw& draw, AmlData& data)
        : options_(options), draw_(draw), data_(data) {}

    Status plant_cycle(int64_t id);
    Status plant_fan(int64_t id, bool inward);
    std::vector<Transfer>& transfers() { return transfers_; }

  private:
    Result<int64_t> fresh_account(int64_t bank, const std::string& pattern, int64_t id);

    const AmlGeneratorOptions& options_;
    Draw& draw_;
    AmlData& data_;
    std::vector<Transfer> transfers_;
};

Result<int64_t> Planter::fresh_account(int64_t bank, const std::string& pattern, int64_t id) {
    const int64_t in_bank = (options_.accounts - bank + kAmlBanks - 1) / kAmlBanks;
    for (int attempt = 0; attempt < kMaxAccountDraws; ++attempt) {
        const int64_t account = draw_.below(in_bank) * kAmlBanks + bank;
        if (data_.laundering.count(account) == 0) {
            data_.laundering[account] = LaunderingAccount{pattern, id};
            return account;
        }
    }
    return error(Errc::kResourceExhausted,
                 "no unused account found in " + std::to_string(kMaxAccountDraws) + " draws");
}

Status Planter::plant_cycle(int64_t id) {
    const int64_t length = 3 + draw_.below(kMaxCycleAccounts - 2);
    const int64_t first_bank = draw_.below(kAmlBanks);
    std::vector<int64_t> ring;
    for (int64_t i = 0; i < length; ++i) {
        COFFER_ASSIGN_OR_RETURN(const int64_t a,
                                fresh_account((first_bank + i) % kAmlBanks, "cycle", id));
        ring.push_back(a);
    }

    int64_t time = draw_.below(options_.steps - kPlantedCycleSpan);
    double amount = cents(5000 + 45000 * draw_.unit());
    for (int64_t i = 0; i < length; ++i) {
        transfers_.push_back(Transfer{ring[i], ring[(i + 1) % length], amount, time});
        amount = cents(amount * (0.95 + 0.04 * draw_.unit()));
        time += draw_.below(kPlantedCycleMaxStep + 1);
    }
    return Status();
}

Status Planter::plant_fan(int64_t id, bool inward) {
    COFFER_ASSIGN_OR_RETURN(
        const int64_t hub,
        fresh_account(draw_.below(kAmlBanks), inward ? "fan_in_hub" : "fan_out_hub", id));
    const int64_t start = draw_.below(options_.steps - kPlantedFanSpan);
    for (int64_t j = 0; j < options_.fan_size; ++j) {
        COFFER_ASSIGN_OR_RETURN(
            const int64_t peer,
            fresh_account(draw_.below(kAmlBanks), inward ? "fan_in_source" : "fan_out_target", id));
        const int64_t time = start + draw_.below(kPlantedFanSpan + 1);
        const double amount = cents(500 + 2000 * draw_.unit());
        transfers_.push_back(inward ? Transfer{peer, hub, amount, time}
                                    : Transfer{hub, peer, amount, time});
    }
    return Status();
}

Status check_generator_options(const AmlGeneratorOptions& o) {
    if (o.accounts < 2 * kAmlBanks || o.accounts > kMaxGeneratedAccounts) {
        return error(Errc::kInvalidArgument,
                     "accounts must be in [6, " + std::to_string(kMaxGeneratedAccounts) + "]");
    }
    if (o.steps <= kPlantedFanSpan) {
        return error(Errc::kInvalidArgument,
                     "steps must exceed " + std::to_string(kPlantedFanSpan));
    }
    if (o.fan_size < kAmlFanDegree || o.fan_size > kMaxFanSize) {
        return error(Errc::kInvalidArgument, "fan_size must be in [" +
                                                 std::to_string(kAmlFanDegree) + ", " +
                                                 std::to_string(kMaxFanSize) + "]");
    }
    const size_t max = kMaxGeneratedTransfers;
    if (o.cycles > max || o.fan_ins > max || o.fan_outs > max || o.background_transfers > max) {
        return error(Errc::kResourceExhausted, "more than " + std::to_string(max) + " transfers");
    }
    // No overflow below: every count is at most kMaxGeneratedTransfers and fan_size at most
    // kMaxFanSize.
    const size_t fans = o.fan_ins + o.fan_outs;
    const auto fan_size = static_cast<size_t>(o.fan_size);
    if (o.background_transfers + o.cycles * kMaxCycleAccounts + fans * fan_size > max) {
        return error(Errc::kResourceExhausted, "more than " + std::to_string(max) + " transfers");
    }
    // Planted accounts take at most half of all accounts, so that drawing unused ones stays
    // fast.
    const size_t planted = o.cycles * kMaxCycleAccounts + fans * (fan_size + 1);
    if (planted > static_cast<size_t>(o.accounts / 2)) {
        return error(Errc::kInvalidArgument,
                     "the planted patterns need up to " + std::to_string(planted) +
                         " accounts, more than half of " + std::to_string(o.accounts));
    }
    return Status();
}

}  // namespace

Result<AmlData> generate_aml(const AmlGeneratorOptions& options) {
    COFFER_RETURN_IF_ERROR(check_generator_options(options));
    AmlData data;
    data.source = "generated";
    data.accounts = options.accounts;
    Draw draw(options.seed);

    Planter planter(options, draw, data);
    int64_t id = 0;
    for (size_t i = 0; i < options.cycles; ++i) {
        COFFER_RETURN_IF_ERROR(planter.plant_cycle(id++));
    }
    for (size_t i = 0; i < options.fan_ins; ++i) {
        COFFER_RETURN_IF_ERROR(planter.plant_fan(id++, true));
    }
    for (size_t i = 0; i < options.fan_outs; ++i) {
        COFFER_RETURN_IF_ERROR(planter.plant_fan(id++, false));
    }
    data.transfers = std::move(planter.transfers());

    // Background: uniform pairs and times, amounts log-uniform between 10 and about 4,000.
    for (size_t i = 0; i < options.background_transfers; ++i) {
        Transfer t;
        t.src = draw.below(options.accounts);
        t.dst = draw.below(options.accounts - 1);
        t.dst += t.dst >= t.src ? 1 : 0;
        t.time = draw.below(options.steps);
        t.amount = cents(10 * std::exp(6 * draw.unit()));
        data.transfers.push_back(t);
    }

    // Time order, as a bank's export would be; ties keep the order of generation.
    std::stable_sort(data.transfers.begin(), data.transfers.end(),
                     [](const Transfer& a, const Transfer& b) { return a.time < b.time; });
    return data;
}

std::string aml_bank_of(int64_t account) {
    COFFER_CHECK(account >= 0, "accounts are non-negative");
    return "bank_" + std::to_string(account % kAmlBanks);
}

namespace {

// One leg row: tx_id,account,counterparty,direction,amount,ts.
void append_leg(std::string& csv, size_t tx, int64_t account, int64_t counterparty,
                std::string_view direction, const std::string& amount, int64_t time) {
    csv.append(std::to_string(tx)).push_back(',');
    csv.append(std::to_string(account)).push_back(',');
    csv.append(std::to_string(counterparty)).push_back(',');
    csv.append(direction).push_back(',');
    csv.append(amount).push_back(',');
    csv.append(std::to_string(time)).push_back('\n');
}

}  // namespace

std::map<std::string, std::string> aml_leg_csvs(const std::vector<Transfer>& transfers) {
    std::map<std::string, std::string> out;
    for (int b = 0; b < kAmlBanks; ++b) {
        out["bank_" + std::to_string(b)] = "tx_id,account,counterparty,direction,amount,ts\n";
    }
    for (size_t i = 0; i < transfers.size(); ++i) {
        const Transfer& t = transfers[i];
        const std::string amount = format_decimal(t.amount);
        append_leg(out[aml_bank_of(t.src)], i, t.src, t.dst, "out", amount, t.time);
        append_leg(out[aml_bank_of(t.dst)], i, t.dst, t.src, "in", amount, t.time);
    }
    return out;
}

std::string aml_declaration(const std::string& bank) {
    DatasetSchema s = schema_of(bank, {{"tx_id", ColumnType::kInt},
                                       {"account", ColumnType::kInt},
                                       {"counterparty", ColumnType::kInt},
                                       {"direction", ColumnType::kString},
                                       {"amount", ColumnType::kDecimal},
                                       {"ts", ColumnType::kInt}});
    s.entity_columns = {"account"};
    s.joinable_columns = {"tx_id", "account", "counterparty"};
    s.output_columns = {"account"};
    return schema_to_json(s);
}

namespace {

std::string aml_analysis(const std::vector<std::string>& banks) {
    json datasets = json::array();
    for (const std::string& b : banks) {
        datasets.push_back({{"name", b}, {"columns", kLegColumns}});
    }
    const json doc = {
        {"version", kAnalysisVersion},
        {"kind", "aml"},
        {"params",
         {{"cycle_window", kAmlCycleWindow},
          {"fan_degree", kAmlFanDegree},
          {"fan_window", kAmlFanWindow}}},
        {"datasets", datasets},
        {"output_policy",
         {{"columns", json::array({"account", "flags"})}, {"routing_column", "account"}}},
        {"recipients", banks},
        {"triggers", banks}};
    return doc.dump(2) + "\n";
}

std::vector<std::string> all_banks() {
    std::vector<std::string> banks;
    for (int b = 0; b < kAmlBanks; ++b) {
        banks.push_back("bank_" + std::to_string(b));
    }
    return banks;
}

}  // namespace

std::string aml_joint_analysis() {
    return aml_analysis(all_banks());
}

std::string aml_own_analysis(const std::string& bank) {
    return aml_analysis({bank});
}

std::string aml_ground_truth_csv(const AmlData& data) {
    std::string out = "account,bank,pattern,pattern_id\n";
    for (const auto& [account, truth] : data.laundering) {
        out += std::to_string(account) + "," + aml_bank_of(account) + "," + truth.pattern + "," +
               std::to_string(truth.pattern_id) + "\n";
    }
    return out;
}

namespace {

// A party whose upload is checked against its own declaration, so that a scenario never
// holds a file the service would refuse.
Result<ScenarioParty> checked_party(std::string party, std::string dataset, std::string declaration,
                                    std::string csv) {
    COFFER_ASSIGN_OR_RETURN(const DatasetSchema schema, parse_schema(declaration));
    Result<Table> table = parse_csv(schema, csv);
    if (!table.ok()) {
        return table.status().with_context(dataset + ": ");
    }
    return ScenarioParty{std::move(party), std::move(dataset), std::move(declaration),
                         std::move(csv), table->rows.size()};
}

}  // namespace

Result<Scenario> make_aml_scenario(const std::string& data_dir, const AmlScenarioOptions& options) {
    const std::string dir = data_dir + "/amlsim";
    std::error_code ec;
    const bool use_amlsim = !options.force_generator && std::filesystem::is_directory(dir, ec);
    COFFER_ASSIGN_OR_RETURN(const AmlData data,
                            use_amlsim ? load_amlsim(dir) : generate_aml(options.generator));

    Scenario s;
    s.kind = "aml";
    s.source = data.source;
    for (auto& [bank, csv] : aml_leg_csvs(data.transfers)) {
        COFFER_ASSIGN_OR_RETURN(ScenarioParty p,
                                checked_party(bank, bank, aml_declaration(bank), std::move(csv)));
        s.parties.push_back(std::move(p));
    }
    const std::vector<std::string> banks = all_banks();
    s.analyses.push_back(ScenarioAnalysis{"joint", aml_joint_analysis(), banks});
    for (const std::string& bank : banks) {
        s.analyses.push_back(ScenarioAnalysis{"own_" + bank, aml_own_analysis(bank), {bank}});
    }
    s.ground_truth_csv = aml_ground_truth_csv(data);
    return s;
}

namespace {

// The documented heart-disease preprocessing: a header row, '?' -> empty (NULL), chol 0
// (Switzerland and VA record an unmeasured cholesterol as 0) -> empty.
Result<std::string> heart_csv(const std::string& raw, const std::string& path) {
    std::string out;
    for (size_t i = 0; i < kHeartColumns.size(); ++i) {
        out += (i == 0 ? "" : ",") + kHeartColumns[i];
    }
    out += "\n";
    const std::vector<std::string> lines = lines_of(raw);
    for (size_t n = 0; n < lines.size(); ++n) {
        std::vector<std::string> fields = split(lines[n], ',');
        if (fields.size() != kHeartColumns.size()) {
            return error(Errc::kInvalidArgument, path + ": record " + std::to_string(n + 1) +
                                                     ": expected 14 fields, got " +
                                                     std::to_string(fields.size()));
        }
        for (size_t f = 0; f < fields.size(); ++f) {
            if (fields[f] == "?") {
                fields[f].clear();
            } else if (f == kHeartCholIndex) {
                const Result<Value> chol = parse_value(fields[f], ColumnType::kDecimal);
                if (chol.ok() && std::get<double>(*chol) == 0) {
                    fields[f].clear();
                }
            }
            out += (f == 0 ? "" : ",") + fields[f];
        }
        out += "\n";
    }
    return out;
}

std::string decimal_declaration(const std::string& name, const std::vector<std::string>& columns) {
    DatasetSchema s;
    s.name = name;
    for (const std::string& c : columns) {
        s.columns.push_back(Column{c, ColumnType::kDecimal});
    }
    return schema_to_json(s);
}

std::string hospitals_analysis(const std::vector<std::string>& datasets,
                               const std::vector<std::string>& columns, const std::string& label) {
    json refs = json::array();
    std::vector<std::string> hospitals;
    for (const std::string& d : datasets) {
        refs.push_back({{"name", d}, {"columns", columns}});
        hospitals.push_back("hospital_" + d);
    }
    std::vector<std::string> features;
    for (const std::string& c : columns) {
        if (c != label) {
            features.push_back(c);
        }
    }
    const json doc = {{"version", kAnalysisVersion},
                      {"kind", "logistic_regression"},
                      {"params",
                       {{"features", features},
                        {"label", label},
                        {"l2", kHospitalsL2},
                        {"seed", kHospitalsSeed}}},
                      {"datasets", refs},
                      {"output_policy",
                       {{"columns", json::array({"dataset", "test_rows", "test_positives",
                                                 "auc_joint", "auc_own"})},
                        {"min_input_rows", kHospitalsMinInputRows}}},
                      {"recipients", hospitals},
                      {"triggers", hospitals}};
    return doc.dump(2) + "\n";
}

Result<Scenario> heart_disease_scenario(const std::string& dir) {
    Scenario s;
    s.kind = "hospitals";
    s.source = "heart-disease";
    for (const std::string& h : kHeartHospitals) {
        const std::string path = dir + "/processed." + h + ".data";
        COFFER_ASSIGN_OR_RETURN(const std::string raw, read_text(path));
        COFFER_ASSIGN_OR_RETURN(std::string csv, heart_csv(raw, path));
        COFFER_ASSIGN_OR_RETURN(
            ScenarioParty p, checked_party("hospital_" + h, h,
                                           decimal_declaration(h, kHeartColumns), std::move(csv)));
        s.parties.push_back(std::move(p));
    }
    s.analyses.push_back(
        ScenarioAnalysis{"joint", hospitals_analysis(kHeartHospitals, kHeartColumns, "num"), {}});
    for (const ScenarioParty& p : s.parties) {
        s.analyses.back().triggers.push_back(p.party);
    }
    return s;
}

std::vector<std::string> breast_cancer_columns() {
    std::vector<std::string> columns;
    for (const std::string& m : kBreastCancerMeasures) {
        columns.push_back("mean_" + m);
    }
    for (const std::string& m : kBreastCancerMeasures) {
        columns.push_back(m + "_error");
    }
    for (const std::string& m : kBreastCancerMeasures) {
        columns.push_back("worst_" + m);
    }
    columns.push_back("malignant");
    return columns;
}

// scikit-learn's file: a first line "<rows>,<features>,malignant,benign", then rows of 30
// features and the target (0 = malignant, 1 = benign). Returns the data lines as our CSV
// rows (the label inverted into `malignant`).
Result<std::vector<std::string>> breast_cancer_rows(const std::string& raw,
                                                    const std::string& path) {
    const std::vector<std::string> lines = lines_of(raw);
    const std::vector<std::string> head =
        lines.empty() ? std::vector<std::string>{} : split(lines[0], ',');
    if (head.size() < 2 || head[1] != std::to_string(kBreastCancerFeatures) ||
        head[0] != std::to_string(lines.size() - 1)) {
        return error(Errc::kInvalidArgument,
                     path + ": first line must be \"<rows>,30,...\" matching the row count");
    }
    std::vector<std::string> rows;
    for (size_t n = 1; n < lines.size(); ++n) {
        std::vector<std::string> fields = split(lines[n], ',');
        if (fields.size() != kBreastCancerFeatures + 1 ||
            (fields.back() != "0" && fields.back() != "1")) {
            return error(Errc::kInvalidArgument, path + ": record " + std::to_string(n) +
                                                     ": expected 30 features and a 0/1 target");
        }
        fields.back() = fields.back() == "0" ? "1" : "0";
        std::string row;
        for (size_t f = 0; f < fields.size(); ++f) {
            row += (f == 0 ? "" : ",") + fields[f];
        }
        rows.push_back(row + "\n");
    }
    return rows;
}

// Which fallback hospital each row goes to: a Fisher-Yates shuffle of the row indices with
// std::mt19937_64(seed) taking rng() % (i + 1), then the first round(0.5 n) positions go to
// north, the next round(0.3 n) to central, the rest to south.
std::vector<size_t> breast_cancer_assignment(size_t n, uint64_t seed) {
    std::vector<size_t> order(n);
    for (size_t i = 0; i < n; ++i) {
        order[i] = i;
    }
    std::mt19937_64 rng(seed);
    for (size_t i = n; i > 1; --i) {
        std::swap(order[i - 1], order[rng() % i]);
    }
    std::vector<size_t> hospital_of(n, kBreastCancerHospitals.size() - 1);
    size_t position = 0;
    for (size_t h = 0; h < kBreastCancerShares.size(); ++h) {
        const auto share =
            static_cast<size_t>(std::llround(kBreastCancerShares[h] * static_cast<double>(n)));
        for (size_t k = 0; k < share && position < n; ++k) {
            hospital_of[order[position++]] = h;
        }
    }
    return hospital_of;
}

Result<Scenario> breast_cancer_scenario(const std::string& path, uint64_t seed) {
    COFFER_ASSIGN_OR_RETURN(const std::string raw, read_text(path));
    COFFER_ASSIGN_OR_RETURN(const std::vector<std::string> rows, breast_cancer_rows(raw, path));
    const std::vector<std::string> columns = breast_cancer_columns();
    std::string header;
    for (const std::string& c : columns) {
        header += (header.empty() ? "" : ",") + c;
    }
    std::vector<std::string> csvs(kBreastCancerHospitals.size(), header + "\n");
    const std::vector<size_t> hospital_of = breast_cancer_assignment(rows.size(), seed);
    for (size_t i = 0; i < rows.size(); ++i) {
        csvs[hospital_of[i]] += rows[i];
    }

    Scenario s;
    s.kind = "hospitals";
    s.source = "breast-cancer";
    for (size_t h = 0; h < kBreastCancerHospitals.size(); ++h) {
        const std::string& name = kBreastCancerHospitals[h];
        COFFER_ASSIGN_OR_RETURN(
            ScenarioParty p, checked_party("hospital_" + name, name,
                                           decimal_declaration(name, columns), std::move(csvs[h])));
        s.parties.push_back(std::move(p));
    }
    s.analyses.push_back(ScenarioAnalysis{
        "joint", hospitals_analysis(kBreastCancerHospitals, columns, "malignant"), {}});
    for (const ScenarioParty& p : s.parties) {
        s.analyses.back().triggers.push_back(p.party);
    }
    return s;
}

}  // namespace

Result<Scenario> make_hospitals_scenario(const std::string& data_dir,
                                         const HospitalsScenarioOptions& options) {
    const std::string dir = data_dir + "/heart-disease";
    std::error_code ec;
    if (!options.force_fallback && std::filesystem::is_directory(dir, ec)) {
        return heart_disease_scenario(dir);
    }
    if (options.breast_cancer_csv.empty() ||
        !std::filesystem::exists(options.breast_cancer_csv, ec)) {
        return error(Errc::kNotFound,
                     "neither " + dir + " nor the breast-cancer fallback (" +
                         (options.breast_cancer_csv.empty() ? std::string("no path given")
                                                            : options.breast_cancer_csv) +
                         ") exists; scripts/setup.sh fetches the fallback into " +
                         kBreastCancerCachePath);
    }
    return breast_cancer_scenario(options.breast_cancer_csv, options.split_seed);
}

namespace {

json scenario_index(const Scenario& scenario) {
    json parties = json::array();
    for (const ScenarioParty& p : scenario.parties) {
        parties.push_back({{"party", p.party},
                           {"dataset", p.dataset},
                           {"csv", p.party + ".csv"},
                           {"schema", p.party + ".schema.json"},
                           {"rows", p.rows}});
    }
    json analyses = json::array();
    for (const ScenarioAnalysis& a : scenario.analyses) {
        const Result<AnalysisDocument> doc = parse_analysis(a.document);
        analyses.push_back({{"name", a.name},
                            {"file", "analysis." + a.name + ".json"},
                            {"id", doc.ok() ? json(doc->id) : json(nullptr)},
                            {"triggers", a.triggers}});
    }
    return json{{"version", 1},
                {"kind", scenario.kind},
                {"source", scenario.source},
                {"parties", parties},
                {"analyses", analyses},
                {"ground_truth",
                 scenario.ground_truth_csv.empty() ? json(nullptr) : json("ground_truth.csv")}};
}

}  // namespace

Status write_scenario(const Scenario& scenario, const std::string& out_dir) {
    for (const ScenarioAnalysis& a : scenario.analyses) {
        const Result<AnalysisDocument> doc = parse_analysis(a.document);
        if (!doc.ok()) {
            return doc.status().with_context("analysis " + a.name + ": ");
        }
    }
    const std::filesystem::path dir(out_dir);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
        return error(Errc::kIo, "cannot create " + out_dir + ": " + ec.message());
    }

    for (const ScenarioParty& p : scenario.parties) {
        const json declaration = json::parse(p.declaration, nullptr, false);
        if (declaration.is_discarded()) {
            return error(Errc::kInvalidArgument, "party " + p.party + ": malformed declaration");
        }
        COFFER_RETURN_IF_ERROR(write_text(dir / (p.party + ".csv"), p.csv));
        COFFER_RETURN_IF_ERROR(
            write_text(dir / (p.party + ".schema.json"), declaration.dump(2) + "\n"));
    }
    for (const ScenarioAnalysis& a : scenario.analyses) {
        COFFER_RETURN_IF_ERROR(write_text(dir / ("analysis." + a.name + ".json"), a.document));
    }
    if (!scenario.ground_truth_csv.empty()) {
        COFFER_RETURN_IF_ERROR(write_text(dir / "ground_truth.csv", scenario.ground_truth_csv));
    }
    return write_text(dir / "scenario.json", scenario_index(scenario).dump(2) + "\n");
}

Status write_aml_scenario(const std::string& data_dir, const std::string& out_dir,
                          const AmlScenarioOptions& options) {
    COFFER_ASSIGN_OR_RETURN(const Scenario s, make_aml_scenario(data_dir, options));
    return write_scenario(s, out_dir);
}

Status write_hospitals_scenario(const std::string& data_dir, const std::string& out_dir,
                                const HospitalsScenarioOptions& options) {
    COFFER_ASSIGN_OR_RETURN(const Scenario s, make_hospitals_scenario(data_dir, options));
    return write_scenario(s, out_dir);
}

}  // namespace coffer::cleanroom
