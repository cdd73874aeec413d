// SqliteAccountStore on a real database in a temporary directory: what is
// particular to SQLite (migrations, file modes, the shared database file,
// what reaches the files). The backend-neutral contract is in
// account_store_conformance_test.cc.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "account_test_util.h"
#include "crypto_test_util.h"
#include "store/account_store.h"
#include "store/store.h"
#include "test_util.h"

namespace medvault::store {
namespace {

namespace fs = std::filesystem;
using medvault::testing::FilesContaining;
using medvault::testing::TempDir;

using store_testing::accounts::Filled;
using store_testing::accounts::Id;
using store_testing::accounts::MakeAccount;

class SqliteAccountStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_path_ = dir_.path() / "metadata.db";
    Reopen();
  }
  void Reopen() {
    store_.reset();
    auto opened = OpenSqliteAccountStore(db_path_);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }
  TempDir dir_;
  fs::path db_path_;
  std::unique_ptr<AccountStore> store_;
};

// --- Files, migrations, sharing ---------------------------------------------------

TEST_F(SqliteAccountStoreTest, MigrationsAreIdempotentAndDataSurvivesReopen) {
  ASSERT_TRUE(store_->CreateAccount(MakeAccount(1)).ok());
  EXPECT_EQ(*store_->SchemaVersion(), 3);
  Reopen();
  EXPECT_EQ(*store_->SchemaVersion(), 3);
  Reopen();
  EXPECT_TRUE(store_->GetAccount(MakeAccount(1).account_id).ok());
}

TEST_F(SqliteAccountStoreTest, RefusesADatabaseFromTheFuture) {
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(db, "INSERT INTO account_migrations(version, applied_at_ms) VALUES (99, 0)",
                   nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);
  auto opened = OpenSqliteAccountStore(db_path_);
  EXPECT_EQ(opened.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(SqliteAccountStoreTest, DatabaseFileIsOwnerOnly) {
  struct stat st {};
  ASSERT_EQ(::stat(db_path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(SqliteAccountStoreTest, SharesTheFileWithTheMetadataStore) {
  auto meta = OpenSqliteMetadataStore(db_path_);
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  PatientRecord p;
  p.patient_id = Id(77);
  p.wrapped_root_key = Filled(1, 72);
  p.created_at_ms = 1;
  ASSERT_TRUE((*meta)->CreatePatient(p).ok());
  AccountRow a = MakeAccount(1);
  a.patient_id = p.patient_id;
  ASSERT_TRUE(store_->CreateAccount(a).ok());
  EXPECT_EQ(*(*meta)->SchemaVersion(), 3);
  EXPECT_EQ(*store_->SchemaVersion(), 3);

  // Reopen both, in the other order: each keeps its own migrations.
  meta->reset();
  store_.reset();
  auto meta2 = OpenSqliteMetadataStore(db_path_);
  ASSERT_TRUE(meta2.ok()) << meta2.status().ToString();
  Reopen();
  EXPECT_TRUE((*meta2)->GetPatient(p.patient_id).ok());
  EXPECT_EQ(store_->GetAccount(a.account_id)->patient_id, p.patient_id);
}

TEST_F(SqliteAccountStoreTest, NoPlaintextUsernameOrDisplayNameInTheFiles) {
  // What the account service stores: a keyed blind index and a sealed profile.
  const std::string canary_user = "canary.user.x7q@example.org";
  const std::string canary_name = "Canary Displayname Zq7";
  const SecretBytes key = crypto::RandomKey();
  AccountRow a = MakeAccount(1);
  a.username_index = crypto::BlindIndex(key, "username", canary_user);
  auto sealed = crypto::AeadSeal(key, AsBytes(canary_user + "\n" + canary_name), {});
  ASSERT_TRUE(sealed.ok());
  a.sealed_profile = *sealed;
  ASSERT_TRUE(store_->CreateAccount(a).ok());
  ASSERT_TRUE(store_->CreateInstitution({Id(1), "St Mary", 1}).ok());
  // While open (WAL in use) and after close (checkpointed into the main file).
  EXPECT_TRUE(fs::exists(dir_.path() / "metadata.db-wal"));
  EXPECT_TRUE(FilesContaining(dir_.path(), canary_user).empty());
  EXPECT_TRUE(FilesContaining(dir_.path(), canary_name).empty());
  EXPECT_FALSE(FilesContaining(dir_.path(), "St Mary").empty());  // the scan does work
  store_.reset();
  EXPECT_TRUE(FilesContaining(dir_.path(), canary_user).empty());
  EXPECT_TRUE(FilesContaining(dir_.path(), canary_name).empty());
}

}  // namespace
}  // namespace medvault::store
