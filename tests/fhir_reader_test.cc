// ParseFhir: the shared FHIR R4 and Synthea corpora, known answers, the
// mapping of each resource type, and hostile input.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "interop/interop.h"

namespace medvault::interop {
namespace {

namespace fs = std::filesystem;

#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "\"" << (needle) << "\" not in: " << (haystack)
#define EXPECT_NOT_CONTAINS(haystack, needle)                      \
  EXPECT_EQ(std::string(haystack).find(needle), std::string::npos) \
      << "\"" << (needle) << "\" in: " << (haystack)

constexpr char kSecret[] = "SECRET-PATIENT-TEXT";

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<fs::path> JsonFiles(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file() && e.path().extension() == ".json") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

const fs::path kShared = MEDVAULT_SHARED_TESTDATA_DIR;
const fs::path kLocal = fs::path(MEDVAULT_TESTDATA_DIR) / "interop" / "fhir";

ClinicalDocument MustParse(std::string_view json, const ParseLimits& limits = {}) {
  Result<ClinicalDocument> r = ParseFhir(json, limits);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : ClinicalDocument{};
}

// Expects ParseFhir to fail with `code` and a message containing every
// needle and never the planted secret.
void ExpectError(std::string_view json, StatusCode code,
                 std::initializer_list<std::string_view> needles, const ParseLimits& limits = {}) {
  Result<ClinicalDocument> r = ParseFhir(json, limits);
  ASSERT_FALSE(r.ok()) << "accepted: " << json.substr(0, 300);
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  for (std::string_view n : needles) EXPECT_CONTAINS(r.status().message(), std::string(n));
  EXPECT_NOT_CONTAINS(r.status().message(), kSecret);
}

const Entry* FindEntry(const ClinicalDocument& doc, std::string_view id) {
  for (const Entry& e : doc.entries) {
    if (e.id == id) return &e;
  }
  return nullptr;
}

size_t CountKind(const ClinicalDocument& doc, EntryKind k) {
  return static_cast<size_t>(std::count_if(doc.entries.begin(), doc.entries.end(),
                                           [k](const Entry& e) { return e.kind == k; }));
}

bool Kept(const ClinicalDocument& doc, std::string_view what) {
  return std::find(doc.kept_in_original_only.begin(), doc.kept_in_original_only.end(), what) !=
         doc.kept_in_original_only.end();
}

// Parses `path`, writes it back and parses again: same canonical form, and in
// fact the same model (the writer loses nothing the reader produces).
void CheckParsesAndRoundTrips(const fs::path& path) {
  SCOPED_TRACE(path.string());
  const std::string bytes = ReadFile(path);
  Result<ClinicalDocument> doc = ParseFhir(bytes);
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  Result<std::string> written = WriteFhirBundle(*doc);
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  Result<ClinicalDocument> again = ParseFhir(*written);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(CanonicalString(*doc), CanonicalString(*again));
  EXPECT_EQ(doc->header, again->header);
  EXPECT_EQ(doc->has_patient, again->has_patient);
  EXPECT_EQ(doc->patient, again->patient);
  EXPECT_EQ(doc->entries, again->entries);
  EXPECT_TRUE(again->kept_in_original_only.empty());
}

// ---------------------------------------------------------------------------
// Corpora

TEST(FhirReaderCorpus, LocalSubsetParsesAndRoundTrips) {
  const std::vector<fs::path> files = JsonFiles(kLocal);
  ASSERT_GE(files.size(), 8u) << "tests/data/interop/fhir is incomplete";
  for (const fs::path& f : files) CheckParsesAndRoundTrips(f);
}

TEST(FhirReaderCorpus, SharedFhirExamplesParseAndRoundTrip) {
  const std::vector<fs::path> files = JsonFiles(kShared / "fhir-r4");
  if (files.empty()) GTEST_SKIP() << "shared test data not found at " << kShared / "fhir-r4";
  EXPECT_GE(files.size(), 50u);
  for (const fs::path& f : files) CheckParsesAndRoundTrips(f);
}

TEST(FhirReaderCorpus, SharedSyntheaBundlesParseAndRoundTrip) {
  const std::vector<fs::path> files = JsonFiles(kShared / "synthea" / "fhir-r4-bundles");
  if (files.empty()) {
    GTEST_SKIP() << "shared test data not found at " << kShared / "synthea/fhir-r4-bundles";
  }
  EXPECT_GE(files.size(), 20u);
  for (const fs::path& f : files) CheckParsesAndRoundTrips(f);
}

// What a plain nlohmann parse of a Synthea bundle says, against the model.
void CheckSyntheaBundle(const fs::path& path) {
  SCOPED_TRACE(path.string());
  const std::string bytes = ReadFile(path);
  const nlohmann::json j = nlohmann::json::parse(bytes);
  std::map<std::string, size_t> types;
  size_t vital = 0, social = 0, activities = 0;
  for (const auto& e : j["entry"]) {
    const auto& r = e["resource"];
    ++types[r["resourceType"].get<std::string>()];
    for (const auto& a : r.value("activity", nlohmann::json::array())) {
      activities += a.contains("detail") ? 1 : 0;  // a care plan's inline activities
    }
    if (r["resourceType"] == "Observation") {
      bool is_vital = false, is_social = false;
      for (const auto& c : r.value("category", nlohmann::json::array())) {
        for (const auto& coding : c.value("coding", nlohmann::json::array())) {
          is_vital = is_vital || coding.value("code", "") == "vital-signs";
          is_social = is_social || coding.value("code", "") == "social-history";
        }
      }
      vital += is_vital ? 1 : 0;
      social += (!is_vital && is_social) ? 1 : 0;
    }
  }
  const ClinicalDocument doc = MustParse(bytes);
  EXPECT_EQ(CountKind(doc, EntryKind::kProblem), types["Condition"]);
  EXPECT_EQ(CountKind(doc, EntryKind::kAllergy), types["AllergyIntolerance"]);
  EXPECT_EQ(CountKind(doc, EntryKind::kMedication),
            types["MedicationRequest"] + types["MedicationStatement"]);
  EXPECT_EQ(CountKind(doc, EntryKind::kImmunization), types["Immunization"]);
  EXPECT_EQ(CountKind(doc, EntryKind::kProcedure), types["Procedure"]);
  EXPECT_EQ(CountKind(doc, EntryKind::kEncounter), types["Encounter"]);
  EXPECT_EQ(CountKind(doc, EntryKind::kPlan), types["CarePlan"] + types["Goal"] + activities);
  EXPECT_EQ(CountKind(doc, EntryKind::kVitalSign), vital);
  EXPECT_EQ(CountKind(doc, EntryKind::kSocialHistory), social);
  EXPECT_EQ(CountKind(doc, EntryKind::kResult),
            types["Observation"] - vital - social + types["DiagnosticReport"]);
  // Every resource but the patient is an entry: the ones the model has no
  // kind for verbatim, each the resource's own JSON.
  EXPECT_EQ(doc.entries.size(), j["entry"].size() - types["Patient"] + activities);
  EXPECT_GT(doc.entries.size(), 50u);
  EXPECT_TRUE(doc.kept_in_original_only.empty());
  std::map<std::string, size_t> verbatim;
  for (const Entry& e : doc.entries) {
    if (e.kind != EntryKind::kResource) continue;
    ++verbatim[e.code.code];
    const nlohmann::json r = nlohmann::json::parse(e.text);
    EXPECT_EQ(r["resourceType"], e.code.code);
  }
  for (const char* t :
       {"Claim", "ExplanationOfBenefit", "Organization", "Practitioner", "ImagingStudy"}) {
    EXPECT_EQ(verbatim[t], types[t]) << t;
  }

  // The patient.
  ASSERT_TRUE(doc.has_patient);
  ASSERT_FALSE(doc.patient.names.empty());
  EXPECT_FALSE(doc.patient.names[0].family.empty());
  ASSERT_FALSE(doc.patient.names[0].given.empty());
  EXPECT_EQ(doc.patient.birth_date.size(), 10u);
  EXPECT_EQ(doc.patient.birth_date, j["entry"][0]["resource"]["birthDate"].get<std::string>());
  EXPECT_TRUE(doc.patient.gender == "male" || doc.patient.gender == "female");
  EXPECT_EQ(doc.patient.id, j["entry"][0]["fullUrl"].get<std::string>());

  // Blood pressure: a panel with systolic and diastolic components in mm[Hg].
  size_t bp = 0;
  for (const Entry& e : doc.entries) {
    if (e.code.code != "55284-4") continue;
    ++bp;
    EXPECT_EQ(e.kind, EntryKind::kVitalSign);
    ASSERT_EQ(e.components.size(), 2u);
    std::vector<std::string> codes = {e.components[0].code.code, e.components[1].code.code};
    std::sort(codes.begin(), codes.end());
    EXPECT_EQ(codes, (std::vector<std::string>{"8462-4", "8480-6"}));
    for (const Component& c : e.components) {
      EXPECT_EQ(c.code.system, "http://loinc.org");
      ASSERT_TRUE(c.quantity.has_value());
      EXPECT_EQ(c.quantity->unit, "mm[Hg]");
      EXPECT_FALSE(c.quantity->value.empty());
    }
  }
  EXPECT_GT(bp, 0u);
}

TEST(FhirReaderCorpus, SyntheaBundleKnownAnswersLocal) {
  const std::vector<fs::path> files = JsonFiles(kLocal / "synthea");
  ASSERT_EQ(files.size(), 1u);
  CheckSyntheaBundle(files[0]);
  const ClinicalDocument doc = MustParse(ReadFile(files[0]));
  // Michael Kihn: 92 bundle entries, 79 of them clinical, 12 claims and
  // benefits kept verbatim, and the patient.
  EXPECT_EQ(doc.patient.names[0].family, "Kihn");
  EXPECT_EQ(doc.patient.birth_date, "1981-02-19");
  EXPECT_EQ(doc.entries.size(), 91u);
  EXPECT_EQ(CountKind(doc, EntryKind::kResource), 12u);
  EXPECT_EQ(doc.patient.race.code, "2106-3");
  EXPECT_EQ(doc.patient.ethnicity.code, "2186-5");
  EXPECT_EQ(doc.patient.language, "en-US");
  EXPECT_EQ(doc.patient.marital_status.code, "M");
  ASSERT_EQ(doc.patient.identifiers.size(), 5u);
  EXPECT_EQ(doc.patient.identifiers[2].type, "SS");
  EXPECT_EQ(doc.patient.identifiers[2].system, "http://hl7.org/fhir/sid/us-ssn");
}

TEST(FhirReaderCorpus, SyntheaBundleKnownAnswersShared) {
  const std::vector<fs::path> files = JsonFiles(kShared / "synthea" / "fhir-r4-bundles");
  if (files.empty()) GTEST_SKIP() << "shared test data not found";
  size_t deceased = 0;
  for (const fs::path& f : files) {
    CheckSyntheaBundle(f);
    if (!MustParse(ReadFile(f)).patient.deceased.empty()) ++deceased;
  }
  EXPECT_GT(deceased, 0u);  // the README says 8 of 30 (of the full set)
}

// ---------------------------------------------------------------------------
// Known answers from the core examples

TEST(FhirReader, ObservationDecimalKeepsPrecision) {
  const ClinicalDocument doc =
      MustParse(ReadFile(kLocal / "core-4.0.1" / "Observation-decimal.json"));
  ASSERT_EQ(doc.entries.size(), 1u);
  const Entry& e = doc.entries[0];
  EXPECT_EQ(e.kind, EntryKind::kResult);
  EXPECT_EQ(e.id, "Observation/decimal");
  EXPECT_EQ(e.status, "final");
  EXPECT_EQ(e.code.display, "Decimal Testing Observation");
  std::vector<std::string> values;
  for (const Component& c : e.components) {
    ASSERT_TRUE(c.quantity.has_value());
    EXPECT_EQ(c.quantity->unit, "g");
    values.push_back(c.quantity->value);
  }
  EXPECT_EQ(values,
            (std::vector<std::string>{"1.0", "1.00", "1.0", "1E-22", "1000000000000000000",
                                      "1.000000000000000000E-245", "-1.000000000000000000E+245"}));
  // The writer writes them as the same JSON number text.
  Result<std::string> written = WriteFhirBundle(doc);
  ASSERT_TRUE(written.ok());
  EXPECT_CONTAINS(*written, "\"value\":1.00,");
  EXPECT_CONTAINS(*written, "\"value\":1E-22,");
  EXPECT_CONTAINS(*written, "\"value\":-1.000000000000000000E+245,");
}

TEST(FhirReader, BloodPressureComponents) {
  const ClinicalDocument doc =
      MustParse(ReadFile(kLocal / "core-4.0.1" / "Observation-blood-pressure.json"));
  ASSERT_EQ(doc.entries.size(), 1u);
  const Entry& e = doc.entries[0];
  EXPECT_EQ(e.kind, EntryKind::kVitalSign);
  EXPECT_EQ(e.category, "vital-signs");
  EXPECT_EQ(e.code, (Coding{"http://loinc.org", "85354-9",
                            "Blood pressure panel with all children optional"}));
  EXPECT_EQ(e.start, "2012-09-17");
  // interpretation, since there is no coded value
  ASSERT_TRUE(e.value_code.has_value());
  EXPECT_EQ(e.value_code->code, "L");
  ASSERT_EQ(e.components.size(), 2u);
  // The LOINC coding is chosen over SNOMED and the device code; those two
  // stay as its translations, in the source's order.
  EXPECT_EQ(e.components[0].code,
            (Coding{"http://loinc.org",
                    "8480-6",
                    "Systolic blood pressure",
                    {Coding{"http://snomed.info/sct", "271649006", "Systolic blood pressure"},
                     Coding{"http://acme.org/devices/clinical-codes", "bp-s",
                            "Systolic Blood pressure"}}}));
  EXPECT_EQ(e.components[0].quantity, (Quantity{"107", "mm[Hg]"}));
  EXPECT_EQ(e.components[0].value_code->code, "N");
  EXPECT_EQ(e.components[1].code.code, "8462-4");
  EXPECT_EQ(e.components[1].quantity, (Quantity{"60", "mm[Hg]"}));
}

TEST(FhirReader, BloodPressureDataAbsent) {
  const ClinicalDocument doc =
      MustParse(ReadFile(kLocal / "us-core-3.0.0" / "Observation-bp-data-absent.json"));
  ASSERT_EQ(doc.entries.size(), 1u);
  ASSERT_EQ(doc.entries[0].components.size(), 2u);
  EXPECT_EQ(doc.entries[0].components[0].quantity, (Quantity{"109", "mm[Hg]"}));
  EXPECT_FALSE(doc.entries[0].components[1].quantity.has_value());
  EXPECT_EQ(doc.entries[0].components[1].value_text, "data-absent: unknown");
}

TEST(FhirReader, PatientExample) {
  const ClinicalDocument doc = MustParse(ReadFile(kLocal / "core-4.0.1" / "Patient-example.json"));
  ASSERT_TRUE(doc.has_patient);
  EXPECT_TRUE(doc.entries.empty());
  const PatientHeader& p = doc.patient;
  EXPECT_EQ(p.id, "Patient/example");
  ASSERT_EQ(p.names.size(), 3u);
  EXPECT_EQ(p.names[0], (HumanName{{"Peter", "James"}, "Chalmers", "official"}));
  EXPECT_EQ(p.names[1], (HumanName{{"Jim"}, "", "usual"}));
  EXPECT_EQ(p.names[2], (HumanName{{"Peter", "James"}, "Windsor", "maiden"}));
  EXPECT_EQ(p.birth_date, "1974-12-25");  // its "_birthDate" extension is allowed
  EXPECT_EQ(p.gender, "male");
  EXPECT_EQ(p.deceased, "");  // deceasedBoolean false
  ASSERT_EQ(p.identifiers.size(), 1u);
  EXPECT_EQ(p.identifiers[0], (Identifier{"urn:oid:1.2.36.146.595.217.0.1", "12345", "MR"}));
  ASSERT_EQ(p.addresses.size(), 1u);
  EXPECT_EQ(p.addresses[0].lines, std::vector<std::string>{"534 Erewhon St"});
  EXPECT_EQ(p.addresses[0].city, "PleasantVille");
  EXPECT_EQ(p.addresses[0].postal_code, "3999");
  EXPECT_EQ(p.addresses[0].use, "home");
  ASSERT_EQ(p.telecoms.size(), 4u);
  EXPECT_EQ(p.telecoms[0], (Telecom{"", "", "home"}));
  EXPECT_EQ(p.telecoms[1], (Telecom{"phone", "(03) 5555 6473", "work"}));
}

TEST(FhirReader, UsCorePatientRaceEthnicity) {
  const ClinicalDocument doc =
      MustParse(ReadFile(kLocal / "us-core-3.0.0" / "Patient-example.json"));
  // The first ombCategory of each; the OID system without a URI stays an OID.
  EXPECT_EQ(doc.patient.race, (Coding{"urn:oid:2.16.840.1.113883.6.238", "2106-3", "White"}));
  EXPECT_EQ(doc.patient.ethnicity,
            (Coding{"urn:oid:2.16.840.1.113883.6.238", "2135-2", "Hispanic or Latino"}));
  ASSERT_EQ(doc.patient.telecoms.size(), 2u);
  EXPECT_EQ(doc.patient.telecoms[1], (Telecom{"email", "amy.shaw@example.com", ""}));
}

TEST(FhirReader, DocumentReferenceExample) {
  const ClinicalDocument doc =
      MustParse(ReadFile(kLocal / "core-4.0.1" / "DocumentReference-example.json"));
  ASSERT_EQ(doc.entries.size(), 1u);
  const Entry& e = doc.entries[0];
  EXPECT_EQ(e.kind, EntryKind::kDocumentReference);
  EXPECT_EQ(e.code.code, "34108-1");
  EXPECT_EQ(e.text, "Physical");
  EXPECT_EQ(e.status, "current");
  EXPECT_EQ(e.start, "2005-12-24T09:43:41+11:00");
  EXPECT_EQ(e.media_type, "application/hl7-v3+xml");
  EXPECT_EQ(e.url, "http://example.org/xds/mhd/Binary/07a6483f-732b-461e-86b6-edb665c45510");
}

TEST(FhirReader, BundleReferencesTakesTheFirstPatient) {
  const ClinicalDocument doc =
      MustParse(ReadFile(kLocal / "core-4.0.1" / "Bundle-bundle-references.json"));
  EXPECT_EQ(doc.header.id, "bundle-references");
  EXPECT_EQ(doc.patient.id, "http://example.org/fhir/Patient/23");
  ASSERT_EQ(doc.patient.identifiers.size(), 1u);
  EXPECT_TRUE(Kept(doc, "Patient (additional)"));
  EXPECT_EQ(doc.entries.size(), 7u);
  EXPECT_NE(FindEntry(doc, "http://example.org/fhir/Observation/14"), nullptr);
  EXPECT_NE(FindEntry(doc, "http://example.org/fhir-2/Observation/14"), nullptr);
}

TEST(FhirReader, SharedBundlesKnownAnswers) {
  const fs::path core = kShared / "fhir-r4" / "core-4.0.1";
  if (!fs::exists(core)) GTEST_SKIP() << "shared test data not found";
  // batch-response: a Patient and four (empty) searchset Bundles.
  ClinicalDocument doc = MustParse(ReadFile(core / "Bundle-bundle-response-medsallergies.json"));
  EXPECT_TRUE(doc.has_patient);
  EXPECT_EQ(doc.patient.id, "Patient/example");
  // message: MessageHeader and OperationOutcome are kept, two Patients.
  doc = MustParse(ReadFile(core / "Bundle-3a0707d3-549e-4467-b8b8-5a2ab3800efe.json"));
  EXPECT_EQ(doc.header.time, "2015-07-14T11:15:33+10:00");
  EXPECT_TRUE(Kept(doc, "MessageHeader"));
  EXPECT_TRUE(Kept(doc, "OperationOutcome"));
  EXPECT_TRUE(Kept(doc, "Patient (additional)"));
  // searchset: a MedicationRequest and the Medication it refers to (kept
  // verbatim beside it).
  doc = MustParse(ReadFile(core / "Bundle-bundle-example.json"));
  ASSERT_EQ(doc.entries.size(), 2u);
  EXPECT_EQ(doc.entries[0].kind, EntryKind::kMedication);
  EXPECT_EQ(doc.entries[0].id, "https://example.com/base/MedicationRequest/3123");
  EXPECT_TRUE(doc.entries[0].code.empty());  // Medication/example has no code
  EXPECT_EQ(doc.entries[1].kind, EntryKind::kResource);
  EXPECT_EQ(doc.entries[1].code.code, "Medication");
  // A lab report collection: a DiagnosticReport and its Observations.
  doc = MustParse(ReadFile(core / "Bundle-report.json"));
  EXPECT_EQ(CountKind(doc, EntryKind::kResult), 14u);
  // A resource the model has no kind for, on its own: kept verbatim.
  doc = MustParse(ReadFile(core / "AuditEvent-example.json"));
  ASSERT_EQ(doc.entries.size(), 1u);
  EXPECT_EQ(doc.entries[0].kind, EntryKind::kResource);
  EXPECT_EQ(doc.entries[0].code.code, "AuditEvent");
  EXPECT_FALSE(doc.has_patient);
  EXPECT_TRUE(doc.kept_in_original_only.empty());
}

// ---------------------------------------------------------------------------
// Mapping of each resource type

std::string Bundle(const std::string& entries, const std::string& extra = "") {
  return R"({"resourceType":"Bundle","type":"collection")" + extra + R"(,"entry":[)" + entries +
         "]}";
}

TEST(FhirReader, ObservationValueKinds) {
  const ClinicalDocument doc = MustParse(Bundle(R"(
    {"fullUrl":"urn:uuid:1","resource":{"resourceType":"Observation","status":"FINAL",
      "category":[{"coding":[{"code":"social-history"}]}],
      "code":{"coding":[{"system":"urn:oid:2.16.840.1.113883.6.1","code":"72166-2"}],"text":"Smoking"},
      "effectivePeriod":{"start":"2020-01-02T03:04:05Z","end":"2020-02"},
      "valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"8517006"}],"text":"Ex-smoker"},
      "note":[{"text":"quit"}]}},
    {"fullUrl":"urn:uuid:2","resource":{"resourceType":"Observation","status":"final",
      "code":{"text":"x"},"issued":"2013-04-03T15:30:10+01:00","valueString":"positive"}},
    {"fullUrl":"urn:uuid:3","resource":{"resourceType":"Observation","code":{"text":"b"},"valueBoolean":false}},
    {"fullUrl":"urn:uuid:4","resource":{"resourceType":"Observation","code":{"text":"i"},"valueInteger":-3}},
    {"fullUrl":"urn:uuid:5","resource":{"resourceType":"Observation","code":{"text":"q"},
      "valueQuantity":{"value":4.10,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}}},
    {"fullUrl":"urn:uuid:6","resource":{"resourceType":"Observation","code":{"text":"q"},
      "valueQuantity":{"value":76.0,"unit":"mg/dL","system":"http://unitsofmeasure.org"}}},
    {"fullUrl":"urn:uuid:7","resource":{"resourceType":"Observation","code":{"text":"q"},
      "valueQuantity":{"value":1,"code":"kg","system":"http://example.org/units"}}},
    {"fullUrl":"urn:uuid:8","resource":{"resourceType":"Observation","code":{"text":"q"},
      "dataAbsentReason":{"text":"asked-unknown"}}}
  )"));
  ASSERT_EQ(doc.entries.size(), 8u);
  const Entry& smoking = doc.entries[0];
  EXPECT_EQ(smoking.kind, EntryKind::kSocialHistory);
  EXPECT_EQ(smoking.category, "social-history");
  EXPECT_EQ(smoking.status, "final");  // lower case
  // urn:oid LOINC becomes the URI; the text is the display fallback.
  EXPECT_EQ(smoking.code, (Coding{"http://loinc.org", "72166-2", "Smoking"}));
  EXPECT_EQ(smoking.start, "2020-01-02T03:04:05Z");
  EXPECT_EQ(smoking.end, "2020-02");
  EXPECT_EQ(smoking.value_code, (Coding{"http://snomed.info/sct", "8517006", "Ex-smoker"}));
  EXPECT_EQ(smoking.text, "quit");
  EXPECT_EQ(doc.entries[1].kind, EntryKind::kResult);
  EXPECT_EQ(doc.entries[1].start, "2013-04-03T15:30:10+01:00");  // issued, as a fallback
  EXPECT_EQ(doc.entries[1].value_text, "positive");
  EXPECT_EQ(doc.entries[2].value_text, "false");
  EXPECT_EQ(doc.entries[3].quantity, (Quantity{"-3", ""}));
  EXPECT_EQ(doc.entries[4].quantity, (Quantity{"4.10", "mm[Hg]"}));  // UCUM code wins
  EXPECT_EQ(doc.entries[5].quantity, (Quantity{"76.0", "mg/dL"}));   // no code: the unit
  EXPECT_EQ(doc.entries[6].quantity, (Quantity{"1", "kg"}));         // no unit: the code
  EXPECT_EQ(doc.entries[7].value_text, "data-absent: asked-unknown");
}

// Issue 13: whatever the FHIR reader accepts, the C-CDA writer can write,
// and the C-CDA reader reads back the same. The edge characters XML can
// carry survive FHIR -> C-CDA -> model; those it cannot are refused on input
// (a "\u0000" used to be stored and break the patient's C-CDA export).
TEST(FhirReader, EdgeCharactersSurviveTheWayToCcda) {
  const std::string edge =
      R"(a\tb\nc\rd\u007fe\u0080f\u009fg\ud7ffh\ue000i\ufffdj\ud800\udc00k\udbff\udfffl&<>\"')";
  const ClinicalDocument doc = MustParse(Bundle(
      R"({"fullUrl":"urn:uuid:1","resource":{"resourceType":"Observation","status":"final",
        "code":{"text":")" +
      edge + R"("},"valueString":")" + edge + R"(","note":[{"text":")" + edge + R"("}]}})"));
  ASSERT_EQ(doc.entries.size(), 1u);
  EXPECT_NE(doc.entries[0].value_text.find("\r"), std::string::npos);
  Result<std::string> xml = WriteCcda(doc);
  ASSERT_TRUE(xml.ok()) << xml.status().ToString();
  Result<ClinicalDocument> again = ParseCcda(*xml);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(CanonicalString(doc), CanonicalString(*again));

  for (const char* bad : {"\\u0000", "\\u0001", "\\u001f", "\\ufffe", "\\uffff"}) {
    SCOPED_TRACE(bad);
    ExpectError(Bundle(R"({"fullUrl":"urn:uuid:1","resource":{"resourceType":"Observation",
                  "code":{"text":"x"},"valueString":"SECRET-PATIENT-TEXT)" +
                       std::string(bad) + R"("}})"),
                StatusCode::kInvalidArgument,
                {"XML cannot carry", "at entry[0].resource.valueString"});
  }
}

