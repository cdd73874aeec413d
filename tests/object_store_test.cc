// Object key grammar (the Put/Get conveniences are in the conformance
// suite, object_store_conformance_test.cc).
#include <gtest/gtest.h>

#include <string>

#include "store/store.h"

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

}  // namespace
}  // namespace medvault::store
