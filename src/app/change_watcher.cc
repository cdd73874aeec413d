// The server's watcher of changes made by other processes on its data
// directory (a CLI command, another server): see app.h and
// docs/architecture.md, "Changes made by another process".
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "app/app.h"
#include "common/log.h"

namespace medvault::app {

namespace {
// The longest single wait on the feed, so that stopping is never held up by
// a whole period.
constexpr std::chrono::milliseconds kFeedSlice(100);
}  // namespace

ChangeWatcher::ChangeWatcher(auth::AccountService* accounts, access::AccessService* access,
                             std::chrono::milliseconds period, store::ChangeFeed* feed)
    : accounts_(accounts), access_(access), period_(period), feed_(feed) {
  thread_ = std::thread([this] { Run(); });
}

ChangeWatcher::~ChangeWatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Status ChangeWatcher::SyncOnce() {
  // Policy first: the decision point's data is what only this poll updates
  // (the token cache is also checked on every authentication).
  Status st = access_ != nullptr ? access_->SyncChanges() : Status::Ok();
  if (accounts_ != nullptr) {
    Status a = accounts_->SyncChanges();
    if (st.ok()) {
      st = a;
    }
  }
  return st;
}

bool ChangeWatcher::WaitForRound(std::unique_lock<std::mutex>& lock, int64_t seen) {
  if (feed_ == nullptr) {
    return cv_.wait_for(lock, period_, [this] { return stop_; });
  }
  const auto until = std::chrono::steady_clock::now() + period_;
  while (!stop_) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) {
      return false;
    }
    const auto slice = std::min<std::chrono::milliseconds>(
        kFeedSlice, std::chrono::ceil<std::chrono::milliseconds>(until - now));
    lock.unlock();
    const Status waited = feed_->WaitForChange(seen, slice);
    Result<int64_t> latest = waited.ok() ? feed_->Latest() : Result<int64_t>(waited);
    lock.lock();
    if (!latest.ok()) {
      // The feed cannot be read: wait the period out; the round reports it.
      return cv_.wait_until(lock, until, [this] { return stop_; });
    }
    if (*latest != seen) {
      return stop_;
    }
  }
  return true;
}

void ChangeWatcher::Run() {
  bool failing = false;
  int64_t seen = -1;  // nothing seen yet: the first round starts at once with a feed
  std::unique_lock<std::mutex> lock(mu_);
  while (!WaitForRound(lock, seen)) {
    lock.unlock();
    if (feed_ != nullptr) {
      // Read before the round, so that a change committed during it starts
      // the next one.
      auto latest = feed_->Latest();
      if (latest.ok()) {
        seen = *latest;
      }
    }
    const Status st = SyncOnce();
    // Logged when it starts and stops failing, not every period.
    if (!st.ok() && !failing) {
      Log(LogLevel::kError, "changes.sync_failed", {{"error", st.ToString()}});
    } else if (st.ok() && failing) {
      Log(LogLevel::kInfo, "changes.sync_recovered");
    }
    failing = !st.ok();
    lock.lock();
  }
}

}  // namespace medvault::app
