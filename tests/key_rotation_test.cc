// Key tree versions through the record service: RotateSubtreeKey re-wraps
// the data keys below one node and nothing else, new versions are sealed
// under the new key, everything stays readable by the current key, an old
// key opens nothing written after the rotation, a rotation is all or
// nothing (also across a crash inside its transaction), and PatientKeys
// reads unwrap the patient's root key once.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "counting_key_provider.h"
#include "crypto/crypto.h"
#include "record/record.h"
#include "store/store.h"
#include "test_util.h"

namespace medvault::record {
namespace {

namespace fs = std::filesystem;
using medvault::testing::TempDir;

using medvault::testing::CountingKeyProvider;

// The paths of the property tests: the rotated node "internal-medicine/
// cardiology" (a/b), a path below it, its sibling (a/c) and another tree.
const std::vector<std::string> kPaths = {
    "internal-medicine/cardiology/notes", "internal-medicine/cardiology/ecg/letters",
    "internal-medicine/nephrology/notes", "health-status/problems", "internal-medicine/summary"};
constexpr std::string_view kRotated = "internal-medicine/cardiology";

class KeyRotationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::InitCrypto().ok());
    ASSERT_TRUE(crypto::CreateKeyFile(dir_.path() / "platform.kek").ok());
    Open();
  }

  void Open(RecordServiceOptions options = {}, store::SqliteOptions sqlite = {}) {
    service_.reset();
    objects_.reset();
    metadata_.reset();
    keys_.reset();
    auto keys = crypto::OpenFileKeyProvider(dir_.path() / "platform.kek");
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    keys_ = std::make_unique<CountingKeyProvider>(std::move(*keys));
    auto md = store::OpenSqliteMetadataStore(dir_.path() / "metadata.db", sqlite);
    ASSERT_TRUE(md.ok()) << md.status().ToString();
    metadata_ = std::move(*md);
    auto obj = store::OpenFileObjectStore(dir_.path() / "objects");
    ASSERT_TRUE(obj.ok()) << obj.status().ToString();
    objects_ = std::move(*obj);
    auto svc = CreateRecordService(keys_.get(), metadata_.get(), objects_.get(), options);
    ASSERT_TRUE(svc.ok()) << svc.status().ToString();
    service_ = std::move(*svc);
  }

  std::string NewPatient() {
    Demographics d{"Ada", "Fictive", "1956-03-14", "female", "MRN-1"};
    auto p = service_->CreatePatient(d, "tester");
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? p->patient_id : "";
  }

  // Writes a new version of `path` with distinct content; remembers it.
  // `padding` bytes more make the version large enough to be an object
  // rather than inline (RecordServiceOptions::inline_storage_max_bytes).
  void Write(const std::string& pid, const std::string& path, size_t padding = 0) {
    SegmentWrite w;
    w.kind = ContentKind::kJson;
    const std::string body = nlohmann::json{{"text", "entry " + std::to_string(++counter_) +
                                                         " of " + path + std::string(padding, '.')}}
                                 .dump();
    w.content = ToBytes(body);
    auto v = service_->WriteSegment(pid, path, w, "tester");
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    expected_[{path, v->version}] = w.content;
  }

  // Every version written so far reads back as written, through both paths.
  void ExpectAllReadable(const std::string& pid) {
    auto keys = service_->OpenPatientKeys(pid);
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    for (const auto& [where, content] : expected_) {
      SCOPED_TRACE(where.first + " v" + std::to_string(where.second));
      auto a = service_->ReadSegment(pid, where.first, where.second);
      ASSERT_TRUE(a.ok()) << a.status().ToString();
      EXPECT_EQ(a->content, content);
      auto b = service_->ReadSegmentWith(**keys, where.first, where.second);
      ASSERT_TRUE(b.ok()) << b.status().ToString();
      EXPECT_EQ(b->content, content);
    }
  }

  SecretBytes Root(const std::string& pid) {
    auto rec = metadata_->GetPatient(pid);
    EXPECT_TRUE(rec.ok());
    Bytes aad = ToBytes("medvault/v1/patient-root-key");  // docs/formats.md
    PutLengthPrefixed(aad, AsBytes(pid));
    auto root = keys_->UnwrapKey(rec->wrapped_root_key, aad);
    EXPECT_TRUE(root.ok()) << root.status().ToString();
    return root.ok() ? std::move(*root) : SecretBytes();
  }

  store::SegmentVersionRecord Row(const std::string& pid, const std::string& path, uint64_t v) {
    auto r = metadata_->GetSegmentVersion(pid, path, v);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : store::SegmentVersionRecord{};
  }

  // The stored bytes of a version: its inline content, or its object.
  Bytes ObjectBytes(const store::SegmentVersionRecord& r) {
    if (r.storage == store::ContentStorage::kInline) {
      EXPECT_EQ(crypto::Sha256(r.inline_content), r.content_sha256);
      return r.inline_content;
    }
    auto b = objects_->Get(r.object_key, r.content_sha256);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? *b : Bytes();
  }

  static Bytes Aad(const store::SegmentVersionRecord& r) {
    return crypto::ObjectAad(r.patient_id, r.path, r.version,
                             r.object_key.substr(r.object_key.rfind('/') + 1));
  }

  // Every stored byte that a rotation may or may not touch: each object file,
  // each slot row and the node versions.
  std::map<std::string, Bytes> Snapshot(const std::string& pid) {
    std::map<std::string, Bytes> out;
    for (const auto& [where, content] : expected_) {
      const auto r = Row(pid, where.first, where.second);
      out["object " + r.path + " " + std::to_string(r.version)] = ObjectBytes(r);
      auto slots = metadata_->GetObjectKeySlots(r.object_key);
      EXPECT_TRUE(slots.ok());
      out["slots " + r.path + " " + std::to_string(r.version)] =
          slots->has_value() ? **slots : ToBytes("none");
    }
    auto nodes = metadata_->ListNodeKeyVersions(pid);
    EXPECT_TRUE(nodes.ok());
    for (const auto& n : nodes.value()) {
      out["node " + n.path] = ToBytes(std::to_string(n.version));
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<CountingKeyProvider> keys_;
  std::unique_ptr<store::MetadataStore> metadata_;
  std::unique_ptr<store::ObjectStore> objects_;
  std::unique_ptr<RecordService> service_;
  std::map<std::pair<std::string, uint64_t>, Bytes> expected_;
  int counter_ = 0;
};

TEST_F(KeyRotationTest, RotationRewrapsTheSubtreeOnly) {
  const std::string pid = NewPatient();
  for (const std::string& p : kPaths) {
    Write(pid, p);
    Write(pid, p);
  }
  const auto before = Snapshot(pid);
  auto rotated = service_->RotateSubtreeKey(pid, kRotated, "officer");
  ASSERT_TRUE(rotated.ok()) << rotated.status().ToString();
  EXPECT_EQ(rotated->path, kRotated);
  EXPECT_EQ(rotated->node_version, 2u);
  EXPECT_EQ(rotated->objects_rewrapped, 4u);  // two versions of two paths below a/b
  const auto after = Snapshot(pid);
  ASSERT_EQ(before.size(), after.size() - 1);  // plus the node's version
  EXPECT_EQ(after.at("node internal-medicine/cardiology"), ToBytes("2"));
  for (const auto& [what, bytes] : before) {
    const bool slots_below = what.rfind("slots internal-medicine/cardiology/", 0) == 0;  // a/b/...
    if (slots_below) {
      EXPECT_NE(after.at(what), bytes) << what;
      EXPECT_EQ(bytes, ToBytes("none")) << what;
    } else {
      // Objects everywhere (immutable, data not re-encrypted), slots of a/c
      // and of other trees: byte-identical.
      EXPECT_EQ(after.at(what), bytes) << what;
    }
  }
  ExpectAllReadable(pid);
}

TEST_F(KeyRotationTest, OldKeyOpensNothingWrittenAfterRotation) {
  const std::string pid = NewPatient();
  const std::string path = "internal-medicine/cardiology/notes";
  Write(pid, path);
  const SecretBytes root = Root(pid);
  auto old_key = crypto::DeriveKeyForPath(root, path);
  const uint32_t v2[] = {1, 2};
  auto new_key = crypto::DeriveKeyForPath(root, path, v2);
  ASSERT_TRUE(old_key.ok() && new_key.ok());
  ASSERT_TRUE(service_->RotateSubtreeKey(pid, kRotated, "officer").ok());
  Write(pid, path);

  // Version 2, written after the rotation: its header holds a slot for key
  // version 2 only, under the new key.
  const auto after = Row(pid, path, 2);
  const Bytes sealed = ObjectBytes(after);
  for (uint32_t kv : {1u, 2u, 3u}) {
    EXPECT_EQ(crypto::OpenObject(*old_key, Aad(after), sealed, kv).status().code(),
              StatusCode::kDataLoss)
        << kv;
  }
  auto opened = crypto::OpenObject(*new_key, Aad(after), sealed, 2);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, (expected_[{path, 2}]));

  // Version 1, re-wrapped: the stored slots open under the new key only.
  const auto before = Row(pid, path, 1);
  auto encoded = metadata_->GetObjectKeySlots(before.object_key);
  ASSERT_TRUE(encoded.ok() && encoded->has_value());
  auto slots = crypto::DecodeKeySlots(**encoded);
  ASSERT_TRUE(slots.ok());
  const Bytes old_object = ObjectBytes(before);
  EXPECT_EQ(crypto::OpenObject(*old_key, Aad(before), old_object, 1, &*slots).status().code(),
            StatusCode::kDataLoss);
  EXPECT_TRUE(crypto::OpenObject(*new_key, Aad(before), old_object, 2, &*slots).ok());
  // What re-wrapping cannot undo (docs/architecture.md): the immutable header
  // of an object written before the rotation still opens with the old key,
  // so whoever held that key and those bytes had the data already.
  EXPECT_TRUE(crypto::OpenObject(*old_key, Aad(before), old_object, 1).ok());
  ExpectAllReadable(pid);
}

