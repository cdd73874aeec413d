#include "interop/mapping.h"

#include <gtest/gtest.h>

#include <set>

#include "record/record.h"
#include "vocab/vocab.h"

namespace medvault::interop {
namespace {

using nlohmann::json;

Entry MakeEntry(EntryKind kind, std::string id, std::string code = "1") {
  Entry e;
  e.kind = kind;
  e.id = std::move(id);
  e.code = {"http://loinc.org", std::move(code), "x"};
  return e;
}

ClinicalDocument Sample() {
  ClinicalDocument d;
  d.source_format = Format::kCcda;
  d.header.id = "2.16.840.1.1^doc-1";
  d.header.title = "Summary";
  d.has_patient = true;
  d.patient.names.push_back({{"Ada"}, "Lovelace", ""});
  d.patient.identifiers.push_back({"urn:oid:1.2", "999-00-1234", "SS"});
  for (size_t k = 0; k < kEntryKindCount; ++k) {
    d.entries.push_back(MakeEntry(static_cast<EntryKind>(k), "e" + std::to_string(k)));
  }
  d.entries.push_back(MakeEntry(EntryKind::kVitalSign, "w", "29463-7"));  // body weight
  d.kept_in_original_only = {"section 29762-2"};
  return d;
}

TEST(Mapping, EveryKindHasAValidSegmentBase) {
  std::set<std::string_view> bases;
  for (size_t k = 0; k < kEntryKindCount; ++k) {
    const Entry e = MakeEntry(static_cast<EntryKind>(k), "x");
    const std::string path = std::string(SegmentBaseFor(e)) + "/d0123456789abcdef";
    EXPECT_TRUE(record::ValidateSegmentPath(path).ok()) << path;
    bases.insert(SegmentBaseFor(e));
  }
  EXPECT_EQ(bases.size(), kEntryKindCount);  // one place per kind
  EXPECT_EQ(SegmentBaseFor(MakeEntry(EntryKind::kVitalSign, "h", "8302-2")),
            "body-measures/vital-signs");
  EXPECT_EQ(SegmentBaseFor(MakeEntry(EntryKind::kVitalSign, "bp", "85354-9")),
            "physical-signs/vital-signs");
  EXPECT_TRUE(record::ValidateSegmentPath(OriginalSegmentPath("d0123456789abcdef")).ok());
  EXPECT_TRUE(record::ValidateSegmentPath(HeaderSegmentPath("d0123456789abcdef")).ok());
}

// Statements go to the segment of their section, a LOINC section code only
// (a look-alike code in another system is not that section), and every such
// segment is document content that a join reads back.
TEST(Mapping, StatementsGoToTheirSectionsSegment) {
  for (const vocab::SectionSegment& row : vocab::kSectionSegments) {
    Entry e = MakeEntry(EntryKind::kStatement, "s");
    e.section = {"http://loinc.org", std::string(row.loinc), ""};
    EXPECT_EQ(SegmentBaseFor(e), row.base);
    const std::string path = std::string(row.base) + "/d0123456789abcdef";
    EXPECT_TRUE(record::ValidateSegmentPath(path).ok()) << path;
    EXPECT_TRUE(IsDocumentContentPath(path)) << path;
  }
  Entry mental = MakeEntry(EntryKind::kStatement, "m");
  mental.section = {"http://loinc.org", "10190-7", "Mental status"};
  EXPECT_EQ(SegmentBaseFor(mental), "psychiatry/mental-status");  // sensitivity 4
  mental.section.system = "urn:oid:1.2.3";
  EXPECT_EQ(SegmentBaseFor(mental), "other/sections");
  Entry unknown = MakeEntry(EntryKind::kStatement, "u");
  unknown.section = {"http://loinc.org", "99999-9", "Not a section here"};
  EXPECT_EQ(SegmentBaseFor(unknown), "other/sections");

  ClinicalDocument doc;
  doc.source_format = Format::kCcda;
  doc.entries = {mental, unknown};
  const auto parts = SplitIntoSegments(doc, "d0123456789abcdef", {"00", "application/xml"});
  Result<ClinicalDocument> joined = JoinSegments(parts);
  ASSERT_TRUE(joined.ok()) << joined.status().ToString();
  EXPECT_EQ(CanonicalString(*joined), CanonicalString(doc));
}

// What no row classifies is stored at least as sensitive as the original.
TEST(Mapping, UnclassifiedContentHasASensitivityFloor) {
  EXPECT_EQ(SensitivityFloorFor("other/sections/d0123456789abcdef"),
            vocab::kUnclassifiedSensitivity);
  EXPECT_EQ(SensitivityFloorFor("other/resources/d0123456789abcdef"),
            vocab::kUnclassifiedSensitivity);
  EXPECT_EQ(SensitivityFloorFor("other/sections-like/d0123456789abcdef"), 0);
  EXPECT_EQ(SensitivityFloorFor("health-status/functional-status/d0123456789abcdef"), 0);
  EXPECT_EQ(SensitivityFloorFor("psychiatry/mental-status/d0123456789abcdef"), 0);
}

TEST(Mapping, DocumentKeyIsStableAndSeparatesDocuments) {
  ClinicalDocument a = Sample();
  const std::string k = DocumentKey(a, "bytes");
  EXPECT_EQ(k.size(), 17u);
  EXPECT_EQ(k[0], 'd');
  EXPECT_EQ(DocumentKey(a, "other bytes"), k);  // the id decides when there is one
  ClinicalDocument b = a;
  b.header.id = "another";
  EXPECT_NE(DocumentKey(b, "bytes"), k);
  b.source_format = Format::kFhir;
  b.header.id = a.header.id;
  EXPECT_NE(DocumentKey(b, "bytes"), k);
  ClinicalDocument anonymous;
  EXPECT_NE(DocumentKey(anonymous, "one"), DocumentKey(anonymous, "two"));
}

TEST(Mapping, SplitThenJoinKeepsTheCanonicalForm) {
  const ClinicalDocument doc = Sample();
  const std::vector<SegmentPart> parts = SplitIntoSegments(doc, "d00000000000000aa", {"ab", "x"});
  // 13 kinds + body-measures + identity + header.
  ASSERT_EQ(parts.size(), kEntryKindCount + 3);
  for (const SegmentPart& p : parts) {
    EXPECT_TRUE(record::ValidateSegmentPath(p.path).ok()) << p.path;
    EXPECT_EQ(p.body["document"], "d00000000000000aa");
  }
  Result<ClinicalDocument> joined = JoinSegments(parts);
  ASSERT_TRUE(joined.ok()) << joined.status().ToString();
  EXPECT_EQ(CanonicalString(*joined), CanonicalString(doc));
  EXPECT_EQ(joined->source_format, Format::kCcda);
  EXPECT_EQ(joined->kept_in_original_only, doc.kept_in_original_only);
  // The header part records what the import kept.
  const SegmentPart& header = parts.back().path.rfind("source-documents/", 0) == 0
                                  ? parts.back()
                                  : *std::find_if(parts.begin(), parts.end(), [](const auto& p) {
                                      return p.path.find("/header") != std::string::npos;
                                    });
  EXPECT_EQ(header.body["sha256"], "ab");
  EXPECT_EQ(header.body["entry_count"], doc.entries.size());
}

TEST(Mapping, SelectedPartsJoinToOnlyTheirEntries) {
  const ClinicalDocument doc = Sample();
  std::vector<SegmentPart> parts = SplitIntoSegments(doc, "d00000000000000aa", {"", ""});
  std::vector<SegmentPart> allergies;
  for (const SegmentPart& p : parts) {
    if (p.path.rfind("health-status/allergies/", 0) == 0) {
      allergies.push_back(p);
    }
  }
  Result<ClinicalDocument> joined = JoinSegments(allergies);
  ASSERT_TRUE(joined.ok());
  ASSERT_EQ(joined->entries.size(), 1u);
  EXPECT_EQ(joined->entries[0].kind, EntryKind::kAllergy);
  EXPECT_FALSE(joined->has_patient);
  EXPECT_EQ(json(CanonicalJson(*joined)).dump().find("999-00-1234"), std::string::npos);
}

TEST(Mapping, LargeGroupsContinueInNumberedParts) {
  ClinicalDocument doc;
  for (int i = 0; i < 200; ++i) {
    Entry e = MakeEntry(EntryKind::kResult, "r" + std::to_string(i));
    e.text = std::string(100, 'x');
    doc.entries.push_back(e);
  }
  const auto parts = SplitIntoSegments(doc, "d00000000000000aa", {"", ""}, 4096);
  std::set<std::string> paths;
  size_t entries = 0;
  for (const SegmentPart& p : parts) {
    paths.insert(p.path);
    EXPECT_TRUE(record::ValidateSegmentPath(p.path).ok()) << p.path;
    if (p.body["format"] == kEntriesFormat) {
      EXPECT_LE(p.body.dump().size(), 4096u + 200);
      entries += p.body["entries"].size();
    }
  }
  EXPECT_EQ(paths.size(), parts.size());
  EXPECT_EQ(entries, 200u);
  EXPECT_TRUE(paths.count("laboratory/results/d00000000000000aa-p2"));
  Result<ClinicalDocument> joined = JoinSegments(parts);
  ASSERT_TRUE(joined.ok());
  EXPECT_EQ(CanonicalString(*joined), CanonicalString(doc));
}

TEST(Mapping, JoinRefusesPartsThatBreakTheirFormat) {
  const std::vector<json> bad = {
      json{{"format", kEntriesFormat}},
      json{{"format", kEntriesFormat}, {"entries", json::object()}},
      json{{"format", kEntriesFormat}, {"entries", {{{"kind", "bogus"}}}}},
      json{{"format", kPatientFormat}},
      json{{"format", kPatientFormat}, {"patient", {{"names", 5}}}},
      json{{"format", kDocumentFormat}},
      json{{"format", kDocumentFormat}, {"header", {{"title", 5}}}},
  };
  for (const json& body : bad) {
    std::vector<SegmentPart> parts = {SegmentPart{"health-status/problems/d1", 1, body}};
    Result<ClinicalDocument> r = JoinSegments(parts);
    ASSERT_FALSE(r.ok()) << body.dump();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("health-status/problems/d1"), std::string::npos);
  }
  // Bodies of no known format, and non-objects, are not part of documents.
  std::vector<SegmentPart> other = {SegmentPart{"life-record/diet", 1, json{{"meal", "soup"}}},
                                    SegmentPart{"other/x", 1, json::array()}};
  Result<ClinicalDocument> r = JoinSegments(other);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->entries.empty());
}

