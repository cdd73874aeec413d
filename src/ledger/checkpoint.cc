// Keys, C2SP signed notes, checkpoints and cosignatures (Ed25519 via
// libsodium), the signing key file, and the module's internal helpers
// (base64, decimal parsing, durable file writes).
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <string>

#include "common/file_util.h"
#include "crypto/crypto.h"
#include "ledger/internal.h"
#include "ledger/ledger.h"

namespace medvault::ledger {

// ===========================================================================
// Internal helpers

namespace internal {

std::string Base64(ByteView data) {
  const size_t len = sodium_base64_encoded_len(data.size(), sodium_base64_VARIANT_ORIGINAL);
  std::string out(len, '\0');
  sodium_bin2base64(out.data(), len, data.data(), data.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(len - 1);  // drop the terminating NUL
  return out;
}

std::optional<Bytes> FromBase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) {
    return std::nullopt;
  }
  Bytes out(text.size() / 4 * 3);
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size()) {
    return std::nullopt;
  }
  out.resize(len);
  // Only the one canonical spelling of these bytes is accepted.
  if (Base64(out) != text) {
    return std::nullopt;
  }
  return out;
}

std::optional<uint64_t> ParseDecimalU64(std::string_view text) {
  if (text.empty() || text.size() > 20 || (text.size() > 1 && text[0] == '0')) {
    return std::nullopt;
  }
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) {
      return std::nullopt;
    }
    v = v * 10 + d;
  }
  return v;
}

Fd::~Fd() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

int Fd::Close() {
  const int rc = ::close(fd_);
  fd_ = -1;
  return rc;
}

std::string ErrnoText(int err) { return std::strerror(err); }

Result<std::string> ReadSmallFile(const std::filesystem::path& path, size_t max_size,
                                  bool owner_only) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    if (errno == ENOENT) {
      return Status::NotFound(path.string() + " does not exist");
    }
    if (errno == ELOOP) {
      return Status::FailedPrecondition(path.string() + " is a symbolic link");
    }
    return Status::IOError("cannot open " + path.string() + ": " + ErrnoText(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return Status::IOError("cannot stat " + path.string() + ": " + ErrnoText(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::FailedPrecondition(path.string() + " is not a regular file");
  }
  if (owner_only && (st.st_mode & 077) != 0) {
    return Status::FailedPrecondition(path.string() +
                                      " is accessible by group or others (chmod 600 it)");
  }
  if (static_cast<uint64_t>(st.st_size) > max_size) {
    return Status::DataLoss(path.string() + " is larger than expected");
  }
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::read(fd.get(), out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      sodium_memzero(out.data(), out.size());
      return Status::IOError("cannot read " + path.string() + ": " + ErrnoText(errno));
    }
    if (n == 0) {
      break;
    }
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

}  // namespace internal

namespace {

using internal::Base64;
using internal::FromBase64;

constexpr std::string_view kEmDashSpace = "\xe2\x80\x94 ";  // U+2014 then a space
constexpr size_t kMaxKeyNameBytes = 255;
constexpr size_t kMaxNoteBytes = 1 << 20;
constexpr size_t kMaxSignatures = 100;
constexpr std::string_view kCosignatureHeader = "cosignature/v1\n";
constexpr size_t kCosignaturePayload = 4 + 8 + kSignatureSize;
constexpr std::string_view kSignerKeyPrefix = "PRIVATE+KEY+";
constexpr size_t kMaxKeyFileBytes = 1024;

// Decodes one code point of valid UTF-8 at s[i], advancing i.
uint32_t NextCodePoint(std::string_view s, size_t& i) {
  const auto b = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(s[k])); };
  const uint32_t c = b(i);
  if (c < 0x80) {
    i += 1;
    return c;
  }
  if (c < 0xe0) {
    const uint32_t cp = ((c & 0x1f) << 6) | (b(i + 1) & 0x3f);
    i += 2;
    return cp;
  }
  if (c < 0xf0) {
    const uint32_t cp = ((c & 0x0f) << 12) | ((b(i + 1) & 0x3f) << 6) | (b(i + 2) & 0x3f);
    i += 3;
    return cp;
  }
  const uint32_t cp =
      ((c & 0x07) << 18) | ((b(i + 1) & 0x3f) << 12) | ((b(i + 2) & 0x3f) << 6) | (b(i + 3) & 0x3f);
  i += 4;
  return cp;
}

// Unicode White_Space (what Go's unicode.IsSpace reports).
bool IsUnicodeSpace(uint32_t cp) {
  return cp == 0x20 || (cp >= 0x09 && cp <= 0x0d) || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
         cp == 0x205f || cp == 0x3000;
}

// Valid UTF-8 and no control character other than "\n".
bool IsNoteText(std::string_view s) {
  if (!IsValidUtf8(s)) {
    return false;
  }
  for (unsigned char c : s) {
    if (c < 0x20 && c != '\n') {
      return false;
    }
  }
  return true;
}

void PutU32Be(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<uint8_t>(v >> shift));
  }
}

