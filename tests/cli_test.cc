// Runs the real medvault binary as a user would.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "cli_test_util.h"
#include "test_util.h"

namespace medvault {
namespace {

using testing::RunMedvault;

TEST(CliTest, HelpForEveryCommand) {
  auto top = RunMedvault("--help");
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_NE(top.output.find("init"), std::string::npos);
  EXPECT_NE(top.output.find("serve"), std::string::npos);
  for (const char* cmd : {"init", "serve", "seed-demo"}) {
    auto r = RunMedvault(std::string(cmd) + " --help");
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.output.find(std::string("usage: medvault ") + cmd), std::string::npos) << cmd;
  }
  EXPECT_EQ(RunMedvault("").exit_code, 2);
  EXPECT_EQ(RunMedvault("frobnicate").exit_code, 2);
  EXPECT_EQ(RunMedvault("serve --no-such-flag").exit_code, 2);
  EXPECT_EQ(RunMedvault("version").exit_code, 0);
}

TEST(CliTest, InitThenServeRefusesUnsafeSettings) {
  testing::TempDir tmp;
  const std::string data = (tmp.path() / "d").string();
  auto init = RunMedvault("init --data " + data);
  ASSERT_EQ(init.exit_code, 0) << init.output;
  EXPECT_NE(init.output.find("metrics token"), std::string::npos);
  auto again = RunMedvault("init --data " + data);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find("already initialised"), std::string::npos);

  auto public_bind = RunMedvault("serve --data " + data + " --listen 0.0.0.0:18089");
  EXPECT_NE(public_bind.exit_code, 0);
  EXPECT_NE(public_bind.output.find("without TLS"), std::string::npos) << public_bind.output;

  auto bad_listen = RunMedvault("serve --data " + data + " --listen 127.0.0.1:99999");
  EXPECT_EQ(bad_listen.exit_code, 2);
  EXPECT_NE(bad_listen.output.find("--listen: port must be"), std::string::npos)
      << bad_listen.output;

  testing::WriteFileBytes(tmp.path() / "bad.conf", "listen = 127.0.0.1:8080\nfoo = bar\n");
  auto bad_conf =
      RunMedvault("serve --data " + data + " --config " + (tmp.path() / "bad.conf").string());
  EXPECT_EQ(bad_conf.exit_code, 2);
  EXPECT_NE(bad_conf.output.find("bad.conf:2: unknown setting 'foo'"), std::string::npos)
      << bad_conf.output;

  auto bad_env = RunMedvault("serve --data " + data, "MEDVAULT_WORKER_THREADS=many");
  EXPECT_EQ(bad_env.exit_code, 2);
  EXPECT_NE(bad_env.output.find("MEDVAULT_WORKER_THREADS"), std::string::npos);

  auto uninit = RunMedvault("serve --data " + (tmp.path() / "none").string());
  EXPECT_NE(uninit.exit_code, 0);
  EXPECT_NE(uninit.output.find("medvault init"), std::string::npos) << uninit.output;

  auto seed = RunMedvault("seed-demo --data " + data);
  EXPECT_EQ(seed.exit_code, 0) << seed.output;
  for (const char* who : {"institution-admin\tadmin\t", "doctor\tdr.heart\t", "doctor\tdr.sugar\t",
                          "nurse\tnurse.ward\t", "privacy-officer\tprivacy\t", "patient\tada\t"}) {
    EXPECT_NE(seed.output.find(who), std::string::npos) << who << " in " << seed.output;
  }
  EXPECT_EQ(std::count(seed.output.begin(), seed.output.end(), '\n'), 13);
  // Seeding twice is refused rather than duplicated.
  EXPECT_NE(RunMedvault("seed-demo --data " + data).exit_code, 0);
}

}  // namespace
}  // namespace medvault
