// Internal to src/record: schemas for structured measurements.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "common/status.h"

namespace medvault::record {

// Checks a JSON segment body. Every JSON segment must be an object. Segments
// whose last path component names a measurement of vocab::kMeasurements
// ("blood-pressure", "weight", ...) must match its schema: required numeric
// fields within their plausible range, a unit of the measurement's, an
// RFC 3339 "time", and no fields beyond the schema's plus "note" and "device".
Status ValidateJsonSegment(std::string_view path, const nlohmann::json& body);

// Strict RFC 3339 date-time with an explicit offset or 'Z'.
bool IsRfc3339DateTime(std::string_view s);
// YYYY-MM-DD naming a real calendar day.
bool IsCalendarDate(std::string_view s);

}  // namespace medvault::record
