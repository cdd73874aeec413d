// Object envelope: a per-object data key in key slots plus a libsodium secretstream body.
//
// Layout (all integers little-endian; docs/formats.md has the grammar):
//   header, version 2 (written), variable size:
//     magic "MVE1" (4) | version u8 = 2 | algorithm u8 = 1 (secretstream
//     XChaCha20-Poly1305) | reserved u16 = 0 | chunk_size u32 = 65536 |
//     slots_size u16 | key slots (slots_size bytes: count u8, then per slot
//     kind u8 | key_version u32 | size u16 | wrapped) | secretstream header (24)
//   header, version 1 (read only), 108 bytes:
//     the same 12 fixed bytes | wrapped data key = AeadSeal(node_key, DK,
//     object AAD) (72) | secretstream header (24)
//   body: chunks, each chunk_size plaintext bytes + 17 bytes of overhead, except
//     the last, which holds 0..chunk_size plaintext bytes and carries TAG_FINAL.
//     Empty plaintext is one empty FINAL chunk. Every chunk has the object AAD as
//     its additional data.
//
// A node-key slot wraps the DK with AAD = "medvault/v2/key-slot" || LP(object
// AAD) || kind u8 || key_version u32, so a slot cannot be relabelled to another
// key version or moved to another object. The header's fixed fields are not
// covered by a MAC, but each must equal the one supported value exactly, and
// the slot list must parse exactly, so altering any of them makes opening
// fail. Every failure of stored bytes (any header field, a slot, any chunk,
// truncation, extension) is DataLoss with a message naming the cause;
// InvalidArgument is only for caller errors (key size, header length).
#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "crypto/crypto.h"

