// The strict JSON reader under the FHIR parser: exact numbers, duplicate
// keys, limits, UTF-8, and error messages that name the place but never the
// content.
#include "interop/fhir_json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <utility>

namespace medvault::interop::fhir_json {
namespace {

#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "\"" << (needle) << "\" not in: " << (haystack)
#define EXPECT_NOT_CONTAINS(haystack, needle)                      \
  EXPECT_EQ(std::string(haystack).find(needle), std::string::npos) \
      << "\"" << (needle) << "\" in: " << (haystack)

constexpr char kSecret[] = "SECRET-PATIENT-TEXT";

Result<Document> Parse(std::string_view json, const ParseLimits& limits = {}) {
  return Document::Parse(json, limits);
}

// Parses, expects failure with `code`, and checks that the message contains
// every one of `needles` and never the planted secret.
std::string ExpectError(std::string_view json, StatusCode code,
                        std::initializer_list<std::string_view> needles,
                        const ParseLimits& limits = {}) {
  Result<Document> r = Parse(json, limits);
  EXPECT_FALSE(r.ok()) << "accepted: " << json.substr(0, 200);
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  for (std::string_view n : needles) {
    EXPECT_CONTAINS(r.status().message(), std::string(n));
  }
  EXPECT_NOT_CONTAINS(r.status().message(), kSecret);
  return r.status().message();
}

// The text of the number at `path` (a key of the top-level object).
std::string NumberText(std::string_view json) {
  Result<Document> r = Parse(json);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return "<error>";
  Value v = r->root()["v"];
  EXPECT_TRUE(v.is_number());
  return std::string(v.text());
}

// ---------------------------------------------------------------------------
// Happy paths

TEST(FhirJson, ParsesEveryTypeAndNavigates) {
  Result<Document> r = Parse(R"({"s":"x\u00e9\n","n":12,"t":true,"f":false,"z":null,)"
                             R"("a":[1,{"k":"v"},[]],"o":{}})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Value root = r->root();
  ASSERT_TRUE(root.is_object());
  EXPECT_EQ(root.size(), 7u);
  EXPECT_EQ(root["s"].text(), "x\xc3\xa9\n");
  EXPECT_TRUE(root["n"].is_number());
  EXPECT_EQ(root["n"].text(), "12");
  EXPECT_TRUE(root["t"].is_bool());
  EXPECT_TRUE(root["t"].boolean());
  EXPECT_FALSE(root["f"].boolean());
  EXPECT_TRUE(root["z"].is_null());
  EXPECT_TRUE(root["a"].is_array());
  EXPECT_EQ(root["a"].size(), 3u);
  EXPECT_TRUE(root["o"].is_object());
  EXPECT_EQ(root["o"].size(), 0u);
  EXPECT_TRUE(root["missing"].missing());
  EXPECT_TRUE(root["s"]["not-an-object"].missing());
  // Missing values answer safely.
  Value none = root["missing"];
  EXPECT_EQ(none.type(), Type::kNull);
  EXPECT_EQ(none.text(), "");
  EXPECT_EQ(none.size(), 0u);
  EXPECT_FALSE(none.is_null());
  EXPECT_EQ(none.begin(), none.end());

  std::vector<std::string> keys;
  for (Value m : root) keys.emplace_back(m.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"s", "n", "t", "f", "z", "a", "o"}));

