// medvault storage: the public interface of src/store.
//
// Two stores sit behind interfaces so that deployments can swap them:
//  - ObjectStore: opaque, already-encrypted blobs (local files by default;
//    OpenStack Swift and S3 later). Streaming in both directions.
//  - MetadataStore: patients, segment versions and wrapped keys (SQLite by
//    default; PostgreSQL later). Domain operations, not SQL, so that a second
//    implementation needs no change in callers.
// Neither store ever sees plaintext health data: callers encrypt first.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "vocab/vocab.h"

namespace medvault::store {

// Ledger entries (already encoded) that must commit in the same transaction
// as the write they describe: no action without its entry, no entry without
// its action. The store hands them to its AuditSink inside the transaction.
using AuditEntries = std::span<const Bytes>;

// ===========================================================================
// Transactions and the audit sink (docs/architecture.md, "Persistence seam")

// A write transaction of a store backend. The stores run every write in one
// and commit it themselves; what else must commit with the write (its ledger
// entries) is appended to it through an AuditSink before the commit. Opaque
// to everyone but its backend: a sink casts it to its backend's own type and
// refuses a transaction of another backend. Used by one thread, only for the
// duration of the store call that hands it out.
class Transaction {
 public:
  virtual ~Transaction() = default;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  // The backend that opened it ("sqlite"), for error messages.
  virtual std::string_view backend() const = 0;

 protected:
  Transaction() = default;
};

// Where a store puts the ledger entries of a write, inside the write's own
// transaction: dependency inversion, since src/store sits below src/ledger.
// ledger::Log implements it; the app hands the ledger to the stores as their
// sink. A store that is given audit entries but no sink refuses the write
// (FailedPrecondition): entries are never silently dropped.
class AuditSink {
 public:
  virtual ~AuditSink() = default;
  // Appends `entries` (canonical encodings) inside `txn`: they commit or roll
  // back with it. FailedPrecondition when `txn` is not open or belongs to
  // another backend or database; InvalidArgument when an entry is not a
  // canonical entry (nothing appended).
  virtual Status AppendEncodedInTransaction(Transaction& txn, AuditEntries entries) = 0;
};

// ===========================================================================
// Object store

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  Bytes sha256;  // of the stored bytes, 32 bytes
};

// Streams one object into the store. Nothing is visible under the key until
// Commit() returns OK; destroying an uncommitted writer discards it.
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;
  virtual Status Append(ByteView data) = 0;
  // Durably publishes the object (for files: fsync, rename, fsync directory).
  // AlreadyExists when the key is taken: objects are immutable.
  virtual Result<ObjectInfo> Commit() = 0;
};

// Streams one object out of the store, hashing as it goes.
class ObjectReader {
 public:
  virtual ~ObjectReader() = default;
  // Reads up to out.size() bytes; returns 0 at the end. At the end the content
  // hash is compared with the expected one: DataLoss on mismatch (changed or
  // swapped object), and also when the size differs.
  virtual Result<size_t> Read(std::span<uint8_t> out) = 0;
  virtual uint64_t size() const = 0;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // Keys: 1..512 chars of [a-z0-9._-] separated by '/', no empty, "." or ".."
  // component, no leading or trailing '/'. Anything else is InvalidArgument.
  virtual Result<std::unique_ptr<ObjectWriter>> BeginPut(std::string_view key) = 0;
  // NotFound when absent. `expected_sha256` (32 bytes) is what the metadata says.
  virtual Result<std::unique_ptr<ObjectReader>> Open(std::string_view key,
                                                     ByteView expected_sha256) = 0;
  // OK when absent too (idempotent).
  virtual Status Delete(std::string_view key) = 0;
  // Calls `fn` for every committed key under `prefix` ("" for all).
  virtual Status List(std::string_view prefix,
                      const std::function<void(const std::string& key)>& fn) = 0;
  // When the object was committed (Unix milliseconds; for files, the mtime),
  // so that the scrubber leaves a young unreferenced object alone: its
  // metadata row may be about to be inserted. NotFound when absent. Stores
  // that cannot tell answer FailedPrecondition (the default), and such objects
  // are never taken for old.
  virtual Result<int64_t> CommittedAtMs(std::string_view key);

