// Sad paths of the administration routes through the real in-process server
// (src/api/routes_admin.cc), as an institution admin.
#include <gtest/gtest.h>

#include "server_fixture.h"

namespace medvault {
namespace {

using nlohmann::json;
using testing::ServerFixture;

class RoutesAdminTest : public ServerFixture {
 protected:
  void SetUp() override {
    ServerFixture::SetUp();
    admin_ = MakeAccount("admin.x", {"institution-admin"});
    admin_client_ = ClientWith(SignIn(admin_));
  }
  // Close our keep-alive connection first, or Stop() waits for its timeout.
  void TearDown() override {
    admin_client_.reset();
    ServerFixture::TearDown();
  }

  json NewAccount(const std::string& username) const {
    return {{"username", username},
            {"display_name", "New " + username},
            {"password", "Correct-Horse-Battery-Staple-1"},
            {"roles", {"nurse"}}};
  }
  httplib::Result AdminPost(const std::string& path, const json& body) {
    return admin_client_->Post(path.c_str(), body.dump(), "application/json");
  }
  size_t AccountCount() {
    auto r = admin_client_->Get("/api/v1/accounts");
    EXPECT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body)["accounts"].size();
  }
  int LoginStatus(const std::string& username, const std::string& password) {
    httplib::Client c("127.0.0.1", server_->port());
    auto r =
        c.Post("/api/v1/auth/login", json{{"username", username}, {"password", password}}.dump(),
               "application/json");
    return r ? r->status : -1;
  }

