// The enforcement Scope (src/enforce/scope.cc) over the real runtime: the
// decision point, the ledger and the record service of a data directory.
// What it must hold: decisions are recorded with the request's origin, the
// console is named as such, record writes outside a scope (or not covered by
// a permit) are refused inside the store's transaction, and an answer
// without a decision is refused.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "common/ids.h"
#include "enforce_fixture.h"

namespace medvault {
namespace {

using policy::Action;

class EnforceScopeTest : public testing::EnforceFixture {
 protected:
  uint64_t Versions(const std::string& path) {
    auto v = rt_->records->ListVersions(patient_, path);
    return v.ok() ? v->size() : 0;
  }

  record::SegmentWrite Text(const std::string& text) {
    record::SegmentWrite w;
    w.kind = record::ContentKind::kText;
    w.content = ToBytes(text);
    return w;
  }
};

TEST_F(EnforceScopeTest, AScopeBindsItsOriginToItsThreadOnlyAndNestedScopesRestore) {
  EXPECT_FALSE(enforce::CurrentOrigin().has_value());
  {
    enforce::Scope outer(rt_->enforce_deps(), enforce::ConsoleContext("outer"));
    ASSERT_TRUE(enforce::CurrentOrigin().has_value());
    EXPECT_EQ(enforce::CurrentOrigin()->route, "cli outer");
    EXPECT_EQ(enforce::CurrentOrigin()->Actor(), "cli");
    EXPECT_EQ(outer.origin().request_id.rfind("cli-", 0), 0u) << outer.origin().request_id;
    {
      enforce::Scope inner(rt_->enforce_deps(), DoctorContext());
      EXPECT_EQ(enforce::CurrentOrigin()->Actor(), doctor_.account_id);
    }
    EXPECT_EQ(enforce::CurrentOrigin()->route, "cli outer");
    // Another thread sees no scope.
    bool other_has_scope = true;
    std::thread t([&] { other_has_scope = enforce::CurrentOrigin().has_value(); });
    t.join();
    EXPECT_FALSE(other_has_scope);
  }
  EXPECT_FALSE(enforce::CurrentOrigin().has_value());
}

// exchange::ImportInOrder plans on one thread and commits on another: a
// binding makes a scope current where it is used, and a scope destroyed on
// a thread where it is not bound leaves that thread's binding alone.
TEST_F(EnforceScopeTest, ABindingCarriesAScopeToAnotherThread) {
  enforce::Scope outer(rt_->enforce_deps(), enforce::ConsoleContext("outer"));
  std::unique_ptr<enforce::Scope> made_elsewhere;
  std::thread t([&] {
    made_elsewhere = std::make_unique<enforce::Scope>(rt_->enforce_deps(), DoctorContext());
  });
  t.join();
  EXPECT_EQ(enforce::CurrentOrigin()->route, "cli outer") << "not bound here by its making";
  {
    enforce::ScopeBinding bound(*made_elsewhere);
    EXPECT_EQ(enforce::CurrentScope(), made_elsewhere.get());
    EXPECT_EQ(enforce::CurrentOrigin()->Actor(), doctor_.account_id);
  }
  EXPECT_EQ(enforce::CurrentScope(), &outer);
  made_elsewhere.reset();
  EXPECT_EQ(enforce::CurrentScope(), &outer) << "its destruction here unbinds nothing";
}

TEST_F(EnforceScopeTest, ADenyIsRefusedRecordedWithTheOriginAndNamesThePatientOnlyByPseudonym) {
  const uint64_t before = LedgerSize();
  enforce::Scope scope(rt_->enforce_deps(), DoctorContext());
  // No treating relationship: denied.
  Status st = scope.Decide(Action::kRead, enforce::SegmentResource(patient_, "physical-signs/bp"));
  EXPECT_EQ(st.code(), StatusCode::kPermissionDenied) << st.ToString();
  EXPECT_EQ(scope.summary(), "deny no-relationship");
  EXPECT_EQ(scope.decisions(), 1);
  EXPECT_EQ(LedgerSize(), before) << "nothing is appended before Commit";
  ASSERT_TRUE(scope.Commit().ok());
  const auto entries = EntriesSince(before);
  ASSERT_EQ(entries.size(), 1u);
  const ledger::Entry& e = entries[0];
  EXPECT_EQ(e.action, ledger::kActionDecision);
  EXPECT_EQ(e.effect, ledger::kEffectDeny);
  EXPECT_EQ(e.actor, doctor_.account_id);
  EXPECT_EQ(e.request_id, scope.origin().request_id);
  EXPECT_EQ(e.purpose, "treatment");
  EXPECT_EQ(e.details.at("route"), "cli test");
  EXPECT_EQ(e.patient_ref, ledger::PatientRef(rt_->patient_ref_key, patient_));
  EXPECT_EQ(ledger::Encode(e).size() > 0, true);
  const Bytes encoded = ledger::Encode(e);
  EXPECT_EQ(std::string(AsString(encoded)).find(patient_), std::string::npos);
  // Commit is idempotent when nothing is pending.
  ASSERT_TRUE(scope.Commit().ok());
  EXPECT_EQ(EntriesSince(before).size(), 1u);
}

// CommitAsync: the entries leave the scope at once; `done` gets OK only
// once they are in the ledger, and may outlive the scope. Nothing pending:
// OK at once, nothing appended.
TEST_F(EnforceScopeTest, CommitAsyncReportsOnceTheEntriesAreDurable) {
  const uint64_t before = LedgerSize();
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Status> outcome;
  uint64_t size_at_done = 0;
  {
    enforce::Scope scope(rt_->enforce_deps(), DoctorContext());
    EXPECT_FALSE(
        scope.Decide(Action::kRead, enforce::SegmentResource(patient_, "physical-signs/bp")).ok());
    ASSERT_EQ(scope.pending_entries(), 1u);
    scope.CommitAsync([&](const Status& st) {
      std::lock_guard<std::mutex> lock(mu);
      size_at_done = LedgerSize();
      outcome = st;
      cv.notify_all();
    });
    EXPECT_EQ(scope.pending_entries(), 0u) << "the entries left the scope";
  }  // the scope is gone before (or after) the commit: either is fine
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return outcome.has_value(); }));
    EXPECT_TRUE(outcome->ok()) << outcome->ToString();
    EXPECT_EQ(size_at_done, before + 1) << "reported before the entry was in the ledger";
  }
  ASSERT_EQ(EntriesSince(before).size(), 1u);
  EXPECT_EQ(EntriesSince(before)[0].effect, ledger::kEffectDeny);

  enforce::Scope idle(rt_->enforce_deps(), DoctorContext());
  bool called = false;
  idle.CommitAsync([&](const Status& st) {
    called = true;
    EXPECT_TRUE(st.ok());
  });
  EXPECT_TRUE(called) << "nothing pending: reported at once";
  EXPECT_EQ(LedgerSize(), before + 1);
}

