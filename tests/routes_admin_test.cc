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
  ExpectError(AdminPost("/api/v1/accounts", j), 403, "PERMISSION_DENIED");

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

TEST_F(RoutesAdminTest, APersonalAccountNeverBecomesAStaffOrPlatformAccount) {
  const std::string patient_id = CreatePatient("Mfa", "MRN-MFA");
  json j = NewAccount("patient.mfa");
  j["roles"] = {"patient"};
  j["patient_id"] = patient_id;
  // A personal account belongs to no institution.
  j["institution_id"] = institution_id_;
  ExpectError(AdminPost("/api/v1/accounts", j), 400, "INVALID_ARGUMENT");
  j.erase("institution_id");
  auto created = AdminPost("/api/v1/accounts", j);
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  const json body = json::parse(created->body);
  const std::string id = body["account_id"];
  EXPECT_EQ(body["institution_id"], "");
  EXPECT_EQ(body["home_institution_id"], institution_id_);
  // The institution that registered it lists it among the accounts it governs.
  auto listed = admin_client_->Get("/api/v1/accounts");
  ASSERT_TRUE(listed);
  EXPECT_NE(listed->body.find(id), std::string::npos) << listed->body;
  // The reported escalation: a patient account given an administrative role
  // (with no institution: a platform administrator).
  for (const json& roles : {json{"institution-admin"}, json{"doctor"}, json{"patient", "nurse"},
                            json{"family-proxy"}}) {
    auto r = admin_client_->Put(("/api/v1/accounts/" + id + "/roles").c_str(),
                                json{{"roles", roles}}.dump(), "application/json");
    ExpectError(r, 403, "PERMISSION_DENIED");
    EXPECT_NE(r->body.find("personal-account"), std::string::npos) << r->body;
  }
  auto after = admin_client_->Get(("/api/v1/accounts/" + id).c_str());
  ASSERT_TRUE(after);
  ASSERT_EQ(after->status, 200) << after->body;
  EXPECT_EQ(json::parse(after->body)["roles"], json({"patient"}));
  // Nor is one created mixed, nor does a staff account carry a record.
  json mixed = NewAccount("mixed.roles");
  mixed["roles"] = {"patient", "institution-admin"};
  ExpectError(AdminPost("/api/v1/accounts", mixed), 400, "INVALID_ARGUMENT");
  json staff_record = NewAccount("staff.record");
  staff_record["patient_id"] = patient_id;
  ExpectError(AdminPost("/api/v1/accounts", staff_record), 400, "INVALID_ARGUMENT");
  // A second account for the same record would be a way in: refused.
  json second = NewAccount("patient.second");
  second["roles"] = {"patient"};
  second["patient_id"] = patient_id;
  ExpectError(AdminPost("/api/v1/accounts", second), 409, "ALREADY_EXISTS");
  // And a staff account never gets a personal role.
  auto nurse = MakeAccount("nurse.personal", {"nurse"});
  ExpectError(admin_client_->Put(("/api/v1/accounts/" + nurse.account_id + "/roles").c_str(),
                                 json{{"roles", {"nurse", "patient"}}}.dump(), "application/json"),
              400, "INVALID_ARGUMENT");
}

TEST_F(RoutesAdminTest, NoOneChangesTheirOwnRolesOrAccount) {
  for (const char* op : {"/roles", "/disable"}) {
    auto r = std::string(op) == "/roles"
                 ? admin_client_->Put(("/api/v1/accounts/" + admin_.account_id + op).c_str(),
                                      json{{"roles", {"institution-admin", "doctor"}}}.dump(),
                                      "application/json")
                 : AdminPost("/api/v1/accounts/" + admin_.account_id + op, json::object());
    ExpectError(r, 403, "PERMISSION_DENIED");
  }
  auto me = admin_client_->Get(("/api/v1/accounts/" + admin_.account_id).c_str());
  ASSERT_TRUE(me);
  EXPECT_EQ(json::parse(me->body)["roles"], json({"institution-admin"}));
  EXPECT_EQ(json::parse(me->body)["disabled"], false);
}