  std::vector<Type> types;
  for (Value e : root["a"]) types.push_back(e.type());
  EXPECT_EQ(types, (std::vector<Type>{Type::kNumber, Type::kObject, Type::kArray}));
  Value inner = *(++root["a"].begin());
  EXPECT_EQ(inner["k"].text(), "v");
  EXPECT_EQ(inner["k"].Path(), "a[1].k");
  EXPECT_EQ(inner["k"].Where(), "at a[1].k");
  EXPECT_EQ(root.Path(), "");
  EXPECT_EQ(root.Where(), "at the top level");
}

TEST(FhirJson, ScalarsAtTheTopLevel) {
  for (const char* json : {"1", "\"x\"", "true", "null", "[]", " {} "}) {
    Result<Document> r = Parse(json);
    EXPECT_TRUE(r.ok()) << json << ": " << r.status().ToString();
  }
}

TEST(FhirJson, KeepsTheExactTextOfNumbers) {
  EXPECT_EQ(NumberText(R"({"v":1.0})"), "1.0");
  EXPECT_EQ(NumberText(R"({"v":1.00})"), "1.00");
  EXPECT_EQ(NumberText(R"({"v":1E-22})"), "1E-22");
  EXPECT_EQ(NumberText(R"({"v":1000000000000000000})"), "1000000000000000000");
  EXPECT_EQ(NumberText(R"({"v":1.000000000000000000E-245})"), "1.000000000000000000E-245");
  EXPECT_EQ(NumberText(R"({"v":-1.000000000000000000E+245})"), "-1.000000000000000000E+245");
  EXPECT_EQ(NumberText(R"({"v":0})"), "0");
  EXPECT_EQ(NumberText(R"({"v":-0})"), "-0");
  EXPECT_EQ(NumberText(R"({"v":-0.0})"), "-0.0");
  EXPECT_EQ(NumberText(R"({"v":-17})"), "-17");
  EXPECT_EQ(NumberText(R"({"v":18446744073709551615})"), "18446744073709551615");
  EXPECT_EQ(NumberText(R"({"v":18446744073709551616})"), "18446744073709551616");
  EXPECT_EQ(NumberText(R"({"v":-9223372036854775808})"), "-9223372036854775808");
  EXPECT_EQ(NumberText(R"({"v":-9223372036854775809})"), "-9223372036854775809");
  // Integers beyond 64 bits but well inside double range are decimals too.
  EXPECT_EQ(NumberText(R"({"v":99999999999999999999999})"), "99999999999999999999999");
  EXPECT_EQ(NumberText(R"({"v":0.1e+5})"), "0.1e+5");
  // Underflow is not overflow: the text is kept.
  EXPECT_EQ(NumberText(R"({"v":1e-400})"), "1e-400");
  EXPECT_EQ(NumberText(R"({"v":1.7976931348623157e308})"), "1.7976931348623157e308");
}

TEST(FhirJson, AcceptsAUtf8ByteOrderMark) {
  Result<Document> r = Parse("\xEF\xBB\xBF{\"a\":1}");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->root()["a"].text(), "1");
  // Only at the very start.
  ExpectError(" \xEF\xBB\xBF{}", StatusCode::kInvalidArgument, {"invalid JSON"});
  ExpectError("\xEF\xBB{}", StatusCode::kInvalidArgument, {"invalid JSON"});
}

TEST(FhirJson, DecodesSurrogatePairs) {
  Result<Document> r = Parse(R"({"v":"\ud83d\ude00"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->root()["v"].text(), "\xF0\x9F\x98\x80");
}

TEST(FhirJson, HandlesSurviveMovingTheDocument) {
  Result<Document> r = Parse(R"({"a":"b"})");
  ASSERT_TRUE(r.ok());
  Document doc = std::move(r).value();
  Value a = doc.root()["a"];
  Document moved = std::move(doc);
  EXPECT_EQ(a.text(), "b");
  EXPECT_EQ(moved.root()["a"].text(), "b");
}

TEST(FhirJson, BigObjectsAreLookedUpAndCheckedByHash) {
  std::string json = "{";
  for (int i = 0; i < 1000; ++i)
    json += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  json += "\"last\":true}";
  Result<Document> r = Parse(json);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->root().size(), 1001u);
  EXPECT_EQ(r->root()["k999"].text(), "999");
  EXPECT_TRUE(r->root()["last"].boolean());
}

// ---------------------------------------------------------------------------
// Refusals