TEST_F(EnforceScopeTest, PermitsFilterWithoutReplacingTheRequestsDecision) {
  ASSERT_TRUE(rt_->access->StartRelationship(patient_, doctor_.account_id).ok());
  enforce::Scope scope(rt_->enforce_deps(), DoctorContext());
  ASSERT_TRUE(scope.Decide(Action::kList, enforce::SegmentResource(patient_, "")).ok());
  EXPECT_EQ(scope.summary(), "permit treating-relationship");
  policy::Decision d;
  // Sensitivity 4 is above a doctor's clearance: the filter says no, the
  // request's decision stays the permit.
  EXPECT_FALSE(scope.Permits(Action::kRead,
                             enforce::SegmentResource(patient_, "mental-health/notes", 4), &d));
  EXPECT_FALSE(d.permitted());
  EXPECT_TRUE(scope.last_decision().permitted());
  EXPECT_EQ(scope.summary(), "permit treating-relationship");
  EXPECT_EQ(scope.decisions(), 2);
  EXPECT_EQ(scope.pending_entries(), 2u) << "filtering decisions are recorded too";
}

TEST_F(EnforceScopeTest, TheConsoleIsPermittedAsTheConsoleButNeverBreaksGlass) {
  const uint64_t before = LedgerSize();
  enforce::Scope scope(rt_->enforce_deps(), enforce::ConsoleContext("export"));
  ASSERT_TRUE(scope.Decide(Action::kExport, enforce::SegmentResource(patient_, "")).ok());
  EXPECT_EQ(scope.summary(), "permit console");
  EXPECT_EQ(scope.DecideBreakGlass(patient_, "a long enough emergency reason").code(),
            StatusCode::kPermissionDenied);
  ASSERT_TRUE(scope.Commit().ok());
  const auto entries = EntriesSince(before);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].actor, "cli");
  EXPECT_EQ(entries[0].reasons, std::vector<std::string>{"console"});
  EXPECT_EQ(entries[0].purpose, "") << "the console declares no purpose of use";
  EXPECT_EQ(entries[1].action, ledger::kActionBreakGlass);
  EXPECT_EQ(entries[1].effect, ledger::kEffectDeny);
}

