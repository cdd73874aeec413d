// medvault accounts and authentication: the public interface of src/auth.
//
// Institutions, departments and accounts; passwords (Argon2id via libsodium)
// with a strength policy; TOTP second factor (RFC 6238); sessions made of a
// short-lived access token and a rotating refresh token.
//
// Tokens are opaque random strings ("mva1." / "mvr1." + 43 base64url chars of
// 32 random bytes). Only their SHA-256 is stored, so a database leak yields no
// usable token. Each session is bound to an audience; Authenticate() refuses a
// token issued for another audience. Refreshing rotates the refresh token;
// presenting a refresh token that was already rotated revokes the whole
// session family (RFC 6819 5.2.2.3, OAuth 2.0 Security BCP 4.14). Logout and
// admin revocation take effect at once.
//
// Failed logins are counted per username (known or not): after a few the next
// attempt must wait, growing, and after more the username is locked for a
// while. The answer for an unknown user and for a wrong password is the same
// in content and in timing (an unknown user is checked against a dummy hash).
//
// Nothing identifying sits in plaintext in the database: usernames are found
// through a keyed blind index and kept sealed with display names; TOTP secrets
// are sealed. Never logs passwords, codes or tokens. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "crypto/crypto.h"

namespace medvault::store {
class AccountStore;
}

