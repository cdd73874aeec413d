#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "crypto/crypto.h"
#include "record/record.h"
#include "store/store.h"
#include "test_util.h"

namespace medvault::record {
namespace {

using medvault::testing::FilesContaining;
using medvault::testing::TempDir;

class RecordServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::InitCrypto().ok());
    ASSERT_TRUE(crypto::CreateKeyFile(dir_.path() / "platform.kek").ok());
    Open();
  }

  void Open(RecordServiceOptions options = {}) {
    service_.reset();
    objects_.reset();
    metadata_.reset();
    keys_.reset();
    auto keys = crypto::OpenFileKeyProvider(dir_.path() / "platform.kek");
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    keys_ = std::move(*keys);
    auto md = store::OpenSqliteMetadataStore(dir_.path() / "metadata.db");
    ASSERT_TRUE(md.ok()) << md.status().ToString();
    metadata_ = std::move(*md);
    auto obj = store::OpenFileObjectStore(dir_.path());
    ASSERT_TRUE(obj.ok()) << obj.status().ToString();
    objects_ = std::move(*obj);
    auto svc = CreateRecordService(keys_.get(), metadata_.get(), objects_.get(), options);
    ASSERT_TRUE(svc.ok()) << svc.status().ToString();
    service_ = std::move(*svc);
  }

  std::string NewPatient(std::string family = "Fictive", std::string identifier = "MRN-1") {
    Demographics d{"Ada", std::move(family), "1956-03-14", "female", std::move(identifier)};
    auto p = service_->CreatePatient(d, "tester");
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? p->patient_id : "";
  }

  static SegmentWrite Json(const nlohmann::json& j) {
    SegmentWrite w;
    w.kind = ContentKind::kJson;
    w.content = ToBytes(j.dump());
    return w;
  }

  static nlohmann::json Bp(int sys, int dia) {
    return {
        {"systolic", sys}, {"diastolic", dia}, {"unit", "mmHg"}, {"time", "2026-11-20T07:30:00Z"}};
  }

  TempDir dir_;
  std::unique_ptr<crypto::KeyProvider> keys_;
  std::unique_ptr<store::MetadataStore> metadata_;
  std::unique_ptr<store::ObjectStore> objects_;
  std::unique_ptr<RecordService> service_;
};

TEST_F(RecordServiceTest, PatientDemographicsRoundTripAndSearch) {
  const std::string id = NewPatient("O'Brien-Zoë", "MRN-77");
  auto p = service_->GetPatient(id);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(p->demographics.has_value());
  EXPECT_EQ(p->demographics->family_name, "O'Brien-Zoë");
  EXPECT_EQ(p->demographics->identifier, "MRN-77");
  EXPECT_FALSE(p->erased);

  NewPatient("Other", "MRN-78");
  auto by_name = service_->FindPatients("  o'brien-ZOË ", "");
  ASSERT_TRUE(by_name.ok());
  // ASCII case folding only: the non-ASCII letter must match exactly.
  EXPECT_TRUE(by_name->empty());
  by_name = service_->FindPatients("o'brien-Zoë", "");
  ASSERT_TRUE(by_name.ok());
  ASSERT_EQ(by_name->size(), 1u);
  EXPECT_EQ((*by_name)[0].patient_id, id);
  auto by_id = service_->FindPatients("", "MRN-77");
  ASSERT_TRUE(by_id.ok());
  ASSERT_EQ(by_id->size(), 1u);
  auto both_mismatch = service_->FindPatients("Other", "MRN-77");
  ASSERT_TRUE(both_mismatch.ok());
  EXPECT_TRUE(both_mismatch->empty());
  EXPECT_EQ(service_->FindPatients("", "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->GetPatient("0123456789abcdef0123456789abcdef").status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(service_->GetPatient("../etc").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(RecordServiceTest, DemographicsValidation) {
  Demographics good{"Ada", "Fictive", "1956-03-14", "female", ""};
  EXPECT_TRUE(ValidateDemographics(good).ok());
  auto with = [&](auto mutate) {
    Demographics d = good;
    mutate(d);
    return ValidateDemographics(d).code();
  };
  EXPECT_EQ(with([](Demographics& d) { d.given_name = ""; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](Demographics& d) { d.family_name = "a\nb"; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](Demographics& d) { d.family_name = "\xff"; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](Demographics& d) { d.birth_date = "1956-02-30"; }),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](Demographics& d) { d.birth_date = "2999-01-01"; }),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](Demographics& d) { d.sex = "F"; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](Demographics& d) { d.identifier = "has space"; }),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](Demographics& d) { d.identifier = std::string(65, 'x'); }),
            StatusCode::kInvalidArgument);
}

