// Fault-injecting wrappers (store/fault_injection.h).
#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "crypto/crypto.h"
#include "store/fault_injection.h"

namespace medvault::store {

// ---------------------------------------------------------------------------
// FaultInjector

void FaultInjector::FailNthWrite(uint64_t n, Status error, bool after_apply) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_at_ = n == 0 ? 0 : counts_.writes + n;
  fail_at_error_ = std::move(error);
  fail_at_after_ = after_apply;
}

void FaultInjector::FailAfterWrites(uint64_t n, Status error) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_from_ = counts_.writes + n + 1;
  fail_from_error_ = std::move(error);
}

void FaultInjector::FailNextSync(bool after_publish) {
  std::lock_guard<std::mutex> lock(mu_);
  sync_armed_ = true;
  sync_after_publish_ = after_publish;
}

void FaultInjector::TearNextObject(uint64_t keep_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  tear_armed_ = true;
  tear_keep_ = keep_bytes;
}

void FaultInjector::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  fail_at_ = 0;
  fail_from_ = 0;
  sync_armed_ = false;
  tear_armed_ = false;
}

FaultInjector::Counts FaultInjector::counts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_;
}

FaultInjector::Verdict FaultInjector::OnWrite(Status* error) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t n = ++counts_.writes;
  if (fail_at_ != 0 && n == fail_at_) {
    fail_at_ = 0;
    ++counts_.injected;
    *error = fail_at_error_;
    return fail_at_after_ ? Verdict::kFailAfter : Verdict::kFailBefore;
  }
  if (fail_from_ != 0 && n >= fail_from_) {
    ++counts_.injected;
    *error = fail_from_error_;
    return Verdict::kFailBefore;
  }
  return Verdict::kPass;
}

bool FaultInjector::TakeSyncFailure(bool* after_publish) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!sync_armed_) {
    return false;
  }
  sync_armed_ = false;
  ++counts_.injected;
  *after_publish = sync_after_publish_;
  return true;
}

bool FaultInjector::TakeTear(uint64_t* keep) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!tear_armed_) {
    return false;
  }
  tear_armed_ = false;
  ++counts_.injected;
  *keep = tear_keep_;
  return true;
}

void FaultInjector::Count(uint64_t Counts::*field) {
  std::lock_guard<std::mutex> lock(mu_);
  ++(counts_.*field);
}

namespace {

// Runs `apply` unless the injector fails this write before it; returns the
// injected error when it fails the write after it.
template <typename Fn>
Status GuardWrite(FaultInjector& faults, Fn&& apply) {
  Status injected;
  switch (faults.OnWrite(&injected)) {
    case FaultInjector::Verdict::kFailBefore:
      return injected;
    case FaultInjector::Verdict::kFailAfter:
      MV_RETURN_IF_ERROR(apply());
      return injected;
    case FaultInjector::Verdict::kPass:
      break;
  }
  return apply();
}

// ---------------------------------------------------------------------------
// Object store

class FaultyObjectWriter final : public ObjectWriter {
 public:
  // `keep`: bytes that reach the inner writer (a torn object), or nullopt.
  FaultyObjectWriter(std::unique_ptr<ObjectWriter> inner, std::shared_ptr<FaultInjector> faults,
                     std::optional<uint64_t> keep)
      : inner_(std::move(inner)), faults_(std::move(faults)), keep_(keep) {}

  Status Append(ByteView data) override {
    faults_->Count(&FaultInjector::Counts::appends);
    if (inner_ == nullptr) {
      return Status::FailedPrecondition("object writer is already committed or failed");
    }
    Status st = GuardWrite(*faults_, [&] { return AppendInner(data); });
    if (!st.ok()) {
      inner_.reset();  // a failed writer is discarded, as the file store does
    }
    return st;
  }

