// Object key grammar and the ObjectStore::Put/Get conveniences.
#include <gtest/gtest.h>

#include <string>

#include "store/store.h"
#include "test_util.h"

namespace medvault::store {
namespace {

TEST(ObjectKeyTest, AcceptsValidKeys) {
  EXPECT_TRUE(IsValidObjectKey("a"));
  EXPECT_TRUE(IsValidObjectKey("0123456789abcdef0123456789abcdef/fedcba9876543210"));
  EXPECT_TRUE(IsValidObjectKey("a/b/c"));
  EXPECT_TRUE(IsValidObjectKey("a.b_c-d"));
  EXPECT_TRUE(IsValidObjectKey("..a/b.."));  // dots inside a component are fine
  EXPECT_TRUE(IsValidObjectKey("..."));
  EXPECT_TRUE(IsValidObjectKey(std::string(512, 'x')));
  std::string components;
  for (int i = 0; i < 256; ++i) {
    components += i == 0 ? "a" : "/a";
  }
  ASSERT_EQ(components.size(), 511u);
  EXPECT_TRUE(IsValidObjectKey(components));
}

TEST(ObjectKeyTest, RejectsInvalidKeys) {
  EXPECT_FALSE(IsValidObjectKey(""));
  EXPECT_FALSE(IsValidObjectKey("/a"));
  EXPECT_FALSE(IsValidObjectKey("a/"));
  EXPECT_FALSE(IsValidObjectKey("/"));
  EXPECT_FALSE(IsValidObjectKey("a//b"));
  EXPECT_FALSE(IsValidObjectKey("."));
  EXPECT_FALSE(IsValidObjectKey(".."));
  EXPECT_FALSE(IsValidObjectKey("../x"));
  EXPECT_FALSE(IsValidObjectKey("a/.."));
  EXPECT_FALSE(IsValidObjectKey("a/../b"));
  EXPECT_FALSE(IsValidObjectKey("a/./b"));
  EXPECT_FALSE(IsValidObjectKey("A"));
  EXPECT_FALSE(IsValidObjectKey("a b"));
  EXPECT_FALSE(IsValidObjectKey("a\\b"));
  EXPECT_FALSE(IsValidObjectKey(std::string("a\0b", 3)));
  EXPECT_FALSE(IsValidObjectKey(std::string(513, 'x')));
  EXPECT_FALSE(IsValidObjectKey("caf\xc3\xa9"));   // UTF-8 e-acute
  EXPECT_FALSE(IsValidObjectKey("\xe2\x80\x8b"));  // zero-width space
  EXPECT_FALSE(IsValidObjectKey("a\n"));
}

TEST(ObjectStoreTest, PutGetConveniences) {
  medvault::testing::TempDir dir;
  auto store = OpenFileObjectStore(dir.path() / "objects-root");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const std::string data(200 * 1024 + 7, 'q');  // several internal read chunks
  auto info = (*store)->Put("p/one", AsBytes(data));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->key, "p/one");
  EXPECT_EQ(info->size, data.size());
  ASSERT_EQ(info->sha256.size(), 32u);
  auto got = (*store)->Get("p/one", info->sha256);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(AsString(*got), data);

  Bytes wrong = info->sha256;
  wrong[0] ^= 1;
  EXPECT_EQ((*store)->Get("p/one", wrong).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ((*store)->Get("p/none", wrong).status().code(), StatusCode::kNotFound);
  EXPECT_EQ((*store)->Put("P/one", AsBytes(data)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*store)->Put("p/one", AsBytes(data)).status().code(), StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace medvault::store
