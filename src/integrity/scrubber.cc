// The integrity scrubber: one pass over every segment version, then a listing
// pass for orphans.
//
// Phases:
//  0. Ledger (with a WriteLog), before the snapshot: every segment write the
//     ledger logged is read once into memory (interned paths and patient
//     references). A write's entry commits in the same transaction as its
//     row, so every entry read here has its row in the snapshot taken after.
//     After the snapshot the two sides are sorted by (patient, path, version)
//     and merge-joined: O(n log n), no per-row query. A logged version absent
//     from the metadata is "rolled-back" (newer than the path's newest row)
//     or "missing-version"; a row whose hash no entry logged is a candidate
//     "unlogged-version", re-checked against the entries appended since the
//     first read (a write that committed between the two reads is logged).
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
//     not reported. An orphan committed longer ago than the grace period is
//     reclaimed (deleted); a younger one is left alone (its row may be about
//     to be inserted). Orphans are information, not damage.
// Before any finding about a version is reported the patient's erased flag is
// read again: an erasure during the scrub deletes objects on purpose.
//
// Memory: the snapshot is O(versions) (about 100 bytes per row), the logged
// writes O(write entries) (about 70 bytes each); each object is streamed
// through one fixed buffer.
#include <sodium.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
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
  bool sha_valid = false;      // the recorded hash has 32 bytes
  bool inline_stored = false;  // the ciphertext is in the metadata row
};

struct PatientState {
  std::string id;
  bool erased = false;
};

// One segment write the ledger logged.
struct Logged {
  uint64_t seq = 0;
  uint32_t ref = 0;   // index into Scrubber::refs_
  uint32_t path = 0;  // index into Snapshot::paths
  uint64_t version = 0;
  Hash sha{};
  bool sha_valid = false;  // the logged hash is 64 hex digits
};

