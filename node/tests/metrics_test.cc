#include <gtest/gtest.h>

#include "node/metrics.h"

namespace coffer::node {
namespace {

TEST(Metrics, RenderShowsCountersAndCumulativeHistogram) {
    Metrics m;
    m.count_request("GET /node/state", 200);
    m.count_request("GET /node/state", 200);
    m.count_request("POST /app/log/private", 400);
    m.observe_commit_latency(0.0002);
    m.observe_commit_latency(2.0);
    m.count_write_rejection("no_space");
    m.count_signature();
    std::string text = m.render({{"coffer_extra", "gauge", "An extra.", 7}});
    EXPECT_NE(
        text.find("coffer_http_requests_total{endpoint=\"GET /node/state\",status=\"200\"} 2"),
        std::string::npos);
    EXPECT_NE(text.find("status=\"400\"} 1"), std::string::npos);
    EXPECT_NE(text.find("coffer_commit_latency_seconds_bucket{le=\"0.00025\"} 1"),
              std::string::npos);
    EXPECT_NE(text.find("coffer_commit_latency_seconds_bucket{le=\"1\"} 1"), std::string::npos);
    EXPECT_NE(text.find("coffer_commit_latency_seconds_bucket{le=\"+Inf\"} 2"), std::string::npos);
    EXPECT_NE(text.find("coffer_write_rejections_total{reason=\"no_space\"} 1"), std::string::npos);
    EXPECT_NE(text.find("coffer_ledger_signatures_total 1"), std::string::npos);
    EXPECT_NE(text.find("coffer_extra 7"), std::string::npos);
}

TEST(Metrics, SeriesAreBoundedAgainstInventedEndpoints) {
    Metrics m;
    for (size_t i = 0; i < kMaxRequestSeries + 10; ++i) {
        m.count_request("GET /x" + std::to_string(i), 404);
    }
    std::string text = m.render({});
    EXPECT_NE(text.find("endpoint=\"other\",status=\"404\"} 10"), std::string::npos);
}

}  // namespace
}  // namespace coffer::node
