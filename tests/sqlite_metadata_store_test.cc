// SqliteMetadataStore on a real database in a temporary directory.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"
#include "test_util.h"

namespace medvault::store {
namespace {

namespace fs = std::filesystem;
using medvault::testing::TempDir;

Bytes Filled(uint8_t seed, size_t n = 32) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) {
    b[i] = static_cast<uint8_t>(seed + i * 7);
  }
  return b;
}

std::string PatientId(int i) {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%032x", i);
  return buf;
}

PatientRecord MakePatient(int i) {
  PatientRecord p;
  p.patient_id = PatientId(i);
  p.wrapped_root_key = Filled(static_cast<uint8_t>(i), 72);
  p.sealed_demographics = Filled(static_cast<uint8_t>(i + 100), 90);
  p.name_index = Filled(static_cast<uint8_t>(i % 3));
  p.identifier_index = Filled(static_cast<uint8_t>(200 + i));
  p.created_at_ms = 1700000000000 + i;
  return p;
}

SegmentVersionRecord MakeSegment(const std::string& patient_id, const std::string& path,
                                 uint64_t version) {
  SegmentVersionRecord r;
  r.patient_id = patient_id;
  r.path = path;
  r.version = version;
  r.category = path.substr(0, path.find('/'));
  r.sensitivity = 2;
  r.kind = ContentKind::kJson;
  r.media_type = "application/json";
  std::string flat = path;
  std::replace(flat.begin(), flat.end(), '/', '.');
  r.object_key = patient_id + "/" + flat + "-v" + std::to_string(version);
  r.plaintext_size = 100 + version;
  r.stored_size = 200 + version;
  r.content_sha256 = Filled(static_cast<uint8_t>(version));
  r.author = "bootstrap-admin";
  r.created_at_ms = 1700000001000 + static_cast<int64_t>(version);
  return r;
}

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
  EXPECT_EQ(*v, 2);
  MustCreate(MakePatient(1));
  Reopen();
  Reopen();
  v = store_->SchemaVersion();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 2);
  store_.reset();

  // One row per migration, and the database is in WAL mode.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM schema_migrations", -1, &stmt, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), 2);
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

