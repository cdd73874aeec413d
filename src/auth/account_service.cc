// AccountService: accounts, logins, sessions and tokens over an AccountStore.
//
// Secrets at rest. Usernames are found through a blind index (HMAC under the
// platform key "account-username-index") and kept, with the display name,
// sealed under "account-profile" (aad binds the account id). TOTP secrets are
// sealed under "account-totp". Tokens are stored as their SHA-256 only.
//
// Logins. An unknown username is verified against a dummy Argon2id hash made
// at start with the same parameters, so both cases cost one Argon2 run and
// return the same text. Failures are counted per username index whether or
// not the account exists; the counting policy is in RecordFailure().
//
// Tokens. Authenticate() checks the token format without touching the store,
// applies the change log (one read of its newest seq when nothing changed:
// revocations made by another process, e.g. a CLI command), then looks the
// token's SHA-256 up in the TokenCache; only a miss reads the store. See
// token_cache.h for how revocation stays immediate.
//
// Refresh and the old access token: a refresh rotates the refresh token and
// issues a new access token; the previous access token stays valid until its
// own (short) expiry. It is held by the same client that held the refresh
// token, so ending it early would not take a capability away from anyone,
// and would cost a write per refresh. When the family is revoked (logout,
// reuse of a rotated refresh token, admin action) every access token of the
// session stops at once, because the session row is revoked and the cache
// entries of the session are dropped.
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "auth/auth.h"
#include "auth/token_cache.h"
#include "common/ids.h"
#include "common/secret.h"
#include "store/account_store.h"

