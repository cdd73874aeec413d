// AccountService over a real SQLite account store, with a fake clock.
#include <gtest/gtest.h>
#include <sodium.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "auth/auth.h"
#include "common/ids.h"
#include "crypto_test_util.h"
#include "store/account_store.h"
#include "test_util.h"

namespace medvault::auth {
namespace {

namespace fs = std::filesystem;
using medvault::testing::FilesContaining;
using medvault::testing::TempDir;
using store::AccountStore;

constexpr char kAudience[] = "medvault-api";
constexpr char kAdminAudience[] = "medvault-admin";
constexpr char kPassword[] = "Tractor-Rain-Blue-42";
constexpr char kOtherPassword[] = "Violet-Harbour-Lamp-7";
constexpr int64_t kStart = 1'700'000'000'000;
constexpr int64_t kMinute = 60 * 1000;
constexpr int64_t kHour = 60 * kMinute;

// Forwards to the real store and counts calls, so tests can assert that a
// path does not touch the store at all.
class CountingStore final : public AccountStore {
 public:
  explicit CountingStore(AccountStore* inner) : inner_(inner) {}
  int64_t calls() const { return calls_.load(); }
  std::atomic<int64_t> change_reads_{0};

  Status CreateInstitution(const store::InstitutionRow& r, store::AuditEntries a) override {
    return Count(), inner_->CreateInstitution(r, a);
  }
  Result<store::InstitutionRow> GetInstitution(std::string_view id) override {
    return Count(), inner_->GetInstitution(id);
  }
  Result<std::vector<store::InstitutionRow>> ListInstitutions() override {
    return Count(), inner_->ListInstitutions();
  }
  Status CreateDepartment(const store::DepartmentRow& r, store::AuditEntries a) override {
    return Count(), inner_->CreateDepartment(r, a);
  }
  Result<store::DepartmentRow> GetDepartment(std::string_view id) override {
    return Count(), inner_->GetDepartment(id);
  }
  Result<std::vector<store::DepartmentRow>> ListDepartments(std::string_view id) override {
    return Count(), inner_->ListDepartments(id);
  }
  Status CreateAccount(const store::AccountRow& r, store::AuditEntries a) override {
    return Count(), inner_->CreateAccount(r, a);
  }
  Result<store::AccountRow> GetAccount(std::string_view id) override {
    Count();
    auto row = inner_->GetAccount(id);
    if (before_get_account_returns) {
      auto hook = std::move(before_get_account_returns);
      before_get_account_returns = nullptr;
      hook();
    }
    return row;
  }
  // Runs once, between the store read and its return (single-threaded tests).
  std::function<void()> before_get_account_returns;
  Result<store::AccountRow> FindAccountByUsernameIndex(ByteView index) override {
    return Count(), inner_->FindAccountByUsernameIndex(index);
  }
  Status CreateRecovery(const store::RecoveryRow& r, store::AuditEntries a) override {
    return Count(), inner_->CreateRecovery(r, a);
  }
  Result<std::optional<store::RecoveryRow>> GetRecovery(std::string_view id) override {
    return Count(), inner_->GetRecovery(id);
  }
  Status CancelRecovery(std::string_view id, std::string_view rid, store::AuditEntries a) override {
    return Count(), inner_->CancelRecovery(id, rid, a);
  }
  Status CompleteRecovery(std::string_view id, std::string_view rid, std::string_view hash,
                          ByteView totp, bool enabled, int64_t now,
                          store::AuditEntries a) override {
    return Count(), inner_->CompleteRecovery(id, rid, hash, totp, enabled, now, a);
  }
  Result<std::vector<store::AccountRow>> ListAccounts(std::string_view id) override {
    return Count(), inner_->ListAccounts(id);
  }
  Status SetRoles(std::string_view id, const std::vector<std::string>& roles, int64_t now,
                  store::AuditEntries a) override {
    return Count(), inner_->SetRoles(id, roles, now, a);
  }
  Status SetDisabled(std::string_view id, bool disabled, int64_t now,
                     store::AuditEntries a) override {
    return Count(), inner_->SetDisabled(id, disabled, now, a);
  }
  Status SetPasswordHash(std::string_view id, std::string_view hash, int64_t now,
                         store::AuditEntries a) override {
    return Count(), inner_->SetPasswordHash(id, hash, now, a);
  }
  Status SetTotp(std::string_view id, ByteView sealed, bool enabled, int64_t now,
                 store::AuditEntries a) override {
    return Count(), inner_->SetTotp(id, sealed, enabled, now, a);
  }
  Result<bool> AdvanceTotpStep(std::string_view id, int64_t step) override {
    return Count(), inner_->AdvanceTotpStep(id, step);
  }
  Result<std::optional<store::LoginFailureRow>> GetLoginFailures(ByteView index) override {
    return Count(), inner_->GetLoginFailures(index);
  }
  Result<store::LoginFailureRow> UpdateLoginFailures(
      ByteView index,
      const std::function<store::LoginFailureRow(const std::optional<store::LoginFailureRow>&)>&
          update) override {
    return Count(), inner_->UpdateLoginFailures(index, update);
  }
  Status ClearLoginFailures(ByteView index) override {
    return Count(), inner_->ClearLoginFailures(index);
  }
  Status CreateSession(const store::SessionRow& s,
                       const std::vector<store::SessionTokenRow>& t) override {
    return Count(), inner_->CreateSession(s, t);
  }
  Result<store::SessionRow> GetSession(std::string_view id) override {
    return Count(), inner_->GetSession(id);
  }
  Result<std::vector<store::SessionRow>> ListSessions(std::string_view id) override {
    return Count(), inner_->ListSessions(id);
  }
  Result<store::SessionTokenRow> FindToken(ByteView hash) override {
    return Count(), inner_->FindToken(hash);
  }
  Result<bool> RotateRefreshToken(ByteView old_hash, int64_t now,
                                  const std::vector<store::SessionTokenRow>& t) override {
    return Count(), inner_->RotateRefreshToken(old_hash, now, t);
  }
  Result<bool> RevokeSession(std::string_view id, int64_t now, std::string_view reason) override {
    return Count(), inner_->RevokeSession(id, now, reason);
  }
  Result<int64_t> RevokeAccountSessions(std::string_view id, int64_t now,
                                        std::string_view reason) override {
    return Count(), inner_->RevokeAccountSessions(id, now, reason);
  }
  Result<int64_t> PurgeExpired(int64_t now, int64_t retention) override {
    return Count(), inner_->PurgeExpired(now, retention);
  }
  // The change-log signal is counted apart: a cache hit reads the newest
  // change seq (one primary-key read) but nothing of sessions or accounts.
  Result<int64_t> LatestChange() override {
    ++change_reads_;
    return inner_->LatestChange();
  }
  Result<std::vector<store::ChangeRow>> ChangesSince(int64_t after, size_t limit) override {
    return Count(), inner_->ChangesSince(after, limit);
  }
  int64_t change_reads() const { return change_reads_.load(); }
  Result<int> SchemaVersion() override { return Count(), inner_->SchemaVersion(); }

 private:
  void Count() { calls_.fetch_add(1); }
  AccountStore* inner_;
  std::atomic<int64_t> calls_{0};
};

class AccountServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::CreateKeyFile(dir_.path() / "kek").ok());
    auto keys = crypto::OpenFileKeyProvider(dir_.path() / "kek");
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    keys_ = std::move(keys).value();
    auto opened = store::OpenSqliteAccountStore(db_path());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    real_store_ = std::move(opened).value();
    store_ = std::make_unique<CountingStore>(real_store_.get());
    options_ = BaseOptions();
    Rebuild();
  }

  fs::path db_path() const { return dir_.path() / "metadata.db"; }

  AuthOptions BaseOptions() {
    AuthOptions o;
    o.audiences = {kAudience, kAdminAudience};
    o.argon2.ops_limit = crypto_pwhash_argon2id_OPSLIMIT_MIN;
    o.argon2.mem_limit = crypto_pwhash_argon2id_MEMLIMIT_MIN;
    o.known_roles = {"patient", "doctor", "nurse", "admin", "auditor"};
    o.mfa_roles = {"doctor", "admin"};
    o.now_ms = [this] { return clock_.load(); };
    return o;
  }

  // (Re)creates the service from options_.
  void Rebuild() {
    service_.reset();
    auto created = CreateAccountService(store_.get(), keys_.get(), options_);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    service_ = std::move(created).value();
  }

  // A second service over the same store: its cache is cold, so it always
  // goes to the store (the path after eviction or restart).
  std::unique_ptr<AccountService> ColdService() {
    auto created = CreateAccountService(store_.get(), keys_.get(), options_);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? std::move(created).value() : nullptr;
  }

  void Advance(int64_t ms) { clock_.fetch_add(ms); }
  int64_t Now() const { return clock_.load(); }

  CreatedAccount Create(const std::string& username, std::vector<std::string> roles = {"patient"},
                        bool enroll_totp = false) {
    NewAccount a;
    a.username = username;
    a.display_name = "Person " + username;
    a.password = kPassword;
    a.roles = std::move(roles);
    a.enroll_totp = enroll_totp;
    auto created = service_->CreateAccount(a);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? std::move(created).value() : CreatedAccount{};
  }

  Result<TokenPair> Login(std::string_view username, std::string_view password = kPassword,
                          std::string_view code = "", std::string_view audience = kAudience,
                          AccountService* service = nullptr) {
    LoginRequest req;
    req.username = username;
    req.password = password;
    req.totp_code = code;
    req.audience = audience;
    return (service ? service : service_.get())->Login(req);
  }

  TokenPair MustLogin(std::string_view username, std::string_view code = "") {
    auto pair = Login(username, kPassword, code);
    EXPECT_TRUE(pair.ok()) << pair.status().ToString();
    return pair.ok() ? std::move(pair).value() : TokenPair{};
  }

  Bytes Secret(const CreatedAccount& created) {
    auto secret = Base32Decode(created.totp_secret_base32);
    EXPECT_TRUE(secret.ok());
    return secret.ok() ? *secret : Bytes();
  }

  // The code for now + `steps` time steps.
  std::string Code(const Bytes& secret, int steps = 0) {
    return TotpCode(secret, Now() / 1000 + steps * options_.totp.step_seconds, options_.totp);
  }

  Status AuthStatus(const std::string& token, std::string_view audience = kAudience,
                    AccountService* service = nullptr) {
    return (service ? service : service_.get())->Authenticate(token, audience).status();
  }

  TempDir dir_;
  std::atomic<int64_t> clock_{kStart};
  std::unique_ptr<crypto::KeyProvider> keys_;
  std::unique_ptr<AccountStore> real_store_;
  std::unique_ptr<CountingStore> store_;
  AuthOptions options_;
  std::unique_ptr<AccountService> service_;
};

