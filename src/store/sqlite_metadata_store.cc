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

#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/ids.h"
#include "store/group_commit.h"
#include "store/sqlite_util.h"
#include "store/store.h"
#include "store/version_rule.h"

namespace medvault::store {
namespace {

constexpr int kReadConnections = 4;

// ---------------------------------------------------------------------------
// Schema. Migrations are append-only: never edit one that has shipped.

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
    // Key tree versions and re-wrapped key slots (docs/architecture.md, "Key
    // tree versions and envelope slots"). A node absent from node_key_versions
    // is at version 1; an object absent from object_key_slots uses the slots in
    // its own (immutable) envelope header.
    {2, R"sql(
CREATE TABLE node_key_versions (
  patient_id    TEXT NOT NULL REFERENCES patients(patient_id),
  path          TEXT NOT NULL,
  version       INTEGER NOT NULL CHECK (version >= 2),
  rotated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (patient_id, path)
) STRICT, WITHOUT ROWID;
CREATE TABLE object_key_slots (
  object_key TEXT PRIMARY KEY NOT NULL REFERENCES segment_versions(object_key),
  patient_id TEXT NOT NULL,
  slots      BLOB NOT NULL CHECK (length(slots) BETWEEN 1 AND 65535)
) STRICT, WITHOUT ROWID;
)sql"},
    // Small versions inline (docs/architecture.md, "Small versions inline"):
    // `storage` says where the ciphertext lives (0 object store, 1 this row),
    // `inline_content` holds it for storage 1 until the patient is erased.
    {3, R"sql(
ALTER TABLE segment_versions ADD COLUMN storage INTEGER NOT NULL DEFAULT 0
  CHECK (storage IN (0, 1));
ALTER TABLE segment_versions ADD COLUMN inline_content BLOB;
)sql"},
};

// ---------------------------------------------------------------------------
// SQL.

constexpr std::string_view kSqlMaxMigration =
    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";
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
constexpr std::string_view kSqlEraseInline =
    "UPDATE segment_versions SET inline_content = NULL WHERE patient_id = ?1 AND "
    "inline_content IS NOT NULL";
constexpr std::string_view kSqlPatientErased =
    "SELECT erased_at_ms FROM patients WHERE patient_id = ?1";
constexpr std::string_view kSqlLatestVersion =
    "SELECT COALESCE(MAX(version), 0) FROM segment_versions WHERE patient_id = ?1 AND path = ?2";
constexpr std::string_view kSqlInsertSegment =
    "INSERT INTO segment_versions(patient_id, path, version, category, sensitivity, kind, "
    "media_type, object_key, plaintext_size, stored_size, content_sha256, author, created_at_ms, "
    "storage, inline_content) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
#define MV_SEGMENT_COLUMNS                                                           \
  "patient_id, path, version, category, sensitivity, kind, media_type, object_key, " \
  "plaintext_size, stored_size, content_sha256, author, created_at_ms, storage"
// The same columns and the inline content (column 14), for single reads.
constexpr std::string_view kSqlGetSegment = "SELECT " MV_SEGMENT_COLUMNS
                                            ", inline_content FROM segment_versions WHERE "
                                            "patient_id = ?1 AND path = ?2 AND version = ?3";
constexpr std::string_view kSqlGetLatestSegment =
    "SELECT " MV_SEGMENT_COLUMNS
    ", inline_content FROM segment_versions WHERE patient_id = ?1 AND path = ?2 "
    "ORDER BY version DESC LIMIT 1";
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
constexpr std::string_view kSqlAllSegments =
    "SELECT " MV_SEGMENT_COLUMNS " FROM segment_versions ORDER BY patient_id, path, version";
constexpr std::string_view kSqlListObjectKeys =
    "SELECT object_key FROM segment_versions WHERE patient_id = ?1 AND storage = 0 "
    "ORDER BY path, version";
constexpr std::string_view kSqlCountPatients =
    "SELECT COUNT(*) FROM patients WHERE erased_at_ms IS NULL";
constexpr std::string_view kSqlCountSegments = "SELECT COUNT(*) FROM segment_versions";

// Key tree versions (migration 2).
constexpr std::string_view kSqlListNodeKeyVersions =
    "SELECT path, version FROM node_key_versions WHERE patient_id = ?1 ORDER BY path";
constexpr std::string_view kSqlGetNodeKeyVersion =
    "SELECT version FROM node_key_versions WHERE patient_id = ?1 AND path = ?2";
constexpr std::string_view kSqlSetNodeKeyVersion =
    "INSERT INTO node_key_versions(patient_id, path, version, rotated_at_ms) VALUES (?1, ?2, ?3, "
    "?4) ON CONFLICT(patient_id, path) DO UPDATE SET version = excluded.version, "
    "rotated_at_ms = excluded.rotated_at_ms";
constexpr std::string_view kSqlGetObjectKeySlots =
    "SELECT slots FROM object_key_slots WHERE object_key = ?1";
// Only for an object of the same patient: a slot row for another patient's
// object changes nothing, and the caller reports NotFound.
constexpr std::string_view kSqlSetObjectKeySlots =
    "INSERT INTO object_key_slots(object_key, patient_id, slots) SELECT object_key, patient_id, ?3 "
    "FROM segment_versions WHERE object_key = ?1 AND patient_id = ?2 "
    "ON CONFLICT(object_key) DO UPDATE SET slots = excluded.slots";

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
  r.storage = s.ColInt(13) == 1 ? ContentStorage::kInline : ContentStorage::kObject;
  return r;
}

