// ParseCcda: the corpus (shared and the checked-in subset), known answers
// from the HL7 CCD example, hostile input, and the mapping rules.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "interop/interop.h"
#include "interop/mapping.h"

namespace medvault::interop {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSecret = "SECRET-PATIENT-TEXT";

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// *.xml below dir, sorted; the stubs directory excluded.
std::vector<fs::path> CorpusFiles(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().extension() != ".xml") continue;
    const std::string parent = e.path().parent_path().filename().string();
    if (parent.find("stubs") != std::string::npos) continue;
    out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<fs::path> StubFiles(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".xml") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

const fs::path kShared = fs::path(MEDVAULT_SHARED_TESTDATA_DIR) / "ccda";
const fs::path kSubset = fs::path(MEDVAULT_TESTDATA_DIR) / "interop" / "ccda";

// Parses, checks the basics, writes, parses again and compares the
// canonical forms.
void CheckCorpusFile(const fs::path& path) {
  SCOPED_TRACE(path.filename().string());
  const std::string xml = ReadFile(path);
  Result<ClinicalDocument> doc = ParseCcda(xml);
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->source_format, Format::kCcda);
  // Every document with sections or a nonXMLBody yields entries or notes
  // (the HL7 "Close Referral" example has an empty structuredBody).
  if (xml.find("<section") != std::string::npos || xml.find("nonXMLBody") != std::string::npos) {
    EXPECT_FALSE(doc->entries.empty()) << "no entries and no note";
  }
  if (xml.find("<given") != std::string::npos) {
    ASSERT_TRUE(doc->has_patient);
    ASSERT_FALSE(doc->patient.names.empty());
    bool named = false;
    for (const HumanName& n : doc->patient.names) named = named || !n.family.empty();
    EXPECT_TRUE(named);
  }
  for (const Entry& e : doc->entries) EXPECT_FALSE(e.id.empty());
  Result<std::string> out = WriteCcda(*doc);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  Result<ClinicalDocument> again = ParseCcda(*out);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(CanonicalString(*doc), CanonicalString(*again));
}

// The stubs are not C-CDA: each is refused with a message naming why.
// (Several also fail namespace well-formedness; the first error wins.)
const std::map<std::string, std::string>& StubExpectations() {
  static const auto* m = new std::map<std::string, std::string>{
      {"Guide_Examples_Entry_Reference_2.16.840.1.113883.10.20.22.4.122_Diagnosis_Reference_"
       "Example.xml",
       "root element is not an HL7 v3 ClinicalDocument"},
      {"Guide_Examples_Entry_Reference_2.16.840.1.113883.10.20.22.4.122_Entry_Reference_Example."
       "xml",
       "undeclared namespace prefix"},
      {"Guide_Examples_US_Realm_Header_V3_2.16.840.1.113883.10.20.22.1.1_Supporting_Person_"
       "participant_Example.xml",
       "root element is not an HL7 v3 ClinicalDocument"},
      {"Guide_Examples_US_Realm_Header_V3_2.16.840.1.113883.10.20.22.1.1_US_Realm_Header_V3_"
       "Example.xml",
       "root element is not an HL7 v3 ClinicalDocument"},
      {"Health_Concerns_Health_Concerns_Link_to_Problems_Section_Health_Concerns_Link_to_"
       "Problems_Section_C-CDA2.1_.xml",
       "undeclared namespace prefix"},
      {"Health_Concerns_Health_Concerns_Link_to_Problems_Section_with_linkHTML_Health_Concerns_"
       "Link_to_Problems_Section_with_linkHTML_C-CDA2.1_.xml",
       "undeclared namespace prefix"},
      {"Referrals_-_Planned_and_Completed_Referral_Request_and_Close_Referral_with_a_Note_"
       "Intervention_Planned_Referral_and_Note_Completeting_Referral_C-CDAR2.1_.xml",
       "root element is not an HL7 v3 ClinicalDocument"},
  };
  return *m;
}

void CheckStub(const fs::path& path) {
  const std::string name = path.filename().string();
  SCOPED_TRACE(name);
  const auto it = StubExpectations().find(name);
  ASSERT_NE(it, StubExpectations().end()) << "new stub file: add its expected outcome";
  Result<ClinicalDocument> doc = ParseCcda(ReadFile(path));
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(doc.status().message().find(it->second), std::string::npos) << doc.status().message();
}

TEST(CcdaSharedCorpusTest, EveryDocumentParsesAndRoundTrips) {
  if (!fs::exists(kShared)) GTEST_SKIP() << "shared corpus absent: " << kShared;
  const std::vector<fs::path> files = CorpusFiles(kShared);
  ASSERT_GE(files.size(), 40u);
  for (const fs::path& f : files) CheckCorpusFile(f);
}

TEST(CcdaSharedCorpusTest, StubsAreRefusedWithTheirReason) {
  const fs::path dir = kShared / "hl7-c-cda-examples-stubs";
  if (!fs::exists(dir)) GTEST_SKIP() << "shared corpus absent: " << dir;
  const std::vector<fs::path> files = StubFiles(dir);
  ASSERT_EQ(files.size(), StubExpectations().size());
  for (const fs::path& f : files) CheckStub(f);
}

TEST(CcdaSubsetTest, EveryDocumentParsesAndRoundTrips) {
  const std::vector<fs::path> files = CorpusFiles(kSubset);
  ASSERT_EQ(files.size(), 4u);
  for (const fs::path& f : files) CheckCorpusFile(f);
}

TEST(CcdaSubsetTest, StubsAreRefusedWithTheirReason) {
  const std::vector<fs::path> files = StubFiles(kSubset / "stubs");
  ASSERT_EQ(files.size(), 2u);
  for (const fs::path& f : files) CheckStub(f);
}

// ---------------------------------------------------------------------------
// Known answers: the HL7 CCD example

class CcdExampleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Result<ClinicalDocument> r = ParseCcda(ReadFile(kSubset / "Documents_CCD_CCD_1_CCD.xml"));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    doc_ = new ClinicalDocument(std::move(r).value());
  }
  static void TearDownTestSuite() {
    delete doc_;
    doc_ = nullptr;
  }

  static std::vector<const Entry*> Find(EntryKind kind, std::string_view code) {
    std::vector<const Entry*> out;
    for (const Entry& e : doc_->entries) {
      if (e.kind == kind && e.code.code == code) out.push_back(&e);
    }
    return out;
  }

  static ClinicalDocument* doc_;
};
ClinicalDocument* CcdExampleTest::doc_ = nullptr;

TEST_F(CcdExampleTest, Header) {
  const DocumentHeader& h = doc_->header;
  EXPECT_EQ(h.id, "2.16.840.1.113883.19.5.99999.1^TT988");
  EXPECT_EQ(h.type, (Coding{"http://loinc.org", "34133-9", "Summary of episode note"}));
  EXPECT_EQ(h.title, "Patient Chart Summary");
  EXPECT_EQ(h.time, "2013-08-15T10:30:00-08:00");
  EXPECT_EQ(h.confidentiality, "N");
  ASSERT_EQ(h.authors.size(), 1u);
  EXPECT_EQ(h.authors[0].id, "2.16.840.1.113883.4.6^5555555555");
  EXPECT_EQ(h.authors[0].name, "Patricia Patty Primary");
  EXPECT_EQ(h.authors[0].time, "2013-08-15T10:30:00-08:00");
  EXPECT_EQ(h.custodian.id, "2.16.840.1.113883.4.6^321CX");
  EXPECT_EQ(h.custodian.organization, "Good Health HIE");
}

TEST_F(CcdExampleTest, Patient) {
  ASSERT_TRUE(doc_->has_patient);
  const PatientHeader& p = doc_->patient;
  EXPECT_EQ(p.id, "2.16.840.1.113883.4.1^444222222");
  ASSERT_EQ(p.names.size(), 2u);
  EXPECT_EQ(p.names[0].given, std::vector<std::string>{"Eve"});
  EXPECT_EQ(p.names[0].family, "Betterhalf");
  EXPECT_EQ(p.names[0].use, "official");
  EXPECT_EQ(p.names[1].family, "Everywoman");
  EXPECT_EQ(p.birth_date, "1975-05-01");
  EXPECT_EQ(p.gender, "female");
  ASSERT_EQ(p.identifiers.size(), 1u);
  EXPECT_EQ(p.identifiers[0].system, "http://hl7.org/fhir/sid/us-ssn");
  EXPECT_EQ(p.identifiers[0].value, "444222222");
  EXPECT_EQ(p.identifiers[0].type, "SS");
  ASSERT_EQ(p.addresses.size(), 1u);
  EXPECT_EQ(p.addresses[0].lines, std::vector<std::string>{"2222 Home Street"});
  EXPECT_EQ(p.addresses[0].city, "Beaverton");
  EXPECT_EQ(p.addresses[0].state, "OR");
  EXPECT_EQ(p.addresses[0].postal_code, "97867");
  EXPECT_EQ(p.addresses[0].use, "home");
  ASSERT_EQ(p.telecoms.size(), 1u);
  EXPECT_EQ(p.telecoms[0], (Telecom{"phone", "+1(555)555-2003", "home"}));
  EXPECT_EQ(p.marital_status.code, "M");
  EXPECT_EQ(p.race.code, "2106-3");
  EXPECT_EQ(p.ethnicity.code, "2186-5");
  EXPECT_EQ(p.language, "en");
  EXPECT_EQ(p.deceased, "");
}

TEST_F(CcdExampleTest, Problem) {
  const auto pneumonia = Find(EntryKind::kProblem, "233604007");
  ASSERT_EQ(pneumonia.size(), 2u);
  const Entry* p =
      pneumonia[0]->id == "10506b4d-c30a-4220-8bec-97bff9568fd1" ? pneumonia[0] : pneumonia[1];
  ASSERT_EQ(p->id, "10506b4d-c30a-4220-8bec-97bff9568fd1");
  EXPECT_EQ(p->code.system, "http://snomed.info/sct");
  EXPECT_EQ(p->code.display, "Pneumonia");
  EXPECT_EQ(p->start, "1998-03-10");
  EXPECT_EQ(p->end, "1998-03-16");
  EXPECT_EQ(p->status, "completed");
  EXPECT_EQ(Find(EntryKind::kProblem, "194828000").size(), 1u);  // angina
}

TEST_F(CcdExampleTest, BloodPressure) {
  const auto systolic = Find(EntryKind::kVitalSign, "8480-6");
  ASSERT_EQ(systolic.size(), 2u);
  const Entry* e = systolic[0]->start == "2012-09-10" ? systolic[0] : systolic[1];
  ASSERT_EQ(e->start, "2012-09-10");
  ASSERT_TRUE(e->quantity.has_value());
  EXPECT_EQ(*e->quantity, (Quantity{"132", "mm[Hg]"}));
  EXPECT_EQ(e->category, "vital-signs");
  EXPECT_EQ(e->code.system, "http://loinc.org");
  EXPECT_EQ(e->status, "completed");
}

