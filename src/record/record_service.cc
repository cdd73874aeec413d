#include <sodium.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>

#include "common/ids.h"
#include "common/log.h"
#include "record/measurements.h"
#include "record/record.h"

namespace medvault::record {

namespace {

using crypto::KeyProvider;
using store::MetadataStore;
using store::ObjectStore;

std::string NormaliseName(std::string_view s) {
  // Lower-case ASCII letters and trim spaces; non-ASCII bytes are kept as is
  // (exact match on the UTF-8 form).
  size_t b = 0, e = s.size();
  while (b < e && s[b] == ' ') {
    ++b;
  }
  while (e > b && s[e - 1] == ' ') {
    --e;
  }
  std::string out(s.substr(b, e - b));
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

Bytes RootKeyAad(std::string_view patient_id) {
  Bytes aad = ToBytes("medvault/v1/patient-root-key");
  PutLengthPrefixed(aad, AsBytes(patient_id));
  return aad;
}

Bytes DemographicsAad(std::string_view patient_id) {
  Bytes aad = ToBytes("medvault/v1/demographics");
  PutLengthPrefixed(aad, AsBytes(patient_id));
  return aad;
}

nlohmann::json DemographicsToJson(const Demographics& d) {
  return nlohmann::json{{"given_name", d.given_name},
                        {"family_name", d.family_name},
                        {"birth_date", d.birth_date},
                        {"sex", d.sex},
                        {"identifier", d.identifier}};
}

Result<Demographics> DemographicsFromJson(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::DataLoss("sealed demographics are not valid JSON");
  }
  Demographics d;
  try {
    d.given_name = j.at("given_name").get<std::string>();
    d.family_name = j.at("family_name").get<std::string>();
    d.birth_date = j.at("birth_date").get<std::string>();
    d.sex = j.at("sex").get<std::string>();
    d.identifier = j.at("identifier").get<std::string>();
  } catch (const nlohmann::json::exception&) {
    return Status::DataLoss("sealed demographics miss a field");
  }
  return d;
}

SegmentVersionInfo ToInfo(const store::SegmentVersionRecord& r) {
  SegmentVersionInfo i;
  i.patient_id = r.patient_id;
  i.path = r.path;
  i.version = r.version;
  i.category = r.category;
  i.sensitivity = r.sensitivity;
  i.kind = r.kind;
  i.media_type = r.media_type;
  i.size = r.plaintext_size;
  i.content_sha256_hex = ToHex(r.content_sha256);
  i.author = r.author;
  i.created_at_ms = r.created_at_ms;
  return i;
}

// Serialises writers per (patient, path) so that a version number, which the
// ciphertext binds, is reserved before encryption. Entries live only while held.
class PathLocks {
 public:
  void Lock(const std::string& key) {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      auto [it, inserted] = held_.try_emplace(key, 0);
      if (inserted) {
        return;
      }
      ++it->second;  // waiter count keeps the entry alive
      cv_.wait(lock);
      auto again = held_.find(key);
      if (again != held_.end()) {
        --again->second;
      }
      if (again == held_.end()) {
        held_.emplace(key, 0);
        return;
      }
    }
  }
  void Unlock(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    held_.erase(key);
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, int> held_;
};

class PathLockGuard {
 public:
  PathLockGuard(PathLocks* locks, std::string key) : locks_(locks), key_(std::move(key)) {
    locks_->Lock(key_);
  }
  ~PathLockGuard() {
    if (locks_ != nullptr) {
      locks_->Unlock(key_);
    }
  }
  PathLockGuard(const PathLockGuard&) = delete;
  PathLockGuard& operator=(const PathLockGuard&) = delete;

 private:
  PathLocks* locks_;
  std::string key_;
};

// Keeps writes and key rotations of one patient apart in this process: a
// version sealed under a node key that a rotation replaces while the write is
// in flight would be left wrapped under the old key. Writers share the gate;
// a rotation waits for them to leave and holds it alone, and once a rotation
// waits, new writers wait behind it (so a busy record cannot starve it).
// Thread-agnostic (an attachment may be committed on another thread than the
// one that began it), hence not a std::shared_mutex.
class RotationGate {
 public:
  class WriteGuard {
   public:
    WriteGuard(RotationGate* gate, std::string patient_id)
        : gate_(gate), patient_id_(std::move(patient_id)) {
      gate_->EnterWrite(patient_id_);
    }
    ~WriteGuard() { gate_->ExitWrite(patient_id_); }
    WriteGuard(const WriteGuard&) = delete;
    WriteGuard& operator=(const WriteGuard&) = delete;

   private:
    RotationGate* gate_;
    std::string patient_id_;
  };
  class RotationGuard {
   public:
    RotationGuard(RotationGate* gate, std::string patient_id)
        : gate_(gate), patient_id_(std::move(patient_id)) {
      gate_->EnterRotation(patient_id_);
    }
    ~RotationGuard() { gate_->ExitRotation(patient_id_); }
    RotationGuard(const RotationGuard&) = delete;
    RotationGuard& operator=(const RotationGuard&) = delete;

   private:
    RotationGate* gate_;
    std::string patient_id_;
  };

 private:
  struct Entry {
    int writers = 0;
    int rotations_waiting = 0;
    bool rotating = false;
  };
  void EnterWrite(const std::string& id) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] {
      const Entry& e = entries_[id];
      return !e.rotating && e.rotations_waiting == 0;
    });
    ++entries_[id].writers;
  }
  void ExitWrite(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    Entry& e = entries_[id];
    --e.writers;
    Release(id, e);
  }
  void EnterRotation(const std::string& id) {
    std::unique_lock<std::mutex> lock(mu_);
    ++entries_[id].rotations_waiting;
    cv_.wait(lock, [&] {
      const Entry& e = entries_[id];
      return !e.rotating && e.writers == 0;
    });
    Entry& e = entries_[id];
    --e.rotations_waiting;
    e.rotating = true;
  }
  void ExitRotation(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    Entry& e = entries_[id];
    e.rotating = false;
    Release(id, e);
  }
  // REQUIRES: mu_ held. Entries live only while in use.
  void Release(const std::string& id, const Entry& e) {
    if (e.writers == 0 && e.rotations_waiting == 0 && !e.rotating) {
      entries_.erase(id);
    }
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Entry> entries_;
};

// The key versions of the nodes along one path, and the key version of the
// path's node key that objects record in their key slots: 1 + the number of
// rotations that changed that key (a rotation of any node on the path adds
// one), so it grows by one with every rotation that concerns the object.
struct PathKeyVersions {
  std::vector<uint32_t> versions;  // [i]: node of the first i + 1 components
  uint32_t key_version = 1;
};

PathKeyVersions VersionsOnPath(const std::vector<store::NodeKeyVersion>& rotated,
                               std::string_view path) {
  PathKeyVersions out;
  if (rotated.empty()) {
    return out;
  }
  size_t pos = 0;
  while (true) {
    const size_t slash = path.find('/', pos);
    const std::string_view prefix = path.substr(0, slash);
    uint32_t v = 1;
    for (const store::NodeKeyVersion& n : rotated) {
      if (n.path == prefix) {
        v = n.version;
        break;
      }
    }
    out.versions.push_back(v);
    out.key_version += v - 1;
    if (slash == std::string_view::npos) {
      break;
    }
    pos = slash + 1;
  }
  while (!out.versions.empty() && out.versions.back() == 1) {
    out.versions.pop_back();
  }
  return out;
}

