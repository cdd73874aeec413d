// Documents in and out through the real in-process server
// (src/api/routes_exchange.cc): every segment an import writes and every
// segment an export reads is decided and recorded in the ledger.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "interop/interop.h"
#include "ledger/ledger.h"
#include "server_fixture.h"

namespace medvault {
namespace {

using nlohmann::json;
using testing::ServerFixture;

std::string ReadTestFile(const std::string& relative) {
  std::ifstream in(std::string(MEDVAULT_TESTDATA_DIR) + "/" + relative, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class RoutesExchangeTest : public ServerFixture {
 protected:
  void SetUp() override {
    ServerFixture::SetUp();
    patient_id_ = CreatePatient("Exchange", "MRN-EX");  // treated by the default clinician
    ASSERT_EQ(patient_id_.size(), 32u);
    ccda_ = ReadTestFile("interop/ccda/Documents_CCD_CCD_1_CCD.xml");
    ASSERT_FALSE(ccda_.empty());
  }

  std::string Documents() const { return "/api/v1/patients/" + patient_id_ + "/documents"; }
  std::string ExportUrl(const std::string& format) const {
    return "/api/v1/patients/" + patient_id_ + "/export?format=" + format;
  }

  size_t SegmentCount() {
    auto tree = runtime_->records->ListTree(patient_id_, "");
    return tree.ok() ? tree->size() : 0;
  }

  // Ledger entries of this patient (keyed pseudonym) with `kind` as their
  // resource kind.
  std::vector<ledger::Entry> PatientEntries(const std::string& kind) {
    std::vector<ledger::Entry> out;
    auto records = runtime_->ledger->EntriesForPatientRef(
        ledger::PatientRef(runtime_->patient_ref_key, patient_id_), std::nullopt, 100000);
    EXPECT_TRUE(records.ok());
    if (records.ok()) {
      for (const ledger::LedgerRecord& r : *records) {
        if (r.entry.resource.kind == kind) {
          out.push_back(r.entry);
        }
      }
    }
    return out;
  }

  std::string patient_id_;
  std::string ccda_;
};

// Entries of the kinds stored under health-status (problems, allergies,
// medications) in an exported document.
size_t HealthStatusEntries(const interop::ClinicalDocument& doc) {
  return static_cast<size_t>(
      std::count_if(doc.entries.begin(), doc.entries.end(), [](const interop::Entry& e) {
        return e.kind == interop::EntryKind::kProblem || e.kind == interop::EntryKind::kAllergy ||
               e.kind == interop::EntryKind::kMedication;
      }));
}

TEST_F(RoutesExchangeTest, ATreatingDoctorImportsAndExportsADocument) {
  auto res = Post(Documents(), ccda_, "application/xml");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 201) << res->body;
  EXPECT_EQ(res->get_header_value("X-Access-Decision").rfind("permit", 0), 0u);
  const json out = json::parse(res->body);
  EXPECT_EQ(out["patient_id"], patient_id_);
  EXPECT_EQ(out["format"], "ccda");
  EXPECT_FALSE(out["unchanged"].get<bool>());
  EXPECT_GT(out["entries"].get<int>(), 10);
  const size_t written = out["segments"].size();
  EXPECT_EQ(SegmentCount(), written);
  // Every segment was decided (write) before anything was written.
  EXPECT_GE(PatientEntries("write").size(), written);

  // The same document again: 200, nothing new.
  res = Post(Documents(), ccda_, "application/xml; charset=utf-8");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_TRUE(json::parse(res->body)["unchanged"].get<bool>());

  for (const std::string format : {"fhir", "ccda"}) {
    res = Get(ExportUrl(format));
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type"),
              format == "fhir" ? "application/fhir+json" : "application/xml");
    EXPECT_EQ(res->get_header_value("X-Export-Withheld"), "0");
    auto back = interop::ParseDocument(res->body);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    auto original = interop::ParseCcda(ccda_);
    ASSERT_TRUE(original.ok());
    EXPECT_EQ(interop::CanonicalJson(*back)["entries"],
              interop::CanonicalJson(*original)["entries"]);
  }
  EXPECT_FALSE(PatientEntries("export").empty());
}

TEST_F(RoutesExchangeTest, RefusedImportsWriteNothing) {
  // Not treating: the first decision refuses, nothing is parsed.
  auto stranger = MakeAccount("dr.stranger", {"doctor"});
  auto stranger_client = ClientWith(SignIn(stranger));
  auto res = stranger_client->Post(Documents().c_str(), ccda_, "application/xml");
  ExpectError(res, 403, "PERMISSION_DENIED");
  stranger_client.reset();

  // A nurse may write physical signs but not problems or source documents.
  auto nurse = MakeAccount("nurse.ex", {"nurse"});
  Treat(patient_id_, &nurse);
  auto nurse_client = ClientWith(SignIn(nurse));
  res = nurse_client->Post(Documents().c_str(), ccda_, "application/xml");
  ExpectError(res, 403, "PERMISSION_DENIED");
  nurse_client.reset();

  // The patient denies this doctor writes under health-status: the first
  // decision (source-documents) permits, a later one refuses, nothing is
  // written and the answer names the refused path.
  auto patient = MakeAccount("patient.deny", {"patient"}, patient_id_);
  auto patient_client = ClientWith(SignIn(patient));
  const json deny = {{"effect", "deny"},
                     {"path_prefix", "health-status"},
                     {"grantee_kind", "account"},
                     {"grantee", clinician_.account_id},
                     {"actions", {"write"}}};
  auto consent = patient_client->Post(("/api/v1/patients/" + patient_id_ + "/consents").c_str(),
                                      deny.dump(), "application/json");
  ASSERT_TRUE(consent);
  ASSERT_EQ(consent->status, 201) << consent->body;
  patient_client.reset();
  res = Post(Documents(), ccda_, "application/xml");
  ExpectError(res, 403, "PERMISSION_DENIED");
  EXPECT_NE(res->body.find("health-status/"), std::string::npos) << res->body;
  EXPECT_NE(res->body.find("consent-denied"), std::string::npos) << res->body;
  EXPECT_EQ(SegmentCount(), 0u);
  const std::string consent_id = json::parse(consent->body)["consent_id"];
  EXPECT_TRUE(runtime_->access->RevokeConsent(patient_id_, consent_id).ok());

  // Hostile and malformed documents: 400 with the reason, nothing written.
  const std::string laughs =
      "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 "
      "\"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>"
      "<ClinicalDocument xmlns=\"urn:hl7-org:v3\">&lol2;</ClinicalDocument>";
  res = Post(Documents(), laughs, "application/xml");
  ExpectError(res, 400, "INVALID_ARGUMENT");
  EXPECT_NE(res->body.find("DOCTYPE"), std::string::npos) << res->body;
  res =
      Post(Documents(), R"({"resourceType":"Patient","id":"a","id":"b"})", "application/fhir+json");
  ExpectError(res, 400, "INVALID_ARGUMENT");
  EXPECT_NE(res->body.find("duplicate key"), std::string::npos) << res->body;
  res = Post(Documents(), ccda_.substr(0, ccda_.size() / 2), "application/xml");
  ExpectError(res, 400, "INVALID_ARGUMENT");
  res = Post(Documents(), ccda_, "text/plain");
  ExpectError(res, 400, "INVALID_ARGUMENT");
  EXPECT_NE(res->body.find("Content-Type"), std::string::npos);
  res = Post(Documents() + "?x=1", ccda_, "application/xml");
  ExpectError(res, 400, "INVALID_ARGUMENT");
  EXPECT_EQ(SegmentCount(), 0u);

  // Beyond the document limit: refused before the body is read.
  res = Post(Documents(), std::string(33u << 20, ' '), "application/xml");
  ExpectError(res, 413, "RESOURCE_EXHAUSTED");
  Reconnect();
  EXPECT_EQ(SegmentCount(), 0u);
  // Unknown patient: decided first (no relationship), then nothing.
  res = Post("/api/v1/patients/" + std::string(32, 'a') + "/documents", ccda_, "application/xml");
  ASSERT_TRUE(res);
  EXPECT_TRUE(res->status == 403 || res->status == 404) << res->status;
}

TEST_F(RoutesExchangeTest, ExportsLeaveOutWhatTheReaderMayNotSee) {
  ASSERT_EQ(Post(Documents(), ccda_, "application/xml")->status, 201);
  // The patient denies this doctor everything under health-status.
  auto patient = MakeAccount("patient.ex", {"patient"}, patient_id_);
  auto patient_client = ClientWith(SignIn(patient));
  const json deny = {{"effect", "deny"},
                     {"path_prefix", "health-status"},
                     {"grantee_kind", "account"},
                     {"grantee", clinician_.account_id},
                     {"actions", {"read", "list", "export"}},
                     {"purposes", {"treatment"}}};
  auto res = patient_client->Post(("/api/v1/patients/" + patient_id_ + "/consents").c_str(),
                                  deny.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 201) << res->body;
  // The patient exports everything.
  res = patient_client->Get(ExportUrl("fhir").c_str());
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("X-Export-Withheld"), "0");
  auto full = interop::ParseFhir(res->body);
  ASSERT_TRUE(full.ok());
  patient_client.reset();

