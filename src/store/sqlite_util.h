// SQLite plumbing shared by the SQLite-backed stores (internal to src/store).
//
// Connection: one sqlite3 handle used by one thread at a time, with a cache of
// prepared statements keyed by the address of their (literal) SQL text.
// Stmt: a borrowed cached statement, reset on release. WriteTxn: BEGIN
// IMMEDIATE that rolls back unless committed. RunMigrations: versioned,
// append-only schema migrations tracked in a table of the caller's choosing,
// so that several stores can share one database file.
//
// Error messages name the operation and the SQLite result code, never bound
// values.
#pragma once

#include <sqlite3.h>

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "store/group_commit.h"
#include "store/store.h"

namespace medvault::store {

struct Migration {
  int version;
  const char* sql;
};

// ---------------------------------------------------------------------------
// Error mapping.

inline Status FromSqlite(int rc, std::string_view what) {
  const int primary = rc & 0xff;
  std::string message = std::string(what) + ": " + sqlite3_errstr(rc);
  switch (primary) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Unavailable(std::move(message));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::DataLoss(std::move(message));
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return Status::IOError(std::move(message));
    case SQLITE_NOMEM:
      return Status::ResourceExhausted(std::move(message));
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
        return Status::AlreadyExists(std::move(message));
      }
      return Status::FailedPrecondition(std::move(message));
    default:
      return Status::Internal(std::move(message));
  }
}

// ---------------------------------------------------------------------------
// Connections and statements.

// A cached statement borrowed for one use; reset (and unbound) on release.
class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~Stmt() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // Binders return the SQLite code; checked together by Bound().
  Stmt& Text(int i, std::string_view v) {
    Note(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& Int(int i, int64_t v) {
    Note(sqlite3_bind_int64(stmt_, i, v));
    return *this;
  }
  // Empty blobs are stored as NULL (absent), matching "empty" in the records.
  Stmt& Blob(int i, ByteView v) {
    if (v.empty()) {
      Note(sqlite3_bind_null(stmt_, i));
    } else {
      Note(sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    }
    return *this;
  }
  Stmt& Null(int i) {
    Note(sqlite3_bind_null(stmt_, i));
    return *this;
  }

  // SQLITE_ROW → true, SQLITE_DONE → false.
  Result<bool> Step(std::string_view what) {
    if (bind_rc_ != SQLITE_OK) {
      return FromSqlite(bind_rc_, what);
    }
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) {
      return true;
    }
    if (rc == SQLITE_DONE) {
      return false;
    }
    return FromSqlite(sqlite3_extended_errcode(sqlite3_db_handle(stmt_)), what);
  }
  // Steps a statement that returns no rows.
  Status Exec(std::string_view what) {
    MV_ASSIGN_OR_RETURN(bool row, Step(what));
    (void)row;
    return Status::Ok();
  }

  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  // For columns of type ANY, which hold values of several storage classes.
  bool IsBlob(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_BLOB; }
  int64_t ColInt(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string ColText(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    const int n = sqlite3_column_bytes(stmt_, col);
    return p == nullptr ? std::string() : std::string(p, static_cast<size_t>(n));
  }
  Bytes ColBlob(int col) const {
    const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, col));
    const int n = sqlite3_column_bytes(stmt_, col);
    return p == nullptr ? Bytes() : Bytes(p, p + n);
  }

 private:
  void Note(int rc) {
    if (bind_rc_ == SQLITE_OK) {
      bind_rc_ = rc;
    }
  }
  sqlite3_stmt* stmt_;
  int bind_rc_ = SQLITE_OK;
};

