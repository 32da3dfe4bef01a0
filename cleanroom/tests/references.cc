#include "cleanroom/tests/references.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>

namespace coffer::cleanroom::reference {
namespace {

constexpr int kMaxFitIterations = 200;
constexpr double kFitTolerance = 1e-13;

using Adjacency = std::map<int64_t, std::vector<size_t>>;

// Marks every account of every cycle that starts with `first`, by extending all paths one
// transfer at a time.
void cycles_from(const std::vector<Transfer>& txs, const Adjacency& out_edges,
                 const Transfer& first, const AmlRules& rules,
                 std::map<int64_t, std::set<std::string>>& flags) {
    struct Path {
        std::vector<int64_t> accounts;
        int64_t last_time;
    };
    std::vector<Path> frontier = {{{first.src, first.dst}, first.time}};
    while (!frontier.empty()) {
        std::vector<Path> next;
        for (const Path& path : frontier) {
            const auto found = out_edges.find(path.accounts.back());
            if (found == out_edges.end()) {
                continue;
            }
            for (size_t e : found->second) {
                const Transfer& t = txs[e];
                if (t.time < path.last_time || t.time > first.time + rules.cycle_window) {
                    continue;
                }
                if (t.dst == first.src) {
                    for (int64_t a : path.accounts) {
                        flags[a].insert("cycle");
                    }
                } else if (path.accounts.size() < rules.cycle_max_length &&
                           std::count(path.accounts.begin(), path.accounts.end(), t.dst) == 0) {
                    Path longer = path;
                    longer.accounts.push_back(t.dst);
                    longer.last_time = t.time;
                    next.push_back(std::move(longer));
                }
            }
        }
        frontier = std::move(next);
    }
}

// Flags every account of `edges` with `name` when some window holds enough counterparties.
void fans(const std::vector<Transfer>& txs, const Adjacency& edges, bool incoming,
          const AmlRules& rules, const char* name,
          std::map<int64_t, std::set<std::string>>& flags) {
    for (const auto& [account, list] : edges) {
        for (size_t anchor : list) {
            std::set<int64_t> peers;
            for (size_t e : list) {
                if (txs[e].time >= txs[anchor].time &&
                    txs[e].time <= txs[anchor].time + rules.fan_window) {
                    peers.insert(incoming ? txs[e].src : txs[e].dst);
                }
            }
            if (static_cast<int64_t>(peers.size()) >= rules.fan_degree) {
                flags[account].insert(name);
                break;
            }
        }
    }
}

// Column j imputed and standardised into z[.][j + 1].
void standardise_column(const std::vector<std::vector<double>>& x, size_t j,
                        std::vector<std::vector<double>>& z) {
    const size_t n = x.size();
    double sum = 0;
    double count = 0;
    for (size_t i = 0; i < n; ++i) {
        if (!std::isnan(x[i][j])) {
            sum += x[i][j];
            count += 1;
        }
    }
    const double mean = count > 0 ? sum / count : 0;
    double var = 0;
    for (size_t i = 0; i < n; ++i) {
        const double v = std::isnan(x[i][j]) ? mean : x[i][j];
        var += (v - mean) * (v - mean) / static_cast<double>(n);
    }
    const double sd = std::sqrt(var) < 1e-12 ? 1 : std::sqrt(var);
    for (size_t i = 0; i < n; ++i) {
        z[i][j + 1] = ((std::isnan(x[i][j]) ? mean : x[i][j]) - mean) / sd;
    }
}

// The Newton system [Hessian | gradient] of the penalised log-loss at beta.
std::vector<std::vector<double>> newton_system(const std::vector<std::vector<double>>& z,
                                               const std::vector<int>& y,
                                               const std::vector<double>& beta, double l2) {
    const size_t p = beta.size() - 1;
    std::vector<std::vector<double>> a(p + 1, std::vector<double>(p + 2, 0.0));
    for (size_t i = 0; i < z.size(); ++i) {
        double eta = 0;
        for (size_t k = 0; k <= p; ++k) {
            eta += z[i][k] * beta[k];
        }
        const double pr = 1 / (1 + std::exp(-eta));
        for (size_t r = 0; r <= p; ++r) {
            a[r][p + 1] += z[i][r] * (pr - y[i]);
            for (size_t c = 0; c <= p; ++c) {
                a[r][c] += z[i][r] * z[i][c] * pr * (1 - pr);
            }
        }
    }
    for (size_t r = 1; r <= p; ++r) {
        a[r][r] += l2;
        a[r][p + 1] += l2 * beta[r];
    }
    return a;
}

// Gauss-Jordan elimination with partial pivoting, in place: afterwards row k reads
// a[k][k] * step_k = a[k][last].
void gauss_jordan(std::vector<std::vector<double>>& a) {
    const size_t m = a.size();
    for (size_t col = 0; col < m; ++col) {
        size_t pivot = col;
        for (size_t r = col + 1; r < m; ++r) {
            if (std::fabs(a[r][col]) > std::fabs(a[pivot][col])) {
                pivot = r;
            }
        }
        std::swap(a[col], a[pivot]);
        for (size_t r = 0; r < m; ++r) {
            if (r != col) {
                const double f = a[r][col] / a[col][col];
                for (size_t c = col; c <= m; ++c) {
                    a[r][c] -= f * a[col][c];
                }
            }
        }
    }
}

}  // namespace

std::map<int64_t, std::set<std::string>> aml_flags(const std::vector<Transfer>& transfers,
                                                   const AmlRules& rules) {
    Adjacency out_edges;
    Adjacency in_edges;
    for (size_t i = 0; i < transfers.size(); ++i) {
        out_edges[transfers[i].src].push_back(i);
        in_edges[transfers[i].dst].push_back(i);
    }

    std::map<int64_t, std::set<std::string>> flags;
    for (const Transfer& first : transfers) {
        if (first.src != first.dst) {
            cycles_from(transfers, out_edges, first, rules, flags);
        }
    }
    fans(transfers, in_edges, true, rules, "fan_in", flags);
    fans(transfers, out_edges, false, rules, "fan_out", flags);
    return flags;
}

std::vector<double> logistic_fit(const std::vector<std::vector<double>>& x,
                                 const std::vector<int>& y, double l2) {
    const size_t n = x.size();
    const size_t p = x[0].size();
    std::vector<std::vector<double>> z(n, std::vector<double>(p + 1, 1.0));
    for (size_t j = 0; j < p; ++j) {
        standardise_column(x, j, z);
    }

    std::vector<double> beta(p + 1, 0.0);
    for (int iter = 0; iter < kMaxFitIterations; ++iter) {
        std::vector<std::vector<double>> a = newton_system(z, y, beta, l2);
        gauss_jordan(a);
        double biggest = 0;
        for (size_t k = 0; k <= p; ++k) {
            const double step = a[k][p + 1] / a[k][k];
            beta[k] -= step;
            biggest = std::max(biggest, std::fabs(step));
        }
        if (biggest < kFitTolerance) {
            break;
        }
    }
    return beta;
}

uint64_t fnv1a64(const std::string& text) {
    uint64_t hash = 1469598103934665603ULL;
    for (char c : text) {
        hash = (hash ^ static_cast<uint8_t>(c)) * 1099511628211ULL;
    }
    return hash;
}

std::vector<size_t> training_rows(const std::vector<int>& labels, double train_fraction,
                                  uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<size_t> train;
    for (int positive : {0, 1}) {
        std::vector<size_t> members;
        for (size_t i = 0; i < labels.size(); ++i) {
            if ((labels[i] != 0) == (positive == 1)) {
                members.push_back(i);
            }
        }
        for (size_t i = members.size(); i-- > 1;) {
            const size_t j = static_cast<size_t>(rng() % (i + 1));
            std::swap(members[i], members[j]);
        }
        const double wanted = std::round(train_fraction * static_cast<double>(members.size()));
        const auto take = static_cast<size_t>(wanted);
        train.insert(train.end(), members.begin(), members.begin() + static_cast<long>(take));
    }
    std::sort(train.begin(), train.end());
    return train;
}

std::vector<std::vector<std::string>> split_plain_csv(const std::string& text) {
    std::vector<std::vector<std::string>> lines;
    for (size_t start = 0; start < text.size();) {
        const size_t end = std::min(text.find('\n', start), text.size());
        std::string line = text.substr(start, end - start);
        start = end + 1;
        if (line.empty()) {
            continue;
        }
        std::vector<std::string> fields;
        for (size_t s = 0; s <= line.size();) {
            const size_t c = std::min(line.find(',', s), line.size());
            fields.push_back(line.substr(s, c - s));
            s = c + 1;
        }
        lines.push_back(std::move(fields));
    }
    return lines;
}

}  // namespace coffer::cleanroom::reference
