// Anti-money-laundering analyses over a transaction graph joined from several banks.
//
// Input datasets hold transfer LEGS as each bank sees them, one row per transfer and own
// account (column names configurable in the parameters, defaults shown):
//   tx_id (int or string, the payment's end-to-end reference both banks know),
//   account (the bank's own account: the entity column), counterparty, direction ("out" for
//   a debit of `account`, "in" for a credit), amount (decimal), ts (int, time step).
// A transfer between two banks appears once at each bank, a transfer inside one bank twice;
// the joint graph has each tx_id once (legs that disagree on src, dst, amount or time refuse
// the run).
//
// Flags per account (all windows are inclusive spans of time steps, [t, t + window]):
// - cycle: on a simple time-respecting cycle of 2..6 transfers e1..ek (each next transfer no
//   earlier than the previous one, t(ek) - t(e1) <= cycle_window, back to the first account);
// - fan_in / fan_out: >= fan_degree distinct counterparties sending to / receiving from the
//   account within one fan_window;
// - pass_through: for some incoming transfer at time t, the money in and out of the account
//   within [t, t + pass_through_window] are both >= pass_through_min_amount and
//   out / in lies in [pass_through_ratio_min, pass_through_ratio_max].
// All functions are pure and thread-safe.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "cleanroom/schema.h"
#include "common/result.h"

namespace coffer::cleanroom {

// Upper bound on DFS expansions of one cycle search, so that a dense graph with a wide
// window fails clearly instead of running for hours.
constexpr uint64_t kMaxCycleSearchSteps = 200'000'000;
constexpr int kMinCycleLength = 2;
constexpr int kMaxCycleLength = 6;

enum AmlFlag : uint32_t {
    kFlagCycle = 1,
    kFlagFanIn = 2,
    kFlagFanOut = 4,
    kFlagPassThrough = 8,
};

// "cycle", "fan_in", "fan_out", "pass_through" for the bits set, in that order.
std::vector<std::string> aml_flag_names(uint32_t flags);

struct AmlParams {
    bool cycles = true;
    int cycle_max_length = kMaxCycleLength;
    int64_t cycle_window = 20;
    bool fan_in = true;
    bool fan_out = true;
    int64_t fan_degree = 5;
    int64_t fan_window = 20;
    bool pass_through = false;
    int64_t pass_through_window = 2;
    double pass_through_ratio_min = 0.9;
    double pass_through_ratio_max = 1.0;
    double pass_through_min_amount = 1000;
    // Leg column names.
    std::string tx_id_column = "tx_id";
    std::string account_column = "account";
    std::string counterparty_column = "counterparty";
    std::string direction_column = "direction";
    std::string amount_column = "amount";
    std::string time_column = "ts";
};

// Parses the "params" object of an AML analysis: every member optional (defaults above),
// unknown members refused. Errors: kInvalidArgument naming the member.
Result<AmlParams> parse_aml_params(const nlohmann::json& params);

struct AmlEdge {
    uint32_t src = 0;
    uint32_t dst = 0;
    double amount = 0;
    int64_t time = 0;
};

// A transfer graph over dense account indices; accounts[i] is the account's value.
struct AmlGraph {
    std::vector<Value> accounts;
    std::vector<AmlEdge> edges;
};

// Joins the legs of `tables` into one graph, each tx_id once. Errors: kInvalidArgument for a
// missing or mistyped column, a NULL, a direction other than out/in, or two legs of one
// tx_id that disagree.
Result<AmlGraph> graph_from_legs(const std::vector<const Table*>& tables, const AmlParams& params);

// Flags (AmlFlag bits) per account index of `graph`. Errors: kResourceExhausted when the
// cycle search passes kMaxCycleSearchSteps.
Result<std::vector<uint32_t>> run_aml(const AmlGraph& graph, const AmlParams& params);

}  // namespace coffer::cleanroom