TEST(FhirReader, ClinicalResourceTypes) {
  const ClinicalDocument doc = MustParse(Bundle(R"(
    {"fullUrl":"urn:uuid:c","resource":{"resourceType":"Condition",
      "clinicalStatus":{"coding":[{"code":"resolved"}]},"code":{"coding":[{"system":"http://snomed.info/sct","code":"44054006","display":"Diabetes"}]},
      "onsetDateTime":"2001-02-03","abatementDateTime":"2004"}},
    {"fullUrl":"urn:uuid:a","resource":{"resourceType":"AllergyIntolerance","category":["medication"],
      "clinicalStatus":{"coding":[{"code":"active"}]},"code":{"text":"Penicillin"},"recordedDate":"2010-01-01",
      "reaction":[{"manifestation":[{"coding":[{"code":"247472004","display":"Hives"}]},{"text":"Rash"}],"severity":"Moderate"},
                  {"manifestation":[{"text":"Nausea"}],"severity":"mild"}]}},
    {"fullUrl":"urn:uuid:m1","resource":{"resourceType":"MedicationStatement","status":"active",
      "contained":[{"resourceType":"Medication","id":"med","code":{"coding":[{"code":"1049221","display":"Acetaminophen"}]}}],
      "medicationReference":{"reference":"#med"},"effectivePeriod":{"start":"2020-01-01","end":"2020-02-01"},
      "dosage":[{"route":{"coding":[{"code":"26643006","display":"Oral"}]},"doseAndRate":[{"doseQuantity":{"value":0.5,"unit":"mg"}}]}]}},
    {"fullUrl":"urn:uuid:m2","resource":{"resourceType":"MedicationRequest","status":"active","intent":"order",
      "medicationReference":{"reference":"Medication/elsewhere","display":"Some drug"},"authoredOn":"2020-03-04"}},
    {"fullUrl":"urn:uuid:f","resource":{"resourceType":"FamilyMemberHistory","status":"completed",
      "relationship":{"coding":[{"code":"FTH","display":"father"}]},"date":"2015",
      "condition":[{"code":{"text":"Stroke"}},{"code":{"text":"Gout"}}]}},
    {"fullUrl":"urn:uuid:p","resource":{"resourceType":"Procedure","status":"completed","code":{"text":"Appendectomy"},
      "performedPeriod":{"start":"2011-05-06T07:08:09-05:00","end":"2011-05-06T08:00:00-05:00"}}},
    {"fullUrl":"urn:uuid:i","resource":{"resourceType":"Immunization","status":"completed",
      "vaccineCode":{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"140"}]},"occurrenceDateTime":"2012-05-01",
      "doseQuantity":{"value":0.5,"unit":"mL"},"route":{"text":"IM"}}},
    {"fullUrl":"urn:uuid:e","resource":{"resourceType":"Encounter","status":"finished",
      "class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},
      "period":{"start":"2004-11-02T04:03:34+00:00","end":"2004-11-02T04:18:34+00:00"}}},
    {"fullUrl":"urn:uuid:cp","resource":{"resourceType":"CarePlan","status":"active","intent":"plan",
      "category":[{"coding":[{"system":"http://hl7.org/fhir/us/core/CodeSystem/careplan-category","code":"assess-plan"}]},
                  {"coding":[{"system":"http://snomed.info/sct","code":"698360004","display":"Diabetes self management plan"}]}],
      "period":{"start":"2004-11-02"},"description":"Plan text"}},
    {"fullUrl":"urn:uuid:g","resource":{"resourceType":"Goal","lifecycleStatus":"accepted","description":{"text":"HbA1c < 7"}}},
    {"fullUrl":"urn:uuid:sr","resource":{"resourceType":"ServiceRequest","status":"active","intent":"plan",
      "code":{"text":"Colonoscopy"},"occurrenceDateTime":"2030-01-01"}},
    {"fullUrl":"urn:uuid:dr","resource":{"resourceType":"DiagnosticReport","status":"final",
      "category":[{"coding":[{"code":"LAB"}]}],"code":{"coding":[{"system":"http://snomed.info/sct","code":"1"},{"system":"http://loinc.org","code":"51990-0"}]},
      "effectiveDateTime":"2012-05-01T04:03:34+00:00","conclusion":"Normal"}}
  )"));
  const Entry* c = FindEntry(doc, "urn:uuid:c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->kind, EntryKind::kProblem);
  EXPECT_EQ(c->status, "resolved");
  EXPECT_EQ(c->start, "2001-02-03");
  EXPECT_EQ(c->end, "2004");

  const Entry* a = FindEntry(doc, "urn:uuid:a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->kind, EntryKind::kAllergy);
  EXPECT_EQ(a->category, "medication");
  EXPECT_EQ(a->status, "active");
  EXPECT_EQ(a->start, "2010-01-01");
  EXPECT_EQ(a->severity, "moderate");
  ASSERT_EQ(a->reactions.size(), 3u);
  EXPECT_EQ(a->reactions[0].code, "247472004");
  EXPECT_EQ(a->reactions[1].display, "Rash");
  EXPECT_EQ(a->reactions[2].display, "Nausea");

  const Entry* m1 = FindEntry(doc, "urn:uuid:m1");
  ASSERT_NE(m1, nullptr);
  EXPECT_EQ(m1->kind, EntryKind::kMedication);
  EXPECT_EQ(m1->code.code, "1049221");  // from the contained Medication
  EXPECT_EQ(m1->start, "2020-01-01");
  EXPECT_EQ(m1->end, "2020-02-01");
  EXPECT_EQ(m1->quantity, (Quantity{"0.5", "mg"}));
  EXPECT_EQ(m1->route.display, "Oral");
  const Entry* m2 = FindEntry(doc, "urn:uuid:m2");
  ASSERT_NE(m2, nullptr);
  EXPECT_EQ(m2->code, (Coding{"", "", "Some drug"}));  // unresolvable: the display
  EXPECT_EQ(m2->start, "2020-03-04");

  const Entry* f0 = FindEntry(doc, "urn:uuid:f#0");
  const Entry* f1 = FindEntry(doc, "urn:uuid:f#1");
  ASSERT_NE(f0, nullptr);
  ASSERT_NE(f1, nullptr);
  EXPECT_EQ(f0->kind, EntryKind::kFamilyHistory);
  EXPECT_EQ(f0->relation.code, "FTH");
  EXPECT_EQ(f0->code.display, "Stroke");
  EXPECT_EQ(f1->code.display, "Gout");
  EXPECT_EQ(f1->start, "2015");

  const Entry* p = FindEntry(doc, "urn:uuid:p");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->kind, EntryKind::kProcedure);
  EXPECT_EQ(p->start, "2011-05-06T07:08:09-05:00");
  EXPECT_EQ(p->end, "2011-05-06T08:00:00-05:00");

  const Entry* i = FindEntry(doc, "urn:uuid:i");
  ASSERT_NE(i, nullptr);
  EXPECT_EQ(i->kind, EntryKind::kImmunization);
  EXPECT_EQ(i->code.code, "140");
  EXPECT_EQ(i->quantity, (Quantity{"0.5", "mL"}));
  EXPECT_EQ(i->route.display, "IM");

  const Entry* e = FindEntry(doc, "urn:uuid:e");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->kind, EntryKind::kEncounter);
  EXPECT_EQ(e->code.code, "AMB");               // class, when there is no type
  EXPECT_EQ(e->start, "2004-11-02T04:03:34Z");  // +00:00 normalised

  const Entry* cp = FindEntry(doc, "urn:uuid:cp");
  ASSERT_NE(cp, nullptr);
  EXPECT_EQ(cp->kind, EntryKind::kPlan);
  EXPECT_EQ(cp->code.code, "698360004");  // not the generic assess-plan
  EXPECT_EQ(cp->text, "Plan text");
  const Entry* g = FindEntry(doc, "urn:uuid:g");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->kind, EntryKind::kPlan);
  EXPECT_EQ(g->status, "accepted");
  EXPECT_EQ(g->code.display, "HbA1c < 7");
  const Entry* sr = FindEntry(doc, "urn:uuid:sr");
  ASSERT_NE(sr, nullptr);
  EXPECT_EQ(sr->start, "2030-01-01");

  const Entry* dr = FindEntry(doc, "urn:uuid:dr");
  ASSERT_NE(dr, nullptr);
  EXPECT_EQ(dr->kind, EntryKind::kResult);
  EXPECT_EQ(dr->category, "LAB");
  EXPECT_EQ(dr->code.code, "51990-0");  // LOINC preferred
  EXPECT_EQ(dr->text, "Normal");
}

