// AccessService over the real SQLite policy entry store and the shipped policy.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <map>

#include "access/access.h"
#include "common/ids.h"
#include "crypto_test_util.h"
#include "record/record.h"
#include "test_util.h"

namespace medvault {
namespace {

using access::AccountFacts;
using policy::Action;

class AccessServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::InitCrypto().ok());
    ASSERT_TRUE(crypto::CreateKeyFile(dir_.path() / "kek").ok());
    auto keys = crypto::OpenFileKeyProvider(dir_.path() / "kek");
    ASSERT_TRUE(keys.ok());
    keys_ = std::move(*keys);
    auto pol =
        policy::Policy::Load(std::filesystem::path(MEDVAULT_SOURCE_DIR) / "config/policy.conf");
    ASSERT_TRUE(pol.ok()) << pol.status().ToString();
    policy_ = *pol;
    accounts_[doctor_] = {true, false, {"doctor"}, "inst1", "dep1"};
    accounts_[nurse_] = {true, false, {"nurse"}, "inst1", "dep1"};
    accounts_[proxy_] = {true, false, {"family-proxy"}, "", ""};
    accounts_[admin_] = {true, false, {"institution-admin"}, "inst1", ""};
    accounts_[disabled_] = {true, true, {"doctor"}, "inst1", ""};
    Open();
  }

  void Open() {
    service_.reset();
    store_.reset();
    data_ = std::make_unique<policy::PolicyData>();
    auto store = access::OpenSqlitePolicyEntryStore(db());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    access::AccessOptions options;
    options.now_ms = [this] { return now_; };
    auto svc = access::CreateAccessService(
        store_.get(), keys_.get(), data_.get(), policy_,
        [this](std::string_view id) -> Result<AccountFacts> {
          auto it = accounts_.find(std::string(id));
          return it == accounts_.end() ? AccountFacts{} : it->second;
        },
        [](std::string_view p) -> Status {
          return p.find("..") == std::string_view::npos ? Status::Ok()
                                                        : Status::InvalidArgument("bad path");
        },
        options);
    ASSERT_TRUE(svc.ok());
    service_ = std::move(*svc);
    ASSERT_TRUE(service_->Load().ok());
  }

  std::filesystem::path db() const { return dir_.path() / "metadata.db"; }

  // Another process on the same database (a CLI command): its own store
  // connection, its own PolicyData and service.
  struct Other {
    std::unique_ptr<policy::PolicyData> data;
    std::unique_ptr<access::PolicyEntryStore> store;
    std::unique_ptr<access::AccessService> service;
  };
  Other OpenOther() {
    Other o;
    o.data = std::make_unique<policy::PolicyData>();
    auto store = access::OpenSqlitePolicyEntryStore(db());
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    o.store = std::move(*store);
    access::AccessOptions options;
    options.now_ms = [this] { return now_; };
    auto svc = access::CreateAccessService(
        o.store.get(), keys_.get(), o.data.get(), policy_,
        [this](std::string_view id) -> Result<AccountFacts> {
          auto it = accounts_.find(std::string(id));
          return it == accounts_.end() ? AccountFacts{} : it->second;
        },
        [](std::string_view) { return Status::Ok(); }, options);
    EXPECT_TRUE(svc.ok());
    o.service = std::move(*svc);
    EXPECT_TRUE(o.service->Load().ok());
    return o;
  }

  testing::TempDir dir_;
  std::unique_ptr<crypto::KeyProvider> keys_;
  std::shared_ptr<const policy::Policy> policy_;
  std::unique_ptr<policy::PolicyData> data_;
  std::unique_ptr<access::PolicyEntryStore> store_;
  std::unique_ptr<access::AccessService> service_;
  std::map<std::string, AccountFacts> accounts_;
  int64_t now_ = 1'800'000'000'000;
  const std::string patient_ = NewRandomId();
  const std::string doctor_ = NewRandomId();
  const std::string nurse_ = NewRandomId();
  const std::string proxy_ = NewRandomId();
  const std::string admin_ = NewRandomId();
  const std::string disabled_ = NewRandomId();
};

