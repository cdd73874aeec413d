// Identifiers and wall-clock time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace medvault {

// 128 random bits as 32 lower-case hex characters. Unguessable; carries no data.
std::string NewRandomId();
// True for exactly 32 lower-case hex characters.
bool IsValidRandomId(std::string_view id);

// Milliseconds since the Unix epoch.
int64_t NowUnixMillis();
// RFC 3339 UTC with milliseconds, e.g. 2026-11-21T18:00:00.000Z.
std::string FormatRfc3339Millis(int64_t unix_millis);

}  // namespace medvault
