// The record engine: path patterns, selections, field masking, split/join.
#include "engine/engine.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "interop/interop.h"
#include "interop/mapping.h"
#include "vocab/vocab.h"

namespace medvault::engine {
namespace {

using nlohmann::json;

constexpr char kKey[] = "d0123456789abcdef";

// ---------------------------------------------------------------------------
// Patterns

bool PatternMatches(const std::string& pattern, const std::string& path) {
  auto p = PathPattern::Parse(pattern);
  EXPECT_TRUE(p.ok()) << pattern << ": " << p.status().ToString();
  return p.ok() && p->Matches(path);
}

TEST(PathPatternTest, ExactPathMatchesOnlyItself) {
  EXPECT_TRUE(PatternMatches("physical-signs/blood-pressure", "physical-signs/blood-pressure"));
  EXPECT_FALSE(PatternMatches("physical-signs/blood-pressure", "physical-signs"));
  EXPECT_FALSE(PatternMatches("physical-signs/blood-pressure", "physical-signs/blood-pressure/x"));
  EXPECT_FALSE(PatternMatches("physical-signs/blood-pressure", "physical-signs/blood-pressure2"));
  EXPECT_FALSE(PatternMatches("physical-signs", "physical-signs/blood-pressure"));
}

TEST(PathPatternTest, DoubleStarIsTheSubtreeIncludingItself) {
  const std::string p = "physical-signs/**";
  EXPECT_TRUE(PatternMatches(p, "physical-signs"));
  EXPECT_TRUE(PatternMatches(p, "physical-signs/blood-pressure"));
  EXPECT_TRUE(PatternMatches(p, "physical-signs/vital-signs/d0123456789abcdef"));
  EXPECT_FALSE(PatternMatches(p, "physical-signsx"));
  EXPECT_FALSE(PatternMatches(p, "physical-signs-x/a"));
  EXPECT_FALSE(PatternMatches(p, "body-measures/vital-signs/d0123456789abcdef"));
  EXPECT_FALSE(PatternMatches(p, "physical-signs//x"));
  EXPECT_FALSE(PatternMatches(p, "physical-signs/x/"));
  EXPECT_FALSE(PatternMatches(p, ""));
}

TEST(PathPatternTest, StarMatchesExactlyOneComponent) {
  const std::string p = "*/allergies/*";
  EXPECT_TRUE(PatternMatches(p, "health-status/allergies/d0123456789abcdef"));
  EXPECT_TRUE(PatternMatches(p, "other/allergies/x"));
  EXPECT_FALSE(PatternMatches(p, "health-status/allergies"));
  EXPECT_FALSE(PatternMatches(p, "health-status/allergies/d0123456789abcdef/x"));
  EXPECT_FALSE(PatternMatches(p, "a/b/allergies/c"));
  EXPECT_FALSE(PatternMatches(p, "health-status/problems/d0123456789abcdef"));
  EXPECT_FALSE(PatternMatches(p, "health-status//d0123456789abcdef"));

  const std::string q = "health-status/*/d0123456789abcdef";
  EXPECT_TRUE(PatternMatches(q, "health-status/allergies/d0123456789abcdef"));
  EXPECT_TRUE(PatternMatches(q, "health-status/problems/d0123456789abcdef"));
  EXPECT_FALSE(PatternMatches(q, "health-status/problems/d0123456789abcdee"));
  EXPECT_FALSE(PatternMatches(q, "physical-signs/vital-signs/d0123456789abcdef"));
}

TEST(PathPatternTest, WildcardCombinations) {
  EXPECT_TRUE(PatternMatches("**", "other"));
  EXPECT_TRUE(PatternMatches("**", "internal-medicine/cardiology/ecg"));
  EXPECT_FALSE(PatternMatches("**", ""));
  EXPECT_TRUE(PatternMatches("*", "other"));
  EXPECT_FALSE(PatternMatches("*", "other/x"));
  EXPECT_TRUE(PatternMatches("*/**", "other"));
  EXPECT_TRUE(PatternMatches("*/vital-signs/**", "body-measures/vital-signs/d1"));
  EXPECT_FALSE(PatternMatches("*/vital-signs/**", "body-measures/weight"));
  auto p = PathPattern::Parse("health-status/*/d0123456789abcdef");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->text(), "health-status/*/d0123456789abcdef");
}

TEST(PathPatternTest, DepthLimitCountsComponentsBeforeDoubleStar) {
  EXPECT_TRUE(PathPattern::Parse("other/a/b/c/d/e/f/g").ok());
  EXPECT_TRUE(PathPattern::Parse("other/a/b/c/d/e/f/g/**").ok());
  EXPECT_TRUE(PathPattern::Parse("other/" + std::string(64, 'a')).ok());
}

TEST(PathPatternTest, RefusesMalformedPatternsWithReasons) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty"},
      {"/physical-signs", "empty component"},
      {"physical-signs/", "empty component"},
      {"physical-signs//x", "empty component"},
      {"physical-signs/**/x", "'**' may only be the last"},
      {"**/x", "'**' may only be the last"},
      {"physical-signs/**/**", "'**' may only be the last"},
      {"physical-signs/blood*", "whole components"},
      {"physical-signs/***", "whole components"},
      {"physical-signs/*x", "whole components"},
      {"Physical-Signs", "a-z, 0-9"},
      {"physical-signs/blood pressure", "a-z, 0-9"},
      {"physical-signs/../x", "a-z, 0-9"},
      {"physical-signs/a.b", "a-z, 0-9"},
      {"physical-signs/a\\b", "a-z, 0-9"},
      {"physical-signs/%2e", "a-z, 0-9"},
      {"physical-signs/?", "a-z, 0-9"},
      {std::string("physical-signs/a\0b", 18), "a-z, 0-9"},
      {"physical-signs/\xc3\xa9", "a-z, 0-9"},
      {"physical-signs/-x", "start or end with '-'"},
      {"physical-signs/x-", "start or end with '-'"},
      {"physical-signs/" + std::string(65, 'a'), "longer than 64"},
      {"other/a/b/c/d/e/f/g/h", "deeper than 8"},
      {"other/a/b/c/d/e/f/g/h/**", "deeper than 8"},
      {"other/" + std::string(251, 'a'), "longer than 256"},
      {"nope/**", "known top-level segment"},
      {"physical-sign/**", "known top-level segment"},
  };
  for (const auto& [pattern, reason] : cases) {
    auto p = PathPattern::Parse(pattern);
    ASSERT_FALSE(p.ok()) << pattern;
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument) << pattern;
    // Messages may be returned as JSON: never invalid UTF-8 or control bytes.
    EXPECT_TRUE(IsValidUtf8(p.status().message())) << pattern;
    EXPECT_EQ(p.status().message().find('\0'), std::string::npos) << pattern;
    EXPECT_NE(p.status().message().find(reason), std::string::npos)
        << pattern << " -> " << p.status().message();
  }
}