TEST_F(RecordServiceTest, VersionsAreImmutableAndAllReadable) {
  const std::string id = NewPatient();
  for (int i = 0; i < 3; ++i) {
    auto v = service_->WriteSegment(id, "physical-signs/blood-pressure", Json(Bp(120 + i, 80)),
                                    "tester");
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(v->version, static_cast<uint64_t>(i + 1));
    EXPECT_EQ(v->category, "physical-signs");
    EXPECT_EQ(v->sensitivity, 1);
  }
  for (int i = 0; i < 3; ++i) {
    auto c = service_->ReadSegment(id, "physical-signs/blood-pressure", i + 1);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    auto j = nlohmann::json::parse(c->content.begin(), c->content.end());
    EXPECT_EQ(j["systolic"], 120 + i);
  }
  auto latest = service_->ReadSegment(id, "physical-signs/blood-pressure", 0);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->info.version, 3u);
  auto versions = service_->ListVersions(id, "physical-signs/blood-pressure");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), 3u);
  EXPECT_EQ((*versions)[0].version, 1u);
  EXPECT_EQ(service_->ReadSegment(id, "physical-signs/blood-pressure", 4).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(service_->ReadSegment(id, "physical-signs/heart-rate", 0).status().code(),
            StatusCode::kNotFound);
}

