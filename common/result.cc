#include "common/result.h"

namespace coffer {

std::string_view errc_name(Errc code) {
    switch (code) {
        case Errc::kOk:
            return "ok";
        case Errc::kInvalidArgument:
            return "invalid_argument";
        case Errc::kNotFound:
            return "not_found";
        case Errc::kConflict:
            return "conflict";
        case Errc::kCorrupt:
            return "corrupt";
        case Errc::kCrypto:
            return "crypto";
        case Errc::kIo:
            return "io";
        case Errc::kNoSpace:
            return "no_space";
        case Errc::kUnsupported:
            return "unsupported";
        case Errc::kFailedPrecondition:
            return "failed_precondition";
        case Errc::kPermissionDenied:
            return "permission_denied";
        case Errc::kResourceExhausted:
            return "resource_exhausted";
        case Errc::kInternal:
            return "internal";
    }
    return "unknown";
}

std::string Status::to_string() const {
    if (ok()) {
        return "ok";
    }
    return std::string(errc_name(code_)) + ": " + message_;
}

Status Status::with_context(std::string_view context) const {
    if (ok()) {
        return *this;
    }
    // Callers may pass "opening x" or "opening x: "; both give one separator.
    while (!context.empty() && (context.back() == ' ' || context.back() == ':')) {
        context.remove_suffix(1);
    }
    return Status(code_, std::string(context) + ": " + message_);
}

}  // namespace coffer
