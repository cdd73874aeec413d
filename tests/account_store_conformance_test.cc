// The AccountStore contract (store/account_store.h), run against every
// backend. A new backend (PostgreSQL) adds one AccountStoreBackend to
// kBackends below; what only SQLite can show (migrations, file modes, the
// shared database file, what reaches the files) stays in
// sqlite_account_store_test.cc.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "account_test_util.h"
#include "store/account_store.h"
#include "store/store.h"
#include "test_util.h"

namespace medvault::store {
namespace {

namespace fs = std::filesystem;
using store_testing::accounts::Filled;
using store_testing::accounts::Id;
using store_testing::accounts::MakeAccount;
using store_testing::accounts::MakeSession;
using store_testing::accounts::MakeToken;

struct AccountStoreBackend {
  std::string name;
  // Opens the store kept under `dir` (a fresh temporary directory per test);
  // opening the same `dir` again is a reopen.
  std::function<Result<std::unique_ptr<AccountStore>>(const fs::path& dir)> open;
};

// GoogleTest prints a parameter by its name (test names stay stable).
void PrintTo(const AccountStoreBackend& backend, std::ostream* os) { *os << backend.name; }

const AccountStoreBackend kBackends[] = {
    {"sqlite", [](const fs::path& dir) { return OpenSqliteAccountStore(dir / "metadata.db"); }},
};

class AccountStoreConformance : public ::testing::TestWithParam<AccountStoreBackend> {
 protected:
  void SetUp() override { Reopen(); }
  void Reopen() {
    store_.reset();
    auto opened = GetParam().open(dir_.path());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }
  // An institution with a department, for affiliation tests.
  void MakeInstitutions() {
    ASSERT_TRUE(store_->CreateInstitution({Id(1), "St Mary", 10}).ok());
    ASSERT_TRUE(store_->CreateInstitution({Id(2), "Charité", 11}).ok());
    ASSERT_TRUE(store_->CreateDepartment({Id(11), Id(1), "Cardiology", 12}).ok());
    ASSERT_TRUE(store_->CreateDepartment({Id(21), Id(2), "Cardiology", 13}).ok());
  }

  medvault::testing::TempDir dir_;
  std::unique_ptr<AccountStore> store_;
};

// --- Institutions and departments -------------------------------------------

TEST_P(AccountStoreConformance, InstitutionsRoundTripAndSortByName) {
  MakeInstitutions();
  auto got = store_->GetInstitution(Id(1));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->name, "St Mary");
  EXPECT_EQ(got->created_at_ms, 10);
  auto list = store_->ListInstitutions();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "Charité");
  EXPECT_EQ((*list)[1].name, "St Mary");
  EXPECT_EQ(store_->GetInstitution(Id(3)).status().code(), StatusCode::kNotFound);
}

