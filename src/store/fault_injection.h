// Test support: fault-injecting wrappers around any ObjectStore or
// MetadataStore, for the faults a test cannot cause with a real backend on
// demand (a failed fsync, a torn write, the n-th write failing, a disk that
// fails from some point on). Not for production wiring.
//
// A FaultInjector is shared by the test and the wrappers it arms (several
// wrappers may share one, so that "the n-th write" counts across an object
// store and a metadata store). Thread-safe.
//
// Write calls, counted from 1 in the order they reach the wrappers:
//   ObjectWriter::Append, ObjectWriter::Commit, ObjectStore::Delete,
//   MetadataStore::CreatePatient, ErasePatient, InsertSegmentVersion,
//   InsertBatch.
// An injected failure before the inner call leaves the inner store untouched
// (an object writer that failed is discarded: nothing is visible). With
// `after_apply` the inner call runs and succeeds and the caller still gets
// the error: the write happened but its acknowledgement was lost.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "common/status.h"
#include "store/store.h"

namespace medvault::store {

class FaultInjector {
 public:
  // Calls seen by the wrappers, and faults they injected.
  struct Counts {
    uint64_t writes = 0;  // every write call listed above
    uint64_t injected = 0;
    uint64_t begin_puts = 0;
    uint64_t appends = 0;
    uint64_t commits = 0;
    uint64_t deletes = 0;
    uint64_t opens = 0;
    uint64_t metadata_writes = 0;
    uint64_t metadata_reads = 0;
  };

  // The n-th write call from now (1 = the next) fails with `error`, once.
  void FailNthWrite(uint64_t n, Status error = Status::IOError("injected write failure"),
                    bool after_apply = false);
  // After `n` more write calls pass, every later one fails with `error` until
  // Reset() (a disk that goes away after a while).
  void FailAfterWrites(uint64_t n, Status error = Status::IOError("injected failure after delay"));
  // The next ObjectWriter::Commit fails as a failed fsync, after every byte
  // was appended: before publishing (nothing visible) or, with
  // `after_publish`, once the object is visible under its key (the file
  // store's failed directory fsync).
  void FailNextSync(bool after_publish = false);
  // The object of the next BeginPut keeps only its first `keep_bytes` bytes
  // while its Commit reports the size and SHA-256 of everything appended:
  // a torn write the store acknowledged. Readers given that hash must report
  // DataLoss.
  void TearNextObject(uint64_t keep_bytes);
  // Disarms every fault (counts are kept).
  void Reset();

  Counts counts() const;

  // --- For the wrappers ------------------------------------------------------
  enum class Verdict { kPass, kFailBefore, kFailAfter };
  // Counts one write call and says whether it fails, and how.
  Verdict OnWrite(Status* error);
  // True (once) when the armed sync failure applies; sets *after_publish.
  bool TakeSyncFailure(bool* after_publish);
  // True (once) when the armed tear applies to a new object; sets *keep.
  bool TakeTear(uint64_t* keep);
  void Count(uint64_t Counts::*field);

 private:
  mutable std::mutex mu_;
  Counts counts_;  // guarded by mu_
  // FailNthWrite: the write number that fails (0 = none).
  uint64_t fail_at_ = 0;
  Status fail_at_error_;
  bool fail_at_after_ = false;
  // FailAfterWrites: failing from this write number on (0 = never).
  uint64_t fail_from_ = 0;
  Status fail_from_error_;
  bool sync_armed_ = false;
  bool sync_after_publish_ = false;
  bool tear_armed_ = false;
  uint64_t tear_keep_ = 0;
};

// The wrapped store must outlive the wrapper and what it hands out.
std::unique_ptr<ObjectStore> NewFaultyObjectStore(ObjectStore* inner,
                                                  std::shared_ptr<FaultInjector> faults);
std::unique_ptr<MetadataStore> NewFaultyMetadataStore(MetadataStore* inner,
                                                      std::shared_ptr<FaultInjector> faults);

}  // namespace medvault::store