TEST_F(RecordServiceTest, TreeListsLatestPerPathWithPrefix) {
  const std::string id = NewPatient();
  SegmentWrite note;
  note.kind = ContentKind::kText;
  note.content = ToBytes("ECG shows sinus rhythm");
  ASSERT_TRUE(service_->WriteSegment(id, "internal-medicine/cardiology/ecg", note, "t").ok());
  ASSERT_TRUE(service_->WriteSegment(id, "internal-medicine/cardiology/ecg", note, "t").ok());
  ASSERT_TRUE(service_->WriteSegment(id, "internal-medicine/endocrinology", note, "t").ok());
  ASSERT_TRUE(service_->WriteSegment(id, "life-record/diet", note, "t").ok());
  auto all = service_->ListTree(id, "");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  auto cardio = service_->ListTree(id, "internal-medicine/cardiology");
  ASSERT_TRUE(cardio.ok());
  ASSERT_EQ(cardio->size(), 1u);
  EXPECT_EQ((*cardio)[0].latest_version, 2u);
  EXPECT_EQ((*cardio)[0].version_count, 2u);
  EXPECT_EQ((*cardio)[0].category, "clinical");
  EXPECT_EQ(service_->ListTree(id, "../x").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(RecordServiceTest, RejectsBadContentAndPaths) {
  const std::string id = NewPatient();
  auto code = [&](std::string_view path, const SegmentWrite& w) {
    return service_->WriteSegment(id, path, w, "t").status().code();
  };
  EXPECT_EQ(code("physical-signs/blood-pressure", Json({{"systolic", 120}})),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code("physical-signs/blood-pressure", Json(Bp(999, 80))), StatusCode::kInvalidArgument);
  auto extra = Bp(120, 80);
  extra["mood"] = "happy";
  EXPECT_EQ(code("physical-signs/blood-pressure", Json(extra)), StatusCode::kInvalidArgument);
  auto bad_unit = Bp(120, 80);
  bad_unit["unit"] = "kPa";
  EXPECT_EQ(code("physical-signs/blood-pressure", Json(bad_unit)), StatusCode::kInvalidArgument);
  auto bad_time = Bp(120, 80);
  bad_time["time"] = "yesterday";
  EXPECT_EQ(code("physical-signs/blood-pressure", Json(bad_time)), StatusCode::kInvalidArgument);
  EXPECT_EQ(code("physical-signs/notes", Json(nlohmann::json::array())),
            StatusCode::kInvalidArgument);
  SegmentWrite bad_text;
  bad_text.kind = ContentKind::kText;
  bad_text.content = {0xc3, 0x28};
  EXPECT_EQ(code("other/note", bad_text), StatusCode::kInvalidArgument);
  for (const char* path :
       {"", "/other", "other/", "other//x", "other/../personal-information", "other/.", "Other",
        "unknown-top/x", "other/a b", "other/%2e%2e", "other/-x", "a/b/c/d/e/f/g/h/i"}) {
    EXPECT_EQ(code(path, Json({{"a", 1}})), StatusCode::kInvalidArgument) << path;
  }
  EXPECT_EQ(
      service_->WriteSegment("0123456789abcdef0123456789abcdef", "other/x", Json({{"a", 1}}), "t")
          .status()
          .code(),
      StatusCode::kNotFound);
  // Nothing was written by any of the failures.
  auto tree = service_->ListTree(id, "");
  ASSERT_TRUE(tree.ok());
  EXPECT_TRUE(tree->empty());
}

TEST_F(RecordServiceTest, AttachmentsStreamAndRespectTheLimit) {
  RecordServiceOptions options;
  options.max_attachment_bytes = 3 * 1024 * 1024;
  Open(options);
  const std::string id = NewPatient();
  Bytes data(3 * 1024 * 1024);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<uint8_t>((i * 131) ^ (i >> 9));
  }
  auto w = service_->BeginAttachment(id, "radiology/chest-x-ray", "image/png", std::nullopt, "t");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  size_t off = 0, step = 1;
  while (off < data.size()) {
    const size_t n = std::min(step, data.size() - off);
    ASSERT_TRUE((*w)->Append(ByteView(data.data() + off, n)).ok());
    off += n;
    step = step * 3 + 7;
  }
  auto info = (*w)->Commit();
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, data.size());
  EXPECT_EQ(info->media_type, "image/png");
  auto back = service_->ReadSegment(id, "radiology/chest-x-ray", 0);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->content == data);

  // One byte over the limit: refused, nothing visible, and the path is free.
  auto big = service_->BeginAttachment(id, "radiology/mri", "application/pdf", 3, "t");
  ASSERT_TRUE(big.ok());
  ASSERT_TRUE((*big)->Append(data).ok());
  EXPECT_EQ((*big)->Append(Bytes(1)).code(), StatusCode::kResourceExhausted);
  EXPECT_FALSE((*big)->Commit().ok());
  big->reset();
  EXPECT_EQ(service_->ReadSegment(id, "radiology/mri", 0).status().code(), StatusCode::kNotFound);
  auto again = service_->BeginAttachment(id, "radiology/mri", "application/pdf", 3, "t");
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE((*again)->Append(AsBytes("%PDF-1.4")).ok());
  auto v = (*again)->Commit();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->version, 1u);
  EXPECT_EQ(v->sensitivity, 3);
  EXPECT_EQ(
      service_->BeginAttachment(id, "radiology/x", "nonsense", std::nullopt, "t").status().code(),
      StatusCode::kInvalidArgument);
}

// Points version 1's metadata at version 2's ciphertext (with the right
// hash): the hash check passes, the AEAD binding to (patient, path, version,
// object id) must still refuse it.
TEST_F(RecordServiceTest, CiphertextMovedToAnotherPlaceFailsToOpen) {
  const std::string id = NewPatient();
  ASSERT_TRUE(
      service_->WriteSegment(id, "physical-signs/blood-pressure", Json(Bp(120, 80)), "t").ok());
  ASSERT_TRUE(
      service_->WriteSegment(id, "physical-signs/blood-pressure", Json(Bp(150, 95)), "t").ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_.path() / "metadata.db").c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  const char* sql =
      "UPDATE segment_versions SET object_key = 'x' || object_key WHERE version = 1;"
      "UPDATE segment_versions SET (object_key, content_sha256, stored_size) = "
      "(SELECT substr(b.object_key, 1), b.content_sha256, b.stored_size FROM segment_versions b "
      "WHERE b.version = 2) WHERE version = 1;";
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA foreign_keys=ON;", nullptr, nullptr, &err), SQLITE_OK);
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    // object_key is UNIQUE: point v2 elsewhere first, then v1 at v2's object.
    sqlite3_free(err);
    err = nullptr;
    rc = sqlite3_exec(db,
                      "CREATE TEMP TABLE v2 AS SELECT object_key, content_sha256, stored_size "
                      "FROM segment_versions WHERE version = 2;"
                      "UPDATE segment_versions SET object_key = object_key || 'moved' WHERE "
                      "version = 2;"
                      "UPDATE segment_versions SET object_key = (SELECT object_key FROM v2), "
                      "content_sha256 = (SELECT content_sha256 FROM v2), stored_size = (SELECT "
                      "stored_size FROM v2) WHERE version = 1;",
                      nullptr, nullptr, &err);
  }
  ASSERT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_close(db);
  auto r = service_->ReadSegment(id, "physical-signs/blood-pressure", 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
}

