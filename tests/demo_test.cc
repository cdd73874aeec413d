#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "app/app.h"
#include "common/ids.h"
#include "test_util.h"

namespace medvault::app {
namespace {

TEST(DemoTest, SeedsReadablePatients) {
  ASSERT_TRUE(crypto::InitCrypto().ok());
  testing::TempDir tmp;
  const auto dir = tmp.path() / "data";
  ASSERT_TRUE(InitDataDir(dir, false).ok());
  Config config;
  config.data_dir = dir.string();
  config.argon2_memory_kib = 8;
  config.argon2_iterations = 1;
  auto rt = OpenRuntime(config);
  ASSERT_TRUE(rt.ok());
  auto demo = SeedDemoData(**rt);
  ASSERT_TRUE(demo.ok()) << demo.status().ToString();
  const std::vector<std::string>* ids = &demo->patient_ids;
  ASSERT_EQ(ids->size(), 3u);
  auto bp = (*rt)->records->ListVersions((*ids)[0], "physical-signs/blood-pressure");
  ASSERT_TRUE(bp.ok());
  EXPECT_EQ(bp->size(), 5u);
  auto tree = (*rt)->records->ListTree((*ids)[1], "");
  ASSERT_TRUE(tree.ok());
  EXPECT_EQ(tree->size(), 5u);
  auto p = (*rt)->records->GetPatient((*ids)[2]);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->demographics->identifier, "DEMO-0003");
}

}  // namespace
}  // namespace medvault::app

namespace medvault::app {
namespace {

// The demo accounts can sign in, and the relationships make the story of the
// demo: Dr. Heart reads Ada's record, Dr. Sugar may not, Ada reads her own.
TEST(DemoTest, SeedsAccountsThatSignInWithTheirRelationships) {
  ASSERT_TRUE(crypto::InitCrypto().ok());
  testing::TempDir tmp;
  const auto dir = tmp.path() / "data";
  ASSERT_TRUE(InitDataDir(dir, false).ok());
  Config config;
  config.data_dir = dir.string();
  config.argon2_memory_kib = 8;
  config.argon2_iterations = 1;
  auto rt = OpenRuntime(config);
  ASSERT_TRUE(rt.ok()) << rt.status().ToString();
  auto demo = SeedDemoData(**rt);
  ASSERT_TRUE(demo.ok()) << demo.status().ToString();
  ASSERT_EQ(demo->accounts.size(), 6u);
  const std::string ada = demo->patient_ids[0];
  std::map<std::string, policy::Decision> reads;
  for (const DemoAccount& a : demo->accounts) {
    auth::LoginRequest login;
    login.username = a.username;
    login.password = a.password;
    login.audience = "medvault-api";
    std::string code;
    if (!a.totp_secret.empty()) {
      code = auth::TotpCode(*auth::Base32Decode(a.totp_secret), NowUnixMillis() / 1000, {});
      login.totp_code = code;
    }
    auto tokens = (*rt)->accounts->Login(login);
    ASSERT_TRUE(tokens.ok()) << a.username << ": " << tokens.status().ToString();
    auto session = (*rt)->accounts->Authenticate(tokens->access_token, "medvault-api");
    ASSERT_TRUE(session.ok());
    policy::Subject s;
    s.account_id = session->account.account_id;
    s.roles = *(*rt)->policy->RolesOf(session->account.roles);
    s.institution_id = session->account.institution_id;
    s.patient_id = session->account.patient_id;
    s.mfa_verified = session->mfa_verified;
    policy::Resource r;
    r.patient_id = ada;
    r.path = "physical-signs/blood-pressure";
    r.category = "physical-signs";
    r.sensitivity = 1;
    policy::Context c;
    c.now_ms = NowUnixMillis();
    reads[a.username] = (*rt)->decisions->Decide(s, policy::Action::kRead, r, c);
  }
  EXPECT_TRUE(reads["dr.heart"].permitted());
  EXPECT_FALSE(reads["dr.sugar"].permitted());
  EXPECT_EQ(reads["dr.sugar"].reason(), policy::Reason::kNoRelationship);
  EXPECT_TRUE(reads["ada"].permitted());
  EXPECT_EQ(reads["ada"].reason(), policy::Reason::kPatientSelf);
  EXPECT_FALSE(reads["admin"].permitted());
  EXPECT_FALSE(reads["privacy"].permitted());
}

}  // namespace
}  // namespace medvault::app
