// medvault institution|department|account|relationship|totp-code on a data directory.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "cli_test_util.h"
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

}  // namespace
}  // namespace medvault
