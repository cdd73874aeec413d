#include <gtest/gtest.h>

#include <set>
#include <string>

#include "crypto/crypto.h"
#include "crypto_test_util.h"

namespace medvault::crypto {
namespace {

SecretBytes Must(Result<SecretBytes> r) {
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : SecretBytes();
}

TEST(KeyTreeTest, ChildKeyIsDocumentedHkdf) {
  const SecretBytes root = RandomKey();
  const SecretBytes child = Must(DeriveChildKey(root, "cardiology"));
  const SecretBytes expected =
      Must(HkdfSha256(root.view(), AsBytes("medvault/v1/key-tree"), AsBytes("cardiology"), 32));
  EXPECT_EQ(child.size(), kKeySize);
  EXPECT_TRUE(child.Equals(expected));
}

TEST(KeyTreeTest, PurposeKeyIsDocumentedHkdf) {
  const SecretBytes root = RandomKey();
  const SecretBytes key = Must(DerivePurposeKey(root, "demographics"));
  const SecretBytes expected =
      Must(HkdfSha256(root.view(), AsBytes("medvault/v1/purpose"), AsBytes("demographics"), 32));
  EXPECT_TRUE(key.Equals(expected));
  // Purpose keys and tree keys of the same name are separated by the salt.
  EXPECT_FALSE(key.Equals(Must(DeriveChildKey(root, "demographics"))));
}

TEST(KeyTreeTest, PathEqualsRepeatedChildDerivation) {
  for (int i = 0; i < 20; ++i) {
    const SecretBytes root = RandomKey();
    const SecretBytes ab = Must(DeriveKeyForPath(root, "a/b"));
    const SecretBytes stepwise = Must(DeriveKeyForPath(Must(DeriveKeyForPath(root, "a")), "b"));
    EXPECT_TRUE(ab.Equals(stepwise));
    EXPECT_TRUE(ab.Equals(Must(DeriveChildKey(Must(DeriveChildKey(root, "a")), "b"))));
    const SecretBytes deep = Must(DeriveKeyForPath(root, "internal-medicine/cardiology/ecg"));
    const SecretBytes sub = Must(DeriveKeyForPath(root, "internal-medicine"));
    EXPECT_TRUE(deep.Equals(Must(DeriveKeyForPath(sub, "cardiology/ecg"))));
  }
}

TEST(KeyTreeTest, SiblingsAndLevelsDiffer) {
  const SecretBytes root = RandomKey();
  std::set<Bytes> keys;
  for (const char* path : {"a", "b", "a/b", "b/a", "a/a", "ab", "a/b/c", "A"}) {
    const SecretBytes k = Must(DeriveKeyForPath(root, path));
    keys.insert(Bytes(k.view().begin(), k.view().end()));
  }
  keys.insert(Bytes(root.view().begin(), root.view().end()));
  EXPECT_EQ(keys.size(), 9u);
}

TEST(KeyTreeTest, DifferentRootsGiveDifferentKeys) {
  const SecretBytes r1 = RandomKey();
  const SecretBytes r2 = RandomKey();
  EXPECT_FALSE(Must(DeriveKeyForPath(r1, "a/b")).Equals(Must(DeriveKeyForPath(r2, "a/b"))));
  EXPECT_FALSE(Must(DerivePurposeKey(r1, "p")).Equals(Must(DerivePurposeKey(r2, "p"))));
}

TEST(KeyTreeTest, Deterministic) {
  const SecretBytes root = RandomKey();
  EXPECT_TRUE(Must(DeriveKeyForPath(root, "x/y")).Equals(Must(DeriveKeyForPath(root, "x/y"))));
}

TEST(KeyTreeTest, EmptyPathReturnsCopyOfRoot) {
  const SecretBytes root = RandomKey();
  const SecretBytes k = Must(DeriveKeyForPath(root, ""));
  EXPECT_TRUE(k.Equals(root));
  EXPECT_NE(k.data(), root.data());
}

TEST(KeyTreeTest, RejectsEmptyComponents) {
  const SecretBytes root = RandomKey();
  for (const char* path : {"/", "/a", "a/", "a//b", "//", "a/b/"}) {
    EXPECT_EQ(DeriveKeyForPath(root, path).status().code(), StatusCode::kInvalidArgument) << path;
  }
  EXPECT_EQ(DeriveChildKey(root, "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DeriveChildKey(root, "a/b").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DerivePurposeKey(root, "").status().code(), StatusCode::kInvalidArgument);
}

TEST(KeyTreeTest, RejectsWrongKeySize) {
  const SecretBytes short_key(16);
  EXPECT_EQ(DeriveChildKey(short_key, "a").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DeriveKeyForPath(short_key, "a").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DeriveKeyForPath(short_key, "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DerivePurposeKey(short_key, "a").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace medvault::crypto
