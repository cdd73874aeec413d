#include "common/bytes.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace medvault {
namespace {

TEST(BytesTest, HexRoundTrip) {
  Bytes b = {0x00, 0x01, 0xab, 0xff};
  EXPECT_EQ(ToHex(b), "0001abff");
  EXPECT_EQ(*FromHex("0001ABff"), b);
  EXPECT_FALSE(FromHex("abc").ok());
  EXPECT_FALSE(FromHex("zz").ok());
}

TEST(BytesTest, Base64UrlRoundTrip) {
  ASSERT_GE(sodium_init(), 0);
  for (size_t n = 0; n < 40; ++n) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i) {
      b[i] = static_cast<uint8_t>(i * 37 + 11);
    }
    std::string enc = ToBase64Url(b);
    EXPECT_EQ(enc.find('='), std::string::npos);
    EXPECT_EQ(*FromBase64Url(enc), b);
  }
  EXPECT_FALSE(FromBase64Url("a+b/").ok());
  EXPECT_FALSE(FromBase64Url("@@@").ok());
  EXPECT_FALSE(FromBase64Url("AAAA=").ok());
  EXPECT_FALSE(FromBase64Url("AA A").ok());
}

// libsodium 1.0.18 decodes every byte >= 0x80 as '/' ('_' for base64url).
TEST(BytesTest, Base64RefusesNonAsciiBytes) {
  for (int c = 0x80; c <= 0xff; ++c) {
    const std::string high(1, static_cast<char>(c));
    EXPECT_FALSE(FromBase64Url("AAA" + high).ok()) << c;
    EXPECT_FALSE(FromBase64("AAA" + high).ok()) << c;
    EXPECT_FALSE(FromBase64("AA" + high + "=").ok()) << c;
  }
}

TEST(BytesTest, Base64Rfc4648Vectors) {
  EXPECT_EQ(ToBase64(AsBytes("")), "");
  EXPECT_EQ(ToBase64(AsBytes("f")), "Zg==");
  EXPECT_EQ(ToBase64(AsBytes("fo")), "Zm8=");
  EXPECT_EQ(ToBase64(AsBytes("foo")), "Zm9v");
  EXPECT_EQ(ToBase64(AsBytes("foob")), "Zm9vYg==");
  EXPECT_EQ(ToBase64(AsBytes("fooba")), "Zm9vYmE=");
  EXPECT_EQ(ToBase64(AsBytes("foobar")), "Zm9vYmFy");
  // The standard alphabet, not base64url: 0xfb 0xff -> "+/8=".
  EXPECT_EQ(ToBase64(Bytes{0xfb, 0xff}), "+/8=");
  EXPECT_EQ(*FromBase64("+/8="), (Bytes{0xfb, 0xff}));
  EXPECT_EQ(*FromBase64("Zm9vYmE="), ToBytes("fooba"));
  EXPECT_TRUE(FromBase64("").ok());
  EXPECT_TRUE(FromBase64("")->empty());
}

TEST(BytesTest, Base64RoundTripsEveryByteAndLength) {
  Bytes all(256);
  for (size_t i = 0; i < all.size(); ++i) {
    all[i] = static_cast<uint8_t>(i);
  }
  for (size_t n = 0; n <= all.size(); ++n) {
    const Bytes b(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n));
    const std::string enc = ToBase64(b);
    EXPECT_EQ(enc.size(), (n + 2) / 3 * 4);
    Result<Bytes> back = FromBase64(enc);
    ASSERT_TRUE(back.ok()) << n << ": " << back.status().ToString();
    EXPECT_EQ(*back, b);
  }
}

