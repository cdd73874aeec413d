// The record service over fault-injecting stores (store/fault_injection.h):
// a write whose object commit or metadata insert fails leaves nothing
// visible, no object behind it where the service can tell, and the next
// write succeeds; a torn object the store acknowledged is caught on read.
// Run over the production backends (file + SQLite) and the memory ones.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "crypto/crypto.h"
#include "record/record.h"
#include "store/fault_injection.h"
#include "store/store.h"
#include "test_util.h"

namespace medvault::record {
namespace {

using store::FaultInjector;

class RecordFaultTest : public ::testing::TestWithParam<bool /*real backends*/> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::InitCrypto().ok());
    ASSERT_TRUE(crypto::CreateKeyFile(dir_.path() / "platform.kek").ok());
    auto keys = crypto::OpenFileKeyProvider(dir_.path() / "platform.kek");
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    keys_ = std::move(*keys);
    if (GetParam()) {
      auto md = store::OpenSqliteMetadataStore(dir_.path() / "metadata.db");
      ASSERT_TRUE(md.ok()) << md.status().ToString();
      metadata_inner_ = std::move(*md);
      auto obj = store::OpenFileObjectStore(dir_.path() / "objects");
      ASSERT_TRUE(obj.ok()) << obj.status().ToString();
      objects_inner_ = std::move(*obj);
    } else {
      metadata_inner_ = store::NewMemoryMetadataStore();
      objects_inner_ = store::NewMemoryObjectStore();
    }
    metadata_ = store::NewFaultyMetadataStore(metadata_inner_.get(), metadata_faults_);
    objects_ = store::NewFaultyObjectStore(objects_inner_.get(), object_faults_);
    RecordServiceOptions options;
    options.inline_storage_max_bytes = inline_max_;
    auto svc = CreateRecordService(keys_.get(), metadata_.get(), objects_.get(), options);
    ASSERT_TRUE(svc.ok()) << svc.status().ToString();
    service_ = std::move(*svc);
    Demographics d{"Ada", "Fictive", "1956-03-14", "female", "MRN-1"};
    auto p = service_->CreatePatient(d, "tester");
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    patient_ = p->patient_id;
  }

  static SegmentWrite Json(int systolic) {
    SegmentWrite w;
    w.kind = ContentKind::kJson;
    w.content = ToBytes(nlohmann::json{{"systolic", systolic}, {"unit", "mmHg"}}.dump());
    return w;
  }

  // Every object the (inner) store holds.
  std::vector<std::string> Objects() {
    std::vector<std::string> keys;
    EXPECT_TRUE(objects_inner_->List("", [&](const std::string& k) { keys.push_back(k); }).ok());
    return keys;
  }

  // The service shows no version of `path`.
  void ExpectNothingAt(const std::string& path) {
    EXPECT_EQ(service_->ListVersions(patient_, path).status().code(), StatusCode::kNotFound);
    EXPECT_EQ(service_->ReadSegment(patient_, path, 0).status().code(), StatusCode::kNotFound);
    auto tree = service_->ListTree(patient_, "");
    ASSERT_TRUE(tree.ok());
    for (const auto& s : *tree) {
      EXPECT_NE(s.path, path);
    }
  }

  void ExpectWriteAndReadBack(const std::string& path, uint64_t want_version) {
    auto written = service_->WriteSegment(patient_, path, Json(120), "tester");
    ASSERT_TRUE(written.ok()) << written.status().ToString();
    EXPECT_EQ(written->version, want_version);
    auto read = service_->ReadSegment(patient_, path, 0);
    ASSERT_TRUE(read.ok()) << read.status().ToString();
    EXPECT_EQ(AsString(read->content), AsString(Json(120).content));
  }

  medvault::testing::TempDir dir_;
  std::shared_ptr<FaultInjector> metadata_faults_ = std::make_shared<FaultInjector>();
  std::shared_ptr<FaultInjector> object_faults_ = std::make_shared<FaultInjector>();
  std::unique_ptr<crypto::KeyProvider> keys_;
  // These tests are about objects: every version is one (see
  // RecordInlineFaultTest below for the default, small versions inline).
  uint64_t inline_max_ = 0;
  std::unique_ptr<store::MetadataStore> metadata_inner_;
  std::unique_ptr<store::ObjectStore> objects_inner_;
  std::unique_ptr<store::MetadataStore> metadata_;
  std::unique_ptr<store::ObjectStore> objects_;
  std::unique_ptr<RecordService> service_;
  std::string patient_;
};

