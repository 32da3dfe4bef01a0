#include "lincheck/history.h"

#include <fmt/format.h>

#include <chrono>
#include <utility>

namespace coffer::lincheck {

std::string_view op_kind_name(OpKind kind) {
    switch (kind) {
        case OpKind::kWrite:
            return "write";
        case OpKind::kRead:
            return "read";
    }
    return "invalid";
}

std::string_view outcome_name(Outcome outcome) {
    switch (outcome) {
        case Outcome::kOk:
            return "ok";
        case Outcome::kUnknown:
            return "unknown";
        case Outcome::kFailed:
            return "failed";
    }
    return "invalid";
}

namespace {

std::string quote_value(const std::optional<std::string>& value) {
    return value ? fmt::format("'{}'", *value) : std::string("absent");
}

std::string format_time(int64_t ns) {
    return ns == kNeverNs ? std::string("never") : std::to_string(ns);
}

}  // namespace

std::string describe(const Operation& op) {
    std::string what;
    if (op.kind == OpKind::kWrite) {
        what = fmt::format("write('{}', {})", op.key, quote_value(op.value));
    } else if (op.outcome == Outcome::kOk) {
        what = fmt::format("read('{}') -> {}", op.key, quote_value(op.value));
    } else {
        what = fmt::format("read('{}')", op.key);
    }
    return fmt::format("op {}: {} by client {} [invoked {} ns, completed {} ns, {}]", op.id, what,
                       op.client, op.invoke_ns, format_time(op.complete_ns),
                       outcome_name(op.outcome));
}

Status History::add(Operation op) {
    if (ops_.size() >= kMaxHistoryOps) {
        return error(Errc::kResourceExhausted,
                     fmt::format("history holds the maximum of {} operations", kMaxHistoryOps));
    }
    if (op.kind == OpKind::kWrite && !op.value) {
        return error(Errc::kInvalidArgument, "a write needs a value");
    }
    if (op.invoke_ns == kNeverNs) {
        return error(Errc::kInvalidArgument, "invoke time cannot be 'never'");
    }

    if (op.outcome == Outcome::kUnknown) {
        op.complete_ns = kNeverNs;
    } else if (op.complete_ns < op.invoke_ns) {
        return error(Errc::kInvalidArgument,
                     fmt::format("completion {} ns precedes invocation {} ns", op.complete_ns,
                                 op.invoke_ns));
    }
    if (op.outcome == Outcome::kOk && op.complete_ns == kNeverNs) {
        return error(Errc::kInvalidArgument, "an ok operation needs a completion time");
    }
    if (op.kind == OpKind::kRead && op.outcome != Outcome::kOk) {
        op.value.reset();
    }

    op.id = ops_.size();
    ops_.push_back(std::move(op));
    return Status::ok_status();
}

int64_t monotonic_now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

Result<HistoryRecorder::OpHandle> HistoryRecorder::invoke_write(ClientId client, std::string key,
                                                                std::string value,
                                                                int64_t invoke_ns) {
    Operation op;
    op.client = client;
    op.kind = OpKind::kWrite;
    op.key = std::move(key);
    op.value = std::move(value);
    op.invoke_ns = invoke_ns;
    return invoke(std::move(op));
}

Result<HistoryRecorder::OpHandle> HistoryRecorder::invoke_read(ClientId client, std::string key,
                                                               int64_t invoke_ns) {
    Operation op;
    op.client = client;
    op.kind = OpKind::kRead;
    op.key = std::move(key);
    op.invoke_ns = invoke_ns;
    return invoke(std::move(op));
}

Result<HistoryRecorder::OpHandle> HistoryRecorder::invoke(Operation op) {
    if (op.invoke_ns == kNeverNs) {
        return error(Errc::kInvalidArgument, "invoke time cannot be 'never'");
    }
    std::lock_guard lock(mutex_);
    if (slots_.size() >= kMaxHistoryOps) {
        return error(Errc::kResourceExhausted,
                     fmt::format("recorder holds the maximum of {} operations", kMaxHistoryOps));
    }
    op.id = slots_.size();
    op.outcome = Outcome::kUnknown;
    op.complete_ns = kNeverNs;
    slots_.push_back(Slot{std::move(op), false});
    return OpHandle{slots_.back().op.id};
}

Status HistoryRecorder::complete_write_ok(OpHandle handle, int64_t complete_ns) {
    return complete(handle, OpKind::kWrite, Outcome::kOk, std::nullopt, complete_ns);
}

Status HistoryRecorder::complete_read_ok(OpHandle handle, std::optional<std::string> value,
                                         int64_t complete_ns) {
    return complete(handle, OpKind::kRead, Outcome::kOk, std::move(value), complete_ns);
}

Status HistoryRecorder::complete_unknown(OpHandle handle) {
    std::lock_guard lock(mutex_);
    COFFER_ASSIGN_OR_RETURN(Slot * slot, open_slot_locked(handle));
    slot->completed = true;
    return Status::ok_status();
}

Status HistoryRecorder::complete_failed(OpHandle handle, int64_t complete_ns) {
    std::lock_guard lock(mutex_);
    COFFER_ASSIGN_OR_RETURN(Slot * slot, open_slot_locked(handle));
    if (complete_ns < slot->op.invoke_ns) {
        return error(Errc::kInvalidArgument, "completion precedes invocation");
    }
    slot->completed = true;
    slot->op.outcome = Outcome::kFailed;
    slot->op.complete_ns = complete_ns;
    return Status::ok_status();
}

Status HistoryRecorder::complete(OpHandle handle, OpKind kind, Outcome outcome,
                                 std::optional<std::string> value, int64_t complete_ns) {
    std::lock_guard lock(mutex_);
    COFFER_ASSIGN_OR_RETURN(Slot * slot, open_slot_locked(handle));
    if (slot->op.kind != kind) {
        return error(Errc::kInvalidArgument,
                     fmt::format("operation {} is a {}", handle.id, op_kind_name(slot->op.kind)));
    }
    if (complete_ns < slot->op.invoke_ns || complete_ns == kNeverNs) {
        return error(Errc::kInvalidArgument, "completion must be a time after the invocation");
    }

    slot->completed = true;
    slot->op.outcome = outcome;
    slot->op.complete_ns = complete_ns;
    if (kind == OpKind::kRead) {
        slot->op.value = std::move(value);
    }
    return Status::ok_status();
}

Result<HistoryRecorder::Slot*> HistoryRecorder::open_slot_locked(OpHandle handle) {
    if (handle.id >= slots_.size()) {
        return error(Errc::kNotFound, fmt::format("no operation {}", handle.id));
    }
    Slot& slot = slots_[handle.id];
    if (slot.completed) {
        return error(Errc::kFailedPrecondition,
                     fmt::format("operation {} already completed", handle.id));
    }
    return &slot;
}

History HistoryRecorder::snapshot() const {
    std::lock_guard lock(mutex_);
    History history;
    for (const Slot& slot : slots_) {
        // In-flight operations already carry the outcome kUnknown, and every recorded
        // operation passed the checks History::add repeats, so this cannot fail.
        Status status = history.add(slot.op);
        COFFER_CHECK(status.ok(), "recorded operation rejected: " + status.to_string());
    }
    return history;
}

size_t HistoryRecorder::size() const {
    std::lock_guard lock(mutex_);
    return slots_.size();
}

}  // namespace coffer::lincheck
