// TOTP (RFC 6238), HOTP (RFC 4226), base32 (RFC 4648) and otpauth URIs.
#include <cstdint>
#include <string>
#include <vector>

#include "auth/auth.h"
#include "crypto_test_util.h"

namespace medvault::auth {
namespace {

const Bytes kSeed20 = ToBytes("12345678901234567890");
const Bytes kSeed32 = ToBytes("12345678901234567890123456789012");
const Bytes kSeed64 = ToBytes("1234567890123456789012345678901234567890123456789012345678901234");

TotpParams Rfc6238(TotpAlgorithm algorithm) {
  TotpParams p;
  p.algorithm = algorithm;
  p.digits = 8;
  p.step_seconds = 30;
  return p;
}

// --- RFC 6238 Appendix B ---------------------------------------------------

struct Rfc6238Vector {
  int64_t time;
  const char* sha1;
  const char* sha256;
  const char* sha512;
};

constexpr Rfc6238Vector kRfc6238[] = {
    {59, "94287082", "46119246", "90693936"},
    {1111111109, "07081804", "68084774", "25091201"},
    {1111111111, "14050471", "67062674", "99943326"},
    {1234567890, "89005924", "91819424", "93441116"},
    {2000000000, "69279037", "90698825", "38618901"},
    {20000000000, "65353130", "77737706", "47863826"},
};

TEST(TotpTest, Rfc6238AppendixBVectors) {
  for (const auto& v : kRfc6238) {
    EXPECT_EQ(TotpCode(kSeed20, v.time, Rfc6238(TotpAlgorithm::kSha1)), v.sha1) << v.time;
    EXPECT_EQ(TotpCode(kSeed32, v.time, Rfc6238(TotpAlgorithm::kSha256)), v.sha256) << v.time;
    EXPECT_EQ(TotpCode(kSeed64, v.time, Rfc6238(TotpAlgorithm::kSha512)), v.sha512) << v.time;
  }
}

TEST(TotpTest, Rfc6238VectorsMatchAtTheirStep) {
  for (const auto& v : kRfc6238) {
    const int64_t step = v.time / 30;
    TotpParams p = Rfc6238(TotpAlgorithm::kSha1);
    p.window_steps = 0;
    EXPECT_EQ(TotpMatch(kSeed20, v.sha1, v.time, p), step) << v.time;
    p = Rfc6238(TotpAlgorithm::kSha256);
    p.window_steps = 0;
    EXPECT_EQ(TotpMatch(kSeed32, v.sha256, v.time, p), step) << v.time;
    p = Rfc6238(TotpAlgorithm::kSha512);
    p.window_steps = 0;
    EXPECT_EQ(TotpMatch(kSeed64, v.sha512, v.time, p), step) << v.time;
  }
}

// --- RFC 4226 Appendix D ---------------------------------------------------

TEST(TotpTest, Rfc4226AppendixDHotpValues) {
  // With a 1-second step the TOTP counter is the time itself: plain HOTP.
  TotpParams p;
  p.algorithm = TotpAlgorithm::kSha1;
  p.digits = 6;
  p.step_seconds = 1;
  const char* kExpected[] = {"755224", "287082", "359152", "969429", "338314",
                             "254676", "287922", "162583", "399871", "520489"};
  for (int counter = 0; counter < 10; ++counter) {
    EXPECT_EQ(TotpCode(kSeed20, counter, p), kExpected[counter]) << counter;
  }
}

TEST(TotpTest, Rfc4226TruncatedValuesWithEightDigits) {
  // Appendix D "Truncated" decimal values, modulo 10^8.
  TotpParams p;
  p.digits = 8;
  p.step_seconds = 1;
  const char* kExpected[] = {"84755224", "94287082", "37359152", "26969429", "40338314",
                             "68254676", "18287922", "82162583", "73399871", "45520489"};
  for (int counter = 0; counter < 10; ++counter) {
    EXPECT_EQ(TotpCode(kSeed20, counter, p), kExpected[counter]) << counter;
  }
}

TEST(TotpTest, SevenDigitsArePaddedAndDigitsAreClamped) {
  TotpParams p;
  p.step_seconds = 1;
  p.digits = 7;
  EXPECT_EQ(TotpCode(kSeed20, 7, p), "2162583");  // 82162583 mod 10^7, zero-padded
  p.digits = 4;                                   // below 6: clamped to 6
  EXPECT_EQ(TotpCode(kSeed20, 0, p), "755224");
  p.digits = 12;  // above 8: clamped to 8
  EXPECT_EQ(TotpCode(kSeed20, 0, p), "84755224");
}

// --- Matching --------------------------------------------------------------

class TotpMatchTest : public ::testing::Test {
 protected:
  // 1'000'000'020 is the first second of step 33'333'334.
  static constexpr int64_t kNow = 1'000'000'020;
  static constexpr int64_t kStep = kNow / 30;
  std::string CodeAt(int64_t step) const { return TotpCode(kSeed20, step * 30, params_); }
  TotpParams params_;  // SHA1, 6 digits, 30 s, window 1
};

TEST_F(TotpMatchTest, CurrentStepMatches) {
  EXPECT_EQ(TotpMatch(kSeed20, CodeAt(kStep), kNow, params_), kStep);
}

TEST_F(TotpMatchTest, WindowEdges) {
  EXPECT_EQ(TotpMatch(kSeed20, CodeAt(kStep - 1), kNow, params_), kStep - 1);
  EXPECT_EQ(TotpMatch(kSeed20, CodeAt(kStep + 1), kNow, params_), kStep + 1);
  EXPECT_EQ(TotpMatch(kSeed20, CodeAt(kStep - 2), kNow, params_), std::nullopt);
  EXPECT_EQ(TotpMatch(kSeed20, CodeAt(kStep + 2), kNow, params_), std::nullopt);

  params_.window_steps = 0;
  EXPECT_EQ(TotpMatch(kSeed20, CodeAt(kStep), kNow, params_), kStep);
  EXPECT_EQ(TotpMatch(kSeed20, CodeAt(kStep - 1), kNow, params_), std::nullopt);
  EXPECT_EQ(TotpMatch(kSeed20, CodeAt(kStep + 1), kNow, params_), std::nullopt);

  params_.window_steps = 2;
  EXPECT_EQ(TotpMatch(kSeed20, CodeAt(kStep - 2), kNow, params_), kStep - 2);
  EXPECT_EQ(TotpMatch(kSeed20, CodeAt(kStep + 2), kNow, params_), kStep + 2);
  EXPECT_EQ(TotpMatch(kSeed20, CodeAt(kStep + 3), kNow, params_), std::nullopt);
}

TEST_F(TotpMatchTest, StepBoundaries) {
  params_.window_steps = 0;
  const int64_t start = kStep * 30;
  EXPECT_EQ(TotpMatch(kSeed20, CodeAt(kStep), start, params_), kStep);
  EXPECT_EQ(TotpMatch(kSeed20, CodeAt(kStep), start + 29, params_), kStep);
  EXPECT_EQ(TotpMatch(kSeed20, CodeAt(kStep), start + 30, params_), std::nullopt);
  EXPECT_EQ(TotpMatch(kSeed20, CodeAt(kStep), start - 1, params_), std::nullopt);
  params_.window_steps = 1;
  EXPECT_EQ(TotpMatch(kSeed20, CodeAt(kStep), start + 30, params_), kStep);
  EXPECT_EQ(TotpMatch(kSeed20, CodeAt(kStep), start + 59, params_), kStep);
  EXPECT_EQ(TotpMatch(kSeed20, CodeAt(kStep), start + 60, params_), std::nullopt);
}

TEST_F(TotpMatchTest, NoNegativeStepsNearTheEpoch) {
  TotpParams p;
  p.step_seconds = 30;
  EXPECT_EQ(TotpMatch(kSeed20, TotpCode(kSeed20, 0, p), 5, p), 0);
}

TEST_F(TotpMatchTest, WrongAndMalformedCodes) {
  const std::string good = CodeAt(kStep);
  std::string wrong = good;
  wrong[0] = wrong[0] == '9' ? '0' : static_cast<char>(wrong[0] + 1);
  EXPECT_EQ(TotpMatch(kSeed20, wrong, kNow, params_), std::nullopt);
  EXPECT_EQ(TotpMatch(kSeed20, "", kNow, params_), std::nullopt);
  EXPECT_EQ(TotpMatch(kSeed20, good.substr(0, 5), kNow, params_), std::nullopt);
  EXPECT_EQ(TotpMatch(kSeed20, good + "0", kNow, params_), std::nullopt);
  EXPECT_EQ(TotpMatch(kSeed20, " " + good.substr(1), kNow, params_), std::nullopt);
  EXPECT_EQ(TotpMatch(kSeed20, good.substr(0, 5) + "a", kNow, params_), std::nullopt);
  EXPECT_EQ(TotpMatch(kSeed20, std::string(good.data(), 5) + '\0', kNow, params_), std::nullopt);
  // The code of another secret (these differ at this time).
  const std::string other = TotpCode(kSeed32, kNow, params_);
  ASSERT_NE(other, good);
  EXPECT_EQ(TotpMatch(kSeed20, other, kNow, params_), std::nullopt);
  // An 8-digit code when 6 are expected.
  TotpParams eight = params_;
  eight.digits = 8;
  EXPECT_EQ(TotpMatch(kSeed20, TotpCode(kSeed20, kNow, eight), kNow, params_), std::nullopt);
}

// --- Base32 (RFC 4648 section 10) ------------------------------------------

struct Base32Vector {
  const char* plain;
  const char* padded;
};

constexpr Base32Vector kBase32[] = {
    {"", ""},
    {"f", "MY======"},
    {"fo", "MZXQ===="},
    {"foo", "MZXW6==="},
    {"foob", "MZXW6YQ="},
    {"fooba", "MZXW6YTB"},
    {"foobar", "MZXW6YTBOI======"},
};

std::string StripPadding(std::string s) {
  while (!s.empty() && s.back() == '=') {
    s.pop_back();
  }
  return s;
}

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return s;
}

TEST(Base32Test, Rfc4648VectorsEncodeWithoutPadding) {
  for (const auto& v : kBase32) {
    EXPECT_EQ(Base32Encode(AsBytes(v.plain)), StripPadding(v.padded)) << v.plain;
  }
}

TEST(Base32Test, Rfc4648VectorsDecodeWithOrWithoutPaddingAnyCase) {
  for (const auto& v : kBase32) {
    for (const std::string& text : {std::string(v.padded), StripPadding(v.padded), Lower(v.padded),
                                    Lower(StripPadding(v.padded))}) {
      auto decoded = Base32Decode(text);
      ASSERT_TRUE(decoded.ok()) << text;
      EXPECT_EQ(AsString(*decoded), v.plain) << text;
    }
  }
}

TEST(Base32Test, RoundTripsTotpSecrets) {
  EXPECT_EQ(Base32Encode(kSeed20), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
  for (size_t n = 0; n < 70; ++n) {
    Bytes data(n);
    crypto::RandomBytes(data);
    auto back = Base32Decode(Base32Encode(data));
    ASSERT_TRUE(back.ok()) << n;
    EXPECT_EQ(*back, data) << n;
  }
}

TEST(Base32Test, RejectsMalformedInput) {
  for (const char* bad : {
           "M",           // 1 character cannot hold a byte
           "MZX",         // 3 characters: not a valid final quantum
           "MZXW6Y",      // 6 characters: neither
           "MZ1W",        // '1' is not in the alphabet
           "MZ0W",        // nor '0'
           "MZ W6===",    // nor space
           "MZXW6YQ-",    // nor '-'
           "MY=====",     // 7 padding characters: length not a multiple of 8
           "MY=======",   // 7 padding characters after 2 data characters
           "MZXQ======",  // too much padding
           "MZXW6YQ==",   // padding beyond the quantum
           "MY==MY==",    // padding in the middle
           "MZ======",    // non-zero trailing bits: non-canonical
           "MZXR",        // likewise
           "========",    // padding only
       }) {
    EXPECT_EQ(Base32Decode(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

// --- otpauth URI -------------------------------------------------------------

TEST(OtpauthUriTest, Format) {
  TotpParams p;
  EXPECT_EQ(OtpauthUri("medvault", "alice@example.org", kSeed20, p),
            "otpauth://totp/medvault:alice@example.org?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
            "&issuer=medvault&algorithm=SHA1&digits=6&period=30");
  p.algorithm = TotpAlgorithm::kSha256;
  p.digits = 8;
  p.step_seconds = 60;
  EXPECT_EQ(OtpauthUri("St Mary's", "dr.who", kSeed20, p),
            "otpauth://totp/St%20Mary%27s:dr.who?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
            "&issuer=St%20Mary%27s&algorithm=SHA256&digits=8&period=60");
  p.algorithm = TotpAlgorithm::kSha512;
  const std::string uri = OtpauthUri("Ümlaut:&?", "a/b", kSeed20, p);
  EXPECT_TRUE(uri.starts_with("otpauth://totp/%C3%9Cmlaut%3A%26%3F:a%2Fb?secret=")) << uri;
  EXPECT_NE(uri.find("&algorithm=SHA512&"), std::string::npos) << uri;
}

TEST(OtpauthUriTest, SecretInUriDecodesToTheSecret) {
  Bytes secret(20);
  crypto::RandomBytes(secret);
  const std::string uri = OtpauthUri("medvault", "bob", secret, TotpParams{});
  const size_t start = uri.find("secret=") + 7;
  const size_t end = uri.find('&', start);
  auto decoded = Base32Decode(uri.substr(start, end - start));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, secret);
}

}  // namespace
}  // namespace medvault::auth