namespace medvault::crypto {
namespace {

using StreamState = crypto_secretstream_xchacha20poly1305_state;

constexpr uint8_t kMagic[4] = {'M', 'V', 'E', '1'};
constexpr uint8_t kAlgorithmSecretstream = 1;
constexpr size_t kFixedFieldsSize = 4 + 1 + 1 + 2 + 4;
constexpr size_t kWrappedKeySize = kAeadOverhead + kKeySize;
constexpr size_t kStreamHeaderSize = crypto_secretstream_xchacha20poly1305_HEADERBYTES;
constexpr size_t kHeaderSizeV1 = kFixedFieldsSize + kWrappedKeySize + kStreamHeaderSize;
constexpr size_t kMaxWrappedSize = 1024;
constexpr size_t kMaxSlotsSize = 1 + kMaxKeySlots * (1 + 4 + 2 + kMaxWrappedSize);
constexpr size_t kChunkOverhead = crypto_secretstream_xchacha20poly1305_ABYTES;
constexpr size_t kSealedChunkSize = kEnvelopeChunkSize + kChunkOverhead;
constexpr std::string_view kAadDomain = "medvault/v1/object";
constexpr std::string_view kSlotAadDomain = "medvault/v2/key-slot";

static_assert(kHeaderSizeV1 == 108);
static_assert(kEnvelopeHeaderPrefixSize == kFixedFieldsSize + 2);
static_assert(kMaxSlotsSize <= 0xffff);
static_assert(kStreamHeaderSize == 24);
static_assert(crypto_secretstream_xchacha20poly1305_KEYBYTES == kKeySize);

// Secretstream state that is wiped when it goes out of scope: it holds the
// per-stream subkey.
struct WipedStreamState {
  WipedStreamState() = default;
  ~WipedStreamState() { sodium_memzero(&ss, sizeof(ss)); }
  WipedStreamState(const WipedStreamState&) = delete;
  WipedStreamState& operator=(const WipedStreamState&) = delete;
  StreamState ss;
};

Status CheckNodeKey(const SecretBytes& node_key) {
  if (node_key.size() != kKeySize) {
    return Status::InvalidArgument("envelope node key must be " + std::to_string(kKeySize) +
                                   " bytes, got " + std::to_string(node_key.size()));
  }
  return Status::Ok();
}

// Makes room for `extra` more bytes without defeating geometric growth when
// called repeatedly with small amounts.
void ReserveMore(Bytes& out, size_t extra) {
  if (out.capacity() - out.size() < extra) {
    out.reserve(std::max(out.size() + extra, 2 * out.capacity()));
  }
}

// Number of sealed chunks for a plaintext of `n` bytes.
size_t ChunkCount(size_t n) {
  return n == 0 ? 1 : (n + kEnvelopeChunkSize - 1) / kEnvelopeChunkSize;
}

Bytes SlotAad(ByteView aad, uint8_t kind, uint32_t key_version) {
  Bytes out(kSlotAadDomain.begin(), kSlotAadDomain.end());
  out.reserve(kSlotAadDomain.size() + 4 + aad.size() + 1 + 4);
  PutLengthPrefixed(out, aad);
  PutU8(out, kind);
  PutU32(out, key_version);
  return out;
}

Status CheckKeyVersion(uint32_t key_version) {
  if (key_version == 0) {
    return Status::InvalidArgument("envelope key version must be at least 1");
  }
  return Status::Ok();
}

Result<KeySlot> WrapNodeKeySlot(const SecretBytes& node_key, uint32_t key_version, ByteView dk,
                                ByteView aad) {
  MV_RETURN_IF_ERROR(CheckNodeKey(node_key));
  MV_RETURN_IF_ERROR(CheckKeyVersion(key_version));
  const uint8_t kind = static_cast<uint8_t>(KeySlotKind::kNodeKey);
  KeySlot slot;
  slot.kind = kind;
  slot.key_version = key_version;
  MV_ASSIGN_OR_RETURN(slot.wrapped, AeadSeal(node_key, dk, SlotAad(aad, kind, key_version)));
  return slot;
}

// Opens the DK from the node-key slot of `key_version` among `slots`.
Result<SecretBytes> OpenNodeKeySlot(std::span<const KeySlot> slots, const SecretBytes& node_key,
                                    uint32_t key_version, ByteView aad) {
  MV_RETURN_IF_ERROR(CheckNodeKey(node_key));
  MV_RETURN_IF_ERROR(CheckKeyVersion(key_version));
  for (const KeySlot& slot : slots) {
    Result<SecretBytes> dk = Status::NotFound("");
    if (slot.kind == static_cast<uint8_t>(KeySlotKind::kNodeKey) &&
        slot.key_version == key_version) {
      dk = AeadOpenSecret(node_key, slot.wrapped, SlotAad(aad, slot.kind, slot.key_version));
    } else if (slot.kind == static_cast<uint8_t>(KeySlotKind::kNodeKeyV1) && key_version == 1) {
      dk = AeadOpenSecret(node_key, slot.wrapped, aad);
    } else {
      continue;  // another version, a recipient, or a kind this build does not know
    }
    if (!dk.ok() || dk->size() != kKeySize) {
      return Status::DataLoss(
          "envelope data key does not open: wrong node key, object bound to another "
          "patient/path/version/id, or corrupted key slot");
    }
    return dk;
  }
  return Status::DataLoss("envelope has no key slot for node key version " +
                          std::to_string(key_version));
}

Status AppendSlot(Bytes& out, const KeySlot& slot) {
  if (slot.kind == static_cast<uint8_t>(KeySlotKind::kNodeKeyV1)) {
    return Status::InvalidArgument("a version-1 key slot cannot be written into a slot list");
  }
  if (slot.wrapped.empty() || slot.wrapped.size() > kMaxWrappedSize) {
    return Status::InvalidArgument("a wrapped key in a slot must be 1.." +
                                   std::to_string(kMaxWrappedSize) + " bytes");
  }
  PutU8(out, slot.kind);
  PutU32(out, slot.key_version);
  PutU16(out, static_cast<uint16_t>(slot.wrapped.size()));
  out.insert(out.end(), slot.wrapped.begin(), slot.wrapped.end());
  return Status::Ok();
}

// Checks the 12 fixed bytes and returns the version (1 or 2).
Result<uint8_t> CheckFixedFields(ByteView fixed) {
  ByteReader reader(fixed);
  ByteView magic;
  uint8_t version = 0;
  uint8_t algorithm = 0;
  uint16_t reserved = 0;
  uint32_t chunk_size = 0;
  if (!reader.ReadBytes(sizeof(kMagic), &magic) || !reader.ReadU8(&version) ||
      !reader.ReadU8(&algorithm) || !reader.ReadU16(&reserved) || !reader.ReadU32(&chunk_size)) {
    return Status::Internal("envelope header reader out of step with kFixedFieldsSize");
  }
  if (std::memcmp(magic.data(), kMagic, sizeof(kMagic)) != 0) {
    return Status::DataLoss("envelope magic is not MVE1: not a medvault envelope, or corrupted");
  }
  if (version != kEnvelopeVersion && version != kEnvelopeVersionV1) {
    return Status::DataLoss("unsupported envelope version " + std::to_string(version) +
                            " (this build reads versions 1 and 2)");
  }
  if (algorithm != kAlgorithmSecretstream) {
    return Status::DataLoss("unsupported envelope algorithm " + std::to_string(algorithm) +
                            " (this build reads 1, secretstream XChaCha20-Poly1305)");
  }
  if (reserved != 0) {
    return Status::DataLoss("envelope reserved field is " + std::to_string(reserved) +
                            ", must be 0");
  }
  if (chunk_size != kEnvelopeChunkSize) {
    return Status::DataLoss("unsupported envelope chunk size " + std::to_string(chunk_size) +
                            " (this build reads " + std::to_string(kEnvelopeChunkSize) + ")");
  }
  return version;
}

struct ParsedHeader {
  std::vector<KeySlot> slots;
  ByteView stream_header;
};

// Parses a whole header (either version). InvalidArgument when `header` is
// not exactly the size its prefix announces.
Result<ParsedHeader> ParseHeader(ByteView header) {
  MV_ASSIGN_OR_RETURN(size_t size, EnvelopeHeaderSize(header));
  if (header.size() != size) {
    return Status::InvalidArgument("envelope header must be " + std::to_string(size) +
                                   " bytes, got " + std::to_string(header.size()));
  }
  ParsedHeader parsed;
  if (header[4] == kEnvelopeVersionV1) {
    KeySlot slot;
    slot.kind = static_cast<uint8_t>(KeySlotKind::kNodeKeyV1);
    slot.key_version = 1;
    const ByteView wrapped = header.subspan(kFixedFieldsSize, kWrappedKeySize);
    slot.wrapped.assign(wrapped.begin(), wrapped.end());
    parsed.slots.push_back(std::move(slot));
  } else {
    const size_t slots_size = size - kEnvelopeHeaderPrefixSize - kStreamHeaderSize;
    MV_ASSIGN_OR_RETURN(parsed.slots,
                        DecodeKeySlots(header.subspan(kEnvelopeHeaderPrefixSize, slots_size)));
  }
  parsed.stream_header = header.last(kStreamHeaderSize);
  return parsed;
}

// Draws a fresh data key, appends a version-2 header to `out` and starts `ss`.
Status SealHeader(const SecretBytes& node_key, uint32_t key_version, ByteView aad, StreamState& ss,
                  Bytes& out) {
  MV_RETURN_IF_ERROR(CheckNodeKey(node_key));
  MV_RETURN_IF_ERROR(CheckKeyVersion(key_version));
  // The data key lives only for the duration of this call, in a stack buffer
  // wiped on every path. A SecretBytes would cost an mlock/munlock pair per
  // object (a measurable share of sealing a 64 KiB object) for a key that is
  // never held beyond these few microseconds.
  struct DataKey {
    ~DataKey() { sodium_memzero(bytes, sizeof(bytes)); }
    uint8_t bytes[kKeySize];
  } data_key;
  randombytes_buf(data_key.bytes, sizeof(data_key.bytes));
  MV_ASSIGN_OR_RETURN(KeySlot slot,
                      WrapNodeKeySlot(node_key, key_version, ByteView(data_key.bytes), aad));
  MV_ASSIGN_OR_RETURN(Bytes slots, EncodeKeySlots(std::span<const KeySlot>(&slot, 1)));
  const size_t header_size = kEnvelopeHeaderPrefixSize + slots.size() + kStreamHeaderSize;
  ReserveMore(out, header_size);
  const size_t start = out.size();
  out.insert(out.end(), std::begin(kMagic), std::end(kMagic));
  PutU8(out, kEnvelopeVersion);
  PutU8(out, kAlgorithmSecretstream);
  PutU16(out, 0);
  PutU32(out, static_cast<uint32_t>(kEnvelopeChunkSize));
  PutU16(out, static_cast<uint16_t>(slots.size()));
  out.insert(out.end(), slots.begin(), slots.end());
  const size_t stream_header = out.size();
  out.resize(start + header_size);
  crypto_secretstream_xchacha20poly1305_init_push(&ss, out.data() + stream_header, data_key.bytes);
  return Status::Ok();
}

// Parses `header`, opens the data key from the node-key slot of `key_version`
// (in `override_slots` when given, else the header's) and starts `ss`.
Status OpenHeader(const SecretBytes& node_key, uint32_t key_version, ByteView aad, ByteView header,
                  const std::vector<KeySlot>* override_slots, StreamState& ss) {
  MV_RETURN_IF_ERROR(CheckNodeKey(node_key));
  MV_ASSIGN_OR_RETURN(ParsedHeader parsed, ParseHeader(header));
  MV_ASSIGN_OR_RETURN(SecretBytes data_key,
                      OpenNodeKeySlot(override_slots != nullptr ? *override_slots : parsed.slots,
                                      node_key, key_version, aad));
  if (crypto_secretstream_xchacha20poly1305_init_pull(&ss, parsed.stream_header.data(),
                                                      data_key.data()) != 0) {
    return Status::DataLoss("envelope stream header is invalid");
  }
  return Status::Ok();
}

// Encrypts one chunk and appends it to `out`.
// REQUIRES: chunk.size() <= kEnvelopeChunkSize, and == unless `final`.
void PushChunk(StreamState& ss, ByteView aad, ByteView chunk, bool final, Bytes& out) {
  const size_t start = out.size();
  out.resize(start + chunk.size() + kChunkOverhead);
  crypto_secretstream_xchacha20poly1305_push(
      &ss, out.data() + start, nullptr, chunk.data(), chunk.size(), aad.data(), aad.size(),
      final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
            : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
}

// Authenticates and decrypts one sealed chunk, appending its plaintext to
// `out` only when it verifies. Sets *final when the chunk carries TAG_FINAL.
// A non-final chunk must be full size: a short one means the stream was cut.
Status PullChunk(StreamState& ss, ByteView aad, ByteView chunk, Bytes& out, bool* final) {
  if (chunk.size() < kChunkOverhead) {
    return Status::DataLoss("envelope ends inside a chunk (truncated)");
  }
  const size_t start = out.size();
  out.resize(start + chunk.size() - kChunkOverhead);
  unsigned char tag = 0;
  if (crypto_secretstream_xchacha20poly1305_pull(&ss, out.data() + start, nullptr, &tag,
                                                 chunk.data(), chunk.size(), aad.data(),
                                                 aad.size()) != 0) {
    out.resize(start);
    return Status::DataLoss(
        "envelope chunk failed authentication (modified, reordered, or bound to another object)");
  }
  if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
    *final = true;
    return Status::Ok();
  }
  if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
    out.resize(start);
    return Status::DataLoss("envelope chunk has an unexpected tag " + std::to_string(tag));
  }
  if (chunk.size() != kSealedChunkSize) {
    out.resize(start);
    return Status::DataLoss("envelope ends without its final chunk (truncated)");
  }
  *final = false;
  return Status::Ok();
}

Status DataAfterFinal() { return Status::DataLoss("envelope has data after its final chunk"); }
Status Truncated() { return Status::DataLoss("envelope ends without its final chunk (truncated)"); }

// Overwrites a buffer of plaintext, including its spare capacity, then empties it.
void WipeBuffer(Bytes& buf) {
  buf.resize(buf.capacity());
  if (!buf.empty()) {
    sodium_memzero(buf.data(), buf.size());
  }
  buf.clear();
}

}  // namespace