TEST(FhirJson, RefusesDuplicateKeys) {
  ExpectError(R"({"a":1,"b":"SECRET-PATIENT-TEXT","a":2})", StatusCode::kInvalidArgument,
              {"duplicate key \"a\"", "at the top level"});
  ExpectError(
      R"({"entry":[{"resource":{"status":"final","x":{},"status":"SECRET-PATIENT-TEXT"}}]})",
      StatusCode::kInvalidArgument, {"duplicate key \"status\"", "at entry[0].resource"});
  // Past the linear-scan size: the hash set catches it too.
  std::string big = "{";
  for (int i = 0; i < 100; ++i) big += "\"k" + std::to_string(i) + "\":\"SECRET-PATIENT-TEXT\",";
  big += "\"k42\":0}";
  ExpectError(big, StatusCode::kInvalidArgument, {"duplicate key \"k42\""});
  // The same key in different objects is fine.
  EXPECT_TRUE(Parse(R"({"a":{"a":1},"b":{"a":2}})").ok());
  // Keys are shown escaped and truncated.
  const std::string odd = "{\"q\\\"\\u00e9" + std::string(100, 'x') + "\":1,\"q\\\"\\u00e9" +
                          std::string(100, 'x') + "\":2}";
  const std::string msg = ExpectError(odd, StatusCode::kInvalidArgument, {"duplicate key"});
  EXPECT_CONTAINS(msg, "q\\x22\\xc3\\xa9xxx");
  EXPECT_CONTAINS(msg, "...");
  EXPECT_LT(msg.size(), 200u);
  // A key XML cannot carry is refused like such a string (resources kept
  // verbatim are written with their keys).
  ExpectError("{\"a\\u0001\":1}", StatusCode::kInvalidArgument, {"a key with a character XML"});
  ExpectError("{\"a\\uffff\":1}", StatusCode::kInvalidArgument, {"a key with a character XML"});
}

// Issue 13: "\u0000" was stored, and the patient's C-CDA export then failed.
// Exactly what XML 1.0 cannot carry is refused, with the path.
TEST(FhirJson, RefusesStringsXmlCannotCarry) {
  for (const char* bad : {"\\u0000", "\\u0001", "\\u0008", "\\u000b", "\\u000c", "\\u000e",
                          "\\u001f", "\\ufffe", "\\uffff"}) {
    SCOPED_TRACE(bad);
    ExpectError(
        R"({"entry":[{"resource":{"note":"SECRET-PATIENT-TEXT)" + std::string(bad) + R"("}}]})",
        StatusCode::kInvalidArgument,
        {"a string with a character XML cannot carry", "at entry[0].resource.note"});
  }
  // Raw U+FFFF (EF BF BF) too.
  ExpectError("{\"a\":\"x\xEF\xBF\xBF\"}", StatusCode::kInvalidArgument, {"at a"});
  // Everything XML can carry is accepted: tab, LF, CR, DEL, C1 controls, the
  // edges of the allowed ranges, supplementary planes.
  Result<Document> r =
      Parse(R"({"a":"\t\n\r\u007f\u0080\u009f\ud7ff\ue000\ufffd\ud800\udc00\udbff\udfff"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->root()["a"].text(),
            "\t\n\r\x7f\xC2\x80\xC2\x9f\xED\x9F\xBF\xEE\x80\x80\xEF\xBF\xBD\xF0\x90\x80\x80\xF4\x8F"
            "\xBF\xBF");
}

TEST(FhirJson, EnforcesTheMembersPerObjectLimit) {
  std::string big = "{";
  for (int i = 0; i < 1025; ++i) big += "\"k" + std::to_string(i) + "\":1,";
  big.back() = '}';
  ExpectError(big, StatusCode::kResourceExhausted,
              {"more than 1024 members in one object", "at the top level"});
  ParseLimits small;
  small.max_object_members = 2;
  ExpectError(R"({"entry":[{"a":1,"b":2,"c":3}]})", StatusCode::kResourceExhausted,
              {"more than 2 members", "at entry[0]"}, small);
  EXPECT_TRUE(Parse(R"({"entry":[{"a":1,"b":2}],"x":1})", small).ok());
}

TEST(FhirJson, RefusesNumbersThatOverflowDouble) {
  ExpectError(R"({"valueQuantity":{"unit":"SECRET-PATIENT-TEXT","value":1e400}})",
              StatusCode::kInvalidArgument, {"number out of range", "at valueQuantity.value"});
  ExpectError(R"({"v":-1e400})", StatusCode::kInvalidArgument, {"number out of range", "at v"});
  ExpectError(R"([1, 2, 1E+99999])", StatusCode::kInvalidArgument,
              {"number out of range", "at [2]"});
  const std::string huge = "{\"v\":1" + std::string(400, '0') + "}";
  ExpectError(huge, StatusCode::kInvalidArgument, {"number out of range"});
}

