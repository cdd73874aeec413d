// SHA-256 (OpenSSL 3), HMAC-SHA-256 and HKDF-SHA-256 (libsodium) and the keyed
// blind index.
#include <openssl/evp.h>
#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "crypto/crypto.h"

namespace medvault::crypto {
namespace {

constexpr size_t kSha256Size = 32;

// OpenSSL only fails these calls on allocation failure or a broken provider
// setup; neither is recoverable, and returning a wrong digest would be worse.
[[noreturn]] void Fatal(const char* what) {
  std::fprintf(stderr, "medvault: fatal OpenSSL failure in %s\n", what);
  std::abort();
}

// OpenSSL treats a NULL buffer as "not provided" in several places (HMAC keys,
// OSSL_PARAM octet strings), so empty inputs get a valid non-null pointer.
const uint8_t* NonNull(ByteView v) {
  static const uint8_t kEmpty[1] = {0};
  return v.empty() ? kEmpty : v.data();
}

// Fetched once: explicit fetching avoids a provider lookup on every call.
// The objects live for the whole process.
const EVP_MD* Sha256Md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (md == nullptr) {
    Fatal("EVP_MD_fetch(SHA256)");
  }
  return md;
}

// HMAC-SHA-256 over the concatenation of `parts`, on libsodium (RFC 2104 for
// keys of any length): OpenSSL 3's EVP_MAC costs several microseconds of
// provider dispatch per call, and an HMAC runs on every audited request (the
// ledger's patient pseudonym). Checked against the Wycheproof HMAC vectors.
Bytes Hmac(ByteView key, std::initializer_list<ByteView> parts) {
  crypto_auth_hmacsha256_state st;
  if (crypto_auth_hmacsha256_init(&st, NonNull(key), key.size()) != 0) {
    Fatal("crypto_auth_hmacsha256_init");
  }
  for (ByteView part : parts) {
    if (!part.empty()) {
      crypto_auth_hmacsha256_update(&st, part.data(), part.size());
    }
  }
  Bytes out(kSha256Size);
  crypto_auth_hmacsha256_final(&st, out.data());
  sodium_memzero(&st, sizeof(st));
  return out;
}

}  // namespace

Bytes Sha256(ByteView data) {
  Bytes out(kSha256Size);
  unsigned int len = 0;
  if (EVP_Digest(NonNull(data), data.size(), out.data(), &len, Sha256Md(), nullptr) != 1 ||
      len != kSha256Size) {
    Fatal("EVP_Digest");
  }
  return out;
}

Sha256Hasher::Sha256Hasher() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr ||
      EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), Sha256Md(), nullptr) != 1) {
    Fatal("EVP_DigestInit_ex");
  }
}

Sha256Hasher::~Sha256Hasher() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256Hasher::Update(ByteView data) {
  if (!data.empty() &&
      EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size()) != 1) {
    Fatal("EVP_DigestUpdate");
  }
}

// The contract says the hasher is not used after Finish(); re-initialising makes
// a stray use hash from scratch instead of touching a finalised context.
Bytes Sha256Hasher::Finish() {
  auto* ctx = static_cast<EVP_MD_CTX*>(ctx_);
  Bytes out(kSha256Size);
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx, out.data(), &len) != 1 || len != kSha256Size) {
    Fatal("EVP_DigestFinal_ex");
  }
  if (EVP_DigestInit_ex(ctx, Sha256Md(), nullptr) != 1) {
    Fatal("EVP_DigestInit_ex");
  }
  return out;
}

Bytes HmacSha256(const SecretBytes& key, ByteView data) { return Hmac(key.view(), {data}); }

Result<SecretBytes> HkdfSha256(ByteView ikm, ByteView salt, ByteView info, size_t length) {
  constexpr size_t kMaxLength = 255 * kSha256Size;
  if (length > kMaxLength) {
    return Status::InvalidArgument("HKDF-SHA-256 output length " + std::to_string(length) +
                                   " exceeds the maximum of " + std::to_string(kMaxLength));
  }
  SecretBytes out(length);
  if (length == 0) {
    return out;
  }
  // RFC 5869 on libsodium's HMAC-SHA-256: an order of magnitude faster than
  // OpenSSL 3's EVP_KDF for the 32-byte outputs of the key tree (the provider
  // dispatch dominates there), and checked against the same Wycheproof vectors.
  // An empty salt is HashLen zero bytes, which HMAC pads to the same key.
  uint8_t prk[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, NonNull(salt), salt.size());
  crypto_auth_hmacsha256_update(&st, NonNull(ikm), ikm.size());
  crypto_auth_hmacsha256_final(&st, prk);
  uint8_t block[crypto_auth_hmacsha256_BYTES];
  size_t done = 0;
  for (uint8_t counter = 1; done < length; ++counter) {
    crypto_auth_hmacsha256_init(&st, prk, sizeof prk);
    if (counter > 1) {
      crypto_auth_hmacsha256_update(&st, block, sizeof block);
    }
    crypto_auth_hmacsha256_update(&st, NonNull(info), info.size());
    crypto_auth_hmacsha256_update(&st, &counter, 1);
    crypto_auth_hmacsha256_final(&st, block);
    const size_t n = std::min(sizeof block, length - done);
    std::memcpy(out.data() + done, block, n);
    done += n;
  }
  sodium_memzero(prk, sizeof prk);
  sodium_memzero(block, sizeof block);
  sodium_memzero(&st, sizeof st);
  return out;
}

Bytes BlindIndex(const SecretBytes& key, std::string_view domain, std::string_view value) {
  static const uint8_t kSeparator[1] = {0};
  return Hmac(key.view(), {AsBytes(domain), ByteView(kSeparator), AsBytes(value)});
}

}  // namespace medvault::crypto
