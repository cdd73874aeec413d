// Fuzz target for ledger entries (docs/ledger.md, both formats).
//
// The input, as stored entry bytes, goes through Decode. Decode must not
// crash, and what it accepts must be canonical: re-encoding the entry in
// the input's format gives back the input byte for byte, and the entry
// re-encoded in the current format (version 2) decodes to the same entry.
// Any disagreement aborts, which the fuzzer reports as a crash.
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "ledger/ledger.h"

namespace {

namespace ledger = medvault::ledger;

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "ledger_entry_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const medvault::ByteView input(data, size);
  auto entry = ledger::Decode(input);
  if (!entry.ok()) {
    return 0;
  }
  if (!ledger::ValidateEntry(*entry).ok()) {
    Die("Decode accepted an entry that ValidateEntry refuses");
  }
  auto version = ledger::EntryFormatVersion(input);
  if (!version.ok()) {
    Die("Decode accepted bytes of no known format");
  }
  const medvault::Bytes again =
      *version == ledger::kEntryVersion ? ledger::Encode(*entry) : ledger::EncodeJsonV1(*entry);
  if (!std::equal(again.begin(), again.end(), input.begin(), input.end())) {
    Die("accepted bytes are not the canonical encoding of their entry");
  }
  auto compact = ledger::Decode(ledger::Encode(*entry));
  if (!compact.ok() || *compact != *entry) {
    Die("the entry does not round trip through format version 2");
  }
  return 0;
}