// An unknown id answers like another institution's account: a bound admin
// cannot probe which account ids exist elsewhere.
TEST_F(RoutesAdminTest, UnknownAccountIdLooksLikeAnotherInstitutions) {
  const std::string path = "/api/v1/accounts/" + NewRandomId();
  std::vector<httplib::Result> results;
  results.push_back(admin_client_->Get(path.c_str()));
  results.push_back(admin_client_->Put((path + "/roles").c_str(), json{{"roles", {"nurse"}}}.dump(),
                                       "application/json"));
  results.push_back(admin_client_->Post((path + "/disable").c_str(), "{}", "application/json"));
  for (const auto& r : results) {
    ASSERT_TRUE(r);
    EXPECT_NE(r->status, 500) << r->body;
    ExpectError(r, 403, "PERMISSION_DENIED");
    EXPECT_NE(r->body.find("other-institution"), std::string::npos) << r->body;
  }
}

// The reported takeover: an institution admin with no tie to a patient
// reset the patient's password and second factor, signed in as the patient
// and read the record. No route sets another person's credentials now, and
// a recovery is governed by the institution that registered the account.
TEST_F(RoutesAdminTest, AnAdminCannotTakeOverAPatientAccount) {
  const std::string patient_id = CreatePatient("Owner", "MRN-OWN");
  // Registered by the platform (the console), not by this institution.
  auto patient = MakeAccount("patient.owner", {"patient"}, patient_id);
  for (const char* op : {"/reset-password", "/reset-totp"}) {
    auto r = AdminPost("/api/v1/accounts/" + patient.account_id + op,
                       json{{"password", "Attacker-Chosen-Passw0rd"}});
    ExpectError(r, 404, "NOT_FOUND");
  }
  auto r = AdminPost("/api/v1/accounts/" + patient.account_id + "/recovery",
                     json{{"reason", "patient says they lost their phone"}});
  ExpectError(r, 403, "PERMISSION_DENIED");
  EXPECT_NE(r->body.find("other-institution"), std::string::npos) << r->body;
  // Nor may it link a new account of its own making to a record its
  // institution does not treat: unknown, untied and already-linked records
  // all get the same answer.
  std::optional<enforce::Scope> console;
  console.emplace(runtime_->enforce_deps(), enforce::ConsoleContext("test"));
  auto untied = runtime_->records->CreatePatient({"Una", "Tied", "1970-01-01", "unknown", ""}, "t");
  ASSERT_TRUE(untied.ok());
  std::string first_body;
  auto linked = runtime_->records->CreatePatient({"Lin", "Ked", "1970-01-01", "unknown", ""}, "t");
  ASSERT_TRUE(linked.ok());
  console.reset();
  MakeAccount("patient.linked", {"patient"}, linked->patient_id);
  for (const std::string& target : {untied->patient_id, NewRandomId(), linked->patient_id}) {
    json claim = NewAccount("claim." + target.substr(0, 6));
    claim["roles"] = {"patient"};
    claim["patient_id"] = target;
    auto res = AdminPost("/api/v1/accounts", claim);
    ExpectError(res, 403, "PERMISSION_DENIED");
    auto j = json::parse(res->body);
    j["error"].erase("request_id");
    if (first_body.empty()) {
      first_body = j.dump();
    }
    EXPECT_EQ(j.dump(), first_body);
  }
  EXPECT_NE(first_body.find("no-patient-tie"), std::string::npos) << first_body;
  ExpectError(AdminPost("/api/v1/accounts/" + patient.account_id + "/disable", json::object()), 403,
              "PERMISSION_DENIED");
  EXPECT_EQ(LoginStatus(patient.username, "Attacker-Chosen-Passw0rd"), 401);
  EXPECT_FALSE(SignIn(patient).empty());
  auto open = runtime_->accounts->GetRecovery(patient.account_id);
  ASSERT_TRUE(open.ok());
  EXPECT_FALSE(open->has_value());
}

