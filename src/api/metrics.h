// Internal to src/api: request metrics in Prometheus text format.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace medvault::api {

// Counts requests per (route, status) and a latency histogram per route.
// Thread-safe; Record() takes a short lock.
class RequestMetrics {
 public:
  static constexpr std::array<double, 12> kBucketsSeconds = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0};

  void Record(std::string_view route, int status, double seconds);
  // Appends the metric families to `out` in Prometheus text exposition format.
  void Render(std::string& out) const;

 private:
  struct RouteStats {
    std::map<int, uint64_t> by_status;
    std::array<uint64_t, kBucketsSeconds.size()> buckets{};
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, RouteStats, std::less<>> routes_;
};

}  // namespace medvault::api
