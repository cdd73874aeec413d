// The integrity scrubber: one pass over every segment version, then a listing
// pass for orphans.
//
// Phases:
//  1. Snapshot: every metadata row is copied into memory (ids and paths
//     interned), so that no read transaction stays open during the long
//     hashing pass (an open reader would hold back WAL checkpoints). Two
//     sorted indexes over the rows serve the classification: by recorded
//     hash (which place does this content belong to?) and by object key
//     (is this listed object referenced?). Patients' erased flags are read
//     once per patient.
//  2. Versions: each object is read to the end through ObjectStore::Open with
//     the recorded hash, so the store does the one SHA-256 pass and reports
//     DataLoss on a mismatch. Only then is the object read a second time with
//     our own hasher to learn its actual hash and tell "swapped" and
//     "rolled-back" from "changed": intact objects (the common case) are
//     hashed once. Deep mode decrypts through the RecordService instead (the
//     store still checks the hash on the way) and falls back to the fast
//     classification only when that fails.
//  3. Orphans: the store is listed and keys absent from the snapshot become
//     candidates, re-checked at the end against the current metadata so that
//     an object written while the scrub ran (object first, row just after) is
//     not reported.
// Before any finding about a version is reported the patient's erased flag is
// read again: an erasure during the scrub deletes objects on purpose.
//
// Memory: the snapshot is O(versions) (about 100 bytes per row); each object
// is streamed through one fixed buffer.
#include <sodium.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/bytes.h"
#include "common/ids.h"
#include "crypto/crypto.h"
#include "integrity/integrity.h"

namespace medvault::integrity {
namespace {

constexpr size_t kReadChunk = 256 * 1024;
constexpr size_t kSha256Size = 32;
using Hash = std::array<uint8_t, kSha256Size>;

struct Row {
  uint32_t patient = 0;  // index into Snapshot::patients
  uint32_t path = 0;     // index into Snapshot::paths
  uint64_t version = 0;
  uint64_t stored_size = 0;
  std::string object_key;
  Hash sha{};
  bool sha_valid = false;  // the recorded hash has 32 bytes
};

struct PatientState {
  std::string id;
  bool erased = false;
};

struct Snapshot {
  std::vector<PatientState> patients;
  std::vector<std::string> paths;
  std::vector<Row> rows;
  std::vector<uint32_t> by_hash;  // row indexes with a valid hash, sorted by hash
  std::vector<uint32_t> by_key;   // row indexes sorted by object key
};

std::string HashHex(const Hash& h) { return ToHex(ByteView(h.data(), h.size())); }

class Scrubber {
 public:
  Scrubber(store::MetadataStore& metadata, store::ObjectStore& objects,
           record::RecordService* records, const ScrubOptions& options)
      : metadata_(metadata), objects_(objects), records_(records), options_(options) {}

  Result<ScrubReport> Run() {
    report_.started_at_ms = NowUnixMillis();
    report_.deep = options_.deep;
    if (options_.deep && records_ == nullptr) {
      return Status::InvalidArgument("a deep scrub needs the record service");
    }
    throttle_start_ = std::chrono::steady_clock::now();
    MV_RETURN_IF_ERROR(TakeSnapshot());
    for (uint32_t i = 0; i < snap_.rows.size(); ++i) {
      if (Stopped()) {
        return Partial();
      }
      const Row& row = snap_.rows[i];
      if (snap_.patients[row.patient].erased) {
        ++report_.versions_skipped;
        continue;
      }
      ++report_.versions_checked;
      MV_RETURN_IF_ERROR(options_.deep ? CheckDeep(i) : CheckFast(i));
    }
    if (Stopped()) {
      return Partial();
    }
    MV_RETURN_IF_ERROR(FindOrphans());
    if (Stopped()) {
      return Partial();
    }
    report_.completed = true;
    report_.finished_at_ms = NowUnixMillis();
    return std::move(report_);
  }

 private:
  // ---- phase 1 -------------------------------------------------------------