  // Conveniences over the streaming calls.
  Result<ObjectInfo> Put(std::string_view key, ByteView data);
  Result<Bytes> Get(std::string_view key, ByteView expected_sha256);
};

bool IsValidObjectKey(std::string_view key);

// A reader over bytes already in memory with the same end check as the
// stores' readers (DataLoss when they do not hash to `expected_sha256`):
// how inline versions are read, by the record service and the scrubber
// alike. `name` appears in its error messages.
std::unique_ptr<ObjectReader> NewBytesObjectReader(std::string name, Bytes content,
                                                   ByteView expected_sha256);

// Files under `root` (created if missing). Objects are fanned out into
// subdirectories; temp files live in `root/.tmp` and are removed at open.
Result<std::unique_ptr<ObjectStore>> OpenFileObjectStore(const std::filesystem::path& root);

// ===========================================================================
// Metadata store

struct PatientRecord {
  std::string patient_id;     // random id, 32 hex
  Bytes wrapped_root_key;     // by the key provider; empty once erased
  Bytes sealed_demographics;  // AEAD under a key derived from the root key
  Bytes name_index;           // blind index of the normalised family name
  Bytes identifier_index;     // blind index of the external identifier (MRN), may be empty
  int64_t created_at_ms = 0;
  std::optional<int64_t> erased_at_ms;
};

using vocab::ContentKind;  // its values are stored (the `kind` column)

// Where a version's ciphertext lives (stored: the `storage` column).
//  kObject: in the object store, under the version's object_key.
//  kInline: in the metadata store's own row (docs/architecture.md, "Small
//    versions inline"): small versions are written with their row and their
//    ledger entries in one transaction, so one group commit makes all three
//    durable, with no file, directory entry or fsync of their own.
enum class ContentStorage : int { kObject = 0, kInline = 1 };
// The largest ciphertext a metadata store accepts inline. The record service
// inlines below its own, lower, threshold (RecordServiceOptions).
inline constexpr uint64_t kMaxInlineBytes = 1u << 20;

struct SegmentVersionRecord {
  std::string patient_id;
  std::string path;      // e.g. "physical-signs/blood-pressure"
  uint64_t version = 0;  // 1, 2, 3, ... per (patient, path)
  std::string category;  // top-level category name
  int sensitivity = 0;   // 0 (low) .. 4 (highest)
  ContentKind kind = ContentKind::kJson;
  std::string media_type;  // e.g. "application/json", "application/pdf"
  std::string object_key;  // where the ciphertext lives in the object store
  uint64_t plaintext_size = 0;
  uint64_t stored_size = 0;
  Bytes content_sha256;  // of the stored (encrypted) bytes
  std::string author;    // account or "bootstrap-admin"
  int64_t created_at_ms = 0;
  ContentStorage storage = ContentStorage::kObject;
  // The ciphertext of a kInline version: stored_size bytes hashing to
  // content_sha256. Given on insert and filled by GetSegmentVersion; left
  // empty in the rows of ListSegmentVersions and ForEachSegmentVersion (which
  // say only where it lives), and once the patient is erased. Always empty
  // for kObject versions.
  Bytes inline_content;
};

// Latest version of one path, for tree listings.
struct SegmentSummary {
  std::string path;
  std::string category;
  int sensitivity = 0;
  ContentKind kind = ContentKind::kJson;
  std::string media_type;
  uint64_t latest_version = 0;
  uint64_t version_count = 0;
  int64_t updated_at_ms = 0;
};

// A node of a patient's key tree rotated at least once (every other node is
// at version 1). See crypto::DeriveKeyForPath.
struct NodeKeyVersion {
  std::string path;
  uint32_t version = 1;
};

// The encoded key slot list (crypto::EncodeKeySlots) that replaces the slots
// in an object's own envelope header after a rotation re-wrapped its data key.
struct ObjectKeySlots {
  std::string object_key;
  Bytes slots;
};

