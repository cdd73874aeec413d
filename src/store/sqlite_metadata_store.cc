// MetadataStore on SQLite.
//
// Concurrency: one writer connection behind a mutex (SQLite allows a single
// writer anyway) and a small pool of read-only connections handed out under a
// mutex, so that reads run concurrently with each other and with the writer
// in WAL mode. Every connection is used by one thread at a time, so they are
// opened with SQLITE_OPEN_NOMUTEX. Prepared statements are cached per
// connection and reset after each use, which also ends the implicit read
// transaction so checkpoints are not held back.
//
// Durability: WAL with synchronous=FULL (default) fsyncs the WAL on every
// commit, so a write that returned OK survives power loss.
//
// Erasure: secure_delete=ON overwrites freed cell content in the pages it
// writes; after the erasing commit a TRUNCATE checkpoint copies those pages
// into the main file and empties the WAL, so the previous page images (which
// held the wrapped key) leave the WAL file.
//
// Error messages name the operation and the SQLite result code, never bound
// values.
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/ids.h"
#include "store/store.h"

namespace medvault::store {
namespace {

constexpr int kReadConnections = 4;
constexpr size_t kSha256Size = 32;

// ---------------------------------------------------------------------------
// Schema. Migrations are append-only: never edit one that has shipped.

struct Migration {
  int version;
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE patients (
  patient_id          TEXT PRIMARY KEY NOT NULL,
  wrapped_root_key    BLOB,
  sealed_demographics BLOB,
  name_index          BLOB,
  identifier_index    BLOB,
  created_at_ms       INTEGER NOT NULL,
  erased_at_ms        INTEGER,
  seq                 INTEGER UNIQUE NOT NULL
) STRICT;
CREATE INDEX patients_by_name_index ON patients(name_index);
CREATE INDEX patients_by_identifier_index ON patients(identifier_index);
CREATE TABLE segment_versions (
  patient_id     TEXT NOT NULL REFERENCES patients(patient_id),
  path           TEXT NOT NULL,
  version        INTEGER NOT NULL CHECK (version >= 1),
  category       TEXT NOT NULL,
  sensitivity    INTEGER NOT NULL CHECK (sensitivity BETWEEN 0 AND 4),
  kind           INTEGER NOT NULL CHECK (kind IN (1, 2, 3)),
  media_type     TEXT NOT NULL,
  object_key     TEXT NOT NULL UNIQUE,
  plaintext_size INTEGER NOT NULL CHECK (plaintext_size >= 0),
  stored_size    INTEGER NOT NULL CHECK (stored_size >= 0),
  content_sha256 BLOB NOT NULL CHECK (length(content_sha256) = 32),
  author         TEXT NOT NULL,
  created_at_ms  INTEGER NOT NULL,
  PRIMARY KEY (patient_id, path, version)
) STRICT, WITHOUT ROWID;
)sql"},
};

constexpr int kLatestSchemaVersion = 1;

// ---------------------------------------------------------------------------
// Error mapping.

Status FromSqlite(int rc, std::string_view what) {
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
      return FromSqlite(rc, "open metadata database");
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

  // Returns the cached statement for `sql` (a string literal: its address
  // and contents are stable), preparing it on first use.
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
    cache_.emplace(sql, stmt);
    return stmt;
  }

  // Runs uncached SQL without parameters (pragmas, migrations, BEGIN/COMMIT).
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
      return Status::FailedPrecondition("metadata database could not switch to " +
                                        std::string(want) + " journal mode");
    }
    return Status::Ok();
  }

  sqlite3* db_;
  std::unordered_map<std::string_view, sqlite3_stmt*> cache_;
};

// An IMMEDIATE transaction on the writer; rolls back unless committed.
class WriteTxn {
 public:
  explicit WriteTxn(Connection& conn) : conn_(conn) {}
  ~WriteTxn() {
    if (active_) {
      (void)conn_.ExecScript("ROLLBACK", "rollback");
    }
  }
  WriteTxn(const WriteTxn&) = delete;
  WriteTxn& operator=(const WriteTxn&) = delete;