TEST_F(RecordServiceTest, FlippedCiphertextByteIsDataLoss) {
  RecordServiceOptions objects_only;
  objects_only.inline_storage_max_bytes = 0;
  Open(objects_only);
  const std::string id = NewPatient();
  auto v = service_->WriteSegment(
      id, "body-measures/weight",
      Json({{"value", 70}, {"unit", "kg"}, {"time", "2026-11-20T07:00:00Z"}}), "t");
  ASSERT_TRUE(v.ok());
  bool flipped = false;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir_.path() / "objects")) {
    if (e.is_regular_file()) {
      std::string bytes = medvault::testing::ReadFileBytes(e.path());
      bytes[bytes.size() / 2] ^= 0x01;
      medvault::testing::WriteFileBytes(e.path(), bytes);
      flipped = true;
    }
  }
  ASSERT_TRUE(flipped);
  EXPECT_EQ(service_->ReadSegment(id, "body-measures/weight", 0).status().code(),
            StatusCode::kDataLoss);
}

// Small versions live in their metadata row (docs/architecture.md, "Small
// versions inline"): no object file, the same hash check and decryption.
TEST_F(RecordServiceTest, SmallVersionsAreInlineLargeOnesObjects) {
  const std::string id = NewPatient();
  auto small = service_->WriteSegment(id, "physical-signs/blood-pressure", Json(Bp(120, 80)), "t");
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  SegmentWrite big;
  big.kind = ContentKind::kText;
  big.content = ToBytes(std::string(200000, 'n'));
  auto large = service_->WriteSegment(id, "patient-narrative/long", big, "t");
  ASSERT_TRUE(large.ok()) << large.status().ToString();

  auto small_row = metadata_->GetSegmentVersion(id, "physical-signs/blood-pressure", 1);
  ASSERT_TRUE(small_row.ok());
  EXPECT_EQ(small_row->storage, store::ContentStorage::kInline);
  EXPECT_EQ(small_row->inline_content.size(), small_row->stored_size);
  EXPECT_EQ(crypto::Sha256(small_row->inline_content), small_row->content_sha256);
  EXPECT_EQ(objects_->Open(small_row->object_key, small_row->content_sha256).status().code(),
            StatusCode::kNotFound);
  auto large_row = metadata_->GetSegmentVersion(id, "patient-narrative/long", 1);
  ASSERT_TRUE(large_row.ok());
  EXPECT_EQ(large_row->storage, store::ContentStorage::kObject);
  EXPECT_TRUE(large_row->inline_content.empty());
  EXPECT_TRUE(objects_->Open(large_row->object_key, large_row->content_sha256).ok());
  auto keys = metadata_->ListObjectKeys(id);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(*keys, std::vector<std::string>{large_row->object_key});

  auto read_small = service_->ReadSegment(id, "physical-signs/blood-pressure", 0);
  ASSERT_TRUE(read_small.ok()) << read_small.status().ToString();
  EXPECT_EQ(nlohmann::json::parse(AsString(read_small->content)), Bp(120, 80));
  auto read_large = service_->ReadSegment(id, "patient-narrative/long", 0);
  ASSERT_TRUE(read_large.ok());
  EXPECT_EQ(read_large->content, big.content);

  // The plaintext is nowhere in the database file.
  metadata_.reset();
  const std::string db = medvault::testing::ReadFileBytes(dir_.path() / "metadata.db");
  EXPECT_EQ(db.find("systolic"), std::string::npos);
  EXPECT_EQ(db.find("nnnnnnnn"), std::string::npos);
}

