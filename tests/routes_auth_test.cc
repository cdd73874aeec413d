// Sad paths of the sign-in, token and own-account routes through the real
// in-process server (src/api/routes_auth.cc).
#include <gtest/gtest.h>

#include "server_fixture.h"

namespace medvault {
namespace {

using nlohmann::json;
using testing::ServerFixture;

class RoutesAuthTest : public ServerFixture {
 protected:
  httplib::Result Login(const std::string& body, const std::string& type = "application/json") {
    httplib::Client c("127.0.0.1", server_->port());
    return c.Post("/api/v1/auth/login", body, type.c_str());
  }

  // Signs in with password only (no TOTP) and answers the status.
  int LoginStatus(const std::string& username, const std::string& password) {
    auto r = Login(json{{"username", username}, {"password", password}}.dump());
    return r ? r->status : -1;
  }
};

TEST_F(RoutesAuthTest, LoginRejectsMalformedBodies) {
  ExpectError(Login("{\"username\": \"dr.test\", "), 400, "INVALID_ARGUMENT");
  ExpectError(Login(json{{"username", "dr.test"}, {"password", "x"}, {"colour", "red"}}.dump()),
              400, "INVALID_ARGUMENT");
  ExpectError(Login(json{{"username", 42}, {"password", "x"}}.dump()), 400, "INVALID_ARGUMENT");
  ExpectError(Login(json{{"username", "dr.test"}}.dump()), 400, "INVALID_ARGUMENT");
  ExpectError(
      Login(json{{"username", "dr.test"}, {"password", clinician_.password}}.dump(), "text/plain"),
      400, "INVALID_ARGUMENT");
}

TEST_F(RoutesAuthTest, LoginRejectsUnknownAudience) {
  auto patient = MakeAccount("patient.aud", {"patient"}, CreatePatient("Aud", "MRN-AUD"));
  ExpectError(Login(json{{"username", patient.username},
                         {"password", patient.password},
                         {"audience", "no-such-audience"}}
                        .dump()),
              400, "INVALID_ARGUMENT");
}

TEST_F(RoutesAuthTest, RefreshRejectsGarbageAndAccessTokens) {
  httplib::Client c("127.0.0.1", server_->port());
  ExpectError(c.Post("/api/v1/auth/refresh", json{{"refresh_token", "garbage.token"}}.dump(),
                     "application/json"),
              401, "UNAUTHENTICATED");
  // The access token is not a refresh token.
  ExpectError(
      c.Post("/api/v1/auth/refresh", json{{"refresh_token", token_}}.dump(), "application/json"),
      401, "UNAUTHENTICATED");
  // The access token still works afterwards.
  auto me = Get("/api/v1/me");
  ASSERT_TRUE(me);
  EXPECT_EQ(me->status, 200) << me->body;
}

TEST_F(RoutesAuthTest, LogoutWithoutTokenIsUnauthenticated) {
  httplib::Client c("127.0.0.1", server_->port());
  ExpectError(c.Post("/api/v1/auth/logout", "{}", "application/json"), 401, "UNAUTHENTICATED");
}

TEST_F(RoutesAuthTest, ChangePasswordFailuresKeepTheOldPassword) {
  auto patient = MakeAccount("patient.pw", {"patient"}, CreatePatient("Pw", "MRN-PW"));
  {
    auto pc = ClientWith(SignIn(patient));
    ExpectError(pc->Post("/api/v1/me/password",
                         json{{"old_password", "Wrong-Horse-Battery-99x"},
                              {"new_password", "Another-Strong-Passphrase-42"}}
                             .dump(),
                         "application/json"),
                401, "UNAUTHENTICATED");
    ExpectError(pc->Post("/api/v1/me/password",
                         json{{"old_password", patient.password}, {"new_password", "abc"}}.dump(),
                         "application/json"),
                400, "INVALID_ARGUMENT");
  }
  EXPECT_EQ(LoginStatus(patient.username, patient.password), 200);
  EXPECT_EQ(LoginStatus(patient.username, "Another-Strong-Passphrase-42"), 401);
}

TEST_F(RoutesAuthTest, NotificationsOfANonPatientAreEmpty) {
  auto r = Get("/api/v1/me/notifications");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = json::parse(r->body);
  ASSERT_TRUE(j["notifications"].is_array());
  EXPECT_TRUE(j["notifications"].empty());
}

}  // namespace
}  // namespace medvault