TEST_F(AccessServiceTest, ConsentPersistsAcrossRestartAndRevokes) {
  access::ConsentRequest r;
  r.path_prefix = "internal-medicine/cardiology";
  r.grantee = doctor_;
  r.expires_at_ms = now_ + 3'600'000;
  auto c = service_->AddConsent(patient_, r);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  Open();
  auto listed = data_->ConsentsOf(patient_);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].path_prefix, "internal-medicine/cardiology");
  EXPECT_EQ(listed[0].expires_at_ms, now_ + 3'600'000);
  ASSERT_TRUE(service_->RevokeConsent(patient_, c->consent_id).ok());
  EXPECT_TRUE(data_->ConsentsOf(patient_).empty());
  Open();
  EXPECT_TRUE(data_->ConsentsOf(patient_).empty()) << "revocation must survive a restart";
  EXPECT_EQ(service_->RevokeConsent(patient_, c->consent_id).code(), StatusCode::kNotFound);
}

// Issue 13: changes made by another process (the CLI) reach this service's
// PolicyData at its next SyncChanges() (the server calls it every 200 ms);
// before, it kept permitting until a restart.
TEST_F(AccessServiceTest, SyncChangesAppliesWhatAnotherProcessChanged) {
  auto rel = service_->StartRelationship(patient_, doctor_);
  ASSERT_TRUE(rel.ok()) << rel.status().ToString();
  access::ConsentRequest r;
  r.grantee = nurse_;
  auto consent = service_->AddConsent(patient_, r);
  ASSERT_TRUE(consent.ok());
  const std::string other_patient = NewRandomId();
  ASSERT_TRUE(service_->StartRelationship(other_patient, doctor_).ok());

  Other cli = OpenOther();
  now_ += 1000;
  ASSERT_TRUE(cli.service->EndRelationship(patient_, rel->relationship_id).ok());
  ASSERT_TRUE(cli.service->RevokeConsent(patient_, consent->consent_id).ok());
  access::ConsentRequest deny;
  deny.deny = true;
  deny.grantee = doctor_;
  ASSERT_TRUE(cli.service->AddConsent(patient_, deny).ok());
  // Not seen before the sync: the server's data is its own memory.
  EXPECT_EQ(data_->PatientsTreatedBy(doctor_, now_).size(), 2u);

  ASSERT_TRUE(service_->SyncChanges().ok());
  EXPECT_EQ(data_->PatientsTreatedBy(doctor_, now_), std::vector<std::string>{other_patient});
  const auto consents = data_->ConsentsOf(patient_);
  ASSERT_EQ(consents.size(), 1u);
  EXPECT_TRUE(consents[0].deny);
  // Idempotent, and a no-op when nothing changed.
  ASSERT_TRUE(service_->SyncChanges().ok());
  EXPECT_EQ(data_->ConsentsOf(patient_).size(), 1u);

  // Erasure elsewhere forgets the patient here.
  ASSERT_TRUE(cli.service->ForgetPatient(other_patient).ok());
  ASSERT_TRUE(service_->SyncChanges().ok());
  EXPECT_TRUE(data_->PatientsTreatedBy(doctor_, now_).empty());
  EXPECT_TRUE(data_->RelationshipsOf(other_patient).empty());

  // This service's own changes stay as they are after a sync.
  auto again = service_->StartRelationship(patient_, doctor_);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ASSERT_TRUE(service_->SyncChanges().ok());
  EXPECT_EQ(data_->PatientsTreatedBy(doctor_, now_), std::vector<std::string>{patient_});
}

TEST_F(AccessServiceTest, SyncChangesReloadsEverythingWhenTheLogWasPruned) {
  auto rel = service_->StartRelationship(patient_, doctor_);
  ASSERT_TRUE(rel.ok());
  Other cli = OpenOther();
  now_ += 1000;
  ASSERT_TRUE(cli.service->EndRelationship(patient_, rel->relationship_id).ok());
  // The log lost the rows this service had not seen (as after more than
  // kChangeLogKeep changes): a gap, so everything is reloaded.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db().c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw,
                         "INSERT INTO change_log(domain, subject) VALUES ('account', 'x');"
                         "DELETE FROM change_log WHERE seq < (SELECT MAX(seq) FROM change_log)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);
  ASSERT_TRUE(service_->SyncChanges().ok());
  EXPECT_TRUE(data_->PatientsTreatedBy(doctor_, now_).empty());
  EXPECT_EQ(data_->RelationshipsOf(patient_).size(), 1u);
}