// Every coding of a CodeableConcept is kept (issue 15): the first (or the
// first LOINC one of an Observation) is the code, the others its
// translations in order, without codings that have no code or repeat the
// code; at most kMaxTranslations. Written back as the same codings.
TEST(FhirReader, EveryCodingIsKept) {
  using nlohmann::json;
  json condition = {
      {"resourceType", "Condition"},
      {"id", "c1"},
      {"code",
       {{"coding",
         json::array({{{"system", "http://snomed.info/sct"}, {"code", "44054006"}},
                      {{"system", "http://hl7.org/fhir/sid/icd-10-cm"}, {"code", "E11.9"}},
                      {{"display", "no code"}},
                      {{"system", "http://snomed.info/sct"}, {"code", "44054006"}}})}}}};
  json observation = {
      {"resourceType", "Observation"},
      {"id", "o1"},
      {"status", "final"},
      {"code",
       {{"coding", json::array({{{"system", "urn:oid:1.2.3"}, {"code", "GLU"}},
                                {{"system", "http://loinc.org"}, {"code", "2345-7"}}})}}}};
  json many = condition;
  many["id"] = "c2";
  for (int i = 0; i < 40; ++i) {
    many["code"]["coding"].push_back({{"system", "urn:oid:1.2"}, {"code", std::to_string(i)}});
  }
  json bundle = {{"resourceType", "Bundle"},
                 {"type", "collection"},
                 {"entry", json::array({{{"resource", condition}},
                                        {{"resource", observation}},
                                        {{"resource", many}}})}};
  const ClinicalDocument doc = MustParse(bundle.dump());
  ASSERT_EQ(doc.entries.size(), 3u);
  const Coding& dm = doc.entries[0].code;
  EXPECT_EQ(dm.code, "44054006");
  ASSERT_EQ(dm.translations.size(), 1u);
  EXPECT_EQ(dm.translations[0], (Coding{"http://hl7.org/fhir/sid/icd-10-cm", "E11.9", ""}));
  const Coding& glu = doc.entries[1].code;
  EXPECT_EQ(glu.code, "2345-7");
  ASSERT_EQ(glu.translations.size(), 1u);
  EXPECT_EQ(glu.translations[0].code, "GLU");
  EXPECT_EQ(doc.entries[2].code.translations.size(), kMaxTranslations);

  Result<std::string> written = WriteFhirBundle(doc);
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  const ClinicalDocument again = MustParse(*written);
  ASSERT_EQ(again.entries.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(again.entries[i].code, doc.entries[i].code) << i;
}

TEST(FhirReader, MedicationReferencesResolveInTheBundle) {
  const ClinicalDocument doc = MustParse(Bundle(R"(
    {"fullUrl":"urn:uuid:r1","resource":{"resourceType":"MedicationRequest","medicationReference":{"reference":"Medication/m"}}},
    {"fullUrl":"urn:uuid:r2","resource":{"resourceType":"MedicationRequest","medicationReference":{"reference":"urn:uuid:med2"}}},
    {"fullUrl":"urn:uuid:r3","resource":{"resourceType":"MedicationRequest","medicationReference":{"reference":"http://example.org/fhir/Medication/m"}}},
    {"fullUrl":"urn:uuid:r4","resource":{"resourceType":"MedicationRequest","medicationReference":{"reference":"urn:uuid:r1","display":"Not a medication"}}},
    {"fullUrl":"http://example.org/fhir/Medication/m","resource":{"resourceType":"Medication","id":"m",
      "code":{"coding":[{"system":"urn:oid:2.16.840.1.113883.6.88","code":"1049221","display":"Acetaminophen"}]}}},
    {"fullUrl":"urn:uuid:med2","resource":{"resourceType":"Medication","code":{"text":"Compounded"}}}
  )"));
  ASSERT_EQ(doc.entries.size(), 6u);  // and both Medications verbatim
  EXPECT_EQ(doc.entries[4].kind, EntryKind::kResource);
  EXPECT_EQ(doc.entries[5].kind, EntryKind::kResource);
  const Coding rxnorm{"http://www.nlm.nih.gov/research/umls/rxnorm", "1049221", "Acetaminophen"};
  EXPECT_EQ(doc.entries[0].code, rxnorm);
  EXPECT_EQ(doc.entries[1].code, (Coding{"", "", "Compounded"}));
  EXPECT_EQ(doc.entries[2].code, rxnorm);
  EXPECT_EQ(doc.entries[3].code, (Coding{"", "", "Not a medication"}));
  EXPECT_TRUE(doc.kept_in_original_only.empty());
}

TEST(FhirReader, ReferenceRangesAreKept) {
  const ClinicalDocument doc = MustParse(Bundle(R"(
    {"fullUrl":"urn:uuid:o1","resource":{"resourceType":"Observation","status":"final",
      "code":{"coding":[{"system":"http://loinc.org","code":"2093-3"}]},
      "valueQuantity":{"value":212,"unit":"mg/dL"},
      "referenceRange":[{"high":{"value":200.0,"unit":"mg/dL"},"text":"desirable below 200"},
                        {"low":{"value":1}}]}},
    {"fullUrl":"urn:uuid:o2","resource":{"resourceType":"Observation","status":"final",
      "code":{"coding":[{"system":"http://loinc.org","code":"2160-0"}]},
      "referenceRange":[{}]}}
  )"));
  ASSERT_EQ(doc.entries.size(), 2u);
  ASSERT_TRUE(doc.entries[0].reference_range.has_value());
  EXPECT_FALSE(doc.entries[0].reference_range->low.has_value());
  EXPECT_EQ(doc.entries[0].reference_range->high, (Quantity{"200.0", "mg/dL"}));
  EXPECT_EQ(doc.entries[0].reference_range->text, "desirable below 200");
  EXPECT_FALSE(doc.entries[1].reference_range.has_value()) << "an empty range is none";
  // Both writers carry it back.
  for (bool ccda : {false, true}) {
    Result<std::string> out = ccda ? WriteCcda(doc) : WriteFhirBundle(doc);
    ASSERT_TRUE(out.ok());
    Result<ClinicalDocument> back = ccda ? ParseCcda(*out) : ParseFhir(*out);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ASSERT_FALSE(back->entries.empty());
    bool found = false;
    for (const Entry& e : back->entries) {
      found = found || e.reference_range == doc.entries[0].reference_range;
    }
    EXPECT_TRUE(found) << (ccda ? "C-CDA" : "FHIR");
  }
}

TEST(FhirReader, EntryIds) {
  const ClinicalDocument doc = MustParse(Bundle(R"(
    {"fullUrl":"urn:uuid:x","resource":{"resourceType":"Condition","id":"c1",
      "identifier":[{"system":"http://other","value":"o"},{"system":"urn:oid:2.25.302458611271113451148352563394416437817","value":"bare-id"}]}},
    {"fullUrl":"urn:uuid:y","resource":{"resourceType":"Condition","id":"c2"}},
    {"resource":{"resourceType":"Condition","id":"c3"}},
    {"resource":{"resourceType":"Condition"}},
    {"resource":{"resourceType":"Procedure"}},
    {"resource":{"resourceType":"Condition"}}
  )"));
  ASSERT_EQ(doc.entries.size(), 6u);
  EXPECT_EQ(doc.entries[0].id, "bare-id");
  EXPECT_EQ(doc.entries[1].id, "urn:uuid:y");
  EXPECT_EQ(doc.entries[2].id, "Condition/c3");
  EXPECT_EQ(doc.entries[3].id, "gen:problem:4");
  EXPECT_EQ(doc.entries[4].id, "gen:procedure:1");
  EXPECT_EQ(doc.entries[5].id, "gen:problem:5");
}

TEST(FhirReader, HeaderFromBundleAndComposition) {
  const ClinicalDocument doc =
      MustParse(Bundle(R"(
    {"fullUrl":"urn:uuid:comp","resource":{"resourceType":"Composition","status":"final",
      "type":{"coding":[{"system":"http://loinc.org","code":"34133-9","display":"Summary"}]},
      "date":"2019-01-01","title":"CCD","confidentiality":"R",
      "author":[{"reference":"urn:uuid:dr"},{"reference":"Organization/o1"},{"reference":"#pr"},{"display":"Dr. Display"}],
      "custodian":{"reference":"urn:uuid:org"},
      "contained":[{"resourceType":"PractitionerRole","id":"pr","practitioner":{"reference":"urn:uuid:dr"},
                    "organization":{"display":"Ward 5"}}]}},
    {"fullUrl":"urn:uuid:dr","resource":{"resourceType":"Practitioner","name":[{"given":["Henry"],"family":"Seven"}]}},
    {"fullUrl":"urn:uuid:org","resource":{"resourceType":"Organization","id":"o1","name":"Good Health Clinic"}},
    {"fullUrl":"urn:uuid:comp2","resource":{"resourceType":"Composition"}}
  )",
                       R"(,"identifier":{"system":"urn:ietf:rfc:3986","value":"urn:uuid:abc"},)"
                       R"("id":"ignored","timestamp":"2020-05-06T07:08:09+02:00")"));
  const DocumentHeader& h = doc.header;
  EXPECT_EQ(h.id, "urn:ietf:rfc:3986|urn:uuid:abc");
  EXPECT_EQ(h.time, "2020-05-06T07:08:09+02:00");  // the timestamp wins over the date
  EXPECT_EQ(h.type.code, "34133-9");
  EXPECT_EQ(h.title, "CCD");
  EXPECT_EQ(h.confidentiality, "R");
  ASSERT_EQ(h.authors.size(), 4u);
  EXPECT_EQ(h.authors[0], (Party{"urn:uuid:dr", "Henry Seven", "", ""}));
  EXPECT_EQ(h.authors[1], (Party{"Organization/o1", "", "Good Health Clinic", ""}));
  EXPECT_EQ(h.authors[2], (Party{"#pr", "Henry Seven", "Ward 5", ""}));
  EXPECT_EQ(h.authors[3], (Party{"", "Dr. Display", "", ""}));
  EXPECT_EQ(h.custodian, (Party{"urn:uuid:org", "", "Good Health Clinic", ""}));
  EXPECT_TRUE(Kept(doc, "Composition (additional)"));
  // The Practitioner and Organization the header points at are kept verbatim.
  ASSERT_FALSE(doc.entries.empty());
  for (const Entry& e : doc.entries) {
    EXPECT_EQ(e.kind, EntryKind::kResource);
    EXPECT_TRUE(e.code.code == "Practitioner" || e.code.code == "Organization") << e.code.code;
  }

  // Bundle.id when there is no identifier; a single resource has no header.
  EXPECT_EQ(MustParse(R"({"resourceType":"Bundle","id":"b1"})").header.id, "b1");
  EXPECT_EQ(MustParse(R"({"resourceType":"Condition","id":"c"})").header, DocumentHeader{});
}

TEST(FhirReader, NestedBundlesAreReadToALimit) {
  std::string json = R"({"resourceType":"Condition","id":"deep"})";
  for (int i = 0; i < 10; ++i) {
    json = R"({"resourceType":"Bundle","type":"collection","entry":[{"resource":)" + json + "}]}";
  }
  ClinicalDocument doc = MustParse(json);
  EXPECT_TRUE(doc.entries.empty());
  EXPECT_TRUE(Kept(doc, "Bundle"));
  json =
      R"({"resourceType":"Bundle","type":"batch-response","entry":[{"response":{"status":"200"}},)"
      R"({"resource":{"resourceType":"Bundle","type":"searchset","entry":[{"resource":)"
      R"({"resourceType":"Condition","id":"c"}}]}}]})";
  doc = MustParse(json);
  ASSERT_EQ(doc.entries.size(), 1u);
  EXPECT_EQ(doc.entries[0].id, "Condition/c");
}

// Resource types the model has no kind for are kept verbatim, each its own
// JSON (numbers as written); types that are no one's health data, and names
// that are no type, stay in the original only, listed once.
TEST(FhirReader, UnknownResourceTypesAreKeptVerbatim) {
  const ClinicalDocument doc = MustParse(Bundle(R"(
    {"resource":{"resourceType":"Claim","total":{"value":12.50,"currency":"USD"}}},
    {"fullUrl":"urn:uuid:c2","resource":{"resourceType":"Claim","id":"c2"}},
    {"resource":{"resourceType":"Binary","data":"AAAA"}},{"resource":{"resourceType":"not a type"}},
    {"resource":{"resourceType":"OperationOutcome"}},{"resource":{"resourceType":"OperationOutcome"}},
    {"resource":{"resourceType":"Medication","id":"m"}}
  )"));
  EXPECT_EQ(doc.kept_in_original_only,
            (std::vector<std::string>{"unknown resource type", "OperationOutcome"}));
  ASSERT_EQ(doc.entries.size(), 4u);
  for (const Entry& e : doc.entries) EXPECT_EQ(e.kind, EntryKind::kResource);
  EXPECT_EQ(doc.entries[0].text,
            R"({"resourceType":"Claim","total":{"value":12.50,"currency":"USD"}})");
  EXPECT_EQ(doc.entries[0].id, "gen:resource:1");
  EXPECT_EQ(doc.entries[1].id, "urn:uuid:c2");
  EXPECT_EQ(doc.entries[2].code, (Coding{std::string(kResourceTypeSystem), "Binary", ""}));
  EXPECT_EQ(doc.entries[3].id, "Medication/m");
  // Written back as they were, each with the id it had.
  Result<std::string> out = WriteFhirBundle(doc);
  ASSERT_TRUE(out.ok());
  const nlohmann::json bundle = nlohmann::json::parse(*out);
  ASSERT_EQ(bundle["entry"].size(), 4u);
  EXPECT_EQ(bundle["entry"][0]["resource"]["total"]["value"].dump(), "12.5");  // parsed back: 12.50
  EXPECT_NE(out->find(R"("total":{"value":12.50,"currency":"USD"})"), std::string::npos);
  EXPECT_FALSE(bundle["entry"][0].contains("fullUrl"));
  EXPECT_EQ(bundle["entry"][1]["fullUrl"], "urn:uuid:c2");
  EXPECT_FALSE(bundle["entry"][1]["resource"].contains("meta"));  // verbatim: no tag added
  const ClinicalDocument again = MustParse(*out);
  EXPECT_EQ(CanonicalString(again), CanonicalString(doc));
}

// A kResource entry that cannot be written verbatim (a text that is not its
// resource, fields beside it, a type the reader models) is written as a
// tagged Basic resource and read back unchanged; never spliced in raw.
TEST(FhirReader, ResourcesThatAreNotVerbatimGoThroughBasic) {
  ClinicalDocument doc;
  const std::string sys(kResourceTypeSystem);
  Entry hostile;
  hostile.kind = EntryKind::kResource;
  hostile.id = "r1";
  hostile.code = {sys, "Claim", ""};
  hostile.text = R"({"resourceType":"Claim"}]},{"resource":{"resourceType":"Patient"}})";
  Entry modelled = hostile;
  modelled.id = "urn:uuid:r2";
  modelled.code = {sys, "Condition", ""};
  modelled.text = R"({"resourceType":"Condition"})";
  Entry spaced = hostile;
  spaced.id = "urn:uuid:r3";
  spaced.text = R"({ "resourceType": "Claim" })";
  Entry with_fields = hostile;
  with_fields.id = "urn:uuid:r4";
  with_fields.text = R"({"resourceType":"Claim"})";
  with_fields.status = "active";
  // Texts the reader would refuse or read otherwise, raw in our bundle.
  Entry bad_identifier = hostile;
  bad_identifier.id = "urn:uuid:r5";
  bad_identifier.text = R"({"resourceType":"Claim","identifier":{}})";
  Entry tagged = hostile;
  tagged.id = "urn:uuid:r6";
  tagged.text =
      R"({"resourceType":"Claim","meta":{"tag":[{"system":"http://medvault.invalid/fhir/CodeSystem/entry-kind","code":"resource"}]}})";
  // An id that is one of the writer's own URLs (the patient's), and one
  // that two entries share.
  Entry ours = hostile;
  ours.id = "urn:uuid:6d656476-6175-4c74-8000-000000000001";
  ours.text = R"({"resourceType":"Claim"})";
  Entry twice = hostile;
  twice.id = "urn:uuid:same";
  twice.text = R"({"resourceType":"Claim"})";
  Entry twice_again = twice;
  twice_again.text = R"({"resourceType":"Claim","status":"active"})";
  doc.has_patient = true;
  doc.patient.id = "p";
  doc.entries = {hostile, modelled, spaced, with_fields, bad_identifier,
                 tagged,  ours,     twice,  twice_again};
  Result<std::string> out = WriteFhirBundle(doc);
  ASSERT_TRUE(out.ok());
  const nlohmann::json bundle = nlohmann::json::parse(*out);
  ASSERT_EQ(bundle["entry"].size(), 10u);                              // the patient first
  EXPECT_EQ(bundle["entry"][8]["resource"]["resourceType"], "Claim");  // the first "same"
  std::set<std::string> urls;
  for (const nlohmann::json& e : bundle["entry"]) {
    if (e.contains("fullUrl")) {
      EXPECT_TRUE(urls.insert(e["fullUrl"]).second) << e["fullUrl"];
    }
  }
  for (size_t i = 1; i < bundle["entry"].size(); ++i) {
    if (i == 8) continue;
    EXPECT_EQ(bundle["entry"][i]["resource"]["resourceType"], "Basic") << i;
  }
  EXPECT_EQ(CanonicalString(MustParse(*out)), CanonicalString(doc));
}

TEST(FhirReader, PrimitiveExtensionsNullsAndUnknownFieldsAreFine) {
  const ClinicalDocument doc = MustParse(R"({"resourceType":"Patient","id":"p",
    "name":[{"given":["A",null,"C"],"_given":[null,{"extension":[]},null],"family":"F","_family":{}}],
    "_gender":{"extension":[]},"birthDate":"19991231","futureField":[1,{"x":null}],
    "address":[{"line":[null,"L2"],"district":"ignored"}],
    "telecom":[{"system":"phone","value":"tel:+1-555"},{"system":"email","value":"mailto:a@b.c"}],
    "deceasedDateTime":"2020-01-01T00:00:00+00:00",
    "communication":[{"language":{"text":"fr"}}]})");
  ASSERT_EQ(doc.patient.names.size(), 1u);
  EXPECT_EQ(doc.patient.names[0].given, (std::vector<std::string>{"A", "C"}));
  EXPECT_EQ(doc.patient.birth_date, "1999-12-31");  // lenient date syntax, normalised
  EXPECT_EQ(doc.patient.addresses[0].lines, std::vector<std::string>{"L2"});
  EXPECT_EQ(doc.patient.telecoms[0].value, "+1-555");
  EXPECT_EQ(doc.patient.telecoms[1].value, "a@b.c");
  EXPECT_EQ(doc.patient.deceased, "2020-01-01T00:00:00Z");
  EXPECT_EQ(doc.patient.language, "fr");
}

TEST(FhirReader, AcceptsABom) {
  const ClinicalDocument doc =
      MustParse("\xEF\xBB\xBF{\"resourceType\":\"Condition\",\"id\":\"c\"}");
  ASSERT_EQ(doc.entries.size(), 1u);
}

// ---------------------------------------------------------------------------
// Hostile input

TEST(FhirReaderHostile, TopLevelShape) {
  ExpectError("", StatusCode::kInvalidArgument, {"invalid JSON"});
  ExpectError(R"(["SECRET-PATIENT-TEXT"])", StatusCode::kInvalidArgument,
              {"expected a FHIR resource (a JSON object) at the top level, got an array"});
  ExpectError(R"("SECRET-PATIENT-TEXT")", StatusCode::kInvalidArgument, {"got a string"});
  ExpectError(R"({"resourceType":5,"x":"SECRET-PATIENT-TEXT"})", StatusCode::kInvalidArgument,
              {"expected a string \"resourceType\" at the top level"});
  ExpectError(R"({"id":"SECRET-PATIENT-TEXT"})", StatusCode::kInvalidArgument,
              {"no \"resourceType\""});
  ExpectError(R"({"resourceType":"Bundle","entry":{"resource":{}}})", StatusCode::kInvalidArgument,
              {"expected an array, got an object at entry"});
  ExpectError(
      R"({"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Condition"}},"SECRET-PATIENT-TEXT"]})",
      StatusCode::kInvalidArgument, {"expected an object, got a string at entry[1]"});
  ExpectError(R"({"resourceType":"Bundle","entry":[{"resource":["SECRET-PATIENT-TEXT"]}]})",
              StatusCode::kInvalidArgument,
              {"expected an object, got an array at entry[0].resource"});
  ExpectError(R"({"resourceType":"Bundle","entry":[{"resource":{"id":"SECRET-PATIENT-TEXT"}}]})",
              StatusCode::kInvalidArgument, {"resourceType", "at entry[0].resource"});
  ExpectError(
      R"({"resourceType":"Bundle","entry":[{"fullUrl":7,"resource":{"resourceType":"Condition"}}]})",
      StatusCode::kInvalidArgument, {"expected a string, got a number at entry[0].fullUrl"});
  ExpectError(
      R"({"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Condition"}}]} SECRET-PATIENT-TEXT)",
      StatusCode::kInvalidArgument, {"invalid JSON", "after the top-level value"});
}

TEST(FhirReaderHostile, WrongTypesOnMappedFields) {
  struct Case {
    std::string resource;
    std::string needle;
  };
  const Case cases[] = {
      {R"("resourceType":"Observation","status":5,"note":[{"text":"SECRET-PATIENT-TEXT"}])",
       "expected a string, got a number at entry[0].resource.status"},
      {R"("resourceType":"Patient","name":"SECRET-PATIENT-TEXT")",
       "expected an array, got a string at entry[0].resource.name"},
      {R"("resourceType":"Patient","name":[{"given":["SECRET-PATIENT-TEXT",5]}])",
       "expected a string, got a number at entry[0].resource.name[0].given[1]"},
      {R"("resourceType":"Patient","birthDate":19740101)",
       "expected a string, got a number at entry[0].resource.birthDate"},
      {R"("resourceType":"Patient","deceasedBoolean":"SECRET-PATIENT-TEXT")",
       "expected a boolean, got a string at entry[0].resource.deceasedBoolean"},
      {R"("resourceType":"Patient","identifier":[{"system":"x","value":{"v":"SECRET-PATIENT-TEXT"}}])",
       "expected a string, got an object at entry[0].resource.identifier[0].value"},
      {R"("resourceType":"Observation","valueQuantity":{"value":"SECRET-PATIENT-TEXT","unit":"g"})",
       "expected a number, got a string at entry[0].resource.valueQuantity.value"},
      {R"("resourceType":"Observation","valueQuantity":[1])",
       "expected an object, got an array at entry[0].resource.valueQuantity"},
      {R"("resourceType":"Observation","code":{"coding":{"code":"SECRET-PATIENT-TEXT"}})",
       "expected an array, got an object at entry[0].resource.code.coding"},
      {R"("resourceType":"Observation","code":{"coding":["SECRET-PATIENT-TEXT"]})",
       "expected an object, got a string at entry[0].resource.code.coding[0]"},
      {R"("resourceType":"Observation","category":{"text":"SECRET-PATIENT-TEXT"})",
       "expected an array, got an object at entry[0].resource.category"},
      {R"("resourceType":"Observation","referenceRange":[{"low":{"value":"SECRET-PATIENT-TEXT"}}])",
       "expected a number, got a string at entry[0].resource.referenceRange[0].low.value"},
      {R"("resourceType":"Observation","component":[{"valueQuantity":{"value":true}}])",
       "expected a number, got a boolean at entry[0].resource.component[0].valueQuantity.value"},
      {R"("resourceType":"Observation","valueInteger":"SECRET-PATIENT-TEXT")",
       "expected a number, got a string at entry[0].resource.valueInteger"},
      {R"("resourceType":"AllergyIntolerance","category":[{"x":"SECRET-PATIENT-TEXT"}])",
       "expected a string, got an object at entry[0].resource.category[0]"},
      {R"("resourceType":"Condition","clinicalStatus":"SECRET-PATIENT-TEXT")",
       "expected an object, got a string at entry[0].resource.clinicalStatus"},
      {R"("resourceType":"Condition","identifier":{"value":"SECRET-PATIENT-TEXT"})",
       "expected an array, got an object at entry[0].resource.identifier"},
      {R"("resourceType":"Condition","note":[{"text":null}])",
       "expected a string, got null at entry[0].resource.note[0].text"},
      {R"("resourceType":"Encounter","period":{"start":["SECRET-PATIENT-TEXT"]})",
       "expected a string, got an array at entry[0].resource.period.start"},
      {R"("resourceType":"MedicationRequest","dosageInstruction":[{"doseAndRate":[{"doseQuantity":{"value":"1"}}]}])",
       "at entry[0].resource.dosageInstruction[0].doseAndRate[0].doseQuantity.value"},
      {R"("resourceType":"Observation","meta":{"tag":"SECRET-PATIENT-TEXT"})",
       "expected an array, got a string at entry[0].resource.meta.tag"},
      {R"("resourceType":"Composition","author":[{"reference":5}])",
       "expected a string, got a number at entry[0].resource.author[0].reference"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.resource);
    ExpectError(Bundle(R"({"resource":{)" + c.resource + "}}"), StatusCode::kInvalidArgument,
                {c.needle});
  }
}

TEST(FhirReaderHostile, MalformedDates) {
  for (const char* date : {"SECRET-PATIENT-TEXT", "2012-13-01", "2012-02-30", "2012-1-1",
                           "2012-01-01T25:00:00Z", "2012-01-01T10:00:00+99:00", ""}) {
    SCOPED_TRACE(date);
    const std::string json =
        Bundle(R"({"resource":{"resourceType":"Observation","effectiveDateTime":")" +
               std::string(date) + R"("}})");
    if (std::string_view(date).empty()) {
      EXPECT_TRUE(ParseFhir(json).ok());  // an empty string is no date
      continue;
    }
    ExpectError(json, StatusCode::kInvalidArgument,
                {"invalid date/time", "at entry[0].resource.effectiveDateTime"});
  }
  ExpectError(R"({"resourceType":"Patient","birthDate":"SECRET-PATIENT-TEXT"})",
              StatusCode::kInvalidArgument, {"invalid date/time", "at birthDate"});
  ExpectError(R"({"resourceType":"Bundle","timestamp":"SECRET-PATIENT-TEXT"})",
              StatusCode::kInvalidArgument, {"invalid date/time", "at timestamp"});
}

