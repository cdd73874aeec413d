// Passwords: strength policy and Argon2id hashing (libsodium).
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <unordered_set>

#include "auth/auth.h"

namespace medvault::auth {
namespace {

constexpr std::string_view kArgon2idPrefix = "$argon2id$";

std::atomic<uint64_t> g_verifications{0};

// Frequent passwords from public breach corpora and their usual variants
// (year and '!' suffixes, keyboard walks, obvious site words), lower case.
// Compared case-insensitively with the whole password.
// clang-format off
constexpr const char* kCommonPasswords[] = {
    "123456", "password", "12345678", "qwerty", "123456789", "12345", "1234", "111111", "1234567",
    "dragon", "123123", "baseball", "abc123", "football", "monkey", "letmein", "696969", "shadow",
    "master", "666666", "qwertyuiop", "123321", "mustang", "1234567890", "michael", "654321",
    "superman", "1qaz2wsx", "7777777", "121212", "000000", "qazwsx", "123qwe", "killer",
    "trustno1", "jordan", "jennifer", "zxcvbnm", "asdfgh", "hunter", "buster", "soccer", "harley",
    "batman", "andrew", "tigger", "sunshine", "iloveyou", "charlie", "robert", "thomas", "hockey",
    "ranger", "daniel", "starwars", "112233", "george", "computer", "michelle", "jessica",
    "pepper", "11111111", "131313", "freedom", "777777", "maggie", "159753", "aaaaaa", "ginger",
    "princess", "joshua", "cheese", "amanda", "summer", "ashley", "nicole", "chelsea", "matthew",
    "access", "yankees", "987654321", "dallas", "austin", "thunder", "taylor", "matrix", "william",
    "corvette", "hello", "martin", "heather", "secret", "merlin", "diamond", "1234qwer", "gfhjkm",
    "hammer", "silver", "222222", "88888888", "anthony", "justin", "test", "bailey", "q1w2e3r4t5",
    "patrick", "internet", "scooter", "orange", "11111", "golfer", "cookie", "richard", "samantha",
    "bigdog", "guitar", "jackson", "whatever", "mickey", "chicken", "sparky", "snoopy", "maverick",
    "phoenix", "camaro", "peanut", "morgan", "welcome", "falcon", "cowboy", "ferrari", "samsung",
    "andrea", "smokey", "steelers", "joseph", "mercedes", "dakota", "arsenal", "eagles", "melissa",
    "boomer", "booboo", "spider", "nascar", "monster", "tigers", "yellow", "xxxxxx", "123123123",
    "gateway", "marina", "diablo", "bulldog", "qwer1234", "compaq", "purple", "banana", "junior",
    "hannah", "123654", "porsche", "lakers", "iceman", "money", "cowboys", "987654", "london",
    "tennis", "999999", "ncc1701", "coffee", "scooby", "0000", "miller", "boston", "q1w2e3r4",
    "brandon", "yamaha", "chester", "mother", "forever", "johnny", "edward", "333333", "oliver",
    "redsox", "player", "nikita", "knight", "fender", "barney", "midnight", "please", "brandy",
    "chicago", "badboy", "slayer", "rangers", "charles", "angel", "flower", "bigdaddy", "rabbit",
    "wizard", "jasper", "enter", "rachel", "chris", "steven", "winner", "adidas", "victoria",
    "natasha", "1q2w3e4r", "jasmine", "winter", "prince", "marine", "ghbdtn", "fishing",
    "cocacola", "casper", "james", "232323", "raiders", "888888", "marlboro", "gandalf",
    "asdfasdf", "crystal", "87654321", "12344321", "golden", "8675309", "qwertyui", "zxcvbnm1",
    "password1", "password12", "password123", "passw0rd", "p@ssw0rd", "p@ssword", "admin",
    "admin123", "root", "toor", "changeme", "default", "guest", "login", "abc12345", "iloveyou1",
    "letmein1", "welcome1", "monkey1", "dragon1", "football1", "baseball1", "sunshine1",
    "princess1", "superman1", "qwerty1", "qwerty12", "qwerty123", "1q2w3e", "1q2w3e4r5t",
    "zaq12wsx", "qazwsxedc", "1qazxsw2", "asdfghjkl", "zxcvbnm123", "aa123456", "a1b2c3d4",
    "abcd1234", "password1!", "passw0rd!", "p@ssw0rd!", "password!", "welcome!", "welcome1!",
    "admin1!", "admin123!", "123456789012", "1234567890123", "12345678901234", "123456789012345",
    "1234567890-=", "123123123123", "111111111111", "000000000000", "123456123456", "121212121212",
    "123321123321", "987654321098", "098765432109", "1q2w3e4r5t6y", "1q2w3e4r5t6y7u",
    "1q2w3e4r5t6y7u8i", "1qaz2wsx3edc", "1qaz2wsx3edc4rfv", "1qazxsw23edc", "zaq12wsxcde3",
    "zaq1xsw2cde3", "q1w2e3r4t5y6", "q1w2e3r4t5y6u7", "qwertyuiop12", "qwertyuiop123",
    "qwertyuiop1!", "qwertyuiopas", "qwertyuiop[]", "qwertyuiopasdf", "qwerty123456",
    "qwerty1234567", "qwerty123456!", "qwerty123!@#", "qwerty!@#123", "qwerty@123456",
    "123456qwerty", "123456qwerty!", "1234qwerasdf", "1234qwer!@#$", "qwerasdfzxcv",
    "qwer1234asdf", "asdfghjkl123", "asdfghjkl;'", "asdfghjkl1234", "asdf1234asdf", "zxcvbnm12345",
    "zxcvbnm123456", "zxcvbnm,./12", "!qaz@wsx#edc", "!qaz2wsx3edc", "1qaz@wsx3edc",
    "!@#$%^&*()_+", "!@#$%^123456", "123456!@#$%^", "password1234", "password12345",
    "password123456", "password123!", "password1234!", "password12345!", "password@123",
    "password@1234", "password#123", "password123#", "password!123", "password2020",
    "password2021", "password2022", "password2023", "password2024", "password2025", "password2026",
    "passwordpassword", "passw0rd1234", "passw0rd123!", "p@ssw0rd1234", "p@ssw0rd123!",
    "p@ssword1234", "p@ssword123!", "p@55w0rd1234", "mypassword123", "mypassword1!",
    "newpassword1!", "newpassword123", "secretpassword", "1password1234", "iloveyou1234",
    "iloveyou123!", "iloveyou12345", "iloveyouforever", "letmein12345", "letmein123!",
    "letmein1234!", "welcome12345", "welcome123!", "welcome1234!", "welcome@123", "welcome@1234",
    "welcometo123", "changeme1234", "changeme123!", "changemenow1", "administrator",
    "administrator1", "administrator123", "admin1234567", "admin123456!", "admin@123456",
    "adminadmin123", "administrator!", "superadmin123", "rootroot1234", "abc123456789",
    "abcdefghijkl", "abcdefghijk1", "abcdef123456", "abcd12345678", "abcd1234abcd", "abc123abc123",
    "1234abcd1234", "abcdefg12345", "aaaaaa111111", "aaa111aaa111", "a1b2c3d4e5f6", "football1234",
    "football123!", "baseball1234", "baseball123!", "basketball12", "basketball123",
    "sunshine1234", "sunshine123!", "princess1234", "princess123!", "superman1234", "superman123!",
    "starwars1234", "starwars123!", "trustno11234", "monkey123456", "dragon123456", "michael12345",
    "charlie12345", "shadow123456", "master123456", "jennifer1234", "jessica12345", "liverpool123",
    "manchester12", "chelsea12345", "arsenal12345", "pokemon12345", "minecraft123", "whatever1234",
    "computer1234", "internet1234", "samsung12345", "qwertyqwerty", "asdfasdfasdf", "zxcvzxcvzxcv",
    "1234512345", "hospital1234", "hospital123!", "doctor123456", "doctor12345!", "nurse1234567",
    "nurse123456!", "medvault1234", "medvault123!", "healthcare12", "healthcare123",
    "medical12345", "medical1234!", "patient12345", "patient1234!", "clinic123456", "physician123",
    "welcometohospital", "spring2019!", "spring2020!", "spring2021!", "spring2022!", "spring2023!",
    "spring2024!", "spring2025!", "spring2026!", "summer2019!", "summer2020!", "summer2021!",
    "summer2022!", "summer2023!", "summer2024!", "summer2025!", "summer2026!", "autumn2019!",
    "autumn2020!", "autumn2021!", "autumn2022!", "autumn2023!", "autumn2024!", "autumn2025!",
    "autumn2026!", "winter2019!", "winter2020!", "winter2021!", "winter2022!", "winter2023!",
    "winter2024!", "winter2025!", "winter2026!", "january2019!", "january2020!", "january2021!",
    "january2022!", "january2023!", "january2024!", "january2025!", "january2026!",
    "february2019!", "february2019", "february2020!", "february2020", "february2021!",
    "february2021", "february2022!", "february2022", "february2023!", "february2023",
    "february2024!", "february2024", "february2025!", "february2025", "february2026!",
    "february2026", "september2019!", "september2019", "september2020!", "september2020",
    "september2021!", "september2021", "september2022!", "september2022", "september2023!",
    "september2023", "september2024!", "september2024", "september2025!", "september2025",
    "september2026!", "september2026", "october2019!", "october2020!", "october2021!",
    "october2022!", "october2023!", "october2024!", "october2025!", "october2026!",
    "november2019!", "november2019", "november2020!", "november2020", "november2021!",
    "november2021", "november2022!", "november2022", "november2023!", "november2023",
    "november2024!", "november2024", "november2025!", "november2025", "november2026!",
    "november2026", "december2019!", "december2019", "december2020!", "december2020",
    "december2021!", "december2021", "december2022!", "december2022", "december2023!",
    "december2023", "december2024!", "december2024", "december2025!", "december2025",
    "december2026!", "december2026", "welcome2019!", "welcome2020!", "welcome2021!",
    "welcome2022!", "welcome2023!", "welcome2024!", "welcome2025!", "welcome2026!",
    "password2019!", "password2020!", "password2021!", "password2022!", "password2023!",
    "password2024!", "password2025!", "password2026!", "company2019!", "company2020!",
    "company2021!", "company2022!", "company2023!", "company2024!", "company2025!", "company2026!",
    "hospital2019!", "hospital2020!", "hospital2021!", "hospital2022!", "hospital2023!",
    "hospital2024!", "hospital2025!", "hospital2026!", "medvault2019!", "medvault2020!",
    "medvault2021!", "medvault2022!", "medvault2023!", "medvault2024!", "medvault2025!",
    "medvault2026!", "letmein2019!", "letmein2020!", "letmein2021!", "letmein2022!",
    "letmein2023!", "letmein2024!", "letmein2025!", "letmein2026!",
};
// clang-format on

const std::unordered_set<std::string_view>& CommonPasswords() {
  static const auto* set = new std::unordered_set<std::string_view>(std::begin(kCommonPasswords),
                                                                    std::end(kCommonPasswords));
  return *set;
}

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

// REQUIRES: valid UTF-8.
size_t CountCodePoints(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<uint8_t>(c) & 0xC0) != 0x80; }));
}

