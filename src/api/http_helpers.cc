// Shared request helpers of the route groups.
#include <cstdio>
#include <ctime>

#include "api/http_internal.h"
#include "api/json_input.h"
#include "common/bytes.h"
#include "common/ids.h"
#include "record/record.h"
#include "vocab/vocab.h"

namespace medvault::api::internal {

Status CheckQuery(const Request& req, std::initializer_list<std::string_view> allowed) {
  for (const auto& [k, v] : req.params) {
    bool ok = false;
    for (std::string_view a : allowed) {
      ok = ok || k == a;
    }
    if (!ok) {
      return Status::InvalidArgument("unknown query parameter '" + k.substr(0, 64) + "'");
    }
    if (req.params.count(k) > 1) {
      return Status::InvalidArgument("query parameter '" + k.substr(0, 64) + "' given twice");
    }
  }
  return Status::Ok();
}

Result<int64_t> ParseTimestamp(std::string_view text, std::string_view field) {
  const Status bad = Status::InvalidArgument("field '" + std::string(field) +
                                             "' must be a UTC time like 2026-12-31T23:59:59Z");
  // YYYY-MM-DDTHH:MM:SS[.fff]Z
  if (text.size() < 20 || text.size() > 30 || text.back() != 'Z') {
    return bad;
  }
  auto digits = [&](size_t pos, size_t n, int& out) {
    out = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (text[i] < '0' || text[i] > '9') {
        return false;
      }
      out = out * 10 + (text[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, sec;
  if (!digits(0, 4, y) || text[4] != '-' || !digits(5, 2, mo) || text[7] != '-' ||
      !digits(8, 2, d) || text[10] != 'T' || !digits(11, 2, h) || text[13] != ':' ||
      !digits(14, 2, mi) || text[16] != ':' || !digits(17, 2, sec)) {
    return bad;
  }
  int millis = 0;
  size_t pos = 19;
  if (text[pos] == '.') {
    size_t n = 0;
    for (++pos; pos < text.size() - 1; ++pos, ++n) {
      if (text[pos] < '0' || text[pos] > '9' || n >= 9) {
        return bad;
      }
      if (n < 3) {
        millis = millis * 10 + (text[pos] - '0');
      }
    }
    if (n == 0) {
      return bad;
    }
    for (; n < 3; ++n) {
      millis *= 10;
    }
  }
  if (pos != text.size() - 1) {
    return bad;
  }
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 ||
      d > kDays[mo - 1] + (mo == 2 && leap ? 1 : 0) || h > 23 || mi > 59 || sec > 59) {
    return bad;
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  const time_t t = timegm(&tm);
  return static_cast<int64_t>(t) * 1000 + millis;
}

Result<int64_t> GetTimeField(const nlohmann::json& j, std::string_view field) {
  const std::string key(field);
  if (!j.contains(key) || j[key].is_null()) {
    return int64_t{0};
  }
  if (!j[key].is_string()) {
    return Status::InvalidArgument("field '" + key + "' must be a string");
  }
  return ParseTimestamp(j[key].get<std::string>(), field);
}

Result<std::vector<std::string>> GetStringArrayField(const nlohmann::json& j,
                                                     std::string_view field, size_t max_items,
                                                     size_t max_len) {
  const std::string key(field);
  std::vector<std::string> out;
  if (!j.contains(key)) {
    return out;
  }
  if (!j[key].is_array()) {
    return Status::InvalidArgument("field '" + key + "' must be an array of strings");
  }
  if (j[key].size() > max_items) {
    return Status::InvalidArgument("field '" + key + "' has more than " +
                                   std::to_string(max_items) + " items");
  }
  for (const auto& e : j[key]) {
    if (!e.is_string()) {
      return Status::InvalidArgument("field '" + key + "' must be an array of strings");
    }
    std::string v = e.get<std::string>();
    if (v.size() > max_len || !IsValidUtf8(v)) {
      return Status::InvalidArgument("an item of field '" + key + "' is too long or not UTF-8");
    }
    out.push_back(std::move(v));
  }
  return out;
}

std::string TimeOrEmpty(int64_t ms) { return ms == 0 ? std::string() : FormatRfc3339Millis(ms); }

nlohmann::json SegmentTypesJson() {
  using nlohmann::json;
  json types = json::array();
  for (const vocab::TopLevelSegment& seg : vocab::kTopLevelSegments) {
    types.push_back({{"name", seg.name},
                     {"category", seg.category},
                     {"default_sensitivity", seg.default_sensitivity},
                     {"description", seg.description}});
  }
  json measurements = json::array();
  for (const vocab::Measurement& m : vocab::kMeasurements) {
    json fields = json::array();
    for (const vocab::MeasurementField& f : m.fields) {
      fields.push_back({{"name", f.name}, {"min", f.min}, {"max", f.max}});
    }
    json units = json::array();
    for (const vocab::MeasurementUnit& u : m.units) {
      units.push_back({{"unit", u.unit}, {"ucum", u.ucum}});
    }
    measurements.push_back({{"name", m.leaf},
                            {"path", m.path},
                            {"category", m.category},
                            {"loinc", m.loinc},
                            {"display", m.display},
                            {"fields", std::move(fields)},
                            {"units", std::move(units)}});
  }
  json kinds = json::array();
  for (const vocab::ContentKindInfo& k : vocab::kContentKinds) {
    kinds.push_back({{"name", k.name}, {"media_type", k.media_type}});
  }
  return json{{"segment_types", std::move(types)},
              {"categories", vocab::kCategories},
              {"measurements", std::move(measurements)},
              {"content_kinds", std::move(kinds)}};
}

Result<uint64_t> UintParam(const Request& req, const std::string& name, bool required,
                           uint64_t fallback) {
  if (!req.has_param(name)) {
    if (required) {
      return Status::InvalidArgument("query parameter '" + name + "' is required");
    }
    return fallback;
  }
  const std::string v = req.get_param_value(name);
  if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos) {
    return Status::InvalidArgument("query parameter '" + name + "' must be a non-negative integer");
  }
  return static_cast<uint64_t>(std::stoull(v));
}

}  // namespace medvault::api::internal
