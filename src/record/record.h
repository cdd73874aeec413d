// medvault records: the public interface of src/record.
//
// A patient's record is a tree of segments addressed by paths such as
// "physical-signs/blood-pressure" or "internal-medicine/cardiology/ecg".
// Every write creates a new immutable version. Content is encrypted under a
// fresh data key wrapped by the key of the segment's node in the patient key
// tree (see docs/architecture.md); the root of that tree is wrapped by the
// platform key provider. Destroying the wrapped root key (ErasePatient) makes
// every object and every demographic field of the patient unreadable.
//
// Access control is not decided here: callers (src/api) authenticate and
// authorise before calling. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "crypto/crypto.h"
#include "store/store.h"
#include "vocab/vocab.h"

namespace medvault::record {

using store::ContentKind;

// ---------------------------------------------------------------------------
// Segment paths and categories

inline constexpr size_t kMaxPathLength = 256;
inline constexpr size_t kMaxPathDepth = 8;
inline constexpr size_t kMaxComponentLength = 64;
// The segment tree's vocabulary (top-level segments, their categories and
// default sensitivities) is vocab/vocab.h; these are the record's names for it.
using vocab::kMaxSensitivity;
using vocab::PathIsWithin;
using vocab::TopLevelFor;
using vocab::TopLevelSegment;

// Validates a segment path: 1..kMaxPathDepth components of 1..64 characters
// [a-z0-9-] (not starting or ending with '-'), joined by '/', at most 256
// characters, whose first component is a known top-level segment.
// InvalidArgument with a precise reason otherwise.
Status ValidateSegmentPath(std::string_view path);

// ---------------------------------------------------------------------------
// Patients

struct Demographics {
  std::string given_name;
  std::string family_name;
  std::string birth_date;  // YYYY-MM-DD
  std::string sex;         // "female", "male", "other", "unknown"
  std::string identifier;  // external identifier (MRN), may be empty
};

struct PatientInfo {
  std::string patient_id;
  int64_t created_at_ms = 0;
  bool erased = false;
  std::optional<int64_t> erased_at_ms;
  std::optional<Demographics> demographics;  // absent once erased
};

// ---------------------------------------------------------------------------
// Segments

struct SegmentVersionInfo {
  std::string patient_id;
  std::string path;
  uint64_t version = 0;
  std::string category;
  int sensitivity = 0;
  ContentKind kind = ContentKind::kJson;
  std::string media_type;
  uint64_t size = 0;               // plaintext bytes
  std::string content_sha256_hex;  // of the stored ciphertext
  std::string author;
  int64_t created_at_ms = 0;
};

struct SegmentWrite {
  ContentKind kind = ContentKind::kJson;
  std::string media_type;          // required for kBinary; json/text set automatically
  std::optional<int> sensitivity;  // default: the top-level segment's
  Bytes content;
};

struct SegmentContent {
  SegmentVersionInfo info;
  Bytes content;
};

// One segment of a batch (RecordService::WriteBatch). JSON and text content
// is checked as by WriteSegment; binary content (up to the attachment limit,
// held in memory) needs a media type.
struct BatchSegmentWrite {
  std::string path;
  SegmentWrite write;
  // When set, the batch is written only if the path's latest version is
  // still this one (0: the path has none), else FailedPrecondition and
  // nothing is written: a compare-and-set that holds across processes (the
  // version it writes is unique in the store).
  std::optional<uint64_t> expected_latest;
};

// Segments written together: all or none. The patient is an existing one
// (patient_id) or one created in the same transaction (new_patient).
struct RecordBatch {
  std::string patient_id;
  std::optional<Demographics> new_patient;
  std::vector<BatchSegmentWrite> segments;  // distinct paths
};

struct BatchResult {
  std::string patient_id;
  bool patient_created = false;
  std::vector<SegmentVersionInfo> versions;  // in the order of the batch
};

// Streams an attachment into a new version. The version number is reserved
// when the writer is created; no other write to the same path can start until
// Commit() or destruction (which abandons the upload, leaving nothing visible).
class SegmentWriter {
 public:
  virtual ~SegmentWriter() = default;
  // ResourceExhausted once the total exceeds the configured maximum.
  virtual Status Append(ByteView data) = 0;
  virtual Result<SegmentVersionInfo> Commit() = 0;
};

// Streams a version's plaintext out. Every chunk handed out has been
// authenticated; an integrity failure is reported as DataLoss.
class SegmentReader {
 public:
  virtual ~SegmentReader() = default;
  virtual const SegmentVersionInfo& info() const = 0;
  // Appends up to about `max` bytes of plaintext to `out`; empty at the end.
  virtual Status ReadSome(size_t max, Bytes& out) = 0;
};

// The unwrapped keys of one patient for the duration of one call that reads
// many segments (an export, a document assembled from its parts): the
// patient's root key is unwrapped once when it is opened, not once per
// segment. It holds a secret in locked memory, wiped when destroyed: keep it
// no longer than the call, never cache it across requests. Every read through
// it still checks that the patient exists and is not erased. Only the
// service that opened it accepts it. Thread-safe (read-only once opened).
class PatientKeys {
 public:
  virtual ~PatientKeys() = default;
  virtual const std::string& patient_id() const = 0;
};

// What RecordService::RotateSubtreeKey did.
struct SubtreeRotation {
  std::string path;
  uint32_t node_version = 0;       // the node's new key version (2, 3, ...)
  uint64_t objects_rewrapped = 0;  // versions below the node whose data keys were re-wrapped
};

// A write the ledger records in the same transaction (see AuditEncoder).
struct RecordEvent {
  // "key.patient-root-created", "segment.write", "key.patient-root-destroyed",
  // "key.subtree-rotated"
  std::string_view action;
  std::string_view patient_id;
  std::string_view path;  // segment writes, rotations (the node rotated)
  uint64_t version = 0;   // segment writes: the version; rotations: the node's new key version
  std::string content_sha256_hex;  // of the stored ciphertext (segment writes)
  std::string_view author;
  int64_t time_ms = 0;
};
// Encodes a ledger entry for an event; wired by the app to src/ledger, so
// that this module does not depend on it. The entries go to the metadata
// store with the write and commit in its transaction.
using AuditEncoder = std::function<Result<Bytes>(const RecordEvent&)>;

struct RecordServiceOptions {
  uint64_t max_attachment_bytes = 64ull * 1024 * 1024;
  uint64_t max_inline_bytes = 1024 * 1024;  // JSON and text segments
  // Versions written whole (WriteSegment, WriteBatch) whose ciphertext is at
  // most this many bytes are stored in the metadata store's row instead of
  // the object store (store::ContentStorage::kInline): one commit makes the
  // row, the ciphertext and the ledger entries durable together. 0 stores
  // everything as objects. Capped at store::kMaxInlineBytes. Streamed
  // attachments are always objects.
  uint64_t inline_storage_max_bytes = 128 * 1024;
  AuditEncoder audit;  // empty: no ledger entries (unit tests, tools)
  // Entries that ride with a WriteSegment: encoded ledger entries the caller
  // wants committed in that write's transaction, before its own (the
  // enforcement scope's pending decision, so that a write pays one group
  // commit, not two: docs/architecture.md). Called once per WriteSegment,
  // right before its insert; WriteSegment returns OK exactly when they
  // committed with it. Empty, or returning none: nothing rides.
  std::function<std::vector<Bytes>()> audit_riders;
};

class RecordService {
 public:
  virtual ~RecordService() = default;

