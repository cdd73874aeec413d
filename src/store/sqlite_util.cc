#include "store/sqlite_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "common/ids.h"

namespace medvault::store {
namespace {

// A statement prepared for one use (the migration table name is not a literal,
// so it cannot go through the connection's cache).
class OneShot {
 public:
  OneShot() = default;
  ~OneShot() { sqlite3_finalize(stmt_); }
  OneShot(const OneShot&) = delete;
  OneShot& operator=(const OneShot&) = delete;
  Status Prepare(Connection& conn, const std::string& sql) {
    const int rc = sqlite3_prepare_v2(conn.db(), sql.c_str(), -1, &stmt_, nullptr);
    if (rc != SQLITE_OK) {
      return FromSqlite(rc, "prepare migration statement");
    }
    return Status::Ok();
  }
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

bool IsIdentifier(std::string_view s) {
  if (s.empty() || s.size() > 64) {
    return false;
  }
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || c == '_' || (c >= '0' && c <= '9'))) {
      return false;
    }
  }
  return true;
}

}  // namespace

Status CreatePrivateDatabaseFile(const std::filesystem::path& file) {
  // Never open() an existing database file: SQLite's locks are POSIX advisory
  // locks, which the kernel drops for the whole process when ANY descriptor
  // of the file is closed. Opening and closing the file beside this process's
  // own connections silently dropped their SHARED lock, and another process
  // (a CLI command beside the server) then took EXCLUSIVE, checkpointed and
  // deleted the WAL the server was still using. So: lstat only when it
  // exists; create it (O_EXCL) only when it is absent, when no connection of
  // this process can hold it.
  struct stat st {};
  if (::lstat(file.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) {
      return Status::FailedPrecondition("database file " + file.string() +
                                        " is not a regular file");
    }
    if ((st.st_mode & 077) != 0 && ::chmod(file.c_str(), 0600) != 0) {
      // chmod works on the path and leaves descriptors (and locks) alone.
      return Status::IOError("cannot make database file " + file.string() +
                             " owner-only: " + std::string(std::strerror(errno)));
    }
    return Status::Ok();
  }
  if (errno != ENOENT) {
    return Status::IOError("cannot inspect database file " + file.string() + ": " +
                           std::string(std::strerror(errno)));
  }
  const int fd = ::open(file.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) {
      return Status::Ok();  // another process created it meanwhile
    }
    return Status::IOError("cannot create database file " + file.string() + ": " +
                           std::string(std::strerror(errno)));
  }
  // The umask may have taken bits away; the mode is 0600 whatever it is
  // (SQLite gives the -wal and -shm files the database file's mode).
  const int rc = ::fchmod(fd, 0600);
  const int err = errno;
  ::close(fd);  // a file this call created: no connection of ours holds it
  if (rc != 0) {
    return Status::IOError("cannot set the mode of database file " + file.string() + ": " +
                           std::string(std::strerror(err)));
  }
  return Status::Ok();
}

namespace {
constexpr std::string_view kSqlInsertChange =
    "INSERT INTO change_log(domain, subject) VALUES (?1, ?2)";
constexpr std::string_view kSqlPruneChanges = "DELETE FROM change_log WHERE seq <= ?1";
constexpr std::string_view kSqlLatestChange = "SELECT COALESCE(MAX(seq), 0) FROM change_log";
constexpr std::string_view kSqlChangesSince =
    "SELECT seq, domain, subject FROM change_log WHERE seq > ?1 ORDER BY seq LIMIT ?2";
}  // namespace

Status RecordChange(Connection& conn, std::string_view domain, std::string_view subject) {
  {
    MV_STMT(s, conn, kSqlInsertChange);
    s.Text(1, domain).Text(2, subject);
    MV_RETURN_IF_ERROR(s.Exec("record change"));
  }
  const int64_t seq = sqlite3_last_insert_rowid(conn.db());
  if (seq > kChangeLogKeep && seq % 64 == 0) {  // prune now and then, not on every write
    MV_STMT(s, conn, kSqlPruneChanges);
    s.Int(1, seq - kChangeLogKeep);
    MV_RETURN_IF_ERROR(s.Exec("prune change log"));
  }
  return Status::Ok();
}

Result<int64_t> LatestChange(Connection& conn) {
  MV_STMT(s, conn, kSqlLatestChange);
  MV_ASSIGN_OR_RETURN(bool row, s.Step("read change log"));
  return row ? s.ColInt(0) : 0;
}