// ---------------------------------------------------------------------------
// Selections

const std::vector<std::string> kPaths = {
    "personal-information/identity/d0123456789abcdef", "health-status/allergies/d0123456789abcdef",
    "health-status/problems/d0123456789abcdef",        "health-status/problems/d1111111111111111",
    "physical-signs/vital-signs/d0123456789abcdef",    "physical-signs/blood-pressure",
    "body-measures/vital-signs/d0123456789abcdef",     "source-documents/d0123456789abcdef/header",
};

TEST(SelectionTest, IncludeMinusExcludeKeepsOrder) {
  auto s = Selection::Create({"**"}, {"personal-information/**",
                                      "health-status/*/d1111111111111111", "source-documents/**"});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(
      s->Select(kPaths),
      (std::vector<std::string>{
          "health-status/allergies/d0123456789abcdef", "health-status/problems/d0123456789abcdef",
          "physical-signs/vital-signs/d0123456789abcdef", "physical-signs/blood-pressure",
          "body-measures/vital-signs/d0123456789abcdef"}));
  EXPECT_FALSE(s->Matches("personal-information"));
  EXPECT_TRUE(s->Matches("health-status"));
}

TEST(SelectionTest, SeveralIncludesAreAUnion) {
  auto s = Selection::Create({"*/allergies/*", "physical-signs/**"});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->Select(kPaths), (std::vector<std::string>{
                                   "health-status/allergies/d0123456789abcdef",
                                   "physical-signs/vital-signs/d0123456789abcdef",
                                   "physical-signs/blood-pressure",
                               }));
}

TEST(SelectionTest, ExcludeEverythingSelectsNothing) {
  auto s = Selection::Create({"physical-signs/**"}, {"**"});
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->Select(kPaths).empty());
}

