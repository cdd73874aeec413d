// SqliteMetadataStore on a real database in a temporary directory: what is
// particular to SQLite (migrations, WAL, secure_delete, options). The
// backend-neutral contract is in metadata_store_conformance_test.cc.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <string>

#include "metadata_test_util.h"
#include "store/store.h"
#include "test_util.h"

namespace medvault::store {
namespace {

namespace fs = std::filesystem;
using medvault::testing::TempDir;

using store_testing::MakePatient;
using store_testing::MakeSegment;
using store_testing::PatientId;

class SqliteMetadataStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_path_ = dir_.path() / "meta.db";
    Reopen();
  }
  void Reopen() {
    store_.reset();
    auto opened = OpenSqliteMetadataStore(db_path_);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }
  void MustCreate(const PatientRecord& p) {
    Status st = store_->CreatePatient(p);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  void MustInsert(const SegmentVersionRecord& r) {
    Status st = store_->InsertSegmentVersion(r);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  TempDir dir_;
  fs::path db_path_;
  std::unique_ptr<MetadataStore> store_;
};

TEST_F(SqliteMetadataStoreTest, MigrationsCreateSchemaAndAreIdempotent) {
  auto v = store_->SchemaVersion();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, 3);
  MustCreate(MakePatient(1));
  Reopen();
  Reopen();
  v = store_->SchemaVersion();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 3);
  store_.reset();

  // One row per migration, and the database is in WAL mode.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM schema_migrations", -1, &stmt, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), 3);
  sqlite3_finalize(stmt);
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);

  // Owner-only database file.
  EXPECT_EQ(fs::status(db_path_).permissions() & (fs::perms::group_all | fs::perms::others_all),
            fs::perms::none);
}

TEST_F(SqliteMetadataStoreTest, RefusesNewerSchema) {
  store_.reset();
  const fs::path path = dir_.path() / "future.db";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE schema_migrations(version INTEGER PRIMARY KEY, "
                         "applied_at_ms INTEGER NOT NULL);"
                         "INSERT INTO schema_migrations VALUES (1, 0), (99, 0);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto opened = OpenSqliteMetadataStore(path);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(opened.status().message().find("schema version 99 is newer"), std::string::npos)
      << opened.status().message();
}

TEST_F(SqliteMetadataStoreTest, RefusesGarbageFile) {
  store_.reset();
  const fs::path path = dir_.path() / "garbage.db";
  medvault::testing::WriteFileBytes(path, std::string(8192, 'g'));
  auto opened = OpenSqliteMetadataStore(path);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::kDataLoss) << opened.status().ToString();
}

TEST_F(SqliteMetadataStoreTest, ErasureRemovesKeyBytesFromAllFiles) {
  // Distinctive 32-byte values that cannot occur by chance.
  const std::string key_marker = "WRAPPED-ROOT-KEY-MARKER-0123456!";
  const std::string demo_marker = "SEALED-DEMOGRAPHICS-MARKER-9876!";
  const std::string name_marker = "NAME-INDEX-MARKER-ABCDEFGHIJKLM!";
  ASSERT_EQ(key_marker.size(), 32u);
  for (int i = 1; i <= 20; ++i) {
    MustCreate(MakePatient(i));
  }
  PatientRecord victim = MakePatient(21);
  victim.wrapped_root_key = ToBytes(key_marker);
  victim.sealed_demographics = ToBytes(demo_marker);
  victim.name_index = ToBytes(name_marker);
  MustCreate(victim);
  MustInsert(MakeSegment(victim.patient_id, "notes", 1));
  for (int i = 22; i <= 40; ++i) {
    MustCreate(MakePatient(i));
  }

  const std::vector<fs::path> files = {db_path_, fs::path(db_path_.string() + "-wal"),
                                       fs::path(db_path_.string() + "-shm")};
  auto contains = [&](const std::string& needle) {
    std::string where;
    for (const fs::path& f : files) {
      // In a child: this process has the database open (issue 13).
      if (fs::exists(f) &&
          medvault::testing::ReadFileBytesInChild(f).find(needle) != std::string::npos) {
        where += f.filename().string() + " ";
      }
    }
    return where;
  };
  // Sanity: the marker is on disk before erasure (in the WAL at least).
  EXPECT_NE(contains(key_marker), "");

  ASSERT_TRUE(store_->ErasePatient(victim.patient_id, 1700000009999).ok());
  EXPECT_EQ(contains(key_marker), "");
  EXPECT_EQ(contains(demo_marker), "");
  EXPECT_EQ(contains(name_marker), "");

  // What callers see of an erasure is in the conformance suite; here, the
  // retried erasure repeats the checkpoint and finds nothing left either.
  EXPECT_TRUE(store_->ErasePatient(victim.patient_id, 1800000000000).ok());
  EXPECT_EQ(contains(key_marker), "");

  // Still gone after closing (which checkpoints again) and reopening.
  Reopen();
  EXPECT_EQ(contains(key_marker), "");
  EXPECT_TRUE(store_->GetPatient(PatientId(1)).ok());
}

