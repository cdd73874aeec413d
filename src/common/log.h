// Structured logs: one JSON object per line on stderr.
//
// Contract: callers pass only operational fields (ids, codes, sizes, timings).
// Health data, names, keys, passwords and tokens must never be logged; the API
// layer logs request ids and route templates, never bodies or query strings.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace medvault {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

struct LogField {
  LogField(std::string_view k, std::string_view v) : key(k), value(v), quoted(true) {}
  LogField(std::string_view k, const char* v) : key(k), value(v), quoted(true) {}
  LogField(std::string_view k, const std::string& v) : key(k), value(v), quoted(true) {}
  LogField(std::string_view k, long long v) : key(k), value(std::to_string(v)), quoted(false) {}
  LogField(std::string_view k, int v) : key(k), value(std::to_string(v)), quoted(false) {}
  LogField(std::string_view k, unsigned long v) : key(k), value(std::to_string(v)), quoted(false) {}
  LogField(std::string_view k, long v) : key(k), value(std::to_string(v)), quoted(false) {}
  LogField(std::string_view k, double v) : key(k), value(std::to_string(v)), quoted(false) {}
  std::string_view key;
  std::string value;
  bool quoted;
};

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Parses "debug", "info", "warn", "error".
bool ParseLogLevel(std::string_view text, LogLevel* out);

// Writes {"ts":...,"level":...,"event":...,<fields>} to stderr, thread-safe.
void Log(LogLevel level, std::string_view event, std::initializer_list<LogField> fields = {});

// Renders the line without writing it (used by tests).
std::string FormatLogLine(LogLevel level, std::string_view event,
                          std::initializer_list<LogField> fields);

// JSON string escaping for log and API output.
std::string JsonEscape(std::string_view s);
// Appends `s` to `out` as the inside of a JSON string: '"', '\\' and control
// characters escaped, every other byte as it is.
void AppendJsonEscaped(std::string& out, std::string_view s);

}  // namespace medvault
