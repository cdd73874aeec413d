// Authentication and the decision point through the real HTTP server:
// every data route decides, and the rules of issue 3 end to end (consents,
// relationships, delegation, proxies, break-glass, tokens, MFA, lockout).
// The rule-by-rule table is tests/data/pdp_cases.txt (pdp_table_test).
#include <gtest/gtest.h>

#include <regex>

#include "server_fixture.h"

namespace medvault {
namespace {

using nlohmann::json;
using testing::ServerFixture;

class HttpAuthzTest : public ServerFixture {
 protected:
  // Close our keep-alive connection first, or Stop() waits for its timeout.
  void TearDown() override {
    patient_client_.reset();
    ServerFixture::TearDown();
  }

  // A patient record, treated by the default clinician, with an account.
  void SetUpPatient() {
    patient_id_ = CreatePatient("Authz", "MRN-AUTHZ");
    ASSERT_EQ(patient_id_.size(), 32u);
    patient_ = MakeAccount("patient.authz", {"patient"}, patient_id_);
    patient_client_ = ClientWith(SignIn(patient_));
    for (const char* path : {"physical-signs/blood-pressure", "psychiatry/assessment",
                             "internal-medicine/cardiology/ecg", "life-record/diet"}) {
      auto r = Put(Base() + "/segments/" + path, json{{"data", Bp(140, 90)}}.dump());
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 201) << path << " " << r->body;
    }
  }

  std::string Base() const { return "/api/v1/patients/" + patient_id_; }

  static std::string Decision(const httplib::Result& r) {
    return r ? r->get_header_value("X-Access-Decision") : "";
  }

  static httplib::Result Send(httplib::Client& c, const std::string& method,
                              const std::string& path, const std::string& body = "{}") {
    if (method == "GET") {
      return c.Get(path.c_str());
    }
    if (method == "DELETE") {
      return c.Delete(path.c_str());
    }
    if (method == "POST") {
      return c.Post(path.c_str(), body, "application/json");
    }
    return c.Put(path.c_str(), body, "application/json");
  }

