// Share packages: build, seal, unseal and open. Format: docs/share-package.md.
#include <sodium.h>

#include <algorithm>
#include <array>
#include <set>
#include <utility>

#include "common/ids.h"
#include "crypto/crypto.h"
#include "engine/engine.h"
#include "engine/internal.h"
#include "vocab/vocab.h"

namespace medvault::engine {

using nlohmann::json;

namespace {

constexpr std::string_view kPlainPrefix = "MEDVAULT-SHARE-PACKAGE/";
constexpr std::string_view kSealedPrefix = "MEDVAULT-SEALED-SHARE-PACKAGE/";
constexpr int kFormatVersion = 1;
// "\n" "sha256=" 64 hex "\n"
constexpr std::string_view kDigestPrefix = "\nsha256=";
constexpr size_t kDigestLineSize = kDigestPrefix.size() + 64 + 1;
constexpr size_t kRecipientIdSize = 16;
constexpr size_t kSealedKeySize = crypto_box_SEALBYTES + crypto::kKeySize;  // 80
constexpr std::string_view kRecipientIdDomain = "medvault/v1/share-recipient";
// The body nests segments[i].content three levels below the top.
constexpr size_t kBodyDepth = kMaxJsonDepth + 3;

static_assert(kRecipientKeySize == crypto_box_PUBLICKEYBYTES);
static_assert(kRecipientKeySize == crypto_box_SECRETKEYBYTES);

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Status CheckCategory(std::string_view c) {
  if (c.empty() || c.size() > 64 || !std::all_of(c.begin(), c.end(), [](char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
      })) {
    return Status::InvalidArgument("category must be 1..64 characters of a-z, 0-9 and '-'");
  }
  return Status::Ok();
}

Status CheckMediaType(std::string_view m) {
  if (m.empty() || m.size() > 255 || m.find('/') == std::string_view::npos ||
      !std::all_of(m.begin(), m.end(), [](char ch) { return ch >= 0x20 && ch <= 0x7e; })) {
    return Status::InvalidArgument(
        "media type must be 1..255 printable ASCII characters with a '/'");
  }
  return Status::Ok();
}

Status CheckNote(std::string_view note) {
  if (note.size() > kMaxNoteBytes) {
    return Status::InvalidArgument("note is longer than " + std::to_string(kMaxNoteBytes) +
                                   " bytes");
  }
  if (!IsValidUtf8(note)) {
    return Status::InvalidArgument("note is not valid UTF-8");
  }
  for (char c : note) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\n' && c != '\t') || u == 0x7f) {
      return Status::InvalidArgument("note may not contain control characters but tab and newline");
    }
  }
  return Status::Ok();
}

// "YYYY-MM-DDTHH:MM:SS.mmmZ", as FormatRfc3339Millis writes it.
bool IsRfc3339Millis(std::string_view s) {
  constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd.dddZ";
  if (s.size() != kShape.size()) {
    return false;
  }
  for (size_t i = 0; i < s.size(); ++i) {
    if (kShape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != kShape[i]) {
      return false;
    }
  }
  return true;
}

// Reads "<prefix><version>\n" at the start of `s`. Returns the length of
// the line; InvalidArgument for a malformed line or another version.
Result<size_t> ReadMagicLine(std::string_view s, std::string_view prefix, std::string_view what) {
  size_t i = prefix.size();
  uint64_t version = 0;
  size_t digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9' && digits < 10) {
    version = version * 10 + static_cast<uint64_t>(s[i] - '0');
    ++i;
    ++digits;
  }
  // One spelling per version: no leading zeros.
  if (digits == 0 || (digits > 1 && s[prefix.size()] == '0') || i >= s.size() || s[i] != '\n') {
    return Status::InvalidArgument(std::string(what) + ": malformed magic line");
  }
  if (version != kFormatVersion) {
    return Status::InvalidArgument(std::string(what) + ": unsupported format version " +
                                   std::to_string(version) + " (this build reads " +
                                   std::to_string(kFormatVersion) + ")");
  }
  return i + 1;
}

Bytes RecipientId(ByteView public_key) {
  Bytes in = ToBytes(kRecipientIdDomain);
  in.insert(in.end(), public_key.begin(), public_key.end());
  Bytes digest = crypto::Sha256(in);
  digest.resize(kRecipientIdSize);
  return digest;
}