Result<std::vector<ChangeRow>> ChangesSince(Connection& conn, int64_t after, size_t limit) {
  MV_STMT(s, conn, kSqlChangesSince);
  s.Int(1, after).Int(2, static_cast<int64_t>(limit));
  std::vector<ChangeRow> out;
  while (true) {
    MV_ASSIGN_OR_RETURN(bool row, s.Step("read change log"));
    if (!row) {
      return out;
    }
    out.push_back({s.ColInt(0), s.ColText(1), s.ColText(2)});
  }
}

bool ChangesComplete(const std::vector<ChangeRow>& rows, int64_t after, int64_t latest,
                     size_t limit) {
  if (rows.size() >= limit) {
    return false;
  }
  if (rows.empty()) {
    return latest == after;  // latest < after: the database went back (restored)
  }
  // seq is the rowid of a table whose newest row is never deleted, so the
  // rows are numbered without holes; a hole means pruned.
  return rows.front().seq == after + 1 &&
         rows.back().seq - rows.front().seq + 1 == static_cast<int64_t>(rows.size());
}

Result<std::unique_ptr<ReaderPool>> ReaderPool::Open(const std::filesystem::path& file,
                                                     const SqliteOptions& options, int count) {
  std::unique_ptr<ReaderPool> pool(new ReaderPool());
  for (int i = 0; i < count; ++i) {
    MV_ASSIGN_OR_RETURN(std::unique_ptr<Connection> reader,
                        Connection::Open(file, /*read_only=*/true, options));
    pool->free_.push_back(reader.get());
    pool->connections_.push_back(std::move(reader));
  }
  return pool;
}

ReaderPool::Lease::Lease(ReaderPool& pool) : pool_(pool) {
  std::unique_lock<std::mutex> lock(pool_.mu_);
  pool_.cv_.wait(lock, [this] { return !pool_.free_.empty(); });
  conn_ = pool_.free_.back();
  pool_.free_.pop_back();
}

ReaderPool::Lease::~Lease() {
  {
    std::lock_guard<std::mutex> lock(pool_.mu_);
    pool_.free_.push_back(conn_);
  }
  pool_.cv_.notify_one();
}

Status RunMigrations(Connection& conn, std::string_view table,
                     std::span<const Migration> migrations) {
  if (!IsIdentifier(table)) {
    return Status::Internal("invalid migration table name");
  }
  const std::string name(table);
  const std::string create = "CREATE TABLE IF NOT EXISTS " + name +
                             "(version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL)";
  MV_RETURN_IF_ERROR(conn.ExecScript(create.c_str(), "create " + name));
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  for (const Migration& m : migrations) {
    WriteTxn txn(conn);
    MV_RETURN_IF_ERROR(txn.Begin());
    int64_t current = 0;
    {
      // Read inside the transaction: another process may have migrated.
      OneShot s;
      MV_RETURN_IF_ERROR(s.Prepare(conn, "SELECT COALESCE(MAX(version), 0) FROM " + name));
      const int rc = sqlite3_step(s.get());
      if (rc != SQLITE_ROW) {
        return FromSqlite(sqlite3_extended_errcode(conn.db()), "read schema version");
      }
      current = sqlite3_column_int64(s.get(), 0);
    }
    if (current > latest) {
      return Status::FailedPrecondition("database schema version " + std::to_string(current) +
                                        " is newer than this medvault (" + std::to_string(latest) +
                                        ", " + name + ")");
    }
    if (current >= m.version) {
      continue;  // rolled back by txn; nothing was written
    }
    if (current != m.version - 1) {
      return Status::Internal("schema migrations are not contiguous");
    }
    MV_RETURN_IF_ERROR(
        conn.ExecScript(m.sql, "apply schema migration " + std::to_string(m.version)));
    {
      OneShot s;
      MV_RETURN_IF_ERROR(
          s.Prepare(conn, "INSERT INTO " + name + "(version, applied_at_ms) VALUES (?1, ?2)"));
      sqlite3_bind_int64(s.get(), 1, m.version);
      sqlite3_bind_int64(s.get(), 2, NowUnixMillis());
      if (sqlite3_step(s.get()) != SQLITE_DONE) {
        return FromSqlite(sqlite3_extended_errcode(conn.db()), "record schema migration");
      }
    }
    MV_RETURN_IF_ERROR(txn.Commit());
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// SharedWriter

namespace {

// The shared writers of this process, by the database file's identity
// (device and inode: the same file under two paths is one database).
std::mutex g_writers_mu;
std::map<std::pair<dev_t, ino_t>, std::weak_ptr<SharedWriter>>& Writers() {
  static auto* writers = new std::map<std::pair<dev_t, ino_t>, std::weak_ptr<SharedWriter>>();
  return *writers;
}

}  // namespace

Result<std::shared_ptr<SharedWriter>> SharedWriter::Open(const std::filesystem::path& file,
                                                         const SqliteOptions& options) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    return Status::IOError("cannot inspect database file " + file.string() + ": " +
                           std::string(std::strerror(errno)));
  }
  const std::pair<dev_t, ino_t> id{st.st_dev, st.st_ino};
  std::lock_guard<std::mutex> lock(g_writers_mu);
  auto& writers = Writers();
  if (auto it = writers.find(id); it != writers.end()) {
    if (std::shared_ptr<SharedWriter> live = it->second.lock()) {
      return live;
    }
  }
  std::shared_ptr<SharedWriter> writer(new SharedWriter());
  MV_ASSIGN_OR_RETURN(writer->conn_, Connection::Open(file, /*read_only=*/false, options));
  writer->synchronous_full_ = options.synchronous_full ? 1 : 0;
  writers[id] = writer;
  return writer;
}