TEST_F(CcdExampleTest, AllergyWithReactionAndSeverity) {
  const auto penicillin = Find(EntryKind::kAllergy, "70618");
  ASSERT_EQ(penicillin.size(), 1u);
  const Entry& a = *penicillin[0];
  EXPECT_EQ(a.code.system, "http://www.nlm.nih.gov/research/umls/rxnorm");
  EXPECT_EQ(a.code.display, "Penicillin");
  EXPECT_EQ(a.status, "active");
  EXPECT_EQ(a.start, "1998-05-01");
  ASSERT_EQ(a.reactions.size(), 1u);
  EXPECT_EQ(a.reactions[0].code, "422587007");              // nausea
  EXPECT_EQ(a.severity, "severe");                          // "moderate to severe" on the concern
  EXPECT_EQ(Find(EntryKind::kAllergy, "2670").size(), 1u);  // codeine
}

TEST_F(CcdExampleTest, Medication) {
  const auto albuterol = Find(EntryKind::kMedication, "573621");
  ASSERT_EQ(albuterol.size(), 1u);
  const Entry& m = *albuterol[0];
  EXPECT_EQ(m.code.system, "http://www.nlm.nih.gov/research/umls/rxnorm");
  EXPECT_EQ(m.status, "active");
  EXPECT_EQ(m.start, "2011-01-03");  // IVL_TS low; the PIVL_TS frequency is ignored
  EXPECT_EQ(m.end, "");
  ASSERT_TRUE(m.quantity.has_value());
  EXPECT_EQ(m.quantity->value, "2");
  EXPECT_EQ(m.route.code, "C38216");
}

TEST_F(CcdExampleTest, Immunizations) {
  const auto influenza = Find(EntryKind::kImmunization, "88");
  ASSERT_EQ(influenza.size(), 2u);
  EXPECT_EQ(influenza[0]->code.system, "http://hl7.org/fhir/sid/cvx");
  std::vector<std::string> statuses = {influenza[0]->status, influenza[1]->status};
  std::sort(statuses.begin(), statuses.end());
  EXPECT_EQ(statuses, (std::vector<std::string>{"completed", "not-done"}));  // negationInd
  EXPECT_EQ(Find(EntryKind::kImmunization, "33").size(), 1u);
}

TEST_F(CcdExampleTest, ResultsSocialFamilyProcedures) {
  const auto hgb = Find(EntryKind::kResult, "718-7");
  ASSERT_EQ(hgb.size(), 1u);
  EXPECT_EQ(*hgb[0]->quantity, (Quantity{"13.2", "g/dL"}));
  EXPECT_EQ(hgb[0]->category, "laboratory");
  const auto smoking = Find(EntryKind::kSocialHistory, "72166-2");
  ASSERT_EQ(smoking.size(), 1u);
  ASSERT_TRUE(smoking[0]->value_code.has_value());
  EXPECT_EQ(smoking[0]->value_code->code, "8517006");  // ex-smoker
  const auto diabetes = Find(EntryKind::kFamilyHistory, "44054006");
  ASSERT_EQ(diabetes.size(), 1u);
  EXPECT_EQ(diabetes[0]->relation.code, "FTH");
  EXPECT_EQ(Find(EntryKind::kProcedure, "73761001").size(), 1u);
  const auto plan = Find(EntryKind::kPlan, "73761001");  // planned colonoscopy (RQO)
  ASSERT_EQ(plan.size(), 1u);
}

TEST_F(CcdExampleTest, ExternalDocumentRecordedNotFetched) {
  const Entry* ref = nullptr;
  for (const Entry& e : doc_->entries) {
    if (e.kind == EntryKind::kDocumentReference) ref = &e;
  }
  ASSERT_NE(ref, nullptr);
  EXPECT_EQ(ref->id, "b50b7910-7ffb-4f4c-bbe4-177ed68cbbf3");
  EXPECT_EQ(ref->url, "AdvanceDirective.b50b7910.pdf");
  EXPECT_EQ(ref->media_type, "application/pdf");
}

TEST_F(CcdExampleTest, UnmappedSectionsKeepTheirNarrativeAndStatements) {
  const Entry* insurance = nullptr;
  for (const Entry& e : doc_->entries) {
    if (e.kind == EntryKind::kNote && e.code.code == "48768-6") insurance = &e;
  }
  ASSERT_NE(insurance, nullptr);
  EXPECT_EQ(insurance->text.rfind("INSURANCE PROVIDERS\n", 0), 0u) << insurance->text;
  EXPECT_NE(insurance->text.find("Good Health Insurance"), std::string::npos);
  // Their statements are kept as statements of the section, not only in
  // the original: the payer's coverage and the functional status.
  const auto& kept = doc_->kept_in_original_only;
  EXPECT_EQ(std::find(kept.begin(), kept.end(), "section 48768-6"), kept.end());
  EXPECT_EQ(std::find(kept.begin(), kept.end(), "section 47420-5"), kept.end());
  size_t payers = 0, functional = 0;
  for (const Entry& e : doc_->entries) {
    if (e.kind != EntryKind::kStatement) continue;
    EXPECT_EQ(e.section.system, "http://loinc.org");
    payers += e.section.code == "48768-6" ? 1 : 0;
    functional += e.section.code == "47420-5" ? 1 : 0;
  }
  EXPECT_GT(payers, 0u);
  EXPECT_GT(functional, 0u);
}

TEST(CcdaUnstructuredTest, Base64TextPlainIsDecoded) {
  Result<ClinicalDocument> doc =
      ParseCcda(ReadFile(
          kSubset / "Unstructured_CDA_with_Embedded_Text_plain_CDA_Embedded_Text_Plain_Surgical_"
                    "Consult.xml"));
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  ASSERT_EQ(doc->entries.size(), 1u);
  const Entry& note = doc->entries[0];
  EXPECT_EQ(note.kind, EntryKind::kNote);
  EXPECT_EQ(note.media_type, "text/plain");
  EXPECT_EQ(note.text.rfind("LOCAL TITLE: SURGICAL CONSULT", 0), 0u);
  EXPECT_EQ(note.id, "gen:note:1");
  EXPECT_EQ(doc->patient.names.at(0).family, "Damore");
}

// ---------------------------------------------------------------------------
// Small documents

std::string Doc(std::string_view body, std::string_view header_extra = "") {
  std::string s =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<ClinicalDocument xmlns=\"urn:hl7-org:v3\" "
      "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:sdtc=\"urn:hl7-org:sdtc\">\n"
      "<id root=\"1.2.3\" extension=\"doc1\"/>\n"
      "<code code=\"34133-9\" codeSystem=\"2.16.840.1.113883.6.1\"/>\n"
      "<title>T</title>\n";
  s += header_extra;
  s += "<component><structuredBody>\n";
  s += body;
  s += "</structuredBody></component></ClinicalDocument>\n";
  return s;
}

std::string Section(std::string_view template_root, std::string_view code,
                    std::string_view content) {
  std::string s = "<component><section>";
  if (!template_root.empty()) s += "<templateId root=\"" + std::string(template_root) + "\"/>";
  s += "<code code=\"" + std::string(code) + "\" codeSystem=\"2.16.840.1.113883.6.1\"/>";
  s += std::string(content);
  s += "</section></component>\n";
  return s;
}

ClinicalDocument MustParse(const std::string& xml, const ParseLimits& limits = {}) {
  Result<ClinicalDocument> r = ParseCcda(xml, limits);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : ClinicalDocument{};
}

void ExpectRoundTrip(const ClinicalDocument& doc) {
  Result<std::string> out = WriteCcda(doc);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  Result<ClinicalDocument> again = ParseCcda(*out);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(CanonicalString(doc), CanonicalString(*again));
}

TEST(CcdaReaderTest, NamespacePrefixIsNotSignificant) {
  const std::string xml =
      "<cda:ClinicalDocument xmlns:cda=\"urn:hl7-org:v3\">"
      "<cda:title>Prefixed</cda:title><cda:recordTarget><cda:patientRole>"
      "<cda:patient><cda:name><cda:given>Ann</cda:given><cda:family>Lee</cda:family></cda:name>"
      "</cda:patient></cda:patientRole></cda:recordTarget></cda:ClinicalDocument>";
  const ClinicalDocument doc = MustParse(xml);
  EXPECT_EQ(doc.header.title, "Prefixed");
  ASSERT_EQ(doc.patient.names.size(), 1u);
  EXPECT_EQ(doc.patient.names[0].family, "Lee");
}

TEST(CcdaReaderTest, ElementsInOtherNamespacesAreIgnored) {
  const std::string xml = Doc("", "<x:title xmlns:x=\"urn:other\">Wrong</x:title>");
  EXPECT_EQ(MustParse(xml).header.title, "T");
}

TEST(CcdaReaderTest, ProblemWithNullFlavorAndOriginalTextReference) {
  const std::string problems =
      "<text><table><tr><td ID=\"p1\">  Chronic\n   cough  </td></tr></table></text>"
      "<entry><act classCode=\"ACT\" moodCode=\"EVN\"><statusCode code=\"active\"/>"
      "<entryRelationship typeCode=\"SUBJ\"><observation classCode=\"OBS\" moodCode=\"EVN\">"
      "<id root=\"1.2.3.4\" extension=\"p-1\"/>"
      "<effectiveTime><low value=\"20120806\"/><high nullFlavor=\"UNK\"/></effectiveTime>"
      "<value xsi:type=\"CD\" nullFlavor=\"OTH\"><originalText><reference value=\"#p1\"/>"
      "</originalText></value></observation></entryRelationship></act></entry>"
      "<entry><act classCode=\"ACT\" moodCode=\"EVN\"><statusCode code=\"completed\"/>"
      "<entryRelationship typeCode=\"SUBJ\"><observation classCode=\"OBS\" moodCode=\"EVN\">"
      "<value xsi:type=\"CD\" code=\"1\" codeSystem=\"2.16.840.1.113883.6.96\">"
      "<originalText><reference value=\"Not an ID at all\"/></originalText></value>"
      "<entryRelationship typeCode=\"REFR\"><observation classCode=\"OBS\" moodCode=\"EVN\">"
      "<templateId root=\"2.16.840.1.113883.10.20.22.4.6\"/><code code=\"33999-4\"/>"
      "<value xsi:type=\"CD\" code=\"413322009\"/></observation></entryRelationship>"
      "</observation></entryRelationship></act></entry>";
  const ClinicalDocument doc =
      MustParse(Doc(Section("2.16.840.1.113883.10.20.22.2.5.1", "11450-4", problems)));
  ASSERT_EQ(doc.entries.size(), 2u);
  const Entry& a = doc.entries[0];
  EXPECT_EQ(a.kind, EntryKind::kProblem);
  EXPECT_EQ(a.id, "1.2.3.4^p-1");
  EXPECT_TRUE(a.code.empty());
  EXPECT_EQ(a.text, "Chronic cough");  // resolved in the narrative, white space collapsed
  EXPECT_EQ(a.start, "2012-08-06");
  EXPECT_EQ(a.end, "");
  EXPECT_EQ(a.status, "active");
  const Entry& b = doc.entries[1];
  EXPECT_EQ(b.id, "gen:problem:2");
  EXPECT_EQ(b.code.code, "1");
  EXPECT_EQ(b.text, "");            // free text in reference/@value: ignored
  EXPECT_EQ(b.status, "resolved");  // the status observation wins over the concern
  ExpectRoundTrip(doc);
}