TEST(Mapping, MeasurementsBecomeVitalSigns) {
  const json bp = {
      {"systolic", 131}, {"diastolic", 84}, {"unit", "mmHg"}, {"time", "2026-11-20T07:30:00Z"}};
  std::optional<Entry> e = MeasurementToEntry("physical-signs/blood-pressure", 3, bp);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->kind, EntryKind::kVitalSign);
  EXPECT_EQ(e->code.code, "85354-9");
  ASSERT_EQ(e->components.size(), 2u);
  EXPECT_EQ(e->components[0].code.code, "8480-6");
  EXPECT_EQ(e->components[0].quantity->value, "131");
  EXPECT_EQ(e->components[1].quantity->value, "84");
  EXPECT_EQ(e->start, "2026-11-20T07:30:00Z");
  EXPECT_EQ(e->id, "measurement:physical-signs/blood-pressure@3");

  std::optional<Entry> g = MeasurementToEntry("physical-signs/blood-glucose", 1,
                                              json{{"value", 6.2}, {"unit", "mmol/L"}});
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->code.code, "15074-8");
  EXPECT_EQ(g->quantity->value, "6.2");
  std::optional<Entry> hr =
      MeasurementToEntry("physical-signs/heart-rate", 1, json{{"bpm", 61}, {"unit", "/min"}});
  ASSERT_TRUE(hr.has_value());
  EXPECT_EQ(hr->code.code, "8867-4");

  EXPECT_FALSE(MeasurementToEntry("physical-signs/blood-pressure", 1, json{{"systolic", 1}}));
  EXPECT_FALSE(MeasurementToEntry("life-record/diet", 1, json{{"value", 1}}));
  EXPECT_FALSE(MeasurementToEntry("physical-signs/heart-rate", 1, json::array()));
  // Joined with imported parts, readings are entries too.
  std::vector<SegmentPart> parts = {SegmentPart{"physical-signs/blood-pressure", 3, bp}};
  Result<ClinicalDocument> joined = JoinSegments(parts);
  ASSERT_TRUE(joined.ok());
  EXPECT_EQ(joined->entries.size(), 1u);
}

}  // namespace
}  // namespace medvault::interop