Bytes ObjectAad(std::string_view patient_id, std::string_view path, uint64_t version,
                std::string_view object_id) {
  // Domain string, then every variable field length-prefixed, so that no two
  // distinct tuples encode to the same bytes.
  Bytes out(kAadDomain.begin(), kAadDomain.end());
  out.reserve(kAadDomain.size() + 3 * 4 + 8 + patient_id.size() + path.size() + object_id.size());
  PutLengthPrefixed(out, AsBytes(patient_id));
  PutLengthPrefixed(out, AsBytes(path));
  PutU64(out, version);
  PutLengthPrefixed(out, AsBytes(object_id));
  return out;
}

Result<Bytes> EncodeKeySlots(std::span<const KeySlot> slots) {
  if (slots.empty() || slots.size() > kMaxKeySlots) {
    return Status::InvalidArgument("a key slot list holds 1.." + std::to_string(kMaxKeySlots) +
                                   " slots");
  }
  Bytes out;
  PutU8(out, static_cast<uint8_t>(slots.size()));
  for (const KeySlot& slot : slots) {
    MV_RETURN_IF_ERROR(AppendSlot(out, slot));
  }
  return out;
}

Result<std::vector<KeySlot>> DecodeKeySlots(ByteView encoded) {
  ByteReader reader(encoded);
  uint8_t count = 0;
  if (!reader.ReadU8(&count) || count == 0 || count > kMaxKeySlots) {
    return Status::DataLoss("envelope key slot list has a bad count");
  }
  std::vector<KeySlot> slots(count);
  for (KeySlot& slot : slots) {
    uint16_t size = 0;
    ByteView wrapped;
    if (!reader.ReadU8(&slot.kind) || !reader.ReadU32(&slot.key_version) ||
        !reader.ReadU16(&size) || size == 0 || size > kMaxWrappedSize ||
        !reader.ReadBytes(size, &wrapped)) {
      return Status::DataLoss("envelope key slot is truncated or oversized");
    }
    if (slot.kind == static_cast<uint8_t>(KeySlotKind::kNodeKeyV1)) {
      return Status::DataLoss("envelope key slot of kind 0 outside a version-1 header");
    }
    slot.wrapped.assign(wrapped.begin(), wrapped.end());
  }
  if (!reader.AtEnd()) {
    return Status::DataLoss("envelope key slot list has trailing bytes");
  }
  return slots;
}

