#include "common/json_out.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace medvault {
namespace {

TEST(JsonOutTest, CommasKeysAndNesting) {
  JsonOut out;
  out.BeginObject();
  out.Str("a", "x");
  out.Str("empty", "");  // left out
  out.Key("list");
  out.BeginArray();
  out.Uint(1);
  out.BeginObject();
  out.EndObject();
  out.Bool(false);
  out.EndArray();
  out.Key("n");
  out.Raw("1.50");
  out.EndObject();
  EXPECT_EQ(out.str(), R"({"a":"x","list":[1,{},false],"n":1.50})");
}

TEST(JsonOutTest, StringsAreEscapedAndParseBack) {
  const std::string hostile = std::string("quote \" backslash \\ nul ") + '\0' + " bell \x07 é";
  JsonOut out;
  out.BeginObject();
  out.Str(hostile, hostile);
  out.EndObject();
  const nlohmann::json back = nlohmann::json::parse(out.str());
  ASSERT_TRUE(back.contains(hostile));
  EXPECT_EQ(back[hostile], hostile);
}

}  // namespace
}  // namespace medvault