TEST(SelectionTest, SelectsSegmentInfosInOrder) {
  std::vector<record::SegmentVersionInfo> infos;
  for (const std::string& p : kPaths) {
    record::SegmentVersionInfo i;
    i.patient_id = "p1";
    i.path = p;
    i.version = infos.size() + 1;
    infos.push_back(i);
  }
  auto s = Selection::Create({"health-status/**"}, {"health-status/problems/d1111111111111111"});
  ASSERT_TRUE(s.ok());
  std::vector<record::SegmentVersionInfo> chosen = s->Select(infos);
  ASSERT_EQ(chosen.size(), 2u);
  EXPECT_EQ(chosen[0].path, "health-status/allergies/d0123456789abcdef");
  EXPECT_EQ(chosen[0].version, 2u);
  EXPECT_EQ(chosen[1].path, "health-status/problems/d0123456789abcdef");
  EXPECT_EQ(chosen[1].version, 3u);
}

TEST(SelectionTest, DefaultSelectsNothing) {
  Selection s;
  EXPECT_TRUE(s.empty());
  EXPECT_FALSE(s.Matches("other"));
  EXPECT_TRUE(s.Select(kPaths).empty());
}

TEST(SelectionTest, RefusesEmptyIncludesBadPatternsAndTooMany) {
  auto empty = Selection::Create({});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
  auto only_exclude = Selection::Create({}, {"**"});
  EXPECT_EQ(only_exclude.status().code(), StatusCode::kInvalidArgument);

  auto bad_include = Selection::Create({"physical-signs/**", "x/../y"});
  ASSERT_FALSE(bad_include.ok());
  EXPECT_EQ(bad_include.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_include.status().message().rfind("include: ", 0), 0u)
      << bad_include.status().message();
  EXPECT_NE(bad_include.status().message().find("x/../y"), std::string::npos);

  auto bad_exclude = Selection::Create({"**"}, {"**/x"});
  ASSERT_FALSE(bad_exclude.ok());
  EXPECT_EQ(bad_exclude.status().message().rfind("exclude: ", 0), 0u);

  std::vector<std::string> many(kMaxPatternsPerSelection + 1, "other/**");
  EXPECT_EQ(Selection::Create(many).status().code(), StatusCode::kInvalidArgument);
  many.pop_back();
  EXPECT_TRUE(Selection::Create(many).ok());
}

// ---------------------------------------------------------------------------
// Masking

FieldMasker Masker(const std::vector<FieldRule>& rules) {
  auto m = FieldMasker::Create(rules);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? std::move(*m) : FieldMasker();
}

// The API's mask obligation before this module (src/api/http_server.cc):
// the reference the plain-key rules must reproduce.
void ApiMaskJson(json& j, const std::vector<std::string>& fields) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      bool masked = false;
      for (const std::string& f : fields) {
        masked = masked || it.key() == f;
      }
      if (masked) {
        it.value() = "[masked]";
      } else {
        ApiMaskJson(it.value(), fields);
      }
    }
  } else if (j.is_array()) {
    for (json& e : j) {
      ApiMaskJson(e, fields);
    }
  }
}

json PatientBody() {
  return json::parse(R"({
    "format": "medvault-patient/1", "document": "d0123456789abcdef",
    "patient": {
      "id": "Patient/p1",
      "names": [{"given": ["Ada", "Marie"], "family": "Lovelace", "use": "official"},
                {"family": "Byron", "use": "maiden"}],
      "birth_date": "1815-12-10", "gender": "female",
      "identifiers": [
        {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "123-45-6789", "type": "SS"},
        {"system": "http://example.org/insurer", "value": "INS-77", "type": "SB"},
        {"system": "http://fhir.de/sid/gkv/kvid-10", "value": "A123456789"},
        {"system": "urn:oid:1.2.3", "value": "MRN-1", "type": "MR"}],
      "addresses": [{"lines": ["1 Main St"], "city": "London", "use": "home"}],
      "telecoms": [{"system": "phone", "value": "555-0100", "use": "home"}],
      "language": "en-GB"
    }})");
}

