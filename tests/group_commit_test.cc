// The group committer shared by the SQLite stores and the ledger: every item
// is committed exactly once, callers return only after the group holding
// their item was committed, concurrent callers share one commit, and a
// failed group fails its own members only.
#include "store/group_commit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/status.h"

namespace medvault::store {
namespace {

struct Item {
  int id = 0;
  Status result = Status::Internal("not committed");
  size_t group = 0;  // which commit held it (1-based)
};

TEST(GroupCommitTest, ALoneCallerIsItsOwnGroup) {
  std::vector<size_t> sizes;
  GroupCommitter<Item> committer([&](std::span<Item* const> group) {
    sizes.push_back(group.size());
    for (Item* item : group) {
      item->result = Status::Ok();
    }
  });
  Item a{1};
  committer.Submit(a);
  EXPECT_TRUE(a.result.ok());
  Item b{2};
  committer.Submit(b);
  EXPECT_TRUE(b.result.ok());
  EXPECT_EQ(sizes, (std::vector<size_t>{1, 1}));
  EXPECT_EQ(committer.groups(), 2u);
}

// While the first commit is held open, the others queue; they are then
// committed together in one group, and nobody returns before their group.
TEST(GroupCommitTest, WaitingCallersShareOneCommit) {
  constexpr int kWaiters = 6;
  std::mutex mu;
  std::condition_variable cv;
  bool release_first = false;
  int queued = 0;
  std::vector<std::vector<int>> groups;
  std::atomic<int> committed{0};
  GroupCommitter<Item> committer([&](std::span<Item* const> group) {
    std::unique_lock<std::mutex> lock(mu);
    groups.emplace_back();
    for (Item* item : group) {
      groups.back().push_back(item->id);
      item->group = groups.size();
    }
    if (groups.size() == 1) {
      cv.wait(lock, [&] { return release_first; });
    }
    for (Item* item : group) {
      item->result = Status::Ok();
      committed.fetch_add(1);
    }
  });
  std::vector<Item> items(kWaiters + 1);
  for (int i = 0; i <= kWaiters; ++i) {
    items[static_cast<size_t>(i)].id = i;
  }
  std::vector<std::thread> threads;
  threads.emplace_back([&] { committer.Submit(items[0]); });
  // The first group is open (the committer is inside it) before the others come.
  while (true) {
    std::lock_guard<std::mutex> lock(mu);
    if (!groups.empty()) {
      break;
    }
  }
  for (int i = 1; i <= kWaiters; ++i) {
    threads.emplace_back([&, i] {
      {
        std::lock_guard<std::mutex> lock(mu);
        ++queued;
      }
      committer.Submit(items[static_cast<size_t>(i)]);
      // Returned: its group has been committed.
      EXPECT_TRUE(items[static_cast<size_t>(i)].result.ok());
    });
  }
  // Let the waiters reach the queue, then release the first commit.
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (queued == kWaiters) {
        break;
      }
    }
    std::this_thread::yield();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  {
    std::lock_guard<std::mutex> lock(mu);
    release_first = true;
  }
  cv.notify_all();
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_EQ(committed.load(), kWaiters + 1);
  std::multiset<int> seen;
  for (const auto& g : groups) {
    seen.insert(g.begin(), g.end());
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kWaiters + 1));
  EXPECT_EQ(std::set<int>(seen.begin(), seen.end()).size(), seen.size()) << "committed twice";
  ASSERT_GE(groups.size(), 2u);
  EXPECT_EQ(groups[0], std::vector<int>{0});
  // The waiters did not each pay a commit: far fewer groups than callers
  // (normally exactly one more group; scheduling may split it).
  EXPECT_LT(groups.size(), static_cast<size_t>(kWaiters + 1));
  EXPECT_EQ(committer.groups(), groups.size());
}

// A group's failure is its members' outcome, and the next group starts clean.
TEST(GroupCommitTest, AFailedGroupFailsOnlyItsMembers) {
  bool fail = true;
  GroupCommitter<Item> committer([&](std::span<Item* const> group) {
    for (Item* item : group) {
      item->result = fail ? Status::IOError("disk full") : Status::Ok();
    }
  });
  Item a{1};
  committer.Submit(a);
  EXPECT_EQ(a.result.code(), StatusCode::kIOError);
  fail = false;
  Item b{2};
  committer.Submit(b);
  EXPECT_TRUE(b.result.ok());
  EXPECT_EQ(a.result.code(), StatusCode::kIOError) << "not touched again";
}

// An asynchronous item is committed once, its `done` runs after its group
// was committed (outcome set), and the caller did not wait for it.
TEST(GroupCommitTest, AsyncItemsAreDoneAfterTheirCommit) {
  constexpr int kItems = 200;
  std::atomic<int> commits{0};
  GroupCommitter<Item> committer([&](std::span<Item* const> group) {
    commits.fetch_add(1);
    for (Item* item : group) {
      item->result = Status::Ok();
    }
  });
  std::vector<Item> items(kItems);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int> done_ids;
  for (int i = 0; i < kItems; ++i) {
    items[static_cast<size_t>(i)].id = i;
    Item* item = &items[static_cast<size_t>(i)];
    committer.SubmitAsync(item, [&, item] {
      EXPECT_TRUE(item->result.ok()) << "done before its commit";
      std::lock_guard<std::mutex> lock(mu);
      done_ids.push_back(item->id);
      cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10),
                          [&] { return done_ids.size() == static_cast<size_t>(kItems); }));
  EXPECT_EQ(std::set<int>(done_ids.begin(), done_ids.end()).size(), static_cast<size_t>(kItems))
      << "an item done twice";
  EXPECT_EQ(committer.groups(), static_cast<uint64_t>(commits.load()));
}

