#include "api/metrics.h"

#include <cstdio>

namespace medvault::api {

void RequestMetrics::Record(std::string_view route, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = routes_.find(route);
  if (it == routes_.end()) {
    it = routes_.emplace(std::string(route), RouteStats{}).first;
  }
  RouteStats& s = it->second;
  ++s.by_status[status];
  ++s.count;
  s.sum += seconds;
  for (size_t i = 0; i < kBucketsSeconds.size(); ++i) {
    if (seconds <= kBucketsSeconds[i]) {
      ++s.buckets[i];
    }
  }
}

void RequestMetrics::Render(std::string& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  char buf[256];
  out += "# HELP medvault_http_requests_total HTTP requests by route and status.\n";
  out += "# TYPE medvault_http_requests_total counter\n";
  for (const auto& [route, s] : routes_) {
    for (const auto& [status, n] : s.by_status) {
      std::snprintf(buf, sizeof buf,
                    "medvault_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                    route.c_str(), status, static_cast<unsigned long long>(n));
      out += buf;
    }
  }
  out += "# HELP medvault_http_request_duration_seconds HTTP request latency by route.\n";
  out += "# TYPE medvault_http_request_duration_seconds histogram\n";
  for (const auto& [route, s] : routes_) {
    for (size_t i = 0; i < kBucketsSeconds.size(); ++i) {
      std::snprintf(buf, sizeof buf,
                    "medvault_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                    route.c_str(), kBucketsSeconds[i],
                    static_cast<unsigned long long>(s.buckets[i]));
      out += buf;
    }
    std::snprintf(buf, sizeof buf,
                  "medvault_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                  route.c_str(), static_cast<unsigned long long>(s.count));
    out += buf;
    std::snprintf(buf, sizeof buf,
                  "medvault_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", route.c_str(),
                  s.sum);
    out += buf;
    std::snprintf(buf, sizeof buf,
                  "medvault_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                  route.c_str(), static_cast<unsigned long long>(s.count));
    out += buf;
  }
}

}  // namespace medvault::api
