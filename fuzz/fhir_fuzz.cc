// libFuzzer target of the FHIR importer: ParseFhir must never crash, and
// whatever it accepts must survive WriteFhirBundle and a second ParseFhir
// with the same canonical form (abort() otherwise, so the fuzzer reports it).
#include <cstddef>
#include <cstdint>

#include "interop/interop.h"
#include "round_trip.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace medvault::interop;  // NOLINT(google-build-using-namespace)
  ParseLimits limits;
  limits.max_document_bytes = 1u << 20;
  limits.max_nodes = 200'000;
  limits.max_entries = 10'000;
  limits.max_depth = 64;
  medvault::fuzz::CheckRoundTrip(data, size, limits, ParseFhir, "ParseFhir", WriteFhirBundle,
                                 "WriteFhirBundle");
  return 0;
}
