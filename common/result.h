// Error values used at every module boundary of Coffer.
//
// Functions that can fail on bad input, I/O or cryptographic checks return a `Status` (no
// value) or a `Result<T>` (a value or an error). Both are [[nodiscard]]: ignoring an error
// is a compile-time warning, which our strict build turns into an error. Broken invariants
// (bugs in our own code) are not errors of this kind: they stop the process through
// COFFER_CHECK in common/check.h.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "common/check.h"

namespace coffer {

// The kinds of error. Callers branch on the code; the message is for humans and logs and
// must never contain key material or private data.
enum class Errc {
    kOk = 0,
    kInvalidArgument,     // malformed input from a caller or peer
    kNotFound,            // the thing asked for does not exist
    kConflict,            // optimistic transaction lost a race; may be retried
    kCorrupt,             // stored or received data failed an integrity check
    kCrypto,              // a signature, tag or key check failed
    kIo,                  // the operating system refused an I/O operation
    kNoSpace,             // the disk is full; reads still work
    kUnsupported,         // a version or feature we do not implement
    kFailedPrecondition,  // the call is not valid in the current state
    kPermissionDenied,    // the caller is not allowed to do this
    kResourceExhausted,   // a named limit was reached
    kInternal,            // an unexpected failure of a library we call
};

// Stable lower-case name of an error code, for logs and JSON error bodies.
std::string_view errc_name(Errc code);

class [[nodiscard]] Status {
  public:
    Status() = default;
    Status(Errc code, std::string message) : code_(code), message_(std::move(message)) {}

    static Status ok_status() { return Status(); }

    bool ok() const { return code_ == Errc::kOk; }
    Errc code() const { return code_; }
    const std::string& message() const { return message_; }

    // "code: message", for logs and test failure output.
    std::string to_string() const;

    // Prepends context ("opening chunk 3: ") to the message, keeping the code.
    Status with_context(std::string_view context) const;

  private:
    Errc code_ = Errc::kOk;
    std::string message_;
};

inline Status error(Errc code, std::string message) {
    return Status(code, std::move(message));
}

// A value of type T, or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
  public:
    Result(T value) : value_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
    Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
        COFFER_CHECK(!status_.ok(), "a Result built from a Status must carry an error");
    }

    bool ok() const { return value_.has_value(); }
    const Status& status() const { return status_; }

    T& value() & {
        COFFER_CHECK(ok(), "value() on an error Result: " + status_.to_string());
        return *value_;
    }
    const T& value() const& {
        COFFER_CHECK(ok(), "value() on an error Result: " + status_.to_string());
        return *value_;
    }
    T&& value() && {
        COFFER_CHECK(ok(), "value() on an error Result: " + status_.to_string());
        return std::move(*value_);
    }

    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

  private:
    std::optional<T> value_;
    Status status_;
};

}  // namespace coffer

// Returns early from the enclosing function if `expr` (a Status) is an error.
#define COFFER_RETURN_IF_ERROR(expr)              \
    do {                                          \
        ::coffer::Status coffer_status_ = (expr); \
        if (!coffer_status_.ok()) {               \
            return coffer_status_;                \
        }                                         \
    } while (0)

#define COFFER_CONCAT_INNER_(a, b) a##b
#define COFFER_CONCAT_(a, b) COFFER_CONCAT_INNER_(a, b)

// `COFFER_ASSIGN_OR_RETURN(auto x, f());` declares x from a Result's value or returns its
// Status from the enclosing function.
#define COFFER_ASSIGN_OR_RETURN(lhs, expr) \
    COFFER_ASSIGN_OR_RETURN_IMPL_(COFFER_CONCAT_(coffer_result_, __LINE__), lhs, expr)
#define COFFER_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
    auto tmp = (expr);                                \
    if (!tmp.ok()) {                                  \
        return tmp.status();                          \
    }                                                 \
    lhs = std::move(tmp).value()