TEST_F(RoutesAdminTest, PatientRecoveryIsSeenByThePatientAndCanBeCancelled) {
  auto second_admin = MakeAccount("admin.y", {"institution-admin"});
  auto second = ClientWith(SignIn(second_admin));
  const std::string patient_id = CreatePatient("Recovered", "MRN-REC");
  json j = NewAccount("patient.rec");
  j["roles"] = {"patient"};
  j["patient_id"] = patient_id;
  auto created = AdminPost("/api/v1/accounts", j);
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  TestAccount patient{json::parse(created->body)["account_id"], "patient.rec",
                      j["password"].get<std::string>(), ""};
  const std::string base = "/api/v1/accounts/" + patient.account_id + "/recovery";
  // A reason is required.
  ExpectError(AdminPost(base, json{{"reason", "lost"}}), 400, "INVALID_ARGUMENT");
  ExpectError(AdminPost(base, json::object()), 400, "INVALID_ARGUMENT");
  auto opened = AdminPost(base, json{{"reason", "lost phone, called the front desk"}});
  ASSERT_TRUE(opened);
  ASSERT_EQ(opened->status, 201) << opened->body;
  ExpectError(AdminPost(base, json{{"reason", "a second request meanwhile"}}), 409,
              "ALREADY_EXISTS");
  // The one who opened it cannot complete it; the second admin must wait
  // (the patient is notified and may cancel meanwhile).
  ExpectError(AdminPost(base + "/approve", json::object()), 403, "PERMISSION_DENIED");
  ExpectError(second->Post((base + "/approve").c_str(), "{}", "application/json"), 409,
              "FAILED_PRECONDITION");
  // The patient sees it: a notification and an entry in their access history.
  auto patient_client = ClientWith(SignIn(patient));
  auto n = patient_client->Get("/api/v1/me/notifications");
  ASSERT_TRUE(n);
  ASSERT_EQ(n->status, 200) << n->body;
  const json notes = json::parse(n->body)["notifications"];
  ASSERT_EQ(notes.size(), 1u) << n->body;
  EXPECT_EQ(notes[0]["kind"], "account-recovery");
  EXPECT_EQ(notes[0]["account_id"], admin_.account_id);
  EXPECT_EQ(notes[0]["reason"], "lost phone, called the front desk");
  auto h = patient_client->Get(("/api/v1/patients/" + patient_id + "/access-history").c_str());
  ASSERT_TRUE(h);
  ASSERT_EQ(h->status, 200) << h->body;
  bool seen = false;
  const json history = json::parse(h->body)["history"];
  for (const json& e : history) {
    seen = seen || (e["action"] == "account.recovery-request" && e["actor"] == admin_.account_id);
  }
  EXPECT_TRUE(seen) << h->body;
  // The patient stops it; nothing is left to complete.
  auto cancelled = patient_client->Delete("/api/v1/me/recovery");
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->status, 200) << cancelled->body;
  ExpectError(second->Post((base + "/approve").c_str(), "{}", "application/json"), 404,
              "NOT_FOUND");
  EXPECT_FALSE(SignIn(patient).empty());
  patient_client.reset();
  second.reset();
}

// A disabled person cannot see or stop a recovery: disabling withdraws an
// open one, and a disabled account's recovery cannot be opened.
TEST_F(RoutesAdminTest, DisablingWithdrawsARecovery) {
  auto nurse = MakeAccount("nurse.locked", {"nurse"});
  const std::string acct = "/api/v1/accounts/" + nurse.account_id;
  auto opened = AdminPost(acct + "/recovery", json{{"reason", "cannot sign in since Monday"}});
  ASSERT_TRUE(opened);
  ASSERT_EQ(opened->status, 201) << opened->body;
  auto disabled = AdminPost(acct + "/disable", json::object());
  ASSERT_TRUE(disabled);
  ASSERT_EQ(disabled->status, 200) << disabled->body;
  auto open = runtime_->accounts->GetRecovery(nurse.account_id);
  ASSERT_TRUE(open.ok());
  EXPECT_FALSE(open->has_value());
  ExpectError(AdminPost(acct + "/recovery", json{{"reason", "cannot sign in since Monday"}}), 409,
              "FAILED_PRECONDITION");
}