TEST(FieldMaskerTest, PlainKeysGiveTheApiResult) {
  const std::vector<std::string> keys = {"given_name", "family_name", "identifier",
                                         "insurance_number", "birth_date"};
  const std::vector<json> docs = {
      json::parse(R"({"given_name": "Ada", "family_name": "L", "identifier": "X1",
                      "sex": "female", "birth_date": "1815-12-10"})"),
      json::parse(R"({"a": [{"insurance_number": {"deep": "x"}}, 1, "s", [{"identifier": 5}]],
                      "b": {"c": {"birth_date": null, "keep": "k"}}, "given": "not a key hit"})"),
      json::parse(R"({"systolic": 120, "diastolic": 80, "unit": "mm[Hg]"})"),
      json::object(),
  };
  auto masker = FieldMasker::ForKeys(keys);
  ASSERT_TRUE(masker.ok());
  for (const json& doc : docs) {
    json expected = doc;
    ApiMaskJson(expected, keys);
    json actual = doc;
    auto count = masker->Apply(actual);
    ASSERT_TRUE(count.ok());
    EXPECT_EQ(actual, expected) << doc.dump();
  }
  json first = docs[0];
  EXPECT_EQ(*masker->Apply(first), 4u);
  json second = docs[1];
  EXPECT_EQ(*masker->Apply(second), 3u);
}

TEST(FieldMaskerTest, PlainKeysCanHide) {
  auto masker = FieldMasker::ForKeys({"note", "secret"}, FieldAction::kHide);
  ASSERT_TRUE(masker.ok());
  json j = json::parse(R"({"note": "x", "a": [{"secret": 1, "keep": 2}], "b": {"note": {}}})");
  auto count = masker->Apply(j);
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 3u);
  EXPECT_EQ(j, json::parse(R"({"a": [{"keep": 2}], "b": {}})"));
}

TEST(FieldMaskerTest, MasksNamesInThePatientJson) {
  json j = PatientBody();
  auto count = Masker({{"given_name"}, {"family_name"}}).Apply(j);
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 3u);  // given of names[0]; family of names[0] and names[1]
  const json& names = j["patient"]["names"];
  EXPECT_EQ(names[0]["given"], json::array({"[masked]", "[masked]"}));
  EXPECT_EQ(names[0]["family"], "[masked]");
  EXPECT_EQ(names[0]["use"], "official");
  EXPECT_EQ(names[1]["family"], "[masked]");
  EXPECT_FALSE(names[1].contains("given"));
  // Nothing else changed.
  json expected = PatientBody();
  expected["patient"]["names"] = names;
  EXPECT_EQ(j, expected);
  for (const char* hidden : {"Ada", "Marie", "Lovelace", "Byron"}) {
    EXPECT_EQ(j.dump().find(hidden), std::string::npos) << hidden;
  }
}

TEST(FieldMaskerTest, HidesNames) {
  json j = PatientBody();
  auto count =
      Masker({{"given_name", FieldAction::kHide}, {"family_name", FieldAction::kHide}}).Apply(j);
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 3u);
  EXPECT_EQ(j["patient"]["names"], json::parse(R"([{"use": "official"}, {"use": "maiden"}])"));
}

TEST(FieldMaskerTest, InsuranceNumberHitsSbTypesKnownSystemsAndTheKey) {
  json j = PatientBody();
  j["coverage"] = {{"insurer", "ACME"}, {"insurance_number", "INS-99"}};
  auto count = Masker({{"insurance_number"}}).Apply(j);
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 3u);
  const json& ids = j["patient"]["identifiers"];
  EXPECT_EQ(ids[0]["value"], "123-45-6789");  // SSN: an identifier, not an insurance number
  EXPECT_EQ(ids[1]["value"], "[masked]");     // type SB
  EXPECT_EQ(ids[1]["system"], "http://example.org/insurer");
  EXPECT_EQ(ids[2]["value"], "[masked]");  // KVNR system
  EXPECT_EQ(ids[3]["value"], "MRN-1");
  EXPECT_EQ(j["coverage"]["insurance_number"], "[masked]");
  EXPECT_EQ(j["coverage"]["insurer"], "ACME");
}

TEST(FieldMaskerTest, HidingAnInsuranceNumberRemovesTheWholeIdentifier) {
  json j = PatientBody();
  auto count = Masker({{"insurance_number", FieldAction::kHide}}).Apply(j);
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 2u);
  const json& ids = j["patient"]["identifiers"];
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0]["type"], "SS");
  EXPECT_EQ(ids[1]["type"], "MR");
  EXPECT_EQ(j.dump().find("insurer"), std::string::npos);
  EXPECT_EQ(j.dump().find("kvid"), std::string::npos);
}