// Random rotations of nested and sibling nodes interleaved with writes: after
// every step everything reads back, and objects outside the rotated subtree
// keep their slots byte for byte.
TEST_F(KeyRotationTest, RandomRotationsKeepEverythingReadable) {
  const std::string pid = NewPatient();
  const std::vector<std::string> nodes = {"internal-medicine", "internal-medicine/cardiology",
                                          "internal-medicine/cardiology/ecg",
                                          "internal-medicine/nephrology", "health-status"};
  std::mt19937 rng(20261207);
  for (const std::string& p : kPaths) {
    Write(pid, p);
  }
  std::map<std::string, uint32_t> versions;
  for (int step = 0; step < 12; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const std::string node = nodes[rng() % nodes.size()];
    const auto before = Snapshot(pid);
    auto r = service_->RotateSubtreeKey(pid, node, "officer");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->node_version, ++versions[node] + 1);
    const auto after = Snapshot(pid);
    for (const auto& [what, bytes] : before) {
      const std::string path =
          what.substr(what.find(' ') + 1, what.rfind(' ') - what.find(' ') - 1);
      if (what.rfind("slots ", 0) == 0 && PathIsWithin(path, node)) {
        EXPECT_NE(after.at(what), bytes) << what;
      } else if (what != "node " + node) {
        EXPECT_EQ(after.at(what), bytes) << what;
      }
    }
    ExpectAllReadable(pid);
    Write(pid, kPaths[rng() % kPaths.size()]);
  }
  ExpectAllReadable(pid);
  // And after a restart (nothing is cached across calls).
  Open();
  ExpectAllReadable(pid);
}

