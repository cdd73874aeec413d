// medvault cryptography: the public interface of src/crypto.
//
// Primitives come from libsodium (XChaCha20-Poly1305, secretstream, BLAKE2b,
// randomness) and OpenSSL (HKDF-SHA-256). Nothing here logs or stores keys.
// All functions are thread-safe once InitCrypto() has returned OK.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/secret.h"
#include "common/status.h"

namespace medvault::crypto {

inline constexpr size_t kKeySize = 32;

// Initialises libsodium. Call once at start; later calls are no-ops.
Status InitCrypto();

void RandomBytes(std::span<uint8_t> out);
SecretBytes RandomKey();  // kKeySize random bytes

// ---------------------------------------------------------------------------
// One-shot AEAD: XChaCha20-Poly1305 (IETF). Output = nonce(24) || ct || tag(16).
inline constexpr size_t kAeadNonceSize = 24;
inline constexpr size_t kAeadTagSize = 16;
inline constexpr size_t kAeadOverhead = kAeadNonceSize + kAeadTagSize;

// REQUIRES: key.size() == kKeySize.
Result<Bytes> AeadSeal(const SecretBytes& key, ByteView plaintext, ByteView aad);
// DataLoss when the tag does not verify (wrong key, wrong aad, modified bytes).
Result<Bytes> AeadOpen(const SecretBytes& key, ByteView sealed, ByteView aad);
// Variant for secrets: the plaintext goes straight into locked memory.
Result<SecretBytes> AeadOpenSecret(const SecretBytes& key, ByteView sealed, ByteView aad);

// ---------------------------------------------------------------------------
// HKDF-SHA-256 (RFC 5869), via OpenSSL. InvalidArgument when `length` > 255*32.
Result<SecretBytes> HkdfSha256(ByteView ikm, ByteView salt, ByteView info, size_t length);

// SHA-256 and HMAC-SHA-256 (OpenSSL).
Bytes Sha256(ByteView data);
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;
  void Update(ByteView data);
  Bytes Finish();  // 32 bytes; the hasher must not be used afterwards

 private:
  void* ctx_;
};
Bytes HmacSha256(const SecretBytes& key, ByteView data);

// ---------------------------------------------------------------------------
// Patient key tree.
//
// A node's key is HKDF-SHA-256(ikm = parent key, salt = "medvault/v1/key-tree",
// info = child name), so a holder of one subtree's key can derive every key
// below it and nothing beside or above it. Names are the path components of a
// segment path ("internal-medicine", "cardiology", ...).
Result<SecretBytes> DeriveChildKey(const SecretBytes& parent, std::string_view child_name);
// Walks `path` ("a/b/c") from `root`. The empty path returns a copy of root.
Result<SecretBytes> DeriveKeyForPath(const SecretBytes& root, std::string_view path);

// Purpose keys derived from a patient root, outside the segment tree (for
// example "demographics"): HKDF with salt "medvault/v1/purpose".
Result<SecretBytes> DerivePurposeKey(const SecretBytes& root, std::string_view purpose);

// ---------------------------------------------------------------------------
// Keyed blind index for equality lookups on encrypted fields:
// HMAC-SHA-256(key, domain || 0x00 || value). The caller normalises `value`.
Bytes BlindIndex(const SecretBytes& key, std::string_view domain, std::string_view value);

// ---------------------------------------------------------------------------
// Key provider: holds the platform key-encryption key (KEK) and never lets it
// out. The default keeps it in a file; a PKCS#11 provider can follow.
class KeyProvider {
 public:
  virtual ~KeyProvider() = default;
  // Wraps `key` under the KEK with `aad` bound (AEAD). Output is opaque.
  virtual Result<Bytes> WrapKey(const SecretBytes& key, ByteView aad) = 0;
  // DataLoss when `wrapped` or `aad` was altered or the KEK differs.
  virtual Result<SecretBytes> UnwrapKey(ByteView wrapped, ByteView aad) = 0;
  // A key for a platform-wide purpose (e.g. "blind-index"), derived from the KEK.
  // Deterministic: the same purpose gives the same key across restarts.
  virtual Result<SecretBytes> DerivePlatformKey(std::string_view purpose) = 0;
  // A short public identifier of the KEK (for the header of wrapped keys).
  virtual std::string KeyId() const = 0;
};