TEST(FieldMaskerTest, IdentifierMasksEveryValueAndHideWins) {
  json j = PatientBody();
  j["patient"]["identifier"] = "MRN-2";
  auto count = Masker({{"identifier"}, {"insurance_number", FieldAction::kHide}}).Apply(j);
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 5u);  // 4 identifiers (2 hidden, 2 masked) + the key
  const json& ids = j["patient"]["identifiers"];
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], json::parse(R"({"system": "http://hl7.org/fhir/sid/us-ssn",
                                    "value": "[masked]", "type": "SS"})"));
  EXPECT_EQ(ids[1]["value"], "[masked]");
  EXPECT_EQ(j["patient"]["identifier"], "[masked]");
}

TEST(FieldMaskerTest, BirthDateAddressAndTelecom) {
  json j = PatientBody();
  auto count = Masker({{"birth_date"}, {"address"}, {"telecom", FieldAction::kHide}}).Apply(j);
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 3u);
  EXPECT_EQ(j["patient"]["birth_date"], "[masked]");
  EXPECT_EQ(j["patient"]["addresses"],
            json::parse(R"([{"lines": ["[masked]"], "city": "[masked]", "use": "[masked]"}])"));
  EXPECT_EQ(j["patient"]["telecoms"], json::array());
  for (const char* hidden : {"1815-12-10", "Main St", "London", "555-0100"}) {
    EXPECT_EQ(j.dump().find(hidden), std::string::npos) << hidden;
  }
  EXPECT_EQ(j["patient"]["gender"], "female");
}

TEST(FieldMaskerTest, MaskedTelecomKeepsItsSystem) {
  json j = PatientBody();
  ASSERT_TRUE(Masker({{"telecom"}}).Apply(j).ok());
  EXPECT_EQ(j["patient"]["telecoms"],
            json::parse(R"([{"system": "phone", "value": "[masked]", "use": "home"}])"));
}

TEST(FieldMaskerTest, MaskedPatientStillParsesAsAPatient) {
  interop::PatientHeader p;
  p.names.push_back({{"Ada", "Marie"}, "Lovelace", "official"});
  p.birth_date = "1815-12-10";
  p.identifiers.push_back({"http://hl7.org/fhir/sid/us-ssn", "123-45-6789", "SS"});
  p.identifiers.push_back({"urn:oid:1.2.250.1.213.1.4.8", "1851210123456", ""});
  p.addresses.push_back({{"1 Main St"}, "London", "", "", "GB", "home"});
  p.telecoms.push_back({"phone", "555-0100", "home"});
  json j = interop::ToJson(p);
  auto count = Masker({{"given_name"},
                       {"family_name"},
                       {"birth_date"},
                       {"identifier"},
                       {"address"},
                       {"telecom"}})
                   .Apply(j);
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 7u);
  auto back = interop::PatientFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->names[0].given, (std::vector<std::string>{"[masked]", "[masked]"}));
  EXPECT_EQ(back->identifiers[1].system, "urn:oid:1.2.250.1.213.1.4.8");
  EXPECT_EQ(back->identifiers[1].value, "[masked]");
  for (const char* hidden :
       {"Ada", "Lovelace", "1815", "123-45-6789", "1851210123456", "London", "555-0100"}) {
    EXPECT_EQ(j.dump().find(hidden), std::string::npos) << hidden;
  }
}

TEST(FieldMaskerTest, EmptyMaskerChangesNothing) {
  json j = PatientBody();
  auto count = FieldMasker().Apply(j);
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 0u);
  EXPECT_EQ(j, PatientBody());
  auto empty = FieldMasker::Create({});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(FieldMaskerTest, UnknownFieldListsTheKnownOnes) {
  auto m = FieldMasker::Create({{"given_name"}, {"ssn"}});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("\"ssn\""), std::string::npos);
  for (const vocab::SemanticField& known : vocab::kSemanticFields) {
    EXPECT_NE(m.status().message().find(known.name), std::string::npos) << known.name;
    // ...and each of them is accepted as a semantic rule.
    EXPECT_TRUE(FieldMasker::Create({{std::string(known.name)}}).ok()) << known.name;
  }
  EXPECT_EQ(vocab::kSemanticFields.size(), 7u);
  // Names that are not printable ASCII are not echoed.
  auto odd = FieldMasker::Create({{std::string("x\xff\n", 3)}});
  ASSERT_FALSE(odd.ok());
  EXPECT_TRUE(IsValidUtf8(odd.status().message()));
  EXPECT_EQ(odd.status().message().find('\n'), std::string::npos);
  // As a plain key it is fine.
  EXPECT_TRUE(FieldMasker::Create({{"ssn", FieldAction::kMask, true}}).ok());
}