void ExpectUnauthenticated(const Status& st, std::string_view message = "") {
  EXPECT_EQ(st.code(), StatusCode::kUnauthenticated) << st.ToString();
  if (!message.empty()) {
    EXPECT_EQ(st.message(), message);
  }
}

// --- Options -------------------------------------------------------------------

TEST_F(AccountServiceTest, RefusesBadOptions) {
  EXPECT_EQ(CreateAccountService(nullptr, keys_.get(), options_).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateAccountService(store_.get(), nullptr, options_).status().code(),
            StatusCode::kInvalidArgument);
  auto refused = [&](auto mutate) {
    AuthOptions o = BaseOptions();
    mutate(o);
    return CreateAccountService(store_.get(), keys_.get(), o).status().code() ==
           StatusCode::kInvalidArgument;
  };
  EXPECT_TRUE(refused([](AuthOptions& o) { o.audiences.clear(); }));
  EXPECT_TRUE(refused([](AuthOptions& o) { o.audiences = {""}; }));
  EXPECT_TRUE(refused([](AuthOptions& o) { o.access_ttl_ms = 0; }));
  EXPECT_TRUE(refused([](AuthOptions& o) { o.session_max_ms = -1; }));
  EXPECT_TRUE(refused([](AuthOptions& o) { o.lockout_after_failures = 0; }));
  EXPECT_TRUE(refused([](AuthOptions& o) { o.totp.digits = 5; }));
  EXPECT_TRUE(refused([](AuthOptions& o) { o.totp.step_seconds = 0; }));
  EXPECT_TRUE(refused([](AuthOptions& o) { o.mfa_roles = {"wizard"}; }));
  EXPECT_TRUE(refused([](AuthOptions& o) { o.known_roles = {"a,b"}; }));
  EXPECT_TRUE(refused([](AuthOptions& o) { o.argon2.mem_limit = 1; }));
  // A default clock is supplied when none is given.
  AuthOptions o = BaseOptions();
  o.now_ms = nullptr;
  EXPECT_TRUE(CreateAccountService(store_.get(), keys_.get(), o).ok());
}

// --- Institutions and departments ----------------------------------------------

TEST_F(AccountServiceTest, InstitutionsAndDepartments) {
  auto mary = service_->CreateInstitution("  St Mary's Hospital ");
  ASSERT_TRUE(mary.ok()) << mary.status().ToString();
  EXPECT_EQ(mary->name, "St Mary's Hospital");  // trimmed
  EXPECT_TRUE(IsValidRandomId(mary->institution_id));
  EXPECT_EQ(mary->created_at_ms, kStart);
  EXPECT_EQ(service_->CreateInstitution("St Mary's Hospital").status().code(),
            StatusCode::kAlreadyExists);
  for (const std::string& bad : {std::string(""), std::string("   "), std::string(201, 'x'),
                                 std::string("Tab\there"), std::string("\xff\xfe")}) {
    EXPECT_EQ(service_->CreateInstitution(bad).status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(service_->CreateInstitution(std::string(200, 'x')).ok());
  auto charite = service_->CreateInstitution("Charité");
  ASSERT_TRUE(charite.ok());

  auto cardio = service_->CreateDepartment(mary->institution_id, "Cardiology");
  ASSERT_TRUE(cardio.ok()) << cardio.status().ToString();
  EXPECT_EQ(cardio->institution_id, mary->institution_id);
  EXPECT_EQ(service_->CreateDepartment(mary->institution_id, "Cardiology").status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_TRUE(service_->CreateDepartment(charite->institution_id, "Cardiology").ok());
  EXPECT_EQ(service_->CreateDepartment(NewRandomId(), "Radiology").status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(service_->CreateDepartment("", "Radiology").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->CreateDepartment(mary->institution_id, "").status().code(),
            StatusCode::kInvalidArgument);

  EXPECT_EQ(service_->ListInstitutions()->size(), 3u);
  EXPECT_EQ(service_->ListDepartments("")->size(), 2u);
  auto mine = service_->ListDepartments(mary->institution_id);
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->size(), 1u);
  EXPECT_EQ((*mine)[0].name, "Cardiology");
  EXPECT_EQ(service_->ListDepartments(NewRandomId()).status().code(), StatusCode::kNotFound);
}

// --- Accounts ------------------------------------------------------------------

TEST_F(AccountServiceTest, CreateAccountNormalisesAndReturnsTheAccount) {
  NewAccount a;
  a.username = "  Alice.Smith@Example.ORG\t";
  a.display_name = "Alice Smith";
  a.password = kPassword;
  a.roles = {"patient", "patient"};
  a.patient_id = NewRandomId();
  auto created = service_->CreateAccount(a);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const Account& acc = created->account;
  EXPECT_TRUE(IsValidRandomId(acc.account_id));
  EXPECT_EQ(acc.username, "alice.smith@example.org");
  EXPECT_EQ(acc.display_name, "Alice Smith");
  EXPECT_EQ(acc.roles, std::vector<std::string>{"patient"});  // deduplicated
  EXPECT_EQ(acc.patient_id, a.patient_id);
  EXPECT_FALSE(acc.totp_enabled);
  EXPECT_FALSE(acc.disabled);
  EXPECT_EQ(acc.created_at_ms, kStart);
  EXPECT_TRUE(created->totp_secret_base32.empty());
  EXPECT_TRUE(created->otpauth_uri.empty());

  auto got = service_->GetAccount(acc.account_id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->username, acc.username);
  EXPECT_EQ(got->display_name, "Alice Smith");
  EXPECT_EQ(got->patient_id, a.patient_id);
  auto found = service_->FindAccountByUsername("ALICE.smith@example.org ");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->account_id, acc.account_id);
  EXPECT_EQ(service_->FindAccountByUsername("bob").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->FindAccountByUsername("x").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->GetAccount(NewRandomId()).status().code(), StatusCode::kNotFound);

  // Same username in another spelling is taken.
  a.username = "alice.smith@EXAMPLE.org";
  auto again = service_->CreateAccount(a);
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(again.status().message().find("alice"), std::string::npos);
}

TEST_F(AccountServiceTest, CreateAccountValidation) {
  auto inst_a = service_->CreateInstitution("Hospital A");
  auto inst_b = service_->CreateInstitution("Hospital B");
  ASSERT_TRUE(inst_a.ok() && inst_b.ok());
  auto dept_b = service_->CreateDepartment(inst_b->institution_id, "Oncology");
  ASSERT_TRUE(dept_b.ok());

  auto base = [] {
    NewAccount a;
    a.username = "valid.user";
    a.display_name = "Valid User";
    a.password = kPassword;
    a.roles = {"nurse"};
    return a;
  };
  auto expect_invalid = [&](NewAccount a, std::string_view fragment) {
    auto r = service_->CreateAccount(a);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << fragment;
    EXPECT_NE(r.status().message().find(fragment), std::string::npos) << r.status().ToString();
    EXPECT_EQ(r.status().message().find(a.password), std::string::npos);
  };
  NewAccount a = base();
  for (const std::string& bad : std::vector<std::string>{
           "ab", std::string(65, 'a'), "bad user", "bad/user", "ümlaut", "semi;colon", "", "   "}) {
    a.username = bad;
    expect_invalid(a, "username must be");
  }
  a = base();
  a.username = std::string(64, 'a');
  a.password = "Zebra-Crossing-Light-5";
  EXPECT_TRUE(service_->CreateAccount(a).ok());

  a = base();
  a.display_name = "";
  expect_invalid(a, "display name");
  a.display_name = "Line\nbreak";
  expect_invalid(a, "display name");
  a.display_name = std::string(201, 'x');
  expect_invalid(a, "display name");

  a = base();
  a.roles = {};
  expect_invalid(a, "at least one role");
  a.roles = {"nurse", "wizard"};
  expect_invalid(a, "unknown role: wizard");

  a = base();
  a.password = "Sh0rt-Pw";
  expect_invalid(a, "too short");
  a.password = "Valid.User-Password-1";  // contains the username
  expect_invalid(a, "username");
  a.password = "Password1234!";
  expect_invalid(a, "too common");

  a = base();
  a.institution_id = NewRandomId();
  expect_invalid(a, "unknown institution");
  a.institution_id = inst_a->institution_id;
  a.department_id = NewRandomId();
  expect_invalid(a, "unknown department");
  a.department_id = dept_b->department_id;
  expect_invalid(a, "department belongs to another institution");
  a.institution_id = "";
  expect_invalid(a, "a department requires its institution");

  a = base();
  a.patient_id = "ABCDEF0123456789ABCDEF0123456789";  // upper case
  expect_invalid(a, "patient id");
  a.patient_id = "1234";
  expect_invalid(a, "patient id");

  // Nothing was created by the refused calls.
  auto all = service_->ListAccounts("");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u);

  a = base();
  a.institution_id = inst_b->institution_id;
  a.department_id = dept_b->department_id;
  auto ok = service_->CreateAccount(a);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->account.department_id, dept_b->department_id);
  EXPECT_EQ(service_->ListAccounts(inst_b->institution_id)->size(), 1u);
  EXPECT_EQ(service_->ListAccounts(inst_a->institution_id)->size(), 0u);
  EXPECT_EQ(service_->ListAccounts("")->size(), 2u);
}

