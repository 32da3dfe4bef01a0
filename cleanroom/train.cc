#include "cleanroom/train.h"

#include <Eigen/Dense>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "cleanroom/json_util.h"

namespace coffer::cleanroom {

using nlohmann::json;

Result<LogisticParams> parse_logistic_params(const json& p) {
    constexpr std::string_view kWhat = "params";
    COFFER_RETURN_IF_ERROR(detail::check_keys(p, kWhat, {"features", "label"},
                                              {"features", "label", "label_threshold", "l2", "seed",
                                               "train_fraction", "compare_own_models"}));
    LogisticParams out;
    COFFER_ASSIGN_OR_RETURN(out.features, detail::get_string_list(p, kWhat, "features"));
    COFFER_ASSIGN_OR_RETURN(out.label, detail::get_string(p, kWhat, "label"));
    if (out.features.empty() || out.features.size() > kMaxFeatures) {
        return error(Errc::kInvalidArgument,
                     "params.features: need 1 to " + std::to_string(kMaxFeatures) + " features");
    }
    if (p.contains("label_threshold")) {
        COFFER_ASSIGN_OR_RETURN(out.label_threshold,
                                detail::get_number(p, kWhat, "label_threshold"));
    }
    if (p.contains("l2")) {
        COFFER_ASSIGN_OR_RETURN(out.l2, detail::get_number(p, kWhat, "l2"));
    }
    if (p.contains("seed")) {
        COFFER_ASSIGN_OR_RETURN(int64_t seed, detail::get_integer(p, kWhat, "seed"));
        out.seed = static_cast<uint64_t>(seed);
    }
    if (p.contains("train_fraction")) {
        COFFER_ASSIGN_OR_RETURN(out.train_fraction, detail::get_number(p, kWhat, "train_fraction"));
    }
    if (p.contains("compare_own_models")) {
        COFFER_ASSIGN_OR_RETURN(out.compare_own_models,
                                detail::get_bool(p, kWhat, "compare_own_models"));
    }
    if (!(out.l2 > 0 && out.l2 < 1e6)) {
        return error(Errc::kInvalidArgument, "params.l2 must be in (0, 1e6)");
    }
    if (!(out.train_fraction > 0 && out.train_fraction < 1)) {
        return error(Errc::kInvalidArgument, "params.train_fraction must be in (0, 1)");
    }
    return out;
}

namespace {

// Imputation means and scales from the training rows (see train.h).
void fit_standardiser(const std::vector<std::vector<double>>& x, LogisticModel& m) {
    const size_t p = x[0].size();
    m.means.assign(p, 0);
    m.scales.assign(p, 1);
    for (size_t j = 0; j < p; ++j) {
        double sum = 0;
        size_t n = 0;
        for (const auto& row : x) {
            if (!std::isnan(row[j])) {
                sum += row[j];
                ++n;
            }
        }
        m.means[j] = n > 0 ? sum / static_cast<double>(n) : 0;
        double ss = 0;
        for (const auto& row : x) {
            const double v = std::isnan(row[j]) ? m.means[j] : row[j];
            ss += (v - m.means[j]) * (v - m.means[j]);
        }
        const double sd = std::sqrt(ss / static_cast<double>(x.size()));
        m.scales[j] = sd < 1e-12 ? 1 : sd;
    }
}

double standardise(const LogisticModel& m, size_t j, double v) {
    return ((std::isnan(v) ? m.means[j] : v) - m.means[j]) / m.scales[j];
}

}  // namespace

Result<LogisticModel> fit_logistic(const std::vector<std::vector<double>>& x,
                                   const std::vector<int>& y, const LogisticParams& params) {
    if (x.empty() || x.size() != y.size() || x[0].empty()) {
        return error(Errc::kInvalidArgument, "training needs rows with features and labels");
    }
    const size_t n = x.size();
    const size_t p = x[0].size();
    for (const auto& row : x) {
        if (row.size() != p) {
            return error(Errc::kInvalidArgument, "training rows of different widths");
        }
    }
    LogisticModel model;
    fit_standardiser(x, model);

    // Column 0 is the intercept.
    Eigen::MatrixXd design(n, p + 1);
    Eigen::VectorXd labels(n);
    for (size_t i = 0; i < n; ++i) {
        design(i, 0) = 1;
        for (size_t j = 0; j < p; ++j) {
            design(i, j + 1) = standardise(model, j, x[i][j]);
        }
        labels(i) = y[i] != 0 ? 1 : 0;
    }
    Eigen::VectorXd penalty = Eigen::VectorXd::Constant(p + 1, params.l2);
    penalty(0) = 0;

    Eigen::VectorXd beta = Eigen::VectorXd::Zero(p + 1);
    for (model.iterations = 1; model.iterations <= kMaxNewtonIterations; ++model.iterations) {
        const Eigen::VectorXd eta = design * beta;
        const Eigen::VectorXd prob = (1 + (-eta.array()).exp()).inverse().matrix();
        const Eigen::VectorXd w = (prob.array() * (1 - prob.array())).matrix();
        const Eigen::VectorXd gradient =
            design.transpose() * (prob - labels) + penalty.cwiseProduct(beta);
        Eigen::MatrixXd hessian = design.transpose() * w.asDiagonal() * design;
        hessian.diagonal() += penalty;
        // The intercept's diagonal entry is sum p(1-p) > 0 and the rest carry l2 > 0, so the
        // Hessian is positive definite and LDLT is exact.
        const Eigen::VectorXd step = hessian.ldlt().solve(gradient);
        beta -= step;
        if (step.cwiseAbs().maxCoeff() < params.tolerance) {
            break;
        }
    }
    if (model.iterations > kMaxNewtonIterations || !beta.allFinite()) {
        return error(Errc::kInternal, "logistic regression did not converge");
    }
    model.intercept = beta(0);
    model.weights.assign(beta.data() + 1, beta.data() + 1 + p);
    return model;
}

double predict_probability(const LogisticModel& model, const std::vector<double>& row) {
    double eta = model.intercept;
    for (size_t j = 0; j < model.weights.size(); ++j) {
        eta += model.weights[j] * standardise(model, j, row[j]);
    }
    return 1 / (1 + std::exp(-eta));
}

std::optional<double> auc(const std::vector<double>& scores, const std::vector<int>& labels) {
    const size_t n = scores.size();
    std::vector<size_t> order(n);
    for (size_t i = 0; i < n; ++i) {
        order[i] = i;
    }
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return scores[a] < scores[b] || (scores[a] == scores[b] && a < b);
    });
    double rank_sum = 0;
    size_t positives = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && scores[order[j]] == scores[order[i]]) {
            ++j;
        }
        const double mean_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
        for (size_t k = i; k < j; ++k) {
            if (labels[order[k]] != 0) {
                rank_sum += mean_rank;
                ++positives;
            }
        }
        i = j;
    }
    const size_t negatives = n - positives;
    if (n < kMinAucRows || positives < kMinAucRowsPerClass || negatives < kMinAucRowsPerClass) {
        return std::nullopt;
    }
    const double pos = static_cast<double>(positives);
    return (rank_sum - pos * (pos + 1) / 2) / (pos * static_cast<double>(negatives));
}