  res = Get(ExportUrl("fhir"));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_NE(res->get_header_value("X-Export-Withheld"), "0");
  auto partial = interop::ParseFhir(res->body);
  ASSERT_TRUE(partial.ok()) << partial.status().ToString();
  const size_t health_status_entries = HealthStatusEntries(*partial);
  EXPECT_EQ(health_status_entries, 0u);
  EXPECT_LT(partial->entries.size(), full->entries.size());
  EXPECT_GT(partial->entries.size(), 0u);
  // Each refusal is in the ledger as a deny of an export.
  bool denied = false;
  for (const ledger::Entry& e : PatientEntries("export")) {
    denied = denied || (e.effect == "deny" && e.resource.path.rfind("health-status/", 0) == 0);
  }
  EXPECT_TRUE(denied);

  // A doctor without a relationship is refused outright.
  auto stranger = MakeAccount("dr.nobody", {"doctor"});
  auto stranger_client = ClientWith(SignIn(stranger));
  res = stranger_client->Get(ExportUrl("ccda").c_str());
  ExpectError(res, 403, "PERMISSION_DENIED");
  stranger_client.reset();
  res = Get(ExportUrl("pdf"));
  ExpectError(res, 400, "INVALID_ARGUMENT");
  res = Get("/api/v1/patients/" + patient_id_ + "/export?format=fhir&format=ccda");
  ExpectError(res, 400, "INVALID_ARGUMENT");
}

// A denial without actions, and the portal's default (read and list ticked),
// must take away the export of the subtree as well as its reading: they used
// to cover read and list only, so the doctor exported the denied entries as
// FHIR or C-CDA.
TEST_F(RoutesExchangeTest, ADenialOfReadingAlsoWithholdsTheExport) {
  ASSERT_EQ(Post(Documents(), ccda_, "application/xml")->status, 201);
  auto patient = MakeAccount("patient.noact", {"patient"}, patient_id_);
  auto patient_client = ClientWith(SignIn(patient));
  auto res = patient_client->Get(ExportUrl("fhir").c_str());
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  auto full = interop::ParseFhir(res->body);
  ASSERT_TRUE(full.ok());
  const json no_actions = {{"effect", "deny"},
                           {"path_prefix", "health-status"},
                           {"grantee_kind", "account"},
                           {"grantee", clinician_.account_id}};
  json read_and_list = no_actions;
  read_and_list["actions"] = {"read", "list"};
  for (const json& deny : {no_actions, read_and_list}) {
    SCOPED_TRACE(deny.dump());
    res = patient_client->Post(("/api/v1/patients/" + patient_id_ + "/consents").c_str(),
                               deny.dump(), "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 201) << res->body;
    const std::string consent_id = json::parse(res->body)["consent_id"];
    // The consent shows what it takes away, export included, write not.
    const json shown = json::parse(res->body)["actions"];
    EXPECT_NE(std::find(shown.begin(), shown.end(), "export"), shown.end()) << shown.dump();
    EXPECT_EQ(std::find(shown.begin(), shown.end(), "write"), shown.end()) << shown.dump();

    for (const std::string format : {"fhir", "ccda"}) {
      res = Get(ExportUrl(format));
      ASSERT_TRUE(res);
      ASSERT_EQ(res->status, 200) << res->body;
      EXPECT_NE(res->get_header_value("X-Export-Withheld"), "0") << format;
      auto partial = interop::ParseDocument(res->body);
      ASSERT_TRUE(partial.ok()) << partial.status().ToString();
      const size_t health_status_entries = HealthStatusEntries(*partial);
      EXPECT_EQ(health_status_entries, 0u) << format;
      EXPECT_LT(partial->entries.size(), full->entries.size()) << format;
      EXPECT_GT(partial->entries.size(), 0u) << format;
    }
    // A segment read under the subtree is refused too, a listing leaves it out.
    auto tree = runtime_->records->ListTree(patient_id_, "health-status");
    ASSERT_TRUE(tree.ok());
    ASSERT_FALSE(tree->empty());
    res = Get("/api/v1/patients/" + patient_id_ + "/segments/" + tree->front().path);
    ExpectError(res, 403, "PERMISSION_DENIED");
    res = Get("/api/v1/patients/" + patient_id_ + "/segments");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(res->body.find("health-status/"), std::string::npos);
    ASSERT_TRUE(runtime_->access->RevokeConsent(patient_id_, consent_id).ok());
  }
  // Without the denial, the doctor exports everything again.
  res = Get(ExportUrl("fhir"));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("X-Export-Withheld"), "0");
}

// Vendors reuse document ids: a different document under the same id goes
// beside the first, and the answer says so; the same one again is unchanged.
TEST_F(RoutesExchangeTest, AReusedDocumentIdIsImportedBesideWithAWarning) {
  auto first = Post(Documents(), ccda_, "application/xml");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 201) << first->body;
  const json one = json::parse(first->body);
  EXPECT_TRUE(one["warnings"].empty());
  std::string other = ccda_;
  const size_t title = other.find("<title>");
  ASSERT_NE(title, std::string::npos);
  other.insert(title + 7, "Amended ");
  auto second = Post(Documents(), other, "application/xml");
  ASSERT_TRUE(second);
  ASSERT_EQ(second->status, 201) << second->body;
  const json two = json::parse(second->body);
  EXPECT_NE(two["document_key"], one["document_key"]);
  ASSERT_EQ(two["warnings"].size(), 1u);
  EXPECT_NE(two["warnings"][0].get<std::string>().find("same document id"), std::string::npos)
      << two["warnings"][0];
  // Both stay: the first is not replaced.
  auto again = Post(Documents(), ccda_, "application/xml");
  ASSERT_EQ(again->status, 200) << again->body;
  EXPECT_TRUE(json::parse(again->body)["unchanged"].get<bool>());
  auto summary = Get("/api/v1/patients/" + patient_id_ + "/summary");
  ASSERT_EQ(summary->status, 200);
  EXPECT_EQ(json::parse(summary->body)["documents"].size(), 2u);
}