TEST_F(KeyRotationTest, RefusalsChangeNothing) {
  const std::string pid = NewPatient();
  Write(pid, "internal-medicine/cardiology/notes");
  Write(pid, "internal-medicine/cardiology/ecg/letters", 200000);  // an object
  EXPECT_EQ(service_->RotateSubtreeKey(pid, "no-such-top/x", "officer").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->RotateSubtreeKey(pid, kRotated, "").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->RotateSubtreeKey(std::string(32, 'a'), kRotated, "officer").status().code(),
            StatusCode::kNotFound);
  // A damaged object below the node: the rotation fails as a whole (no
  // partial re-wrap), naming the version.
  const auto before = Snapshot(pid);
  const auto row = Row(pid, "internal-medicine/cardiology/ecg/letters", 1);
  ASSERT_EQ(row.storage, store::ContentStorage::kObject);
  ASSERT_TRUE(objects_->Delete(row.object_key).ok());
  auto damaged = service_->RotateSubtreeKey(pid, kRotated, "officer");
  ASSERT_FALSE(damaged.ok());
  EXPECT_NE(damaged.status().message().find("ecg/letters version 1"), std::string::npos)
      << damaged.status().ToString();
  EXPECT_TRUE(metadata_->ListNodeKeyVersions(pid)->empty());
  const auto other = Row(pid, "internal-medicine/cardiology/notes", 1);
  EXPECT_FALSE(metadata_->GetObjectKeySlots(other.object_key)->has_value());
  EXPECT_EQ(before.at("object internal-medicine/cardiology/notes 1"), ObjectBytes(other));
  // An erased patient cannot be rotated.
  ASSERT_TRUE(service_->ErasePatient(pid, "tester").ok());
  EXPECT_EQ(service_->RotateSubtreeKey(pid, kRotated, "officer").status().code(),
            StatusCode::kNotFound);
}