void PutU64Be(Bytes& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<uint8_t>(v >> shift));
  }
}

uint64_t ReadBe(ByteView b) {
  uint64_t v = 0;
  for (uint8_t x : b) {
    v = (v << 8) | x;
  }
  return v;
}

std::string KeyIdHex(uint32_t id) {
  const uint8_t b[4] = {static_cast<uint8_t>(id >> 24), static_cast<uint8_t>(id >> 16),
                        static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id)};
  return ToHex(ByteView(b, 4));
}

std::optional<uint32_t> ParseKeyIdHex(std::string_view hex) {
  if (hex.size() != 8) {
    return std::nullopt;
  }
  auto bytes = FromHex(hex);
  if (!bytes.ok()) {
    return std::nullopt;
  }
  return static_cast<uint32_t>(ReadBe(*bytes));
}

bool VerifyEd25519(const PublicKey& key, ByteView message, ByteView signature) {
  return signature.size() == kSignatureSize &&
         crypto_sign_verify_detached(signature.data(), message.data(), message.size(),
                                     key.data()) == 0;
}

// Checks a checkpoint origin or extension line.
bool IsCheckpointLine(std::string_view line) {
  return !line.empty() && line.find('\n') == std::string_view::npos && IsNoteText(line);
}

}  // namespace

// ===========================================================================
// Key names and verifier keys

bool IsValidKeyName(std::string_view name) {
  if (name.empty() || name.size() > kMaxKeyNameBytes || !IsValidUtf8(name)) {
    return false;
  }
  size_t i = 0;
  while (i < name.size()) {
    const uint32_t cp = NextCodePoint(name, i);
    if (cp == '+' || cp < 0x20 || cp == 0x7f || IsUnicodeSpace(cp)) {
      return false;
    }
  }
  return true;
}

uint32_t KeyId(std::string_view name, KeyType type, const PublicKey& public_key) {
  crypto::Sha256Hasher h;
  h.Update(AsBytes(name));
  const uint8_t sep[2] = {'\n', static_cast<uint8_t>(type)};
  h.Update(ByteView(sep, 2));
  h.Update(ByteView(public_key.data(), public_key.size()));
  const Bytes digest = h.Finish();
  return static_cast<uint32_t>(ReadBe(ByteView(digest.data(), 4)));
}

Result<VerifierKey> VerifierKey::Create(std::string_view name, KeyType type,
                                        const PublicKey& public_key) {
  if (!IsValidKeyName(name)) {
    return Status::InvalidArgument("invalid key name");
  }
  if (type != KeyType::kEd25519 && type != KeyType::kCosignatureV1) {
    return Status::InvalidArgument("unsupported key type");
  }
  VerifierKey k;
  k.name_ = std::string(name);
  k.type_ = type;
  k.public_key_ = public_key;
  k.key_id_ = KeyId(name, type, public_key);
  return k;
}

Result<VerifierKey> VerifierKey::Parse(std::string_view vkey) {
  // The name has no '+', the key id is hex: the first two '+' split it; the
  // base64 part may itself contain '+'.
  const size_t p1 = vkey.find('+');
  if (p1 == std::string_view::npos) {
    return Status::InvalidArgument("verifier key must be <name>+<key id>+<key>");
  }
  const size_t p2 = vkey.find('+', p1 + 1);
  if (p2 == std::string_view::npos) {
    return Status::InvalidArgument("verifier key must be <name>+<key id>+<key>");
  }
  const std::string_view name = vkey.substr(0, p1);
  const auto id = ParseKeyIdHex(vkey.substr(p1 + 1, p2 - p1 - 1));
  const auto key = FromBase64(vkey.substr(p2 + 1));
  if (!IsValidKeyName(name)) {
    return Status::InvalidArgument("verifier key has an invalid name");
  }
  if (!id.has_value()) {
    return Status::InvalidArgument("verifier key id must be 8 hex digits");
  }
  if (!key.has_value() || key->size() != 1 + kPublicKeySize) {
    return Status::InvalidArgument("verifier key material must be base64 of 33 bytes");
  }
  const uint8_t type = (*key)[0];
  if (type != static_cast<uint8_t>(KeyType::kEd25519) &&
      type != static_cast<uint8_t>(KeyType::kCosignatureV1)) {
    return Status::InvalidArgument("verifier key type " + std::to_string(type) +
                                   " is not supported (Ed25519 0x01, cosignature/v1 0x04)");
  }
  PublicKey pk;
  std::copy(key->begin() + 1, key->end(), pk.begin());
  MV_ASSIGN_OR_RETURN(VerifierKey k, Create(name, static_cast<KeyType>(type), pk));
  if (k.key_id() != *id) {
    return Status::InvalidArgument("verifier key id does not match its name and key");
  }
  return k;
}

