// The SQLite policy entry store: its migrations on the database file shared
// with the ledger. The backend-neutral contract (replace by id, the patient
// guard, erasure, ledger entries committed with the row or not at all) is in
// policy_entry_conformance_test.cc.
#include <gtest/gtest.h>

#include "common/ids.h"
#include "crypto/crypto.h"
#include "ledger/ledger.h"
#include "store/policy_entry_store.h"
#include "test_util.h"

namespace medvault::store {
namespace {

TEST(SqlitePolicyEntryStoreTest, ReopenKeepsRowsAndMigrationsAreIdempotent) {
  ASSERT_TRUE(crypto::InitCrypto().ok());
  testing::TempDir dir;
  const std::filesystem::path file = dir.path() / "metadata.db";
  auto ledger = ledger::SqliteLedger::Open(file);  // creates the ledger's tables
  ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
  const std::string patient = NewRandomId();
  {
    auto store = OpenSqlitePolicyEntryStore(file);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->Upsert({"settings", patient, patient, Bytes{1}, 1}).ok());
  }
  for (int i = 0; i < 2; ++i) {
    auto again = OpenSqlitePolicyEntryStore(file);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(*(*again)->Count(), 1);
    EXPECT_EQ(*(*again)->LatestChange(), 1) << "a reopen records no change";
  }
}

}  // namespace
}  // namespace medvault::store
