#include <gtest/gtest.h>

#include "interop/interop.h"

namespace medvault::interop {
namespace {

using nlohmann::json;

Entry FullEntry() {
  Entry e;
  e.kind = EntryKind::kVitalSign;
  e.id = "urn:uuid:1";
  e.code = {
      "http://loinc.org",
      "85354-9",
      "Blood pressure",
      {{"http://snomed.info/sct", "75367002", "Blood pressure"}, {"urn:oid:1.2.3", "BP", ""}}};
  e.text = "sitting";
  e.status = "final";
  e.start = "2020-01-02T03:04:05Z";
  e.end = "2020-01-02T03:05:05Z";
  e.quantity = Quantity{"1.50", "kg"};
  e.value_code = Coding{"http://snomed.info/sct", "1", "x"};
  e.value_text = "text";
  e.components.push_back(
      {{"http://loinc.org", "8480-6", "Systolic"}, Quantity{"120", "mm[Hg]"}, std::nullopt, ""});
  e.category = "vital-signs";
  e.reactions.push_back({"http://snomed.info/sct", "2", "Hives"});
  e.severity = "mild";
  e.relation = {"urn:oid:2.16.840.1.113883.5.111", "FTH", "Father"};
  e.route = {"", "", "Oral"};
  e.media_type = "text/plain";
  e.url = "http://example.org/doc";
  e.body_site = {"http://snomed.info/sct", "368209003", "Right arm"};
  e.method = {"", "", "By hand"};
  e.reasons = {{"http://snomed.info/sct", "38341003", "Hypertension"}};
  e.section = {"http://loinc.org", "47420-5", "Functional status"};
  e.members = {"a", "b"};
  e.mood = "event";
  e.data = std::string("\0\x01\xfe bytes", 9);
  return e;
}

TEST(Model, EntryJsonRoundTripsEveryField) {
  const Entry e = FullEntry();
  Result<Entry> back = EntryFromJson(ToJson(e));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, e);
  // Empty fields are not written.
  Entry minimal;
  minimal.kind = EntryKind::kNote;
  EXPECT_EQ(ToJson(minimal).dump(), R"({"kind":"note"})");
}

// Translations: stored and read back in order; a translation with
// translations of its own, a wrong type, or more than kMaxTranslations are
// refused with where they are.
TEST(Model, TranslationsRoundTripAndAreBounded) {
  const Entry e = FullEntry();
  const json j = ToJson(e);
  ASSERT_TRUE(j["code"].contains("translations"));
  EXPECT_EQ(j["code"]["translations"].size(), 2u);
  EXPECT_EQ(j["code"]["translations"][1].dump(), R"({"code":"BP","system":"urn:oid:1.2.3"})");

  json nested = j;
  nested["code"]["translations"][0]["translations"] = json::array({{{"code", "x"}}});
  Result<Entry> refused = EntryFromJson(nested);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("code.translations[0]"), std::string::npos)
      << refused.status().message();

  json wrong = j;
  wrong["code"]["translations"] = "I10";
  EXPECT_FALSE(EntryFromJson(wrong).ok());

  json many = j;
  many["code"]["translations"] = json::array();
  for (size_t i = 0; i <= kMaxTranslations; ++i) {
    many["code"]["translations"].push_back(
        {{"system", "urn:oid:1.2"}, {"code", std::to_string(i)}});
  }
  EXPECT_FALSE(EntryFromJson(many).ok());
  many["code"]["translations"].erase(0);
  EXPECT_TRUE(EntryFromJson(many).ok());
}

TEST(Model, EveryKindHasAName) {
  for (size_t i = 0; i < kEntryKindCount; ++i) {
    const auto kind = static_cast<EntryKind>(i);
    std::optional<EntryKind> back = ParseEntryKind(EntryKindName(kind));
    ASSERT_TRUE(back.has_value()) << i;
    EXPECT_EQ(*back, kind);
  }
  EXPECT_FALSE(ParseEntryKind("Problem").has_value());
}

TEST(Model, PatientAndHeaderRoundTrip) {
  PatientHeader p;
  p.id = "p1";
  p.names.push_back({{"Ada", "M."}, "Lovelace", "official"});
  p.birth_date = "1815-12-10";
  p.gender = "female";
  p.identifiers.push_back({"urn:oid:1.2", "123", "MR"});
  p.identifiers.push_back({"http://hl7.org/fhir/sid/us-ssn", "999-00-1234", "SS"});
  p.addresses.push_back({{"1 Main St"}, "London", "", "W1", "GB", "home"});
  p.telecoms.push_back({"phone", "+44 1", "home"});
  p.deceased = "1852-11-27";
  p.marital_status = {"x", "M", "Married"};
  p.race = {"urn:oid:2.16.840.1.113883.6.238", "2106-3", "White"};
  p.language = "en-GB";
  Result<PatientHeader> back = PatientFromJson(ToJson(p));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, p);

  DocumentHeader h;
  h.id = "2.16.1^5";
  h.type = {"http://loinc.org", "34133-9", "CCD"};
  h.title = "T";
  h.time = "2020-01-01";
  h.confidentiality = "R";
  h.authors.push_back({"a", "Dr A", "Hospital", "2020-01-01"});
  h.custodian = {"c", "", "Hospital", ""};
  Result<DocumentHeader> hb = DocumentHeaderFromJson(ToJson(h));
  ASSERT_TRUE(hb.ok()) << hb.status().ToString();
  EXPECT_EQ(*hb, h);
}