// Translations are kept (issue 15): every coded <translation> beside the
// code, in order; when the code itself is null, its first coded translation
// becomes the code; an observation whose code is not LOINC takes a LOINC
// translation as its code (as the FHIR reader chooses), the source's own
// code first among its translations. Both writers carry them, and a second
// pass reads the same.
TEST(CcdaReaderTest, TranslationsAreKeptAndWrittenBack) {
  const std::string problems =
      "<entry><act classCode=\"ACT\" moodCode=\"EVN\"><statusCode code=\"active\"/>"
      "<entryRelationship typeCode=\"SUBJ\"><observation classCode=\"OBS\" moodCode=\"EVN\">"
      "<value xsi:type=\"CD\" code=\"38341003\" codeSystem=\"2.16.840.1.113883.6.96\" "
      "displayName=\"Hypertension\">"
      "<translation code=\"I10\" codeSystem=\"2.16.840.1.113883.6.90\" displayName=\"HTN\"/>"
      "<translation nullFlavor=\"UNK\"/>"
      "<translation code=\"401.9\" codeSystem=\"2.16.840.1.113883.6.103\"/>"
      "<translation code=\"38341003\" codeSystem=\"2.16.840.1.113883.6.96\"/>"
      "</value></observation></entryRelationship></act></entry>"
      "<entry><act classCode=\"ACT\" moodCode=\"EVN\"><statusCode code=\"active\"/>"
      "<entryRelationship typeCode=\"SUBJ\"><observation classCode=\"OBS\" moodCode=\"EVN\">"
      "<value xsi:type=\"CD\" nullFlavor=\"OTH\">"
      "<translation code=\"E11.9\" codeSystem=\"2.16.840.1.113883.6.90\"/>"
      "<translation code=\"44054006\" codeSystem=\"2.16.840.1.113883.6.96\"/>"
      "</value></observation></entryRelationship></act></entry>";
  const std::string results =
      "<entry><organizer classCode=\"BATTERY\" moodCode=\"EVN\"><statusCode code=\"completed\"/>"
      "<component><observation classCode=\"OBS\" moodCode=\"EVN\">"
      "<templateId root=\"2.16.840.1.113883.10.20.22.4.2\"/>"
      "<code code=\"HGB\" codeSystem=\"1.2.3.999\" displayName=\"Haemoglobin\">"
      "<translation code=\"718-7\" codeSystem=\"2.16.840.1.113883.6.1\"/></code>"
      "<statusCode code=\"completed\"/><effectiveTime value=\"20200102\"/>"
      "<value xsi:type=\"PQ\" value=\"13.2\" unit=\"g/dL\"/></observation></component>"
      "</organizer></entry>";
  const ClinicalDocument doc =
      MustParse(Doc(Section("2.16.840.1.113883.10.20.22.2.5.1", "11450-4", problems) +
                    Section("2.16.840.1.113883.10.20.22.2.3.1", "30954-2", results)));
  ASSERT_EQ(doc.entries.size(), 3u);
  const Coding& htn = doc.entries[0].code;
  EXPECT_EQ(htn.system, "http://snomed.info/sct");
  EXPECT_EQ(htn.code, "38341003");
  ASSERT_EQ(htn.translations.size(), 2u) << "the null one and the repeat of the code are not kept";
  EXPECT_EQ(htn.translations[0], (Coding{"http://hl7.org/fhir/sid/icd-10-cm", "I10", "HTN"}));
  EXPECT_EQ(htn.translations[1].code, "401.9");
  const Coding& dm = doc.entries[1].code;
  EXPECT_EQ(dm.code, "E11.9") << "a null code takes its first coded translation";
  ASSERT_EQ(dm.translations.size(), 1u);
  EXPECT_EQ(dm.translations[0].code, "44054006");
  const Coding& hgb = doc.entries[2].code;
  EXPECT_EQ(hgb.system, "http://loinc.org");
  EXPECT_EQ(hgb.code, "718-7");
  EXPECT_EQ(hgb.display, "Haemoglobin");
  ASSERT_EQ(hgb.translations.size(), 1u);
  EXPECT_EQ(hgb.translations[0], (Coding{"urn:oid:1.2.3.999", "HGB", "Haemoglobin"}));

  ExpectRoundTrip(doc);
  Result<std::string> ccda = WriteCcda(doc);
  ASSERT_TRUE(ccda.ok());
  EXPECT_NE(ccda->find("<translation code=\"I10\" codeSystem=\"2.16.840.1.113883.6.90\""),
            std::string::npos);
  Result<std::string> fhir = WriteFhirBundle(doc);
  ASSERT_TRUE(fhir.ok()) << fhir.status().ToString();
  Result<ClinicalDocument> from_fhir = ParseFhir(*fhir);
  ASSERT_TRUE(from_fhir.ok()) << from_fhir.status().ToString();
  ASSERT_EQ(from_fhir->entries.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    bool found = false;
    for (const Entry& e : from_fhir->entries) found = found || e.code == doc.entries[i].code;
    EXPECT_TRUE(found) << "entry " << i << " lost or changed its codes through FHIR";
  }
}