// REQUIRES: valid UTF-8, non-empty.
bool IsSingleRepeatedCharacter(std::string_view s) {
  size_t first_len = 1;
  while (first_len < s.size() && (static_cast<uint8_t>(s[first_len]) & 0xC0) == 0x80) {
    ++first_len;
  }
  if (s.size() % first_len != 0) {
    return false;
  }
  const std::string_view first = s.substr(0, first_len);
  for (size_t i = first_len; i < s.size(); i += first_len) {
    if (s.substr(i, first_len) != first) {
      return false;
    }
  }
  return true;
}

bool ContainsUsername(std::string_view lowered_password, std::string_view username) {
  const std::string name = AsciiLower(username);
  if (name.size() >= 3 && lowered_password.find(name) != std::string_view::npos) {
    return true;
  }
  // "alice@example.org": the local part alone is as guessable.
  const size_t at = name.find('@');
  if (at != std::string::npos && at >= 3 &&
      lowered_password.find(std::string_view(name).substr(0, at)) != std::string_view::npos) {
    return true;
  }
  return false;
}

int CharacterClasses(std::string_view s) {
  bool lower = false, upper = false, digit = false, other = false;
  for (char c : s) {
    if (c >= 'a' && c <= 'z') {
      lower = true;
    } else if (c >= 'A' && c <= 'Z') {
      upper = true;
    } else if (c >= '0' && c <= '9') {
      digit = true;
    } else {
      other = true;  // punctuation, space, any non-ASCII character
    }
  }
  return int{lower} + int{upper} + int{digit} + int{other};
}

}  // namespace

