// Byte buffers, encodings and a bounds-checked reader for hostile input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace medvault {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

inline ByteView AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view AsString(ByteView b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
inline Bytes ToBytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

std::string ToHex(ByteView data);
// Lower- or upper-case hex, even length; anything else is InvalidArgument.
Result<Bytes> FromHex(std::string_view hex);

// RFC 4648 base64url without padding.
std::string ToBase64Url(ByteView data);
Result<Bytes> FromBase64Url(std::string_view text);

// RFC 4648 section 4 base64: standard alphabet, with padding (as FHIR's
// base64Binary). Decoding is strict and accepts only the canonical spelling:
// no whitespace or other characters outside the alphabet, no text after the
// padding, exactly the padding the length needs, and zero unused bits.
// Failures are InvalidArgument ("base64 length is not a multiple of 4",
// "invalid base64 character" or "non-canonical base64 padding"); the
// messages never quote the text.
std::string ToBase64(ByteView data);
Result<Bytes> FromBase64(std::string_view text);

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(std::string_view s);
// Decodes the UTF-8 sequence starting at s[i] (REQUIRES: i < s.size()):
// returns its length (1..4) and stores the code point, or returns 0 when the
// bytes there are not valid UTF-8 (a stray continuation byte, an overlong
// form, a surrogate, beyond U+10FFFF, or truncated).
size_t DecodeUtf8(std::string_view s, size_t i, uint32_t* code_point);

// Little-endian fixed-width appends.
void PutU8(Bytes& out, uint8_t v);
void PutU16(Bytes& out, uint16_t v);
void PutU32(Bytes& out, uint32_t v);
void PutU64(Bytes& out, uint64_t v);
// u32 length prefix followed by the bytes. REQUIRES: data.size() < 2^32.
void PutLengthPrefixed(Bytes& out, ByteView data);

// Reads fixed-width little-endian fields from a borrowed buffer. Every read
// checks bounds and fails closed: after the first failure all reads fail.
class ByteReader {
 public:
  explicit ByteReader(ByteView data) : data_(data) {}

  bool ReadU8(uint8_t* v);
  bool ReadU16(uint16_t* v);
  bool ReadU32(uint32_t* v);
  bool ReadU64(uint64_t* v);
  // Borrows `n` bytes; the view lives as long as the underlying buffer.
  bool ReadBytes(size_t n, ByteView* out);
  // u32 length prefix, rejected when above `max_len`.
  bool ReadLengthPrefixed(size_t max_len, ByteView* out);

  size_t remaining() const { return failed_ ? 0 : data_.size() - pos_; }
  bool failed() const { return failed_; }
  bool AtEnd() const { return !failed_ && pos_ == data_.size(); }

 private:
  bool Take(size_t n, const uint8_t** p);
  ByteView data_;
  size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace medvault
