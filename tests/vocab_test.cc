// The clinical vocabulary: its tables are consistent (the same rules
// src/vocab/vocab.cc asserts at compile time, here with the failing row
// named), and its look-ups answer as documented, sad paths included.
#include "vocab/vocab.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

namespace medvault::vocab {
namespace {

bool IsPathChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

// Well-formed components of [a-z0-9-] under a known top-level segment.
void ExpectKnownPath(std::string_view path) {
  SCOPED_TRACE(std::string(path));
  ASSERT_FALSE(path.empty());
  EXPECT_NE(FindTopLevel(path.substr(0, path.find('/'))), nullptr);
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    const std::string_view comp =
        path.substr(start, slash == std::string_view::npos ? slash : slash - start);
    ASSERT_FALSE(comp.empty());
    EXPECT_NE(comp.front(), '-');
    EXPECT_NE(comp.back(), '-');
    for (char c : comp) {
      EXPECT_TRUE(IsPathChar(c)) << c;
    }
    if (slash == std::string_view::npos) {
      break;
    }
    start = slash + 1;
  }
}

TEST(VocabTest, TopLevelSegmentsHaveUniqueNamesAndValidFields) {
  std::set<std::string_view> names;
  for (const TopLevelSegment& s : kTopLevelSegments) {
    SCOPED_TRACE(std::string(s.name));
    EXPECT_TRUE(names.insert(s.name).second) << "duplicate top-level segment";
    EXPECT_EQ(s.name.find('/'), std::string_view::npos);
    ExpectKnownPath(s.name);
    EXPECT_TRUE(IsCategory(s.category));
    EXPECT_GE(s.default_sensitivity, 0);
    EXPECT_LE(s.default_sensitivity, kMaxSensitivity);
    EXPECT_FALSE(s.description.empty());
  }
}

TEST(VocabTest, CategoriesAreDistinctAndEachUsed) {
  std::set<std::string_view> seen(kCategories.begin(), kCategories.end());
  EXPECT_EQ(seen.size(), kCategories.size());
  for (std::string_view c : kCategories) {
    bool used = false;
    for (const TopLevelSegment& s : kTopLevelSegments) {
      used = used || s.category == c;
    }
    EXPECT_TRUE(used) << c;
  }
  // In table order: the first top-level segment's category first, and the
  // clinical departments' one category once.
  EXPECT_EQ(kCategories.front(), "personal-information");
  EXPECT_EQ(std::count(kCategories.begin(), kCategories.end(), "clinical"), 1);
  const std::vector<std::string> names = CategoryNames();
  ASSERT_EQ(names.size(), kCategories.size());
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(names[i], kCategories[i]);
  }
  EXPECT_FALSE(IsCategory("psychiatry"));  // a department, not a category
  EXPECT_FALSE(IsCategory(""));
}

TEST(VocabTest, TopLevelForFallsBackForUnknownPaths) {
  EXPECT_EQ(TopLevelFor("psychiatry/notes/2026").category, "clinical");
  EXPECT_EQ(TopLevelFor("psychiatry/notes/2026").default_sensitivity, 4);
  EXPECT_EQ(TopLevelFor("physical-signs").name, "physical-signs");
  EXPECT_EQ(TopLevelFor("nowhere/x").name, kFallbackTopLevel);
  EXPECT_EQ(TopLevelFor("").name, kFallbackTopLevel);
  EXPECT_EQ(FindTopLevel("nowhere"), nullptr);
  EXPECT_EQ(FindTopLevel("physical-signs/blood-pressure"), nullptr);  // a name, not a path
}

// The one PathIsWithin (record and policy name it too).
TEST(VocabTest, PathIsWithinComparesWholeComponents) {
  EXPECT_TRUE(PathIsWithin("physical-signs/blood-pressure", "physical-signs"));
  EXPECT_TRUE(PathIsWithin("physical-signs", "physical-signs"));
  EXPECT_TRUE(PathIsWithin("psychiatry/notes/2026", "psychiatry/notes"));
  EXPECT_TRUE(PathIsWithin("anything/at/all", ""));
  EXPECT_TRUE(PathIsWithin("", ""));
  EXPECT_FALSE(PathIsWithin("", "a"));
  EXPECT_FALSE(PathIsWithin("a/bc", "a/b"));
  EXPECT_FALSE(PathIsWithin("a", "a/b"));
  EXPECT_FALSE(PathIsWithin("physical-signs-x", "physical-signs"));
  EXPECT_EQ(LastComponent("a/b/c"), "c");
  EXPECT_EQ(LastComponent("abc"), "abc");
}