// A result's interpretationCode (high, low) is its coded value when it has
// none: written back as an interpretationCode, and as FHIR
// Observation.interpretation.
TEST(CcdaReaderTest, InterpretationCodesAreKept) {
  const std::string results =
      "<entry><observation classCode=\"OBS\" moodCode=\"EVN\">"
      "<templateId root=\"2.16.840.1.113883.10.20.22.4.2\"/>"
      "<code code=\"2345-7\" codeSystem=\"2.16.840.1.113883.6.1\"/>"
      "<statusCode code=\"completed\"/><effectiveTime value=\"20200102\"/>"
      "<value xsi:type=\"PQ\" value=\"182\" unit=\"mg/dL\"/>"
      "<interpretationCode nullFlavor=\"NI\"/>"
      "<interpretationCode code=\"H\" codeSystem=\"2.16.840.1.113883.5.83\" displayName=\"High\"/>"
      "</observation></entry>";
  const ClinicalDocument doc =
      MustParse(Doc(Section("2.16.840.1.113883.10.20.22.2.3.1", "30954-2", results)));
  ASSERT_EQ(doc.entries.size(), 1u);
  ASSERT_TRUE(doc.entries[0].value_code.has_value());
  EXPECT_EQ(
      *doc.entries[0].value_code,
      (Coding{"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "H", "High"}));
  EXPECT_EQ(doc.entries[0].quantity, (Quantity{"182", "mg/dL"}));
  ExpectRoundTrip(doc);
  Result<std::string> ccda = WriteCcda(doc);
  ASSERT_TRUE(ccda.ok());
  EXPECT_NE(ccda->find("<interpretationCode code=\"H\" codeSystem=\"2.16.840.1.113883.5.83\""),
            std::string::npos);
  Result<std::string> fhir = WriteFhirBundle(doc);
  ASSERT_TRUE(fhir.ok());
  EXPECT_NE(fhir->find("\"interpretation\":[{\"coding\":[{\"system\":"
                       "\"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation\","
                       "\"code\":\"H\""),
            std::string::npos)
      << *fhir;
}

// A result's reference range is kept (its text and its bounds), written back
// in both formats, and one neither carries naturally (a problem's, a bound
// that is not a decimal) round-trips through medvault's own places.
TEST(CcdaReaderTest, ReferenceRangesAreKept) {
  const std::string results =
      "<entry><observation classCode=\"OBS\" moodCode=\"EVN\">"
      "<templateId root=\"2.16.840.1.113883.10.20.22.4.2\"/>"
      "<code code=\"4548-4\" codeSystem=\"2.16.840.1.113883.6.1\"/>"
      "<statusCode code=\"completed\"/><effectiveTime value=\"20200102\"/>"
      "<value xsi:type=\"PQ\" value=\"7.40\" unit=\"%\"/>"
      "<referenceRange><observationRange><text> 4.0 - 5.6 </text>"
      "<value xsi:type=\"IVL_PQ\"><low value=\"4.0\" unit=\"%\"/>"
      "<high value=\"5.6\" unit=\"%\"/></value></observationRange></referenceRange>"
      "<referenceRange><observationRange><text>second, ignored</text></observationRange>"
      "</referenceRange>"
      "</observation></entry>"
      "<entry><observation classCode=\"OBS\" moodCode=\"EVN\">"
      "<templateId root=\"2.16.840.1.113883.10.20.22.4.2\"/>"
      "<code code=\"2160-0\" codeSystem=\"2.16.840.1.113883.6.1\"/>"
      "<value xsi:type=\"PQ\" value=\"1.1\" unit=\"mg/dL\"/>"
      "<referenceRange><observationRange><value xsi:type=\"IVL_PQ\">"
      "<high value=\"1.3\" unit=\"mg/dL\"/></value></observationRange></referenceRange>"
      "<referenceRange><observationRange/></referenceRange>"
      "</observation></entry>";
  ClinicalDocument doc =
      MustParse(Doc(Section("2.16.840.1.113883.10.20.22.2.3.1", "30954-2", results)));
  ASSERT_EQ(doc.entries.size(), 2u);
  ASSERT_TRUE(doc.entries[0].reference_range.has_value());
  EXPECT_EQ(doc.entries[0].reference_range->text, "4.0 - 5.6");
  EXPECT_EQ(doc.entries[0].reference_range->low, (Quantity{"4.0", "%"}));
  EXPECT_EQ(doc.entries[0].reference_range->high, (Quantity{"5.6", "%"}));
  ASSERT_TRUE(doc.entries[1].reference_range.has_value());
  EXPECT_FALSE(doc.entries[1].reference_range->low.has_value());
  EXPECT_EQ(doc.entries[1].reference_range->high, (Quantity{"1.3", "mg/dL"}));
  ExpectRoundTrip(doc);
  Result<std::string> fhir = WriteFhirBundle(doc);
  ASSERT_TRUE(fhir.ok());
  EXPECT_NE(fhir->find("\"referenceRange\":[{\"low\":{\"value\":4.0,\"unit\":\"%\"}"),
            std::string::npos)
      << *fhir;
  Result<ClinicalDocument> back = ParseFhir(*fhir);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(CanonicalString(doc), CanonicalString(*back));

  // Where no natural element carries it: a problem's range, a bound that is
  // not a decimal, a padded text.
  Entry odd;
  odd.kind = EntryKind::kProblem;
  odd.id = "p-1";
  odd.code = Coding{"http://snomed.info/sct", "38341003", "Hypertension"};
  odd.reference_range = ReferenceRange{Quantity{"<5", "x"}, std::nullopt, " padded "};
  Entry lab = doc.entries[1];
  lab.id = "r-2";
  lab.reference_range = ReferenceRange{std::nullopt, Quantity{"1,3", "mg/dL"}, ""};
  Entry bare = doc.entries[1];
  bare.id = "r-3";
  bare.reference_range = ReferenceRange{Quantity{"", ""}, Quantity{"2", ""}, ""};  // no "low":{}
  doc.entries.push_back(odd);
  doc.entries.push_back(lab);
  doc.entries.push_back(bare);
  ExpectRoundTrip(doc);
  fhir = WriteFhirBundle(doc);
  ASSERT_TRUE(fhir.ok());
  EXPECT_EQ(fhir->find("\"low\":{}"), std::string::npos) << "FHIR refuses an empty Quantity";
  back = ParseFhir(*fhir);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(CanonicalString(doc), CanonicalString(*back));
  // The model's JSON: an empty range is none, unknown members refused.
  Result<Entry> empty = EntryFromJson(
      nlohmann::json{{"kind", "result"}, {"reference_range", nlohmann::json::object()}});
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->reference_range.has_value());
  EXPECT_FALSE(
      EntryFromJson(nlohmann::json{{"kind", "result"}, {"reference_range", {{"middle", "1"}}}})
          .ok());
}

// The allergy observation's own code (its type) is kept as the entry's
// coded value unless it is the one the category implies: both round trip,
// and the kept one reaches the FHIR export.
TEST(CcdaReaderTest, AllergyTypeCodesAreKept) {
  auto allergy = [](const std::string& type_code, const std::string& substance) {
    return "<entry><act classCode=\"ACT\" moodCode=\"EVN\"><statusCode code=\"active\"/>"
           "<entryRelationship typeCode=\"SUBJ\"><observation classCode=\"OBS\" "
           "moodCode=\"EVN\"><code code=\"ASSERTION\" codeSystem=\"2.16.840.1.113883.5.4\"/>"
           "<value xsi:type=\"CD\" code=\"" +
           type_code +
           "\" codeSystem=\"2.16.840.1.113883.6.96\"/>"
           "<participant typeCode=\"CSM\"><participantRole classCode=\"MANU\">"
           "<playingEntity classCode=\"MMAT\"><code code=\"" +
           substance +
           "\" codeSystem=\"2.16.840.1.113883.6.88\"/></playingEntity></participantRole>"
           "</participant></observation></entryRelationship></act></entry>";
  };
  const ClinicalDocument doc = MustParse(Doc(Section(
      "2.16.840.1.113883.10.20.22.2.6.1", "48765-2",
      allergy("419199007", "7980") + allergy("418471000", "1191") + allergy("59037007", "2670"))));
  ASSERT_EQ(doc.entries.size(), 3u);
  ASSERT_TRUE(doc.entries[0].value_code.has_value()) << "allergy to substance: kept";
  EXPECT_EQ(doc.entries[0].value_code->code, "419199007");
  EXPECT_EQ(doc.entries[0].category, "");
  EXPECT_FALSE(doc.entries[1].value_code.has_value()) << "implied by the category";
  EXPECT_EQ(doc.entries[1].category, "food");
  ASSERT_TRUE(doc.entries[2].value_code.has_value()) << "drug intolerance: kept";
  EXPECT_EQ(doc.entries[2].category, "medication");
  ExpectRoundTrip(doc);
  Result<std::string> fhir = WriteFhirBundle(doc);
  ASSERT_TRUE(fhir.ok());
  EXPECT_NE(fhir->find("\"419199007\""), std::string::npos);
  EXPECT_NE(fhir->find("\"59037007\""), std::string::npos);
  Result<ClinicalDocument> back = ParseFhir(*fhir);
  ASSERT_TRUE(back.ok());
  Result<std::string> ccda_again = WriteCcda(*back);
  ASSERT_TRUE(ccda_again.ok());
  Result<ClinicalDocument> again = ParseCcda(*ccda_again);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(CanonicalString(*back), CanonicalString(*again)) << "FHIR -> C-CDA -> model";
}

// Sections are recognised by a templateId (R1.1 and R2.1 ids, the sections
// holding the same statements), else by their LOINC code; an unknown section
// keeps its narrative as a note and its statements as statements of that
// section (EntryKind::kStatement).
TEST(CcdaReaderTest, SectionsAreRecognisedByTemplateIdThenCode) {
  const std::string med =
      "<text>Aspirin</text><entry><substanceAdministration classCode=\"SBADM\" "
      "moodCode=\"EVN\"><consumable><manufacturedProduct><manufacturedMaterial>"
      "<code code=\"1191\" codeSystem=\"2.16.840.1.113883.6.88\"/></manufacturedMaterial>"
      "</manufacturedProduct></consumable></substanceAdministration></entry>";
  struct Case {
    const char* root;
    const char* code;
    bool read;
  };
  for (const Case& c : {Case{"2.16.840.1.113883.10.20.22.2.1", "x", true},    // R1.1 id
                        Case{"2.16.840.1.113883.10.20.22.2.1.1", "x", true},  // R2.1 id
                        Case{"2.16.840.1.113883.10.20.22.2.44", "x", true},   // admission
                        Case{"2.16.840.1.113883.10.20.22.2.38", "x", true},   // administered
                        Case{"", "10160-0", true},                            // code only
                        Case{"", "29549-3", true},                            // another code
                        Case{"1.2.3.4", "42346-7", true},  // unknown id, known code
                        Case{"2.16.840.1.113883.10.20.22.2.1", "11450-4", true},  // id wins
                        Case{"1.2.3.4", "99999-9", false}, Case{"", "", false}}) {
    SCOPED_TRACE(std::string(c.root) + " " + c.code);
    const ClinicalDocument doc = MustParse(Doc(Section(c.root, c.code, med)));
    if (c.read) {
      ASSERT_EQ(doc.entries.size(), 1u);
      EXPECT_EQ(doc.entries[0].kind, EntryKind::kMedication);
      EXPECT_EQ(doc.entries[0].code.code, "1191");
      EXPECT_TRUE(doc.kept_in_original_only.empty());
    } else {
      ASSERT_EQ(doc.entries.size(), 2u);
      EXPECT_EQ(doc.entries[0].kind, EntryKind::kStatement);
      EXPECT_EQ(doc.entries[0].code.code, "1191");  // the drug of a substance administration
      EXPECT_EQ(doc.entries[0].section.code, c.code);
      EXPECT_EQ(doc.entries[1].kind, EntryKind::kNote);
      EXPECT_EQ(doc.entries[1].text, "Aspirin");
      EXPECT_TRUE(doc.kept_in_original_only.empty());
    }
  }
  // A statement a section does not read stays in the original.
  const ClinicalDocument wrong =
      MustParse(Doc(Section("2.16.840.1.113883.10.20.22.2.22.1", "46240-8", med)));
  EXPECT_EQ(wrong.kept_in_original_only.size(), 1u);
}

TEST(CcdaReaderTest, ValueTypesAreDispatchedOnXsiType) {
  auto obs = [](std::string_view code, std::string_view value) {
    return "<entry><observation classCode=\"OBS\" moodCode=\"EVN\"><code code=\"" +
           std::string(code) + "\" codeSystem=\"2.16.840.1.113883.6.1\"/>" + std::string(value) +
           "</observation></entry>";
  };
  std::string entries;
  entries += obs("pq", "<value xsi:type=\"PQ\" value=\"5.50\" unit=\"mg\"/>");
  entries +=
      obs("cd", "<value xsi:type=\"CD\" code=\"8517006\" codeSystem=\"2.16.840.1.113883.6.96\"/>");
  entries += obs("ce", "<value xsi:type=\"CE\" code=\"x\"/>");
  entries += obs("co", "<value xsi:type=\"CO\" code=\"y\"/>");
  entries += obs("st", "<value xsi:type=\"ST\">  some text </value>");
  entries += obs("ed", "<value xsi:type=\"ED\"><reference value=\"#n1\"/></value>");
  entries += obs("int", "<value xsi:type=\"INT\" value=\"3\"/>");
  entries += obs("real", "<value xsi:type=\"REAL\" value=\"1E-22\"/>");
  entries += obs("bl", "<value xsi:type=\"BL\" value=\"true\"/>");
  entries += obs("ivlpq",
                 "<value xsi:type=\"IVL_PQ\"><low value=\"1\" unit=\"mg\"/>"
                 "<high value=\"2\" unit=\"mg\"/></value>");
  entries += obs("ts", "<value xsi:type=\"TS\" value=\"20200102\"/>");
  entries +=
      obs("prefixed", "<value xsi:type=\"hl7:PQ\" xmlns:hl7=\"urn:hl7-org:v3\" value=\"7\"/>");
  entries += obs("null", "<value xsi:type=\"PQ\" nullFlavor=\"NI\"/>");
  entries +=
      obs("cdtext",
          "<value xsi:type=\"CD\" nullFlavor=\"OTH\"><originalText>Free</originalText></value>");
  const std::string section =
      "<text><paragraph ID=\"n1\">Narrative value</paragraph></text>" + entries;
  const ClinicalDocument doc =
      MustParse(Doc(Section("2.16.840.1.113883.10.20.22.2.3.1", "30954-2", section)));
  std::map<std::string, const Entry*> by;
  for (const Entry& e : doc.entries) by[e.code.code] = &e;
  ASSERT_EQ(by.size(), 14u);
  EXPECT_EQ(*by["pq"]->quantity, (Quantity{"5.50", "mg"}));
  EXPECT_EQ(by["cd"]->value_code->code, "8517006");
  EXPECT_EQ(by["cd"]->value_code->system, "http://snomed.info/sct");
  EXPECT_EQ(by["ce"]->value_code->code, "x");
  EXPECT_EQ(by["co"]->value_code->code, "y");
  EXPECT_EQ(by["st"]->value_text, "some text");
  EXPECT_EQ(by["ed"]->value_text, "Narrative value");
  EXPECT_EQ(*by["int"]->quantity, (Quantity{"3", ""}));
  EXPECT_EQ(*by["real"]->quantity, (Quantity{"1E-22", ""}));
  EXPECT_EQ(by["bl"]->value_text, "true");
  EXPECT_EQ(by["ivlpq"]->value_text, "1 mg - 2 mg");
  EXPECT_EQ(by["ts"]->value_text, "2020-01-02");
  EXPECT_EQ(*by["prefixed"]->quantity, (Quantity{"7", ""}));
  EXPECT_FALSE(by["null"]->quantity.has_value());
  EXPECT_FALSE(by["cdtext"]->value_code.has_value());
  EXPECT_EQ(by["cdtext"]->value_text, "Free");
  for (const Entry& e : doc.entries) EXPECT_EQ(e.category, "laboratory");
  ExpectRoundTrip(doc);
}

TEST(CcdaReaderTest, MedicationTimesIgnoreFrequenciesAndSloppyTimesAreDropped) {
  const std::string meds =
      "<entry><substanceAdministration classCode=\"SBADM\" moodCode=\"EVN\">"
      "<statusCode code=\"ACTIVE\"/>"
      "<effectiveTime xsi:type=\"PIVL_TS\"><period value=\"6\" unit=\"h\"/></effectiveTime>"
      "<effectiveTime xsi:type=\"EIVL_TS\"><event code=\"AC\"/></effectiveTime>"
      "<effectiveTime xsi:type=\"SXCM_TS\" value=\"20990101\"/>"
      "<effectiveTime xsi:type=\"IVL_TS\"><low value=\"20110103\"/><high value=\"2011-13-45\"/>"
      "</effectiveTime>"
      "<routeCode code=\"C38288\" codeSystem=\"2.16.840.1.113883.3.26.1.1\"/>"
      "<doseQuantity value=\"1\" unit=\"mg\"/>"
      "<consumable><manufacturedProduct><manufacturedMaterial>"
      "<code code=\"197380\" codeSystem=\"2.16.840.1.113883.6.88\"/>"
      "</manufacturedMaterial></manufacturedProduct></consumable>"
      "</substanceAdministration></entry>"
      "<entry><substanceAdministration classCode=\"SBADM\" moodCode=\"EVN\" negationInd=\"true\">"
      "<consumable><manufacturedProduct><manufacturedMaterial><code nullFlavor=\"NA\"/>"
      "</manufacturedMaterial></manufacturedProduct></consumable>"
      "</substanceAdministration></entry>";
  const ClinicalDocument doc =
      MustParse(Doc(Section("2.16.840.1.113883.10.20.22.2.1.1", "10160-0", meds)));
  ASSERT_EQ(doc.entries.size(), 1u);  // the negated one ("no medications") is skipped
  const Entry& m = doc.entries[0];
  EXPECT_EQ(m.kind, EntryKind::kMedication);
  EXPECT_EQ(m.status, "active");
  EXPECT_EQ(m.start, "2011-01-03");
  EXPECT_EQ(m.end, "");  // impossible date: dropped, not an error
  EXPECT_EQ(*m.quantity, (Quantity{"1", "mg"}));
  EXPECT_EQ(m.route.system, "http://ncimeta.nci.nih.gov");
  EXPECT_EQ(m.code.system, "http://www.nlm.nih.gov/research/umls/rxnorm");
  ExpectRoundTrip(doc);
}

TEST(CcdaReaderTest, NegatedAllergyLeavesTheNarrativeAsANote) {
  const std::string allergies =
      "<title>Allergies</title><text>No known allergies</text>"
      "<entry><act classCode=\"ACT\" moodCode=\"EVN\"><statusCode code=\"active\"/>"
      "<entryRelationship typeCode=\"SUBJ\"><observation classCode=\"OBS\" moodCode=\"EVN\" "
      "negationInd=\"true\"><value xsi:type=\"CD\" code=\"419199007\"/>"
      "</observation></entryRelationship></act></entry>";
  const ClinicalDocument doc =
      MustParse(Doc(Section("2.16.840.1.113883.10.20.22.2.6.1", "48765-2", allergies)));
  ASSERT_EQ(doc.entries.size(), 1u);
  EXPECT_EQ(doc.entries[0].kind, EntryKind::kNote);
  EXPECT_EQ(doc.entries[0].text, "Allergies\nNo known allergies");
  EXPECT_EQ(doc.entries[0].code.code, "48765-2");
  EXPECT_TRUE(doc.kept_in_original_only.empty());
}

TEST(CcdaReaderTest, AllergyCategoryReactionsSeverity) {
  const std::string allergies =
      "<entry><act classCode=\"ACT\" moodCode=\"EVN\"><statusCode code=\"completed\"/>"
      "<entryRelationship typeCode=\"SUBJ\"><observation classCode=\"OBS\" moodCode=\"EVN\">"
      "<id root=\"5.6.7\"/><value xsi:type=\"CD\" code=\"414285001\"/>"
      "<participant typeCode=\"CSM\"><participantRole><playingEntity>"
      "<code code=\"256349002\" codeSystem=\"2.16.840.1.113883.6.96\"/><name>Peanut</name>"
      "</playingEntity></participantRole></participant>"
      "<entryRelationship typeCode=\"MFST\" inversionInd=\"true\"><observation classCode=\"OBS\" "
      "moodCode=\"EVN\"><value xsi:type=\"CD\" code=\"39579001\" "
      "codeSystem=\"2.16.840.1.113883.6.96\"/>"
      "<entryRelationship typeCode=\"SUBJ\"><observation classCode=\"OBS\" moodCode=\"EVN\">"
      "<code code=\"SEV\"/><value xsi:type=\"CD\" code=\"6736007\"/></observation>"
      "</entryRelationship></observation></entryRelationship>"
      "</observation></entryRelationship></act></entry>";
  const ClinicalDocument doc =
      MustParse(Doc(Section("", "48765-2", allergies)));  // by code: no templateId
  ASSERT_EQ(doc.entries.size(), 1u);
  const Entry& a = doc.entries[0];
  EXPECT_EQ(a.kind, EntryKind::kAllergy);
  EXPECT_EQ(a.id, "5.6.7");
  EXPECT_EQ(a.category, "food");
  EXPECT_EQ(a.code.code, "256349002");
  EXPECT_EQ(a.text, "Peanut");
  ASSERT_EQ(a.reactions.size(), 1u);
  EXPECT_EQ(a.reactions[0].code, "39579001");
  EXPECT_EQ(a.severity, "moderate");  // from the reaction (R2.1 style)
  EXPECT_EQ(a.status, "completed");
  ExpectRoundTrip(doc);
}

TEST(CcdaReaderTest, PlanMoodsFamilyHistoryAndNestedSections) {
  const std::string plan =
      "<entry><act moodCode=\"INT\"><code code=\"a\"/></act></entry>"
      "<entry><observation moodCode=\"RQO\"><code code=\"b\"/></observation></entry>"
      "<entry><encounter moodCode=\"APT\"><code code=\"c\"/></encounter></entry>"
      "<entry><procedure moodCode=\"EVN\"><code code=\"done-already\"/></procedure></entry>"
      "<entry><substanceAdministration moodCode=\"INT\"><doseQuantity value=\"2\"/>"
      "<consumable><manufacturedProduct><manufacturedMaterial><code code=\"d\"/>"
      "</manufacturedMaterial></manufacturedProduct></consumable></substanceAdministration>"
      "</entry>";
  const std::string family =
      "<entry><organizer classCode=\"CLUSTER\" moodCode=\"EVN\"><subject><relatedSubject>"
      "<code code=\"MTH\" codeSystem=\"2.16.840.1.113883.5.111\"/></relatedSubject></subject>"
      "<component><observation><value xsi:type=\"CD\" code=\"f1\"/></observation></component>"
      "<component><observation><value xsi:type=\"CD\" code=\"f2\"/></observation></component>"
      "</organizer></entry>";
  const std::string nested =
      Section("", "99999-9", Section("2.16.840.1.113883.10.20.22.2.15", "x", family));
  const ClinicalDocument doc =
      MustParse(Doc(Section("2.16.840.1.113883.10.20.22.2.10", "18776-5", plan) + nested));
  std::map<std::string, const Entry*> by;
  for (const Entry& e : doc.entries) by[e.code.code] = &e;
  EXPECT_EQ(by.count("done-already"), 0u);
  for (const char* c : {"a", "b", "c", "d"}) {
    ASSERT_EQ(by.count(c), 1u) << c;
    EXPECT_EQ(by[c]->kind, EntryKind::kPlan) << c;
  }
  EXPECT_EQ(*by["d"]->quantity, (Quantity{"2", ""}));
  ASSERT_EQ(by.count("f2"), 1u);
  EXPECT_EQ(by["f2"]->kind, EntryKind::kFamilyHistory);
  EXPECT_EQ(by["f2"]->relation.code, "MTH");
  EXPECT_EQ(by["f2"]->relation.system, "http://terminology.hl7.org/CodeSystem/v3-RoleCode");
  ExpectRoundTrip(doc);
}

TEST(CcdaReaderTest, EntryIds) {
  const std::string procs =
      "<entry><procedure><id root=\"1.2.3\" extension=\"x\"/><code code=\"1\"/></procedure>"
      "</entry>"
      "<entry><procedure><id nullFlavor=\"NI\"/><id root=\"AAAAAAAA-1111-2222-3333-444444444444\"/>"
      "<code code=\"2\"/></procedure></entry>"
      "<entry><procedure><id root=\"2.25.302458611271113451148352563394416437817\" "
      "extension=\"Procedure/abc\"/><code code=\"3\"/></procedure></entry>"
      "<entry><procedure><code code=\"4\"/></procedure></entry>"
      "<entry><procedure><code code=\"5\"/></procedure></entry>";
  const ClinicalDocument doc =
      MustParse(Doc(Section("2.16.840.1.113883.10.20.22.2.7.1", "47519-4", procs)));
  ASSERT_EQ(doc.entries.size(), 5u);
  EXPECT_EQ(doc.entries[0].id, "1.2.3^x");
  EXPECT_EQ(doc.entries[1].id, "AAAAAAAA-1111-2222-3333-444444444444");
  EXPECT_EQ(doc.entries[2].id, "Procedure/abc");
  EXPECT_EQ(doc.entries[3].id, "gen:procedure:4");
  EXPECT_EQ(doc.entries[4].id, "gen:procedure:5");
  ExpectRoundTrip(doc);
}

TEST(CcdaReaderTest, PatientMappings) {
  const std::string header =
      "<recordTarget><patientRole>"
      "<id root=\"2.16.840.1.113883.19.5\" extension=\"MRN-1\"/>"
      "<id root=\"2.16.840.1.113883.4.1\" extension=\"999-00-1234\"/>"
      "<id nullFlavor=\"UNK\"/>"
      "<addr use=\"WP\"><streetAddressLine>1 A St</streetAddressLine>"
      "<streetAddressLine>Suite 2</streetAddressLine><city>X</city></addr>"
      "<addr nullFlavor=\"UNK\"/>"
      "<telecom use=\"MC\" value=\"tel: +1-555-0100\"/><telecom value=\"mailto:a@b.example\"/>"
      "<telecom value=\"fax:+1-555-0101\" use=\"WP\"/><telecom value=\"https://x.example/p\"/>"
      "<telecom value=\"555-0102\"/>"
      "<patient><name use=\"L\"><prefix>Dr.</prefix><given>A</given><given>B</given>"
      "<family>C</family><suffix>Jr</suffix></name><name use=\"P\"><given>Al</given></name>"
      "<administrativeGenderCode code=\"UN\"/><birthTime value=\"19800102030405\"/>"
      "<sdtc:deceasedInd value=\"true\"/><sdtc:deceasedTime value=\"20200304\"/>"
      "<languageCommunication><languageCode code=\"es-MX\"/></languageCommunication>"
      "</patient></patientRole></recordTarget>";
  const ClinicalDocument doc = MustParse(Doc("", header));
  const PatientHeader& p = doc.patient;
  EXPECT_EQ(p.id, "2.16.840.1.113883.19.5^MRN-1");
  ASSERT_EQ(p.identifiers.size(), 2u);
  EXPECT_EQ(p.identifiers[0], (Identifier{"urn:oid:2.16.840.1.113883.19.5", "MRN-1", ""}));
  EXPECT_EQ(p.identifiers[1].type, "SS");
  ASSERT_EQ(p.addresses.size(), 1u);
  EXPECT_EQ(p.addresses[0].use, "work");
  EXPECT_EQ(p.addresses[0].lines, (std::vector<std::string>{"1 A St", "Suite 2"}));
  ASSERT_EQ(p.telecoms.size(), 5u);
  EXPECT_EQ(p.telecoms[0], (Telecom{"phone", "+1-555-0100", "mobile"}));
  EXPECT_EQ(p.telecoms[1], (Telecom{"email", "a@b.example", ""}));
  EXPECT_EQ(p.telecoms[2], (Telecom{"fax", "+1-555-0101", "work"}));
  EXPECT_EQ(p.telecoms[3], (Telecom{"url", "https://x.example/p", ""}));
  EXPECT_EQ(p.telecoms[4], (Telecom{"", "555-0102", ""}));
  ASSERT_EQ(p.names.size(), 2u);
  EXPECT_EQ(p.names[0], (HumanName{{"A", "B"}, "C", "official"}));
  EXPECT_EQ(p.names[1], (HumanName{{"Al"}, "", "nickname"}));
  EXPECT_EQ(p.gender, "other");
  EXPECT_EQ(p.birth_date, "1980-01-02");
  EXPECT_EQ(p.deceased, "2020-03-04");
  EXPECT_EQ(p.language, "es-MX");
  ExpectRoundTrip(doc);
}

TEST(CcdaReaderTest, DeviceAuthorAndGenderCodes) {
  const std::string header =
      "<recordTarget><patientRole><patient><administrativeGenderCode nullFlavor=\"UNK\"/>"
      "</patient></patientRole></recordTarget>"
      "<author><time value=\"2020\"/><assignedAuthor><id root=\"9.9\"/>"
      "<assignedAuthoringDevice><softwareName>EHR 1.0</softwareName></assignedAuthoringDevice>"
      "<representedOrganization><name>Clinic</name></representedOrganization>"
      "</assignedAuthor></author>";
  const ClinicalDocument doc = MustParse(Doc("", header));
  EXPECT_EQ(doc.patient.gender, "unknown");
  ASSERT_EQ(doc.header.authors.size(), 1u);
  EXPECT_EQ(doc.header.authors[0], (Party{"9.9", "EHR 1.0", "Clinic", "2020"}));
  ExpectRoundTrip(doc);
}

TEST(CcdaReaderTest, StylesheetsAndLinksAreNotFetched) {
  // A stylesheet and references to places that do not exist: the parse does
  // not try them (it would fail or hang otherwise).
  std::string xml = Doc(
      Section("", "51848-0",
              "<title>Assessment</title><text><linkHtml href=\"http://127.0.0.1:1/x\">x</linkHtml>"
              "<renderMultiMedia referencedObject=\"m\"/></text>"));
  xml.insert(xml.find('\n') + 1,
             "<?xml-stylesheet type=\"text/xsl\" href=\"http://127.0.0.1:1/cda.xsl\"?>\n"
             "<?xml-stylesheet type=\"text/xsl\" href=\"file:///nonexistent/cda.xsl\"?>\n");
  const ClinicalDocument doc = MustParse(xml);
  ASSERT_EQ(doc.entries.size(), 1u);
  EXPECT_EQ(doc.entries[0].text, "Assessment\nx");
}

TEST(CcdaReaderTest, UnstructuredPdfReference) {
  const std::string xml =
      "<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><component><nonXMLBody>"
      "<text mediaType=\"application/pdf\"><reference value=\"UD_sample.pdf\"/></text>"
      "</nonXMLBody></component></ClinicalDocument>";
  const ClinicalDocument doc = MustParse(xml);
  ASSERT_EQ(doc.entries.size(), 1u);
  EXPECT_EQ(doc.entries[0].kind, EntryKind::kNote);
  EXPECT_EQ(doc.entries[0].media_type, "application/pdf");
  EXPECT_EQ(doc.entries[0].url, "UD_sample.pdf");
  EXPECT_EQ(doc.entries[0].text, "");
  EXPECT_FALSE(doc.has_patient);
  ExpectRoundTrip(doc);
}

TEST(CcdaReaderTest, ParsesConcurrently) {
  const std::string xml = ReadFile(kSubset / "Documents_CCD_CCD_1_CCD.xml");
  const std::string expected = CanonicalString(MustParse(xml));
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        Result<ClinicalDocument> r = ParseCcda(xml);
        Result<ClinicalDocument> bad = ParseCcda("<x>");
        ok[static_cast<size_t>(t)] += r.ok() && CanonicalString(*r) == expected && !bad.ok();
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(ok, (std::vector<int>{5, 5, 5, 5}));
}

// ---------------------------------------------------------------------------
// Hostile input. Every case asserts the code, that the message names the
// problem, and that no document text leaks into it.

void ExpectRefused(const Result<ClinicalDocument>& r, StatusCode code, std::string_view names) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  EXPECT_NE(r.status().message().find(names), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find(kSecret), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find("root:x:0"), std::string::npos);
}

std::string Body(std::string_view text = kSecret) {
  return "<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><title>" + std::string(text) +
         "</title></ClinicalDocument>";
}

TEST(CcdaHostileTest, BillionLaughsIsRefusedQuickly) {
  std::string xml =
      "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"SECRET-PATIENT-TEXT\">\n";
  std::string prev = "lol";
  for (int i = 1; i <= 9; ++i) {
    const std::string name = "lol" + std::to_string(i);
    xml += "<!ENTITY " + name + " \"";
    for (int k = 0; k < 10; ++k) xml += "&" + prev + ";";
    xml += "\">\n";
    prev = name;
  }
  xml += "]>\n" + Body("&lol9;");
  const auto t0 = std::chrono::steady_clock::now();
  const Result<ClinicalDocument> r = ParseCcda(xml);
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  ExpectRefused(r, StatusCode::kInvalidArgument,
                "DOCTYPE and entity declarations are not accepted");
  EXPECT_NE(r.status().message().find("line 2"), std::string::npos);
  EXPECT_LT(elapsed, std::chrono::seconds(1));
}

TEST(CcdaHostileTest, ExternalEntitiesAreRefused) {
  for (const char* decl :
       {"<!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>",
        "<!DOCTYPE x [<!ENTITY xxe SYSTEM \"http://127.0.0.1:1/secret\">]>",
        "<!DOCTYPE x [<!ENTITY % p SYSTEM \"http://127.0.0.1:1/x.dtd\"> %p;]>",
        "<!DOCTYPE ClinicalDocument SYSTEM \"CDA.dtd\">",
        "<!DOCTYPE ClinicalDocument PUBLIC \"-//x//EN\" \"http://127.0.0.1:1/x.dtd\">",
        "<!doctype ClinicalDocument>", "<!ENTITY xxe SYSTEM \"file:///etc/passwd\">"}) {
    SCOPED_TRACE(decl);
    const std::string xml = "<?xml version=\"1.0\"?>\n<!-- c -->\n<?pi x?>\n" + std::string(decl) +
                            "\n" + Body("&xxe;" + std::string(kSecret));
    ExpectRefused(ParseCcda(xml), StatusCode::kInvalidArgument,
                  "DOCTYPE and entity declarations are not accepted");
  }
}

TEST(CcdaHostileTest, DoctypeInsideACommentIsJustAComment) {
  const std::string xml = "<!-- <!DOCTYPE x [<!ENTITY e \"v\">]> -->" + Body("ok");
  EXPECT_EQ(MustParse(xml).header.title, "ok");
}

TEST(CcdaHostileTest, DoctypeAfterTheRootStartIsNotWellFormed) {
  const std::string xml = "<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><!DOCTYPE x><title>" +
                          std::string(kSecret) + "</title></ClinicalDocument>";
  ExpectRefused(ParseCcda(xml), StatusCode::kInvalidArgument, "line 1, column");
}

TEST(CcdaHostileTest, DeepNestingIsRefusedQuickly) {
  std::string deep = "<ClinicalDocument xmlns=\"urn:hl7-org:v3\">";
  for (int i = 0; i < 10000; ++i) deep += "<a>";
  deep += kSecret;
  for (int i = 0; i < 10000; ++i) deep += "</a>";
  deep += "</ClinicalDocument>";
  const auto t0 = std::chrono::steady_clock::now();
  ExpectRefused(ParseCcda(deep), StatusCode::kResourceExhausted, "nested");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));

  // Below libxml2's own limit, above ours.
  std::string medium = "<ClinicalDocument xmlns=\"urn:hl7-org:v3\">";
  for (int i = 0; i < 200; ++i) medium += "<a>";
  for (int i = 0; i < 200; ++i) medium += "</a>";
  medium += "</ClinicalDocument>";
  ExpectRefused(ParseCcda(medium), StatusCode::kResourceExhausted,
                "line 1: elements nested deeper than 128 levels");
}