TEST(FhirJson, RefusesNonJsonNumbers) {
  for (const char* json :
       {R"({"v":NaN})", R"({"v":Infinity})", R"({"v":-Infinity})", R"({"v":01})", R"({"v":+1})",
        R"({"v":.5})", R"({"v":1.})", R"({"v":0x10})", R"({"v":1e})"}) {
    ExpectError(json, StatusCode::kInvalidArgument, {"invalid JSON"});
  }
}

TEST(FhirJson, RefusesBadUtf8AndBadEscapes) {
  struct Case {
    std::string json;
    const char* what;
  };
  const Case cases[] = {
      {"{\"v\":\"SECRET-PATIENT-TEXT \xff\"}", "invalid byte"},
      {"{\"v\":\"SECRET-PATIENT-TEXT \xc3\"}", "truncated sequence"},
      {"{\"v\":\"SECRET-PATIENT-TEXT \xc0\xaf\"}", "overlong 2-byte"},
      {"{\"v\":\"SECRET-PATIENT-TEXT \xe0\x80\xaf\"}", "overlong 3-byte"},
      {"{\"v\":\"SECRET-PATIENT-TEXT \xf0\x80\x80\xaf\"}", "overlong 4-byte"},
      {"{\"v\":\"SECRET-PATIENT-TEXT \xed\xa0\x80\"}", "UTF-8 encoded surrogate"},
      {"{\"v\":\"SECRET-PATIENT-TEXT \xf4\x90\x80\x80\"}", "above U+10FFFF"},
      {"{\"v\":\"SECRET-PATIENT-TEXT \\ud800\"}", "lone high surrogate"},
      {"{\"v\":\"SECRET-PATIENT-TEXT \\ud800\\u0041\"}", "high surrogate + non-low"},
      {"{\"v\":\"SECRET-PATIENT-TEXT \\udc00\"}", "lone low surrogate"},
      {"{\"v\":\"SECRET-PATIENT-TEXT \\x41\"}", "bad escape"},
      {"{\"v\":\"SECRET-PATIENT-TEXT \\u12\"}", "short \\u escape"},
      {"{\"v\":\"SECRET-PATIENT-TEXT \n\"}", "raw control character"},
      {"{\"v\":\"SECRET-PATIENT-TEXT", "unterminated string"},
      {"{\"SECRET-PATIENT-TEXT\xff\":1}", "bad UTF-8 in a key"},
      {"{\"v\":1} \xff", "bad byte after the value"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    ExpectError(c.json, StatusCode::kInvalidArgument, {"invalid JSON"});
  }
  // The error names where it happened.
  ExpectError("{\"name\":[{\"family\":\"SECRET-PATIENT-TEXT \xff\"}]}",
              StatusCode::kInvalidArgument, {"at name[0].family", "ill-formed UTF-8"});
}

TEST(FhirJson, RefusesTrailingGarbageAndOtherSyntax) {
  ExpectError(R"({"a":"SECRET-PATIENT-TEXT"} x)", StatusCode::kInvalidArgument,
              {"invalid JSON", "after the top-level value"});
  ExpectError(R"({"a":1}{"b":2})", StatusCode::kInvalidArgument, {"invalid JSON"});
  ExpectError("", StatusCode::kInvalidArgument, {"invalid JSON"});
  ExpectError("   \n ", StatusCode::kInvalidArgument, {"invalid JSON"});
  ExpectError(R"({"a":1,})", StatusCode::kInvalidArgument, {"invalid JSON"});
  ExpectError(R"({'a':1})", StatusCode::kInvalidArgument, {"invalid JSON"});
  ExpectError(R"({"a":1 /* SECRET-PATIENT-TEXT */})", StatusCode::kInvalidArgument,
              {"invalid JSON"});
  ExpectError(R"({"a" 1})", StatusCode::kInvalidArgument, {"invalid JSON"});
  ExpectError(R"([1,2)", StatusCode::kInvalidArgument, {"invalid JSON"});
  ExpectError(R"({"a":tru})", StatusCode::kInvalidArgument, {"invalid JSON"});
  ExpectError(std::string("{\"a\":\"x\"}\0", 10), StatusCode::kInvalidArgument, {"invalid JSON"});
  // The last token read (input text) is never quoted.
  const std::string msg = ExpectError(R"({"a": SECRET-PATIENT-TEXT})", StatusCode::kInvalidArgument,
                                      {"invalid JSON", "at a"});
  EXPECT_NOT_CONTAINS(msg, "last read");
}

TEST(FhirJson, EnforcesTheDepthLimit) {
  const std::string deep(100000, '[');
  ExpectError(deep, StatusCode::kResourceExhausted, {"nested deeper than 128"});
  ParseLimits limits;
  limits.max_depth = 3;
  EXPECT_TRUE(Parse(R"({"a":{"b":[1]}})", limits).ok());
  ExpectError(R"({"a":{"b":[{}]}})", StatusCode::kResourceExhausted,
              {"nested deeper than 3", "at a.b[0]"}, limits);
}

TEST(FhirJson, EnforcesTheValueCountLimit) {
  ParseLimits limits;
  limits.max_nodes = 5;
  EXPECT_TRUE(Parse("[1,2,3,4]", limits).ok());
  ExpectError("[1,2,3,4,5]", StatusCode::kResourceExhausted, {"more than 5 JSON values", "at [4]"},
              limits);
}

TEST(FhirJson, EnforcesTheStringLengthLimit) {
  ParseLimits limits;
  limits.max_text_bytes = 1024;
  std::string big = "{\"entry\":[{\"text\":\"" + std::string(10u << 20, 'S') + "\"}]}";
  ExpectError(big, StatusCode::kResourceExhausted,
              {"string longer than 1024 bytes", "at entry[0].text"}, limits);
  EXPECT_TRUE(Parse("[\"" + std::string(1024, 'x') + "\"]", limits).ok());
  ExpectError("{\"" + std::string(2000, 'k') + "\":1}", StatusCode::kResourceExhausted,
              {"key longer than 1024 bytes"}, limits);
}

TEST(FhirJson, EnforcesTheDocumentSizeLimit) {
  ParseLimits limits;
  limits.max_document_bytes = 10;
  EXPECT_TRUE(Parse("[1,2,3,4]", limits).ok());
  ExpectError("[1,2,3,4,5,6]", StatusCode::kResourceExhausted, {"exceeds the limit of 10"}, limits);
}

// ---------------------------------------------------------------------------
// Helpers

TEST(FhirJson, AppendJsonStringRoundTrips) {
  static constexpr char kNasty[] = "a\"b\\c\n\r\t\b\f\x01\x1f\x7f\0z\xc3\xa9\xf0\x9f\x98\x80";
  const std::string nasty(kNasty, sizeof kNasty - 1);
  std::string out;
  AppendJsonString(out, nasty);
  EXPECT_EQ(out.front(), '"');
  EXPECT_EQ(nlohmann::json::parse(out).get<std::string>(), nasty);
  // The reader refuses what XML cannot carry, and reads back the rest.
  ExpectError("[" + out + "]", StatusCode::kInvalidArgument, {"XML cannot carry", "at [0]"});
  static constexpr char kCarried[] = "a\"b\\c\n\r\t\x7fz\xc3\xa9\xf0\x9f\x98\x80";
  out.clear();
  AppendJsonString(out, kCarried);
  Result<Document> r = Parse("[" + out + "]");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r->root().begin()).text(), kCarried);
}

TEST(FhirJson, IsJsonNumber) {
  for (const char* yes : {"0", "-0", "1.00", "1E-22", "-1.5e+10", "123456789012345678901234567890",
                          "1e-400", "1.7976931348623157e308"}) {
    EXPECT_TRUE(IsJsonNumber(yes)) << yes;
  }
  for (const char* no : {"", "-", "01", "+1", ".5", "1.", "1e", "1e+", "0x1", "NaN", "Infinity",
                         " 1", "1 ", "1e400", "-1e400", "1,5", "abc"}) {
    EXPECT_FALSE(IsJsonNumber(no)) << no;
  }
}

TEST(FhirJson, SafeKey) {
  EXPECT_EQ(SafeKey("valueQuantity"), "valueQuantity");
  EXPECT_EQ(SafeKey("a\"b\\c\n\xff"), "a\\x22b\\x5cc\\x0a\\xff");
  EXPECT_EQ(SafeKey(std::string(70, 'k')), std::string(64, 'k') + "...");
}

}  // namespace
}  // namespace medvault::interop::fhir_json