// A store's audit sink that calls a function inside the transaction.
class FunctionSink final : public store::AuditSink {
 public:
  explicit FunctionSink(std::function<Status(store::AuditEntries)> fn) : fn_(std::move(fn)) {}
  Status AppendEncodedInTransaction(store::Transaction&, store::AuditEntries entries) override {
    return fn_(entries);
  }

 private:
  std::function<Status(store::AuditEntries)> fn_;
};

// The rotation's ledger entry is built from a RecordEvent and commits in the
// rotation's transaction: when it cannot be written, nothing is rotated.
TEST_F(KeyRotationTest, LedgerEventAndItsFailure) {
  std::vector<std::string> events;
  bool fail_rotation_entry = true;
  RecordServiceOptions options;
  options.audit = [&](const RecordEvent& e) -> Result<Bytes> {
    events.push_back(std::string(e.action) + " " + std::string(e.path) + " " +
                     std::to_string(e.version) + " " + std::string(e.author));
    return ToBytes(std::string(e.action));
  };
  FunctionSink sink([&](store::AuditEntries entries) -> Status {
    for (const Bytes& e : entries) {
      if (AsString(e) == "key.subtree-rotated" && fail_rotation_entry) {
        return Status::Unavailable("ledger append failed");
      }
    }
    return Status::Ok();
  });
  store::SqliteOptions sqlite;
  sqlite.audit_sink = &sink;
  Open(options, sqlite);
  const std::string pid = NewPatient();
  Write(pid, "internal-medicine/cardiology/notes");
  const auto before = Snapshot(pid);
  auto failed = service_->RotateSubtreeKey(pid, kRotated, "officer");
  EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Snapshot(pid), before);
  ExpectAllReadable(pid);

  fail_rotation_entry = false;
  events.clear();
  ASSERT_TRUE(service_->RotateSubtreeKey(pid, kRotated, "officer").ok());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], "key.subtree-rotated internal-medicine/cardiology 2 officer");
  ExpectAllReadable(pid);
}

// A process killed inside the rotation's transaction (after every slot row
// is written, before the commit) leaves no trace: the next process sees the
// old version, reads everything, and can rotate.
TEST_F(KeyRotationTest, CrashInsideTheRotationLeavesNothing) {
  const std::string pid = NewPatient();
  for (const std::string& p : kPaths) {
    Write(pid, p);
  }
  const auto before = Snapshot(pid);
  service_.reset();
  objects_.reset();
  metadata_.reset();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    RecordServiceOptions options;
    options.audit = [](const RecordEvent&) -> Result<Bytes> { return ToBytes("entry"); };
    FunctionSink sink([](store::AuditEntries) -> Status {
      _exit(42);  // killed mid-transaction: no commit, no destructors
    });
    store::SqliteOptions sqlite;
    sqlite.audit_sink = &sink;
    auto md = store::OpenSqliteMetadataStore(dir_.path() / "metadata.db", sqlite);
    auto obj = store::OpenFileObjectStore(dir_.path() / "objects");
    if (!md.ok() || !obj.ok()) _exit(1);
    auto svc = CreateRecordService(keys_.get(), md->get(), obj->get(), options);
    if (!svc.ok()) _exit(2);
    (void)(*svc)->RotateSubtreeKey(pid, kRotated, "officer");
    _exit(3);  // the hook was not reached
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 42);
  Open();
  EXPECT_EQ(Snapshot(pid), before);
  ExpectAllReadable(pid);
  ASSERT_TRUE(service_->RotateSubtreeKey(pid, kRotated, "officer").ok());
  ExpectAllReadable(pid);
}

