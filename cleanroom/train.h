// Joint model training: L2-regularised logistic regression.
//
// Preprocessing, fixed so that every party can reproduce it:
// - Missing values (NaN here; NULL cells in a table) are replaced by the mean of the observed
//   training values of that feature (0 if none is observed).
// - Each feature is then standardised with the mean and the population standard deviation
//   of the imputed training column (scale 1 when that deviation is below 1e-12). Held-out
//   rows use the training rows' means and scales.
// Fitting minimises  sum_i logloss(y_i, b + w.x_i) + (l2 / 2) * |w|^2  (the intercept b is not
// penalised) by Newton's method (IRLS) from zero, stopping when the largest step is below
// `tolerance`; it is deterministic (no randomness, a fixed order of summation).
// All functions are pure and thread-safe.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cleanroom/schema.h"
#include "common/result.h"

namespace coffer::cleanroom {

constexpr int kMaxNewtonIterations = 100;
constexpr size_t kMaxFeatures = 200;
// A held-out set gets no AUC ("n/a") when it has fewer than kMinAucRows rows or fewer than
// kMinAucRowsPerClass rows of either class.
constexpr size_t kMinAucRows = 10;
constexpr size_t kMinAucRowsPerClass = 1;

struct LogisticParams {
    std::vector<std::string> features;
    std::string label;
    // A row is positive when label > label_threshold.
    double label_threshold = 0;
    double l2 = 1.0;
    uint64_t seed = 1;
    double train_fraction = 0.66;
    double tolerance = 1e-10;
    // Also fit each dataset's own model and report its AUC beside the joint one.
    bool compare_own_models = true;
};

// Parses the "params" object of a logistic_regression analysis (features and label
// required). Errors: kInvalidArgument naming the member.
Result<LogisticParams> parse_logistic_params(const nlohmann::json& params);

struct LogisticModel {
    std::vector<double> means;   // imputation values and centring, per feature
    std::vector<double> scales;  // per feature
    double intercept = 0;
    std::vector<double> weights;  // on standardised features
    int iterations = 0;
};

// Fits a model on rows `x` (features, NaN = missing) and labels `y` (0/1). Needs at least
// one row and equal widths. Errors: kInvalidArgument for empty or ragged input;
// kInternal if Newton's method does not converge within kMaxNewtonIterations.
Result<LogisticModel> fit_logistic(const std::vector<std::vector<double>>& x,
                                   const std::vector<int>& y, const LogisticParams& params);

// Probability of the positive class for one row (NaN = missing).
double predict_probability(const LogisticModel& model, const std::vector<double>& row);

// Area under the ROC curve by the Mann–Whitney statistic, ties counted as one half. Empty
// when there are fewer than kMinAucRows rows or fewer than kMinAucRowsPerClass of a class.
std::optional<double> auc(const std::vector<double>& scores, const std::vector<int>& labels);

// A seeded stratified split: within each class, a Fisher–Yates shuffle driven by
// std::mt19937_64(seed) (taking rng() % (i + 1), identical on every platform), then the
// first round(train_fraction * class size) rows train. Returns sorted row indices.
struct Split {
    std::vector<size_t> train;
    std::vector<size_t> test;
};
Split stratified_split(const std::vector<int>& labels, double train_fraction, uint64_t seed);

// Extracts features (NaN for NULL) and labels (label > threshold) from a table. Errors:
// kInvalidArgument for a missing column, a non-numeric column, or a NULL label.
Status table_to_matrix(const Table& table, const LogisticParams& params,
                       std::vector<std::vector<double>>& x, std::vector<int>& y);

}  // namespace coffer::cleanroom