Result<Bytes> Seal(ByteView plain, ByteView public_key) {
  MV_RETURN_IF_ERROR(crypto::InitCrypto());
  if (public_key.size() != kRecipientKeySize) {
    return Status::InvalidArgument("recipient public key must be " +
                                   std::to_string(kRecipientKeySize) + " bytes");
  }
  const SecretBytes key = crypto::RandomKey();
  Bytes out = ToBytes(kSealedSharePackageMagic);
  const Bytes id = RecipientId(public_key);
  out.insert(out.end(), id.begin(), id.end());
  const size_t key_at = out.size();
  out.resize(key_at + kSealedKeySize);
  if (crypto_box_seal(out.data() + key_at, key.data(), key.size(), public_key.data()) != 0) {
    return Status::InvalidArgument("recipient public key is not a usable X25519 key");
  }
  MV_ASSIGN_OR_RETURN(Bytes payload, crypto::AeadSeal(key, plain, out));
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

// One segment of a package body; `index` for messages before the path is known.
Result<PackageItem> ParseSegment(const json& seg, size_t index) {
  const std::string where = "segment " + std::to_string(index);
  if (!seg.is_object()) {
    return Status::InvalidArgument(where + " is not an object");
  }
  static constexpr std::array<std::string_view, 7> kFields = {
      "category", "content", "kind", "media_type", "path", "sha256", "version"};
  for (auto it = seg.begin(); it != seg.end(); ++it) {
    if (std::find(kFields.begin(), kFields.end(), it.key()) == kFields.end()) {
      return Status::InvalidArgument(where + " has an unknown field");
    }
  }
  for (std::string_view f : kFields) {
    if (!seg.contains(f)) {
      return Status::InvalidArgument(where + " lacks \"" + std::string(f) + "\"");
    }
    if (f != "content" && f != "version" && !seg[std::string(f)].is_string()) {
      return Status::InvalidArgument(where + ": \"" + std::string(f) + "\" is not a string");
    }
  }
  PackageItem item;
  item.path = seg["path"].get<std::string>();
  MV_RETURN_IF_ERROR(record::ValidateSegmentPath(item.path).WithContext(where));
  const std::string named = "segment " + item.path;
  const json& version = seg["version"];
  if (!version.is_number_unsigned() || version.get<uint64_t>() == 0) {
    return Status::InvalidArgument(named + ": version must be an integer >= 1");
  }
  item.version = version.get<uint64_t>();
  item.category = seg["category"].get<std::string>();
  MV_RETURN_IF_ERROR(CheckCategory(item.category).WithContext(named));
  const std::optional<record::ContentKind> kind =
      vocab::ParseContentKind(seg["kind"].get_ref<const std::string&>());
  if (!kind) {
    return Status::InvalidArgument(named + ": kind must be json, text or binary");
  }
  item.kind = *kind;
  item.media_type = seg["media_type"].get<std::string>();
  MV_RETURN_IF_ERROR(CheckMediaType(item.media_type).WithContext(named));
  const std::string& sha = seg["sha256"].get_ref<const std::string&>();
  if (sha.size() != 64 || !IsLowerHex(sha)) {
    return Status::InvalidArgument(named + ": sha256 must be 64 lower-case hex digits");
  }
  const json& content = seg["content"];
  if (item.kind == record::ContentKind::kJson) {
    if (!content.is_object()) {
      return Status::InvalidArgument(named + ": JSON content must be an object");
    }
    MV_ASSIGN_OR_RETURN(std::string text, internal::Dump(content, named));
    item.content = ToBytes(text);
  } else {
    if (!content.is_string()) {
      return Status::InvalidArgument(named + ": content must be a base64url string");
    }
    auto decoded = FromBase64Url(content.get_ref<const std::string&>());
    if (!decoded.ok()) {
      return decoded.status().WithContext(named);
    }
    item.content = std::move(*decoded);
    if (item.kind == record::ContentKind::kText && !IsValidUtf8(AsString(item.content))) {
      return Status::InvalidArgument(named + ": text content is not valid UTF-8");
    }
  }
  if (ToHex(crypto::Sha256(item.content)) != sha) {
    return Status::DataLoss(named + ": content does not match its SHA-256 (edited or corrupted)");
  }
  return item;
}

Result<SharePackage> OpenPlain(ByteView bytes, const OpenOptions& options) {
  const std::string_view s = AsString(bytes);
  if (s.substr(0, kPlainPrefix.size()) != kPlainPrefix) {
    return Status::InvalidArgument("not a medvault share package (wrong magic)");
  }
  MV_ASSIGN_OR_RETURN(const size_t magic_len, ReadMagicLine(s, kPlainPrefix, "share package"));
  if (s.size() < magic_len + 2 + kDigestLineSize) {
    return Status::InvalidArgument("share package is truncated");
  }
  const std::string_view digest_line = s.substr(s.size() - kDigestLineSize);
  const std::string_view digest_hex = digest_line.substr(kDigestPrefix.size(), 64);
  if (digest_line.substr(0, kDigestPrefix.size()) != kDigestPrefix || digest_line.back() != '\n' ||
      !IsLowerHex(digest_hex)) {
    return Status::InvalidArgument("share package is truncated or malformed (no digest line)");
  }
  const std::string_view body_text = s.substr(magic_len, s.size() - magic_len - kDigestLineSize);
  MV_ASSIGN_OR_RETURN(json body, internal::ParseJson(body_text, kBodyDepth, "share package body"));
  MV_ASSIGN_OR_RETURN(std::string canonical, internal::Dump(body, "share package body"));
  if (canonical != body_text) {
    return Status::InvalidArgument(
        "share package body is not canonical JSON (whitespace, key order or duplicate keys)");
  }
  if (!body.is_object()) {
    return Status::InvalidArgument("share package body is not a JSON object");
  }
  for (auto it = body.begin(); it != body.end(); ++it) {
    const std::string& k = it.key();
    if (k != "format" && k != "package_id" && k != "created_at" && k != "note" && k != "segments") {
      return Status::InvalidArgument("share package body has an unknown field");
    }
  }
  for (const char* k : {"format", "package_id", "created_at"}) {
    if (!body.contains(k) || !body[k].is_string()) {
      return Status::InvalidArgument(std::string("share package body lacks \"") + k + "\"");
    }
  }
  if (body["format"].get_ref<const std::string&>() != kSharePackageFormat) {
    return Status::DataLoss("share package body's format disagrees with its magic line");
  }
  SharePackage pkg;
  pkg.package_id = body["package_id"].get<std::string>();
  if (!IsValidRandomId(pkg.package_id)) {
    return Status::InvalidArgument("share package id must be 32 lower-case hex digits");
  }
  pkg.created_at = body["created_at"].get<std::string>();
  if (!IsRfc3339Millis(pkg.created_at)) {
    return Status::InvalidArgument("share package created_at is not an RFC 3339 UTC time");
  }
  if (body.contains("note")) {
    if (!body["note"].is_string() || body["note"].get_ref<const std::string&>().empty()) {
      return Status::InvalidArgument("share package note must be a non-empty string");
    }
    pkg.note = body["note"].get<std::string>();
    MV_RETURN_IF_ERROR(CheckNote(pkg.note));
  }
  if (!body.contains("segments") || !body["segments"].is_array() || body["segments"].empty()) {
    return Status::InvalidArgument("share package has no segments");
  }
  const json& segments = body["segments"];
  if (segments.size() > options.max_segments) {
    return Status::ResourceExhausted("share package has more than " +
                                     std::to_string(options.max_segments) + " segments");
  }
  std::set<std::string> paths;
  for (size_t i = 0; i < segments.size(); ++i) {
    MV_ASSIGN_OR_RETURN(PackageItem item, ParseSegment(segments[i], i));
    if (!paths.insert(item.path).second) {
      return Status::InvalidArgument("share package has segment " + item.path + " twice");
    }
    pkg.items.push_back(std::move(item));
  }
  pkg.sha256_hex = ToHex(crypto::Sha256(bytes.first(magic_len + body_text.size())));
  if (pkg.sha256_hex != digest_hex) {
    return Status::DataLoss(
        "share package digest does not match its contents (edited or corrupted)");
  }
  return pkg;
}

}  // namespace