TEST(FieldMaskerTest, RefusesMalformedKeysAndConflicts) {
  for (const std::string& key : {std::string(), std::string("a b"), std::string("a/b"),
                                 std::string(65, 'k'), std::string("caf\xc3\xa9")}) {
    auto m = FieldMasker::ForKeys({key});
    ASSERT_FALSE(m.ok()) << key;
    EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(FieldMasker::ForKeys({std::string(64, 'k'), "a.b-c_D9"}).ok());
  auto conflict =
      FieldMasker::Create({{"birth_date", FieldAction::kMask}, {"birth_date", FieldAction::kHide}});
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(conflict.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(conflict.status().message().find("both"), std::string::npos);
  // Identical duplicates merge: one hit, counted once.
  auto dup = FieldMasker::Create({{"birth_date"}, {"birth_date"}});
  ASSERT_TRUE(dup.ok());
  json j = PatientBody();
  EXPECT_EQ(*dup->Apply(j), 1u);
}

TEST(FieldMaskerTest, RefusesNonObjectsAndTooDeepJsonUnchanged) {
  FieldMasker m = Masker({{"given_name"}});
  for (json j :
       {json::array({json::object({{"given_name", "x"}})}), json("s"), json(nullptr), json(1)}) {
    const json before = j;
    auto count = m.Apply(j);
    ASSERT_FALSE(count.ok()) << before.dump();
    EXPECT_EQ(count.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(j, before);
  }
  json deep = json::object({{"given_name", "x"}});
  for (size_t i = 0; i < kMaxJsonDepth; ++i) {
    deep = json::object({{"a", deep}, {"given_name", "x"}});
  }
  const json before = deep;
  auto count = m.Apply(deep);
  ASSERT_FALSE(count.ok());
  EXPECT_EQ(count.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(count.status().message().find("deeper"), std::string::npos);
  EXPECT_EQ(deep, before);
}

TEST(FieldMaskerTest, SegmentContentByKind) {
  FieldMasker m = Masker({{"insurance_number"}});
  Bytes text = ToBytes("insurance_number: 123");
  auto t = m.ApplyToContent(record::ContentKind::kText, text);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(t.status().message(), "text segments cannot be masked field by field");
  EXPECT_EQ(text, ToBytes("insurance_number: 123"));
  Bytes binary = {1, 2, 3};
  EXPECT_EQ(m.ApplyToContent(record::ContentKind::kBinary, binary).status().code(),
            StatusCode::kFailedPrecondition);
  // No rules: nothing to refuse.
  auto none = FieldMasker().ApplyToContent(record::ContentKind::kText, text);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0u);

  // JSON with no hit keeps its bytes; with hits it is re-serialised.
  Bytes untouched = ToBytes("{ \"a\" : 1 }");
  auto u = m.ApplyToContent(record::ContentKind::kJson, untouched);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(*u, 0u);
  EXPECT_EQ(untouched, ToBytes("{ \"a\" : 1 }"));
  Bytes hit = ToBytes(R"({"insurance_number": "INS-1", "b": [1]})");
  auto h = m.ApplyToContent(record::ContentKind::kJson, hit);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, 1u);
  EXPECT_EQ(AsString(hit), R"({"b":[1],"insurance_number":"[masked]"})");

  for (const char* bad : {"[1,2]", "\"s\"", "{", "", "{\"a\":1} x"}) {
    Bytes b = ToBytes(bad);
    auto r = m.ApplyToContent(record::ContentKind::kJson, b);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(b, ToBytes(bad));
  }
  Bytes deep = ToBytes(std::string(kMaxJsonDepth + 1, '[') + std::string(kMaxJsonDepth + 1, ']'));
  auto d = m.ApplyToContent(record::ContentKind::kJson, deep);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("deeper"), std::string::npos);
}

// ---------------------------------------------------------------------------
// Split and join

interop::Coding Loinc(const std::string& code, const std::string& display) {
  return {"http://loinc.org", code, display};
}

interop::ClinicalDocument SampleDocument() {
  interop::ClinicalDocument doc;
  doc.source_format = interop::Format::kFhir;
  doc.header.id = "urn:uuid:5b1f0c2e-sample";
  doc.header.title = "Continuity of Care Frobnitz";
  doc.header.type = Loinc("34133-9", "Summary of episode note");
  doc.header.time = "2026-03-01T10:00:00Z";
  doc.has_patient = true;
  doc.patient.id = "Patient/p-4711";
  doc.patient.names.push_back({{"Zebulon"}, "Quixotefield", "official"});
  doc.patient.birth_date = "1970-04-02";
  doc.patient.gender = "male";
  doc.patient.identifiers.push_back({"http://hl7.org/fhir/sid/us-ssn", "987-65-4329", "SS"});
  doc.patient.identifiers.push_back({"http://example.org/insurer", "INSURANCE-7731-QX", "SB"});

  interop::Entry allergy;
  allergy.kind = interop::EntryKind::kAllergy;
  allergy.id = "AllergyIntolerance/a1";
  allergy.code = {"http://snomed.info/sct", "91935009", "Peanut-Xyzzy allergy"};
  allergy.status = "active";
  doc.entries.push_back(allergy);

  interop::Entry problem;
  problem.kind = interop::EntryKind::kProblem;
  problem.id = "Condition/c1";
  problem.code = {"http://snomed.info/sct", "44054006", "Quuxitis mellitus"};
  problem.status = "active";
  doc.entries.push_back(problem);

  interop::Entry bp;
  bp.kind = interop::EntryKind::kVitalSign;
  bp.id = "Observation/bp1";
  bp.category = "vital-signs";
  bp.status = "final";
  bp.start = "2026-03-01T09:30:00Z";
  bp.code = Loinc("85354-9", "Blood pressure panel");
  bp.components.push_back({Loinc("8480-6", "Systolic blood pressure"),
                           interop::Quantity{"137", "mm[Hg]"}, std::nullopt, ""});
  bp.components.push_back({Loinc("8462-4", "Diastolic blood pressure"),
                           interop::Quantity{"86", "mm[Hg]"}, std::nullopt, ""});
  doc.entries.push_back(bp);

  interop::Entry weight;
  weight.kind = interop::EntryKind::kVitalSign;
  weight.id = "Observation/w1";
  weight.category = "vital-signs";
  weight.status = "final";
  weight.code = Loinc("29463-7", "Body weight");
  weight.quantity = interop::Quantity{"83.7", "kg"};
  doc.entries.push_back(weight);
  return doc;
}

Selection Select(const std::vector<std::string>& include,
                 const std::vector<std::string>& exclude = {}) {
  auto s = Selection::Create(include, exclude);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : Selection();
}

TEST(SplitJoinTest, SelectAllJoinsToTheSameDocument) {
  const interop::ClinicalDocument doc = SampleDocument();
  auto parts = SplitForSharing(doc, Select({"**"}), FieldMasker());
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  EXPECT_EQ(parts->size(),
            interop::SplitIntoSegments(doc, interop::DocumentKey(doc, ""), {}).size());
  for (const interop::SegmentPart& p : *parts) {
    EXPECT_TRUE(record::ValidateSegmentPath(p.path).ok()) << p.path;
    EXPECT_EQ(p.version, 0u);
  }
  auto joined = JoinParts(*parts);
  ASSERT_TRUE(joined.ok()) << joined.status().ToString();
  EXPECT_EQ(interop::CanonicalString(*joined), interop::CanonicalString(doc));
}

TEST(SplitJoinTest, JoinIgnoresPartOrder) {
  const interop::ClinicalDocument doc = SampleDocument();
  auto parts = SplitForSharing(doc, Select({"**"}), FieldMasker());
  ASSERT_TRUE(parts.ok());
  std::vector<interop::SegmentPart> reversed(parts->rbegin(), parts->rend());
  auto joined = JoinParts(reversed);
  ASSERT_TRUE(joined.ok());
  EXPECT_EQ(interop::CanonicalString(*joined), interop::CanonicalString(doc));
}

TEST(SplitJoinTest, SubsetJoinsToOnlyThoseEntries) {
  const interop::ClinicalDocument doc = SampleDocument();
  auto parts = SplitForSharing(doc, Select({"*/allergies/*"}), FieldMasker());
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].path, "health-status/allergies/" + interop::DocumentKey(doc, ""));
  auto joined = JoinParts(*parts);
  ASSERT_TRUE(joined.ok());
  ASSERT_EQ(joined->entries.size(), 1u);
  EXPECT_EQ(joined->entries[0], doc.entries[0]);
  EXPECT_FALSE(joined->has_patient);
  EXPECT_TRUE(joined->header.title.empty());
  const std::string canonical = interop::CanonicalString(*joined);
  for (const char* absent :
       {"Quuxitis", "8480-6", "83.7", "Zebulon", "987-65-4329", "INSURANCE-7731-QX", "Frobnitz"}) {
    EXPECT_EQ(canonical.find(absent), std::string::npos) << absent;
  }
}

