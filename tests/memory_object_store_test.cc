// What the in-memory object store does beyond the shared contract
// (object_store_conformance_test runs that contract on it): writers and
// readers outlive the store, a writer is single-use, and instances share
// nothing.
#include <gtest/gtest.h>

#include "crypto/crypto.h"
#include "store/store.h"

namespace medvault::store {
namespace {

TEST(MemoryObjectStoreTest, AWriterIsSingleUseAndOutlivesItsStore) {
  ASSERT_TRUE(crypto::InitCrypto().ok());
  auto store = NewMemoryObjectStore();
  auto w = store->BeginPut("aa/one");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(ToBytes("hello")).ok());
  store.reset();  // the writer keeps what it needs
  auto info = (*w)->Commit();
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, 5u);
  EXPECT_EQ(info->sha256, crypto::Sha256(ToBytes("hello")));
  EXPECT_EQ((*w)->Append(ToBytes("x")).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ((*w)->Commit().status().code(), StatusCode::kFailedPrecondition);
}

TEST(MemoryObjectStoreTest, InstancesShareNothingAndAChangedHashIsDataLoss) {
  ASSERT_TRUE(crypto::InitCrypto().ok());
  auto a = NewMemoryObjectStore();
  auto b = NewMemoryObjectStore();
  auto put = a->Put("aa/one", ToBytes("data"));
  ASSERT_TRUE(put.ok());
  EXPECT_EQ(b->Get("aa/one", put->sha256).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(a->Get("aa/one", crypto::Sha256(ToBytes("other"))).status().code(),
            StatusCode::kDataLoss);
  EXPECT_TRUE(a->CommittedAtMs("aa/one").ok());
  EXPECT_EQ(a->Put("../x", ToBytes("d")).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace medvault::store
