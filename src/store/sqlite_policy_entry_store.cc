// PolicyEntryStore on SQLite. Writes go through the database file's one
// SharedWriter (group commit, shared with the metadata store, the ledger and
// the account store: no second writer waits on SQLite's file lock); reads
// through one read connection behind a mutex. Policy entries change rarely
// (a consent, a relationship) and are read in full only at start, so a
// reader pool would buy nothing.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <mutex>

#include "store/policy_entry_store.h"
#include "store/sqlite_util.h"

namespace medvault::store {
namespace {

constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE policy_entries (
  kind          TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 32),
  entry_id      TEXT NOT NULL CHECK (length(entry_id) = 32),
  patient_id    TEXT NOT NULL CHECK (length(patient_id) = 32),
  sealed_body   BLOB NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  seq           INTEGER NOT NULL,
  PRIMARY KEY (kind, entry_id)
) STRICT;
CREATE INDEX policy_entries_by_patient ON policy_entries(patient_id);
CREATE INDEX policy_entries_by_seq ON policy_entries(seq);
)sql"},
    // Issue 13: changes reach other processes through the change log.
    {2, kChangeLogSchema},
};

constexpr std::string_view kSqlUpsert =
    "INSERT INTO policy_entries(kind, entry_id, patient_id, sealed_body, updated_at_ms, seq) "
    "VALUES (?1, ?2, ?3, ?4, ?5, (SELECT COALESCE(MAX(seq), 0) + 1 FROM policy_entries)) "
    "ON CONFLICT(kind, entry_id) DO UPDATE SET sealed_body = excluded.sealed_body, "
    "updated_at_ms = excluded.updated_at_ms WHERE patient_id = excluded.patient_id";
constexpr std::string_view kSqlAll =
    "SELECT kind, entry_id, patient_id, sealed_body, updated_at_ms FROM policy_entries "
    "ORDER BY seq";
constexpr std::string_view kSqlDeletePatient = "DELETE FROM policy_entries WHERE patient_id = ?1";
constexpr std::string_view kSqlCount = "SELECT COUNT(*) FROM policy_entries";
constexpr std::string_view kSqlOfPatient =
    "SELECT kind, entry_id, patient_id, sealed_body, updated_at_ms FROM policy_entries "
    "WHERE patient_id = ?1 ORDER BY seq";

class SqlitePolicyEntryStore final : public PolicyEntryStore {
 public:
  SqlitePolicyEntryStore(std::shared_ptr<SharedWriter> shared, std::unique_ptr<Connection> reader,
                         const SqliteOptions& options)
      : shared_(std::move(shared)),
        conn_(std::move(reader)),
        audit_sink_(options.audit_sink),
        full_sync_(options.synchronous_full) {}

  Status Upsert(const PolicyEntryRow& row, AuditEntries audit) override {
    MV_RETURN_IF_ERROR(CheckLedger(audit));
    return Run([&](WriteTxn& txn) -> Status {
      Connection& w = shared_->conn();
      {
        MV_STMT(s, w, kSqlUpsert);
        s.Text(1, row.kind)
            .Text(2, row.entry_id)
            .Text(3, row.patient_id)
            .Blob(4, row.sealed_body)
            .Int(5, row.updated_at_ms);
        MV_RETURN_IF_ERROR(s.Exec("upsert policy entry"));
        if (sqlite3_changes(w.db()) != 1) {
          return Status::FailedPrecondition("policy entry belongs to another patient");
        }
      }
      MV_RETURN_IF_ERROR(RecordChange(w, kChangeDomainPolicy, row.patient_id));
      if (!audit.empty()) {
        MV_RETURN_IF_ERROR(audit_sink_->AppendEncodedInTransaction(txn, audit));
      }
      return Status::Ok();
    });
  }

  Status ForEach(const std::function<Status(const PolicyEntryRow&)>& fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    MV_STMT(s, *conn_, kSqlAll);
    return ReadRows(s, fn);
  }