TEST(SplitJoinTest, ExcludeAndMaskWhatIsShared) {
  const interop::ClinicalDocument doc = SampleDocument();
  auto masker = FieldMasker::Create(
      {{"given_name"}, {"family_name"}, {"insurance_number", FieldAction::kHide}, {"identifier"}});
  ASSERT_TRUE(masker.ok());
  auto parts =
      SplitForSharing(doc, Select({"**"}, {"health-status/**", "source-documents/**"}), *masker);
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  auto joined = JoinParts(*parts);
  ASSERT_TRUE(joined.ok()) << joined.status().ToString();
  ASSERT_TRUE(joined->has_patient);
  EXPECT_EQ(joined->patient.names[0].given, std::vector<std::string>{"[masked]"});
  EXPECT_EQ(joined->patient.names[0].family, "[masked]");
  ASSERT_EQ(joined->patient.identifiers.size(), 1u);  // the insurance number is gone
  EXPECT_EQ(joined->patient.identifiers[0].type, "SS");
  EXPECT_EQ(joined->patient.identifiers[0].value, "[masked]");
  EXPECT_EQ(joined->patient.birth_date, "1970-04-02");
  ASSERT_EQ(joined->entries.size(), 2u);  // blood pressure and weight
  for (const interop::Entry& e : joined->entries) {
    EXPECT_EQ(e.kind, interop::EntryKind::kVitalSign);
  }
  const std::string canonical = interop::CanonicalString(*joined);
  for (const char* absent : {"Zebulon", "Quixotefield", "987-65-4329", "INSURANCE-7731-QX",
                             "Peanut", "Quuxitis", "Frobnitz"}) {
    EXPECT_EQ(canonical.find(absent), std::string::npos) << absent;
  }
}

