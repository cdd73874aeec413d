// The server's watcher of changes made by other processes on its data
// directory (a CLI command, another server): see app.h and
// docs/architecture.md, "Changes made by another process".
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "app/app.h"
#include "common/log.h"

namespace medvault::app {

ChangeWatcher::ChangeWatcher(auth::AccountService* accounts, access::AccessService* access,
                             std::chrono::milliseconds period)
    : accounts_(accounts), access_(access), period_(period) {
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

void ChangeWatcher::Run() {
  bool failing = false;
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, period_, [this] { return stop_; })) {
    lock.unlock();
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
