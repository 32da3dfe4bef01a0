// Independent references for the clean-room analyses, shared by the engine tests
// (cleanroom/tests) and the end-to-end scenario tests (tests/cleanroom_scenarios_test.cc).
//
// They are written from the rules in docs/cleanroom-engine.md and share no code with the
// engine (cleanroom/aml.cc, train.cc, samples.cc): a result that equals a reference is
// therefore evidence that the engine implements the documented rule, not that it agrees
// with itself. They favour plainness over speed (breadth-first path expansion over unsorted
// lists, brute-force windows, Gauss-Jordan elimination).
// All functions are pure and thread-safe. Test-only: never linked into the product.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace coffer::cleanroom::reference {

// One transfer of money from src to dst at time step `time`.
struct Transfer {
    int64_t src = 0;
    int64_t dst = 0;
    double amount = 0;
    int64_t time = 0;
};

struct AmlRules {
    int64_t cycle_window = 10;
    // Cycles of 2..cycle_max_length transfers.
    size_t cycle_max_length = 6;
    int64_t fan_degree = 8;
    int64_t fan_window = 30;
};

// Flags per account ("cycle", "fan_in", "fan_out"; pass-through is not covered) by the rules
// of docs/cleanroom-engine.md: a cycle is a simple time-respecting cycle whose last transfer
// is at most cycle_window after its first; a fan is >= fan_degree distinct counterparties in
// one window [t, t + fan_window] of the account's own transfers. Accounts without a flag are
// absent. Cost: exponential in cycle_max_length on dense graphs; meant for AMLSim-sized
// samples (seconds).
std::map<int64_t, std::set<std::string>> aml_flags(const std::vector<Transfer>& transfers,
                                                   const AmlRules& rules);

// An L2-regularised logistic regression fitted plainly: NaN features imputed with the mean
// of the observed values of the column, every column standardised with its mean and
// population standard deviation (1 below 1e-12), then Newton's method from zero with
// Gauss-Jordan elimination until the largest step is below 1e-13 (at most 200 iterations);
// the intercept is not penalised. Needs at least one row, equal widths and labels 0/1.
// Returns {intercept, weights on the standardised features...}.
std::vector<double> logistic_fit(const std::vector<std::vector<double>>& x,
                                 const std::vector<int>& y, double l2);

// The 64-bit FNV-1a hash of `text` (the engine's per-dataset split seed is
// seed XOR fnv1a64(dataset name)).
// The lines of plain comma-separated text (no quoting), each cut at every comma; empty lines
// are skipped. For the tests' own reading of data files, independent of cleanroom/csv.cc.
std::vector<std::vector<std::string>> split_plain_csv(const std::string& text);

uint64_t fnv1a64(const std::string& text);

// The training rows of the documented stratified split, sorted: for class 0 then class 1,
// that class's row indices in order, shuffled by Fisher-Yates from the last index down with
// std::mt19937_64(seed) taking rng() % (i + 1); the first round(train_fraction * class size)
// of each class train. A label is positive when it is not 0.
std::vector<size_t> training_rows(const std::vector<int>& labels, double train_fraction,
                                  uint64_t seed);

}  // namespace coffer::cleanroom::reference