TEST_F(AccountServiceTest, MfaRolesEnrolTotpOnCreation) {
  const CreatedAccount doc = Create("dr.house", {"doctor"});
  EXPECT_TRUE(doc.account.totp_enabled);
  ASSERT_FALSE(doc.totp_secret_base32.empty());
  EXPECT_EQ(Secret(doc).size(), 20u);
  EXPECT_EQ(doc.otpauth_uri, "otpauth://totp/medvault:dr.house?secret=" + doc.totp_secret_base32 +
                                 "&issuer=medvault&algorithm=SHA1&digits=6&period=30");
  // Patients only when asked.
  EXPECT_FALSE(Create("patient.one").account.totp_enabled);
  const CreatedAccount opted = Create("patient.two", {"patient"}, /*enroll_totp=*/true);
  EXPECT_TRUE(opted.account.totp_enabled);
  EXPECT_FALSE(opted.totp_secret_base32.empty());
  EXPECT_TRUE(service_->GetAccount(opted.account.account_id)->totp_enabled);
}

// --- Login, authenticate ---------------------------------------------------------

TEST_F(AccountServiceTest, LoginAndAuthenticate) {
  const CreatedAccount alice = Create("alice");
  auto pair = Login("  ALICE ");
  ASSERT_TRUE(pair.ok()) << pair.status().ToString();
  EXPECT_TRUE(pair->access_token.starts_with("mva1."));
  EXPECT_TRUE(pair->refresh_token.starts_with("mvr1."));
  EXPECT_EQ(pair->access_token.size(), 48u);
  EXPECT_EQ(pair->refresh_token.size(), 48u);
  EXPECT_EQ(pair->access_expires_at_ms, kStart + options_.access_ttl_ms);
  EXPECT_EQ(pair->refresh_expires_at_ms, kStart + options_.refresh_ttl_ms);
  EXPECT_TRUE(IsValidRandomId(pair->session_id));

  auto session = service_->Authenticate(pair->access_token, kAudience);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  EXPECT_EQ(session->account.account_id, alice.account.account_id);
  EXPECT_EQ(session->account.username, "alice");
  EXPECT_EQ(session->account.display_name, "Person alice");
  EXPECT_EQ(session->account.roles, std::vector<std::string>{"patient"});
  EXPECT_EQ(session->session_id, pair->session_id);
  EXPECT_EQ(session->audience, kAudience);
  EXPECT_FALSE(session->mfa_verified);
  EXPECT_EQ(session->expires_at_ms, pair->access_expires_at_ms);

  // The same through a cold cache (store path).
  auto cold = ColdService();
  auto from_store = cold->Authenticate(pair->access_token, kAudience);
  ASSERT_TRUE(from_store.ok()) << from_store.status().ToString();
  EXPECT_EQ(from_store->account.username, "alice");
  EXPECT_EQ(from_store->session_id, pair->session_id);
  EXPECT_EQ(from_store->expires_at_ms, pair->access_expires_at_ms);

  // Two logins: two sessions, distinct tokens.
  auto second = Login("alice");
  ASSERT_TRUE(second.ok());
  EXPECT_NE(second->session_id, pair->session_id);
  EXPECT_NE(second->access_token, pair->access_token);
}

TEST_F(AccountServiceTest, WarmCacheAuthenticateDoesNotTouchTheStore) {
  Create("alice");
  const TokenPair pair = MustLogin("alice");
  ASSERT_TRUE(service_->Authenticate(pair.access_token, kAudience).ok());
  const int64_t before = store_->calls();
  const int64_t change_reads_before = store_->change_reads();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(service_->Authenticate(pair.access_token, kAudience).ok());
  }
  EXPECT_EQ(store_->calls(), before);
  // Only the newest change seq, once per call (revocations by other processes).
  EXPECT_EQ(store_->change_reads(), change_reads_before + 100);
  // A cold service fills its cache on the first call, then stops reading.
  auto cold = ColdService();
  ASSERT_TRUE(cold->Authenticate(pair.access_token, kAudience).ok());
  const int64_t after_fill = store_->calls();
  EXPECT_GT(after_fill, before);
  ASSERT_TRUE(cold->Authenticate(pair.access_token, kAudience).ok());
  EXPECT_EQ(store_->calls(), after_fill);
}

// Issue 13: a CLI command is another process with its own store connections
// and its own service. Its revocations must fail a token that this service
// has cached on the very next request, not when the cache entry expires.
TEST_F(AccountServiceTest, RevocationsByAnotherProcessFailTheNextRequest) {
  const CreatedAccount alice = Create("alice");
  const CreatedAccount bob = Create("bob");
  const CreatedAccount carol = Create("carol");
  const TokenPair a = MustLogin("alice");
  const TokenPair b = MustLogin("bob");
  const TokenPair c = MustLogin("carol");
  const TokenPair c2 = MustLogin("carol");
  for (const TokenPair* p : {&a, &b, &c, &c2}) {
    ASSERT_TRUE(AuthStatus(p->access_token).ok());  // cached here now
  }

  auto cli_store = store::OpenSqliteAccountStore(db_path());
  ASSERT_TRUE(cli_store.ok()) << cli_store.status().ToString();
  auto cli = CreateAccountService(cli_store->get(), keys_.get(), options_);
  ASSERT_TRUE(cli.ok()) << cli.status().ToString();

  ASSERT_TRUE((*cli)->SetDisabled(alice.account.account_id, true).ok());
  ExpectUnauthenticated(AuthStatus(a.access_token));
  EXPECT_TRUE(AuthStatus(b.access_token).ok()) << "bob's cached token should survive";

  ASSERT_TRUE((*cli)->RevokeAllSessions(bob.account.account_id).ok());
  ExpectUnauthenticated(AuthStatus(b.access_token));

  // One session ended elsewhere (a logout on another server): only that one.
  ASSERT_TRUE((*cli)->Logout(c.access_token).ok());
  ExpectUnauthenticated(AuthStatus(c.access_token));
  EXPECT_TRUE(AuthStatus(c2.access_token).ok());

  // Roles changed elsewhere: the next request sees the new roles.
  ASSERT_TRUE((*cli)->SetRoles(carol.account.account_id, {"nurse"}).ok());
  auto s = service_->Authenticate(c2.access_token, kAudience);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->account.roles, std::vector<std::string>{"nurse"});

  // Re-enabling does not bring the revoked sessions back.
  ASSERT_TRUE((*cli)->SetDisabled(alice.account.account_id, false).ok());
  ExpectUnauthenticated(AuthStatus(a.access_token));
}

TEST_F(AccountServiceTest, SyncChangesFromAnotherProcessIsCheapWhenNothingChanged) {
  Create("alice");
  const TokenPair a = MustLogin("alice");
  ASSERT_TRUE(AuthStatus(a.access_token).ok());
  ASSERT_TRUE(service_->SyncChanges().ok());
  const int64_t before = store_->calls();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(service_->SyncChanges().ok());
  }
  EXPECT_EQ(store_->calls(), before) << "no change: only the newest seq is read";
}