  Status TakeSnapshot() {
    std::map<std::string, uint32_t, std::less<>> path_index;
    MV_RETURN_IF_ERROR(
        metadata_.ForEachSegmentVersion([&](const store::SegmentVersionRecord& rec) -> Status {
          if (snap_.rows.size() >= std::numeric_limits<uint32_t>::max()) {
            return Status::ResourceExhausted("too many segment versions for one scrub");
          }
          Row row;
          // Rows come in (patient, path, version) order: patients are
          // contiguous, so comparing with the last one interns them.
          if (snap_.patients.empty() || snap_.patients.back().id != rec.patient_id) {
            snap_.patients.push_back(PatientState{rec.patient_id, false});
          }
          row.patient = static_cast<uint32_t>(snap_.patients.size() - 1);
          auto it = path_index.find(rec.path);
          if (it == path_index.end()) {
            it = path_index.emplace(rec.path, static_cast<uint32_t>(snap_.paths.size())).first;
            snap_.paths.push_back(rec.path);
          }
          row.path = it->second;
          row.version = rec.version;
          row.stored_size = rec.stored_size;
          row.object_key = rec.object_key;
          row.sha_valid = rec.content_sha256.size() == kSha256Size;
          if (row.sha_valid) {
            std::memcpy(row.sha.data(), rec.content_sha256.data(), kSha256Size);
          }
          snap_.rows.push_back(std::move(row));
          return Status::Ok();
        }));
    for (PatientState& p : snap_.patients) {
      MV_ASSIGN_OR_RETURN(bool erased, IsErased(p.id));
      p.erased = erased;
    }
    const auto& rows = snap_.rows;
    for (uint32_t i = 0; i < rows.size(); ++i) {
      if (rows[i].sha_valid) {
        snap_.by_hash.push_back(i);
      }
      snap_.by_key.push_back(i);
    }
    std::sort(snap_.by_hash.begin(), snap_.by_hash.end(),
              [&rows](uint32_t a, uint32_t b) { return rows[a].sha < rows[b].sha; });
    std::sort(snap_.by_key.begin(), snap_.by_key.end(),
              [&rows](uint32_t a, uint32_t b) { return rows[a].object_key < rows[b].object_key; });
    return Status::Ok();
  }

  Result<bool> IsErased(const std::string& patient_id) {
    auto p = metadata_.GetPatient(patient_id);
    if (!p.ok()) {
      // Rows reference patients by foreign key; a row without one is
      // inconsistent metadata, not an erased patient: check its objects.
      if (p.status().code() == StatusCode::kNotFound) {
        return false;
      }
      return p.status();
    }
    return p->erased_at_ms.has_value();
  }

  // Rows (other than `self`) whose recorded hash is `h`.
  std::vector<uint32_t> RowsWithHash(const Hash& h, uint32_t self) const {
    const auto& rows = snap_.rows;
    auto lo = std::lower_bound(snap_.by_hash.begin(), snap_.by_hash.end(), h,
                               [&rows](uint32_t i, const Hash& v) { return rows[i].sha < v; });
    std::vector<uint32_t> out;
    for (auto it = lo; it != snap_.by_hash.end() && rows[*it].sha == h; ++it) {
      if (*it != self) {
        out.push_back(*it);
      }
    }
    return out;
  }

  // The row naming `key`, if any.
  const Row* RowWithKey(const std::string& key) const {
    const auto& rows = snap_.rows;
    auto it = std::lower_bound(
        snap_.by_key.begin(), snap_.by_key.end(), key,
        [&rows](uint32_t i, const std::string& v) { return rows[i].object_key < v; });
    if (it == snap_.by_key.end() || rows[*it].object_key != key) {
      return nullptr;
    }
    return &rows[*it];
  }

  std::string Describe(uint32_t i) const {
    const Row& r = snap_.rows[i];
    return "object '" + r.object_key + "' (patient " + snap_.patients[r.patient].id + ", path " +
           snap_.paths[r.path] + ", version " + std::to_string(r.version) + ")";
  }

  // ---- phase 2 -------------------------------------------------------------

  struct ReadResult {
    Status status;        // OK: read to the end and the store's hash check passed
    bool opened = false;  // Open succeeded (a DataLoss then came from the end check)
    uint64_t bytes = 0;
  };