// Reads an object's envelope header (its size is in its first bytes).
Result<Bytes> ReadEnvelopeHeader(store::ObjectReader& object) {
  auto read_fully = [&object](std::span<uint8_t> into) -> Status {
    size_t got = 0;
    while (got < into.size()) {
      MV_ASSIGN_OR_RETURN(size_t n, object.Read(into.subspan(got)));
      if (n == 0) {
        return Status::DataLoss("stored object is shorter than its header");
      }
      got += n;
    }
    return Status::Ok();
  };
  Bytes header(crypto::kEnvelopeHeaderPrefixSize);
  MV_RETURN_IF_ERROR(read_fully(header));
  MV_ASSIGN_OR_RETURN(size_t size, crypto::EnvelopeHeaderSize(header));
  const size_t prefix = header.size();
  header.resize(size);
  MV_RETURN_IF_ERROR(read_fully(std::span<uint8_t>(header).subspan(prefix)));
  return header;
}

Status ValidateAuthor(std::string_view author) {
  if (author.empty() || author.size() > 128 || !IsValidUtf8(author)) {
    return Status::InvalidArgument("author must be 1..128 characters of UTF-8");
  }
  return Status::Ok();
}

class RecordServiceImpl;

// Writes ciphertext to the object store as plaintext arrives.
class AttachmentWriter final : public SegmentWriter {
 public:
  AttachmentWriter(RecordServiceImpl* service, std::unique_ptr<RotationGate::WriteGuard> gate,
                   std::unique_ptr<PathLockGuard> lock, store::SegmentVersionRecord record,
                   std::unique_ptr<crypto::EnvelopeSealer> sealer,
                   std::unique_ptr<store::ObjectWriter> object, uint64_t max_bytes)
      : service_(service),
        gate_(std::move(gate)),
        lock_(std::move(lock)),
        record_(std::move(record)),
        sealer_(std::move(sealer)),
        object_(std::move(object)),
        max_bytes_(max_bytes) {}

  Status Append(ByteView data) override {
    if (!status_.ok()) {
      return status_;
    }
    if (committed_) {
      return Status::FailedPrecondition("attachment already committed");
    }
    if (data.size() > max_bytes_ - record_.plaintext_size) {
      status_ = Status::ResourceExhausted("attachment exceeds the maximum size of " +
                                          std::to_string(max_bytes_) + " bytes");
      return status_;
    }
    record_.plaintext_size += data.size();
    buffer_.clear();
    status_ = sealer_->Update(data, buffer_);
    if (status_.ok() && !buffer_.empty()) {
      status_ = object_->Append(buffer_);
    }
    return status_;
  }

  Result<SegmentVersionInfo> Commit() override;

 private:
  RecordServiceImpl* service_;
  std::unique_ptr<RotationGate::WriteGuard> gate_;  // released after lock_
  std::unique_ptr<PathLockGuard> lock_;
  store::SegmentVersionRecord record_;
  std::unique_ptr<crypto::EnvelopeSealer> sealer_;
  std::unique_ptr<store::ObjectWriter> object_;
  uint64_t max_bytes_;
  Bytes buffer_;
  Status status_;
  bool committed_ = false;
};

class ObjectSegmentReader final : public SegmentReader {
 public:
  ObjectSegmentReader(SegmentVersionInfo info, std::unique_ptr<store::ObjectReader> object,
                      std::unique_ptr<crypto::EnvelopeOpener> opener)
      : info_(std::move(info)), object_(std::move(object)), opener_(std::move(opener)) {}

  const SegmentVersionInfo& info() const override { return info_; }

  Status ReadSome(size_t max, Bytes& out) override {
    if (done_) {
      return Status::Ok();
    }
    // One buffer per reader, no larger than the object: a small version is
    // read in one call without allocating (and zeroing) a whole chunk.
    if (buf_.empty()) {
      const uint64_t object_size = object_->size();
      buf_.resize(static_cast<size_t>(
          std::clamp<uint64_t>(object_size + 1, 64, std::max<size_t>(max, 4096))));
    }
    const size_t before = out.size();
    while (out.size() == before && !done_) {
      auto n = object_->Read(buf_);
      if (!n.ok()) {
        return n.status();
      }
      if (*n == 0) {
        MV_RETURN_IF_ERROR(opener_->Finish(out));
        done_ = true;
        if (out.size() - before + delivered_ != info_.size) {
          return Status::DataLoss("object plaintext size differs from its metadata");
        }
        break;
      }
      MV_RETURN_IF_ERROR(opener_->Update(ByteView(buf_.data(), *n), out));
    }
    delivered_ += out.size() - before;
    return Status::Ok();
  }

 private:
  SegmentVersionInfo info_;
  std::unique_ptr<store::ObjectReader> object_;
  std::unique_ptr<crypto::EnvelopeOpener> opener_;
  uint64_t delivered_ = 0;
  bool done_ = false;
  Bytes buf_;  // ciphertext read from the object, sized on first use
};

// Only RecordServiceImpl creates these, and only the one that created a
// value accepts it (RootOf).
class PatientKeysImpl final : public PatientKeys {
 public:
  PatientKeysImpl(const void* owner, std::string patient_id, SecretBytes root)
      : owner_(owner), patient_id_(std::move(patient_id)), root_(std::move(root)) {}
  const std::string& patient_id() const override { return patient_id_; }
  const void* owner() const { return owner_; }
  const SecretBytes& root() const { return root_; }

 private:
  const void* owner_;
  std::string patient_id_;
  SecretBytes root_;
};

class RecordServiceImpl final : public RecordService {
 public:
  RecordServiceImpl(KeyProvider* keys, MetadataStore* metadata, ObjectStore* objects,
                    RecordServiceOptions options, SecretBytes blind_index_key)
      : keys_(keys),
        metadata_(metadata),
        objects_(objects),
        options_(options),
        blind_index_key_(std::move(blind_index_key)) {}

  Result<PatientInfo> CreatePatient(const Demographics& demographics,
                                    std::string_view author) override {
    MV_RETURN_IF_ERROR(ValidateDemographics(demographics));
    MV_RETURN_IF_ERROR(ValidateAuthor(author));
    SecretBytes root;
    MV_ASSIGN_OR_RETURN(store::PatientRecord rec, NewPatientRecord(demographics, root));
    std::vector<Bytes> audit;
    MV_RETURN_IF_ERROR(
        Audit(audit, Event("key.patient-root-created", rec.patient_id, author, rec.created_at_ms)));
    MV_RETURN_IF_ERROR(metadata_->CreatePatient(rec, audit));
    PatientInfo info;
    info.patient_id = rec.patient_id;
    info.created_at_ms = rec.created_at_ms;
    info.demographics = demographics;
    return info;
  }

