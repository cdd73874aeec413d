#include <gtest/gtest.h>
#include <sodium.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "crypto/crypto.h"
#include "crypto_test_util.h"

namespace medvault::crypto {
namespace {

using medvault::testing::Hex;

Bytes Concat(std::initializer_list<ByteView> parts) {
  Bytes out;
  for (ByteView p : parts) {
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

nlohmann::json LoadVectors(const std::string& name) {
  std::ifstream in(std::string(MEDVAULT_TESTDATA_DIR) + "/wycheproof/" + name);
  EXPECT_TRUE(in.good()) << name;
  return nlohmann::json::parse(in);
}

// Wycheproof XChaCha20-Poly1305: every valid vector must open to msg and, sealed
// with its nonce, reproduce ct||tag; every invalid one must fail to open.
TEST(AeadTest, WycheproofXChaCha20Poly1305) {
  const nlohmann::json doc = LoadVectors("xchacha20_poly1305_test.json");
  int valid = 0;
  int invalid = 0;
  for (const auto& group : doc["testGroups"]) {
    const bool supported =
        group["keySize"] == 256 && group["ivSize"] == 192 && group["tagSize"] == 128;
    for (const auto& t : group["tests"]) {
      SCOPED_TRACE("tcId " + std::to_string(t["tcId"].get<int>()));
      const SecretBytes key = SecretBytes::CopyFrom(Hex(t["key"]));
      const Bytes iv = Hex(t["iv"]);
      const Bytes aad = Hex(t["aad"]);
      const Bytes msg = Hex(t["msg"]);
      const Bytes ct = Hex(t["ct"]);
      const Bytes tag = Hex(t["tag"]);
      const Bytes sealed = Concat({iv, ct, tag});
      const bool expect_valid = t["result"] == "valid";
      ASSERT_TRUE(expect_valid || t["result"] == "invalid");
      if (!supported) {
        // Other nonce sizes cannot be expressed in our format; the bytes must not open.
        ASSERT_FALSE(expect_valid);
        EXPECT_FALSE(AeadOpen(key, sealed, aad).ok());
        ++invalid;
        continue;
      }
      auto opened = AeadOpen(key, sealed, aad);
      if (expect_valid) {
        ASSERT_TRUE(opened.ok()) << opened.status().ToString();
        EXPECT_EQ(*opened, msg);
        auto secret = AeadOpenSecret(key, sealed, aad);
        ASSERT_TRUE(secret.ok());
        EXPECT_EQ(Bytes(secret->view().begin(), secret->view().end()), msg);
        // Test-only seal with the vector's fixed nonce.
        Bytes out(msg.size() + kAeadTagSize);
        unsigned long long out_len = 0;
        ASSERT_EQ(crypto_aead_xchacha20poly1305_ietf_encrypt(out.data(), &out_len, msg.data(),
                                                             msg.size(), aad.data(), aad.size(),
                                                             nullptr, iv.data(), key.data()),
                  0);
        EXPECT_EQ(out_len, out.size());
        EXPECT_EQ(out, Concat({ct, tag}));
        ++valid;
      } else {
        ASSERT_FALSE(opened.ok());
        EXPECT_EQ(opened.status().code(), StatusCode::kDataLoss);
        EXPECT_FALSE(AeadOpenSecret(key, sealed, aad).ok());
        ++invalid;
      }
    }
  }
  EXPECT_EQ(valid + invalid, doc["numberOfTests"].get<int>());
  EXPECT_GT(valid, 100);
  EXPECT_GT(invalid, 10);
}

TEST(AeadTest, RoundTripVariousSizes) {
  const SecretBytes key = RandomKey();
  const Bytes aad = ToBytes("binding");
  for (size_t n : {0u, 1u, 15u, 16u, 17u, 63u, 64u, 65u, 1000u, 65536u}) {
    Bytes pt(n);
    RandomBytes(pt);
    auto sealed = AeadSeal(key, pt, aad);
    ASSERT_TRUE(sealed.ok());
    EXPECT_EQ(sealed->size(), n + kAeadOverhead);
    auto opened = AeadOpen(key, *sealed, aad);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    EXPECT_EQ(*opened, pt);
    auto secret = AeadOpenSecret(key, *sealed, aad);
    ASSERT_TRUE(secret.ok());
    EXPECT_TRUE(ConstantTimeEquals(secret->view(), pt));
  }
}

TEST(AeadTest, FreshNonceEachSeal) {
  const SecretBytes key = RandomKey();
  const Bytes pt = ToBytes("same message");
  auto a = AeadSeal(key, pt, {});
  auto b = AeadSeal(key, pt, {});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(Bytes(a->begin(), a->begin() + kAeadNonceSize),
            Bytes(b->begin(), b->begin() + kAeadNonceSize));
  EXPECT_NE(*a, *b);
}

TEST(AeadTest, WrongKeyOrAadIsDataLoss) {
  const SecretBytes key = RandomKey();
  const SecretBytes other = RandomKey();
  auto sealed = AeadSeal(key, AsBytes("secret"), AsBytes("aad-1"));
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(AeadOpen(other, *sealed, AsBytes("aad-1")).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(AeadOpen(key, *sealed, AsBytes("aad-2")).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(AeadOpen(key, *sealed, {}).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(AeadOpenSecret(other, *sealed, AsBytes("aad-1")).status().code(),
            StatusCode::kDataLoss);
}

TEST(AeadTest, EveryModifiedByteIsDataLoss) {
  const SecretBytes key = RandomKey();
  const Bytes aad = ToBytes("aad");
  auto sealed = AeadSeal(key, AsBytes("a short plaintext"), aad);
  ASSERT_TRUE(sealed.ok());
  for (size_t i = 0; i < sealed->size(); ++i) {
    Bytes bad = *sealed;
    bad[i] ^= 0x01;
    EXPECT_EQ(AeadOpen(key, bad, aad).status().code(), StatusCode::kDataLoss) << "byte " << i;
  }
}

TEST(AeadTest, ShortInputIsDataLoss) {
  const SecretBytes key = RandomKey();
  for (size_t n = 0; n < kAeadOverhead; ++n) {
    Bytes input(n, 0);
    EXPECT_EQ(AeadOpen(key, input, {}).status().code(), StatusCode::kDataLoss) << n;
    EXPECT_EQ(AeadOpenSecret(key, input, {}).status().code(), StatusCode::kDataLoss) << n;
  }
}

TEST(AeadTest, WrongKeySizeIsInvalidArgument) {
  for (size_t n : {0u, 16u, 31u, 33u, 64u}) {
    const SecretBytes key(n);
    EXPECT_EQ(AeadSeal(key, AsBytes("x"), {}).status().code(), StatusCode::kInvalidArgument);
    const Bytes sealed(kAeadOverhead + 1, 0);
    EXPECT_EQ(AeadOpen(key, sealed, {}).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(AeadOpenSecret(key, sealed, {}).status().code(), StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace medvault::crypto
