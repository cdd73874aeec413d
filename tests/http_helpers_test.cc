// The request helpers shared by the route groups: timestamps, typed fields,
// query parameters.
#include <gtest/gtest.h>

#include "api/http_internal.h"

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
  httplib::Request req;
  req.params.emplace("limit", "10");
  EXPECT_TRUE(CheckQuery(req, {"limit", "after"}).ok());
  EXPECT_EQ(CheckQuery(req, {"after"}).code(), StatusCode::kInvalidArgument);
  req.params.emplace("limit", "20");
  auto twice = CheckQuery(req, {"limit"});
  EXPECT_EQ(twice.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(twice.message().find("twice"), std::string::npos);
}

}  // namespace
}  // namespace medvault::api::internal
