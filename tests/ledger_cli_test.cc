// medvault ledger verify|key and medvault scrub on a data directory.
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

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

  // Replace the stored ciphertext of one version (small versions are inline,
  // in the metadata row): the scrub finds it, and records it.
  const std::string db_file = (tmp.path() / "data" / "metadata.db").string();
  ASSERT_EQ(testing::RunShell("sqlite3 " + db_file +
                              " \"UPDATE segment_versions SET inline_content = "
                              "randomblob(length(inline_content)) WHERE (patient_id, path, "
                              "version) = (SELECT patient_id, path, version FROM segment_versions "
                              "WHERE storage = 1 ORDER BY patient_id, path, version LIMIT 1)\"")
                .exit_code,
            0);
  auto found = RunMedvault("scrub --data " + data);
  EXPECT_EQ(found.exit_code, 1) << found.output;
  EXPECT_NE(found.output.find("\"kind\": \"changed\""), std::string::npos) << found.output;
  EXPECT_TRUE(std::filesystem::exists(tmp.path() / "data" / "scrub" / "latest.json"));
  EXPECT_EQ(RunMedvault("ledger verify --data " + data).exit_code, 0)
      << "the finding was appended, the log is still consistent";

  // Edit one ledger entry in the database: verify names it, serve refuses.
  const std::string db = (tmp.path() / "data" / "metadata.db").string();
  const std::string sql =
      "UPDATE ledger_entries SET entry = substr(entry, 1, length(entry) - 1) WHERE seq = (SELECT "
      "MIN(seq) + 1 FROM ledger_entries)";
  ASSERT_EQ(std::system(("sqlite3 " + db + " \"" + sql + "\"").c_str()), 0);
  auto tampered = RunMedvault("ledger verify --data " + data);
  EXPECT_EQ(tampered.exit_code, 1) << tampered.output;
  EXPECT_NE(tampered.output.find("first bad entry"), std::string::npos) << tampered.output;
  EXPECT_NE(tampered.output.find("leaf hash does not match its content"), std::string::npos)
      << tampered.output;
  // Issue 13: the server no longer refuses to start (every record would be
  // offline): it continues in epoch 1, says so at error level, and the
  // damage stays in `ledger verify` until a privacy officer accepts it.
  auto serve = RunMedvault("serve --data " + data + " --listen 127.0.0.1:18999", "timeout 5");
  EXPECT_EQ(serve.exit_code, 124) << "still serving when the timeout stopped it\n" << serve.output;
  EXPECT_NE(serve.output.find("\"level\":\"error\",\"event\":\"ledger.damaged\""),
            std::string::npos)
      << serve.output;
  EXPECT_NE(serve.output.find("leaf hash does not match"), std::string::npos) << serve.output;
  auto degraded = RunMedvault("ledger verify --data " + data);
  EXPECT_EQ(degraded.exit_code, 1) << degraded.output;
  EXPECT_NE(degraded.output.find("epoch 0 (archived): ledger FAILED"), std::string::npos)
      << degraded.output;
  EXPECT_NE(degraded.output.find("damage NOT acknowledged"), std::string::npos) << degraded.output;
  EXPECT_NE(degraded.output.find("epoch 1 (current): ledger OK"), std::string::npos)
      << degraded.output;

  // Only a privacy officer may accept the damage.
  auto list = RunMedvault("account list --data " + data);
  ASSERT_EQ(list.exit_code, 0) << list.output;
  auto id_of = [&](const std::string& username) {
    const size_t at = list.output.find("\t" + username + "\t");
    return at == std::string::npos || at < 32 ? std::string() : list.output.substr(at - 32, 32);
  };
  const std::string officer = id_of("privacy");
  const std::string doctor = id_of("dr.heart");
  ASSERT_EQ(officer.size(), 32u) << list.output;
  ASSERT_EQ(doctor.size(), 32u) << list.output;
  const std::string reason = " --reason 'Row edited by a restore script; backup checked'";
  auto refused = RunMedvault("ledger acknowledge-damage --epoch 1 --as " + doctor + reason +
                             " --data " + data);
  EXPECT_NE(refused.exit_code, 0) << refused.output;
  EXPECT_NE(refused.output.find("privacy officer"), std::string::npos) << refused.output;
  auto accepted = RunMedvault("ledger acknowledge-damage --epoch 1 --as " + officer + reason +
                              " --data " + data);
  EXPECT_EQ(accepted.exit_code, 0) << accepted.output;
  auto again = RunMedvault("ledger acknowledge-damage --epoch 1 --as " + officer + reason +
                           " --data " + data);
  EXPECT_NE(again.exit_code, 0) << again.output;
  auto acknowledged = RunMedvault("ledger verify --data " + data);
  EXPECT_EQ(acknowledged.exit_code, 0) << acknowledged.output;
  EXPECT_NE(acknowledged.output.find("epoch 0 (archived): ledger FAILED"), std::string::npos)
      << "the damage is still reported\n"
      << acknowledged.output;
  EXPECT_NE(acknowledged.output.find("damage acknowledged by " + officer), std::string::npos)
      << acknowledged.output;
}