  // Streams one object to the end; `hasher` (optional) sees every byte.
  ReadResult ReadObject(const Row& row, crypto::Sha256Hasher* hasher) {
    ReadResult out;
    static const Hash kZero{};
    const Hash& expected = row.sha_valid ? row.sha : kZero;
    auto reader = objects_.Open(row.object_key, ByteView(expected.data(), expected.size()));
    if (!reader.ok()) {
      out.status = reader.status();
      return out;
    }
    out.opened = true;
    buffer_.resize(kReadChunk);
    while (true) {
      auto n = (*reader)->Read(std::span<uint8_t>(buffer_.data(), buffer_.size()));
      if (!n.ok()) {
        out.status = n.status();
        return out;
      }
      if (*n == 0) {
        if (!row.sha_valid) {
          out.status = Status::DataLoss("recorded hash is malformed");
        }
        return out;
      }
      out.bytes += *n;
      if (hasher != nullptr) {
        hasher->Update(ByteView(buffer_.data(), *n));
      }
      Throttle(*n);
      if (Stopped()) {
        out.status = Status::Unavailable("scrub stopped");
        return out;
      }
    }
  }

  Status CheckFast(uint32_t i) {
    const Row& row = snap_.rows[i];
    ReadResult r = ReadObject(row, nullptr);
    if (Stopped()) {
      return Status::Ok();
    }
    if (r.status.ok()) {
      ++report_.objects_checked;
      report_.bytes_checked += r.bytes;
      if (r.bytes != row.stored_size) {
        return Report(i, kChanged,
                      "stored size differs from the metadata: recorded " +
                          std::to_string(row.stored_size) + " bytes, stored " +
                          std::to_string(r.bytes) + " bytes");
      }
      return ReportSharedHash(i);
    }
    return ClassifyFailure(i, r);
  }

  // The object hashes to its own recorded hash, but another row records the
  // same hash. Ciphertexts are unique, so one of the two was overwritten with
  // the other's bytes and its metadata edited to match.
  Status ReportSharedHash(uint32_t i) {
    const std::vector<uint32_t> others = RowsWithHash(snap_.rows[i].sha, i);
    if (others.empty()) {
      return Status::Ok();
    }
    const uint32_t other = PickOther(i, others);
    const std::string why =
        "; ciphertexts are unique, so one of the two was overwritten with the other's bytes "
        "and its metadata edited to match (a deep scrub tells which)";
    if (IsOlderVersionOfSamePath(other, i)) {
      return Report(i, kRolledBack,
                    "recorded content hash is shared with older " + Describe(other) + why);
    }
    return Report(i, kSwapped, "recorded content hash is shared with " + Describe(other) + why);
  }

  bool IsOlderVersionOfSamePath(uint32_t other, uint32_t self) const {
    const Row& a = snap_.rows[other];
    const Row& b = snap_.rows[self];
    return a.patient == b.patient && a.path == b.path && a.version < b.version;
  }

  // Prefers an older version of the same path (a rollback), else the first.
  uint32_t PickOther(uint32_t self, const std::vector<uint32_t>& others) const {
    for (uint32_t o : others) {
      if (IsOlderVersionOfSamePath(o, self)) {
        return o;
      }
    }
    return others.front();
  }

