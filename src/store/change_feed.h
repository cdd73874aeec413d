// The change feed: how a running server learns of changes that other
// processes (a CLI command today, other servers tomorrow) made to shared
// state, whatever the backend (docs/architecture.md, "Changes made by another
// process" and "Persistence seam").
//
// A change is a ChangeRow (store.h): a domain (accounts, policy entries) and
// a subject (the account, the patient), numbered in commit order. The
// services read the rows through their stores (LatestChange, ChangesSince);
// the feed adds what a backend must provide for the server to be told:
// recording a change inside a write's own transaction, and waiting for the
// next one. SQLite: the change_log table, read by polling (a commit in another
// process cannot signal this one). PostgreSQL can fill it with
// LISTEN/NOTIFY (WaitForChange returns on the notification) without a change
// in the services or the app's ChangeWatcher.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "store/store.h"

namespace medvault::store {

// Thread-safe.
class ChangeFeed {
 public:
  virtual ~ChangeFeed() = default;

  // Records that `subject` of `domain` (kChangeDomainAccount or
  // kChangeDomainPolicy) changed, inside `txn`: the change becomes visible
  // with the write it describes, or never. FailedPrecondition for a
  // transaction the feed cannot join (not open, another backend, another
  // database); InvalidArgument for an unknown domain or a subject that is not
  // 1..64 bytes.
  virtual Status AppendInTransaction(Transaction& txn, std::string_view domain,
                                     std::string_view subject) = 0;
  // The newest seq (0 when there was no change).
  virtual Result<int64_t> Latest() = 0;
  // Changes after `after`, oldest first, at most `limit` (ChangesComplete
  // tells whether they are all of them).
  virtual Result<std::vector<ChangeRow>> Since(int64_t after, size_t limit) = 0;
  // Returns OK once Latest() differs from `seen`, or when `timeout` has
  // passed without a change; the caller then reads the changes. An error
  // when the backend cannot be read.
  virtual Status WaitForChange(int64_t seen, std::chrono::milliseconds timeout) = 0;
};

// The change_log table of the SQLite database `file` (created, with its own
// migration table "change_feed_migrations", when missing). WaitForChange
// reads the newest seq (one primary-key read) every `poll`.
Result<std::unique_ptr<ChangeFeed>> OpenSqliteChangeFeed(
    const std::filesystem::path& file, const SqliteOptions& options = {},
    std::chrono::milliseconds poll = std::chrono::milliseconds(25));

}  // namespace medvault::store
