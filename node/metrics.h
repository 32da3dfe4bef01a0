// The node's metrics, rendered in the Prometheus text exposition format (version 0.0.4) by
// GET /node/metrics. Names and meanings: docs/endpoints.md, section "/node/metrics".
//
// Thread-safe: counters are atomics or guarded by a mutex; any thread may record and render.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace coffer::node {

// Bound on distinct (endpoint, status) series; further ones are counted under
// endpoint="other" so that a client cannot grow memory by inventing paths.
constexpr size_t kMaxRequestSeries = 1024;

// Upper bounds (seconds) of the commit latency histogram buckets; +Inf is implicit.
constexpr std::array<double, 14> kCommitLatencyBucketsS = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0};

class Metrics {
  public:
    // Counts one response of `endpoint` ("GET /node/state", or "unmatched").
    void count_request(const std::string& endpoint, int status);

    // Records the duration of one kv commit of an endpoint (transaction body + Store::commit,
    // retries included).
    void observe_commit_latency(double seconds);

    // Counts a write refused before or at commit, by reason ("no_space", "conflict",
    // "ledger_full", "failed").
    void count_write_rejection(const std::string& reason);

    void count_signature() { signatures_.fetch_add(1, std::memory_order_relaxed); }
    uint64_t signatures() const { return signatures_.load(std::memory_order_relaxed); }

    // One gauge or counter supplied at render time: name, type ("gauge"/"counter"), help,
    // value.
    struct Sample {
        std::string name;
        std::string type;
        std::string help;
        double value = 0;
    };

    // The exposition text: the request counters, the histogram, the rejections, the
    // signature count and then `extra`.
    std::string render(const std::vector<Sample>& extra) const;

  private:
    mutable std::mutex mu_;
    std::map<std::pair<std::string, int>, uint64_t> requests_;
    std::map<std::string, uint64_t> rejections_;
    std::array<uint64_t, kCommitLatencyBucketsS.size()> buckets_{};
    uint64_t latency_count_ = 0;
    double latency_sum_s_ = 0;
    std::atomic<uint64_t> signatures_{0};
};

}  // namespace coffer::node