TEST(FhirReaderHostile, JsonLevelRefusalsCarryThePath) {
  ExpectError(
      Bundle(
          R"({"resource":{"resourceType":"Condition","status":"a","status":"SECRET-PATIENT-TEXT"}})"),
      StatusCode::kInvalidArgument, {"duplicate key \"status\" at entry[0].resource"});
  ExpectError(R"({"resourceType":"Bundle","resourceType":"Bundle"})", StatusCode::kInvalidArgument,
              {"duplicate key \"resourceType\" at the top level"});
  ExpectError(
      Bundle(R"({"resource":{"resourceType":"Observation","valueQuantity":{"value":1e400}}})"),
      StatusCode::kInvalidArgument,
      {"number out of range at entry[0].resource.valueQuantity.value"});
  ExpectError(
      Bundle(R"({"resource":{"resourceType":"Observation","valueQuantity":{"value":-1e400}}})"),
      StatusCode::kInvalidArgument, {"number out of range"});
  ExpectError(
      Bundle(R"({"resource":{"resourceType":"Observation","valueQuantity":{"value":NaN}}})"),
      StatusCode::kInvalidArgument, {"invalid JSON", "valueQuantity.value"});
  ExpectError(
      Bundle(R"({"resource":{"resourceType":"Observation","valueQuantity":{"value":Infinity}}})"),
      StatusCode::kInvalidArgument, {"invalid JSON"});
  ExpectError(
      "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"SECRET-PATIENT-TEXT\xc0\xaf\"}]}",
      StatusCode::kInvalidArgument, {"invalid JSON", "at name[0].family"});
  ExpectError("{\"resourceType\":\"Patient\",\"gender\":\"SECRET-PATIENT-TEXT\xed\xa0\x80\"}",
              StatusCode::kInvalidArgument, {"invalid JSON", "at gender"});
  ExpectError(R"({"resourceType":"Patient","gender":"SECRET-PATIENT-TEXT\ud800"})",
              StatusCode::kInvalidArgument, {"invalid JSON", "surrogate"});
  // A big integer in a decimal fits a double: accepted, exactly.
  const ClinicalDocument doc = MustParse(
      R"({"resourceType":"Observation","valueQuantity":{"value":99999999999999999999999}})");
  ASSERT_EQ(doc.entries.size(), 1u);
  EXPECT_EQ(doc.entries[0].quantity->value, "99999999999999999999999");
}