TEST(SplitJoinTest, GivenDocumentKeyAndOriginal) {
  const interop::ClinicalDocument doc = SampleDocument();
  SplitOptions options;
  options.document_key = kKey;
  options.original = {std::string(64, 'a'), "application/fhir+json"};
  auto parts = SplitForSharing(doc, Select({"source-documents/**"}), FieldMasker(), options);
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].path, std::string("source-documents/") + kKey + "/header");
  EXPECT_EQ((*parts)[0].body["sha256"], std::string(64, 'a'));
}

TEST(SplitJoinTest, RefusesBadKeysAndSelectionsMatchingNothing) {
  const interop::ClinicalDocument doc = SampleDocument();
  for (const char* key : {"d0123", "x0123456789abcdef", "d0123456789ABCDEF", "d0123456789abcdeg",
                          "d0123456789abcdef0", "d0123456789abcde/"}) {
    SplitOptions options;
    options.document_key = key;
    auto parts = SplitForSharing(doc, Select({"**"}), FieldMasker(), options);
    ASSERT_FALSE(parts.ok()) << key;
    EXPECT_EQ(parts.status().code(), StatusCode::kInvalidArgument) << key;
  }
  auto none = SplitForSharing(doc, Select({"psychiatry/**"}), FieldMasker());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  auto default_selection = SplitForSharing(doc, Selection(), FieldMasker());
  EXPECT_EQ(default_selection.status().code(), StatusCode::kNotFound);
}

TEST(SplitJoinTest, JoinRefusesMalformedParts) {
  interop::SegmentPart bad;
  bad.path = std::string("health-status/allergies/") + kKey;
  bad.body = {{"format", "medvault-entries/1"}, {"document", kKey}, {"entries", "nope"}};
  std::vector<interop::SegmentPart> parts = {bad};
  auto joined = JoinParts(parts);
  ASSERT_FALSE(joined.ok());
  EXPECT_EQ(joined.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(joined.status().message().find(bad.path), std::string::npos);
}

}  // namespace
}  // namespace medvault::engine
