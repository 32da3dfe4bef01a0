// Helpers for the lincheck tests: a builder for hand-written histories with explicit times.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "lincheck/history.h"

namespace coffer::lincheck::testing {

inline constexpr std::nullopt_t kAbsentValue = std::nullopt;

class HistoryBuilder {
  public:
    OpId write(ClientId client, std::string key, std::string value, int64_t invoke_ns,
               int64_t complete_ns) {
        return add(client, OpKind::kWrite, std::move(key), std::move(value), invoke_ns, complete_ns,
                   Outcome::kOk);
    }
    OpId write_unknown(ClientId client, std::string key, std::string value, int64_t invoke_ns) {
        return add(client, OpKind::kWrite, std::move(key), std::move(value), invoke_ns, kNeverNs,
                   Outcome::kUnknown);
    }
    OpId write_failed(ClientId client, std::string key, std::string value, int64_t invoke_ns,
                      int64_t complete_ns) {
        return add(client, OpKind::kWrite, std::move(key), std::move(value), invoke_ns, complete_ns,
                   Outcome::kFailed);
    }
    // `value` is what the read returned; kAbsentValue when the key was absent.
    OpId read(ClientId client, std::string key, std::optional<std::string> value, int64_t invoke_ns,
              int64_t complete_ns) {
        return add(client, OpKind::kRead, std::move(key), std::move(value), invoke_ns, complete_ns,
                   Outcome::kOk);
    }
    OpId read_unknown(ClientId client, std::string key, int64_t invoke_ns) {
        return add(client, OpKind::kRead, std::move(key), std::nullopt, invoke_ns, kNeverNs,
                   Outcome::kUnknown);
    }

    const History& history() const { return history_; }

  private:
    OpId add(ClientId client, OpKind kind, std::string key, std::optional<std::string> value,
             int64_t invoke_ns, int64_t complete_ns, Outcome outcome) {
        Operation op;
        op.client = client;
        op.kind = kind;
        op.key = std::move(key);
        op.value = std::move(value);
        op.invoke_ns = invoke_ns;
        op.complete_ns = complete_ns;
        op.outcome = outcome;
        Status status = history_.add(std::move(op));
        EXPECT_TRUE(status.ok()) << status.to_string();
        return history_.size() - 1;
    }

    History history_;
};

}  // namespace coffer::lincheck::testing