namespace medvault::auth {

// ---------------------------------------------------------------------------
// Passwords

struct PasswordPolicy {
  size_t min_length = 12;   // in code points
  size_t max_length = 128;  // in bytes, also bounds hashing cost
  // At least this many of: lower case, upper case, digit, other.
  int min_character_classes = 3;
};

// InvalidArgument with a sentence saying what is wrong: too short, too long,
// not valid UTF-8, too few character classes, contains the username, a known
// common password, a single repeated character.
Status CheckPasswordStrength(std::string_view password, std::string_view username,
                             const PasswordPolicy& policy);

struct Argon2Params {
  uint64_t ops_limit = 2;                  // crypto_pwhash_OPSLIMIT_INTERACTIVE
  size_t mem_limit = 64ull * 1024 * 1024;  // crypto_pwhash_MEMLIMIT_INTERACTIVE
};
// The libsodium encoded form ("$argon2id$v=19$m=...,t=...,p=1$salt$hash").
Result<std::string> HashPassword(std::string_view password, const Argon2Params& params);
// Constant time in the password (libsodium). False for a malformed hash.
bool VerifyPassword(std::string_view encoded_hash, std::string_view password);
// How many times VerifyPassword has run Argon2 in this process (for tests and
// metrics: an unknown-user login must show up here like a known one).
uint64_t PasswordVerificationCount();
// True when `encoded_hash` was made with other parameters than `params` (or
// is not Argon2id), so a successful login should store a fresh hash.
bool PasswordNeedsRehash(std::string_view encoded_hash, const Argon2Params& params);

// ---------------------------------------------------------------------------
// TOTP (RFC 6238 over HOTP, RFC 4226)

enum class TotpAlgorithm { kSha1, kSha256, kSha512 };

struct TotpParams {
  TotpAlgorithm algorithm = TotpAlgorithm::kSha1;  // what authenticator apps use
  int digits = 6;                                  // 6..8
  int step_seconds = 30;
  int window_steps = 1;  // accept codes this many steps before and after now
};

// The code for `unix_seconds`, zero-padded to `digits`.
std::string TotpCode(ByteView secret, int64_t unix_seconds, const TotpParams& params);
// The time step (counter) whose code equals `code` within the window, if any.
// Compares in constant time.
std::optional<int64_t> TotpMatch(ByteView secret, std::string_view code, int64_t unix_seconds,
                                 const TotpParams& params);
// RFC 4648 base32 without padding (what otpauth URIs carry).
std::string Base32Encode(ByteView data);
Result<Bytes> Base32Decode(std::string_view text);  // case-insensitive, padding optional
// otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=...&algorithm=SHA1&digits=6&period=30
std::string OtpauthUri(std::string_view issuer, std::string_view account_name, ByteView secret,
                       const TotpParams& params);

// ---------------------------------------------------------------------------
// Accounts

struct Institution {
  std::string institution_id;
  std::string name;
  int64_t created_at_ms = 0;
};

struct Department {
  std::string department_id;
  std::string institution_id;
  std::string name;
  int64_t created_at_ms = 0;
};

struct Account {
  std::string account_id;  // random, 32 hex
  std::string username;    // normalised: lower case [a-z0-9._@-], 3..64
  std::string display_name;
  std::vector<std::string> roles;  // role names of the policy
  std::string institution_id;      // may be empty (patients, proxies)
  std::string department_id;       // may be empty
  std::string patient_id;          // the record a patient account is; else empty
  // Personal accounts: the institution that registered them (whose admins
  // may start a recovery); "" = registered by the platform or staff.
  std::string home_institution_id;
  bool totp_enabled = false;
  bool disabled = false;
  int64_t created_at_ms = 0;
};

struct NewAccount {
  std::string username;
  std::string display_name;
  std::string password;
  std::vector<std::string> roles;
  std::string institution_id;
  std::string department_id;
  std::string patient_id;  // at most one account per patient (AlreadyExists)
  std::string home_institution_id;
  // Enrol a TOTP secret now. Forced on when a role requires MFA.
  bool enroll_totp = false;
};

// An open recovery of an account's credentials (RequestRecovery).
struct Recovery {
  std::string recovery_id;
  std::string account_id;
  std::string requested_by;    // the requesting administrator's account
  std::string institution_id;  // the institution it was requested for ("" = platform)
  std::string reason;
  int64_t requested_at_ms = 0;
  int64_t not_before_ms = 0;  // ApproveRecovery is refused before this
};

// What a completed recovery hands to the person, once.
struct RecoveredCredentials {
  std::string account_id;
  std::string temporary_password;  // random; the person changes it after signing in
  std::string totp_secret_base32;  // present when the account has a second factor
  std::string otpauth_uri;
};

struct CreatedAccount {
  Account account;
  // Present when TOTP was enrolled: shown once to the person, never again.
  std::string totp_secret_base32;
  std::string otpauth_uri;
};

// ---------------------------------------------------------------------------
// Sessions

struct LoginRequest {
  std::string_view username;
  std::string_view password;
  std::string_view totp_code;  // required when the account has TOTP enabled
  std::string_view audience;   // one of AuthOptions::audiences
};

struct TokenPair {
  std::string access_token;
  int64_t access_expires_at_ms = 0;
  std::string refresh_token;
  int64_t refresh_expires_at_ms = 0;
  std::string session_id;
};

// What Authenticate() knows about the caller; copied out of the cache.
struct AuthenticatedSession {
  Account account;
  std::string session_id;
  std::string audience;
  bool mfa_verified = false;
  int64_t expires_at_ms = 0;  // of the access token
};

// An account change the ledger records in the same transaction.
struct AccountEvent {
  std::string_view action;      // "account.create", "account.roles", ...
  std::string_view subject_id;  // the account, institution or department concerned
  // The record the subject account is, when it is a patient's: the ledger
  // names it by its pseudonym so the patient sees the change in their access
  // history (and is notified); never written in clear.
  std::string_view patient_id;
  std::map<std::string, std::string> details;
};

struct AuthOptions {
  // Encodes the ledger entry of an account change; empty = no entries.
  // Wired by the app to src/ledger (the store's audit hook appends it).
  std::function<Result<Bytes>(const AccountEvent&)> audit;
  std::vector<std::string> audiences = {"medvault-api"};
  int64_t access_ttl_ms = 15 * 60 * 1000;
  int64_t refresh_ttl_ms = 12 * 60 * 60 * 1000;      // per refresh token
  int64_t session_max_ms = 7 * 24 * 60 * 60 * 1000;  // absolute, per family
  // Failures (per username) before attempts are throttled: the k-th failure
  // beyond this makes the next attempt wait throttle_base_ms * 2^(k-1).
  int throttle_after_failures = 3;
  int64_t throttle_base_ms = 1000;
  // Failures before the username is locked for lockout_ms.
  int lockout_after_failures = 10;
  int64_t lockout_ms = 15 * 60 * 1000;
  PasswordPolicy password_policy;
  Argon2Params argon2;
  TotpParams totp;
  std::string totp_issuer = "medvault";
  // How long an account recovery of a personal account (a patient's or a
  // proxy's) stays open before it can be completed: the patient is notified
  // at once and may cancel it meanwhile. Staff accounts: no wait.
  int64_t recovery_wait_ms = 24 * 60 * 60 * 1000;
  // Role names of personal accounts (they belong to the person, not to an
  // institution).
  std::vector<std::string> personal_roles = {"patient", "family-proxy"};
  // Role names the policy knows, and those that require a second factor.
  std::vector<std::string> known_roles;
  std::vector<std::string> mfa_roles;
  // The clock (Unix ms); tests replace it.
  std::function<int64_t()> now_ms;
  // Entries in the in-memory access-token cache (token hash -> session and
  // account snapshot) that lets Authenticate() skip the database; 0 disables
  // it. Revocations, role changes and disabling invalidate entries at once.
  // The cache is per process: run one service per database.
  size_t token_cache_capacity = 100000;
};

class AccountService {
 public:
  virtual ~AccountService() = default;

  // Institutions and departments. Names 1..200 chars of UTF-8, unique.
  virtual Result<Institution> CreateInstitution(std::string_view name) = 0;
  virtual Result<std::vector<Institution>> ListInstitutions() = 0;
  virtual Result<Department> CreateDepartment(std::string_view institution_id,
                                              std::string_view name) = 0;
  // "" for all institutions.
  virtual Result<std::vector<Department>> ListDepartments(std::string_view institution_id) = 0;