  // A new patient's row: a fresh root key (returned in `root`) wrapped by
  // the platform key, sealed demographics and blind indexes.
  Result<store::PatientRecord> NewPatientRecord(const Demographics& demographics,
                                                SecretBytes& root) {
    store::PatientRecord rec;
    rec.patient_id = NewRandomId();
    root = crypto::RandomKey();
    MV_ASSIGN_OR_RETURN(rec.wrapped_root_key, keys_->WrapKey(root, RootKeyAad(rec.patient_id)));
    MV_ASSIGN_OR_RETURN(SecretBytes demo_key, crypto::DerivePurposeKey(root, "demographics"));
    const std::string demo_json = DemographicsToJson(demographics).dump();
    MV_ASSIGN_OR_RETURN(rec.sealed_demographics, crypto::AeadSeal(demo_key, AsBytes(demo_json),
                                                                  DemographicsAad(rec.patient_id)));
    rec.name_index = crypto::BlindIndex(blind_index_key_, "family-name",
                                        NormaliseName(demographics.family_name));
    if (!demographics.identifier.empty()) {
      rec.identifier_index =
          crypto::BlindIndex(blind_index_key_, "identifier", demographics.identifier);
    }
    rec.created_at_ms = NowUnixMillis();
    return rec;
  }

  Result<PatientInfo> GetPatient(std::string_view patient_id) override {
    if (!IsValidRandomId(patient_id)) {
      return Status::InvalidArgument("patient id must be 32 lower-case hex characters");
    }
    MV_ASSIGN_OR_RETURN(store::PatientRecord rec, metadata_->GetPatient(patient_id));
    return DescribePatient(rec, nullptr);
  }

  Result<PatientInfo> GetPatientWith(const PatientKeys& keys) override {
    MV_ASSIGN_OR_RETURN(const SecretBytes* root, RootOf(keys));
    MV_ASSIGN_OR_RETURN(store::PatientRecord rec, metadata_->GetPatient(keys.patient_id()));
    return DescribePatient(rec, root);
  }

  // The patient's info with demographics opened with `root`, or with the
  // root unwrapped here when null.
  Result<PatientInfo> DescribePatient(const store::PatientRecord& rec, const SecretBytes* root) {
    PatientInfo info;
    info.patient_id = rec.patient_id;
    info.created_at_ms = rec.created_at_ms;
    if (rec.erased_at_ms.has_value()) {
      info.erased = true;
      info.erased_at_ms = rec.erased_at_ms;
      return info;
    }
    SecretBytes unwrapped;
    if (root == nullptr) {
      MV_ASSIGN_OR_RETURN(unwrapped, UnwrapRoot(rec));
      root = &unwrapped;
    }
    MV_ASSIGN_OR_RETURN(SecretBytes demo_key, crypto::DerivePurposeKey(*root, "demographics"));
    MV_ASSIGN_OR_RETURN(Bytes demo_json, crypto::AeadOpen(demo_key, rec.sealed_demographics,
                                                          DemographicsAad(rec.patient_id)));
    MV_ASSIGN_OR_RETURN(info.demographics, DemographicsFromJson(AsString(demo_json)));
    sodium_memzero_bytes(demo_json);
    return info;
  }

  Result<std::vector<PatientInfo>> FindPatients(std::string_view family_name,
                                                std::string_view identifier) override {
    if (family_name.empty() && identifier.empty()) {
      return Status::InvalidArgument("give family_name or identifier to search");
    }
    std::vector<std::string> ids;
    if (!family_name.empty()) {
      MV_ASSIGN_OR_RETURN(ids, metadata_->FindPatientsByNameIndex(crypto::BlindIndex(
                                   blind_index_key_, "family-name", NormaliseName(family_name))));
    }
    if (!identifier.empty()) {
      MV_ASSIGN_OR_RETURN(std::vector<std::string> by_id,
                          metadata_->FindPatientsByIdentifierIndex(
                              crypto::BlindIndex(blind_index_key_, "identifier", identifier)));
      if (family_name.empty()) {
        ids = std::move(by_id);
      } else {
        std::vector<std::string> both;
        for (const std::string& id : ids) {
          if (std::find(by_id.begin(), by_id.end(), id) != by_id.end()) {
            both.push_back(id);
          }
        }
        ids = std::move(both);
      }
    }
    std::vector<PatientInfo> out;
    for (const std::string& id : ids) {
      MV_ASSIGN_OR_RETURN(PatientInfo p, GetPatient(id));
      if (!p.erased) {
        out.push_back(std::move(p));
      }
    }
    return out;
  }

  Result<std::vector<std::string>> ListPatientIds(std::string_view after_id,
                                                  size_t limit) override {
    return metadata_->ListPatients(after_id, std::min<size_t>(limit, 1000));
  }

  Status ErasePatient(std::string_view patient_id, std::string_view author) override {
    MV_ASSIGN_OR_RETURN(store::PatientRecord rec, LoadLivePatient(patient_id));
    MV_ASSIGN_OR_RETURN(std::vector<std::string> keys, metadata_->ListObjectKeys(patient_id));
    const int64_t now = NowUnixMillis();
    std::vector<Bytes> audit;
    MV_RETURN_IF_ERROR(Audit(audit, Event("key.patient-root-destroyed", patient_id, author, now)));
    MV_RETURN_IF_ERROR(metadata_->ErasePatient(patient_id, now, audit));
    // The data is unreadable from here on. Deleting the ciphertext only frees
    // space; a failure is logged, not returned.
    size_t failed = 0;
    for (const std::string& key : keys) {
      if (!objects_->Delete(key).ok()) {
        ++failed;
      }
    }
    Log(LogLevel::kInfo, "patient.erased",
        {{"objects", static_cast<long>(keys.size())},
         {"delete_failures", static_cast<long>(failed)}});
    return Status::Ok();
  }

  Result<SegmentVersionInfo> WriteSegment(std::string_view patient_id, std::string_view path,
                                          const SegmentWrite& write,
                                          std::string_view author) override {
    MV_RETURN_IF_ERROR(ValidateSegmentPath(path));
    MV_RETURN_IF_ERROR(ValidateAuthor(author));
    MV_ASSIGN_OR_RETURN(std::string media_type,
                        CheckContent(path, write, options_.max_inline_bytes));
    const TopLevelSegment& top = TopLevelFor(path);
    const int level = write.sensitivity.value_or(top.default_sensitivity);
    if (level < 0 || level > kMaxSensitivity) {
      return Status::InvalidArgument("sensitivity must be between 0 and 4");
    }
    MV_ASSIGN_OR_RETURN(store::PatientRecord patient, LoadLivePatient(patient_id));
    RotationGate::WriteGuard gate(&gate_, std::string(patient_id));
    PathLockGuard lock(&path_locks_, std::string(patient_id) + "\n" + std::string(path));
    MV_ASSIGN_OR_RETURN(uint64_t latest, metadata_->LatestVersion(patient_id, path));
    MV_ASSIGN_OR_RETURN(SecretBytes root, UnwrapRoot(patient));
    MV_ASSIGN_OR_RETURN(auto rotated, metadata_->ListNodeKeyVersions(patient_id));
    BatchSegmentWrite w;
    w.path = std::string(path);
    w.write = write;
    MV_ASSIGN_OR_RETURN(store::SegmentVersionRecord record,
                        SealWholeVersion(patient_id, root, rotated, w, media_type, latest + 1,
                                         author, NowUnixMillis()));
    std::vector<Bytes> audit;
    if (options_.audit_riders && options_.audit) {
      audit = options_.audit_riders();
    }
    MV_RETURN_IF_ERROR(Audit(audit, WriteEvent(record)));
    Status st = metadata_->InsertSegmentVersion(record, audit);
    if (!st.ok()) {
      MV_RETURN_IF_ERROR(ResolveFailedInsert(record, st));
    }
    return ToInfo(record);
  }