TEST(CcdaHostileTest, HugeAttributeAgainstTheLimits) {
  ParseLimits small;
  small.max_document_bytes = 1u << 20;
  std::string huge = "<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><title a=\"";
  huge.append(40u << 20, 'x');
  huge += "\"/></ClinicalDocument>";
  const auto t0 = std::chrono::steady_clock::now();
  ExpectRefused(ParseCcda(huge, small), StatusCode::kResourceExhausted,
                "more than the limit of 1048576");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(100));

  ParseLimits text_limit;
  text_limit.max_text_bytes = 64u << 10;
  std::string one_mb = "<ClinicalDocument xmlns=\"urn:hl7-org:v3\">\n<title a=\"";
  one_mb.append(1u << 20, 'x');
  one_mb += "\">" + std::string(kSecret) + "</title></ClinicalDocument>";
  ExpectRefused(ParseCcda(one_mb, text_limit), StatusCode::kResourceExhausted,
                "line 2: an attribute value of 1048576 bytes exceeds the limit of 65536 bytes");

  std::string long_text = "<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><title>";
  long_text.append(1u << 20, 'x');
  long_text += "</title></ClinicalDocument>";
  ExpectRefused(ParseCcda(long_text, text_limit), StatusCode::kResourceExhausted,
                "a text of 1048576 bytes exceeds the limit of 65536 bytes");
}

