// MetadataStore in memory: the contract of store.h without a database, for
// tests and as the reference backend of
// tests/metadata_store_conformance_test.cc.
//
// One mutex guards everything; reads copy out. A write is checked against the
// current state plus the rows staged before it in the same call, and applied
// only when every row passed and the audit hook accepted the entries, so a
// refusal leaves nothing behind (the SQLite store's transaction rollback).
#include <algorithm>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "store/store.h"
#include "store/version_rule.h"

namespace medvault::store {
namespace {

struct StoredPatient {
  PatientRecord record;
  int64_t seq = 0;  // creation order
};

class MemoryMetadataStore final : public MetadataStore {
 public:
  explicit MemoryMetadataStore(MemoryMetadataOptions options) : options_(std::move(options)) {}

  Status CreatePatient(const PatientRecord& patient, AuditEntries audit) override {
    return InsertBatchImpl(&patient, {}, audit);
  }

  Result<PatientRecord> GetPatient(std::string_view patient_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = patients_.find(patient_id);
    if (it == patients_.end()) {
      return Status::NotFound("patient not found");
    }
    return it->second.record;
  }

  Result<std::vector<std::string>> FindPatientsByNameIndex(ByteView index) override {
    return FindByIndex(index, &PatientRecord::name_index);
  }

  Result<std::vector<std::string>> FindPatientsByIdentifierIndex(ByteView index) override {
    return FindByIndex(index, &PatientRecord::identifier_index);
  }

  Result<std::vector<std::string>> ListPatients(std::string_view after_id, size_t limit) override {
    std::vector<std::string> ids;
    if (limit == 0) {
      return ids;
    }
    std::lock_guard<std::mutex> lock(mu_);
    int64_t after_seq = 0;
    if (!after_id.empty()) {
      auto it = patients_.find(after_id);
      if (it == patients_.end()) {
        // Silently restarting from the beginning would make clients loop.
        return Status::InvalidArgument("unknown patient id as paging cursor");
      }
      after_seq = it->second.seq;
    }
    for (auto it = by_seq_.upper_bound(after_seq); it != by_seq_.end() && ids.size() < limit;
         ++it) {
      if (!patients_.at(it->second).record.erased_at_ms.has_value()) {
        ids.push_back(it->second);
      }
    }
    return ids;
  }

  Status ErasePatient(std::string_view patient_id, int64_t erased_at_ms,
                      AuditEntries audit) override {
    MV_RETURN_IF_ERROR(CheckAuditHook(audit));
    std::lock_guard<std::mutex> lock(mu_);
    auto it = patients_.find(patient_id);
    if (it == patients_.end()) {
      return Status::NotFound("patient not found");
    }
    MV_RETURN_IF_ERROR(AuditLocked(audit));
    PatientRecord& p = it->second.record;
    // Overwrite before releasing, so the key bytes do not linger in freed
    // heap memory any longer than needed.
    for (Bytes* b :
         {&p.wrapped_root_key, &p.sealed_demographics, &p.name_index, &p.identifier_index}) {
      std::fill(b->begin(), b->end(), uint8_t{0});
      Bytes().swap(*b);
    }
    if (!p.erased_at_ms.has_value()) {
      p.erased_at_ms = erased_at_ms;  // the first erasure time is kept
    }
    if (auto seg = segments_.find(patient_id); seg != segments_.end()) {
      for (auto& [path, versions] : seg->second) {
        for (SegmentVersionRecord& v : versions) {
          std::fill(v.inline_content.begin(), v.inline_content.end(), uint8_t{0});
          Bytes().swap(v.inline_content);
        }
      }
    }
    return Status::Ok();
  }

  Status InsertSegmentVersion(const SegmentVersionRecord& record, AuditEntries audit) override {
    return InsertBatchImpl(nullptr, std::span<const SegmentVersionRecord>(&record, 1), audit,
                           /*single=*/true);
  }

  Status InsertBatch(const PatientRecord* new_patient,
                     std::span<const SegmentVersionRecord> records, AuditEntries audit) override {
    return InsertBatchImpl(new_patient, records, audit);
  }

