// The SQLite change feed: a change recorded in a write's transaction is seen
// with it or never, transactions it cannot join are refused, and a waiter
// wakes on another connection's commit well before its timeout.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "store/change_feed.h"
#include "store/sqlite_util.h"
#include "test_util.h"

namespace medvault::store {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

class SqliteChangeFeedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = dir_.path() / "metadata.db";
    auto feed = OpenSqliteChangeFeed(file_, {}, milliseconds(5));
    ASSERT_TRUE(feed.ok()) << feed.status().ToString();
    feed_ = std::move(*feed);
    auto conn = Connection::Open(file_, /*read_only=*/false, {});
    ASSERT_TRUE(conn.ok());
    writer_ = std::move(*conn);
  }

  // Records one change in its own committed transaction on writer_.
  Status Record(std::string_view domain, std::string_view subject) {
    WriteTxn txn(*writer_);
    MV_RETURN_IF_ERROR(txn.Begin());
    MV_RETURN_IF_ERROR(feed_->AppendInTransaction(txn, domain, subject));
    return txn.Commit();
  }

  medvault::testing::TempDir dir_;
  std::filesystem::path file_;
  std::unique_ptr<ChangeFeed> feed_;
  std::unique_ptr<Connection> writer_;
};

TEST_F(SqliteChangeFeedTest, AChangeIsSeenWithItsTransactionOrNever) {
  EXPECT_EQ(*feed_->Latest(), 0);
  ASSERT_TRUE(Record(kChangeDomainAccount, "acct-1").ok());
  {
    WriteTxn txn(*writer_);
    ASSERT_TRUE(txn.Begin().ok());
    ASSERT_TRUE(feed_->AppendInTransaction(txn, kChangeDomainPolicy, "patient-1").ok());
    // No commit: rolled back with the write it described.
  }
  ASSERT_TRUE(Record(kChangeDomainPolicy, "patient-2").ok());
  EXPECT_EQ(*feed_->Latest(), 2);
  auto rows = feed_->Since(0, 10);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].domain, "account");
  EXPECT_EQ((*rows)[0].subject, "acct-1");
  EXPECT_EQ((*rows)[1].subject, "patient-2");
  EXPECT_TRUE(ChangesComplete(*rows, 0, 2, 10));
  EXPECT_EQ(feed_->Since(1, 10)->size(), 1u);
}

TEST_F(SqliteChangeFeedTest, RefusesWhatItCannotRecord) {
  {
    WriteTxn idle(*writer_);  // not begun
    EXPECT_EQ(feed_->AppendInTransaction(idle, kChangeDomainAccount, "a").code(),
              StatusCode::kFailedPrecondition);
  }
  auto other = Connection::Open(dir_.path() / "other.db", /*read_only=*/false, {});
  ASSERT_TRUE(other.ok());
  {
    WriteTxn txn(**other);
    ASSERT_TRUE(txn.Begin().ok());
    EXPECT_EQ(feed_->AppendInTransaction(txn, kChangeDomainAccount, "a").code(),
              StatusCode::kFailedPrecondition);
  }
  class OtherBackend final : public Transaction {
   public:
    std::string_view backend() const override { return "postgresql"; }
  } foreign;
  EXPECT_EQ(feed_->AppendInTransaction(foreign, kChangeDomainAccount, "a").code(),
            StatusCode::kFailedPrecondition);
  WriteTxn txn(*writer_);
  ASSERT_TRUE(txn.Begin().ok());
  EXPECT_EQ(feed_->AppendInTransaction(txn, "records", "a").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(feed_->AppendInTransaction(txn, kChangeDomainAccount, "").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(feed_->AppendInTransaction(txn, kChangeDomainAccount, std::string(65, 'x')).code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(txn.Commit().ok());
  EXPECT_EQ(*feed_->Latest(), 0);
  EXPECT_EQ(OpenSqliteChangeFeed(file_, {}, milliseconds(0)).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(SqliteChangeFeedTest, AWaiterWakesOnACommitAndOtherwiseAtItsTimeout) {
  auto start = steady_clock::now();
  ASSERT_TRUE(feed_->WaitForChange(0, milliseconds(60)).ok());
  EXPECT_GE(steady_clock::now() - start, milliseconds(60)) << "returned without a change";

  std::thread writer([&] {
    std::this_thread::sleep_for(milliseconds(50));
    EXPECT_TRUE(Record(kChangeDomainPolicy, "patient-3").ok());
  });
  start = steady_clock::now();
  ASSERT_TRUE(feed_->WaitForChange(0, std::chrono::seconds(30)).ok());
  const auto waited = steady_clock::now() - start;
  writer.join();
  EXPECT_EQ(*feed_->Latest(), 1);
  EXPECT_LT(waited, std::chrono::seconds(10)) << "the commit did not wake the waiter";
  // Already past `seen`: returns at once.
  start = steady_clock::now();
  ASSERT_TRUE(feed_->WaitForChange(0, std::chrono::seconds(30)).ok());
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(10));
}

}  // namespace
}  // namespace medvault::store
