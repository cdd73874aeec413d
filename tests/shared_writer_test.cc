// store::SharedWriter: the one write connection and group commit of a
// database file in this process (docs/architecture.md, "Persistence seam").
// Real SQLite files in a temp dir; concurrency from real threads.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite_util.h"
#include "test_util.h"

namespace medvault::store {
namespace {

namespace fs = std::filesystem;
using medvault::testing::TempDir;

class SharedWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = dir_.path() / "db.sqlite";
    ASSERT_TRUE(CreatePrivateDatabaseFile(file_).ok());
    auto w = SharedWriter::Open(file_, SqliteOptions{});
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    writer_ = *w;
    auto lock = writer_->Lock(true);
    ASSERT_TRUE(lock.ok());
    ASSERT_TRUE(writer_->conn()
                    .ExecScript("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL) STRICT",
                                "create table")
                    .ok());
  }

  // Inserts (k, v) as one group-committed item.
  Status Insert(int64_t k, const std::string& v, bool* after_ran = nullptr) {
    SharedWriter::Work work;
    work.apply = [&](WriteTxn& txn) -> Status {
      MV_STMT(s, txn.conn(), "INSERT INTO t(k, v) VALUES (?1, ?2)");
      s.Int(1, k).Text(2, v);
      return s.Exec("insert");
    };
    if (after_ran != nullptr) {
      work.after_commit = [after_ran] { *after_ran = true; };
    }
    writer_->Submit(work);
    return work.result;
  }

  // Rows as another connection (another process would) sees them.
  int64_t CountFromOutside(const std::string& where = "1") {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(file_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    const std::string sql = "SELECT COUNT(*) FROM t WHERE " + where;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_step(st), SQLITE_ROW);
    const int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
  }

  TempDir dir_;
  fs::path file_;
  std::shared_ptr<SharedWriter> writer_;
};

TEST_F(SharedWriterTest, OneWriterPerFileWhateverThePath) {
  auto again = SharedWriter::Open(file_, SqliteOptions{});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->get(), writer_.get());
  // The same file under another name (a symlink to its directory).
  fs::create_directory_symlink(dir_.path(), dir_.path() / "alias");
  auto aliased = SharedWriter::Open(dir_.path() / "alias" / "db.sqlite", SqliteOptions{});
  ASSERT_TRUE(aliased.ok());
  EXPECT_EQ(aliased->get(), writer_.get());
  // Another file: another writer.
  const fs::path other = dir_.path() / "other.sqlite";
  ASSERT_TRUE(CreatePrivateDatabaseFile(other).ok());
  auto second = SharedWriter::Open(other, SqliteOptions{});
  ASSERT_TRUE(second.ok());
  EXPECT_NE(second->get(), writer_.get());
  // Once every user let go, the next Open gets a fresh, working connection.
  writer_.reset();
  again->reset();
  aliased->reset();
  auto fresh = SharedWriter::Open(file_, SqliteOptions{});
  ASSERT_TRUE(fresh.ok());
  writer_ = *fresh;
  ASSERT_TRUE(Insert(1, "after reopen").ok());
  EXPECT_EQ(CountFromOutside(), 1);
  EXPECT_FALSE(SharedWriter::Open(dir_.path() / "absent.sqlite", SqliteOptions{}).ok());
}

// Items refused inside a group roll back alone: the others commit, each
// caller gets its own result, and after_commit runs only for committed ones.
TEST_F(SharedWriterTest, ARefusedItemRollsBackAloneInItsGroup) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  std::atomic<int> ok{0}, refused{0}, after{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Every fifth key is taken twice: the second insert is refused.
        const int64_t k = t * 1000 + i - (i % 5 == 4 ? 1 : 0);
        bool ran = false;
        Status st = Insert(k, "v", &ran);
        if (st.ok()) {
          ++ok;
          after += ran ? 1 : 0;
        } else {
          EXPECT_EQ(st.code(), StatusCode::kAlreadyExists) << st.ToString();
          EXPECT_FALSE(ran);
          ++refused;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(refused.load(), kThreads * kPerThread / 5);
  EXPECT_EQ(ok.load(), kThreads * kPerThread - refused.load());
  EXPECT_EQ(after.load(), ok.load());
  EXPECT_EQ(CountFromOutside(), ok.load());
  // Concurrent callers shared groups: fewer commits than items.
  EXPECT_LT(writer_->groups(), static_cast<uint64_t>(kThreads * kPerThread));
}

// A failed commit fails every item of its group that had succeeded, and no
// after_commit runs. Caused for real: another connection holds the write
// lock past the busy timeout.
TEST_F(SharedWriterTest, ABlockedCommitFailsTheGroupAndRunsNoAfterCommit) {
  writer_.reset();
  SqliteOptions impatient;
  impatient.busy_timeout_ms = 50;
  auto w = SharedWriter::Open(file_, impatient);
  ASSERT_TRUE(w.ok());
  writer_ = *w;
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(file_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  bool ran = false;
  Status st = Insert(7, "blocked", &ran);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_FALSE(ran);
  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  ASSERT_TRUE(Insert(7, "free again", &ran).ok());
  EXPECT_TRUE(ran);
  EXPECT_EQ(CountFromOutside("k = 7"), 1);
}

// Durability is chosen per group: FULL when any item asks for it.
TEST_F(SharedWriterTest, SynchronousFollowsTheItems) {
  auto mode = [&]() -> int64_t {
    auto lock = writer_->Lock(false);  // sets NORMAL for what follows
    EXPECT_TRUE(lock.ok());
    auto raw = writer_->conn().Prepare("PRAGMA synchronous");
    EXPECT_TRUE(raw.ok());
    Stmt s(*raw);
    auto row = s.Step("pragma");
    EXPECT_TRUE(row.ok() && *row);
    return s.ColInt(0);
  };
  EXPECT_EQ(mode(), 1);  // NORMAL
  SharedWriter::Work work;
  int64_t seen = -1;
  work.full_sync = true;
  work.apply = [&](WriteTxn& txn) -> Status {
    MV_STMT(s, txn.conn(), "PRAGMA synchronous");
    MV_ASSIGN_OR_RETURN(bool row, s.Step("pragma"));
    seen = row ? s.ColInt(0) : -1;
    return Status::Ok();
  };
  writer_->Submit(work);
  ASSERT_TRUE(work.result.ok()) << work.result.ToString();
  EXPECT_EQ(seen, 2);  // FULL
  work.full_sync = false;
  writer_->Submit(work);
  ASSERT_TRUE(work.result.ok());
  EXPECT_EQ(seen, 1);
}

}  // namespace
}  // namespace medvault::store
