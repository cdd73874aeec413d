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

// The row rules every MetadataStore applies (one function for all backends).
TEST(MetadataRulesTest, ASegmentVersionRecordIsCheckedFieldByField) {
  SegmentVersionRecord r;
  r.patient_id = std::string(32, 'a');
  r.path = "other/a";
  r.version = 1;
  r.kind = ContentKind::kJson;
  r.object_key = "aa/bb";
  r.content_sha256 = Bytes(32, 1);
  EXPECT_TRUE(ValidateSegmentVersionRecord(r).ok());
  auto refused = [&](auto change) {
    SegmentVersionRecord bad = r;
    change(bad);
    return ValidateSegmentVersionRecord(bad).code() == StatusCode::kInvalidArgument;
  };
  EXPECT_TRUE(refused([](SegmentVersionRecord& b) { b.patient_id.clear(); }));
  EXPECT_TRUE(refused([](SegmentVersionRecord& b) { b.object_key.clear(); }));
  EXPECT_TRUE(refused([](SegmentVersionRecord& b) { b.version = 0; }));
  EXPECT_TRUE(refused([](SegmentVersionRecord& b) { b.version = uint64_t{1} << 63; }));
  EXPECT_TRUE(refused([](SegmentVersionRecord& b) { b.stored_size = ~uint64_t{0}; }));
  EXPECT_TRUE(refused([](SegmentVersionRecord& b) { b.sensitivity = 5; }));
  EXPECT_TRUE(refused([](SegmentVersionRecord& b) { b.sensitivity = -1; }));
  EXPECT_TRUE(refused([](SegmentVersionRecord& b) { b.kind = static_cast<ContentKind>(4); }));
  EXPECT_TRUE(refused([](SegmentVersionRecord& b) { b.content_sha256.resize(31); }));
  EXPECT_TRUE(CheckInt64(uint64_t{1} << 62, "x").ok());
  EXPECT_EQ(CheckInt64(uint64_t{1} << 63, "size").message(), "size is out of range");
}

}  // namespace
}  // namespace medvault::store
