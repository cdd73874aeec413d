// The typed ledger builders (src/enforce/entries.cc): one shape per kind of
// event, the patient only as a pseudonym, and the record builder's refusal
// outside an enforcement scope.
#include <gtest/gtest.h>

#include "common/ids.h"
#include "crypto/crypto.h"
#include "enforce/enforce.h"

namespace medvault {
namespace {

class EnforceEntriesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::InitCrypto().ok());
    key_ = crypto::RandomKey();
    patient_ = NewRandomId();
  }
  SecretBytes key_;
  std::string patient_;
};

TEST_F(EnforceEntriesTest, ADecisionEntryCarriesReasonsObligationsAndThePseudonym) {
  enforce::Origin o;
  o.channel = enforce::Channel::kHttp;
  o.request_id = "req-1";
  o.account_id = "acc-1";
  o.route = "/api/v1/patients/{id}/segments/{path}";
  policy::Context ctx;
  ctx.now_ms = 1'700'000'000'000;
  ctx.purpose = policy::Purpose::kEmergency;
  policy::Decision d;
  d.effect = policy::Effect::kPermit;
  d.reasons = {policy::Reason::kBreakGlass, policy::Reason::kTreatingRelationship};
  d.reason_count = 2;
  const std::vector<std::string> mask = {"insurance_number"};
  d.obligations.mask_fields = &mask;
  d.obligations.notify_patient = true;
  d.obligations.flag_for_review = true;
  d.obligations.expires_at_ms = 1'700'000'100'000;
  d.basis_id = "grant-7";
  // A requested path that spells the patient's id is recorded redacted.
  const std::string path = "other/" + patient_;
  policy::Resource r;
  r.patient_id = patient_;
  r.path = path;
  auto e = enforce::DecisionEntry(o, ctx, policy::Action::kRead, r, d, &key_);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->time_ms, ctx.now_ms);
  EXPECT_EQ(e->actor, "acc-1");
  EXPECT_EQ(e->request_id, "req-1");
  EXPECT_EQ(e->action, ledger::kActionDecision);
  EXPECT_EQ(e->effect, ledger::kEffectPermit);
  EXPECT_EQ(e->reasons, (std::vector<std::string>{"break-glass", "treating-relationship"}));
  EXPECT_EQ(e->obligations, (std::vector<std::string>{"notify-patient", "flag-for-review",
                                                      "mask-fields", "expires-at:1700000100000"}));
  EXPECT_EQ(e->purpose, "emergency");
  EXPECT_EQ(e->resource.kind, "read");
  EXPECT_EQ(e->details.at("basis"), "grant-7");
  EXPECT_EQ(e->patient_ref, ledger::PatientRef(key_, patient_));
  const Bytes encoded = ledger::Encode(*e);
  EXPECT_EQ(std::string(AsString(encoded)).find(patient_), std::string::npos);
}

TEST_F(EnforceEntriesTest, AnonymousHttpAndTheConsoleAreNamedAsSuch) {
  enforce::Origin http;
  http.channel = enforce::Channel::kHttp;
  EXPECT_EQ(http.Actor(), "anonymous");
  enforce::Origin console;
  console.channel = enforce::Channel::kCli;
  console.console = true;
  console.account_id = "ignored";
  EXPECT_EQ(console.Actor(), "cli");
  enforce::Origin system;
  EXPECT_EQ(system.Actor(), "system");
  auto e = enforce::ActionEntry(http, ledger::kActionAuthLogin, ledger::kEffectDeny, "session", {},
                                "", {"bad-password"});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->actor, "anonymous");
  EXPECT_EQ(e->reasons, std::vector<std::string>{"bad-password"});
}

TEST_F(EnforceEntriesTest, RecordEventsOutsideAScopeAreRefused) {
  record::RecordEvent ev;
  ev.action = ledger::kActionSegmentWrite;
  ev.patient_id = patient_;
  ev.path = "other/a";
  ev.version = 1;
  ev.content_sha256_hex = std::string(64, 'a');
  ev.author = "x";
  auto e = enforce::RecordEventEntry(ev, key_);
  EXPECT_EQ(e.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(EnforceEntriesTest, AccessEventsOmitAnEntryIdThatIsThePatientsOwn) {
  access::AccessEvent ev;
  ev.action = ledger::kActionSettingsChange;
  ev.kind = "patient";
  ev.entry_id = patient_;
  ev.patient_id = patient_;
  auto e = enforce::AccessEventEntry(ev, key_);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->details.count("entry_id"), 0u);
  EXPECT_EQ(e->actor, "system");
  EXPECT_EQ(e->patient_ref, ledger::PatientRef(key_, patient_));
  ev.kind = "consent";
  const std::string id = NewRandomId();
  ev.entry_id = id;
  e = enforce::AccessEventEntry(ev, key_);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->details.at("entry_id"), id);
  // A subtree that spells the patient id is refused (BindPatient).
  const std::string path = "other/" + patient_;
  ev.path = path;
  EXPECT_FALSE(enforce::AccessEventEntry(ev, key_).ok());
}

TEST_F(EnforceEntriesTest, AScrubFindingNamesTheObjectIdNotTheKeysPatientPart) {
  integrity::Finding f;
  f.kind = "hash-mismatch";
  f.patient_id = patient_;
  f.path = "other/a";
  f.version = 3;
  const std::string object_id = NewRandomId();
  f.object_key = patient_ + "/" + object_id;
  auto e = enforce::ScrubFindingEntry(f, key_);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->details.at("object_id"), object_id);
  EXPECT_EQ(e->details.at("version"), "3");
  EXPECT_EQ(e->actor, "system");
  EXPECT_EQ(std::string(AsString(ledger::Encode(*e))).find(patient_), std::string::npos);
}

}  // namespace
}  // namespace medvault
