// ScrubScheduler: the background scrub thread.
//
// The thread waits on a condition variable (with the jthread's stop token,
// so Stop() wakes it at once) until the next run is due or TriggerNow() is
// called, runs Scrub with the same stop token (so a run in progress, even one
// waiting in the throttle, ends at the next chunk), then publishes the report:
// in memory for LatestReport(), as JSON on disk, and in the counters.
#include <algorithm>
#include <utility>

#include "common/ids.h"
#include "common/log.h"
#include "integrity/integrity.h"

namespace medvault::integrity {

ScrubScheduler::ScrubScheduler(store::MetadataStore* metadata, store::ObjectStore* objects,
                               record::RecordService* records, SchedulerOptions options)
    : metadata_(metadata),
      objects_(objects),
      records_(records),
      options_(std::move(options)),
      thread_([this](std::stop_token stop) { Loop(std::move(stop)); }) {}

ScrubScheduler::~ScrubScheduler() { Stop(); }

void ScrubScheduler::Stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  thread_.request_stop();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void ScrubScheduler::TriggerNow() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stats_.running) {
      return;
    }
    trigger_ = true;
  }
  cv_.notify_all();
}

std::optional<ScrubReport> ScrubScheduler::LatestReport() const {
  std::lock_guard<std::mutex> lock(mu_);
  return latest_;
}

ScrubStats ScrubScheduler::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

Status ScrubScheduler::LastWriteStatus() const {
  std::lock_guard<std::mutex> lock(mu_);
  return write_status_;
}

void ScrubScheduler::Loop(std::stop_token stop) {
  auto next = std::chrono::steady_clock::now() + options_.initial_delay;
  while (!stop.stop_requested()) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      (void)cv_.wait_until(lock, stop, next, [this] { return trigger_; });
      if (stop.stop_requested()) {
        return;
      }
      trigger_ = false;
      stats_.running = true;
    }
    RunOnce(stop);
    next = std::chrono::steady_clock::now() + options_.interval;
  }
}

void ScrubScheduler::RunOnce(std::stop_token stop) {
  ScrubOptions scrub = options_.scrub;
  scrub.stop = stop;
  const int64_t started = NowUnixMillis();
  Result<ScrubReport> result = Scrub(*metadata_, *objects_, records_, scrub);
  if (stop.stop_requested()) {
    // Shutting down: keep the previous report rather than a partial one.
    std::lock_guard<std::mutex> lock(mu_);
    stats_.running = false;
    return;
  }
  ScrubReport report;
  if (result.ok()) {
    report = std::move(result).value();
  } else {
    report.started_at_ms = started;
    report.finished_at_ms = NowUnixMillis();
    report.deep = scrub.deep;
    report.completed = false;
    report.error = result.status().ToString();
  }
  Log(report.completed ? LogLevel::kInfo : LogLevel::kWarn, "integrity.scrub.finished",
      {{"mode", report.deep ? "deep" : "fast"},
       {"completed", report.completed ? "true" : "false"},
       {"findings", static_cast<unsigned long>(report.findings.size())},
       {"reclaimed", static_cast<unsigned long>(report.orphans_reclaimed)},
       {"versions", static_cast<unsigned long>(report.versions_checked)},
       {"objects", static_cast<unsigned long>(report.objects_checked)},
       {"bytes", static_cast<unsigned long>(report.bytes_checked)},
       {"duration_ms", static_cast<long long>(report.finished_at_ms - report.started_at_ms)}});
  Status written;
  if (!options_.report_path.empty()) {
    written = WriteFileAtomically(options_.report_path, ReportJson(report));
    if (!written.ok()) {
      Log(LogLevel::kError, "integrity.scrub.report_write_failed", {{"error", written.ToString()}});
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.runs;
  if (!report.completed) {
    ++stats_.failed_runs;
  }
  const size_t damage =
      static_cast<size_t>(std::count_if(report.findings.begin(), report.findings.end(), IsDamage));
  stats_.findings_total += report.findings.size();
  stats_.damage_findings_total += damage;
  stats_.objects_checked_total += report.objects_checked;
  stats_.last_finished_ms = report.finished_at_ms;
  stats_.last_findings = report.findings.size();
  stats_.last_damage_findings = damage;
  stats_.running = false;
  write_status_ = std::move(written);
  latest_ = std::move(report);
}

}  // namespace medvault::integrity