// ---------------------------------------------------------------------------

PackageItem ItemFromSegment(const record::SegmentContent& segment) {
  PackageItem item;
  item.path = segment.info.path;
  item.version = segment.info.version;
  item.category = segment.info.category;
  item.kind = segment.info.kind;
  item.media_type = segment.info.media_type;
  item.content = segment.content;
  return item;
}

Result<PackageItem> ItemFromPart(const interop::SegmentPart& part) {
  PackageItem item;
  item.path = part.path;
  item.version = part.version;
  item.kind = record::ContentKind::kJson;
  item.media_type = vocab::FixedMediaType(item.kind);
  MV_ASSIGN_OR_RETURN(std::string text, internal::Dump(part.body, "segment " + part.path));
  item.content = ToBytes(text);
  return item;
}

Result<interop::SegmentPart> PartFromItem(const PackageItem& item) {
  if (item.kind != record::ContentKind::kJson) {
    return Status::FailedPrecondition("segment " + item.path + " is not a JSON segment");
  }
  interop::SegmentPart part;
  part.path = item.path;
  part.version = item.version;
  MV_ASSIGN_OR_RETURN(part.body, internal::ParseJson(AsString(item.content), kMaxJsonDepth,
                                                     "segment " + item.path));
  if (!part.body.is_object()) {
    return Status::InvalidArgument("segment " + item.path + " is not a JSON object");
  }
  return part;
}