namespace medvault::auth {
namespace {

using internal::TokenCache;
using internal::TokenHash;
using store::AccountRow;
using store::LoginFailureRow;
using store::SessionRow;
using store::SessionTokenRow;
using store::TokenKind;

constexpr std::string_view kAccessPrefix = "mva1.";
constexpr std::string_view kRefreshPrefix = "mvr1.";
constexpr size_t kTokenBytes = 32;
constexpr size_t kTokenBodyChars = 43;  // base64url of 32 bytes, no padding
constexpr size_t kTokenChars = 5 + kTokenBodyChars;
constexpr size_t kTotpSecretBytes = 20;
constexpr size_t kMaxNameChars = 200;
constexpr size_t kMaxLoginUsernameBytes = 256;
constexpr int64_t kPurgeIntervalMs = 60 * 60 * 1000;
constexpr uint8_t kProfileVersion = 1;
constexpr size_t kMaxChangesPerSync = 4096;

constexpr std::string_view kUsernameIndexPurpose = "account-username-index";
constexpr std::string_view kProfilePurpose = "account-profile";
constexpr std::string_view kTotpPurpose = "account-totp";
constexpr std::string_view kUsernameIndexDomain = "username";
constexpr std::string_view kProfileAadPrefix = "medvault/v1/account-profile/";
constexpr std::string_view kTotpAadPrefix = "medvault/v1/account-totp/";
constexpr std::string_view kRecoveryAadPrefix = "medvault/v1/account-recovery/";

constexpr char kInvalidCredentials[] = "invalid username or password";
constexpr char kInvalidAccessToken[] = "invalid access token";
constexpr char kInvalidRefreshToken[] = "invalid, expired or revoked refresh token";

// ---------------------------------------------------------------------------
// Tokens.

struct IssuedToken {
  std::string text;
  TokenHash hash;
};

void HashToken(std::string_view token, TokenHash* out) {
  crypto_hash_sha256(out->bytes.data(), reinterpret_cast<const unsigned char*>(token.data()),
                     token.size());
}

// True when `token` is `prefix` + 43 canonical base64url characters of 32
// bytes; then `out` is its SHA-256. Allocates nothing.
bool ParseToken(std::string_view token, std::string_view prefix, TokenHash* out) {
  if (token.size() != kTokenChars || !token.starts_with(prefix)) {
    return false;
  }
  const std::string_view body = token.substr(prefix.size());
  uint8_t raw[kTokenBytes + 2];
  size_t len = 0;
  const char* end = nullptr;
  // libsodium refuses non-zero trailing bits, so each token has one spelling.
  const int rc = sodium_base642bin(raw, sizeof raw, body.data(), body.size(), nullptr, &len, &end,
                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(raw, sizeof raw);
  if (rc != 0 || end != body.data() + body.size() || len != kTokenBytes) {
    return false;
  }
  HashToken(token, out);
  return true;
}

IssuedToken NewToken(std::string_view prefix) {
  SecretBytes raw(kTokenBytes);
  crypto::RandomBytes(raw.mutable_view());
  IssuedToken t;
  t.text.reserve(kTokenChars);
  t.text.append(prefix);
  t.text += ToBase64Url(raw.view());
  HashToken(t.text, &t.hash);
  return t;
}

Bytes HashBytes(const TokenHash& h) { return Bytes(h.bytes.begin(), h.bytes.end()); }

// ---------------------------------------------------------------------------
// Names.

bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view TrimAscii(std::string_view s) {
  while (!s.empty() && IsAsciiSpace(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && IsAsciiSpace(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

std::string NormaliseUsername(std::string_view username) {
  std::string out(TrimAscii(username));
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

bool IsValidUsername(std::string_view u) {
  if (u.size() < 3 || u.size() > 64) {
    return false;
  }
  return std::all_of(u.begin(), u.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@' ||
           c == '-';
  });
}

// 1..200 code points of UTF-8 without control characters.
bool IsValidName(std::string_view name) {
  if (name.empty() || !IsValidUtf8(name)) {
    return false;
  }
  size_t chars = 0;
  for (char ch : name) {
    const auto c = static_cast<uint8_t>(ch);
    if (c < 0x20 || c == 0x7f) {
      return false;
    }
    if ((c & 0xC0) != 0x80) {
      ++chars;
    }
  }
  return chars <= kMaxNameChars;
}

bool IsPrintableRoleName(std::string_view r) {
  return !r.empty() && r.size() <= 64 && std::all_of(r.begin(), r.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

Status TooManyAttempts(int64_t wait_ms) {
  const int64_t seconds = std::max<int64_t>(1, (wait_ms + 999) / 1000);
  return Status::ResourceExhausted("too many failed attempts; try again in " +
                                   std::to_string(seconds) + " s");
}

// ---------------------------------------------------------------------------

class AccountServiceImpl final : public AccountService {
 public:
  AccountServiceImpl(store::AccountStore* store, AuthOptions options, SecretBytes index_key,
                     SecretBytes profile_key, SecretBytes totp_key, std::string dummy_hash)
      : store_(store),
        options_(std::move(options)),
        index_key_(std::move(index_key)),
        profile_key_(std::move(profile_key)),
        totp_key_(std::move(totp_key)),
        dummy_hash_(std::move(dummy_hash)),
        known_roles_(options_.known_roles.begin(), options_.known_roles.end()),
        mfa_roles_(options_.mfa_roles.begin(), options_.mfa_roles.end()),
        cache_(options_.token_cache_capacity),
        last_purge_ms_(options_.now_ms()) {}

  // The ledger entry of an account change (none when no encoder is set).
  Result<std::vector<Bytes>> Audit(std::string_view action, std::string_view subject,
                                   std::map<std::string, std::string> details,
                                   std::string_view patient_id = {}) const {
    std::vector<Bytes> out;
    if (!options_.audit) {
      return out;
    }
    AccountEvent event;
    event.action = action;
    event.subject_id = subject;
    event.patient_id = patient_id;
    event.details = std::move(details);
    MV_ASSIGN_OR_RETURN(Bytes entry, options_.audit(event));
    out.push_back(std::move(entry));
    return out;
  }

  static std::string JoinRoles(const std::vector<std::string>& roles) {
    std::string out;
    for (const std::string& r : roles) {
      out += (out.empty() ? "" : ",") + r;
    }
    return out;
  }

  // --- Institutions and departments ---------------------------------------

  Result<Institution> CreateInstitution(std::string_view name) override {
    const std::string_view trimmed = TrimAscii(name);
    if (!IsValidName(trimmed)) {
      return Status::InvalidArgument("institution name must be 1 to 200 characters of text");
    }
    store::InstitutionRow row{NewRandomId(), std::string(trimmed), Now()};
    MV_ASSIGN_OR_RETURN(auto audit, Audit("institution.create", row.institution_id, {}));
    MV_RETURN_IF_ERROR(store_->CreateInstitution(row, audit));
    return Institution{row.institution_id, row.name, row.created_at_ms};
  }

  Result<std::vector<Institution>> ListInstitutions() override {
    MV_ASSIGN_OR_RETURN(std::vector<store::InstitutionRow> rows, store_->ListInstitutions());
    std::vector<Institution> out;
    out.reserve(rows.size());
    for (auto& r : rows) {
      out.push_back(Institution{std::move(r.institution_id), std::move(r.name), r.created_at_ms});
    }
    return out;
  }

  Result<Department> CreateDepartment(std::string_view institution_id,
                                      std::string_view name) override {
    const std::string_view trimmed = TrimAscii(name);
    if (!IsValidName(trimmed)) {
      return Status::InvalidArgument("department name must be 1 to 200 characters of text");
    }
    if (institution_id.empty()) {
      return Status::InvalidArgument("a department needs an institution");
    }
    store::DepartmentRow row{NewRandomId(), std::string(institution_id), std::string(trimmed),
                             Now()};
    MV_ASSIGN_OR_RETURN(auto audit, Audit("department.create", row.department_id,
                                          {{"institution_id", row.institution_id}}));
    MV_RETURN_IF_ERROR(store_->CreateDepartment(row, audit));
    return Department{row.department_id, row.institution_id, row.name, row.created_at_ms};
  }

  Result<std::vector<Department>> ListDepartments(std::string_view institution_id) override {
    if (!institution_id.empty()) {
      MV_RETURN_IF_ERROR(store_->GetInstitution(institution_id).status());
    }
    MV_ASSIGN_OR_RETURN(std::vector<store::DepartmentRow> rows,
                        store_->ListDepartments(institution_id));
    std::vector<Department> out;
    out.reserve(rows.size());
    for (auto& r : rows) {
      out.push_back(Department{std::move(r.department_id), std::move(r.institution_id),
                               std::move(r.name), r.created_at_ms});
    }
    return out;
  }

  // --- Accounts -----------------------------------------------------------

  Result<CreatedAccount> CreateAccount(const NewAccount& req) override {
    const std::string username = NormaliseUsername(req.username);
    if (!IsValidUsername(username)) {
      return Status::InvalidArgument(
          "username must be 3 to 64 characters of a-z, 0-9, '.', '_', '@' and '-'");
    }
    if (!IsValidName(req.display_name)) {
      return Status::InvalidArgument("display name must be 1 to 200 characters of text");
    }
    MV_ASSIGN_OR_RETURN(std::vector<std::string> roles, ValidateRoles(req.roles));
    MV_RETURN_IF_ERROR(CheckAffiliation(req.institution_id, req.department_id));
    if (!req.patient_id.empty() && !IsValidRandomId(req.patient_id)) {
      return Status::InvalidArgument("patient id must be 32 lower-case hex characters");
    }
    MV_RETURN_IF_ERROR(CheckPasswordStrength(req.password, username, options_.password_policy));

    const Bytes index = UsernameIndex(username);
    {
      auto existing = store_->FindAccountByUsernameIndex(index);
      if (existing.ok()) {
        return Status::AlreadyExists("username is already taken");
      }
      if (existing.status().code() != StatusCode::kNotFound) {
        return existing.status();
      }
    }
    MV_ASSIGN_OR_RETURN(std::string password_hash, HashPassword(req.password, options_.argon2));

    const int64_t now = Now();
    AccountRow row;
    row.account_id = NewRandomId();
    row.username_index = index;
    MV_ASSIGN_OR_RETURN(row.sealed_profile,
                        SealProfile(row.account_id, username, req.display_name));
    row.password_hash = std::move(password_hash);
    row.roles = roles;
    row.institution_id = req.institution_id;
    row.department_id = req.department_id;
    row.patient_id = req.patient_id;
    row.home_institution_id = req.home_institution_id;
    row.created_at_ms = now;
    row.updated_at_ms = now;

    CreatedAccount created;
    if (req.enroll_totp || RequiresMfa(roles)) {
      SecretBytes secret(kTotpSecretBytes);
      crypto::RandomBytes(secret.mutable_view());
      MV_ASSIGN_OR_RETURN(row.sealed_totp_secret, SealTotp(row.account_id, secret));
      row.totp_enabled = true;
      created.totp_secret_base32 = Base32Encode(secret.view());
      created.otpauth_uri =
          OtpauthUri(options_.totp_issuer, username, secret.view(), options_.totp);
    }
    MV_ASSIGN_OR_RETURN(auto audit,
                        Audit("account.create", row.account_id,
                              {{"roles", JoinRoles(roles)}, {"institution_id", row.institution_id}},
                              row.patient_id));
    Status st = store_->CreateAccount(row, audit);
    if (st.code() == StatusCode::kNotFound) {
      return Status::InvalidArgument(st.message());  // institution or department vanished
    }
    MV_RETURN_IF_ERROR(st);

    created.account.account_id = row.account_id;
    created.account.username = username;
    created.account.display_name = req.display_name;
    created.account.roles = std::move(roles);
    created.account.institution_id = row.institution_id;
    created.account.department_id = row.department_id;
    created.account.patient_id = row.patient_id;
    created.account.home_institution_id = row.home_institution_id;
    created.account.totp_enabled = row.totp_enabled;
    created.account.disabled = false;
    created.account.created_at_ms = now;
    return created;
  }

  Result<Account> GetAccount(std::string_view account_id) override {
    MV_ASSIGN_OR_RETURN(AccountRow row, store_->GetAccount(account_id));
    return ToAccount(row);
  }

  Result<Account> FindAccountByUsername(std::string_view username) override {
    const std::string normalised = NormaliseUsername(username);
    if (!IsValidUsername(normalised)) {
      return Status::NotFound("account not found");
    }
    MV_ASSIGN_OR_RETURN(AccountRow row,
                        store_->FindAccountByUsernameIndex(UsernameIndex(normalised)));
    return ToAccount(row);
  }

  Result<std::vector<Account>> ListAccounts(std::string_view institution_id) override {
    MV_ASSIGN_OR_RETURN(std::vector<AccountRow> rows, store_->ListAccounts(institution_id));
    std::vector<Account> out;
    out.reserve(rows.size());
    for (const AccountRow& row : rows) {
      MV_ASSIGN_OR_RETURN(Account account, ToAccount(row));
      out.push_back(std::move(account));
    }
    return out;
  }

  Status SetRoles(std::string_view account_id, const std::vector<std::string>& roles) override {
    MV_ASSIGN_OR_RETURN(std::vector<std::string> valid, ValidateRoles(roles));
    MV_ASSIGN_OR_RETURN(AccountRow row, store_->GetAccount(account_id));
    if (RequiresMfa(valid) && !row.totp_enabled) {
      return Status::FailedPrecondition(
          "these roles require a second factor: enrol TOTP first (reset the one-time code)");
    }
    MV_ASSIGN_OR_RETURN(auto audit, Audit("account.roles", row.account_id,
                                          {{"roles", JoinRoles(valid)}}, row.patient_id));
    MV_RETURN_IF_ERROR(store_->SetRoles(account_id, valid, Now(), audit));
    cache_.InvalidateAccount(row.account_id);
    return Status::Ok();
  }

  Status SetDisabled(std::string_view account_id, bool disabled) override {
    const int64_t now = Now();
    MV_ASSIGN_OR_RETURN(AccountRow row, store_->GetAccount(account_id));
    std::map<std::string, std::string> details;
    if (disabled) {
      MV_ASSIGN_OR_RETURN(auto open, store_->GetRecovery(account_id));
      if (open.has_value()) {
        details["recovery_withdrawn"] = open->recovery_id;  // the store deletes it
      }
    }
    MV_ASSIGN_OR_RETURN(auto audit, Audit(disabled ? "account.disable" : "account.enable",
                                          account_id, std::move(details), row.patient_id));
    MV_RETURN_IF_ERROR(store_->SetDisabled(account_id, disabled, now, audit));
    if (disabled) {
      MV_RETURN_IF_ERROR(
          store_->RevokeAccountSessions(account_id, now, "account disabled").status());
    }
    cache_.InvalidateAccount(std::string(account_id));
    return Status::Ok();
  }

  Status ResetPassword(std::string_view account_id, std::string_view new_password) override {
    MV_ASSIGN_OR_RETURN(AccountRow row, store_->GetAccount(account_id));
    MV_ASSIGN_OR_RETURN(Account account, ToAccount(row));
    MV_RETURN_IF_ERROR(
        CheckPasswordStrength(new_password, account.username, options_.password_policy));
    MV_ASSIGN_OR_RETURN(std::string hash, HashPassword(new_password, options_.argon2));
    const int64_t now = Now();
    MV_ASSIGN_OR_RETURN(auto audit,
                        Audit("account.reset-password", row.account_id, {}, row.patient_id));
    MV_RETURN_IF_ERROR(store_->SetPasswordHash(account_id, hash, now, audit));
    MV_RETURN_IF_ERROR(RevokeAll(row.account_id, now, "password reset"));
    return store_->ClearLoginFailures(row.username_index);
  }

  // Self-service change. Counts a wrong old password as a failed login (and
  // honours the lockout), so a stolen session cannot be used to guess the
  // password. Does not end sessions: the caller holds one and may call
  // RevokeAllSessions() if the person wants the others ended.
  Status ChangePassword(std::string_view account_id, std::string_view old_password,
                        std::string_view new_password) override {
    MV_ASSIGN_OR_RETURN(AccountRow row, store_->GetAccount(account_id));
    const int64_t now = Now();
    MV_ASSIGN_OR_RETURN(std::optional<LoginFailureRow> failures,
                        store_->GetLoginFailures(row.username_index));
    if (failures.has_value() && now < failures->locked_until_ms) {
      return TooManyAttempts(failures->locked_until_ms - now);
    }
    if (old_password.size() > options_.password_policy.max_length ||
        !VerifyPassword(row.password_hash, old_password)) {
      MV_RETURN_IF_ERROR(RecordFailure(row.username_index, now));
      return Status::Unauthenticated("current password is incorrect");
    }
    MV_ASSIGN_OR_RETURN(Account account, ToAccount(row));
    MV_RETURN_IF_ERROR(
        CheckPasswordStrength(new_password, account.username, options_.password_policy));
    if (new_password == old_password) {
      return Status::InvalidArgument("new password must differ from the current one");
    }
    MV_ASSIGN_OR_RETURN(std::string hash, HashPassword(new_password, options_.argon2));
    MV_ASSIGN_OR_RETURN(auto audit, Audit("account.change-password", row.account_id, {}));
    MV_RETURN_IF_ERROR(store_->SetPasswordHash(account_id, hash, now, audit));
    if (failures.has_value()) {
      MV_RETURN_IF_ERROR(store_->ClearLoginFailures(row.username_index));
    }
    return Status::Ok();
  }

  Result<CreatedAccount> ResetTotp(std::string_view account_id) override {
    MV_ASSIGN_OR_RETURN(AccountRow row, store_->GetAccount(account_id));
    MV_ASSIGN_OR_RETURN(Account account, ToAccount(row));
    SecretBytes secret(kTotpSecretBytes);
    crypto::RandomBytes(secret.mutable_view());
    MV_ASSIGN_OR_RETURN(Bytes sealed, SealTotp(row.account_id, secret));
    const int64_t now = Now();
    MV_ASSIGN_OR_RETURN(auto audit,
                        Audit("account.reset-totp", row.account_id, {}, row.patient_id));
    MV_RETURN_IF_ERROR(store_->SetTotp(account_id, sealed, /*enabled=*/true, now, audit));
    MV_RETURN_IF_ERROR(RevokeAll(row.account_id, now, "second factor reset"));
    CreatedAccount out;
    out.totp_secret_base32 = Base32Encode(secret.view());
    out.otpauth_uri =
        OtpauthUri(options_.totp_issuer, account.username, secret.view(), options_.totp);
    account.totp_enabled = true;
    out.account = std::move(account);
    return out;
  }

  // --- Account recovery ---------------------------------------------------

  Result<Recovery> RequestRecovery(std::string_view account_id, std::string_view requested_by,
                                   std::string_view institution_id,
                                   std::string_view reason) override {
    const std::string_view trimmed = TrimAscii(reason);
    if (!IsValidRecoveryReason(trimmed)) {
      return Status::InvalidArgument(
          "reason must be 10 to 500 characters of text saying why the person cannot sign in");
    }
    if (requested_by.empty()) {
      return Status::InvalidArgument("a recovery needs the requesting account");
    }
    MV_ASSIGN_OR_RETURN(AccountRow row, store_->GetAccount(account_id));
    if (row.disabled) {
      return Status::FailedPrecondition(
          "the account is disabled: enable it first, so the person can see the recovery");
    }
    if (requested_by == row.account_id) {
      return Status::PermissionDenied(
          "an account cannot recover itself: change the password after signing in");
    }
    const int64_t now = Now();
    store::RecoveryRow r;
    r.account_id = row.account_id;
    r.recovery_id = NewRandomId();
    r.requested_by = std::string(requested_by);
    r.institution_id = std::string(institution_id);
    MV_ASSIGN_OR_RETURN(r.sealed_reason, SealReason(r.account_id, r.recovery_id, trimmed));
    r.requested_at_ms = now;
    r.not_before_ms = now + (IsPersonal(row.roles) ? options_.recovery_wait_ms : 0);
    MV_ASSIGN_OR_RETURN(auto audit, Audit("account.recovery-request", row.account_id,
                                          {{"recovery_id", r.recovery_id},
                                           {"not_before_ms", std::to_string(r.not_before_ms)}},
                                          row.patient_id));
    MV_RETURN_IF_ERROR(store_->CreateRecovery(r, audit));
    return Recovery{r.recovery_id,        r.account_id,      r.requested_by, r.institution_id,
                    std::string(trimmed), r.requested_at_ms, r.not_before_ms};
  }

  Result<std::optional<Recovery>> GetRecovery(std::string_view account_id) override {
    MV_ASSIGN_OR_RETURN(std::optional<store::RecoveryRow> row, store_->GetRecovery(account_id));
    if (!row.has_value()) {
      return std::optional<Recovery>();
    }
    MV_ASSIGN_OR_RETURN(Bytes reason,
                        crypto::AeadOpen(profile_key_, row->sealed_reason,
                                         RecoveryAad(row->account_id, row->recovery_id)));
    return std::optional<Recovery>(Recovery{row->recovery_id, row->account_id, row->requested_by,
                                            row->institution_id, std::string(AsString(reason)),
                                            row->requested_at_ms, row->not_before_ms});
  }

  Status CancelRecovery(std::string_view account_id, std::string_view cancelled_by) override {
    MV_ASSIGN_OR_RETURN(AccountRow row, store_->GetAccount(account_id));
    MV_ASSIGN_OR_RETURN(std::optional<store::RecoveryRow> open, store_->GetRecovery(account_id));
    if (!open.has_value()) {
      return Status::NotFound("the account has no open recovery");
    }
    MV_ASSIGN_OR_RETURN(auto audit,
                        Audit("account.recovery-cancel", row.account_id,
                              {{"recovery_id", open->recovery_id},
                               {"by_account_itself", cancelled_by == row.account_id ? "1" : "0"}},
                              row.patient_id));
    return store_->CancelRecovery(account_id, open->recovery_id, audit);
  }

  Result<RecoveredCredentials> ApproveRecovery(std::string_view account_id,
                                               std::string_view approved_by) override {
    MV_ASSIGN_OR_RETURN(AccountRow row, store_->GetAccount(account_id));
    MV_ASSIGN_OR_RETURN(Account account, ToAccount(row));
    MV_ASSIGN_OR_RETURN(std::optional<store::RecoveryRow> open, store_->GetRecovery(account_id));
    if (!open.has_value()) {
      return Status::NotFound("the account has no open recovery");
    }
    if (approved_by.empty() || approved_by == open->requested_by || approved_by == row.account_id) {
      return Status::PermissionDenied(
          "a recovery is completed by a second administrator, not the one who opened it");
    }
    // The second person must have existed before the request: an account
    // made afterwards (by the requester or anyone) is not a second person.
    auto approver = store_->GetAccount(approved_by);
    if (!approver.ok() || approver->created_at_ms >= open->requested_at_ms) {
      return Status::PermissionDenied(
          "a recovery is completed by a second administrator whose account predates it");
    }
    const int64_t now = Now();
    if (now < open->not_before_ms) {
      const int64_t minutes = (open->not_before_ms - now + 59999) / 60000;
      return Status::FailedPrecondition(
          "the recovery can be completed in " + std::to_string(minutes) +
          " min (the person is notified and may cancel it meanwhile)");
    }
    RecoveredCredentials out;
    out.account_id = row.account_id;
    out.temporary_password = RandomPassword(account.username);
    MV_ASSIGN_OR_RETURN(std::string hash, HashPassword(out.temporary_password, options_.argon2));
    Bytes sealed_totp;
    const bool totp = row.totp_enabled || RequiresMfa(row.roles);
    if (totp) {
      SecretBytes secret(kTotpSecretBytes);
      crypto::RandomBytes(secret.mutable_view());
      MV_ASSIGN_OR_RETURN(sealed_totp, SealTotp(row.account_id, secret));
      out.totp_secret_base32 = Base32Encode(secret.view());
      out.otpauth_uri =
          OtpauthUri(options_.totp_issuer, account.username, secret.view(), options_.totp);
    }
    MV_ASSIGN_OR_RETURN(auto audit, Audit("account.recovery-complete", row.account_id,
                                          {{"recovery_id", open->recovery_id},
                                           {"requested_by", open->requested_by},
                                           {"second_factor", totp ? "replaced" : "none"}},
                                          row.patient_id));
    Status st = store_->CompleteRecovery(row.account_id, open->recovery_id, hash, sealed_totp, totp,
                                         now, audit);
    cache_.InvalidateAccount(row.account_id);
    MV_RETURN_IF_ERROR(st);
    MV_RETURN_IF_ERROR(store_->ClearLoginFailures(row.username_index));
    return out;
  }

  // --- Sessions -----------------------------------------------------------

  Result<TokenPair> Login(const LoginRequest& req) override {
    if (std::find(options_.audiences.begin(), options_.audiences.end(), req.audience) ==
        options_.audiences.end()) {
      return Status::InvalidArgument("unknown audience");
    }
    const uint64_t epoch = cache_.Epoch();
    const int64_t now = Now();
    MaybePurge(now);

    // Everything up to the password check is identical for known and
    // unknown usernames: same index computation, same throttle, same Argon2.
    const std::string username = NormaliseUsername(req.username);
    const bool well_formed = IsValidUsername(username);
    const bool counted = username.size() <= kMaxLoginUsernameBytes;
    const Bytes index = counted ? UsernameIndex(username) : Bytes();
    std::optional<LoginFailureRow> failures;
    if (counted) {
      MV_ASSIGN_OR_RETURN(failures, store_->GetLoginFailures(index));
      if (failures.has_value() && now < failures->locked_until_ms) {
        return TooManyAttempts(failures->locked_until_ms - now);
      }
    }
    std::optional<AccountRow> row;
    if (well_formed) {
      auto found = store_->FindAccountByUsernameIndex(index);
      if (found.ok()) {
        row = std::move(found).value();
      } else if (found.status().code() != StatusCode::kNotFound) {
        return found.status();
      }
    }
    const bool password_fits = req.password.size() <= options_.password_policy.max_length;
    const std::string& hash = row.has_value() ? row->password_hash : dummy_hash_;
    const bool verified = VerifyPassword(hash, password_fits ? req.password : std::string_view()) &&
                          row.has_value() && password_fits;
    if (!verified) {
      if (counted) {
        MV_RETURN_IF_ERROR(RecordFailure(index, now));
      }
      return Status::Unauthenticated(kInvalidCredentials);
    }

    // The password is right: from here on the answers may differ.
    if (row->disabled) {
      return Status::PermissionDenied("account is disabled");
    }
    bool mfa_verified = false;
    if (row->totp_enabled) {
      if (req.totp_code.empty()) {
        return Status::Unauthenticated("a one-time code is required");
      }
      MV_ASSIGN_OR_RETURN(bool code_ok, CheckTotp(*row, req.totp_code, now));
      if (!code_ok) {
        MV_RETURN_IF_ERROR(RecordFailure(index, now));
        return Status::Unauthenticated("invalid one-time code");
      }
      mfa_verified = true;
    } else if (RequiresMfa(row->roles)) {
      return Status::PermissionDenied(
          "a second factor is required but none is enrolled; ask an administrator to reset it");
    }

    if (failures.has_value()) {
      MV_RETURN_IF_ERROR(store_->ClearLoginFailures(index));
    }
    if (PasswordNeedsRehash(row->password_hash, options_.argon2)) {
      // Best effort: the login stands even if the upgrade fails.
      auto rehashed = HashPassword(req.password, options_.argon2);
      if (rehashed.ok()) {
        (void)store_->SetPasswordHash(row->account_id, *rehashed, now);
      }
    }
    MV_ASSIGN_OR_RETURN(Account account, ToAccount(*row));
    return StartSession(account, req.audience, mfa_verified, now, epoch);
  }

  Result<TokenPair> Refresh(std::string_view refresh_token) override {
    TokenHash hash;
    if (!ParseToken(refresh_token, kRefreshPrefix, &hash)) {
      return Status::Unauthenticated(kInvalidRefreshToken);
    }
    const uint64_t epoch = cache_.Epoch();
    const int64_t now = Now();
    auto token = store_->FindToken(hash.view());
    if (!token.ok()) {
      return NotFoundAs(token.status(), kInvalidRefreshToken);
    }
    if (token->kind != TokenKind::kRefresh) {
      return Status::Unauthenticated(kInvalidRefreshToken);
    }
    auto session = store_->GetSession(token->session_id);
    if (!session.ok()) {
      return NotFoundAs(session.status(), kInvalidRefreshToken);
    }
    if (session->revoked_at_ms.has_value() || now >= session->expires_at_ms) {
      return Status::Unauthenticated(kInvalidRefreshToken);
    }
    if (token->rotated_at_ms.has_value()) {
      return ReuseDetected(*session, now);
    }
    if (now >= token->expires_at_ms) {
      return Status::Unauthenticated(kInvalidRefreshToken);
    }
    MV_ASSIGN_OR_RETURN(AccountRow row, store_->GetAccount(session->account_id));
    if (row.disabled) {
      return Status::PermissionDenied("account is disabled");
    }
    MV_ASSIGN_OR_RETURN(Account account, ToAccount(row));

    const IssuedToken access = NewToken(kAccessPrefix);
    const IssuedToken refresh = NewToken(kRefreshPrefix);
    const int64_t access_expiry = std::min(now + options_.access_ttl_ms, session->expires_at_ms);
    const int64_t refresh_expiry = std::min(now + options_.refresh_ttl_ms, session->expires_at_ms);
    std::vector<SessionTokenRow> rows = {
        {HashBytes(access.hash), session->session_id, TokenKind::kAccess, now, access_expiry, {}},
        {HashBytes(refresh.hash),
         session->session_id,
         TokenKind::kRefresh,
         now,
         refresh_expiry,
         {}},
    };
    MV_ASSIGN_OR_RETURN(bool rotated, store_->RotateRefreshToken(hash.view(), now, rows));
    if (!rotated) {
      // Another request rotated it first: the token was presented twice.
      return ReuseDetected(*session, now);
    }
    CacheAccess(access.hash, std::move(account), *session, access_expiry, epoch, now);
    TokenPair pair;
    pair.access_token = access.text;
    pair.access_expires_at_ms = access_expiry;
    pair.refresh_token = refresh.text;
    pair.refresh_expires_at_ms = refresh_expiry;
    pair.session_id = session->session_id;
    return pair;
  }

  Result<AuthenticatedSession> Authenticate(std::string_view access_token,
                                            std::string_view audience) override {
    TokenHash hash;
    if (!ParseToken(access_token, kAccessPrefix, &hash)) {
      return Status::Unauthenticated(kInvalidAccessToken);
    }
    // Another process (a CLI command) may have disabled the account or
    // revoked the session since the entry was cached: apply the change log
    // first, so that such a token fails on the very next request. One read
    // of the newest change seq when nothing changed.
    MV_RETURN_IF_ERROR(SyncChanges());
    const int64_t now = Now();
    std::optional<Result<AuthenticatedSession>> hit;
    cache_.WithEntry(hash, [&](const AuthenticatedSession& s, int64_t session_expiry) {
      hit.emplace(Check(s, session_expiry, now, audience));
    });
    if (hit.has_value()) {
      return std::move(*hit);
    }
    return AuthenticateFromStore(hash, audience, now);
  }

  Status Logout(std::string_view token) override {
    TokenHash hash;
    if (!ParseToken(token, kAccessPrefix, &hash) && !ParseToken(token, kRefreshPrefix, &hash)) {
      return Status::Unauthenticated("invalid token");
    }
    auto row = store_->FindToken(hash.view());
    if (!row.ok()) {
      return NotFoundAs(row.status(), "invalid token");
    }
    auto session = store_->GetSession(row->session_id);
    if (!session.ok()) {
      return NotFoundAs(session.status(), "invalid token");
    }
    // Expired tokens may still end their family; an ended one stays ended.
    MV_RETURN_IF_ERROR(store_->RevokeSession(session->session_id, Now(), "logout").status());
    cache_.InvalidateSession(session->account_id, session->session_id);
    return Status::Ok();
  }

  Status RevokeAllSessions(std::string_view account_id) override {
    MV_ASSIGN_OR_RETURN(AccountRow row, store_->GetAccount(account_id));
    return RevokeAll(row.account_id, Now(), "revoked by administrator");
  }

  Status SyncChanges() override {
    MV_ASSIGN_OR_RETURN(const int64_t latest, store_->LatestChange());
    if (latest == seen_change_.load(std::memory_order_acquire)) {
      return Status::Ok();
    }
    std::lock_guard<std::mutex> lock(sync_mu_);
    const int64_t seen = seen_change_.load(std::memory_order_relaxed);
    if (latest == seen) {
      return Status::Ok();  // another thread applied it meanwhile
    }
    int64_t applied = latest;
    if (seen < 0) {
      cache_.InvalidateAll();  // first sync: nothing cached is older than it
    } else {
      MV_ASSIGN_OR_RETURN(std::vector<store::ChangeRow> rows,
                          store_->ChangesSince(seen, kMaxChangesPerSync));
      if (store::ChangesComplete(rows, seen, latest, kMaxChangesPerSync)) {
        for (const store::ChangeRow& c : rows) {
          if (c.domain == store::kChangeDomainAccount) {
            cache_.InvalidateAccount(c.subject);
          }
        }
        if (!rows.empty()) {
          applied = std::max(applied, rows.back().seq);
        }
      } else {
        cache_.InvalidateAll();  // too far behind (or a restored database)
      }
    }
    // Published after the invalidation: a thread that sees the new value
    // finds the entries already gone.
    seen_change_.store(applied, std::memory_order_release);
    return Status::Ok();
  }

 private:
  int64_t Now() const { return options_.now_ms(); }

  Bytes UsernameIndex(std::string_view normalised) const {
    return crypto::BlindIndex(index_key_, kUsernameIndexDomain, normalised);
  }

  bool IsPersonal(const std::vector<std::string>& roles) const {
    return !roles.empty() && std::all_of(roles.begin(), roles.end(), [&](const std::string& r) {
      return std::find(options_.personal_roles.begin(), options_.personal_roles.end(), r) !=
             options_.personal_roles.end();
    });
  }

  // 10..500 bytes of UTF-8 text without control characters.
  static bool IsValidRecoveryReason(std::string_view reason) {
    if (reason.size() < 10 || reason.size() > 500 || !IsValidUtf8(reason)) {
      return false;
    }
    return std::none_of(reason.begin(), reason.end(), [](char ch) {
      const auto c = static_cast<uint8_t>(ch);
      return c < 0x20 || c == 0x7f;
    });
  }

  static Bytes RecoveryAad(std::string_view account_id, std::string_view recovery_id) {
    std::string aad(kRecoveryAadPrefix);
    aad.append(account_id).append("/").append(recovery_id);
    return Bytes(aad.begin(), aad.end());
  }

  Result<Bytes> SealReason(std::string_view account_id, std::string_view recovery_id,
                           std::string_view reason) const {
    return crypto::AeadSeal(profile_key_, AsBytes(reason), RecoveryAad(account_id, recovery_id));
  }

  // 20 random characters with every class present (passes the strength
  // policy; retried in the negligible case it contains the username).
  std::string RandomPassword(std::string_view username) const {
    static constexpr std::string_view kClasses[] = {
        "abcdefghijkmnopqrstuvwxyz", "ABCDEFGHJKLMNPQRSTUVWXYZ", "23456789", "-_.!+=@#%"};
    static constexpr std::string_view kAll =
        "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-_.!+=@#%";
    while (true) {
      std::string pw;
      for (std::string_view cls : kClasses) {
        pw.push_back(cls[randombytes_uniform(static_cast<uint32_t>(cls.size()))]);
      }
      while (pw.size() < 20) {
        pw.push_back(kAll[randombytes_uniform(static_cast<uint32_t>(kAll.size()))]);
      }
      // Fisher-Yates so the class characters are not always first.
      for (size_t i = pw.size() - 1; i > 0; --i) {
        std::swap(pw[i], pw[randombytes_uniform(static_cast<uint32_t>(i + 1))]);
      }
      if (CheckPasswordStrength(pw, username, options_.password_policy).ok()) {
        return pw;
      }
    }
  }

  bool RequiresMfa(const std::vector<std::string>& roles) const {
    return std::any_of(roles.begin(), roles.end(),
                       [&](const std::string& r) { return mfa_roles_.count(r) != 0; });
  }

  // Non-empty, known; duplicates dropped (first occurrence kept).
  Result<std::vector<std::string>> ValidateRoles(const std::vector<std::string>& roles) const {
    if (roles.empty()) {
      return Status::InvalidArgument("an account needs at least one role");
    }
    std::vector<std::string> out;
    for (const std::string& role : roles) {
      if (known_roles_.count(role) == 0) {
        return Status::InvalidArgument(IsPrintableRoleName(role) ? "unknown role: " + role
                                                                 : std::string("unknown role"));
      }
      if (std::find(out.begin(), out.end(), role) == out.end()) {
        out.push_back(role);
      }
    }
    return out;
  }

  Status CheckAffiliation(const std::string& institution_id, const std::string& department_id) {
    if (!department_id.empty() && institution_id.empty()) {
      return Status::InvalidArgument("a department requires its institution");
    }
    if (!institution_id.empty()) {
      auto inst = store_->GetInstitution(institution_id);
      if (!inst.ok()) {
        return inst.status().code() == StatusCode::kNotFound
                   ? Status::InvalidArgument("unknown institution")
                   : inst.status();
      }
    }
    if (!department_id.empty()) {
      auto dept = store_->GetDepartment(department_id);
      if (!dept.ok()) {
        return dept.status().code() == StatusCode::kNotFound
                   ? Status::InvalidArgument("unknown department")
                   : dept.status();
      }
      if (dept->institution_id != institution_id) {
        return Status::InvalidArgument("department belongs to another institution");
      }
    }
    return Status::Ok();
  }

  // --- Sealed fields ------------------------------------------------------

  static Bytes Aad(std::string_view prefix, std::string_view account_id) {
    Bytes aad(prefix.begin(), prefix.end());
    aad.insert(aad.end(), account_id.begin(), account_id.end());
    return aad;
  }

  Result<Bytes> SealProfile(std::string_view account_id, std::string_view username,
                            std::string_view display_name) const {
    Bytes plain;
    PutU8(plain, kProfileVersion);
    PutLengthPrefixed(plain, AsBytes(username));
    PutLengthPrefixed(plain, AsBytes(display_name));
    auto sealed = crypto::AeadSeal(profile_key_, plain, Aad(kProfileAadPrefix, account_id));
    sodium_memzero(plain.data(), plain.size());
    return sealed;
  }

  Result<Bytes> SealTotp(std::string_view account_id, const SecretBytes& secret) const {
    return crypto::AeadSeal(totp_key_, secret.view(), Aad(kTotpAadPrefix, account_id));
  }

  Result<Account> ToAccount(const AccountRow& row) const {
    MV_ASSIGN_OR_RETURN(Bytes plain, crypto::AeadOpen(profile_key_, row.sealed_profile,
                                                      Aad(kProfileAadPrefix, row.account_id)));
    ByteReader reader(plain);
    uint8_t version = 0;
    ByteView username;
    ByteView display_name;
    if (!reader.ReadU8(&version) || version != kProfileVersion ||
        !reader.ReadLengthPrefixed(64, &username) ||
        !reader.ReadLengthPrefixed(4 * kMaxNameChars, &display_name) || !reader.AtEnd()) {
      return Status::DataLoss("account profile is malformed");
    }
    Account a;
    a.account_id = row.account_id;
    a.username = std::string(AsString(username));
    a.display_name = std::string(AsString(display_name));
    a.roles = row.roles;
    a.institution_id = row.institution_id;
    a.department_id = row.department_id;
    a.patient_id = row.patient_id;
    a.home_institution_id = row.home_institution_id;
    a.totp_enabled = row.totp_enabled;
    a.disabled = row.disabled;
    a.created_at_ms = row.created_at_ms;
    sodium_memzero(plain.data(), plain.size());
    return a;
  }

  // True when `code` matches a step later than any accepted before (and
  // records that step, atomically, so a code is accepted at most once).
  Result<bool> CheckTotp(const AccountRow& row, std::string_view code, int64_t now_ms) {
    MV_ASSIGN_OR_RETURN(SecretBytes secret,
                        crypto::AeadOpenSecret(totp_key_, row.sealed_totp_secret,
                                               Aad(kTotpAadPrefix, row.account_id)));
    const int64_t now_s = now_ms >= 0 ? now_ms / 1000 : -((-now_ms + 999) / 1000);
    const std::optional<int64_t> step = TotpMatch(secret.view(), code, now_s, options_.totp);
    if (!step.has_value() || *step <= row.last_totp_step) {
      return false;
    }
    return store_->AdvanceTotpStep(row.account_id, *step);
  }

  // --- Failure counting ---------------------------------------------------
  //
  // Per username index, in the store (atomic read-modify-write). With f the
  // count after this failure and t = throttle_after_failures:
  //   f >= lockout_after_failures : locked for lockout_ms;
  //   f >  t                      : the next attempt waits
  //                                 min(throttle_base_ms * 2^(f-t-1), lockout_ms);
  //   otherwise                   : no wait.
  // A wait never shrinks an existing one. The count starts over after a
  // successful login, an admin password reset, or once no wait is in force
  // and lockout_ms has passed since the last failure (so a lockout that has
  // run out gives a fresh set of attempts). Attempts refused while waiting
  // are not counted and never check the password.
  Status RecordFailure(ByteView index, int64_t now) {
    auto updated =
        store_->UpdateLoginFailures(index, [&](const std::optional<LoginFailureRow>& cur) {
          LoginFailureRow next;
          int64_t failures = 0;
          if (cur.has_value() && !(now >= cur->locked_until_ms &&
                                   now - cur->last_failure_at_ms >= options_.lockout_ms)) {
            failures = cur->failures;
          }
          next.failures = failures + 1;
          next.last_failure_at_ms = now;
          next.locked_until_ms = now + WaitAfter(next.failures);
          if (next.locked_until_ms == now) {
            next.locked_until_ms = 0;
          }
          if (cur.has_value() && cur->locked_until_ms > next.locked_until_ms) {
            next.locked_until_ms = cur->locked_until_ms;
          }
          return next;
        });
    return updated.status();
  }

  int64_t WaitAfter(int64_t failures) const {
    if (failures >= options_.lockout_after_failures) {
      return options_.lockout_ms;
    }
    const int64_t k = failures - options_.throttle_after_failures;
    if (k <= 0) {
      return 0;
    }
    int64_t wait = options_.throttle_base_ms;
    for (int64_t i = 1; i < k && wait < options_.lockout_ms && wait < (int64_t{1} << 61); ++i) {
      wait *= 2;
    }
    return std::min(wait, options_.lockout_ms);
  }

  // --- Sessions and the cache ---------------------------------------------

  Result<TokenPair> StartSession(Account account, std::string_view audience, bool mfa_verified,
                                 int64_t now, uint64_t epoch) {
    SessionRow session;
    session.session_id = NewRandomId();
    session.account_id = account.account_id;
    session.audience = std::string(audience);
    session.mfa_verified = mfa_verified;
    session.created_at_ms = now;
    session.expires_at_ms = now + options_.session_max_ms;
    const IssuedToken access = NewToken(kAccessPrefix);
    const IssuedToken refresh = NewToken(kRefreshPrefix);
    const int64_t access_expiry = std::min(now + options_.access_ttl_ms, session.expires_at_ms);
    const int64_t refresh_expiry = std::min(now + options_.refresh_ttl_ms, session.expires_at_ms);
    std::vector<SessionTokenRow> rows = {
        {HashBytes(access.hash), session.session_id, TokenKind::kAccess, now, access_expiry, {}},
        {HashBytes(refresh.hash), session.session_id, TokenKind::kRefresh, now, refresh_expiry, {}},
    };
    MV_RETURN_IF_ERROR(store_->CreateSession(session, rows));
    CacheAccess(access.hash, std::move(account), session, access_expiry, epoch, now);
    TokenPair pair;
    pair.access_token = access.text;
    pair.access_expires_at_ms = access_expiry;
    pair.refresh_token = refresh.text;
    pair.refresh_expires_at_ms = refresh_expiry;
    pair.session_id = session.session_id;
    return pair;
  }

  void CacheAccess(const TokenHash& hash, Account account, const SessionRow& session,
                   int64_t access_expiry, uint64_t epoch, int64_t now) {
    AuthenticatedSession s;
    s.account = std::move(account);
    s.session_id = session.session_id;
    s.audience = session.audience;
    s.mfa_verified = session.mfa_verified;
    s.expires_at_ms = access_expiry;
    cache_.Insert(hash, s, session.expires_at_ms, epoch, now);
  }

  static Result<AuthenticatedSession> Check(const AuthenticatedSession& s, int64_t session_expiry,
                                            int64_t now, std::string_view audience) {
    if (now >= s.expires_at_ms || now >= session_expiry) {
      return Status::Unauthenticated("access token expired");
    }
    if (s.account.disabled) {
      return Status::Unauthenticated("account is disabled");
    }
    if (s.audience != audience) {
      return Status::Unauthenticated("access token was issued for another audience");
    }
    return s;
  }

  Result<AuthenticatedSession> AuthenticateFromStore(const TokenHash& hash,
                                                     std::string_view audience, int64_t now) {
    const uint64_t epoch = cache_.Epoch();
    auto token = store_->FindToken(hash.view());
    if (!token.ok()) {
      return NotFoundAs(token.status(), kInvalidAccessToken);
    }
    if (token->kind != TokenKind::kAccess) {
      return Status::Unauthenticated(kInvalidAccessToken);
    }
    auto session = store_->GetSession(token->session_id);
    if (!session.ok()) {
      return NotFoundAs(session.status(), kInvalidAccessToken);
    }
    if (session->revoked_at_ms.has_value()) {
      return Status::Unauthenticated(kInvalidAccessToken);
    }
    MV_ASSIGN_OR_RETURN(AccountRow row, store_->GetAccount(session->account_id));
    MV_ASSIGN_OR_RETURN(Account account, ToAccount(row));
    AuthenticatedSession s;
    s.account = std::move(account);
    s.session_id = session->session_id;
    s.audience = session->audience;
    s.mfa_verified = session->mfa_verified;
    s.expires_at_ms = token->expires_at_ms;
    if (now < s.expires_at_ms && now < session->expires_at_ms && !s.account.disabled) {
      cache_.Insert(hash, s, session->expires_at_ms, epoch, now);
    }
    return Check(s, session->expires_at_ms, now, audience);
  }

  Result<TokenPair> ReuseDetected(const SessionRow& session, int64_t now) {
    MV_RETURN_IF_ERROR(
        store_->RevokeSession(session.session_id, now, "refresh token reuse").status());
    cache_.InvalidateSession(session.account_id, session.session_id);
    return Status::Unauthenticated("refresh token was already used; the session has been ended");
  }

  Status RevokeAll(const std::string& account_id, int64_t now, std::string_view reason) {
    Status st = store_->RevokeAccountSessions(account_id, now, reason).status();
    // Invalidate even on a store error: a dropped entry only costs a reload.
    cache_.InvalidateAccount(account_id);
    return st;
  }

  static Status NotFoundAs(const Status& st, const char* message) {
    return st.code() == StatusCode::kNotFound ? Status::Unauthenticated(message) : st;
  }

  void MaybePurge(int64_t now) {
    int64_t last = last_purge_ms_.load(std::memory_order_relaxed);
    if (now - last < kPurgeIntervalMs ||
        !last_purge_ms_.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
      return;
    }
    (void)store_->PurgeExpired(now, options_.lockout_ms);
  }

  store::AccountStore* const store_;
  const AuthOptions options_;
  const SecretBytes index_key_;
  const SecretBytes profile_key_;
  const SecretBytes totp_key_;
  const std::string dummy_hash_;
  const std::unordered_set<std::string> known_roles_;
  const std::unordered_set<std::string> mfa_roles_;
  TokenCache cache_;
  std::atomic<int64_t> last_purge_ms_;
  // The newest change-log seq applied to cache_ (-1 = none yet).
  std::mutex sync_mu_;
  std::atomic<int64_t> seen_change_{-1};
};

Status ValidateOptions(const AuthOptions& o) {
  if (o.audiences.empty() || std::any_of(o.audiences.begin(), o.audiences.end(),
                                         [](const auto& a) { return a.empty(); })) {
    return Status::InvalidArgument("at least one non-empty audience is required");
  }
  if (o.access_ttl_ms <= 0 || o.refresh_ttl_ms <= 0 || o.session_max_ms <= 0) {
    return Status::InvalidArgument("token lifetimes must be positive");
  }
  constexpr int64_t kYearMs = 366LL * 24 * 60 * 60 * 1000;
  if (o.throttle_after_failures < 0 || o.lockout_after_failures < 1 || o.throttle_base_ms < 0 ||
      o.throttle_base_ms > kYearMs || o.lockout_ms < 0 || o.lockout_ms > kYearMs) {
    return Status::InvalidArgument("login throttling settings are out of range");
  }
  if (o.totp.digits < 6 || o.totp.digits > 8 || o.totp.step_seconds <= 0 ||
      o.totp.window_steps < 0 || o.totp.window_steps > 10) {
    return Status::InvalidArgument("TOTP settings are out of range");
  }
  if (o.password_policy.min_length < 1 || o.password_policy.max_length < 1 ||
      o.password_policy.min_length > o.password_policy.max_length) {
    return Status::InvalidArgument("password length limits are out of range");
  }
  for (const std::string& role : o.known_roles) {
    if (role.empty() || role.find(',') != std::string::npos) {
      return Status::InvalidArgument("role names must be non-empty and contain no ','");
    }
  }
  for (const std::string& role : o.mfa_roles) {
    if (std::find(o.known_roles.begin(), o.known_roles.end(), role) == o.known_roles.end()) {
      return Status::InvalidArgument("a role requiring MFA is not a known role");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<AccountService>> CreateAccountService(store::AccountStore* store,
                                                             crypto::KeyProvider* keys,
                                                             AuthOptions options) {
  if (store == nullptr || keys == nullptr) {
    return Status::InvalidArgument("account service needs a store and a key provider");
  }
  MV_RETURN_IF_ERROR(crypto::InitCrypto());
  MV_RETURN_IF_ERROR(ValidateOptions(options));
  if (!options.now_ms) {
    options.now_ms = NowUnixMillis;
  }
  MV_ASSIGN_OR_RETURN(SecretBytes index_key, keys->DerivePlatformKey(kUsernameIndexPurpose));
  MV_ASSIGN_OR_RETURN(SecretBytes profile_key, keys->DerivePlatformKey(kProfilePurpose));
  MV_ASSIGN_OR_RETURN(SecretBytes totp_key, keys->DerivePlatformKey(kTotpPurpose));
  // The stand-in for unknown usernames: a hash of a random password nobody
  // knows, with the same parameters as real hashes so it costs the same.
  SecretBytes random(32);
  crypto::RandomBytes(random.mutable_view());
  MV_ASSIGN_OR_RETURN(std::string dummy_hash, HashPassword(ToHex(random.view()), options.argon2));
  return std::unique_ptr<AccountService>(
      new AccountServiceImpl(store, std::move(options), std::move(index_key),
                             std::move(profile_key), std::move(totp_key), std::move(dummy_hash)));
}

}  // namespace medvault::auth
