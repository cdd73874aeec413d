// The background scrub scheduler: runs, stats, stop, failures.
#include "scrubber_fixture.h"

namespace medvault::integrity {
namespace {

using testing_support::ScrubberTest;
using namespace testing_support;

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

TEST_F(ScrubberTest, SchedulerRunsPublishesAndStopsQuickly) {
  WriteSample();
  ASSERT_TRUE(fs::remove(ObjectFile(b1_.object_key)));
  const fs::path report_path = dir_.path() / "scrub-report.json";
  std::atomic<int> ledger{0};
  SchedulerOptions options;
  options.initial_delay = std::chrono::milliseconds(10);
  options.interval = std::chrono::hours(1);
  options.report_path = report_path;
  options.scrub.on_finding = [&ledger](const Finding&) {
    ++ledger;
    return Status::Ok();
  };
  ScrubScheduler scheduler(metadata_.get(), objects_.get(), service_.get(), options);
  ASSERT_TRUE(WaitFor([&] { return scheduler.Stats().runs >= 1; }, std::chrono::seconds(20)));
  ScrubStats stats = scheduler.Stats();
  EXPECT_EQ(stats.runs, 1u);
  EXPECT_EQ(stats.failed_runs, 0u);
  EXPECT_EQ(stats.findings_total, 1u);
  EXPECT_EQ(stats.last_findings, 1u);
  EXPECT_EQ(stats.damage_findings_total, 1u);
  EXPECT_EQ(stats.last_damage_findings, 1u);
  EXPECT_EQ(stats.objects_checked_total, 4u);
  EXPECT_GT(stats.last_finished_ms, 0);
  EXPECT_FALSE(stats.running);
  EXPECT_EQ(ledger.load(), 1);
  auto latest = scheduler.LatestReport();
  ASSERT_TRUE(latest.has_value());
  ASSERT_EQ(latest->findings.size(), 1u);
  ExpectFinding(latest->findings[0], kMissing, b1_);
  EXPECT_TRUE(scheduler.LastWriteStatus().ok());
  auto j = nlohmann::json::parse(ReadFileBytes(report_path), nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["findings_count"], 1);

  // A second run on demand, with one more problem.
  ASSERT_TRUE(objects_->Put("stray/object", AsBytes("x")).ok());
  scheduler.TriggerNow();
  ASSERT_TRUE(WaitFor([&] { return scheduler.Stats().runs >= 2; }, std::chrono::seconds(20)));
  stats = scheduler.Stats();
  EXPECT_EQ(stats.findings_total, 3u);
  EXPECT_EQ(stats.last_findings, 2u);
  EXPECT_EQ(stats.damage_findings_total, 2u);  // the orphan is information
  EXPECT_EQ(stats.last_damage_findings, 1u);
  j = nlohmann::json::parse(ReadFileBytes(report_path), nullptr, false);
  EXPECT_EQ(j["findings_count"], 2);

  // Waiting for the next run an hour away: Stop() returns at once.
  const auto start = std::chrono::steady_clock::now();
  scheduler.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  scheduler.Stop();  // idempotent
  EXPECT_EQ(scheduler.Stats().runs, 2u);
}

TEST_F(ScrubberTest, SchedulerStopsAThrottledScrubPromptly) {
  WriteSample();
  SchedulerOptions options;
  options.initial_delay = std::chrono::milliseconds(0);
  options.interval = std::chrono::hours(1);
  options.scrub.max_bytes_per_second = 1;  // would take hours
  options.scrub.deep = true;
  auto scheduler =
      std::make_unique<ScrubScheduler>(metadata_.get(), objects_.get(), service_.get(), options);
  ASSERT_TRUE(WaitFor([&] { return scheduler->Stats().running; }, std::chrono::seconds(20)));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // into the throttle wait
  const auto start = std::chrono::steady_clock::now();
  scheduler.reset();  // destruction stops it
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
}

TEST_F(ScrubberTest, SchedulerDestroyedBeforeTheFirstRun) {
  SchedulerOptions options;
  options.initial_delay = std::chrono::hours(1);
  const auto start = std::chrono::steady_clock::now();
  {
    ScrubScheduler scheduler(metadata_.get(), objects_.get(), nullptr, options);
    EXPECT_EQ(scheduler.Stats().runs, 0u);
    EXPECT_FALSE(scheduler.LatestReport().has_value());
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
}

TEST_F(ScrubberTest, SchedulerRecordsAFailedRun) {
  WriteSample();
  SchedulerOptions options;
  options.initial_delay = std::chrono::milliseconds(0);
  options.interval = std::chrono::hours(1);
  options.scrub.deep = true;  // without a record service: InvalidArgument
  ScrubScheduler scheduler(metadata_.get(), objects_.get(), nullptr, options);
  ASSERT_TRUE(WaitFor([&] { return scheduler.Stats().runs >= 1; }, std::chrono::seconds(20)));
  EXPECT_EQ(scheduler.Stats().failed_runs, 1u);
  auto latest = scheduler.LatestReport();
  ASSERT_TRUE(latest.has_value());
  EXPECT_FALSE(latest->completed);
  EXPECT_NE(latest->error.find("INVALID_ARGUMENT"), std::string::npos) << latest->error;
}

}  // namespace
}  // namespace medvault::integrity
