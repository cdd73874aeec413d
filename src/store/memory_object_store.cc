// ObjectStore in memory: the contract of store.h without files, for tests
// and as the reference backend of tests/object_store_conformance_test.cc.
//
// Objects are immutable byte buffers shared (read-only) with the readers
// that opened them, so a Delete during a read does not pull the bytes away.
// Readers hash what they hand out and compare with the caller's expected hash
// at the end, exactly like the file store: a torn or substituted object (see
// store/fault_injection.h) is DataLoss.
#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "common/ids.h"
#include "crypto/crypto.h"
#include "store/store.h"

namespace medvault::store {
namespace {

constexpr size_t kSha256Size = 32;

std::string Quoted(std::string_view key) { return "'" + std::string(key) + "'"; }

Status ValidateKey(std::string_view key) {
  if (!IsValidObjectKey(key)) {
    return Status::InvalidArgument("invalid object key");
  }
  return Status::Ok();
}

struct StoredObject {
  std::shared_ptr<const Bytes> data;
  int64_t committed_at_ms = 0;
};

// Shared by the store and the writers it hands out, so that these stay valid
// if they outlive the store object.
struct MemoryShared {
  std::mutex mu;
  std::map<std::string, StoredObject, std::less<>> objects;  // guarded by mu
};

class MemoryObjectWriter final : public ObjectWriter {
 public:
  MemoryObjectWriter(std::shared_ptr<MemoryShared> shared, std::string key)
      : shared_(std::move(shared)), key_(std::move(key)) {}

  Status Append(ByteView data) override {
    MV_RETURN_IF_ERROR(CheckOpen());
    buffer_.insert(buffer_.end(), data.begin(), data.end());
    return Status::Ok();
  }

  Result<ObjectInfo> Commit() override {
    MV_RETURN_IF_ERROR(CheckOpen());
    done_ = true;  // committed or failed: the writer is finished either way
    ObjectInfo info;
    info.key = key_;
    info.size = buffer_.size();
    info.sha256 = crypto::Sha256(buffer_);
    auto data = std::make_shared<const Bytes>(std::move(buffer_));
    std::lock_guard<std::mutex> lock(shared_->mu);
    // Objects are immutable: the first commit of a key wins.
    if (!shared_->objects.emplace(key_, StoredObject{std::move(data), NowUnixMillis()}).second) {
      return Status::AlreadyExists("object " + Quoted(key_) + " already exists");
    }
    return info;
  }

 private:
  Status CheckOpen() const {
    if (done_) {
      return Status::FailedPrecondition("object writer for " + Quoted(key_) +
                                        " is already committed or failed");
    }
    return Status::Ok();
  }

  std::shared_ptr<MemoryShared> shared_;
  std::string key_;
  Bytes buffer_;
  bool done_ = false;
};

class MemoryObjectStore final : public ObjectStore {
 public:
  MemoryObjectStore() : shared_(std::make_shared<MemoryShared>()) {}

  Result<std::unique_ptr<ObjectWriter>> BeginPut(std::string_view key) override {
    MV_RETURN_IF_ERROR(ValidateKey(key));
    {
      // Fail early for taken keys; Commit() checks again.
      std::lock_guard<std::mutex> lock(shared_->mu);
      if (shared_->objects.contains(key)) {
        return Status::AlreadyExists("object " + Quoted(key) + " already exists");
      }
    }
    return std::unique_ptr<ObjectWriter>(new MemoryObjectWriter(shared_, std::string(key)));
  }

  Result<std::unique_ptr<ObjectReader>> Open(std::string_view key,
                                             ByteView expected_sha256) override {
    MV_RETURN_IF_ERROR(ValidateKey(key));
    if (expected_sha256.size() != kSha256Size) {
      return Status::InvalidArgument("expected object hash must be 32 bytes");
    }
    std::shared_ptr<const Bytes> data;
    {
      std::lock_guard<std::mutex> lock(shared_->mu);
      auto it = shared_->objects.find(key);
      if (it == shared_->objects.end()) {
        return Status::NotFound("object " + Quoted(key) + " not found");
      }
      data = it->second.data;
    }
    // A copy: a Delete during the read does not pull the bytes away.
    return NewBytesObjectReader("object " + Quoted(key), *data, expected_sha256);
  }

  Status Delete(std::string_view key) override {
    MV_RETURN_IF_ERROR(ValidateKey(key));
    std::lock_guard<std::mutex> lock(shared_->mu);
    auto it = shared_->objects.find(key);
    if (it != shared_->objects.end()) {
      shared_->objects.erase(it);
    }
    return Status::Ok();
  }

  Status List(std::string_view prefix,
              const std::function<void(const std::string& key)>& fn) override {
    // A snapshot, so that `fn` may call back into the store.
    std::vector<std::string> keys;
    {
      std::lock_guard<std::mutex> lock(shared_->mu);
      for (auto it = shared_->objects.lower_bound(prefix);
           it != shared_->objects.end() && it->first.starts_with(prefix); ++it) {
        keys.push_back(it->first);
      }
    }
    for (const std::string& key : keys) {
      fn(key);
    }
    return Status::Ok();
  }

  Result<int64_t> CommittedAtMs(std::string_view key) override {
    MV_RETURN_IF_ERROR(ValidateKey(key));
    std::lock_guard<std::mutex> lock(shared_->mu);
    auto it = shared_->objects.find(key);
    if (it == shared_->objects.end()) {
      return Status::NotFound("object " + Quoted(key) + " not found");
    }
    return it->second.committed_at_ms;
  }

 private:
  std::shared_ptr<MemoryShared> shared_;
};

}  // namespace

std::unique_ptr<ObjectStore> NewMemoryObjectStore() {
  return std::make_unique<MemoryObjectStore>();
}

}  // namespace medvault::store