  std::string patient_id_;
  TestAccount patient_;
  std::unique_ptr<httplib::Client> patient_client_;
};

// The route enumeration: every data route the server registered answers a
// signed-in caller only after asking the decision point (X-Access-Decision),
// and an operator, who never reads health data, is refused everywhere but
// on the platform's metrics.
TEST_F(HttpAuthzTest, EveryDataRouteAsksTheDecisionPoint) {
  SetUpPatient();
  auto operator_client = ClientWith(SignIn(MakeAccount("operator.test", {"operator"})));
  const auto routes = server_->DataRoutes();
  ASSERT_GE(routes.size(), 35u);
  for (const std::string& route : routes) {
    const std::string method = route.substr(0, route.find(' '));
    std::string path = route.substr(route.find(' ') + 1);
    path = std::regex_replace(path, std::regex("\\{path\\}"), "physical-signs/blood-pressure");
    path = std::regex_replace(path, std::regex("\\{([a-z-]+)\\|[^}]*\\}"), "$1");
    path = std::regex_replace(path, std::regex("\\{[a-z_]+\\}"), patient_id_);
    for (auto* client : {operator_client.get(), client_.get(), patient_client_.get()}) {
      // Uploads take a raw body; the rest JSON.
      httplib::Result r = path.find("/attachments/") != std::string::npos && method == "PUT"
                              ? client->Put(path.c_str(), "%PDF-1.4", "application/pdf")
                              : Send(*client, method, path);
      ASSERT_TRUE(r) << route;
      EXPECT_NE(r->status, 500) << route << " " << r->body;
      EXPECT_FALSE(Decision(r).empty())
          << route << " answered " << r->status << " without a decision: " << r->body;
      if (client == operator_client.get()) {
        if (route == "GET /metrics") {
          EXPECT_EQ(r->status, 200);
        } else {
          EXPECT_EQ(r->status, 403) << route << " " << r->body;
          EXPECT_EQ(Decision(r).rfind("deny ", 0), 0u) << route;
        }
      }
    }
  }
}

// An unknown patient and a forbidden one get the same answer on every
// route that names a patient: the decision comes before anything is read.
TEST_F(HttpAuthzTest, UnknownAndForbiddenPatientsLookTheSame) {
  SetUpPatient();
  auto stranger = MakeAccount("dr.stranger", {"doctor"});  // treats nobody
  auto c = ClientWith(SignIn(stranger));
  const std::string unknown = NewRandomId();
  auto strip = [](const httplib::Result& r) {
    if (!r) {
      return std::string("no response");
    }
    auto j = json::parse(r->body, nullptr, false);
    if (!j.is_discarded() && j.contains("error")) {
      j["error"].erase("request_id");
    }
    return std::to_string(r->status) + " " + (j.is_discarded() ? r->body : j.dump());
  };
  int compared = 0;
  for (const std::string& route : server_->DataRoutes()) {
    const std::string method = route.substr(0, route.find(' '));
    std::string path = route.substr(route.find(' ') + 1);
    if (method != "GET" || path.find("/patients/{id}") == std::string::npos) {
      continue;
    }
    path = std::regex_replace(path, std::regex("\\{path\\}"), "physical-signs/blood-pressure");
    path = std::regex_replace(path, std::regex("\\{([a-z-]+)\\|[^}]*\\}"), "$1");
    for (const std::string& query : {std::string(), std::string("?prefix=physical-signs")}) {
      if (!query.empty() && path.find("/segments") + 9 != path.size()) {
        continue;
      }
      auto known = c->Get((std::regex_replace(path, std::regex("\\{id\\}"), patient_id_) + query +
                           (path.find("/export") != std::string::npos ? "?format=fhir" : ""))
                              .c_str());
      auto none = c->Get((std::regex_replace(path, std::regex("\\{id\\}"), unknown) + query +
                          (path.find("/export") != std::string::npos ? "?format=fhir" : ""))
                             .c_str());
      ASSERT_TRUE(known && none) << path;
      EXPECT_EQ(known->status, 403) << path << " " << known->body;
      std::string a = strip(known);
      std::string b = strip(none);
      EXPECT_EQ(a, b) << route << query;
      ++compared;
    }
  }
  EXPECT_GE(compared, 6);
  c.reset();
}

TEST_F(HttpAuthzTest, SelfRoutesNeedASessionButNoDecision) {
  SetUpPatient();
  auto me = patient_client_->Get("/api/v1/me");
  ASSERT_TRUE(me);
  ASSERT_EQ(me->status, 200);
  EXPECT_EQ(json::parse(me->body)["patient_id"], patient_id_);
  auto doctor = Get("/api/v1/me");
  ASSERT_TRUE(doctor);
  EXPECT_EQ(json::parse(doctor->body)["treating"][0], patient_id_);
  httplib::Client anon("127.0.0.1", server_->port());
  ExpectError(anon.Get("/api/v1/me"), 401, "UNAUTHENTICATED");
  ExpectError(anon.Get("/api/v1/segment-types"), 401, "UNAUTHENTICATED");
}

TEST_F(HttpAuthzTest, PatientReadsOwnRecordOnlyAndWritesNoDoctorNotes) {
  SetUpPatient();
  auto own = patient_client_->Get((Base() + "/segments/psychiatry/assessment").c_str());
  ASSERT_TRUE(own);
  EXPECT_EQ(own->status, 200);
  EXPECT_EQ(Decision(own), "permit patient-self");
  auto note = patient_client_->Put((Base() + "/segments/doctor-description/orders").c_str(),
                                   json{{"text", "I prescribe myself"}}.dump(), "application/json");
  ExpectError(note, 403, "PERMISSION_DENIED");
  auto diary = patient_client_->Put((Base() + "/segments/life-record/diet").c_str(),
                                    json{{"data", {{"meal", "soup"}}}}.dump(), "application/json");
  ASSERT_TRUE(diary);
  EXPECT_EQ(diary->status, 201);
  const std::string other = CreatePatient("Other", "MRN-OTHER");
  ExpectError(patient_client_->Get(("/api/v1/patients/" + other + "/segments").c_str()), 403,
              "PERMISSION_DENIED");
}

TEST_F(HttpAuthzTest, PatientDenialBeatsTheTreatingRelationshipAndExpires) {
  SetUpPatient();
  auto grant =
      patient_client_->Post((Base() + "/consents").c_str(),
                            json{{"effect", "deny"},
                                 {"path_prefix", "psychiatry"},
                                 {"grantee_kind", "account"},
                                 {"grantee", clinician_.account_id},
                                 {"expires_at", FormatRfc3339Millis(NowUnixMillis() + 2000)}}
                                .dump(),
                            "application/json");
  ASSERT_TRUE(grant);
  ASSERT_EQ(grant->status, 201) << grant->body;
  auto denied = Get(Base() + "/segments/psychiatry/assessment");
  ExpectError(denied, 403, "PERMISSION_DENIED");
  EXPECT_EQ(Decision(denied), "deny consent-denied");
  auto allowed = Get(Base() + "/segments/physical-signs/blood-pressure");
  ASSERT_TRUE(allowed);
  EXPECT_EQ(allowed->status, 200);
  // The tree hides what the denial covers.
  auto tree = Get(Base() + "/segments");
  ASSERT_TRUE(tree);
  ASSERT_EQ(tree->status, 200);
  EXPECT_EQ(tree->body.find("psychiatry"), std::string::npos);
  EXPECT_NE(tree->body.find("physical-signs"), std::string::npos);
  // The denial expires; then the relationship applies again.
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  auto after = Get(Base() + "/segments/psychiatry/assessment");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200) << after->body;
}

