#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "crypto/crypto.h"
#include "crypto_test_util.h"

namespace medvault::crypto {
namespace {

using medvault::testing::Hex;

nlohmann::json LoadVectors(const std::string& name) {
  std::ifstream in(std::string(MEDVAULT_TESTDATA_DIR) + "/wycheproof/" + name);
  EXPECT_TRUE(in.good()) << name;
  return nlohmann::json::parse(in);
}

TEST(Sha256Test, KnownAnswers) {
  EXPECT_EQ(ToHex(Sha256({})), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(ToHex(Sha256(AsBytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(ToHex(Sha256(AsBytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Test, HasherMatchesOneShotForAnySplit) {
  Bytes data(10000);
  RandomBytes(data);
  const Bytes expected = Sha256(data);
  for (size_t split : {0u, 1u, 63u, 64u, 65u, 5000u, 10000u}) {
    Sha256Hasher h;
    h.Update(ByteView(data).first(split));
    h.Update({});
    h.Update(ByteView(data).subspan(split));
    EXPECT_EQ(h.Finish(), expected) << split;
  }
  Sha256Hasher empty;
  EXPECT_EQ(empty.Finish(), Sha256({}));
  // A stray use after Finish() starts from scratch rather than misbehaving.
  empty.Update(AsBytes("abc"));
  EXPECT_EQ(empty.Finish(), Sha256(AsBytes("abc")));
}

TEST(HmacSha256Test, WycheproofFullTags) {
  const nlohmann::json doc = LoadVectors("hmac_sha256_test.json");
  int checked = 0;
  for (const auto& group : doc["testGroups"]) {
    if (group["tagSize"] != 256) {
      continue;  // truncated tags are not offered by our API
    }
    for (const auto& t : group["tests"]) {
      SCOPED_TRACE("tcId " + std::to_string(t["tcId"].get<int>()));
      const SecretBytes key = SecretBytes::CopyFrom(Hex(t["key"]));
      const Bytes tag = HmacSha256(key, Hex(t["msg"]));
      if (t["result"] == "valid") {
        EXPECT_EQ(ToHex(tag), t["tag"].get<std::string>());
      } else {
        ASSERT_EQ(t["result"], "invalid");
        EXPECT_FALSE(ConstantTimeEquals(tag, Hex(t["tag"])));
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 87);
}

TEST(HmacSha256Test, EmptyKeyAndMessage) {
  // HMAC-SHA-256 with an empty key over an empty message (well-known value).
  EXPECT_EQ(ToHex(HmacSha256(SecretBytes(), {})),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(HkdfSha256Test, Wycheproof) {
  const nlohmann::json doc = LoadVectors("hkdf_sha256_test.json");
  int valid = 0;
  int invalid = 0;
  for (const auto& group : doc["testGroups"]) {
    for (const auto& t : group["tests"]) {
      SCOPED_TRACE("tcId " + std::to_string(t["tcId"].get<int>()));
      auto okm = HkdfSha256(Hex(t["ikm"]), Hex(t["salt"]), Hex(t["info"]), t["size"].get<size_t>());
      if (t["result"] == "valid") {
        ASSERT_TRUE(okm.ok()) << okm.status().ToString();
        EXPECT_EQ(ToHex(okm->view()), t["okm"].get<std::string>());
        ++valid;
      } else {
        ASSERT_EQ(t["result"], "invalid");  // SizeTooLarge
        ASSERT_FALSE(okm.ok());
        EXPECT_EQ(okm.status().code(), StatusCode::kInvalidArgument);
        ++invalid;
      }
    }
  }
  EXPECT_EQ(valid + invalid, doc["numberOfTests"].get<int>());
  EXPECT_EQ(invalid, 3);
}

TEST(HkdfSha256Test, Rfc5869TestCase1) {
  auto okm = HkdfSha256(Hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
                        Hex("000102030405060708090a0b0c"), Hex("f0f1f2f3f4f5f6f7f8f9"), 42);
  ASSERT_TRUE(okm.ok());
  EXPECT_EQ(ToHex(okm->view()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST(HkdfSha256Test, Rfc5869TestCase3EmptySaltAndInfo) {
  auto okm = HkdfSha256(Hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"), {}, {}, 42);
  ASSERT_TRUE(okm.ok());
  EXPECT_EQ(ToHex(okm->view()),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

TEST(HkdfSha256Test, LengthLimits) {
  const Bytes ikm(32, 7);
  auto empty = HkdfSha256(ikm, {}, {}, 0);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  auto max = HkdfSha256(ikm, {}, {}, 255 * 32);
  ASSERT_TRUE(max.ok());
  EXPECT_EQ(max->size(), 255u * 32);
  EXPECT_EQ(HkdfSha256(ikm, {}, {}, 255 * 32 + 1).status().code(), StatusCode::kInvalidArgument);
  // Empty input keying material is legal HKDF.
  EXPECT_TRUE(HkdfSha256({}, {}, {}, 32).ok());
}

TEST(BlindIndexTest, IsHmacOfDomainZeroValue) {
  const SecretBytes key = RandomKey();
  Bytes msg = ToBytes("family-name");
  msg.push_back(0);
  const Bytes value = ToBytes("muller");
  msg.insert(msg.end(), value.begin(), value.end());
  EXPECT_EQ(BlindIndex(key, "family-name", "muller"), HmacSha256(key, msg));
}

TEST(BlindIndexTest, DeterministicAndSeparated) {
  const SecretBytes key = RandomKey();
  const SecretBytes other = RandomKey();
  EXPECT_EQ(BlindIndex(key, "d", "v"), BlindIndex(key, "d", "v"));
  EXPECT_EQ(BlindIndex(key, "d", "v").size(), 32u);
  EXPECT_NE(BlindIndex(key, "d", "v"), BlindIndex(other, "d", "v"));
  EXPECT_NE(BlindIndex(key, "d1", "v"), BlindIndex(key, "d2", "v"));
  EXPECT_NE(BlindIndex(key, "d", "v1"), BlindIndex(key, "d", "v2"));
  // The separator keeps the domain/value boundary unambiguous.
  EXPECT_NE(BlindIndex(key, "ab", "c"), BlindIndex(key, "a", "bc"));
}

}  // namespace
}  // namespace medvault::crypto