TEST(Model, ReadersRefuseWrongShapes) {
  const std::vector<json> bad = {
      json::array(),
      json{{"kind", "problem"}, {"unknown", 1}},
      json{{"kind", "nonsense"}},
      json{{"id", "x"}},
      json{{"kind", "problem"}, {"id", 5}},
      json{{"kind", "problem"}, {"code", "123"}},
      json{{"kind", "problem"}, {"code", {{"code", 1}}}},
      json{{"kind", "problem"}, {"quantity", {{"value", 1.5}}}},
      json{{"kind", "problem"}, {"components", json::object()}},
      json{{"kind", "problem"}, {"reactions", {1}}},
      // The fields of issue 15: wrong types, bad base64, more links than kept.
      json{{"kind", "result"}, {"members", "a"}},
      json{{"kind", "result"}, {"members", {1}}},
      json{{"kind", "encounter"}, {"reasons", {"I10"}}},
      json{{"kind", "statement"}, {"section", "functional status"}},
      json{{"kind", "plan"}, {"mood", 3}},
      json{{"kind", "note"}, {"data", "not base64!"}},
      json{{"kind", "note"}, {"data", 12}},
      json{{"kind", "result"}, {"members", std::vector<std::string>(kMaxLinks + 1, "m")}},
      json{{"kind", "encounter"},
           {"reasons", std::vector<json>(kMaxLinks + 1, json{{"code", "I10"}})}},
  };
  for (const json& j : bad) {
    Result<Entry> e = EntryFromJson(j);
    EXPECT_FALSE(e.ok()) << j.dump();
    if (!e.ok()) {
      EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
    }
  }
  // At the cap itself, accepted.
  EXPECT_TRUE(
      EntryFromJson(json{{"kind", "result"}, {"members", std::vector<std::string>(kMaxLinks, "m")}})
          .ok());
  EXPECT_FALSE(PatientFromJson(json{{"names", "Ada"}}).ok());
  EXPECT_FALSE(PatientFromJson(json{{"names", {{{"given", "Ada"}}}}}).ok());
  EXPECT_FALSE(DocumentHeaderFromJson(json{{"authors", {1}}}).ok());
  EXPECT_FALSE(DocumentHeaderFromJson(json{{"custodian", "x"}}).ok());
}

TEST(Model, CanonicalFormIgnoresOrderAndCodeSystemSpelling) {
  ClinicalDocument a;
  a.header.id = "doc";
  Entry p1;
  p1.kind = EntryKind::kProblem;
  p1.id = "b";
  p1.code = {"urn:oid:2.16.840.1.113883.6.96", "44054006", "Diabetes"};
  Entry p2 = p1;
  p2.id = "a";
  Entry al;
  al.kind = EntryKind::kAllergy;
  al.id = "z";
  a.entries = {p1, al, p2};
  ClinicalDocument b = a;
  b.source_format = Format::kCcda;
  b.entries = {al, p2, p1};
  b.entries[2].code.system = "http://snomed.info/sct";
  b.kept_in_original_only = {"AuditEvent"};
  EXPECT_EQ(CanonicalString(a), CanonicalString(b));
  const json c = CanonicalJson(a);
  // Sorted by kind name, then id.
  EXPECT_EQ(c["entries"][0]["kind"], "allergy");
  EXPECT_EQ(c["entries"][1]["id"], "a");
  EXPECT_EQ(c["entries"][2]["id"], "b");
  // A changed value is a different document.
  b.entries[0].status = "active";
  EXPECT_NE(CanonicalString(a), CanonicalString(b));
  // The patient counts only when the document has one.
  ClinicalDocument d = a;
  d.patient.birth_date = "2000-01-01";
  EXPECT_EQ(CanonicalString(a), CanonicalString(d));
  d.has_patient = true;
  EXPECT_NE(CanonicalString(a), CanonicalString(d));
}

TEST(Model, DetectFormat) {
  EXPECT_EQ(*DetectFormat("<?xml version=\"1.0\"?><x/>"), Format::kCcda);
  EXPECT_EQ(*DetectFormat("\xEF\xBB\xBF  \r\n<ClinicalDocument/>"), Format::kCcda);
  EXPECT_EQ(*DetectFormat("\n {\"resourceType\":\"Patient\"}"), Format::kFhir);
  for (std::string_view bad : {"", "   ", "[1]", "PDF", "\xEF\xBB"}) {
    Result<Format> f = DetectFormat(bad);
    EXPECT_FALSE(f.ok());
    if (!f.ok()) {
      EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument);
    }
  }
}

}  // namespace
}  // namespace medvault::interop

namespace medvault::interop {
namespace {

TEST(Model, CanonicalFormKeepsOneCopyOfAnExactDuplicate) {
  ClinicalDocument a;
  Entry e;
  e.kind = EntryKind::kPlan;
  e.id = "x";
  a.entries = {e, e};
  ClinicalDocument b;
  b.entries = {e};
  EXPECT_EQ(CanonicalString(a), CanonicalString(b));
  a.entries[1].status = "new";  // not a duplicate any more
  EXPECT_NE(CanonicalString(a), CanonicalString(b));
}

}  // namespace
}  // namespace medvault::interop