TEST(FhirReaderHostile, Limits) {
  ExpectError(std::string(100000, '['), StatusCode::kResourceExhausted, {"nested deeper than"});
  ParseLimits small;
  small.max_text_bytes = 4096;
  ExpectError(
      R"({"resourceType":"Observation","valueString":")" + std::string(10u << 20, 'S') + "\"}",
      StatusCode::kResourceExhausted, {"string longer than 4096 bytes", "at valueString"}, small);

  // 300k entries against the default max_entries (200k).
  std::string big = R"({"resourceType":"Bundle","type":"collection","entry":[)";
  big.reserve(300000 * 40);
  for (int i = 0; i < 300000; ++i) {
    if (i > 0) big += ',';
    big += R"({"resource":{"resourceType":"Basic"}})";
  }
  big += "]}";
  ExpectError(big, StatusCode::kResourceExhausted,
              {"bundle of 300000 entries exceeds the limit of 200000 at entry"});

  ParseLimits two;
  two.max_entries = 2;
  EXPECT_TRUE(ParseFhir(Bundle(R"({"resource":{"resourceType":"Condition"}},)"
                               R"({"resource":{"resourceType":"Claim"}})"),
                        two)
                  .ok());
  // Entries made from one resource count too.
  ExpectError(
      Bundle(R"({"resource":{"resourceType":"FamilyMemberHistory","condition":[{},{},{}]}})"),
      StatusCode::kResourceExhausted, {"more than 2 entries", "condition[2]"}, two);
  ExpectError(R"({"resourceType":"FamilyMemberHistory","condition":[{},{},{}]})",
              StatusCode::kResourceExhausted, {"more than 2 entries"}, two);
}