std::string SummaryUrl(const std::string& patient_id) {
  return "/api/v1/patients/" + patient_id + "/summary";
}

TEST_F(RoutesExchangeTest, TheSummaryIsDecidedPerSegmentAndNamesTheReadings) {
  ASSERT_EQ(Post(Documents(), ccda_, "application/xml")->status, 201);
  // A home reading by the patient.
  auto patient = MakeAccount("patient.sum", {"patient"}, patient_id_);
  auto patient_client = ClientWith(SignIn(patient));
  auto res = patient_client->Put(
      ("/api/v1/patients/" + patient_id_ + "/segments/physical-signs/blood-pressure").c_str(),
      R"({"data":{"systolic":151,"diastolic":97,"unit":"mmHg","time":"2026-11-30T07:00:00Z"}})",
      "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 201) << res->body;

  res = Get(SummaryUrl(patient_id_));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  json full = json::parse(res->body);
  EXPECT_FALSE(full["sections"]["problems"].empty());
  EXPECT_FALSE(full["sections"]["allergies"].empty());
  EXPECT_FALSE(full["patient"].value("name", "").empty());
  ASSERT_EQ(full["documents"].size(), 1u);
  EXPECT_FALSE(full["documents"][0].value("title", "").empty());
  bool named_reading = false;
  for (const json& g : full["observations"]) {
    for (const json& p : g["points"]) {
      named_reading =
          named_reading || (p.value("recorded_by", "") == patient.account_id &&
                            p.value("recorded_by_name", "") == "Test " + patient.username);
    }
  }
  EXPECT_TRUE(named_reading) << "a home reading names who recorded it";
  EXPECT_EQ(full["counts"]["segments_withheld"], 0);

  // The patient denies this doctor health-status: the summary leaves it out.
  const json deny = {{"effect", "deny"},
                     {"path_prefix", "health-status"},
                     {"grantee_kind", "account"},
                     {"grantee", clinician_.account_id},
                     {"purposes", {"treatment"}}};
  res = patient_client->Post(("/api/v1/patients/" + patient_id_ + "/consents").c_str(), deny.dump(),
                             "application/json");
  ASSERT_EQ(res->status, 201) << res->body;
  res = Get(SummaryUrl(patient_id_));
  ASSERT_EQ(res->status, 200) << res->body;
  json partial = json::parse(res->body);
  EXPECT_TRUE(partial["sections"]["problems"].empty());
  EXPECT_TRUE(partial["sections"]["allergies"].empty());
  EXPECT_TRUE(partial["sections"]["medications"].empty());
  EXPECT_GT(partial["counts"]["segments_withheld"].get<int>(), 0);
  EXPECT_FALSE(partial["observations"].empty());
  bool denied = false;
  for (const ledger::Entry& e : PatientEntries("read")) {
    denied = denied || (e.effect == "deny" && e.resource.path.rfind("health-status/", 0) == 0);
  }
  EXPECT_TRUE(denied) << "each refusal is in the ledger";
  // The patient still reads everything.
  res = patient_client->Get(SummaryUrl(patient_id_).c_str());
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_FALSE(json::parse(res->body)["sections"]["problems"].empty());
  patient_client.reset();

  // Strangers and unknown patients get the same deny; bad queries a 400.
  auto stranger = MakeAccount("dr.sum", {"doctor"});
  auto stranger_client = ClientWith(SignIn(stranger));
  res = stranger_client->Get(SummaryUrl(patient_id_).c_str());
  ExpectError(res, 403, "PERMISSION_DENIED");
  res = stranger_client->Get(SummaryUrl(std::string(32, 'a')).c_str());
  ExpectError(res, 403, "PERMISSION_DENIED");
  stranger_client.reset();
  res = Get(SummaryUrl(patient_id_) + "?points=0");
  ExpectError(res, 400, "INVALID_ARGUMENT");
  res = Get(SummaryUrl(patient_id_) + "?points=x");
  ExpectError(res, 400, "INVALID_ARGUMENT");
  res = Get(SummaryUrl(patient_id_) + "?other=1");
  ExpectError(res, 400, "INVALID_ARGUMENT");
  res = Get(SummaryUrl(patient_id_) + "?points=1");
  ASSERT_EQ(res->status, 200);
  const json capped = json::parse(res->body);  // a named value: the loop must not outlive it
  ASSERT_FALSE(capped["observations"].empty());
  for (const json& g : capped["observations"]) {
    EXPECT_LE(g["points"].size(), 1u);
  }
}

}  // namespace
}  // namespace medvault
