// ChangeFeed on SQLite: the change_log table (sqlite_util.h: RecordChange,
// LatestChange, ChangesSince, the same functions the account and
// policy-entry stores record their changes with). Reads go through one
// read-only connection; waiting is polling, since another process's commit
// cannot wake this one.
#include <sqlite3.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "store/change_feed.h"
#include "store/sqlite_util.h"

namespace medvault::store {
namespace {

constexpr Migration kMigrations[] = {
    {1, kChangeLogSchema},
};

class SqliteChangeFeed final : public ChangeFeed {
 public:
  SqliteChangeFeed(std::unique_ptr<ReaderPool> readers, std::string db_filename,
                   std::chrono::milliseconds poll)
      : readers_(std::move(readers)), db_filename_(std::move(db_filename)), poll_(poll) {}

  Status AppendInTransaction(Transaction& txn, std::string_view domain,
                             std::string_view subject) override {
    if (domain != kChangeDomainAccount && domain != kChangeDomainPolicy) {
      return Status::InvalidArgument("unknown change domain");
    }
    if (subject.empty() || subject.size() > 64) {
      return Status::InvalidArgument("a change's subject must be 1..64 bytes");
    }
    auto* sqlite_txn = dynamic_cast<WriteTxn*>(&txn);
    if (sqlite_txn == nullptr) {
      return Status::FailedPrecondition("the change feed cannot join a transaction of the " +
                                        std::string(txn.backend()) + " backend");
    }
    if (!sqlite_txn->open()) {
      return Status::FailedPrecondition("a change must be recorded inside a write transaction");
    }
    const char* name = sqlite3_db_filename(sqlite_txn->conn().db(), "main");
    if (name == nullptr || db_filename_ != name) {
      return Status::FailedPrecondition(
          "a change must be recorded in a transaction on the feed's database");
    }
    return RecordChange(sqlite_txn->conn(), domain, subject);
  }

  Result<int64_t> Latest() override {
    ReaderPool::Lease r(*readers_);
    return LatestChange(r.conn());
  }

  Result<std::vector<ChangeRow>> Since(int64_t after, size_t limit) override {
    ReaderPool::Lease r(*readers_);
    return ChangesSince(r.conn(), after, limit);
  }

  Status WaitForChange(int64_t seen, std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      MV_ASSIGN_OR_RETURN(const int64_t latest, Latest());
      const auto now = std::chrono::steady_clock::now();
      if (latest != seen || now >= deadline) {
        return Status::Ok();
      }
      std::this_thread::sleep_for(
          std::min<std::chrono::steady_clock::duration>(poll_, deadline - now));
    }
  }

 private:
  std::unique_ptr<ReaderPool> readers_;
  const std::string db_filename_;
  const std::chrono::milliseconds poll_;
};

}  // namespace

Result<std::unique_ptr<ChangeFeed>> OpenSqliteChangeFeed(const std::filesystem::path& file,
                                                         const SqliteOptions& options,
                                                         std::chrono::milliseconds poll) {
  if (poll.count() <= 0) {
    return Status::InvalidArgument("the change feed's poll interval must be positive");
  }
  MV_RETURN_IF_ERROR(CreatePrivateDatabaseFile(file));
  std::string db_filename;
  {
    // The table first (the stores that write to it create it too), through
    // the file's one writer.
    MV_ASSIGN_OR_RETURN(std::shared_ptr<SharedWriter> shared, SharedWriter::Open(file, options));
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock, shared->Lock(options.synchronous_full));
    MV_RETURN_IF_ERROR(RunMigrations(shared->conn(), "change_feed_migrations", kMigrations));
    if (const char* name = sqlite3_db_filename(shared->conn().db(), "main"); name != nullptr) {
      db_filename = name;
    }
  }
  MV_ASSIGN_OR_RETURN(std::unique_ptr<ReaderPool> readers, ReaderPool::Open(file, options, 1));
  return std::unique_ptr<ChangeFeed>(
      new SqliteChangeFeed(std::move(readers), std::move(db_filename), poll));
}

}  // namespace medvault::store
