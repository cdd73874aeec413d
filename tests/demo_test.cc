#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "app/app.h"
#include "test_util.h"

namespace medvault::app {
namespace {

TEST(DemoTest, SeedsReadablePatients) {
  ASSERT_TRUE(crypto::InitCrypto().ok());
  testing::TempDir tmp;
  const auto dir = tmp.path() / "data";
  ASSERT_TRUE(InitDataDir(dir, false).ok());
  Config config;
  config.data_dir = dir.string();
  auto rt = OpenRuntime(config);
  ASSERT_TRUE(rt.ok());
  auto ids = SeedDemoData(*(*rt)->records);
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  ASSERT_EQ(ids->size(), 3u);
  auto bp = (*rt)->records->ListVersions((*ids)[0], "physical-signs/blood-pressure");
  ASSERT_TRUE(bp.ok());
  EXPECT_EQ(bp->size(), 5u);
  auto tree = (*rt)->records->ListTree((*ids)[1], "");
  ASSERT_TRUE(tree.ok());
  EXPECT_EQ(tree->size(), 5u);
  auto p = (*rt)->records->GetPatient((*ids)[2]);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->demographics->identifier, "DEMO-0003");
}

}  // namespace
}  // namespace medvault::app
