// Leader/follower group commit (internal to src/store; the SQLite stores and
// the SQLite ledger use it, docs/architecture.md "Persistence seam").
//
// Concurrent writers each queue one item and wait. A writer that finds no
// leader at work becomes the leader: it takes the whole queue as one group,
// runs the commit function on it outside the queue's lock (one transaction,
// so one fsync for the group), marks every item of the group done and wakes
// the others; a writer whose item is still queued then becomes the next
// leader. Every caller returns only after the commit that held its item has
// returned, so the caller's promise (durable when OK) is exactly the commit
// function's: nothing is acknowledged before the group is durable.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
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

  // Queues `item` and returns once a group holding it has been committed.
  // `item` belongs to the caller and is only touched by the commit function.
  //
  // Each waiter sleeps on its own condition variable and is woken only when
  // its item is done, or when it is first in the queue and no leader is at
  // work: a commit wakes its group and one next leader, not every waiter
  // (notify_all on one shared variable cost a context switch per waiter per
  // group, a third of a read's CPU under load).
  void Submit(Item& item) {
    Slot me{&item};
    std::unique_lock<std::mutex> lock(mu_);
    pending_.push_back(&me);
    while (!me.done) {
      if (leader_active_) {
        me.cv.wait(lock);
        continue;
      }
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
      lock.lock();
      // Under the lock: a woken waiter returns and its Slot (on its stack)
      // goes away, so it must not be touched after the lock is released.
      for (Slot* s : group) {
        s->done = true;
        if (s != &me) {
          s->cv.notify_one();
        }
      }
      leader_active_ = false;
      ++groups_;
      if (!pending_.empty()) {
        pending_.front()->cv.notify_one();  // the next leader
      }
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
    bool done = false;           // guarded by mu_
    std::condition_variable cv;  // this waiter's wake-up
  };

  const CommitFn commit_;
  mutable std::mutex mu_;
  std::vector<Slot*> pending_;  // guarded by mu_
  bool leader_active_ = false;  // guarded by mu_
  uint64_t groups_ = 0;         // guarded by mu_
};

}  // namespace medvault::store