TEST_F(AccessServiceTest, ConsentValidation) {
  access::ConsentRequest r;
  r.grantee = NewRandomId();  // unknown account
  EXPECT_EQ(service_->AddConsent(patient_, r).status().code(), StatusCode::kInvalidArgument);
  r.grantee = "not-an-id";
  EXPECT_EQ(service_->AddConsent(patient_, r).status().code(), StatusCode::kInvalidArgument);
  r.grantee = doctor_;
  r.expires_at_ms = now_ - 1;
  EXPECT_EQ(service_->AddConsent(patient_, r).status().code(), StatusCode::kInvalidArgument);
  r.expires_at_ms = 0;
  r.path_prefix = "../etc";
  EXPECT_EQ(service_->AddConsent(patient_, r).status().code(), StatusCode::kInvalidArgument);
  r.path_prefix = "";
  r.grantee_kind = policy::GranteeKind::kRole;
  r.grantee = "wizard";
  EXPECT_EQ(service_->AddConsent(patient_, r).status().code(), StatusCode::kInvalidArgument);
  r.grantee = "researcher";
  EXPECT_TRUE(service_->AddConsent(patient_, r).ok());
  EXPECT_EQ(data_->ConsentsOf(patient_).size(), 1u) << "failed requests must store nothing";
}