TEST_F(SqliteMetadataStoreTest, CreateAndGetPatient) {
  PatientRecord p = MakePatient(7);
  p.identifier_index.clear();  // optional
  MustCreate(p);
  auto got = store_->GetPatient(p.patient_id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->patient_id, p.patient_id);
  EXPECT_EQ(got->wrapped_root_key, p.wrapped_root_key);
  EXPECT_EQ(got->sealed_demographics, p.sealed_demographics);
  EXPECT_EQ(got->name_index, p.name_index);
  EXPECT_TRUE(got->identifier_index.empty());
  EXPECT_EQ(got->created_at_ms, p.created_at_ms);
  EXPECT_FALSE(got->erased_at_ms.has_value());

  EXPECT_EQ(store_->CreatePatient(p).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->GetPatient(PatientId(8)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*store_->CountPatients(), 1);
}

TEST_F(SqliteMetadataStoreTest, VersionSequenceRules) {
  const std::string pid = PatientId(1);
  MustCreate(MakePatient(1));
  MustInsert(MakeSegment(pid, "vitals/bp", 1));
  MustInsert(MakeSegment(pid, "vitals/bp", 2));
  EXPECT_EQ(store_->InsertSegmentVersion(MakeSegment(pid, "vitals/bp", 1)).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->InsertSegmentVersion(MakeSegment(pid, "vitals/bp", 2)).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->InsertSegmentVersion(MakeSegment(pid, "vitals/bp", 4)).code(),
            StatusCode::kFailedPrecondition);
  MustInsert(MakeSegment(pid, "labs", 1));
  EXPECT_EQ(store_->InsertSegmentVersion(MakeSegment(pid, "labs", 3)).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->InsertSegmentVersion(MakeSegment(PatientId(2), "labs", 1)).code(),
            StatusCode::kNotFound);
  // A reused object key is refused.
  SegmentVersionRecord dup = MakeSegment(pid, "labs", 2);
  dup.object_key = MakeSegment(pid, "labs", 1).object_key;
  EXPECT_EQ(store_->InsertSegmentVersion(dup).code(), StatusCode::kAlreadyExists);
  // Invalid records.
  SegmentVersionRecord bad = MakeSegment(pid, "labs", 2);
  bad.content_sha256.resize(31);
  EXPECT_EQ(store_->InsertSegmentVersion(bad).code(), StatusCode::kInvalidArgument);
  bad = MakeSegment(pid, "labs", 2);
  bad.sensitivity = 5;
  EXPECT_EQ(store_->InsertSegmentVersion(bad).code(), StatusCode::kInvalidArgument);
  bad = MakeSegment(pid, "labs", 0);
  EXPECT_EQ(store_->InsertSegmentVersion(bad).code(), StatusCode::kInvalidArgument);

  EXPECT_EQ(*store_->LatestVersion(pid, "vitals/bp"), 2u);
  EXPECT_EQ(*store_->LatestVersion(pid, "labs"), 1u);
  EXPECT_EQ(*store_->LatestVersion(pid, "nothing"), 0u);
  EXPECT_EQ(*store_->CountSegmentVersions(), 3);

  auto latest = store_->GetSegmentVersion(pid, "vitals/bp", 0);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->version, 2u);
  const SegmentVersionRecord want = MakeSegment(pid, "vitals/bp", 1);
  auto v1 = store_->GetSegmentVersion(pid, "vitals/bp", 1);
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1->patient_id, want.patient_id);
  EXPECT_EQ(v1->path, want.path);
  EXPECT_EQ(v1->version, 1u);
  EXPECT_EQ(v1->category, want.category);
  EXPECT_EQ(v1->sensitivity, want.sensitivity);
  EXPECT_EQ(v1->kind, want.kind);
  EXPECT_EQ(v1->media_type, want.media_type);
  EXPECT_EQ(v1->object_key, want.object_key);
  EXPECT_EQ(v1->plaintext_size, want.plaintext_size);
  EXPECT_EQ(v1->stored_size, want.stored_size);
  EXPECT_EQ(v1->content_sha256, want.content_sha256);
  EXPECT_EQ(v1->author, want.author);
  EXPECT_EQ(v1->created_at_ms, want.created_at_ms);
  EXPECT_EQ(store_->GetSegmentVersion(pid, "vitals/bp", 3).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetSegmentVersion(pid, "nothing", 0).status().code(), StatusCode::kNotFound);
}

TEST_F(SqliteMetadataStoreTest, ListSegmentsLatestPerPathWithPrefix) {
  const std::string pid = PatientId(1);
  MustCreate(MakePatient(1));
  MustCreate(MakePatient(2));
  for (const char* path : {"a", "a/b", "a/b/c", "ab", "b", "a/c"}) {
    MustInsert(MakeSegment(pid, path, 1));
  }
  MustInsert(MakeSegment(pid, "a/b", 2));
  MustInsert(MakeSegment(pid, "a/b", 3));
  MustInsert(MakeSegment(PatientId(2), "a/x", 1));  // other patient

  auto all = store_->ListSegments(pid, "");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::vector<std::string> paths;
  for (const auto& s : *all) {
    paths.push_back(s.path);
  }
  EXPECT_EQ(paths, (std::vector<std::string>{"a", "a/b", "a/b/c", "a/c", "ab", "b"}));
  const SegmentSummary& ab = (*all)[1];
  EXPECT_EQ(ab.latest_version, 3u);
  EXPECT_EQ(ab.version_count, 3u);
  EXPECT_EQ(ab.updated_at_ms, MakeSegment(pid, "a/b", 3).created_at_ms);
  EXPECT_EQ(ab.category, "a");
  EXPECT_EQ(ab.media_type, "application/json");

  auto sub = store_->ListSegments(pid, "a");
  ASSERT_TRUE(sub.ok());
  paths.clear();
  for (const auto& s : *sub) {
    paths.push_back(s.path);
  }
  EXPECT_EQ(paths, (std::vector<std::string>{"a", "a/b", "a/b/c", "a/c"}));

  sub = store_->ListSegments(pid, "a/b");
  ASSERT_TRUE(sub.ok());
  ASSERT_EQ(sub->size(), 2u);
  EXPECT_EQ((*sub)[0].path, "a/b");
  EXPECT_EQ((*sub)[1].path, "a/b/c");
  EXPECT_TRUE(store_->ListSegments(pid, "zz")->empty());
  EXPECT_TRUE(store_->ListSegments(PatientId(9), "")->empty());

  auto keys = store_->ListObjectKeys(pid);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->size(), 8u);
}

