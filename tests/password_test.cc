// Password strength policy and Argon2id hashing.
#include <sodium.h>

#include <string>

#include "auth/auth.h"
#include "crypto_test_util.h"

namespace medvault::auth {
namespace {

// Smallest parameters libsodium allows, for speed.
Argon2Params FastParams() {
  Argon2Params p;
  p.ops_limit = crypto_pwhash_argon2id_OPSLIMIT_MIN;
  p.mem_limit = crypto_pwhash_argon2id_MEMLIMIT_MIN;
  return p;
}

constexpr char kGood[] = "Correct-Horse-Battery-9";

// --- Hashing ---------------------------------------------------------------

TEST(PasswordHashTest, HashThenVerify) {
  auto hash = HashPassword(kGood, FastParams());
  ASSERT_TRUE(hash.ok()) << hash.status().ToString();
  EXPECT_TRUE(hash->starts_with("$argon2id$v=19$m=8,t=1,p=1$")) << *hash;
  EXPECT_EQ(hash->find(kGood), std::string::npos);
  EXPECT_TRUE(VerifyPassword(*hash, kGood));
}

TEST(PasswordHashTest, DefaultParametersAreInteractiveArgon2id) {
  const Argon2Params defaults;
  EXPECT_EQ(defaults.ops_limit, crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE);
  EXPECT_EQ(defaults.mem_limit, crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE);
  auto hash = HashPassword(kGood, defaults);
  ASSERT_TRUE(hash.ok()) << hash.status().ToString();
  EXPECT_TRUE(hash->starts_with("$argon2id$v=19$m=65536,t=2,p=1$")) << *hash;
  EXPECT_TRUE(VerifyPassword(*hash, kGood));
  EXPECT_FALSE(VerifyPassword(*hash, "Correct-Horse-Battery-8"));
  EXPECT_FALSE(PasswordNeedsRehash(*hash, defaults));
  EXPECT_TRUE(PasswordNeedsRehash(*hash, FastParams()));
}

TEST(PasswordHashTest, SaltsDiffer) {
  auto a = HashPassword(kGood, FastParams());
  auto b = HashPassword(kGood, FastParams());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_TRUE(VerifyPassword(*a, kGood));
  EXPECT_TRUE(VerifyPassword(*b, kGood));
}

TEST(PasswordHashTest, WrongPasswordsFail) {
  auto hash = HashPassword(kGood, FastParams());
  ASSERT_TRUE(hash.ok());
  EXPECT_FALSE(VerifyPassword(*hash, "correct-horse-battery-9"));  // case matters
  EXPECT_FALSE(VerifyPassword(*hash, "Correct-Horse-Battery-9 "));
  EXPECT_FALSE(VerifyPassword(*hash, "Correct-Horse-Battery-"));
  EXPECT_FALSE(VerifyPassword(*hash, ""));
  EXPECT_FALSE(VerifyPassword(*hash, std::string("Correct-Horse-Battery-9\0x", 25)));
}

TEST(PasswordHashTest, EmptyPasswordHashesAndVerifies) {
  auto hash = HashPassword("", FastParams());
  ASSERT_TRUE(hash.ok());
  EXPECT_TRUE(VerifyPassword(*hash, ""));
  EXPECT_FALSE(VerifyPassword(*hash, "x"));
}

TEST(PasswordHashTest, MalformedHashesFailWithoutCrashing) {
  auto hash = HashPassword(kGood, FastParams());
  ASSERT_TRUE(hash.ok());
  std::string tampered = *hash;
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
  EXPECT_FALSE(VerifyPassword(tampered, kGood));
  EXPECT_FALSE(VerifyPassword("", kGood));
  EXPECT_FALSE(VerifyPassword("$argon2id$", kGood));
  EXPECT_FALSE(VerifyPassword("$argon2id$v=19$m=8,t=1,p=1$", kGood));
  EXPECT_FALSE(VerifyPassword("not a hash at all", kGood));
  EXPECT_FALSE(VerifyPassword(hash->substr(0, hash->size() / 2), kGood));
  EXPECT_FALSE(VerifyPassword(*hash + std::string(200, 'A'), kGood));  // too long
  EXPECT_FALSE(VerifyPassword(std::string(hash->data(), 10) + '\0' + hash->substr(11), kGood));
  // Only Argon2id is accepted, even for a well-formed Argon2i hash.
  std::string argon2i = *hash;
  argon2i.replace(0, 10, "$argon2i$");
  EXPECT_FALSE(VerifyPassword(argon2i, kGood));
  EXPECT_TRUE(PasswordNeedsRehash("garbage", FastParams()));
}

TEST(PasswordHashTest, ParametersOutOfRangeAreRefused) {
  Argon2Params p = FastParams();
  p.ops_limit = 0;
  EXPECT_EQ(HashPassword(kGood, p).status().code(), StatusCode::kInvalidArgument);
  p = FastParams();
  p.mem_limit = crypto_pwhash_argon2id_MEMLIMIT_MIN - 1;
  EXPECT_EQ(HashPassword(kGood, p).status().code(), StatusCode::kInvalidArgument);
}

TEST(PasswordHashTest, VerificationCounterCountsArgon2Runs) {
  auto hash = HashPassword(kGood, FastParams());
  ASSERT_TRUE(hash.ok());
  const uint64_t before = PasswordVerificationCount();
  EXPECT_TRUE(VerifyPassword(*hash, kGood));
  EXPECT_FALSE(VerifyPassword(*hash, "nope"));
  EXPECT_EQ(PasswordVerificationCount(), before + 2);
  EXPECT_FALSE(VerifyPassword("garbage", kGood));  // refused before Argon2
  EXPECT_EQ(PasswordVerificationCount(), before + 2);
}

// --- Strength --------------------------------------------------------------

class StrengthTest : public ::testing::Test {
 protected:
  Status Check(std::string_view password, std::string_view username = "alice") {
    return CheckPasswordStrength(password, username, policy_);
  }
  void ExpectRefused(std::string_view password, std::string_view fragment,
                     std::string_view username = "alice") {
    Status st = Check(password, username);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << password;
    EXPECT_NE(st.message().find(fragment), std::string::npos) << st.message();
    // The password itself never appears in the message ("password" is a
    // word of every message, so it is the one exception).
    if (!password.empty() && password != "password") {
      EXPECT_EQ(st.message().find(password), std::string::npos) << st.message();
    }
  }
  PasswordPolicy policy_;
};

TEST_F(StrengthTest, AcceptsGoodPasswords) {
  EXPECT_TRUE(Check(kGood).ok());
  EXPECT_TRUE(Check("blue-Tractor-in-rain").ok());        // lower, upper, other
  EXPECT_TRUE(Check("Zebra crossing 42").ok());           // 4 classes with spaces
  EXPECT_TRUE(Check("grüne Wiese am See 7").ok());        // non-ASCII counts as other
  EXPECT_TRUE(Check(std::string(126, 'a') + "B1").ok());  // exactly 128 bytes
}

TEST_F(StrengthTest, TooShortCountsCodePoints) {
  ExpectRefused("Sh0rt-pass!", "too short");  // 11 characters
  EXPECT_TRUE(Check("Sh0rt-pass!x").ok());    // 12
  // 11 code points in 22 bytes is still too short: length is in characters.
  ExpectRefused("ÄÖÜäöüß1A-x", "too short");
  ExpectRefused("", "too short");
}

TEST_F(StrengthTest, TooLongCountsBytes) {
  const std::string long_one = "Aa1-" + std::string(125, 'x');  // 129 bytes
  ExpectRefused(long_one, "too long");
  ExpectRefused(std::string(127, 'a') + "B1", "too long");
  // 65 two-byte characters: 65 code points but 130 bytes.
  std::string wide;
  for (int i = 0; i < 65; ++i) {
    wide += "é";
  }
  ExpectRefused(wide + "A1", "too long");
}

TEST_F(StrengthTest, InvalidUtf8) {
  ExpectRefused(std::string("Valid-Prefix1\xff\xfe"), "UTF-8");
  ExpectRefused(std::string("Overlong-\xc0\xaf-Pass1"), "UTF-8");
  ExpectRefused(std::string("Surrogate-\xed\xa0\x80-Pass1"), "UTF-8");
}

TEST_F(StrengthTest, SingleRepeatedCharacter) {
  ExpectRefused("############", "single repeated character");
  ExpectRefused("ééééééééééééé", "single repeated character");
  ExpectRefused("aaaaaaaaaaaaaaaa", "single repeated character");
}

TEST_F(StrengthTest, TooFewCharacterClasses) {
  ExpectRefused("alllowercaseletters", "at least 3 of");
  ExpectRefused("lowercase-only-words", "at least 3 of");  // lower + other = 2
  ExpectRefused("ALLUPPER1234567", "at least 3 of");       // upper + digit = 2
  EXPECT_TRUE(Check("lowercase-and-UPPER").ok());          // 3
  policy_.min_character_classes = 4;
  ExpectRefused("lowercase-and-UPPER", "at least 4 of");
  EXPECT_TRUE(Check("lowercase-and-UPPER-9").ok());
}

TEST_F(StrengthTest, ContainsUsername) {
  ExpectRefused("My-alice-Password9", "username", "alice");
  ExpectRefused("My-ALICE-Password9", "username", "alice");  // case-insensitive
  // The local part of an e-mail-like username counts too.
  ExpectRefused("Dr-Bob.Smith-2024!", "username", "bob.smith@clinic.example");
  // Usernames shorter than 3 characters are not searched for.
  EXPECT_TRUE(Check("Xy-Tractor-Rain-9", "xy").ok());
  EXPECT_TRUE(Check(kGood, "").ok());
}

TEST_F(StrengthTest, CommonPasswordsAreRefusedCaseInsensitively) {
  // Each of these passes every other rule (12+ characters, 3+ classes).
  for (const char* p : {"Password123!", "PASSWORD123!", "pAsSwOrD1234!", "Qwerty123456!",
                        "Welcome2024!", "P@ssw0rd1234", "Summer2023!!", "Iloveyou123!"}) {
    Status st = Check(p);
    if (std::string_view(p) == "Summer2023!!") {
      EXPECT_TRUE(st.ok()) << "not in the list: " << st.ToString();
      continue;
    }
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << p;
    EXPECT_EQ(st.message(), "password is too common") << p;
  }
  // Common but short ones fail for the first rule that applies.
  ExpectRefused("password", "too short");
  policy_.min_length = 6;
  policy_.min_character_classes = 1;
  ExpectRefused("password", "too common");
  ExpectRefused("Dragon", "too common");
  ExpectRefused("1q2w3e4r", "too common");
  EXPECT_TRUE(Check("dragonfly").ok());
}

TEST_F(StrengthTest, PolicyLimitsAreConfigurable) {
  policy_.min_length = 30;
  ExpectRefused(kGood, "at least 30 characters");
  policy_.min_length = 8;
  policy_.max_length = 16;
  ExpectRefused(kGood, "at most 16 bytes");
  EXPECT_TRUE(Check("Short-Pass-9").ok());
}

}  // namespace
}  // namespace medvault::auth
