// Data operations through the enforcement layer (src/enforce/operations.cc)
// on the real runtime: each decides before it touches data, and the same
// operations serve every door (the HTTP routes and the CLI use these).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "enforce_fixture.h"

namespace medvault {
namespace {

using policy::Action;

class EnforceOperationsTest : public testing::EnforceFixture {
 protected:
  void SetUp() override {
    EnforceFixture::SetUp();
    enforce::Scope console(rt_->enforce_deps(), enforce::ConsoleContext("test"));
    record::SegmentWrite w;
    w.kind = record::ContentKind::kJson;
    w.content =
        ToBytes(R"({"systolic":120,"diastolic":80,"unit":"mmHg","time":"2026-11-20T07:30:00Z"})");
    ASSERT_TRUE(rt_->records->WriteSegment(patient_, "physical-signs/blood-pressure", w, "t").ok());
    w.sensitivity = 4;
    w.content = ToBytes(R"({"bpm":61,"unit":"/min","time":"2026-11-20T07:30:00Z"})");
    ASSERT_TRUE(rt_->records->WriteSegment(patient_, "physical-signs/heart-rate", w, "t").ok());
  }

  static std::string Ccda() {
    std::ifstream in(std::string(MEDVAULT_TESTDATA_DIR) +
                     "/interop/ccda/Documents_CCD_CCD_1_CCD.xml");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
};

TEST_F(EnforceOperationsTest, OpenSegmentDecidesBeforeReadingAndAgainOnTheStoredSensitivity) {
  {
    // Without a relationship: the same deny for a segment that exists and
    // one that does not (nothing about the record is answered).
    enforce::Scope scope(rt_->enforce_deps(), DoctorContext());
    auto a = enforce::OpenSegment(scope, *rt_->records, Action::kRead, patient_,
                                  "physical-signs/blood-pressure", 0);
    auto b = enforce::OpenSegment(scope, *rt_->records, Action::kRead, patient_,
                                  "physical-signs/none", 0);
    EXPECT_EQ(a.status().code(), StatusCode::kPermissionDenied);
    EXPECT_EQ(b.status().code(), StatusCode::kPermissionDenied);
    EXPECT_EQ(a.status().message(), b.status().message());
  }
  ASSERT_TRUE(rt_->access->StartRelationship(patient_, doctor_.account_id).ok());
  enforce::Scope scope(rt_->enforce_deps(), DoctorContext());
  auto ok = enforce::OpenSegment(scope, *rt_->records, Action::kRead, patient_,
                                 "physical-signs/blood-pressure", 0);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(scope.decisions(), 1) << "stored at the default sensitivity: one decision";
  // Stored at sensitivity 4, above a doctor's clearance 3: the second
  // decision refuses it.
  auto secret = enforce::OpenSegment(scope, *rt_->records, Action::kRead, patient_,
                                     "physical-signs/heart-rate", 0);
  EXPECT_EQ(secret.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(scope.summary(), "deny insufficient-clearance");
  EXPECT_EQ(scope.decisions(), 3);
}

// A write's decision rides in the write's own transaction: after the write
// returns, nothing is pending, and the ledger holds the decision right
// before the segment.write entry. A failed write gives its decision back to
// the scope, which appends it at Commit: never a decision lost.
TEST_F(EnforceOperationsTest, AWritesDecisionCommitsWithTheWrite) {
  ASSERT_TRUE(rt_->access->StartRelationship(patient_, doctor_.account_id).ok());
  const uint64_t before = LedgerSize();
  enforce::Scope scope(rt_->enforce_deps(), DoctorContext());
  ASSERT_TRUE(
      scope.Decide(Action::kWrite, enforce::SegmentResource(patient_, "life-record/diet")).ok());
  EXPECT_EQ(scope.pending_entries(), 1u);
  record::SegmentWrite w;
  w.kind = record::ContentKind::kText;
  w.content = ToBytes("less salt");
  auto written = enforce::WriteSegment(scope, *rt_->records, patient_, "life-record/diet", w,
                                       doctor_.account_id);
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(scope.pending_entries(), 0u) << "the decision committed with the write";
  ASSERT_TRUE(scope.Commit().ok());
  std::vector<ledger::Entry> entries = EntriesSince(before);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].action, ledger::kActionDecision);
  EXPECT_EQ(entries[0].effect, "permit");
  EXPECT_EQ(entries[1].action, ledger::kActionSegmentWrite);
  EXPECT_EQ(entries[0].request_id, entries[1].request_id);

  // Refused by the record service (not valid UTF-8): the decision is back
  // in the scope and reaches the ledger at Commit; no write entry.
  const uint64_t mid = LedgerSize();
  ASSERT_TRUE(
      scope.Decide(Action::kWrite, enforce::SegmentResource(patient_, "life-record/diet")).ok());
  w.content = Bytes{0xff, 0xfe};
  auto refused = enforce::WriteSegment(scope, *rt_->records, patient_, "life-record/diet", w,
                                       doctor_.account_id);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(scope.pending_entries(), 1u);
  ASSERT_TRUE(scope.Commit().ok());
  entries = EntriesSince(mid);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].action, ledger::kActionDecision);

