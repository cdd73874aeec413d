#include <gtest/gtest.h>
#include <sys/stat.h>

#include "app/app.h"
#include "test_util.h"

namespace medvault::app {
namespace {

mode_t ModeOf(const std::filesystem::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 0777;
}

TEST(DataDirTest, InitCreatesPrivateFilesOnce) {
  ASSERT_TRUE(crypto::InitCrypto().ok());
  testing::TempDir tmp;
  const auto dir = tmp.path() / "data";
  ASSERT_TRUE(InitDataDir(dir, false).ok());
  DataDirLayout layout(dir);
  EXPECT_EQ(ModeOf(dir), 0700u);
  EXPECT_EQ(ModeOf(layout.kek), 0600u);
  EXPECT_EQ(ModeOf(layout.metrics_token), 0600u);
  EXPECT_TRUE(std::filesystem::exists(layout.metadata_db));
  EXPECT_TRUE(std::filesystem::exists(layout.config_file));
  const std::string kek = testing::ReadFileBytes(layout.kek);
  const std::string token = testing::ReadFileBytes(layout.metrics_token);
  EXPECT_EQ(token.rfind("mvm_", 0), 0u);
  EXPECT_GE(token.size(), 40u);

  // A second init refuses and changes nothing.
  Status again = InitDataDir(dir, false);
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(testing::ReadFileBytes(layout.kek), kek);
  EXPECT_EQ(testing::ReadFileBytes(layout.metrics_token), token);

  // The token hash loads; a token readable by others is refused.
  EXPECT_TRUE(LoadTokenHash(layout.metrics_token).ok());
  ::chmod(layout.metrics_token.c_str(), 0644);
  EXPECT_EQ(LoadTokenHash(layout.metrics_token).status().code(), StatusCode::kFailedPrecondition);
  ::chmod(layout.metrics_token.c_str(), 0600);

  // A key file readable by others stops the runtime from opening.
  Config config;
  config.data_dir = dir.string();
  EXPECT_TRUE(OpenRuntime(config).ok());
  ::chmod(layout.kek.c_str(), 0640);
  auto rt = OpenRuntime(config);
  EXPECT_EQ(rt.status().code(), StatusCode::kFailedPrecondition) << rt.status().ToString();
}

TEST(DataDirTest, OpenRuntimeOnUninitialisedDirectoryExplains) {
  ASSERT_TRUE(crypto::InitCrypto().ok());
  testing::TempDir tmp;
  Config config;
  config.data_dir = (tmp.path() / "nothing").string();
  auto rt = OpenRuntime(config);
  ASSERT_FALSE(rt.ok());
  EXPECT_NE(rt.status().message().find("medvault init"), std::string::npos);
}

}  // namespace
}  // namespace medvault::app