  // The fast check failed with `r`: reports missing / changed / swapped /
  // rolled-back.
  Status ClassifyFailure(uint32_t i, const ReadResult& r) {
    const Row& row = snap_.rows[i];
    const StatusCode code = r.status.code();
    if (code == StatusCode::kNotFound) {
      return Report(i, kMissing, "object not found in the store");
    }
    if (code == StatusCode::kInvalidArgument && !r.opened) {
      return Report(i, kMissing, "the metadata names an invalid object key");
    }
    if (!r.opened || code != StatusCode::kDataLoss) {
      // Symlink, not a regular file, or an I/O error: unreadable.
      return Report(i, kChanged, "object cannot be read: " + r.status.ToString());
    }
    if (!row.sha_valid) {
      return Report(i, kChanged, "the recorded content hash is malformed");
    }
    // The end check failed: read again, hashing, to learn what it holds now.
    crypto::Sha256Hasher hasher;
    ReadResult again = ReadObject(row, &hasher);
    if (Stopped()) {
      return Status::Ok();
    }
    const Bytes actual_bytes = hasher.Finish();
    ++report_.objects_checked;
    report_.bytes_checked += r.bytes;
    if (again.status.code() == StatusCode::kNotFound) {
      return Report(i, kMissing, "object disappeared during the scrub");
    }
    if (!again.opened || (!again.status.ok() && again.status.code() != StatusCode::kDataLoss)) {
      return Report(i, kChanged, "object cannot be read: " + again.status.ToString());
    }
    if (again.status.ok()) {
      return Report(i, kChanged,
                    "content hash mismatch on a first read but not on a second one (modified "
                    "during the scrub?)");
    }
    Hash actual{};
    std::memcpy(actual.data(), actual_bytes.data(), kSha256Size);
    const std::vector<uint32_t> others = RowsWithHash(actual, i);
    if (!others.empty()) {
      const uint32_t other = PickOther(i, others);
      if (IsOlderVersionOfSamePath(other, i)) {
        return Report(i, kRolledBack,
                      "holds the content of version " + std::to_string(snap_.rows[other].version) +
                          " of the same path, object '" + snap_.rows[other].object_key + "'");
      }
      return Report(i, kSwapped, "holds the content of " + Describe(other));
    }
    return Report(i, kChanged,
                  "content hash mismatch: recorded sha256 " + HashHex(row.sha) + ", actual " +
                      HashHex(actual) + "; recorded size " + std::to_string(row.stored_size) +
                      " bytes, actual " + std::to_string(again.bytes) + " bytes");
  }

  Status CheckDeep(uint32_t i) {
    const Row& row = snap_.rows[i];
    const std::string& patient = snap_.patients[row.patient].id;
    const std::string& path = snap_.paths[row.path];
    Status st = Decrypt(patient, path, row.version);
    if (Stopped()) {
      return Status::Ok();
    }
    if (st.ok()) {
      ++report_.objects_checked;
      report_.bytes_checked += row.stored_size;
      return Status::Ok();
    }
    // Tell the storage-level problems apart first.
    ReadResult r = ReadObject(row, nullptr);
    if (Stopped()) {
      return Status::Ok();
    }
    if (!r.status.ok()) {
      return ClassifyFailure(i, r);
    }
    ++report_.objects_checked;
    report_.bytes_checked += r.bytes;
    std::string detail =
        "content hash matches the metadata but the version does not decrypt: " + st.ToString();
    const std::vector<uint32_t> others = RowsWithHash(row.sha, i);
    if (!others.empty()) {
      detail += "; the content is identical to that of " + Describe(others.front());
    }
    return Report(i, kUndecryptable, detail);
  }

  // Reads a version's plaintext to the end and throws it away.
  Status Decrypt(const std::string& patient, const std::string& path, uint64_t version) {
    MV_ASSIGN_OR_RETURN(auto reader, records_->OpenSegment(patient, path, version));
    Bytes plain;
    plain.reserve(kReadChunk + crypto::kEnvelopeChunkSize);
    Status st;
    while (true) {
      st = reader->ReadSome(kReadChunk, plain);
      const size_t n = plain.size();
      sodium_memzero(plain.data(), plain.size());
      plain.clear();
      if (!st.ok() || n == 0) {
        break;
      }
      Throttle(n);
      if (Stopped()) {
        break;
      }
    }
    return st;
  }

  // ---- phase 3 -------------------------------------------------------------

  Status FindOrphans() {
    std::vector<std::string> unreferenced;
    std::vector<std::string> leftovers;  // named only by erased patients' rows
    MV_RETURN_IF_ERROR(objects_.List("", [&](const std::string& key) {
      const Row* row = RowWithKey(key);
      if (row == nullptr) {
        unreferenced.push_back(key);
      } else if (snap_.patients[row->patient].erased) {
        leftovers.push_back(key);
      }
    }));
    // Re-check against the store and the metadata as they are now.
    std::map<std::string, std::vector<std::string>> referenced_now;  // patient -> keys
    for (const std::string& key : unreferenced) {
      if (Stopped()) {
        return Status::Ok();
      }
      MV_ASSIGN_OR_RETURN(bool exists, StillExists(key));
      if (!exists) {
        continue;
      }
      const std::string owner = FirstComponent(key);
      if (IsValidRandomId(owner)) {
        auto it = referenced_now.find(owner);
        if (it == referenced_now.end()) {
          MV_ASSIGN_OR_RETURN(std::vector<std::string> keys, metadata_.ListObjectKeys(owner));
          std::sort(keys.begin(), keys.end());
          it = referenced_now.emplace(owner, std::move(keys)).first;
        }
        if (std::binary_search(it->second.begin(), it->second.end(), key)) {
          continue;  // written while the scrub ran
        }
      }
      MV_RETURN_IF_ERROR(ReportOrphan(
          key,
          "object is not referenced by any segment version (e.g. left by a crash between "
          "object write and metadata insert)"));
    }
    for (const std::string& key : leftovers) {
      if (Stopped()) {
        return Status::Ok();
      }
      MV_ASSIGN_OR_RETURN(bool exists, StillExists(key));
      if (exists) {
        MV_RETURN_IF_ERROR(ReportOrphan(key,
                                        "object of an erased patient left after the erasure "
                                        "(crypto-shredded, unreadable); safe to delete"));
      }
    }
    return Status::Ok();
  }