// The rules every metadata store applies to a row before it inserts it (the
// SQLite store's table constraints, the same in memory and in any later
// backend): ids, path and object key present, versions from 1, sizes and
// versions within int64, sensitivity 0..4, a known content kind, a 32-byte
// content hash; an inline version carries its content (1..kMaxInlineBytes,
// stored_size bytes), an object version none. InvalidArgument naming what is
// wrong. (That the content hashes to content_sha256 is checked on read.)
Status ValidateSegmentVersionRecord(const SegmentVersionRecord& rec);
// InvalidArgument when `v` does not fit a signed 64-bit column.
Status CheckInt64(uint64_t v, std::string_view field);

// What reading one version needs, taken from one snapshot of the store (see
// MetadataStore::GetVersionForRead).
struct VersionForRead {
  PatientRecord patient;
  SegmentVersionRecord version;  // with its inline content
  std::vector<NodeKeyVersion> rotated;
};

// Thread-safe: every method may be called from any thread.
class MetadataStore {
 public:
  virtual ~MetadataStore() = default;

  // AlreadyExists when the id is taken.
  virtual Status CreatePatient(const PatientRecord& patient, AuditEntries audit = {}) = 0;
  // NotFound when absent. Erased patients are returned with erased_at_ms set.
  virtual Result<PatientRecord> GetPatient(std::string_view patient_id) = 0;
  // Patients (not erased) whose name_index or identifier_index equals `index`.
  virtual Result<std::vector<std::string>> FindPatientsByNameIndex(ByteView index) = 0;
  virtual Result<std::vector<std::string>> FindPatientsByIdentifierIndex(ByteView index) = 0;
  // Pages through patient ids in creation order, not erased, after `after_id`.
  virtual Result<std::vector<std::string>> ListPatients(std::string_view after_id,
                                                        size_t limit) = 0;

  // Crypto-shredding: deletes the wrapped root key and the sealed demographics
  // and indexes and the patient's inline ciphertexts, marks the patient
  // erased, and makes sure the deleted bytes are overwritten in the database
  // files. NotFound when absent.
  virtual Status ErasePatient(std::string_view patient_id, int64_t erased_at_ms,
                              AuditEntries audit = {}) = 0;

  // Inserts a new version. AlreadyExists when (patient, path, version) exists,
  // FailedPrecondition when version != latest + 1, NotFound for unknown or
  // erased patients. Durable when it returns OK.
  virtual Status InsertSegmentVersion(const SegmentVersionRecord& record,
                                      AuditEntries audit = {}) = 0;
  // Inserts several versions in one transaction, all or none, after
  // creating `new_patient` in the same transaction when it is not null. Each
  // row follows InsertSegmentVersion's rules (the first refusal is returned
  // and nothing is written); the ledger entries commit with them. Durable
  // when it returns OK.
  virtual Status InsertBatch(const PatientRecord* new_patient,
                             std::span<const SegmentVersionRecord> records,
                             AuditEntries audit = {}) = 0;
  // 0 when the path has no version yet.
  virtual Result<uint64_t> LatestVersion(std::string_view patient_id, std::string_view path) = 0;
  // version == 0 means latest. NotFound when absent.
  virtual Result<SegmentVersionRecord> GetSegmentVersion(std::string_view patient_id,
                                                         std::string_view path,
                                                         uint64_t version) = 0;
  // All versions of a path, oldest first.
  virtual Result<std::vector<SegmentVersionRecord>> ListSegmentVersions(std::string_view patient_id,
                                                                        std::string_view path) = 0;
  // Latest version of every path of a patient, sorted by path. `prefix` ""
  // for all, or a path whose subtree to list.
  virtual Result<std::vector<SegmentSummary>> ListSegments(std::string_view patient_id,
                                                           std::string_view prefix) = 0;
  // Every object key of a patient's kObject versions (for erasure clean-up;
  // inline versions have no object).
  virtual Result<std::vector<std::string>> ListObjectKeys(std::string_view patient_id) = 0;
  // Every segment version of every patient, in (patient, path, version)
  // order, for the integrity scrubber. Stops at the first error `fn` returns.
  virtual Status ForEachSegmentVersion(
      const std::function<Status(const SegmentVersionRecord&)>& fn) = 0;