TEST(VocabTest, KnownSegmentsLieUnderKnownTopLevels) {
  std::set<std::string_view> kinds;
  for (const EntrySegment& e : kEntrySegments) {
    EXPECT_TRUE(kinds.insert(e.entry_kind).second) << e.entry_kind;
    ExpectKnownPath(e.base);
  }
  ExpectKnownPath(kBodyMeasureVitalSignsBase);
  ExpectKnownPath(kIdentitySegmentBase);
  ExpectKnownPath(kSourceDocumentsBase);
}

TEST(VocabTest, LoincCheckDigits) {
  EXPECT_TRUE(IsWellFormedLoinc("8480-6"));
  EXPECT_TRUE(IsWellFormedLoinc("2339-0"));
  EXPECT_TRUE(IsWellFormedLoinc("85354-9"));
  EXPECT_FALSE(IsWellFormedLoinc("8480-5"));      // wrong check digit
  EXPECT_FALSE(IsWellFormedLoinc("8480"));        // no check digit
  EXPECT_FALSE(IsWellFormedLoinc("8480-66"));     // two
  EXPECT_FALSE(IsWellFormedLoinc("-6"));          // no number
  EXPECT_FALSE(IsWellFormedLoinc("84a0-6"));      // not a digit
  EXPECT_FALSE(IsWellFormedLoinc("12345678-0"));  // longer than LOINC numbers
  EXPECT_FALSE(IsWellFormedLoinc(""));
  for (std::string_view code : kBodyMeasureLoincCodes) {
    EXPECT_TRUE(IsWellFormedLoinc(code)) << code;
    EXPECT_TRUE(IsBodyMeasureLoinc(code));
  }
  EXPECT_FALSE(IsBodyMeasureLoinc("8480-6"));
}

TEST(VocabTest, MeasurementsAreConsistent) {
  std::set<std::string_view> leaves;
  for (const Measurement& m : kMeasurements) {
    SCOPED_TRACE(std::string(m.leaf));
    EXPECT_TRUE(leaves.insert(m.leaf).second) << "duplicate measurement";
    ExpectKnownPath(m.path);
    EXPECT_EQ(LastComponent(m.path), m.leaf);
    EXPECT_TRUE(IsCategory(m.category));
    EXPECT_EQ(TopLevelFor(m.path).category, m.category);
    EXPECT_TRUE(IsWellFormedLoinc(m.loinc)) << m.loinc;
    EXPECT_FALSE(m.display.empty());
    ASSERT_FALSE(m.fields.empty());
    ASSERT_FALSE(m.units.empty());
    std::set<std::string_view> members(kMeasurementCommonMembers.begin(),
                                       kMeasurementCommonMembers.end());
    for (const MeasurementField& f : m.fields) {
      EXPECT_TRUE(members.insert(f.name).second) << "field clashes: " << f.name;
      EXPECT_LT(f.min, f.max) << f.name;
      if (m.fields.size() > 1) {
        EXPECT_TRUE(IsWellFormedLoinc(f.loinc)) << f.name;
        EXPECT_FALSE(f.display.empty()) << f.name;
      } else {
        EXPECT_TRUE(f.loinc.empty()) << f.name;
      }
    }
    std::set<std::string_view> units;
    for (const MeasurementUnit& u : m.units) {
      EXPECT_TRUE(units.insert(u.unit).second) << u.unit;
      EXPECT_FALSE(u.unit.empty());
      EXPECT_FALSE(u.ucum.empty()) << u.unit;
      if (!u.loinc.empty()) {
        EXPECT_TRUE(IsWellFormedLoinc(u.loinc)) << u.unit;
        EXPECT_FALSE(u.display.empty()) << u.unit;
      }
      EXPECT_EQ(FindUnit(m, u.unit), &u);
    }
    EXPECT_EQ(FindUnit(m, "furlong"), nullptr);
    EXPECT_EQ(MeasurementForPath(m.path), &m);
  }
}