// A changed byte of an inline ciphertext, or one swapped from another
// version, fails the hash check like a tampered object.
TEST_F(RecordServiceTest, TamperedInlineCiphertextIsDataLoss) {
  const std::string id = NewPatient();
  ASSERT_TRUE(
      service_
          ->WriteSegment(id, "physical-signs/pulse",
                         Json({{"value", 61}, {"unit", "/min"}, {"time", "2026-11-20T07:00:00Z"}}),
                         "t")
          .ok());
  ASSERT_TRUE(
      service_
          ->WriteSegment(id, "physical-signs/pulse",
                         Json({{"value", 62}, {"unit", "/min"}, {"time", "2026-11-21T07:00:00Z"}}),
                         "t")
          .ok());
  metadata_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_.path() / "metadata.db").c_str(), &db), SQLITE_OK);
  // Version 2 gets version 1's ciphertext (a rollback), then a flipped byte.
  ASSERT_EQ(
      sqlite3_exec(db,
                   "UPDATE segment_versions SET inline_content = (SELECT inline_content "
                   "FROM segment_versions WHERE version = 1 AND path = 'physical-signs/pulse') "
                   "WHERE version = 2 AND path = 'physical-signs/pulse'",
                   nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);
  Open();
  EXPECT_EQ(service_->ReadSegment(id, "physical-signs/pulse", 2).status().code(),
            StatusCode::kDataLoss);
  EXPECT_TRUE(service_->ReadSegment(id, "physical-signs/pulse", 1).ok());
  metadata_.reset();
  ASSERT_EQ(sqlite3_open((dir_.path() / "metadata.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "UPDATE segment_versions SET inline_content = "
                         "zeroblob(length(inline_content)) "
                         "WHERE version = 1 AND path = 'physical-signs/pulse'",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  Open();
  EXPECT_EQ(service_->ReadSegment(id, "physical-signs/pulse", 1).status().code(),
            StatusCode::kDataLoss);
}

TEST_F(RecordServiceTest, ErasureDestroysKeysAndMakesDataUnreadable) {
  const std::string id = NewPatient("Canaryfamily", "MRN-ERASE");
  const std::string other = NewPatient("Keeper", "MRN-KEEP");
  ASSERT_TRUE(
      service_->WriteSegment(id, "physical-signs/blood-pressure", Json(Bp(130, 85)), "t").ok());
  ASSERT_TRUE(
      service_->WriteSegment(other, "physical-signs/blood-pressure", Json(Bp(110, 70)), "t").ok());
  auto rec = metadata_->GetPatient(id);
  ASSERT_TRUE(rec.ok());
  const Bytes wrapped = rec->wrapped_root_key;
  const Bytes sealed_demo = rec->sealed_demographics;
  ASSERT_FALSE(wrapped.empty());
  auto version = metadata_->GetSegmentVersion(id, "physical-signs/blood-pressure", 1);
  ASSERT_TRUE(version.ok());
  ASSERT_EQ(version->storage, store::ContentStorage::kInline);
  const Bytes ciphertext = version->inline_content;
  // A larger inline version spills into SQLite overflow pages: those go too.
  SegmentWrite long_note;
  long_note.kind = ContentKind::kText;
  long_note.content = ToBytes(std::string(60000, 'q'));
  ASSERT_TRUE(service_->WriteSegment(id, "patient-narrative/long", long_note, "t").ok());
  auto long_version = metadata_->GetSegmentVersion(id, "patient-narrative/long", 1);
  ASSERT_TRUE(long_version.ok());
  ASSERT_EQ(long_version->storage, store::ContentStorage::kInline);
  const Bytes long_ciphertext = long_version->inline_content;

  ASSERT_TRUE(service_->ErasePatient(id).ok());
  EXPECT_EQ(service_->ErasePatient(id).code(), StatusCode::kNotFound);

  auto p = service_->GetPatient(id);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->erased);
  EXPECT_FALSE(p->demographics.has_value());
  EXPECT_EQ(service_->ReadSegment(id, "physical-signs/blood-pressure", 0).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(service_->WriteSegment(id, "other/x", Json({{"a", 1}}), "t").status().code(),
            StatusCode::kNotFound);
  auto found = service_->FindPatients("Canaryfamily", "");
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->empty());
  // The wrapped root key and the sealed demographics are gone from every
  // byte on disk (database, WAL, objects), so no key can ever open the data.
  EXPECT_TRUE(FilesContaining(dir_.path(), std::string(AsString(wrapped))).empty());
  EXPECT_TRUE(FilesContaining(dir_.path(), std::string(AsString(sealed_demo))).empty());
  // So are the inline ciphertexts.
  EXPECT_TRUE(FilesContaining(dir_.path(), std::string(AsString(ciphertext))).empty());
  // Any 64-byte window of the long one (overflow pages are not contiguous).
  for (size_t at = 0; at + 64 <= long_ciphertext.size(); at += 4096) {
    EXPECT_TRUE(FilesContaining(dir_.path(),
                                std::string(AsString(ByteView(long_ciphertext).subspan(at, 64))))
                    .empty())
        << "ciphertext bytes at " << at << " survived the erasure";
  }
  // The other patient is intact.
  EXPECT_TRUE(service_->ReadSegment(other, "physical-signs/blood-pressure", 0).ok());
  // And survives a restart.
  Open();
  EXPECT_TRUE(service_->ReadSegment(other, "physical-signs/blood-pressure", 0).ok());
  EXPECT_TRUE(service_->GetPatient(id)->erased);
}

TEST_F(RecordServiceTest, AnotherPlatformKeyCannotOpen) {
  const std::string id = NewPatient();
  ASSERT_TRUE(service_->WriteSegment(id, "other/x", Json({{"a", 1}}), "t").ok());
  std::filesystem::remove(dir_.path() / "platform.kek");
  ASSERT_TRUE(crypto::CreateKeyFile(dir_.path() / "platform.kek").ok());
  Open();
  EXPECT_EQ(service_->ReadSegment(id, "other/x", 0).status().code(), StatusCode::kDataLoss);
}

TEST_F(RecordServiceTest, ConcurrentWritersGetDistinctVersions) {
  const std::string id = NewPatient();
  constexpr int kThreads = 4, kPerThread = 10;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (!service_
                 ->WriteSegment(id, "physical-signs/blood-pressure", Json(Bp(100 + t, 70 + i)), "t")
                 .ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(failures.load(), 0);
  auto versions = service_->ListVersions(id, "physical-signs/blood-pressure");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), static_cast<size_t>(kThreads * kPerThread));
  for (size_t i = 0; i < versions->size(); ++i) {
    EXPECT_EQ((*versions)[i].version, i + 1);
    EXPECT_TRUE(service_->ReadSegment(id, "physical-signs/blood-pressure", i + 1).ok());
  }
}

}  // namespace
}  // namespace medvault::record