TEST_F(SqliteMetadataStoreTest, NormalSynchronousOptionWorks) {
  store_.reset();
  SqliteOptions options;
  options.synchronous_full = false;
  options.busy_timeout_ms = 100;
  auto opened = OpenSqliteMetadataStore(db_path_, options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_TRUE((*opened)->CreatePatient(MakePatient(1)).ok());
}

}  // namespace
}  // namespace medvault::store

namespace medvault::store {
namespace {

using store_testing::Filled;

// ---------------------------------------------------------------------------
// Key tree versions (migration 2).

// A database of schema 1 (as shipped before key tree versions) gains the
// tables on open and keeps its data.
TEST_F(SqliteMetadataStoreTest, UpgradesASchemaOneDatabase) {
  MustCreate(MakePatient(1));
  MustInsert(MakeSegment(PatientId(1), "labs/blood", 1));
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "DROP TABLE object_key_slots; DROP TABLE node_key_versions; "
                         "ALTER TABLE segment_versions DROP COLUMN inline_content; "
                         "ALTER TABLE segment_versions DROP COLUMN storage; "
                         "DELETE FROM schema_migrations WHERE version >= 2;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  Reopen();
  EXPECT_EQ(*store_->SchemaVersion(), 3);
  auto upgraded = store_->GetSegmentVersion(PatientId(1), "labs/blood", 1);
  ASSERT_TRUE(upgraded.ok()) << upgraded.status().ToString();
  EXPECT_EQ(upgraded->storage, ContentStorage::kObject);  // rows of schema 1 are objects
  EXPECT_TRUE(upgraded->inline_content.empty());
  auto versions = store_->ListNodeKeyVersions(PatientId(1));
  ASSERT_TRUE(versions.ok()) << versions.status().ToString();
  EXPECT_TRUE(versions->empty());
}

TEST_F(SqliteMetadataStoreTest, RotateNodeKeySetsVersionAndSlots) {
  MustCreate(MakePatient(1));
  MustCreate(MakePatient(2));
  const auto a1 = MakeSegment(PatientId(1), "labs/blood", 1);
  const auto a2 = MakeSegment(PatientId(1), "labs/blood", 2);
  const auto other = MakeSegment(PatientId(2), "labs/blood", 1);
  MustInsert(a1);
  MustInsert(a2);
  MustInsert(other);
  EXPECT_FALSE(store_->GetObjectKeySlots(a1.object_key)->has_value());

  const std::vector<ObjectKeySlots> slots = {{a1.object_key, Filled(1, 80)},
                                             {a2.object_key, Filled(2, 80)}};
  ASSERT_TRUE(store_->RotateNodeKey(PatientId(1), "labs", 2, 5, slots).ok());
  ASSERT_TRUE(store_->RotateNodeKey(PatientId(1), "labs/blood", 2, 6, {}).ok());
  auto versions = store_->ListNodeKeyVersions(PatientId(1));
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), 2u);
  EXPECT_EQ((*versions)[0].path, "labs");
  EXPECT_EQ((*versions)[0].version, 2u);
  EXPECT_EQ((*versions)[1].path, "labs/blood");
  EXPECT_TRUE(store_->ListNodeKeyVersions(PatientId(2))->empty());
  EXPECT_EQ(store_->GetObjectKeySlots(a1.object_key)->value(), Filled(1, 80));
  EXPECT_EQ(store_->GetObjectKeySlots(a2.object_key)->value(), Filled(2, 80));
  EXPECT_FALSE(store_->GetObjectKeySlots(other.object_key)->has_value());

  // A second rotation of the same node replaces the slots.
  const std::vector<ObjectKeySlots> again = {{a1.object_key, Filled(3, 80)}};
  ASSERT_TRUE(store_->RotateNodeKey(PatientId(1), "labs", 3, 7, again).ok());
  EXPECT_EQ(store_->GetObjectKeySlots(a1.object_key)->value(), Filled(3, 80));
  Reopen();
  EXPECT_EQ(store_->ListNodeKeyVersions(PatientId(1))->at(0).version, 3u);
}