TEST_F(RoutesAdminTest, StaffRecoveryNeedsTwoAdministrators) {
  auto nurse = MakeAccount("nurse.reset", {"nurse"});
  auto nurse_client = ClientWith(SignIn(nurse));
  auto second_admin = MakeAccount("admin.z", {"institution-admin"});
  auto second = ClientWith(SignIn(second_admin));
  const std::string base = "/api/v1/accounts/" + nurse.account_id + "/recovery";
  // Nothing to approve before someone opens it.
  ExpectError(second->Post((base + "/approve").c_str(), "{}", "application/json"), 404,
              "NOT_FOUND");
  auto opened = AdminPost(base, json{{"reason", "forgot password after leave"}});
  ASSERT_TRUE(opened);
  ASSERT_EQ(opened->status, 201) << opened->body;
  ExpectError(AdminPost(base + "/approve", json::object()), 403, "PERMISSION_DENIED");
  auto got = second->Get(base.c_str());
  ASSERT_TRUE(got);
  EXPECT_EQ(json::parse(got->body)["open"], true) << got->body;
  // A puppet made after the request is not a second person.
  auto puppet = MakeAccount("admin.puppet", {"institution-admin"});
  auto puppet_client = ClientWith(SignIn(puppet));
  ExpectError(puppet_client->Post((base + "/approve").c_str(), "{}", "application/json"), 403,
              "PERMISSION_DENIED");
  puppet_client.reset();
  auto done = second->Post((base + "/approve").c_str(), "{}", "application/json");
  ASSERT_TRUE(done);
  ASSERT_EQ(done->status, 200) << done->body;
  const json creds = json::parse(done->body);
  const std::string temporary = creds["temporary_password"];
  EXPECT_GE(temporary.size(), 20u);
  ASSERT_TRUE(creds.contains("totp_secret"));  // nurses need a second factor
  // Every old session is gone; the old password and second factor too.
  auto old = nurse_client->Get("/api/v1/me");
  ASSERT_TRUE(old);
  EXPECT_EQ(old->status, 401);
  EXPECT_EQ(LoginStatus(nurse.username, nurse.password), 401);
  EXPECT_FALSE(SignIn({nurse.account_id, nurse.username, temporary, creds["totp_secret"]}).empty());
  // The recovery is closed.
  got = second->Get(base.c_str());
  ASSERT_TRUE(got);
  EXPECT_EQ(json::parse(got->body)["open"], false) << got->body;
  nurse_client.reset();
  second.reset();
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
  staff["roles"] = {"nurse"};
  staff["institution_id"] = "";
  res = AdminPost("/api/v1/accounts", staff);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 201) << res->body;
  EXPECT_EQ(json::parse(res->body)["institution_id"], institution_id_);
  // Nor does a bound admin mint another admin (a puppet would be the
  // "second person" of a recovery): a peer role comes from above.
  json peer = NewAccount("new.admin");
  peer["roles"] = {"institution-admin"};
  res = AdminPost("/api/v1/accounts", peer);
  ExpectError(res, 403, "PERMISSION_DENIED");
  EXPECT_NE(res->body.find("peer-role"), std::string::npos) << res->body;
  const std::string colleague =
      json::parse(AdminPost("/api/v1/accounts", NewAccount("n.2"))->body)["account_id"];
  res = admin_client_->Put(("/api/v1/accounts/" + colleague + "/roles").c_str(),
                           json{{"roles", {"nurse", "institution-admin"}}}.dump(),
                           "application/json");
  ExpectError(res, 403, "PERMISSION_DENIED");
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