// ---------------------------------------------------------------------------

class SqliteMetadataStore final : public MetadataStore {
 public:
  SqliteMetadataStore(std::shared_ptr<SharedWriter> shared, std::unique_ptr<ReaderPool> readers,
                      SqliteOptions options)
      : shared_(std::move(shared)), readers_(std::move(readers)), options_(std::move(options)) {}

  ~SqliteMetadataStore() override {
    // Readers first: the writer, closing last (when no other store on the
    // file holds it), checkpoints and removes the WAL.
    readers_.reset();
    shared_.reset();
  }

  Status CreatePatient(const PatientRecord& p, AuditEntries audit) override {
    if (p.patient_id.empty()) {
      return Status::InvalidArgument("patient id must not be empty");
    }
    MV_RETURN_IF_ERROR(CheckAuditHook(audit));
    return Run([&](WriteTxn& txn) -> Status {
      MV_RETURN_IF_ERROR(InsertPatientLocked(p));
      return AuditLocked(txn, audit);
    });
  }

  Status InsertBatch(const PatientRecord* new_patient,
                     std::span<const SegmentVersionRecord> records, AuditEntries audit) override {
    if (new_patient != nullptr && new_patient->patient_id.empty()) {
      return Status::InvalidArgument("patient id must not be empty");
    }
    for (const SegmentVersionRecord& rec : records) {
      MV_RETURN_IF_ERROR(ValidateSegmentVersionRecord(rec));
    }
    MV_RETURN_IF_ERROR(CheckAuditHook(audit));
    return Run([&](WriteTxn& txn) -> Status {
      if (new_patient != nullptr) {
        MV_RETURN_IF_ERROR(InsertPatientLocked(*new_patient));
      }
      for (const SegmentVersionRecord& rec : records) {
        MV_RETURN_IF_ERROR(InsertRowLocked(rec).WithContext(rec.path));
      }
      return AuditLocked(txn, audit);
    });
  }

  // REQUIRES: inside a SharedWriter transaction (Run).
  Status InsertPatientLocked(const PatientRecord& p) {
    {
      MV_STMT(s, shared_->conn(), kSqlInsertPatient);
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
      MV_RETURN_IF_ERROR(st);
    }
    return Status::Ok();
  }

  // REQUIRES: inside a SharedWriter transaction (Run).
  Status AuditLocked(WriteTxn& txn, AuditEntries audit) {
    if (audit.empty()) {
      return Status::Ok();
    }
    return options_.audit_sink->AppendEncodedInTransaction(txn, audit);
  }

  Status CheckAuditHook(AuditEntries audit) const {
    if (!audit.empty() && options_.audit_sink == nullptr) {
      return Status::FailedPrecondition("audit entries given but no ledger is attached");
    }
    return Status::Ok();
  }

  Result<PatientRecord> GetPatient(std::string_view patient_id) override {
    ReaderPool::Lease r(*readers_);
    return GetPatientOn(r.conn(), patient_id);
  }