// Issue 13: libxml2 compares each attribute of a start tag with the tag's
// earlier ones; 80,000 attributes on one element (under a megabyte) took ten
// seconds. Refused from the bytes before libxml2 parses them.
TEST(CcdaHostileTest, ManyAttributesAreRefusedBeforeParsing) {
  std::string xml = "<ClinicalDocument xmlns=\"urn:hl7-org:v3\">\n<title";
  for (int i = 0; i < 80000; ++i) xml += " a" + std::to_string(i) + "=\"\"";
  xml += ">" + std::string(kSecret) + "</title></ClinicalDocument>";
  ASSERT_LT(xml.size(), 1u << 20);
  const auto t0 = std::chrono::steady_clock::now();
  ExpectRefused(ParseCcda(xml), StatusCode::kResourceExhausted,
                "line 2: an element with more than 256 attributes");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));  // was 10 s

  // 256 is fine; quotes, '=' and '>' inside values do not count.
  std::string ok = "<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><title";
  for (int i = 0; i < 255; ++i) ok += " a" + std::to_string(i) + "='x=y>z'";
  ok += ">t</title><!-- <x a=1 b=2> --></ClinicalDocument>";
  EXPECT_EQ(MustParse(ok).header.title, "t");
}

TEST(CcdaHostileTest, AttributeWorkAndNamespaceDeclarationsAreBounded) {
  // Many elements each near the per-element limit: the document's total.
  std::string many = "<ClinicalDocument xmlns=\"urn:hl7-org:v3\">";
  std::string attrs;
  for (int i = 0; i < 250; ++i) attrs += " a" + std::to_string(i) + "=''";
  for (int e = 0; e < 1200; ++e) many += "<x" + attrs + "/>";
  many += "</ClinicalDocument>";
  const auto t0 = std::chrono::steady_clock::now();
  ExpectRefused(ParseCcda(many), StatusCode::kResourceExhausted,
                "too many attributes per element in the document");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));

  // Namespace declarations: each prefixed name is looked up through all of
  // them in scope.
  std::string ns = "<ClinicalDocument xmlns=\"urn:hl7-org:v3\">";
  for (int e = 0; e < 300; ++e) ns += "<x xmlns:p" + std::to_string(e) + " = 'urn:x'>";
  for (int e = 0; e < 300; ++e) ns += "</x>";
  ns += "</ClinicalDocument>";
  ExpectRefused(ParseCcda(ns), StatusCode::kResourceExhausted,
                "more than 256 namespace declarations");
}