  // Refused inside the store, after the decision was handed over: a write
  // into another patient's record, which no decision of this scope covers
  // (fail closed). The decision comes back and is recorded; nothing else.
  std::string other;
  {
    enforce::Scope console(rt_->enforce_deps(), enforce::ConsoleContext("test"));
    auto p = rt_->records->CreatePatient({"Bob", "Other", "1960-01-01", "male", ""}, "t");
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    other = p->patient_id;
    ASSERT_TRUE(console.Commit().ok());
  }
  const uint64_t before_other = LedgerSize();
  ASSERT_TRUE(
      scope.Decide(Action::kWrite, enforce::SegmentResource(patient_, "life-record/diet")).ok());
  w.content = ToBytes("not for this record");
  auto elsewhere =
      enforce::WriteSegment(scope, *rt_->records, other, "life-record/diet", w, doctor_.account_id);
  EXPECT_EQ(elsewhere.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(scope.pending_entries(), 1u);
  ASSERT_TRUE(scope.Commit().ok());
  entries = EntriesSince(before_other);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].action, ledger::kActionDecision);
  EXPECT_EQ(rt_->records->ListVersions(other, "life-record/diet").status().code(),
            StatusCode::kNotFound);

  // Without lending (a direct record write), the decision waits for Commit.
  ASSERT_TRUE(
      scope.Decide(Action::kWrite, enforce::SegmentResource(patient_, "life-record/diet")).ok());
  w.content = ToBytes("more water");
  ASSERT_TRUE(rt_->records->WriteSegment(patient_, "life-record/diet", w, "t").ok());
  EXPECT_EQ(scope.pending_entries(), 1u);
  ASSERT_TRUE(scope.Commit().ok());
}

TEST_F(EnforceOperationsTest, ImportIsRefusedWholeWhenTheRecordIsNotWritable) {
  enforce::Scope scope(rt_->enforce_deps(), DoctorContext());
  auto out = enforce::ImportDocument(scope, *rt_->records, Ccda(), patient_);
  EXPECT_EQ(out.status().code(), StatusCode::kPermissionDenied);
  auto tree = rt_->records->ListTree(patient_, "");
  ASSERT_TRUE(tree.ok());
  EXPECT_EQ(tree->size(), 2u) << "nothing was written";
}

TEST_F(EnforceOperationsTest, TheConsoleImportsIntoANewPatientAndEveryDecisionIsRecorded) {
  const uint64_t before = LedgerSize();
  enforce::Scope scope(rt_->enforce_deps(), enforce::ConsoleContext("import"));
  auto out = enforce::ImportDocument(scope, *rt_->records, Ccda(), "");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(out->patient_created);
  EXPECT_GT(out->segments.size(), 1u);
  ASSERT_TRUE(scope.Commit().ok());
  ASSERT_TRUE(rt_->ledger->Sync().ok());
  size_t decisions = 0, writes = 0;
  for (uint64_t seq = before; seq < rt_->ledger->Size(); ++seq) {
    auto rec = rt_->ledger->GetEntry(seq);
    ASSERT_TRUE(rec.ok());
    decisions += rec->entry.action == ledger::kActionDecision ? 1 : 0;
    if (rec->entry.action == ledger::kActionSegmentWrite) {
      ++writes;
      EXPECT_EQ(rec->entry.request_id, scope.origin().request_id);
      EXPECT_EQ(rec->entry.actor, "cli");
    }
  }
  EXPECT_EQ(decisions, 2u) << "search (matching the patient) and create";
  EXPECT_EQ(writes, out->segments.size());
  // The same document again: unchanged, nothing written.
  enforce::Scope again(rt_->enforce_deps(), enforce::ConsoleContext("import"));
  auto second = enforce::ImportDocument(again, *rt_->records, Ccda(), "");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(second->unchanged);
  EXPECT_EQ(second->patient_id, out->patient_id);
}

TEST_F(EnforceOperationsTest, AnOutrightDenyFailsTheExportBeforeAnythingIsRead) {
  enforce::Scope scope(rt_->enforce_deps(), DoctorContext());
  auto out = enforce::ExportRecord(scope, *rt_->records, patient_, interop::Format::kFhir);
  EXPECT_EQ(out.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(scope.decisions(), 1);
}

TEST_F(EnforceOperationsTest, AnExportLeavesOutWhatTheReaderMayNotSee) {
  ASSERT_TRUE(rt_->access->StartRelationship(patient_, doctor_.account_id).ok());
  enforce::Scope scope(rt_->enforce_deps(), DoctorContext());
  auto out = enforce::ExportRecord(scope, *rt_->records, patient_, interop::Format::kFhir);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->outcome.segments_included, 1u);
  EXPECT_EQ(out->outcome.segments_withheld, 1u) << "the sensitivity-4 segment";
  EXPECT_EQ(out->masked_withheld, 0u);
  enforce::Scope console(rt_->enforce_deps(), enforce::ConsoleContext("export"));
  auto all = enforce::ExportRecord(console, *rt_->records, patient_, interop::Format::kFhir);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->outcome.segments_included, 2u);
}

TEST_F(EnforceOperationsTest, MaskingReplacesNamedFieldsAtAnyDepthAndFailsClosed) {
  policy::Decision d;
  d.effect = policy::Effect::kPermit;
  const std::vector<std::string> fields = {"insurance_number", "secret"};
  d.obligations.mask_fields = &fields;
  nlohmann::json j = {{"secret", "s"}, {"nested", {{"secret", "t"}, {"kept", 1}}}};
  ASSERT_TRUE(enforce::ApplyMasking(j, d).ok());
  EXPECT_EQ(j["secret"], "[masked]");
  EXPECT_EQ(j["nested"]["secret"], "[masked]");
  EXPECT_EQ(j["nested"]["kept"], 1);
  nlohmann::json arr = nlohmann::json::array({1, 2});
  ASSERT_TRUE(enforce::ApplyMasking(arr, d).ok());
  EXPECT_EQ(arr, "[masked]") << "what cannot be masked field by field is masked whole";
  const std::vector<std::string> none;
  d.obligations.mask_fields = &none;
  nlohmann::json untouched = {{"secret", "s"}};
  ASSERT_TRUE(enforce::ApplyMasking(untouched, d).ok());
  EXPECT_EQ(untouched["secret"], "s");
}

}  // namespace
}  // namespace medvault