  Result<uint64_t> LatestVersion(std::string_view patient_id, std::string_view path) override {
    std::lock_guard<std::mutex> lock(mu_);
    const std::vector<SegmentVersionRecord>* versions = FindVersions(patient_id, path);
    return versions == nullptr ? uint64_t{0} : versions->back().version;
  }

  Result<SegmentVersionRecord> GetSegmentVersion(std::string_view patient_id, std::string_view path,
                                                 uint64_t version) override {
    MV_RETURN_IF_ERROR(CheckInt64(version, "version"));
    std::lock_guard<std::mutex> lock(mu_);
    const std::vector<SegmentVersionRecord>* versions = FindVersions(patient_id, path);
    if (versions == nullptr || version > versions->size()) {
      return Status::NotFound("segment version not found");
    }
    // Versions are dense: version v sits at index v - 1.
    return version == 0 ? versions->back() : (*versions)[version - 1];
  }

  Result<std::vector<SegmentVersionRecord>> ListSegmentVersions(std::string_view patient_id,
                                                                std::string_view path) override {
    std::lock_guard<std::mutex> lock(mu_);
    const std::vector<SegmentVersionRecord>* versions = FindVersions(patient_id, path);
    if (versions == nullptr) {
      return std::vector<SegmentVersionRecord>{};
    }
    std::vector<SegmentVersionRecord> out;
    out.reserve(versions->size());
    for (const SegmentVersionRecord& v : *versions) {
      out.push_back(WithoutContent(v));
    }
    return out;
  }

  Result<std::vector<SegmentSummary>> ListSegments(std::string_view patient_id,
                                                   std::string_view prefix) override {
    std::vector<SegmentSummary> out;
    std::lock_guard<std::mutex> lock(mu_);
    auto p = segments_.find(patient_id);
    if (p == segments_.end()) {
      return out;
    }
    const std::string subtree = std::string(prefix) + "/";
    for (const auto& [path, versions] : p->second) {
      if (!prefix.empty() && path != prefix && !path.starts_with(subtree)) {
        continue;
      }
      const SegmentVersionRecord& latest = versions.back();
      SegmentSummary sum;
      sum.path = path;
      sum.category = latest.category;
      sum.sensitivity = latest.sensitivity;
      sum.kind = latest.kind;
      sum.media_type = latest.media_type;
      sum.latest_version = latest.version;
      sum.version_count = versions.size();
      sum.updated_at_ms = latest.created_at_ms;
      out.push_back(std::move(sum));
    }
    return out;
  }

  Result<std::vector<std::string>> ListObjectKeys(std::string_view patient_id) override {
    std::vector<std::string> out;
    std::lock_guard<std::mutex> lock(mu_);
    auto p = segments_.find(patient_id);
    if (p != segments_.end()) {
      for (const auto& [path, versions] : p->second) {
        for (const SegmentVersionRecord& v : versions) {
          if (v.storage == ContentStorage::kObject) {
            out.push_back(v.object_key);
          }
        }
      }
    }
    return out;
  }

  Status ForEachSegmentVersion(
      const std::function<Status(const SegmentVersionRecord&)>& fn) override {
    // A snapshot, so that `fn` may call back into the store.
    std::vector<SegmentVersionRecord> all;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [pid, paths] : segments_) {
        for (const auto& [path, versions] : paths) {
          for (const SegmentVersionRecord& v : versions) {
            all.push_back(WithoutContent(v));
          }
        }
      }
    }
    for (const SegmentVersionRecord& rec : all) {
      MV_RETURN_IF_ERROR(fn(rec));
    }
    return Status::Ok();
  }

  Result<std::vector<NodeKeyVersion>> ListNodeKeyVersions(std::string_view patient_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<NodeKeyVersion> out;
    auto it = node_versions_.find(patient_id);
    if (it != node_versions_.end()) {
      for (const auto& [path, version] : it->second) {
        out.push_back({path, version});
      }
    }
    return out;
  }

