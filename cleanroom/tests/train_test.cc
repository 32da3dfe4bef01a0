#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>

#include "cleanroom/analysis.h"
#include "cleanroom/csv.h"
#include "cleanroom/tests/references.h"
#include "cleanroom/tests/test_util.h"
#include "cleanroom/train.h"

namespace coffer::cleanroom {
namespace {

const std::vector<std::string> kHeartColumns = {
    "age",     "sex",   "cp",      "trestbps", "chol", "fbs",  "restecg",
    "thalach", "exang", "oldpeak", "slope",    "ca",   "thal", "num"};
const std::vector<std::string> kHospitals = {"cleveland", "hungarian", "switzerland", "va"};

// The documented preprocessing before upload: a header row, '?' -> empty (NULL), and chol 0
// (how Switzerland and VA record an unmeasured cholesterol) -> empty.
std::string heart_csv(const std::string& raw) {
    std::string out;
    for (size_t i = 0; i < kHeartColumns.size(); ++i) {
        out += (i == 0 ? "" : ",") + kHeartColumns[i];
    }
    out += "\n";
    for (std::vector<std::string>& fields : reference::split_plain_csv(raw)) {
        for (size_t f = 0; f < fields.size(); ++f) {
            if (fields[f] == "?" || (f == 4 && std::stod(fields[f]) == 0)) {
                fields[f] = "";
            }
            out += (f == 0 ? "" : ",") + fields[f];
        }
        out += "\n";
    }
    return out;
}

std::map<std::string, Table> load_hospitals() {
    std::vector<std::string> specs;
    for (const std::string& c : kHeartColumns) {
        specs.push_back(c + ":decimal");
    }
    std::map<std::string, Table> out;
    for (const std::string& h : kHospitals) {
        DatasetSchema schema = testing::make_schema(h, specs);
        const std::string raw =
            testing::read_file(testing::data_path("heart-disease/processed." + h + ".data"));
        Result<Table> t = parse_csv(schema, heart_csv(raw));
        EXPECT_TRUE(t.ok()) << h << ": " << t.status().to_string();
        if (t.ok()) {
            t->owner = "hospital_" + h;
            out[h] = std::move(t).value();
        }
    }
    return out;
}

TEST(Train, AucCountsTiesAsHalf) {
    const std::vector<int> labels = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1};
    EXPECT_DOUBLE_EQ(*auc({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, labels), 1.0);
    EXPECT_DOUBLE_EQ(*auc({10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, labels), 0.0);
    EXPECT_DOUBLE_EQ(*auc(std::vector<double>(10, 0.5), labels), 0.5);
    // One tie between a positive and a negative: 24 wins + 0.5 of 25 pairs.
    EXPECT_DOUBLE_EQ(*auc({1, 2, 3, 4, 6, 6, 7, 8, 9, 10}, labels), 24.5 / 25);
    EXPECT_FALSE(auc({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, std::vector<int>(10, 1)).has_value());
    EXPECT_FALSE(auc({1, 2}, {0, 1}).has_value());
}

TEST(Train, StratifiedSplitIsSeededAndKeepsClassShares) {
    std::vector<int> labels(100, 0);
    std::fill(labels.begin(), labels.begin() + 30, 1);
    const Split a = stratified_split(labels, 0.66, 7);
    const Split b = stratified_split(labels, 0.66, 7);
    EXPECT_EQ(a.train, b.train);
    EXPECT_EQ(a.train.size(), 66u);  // round(0.66 * 30) + round(0.66 * 70) = 20 + 46
    EXPECT_NE(stratified_split(labels, 0.66, 8).train, a.train);
}

std::string heart_document() {
    nlohmann::json datasets = nlohmann::json::array();
    nlohmann::json recipients = nlohmann::json::array();
    for (const std::string& h : kHospitals) {
        datasets.push_back({{"name", h}, {"columns", kHeartColumns}});
        recipients.push_back("hospital_" + h);
    }
    const std::vector<std::string> features(kHeartColumns.begin(), kHeartColumns.end() - 1);
    return nlohmann::json{
        {"version", 1},
        {"kind", "logistic_regression"},
        {"params", {{"features", features}, {"label", "num"}, {"l2", 1.0}, {"seed", 42}}},
        {"datasets", datasets},
        {"output_policy",
         {{"columns", {"dataset", "test_rows", "test_positives", "auc_joint", "auc_own"}},
          {"min_input_rows", 50}}},
        {"recipients", recipients},
        {"triggers", {"hospital_cleveland"}}}
        .dump();
}

// The joint training rows, rebuilt from the documented split rule.
void joint_training_rows(const std::map<std::string, Table>& tables, const LogisticParams& p,
                         std::vector<std::vector<double>>& joint_x, std::vector<int>& joint_y) {
    for (const std::string& h : kHospitals) {
        std::vector<std::vector<double>> x;
        std::vector<int> y;
        ASSERT_TRUE(table_to_matrix(tables.at(h), p, x, y).ok());
        uint64_t hash = 1469598103934665603ULL;
        for (char c : h) {
            hash = (hash ^ static_cast<uint8_t>(c)) * 1099511628211ULL;
        }
        for (size_t i : stratified_split(y, 0.66, 42 ^ hash).train) {
            joint_x.push_back(x[i]);
            joint_y.push_back(y[i]);
        }
    }
}

std::string auc_text(const Value& v) {
    return is_null(v) ? "n/a" : std::to_string(std::get<double>(v));
}

TEST(HeartDisease, JointModelMatchesPlainFitAndBeatsOwnModels) {
    for (const std::string& h : kHospitals) {
        COFFER_REQUIRE_DATA("heart-disease/processed." + h + ".data");
    }
    const std::map<std::string, Table> tables = load_hospitals();
    ASSERT_EQ(tables.size(), 4u);
    const Result<AnalysisDocument> doc = parse_analysis(heart_document());
    ASSERT_TRUE(doc.ok()) << doc.status().to_string();
    const Result<AnalysisResult> result =
        run_analysis(*doc, tables, RunOptions{{}, "hospital_cleveland"});
    ASSERT_TRUE(result.ok()) << result.status().to_string();

    // The model every hospital received equals an independent fit on the same training rows.
    std::vector<std::vector<double>> joint_x;
    std::vector<int> joint_y;
    joint_training_rows(tables, *doc->lr, joint_x, joint_y);
    const std::vector<double> want = reference::logistic_fit(joint_x, joint_y, 1.0);
    const nlohmann::json model =
        nlohmann::json::parse(result->outputs.at("hospital_va").json)["aggregates"]["model"];
    EXPECT_NEAR(model["intercept"].get<double>(), want[0], 1e-6);
    for (size_t j = 0; j + 1 < want.size(); ++j) {
        EXPECT_NEAR(model["weights"][j].get<double>(), want[j + 1], 1e-6) << kHeartColumns[j];
    }

    // Each hospital receives only its own evaluation; n/a AUCs are left out of the means.
    double joint_sum = 0, own_sum = 0;
    int joint_n = 0, own_n = 0;
    for (const std::string& h : kHospitals) {
        const RecipientOutput& out = result->outputs.at("hospital_" + h);
        ASSERT_EQ(out.rows.size(), 1u);
        EXPECT_EQ(std::get<std::string>(out.rows[0][0]), h);
        const Value& joint_auc = out.rows[0][3];
        const Value& own_auc = out.rows[0][4];
        std::printf(
            "heart-disease %-11s held-out %3lld (%3lld positive): joint AUC %s, own AUC %s\n",
            h.c_str(), static_cast<long long>(std::get<int64_t>(out.rows[0][1])),
            static_cast<long long>(std::get<int64_t>(out.rows[0][2])), auc_text(joint_auc).c_str(),
            auc_text(own_auc).c_str());
        joint_sum += is_null(joint_auc) ? 0 : std::get<double>(joint_auc);
        joint_n += is_null(joint_auc) ? 0 : 1;
        own_sum += is_null(own_auc) ? 0 : std::get<double>(own_auc);
        own_n += is_null(own_auc) ? 0 : 1;
    }
    ASSERT_GT(joint_n, 0);
    ASSERT_GT(own_n, 0);
    std::printf("heart-disease mean AUC: joint %.4f, own %.4f\n", joint_sum / joint_n,
                own_sum / own_n);
    EXPECT_GT(joint_sum / joint_n, own_sum / own_n);
}

}  // namespace
}  // namespace coffer::cleanroom