// Writers and rotations of one patient at the same time: no version is left
// sealed under a key that a concurrent rotation replaced.
TEST_F(KeyRotationTest, ConcurrentWritesAndRotations) {
  const std::string pid = NewPatient();
  constexpr int kWrites = 30;
  std::atomic<bool> failed{false};
  std::atomic<int> writers_done{0};
  std::vector<std::thread> writers;
  const std::vector<std::string> paths = {"internal-medicine/cardiology/notes",
                                          "internal-medicine/cardiology/ecg/letters",
                                          "internal-medicine/nephrology/notes"};
  for (const std::string& path : paths) {
    writers.emplace_back([&, path] {
      for (int i = 0; i < kWrites; ++i) {
        SegmentWrite w;
        w.kind = ContentKind::kText;
        w.content = ToBytes(path + " " + std::to_string(i));
        if (!service_->WriteSegment(pid, path, w, "tester").ok()) {
          failed = true;
        }
      }
      ++writers_done;
    });
  }
  // Rotations back to back for as long as the writers run.
  int rotations = 0;
  while (writers_done.load() < static_cast<int>(paths.size())) {
    auto r =
        service_->RotateSubtreeKey(pid, rotations % 2 == 0 ? "internal-medicine" : kRotated, "o");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ++rotations;
  }
  for (std::thread& t : writers) {
    t.join();
  }
  ASSERT_FALSE(failed);
  EXPECT_GE(rotations, 1);
  for (const std::string& path : paths) {
    for (uint64_t v = 1; v <= kWrites; ++v) {
      auto c = service_->ReadSegment(pid, path, v);
      ASSERT_TRUE(c.ok()) << path << " v" << v << ": " << c.status().ToString();
      EXPECT_EQ(AsString(c->content), path + " " + std::to_string(v - 1));
    }
  }
}

// ---------------------------------------------------------------------------
// PatientKeys: one unwrap of the root key per call that reads many segments.

TEST_F(KeyRotationTest, PatientKeysUnwrapTheRootOnce) {
  const std::string pid = NewPatient();
  for (const std::string& p : kPaths) {
    Write(pid, p);
    Write(pid, p);
  }
  ASSERT_TRUE(service_->RotateSubtreeKey(pid, kRotated, "officer").ok());
  const int n = static_cast<int>(expected_.size());

  keys_->unwraps = 0;
  for (const auto& [where, content] : expected_) {
    ASSERT_TRUE(service_->ReadSegment(pid, where.first, where.second).ok());
  }
  EXPECT_EQ(keys_->unwraps.load(), n);  // the per-segment path: one per read

  keys_->unwraps = 0;
  auto keys = service_->OpenPatientKeys(pid);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ((*keys)->patient_id(), pid);
  auto info = service_->GetPatientWith(**keys);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->demographics->family_name, "Fictive");
  for (const auto& [where, content] : expected_) {
    auto c = service_->ReadSegmentWith(**keys, where.first, where.second);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(c->content, content);
    auto r = service_->OpenSegmentWith(**keys, where.first, 0);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  EXPECT_EQ(keys_->unwraps.load(), 1);
}

TEST_F(KeyRotationTest, PatientKeysSadPaths) {
  const std::string pid = NewPatient();
  Write(pid, "health-status/problems");
  auto keys = service_->OpenPatientKeys(pid);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(service_->OpenPatientKeys("not-an-id").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->OpenPatientKeys(std::string(32, 'a')).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->ReadSegmentWith(**keys, "health-status/none", 0).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(service_->ReadSegmentWith(**keys, "bad path", 0).status().code(),
            StatusCode::kInvalidArgument);
  // Keys of another service instance are refused.
  auto other = CreateRecordService(keys_.get(), metadata_.get(), objects_.get(), {});
  ASSERT_TRUE(other.ok());
  EXPECT_EQ((*other)->ReadSegmentWith(**keys, "health-status/problems", 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ((*other)->GetPatientWith(**keys).status().code(), StatusCode::kInvalidArgument);
  // Erasure wins over keys opened before it.
  ASSERT_TRUE(service_->ErasePatient(pid, "tester").ok());
  EXPECT_EQ(service_->ReadSegmentWith(**keys, "health-status/problems", 0).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(service_->OpenPatientKeys(pid).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace medvault::record
