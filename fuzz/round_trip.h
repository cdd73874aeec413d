// The round-trip check shared by the importer fuzz targets (ccda_fuzz.cc,
// fhir_fuzz.cc): the parser must never crash, and whatever it accepts must
// survive the matching writer and a second parse with the same canonical
// form. Any failure prints what went wrong and calls abort(), so libFuzzer
// (or the replay driver) reports the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "interop/interop.h"

namespace medvault::fuzz {

// `parse` is e.g. ParseCcda and `write` WriteCcda; their names appear in the
// messages. The fuzz input is parsed under `limits`, the written document
// under the default limits (it may hold more values than the input).
template <typename Parse, typename Write>
void CheckRoundTrip(const uint8_t* data, size_t size, const interop::ParseLimits& limits,
                    Parse parse, const char* parse_name, Write write, const char* write_name) {
  const auto fail = [](const std::string& what, std::string_view detail) {
    std::fprintf(stderr, "%s\n", what.c_str());
    std::fwrite(detail.data(), 1, detail.size(), stderr);
    std::fputc('\n', stderr);
    std::abort();
  };
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const Result<interop::ClinicalDocument> doc = parse(input, limits);
  if (!doc.ok()) {
    return;
  }
  const Result<std::string> out = write(*doc);
  if (!out.ok()) {
    fail(std::string(write_name) + " refused a parsed document:", out.status().ToString());
  }
  const Result<interop::ClinicalDocument> again = parse(*out, interop::ParseLimits{});
  if (!again.ok()) {
    fail(std::string(parse_name) + " refused " + write_name +
             " output: " + again.status().ToString(),
         *out);
  }
  const std::string first = interop::CanonicalString(*doc);
  const std::string second = interop::CanonicalString(*again);
  if (first != second) {
    fail("round trip changed the canonical form:", first + "\n" + second);
  }
}

}  // namespace medvault::fuzz