  Result<std::optional<Bytes>> GetObjectKeySlots(std::string_view object_key) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = key_slots_.find(object_key);
    if (it == key_slots_.end()) {
      return std::optional<Bytes>();
    }
    return std::optional<Bytes>(it->second);
  }

  Status RotateNodeKey(std::string_view patient_id, std::string_view path, uint32_t new_version,
                       int64_t rotated_at_ms, std::span<const ObjectKeySlots> slots,
                       AuditEntries audit) override {
    (void)rotated_at_ms;
    MV_RETURN_IF_ERROR(CheckAuditHook(audit));
    std::lock_guard<std::mutex> lock(mu_);
    auto p = patients_.find(patient_id);
    if (p == patients_.end() || p->second.record.erased_at_ms.has_value()) {
      return Status::NotFound("patient not found");
    }
    uint32_t current = 1;
    auto nodes = node_versions_.find(patient_id);
    if (nodes != node_versions_.end()) {
      auto v = nodes->second.find(path);
      if (v != nodes->second.end()) {
        current = v->second;
      }
    }
    if (new_version != current + 1) {
      return Status::FailedPrecondition("the node's key version is not the one expected");
    }
    // Every object must be one of this patient's versions: checked before
    // anything changes (all or nothing).
    auto segs = segments_.find(patient_id);
    for (const ObjectKeySlots& s : slots) {
      bool found = false;
      if (segs != segments_.end()) {
        for (const auto& [seg_path, versions] : segs->second) {
          for (const SegmentVersionRecord& r : versions) {
            found = found || r.object_key == s.object_key;
          }
        }
      }
      if (!found) {
        return Status::NotFound("object is not one of the patient's segment versions");
      }
    }
    MV_RETURN_IF_ERROR(AuditLocked(audit));
    node_versions_[std::string(patient_id)][std::string(path)] = new_version;
    for (const ObjectKeySlots& s : slots) {
      key_slots_[s.object_key] = s.slots;
    }
    return Status::Ok();
  }

  // There is no schema and so no migration.
  Result<int> SchemaVersion() override { return 0; }

  Result<int64_t> CountPatients() override {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t n = 0;
    for (const auto& [id, p] : patients_) {
      n += p.record.erased_at_ms.has_value() ? 0 : 1;
    }
    return n;
  }

  Result<int64_t> CountSegmentVersions() override {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int64_t>(object_keys_.size());
  }

 private:
  // A row as the listings return it: where the content lives, not the content.
  static SegmentVersionRecord WithoutContent(const SegmentVersionRecord& v) {
    SegmentVersionRecord out = v;
    out.inline_content.clear();
    return out;
  }

  using Paths = std::map<std::string, std::vector<SegmentVersionRecord>, std::less<>>;

  Status CheckAuditHook(AuditEntries audit) const {
    if (!audit.empty() && !options_.audit_hook) {
      return Status::FailedPrecondition("audit entries given but no ledger is attached");
    }
    return Status::Ok();
  }

  // REQUIRES: mu_ held.
  Status AuditLocked(AuditEntries audit) {
    return audit.empty() ? Status::Ok() : options_.audit_hook(audit);
  }

  // REQUIRES: mu_ held. Null when the path has no version.
  const std::vector<SegmentVersionRecord>* FindVersions(std::string_view patient_id,
                                                        std::string_view path) const {
    auto p = segments_.find(patient_id);
    if (p == segments_.end()) {
      return nullptr;
    }
    auto v = p->second.find(path);
    return v == p->second.end() ? nullptr : &v->second;
  }

  // `single`: one InsertSegmentVersion, whose errors carry no path context.
  Status InsertBatchImpl(const PatientRecord* new_patient,
                         std::span<const SegmentVersionRecord> records, AuditEntries audit,
                         bool single = false) {
    if (new_patient != nullptr && new_patient->patient_id.empty()) {
      return Status::InvalidArgument("patient id must not be empty");
    }
    for (const SegmentVersionRecord& rec : records) {
      MV_RETURN_IF_ERROR(ValidateSegmentVersionRecord(rec));
    }
    MV_RETURN_IF_ERROR(CheckAuditHook(audit));
    std::lock_guard<std::mutex> lock(mu_);
    if (new_patient != nullptr && patients_.contains(new_patient->patient_id)) {
      return Status::AlreadyExists("patient already exists");
    }
    // Latest versions and object keys as they would be after the rows staged
    // so far (a batch may hold several versions of one path).
    std::map<std::pair<std::string, std::string>, uint64_t> staged_latest;
    std::set<std::string> staged_keys;
    for (const SegmentVersionRecord& rec : records) {
      Status st = CheckRowLocked(rec, new_patient, staged_latest, staged_keys);
      if (!st.ok()) {
        return single ? st : st.WithContext(rec.path);
      }
      staged_latest[{rec.patient_id, rec.path}] = rec.version;
      staged_keys.insert(rec.object_key);
    }
    MV_RETURN_IF_ERROR(AuditLocked(audit));
    if (new_patient != nullptr) {
      by_seq_.emplace(++last_seq_, new_patient->patient_id);
      patients_.emplace(new_patient->patient_id, StoredPatient{*new_patient, last_seq_});
    }
    for (const SegmentVersionRecord& rec : records) {
      segments_[rec.patient_id][rec.path].push_back(rec);
      object_keys_.insert(rec.object_key);
    }
    return Status::Ok();
  }

  // REQUIRES: mu_ held. InsertSegmentVersion's rules for one row.
  Status CheckRowLocked(const SegmentVersionRecord& rec, const PatientRecord* new_patient,
                        const std::map<std::pair<std::string, std::string>, uint64_t>& staged,
                        const std::set<std::string>& staged_keys) const {
    const bool is_new = new_patient != nullptr && new_patient->patient_id == rec.patient_id;
    if (is_new) {
      if (new_patient->erased_at_ms.has_value()) {
        return Status::NotFound("patient not found");
      }
    } else {
      auto p = patients_.find(rec.patient_id);
      if (p == patients_.end() || p->second.record.erased_at_ms.has_value()) {
        return Status::NotFound("patient not found");
      }
    }
    uint64_t latest = 0;
    if (auto s = staged.find({rec.patient_id, rec.path}); s != staged.end()) {
      latest = s->second;
    } else if (const auto* versions = FindVersions(rec.patient_id, rec.path)) {
      latest = versions->back().version;
    }
    MV_RETURN_IF_ERROR(CheckNextVersion(rec.version, latest));
    if (object_keys_.contains(rec.object_key) || staged_keys.contains(rec.object_key)) {
      return Status::AlreadyExists("object key already used by another segment version");
    }
    return Status::Ok();
  }

  Result<std::vector<std::string>> FindByIndex(ByteView index, Bytes PatientRecord::*field) {
    std::vector<std::string> ids;
    if (index.empty()) {
      return ids;  // empty means "no index": it matches nothing
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [seq, id] : by_seq_) {
      const PatientRecord& p = patients_.at(id).record;
      const Bytes& value = p.*field;
      if (!p.erased_at_ms.has_value() && value.size() == index.size() &&
          std::equal(value.begin(), value.end(), index.begin())) {
        ids.push_back(id);
      }
    }
    return ids;
  }

  const MemoryMetadataOptions options_;
  std::mutex mu_;
  std::map<std::string, StoredPatient, std::less<>> patients_;  // guarded by mu_
  std::map<int64_t, std::string> by_seq_;                       // guarded by mu_
  int64_t last_seq_ = 0;                                        // guarded by mu_
  std::map<std::string, Paths, std::less<>> segments_;          // guarded by mu_
  std::set<std::string> object_keys_;                           // guarded by mu_
  // Rotated nodes per patient (path → version) and re-wrapped key slots.
  std::map<std::string, std::map<std::string, uint32_t, std::less<>>, std::less<>>
      node_versions_;                                    // guarded by mu_
  std::map<std::string, Bytes, std::less<>> key_slots_;  // mu_
};

}  // namespace

std::unique_ptr<MetadataStore> NewMemoryMetadataStore(MemoryMetadataOptions options) {
  return std::make_unique<MemoryMetadataStore>(std::move(options));
}

}  // namespace medvault::store
