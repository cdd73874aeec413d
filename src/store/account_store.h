// medvault account storage: institutions, departments, accounts, login
// failure counters, sessions and their tokens.
//
// Domain operations, not SQL, so that a PostgreSQL implementation can follow
// without a change in callers (src/auth). The store never sees a plaintext
// username, display name, password, TOTP secret or token: callers hand it a
// keyed blind index, sealed bytes, an Argon2id hash and SHA-256 token hashes.
// Institution and department names are not patient data and are plaintext.
//
// Thread-safe: every method may be called from any thread. Timestamps are
// always supplied by the caller (its clock), never read here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "store/store.h"

namespace medvault::store {

struct InstitutionRow {
  std::string institution_id;
  std::string name;
  int64_t created_at_ms = 0;
};

struct DepartmentRow {
  std::string department_id;
  std::string institution_id;
  std::string name;
  int64_t created_at_ms = 0;
};

struct AccountRow {
  std::string account_id;
  Bytes username_index;       // blind index of the normalised username (unique)
  Bytes sealed_profile;       // username and display name, sealed by the caller
  std::string password_hash;  // Argon2id encoded form
  // Role names; each non-empty and without ','.
  std::vector<std::string> roles;
  std::string institution_id;  // "" = none
  std::string department_id;   // "" = none; requires an institution
  std::string patient_id;      // "" = none
  // Personal accounts (patients, proxies) belong to no institution; this is
  // the institution that registered them, whose administrators may start
  // their recovery ("" = registered by the platform).
  std::string home_institution_id;
  Bytes sealed_totp_secret;  // empty = none
  bool totp_enabled = false;
  int64_t last_totp_step = 0;  // highest TOTP time step accepted so far
  bool disabled = false;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
};

// An open account recovery (at most one per account): an administrator
// asked for new credentials; a second one completes it (docs/api.md).
struct RecoveryRow {
  std::string account_id;
  std::string recovery_id;
  std::string requested_by;    // account id of the requesting administrator
  std::string institution_id;  // the institution it was requested for ("" = platform)
  Bytes sealed_reason;         // sealed by the caller
  int64_t requested_at_ms = 0;
  int64_t not_before_ms = 0;  // completion is refused before this
};

// Failed logins per username index (known usernames or not).
struct LoginFailureRow {
  Bytes username_index;
  int64_t failures = 0;
  int64_t last_failure_at_ms = 0;
  int64_t locked_until_ms = 0;  // no attempt is allowed before this (0 = none)
};

struct SessionRow {
  std::string session_id;
  std::string account_id;
  std::string audience;
  bool mfa_verified = false;
  int64_t created_at_ms = 0;
  int64_t expires_at_ms = 0;  // absolute end of the session family
  std::optional<int64_t> revoked_at_ms;
  std::string revoke_reason;  // "" while not revoked
};

enum class TokenKind { kAccess, kRefresh };

struct SessionTokenRow {
  Bytes token_hash;  // SHA-256 of the token, 32 bytes
  std::string session_id;
  TokenKind kind = TokenKind::kAccess;
  int64_t created_at_ms = 0;
  int64_t expires_at_ms = 0;
  std::optional<int64_t> rotated_at_ms;  // refresh tokens, once used
};

class AccountStore {
 public:
  virtual ~AccountStore() = default;

  // --- Institutions and departments ---------------------------------------
  // AlreadyExists when the id or the name is taken.
  virtual Status CreateInstitution(const InstitutionRow& row, AuditEntries audit = {}) = 0;
  // NotFound when absent.
  virtual Result<InstitutionRow> GetInstitution(std::string_view institution_id) = 0;
  // Sorted by name.
  virtual Result<std::vector<InstitutionRow>> ListInstitutions() = 0;
  // NotFound for an unknown institution; AlreadyExists when the id, or the
  // name within the institution, is taken.
  virtual Status CreateDepartment(const DepartmentRow& row, AuditEntries audit = {}) = 0;
  virtual Result<DepartmentRow> GetDepartment(std::string_view department_id) = 0;
  // "" for all institutions. Sorted by institution, then name.
  virtual Result<std::vector<DepartmentRow>> ListDepartments(std::string_view institution_id) = 0;