TEST(FhirReaderHostile, BadNoteData) {
  const std::string tag =
      R"("meta":{"tag":[{"system":"http://medvault.invalid/fhir/CodeSystem/entry-kind","code":"note"}]})";
  ExpectError(R"({"resourceType":"DocumentReference",)" + tag +
                  R"(,"content":[{"attachment":{"data":"SECRET-PATIENT-TEXT"}}]})",
              StatusCode::kInvalidArgument, {"invalid base64", "at content[0].attachment.data"});
  // "/w==" is the single byte 0xff: not UTF-8.
  ExpectError(R"({"resourceType":"DocumentReference",)" + tag +
                  R"(,"content":[{"attachment":{"data":"/w=="}}]})",
              StatusCode::kInvalidArgument, {"not valid UTF-8", "at content[0].attachment.data"});
  // Without the tag it is a document reference; the data is not ours to read.
  EXPECT_TRUE(
      ParseFhir(
          R"({"resourceType":"DocumentReference","content":[{"attachment":{"data":"/w=="}}]})")
          .ok());
}

}  // namespace
}  // namespace medvault::interop

namespace medvault::interop {
namespace {

// Issue 15: a DiagnosticReport keeps its results and an Observation its
// members, as the entry ids of what they point at: by fullUrl (Synthea),
// Type/id or an absolute URL ending in one; a logical reference by our
// identifier names its id; anything else stays as written.
TEST(FhirReader, ReportResultsAndObservationMembersAreEntryIds) {
  const std::string bundle = R"({"resourceType": "Bundle", "type": "collection", "entry": [
    {"fullUrl": "urn:uuid:hdl", "resource": {"resourceType": "Observation", "id": "hdl",
      "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "2085-9"}]},
      "valueQuantity": {"value": 52, "unit": "mg/dL"}}},
    {"resource": {"resourceType": "Observation", "id": "ldl", "status": "final",
      "code": {"coding": [{"system": "http://loinc.org", "code": "13457-7"}]},
      "bodySite": {"coding": [{"system": "http://snomed.info/sct", "code": "368209003"}]},
      "method": {"text": "By hand"}}},
    {"fullUrl": "urn:uuid:report", "resource": {"resourceType": "DiagnosticReport",
      "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "57698-3"}]},
      "result": [{"reference": "urn:uuid:hdl"}, {"reference": "https://ehr.example/fhir/Observation/ldl"},
                 {"reference": "Observation/missing"}, {"display": "no reference"}]}},
    {"fullUrl": "urn:uuid:bp", "resource": {"resourceType": "Observation", "status": "final",
      "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
      "hasMember": [{"reference": "Observation/ldl"},
        {"identifier": {"system": "urn:oid:2.25.302458611271113451148352563394416437817",
                        "value": "held-back"}}]}},
    {"fullUrl": "urn:uuid:enc", "resource": {"resourceType": "Encounter", "status": "finished",
      "class": {"code": "AMB"}, "reasonCode": [{"coding": [{"system": "http://snomed.info/sct",
      "code": "38341003", "display": "Hypertension"}]}]}}
  ]})";
  const ClinicalDocument doc = MustParse(bundle);
  const Entry* report = FindEntry(doc, "urn:uuid:report");
  ASSERT_NE(report, nullptr);
  EXPECT_EQ(report->kind, EntryKind::kResult);
  EXPECT_EQ(report->members,
            (std::vector<std::string>{"urn:uuid:hdl", "Observation/ldl", "Observation/missing"}));
  const Entry* bp = FindEntry(doc, "urn:uuid:bp");
  ASSERT_NE(bp, nullptr);
  EXPECT_EQ(bp->members, (std::vector<std::string>{"Observation/ldl", "held-back"}));
  const Entry* ldl = FindEntry(doc, "Observation/ldl");
  ASSERT_NE(ldl, nullptr);
  EXPECT_EQ(ldl->body_site.code, "368209003");
  EXPECT_EQ(ldl->method.display, "By hand");
  const Entry* enc = FindEntry(doc, "urn:uuid:enc");
  ASSERT_NE(enc, nullptr);
  ASSERT_EQ(enc->reasons.size(), 1u);
  EXPECT_EQ(enc->reasons[0].code, "38341003");
  // Both exports give back the same members.
  for (Result<std::string> out : {WriteFhirBundle(doc), WriteCcda(doc)}) {
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    Result<ClinicalDocument> again = ParseDocument(*out);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(CanonicalString(*again), CanonicalString(doc));
  }
}

