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
