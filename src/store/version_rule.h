// The version rule of every metadata store (internal to src/store), beside
// ValidateSegmentVersionRecord in store.h: one rule, one text, whatever the
// backend (SQLite, memory, PostgreSQL later).
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace medvault::store {

// Versions of a path are dense (1..latest): a version up to `latest` exists
// (AlreadyExists), and the only one that may be inserted is latest + 1
// (FailedPrecondition otherwise: a gap).
inline Status CheckNextVersion(uint64_t version, uint64_t latest) {
  if (version <= latest) {
    return Status::AlreadyExists("segment version already exists");
  }
  if (version != latest + 1) {
    return Status::FailedPrecondition("segment version " + std::to_string(version) +
                                      " does not follow the latest version " +
                                      std::to_string(latest));
  }
  return Status::Ok();
}

}  // namespace medvault::store