TEST_F(AccountServiceTest, WrongPasswordAndUnknownUser) {
  Create("alice");
  auto wrong = Login("alice", kOtherPassword);
  ExpectUnauthenticated(wrong.status(), "invalid username or password");
  auto unknown = Login("nobody", kPassword);
  ExpectUnauthenticated(unknown.status(), "invalid username or password");
  auto malformed = Login("x", kPassword);
  ExpectUnauthenticated(malformed.status(), "invalid username or password");
  auto empty = Login("alice", "");
  ExpectUnauthenticated(empty.status(), "invalid username or password");
  auto too_long = Login("alice", std::string(10000, 'a'));
  ExpectUnauthenticated(too_long.status(), "invalid username or password");
  EXPECT_EQ(Login("alice", kPassword, "", "elsewhere").status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(AccountServiceTest, UnknownUserRunsThePasswordHashLikeAKnownOne) {
  Create("alice");
  for (const std::string& username :
       std::vector<std::string>{"alice", "nobody", "x", std::string(500, 'q')}) {
    const uint64_t before = PasswordVerificationCount();
    auto r = Login(username, kOtherPassword);
    ExpectUnauthenticated(r.status(), "invalid username or password");
    EXPECT_EQ(PasswordVerificationCount(), before + 1) << username;
  }
}

TEST_F(AccountServiceTest, ExpiredAccessToken) {
  Create("alice");
  const TokenPair pair = MustLogin("alice");
  Advance(options_.access_ttl_ms - 1);
  EXPECT_TRUE(service_->Authenticate(pair.access_token, kAudience).ok());
  Advance(1);
  ExpectUnauthenticated(AuthStatus(pair.access_token), "access token expired");
  auto cold = ColdService();
  ExpectUnauthenticated(AuthStatus(pair.access_token, kAudience, cold.get()));
  // The refresh token still works and yields a fresh access token.
  auto refreshed = service_->Refresh(pair.refresh_token);
  ASSERT_TRUE(refreshed.ok()) << refreshed.status().ToString();
  EXPECT_TRUE(service_->Authenticate(refreshed->access_token, kAudience).ok());
}

TEST_F(AccountServiceTest, WrongAudience) {
  Create("alice");
  const TokenPair pair = MustLogin("alice");
  ExpectUnauthenticated(AuthStatus(pair.access_token, kAdminAudience),
                        "access token was issued for another audience");
  ExpectUnauthenticated(AuthStatus(pair.access_token, "something-else"));
  auto cold = ColdService();
  ExpectUnauthenticated(AuthStatus(pair.access_token, kAdminAudience, cold.get()));
  EXPECT_TRUE(service_->Authenticate(pair.access_token, kAudience).ok());
  // A session for the other audience works there only.
  auto admin = Login("alice", kPassword, "", kAdminAudience);
  ASSERT_TRUE(admin.ok());
  EXPECT_TRUE(service_->Authenticate(admin->access_token, kAdminAudience).ok());
  ExpectUnauthenticated(AuthStatus(admin->access_token, kAudience));
}

TEST_F(AccountServiceTest, MalformedAndTamperedTokensNeverReachTheStore) {
  Create("alice");
  const TokenPair pair = MustLogin("alice");
  const std::string& t = pair.access_token;
  std::vector<std::string> malformed = {
      "",
      "mva1.",
      t.substr(0, t.size() - 1),             // too short
      t + "A",                               // too long
      "mvx1." + t.substr(5),                 // unknown prefix
      "MVA1." + t.substr(5),                 // prefix is case-sensitive
      t.substr(0, 10) + "+" + t.substr(11),  // base64 (not url) alphabet
      t.substr(0, 10) + "/" + t.substr(11),  //
      t.substr(0, 47) + "=",                 // padding
      t.substr(0, 20) + " " + t.substr(21),  // space
      t.substr(0, 20) + std::string(1, '\0') + t.substr(21),
      std::string(48, 'A'),
  };
  // A last character with non-zero trailing bits is a second spelling of
  // the same bytes: refused as malformed.
  {
    std::string odd = t;
    const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char* pos = std::strchr(kAlphabet, odd.back());
    ASSERT_NE(pos, nullptr);
    odd.back() = kAlphabet[(pos - kAlphabet) ^ 1];
    malformed.push_back(odd);
  }
  const int64_t before = store_->calls();
  for (const std::string& bad : malformed) {
    ExpectUnauthenticated(AuthStatus(bad), "invalid access token");
    ExpectUnauthenticated(service_->Refresh(bad).status());
    ExpectUnauthenticated(service_->Logout(bad));
  }
  EXPECT_EQ(store_->calls(), before);

  // A well-formed token with one character changed is unknown.
  for (size_t i : {size_t{5}, size_t{20}, size_t{46}}) {
    std::string flipped = t;
    flipped[i] = flipped[i] == 'A' ? 'B' : 'A';
    ExpectUnauthenticated(AuthStatus(flipped), "invalid access token");
  }
  EXPECT_TRUE(service_->Authenticate(t, kAudience).ok());
}

TEST_F(AccountServiceTest, TokenKindsAreNotInterchangeable) {
  Create("alice");
  const TokenPair pair = MustLogin("alice");
  // A refresh token is not an access token, with or without its prefix.
  ExpectUnauthenticated(AuthStatus(pair.refresh_token), "invalid access token");
  ExpectUnauthenticated(AuthStatus("mva1." + pair.refresh_token.substr(5)), "invalid access token");
  auto cold = ColdService();
  ExpectUnauthenticated(AuthStatus("mva1." + pair.refresh_token.substr(5), kAudience, cold.get()));
  // An access token does not refresh.
  ExpectUnauthenticated(service_->Refresh(pair.access_token).status());
  ExpectUnauthenticated(service_->Refresh("mvr1." + pair.access_token.substr(5)).status());
  // Both still work for their own purpose.
  EXPECT_TRUE(service_->Authenticate(pair.access_token, kAudience).ok());
  EXPECT_TRUE(service_->Refresh(pair.refresh_token).ok());
}

// --- Refresh -----------------------------------------------------------------------

TEST_F(AccountServiceTest, RefreshRotates) {
  Create("alice");
  const TokenPair first = MustLogin("alice");
  Advance(5 * kMinute);
  auto second = service_->Refresh(first.refresh_token);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->session_id, first.session_id);
  EXPECT_NE(second->access_token, first.access_token);
  EXPECT_NE(second->refresh_token, first.refresh_token);
  EXPECT_EQ(second->access_expires_at_ms, Now() + options_.access_ttl_ms);
  EXPECT_EQ(second->refresh_expires_at_ms, Now() + options_.refresh_ttl_ms);
  auto session = service_->Authenticate(second->access_token, kAudience);
  ASSERT_TRUE(session.ok());
  EXPECT_EQ(session->session_id, first.session_id);

  // The previous access token stays valid until its own expiry.
  EXPECT_TRUE(service_->Authenticate(first.access_token, kAudience).ok());
  Advance(options_.access_ttl_ms - 5 * kMinute);
  ExpectUnauthenticated(AuthStatus(first.access_token), "access token expired");
  EXPECT_TRUE(service_->Authenticate(second->access_token, kAudience).ok());

  // The chain goes on.
  auto third = service_->Refresh(second->refresh_token);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_TRUE(service_->Authenticate(third->access_token, kAudience).ok());
}

TEST_F(AccountServiceTest, ReusingARotatedRefreshTokenRevokesTheFamily) {
  const CreatedAccount alice = Create("alice");
  const TokenPair first = MustLogin("alice");
  const TokenPair other_session = MustLogin("alice");
  auto second = service_->Refresh(first.refresh_token);
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(service_->Authenticate(second->access_token, kAudience).ok());  // cached

  // The stolen old refresh token is presented again.
  auto reuse = service_->Refresh(first.refresh_token);
  ExpectUnauthenticated(reuse.status());
  // Everything of the family is dead at once, including the newest tokens.
  ExpectUnauthenticated(AuthStatus(second->access_token));
  ExpectUnauthenticated(AuthStatus(first.access_token));
  ExpectUnauthenticated(service_->Refresh(second->refresh_token).status());
  auto cold = ColdService();
  ExpectUnauthenticated(AuthStatus(second->access_token, kAudience, cold.get()));
  // The store records why.
  auto sessions = real_store_->ListSessions(alice.account.account_id);
  ASSERT_TRUE(sessions.ok());
  bool found = false;
  for (const auto& s : *sessions) {
    if (s.session_id == first.session_id) {
      found = true;
      EXPECT_TRUE(s.revoked_at_ms.has_value());
      EXPECT_EQ(s.revoke_reason, "refresh token reuse");
    }
  }
  EXPECT_TRUE(found);
  // Other sessions of the account are untouched.
  EXPECT_TRUE(service_->Authenticate(other_session.access_token, kAudience).ok());
  EXPECT_TRUE(service_->Refresh(other_session.refresh_token).ok());
}

TEST_F(AccountServiceTest, RefreshExpiryIsCappedBySessionAbsoluteExpiry) {
  options_.session_max_ms = 20 * kHour;
  options_.refresh_ttl_ms = 12 * kHour;
  options_.access_ttl_ms = 15 * kMinute;
  Rebuild();
  Create("alice");
  TokenPair pair = MustLogin("alice");
  const int64_t session_end = kStart + 20 * kHour;
  EXPECT_EQ(pair.refresh_expires_at_ms, kStart + 12 * kHour);
  Advance(11 * kHour);
  auto r1 = service_->Refresh(pair.refresh_token);
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EXPECT_EQ(r1->refresh_expires_at_ms, session_end);  // not now + 12 h
  Advance(8 * kHour + 50 * kMinute);                  // 10 minutes before the end
  auto r2 = service_->Refresh(r1->refresh_token);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(r2->refresh_expires_at_ms, session_end);
  EXPECT_EQ(r2->access_expires_at_ms, session_end);  // not now + 15 min
  Advance(10 * kMinute);
  ExpectUnauthenticated(AuthStatus(r2->access_token));
  ExpectUnauthenticated(service_->Refresh(r2->refresh_token).status());
}

TEST_F(AccountServiceTest, ExpiredRefreshToken) {
  Create("alice");
  const TokenPair pair = MustLogin("alice");
  Advance(options_.refresh_ttl_ms);
  ExpectUnauthenticated(service_->Refresh(pair.refresh_token).status(),
                        "invalid, expired or revoked refresh token");
}

// --- Logout and revocation -----------------------------------------------------------

TEST_F(AccountServiceTest, LogoutWithAccessTokenEndsTheFamily) {
  Create("alice");
  const TokenPair pair = MustLogin("alice");
  const TokenPair other = MustLogin("alice");
  ASSERT_TRUE(service_->Authenticate(pair.access_token, kAudience).ok());
  ASSERT_TRUE(service_->Logout(pair.access_token).ok());
  ExpectUnauthenticated(AuthStatus(pair.access_token));
  ExpectUnauthenticated(service_->Refresh(pair.refresh_token).status());
  EXPECT_TRUE(service_->Logout(pair.access_token).ok());  // idempotent
  EXPECT_TRUE(service_->Authenticate(other.access_token, kAudience).ok());
}

TEST_F(AccountServiceTest, LogoutWithRefreshTokenEndsTheFamily) {
  Create("alice");
  const TokenPair pair = MustLogin("alice");
  ASSERT_TRUE(service_->Authenticate(pair.access_token, kAudience).ok());
  ASSERT_TRUE(service_->Logout(pair.refresh_token).ok());
  ExpectUnauthenticated(AuthStatus(pair.access_token));
  ExpectUnauthenticated(service_->Refresh(pair.refresh_token).status());
  // An expired access token can still end its session.
  const TokenPair late = MustLogin("alice");
  Advance(options_.access_ttl_ms + 1);
  ASSERT_TRUE(service_->Logout(late.access_token).ok());
  ExpectUnauthenticated(service_->Refresh(late.refresh_token).status());
  // Unknown but well-formed tokens.
  ExpectUnauthenticated(service_->Logout("mva1." + std::string(43, 'A')));
}

TEST_F(AccountServiceTest, AdminRevocationTakesEffectAtOnce) {
  const CreatedAccount alice = Create("alice");
  const CreatedAccount bob = Create("bob.b");
  const TokenPair a1 = MustLogin("alice");
  const TokenPair a2 = MustLogin("alice");
  const TokenPair b1 = MustLogin("bob.b");
  for (const auto* p : {&a1, &a2, &b1}) {
    ASSERT_TRUE(service_->Authenticate(p->access_token, kAudience).ok());  // warm
  }
  ASSERT_TRUE(service_->RevokeAllSessions(alice.account.account_id).ok());
  ExpectUnauthenticated(AuthStatus(a1.access_token));
  ExpectUnauthenticated(AuthStatus(a2.access_token));
  ExpectUnauthenticated(service_->Refresh(a1.refresh_token).status());
  EXPECT_TRUE(service_->Authenticate(b1.access_token, kAudience).ok());
  EXPECT_EQ(service_->RevokeAllSessions(NewRandomId()).code(), StatusCode::kNotFound);
  // Logging in again works.
  EXPECT_TRUE(service_->Authenticate(MustLogin("alice").access_token, kAudience).ok());
}

TEST_F(AccountServiceTest, DisabledAccount) {
  const CreatedAccount alice = Create("alice");
  const TokenPair pair = MustLogin("alice");
  ASSERT_TRUE(service_->Authenticate(pair.access_token, kAudience).ok());
  ASSERT_TRUE(service_->SetDisabled(alice.account.account_id, true).ok());
  ExpectUnauthenticated(AuthStatus(pair.access_token));
  ExpectUnauthenticated(service_->Refresh(pair.refresh_token).status());
  EXPECT_TRUE(service_->GetAccount(alice.account.account_id)->disabled);

  auto login = Login("alice");
  EXPECT_EQ(login.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(login.status().message(), "account is disabled");
  // Only the right password learns that the account is disabled.
  ExpectUnauthenticated(Login("alice", kOtherPassword).status(), "invalid username or password");

  ASSERT_TRUE(service_->SetDisabled(alice.account.account_id, false).ok());
  EXPECT_TRUE(service_->Authenticate(MustLogin("alice").access_token, kAudience).ok());
  ExpectUnauthenticated(AuthStatus(pair.access_token));  // old sessions stay ended
  EXPECT_EQ(service_->SetDisabled(NewRandomId(), true).code(), StatusCode::kNotFound);
}

TEST_F(AccountServiceTest, RoleChangeIsVisibleOnNextAuthenticate) {
  const CreatedAccount nurse = Create("nurse.joy", {"nurse"});
  const TokenPair pair = MustLogin("nurse.joy");
  ASSERT_EQ(service_->Authenticate(pair.access_token, kAudience)->account.roles,
            std::vector<std::string>{"nurse"});
  ASSERT_TRUE(service_->SetRoles(nurse.account.account_id, {"nurse", "auditor"}).ok());
  auto after = service_->Authenticate(pair.access_token, kAudience);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->account.roles, (std::vector<std::string>{"nurse", "auditor"}));
  EXPECT_EQ(service_->GetAccount(nurse.account.account_id)->roles,
            (std::vector<std::string>{"nurse", "auditor"}));

  EXPECT_EQ(service_->SetRoles(nurse.account.account_id, {"wizard"}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->SetRoles(nurse.account.account_id, {}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->SetRoles(NewRandomId(), {"nurse"}).code(), StatusCode::kNotFound);
  // An MFA role needs an enrolled second factor first.
  EXPECT_EQ(service_->SetRoles(nurse.account.account_id, {"doctor"}).code(),
            StatusCode::kFailedPrecondition);
  auto totp = service_->ResetTotp(nurse.account.account_id);
  ASSERT_TRUE(totp.ok());
  EXPECT_TRUE(service_->SetRoles(nurse.account.account_id, {"doctor"}).ok());
}

// --- Passwords --------------------------------------------------------------------------

TEST_F(AccountServiceTest, ResetPasswordRevokesSessionsAndClearsLockout) {
  const CreatedAccount alice = Create("alice");
  const TokenPair pair = MustLogin("alice");
  ASSERT_TRUE(service_->Authenticate(pair.access_token, kAudience).ok());
  // Lock the username.
  for (int i = 0; i < options_.lockout_after_failures; ++i) {
    (void)Login("alice", kOtherPassword);
    Advance(options_.lockout_ms / 10);
  }
  ASSERT_EQ(Login("alice").status().code(), StatusCode::kResourceExhausted);

  EXPECT_EQ(service_->ResetPassword(alice.account.account_id, "weak").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->ResetPassword(alice.account.account_id, "Alice-Password-77").code(),
            StatusCode::kInvalidArgument);  // contains the username
  ASSERT_TRUE(service_->ResetPassword(alice.account.account_id, kOtherPassword).ok());
  ExpectUnauthenticated(AuthStatus(pair.access_token));
  ExpectUnauthenticated(service_->Refresh(pair.refresh_token).status());
  ExpectUnauthenticated(Login("alice", kPassword).status(), "invalid username or password");
  EXPECT_TRUE(Login("alice", kOtherPassword).ok());
  EXPECT_EQ(service_->ResetPassword(NewRandomId(), kOtherPassword).code(), StatusCode::kNotFound);
}

TEST_F(AccountServiceTest, ChangePassword) {
  const CreatedAccount alice = Create("alice");
  const std::string& id = alice.account.account_id;
  const TokenPair pair = MustLogin("alice");
  ExpectUnauthenticated(service_->ChangePassword(id, kOtherPassword, "Brand-New-Secret-1"),
                        "current password is incorrect");
  EXPECT_EQ(service_->ChangePassword(id, kPassword, "weak").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->ChangePassword(id, kPassword, kPassword).code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(service_->ChangePassword(id, kPassword, kOtherPassword).ok());
  ExpectUnauthenticated(Login("alice", kPassword).status());
  EXPECT_TRUE(Login("alice", kOtherPassword).ok());
  // The caller's own session is kept.
  EXPECT_TRUE(service_->Authenticate(pair.access_token, kAudience).ok());
  EXPECT_EQ(service_->ChangePassword(NewRandomId(), kPassword, kOtherPassword).code(),
            StatusCode::kNotFound);
}

TEST_F(AccountServiceTest, ChangePasswordFailuresCountTowardsTheLockout) {
  const CreatedAccount alice = Create("alice");
  for (int i = 0; i < options_.throttle_after_failures + 1; ++i) {
    ExpectUnauthenticated(
        service_->ChangePassword(alice.account.account_id, kOtherPassword, "Brand-New-Secret-1"));
  }
  EXPECT_EQ(
      service_->ChangePassword(alice.account.account_id, kPassword, "Brand-New-Secret-1").code(),
      StatusCode::kResourceExhausted);
  EXPECT_EQ(Login("alice").status().code(), StatusCode::kResourceExhausted);
}

TEST_F(AccountServiceTest, NewHashParametersAreAppliedOnLogin) {
  const CreatedAccount alice = Create("alice");
  const std::string old_hash = real_store_->GetAccount(alice.account.account_id)->password_hash;
  options_.argon2.ops_limit = crypto_pwhash_argon2id_OPSLIMIT_MIN + 1;
  Rebuild();
  ASSERT_TRUE(Login("alice").ok());
  const std::string new_hash = real_store_->GetAccount(alice.account.account_id)->password_hash;
  EXPECT_NE(new_hash, old_hash);
  EXPECT_NE(new_hash.find(",t=2,"), std::string::npos) << new_hash;
  EXPECT_TRUE(Login("alice").ok());
}

// --- MFA ---------------------------------------------------------------------------------

TEST_F(AccountServiceTest, DoctorNeedsAValidFreshCode) {
  const CreatedAccount doc = Create("dr.house", {"doctor"});
  const Bytes secret = Secret(doc);

  auto none = Login("dr.house");
  ExpectUnauthenticated(none.status(), "a one-time code is required");
  auto wrong = Login("dr.house", kPassword, Code(secret, 5));
  ExpectUnauthenticated(wrong.status(), "invalid one-time code");
  auto junk = Login("dr.house", kPassword, "12ab56");
  ExpectUnauthenticated(junk.status(), "invalid one-time code");
  // A right code with a wrong password is still a wrong password.
  ExpectUnauthenticated(Login("dr.house", kOtherPassword, Code(secret)).status(),
                        "invalid username or password");

  const std::string code = Code(secret);
  auto ok = Login("dr.house", kPassword, code);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  auto session = service_->Authenticate(ok->access_token, kAudience);
  ASSERT_TRUE(session.ok());
  EXPECT_TRUE(session->mfa_verified);
  // Refreshing keeps the session's MFA status.
  auto refreshed = service_->Refresh(ok->refresh_token);
  ASSERT_TRUE(refreshed.ok());
  EXPECT_TRUE(service_->Authenticate(refreshed->access_token, kAudience)->mfa_verified);

  // Replay: the same code, still inside its window, is refused...
  Advance(10 * 1000);
  ExpectUnauthenticated(Login("dr.house", kPassword, code).status(), "invalid one-time code");
  // ... and so is the previous step's code, still inside the window.
  ExpectUnauthenticated(Login("dr.house", kPassword, Code(secret, -1)).status(),
                        "invalid one-time code");
  // The next step's code is fresh.
  Advance(options_.totp.step_seconds * 1000);
  auto next = Login("dr.house", kPassword, Code(secret));
  ASSERT_TRUE(next.ok()) << next.status().ToString();
}

TEST_F(AccountServiceTest, ReplayIsRefusedAcrossServiceInstances) {
  const CreatedAccount doc = Create("dr.house", {"doctor"});
  const std::string code = Code(Secret(doc));
  ASSERT_TRUE(Login("dr.house", kPassword, code).ok());
  auto cold = ColdService();
  ExpectUnauthenticated(Login("dr.house", kPassword, code, kAudience, cold.get()).status(),
                        "invalid one-time code");
}

TEST_F(AccountServiceTest, PatientTotpIsOptional) {
  Create("plain.patient");
  auto plain = Login("plain.patient", kPassword, "123456");  // a code is ignored
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(service_->Authenticate(plain->access_token, kAudience)->mfa_verified);

  const CreatedAccount careful = Create("careful.patient", {"patient"}, true);
  ExpectUnauthenticated(Login("careful.patient").status(), "a one-time code is required");
  auto ok = Login("careful.patient", kPassword, Code(Secret(careful)));
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(service_->Authenticate(ok->access_token, kAudience)->mfa_verified);
}

// --- Account recovery -------------------------------------------------------

TEST_F(AccountServiceTest, RecoveryNeedsASecondPersonAndThePersonalWait) {
  const CreatedAccount alice = Create("alice");  // a patient: personal
  const std::string id = alice.account.account_id;
  const TokenPair pair = MustLogin("alice");
  const std::string admin_a = Create("admin.a", {"admin"}).account.account_id;
  const std::string admin_b = Create("admin.b", {"admin"}).account.account_id;
  Advance(1);
  // Reason: 10..500 characters of text.
  for (std::string_view bad :
       {"", "too short", "line\nbreak in the reason", "\xff\xfe invalid utf-8 reason"}) {
    EXPECT_EQ(service_->RequestRecovery(id, admin_a, "", bad).status().code(),
              StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(service_->RequestRecovery(id, admin_a, "", std::string(501, 'x')).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->RequestRecovery(id, id, "", "I forgot my own password").status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(
      service_->RequestRecovery(NewRandomId(), admin_a, "", "unknown account here").status().code(),
      StatusCode::kNotFound);
  auto opened = service_->RequestRecovery(id, admin_a, "inst", "  lost the phone and laptop ");
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->reason, "lost the phone and laptop");
  EXPECT_EQ(opened->not_before_ms, Now() + options_.recovery_wait_ms);
  EXPECT_EQ(service_->RequestRecovery(id, admin_b, "inst", "someone else asks too").status().code(),
            StatusCode::kAlreadyExists);
  auto got = service_->GetRecovery(id);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->requested_by, admin_a);
  EXPECT_EQ((*got)->institution_id, "inst");
  EXPECT_EQ((*got)->reason, "lost the phone and laptop");

  // Not the requester, not the account, not before the wait.
  EXPECT_EQ(service_->ApproveRecovery(id, admin_a).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(service_->ApproveRecovery(id, id).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(service_->ApproveRecovery(id, "").status().code(), StatusCode::kPermissionDenied);
  // Nor an account that did not exist when the request was made (a puppet),
  // nor an id that is no account.
  Advance(1);
  const std::string puppet = Create("puppet.admin", {"admin"}).account.account_id;
  Advance(options_.recovery_wait_ms);
  EXPECT_EQ(service_->ApproveRecovery(id, puppet).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(service_->ApproveRecovery(id, NewRandomId()).status().code(),
            StatusCode::kPermissionDenied);
  Advance(-options_.recovery_wait_ms - 1);
  Advance(options_.recovery_wait_ms - 1);
  EXPECT_EQ(service_->ApproveRecovery(id, admin_b).status().code(),
            StatusCode::kFailedPrecondition);
  // Meanwhile nothing changed for the person.
  const TokenPair later = MustLogin("alice");
  ASSERT_TRUE(service_->Authenticate(later.access_token, kAudience).ok());
  Advance(1);
  auto creds = service_->ApproveRecovery(id, admin_b);
  ASSERT_TRUE(creds.ok()) << creds.status().ToString();
  EXPECT_TRUE(CheckPasswordStrength(creds->temporary_password, "alice", {}).ok());
  EXPECT_TRUE(creds->totp_secret_base32.empty());  // a patient without TOTP
  ExpectUnauthenticated(AuthStatus(later.access_token));
  ExpectUnauthenticated(service_->Refresh(pair.refresh_token).status());
  ExpectUnauthenticated(Login("alice").status());
  EXPECT_TRUE(Login("alice", creds->temporary_password).ok());
  // Closed: nothing to approve or cancel again.
  EXPECT_EQ(service_->ApproveRecovery(id, admin_b).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->CancelRecovery(id, id).code(), StatusCode::kNotFound);
  ASSERT_TRUE(service_->GetRecovery(id).ok());
  EXPECT_FALSE(service_->GetRecovery(id)->has_value());
}

TEST_F(AccountServiceTest, StaffRecoveryHasNoWaitAndReplacesTheSecondFactor) {
  const CreatedAccount doc = Create("doc", {"doctor"});
  const std::string id = doc.account.account_id;
  const std::string admin_b = Create("admin.b", {"admin"}).account.account_id;
  Advance(1);
  auto opened = service_->RequestRecovery(id, "a", "", "forgot the password after leave");
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->not_before_ms, Now());
  auto creds = service_->ApproveRecovery(id, admin_b);
  ASSERT_TRUE(creds.ok()) << creds.status().ToString();
  ASSERT_FALSE(creds->totp_secret_base32.empty());
  EXPECT_NE(creds->totp_secret_base32, doc.totp_secret_base32);
  auto secret = Base32Decode(creds->totp_secret_base32);
  ASSERT_TRUE(secret.ok());
  EXPECT_EQ(Login("doc", creds->temporary_password, Code(Secret(doc))).status().code(),
            StatusCode::kUnauthenticated);
  EXPECT_TRUE(Login("doc", creds->temporary_password, Code(*secret)).ok());
}

TEST_F(AccountServiceTest, TheAccountItselfCancelsItsRecovery) {
  const CreatedAccount alice = Create("alice");
  const std::string id = alice.account.account_id;
  ASSERT_TRUE(service_->RequestRecovery(id, "a", "", "a request alice did not make").ok());
  ASSERT_TRUE(service_->CancelRecovery(id, id).ok());
  Advance(options_.recovery_wait_ms);
  EXPECT_EQ(service_->ApproveRecovery(id, NewRandomId()).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Login("alice").ok());
  // A new one may be opened afterwards.
  EXPECT_TRUE(service_->RequestRecovery(id, "a", "", "now she did lose the phone").ok());
}

// The console (or any process) disabling an account withdraws its recovery:
// the rule lives in the service and the store, not in one HTTP route.
TEST_F(AccountServiceTest, DisablingWithdrawsARecoveryAndADisabledAccountGetsNone) {
  const CreatedAccount alice = Create("alice");
  const std::string id = alice.account.account_id;
  ASSERT_TRUE(service_->RequestRecovery(id, "a", "", "a request before disabling").ok());
  ASSERT_TRUE(ColdService()->SetDisabled(id, true).ok());
  ASSERT_TRUE(service_->GetRecovery(id).ok());
  EXPECT_FALSE(service_->GetRecovery(id)->has_value());
  EXPECT_EQ(service_->RequestRecovery(id, "a", "", "a request while disabled").status().code(),
            StatusCode::kFailedPrecondition);
  ASSERT_TRUE(service_->SetDisabled(id, false).ok());
  EXPECT_TRUE(service_->RequestRecovery(id, "a", "", "a request after enabling").ok());
}

TEST_F(AccountServiceTest, OneAccountPerPatientRecord) {
  NewAccount a;
  a.username = "first";
  a.display_name = "First";
  a.password = kPassword;
  a.roles = {"patient"};
  a.patient_id = NewRandomId();
  ASSERT_TRUE(service_->CreateAccount(a).ok());
  a.username = "second";
  EXPECT_EQ(service_->CreateAccount(a).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(service_->FindAccountByUsername("second").status().code(), StatusCode::kNotFound);
}

TEST_F(AccountServiceTest, ResetTotpRevokesSessionsAndReplacesTheSecret) {
  const CreatedAccount doc = Create("dr.house", {"doctor"});
  const Bytes old_secret = Secret(doc);
  const TokenPair pair = MustLogin("dr.house", Code(old_secret));
  ASSERT_TRUE(service_->Authenticate(pair.access_token, kAudience).ok());
  auto reset = service_->ResetTotp(doc.account.account_id);
  ASSERT_TRUE(reset.ok()) << reset.status().ToString();
  EXPECT_TRUE(reset->account.totp_enabled);
  EXPECT_NE(reset->totp_secret_base32, doc.totp_secret_base32);
  EXPECT_NE(reset->otpauth_uri.find(reset->totp_secret_base32), std::string::npos);
  ExpectUnauthenticated(AuthStatus(pair.access_token));
  Advance(options_.totp.step_seconds * 1000 * 3);
  const Bytes new_secret = Secret(*reset);
  if (Code(old_secret) != Code(new_secret)) {
    ExpectUnauthenticated(Login("dr.house", kPassword, Code(old_secret)).status(),
                          "invalid one-time code");
  }
  EXPECT_TRUE(Login("dr.house", kPassword, Code(new_secret)).ok());
  EXPECT_EQ(service_->ResetTotp(NewRandomId()).status().code(), StatusCode::kNotFound);
}

// --- Throttling and lockout ----------------------------------------------------------------

// Runs the documented throttle/lockout schedule (default options) against
// `username` with a wrong password and returns every answer in order.
std::vector<std::string> RunSchedule(const std::function<Status(std::string_view)>& login,
                                     const std::function<void(int64_t)>& advance) {
  std::vector<std::string> answers;
  auto attempt = [&](std::string_view password) { answers.push_back(login(password).ToString()); };
  for (int i = 0; i < 4; ++i) {
    attempt(kOtherPassword);  // failures 1..4, the 4th sets a 1 s wait
  }
  attempt(kOtherPassword);  // refused: wait 1 s
  advance(1000);
  attempt(kOtherPassword);  // failure 5: wait 2 s
  attempt(kOtherPassword);  // refused: 2 s
  advance(1000);
  attempt(kOtherPassword);  // refused: 1 s
  advance(1000);
  for (int64_t wait : {4000, 8000, 16000, 32000}) {
    attempt(kOtherPassword);  // failures 6..9
    attempt(kOtherPassword);  // refused
    advance(wait);
  }
  attempt(kOtherPassword);  // failure 10: locked for 15 min
  attempt(kOtherPassword);  // refused: 900 s
  advance(899 * 1000);
  attempt(kOtherPassword);  // refused: 1 s
  advance(1000);
  return answers;
}

TEST_F(AccountServiceTest, ThrottlingThenLockoutThenUnlock) {
  Create("alice");
  auto login = [&](std::string_view pw) { return Login("alice", pw).status(); };
  auto advance = [&](int64_t ms) { Advance(ms); };
  const std::vector<std::string> answers = RunSchedule(login, advance);
  const std::string bad = "UNAUTHENTICATED: invalid username or password";
  auto wait = [](int s) {
    return "RESOURCE_EXHAUSTED: too many failed attempts; try again in " + std::to_string(s) + " s";
  };
  const std::vector<std::string> expected = {
      bad, bad,     bad, bad,      wait(1), bad,      wait(2), wait(1),   bad,     wait(4),
      bad, wait(8), bad, wait(16), bad,     wait(32), bad,     wait(900), wait(1),
  };
  EXPECT_EQ(answers, expected);
  // After the lockout the right password works, and resets the count.
  auto ok = Login("alice");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  for (int i = 0; i < options_.throttle_after_failures; ++i) {
    ExpectUnauthenticated(Login("alice", kOtherPassword).status(), "invalid username or password");
  }
  EXPECT_TRUE(Login("alice").ok());
}

TEST_F(AccountServiceTest, StatusCodeNamesAreAsExpected) {
  // Guards the strings used by the schedule test.
  EXPECT_EQ(Status::ResourceExhausted("x").ToString(), "RESOURCE_EXHAUSTED: x");
  EXPECT_EQ(Status::Unauthenticated("x").ToString(), "UNAUTHENTICATED: x");
}

TEST_F(AccountServiceTest, ThrottledAttemptsDoNotCheckThePassword) {
  Create("alice");
  for (int i = 0; i <= options_.throttle_after_failures; ++i) {
    (void)Login("alice", kOtherPassword);
  }
  const uint64_t before = PasswordVerificationCount();
  auto r = Login("alice", kPassword);  // right password, but waiting
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(PasswordVerificationCount(), before);
}

TEST_F(AccountServiceTest, UnknownUserGetsTheIdenticalSchedule) {
  Create("alice");
  auto advance = [&](int64_t ms) { Advance(ms); };
  const auto known =
      RunSchedule([&](std::string_view pw) { return Login("alice", pw).status(); }, advance);
  const auto unknown =
      RunSchedule([&](std::string_view pw) { return Login("nobody", pw).status(); }, advance);
  EXPECT_EQ(known, unknown);
  // Other usernames are unaffected by either lockout... until they fail.
  Create("carol");
  EXPECT_TRUE(Login("carol").ok());
}

TEST_F(AccountServiceTest, LockoutCountsPerNormalisedUsername) {
  Create("alice");
  for (int i = 0; i <= options_.throttle_after_failures; ++i) {
    (void)Login(i % 2 ? "ALICE" : " alice ", kOtherPassword);
  }
  EXPECT_EQ(Login("Alice").status().code(), StatusCode::kResourceExhausted);
}

TEST_F(AccountServiceTest, WrongCodesCountAsFailures) {
  const CreatedAccount doc = Create("dr.house", {"doctor"});
  const Bytes secret = Secret(doc);
  for (int i = 0; i <= options_.throttle_after_failures; ++i) {
    ExpectUnauthenticated(Login("dr.house", kPassword, Code(secret, 7)).status(),
                          "invalid one-time code");
  }
  EXPECT_EQ(Login("dr.house", kPassword, Code(secret)).status().code(),
            StatusCode::kResourceExhausted);
  Advance(1000);
  EXPECT_TRUE(Login("dr.house", kPassword, Code(secret)).ok());
}

TEST_F(AccountServiceTest, OldFailuresAreForgotten) {
  Create("alice");
  for (int i = 0; i < options_.throttle_after_failures; ++i) {
    (void)Login("alice", kOtherPassword);
  }
  Advance(options_.lockout_ms);
  // Counting starts over: this failure is the first, with no wait after it.
  ExpectUnauthenticated(Login("alice", kOtherPassword).status(), "invalid username or password");
  EXPECT_TRUE(Login("alice").ok());
}

// --- Secrets at rest and in messages -----------------------------------------------------

TEST_F(AccountServiceTest, NoPlaintextUsernameOrDisplayNameInTheDatabase) {
  const std::string canary_user = "canary.zq7x@example.org";
  const std::string canary_name = "Canary Displayname Qx9";
  NewAccount a;
  a.username = canary_user;
  a.display_name = canary_name;
  a.password = kPassword;
  a.roles = {"doctor"};
  auto created = service_->CreateAccount(a);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const Bytes secret = Secret(*created);
  auto pair = Login(canary_user, kPassword, Code(secret));
  ASSERT_TRUE(pair.ok()) << pair.status().ToString();
  (void)Login(canary_user, kOtherPassword);
  ASSERT_TRUE(service_->ResetPassword(created->account.account_id, kOtherPassword).ok());
  for (const std::string& needle :
       {canary_user, canary_name, std::string("canary.zq7x"), created->totp_secret_base32,
        pair->access_token.substr(5), pair->refresh_token.substr(5), std::string(kPassword),
        std::string(kOtherPassword)}) {
    EXPECT_TRUE(FilesContaining(dir_.path(), needle).empty()) << needle;
  }
  EXPECT_TRUE(FilesContaining(dir_.path(), std::string(AsString(secret))).empty());
  service_.reset();
  store_.reset();
  real_store_.reset();
  EXPECT_TRUE(FilesContaining(dir_.path(), canary_user).empty());
  EXPECT_TRUE(FilesContaining(dir_.path(), canary_name).empty());
}

TEST_F(AccountServiceTest, SealedProfileIsBoundToItsAccount) {
  const CreatedAccount alice = Create("alice");
  const CreatedAccount bob = Create("bob.b");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path().c_str(), &db), SQLITE_OK);
  const std::string sql =
      "UPDATE accounts SET sealed_profile = (SELECT sealed_profile FROM "
      "accounts WHERE account_id = '" +
      bob.account.account_id + "') WHERE account_id = '" + alice.account.account_id + "'";
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EQ(service_->GetAccount(alice.account.account_id).status().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(service_->GetAccount(bob.account.account_id).ok());
}

TEST_F(AccountServiceTest, ErrorsNeverCarrySecretsOrUsernames) {
  const CreatedAccount doc = Create("dr.house", {"doctor"});
  const Bytes secret = Secret(doc);
  const TokenPair pair = MustLogin("dr.house", Code(secret));
  std::vector<Status> errors = {
      Login("dr.house", kOtherPassword).status(),
      Login("someone.else", kOtherPassword).status(),
      Login("dr.house", kPassword, "654321").status(),
      Login("dr.house", kPassword, Code(secret)).status(),  // replay
      service_->Authenticate(pair.refresh_token, kAudience).status(),
      service_->Authenticate(pair.access_token, "other").status(),
      service_->Refresh(pair.access_token).status(),
      service_->ChangePassword(doc.account.account_id, kOtherPassword, kPassword),
  };
  for (int i = 0; i < 12; ++i) {
    errors.push_back(Login("dr.house", kOtherPassword).status());
  }
  for (const Status& st : errors) {
    ASSERT_FALSE(st.ok());
    for (const std::string& secret_text :
         {std::string("dr.house"), std::string("someone.else"), std::string(kPassword),
          std::string(kOtherPassword), std::string("654321"), pair.access_token.substr(5),
          pair.refresh_token.substr(5), doc.totp_secret_base32}) {
      EXPECT_EQ(st.message().find(secret_text), std::string::npos)
          << st.ToString() << " contains " << secret_text;
    }
  }
}

// --- Cache -----------------------------------------------------------------------------------

TEST_F(AccountServiceTest, BoundedCacheStillAuthenticatesEveryone) {
  options_.token_cache_capacity = 4;
  Rebuild();
  Create("alice");
  std::vector<TokenPair> pairs;
  for (int i = 0; i < 12; ++i) {
    pairs.push_back(MustLogin("alice"));
  }
  for (int round = 0; round < 3; ++round) {
    for (const TokenPair& p : pairs) {
      auto s = service_->Authenticate(p.access_token, kAudience);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      EXPECT_EQ(s->session_id, p.session_id);
    }
  }
  // Revocation still reaches evicted and cached entries alike.
  ASSERT_TRUE(service_->Logout(pairs[3].access_token).ok());
  ExpectUnauthenticated(AuthStatus(pairs[3].access_token));
  EXPECT_TRUE(service_->Authenticate(pairs[4].access_token, kAudience).ok());
}

TEST_F(AccountServiceTest, CacheDisabledStillWorks) {
  options_.token_cache_capacity = 0;
  Rebuild();
  const CreatedAccount alice = Create("alice");
  const TokenPair pair = MustLogin("alice");
  const int64_t before = store_->calls();
  EXPECT_TRUE(service_->Authenticate(pair.access_token, kAudience).ok());
  EXPECT_GT(store_->calls(), before);  // every call reads the store
  ASSERT_TRUE(service_->RevokeAllSessions(alice.account.account_id).ok());
  ExpectUnauthenticated(AuthStatus(pair.access_token));
}

// --- Concurrency -----------------------------------------------------------------------------

TEST_F(AccountServiceTest, ConcurrentLoginsAndAuthentications) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 8;
  for (int t = 0; t < kThreads; ++t) {
    Create("user" + std::to_string(t));
  }
  const CreatedAccount shared = Create("shared.user");
  const TokenPair shared_pair = MustLogin("shared.user");
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string name = "user" + std::to_string(t);
      for (int r = 0; r < kRounds; ++r) {
        auto pair = Login(name);
        if (!pair.ok()) {
          failures.fetch_add(1);
          continue;
        }
        for (int k = 0; k < 20; ++k) {
          auto s = service_->Authenticate(pair->access_token, kAudience);
          if (!s.ok() || s->account.username != name) {
            failures.fetch_add(1);
          }
          auto sh = service_->Authenticate(shared_pair.access_token, kAudience);
          if (!sh.ok() || sh->account.username != "shared.user") {
            failures.fetch_add(1);
          }
        }
        auto refreshed = service_->Refresh(pair->refresh_token);
        if (!refreshed.ok() || !service_->Authenticate(refreshed->access_token, kAudience).ok()) {
          failures.fetch_add(1);
        }
        if (!service_->Logout(refreshed.ok() ? refreshed->access_token : pair->access_token).ok()) {
          failures.fetch_add(1);
        }
        if (refreshed.ok() && service_->Authenticate(refreshed->access_token, kAudience).ok()) {
          failures.fetch_add(1);  // logout must be immediate
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(failures.load(), 0);
  // A revocation racing with cache fills never leaves a live entry behind.
  ASSERT_TRUE(service_->RevokeAllSessions(shared.account.account_id).ok());
  ExpectUnauthenticated(AuthStatus(shared_pair.access_token));
}

TEST_F(AccountServiceTest, SnapshotReadBeforeARevocationIsNotCachedAfterIt) {
  const CreatedAccount alice = Create("alice");
  const TokenPair pair = MustLogin("alice");
  auto cold = ColdService();
  // The cold service reads token, session and account from the store; just
  // before the account read returns, an admin revokes everything.
  store_->before_get_account_returns = [&] {
    ASSERT_TRUE(service_->RevokeAllSessions(alice.account.account_id).ok());
    ASSERT_TRUE(cold->RevokeAllSessions(alice.account.account_id).ok());
  };
  (void)cold->Authenticate(pair.access_token, kAudience);  // raced: either answer
  EXPECT_EQ(store_->before_get_account_returns, nullptr);  // the hook ran
  // Afterwards the revocation must hold: the stale snapshot was not cached.
  ExpectUnauthenticated(AuthStatus(pair.access_token, kAudience, cold.get()));
  ExpectUnauthenticated(AuthStatus(pair.access_token));
}

TEST_F(AccountServiceTest, RevocationRacingWithAuthenticationIsFinal) {
  const CreatedAccount alice = Create("alice");
  for (int round = 0; round < 5; ++round) {
    const TokenPair pair = MustLogin("alice");
    auto cold = ColdService();  // every reader thread starts from a miss
    std::atomic<bool> stop{false};
    std::vector<std::thread> readers;
    for (int t = 0; t < 3; ++t) {
      readers.emplace_back([&] {
        while (!stop.load()) {
          (void)cold->Authenticate(pair.access_token, kAudience);
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_TRUE(cold->RevokeAllSessions(alice.account.account_id).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    stop.store(true);
    for (auto& th : readers) {
      th.join();
    }
    ExpectUnauthenticated(AuthStatus(pair.access_token, kAudience, cold.get()));
  }
}

}  // namespace
}  // namespace medvault::auth