// While a commit is held open, asynchronous submitters return at once (no
// caller waits) and their items form the next group, led by the committer's
// own thread; a failure is every member's outcome.
TEST(GroupCommitTest, AsyncSubmittersDoNotWaitAndShareTheNextGroup) {
  std::mutex mu;
  std::condition_variable cv;
  bool release_first = false;
  std::vector<size_t> sizes;
  GroupCommitter<Item> committer([&](std::span<Item* const> group) {
    std::unique_lock<std::mutex> lock(mu);
    sizes.push_back(group.size());
    if (sizes.size() == 1) {
      cv.wait(lock, [&] { return release_first; });
    }
    for (Item* item : group) {
      item->result = Status::IOError("disk full");
    }
  });
  Item first{0};
  std::thread leader([&] { committer.Submit(first); });
  while (true) {
    std::lock_guard<std::mutex> lock(mu);
    if (!sizes.empty()) {
      break;
    }
  }
  constexpr int kAsync = 5;
  std::vector<Item> items(kAsync);
  std::atomic<int> done{0};
  for (int i = 0; i < kAsync; ++i) {
    // Returns although the committer is blocked inside the first group.
    committer.SubmitAsync(&items[static_cast<size_t>(i)], [&] { done.fetch_add(1); });
  }
  EXPECT_EQ(done.load(), 0) << "done before any commit";
  {
    std::lock_guard<std::mutex> lock(mu);
    release_first = true;
  }
  cv.notify_all();
  leader.join();
  committer.Stop();  // drains: every done has run
  EXPECT_EQ(done.load(), kAsync);
  for (const Item& item : items) {
    EXPECT_EQ(item.result.code(), StatusCode::kIOError);
  }
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(sizes.size(), 2u);
  EXPECT_EQ(sizes[1], static_cast<size_t>(kAsync)) << "the waiting items share one group";
}

// Synchronous and asynchronous callers mixed from many threads: every item
// committed exactly once, every synchronous caller returns with its outcome,
// and nobody is left waiting (a lost hand-over would hang this test).
TEST(GroupCommitTest, MixedCallersAllComplete) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 300;
  std::mutex seen_mu;
  std::multiset<int> seen;
  GroupCommitter<Item> committer([&](std::span<Item* const> group) {
    std::lock_guard<std::mutex> lock(seen_mu);
    for (Item* item : group) {
      seen.insert(item->id);
      item->result = Status::Ok();
    }
  });
  std::vector<Item> items(kThreads * kPerThread);
  std::atomic<int> async_done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Item& item = items[static_cast<size_t>(t * kPerThread + i)];
        item.id = t * kPerThread + i;
        if ((i + t) % 3 == 0) {
          committer.Submit(item);
          EXPECT_TRUE(item.result.ok());
        } else {
          committer.SubmitAsync(&item, [&] { async_done.fetch_add(1); });
        }
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  committer.Stop();
  int async_expected = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      async_expected += (i + t) % 3 == 0 ? 0 : 1;
    }
  }
  EXPECT_EQ(async_done.load(), async_expected);
  std::lock_guard<std::mutex> lock(seen_mu);
  EXPECT_EQ(seen.size(), items.size());
  EXPECT_EQ(std::set<int>(seen.begin(), seen.end()).size(), items.size()) << "committed twice";
}

// A callback that throws does not stop the others of its group nor the
// committer; after Stop(), SubmitAsync commits on the caller's thread and
// runs `done` before it returns.
TEST(GroupCommitTest, ThrowingCallbacksAndSubmissionsAfterStop) {
  GroupCommitter<Item> committer([&](std::span<Item* const> group) {
    for (Item* item : group) {
      item->result = Status::Ok();
    }
  });
  std::vector<Item> items(4);
  std::atomic<int> done{0};
  for (size_t i = 0; i < items.size(); ++i) {
    committer.SubmitAsync(&items[i], [&, i] {
      done.fetch_add(1);
      if (i % 2 == 0) throw std::runtime_error("a misbehaving callback");
    });
  }
  committer.Stop();
  EXPECT_EQ(done.load(), 4);
  Item late{9};
  bool late_done = false;
  committer.SubmitAsync(&late, [&] { late_done = true; });
  EXPECT_TRUE(late_done) << "done before SubmitAsync returned";
  EXPECT_TRUE(late.result.ok());
  Item sync_after{10};
  committer.Submit(sync_after);
  EXPECT_TRUE(sync_after.result.ok());
}

}  // namespace
}  // namespace medvault::store