  Result<ObjectInfo> Commit() override {
    faults_->Count(&FaultInjector::Counts::commits);
    if (inner_ == nullptr) {
      return Status::FailedPrecondition("object writer is already committed or failed");
    }
    std::unique_ptr<ObjectWriter> inner = std::move(inner_);
    Result<ObjectInfo> info = Status::Internal("object commit did not run");
    Status st = GuardWrite(*faults_, [&] {
      bool after_publish = false;
      if (faults_->TakeSyncFailure(&after_publish)) {
        if (after_publish) {
          MV_RETURN_IF_ERROR(inner->Commit().status());
        }
        return Status::IOError("injected fsync failure");
      }
      info = inner->Commit();
      return info.status();
    });
    if (!st.ok()) {
      return st;
    }
    if (keep_.has_value()) {
      // What the caller believes it stored.
      info->size = appended_;
      info->sha256 = hasher_.Finish();
    }
    return info;
  }

 private:
  Status AppendInner(ByteView data) {
    if (!keep_.has_value()) {
      return inner_->Append(data);
    }
    hasher_.Update(data);
    const uint64_t room = appended_ < *keep_ ? *keep_ - appended_ : 0;
    appended_ += data.size();
    const size_t n = static_cast<size_t>(std::min<uint64_t>(room, data.size()));
    return n == 0 ? Status::Ok() : inner_->Append(data.first(n));
  }

  std::unique_ptr<ObjectWriter> inner_;  // null once committed or failed
  std::shared_ptr<FaultInjector> faults_;
  std::optional<uint64_t> keep_;
  uint64_t appended_ = 0;
  crypto::Sha256Hasher hasher_;
};

class FaultyObjectStore final : public ObjectStore {
 public:
  FaultyObjectStore(ObjectStore* inner, std::shared_ptr<FaultInjector> faults)
      : inner_(inner), faults_(std::move(faults)) {}

  Result<std::unique_ptr<ObjectWriter>> BeginPut(std::string_view key) override {
    faults_->Count(&FaultInjector::Counts::begin_puts);
    MV_ASSIGN_OR_RETURN(std::unique_ptr<ObjectWriter> writer, inner_->BeginPut(key));
    std::optional<uint64_t> keep;
    if (uint64_t k = 0; faults_->TakeTear(&k)) {
      keep = k;
    }
    return std::unique_ptr<ObjectWriter>(new FaultyObjectWriter(std::move(writer), faults_, keep));
  }

  Result<std::unique_ptr<ObjectReader>> Open(std::string_view key,
                                             ByteView expected_sha256) override {
    faults_->Count(&FaultInjector::Counts::opens);
    return inner_->Open(key, expected_sha256);
  }

  Status Delete(std::string_view key) override {
    faults_->Count(&FaultInjector::Counts::deletes);
    return GuardWrite(*faults_, [&] { return inner_->Delete(key); });
  }

  Status List(std::string_view prefix,
              const std::function<void(const std::string& key)>& fn) override {
    return inner_->List(prefix, fn);
  }

  Result<int64_t> CommittedAtMs(std::string_view key) override {
    return inner_->CommittedAtMs(key);
  }

 private:
  ObjectStore* inner_;
  std::shared_ptr<FaultInjector> faults_;
};

// ---------------------------------------------------------------------------
// Metadata store

class FaultyMetadataStore final : public MetadataStore {
 public:
  FaultyMetadataStore(MetadataStore* inner, std::shared_ptr<FaultInjector> faults)
      : inner_(inner), faults_(std::move(faults)) {}

  Status CreatePatient(const PatientRecord& patient, AuditEntries audit) override {
    return Write([&] { return inner_->CreatePatient(patient, audit); });
  }
  Status ErasePatient(std::string_view patient_id, int64_t erased_at_ms,
                      AuditEntries audit) override {
    return Write([&] { return inner_->ErasePatient(patient_id, erased_at_ms, audit); });
  }
  Status InsertSegmentVersion(const SegmentVersionRecord& record, AuditEntries audit) override {
    return Write([&] { return inner_->InsertSegmentVersion(record, audit); });
  }
  Status InsertBatch(const PatientRecord* new_patient,
                     std::span<const SegmentVersionRecord> records, AuditEntries audit) override {
    return Write([&] { return inner_->InsertBatch(new_patient, records, audit); });
  }

