// lincheck_tool FILE: judges a history dumped by write_history_file (docs/linearizability.md).
// Exit status: 0 linearizable, 1 violation, 2 inconclusive, 3 unreadable input or bad usage.
#include <cstdio>
#include <string>

#include "lincheck/checker.h"
#include "lincheck/history_json.h"

namespace {

constexpr int kExitViolation = 1;
constexpr int kExitInconclusive = 2;
constexpr int kExitError = 3;

}  // namespace

int main(int argc, char** argv) {
    using namespace coffer::lincheck;
    if (argc != 2) {
        std::fprintf(stderr, "usage: lincheck_tool HISTORY.json\n");
        return kExitError;
    }

    coffer::Result<History> history = read_history_file(argv[1]);
    if (!history.ok()) {
        std::fprintf(stderr, "lincheck_tool: %s\n", history.status().to_string().c_str());
        return kExitError;
    }

    coffer::Result<CheckResult> result = check_linearizable(*history);
    if (!result.ok()) {
        std::fprintf(stderr, "lincheck_tool: %s\n", result.status().to_string().c_str());
        return kExitError;
    }
    std::printf("%s\n", result->summary().c_str());

    switch (result->verdict) {
        case Verdict::kLinearizable:
            return 0;
        case Verdict::kViolation:
            return kExitViolation;
        case Verdict::kInconclusive:
            return kExitInconclusive;
    }
    return kExitError;
}
