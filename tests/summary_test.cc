#include "exchange/summary.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "crypto/crypto.h"
#include "store/store.h"
#include "test_util.h"

namespace medvault::exchange {
namespace {

using medvault::testing::TempDir;
using nlohmann::json;

// A record as a clinic would send it: two problems (one resolved), an
// allergy with its reaction, a medication, two HbA1c results (one high)
// and a blood pressure.
json Bundle(const std::string& bundle_id) {
  json b = json::parse(R"({
    "resourceType": "Bundle", "type": "collection",
    "entry": [
      {"fullUrl": "urn:uuid:p1", "resource": {
        "resourceType": "Patient", "id": "p1",
        "identifier": [{"system": "http://hospital.example/mrn", "value": "MRN-55",
                        "type": {"coding": [{"code": "MR"}]}},
                       {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-12-3456",
                        "type": {"coding": [{"code": "SS"}]}}],
        "name": [{"use": "official", "family": "Lovelace", "given": ["Ada", "King"]}],
        "gender": "female", "birthDate": "1955-12-10"}},
      {"fullUrl": "urn:uuid:c1", "resource": {
        "resourceType": "Condition", "id": "c1",
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006",
                             "display": "Type 2 diabetes mellitus"},
                            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"}]},
        "subject": {"reference": "urn:uuid:p1"}, "onsetDateTime": "2015-03-01"}},
      {"fullUrl": "urn:uuid:c2", "resource": {
        "resourceType": "Condition", "id": "c2",
        "clinicalStatus": {"coding": [{"code": "resolved"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "195662009",
                             "display": "Acute viral pharyngitis"}]},
        "subject": {"reference": "urn:uuid:p1"}, "onsetDateTime": "2021-02-01",
        "abatementDateTime": "2021-02-10"}},
      {"fullUrl": "urn:uuid:a1", "resource": {
        "resourceType": "AllergyIntolerance", "id": "a1",
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "category": ["medication"],
        "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                             "code": "7980", "display": "Penicillin G"}]},
        "patient": {"reference": "urn:uuid:p1"},
        "reaction": [{"manifestation": [{"coding": [{"system": "http://snomed.info/sct",
                       "code": "247472004", "display": "Hives"}]}], "severity": "moderate"}]}},
      {"fullUrl": "urn:uuid:m1", "resource": {
        "resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system":
          "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "860975",
          "display": "Metformin 500 MG Oral Tablet"}]},
        "subject": {"reference": "urn:uuid:p1"}, "authoredOn": "2015-03-02"}},
      {"fullUrl": "urn:uuid:o1", "resource": {
        "resourceType": "Observation", "id": "o1", "status": "final",
        "category": [{"coding": [{"code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4",
                             "display": "Hemoglobin A1c/Hemoglobin.total in Blood"}]},
        "subject": {"reference": "urn:uuid:p1"}, "effectiveDateTime": "2020-01-15",
        "valueQuantity": {"value": 6.1, "unit": "%", "system": "http://unitsofmeasure.org",
                          "code": "%"}}},
      {"fullUrl": "urn:uuid:o2", "resource": {
        "resourceType": "Observation", "id": "o2", "status": "final",
        "category": [{"coding": [{"code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4",
                             "display": "Hemoglobin A1c/Hemoglobin.total in Blood"}]},
        "subject": {"reference": "urn:uuid:p1"}, "effectiveDateTime": "2020-07-15",
        "valueQuantity": {"value": 7.40, "unit": "%", "system": "http://unitsofmeasure.org",
                          "code": "%"},
        "referenceRange": [{"low": {"value": 4, "unit": "%"}, "high": {"value": 5.6, "unit": "%"}}],
        "interpretation": [{"coding": [{"system":
          "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H"}]}]}},
      {"fullUrl": "urn:uuid:bp1", "resource": {
        "resourceType": "Observation", "id": "bp1", "status": "final",
        "category": [{"coding": [{"code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9",
                             "display": "Blood pressure panel"}]},
        "subject": {"reference": "urn:uuid:p1"},
        "effectiveDateTime": "2020-05-01T08:00:00Z",
        "component": [
          {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
           "valueQuantity": {"value": 142, "unit": "mm[Hg]"}},
          {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
           "valueQuantity": {"value": 91, "unit": "mm[Hg]"}}]}}
    ]})");
  b["id"] = bundle_id;
  return b;
}

class SummaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::InitCrypto().ok());
    ASSERT_TRUE(crypto::CreateKeyFile(dir_.path() / "platform.kek").ok());
    keys_ = std::move(crypto::OpenFileKeyProvider(dir_.path() / "platform.kek")).value();
    metadata_ = std::move(store::OpenSqliteMetadataStore(dir_.path() / "metadata.db")).value();
    objects_ = std::move(store::OpenFileObjectStore(dir_.path() / "objects")).value();
    records_ =
        std::move(record::CreateRecordService(keys_.get(), metadata_.get(), objects_.get(), {}))
            .value();
  }

  std::string ImportBundle(const json& b, const std::string& patient = "") {
    ImportOptions o;
    o.patient_id = patient;
    // JSON numbers go in as the source wrote them ("7.40"): put the text back.
    std::string text = b.dump();
    if (size_t at = text.find("\"value\":7.4}"); at != std::string::npos) {
      text.replace(at, 12, "\"value\":7.40}");
    }
    auto in = Importer(records_.get()).Import(text, o, "clinic-feed");
    EXPECT_TRUE(in.ok()) << in.status().ToString();
    return in.ok() ? in->patient_id : std::string();
  }

  void Reading(const std::string& patient, int sys, int dia, const std::string& time) {
    record::SegmentWrite w;
    w.kind = record::ContentKind::kJson;
    w.content = ToBytes(
        json{{"systolic", sys}, {"diastolic", dia}, {"unit", "mmHg"}, {"time", time}}.dump());
    ASSERT_TRUE(
        records_->WriteSegment(patient, "physical-signs/blood-pressure", w, "acct-patient").ok());
  }

  json Summary(const std::string& patient, const ExportFilter& filter = AllowAll,
               const SummaryOptions& options = {}) {
    auto s = SummarizeRecord(*records_, patient, filter, options);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) {
      return json();
    }
    json parsed = json::parse(*s, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << "the summary is valid JSON";
    return parsed;
  }

  static bool AllowAll(const ExportQuestion&) { return true; }

  static const json* Group(const json& summary, const std::string& code) {
    for (const json& g : summary["observations"]) {
      if (g.contains("code") && g["code"].value("code", "") == code) {
        return &g;
      }
    }
    return nullptr;
  }

  TempDir dir_;
  std::unique_ptr<crypto::KeyProvider> keys_;
  std::unique_ptr<store::MetadataStore> metadata_;
  std::unique_ptr<store::ObjectStore> objects_;
  std::unique_ptr<record::RecordService> records_;
};

