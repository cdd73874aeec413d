// The SQLite policy entry store: replace by id, the patient guard, erasure,
// and ledger entries committed (or not) with the row through the audit sink
// (the real ledger).
#include <gtest/gtest.h>

#include "common/ids.h"
#include "crypto/crypto.h"
#include "ledger/ledger.h"
#include "store/policy_entry_store.h"
#include "test_util.h"

namespace medvault::store {
namespace {

PolicyEntryRow Row(const std::string& kind, const std::string& id, const std::string& patient,
                   const std::string& body) {
  return {kind, id, patient, Bytes(body.begin(), body.end()), 1};
}

Bytes AuditEntry(const std::string& action) {
  ledger::Entry e;
  e.time_ms = 1;
  e.actor = "system";
  e.action = action;
  e.effect = std::string(ledger::kEffectDone);
  return ledger::Encode(e);
}

class SqlitePolicyEntryStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::InitCrypto().ok());
    file_ = dir_.path() / "metadata.db";
    auto ledger = ledger::SqliteLedger::Open(file_);  // creates the ledger's tables
    ASSERT_TRUE(ledger.ok());
    ledger_ = std::move(*ledger);
    SqliteOptions options;
    options.audit_sink = ledger_.get();
    auto store = OpenSqlitePolicyEntryStore(file_, options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }

  std::vector<PolicyEntryRow> All() {
    std::vector<PolicyEntryRow> out;
    EXPECT_TRUE(store_
                    ->ForEach([&](const PolicyEntryRow& r) {
                      out.push_back(r);
                      return Status::Ok();
                    })
                    .ok());
    return out;
  }

  testing::TempDir dir_;
  std::filesystem::path file_;
  std::unique_ptr<ledger::SqliteLedger> ledger_;
  std::unique_ptr<PolicyEntryStore> store_;
  const std::string patient_ = NewRandomId();
  const std::string id_ = NewRandomId();
};

TEST_F(SqlitePolicyEntryStoreTest, UpsertReplacesByKindAndIdInInsertionOrder) {
  const std::string second = NewRandomId();
  ASSERT_TRUE(store_->Upsert(Row("consent", id_, patient_, "v1")).ok());
  ASSERT_TRUE(store_->Upsert(Row("relationship", second, patient_, "r1")).ok());
  ASSERT_TRUE(store_->Upsert(Row("consent", id_, patient_, "v2")).ok());
  auto rows = All();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].entry_id, id_) << "a replacement keeps its place";
  EXPECT_EQ(AsString(rows[0].sealed_body), "v2");
  EXPECT_EQ(*store_->Count(), 2);
}

TEST_F(SqlitePolicyEntryStoreTest, AnEntryCannotMoveToAnotherPatient) {
  ASSERT_TRUE(store_->Upsert(Row("consent", id_, patient_, "mine")).ok());
  EXPECT_EQ(store_->Upsert(Row("consent", id_, NewRandomId(), "stolen")).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(AsString(All()[0].sealed_body), "mine");
}

TEST_F(SqlitePolicyEntryStoreTest, MalformedRowsAreRefused) {
  EXPECT_FALSE(store_->Upsert(Row("consent", "short-id", patient_, "x")).ok());
  EXPECT_FALSE(store_->Upsert(Row("", id_, patient_, "x")).ok());
  EXPECT_FALSE(store_->Upsert(Row("consent", id_, "not-a-patient", "x")).ok());
  EXPECT_EQ(*store_->Count(), 0);
}

TEST_F(SqlitePolicyEntryStoreTest, DeletePatientRemovesOnlyThatPatient) {
  const std::string other = NewRandomId();
  ASSERT_TRUE(store_->Upsert(Row("consent", id_, patient_, "a")).ok());
  ASSERT_TRUE(store_->Upsert(Row("consent", NewRandomId(), other, "b")).ok());
  ASSERT_TRUE(store_->DeletePatient(patient_).ok());
  ASSERT_TRUE(store_->DeletePatient(patient_).ok()) << "idempotent";
  auto rows = All();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].patient_id, other);
}

TEST_F(SqlitePolicyEntryStoreTest, LedgerEntriesCommitWithTheRowOrNeither) {
  const std::vector<Bytes> good = {AuditEntry("consent.grant")};
  ASSERT_TRUE(store_->Upsert(Row("consent", id_, patient_, "a"), good).ok());
  ASSERT_TRUE(ledger_->Sync().ok());
  EXPECT_EQ(ledger_->Size(), 1u);
  std::vector<Bytes> bad = {AuditEntry("consent.revoke")};
  bad[0].insert(bad[0].begin(), ' ');  // not canonical: the append fails, so must the row
  EXPECT_EQ(store_->Upsert(Row("consent", id_, patient_, "b"), bad).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(AsString(All()[0].sealed_body), "a") << "the row rolled back with its entry";
  EXPECT_EQ(store_->DeletePatient(patient_, bad).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*store_->Count(), 1);
  ASSERT_TRUE(store_->DeletePatient(patient_, good).ok());
  ASSERT_TRUE(ledger_->Sync().ok());
  EXPECT_EQ(ledger_->Size(), 2u);
  EXPECT_EQ(*store_->Count(), 0);
}

// Entries without a ledger to append them to are refused, never dropped.
TEST_F(SqlitePolicyEntryStoreTest, EntriesWithoutALedgerAreRefused) {
  auto bare = OpenSqlitePolicyEntryStore(file_);
  ASSERT_TRUE(bare.ok());
  const std::vector<Bytes> good = {AuditEntry("consent.grant")};
  Status st = (*bare)->Upsert(Row("consent", id_, patient_, "a"), good);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("ledger"), std::string::npos) << st.message();
  EXPECT_EQ((*bare)->DeletePatient(patient_, good).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(*(*bare)->Count(), 0);
  ASSERT_TRUE((*bare)->Upsert(Row("consent", id_, patient_, "a")).ok());  // no entries: fine
  EXPECT_EQ(*(*bare)->Count(), 1);
}

TEST_F(SqlitePolicyEntryStoreTest, ReopenKeepsRowsAndMigrationsAreIdempotent) {
  ASSERT_TRUE(store_->Upsert(Row("settings", patient_, patient_, "s")).ok());
  store_.reset();
  auto again = OpenSqlitePolicyEntryStore(file_);
  ASSERT_TRUE(again.ok());
  store_ = std::move(*again);
  EXPECT_EQ(*store_->Count(), 1);
}

}  // namespace
}  // namespace medvault::store