  // --- Accounts -----------------------------------------------------------
  // AlreadyExists when the account id or the username index is taken, or
  // when another account already is the record `patient_id` (one account
  // per patient: a second one would be a way into the record);
  // NotFound for an unknown institution or department, or a department of
  // another institution; InvalidArgument for a malformed row.
  virtual Status CreateAccount(const AccountRow& row, AuditEntries audit = {}) = 0;
  // NotFound when absent.
  virtual Result<AccountRow> GetAccount(std::string_view account_id) = 0;
  virtual Result<AccountRow> FindAccountByUsernameIndex(ByteView username_index) = 0;
  // "" for all institutions; else the institution's staff and the personal
  // accounts it registered (its home). In creation order.
  virtual Result<std::vector<AccountRow>> ListAccounts(std::string_view institution_id) = 0;
  // Each of these: NotFound for an unknown account.
  // Writes that carry `audit` entries append them (through the options'
  // audit hook) in the same transaction.
  virtual Status SetRoles(std::string_view account_id, const std::vector<std::string>& roles,
                          int64_t now_ms, AuditEntries audit = {}) = 0;
  // Disabling also withdraws the account's open recovery (same transaction).
  virtual Status SetDisabled(std::string_view account_id, bool disabled, int64_t now_ms,
                             AuditEntries audit = {}) = 0;
  virtual Status SetPasswordHash(std::string_view account_id, std::string_view password_hash,
                                 int64_t now_ms, AuditEntries audit = {}) = 0;
  // Replaces the TOTP secret (empty = none) and resets the replay step to 0.
  virtual Status SetTotp(std::string_view account_id, ByteView sealed_totp_secret, bool enabled,
                         int64_t now_ms, AuditEntries audit = {}) = 0;
  // --- Account recovery ---------------------------------------------------
  // AlreadyExists when the account has an open recovery; NotFound for an
  // unknown account.
  virtual Status CreateRecovery(const RecoveryRow& row, AuditEntries audit = {}) = 0;
  // nullopt when the account has no open recovery.
  virtual Result<std::optional<RecoveryRow>> GetRecovery(std::string_view account_id) = 0;
  // Withdraws the open recovery `recovery_id`; NotFound when it is not open.
  virtual Status CancelRecovery(std::string_view account_id, std::string_view recovery_id,
                                AuditEntries audit = {}) = 0;
  // In one transaction: closes the open recovery `recovery_id` (NotFound when
  // it is not open), stores the new password hash and TOTP secret (empty =
  // none), resets the replay step and revokes every live session.
  virtual Status CompleteRecovery(std::string_view account_id, std::string_view recovery_id,
                                  std::string_view password_hash, ByteView sealed_totp_secret,
                                  bool totp_enabled, int64_t now_ms, AuditEntries audit = {}) = 0;

  // Replay guard: atomically raises last_totp_step to `step` when it is
  // greater than the stored one. False when `step` was not greater (a code
  // of that step, or an earlier one, was already accepted).
  virtual Result<bool> AdvanceTotpStep(std::string_view account_id, int64_t step) = 0;

  // --- Login failures -----------------------------------------------------
  virtual Result<std::optional<LoginFailureRow>> GetLoginFailures(ByteView username_index) = 0;
  // Atomic read-modify-write: stores update(current) (current is nullopt
  // when there is no row) and returns it. The caller's policy decides the
  // counts; the store only makes concurrent failures add up.
  virtual Result<LoginFailureRow> UpdateLoginFailures(
      ByteView username_index,
      const std::function<LoginFailureRow(const std::optional<LoginFailureRow>&)>& update) = 0;
  // OK when absent.
  virtual Status ClearLoginFailures(ByteView username_index) = 0;

  // --- Sessions -----------------------------------------------------------
  // The session and its first tokens, in one transaction. NotFound for an
  // unknown account; AlreadyExists for a taken session id or token hash.
  virtual Status CreateSession(const SessionRow& session,
                               const std::vector<SessionTokenRow>& tokens) = 0;
  virtual Result<SessionRow> GetSession(std::string_view session_id) = 0;
  // Sessions of an account, newest first (revoked and expired included).
  virtual Result<std::vector<SessionRow>> ListSessions(std::string_view account_id) = 0;
  // NotFound when absent.
  virtual Result<SessionTokenRow> FindToken(ByteView token_hash) = 0;
  // In one transaction: marks the refresh token `old_hash` rotated at
  // `now_ms` and inserts `new_tokens`. False (and nothing written) when the
  // token was already rotated; NotFound when absent.
  virtual Result<bool> RotateRefreshToken(ByteView old_hash, int64_t now_ms,
                                          const std::vector<SessionTokenRow>& new_tokens) = 0;
  // True when the session was live and is now revoked; false when it was
  // already revoked. NotFound when absent.
  virtual Result<bool> RevokeSession(std::string_view session_id, int64_t now_ms,
                                     std::string_view reason) = 0;
  // Revokes every live session of the account; returns how many.
  virtual Result<int64_t> RevokeAccountSessions(std::string_view account_id, int64_t now_ms,
                                                std::string_view reason) = 0;

  // Housekeeping: deletes sessions (with their tokens) past their absolute
  // expiry, tokens past their expiry, and failure rows that are neither
  // locking nor younger than `failure_retention_ms`. Returns rows deleted.
  virtual Result<int64_t> PurgeExpired(int64_t now_ms, int64_t failure_retention_ms) = 0;

  // --- Changes (ChangeRow, store.h) --------------------------------------
  // Role, disabled, password and TOTP changes and session revocations record
  // a change of domain "account" (subject: the account id) in their
  // transaction, so that other processes drop what they cached of it.
  // The newest change seq of the database (any domain; 0 = none).
  virtual Result<int64_t> LatestChange() = 0;
  // Changes after `after`, oldest first, at most `limit` (any domain).
  virtual Result<std::vector<ChangeRow>> ChangesSince(int64_t after, size_t limit) = 0;

  // Schema version after migrations ("account_migrations").
  virtual Result<int> SchemaVersion() = 0;
};

// Opens its own connections (one writer, a few readers) on `file`, which may
// be the same database file as the metadata store's: its tables are distinct
// and its migrations are tracked in "account_migrations". Creates the file
// owner-only when missing; WAL, foreign keys and secure_delete on.
Result<std::unique_ptr<AccountStore>> OpenSqliteAccountStore(const std::filesystem::path& file,
                                                             const SqliteOptions& options = {});

}  // namespace medvault::store
