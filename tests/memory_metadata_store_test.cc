// What the in-memory metadata store does beyond the shared contract
// (metadata_store_conformance_test runs that contract on it): key tree
// rotation with its rules and all-or-nothing audit, and nothing kept across
// instances.
#include <gtest/gtest.h>

#include "metadata_test_util.h"
#include "store/store.h"

namespace medvault::store {
namespace {

using store_testing::Filled;
using store_testing::MakePatient;
using store_testing::MakeSegment;
using store_testing::PatientId;

TEST(MemoryMetadataStoreTest, RotationFollowsTheVersionRuleAndIsAllOrNothing) {
  bool fail_audit = false;
  int audited = 0;
  MemoryMetadataOptions options;
  options.audit_hook = [&](AuditEntries entries) {
    audited += static_cast<int>(entries.size());
    return fail_audit ? Status::Unavailable("ledger down") : Status::Ok();
  };
  auto store = NewMemoryMetadataStore(options);
  ASSERT_TRUE(store->CreatePatient(MakePatient(1)).ok());
  const auto seg = MakeSegment(PatientId(1), "labs/blood", 1);
  ASSERT_TRUE(store->InsertSegmentVersion(seg).ok());
  const std::vector<ObjectKeySlots> slots = {{seg.object_key, Filled(1, 80)}};
  const Bytes entry = Filled(9, 10);
  const std::span<const Bytes> audit(&entry, 1);

  // Versions start at 1: only 2 may follow.
  EXPECT_EQ(store->RotateNodeKey(PatientId(1), "labs", 3, 1, slots).code(),
            StatusCode::kFailedPrecondition);
  // An object that is not this patient's: nothing changes.
  const std::vector<ObjectKeySlots> foreign = {{"zz/other", Filled(2, 80)}};
  EXPECT_EQ(store->RotateNodeKey(PatientId(1), "labs", 2, 1, foreign).code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store->RotateNodeKey(PatientId(7), "labs", 2, 1, {}).code(), StatusCode::kNotFound);
  // A failing ledger undoes the rotation.
  fail_audit = true;
  EXPECT_EQ(store->RotateNodeKey(PatientId(1), "labs", 2, 1, slots, audit).code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(audited, 1);
  EXPECT_TRUE(store->ListNodeKeyVersions(PatientId(1))->empty());
  EXPECT_FALSE(store->GetObjectKeySlots(seg.object_key)->has_value());

  fail_audit = false;
  ASSERT_TRUE(store->RotateNodeKey(PatientId(1), "labs", 2, 1, slots, audit).ok());
  auto versions = store->ListNodeKeyVersions(PatientId(1));
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), 1u);
  EXPECT_EQ((*versions)[0].path, "labs");
  EXPECT_EQ((*versions)[0].version, 2u);
  EXPECT_EQ(store->GetObjectKeySlots(seg.object_key)->value(), Filled(1, 80));
  // The same version again lost the race: refused.
  EXPECT_EQ(store->RotateNodeKey(PatientId(1), "labs", 2, 1, slots).code(),
            StatusCode::kFailedPrecondition);
  // An erased patient is not rotated.
  ASSERT_TRUE(store->ErasePatient(PatientId(1), 5).ok());
  EXPECT_EQ(store->RotateNodeKey(PatientId(1), "labs", 3, 1, {}).code(), StatusCode::kNotFound);
}

TEST(MemoryMetadataStoreTest, EntriesWithoutAHookAreRefusedAndEachInstanceStartsEmpty) {
  auto store = NewMemoryMetadataStore();
  const Bytes entry = Filled(3, 10);
  EXPECT_EQ(store->CreatePatient(MakePatient(1), std::span<const Bytes>(&entry, 1)).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(*store->CountPatients(), 0);
  ASSERT_TRUE(store->CreatePatient(MakePatient(1)).ok());
  EXPECT_EQ(*NewMemoryMetadataStore()->CountPatients(), 0) << "nothing shared between instances";
  EXPECT_EQ(*store->SchemaVersion(), 0);
}

}  // namespace
}  // namespace medvault::store