TEST_F(HttpAuthzTest, GrantOpensARecordToAnotherDoctorUntilRevoked) {
  SetUpPatient();
  auto second = MakeAccount("dr.second", {"doctor"});
  auto second_client = ClientWith(SignIn(second));
  const std::string ecg = Base() + "/segments/internal-medicine/cardiology/ecg";
  auto before = second_client->Get(ecg.c_str());
  ExpectError(before, 403, "PERMISSION_DENIED");
  EXPECT_EQ(Decision(before), "deny no-relationship");
  auto grant = patient_client_->Post((Base() + "/consents").c_str(),
                                     json{{"effect", "grant"},
                                          {"path_prefix", "internal-medicine/cardiology"},
                                          {"grantee_kind", "account"},
                                          {"grantee", second.account_id},
                                          {"purposes", {"treatment"}}}
                                         .dump(),
                                     "application/json");
  ASSERT_TRUE(grant);
  ASSERT_EQ(grant->status, 201) << grant->body;
  const std::string consent_id = json::parse(grant->body)["consent_id"];
  auto granted = second_client->Get(ecg.c_str());
  ASSERT_TRUE(granted);
  EXPECT_EQ(granted->status, 200) << granted->body;
  EXPECT_EQ(Decision(granted), "permit consent-granted");
  // Outside the granted subtree, and for another purpose: still closed.
  ExpectError(second_client->Get((Base() + "/segments/psychiatry/assessment").c_str()), 403,
              "PERMISSION_DENIED");
  httplib::Headers research = {{"X-Purpose-Of-Use", "research"}};
  auto other_purpose = second_client->Get(ecg.c_str(), research);
  ExpectError(other_purpose, 403, "PERMISSION_DENIED");
  // The doctor cannot manage the patient's consents.
  ExpectError(second_client->Get((Base() + "/consents").c_str()), 403, "PERMISSION_DENIED");
  auto revoke = patient_client_->Delete((Base() + "/consents/" + consent_id).c_str());
  ASSERT_TRUE(revoke);
  EXPECT_EQ(revoke->status, 200);
  ExpectError(second_client->Get(ecg.c_str()), 403, "PERMISSION_DENIED");
}

TEST_F(HttpAuthzTest, EndedRelationshipClosesTheRecord) {
  SetUpPatient();
  auto rels = patient_client_->Get((Base() + "/relationships").c_str());
  ASSERT_TRUE(rels);
  ASSERT_EQ(rels->status, 200) << rels->body;
  const std::string rid = json::parse(rels->body)["relationships"][0]["relationship_id"];
  auto end = patient_client_->Delete((Base() + "/relationships/" + rid).c_str());
  ASSERT_TRUE(end);
  ASSERT_EQ(end->status, 200) << end->body;
  auto after = Get(Base() + "/segments/physical-signs/blood-pressure");
  ExpectError(after, 403, "PERMISSION_DENIED");
  EXPECT_EQ(Decision(after), "deny relationship-ended");
}