std::string VerifierKey::ToString() const {
  Bytes material;
  material.reserve(1 + kPublicKeySize);
  material.push_back(static_cast<uint8_t>(type_));
  material.insert(material.end(), public_key_.begin(), public_key_.end());
  return name_ + "+" + KeyIdHex(key_id_) + "+" + Base64(material);
}

// ===========================================================================
// Signer

Result<Signer> Signer::FromSeed(std::string_view name, ByteView seed) {
  if (!IsValidKeyName(name)) {
    return Status::InvalidArgument("invalid key name");
  }
  if (seed.size() != kSeedSize) {
    return Status::InvalidArgument("Ed25519 seed must be 32 bytes");
  }
  Signer s;
  s.name_ = std::string(name);
  s.secret_key_ = SecretBytes(crypto_sign_SECRETKEYBYTES);
  if (crypto_sign_seed_keypair(s.public_key_.data(), s.secret_key_.data(), seed.data()) != 0) {
    return Status::Internal("Ed25519 key derivation failed");
  }
  return s;
}

Result<Signer> Signer::Generate(std::string_view name) {
  MV_RETURN_IF_ERROR(crypto::InitCrypto());
  SecretBytes seed(kSeedSize);
  crypto::RandomBytes(seed.mutable_view());
  return FromSeed(name, seed.view());
}

VerifierKey Signer::Verifier() const {
  return std::move(VerifierKey::Create(name_, KeyType::kEd25519, public_key_)).value();
}

VerifierKey Signer::CosignatureVerifier() const {
  return std::move(VerifierKey::Create(name_, KeyType::kCosignatureV1, public_key_)).value();
}

Bytes Signer::Sign(ByteView message) const {
  Bytes sig(kSignatureSize);
  crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), secret_key_.data());
  return sig;
}

// ===========================================================================
// Signing key file

namespace {

// Parses "PRIVATE+KEY+<name>+<id>+<base64(0x01 || seed)>". The caller wipes
// `text`; the decoded seed is wiped here.
Result<Signer> ParseSignerKey(std::string_view text, std::string_view want_name,
                              const std::string& where) {
  if (!text.empty() && text.back() == '\n') {
    text.remove_suffix(1);
  }
  if (text.substr(0, kSignerKeyPrefix.size()) != kSignerKeyPrefix) {
    return Status::DataLoss(where + " is not a signer key (PRIVATE+KEY+...)");
  }
  text.remove_prefix(kSignerKeyPrefix.size());
  const size_t p1 = text.find('+');
  const size_t p2 = p1 == std::string_view::npos ? p1 : text.find('+', p1 + 1);
  if (p2 == std::string_view::npos) {
    return Status::DataLoss(where + " is malformed");
  }
  const std::string_view name = text.substr(0, p1);
  if (name != want_name) {
    return Status::FailedPrecondition(where + " holds the key of \"" + std::string(name) +
                                      "\", not \"" + std::string(want_name) + "\"");
  }
  const auto id = ParseKeyIdHex(text.substr(p1 + 1, p2 - p1 - 1));
  auto material = FromBase64(text.substr(p2 + 1));
  if (!id.has_value() || !material.has_value() || material->size() != 1 + kSeedSize ||
      (*material)[0] != static_cast<uint8_t>(KeyType::kEd25519)) {
    if (material.has_value()) {
      sodium_memzero(material->data(), material->size());
    }
    return Status::DataLoss(where + " is malformed");
  }
  auto signer = Signer::FromSeed(name, ByteView(material->data() + 1, kSeedSize));
  sodium_memzero(material->data(), material->size());
  if (!signer.ok()) {
    return Status::DataLoss(where + " is malformed");
  }
  if (signer->Verifier().key_id() != *id) {
    return Status::DataLoss(where + ": key id does not match the key");
  }
  return signer;
}

}  // namespace

