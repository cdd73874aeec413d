// Runs the real medvault binary as a user would.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "test_util.h"

namespace medvault {
namespace {

struct RunResult {
  int exit_code;
  std::string output;  // stdout and stderr
};

RunResult RunMedvault(const std::string& args, const std::string& env = "") {
  const std::string cmd = env + " " + std::string(MEDVAULT_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  RunResult r{-1, ""};
  if (p == nullptr) {
    return r;
  }
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) {
    r.output.append(buf.data(), n);
  }
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

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

// The admin commands on a data directory: the first admin, departments,
// accounts with generated passwords and TOTP secrets, resets and errors.
TEST(CliTest, AdminCommandsBootstrapAnInstitution) {
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

// `medvault ledger verify` and `medvault scrub` on a data directory: clean,
// then after tampering with an object file and with a ledger entry.
TEST(CliTest, LedgerVerifyAndScrubFindTampering) {
  testing::TempDir tmp;
  const std::string data = (tmp.path() / "data").string();
  const std::string cheap = "MEDVAULT_ARGON2_MEMORY_KIB=8 MEDVAULT_ARGON2_ITERATIONS=1";
  ASSERT_EQ(RunMedvault("init --data " + data).exit_code, 0);
  ASSERT_EQ(RunMedvault("seed-demo --data " + data, cheap).exit_code, 0);
  auto key = RunMedvault("ledger key --data " + data);
  ASSERT_EQ(key.exit_code, 0) << key.output;
  EXPECT_EQ(key.output.rfind("medvault.local/ledger+", 0), 0u) << key.output;
  auto clean = RunMedvault("ledger verify --data " + data);
  EXPECT_EQ(clean.exit_code, 0) << clean.output;
  EXPECT_NE(clean.output.find("ledger OK"), std::string::npos) << clean.output;
  auto scrub = RunMedvault("scrub --data " + data);
  EXPECT_EQ(scrub.exit_code, 0) << scrub.output;
  EXPECT_NE(scrub.output.find("\"findings_count\": 0"), std::string::npos) << scrub.output;

  // Flip one byte of one object file: the scrub finds it, and records it.
  std::filesystem::path object;
  for (const auto& e :
       std::filesystem::recursive_directory_iterator(tmp.path() / "data" / "objects")) {
    if (e.is_regular_file()) {
      object = e.path();
      break;
    }
  }
  ASSERT_FALSE(object.empty());
  std::string bytes = testing::ReadFileBytes(object);
  bytes[bytes.size() / 2] ^= 0x01;
  testing::WriteFileBytes(object, bytes);
  auto found = RunMedvault("scrub --data " + data);
  EXPECT_EQ(found.exit_code, 1) << found.output;
  EXPECT_NE(found.output.find("\"kind\": \"changed\""), std::string::npos) << found.output;
  EXPECT_TRUE(std::filesystem::exists(tmp.path() / "data" / "scrub" / "latest.json"));
  EXPECT_EQ(RunMedvault("ledger verify --data " + data).exit_code, 0)
      << "the finding was appended, the log is still consistent";

  // Edit one ledger entry in the database: verify names it, serve refuses.
  const std::string db = (tmp.path() / "data" / "metadata.db").string();
  const std::string sql =
      "UPDATE ledger_entries SET entry = CAST(replace(CAST(entry AS TEXT), 'segment.write', "
      "'segment.wrote') AS BLOB) WHERE seq = (SELECT MIN(seq) FROM ledger_entries WHERE "
      "CAST(entry AS TEXT) LIKE '%segment.write%')";
  ASSERT_EQ(std::system(("sqlite3 " + db + " \"" + sql + "\"").c_str()), 0);
  auto tampered = RunMedvault("ledger verify --data " + data);
  EXPECT_EQ(tampered.exit_code, 1) << tampered.output;
  EXPECT_NE(tampered.output.find("first bad entry"), std::string::npos) << tampered.output;
  EXPECT_NE(tampered.output.find("leaf hash does not match its content"), std::string::npos)
      << tampered.output;
  auto serve = RunMedvault("serve --data " + data + " --listen 127.0.0.1:18999", "timeout 10");
  EXPECT_NE(serve.exit_code, 0);
  EXPECT_NE(serve.output.find("leaf hash does not match"), std::string::npos) << serve.output;
}

}  // namespace
}  // namespace medvault
