#include "cleanroom/aml.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <tuple>
#include <unordered_map>

#include "cleanroom/json_util.h"
#include "common/check.h"

namespace coffer::cleanroom {

using nlohmann::json;

std::vector<std::string> aml_flag_names(uint32_t flags) {
    std::vector<std::string> out;
    if (flags & kFlagCycle) {
        out.emplace_back("cycle");
    }
    if (flags & kFlagFanIn) {
        out.emplace_back("fan_in");
    }
    if (flags & kFlagFanOut) {
        out.emplace_back("fan_out");
    }
    if (flags & kFlagPassThrough) {
        out.emplace_back("pass_through");
    }
    return out;
}

namespace {

Status parse_window_params(const json& p, AmlParams& out) {
    constexpr std::string_view kWhat = "params";
    auto integer = [&](const char* key, int64_t& field, int64_t min, int64_t max) -> Status {
        if (!p.contains(key)) {
            return Status();
        }
        COFFER_ASSIGN_OR_RETURN(field, detail::get_integer(p, kWhat, key));
        if (field < min || field > max) {
            return error(Errc::kInvalidArgument, std::string("params.") + key + " must be in [" +
                                                     std::to_string(min) + ", " +
                                                     std::to_string(max) + "]");
        }
        return Status();
    };
    int64_t max_length = out.cycle_max_length;
    COFFER_RETURN_IF_ERROR(
        integer("cycle_max_length", max_length, kMinCycleLength, kMaxCycleLength));
    out.cycle_max_length = static_cast<int>(max_length);
    COFFER_RETURN_IF_ERROR(integer("cycle_window", out.cycle_window, 0, 1'000'000'000));
    COFFER_RETURN_IF_ERROR(integer("fan_degree", out.fan_degree, 2, 1'000'000));
    COFFER_RETURN_IF_ERROR(integer("fan_window", out.fan_window, 0, 1'000'000'000));
    COFFER_RETURN_IF_ERROR(
        integer("pass_through_window", out.pass_through_window, 0, 1'000'000'000));
    return Status();
}

Status parse_other_params(const json& p, AmlParams& out) {
    constexpr std::string_view kWhat = "params";
    for (auto [key, field] :
         {std::pair{"cycles", &out.cycles}, std::pair{"fan_in", &out.fan_in},
          std::pair{"fan_out", &out.fan_out}, std::pair{"pass_through", &out.pass_through}}) {
        if (p.contains(key)) {
            COFFER_ASSIGN_OR_RETURN(*field, detail::get_bool(p, kWhat, key));
        }
    }
    for (auto [key, field] : {std::pair{"pass_through_ratio_min", &out.pass_through_ratio_min},
                              std::pair{"pass_through_ratio_max", &out.pass_through_ratio_max},
                              std::pair{"pass_through_min_amount", &out.pass_through_min_amount}}) {
        if (p.contains(key)) {
            COFFER_ASSIGN_OR_RETURN(*field, detail::get_number(p, kWhat, key));
        }
    }
    if (!(out.pass_through_ratio_min >= 0 &&
          out.pass_through_ratio_min <= out.pass_through_ratio_max)) {
        return error(Errc::kInvalidArgument,
                     "params: need 0 <= pass_through_ratio_min <= pass_through_ratio_max");
    }
    for (auto [key, field] : {std::pair{"tx_id_column", &out.tx_id_column},
                              std::pair{"account_column", &out.account_column},
                              std::pair{"counterparty_column", &out.counterparty_column},
                              std::pair{"direction_column", &out.direction_column},
                              std::pair{"amount_column", &out.amount_column},
                              std::pair{"time_column", &out.time_column}}) {
        if (p.contains(key)) {
            COFFER_ASSIGN_OR_RETURN(*field, detail::get_string(p, kWhat, key));
        }
    }
    return Status();
}

}  // namespace

Result<AmlParams> parse_aml_params(const json& params) {
    const std::initializer_list<std::string_view> keys = {"cycles",
                                                          "cycle_max_length",
                                                          "cycle_window",
                                                          "fan_in",
                                                          "fan_out",
                                                          "fan_degree",
                                                          "fan_window",
                                                          "pass_through",
                                                          "pass_through_window",
                                                          "pass_through_ratio_min",
                                                          "pass_through_ratio_max",
                                                          "pass_through_min_amount",
                                                          "tx_id_column",
                                                          "account_column",
                                                          "counterparty_column",
                                                          "direction_column",
                                                          "amount_column",
                                                          "time_column"};
    COFFER_RETURN_IF_ERROR(detail::check_keys(params, "params", {}, keys));
    AmlParams out;
    COFFER_RETURN_IF_ERROR(parse_window_params(params, out));
    COFFER_RETURN_IF_ERROR(parse_other_params(params, out));
    return out;
}

namespace {

struct LegColumns {
    size_t tx_id, account, counterparty, direction, amount, time;
};

Result<LegColumns> find_leg_columns(const DatasetSchema& s, const AmlParams& p) {
    auto find = [&](const std::string& name, std::initializer_list<ColumnType> types,
                    size_t& out) -> Status {
        const std::optional<size_t> idx = s.column_index(name);
        if (!idx) {
            return error(Errc::kInvalidArgument, "dataset " + s.name + " has no column " + name);
        }
        if (std::find(types.begin(), types.end(), s.columns[*idx].type) == types.end()) {
            return error(Errc::kInvalidArgument, "dataset " + s.name + ": column " + name +
                                                     " has the wrong type for an AML leg");
        }
        out = *idx;
        return Status();
    };
    using T = ColumnType;
    LegColumns c{};
    COFFER_RETURN_IF_ERROR(find(p.tx_id_column, {T::kInt, T::kString}, c.tx_id));
    COFFER_RETURN_IF_ERROR(find(p.account_column, {T::kInt, T::kString}, c.account));
    COFFER_RETURN_IF_ERROR(find(p.counterparty_column, {T::kInt, T::kString}, c.counterparty));
    COFFER_RETURN_IF_ERROR(find(p.direction_column, {T::kString}, c.direction));
    COFFER_RETURN_IF_ERROR(find(p.amount_column, {T::kDecimal, T::kInt}, c.amount));
    COFFER_RETURN_IF_ERROR(find(p.time_column, {T::kInt}, c.time));
    return c;
}

class GraphBuilder {
  public:
    Status add_leg(const std::string& table, const Row& row, const LegColumns& c) {
        for (size_t idx : {c.tx_id, c.account, c.counterparty, c.direction, c.amount, c.time}) {
            if (is_null(row[idx])) {
                return error(Errc::kInvalidArgument, "dataset " + table + ": a leg has a NULL");
            }
        }
        const std::string& direction = std::get<std::string>(row[c.direction]);
        if (direction != "out" && direction != "in") {
            return error(Errc::kInvalidArgument,
                         "dataset " + table + ": direction must be \"out\" or \"in\"");
        }
        const uint32_t own = intern(row[c.account]);
        const uint32_t other = intern(row[c.counterparty]);
        AmlEdge edge;
        edge.src = direction == "out" ? own : other;
        edge.dst = direction == "out" ? other : own;
        const Value& amount = row[c.amount];
        edge.amount = std::holds_alternative<double>(amount)
                          ? std::get<double>(amount)
                          : static_cast<double>(std::get<int64_t>(amount));
        edge.time = std::get<int64_t>(row[c.time]);

        const std::string tx = *value_key(row[c.tx_id]);
        auto [it, inserted] = tx_index_.emplace(tx, graph_.edges.size());
        if (inserted) {
            graph_.edges.push_back(edge);
            return Status();
        }
        const AmlEdge& seen = graph_.edges[it->second];
        if (seen.src != edge.src || seen.dst != edge.dst || seen.amount != edge.amount ||
            seen.time != edge.time) {
            return error(Errc::kInvalidArgument,
                         "transfer " + tx + " is reported differently by two legs");
        }
        return Status();
    }

    AmlGraph take() { return std::move(graph_); }

  private:
    uint32_t intern(const Value& v) {
        auto [it, inserted] =
            account_index_.emplace(*value_key(v), static_cast<uint32_t>(graph_.accounts.size()));
        if (inserted) {
            graph_.accounts.push_back(v);
        }
        return it->second;
    }

    AmlGraph graph_;
    std::unordered_map<std::string, uint32_t> account_index_;
    std::unordered_map<std::string, size_t> tx_index_;
};

}  // namespace

Result<AmlGraph> graph_from_legs(const std::vector<const Table*>& tables, const AmlParams& params) {
    GraphBuilder builder;
    for (const Table* t : tables) {
        COFFER_ASSIGN_OR_RETURN(LegColumns cols, find_leg_columns(t->schema, params));
        for (const Row& row : t->rows) {
            COFFER_RETURN_IF_ERROR(builder.add_leg(t->schema.name, row, cols));
        }
    }
    return builder.take();
}

namespace {

// Edges of each account sorted by time (compressed sparse rows).
struct Adjacency {
    std::vector<size_t> start;  // size accounts + 1
    std::vector<uint32_t> other;
    std::vector<int64_t> time;
    std::vector<double> amount;

    size_t begin(uint32_t v) const { return start[v]; }
    size_t end(uint32_t v) const { return start[v + 1]; }
    // First edge of v at or after time t.
    size_t lower(uint32_t v, int64_t t) const {
        return static_cast<size_t>(
            std::lower_bound(time.begin() + static_cast<ptrdiff_t>(start[v]),
                             time.begin() + static_cast<ptrdiff_t>(start[v + 1]), t) -
            time.begin());
    }
};

Adjacency build_adjacency(const AmlGraph& g, bool outgoing) {
    const size_t n = g.accounts.size();
    std::vector<size_t> order(g.edges.size());
    for (size_t i = 0; i < order.size(); ++i) {
        order[i] = i;
    }
    auto owner = [&](const AmlEdge& e) { return outgoing ? e.src : e.dst; };
    auto peer = [&](const AmlEdge& e) { return outgoing ? e.dst : e.src; };
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const AmlEdge& x = g.edges[a];
        const AmlEdge& y = g.edges[b];
        return std::make_tuple(owner(x), x.time, peer(x), a) <
               std::make_tuple(owner(y), y.time, peer(y), b);
    });
    Adjacency adj;
    adj.start.assign(n + 1, 0);
    for (const AmlEdge& e : g.edges) {
        ++adj.start[owner(e) + 1];
    }
    for (size_t v = 0; v < n; ++v) {
        adj.start[v + 1] += adj.start[v];
    }
    for (size_t i : order) {
        adj.other.push_back(peer(g.edges[i]));
        adj.time.push_back(g.edges[i].time);
        adj.amount.push_back(g.edges[i].amount);
    }
    return adj;
}

// Depth-first search for time-respecting cycles through a start account, pruned by the
// window and the length bound; flags every account of each cycle found.
class CycleSearch {
  public:
    CycleSearch(const Adjacency& out, const AmlParams& p, std::vector<uint32_t>& flags)
        : out_(out), p_(p), flags_(flags) {}

    Status run(const AmlGraph& g) {
        for (const AmlEdge& e : g.edges) {
            if (e.src == e.dst) {
                continue;
            }
            path_[0] = e.src;
            path_[1] = e.dst;
            start_time_ = e.time;
            COFFER_RETURN_IF_ERROR(extend(2, e.time));
        }
        return Status();
    }

  private:
    // path_[0..len) holds the accounts so far; the last transfer happened at `now`.
    Status extend(int len, int64_t now) {
        // cycle_max_length is validated to at most kMaxCycleLength, so the recursion stops
        // there; saying so also lets the compiler see that path_ is never overrun.
        COFFER_CHECK(len >= 1 && len <= kMaxCycleLength, "cycle search deeper than its bound");
        const uint32_t u = path_[len - 1];
        const int64_t deadline = start_time_ + p_.cycle_window;
        for (size_t i = out_.lower(u, now); i < out_.end(u) && out_.time[i] <= deadline; ++i) {
            if (++steps_ > kMaxCycleSearchSteps) {
                return error(Errc::kResourceExhausted,
                             "cycle search passed " + std::to_string(kMaxCycleSearchSteps) +
                                 " steps; use a smaller cycle_window or cycle_max_length");
            }
            const uint32_t w = out_.other[i];
            if (w == path_[0]) {
                for (int k = 0; k < len; ++k) {
                    flags_[path_[k]] |= kFlagCycle;
                }
                continue;
            }
            if (len >= p_.cycle_max_length || std::find(path_, path_ + len, w) != path_ + len) {
                continue;
            }
            path_[len] = w;
            COFFER_RETURN_IF_ERROR(extend(len + 1, out_.time[i]));
        }
        return Status();
    }

    const Adjacency& out_;
    const AmlParams& p_;
    std::vector<uint32_t>& flags_;
    uint32_t path_[kMaxCycleLength + 1] = {};
    int64_t start_time_ = 0;
    uint64_t steps_ = 0;
};

// True if some window [t, t + window] of v's edges has >= degree distinct peers.
bool has_fan(const Adjacency& adj, uint32_t v, int64_t window, int64_t degree,
             std::unordered_map<uint32_t, int>& counts) {
    counts.clear();
    size_t hi = adj.begin(v);
    for (size_t lo = adj.begin(v); lo < adj.end(v); ++lo) {
        while (hi < adj.end(v) && adj.time[hi] <= adj.time[lo] + window) {
            ++counts[adj.other[hi]];
            ++hi;
        }
        if (static_cast<int64_t>(counts.size()) >= degree) {
            return true;
        }
        if (--counts[adj.other[lo]] == 0) {
            counts.erase(adj.other[lo]);
        }
    }
    return false;
}

// Sum of v's edge amounts with time in [from, to].
double amount_between(const Adjacency& adj, uint32_t v, int64_t from, int64_t to) {
    double sum = 0;
    for (size_t i = adj.lower(v, from); i < adj.end(v) && adj.time[i] <= to; ++i) {
        sum += adj.amount[i];
    }
    return sum;
}

bool is_pass_through(const Adjacency& in, const Adjacency& out, uint32_t v, const AmlParams& p) {
    for (size_t i = in.begin(v); i < in.end(v); ++i) {
        const int64_t from = in.time[i];
        const int64_t to = from + p.pass_through_window;
        const double money_in = amount_between(in, v, from, to);
        const double money_out = amount_between(out, v, from, to);
        if (money_in >= p.pass_through_min_amount && money_out >= p.pass_through_min_amount &&
            money_out >= p.pass_through_ratio_min * money_in &&
            money_out <= p.pass_through_ratio_max * money_in) {
            return true;
        }
    }
    return false;
}

}  // namespace

Result<std::vector<uint32_t>> run_aml(const AmlGraph& graph, const AmlParams& params) {
    std::vector<uint32_t> flags(graph.accounts.size(), 0);
    const Adjacency out = build_adjacency(graph, true);
    const Adjacency in = build_adjacency(graph, false);
    if (params.cycles) {
        CycleSearch search(out, params, flags);
        COFFER_RETURN_IF_ERROR(search.run(graph));
    }
    std::unordered_map<uint32_t, int> counts;
    for (uint32_t v = 0; v < graph.accounts.size(); ++v) {
        if (params.fan_in && has_fan(in, v, params.fan_window, params.fan_degree, counts)) {
            flags[v] |= kFlagFanIn;
        }
        if (params.fan_out && has_fan(out, v, params.fan_window, params.fan_degree, counts)) {
            flags[v] |= kFlagFanOut;
        }
        if (params.pass_through && is_pass_through(in, out, v, params)) {
            flags[v] |= kFlagPassThrough;
        }
    }
    return flags;
}

}  // namespace coffer::cleanroom
