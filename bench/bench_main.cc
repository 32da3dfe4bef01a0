// Shared main() for Coffer's micro-benchmarks.
//
// Benchmarks come in pairs named `<case>/coffer` and `<case>/raw_<what>`: our layer and the
// bare library call doing the same work, in the same binary and run. After the usual console
// table this prints, for every pair, the ratio of their CPU times, which is the overhead of
// our layer (1.00 = none). Ratios are what we compare over time, since absolute numbers
// move with the machine.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace {

class RatioReporter : public benchmark::ConsoleReporter {
  public:
    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const Run& run : runs) {
            if (run.run_type != Run::RT_Iteration || run.error_occurred) {
                continue;
            }
            std::string name = run.benchmark_name();
            size_t slash = name.find('/');
            if (slash == std::string::npos) {
                continue;
            }
            std::string rest = name.substr(slash + 1);
            std::string variant = rest.substr(0, rest.find('/'));
            std::string key = name.substr(0, slash);
            if (variant.size() + slash + 1 < name.size()) {
                key += name.substr(slash + 1 + variant.size());
            }
            double ns_per_iter = run.GetAdjustedCPUTime();
            if (variant == "coffer") {
                ours_[key] = ns_per_iter;
            } else if (variant.rfind("raw", 0) == 0) {
                raw_[key] = {variant, ns_per_iter};
            }
        }
    }

    void Finalize() override {
        ConsoleReporter::Finalize();
        if (ours_.empty()) {
            return;
        }
        std::printf("\n%-44s %14s %14s %8s  reference\n", "case", "coffer", "reference", "ratio");
        for (const auto& [key, ours] : ours_) {
            auto it = raw_.find(key);
            if (it == raw_.end()) {
                continue;
            }
            const auto& [raw_name, raw] = it->second;
            std::printf("%-44s %14.1f %14.1f %8.2f  %s\n", key.c_str(), ours, raw,
                        raw > 0 ? ours / raw : 0.0, raw_name.c_str());
        }
        std::printf("(times are CPU time per iteration in the unit of each row above)\n");
    }

  private:
    std::map<std::string, double> ours_;
    std::map<std::string, std::pair<std::string, double>> raw_;
};

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        return 1;
    }
    RatioReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
