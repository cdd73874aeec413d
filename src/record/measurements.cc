#include "record/measurements.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <string>

#include "vocab/vocab.h"

namespace medvault::record {

namespace {

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

int ToInt(std::string_view s) {
  int v = 0;
  for (char c : s) {
    v = v * 10 + (c - '0');
  }
  return v;
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

}  // namespace

bool IsCalendarDate(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') {
    return false;
  }
  const std::string_view ys = s.substr(0, 4), ms = s.substr(5, 2), ds = s.substr(8, 2);
  if (!AllDigits(ys) || !AllDigits(ms) || !AllDigits(ds)) {
    return false;
  }
  const int y = ToInt(ys), m = ToInt(ms), d = ToInt(ds);
  static constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1800 || m < 1 || m > 12 || d < 1) {
    return false;
  }
  const int max_day = (m == 2 && IsLeap(y)) ? 29 : kDays[static_cast<size_t>(m - 1)];
  return d <= max_day;
}

bool IsRfc3339DateTime(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
  if (s.size() < 20 || !IsCalendarDate(s.substr(0, 10)) || (s[10] != 'T' && s[10] != 't')) {
    return false;
  }
  if (s[13] != ':' || s[16] != ':' || !AllDigits(s.substr(11, 2)) || !AllDigits(s.substr(14, 2)) ||
      !AllDigits(s.substr(17, 2))) {
    return false;
  }
  if (ToInt(s.substr(11, 2)) > 23 || ToInt(s.substr(14, 2)) > 59 || ToInt(s.substr(17, 2)) > 60) {
    return false;
  }
  size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    ++i;
    const size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      ++i;
    }
    if (i == start || i - start > 9) {
      return false;
    }
  }
  const std::string_view zone = s.substr(i);
  if (zone == "Z" || zone == "z") {
    return true;
  }
  if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || zone[3] != ':' ||
      !AllDigits(zone.substr(1, 2)) || !AllDigits(zone.substr(4, 2))) {
    return false;
  }
  return ToInt(zone.substr(1, 2)) <= 23 && ToInt(zone.substr(4, 2)) <= 59;
}

Status ValidateJsonSegment(std::string_view path, const nlohmann::json& body) {
  if (!body.is_object()) {
    return Status::InvalidArgument("segment 'data' must be a JSON object");
  }
  const vocab::Measurement* schema = vocab::MeasurementForPath(path);
  if (schema == nullptr) {
    return Status::Ok();
  }
  const std::string_view leaf = schema->leaf;
  const std::string what = "'" + std::string(leaf) + "' reading";
  for (const vocab::MeasurementField& f : schema->fields) {
    auto it = body.find(std::string(f.name));
    if (it == body.end()) {
      return Status::InvalidArgument(what + " requires field '" + std::string(f.name) + "'");
    }
    if (!it->is_number()) {
      return Status::InvalidArgument(what + " field '" + std::string(f.name) +
                                     "' must be a number");
    }
    const double v = it->get<double>();
    if (!(v >= f.min && v <= f.max)) {
      return Status::InvalidArgument(what + " field '" + std::string(f.name) +
                                     "' is outside the plausible range");
    }
  }
  auto unit = body.find("unit");
  if (unit == body.end() || !unit->is_string()) {
    return Status::InvalidArgument(what + " requires a string field 'unit'");
  }
  const std::string u = unit->get<std::string>();
  if (vocab::FindUnit(*schema, u) == nullptr) {
    std::string allowed;
    for (const vocab::MeasurementUnit& a : schema->units) {
      allowed += allowed.empty() ? "" : ", ";
      allowed += a.unit;
    }
    return Status::InvalidArgument(what + " has an unsupported unit; allowed: " + allowed);
  }
  auto time = body.find("time");
  if (time == body.end() || !time->is_string() ||
      !IsRfc3339DateTime(time->get_ref<const std::string&>())) {
    return Status::InvalidArgument(what + " requires 'time' as an RFC 3339 date-time");
  }
  for (auto it = body.begin(); it != body.end(); ++it) {
    const std::string& k = it.key();
    bool known =
        std::find(vocab::kMeasurementCommonMembers.begin(), vocab::kMeasurementCommonMembers.end(),
                  k) != vocab::kMeasurementCommonMembers.end();
    for (const vocab::MeasurementField& f : schema->fields) {
      known = known || k == f.name;
    }
    if (!known) {
      return Status::InvalidArgument(what + " has an unknown field '" + k + "'");
    }
    if ((k == "note" || k == "device") && !it.value().is_string()) {
      return Status::InvalidArgument(what + " field '" + k + "' must be a string");
    }
  }
  return Status::Ok();
}

}  // namespace medvault::record