TEST_F(HttpAuthzTest, DelegationNeedsThePatientsPermission) {
  SetUpPatient();
  auto nurse = MakeAccount("nurse.partner", {"nurse"});
  auto nurse_client = ClientWith(SignIn(nurse));
  const std::string bp = Base() + "/segments/physical-signs/blood-pressure";
  auto refused = Post(Base() + "/delegations", json{{"to", nurse.account_id}}.dump());
  ExpectError(refused, 409, "FAILED_PRECONDITION");  // not allowed by the patient yet
  auto settings = patient_client_->Put(
      (Base() + "/settings").c_str(),
      json{{"allow_delegation", true}, {"never_break_glass", json::array()}}.dump(),
      "application/json");
  ASSERT_TRUE(settings);
  ASSERT_EQ(settings->status, 200) << settings->body;
  auto delegated = Post(Base() + "/delegations", json{{"to", nurse.account_id}}.dump());
  ASSERT_TRUE(delegated);
  ASSERT_EQ(delegated->status, 201) << delegated->body;
  auto read = nurse_client->Get(bp.c_str());
  ASSERT_TRUE(read);
  EXPECT_EQ(read->status, 200) << read->body;
  EXPECT_EQ(Decision(read), "permit delegated-relationship");
  // The nurse's clearance (2) stays below psychiatry (4).
  ExpectError(nurse_client->Get((Base() + "/segments/psychiatry/assessment").c_str()), 403,
              "PERMISSION_DENIED");
  // The patient withdraws delegation: the delegate loses access at once.
  auto withdraw = patient_client_->Put(
      (Base() + "/settings").c_str(),
      json{{"allow_delegation", false}, {"never_break_glass", json::array()}}.dump(),
      "application/json");
  ASSERT_TRUE(withdraw);
  ASSERT_EQ(withdraw->status, 200);
  auto closed = nurse_client->Get(bp.c_str());
  ExpectError(closed, 403, "PERMISSION_DENIED");
  EXPECT_EQ(Decision(closed), "deny delegation-not-allowed");
}

TEST_F(HttpAuthzTest, ProxyActsOnlyWithinThePatientsScope) {
  SetUpPatient();
  auto proxy = MakeAccount("family.member", {"family-proxy"});
  auto proxy_client = ClientWith(SignIn(proxy));
  auto link = patient_client_->Post((Base() + "/proxies").c_str(),
                                    json{{"proxy_account_id", proxy.account_id},
                                         {"path_prefixes", {"life-record"}},
                                         {"actions", {"read", "list"}}}
                                        .dump(),
                                    "application/json");
  ASSERT_TRUE(link);
  ASSERT_EQ(link->status, 201) << link->body;
  auto diet = proxy_client->Get((Base() + "/segments/life-record/diet").c_str());
  ASSERT_TRUE(diet);
  EXPECT_EQ(diet->status, 200) << diet->body;
  auto beyond = proxy_client->Get((Base() + "/segments/physical-signs/blood-pressure").c_str());
  ExpectError(beyond, 403, "PERMISSION_DENIED");
  EXPECT_EQ(Decision(beyond), "deny proxy-out-of-scope");
  auto write = proxy_client->Put((Base() + "/segments/life-record/diet").c_str(),
                                 json{{"data", {{"meal", "cake"}}}}.dump(), "application/json");
  ExpectError(write, 403, "PERMISSION_DENIED");
  // A proxy cannot widen their own scope.
  ExpectError(proxy_client->Get((Base() + "/consents").c_str()), 403, "PERMISSION_DENIED");
}