  TestAccount admin_;
  std::unique_ptr<httplib::Client> admin_client_;
};

TEST_F(RoutesAdminTest, CreateAccountRejectsBadInput) {
  const size_t before = AccountCount();
  json j = NewAccount("new.role");
  j["roles"] = {"astronaut"};
  ExpectError(AdminPost("/api/v1/accounts", j), 400, "INVALID_ARGUMENT");

  j = NewAccount("new.patient");
  j["roles"] = {"patient"};
  j["patient_id"] = NewRandomId();
  ExpectError(AdminPost("/api/v1/accounts", j), 400, "INVALID_ARGUMENT");

  j = NewAccount("new.totp");
  j["enroll_totp"] = "yes";
  ExpectError(AdminPost("/api/v1/accounts", j), 400, "INVALID_ARGUMENT");

  j = NewAccount("new.dept");
  j["department_id"] = NewRandomId();
  ExpectError(AdminPost("/api/v1/accounts", j), 400, "INVALID_ARGUMENT");

  j = NewAccount(clinician_.username);
  ExpectError(AdminPost("/api/v1/accounts", j), 409, "ALREADY_EXISTS");

  EXPECT_EQ(AccountCount(), before);
  EXPECT_EQ(LoginStatus("new.role", "Correct-Horse-Battery-Staple-1"), 401);
}

TEST_F(RoutesAdminTest, MfaRoleOnPatientWithoutTotpIsRefused) {
  const std::string patient_id = CreatePatient("Mfa", "MRN-MFA");
  json j = NewAccount("patient.mfa");
  j["roles"] = {"patient"};
  j["patient_id"] = patient_id;
  j["institution_id"] = institution_id_;
  auto created = AdminPost("/api/v1/accounts", j);
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  const std::string id = json::parse(created->body)["account_id"];
  auto r = admin_client_->Put(("/api/v1/accounts/" + id + "/roles").c_str(),
                              json{{"roles", {"doctor"}}}.dump(), "application/json");
  ExpectError(r, 409, "FAILED_PRECONDITION");
  auto after = admin_client_->Get(("/api/v1/accounts/" + id).c_str());
  ASSERT_TRUE(after);
  ASSERT_EQ(after->status, 200) << after->body;
  EXPECT_EQ(json::parse(after->body)["roles"], json({"patient"}));
}

TEST_F(RoutesAdminTest, UnknownAccountIdIsNotFound) {
  const std::string path = "/api/v1/accounts/" + NewRandomId();
  std::vector<httplib::Result> results;
  results.push_back(admin_client_->Get(path.c_str()));
  results.push_back(admin_client_->Put((path + "/roles").c_str(), json{{"roles", {"nurse"}}}.dump(),
                                       "application/json"));
  results.push_back(admin_client_->Post((path + "/disable").c_str(), "{}", "application/json"));
  for (const auto& r : results) {
    ASSERT_TRUE(r);
    EXPECT_NE(r->status, 500) << r->body;
    ExpectError(r, 404, "NOT_FOUND");
  }
}

TEST_F(RoutesAdminTest, ResetPasswordWithAWeakPasswordKeepsTheOld) {
  auto nurse = MakeAccount("nurse.reset", {"nurse"});
  ExpectError(AdminPost("/api/v1/accounts/" + nurse.account_id + "/reset-password",
                        json{{"password", "abc"}}),
              400, "INVALID_ARGUMENT");
  EXPECT_FALSE(SignIn(nurse).empty());
}

TEST_F(RoutesAdminTest, OnlyAnAdminOfNoInstitutionCreatesInstitutions) {
  auto before = runtime_->accounts->ListInstitutions();
  ASSERT_TRUE(before.ok());
  auto res = AdminPost("/api/v1/institutions", json{{"name", "Shadow Clinic"}});
  ExpectError(res, 403, "PERMISSION_DENIED");
  EXPECT_NE(res->body.find("other-institution"), std::string::npos) << res->body;
  EXPECT_EQ(runtime_->accounts->ListInstitutions()->size(), before->size());
  // A platform admin (bound to no institution) may.
  auth::NewAccount n;
  n.username = "platform.admin";
  n.display_name = "Platform Admin";
  n.password = "Correct-Horse-Battery-Staple-9";
  n.roles = {"institution-admin"};
  auto created = runtime_->accounts->CreateAccount(n);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto platform = ClientWith(
      SignIn({created->account.account_id, n.username, n.password, created->totp_secret_base32}));
  res = platform->Post("/api/v1/institutions", json{{"name", "New Clinic"}}.dump(),
                       "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 201) << res->body;
  platform.reset();
}

TEST_F(RoutesAdminTest, ABoundAdminCannotReachBeyondItsInstitution) {
  // Every institution's accounts at once.
  auto res = admin_client_->Get("/api/v1/accounts?institution=");
  ExpectError(res, 403, "PERMISSION_DENIED");
  EXPECT_NE(res->body.find("other-institution"), std::string::npos) << res->body;
  // A staff account without an institution named joins the admin's own: a
  // bound admin cannot make a platform (unbound) admin.
  json staff = NewAccount("new.colleague");
  staff["roles"] = {"institution-admin"};
  staff["institution_id"] = "";
  res = AdminPost("/api/v1/accounts", staff);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 201) << res->body;
  EXPECT_EQ(json::parse(res->body)["institution_id"], institution_id_);
  auto other = runtime_->accounts->CreateInstitution("Elsewhere");
  ASSERT_TRUE(other.ok());
  staff = NewAccount("new.elsewhere");
  staff["institution_id"] = other->institution_id;
  ExpectError(AdminPost("/api/v1/accounts", staff), 403, "PERMISSION_DENIED");
  // A patient's own account belongs to no institution: registering it is an
  // act of the admin's institution.
  const std::string patient_id = CreatePatient("Registered", "MRN-REG");
  json personal = NewAccount("patient.registered");
  personal["roles"] = {"patient"};
  personal["patient_id"] = patient_id;
  res = AdminPost("/api/v1/accounts", personal);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 201) << res->body;
  const std::string id = json::parse(res->body)["account_id"];
  // And managing it afterwards.
  res = admin_client_->Get(("/api/v1/accounts/" + id).c_str());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
}

TEST_F(RoutesAdminTest, ListingAnotherInstitutionIsForbidden) {
  auto other = runtime_->accounts->CreateInstitution("Other Hospital");
  ASSERT_TRUE(other.ok());
  ExpectError(admin_client_->Get(("/api/v1/accounts?institution=" + other->institution_id).c_str()),
              403, "PERMISSION_DENIED");
}

}  // namespace
}  // namespace medvault