Result<size_t> EnvelopeHeaderSize(ByteView prefix) {
  if (prefix.size() < kEnvelopeHeaderPrefixSize) {
    return Status::InvalidArgument("an envelope header prefix is " +
                                   std::to_string(kEnvelopeHeaderPrefixSize) + " bytes, got " +
                                   std::to_string(prefix.size()));
  }
  MV_ASSIGN_OR_RETURN(uint8_t version, CheckFixedFields(prefix.first(kFixedFieldsSize)));
  if (version == kEnvelopeVersionV1) {
    return kHeaderSizeV1;
  }
  const size_t slots_size = static_cast<size_t>(prefix[kFixedFieldsSize]) |
                            (static_cast<size_t>(prefix[kFixedFieldsSize + 1]) << 8);
  if (slots_size == 0 || slots_size > kMaxSlotsSize) {
    return Status::DataLoss("envelope key slots size " + std::to_string(slots_size) +
                            " is out of range");
  }
  return kEnvelopeHeaderPrefixSize + slots_size + kStreamHeaderSize;
}

Result<std::vector<KeySlot>> ReadKeySlots(ByteView header) {
  MV_ASSIGN_OR_RETURN(ParsedHeader parsed, ParseHeader(header));
  return std::move(parsed.slots);
}

Result<KeySlot> RewrapKeySlot(std::span<const KeySlot> slots, const SecretBytes& old_key,
                              uint32_t old_version, const SecretBytes& new_key,
                              uint32_t new_version, ByteView aad) {
  MV_ASSIGN_OR_RETURN(SecretBytes dk, OpenNodeKeySlot(slots, old_key, old_version, aad));
  return WrapNodeKeySlot(new_key, new_version, dk.view(), aad);
}

