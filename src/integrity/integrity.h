// medvault integrity: the public interface of src/integrity.
//
// The scrubber walks every segment version the metadata names and checks
// that its object is present and still holds the bytes that were written:
//  - fast mode reads and hashes every object once (streaming, constant
//    memory per object) and compares with the recorded SHA-256 and size;
//  - deep mode additionally decrypts and authenticates every version through
//    the RecordService, which also catches a consistent edit of metadata and
//    object (the AEAD associated data binds patient, path, version and
//    object id, so a ciphertext moved to another place does not open).
// With a WriteLog, the versions are also compared with the writes the ledger
// logged: a version deleted with its object (a rollback of the record) leaves
// every remaining object intact, and only the ledger still names it.
// A listing pass then reports objects that no metadata row references and
// reclaims those older than a grace period.
//
// Findings carry ids, segment paths, object keys, hashes and sizes only:
// never health data or keys. They can go to the audit ledger (on_finding)
// and to the JSON report an administrator reads (ReportJson).
//
// Erased patients' versions are tombstones (crypto-shredding deleted their
// objects) and are skipped, never reported as missing.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "record/record.h"
#include "store/store.h"

namespace medvault::integrity {

// Finding kinds (Finding::kind).
inline constexpr std::string_view kMissing = "missing";
inline constexpr std::string_view kChanged = "changed";
inline constexpr std::string_view kSwapped = "swapped";
inline constexpr std::string_view kRolledBack = "rolled-back";
inline constexpr std::string_view kUndecryptable = "undecryptable";
inline constexpr std::string_view kOrphan = "orphan";
inline constexpr std::string_view kMissingVersion = "missing-version";
inline constexpr std::string_view kUnloggedVersion = "unlogged-version";

// One problem with one object.
//  - "missing": the metadata names an object that is not in the store (or
//    whose key is not a valid object key).
//  - "changed": the object's bytes no longer hash to the recorded SHA-256, or
//    its size differs from the recorded one, or it cannot be read at all (I/O
//    error, symlink, not a regular file).
//  - "swapped": the object's actual hash equals the recorded hash of ANOTHER
//    object; `detail` names that object. Also reported, in fast mode, for
//    every version whose recorded hash is shared with another version:
//    ciphertexts are unique, so one of them was overwritten with the other's
//    bytes and its metadata edited to match (a deep scrub tells which).
//  - "rolled-back": the object's actual hash equals the recorded hash of an
//    OLDER version of the same patient and path (an old version restored in
//    its place); `detail` names that version. Also (with a WriteLog): the
//    ledger logged a version newer than the newest the metadata holds for
//    its path (the newest row and its object were deleted: the older version
//    is served as the latest). object_key is empty then.
//  - "missing-version" (with a WriteLog): the ledger logged a write of a
//    version the metadata does not hold with the logged hash, and it is not
//    the newest of its path (a gap in the history, a version replaced, or a
//    patient whose rows are all gone: then patient_id is empty and `detail`
//    holds the ledger's patient reference).
//  - "unlogged-version" (with a WriteLog): the metadata holds a version (or
//    a version's hash) that no ledger entry logged: inserted or edited behind
//    the record service's back.
//  - "undecryptable" (deep mode only): the hash matches but decryption or
//    authentication fails.
//  - "orphan": an object in the store that no metadata row references
//    (informational; e.g. a crash between object write and metadata insert),
//    or an object an erased patient's row still names (left over after the
//    erasure; unreadable and safe to delete). patient_id is the key's first
//    component when that is a valid id; path is empty and version 0.
//    Informational: an unreferenced object older than the grace period, and
//    an erased patient's leftover, is reclaimed (deleted) and `detail` says
//    so; a younger one is left alone (its write may be in flight).
// Every kind but "orphan" is damage.
struct Finding {
  std::string kind;
  std::string patient_id;
  std::string path;
  uint64_t version = 0;
  std::string object_key;
  std::string detail;  // ids, paths, hashes, sizes only
};

// Whether a finding is damage (something written is lost, changed or
// unaccounted for) rather than information (an orphan object): damage is
// what makes `medvault scrub` exit non-zero.
bool IsDamage(const Finding& finding);

// One segment write as the ledger logged it.
struct LoggedWrite {
  uint64_t seq = 0;            // the entry's place in the log
  std::string patient_ref;     // the ledger's pseudonym of the patient
  std::string path;            // segment path
  uint64_t version = 0;        // the version written
  std::string content_sha256;  // lower-case hex of the stored ciphertext's SHA-256
};

// What the scrubber needs of the ledger, so that src/integrity does not
// depend on src/ledger (the app wires it). Implementations must be safe to
// call from the scrubbing thread.
class WriteLog {
 public:
  virtual ~WriteLog() = default;
  // The ledger's pseudonym of a patient id.
  virtual std::string PatientRef(std::string_view patient_id) const = 0;
  // Calls `fn` for every segment write logged at seq >= from_seq, in log
  // order, and returns the seq after the last entry read (where a later
  // call resumes: the check is incremental-friendly). Stops at the first
  // error `fn` returns.
  virtual Result<uint64_t> ForEachWrite(uint64_t from_seq,
                                        const std::function<Status(const LoggedWrite&)>& fn) = 0;
};

struct ScrubOptions {
  // Also decrypt every version through the RecordService (needs one).
  bool deep = false;
  // Read rate limit for the background job; 0 = unthrottled.
  uint64_t max_bytes_per_second = 0;
  // Called once for each finding as it is found (e.g. the ledger append).
  // A non-OK status stops the scrub, which then returns that status.
  std::function<Status(const Finding&)> on_finding;
  // Cooperative cancellation (the scheduler's Stop()). When requested the
  // scrub stops promptly, also out of a throttling wait, and returns a report
  // with completed = false.
  std::stop_token stop;
  // The ledger's segment writes: every logged version must be in the
  // metadata with its hash, and every stored version logged. Null: not
  // checked (tools and tests without a ledger). Must outlive the scrub.
  WriteLog* write_log = nullptr;
  // Unreferenced objects committed at least this long ago are reclaimed
  // (deleted); younger ones are reported and left alone, since a write may
  // be between its object and its metadata row.
  std::chrono::seconds orphan_grace{std::chrono::hours(1)};
  // Unix milliseconds now (tests move it forward); empty: the system clock.
  std::function<int64_t()> now_ms;
};

struct ScrubReport {
  int64_t started_at_ms = 0;
  int64_t finished_at_ms = 0;
  bool deep = false;
  uint64_t objects_checked = 0;    // objects read to the end
  uint64_t bytes_checked = 0;      // bytes of those objects
  uint64_t versions_checked = 0;   // metadata rows examined (erased ones excluded)
  uint64_t versions_skipped = 0;   // rows of erased patients (tombstones)
  uint64_t writes_logged = 0;      // ledger write entries compared (0 without a WriteLog)
  uint64_t orphans_reclaimed = 0;  // orphan objects deleted
  std::vector<Finding> findings;
  bool completed = false;  // false when stopped early (then `error` says why)
  std::string error;
};

// Scrubs every segment version once, then lists the store for orphans.
// Errors (as a Status): InvalidArgument when deep without a RecordService;
// whatever the metadata store or the object listing returns when they fail;
// the status returned by on_finding. Per-object problems are findings, not
// errors. When options.stop is requested, returns what was found so far with
// completed = false and error = "stopped before completion".
Result<ScrubReport> Scrub(store::MetadataStore& metadata, store::ObjectStore& objects,
                          record::RecordService* records, const ScrubOptions& options);

// The report as JSON (format "medvault-scrub-report/1"), keys in this order:
//   format, mode ("fast"|"deep"), completed, error, started_at, finished_at
//   (RFC 3339 UTC), started_at_ms, finished_at_ms, duration_ms,
//   versions_checked, versions_skipped, writes_logged, objects_checked,
//   bytes_checked, orphans_reclaimed, findings_count, damage_count, counts
//   {missing, changed, swapped, rolled-back, undecryptable, missing-version,
//   unlogged-version, orphan}, findings [{kind, severity ("damage"|"info"),
//   patient_id, path, version, object_key, detail}] in the order found.
//   Pretty-printed (2 spaces).
std::string ReportJson(const ScrubReport& report);

// ---------------------------------------------------------------------------
// Background scrubbing.

struct ScrubStats {
  uint64_t runs = 0;         // scrubs finished (completed, stopped or failed)
  uint64_t failed_runs = 0;  // of which returned an error or were stopped
  uint64_t findings_total = 0;
  uint64_t damage_findings_total = 0;  // of which damage (IsDamage)
  uint64_t objects_checked_total = 0;
  int64_t last_finished_ms = 0;  // 0 before the first run
  size_t last_findings = 0;
  size_t last_damage_findings = 0;
  bool running = false;
};

struct SchedulerOptions {
  std::chrono::milliseconds initial_delay{std::chrono::minutes(5)};
  std::chrono::milliseconds interval{std::chrono::hours(24)};
  // Where each report is written as JSON (temp file, fsync, rename, fsync of
  // the directory; mode 0600: findings name patients and segment paths).
  // Empty: not written.
  std::filesystem::path report_path;
  // deep, max_bytes_per_second and on_finding; `stop` is the scheduler's own.
  ScrubOptions scrub;
};

// Runs Scrub in a background thread: once after `initial_delay`, then every
// `interval` after the previous run finished. The stores (and the record
// service, for deep scrubs) must outlive the scheduler. Thread-safe.
class ScrubScheduler {
 public:
  // Starts the thread.
  ScrubScheduler(store::MetadataStore* metadata, store::ObjectStore* objects,
                 record::RecordService* records, SchedulerOptions options);
  // Stop().
  ~ScrubScheduler();
  ScrubScheduler(const ScrubScheduler&) = delete;
  ScrubScheduler& operator=(const ScrubScheduler&) = delete;

  // Wakes the thread and joins it; a scrub in progress stops promptly (at the
  // next chunk read). Idempotent.
  void Stop();
  // Starts a run now instead of at the next scheduled time (no-op when one is
  // running).
  void TriggerNow();

  // The last finished run's report (a failed run is a report with
  // completed = false and the error), if any.
  std::optional<ScrubReport> LatestReport() const;
  ScrubStats Stats() const;
  // Status of the last attempt to write the report file.
  Status LastWriteStatus() const;

 private:
  void Loop(std::stop_token stop);
  void RunOnce(std::stop_token stop);

  store::MetadataStore* metadata_;
  store::ObjectStore* objects_;
  record::RecordService* records_;
  SchedulerOptions options_;

  std::mutex stop_mu_;  // serialises Stop() (join) callers
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  bool trigger_ = false;  // guarded by mu_
  std::optional<ScrubReport> latest_;
  ScrubStats stats_;
  Status write_status_;
  std::jthread thread_;  // last: started after everything above exists
};

// Writes `contents` to `path` atomically: a temp file in the same directory,
// fsync, rename over `path`, fsync of the directory. Mode 0600.
Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents);

}  // namespace medvault::integrity
