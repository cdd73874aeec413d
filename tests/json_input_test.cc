#include "api/json_input.h"

#include <gtest/gtest.h>

namespace medvault::api {
namespace {

TEST(JsonInputTest, ParsesAndRejects) {
  EXPECT_TRUE(ParseJsonBody(R"({"a":1,"b":{"c":[1,2]}})").ok());
  EXPECT_EQ(ParseJsonBody("{").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseJsonBody("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseJsonBody(R"({"a":1} trailing)").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseJsonBody(R"({"a":1,"a":2})").status().message(), "JSON object repeats a key");
  EXPECT_TRUE(ParseJsonBody(R"({"a":{"x":1},"b":{"x":1}})").ok());  // same key, other objects
  EXPECT_EQ(ParseJsonBody("{\"a\":\"\xff\"}").status().message(),
            "request body is not valid UTF-8");
  std::string deep(kMaxJsonDepth + 5, '[');
  deep += std::string(kMaxJsonDepth + 5, ']');
  EXPECT_NE(ParseJsonBody(deep).status().message().find("nested deeper"), std::string::npos);
  std::string ok_depth(kMaxJsonDepth - 1, '[');
  ok_depth += std::string(kMaxJsonDepth - 1, ']');
  EXPECT_TRUE(ParseJsonBody(ok_depth).ok());
  EXPECT_NE(ParseJsonBody("{\"a\":tru}").status().message().find("byte"), std::string::npos);
}

// Issue 13: "\u0000" was accepted (and stored) although no export format
// can carry it.
TEST(JsonInputTest, RefusesNulInStringsAndKeys) {
  const std::string message = "JSON strings must not contain U+0000";
  EXPECT_EQ(ParseJsonBody(R"({"text":"a\u0000b"})").status().message(), message);
  EXPECT_EQ(ParseJsonBody(R"({"data":{"x":["ok","\u0000"]}})").status().message(), message);
  EXPECT_EQ(ParseJsonBody(R"({"a\u0000":1})").status().message(), message);
  // Other control characters are JSON's to carry (escaped).
  EXPECT_TRUE(ParseJsonBody(R"({"text":"tab\there\u0001"})").ok());
}

TEST(JsonInputTest, FieldChecks) {
  auto j = *ParseJsonBody(R"({"name":"x","n":5,"big":99999999999999999999,"neg":-3})");
  EXPECT_TRUE(CheckObjectFields(j, {"name", "n", "big", "neg"}, {"name"}).ok());
  EXPECT_EQ(CheckObjectFields(j, {"name", "n"}, {}).message(), "unknown field 'big'");
  EXPECT_EQ(CheckObjectFields(j, {"name", "n", "big", "neg", "z"}, {"z"}).message(),
            "missing required field 'z'");
  EXPECT_FALSE(CheckObjectFields(nlohmann::json::array(), {}, {}).ok());
  EXPECT_EQ(*GetStringField(j, "name", true, 10), "x");
  EXPECT_EQ(GetStringField(j, "n", true, 10).status().message(), "field 'n' must be a string");
  EXPECT_FALSE(GetStringField(j, "name", true, 0).ok());
  EXPECT_EQ(*GetStringField(j, "absent", false, 10), "");
  EXPECT_EQ(**GetIntField(j, "n", 0, 10), 5);
  EXPECT_FALSE(GetIntField(j, "n", 0, 4).ok());
  EXPECT_FALSE(GetIntField(j, "neg", 0, 4).ok());
  EXPECT_FALSE(GetIntField(j, "name", 0, 4).ok());
  EXPECT_FALSE(GetIntField(j, "big", 0, 4).ok());
  EXPECT_FALSE(GetIntField(j, "absent", 0, 4)->has_value());
}

}  // namespace
}  // namespace medvault::api