TEST_F(SummaryTest, SectionsReadLikeARecord) {
  const std::string pid = ImportBundle(Bundle("b1"));
  ASSERT_FALSE(pid.empty());
  json s = Summary(pid);

  EXPECT_EQ(s["patient"]["name"], "Ada King Lovelace");  // the registered name
  EXPECT_EQ(s["patient"]["birth_date"], "1955-12-10");
  EXPECT_EQ(s["patient"]["medical_record_numbers"], json::array({"MRN-55"}));
  EXPECT_EQ(s.dump().find("999-12-3456"), std::string::npos) << "no social security number";

  // Problems: the active one first, the resolved one after and marked so.
  const json& problems = s["sections"]["problems"];
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0]["name"], "Type 2 diabetes mellitus");
  EXPECT_TRUE(problems[0]["active"].get<bool>());
  EXPECT_EQ(problems[0]["code"]["system_name"], "SNOMED CT");
  EXPECT_EQ(problems[0]["code"]["translations"][0]["code"], "E11.9");
  EXPECT_EQ(problems[0]["code"]["translations"][0]["system_name"], "ICD-10-CM");
  EXPECT_EQ(problems[1]["name"], "Acute viral pharyngitis");
  EXPECT_FALSE(problems[1]["active"].get<bool>());
  EXPECT_EQ(problems[1]["end"], "2021-02-10");

  const json& allergies = s["sections"]["allergies"];
  ASSERT_EQ(allergies.size(), 1u);
  EXPECT_EQ(allergies[0]["name"], "Penicillin G");
  EXPECT_EQ(allergies[0]["reactions"], json::array({"Hives"}));
  EXPECT_EQ(allergies[0]["severity"], "moderate");
  EXPECT_EQ(allergies[0]["category"], "medication");

  const json& meds = s["sections"]["medications"];
  ASSERT_EQ(meds.size(), 1u);
  EXPECT_EQ(meds[0]["name"], "Metformin 500 MG Oral Tablet");
  EXPECT_TRUE(meds[0]["active"].get<bool>());
  for (const char* empty : {"immunizations", "procedures", "encounters", "plans", "notes"}) {
    EXPECT_TRUE(s["sections"][empty].is_array() && s["sections"][empty].empty()) << empty;
  }

  // Results: one group per test, newest first, the high one flagged.
  const json* a1c = Group(s, "4548-4");
  ASSERT_NE(a1c, nullptr);
  EXPECT_EQ((*a1c)["kind"], "result");
  EXPECT_TRUE((*a1c)["numeric"].get<bool>());
  EXPECT_EQ((*a1c)["unit"], "%");
  EXPECT_EQ((*a1c)["count"], 2);
  EXPECT_EQ((*a1c)["abnormal_count"], 1);
  ASSERT_EQ((*a1c)["points"].size(), 2u);
  EXPECT_EQ((*a1c)["points"][0]["value"], "7.40");  // as written, never through a double
  EXPECT_EQ((*a1c)["points"][0]["text"], "7.40 %");
  EXPECT_EQ((*a1c)["points"][0]["flag"], "H");
  EXPECT_EQ((*a1c)["points"][0]["flag_text"], "High");
  EXPECT_TRUE((*a1c)["points"][0]["abnormal"].get<bool>());
  EXPECT_EQ((*a1c)["points"][0]["reference_range"], "4-5.6 %");
  EXPECT_EQ((*a1c)["points"][1]["value"], "6.1");
  EXPECT_FALSE((*a1c)["points"][1]["abnormal"].get<bool>());

  // Every item and point names the document it came from, and the
  // document is listed with its title.
  ASSERT_EQ(s["documents"].size(), 1u);
  const std::string key = s["documents"][0]["key"];
  EXPECT_EQ(s["documents"][0]["format"], "fhir");
  EXPECT_EQ(problems[0]["documents"], json::array({key}));
  EXPECT_EQ((*a1c)["points"][0]["documents"], json::array({key}));

  // Nothing of the storage reaches the reader.
  const std::string text = s.dump();
  for (const char* storage :
       {"health-status/", "laboratory/results", "source-documents", "medvault-entries", "sha256"}) {
    EXPECT_EQ(text.find(storage), std::string::npos) << storage;
  }
  EXPECT_EQ(s["counts"]["items"], 4);
  EXPECT_EQ(s["counts"]["observations"], 3);
}

TEST_F(SummaryTest, HomeReadingsJoinTheImportedSeries) {
  const std::string pid = ImportBundle(Bundle("b1"));
  Reading(pid, 150, 95, "2026-11-20T07:30:00Z");
  Reading(pid, 128, 79, "2026-11-21T07:30:00Z");
  json s = Summary(pid);
  const json* bp = Group(s, "85354-9");
  ASSERT_NE(bp, nullptr);
  EXPECT_EQ((*bp)["kind"], "vital-sign");
  EXPECT_TRUE((*bp)["numeric"].get<bool>());
  ASSERT_EQ((*bp)["count"], 3);
  const json& newest = (*bp)["points"][0];
  EXPECT_EQ(newest["time"], "2026-11-21T07:30:00Z");
  EXPECT_EQ(newest["recorded_by"], "acct-patient");
  EXPECT_FALSE(newest.contains("documents"));
  ASSERT_EQ(newest["components"].size(), 2u);
  EXPECT_EQ(newest["components"][0]["value"], "128");
  EXPECT_EQ(newest["text"], "128/79 mmHg");
  EXPECT_EQ((*bp)["unit"], "mmHg");  // the imported mm[Hg] and the portal's mmHg are one unit
  // The imported one is the oldest and comes from its document.
  EXPECT_EQ((*bp)["points"][2]["time"], "2020-05-01T08:00:00Z");
  EXPECT_TRUE((*bp)["points"][2].contains("documents"));

  SummaryOptions two;
  two.max_points_per_group = 2;
  json capped = Summary(pid, AllowAll, two);
  const json* cbp = Group(capped, "85354-9");
  ASSERT_NE(cbp, nullptr);
  EXPECT_EQ((*cbp)["count"], 3);
  EXPECT_EQ((*cbp)["points"].size(), 2u);

  // Years of home readings: only the newest are read, the rest counted.
  for (int i = 0; i < 6; ++i) {
    Reading(pid, 120 + i, 80, "2026-12-0" + std::to_string(1 + i) + "T07:30:00Z");
  }
  auto parts = ReadRecordParts(*records_, pid, AllowAll, 2);
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->unread_readings.size(), 1u);
  EXPECT_EQ(parts->unread_readings[0].second, 6u) << "8 readings, 2 read";
  capped = Summary(pid, AllowAll, two);
  cbp = Group(capped, "85354-9");
  ASSERT_NE(cbp, nullptr);
  EXPECT_EQ((*cbp)["count"], 9) << "8 readings and the imported one";
  ASSERT_EQ((*cbp)["points"].size(), 2u);
  EXPECT_EQ((*cbp)["points"][0]["time"], "2026-12-06T07:30:00Z");
  EXPECT_EQ((*cbp)["points"][1]["time"], "2026-12-05T07:30:00Z");
  EXPECT_EQ(capped["counts"]["readings_not_summarised"], 0);
}