  // InvalidArgument for a bad username, weak password, unknown role, unknown
  // institution/department, a department of another institution; AlreadyExists
  // for a taken username.
  virtual Result<CreatedAccount> CreateAccount(const NewAccount& account) = 0;
  virtual Result<Account> GetAccount(std::string_view account_id) = 0;
  virtual Result<Account> FindAccountByUsername(std::string_view username) = 0;
  // "" for all institutions.
  virtual Result<std::vector<Account>> ListAccounts(std::string_view institution_id) = 0;
  // Each of these takes effect at once for live sessions.
  virtual Status SetRoles(std::string_view account_id, const std::vector<std::string>& roles) = 0;
  // Disabling revokes every session and withdraws an open recovery (a
  // disabled person could neither see nor stop it), from any process.
  virtual Status SetDisabled(std::string_view account_id, bool disabled) = 0;
  // Admin reset: checks strength, revokes every session, clears the lockout.
  virtual Status ResetPassword(std::string_view account_id, std::string_view new_password) = 0;
  // Self-service: the old password must verify. A wrong old password counts
  // as a failed login for the username (and is refused while throttled).
  // Does not end sessions; call RevokeAllSessions() for that.
  virtual Status ChangePassword(std::string_view account_id, std::string_view old_password,
                                std::string_view new_password) = 0;
  // A new TOTP secret (enrolled at once); revokes every session.
  // (Operator console only: the API recovers accounts through the two-person
  // procedure below.)
  virtual Result<CreatedAccount> ResetTotp(std::string_view account_id) = 0;

  // Account recovery, the only way the API replaces another person's
  // credentials: one administrator opens it with a reason (10..500
  // characters), a second one completes it. Opening, cancelling and
  // completing are ledger entries that name the patient (by pseudonym) when
  // the account is a patient's, so the patient sees them; a personal
  // account's recovery can be completed only after recovery_wait_ms.
  // RequestRecovery: AlreadyExists when one is open; InvalidArgument for a
  // bad reason; NotFound for an unknown account.
  virtual Result<Recovery> RequestRecovery(std::string_view account_id,
                                           std::string_view requested_by,
                                           std::string_view institution_id,
                                           std::string_view reason) = 0;
  // nullopt when none is open.
  virtual Result<std::optional<Recovery>> GetRecovery(std::string_view account_id) = 0;
  // NotFound when none is open.
  virtual Status CancelRecovery(std::string_view account_id, std::string_view cancelled_by) = 0;
  // New random password, a new TOTP secret when the account has (or its
  // roles need) one, every session revoked, the lockout cleared.
  // PermissionDenied when `approved_by` opened it (two people), is the
  // account itself, or is not an account older than the request (a puppet
  // made for the purpose is not a second person); FailedPrecondition before not_before_ms; NotFound
  // when none is open.
  virtual Result<RecoveredCredentials> ApproveRecovery(std::string_view account_id,
                                                       std::string_view approved_by) = 0;

  // Unauthenticated "invalid username or password" for unknown user or wrong
  // password (same text, same work); Unauthenticated "a one-time code is
  // required" / "invalid one-time code" (also for a code already used: replay);
  // ResourceExhausted "too many failed attempts; try again in N s" while
  // throttled or locked (also for unknown users); PermissionDenied for a
  // disabled account; InvalidArgument for an unknown audience.
  virtual Result<TokenPair> Login(const LoginRequest& request) = 0;
  // Rotates. Unauthenticated for an unknown, expired or revoked token; for a
  // token already rotated, also revokes the whole session family.
  virtual Result<TokenPair> Refresh(std::string_view refresh_token) = 0;
  // The hot path of every request. Unauthenticated for a malformed, unknown,
  // expired or revoked token, a refresh token, or a token of another audience.
  virtual Result<AuthenticatedSession> Authenticate(std::string_view access_token,
                                                    std::string_view audience) = 0;
  // Revokes the session family of the token (access or refresh).
  virtual Status Logout(std::string_view token) = 0;
  virtual Status RevokeAllSessions(std::string_view account_id) = 0;
  // Applies changes that another process (a CLI command, another server)
  // recorded in the store's change log since the last call: drops the cached
  // tokens of every changed account. Authenticate() calls it first, so a
  // token revoked elsewhere fails on the very next request; a server may
  // also call it periodically to free such entries early. Thread-safe.
  virtual Status SyncChanges() = 0;
};

// The store and key provider must outlive the service. Platform keys for the
// blind index and the sealed fields are derived from `keys`.
Result<std::unique_ptr<AccountService>> CreateAccountService(store::AccountStore* store,
                                                             crypto::KeyProvider* keys,
                                                             AuthOptions options);

}  // namespace medvault::auth
