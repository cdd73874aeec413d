// Internal to src/api: strict JSON input.
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string_view>

#include "common/status.h"

namespace medvault::api {

inline constexpr int kMaxJsonDepth = 32;

// Parses a request body. InvalidArgument (with the byte offset) for malformed
// JSON or invalid UTF-8, nesting deeper than kMaxJsonDepth, or a key repeated
// in one object (ambiguous input is refused rather than guessed).
Result<nlohmann::json> ParseJsonBody(std::string_view body);

// Requires `j` to be an object whose keys are all in `allowed` and that has
// every key in `required`. Names the first offending field.
Status CheckObjectFields(const nlohmann::json& j, std::initializer_list<std::string_view> allowed,
                         std::initializer_list<std::string_view> required);

// Typed field access with precise errors ("field 'x' must be a string").
Result<std::string> GetStringField(const nlohmann::json& j, std::string_view field, bool required,
                                   size_t max_len);
Result<std::optional<int64_t>> GetIntField(const nlohmann::json& j, std::string_view field,
                                           int64_t min, int64_t max);

}  // namespace medvault::api
