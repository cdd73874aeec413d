// Rows for MetadataStore tests: deterministic patients and segment versions.
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>

#include "store/store.h"

namespace medvault::store_testing {

using store::ContentKind;
using store::PatientRecord;
using store::SegmentVersionRecord;

// `n` bytes derived from `seed`, distinct for distinct seeds.
inline Bytes Filled(uint8_t seed, size_t n = 32) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) {
    b[i] = static_cast<uint8_t>(seed + i * 7);
  }
  return b;
}

// A patient id (32 hex) for a small number.
inline std::string PatientId(int i) {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%032x", i);
  return buf;
}

// name_index = Filled(i % 3), identifier_index = Filled(200 + i).
inline PatientRecord MakePatient(int i) {
  PatientRecord p;
  p.patient_id = PatientId(i);
  p.wrapped_root_key = Filled(static_cast<uint8_t>(i), 72);
  p.sealed_demographics = Filled(static_cast<uint8_t>(i + 100), 90);
  p.name_index = Filled(static_cast<uint8_t>(i % 3));
  p.identifier_index = Filled(static_cast<uint8_t>(200 + i));
  p.created_at_ms = 1700000000000 + i;
  return p;
}

// A version whose object key is unique per (patient, path, version).
inline SegmentVersionRecord MakeSegment(const std::string& patient_id, const std::string& path,
                                        uint64_t version) {
  SegmentVersionRecord r;
  r.patient_id = patient_id;
  r.path = path;
  r.version = version;
  r.category = path.substr(0, path.find('/'));
  r.sensitivity = 2;
  r.kind = ContentKind::kJson;
  r.media_type = "application/json";
  std::string flat = path;
  std::replace(flat.begin(), flat.end(), '/', '.');
  r.object_key = patient_id + "/" + flat + "-v" + std::to_string(version);
  r.plaintext_size = 100 + version;
  r.stored_size = 200 + version;
  r.content_sha256 = Filled(static_cast<uint8_t>(version));
  r.author = "bootstrap-admin";
  r.created_at_ms = 1700000001000 + static_cast<int64_t>(version);
  return r;
}

}  // namespace medvault::store_testing