TEST_F(HttpAuthzTest, BreakGlassIsTimeLimitedNotifiedAndRespectsNeverBreakGlass) {
  SetUpPatient();
  ASSERT_EQ(
      patient_client_
          ->Put((Base() + "/settings").c_str(),
                json{{"allow_delegation", false}, {"never_break_glass", {"psychiatry"}}}.dump(),
                "application/json")
          ->status,
      200);
  auto er = MakeAccount("dr.emergency", {"doctor"});
  auto er_client = ClientWith(SignIn(er));
  const std::string bp = Base() + "/segments/physical-signs/blood-pressure";
  ExpectError(er_client->Get(bp.c_str()), 403, "PERMISSION_DENIED");
  auto no_reason = er_client->Post((Base() + "/break-glass").c_str(), "{}", "application/json");
  ExpectError(no_reason, 403, "PERMISSION_DENIED");
  EXPECT_EQ(Decision(no_reason), "deny break-glass-reason-missing");
  auto short_reason = er_client->Post((Base() + "/break-glass").c_str(),
                                      json{{"reason", "   hurry   "}}.dump(), "application/json");
  ExpectError(short_reason, 403, "PERMISSION_DENIED");
  auto declared = er_client->Post(
      (Base() + "/break-glass").c_str(),
      json{{"reason", "Unconscious on arrival, allergies unknown"}}.dump(), "application/json");
  ASSERT_TRUE(declared);
  ASSERT_EQ(declared->status, 201) << declared->body;
  auto grant = json::parse(declared->body);
  EXPECT_TRUE(grant["notified_patient"].get<bool>());
  EXPECT_TRUE(grant["flagged_for_review"].get<bool>());
  auto read = er_client->Get(bp.c_str());
  ASSERT_TRUE(read);
  EXPECT_EQ(read->status, 200) << read->body;
  EXPECT_EQ(Decision(read), "permit break-glass");
  EXPECT_TRUE(json::parse(read->body).contains("access_expires_at"));
  auto closed = er_client->Get((Base() + "/segments/psychiatry/assessment").c_str());
  ExpectError(closed, 403, "PERMISSION_DENIED");
  EXPECT_EQ(Decision(closed), "deny never-break-glass");
  // Break-glass reads, it does not write.
  ExpectError(er_client->Put(bp.c_str(), json{{"data", Bp(1, 1)}}.dump(), "application/json"), 403,
              "PERMISSION_DENIED");
  // The patient is told, with the reason.
  auto notes = patient_client_->Get("/api/v1/me/notifications");
  ASSERT_TRUE(notes);
  ASSERT_EQ(notes->status, 200);
  auto list = json::parse(notes->body)["notifications"];
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["account_id"], er.account_id);
  EXPECT_EQ(list[0]["reason"], "Unconscious on arrival, allergies unknown");
  // The privacy officer reviews it (without reading the record); a doctor may not.
  auto officer = ClientWith(SignIn(MakeAccount("privacy.review", {"privacy-officer"})));
  auto review = officer->Get("/api/v1/break-glass");
  ASSERT_TRUE(review);
  ASSERT_EQ(review->status, 200) << review->body;
  auto flagged = json::parse(review->body)["break_glass"];
  ASSERT_EQ(flagged.size(), 1u);
  EXPECT_EQ(flagged[0]["patient_id"], patient_id_);
  ExpectError(officer->Get(bp.c_str()), 403, "PERMISSION_DENIED");
  ExpectError(er_client->Get("/api/v1/break-glass"), 403, "PERMISSION_DENIED");
  // A pharmacist may not break glass at all.
  auto pharmacist = ClientWith(SignIn(MakeAccount("pharma.test", {"pharmacist"})));
  ExpectError(pharmacist->Post((Base() + "/break-glass").c_str(),
                               json{{"reason", "I would like to see everything"}}.dump(),
                               "application/json"),
              403, "PERMISSION_DENIED");
}

TEST_F(HttpAuthzTest, OperatorsAndAuditorsNeverReadHealthData) {
  SetUpPatient();
  for (const char* role : {"operator", "auditor"}) {
    auto c = ClientWith(SignIn(MakeAccount(std::string(role) + ".x", {role})));
    auto r = c->Get((Base() + "/segments/physical-signs/blood-pressure").c_str());
    ExpectError(r, 403, "PERMISSION_DENIED");
    EXPECT_EQ(Decision(r), "deny no-health-data-role");
    // Not even by breaking glass.
    ExpectError(
        c->Post((Base() + "/break-glass").c_str(),
                json{{"reason", "Operator says it is an emergency"}}.dump(), "application/json"),
        403, "PERMISSION_DENIED");
  }
}

