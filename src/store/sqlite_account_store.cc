// AccountStore on SQLite.
//
// Shares the database file with the metadata store (its own tables, its own
// migration table "account_migrations") but opens its own connections: one
// writer behind a mutex and a small pool of read-only connections, as in
// sqlite_metadata_store.cc. The two writers (this store's and the metadata
// store's) serialise through SQLite's lock and the busy timeout.
//
// Read-modify-write operations (login failures, refresh rotation, account
// creation with its existence checks) run in one IMMEDIATE transaction on the
// writer, so concurrent callers cannot lose updates or rotate a refresh token
// twice.
//
// Error messages name the operation, never bound values.
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "store/account_store.h"
#include "store/sqlite_util.h"

namespace medvault::store {
namespace {

constexpr int kReadConnections = 4;
constexpr size_t kTokenHashSize = 32;

// ---------------------------------------------------------------------------
// Schema. Migrations are append-only: never edit one that has shipped.

constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE institutions (
  institution_id TEXT PRIMARY KEY NOT NULL,
  name           TEXT NOT NULL UNIQUE,
  created_at_ms  INTEGER NOT NULL
) STRICT;
CREATE TABLE departments (
  department_id  TEXT PRIMARY KEY NOT NULL,
  institution_id TEXT NOT NULL REFERENCES institutions(institution_id),
  name           TEXT NOT NULL,
  created_at_ms  INTEGER NOT NULL,
  UNIQUE (institution_id, name),
  UNIQUE (department_id, institution_id)
) STRICT;
CREATE TABLE accounts (
  account_id         TEXT PRIMARY KEY NOT NULL,
  username_index     BLOB NOT NULL UNIQUE,
  sealed_profile     BLOB NOT NULL,
  password_hash      TEXT NOT NULL,
  roles              TEXT NOT NULL,
  institution_id     TEXT REFERENCES institutions(institution_id),
  department_id      TEXT,
  patient_id         TEXT,
  sealed_totp_secret BLOB,
  totp_enabled       INTEGER NOT NULL CHECK (totp_enabled IN (0, 1)),
  last_totp_step     INTEGER NOT NULL,
  disabled           INTEGER NOT NULL CHECK (disabled IN (0, 1)),
  created_at_ms      INTEGER NOT NULL,
  updated_at_ms      INTEGER NOT NULL,
  CHECK (department_id IS NULL OR institution_id IS NOT NULL),
  CHECK (totp_enabled = 0 OR sealed_totp_secret IS NOT NULL),
  FOREIGN KEY (department_id, institution_id) REFERENCES departments(department_id, institution_id)
) STRICT;
CREATE INDEX accounts_by_institution ON accounts(institution_id);
CREATE TABLE login_failures (
  username_index     BLOB PRIMARY KEY NOT NULL,
  failures           INTEGER NOT NULL CHECK (failures >= 0),
  last_failure_at_ms INTEGER NOT NULL,
  locked_until_ms    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE sessions (
  session_id    TEXT PRIMARY KEY NOT NULL,
  account_id    TEXT NOT NULL REFERENCES accounts(account_id),
  audience      TEXT NOT NULL,
  mfa_verified  INTEGER NOT NULL CHECK (mfa_verified IN (0, 1)),
  created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  revoked_at_ms INTEGER,
  revoke_reason TEXT
) STRICT;
CREATE INDEX sessions_by_account ON sessions(account_id);
CREATE TABLE session_tokens (
  token_hash    BLOB PRIMARY KEY NOT NULL CHECK (length(token_hash) = 32),
  session_id    TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
  kind          TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
  created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  rotated_at_ms INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX session_tokens_by_session ON session_tokens(session_id);
)sql"},
    // Issue 13: account and session changes reach other processes (a server
    // beside a CLI command) through the change log.
    {2, kChangeLogSchema},
    // Account recovery (issue 13): the registering institution of personal
    // accounts and the open recovery requests.
    {3, R"sql(
ALTER TABLE accounts ADD COLUMN home_institution_id TEXT REFERENCES institutions(institution_id);
CREATE INDEX accounts_by_patient ON accounts(patient_id);
CREATE TABLE account_recoveries (
  account_id      TEXT PRIMARY KEY NOT NULL REFERENCES accounts(account_id),
  recovery_id     TEXT NOT NULL UNIQUE,
  requested_by    TEXT NOT NULL,
  institution_id  TEXT,
  sealed_reason   BLOB NOT NULL,
  requested_at_ms INTEGER NOT NULL,
  not_before_ms   INTEGER NOT NULL
) STRICT;
)sql"},
};

// ---------------------------------------------------------------------------
// SQL.

constexpr std::string_view kSqlMaxMigration =
    "SELECT COALESCE(MAX(version), 0) FROM account_migrations";

constexpr std::string_view kSqlInsertInstitution =
    "INSERT INTO institutions(institution_id, name, created_at_ms) VALUES (?1, ?2, ?3)";
constexpr std::string_view kSqlInstitutionNameTaken = "SELECT 1 FROM institutions WHERE name = ?1";
constexpr std::string_view kSqlGetInstitution =
    "SELECT institution_id, name, created_at_ms FROM institutions WHERE institution_id = ?1";
constexpr std::string_view kSqlListInstitutions =
    "SELECT institution_id, name, created_at_ms FROM institutions ORDER BY name, institution_id";

constexpr std::string_view kSqlInsertDepartment =
    "INSERT INTO departments(department_id, institution_id, name, created_at_ms) "
    "VALUES (?1, ?2, ?3, ?4)";
constexpr std::string_view kSqlDepartmentNameTaken =
    "SELECT 1 FROM departments WHERE institution_id = ?1 AND name = ?2";
constexpr std::string_view kSqlGetDepartment =
    "SELECT department_id, institution_id, name, created_at_ms FROM departments "
    "WHERE department_id = ?1";
constexpr std::string_view kSqlListDepartments =
    "SELECT department_id, institution_id, name, created_at_ms FROM departments "
    "WHERE ?1 = '' OR institution_id = ?1 ORDER BY institution_id, name";

#define MV_ACCOUNT_COLUMNS                                                                  \
  "account_id, username_index, sealed_profile, password_hash, roles, institution_id, "      \
  "department_id, patient_id, sealed_totp_secret, totp_enabled, last_totp_step, disabled, " \
  "created_at_ms, updated_at_ms, home_institution_id"
constexpr std::string_view kSqlInsertAccount =
    "INSERT INTO accounts(" MV_ACCOUNT_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
constexpr std::string_view kSqlPatientTaken = "SELECT 1 FROM accounts WHERE patient_id = ?1";
constexpr std::string_view kSqlUsernameTaken = "SELECT 1 FROM accounts WHERE username_index = ?1";
constexpr std::string_view kSqlAccountIdTaken = "SELECT 1 FROM accounts WHERE account_id = ?1";
constexpr std::string_view kSqlGetAccount =
    "SELECT " MV_ACCOUNT_COLUMNS " FROM accounts WHERE account_id = ?1";
constexpr std::string_view kSqlFindAccountByIndex =
    "SELECT " MV_ACCOUNT_COLUMNS " FROM accounts WHERE username_index = ?1";
constexpr std::string_view kSqlListAccounts =
    "SELECT " MV_ACCOUNT_COLUMNS
    " FROM accounts WHERE ?1 = '' OR institution_id = ?1 OR home_institution_id = ?1 "
    "ORDER BY created_at_ms, rowid";
constexpr std::string_view kSqlSetRoles =
    "UPDATE accounts SET roles = ?2, updated_at_ms = ?3 WHERE account_id = ?1";
constexpr std::string_view kSqlSetDisabled =
    "UPDATE accounts SET disabled = ?2, updated_at_ms = ?3 WHERE account_id = ?1";
constexpr std::string_view kSqlSetPasswordHash =
    "UPDATE accounts SET password_hash = ?2, updated_at_ms = ?3 WHERE account_id = ?1";
constexpr std::string_view kSqlSetTotp =
    "UPDATE accounts SET sealed_totp_secret = ?2, totp_enabled = ?3, last_totp_step = 0, "
    "updated_at_ms = ?4 WHERE account_id = ?1";
constexpr std::string_view kSqlInsertRecovery =
    "INSERT INTO account_recoveries(account_id, recovery_id, requested_by, institution_id, "
    "sealed_reason, requested_at_ms, not_before_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr std::string_view kSqlGetRecovery =
    "SELECT account_id, recovery_id, requested_by, institution_id, sealed_reason, "
    "requested_at_ms, not_before_ms FROM account_recoveries WHERE account_id = ?1";
constexpr std::string_view kSqlDeleteRecoveriesOf =
    "DELETE FROM account_recoveries WHERE account_id = ?1";
constexpr std::string_view kSqlDeleteRecovery =
    "DELETE FROM account_recoveries WHERE account_id = ?1 AND recovery_id = ?2";
constexpr std::string_view kSqlAdvanceTotpStep =
    "UPDATE accounts SET last_totp_step = ?2 WHERE account_id = ?1 AND last_totp_step < ?2";

constexpr std::string_view kSqlGetFailures =
    "SELECT username_index, failures, last_failure_at_ms, locked_until_ms FROM login_failures "
    "WHERE username_index = ?1";
constexpr std::string_view kSqlUpsertFailures =
    "INSERT INTO login_failures(username_index, failures, last_failure_at_ms, locked_until_ms) "
    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(username_index) DO UPDATE SET "
    "failures = excluded.failures, last_failure_at_ms = excluded.last_failure_at_ms, "
    "locked_until_ms = excluded.locked_until_ms";
constexpr std::string_view kSqlClearFailures =
    "DELETE FROM login_failures WHERE username_index = ?1";

#define MV_SESSION_COLUMNS                                                         \
  "session_id, account_id, audience, mfa_verified, created_at_ms, expires_at_ms, " \
  "revoked_at_ms, revoke_reason"
constexpr std::string_view kSqlInsertSession =
    "INSERT INTO sessions(" MV_SESSION_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL)";
constexpr std::string_view kSqlGetSession =
    "SELECT " MV_SESSION_COLUMNS " FROM sessions WHERE session_id = ?1";
constexpr std::string_view kSqlListSessions =
    "SELECT " MV_SESSION_COLUMNS
    " FROM sessions WHERE account_id = ?1 ORDER BY created_at_ms DESC, rowid DESC";
constexpr std::string_view kSqlRevokeSession =
    "UPDATE sessions SET revoked_at_ms = ?2, revoke_reason = ?3 "
    "WHERE session_id = ?1 AND revoked_at_ms IS NULL";
constexpr std::string_view kSqlSessionExists = "SELECT 1 FROM sessions WHERE session_id = ?1";
constexpr std::string_view kSqlSessionAccount =
    "SELECT account_id FROM sessions WHERE session_id = ?1";
constexpr std::string_view kSqlRevokeAccountSessions =
    "UPDATE sessions SET revoked_at_ms = ?2, revoke_reason = ?3 "
    "WHERE account_id = ?1 AND revoked_at_ms IS NULL";

constexpr std::string_view kSqlInsertToken =
    "INSERT INTO session_tokens(token_hash, session_id, kind, created_at_ms, expires_at_ms, "
    "rotated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, NULL)";
constexpr std::string_view kSqlFindToken =
    "SELECT token_hash, session_id, kind, created_at_ms, expires_at_ms, rotated_at_ms "
    "FROM session_tokens WHERE token_hash = ?1";
constexpr std::string_view kSqlMarkRotated =
    "UPDATE session_tokens SET rotated_at_ms = ?2 WHERE token_hash = ?1 AND rotated_at_ms IS NULL";

constexpr std::string_view kSqlPurgeTokens = "DELETE FROM session_tokens WHERE expires_at_ms <= ?1";
constexpr std::string_view kSqlPurgeSessionTokens =
    "DELETE FROM session_tokens WHERE session_id IN "
    "(SELECT session_id FROM sessions WHERE expires_at_ms <= ?1)";
constexpr std::string_view kSqlPurgeSessions = "DELETE FROM sessions WHERE expires_at_ms <= ?1";
constexpr std::string_view kSqlPurgeFailures =
    "DELETE FROM login_failures WHERE locked_until_ms <= ?1 AND last_failure_at_ms <= ?2";

// ---------------------------------------------------------------------------
// Row codecs.

Result<std::string> EncodeRoles(const std::vector<std::string>& roles) {
  std::string out;
  for (const std::string& role : roles) {
    if (role.empty() || role.find(',') != std::string::npos) {
      return Status::InvalidArgument("role names must be non-empty and contain no ','");
    }
    if (!out.empty()) {
      out += ',';
    }
    out += role;
  }
  return out;
}

std::vector<std::string> DecodeRoles(std::string_view text) {
  std::vector<std::string> roles;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    roles.emplace_back(text.substr(0, comma));
    if (comma == std::string_view::npos) {
      break;
    }
    text.remove_prefix(comma + 1);
  }
  return roles;
}

