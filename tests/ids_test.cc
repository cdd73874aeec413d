#include "common/ids.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <set>

namespace medvault {
namespace {

TEST(IdsTest, RandomIdsAreWellFormedAndDistinct) {
  ASSERT_GE(sodium_init(), 0);
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewRandomId();
    EXPECT_TRUE(IsValidRandomId(id));
    EXPECT_TRUE(seen.insert(id).second);
  }
  EXPECT_FALSE(IsValidRandomId(""));
  EXPECT_FALSE(IsValidRandomId("0123456789ABCDEF0123456789abcdef"));
  EXPECT_FALSE(IsValidRandomId("0123456789abcdef0123456789abcde"));
  EXPECT_FALSE(IsValidRandomId("../3456789abcdef0123456789abcdef"));
}

TEST(IdsTest, FormatsRfc3339) {
  EXPECT_EQ(FormatRfc3339Millis(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(1795284000123), "2026-11-21T18:00:00.123Z");
  EXPECT_GT(NowUnixMillis(), 1795284000000 - 86400000LL * 365);
}

}  // namespace
}  // namespace medvault
