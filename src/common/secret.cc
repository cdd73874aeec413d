#include "common/secret.h"

#include <sodium.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace medvault {

SecretBytes::SecretBytes(size_t size) : size_(size) {
  if (size == 0) {
    return;
  }
  data_ = static_cast<uint8_t*>(std::malloc(size));
  if (data_ == nullptr) {
    throw std::bad_alloc();
  }
  std::memset(data_, 0, size);
  // No per-key mlock: two syscalls per key dominated key-tree derivation
  // (several keys per request). The server disables core dumps instead;
  // swap remains a documented residual risk (SECURITY.md).
}

SecretBytes SecretBytes::CopyFrom(ByteView data) {
  SecretBytes s(data.size());
  if (!data.empty()) {
    std::memcpy(s.data_, data.data(), data.size());
  }
  return s;
}

SecretBytes::~SecretBytes() { Wipe(); }

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Wipe();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

bool SecretBytes::Equals(const SecretBytes& other) const {
  return ConstantTimeEquals(view(), other.view());
}

void SecretBytes::Wipe() {
  if (data_ != nullptr) {
    sodium_memzero(data_, size_);
    std::free(data_);
  }
  data_ = nullptr;
  size_ = 0;
}

bool ConstantTimeEquals(ByteView a, ByteView b) {
  if (a.size() != b.size()) {
    return false;
  }
  if (a.empty()) {
    return true;
  }
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace medvault