TEST(CcdaHostileTest, NodeLimit) {
  ParseLimits limits;
  limits.max_nodes = 1000;
  std::string xml = "<ClinicalDocument xmlns=\"urn:hl7-org:v3\">";
  for (int i = 0; i < 2000; ++i) xml += "<a/>";
  xml += "</ClinicalDocument>";
  ExpectRefused(ParseCcda(xml, limits), StatusCode::kResourceExhausted, "more than 1000 nodes");
}

TEST(CcdaHostileTest, WrongOrMissingNamespace) {
  ExpectRefused(ParseCcda("<ClinicalDocument xmlns=\"urn:hl7-org:v2\"><title>" +
                          std::string(kSecret) + "</title></ClinicalDocument>"),
                StatusCode::kInvalidArgument, "root element is not an HL7 v3 ClinicalDocument");
  ExpectRefused(
      ParseCcda("<ClinicalDocument><title>" + std::string(kSecret) + "</title></ClinicalDocument>"),
      StatusCode::kInvalidArgument, "root element is not an HL7 v3 ClinicalDocument");
  ExpectRefused(ParseCcda("<Bundle xmlns=\"urn:hl7-org:v3\"/>"), StatusCode::kInvalidArgument,
                "root element is not an HL7 v3 ClinicalDocument");
  ExpectRefused(
      ParseCcda("<x:ClinicalDocument xmlns:x=\"urn:hl7-org:v3\"><x:title xsi:type=\"ST\">" +
                std::string(kSecret) + "</x:title></x:ClinicalDocument>"),
      StatusCode::kInvalidArgument, "undeclared namespace prefix");
}

TEST(CcdaHostileTest, InvalidUtf8) {
  const std::string xml = "<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><title>" +
                          std::string(kSecret) + "\xC3\x28" + std::string(kSecret) +
                          "</title></ClinicalDocument>";
  const Result<ClinicalDocument> r = ParseCcda(xml);
  ExpectRefused(r, StatusCode::kInvalidArgument, "UTF-8");
  EXPECT_EQ(r.status().message().find("0xC3"), std::string::npos) << r.status().message();
  // Overlong encoding and a lone continuation byte, too.
  ExpectRefused(ParseCcda(Body("\xC0\xAF")), StatusCode::kInvalidArgument, "UTF-8");
  ExpectRefused(ParseCcda(Body("\x80")), StatusCode::kInvalidArgument, "UTF-8");
}

TEST(CcdaHostileTest, OtherEncodingsAreRefused) {
  ExpectRefused(ParseCcda("<?xml version=\"1.0\" encoding=\"UTF-16\"?>" + Body()),
                StatusCode::kInvalidArgument, "only UTF-8 documents are accepted");
  ExpectRefused(ParseCcda("<?xml version='1.0' encoding='ISO-8859-1'?>" + Body()),
                StatusCode::kInvalidArgument, "only UTF-8 documents are accepted");
  std::string utf16("\xFF\xFE", 2);
  for (char c : Body()) {
    utf16 += c;
    utf16 += '\0';
  }
  ExpectRefused(ParseCcda(utf16), StatusCode::kInvalidArgument,
                "only UTF-8 documents are accepted");
  // Declared UTF-8 (any case), ASCII, or nothing, with or without a BOM: fine.
  EXPECT_TRUE(ParseCcda("<?xml version=\"1.0\" encoding=\"utf-8\"?>" + Body("x")).ok());
  EXPECT_TRUE(ParseCcda("<?xml version=\"1.0\" encoding=\"US-ASCII\"?>" + Body("x")).ok());
  EXPECT_TRUE(ParseCcda("\xEF\xBB\xBF" + Body("x")).ok());
}

TEST(CcdaHostileTest, EmptyAndTruncated) {
  ExpectRefused(ParseCcda(""), StatusCode::kInvalidArgument, "empty document");
  ExpectRefused(ParseCcda(" \n\t "), StatusCode::kInvalidArgument, "empty document");
  const std::string full = ReadFile(kSubset / "Documents_CCD_CCD_1_CCD.xml");
  const std::string half = full.substr(0, full.size() / 2);
  const Result<ClinicalDocument> r = ParseCcda(half);
  ExpectRefused(r, StatusCode::kInvalidArgument, "line ");
  EXPECT_NE(r.status().message().find(", column "), std::string::npos);
  EXPECT_EQ(r.status().message().find("Betterhalf"), std::string::npos);
  ExpectRefused(ParseCcda("<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><title>" +
                          std::string(kSecret) + "</titel></ClinicalDocument>"),
                StatusCode::kInvalidArgument, "line 1, column");
  ExpectRefused(ParseCcda(Body() + "<trailing/>"), StatusCode::kInvalidArgument, "line 1");
  ExpectRefused(ParseCcda(Body("&undefined;")), StatusCode::kInvalidArgument, "undefined");
  ExpectRefused(ParseCcda(Body("&#1;")), StatusCode::kInvalidArgument, "line 1");
}

TEST(CcdaHostileTest, TooManyEntries) {
  std::string xml =
      "<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><component><structuredBody><component>"
      "<section><code code=\"29762-2\"/>";
  const std::string entry = "<entry><observation><code code=\"1\"/></observation></entry>";
  xml.reserve(xml.size() + entry.size() * 300000 + 100);
  for (int i = 0; i < 300000; ++i) xml += entry;
  xml += "</section></component></structuredBody></component></ClinicalDocument>";
  ExpectRefused(ParseCcda(xml), StatusCode::kResourceExhausted,
                "the document has more than 200000 entries");
  ParseLimits few;
  few.max_entries = 10;
  std::string small =
      "<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><component><structuredBody><component>"
      "<section><code code=\"29762-2\"/>";
  for (int i = 0; i < 11; ++i) small += entry;
  small += "</section></component></structuredBody></component></ClinicalDocument>";
  ExpectRefused(ParseCcda(small, few), StatusCode::kResourceExhausted, "more than 10 entries");
  few.max_entries = 11;
  EXPECT_EQ(MustParse(small, few).entries.size(), 11u);
}

TEST(CcdaHostileTest, NothingIsWrittenToStderr) {
  testing::internal::CaptureStderr();
  (void)ParseCcda("<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><a></b></ClinicalDocument>");
  (void)ParseCcda(Body("\xC3\x28"));
  (void)ParseCcda(
      "<x:ClinicalDocument xmlns:x=\"urn:hl7-org:v3\"><x:y z:a=\"1\"/></x:ClinicalDocument>");
  (void)ParseCcda("<ClinicalDocument xmlns=\"relative\"/>");  // a namespace warning
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

}  // namespace
}  // namespace medvault::interop