  // One lease, one read transaction: the three rows from one snapshot.
  Result<VersionForRead> GetVersionForRead(std::string_view patient_id, std::string_view path,
                                           uint64_t version) override {
    MV_RETURN_IF_ERROR(CheckInt64(version, "version"));
    ReaderPool::Lease r(*readers_);
    ReadTxn txn(r.conn());
    MV_RETURN_IF_ERROR(txn.Begin());
    VersionForRead out;
    MV_ASSIGN_OR_RETURN(out.patient, GetPatientOn(r.conn(), patient_id));
    MV_ASSIGN_OR_RETURN(out.version, GetSegmentVersionOn(r.conn(), patient_id, path, version));
    MV_ASSIGN_OR_RETURN(out.rotated, ListNodeKeyVersionsOn(r.conn(), patient_id));
    return out;
  }

  static Result<PatientRecord> GetPatientOn(Connection& conn, std::string_view patient_id) {
    MV_STMT(s, conn, kSqlGetPatient);
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
    ReaderPool::Lease r(*readers_);
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

  Status ErasePatient(std::string_view patient_id, int64_t erased_at_ms,
                      AuditEntries audit) override {
    MV_RETURN_IF_ERROR(CheckAuditHook(audit));
    Status erased = Run([&](WriteTxn& txn) -> Status {
      {
        MV_STMT(s, shared_->conn(), kSqlErasePatient);
        s.Text(1, patient_id).Int(2, erased_at_ms);
        MV_RETURN_IF_ERROR(s.Exec("erase patient"));
      }
      if (sqlite3_changes(shared_->conn().db()) == 0) {
        return Status::NotFound("patient not found");
      }
      {
        // The ciphertexts are useless without the root key; they go too, so
        // that nothing of the patient's content stays in the database.
        MV_STMT(s, shared_->conn(), kSqlEraseInline);
        s.Text(1, patient_id);
        MV_RETURN_IF_ERROR(s.Exec("erase inline contents"));
      }
      return AuditLocked(txn, audit);
    });
    MV_RETURN_IF_ERROR(erased);
    // Copy the rewritten pages into the main file and empty the WAL, so the
    // old page images no longer exist in either file. Readers in flight can
    // block this (after the busy timeout): the erase is committed, and a
    // retry of this idempotent call repeats the checkpoint.
    int log_frames = 0;
    int checkpointed = 0;
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock,
                        shared_->Lock(options_.synchronous_full));
    const int rc = sqlite3_wal_checkpoint_v2(
        shared_->conn().db(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log_frames, &checkpointed);
    if (rc != SQLITE_OK) {
      return FromSqlite(rc, "checkpoint after erasing patient (erasure committed; retry)");
    }
    return Status::Ok();
  }

  // Group commit (GroupCommitter): concurrent inserts queue up; the leader
  // writes the whole group in a single transaction, each row under its own
  // savepoint so that one refused row does not undo the others, and commits
  // once. Every caller returns only after the transaction holding its row is
  // durable (or failed), so the contract is unchanged; the WAL fsync is paid
  // once per group instead of once per row.
  Status InsertSegmentVersion(const SegmentVersionRecord& rec, AuditEntries audit) override {
    MV_RETURN_IF_ERROR(ValidateSegmentVersionRecord(rec));
    MV_RETURN_IF_ERROR(CheckAuditHook(audit));
    return Run([&](WriteTxn& txn) -> Status {
      MV_RETURN_IF_ERROR(InsertRowLocked(rec));
      // The row's ledger entries share its savepoint: both or neither.
      return AuditLocked(txn, audit);
    });
  }

 private:
  // Runs `apply` in the database's group commit (SharedWriter): in a
  // transaction shared with every write waiting at that moment on this file
  // (other stores' and the ledger's included), under its own savepoint;
  // returns once that transaction is durable, with `apply`'s own result.
  Status Run(std::function<Status(WriteTxn&)> apply) {
    return shared_->Run(std::move(apply), options_.synchronous_full);
  }

  // REQUIRES: inside a SharedWriter transaction (Run).
  Status InsertRowLocked(const SegmentVersionRecord& rec) {
    {
      MV_STMT(s, shared_->conn(), kSqlPatientErased);
      s.Text(1, rec.patient_id);
      MV_ASSIGN_OR_RETURN(bool row, s.Step("insert segment version"));
      if (!row || !s.IsNull(0)) {
        return Status::NotFound("patient not found");
      }
    }
    uint64_t latest = 0;
    {
      MV_STMT(s, shared_->conn(), kSqlLatestVersion);
      s.Text(1, rec.patient_id).Text(2, rec.path);
      MV_ASSIGN_OR_RETURN(bool row, s.Step("insert segment version"));
      if (row) {
        latest = static_cast<uint64_t>(s.ColInt(0));
      }
    }
    MV_RETURN_IF_ERROR(CheckNextVersion(rec.version, latest));
    {
      MV_STMT(s, shared_->conn(), kSqlInsertSegment);
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
          .Int(13, rec.created_at_ms)
          .Int(14, static_cast<int>(rec.storage))
          .Blob(15, rec.inline_content);
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
    ReaderPool::Lease r(*readers_);
    MV_STMT(s, r.conn(), kSqlLatestVersion);
    s.Text(1, patient_id).Text(2, path);
    MV_ASSIGN_OR_RETURN(bool row, s.Step("latest version"));
    return row ? static_cast<uint64_t>(s.ColInt(0)) : uint64_t{0};
  }

  Result<SegmentVersionRecord> GetSegmentVersion(std::string_view patient_id, std::string_view path,
                                                 uint64_t version) override {
    MV_RETURN_IF_ERROR(CheckInt64(version, "version"));
    ReaderPool::Lease r(*readers_);
    return GetSegmentVersionOn(r.conn(), patient_id, path, version);
  }

  static Result<SegmentVersionRecord> GetSegmentVersionOn(Connection& conn,
                                                          std::string_view patient_id,
                                                          std::string_view path, uint64_t version) {
    MV_STMT(s, conn, version == 0 ? kSqlGetLatestSegment : kSqlGetSegment);
    s.Text(1, patient_id).Text(2, path);
    if (version != 0) {
      s.Int(3, static_cast<int64_t>(version));
    }
    MV_ASSIGN_OR_RETURN(bool row, s.Step("get segment version"));
    if (!row) {
      return Status::NotFound("segment version not found");
    }
    SegmentVersionRecord rec = ReadSegment(s);
    if (rec.storage == ContentStorage::kInline) {
      rec.inline_content = s.ColBlob(14);
    }
    return rec;
  }

  Result<std::vector<SegmentVersionRecord>> ListSegmentVersions(std::string_view patient_id,
                                                                std::string_view path) override {
    ReaderPool::Lease r(*readers_);
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
    ReaderPool::Lease r(*readers_);
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

  Status ForEachSegmentVersion(
      const std::function<Status(const SegmentVersionRecord&)>& fn) override {
    ReaderPool::Lease r(*readers_);
    MV_STMT(s, r.conn(), kSqlAllSegments);
    while (true) {
      MV_ASSIGN_OR_RETURN(bool row, s.Step("list all segment versions"));
      if (!row) {
        return Status::Ok();
      }
      MV_RETURN_IF_ERROR(fn(ReadSegment(s)));
    }
  }

  Result<std::vector<std::string>> ListObjectKeys(std::string_view patient_id) override {
    ReaderPool::Lease r(*readers_);
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

  // -------------------------------------------------------------------------
  // Key tree versions (migration 2).

  Result<std::vector<NodeKeyVersion>> ListNodeKeyVersions(std::string_view patient_id) override {
    ReaderPool::Lease r(*readers_);
    return ListNodeKeyVersionsOn(r.conn(), patient_id);
  }

  static Result<std::vector<NodeKeyVersion>> ListNodeKeyVersionsOn(Connection& conn,
                                                                   std::string_view patient_id) {
    MV_STMT(s, conn, kSqlListNodeKeyVersions);
    s.Text(1, patient_id);
    std::vector<NodeKeyVersion> out;
    while (true) {
      MV_ASSIGN_OR_RETURN(bool row, s.Step("list node key versions"));
      if (!row) {
        return out;
      }
      out.push_back(NodeKeyVersion{s.ColText(0), static_cast<uint32_t>(s.ColInt(1))});
    }
  }

  Result<std::optional<Bytes>> GetObjectKeySlots(std::string_view object_key) override {
    ReaderPool::Lease r(*readers_);
    MV_STMT(s, r.conn(), kSqlGetObjectKeySlots);
    s.Text(1, object_key);
    MV_ASSIGN_OR_RETURN(bool row, s.Step("get object key slots"));
    if (!row) {
      return std::optional<Bytes>();
    }
    return std::optional<Bytes>(s.ColBlob(0));
  }

  Status RotateNodeKey(std::string_view patient_id, std::string_view path, uint32_t new_version,
                       int64_t rotated_at_ms, std::span<const ObjectKeySlots> slots,
                       AuditEntries audit) override {
    if (patient_id.empty() || path.empty() || new_version < 2) {
      return Status::InvalidArgument("a rotation needs a patient, a path and a version >= 2");
    }
    for (const ObjectKeySlots& o : slots) {
      if (o.object_key.empty() || o.slots.empty() || o.slots.size() > 65535) {
        return Status::InvalidArgument("key slots need an object key and 1..65535 bytes");
      }
    }
    MV_RETURN_IF_ERROR(CheckAuditHook(audit));
    return Run([&](WriteTxn& txn) -> Status {
      {
        MV_STMT(s, shared_->conn(), kSqlPatientErased);
        s.Text(1, patient_id);
        MV_ASSIGN_OR_RETURN(bool row, s.Step("rotate node key"));
        if (!row || !s.IsNull(0)) {
          return Status::NotFound("patient not found");
        }
      }
      uint32_t current = 1;
      {
        MV_STMT(s, shared_->conn(), kSqlGetNodeKeyVersion);
        s.Text(1, patient_id).Text(2, path);
        MV_ASSIGN_OR_RETURN(bool row, s.Step("rotate node key"));
        if (row) {
          current = static_cast<uint32_t>(s.ColInt(0));
        }
      }
      if (new_version != current + 1) {
        // Another rotation of the same node committed first: its slots are the
        // current ones, and these were computed from a key that is now old.
        return Status::FailedPrecondition("node key version " + std::to_string(new_version) +
                                          " does not follow the current version " +
                                          std::to_string(current));
      }
      {
        MV_STMT(s, shared_->conn(), kSqlSetNodeKeyVersion);
        s.Text(1, patient_id).Text(2, path).Int(3, new_version).Int(4, rotated_at_ms);
        MV_RETURN_IF_ERROR(s.Exec("rotate node key"));
      }
      for (const ObjectKeySlots& o : slots) {
        MV_STMT(s, shared_->conn(), kSqlSetObjectKeySlots);
        s.Text(1, o.object_key).Text(2, patient_id).Blob(3, o.slots);
        MV_RETURN_IF_ERROR(s.Exec("set object key slots"));
        if (sqlite3_changes(shared_->conn().db()) != 1) {
          return Status::NotFound("no segment version of this patient has the object key");
        }
      }
      return AuditLocked(txn, audit);
    });
  }

  Result<int> SchemaVersion() override {
    ReaderPool::Lease r(*readers_);
    MV_ASSIGN_OR_RETURN(int64_t v, CountQuery(r.conn(), kSqlMaxMigration, "schema version"));
    return static_cast<int>(v);
  }

  // Patients not erased.
  Result<int64_t> CountPatients() override {
    ReaderPool::Lease r(*readers_);
    return CountQuery(r.conn(), kSqlCountPatients, "count patients");
  }

  Result<int64_t> CountSegmentVersions() override {
    ReaderPool::Lease r(*readers_);
    return CountQuery(r.conn(), kSqlCountSegments, "count segment versions");
  }

 private:
  // Borrows a read connection for the scope, waiting when all are in use.

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
    ReaderPool::Lease r(*readers_);
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

  // The database's one writer and group committer, shared with the other
  // stores and the ledger on the same file.
  std::shared_ptr<SharedWriter> shared_;

  std::unique_ptr<ReaderPool> readers_;
  SqliteOptions options_;
};

}  // namespace

Result<std::unique_ptr<MetadataStore>> OpenSqliteMetadataStore(const std::filesystem::path& file,
                                                               const SqliteOptions& options) {
  MV_RETURN_IF_ERROR(CreatePrivateDatabaseFile(file));
  MV_ASSIGN_OR_RETURN(std::shared_ptr<SharedWriter> shared, SharedWriter::Open(file, options));
  {
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock, shared->Lock(options.synchronous_full));
    MV_RETURN_IF_ERROR(RunMigrations(shared->conn(), "schema_migrations", kMigrations));
  }
  MV_ASSIGN_OR_RETURN(std::unique_ptr<ReaderPool> readers,
                      ReaderPool::Open(file, options, kReadConnections));
  return std::unique_ptr<MetadataStore>(
      new SqliteMetadataStore(std::move(shared), std::move(readers), options));
}

}  // namespace medvault::store
