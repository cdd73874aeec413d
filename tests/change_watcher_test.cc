// ChangeWatcher: a server's runtime learns of changes that another process
// (a CLI command: here a second runtime on the same data directory) makes.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "app/app.h"
#include "common/ids.h"
#include "test_util.h"

namespace medvault::app {
namespace {

constexpr char kPassword[] = "Tractor-Rain-Blue-42";

class ChangeWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::InitCrypto().ok());
    ASSERT_TRUE(InitDataDir(data(), false).ok());
    config_.data_dir = data().string();
    config_.argon2_memory_kib = 8;
    config_.argon2_iterations = 1;
    auto server = OpenRuntime(config_);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    auto cli = OpenRuntime(config_);
    ASSERT_TRUE(cli.ok()) << cli.status().ToString();
    cli_ = std::move(*cli);
  }
  std::filesystem::path data() const { return dir_.path() / "data"; }

  std::string NewAccountId(const std::string& username, std::vector<std::string> roles) {
    auth::NewAccount a;
    a.username = username;
    a.display_name = username;
    a.password = kPassword;
    a.roles = std::move(roles);
    auto created = server_->accounts->CreateAccount(a);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? created->account.account_id : "";
  }

  testing::TempDir dir_;
  Config config_;
  std::unique_ptr<Runtime> server_;
  std::unique_ptr<Runtime> cli_;
};

TEST_F(ChangeWatcherTest, ARelationshipEndedByTheCliStopsCountingWithinTheWatchPeriod) {
  enforce::Scope console(server_->enforce_deps(), enforce::ConsoleContext("test"));
  auto patient = server_->records->CreatePatient({"Watch", "Ed", "1980-02-03", "female", ""}, "t");
  ASSERT_TRUE(patient.ok());
  const std::string doctor = NewAccountId("dr.watch", {"doctor"});
  auto rel = server_->access->StartRelationship(patient->patient_id, doctor);
  ASSERT_TRUE(rel.ok()) << rel.status().ToString();
  ASSERT_TRUE(cli_->access->Load().ok());  // the CLI starts after the server's change

  ChangeWatcher watcher(server_->accounts.get(), server_->access.get(),
                        std::chrono::milliseconds(50));
  ASSERT_TRUE(cli_->access->EndRelationship(patient->patient_id, rel->relationship_id).ok());
  const int64_t now = NowUnixMillis();
  // The watcher's thread applies it (a generous bound: it runs every 50 ms).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!server_->policy_data->PatientsTreatedBy(doctor, now).empty() &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(server_->policy_data->PatientsTreatedBy(doctor, now).empty())
      << "the server still counts a relationship the CLI ended";
}

// With the runtime's change feed, the CLI's change starts a round at once:
// the period (a minute here) is only the longest wait, and stopping the
// watcher is not held up by it.
TEST_F(ChangeWatcherTest, WithTheChangeFeedAChangeIsAppliedLongBeforeThePeriod) {
  std::optional<enforce::Scope> console;
  console.emplace(server_->enforce_deps(), enforce::ConsoleContext("test"));
  auto patient = server_->records->CreatePatient({"Feed", "Ed", "1980-02-03", "female", ""}, "t");
  ASSERT_TRUE(patient.ok());
  console.reset();
  const std::string doctor = NewAccountId("dr.feed", {"doctor"});
  auto rel = server_->access->StartRelationship(patient->patient_id, doctor);
  ASSERT_TRUE(rel.ok()) << rel.status().ToString();
  ASSERT_TRUE(cli_->access->Load().ok());
  ASSERT_NE(server_->changes, nullptr);

  const auto started = std::chrono::steady_clock::now();
  {
    ChangeWatcher watcher(server_->accounts.get(), server_->access.get(), std::chrono::minutes(1),
                          server_->changes.get());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // its first round is done
    ASSERT_TRUE(cli_->access->EndRelationship(patient->patient_id, rel->relationship_id).ok());
    const int64_t now = NowUnixMillis();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!server_->policy_data->PatientsTreatedBy(doctor, now).empty() &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_TRUE(server_->policy_data->PatientsTreatedBy(doctor, now).empty())
        << "the feed did not start a round before the period";
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30))
      << "stopping waited for the period";
}

TEST_F(ChangeWatcherTest, AnAccountDisabledByTheCliFailsTheServersNextAuthentication) {
  const std::string id = NewAccountId("pat.watch", {"patient"});
  auth::LoginRequest login;
  login.username = "pat.watch";
  login.password = kPassword;
  login.audience = "medvault-api";
  auto pair = server_->accounts->Login(login);
  ASSERT_TRUE(pair.ok()) << pair.status().ToString();
  ASSERT_TRUE(server_->accounts->Authenticate(pair->access_token, "medvault-api").ok());

  ASSERT_TRUE(cli_->accounts->SetDisabled(id, true).ok());
  // No watcher, no wait: the very next authentication fails.
  EXPECT_EQ(server_->accounts->Authenticate(pair->access_token, "medvault-api").status().code(),
            StatusCode::kUnauthenticated);
}

TEST_F(ChangeWatcherTest, SyncOnceIsQuietWhenNothingChanged) {
  ChangeWatcher watcher(server_->accounts.get(), server_->access.get());
  EXPECT_TRUE(watcher.SyncOnce().ok());
  EXPECT_TRUE(watcher.SyncOnce().ok());
}

}  // namespace
}  // namespace medvault::app