  RecordEvent WriteEvent(const store::SegmentVersionRecord& record) const {
    RecordEvent event =
        Event("segment.write", record.patient_id, record.author, record.created_at_ms);
    event.path = record.path;
    event.version = record.version;
    event.content_sha256_hex = ToHex(record.content_sha256);
    return event;
  }

  // The insert of `record` failed with `failure`. A failure to hear back is
  // not proof that nothing committed (a reply lost between the database and
  // us, a commit whose acknowledgement failed), so look before cleaning up:
  //  - the row is there and names this version's object and hash: the write
  //    happened, and is reported as done (OK), object kept;
  //  - the store says the version is absent or belongs to another write: the
  //    object is unreferenced and removed; `failure` is returned;
  //  - the store cannot tell: the object is left alone (the scrubber
  //    reclaims unreferenced objects once they are old); `failure` returned.
  // Inline versions have no object: only the first case changes anything.
  Status ResolveFailedInsert(const store::SegmentVersionRecord& record, const Status& failure) {
    Result<store::SegmentVersionRecord> found =
        metadata_->GetSegmentVersion(record.patient_id, record.path, record.version);
    if (found.ok() && found->object_key == record.object_key &&
        found->content_sha256 == record.content_sha256) {
      Log(LogLevel::kWarn, "segment.write.resolved",
          {{"status", std::string(StatusCodeName(failure.code()))}});
      return Status::Ok();
    }
    const bool absent = found.ok() || found.status().code() == StatusCode::kNotFound;
    if (absent && record.storage == store::ContentStorage::kObject) {
      (void)objects_->Delete(record.object_key);
    }
    return failure;
  }

  // The media type a version of `write` is stored with, or why it is refused.
  Result<std::string> CheckContent(std::string_view path, const SegmentWrite& write,
                                   uint64_t max_bytes) {
    std::string media_type;
    if (write.content.size() > max_bytes) {
      return Status::ResourceExhausted("segment content exceeds " + std::to_string(max_bytes) +
                                       " bytes");
    }
    switch (write.kind) {
      case ContentKind::kJson: {
        auto j = nlohmann::json::parse(write.content.begin(), write.content.end(), nullptr, false);
        if (j.is_discarded()) {
          return Status::InvalidArgument("segment content is not valid JSON");
        }
        MV_RETURN_IF_ERROR(ValidateJsonSegment(path, j));
        media_type = vocab::FixedMediaType(write.kind);
        break;
      }
      case ContentKind::kText:
        if (!IsValidUtf8(AsString(write.content))) {
          return Status::InvalidArgument("text segment is not valid UTF-8");
        }
        media_type = vocab::FixedMediaType(write.kind);
        break;
      case ContentKind::kBinary:
        MV_RETURN_IF_ERROR(ValidateMediaType(write.media_type));
        media_type = write.media_type;
        break;
    }
    return media_type;
  }

  Result<BatchResult> WriteBatch(const RecordBatch& batch, std::string_view author) override {
    MV_RETURN_IF_ERROR(ValidateAuthor(author));
    if (batch.patient_id.empty() == !batch.new_patient.has_value()) {
      return Status::InvalidArgument("a batch names an existing patient or a new one, not both");
    }
    if (batch.segments.size() > 10000) {
      return Status::ResourceExhausted("a batch holds at most 10000 segments");
    }
    std::vector<std::string> media_types;
    std::set<std::string_view> paths;
    for (const BatchSegmentWrite& w : batch.segments) {
      MV_RETURN_IF_ERROR(ValidateSegmentPath(w.path).WithContext(w.path));
      if (!paths.insert(w.path).second) {
        return Status::InvalidArgument(w.path + ": the path appears twice in the batch");
      }
      const uint64_t limit = w.write.kind == ContentKind::kBinary ? options_.max_attachment_bytes
                                                                  : options_.max_inline_bytes;
      Result<std::string> media_type = CheckContent(w.path, w.write, limit);
      if (!media_type.ok()) {
        return media_type.status().WithContext(w.path);
      }
      const int level = w.write.sensitivity.value_or(TopLevelFor(w.path).default_sensitivity);
      if (level < 0 || level > kMaxSensitivity) {
        return Status::InvalidArgument(w.path + ": sensitivity must be between 0 and 4");
      }
      media_types.push_back(std::move(*media_type));
    }

    BatchResult result;
    std::optional<store::PatientRecord> new_patient;
    std::unique_ptr<RotationGate::WriteGuard> gate;  // an existing patient's
    std::vector<store::NodeKeyVersion> rotated;      // none for a new patient
    SecretBytes root;
    std::vector<Bytes> audit;
    if (batch.new_patient) {
      MV_RETURN_IF_ERROR(ValidateDemographics(*batch.new_patient));
      MV_ASSIGN_OR_RETURN(store::PatientRecord rec, NewPatientRecord(*batch.new_patient, root));
      MV_RETURN_IF_ERROR(Audit(
          audit, Event("key.patient-root-created", rec.patient_id, author, rec.created_at_ms)));
      result.patient_id = rec.patient_id;
      result.patient_created = true;
      new_patient = std::move(rec);
    } else {
      MV_ASSIGN_OR_RETURN(store::PatientRecord patient, LoadLivePatient(batch.patient_id));
      gate = std::make_unique<RotationGate::WriteGuard>(&gate_, batch.patient_id);
      MV_ASSIGN_OR_RETURN(root, UnwrapRoot(patient));
      MV_ASSIGN_OR_RETURN(rotated, metadata_->ListNodeKeyVersions(batch.patient_id));
      result.patient_id = batch.patient_id;
    }

    // Locks in path order, so that two batches never wait on each other.
    std::vector<size_t> order(batch.segments.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&batch](size_t a, size_t b) {
      return batch.segments[a].path < batch.segments[b].path;
    });
    std::vector<std::unique_ptr<PathLockGuard>> locks;
    locks.reserve(order.size());
    for (size_t i : order) {
      locks.push_back(std::make_unique<PathLockGuard>(
          &path_locks_, result.patient_id + "\n" + batch.segments[i].path));
    }