Result<Signer> LoadOrCreateSigner(const std::filesystem::path& path, std::string_view name) {
  if (!IsValidKeyName(name)) {
    return Status::InvalidArgument("invalid key name");
  }
  const std::string where = "signing key file " + path.string();
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto text = internal::ReadSmallFile(path, kMaxKeyFileBytes, /*owner_only=*/true);
    if (text.ok()) {
      auto signer = ParseSignerKey(*text, name, where);
      sodium_memzero(text->data(), text->size());
      return signer;
    }
    if (text.status().code() != StatusCode::kNotFound) {
      return text.status();
    }
    // Create: write a temporary file, then link it into place, which fails
    // rather than replace a key another process created meanwhile.
    MV_ASSIGN_OR_RETURN(Signer signer, Signer::Generate(name));
    Bytes material;
    material.push_back(static_cast<uint8_t>(KeyType::kEd25519));
    material.insert(material.end(), signer.secret_key_.data(),
                    signer.secret_key_.data() + kSeedSize);  // libsodium sk = seed || pk
    std::string line = std::string(kSignerKeyPrefix) + std::string(name) + "+" +
                       KeyIdHex(signer.Verifier().key_id()) + "+" + Base64(material) + "\n";
    sodium_memzero(material.data(), material.size());
    std::string tmpl = path.string() + ".tmp-XXXXXX";
    const int raw = ::mkstemp(tmpl.data());
    if (raw < 0) {
      sodium_memzero(line.data(), line.size());
      return Status::IOError("cannot create " + where + ": " + internal::ErrnoText(errno));
    }
    internal::Fd fd(raw);
    Status st = internal::WriteAll(fd.get(), AsBytes(line));
    sodium_memzero(line.data(), line.size());
    if (st.ok() && ::fsync(fd.get()) != 0) {
      st = Status::IOError("fsync of " + where + " failed: " + internal::ErrnoText(errno));
    }
    if (st.ok() && fd.Close() != 0) {
      st = Status::IOError("close of " + where + " failed: " + internal::ErrnoText(errno));
    }
    bool exists = false;
    if (st.ok() && ::link(tmpl.c_str(), path.c_str()) != 0) {
      if (errno == EEXIST) {
        exists = true;
      } else {
        st = Status::IOError("cannot create " + where + ": " + internal::ErrnoText(errno));
      }
    }
    ::unlink(tmpl.c_str());
    MV_RETURN_IF_ERROR(st);
    if (exists) {
      continue;  // another process won: load its key
    }
    MV_RETURN_IF_ERROR(internal::FsyncDir(path.parent_path()));
    return signer;
  }
  return Status::Unavailable(where + " appeared and vanished while being created; retry");
}

// ===========================================================================
// Signed notes

std::string FormatSignatureLine(std::string_view name, uint32_t key_id, ByteView signature) {
  Bytes payload;
  payload.reserve(4 + signature.size());
  PutU32Be(payload, key_id);
  payload.insert(payload.end(), signature.begin(), signature.end());
  return std::string(kEmDashSpace) + std::string(name) + " " + Base64(payload) + "\n";
}

Result<NoteSignature> ParseSignatureLine(std::string_view line) {
  if (!line.empty() && line.back() == '\n') {
    line.remove_suffix(1);
  }
  if (line.find('\n') != std::string_view::npos) {
    return Status::InvalidArgument("signature line holds a newline");
  }
  if (line.substr(0, kEmDashSpace.size()) != kEmDashSpace) {
    return Status::InvalidArgument("signature line does not start with an em dash and a space");
  }
  line.remove_prefix(kEmDashSpace.size());
  const size_t space = line.find(' ');
  if (space == std::string_view::npos) {
    return Status::InvalidArgument("signature line has no signature after the key name");
  }
  const std::string_view name = line.substr(0, space);
  if (!IsValidKeyName(name)) {
    return Status::InvalidArgument("signature line has an invalid key name");
  }
  auto payload = FromBase64(line.substr(space + 1));
  if (!payload.has_value() || payload->size() < 5) {
    return Status::InvalidArgument("signature line has a malformed signature");
  }
  NoteSignature sig;
  sig.name = std::string(name);
  sig.key_id = static_cast<uint32_t>(ReadBe(ByteView(payload->data(), 4)));
  sig.signature.assign(payload->begin() + 4, payload->end());
  return sig;
}

