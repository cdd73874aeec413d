// TOTP (RFC 6238) over HOTP (RFC 4226) with OpenSSL HMAC, and RFC 4648 base32.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "auth/auth.h"

namespace medvault::auth {
namespace {

constexpr char kBase32Alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr uint32_t kPow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};
constexpr int kMaxDigits = 8;

const EVP_MD* Digest(TotpAlgorithm algorithm) {
  switch (algorithm) {
    case TotpAlgorithm::kSha256:
      return EVP_sha256();
    case TotpAlgorithm::kSha512:
      return EVP_sha512();
    case TotpAlgorithm::kSha1:
      break;
  }
  return EVP_sha1();
}

const char* AlgorithmName(TotpAlgorithm algorithm) {
  switch (algorithm) {
    case TotpAlgorithm::kSha256:
      return "SHA256";
    case TotpAlgorithm::kSha512:
      return "SHA512";
    case TotpAlgorithm::kSha1:
      break;
  }
  return "SHA1";
}

// Out-of-range parameters fall back to the nearest sensible value.
int Digits(const TotpParams& p) { return std::clamp(p.digits, 6, kMaxDigits); }
int64_t StepSeconds(const TotpParams& p) { return p.step_seconds > 0 ? p.step_seconds : 30; }

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) {
    --q;
  }
  return q;
}

// HOTP value (RFC 4226 section 5.3) written as `digits` ASCII digits to `out`.
void Hotp(ByteView secret, uint64_t counter, TotpAlgorithm algorithm, int digits, char* out) {
  uint8_t msg[8];
  for (int i = 7; i >= 0; --i) {
    msg[i] = static_cast<uint8_t>(counter & 0xff);
    counter >>= 8;
  }
  static const uint8_t kEmptyKey[1] = {0};
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(Digest(algorithm), secret.empty() ? kEmptyKey : secret.data(),
           static_cast<int>(secret.size()), msg, sizeof msg, mac, &len) == nullptr ||
      len < 20) {
    std::fprintf(stderr, "medvault: fatal OpenSSL failure in HMAC\n");
    std::abort();
  }
  // Dynamic truncation: the low nibble of the last byte picks 4 bytes.
  const unsigned offset = mac[len - 1] & 0x0f;
  const uint32_t bin = (static_cast<uint32_t>(mac[offset] & 0x7f) << 24) |
                       (static_cast<uint32_t>(mac[offset + 1]) << 16) |
                       (static_cast<uint32_t>(mac[offset + 2]) << 8) |
                       static_cast<uint32_t>(mac[offset + 3]);
  uint32_t value = bin % kPow10[digits];
  for (int i = digits - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  sodium_memzero(mac, sizeof mac);
}

void PercentEncode(std::string_view in, std::string& out) {
  static const char kHex[] = "0123456789ABCDEF";
  for (char ch : in) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~' || c == '@') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0x0f];
    }
  }
}

}  // namespace

std::string TotpCode(ByteView secret, int64_t unix_seconds, const TotpParams& params) {
  const int digits = Digits(params);
  const int64_t counter = FloorDiv(unix_seconds, StepSeconds(params));
  std::array<char, kMaxDigits> buf{};
  Hotp(secret, static_cast<uint64_t>(counter), params.algorithm, digits, buf.data());
  return std::string(buf.data(), static_cast<size_t>(digits));
}

std::optional<int64_t> TotpMatch(ByteView secret, std::string_view code, int64_t unix_seconds,
                                 const TotpParams& params) {
  const int digits = Digits(params);
  if (code.size() != static_cast<size_t>(digits) ||
      !std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  const int window = std::max(params.window_steps, 0);
  const int64_t now_step = FloorDiv(unix_seconds, StepSeconds(params));
  // Every step of the window is computed and compared in constant time, so
  // the time taken does not tell which step (if any) matched. The latest
  // matching step wins.
  std::optional<int64_t> matched;
  std::array<char, kMaxDigits> buf{};
  for (int64_t w = -window; w <= window; ++w) {
    const int64_t step = now_step + w;
    if (step < 0) {
      continue;
    }
    Hotp(secret, static_cast<uint64_t>(step), params.algorithm, digits, buf.data());
    if (sodium_memcmp(buf.data(), code.data(), static_cast<size_t>(digits)) == 0) {
      matched = step;
    }
  }
  sodium_memzero(buf.data(), buf.size());
  return matched;
}

std::string Base32Encode(ByteView data) {
  std::string out;
  out.reserve((data.size() * 8 + 4) / 5);
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t b : data) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += kBase32Alphabet[(acc >> (bits - 5)) & 0x1f];
      bits -= 5;
    }
  }
  if (bits > 0) {
    out += kBase32Alphabet[(acc << (5 - bits)) & 0x1f];
  }
  return out;
}

Result<Bytes> Base32Decode(std::string_view text) {
  const Status invalid = Status::InvalidArgument("invalid base32");
  size_t len = text.size();
  while (len > 0 && text[len - 1] == '=') {
    --len;
  }
  const size_t padding = text.size() - len;
  // Characters in the last quantum: 2, 4, 5 or 7 (or a full 8).
  const size_t rem = len % 8;
  if (rem == 1 || rem == 3 || rem == 6) {
    return invalid;
  }
  if (padding != 0) {
    static constexpr size_t kPadFor[8] = {0, 0, 6, 0, 4, 3, 0, 1};
    if (rem == 0 || padding != kPadFor[rem]) {
      return invalid;
    }
  }
  Bytes out;
  out.reserve(len * 5 / 8);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len; ++i) {
    const char c = text[i];
    uint32_t v;
    if (c >= 'A' && c <= 'Z') {
      v = static_cast<uint32_t>(c - 'A');
    } else if (c >= 'a' && c <= 'z') {
      v = static_cast<uint32_t>(c - 'a');
    } else if (c >= '2' && c <= '7') {
      v = static_cast<uint32_t>(c - '2' + 26);
    } else {
      return invalid;
    }
    acc = ((acc << 5) | v) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      out.push_back(static_cast<uint8_t>(acc >> (bits - 8)));
      bits -= 8;
    }
  }
  // Leftover bits must be zero: one encoding per byte string.
  if ((acc & ((1u << bits) - 1)) != 0) {
    return invalid;
  }
  return out;
}

std::string OtpauthUri(std::string_view issuer, std::string_view account_name, ByteView secret,
                       const TotpParams& params) {
  std::string uri = "otpauth://totp/";
  PercentEncode(issuer, uri);
  uri += ':';
  PercentEncode(account_name, uri);
  uri += "?secret=";
  uri += Base32Encode(secret);
  uri += "&issuer=";
  PercentEncode(issuer, uri);
  uri += "&algorithm=";
  uri += AlgorithmName(params.algorithm);
  uri += "&digits=";
  uri += std::to_string(Digits(params));
  uri += "&period=";
  uri += std::to_string(StepSeconds(params));
  return uri;
}

}  // namespace medvault::auth
