#include "record/measurements.h"

#include <gtest/gtest.h>

#include "vocab/vocab.h"

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

// Every measurement of the vocabulary is enforced from its row: a reading in
// range with each of its units passes, one just outside a field's range, one
// in an unknown unit and one without a field do not.
TEST(MeasurementsTest, EveryVocabularyMeasurementIsEnforced) {
  for (const vocab::Measurement& m : vocab::kMeasurements) {
    SCOPED_TRACE(std::string(m.leaf));
    json ok = {{"time", "2026-11-20T07:30:00Z"}};
    for (const vocab::MeasurementField& f : m.fields) {
      ok[std::string(f.name)] = (f.min + f.max) / 2;
    }
    for (const vocab::MeasurementUnit& u : m.units) {
      ok["unit"] = std::string(u.unit);
      EXPECT_TRUE(ValidateJsonSegment(m.path, ok).ok()) << u.unit;
    }
    EXPECT_TRUE(ValidateJsonSegment("internal-medicine/x/" + std::string(m.leaf), ok).ok());
    for (const vocab::MeasurementField& f : m.fields) {
      json low = ok;
      low[std::string(f.name)] = f.min - 0.01;
      EXPECT_FALSE(ValidateJsonSegment(m.path, low).ok()) << f.name;
      json high = ok;
      high[std::string(f.name)] = f.max + 0.01;
      EXPECT_FALSE(ValidateJsonSegment(m.path, high).ok()) << f.name;
      json missing = ok;
      missing.erase(std::string(f.name));
      EXPECT_FALSE(ValidateJsonSegment(m.path, missing).ok()) << f.name;
    }
    json furlongs = ok;
    furlongs["unit"] = "furlong";
    EXPECT_FALSE(ValidateJsonSegment(m.path, furlongs).ok());
    // The same body elsewhere is just JSON.
    EXPECT_TRUE(ValidateJsonSegment(std::string(m.path) + "-notes", furlongs).ok());
  }
}

}  // namespace
}  // namespace medvault::record
