// Object envelope: a wrapped per-object data key plus a libsodium secretstream body.
//
// Layout (all integers little-endian):
//   header (kHeaderSize = 108 bytes, fixed):
//     magic "MVE1" (4) | version u8 = 1 | algorithm u8 = 1 (secretstream
//     XChaCha20-Poly1305) | reserved u16 = 0 | chunk_size u32 = 65536 |
//     wrapped data key = AeadSeal(node_key, DK, object AAD) (24 + 32 + 16 = 72) |
//     secretstream header (24)
//   body: chunks, each chunk_size plaintext bytes + 17 bytes of overhead, except
//     the last, which holds 0..chunk_size plaintext bytes and carries TAG_FINAL.
//     Empty plaintext is one empty FINAL chunk. Every chunk has the object AAD as
//     its additional data.
//
// The header's fixed fields are not covered by a MAC, but each must equal the one
// supported value exactly, so altering any of them makes opening fail. Every
// failure of stored bytes (any header field, the wrapped key, any chunk,
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
constexpr size_t kHeaderSize = kFixedFieldsSize + kWrappedKeySize + kStreamHeaderSize;
constexpr size_t kChunkOverhead = crypto_secretstream_xchacha20poly1305_ABYTES;
constexpr size_t kSealedChunkSize = kEnvelopeChunkSize + kChunkOverhead;
constexpr std::string_view kAadDomain = "medvault/v1/object";

static_assert(kHeaderSize == 108);
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

// Draws a fresh data key, appends the header to `out` and starts `ss`.
Status SealHeader(const SecretBytes& node_key, ByteView aad, StreamState& ss, Bytes& out) {
  MV_RETURN_IF_ERROR(CheckNodeKey(node_key));
  // The data key lives only for the duration of this call, in a stack buffer
  // wiped on every path. A SecretBytes would cost an mlock/munlock pair per
  // object (a measurable share of sealing a 64 KiB object) for a key that is
  // never held beyond these few microseconds.
  struct DataKey {
    ~DataKey() { sodium_memzero(bytes, sizeof(bytes)); }
    uint8_t bytes[kKeySize];
  } data_key;
  randombytes_buf(data_key.bytes, sizeof(data_key.bytes));
  MV_ASSIGN_OR_RETURN(Bytes wrapped, AeadSeal(node_key, ByteView(data_key.bytes), aad));
  ReserveMore(out, kHeaderSize);
  const size_t start = out.size();
  out.insert(out.end(), std::begin(kMagic), std::end(kMagic));
  PutU8(out, kEnvelopeVersion);
  PutU8(out, kAlgorithmSecretstream);
  PutU16(out, 0);
  PutU32(out, static_cast<uint32_t>(kEnvelopeChunkSize));
  out.insert(out.end(), wrapped.begin(), wrapped.end());
  const size_t stream_header = out.size();
  out.resize(start + kHeaderSize);
  crypto_secretstream_xchacha20poly1305_init_push(&ss, out.data() + stream_header, data_key.bytes);
  return Status::Ok();
}

// Parses and authenticates `header`, starting `ss` for pulling.
Status OpenHeader(const SecretBytes& node_key, ByteView aad, ByteView header, StreamState& ss) {
  MV_RETURN_IF_ERROR(CheckNodeKey(node_key));
  if (header.size() != kHeaderSize) {
    return Status::InvalidArgument("envelope header must be " + std::to_string(kHeaderSize) +
                                   " bytes, got " + std::to_string(header.size()));
  }
  ByteReader reader(header);
  ByteView magic;
  uint8_t version = 0;
  uint8_t algorithm = 0;
  uint16_t reserved = 0;
  uint32_t chunk_size = 0;
  ByteView wrapped;
  ByteView stream_header;
  if (!reader.ReadBytes(sizeof(kMagic), &magic) || !reader.ReadU8(&version) ||
      !reader.ReadU8(&algorithm) || !reader.ReadU16(&reserved) || !reader.ReadU32(&chunk_size) ||
      !reader.ReadBytes(kWrappedKeySize, &wrapped) ||
      !reader.ReadBytes(kStreamHeaderSize, &stream_header) || !reader.AtEnd()) {
    return Status::Internal("envelope header reader out of step with kHeaderSize");
  }
  if (std::memcmp(magic.data(), kMagic, sizeof(kMagic)) != 0) {
    return Status::DataLoss("envelope magic is not MVE1: not a medvault envelope, or corrupted");
  }
  if (version != kEnvelopeVersion) {
    return Status::DataLoss("unsupported envelope version " + std::to_string(version) +
                            " (this build reads version " + std::to_string(kEnvelopeVersion) + ")");
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
  auto data_key = AeadOpenSecret(node_key, wrapped, aad);
  if (!data_key.ok()) {
    return Status::DataLoss(
        "envelope data key does not open: wrong node key, object bound to another "
        "patient/path/version/id, or corrupted header");
  }
  if (crypto_secretstream_xchacha20poly1305_init_pull(&ss, stream_header.data(),
                                                      data_key->data()) != 0) {
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

// ---------------------------------------------------------------------------
// EnvelopeSealer

// The data key itself is not kept: after init_push the stream state holds the
// only (derived) key material needed, and it is wiped on destruction.
struct EnvelopeSealer::State {
  WipedStreamState stream;
};

Result<std::unique_ptr<EnvelopeSealer>> EnvelopeSealer::Create(const SecretBytes& node_key,
                                                               Bytes aad) {
  std::unique_ptr<EnvelopeSealer> sealer(new EnvelopeSealer());
  sealer->state_ = std::make_unique<State>();
  MV_RETURN_IF_ERROR(SealHeader(node_key, aad, sealer->state_->stream.ss, sealer->header_));
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

size_t EnvelopeOpener::HeaderSize() { return kHeaderSize; }

Result<std::unique_ptr<EnvelopeOpener>> EnvelopeOpener::Create(const SecretBytes& node_key,
                                                               Bytes aad, ByteView header) {
  std::unique_ptr<EnvelopeOpener> opener(new EnvelopeOpener());
  opener->state_ = std::make_unique<State>();
  MV_RETURN_IF_ERROR(OpenHeader(node_key, aad, header, opener->state_->stream.ss));
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

Result<Bytes> SealObject(const SecretBytes& node_key, ByteView aad, ByteView plaintext) {
  Bytes out;
  out.reserve(kHeaderSize + plaintext.size() + ChunkCount(plaintext.size()) * kChunkOverhead);
  WipedStreamState stream;
  MV_RETURN_IF_ERROR(SealHeader(node_key, aad, stream.ss, out));
  do {
    const size_t n = std::min(plaintext.size(), kEnvelopeChunkSize);
    PushChunk(stream.ss, aad, plaintext.first(n), n == plaintext.size(), out);
    plaintext = plaintext.subspan(n);
  } while (!plaintext.empty());
  return out;
}

Result<Bytes> OpenObject(const SecretBytes& node_key, ByteView aad, ByteView sealed) {
  MV_RETURN_IF_ERROR(CheckNodeKey(node_key));
  if (sealed.size() < kHeaderSize) {
    return Status::DataLoss("sealed object (" + std::to_string(sealed.size()) +
                            " bytes) is shorter than the envelope header (" +
                            std::to_string(kHeaderSize) + " bytes)");
  }
  WipedStreamState stream;
  MV_RETURN_IF_ERROR(OpenHeader(node_key, aad, sealed.first(kHeaderSize), stream.ss));
  ByteView body = sealed.subspan(kHeaderSize);
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