// Hostile member lists: wrong types are refused with where they are.
TEST(FhirReader, MalformedMembersAreRefused) {
  ExpectError(R"({"resourceType": "Observation", "hasMember": [42]})", StatusCode::kInvalidArgument,
              {"hasMember"});
  ExpectError(R"({"resourceType": "DiagnosticReport", "result": {"reference": "x"}})",
              StatusCode::kInvalidArgument, {"result"});
  ExpectError(R"({"resourceType": "Encounter", "reasonCode": ["x"]})", StatusCode::kInvalidArgument,
              {"reasonCode"});
  // Embedded bytes that are not base64, in an attachment, a report's
  // presentedForm or our extension: refused, naming where.
  ExpectError(
      R"({"resourceType": "DocumentReference", "content": [{"attachment": {"data": "%%%"}}]})",
      StatusCode::kInvalidArgument, {"content[0].attachment.data", "base64"});
  ExpectError(R"({"resourceType": "DiagnosticReport", "presentedForm": [{"data": "@@"}]})",
              StatusCode::kInvalidArgument, {"presentedForm[0].data", "base64"});
  ExpectError(
      R"({"resourceType": "Observation", "extension": [{"url": "http://medvault.invalid/fhir/StructureDefinition/entry-data", "valueBase64Binary": "!!"}]})",
      StatusCode::kInvalidArgument, {"extension[0]", "base64"});
  // Over the cap: the first kMaxLinks members are kept, the rest stay in
  // the original.
  std::string many = R"({"resourceType": "Observation", "hasMember": [)";
  for (size_t i = 0; i < kMaxLinks + 10; ++i) {
    many +=
        std::string(i ? "," : "") + R"({"reference": "Observation/m)" + std::to_string(i) + "\"}";
  }
  many += "]}";
  const ClinicalDocument doc = MustParse(many);
  ASSERT_EQ(doc.entries.size(), 1u);
  EXPECT_EQ(doc.entries[0].members.size(), kMaxLinks);
}

}  // namespace
}  // namespace medvault::interop

