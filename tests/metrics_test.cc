#include "api/metrics.h"

#include <gtest/gtest.h>

namespace medvault::api {
namespace {

TEST(MetricsTest, CountsAndHistogram) {
  RequestMetrics m;
  m.Record("/a", 200, 0.0004);
  m.Record("/a", 200, 0.003);
  m.Record("/a", 404, 2.0);
  std::string out;
  m.Render(out);
  EXPECT_NE(out.find("medvault_http_requests_total{route=\"/a\",status=\"200\"} 2"),
            std::string::npos);
  EXPECT_NE(out.find("medvault_http_requests_total{route=\"/a\",status=\"404\"} 1"),
            std::string::npos);
  EXPECT_NE(out.find("medvault_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.0005\"} 1"),
            std::string::npos);
  EXPECT_NE(out.find("medvault_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.005\"} 2"),
            std::string::npos);
  EXPECT_NE(out.find("medvault_http_request_duration_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3"),
            std::string::npos);
  EXPECT_NE(out.find("medvault_http_request_duration_seconds_count{route=\"/a\"} 3"),
            std::string::npos);
}

}  // namespace
}  // namespace medvault::api