TEST_F(SqliteMetadataStoreTest, ListSegmentVersionsOldestFirst) {
  const std::string pid = PatientId(1);
  MustCreate(MakePatient(1));
  for (uint64_t v = 1; v <= 5; ++v) {
    MustInsert(MakeSegment(pid, "notes", v));
  }
  auto versions = store_->ListSegmentVersions(pid, "notes");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ((*versions)[i].version, i + 1);
  }
  EXPECT_TRUE(store_->ListSegmentVersions(pid, "other")->empty());
}

TEST_F(SqliteMetadataStoreTest, FindByBlindIndex) {
  for (int i = 1; i <= 6; ++i) {
    MustCreate(MakePatient(i));  // name_index = Filled(i % 3)
  }
  auto found = store_->FindPatientsByNameIndex(Filled(1));
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, (std::vector<std::string>{PatientId(1), PatientId(4)}));
  found = store_->FindPatientsByIdentifierIndex(Filled(205));
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, std::vector<std::string>{PatientId(5)});
  EXPECT_TRUE(store_->FindPatientsByNameIndex(Filled(77))->empty());
  EXPECT_TRUE(store_->FindPatientsByIdentifierIndex(Bytes())->empty());
  ASSERT_TRUE(store_->ErasePatient(PatientId(4), 1).ok());
  EXPECT_EQ(*store_->FindPatientsByNameIndex(Filled(1)), std::vector<std::string>{PatientId(1)});
}

TEST_F(SqliteMetadataStoreTest, ListPatientsPagesInCreationOrder) {
  // Ids in an order unlike creation order.
  const std::vector<int> order = {5, 3, 9, 1, 7, 2, 8};
  for (int i : order) {
    MustCreate(MakePatient(i));
  }
  ASSERT_TRUE(store_->ErasePatient(PatientId(7), 1).ok());
  std::vector<std::string> all;
  std::string cursor;
  while (true) {
    auto page = store_->ListPatients(cursor, 2);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    if (page->empty()) {
      break;
    }
    EXPECT_LE(page->size(), 2u);
    all.insert(all.end(), page->begin(), page->end());
    cursor = page->back();
  }
  std::vector<std::string> want;
  for (int i : order) {
    if (i != 7) {
      want.push_back(PatientId(i));
    }
  }
  EXPECT_EQ(all, want);
  // An erased patient still works as a cursor.
  auto after_erased = store_->ListPatients(PatientId(7), 10);
  ASSERT_TRUE(after_erased.ok());
  EXPECT_EQ(*after_erased, (std::vector<std::string>{PatientId(2), PatientId(8)}));
  EXPECT_TRUE(store_->ListPatients("", 0)->empty());
  EXPECT_EQ(store_->ListPatients(PatientId(99), 10).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*store_->CountPatients(), 6);
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

  auto got = store_->GetPatient(victim.patient_id);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->wrapped_root_key.empty());
  EXPECT_TRUE(got->sealed_demographics.empty());
  EXPECT_TRUE(got->name_index.empty());
  EXPECT_TRUE(got->identifier_index.empty());
  ASSERT_TRUE(got->erased_at_ms.has_value());
  EXPECT_EQ(*got->erased_at_ms, 1700000009999);
  // Segment rows stay so the service can delete the objects.
  EXPECT_EQ(store_->ListObjectKeys(victim.patient_id)->size(), 1u);

  EXPECT_EQ(store_->InsertSegmentVersion(MakeSegment(victim.patient_id, "notes", 2)).code(),
            StatusCode::kNotFound);
  // Idempotent, and the first erasure time is kept.
  EXPECT_TRUE(store_->ErasePatient(victim.patient_id, 1800000000000).ok());
  EXPECT_EQ(*store_->GetPatient(victim.patient_id)->erased_at_ms, 1700000009999);
  EXPECT_EQ(store_->ErasePatient(PatientId(999), 1).code(), StatusCode::kNotFound);

  // Still gone after closing (which checkpoints again) and reopening.
  Reopen();
  EXPECT_EQ(contains(key_marker), "");
  EXPECT_TRUE(store_->GetPatient(PatientId(1)).ok());
}

