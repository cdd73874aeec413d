// libFuzzer target of the C-CDA importer: ParseCcda must never crash, and
// whatever it accepts must survive WriteCcda and a second ParseCcda with the
// same canonical form (abort() otherwise, so the fuzzer reports it).
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
  medvault::fuzz::CheckRoundTrip(data, size, limits, ParseCcda, "ParseCcda", WriteCcda,
                                 "WriteCcda");
  return 0;
}
