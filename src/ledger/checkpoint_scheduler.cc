// Background signing of checkpoints: the unsigned tail of the log stays short
// (docs/ledger.md, "Automatic checkpoints").
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "common/ids.h"
#include "common/log.h"
#include "ledger/ledger.h"

namespace medvault::ledger {

struct CheckpointScheduler::Impl {
  SqliteLedger* ledger;
  const Signer* signer;
  std::string origin;
  AutoCheckpointOptions options;

  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;  // guarded by mu
  bool stopped = false;   // guarded by mu
  std::atomic<uint64_t> signed_count{0};
  // The newest checkpoint this process knows of: size and when it was seen.
  uint64_t last_size = 0;
  int64_t last_ms = 0;
  std::thread thread;
  std::string last_error;  // the scheduler thread's only
  std::chrono::steady_clock::time_point next_error_log;

  // Signs when a trigger fires (or `force` and the log grew). Returns the
  // signing error, OK otherwise.
  Status Tick(bool force) {
    MV_RETURN_IF_ERROR(ledger->Sync());
    const uint64_t size = ledger->Size();
    if (size <= last_size) {
      return Status::Ok();
    }
    const int64_t now = NowUnixMillis();
    const bool by_count = options.every_entries != 0 && size - last_size >= options.every_entries;
    const bool by_time = options.interval.count() != 0 && now - last_ms >= options.interval.count();
    if (!force && !by_count && !by_time) {
      return Status::Ok();
    }
    MV_RETURN_IF_ERROR(ledger->Checkpoint(*signer, origin).status());
    MV_ASSIGN_OR_RETURN(CheckpointRecord record, ledger->LatestCheckpoint());
    last_size = record.size;
    last_ms = now;
    signed_count.fetch_add(1);
    medvault::Log(LogLevel::kDebug, "ledger.checkpoint",
                  {{"size", static_cast<long long>(record.size)},
                   {"trigger", force      ? "shutdown"
                               : by_count ? "entries"
                                          : "interval"}});
    if (options.on_checkpoint) {
      options.on_checkpoint(record);
    }
    return Status::Ok();
  }

  void Run() {
    std::unique_lock<std::mutex> lock(mu);
    auto next_periodic = std::chrono::steady_clock::now() + options.periodic_interval;
    while (!stopping) {
      cv.wait_for(lock, options.poll, [this] { return stopping; });
      if (stopping) {
        break;
      }
      lock.unlock();
      if (options.periodic && std::chrono::steady_clock::now() >= next_periodic) {
        next_periodic = std::chrono::steady_clock::now() + options.periodic_interval;
        options.periodic();
      }
      Status st = Tick(false);
      if (!st.ok()) {
        // A log damaged while running fails every poll: say so when the
        // reason changes and then once a minute, not five times a second.
        const auto now = std::chrono::steady_clock::now();
        if (st.message() != last_error || now >= next_error_log) {
          medvault::Log(LogLevel::kError, "ledger.checkpoint_failed", {{"error", st.message()}});
          last_error = st.message();
          next_error_log = now + std::chrono::minutes(1);
        }
      } else {
        last_error.clear();
      }
      lock.lock();
    }
  }
};

CheckpointScheduler::CheckpointScheduler(SqliteLedger* ledger, const Signer* signer,
                                         std::string origin, AutoCheckpointOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->ledger = ledger;
  impl_->signer = signer;
  impl_->origin = std::move(origin);
  impl_->options = std::move(options);
  if (impl_->options.poll.count() <= 0) {
    impl_->options.poll = std::chrono::milliseconds(200);
  }
  // The tail starts at the newest stored checkpoint; its age counts from now
  // (the time of a checkpoint signed by an earlier process does not matter:
  // what this process appends is what needs signing).
  auto latest = ledger->LatestCheckpoint();
  impl_->last_size = latest.ok() ? latest->size : 0;
  impl_->last_ms = NowUnixMillis();
  impl_->thread = std::thread([impl = impl_.get()] { impl->Run(); });
}

CheckpointScheduler::~CheckpointScheduler() { (void)Stop(); }

Status CheckpointScheduler::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopped) {
      return Status::Ok();
    }
    impl_->stopping = true;
    impl_->stopped = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) {
    impl_->thread.join();
  }
  Status st = impl_->Tick(/*force=*/true);
  if (!st.ok()) {
    medvault::Log(LogLevel::kError, "ledger.checkpoint_failed", {{"error", st.message()}});
  }
  return st;
}

uint64_t CheckpointScheduler::signed_count() const { return impl_->signed_count.load(); }

}  // namespace medvault::ledger