Status CheckPasswordStrength(std::string_view password, std::string_view username,
                             const PasswordPolicy& policy) {
  if (!IsValidUtf8(password)) {
    return Status::InvalidArgument("password is not valid UTF-8");
  }
  if (password.size() > policy.max_length) {
    return Status::InvalidArgument("password is too long: at most " +
                                   std::to_string(policy.max_length) + " bytes");
  }
  if (CountCodePoints(password) < policy.min_length || password.empty()) {
    return Status::InvalidArgument("password is too short: at least " +
                                   std::to_string(policy.min_length) + " characters");
  }
  if (IsSingleRepeatedCharacter(password)) {
    return Status::InvalidArgument("password is a single repeated character");
  }
  const std::string lowered = AsciiLower(password);
  if (ContainsUsername(lowered, username)) {
    return Status::InvalidArgument("password must not contain the username");
  }
  if (CommonPasswords().count(lowered) != 0) {
    return Status::InvalidArgument("password is too common");
  }
  if (CharacterClasses(password) < policy.min_character_classes) {
    return Status::InvalidArgument(
        "password needs at least " + std::to_string(policy.min_character_classes) +
        " of: lower-case letters, upper-case letters, digits, other characters");
  }
  return Status::Ok();
}

Result<std::string> HashPassword(std::string_view password, const Argon2Params& params) {
  if (params.ops_limit < crypto_pwhash_argon2id_OPSLIMIT_MIN ||
      params.ops_limit > crypto_pwhash_argon2id_OPSLIMIT_MAX) {
    return Status::InvalidArgument("Argon2 operations limit is out of range");
  }
  if (params.mem_limit < crypto_pwhash_argon2id_MEMLIMIT_MIN ||
      params.mem_limit > crypto_pwhash_argon2id_MEMLIMIT_MAX) {
    return Status::InvalidArgument("Argon2 memory limit is out of range");
  }
  if (sodium_init() < 0) {
    return Status::Internal("libsodium initialisation failed");
  }
  char out[crypto_pwhash_STRBYTES];
  static const char kEmpty[1] = {0};
  const char* data = password.empty() ? kEmpty : password.data();
  if (crypto_pwhash_str_alg(out, data, password.size(), params.ops_limit, params.mem_limit,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Status::ResourceExhausted("out of memory while hashing a password");
  }
  return std::string(out);
}

bool VerifyPassword(std::string_view encoded_hash, std::string_view password) {
  // libsodium wants a NUL-terminated string of bounded size.
  char buf[crypto_pwhash_STRBYTES];
  if (encoded_hash.size() >= sizeof buf || !encoded_hash.starts_with(kArgon2idPrefix) ||
      encoded_hash.find('\0') != std::string_view::npos) {
    return false;
  }
  std::memcpy(buf, encoded_hash.data(), encoded_hash.size());
  buf[encoded_hash.size()] = '\0';
  static const char kEmpty[1] = {0};
  const char* data = password.empty() ? kEmpty : password.data();
  g_verifications.fetch_add(1, std::memory_order_relaxed);
  return crypto_pwhash_str_verify(buf, data, password.size()) == 0;
}

uint64_t PasswordVerificationCount() { return g_verifications.load(std::memory_order_relaxed); }

bool PasswordNeedsRehash(std::string_view encoded_hash, const Argon2Params& params) {
  char buf[crypto_pwhash_STRBYTES];
  if (encoded_hash.size() >= sizeof buf || !encoded_hash.starts_with(kArgon2idPrefix) ||
      encoded_hash.find('\0') != std::string_view::npos) {
    return true;
  }
  std::memcpy(buf, encoded_hash.data(), encoded_hash.size());
  buf[encoded_hash.size()] = '\0';
  return crypto_pwhash_str_needs_rehash(buf, params.ops_limit, params.mem_limit) != 0;
}

}  // namespace medvault::auth
