// The request helpers shared by the route groups: timestamps, typed fields,
// query parameters.
#include <gtest/gtest.h>

#include "api/http_internal.h"
#include "vocab/vocab.h"

namespace medvault::api::internal {
namespace {

using nlohmann::json;

TEST(HttpHelpersTest, ParsesUtcTimestamps) {
  EXPECT_EQ(*ParseTimestamp("1970-01-01T00:00:00Z", "t"), 0);
  EXPECT_EQ(*ParseTimestamp("2026-12-31T23:59:59Z", "t"), 1798761599000);
  EXPECT_EQ(*ParseTimestamp("2026-12-31T23:59:59.5Z", "t"), 1798761599500);
  EXPECT_EQ(*ParseTimestamp("2026-12-31T23:59:59.123456Z", "t"), 1798761599123);
  EXPECT_TRUE(ParseTimestamp("2028-02-29T00:00:00Z", "t").ok()) << "leap day";
}

TEST(HttpHelpersTest, RefusesEveryMalformedTimestamp) {
  for (const char* bad :
       {"", "tomorrow", "2026-12-31", "2026-12-31T23:59:59", "2026-12-31T23:59:59+01:00",
        "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
        "2026-12-31T24:00:00Z", "2026-12-31T23:60:00Z", "1969-12-31T23:59:59Z",
        "2026-12-31T23:59:59.Z", "2026-12-31T23:59:59.1234567890Z", "2026-12-31 23:59:59Z",
        "２026-12-31T23:59:59Z"}) {
    auto r = ParseTimestamp(bad, "expires_at");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("expires_at"), std::string::npos);
  }
}

TEST(HttpHelpersTest, TimeFieldsAreOptionalButTyped) {
  EXPECT_EQ(*GetTimeField(json::object(), "expires_at"), 0);
  EXPECT_EQ(*GetTimeField(json{{"expires_at", nullptr}}, "expires_at"), 0);
  EXPECT_EQ(GetTimeField(json{{"expires_at", 12}}, "expires_at").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(*GetTimeField(json{{"expires_at", "1970-01-01T00:00:01Z"}}, "expires_at"), 1000);
  EXPECT_EQ(TimeOrEmpty(0), "");
  EXPECT_EQ(TimeOrEmpty(1000), "1970-01-01T00:00:01.000Z");
}

TEST(HttpHelpersTest, StringArraysAreBoundedAndTyped) {
  EXPECT_TRUE(GetStringArrayField(json::object(), "roles", 4, 8)->empty());
  EXPECT_EQ(*GetStringArrayField(json{{"roles", {"a", "b"}}}, "roles", 4, 8),
            (std::vector<std::string>{"a", "b"}));
  for (const json& bad :
       {json{{"roles", "doctor"}}, json{{"roles", {1, 2}}},
        json{{"roles", {"a", "b", "c", "d", "e"}}}, json{{"roles", {"much-too-long-role"}}},
        json{{"roles", {std::string("\xc3\x28")}}}}) {
    EXPECT_EQ(GetStringArrayField(bad, "roles", 4, 8).status().code(), StatusCode::kInvalidArgument)
        << bad.dump(-1, ' ', false, json::error_handler_t::replace);
  }
}

TEST(HttpHelpersTest, QueryParametersMustBeKnownAndSingle) {
  Request req;
  req.params.emplace("limit", "10");
  EXPECT_TRUE(CheckQuery(req, {"limit", "after"}).ok());
  EXPECT_EQ(CheckQuery(req, {"after"}).code(), StatusCode::kInvalidArgument);
  req.params.emplace("limit", "20");
  auto twice = CheckQuery(req, {"limit"});
  EXPECT_EQ(twice.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(twice.message().find("twice"), std::string::npos);
}

// GET /api/v1/segment-types serves the vocabulary's tables as they are.
TEST(HttpHelpersTest, SegmentTypesAreTheVocabulary) {
  const json j = SegmentTypesJson();
  ASSERT_EQ(j["segment_types"].size(), vocab::kTopLevelSegments.size());
  for (size_t i = 0; i < vocab::kTopLevelSegments.size(); ++i) {
    const json& t = j["segment_types"][i];
    EXPECT_EQ(t["name"], vocab::kTopLevelSegments[i].name);
    EXPECT_EQ(t["category"], vocab::kTopLevelSegments[i].category);
    EXPECT_EQ(t["default_sensitivity"], vocab::kTopLevelSegments[i].default_sensitivity);
    EXPECT_FALSE(t["description"].get<std::string>().empty());
  }
  ASSERT_EQ(j["categories"].size(), vocab::kCategories.size());
  EXPECT_EQ(j["categories"][0], vocab::kCategories[0]);
  ASSERT_EQ(j["measurements"].size(), vocab::kMeasurements.size());
  const json& bp = j["measurements"][0];
  EXPECT_EQ(bp["name"], "blood-pressure");
  EXPECT_EQ(bp["path"], "physical-signs/blood-pressure");
  EXPECT_EQ(bp["loinc"], "85354-9");
  ASSERT_EQ(bp["fields"].size(), 2u);
  EXPECT_EQ(bp["fields"][0]["name"], "systolic");
  EXPECT_EQ(bp["fields"][0]["min"], 40);
  EXPECT_EQ(bp["fields"][0]["max"], 300);
  EXPECT_EQ(bp["units"][0]["unit"], "mmHg");
  EXPECT_EQ(bp["units"][0]["ucum"], "mm[Hg]");
  ASSERT_EQ(j["content_kinds"].size(), 3u);
  EXPECT_EQ(j["content_kinds"][0]["name"], "json");
  EXPECT_EQ(j["content_kinds"][0]["media_type"], "application/json");
  EXPECT_EQ(j["content_kinds"][2]["media_type"], "");
}

}  // namespace
}  // namespace medvault::api::internal
