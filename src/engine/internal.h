// Helpers shared by the files of src/engine. Not part of the public interface.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace medvault::engine::internal {

// Parses `text` as JSON, refusing nesting deeper than `max_depth` (before
// anything recursive sees it). InvalidArgument "<what> is not valid JSON" /
// "<what> nests deeper than N levels"; never quotes the input.
Result<nlohmann::json> ParseJson(std::string_view text, size_t max_depth, std::string_view what);

// Nesting depth of a parsed value (a scalar is 1), counted without recursion;
// stops counting once above `limit`.
size_t JsonDepth(const nlohmann::json& j, size_t limit);

// Serialises with sorted keys and no whitespace; InvalidArgument instead of
// an exception (invalid UTF-8 in a string).
Result<std::string> Dump(const nlohmann::json& j, std::string_view what);

}  // namespace medvault::engine::internal