TEST_F(SummaryTest, TheSameEntryFromTwoDocumentsIsOneItem) {
  const std::string pid = ImportBundle(Bundle("b1"));
  ImportBundle(Bundle("b2"), pid);
  json s = Summary(pid);
  ASSERT_EQ(s["documents"].size(), 2u);
  ASSERT_EQ(s["sections"]["problems"].size(), 2u);
  EXPECT_EQ(s["sections"]["problems"][0]["documents"].size(), 2u);
  EXPECT_EQ((*Group(s, "4548-4"))["count"], 2);
}

TEST_F(SummaryTest, RefusedSegmentsAndDemographicsStayOut) {
  const std::string pid = ImportBundle(Bundle("b1"));
  size_t asked_demographics = 0;
  auto filter = [&](const ExportQuestion& q) {
    if (q.demographics) {
      ++asked_demographics;
      return false;
    }
    const std::string path(q.path);
    return path.rfind("laboratory/", 0) != 0 && path.rfind("personal-information/", 0) != 0;
  };
  json s = Summary(pid, filter);
  EXPECT_EQ(asked_demographics, 1u);
  EXPECT_EQ(Group(s, "4548-4"), nullptr);
  EXPECT_NE(Group(s, "85354-9"), nullptr);
  EXPECT_FALSE(s["patient"].contains("name"));
  EXPECT_EQ(s.dump().find("Lovelace"), std::string::npos);
  EXPECT_GE(s["counts"]["segments_withheld"].get<int>(), 2);
  EXPECT_EQ(s["sections"]["problems"].size(), 2u);

  // Without an imported identity, the record's own demographics, when permitted.
  auto bare = records_->CreatePatient({"Grace", "Hopper", "1906-12-09", "female", "M-9"}, "t");
  ASSERT_TRUE(bare.ok());
  json named = Summary(bare->patient_id);
  EXPECT_EQ(named["patient"]["name"], "Grace Hopper");
  EXPECT_EQ(named["counts"]["items"], 0);
  json anonymous =
      Summary(bare->patient_id, [](const ExportQuestion& q) { return !q.demographics; });
  EXPECT_FALSE(anonymous["patient"].contains("name"));
}

TEST_F(SummaryTest, ABrokenSegmentIsCountedAndTheRestSummarised) {
  const std::string pid = ImportBundle(Bundle("b1"));
  record::SegmentWrite w;
  w.kind = record::ContentKind::kJson;
  w.content = ToBytes(json{{"format", interop::kEntriesFormat}, {"entries", "x"}}.dump());
  ASSERT_TRUE(
      records_->WriteSegment(pid, "health-status/allergies/d0000000000000002", w, "x").ok());
  json s = Summary(pid);
  EXPECT_EQ(s["counts"]["segments_unreadable"], 1);
  EXPECT_EQ(s["sections"]["problems"].size(), 2u);
  EXPECT_EQ(s["sections"]["allergies"].size(), 1u);

  EXPECT_EQ(SummarizeRecord(*records_, std::string(32, 'f'), AllowAll).status().code(),
            StatusCode::kNotFound);
}

