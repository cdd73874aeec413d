// libFuzzer target of the FHIR importer: ParseFhir must never crash, and
// whatever it accepts must survive WriteFhirBundle and a second ParseFhir
// with the same canonical form (abort() otherwise, so the fuzzer reports it).
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
  limits.max_depth = 64;
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  Result<ClinicalDocument> doc = ParseFhir(json, limits);
  if (!doc.ok()) {
    return 0;
  }
  Result<std::string> out = WriteFhirBundle(*doc);
  if (!out.ok()) {
    std::fprintf(stderr, "WriteFhirBundle refused a parsed document: %s\n",
                 out.status().ToString().c_str());
    std::abort();
  }
  // The written bundle has more JSON values than the input: default limits.
  Result<ClinicalDocument> again = ParseFhir(*out);
  if (!again.ok()) {
    std::fprintf(stderr, "ParseFhir refused WriteFhirBundle output: %s\n%s\n",
                 again.status().ToString().c_str(), out->c_str());
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