TEST_F(SqliteMetadataStoreTest, ConcurrentInsertsAndReads) {
  const std::string pid = PatientId(1);
  MustCreate(MakePatient(1));
  constexpr int kThreads = 4;
  constexpr int kVersions = 25;
  std::atomic<bool> writing{true};
  std::atomic<int> reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      while (writing.load()) {
        auto segs = store_->ListSegments(pid, "");
        EXPECT_TRUE(segs.ok()) << segs.status().ToString();
        auto p = store_->GetPatient(pid);
        EXPECT_TRUE(p.ok()) << p.status().ToString();
        reads.fetch_add(1);
      }
    });
  }
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      const std::string path = "thread-" + std::to_string(t);
      for (int v = 1; v <= kVersions; ++v) {
        Status st = store_->InsertSegmentVersion(MakeSegment(pid, path, v));
        EXPECT_TRUE(st.ok()) << st.ToString();
      }
    });
  }
  for (auto& w : writers) {
    w.join();
  }
  writing.store(false);
  for (auto& r : readers) {
    r.join();
  }
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(*store_->CountSegmentVersions(), kThreads * kVersions);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(*store_->LatestVersion(pid, "thread-" + std::to_string(t)),
              static_cast<uint64_t>(kVersions));
  }
}

// Group commit: writers racing for the same versions of one path, with the
// others' rows in the same transactions. Every version is won exactly once,
// losers get AlreadyExists or FailedPrecondition, and a refused row never
// takes the rows batched with it down.
TEST_F(SqliteMetadataStoreTest, GroupCommitKeepsPerRowOutcomes) {
  const std::string pid = PatientId(1);
  MustCreate(MakePatient(1));
  constexpr int kThreads = 8;
  constexpr uint64_t kTarget = 40;
  std::atomic<int> wins{0};
  std::atomic<int> other_errors{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      int attempt = 0;
      while (true) {
        auto latest = store_->LatestVersion(pid, "shared");
        ASSERT_TRUE(latest.ok());
        if (*latest >= kTarget) {
          break;
        }
        auto seg = MakeSegment(pid, "shared", static_cast<int>(*latest + 1));
        seg.object_key = "obj-" + std::to_string(t) + "-" + std::to_string(attempt++);
        Status st = store_->InsertSegmentVersion(seg);
        if (st.ok()) {
          wins.fetch_add(1);
        } else if (st.code() != StatusCode::kAlreadyExists &&
                   st.code() != StatusCode::kFailedPrecondition) {
          other_errors.fetch_add(1);
        }
        // Each thread also writes its own path, which must always land.
        Status own = store_->InsertSegmentVersion(MakeSegment(
            pid, "own-" + std::to_string(t),
            static_cast<int>(*store_->LatestVersion(pid, "own-" + std::to_string(t)) + 1)));
        EXPECT_TRUE(own.ok()) << own.ToString();
      }
    });
  }
  for (auto& w : writers) {
    w.join();
  }
  EXPECT_EQ(other_errors.load(), 0);
  EXPECT_EQ(wins.load(), static_cast<int>(kTarget));
  auto versions = store_->ListSegmentVersions(pid, "shared");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), kTarget);
  for (uint64_t i = 0; i < kTarget; ++i) {
    EXPECT_EQ((*versions)[i].version, i + 1);
  }
}

