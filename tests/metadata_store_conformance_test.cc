// The MetadataStore contract (store/store.h), run against every backend. A
// new backend (PostgreSQL) adds one MetadataStoreBackend to kBackends below;
// what only one backend can show (SQLite migrations, WAL, secure_delete)
// stays in its own test (sqlite_metadata_store_test.cc).
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <limits>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "metadata_test_util.h"
#include "store/store.h"
#include "test_util.h"

namespace medvault::store {
namespace {

namespace fs = std::filesystem;
using store_testing::Filled;
using store_testing::MakePatient;
using store_testing::MakeSegment;
using store_testing::PatientId;

// Receives the audit entries of a write inside that write; its failure must
// undo the write.
using AuditFn = std::function<Status(AuditEntries)>;

struct MetadataStoreBackend {
  std::string name;
  // Opens the store kept under `dir` (a fresh temporary directory per test);
  // opening the same `dir` again is a reopen. `audit` empty: no ledger is
  // attached.
  std::function<Result<std::unique_ptr<MetadataStore>>(const fs::path& dir, AuditFn audit)> open;
  // Whether a reopen sees what was committed before.
  bool persistent = false;
};

// GoogleTest prints a parameter by its name (test names stay stable).
void PrintTo(const MetadataStoreBackend& backend, std::ostream* os) { *os << backend.name; }

// The store's audit sink as a function (the SQLite store takes a
// store::AuditSink). Kept for the whole test program: a store may outlive the
// factory call that made it.
class FunctionSink final : public store::AuditSink {
 public:
  explicit FunctionSink(AuditFn fn) : fn_(std::move(fn)) {}
  Status AppendEncodedInTransaction(Transaction&, AuditEntries entries) override {
    return fn_(entries);
  }

 private:
  AuditFn fn_;
};

store::AuditSink* KeepSink(AuditFn fn) {
  static std::mutex mu;
  static std::vector<std::unique_ptr<FunctionSink>> sinks;
  std::lock_guard<std::mutex> lock(mu);
  sinks.push_back(std::make_unique<FunctionSink>(std::move(fn)));
  return sinks.back().get();
}

const MetadataStoreBackend kBackends[] = {
    {"sqlite",
     [](const fs::path& dir, AuditFn audit) {
       SqliteOptions options;
       if (audit) {
         options.audit_sink = KeepSink(audit);
       }
       return OpenSqliteMetadataStore(dir / "metadata.db", options);
     },
     true},
    {"memory",
     [](const fs::path&, AuditFn audit) -> Result<std::unique_ptr<MetadataStore>> {
       MemoryMetadataOptions options;
       options.audit_hook = std::move(audit);
       return NewMemoryMetadataStore(std::move(options));
     },
     false},
};

class MetadataStoreConformance : public ::testing::TestWithParam<MetadataStoreBackend> {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen(AuditFn audit = {}) {
    store_.reset();
    auto opened = GetParam().open(dir_.path(), std::move(audit));
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
  std::vector<std::string> Paths(const std::vector<SegmentSummary>& summaries) {
    std::vector<std::string> paths;
    for (const auto& s : summaries) {
      paths.push_back(s.path);
    }
    return paths;
  }

