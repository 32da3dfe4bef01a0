#include "node/metrics.h"

#include <fmt/format.h>

namespace coffer::node {

namespace {

// Prometheus label values escape backslash, double quote and newline.
std::string escape_label(const std::string& value) {
    std::string out;
    for (char c : value) {
        if (c == '\\' || c == '"') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace

void Metrics::count_request(const std::string& endpoint, int status) {
    std::lock_guard lock(mu_);
    auto key = std::make_pair(endpoint, status);
    auto it = requests_.find(key);
    if (it == requests_.end() && requests_.size() >= kMaxRequestSeries) {
        key.first = "other";
        it = requests_.find(key);
    }
    if (it == requests_.end()) {
        requests_.emplace(key, 1);
    } else {
        ++it->second;
    }
}

void Metrics::observe_commit_latency(double seconds) {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < kCommitLatencyBucketsS.size(); ++i) {
        if (seconds <= kCommitLatencyBucketsS[i]) {
            ++buckets_[i];
        }
    }
    ++latency_count_;
    latency_sum_s_ += seconds;
}

void Metrics::count_write_rejection(const std::string& reason) {
    std::lock_guard lock(mu_);
    ++rejections_[reason];
}

std::string Metrics::render(const std::vector<Sample>& extra) const {
    std::string out;
    std::lock_guard lock(mu_);
    out += "# HELP coffer_http_requests_total Responses by endpoint and HTTP status.\n";
    out += "# TYPE coffer_http_requests_total counter\n";
    for (const auto& [key, count] : requests_) {
        out += fmt::format("coffer_http_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n",
                           escape_label(key.first), key.second, count);
    }

    out += "# HELP coffer_commit_latency_seconds Duration of endpoint KV commits.\n";
    out += "# TYPE coffer_commit_latency_seconds histogram\n";
    for (size_t i = 0; i < kCommitLatencyBucketsS.size(); ++i) {
        out += fmt::format("coffer_commit_latency_seconds_bucket{{le=\"{}\"}} {}\n",
                           kCommitLatencyBucketsS[i], buckets_[i]);
    }
    out += fmt::format("coffer_commit_latency_seconds_bucket{{le=\"+Inf\"}} {}\n", latency_count_);
    out += fmt::format("coffer_commit_latency_seconds_sum {}\n", latency_sum_s_);
    out += fmt::format("coffer_commit_latency_seconds_count {}\n", latency_count_);

    out += "# HELP coffer_write_rejections_total Writes refused, by reason.\n";
    out += "# TYPE coffer_write_rejections_total counter\n";
    for (const auto& [reason, count] : rejections_) {
        out += fmt::format("coffer_write_rejections_total{{reason=\"{}\"}} {}\n",
                           escape_label(reason), count);
    }

    out += "# HELP coffer_ledger_signatures_total Signature entries this node emitted.\n";
    out += "# TYPE coffer_ledger_signatures_total counter\n";
    out += fmt::format("coffer_ledger_signatures_total {}\n", signatures());

    for (const Sample& s : extra) {
        out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", s.name, s.help, s.name, s.type,
                           s.name, s.value);
    }
    return out;
}

}  // namespace coffer::node
