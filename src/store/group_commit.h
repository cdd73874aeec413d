// Leader/follower group commit (internal to src/store; the SQLite stores and
// the SQLite ledger use it, docs/architecture.md "Persistence seam").
//
// Concurrent writers each queue one item. A writer that finds no leader at
// work becomes the leader: it takes the whole queue as one group, runs the
// commit function on it outside the queue's lock (one transaction, so one
// fsync for the group), marks every item of the group done and wakes their
// callers. Nothing is reported done before the commit that held it has
// returned, so the caller's promise (durable when OK) is exactly the commit
// function's: nothing is acknowledged before the group is durable.
//
// Two ways to submit:
//  * Submit() waits: the caller sleeps until its item is done (or leads).
//  * SubmitAsync() returns at once and `done` runs after the item's group
//    was committed, on the thread that led it. It lets a caller that has
//    nothing to do but wait (a read answer held until its audit entry is
//    durable) give its thread back instead of sleeping: under load, reads
//    no longer cost two context switches each for the wait
//    (docs/architecture.md, "Answers held for their audit").
//
// Who leads: a synchronous caller whose item is queued when no leader is at
// work, or the committer's own thread (started at the first SubmitAsync),
// which leads whenever asynchronous items wait and no one else leads. After
// a group, a synchronous leader hands the queue to the first synchronous
// waiter, else to that thread, and returns; the thread itself goes on
// while anything is queued. So a caller of Submit() never commits groups
// beyond the one that held its own item.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <utility>
#include <vector>

namespace medvault::store {

template <typename Item>
class GroupCommitter {
 public:
  // Commits one group (oldest item first) and records each item's outcome in
  // the item. Runs on the leader's thread, never concurrently with itself,
  // without the committer's lock held. Must not throw.
  using CommitFn = std::function<void(std::span<Item* const> group)>;

  explicit GroupCommitter(CommitFn commit) : commit_(std::move(commit)) {}
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  ~GroupCommitter() { Stop(); }

  // Commits what is still queued (every SubmitAsync's `done` has run when
  // this returns), then stops the committer's thread. For an owner whose
  // commit function needs what it is about to destroy. Idempotent. A
  // SubmitAsync from then on is committed on the caller's thread (and its
  // `done` run there) before it returns.
  void Stop() {
    {
      std::unique_lock<std::mutex> lock(mu_);
      stopping_ = true;
    }
    thread_cv_.notify_one();
    if (thread_.joinable()) {
      thread_.join();
    }
    // A synchronous leader may still be committing a group that holds
    // asynchronous items, or running their callbacks.
    std::unique_lock<std::mutex> lock(mu_);
    idle_cv_.wait(lock, [this] { return !leader_active_ && callbacks_running_ == 0; });
  }

  // Queues `item` and returns once a group holding it has been committed.
  // `item` belongs to the caller and is only touched by the commit function.
  //
  // Each waiter sleeps on its own condition variable and is woken only when
  // its item is done, or when it is the next leader: a commit wakes its
  // group and one next leader, not every waiter (notify_all on one shared
  // variable cost a context switch per waiter per group, a third of a read's
  // CPU under load).
  void Submit(Item& item) {
    Slot me(&item);
    std::unique_lock<std::mutex> lock(mu_);
    pending_.push_back(&me);
    while (!me.done) {
      if (leader_active_) {
        me.cv.wait(lock);
        continue;
      }
      LeadOneGroup(lock);
    }
    if (!leader_active_ && !pending_.empty()) {
      HandOverLocked();
    }
  }

  // Queues `item` and returns at once; `done` runs once the group holding
  // it has been committed (item's outcome set), on the leader's thread,
  // without the committer's lock. `item` must stay alive and untouched
  // until then (`done` may own it). `done` must not throw and must not
  // block: it delays the callers of the groups after it.
  void SubmitAsync(Item* item, std::function<void()> done) {
    auto slot = std::make_unique<Slot>(item);
    slot->done_fn = done ? std::move(done) : [] {};  // non-empty marks it asynchronous
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) {
      // Stopping (the thread may be gone): commit it here, then report.
      lock.unlock();
      Submit(*item);
      slot->done_fn();
      return;
    }
    if (!thread_.joinable()) {
      thread_ = std::thread([this] { ThreadMain(); });
    }
    pending_.push_back(slot.release());  // owned by the queue until done
    if (!leader_active_ && thread_idle_) {
      thread_cv_.notify_one();
    }
  }

  // Groups committed so far.
  uint64_t groups() const {
    std::lock_guard<std::mutex> lock(mu_);
    return groups_;
  }

 private:
  struct Slot {
    explicit Slot(Item* i) : item(i) {}
    Item* item;
    bool done = false;              // guarded by mu_
    std::condition_variable cv;     // a synchronous waiter's wake-up
    std::function<void()> done_fn;  // set: an asynchronous item (heap slot)
  };

  // REQUIRES: lock held, no leader active, pending_ not empty. Commits the
  // whole queue as one group; returns with the lock held and no leader.
  void LeadOneGroup(std::unique_lock<std::mutex>& lock) {
    leader_active_ = true;
    std::vector<Slot*> group;
    group.swap(pending_);
    lock.unlock();
    std::vector<Item*> items;
    items.reserve(group.size());
    for (const Slot* s : group) {
      items.push_back(s->item);
    }
    commit_(items);
    std::vector<std::unique_ptr<Slot>> finished;
    lock.lock();
    // Under the lock: a woken waiter returns and its Slot (on its stack)
    // goes away, so it must not be touched after the lock is released.
    for (Slot* s : group) {
      s->done = true;
      if (s->done_fn) {
        finished.emplace_back(s);
      } else {
        s->cv.notify_one();
      }
    }
    leader_active_ = false;
    ++groups_;
    if (finished.empty()) {
      idle_cv_.notify_all();
      return;
    }
    // The answers of asynchronous items leave now, before any next group;
    // the queue stays unled meanwhile only if nobody else takes it.
    ++callbacks_running_;
    lock.unlock();
    for (const auto& s : finished) {
      try {
        s->done_fn();
      } catch (...) {
        // A callback must not throw; one that does must not stop the
        // others (each releases a waiting answer) or the committer.
      }
    }
    lock.lock();
    --callbacks_running_;
    idle_cv_.notify_all();
  }

  // REQUIRES: lock held, no leader active, pending_ not empty. Wakes the
  // first synchronous waiter (the next leader), else the committer's thread.
  void HandOverLocked() {
    for (Slot* s : pending_) {
      if (!s->done_fn) {
        s->cv.notify_one();
        return;
      }
    }
    thread_cv_.notify_one();
  }

  void ThreadMain() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      if (!leader_active_ && !pending_.empty()) {
        LeadOneGroup(lock);
        continue;
      }
      if (stopping_ && pending_.empty() && !leader_active_) {
        return;
      }
      thread_idle_ = true;
      thread_cv_.wait(lock);
      thread_idle_ = false;
    }
  }

  const CommitFn commit_;
  mutable std::mutex mu_;
  std::vector<Slot*> pending_;  // guarded by mu_
  bool leader_active_ = false;  // guarded by mu_
  uint64_t groups_ = 0;         // guarded by mu_
  bool stopping_ = false;       // guarded by mu_
  bool thread_idle_ = false;    // guarded by mu_: waiting on thread_cv_
  int callbacks_running_ = 0;   // guarded by mu_: leaders running done callbacks
  std::condition_variable thread_cv_;
  std::condition_variable idle_cv_;  // no leader and no callbacks running (Stop)
  std::thread thread_;               // started by the first SubmitAsync (under mu_)
};

}  // namespace medvault::store