  medvault::testing::TempDir dir_;
  std::unique_ptr<MetadataStore> store_;
};

TEST_P(MetadataStoreConformance, CreateAndGetPatient) {
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
  PatientRecord no_id = MakePatient(9);
  no_id.patient_id.clear();
  EXPECT_EQ(store_->CreatePatient(no_id).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*store_->CountPatients(), 1);
  EXPECT_TRUE(store_->SchemaVersion().ok());
}

TEST_P(MetadataStoreConformance, VersionSequenceRules) {
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
  // A first version must be 1.
  EXPECT_EQ(store_->InsertSegmentVersion(MakeSegment(pid, "fresh", 2)).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->InsertSegmentVersion(MakeSegment(PatientId(2), "labs", 1)).code(),
            StatusCode::kNotFound);
  // A reused object key is refused.
  SegmentVersionRecord dup = MakeSegment(pid, "labs", 2);
  dup.object_key = MakeSegment(pid, "labs", 1).object_key;
  EXPECT_EQ(store_->InsertSegmentVersion(dup).code(), StatusCode::kAlreadyExists);
  // Invalid records.
  auto invalid = [&](auto mutate) {
    SegmentVersionRecord bad = MakeSegment(pid, "labs", 2);
    mutate(bad);
    return store_->InsertSegmentVersion(bad).code();
  };
  EXPECT_EQ(invalid([](auto& r) { r.content_sha256.resize(31); }), StatusCode::kInvalidArgument);
  EXPECT_EQ(invalid([](auto& r) { r.sensitivity = 5; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(invalid([](auto& r) { r.sensitivity = -1; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(invalid([](auto& r) { r.version = 0; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(invalid([](auto& r) { r.kind = static_cast<ContentKind>(9); }),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(invalid([](auto& r) { r.path.clear(); }), StatusCode::kInvalidArgument);
  EXPECT_EQ(invalid([](auto& r) { r.object_key.clear(); }), StatusCode::kInvalidArgument);
  EXPECT_EQ(invalid([](auto& r) { r.patient_id.clear(); }), StatusCode::kInvalidArgument);
  EXPECT_EQ(invalid([](auto& r) { r.stored_size = std::numeric_limits<uint64_t>::max(); }),
            StatusCode::kInvalidArgument);

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
  EXPECT_EQ(store_->GetSegmentVersion(PatientId(2), "labs", 1).status().code(),
            StatusCode::kNotFound);
  EXPECT_FALSE(
      store_->GetSegmentVersion(pid, "vitals/bp", std::numeric_limits<uint64_t>::max()).ok());
}

// The rows a read needs, in one call: the patient (erased or not), the
// version with its inline content, the rotated key nodes.
TEST_P(MetadataStoreConformance, GetVersionForReadReturnsTheThreeRows) {
  MustCreate(MakePatient(1));
  const std::string pid = PatientId(1);
  SegmentVersionRecord in = MakeSegment(pid, "vitals/bp", 1);
  in.storage = ContentStorage::kInline;
  in.inline_content = Bytes(in.stored_size, 0x11);
  MustInsert(in);
  MustInsert(MakeSegment(pid, "vitals/bp", 2));
  ASSERT_TRUE(store_->RotateNodeKey(pid, "vitals", 2, 5, {}).ok());

  auto got = store_->GetVersionForRead(pid, "vitals/bp", 1);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->patient.patient_id, pid);
  EXPECT_EQ(got->patient.wrapped_root_key, MakePatient(1).wrapped_root_key);
  EXPECT_EQ(got->version.version, 1u);
  EXPECT_EQ(got->version.inline_content, in.inline_content);
  ASSERT_EQ(got->rotated.size(), 1u);
  EXPECT_EQ(got->rotated[0].path, "vitals");
  EXPECT_EQ(got->rotated[0].version, 2u);
  auto latest = store_->GetVersionForRead(pid, "vitals/bp", 0);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->version.version, 2u);

  EXPECT_EQ(store_->GetVersionForRead(pid, "vitals/none", 0).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->GetVersionForRead(PatientId(9), "vitals/bp", 1).status().code(),
            StatusCode::kNotFound);
  ASSERT_TRUE(store_->ErasePatient(pid, 7).ok());
  auto erased = store_->GetVersionForRead(pid, "vitals/bp", 1);
  ASSERT_TRUE(erased.ok()) << "the caller tells erased from absent";
  EXPECT_TRUE(erased->patient.erased_at_ms.has_value());
  EXPECT_TRUE(erased->patient.wrapped_root_key.empty());
}

// Small versions inline: the row carries its ciphertext. Single reads
// return it, listings say only where it lives, erasure removes it, and the
// rules on content and size hold in every backend.
TEST_P(MetadataStoreConformance, InlineContentRules) {
  MustCreate(MakePatient(1));
  const std::string pid = PatientId(1);
  SegmentVersionRecord in = MakeSegment(pid, "vitals/bp", 1);
  in.storage = ContentStorage::kInline;
  in.inline_content = Bytes(in.stored_size, 0x5a);
  MustInsert(in);
  MustInsert(MakeSegment(pid, "vitals/bp", 2));  // an object version after it

  auto got = store_->GetSegmentVersion(pid, "vitals/bp", 1);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->storage, ContentStorage::kInline);
  EXPECT_EQ(got->inline_content, in.inline_content);
  auto latest = store_->GetSegmentVersion(pid, "vitals/bp", 0);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->storage, ContentStorage::kObject);
  EXPECT_TRUE(latest->inline_content.empty());
  auto listed = store_->ListSegmentVersions(pid, "vitals/bp");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].storage, ContentStorage::kInline);
  EXPECT_TRUE((*listed)[0].inline_content.empty());
  size_t seen = 0;
  ASSERT_TRUE(store_
                  ->ForEachSegmentVersion([&](const SegmentVersionRecord& r) {
                    EXPECT_TRUE(r.inline_content.empty());
                    seen += r.storage == ContentStorage::kInline ? 1 : 0;
                    return Status::Ok();
                  })
                  .ok());
  EXPECT_EQ(seen, 1u);
  auto keys = store_->ListObjectKeys(pid);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(*keys, std::vector<std::string>{MakeSegment(pid, "vitals/bp", 2).object_key});

  // Refused: inline without content, with content of another size, over the
  // limit; an object version with content.
  SegmentVersionRecord bad = MakeSegment(pid, "vitals/bp", 3);
  bad.storage = ContentStorage::kInline;
  EXPECT_EQ(store_->InsertSegmentVersion(bad).code(), StatusCode::kInvalidArgument);
  bad.inline_content = Bytes(bad.stored_size + 1, 1);
  EXPECT_EQ(store_->InsertSegmentVersion(bad).code(), StatusCode::kInvalidArgument);
  bad.inline_content = Bytes(kMaxInlineBytes + 1, 1);
  bad.stored_size = bad.inline_content.size();
  EXPECT_EQ(store_->InsertSegmentVersion(bad).code(), StatusCode::kInvalidArgument);
  SegmentVersionRecord object_with_content = MakeSegment(pid, "vitals/bp", 3);
  object_with_content.inline_content = Bytes(object_with_content.stored_size, 1);
  EXPECT_EQ(store_->InsertSegmentVersion(object_with_content).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*store_->LatestVersion(pid, "vitals/bp"), 2u);

  ASSERT_TRUE(store_->ErasePatient(pid, 99).ok());
  auto erased = store_->GetSegmentVersion(pid, "vitals/bp", 1);
  ASSERT_TRUE(erased.ok());
  EXPECT_EQ(erased->storage, ContentStorage::kInline);
  EXPECT_TRUE(erased->inline_content.empty()) << "erasure removes the ciphertext";
}

TEST_P(MetadataStoreConformance, ListSegmentsLatestPerPathWithPrefix) {
  const std::string pid = PatientId(1);
  MustCreate(MakePatient(1));
  MustCreate(MakePatient(2));
  for (const char* path : {"a", "a/b", "a/b/c", "ab", "b", "a/c"}) {
    MustInsert(MakeSegment(pid, path, 1));
  }
  MustInsert(MakeSegment(pid, "a/b", 2));
  SegmentVersionRecord v3 = MakeSegment(pid, "a/b", 3);
  v3.sensitivity = 4;  // the summary follows the latest version
  v3.kind = ContentKind::kBinary;
  v3.media_type = "application/pdf";
  MustInsert(v3);
  MustInsert(MakeSegment(PatientId(2), "a/x", 1));  // other patient

  auto all = store_->ListSegments(pid, "");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(Paths(*all), (std::vector<std::string>{"a", "a/b", "a/b/c", "a/c", "ab", "b"}));
  const SegmentSummary& ab = (*all)[1];
  EXPECT_EQ(ab.latest_version, 3u);
  EXPECT_EQ(ab.version_count, 3u);
  EXPECT_EQ(ab.updated_at_ms, v3.created_at_ms);
  EXPECT_EQ(ab.category, "a");
  EXPECT_EQ(ab.sensitivity, 4);
  EXPECT_EQ(ab.kind, ContentKind::kBinary);
  EXPECT_EQ(ab.media_type, "application/pdf");

  auto sub = store_->ListSegments(pid, "a");
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(Paths(*sub), (std::vector<std::string>{"a", "a/b", "a/b/c", "a/c"}));
  sub = store_->ListSegments(pid, "a/b");
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(Paths(*sub), (std::vector<std::string>{"a/b", "a/b/c"}));
  EXPECT_TRUE(store_->ListSegments(pid, "zz")->empty());
  EXPECT_TRUE(store_->ListSegments(PatientId(9), "")->empty());

  auto keys = store_->ListObjectKeys(pid);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->size(), 8u);
  EXPECT_EQ(keys->front(), MakeSegment(pid, "a", 1).object_key);  // by path, then version
  EXPECT_TRUE(store_->ListObjectKeys(PatientId(9))->empty());
}

TEST_P(MetadataStoreConformance, ListSegmentVersionsOldestFirst) {
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

TEST_P(MetadataStoreConformance, ForEachSegmentVersionInOrderStopsAtFirstError) {
  MustCreate(MakePatient(2));
  MustCreate(MakePatient(1));
  MustInsert(MakeSegment(PatientId(2), "b", 1));
  MustInsert(MakeSegment(PatientId(1), "z", 1));
  MustInsert(MakeSegment(PatientId(1), "a", 1));
  MustInsert(MakeSegment(PatientId(1), "a", 2));
  std::vector<std::string> seen;
  ASSERT_TRUE(store_
                  ->ForEachSegmentVersion([&](const SegmentVersionRecord& r) {
                    seen.push_back(r.patient_id.substr(31) + ":" + r.path + ":" +
                                   std::to_string(r.version));
                    return Status::Ok();
                  })
                  .ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"1:a:1", "1:a:2", "1:z:1", "2:b:1"}));
  int calls = 0;
  Status st = store_->ForEachSegmentVersion([&](const SegmentVersionRecord&) {
    return ++calls == 2 ? Status::DataLoss("stop here") : Status::Ok();
  });
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_EQ(calls, 2);
}

TEST_P(MetadataStoreConformance, FindByBlindIndex) {
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
  EXPECT_TRUE(store_->FindPatientsByNameIndex(Filled(1, 31))->empty());  // a prefix is no match
  EXPECT_TRUE(store_->FindPatientsByIdentifierIndex(Bytes())->empty());
  ASSERT_TRUE(store_->ErasePatient(PatientId(4), 1).ok());
  EXPECT_EQ(*store_->FindPatientsByNameIndex(Filled(1)), std::vector<std::string>{PatientId(1)});
  EXPECT_TRUE(store_->FindPatientsByIdentifierIndex(Filled(204))->empty());
}

TEST_P(MetadataStoreConformance, ListPatientsPagesInCreationOrder) {
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

// Crypto-shredding as callers see it (that the bytes leave the files is the
// SQLite test's business).
TEST_P(MetadataStoreConformance, ErasureClearsKeyMaterialAndClosesThePatient) {
  const PatientRecord victim = MakePatient(21);
  MustCreate(victim);
  MustCreate(MakePatient(22));
  MustInsert(MakeSegment(victim.patient_id, "notes", 1));
  ASSERT_TRUE(store_->ErasePatient(victim.patient_id, 1700000009999).ok());

  auto got = store_->GetPatient(victim.patient_id);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->wrapped_root_key.empty());
  EXPECT_TRUE(got->sealed_demographics.empty());
  EXPECT_TRUE(got->name_index.empty());
  EXPECT_TRUE(got->identifier_index.empty());
  EXPECT_EQ(got->created_at_ms, victim.created_at_ms);
  ASSERT_TRUE(got->erased_at_ms.has_value());
  EXPECT_EQ(*got->erased_at_ms, 1700000009999);
  // Segment rows stay so the service can delete the objects.
  EXPECT_EQ(store_->ListObjectKeys(victim.patient_id)->size(), 1u);
  EXPECT_EQ(*store_->CountPatients(), 1);

  // Closed to writes, for single inserts and batches alike.
  EXPECT_EQ(store_->InsertSegmentVersion(MakeSegment(victim.patient_id, "notes", 2)).code(),
            StatusCode::kNotFound);
  const std::vector<SegmentVersionRecord> rows = {MakeSegment(victim.patient_id, "other", 1)};
  EXPECT_EQ(store_->InsertBatch(nullptr, rows).code(), StatusCode::kNotFound);
  // Its id stays taken.
  EXPECT_EQ(store_->CreatePatient(victim).code(), StatusCode::kAlreadyExists);
  // Idempotent, and the first erasure time is kept.
  EXPECT_TRUE(store_->ErasePatient(victim.patient_id, 1800000000000).ok());
  EXPECT_EQ(*store_->GetPatient(victim.patient_id)->erased_at_ms, 1700000009999);
  EXPECT_EQ(store_->ErasePatient(PatientId(999), 1).code(), StatusCode::kNotFound);
  // The other patient is untouched.
  EXPECT_EQ(store_->GetPatient(PatientId(22))->wrapped_root_key, MakePatient(22).wrapped_root_key);
}

TEST_P(MetadataStoreConformance, ConcurrentInsertsAndReads) {
  const std::string pid = PatientId(1);
  MustCreate(MakePatient(1));
  constexpr int kThreads = 4;
  constexpr int kVersions = 25;
  std::atomic<bool> writing{true};
  std::atomic<int> reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      do {
        auto segs = store_->ListSegments(pid, "");
        EXPECT_TRUE(segs.ok()) << segs.status().ToString();
        auto p = store_->GetPatient(pid);
        EXPECT_TRUE(p.ok()) << p.status().ToString();
        reads.fetch_add(1);
      } while (writing.load());
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

// N threads racing for the same versions of one path, with other rows of
// their own in between: exactly one wins each version, losers get
// AlreadyExists or FailedPrecondition, and a refused row never takes another
// caller's row down with it (the SQLite store batches them in one commit).
TEST_P(MetadataStoreConformance, RacingWritersWinEachVersionExactlyOnce) {
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
        auto seg = MakeSegment(pid, "shared", *latest + 1);
        seg.object_key = "obj-" + std::to_string(t) + "-" + std::to_string(attempt++);
        Status st = store_->InsertSegmentVersion(seg);
        if (st.ok()) {
          wins.fetch_add(1);
        } else if (st.code() != StatusCode::kAlreadyExists &&
                   st.code() != StatusCode::kFailedPrecondition) {
          other_errors.fetch_add(1);
        }
        // Each thread also writes its own path, which must always land.
        const std::string own = "own-" + std::to_string(t);
        Status mine = store_->InsertSegmentVersion(
            MakeSegment(pid, own, *store_->LatestVersion(pid, own) + 1));
        EXPECT_TRUE(mine.ok()) << mine.ToString();
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

TEST_P(MetadataStoreConformance, DataSurvivesReopen) {
  if (!GetParam().persistent) {
    GTEST_SKIP() << GetParam().name << " keeps nothing across a reopen";
  }
  const std::string pid = PatientId(3);
  MustCreate(MakePatient(3));
  MustInsert(MakeSegment(pid, "labs/cbc", 1));
  Reopen();
  auto p = store_->GetPatient(pid);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->wrapped_root_key, MakePatient(3).wrapped_root_key);
  EXPECT_EQ(*store_->LatestVersion(pid, "labs/cbc"), 1u);
  EXPECT_EQ(store_->InsertSegmentVersion(MakeSegment(pid, "labs/cbc", 1)).code(),
            StatusCode::kAlreadyExists);
  MustInsert(MakeSegment(pid, "labs/cbc", 2));
}

TEST_P(MetadataStoreConformance, BatchWithNewPatientCommitsTogether) {
  const PatientRecord p = MakePatient(3);
  const std::vector<SegmentVersionRecord> rows = {MakeSegment(p.patient_id, "other/a", 1),
                                                  MakeSegment(p.patient_id, "other/b", 1)};
  ASSERT_TRUE(store_->InsertBatch(&p, rows).ok());
  EXPECT_EQ(*store_->CountPatients(), 1);
  EXPECT_EQ(*store_->CountSegmentVersions(), 2);
  // Existing patient, several versions of one path in one batch.
  const std::vector<SegmentVersionRecord> next = {MakeSegment(p.patient_id, "other/a", 2),
                                                  MakeSegment(p.patient_id, "other/a", 3)};
  ASSERT_TRUE(store_->InsertBatch(nullptr, next).ok());
  EXPECT_EQ(*store_->LatestVersion(p.patient_id, "other/a"), 3u);
  // The patient of a batch cannot be created twice.
  const std::vector<SegmentVersionRecord> again = {MakeSegment(p.patient_id, "other/c", 1)};
  EXPECT_EQ(store_->InsertBatch(&p, again).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(*store_->LatestVersion(p.patient_id, "other/c"), 0u);
  // An empty batch with a new patient creates just the patient.
  const PatientRecord q = MakePatient(4);
  ASSERT_TRUE(store_->InsertBatch(&q, {}).ok());
  EXPECT_TRUE(store_->GetPatient(q.patient_id).ok());
}

TEST_P(MetadataStoreConformance, BatchIsAllOrNothing) {
  const PatientRecord p = MakePatient(4);
  // The second row skips a version: the patient and the first row vanish too.
  std::vector<SegmentVersionRecord> rows = {MakeSegment(p.patient_id, "other/a", 1),
                                            MakeSegment(p.patient_id, "other/b", 2)};
  Status st = store_->InsertBatch(&p, rows);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("other/b"), std::string::npos) << st.message();
  EXPECT_EQ(*store_->CountPatients(), 0);
  EXPECT_EQ(*store_->CountSegmentVersions(), 0);
  EXPECT_EQ(store_->GetPatient(p.patient_id).status().code(), StatusCode::kNotFound);
  // The same version twice, or one object key twice, in one batch.
  rows = {MakeSegment(p.patient_id, "other/a", 1), MakeSegment(p.patient_id, "other/a", 1)};
  EXPECT_EQ(store_->InsertBatch(&p, rows).code(), StatusCode::kAlreadyExists);
  rows = {MakeSegment(p.patient_id, "other/a", 1), MakeSegment(p.patient_id, "other/b", 1)};
  rows[1].object_key = rows[0].object_key;
  EXPECT_EQ(store_->InsertBatch(&p, rows).code(), StatusCode::kAlreadyExists);
  // An invalid row refuses the whole batch before anything is written.
  rows = {MakeSegment(p.patient_id, "other/a", 1), MakeSegment(p.patient_id, "other/b", 1)};
  rows[1].content_sha256.clear();
  EXPECT_EQ(store_->InsertBatch(&p, rows).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*store_->CountPatients(), 0);
  EXPECT_EQ(*store_->CountSegmentVersions(), 0);
  // A batch for an unknown patient.
  std::vector<SegmentVersionRecord> orphan = {MakeSegment(PatientId(5), "other/a", 1)};
  EXPECT_EQ(store_->InsertBatch(nullptr, orphan).code(), StatusCode::kNotFound);
  // Audit entries without a ledger are refused, never dropped (a batch that
  // would otherwise commit).
  const std::vector<Bytes> audit = {Bytes{1, 2, 3}};
  std::vector<SegmentVersionRecord> valid = {MakeSegment(p.patient_id, "other/a", 1)};
  Status st2 = store_->InsertBatch(&p, valid, audit);
  EXPECT_EQ(st2.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st2.message().find("ledger"), std::string::npos) << st2.message();
  EXPECT_EQ(store_->CreatePatient(MakePatient(6), audit).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(*store_->CountPatients(), 0);
  ASSERT_TRUE(store_->InsertBatch(&p, valid).ok());  // the same batch without entries commits
  EXPECT_EQ(store_->InsertSegmentVersion(MakeSegment(p.patient_id, "other/a", 2), audit).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->ErasePatient(p.patient_id, 1, audit).code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(store_->GetPatient(p.patient_id)->erased_at_ms.has_value());
}

// Ledger entries commit in the write's transaction: the sink sees them, and
// when it fails the write is undone (no action without its entry).
TEST_P(MetadataStoreConformance, AuditEntriesCommitWithTheWriteOrNeither) {
  std::vector<Bytes> received;
  bool fail = false;
  Reopen([&](AuditEntries entries) {
    if (fail) {
      return Status::IOError("ledger append failed");
    }
    received.insert(received.end(), entries.begin(), entries.end());
    return Status::Ok();
  });
  const std::vector<Bytes> entry = {Bytes{7, 7}};
  const PatientRecord p = MakePatient(1);
  ASSERT_TRUE(store_->CreatePatient(p, entry).ok());
  ASSERT_TRUE(store_->InsertSegmentVersion(MakeSegment(p.patient_id, "a", 1), entry).ok());
  const std::vector<SegmentVersionRecord> batch = {MakeSegment(p.patient_id, "b", 1)};
  ASSERT_TRUE(store_->InsertBatch(nullptr, batch, entry).ok());
  // Writes without entries do not call the sink.
  ASSERT_TRUE(store_->InsertSegmentVersion(MakeSegment(p.patient_id, "a", 2)).ok());
  EXPECT_EQ(received.size(), 3u);

  fail = true;
  EXPECT_EQ(store_->CreatePatient(MakePatient(2), entry).code(), StatusCode::kIOError);
  EXPECT_EQ(store_->GetPatient(PatientId(2)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->InsertSegmentVersion(MakeSegment(p.patient_id, "a", 3), entry).code(),
            StatusCode::kIOError);
  EXPECT_EQ(*store_->LatestVersion(p.patient_id, "a"), 2u);
  const PatientRecord q = MakePatient(3);
  const std::vector<SegmentVersionRecord> batch2 = {MakeSegment(q.patient_id, "c", 1)};
  EXPECT_EQ(store_->InsertBatch(&q, batch2, entry).code(), StatusCode::kIOError);
  EXPECT_EQ(store_->GetPatient(q.patient_id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ErasePatient(p.patient_id, 5, entry).code(), StatusCode::kIOError);
  auto still = store_->GetPatient(p.patient_id);
  ASSERT_TRUE(still.ok());
  EXPECT_FALSE(still->erased_at_ms.has_value());
  EXPECT_EQ(still->wrapped_root_key, p.wrapped_root_key);
  EXPECT_EQ(*store_->CountSegmentVersions(), 3);

  fail = false;
  ASSERT_TRUE(store_->ErasePatient(p.patient_id, 5, entry).ok());
  EXPECT_EQ(received.size(), 4u);
  EXPECT_TRUE(store_->GetPatient(p.patient_id)->erased_at_ms.has_value());
}

INSTANTIATE_TEST_SUITE_P(Backends, MetadataStoreConformance, ::testing::ValuesIn(kBackends),
                         [](const ::testing::TestParamInfo<MetadataStoreBackend>& param_info) {
                           return param_info.param.name;
                         });

}  // namespace
}  // namespace medvault::store