    std::vector<store::SegmentVersionRecord> records;
    records.reserve(batch.segments.size());
    auto discard_objects = [this, &records]() {
      for (const store::SegmentVersionRecord& r : records) {
        if (r.storage == store::ContentStorage::kObject) {
          (void)objects_->Delete(r.object_key);
        }
      }
    };
    const int64_t now = NowUnixMillis();
    for (size_t i = 0; i < batch.segments.size(); ++i) {
      const BatchSegmentWrite& w = batch.segments[i];
      uint64_t latest = 0;
      if (!new_patient) {
        Result<uint64_t> l = metadata_->LatestVersion(result.patient_id, w.path);
        if (!l.ok()) {
          discard_objects();
          return l.status();
        }
        latest = *l;
      }
      if (w.expected_latest.has_value() && *w.expected_latest != latest) {
        discard_objects();
        return Status::FailedPrecondition(
            w.path + ": changed since it was read (another write came first): try again");
      }
      Result<store::SegmentVersionRecord> rec = SealWholeVersion(
          result.patient_id, root, rotated, w, media_types[i], latest + 1, author, now);
      if (!rec.ok()) {
        discard_objects();
        return rec.status().WithContext(w.path);
      }
      records.push_back(std::move(*rec));
      Status st = Audit(audit, WriteEvent(records.back()));
      if (!st.ok()) {
        discard_objects();
        return st;
      }
    }
    Status st = metadata_->InsertBatch(new_patient ? &*new_patient : nullptr, records, audit);
    if (!st.ok()) {
      // All or nothing: the first row tells which (see ResolveFailedInsert).
      if (records.empty()) {
        return st;
      }
      Result<store::SegmentVersionRecord> found = metadata_->GetSegmentVersion(
          records.front().patient_id, records.front().path, records.front().version);
      if (found.ok() && found->object_key == records.front().object_key) {
        Log(LogLevel::kWarn, "segment.write.resolved",
            {{"status", std::string(StatusCodeName(st.code()))}});
      } else {
        if (found.ok() || found.status().code() == StatusCode::kNotFound) {
          discard_objects();
        }
        return st;
      }
    }
    result.versions.reserve(records.size());
    for (const store::SegmentVersionRecord& r : records) {
      result.versions.push_back(ToInfo(r));
    }
    return result;
  }

  Result<std::unique_ptr<SegmentWriter>> BeginAttachment(std::string_view patient_id,
                                                         std::string_view path,
                                                         std::string_view media_type,
                                                         std::optional<int> sensitivity,
                                                         std::string_view author) override {
    MV_RETURN_IF_ERROR(ValidateSegmentPath(path));
    MV_RETURN_IF_ERROR(ValidateAuthor(author));
    MV_RETURN_IF_ERROR(ValidateMediaType(media_type));
    MV_ASSIGN_OR_RETURN(
        auto writer, StartVersion(patient_id, path, ContentKind::kBinary, std::string(media_type),
                                  sensitivity, author, options_.max_attachment_bytes));
    return std::unique_ptr<SegmentWriter>(std::move(writer));
  }

  Result<SegmentContent> ReadSegment(std::string_view patient_id, std::string_view path,
                                     uint64_t version) override {
    MV_ASSIGN_OR_RETURN(auto reader, OpenSegment(patient_id, path, version));
    return ReadAll(*reader);
  }

  Result<std::unique_ptr<SegmentReader>> OpenSegment(std::string_view patient_id,
                                                     std::string_view path,
                                                     uint64_t version) override {
    MV_RETURN_IF_ERROR(ValidateSegmentPath(path));
    if (!IsValidRandomId(patient_id)) {
      return Status::InvalidArgument("patient id must be 32 lower-case hex characters");
    }
    // The patient, the version and the key tree's versions from one
    // snapshot (one read transaction), so they cannot straddle a rotation.
    Result<store::VersionForRead> found = metadata_->GetVersionForRead(patient_id, path, version);
    if (!found.ok()) {
      if (found.status().code() == StatusCode::kNotFound) {
        // The patient's own state first (unknown, erased), as everywhere.
        MV_RETURN_IF_ERROR(LoadLivePatient(patient_id).status());
      }
      return found.status();
    }
    store::VersionForRead& read = *found;
    if (read.patient.erased_at_ms.has_value()) {
      return Status::NotFound("patient has been erased");
    }
    MV_ASSIGN_OR_RETURN(SecretBytes root, UnwrapRoot(read.patient));
    const PathKeyVersions kv = VersionsOnPath(read.rotated, read.version.path);
    // The inline content moves into the reader: no copy of up to 128 KiB.
    Bytes content = std::move(read.version.inline_content);
    auto reader = OpenVersion(read.version, root, kv, std::move(content));
    if (reader.ok() || reader.status().code() != StatusCode::kDataLoss || kv.key_version == 1) {
      return reader;
    }
    // A rotation may have replaced the slots after the snapshot: the general
    // path reloads the versions (and the content) and tries again.
    return OpenRecord(std::move(read.version), root);
  }

  Result<std::unique_ptr<PatientKeys>> OpenPatientKeys(std::string_view patient_id) override {
    MV_ASSIGN_OR_RETURN(store::PatientRecord patient, LoadLivePatient(patient_id));
    MV_ASSIGN_OR_RETURN(SecretBytes root, UnwrapRoot(patient));
    return std::unique_ptr<PatientKeys>(
        std::make_unique<PatientKeysImpl>(this, std::string(patient_id), std::move(root)));
  }

  Result<SegmentContent> ReadSegmentWith(const PatientKeys& keys, std::string_view path,
                                         uint64_t version) override {
    MV_ASSIGN_OR_RETURN(auto reader, OpenSegmentWith(keys, path, version));
    return ReadAll(*reader);
  }

  Result<std::unique_ptr<SegmentReader>> OpenSegmentWith(const PatientKeys& keys,
                                                         std::string_view path,
                                                         uint64_t version) override {
    MV_RETURN_IF_ERROR(ValidateSegmentPath(path));
    MV_ASSIGN_OR_RETURN(const SecretBytes* root, RootOf(keys));
    MV_RETURN_IF_ERROR(LoadLivePatient(keys.patient_id()).status());
    MV_ASSIGN_OR_RETURN(store::SegmentVersionRecord rec,
                        metadata_->GetSegmentVersion(keys.patient_id(), path, version));
    return OpenRecord(std::move(rec), *root);
  }

  Result<std::unique_ptr<SegmentReader>> OpenRecord(store::SegmentVersionRecord rec,
                                                    const SecretBytes& root) {
    // A rotation committing between loading the node versions and loading
    // the object's slots makes the two disagree: a second attempt sees both
    // after it.
    MV_ASSIGN_OR_RETURN(auto rotated, metadata_->ListNodeKeyVersions(rec.patient_id));
    const PathKeyVersions kv = VersionsOnPath(rotated, rec.path);
    Bytes content = std::move(rec.inline_content);  // a second attempt fetches it again
    auto reader = OpenVersion(rec, root, kv, std::move(content));
    if (reader.ok() || reader.status().code() != StatusCode::kDataLoss) {
      return reader;
    }
    MV_ASSIGN_OR_RETURN(auto again, metadata_->ListNodeKeyVersions(rec.patient_id));
    const PathKeyVersions kv_again = VersionsOnPath(again, rec.path);
    if (kv_again.key_version == kv.key_version) {
      return reader;
    }
    return OpenVersion(rec, root, kv_again, {});
  }

  // Opens the object of `rec` with the node key of `kv`, its data key taken
  // from the re-wrapped slots in the metadata store when a rotation left any,
  // else from the object's own header. `inline_content`: the version's
  // inline ciphertext when the caller holds it (moved in), else empty.
  Result<std::unique_ptr<SegmentReader>> OpenVersion(const store::SegmentVersionRecord& rec,
                                                     const SecretBytes& root,
                                                     const PathKeyVersions& kv,
                                                     Bytes inline_content) {
    MV_ASSIGN_OR_RETURN(SecretBytes node_key,
                        crypto::DeriveKeyForPath(root, rec.path, kv.versions));
    MV_ASSIGN_OR_RETURN(std::optional<std::vector<crypto::KeySlot>> slots, StoredSlots(rec, kv));
    MV_ASSIGN_OR_RETURN(auto object, OpenStored(rec, std::move(inline_content)));
    MV_ASSIGN_OR_RETURN(Bytes header, ReadEnvelopeHeader(*object));
    MV_ASSIGN_OR_RETURN(auto opener,
                        crypto::EnvelopeOpener::Create(
                            node_key, kv.key_version,
                            crypto::ObjectAad(rec.patient_id, rec.path, rec.version, ObjectId(rec)),
                            header, slots ? &*slots : nullptr));
    return std::unique_ptr<SegmentReader>(
        std::make_unique<ObjectSegmentReader>(ToInfo(rec), std::move(object), std::move(opener)));
  }

  // The stored (encrypted) bytes of a version, wherever they live, behind
  // the same hash check. `content`: an inline version's ciphertext when the
  // caller has it (moved in); empty (a listing's row, a retry), it is
  // fetched with the row.
  Result<std::unique_ptr<store::ObjectReader>> OpenStored(const store::SegmentVersionRecord& rec,
                                                          Bytes content) {
    if (rec.storage == store::ContentStorage::kObject) {
      return objects_->Open(rec.object_key, rec.content_sha256);
    }
    if (content.empty()) {
      MV_ASSIGN_OR_RETURN(store::SegmentVersionRecord full,
                          metadata_->GetSegmentVersion(rec.patient_id, rec.path, rec.version));
      if (full.object_key != rec.object_key) {
        return Status::DataLoss("segment version changed while being read");
      }
      content = std::move(full.inline_content);
    }
    if (content.empty()) {
      return Status::NotFound("inline content of '" + rec.object_key + "' is missing");
    }
    return store::NewBytesObjectReader("inline content of '" + rec.object_key + "'",
                                       std::move(content), rec.content_sha256);
  }

  // The re-wrapped slots of an object, if any. A path whose key was never
  // rotated (key version 1) has none, which saves the lookup.
  Result<std::optional<std::vector<crypto::KeySlot>>> StoredSlots(
      const store::SegmentVersionRecord& rec, const PathKeyVersions& kv) {
    std::optional<std::vector<crypto::KeySlot>> out;
    if (kv.key_version == 1) {
      return out;
    }
    MV_ASSIGN_OR_RETURN(std::optional<Bytes> encoded, metadata_->GetObjectKeySlots(rec.object_key));
    if (encoded.has_value()) {
      MV_ASSIGN_OR_RETURN(out, crypto::DecodeKeySlots(*encoded));
    }
    return out;
  }

  static Result<SegmentContent> ReadAll(SegmentReader& reader) {
    SegmentContent out;
    out.info = reader.info();
    out.content.reserve(out.info.size);
    while (true) {
      const size_t before = out.content.size();
      MV_RETURN_IF_ERROR(reader.ReadSome(crypto::kEnvelopeChunkSize + 4096, out.content));
      if (out.content.size() == before) {
        break;
      }
    }
    return out;
  }

  // -------------------------------------------------------------------------
  // Key rotation

  Result<SubtreeRotation> RotateSubtreeKey(std::string_view patient_id, std::string_view path,
                                           std::string_view author) override {
    MV_RETURN_IF_ERROR(ValidateSegmentPath(path));
    MV_RETURN_IF_ERROR(ValidateAuthor(author));
    MV_ASSIGN_OR_RETURN(store::PatientRecord patient, LoadLivePatient(patient_id));
    RotationGate::RotationGuard gate(&gate_, std::string(patient_id));
    MV_ASSIGN_OR_RETURN(SecretBytes root, UnwrapRoot(patient));
    MV_ASSIGN_OR_RETURN(std::vector<store::NodeKeyVersion> rotated,
                        metadata_->ListNodeKeyVersions(patient_id));
    uint32_t current = 1;
    for (const store::NodeKeyVersion& n : rotated) {
      if (n.path == path) {
        current = n.version;
      }
    }
    if (current >= crypto::kMaxNodeKeyVersion) {
      return Status::ResourceExhausted("the node key has reached its last version");
    }
    std::vector<store::NodeKeyVersion> after = rotated;
    auto it = std::find_if(after.begin(), after.end(),
                           [&](const store::NodeKeyVersion& n) { return n.path == path; });
    if (it == after.end()) {
      after.push_back(store::NodeKeyVersion{std::string(path), current + 1});
    } else {
      it->version = current + 1;
    }

    SubtreeRotation result;
    result.path = std::string(path);
    result.node_version = current + 1;
    std::vector<store::ObjectKeySlots> slots;
    MV_ASSIGN_OR_RETURN(std::vector<store::SegmentSummary> tree,
                        metadata_->ListSegments(patient_id, path));
    for (const store::SegmentSummary& seg : tree) {
      const PathKeyVersions old_kv = VersionsOnPath(rotated, seg.path);
      const PathKeyVersions new_kv = VersionsOnPath(after, seg.path);
      MV_ASSIGN_OR_RETURN(SecretBytes old_key,
                          crypto::DeriveKeyForPath(root, seg.path, old_kv.versions));
      MV_ASSIGN_OR_RETURN(SecretBytes new_key,
                          crypto::DeriveKeyForPath(root, seg.path, new_kv.versions));
      MV_ASSIGN_OR_RETURN(std::vector<store::SegmentVersionRecord> versions,
                          metadata_->ListSegmentVersions(patient_id, seg.path));
      for (const store::SegmentVersionRecord& rec : versions) {
        Result<Bytes> encoded = RewrapVersion(rec, old_key, old_kv, new_key, new_kv);
        if (!encoded.ok()) {
          return encoded.status().WithContext(rec.path + " version " + std::to_string(rec.version));
        }
        slots.push_back(store::ObjectKeySlots{rec.object_key, std::move(*encoded)});
      }
    }
    result.objects_rewrapped = slots.size();
    const int64_t now = NowUnixMillis();
    std::vector<Bytes> audit;
    RecordEvent event = Event("key.subtree-rotated", patient_id, author, now);
    event.path = path;
    event.version = result.node_version;
    MV_RETURN_IF_ERROR(Audit(audit, event));
    MV_RETURN_IF_ERROR(
        metadata_->RotateNodeKey(patient_id, path, result.node_version, now, slots, audit));
    Log(LogLevel::kInfo, "key.subtree-rotated",
        {{"objects", static_cast<long>(result.objects_rewrapped)},
         {"node_version", static_cast<long>(result.node_version)}});
    return result;
  }

  // The encoded slot list that replaces the object's slots after a rotation:
  // its data key, opened with the old node key, wrapped under the new one.
  // Only the new slot is kept: a holder of the old node key finds nothing in
  // it (the object's immutable header still holds the slot it was written
  // with; see docs/architecture.md on what re-wrapping does not undo).
  Result<Bytes> RewrapVersion(const store::SegmentVersionRecord& rec, const SecretBytes& old_key,
                              const PathKeyVersions& old_kv, const SecretBytes& new_key,
                              const PathKeyVersions& new_kv) {
    MV_ASSIGN_OR_RETURN(std::optional<std::vector<crypto::KeySlot>> slots,
                        StoredSlots(rec, old_kv));
    if (!slots.has_value()) {
      MV_ASSIGN_OR_RETURN(auto object, OpenStored(rec, {}));
      MV_ASSIGN_OR_RETURN(Bytes header, ReadEnvelopeHeader(*object));
      MV_ASSIGN_OR_RETURN(slots, crypto::ReadKeySlots(header));
    }
    MV_ASSIGN_OR_RETURN(
        crypto::KeySlot slot,
        crypto::RewrapKeySlot(
            *slots, old_key, old_kv.key_version, new_key, new_kv.key_version,
            crypto::ObjectAad(rec.patient_id, rec.path, rec.version, ObjectId(rec))));
    return crypto::EncodeKeySlots(std::span<const crypto::KeySlot>(&slot, 1));
  }

  Result<std::vector<SegmentVersionInfo>> ListVersions(std::string_view patient_id,
                                                       std::string_view path) override {
    MV_RETURN_IF_ERROR(ValidateSegmentPath(path));
    MV_RETURN_IF_ERROR(LoadLivePatient(patient_id).status());
    MV_ASSIGN_OR_RETURN(auto records, metadata_->ListSegmentVersions(patient_id, path));
    if (records.empty()) {
      return Status::NotFound("segment has no versions");
    }
    std::vector<SegmentVersionInfo> out;
    out.reserve(records.size());
    for (const auto& r : records) {
      out.push_back(ToInfo(r));
    }
    return out;
  }

  Result<std::vector<store::SegmentSummary>> ListTree(std::string_view patient_id,
                                                      std::string_view prefix) override {
    if (!prefix.empty()) {
      MV_RETURN_IF_ERROR(ValidateSegmentPath(prefix));
    }
    MV_RETURN_IF_ERROR(LoadLivePatient(patient_id).status());
    return metadata_->ListSegments(patient_id, prefix);
  }

  static RecordEvent Event(std::string_view action, std::string_view patient_id,
                           std::string_view author, int64_t time_ms) {
    RecordEvent e;
    e.action = action;
    e.patient_id = patient_id;
    e.author = author;
    e.time_ms = time_ms;
    return e;
  }

  // Appends the encoded ledger entry of `event` when a ledger is attached.
  Status Audit(std::vector<Bytes>& out, const RecordEvent& event) const {
    if (!options_.audit) {
      return Status::Ok();
    }
    MV_ASSIGN_OR_RETURN(Bytes entry, options_.audit(event));
    out.push_back(std::move(entry));
    return Status::Ok();
  }

  // Called by AttachmentWriter::Commit with the lock still held.
  Result<SegmentVersionInfo> FinishVersion(store::SegmentVersionRecord& record,
                                           crypto::EnvelopeSealer& sealer,
                                           store::ObjectWriter& object) {
    Bytes tail;
    MV_RETURN_IF_ERROR(sealer.Finish(tail));
    if (!tail.empty()) {
      MV_RETURN_IF_ERROR(object.Append(tail));
    }
    MV_ASSIGN_OR_RETURN(store::ObjectInfo stored, object.Commit());
    record.stored_size = stored.size;
    record.content_sha256 = stored.sha256;
    record.created_at_ms = NowUnixMillis();
    std::vector<Bytes> audit;
    Status st = Audit(audit, WriteEvent(record));
    if (!st.ok()) {
      // The object is invisible without its metadata row; remove it.
      (void)objects_->Delete(record.object_key);
      return st;
    }
    st = metadata_->InsertSegmentVersion(record, audit);
    if (!st.ok()) {
      MV_RETURN_IF_ERROR(ResolveFailedInsert(record, st));
    }
    return ToInfo(record);
  }

 private:
  static void sodium_memzero_bytes(Bytes& b) { sodium_memzero(b.data(), b.size()); }

  static std::string ObjectId(const store::SegmentVersionRecord& r) {
    const size_t slash = r.object_key.rfind('/');
    return slash == std::string::npos ? r.object_key : r.object_key.substr(slash + 1);
  }

  static Status ValidateMediaType(std::string_view media_type) {
    // type "/" subtype with optional parameters, printable ASCII, bounded.
    if (media_type.empty() || media_type.size() > 127) {
      return Status::InvalidArgument("attachment media type must be 1..127 characters");
    }
    const size_t slash = media_type.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == media_type.size()) {
      return Status::InvalidArgument("attachment media type must look like type/subtype");
    }
    for (char c : media_type) {
      if (c < 0x20 || c > 0x7e) {
        return Status::InvalidArgument("attachment media type must be printable ASCII");
      }
    }
    return Status::Ok();
  }

  Result<store::PatientRecord> LoadLivePatient(std::string_view patient_id) {
    if (!IsValidRandomId(patient_id)) {
      return Status::InvalidArgument("patient id must be 32 lower-case hex characters");
    }
    MV_ASSIGN_OR_RETURN(store::PatientRecord rec, metadata_->GetPatient(patient_id));
    if (rec.erased_at_ms.has_value()) {
      return Status::NotFound("patient has been erased");
    }
    return rec;
  }

  Result<const SecretBytes*> RootOf(const PatientKeys& keys) const {
    const auto* impl = dynamic_cast<const PatientKeysImpl*>(&keys);
    if (impl == nullptr || impl->owner() != this) {
      return Status::InvalidArgument("patient keys were opened by another record service");
    }
    return &impl->root();
  }

  Result<SecretBytes> UnwrapRoot(const store::PatientRecord& rec) {
    if (rec.wrapped_root_key.empty()) {
      return Status::NotFound("patient has been erased");
    }
    auto root = keys_->UnwrapKey(rec.wrapped_root_key, RootKeyAad(rec.patient_id));
    if (!root.ok()) {
      return Status::DataLoss("patient root key does not unwrap under the platform key");
    }
    return root;
  }

  // Encrypts a whole in-memory version and stores its object; the metadata
  // row is the caller's to insert (or the object's to delete).
  Result<store::SegmentVersionRecord> SealWholeVersion(
      std::string_view patient_id, const SecretBytes& root,
      const std::vector<store::NodeKeyVersion>& rotated, const BatchSegmentWrite& w,
      const std::string& media_type, uint64_t version, std::string_view author, int64_t now) {
    const TopLevelSegment& top = TopLevelFor(w.path);
    store::SegmentVersionRecord record;
    record.patient_id = std::string(patient_id);
    record.path = w.path;
    record.version = version;
    record.category = std::string(top.category);
    record.sensitivity = w.write.sensitivity.value_or(top.default_sensitivity);
    record.kind = w.write.kind;
    record.media_type = media_type;
    const std::string object_id = NewRandomId();
    record.object_key = record.patient_id + "/" + object_id;
    record.author = std::string(author);
    record.plaintext_size = w.write.content.size();
    record.created_at_ms = now;
    const PathKeyVersions kv = VersionsOnPath(rotated, w.path);
    MV_ASSIGN_OR_RETURN(SecretBytes node_key, crypto::DeriveKeyForPath(root, w.path, kv.versions));
    MV_ASSIGN_OR_RETURN(
        auto sealer,
        crypto::EnvelopeSealer::Create(node_key, kv.key_version,
                                       crypto::ObjectAad(patient_id, w.path, version, object_id)));
    Bytes sealed = sealer->header();
    MV_RETURN_IF_ERROR(sealer->Update(w.write.content, sealed));
    MV_RETURN_IF_ERROR(sealer->Finish(sealed));
    const uint64_t inline_max =
        std::min<uint64_t>(options_.inline_storage_max_bytes, store::kMaxInlineBytes);
    if (sealed.size() <= inline_max) {
      // Small: the ciphertext travels with the row (docs/architecture.md,
      // "Small versions inline"); durable with it in one commit.
      record.storage = store::ContentStorage::kInline;
      record.stored_size = sealed.size();
      record.content_sha256 = crypto::Sha256(sealed);
      record.inline_content = std::move(sealed);
      return record;
    }
    MV_ASSIGN_OR_RETURN(auto object, objects_->BeginPut(record.object_key));
    MV_RETURN_IF_ERROR(object->Append(sealed));
    MV_ASSIGN_OR_RETURN(store::ObjectInfo stored, object->Commit());
    record.stored_size = stored.size;
    record.content_sha256 = stored.sha256;
    return record;
  }

  Result<std::unique_ptr<AttachmentWriter>> StartVersion(
      std::string_view patient_id, std::string_view path, ContentKind kind, std::string media_type,
      std::optional<int> sensitivity, std::string_view author, uint64_t max_bytes) {
    const TopLevelSegment& top = TopLevelFor(path);
    const int level = sensitivity.value_or(top.default_sensitivity);
    if (level < 0 || level > kMaxSensitivity) {
      return Status::InvalidArgument("sensitivity must be between 0 and 4");
    }
    MV_ASSIGN_OR_RETURN(store::PatientRecord patient, LoadLivePatient(patient_id));
    auto gate = std::make_unique<RotationGate::WriteGuard>(&gate_, std::string(patient_id));
    auto lock = std::make_unique<PathLockGuard>(&path_locks_,
                                                std::string(patient_id) + "\n" + std::string(path));
    MV_ASSIGN_OR_RETURN(uint64_t latest, metadata_->LatestVersion(patient_id, path));
    MV_ASSIGN_OR_RETURN(SecretBytes root, UnwrapRoot(patient));
    MV_ASSIGN_OR_RETURN(auto rotated, metadata_->ListNodeKeyVersions(patient_id));
    const PathKeyVersions kv = VersionsOnPath(rotated, path);
    MV_ASSIGN_OR_RETURN(SecretBytes node_key, crypto::DeriveKeyForPath(root, path, kv.versions));

    store::SegmentVersionRecord record;
    record.patient_id = std::string(patient_id);
    record.path = std::string(path);
    record.version = latest + 1;
    record.category = std::string(top.category);
    record.sensitivity = level;
    record.kind = kind;
    record.media_type = std::move(media_type);
    const std::string object_id = NewRandomId();
    record.object_key = record.patient_id + "/" + object_id;
    record.author = std::string(author);

    MV_ASSIGN_OR_RETURN(auto sealer,
                        crypto::EnvelopeSealer::Create(
                            node_key, kv.key_version,
                            crypto::ObjectAad(patient_id, path, record.version, object_id)));
    MV_ASSIGN_OR_RETURN(auto object, objects_->BeginPut(record.object_key));
    MV_RETURN_IF_ERROR(object->Append(sealer->header()));
    return std::make_unique<AttachmentWriter>(this, std::move(gate), std::move(lock),
                                              std::move(record), std::move(sealer),
                                              std::move(object), max_bytes);
  }

  KeyProvider* keys_;
  MetadataStore* metadata_;
  ObjectStore* objects_;
  RecordServiceOptions options_;
  SecretBytes blind_index_key_;
  PathLocks path_locks_;
  RotationGate gate_;
};

