#include "common/log.h"

#include <gtest/gtest.h>

namespace medvault {
namespace {

TEST(LogTest, FormatsJsonLine) {
  std::string line = FormatLogLine(LogLevel::kInfo, "http.request",
                                   {{"route", "/api/v1/patients"}, {"status", 201}});
  EXPECT_NE(line.find("\"level\":\"info\""), std::string::npos);
  EXPECT_NE(line.find("\"event\":\"http.request\""), std::string::npos);
  EXPECT_NE(line.find("\"route\":\"/api/v1/patients\""), std::string::npos);
  EXPECT_NE(line.find("\"status\":201"), std::string::npos);
  EXPECT_EQ(line.front(), '{');
  EXPECT_EQ(line.back(), '}');
}

TEST(LogTest, EscapesControlAndQuotes) {
  EXPECT_EQ(JsonEscape("a\"b\\c\nd\x01"), "a\\\"b\\\\c\\nd\\u0001");
  std::string line = FormatLogLine(LogLevel::kWarn, "x", {{"k", "line\nbreak"}});
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(LogTest, LevelsParseAndFilter) {
  LogLevel l;
  EXPECT_TRUE(ParseLogLevel("debug", &l));
  EXPECT_EQ(l, LogLevel::kDebug);
  EXPECT_FALSE(ParseLogLevel("verbose", &l));
  SetLogLevel(LogLevel::kError);
  EXPECT_EQ(GetLogLevel(), LogLevel::kError);
  SetLogLevel(LogLevel::kInfo);
}

}  // namespace
}  // namespace medvault