// A medvault process in the background, its output in a file; stopped with
// SIGTERM (as an operator would) when the test ends.
class Background {
 public:
  Background(const std::string& args, const std::filesystem::path& log) : log_(log) {
    pid_ = fork();
    if (pid_ == 0) {
      const std::string cmd =
          "exec " + std::string(MEDVAULT_BINARY) + " " + args + " >" + log.string() + " 2>&1";
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~Background() { Stop(); }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  int Stop() {
    if (pid_ <= 0) {
      return status_;
    }
    kill(pid_, SIGTERM);
    int st = 0;
    waitpid(pid_, &st, 0);
    pid_ = -1;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return status_;
  }
  std::string Output() const { return testing::ReadFileBytes(log_); }
  // Waits (bounded) until the output holds `text`.
  bool WaitFor(const std::string& text, int seconds = 20) const {
    for (int i = 0; i < seconds * 20; ++i) {
      if (Output().find(text) != std::string::npos) {
        return true;
      }
      usleep(50 * 1000);
    }
    return false;
  }

 private:
  std::filesystem::path log_;
  pid_t pid_ = -1;
  int status_ = -1;
};

// A port the kernel just handed out (bound, read, closed).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ADD_FAILURE() << "no free port";
  }
  close(fd);
  return ntohs(addr.sin_port);
}