TEST(BytesTest, Base64RefusesAllButTheCanonicalForm) {
  struct Case {
    std::string_view text;
    std::string_view message;
  };
  const Case cases[] = {
      {"Zg", "length is not a multiple of 4"},            // padding missing
      {"Zg=", "length is not a multiple of 4"},           // padding short
      {"Zm9vZ", "length is not a multiple of 4"},         // a lone last digit
      {"Zm9v=", "length is not a multiple of 4"},         // padding not needed
      {"Zm9v\n", "length is not a multiple of 4"},        // trailing newline
      {"Zm9vYmFy\r\n", "length is not a multiple of 4"},  //
      {"Zh==", "non-canonical base64 padding"},           // unused bits set
      {"Zm9=", "non-canonical base64 padding"},           //
      {"Zm 9v", "length is not a multiple of 4"},         // whitespace
      {"Zm 9", "invalid base64 character"},               //
      {" Zm9", "invalid base64 character"},               //
      {"Zm9\n", "invalid base64 character"},              //
      {"Zm9\t", "invalid base64 character"},              //
      {std::string_view("Zm9\0", 4), "invalid base64 character"},
      {"Zm-v", "invalid base64 character"},      // base64url alphabet
      {"Zm_v", "invalid base64 character"},      //
      {"Zm.v", "invalid base64 character"},      //
      {"Zm9v====", "invalid base64 character"},  // padding after a full group
      {"Zm9vZ===", "invalid base64 character"},  // three '='
      {"Z===", "invalid base64 character"},      //
      {"====", "invalid base64 character"},      //
      {"=Zm9", "invalid base64 character"},      // '=' first
      {"Zg=a", "invalid base64 character"},      // '=' inside the group
      {"Zg==Zg==", "invalid base64 character"},  // text after the padding
      {"Zg==Zm9v", "invalid base64 character"},  //
  };
  for (const Case& c : cases) {
    Result<Bytes> r = FromBase64(c.text);
    ASSERT_FALSE(r.ok()) << testing::PrintToString(c.text);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.message), std::string::npos)
        << testing::PrintToString(c.text) << ": " << r.status().message();
  }
}

TEST(BytesTest, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("Zo\xc3\xab"));         // ë
  EXPECT_TRUE(IsValidUtf8("\xe2\x82\xac"));       // €
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x98\x80"));   // emoji
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("a\x80"));
}

TEST(BytesTest, ReaderFailsClosed) {
  Bytes b;
  PutU8(b, 7);
  PutU16(b, 0x1234);
  PutU32(b, 0xdeadbeef);
  PutU64(b, 0x0102030405060708ull);
  PutLengthPrefixed(b, AsBytes("abc"));
  ByteReader r(b);
  uint8_t u8;
  uint16_t u16;
  uint32_t u32;
  uint64_t u64;
  ByteView v;
  ASSERT_TRUE(r.ReadU8(&u8) && r.ReadU16(&u16) && r.ReadU32(&u32) && r.ReadU64(&u64));
  EXPECT_EQ(u8, 7);
  EXPECT_EQ(u16, 0x1234);
  EXPECT_EQ(u32, 0xdeadbeef);
  EXPECT_EQ(u64, 0x0102030405060708ull);
  ASSERT_TRUE(r.ReadLengthPrefixed(16, &v));
  EXPECT_EQ(AsString(v), "abc");
  EXPECT_TRUE(r.AtEnd());
  EXPECT_FALSE(r.ReadU8(&u8));
  EXPECT_TRUE(r.failed());
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(BytesTest, ReaderRejectsOversizedLength) {
  Bytes b;
  PutU32(b, 1000);
  b.resize(b.size() + 1000);
  ByteReader r(b);
  ByteView v;
  EXPECT_FALSE(r.ReadLengthPrefixed(999, &v));
  EXPECT_TRUE(r.failed());
  uint8_t x;
  EXPECT_FALSE(r.ReadU8(&x));  // stays failed
  Bytes shortbuf;
  PutU32(shortbuf, 10);
  ByteReader r2(shortbuf);
  EXPECT_FALSE(r2.ReadLengthPrefixed(100, &v));  // claims more than present
}

}  // namespace
}  // namespace medvault

namespace medvault {
namespace {

TEST(Utf8, DecodeUtf8ReturnsLengthAndCodePoint) {
  uint32_t cp = 0;
  EXPECT_EQ(DecodeUtf8("A", 0, &cp), 1u);
  EXPECT_EQ(cp, 0x41u);
  EXPECT_EQ(DecodeUtf8("\xC3\xA9", 0, &cp), 2u);  // é
  EXPECT_EQ(cp, 0xE9u);
  EXPECT_EQ(DecodeUtf8("x\xE2\x82\xAC", 1, &cp), 3u);  // €
  EXPECT_EQ(cp, 0x20ACu);
  EXPECT_EQ(DecodeUtf8("\xF0\x9F\x98\x80", 0, &cp), 4u);
  EXPECT_EQ(cp, 0x1F600u);
  for (std::string_view bad :
       {"\x80", "\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xC3", "\xE2\x82",
        "\xF8\x88\x80\x80\x80", "\xC3\x28"}) {
    EXPECT_EQ(DecodeUtf8(bad, 0, &cp), 0u) << testing::PrintToString(bad);
  }
}

}  // namespace
}  // namespace medvault
