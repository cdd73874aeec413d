// medvault ledger verify|key and medvault scrub on a data directory.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

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

// Runs a shell command; its output (stdout and stderr) and exit status.
testing::RunResult Shell(const std::string& cmd) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  testing::RunResult r{-1, ""};
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

std::vector<std::string> SplitFields(std::string line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
    line.pop_back();
  }
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t bar = line.find('|', start);
    out.push_back(line.substr(start, bar == std::string::npos ? bar : bar - start));
    if (bar == std::string::npos) {
      return out;
    }
    start = bar + 1;
  }
}

// The outside audit's attack: the newest version row of a path and its object
// deleted (the record rolled back). The ledger still verifies, every object
// left is intact; the scrub compares the versions with the logged writes and
// fails naming the rolled-back version. Then a version inserted without an
// entry.
TEST(LedgerCliTest, ScrubFindsARolledBackRecordAndAnUnloggedVersion) {
  testing::TempDir tmp;
  const std::string data = (tmp.path() / "data").string();
  const std::string db = (tmp.path() / "data" / "metadata.db").string();
  const std::string cheap = "MEDVAULT_ARGON2_MEMORY_KIB=8 MEDVAULT_ARGON2_ITERATIONS=1";
  ASSERT_EQ(RunMedvault("init --data " + data).exit_code, 0);
  ASSERT_EQ(RunMedvault("seed-demo --data " + data, cheap).exit_code, 0);
  auto clean = RunMedvault("scrub --data " + data);
  ASSERT_EQ(clean.exit_code, 0) << clean.output;
  EXPECT_NE(clean.output.find("\"damage_count\": 0"), std::string::npos) << clean.output;

  auto newest = Shell("sqlite3 " + db +
                      " \"SELECT patient_id, path, version, object_key FROM segment_versions "
                      "ORDER BY version DESC, patient_id, path LIMIT 1\"");
  ASSERT_EQ(newest.exit_code, 0) << newest.output;
  const std::vector<std::string> row = SplitFields(newest.output);
  ASSERT_EQ(row.size(), 4u) << newest.output;
  const std::string where =
      "patient_id = '" + row[0] + "' AND path = '" + row[1] + "' AND version = " + row[2];
  ASSERT_EQ(
      Shell("sqlite3 " + db + " \"DELETE FROM segment_versions WHERE " + where + "\"").exit_code,
      0);
  ASSERT_TRUE(std::filesystem::remove(tmp.path() / "data" / "objects" / row[3]));

  EXPECT_EQ(RunMedvault("ledger verify --data " + data).exit_code, 0) << "the ledger is intact";
  for (const std::string mode : {"", " --deep"}) {
    auto found = RunMedvault("scrub --data " + data + mode);
    EXPECT_EQ(found.exit_code, 1) << mode << found.output;
    EXPECT_NE(found.output.find("\"kind\": \"rolled-back\""), std::string::npos) << found.output;
    EXPECT_NE(found.output.find("\"path\": \"" + row[1] + "\""), std::string::npos) << found.output;
    EXPECT_NE(found.output.find("\"version\": " + row[2]), std::string::npos) << found.output;
  }

  // A version inserted behind the record service's back: a copy of another
  // row as the next version of its path, with a copy of its object.
  auto other = Shell("sqlite3 " + db +
                     " \"SELECT patient_id, path, version, object_key FROM segment_versions "
                     "WHERE NOT (" +
                     where + ") ORDER BY patient_id, path, version DESC LIMIT 1\"");
  ASSERT_EQ(other.exit_code, 0) << other.output;
  const std::vector<std::string> src = SplitFields(other.output);
  ASSERT_EQ(src.size(), 4u) << other.output;
  const std::string new_key = src[0] + "/0123456789abcdef0123456789abcdef";
  std::filesystem::copy_file(tmp.path() / "data" / "objects" / src[3],
                             tmp.path() / "data" / "objects" / new_key);
  const std::string insert =
      "INSERT INTO segment_versions SELECT patient_id, path, version + 1, category, "
      "sensitivity, kind, media_type, '" +
      new_key +
      "', plaintext_size, stored_size, content_sha256, author, created_at_ms "
      "FROM segment_versions WHERE patient_id = '" +
      src[0] + "' AND path = '" + src[1] + "' AND version = " + src[2];
  ASSERT_EQ(Shell("sqlite3 " + db + " \"" + insert + "\"").exit_code, 0);
  auto unlogged = RunMedvault("scrub --data " + data);
  EXPECT_EQ(unlogged.exit_code, 1) << unlogged.output;
  EXPECT_NE(unlogged.output.find("\"kind\": \"unlogged-version\""), std::string::npos)
      << unlogged.output;
  EXPECT_NE(unlogged.output.find(new_key), std::string::npos) << unlogged.output;
}

// An object left by a crash between object write and metadata insert: kept
// and reported as information while younger than scrub_orphan_grace_seconds,
// reclaimed once older; no exit status but 0 throughout.
TEST(LedgerCliTest, ScrubReclaimsOldOrphansAndExitsZeroOnThem) {
  testing::TempDir tmp;
  const std::filesystem::path dir = tmp.path() / "data";
  const std::string data = dir.string();
  const std::string cheap = "MEDVAULT_ARGON2_MEMORY_KIB=8 MEDVAULT_ARGON2_ITERATIONS=1";
  ASSERT_EQ(RunMedvault("init --data " + data).exit_code, 0);
  ASSERT_EQ(RunMedvault("seed-demo --data " + data, cheap).exit_code, 0);
  {
    std::ofstream conf(dir / "medvault.conf", std::ios::app);
    conf << "scrub_orphan_grace_seconds = 14400\n";  // 4 hours
  }
  std::filesystem::path patient_dir;
  for (const auto& e : std::filesystem::directory_iterator(dir / "objects")) {
    if (e.is_directory()) {
      patient_dir = e.path();
      break;
    }
  }
  ASSERT_FALSE(patient_dir.empty());
  const std::filesystem::path orphan = patient_dir / "0123456789abcdef0123456789abcdef";
  testing::WriteFileBytes(orphan, "ciphertext-like bytes of a write that never finished");
  const auto now = std::filesystem::file_time_type::clock::now();

  std::filesystem::last_write_time(orphan, now - std::chrono::hours(3));
  auto young = RunMedvault("scrub --data " + data);
  EXPECT_EQ(young.exit_code, 0) << young.output;
  EXPECT_NE(young.output.find("\"severity\": \"info\""), std::string::npos) << young.output;
  EXPECT_NE(young.output.find("left alone"), std::string::npos) << young.output;
  EXPECT_NE(young.output.find("\"damage_count\": 0"), std::string::npos) << young.output;
  EXPECT_TRUE(std::filesystem::exists(orphan));

  std::filesystem::last_write_time(orphan, now - std::chrono::hours(5));
  auto old = RunMedvault("scrub --data " + data);
  EXPECT_EQ(old.exit_code, 0) << old.output;
  EXPECT_NE(old.output.find("\"orphans_reclaimed\": 1"), std::string::npos) << old.output;
  EXPECT_FALSE(std::filesystem::exists(orphan));

  auto after = RunMedvault("scrub --data " + data);
  EXPECT_EQ(after.exit_code, 0) << after.output;
  EXPECT_NE(after.output.find("\"findings_count\": 0"), std::string::npos) << after.output;
}

}  // namespace
}  // namespace medvault