std::string_view KindName(TokenKind kind) {
  return kind == TokenKind::kRefresh ? "refresh" : "access";
}

// Binds "" as NULL (absent).
void TextOrNull(Stmt& s, int i, std::string_view v) {
  if (v.empty()) {
    s.Null(i);
  } else {
    s.Text(i, v);
  }
}

InstitutionRow ReadInstitution(const Stmt& s) {
  InstitutionRow r;
  r.institution_id = s.ColText(0);
  r.name = s.ColText(1);
  r.created_at_ms = s.ColInt(2);
  return r;
}

DepartmentRow ReadDepartment(const Stmt& s) {
  DepartmentRow r;
  r.department_id = s.ColText(0);
  r.institution_id = s.ColText(1);
  r.name = s.ColText(2);
  r.created_at_ms = s.ColInt(3);
  return r;
}

AccountRow ReadAccount(const Stmt& s) {
  AccountRow r;
  r.account_id = s.ColText(0);
  r.username_index = s.ColBlob(1);
  r.sealed_profile = s.ColBlob(2);
  r.password_hash = s.ColText(3);
  r.roles = DecodeRoles(s.ColText(4));
  r.institution_id = s.ColText(5);
  r.department_id = s.ColText(6);
  r.patient_id = s.ColText(7);
  r.sealed_totp_secret = s.ColBlob(8);
  r.totp_enabled = s.ColInt(9) != 0;
  r.last_totp_step = s.ColInt(10);
  r.disabled = s.ColInt(11) != 0;
  r.created_at_ms = s.ColInt(12);
  r.updated_at_ms = s.ColInt(13);
  r.home_institution_id = s.ColText(14);
  return r;
}