  Result<PatientRecord> GetPatient(std::string_view patient_id) override {
    Read();
    return inner_->GetPatient(patient_id);
  }
  Result<std::vector<std::string>> FindPatientsByNameIndex(ByteView index) override {
    Read();
    return inner_->FindPatientsByNameIndex(index);
  }
  Result<std::vector<std::string>> FindPatientsByIdentifierIndex(ByteView index) override {
    Read();
    return inner_->FindPatientsByIdentifierIndex(index);
  }
  Result<std::vector<std::string>> ListPatients(std::string_view after_id, size_t limit) override {
    Read();
    return inner_->ListPatients(after_id, limit);
  }
  Result<uint64_t> LatestVersion(std::string_view patient_id, std::string_view path) override {
    Read();
    return inner_->LatestVersion(patient_id, path);
  }
  Result<SegmentVersionRecord> GetSegmentVersion(std::string_view patient_id, std::string_view path,
                                                 uint64_t version) override {
    Read();
    return inner_->GetSegmentVersion(patient_id, path, version);
  }
  Result<std::vector<SegmentVersionRecord>> ListSegmentVersions(std::string_view patient_id,
                                                                std::string_view path) override {
    Read();
    return inner_->ListSegmentVersions(patient_id, path);
  }
  Result<std::vector<SegmentSummary>> ListSegments(std::string_view patient_id,
                                                   std::string_view prefix) override {
    Read();
    return inner_->ListSegments(patient_id, prefix);
  }
  Result<std::vector<std::string>> ListObjectKeys(std::string_view patient_id) override {
    Read();
    return inner_->ListObjectKeys(patient_id);
  }
  Status ForEachSegmentVersion(
      const std::function<Status(const SegmentVersionRecord&)>& fn) override {
    Read();
    return inner_->ForEachSegmentVersion(fn);
  }
  Status RotateNodeKey(std::string_view patient_id, std::string_view path, uint32_t new_version,
                       int64_t rotated_at_ms, std::span<const ObjectKeySlots> slots,
                       AuditEntries audit) override {
    return Write([&] {
      return inner_->RotateNodeKey(patient_id, path, new_version, rotated_at_ms, slots, audit);
    });
  }
  Result<std::vector<NodeKeyVersion>> ListNodeKeyVersions(std::string_view patient_id) override {
    return inner_->ListNodeKeyVersions(patient_id);
  }
  Result<std::optional<Bytes>> GetObjectKeySlots(std::string_view object_key) override {
    return inner_->GetObjectKeySlots(object_key);
  }
  Result<int> SchemaVersion() override { return inner_->SchemaVersion(); }
  Result<int64_t> CountPatients() override { return inner_->CountPatients(); }
  Result<int64_t> CountSegmentVersions() override { return inner_->CountSegmentVersions(); }

 private:
  template <typename Fn>
  Status Write(Fn&& apply) {
    faults_->Count(&FaultInjector::Counts::metadata_writes);
    return GuardWrite(*faults_, std::forward<Fn>(apply));
  }
  void Read() { faults_->Count(&FaultInjector::Counts::metadata_reads); }

  MetadataStore* inner_;
  std::shared_ptr<FaultInjector> faults_;
};

}  // namespace

std::unique_ptr<ObjectStore> NewFaultyObjectStore(ObjectStore* inner,
                                                  std::shared_ptr<FaultInjector> faults) {
  return std::make_unique<FaultyObjectStore>(inner, std::move(faults));
}

std::unique_ptr<MetadataStore> NewFaultyMetadataStore(MetadataStore* inner,
                                                      std::shared_ptr<FaultInjector> faults) {
  return std::make_unique<FaultyMetadataStore>(inner, std::move(faults));
}

}  // namespace medvault::store
