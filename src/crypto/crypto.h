// medvault cryptography: the public interface of src/crypto.
//
// Primitives come from libsodium (XChaCha20-Poly1305, secretstream, BLAKE2b,
// randomness) and OpenSSL (HKDF-SHA-256). Nothing here logs or stores keys.
// All functions are thread-safe once InitCrypto() has returned OK.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

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
// Every node at version 1.
Result<SecretBytes> DeriveKeyForPath(const SecretBytes& root, std::string_view path);

// Versioned node keys, so that one subtree's key can be replaced (rotated
// after a revocation) without touching its siblings. Version 1 is exactly
// DeriveChildKey(parent, name) above; version v >= 2 is HKDF-SHA-256(ikm =
// parent key, salt = "medvault/v1/key-tree", info = name || 0x00 || u32be(v)).
// Child names never contain NUL (InvalidArgument), so the spellings are
// distinct. InvalidArgument for version 0 or above kMaxNodeKeyVersion.
inline constexpr uint32_t kMaxNodeKeyVersion = 1u << 24;
Result<SecretBytes> DeriveChildKey(const SecretBytes& parent, std::string_view child_name,
                                   uint32_t version);
// As DeriveKeyForPath, with versions[i] the version of the node named by the
// first i + 1 components of `path`; components beyond versions.size() are at
// version 1. InvalidArgument when versions has more entries than components.
Result<SecretBytes> DeriveKeyForPath(const SecretBytes& root, std::string_view path,
                                     std::span<const uint32_t> versions);

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
// Each object gets a fresh random data key (DK). The DK is wrapped into one or
// more key slots (one per node-key version or, later, per recipient) in the
// header; the body is libsodium secretstream (XChaCha20-Poly1305) in chunks of
// kEnvelopeChunkSize plaintext bytes, each chunk authenticated with the object
// AAD, the last one tagged FINAL so truncation and extension are detected.
// Version 2 (written) has a variable list of key slots; version 1 (read only)
// had one fixed wrapped key. The exact layouts are in docs/formats.md.
inline constexpr size_t kEnvelopeChunkSize = 64 * 1024;
inline constexpr uint8_t kEnvelopeVersion = 2;
inline constexpr uint8_t kEnvelopeVersionV1 = 1;
// Bytes of a header needed to learn its full size (EnvelopeHeaderSize).
inline constexpr size_t kEnvelopeHeaderPrefixSize = 14;
inline constexpr size_t kMaxKeySlots = 16;

// Canonical associated data binding an object to its place. Moving a
// ciphertext to another patient, path, version or object id makes it fail.
Bytes ObjectAad(std::string_view patient_id, std::string_view path, uint64_t version,
                std::string_view object_id);

// One wrapped copy of an object's data key.
enum class KeySlotKind : uint8_t {
  // The single wrapped key of a version-1 header: node key version 1, wrapped
  // with the object AAD alone. Only ever read from version-1 headers.
  kNodeKeyV1 = 0,
  // AeadSeal(node key of `key_version`, DK, KeySlotAad(aad, kind, key_version)).
  kNodeKey = 1,
  // Reserved for a DK sealed to a recipient's public key (sharing); readers
  // that look for a node-key slot skip it, as they skip unknown kinds.
  kRecipient = 2,
};
struct KeySlot {
  uint8_t kind = 0;  // a KeySlotKind, or an unknown kind kept as read
  uint32_t key_version = 0;
  Bytes wrapped;  // 1..1024 bytes
};
// Slot lists outside an object (the metadata store keeps re-wrapped slots):
// count u8 (1..kMaxKeySlots), then per slot kind u8 | key_version u32le |
// size u16le | wrapped. Encode: InvalidArgument for an unencodable list (kind
// kNodeKeyV1, empty or oversized wrapped key, count out of range). Decode:
// DataLoss when malformed.
Result<Bytes> EncodeKeySlots(std::span<const KeySlot> slots);
Result<std::vector<KeySlot>> DecodeKeySlots(ByteView encoded);

// Full header size from its first kEnvelopeHeaderPrefixSize bytes: DataLoss
// for an unknown magic or version, InvalidArgument for a short prefix.
Result<size_t> EnvelopeHeaderSize(ByteView prefix);
// The key slots of a whole header, unauthenticated (a version-1 header gives
// one kNodeKeyV1 slot). DataLoss when malformed.
Result<std::vector<KeySlot>> ReadKeySlots(ByteView header);

// Re-wrapping for a node-key rotation: opens the DK from the node-key slot of
// `old_version` in `slots` with `old_key`, and wraps it into a new kNodeKey
// slot for (`new_key`, `new_version`). The body is not touched. DataLoss when
// no slot of old_version opens.
Result<KeySlot> RewrapKeySlot(std::span<const KeySlot> slots, const SecretBytes& old_key,
                              uint32_t old_version, const SecretBytes& new_key,
                              uint32_t new_version, ByteView aad);

class EnvelopeSealer {
 public:
  // Writes a version-2 header with one kNodeKey slot for `key_version`.
  // REQUIRES: node_key.size() == kKeySize.
  static Result<std::unique_ptr<EnvelopeSealer>> Create(const SecretBytes& node_key,
                                                        uint32_t key_version, Bytes aad);
  // Node key version 1.
  static Result<std::unique_ptr<EnvelopeSealer>> Create(const SecretBytes& node_key, Bytes aad);
  ~EnvelopeSealer();
  EnvelopeSealer(const EnvelopeSealer&) = delete;
  EnvelopeSealer& operator=(const EnvelopeSealer&) = delete;

  // The header; write it first.
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
  // Parses the header (EnvelopeHeaderSize bytes) and opens the data key from
  // the node-key slot of `key_version`: from `slots` when given (slots
  // re-wrapped after a rotation, kept outside the immutable object), else
  // from the header's own slots. InvalidArgument for a header of the wrong
  // size; DataLoss when it is malformed, of an unknown version, has no slot
  // for key_version, or the slot does not open with node_key + aad.
  static Result<std::unique_ptr<EnvelopeOpener>> Create(
      const SecretBytes& node_key, uint32_t key_version, Bytes aad, ByteView header,
      const std::vector<KeySlot>* slots = nullptr);
  // Node key version 1, the header's slots.
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

// Whole-buffer conveniences built on the streaming classes (same bytes).
Result<Bytes> SealObject(const SecretBytes& node_key, ByteView aad, ByteView plaintext,
                         uint32_t key_version = 1);
Result<Bytes> OpenObject(const SecretBytes& node_key, ByteView aad, ByteView sealed,
                         uint32_t key_version = 1, const std::vector<KeySlot>* slots = nullptr);

}  // namespace medvault::crypto