TEST_P(RecordFaultTest, FailedObjectSyncLeavesNothing) {
  object_faults_->FailNextSync();
  auto failed =
      service_->WriteSegment(patient_, "internal-medicine/cardiology/ecg", Json(1), "tester");
  EXPECT_EQ(failed.status().code(), StatusCode::kIOError);
  ExpectNothingAt("internal-medicine/cardiology/ecg");
  EXPECT_TRUE(Objects().empty());
  EXPECT_EQ(*metadata_inner_->CountSegmentVersions(), 0);
  // The version number was not used up.
  ExpectWriteAndReadBack("internal-medicine/cardiology/ecg", 1);
}

// The file store's failed directory fsync: the object is in place but the
// caller was told the commit failed. The service shows nothing; the object
// is an unreferenced orphan, left to the scrubber.
TEST_P(RecordFaultTest, FailedSyncAfterPublishLeavesOnlyAnUnreferencedObject) {
  object_faults_->FailNextSync(/*after_publish=*/true);
  auto failed =
      service_->WriteSegment(patient_, "internal-medicine/cardiology/ecg", Json(1), "tester");
  EXPECT_EQ(failed.status().code(), StatusCode::kIOError);
  ExpectNothingAt("internal-medicine/cardiology/ecg");
  const std::vector<std::string> orphans = Objects();
  EXPECT_EQ(orphans.size(), 1u);
  auto referenced = metadata_inner_->ListObjectKeys(patient_);
  ASSERT_TRUE(referenced.ok());
  EXPECT_TRUE(referenced->empty());
  ExpectWriteAndReadBack("internal-medicine/cardiology/ecg", 1);
}

TEST_P(RecordFaultTest, FailedMetadataInsertRemovesTheObject) {
  metadata_faults_->FailNthWrite(1);
  auto failed =
      service_->WriteSegment(patient_, "internal-medicine/cardiology/ecg", Json(1), "tester");
  EXPECT_EQ(failed.status().code(), StatusCode::kIOError);
  ExpectNothingAt("internal-medicine/cardiology/ecg");
  EXPECT_TRUE(Objects().empty()) << "the object of the refused row was deleted";
  ExpectWriteAndReadBack("internal-medicine/cardiology/ecg", 1);
  EXPECT_EQ(Objects().size(), 1u);
}

TEST_P(RecordFaultTest, FailedAppendAbandonsTheAttachment) {
  auto writer = service_->BeginAttachment(patient_, "radiology/scan", "application/pdf",
                                          std::nullopt, "tester");
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  object_faults_->FailAfterWrites(0);  // the disk goes away mid-upload
  const Bytes chunk(256 * 1024, 0x25);
  Status st = Status::Ok();
  for (int i = 0; i < 4 && st.ok(); ++i) {
    st = (*writer)->Append(chunk);
  }
  Result<SegmentVersionInfo> committed =
      st.ok() ? (*writer)->Commit() : Result<SegmentVersionInfo>(st);
  EXPECT_FALSE(committed.ok());
  writer->reset();
  object_faults_->Reset();
  ExpectNothingAt("radiology/scan");
  EXPECT_TRUE(Objects().empty());
  // The path is free again, at version 1.
  auto again = service_->BeginAttachment(patient_, "radiology/scan", "application/pdf",
                                         std::nullopt, "tester");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ASSERT_TRUE((*again)->Append(chunk).ok());
  auto info = (*again)->Commit();
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->version, 1u);
  auto read = service_->ReadSegment(patient_, "radiology/scan", 0);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->content, chunk);
}

