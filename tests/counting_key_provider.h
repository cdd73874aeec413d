// A KeyProvider that forwards to a real one and counts unwraps, so that tests
// can assert how often a patient's root key is unwrapped. Not a mock: every
// call reaches the real provider.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "crypto/crypto.h"

namespace medvault::testing {

class CountingKeyProvider final : public crypto::KeyProvider {
 public:
  explicit CountingKeyProvider(std::unique_ptr<crypto::KeyProvider> inner)
      : inner_(std::move(inner)) {}
  Result<Bytes> WrapKey(const SecretBytes& key, ByteView aad) override {
    return inner_->WrapKey(key, aad);
  }
  Result<SecretBytes> UnwrapKey(ByteView wrapped, ByteView aad) override {
    ++unwraps;
    return inner_->UnwrapKey(wrapped, aad);
  }
  Result<SecretBytes> DerivePlatformKey(std::string_view purpose) override {
    return inner_->DerivePlatformKey(purpose);
  }
  std::string KeyId() const override { return inner_->KeyId(); }

  std::atomic<int> unwraps{0};

 private:
  std::unique_ptr<crypto::KeyProvider> inner_;
};

}  // namespace medvault::testing
