#include "api/json_input.h"

#include <set>
#include <string>
#include <vector>

#include "common/bytes.h"

namespace medvault::api {

using nlohmann::json;

Result<json> ParseJsonBody(std::string_view body) {
  if (!IsValidUtf8(body)) {
    return Status::InvalidArgument("request body is not valid UTF-8");
  }
  // Tracks the keys of each open object to refuse duplicates, and the depth.
  std::vector<std::set<std::string>> open_objects;
  bool too_deep = false;
  bool duplicate = false;
  bool nul = false;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) -> bool {
    if (depth > kMaxJsonDepth) {
      too_deep = true;
      return false;
    }
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) {
          open_objects.pop_back();
        }
        break;
      case json::parse_event_t::key:
        if (parsed.get_ref<const std::string&>().find('\0') != std::string::npos) {
          nul = true;
          return false;
        }
        if (!open_objects.empty() &&
            !open_objects.back().insert(parsed.get<std::string>()).second) {
          duplicate = true;
          return false;
        }
        break;
      case json::parse_event_t::value:
        // U+0000 ("\u0000") cuts C strings short and no XML can carry it
        // (an export would fail): refused in every string.
        if (parsed.is_string() &&
            parsed.get_ref<const std::string&>().find('\0') != std::string::npos) {
          nul = true;
          return false;
        }
        break;
      default:
        break;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(body.begin(), body.end(), callback, /*allow_exceptions=*/true);
  } catch (const json::parse_error& e) {
    return Status::InvalidArgument("malformed JSON at byte " + std::to_string(e.byte));
  } catch (const json::exception&) {
    return Status::InvalidArgument("malformed JSON");
  }
  if (too_deep) {
    return Status::InvalidArgument("JSON nested deeper than " + std::to_string(kMaxJsonDepth) +
                                   " levels");
  }
  if (nul) {
    return Status::InvalidArgument("JSON strings must not contain U+0000");
  }
  if (duplicate) {
    return Status::InvalidArgument("JSON object repeats a key");
  }
  if (j.is_discarded()) {
    return Status::InvalidArgument("malformed JSON");
  }
  return j;
}

Status CheckObjectFields(const json& j, std::initializer_list<std::string_view> allowed,
                         std::initializer_list<std::string_view> required) {
  if (!j.is_object()) {
    return Status::InvalidArgument("request body must be a JSON object");
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (std::string_view a : allowed) {
      known = known || it.key() == a;
    }
    if (!known) {
      std::string key = it.key().substr(0, 64);
      return Status::InvalidArgument("unknown field '" + key + "'");
    }
  }
  for (std::string_view r : required) {
    if (!j.contains(std::string(r))) {
      return Status::InvalidArgument("missing required field '" + std::string(r) + "'");
    }
  }
  return Status::Ok();
}

Result<std::string> GetStringField(const json& j, std::string_view field, bool required,
                                   size_t max_len) {
  auto it = j.find(std::string(field));
  if (it == j.end() || it->is_null()) {
    if (required) {
      return Status::InvalidArgument("missing required field '" + std::string(field) + "'");
    }
    return std::string();
  }
  if (!it->is_string()) {
    return Status::InvalidArgument("field '" + std::string(field) + "' must be a string");
  }
  const std::string& s = it->get_ref<const std::string&>();
  if (s.size() > max_len) {
    return Status::InvalidArgument("field '" + std::string(field) + "' is longer than " +
                                   std::to_string(max_len) + " bytes");
  }
  return s;
}

Result<std::optional<int64_t>> GetIntField(const json& j, std::string_view field, int64_t min,
                                           int64_t max) {
  auto it = j.find(std::string(field));
  if (it == j.end() || it->is_null()) {
    return std::optional<int64_t>();
  }
  if (!it->is_number_integer()) {
    return Status::InvalidArgument("field '" + std::string(field) + "' must be an integer");
  }
  int64_t v;
  if (it->is_number_unsigned()) {
    const uint64_t u = it->get<uint64_t>();
    if (u > static_cast<uint64_t>(max)) {
      return Status::InvalidArgument("field '" + std::string(field) + "' is out of range");
    }
    v = static_cast<int64_t>(u);
  } else {
    v = it->get<int64_t>();
  }
  if (v < min || v > max) {
    return Status::InvalidArgument("field '" + std::string(field) + "' must be between " +
                                   std::to_string(min) + " and " + std::to_string(max));
  }
  return std::optional<int64_t>(v);
}

}  // namespace medvault::api