RecoveryRow ReadRecovery(const Stmt& s) {
  RecoveryRow r;
  r.account_id = s.ColText(0);
  r.recovery_id = s.ColText(1);
  r.requested_by = s.ColText(2);
  r.institution_id = s.ColText(3);
  r.sealed_reason = s.ColBlob(4);
  r.requested_at_ms = s.ColInt(5);
  r.not_before_ms = s.ColInt(6);
  return r;
}

LoginFailureRow ReadFailures(const Stmt& s) {
  LoginFailureRow r;
  r.username_index = s.ColBlob(0);
  r.failures = s.ColInt(1);
  r.last_failure_at_ms = s.ColInt(2);
  r.locked_until_ms = s.ColInt(3);
  return r;
}

SessionRow ReadSession(const Stmt& s) {
  SessionRow r;
  r.session_id = s.ColText(0);
  r.account_id = s.ColText(1);
  r.audience = s.ColText(2);
  r.mfa_verified = s.ColInt(3) != 0;
  r.created_at_ms = s.ColInt(4);
  r.expires_at_ms = s.ColInt(5);
  if (!s.IsNull(6)) {
    r.revoked_at_ms = s.ColInt(6);
  }
  r.revoke_reason = s.ColText(7);
  return r;
}

SessionTokenRow ReadToken(const Stmt& s) {
  SessionTokenRow r;
  r.token_hash = s.ColBlob(0);
  r.session_id = s.ColText(1);
  r.kind = s.ColText(2) == "refresh" ? TokenKind::kRefresh : TokenKind::kAccess;
  r.created_at_ms = s.ColInt(3);
  r.expires_at_ms = s.ColInt(4);
  if (!s.IsNull(5)) {
    r.rotated_at_ms = s.ColInt(5);
  }
  return r;
}

Status ValidateName(std::string_view name, std::string_view what) {
  if (name.empty()) {
    return Status::InvalidArgument(std::string(what) + " name must not be empty");
  }
  return Status::Ok();
}