// ---------------------------------------------------------------------------
// EnvelopeSealer

// The data key itself is not kept: after init_push the stream state holds the
// only (derived) key material needed, and it is wiped on destruction.
struct EnvelopeSealer::State {
  WipedStreamState stream;
};

Result<std::unique_ptr<EnvelopeSealer>> EnvelopeSealer::Create(const SecretBytes& node_key,
                                                               Bytes aad) {
  return Create(node_key, 1, std::move(aad));
}

Result<std::unique_ptr<EnvelopeSealer>> EnvelopeSealer::Create(const SecretBytes& node_key,
                                                               uint32_t key_version, Bytes aad) {
  std::unique_ptr<EnvelopeSealer> sealer(new EnvelopeSealer());
  sealer->state_ = std::make_unique<State>();
  MV_RETURN_IF_ERROR(
      SealHeader(node_key, key_version, aad, sealer->state_->stream.ss, sealer->header_));
  sealer->aad_ = std::move(aad);
  return sealer;
}

EnvelopeSealer::~EnvelopeSealer() { WipeBuffer(pending_); }

Status EnvelopeSealer::EmitChunk(ByteView chunk, bool final, Bytes& out) {
  PushChunk(state_->stream.ss, aad_, chunk, final, out);
  return Status::Ok();
}