TEST_F(SqliteMetadataStoreTest, DataSurvivesReopen) {
  const std::string pid = PatientId(3);
  MustCreate(MakePatient(3));
  MustInsert(MakeSegment(pid, "labs/cbc", 1));
  Reopen();
  auto p = store_->GetPatient(pid);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->wrapped_root_key, MakePatient(3).wrapped_root_key);
  EXPECT_EQ(*store_->LatestVersion(pid, "labs/cbc"), 1u);
  MustInsert(MakeSegment(pid, "labs/cbc", 2));
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

TEST_F(SqliteMetadataStoreTest, BatchWithNewPatientCommitsTogether) {
  const PatientRecord p = MakePatient(3);
  std::vector<SegmentVersionRecord> rows = {MakeSegment(p.patient_id, "other/a", 1),
                                            MakeSegment(p.patient_id, "other/b", 1)};
  ASSERT_TRUE(store_->InsertBatch(&p, rows).ok());
  EXPECT_EQ(*store_->CountPatients(), 1);
  EXPECT_EQ(*store_->CountSegmentVersions(), 2);
  // Existing patient, next versions.
  std::vector<SegmentVersionRecord> next = {MakeSegment(p.patient_id, "other/a", 2)};
  ASSERT_TRUE(store_->InsertBatch(nullptr, next).ok());
  EXPECT_EQ(*store_->LatestVersion(p.patient_id, "other/a"), 2u);
}

TEST_F(SqliteMetadataStoreTest, BatchIsAllOrNothing) {
  const PatientRecord p = MakePatient(4);
  // The second row skips a version: the patient and the first row vanish too.
  std::vector<SegmentVersionRecord> rows = {MakeSegment(p.patient_id, "other/a", 1),
                                            MakeSegment(p.patient_id, "other/b", 2)};
  Status st = store_->InsertBatch(&p, rows);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("other/b"), std::string::npos) << st.message();
  EXPECT_EQ(*store_->CountPatients(), 0);
  EXPECT_EQ(*store_->CountSegmentVersions(), 0);
  // A batch for an unknown patient.
  std::vector<SegmentVersionRecord> orphan = {MakeSegment(PatientId(5), "other/a", 1)};
  EXPECT_EQ(store_->InsertBatch(nullptr, orphan).code(), StatusCode::kNotFound);
  // Audit entries without a hook are refused, never dropped (a batch that
  // would otherwise commit).
  const Bytes entry = {1, 2, 3};
  std::vector<Bytes> audit = {entry};
  std::vector<SegmentVersionRecord> valid = {MakeSegment(p.patient_id, "other/a", 1)};
  Status st2 = store_->InsertBatch(&p, valid, audit);
  EXPECT_EQ(st2.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st2.message().find("ledger"), std::string::npos) << st2.message();
  EXPECT_EQ(*store_->CountPatients(), 0);
  ASSERT_TRUE(store_->InsertBatch(&p, valid).ok());  // the same batch without entries commits
}

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
                         "DELETE FROM schema_migrations WHERE version = 2;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  Reopen();
  EXPECT_EQ(*store_->SchemaVersion(), 2);
  EXPECT_TRUE(store_->GetSegmentVersion(PatientId(1), "labs/blood", 1).ok());
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
  SqliteOptions options;
  int calls = 0;
  options.audit_hook = [&calls](Connection&, AuditEntries entries) {
    ++calls;
    EXPECT_EQ(entries.size(), 1u);
    return Status::Unavailable("ledger append failed");
  };
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