namespace medvault::record {
namespace {

class RecordBatchTest : public RecordServiceTest {
 protected:
  // Object files on disk (everything but the database, the key and temp files).
  size_t ObjectFiles() {
    size_t n = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_.path())) {
      const std::string name = e.path().filename().string();
      if (e.is_regular_file() && name.rfind("metadata.db", 0) != 0 && name != "platform.kek" &&
          e.path().string().find("/.tmp") == std::string::npos) {
        ++n;
      }
    }
    return n;
  }

  static RecordBatch NewPatientBatch() {
    RecordBatch b;
    b.new_patient = Demographics{"Imported", "Person", "1970-01-02", "male", "MRN-IMP"};
    b.segments.push_back({"health-status/problems/d1", Json({{"entries", {1, 2}}}), std::nullopt});
    b.segments.push_back({"physical-signs/blood-pressure", Json(Bp(131, 84)), std::nullopt});
    SegmentWrite original;
    original.kind = ContentKind::kBinary;
    original.media_type = "application/xml";
    original.content = ToBytes("<ClinicalDocument/>");
    b.segments.push_back({"source-documents/d1/original", original, std::nullopt});
    return b;
  }
};

TEST_F(RecordBatchTest, CreatesThePatientAndEverySegmentTogether) {
  auto r = service_->WriteBatch(NewPatientBatch(), "importer");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->patient_created);
  ASSERT_EQ(r->versions.size(), 3u);
  auto p = service_->GetPatient(r->patient_id);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->demographics->family_name, "Person");
  auto original = service_->ReadSegment(r->patient_id, "source-documents/d1/original", 0);
  ASSERT_TRUE(original.ok()) << original.status().ToString();
  EXPECT_EQ(AsString(original->content), "<ClinicalDocument/>");
  EXPECT_EQ(original->info.category, "source-documents");
  EXPECT_EQ(original->info.media_type, "application/xml");
  auto bp = service_->ReadSegment(r->patient_id, "physical-signs/blood-pressure", 0);
  ASSERT_TRUE(bp.ok());
  EXPECT_EQ(nlohmann::json::parse(AsString(bp->content))["systolic"], 131);

  // A second batch on the same patient makes version 2 of the paths it names.
  RecordBatch again;
  again.patient_id = r->patient_id;
  again.segments.push_back({"health-status/problems/d1", Json({{"entries", {3}}}), std::nullopt});
  auto r2 = service_->WriteBatch(again, "importer");
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_FALSE(r2->patient_created);
  EXPECT_EQ(r2->versions[0].version, 2u);
}