Status EnvelopeSealer::Update(ByteView plaintext, Bytes& out) {
  if (finished_) {
    return Status::FailedPrecondition("envelope sealer already finished");
  }
  if (plaintext.empty()) {
    return Status::Ok();
  }
  // The last full chunk seen so far may turn out to be the final one, so up to
  // one chunk is always held back until more input or Finish() arrives.
  const size_t total = pending_.size() + plaintext.size();
  const size_t emit = total > kEnvelopeChunkSize ? (total - 1) / kEnvelopeChunkSize : 0;
  ReserveMore(out, emit * kSealedChunkSize);

  if (!pending_.empty()) {
    const size_t take = std::min(kEnvelopeChunkSize - pending_.size(), plaintext.size());
    pending_.insert(pending_.end(), plaintext.begin(), plaintext.begin() + take);
    plaintext = plaintext.subspan(take);
    if (plaintext.empty()) {
      return Status::Ok();
    }
    MV_RETURN_IF_ERROR(EmitChunk(pending_, /*final=*/false, out));
    pending_.clear();
  }
  // Full chunks followed by more input are encrypted straight from the caller's buffer.
  while (plaintext.size() > kEnvelopeChunkSize) {
    MV_RETURN_IF_ERROR(EmitChunk(plaintext.first(kEnvelopeChunkSize), /*final=*/false, out));
    plaintext = plaintext.subspan(kEnvelopeChunkSize);
  }
  if (pending_.capacity() < kEnvelopeChunkSize) {
    pending_.reserve(kEnvelopeChunkSize);
  }
  pending_.insert(pending_.end(), plaintext.begin(), plaintext.end());
  return Status::Ok();
}

