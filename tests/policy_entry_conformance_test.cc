// The PolicyEntryStore contract (access/access.h), run against every
// backend. A new backend (PostgreSQL) adds one PolicyEntryBackend to
// kBackends below; what only SQLite can show (its migrations) stays in
// sqlite_policy_entry_store_test.cc.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "access/access.h"
#include "common/ids.h"
#include "crypto/crypto.h"
#include "ledger/ledger.h"
#include "test_util.h"

namespace medvault::access {
namespace {

namespace fs = std::filesystem;

// A store and the ledger its audit entries go to.
struct OpenedPolicyEntryStore {
  std::unique_ptr<PolicyEntryStore> store;
  // Entries in the ledger, as committed (reads the log afresh).
  std::function<Result<uint64_t>()> ledger_size;
};

struct PolicyEntryBackend {
  std::string name;
  // Opens the store kept under `dir` (a fresh temporary directory per test);
  // opening the same `dir` again is a reopen.
  std::function<Result<OpenedPolicyEntryStore>(const fs::path& dir)> open;
};

// GoogleTest prints a parameter by its name (test names stay stable).
void PrintTo(const PolicyEntryBackend& backend, std::ostream* os) { *os << backend.name; }

Result<OpenedPolicyEntryStore> OpenSqlite(const fs::path& dir) {
  const fs::path file = dir / "metadata.db";
  // The ledger's tables must exist in the database first.
  MV_ASSIGN_OR_RETURN(std::unique_ptr<ledger::SqliteLedger> opened,
                      ledger::SqliteLedger::Open(file));
  std::shared_ptr<ledger::SqliteLedger> ledger = std::move(opened);
  store::SqliteOptions options;
  options.audit_sink = ledger.get();  // kept alive by ledger_size below
  MV_ASSIGN_OR_RETURN(std::unique_ptr<PolicyEntryStore> store,
                      OpenSqlitePolicyEntryStore(file, options));
  OpenedPolicyEntryStore out;
  out.store = std::move(store);
  out.ledger_size = [ledger]() -> Result<uint64_t> {
    MV_RETURN_IF_ERROR(ledger->Sync());
    return ledger->Size();
  };
  return out;
}

const PolicyEntryBackend kBackends[] = {
    {"sqlite", OpenSqlite},
};

PolicyEntryRow Row(const std::string& kind, const std::string& id, const std::string& patient,
                   const std::string& body) {
  return {kind, id, patient, Bytes(body.begin(), body.end()), 1};
}

// An entry as the service hands it to the store: encoded.
Bytes AuditEntry(const std::string& action) {
  ledger::Entry e;
  e.time_ms = 1;
  e.actor = "system";
  e.action = action;
  e.effect = std::string(ledger::kEffectDone);
  return ledger::Encode(e);
}

class PolicyEntryStoreConformance : public ::testing::TestWithParam<PolicyEntryBackend> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::InitCrypto().ok());
    Reopen();
  }
  void Reopen() {
    opened_.store.reset();
    auto opened = GetParam().open(dir_.path());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    opened_ = std::move(*opened);
    store_ = opened_.store.get();
  }
  uint64_t LedgerSize() {
    auto n = opened_.ledger_size();
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    return n.ok() ? *n : 0;
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
  std::vector<std::string> BodiesOf(const std::string& patient) {
    std::vector<std::string> out;
    EXPECT_TRUE(store_
                    ->ForEachOfPatient(patient,
                                       [&](const PolicyEntryRow& r) {
                                         out.emplace_back(AsString(r.sealed_body));
                                         return Status::Ok();
                                       })
                    .ok());
    return out;
  }

  medvault::testing::TempDir dir_;
  OpenedPolicyEntryStore opened_;
  PolicyEntryStore* store_ = nullptr;
  const std::string patient_ = NewRandomId();
  const std::string id_ = NewRandomId();
};

TEST_P(PolicyEntryStoreConformance, UpsertReplacesByKindAndIdInInsertionOrder) {
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

TEST_P(PolicyEntryStoreConformance, AnEntryCannotMoveToAnotherPatient) {
  ASSERT_TRUE(store_->Upsert(Row("consent", id_, patient_, "mine")).ok());
  EXPECT_EQ(store_->Upsert(Row("consent", id_, NewRandomId(), "stolen")).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(AsString(All()[0].sealed_body), "mine");
}

TEST_P(PolicyEntryStoreConformance, MalformedRowsAreRefused) {
  EXPECT_FALSE(store_->Upsert(Row("consent", "short-id", patient_, "x")).ok());
  EXPECT_FALSE(store_->Upsert(Row("", id_, patient_, "x")).ok());
  EXPECT_FALSE(store_->Upsert(Row("consent", id_, "not-a-patient", "x")).ok());
  EXPECT_EQ(*store_->Count(), 0);
}

TEST_P(PolicyEntryStoreConformance, DeletePatientRemovesOnlyThatPatient) {
  const std::string other = NewRandomId();
  ASSERT_TRUE(store_->Upsert(Row("consent", id_, patient_, "a")).ok());
  ASSERT_TRUE(store_->Upsert(Row("consent", NewRandomId(), other, "b")).ok());
  ASSERT_TRUE(store_->DeletePatient(patient_).ok());
  ASSERT_TRUE(store_->DeletePatient(patient_).ok()) << "idempotent";
  auto rows = All();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].patient_id, other);
}

