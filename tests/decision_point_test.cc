// Unit tests of the decision point, step by step, with the shipped policy
// (config/policy.conf); PolicyData; thread safety; no allocation in Decide().
// The table of tests/data/pdp_cases.txt covers the combinations.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "policy/policy.h"
#include "test_util.h"

// Counts heap allocations, to prove that Decide() makes none.
namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
}  // namespace

// GCC cannot see that these replace the global pair, and warns where the
// standard library inlines a delete.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
  }
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) {
    throw std::bad_alloc();
  }
  return p;
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace medvault::policy {
namespace {

constexpr int64_t kMinute = 60 * 1000;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kT = 1780308000000;  // 2026-06-01T10:00:00Z

std::shared_ptr<const Policy> ShippedPolicy() {
  auto p = Policy::Load(std::filesystem::path(MEDVAULT_SOURCE_DIR) / "config" / "policy.conf");
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return *p;
}

class DecisionPointTest : public ::testing::Test {
 protected:
  DecisionPointTest() : policy_(ShippedPolicy()), dp_(policy_, &data_) {}

  Subject Staff(std::string_view account, std::vector<std::string> roles,
                std::string_view institution = "stmary", std::string_view department = "cardio") {
    Subject s;
    s.account_id = account;
    auto set = policy_->RolesOf(roles);
    EXPECT_TRUE(set.ok());
    s.roles = *set;
    s.institution_id = institution;
    s.department_id = department;
    s.mfa_verified = true;
    return s;
  }
  Subject PatientAccount(std::string_view account, std::string_view patient) {
    Subject s;
    s.account_id = account;
    s.roles = *policy_->RolesOf({"patient"});
    s.patient_id = patient;
    return s;
  }
  Subject Proxy(std::string_view account) {
    Subject s;
    s.account_id = account;
    s.roles = *policy_->RolesOf({"family-proxy"});
    return s;
  }
  static Resource Seg(std::string_view patient, std::string_view path, std::string_view category,
                      int sensitivity) {
    Resource r;
    r.patient_id = patient;
    r.path = path;
    r.category = category;
    r.sensitivity = sensitivity;
    return r;
  }
  static Resource Vitals(std::string_view patient = "alice") {
    return Seg(patient, "physical-signs/blood-pressure", "physical-signs", 1);
  }
  static Resource Cardio(std::string_view patient = "alice") {
    return Seg(patient, "internal-medicine/cardiology/ecg", "clinical", 2);
  }
  static Resource Psych(std::string_view patient = "alice") {
    return Seg(patient, "psychiatry/notes", "clinical", 4);
  }
  static Resource Patient(std::string_view patient) {
    Resource r;
    r.patient_id = patient;
    return r;
  }
  static Context At(int64_t now, Purpose purpose = Purpose::kTreatment,
                    NetworkZone zone = NetworkZone::kInternal) {
    Context c;
    c.now_ms = now;
    c.purpose = purpose;
    c.zone = zone;
    return c;
  }

  void Treats(std::string id, std::string patient, std::string account, int64_t start = kT - kDay,
              int64_t end = 0) {
    Relationship r;
    r.relationship_id = std::move(id);
    r.patient_id = std::move(patient);
    r.clinician_account_id = std::move(account);
    r.started_at_ms = start;
    r.ended_at_ms = end;
    data_.UpsertRelationship(std::move(r));
  }
  static Consent MakeConsent(std::string id, std::string patient, bool deny, GranteeKind kind,
                             std::string grantee, std::string path, uint32_t actions = 0,
                             uint32_t purposes = 0, int64_t not_before = 0, int64_t expires = 0) {
    Consent c;
    c.consent_id = std::move(id);
    c.patient_id = std::move(patient);
    c.deny = deny;
    c.grantee_kind = kind;
    c.grantee = std::move(grantee);
    c.path_prefix = std::move(path);
    c.actions = actions;
    c.purposes = purposes;
    c.not_before_ms = not_before;
    c.expires_at_ms = expires;
    return c;
  }

  Decision Decide(const Subject& s, Action a, const Resource& r, const Context& c) {
    Decision d = dp_.Decide(s, a, r, c);
    EXPECT_NE(d.obligations.mask_fields, nullptr);
    EXPECT_TRUE(d.obligations.audit);
    EXPECT_GE(d.reason_count, 1);
    return d;
  }

  std::shared_ptr<const Policy> policy_;
  PolicyData data_;
  DecisionPoint dp_;
};

::testing::AssertionResult Is(const Decision& d, Effect effect, Reason reason) {
  if (d.effect == effect && d.reason() == reason) {
    return ::testing::AssertionSuccess();
  }
  const auto name = [](Effect e) { return e == Effect::kPermit ? "permit " : "deny "; };
  return ::testing::AssertionFailure() << "got " << name(d.effect) << ReasonCode(d.reason())
                                       << ", want " << name(effect) << ReasonCode(reason);
}

#define EXPECT_DECISION(decision, effect_, reason_) \
  EXPECT_TRUE(Is((decision), Effect::effect_, Reason::reason_))

TEST_F(DecisionPointTest, Step1Unauthenticated) {
  Subject nobody;
  EXPECT_DECISION(Decide(nobody, Action::kRead, Vitals(), At(kT)), kDeny, kUnauthenticated);
  EXPECT_DECISION(Decide(nobody, Action::kReadMetrics, {}, At(kT)), kDeny, kUnauthenticated);
  // Even a subject that claims a patient id.
  nobody.patient_id = "alice";
  EXPECT_DECISION(Decide(nobody, Action::kRead, Vitals(), At(kT)), kDeny, kUnauthenticated);
}

TEST_F(DecisionPointTest, Step2NoHealthDataRole) {
  const Subject op = Staff("op", {"operator"});
  EXPECT_DECISION(Decide(op, Action::kReadMetrics, {}, At(kT)), kPermit, kRolePermission);
  for (Action a : {Action::kRead, Action::kList, Action::kWrite, Action::kExport,
                   Action::kReadDemographics, Action::kSearchPatients, Action::kCreatePatient,
                   Action::kBreakGlass, Action::kReadAccessHistory}) {
    EXPECT_DECISION(Decide(op, a, Vitals(), At(kT)), kDeny, kNoHealthDataRole) << ActionName(a);
  }
  // Not a health-data action: the ordinary rules say no.
  EXPECT_DECISION(Decide(op, Action::kReadAudit, {}, At(kT)), kDeny, kNoRolePermission);

  // Both roles: the ban wins over a treating relationship, a grant and break-glass.
  const Subject both = Staff("op-doc", {"operator", "doctor"});
  Treats("r-opdoc", "alice", "op-doc");
  data_.UpsertConsent(MakeConsent("g-opdoc", "alice", false, GranteeKind::kAccount, "op-doc", ""));
  EXPECT_DECISION(Decide(both, Action::kRead, Vitals(), At(kT)), kDeny, kNoHealthDataRole);
  EXPECT_DECISION(dp_.DecideBreakGlass(both, "alice", "cardiac arrest in ward 3", At(kT)), kDeny,
                  kNoHealthDataRole);
  // Even on their own record.
  Subject self_op = Staff("op-pat", {"operator"});
  self_op.patient_id = "alice";
  EXPECT_DECISION(Decide(self_op, Action::kRead, Vitals(), At(kT)), kDeny, kNoHealthDataRole);
  // And before MFA: no point asking for a second factor.
  Subject no_mfa = op;
  no_mfa.mfa_verified = false;
  EXPECT_DECISION(Decide(no_mfa, Action::kRead, Vitals(), At(kT)), kDeny, kNoHealthDataRole);
}

TEST_F(DecisionPointTest, Step3MfaRequired) {
  Treats("r1", "alice", "dr-house");
  Subject doc = Staff("dr-house", {"doctor"});
  EXPECT_DECISION(Decide(doc, Action::kRead, Vitals(), At(kT)), kPermit, kTreatingRelationship);
  doc.mfa_verified = false;
  EXPECT_DECISION(Decide(doc, Action::kRead, Vitals(), At(kT)), kDeny, kMfaRequired);
  EXPECT_DECISION(Decide(doc, Action::kSearchPatients, {}, At(kT)), kDeny, kMfaRequired);
  // A doctor who is also a patient still needs MFA on their own record.
  doc.patient_id = "alice";
  EXPECT_DECISION(Decide(doc, Action::kRead, Vitals(), At(kT)), kDeny, kMfaRequired);
  // Patients and proxies do not.
  EXPECT_DECISION(Decide(PatientAccount("pat-alice", "alice"), Action::kRead, Vitals(), At(kT)),
                  kPermit, kPatientSelf);
  // An account with no role at all needs no MFA and gets nothing.
  Subject bare;
  bare.account_id = "bare";
  EXPECT_DECISION(Decide(bare, Action::kRead, Vitals(), At(kT)), kDeny, kNoRolePermission);
}

TEST_F(DecisionPointTest, Step4PatientSelf) {
  const Subject alice = PatientAccount("pat-alice", "alice");
  for (Action a :
       {Action::kRead, Action::kList, Action::kWrite, Action::kExport, Action::kReadDemographics,
        Action::kManageConsent, Action::kReadAccessHistory, Action::kManageRelationship}) {
    const Decision d = Decide(alice, a, Psych(), At(kT));
    EXPECT_DECISION(d, kPermit, kPatientSelf) << ActionName(a);
    EXPECT_FALSE(d.obligations.notify_patient);
    EXPECT_EQ(d.obligations.expires_at_ms, 0);
    EXPECT_TRUE(d.obligations.mask_fields->empty());
  }
  // Her own denials do not bind her.
  data_.UpsertConsent(MakeConsent("deny-all", "alice", true, GranteeKind::kRole, "patient", "", 0));
  EXPECT_DECISION(Decide(alice, Action::kRead, Vitals(), At(kT)), kPermit, kPatientSelf);
  // The doctor's notes are written by clinicians only.
  EXPECT_DECISION(
      Decide(alice, Action::kWrite,
             Seg("alice", "doctor-description/orders", "doctor-description", 2), At(kT)),
      kDeny, kNoRolePermission);
  EXPECT_DECISION(
      Decide(alice, Action::kRead,
             Seg("alice", "doctor-description/orders", "doctor-description", 2), At(kT)),
      kPermit, kPatientSelf);
  // Not among the patient's own actions.
  for (Action a : {Action::kDelegate, Action::kBreakGlass, Action::kErasePatient,
                   Action::kReadAudit, Action::kManageAccounts, Action::kCreatePatient}) {
    EXPECT_FALSE(Decide(alice, a, Patient("alice"), At(kT)).permitted()) << ActionName(a);
  }
  // Another patient's record.
  EXPECT_DECISION(Decide(alice, Action::kRead, Vitals("bob"), At(kT)), kDeny, kNoRolePermission);
  // A patient account's grant from another patient does not help: no role permission.
  data_.UpsertConsent(
      MakeConsent("g-bob-alice", "bob", false, GranteeKind::kAccount, "pat-alice", ""));
  EXPECT_DECISION(Decide(alice, Action::kRead, Vitals("bob"), At(kT)), kDeny, kNoRolePermission);
}

ProxyLink MakeProxy(std::string id, std::string patient, std::string account,
                    std::vector<std::string> prefixes, uint32_t actions, int64_t expires = 0,
                    int64_t revoked = 0) {
  ProxyLink p;
  p.proxy_id = std::move(id);
  p.patient_id = std::move(patient);
  p.proxy_account_id = std::move(account);
  p.path_prefixes = std::move(prefixes);
  p.actions = actions;
  p.expires_at_ms = expires;
  p.revoked_at_ms = revoked;
  return p;
}

TEST_F(DecisionPointTest, Step5FamilyProxy) {
  const uint32_t rw = ActionBit(Action::kRead) | ActionBit(Action::kList) |
                      ActionBit(Action::kWrite) | ActionBit(Action::kManageConsent);
  data_.UpsertProxy(
      MakeProxy("px-carl", "alice", "fam-carl", {"physical-signs", "life-record"}, rw, kT + kDay));
  const Subject carl = Proxy("fam-carl");
  Decision d = Decide(carl, Action::kRead, Vitals(), At(kT));
  EXPECT_DECISION(d, kPermit, kProxyWithinScope);
  EXPECT_FALSE(d.obligations.notify_patient);
  EXPECT_EQ(d.obligations.expires_at_ms, kT + kDay);
  EXPECT_EQ(d.basis_id, "px-carl");
  d = Decide(carl, Action::kWrite, Seg("alice", "life-record/diet", "life-record", 1), At(kT));
  EXPECT_DECISION(d, kPermit, kProxyWithinScope);
  EXPECT_TRUE(d.obligations.notify_patient);
  EXPECT_FALSE(d.obligations.flag_for_review);
  // Out of scope: a path, an action, a whole-component near miss.
  EXPECT_DECISION(Decide(carl, Action::kRead, Psych(), At(kT)), kDeny, kProxyOutOfScope);
  EXPECT_DECISION(Decide(carl, Action::kExport, Vitals(), At(kT)), kDeny, kProxyOutOfScope);
  EXPECT_DECISION(Decide(carl, Action::kRead, Seg("alice", "life-records", "other", 1), At(kT)),
                  kDeny, kProxyOutOfScope);
  // manage-consent on a path the proxy covers.
  Resource consent_path = Patient("alice");
  consent_path.path = "physical-signs";
  d = Decide(carl, Action::kManageConsent, consent_path, At(kT));
  EXPECT_DECISION(d, kPermit, kProxyWithinScope);
  EXPECT_TRUE(d.obligations.notify_patient);
  // ...but not over the whole record.
  EXPECT_DECISION(Decide(carl, Action::kManageConsent, Patient("alice"), At(kT)), kDeny,
                  kProxyOutOfScope);
  // The patient's denials do not bind the proxy: the scope is her setting.
  data_.UpsertConsent(MakeConsent("deny-proxies", "alice", true, GranteeKind::kRole, "family-proxy",
                                  "physical-signs"));
  EXPECT_DECISION(Decide(carl, Action::kRead, Vitals(), At(kT)), kPermit, kProxyWithinScope);
  // ...but once the link has ended, the denial applies like to anyone.
  EXPECT_DECISION(Decide(carl, Action::kRead, Vitals(), At(kT + kDay)), kDeny, kConsentDenied);
  data_.RemoveConsent("alice", "deny-proxies");
  // Never beyond what a patient may do, whatever the bits say.
  data_.UpsertProxy(MakeProxy("px-all", "bob", "fam-carl", {""}, 0xFFFFFFFF));
  EXPECT_DECISION(Decide(carl, Action::kRead, Vitals("bob"), At(kT)), kPermit, kProxyWithinScope);
  EXPECT_DECISION(Decide(carl, Action::kDelegate, Patient("bob"), At(kT)), kDeny, kProxyOutOfScope);
  EXPECT_DECISION(Decide(carl, Action::kWrite,
                         Seg("bob", "doctor-description/orders", "doctor-description", 2), At(kT)),
                  kDeny, kNoRolePermission);
  // Expiry edges: one ms before, exactly at expiry.
  EXPECT_DECISION(Decide(carl, Action::kRead, Vitals(), At(kT + kDay - 1)), kPermit,
                  kProxyWithinScope);
  EXPECT_DECISION(Decide(carl, Action::kRead, Vitals(), At(kT + kDay)), kDeny, kNoRolePermission);
  // Revoked.
  data_.UpsertProxy(MakeProxy("px-carl", "alice", "fam-carl", {"physical-signs"}, rw, 0, kT));
  EXPECT_DECISION(Decide(carl, Action::kRead, Vitals(), At(kT)), kDeny, kNoRolePermission);
  EXPECT_DECISION(Decide(carl, Action::kRead, Vitals(), At(kT - 1)), kPermit, kProxyWithinScope);
  // Someone else's proxy link does not apply.
  EXPECT_DECISION(Decide(Proxy("fam-dora"), Action::kRead, Vitals("bob"), At(kT)), kDeny,
                  kNoRolePermission);
}

BreakGlassGrant MakeGrant(std::string id, std::string patient, std::string account, int64_t start,
                          int64_t expires) {
  BreakGlassGrant g;
  g.grant_id = std::move(id);
  g.patient_id = std::move(patient);
  g.account_id = std::move(account);
  g.reason = "unconscious in the emergency room";
  g.started_at_ms = start;
  g.expires_at_ms = expires;
  return g;
}

TEST_F(DecisionPointTest, Step6DeclaringBreakGlass) {
  const Subject er = Staff("dr-er", {"doctor"}, "stmary", "er");
  Decision d = dp_.DecideBreakGlass(er, "alice", "unconscious, no id, suspected overdose", At(kT));
  EXPECT_DECISION(d, kPermit, kBreakGlass);
  EXPECT_TRUE(d.obligations.notify_patient);
  EXPECT_TRUE(d.obligations.flag_for_review);
  EXPECT_EQ(d.obligations.expires_at_ms, kT + 60 * kMinute);
  EXPECT_TRUE(d.basis_id.empty());
  // The reason: trimmed, at least 10 characters (code points).
  EXPECT_DECISION(dp_.DecideBreakGlass(er, "alice", "", At(kT)), kDeny, kBreakGlassReasonMissing);
  EXPECT_DECISION(dp_.DecideBreakGlass(er, "alice", "  \t short  \n", At(kT)), kDeny,
                  kBreakGlassReasonMissing);
  EXPECT_DECISION(dp_.DecideBreakGlass(er, "alice", "   123456789  ", At(kT)), kDeny,
                  kBreakGlassReasonMissing);
  EXPECT_DECISION(dp_.DecideBreakGlass(er, "alice", "  1234567890  ", At(kT)), kPermit,
                  kBreakGlass);
  EXPECT_DECISION(
      dp_.DecideBreakGlass(er, "alice", "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", At(kT)), kDeny,
      kBreakGlassReasonMissing);  // 5 characters in 10 bytes
  // Decide(kBreakGlass) has no reason: it never permits.
  EXPECT_DECISION(Decide(er, Action::kBreakGlass, Patient("alice"), At(kT)), kDeny,
                  kBreakGlassReasonMissing);
  // Roles that may not; no patient; a record closed to break-glass as a whole.
  EXPECT_DECISION(
      dp_.DecideBreakGlass(Staff("ph", {"pharmacist"}), "alice", "need the list of drugs", At(kT)),
      kDeny, kNoRolePermission);
  EXPECT_DECISION(
      dp_.DecideBreakGlass(Staff("nurse", {"nurse"}), "alice", "collapsed in the corridor", At(kT)),
      kPermit, kBreakGlass);
  EXPECT_DECISION(dp_.DecideBreakGlass(er, "", "collapsed in the corridor", At(kT)), kDeny,
                  kDefaultDeny);
  PatientSettings closed;
  closed.patient_id = "bob";
  closed.never_break_glass = {""};
  data_.SetPatientSettings(closed);
  EXPECT_DECISION(dp_.DecideBreakGlass(er, "bob", "collapsed in the corridor", At(kT)), kDeny,
                  kNeverBreakGlass);
  // MFA still applies.
  Subject er_no_mfa = er;
  er_no_mfa.mfa_verified = false;
  EXPECT_DECISION(dp_.DecideBreakGlass(er_no_mfa, "alice", "collapsed in the corridor", At(kT)),
                  kDeny, kMfaRequired);
}

TEST_F(DecisionPointTest, Step6ActiveBreakGlassGrant) {
  const Subject er = Staff("dr-er", {"doctor"}, "stmary", "er");
  data_.UpsertBreakGlass(MakeGrant("bg-1", "alice", "dr-er", kT - 10 * kMinute, kT + 50 * kMinute));
  PatientSettings s;
  s.patient_id = "alice";
  s.never_break_glass = {"psychiatry", "genetics"};
  data_.SetPatientSettings(s);
  Decision d = Decide(er, Action::kRead, Cardio(), At(kT));
  EXPECT_DECISION(d, kPermit, kBreakGlass);
  EXPECT_TRUE(d.obligations.notify_patient);
  EXPECT_TRUE(d.obligations.flag_for_review);
  EXPECT_EQ(d.obligations.expires_at_ms, kT + 50 * kMinute);
  EXPECT_EQ(d.basis_id, "bg-1");
  for (Action a : {Action::kList, Action::kExport, Action::kReadDemographics}) {
    EXPECT_DECISION(Decide(er, a, Cardio(), At(kT)), kPermit, kBreakGlass) << ActionName(a);
  }
  // Beyond clearance (4 > 3) and despite a denial.
  data_.UpsertConsent(MakeConsent("deny-er", "alice", true, GranteeKind::kAccount, "dr-er", ""));
  EXPECT_DECISION(
      Decide(er, Action::kRead, Seg("alice", "infectious-disease/hiv", "clinical", 4), At(kT)),
      kPermit, kBreakGlass);
  // Not for writing: the other steps decide (here the denial... of reads only: no relationship).
  EXPECT_DECISION(Decide(er, Action::kWrite, Cardio(), At(kT)), kDeny, kNoRelationship);
  // Never-break-glass: the subtree stays closed.
  d = Decide(er, Action::kRead, Psych(), At(kT));
  EXPECT_DECISION(d, kDeny, kNeverBreakGlass);
  ASSERT_EQ(d.reason_count, 2);
  EXPECT_EQ(d.reasons[1], Reason::kConsentDenied);
  EXPECT_EQ(d.basis_id, "deny-er");
  data_.RemoveConsent("alice", "deny-er");
  d = Decide(er, Action::kRead, Psych(), At(kT));
  EXPECT_DECISION(d, kDeny, kNeverBreakGlass);
  EXPECT_EQ(d.reasons[1], Reason::kInsufficientClearance);
  // Listing a subtree that contains a closed one is permitted (the caller
  // decides each listed path); listing inside it is not.
  Resource all = Patient("alice");
  EXPECT_DECISION(Decide(er, Action::kList, all, At(kT)), kPermit, kBreakGlass);
  EXPECT_DECISION(Decide(er, Action::kList, Seg("alice", "genetics", "clinical", 4), At(kT)), kDeny,
                  kNeverBreakGlass);
  // Expiry edges.
  EXPECT_DECISION(Decide(er, Action::kRead, Cardio(), At(kT + 50 * kMinute - 1)), kPermit,
                  kBreakGlass);
  EXPECT_DECISION(Decide(er, Action::kRead, Cardio(), At(kT + 50 * kMinute)), kDeny,
                  kNoRelationship);
  EXPECT_DECISION(Decide(er, Action::kRead, Cardio(), At(kT - 10 * kMinute - 1)), kDeny,
                  kNoRelationship);
  // Another doctor's grant does not count.
  EXPECT_DECISION(Decide(Staff("dr-house", {"doctor"}), Action::kRead, Cardio(), At(kT)), kDeny,
                  kNoRelationship);
}

TEST_F(DecisionPointTest, NeverBreakGlassDoesNotTakeAwayATreatingRelationship) {
  const Subject head = Staff("dr-cuddy", {"department-head"});
  Treats("r-cuddy", "alice", "dr-cuddy");
  data_.UpsertBreakGlass(MakeGrant("bg-2", "alice", "dr-cuddy", kT - kMinute, kT + kHour));
  PatientSettings s;
  s.patient_id = "alice";
  s.never_break_glass = {"psychiatry"};
  data_.SetPatientSettings(s);
  Decision d = Decide(head, Action::kRead, Psych(), At(kT));
  EXPECT_DECISION(d, kPermit, kTreatingRelationship);
  EXPECT_EQ(d.basis_id, "r-cuddy");
  EXPECT_FALSE(d.obligations.notify_patient);
  // Elsewhere, the grant decides first (with its obligations).
  d = Decide(head, Action::kRead, Cardio(), At(kT));
  EXPECT_DECISION(d, kPermit, kBreakGlass);
  EXPECT_TRUE(d.obligations.flag_for_review);
}

TEST_F(DecisionPointTest, Step7ExplicitDenial) {
  const Subject doc = Staff("dr-house", {"doctor"});
  Treats("r1", "alice", "dr-house", kT - 2 * kDay);
  ASSERT_TRUE(Decide(doc, Action::kRead, Cardio(), At(kT)).permitted());
  data_.UpsertConsent(MakeConsent("deny-im", "alice", true, GranteeKind::kAccount, "dr-house",
                                  "internal-medicine", 0, 0, kT - kDay, kT + kDay));
  Decision d = Decide(doc, Action::kRead, Cardio(), At(kT));
  EXPECT_DECISION(d, kDeny, kConsentDenied);
  EXPECT_EQ(d.basis_id, "deny-im");
  EXPECT_DECISION(Decide(doc, Action::kList, Cardio(), At(kT)), kDeny, kConsentDenied);
  // actions == 0 means every revealing action: exporting is denied too (it
  // used to stay with the role), writing stays with the role.
  EXPECT_DECISION(Decide(doc, Action::kWrite, Cardio(), At(kT)), kPermit, kTreatingRelationship);
  d = Decide(doc, Action::kExport, Cardio(), At(kT));
  EXPECT_DECISION(d, kDeny, kConsentDenied);
  EXPECT_EQ(d.basis_id, "deny-im");
  // Elsewhere in the record.
  EXPECT_DECISION(Decide(doc, Action::kRead, Vitals(), At(kT)), kPermit, kTreatingRelationship);
  // Time: not yet, in force, exactly at expiry (no longer in force).
  EXPECT_DECISION(Decide(doc, Action::kRead, Cardio(), At(kT - kDay - 1)), kPermit,
                  kTreatingRelationship);
  EXPECT_DECISION(Decide(doc, Action::kRead, Cardio(), At(kT - kDay)), kDeny, kConsentDenied);
  EXPECT_DECISION(Decide(doc, Action::kRead, Cardio(), At(kT + kDay - 1)), kDeny, kConsentDenied);
  EXPECT_DECISION(Decide(doc, Action::kRead, Cardio(), At(kT + kDay)), kPermit,
                  kTreatingRelationship);
  // By role, institution, department; by purpose.
  data_.RemoveConsent("alice", "deny-im");
  data_.UpsertConsent(
      MakeConsent("deny-role", "alice", true, GranteeKind::kRole, "doctor", "psychiatry"));
  data_.UpsertConsent(
      MakeConsent("deny-inst", "alice", true, GranteeKind::kInstitution, "northclinic", ""));
  data_.UpsertConsent(MakeConsent("deny-dept", "alice", true, GranteeKind::kDepartment, "cardio",
                                  "physical-signs", ActionBit(Action::kWrite)));
  data_.UpsertConsent(MakeConsent("deny-pay", "alice", true, GranteeKind::kRole, "doctor", "",
                                  ActionBit(Action::kRead), PurposeBit(Purpose::kPayment)));
  // A department head inherits doctor: the role denial matches the expanded set.
  const Subject head = Staff("dr-cuddy", {"department-head"});
  Treats("r2", "alice", "dr-cuddy");
  d = Decide(head, Action::kRead, Psych(), At(kT));
  EXPECT_DECISION(d, kDeny, kConsentDenied);
  EXPECT_EQ(d.basis_id, "deny-role");
  Treats("r3", "alice", "dr-north");
  EXPECT_DECISION(Decide(Staff("dr-north", {"doctor"}, "northclinic", "cardio"), Action::kRead,
                         Vitals(), At(kT)),
                  kDeny, kConsentDenied);
  EXPECT_DECISION(Decide(doc, Action::kWrite, Vitals(), At(kT)), kDeny, kConsentDenied);
  EXPECT_DECISION(
      Decide(Staff("dr-house", {"doctor"}, "stmary", "neuro"), Action::kWrite, Vitals(), At(kT)),
      kPermit, kTreatingRelationship);
  EXPECT_DECISION(Decide(doc, Action::kRead, Cardio(), At(kT, Purpose::kPayment)), kDeny,
                  kConsentDenied);
  EXPECT_DECISION(Decide(doc, Action::kRead, Cardio(), At(kT, Purpose::kTreatment)), kPermit,
                  kTreatingRelationship);
  // An empty institution or department of the subject matches nothing.
  data_.UpsertConsent(MakeConsent("deny-empty", "alice", true, GranteeKind::kInstitution, "", ""));
  EXPECT_DECISION(Decide(Staff("dr-house", {"doctor"}, "", ""), Action::kRead, Cardio(), At(kT)),
                  kPermit, kTreatingRelationship);
}

// What a denial takes away is defined once: every action reveals unless
// declared otherwise, so a reading action added later is denied by default.
TEST(RevealsContentTest, TheRevealingSetAndWhatDenialsCover) {
  for (Action a : {Action::kRead, Action::kList, Action::kExport, Action::kSearchPatients,
                   Action::kReadDemographics, Action::kReadAccessHistory}) {
    EXPECT_TRUE(RevealsContent(a)) << ActionName(a);
    EXPECT_NE(DeniedActions(0) & ActionBit(a), 0u) << ActionName(a);
    EXPECT_NE(DeniedActions(ActionBit(Action::kRead)) & ActionBit(a), 0u) << ActionName(a);
  }
  for (Action a :
       {Action::kWrite, Action::kErasePatient, Action::kCreatePatient, Action::kManageConsent,
        Action::kManageRelationship, Action::kDelegate, Action::kBreakGlass, Action::kReadAudit,
        Action::kManageAccounts, Action::kReadMetrics}) {
    EXPECT_FALSE(RevealsContent(a)) << ActionName(a);
    EXPECT_EQ(DeniedActions(0) & ActionBit(a), 0u) << ActionName(a);
  }
  // An action beyond the known ones (a future one) reveals.
  EXPECT_TRUE(RevealsContent(static_cast<Action>(kActionCount)));
  // A denial naming only non-revealing actions covers just those.
  EXPECT_EQ(DeniedActions(ActionBit(Action::kWrite)), ActionBit(Action::kWrite));
  EXPECT_EQ(DeniedActions(ActionBit(Action::kWrite) | ActionBit(Action::kList)),
            ActionBit(Action::kWrite) | RevealingActions());
}

// A grant without actions opens read and list only: not export, not write,
// even when a role could export or write on a consented basis.
TEST_F(DecisionPointTest, AGrantWithoutActionsOpensReadAndListOnly) {
  auto p = Policy::Parse(
      "version 1\nrole a clearance 4\n"
      "permit a read,list,export,write on clinical when consented\n",
      "t.policy");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  DecisionPoint dp(*p, &data_);
  Subject s;
  s.account_id = "acc";
  s.roles = *(*p)->RolesOf({"a"});
  data_.UpsertConsent(MakeConsent("g", "alice", false, GranteeKind::kAccount, "acc", ""));
  EXPECT_DECISION(dp.Decide(s, Action::kRead, Cardio(), At(kT)), kPermit, kConsentGranted);
  EXPECT_DECISION(dp.Decide(s, Action::kList, Cardio(), At(kT)), kPermit, kConsentGranted);
  EXPECT_FALSE(dp.Decide(s, Action::kExport, Cardio(), At(kT)).permitted());
  EXPECT_FALSE(dp.Decide(s, Action::kWrite, Cardio(), At(kT)).permitted());
  // Named, they are granted.
  data_.UpsertConsent(MakeConsent("g", "alice", false, GranteeKind::kAccount, "acc", "",
                                  ActionBit(Action::kExport)));
  EXPECT_DECISION(dp.Decide(s, Action::kExport, Cardio(), At(kT)), kPermit, kConsentGranted);
  // A denial without actions beside it takes the export away again.
  data_.UpsertConsent(
      MakeConsent("d", "alice", true, GranteeKind::kAccount, "acc", "internal-medicine"));
  EXPECT_DECISION(dp.Decide(s, Action::kExport, Cardio(), At(kT)), kDeny, kConsentDenied);
}

TEST_F(DecisionPointTest, Step8RolePermissionsAndConditions) {
  // No permission for the action/category.
  const Subject nurse = Staff("nurse-joy", {"nurse"});
  Treats("r-joy", "alice", "nurse-joy");
  EXPECT_DECISION(
      Decide(nurse, Action::kRead, Seg("alice", "family-history/x", "family-history", 2), At(kT)),
      kDeny, kNoRolePermission);
  EXPECT_DECISION(Decide(nurse, Action::kExport, Vitals(), At(kT)), kDeny, kNoRolePermission);
  EXPECT_DECISION(Decide(nurse, Action::kRead, Vitals(), At(kT)), kPermit, kTreatingRelationship);
  // A category-restricted permission does not cover the whole record.
  EXPECT_DECISION(Decide(nurse, Action::kList, Patient("alice"), At(kT)), kDeny, kNoRolePermission);
  // Zone.
  Decision d =
      Decide(nurse, Action::kWrite, Vitals(), At(kT, Purpose::kTreatment, NetworkZone::kExternal));
  EXPECT_DECISION(d, kDeny, kZoneNotAllowed);
  EXPECT_DECISION(
      Decide(nurse, Action::kWrite, Vitals(), At(kT, Purpose::kTreatment, NetworkZone::kLoopback)),
      kPermit, kTreatingRelationship);
  // Clearance: nurse 2 < 3.
  EXPECT_DECISION(Decide(nurse, Action::kRead, Seg("alice", "oncology/x", "clinical", 3), At(kT)),
                  kDeny, kInsufficientClearance);
  // Platform actions.
  EXPECT_DECISION(Decide(Staff("po", {"privacy-officer"}), Action::kReadAudit, {}, At(kT)), kPermit,
                  kRolePermission);
  EXPECT_DECISION(Decide(Staff("po", {"privacy-officer"}), Action::kReadAccessHistory,
                         Patient("alice"), At(kT, Purpose::kAudit)),
                  kPermit, kRolePermission);
  EXPECT_DECISION(Decide(Staff("po", {"privacy-officer"}), Action::kReadAccessHistory,
                         Patient("alice"), At(kT, Purpose::kTreatment)),
                  kDeny, kPurposeNotAllowed);
  EXPECT_DECISION(Decide(Staff("au", {"auditor"}), Action::kReadAudit, {}, At(kT)), kPermit,
                  kRolePermission);
  EXPECT_DECISION(Decide(Staff("dr", {"doctor"}), Action::kReadMetrics, {}, At(kT)), kDeny,
                  kNoRolePermission);
  EXPECT_DECISION(Decide(Staff("dr", {"doctor"}), Action::kSearchPatients, {}, At(kT)), kPermit,
                  kRolePermission);
}

TEST_F(DecisionPointTest, Step8ResearcherHoursPurposeZoneMask) {
  const Subject rs = Staff("rs-curie", {"researcher"}, "uniresearch", "epi");
  data_.UpsertConsent(MakeConsent("g-research", "alice", false, GranteeKind::kRole, "researcher",
                                  "physical-signs", 0, PurposeBit(Purpose::kResearch), 0,
                                  kT + 30 * kDay));
  const Context ok = At(kT, Purpose::kResearch);
  Decision d = Decide(rs, Action::kRead, Vitals(), ok);
  EXPECT_DECISION(d, kPermit, kConsentGranted);
  EXPECT_EQ(d.basis_id, "g-research");
  EXPECT_EQ(d.obligations.expires_at_ms, kT + 30 * kDay);
  EXPECT_EQ(*d.obligations.mask_fields,
            (std::vector<std::string>{"given_name", "family_name", "identifier", "insurance_number",
                                      "birth_date"}));
  // Hours 07:00-19:00 UTC: 07:00 in, 19:00 out, 06:59 out.
  EXPECT_DECISION(Decide(rs, Action::kRead, Vitals(), At(kT - 3 * kHour, Purpose::kResearch)),
                  kPermit, kConsentGranted);
  EXPECT_DECISION(Decide(rs, Action::kRead, Vitals(), At(kT + 9 * kHour, Purpose::kResearch)),
                  kDeny, kOutsideTimeWindow);
  EXPECT_DECISION(
      Decide(rs, Action::kRead, Vitals(), At(kT - 3 * kHour - kMinute, Purpose::kResearch)), kDeny,
      kOutsideTimeWindow);
  // Purpose is checked before zone, zone before hours.
  EXPECT_DECISION(Decide(rs, Action::kRead, Vitals(),
                         At(kT + 9 * kHour, Purpose::kTreatment, NetworkZone::kExternal)),
                  kDeny, kPurposeNotAllowed);
  EXPECT_DECISION(Decide(rs, Action::kRead, Vitals(),
                         At(kT + 9 * kHour, Purpose::kResearch, NetworkZone::kExternal)),
                  kDeny, kZoneNotAllowed);
  // No grant for that subtree; a grant that has expired.
  EXPECT_DECISION(
      Decide(rs, Action::kRead, Seg("alice", "body-measures/weight", "body-measures", 1), ok),
      kDeny, kDefaultDeny);
  EXPECT_DECISION(Decide(rs, Action::kRead, Vitals(), At(kT + 30 * kDay, Purpose::kResearch)),
                  kDeny, kConsentExpired);
  // Clearance 1 < 2 even with a role grant.
  data_.UpsertConsent(MakeConsent("g-research-all", "alice", false, GranteeKind::kRole,
                                  "researcher", "", 0, PurposeBit(Purpose::kResearch)));
  EXPECT_DECISION(
      Decide(rs, Action::kRead, Seg("alice", "life-record/sleep-diary", "life-record", 2), ok),
      kDeny, kInsufficientClearance);
}

TEST_F(DecisionPointTest, Step8PersonalGrantLiftsClearance) {
  const Subject doc = Staff("dr-house", {"doctor"});
  Treats("r1", "alice", "dr-house", kT - kDay, kT + 10 * kDay);
  EXPECT_DECISION(Decide(doc, Action::kRead, Psych(), At(kT)), kDeny, kInsufficientClearance);
  // A grant to the doctor's role or institution does not lift it.
  data_.UpsertConsent(
      MakeConsent("g-role", "alice", false, GranteeKind::kRole, "doctor", "psychiatry"));
  EXPECT_DECISION(Decide(doc, Action::kRead, Psych(), At(kT)), kDeny, kInsufficientClearance);
  // A personal grant does; the permission ends with the earliest of the two.
  data_.UpsertConsent(MakeConsent("g-house", "alice", false, GranteeKind::kAccount, "dr-house",
                                  "psychiatry", 0, 0, 0, kT + 2 * kDay));
  Decision d = Decide(doc, Action::kRead, Psych(), At(kT));
  EXPECT_DECISION(d, kPermit, kTreatingRelationship);
  EXPECT_EQ(d.obligations.expires_at_ms, kT + 2 * kDay);
  EXPECT_EQ(d.basis_id, "r1");
  // The grant covers read and list only.
  EXPECT_DECISION(Decide(doc, Action::kWrite, Psych(), At(kT)), kDeny, kInsufficientClearance);
  // At its expiry, the ceiling is back.
  EXPECT_DECISION(Decide(doc, Action::kRead, Psych(), At(kT + 2 * kDay)), kDeny,
                  kInsufficientClearance);
  // Lifting the ceiling does not replace the basis: without a relationship the
  // personal grant permits as a grant.
  const Subject other = Staff("dr-wilson", {"doctor"});
  data_.UpsertConsent(MakeConsent("g-wilson", "alice", false, GranteeKind::kAccount, "dr-wilson",
                                  "psychiatry", 0, 0, 0, kT + kDay));
  d = Decide(other, Action::kRead, Psych(), At(kT));
  EXPECT_DECISION(d, kPermit, kConsentGranted);
  EXPECT_EQ(d.basis_id, "g-wilson");
  EXPECT_EQ(d.obligations.expires_at_ms, kT + kDay);
}

TEST_F(DecisionPointTest, Step8TreatingRelationship) {
  const Subject doc = Staff("dr-house", {"doctor"});
  // Never: no relationship.
  EXPECT_DECISION(Decide(doc, Action::kRead, Cardio(), At(kT)), kDeny, kNoRelationship);
  // Not started yet.
  Treats("r1", "alice", "dr-house", kT + kHour, 0);
  EXPECT_DECISION(Decide(doc, Action::kRead, Cardio(), At(kT)), kDeny, kNoRelationship);
  // Active, with an end.
  Treats("r1", "alice", "dr-house", kT - kDay, kT + kDay);
  Decision d = Decide(doc, Action::kRead, Cardio(), At(kT));
  EXPECT_DECISION(d, kPermit, kTreatingRelationship);
  EXPECT_EQ(d.basis_id, "r1");
  EXPECT_EQ(d.obligations.expires_at_ms, kT + kDay);
  EXPECT_FALSE(d.obligations.notify_patient);
  EXPECT_TRUE(d.obligations.mask_fields->empty());
  EXPECT_DECISION(Decide(doc, Action::kRead, Cardio(), At(kT + kDay - 1)), kPermit,
                  kTreatingRelationship);
  // Exactly at its end: ended.
  EXPECT_DECISION(Decide(doc, Action::kRead, Cardio(), At(kT + kDay)), kDeny, kRelationshipEnded);
  // A newer relationship after an ended one.
  Treats("r1b", "alice", "dr-house", kT + 2 * kDay, 0);
  d = Decide(doc, Action::kRead, Cardio(), At(kT + 3 * kDay));
  EXPECT_DECISION(d, kPermit, kTreatingRelationship);
  EXPECT_EQ(d.basis_id, "r1b");
  EXPECT_EQ(d.obligations.expires_at_ms, 0);
  // Demographics and delegation need it too.
  EXPECT_DECISION(Decide(doc, Action::kReadDemographics, Patient("alice"), At(kT)), kPermit,
                  kTreatingRelationship);
  EXPECT_DECISION(Decide(doc, Action::kDelegate, Patient("alice"), At(kT)), kPermit,
                  kTreatingRelationship);
  EXPECT_DECISION(Decide(doc, Action::kDelegate, Patient("bob"), At(kT)), kDeny, kNoRelationship);
}

Delegation MakeDelegation(std::string id, std::string patient, std::string from, std::string to,
                          int64_t created, int64_t expires = 0, int64_t revoked = 0) {
  Delegation d;
  d.delegation_id = std::move(id);
  d.patient_id = std::move(patient);
  d.from_account_id = std::move(from);
  d.to_account_id = std::move(to);
  d.created_at_ms = created;
  d.expires_at_ms = expires;
  d.revoked_at_ms = revoked;
  return d;
}

TEST_F(DecisionPointTest, Step8Delegation) {
  Treats("r1", "alice", "dr-house", kT - kDay, kT + 5 * kDay);
  data_.UpsertDelegation(
      MakeDelegation("dl-1", "alice", "dr-house", "nurse-joy", kT - kHour, kT + 3 * kDay));
  const Subject nurse = Staff("nurse-joy", {"nurse"});
  // The patient has not allowed delegation.
  EXPECT_DECISION(Decide(nurse, Action::kRead, Vitals(), At(kT)), kDeny, kDelegationNotAllowed);
  PatientSettings s;
  s.patient_id = "alice";
  s.allow_delegation = true;
  data_.SetPatientSettings(s);
  Decision d = Decide(nurse, Action::kRead, Vitals(), At(kT));
  EXPECT_DECISION(d, kPermit, kDelegatedRelationship);
  EXPECT_EQ(d.basis_id, "dl-1");
  EXPECT_EQ(d.obligations.expires_at_ms, kT + 3 * kDay);
  // Ends with the delegator's relationship when that ends first.
  data_.UpsertDelegation(MakeDelegation("dl-1", "alice", "dr-house", "nurse-joy", kT - kHour));
  EXPECT_EQ(Decide(nurse, Action::kRead, Vitals(), At(kT)).obligations.expires_at_ms,
            kT + 5 * kDay);
  EXPECT_DECISION(Decide(nurse, Action::kRead, Vitals(), At(kT + 5 * kDay)), kDeny,
                  kRelationshipEnded);
  // Delegation expired or revoked.
  data_.UpsertDelegation(
      MakeDelegation("dl-1", "alice", "dr-house", "nurse-joy", kT - kHour, kT + kHour));
  EXPECT_DECISION(Decide(nurse, Action::kRead, Vitals(), At(kT + kHour)), kDeny,
                  kRelationshipEnded);
  data_.UpsertDelegation(
      MakeDelegation("dl-1", "alice", "dr-house", "nurse-joy", kT - kHour, 0, kT));
  EXPECT_DECISION(Decide(nurse, Action::kRead, Vitals(), At(kT)), kDeny, kRelationshipEnded);
  EXPECT_DECISION(Decide(nurse, Action::kRead, Vitals(), At(kT - 1)), kPermit,
                  kDelegatedRelationship);
  // A delegate may not delegate further.
  data_.UpsertDelegation(MakeDelegation("dl-2", "alice", "dr-house", "dr-wilson", kT - kHour));
  const Subject wilson = Staff("dr-wilson", {"doctor"});
  EXPECT_DECISION(Decide(wilson, Action::kRead, Cardio(), At(kT)), kPermit, kDelegatedRelationship);
  EXPECT_DECISION(Decide(wilson, Action::kDelegate, Patient("alice"), At(kT)), kDeny,
                  kNoRelationship);
  // Delegating from a clinician who does not treat the patient does nothing.
  data_.UpsertDelegation(MakeDelegation("dl-3", "bob", "dr-house", "dr-wilson", kT - kHour));
  EXPECT_DECISION(Decide(wilson, Action::kRead, Cardio("bob"), At(kT)), kDeny, kNoRelationship);
}

TEST_F(DecisionPointTest, Step8ConsentedPharmacist) {
  const Subject ph = Staff("ph-pill", {"pharmacist"}, "citypharm", "");
  const Resource orders = Seg("alice", "doctor-description/prescriptions", "doctor-description", 2);
  EXPECT_DECISION(Decide(ph, Action::kRead, orders, At(kT)), kDeny, kDefaultDeny);
  data_.UpsertConsent(MakeConsent("g-pharm", "alice", false, GranteeKind::kInstitution, "citypharm",
                                  "doctor-description", 0, PurposeBit(Purpose::kTreatment),
                                  kT - kDay, kT + kDay));
  Decision d = Decide(ph, Action::kRead, orders, At(kT));
  EXPECT_DECISION(d, kPermit, kConsentGranted);
  EXPECT_EQ(d.basis_id, "g-pharm");
  EXPECT_EQ(d.obligations.expires_at_ms, kT + kDay);
  EXPECT_EQ(*d.obligations.mask_fields, std::vector<std::string>{"insurance_number"});
  // Policy's purpose condition first, then the grant's.
  EXPECT_DECISION(Decide(ph, Action::kRead, orders, At(kT, Purpose::kPayment)), kDeny,
                  kPurposeNotAllowed);
  // Grant for another purpose only.
  data_.UpsertConsent(MakeConsent("g-pharm", "alice", false, GranteeKind::kInstitution, "citypharm",
                                  "doctor-description", 0, PurposeBit(Purpose::kResearch),
                                  kT - kDay, kT + kDay));
  EXPECT_DECISION(Decide(ph, Action::kRead, orders, At(kT)), kDeny, kPurposeNotAllowed);
  // Expired at exactly its end.
  data_.UpsertConsent(MakeConsent("g-pharm", "alice", false, GranteeKind::kInstitution, "citypharm",
                                  "doctor-description", 0, 0, kT - kDay, kT));
  EXPECT_DECISION(Decide(ph, Action::kRead, orders, At(kT)), kDeny, kConsentExpired);
  EXPECT_DECISION(Decide(ph, Action::kRead, orders, At(kT - 1)), kPermit, kConsentGranted);
  // Not yet valid.
  EXPECT_DECISION(Decide(ph, Action::kRead, orders, At(kT - kDay - 1)), kDeny, kDefaultDeny);
  // The longest-lasting of several grants.
  data_.UpsertConsent(MakeConsent("g-pharm-2", "alice", false, GranteeKind::kAccount, "ph-pill",
                                  "doctor-description", 0, 0, 0, 0));
  d = Decide(ph, Action::kRead, orders, At(kT - 1));
  EXPECT_EQ(d.basis_id, "g-pharm-2");
  EXPECT_EQ(d.obligations.expires_at_ms, 0);
}

TEST_F(DecisionPointTest, AdminsStayInTheirInstitution) {
  const Subject adm = Staff("adm", {"institution-admin"}, "stmary", "");
  Resource own;
  own.institution_id = "stmary";
  Resource other;
  other.institution_id = "northclinic";
  EXPECT_DECISION(Decide(adm, Action::kManageAccounts, own, At(kT)), kPermit, kRolePermission);
  EXPECT_DECISION(Decide(adm, Action::kManageAccounts, other, At(kT)), kDeny, kOtherInstitution);
  // What belongs to no institution is the platform's: not for a bound admin.
  EXPECT_DECISION(Decide(adm, Action::kManageAccounts, {}, At(kT)), kDeny, kOtherInstitution);
  const Subject platform = Staff("adm-platform", {"institution-admin"}, "", "");
  EXPECT_DECISION(Decide(platform, Action::kManageAccounts, {}, At(kT)), kPermit, kRolePermission);
  EXPECT_DECISION(Decide(platform, Action::kManageAccounts, own, At(kT)), kDeny, kOtherInstitution);
  Resource rel = Patient("alice");
  rel.institution_id = "northclinic";
  EXPECT_DECISION(Decide(adm, Action::kManageRelationship, rel, At(kT)), kDeny, kOtherInstitution);
  rel.institution_id = "stmary";
  EXPECT_DECISION(Decide(adm, Action::kManageRelationship, rel, At(kT)), kPermit, kRolePermission);
  const Subject head = Staff("dr-cuddy", {"department-head"});
  EXPECT_DECISION(Decide(head, Action::kManageRelationship, rel, At(kT)), kPermit, kRolePermission);
  EXPECT_DECISION(Decide(Staff("dr", {"doctor"}), Action::kManageRelationship, rel, At(kT)), kDeny,
                  kNoRolePermission);
  // An admin without an institution manages none that is named.
  EXPECT_DECISION(
      Decide(Staff("adm0", {"institution-admin"}, "", ""), Action::kManageAccounts, own, At(kT)),
      kDeny, kOtherInstitution);
  // Admins read no records.
  EXPECT_DECISION(Decide(adm, Action::kRead, Vitals(), At(kT)), kDeny, kNoRolePermission);
}

TEST_F(DecisionPointTest, HoursUseThePolicyTimezoneAndWrapMidnight) {
  auto p = Policy::Parse(
      "version 1\ntimezone +02:00\nrole night\nrole day\n"
      "permit night read-metrics when always hours 22:00-06:00\n"
      "permit day read-metrics when always hours 08:00-18:00\n",
      "t.policy");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  DecisionPoint dp(*p, &data_);
  Subject night;
  night.account_id = "n";
  night.roles = *(*p)->RolesOf({"night"});
  Subject day = night;
  day.roles = *(*p)->RolesOf({"day"});
  const auto at_local = [](int hh, int mm) {
    // kT is 10:00Z = 12:00 local (+02:00).
    return At(kT - 12 * kHour + hh * kHour + mm * kMinute);
  };
  EXPECT_TRUE(dp.Decide(night, Action::kReadMetrics, {}, at_local(22, 0)).permitted());
  EXPECT_TRUE(dp.Decide(night, Action::kReadMetrics, {}, at_local(23, 59)).permitted());
  EXPECT_TRUE(dp.Decide(night, Action::kReadMetrics, {}, at_local(0, 0)).permitted());
  EXPECT_TRUE(dp.Decide(night, Action::kReadMetrics, {}, at_local(5, 59)).permitted());
  EXPECT_FALSE(dp.Decide(night, Action::kReadMetrics, {}, at_local(6, 0)).permitted());
  EXPECT_FALSE(dp.Decide(night, Action::kReadMetrics, {}, at_local(21, 59)).permitted());
  EXPECT_TRUE(dp.Decide(day, Action::kReadMetrics, {}, at_local(8, 0)).permitted());
  EXPECT_TRUE(dp.Decide(day, Action::kReadMetrics, {}, at_local(17, 59)).permitted());
  EXPECT_FALSE(dp.Decide(day, Action::kReadMetrics, {}, at_local(18, 0)).permitted());
  const Decision d = dp.Decide(day, Action::kReadMetrics, {}, at_local(7, 59));
  EXPECT_EQ(d.reason(), Reason::kOutsideTimeWindow);
  // Before 1970 (negative times) still maps to a minute of the day.
  EXPECT_TRUE(dp.Decide(night, Action::kReadMetrics, {}, At(-1)).permitted());  // 01:59 local
}

TEST_F(DecisionPointTest, FirstPermittingPermissionInFileOrderDecides) {
  auto p = Policy::Parse(
      "version 1\nrole a clearance 2\nrole b clearance 2\n"
      "permit a read on clinical when consented mask x\n"
      "permit b read on clinical when treating mask y\n"
      "permit b read on clinical when always zone external mask z\n",
      "t.policy");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  DecisionPoint dp(*p, &data_);
  Subject s;
  s.account_id = "acc";
  s.roles = *(*p)->RolesOf({"a", "b"});
  // Nothing permits: the first permission's reason.
  Decision d = dp.Decide(s, Action::kRead, Cardio(), At(kT));
  EXPECT_DECISION(d, kDeny, kDefaultDeny);
  // Relationship: b's treating permits with its mask.
  Treats("r", "alice", "acc");
  d = dp.Decide(s, Action::kRead, Cardio(), At(kT));
  EXPECT_DECISION(d, kPermit, kTreatingRelationship);
  EXPECT_EQ(*d.obligations.mask_fields, std::vector<std::string>{"y"});
  // From outside, the always permission passes its zone condition but the
  // treating one comes first in the file.
  d = dp.Decide(s, Action::kRead, Cardio(), At(kT, Purpose::kTreatment, NetworkZone::kExternal));
  EXPECT_EQ(*d.obligations.mask_fields, std::vector<std::string>{"y"});
  data_.UpsertRelationship(Relationship{"r", "alice", "acc", kT - kDay, kT - 1});
  d = dp.Decide(s, Action::kRead, Cardio(), At(kT, Purpose::kTreatment, NetworkZone::kExternal));
  EXPECT_DECISION(d, kPermit, kRolePermission);
  EXPECT_EQ(*d.obligations.mask_fields, std::vector<std::string>{"z"});
  // A grant: a's consented permission is first.
  data_.UpsertConsent(MakeConsent("g", "alice", false, GranteeKind::kAccount, "acc", ""));
  d = dp.Decide(s, Action::kRead, Cardio(), At(kT));
  EXPECT_DECISION(d, kPermit, kConsentGranted);
  EXPECT_EQ(*d.obligations.mask_fields, std::vector<std::string>{"x"});
}

TEST_F(DecisionPointTest, PolicyDataUpsertRemoveAndListings) {
  Treats("r1", "alice", "dr-house");
  Treats("r1", "alice", "dr-house", kT - kDay, kT);  // replaced by id
  Treats("r2", "bob", "dr-house");
  EXPECT_EQ(data_.RelationshipsOf("alice").size(), 1U);
  EXPECT_EQ(data_.RelationshipsOf("alice")[0].ended_at_ms, kT);
  EXPECT_EQ(data_.PatientsTreatedBy("dr-house", kT - 1),
            (std::vector<std::string>{"alice", "bob"}));
  EXPECT_EQ(data_.PatientsTreatedBy("dr-house", kT), (std::vector<std::string>{"bob"}));
  EXPECT_TRUE(data_.PatientsTreatedBy("nobody", kT).empty());

  data_.UpsertConsent(MakeConsent("c1", "alice", false, GranteeKind::kAccount, "x", ""));
  data_.UpsertConsent(MakeConsent("c2", "alice", true, GranteeKind::kAccount, "x", ""));
  data_.UpsertConsent(MakeConsent("c1", "alice", true, GranteeKind::kRole, "doctor", "clinical"));
  auto consents = data_.ConsentsOf("alice");
  ASSERT_EQ(consents.size(), 2U);
  EXPECT_EQ(consents[0].consent_id, "c1");
  EXPECT_TRUE(consents[0].deny);
  EXPECT_EQ(consents[0].grantee, "doctor");
  data_.RemoveConsent("alice", "c1");
  data_.RemoveConsent("alice", "missing");
  data_.RemoveConsent("nobody", "c2");
  ASSERT_EQ(data_.ConsentsOf("alice").size(), 1U);
  EXPECT_EQ(data_.ConsentsOf("alice")[0].consent_id, "c2");
  EXPECT_TRUE(data_.ConsentsOf("nobody").empty());

  data_.UpsertDelegation(MakeDelegation("d1", "bob", "dr-house", "nurse-joy", kT - kHour));
  EXPECT_EQ(data_.DelegationsOf("bob").size(), 1U);
  // Delegation counts only when the patient allows it.
  EXPECT_TRUE(data_.PatientsTreatedBy("nurse-joy", kT).empty());
  PatientSettings s;
  s.patient_id = "bob";
  s.allow_delegation = true;
  s.never_break_glass = {"psychiatry"};
  data_.SetPatientSettings(s);
  EXPECT_EQ(data_.PatientsTreatedBy("nurse-joy", kT), std::vector<std::string>{"bob"});
  EXPECT_TRUE(data_.SettingsOf("bob").allow_delegation);
  EXPECT_EQ(data_.SettingsOf("bob").never_break_glass, std::vector<std::string>{"psychiatry"});
  EXPECT_FALSE(data_.SettingsOf("nobody").allow_delegation);
  EXPECT_EQ(data_.SettingsOf("nobody").patient_id, "nobody");

  data_.UpsertProxy(MakeProxy("p1", "alice", "fam", {""}, ActionBit(Action::kRead), kT + kDay));
  data_.UpsertProxy(MakeProxy("p2", "bob", "fam", {""}, ActionBit(Action::kRead), 0, kT));
  EXPECT_EQ(data_.ProxiesOf("alice").size(), 1U);
  EXPECT_EQ(data_.PatientsProxiedBy("fam", kT - 1), (std::vector<std::string>{"alice", "bob"}));
  EXPECT_EQ(data_.PatientsProxiedBy("fam", kT), std::vector<std::string>{"alice"});
  EXPECT_TRUE(data_.PatientsProxiedBy("fam", kT + kDay).empty());

  data_.UpsertBreakGlass(MakeGrant("b1", "alice", "dr-er", kT, kT + kHour));
  data_.UpsertBreakGlass(MakeGrant("b1", "alice", "dr-er", kT, kT + 2 * kHour));
  ASSERT_EQ(data_.BreakGlassOf("alice").size(), 1U);
  EXPECT_EQ(data_.BreakGlassOf("alice")[0].expires_at_ms, kT + 2 * kHour);
  EXPECT_TRUE(data_.BreakGlassOf("bob").empty());

  // Erasure forgets everything of a patient, and only that.
  ASSERT_TRUE(Decide(Proxy("fam"), Action::kRead, Vitals(), At(kT)).permitted());
  data_.RemovePatient("alice");
  data_.RemovePatient("nobody");
  EXPECT_TRUE(data_.ConsentsOf("alice").empty());
  EXPECT_TRUE(data_.RelationshipsOf("alice").empty());
  EXPECT_TRUE(data_.ProxiesOf("alice").empty());
  EXPECT_TRUE(data_.BreakGlassOf("alice").empty());
  EXPECT_EQ(data_.RelationshipsOf("bob").size(), 1U);
  EXPECT_DECISION(Decide(Proxy("fam"), Action::kRead, Vitals(), At(kT)), kDeny, kNoRolePermission);
  EXPECT_DECISION(Decide(Staff("dr-er", {"doctor"}), Action::kRead, Vitals(), At(kT)), kDeny,
                  kNoRelationship);
}

TEST_F(DecisionPointTest, DecideDoesNotAllocate) {
  Treats("r1", "alice", "dr-house", kT - kDay, kT + kDay);
  data_.UpsertConsent(MakeConsent("c1", "alice", true, GranteeKind::kRole, "nurse", "psychiatry"));
  data_.UpsertConsent(MakeConsent("c2", "alice", false, GranteeKind::kAccount, "dr-house",
                                  "psychiatry", 0, 0, 0, kT + kDay));
  data_.UpsertBreakGlass(MakeGrant("b1", "alice", "dr-er", kT - kHour, kT + kHour));
  data_.UpsertProxy(MakeProxy("p1", "alice", "fam", {"physical-signs"}, ActionBit(Action::kRead)));
  const Subject subjects[] = {Staff("dr-house", {"doctor"}),
                              Staff("dr-er", {"doctor"}),
                              Staff("nurse", {"nurse"}),
                              Staff("rs", {"researcher"}),
                              Staff("op", {"operator"}),
                              PatientAccount("pat-alice", "alice"),
                              Proxy("fam"),
                              Subject{}};
  const Resource resources[] = {Vitals(), Cardio(), Psych(), Patient("alice"), Vitals("bob"), {}};
  // Warm up (the first shared_lock may touch thread-local state).
  (void)dp_.Decide(subjects[0], Action::kRead, resources[0], At(kT));
  long permits = 0;
  g_allocations = 0;
  g_counting = true;
  for (const Subject& s : subjects) {
    for (const Resource& r : resources) {
      for (size_t a = 0; a < kActionCount; ++a) {
        permits += dp_.Decide(s, static_cast<Action>(a), r, At(kT)).permitted() ? 1 : 0;
      }
      permits += dp_.DecideBreakGlass(s, r.patient_id, "a long enough reason", At(kT)).permitted();
    }
  }
  g_counting = false;
  EXPECT_EQ(g_allocations.load(), 0);
  EXPECT_GT(permits, 10);
}

TEST_F(DecisionPointTest, ConcurrentWritersAndReaders) {
  Treats("r-stable", "alice", "dr-house");
  const Subject doc = Staff("dr-house", {"doctor"});
  std::atomic<bool> stop{false};
  std::atomic<long> decisions{0};
  std::atomic<long> wrong{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      while (!stop.load()) {
        const std::string patient = "p" + std::to_string(decisions.load() % 50);
        Decision d = dp_.Decide(doc, Action::kRead, Vitals(), At(kT));
        if (!d.permitted() || d.reason() != Reason::kTreatingRelationship) {
          ++wrong;
        }
        (void)dp_.Decide(doc, Action::kRead, Vitals(patient), At(kT + t));
        decisions += 2;
      }
    });
  }
  while (decisions.load() < 1000) {
    std::this_thread::yield();
  }
  for (int i = 0; i < 20000 || decisions.load() < 20000; ++i) {
    const std::string patient = "p" + std::to_string(i % 50);
    Treats("r" + std::to_string(i % 7), patient, "dr-house", kT - kDay, i % 2 == 0 ? 0 : kT - 1);
    data_.UpsertConsent(MakeConsent("c" + std::to_string(i % 11), "alice", i % 3 == 0,
                                    GranteeKind::kRole, "nurse", "psychiatry"));
    if (i % 100 == 99) {
      data_.RemovePatient(patient);
    }
  }
  stop = true;
  for (auto& t : readers) {
    t.join();
  }
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(decisions.load(), 0);
}

}  // namespace
}  // namespace medvault::policy