TEST_F(HttpAuthzTest, AdminsManageTheirOwnInstitutionOnly) {
  auto admin = MakeAccount("admin.here", {"institution-admin"});
  auto admin_client = ClientWith(SignIn(admin));
  auto created = admin_client->Post("/api/v1/accounts",
                                    json{{"username", "dr.new"},
                                         {"display_name", "Dr New"},
                                         {"password", "Another-Long-Passphrase-7"},
                                         {"roles", {"doctor"}},
                                         {"institution_id", institution_id_}}
                                        .dump(),
                                    "application/json");
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  auto body = json::parse(created->body);
  EXPECT_FALSE(body["totp_secret"].get<std::string>().empty()) << "doctors get a second factor";
  EXPECT_FALSE(body.contains("password"));
  auto other = runtime_->accounts->CreateInstitution("Elsewhere Clinic");
  ASSERT_TRUE(other.ok());
  auto foreign = admin_client->Post("/api/v1/accounts",
                                    json{{"username", "dr.foreign"},
                                         {"display_name", "Dr Foreign"},
                                         {"password", "Another-Long-Passphrase-7"},
                                         {"roles", {"doctor"}},
                                         {"institution_id", other->institution_id}}
                                        .dump(),
                                    "application/json");
  ExpectError(foreign, 403, "PERMISSION_DENIED");
  EXPECT_EQ(Decision(foreign), "deny other-institution");
  auto weak = admin_client->Post("/api/v1/accounts",
                                 json{{"username", "dr.weak"},
                                      {"display_name", "Dr Weak"},
                                      {"password", "password"},
                                      {"roles", {"doctor"}},
                                      {"institution_id", institution_id_}}
                                     .dump(),
                                 "application/json");
  ExpectError(weak, 400, "INVALID_ARGUMENT");
  // A doctor is no admin.
  ExpectError(Get("/api/v1/accounts"), 403, "PERMISSION_DENIED");
}

TEST_F(HttpAuthzTest, TokensLogoutRefreshReuseAndRevocation) {
  auto nurse = MakeAccount("nurse.tokens", {"nurse"});
  auto secret = auth::Base32Decode(nurse.totp_secret);
  ASSERT_TRUE(secret.ok());
  httplib::Client c("127.0.0.1", server_->port());
  auto login = [&](int64_t step_offset) {
    json body = {{"username", nurse.username},
                 {"password", nurse.password},
                 {"totp_code", auth::TotpCode(*secret, NowUnixMillis() / 1000 + step_offset, {})}};
    return c.Post("/api/v1/auth/login", body.dump(), "application/json");
  };
  // MFA: no code, a wrong code, then the right one; the same code again is a replay.
  auto no_code = c.Post("/api/v1/auth/login",
                        json{{"username", nurse.username}, {"password", nurse.password}}.dump(),
                        "application/json");
  ExpectError(no_code, 401, "UNAUTHENTICATED");
  auto first = login(0);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200) << first->body;
  auto replay = login(0);
  ExpectError(replay, 401, "UNAUTHENTICATED");
  auto tokens = json::parse(first->body);
  const std::string access = tokens["access_token"];
  const std::string refresh = tokens["refresh_token"];
  auto me = ClientWith(access)->Get("/api/v1/me");
  ASSERT_TRUE(me);
  EXPECT_EQ(me->status, 200);
  // Tampered and wrong-kind tokens.
  std::string tampered = access;
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
  ExpectError(ClientWith(tampered)->Get("/api/v1/me"), 401, "UNAUTHENTICATED");
  ExpectError(ClientWith(refresh)->Get("/api/v1/me"), 401, "UNAUTHENTICATED");
  // Rotation: the new pair works; replaying the old refresh token revokes the family.
  auto rotated =
      c.Post("/api/v1/auth/refresh", json{{"refresh_token", refresh}}.dump(), "application/json");
  ASSERT_TRUE(rotated);
  ASSERT_EQ(rotated->status, 200) << rotated->body;
  const std::string access2 = json::parse(rotated->body)["access_token"];
  ASSERT_EQ(ClientWith(access2)->Get("/api/v1/me")->status, 200);
  auto reuse =
      c.Post("/api/v1/auth/refresh", json{{"refresh_token", refresh}}.dump(), "application/json");
  ExpectError(reuse, 401, "UNAUTHENTICATED");
  ExpectError(ClientWith(access2)->Get("/api/v1/me"), 401, "UNAUTHENTICATED");
  // Logout takes effect at once.
  auto again = login(30);
  ASSERT_TRUE(again);
  ASSERT_EQ(again->status, 200) << again->body;
  const std::string access3 = json::parse(again->body)["access_token"];
  auto session = ClientWith(access3);
  ASSERT_EQ(session->Get("/api/v1/me")->status, 200);
  auto out = session->Post("/api/v1/auth/logout", "{}", "application/json");
  ASSERT_TRUE(out);
  EXPECT_EQ(out->status, 200);
  ExpectError(ClientWith(access3)->Get("/api/v1/me"), 401, "UNAUTHENTICATED");
}

