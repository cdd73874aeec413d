// FileObjectStore: durability protocol, damaged files and path safety, on
// real files in a temporary directory. The backend-neutral contract is in
// object_store_conformance_test.cc.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "common/ids.h"
#include "crypto/crypto.h"
#include "store/store.h"
#include "test_util.h"

namespace medvault::store {
namespace {

namespace fs = std::filesystem;
using medvault::testing::ReadFileBytes;
using medvault::testing::TempDir;
using medvault::testing::WriteFileBytes;

class FileObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_.path() / "store";
    Reopen();
  }

  void Reopen() {
    store_.reset();
    auto opened = OpenFileObjectStore(root_);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }

  fs::path ObjectPath(const std::string& key) const { return root_ / "objects" / key; }
  size_t TmpFileCount() const {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(root_ / ".tmp")) {
      ++n;
    }
    return n;
  }

  ObjectInfo MustPut(const std::string& key, const std::string& data) {
    auto info = store_->Put(key, AsBytes(data));
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    return info.ok() ? *info : ObjectInfo{};
  }

  std::vector<std::string> ListAll(std::string_view prefix) {
    std::vector<std::string> keys;
    Status st = store_->List(prefix, [&](const std::string& k) { keys.push_back(k); });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return keys;
  }

  TempDir dir_;
  fs::path root_;
  std::unique_ptr<ObjectStore> store_;
};