Result<RecipientKeyPair> GenerateRecipientKeyPair() {
  MV_RETURN_IF_ERROR(crypto::InitCrypto());
  RecipientKeyPair kp;
  kp.public_key.resize(kRecipientKeySize);
  kp.secret_key = SecretBytes(kRecipientKeySize);
  if (crypto_box_keypair(kp.public_key.data(), kp.secret_key.data()) != 0) {
    return Status::Internal("crypto_box_keypair failed");
  }
  return kp;
}

Result<Bytes> BuildSharePackage(std::span<const PackageItem> items, const PackageOptions& options) {
  MV_RETURN_IF_ERROR(crypto::InitCrypto());
  if (items.empty()) {
    return Status::InvalidArgument("a share package needs at least one segment");
  }
  if (items.size() > kMaxPackageSegments) {
    return Status::InvalidArgument("a share package has at most " +
                                   std::to_string(kMaxPackageSegments) + " segments");
  }
  MV_RETURN_IF_ERROR(CheckNote(options.note));
  if (!options.recipient_public_key.empty() &&
      options.recipient_public_key.size() != kRecipientKeySize) {
    return Status::InvalidArgument("recipient public key must be " +
                                   std::to_string(kRecipientKeySize) + " bytes");
  }
  if (options.created_at_ms < 0) {
    return Status::InvalidArgument("created_at_ms is negative");
  }
  size_t total = 0;
  for (const PackageItem& item : items) {
    total += item.content.size();
  }
  if (total > options.max_package_bytes) {
    return Status::ResourceExhausted("share package would exceed " +
                                     std::to_string(options.max_package_bytes) + " bytes");
  }
  const std::string created_at =
      FormatRfc3339Millis(options.created_at_ms == 0 ? NowUnixMillis() : options.created_at_ms);
  if (!IsRfc3339Millis(created_at)) {
    return Status::InvalidArgument("created_at_ms is out of range");
  }

  json segments = json::array();
  std::set<std::string> paths;
  for (size_t i = 0; i < items.size(); ++i) {
    const PackageItem& item = items[i];
    MV_RETURN_IF_ERROR(
        record::ValidateSegmentPath(item.path).WithContext("item " + std::to_string(i)));
    const std::string named = "segment " + item.path;
    if (!paths.insert(item.path).second) {
      return Status::InvalidArgument("segment " + item.path + " is given twice");
    }
    if (item.version == 0) {
      return Status::InvalidArgument(named + ": version 0 (packages carry stored versions, >= 1)");
    }
    const std::string category =
        item.category.empty() ? std::string(vocab::TopLevelFor(item.path).category) : item.category;
    MV_RETURN_IF_ERROR(CheckCategory(category).WithContext(named));
    std::string media_type = item.media_type;
    if (media_type.empty()) {
      if (item.kind == record::ContentKind::kBinary) {
        return Status::InvalidArgument(named + ": binary content needs a media type");
      }
      media_type = vocab::FixedMediaType(item.kind);
    }
    MV_RETURN_IF_ERROR(CheckMediaType(media_type).WithContext(named));
    if (vocab::ContentKindName(item.kind).empty()) {
      return Status::InvalidArgument(named + ": unknown content kind");
    }
    json seg = {{"path", item.path},
                {"version", item.version},
                {"category", category},
                {"kind", vocab::ContentKindName(item.kind)},
                {"media_type", media_type}};
    if (item.kind == record::ContentKind::kJson) {
      MV_ASSIGN_OR_RETURN(json content,
                          internal::ParseJson(AsString(item.content), kMaxJsonDepth, named));
      if (!content.is_object()) {
        return Status::InvalidArgument(named + ": JSON content must be an object");
      }
      MV_ASSIGN_OR_RETURN(std::string canonical, internal::Dump(content, named));
      seg["sha256"] = ToHex(crypto::Sha256(AsBytes(canonical)));
      seg["content"] = std::move(content);
    } else {
      if (item.kind == record::ContentKind::kText && !IsValidUtf8(AsString(item.content))) {
        return Status::InvalidArgument(named + ": text content is not valid UTF-8");
      }
      seg["sha256"] = ToHex(crypto::Sha256(item.content));
      seg["content"] = ToBase64Url(item.content);
    }
    segments.push_back(std::move(seg));
  }

  json body = {{"format", kSharePackageFormat},
               {"package_id", NewRandomId()},
               {"created_at", created_at},
               {"segments", std::move(segments)}};
  if (!options.note.empty()) {
    body["note"] = options.note;
  }
  MV_ASSIGN_OR_RETURN(std::string body_text, internal::Dump(body, "share package body"));
  std::string plain = std::string(kSharePackageMagic) + body_text;
  const std::string digest = ToHex(crypto::Sha256(AsBytes(plain)));
  plain += std::string(kDigestPrefix) + digest + "\n";

  Bytes out;
  if (options.recipient_public_key.empty()) {
    out = ToBytes(plain);
  } else {
    MV_ASSIGN_OR_RETURN(out, Seal(AsBytes(plain), options.recipient_public_key));
  }
  if (out.size() > options.max_package_bytes) {
    return Status::ResourceExhausted("share package would exceed " +
                                     std::to_string(options.max_package_bytes) + " bytes");
  }
  return out;
}

