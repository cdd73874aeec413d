#include "common/bytes.h"

#include <gtest/gtest.h>
#include <sodium.h>

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