  Status ForEachOfPatient(std::string_view patient_id,
                          const std::function<Status(const PolicyEntryRow&)>& fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    MV_STMT(s, *conn_, kSqlOfPatient);
    s.Text(1, patient_id);
    return ReadRows(s, fn);
  }

  Result<int64_t> LatestChange() override {
    std::lock_guard<std::mutex> lock(mu_);
    return store::LatestChange(*conn_);
  }

  Result<std::vector<ChangeRow>> ChangesSince(int64_t after, size_t limit) override {
    std::lock_guard<std::mutex> lock(mu_);
    return store::ChangesSince(*conn_, after, limit);
  }

  // REQUIRES: mu_ held.
  static Status ReadRows(Stmt& s, const std::function<Status(const PolicyEntryRow&)>& fn) {
    while (true) {
      MV_ASSIGN_OR_RETURN(bool row, s.Step("read policy entries"));
      if (!row) {
        return Status::Ok();
      }
      PolicyEntryRow r;
      r.kind = s.ColText(0);
      r.entry_id = s.ColText(1);
      r.patient_id = s.ColText(2);
      r.sealed_body = s.ColBlob(3);
      r.updated_at_ms = s.ColInt(4);
      MV_RETURN_IF_ERROR(fn(r));
    }
  }

  Status DeletePatient(std::string_view patient_id, AuditEntries audit) override {
    MV_RETURN_IF_ERROR(CheckLedger(audit));
    return Run([&](WriteTxn& txn) -> Status {
      Connection& w = shared_->conn();
      {
        MV_STMT(s, w, kSqlDeletePatient);
        s.Text(1, patient_id);
        MV_RETURN_IF_ERROR(s.Exec("delete policy entries"));
      }
      if (!patient_id.empty()) {
        MV_RETURN_IF_ERROR(RecordChange(w, kChangeDomainPolicy, patient_id));
      }
      if (!audit.empty()) {
        MV_RETURN_IF_ERROR(audit_sink_->AppendEncodedInTransaction(txn, audit));
      }
      return Status::Ok();
    });
  }

  Result<int64_t> Count() override {
    std::lock_guard<std::mutex> lock(mu_);
    MV_STMT(s, *conn_, kSqlCount);
    MV_ASSIGN_OR_RETURN(bool row, s.Step("count policy entries"));
    return row ? s.ColInt(0) : 0;
  }

 private:
  // One write, in its own savepoint of the writer's next group commit.
  Status Run(std::function<Status(WriteTxn&)> apply) {
    return shared_->Run(std::move(apply), full_sync_);
  }

  Status CheckLedger(AuditEntries audit) const {
    if (!audit.empty() && audit_sink_ == nullptr) {
      return Status::FailedPrecondition("audit entries given but no ledger is attached");
    }
    return Status::Ok();
  }

  const std::shared_ptr<SharedWriter> shared_;
  std::mutex mu_;                     // guards conn_
  std::unique_ptr<Connection> conn_;  // reads
  AuditSink* const audit_sink_;       // may be null: then writes with entries are refused
  const bool full_sync_;
};

}  // namespace

Result<std::unique_ptr<PolicyEntryStore>> OpenSqlitePolicyEntryStore(
    const std::filesystem::path& file, const SqliteOptions& options) {
  MV_RETURN_IF_ERROR(CreatePrivateDatabaseFile(file));
  MV_ASSIGN_OR_RETURN(std::shared_ptr<SharedWriter> shared, SharedWriter::Open(file, options));
  {
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock, shared->Lock(options.synchronous_full));
    MV_RETURN_IF_ERROR(RunMigrations(shared->conn(), "policy_migrations", kMigrations));
  }
  MV_ASSIGN_OR_RETURN(std::unique_ptr<Connection> reader,
                      Connection::Open(file, /*read_only=*/true, options));
  return std::unique_ptr<PolicyEntryStore>(
      new SqlitePolicyEntryStore(std::move(shared), std::move(reader), options));
}

}  // namespace medvault::store
