#include "common/bytes.h"

#include <sodium.h>

#include <optional>
#include <utility>

namespace medvault {

std::string ToHex(ByteView data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (uint8_t b : data) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

static int HexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

Result<Bytes> FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    return Status::InvalidArgument("hex string has odd length");
  }
  Bytes out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = HexValue(hex[i]);
    int lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return Status::InvalidArgument("hex string has a non-hex character");
    }
    out.push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return out;
}

namespace {

std::string EncodeBase64(ByteView data, int variant) {
  std::string out(sodium_base64_encoded_len(data.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), data.data(), data.size(), variant);
  out.resize(out.size() - 1);  // drop the NUL terminator
  return out;
}

// Strict decoding of all of `text`, or nullopt.
std::optional<Bytes> DecodeBase64(std::string_view text, int variant) {
  // libsodium 1.0.18 reads every byte >= 0x80 as '/' (or '_'): a char is
  // signed there. Later releases refuse them; do it here for all.
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      return std::nullopt;
    }
  }
  Bytes out(text.size() * 3 / 4 + 3);
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &len, &end,
                        variant) != 0 ||
      end != text.data() + text.size()) {
    return std::nullopt;
  }
  out.resize(len);
  return out;
}

bool IsBase64Digit(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

}  // namespace

std::string ToBase64Url(ByteView data) {
  return EncodeBase64(data, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

Result<Bytes> FromBase64Url(std::string_view text) {
  std::optional<Bytes> out = DecodeBase64(text, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  if (!out) {
    return Status::InvalidArgument("invalid base64url");
  }
  return std::move(*out);
}

std::string ToBase64(ByteView data) { return EncodeBase64(data, sodium_base64_VARIANT_ORIGINAL); }

Result<Bytes> FromBase64(std::string_view text) {
  if (text.size() % 4 != 0) {
    return Status::InvalidArgument("base64 length is not a multiple of 4");
  }
  std::optional<Bytes> out = DecodeBase64(text, sodium_base64_VARIANT_ORIGINAL);
  if (out) {
    return std::move(*out);
  }
  // libsodium only says no. Name the reason: a character outside the
  // alphabet (or '=' anywhere but the last two places), else the padding
  // does not fit the unused bits.
  const size_t digits = text.find_last_not_of('=') + 1;  // 0 when all '='
  for (size_t i = 0; i < digits; ++i) {
    if (!IsBase64Digit(text[i])) {
      return Status::InvalidArgument("invalid base64 character");
    }
  }
  if (text.size() - digits > 2) {
    return Status::InvalidArgument("invalid base64 character");
  }
  return Status::InvalidArgument("non-canonical base64 padding");
}

size_t DecodeUtf8(std::string_view s, size_t i, uint32_t* code_point) {
  const auto c = static_cast<uint8_t>(s[i]);
  if (c < 0x80) {
    *code_point = c;
    return 1;
  }
  size_t len;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (s.size() - i < len) {
    return 0;
  }
  for (size_t k = 1; k < len; ++k) {
    const auto cc = static_cast<uint8_t>(s[i + k]);
    if ((cc & 0xC0) != 0x80) {
      return 0;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
      cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  *code_point = cp;
  return len;
}

bool IsValidUtf8(std::string_view s) {
  uint32_t cp = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t len = DecodeUtf8(s, i, &cp);
    if (len == 0) {
      return false;
    }
    i += len;
  }
  return true;
}

void PutU8(Bytes& out, uint8_t v) { out.push_back(v); }
void PutU16(Bytes& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v));
  out.push_back(static_cast<uint8_t>(v >> 8));
}
void PutU32(Bytes& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) {
    out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
}
void PutU64(Bytes& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
}
void PutLengthPrefixed(Bytes& out, ByteView data) {
  PutU32(out, static_cast<uint32_t>(data.size()));
  out.insert(out.end(), data.begin(), data.end());
}

bool ByteReader::Take(size_t n, const uint8_t** p) {
  if (failed_ || data_.size() - pos_ < n) {
    failed_ = true;
    return false;
  }
  *p = data_.data() + pos_;
  pos_ += n;
  return true;
}

bool ByteReader::ReadU8(uint8_t* v) {
  const uint8_t* p;
  if (!Take(1, &p)) {
    return false;
  }
  *v = p[0];
  return true;
}

bool ByteReader::ReadU16(uint16_t* v) {
  const uint8_t* p;
  if (!Take(2, &p)) {
    return false;
  }
  *v = static_cast<uint16_t>(p[0] | (p[1] << 8));
  return true;
}

bool ByteReader::ReadU32(uint32_t* v) {
  const uint8_t* p;
  if (!Take(4, &p)) {
    return false;
  }
  *v = 0;
  for (int i = 3; i >= 0; --i) {
    *v = (*v << 8) | p[i];
  }
  return true;
}

bool ByteReader::ReadU64(uint64_t* v) {
  const uint8_t* p;
  if (!Take(8, &p)) {
    return false;
  }
  *v = 0;
  for (int i = 7; i >= 0; --i) {
    *v = (*v << 8) | p[i];
  }
  return true;
}

bool ByteReader::ReadBytes(size_t n, ByteView* out) {
  const uint8_t* p;
  if (!Take(n, &p)) {
    return false;
  }
  *out = ByteView(p, n);
  return true;
}

bool ByteReader::ReadLengthPrefixed(size_t max_len, ByteView* out) {
  uint32_t len;
  if (!ReadU32(&len)) {
    return false;
  }
  if (len > max_len) {
    failed_ = true;
    return false;
  }
  return ReadBytes(len, out);
}

}  // namespace medvault