  Status Begin() {
    MV_RETURN_IF_ERROR(conn_.ExecScript("BEGIN IMMEDIATE", "begin transaction"));
    active_ = true;
    return Status::Ok();
  }
  Status Commit() {
    Status st = conn_.ExecScript("COMMIT", "commit transaction");
    if (st.ok() || sqlite3_get_autocommit(conn_.db()) != 0) {
      active_ = false;  // committed, or SQLite already rolled back
    }
    return st;
  }

 private:
  Connection& conn_;
  bool active_ = false;
};

// Borrows the cached statement for `sql` from `conn` as Stmt `var` (Stmt is
// not movable, so it cannot travel through Result).
#define MV_STMT(var, conn, sql)                                      \
  MV_ASSIGN_OR_RETURN(sqlite3_stmt* var##_raw, (conn).Prepare(sql)); \
  Stmt var(var##_raw)

Status CheckInt64(uint64_t v, std::string_view field) {
  if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::InvalidArgument(std::string(field) + " is out of range");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// SQL.

constexpr std::string_view kSqlMaxMigration =
    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";
constexpr std::string_view kSqlInsertMigration =
    "INSERT INTO schema_migrations(version, applied_at_ms) VALUES (?1, ?2)";

constexpr std::string_view kSqlInsertPatient =
    "INSERT INTO patients(patient_id, wrapped_root_key, sealed_demographics, name_index, "
    "identifier_index, created_at_ms, erased_at_ms, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
    "(SELECT COALESCE(MAX(seq), 0) + 1 FROM patients))";
constexpr std::string_view kSqlGetPatient =
    "SELECT patient_id, wrapped_root_key, sealed_demographics, name_index, identifier_index, "
    "created_at_ms, erased_at_ms FROM patients WHERE patient_id = ?1";
constexpr std::string_view kSqlFindByName =
    "SELECT patient_id FROM patients WHERE name_index = ?1 AND erased_at_ms IS NULL ORDER BY seq";
constexpr std::string_view kSqlFindByIdentifier =
    "SELECT patient_id FROM patients WHERE identifier_index = ?1 AND erased_at_ms IS NULL "
    "ORDER BY seq";
constexpr std::string_view kSqlPatientSeq = "SELECT seq FROM patients WHERE patient_id = ?1";
constexpr std::string_view kSqlListPatients =
    "SELECT patient_id FROM patients WHERE seq > ?1 AND erased_at_ms IS NULL ORDER BY seq "
    "LIMIT ?2";
constexpr std::string_view kSqlErasePatient =
    "UPDATE patients SET wrapped_root_key = NULL, sealed_demographics = NULL, name_index = NULL, "
    "identifier_index = NULL, erased_at_ms = COALESCE(erased_at_ms, ?2) WHERE patient_id = ?1";
constexpr std::string_view kSqlPatientErased =
    "SELECT erased_at_ms FROM patients WHERE patient_id = ?1";
constexpr std::string_view kSqlLatestVersion =
    "SELECT COALESCE(MAX(version), 0) FROM segment_versions WHERE patient_id = ?1 AND path = ?2";
constexpr std::string_view kSqlInsertSegment =
    "INSERT INTO segment_versions(patient_id, path, version, category, sensitivity, kind, "
    "media_type, object_key, plaintext_size, stored_size, content_sha256, author, created_at_ms) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
#define MV_SEGMENT_COLUMNS                                                           \
  "patient_id, path, version, category, sensitivity, kind, media_type, object_key, " \
  "plaintext_size, stored_size, content_sha256, author, created_at_ms"
constexpr std::string_view kSqlGetSegment = "SELECT " MV_SEGMENT_COLUMNS
                                            " FROM segment_versions WHERE patient_id = ?1 AND "
                                            "path = ?2 AND version = ?3";
constexpr std::string_view kSqlGetLatestSegment =
    "SELECT " MV_SEGMENT_COLUMNS
    " FROM segment_versions WHERE patient_id = ?1 AND path = ?2 ORDER BY version DESC LIMIT 1";
constexpr std::string_view kSqlListSegmentVersions =
    "SELECT " MV_SEGMENT_COLUMNS
    " FROM segment_versions WHERE patient_id = ?1 AND path = ?2 ORDER BY version";
// One row per path. With exactly one max() aggregate, SQLite documents that
// the bare columns come from the row holding the maximum, i.e. the latest
// version. The prefix matches the path itself or its subtree: '0' is the
// character after '/', so [prefix/, prefix0) is exactly "prefix/...".
constexpr std::string_view kSqlListSegments =
    "SELECT path, category, sensitivity, kind, media_type, MAX(version), COUNT(*), created_at_ms "
    "FROM segment_versions WHERE patient_id = ?1 AND (?2 = '' OR path = ?2 OR "
    "(path >= ?2 || '/' AND path < ?2 || '0')) GROUP BY path ORDER BY path";
constexpr std::string_view kSqlListObjectKeys =
    "SELECT object_key FROM segment_versions WHERE patient_id = ?1 ORDER BY path, version";
constexpr std::string_view kSqlCountPatients =
    "SELECT COUNT(*) FROM patients WHERE erased_at_ms IS NULL";
constexpr std::string_view kSqlCountSegments = "SELECT COUNT(*) FROM segment_versions";

SegmentVersionRecord ReadSegment(const Stmt& s) {
  SegmentVersionRecord r;
  r.patient_id = s.ColText(0);
  r.path = s.ColText(1);
  r.version = static_cast<uint64_t>(s.ColInt(2));
  r.category = s.ColText(3);
  r.sensitivity = static_cast<int>(s.ColInt(4));
  r.kind = static_cast<ContentKind>(s.ColInt(5));
  r.media_type = s.ColText(6);
  r.object_key = s.ColText(7);
  r.plaintext_size = static_cast<uint64_t>(s.ColInt(8));
  r.stored_size = static_cast<uint64_t>(s.ColInt(9));
  r.content_sha256 = s.ColBlob(10);
  r.author = s.ColText(11);
  r.created_at_ms = s.ColInt(12);
  return r;
}

// ---------------------------------------------------------------------------

class SqliteMetadataStore final : public MetadataStore {
 public:
  SqliteMetadataStore(std::unique_ptr<Connection> writer,
                      std::vector<std::unique_ptr<Connection>> readers)
      : writer_(std::move(writer)), readers_(std::move(readers)) {
    for (auto& r : readers_) {
      free_readers_.push_back(r.get());
    }
  }

  ~SqliteMetadataStore() override {
    // Readers first: the writer, closing last, checkpoints and removes the WAL.
    readers_.clear();
    writer_.reset();
  }

  Status CreatePatient(const PatientRecord& p) override {
    if (p.patient_id.empty()) {
      return Status::InvalidArgument("patient id must not be empty");
    }
    std::lock_guard<std::mutex> lock(write_mu_);
    MV_STMT(s, *writer_, kSqlInsertPatient);
    s.Text(1, p.patient_id)
        .Blob(2, p.wrapped_root_key)
        .Blob(3, p.sealed_demographics)
        .Blob(4, p.name_index)
        .Blob(5, p.identifier_index)
        .Int(6, p.created_at_ms);
    if (p.erased_at_ms.has_value()) {
      s.Int(7, *p.erased_at_ms);
    } else {
      s.Null(7);
    }
    Status st = s.Exec("create patient");
    if (st.code() == StatusCode::kAlreadyExists) {
      return Status::AlreadyExists("patient already exists");
    }
    return st;
  }

  Result<PatientRecord> GetPatient(std::string_view patient_id) override {
    Reader r(*this);
    MV_STMT(s, r.conn(), kSqlGetPatient);
    s.Text(1, patient_id);
    MV_ASSIGN_OR_RETURN(bool row, s.Step("get patient"));
    if (!row) {
      return Status::NotFound("patient not found");
    }
    PatientRecord p;
    p.patient_id = s.ColText(0);
    p.wrapped_root_key = s.ColBlob(1);
    p.sealed_demographics = s.ColBlob(2);
    p.name_index = s.ColBlob(3);
    p.identifier_index = s.ColBlob(4);
    p.created_at_ms = s.ColInt(5);
    if (!s.IsNull(6)) {
      p.erased_at_ms = s.ColInt(6);
    }
    return p;
  }

  Result<std::vector<std::string>> FindPatientsByNameIndex(ByteView index) override {
    return FindByIndex(kSqlFindByName, index);
  }

  Result<std::vector<std::string>> FindPatientsByIdentifierIndex(ByteView index) override {
    return FindByIndex(kSqlFindByIdentifier, index);
  }

  Result<std::vector<std::string>> ListPatients(std::string_view after_id, size_t limit) override {
    std::vector<std::string> ids;
    if (limit == 0) {
      return ids;
    }
    Reader r(*this);
    int64_t after_seq = 0;
    if (!after_id.empty()) {
      MV_STMT(s, r.conn(), kSqlPatientSeq);
      s.Text(1, after_id);
      MV_ASSIGN_OR_RETURN(bool row, s.Step("list patients"));
      if (!row) {
        // Silently restarting from the beginning would make clients loop.
        return Status::InvalidArgument("unknown patient id as paging cursor");
      }
      after_seq = s.ColInt(0);
    }
    MV_STMT(s, r.conn(), kSqlListPatients);
    const int64_t capped = limit > static_cast<size_t>(std::numeric_limits<int64_t>::max())
                               ? std::numeric_limits<int64_t>::max()
                               : static_cast<int64_t>(limit);
    s.Int(1, after_seq).Int(2, capped);
    while (true) {
      MV_ASSIGN_OR_RETURN(bool row, s.Step("list patients"));
      if (!row) {
        return ids;
      }
      ids.push_back(s.ColText(0));
    }
  }

  Status ErasePatient(std::string_view patient_id, int64_t erased_at_ms) override {
    std::lock_guard<std::mutex> lock(write_mu_);
    {
      WriteTxn txn(*writer_);
      MV_RETURN_IF_ERROR(txn.Begin());
      {
        MV_STMT(s, *writer_, kSqlErasePatient);
        s.Text(1, patient_id).Int(2, erased_at_ms);
        MV_RETURN_IF_ERROR(s.Exec("erase patient"));
      }
      if (sqlite3_changes(writer_->db()) == 0) {
        return Status::NotFound("patient not found");
      }
      MV_RETURN_IF_ERROR(txn.Commit());
    }
    // Copy the rewritten pages into the main file and empty the WAL, so the
    // old page images no longer exist in either file. Readers in flight can
    // block this (after the busy timeout): the erase is committed, and a
    // retry of this idempotent call repeats the checkpoint.
    int log_frames = 0;
    int checkpointed = 0;
    const int rc = sqlite3_wal_checkpoint_v2(writer_->db(), nullptr, SQLITE_CHECKPOINT_TRUNCATE,
                                             &log_frames, &checkpointed);
    if (rc != SQLITE_OK) {
      return FromSqlite(rc, "checkpoint after erasing patient (erasure committed; retry)");
    }
    return Status::Ok();
  }

  // Group commit: concurrent inserts queue up; one caller (the leader) takes
  // the whole queue into a single transaction, each row under its own
  // savepoint so that one refused row does not undo the others, and commits
  // once. Every caller returns only after the transaction holding its row is
  // durable (or failed), so the contract is unchanged; the WAL fsync is paid
  // once per batch instead of once per row.
  Status InsertSegmentVersion(const SegmentVersionRecord& rec) override {
    MV_RETURN_IF_ERROR(ValidateSegment(rec));
    PendingInsert me{&rec, Status::Ok(), false};
    std::unique_lock<std::mutex> queue_lock(queue_mu_);
    pending_.push_back(&me);
    while (!me.done) {
      if (leader_active_) {
        queue_cv_.wait(queue_lock);
        continue;
      }
      leader_active_ = true;
      std::vector<PendingInsert*> batch;
      batch.swap(pending_);
      queue_lock.unlock();
      CommitBatch(batch);
      queue_lock.lock();
      for (PendingInsert* p : batch) {
        p->done = true;
      }
      leader_active_ = false;
      queue_cv_.notify_all();
    }
    return me.result;
  }

 private:
  struct PendingInsert {
    const SegmentVersionRecord* rec;
    Status result;
    bool done;
  };

  void CommitBatch(const std::vector<PendingInsert*>& batch) {
    std::lock_guard<std::mutex> lock(write_mu_);
    WriteTxn txn(*writer_);
    Status st = txn.Begin();
    if (!st.ok()) {
      for (PendingInsert* p : batch) {
        p->result = st;
      }
      return;
    }
    for (PendingInsert* p : batch) {
      st = writer_->ExecScript("SAVEPOINT row", "savepoint");
      if (st.ok()) {
        p->result = InsertRowLocked(*p->rec);
        if (!p->result.ok()) {
          st = writer_->ExecScript("ROLLBACK TO row", "rollback to savepoint");
        }
        if (st.ok()) {
          st = writer_->ExecScript("RELEASE row", "release savepoint");
        }
      }
      if (!st.ok()) {
        // The transaction itself is in doubt: fail the whole batch.
        for (PendingInsert* q : batch) {
          q->result = st;
        }
        return;  // WriteTxn rolls back
      }
    }
    st = txn.Commit();
    if (!st.ok()) {
      for (PendingInsert* p : batch) {
        if (p->result.ok()) {
          p->result = st;
        }
      }
    }
  }

  // REQUIRES: write_mu_ held and a transaction open.
  Status InsertRowLocked(const SegmentVersionRecord& rec) {
    {
      MV_STMT(s, *writer_, kSqlPatientErased);
      s.Text(1, rec.patient_id);
      MV_ASSIGN_OR_RETURN(bool row, s.Step("insert segment version"));
      if (!row || !s.IsNull(0)) {
        return Status::NotFound("patient not found");
      }
    }
    uint64_t latest = 0;
    {
      MV_STMT(s, *writer_, kSqlLatestVersion);
      s.Text(1, rec.patient_id).Text(2, rec.path);
      MV_ASSIGN_OR_RETURN(bool row, s.Step("insert segment version"));
      if (row) {
        latest = static_cast<uint64_t>(s.ColInt(0));
      }
    }
    // Versions are dense (1..latest), so anything up to latest exists.
    if (rec.version <= latest) {
      return Status::AlreadyExists("segment version already exists");
    }
    if (rec.version != latest + 1) {
      return Status::FailedPrecondition("segment version " + std::to_string(rec.version) +
                                        " does not follow the latest version " +
                                        std::to_string(latest));
    }
    {
      MV_STMT(s, *writer_, kSqlInsertSegment);
      s.Text(1, rec.patient_id)
          .Text(2, rec.path)
          .Int(3, static_cast<int64_t>(rec.version))
          .Text(4, rec.category)
          .Int(5, rec.sensitivity)
          .Int(6, static_cast<int>(rec.kind))
          .Text(7, rec.media_type)
          .Text(8, rec.object_key)
          .Int(9, static_cast<int64_t>(rec.plaintext_size))
          .Int(10, static_cast<int64_t>(rec.stored_size))
          .Blob(11, rec.content_sha256)
          .Text(12, rec.author)
          .Int(13, rec.created_at_ms);
      Status st = s.Exec("insert segment version");
      if (st.code() == StatusCode::kAlreadyExists) {
        // The (patient, path, version) case was handled above.
        return Status::AlreadyExists("object key already used by another segment version");
      }
      MV_RETURN_IF_ERROR(st);
    }
    return Status::Ok();
  }

 public:
  Result<uint64_t> LatestVersion(std::string_view patient_id, std::string_view path) override {
    Reader r(*this);
    MV_STMT(s, r.conn(), kSqlLatestVersion);
    s.Text(1, patient_id).Text(2, path);
    MV_ASSIGN_OR_RETURN(bool row, s.Step("latest version"));
    return row ? static_cast<uint64_t>(s.ColInt(0)) : uint64_t{0};
  }

  Result<SegmentVersionRecord> GetSegmentVersion(std::string_view patient_id, std::string_view path,
                                                 uint64_t version) override {
    MV_RETURN_IF_ERROR(CheckInt64(version, "version"));
    Reader r(*this);
    MV_STMT(s, r.conn(), version == 0 ? kSqlGetLatestSegment : kSqlGetSegment);
    s.Text(1, patient_id).Text(2, path);
    if (version != 0) {
      s.Int(3, static_cast<int64_t>(version));
    }
    MV_ASSIGN_OR_RETURN(bool row, s.Step("get segment version"));
    if (!row) {
      return Status::NotFound("segment version not found");
    }
    return ReadSegment(s);
  }

  Result<std::vector<SegmentVersionRecord>> ListSegmentVersions(std::string_view patient_id,
                                                                std::string_view path) override {
    Reader r(*this);
    MV_STMT(s, r.conn(), kSqlListSegmentVersions);
    s.Text(1, patient_id).Text(2, path);
    std::vector<SegmentVersionRecord> out;
    while (true) {
      MV_ASSIGN_OR_RETURN(bool row, s.Step("list segment versions"));
      if (!row) {
        return out;
      }
      out.push_back(ReadSegment(s));
    }
  }

  Result<std::vector<SegmentSummary>> ListSegments(std::string_view patient_id,
                                                   std::string_view prefix) override {
    Reader r(*this);
    MV_STMT(s, r.conn(), kSqlListSegments);
    s.Text(1, patient_id).Text(2, prefix);
    std::vector<SegmentSummary> out;
    while (true) {
      MV_ASSIGN_OR_RETURN(bool row, s.Step("list segments"));
      if (!row) {
        return out;
      }
      SegmentSummary sum;
      sum.path = s.ColText(0);
      sum.category = s.ColText(1);
      sum.sensitivity = static_cast<int>(s.ColInt(2));
      sum.kind = static_cast<ContentKind>(s.ColInt(3));
      sum.media_type = s.ColText(4);
      sum.latest_version = static_cast<uint64_t>(s.ColInt(5));
      sum.version_count = static_cast<uint64_t>(s.ColInt(6));
      sum.updated_at_ms = s.ColInt(7);
      out.push_back(std::move(sum));
    }
  }

  Result<std::vector<std::string>> ListObjectKeys(std::string_view patient_id) override {
    Reader r(*this);
    MV_STMT(s, r.conn(), kSqlListObjectKeys);
    s.Text(1, patient_id);
    std::vector<std::string> out;
    while (true) {
      MV_ASSIGN_OR_RETURN(bool row, s.Step("list object keys"));
      if (!row) {
        return out;
      }
      out.push_back(s.ColText(0));
    }
  }

  Result<int> SchemaVersion() override {
    Reader r(*this);
    MV_ASSIGN_OR_RETURN(int64_t v, CountQuery(r.conn(), kSqlMaxMigration, "schema version"));
    return static_cast<int>(v);
  }

  // Patients not erased.
  Result<int64_t> CountPatients() override {
    Reader r(*this);
    return CountQuery(r.conn(), kSqlCountPatients, "count patients");
  }

  Result<int64_t> CountSegmentVersions() override {
    Reader r(*this);
    return CountQuery(r.conn(), kSqlCountSegments, "count segment versions");
  }

 private:
  // Borrows a read connection for the scope, waiting when all are in use.
  class Reader {
   public:
    explicit Reader(SqliteMetadataStore& store) : store_(store) {
      std::unique_lock<std::mutex> lock(store_.read_mu_);
      store_.read_cv_.wait(lock, [&] { return !store_.free_readers_.empty(); });
      conn_ = store_.free_readers_.back();
      store_.free_readers_.pop_back();
    }
    ~Reader() {
      {
        std::lock_guard<std::mutex> lock(store_.read_mu_);
        store_.free_readers_.push_back(conn_);
      }
      store_.read_cv_.notify_one();
    }
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;
    Connection& conn() { return *conn_; }

   private:
    SqliteMetadataStore& store_;
    Connection* conn_ = nullptr;
  };

  static Result<int64_t> CountQuery(Connection& conn, std::string_view sql, std::string_view what) {
    MV_STMT(s, conn, sql);
    MV_ASSIGN_OR_RETURN(bool row, s.Step(what));
    return row ? s.ColInt(0) : int64_t{0};
  }

  Result<std::vector<std::string>> FindByIndex(std::string_view sql, ByteView index) {
    std::vector<std::string> ids;
    if (index.empty()) {
      return ids;  // empty means "no index": it matches nothing
    }
    Reader r(*this);
    MV_STMT(s, r.conn(), sql);
    s.Blob(1, index);
    while (true) {
      MV_ASSIGN_OR_RETURN(bool row, s.Step("find patients"));
      if (!row) {
        return ids;
      }
      ids.push_back(s.ColText(0));
    }
  }

  static Status ValidateSegment(const SegmentVersionRecord& rec) {
    if (rec.patient_id.empty() || rec.path.empty() || rec.object_key.empty()) {
      return Status::InvalidArgument("segment version needs patient id, path and object key");
    }
    if (rec.version == 0) {
      return Status::InvalidArgument("segment versions start at 1");
    }
    MV_RETURN_IF_ERROR(CheckInt64(rec.version, "version"));
    MV_RETURN_IF_ERROR(CheckInt64(rec.plaintext_size, "plaintext size"));
    MV_RETURN_IF_ERROR(CheckInt64(rec.stored_size, "stored size"));
    if (rec.sensitivity < 0 || rec.sensitivity > 4) {
      return Status::InvalidArgument("sensitivity must be between 0 and 4");
    }
    const int kind = static_cast<int>(rec.kind);
    if (kind < 1 || kind > 3) {
      return Status::InvalidArgument("unknown content kind");
    }
    if (rec.content_sha256.size() != kSha256Size) {
      return Status::InvalidArgument("content hash must be 32 bytes");
    }
    return Status::Ok();
  }

  std::mutex write_mu_;
  // Group commit queue (see InsertSegmentVersion). Lock order: queue_mu_ is
  // never held while taking write_mu_.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::vector<PendingInsert*> pending_;  // guarded by queue_mu_
  bool leader_active_ = false;           // guarded by queue_mu_
  std::unique_ptr<Connection> writer_;   // guarded by write_mu_

  std::mutex read_mu_;
  std::condition_variable read_cv_;
  std::vector<std::unique_ptr<Connection>> readers_;
  std::vector<Connection*> free_readers_;  // guarded by read_mu_
};

// Runs every migration newer than the database, each in its own transaction.
Status Migrate(Connection& conn) {
  MV_RETURN_IF_ERROR(
      conn.ExecScript("CREATE TABLE IF NOT EXISTS schema_migrations("
                      "version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL)",
                      "create schema_migrations"));
  for (const Migration& m : kMigrations) {
    WriteTxn txn(conn);
    MV_RETURN_IF_ERROR(txn.Begin());
    int64_t current = 0;
    {
      // Read inside the transaction: another process may have migrated.
      MV_STMT(s, conn, kSqlMaxMigration);
      MV_ASSIGN_OR_RETURN(bool row, s.Step("read schema version"));
      current = row ? s.ColInt(0) : 0;
    }
    if (current > kLatestSchemaVersion) {
      return Status::FailedPrecondition("database schema version " + std::to_string(current) +
                                        " is newer than this medvault (" +
                                        std::to_string(kLatestSchemaVersion) + ")");
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
      MV_STMT(s, conn, kSqlInsertMigration);
      s.Int(1, m.version).Int(2, NowUnixMillis());
      MV_RETURN_IF_ERROR(s.Exec("record schema migration"));
    }
    MV_RETURN_IF_ERROR(txn.Commit());
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<MetadataStore>> OpenSqliteMetadataStore(const std::filesystem::path& file,
                                                               const SqliteOptions& options) {
  // Create the file owner-only before SQLite does (it would honour the
  // umask); SQLite gives the -wal and -shm files the database file's mode.
  const int fd = ::open(file.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::IOError("cannot create metadata database file: " +
                           std::string(std::strerror(errno)));
  }
  ::close(fd);

  MV_ASSIGN_OR_RETURN(std::unique_ptr<Connection> writer,
                      Connection::Open(file, /*read_only=*/false, options));
  MV_RETURN_IF_ERROR(Migrate(*writer));
  std::vector<std::unique_ptr<Connection>> readers;
  for (int i = 0; i < kReadConnections; ++i) {
    MV_ASSIGN_OR_RETURN(std::unique_ptr<Connection> reader,
                        Connection::Open(file, /*read_only=*/true, options));
    readers.push_back(std::move(reader));
  }
  return std::unique_ptr<MetadataStore>(
      new SqliteMetadataStore(std::move(writer), std::move(readers)));
}

}  // namespace medvault::store
