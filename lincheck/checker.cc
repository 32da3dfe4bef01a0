#include "lincheck/checker.h"

#include <fmt/format.h>

#include <map>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "lincheck/register_search.h"

namespace coffer::lincheck {

std::string_view verdict_name(Verdict verdict) {
    switch (verdict) {
        case Verdict::kLinearizable:
            return "linearizable";
        case Verdict::kViolation:
            return "violation";
        case Verdict::kInconclusive:
            return "inconclusive";
    }
    return "invalid";
}

std::string CheckResult::summary() const {
    std::string out =
        fmt::format("{}: {} keys, {} operations judged, {} search steps", verdict_name(verdict),
                    keys_checked, operations_judged, search_steps);
    for (const KeyViolation& violation : violations) {
        out += "\n  " + violation.explanation;
    }
    for (const std::string& key : inconclusive_keys) {
        out += fmt::format("\n  key '{}': search bound reached, not decided", key);
    }
    return out;
}

namespace {

// Operations of the explanation's prefix that are spelled out (the last ones).
constexpr size_t kExplainPrefixOps = 3;

// The operations of one key that carry information, in history order.
struct KeyHistory {
    std::vector<const Operation*> ops;
};

bool is_judged(const Operation& op) {
    if (op.outcome == Outcome::kFailed) {
        return false;
    }
    return op.kind == OpKind::kWrite || op.outcome == Outcome::kOk;
}

std::map<std::string_view, KeyHistory> split_by_key(const History& history) {
    std::map<std::string_view, KeyHistory> keys;
    for (const Operation& op : history.operations()) {
        if (is_judged(op)) {
            keys[op.key].ops.push_back(&op);
        }
    }
    return keys;
}

// A write of unknown outcome whose value no read returned can be dropped: in any legal
// sequential history, a read placed right after such a write would return its value, so the
// write is followed by another write or by nothing, and removing it keeps every read legal.
// Dropping it shrinks the search without changing the answer.
std::vector<const Operation*> without_unobserved_unknown_writes(const KeyHistory& key) {
    std::unordered_set<std::string_view> read_values;
    for (const Operation* op : key.ops) {
        if (op->kind == OpKind::kRead && op->value) {
            read_values.insert(*op->value);
        }
    }
    std::vector<const Operation*> kept;
    for (const Operation* op : key.ops) {
        bool unobserved = op->kind == OpKind::kWrite && op->outcome == Outcome::kUnknown &&
                          !read_values.contains(*op->value);
        if (!unobserved) {
            kept.push_back(op);
        }
    }
    return kept;
}

struct InternedKey {
    std::vector<detail::RegisterOp> register_ops;
    std::vector<std::optional<std::string>> values;  // by ValueId; [0] is absent
    const Operation* unwritten_read = nullptr;       // a read of a value no write wrote
};

InternedKey intern(const std::vector<const Operation*>& ops) {
    InternedKey out;
    out.values.push_back(std::nullopt);
    std::unordered_map<std::string_view, detail::ValueId> ids;
    for (const Operation* op : ops) {
        if (op->kind == OpKind::kWrite && ids.emplace(*op->value, out.values.size()).second) {
            out.values.push_back(*op->value);
        }
    }

    for (const Operation* op : ops) {
        detail::RegisterOp reg;
        reg.is_write = op->kind == OpKind::kWrite;
        reg.invoke_ns = op->invoke_ns;
        reg.complete_ns = op->complete_ns;
        reg.pending = op->outcome == Outcome::kUnknown;
        if (op->value) {
            auto it = ids.find(*op->value);
            if (it == ids.end()) {
                out.unwritten_read = out.unwritten_read ? out.unwritten_read : op;
            } else {
                reg.value = it->second;
            }
        }
        out.register_ops.push_back(reg);
    }
    return out;
}

std::string format_value(const std::optional<std::string>& value) {
    return value ? fmt::format("'{}'", *value) : std::string("absent");
}

std::string explain_search(std::string_view key, const Operation& culprit,
                           const std::vector<const Operation*>& prefix,
                           const std::optional<std::string>& value_after, size_t judged) {
    std::string out = fmt::format(
        "key '{}': no linearization can place {}. The longest linearizable prefix found has "
        "{} of {} operations and leaves the value {}",
        key, describe(culprit), prefix.size(), judged, format_value(value_after));
    size_t first = prefix.size() > kExplainPrefixOps ? prefix.size() - kExplainPrefixOps : 0;
    if (first < prefix.size()) {
        out += "; it ends with:";
    }
    for (size_t i = first; i < prefix.size(); ++i) {
        out += " [" + describe(*prefix[i]) + "]";
    }
    return out;
}

// Checks one key; appends to `result`.
void check_key(std::string_view key, const KeyHistory& history, const CheckOptions& options,
               CheckResult& result) {
    std::vector<const Operation*> ops = without_unobserved_unknown_writes(history);
    InternedKey interned = intern(ops);
    if (interned.unwritten_read != nullptr) {
        KeyViolation violation;
        violation.key = std::string(key);
        violation.culprit = interned.unwritten_read->id;
        violation.explanation =
            fmt::format("key '{}': {} returned a value that no write on this key wrote", key,
                        describe(*interned.unwritten_read));
        result.violations.push_back(std::move(violation));
        return;
    }

    detail::SearchReport report = detail::search_register(
        interned.register_ops,
        detail::SearchLimits{options.max_search_steps, options.max_memo_bytes});
    result.search_steps += report.steps;
    if (report.outcome == detail::SearchOutcome::kExhausted) {
        result.inconclusive_keys.emplace_back(key);
        return;
    }
    if (report.outcome == detail::SearchOutcome::kLinearizable) {
        return;
    }

    KeyViolation violation;
    violation.key = std::string(key);
    violation.culprit = ops[report.culprit]->id;
    std::vector<const Operation*> prefix;
    for (size_t index : report.longest_prefix) {
        prefix.push_back(ops[index]);
        violation.longest_prefix.push_back(ops[index]->id);
    }
    violation.value_after_prefix = interned.values[report.value_after_prefix];
    violation.explanation =
        explain_search(key, *ops[report.culprit], prefix, violation.value_after_prefix, ops.size());
    result.violations.push_back(std::move(violation));
}

}  // namespace

Result<CheckResult> check_linearizable(const History& history, const CheckOptions& options) {
    if (options.max_search_steps == 0 || options.max_memo_bytes == 0) {
        return error(Errc::kInvalidArgument, "check limits must be positive");
    }

    CheckResult result;
    for (const auto& [key, key_history] : split_by_key(history)) {
        result.keys_checked += 1;
        result.operations_judged += key_history.ops.size();
        check_key(key, key_history, options, result);
    }

    if (!result.violations.empty()) {
        result.verdict = Verdict::kViolation;
    } else if (!result.inconclusive_keys.empty()) {
        result.verdict = Verdict::kInconclusive;
    }
    return result;
}

}  // namespace coffer::lincheck
