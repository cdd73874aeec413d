// medvault import and export on a data directory, run as a user would.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "cli_test_util.h"
#include "interop/interop.h"
#include "store/store.h"
#include "test_util.h"

namespace medvault {
namespace {

namespace fs = std::filesystem;
using testing::RunMedvault;

const std::string kCheap = "MEDVAULT_ARGON2_MEMORY_KIB=8 MEDVAULT_ARGON2_ITERATIONS=1";

std::string Interop(const std::string& relative) {
  return std::string(MEDVAULT_TESTDATA_DIR) + "/interop/" + relative;
}

std::string ReadText(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The output lines of imported documents: file, patient, outcome, entries, key.
std::vector<std::vector<std::string>> DocumentLines(const std::string& output) {
  std::vector<std::vector<std::string>> out;
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    std::vector<std::string> cols;
    std::istringstream fields(line);
    std::string f;
    while (std::getline(fields, f, '\t')) {
      cols.push_back(f);
    }
    if (cols.size() == 5) {
      out.push_back(cols);
    }
  }
  return out;
}

class ExchangeCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = (tmp_.path() / "data").string();
    ASSERT_EQ(RunMedvault("init --data " + data_).exit_code, 0);
  }

  int64_t SegmentVersions() {
    auto md = store::OpenSqliteMetadataStore(fs::path(data_) / "metadata.db");
    EXPECT_TRUE(md.ok());
    return md.ok() ? (*md)->CountSegmentVersions().value() : -1;
  }

  testing::TempDir tmp_;
  std::string data_;
};