Result<Bytes> UnsealSharePackage(ByteView sealed, const SecretBytes& recipient_secret_key,
                                 size_t max_package_bytes) {
  MV_RETURN_IF_ERROR(crypto::InitCrypto());
  if (sealed.size() > max_package_bytes) {
    return Status::ResourceExhausted("share package is larger than " +
                                     std::to_string(max_package_bytes) + " bytes");
  }
  const std::string_view s = AsString(sealed);
  if (s.substr(0, kSealedPrefix.size()) != kSealedPrefix) {
    return Status::InvalidArgument("not a sealed medvault share package (wrong magic)");
  }
  MV_ASSIGN_OR_RETURN(const size_t magic_len,
                      ReadMagicLine(s, kSealedPrefix, "sealed share package"));
  const size_t header_len = magic_len + kRecipientIdSize + kSealedKeySize;
  if (sealed.size() < header_len + crypto::kAeadOverhead) {
    return Status::InvalidArgument("sealed share package is truncated");
  }
  if (recipient_secret_key.size() != kRecipientKeySize) {
    return Status::InvalidArgument("recipient secret key must be " +
                                   std::to_string(kRecipientKeySize) + " bytes");
  }
  std::array<uint8_t, kRecipientKeySize> public_key{};
  if (crypto_scalarmult_base(public_key.data(), recipient_secret_key.data()) != 0) {
    return Status::InvalidArgument("recipient secret key is not a usable X25519 key");
  }
  const Bytes id = RecipientId(public_key);
  if (!ConstantTimeEquals(id, sealed.subspan(magic_len, kRecipientIdSize))) {
    return Status::PermissionDenied("the share package is sealed to another recipient key");
  }
  SecretBytes key(crypto::kKeySize);
  if (crypto_box_seal_open(key.data(), sealed.data() + magic_len + kRecipientIdSize, kSealedKeySize,
                           public_key.data(), recipient_secret_key.data()) != 0) {
    return Status::DataLoss("the share package's key block does not open (altered)");
  }
  auto plain = crypto::AeadOpen(key, sealed.subspan(header_len), sealed.first(header_len));
  if (!plain.ok()) {
    return Status::DataLoss(
        "the sealed share package does not authenticate (altered or truncated)");
  }
  return plain;
}

Result<SharePackage> OpenSharePackage(ByteView bytes, const OpenOptions& options) {
  if (bytes.size() > options.max_package_bytes) {
    return Status::ResourceExhausted("share package is larger than " +
                                     std::to_string(options.max_package_bytes) + " bytes");
  }
  const std::string_view s = AsString(bytes);
  if (s.substr(0, kSealedPrefix.size()) == kSealedPrefix) {
    if (options.recipient_secret_key == nullptr) {
      return Status::FailedPrecondition("the share package is sealed: a recipient key is needed");
    }
    MV_ASSIGN_OR_RETURN(Bytes plain, UnsealSharePackage(bytes, *options.recipient_secret_key,
                                                        options.max_package_bytes));
    return OpenPlain(plain, options);
  }
  return OpenPlain(bytes, options);
}

}  // namespace medvault::engine