class Connection {
 public:
  ~Connection() {
    for (auto& [sql, stmt] : cache_) {
      sqlite3_finalize(stmt);
    }
    sqlite3_close_v2(db_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  static Result<std::unique_ptr<Connection>> Open(const std::filesystem::path& file, bool read_only,
                                                  const SqliteOptions& options) {
    sqlite3* db = nullptr;
    const int flags =
        (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
        SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    const int rc = sqlite3_open_v2(file.c_str(), &db, flags, nullptr);
    std::unique_ptr<Connection> conn(new Connection(db));
    if (rc != SQLITE_OK) {
      return FromSqlite(rc, "open database");
    }
    sqlite3_extended_result_codes(db, 1);
    // Refuse schema tricks that a tampered database file could use to run
    // code on open (defensive mode, untrusted schema).
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
    sqlite3_busy_timeout(db, options.busy_timeout_ms);
    if (!read_only) {
      MV_RETURN_IF_ERROR(conn->ExpectPragma("PRAGMA journal_mode=WAL", "wal"));
      MV_RETURN_IF_ERROR(conn->ExecScript("PRAGMA foreign_keys=ON", "enable foreign keys"));
      MV_RETURN_IF_ERROR(conn->ExecScript("PRAGMA secure_delete=ON", "enable secure_delete"));
      MV_RETURN_IF_ERROR(conn->ExecScript(
          options.synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
          "set synchronous"));
    }
    return conn;
  }

  sqlite3* db() const { return db_; }

  // Returns the cached statement for `sql`, preparing it on first use. The
  // cache keeps its own copy of the text, so `sql` may be any string (a
  // verification's SQL once lived in a freed std::string used as the key).
  Result<sqlite3_stmt*> Prepare(std::string_view sql) {
    if (auto it = cache_.find(sql); it != cache_.end()) {
      return it->second;
    }
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      // The SQL text is ours and carries no values, so errmsg is safe here.
      return Status::Internal(std::string("prepare statement: ") + sqlite3_errmsg(db_));
    }
    cache_.emplace(std::string(sql), stmt);
    return stmt;
  }

  // Runs uncached SQL without parameters (pragmas, migrations, BEGIN/COMMIT).
  // Runs one statement without results through the statement cache: for
  // the transaction and savepoint commands every write repeats.
  Status Run(std::string_view sql, std::string_view what);

  Status ExecScript(const char* sql, std::string_view what) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    sqlite3_free(err);
    if (rc != SQLITE_OK) {
      return FromSqlite(sqlite3_extended_errcode(db_), what);
    }
    return Status::Ok();
  }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}

  Status ExpectPragma(const char* sql, std::string_view want) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      return FromSqlite(rc, "prepare pragma");
    }
    rc = sqlite3_step(stmt);
    std::string got;
    if (rc == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
      got = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    const int ext = sqlite3_extended_errcode(db_);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW) {
      return FromSqlite(ext, "set journal mode");
    }
    if (got != want) {
      return Status::FailedPrecondition("database could not switch to " + std::string(want) +
                                        " journal mode");
    }
    return Status::Ok();
  }

  sqlite3* db_;
  // Keyed by the SQL text it owns; looked up by string_view without a copy.
  struct TextHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, sqlite3_stmt*, TextHash, std::equal_to<>> cache_;
};

// An IMMEDIATE transaction on the writer; rolls back unless committed. The
// SQLite store::Transaction: what the stores hand to their AuditSink, which
// appends on conn() (the ledger's SQLite tables live in the same file).
inline Status Connection::Run(std::string_view sql, std::string_view what) {
  MV_ASSIGN_OR_RETURN(sqlite3_stmt * raw, Prepare(sql));
  Stmt s(raw);
  return s.Exec(what);
}

// A read transaction on a reader connection: every statement inside it sees
// one snapshot of the database (WAL mode). Ends (COMMIT) at destruction.
class ReadTxn {
 public:
  explicit ReadTxn(Connection& conn) : conn_(conn) {}
  ~ReadTxn() {
    if (active_) {
      (void)conn_.Run("COMMIT", "end read transaction");
    }
  }
  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;
  Status Begin() {
    MV_RETURN_IF_ERROR(conn_.Run("BEGIN", "begin read transaction"));
    active_ = true;
    return Status::Ok();
  }

