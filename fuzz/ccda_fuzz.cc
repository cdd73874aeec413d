// libFuzzer target of the C-CDA importer: ParseCcda must never crash, and
// whatever it accepts must survive WriteCcda and a second ParseCcda with the
// same canonical form (abort() otherwise, so the fuzzer reports it).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "interop/interop.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace medvault;           // NOLINT(google-build-using-namespace)
  using namespace medvault::interop;  // NOLINT(google-build-using-namespace)
  ParseLimits limits;
  limits.max_document_bytes = 1u << 20;
  limits.max_nodes = 200'000;
  limits.max_entries = 10'000;
  const std::string_view xml(reinterpret_cast<const char*>(data), size);
  Result<ClinicalDocument> doc = ParseCcda(xml, limits);
  if (!doc.ok()) {
    return 0;
  }
  Result<std::string> out = WriteCcda(*doc);
  if (!out.ok()) {
    std::fprintf(stderr, "WriteCcda refused a parsed document: %s\n",
                 out.status().ToString().c_str());
    std::abort();
  }
  Result<ClinicalDocument> again = ParseCcda(*out);
  if (!again.ok()) {
    std::fprintf(stderr, "ParseCcda refused WriteCcda output: %s\n",
                 again.status().ToString().c_str());
    std::abort();
  }
  const std::string first = CanonicalString(*doc);
  const std::string second = CanonicalString(*again);
  if (first != second) {
    std::fprintf(stderr, "round trip changed the canonical form:\n%s\n%s\n", first.c_str(),
                 second.c_str());
    std::abort();
  }
  return 0;
}