TEST_P(RecordFaultTest, BatchFailuresLeaveNoVersionAndNoObject) {
  RecordBatch batch;
  batch.patient_id = patient_;
  for (const char* path : {"life-record/a", "life-record/b", "life-record/c"}) {
    batch.segments.push_back({path, Json(110), std::nullopt});
  }
  // The metadata transaction fails: every object is removed.
  metadata_faults_->FailNthWrite(1);
  EXPECT_EQ(service_->WriteBatch(batch, "tester").status().code(), StatusCode::kIOError);
  EXPECT_TRUE(Objects().empty());
  // The second object's commit fails: the first one's object is removed.
  const uint64_t before = object_faults_->counts().writes;
  ASSERT_TRUE(service_->WriteSegment(patient_, "internal-medicine/probe", Json(1), "tester").ok());
  const uint64_t per_object = object_faults_->counts().writes - before;  // of one object
  ASSERT_GE(per_object, 2u);
  object_faults_->FailNthWrite(2 * per_object);
  EXPECT_EQ(service_->WriteBatch(batch, "tester").status().code(), StatusCode::kIOError);
  EXPECT_EQ(Objects().size(), 1u) << "only the probe's object";
  for (const char* path : {"life-record/a", "life-record/b", "life-record/c"}) {
    ExpectNothingAt(path);
  }
  auto done = service_->WriteBatch(batch, "tester");
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  ASSERT_EQ(done->versions.size(), 3u);
  EXPECT_EQ(done->versions[1].version, 1u);
  EXPECT_EQ(Objects().size(), 4u);
}

TEST_P(RecordFaultTest, FailedPatientCreationCreatesNobody) {
  metadata_faults_->FailNthWrite(1);
  Demographics d{"Grace", "Fictive-Two", "1960-01-02", "female", "MRN-2"};
  EXPECT_EQ(service_->CreatePatient(d, "tester").status().code(), StatusCode::kIOError);
  auto found = service_->FindPatients("Fictive-Two", "");
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->empty());
  EXPECT_EQ(*metadata_inner_->CountPatients(), 1);
  auto created = service_->CreatePatient(d, "tester");
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(service_->FindPatients("Fictive-Two", "")->size(), 1u);
}

// A write the object store acknowledged but stored torn (a lying disk):
// the version exists, and reading it is DataLoss, never wrong plaintext.
TEST_P(RecordFaultTest, TornObjectIsDataLossOnRead) {
  object_faults_->TearNextObject(40);
  auto written =
      service_->WriteSegment(patient_, "internal-medicine/cardiology/ecg", Json(130), "tester");
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(service_->ReadSegment(patient_, "internal-medicine/cardiology/ecg", 0).status().code(),
            StatusCode::kDataLoss);
  // The next version is whole.
  auto next =
      service_->WriteSegment(patient_, "internal-medicine/cardiology/ecg", Json(131), "tester");
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  auto read = service_->ReadSegment(patient_, "internal-medicine/cardiology/ecg", 2);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(AsString(read->content), AsString(Json(131).content));
}

// The lost acknowledgement: the metadata store committed the row but the
// caller heard an error (a reply lost on the way back). The service looks
// before it cleans up: the write is reported as done and its object kept,
// never a committed version whose object was deleted.
TEST_P(RecordFaultTest, LostAcknowledgementOfTheRowKeepsTheWrite) {
  metadata_faults_->FailNthWrite(1, Status::IOError("reply lost"), /*after_apply=*/true);
  auto written =
      service_->WriteSegment(patient_, "internal-medicine/cardiology/ecg", Json(140), "tester");
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(written->version, 1u);
  auto read = service_->ReadSegment(patient_, "internal-medicine/cardiology/ecg", 0);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(AsString(read->content), AsString(Json(140).content));
  EXPECT_EQ(Objects().size(), 1u);

  // The same for a batch, all of whose rows committed.
  RecordBatch batch;
  batch.patient_id = patient_;
  batch.segments.push_back({"life-record/a", Json(111), std::nullopt});
  batch.segments.push_back({"life-record/b", Json(112), std::nullopt});
  metadata_faults_->FailNthWrite(1, Status::IOError("reply lost"), /*after_apply=*/true);
  auto done = service_->WriteBatch(batch, "tester");
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  for (const char* path : {"life-record/a", "life-record/b"}) {
    EXPECT_TRUE(service_->ReadSegment(patient_, path, 1).ok()) << path;
  }
  EXPECT_EQ(Objects().size(), 3u);
}