TEST_F(ExchangeCliTest, ImportsFilesAndDirectoriesAndReportsEachDocument) {
  const std::string ccd = Interop("ccda/Documents_CCD_CCD_1_CCD.xml");
  auto r = RunMedvault("import --data " + data_ + " " + ccd + " " + Interop("fhir/synthea"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto docs = DocumentLines(r.output);
  ASSERT_GE(docs.size(), 2u) << r.output;
  for (const auto& d : docs) {
    EXPECT_EQ(d[1].size(), 32u);
    EXPECT_EQ(d[2], "created");
  }
  EXPECT_NE(r.output.find("0 failed"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("\x1b["), std::string::npos) << "no progress bar without a terminal";
  const int64_t versions = SegmentVersions();
  EXPECT_GT(versions, 4);

  // Again: every document is unchanged and nothing is written.
  r = RunMedvault("import --data " + data_ + " " + ccd + " " + Interop("fhir/synthea"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const auto& d : DocumentLines(r.output)) {
    EXPECT_EQ(d[2], "unchanged");
  }
  EXPECT_EQ(SegmentVersions(), versions);
}

TEST_F(ExchangeCliTest, AFailedDocumentIsNamedWithItsReasonAndLeavesNothing) {
  const fs::path dir = tmp_.path() / "mixed";
  fs::create_directories(dir);
  fs::copy_file(Interop("ccda/Documents_CCD_CCD_1_CCD.xml"), dir / "a-good.xml");
  std::ofstream(dir / "b-laughs.xml")
      << "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaa\">]>"
         "<ClinicalDocument xmlns=\"urn:hl7-org:v3\">&a;</ClinicalDocument>";
  std::ofstream(dir / "c-duplicate.json") << R"({"resourceType":"Patient","id":"1","id":"2"})";
  std::ofstream(dir / "d-notes.txt") << "not a document: skipped by extension";
  auto r = RunMedvault("import --quiet --data " + data_ + " " + dir.string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("b-laughs.xml: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("DOCTYPE"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("c-duplicate.json: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("duplicate key"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("d-notes.txt"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("imported 1 of 3 documents"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("2 failed"), std::string::npos) << r.output;
  const int64_t after_good = SegmentVersions();
  // Only the failed ones, again: nothing more is written.
  r = RunMedvault("import --data " + data_ + " " + (dir / "b-laughs.xml").string() + " " +
                  (dir / "c-duplicate.json").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(SegmentVersions(), after_good);
  // A single resource without a patient needs --patient.
  r = RunMedvault("import --data " + data_ + " " +
                  Interop("fhir/core-4.0.1/Observation-blood-pressure.json"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("names no patient"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("standalone resource"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(--patient ID)"), std::string::npos) << r.output;
  // Usage errors.
  EXPECT_EQ(RunMedvault("import --data " + data_).exit_code, 2);
  EXPECT_NE(RunMedvault("import --data " + data_ + " /no/such/file.xml").exit_code, 0);
  EXPECT_EQ(RunMedvault("import --data " + data_ + " --patient " + std::string(32, 'a') + " " +
                        Interop("fhir/core-4.0.1/Observation-blood-pressure.json"))
                .exit_code,
            1);
}

// Two different documents with one document id (the second differs in its
// bytes only): both are imported, each under its own key, and the import
// warns about the second without quoting it.
TEST_F(ExchangeCliTest, ADocumentThatReusesAnIdIsImportedBesideWithAWarning) {
  const fs::path dir = tmp_.path() / "reused";
  fs::create_directories(dir);
  const std::string ccd = ReadText(Interop("ccda/Documents_CCD_CCD_1_CCD.xml"));
  std::ofstream(dir / "a.xml", std::ios::binary) << ccd;
  std::ofstream(dir / "b.xml", std::ios::binary) << ccd << "<!-- a later copy -->\n";
  auto r = RunMedvault("import --data " + data_ + " " + (dir / "a.xml").string() + " " +
                       (dir / "b.xml").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto docs = DocumentLines(r.output);
  ASSERT_EQ(docs.size(), 2u) << r.output;
  EXPECT_EQ(docs[0][2], "created");
  EXPECT_EQ(docs[1][2], "imported");
  EXPECT_EQ(docs[1][1], docs[0][1]) << "the same patient";
  EXPECT_NE(docs[1][4], docs[0][4]) << "the second went over the first";
  EXPECT_NE(r.output.find("warning: " + (dir / "b.xml").string() + ": another document"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("warning: " + (dir / "a.xml").string()), std::string::npos) << r.output;
}

TEST_F(ExchangeCliTest, ExportsTheWholeRecordOrWhatAReaderMaySee) {
  auto r =
      RunMedvault("import --data " + data_ + " " + Interop("ccda/Documents_CCD_CCD_1_CCD.xml"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string patient = DocumentLines(r.output).at(0)[1];
  const fs::path out = tmp_.path() / "record.json";
  r = RunMedvault("export --data " + data_ + " --patient " + patient + " --out " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(fs::status(out).permissions() & fs::perms::others_read, fs::perms::none);
  auto fhir = interop::ParseFhir(ReadText(out));
  ASSERT_TRUE(fhir.ok()) << fhir.status().ToString();
  auto original = interop::ParseCcda(ReadText(Interop("ccda/Documents_CCD_CCD_1_CCD.xml")));
  ASSERT_TRUE(original.ok());
  EXPECT_EQ(interop::CanonicalJson(*fhir)["entries"], interop::CanonicalJson(*original)["entries"]);
  r = RunMedvault("export --data " + data_ + " --patient " + patient + " --format ccda");
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("<ClinicalDocument"), std::string::npos);

  // As a doctor: nothing without a relationship, the record with one.
  auto inst = RunMedvault("institution create --name Clinic --data " + data_, kCheap);
  ASSERT_EQ(inst.exit_code, 0) << inst.output;
  auto doc = RunMedvault(
      "account create --username dr.cli --display-name 'Dr Cli' --role doctor "
      "--institution " +
          inst.output.substr(0, 32) + " --data " + data_,
      kCheap);
  ASSERT_EQ(doc.exit_code, 0) << doc.output;
  const std::string doctor = doc.output.substr(0, 32);
  r = RunMedvault("export --data " + data_ + " --patient " + patient + " --as " + doctor);
  EXPECT_NE(r.exit_code, 0);
  // The whole record is decided first, as on the API: the deny's reason.
  EXPECT_NE(r.output.find("no-relationship"), std::string::npos) << r.output;
  ASSERT_EQ(RunMedvault("relationship start --patient " + patient + " --clinician " + doctor +
                            " --data " + data_,
                        kCheap)
                .exit_code,
            0);
  r = RunMedvault("export --data " + data_ + " --patient " + patient + " --as " + doctor);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"resourceType\":\"Bundle\""), std::string::npos);
  // Bad arguments.
  EXPECT_NE(
      RunMedvault("export --data " + data_ + " --patient " + patient + " --format pdf").exit_code,
      0);
  EXPECT_NE(RunMedvault("export --data " + data_).exit_code, 0);
  EXPECT_NE(RunMedvault("export --data " + data_ + " --patient " + patient + " --as " +
                        std::string(32, 'b'))
                .exit_code,
            0);
  EXPECT_NE(RunMedvault("export --data " + data_ + " --patient " + std::string(32, 'c')).exit_code,
            0);
  // The exports are in the ledger: the offline verification still passes.
  r = RunMedvault("ledger verify --data " + data_);
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace medvault