namespace medvault::interop {
namespace {

// Issue 15: CarePlan and Goal stay CarePlan and Goal, MedicationStatement
// stays a statement; a care plan's inline activities become planned entries
// it names as members, and come back as its activities.
TEST(FhirReader, CarePlansGoalsAndStatementsKeepTheirForm) {
  const std::string bundle = R"({"resourceType": "Bundle", "type": "collection", "entry": [
    {"fullUrl": "urn:uuid:cp", "resource": {"resourceType": "CarePlan", "status": "active",
      "intent": "plan", "category": [{"coding": [{"system": "http://snomed.info/sct",
      "code": "698360004", "display": "Diabetes self management plan"}]}],
      "period": {"start": "2020-01-01"},
      "activity": [{"detail": {"code": {"coding": [{"system": "http://snomed.info/sct",
        "code": "160670007", "display": "Diabetic diet"}]}, "status": "in-progress"}},
        {"reference": {"reference": "urn:uuid:sr"}}]}},
    {"fullUrl": "urn:uuid:sr", "resource": {"resourceType": "ServiceRequest", "status": "active",
      "intent": "order", "code": {"text": "HbA1c in 3 months"}}},
    {"fullUrl": "urn:uuid:goal", "resource": {"resourceType": "Goal", "lifecycleStatus": "active",
      "description": {"text": "HbA1c below 7%"}, "target": [{"dueDate": "2020-06-01"}]}},
    {"fullUrl": "urn:uuid:ms", "resource": {"resourceType": "MedicationStatement",
      "status": "active", "medicationCodeableConcept": {"coding": [{"system":
      "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "860975"}]},
      "effectiveDateTime": "2020-01-02"}},
    {"fullUrl": "urn:uuid:mr", "resource": {"resourceType": "MedicationRequest",
      "status": "active", "intent": "plan", "medicationCodeableConcept": {"text": "Metformin"}}}
  ]})";
  const ClinicalDocument doc = MustParse(bundle);
  const Entry* cp = FindEntry(doc, "urn:uuid:cp");
  ASSERT_NE(cp, nullptr);
  EXPECT_EQ(cp->mood, "care-plan");
  EXPECT_EQ(cp->members, (std::vector<std::string>{"urn:uuid:cp#activity-1", "urn:uuid:sr"}));
  const Entry* diet = FindEntry(doc, "urn:uuid:cp#activity-1");
  ASSERT_NE(diet, nullptr);
  EXPECT_EQ(diet->kind, EntryKind::kPlan);
  EXPECT_EQ(diet->code.code, "160670007");
  EXPECT_EQ(diet->status, "in-progress");
  EXPECT_EQ(FindEntry(doc, "urn:uuid:sr")->mood, "order");
  EXPECT_EQ(FindEntry(doc, "urn:uuid:goal")->mood, "goal");
  EXPECT_EQ(FindEntry(doc, "urn:uuid:goal")->end, "2020-06-01");
  EXPECT_EQ(FindEntry(doc, "urn:uuid:ms")->mood, "event");
  EXPECT_EQ(FindEntry(doc, "urn:uuid:mr")->mood, "plan");

  Result<std::string> out = WriteFhirBundle(doc);
  ASSERT_TRUE(out.ok());
  const nlohmann::json written = nlohmann::json::parse(*out);
  std::map<std::string, std::string> type_of;  // medvault id -> resource type
  for (const nlohmann::json& e : written["entry"]) {
    type_of[e["resource"]["identifier"][0]["value"]] = e["resource"]["resourceType"];
    if (e["resource"]["resourceType"] == "CarePlan") {
      EXPECT_EQ(e["resource"]["activity"].size(), 2u);
    }
  }
  EXPECT_EQ(type_of["urn:uuid:cp"], "CarePlan");
  EXPECT_EQ(type_of["urn:uuid:goal"], "Goal");
  EXPECT_EQ(type_of["urn:uuid:ms"], "MedicationStatement");
  EXPECT_EQ(type_of["urn:uuid:mr"], "MedicationRequest");
  EXPECT_EQ(type_of["urn:uuid:cp#activity-1"], "ServiceRequest");
  for (Result<std::string> again_text : {WriteFhirBundle(doc), WriteCcda(doc)}) {
    ASSERT_TRUE(again_text.ok()) << again_text.status().ToString();
    Result<ClinicalDocument> again = ParseDocument(*again_text);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(CanonicalString(*again), CanonicalString(doc));
  }
}

// The entry limit reached by a report or care plan whose members wait for
// resolution: the document is refused cleanly; nothing resolves into an
// entry that was never added.
TEST(FhirReader, MembersPastTheEntryLimitAreRefusedCleanly) {
  ParseLimits limits;
  limits.max_entries = 2;
  ExpectError(Bundle(R"(
    {"fullUrl":"urn:uuid:a","resource":{"resourceType":"Observation"}},
    {"fullUrl":"urn:uuid:b","resource":{"resourceType":"Observation"}},
    {"fullUrl":"urn:uuid:r","resource":{"resourceType":"DiagnosticReport","result":[{"reference":"urn:uuid:a"}]}}
  )"),
              StatusCode::kResourceExhausted, {"entries"}, limits);
  ExpectError(Bundle(R"(
    {"fullUrl":"urn:uuid:a","resource":{"resourceType":"Observation"}},
    {"fullUrl":"urn:uuid:cp","resource":{"resourceType":"CarePlan","activity":[
      {"detail":{"code":{"text":"walk"}}},{"detail":{"code":{"text":"diet"}}}]}}
  )"),
              StatusCode::kResourceExhausted, {"entries"}, limits);
}

}  // namespace
}  // namespace medvault::interop