TEST_F(RecordBatchTest, OneRefusedSegmentLeavesNothingBehind) {
  const size_t before = ObjectFiles();
  RecordBatch b = NewPatientBatch();
  b.segments.push_back({"physical-signs/heart-rate", Json({{"bpm", "fast"}}), std::nullopt});
  b.segments.push_back({"health-status/allergies/d1", Json(nlohmann::json::array()), std::nullopt});
  auto r = service_->WriteBatch(b, "importer");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("physical-signs/heart-rate"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(ObjectFiles(), before);
  auto count = metadata_->CountPatients();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 0);
}

TEST_F(RecordBatchTest, AFailureAtCommitRemovesTheObjectsAlreadyWritten) {
  // The ledger encoder refuses the third event: the objects of the first
  // segments exist by then and must be removed, the patient never appears.
  int events = 0;
  RecordServiceOptions options;
  options.audit = [&events](const RecordEvent&) -> Result<Bytes> {
    if (++events == 3) {
      return Status::Unavailable("ledger refused");
    }
    return ToBytes("{}");
  };
  Open(options);
  const size_t before = ObjectFiles();
  auto r = service_->WriteBatch(NewPatientBatch(), "importer");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(ObjectFiles(), before);
  auto count = metadata_->CountPatients();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 0);
}

// expected_latest: a compare-and-set on the path's latest version. A batch
// whose expectation no longer holds writes nothing at all; one that holds
// is written.
TEST_F(RecordBatchTest, ExpectedLatestVersionGuardsTheWholeBatch) {
  auto created = service_->WriteBatch(NewPatientBatch(), "importer");
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const int64_t before = *metadata_->CountSegmentVersions();
  RecordBatch stale;
  stale.patient_id = created->patient_id;
  stale.segments.push_back({"life-record/a", Json({{"mood", "ok"}}), std::nullopt});
  stale.segments.push_back({"health-status/problems/d1", Json({{"entries", {9}}}), 0});
  auto refused = service_->WriteBatch(stale, "importer");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition)
      << refused.status().ToString();
  EXPECT_EQ(*metadata_->CountSegmentVersions(), before);
  stale.segments[1].expected_latest = 1;
  auto written = service_->WriteBatch(stale, "importer");
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(written->versions[1].version, 2u);
}

TEST_F(RecordBatchTest, RefusesMalformedBatches) {
  RecordBatch both = NewPatientBatch();
  both.patient_id = NewPatient();
  EXPECT_EQ(service_->WriteBatch(both, "importer").status().code(), StatusCode::kInvalidArgument);
  RecordBatch neither;
  neither.segments.push_back({"other/x", Json({{"a", 1}}), std::nullopt});
  EXPECT_EQ(service_->WriteBatch(neither, "importer").status().code(),
            StatusCode::kInvalidArgument);
  RecordBatch twice = NewPatientBatch();
  twice.segments.push_back(twice.segments.front());
  auto r = service_->WriteBatch(twice, "importer");
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("twice"), std::string::npos);
  RecordBatch bad_path = NewPatientBatch();
  bad_path.segments.push_back({"../etc/passwd", Json({{"a", 1}}), std::nullopt});
  EXPECT_EQ(service_->WriteBatch(bad_path, "importer").status().code(),
            StatusCode::kInvalidArgument);
  RecordBatch unknown;
  unknown.patient_id = std::string(32, 'a');
  unknown.segments.push_back({"other/x", Json({{"a", 1}}), std::nullopt});
  EXPECT_EQ(service_->WriteBatch(unknown, "importer").status().code(), StatusCode::kNotFound);
  RecordBatch bad_demo = NewPatientBatch();
  bad_demo.new_patient->birth_date = "1970-02-30";
  EXPECT_EQ(service_->WriteBatch(bad_demo, "importer").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(*metadata_->CountPatients(), 1);  // only NewPatient() above
}

}  // namespace
}  // namespace medvault::record