constexpr uint32_t kNoPatient = std::numeric_limits<uint32_t>::max();

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
    if (options_.write_log != nullptr) {
      MV_RETURN_IF_ERROR(ReadLoggedWrites());
    }
    MV_RETURN_IF_ERROR(TakeSnapshot());
    if (options_.write_log != nullptr) {
      MV_RETURN_IF_ERROR(CompareWithLedger());
    }
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
          row.path = InternPath(rec.path);
          row.version = rec.version;
          row.stored_size = rec.stored_size;
          row.object_key = rec.object_key;
          row.inline_stored = rec.storage == store::ContentStorage::kInline;
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

  uint32_t InternPath(const std::string& path) {
    auto it = path_index_.find(path);
    if (it == path_index_.end()) {
      it = path_index_.emplace(path, static_cast<uint32_t>(snap_.paths.size())).first;
      snap_.paths.push_back(path);
    }
    return it->second;
  }

  // ---- phase 0: the ledger -------------------------------------------------

  static bool ParseHashHex(std::string_view hex, Hash& out) {
    if (hex.size() != 2 * kSha256Size) {
      return false;
    }
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    for (size_t i = 0; i < kSha256Size; ++i) {
      const int hi = nibble(hex[2 * i]);
      const int lo = nibble(hex[2 * i + 1]);
      if (hi < 0 || lo < 0) {
        return false;
      }
      out[i] = static_cast<uint8_t>(hi * 16 + lo);
    }
    return true;
  }

  Status ReadLoggedWrites() {
    MV_ASSIGN_OR_RETURN(
        logged_end_, options_.write_log->ForEachWrite(0, [&](const LoggedWrite& w) -> Status {
          if (logged_.size() >= kNoPatient) {
            return Status::ResourceExhausted("too many logged writes for one scrub");
          }
          Logged l;
          l.seq = w.seq;
          auto it = ref_index_.find(w.patient_ref);
          if (it == ref_index_.end()) {
            it = ref_index_.emplace(w.patient_ref, static_cast<uint32_t>(refs_.size())).first;
            refs_.push_back(w.patient_ref);
          }
          l.ref = it->second;
          l.path = InternPath(w.path);
          l.version = w.version;
          l.sha_valid = ParseHashHex(w.content_sha256, l.sha);
          logged_.push_back(l);
          return Status::Ok();
        }));
    report_.writes_logged = logged_.size();
    return Status::Ok();
  }

  // Merge-joins the logged writes with the snapshot (see phase 0 above).
  Status CompareWithLedger() {
    if (Stopped()) {
      return Status::Ok();
    }
    // The patient of each logged reference, through the metadata's patients.
    std::vector<uint32_t> patient_of_ref(refs_.size(), kNoPatient);
    patient_refs_.resize(snap_.patients.size());
    for (uint32_t p = 0; p < snap_.patients.size(); ++p) {
      patient_refs_[p] = options_.write_log->PatientRef(snap_.patients[p].id);
      auto it = ref_index_.find(patient_refs_[p]);
      if (it != ref_index_.end()) {
        patient_of_ref[it->second] = p;
      }
    }
    const auto& rows = snap_.rows;
    std::vector<uint32_t> by_row(rows.size());
    for (uint32_t i = 0; i < by_row.size(); ++i) by_row[i] = i;
    std::sort(by_row.begin(), by_row.end(), [&rows](uint32_t a, uint32_t b) {
      return std::tie(rows[a].patient, rows[a].path, rows[a].version) <
             std::tie(rows[b].patient, rows[b].path, rows[b].version);
    });
    std::vector<uint32_t> by_log;
    std::vector<uint32_t> unknown;  // logged writes of no patient in the metadata
    for (uint32_t j = 0; j < logged_.size(); ++j) {
      (patient_of_ref[logged_[j].ref] == kNoPatient ? unknown : by_log).push_back(j);
    }
    auto log_key = [&](uint32_t j) {
      const Logged& l = logged_[j];
      return std::make_tuple(patient_of_ref[l.ref], l.path, l.version, l.seq);
    };
    std::sort(by_log.begin(), by_log.end(),
              [&](uint32_t a, uint32_t b) { return log_key(a) < log_key(b); });

    std::vector<uint32_t> unlogged;  // candidate rows, re-checked below
    size_t i = 0;
    size_t j = 0;
    while (i < by_row.size() || j < by_log.size()) {
      // The next (patient, path) group on either side.
      std::pair<uint32_t, uint32_t> group;
      if (j == by_log.size() ||
          (i < by_row.size() &&
           std::make_pair(rows[by_row[i]].patient, rows[by_row[i]].path) <=
               std::make_pair(std::get<0>(log_key(by_log[j])), logged_[by_log[j]].path))) {
        group = {rows[by_row[i]].patient, rows[by_row[i]].path};
      } else {
        group = {std::get<0>(log_key(by_log[j])), logged_[by_log[j]].path};
      }
      size_t i_end = i;
      while (i_end < by_row.size() &&
             std::make_pair(rows[by_row[i_end]].patient, rows[by_row[i_end]].path) == group) {
        ++i_end;
      }
      size_t j_end = j;
      while (j_end < by_log.size() && std::make_pair(std::get<0>(log_key(by_log[j_end])),
                                                     logged_[by_log[j_end]].path) == group) {
        ++j_end;
      }
      const uint64_t newest_row = i_end > i ? rows[by_row[i_end - 1]].version : 0;
      // Versions within the group, both sides sorted by version.
      while (i < i_end || j < j_end) {
        const uint64_t v =
            std::min(i < i_end ? rows[by_row[i]].version : std::numeric_limits<uint64_t>::max(),
                     j < j_end ? logged_[by_log[j]].version : std::numeric_limits<uint64_t>::max());
        const uint32_t* row = (i < i_end && rows[by_row[i]].version == v) ? &by_row[i] : nullptr;
        size_t k = j;
        while (k < j_end && logged_[by_log[k]].version == v) {
          ++k;
        }
        MV_RETURN_IF_ERROR(
            CompareVersion(group.first, group.second, v, row, j, k, newest_row, by_log, unlogged));
        if (row != nullptr) {
          ++i;
        }
        j = k;
      }
    }
    for (uint32_t u : unknown) {
      const Logged& l = logged_[u];
      MV_RETURN_IF_ERROR(
          EmitVersion(kMissingVersion, "", snap_.paths[l.path], l.version, "",
                      "the ledger logged this version (entry " + std::to_string(l.seq) +
                          ") for patient reference " + refs_[l.ref] +
                          ", but no segment version in the metadata belongs to a patient with that "
                          "reference: the patient's rows are gone"));
    }
    return ReportUnlogged(unlogged);
  }

  // One (patient, path, version): the row (if any) against the logged
  // writes by_log[from, to) of that version.
  Status CompareVersion(uint32_t patient, uint32_t path, uint64_t version, const uint32_t* row,
                        size_t from, size_t to, uint64_t newest_row,
                        const std::vector<uint32_t>& by_log, std::vector<uint32_t>& unlogged) {
    if (row != nullptr) {
      const Row& r = snap_.rows[*row];
      bool logged = false;
      for (size_t k = from; k < to; ++k) {
        const Logged& l = logged_[by_log[k]];
        logged = logged || (l.sha_valid && r.sha_valid && l.sha == r.sha);
      }
      if (!logged) {
        unlogged.push_back(*row);
        return Status::Ok();
      }
      // Logged with its hash; another logged write of the same version whose
      // content is not here means the version was deleted and written again.
      for (size_t k = from; k < to; ++k) {
        const Logged& l = logged_[by_log[k]];
        if (!(l.sha_valid && l.sha == r.sha)) {
          MV_RETURN_IF_ERROR(EmitVersion(
              kMissingVersion, snap_.patients[patient].id, snap_.paths[path], version, "",
              "the ledger logged this version twice; the content logged at entry " +
                  std::to_string(l.seq) + " (sha256 " + HashHex(l.sha) +
                  ") is not in the metadata, which holds another one: the version was "
                  "deleted and written again"));
        }
      }
      return Status::Ok();
    }
    if (from == to) {
      return Status::Ok();
    }
    const Logged& l = logged_[by_log[to - 1]];
    const std::string logged_at = "the ledger logged version " + std::to_string(version) +
                                  " (entry " + std::to_string(l.seq) + ", sha256 " +
                                  HashHex(l.sha) + ") but the metadata does not hold it";
    if (version > newest_row) {
      return EmitVersion(
          kRolledBack, snap_.patients[patient].id, snap_.paths[path], version, "",
          logged_at + "; the newest version there is " + std::to_string(newest_row) +
              ": the record was rolled back and the older version is served as the latest");
    }
    return EmitVersion(kMissingVersion, snap_.patients[patient].id, snap_.paths[path], version, "",
                       logged_at + " (a newer version is there: a gap in the history)");
  }

  // Reports the candidate rows no entry logged, after reading the entries
  // appended since the first read (their rows may be in the snapshot).
  Status ReportUnlogged(std::vector<uint32_t>& candidates) {
    if (candidates.empty()) {
      return Status::Ok();
    }
    std::map<std::tuple<std::string, std::string, uint64_t>, uint32_t> open;
    for (uint32_t c : candidates) {
      const Row& r = snap_.rows[c];
      open.emplace(std::make_tuple(patient_refs_[r.patient], snap_.paths[r.path], r.version), c);
    }
    std::set<uint32_t> logged_since;
    MV_RETURN_IF_ERROR(
        options_.write_log
            ->ForEachWrite(logged_end_,
                           [&](const LoggedWrite& w) -> Status {
                             auto it = open.find(std::make_tuple(w.patient_ref, w.path, w.version));
                             Hash h{};
                             if (it != open.end() && ParseHashHex(w.content_sha256, h) &&
                                 snap_.rows[it->second].sha == h) {
                               logged_since.insert(it->second);
                             }
                             return Status::Ok();
                           })
            .status());
    for (uint32_t c : candidates) {
      if (logged_since.count(c) != 0) {
        continue;
      }
      const Row& r = snap_.rows[c];
      MV_RETURN_IF_ERROR(EmitVersion(
          kUnloggedVersion, snap_.patients[r.patient].id, snap_.paths[r.path], r.version,
          r.object_key,
          "the metadata holds this version (sha256 " + (r.sha_valid ? HashHex(r.sha) : "?") +
              ") but no ledger entry logged a write of it with that hash: inserted or edited "
              "outside the record service"));
    }
    return Status::Ok();
  }

  Status EmitVersion(std::string_view kind, const std::string& patient_id, const std::string& path,
                     uint64_t version, const std::string& object_key, std::string detail) {
    Finding f;
    f.kind = std::string(kind);
    f.patient_id = patient_id;
    f.path = path;
    f.version = version;
    f.object_key = object_key;
    f.detail = std::move(detail);
    return Emit(std::move(f));
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
    auto reader = OpenStored(row, ByteView(expected.data(), expected.size()));
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

  // The stored bytes of a row: its object, or its inline content read back
  // from the metadata store (NotFound when the row or its content is gone).
  Result<std::unique_ptr<store::ObjectReader>> OpenStored(const Row& row, ByteView expected) {
    if (!row.inline_stored) {
      return objects_.Open(row.object_key, expected);
    }
    MV_ASSIGN_OR_RETURN(store::SegmentVersionRecord rec,
                        metadata_.GetSegmentVersion(snap_.patients[row.patient].id,
                                                    snap_.paths[row.path], row.version));
    if (rec.inline_content.empty() || rec.object_key != row.object_key) {
      return Status::NotFound("inline content not found");
    }
    return store::NewBytesObjectReader("inline content of '" + row.object_key + "'",
                                       std::move(rec.inline_content), expected);
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
      // An inline version's row names no object: a file under its key is
      // not its content (planted, or left by a crash in an older layout).
      if (row == nullptr || row->inline_stored) {
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
      std::string detail =
          "object is not referenced by any segment version (e.g. left by a crash between "
          "object write and metadata insert)";
      const int64_t grace_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(options_.orphan_grace).count();
      Result<int64_t> committed = objects_.CommittedAtMs(key);
      if (!committed.ok() && committed.status().code() == StatusCode::kNotFound) {
        continue;  // deleted meanwhile
      }
      if (!committed.ok()) {
        detail += "; left alone: its age is unknown (" + committed.status().ToString() + ")";
      } else if (const int64_t age_ms = Now() - *committed; age_ms < grace_ms) {
        detail += "; left alone: committed " + std::to_string(std::max<int64_t>(age_ms, 0) / 1000) +
                  " s ago, within the grace period of " + std::to_string(grace_ms / 1000) +
                  " s (its write may be in flight); a later scrub reclaims it";
      } else {
        detail += "; committed " + std::to_string(age_ms / 1000) + " s ago, beyond the grace " +
                  "period of " + std::to_string(grace_ms / 1000) + " s: " + Reclaim(key);
      }
      MV_RETURN_IF_ERROR(ReportOrphan(key, std::move(detail)));
    }
    for (const std::string& key : leftovers) {
      if (Stopped()) {
        return Status::Ok();
      }
      MV_ASSIGN_OR_RETURN(bool exists, StillExists(key));
      if (exists) {
        // No grace: the patient's key is destroyed, nothing will reference
        // or read this object again (the erasure deletes them too).
        MV_RETURN_IF_ERROR(ReportOrphan(key,
                                        "object of an erased patient left after the erasure "
                                        "(crypto-shredded, unreadable): " +
                                            Reclaim(key)));
      }
    }
    return Status::Ok();
  }

  // Deletes an orphan; says what happened, for the finding's detail.
  std::string Reclaim(const std::string& key) {
    Status st = objects_.Delete(key);
    if (!st.ok()) {
      return "could not be reclaimed (" + st.ToString() + "); a later scrub tries again";
    }
    ++report_.orphans_reclaimed;
    return "reclaimed (deleted)";
  }

  int64_t Now() const { return options_.now_ms ? options_.now_ms() : NowUnixMillis(); }

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
  std::map<std::string, uint32_t, std::less<>> path_index_;  // into snap_.paths
  std::vector<Logged> logged_;
  uint64_t logged_end_ = 0;        // where the first read of the ledger ended
  std::vector<std::string> refs_;  // the logged patient references, interned
  std::unordered_map<std::string, uint32_t> ref_index_;
  std::vector<std::string> patient_refs_;  // per snap_.patients
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