  // InvalidArgument for malformed demographics.
  virtual Result<PatientInfo> CreatePatient(const Demographics& demographics,
                                            std::string_view author) = 0;
  // NotFound when unknown. Erased patients are returned with erased = true.
  virtual Result<PatientInfo> GetPatient(std::string_view patient_id) = 0;
  // Exact match on the normalised family name and/or identifier through the
  // blind indexes. At least one must be given.
  virtual Result<std::vector<PatientInfo>> FindPatients(std::string_view family_name,
                                                        std::string_view identifier) = 0;
  virtual Result<std::vector<std::string>> ListPatientIds(std::string_view after_id,
                                                          size_t limit) = 0;
  // Crypto-shredding: destroys the patient's wrapped root key, marks the
  // patient erased and deletes the objects. NotFound / FailedPrecondition
  // (already erased).
  virtual Status ErasePatient(std::string_view patient_id, std::string_view author = "system") = 0;

  // Writes a JSON (must be a JSON object) or text (valid UTF-8) version.
  virtual Result<SegmentVersionInfo> WriteSegment(std::string_view patient_id,
                                                  std::string_view path, const SegmentWrite& write,
                                                  std::string_view author) = 0;
  // Writes every segment of the batch as a new version, creating the patient
  // first when asked, in one metadata transaction: either every version
  // (and the patient) exists afterwards, or none does and no object is left
  // behind. InvalidArgument names the first refused segment's path;
  // exactly one of patient_id / new_patient must be set; at most 10,000
  // segments.
  virtual Result<BatchResult> WriteBatch(const RecordBatch& batch, std::string_view author) = 0;
  virtual Result<std::unique_ptr<SegmentWriter>> BeginAttachment(std::string_view patient_id,
                                                                 std::string_view path,
                                                                 std::string_view media_type,
                                                                 std::optional<int> sensitivity,
                                                                 std::string_view author) = 0;
  // version 0 = latest. NotFound for unknown patient, path or version;
  // DataLoss when the stored object fails its integrity checks.
  virtual Result<SegmentContent> ReadSegment(std::string_view patient_id, std::string_view path,
                                             uint64_t version) = 0;
  virtual Result<std::unique_ptr<SegmentReader>> OpenSegment(std::string_view patient_id,
                                                             std::string_view path,
                                                             uint64_t version) = 0;
  virtual Result<std::vector<SegmentVersionInfo>> ListVersions(std::string_view patient_id,
                                                               std::string_view path) = 0;
  virtual Result<std::vector<store::SegmentSummary>> ListTree(std::string_view patient_id,
                                                              std::string_view prefix) = 0;