Status ValidateTokens(const std::vector<SessionTokenRow>& tokens) {
  for (const SessionTokenRow& t : tokens) {
    if (t.token_hash.size() != kTokenHashSize) {
      return Status::InvalidArgument("token hash must be 32 bytes");
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------

class SqliteAccountStore final : public AccountStore {
 public:
  SqliteAccountStore(std::shared_ptr<SharedWriter> shared, std::unique_ptr<ReaderPool> readers,
                     SqliteOptions options)
      : shared_(std::move(shared)), readers_(std::move(readers)), options_(std::move(options)) {}

  ~SqliteAccountStore() override {
    readers_.reset();  // readers first: the writer, closing last, removes the WAL
    shared_.reset();
  }

  // --- Institutions and departments ---------------------------------------

  Status CreateInstitution(const InstitutionRow& row, AuditEntries audit) override {
    MV_RETURN_IF_ERROR(CheckAuditHook(audit));
    if (row.institution_id.empty()) {
      return Status::InvalidArgument("institution id must not be empty");
    }
    MV_RETURN_IF_ERROR(ValidateName(row.name, "institution"));
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock,
                        shared_->Lock(options_.synchronous_full));
    WriteTxn txn(shared_->conn());
    MV_RETURN_IF_ERROR(txn.Begin());
    {
      MV_STMT(s, shared_->conn(), kSqlInstitutionNameTaken);
      s.Text(1, row.name);
      MV_ASSIGN_OR_RETURN(bool taken, s.Step("create institution"));
      if (taken) {
        return Status::AlreadyExists("an institution with this name already exists");
      }
    }
    {
      MV_STMT(s, shared_->conn(), kSqlInsertInstitution);
      s.Text(1, row.institution_id).Text(2, row.name).Int(3, row.created_at_ms);
      Status st = s.Exec("create institution");
      if (st.code() == StatusCode::kAlreadyExists) {
        return Status::AlreadyExists("institution already exists");
      }
      MV_RETURN_IF_ERROR(st);
    }
    MV_RETURN_IF_ERROR(AuditLocked(txn, audit));
    return txn.Commit();
  }

  Result<InstitutionRow> GetInstitution(std::string_view institution_id) override {
    ReaderPool::Lease r(*readers_);
    MV_STMT(s, r.conn(), kSqlGetInstitution);
    s.Text(1, institution_id);
    MV_ASSIGN_OR_RETURN(bool row, s.Step("get institution"));
    if (!row) {
      return Status::NotFound("institution not found");
    }
    return ReadInstitution(s);
  }

  Result<std::vector<InstitutionRow>> ListInstitutions() override {
    ReaderPool::Lease r(*readers_);
    MV_STMT(s, r.conn(), kSqlListInstitutions);
    std::vector<InstitutionRow> out;
    while (true) {
      MV_ASSIGN_OR_RETURN(bool row, s.Step("list institutions"));
      if (!row) {
        return out;
      }
      out.push_back(ReadInstitution(s));
    }
  }

  Status CreateDepartment(const DepartmentRow& row, AuditEntries audit) override {
    MV_RETURN_IF_ERROR(CheckAuditHook(audit));
    if (row.department_id.empty() || row.institution_id.empty()) {
      return Status::InvalidArgument("department and institution ids must not be empty");
    }
    MV_RETURN_IF_ERROR(ValidateName(row.name, "department"));
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock,
                        shared_->Lock(options_.synchronous_full));
    WriteTxn txn(shared_->conn());
    MV_RETURN_IF_ERROR(txn.Begin());
    {
      MV_STMT(s, shared_->conn(), kSqlGetInstitution);
      s.Text(1, row.institution_id);
      MV_ASSIGN_OR_RETURN(bool found, s.Step("create department"));
      if (!found) {
        return Status::NotFound("institution not found");
      }
    }
    {
      MV_STMT(s, shared_->conn(), kSqlDepartmentNameTaken);
      s.Text(1, row.institution_id).Text(2, row.name);
      MV_ASSIGN_OR_RETURN(bool taken, s.Step("create department"));
      if (taken) {
        return Status::AlreadyExists("a department with this name already exists");
      }
    }
    {
      MV_STMT(s, shared_->conn(), kSqlInsertDepartment);
      s.Text(1, row.department_id)
          .Text(2, row.institution_id)
          .Text(3, row.name)
          .Int(4, row.created_at_ms);
      Status st = s.Exec("create department");
      if (st.code() == StatusCode::kAlreadyExists) {
        return Status::AlreadyExists("department already exists");
      }
      MV_RETURN_IF_ERROR(st);
    }
    MV_RETURN_IF_ERROR(AuditLocked(txn, audit));
    return txn.Commit();
  }

  Result<DepartmentRow> GetDepartment(std::string_view department_id) override {
    ReaderPool::Lease r(*readers_);
    MV_STMT(s, r.conn(), kSqlGetDepartment);
    s.Text(1, department_id);
    MV_ASSIGN_OR_RETURN(bool row, s.Step("get department"));
    if (!row) {
      return Status::NotFound("department not found");
    }
    return ReadDepartment(s);
  }

  Result<std::vector<DepartmentRow>> ListDepartments(std::string_view institution_id) override {
    ReaderPool::Lease r(*readers_);
    MV_STMT(s, r.conn(), kSqlListDepartments);
    s.Text(1, institution_id);
    std::vector<DepartmentRow> out;
    while (true) {
      MV_ASSIGN_OR_RETURN(bool row, s.Step("list departments"));
      if (!row) {
        return out;
      }
      out.push_back(ReadDepartment(s));
    }
  }

  // --- Accounts -----------------------------------------------------------

  Status CreateAccount(const AccountRow& row, AuditEntries audit) override {
    MV_RETURN_IF_ERROR(CheckAuditHook(audit));
    if (row.account_id.empty() || row.username_index.empty() || row.sealed_profile.empty() ||
        row.password_hash.empty()) {
      return Status::InvalidArgument(
          "account needs an id, a username index, a sealed profile and a password hash");
    }
    if (row.totp_enabled && row.sealed_totp_secret.empty()) {
      return Status::InvalidArgument("TOTP enabled without a secret");
    }
    if (!row.department_id.empty() && row.institution_id.empty()) {
      return Status::InvalidArgument("a department requires an institution");
    }
    MV_ASSIGN_OR_RETURN(std::string roles, EncodeRoles(row.roles));
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock,
                        shared_->Lock(options_.synchronous_full));
    WriteTxn txn(shared_->conn());
    MV_RETURN_IF_ERROR(txn.Begin());
    {
      MV_STMT(s, shared_->conn(), kSqlUsernameTaken);
      s.Blob(1, row.username_index);
      MV_ASSIGN_OR_RETURN(bool taken, s.Step("create account"));
      if (taken) {
        return Status::AlreadyExists("username is already taken");
      }
    }
    {
      MV_STMT(s, shared_->conn(), kSqlAccountIdTaken);
      s.Text(1, row.account_id);
      MV_ASSIGN_OR_RETURN(bool taken, s.Step("create account"));
      if (taken) {
        return Status::AlreadyExists("account already exists");
      }
    }
    if (!row.patient_id.empty()) {
      MV_STMT(s, shared_->conn(), kSqlPatientTaken);
      s.Text(1, row.patient_id);
      MV_ASSIGN_OR_RETURN(bool taken, s.Step("create account"));
      if (taken) {
        return Status::AlreadyExists("this patient already has an account");
      }
    }
    for (const std::string* inst : {&row.institution_id, &row.home_institution_id}) {
      if (inst->empty()) {
        continue;
      }
      MV_STMT(s, shared_->conn(), kSqlGetInstitution);
      s.Text(1, *inst);
      MV_ASSIGN_OR_RETURN(bool found, s.Step("create account"));
      if (!found) {
        return Status::NotFound("institution not found");
      }
    }
    if (!row.department_id.empty()) {
      MV_STMT(s, shared_->conn(), kSqlGetDepartment);
      s.Text(1, row.department_id);
      MV_ASSIGN_OR_RETURN(bool found, s.Step("create account"));
      if (!found) {
        return Status::NotFound("department not found");
      }
      if (s.ColText(1) != row.institution_id) {
        return Status::InvalidArgument("department belongs to another institution");
      }
    }
    {
      MV_STMT(s, shared_->conn(), kSqlInsertAccount);
      s.Text(1, row.account_id)
          .Blob(2, row.username_index)
          .Blob(3, row.sealed_profile)
          .Text(4, row.password_hash)
          .Text(5, roles);
      TextOrNull(s, 6, row.institution_id);
      TextOrNull(s, 7, row.department_id);
      TextOrNull(s, 8, row.patient_id);
      s.Blob(9, row.sealed_totp_secret)
          .Int(10, row.totp_enabled ? 1 : 0)
          .Int(11, row.last_totp_step)
          .Int(12, row.disabled ? 1 : 0)
          .Int(13, row.created_at_ms)
          .Int(14, row.updated_at_ms);
      TextOrNull(s, 15, row.home_institution_id);
      MV_RETURN_IF_ERROR(s.Exec("create account"));
    }
    MV_RETURN_IF_ERROR(AuditLocked(txn, audit));
    return txn.Commit();
  }

  Result<AccountRow> GetAccount(std::string_view account_id) override {
    ReaderPool::Lease r(*readers_);
    MV_STMT(s, r.conn(), kSqlGetAccount);
    s.Text(1, account_id);
    MV_ASSIGN_OR_RETURN(bool row, s.Step("get account"));
    if (!row) {
      return Status::NotFound("account not found");
    }
    return ReadAccount(s);
  }

  Result<AccountRow> FindAccountByUsernameIndex(ByteView username_index) override {
    if (username_index.empty()) {
      return Status::NotFound("account not found");
    }
    ReaderPool::Lease r(*readers_);
    MV_STMT(s, r.conn(), kSqlFindAccountByIndex);
    s.Blob(1, username_index);
    MV_ASSIGN_OR_RETURN(bool row, s.Step("find account"));
    if (!row) {
      return Status::NotFound("account not found");
    }
    return ReadAccount(s);
  }

  Result<std::vector<AccountRow>> ListAccounts(std::string_view institution_id) override {
    ReaderPool::Lease r(*readers_);
    MV_STMT(s, r.conn(), kSqlListAccounts);
    s.Text(1, institution_id);
    std::vector<AccountRow> out;
    while (true) {
      MV_ASSIGN_OR_RETURN(bool row, s.Step("list accounts"));
      if (!row) {
        return out;
      }
      out.push_back(ReadAccount(s));
    }
  }

  Status SetRoles(std::string_view account_id, const std::vector<std::string>& roles,
                  int64_t now_ms, AuditEntries audit) override {
    MV_ASSIGN_OR_RETURN(std::string encoded, EncodeRoles(roles));
    return AuditedWrite(account_id, audit, [&]() -> Status {
      MV_STMT(s, shared_->conn(), kSqlSetRoles);
      s.Text(1, account_id).Text(2, encoded).Int(3, now_ms);
      return ExecOneRow(s, "set roles");
    });
  }

  Status SetDisabled(std::string_view account_id, bool disabled, int64_t now_ms,
                     AuditEntries audit) override {
    return AuditedWrite(account_id, audit, [&]() -> Status {
      {
        MV_STMT(s, shared_->conn(), kSqlSetDisabled);
        s.Text(1, account_id).Int(2, disabled ? 1 : 0).Int(3, now_ms);
        MV_RETURN_IF_ERROR(ExecOneRow(s, "set disabled"));
      }
      if (!disabled) {
        return Status::Ok();
      }
      // A disabled person can neither see nor stop a recovery: disabling
      // withdraws an open one, whichever process does it.
      MV_STMT(s, shared_->conn(), kSqlDeleteRecoveriesOf);
      s.Text(1, account_id);
      return s.Exec("set disabled");
    });
  }

  Status SetPasswordHash(std::string_view account_id, std::string_view password_hash,
                         int64_t now_ms, AuditEntries audit) override {
    if (password_hash.empty()) {
      return Status::InvalidArgument("password hash must not be empty");
    }
    return AuditedWrite(account_id, audit, [&]() -> Status {
      MV_STMT(s, shared_->conn(), kSqlSetPasswordHash);
      s.Text(1, account_id).Text(2, password_hash).Int(3, now_ms);
      return ExecOneRow(s, "set password");
    });
  }

  Status SetTotp(std::string_view account_id, ByteView sealed_totp_secret, bool enabled,
                 int64_t now_ms, AuditEntries audit) override {
    if (enabled && sealed_totp_secret.empty()) {
      return Status::InvalidArgument("TOTP enabled without a secret");
    }
    return AuditedWrite(account_id, audit, [&]() -> Status {
      MV_STMT(s, shared_->conn(), kSqlSetTotp);
      s.Text(1, account_id).Blob(2, sealed_totp_secret).Int(3, enabled ? 1 : 0).Int(4, now_ms);
      return ExecOneRow(s, "set totp");
    });
  }

  // --- Account recovery ---------------------------------------------------

  Status CreateRecovery(const RecoveryRow& row, AuditEntries audit) override {
    if (row.account_id.empty() || row.recovery_id.empty() || row.requested_by.empty() ||
        row.sealed_reason.empty()) {
      return Status::InvalidArgument(
          "a recovery needs an account, an id, a requester and a sealed reason");
    }
    MV_RETURN_IF_ERROR(CheckAuditHook(audit));
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock,
                        shared_->Lock(options_.synchronous_full));
    WriteTxn txn(shared_->conn());
    MV_RETURN_IF_ERROR(txn.Begin());
    MV_RETURN_IF_ERROR(AccountExistsLocked(row.account_id, "create recovery"));
    {
      MV_STMT(s, shared_->conn(), kSqlGetRecovery);
      s.Text(1, row.account_id);
      MV_ASSIGN_OR_RETURN(bool open, s.Step("create recovery"));
      if (open) {
        return Status::AlreadyExists("the account already has an open recovery");
      }
    }
    {
      MV_STMT(s, shared_->conn(), kSqlInsertRecovery);
      s.Text(1, row.account_id).Text(2, row.recovery_id).Text(3, row.requested_by);
      TextOrNull(s, 4, row.institution_id);
      s.Blob(5, row.sealed_reason).Int(6, row.requested_at_ms).Int(7, row.not_before_ms);
      MV_RETURN_IF_ERROR(s.Exec("create recovery"));
    }
    MV_RETURN_IF_ERROR(AuditLocked(txn, audit));
    return txn.Commit();
  }

  Result<std::optional<RecoveryRow>> GetRecovery(std::string_view account_id) override {
    ReaderPool::Lease r(*readers_);
    MV_STMT(s, r.conn(), kSqlGetRecovery);
    s.Text(1, account_id);
    MV_ASSIGN_OR_RETURN(bool row, s.Step("get recovery"));
    if (!row) {
      return std::optional<RecoveryRow>();
    }
    return std::optional<RecoveryRow>(ReadRecovery(s));
  }

  Status CancelRecovery(std::string_view account_id, std::string_view recovery_id,
                        AuditEntries audit) override {
    MV_RETURN_IF_ERROR(CheckAuditHook(audit));
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock,
                        shared_->Lock(options_.synchronous_full));
    WriteTxn txn(shared_->conn());
    MV_RETURN_IF_ERROR(txn.Begin());
    MV_RETURN_IF_ERROR(DeleteRecoveryLocked(account_id, recovery_id));
    MV_RETURN_IF_ERROR(AuditLocked(txn, audit));
    return txn.Commit();
  }

  Status CompleteRecovery(std::string_view account_id, std::string_view recovery_id,
                          std::string_view password_hash, ByteView sealed_totp_secret,
                          bool totp_enabled, int64_t now_ms, AuditEntries audit) override {
    if (password_hash.empty()) {
      return Status::InvalidArgument("password hash must not be empty");
    }
    if (totp_enabled && sealed_totp_secret.empty()) {
      return Status::InvalidArgument("TOTP enabled without a secret");
    }
    MV_RETURN_IF_ERROR(CheckAuditHook(audit));
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock,
                        shared_->Lock(options_.synchronous_full));
    WriteTxn txn(shared_->conn());
    MV_RETURN_IF_ERROR(txn.Begin());
    MV_RETURN_IF_ERROR(DeleteRecoveryLocked(account_id, recovery_id));
    {
      MV_STMT(s, shared_->conn(), kSqlSetPasswordHash);
      s.Text(1, account_id).Text(2, password_hash).Int(3, now_ms);
      MV_RETURN_IF_ERROR(ExecOneRow(s, "complete recovery"));
    }
    {
      MV_STMT(s, shared_->conn(), kSqlSetTotp);
      s.Text(1, account_id).Blob(2, sealed_totp_secret).Int(3, totp_enabled ? 1 : 0).Int(4, now_ms);
      MV_RETURN_IF_ERROR(ExecOneRow(s, "complete recovery"));
    }
    {
      MV_STMT(s, shared_->conn(), kSqlRevokeAccountSessions);
      s.Text(1, account_id).Int(2, now_ms).Text(3, "account recovered");
      MV_RETURN_IF_ERROR(s.Exec("complete recovery"));
    }
    // Other processes (a server beside the console) drop its tokens at once.
    MV_RETURN_IF_ERROR(RecordChange(shared_->conn(), kChangeDomainAccount, account_id));
    MV_RETURN_IF_ERROR(AuditLocked(txn, audit));
    return txn.Commit();
  }

  // NotFound when the account does not exist. REQUIRES: the shared writer's lock held.
  Status AccountExistsLocked(std::string_view account_id, std::string_view what) {
    MV_STMT(s, shared_->conn(), kSqlAccountIdTaken);
    s.Text(1, account_id);
    MV_ASSIGN_OR_RETURN(bool found, s.Step(what));
    if (!found) {
      return Status::NotFound("account not found");
    }
    return Status::Ok();
  }

  // REQUIRES: the shared writer's lock held and a transaction open.
  Status DeleteRecoveryLocked(std::string_view account_id, std::string_view recovery_id) {
    MV_STMT(s, shared_->conn(), kSqlDeleteRecovery);
    s.Text(1, account_id).Text(2, recovery_id);
    MV_RETURN_IF_ERROR(s.Exec("close recovery"));
    if (sqlite3_changes(shared_->conn().db()) == 0) {
      return Status::NotFound("no such open recovery");
    }
    return Status::Ok();
  }

  Status CheckAuditHook(AuditEntries audit) const {
    if (!audit.empty() && options_.audit_sink == nullptr) {
      return Status::FailedPrecondition("audit entries given but no ledger is attached");
    }
    return Status::Ok();
  }

  // REQUIRES: the shared writer's lock held and a transaction open.
  Status AuditLocked(WriteTxn& txn, AuditEntries audit) {
    return audit.empty() ? Status::Ok()
                         : options_.audit_sink->AppendEncodedInTransaction(txn, audit);
  }

  // Runs `write` (a change to the account `account_id`) under the writer
  // lock in one transaction with its audit entries and its change-log row.
  Status AuditedWrite(std::string_view account_id, AuditEntries audit,
                      const std::function<Status()>& write) {
    MV_RETURN_IF_ERROR(CheckAuditHook(audit));
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock,
                        shared_->Lock(options_.synchronous_full));
    WriteTxn txn(shared_->conn());
    MV_RETURN_IF_ERROR(txn.Begin());
    MV_RETURN_IF_ERROR(write());
    MV_RETURN_IF_ERROR(AuditLocked(txn, audit));
    MV_RETURN_IF_ERROR(RecordChange(shared_->conn(), kChangeDomainAccount, account_id));
    return txn.Commit();
  }

  Result<bool> AdvanceTotpStep(std::string_view account_id, int64_t step) override {
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock,
                        shared_->Lock(options_.synchronous_full));
    {
      MV_STMT(s, shared_->conn(), kSqlAdvanceTotpStep);
      s.Text(1, account_id).Int(2, step);
      MV_RETURN_IF_ERROR(s.Exec("advance totp step"));
    }
    if (sqlite3_changes(shared_->conn().db()) > 0) {
      return true;
    }
    MV_STMT(s, shared_->conn(), kSqlAccountIdTaken);
    s.Text(1, account_id);
    MV_ASSIGN_OR_RETURN(bool found, s.Step("advance totp step"));
    if (!found) {
      return Status::NotFound("account not found");
    }
    return false;
  }

  // --- Login failures -----------------------------------------------------

  Result<std::optional<LoginFailureRow>> GetLoginFailures(ByteView username_index) override {
    ReaderPool::Lease r(*readers_);
    MV_STMT(s, r.conn(), kSqlGetFailures);
    s.Blob(1, username_index);
    MV_ASSIGN_OR_RETURN(bool row, s.Step("get login failures"));
    if (!row) {
      return std::optional<LoginFailureRow>();
    }
    return std::optional<LoginFailureRow>(ReadFailures(s));
  }

  Result<LoginFailureRow> UpdateLoginFailures(
      ByteView username_index,
      const std::function<LoginFailureRow(const std::optional<LoginFailureRow>&)>& update)
      override {
    if (username_index.empty()) {
      return Status::InvalidArgument("username index must not be empty");
    }
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock,
                        shared_->Lock(options_.synchronous_full));
    WriteTxn txn(shared_->conn());
    MV_RETURN_IF_ERROR(txn.Begin());
    std::optional<LoginFailureRow> current;
    {
      MV_STMT(s, shared_->conn(), kSqlGetFailures);
      s.Blob(1, username_index);
      MV_ASSIGN_OR_RETURN(bool row, s.Step("update login failures"));
      if (row) {
        current = ReadFailures(s);
      }
    }
    LoginFailureRow next = update(current);
    next.username_index.assign(username_index.begin(), username_index.end());
    {
      MV_STMT(s, shared_->conn(), kSqlUpsertFailures);
      s.Blob(1, next.username_index)
          .Int(2, next.failures)
          .Int(3, next.last_failure_at_ms)
          .Int(4, next.locked_until_ms);
      MV_RETURN_IF_ERROR(s.Exec("update login failures"));
    }
    MV_RETURN_IF_ERROR(txn.Commit());
    return next;
  }

  Status ClearLoginFailures(ByteView username_index) override {
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock,
                        shared_->Lock(options_.synchronous_full));
    MV_STMT(s, shared_->conn(), kSqlClearFailures);
    s.Blob(1, username_index);
    return s.Exec("clear login failures");
  }

  // --- Sessions -----------------------------------------------------------

  Status CreateSession(const SessionRow& session,
                       const std::vector<SessionTokenRow>& tokens) override {
    if (session.session_id.empty() || session.account_id.empty()) {
      return Status::InvalidArgument("session needs an id and an account");
    }
    MV_RETURN_IF_ERROR(ValidateTokens(tokens));
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock,
                        shared_->Lock(options_.synchronous_full));
    WriteTxn txn(shared_->conn());
    MV_RETURN_IF_ERROR(txn.Begin());
    MV_RETURN_IF_ERROR(AccountExistsLocked(session.account_id, "create session"));
    {
      MV_STMT(s, shared_->conn(), kSqlInsertSession);
      s.Text(1, session.session_id)
          .Text(2, session.account_id)
          .Text(3, session.audience)
          .Int(4, session.mfa_verified ? 1 : 0)
          .Int(5, session.created_at_ms)
          .Int(6, session.expires_at_ms);
      Status st = s.Exec("create session");
      if (st.code() == StatusCode::kAlreadyExists) {
        return Status::AlreadyExists("session already exists");
      }
      MV_RETURN_IF_ERROR(st);
    }
    for (const SessionTokenRow& t : tokens) {
      MV_RETURN_IF_ERROR(InsertTokenLocked(session.session_id, t));
    }
    return txn.Commit();
  }

  Result<SessionRow> GetSession(std::string_view session_id) override {
    ReaderPool::Lease r(*readers_);
    MV_STMT(s, r.conn(), kSqlGetSession);
    s.Text(1, session_id);
    MV_ASSIGN_OR_RETURN(bool row, s.Step("get session"));
    if (!row) {
      return Status::NotFound("session not found");
    }
    return ReadSession(s);
  }

  Result<std::vector<SessionRow>> ListSessions(std::string_view account_id) override {
    ReaderPool::Lease r(*readers_);
    MV_STMT(s, r.conn(), kSqlListSessions);
    s.Text(1, account_id);
    std::vector<SessionRow> out;
    while (true) {
      MV_ASSIGN_OR_RETURN(bool row, s.Step("list sessions"));
      if (!row) {
        return out;
      }
      out.push_back(ReadSession(s));
    }
  }

  Result<SessionTokenRow> FindToken(ByteView token_hash) override {
    if (token_hash.size() != kTokenHashSize) {
      return Status::NotFound("token not found");
    }
    ReaderPool::Lease r(*readers_);
    MV_STMT(s, r.conn(), kSqlFindToken);
    s.Blob(1, token_hash);
    MV_ASSIGN_OR_RETURN(bool row, s.Step("find token"));
    if (!row) {
      return Status::NotFound("token not found");
    }
    return ReadToken(s);
  }

  Result<bool> RotateRefreshToken(ByteView old_hash, int64_t now_ms,
                                  const std::vector<SessionTokenRow>& new_tokens) override {
    if (old_hash.size() != kTokenHashSize) {
      return Status::NotFound("token not found");
    }
    MV_RETURN_IF_ERROR(ValidateTokens(new_tokens));
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock,
                        shared_->Lock(options_.synchronous_full));
    WriteTxn txn(shared_->conn());
    MV_RETURN_IF_ERROR(txn.Begin());
    std::string session_id;
    {
      MV_STMT(s, shared_->conn(), kSqlFindToken);
      s.Blob(1, old_hash);
      MV_ASSIGN_OR_RETURN(bool row, s.Step("rotate refresh token"));
      if (!row) {
        return Status::NotFound("token not found");
      }
      SessionTokenRow old = ReadToken(s);
      if (old.kind != TokenKind::kRefresh) {
        return Status::InvalidArgument("not a refresh token");
      }
      if (old.rotated_at_ms.has_value()) {
        return false;
      }
      session_id = std::move(old.session_id);
    }
    {
      MV_STMT(s, shared_->conn(), kSqlMarkRotated);
      s.Blob(1, old_hash).Int(2, now_ms);
      MV_RETURN_IF_ERROR(s.Exec("rotate refresh token"));
    }
    for (const SessionTokenRow& t : new_tokens) {
      MV_RETURN_IF_ERROR(InsertTokenLocked(session_id, t));
    }
    MV_RETURN_IF_ERROR(txn.Commit());
    return true;
  }

  Result<bool> RevokeSession(std::string_view session_id, int64_t now_ms,
                             std::string_view reason) override {
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock,
                        shared_->Lock(options_.synchronous_full));
    WriteTxn txn(shared_->conn());
    MV_RETURN_IF_ERROR(txn.Begin());
    {
      MV_STMT(s, shared_->conn(), kSqlRevokeSession);
      s.Text(1, session_id).Int(2, now_ms).Text(3, reason);
      MV_RETURN_IF_ERROR(s.Exec("revoke session"));
    }
    if (sqlite3_changes(shared_->conn().db()) > 0) {
      std::string account_id;
      {
        MV_STMT(s, shared_->conn(), kSqlSessionAccount);
        s.Text(1, session_id);
        MV_ASSIGN_OR_RETURN(bool found, s.Step("revoke session"));
        if (found) {
          account_id = s.ColText(0);
        }
      }
      if (!account_id.empty()) {
        MV_RETURN_IF_ERROR(RecordChange(shared_->conn(), kChangeDomainAccount, account_id));
      }
      MV_RETURN_IF_ERROR(txn.Commit());
      return true;
    }
    MV_STMT(s, shared_->conn(), kSqlSessionExists);
    s.Text(1, session_id);
    MV_ASSIGN_OR_RETURN(bool found, s.Step("revoke session"));
    if (!found) {
      return Status::NotFound("session not found");
    }
    return false;
  }

  Result<int64_t> RevokeAccountSessions(std::string_view account_id, int64_t now_ms,
                                        std::string_view reason) override {
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock,
                        shared_->Lock(options_.synchronous_full));
    WriteTxn txn(shared_->conn());
    MV_RETURN_IF_ERROR(txn.Begin());
    int64_t revoked = 0;
    {
      MV_STMT(s, shared_->conn(), kSqlRevokeAccountSessions);
      s.Text(1, account_id).Int(2, now_ms).Text(3, reason);
      MV_RETURN_IF_ERROR(s.Exec("revoke sessions"));
      revoked = sqlite3_changes(shared_->conn().db());
    }
    if (revoked > 0) {
      MV_RETURN_IF_ERROR(RecordChange(shared_->conn(), kChangeDomainAccount, account_id));
    }
    MV_RETURN_IF_ERROR(txn.Commit());
    return revoked;
  }

  Result<int64_t> LatestChange() override {
    ReaderPool::Lease r(*readers_);
    return store::LatestChange(r.conn());
  }

  Result<std::vector<ChangeRow>> ChangesSince(int64_t after, size_t limit) override {
    ReaderPool::Lease r(*readers_);
    return store::ChangesSince(r.conn(), after, limit);
  }

  Result<int64_t> PurgeExpired(int64_t now_ms, int64_t failure_retention_ms) override {
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock,
                        shared_->Lock(options_.synchronous_full));
    WriteTxn txn(shared_->conn());
    MV_RETURN_IF_ERROR(txn.Begin());
    int64_t deleted = 0;
    for (std::string_view sql : {kSqlPurgeTokens, kSqlPurgeSessionTokens, kSqlPurgeSessions}) {
      MV_STMT(s, shared_->conn(), sql);
      s.Int(1, now_ms);
      MV_RETURN_IF_ERROR(s.Exec("purge expired sessions"));
      deleted += sqlite3_changes(shared_->conn().db());
    }
    {
      MV_STMT(s, shared_->conn(), kSqlPurgeFailures);
      s.Int(1, now_ms).Int(2, now_ms - failure_retention_ms);
      MV_RETURN_IF_ERROR(s.Exec("purge login failures"));
      deleted += sqlite3_changes(shared_->conn().db());
    }
    MV_RETURN_IF_ERROR(txn.Commit());
    return deleted;
  }

  Result<int> SchemaVersion() override {
    ReaderPool::Lease r(*readers_);
    MV_STMT(s, r.conn(), kSqlMaxMigration);
    MV_ASSIGN_OR_RETURN(bool row, s.Step("schema version"));
    return row ? static_cast<int>(s.ColInt(0)) : 0;
  }

 private:
  // Borrows a read connection for the scope, waiting when all are in use.

  // REQUIRES: the shared writer's lock held. NotFound when the statement changed no row.
  Status ExecOneRow(Stmt& s, std::string_view what) {
    MV_RETURN_IF_ERROR(s.Exec(what));
    if (sqlite3_changes(shared_->conn().db()) == 0) {
      return Status::NotFound("account not found");
    }
    return Status::Ok();
  }

  // REQUIRES: the shared writer's lock held and a transaction open.
  Status InsertTokenLocked(std::string_view session_id, const SessionTokenRow& t) {
    MV_STMT(s, shared_->conn(), kSqlInsertToken);
    s.Blob(1, t.token_hash)
        .Text(2, session_id)
        .Text(3, KindName(t.kind))
        .Int(4, t.created_at_ms)
        .Int(5, t.expires_at_ms);
    Status st = s.Exec("insert session token");
    if (st.code() == StatusCode::kAlreadyExists) {
      return Status::AlreadyExists("token already exists");
    }
    return st;
  }

  // The database's one writer, shared with the other stores and the ledger
  // on the file (SharedWriter); its lock guards every write here.
  std::shared_ptr<SharedWriter> shared_;

  std::unique_ptr<ReaderPool> readers_;
  SqliteOptions options_;
};

}  // namespace

Result<std::unique_ptr<AccountStore>> OpenSqliteAccountStore(const std::filesystem::path& file,
                                                             const SqliteOptions& options) {
  MV_RETURN_IF_ERROR(CreatePrivateDatabaseFile(file));
  MV_ASSIGN_OR_RETURN(std::shared_ptr<SharedWriter> shared, SharedWriter::Open(file, options));
  {
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock, shared->Lock(options.synchronous_full));
    MV_RETURN_IF_ERROR(RunMigrations(shared->conn(), "account_migrations", kMigrations));
  }
  MV_ASSIGN_OR_RETURN(std::unique_ptr<ReaderPool> readers,
                      ReaderPool::Open(file, options, kReadConnections));
  return std::unique_ptr<AccountStore>(
      new SqliteAccountStore(std::move(shared), std::move(readers), options));
}

}  // namespace medvault::store