TEST_F(EnforceScopeTest, ARecordWriteOutsideAnyScopeIsRefusedAndWritesNothing) {
  const uint64_t ledger_before = LedgerSize();
  auto w = rt_->records->WriteSegment(patient_, "other/outside", Text("x"), "someone");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::kFailedPrecondition) << w.status().ToString();
  EXPECT_EQ(Versions("other/outside"), 0u);
  ASSERT_TRUE(rt_->ledger->Sync().ok());
  EXPECT_EQ(rt_->ledger->Size(), ledger_before);
  // Nor may anyone create a patient outside a scope.
  auto p = rt_->records->CreatePatient({"No", "Scope", "1970-01-01", "unknown", ""}, "x");
  EXPECT_EQ(p.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(EnforceScopeTest, AWriteNeedsAPermitOnThatPatientInTheBoundScope) {
  ASSERT_TRUE(rt_->access->StartRelationship(patient_, doctor_.account_id).ok());
  enforce::Scope console(rt_->enforce_deps(), enforce::ConsoleContext("test"));
  auto other = rt_->records->CreatePatient({"Bo", "Other", "1970-01-01", "unknown", ""}, "t");
  ASSERT_TRUE(other.ok());
  {
    enforce::Scope scope(rt_->enforce_deps(), DoctorContext());
    // A read permit covers no write.
    ASSERT_TRUE(scope.Decide(Action::kRead, enforce::SegmentResource(patient_, "other/a")).ok());
    auto refused = rt_->records->WriteSegment(patient_, "other/a", Text("1"), doctor_.account_id);
    EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
    // A write permit on this patient covers writes into this patient only.
    ASSERT_TRUE(scope.Decide(Action::kWrite, enforce::SegmentResource(patient_, "other/a")).ok());
    auto elsewhere =
        rt_->records->WriteSegment(other->patient_id, "other/a", Text("1"), doctor_.account_id);
    EXPECT_EQ(elsewhere.status().code(), StatusCode::kFailedPrecondition);
    const uint64_t before = LedgerSize();
    auto written = rt_->records->WriteSegment(patient_, "other/a", Text("1"), doctor_.account_id);
    ASSERT_TRUE(written.ok()) << written.status().ToString();
    // The write's entry names this scope's request.
    const auto entries = EntriesSince(before);
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0].action, ledger::kActionSegmentWrite);
    EXPECT_EQ(entries[0].request_id, scope.origin().request_id);
    EXPECT_EQ(entries[0].actor, doctor_.account_id);
  }
  EXPECT_EQ(Versions("other/a"), 1u);
}

TEST_F(EnforceScopeTest, ACreatePermitCoversTheNewRecordOnlyNotAnExistingOne) {
  enforce::Scope scope(rt_->enforce_deps(), DoctorContext());
  ASSERT_TRUE(scope.Decide(Action::kCreatePatient, {}).ok()) << scope.summary();
  auto refused = rt_->records->WriteSegment(patient_, "other/a", Text("1"), doctor_.account_id);
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Versions("other/a"), 0u);
  auto created = rt_->records->CreatePatient({"New", "Born", "2026-01-01", "female", ""}, "x");
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto into_new =
      rt_->records->WriteSegment(created->patient_id, "other/a", Text("1"), doctor_.account_id);
  EXPECT_TRUE(into_new.ok()) << into_new.status().ToString();
  // Without the create permit, no record is created at all.
  enforce::Scope reader(rt_->enforce_deps(), DoctorContext());
  auto none = rt_->records->CreatePatient({"No", "Permit", "2026-01-01", "male", ""}, "x");
  EXPECT_EQ(none.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(EnforceScopeTest, AnAnswerWithoutADecisionIsRefused) {
  enforce::Scope scope(rt_->enforce_deps(), DoctorContext());
  EXPECT_EQ(scope.RequireDecision().code(), StatusCode::kInternal);
  (void)scope.Decide(Action::kSearchPatients, {});
  EXPECT_TRUE(scope.RequireDecision().ok());
  enforce::Scope summarised(rt_->enforce_deps(), DoctorContext());
  summarised.SetSummary("permit filtered");
  EXPECT_TRUE(summarised.RequireDecision().ok());
}

TEST_F(EnforceScopeTest, AccountChangesNameTheScopesActor) {
  const uint64_t before = LedgerSize();
  {
    enforce::Scope console(rt_->enforce_deps(), enforce::ConsoleContext("account disable"));
    ASSERT_TRUE(rt_->accounts->SetDisabled(doctor_.account_id, true).ok());
  }
  ASSERT_TRUE(rt_->accounts->SetDisabled(doctor_.account_id, false).ok());
  const auto entries = EntriesSince(before);
  ASSERT_GE(entries.size(), 2u);
  EXPECT_EQ(entries.front().actor, "cli");
  EXPECT_FALSE(entries.front().request_id.empty());
  EXPECT_EQ(entries.back().actor, "system") << "outside a scope: start-up maintenance";
  EXPECT_EQ(entries.back().request_id, "");
}

}  // namespace
}  // namespace medvault
