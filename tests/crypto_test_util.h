// Shared by the crypto tests: libsodium initialised once per test binary,
// and hex literals for test vectors.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "common/bytes.h"
#include "crypto/crypto.h"

namespace medvault::testing {

class CryptoEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { ASSERT_TRUE(crypto::InitCrypto().ok()); }
};

// Include from exactly one file per test binary.
[[maybe_unused]] inline ::testing::Environment* const kCryptoEnv =
    ::testing::AddGlobalTestEnvironment(new CryptoEnvironment);

inline Bytes Hex(const std::string& hex) {
  auto r = FromHex(hex);
  EXPECT_TRUE(r.ok()) << hex;
  return r.ok() ? *r : Bytes();
}

}  // namespace medvault::testing
