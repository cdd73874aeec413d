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

}  // namespace
}  // namespace medvault::store