Result<SegmentVersionInfo> AttachmentWriter::Commit() {
  if (!status_.ok()) {
    return status_;
  }
  if (committed_) {
    return Status::FailedPrecondition("attachment already committed");
  }
  committed_ = true;
  auto result = service_->FinishVersion(record_, *sealer_, *object_);
  lock_.reset();
  gate_.reset();
  return result;
}

}  // namespace

Status ValidateDemographics(const Demographics& d) {
  auto check_name = [](std::string_view v, std::string_view field) -> Status {
    if (v.empty() || v.size() > 200) {
      return Status::InvalidArgument(std::string(field) + " must be 1..200 characters");
    }
    if (!IsValidUtf8(v)) {
      return Status::InvalidArgument(std::string(field) + " is not valid UTF-8");
    }
    for (char c : v) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        return Status::InvalidArgument(std::string(field) + " contains a control character");
      }
    }
    return Status::Ok();
  };
  MV_RETURN_IF_ERROR(check_name(d.given_name, "given_name"));
  MV_RETURN_IF_ERROR(check_name(d.family_name, "family_name"));
  if (!IsCalendarDate(d.birth_date)) {
    return Status::InvalidArgument("birth_date must be a calendar date YYYY-MM-DD");
  }
  if (d.birth_date > FormatRfc3339Millis(NowUnixMillis()).substr(0, 10)) {
    return Status::InvalidArgument("birth_date is in the future");
  }
  if (d.sex != "female" && d.sex != "male" && d.sex != "other" && d.sex != "unknown") {
    return Status::InvalidArgument("sex must be one of female, male, other, unknown");
  }
  if (d.identifier.size() > 64) {
    return Status::InvalidArgument("identifier must be at most 64 characters");
  }
  for (char c : d.identifier) {
    if (c < 0x21 || c > 0x7e) {
      return Status::InvalidArgument("identifier must be printable ASCII without spaces");
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<RecordService>> CreateRecordService(crypto::KeyProvider* keys,
                                                           store::MetadataStore* metadata,
                                                           store::ObjectStore* objects,
                                                           const RecordServiceOptions& options) {
  if (keys == nullptr || metadata == nullptr || objects == nullptr) {
    return Status::Internal("record service needs a key provider and both stores");
  }
  MV_ASSIGN_OR_RETURN(SecretBytes blind_key, keys->DerivePlatformKey("blind-index"));
  return std::unique_ptr<RecordService>(
      std::make_unique<RecordServiceImpl>(keys, metadata, objects, options, std::move(blind_key)));
}

}  // namespace medvault::record