SharedWriter::~SharedWriter() {
  // Closing the connection (the last one of the process on the file)
  // checkpoints and removes the WAL. The registry entry expires with us.
  // Items still queued asynchronously are committed first.
  committer_.Stop();
  std::lock_guard<std::mutex> lock(mu_);
  conn_.reset();
}

Status SharedWriter::SetSynchronousLocked(bool full) {
  if (synchronous_full_ == (full ? 1 : 0)) {
    return Status::Ok();
  }
  MV_RETURN_IF_ERROR(conn_->ExecScript(
      full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", "set synchronous"));
  synchronous_full_ = full ? 1 : 0;
  return Status::Ok();
}

Result<std::unique_lock<std::mutex>> SharedWriter::Lock(bool full_sync) {
  std::unique_lock<std::mutex> lock(mu_);
  MV_RETURN_IF_ERROR(SetSynchronousLocked(full_sync));
  return lock;
}

void SharedWriter::Submit(Work& work) { committer_.Submit(work); }

void SharedWriter::SubmitAsync(std::shared_ptr<Work> work,
                               std::function<void(const Status&)> done) {
  Work* item = work.get();
  committer_.SubmitAsync(item, [work = std::move(work), done = std::move(done)] {
    if (done) {
      done(work->result);
    }
  });
}

Status SharedWriter::Run(std::function<Status(WriteTxn& txn)> apply, bool full_sync) {
  Work work;
  work.apply = std::move(apply);
  work.full_sync = full_sync;
  Submit(work);
  return work.result;
}

uint64_t SharedWriter::groups() const { return committer_.groups(); }

void SharedWriter::CommitGroup(std::span<Work* const> group) {
  std::lock_guard<std::mutex> lock(mu_);
  auto fail_all = [&group](const Status& st) {
    for (Work* w : group) {
      w->result = st;
    }
  };
  bool full = false;
  for (const Work* w : group) {
    full = full || w->full_sync;
  }
  Status st = SetSynchronousLocked(full);
  if (!st.ok()) {
    fail_all(st);
    return;
  }
  WriteTxn txn(*conn_);
  st = txn.Begin();
  if (!st.ok()) {
    fail_all(st);
    return;
  }
  if (group.size() == 1) {
    // Alone in its group: no savepoint needed, a refusal rolls back all.
    Work* w = group.front();
    w->result = w->apply(txn);
    if (!w->result.ok()) {
      return;  // WriteTxn rolls back
    }
    st = txn.Commit();
    if (!st.ok()) {
      w->result = st;
      return;
    }
    if (w->after_commit) {
      w->after_commit();
    }
    return;
  }
  for (Work* w : group) {
    st = conn_->Run("SAVEPOINT item", "savepoint");
    if (st.ok()) {
      w->result = w->apply(txn);
      if (!w->result.ok()) {
        st = conn_->Run("ROLLBACK TO item", "rollback to savepoint");
      }
      if (st.ok()) {
        st = conn_->Run("RELEASE item", "release savepoint");
      }
    }
    if (!st.ok()) {
      // The transaction itself is in doubt: fail the whole group.
      fail_all(st);
      return;  // WriteTxn rolls back
    }
  }
  st = txn.Commit();
  if (!st.ok()) {
    for (Work* w : group) {
      if (w->result.ok()) {
        w->result = st;
      }
    }
    return;
  }
  for (Work* w : group) {
    if (w->result.ok() && w->after_commit) {
      w->after_commit();
    }
  }
}

}  // namespace medvault::store