Result<SignedNote> ParseSignedNote(std::string_view note) {
  if (note.size() > kMaxNoteBytes) {
    return Status::InvalidArgument("note is larger than 1 MiB");
  }
  if (!IsNoteText(note)) {
    return Status::InvalidArgument("note is not UTF-8 text without control characters");
  }
  if (note.empty() || note.back() != '\n') {
    return Status::InvalidArgument("note does not end with a newline");
  }
  const size_t split = note.rfind("\n\n");
  if (split == std::string_view::npos) {
    return Status::InvalidArgument("note has no blank line before its signatures");
  }
  SignedNote out;
  out.text = std::string(note.substr(0, split + 1));
  std::string_view sigs = note.substr(split + 2);
  if (sigs.empty()) {
    return Status::InvalidArgument("note has no signature lines");
  }
  while (!sigs.empty()) {
    if (out.signatures.size() == kMaxSignatures) {
      return Status::InvalidArgument("note has more than 100 signatures");
    }
    const size_t nl = sigs.find('\n');  // found: the note ends with "\n"
    MV_ASSIGN_OR_RETURN(NoteSignature sig, ParseSignatureLine(sigs.substr(0, nl)));
    out.signatures.push_back(std::move(sig));
    sigs.remove_prefix(nl + 1);
  }
  return out;
}

Result<std::string> SignNote(const Signer& signer, std::string_view text) {
  if (text.empty() || text.back() != '\n' || !IsNoteText(text)) {
    return Status::InvalidArgument("note text must be UTF-8 lines ending in a newline");
  }
  if (text.size() >= 2 && text.substr(text.size() - 2) == "\n\n") {
    // The last blank line separates text from signatures, so the text cannot end with one.
    return Status::InvalidArgument("note text must not end with a blank line");
  }
  const Bytes sig = signer.Sign(AsBytes(text));
  return std::string(text) + "\n" +
         FormatSignatureLine(signer.name(), signer.Verifier().key_id(), sig);
}

Result<std::string> VerifyNote(std::string_view note, const VerifierKey& key) {
  if (key.type() != KeyType::kEd25519) {
    return Status::InvalidArgument("note verifier key must be an Ed25519 (0x01) key");
  }
  MV_ASSIGN_OR_RETURN(SignedNote parsed, ParseSignedNote(note));
  bool found = false;
  for (const NoteSignature& sig : parsed.signatures) {
    if (sig.name != key.name() || sig.key_id != key.key_id()) {
      continue;  // another key: ignored
    }
    found = true;
    if (!VerifyEd25519(key.public_key(), AsBytes(parsed.text), sig.signature)) {
      return Status::DataLoss("signature by " + key.name() + " does not verify");
    }
  }
  if (!found) {
    return Status::FailedPrecondition("note is not signed by " + key.name() + " (key id " +
                                      KeyIdHex(key.key_id()) + ")");
  }
  return std::move(parsed.text);
}

// ===========================================================================
// Checkpoints

std::string FormatCheckpointBody(const Checkpoint& checkpoint) {
  std::string out = checkpoint.origin + "\n" + std::to_string(checkpoint.size) + "\n" +
                    Base64(HashView(checkpoint.root)) + "\n";
  for (const std::string& ext : checkpoint.extensions) {
    out += ext;
    out += '\n';
  }
  return out;
}

