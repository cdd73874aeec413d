#include <gtest/gtest.h>

#include "record/record.h"

namespace medvault::record {
namespace {

TEST(SegmentPathTest, AcceptsBriefPaths) {
  for (const char* p :
       {"personal-information/insurance-number", "physical-signs/blood-pressure",
        "internal-medicine/cardiology/electrocardiogram", "surgery/vascular/blood-sugar",
        "family-history", "third-party-description", "a"}) {
    if (std::string_view(p) == "a") {
      EXPECT_FALSE(ValidateSegmentPath(p).ok());
      continue;
    }
    EXPECT_TRUE(ValidateSegmentPath(p).ok()) << p;
  }
  EXPECT_EQ(TopLevelFor("internal-medicine/cardiology").category, "clinical");
  EXPECT_EQ(TopLevelFor("psychiatry/notes").default_sensitivity, 4);
  EXPECT_EQ(TopLevelFor("body-measures/weight").category, "body-measures");
}

TEST(SegmentPathTest, RejectsTricks) {
  for (std::string p : {"", "/", "other/", "/other", "other//x", "other/..", "other/.", "../other",
                        "other/a.b", "other/A", "other/a\\b", "other/%2e", "other/-a", "other/a-",
                        "other/a b", "nope/x", "other/\xc3\xa9"}) {
    EXPECT_FALSE(ValidateSegmentPath(p).ok()) << p;
  }
  EXPECT_FALSE(ValidateSegmentPath(std::string("other/a\0b", 9)).ok());
  EXPECT_FALSE(ValidateSegmentPath("other/" + std::string(65, 'a')).ok());
  EXPECT_TRUE(ValidateSegmentPath("other/" + std::string(64, 'a')).ok());
  EXPECT_FALSE(ValidateSegmentPath("other/a/b/c/d/e/f/g/h").ok());  // 9 deep
  EXPECT_TRUE(ValidateSegmentPath("other/a/b/c/d/e/f/g").ok());     // 8 deep
}

}  // namespace
}  // namespace medvault::record
