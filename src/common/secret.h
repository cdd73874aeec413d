// Secret key material: non-copyable, zeroed on destruction (sodium_memzero,
// which the compiler may not elide), compared in constant time. Not mlocked
// per allocation (see secret.cc); `medvault serve` disables core dumps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/bytes.h"

namespace medvault {

class SecretBytes {
 public:
  SecretBytes() = default;
  // Zero-filled secret of `size` bytes.
  explicit SecretBytes(size_t size);
  // Copies `data`. The caller wipes its own copy.
  static SecretBytes CopyFrom(ByteView data);
  ~SecretBytes();

  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  ByteView view() const { return {data_, size_}; }
  std::span<uint8_t> mutable_view() { return {data_, size_}; }

  // Constant-time comparison; sizes are not secret.
  bool Equals(const SecretBytes& other) const;

  // Zeroes and releases the memory now. Safe to call twice.
  void Wipe();

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Constant-time comparison of two byte strings of public length.
bool ConstantTimeEquals(ByteView a, ByteView b);

}  // namespace medvault