TEST(VocabTest, MeasurementForPathGoesByTheLastComponent) {
  const Measurement* bp = MeasurementForPath("physical-signs/blood-pressure");
  ASSERT_NE(bp, nullptr);
  EXPECT_EQ(bp->loinc, "85354-9");
  ASSERT_EQ(bp->fields.size(), 2u);
  EXPECT_EQ(bp->fields[0].loinc, "8480-6");
  EXPECT_EQ(FindUnit(*bp, "mmHg")->ucum, "mm[Hg]");
  EXPECT_EQ(MeasurementForPath("internal-medicine/cardiology/weight"),
            MeasurementForPath("body-measures/weight"));
  EXPECT_EQ(MeasurementForPath("physical-signs"), nullptr);
  EXPECT_EQ(MeasurementForPath("physical-signs/blood-pressure/2026"), nullptr);
  EXPECT_EQ(MeasurementForPath(""), nullptr);
  // Glucose in moles has its own code.
  const Measurement* glucose = MeasurementForPath("physical-signs/blood-glucose");
  ASSERT_NE(glucose, nullptr);
  EXPECT_EQ(FindUnit(*glucose, "mmol/L")->loinc, "15074-8");
  EXPECT_TRUE(FindUnit(*glucose, "mg/dL")->loinc.empty());
}

TEST(VocabTest, ContentKindsRoundTripAndFixMediaTypes) {
  std::set<std::string_view> names;
  for (const ContentKindInfo& k : kContentKinds) {
    EXPECT_TRUE(names.insert(k.name).second) << k.name;
    EXPECT_EQ(ContentKindName(k.kind), k.name);
    EXPECT_EQ(ParseContentKind(k.name), k.kind);
    EXPECT_FALSE(k.description.empty());
  }
  // The stored values.
  EXPECT_EQ(static_cast<int>(ContentKind::kJson), 1);
  EXPECT_EQ(static_cast<int>(ContentKind::kText), 2);
  EXPECT_EQ(static_cast<int>(ContentKind::kBinary), 3);
  EXPECT_EQ(FixedMediaType(ContentKind::kJson), "application/json");
  EXPECT_EQ(FixedMediaType(ContentKind::kText), "text/plain; charset=utf-8");
  EXPECT_EQ(FixedMediaType(ContentKind::kBinary), "");
  EXPECT_EQ(ContentKindName(static_cast<ContentKind>(0)), "");
  EXPECT_EQ(ContentKindName(static_cast<ContentKind>(4)), "");
  EXPECT_EQ(FixedMediaType(static_cast<ContentKind>(9)), "");
  EXPECT_FALSE(ParseContentKind("JSON").has_value());
  EXPECT_FALSE(ParseContentKind("").has_value());
}

TEST(VocabTest, SemanticFieldsAndInsuranceSystems) {
  std::set<std::string_view> names;
  for (const SemanticField& f : kSemanticFields) {
    EXPECT_TRUE(names.insert(f.name).second) << f.name;
    EXPECT_TRUE(IsSemanticField(f.name));
    EXPECT_FALSE(f.matches.empty());
  }
  EXPECT_TRUE(IsSemanticField("insurance_number"));
  EXPECT_FALSE(IsSemanticField("insurance-number"));
  EXPECT_FALSE(IsSemanticField(""));
  std::set<std::string_view> systems;
  for (std::string_view s : kInsuranceIdentifierSystems) {
    EXPECT_TRUE(systems.insert(s).second) << s;
    EXPECT_TRUE(s.starts_with("urn:oid:") || s.starts_with("http://")) << s;
    EXPECT_TRUE(IsInsuranceIdentifierSystem(s));
  }
  EXPECT_FALSE(IsInsuranceIdentifierSystem("urn:oid:1.2.3"));
}

}  // namespace
}  // namespace medvault::vocab
