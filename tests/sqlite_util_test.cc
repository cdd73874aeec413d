// SQLite plumbing shared by the stores: creating the database file without
// disturbing the locks of connections this process already has on it.
#include "store/sqlite_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>

#include "test_util.h"

namespace medvault::store {
namespace {

namespace fs = std::filesystem;
using medvault::testing::TempDir;

// SQLite's unix VFS: the SHARED lock of a connection is a read lock on the
// 510 bytes after PENDING_BYTE (0x40000000) + 2.
constexpr off_t kSharedFirst = 0x40000000 + 2;
constexpr off_t kSharedSize = 510;

// Asks from a child process (F_GETLK from this one would see its own locks
// as no conflict) whether someone holds a read lock on the SHARED range of
// `file`: 1 = held by this process, 0 = free, -1 = the check failed.
int SharedLockHeldByUs(const fs::path& file) {
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      _exit(3);
    }
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = kSharedFirst;
    fl.l_len = kSharedSize;
    if (::fcntl(fd, F_GETLK, &fl) != 0) {
      _exit(3);
    }
    _exit(fl.l_type == F_UNLCK ? 0 : (fl.l_pid == parent ? 1 : 2));
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
    return -1;
  }
  const int code = WEXITSTATUS(status);
  return code <= 1 ? code : -1;
}

// The statement cache owns its keys: SQL text that lived in a string since
// freed is found again by content, never read from freed memory (ASan).
TEST(ConnectionTest, StatementCacheKeepsItsOwnCopyOfTheSql) {
  TempDir dir;
  auto conn = Connection::Open(dir.path() / "t.db", /*read_only=*/false, SqliteOptions{});
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  sqlite3_stmt* first = nullptr;
  {
    auto text = std::make_unique<std::string>("SELECT 1 + ?1");
    auto stmt = (*conn)->Prepare(*text);
    ASSERT_TRUE(stmt.ok()) << stmt.status().ToString();
    first = *stmt;
    std::fill(text->begin(), text->end(), 'x');  // the caller's text changes, then dies
  }
  const std::string again = std::string("SELECT 1 + ") + "?1";
  auto stmt = (*conn)->Prepare(again);
  ASSERT_TRUE(stmt.ok());
  EXPECT_EQ(*stmt, first);
  auto other = (*conn)->Prepare("SELECT 2");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, first);
}

TEST(CreatePrivateDatabaseFileTest, KeepsTheLocksOfOpenConnections) {
  TempDir dir;
  const fs::path db = dir.path() / "metadata.db";
  ASSERT_TRUE(CreatePrivateDatabaseFile(db).ok());
  auto conn = Connection::Open(db, /*read_only=*/false, SqliteOptions{});
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  ASSERT_TRUE((*conn)->ExecScript("CREATE TABLE t(x INTEGER) STRICT", "create").ok());
  // A WAL-mode connection holds SHARED on the database file while open.
  ASSERT_EQ(SharedLockHeldByUs(db), 1);

  // What every store does when it opens: the file exists, our connection
  // holds it. Opening and closing a descriptor here would drop the lock.
  ASSERT_TRUE(CreatePrivateDatabaseFile(db).ok());
  EXPECT_EQ(SharedLockHeldByUs(db), 1) << "the process's SQLite locks were dropped";

  // (crash_test runs the real processes: a CLI command beside a writer.)
}

TEST(CreatePrivateDatabaseFileTest, CreatesOwnerOnlyWhateverTheUmask) {
  TempDir dir;
  const fs::path db = dir.path() / "fresh.db";
  const mode_t old = ::umask(0);
  const Status st = CreatePrivateDatabaseFile(db);
  ::umask(old);
  ASSERT_TRUE(st.ok()) << st.ToString();
  struct stat s {};
  ASSERT_EQ(::lstat(db.c_str(), &s), 0);
  EXPECT_EQ(s.st_mode & 07777, 0600u);
}

TEST(CreatePrivateDatabaseFileTest, TightensAnExistingFileWithoutOpeningIt) {
  TempDir dir;
  const fs::path db = dir.path() / "loose.db";
  medvault::testing::WriteFileBytes(db, "");
  ASSERT_EQ(::chmod(db.c_str(), 0644), 0);
  ASSERT_TRUE(CreatePrivateDatabaseFile(db).ok());
  struct stat s {};
  ASSERT_EQ(::lstat(db.c_str(), &s), 0);
  EXPECT_EQ(s.st_mode & 07777, 0600u);
}

TEST(CreatePrivateDatabaseFileTest, RefusesASymbolicLinkOrDirectory) {
  TempDir dir;
  const fs::path target = dir.path() / "elsewhere.db";
  medvault::testing::WriteFileBytes(target, "");
  const fs::path link = dir.path() / "link.db";
  fs::create_symlink(target, link);
  EXPECT_EQ(CreatePrivateDatabaseFile(link).code(), StatusCode::kFailedPrecondition);
  fs::create_directory(dir.path() / "dir.db");
  EXPECT_EQ(CreatePrivateDatabaseFile(dir.path() / "dir.db").code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(CreatePrivateDatabaseFile(dir.path() / "missing" / "x.db").code(),
            StatusCode::kIOError);
}

}  // namespace
}  // namespace medvault::store
