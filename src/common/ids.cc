#include "common/ids.h"

#include <sodium.h>

#include <chrono>
#include <cstdio>
#include <ctime>

#include "common/bytes.h"

namespace medvault {

std::string NewRandomId() {
  uint8_t raw[16];
  randombytes_buf(raw, sizeof raw);
  return ToHex(ByteView(raw, sizeof raw));
}

bool IsValidRandomId(std::string_view id) {
  if (id.size() != 32) {
    return false;
  }
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

int64_t NowUnixMillis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string FormatRfc3339Millis(int64_t unix_millis) {
  const std::time_t t = static_cast<std::time_t>(unix_millis / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(unix_millis % 1000));
  return buf;
}

}  // namespace medvault