  // GetPatient, GetSegmentVersion and ListNodeKeyVersions of one version in
  // one call, from one snapshot where the backend has snapshots (SQLite: one
  // read transaction; a remote database: one round trip): a read's rows can
  // then not straddle a rotation or an erasure. NotFound as those calls; the
  // patient row is returned even when erased (the caller decides). The
  // default composes the three calls.
  virtual Result<VersionForRead> GetVersionForRead(std::string_view patient_id,
                                                   std::string_view path, uint64_t version);

  // Key tree versions. The rotated nodes of a patient, sorted by path (empty
  // when none was ever rotated).
  virtual Result<std::vector<NodeKeyVersion>> ListNodeKeyVersions(std::string_view patient_id) = 0;
  // The re-wrapped slots of an object; nullopt when it has none (its header's
  // slots apply).
  virtual Result<std::optional<Bytes>> GetObjectKeySlots(std::string_view object_key) = 0;
  // One rotation, all or nothing in one transaction: sets node `path` of the
  // patient to `new_version`, replaces the slots of every object in `slots`,
  // and commits the ledger entries with them. FailedPrecondition when
  // new_version is not the current version + 1 (a concurrent rotation won);
  // NotFound for an unknown or erased patient, or an object key that is not
  // one of the patient's segment versions.
  virtual Status RotateNodeKey(std::string_view patient_id, std::string_view path,
                               uint32_t new_version, int64_t rotated_at_ms,
                               std::span<const ObjectKeySlots> slots, AuditEntries audit = {}) = 0;

  // Schema version after migrations.
  virtual Result<int> SchemaVersion() = 0;
  // Counts for /metrics.
  virtual Result<int64_t> CountPatients() = 0;
  virtual Result<int64_t> CountSegmentVersions() = 0;
};

// A change to shared state recorded in the database's change log, so that
// other processes on the same data directory (a server beside a CLI command)
// learn of it (docs/architecture.md, "Changes made by another process").
// `seq` increases by one per change, in commit order.
struct ChangeRow {
  int64_t seq = 0;
  std::string domain;   // kChangeDomainAccount or kChangeDomainPolicy
  std::string subject;  // the account id, or the patient id
};
inline constexpr std::string_view kChangeDomainAccount = "account";
inline constexpr std::string_view kChangeDomainPolicy = "policy";
// True when `rows` (changes after `after`, oldest first, fetched with
// `limit`; `latest` read before them) are every change after `after`:
// contiguous from after + 1 and not cut by the limit. False means the reader
// fell too far behind (rows were pruned) or the database went back (a
// restore): reload everything.
bool ChangesComplete(const std::vector<ChangeRow>& rows, int64_t after, int64_t latest,
                     size_t limit);

struct SqliteOptions {
  // FULL: every commit is fsynced (durable across power loss). NORMAL: durable
  // across process crashes only.
  bool synchronous_full = true;
  int busy_timeout_ms = 5000;
  // Receives, inside the write transaction, the entries of every write that
  // carries audit entries; its failure rolls the write back. Null: entries
  // are refused (FailedPrecondition), never silently dropped. Must outlive
  // the store.
  AuditSink* audit_sink = nullptr;
};

// Opens (creating if missing) an SQLite database in WAL mode with foreign keys
// on and secure_delete on, and runs pending migrations in order.
Result<std::unique_ptr<MetadataStore>> OpenSqliteMetadataStore(const std::filesystem::path& file,
                                                               const SqliteOptions& options = {});

// ===========================================================================
// In-memory stores (tests, and the reference a new backend is compared with
// in the conformance suites): the contracts above, thread-safe, nothing
// durable. The object store checks hashes on read like the file store; its
// CommittedAtMs is the commit's wall-clock time.
std::unique_ptr<ObjectStore> NewMemoryObjectStore();

struct MemoryMetadataOptions {
  // Called under the store's write lock with the entries of every write that
  // carries some; its failure undoes the write. Empty: entries are refused
  // (FailedPrecondition), as by the SQLite store without its audit_hook.
  std::function<Status(AuditEntries entries)> audit_hook;
};
// ErasePatient clears the key material in memory (there are no files).
std::unique_ptr<MetadataStore> NewMemoryMetadataStore(MemoryMetadataOptions options = {});

}  // namespace medvault::store