namespace medvault::interop {
namespace {

TEST(Mapping, DocumentContentPathsAreKnownFromThePathAlone) {
  for (std::string_view yes :
       {"health-status/problems/d0123456789abcdef", "laboratory/results/d0123456789abcdef-p2",
        "body-measures/vital-signs/d1", "personal-information/identity/d1",
        "source-documents/d1/header", "physical-signs/blood-pressure", "body-measures/weight",
        "internal-medicine/cardiology/heart-rate"}) {
    EXPECT_TRUE(IsDocumentContentPath(yes)) << yes;
  }
  for (std::string_view no :
       {"source-documents/d1/original", "personal-information", "personal-information/insurance",
        "life-record/diet", "health-status/problems", "patient-narrative/pain", "other"}) {
    EXPECT_FALSE(IsDocumentContentPath(no)) << no;
  }
  EXPECT_TRUE(IsMeasurementPath("physical-signs/blood-glucose"));
  EXPECT_FALSE(IsMeasurementPath("health-status/problems/d1"));
}

// Every measurement of the vocabulary becomes a vital sign coded from its
// row: a panel of coded components when it has several fields, else one
// quantity under the measurement's (or the unit's) LOINC code.
TEST(Mapping, EveryVocabularyMeasurementMapsToItsCodes) {
  for (const vocab::Measurement& m : vocab::kMeasurements) {
    SCOPED_TRACE(std::string(m.leaf));
    EXPECT_TRUE(IsMeasurementPath(m.path));
    EXPECT_TRUE(IsDocumentContentPath(m.path));
    for (const vocab::MeasurementUnit& u : m.units) {
      json body = {{"time", "2026-11-20T07:30:00Z"}, {"unit", std::string(u.unit)}};
      for (const vocab::MeasurementField& f : m.fields) {
        body[std::string(f.name)] = f.min;
      }
      std::optional<Entry> e = MeasurementToEntry(m.path, 2, body);
      ASSERT_TRUE(e.has_value()) << u.unit;
      EXPECT_EQ(e->kind, EntryKind::kVitalSign);
      EXPECT_EQ(e->code.system, vocab::kLoincSystem);
      if (m.fields.size() > 1) {
        EXPECT_EQ(e->code.code, m.loinc);
        ASSERT_EQ(e->components.size(), m.fields.size());
        for (size_t i = 0; i < m.fields.size(); ++i) {
          EXPECT_EQ(e->components[i].code.code, m.fields[i].loinc);
          ASSERT_TRUE(e->components[i].quantity.has_value());
          EXPECT_EQ(e->components[i].quantity->unit, u.unit);
        }
      } else {
        EXPECT_EQ(e->code.code, u.loinc.empty() ? m.loinc : u.loinc) << u.unit;
        ASSERT_TRUE(e->quantity.has_value());
        EXPECT_EQ(e->quantity->unit, u.unit);
      }
      // Where the entry is filed follows the vocabulary's body measures.
      EXPECT_EQ(SegmentBaseFor(*e) == vocab::kBodyMeasureVitalSignsBase,
                vocab::IsBodyMeasureLoinc(e->code.code));
      // A reading without one of its fields is no entry.
      json partial = body;
      partial.erase(std::string(m.fields.back().name));
      EXPECT_FALSE(MeasurementToEntry(m.path, 2, partial).has_value());
    }
  }
  EXPECT_FALSE(MeasurementToEntry("physical-signs/mood", 1, json{{"value", 1}}).has_value());
}

TEST(Mapping, EntryKindsFileUnderTheVocabularysSegments) {
  ASSERT_EQ(vocab::kEntrySegments.size(), kEntryKindCount);
  for (size_t k = 0; k < kEntryKindCount; ++k) {
    Entry e = MakeEntry(static_cast<EntryKind>(k), "x");
    EXPECT_EQ(EntryKindName(e.kind), vocab::kEntrySegments[k].entry_kind);
    EXPECT_EQ(SegmentBaseFor(e), vocab::kEntrySegments[k].base);
    EXPECT_TRUE(record::ValidateSegmentPath(std::string(SegmentBaseFor(e)) + "/d1").ok());
  }
}

}  // namespace
}  // namespace medvault::interop
