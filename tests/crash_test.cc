// Kills a writer with SIGKILL at random moments (25 times), restarts, and
// checks that every acknowledged write is readable and intact and that every
// visible version is complete.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "app/app.h"
#include "cli_test_util.h"
#include "test_util.h"

namespace medvault {
namespace {

struct Ack {
  std::string path;
  uint64_t version;
  uint64_t seq;
};

Bytes AttachmentFor(uint64_t seq) {
  Bytes b(70000 + seq % 5000);
  for (size_t i = 0; i < b.size(); ++i) {
    b[i] = static_cast<uint8_t>((seq * 2654435761u + i * 40503u) >> 7);
  }
  return b;
}

// Runs the writer for `ms` milliseconds, SIGKILLs it, returns its acks.
// `meanwhile`, when set, runs once the writer is ready (while it writes); the
// kill window starts after it returns.
std::vector<Ack> RunAndKill(const std::string& data, const std::string& id, uint64_t start_seq,
                            int ms, const std::function<void()>& meanwhile = nullptr) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    const std::string seq = std::to_string(start_seq);
    execl(CRASH_WRITER_BINARY, "crash_writer", data.c_str(), id.c_str(), seq.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  std::string out;
  char buf[4096];
  // The window starts when the writer is ready (at most 30 s to get there).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool ready = false;
  while (std::chrono::steady_clock::now() < deadline) {
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      if (!ready && out.find("READY\n") != std::string::npos) {
        ready = true;
        if (meanwhile) {
          meanwhile();
        }
        deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
      }
    } else {
      usleep(1000);
    }
  }
  EXPECT_TRUE(ready) << "the writer never became ready";
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  // Lines the child printed before dying are acknowledged too.
  while (true) {
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  EXPECT_TRUE(WIFSIGNALED(status)) << "writer exited on its own: " << status;
  std::vector<Ack> acks;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream f(line);
    std::string tag;
    Ack a;
    if ((f >> tag >> a.path >> a.version >> a.seq) && tag == "ACK") {
      acks.push_back(a);
    }
  }
  return acks;
}

// Initialises `data` with one patient; its id, "" on failure.
std::string InitWithPatient(const std::string& data, const std::string& given,
                            const std::string& family) {
  if (!app::InitDataDir(data, false).ok()) {
    ADD_FAILURE() << "init failed";
    return "";
  }
  app::Config config;
  config.data_dir = data;
  auto rt = app::OpenRuntime(config);
  if (!rt.ok()) {
    ADD_FAILURE() << rt.status().ToString();
    return "";
  }
  enforce::Scope console((*rt)->enforce_deps(), enforce::ConsoleContext("test"));
  auto p = (*rt)->records->CreatePatient({given, family, "1970-01-01", "unknown", ""}, "t");
  if (!p.ok()) {
    ADD_FAILURE() << p.status().ToString();
    return "";
  }
  return p->patient_id;
}

TEST(CrashTest, AcknowledgedWritesSurviveSigkill) {
  ASSERT_TRUE(crypto::InitCrypto().ok());
  testing::TempDir dir;
  const std::string data = (dir.path() / "data").string();
  const std::string id = InitWithPatient(data, "Crash", "Test");
  ASSERT_FALSE(id.empty());
  std::mt19937 rng(12345);
  std::map<std::pair<std::string, uint64_t>, uint64_t> acked;  // (path, version) -> seq
  uint64_t seq = 0;
  size_t total_acks = 0;
  constexpr int kKills = 25;
  for (int round = 0; round < kKills; ++round) {
    const int ms = 40 + static_cast<int>(rng() % 260);
    auto acks = RunAndKill(data, id, seq, ms);
    total_acks += acks.size();
    for (const Ack& a : acks) {
      acked[{a.path, a.version}] = a.seq;
      seq = std::max(seq, a.seq + 1);
    }
    // A write in flight at the kill may have landed without its ack; skip
    // past any sequence numbers it could have used.
    seq += 3;

    app::Config config;
    config.data_dir = data;
    auto rt = app::OpenRuntime(config);
    ASSERT_TRUE(rt.ok()) << "round " << round << ": " << rt.status().ToString();
    auto& records = *(*rt)->records;
    for (const auto& [key, s] : acked) {
      // Both durable paths are under test: small versions inline (one
      // commit), attachments as objects (object fsync, then the row).
      auto row = (*rt)->metadata->GetSegmentVersion(id, key.first, key.second);
      ASSERT_TRUE(row.ok()) << row.status().ToString();
      EXPECT_EQ(row->storage, key.first == "radiology/scan" ? store::ContentStorage::kObject
                                                            : store::ContentStorage::kInline)
          << key.first;
      auto c = records.ReadSegment(id, key.first, key.second);
      ASSERT_TRUE(c.ok()) << "round " << round << " lost " << key.first << " v" << key.second
                          << ": " << c.status().ToString();
      if (key.first == "radiology/scan") {
        EXPECT_TRUE(c->content == AttachmentFor(s)) << key.first << " v" << key.second;
      } else {
        auto j = nlohmann::json::parse(c->content.begin(), c->content.end());
        EXPECT_EQ(j["seq"], s) << key.first << " v" << key.second;
      }
    }
    // Every visible version, acknowledged or not, is complete and intact,
    // and versions have no gaps.
    auto tree = records.ListTree(id, "");
    ASSERT_TRUE(tree.ok());
    for (const auto& seg : *tree) {
      auto versions = records.ListVersions(id, seg.path);
      ASSERT_TRUE(versions.ok());
      for (size_t i = 0; i < versions->size(); ++i) {
        ASSERT_EQ((*versions)[i].version, i + 1) << seg.path;
        auto c = records.ReadSegment(id, seg.path, i + 1);
        ASSERT_TRUE(c.ok()) << "round " << round << " half-written " << seg.path << " v" << i + 1
                            << ": " << c.status().ToString();
      }
    }
  }
  EXPECT_GT(total_acks, 100u) << "the writer hardly wrote anything";
  RecordProperty("acknowledged_writes", static_cast<int>(total_acks));
}

// Issue 13: a CLI command on the data directory of a running server (here the
// writer process) must not break the server's SQLite locks. Every store used
// to open() and close() metadata.db while the process already had
// connections on it, which dropped the process's POSIX locks: the CLI, closing
// its last connection, then took EXCLUSIVE, checkpointed and deleted the WAL
// the writer still appended to, and acknowledged writes vanished at the kill.
TEST(CrashTest, CliCommandsBesideARunningWriterLoseNothing) {
  ASSERT_TRUE(crypto::InitCrypto().ok());
  testing::TempDir dir;
  const std::string data = (dir.path() / "data").string();
  const std::string id = InitWithPatient(data, "Cli", "Beside");
  ASSERT_FALSE(id.empty());
  std::map<std::pair<std::string, uint64_t>, uint64_t> acked;
  uint64_t seq = 0;
  for (int round = 0; round < 3; ++round) {
    std::string cli_failures;
    auto acks = RunAndKill(data, id, seq, 300, [&] {
      // Read-only listings and writing commands, each its own process that
      // opens and closes every store while the writer writes.
      const std::string d = " --data " + data;
      for (const std::string& cmd :
           {"account list" + d, "institution list" + d,
            "institution create --name Beside" + std::to_string(round) + d, "account list" + d}) {
        const testing::RunResult r = testing::RunMedvault(cmd);
        if (r.exit_code != 0) {
          cli_failures += cmd + ": " + r.output + "\n";
        }
      }
    });
    EXPECT_EQ(cli_failures, "");
    ASSERT_GT(acks.size(), 0u) << "round " << round << ": the writer wrote nothing";
    for (const Ack& a : acks) {
      acked[{a.path, a.version}] = a.seq;
      seq = std::max(seq, a.seq + 1);
    }
    seq += 3;

    {
      sqlite3* db = nullptr;
      ASSERT_EQ(sqlite3_open_v2((dir.path() / "data" / "metadata.db").c_str(), &db,
                                SQLITE_OPEN_READWRITE, nullptr),
                SQLITE_OK);
      std::string result;
      sqlite3_exec(
          db, "PRAGMA integrity_check",
          [](void* out, int, char** values, char**) {
            *static_cast<std::string*>(out) += values[0] != nullptr ? values[0] : "NULL";
            return 0;
          },
          &result, nullptr);
      sqlite3_close(db);
      ASSERT_EQ(result, "ok") << "round " << round;
    }
    app::Config config;
    config.data_dir = data;
    auto rt = app::OpenRuntime(config);
    ASSERT_TRUE(rt.ok()) << "round " << round << ": " << rt.status().ToString();
    for (const auto& [key, s] : acked) {
      auto c = (*rt)->records->ReadSegment(id, key.first, key.second);
      ASSERT_TRUE(c.ok()) << "round " << round << " lost " << key.first << " v" << key.second
                          << ": " << c.status().ToString();
      if (key.first == "radiology/scan") {
        EXPECT_TRUE(c->content == AttachmentFor(s)) << key.first << " v" << key.second;
      }
    }
    auto institutions = (*rt)->accounts->ListInstitutions();
    ASSERT_TRUE(institutions.ok());
    EXPECT_EQ(institutions->size(), static_cast<size_t>(round + 1)) << "a CLI write was lost";
  }
}

}  // namespace
}  // namespace medvault
