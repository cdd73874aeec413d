#include "record/measurements.h"

#include <gtest/gtest.h>

namespace medvault::record {
namespace {

using nlohmann::json;

TEST(MeasurementsTest, DatesAndTimes) {
  EXPECT_TRUE(IsCalendarDate("2024-02-29"));
  EXPECT_FALSE(IsCalendarDate("2023-02-29"));
  EXPECT_FALSE(IsCalendarDate("2023-13-01"));
  EXPECT_FALSE(IsCalendarDate("2023-1-01"));
  EXPECT_TRUE(IsRfc3339DateTime("2026-11-20T07:30:00Z"));
  EXPECT_TRUE(IsRfc3339DateTime("2026-11-20T07:30:00.123+01:00"));
  EXPECT_FALSE(IsRfc3339DateTime("2026-11-20 07:30:00Z"));
  EXPECT_FALSE(IsRfc3339DateTime("2026-11-20T25:30:00Z"));
  EXPECT_FALSE(IsRfc3339DateTime("2026-11-20T07:30:00"));
}

TEST(MeasurementsTest, Schemas) {
  json bp = {{"systolic", 120},
             {"diastolic", 80},
             {"unit", "mmHg"},
             {"time", "2026-11-20T07:30:00Z"},
             {"note", "after coffee"}};
  EXPECT_TRUE(ValidateJsonSegment("physical-signs/blood-pressure", bp).ok());
  json glucose = {{"value", 6.1}, {"unit", "mmol/L"}, {"time", "2026-11-20T07:30:00Z"}};
  EXPECT_TRUE(ValidateJsonSegment("physical-signs/blood-glucose", glucose).ok());
  glucose["unit"] = "mg";
  EXPECT_FALSE(ValidateJsonSegment("physical-signs/blood-glucose", glucose).ok());
  json weight = {{"value", "70"}, {"unit", "kg"}, {"time", "2026-11-20T07:30:00Z"}};
  EXPECT_FALSE(ValidateJsonSegment("body-measures/weight", weight).ok());
  bp["note"] = 5;
  EXPECT_FALSE(ValidateJsonSegment("physical-signs/blood-pressure", bp).ok());
  // Free-form segments only need to be objects.
  EXPECT_TRUE(ValidateJsonSegment("life-record/diet", {{"breakfast", "oats"}}).ok());
  EXPECT_FALSE(ValidateJsonSegment("life-record/diet", json::array()).ok());
  EXPECT_FALSE(ValidateJsonSegment("life-record/diet", "text").ok());
}

}  // namespace
}  // namespace medvault::record
