#include "common/file_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

namespace medvault {
namespace {

TEST(FileUtilTest, AtomicWriteReplacesWithModeAndLeavesNoTemp) {
  testing::TempDir tmp;
  const auto path = tmp.path() / "report.json";
  ASSERT_TRUE(WriteFileAtomically(path, AsBytes("first")).ok());
  ASSERT_TRUE(WriteFileAtomically(path, AsBytes("second")).ok());
  EXPECT_EQ(testing::ReadFileBytes(path), "second");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp.path())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1u) << "no temporary file is left behind";
  ASSERT_TRUE(WriteFileAtomically(tmp.path() / "public.txt", AsBytes("x"), 0644).ok());
  ASSERT_EQ(::stat((tmp.path() / "public.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST(FileUtilTest, FailuresAreReportedAndLeaveNothing) {
  testing::TempDir tmp;
  EXPECT_EQ(WriteFileAtomically(tmp.path() / "missing-dir" / "f", AsBytes("x")).code(),
            StatusCode::kIOError);
  EXPECT_EQ(WriteFileAtomically(tmp.path() / "", AsBytes("x")).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(FsyncDir(tmp.path() / "nope").code(), StatusCode::kIOError);
  EXPECT_TRUE(FsyncDir(tmp.path()).ok());
  EXPECT_EQ(WriteAll(-1, AsBytes("x")).code(), StatusCode::kIOError);
  EXPECT_TRUE(WriteAll(-1, AsBytes("")).ok()) << "nothing to write is not an error";
}

mode_t ModeOf(const std::filesystem::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

// Issue 13: the modes are explicit, whatever the umask (an umask that takes
// owner bits away included).
TEST(FileUtilTest, ModesAreExactWhateverTheUmask) {
  testing::TempDir tmp;
  for (mode_t mask : {mode_t{0}, mode_t{022}, mode_t{0277}}) {
    const auto dir = tmp.path() / ("d" + std::to_string(mask));
    const mode_t old = ::umask(mask);
    const Status made = MakePrivateDirectory(dir);
    const Status atomic = WriteFileAtomically(dir / "a", AsBytes("a"));
    const Status fresh = WriteNewPrivateFile(dir / "b", AsBytes("b"));
    ::umask(old);
    ASSERT_TRUE(made.ok()) << made.ToString();
    ASSERT_TRUE(atomic.ok()) << atomic.ToString();
    ASSERT_TRUE(fresh.ok()) << fresh.ToString();
    EXPECT_EQ(ModeOf(dir), 0700u) << "umask " << mask;
    EXPECT_EQ(ModeOf(dir / "a"), 0600u) << "umask " << mask;
    EXPECT_EQ(ModeOf(dir / "b"), 0600u) << "umask " << mask;
    EXPECT_EQ(testing::ReadFileBytes(dir / "b"), "b");
  }
}

TEST(FileUtilTest, PrivateDirectoryAndNewFileRefuseWhatIsThere) {
  testing::TempDir tmp;
  const auto dir = tmp.path() / "open";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  ASSERT_TRUE(MakePrivateDirectory(dir).ok());
  EXPECT_EQ(ModeOf(dir), 0700u) << "an existing directory is tightened";
  testing::WriteFileBytes(tmp.path() / "file", "x");
  EXPECT_EQ(MakePrivateDirectory(tmp.path() / "file").code(), StatusCode::kFailedPrecondition);
  std::filesystem::create_directory_symlink(dir, tmp.path() / "link");
  EXPECT_EQ(MakePrivateDirectory(tmp.path() / "link").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(MakePrivateDirectory(tmp.path() / "no" / "parent").code(), StatusCode::kIOError);
  EXPECT_EQ(WriteNewPrivateFile(tmp.path() / "file", AsBytes("y")).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(testing::ReadFileBytes(tmp.path() / "file"), "x") << "never overwritten";
  EXPECT_EQ(WriteNewPrivateFile(tmp.path() / "link" / "..", AsBytes("y")).code(),
            StatusCode::kAlreadyExists);
}

TEST(FileUtilTest, WriteAllWritesEverything) {
  testing::TempDir tmp;
  const auto path = tmp.path() / "big";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  const std::string big(3 * 1024 * 1024 + 7, 'z');
  EXPECT_TRUE(WriteAll(fd, AsBytes(big)).ok());
  ::close(fd);
  EXPECT_EQ(testing::ReadFileBytes(path), big);
}

}  // namespace
}  // namespace medvault