// Anyone who may write a segment may store any JSON object there: such
// bodies never break the summary, never pass for a document or the
// patient's identity, and entries written by hand into an imported
// document's place are shown as their writer's, not the document's.
TEST_F(SummaryTest, HostileBodiesNeitherBreakNorImpersonate) {
  const std::string pid = ImportBundle(Bundle("b1"));
  json s = Summary(pid);
  ASSERT_EQ(s["documents"].size(), 1u);
  const std::string key = s["documents"][0]["key"];
  auto put = [&](const std::string& path, const json& body) {
    record::SegmentWrite w;
    w.kind = record::ContentKind::kJson;
    w.content = ToBytes(body.dump());
    ASSERT_TRUE(records_->WriteSegment(pid, path, w, "acct-mallory").ok()) << path;
  };
  put("personal-information/identity/x1", {{"format", 5}});
  put("health-status/problems/x2",
      {{"format", "medvault-entries/1"}, {"document", 5}, {"entries", json::array()}});
  put("source-documents/x3/header",
      {{"format", "medvault-document/1"}, {"source_format", 1}, {"header", {{"title", "Forged"}}}});
  put("health-status/allergies/x4",
      {{"format", "medvault-document/1"}, {"header", {{"title", "Also forged"}}}});
  put("health-status/medications/x5",
      {{"format", "medvault-patient/1"}, {"patient", {{"names", {{{"family", "Mallory"}}}}}}});
  // Entries written by hand at the imported document's own place.
  put("laboratory/results/" + key,
      {{"format", "medvault-entries/1"},
       {"document", key},
       {"entries",
        {{{"kind", "result"},
          {"id", "fake"},
          {"code", {{"system", "http://loinc.org"}, {"code", "4548-4"}}},
          {"start", "2021-01-01"},
          {"quantity", {{"value", "5.1"}, {"unit", "%"}}}}}}});
  s = Summary(pid);
  ASSERT_TRUE(s.is_object());
  const std::string text = s.dump();
  EXPECT_EQ(text.find("Forged"), std::string::npos);
  EXPECT_EQ(text.find("Mallory"), std::string::npos);
  EXPECT_EQ(s["documents"].size(), 1u);
  EXPECT_EQ(s["patient"]["name"], "Ada King Lovelace");
  EXPECT_GE(s["counts"]["segments_unreadable"].get<int>(), 4);
  const json* a1c = Group(s, "4548-4");
  ASSERT_NE(a1c, nullptr);
  ASSERT_EQ((*a1c)["points"].size(), 1u) << "the hand-written version replaced the import's";
  EXPECT_EQ((*a1c)["points"][0]["recorded_by"], "acct-mallory");
  EXPECT_FALSE((*a1c)["points"][0].contains("documents")) << "not credited to the lab's document";
}

// Every entry of every checked-in corpus document lands in exactly one
// section or observation group, and every item has a name.
TEST_F(SummaryTest, EveryImportedEntryIsShownOnceWithAName) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(MEDVAULT_TESTDATA_DIR) / "interop";
  size_t documents = 0;
  for (const auto& f : fs::recursive_directory_iterator(dir)) {
    const std::string ext = f.path().extension().string();
    if (!f.is_regular_file() || (ext != ".xml" && ext != ".json")) {
      continue;
    }
    std::ifstream in(f.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto parsed = interop::ParseDocument(bytes);
    if (!parsed.ok() || !parsed->has_patient) {
      continue;  // hostile samples, standalone resources
    }
    auto in_record = Importer(records_.get()).Import(bytes, {}, "corpus");
    if (!in_record.ok()) {
      continue;
    }
    ++documents;
    auto joined = Export(*records_, in_record->patient_id, interop::Format::kFhir, AllowAll);
    ASSERT_TRUE(joined.ok());
    json s = Summary(in_record->patient_id);
    // Every entry once: as an item, a point, or (a resource kept verbatim,
    // a claim, a practitioner) counted as not shown.
    const size_t shown =
        s["counts"]["items"].get<size_t>() + s["counts"]["observations"].get<size_t>();
    EXPECT_EQ(shown + s["counts"]["resources_not_shown"].get<size_t>(), joined->entries)
        << f.path();
    for (const auto& [name, items] : s["sections"].items()) {
      for (const json& item : items) {
        EXPECT_FALSE(item.value("name", "").empty()) << f.path() << " " << name;
      }
    }
    for (const json& g : s["observations"]) {
      EXPECT_FALSE(g.value("name", "").empty()) << f.path();
    }
  }
  EXPECT_GT(documents, 3u);
}

}  // namespace
}  // namespace medvault::exchange