  // Reads with the root key unwrapped once (PatientKeys). OpenPatientKeys:
  // InvalidArgument / NotFound (unknown or erased patient) / DataLoss (the
  // wrapped root does not unwrap). The *With calls behave as the calls
  // without, for keys.patient_id(); InvalidArgument for keys another service
  // opened.
  virtual Result<std::unique_ptr<PatientKeys>> OpenPatientKeys(std::string_view patient_id) = 0;
  virtual Result<PatientInfo> GetPatientWith(const PatientKeys& keys) = 0;
  virtual Result<SegmentContent> ReadSegmentWith(const PatientKeys& keys, std::string_view path,
                                                 uint64_t version) = 0;
  virtual Result<std::unique_ptr<SegmentReader>> OpenSegmentWith(const PatientKeys& keys,
                                                                 std::string_view path,
                                                                 uint64_t version) = 0;

  // Rotates the key of the node `path` (a segment path; its whole subtree
  // follows, nothing beside or above it changes), e.g. after a revocation:
  // versions written afterwards are sealed under the new key, and the data
  // keys of every existing version below the node are re-wrapped under it
  // (the data is not re-encrypted). All or nothing: the new node version,
  // every re-wrapped slot and the ledger entry ("key.subtree-rotated") commit
  // in one metadata transaction. Writes to the patient wait while it runs.
  // InvalidArgument / NotFound (unknown or erased patient); an object below
  // the node that is missing (NotFound) or does not open (DataLoss) fails the
  // whole rotation, with its path and version in the message, and changes
  // nothing.
  virtual Result<SubtreeRotation> RotateSubtreeKey(std::string_view patient_id,
                                                   std::string_view path,
                                                   std::string_view author) = 0;
};

// The stores and the key provider must outlive the service.
Result<std::unique_ptr<RecordService>> CreateRecordService(crypto::KeyProvider* keys,
                                                           store::MetadataStore* metadata,
                                                           store::ObjectStore* objects,
                                                           const RecordServiceOptions& options);

// Validates a demographics value: names 1..200 chars of valid UTF-8 without
// control characters, birth_date a real calendar date YYYY-MM-DD not in the
// future, sex one of the four values, identifier 0..64 printable ASCII.
Status ValidateDemographics(const Demographics& d);

}  // namespace medvault::record