  static std::string FirstComponent(const std::string& key) {
    const size_t slash = key.find('/');
    return slash == std::string::npos ? std::string() : key.substr(0, slash);
  }

  Result<bool> StillExists(const std::string& key) {
    bool found = false;
    MV_RETURN_IF_ERROR(
        objects_.List(key, [&](const std::string& k) { found = found || k == key; }));
    return found;
  }

  Status ReportOrphan(const std::string& key, std::string detail) {
    Finding f;
    f.kind = std::string(kOrphan);
    const std::string owner = FirstComponent(key);
    if (IsValidRandomId(owner)) {
      f.patient_id = owner;
    }
    f.object_key = key;
    f.detail = std::move(detail);
    return Emit(std::move(f));
  }

  // ---- findings, throttling, cancellation ---------------------------------

  // Reports a finding about row `i` unless its patient has been erased in
  // the meantime (the erasure deletes the objects on purpose).
  Status Report(uint32_t i, std::string_view kind, std::string detail) {
    const Row& row = snap_.rows[i];
    MV_ASSIGN_OR_RETURN(bool erased, IsErased(snap_.patients[row.patient].id));
    if (erased) {
      --report_.versions_checked;
      ++report_.versions_skipped;
      return Status::Ok();
    }
    Finding f;
    f.kind = std::string(kind);
    f.patient_id = snap_.patients[row.patient].id;
    f.path = snap_.paths[row.path];
    f.version = row.version;
    f.object_key = row.object_key;
    f.detail = std::move(detail);
    return Emit(std::move(f));
  }

  Status Emit(Finding f) {
    report_.findings.push_back(std::move(f));
    if (options_.on_finding) {
      return options_.on_finding(report_.findings.back());
    }
    return Status::Ok();
  }

  bool Stopped() const { return options_.stop.stop_requested(); }

  Result<ScrubReport> Partial() {
    report_.completed = false;
    report_.error = "stopped before completion";
    report_.finished_at_ms = NowUnixMillis();
    return std::move(report_);
  }

  // Waits (interruptibly) until `n` more bytes fit under the rate limit.
  void Throttle(uint64_t n) {
    if (options_.max_bytes_per_second == 0) {
      return;
    }
    throttled_bytes_ += n;
    const auto due =
        throttle_start_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(static_cast<double>(throttled_bytes_) /
                                                            options_.max_bytes_per_second));
    if (std::chrono::steady_clock::now() >= due) {
      return;
    }
    std::unique_lock<std::mutex> lock(throttle_mu_);
    (void)throttle_cv_.wait_until(lock, options_.stop, due, [] { return false; });
  }

  store::MetadataStore& metadata_;
  store::ObjectStore& objects_;
  record::RecordService* records_;
  const ScrubOptions& options_;
  ScrubReport report_;
  Snapshot snap_;
  Bytes buffer_;
  std::chrono::steady_clock::time_point throttle_start_;
  uint64_t throttled_bytes_ = 0;
  std::mutex throttle_mu_;
  std::condition_variable_any throttle_cv_;
};

}  // namespace

Result<ScrubReport> Scrub(store::MetadataStore& metadata, store::ObjectStore& objects,
                          record::RecordService* records, const ScrubOptions& options) {
  Scrubber scrubber(metadata, objects, records, options);
  return scrubber.Run();
}

}  // namespace medvault::integrity
