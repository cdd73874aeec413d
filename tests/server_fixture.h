// A real medvault server in-process on a free loopback port, over a fresh
// data directory made by the same code as `medvault init`.
#pragma once

#include <httplib.h>

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "api/api.h"
#include "app/app.h"
#include "auth/auth.h"
#include "common/ids.h"
#include "test_util.h"

namespace medvault::testing {

class ServerFixture : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(); }
  void TearDown() override { StopServer(); }

  void StartServer(uint64_t max_attachment = 64ull << 20, uint64_t max_json = 1 << 20) {
    ASSERT_TRUE(crypto::InitCrypto().ok());
    data_ = dir_.path() / "data";
    if (!std::filesystem::exists(data_)) {
      Status st = app::InitDataDir(data_, false);
      ASSERT_TRUE(st.ok()) << st.ToString();
    }
    app::Config config;
    config.data_dir = data_.string();
    config.max_attachment_bytes = max_attachment;
    config.max_json_bytes = max_json;
    // Cheap password hashing keeps the tests fast; the cost is a setting.
    config.argon2_memory_kib = 8;
    config.argon2_iterations = 1;
    auto rt = app::OpenRuntime(config);
    ASSERT_TRUE(rt.ok()) << rt.status().ToString();
    runtime_ = std::move(*rt);
    std::string t = ReadFileBytes(app::DataDirLayout(data_).metrics_token);
    metrics_token_ = t.substr(0, t.find('\n'));
    api::ServerOptions options;
    options.port = 0;
    options.max_attachment_bytes = max_attachment;
    options.max_json_bytes = max_json;
    options.worker_threads = 8;
    auto hash = app::LoadTokenHash(app::DataDirLayout(data_).metrics_token);
    ASSERT_TRUE(hash.ok());
    options.metrics_token_sha256 = *hash;
    options.web_dir = web_dir_;
    if (tune_server_) {
      tune_server_(options);
    }
    auto server = api::CreateServer(options, runtime_->services());
    ASSERT_TRUE(server.ok());
    server_ = std::move(*server);
    Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    if (institution_id_.empty()) {
      auto inst = runtime_->accounts->CreateInstitution("Test Hospital");
      ASSERT_TRUE(inst.ok()) << inst.status().ToString();
      institution_id_ = inst->institution_id;
      // The default caller: a department head (a doctor with clearance 4).
      clinician_ = MakeAccount("dr.test", {"department-head"});
    }
    token_ = SignIn(clinician_);
    ASSERT_FALSE(token_.empty());
    Reconnect();
  }

  struct TestAccount {
    std::string account_id;
    std::string username;
    std::string password;
    std::string totp_secret;
  };

  // Creates an account in the test institution (patients and proxies: none).
  TestAccount MakeAccount(const std::string& username, const std::vector<std::string>& roles,
                          const std::string& patient_id = "") {
    auth::NewAccount n;
    n.username = username;
    n.display_name = "Test " + username;
    n.password = "Correct-Horse-Battery-" + std::to_string(username.size()) + "x";
    n.roles = roles;
    n.patient_id = patient_id;
    const bool personal =
        roles.size() == 1 && (roles[0] == "patient" || roles[0] == "family-proxy");
    if (!personal) {
      n.institution_id = institution_id_;
    }
    auto created = runtime_->accounts->CreateAccount(n);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    if (!created.ok()) {
      return {};
    }
    return {created->account.account_id, n.username, n.password, created->totp_secret_base32};
  }

  // Signs in over HTTP (with a TOTP code when the account has a secret).
  std::string SignIn(const TestAccount& a) {
    nlohmann::json body = {{"username", a.username}, {"password", a.password}};
    if (!a.totp_secret.empty()) {
      auto secret = auth::Base32Decode(a.totp_secret);
      EXPECT_TRUE(secret.ok());
      // A code per sign-in: codes are single use, so step forward when the
      // same account signs in twice within one period.
      const int64_t t = NowUnixMillis() / 1000 + 30 * (sign_ins_[a.username]++);
      body["totp_code"] = auth::TotpCode(*secret, t, {});
    }
    httplib::Client c("127.0.0.1", server_->port());
    auto res = c.Post("/api/v1/auth/login", body.dump(), "application/json");
    EXPECT_TRUE(res) << "no response";
    if (!res || res->status != 200) {
      ADD_FAILURE() << "sign-in failed: " << (res ? res->body : "no response");
      return "";
    }
    return nlohmann::json::parse(res->body).value("access_token", "");
  }

  // A client connection signed in as `token` ("" = no credential).
  std::unique_ptr<httplib::Client> ClientWith(const std::string& token) {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    c->set_keep_alive(true);
    c->set_read_timeout(30, 0);
    if (!token.empty()) {
      c->set_default_headers({{"Authorization", "Bearer " + token}});
    }
    return c;
  }

  // Makes the default clinician treat the patient.
  void Treat(const std::string& patient_id, const TestAccount* who = nullptr) {
    auto r = runtime_->access->StartRelationship(patient_id, (who ? *who : clinician_).account_id);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  // A new client connection (after the server closed the previous one).
  void Reconnect() { client_ = ClientWith(token_); }

  void StopServer() {
    client_.reset();
    if (server_) {
      server_->Stop();
    }
    server_.reset();
    runtime_.reset();
  }

  httplib::Result Post(const std::string& path, const std::string& body,
                       const std::string& type = "application/json") {
    return client_->Post(path.c_str(), body, type.c_str());
  }
  httplib::Result Put(const std::string& path, const std::string& body,
                      const std::string& type = "application/json") {
    return client_->Put(path.c_str(), body, type.c_str());
  }
  httplib::Result Get(const std::string& path) { return client_->Get(path.c_str()); }
  httplib::Result Delete(const std::string& path) { return client_->Delete(path.c_str()); }

  std::string CreatePatient(const std::string& family = "Fictive",
                            const std::string& identifier = "MRN-1") {
    nlohmann::json body = {{"given_name", "Ada"},
                           {"family_name", family},
                           {"birth_date", "1956-03-14"},
                           {"sex", "female"},
                           {"identifier", identifier}};
    auto res = Post("/api/v1/patients", body.dump());
    EXPECT_TRUE(res) << "no response";
    if (!res) {
      return "";
    }
    EXPECT_EQ(res->status, 201) << res->body;
    const std::string id = nlohmann::json::parse(res->body).value("patient_id", "");
    if (id.size() == 32) {
      Treat(id);
    }
    return id;
  }

  static nlohmann::json Bp(int sys, int dia) {
    return {
        {"systolic", sys}, {"diastolic", dia}, {"unit", "mmHg"}, {"time", "2026-11-20T07:30:00Z"}};
  }

  // Asserts a JSON error body with the given code.
  static void ExpectError(const httplib::Result& res, int status, const std::string& code) {
    ASSERT_TRUE(res) << "no response";
    EXPECT_EQ(res->status, status) << res->body;
    auto j = nlohmann::json::parse(res->body, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << res->body;
    ASSERT_TRUE(j.contains("error")) << res->body;
    EXPECT_EQ(j["error"]["code"], code) << res->body;
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
    EXPECT_EQ(j["error"]["request_id"].get<std::string>().size(), 16u);
  }

  TempDir dir_;
  std::string web_dir_;  // the portal's files; "" = none
  // Adjusts the server's options before it starts (timeouts, limits).
  std::function<void(api::ServerOptions&)> tune_server_;
  std::filesystem::path data_;
  std::unique_ptr<app::Runtime> runtime_;
  std::unique_ptr<api::Server> server_;
  std::unique_ptr<httplib::Client> client_;
  std::string token_;
  std::string metrics_token_;
  std::string institution_id_;
  TestAccount clinician_;
  std::map<std::string, int> sign_ins_;
};

}  // namespace medvault::testing