INSTANTIATE_TEST_SUITE_P(Backends, RecordFaultTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& param_info) {
                           return param_info.param ? "file_sqlite" : "memory";
                         });

// The default: small versions inline (their ciphertext in the metadata row,
// committed with it and with their ledger entries in one transaction).
class RecordInlineFaultTest : public RecordFaultTest {
 protected:
  RecordInlineFaultTest() { inline_max_ = RecordServiceOptions{}.inline_storage_max_bytes; }
};

TEST_P(RecordInlineFaultTest, SmallWritesTouchNoObjectStore) {
  const uint64_t before = object_faults_->counts().writes;
  ExpectWriteAndReadBack("internal-medicine/cardiology/ecg", 1);
  EXPECT_EQ(object_faults_->counts().writes, before);
  EXPECT_TRUE(Objects().empty());
  // A failing object store does not stop them.
  object_faults_->FailAfterWrites(0);
  ExpectWriteAndReadBack("internal-medicine/cardiology/ecg", 2);
}

// The one commit fails (before or, unseen, after applying): either nothing
// is visible and the path is free, or the write is whole and reported done.
TEST_P(RecordInlineFaultTest, FailedCommitLeavesNothingLostReplyKeepsAll) {
  metadata_faults_->FailNthWrite(1);
  EXPECT_EQ(service_->WriteSegment(patient_, "life-record/diet", Json(1), "tester").status().code(),
            StatusCode::kIOError);
  ExpectNothingAt("life-record/diet");
  ExpectWriteAndReadBack("life-record/diet", 1);

  metadata_faults_->FailNthWrite(1, Status::IOError("reply lost"), /*after_apply=*/true);
  auto written = service_->WriteSegment(patient_, "life-record/diet", Json(2), "tester");
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(written->version, 2u);
  EXPECT_TRUE(service_->ReadSegment(patient_, "life-record/diet", 2).ok());

  RecordBatch batch;
  batch.patient_id = patient_;
  batch.segments.push_back({"life-record/a", Json(111), std::nullopt});
  batch.segments.push_back({"life-record/b", Json(112), std::nullopt});
  metadata_faults_->FailNthWrite(1);
  EXPECT_EQ(service_->WriteBatch(batch, "tester").status().code(), StatusCode::kIOError);
  ExpectNothingAt("life-record/a");
  ExpectNothingAt("life-record/b");
  auto done = service_->WriteBatch(batch, "tester");
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_TRUE(Objects().empty());
}

// Large versions in the same batch as small ones: the large ones are
// objects, the small ones inline; a failed commit removes the objects.
TEST_P(RecordInlineFaultTest, MixedBatchFailureRemovesOnlyItsObjects) {
  RecordBatch batch;
  batch.patient_id = patient_;
  batch.segments.push_back({"life-record/a", Json(111), std::nullopt});
  SegmentWrite big;
  big.kind = ContentKind::kText;
  big.content = ToBytes(std::string(inline_max_ + 1, 'x'));
  batch.segments.push_back({"patient-narrative/long", big, std::nullopt});
  metadata_faults_->FailNthWrite(1);
  EXPECT_EQ(service_->WriteBatch(batch, "tester").status().code(), StatusCode::kIOError);
  EXPECT_TRUE(Objects().empty());
  ExpectNothingAt("patient-narrative/long");
  auto done = service_->WriteBatch(batch, "tester");
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(Objects().size(), 1u);
  auto read = service_->ReadSegment(patient_, "patient-narrative/long", 1);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->content, big.content);
}

INSTANTIATE_TEST_SUITE_P(Backends, RecordInlineFaultTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& param_info) {
                           return param_info.param ? "file_sqlite" : "memory";
                         });

}  // namespace
}  // namespace medvault::record