// Issue 13: the server pushes its checkpoints to a witness (C2SP
// tlog-witness add-checkpoint) that runs as its own process with --listen;
// the witness checks consistency against its state, cosigns, and the server
// stores the cosignature; a log that forked from what the witness saw is
// refused, and the refusal is logged by the server.
TEST(LedgerCliTest, ServerPushesCheckpointsToAListeningWitness) {
  testing::TempDir tmp;
  const std::filesystem::path data = tmp.path() / "data";
  ASSERT_EQ(RunMedvault("init --data " + data.string()).exit_code, 0);
  ASSERT_EQ(RunMedvault("account list --data " + data.string()).exit_code, 0);  // makes the key
  auto key = RunMedvault("ledger key --data " + data.string());
  ASSERT_EQ(key.exit_code, 0) << key.output;
  const std::string log_key = key.output.substr(0, key.output.find('\n'));

  const int witness_port = FreePort();
  Background witness("witness --listen 127.0.0.1:" + std::to_string(witness_port) + " --log-key " +
                         log_key + " --state " + (tmp.path() / "w").string() + " --key " +
                         (tmp.path() / "w.key").string() + " --name witness.example/w1",
                     tmp.path() / "witness.log");
  ASSERT_TRUE(witness.WaitFor("witness listening on")) << witness.Output();
  const std::string out = witness.Output();
  const size_t at = out.find("witness cosignature key: ");
  ASSERT_NE(at, std::string::npos) << out;
  const size_t from = at + std::string("witness cosignature key: ").size();
  const std::string witness_key = out.substr(from, out.find('\n', from) - from);

  {
    std::ofstream conf(data / "medvault.conf", std::ios::app);
    conf << "witness_keys = " << witness_key << "\n"
         << "witness_urls = http://127.0.0.1:" << witness_port << "\n"
         << "ledger_checkpoint_interval_seconds = 1\n"
         << "argon2_memory_kib = 8\nargon2_iterations = 1\n";
  }
  const int port = FreePort();
  int attempts = 0;  // one username each: no throttling
  auto failed_sign_in = [&] {
    httplib::Client c("127.0.0.1", port);
    const std::string body =
        R"({"username":"nobody)" + std::to_string(++attempts) + R"(","password":"wrong-password"})";
    auto res = c.Post("/api/v1/auth/login", body, "application/json");
    return res && res->status == 401;
  };
  // Waits until the served checkpoint covers at least `size` entries and is
  // witnessed; returns its size.
  auto witnessed_checkpoint = [&](uint64_t size) -> uint64_t {
    httplib::Client c("127.0.0.1", port);
    for (int i = 0; i < 200; ++i) {
      auto res = c.Get("/api/v1/ledger/checkpoint");
      if (res && res->status == 200 && res->get_header_value("X-Ledger-Witnessed") == "true") {
        const uint64_t got =
            std::strtoull(res->get_header_value("X-Ledger-Size").c_str(), nullptr, 10);
        if (got >= size) {
          return got;
        }
      }
      usleep(100 * 1000);
    }
    return 0;
  };
  const std::string listen = " --listen 127.0.0.1:" + std::to_string(port);
  uint64_t first = 0;
  {
    Background serve("serve --data " + data.string() + listen, tmp.path() / "serve1.log");
    ASSERT_TRUE(serve.WaitFor("medvault listening on")) << serve.Output();
    ASSERT_TRUE(failed_sign_in()) << serve.Output();
    first = witnessed_checkpoint(1);
    ASSERT_GT(first, 0u) << serve.Output() << witness.Output();
    EXPECT_EQ(serve.Stop(), 0);
  }
  // A copy of the log as the witness saw it: it will fork below.
  const std::filesystem::path fork = tmp.path() / "fork";
  std::filesystem::copy(data, fork, std::filesystem::copy_options::recursive);
  {
    // A new process learns the witness's size from its 409 answer and sends
    // a consistency proof from there.
    Background serve("serve --data " + data.string() + listen, tmp.path() / "serve2.log");
    ASSERT_TRUE(serve.WaitFor("medvault listening on")) << serve.Output();
    ASSERT_TRUE(failed_sign_in()) << serve.Output();
    ASSERT_TRUE(failed_sign_in()) << serve.Output();
    const uint64_t second = witnessed_checkpoint(first + 2);
    EXPECT_GE(second, first + 2) << serve.Output() << witness.Output();
    EXPECT_EQ(serve.Stop(), 0);
    EXPECT_EQ(serve.Output().find("ledger.witness_refused"), std::string::npos) << serve.Output();
  }
  auto verified = RunMedvault("ledger verify --data " + data.string());
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
  EXPECT_EQ(verified.output.find(" 0 cosignatures verified"), std::string::npos) << verified.output;

  // The fork: same keys, other entries after what the witness saw.
  {
    Background serve("serve --data " + fork.string() + listen, tmp.path() / "serve3.log");
    ASSERT_TRUE(serve.WaitFor("medvault listening on")) << serve.Output();
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(failed_sign_in()) << serve.Output();
    }
    EXPECT_TRUE(serve.WaitFor("ledger.witness_refused")) << serve.Output();
    EXPECT_TRUE(witness.WaitFor("refused (")) << witness.Output();
    httplib::Client c("127.0.0.1", port);
    auto res = c.Get("/api/v1/ledger/checkpoint");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->get_header_value("X-Ledger-Witnessed"), "false");
  }
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

  auto newest =
      testing::RunShell("sqlite3 " + db +
                        " \"SELECT patient_id, path, version, object_key, storage FROM "
                        "segment_versions ORDER BY version DESC, patient_id, path LIMIT 1\"");
  ASSERT_EQ(newest.exit_code, 0) << newest.output;
  const std::vector<std::string> row = SplitFields(newest.output);
  ASSERT_EQ(row.size(), 5u) << newest.output;
  const std::string where =
      "patient_id = '" + row[0] + "' AND path = '" + row[1] + "' AND version = " + row[2];
  ASSERT_EQ(
      testing::RunShell("sqlite3 " + db + " \"DELETE FROM segment_versions WHERE " + where + "\"")
          .exit_code,
      0);
  if (row[4] == "0") {  // an object version: its object goes too
    ASSERT_TRUE(std::filesystem::remove(tmp.path() / "data" / "objects" / row[3]));
  }

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
  auto other = testing::RunShell("sqlite3 " + db +
                                 " \"SELECT patient_id, path, version, object_key, storage FROM "
                                 "segment_versions WHERE NOT (" +
                                 where + ") ORDER BY patient_id, path, version DESC LIMIT 1\"");
  ASSERT_EQ(other.exit_code, 0) << other.output;
  const std::vector<std::string> src = SplitFields(other.output);
  ASSERT_EQ(src.size(), 5u) << other.output;
  const std::string new_key = src[0] + "/0123456789abcdef0123456789abcdef";
  if (src[4] == "0") {  // an object version: its object is copied too
    std::filesystem::copy_file(tmp.path() / "data" / "objects" / src[3],
                               tmp.path() / "data" / "objects" / new_key);
  }
  const std::string insert =
      "INSERT INTO segment_versions SELECT patient_id, path, version + 1, category, "
      "sensitivity, kind, media_type, '" +
      new_key +
      "', plaintext_size, stored_size, content_sha256, author, created_at_ms, storage, "
      "inline_content FROM segment_versions WHERE patient_id = '" +
      src[0] + "' AND path = '" + src[1] + "' AND version = " + src[2];
  ASSERT_EQ(testing::RunShell("sqlite3 " + db + " \"" + insert + "\"").exit_code, 0);
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
  // A patient's object directory (small versions are inline, so it may not
  // exist yet: a crashed attachment write would have created it).
  auto patient = testing::RunShell("sqlite3 " + (dir / "metadata.db").string() +
                                   " \"SELECT patient_id FROM patients LIMIT 1\"");
  ASSERT_EQ(patient.exit_code, 0) << patient.output;
  std::string patient_id = patient.output;
  while (!patient_id.empty() && (patient_id.back() == '\n' || patient_id.back() == '\r')) {
    patient_id.pop_back();
  }
  ASSERT_EQ(patient_id.size(), 32u) << patient.output;
  const std::filesystem::path patient_dir = dir / "objects" / patient_id;
  std::filesystem::create_directories(patient_dir);
  std::filesystem::permissions(patient_dir, std::filesystem::perms::owner_all);
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