TEST_P(AccountStoreConformance, InstitutionNamesAndIdsAreUnique) {
  ASSERT_TRUE(store_->CreateInstitution({Id(1), "St Mary", 10}).ok());
  Status st = store_->CreateInstitution({Id(2), "St Mary", 11});
  EXPECT_EQ(st.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(st.message(), "an institution with this name already exists");
  EXPECT_EQ(store_->CreateInstitution({Id(1), "Other", 11}).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->CreateInstitution({Id(3), "", 11}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CreateInstitution({"", "X", 11}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ListInstitutions()->size(), 1u);
}

TEST_P(AccountStoreConformance, Departments) {
  MakeInstitutions();
  EXPECT_EQ(store_->CreateDepartment({Id(12), Id(9), "Radiology", 1}).code(),
            StatusCode::kNotFound);
  // Same name in the same institution: refused; in another: fine (above).
  EXPECT_EQ(store_->CreateDepartment({Id(12), Id(1), "Cardiology", 1}).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->CreateDepartment({Id(11), Id(1), "Radiology", 1}).code(),
            StatusCode::kAlreadyExists);
  ASSERT_TRUE(store_->CreateDepartment({Id(12), Id(1), "Anaesthesia", 1}).ok());
  auto mine = store_->ListDepartments(Id(1));
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->size(), 2u);
  EXPECT_EQ((*mine)[0].name, "Anaesthesia");
  EXPECT_EQ((*mine)[1].name, "Cardiology");
  EXPECT_EQ(store_->ListDepartments("")->size(), 3u);
  EXPECT_EQ(store_->ListDepartments(Id(9))->size(), 0u);
  auto dept = store_->GetDepartment(Id(21));
  ASSERT_TRUE(dept.ok());
  EXPECT_EQ(dept->institution_id, Id(2));
  EXPECT_EQ(store_->GetDepartment(Id(99)).status().code(), StatusCode::kNotFound);
}

// --- Accounts ----------------------------------------------------------------

TEST_P(AccountStoreConformance, AccountRoundTrip) {
  MakeInstitutions();
  AccountRow a = MakeAccount(1);
  a.institution_id = Id(1);
  a.department_id = Id(11);
  a.patient_id = Id(77);
  a.sealed_totp_secret = Filled(9, 60);
  a.totp_enabled = true;
  a.last_totp_step = 5;
  ASSERT_TRUE(store_->CreateAccount(a).ok());
  for (auto got :
       {store_->GetAccount(a.account_id), store_->FindAccountByUsernameIndex(a.username_index)}) {
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->account_id, a.account_id);
    EXPECT_EQ(got->username_index, a.username_index);
    EXPECT_EQ(got->sealed_profile, a.sealed_profile);
    EXPECT_EQ(got->password_hash, a.password_hash);
    EXPECT_EQ(got->roles, a.roles);
    EXPECT_EQ(got->institution_id, Id(1));
    EXPECT_EQ(got->department_id, Id(11));
    EXPECT_EQ(got->patient_id, Id(77));
    EXPECT_EQ(got->sealed_totp_secret, a.sealed_totp_secret);
    EXPECT_TRUE(got->totp_enabled);
    EXPECT_EQ(got->last_totp_step, 5);
    EXPECT_FALSE(got->disabled);
    EXPECT_EQ(got->created_at_ms, a.created_at_ms);
  }
  // Empty optional fields come back empty.
  AccountRow b = MakeAccount(2);
  b.roles = {"patient"};
  ASSERT_TRUE(store_->CreateAccount(b).ok());
  auto got = store_->GetAccount(b.account_id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->institution_id, "");
  EXPECT_EQ(got->department_id, "");
  EXPECT_EQ(got->patient_id, "");
  EXPECT_TRUE(got->sealed_totp_secret.empty());
  EXPECT_EQ(got->roles, std::vector<std::string>{"patient"});
  EXPECT_EQ(store_->GetAccount(Id(4242)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->FindAccountByUsernameIndex(Filled(200)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->FindAccountByUsernameIndex({}).status().code(), StatusCode::kNotFound);
}

TEST_P(AccountStoreConformance, UsernameIndexAndAccountIdAreUnique) {
  ASSERT_TRUE(store_->CreateAccount(MakeAccount(1)).ok());
  AccountRow same_name = MakeAccount(2);
  same_name.username_index = MakeAccount(1).username_index;
  Status st = store_->CreateAccount(same_name);
  EXPECT_EQ(st.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(st.message(), "username is already taken");
  AccountRow same_id = MakeAccount(3);
  same_id.account_id = MakeAccount(1).account_id;
  EXPECT_EQ(store_->CreateAccount(same_id).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->ListAccounts("")->size(), 1u);
}

TEST_P(AccountStoreConformance, AccountAffiliationIsChecked) {
  MakeInstitutions();
  AccountRow a = MakeAccount(1);
  a.institution_id = Id(9);
  EXPECT_EQ(store_->CreateAccount(a).code(), StatusCode::kNotFound);
  a.institution_id = Id(1);
  a.department_id = Id(99);
  EXPECT_EQ(store_->CreateAccount(a).code(), StatusCode::kNotFound);
  a.department_id = Id(21);  // belongs to institution 2
  EXPECT_EQ(store_->CreateAccount(a).code(), StatusCode::kInvalidArgument);
  a.institution_id = "";
  EXPECT_EQ(store_->CreateAccount(a).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ListAccounts("")->size(), 0u);
}

TEST_P(AccountStoreConformance, MalformedAccountsAreRefused) {
  AccountRow a = MakeAccount(1);
  a.username_index.clear();
  EXPECT_EQ(store_->CreateAccount(a).code(), StatusCode::kInvalidArgument);
  a = MakeAccount(1);
  a.sealed_profile.clear();
  EXPECT_EQ(store_->CreateAccount(a).code(), StatusCode::kInvalidArgument);
  a = MakeAccount(1);
  a.password_hash.clear();
  EXPECT_EQ(store_->CreateAccount(a).code(), StatusCode::kInvalidArgument);
  a = MakeAccount(1);
  a.totp_enabled = true;  // without a secret
  EXPECT_EQ(store_->CreateAccount(a).code(), StatusCode::kInvalidArgument);
  a = MakeAccount(1);
  a.roles = {"doctor,admin"};
  EXPECT_EQ(store_->CreateAccount(a).code(), StatusCode::kInvalidArgument);
  a.roles = {""};
  EXPECT_EQ(store_->CreateAccount(a).code(), StatusCode::kInvalidArgument);
}

TEST_P(AccountStoreConformance, ListAccountsByInstitutionInCreationOrder) {
  MakeInstitutions();
  for (int i = 0; i < 5; ++i) {
    AccountRow a = MakeAccount(i);
    a.institution_id = i % 2 == 0 ? Id(1) : Id(2);
    ASSERT_TRUE(store_->CreateAccount(a).ok());
  }
  auto all = store_->ListAccounts("");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ((*all)[i].account_id, MakeAccount(i).account_id);
  }
  auto first = store_->ListAccounts(Id(1));
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 3u);
  EXPECT_EQ((*first)[1].account_id, MakeAccount(2).account_id);
  EXPECT_EQ(store_->ListAccounts(Id(2))->size(), 2u);
  EXPECT_EQ(store_->ListAccounts(Id(3))->size(), 0u);
}

TEST_P(AccountStoreConformance, AccountUpdates) {
  const AccountRow a = MakeAccount(1);
  ASSERT_TRUE(store_->CreateAccount(a).ok());
  ASSERT_TRUE(store_->SetRoles(a.account_id, {"nurse"}, 50).ok());
  ASSERT_TRUE(store_->SetDisabled(a.account_id, true, 51).ok());
  ASSERT_TRUE(store_->SetPasswordHash(a.account_id, "$argon2id$new", 52).ok());
  ASSERT_TRUE(store_->SetTotp(a.account_id, Filled(3, 60), true, 53).ok());
  auto got = store_->GetAccount(a.account_id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->roles, std::vector<std::string>{"nurse"});
  EXPECT_TRUE(got->disabled);
  EXPECT_EQ(got->password_hash, "$argon2id$new");
  EXPECT_TRUE(got->totp_enabled);
  EXPECT_EQ(got->sealed_totp_secret, Filled(3, 60));
  EXPECT_EQ(got->updated_at_ms, 53);
  ASSERT_TRUE(store_->SetDisabled(a.account_id, false, 54).ok());
  EXPECT_FALSE(store_->GetAccount(a.account_id)->disabled);
  ASSERT_TRUE(store_->SetTotp(a.account_id, {}, false, 55).ok());
  EXPECT_FALSE(store_->GetAccount(a.account_id)->totp_enabled);
  EXPECT_TRUE(store_->GetAccount(a.account_id)->sealed_totp_secret.empty());

  const std::string unknown = Id(4242);
  EXPECT_EQ(store_->SetRoles(unknown, {"nurse"}, 1).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->SetDisabled(unknown, true, 1).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->SetPasswordHash(unknown, "$x", 1).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->SetTotp(unknown, Filled(1), true, 1).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->SetRoles(a.account_id, {"a,b"}, 1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->SetPasswordHash(a.account_id, "", 1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->SetTotp(a.account_id, {}, true, 1).code(), StatusCode::kInvalidArgument);
}

TEST_P(AccountStoreConformance, AdvanceTotpStepOnlyMovesForward) {
  AccountRow a = MakeAccount(1);
  a.sealed_totp_secret = Filled(1, 60);
  a.totp_enabled = true;
  ASSERT_TRUE(store_->CreateAccount(a).ok());
  EXPECT_TRUE(*store_->AdvanceTotpStep(a.account_id, 100));
  EXPECT_FALSE(*store_->AdvanceTotpStep(a.account_id, 100));  // replay
  EXPECT_FALSE(*store_->AdvanceTotpStep(a.account_id, 99));   // older
  EXPECT_TRUE(*store_->AdvanceTotpStep(a.account_id, 101));
  EXPECT_EQ(store_->GetAccount(a.account_id)->last_totp_step, 101);
  // A new secret starts over.
  ASSERT_TRUE(store_->SetTotp(a.account_id, Filled(2, 60), true, 1).ok());
  EXPECT_EQ(store_->GetAccount(a.account_id)->last_totp_step, 0);
  EXPECT_TRUE(*store_->AdvanceTotpStep(a.account_id, 50));
  EXPECT_EQ(store_->AdvanceTotpStep(Id(4242), 1).status().code(), StatusCode::kNotFound);
}

TEST_P(AccountStoreConformance, AdvanceTotpStepAcceptsEachStepOnceUnderConcurrency) {
  AccountRow a = MakeAccount(1);
  a.sealed_totp_secret = Filled(1, 60);
  a.totp_enabled = true;
  ASSERT_TRUE(store_->CreateAccount(a).ok());
  std::atomic<int> accepted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      auto r = store_->AdvanceTotpStep(a.account_id, 7);
      if (r.ok() && *r) {
        accepted.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(accepted.load(), 1);
}

// --- Login failures ------------------------------------------------------------

TEST_P(AccountStoreConformance, LoginFailures) {
  const Bytes index = Filled(42);
  auto none = store_->GetLoginFailures(index);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto bump = [](int64_t now) {
    return [now](const std::optional<LoginFailureRow>& cur) {
      LoginFailureRow next;
      next.failures = (cur ? cur->failures : 0) + 1;
      next.last_failure_at_ms = now;
      next.locked_until_ms = now + 1000;
      return next;
    };
  };
  auto first = store_->UpdateLoginFailures(index, bump(10));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->failures, 1);
  EXPECT_EQ(first->username_index, index);
  ASSERT_TRUE(store_->UpdateLoginFailures(index, bump(20)).ok());
  auto got = store_->GetLoginFailures(index);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->failures, 2);
  EXPECT_EQ((*got)->last_failure_at_ms, 20);
  EXPECT_EQ((*got)->locked_until_ms, 1020);
  // Another index is independent.
  EXPECT_FALSE(store_->GetLoginFailures(Filled(43))->has_value());
  ASSERT_TRUE(store_->ClearLoginFailures(index).ok());
  EXPECT_FALSE(store_->GetLoginFailures(index)->has_value());
  EXPECT_TRUE(store_->ClearLoginFailures(index).ok());  // idempotent
  EXPECT_EQ(store_->UpdateLoginFailures({}, bump(1)).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(AccountStoreConformance, ConcurrentFailuresAddUp) {
  const Bytes index = Filled(42);
  constexpr int kThreads = 6;
  constexpr int kEach = 10;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        auto r = store_->UpdateLoginFailures(index, [](const std::optional<LoginFailureRow>& c) {
          LoginFailureRow next;
          next.failures = (c ? c->failures : 0) + 1;
          return next;
        });
        EXPECT_TRUE(r.ok()) << r.status().ToString();
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ((*store_->GetLoginFailures(index))->failures, kThreads * kEach);
}

// --- Sessions and tokens ---------------------------------------------------------

TEST_P(AccountStoreConformance, SessionsAndTokens) {
  const AccountRow a = MakeAccount(1);
  ASSERT_TRUE(store_->CreateAccount(a).ok());
  const SessionRow s = MakeSession(a.account_id, 1);
  ASSERT_TRUE(store_
                  ->CreateSession(s, {MakeToken(1, TokenKind::kAccess, 2000),
                                      MakeToken(2, TokenKind::kRefresh, 9000)})
                  .ok());
  auto got = store_->GetSession(s.session_id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->account_id, a.account_id);
  EXPECT_EQ(got->audience, "medvault-api");
  EXPECT_TRUE(got->mfa_verified);
  EXPECT_EQ(got->expires_at_ms, 100000);
  EXPECT_FALSE(got->revoked_at_ms.has_value());
  EXPECT_EQ(got->revoke_reason, "");

  auto access = store_->FindToken(Filled(1));
  ASSERT_TRUE(access.ok());
  EXPECT_EQ(access->kind, TokenKind::kAccess);
  EXPECT_EQ(access->session_id, s.session_id);
  EXPECT_EQ(access->expires_at_ms, 2000);
  auto refresh = store_->FindToken(Filled(2));
  ASSERT_TRUE(refresh.ok());
  EXPECT_EQ(refresh->kind, TokenKind::kRefresh);
  EXPECT_FALSE(refresh->rotated_at_ms.has_value());
  EXPECT_EQ(store_->FindToken(Filled(3)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->FindToken(Bytes(5, 1)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetSession(Id(1)).status().code(), StatusCode::kNotFound);
}

TEST_P(AccountStoreConformance, CreateSessionIsAllOrNothing) {
  const AccountRow a = MakeAccount(1);
  ASSERT_TRUE(store_->CreateAccount(a).ok());
  ASSERT_TRUE(
      store_->CreateSession(MakeSession(a.account_id, 1), {MakeToken(1, TokenKind::kAccess, 2)})
          .ok());
  // Second session reuses a token hash: nothing of it may remain.
  const SessionRow s2 = MakeSession(a.account_id, 2);
  EXPECT_EQ(store_
                ->CreateSession(
                    s2, {MakeToken(7, TokenKind::kAccess, 2), MakeToken(1, TokenKind::kRefresh, 2)})
                .code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->GetSession(s2.session_id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->FindToken(Filled(7)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->CreateSession(MakeSession(Id(4242), 3), {}).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->CreateSession(MakeSession(a.account_id, 1), {}).code(),
            StatusCode::kAlreadyExists);
  SessionTokenRow bad = MakeToken(8, TokenKind::kAccess, 2);
  bad.token_hash.resize(31);
  EXPECT_EQ(store_->CreateSession(MakeSession(a.account_id, 4), {bad}).code(),
            StatusCode::kInvalidArgument);
}

TEST_P(AccountStoreConformance, RotateRefreshTokenOnce) {
  const AccountRow a = MakeAccount(1);
  ASSERT_TRUE(store_->CreateAccount(a).ok());
  const SessionRow s = MakeSession(a.account_id, 1);
  ASSERT_TRUE(store_
                  ->CreateSession(s, {MakeToken(1, TokenKind::kAccess, 2000),
                                      MakeToken(2, TokenKind::kRefresh, 9000)})
                  .ok());
  auto rotated = store_->RotateRefreshToken(
      Filled(2), 1500,
      {MakeToken(3, TokenKind::kAccess, 3000), MakeToken(4, TokenKind::kRefresh, 9500)});
  ASSERT_TRUE(rotated.ok()) << rotated.status().ToString();
  EXPECT_TRUE(*rotated);
  EXPECT_EQ(store_->FindToken(Filled(2))->rotated_at_ms, 1500);
  EXPECT_EQ(store_->FindToken(Filled(4))->session_id, s.session_id);
  EXPECT_EQ(store_->FindToken(Filled(3))->kind, TokenKind::kAccess);
  // Second use: false, and nothing is inserted.
  auto again =
      store_->RotateRefreshToken(Filled(2), 1600, {MakeToken(5, TokenKind::kRefresh, 9500)});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(store_->FindToken(Filled(5)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->FindToken(Filled(2))->rotated_at_ms, 1500);
  // Not a refresh token; unknown token.
  EXPECT_EQ(store_->RotateRefreshToken(Filled(1), 1, {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->RotateRefreshToken(Filled(9), 1, {}).status().code(), StatusCode::kNotFound);
}

TEST_P(AccountStoreConformance, ConcurrentRotationHasOneWinner) {
  const AccountRow a = MakeAccount(1);
  ASSERT_TRUE(store_->CreateAccount(a).ok());
  ASSERT_TRUE(
      store_->CreateSession(MakeSession(a.account_id, 1), {MakeToken(2, TokenKind::kRefresh, 9000)})
          .ok());
  std::atomic<int> winners{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      auto r = store_->RotateRefreshToken(
          Filled(2), 10, {MakeToken(static_cast<uint8_t>(100 + t), TokenKind::kRefresh, 9000)});
      EXPECT_TRUE(r.ok());
      if (r.ok() && *r) {
        winners.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(winners.load(), 1);
}

TEST_P(AccountStoreConformance, Revocation) {
  const AccountRow a = MakeAccount(1);
  const AccountRow b = MakeAccount(2);
  ASSERT_TRUE(store_->CreateAccount(a).ok());
  ASSERT_TRUE(store_->CreateAccount(b).ok());
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(store_->CreateSession(MakeSession(a.account_id, i), {}).ok());
  }
  ASSERT_TRUE(store_->CreateSession(MakeSession(b.account_id, 4), {}).ok());

  EXPECT_TRUE(*store_->RevokeSession(Id(5001), 70, "logout"));
  EXPECT_FALSE(*store_->RevokeSession(Id(5001), 80, "again"));  // stays first
  auto s1 = store_->GetSession(Id(5001));
  EXPECT_EQ(s1->revoked_at_ms, 70);
  EXPECT_EQ(s1->revoke_reason, "logout");
  EXPECT_EQ(store_->RevokeSession(Id(1), 1, "x").status().code(), StatusCode::kNotFound);

  EXPECT_EQ(*store_->RevokeAccountSessions(a.account_id, 90, "admin"), 2);
  EXPECT_EQ(*store_->RevokeAccountSessions(a.account_id, 91, "admin"), 0);
  EXPECT_EQ(store_->GetSession(Id(5002))->revoke_reason, "admin");
  EXPECT_EQ(store_->GetSession(Id(5001))->revoke_reason, "logout");
  EXPECT_FALSE(store_->GetSession(Id(5004))->revoked_at_ms.has_value());  // other account

  auto list = store_->ListSessions(a.account_id);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].session_id, Id(5003));  // newest first
}

TEST_P(AccountStoreConformance, PurgeExpired) {
  const AccountRow a = MakeAccount(1);
  ASSERT_TRUE(store_->CreateAccount(a).ok());
  SessionRow old_session = MakeSession(a.account_id, 1);
  old_session.expires_at_ms = 500;
  ASSERT_TRUE(store_->CreateSession(old_session, {MakeToken(1, TokenKind::kRefresh, 500)}).ok());
  const SessionRow live = MakeSession(a.account_id, 2);  // expires at 100000
  ASSERT_TRUE(store_
                  ->CreateSession(live, {MakeToken(2, TokenKind::kAccess, 600),
                                         MakeToken(3, TokenKind::kRefresh, 5000)})
                  .ok());
  auto stale = [](const std::optional<LoginFailureRow>&) {
    LoginFailureRow r;
    r.failures = 3;
    r.last_failure_at_ms = 100;
    return r;
  };
  auto locked = [](const std::optional<LoginFailureRow>&) {
    LoginFailureRow r;
    r.failures = 10;
    r.last_failure_at_ms = 100;
    r.locked_until_ms = 5000;
    return r;
  };
  ASSERT_TRUE(store_->UpdateLoginFailures(Filled(50), stale).ok());
  ASSERT_TRUE(store_->UpdateLoginFailures(Filled(51), locked).ok());

  auto purged = store_->PurgeExpired(1000, 500);
  ASSERT_TRUE(purged.ok()) << purged.status().ToString();
  EXPECT_EQ(*purged, 4);  // token 1, token 2, the old session, the stale failure row
  EXPECT_EQ(store_->GetSession(old_session.session_id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->FindToken(Filled(1)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->FindToken(Filled(2)).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->FindToken(Filled(3)).ok());
  EXPECT_TRUE(store_->GetSession(live.session_id).ok());
  EXPECT_FALSE(store_->GetLoginFailures(Filled(50))->has_value());
  EXPECT_TRUE(store_->GetLoginFailures(Filled(51))->has_value());
}

// Issue 13: every change that must end cached access in another process is
// in the change log, in its own transaction; creations and logins are not.
TEST_P(AccountStoreConformance, ChangesThatEndAccessAreLogged) {
  const AccountRow a = MakeAccount(1);
  ASSERT_TRUE(store_->CreateAccount(a).ok());
  ASSERT_TRUE(
      store_->CreateSession(MakeSession(a.account_id, 1), {MakeToken(1, TokenKind::kAccess, 2000)})
          .ok());
  ASSERT_TRUE(
      store_->CreateSession(MakeSession(a.account_id, 2), {MakeToken(2, TokenKind::kAccess, 2000)})
          .ok());
  EXPECT_EQ(*store_->LatestChange(), 0);

  ASSERT_TRUE(store_->SetRoles(a.account_id, {"nurse"}, 10).ok());
  ASSERT_TRUE(store_->SetDisabled(a.account_id, true, 11).ok());
  ASSERT_TRUE(store_->SetPasswordHash(a.account_id, "$argon2id$x", 12).ok());
  ASSERT_TRUE(store_->SetTotp(a.account_id, {}, false, 13).ok());
  ASSERT_TRUE(*store_->RevokeSession(Id(5001), 14, "logout"));
  EXPECT_FALSE(*store_->RevokeSession(Id(5001), 15, "again"));  // nothing changed
  EXPECT_EQ(*store_->RevokeAccountSessions(a.account_id, 16, "admin"), 1);
  EXPECT_EQ(*store_->RevokeAccountSessions(a.account_id, 17, "admin"), 0);
  // A failed change records nothing.
  EXPECT_EQ(store_->SetDisabled(Id(999), true, 18).code(), StatusCode::kNotFound);

  auto rows = store_->ChangesSince(0, 100);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 6u);
  for (size_t i = 0; i < rows->size(); ++i) {
    EXPECT_EQ((*rows)[i].seq, static_cast<int64_t>(i + 1));
    EXPECT_EQ((*rows)[i].domain, "account");
    EXPECT_EQ((*rows)[i].subject, a.account_id);
  }
  EXPECT_EQ(*store_->LatestChange(), 6);
  EXPECT_EQ(store_->ChangesSince(4, 100)->size(), 2u);
  EXPECT_EQ(store_->ChangesSince(0, 2)->size(), 2u);
  EXPECT_TRUE(ChangesComplete(*store_->ChangesSince(4, 100), 4, 6, 100));
  EXPECT_FALSE(ChangesComplete(*store_->ChangesSince(0, 2), 0, 6, 2));      // cut by the limit
  EXPECT_FALSE(ChangesComplete(*store_->ChangesSince(9, 100), 9, 6, 100));  // went back
  EXPECT_TRUE(ChangesComplete({}, 6, 6, 100));
}

TEST_P(AccountStoreConformance, DataSurvivesReopen) {
  MakeInstitutions();
  const AccountRow a = MakeAccount(1);
  ASSERT_TRUE(store_->CreateAccount(a).ok());
  ASSERT_TRUE(
      store_->CreateSession(MakeSession(a.account_id, 1), {MakeToken(1, TokenKind::kRefresh, 2000)})
          .ok());
  ASSERT_TRUE(store_->SetRoles(a.account_id, {"nurse"}, 10).ok());
  Reopen();
  auto got = store_->GetAccount(a.account_id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->roles, std::vector<std::string>{"nurse"});
  EXPECT_TRUE(store_->GetInstitution(Id(1)).ok());
  EXPECT_TRUE(store_->FindToken(Filled(1)).ok());
  EXPECT_EQ(*store_->LatestChange(), 1);
  EXPECT_EQ(store_->CreateAccount(a).code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(store_->SchemaVersion().ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, AccountStoreConformance, ::testing::ValuesIn(kBackends),
                         [](const ::testing::TestParamInfo<AccountStoreBackend>& param_info) {
                           return param_info.param.name;
                         });

}  // namespace
}  // namespace medvault::store