// Every refusal leaves the version and every slot as they were.
TEST_F(SqliteMetadataStoreTest, RotateNodeKeyIsAllOrNothing) {
  MustCreate(MakePatient(1));
  MustCreate(MakePatient(2));
  const auto mine = MakeSegment(PatientId(1), "labs/blood", 1);
  const auto theirs = MakeSegment(PatientId(2), "labs/blood", 1);
  MustInsert(mine);
  MustInsert(theirs);
  auto unchanged = [&] {
    EXPECT_TRUE(store_->ListNodeKeyVersions(PatientId(1))->empty());
    EXPECT_FALSE(store_->GetObjectKeySlots(mine.object_key)->has_value());
    EXPECT_FALSE(store_->GetObjectKeySlots(theirs.object_key)->has_value());
  };
  const std::vector<ObjectKeySlots> with_foreign = {{mine.object_key, Filled(1, 80)},
                                                    {theirs.object_key, Filled(2, 80)}};
  EXPECT_EQ(store_->RotateNodeKey(PatientId(1), "labs", 2, 1, with_foreign).code(),
            StatusCode::kNotFound);
  unchanged();
  const std::vector<ObjectKeySlots> unknown = {{mine.object_key, Filled(1, 80)},
                                               {"no/such-object", Filled(2, 80)}};
  EXPECT_EQ(store_->RotateNodeKey(PatientId(1), "labs", 2, 1, unknown).code(),
            StatusCode::kNotFound);
  unchanged();
  const std::vector<ObjectKeySlots> ok = {{mine.object_key, Filled(1, 80)}};
  EXPECT_EQ(store_->RotateNodeKey(PatientId(1), "labs", 3, 1, ok).code(),
            StatusCode::kFailedPrecondition);
  unchanged();
  EXPECT_EQ(store_->RotateNodeKey(PatientId(1), "labs", 1, 1, ok).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->RotateNodeKey(PatientId(9), "labs", 2, 1, {}).code(), StatusCode::kNotFound);
  // Ledger entries without a ledger are refused, not dropped.
  const Bytes entry = Filled(9, 10);
  EXPECT_EQ(store_->RotateNodeKey(PatientId(1), "labs", 2, 1, ok, std::span<const Bytes>(&entry, 1))
                .code(),
            StatusCode::kFailedPrecondition);
  unchanged();
  ASSERT_TRUE(store_->ErasePatient(PatientId(1), 5).ok());
  EXPECT_EQ(store_->RotateNodeKey(PatientId(1), "labs", 2, 1, ok).code(), StatusCode::kNotFound);
  unchanged();
}

// A failing ledger append inside the transaction undoes the rotation.
TEST_F(SqliteMetadataStoreTest, RotateNodeKeyRollsBackWhenTheLedgerFails) {
  store_.reset();
  int calls = 0;
  class FailingSink final : public AuditSink {
   public:
    explicit FailingSink(int* calls) : calls_(calls) {}
    Status AppendEncodedInTransaction(Transaction&, AuditEntries entries) override {
      ++*calls_;
      EXPECT_EQ(entries.size(), 1u);
      return Status::Unavailable("ledger append failed");
    }

   private:
    int* calls_;
  };
  FailingSink sink(&calls);
  SqliteOptions options;
  options.audit_sink = &sink;
  auto opened = OpenSqliteMetadataStore(db_path_, options);
  ASSERT_TRUE(opened.ok());
  store_ = std::move(opened).value();
  MustCreate(MakePatient(1));
  const auto seg = MakeSegment(PatientId(1), "labs/blood", 1);
  MustInsert(seg);
  const std::vector<ObjectKeySlots> slots = {{seg.object_key, Filled(1, 80)}};
  const Bytes entry = Filled(9, 10);
  EXPECT_EQ(
      store_->RotateNodeKey(PatientId(1), "labs", 2, 1, slots, std::span<const Bytes>(&entry, 1))
          .code(),
      StatusCode::kUnavailable);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(store_->ListNodeKeyVersions(PatientId(1))->empty());
  EXPECT_FALSE(store_->GetObjectKeySlots(seg.object_key)->has_value());
}

}  // namespace
}  // namespace medvault::store
