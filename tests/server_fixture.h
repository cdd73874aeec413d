// A real medvault server in-process on a free loopback port, over a fresh
// data directory made by the same code as `medvault init`.
#pragma once

#include <httplib.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "api/api.h"
#include "app/app.h"
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
    auto rt = app::OpenRuntime(config);
    ASSERT_TRUE(rt.ok()) << rt.status().ToString();
    runtime_ = std::move(*rt);
    std::string t = ReadFileBytes(app::DataDirLayout(data_).bootstrap_token);
    token_ = t.substr(0, t.find('\n'));
    api::ServerOptions options;
    options.port = 0;
    options.max_attachment_bytes = max_attachment;
    options.max_json_bytes = max_json;
    options.worker_threads = 8;
    auto hash = app::LoadBootstrapTokenHash(app::DataDirLayout(data_).bootstrap_token);
    ASSERT_TRUE(hash.ok());
    options.bootstrap_token_sha256 = *hash;
    auto server = api::CreateServer(options, runtime_->records.get(), runtime_->metadata.get());
    ASSERT_TRUE(server.ok());
    server_ = std::move(*server);
    Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_keep_alive(true);
    client_->set_read_timeout(30, 0);
    client_->set_default_headers({{"Authorization", "Bearer " + token_}});
  }

  // A new client connection (after the server closed the previous one).
  void Reconnect() {
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_keep_alive(true);
    client_->set_read_timeout(30, 0);
    client_->set_default_headers({{"Authorization", "Bearer " + token_}});
  }

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
    return nlohmann::json::parse(res->body).value("patient_id", "");
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
  std::filesystem::path data_;
  std::unique_ptr<app::Runtime> runtime_;
  std::unique_ptr<api::Server> server_;
  std::unique_ptr<httplib::Client> client_;
  std::string token_;
};

}  // namespace medvault::testing