namespace medvault::interop {
namespace {

const Entry* FindById(const ClinicalDocument& doc, std::string_view id) {
  for (const Entry& e : doc.entries) {
    if (e.id == id) return &e;
  }
  return nullptr;
}

// Issue 15: a result panel keeps its own code and grouping: the organizer is
// an entry naming its observations as members, in both exports.
TEST(CcdaReaderTest, ResultOrganizerIsAPanelWithMembers) {
  const std::string obs1 =
      "<component><observation classCode=\"OBS\" moodCode=\"EVN\"><id root=\"1.2.3\" "
      "extension=\"hdl\"/><code code=\"2085-9\" codeSystem=\"2.16.840.1.113883.6.1\" "
      "displayName=\"HDL\"/><statusCode code=\"completed\"/><value xsi:type=\"PQ\" value=\"52\" "
      "unit=\"mg/dL\"/></observation></component>";
  const std::string obs2 =
      "<component><observation classCode=\"OBS\" moodCode=\"EVN\"><id root=\"1.2.3\" "
      "extension=\"ldl\"/><code code=\"13457-7\" codeSystem=\"2.16.840.1.113883.6.1\" "
      "displayName=\"LDL\"/><statusCode code=\"completed\"/><value xsi:type=\"PQ\" value=\"130\" "
      "unit=\"mg/dL\"/></observation></component>";
  const std::string organizer =
      "<entry><organizer classCode=\"BATTERY\" moodCode=\"EVN\"><id root=\"1.2.3\" "
      "extension=\"panel\"/><code code=\"57698-3\" codeSystem=\"2.16.840.1.113883.6.1\" "
      "displayName=\"Lipid panel\"/><statusCode code=\"completed\"/><effectiveTime "
      "value=\"20200102\"/>" +
      obs1 + obs2 + "</organizer></entry>";
  // An organizer that identifies nothing only groups.
  const std::string anonymous =
      "<entry><organizer classCode=\"BATTERY\" moodCode=\"EVN\"><code nullFlavor=\"UNK\"/>"
      "<statusCode code=\"completed\"/><component><observation classCode=\"OBS\" "
      "moodCode=\"EVN\"><id root=\"1.2.3\" extension=\"glucose\"/><code code=\"2345-7\" "
      "codeSystem=\"2.16.840.1.113883.6.1\"/><value xsi:type=\"PQ\" value=\"99\" "
      "unit=\"mg/dL\"/></observation></component></organizer></entry>";
  const ClinicalDocument doc =
      MustParse(Doc(Section("2.16.840.1.113883.10.20.22.2.3.1", "30954-2", organizer + anonymous)));
  ASSERT_EQ(doc.entries.size(), 4u);
  const Entry* panel = FindById(doc, "1.2.3^panel");
  ASSERT_NE(panel, nullptr);
  EXPECT_EQ(panel->kind, EntryKind::kResult);
  EXPECT_EQ(panel->code.code, "57698-3");
  EXPECT_EQ(panel->start, "2020-01-02");
  EXPECT_EQ(panel->members, (std::vector<std::string>{"1.2.3^hdl", "1.2.3^ldl"}));
  ASSERT_NE(FindById(doc, "1.2.3^hdl"), nullptr);
  EXPECT_EQ(FindById(doc, "1.2.3^hdl")->start, "2020-01-02");  // the organizer's time
  ASSERT_NE(FindById(doc, "1.2.3^glucose"), nullptr);
  EXPECT_TRUE(FindById(doc, "1.2.3^glucose")->members.empty());

  // C-CDA: one organizer with the panel's code around both observations.
  Result<std::string> ccda = WriteCcda(doc);
  ASSERT_TRUE(ccda.ok()) << ccda.status().ToString();
  EXPECT_NE(ccda->find("code=\"57698-3\""), std::string::npos);
  Result<ClinicalDocument> again = ParseCcda(*ccda);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(CanonicalString(*again), CanonicalString(doc));
  // FHIR: a DiagnosticReport whose results point at the two Observations.
  Result<std::string> fhir = WriteFhirBundle(doc);
  ASSERT_TRUE(fhir.ok());
  const nlohmann::json bundle = nlohmann::json::parse(*fhir);
  std::map<std::string, std::string> url_of;  // medvault id -> fullUrl
  const nlohmann::json* report = nullptr;
  for (const nlohmann::json& e : bundle["entry"]) {
    const nlohmann::json& r = e["resource"];
    if (r.contains("identifier")) url_of[r["identifier"][0]["value"]] = e["fullUrl"];
    if (r["resourceType"] == "DiagnosticReport") report = &r;
  }
  ASSERT_NE(report, nullptr);
  ASSERT_EQ((*report)["result"].size(), 2u);
  EXPECT_EQ((*report)["result"][0]["reference"], url_of["1.2.3^hdl"]);
  EXPECT_EQ((*report)["result"][1]["reference"], url_of["1.2.3^ldl"]);
  Result<ClinicalDocument> from_fhir = ParseFhir(*fhir);
  ASSERT_TRUE(from_fhir.ok());
  EXPECT_EQ(CanonicalString(*from_fhir), CanonicalString(doc));
}

// Where, how and why: targetSiteCode and methodCode, encounter diagnoses and
// indications are kept, and reach FHIR's bodySite, method and reasonCode.
TEST(CcdaReaderTest, SiteMethodAndReasonsAreKept) {
  const std::string procedure =
      "<entry><procedure classCode=\"PROC\" moodCode=\"EVN\"><id root=\"1.2.3\" extension=\"p\"/>"
      "<code code=\"80146002\" codeSystem=\"2.16.840.1.113883.6.96\"/><statusCode "
      "code=\"completed\"/><methodCode code=\"129236007\" codeSystem=\"2.16.840.1.113883.6.96\"/>"
      "<targetSiteCode code=\"66754008\" codeSystem=\"2.16.840.1.113883.6.96\" "
      "displayName=\"Appendix\"/><entryRelationship typeCode=\"RSON\"><observation "
      "classCode=\"OBS\" moodCode=\"EVN\"><code code=\"75321-0\" "
      "codeSystem=\"2.16.840.1.113883.6.1\"/><value xsi:type=\"CD\" code=\"74400008\" "
      "codeSystem=\"2.16.840.1.113883.6.96\" displayName=\"Appendicitis\"/></observation>"
      "</entryRelationship></procedure></entry>";
  const std::string encounter =
      "<entry><encounter classCode=\"ENC\" moodCode=\"EVN\"><id root=\"1.2.3\" extension=\"e\"/>"
      "<code code=\"99213\" codeSystem=\"2.16.840.1.113883.6.12\"/><entryRelationship "
      "typeCode=\"REFR\"><act classCode=\"ACT\" moodCode=\"EVN\"><templateId "
      "root=\"2.16.840.1.113883.10.20.22.4.80\"/><code code=\"29308-4\" "
      "codeSystem=\"2.16.840.1.113883.6.1\"/><entryRelationship typeCode=\"SUBJ\"><observation "
      "classCode=\"OBS\" moodCode=\"EVN\"><code code=\"282291009\" "
      "codeSystem=\"2.16.840.1.113883.6.96\"/><value xsi:type=\"CD\" code=\"J06.9\" "
      "codeSystem=\"2.16.840.1.113883.6.90\"/></observation></entryRelationship></act>"
      "</entryRelationship></encounter></entry>";
  const ClinicalDocument doc =
      MustParse(Doc(Section("2.16.840.1.113883.10.20.22.2.7.1", "47519-4", procedure) +
                    Section("2.16.840.1.113883.10.20.22.2.22.1", "46240-8", encounter)));
  const Entry* p = FindById(doc, "1.2.3^p");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->body_site.code, "66754008");
  EXPECT_EQ(p->method.code, "129236007");
  ASSERT_EQ(p->reasons.size(), 1u);
  EXPECT_EQ(p->reasons[0].code, "74400008");
  const Entry* e = FindById(doc, "1.2.3^e");
  ASSERT_NE(e, nullptr);
  ASSERT_EQ(e->reasons.size(), 1u);
  EXPECT_EQ(e->reasons[0].code, "J06.9");
  EXPECT_EQ(e->reasons[0].system, "http://hl7.org/fhir/sid/icd-10-cm");

  Result<std::string> fhir = WriteFhirBundle(doc);
  ASSERT_TRUE(fhir.ok());
  const nlohmann::json bundle = nlohmann::json::parse(*fhir);
  for (const nlohmann::json& entry : bundle["entry"]) {
    const nlohmann::json& r = entry["resource"];
    if (r["resourceType"] == "Procedure") {
      EXPECT_EQ(r["bodySite"][0]["coding"][0]["code"], "66754008");
      EXPECT_EQ(r["reasonCode"][0]["coding"][0]["code"], "74400008");
    } else if (r["resourceType"] == "Encounter") {
      EXPECT_EQ(r["reasonCode"][0]["coding"][0]["code"], "J06.9");
    }
  }
  for (const std::string& out : {*fhir, *WriteCcda(doc)}) {
    Result<ClinicalDocument> again = ParseDocument(out);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(CanonicalString(*again), CanonicalString(doc));
  }
}

// A section without a kind of its own: its statements, nested ones as
// members, keep their codes, values and section.
TEST(CcdaReaderTest, StatementsOfUnmappedSectionsNest) {
  const std::string concern =
      "<text>Concern: falls</text><entry><act classCode=\"ACT\" moodCode=\"EVN\"><id "
      "root=\"1.2.3\" extension=\"hc\"/><code code=\"75310-3\" "
      "codeSystem=\"2.16.840.1.113883.6.1\"/><statusCode code=\"active\"/><entryRelationship "
      "typeCode=\"REFR\"><observation classCode=\"OBS\" moodCode=\"EVN\"><id root=\"1.2.3\" "
      "extension=\"fall\"/><code code=\"75321-0\" codeSystem=\"2.16.840.1.113883.6.1\"/>"
      "<value xsi:type=\"CD\" code=\"129839007\" codeSystem=\"2.16.840.1.113883.6.96\" "
      "displayName=\"At risk for falls\"/><targetSiteCode code=\"7769000\" "
      "codeSystem=\"2.16.840.1.113883.6.96\"/></observation></entryRelationship></act></entry>";
  const ClinicalDocument doc = MustParse(Doc(Section("", "75310-3", concern)));
  const Entry* act = FindById(doc, "1.2.3^hc");
  const Entry* fall = FindById(doc, "1.2.3^fall");
  ASSERT_NE(act, nullptr);
  ASSERT_NE(fall, nullptr);
  EXPECT_EQ(act->kind, EntryKind::kStatement);
  EXPECT_EQ(act->members, std::vector<std::string>{"1.2.3^fall"});
  EXPECT_EQ(fall->value_code->code, "129839007");
  EXPECT_EQ(fall->body_site.code, "7769000");
  EXPECT_EQ(fall->section.code, "75310-3");
  EXPECT_EQ(SegmentBaseFor(*fall), "health-status/health-concerns");
  // The narrative stays readable as a note.
  bool note = false;
  for (const Entry& e : doc.entries) note = note || (e.kind == EntryKind::kNote);
  EXPECT_TRUE(note);
  for (const std::string& out : {*WriteFhirBundle(doc), *WriteCcda(doc)}) {
    Result<ClinicalDocument> again = ParseDocument(out);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(CanonicalString(*again), CanonicalString(doc));
  }
}

}  // namespace
}  // namespace medvault::interop
