// One-shot XChaCha20-Poly1305 (IETF) from libsodium.
//
// Sealed layout: nonce(24) || ciphertext || tag(16). The nonce is random; with
// 192-bit nonces random generation is safe for any realistic message count.
#include <sodium.h>

#include "crypto/crypto.h"

namespace medvault::crypto {

static_assert(kAeadNonceSize == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
static_assert(kAeadTagSize == crypto_aead_xchacha20poly1305_ietf_ABYTES);
static_assert(kKeySize == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);

namespace {

Status CheckKey(const SecretBytes& key) {
  if (key.size() != kKeySize) {
    return Status::InvalidArgument("AEAD key must be " + std::to_string(kKeySize) + " bytes, got " +
                                   std::to_string(key.size()));
  }
  return Status::Ok();
}

// Opens `sealed` into `out`, which must hold sealed.size() - kAeadOverhead bytes.
// REQUIRES: sealed.size() >= kAeadOverhead.
Status OpenInto(const SecretBytes& key, ByteView sealed, ByteView aad, uint8_t* out) {
  const uint8_t* nonce = sealed.data();
  const uint8_t* ct = sealed.data() + kAeadNonceSize;
  const size_t ct_len = sealed.size() - kAeadOverhead;
  const uint8_t* tag = ct + ct_len;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(out, nullptr, ct, ct_len, tag, aad.data(),
                                                          aad.size(), nonce, key.data()) != 0) {
    return Status::DataLoss(
        "AEAD authentication failed (wrong key, wrong binding or modified data)");
  }
  return Status::Ok();
}

Status CheckSealed(ByteView sealed) {
  if (sealed.size() < kAeadOverhead) {
    return Status::DataLoss("AEAD ciphertext is shorter than nonce and tag (" +
                            std::to_string(sealed.size()) + " bytes)");
  }
  return Status::Ok();
}

}  // namespace

Result<Bytes> AeadSeal(const SecretBytes& key, ByteView plaintext, ByteView aad) {
  MV_RETURN_IF_ERROR(CheckKey(key));
  if (plaintext.size() > crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX - kAeadOverhead) {
    return Status::InvalidArgument("AEAD plaintext too large");
  }
  Bytes out(kAeadOverhead + plaintext.size());
  uint8_t* nonce = out.data();
  uint8_t* ct = out.data() + kAeadNonceSize;
  randombytes_buf(nonce, kAeadNonceSize);
  crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
      ct, ct + plaintext.size(), nullptr, plaintext.data(), plaintext.size(), aad.data(),
      aad.size(), nullptr, nonce, key.data());
  return out;
}

Result<Bytes> AeadOpen(const SecretBytes& key, ByteView sealed, ByteView aad) {
  MV_RETURN_IF_ERROR(CheckKey(key));
  MV_RETURN_IF_ERROR(CheckSealed(sealed));
  Bytes out(sealed.size() - kAeadOverhead);
  MV_RETURN_IF_ERROR(OpenInto(key, sealed, aad, out.data()));
  return out;
}

Result<SecretBytes> AeadOpenSecret(const SecretBytes& key, ByteView sealed, ByteView aad) {
  MV_RETURN_IF_ERROR(CheckKey(key));
  MV_RETURN_IF_ERROR(CheckSealed(sealed));
  SecretBytes out(sealed.size() - kAeadOverhead);
  MV_RETURN_IF_ERROR(OpenInto(key, sealed, aad, out.data()));
  return out;
}

}  // namespace medvault::crypto
