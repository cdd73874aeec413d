// medvault ledger verify|key and medvault scrub on a data directory.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "cli_test_util.h"
#include "test_util.h"

namespace medvault {
namespace {

using testing::RunMedvault;

// `medvault ledger verify` and `medvault scrub` on a data directory: clean,
// then after tampering with an object file and with a ledger entry.
TEST(LedgerCliTest, LedgerVerifyAndScrubFindTampering) {
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
