// The fault-injecting wrappers (store/fault_injection.h): each fault does
// what it claims, on the file store and the memory store, and nothing else.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "crypto/crypto.h"
#include "metadata_test_util.h"
#include "store/fault_injection.h"
#include "store/store.h"
#include "test_util.h"

namespace medvault::store {
namespace {

using store_testing::MakePatient;
using store_testing::MakeSegment;
using store_testing::PatientId;

class FaultyObjectStoreTest : public ::testing::TestWithParam<bool /*file*/> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      auto opened = OpenFileObjectStore(dir_.path() / "objects");
      ASSERT_TRUE(opened.ok()) << opened.status().ToString();
      inner_ = std::move(*opened);
    } else {
      inner_ = NewMemoryObjectStore();
    }
    store_ = NewFaultyObjectStore(inner_.get(), faults_);
  }

  medvault::testing::TempDir dir_;
  std::shared_ptr<FaultInjector> faults_ = std::make_shared<FaultInjector>();
  std::unique_ptr<ObjectStore> inner_;
  std::unique_ptr<ObjectStore> store_;
};

TEST_P(FaultyObjectStoreTest, PassesEverythingThroughWhenDisarmed) {
  auto info = store_->Put("p/a", AsBytes("abc"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->sha256, crypto::Sha256(AsBytes("abc")));
  EXPECT_EQ(AsString(*store_->Get("p/a", info->sha256)), "abc");
  EXPECT_TRUE(store_->Delete("p/a").ok());
  const FaultInjector::Counts c = faults_->counts();
  EXPECT_EQ(c.begin_puts, 1u);
  EXPECT_EQ(c.appends, 1u);
  EXPECT_EQ(c.commits, 1u);
  EXPECT_EQ(c.opens, 1u);
  EXPECT_EQ(c.deletes, 1u);
  EXPECT_EQ(c.writes, 3u);  // append, commit, delete
  EXPECT_EQ(c.injected, 0u);
}

TEST_P(FaultyObjectStoreTest, FailedNthWriteLeavesNothingAndTheNextWriteSucceeds) {
  // Put = Append (write 1) + Commit (write 2): fail the commit.
  faults_->FailNthWrite(2);
  auto failed = store_->Put("p/a", AsBytes("abc"));
  EXPECT_EQ(failed.status().code(), StatusCode::kIOError);
  EXPECT_EQ(inner_->Open("p/a", crypto::Sha256(AsBytes("abc"))).status().code(),
            StatusCode::kNotFound);
  EXPECT_TRUE(store_->Put("p/a", AsBytes("abc")).ok()) << "the key is still free";
  // Fail an append: the writer is discarded, its commit refused.
  faults_->FailNthWrite(1, Status::Unavailable("disk gone"));
  auto writer = store_->BeginPut("p/b");
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ((*writer)->Append(AsBytes("x")).code(), StatusCode::kUnavailable);
  EXPECT_EQ((*writer)->Commit().status().code(), StatusCode::kFailedPrecondition);
  writer->reset();
  EXPECT_EQ(inner_->Open("p/b", crypto::Sha256(AsBytes("x"))).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(faults_->counts().injected, 2u);
}

TEST_P(FaultyObjectStoreTest, FailAfterWritesFailsEveryLaterWriteUntilReset) {
  faults_->FailAfterWrites(3);
  EXPECT_TRUE(store_->Put("p/a", AsBytes("a")).ok());   // writes 1, 2
  EXPECT_FALSE(store_->Put("p/b", AsBytes("b")).ok());  // write 3 passes, 4 fails
  EXPECT_FALSE(store_->Put("p/c", AsBytes("c")).ok());
  EXPECT_EQ(store_->Delete("p/a").code(), StatusCode::kIOError);
  faults_->Reset();
  EXPECT_TRUE(store_->Put("p/b", AsBytes("b")).ok());
  std::vector<std::string> keys;
  ASSERT_TRUE(inner_->List("", [&](const std::string& k) { keys.push_back(k); }).ok());
  EXPECT_EQ(keys, (std::vector<std::string>{"p/a", "p/b"}));
}

TEST_P(FaultyObjectStoreTest, FailedSyncBeforePublishLeavesNothing) {
  faults_->FailNextSync();
  auto failed = store_->Put("p/a", AsBytes("abc"));
  EXPECT_EQ(failed.status().code(), StatusCode::kIOError);
  EXPECT_EQ(inner_->Open("p/a", crypto::Sha256(AsBytes("abc"))).status().code(),
            StatusCode::kNotFound);
  EXPECT_TRUE(store_->Put("p/a", AsBytes("abc")).ok());
}

// The file store's failed directory fsync: the object is in place, the
// caller was told it failed (so it must not reference it; the scrubber
// collects it).
TEST_P(FaultyObjectStoreTest, FailedSyncAfterPublishLeavesAnUnacknowledgedObject) {
  faults_->FailNextSync(/*after_publish=*/true);
  EXPECT_EQ(store_->Put("p/a", AsBytes("abc")).status().code(), StatusCode::kIOError);
  auto got = inner_->Get("p/a", crypto::Sha256(AsBytes("abc")));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(store_->Put("p/a", AsBytes("abc")).status().code(), StatusCode::kAlreadyExists);
}

TEST_P(FaultyObjectStoreTest, TornWriteIsCaughtByTheReadersHashCheck) {
  const std::string data(10000, 'z');
  faults_->TearNextObject(4096);
  auto writer = store_->BeginPut("p/torn");
  ASSERT_TRUE(writer.ok());
  for (size_t pos = 0; pos < data.size(); pos += 3000) {
    ASSERT_TRUE((*writer)->Append(AsBytes(std::string_view(data).substr(pos, 3000))).ok());
  }
  auto info = (*writer)->Commit();
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  // The caller believes the whole object was stored.
  EXPECT_EQ(info->size, data.size());
  EXPECT_EQ(info->sha256, crypto::Sha256(AsBytes(data)));
  auto reader = store_->Open("p/torn", info->sha256);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->size(), 4096u);
  EXPECT_EQ(store_->Get("p/torn", info->sha256).status().code(), StatusCode::kDataLoss);
  // Only one object is torn.
  auto whole = store_->Put("p/whole", AsBytes(data));
  ASSERT_TRUE(whole.ok());
  EXPECT_TRUE(store_->Get("p/whole", whole->sha256).ok());
}

INSTANTIATE_TEST_SUITE_P(Inner, FaultyObjectStoreTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& param_info) {
                           return param_info.param ? "file" : "memory";
                         });

class FaultyMetadataStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(store_->CreatePatient(MakePatient(1)).ok()); }

  std::shared_ptr<FaultInjector> faults_ = std::make_shared<FaultInjector>();
  std::unique_ptr<MetadataStore> inner_ = NewMemoryMetadataStore();
  std::unique_ptr<MetadataStore> store_ = NewFaultyMetadataStore(inner_.get(), faults_);
  const std::string pid_ = PatientId(1);
};

TEST_F(FaultyMetadataStoreTest, FailedWriteWritesNothing) {
  faults_->FailNthWrite(1);
  EXPECT_EQ(store_->InsertSegmentVersion(MakeSegment(pid_, "a", 1)).code(), StatusCode::kIOError);
  EXPECT_EQ(*inner_->LatestVersion(pid_, "a"), 0u);
  EXPECT_TRUE(store_->InsertSegmentVersion(MakeSegment(pid_, "a", 1)).ok());
  faults_->FailNthWrite(2);
  EXPECT_TRUE(store_->CreatePatient(MakePatient(2)).ok());
  const std::vector<SegmentVersionRecord> rows = {MakeSegment(pid_, "b", 1)};
  EXPECT_EQ(store_->InsertBatch(nullptr, rows).code(), StatusCode::kIOError);
  EXPECT_EQ(*inner_->LatestVersion(pid_, "b"), 0u);
  faults_->FailNthWrite(1);
  EXPECT_EQ(store_->ErasePatient(pid_, 1).code(), StatusCode::kIOError);
  EXPECT_FALSE(inner_->GetPatient(pid_)->erased_at_ms.has_value());
  const FaultInjector::Counts c = faults_->counts();
  EXPECT_EQ(c.metadata_writes, 6u);  // the fixture's patient included
  EXPECT_EQ(c.injected, 3u);
}

TEST_F(FaultyMetadataStoreTest, LostAcknowledgementKeepsTheWrite) {
  faults_->FailNthWrite(1, Status::Unavailable("connection reset"), /*after_apply=*/true);
  EXPECT_EQ(store_->InsertSegmentVersion(MakeSegment(pid_, "a", 1)).code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(*store_->LatestVersion(pid_, "a"), 1u);
  // A retry of the same version is told it exists.
  EXPECT_EQ(store_->InsertSegmentVersion(MakeSegment(pid_, "a", 1)).code(),
            StatusCode::kAlreadyExists);
  EXPECT_GE(faults_->counts().metadata_reads, 1u);
}

TEST_F(FaultyMetadataStoreTest, OneInjectorCountsAcrossStores) {
  auto objects_inner = NewMemoryObjectStore();
  auto objects = NewFaultyObjectStore(objects_inner.get(), faults_);
  faults_->FailNthWrite(3);  // Append, Commit, then the metadata insert
  ASSERT_TRUE(objects->Put("p/a", AsBytes("x")).ok());
  EXPECT_EQ(store_->InsertSegmentVersion(MakeSegment(pid_, "a", 1)).code(), StatusCode::kIOError);
}

}  // namespace
}  // namespace medvault::store