Split stratified_split(const std::vector<int>& labels, double train_fraction, uint64_t seed) {
    std::mt19937_64 rng(seed);
    Split split;
    for (int cls : {0, 1}) {
        std::vector<size_t> rows;
        for (size_t i = 0; i < labels.size(); ++i) {
            if ((labels[i] != 0 ? 1 : 0) == cls) {
                rows.push_back(i);
            }
        }
        for (size_t i = rows.size(); i > 1; --i) {
            std::swap(rows[i - 1], rows[rng() % i]);
        }
        const auto n_train =
            static_cast<size_t>(std::llround(train_fraction * static_cast<double>(rows.size())));
        split.train.insert(split.train.end(), rows.begin(), rows.begin() + n_train);
        split.test.insert(split.test.end(), rows.begin() + n_train, rows.end());
    }
    std::sort(split.train.begin(), split.train.end());
    std::sort(split.test.begin(), split.test.end());
    return split;
}

namespace {

Result<size_t> numeric_column(const DatasetSchema& s, const std::string& name) {
    const std::optional<size_t> idx = s.column_index(name);
    if (!idx) {
        return error(Errc::kInvalidArgument, "dataset " + s.name + " has no column " + name);
    }
    const ColumnType t = s.columns[*idx].type;
    if (t != ColumnType::kInt && t != ColumnType::kDecimal && t != ColumnType::kBool) {
        return error(Errc::kInvalidArgument,
                     "dataset " + s.name + ": column " + name + " is not numeric");
    }
    return *idx;
}

double as_double(const Value& v) {
    if (const auto* i = std::get_if<int64_t>(&v)) {
        return static_cast<double>(*i);
    }
    if (const auto* d = std::get_if<double>(&v)) {
        return *d;
    }
    if (const auto* b = std::get_if<bool>(&v)) {
        return *b ? 1 : 0;
    }
    return std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

Status table_to_matrix(const Table& table, const LogisticParams& params,
                       std::vector<std::vector<double>>& x, std::vector<int>& y) {
    std::vector<size_t> cols;
    for (const std::string& f : params.features) {
        COFFER_ASSIGN_OR_RETURN(size_t idx, numeric_column(table.schema, f));
        cols.push_back(idx);
    }
    COFFER_ASSIGN_OR_RETURN(size_t label, numeric_column(table.schema, params.label));
    x.clear();
    y.clear();
    for (const Row& row : table.rows) {
        if (is_null(row[label])) {
            return error(Errc::kInvalidArgument,
                         "dataset " + table.schema.name + ": a row has no " + params.label);
        }
        std::vector<double> features;
        for (size_t c : cols) {
            features.push_back(as_double(row[c]));
        }
        x.push_back(std::move(features));
        y.push_back(as_double(row[label]) > params.label_threshold ? 1 : 0);
    }
    return Status();
}

}  // namespace coffer::cleanroom
