// medvault institution|department|account|relationship|totp-code on a data directory.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "app/app.h"
#include "cli_test_util.h"
#include "common/ids.h"
#include "test_util.h"

namespace medvault {
namespace {

using testing::RunMedvault;

// The admin commands on a data directory: the first admin, departments,
// accounts with generated passwords and TOTP secrets, resets and errors.
TEST(AdminCliTest, AdminCommandsBootstrapAnInstitution) {
  testing::TempDir tmp;
  const std::string data = (tmp.path() / "data").string();
  const std::string cheap = "MEDVAULT_ARGON2_MEMORY_KIB=8 MEDVAULT_ARGON2_ITERATIONS=1";
  ASSERT_EQ(RunMedvault("init --data " + data).exit_code, 0);
  auto inst = RunMedvault("institution create --name 'General Hospital' --data " + data, cheap);
  ASSERT_EQ(inst.exit_code, 0) << inst.output;
  const std::string inst_id = inst.output.substr(0, 32);
  auto dup = RunMedvault("institution create --name 'General Hospital' --data " + data, cheap);
  EXPECT_NE(dup.exit_code, 0);
  auto dept = RunMedvault(
      "department create --institution " + inst_id + " --name Cardiology --data " + data, cheap);
  ASSERT_EQ(dept.exit_code, 0) << dept.output;
  auto admin = RunMedvault(
      "account create --username chief --display-name 'Chief Admin' "
      "--role institution-admin --institution " +
          inst_id + " --data " + data,
      cheap);
  ASSERT_EQ(admin.exit_code, 0) << admin.output;
  EXPECT_NE(admin.output.find("password: "), std::string::npos) << "a generated password is shown";
  EXPECT_NE(admin.output.find("totp secret: "), std::string::npos) << "admins get a second factor";
  const std::string admin_id = admin.output.substr(0, 32);
  // The printed secret yields 6-digit codes.
  const size_t at = admin.output.find("totp secret: ") + 13;
  const std::string secret = admin.output.substr(at, admin.output.find(' ', at) - at);
  auto code = RunMedvault("totp-code " + secret);
  EXPECT_EQ(code.exit_code, 0);
  EXPECT_EQ(code.output.size(), 7u) << code.output;
  EXPECT_NE(RunMedvault("totp-code not-base32!").exit_code, 0);
  // A chosen password on stdin must pass the strength policy.
  auto weak = RunMedvault(
      "account create --username weak --display-name W --role patient "
      "--password-stdin --data " +
          data,
      "echo password123 | " + cheap);
  EXPECT_EQ(weak.exit_code, 2) << weak.output;
  auto unknown_role = RunMedvault(
      "account create --username x1 --display-name X --role wizard --data " + data, cheap);
  EXPECT_EQ(unknown_role.exit_code, 2) << unknown_role.output;
  auto list = RunMedvault("account list --data " + data, cheap);
  ASSERT_EQ(list.exit_code, 0);
  EXPECT_NE(list.output.find("chief"), std::string::npos);
  EXPECT_EQ(list.output.find("weak"), std::string::npos) << "a refused account is not created";
  auto reset = RunMedvault("account reset-password --id " + admin_id + " --data " + data, cheap);
  EXPECT_EQ(reset.exit_code, 0) << reset.output;
  auto disable = RunMedvault("account disable --id " + admin_id + " --data " + data, cheap);
  EXPECT_EQ(disable.exit_code, 0) << disable.output;
  EXPECT_NE(RunMedvault("account list --data " + data, cheap).output.find("disabled"),
            std::string::npos);
  EXPECT_NE(
      RunMedvault("account disable --id 0123456789abcdef0123456789abcdef --data " + data, cheap)
          .exit_code,
      0);
  EXPECT_NE(RunMedvault("relationship start --patient 0123456789abcdef0123456789abcdef "
                        "--clinician " +
                            admin_id + " --data " + data,
                        cheap)
                .exit_code,
            0);
  EXPECT_EQ(RunMedvault("account frobnicate --id x --data " + data, cheap).exit_code, 2);
}

// The real `medvault serve` in a child process, stopped with SIGTERM.
class ServerProcess {
 public:
  ServerProcess(const std::string& data, int port) : port_(port) {
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string listen = "127.0.0.1:" + std::to_string(port);
      ::setenv("MEDVAULT_ARGON2_MEMORY_KIB", "8", 1);
      ::setenv("MEDVAULT_ARGON2_ITERATIONS", "1", 1);
      ::execl(MEDVAULT_BINARY, "medvault", "serve", "--data", data.c_str(), "--listen",
              listen.c_str(), "--log-level", "error", static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  bool WaitReady() {
    httplib::Client c("127.0.0.1", port_);
    for (int i = 0; i < 300; ++i) {
      if (auto r = c.Get("/healthz"); r && r->status == 200) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

 private:
  int port_;
  pid_t pid_ = -1;
};

// Issue 13: admin commands run beside a running server reach it: a revoked
// or disabled account's live token fails on the very next request, and a
// relationship ended from the CLI stops permitting within a second (the
// server used to keep both until its cache expired or it restarted).
TEST(AdminCliTest, ChangesMadeWithTheCliReachARunningServer) {
  ASSERT_TRUE(crypto::InitCrypto().ok());
  testing::TempDir tmp;
  const std::string data = (tmp.path() / "data").string();
  ASSERT_TRUE(app::InitDataDir(data, false).ok());
  app::DemoData demo;
  std::string relationship_id;
  {
    app::Config config;
    config.data_dir = data;
    config.argon2_memory_kib = 8;
    config.argon2_iterations = 1;
    auto rt = app::OpenRuntime(config);
    ASSERT_TRUE(rt.ok()) << rt.status().ToString();
    auto seeded = app::SeedDemoData(**rt);
    ASSERT_TRUE(seeded.ok()) << seeded.status().ToString();
    demo = *seeded;
    for (const policy::Relationship& r : (*rt)->policy_data->RelationshipsOf(demo.patient_ids[0])) {
      if (r.clinician_account_id == demo.accounts[1].account_id) {  // dr.heart (demo.cc)
        relationship_id = r.relationship_id;
      }
    }
  }
  ASSERT_FALSE(relationship_id.empty());
  const app::DemoAccount* heart = nullptr;
  const app::DemoAccount* patient = nullptr;
  for (const app::DemoAccount& a : demo.accounts) {
    if (a.username == "dr.heart") {
      heart = &a;
    } else if (a.role == "patient" && patient == nullptr) {
      patient = &a;
    }
  }
  ASSERT_NE(heart, nullptr);
  ASSERT_NE(patient, nullptr);
  const std::string treated = demo.patient_ids[0];

  const int port = testing::FreePort();
  ASSERT_GT(port, 0);
  ServerProcess server(data, port);
  ASSERT_TRUE(server.WaitReady()) << "medvault serve did not come up";
  httplib::Client http("127.0.0.1", port);
  auto login = [&](const app::DemoAccount& a) -> std::string {
    nlohmann::json body = {{"username", a.username}, {"password", a.password}};
    if (!a.totp_secret.empty()) {
      auto secret = auth::Base32Decode(a.totp_secret);
      EXPECT_TRUE(secret.ok());
      body["totp_code"] = auth::TotpCode(*secret, NowUnixMillis() / 1000, auth::TotpParams{});
    }
    auto r = http.Post("/api/v1/auth/login", body.dump(), "application/json");
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    return r && r->status == 200 ? nlohmann::json::parse(r->body).value("access_token", "") : "";
  };
  auto get = [&](const std::string& path, const std::string& token) {
    auto r = http.Get(path, {{"Authorization", "Bearer " + token}});
    return r ? r->status : -1;
  };
  const std::string doctor_token = login(*heart);
  const std::string patient_token = login(*patient);
  ASSERT_FALSE(doctor_token.empty());
  ASSERT_FALSE(patient_token.empty());
  const std::string segments = "/api/v1/patients/" + treated + "/segments";
  const std::string own = "/api/v1/patients/" + treated;  // ada is the first demo patient
  ASSERT_EQ(get(segments, doctor_token), 200);            // treating: permitted, token cached

  // Ended from the CLI: denied within the server's watch period.
  auto end = RunMedvault("relationship end --patient " + treated + " --id " + relationship_id +
                         " --data " + data);
  ASSERT_EQ(end.exit_code, 0) << end.output;
  const auto ended_at = std::chrono::steady_clock::now();
  int status = 200;
  while (status == 200 && std::chrono::steady_clock::now() - ended_at < std::chrono::seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    status = get(segments, doctor_token);
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - ended_at)
                        .count();
  EXPECT_EQ(status, 403) << "the server still permits a relationship the CLI ended";
  RecordProperty("relationship_end_seen_after_ms", static_cast<int>(took));

  // Revoked from the CLI: the very next request fails.
  auto revoke =
      RunMedvault("account revoke-sessions --id " + heart->account_id + " --data " + data);
  ASSERT_EQ(revoke.exit_code, 0) << revoke.output;
  EXPECT_EQ(get(segments, doctor_token), 401);

  // Disabled from the CLI: likewise.
  ASSERT_NE(get(own, patient_token), 401);
  auto disable = RunMedvault("account disable --id " + patient->account_id + " --data " + data);
  ASSERT_EQ(disable.exit_code, 0) << disable.output;
  EXPECT_EQ(get(own, patient_token), 401);
}

}  // namespace
}  // namespace medvault