Result<Checkpoint> ParseCheckpointBody(std::string_view text) {
  if (text.empty() || text.back() != '\n') {
    return Status::InvalidArgument("checkpoint body does not end with a newline");
  }
  if (!IsNoteText(text)) {
    return Status::InvalidArgument("checkpoint body is not UTF-8 text without control characters");
  }
  std::vector<std::string_view> lines;
  for (size_t pos = 0; pos < text.size();) {
    const size_t nl = text.find('\n', pos);
    lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  if (lines.size() < 3) {
    return Status::InvalidArgument("checkpoint body has fewer than three lines");
  }
  for (std::string_view line : lines) {
    if (line.empty()) {
      return Status::InvalidArgument("checkpoint body has an empty line");
    }
  }
  Checkpoint cp;
  cp.origin = std::string(lines[0]);
  const auto size = internal::ParseDecimalU64(lines[1]);
  if (!size.has_value()) {
    return Status::InvalidArgument("checkpoint size is not a decimal number without leading zeros");
  }
  cp.size = *size;
  const auto root = FromBase64(lines[2]);
  if (!root.has_value() || root->size() != kHashSize) {
    return Status::InvalidArgument("checkpoint root is not the base64 of a 32-byte hash");
  }
  std::copy(root->begin(), root->end(), cp.root.begin());
  for (size_t i = 3; i < lines.size(); ++i) {
    cp.extensions.emplace_back(lines[i]);
  }
  return cp;
}

Result<std::string> SignCheckpoint(const Signer& signer, const Checkpoint& checkpoint) {
  if (!IsCheckpointLine(checkpoint.origin)) {
    return Status::InvalidArgument("checkpoint origin must be one non-empty line of text");
  }
  for (const std::string& ext : checkpoint.extensions) {
    if (!IsCheckpointLine(ext)) {
      return Status::InvalidArgument("checkpoint extension lines must be non-empty text");
    }
  }
  return SignNote(signer, FormatCheckpointBody(checkpoint));
}

Result<Checkpoint> VerifyCheckpoint(std::string_view note, const VerifierKey& log_key) {
  auto text = VerifyNote(note, log_key);
  if (!text.ok()) {
    const Status& st = text.status();
    switch (st.code()) {
      case StatusCode::kDataLoss:
        return Status::DataLoss("checkpoint signature invalid");
      case StatusCode::kFailedPrecondition:
        return Status::FailedPrecondition("checkpoint is not signed by the log key " +
                                          log_key.name());
      default:
        return st.WithContext("checkpoint is malformed");
    }
  }
  auto cp = ParseCheckpointBody(*text);
  if (!cp.ok()) {
    return cp.status().WithContext("checkpoint is malformed");
  }
  return cp;
}

// ===========================================================================
// Cosignatures (C2SP tlog-cosignature, cosignature/v1)

std::string CosignatureMessage(std::string_view checkpoint_body, uint64_t timestamp) {
  std::string msg;
  msg.reserve(kCosignatureHeader.size() + 26 + checkpoint_body.size());
  msg += kCosignatureHeader;
  msg += "time ";
  msg += std::to_string(timestamp);
  msg += '\n';
  msg += checkpoint_body;
  return msg;
}

Result<std::string> Cosign(const Signer& witness, std::string_view checkpoint_body,
                           uint64_t timestamp) {
  if (timestamp > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::InvalidArgument("cosignature timestamp must be below 2^63");
  }
  MV_RETURN_IF_ERROR(ParseCheckpointBody(checkpoint_body).status());
  const std::string msg = CosignatureMessage(checkpoint_body, timestamp);
  const Bytes sig = witness.Sign(AsBytes(msg));
  Bytes payload;
  payload.reserve(8 + kSignatureSize);
  PutU64Be(payload, timestamp);
  payload.insert(payload.end(), sig.begin(), sig.end());
  return FormatSignatureLine(witness.name(), witness.CosignatureVerifier().key_id(), payload);
}

Result<uint64_t> VerifyCosignature(std::string_view checkpoint_body, std::string_view line,
                                   const VerifierKey& witness) {
  if (witness.type() != KeyType::kCosignatureV1) {
    return Status::InvalidArgument("witness key " + witness.name() +
                                   " is not a cosignature/v1 (0x04) key");
  }
  MV_ASSIGN_OR_RETURN(NoteSignature sig, ParseSignatureLine(line));
  if (sig.name != witness.name() || sig.key_id != witness.key_id()) {
    return Status::FailedPrecondition("cosignature is from " + sig.name + " (key id " +
                                      KeyIdHex(sig.key_id) + "), not from " + witness.name() +
                                      " (key id " + KeyIdHex(witness.key_id()) + ")");
  }
  if (sig.signature.size() != kCosignaturePayload - 4) {
    return Status::InvalidArgument("cosignature has the wrong length for cosignature/v1");
  }
  const uint64_t timestamp = ReadBe(ByteView(sig.signature.data(), 8));
  if (timestamp > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::InvalidArgument("cosignature timestamp is not below 2^63");
  }
  const std::string msg = CosignatureMessage(checkpoint_body, timestamp);
  if (!VerifyEd25519(witness.public_key(), AsBytes(msg),
                     ByteView(sig.signature.data() + 8, kSignatureSize))) {
    return Status::DataLoss("cosignature by " + witness.name() + " does not verify");
  }
  return timestamp;
}

}  // namespace medvault::ledger