 private:
  Connection& conn_;
  bool active_ = false;
};

class WriteTxn final : public Transaction {
 public:
  explicit WriteTxn(Connection& conn) : conn_(conn) {}
  ~WriteTxn() override {
    if (active_) {
      (void)conn_.ExecScript("ROLLBACK", "rollback");
    }
  }

  std::string_view backend() const override { return "sqlite"; }

  // Cached statements (no SQL parsing per transaction).
  Status Begin() {
    MV_RETURN_IF_ERROR(conn_.Run("BEGIN IMMEDIATE", "begin transaction"));
    active_ = true;
    return Status::Ok();
  }
  Status Commit() {
    Status st = conn_.Run("COMMIT", "commit transaction");
    if (st.ok() || sqlite3_get_autocommit(conn_.db()) != 0) {
      active_ = false;  // committed, or SQLite already rolled back
    }
    return st;
  }

  // True between Begin and Commit while SQLite has the transaction open.
  bool open() const { return active_ && sqlite3_get_autocommit(conn_.db()) == 0; }
  Connection& conn() { return conn_; }

 private:
  Connection& conn_;
  bool active_ = false;
};

// Borrows the cached statement for `sql` from `conn` as Stmt `var` (Stmt is
// not movable, so it cannot travel through Result).
#define MV_STMT(var, conn, sql)                                      \
  MV_ASSIGN_OR_RETURN(sqlite3_stmt* var##_raw, (conn).Prepare(sql)); \
  Stmt var(var##_raw)

// CheckInt64 is declared in store.h (one for every backend).

// Creates `file` owner-only (0600) when missing, before SQLite would create it
// under the process umask; SQLite gives the -wal and -shm files its mode. An
// existing file is never opened (only lstat, and chmod when group or others
// have bits): closing any descriptor of a database file would drop every
// SQLite lock this process holds on it. FailedPrecondition when `file` is not
// a regular file (e.g. a symbolic link).
Status CreatePrivateDatabaseFile(const std::filesystem::path& file);

// ---------------------------------------------------------------------------
// The change log (ChangeRow in store.h): one small table shared by the stores
// whose changes another process must see (accounts and sessions, policy
// entries). Every such write inserts a row in its own transaction; readers
// poll the newest seq (one primary-key read) and fetch the rows after the
// last one they applied. The newest kChangeLogKeep rows are kept; a reader
// that fell further behind sees a gap and reloads everything.

inline constexpr int64_t kChangeLogKeep = 10000;

// The migration SQL that creates the table (idempotent: each store that
// writes to it has it in its own migrations).
inline constexpr const char* kChangeLogSchema = R"sql(
CREATE TABLE IF NOT EXISTS change_log (
  seq     INTEGER PRIMARY KEY,
  domain  TEXT NOT NULL CHECK (domain IN ('account', 'policy')),
  subject TEXT NOT NULL CHECK (length(subject) BETWEEN 1 AND 64)
) STRICT;
)sql";

// Appends a change and drops rows older than the newest kChangeLogKeep.
// REQUIRES: a write transaction open on `conn` (the change commits with the
// write it describes, or not at all).
Status RecordChange(Connection& conn, std::string_view domain, std::string_view subject);
// The newest seq (0 when the log is empty).
Result<int64_t> LatestChange(Connection& conn);
// Rows with seq > `after`, oldest first, at most `limit`.
Result<std::vector<ChangeRow>> ChangesSince(Connection& conn, int64_t after, size_t limit);

// A fixed set of read-only connections on one database file, each borrowed
// by one thread at a time for a scope (Lease). In WAL mode readers run
// concurrently with each other and with the writer.
class ReaderPool {
 public:
  static Result<std::unique_ptr<ReaderPool>> Open(const std::filesystem::path& file,
                                                  const SqliteOptions& options, int count);
  ReaderPool(const ReaderPool&) = delete;
  ReaderPool& operator=(const ReaderPool&) = delete;

  // Waits for a free connection and returns it at the end of the scope.
  class Lease {
   public:
    explicit Lease(ReaderPool& pool);
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Connection& conn() { return *conn_; }

   private:
    ReaderPool& pool_;
    Connection* conn_ = nullptr;
  };

 private:
  ReaderPool() = default;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<Connection*> free_;  // guarded by mu_
};

// The one write connection of a database file in this process, shared by
// every SQLite store and the ledger on that file (docs/architecture.md, "One
// writer, one group commit"), and the one group committer in front of it.
//
// Why shared: SQLite has one writer per database file. Several write
// connections in one process (the metadata store's, the ledger's) only
// queue on the file lock through SQLite's busy handler, which sleeps
// (milliseconds) instead of waiting on a condition, and each commits and
// fsyncs on its own. One connection and one committer let a segment write
// and the read audits arriving at the same moment share a transaction and a
// single WAL fsync.
//
// Submit(): group commit. Concurrent callers queue; the leader runs every
// queued item's `apply` in one transaction, each under its own savepoint (a
// refused item is rolled back alone and gets its own error), commits once,
// and then runs the `after_commit` of every item that was applied, in order.
// Every caller returns after the commit that held its item: nothing is
// acknowledged before it is durable. The group is fsynced at
// synchronous=FULL when any of its items asks for it, else NORMAL.
//
// Lock(): exclusive use of the connection for writes outside the group
// committer (migrations, checkpoints, epochs); never held by a Submit caller
// while it waits.
class SharedWriter {
 public:
  struct Work {
    std::function<Status(WriteTxn& txn)> apply;
    std::function<void()> after_commit;  // optional; after a successful commit
    bool full_sync = true;
    Status result;  // set by the committer
  };

  // The shared writer of `file` (an existing database file), opened with
  // `options` by its first user; later users share that connection and its
  // busy timeout, and choose durability per item or per Lock().
  static Result<std::shared_ptr<SharedWriter>> Open(const std::filesystem::path& file,
                                                    const SqliteOptions& options);
  ~SharedWriter();
  SharedWriter(const SharedWriter&) = delete;
  SharedWriter& operator=(const SharedWriter&) = delete;

  void Submit(Work& work);
  // Submit without waiting: `done` runs with the item's result once the
  // group holding it is durable (or failed), on the committing thread; it
  // must not block (GroupCommitter::SubmitAsync).
  void SubmitAsync(std::shared_ptr<Work> work, std::function<void(const Status&)> done);
  // Submits one item without an after_commit and returns its result: OK
  // once the group holding it is durable.
  Status Run(std::function<Status(WriteTxn& txn)> apply, bool full_sync);

  // Locks the connection and sets its synchronous mode for what follows.
  Result<std::unique_lock<std::mutex>> Lock(bool full_sync);
  // The connection; only with Lock() held (or inside an `apply`).
  Connection& conn() { return *conn_; }
  // Groups committed so far (tests).
  uint64_t groups() const;

 private:
  SharedWriter() = default;
  Status SetSynchronousLocked(bool full);
  void CommitGroup(std::span<Work* const> group);

  std::mutex mu_;
  std::unique_ptr<Connection> conn_;  // guarded by mu_
  int synchronous_full_ = -1;         // guarded by mu_; -1 unknown
  GroupCommitter<Work> committer_{[this](std::span<Work* const> group) { CommitGroup(group); }};
};

// Runs every migration newer than the database, each in its own transaction,
// recording applied versions in `table` (created if missing). FailedPrecondition
// when the database is newer than `migrations`.
Status RunMigrations(Connection& conn, std::string_view table,
                     std::span<const Migration> migrations);

}  // namespace medvault::store