TEST_P(PolicyEntryStoreConformance, LedgerEntriesCommitWithTheRowOrNeither) {
  const std::vector<Bytes> good = {AuditEntry("consent.grant")};
  ASSERT_TRUE(store_->Upsert(Row("consent", id_, patient_, "a"), good).ok());
  EXPECT_EQ(LedgerSize(), 1u);
  const std::vector<Bytes> bad = {
      Bytes{1, 2, 3}};  // not an entry: the append fails, so must the row
  EXPECT_EQ(store_->Upsert(Row("consent", id_, patient_, "b"), bad).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(AsString(All()[0].sealed_body), "a") << "the row rolled back with its entry";
  EXPECT_EQ(store_->DeletePatient(patient_, bad).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*store_->Count(), 1);
  ASSERT_TRUE(store_->DeletePatient(patient_, good).ok());
  EXPECT_EQ(LedgerSize(), 2u);
  EXPECT_EQ(*store_->Count(), 0);
}

TEST_P(PolicyEntryStoreConformance, ForEachOfPatientInInsertionOrderAndStopsAtAnError) {
  const std::string other = NewRandomId();
  ASSERT_TRUE(store_->Upsert(Row("consent", NewRandomId(), patient_, "p1")).ok());
  ASSERT_TRUE(store_->Upsert(Row("consent", NewRandomId(), other, "o1")).ok());
  ASSERT_TRUE(store_->Upsert(Row("proxy", NewRandomId(), patient_, "p2")).ok());
  EXPECT_EQ(BodiesOf(patient_), (std::vector<std::string>{"p1", "p2"}));
  EXPECT_EQ(BodiesOf(other), std::vector<std::string>{"o1"});
  EXPECT_TRUE(BodiesOf(NewRandomId()).empty());
  int calls = 0;
  Status st = store_->ForEach([&](const PolicyEntryRow&) {
    return ++calls == 2 ? Status::Internal("stop") : Status::Ok();
  });
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_EQ(calls, 2);
}

// Other processes learn of policy changes through the change log: each
// Upsert and DeletePatient records the patient, a refused one nothing.
TEST_P(PolicyEntryStoreConformance, ChangesNameThePatient) {
  const int64_t start = *store_->LatestChange();
  ASSERT_TRUE(store_->Upsert(Row("consent", id_, patient_, "a")).ok());
  EXPECT_EQ(store_->Upsert(Row("consent", id_, NewRandomId(), "stolen")).code(),
            StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->DeletePatient(patient_).ok());
  auto rows = store_->ChangesSince(start, 100);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 2u);
  for (const store::ChangeRow& r : *rows) {
    EXPECT_EQ(r.domain, store::kChangeDomainPolicy);
    EXPECT_EQ(r.subject, patient_);
  }
  EXPECT_EQ((*rows)[1].seq, (*rows)[0].seq + 1);
  EXPECT_EQ(*store_->LatestChange(), (*rows)[1].seq);
  EXPECT_EQ(store_->ChangesSince(start, 1)->size(), 1u);
}

TEST_P(PolicyEntryStoreConformance, ConcurrentUpsertsAllLand) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        Status st = store_->Upsert(Row("consent", NewRandomId(), patient_, "x"));
        EXPECT_TRUE(st.ok()) << st.ToString();
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(*store_->Count(), 40);
  EXPECT_EQ(BodiesOf(patient_).size(), 40u);
}

TEST_P(PolicyEntryStoreConformance, ReopenKeepsRowsAndTheLedger) {
  const std::vector<Bytes> audit = {AuditEntry("consent.grant")};
  ASSERT_TRUE(store_->Upsert(Row("settings", patient_, patient_, "s"), audit).ok());
  Reopen();
  EXPECT_EQ(*store_->Count(), 1);
  EXPECT_EQ(BodiesOf(patient_), std::vector<std::string>{"s"});
  EXPECT_EQ(LedgerSize(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Backends, PolicyEntryStoreConformance, ::testing::ValuesIn(kBackends),
                         [](const ::testing::TestParamInfo<PolicyEntryBackend>& param_info) {
                           return param_info.param.name;
                         });

}  // namespace
}  // namespace medvault::access
