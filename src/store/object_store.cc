// Key grammar and the whole-buffer conveniences shared by every ObjectStore,
// and the row rules shared by every MetadataStore.
#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "crypto/crypto.h"
#include "store/store.h"

namespace medvault::store {

namespace {

constexpr size_t kMaxKeyLength = 512;
// Get() reads through the streaming interface in pieces of this size.
constexpr size_t kGetChunk = 64 * 1024;

bool IsKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

}  // namespace

Result<int64_t> ObjectStore::CommittedAtMs(std::string_view /*key*/) {
  return Status::FailedPrecondition("this object store does not record commit times");
}

bool IsValidObjectKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxKeyLength) {
    return false;
  }
  size_t start = 0;
  while (true) {
    const size_t slash = key.find('/', start);
    const size_t end = slash == std::string_view::npos ? key.size() : slash;
    const std::string_view component = key.substr(start, end - start);
    // Empty components cover leading, trailing and doubled slashes.
    if (component.empty() || component == "." || component == "..") {
      return false;
    }
    for (char c : component) {
      if (!IsKeyChar(c)) {
        return false;
      }
    }
    if (slash == std::string_view::npos) {
      return true;
    }
    start = slash + 1;
  }
}

Result<ObjectInfo> ObjectStore::Put(std::string_view key, ByteView data) {
  MV_ASSIGN_OR_RETURN(std::unique_ptr<ObjectWriter> writer, BeginPut(key));
  MV_RETURN_IF_ERROR(writer->Append(data));
  return writer->Commit();
}

Result<Bytes> ObjectStore::Get(std::string_view key, ByteView expected_sha256) {
  MV_ASSIGN_OR_RETURN(std::unique_ptr<ObjectReader> reader, Open(key, expected_sha256));
  Bytes out;
  out.reserve(static_cast<size_t>(reader->size()) + kGetChunk);
  // The reader verifies size and hash when it reaches the end, so the buffer
  // is only returned once the whole object has been checked.
  while (true) {
    const size_t old_size = out.size();
    out.resize(old_size + kGetChunk);
    MV_ASSIGN_OR_RETURN(size_t n,
                        reader->Read(std::span<uint8_t>(out.data() + old_size, kGetChunk)));
    out.resize(old_size + n);
    if (n == 0) {
      return out;
    }
  }
}

Status CheckInt64(uint64_t v, std::string_view field) {
  if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::InvalidArgument(std::string(field) + " is out of range");
  }
  return Status::Ok();
}

Status ValidateSegmentVersionRecord(const SegmentVersionRecord& rec) {
  if (rec.patient_id.empty() || rec.path.empty() || rec.object_key.empty()) {
    return Status::InvalidArgument("segment version needs patient id, path and object key");
  }
  if (rec.version == 0) {
    return Status::InvalidArgument("segment versions start at 1");
  }
  MV_RETURN_IF_ERROR(CheckInt64(rec.version, "version"));
  MV_RETURN_IF_ERROR(CheckInt64(rec.plaintext_size, "plaintext size"));
  MV_RETURN_IF_ERROR(CheckInt64(rec.stored_size, "stored size"));
  if (rec.sensitivity < 0 || rec.sensitivity > 4) {
    return Status::InvalidArgument("sensitivity must be between 0 and 4");
  }
  const int kind = static_cast<int>(rec.kind);
  if (kind < 1 || kind > 3) {
    return Status::InvalidArgument("unknown content kind");
  }
  if (rec.content_sha256.size() != 32) {
    return Status::InvalidArgument("content hash must be 32 bytes");
  }
  switch (rec.storage) {
    case ContentStorage::kObject:
      if (!rec.inline_content.empty()) {
        return Status::InvalidArgument("an object-stored version carries no inline content");
      }
      break;
    case ContentStorage::kInline:
      if (rec.inline_content.empty() || rec.inline_content.size() > kMaxInlineBytes) {
        return Status::InvalidArgument("inline content must be 1.." +
                                       std::to_string(kMaxInlineBytes) + " bytes");
      }
      if (rec.inline_content.size() != rec.stored_size) {
        return Status::InvalidArgument("inline content size differs from the stored size");
      }
      break;
    default:
      return Status::InvalidArgument("unknown content storage");
  }
  return Status::Ok();
}

Result<VersionForRead> MetadataStore::GetVersionForRead(std::string_view patient_id,
                                                        std::string_view path, uint64_t version) {
  VersionForRead out;
  MV_ASSIGN_OR_RETURN(out.patient, GetPatient(patient_id));
  MV_ASSIGN_OR_RETURN(out.version, GetSegmentVersion(patient_id, path, version));
  MV_ASSIGN_OR_RETURN(out.rotated, ListNodeKeyVersions(patient_id));
  return out;
}

namespace {

// See NewBytesObjectReader. Bytes handed out before the end are not yet
// verified, as with the stores' own readers.
class BytesObjectReader final : public ObjectReader {
 public:
  BytesObjectReader(std::string name, Bytes data, ByteView expected)
      : name_(std::move(name)),
        data_(std::move(data)),
        expected_(expected.begin(), expected.end()) {}

  Result<size_t> Read(std::span<uint8_t> out) override {
    if (!final_status_.ok()) {
      return final_status_;
    }
    if (out.empty()) {
      // A zero return would look like the verified end; fail closed instead.
      return Status::InvalidArgument("ObjectReader::Read needs a non-empty buffer");
    }
    if (at_end_) {
      return size_t{0};
    }
    if (pos_ == data_.size()) {
      if (hasher_.Finish() != expected_) {
        final_status_ =
            Status::DataLoss(name_ + " failed its integrity check (content hash mismatch)");
        return final_status_;
      }
      at_end_ = true;
      return size_t{0};
    }
    const size_t n = std::min(out.size(), data_.size() - pos_);
    std::memcpy(out.data(), data_.data() + pos_, n);
    hasher_.Update(ByteView(data_.data() + pos_, n));
    pos_ += n;
    return n;
  }

  uint64_t size() const override { return data_.size(); }

 private:
  std::string name_;
  Bytes data_;
  Bytes expected_;
  size_t pos_ = 0;
  crypto::Sha256Hasher hasher_;
  bool at_end_ = false;
  Status final_status_;
};

}  // namespace

std::unique_ptr<ObjectReader> NewBytesObjectReader(std::string name, Bytes content,
                                                   ByteView expected_sha256) {
  return std::make_unique<BytesObjectReader>(std::move(name), std::move(content), expected_sha256);
}

}  // namespace medvault::store