// The key file: "MVKEK1\n" magic line followed by 32 random bytes, mode 0600.
// Create fails with AlreadyExists rather than overwrite an existing file.
Status CreateKeyFile(const std::filesystem::path& path);
// Fails with FailedPrecondition when the file is readable by group or others,
// DataLoss when the content is malformed.
Result<std::unique_ptr<KeyProvider>> OpenFileKeyProvider(const std::filesystem::path& path);

// ---------------------------------------------------------------------------
// Object envelope: streaming encryption of a stored object.
//
// Each object gets a fresh random data key (DK). The DK is wrapped by the node
// key (AeadSeal with the object AAD) and placed in a fixed-size header; the
// body is libsodium secretstream (XChaCha20-Poly1305) in chunks of
// kEnvelopeChunkSize plaintext bytes, each chunk authenticated with the object
// AAD, the last one tagged FINAL so truncation and extension are detected.
// The exact layout is in docs/formats.md.
inline constexpr size_t kEnvelopeChunkSize = 64 * 1024;
inline constexpr uint8_t kEnvelopeVersion = 1;

// Canonical associated data binding an object to its place. Moving a
// ciphertext to another patient, path, version or object id makes it fail.
Bytes ObjectAad(std::string_view patient_id, std::string_view path, uint64_t version,
                std::string_view object_id);

class EnvelopeSealer {
 public:
  // REQUIRES: node_key.size() == kKeySize.
  static Result<std::unique_ptr<EnvelopeSealer>> Create(const SecretBytes& node_key, Bytes aad);
  ~EnvelopeSealer();
  EnvelopeSealer(const EnvelopeSealer&) = delete;
  EnvelopeSealer& operator=(const EnvelopeSealer&) = delete;

  // The fixed-size header; write it first.
  const Bytes& header() const { return header_; }
  // Encrypts plaintext and appends ciphertext to `out`. Input of any size is
  // buffered into chunks. After Finish() the sealer refuses further input.
  Status Update(ByteView plaintext, Bytes& out);
  Status Finish(Bytes& out);

 private:
  EnvelopeSealer() = default;
  Status EmitChunk(ByteView chunk, bool final, Bytes& out);
  Bytes header_;
  Bytes aad_;
  Bytes pending_;
  SecretBytes data_key_;
  struct State;
  std::unique_ptr<State> state_;
  bool finished_ = false;
};

class EnvelopeOpener {
 public:
  // Size of the header that Create expects.
  static size_t HeaderSize();
  // Parses and authenticates the header: InvalidArgument/DataLoss when it is
  // malformed, of an unknown version, or does not open with node_key + aad.
  static Result<std::unique_ptr<EnvelopeOpener>> Create(const SecretBytes& node_key, Bytes aad,
                                                        ByteView header);
  ~EnvelopeOpener();
  EnvelopeOpener(const EnvelopeOpener&) = delete;
  EnvelopeOpener& operator=(const EnvelopeOpener&) = delete;

  // Decrypts ciphertext (any split) and appends plaintext to `out`.
  // DataLoss on any authentication failure, and for data after the FINAL chunk.
  Status Update(ByteView ciphertext, Bytes& out);
  // DataLoss when the stream ended before its FINAL chunk (truncation).
  Status Finish(Bytes& out);

 private:
  EnvelopeOpener() = default;
  Status OpenChunk(ByteView chunk, Bytes& out);
  Bytes aad_;
  Bytes pending_;
  SecretBytes data_key_;
  struct State;
  std::unique_ptr<State> state_;
  bool saw_final_ = false;
};

// Whole-buffer conveniences built on the streaming classes.
Result<Bytes> SealObject(const SecretBytes& node_key, ByteView aad, ByteView plaintext);
Result<Bytes> OpenObject(const SecretBytes& node_key, ByteView aad, ByteView sealed);

}  // namespace medvault::crypto
