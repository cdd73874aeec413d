// Sad paths of the patient's sharing controls through the real in-process
// server (src/api/routes_access.cc): consents, settings, proxies, delegations.
#include <gtest/gtest.h>

#include "server_fixture.h"

namespace medvault {
namespace {

using nlohmann::json;
using testing::ServerFixture;

class RoutesAccessTest : public ServerFixture {
 protected:
  void SetUp() override {
    ServerFixture::SetUp();
    patient_id_ = CreatePatient("Access", "MRN-ACCESS");
    ASSERT_EQ(patient_id_.size(), 32u);
    patient_ = MakeAccount("patient.access", {"patient"}, patient_id_);
    patient_client_ = ClientWith(SignIn(patient_));
  }
  // Close our keep-alive connection first, or Stop() waits for its timeout.
  void TearDown() override {
    patient_client_.reset();
    ServerFixture::TearDown();
  }

  std::string Base() const { return "/api/v1/patients/" + patient_id_; }

  json Consent() const {
    return {{"effect", "grant"},         {"path_prefix", "physical-signs"},
            {"grantee_kind", "account"}, {"grantee", clinician_.account_id},
            {"actions", {"read"}},       {"purposes", {"treatment"}}};
  }
  httplib::Result PatientPost(const std::string& path, const json& body) {
    return patient_client_->Post((Base() + path).c_str(), body.dump(), "application/json");
  }
  httplib::Result PatientPut(const std::string& path, const json& body) {
    return patient_client_->Put((Base() + path).c_str(), body.dump(), "application/json");
  }
  json PatientGet(const std::string& path) {
    auto r = patient_client_->Get((Base() + path).c_str());
    EXPECT_TRUE(r);
    if (!r) {
      return {};
    }
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body, nullptr, false);
  }

  std::string patient_id_;
  TestAccount patient_;
  std::unique_ptr<httplib::Client> patient_client_;
};

TEST_F(RoutesAccessTest, BadConsentsAreRefusedAndNothingIsStored) {
  std::vector<std::pair<std::string, json>> cases;
  auto with = [&](const std::string& name, const std::string& key, const json& value) {
    json j = Consent();
    j[key] = value;
    cases.emplace_back(name, j);
  };
  with("effect", "effect", "maybe");
  with("grantee_kind", "grantee_kind", "planet");
  with("action", "actions", {"teleport"});
  with("purpose", "purposes", {"curiosity"});
  with("expired", "expires_at", "2001-01-01T00:00:00Z");
  {
    json j = Consent();
    j["not_before"] = "2099-06-01T00:00:00Z";
    j["expires_at"] = "2099-01-01T00:00:00Z";
    cases.emplace_back("not_before after expires_at", j);
  }
  with("timestamp", "expires_at", "tomorrow");
  with("path", "path_prefix", "../x");
  with("grantee", "grantee", NewRandomId());
  for (const auto& [name, body] : cases) {
    SCOPED_TRACE(name);
    ExpectError(PatientPost("/consents", body), 400, "INVALID_ARGUMENT");
  }
  EXPECT_TRUE(PatientGet("/consents")["consents"].empty());
}

TEST_F(RoutesAccessTest, BadSettingsAreRefused) {
  const json before = PatientGet("/settings");
  ExpectError(
      PatientPut("/settings", {{"allow_delegation", "yes"}, {"never_break_glass", json::array()}}),
      400, "INVALID_ARGUMENT");
  ExpectError(
      PatientPut("/settings", {{"allow_delegation", true}, {"never_break_glass", {"Bad Path"}}}),
      400, "INVALID_ARGUMENT");
  EXPECT_EQ(PatientGet("/settings"), before);
}

TEST_F(RoutesAccessTest, BadProxiesAreRefused) {
  auto proxy = MakeAccount("proxy.access", {"family-proxy"});
  ExpectError(PatientPost("/proxies", {{"proxy_account_id", proxy.account_id},
                                       {"path_prefixes", {"physical-signs"}},
                                       {"actions", json::array()}}),
              400, "INVALID_ARGUMENT");
  ExpectError(PatientPost("/proxies", {{"proxy_account_id", clinician_.account_id},
                                       {"path_prefixes", {"physical-signs"}},
                                       {"actions", {"read"}}}),
              400, "INVALID_ARGUMENT");
  // A proxy link carrying break-glass (or consent management) is refused.
  for (const char* action : {"break-glass", "manage-consent", "erase-patient"}) {
    ExpectError(PatientPost("/proxies", {{"proxy_account_id", proxy.account_id},
                                         {"path_prefixes", {""}},
                                         {"actions", {"read", action}}}),
                400, "INVALID_ARGUMENT");
  }
  EXPECT_TRUE(PatientGet("/proxies")["proxies"].empty());
}

TEST_F(RoutesAccessTest, RevokingAnUnknownConsentIsNotFound) {
  ExpectError(patient_client_->Delete((Base() + "/consents/" + NewRandomId()).c_str()), 404,
              "NOT_FOUND");
}

TEST_F(RoutesAccessTest, DelegatingToSelfIsRefused) {
  auto s =
      PatientPut("/settings", {{"allow_delegation", true}, {"never_break_glass", json::array()}});
  ASSERT_TRUE(s);
  ASSERT_EQ(s->status, 200) << s->body;
  ExpectError(Post(Base() + "/delegations", json{{"to", clinician_.account_id}}.dump()), 400,
              "INVALID_ARGUMENT");
  auto rel = Get(Base() + "/relationships");
  ASSERT_TRUE(rel);
  if (rel->status == 200) {
    EXPECT_TRUE(json::parse(rel->body)["delegations"].empty());
  }
}

// A department head may record treating relationships in the institution,
// but not make themselves the treating clinician of a record they do not
// treat: that would open any patient's record alone.
TEST_F(RoutesAccessTest, NoOneStartsATreatingRelationshipWithThemselves) {
  // Registered elsewhere (the console): nobody treats this patient yet.
  enforce::Scope console(runtime_->enforce_deps(), enforce::ConsoleContext("test"));
  auto created =
      runtime_->records->CreatePatient({"Sam", "Stranger", "1970-01-01", "unknown", ""}, "t");
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const std::string other = created->patient_id;
  const std::string base = "/api/v1/patients/" + other;
  ExpectError(Get(base + "/segments"), 403, "PERMISSION_DENIED");
  auto r = Post(base + "/relationships", json{{"clinician_id", clinician_.account_id}}.dump());
  ExpectError(r, 403, "PERMISSION_DENIED");
  EXPECT_NE(r->body.find("own-relationship"), std::string::npos) << r->body;
  ExpectError(Get(base + "/segments"), 403, "PERMISSION_DENIED");
  EXPECT_TRUE(runtime_->access->data().RelationshipsOf(other).empty());
  // A colleague's relationship is theirs to record.
  auto colleague = MakeAccount("dr.colleague", {"doctor"});
  r = Post(base + "/relationships", json{{"clinician_id", colleague.account_id}}.dump());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
}

}  // namespace
}  // namespace medvault
