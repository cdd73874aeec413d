// Fuzz target for the hostile-input parsers of the API and record layers:
// the strict JSON body parser, the field checks, the segment path grammar,
// the measurement schemas, UTF-8 validation, the config file parser and the
// connection guard's raw request-head scanner and the transport's query
// decoder.
// Invariants: never crash; a parsed body re-serialises and re-parses to the
// same value; an accepted path has no empty, "." or ".." component.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "api/conn_guard.h"
#include "api/http_transport.h"
#include "api/json_input.h"
#include "app/config.h"
#include "common/bytes.h"
#include "record/measurements.h"
#include "record/record.h"

using namespace medvault;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)IsValidUtf8(input);

  auto parsed = api::ParseJsonBody(input);
  if (parsed.ok()) {
    const std::string again = parsed->dump();
    auto reparsed = api::ParseJsonBody(again);
    if (!reparsed.ok() || *reparsed != *parsed) {
      std::abort();
    }
    (void)api::CheckObjectFields(*parsed, {"data", "text", "sensitivity"}, {});
    if (parsed->is_object()) {
      (void)api::GetStringField(*parsed, "text", false, 1 << 20);
      (void)api::GetIntField(*parsed, "sensitivity", 0, 4);
      (void)record::ValidateJsonSegment("physical-signs/blood-pressure", *parsed);
      (void)record::ValidateJsonSegment("physical-signs/blood-glucose", *parsed);
    }
  }

  if (record::ValidateSegmentPath(input).ok()) {
    if (input.find("//") != std::string_view::npos || input.front() == '/' || input.back() == '/' ||
        input.find("..") != std::string_view::npos || input.find('.') != std::string_view::npos) {
      std::abort();
    }
    (void)record::TopLevelFor(input);
  }

  // The query decoder: decoding only shrinks (a %xx is one byte, '+' one
  // space), so no key or value is longer than the input.
  for (const auto& [k, v] : api::internal::ParseQuery(input)) {
    if (k.size() > size || v.size() > size) {
      std::abort();
    }
  }

  // The head scanner: never reads past its byte limit, refuses only with
  // 400 or 431, and a finished head has unambiguous framing.
  api::internal::HeadScanner head(4096, 32);
  for (char c : input) {
    if (head.Feed(c) != api::internal::HeadScanner::State::kMore) {
      break;
    }
  }
  if (head.bytes() > 4097 ||
      (head.state() == api::internal::HeadScanner::State::kRefused &&
       head.refusal_status() != 400 && head.refusal_status() != 431) ||
      (head.state() == api::internal::HeadScanner::State::kDone && head.chunked() &&
       head.has_content_length())) {
    std::abort();
  }

  app::Config config;
  (void)app::ApplyConfigText(config, input, "fuzz.conf");
  (void)record::IsRfc3339DateTime(input);
  (void)record::IsCalendarDate(input);
  return 0;
}
