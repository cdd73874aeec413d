// WriteFhirBundle: the shape of what it writes, and that every field of the
// model (including what only the C-CDA reader produces) comes back from
// ParseFhir unchanged.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "interop/interop.h"

namespace medvault::interop {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "\"" << (needle) << "\" not in: " << (haystack)

constexpr std::string_view kKindTag = "http://medvault.invalid/fhir/CodeSystem/entry-kind";

Coding C(std::string system, std::string code, std::string display) {
  return Coding{std::move(system), std::move(code), std::move(display)};
}

// An entry of `kind` with every field set, using values that fit FHIR.
Entry Full(EntryKind kind, std::string id) {
  Entry e;
  e.kind = kind;
  e.id = std::move(id);
  e.code = C("http://loinc.org", "1234-5", "Something \"quoted\" \xc3\xa9");
  e.text = "Free text\nwith lines and \\ backslash";
  e.status = "active";
  e.start = "2012-08-06T10:30:00-05:00";
  e.end = "2013-01-01";
  e.quantity = Quantity{"5.50", "mg"};
  e.value_code = C("http://snomed.info/sct", "8517006", "Ex-smoker");
  e.value_text = "some value";
  e.components = {
      Component{C("http://loinc.org", "8480-6", "Systolic"), Quantity{"120", "mm[Hg]"},
                C(std::string("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"),
                  "N", "Normal"),
                "comp text"},
      Component{C("", "", "Only a display"), std::nullopt, std::nullopt, ""}};
  e.category = "laboratory";
  e.reactions = {C("http://snomed.info/sct", "247472004", "Hives"), C("", "", "Rash")};
  e.severity = "moderate";
  e.relation = C("http://terminology.hl7.org/CodeSystem/v3-RoleCode", "FTH", "father");
  e.route = C("http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration", "PO", "oral");
  e.media_type = "text/plain";
  e.url = "http://example.org/doc/1";
  e.body_site = C("http://snomed.info/sct", "368209003", "Right arm");
  e.method = C("", "", "By hand");
  e.reasons = {C("http://snomed.info/sct", "38341003", "Hypertension"), C("", "", "")};
  e.section = C("http://loinc.org", "10190-7", "Mental status");
  e.members = {"member-1", "Observation/elsewhere"};
  e.mood = "proposal";
  e.data = std::string("\x89PNG\r\n\x1a\n\0", 9);
  return e;
}

PatientHeader FullPatient() {
  PatientHeader p;
  p.id = "2.16.840.1.113883.19.5^996-756-495";
  p.names = {HumanName{{"Henry", "Levin"}, "Seven", "official"}, HumanName{{}, "", "usual"},
             HumanName{{"H"}, "", ""}};
  p.birth_date = "1954-11-23";
  p.gender = "male";
  p.identifiers = {Identifier{"urn:oid:2.16.840.1.113883.19.5", "996-756-495", "MR"},
                   Identifier{"http://hl7.org/fhir/sid/us-ssn", "999-00-1234", "SS"},
                   Identifier{"", "no-system", ""}};
  p.addresses = {Address{{"1357 Amber Drive", "Apt 2"}, "Beaverton", "OR", "97867", "US", "home"},
                 Address{}};
  p.telecoms = {Telecom{"phone", "+1(555)555-2003", "home"}, Telecom{"email", "a@b.c", ""}};
  p.deceased = "2020-02-03T04:05:06Z";
  p.marital_status = C("http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "M", "Married");
  p.race = C("urn:oid:2.16.840.1.113883.6.238", "2106-3", "White");
  p.ethnicity = C("", "", "Not Hispanic or Latino");
  p.language = "en-US";
  return p;
}

ClinicalDocument FullDocument() {
  ClinicalDocument doc;
  doc.source_format = Format::kCcda;
  doc.header.id = "2.16.840.1.113883.19.5.99999.1^TT988";
  doc.header.type = C("http://loinc.org", "34133-9", "Summarization of Episode Note");
  doc.header.title = "Continuity of Care Document";
  doc.header.time = "2012-09-15T00:00:00-04:00";
  doc.header.confidentiality = "N";
  doc.header.authors = {Party{"2.16.840.1.113883.4.6^99999999", "Henry Seven", "Good Health Clinic",
                              "2012-09-15T00:00:00-04:00"},
                        Party{"", "", "Only an Organisation", ""}, Party{"dev-1", "", "", ""}};
  doc.header.custodian = Party{"cust-1", "Custodian Person", "Good Health Clinic", ""};
  doc.has_patient = true;
  doc.patient = FullPatient();
  for (size_t k = 0; k < kEntryKindCount; ++k) {
    const auto kind = static_cast<EntryKind>(k);
    doc.entries.push_back(Full(kind, "full-" + std::string(EntryKindName(kind))));
  }
  return doc;
}

ClinicalDocument RoundTrip(const ClinicalDocument& doc, std::string* written = nullptr) {
  Result<std::string> w = WriteFhirBundle(doc);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  if (!w.ok()) return {};
  if (written != nullptr) *written = *w;
  Result<ClinicalDocument> r = ParseFhir(*w);
  EXPECT_TRUE(r.ok()) << r.status().ToString() << "\n" << w->substr(0, 2000);
  return r.ok() ? std::move(r).value() : ClinicalDocument{};
}

// Same model (not only the same canonical form).
void ExpectSameModel(const ClinicalDocument& a, const ClinicalDocument& b) {
  EXPECT_EQ(CanonicalString(a), CanonicalString(b));
  EXPECT_EQ(a.header, b.header);
  EXPECT_EQ(a.has_patient, b.has_patient);
  EXPECT_EQ(a.patient, b.patient);
  ASSERT_EQ(a.entries.size(), b.entries.size());
  for (size_t i = 0; i < a.entries.size(); ++i) {
    EXPECT_EQ(ToJson(a.entries[i]).dump(), ToJson(b.entries[i]).dump());
    EXPECT_EQ(a.entries[i], b.entries[i]);
  }
}

// ---------------------------------------------------------------------------

TEST(FhirWriter, EveryFieldOfEveryKindRoundTrips) {
  const ClinicalDocument doc = FullDocument();
  ExpectSameModel(doc, RoundTrip(doc));
}

TEST(FhirWriter, ValuesWithoutANaturalFhirPlaceRoundTrip) {
  ClinicalDocument doc;
  doc.header.time = "20120915";  // not canonical: kept as written
  doc.has_patient = true;
  doc.patient.birth_date = "1954";
  doc.patient.deceased = "true";
  std::vector<Entry> odd;
  for (size_t k = 0; k < kEntryKindCount; ++k) {
    Entry e = Full(static_cast<EntryKind>(k), "odd-" + std::to_string(k));
    e.status = "Not-A-FHIR-Status";
    e.start = "2012-08-06T10:30:00";  // no zone: no FHIR instant
    e.end = "";
    e.category = "vital-signs";              // a result that is not a vital sign
    e.quantity = Quantity{"1e400", "[iU]"};  // not a JSON number that fits a double
    e.severity = "SEVERE";
    e.value_text = "data-absent: unknown";
    e.components = {Component{{}, Quantity{"abc", ""}, Coding{}, "t"},
                    Component{{}, Quantity{"", ""}, std::nullopt, "data-absent: masked"}};
    odd.push_back(e);
    e.id += "b";
    e.quantity = Quantity{"-0", ""};
    e.value_code = Coding{};  // engaged but empty
    e.reactions = {Coding{}};
    e.start = "not a date";
    e.end = "2012-08-06T10:30:00.123+05:30";
    e.code = C("", "code-without-system", "");
    e.category = "";
    e.value_text = "";
    e.components = {Component{}};
    odd.push_back(e);
  }
  Entry bare;
  bare.kind = EntryKind::kNote;
  bare.id = "bare-note";
  odd.push_back(bare);
  bare.id = "bare-result";
  bare.kind = EntryKind::kResult;
  bare.quantity = Quantity{};
  odd.push_back(bare);
  doc.entries = odd;
  ExpectSameModel(doc, RoundTrip(doc));
}

TEST(FhirWriter, EmptyDocumentAndPatientWithoutId) {
  ClinicalDocument empty;
  std::string written;
  ExpectSameModel(empty, RoundTrip(empty, &written));
  const json j = json::parse(written);
  EXPECT_EQ(j["resourceType"], "Bundle");
  EXPECT_EQ(j["type"], "collection");
  EXPECT_TRUE(j["entry"].empty());
  EXPECT_FALSE(j.contains("identifier"));
  EXPECT_FALSE(j.contains("timestamp"));

  ClinicalDocument anonymous;
  anonymous.has_patient = true;
  anonymous.patient.gender = "female";
  Entry e;
  e.kind = EntryKind::kProblem;
  e.id = "p1";
  anonymous.entries.push_back(e);
  ExpectSameModel(anonymous, RoundTrip(anonymous, &written));
  const json k = json::parse(written);
  EXPECT_FALSE(k["entry"][0].contains("fullUrl"));  // no id to give it
  EXPECT_FALSE(k["entry"][1]["resource"].contains("subject"));
}

TEST(FhirWriter, ShapeOfTheBundle) {
  const ClinicalDocument doc = FullDocument();
  Result<std::string> w = WriteFhirBundle(doc);
  ASSERT_TRUE(w.ok());
  const json j = json::parse(*w);
  EXPECT_EQ(j["resourceType"], "Bundle");
  EXPECT_EQ(j["type"], "collection");
  EXPECT_EQ(j["timestamp"], doc.header.time);
  EXPECT_EQ(j["identifier"]["system"], std::string(kMedvaultIdSystem));
  EXPECT_EQ(j["identifier"]["value"], doc.header.id);
  const json& entries = j["entry"];
  ASSERT_EQ(entries.size(), 2 + kEntryKindCount);  // Patient, Composition, entries

  // Patient first, referenced by every clinical resource.
  const json& patient = entries[0]["resource"];
  EXPECT_EQ(patient["resourceType"], "Patient");
  const std::string patient_url = entries[0]["fullUrl"];
  EXPECT_EQ(patient_url.rfind("urn:uuid:", 0), 0u);
  EXPECT_EQ(patient["identifier"][0]["system"], std::string(kMedvaultIdSystem));
  EXPECT_EQ(patient["identifier"][0]["value"], doc.patient.id);
  EXPECT_EQ(patient["birthDate"], "1954-11-23");
  EXPECT_EQ(patient["deceasedDateTime"], "2020-02-03T04:05:06Z");
  EXPECT_EQ(patient["extension"][0]["url"],
            "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race");
  EXPECT_EQ(patient["communication"][0]["language"]["coding"][0]["code"], "en-US");

  const json& composition = entries[1]["resource"];
  EXPECT_EQ(composition["resourceType"], "Composition");
  EXPECT_EQ(composition["title"], doc.header.title);
  EXPECT_EQ(composition["type"]["coding"][0]["code"], "34133-9");
  EXPECT_EQ(composition["confidentiality"], "N");
  EXPECT_EQ(composition["author"].size(), 3u);
  EXPECT_EQ(composition["custodian"]["display"], "Good Health Clinic");

  std::set<std::string> full_urls;
  std::vector<std::string> types;
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string url = entries[i]["fullUrl"];
    EXPECT_TRUE(full_urls.insert(url).second) << "duplicate fullUrl " << url;
    EXPECT_EQ(entries[i]["resource"]["id"], url.substr(9));
    if (i < 2) continue;
    const json& r = entries[i]["resource"];
    types.push_back(r["resourceType"]);
    const std::string kind = std::string(EntryKindName(doc.entries[i - 2].kind));
    EXPECT_EQ(r["meta"]["tag"][0]["system"], std::string(kKindTag));
    EXPECT_EQ(r["meta"]["tag"][0]["code"], kind);
    EXPECT_EQ(r["identifier"][0]["system"], std::string(kMedvaultIdSystem));
    EXPECT_EQ(r["identifier"][0]["value"], "full-" + kind);
    const json& ref = r.contains("subject") ? r["subject"] : r["patient"];
    EXPECT_EQ(ref["reference"], patient_url) << kind;
  }
  EXPECT_EQ(types, (std::vector<std::string>{
                       // A result with members is a panel: a DiagnosticReport.
                       "Condition", "AllergyIntolerance", "MedicationRequest", "DiagnosticReport",
                       "Observation", "Observation", "FamilyMemberHistory", "Procedure",
                       "Immunization", "Encounter", "ServiceRequest", "DocumentReference",
                       "DocumentReference", "Observation",
                       // A resource kept verbatim, here with fields FHIR has no place for.
                       "Basic"}));
  const json& med = entries[2 + static_cast<size_t>(EntryKind::kMedication)]["resource"];
  EXPECT_EQ(med["intent"], "proposal");  // the mood
  EXPECT_EQ(med["status"], "active");
  EXPECT_EQ(med["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"].dump(), "5.5");
  const json& plan = entries[2 + static_cast<size_t>(EntryKind::kPlan)]["resource"];
  EXPECT_EQ(plan["intent"], "proposal");  // the mood

  // The note's text is the attachment data.
  const json& note = entries[2 + static_cast<size_t>(EntryKind::kNote)]["resource"];
  EXPECT_EQ(note["content"][0]["attachment"]["contentType"], "text/plain");
  EXPECT_FALSE(note["content"][0]["attachment"]["data"].get<std::string>().empty());
  EXPECT_FALSE(note.contains("description"));
  const json& docref = entries[2 + static_cast<size_t>(EntryKind::kDocumentReference)]["resource"];
  EXPECT_EQ(docref["description"],
            doc.entries[static_cast<size_t>(EntryKind::kDocumentReference)].text);
  EXPECT_EQ(docref["content"][0]["attachment"]["url"], "http://example.org/doc/1");
}

TEST(FhirWriter, DecimalsAreWrittenAsTheirExactText) {
  ClinicalDocument doc;
  for (const char* v : {"1.00", "1E-22", "-0", "1000000000000000000", "1.000000000000000000E-245",
                        "0.1e+5", "99999999999999999999999"}) {
    Entry e;
    e.kind = EntryKind::kVitalSign;
    e.id = std::string("v") + v;
    e.quantity = Quantity{v, "g"};
    doc.entries.push_back(e);
  }
  std::string written;
  ExpectSameModel(doc, RoundTrip(doc, &written));
  for (const char* v : {"1.00", "1E-22", "-0", "1000000000000000000", "1.000000000000000000E-245",
                        "0.1e+5", "99999999999999999999999"}) {
    EXPECT_CONTAINS(written, "\"valueQuantity\":{\"value\":" + std::string(v) + ",");
  }
  EXPECT_TRUE(json::accept(written));
}

TEST(FhirWriter, StatusesAndCategoriesOutsideTheValueSetsGoToExtensions) {
  ClinicalDocument doc;
  Entry e;
  e.kind = EntryKind::kProblem;
  e.id = "c1";
  e.status = "completed";  // not a Condition clinical status
  doc.entries.push_back(e);
  std::string written;
  ExpectSameModel(doc, RoundTrip(doc, &written));
  const json j = json::parse(written);
  const json& r = j["entry"][0]["resource"];
  EXPECT_FALSE(r.contains("clinicalStatus"));
  ASSERT_TRUE(r.contains("extension"));
  EXPECT_EQ(r["extension"][0]["url"],
            "http://medvault.invalid/fhir/StructureDefinition/entry-status");
  EXPECT_EQ(r["extension"][0]["valueString"], "completed");
}

TEST(FhirWriter, OutputIsDeterministic) {
  const ClinicalDocument doc = FullDocument();
  Result<std::string> a = WriteFhirBundle(doc);
  Result<std::string> b = WriteFhirBundle(doc);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

TEST(FhirWriter, StringsAreEscaped) {
  ClinicalDocument doc;
  Entry e;
  e.kind = EntryKind::kNote;
  e.id = "n\"1\\";
  e.text = "ctl \t\n\r \x7f \"q\" \\ \xe2\x82\xac \xf0\x9f\x98\x80 end";
  e.code = C("", "", "</script>\"");
  doc.entries.push_back(e);
  std::string written;
  ExpectSameModel(doc, RoundTrip(doc, &written));
  EXPECT_TRUE(json::accept(written));
  // Control characters XML cannot carry are escaped as JSON; the reader
  // refuses them (issue 13: they would break a C-CDA export).
  static constexpr char kText[] = "ctl \x01\x1f nul \0 end";
  doc.entries[0].text = std::string(kText, sizeof kText - 1);
  Result<std::string> w = WriteFhirBundle(doc);
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(json::accept(*w));
  Result<ClinicalDocument> r = ParseFhir(*w);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("XML cannot carry"), std::string::npos)
      << r.status().message();
}

// A second pass changes nothing: write(read(write(doc))) == write(doc).
TEST(FhirWriter, WritingIsIdempotentThroughTheReader) {
  const ClinicalDocument doc = FullDocument();
  Result<std::string> first = WriteFhirBundle(doc);
  ASSERT_TRUE(first.ok());
  Result<ClinicalDocument> read = ParseFhir(*first);
  ASSERT_TRUE(read.ok());
  Result<std::string> second = WriteFhirBundle(*read);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*first, *second);
}

// Cross-format: whatever the C-CDA reader makes of the shared C-CDA corpus
// survives the FHIR writer and reader. (Files the C-CDA reader refuses are
// its business, not this test's.)
TEST(FhirWriter, CcdaDocumentsRoundTripThroughFhir) {
  const fs::path dir = fs::path(MEDVAULT_SHARED_TESTDATA_DIR) / "ccda";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) GTEST_SKIP() << "shared test data not found at " << dir;
  size_t checked = 0;
  for (const auto& f : fs::recursive_directory_iterator(dir, ec)) {
    if (!f.is_regular_file() || f.path().extension() != ".xml") continue;
    std::ifstream in(f.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    Result<ClinicalDocument> doc = ParseCcda(ss.str());
    if (!doc.ok()) continue;
    SCOPED_TRACE(f.path().string());
    ExpectSameModel(*doc, RoundTrip(*doc));
    ++checked;
  }
  if (checked == 0) GTEST_SKIP() << "the C-CDA reader accepted no file";
}

}  // namespace
}  // namespace medvault::interop