// The commit time the scrubber's orphan grace period reads: the file's
// mtime, NotFound for what is not an object, InvalidArgument for bad keys.
TEST_F(FileObjectStoreTest, CommittedAtIsTheFilesModificationTime) {
  const int64_t before = NowUnixMillis();
  MustPut("p/one", "bytes");
  auto at = store_->CommittedAtMs("p/one");
  ASSERT_TRUE(at.ok()) << at.status().ToString();
  EXPECT_GE(*at, before - 2000);  // file systems round times
  EXPECT_LE(*at, NowUnixMillis() + 2000);
  const auto old = std::filesystem::file_time_type::clock::now() - std::chrono::hours(3);
  fs::last_write_time(ObjectPath("p/one"), old);
  at = store_->CommittedAtMs("p/one");
  ASSERT_TRUE(at.ok());
  EXPECT_LT(*at, before - 2 * 3600 * 1000);
  EXPECT_EQ(store_->CommittedAtMs("p/none").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->CommittedAtMs("p").status().code(), StatusCode::kNotFound);  // a directory
  EXPECT_EQ(store_->CommittedAtMs("../x").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(FileObjectStoreTest, FlippedByteIsDataLoss) {
  const std::string data(100000, 'a');
  ObjectInfo info = MustPut("p/obj", data);
  std::string raw = ReadFileBytes(ObjectPath("p/obj"));
  raw[54321] ^= 0x01;
  WriteFileBytes(ObjectPath("p/obj"), raw);
  auto got = store_->Get("p/obj", info.sha256);
  EXPECT_EQ(got.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(got.status().message().find("p/obj"), std::string::npos);
  EXPECT_EQ(got.status().message().find("aaaa"), std::string::npos);
}

TEST_F(FileObjectStoreTest, TruncatedFileIsDataLoss) {
  ObjectInfo info = MustPut("p/obj", std::string(5000, 'b'));
  fs::resize_file(ObjectPath("p/obj"), 4999);
  EXPECT_EQ(store_->Get("p/obj", info.sha256).status().code(), StatusCode::kDataLoss);
  fs::resize_file(ObjectPath("p/obj"), 0);
  EXPECT_EQ(store_->Get("p/obj", info.sha256).status().code(), StatusCode::kDataLoss);
}

TEST_F(FileObjectStoreTest, SwappedObjectsAreDataLoss) {
  ObjectInfo a = MustPut("p/a", "content of a");
  ObjectInfo b = MustPut("p/b", "content of b, longer");
  fs::rename(ObjectPath("p/a"), ObjectPath("p/tmp-swap"));
  fs::rename(ObjectPath("p/b"), ObjectPath("p/a"));
  fs::rename(ObjectPath("p/tmp-swap"), ObjectPath("p/b"));
  EXPECT_EQ(store_->Get("p/a", a.sha256).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(store_->Get("p/b", b.sha256).status().code(), StatusCode::kDataLoss);
}

TEST_F(FileObjectStoreTest, RolledBackObjectIsDataLoss) {
  // Same size, so only the hash can tell the older content apart.
  MustPut("p/v1", "version-1 bytes");
  ObjectInfo v2 = MustPut("p/v2", "version-2 bytes");
  fs::copy_file(ObjectPath("p/v1"), ObjectPath("p/v2"), fs::copy_options::overwrite_existing);
  EXPECT_EQ(store_->Get("p/v2", v2.sha256).status().code(), StatusCode::kDataLoss);
}

TEST_F(FileObjectStoreTest, CommitMovesTheTempFileIntoPlace) {
  auto writer = store_->BeginPut("p/obj");
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  ASSERT_TRUE((*writer)->Append(AsBytes("first")).ok());
  EXPECT_EQ(TmpFileCount(), 1u);
  EXPECT_FALSE(fs::exists(ObjectPath("p/obj")));
  ASSERT_TRUE((*writer)->Commit().ok());
  EXPECT_EQ(TmpFileCount(), 0u);
  EXPECT_EQ(ReadFileBytes(ObjectPath("p/obj")), "first");
  EXPECT_EQ(fs::file_size(ObjectPath("p/obj")), 5u);
  // The loser of a race for a key leaves no temp file and no change.
  auto w1 = store_->BeginPut("p/race");
  auto w2 = store_->BeginPut("p/race");
  ASSERT_TRUE(w1.ok() && w2.ok());
  ASSERT_TRUE((*w1)->Append(AsBytes("one")).ok());
  ASSERT_TRUE((*w2)->Append(AsBytes("two")).ok());
  ASSERT_TRUE((*w1)->Commit().ok());
  EXPECT_EQ((*w2)->Commit().status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(ReadFileBytes(ObjectPath("p/race")), "one");
  EXPECT_EQ(TmpFileCount(), 0u);
  // An abandoned writer removes its temp file.
  {
    auto draft = store_->BeginPut("p/draft");
    ASSERT_TRUE(draft.ok());
    ASSERT_TRUE((*draft)->Append(AsBytes("unfinished")).ok());
    EXPECT_EQ(TmpFileCount(), 1u);
  }
  EXPECT_EQ(TmpFileCount(), 0u);
  EXPECT_FALSE(fs::exists(ObjectPath("p/draft")));
}

// Keys map to directories here: an object cannot sit below another object,
// and deleting a key prefix leaves its directory alone.
TEST_F(FileObjectStoreTest, ObjectsAndDirectoriesDoNotMix) {
  ObjectInfo info = MustPut("p/obj", "x");
  EXPECT_EQ(store_->Open("p/obj/below", info.sha256).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(store_->Put("p/obj/below", AsBytes("y")).ok());
  EXPECT_TRUE(store_->Delete("p").ok());
  EXPECT_TRUE(fs::is_directory(root_ / "objects" / "p"));
  EXPECT_TRUE(store_->Get("p/obj", info.sha256).ok());
}

TEST_F(FileObjectStoreTest, TempFilesArePrivate) {
  auto writer = store_->BeginPut("p/x");
  ASSERT_TRUE(writer.ok());
  for (const auto& e : fs::directory_iterator(root_ / ".tmp")) {
    EXPECT_EQ(e.status().permissions() & (fs::perms::group_all | fs::perms::others_all),
              fs::perms::none);
  }
}

TEST_F(FileObjectStoreTest, DoesNotFollowSymlinks) {
  const fs::path outside = dir_.path() / "outside";
  fs::create_directories(outside);
  const std::string secret = "outside secret";
  WriteFileBytes(outside / "secret", secret);
  const Bytes secret_hash = crypto::Sha256(AsBytes(secret));

  // A symlinked directory inside objects/.
  fs::create_directory_symlink(outside, root_ / "objects" / "evil");
  // Nothing the store writes is a symlink, so one is reported as tampering.
  auto opened = store_->Open("evil/secret", secret_hash);
  EXPECT_EQ(opened.status().code(), StatusCode::kDataLoss);
  EXPECT_FALSE(store_->Get("evil/secret", secret_hash).ok());
  EXPECT_EQ(store_->BeginPut("evil/new").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(store_->Put("evil/new", AsBytes("x")).ok());
  EXPECT_FALSE(store_->Put("evil/deeper/new", AsBytes("x")).ok());
  EXPECT_FALSE(fs::exists(outside / "new"));
  EXPECT_FALSE(fs::exists(outside / "deeper"));

  // A symlinked file.
  MustPut("p/real", "real");
  fs::create_symlink(outside / "secret", root_ / "objects" / "p" / "link");
  EXPECT_EQ(store_->Open("p/link", secret_hash).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(store_->Put("p/link", AsBytes("x")).status().code(), StatusCode::kAlreadyExists);

  // Neither is listed as an object.
  EXPECT_EQ(ListAll(""), std::vector<std::string>{"p/real"});

  // Delete removes the planted link, never its target.
  EXPECT_TRUE(store_->Delete("p/link").ok());
  EXPECT_FALSE(fs::is_symlink(root_ / "objects" / "p" / "link"));
  EXPECT_EQ(store_->Delete("evil/secret").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadFileBytes(outside / "secret"), secret);
}

TEST_F(FileObjectStoreTest, RefusesSymlinkedStoreDirectories) {
  const fs::path other = dir_.path() / "other";
  fs::create_directories(other / "objects");
  const fs::path root2 = dir_.path() / "store2";
  fs::create_directories(root2);
  fs::create_directory_symlink(other / "objects", root2 / "objects");
  EXPECT_FALSE(OpenFileObjectStore(root2).ok());
}

// Leftovers of a writer that died: unlocked and untouched for a while.
void MakeStale(const fs::path& p) {
  fs::last_write_time(p, fs::file_time_type::clock::now() - std::chrono::hours(1));
}

TEST_F(FileObjectStoreTest, StaleTempFilesRemovedAtOpen) {
  WriteFileBytes(root_ / ".tmp" / "0123.tmp", "half-written");
  WriteFileBytes(root_ / ".tmp" / "junk", "junk");
  MakeStale(root_ / ".tmp" / "0123.tmp");
  MakeStale(root_ / ".tmp" / "junk");
  EXPECT_EQ(TmpFileCount(), 2u);
  Reopen();
  EXPECT_EQ(TmpFileCount(), 0u);
}

// Issue 13: opening the store in another process (a CLI command beside the
// server) used to delete the server's in-flight temp files, so its uploads
// failed at commit. A writer's file is locked, and a young file is spared.
TEST_F(FileObjectStoreTest, OpeningBesideAWriterKeepsItsTempFile) {
  auto writer = store_->BeginPut("p/in-flight");
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  ASSERT_TRUE((*writer)->Append(AsBytes("first half, ")).ok());
  for (const auto& e : fs::directory_iterator(root_ / ".tmp")) {
    MakeStale(e.path());  // only its lock protects it now
  }
  WriteFileBytes(root_ / ".tmp" / "young.tmp", "a writer about to lock it");
  auto other = OpenFileObjectStore(root_);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_EQ(TmpFileCount(), 2u) << "the other open removed an in-flight temp file";
  ASSERT_TRUE((*writer)->Append(AsBytes("second half")).ok());
  auto info = (*writer)->Commit();
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  auto got = (*other)->Get("p/in-flight", info->sha256);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(AsString(*got), "first half, second half");
}

TEST_F(FileObjectStoreTest, WriteErrorIsLatchedUntilReopen) {
  // Make write() fail with EFBIG by lowering the file size limit.
  struct sigaction ignore = {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction old_action = {};
  ASSERT_EQ(sigaction(SIGXFSZ, &ignore, &old_action), 0);
  struct rlimit old_limit = {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto writer = store_->BeginPut("p/big");
  ASSERT_TRUE(writer.ok());
  struct rlimit small = old_limit;
  small.rlim_cur = 1024;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  const Status append = (*writer)->Append(AsBytes(std::string(4096, 'z')));
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
  ASSERT_EQ(sigaction(SIGXFSZ, &old_action, nullptr), 0);

  EXPECT_EQ(append.code(), StatusCode::kIOError);
  EXPECT_EQ((*writer)->Commit().status().code(), StatusCode::kFailedPrecondition);
  writer->reset();
  EXPECT_EQ(TmpFileCount(), 0u);
  // Latched: every write fails, reads still work.
  EXPECT_EQ(store_->Put("p/after", AsBytes("x")).status().code(), StatusCode::kIOError);
  EXPECT_EQ(store_->Delete("p/any").code(), StatusCode::kIOError);
  EXPECT_EQ(store_->Open("p/none", Bytes(32)).status().code(), StatusCode::kNotFound);
  Reopen();
  MustPut("p/after", "x");
}

}  // namespace
}  // namespace medvault::store
