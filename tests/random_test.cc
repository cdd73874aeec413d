#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <set>

#include "crypto/crypto.h"

namespace medvault::crypto {
namespace {

TEST(RandomTest, InitCryptoIsIdempotent) {
  ASSERT_TRUE(InitCrypto().ok());
  ASSERT_TRUE(InitCrypto().ok());
}

TEST(RandomTest, RandomBytesFillsAndDiffers) {
  ASSERT_TRUE(InitCrypto().ok());
  std::array<uint8_t, 64> a{};
  std::array<uint8_t, 64> b{};
  RandomBytes(a);
  RandomBytes(b);
  EXPECT_NE(a, b);
  // 64 zero bytes from a working generator has probability 2^-512.
  EXPECT_TRUE(std::any_of(a.begin(), a.end(), [](uint8_t x) { return x != 0; }));
}

TEST(RandomTest, RandomBytesAcceptsEmptySpan) {
  ASSERT_TRUE(InitCrypto().ok());
  RandomBytes(std::span<uint8_t>());
}

TEST(RandomTest, RandomBytesFillsOddSizesCompletely) {
  ASSERT_TRUE(InitCrypto().ok());
  // Every byte position must be written: over 64 draws the chance that a given
  // position stays at its initial value every time is 256^-64.
  for (size_t n : {1u, 7u, 33u, 1000u}) {
    std::vector<bool> touched(n, false);
    for (int round = 0; round < 64; ++round) {
      Bytes buf(n, 0);
      RandomBytes(buf);
      for (size_t i = 0; i < n; ++i) {
        touched[i] = touched[i] || buf[i] != 0;
      }
    }
    EXPECT_TRUE(std::all_of(touched.begin(), touched.end(), [](bool t) { return t; }))
        << "size " << n;
  }
}

TEST(RandomTest, RandomKeyHasKeySizeAndIsFresh) {
  ASSERT_TRUE(InitCrypto().ok());
  std::set<Bytes> seen;
  for (int i = 0; i < 100; ++i) {
    SecretBytes k = RandomKey();
    ASSERT_EQ(k.size(), kKeySize);
    seen.insert(Bytes(k.view().begin(), k.view().end()));
  }
  EXPECT_EQ(seen.size(), 100u);
}

}  // namespace
}  // namespace medvault::crypto
