// Library initialisation and randomness (libsodium).
#include <sodium.h>

#include "crypto/crypto.h"

namespace medvault::crypto {

Status InitCrypto() {
  // sodium_init() is thread-safe and idempotent: 0 = initialised now,
  // 1 = already initialised, -1 = failure (e.g. no entropy source).
  if (sodium_init() < 0) {
    return Status::Internal("libsodium initialisation failed");
  }
  return Status::Ok();
}

void RandomBytes(std::span<uint8_t> out) {
  if (!out.empty()) {
    randombytes_buf(out.data(), out.size());
  }
}

SecretBytes RandomKey() {
  SecretBytes key(kKeySize);
  // Generated in place so the key never touches unlocked memory.
  randombytes_buf(key.data(), key.size());
  return key;
}

}  // namespace medvault::crypto
