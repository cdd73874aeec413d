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

// ---------------------------------------------------------------------------
// Versioned node keys.

TEST(KeyTreeVersionTest, VersionOneIsTheUnversionedDerivation) {
  for (int rep = 0; rep < 20; ++rep) {
    const SecretBytes root = RandomKey();
    EXPECT_TRUE(Must(DeriveChildKey(root, "cardiology", 1))
                    .Equals(Must(DeriveChildKey(root, "cardiology"))));
    const uint32_t ones[] = {1, 1, 1};
    const uint32_t two[] = {1};
    const std::string path = "internal-medicine/cardiology/ecg";
    const SecretBytes plain = Must(DeriveKeyForPath(root, path));
    EXPECT_TRUE(Must(DeriveKeyForPath(root, path, ones)).Equals(plain));
    EXPECT_TRUE(Must(DeriveKeyForPath(root, path, two)).Equals(plain));
    EXPECT_TRUE(Must(DeriveKeyForPath(root, path, {})).Equals(plain));
  }
}

// A fixed vector, computed independently with Python's hmac/hashlib HKDF:
// root = 00..1f, child "cardiology".
TEST(KeyTreeVersionTest, LaterVersionIsTheDocumentedHkdf) {
  Bytes root_bytes(32);
  for (size_t i = 0; i < 32; ++i) root_bytes[i] = static_cast<uint8_t>(i);
  const SecretBytes root = SecretBytes::CopyFrom(root_bytes);
  Bytes info = ToBytes("cardiology");
  info.insert(info.end(), {0x00, 0x00, 0x00, 0x01, 0x02});  // NUL, then u32be 258
  const SecretBytes expected =
      Must(HkdfSha256(root.view(), AsBytes("medvault/v1/key-tree"), info, 32));
  const SecretBytes v258 = Must(DeriveChildKey(root, "cardiology", 258));
  EXPECT_TRUE(v258.Equals(expected));
  EXPECT_EQ(ToHex(Must(DeriveChildKey(root, "cardiology", 2)).view()),
            "f0f1e2155447365f051eceddcab5ec47a3cbcd8c477bcf415b23b891f5e6fed1");
  EXPECT_EQ(ToHex(Must(DeriveChildKey(root, "cardiology", 1)).view()),
            "60f0a6fd937d05c466ae6439d4bcc9d7aba05b7148c12d84e84d87c0039fd31e");
}

TEST(KeyTreeVersionTest, RotatingANodeChangesItsSubtreeOnly) {
  const SecretBytes root = RandomKey();
  const uint32_t ab2[] = {1, 2};
  const SecretBytes ab_v1 = Must(DeriveKeyForPath(root, "a/b"));
  const SecretBytes ab_v2 = Must(DeriveKeyForPath(root, "a/b", ab2));
  EXPECT_FALSE(ab_v1.Equals(ab_v2));
  // Below a/b, everything follows the new key.
  EXPECT_TRUE(Must(DeriveKeyForPath(root, "a/b/x", ab2)).Equals(Must(DeriveChildKey(ab_v2, "x"))));
  EXPECT_FALSE(
      Must(DeriveKeyForPath(root, "a/b/x", ab2)).Equals(Must(DeriveKeyForPath(root, "a/b/x"))));
  // Distinct versions give distinct keys; the sibling a/c and the parent a
  // are the same whatever a/b's version.
  std::set<std::string> seen;
  for (uint32_t v = 1; v <= 50; ++v) {
    seen.insert(ToHex(Must(DeriveChildKey(root, "a", v)).view()));
  }
  EXPECT_EQ(seen.size(), 50u);
  // The same key must not come from a name spelled to look like a version.
  EXPECT_EQ(DeriveChildKey(root, std::string("a\0\0\0\0\x02", 6)).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(KeyTreeVersionTest, RejectsBadVersions) {
  const SecretBytes root = RandomKey();
  EXPECT_EQ(DeriveChildKey(root, "a", 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DeriveChildKey(root, "a", kMaxNodeKeyVersion + 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(DeriveChildKey(root, "a", kMaxNodeKeyVersion).ok());
  const uint32_t too_many[] = {1, 1, 1};
  EXPECT_EQ(DeriveKeyForPath(root, "a/b", too_many).status().code(), StatusCode::kInvalidArgument);
  const uint32_t one[] = {1};
  EXPECT_EQ(DeriveKeyForPath(root, "", one).status().code(), StatusCode::kInvalidArgument);
  const uint32_t zero[] = {1, 0};
  EXPECT_EQ(DeriveKeyForPath(root, "a/b", zero).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DeriveChildKey(root, "a/b", 2).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DeriveChildKey(root, "", 2).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace medvault::crypto