TEST_F(AccessServiceTest, RelationshipsStartEndAndRefuseNonClinicians) {
  EXPECT_EQ(service_->StartRelationship(patient_, admin_).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->StartRelationship(patient_, disabled_).status().code(),
            StatusCode::kInvalidArgument);
  auto rel = service_->StartRelationship(patient_, doctor_);
  ASSERT_TRUE(rel.ok()) << rel.status().ToString();
  EXPECT_EQ(service_->StartRelationship(patient_, doctor_).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(data_->PatientsTreatedBy(doctor_, now_), std::vector<std::string>{patient_});
  now_ += 1000;
  ASSERT_TRUE(service_->EndRelationship(patient_, rel->relationship_id).ok());
  EXPECT_EQ(service_->EndRelationship(patient_, rel->relationship_id).code(),
            StatusCode::kFailedPrecondition);
  Open();
  EXPECT_TRUE(data_->PatientsTreatedBy(doctor_, now_).empty());
  EXPECT_EQ(data_->RelationshipsOf(patient_).size(), 1u);
}

TEST_F(AccessServiceTest, DelegationNeedsRelationshipAndPatientPermission) {
  EXPECT_EQ(service_->Delegate(patient_, doctor_, nurse_, 0).status().code(),
            StatusCode::kFailedPrecondition);
  ASSERT_TRUE(service_->StartRelationship(patient_, doctor_).ok());
  EXPECT_EQ(service_->Delegate(patient_, doctor_, nurse_, 0).status().code(),
            StatusCode::kFailedPrecondition)
      << "the patient has not allowed delegation";
  ASSERT_TRUE(service_->SetSettings(patient_, true, {"psychiatry"}).ok());
  EXPECT_EQ(service_->Delegate(patient_, doctor_, doctor_, 0).status().code(),
            StatusCode::kInvalidArgument);
  auto d = service_->Delegate(patient_, doctor_, nurse_, now_ + 60'000);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ASSERT_TRUE(service_->RevokeDelegation(patient_, d->delegation_id).ok());
  Open();
  ASSERT_EQ(data_->DelegationsOf(patient_).size(), 1u);
  EXPECT_NE(data_->DelegationsOf(patient_)[0].revoked_at_ms, 0);
  EXPECT_TRUE(data_->SettingsOf(patient_).allow_delegation);
  EXPECT_EQ(data_->SettingsOf(patient_).never_break_glass, std::vector<std::string>{"psychiatry"});
}

TEST_F(AccessServiceTest, ProxyNeedsTheRoleAndCannotManageConsent) {
  access::ProxyRequest r;
  r.proxy_account_id = doctor_;
  r.path_prefixes = {"life-record"};
  r.actions = {Action::kRead};
  EXPECT_EQ(service_->AddProxy(patient_, r).status().code(), StatusCode::kInvalidArgument);
  r.proxy_account_id = proxy_;
  // Only the record's own reading and writing actions: never consent,
  // erasure, break-glass or anything beyond the record.
  for (Action extra :
       {Action::kManageConsent, Action::kErasePatient, Action::kBreakGlass,
        Action::kManageRelationship, Action::kDelegate, Action::kManageAccounts, Action::kReadAudit,
        Action::kSearchPatients, Action::kCreatePatient, Action::kReadMetrics}) {
    r.actions = {Action::kRead, extra};
    EXPECT_EQ(service_->AddProxy(patient_, r).status().code(), StatusCode::kInvalidArgument)
        << policy::ActionName(extra);
  }
  EXPECT_TRUE(data_->ProxiesOf(patient_).empty());
  r.actions = {Action::kRead, Action::kWrite};
  r.path_prefixes = {};
  EXPECT_EQ(service_->AddProxy(patient_, r).status().code(), StatusCode::kInvalidArgument);
  r.path_prefixes = {"life-record"};
  auto p = service_->AddProxy(patient_, r);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(data_->PatientsProxiedBy(proxy_, now_), std::vector<std::string>{patient_});
  ASSERT_TRUE(service_->RevokeProxy(patient_, p->proxy_id).ok());
  EXPECT_TRUE(data_->PatientsProxiedBy(proxy_, now_).empty());
}

TEST_F(AccessServiceTest, BreakGlassReasonIsSealedAtRest) {
  const std::string canary = "CanaryReasonUnconsciousXyzzy";
  EXPECT_EQ(service_->RecordBreakGlass(patient_, doctor_, "", now_ + 1000).status().code(),
            StatusCode::kInvalidArgument);
  auto g = service_->RecordBreakGlass(patient_, doctor_, canary, now_ + 3'600'000);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  store_.reset();
  service_.reset();
  EXPECT_TRUE(testing::FilesContaining(dir_.path(), canary).empty());
  EXPECT_TRUE(testing::FilesContaining(dir_.path(), doctor_).empty())
      << "who accessed whom is sealed too";
  Open();
  ASSERT_EQ(data_->BreakGlassOf(patient_).size(), 1u);
  EXPECT_EQ(data_->BreakGlassOf(patient_)[0].reason, canary);
}

TEST_F(AccessServiceTest, TamperedOrMovedEntryFailsToLoad) {
  ASSERT_TRUE(service_->StartRelationship(patient_, doctor_).ok());
  ASSERT_TRUE(service_->StartRelationship(NewRandomId(), nurse_).ok());
  service_.reset();
  store_.reset();
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db().c_str(), &raw), SQLITE_OK);
  // Swap the two sealed bodies: each now sits under the other's id.
  ASSERT_EQ(sqlite3_exec(raw,
                         "UPDATE policy_entries SET sealed_body = (SELECT sealed_body FROM "
                         "policy_entries p2 WHERE p2.entry_id <> policy_entries.entry_id)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);
  data_ = std::make_unique<policy::PolicyData>();
  auto store = access::OpenSqlitePolicyEntryStore(db());
  ASSERT_TRUE(store.ok());
  store_ = std::move(*store);
  auto svc = access::CreateAccessService(
      store_.get(), keys_.get(), data_.get(), policy_,
      [](std::string_view) -> Result<AccountFacts> { return AccountFacts{}; },
      [](std::string_view) { return Status::Ok(); }, {});
  ASSERT_TRUE(svc.ok());
  EXPECT_EQ((*svc)->Load().code(), StatusCode::kDataLoss);
}

TEST_F(AccessServiceTest, ForgetPatientRemovesEverything) {
  ASSERT_TRUE(service_->StartRelationship(patient_, doctor_).ok());
  access::ConsentRequest r;
  r.grantee = doctor_;
  ASSERT_TRUE(service_->AddConsent(patient_, r).ok());
  ASSERT_TRUE(service_->ForgetPatient(patient_).ok());
  EXPECT_TRUE(data_->ConsentsOf(patient_).empty());
  EXPECT_TRUE(data_->RelationshipsOf(patient_).empty());
  Open();
  EXPECT_TRUE(data_->RelationshipsOf(patient_).empty());
  EXPECT_EQ(*store_->Count(), 0);
}

}  // namespace
}  // namespace medvault