Status EnvelopeSealer::Finish(Bytes& out) {
  if (finished_) {
    return Status::FailedPrecondition("envelope sealer already finished");
  }
  ReserveMore(out, pending_.size() + kChunkOverhead);
  MV_RETURN_IF_ERROR(EmitChunk(pending_, /*final=*/true, out));
  WipeBuffer(pending_);
  finished_ = true;
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// EnvelopeOpener

// `failed` poisons the opener after the first integrity failure: a stream
// that failed once must not yield more plaintext.
struct EnvelopeOpener::State {
  WipedStreamState stream;
  bool failed = false;
};

Result<std::unique_ptr<EnvelopeOpener>> EnvelopeOpener::Create(const SecretBytes& node_key,
                                                               Bytes aad, ByteView header) {
  return Create(node_key, 1, std::move(aad), header, nullptr);
}

Result<std::unique_ptr<EnvelopeOpener>> EnvelopeOpener::Create(const SecretBytes& node_key,
                                                               uint32_t key_version, Bytes aad,
                                                               ByteView header,
                                                               const std::vector<KeySlot>* slots) {
  std::unique_ptr<EnvelopeOpener> opener(new EnvelopeOpener());
  opener->state_ = std::make_unique<State>();
  MV_RETURN_IF_ERROR(
      OpenHeader(node_key, key_version, aad, header, slots, opener->state_->stream.ss));
  opener->aad_ = std::move(aad);
  return opener;
}

EnvelopeOpener::~EnvelopeOpener() = default;

Status EnvelopeOpener::OpenChunk(ByteView chunk, Bytes& out) {
  bool final = false;
  Status st = PullChunk(state_->stream.ss, aad_, chunk, out, &final);
  if (!st.ok()) {
    state_->failed = true;
    return st;
  }
  saw_final_ = final;
  return Status::Ok();
}

Status EnvelopeOpener::Update(ByteView ciphertext, Bytes& out) {
  if (state_->failed) {
    return Status::DataLoss("envelope stream already failed an integrity check");
  }
  if (ciphertext.empty()) {
    return Status::Ok();
  }
  auto fail = [this](Status st) {
    state_->failed = true;
    return st;
  };
  if (saw_final_) {
    return fail(DataAfterFinal());
  }
  ReserveMore(out, pending_.size() + ciphertext.size());
  // A full-size chunk may be the FINAL one or not; either way it is opened only
  // once it is known whether more data follows it, so one chunk stays buffered.
  if (!pending_.empty()) {
    const size_t take = std::min(kSealedChunkSize - pending_.size(), ciphertext.size());
    pending_.insert(pending_.end(), ciphertext.begin(), ciphertext.begin() + take);
    ciphertext = ciphertext.subspan(take);
    if (ciphertext.empty()) {
      return Status::Ok();
    }
    MV_RETURN_IF_ERROR(OpenChunk(pending_, out));
    pending_.clear();
    if (saw_final_) {
      return fail(DataAfterFinal());
    }
  }
  while (ciphertext.size() > kSealedChunkSize) {
    MV_RETURN_IF_ERROR(OpenChunk(ciphertext.first(kSealedChunkSize), out));
    ciphertext = ciphertext.subspan(kSealedChunkSize);
    if (saw_final_) {
      return fail(DataAfterFinal());
    }
  }
  pending_.insert(pending_.end(), ciphertext.begin(), ciphertext.end());
  return Status::Ok();
}

Status EnvelopeOpener::Finish(Bytes& out) {
  if (state_->failed) {
    return Status::DataLoss("envelope stream already failed an integrity check");
  }
  if (!pending_.empty()) {
    MV_RETURN_IF_ERROR(OpenChunk(pending_, out));
    pending_.clear();
  }
  if (!saw_final_) {
    state_->failed = true;
    return Truncated();
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Whole-buffer forms. They produce and accept exactly the bytes of the
// streaming classes (same helpers), but with the whole input at hand they need
// no look-ahead buffer: every chunk is encrypted or decrypted in place.

Result<Bytes> SealObject(const SecretBytes& node_key, ByteView aad, ByteView plaintext,
                         uint32_t key_version) {
  Bytes out;
  out.reserve(kHeaderSizeV1 + 16 + plaintext.size() +
              ChunkCount(plaintext.size()) * kChunkOverhead);
  WipedStreamState stream;
  MV_RETURN_IF_ERROR(SealHeader(node_key, key_version, aad, stream.ss, out));
  do {
    const size_t n = std::min(plaintext.size(), kEnvelopeChunkSize);
    PushChunk(stream.ss, aad, plaintext.first(n), n == plaintext.size(), out);
    plaintext = plaintext.subspan(n);
  } while (!plaintext.empty());
  return out;
}

Result<Bytes> OpenObject(const SecretBytes& node_key, ByteView aad, ByteView sealed,
                         uint32_t key_version, const std::vector<KeySlot>* slots) {
  MV_RETURN_IF_ERROR(CheckNodeKey(node_key));
  if (sealed.size() < kEnvelopeHeaderPrefixSize) {
    return Status::DataLoss("sealed object (" + std::to_string(sealed.size()) +
                            " bytes) is shorter than an envelope header");
  }
  MV_ASSIGN_OR_RETURN(size_t header_size, EnvelopeHeaderSize(sealed));
  if (sealed.size() < header_size) {
    return Status::DataLoss("sealed object (" + std::to_string(sealed.size()) +
                            " bytes) is shorter than its envelope header (" +
                            std::to_string(header_size) + " bytes)");
  }
  WipedStreamState stream;
  MV_RETURN_IF_ERROR(
      OpenHeader(node_key, key_version, aad, sealed.first(header_size), slots, stream.ss));
  ByteView body = sealed.subspan(header_size);
  if (body.empty()) {
    return Truncated();
  }
  Bytes out;
  const size_t chunks = (body.size() + kSealedChunkSize - 1) / kSealedChunkSize;
  out.reserve(body.size() - std::min(body.size(), chunks * kChunkOverhead));
  bool final = false;
  while (!body.empty()) {
    if (final) {
      return DataAfterFinal();
    }
    const size_t n = std::min(body.size(), kSealedChunkSize);
    MV_RETURN_IF_ERROR(PullChunk(stream.ss, aad, body.first(n), out, &final));
    body = body.subspan(n);
  }
  if (!final) {
    return Truncated();
  }
  return out;
}

}  // namespace medvault::crypto