TEST_F(HttpAuthzTest, AdminRevocationAndDisablingTakeEffectAtOnce) {
  auto admin = ClientWith(SignIn(MakeAccount("admin.revoke", {"institution-admin"})));
  auto target = MakeAccount("pharma.revoke", {"pharmacist"});
  auto victim = ClientWith(SignIn(target));
  ASSERT_EQ(victim->Get("/api/v1/me")->status, 200);
  auto revoke = admin->Post(("/api/v1/accounts/" + target.account_id + "/revoke-sessions").c_str(),
                            "{}", "application/json");
  ASSERT_TRUE(revoke);
  ASSERT_EQ(revoke->status, 200) << revoke->body;
  ExpectError(victim->Get("/api/v1/me"), 401, "UNAUTHENTICATED");
  auto victim2 = ClientWith(SignIn(target));
  ASSERT_EQ(victim2->Get("/api/v1/me")->status, 200);
  auto disable = admin->Post(("/api/v1/accounts/" + target.account_id + "/disable").c_str(), "{}",
                             "application/json");
  ASSERT_TRUE(disable);
  ASSERT_EQ(disable->status, 200);
  ExpectError(victim2->Get("/api/v1/me"), 401, "UNAUTHENTICATED");
}

// Failed sign-ins slow down then lock, and an unknown username meets exactly
// the same answers, so the responses do not reveal who has an account.
TEST_F(HttpAuthzTest, LockoutLooksTheSameForUnknownUsers) {
  auto patient = MakeAccount("lock.me", {"patient"}, CreatePatient("Lock", "MRN-LOCK"));
  httplib::Client c("127.0.0.1", server_->port());
  auto attempt = [&](const std::string& user) {
    auto r = c.Post("/api/v1/auth/login",
                    json{{"username", user}, {"password", "Wrong-Password-123"}}.dump(),
                    "application/json");
    EXPECT_TRUE(r);
    std::string message = json::parse(r->body)["error"]["message"];
    // Retry-in seconds may differ by one between the two calls.
    message = std::regex_replace(message, std::regex("[0-9]+"), "N");
    return std::to_string(r->status) + " " + message;
  };
  std::vector<std::string> known;
  std::vector<std::string> unknown;
  for (int i = 0; i < 6; ++i) {
    known.push_back(attempt(patient.username));
    unknown.push_back(attempt("nobody.here"));
  }
  EXPECT_EQ(known, unknown);
  EXPECT_EQ(known.front(), "401 invalid username or password");
  EXPECT_EQ(known.back().substr(0, 4), "429 ") << known.back();
  // While throttled even the right password is refused.
  auto right = c.Post("/api/v1/auth/login",
                      json{{"username", patient.username}, {"password", patient.password}}.dump(),
                      "application/json");
  ASSERT_TRUE(right);
  EXPECT_EQ(right->status, 429);
}

}  // namespace
}  // namespace medvault
