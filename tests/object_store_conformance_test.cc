// The ObjectStore contract (store/store.h), run against every backend. A new
// backend (Swift, S3) adds one ObjectStoreBackend to kBackends below; what
// only one backend can show (file modes, symlinks, temp files, damaged
// files) stays in that backend's own test (file_object_store_test.cc).
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "common/ids.h"
#include "crypto/crypto.h"
#include "store/store.h"
#include "test_util.h"

namespace medvault::store {
namespace {

namespace fs = std::filesystem;

// SHA-256 of the empty string.
constexpr char kEmptySha256Hex[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// Absent: NotFound, or FailedPrecondition from a store that records no
// commit times at all.
bool NoCommitTime(const Result<int64_t>& at) {
  return at.status().code() == StatusCode::kNotFound ||
         at.status().code() == StatusCode::kFailedPrecondition;
}

struct ObjectStoreBackend {
  std::string name;
  // Opens the store kept under `dir` (a fresh temporary directory per test);
  // opening the same `dir` again is a reopen.
  std::function<Result<std::unique_ptr<ObjectStore>>(const fs::path& dir)> open;
  // Whether a reopen sees what was committed before.
  bool persistent = false;
};

// GoogleTest prints a parameter by its name (test names stay stable).
void PrintTo(const ObjectStoreBackend& backend, std::ostream* os) { *os << backend.name; }

const ObjectStoreBackend kBackends[] = {
    {"file", [](const fs::path& dir) { return OpenFileObjectStore(dir / "objects-root"); }, true},
    {"memory",
     [](const fs::path&) -> Result<std::unique_ptr<ObjectStore>> { return NewMemoryObjectStore(); },
     false},
};

class ObjectStoreConformance : public ::testing::TestWithParam<ObjectStoreBackend> {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    store_.reset();
    auto opened = GetParam().open(dir_.path());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
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

  medvault::testing::TempDir dir_;
  std::unique_ptr<ObjectStore> store_;
};

TEST_P(ObjectStoreConformance, PutGetConveniences) {
  const std::string data(200 * 1024 + 7, 'q');  // several internal read chunks
  auto info = store_->Put("p/one", AsBytes(data));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->key, "p/one");
  EXPECT_EQ(info->size, data.size());
  EXPECT_EQ(info->sha256, crypto::Sha256(AsBytes(data)));
  auto got = store_->Get("p/one", info->sha256);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(AsString(*got), data);

  Bytes wrong = info->sha256;
  wrong[0] ^= 1;
  EXPECT_EQ(store_->Get("p/one", wrong).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(store_->Get("p/none", wrong).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Put("P/one", AsBytes(data)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Put("p/one", AsBytes(data)).status().code(), StatusCode::kAlreadyExists);
}

TEST_P(ObjectStoreConformance, EmptyObjectRoundTrip) {
  ObjectInfo info = MustPut("p/empty", "");
  EXPECT_EQ(info.size, 0u);
  EXPECT_EQ(ToHex(info.sha256), kEmptySha256Hex);
  auto got = store_->Get("p/empty", info.sha256);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->empty());
  // Even an empty object is checked against its hash.
  EXPECT_EQ(store_->Get("p/empty", crypto::Sha256(AsBytes("x"))).status().code(),
            StatusCode::kDataLoss);
}

TEST_P(ObjectStoreConformance, LargeObjectStreamsInOddPieces) {
  std::string data(5 * 1024 * 1024, '\0');
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
  }
  auto writer = store_->BeginPut("patient/large");
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  const size_t pieces[] = {1, 7, 4093, 65537, 100003, 13};
  size_t pos = 0;
  for (size_t i = 0; pos < data.size(); ++i) {
    const size_t n = std::min(pieces[i % 6], data.size() - pos);
    ASSERT_TRUE((*writer)->Append(AsBytes(std::string_view(data).substr(pos, n))).ok());
    pos += n;
  }
  // Nothing visible before Commit.
  EXPECT_EQ(store_->Open("patient/large", crypto::Sha256(AsBytes(data))).status().code(),
            StatusCode::kNotFound);
  EXPECT_TRUE(ListAll("").empty());
  auto info = (*writer)->Commit();
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, data.size());
  EXPECT_EQ(info->sha256, crypto::Sha256(AsBytes(data)));
  // A second Commit or Append is refused.
  EXPECT_EQ((*writer)->Append(AsBytes("x")).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ((*writer)->Commit().status().code(), StatusCode::kFailedPrecondition);

  auto reader = store_->Open("patient/large", info->sha256);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->size(), data.size());
  std::string back;
  std::vector<uint8_t> buf(70001);
  while (true) {
    auto n = (*reader)->Read(std::span<uint8_t>(buf.data(), 1 + back.size() % buf.size()));
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    if (*n == 0) {
      break;
    }
    back.append(reinterpret_cast<const char*>(buf.data()), *n);
  }
  EXPECT_EQ(back, data);
  // Reading past the end keeps returning 0.
  auto again = (*reader)->Read(std::span<uint8_t>(buf));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u);
}

// What the metadata says an object is must be what comes back: another
// object's hash (objects swapped under their keys), an older content of the
// same size, a changed byte: each is DataLoss, at the end of the stream, and
// the message names the key but no content.
TEST_P(ObjectStoreConformance, HashMismatchIsDataLoss) {
  ObjectInfo a = MustPut("p/a", "content of a");
  ObjectInfo b = MustPut("p/b", "content of b, longer");
  ObjectInfo v1 = MustPut("p/v1", "version-1 bytes");
  ObjectInfo v2 = MustPut("p/v2", "version-2 bytes");
  EXPECT_EQ(store_->Get("p/a", b.sha256).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(store_->Get("p/b", a.sha256).status().code(), StatusCode::kDataLoss);
  auto got = store_->Get("p/v2", v1.sha256);
  EXPECT_EQ(got.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(got.status().message().find("p/v2"), std::string::npos) << got.status().message();
  EXPECT_EQ(got.status().message().find("version-"), std::string::npos);

  // Streaming: the bytes come out, the verdict comes at the end, and it sticks.
  auto reader = store_->Open("p/v2", v1.sha256);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  std::vector<uint8_t> buf(4096);
  Result<size_t> n = (*reader)->Read(std::span<uint8_t>(buf));
  while (n.ok() && *n > 0) {
    n = (*reader)->Read(std::span<uint8_t>(buf));
  }
  EXPECT_EQ(n.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ((*reader)->Read(std::span<uint8_t>(buf)).status().code(), StatusCode::kDataLoss);
  // The right hashes still read.
  EXPECT_TRUE(store_->Get("p/v2", v2.sha256).ok());
}

TEST_P(ObjectStoreConformance, UncommittedWriterLeavesNothing) {
  {
    auto writer = store_->BeginPut("p/draft");
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Append(AsBytes("unfinished")).ok());
  }
  EXPECT_EQ(store_->Open("p/draft", Bytes(32)).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(NoCommitTime(store_->CommittedAtMs("p/draft")));
  EXPECT_TRUE(ListAll("").empty());
  // The key is still free.
  MustPut("p/draft", "final");
}

TEST_P(ObjectStoreConformance, ObjectsAreImmutable) {
  ObjectInfo info = MustPut("p/obj", "first");
  EXPECT_EQ(store_->Put("p/obj", AsBytes("second")).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->BeginPut("p/obj").status().code(), StatusCode::kAlreadyExists);
  // Two writers racing for one key: the second commit must not replace.
  auto w1 = store_->BeginPut("p/race");
  auto w2 = store_->BeginPut("p/race");
  ASSERT_TRUE(w1.ok() && w2.ok());
  ASSERT_TRUE((*w1)->Append(AsBytes("one")).ok());
  ASSERT_TRUE((*w2)->Append(AsBytes("two")).ok());
  auto c1 = (*w1)->Commit();
  ASSERT_TRUE(c1.ok()) << c1.status().ToString();
  EXPECT_EQ((*w2)->Commit().status().code(), StatusCode::kAlreadyExists);
  auto race = store_->Get("p/race", c1->sha256);
  ASSERT_TRUE(race.ok()) << race.status().ToString();
  EXPECT_EQ(AsString(*race), "one");
  auto got = store_->Get("p/obj", info.sha256);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(AsString(*got), "first");
  EXPECT_EQ(ListAll(""), (std::vector<std::string>{"p/obj", "p/race"}));
}

// N threads committing the same keys at once: exactly one wins each key,
// the others get AlreadyExists, and the winner's bytes are what is stored.
TEST_P(ObjectStoreConformance, ConcurrentCommitsOfOneKeyHaveOneWinner) {
  constexpr int kThreads = 4;
  constexpr int kKeys = 20;
  std::atomic<int> wins{0};
  std::atomic<int> other_errors{0};
  std::vector<std::string> winner(kKeys);
  std::mutex winner_mu;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kKeys; ++k) {
        const std::string key = "shared/k" + std::to_string(k);
        const std::string data = "from thread " + std::to_string(t);
        auto writer = store_->BeginPut(key);
        if (!writer.ok()) {
          // Taken already: refused early.
          if (writer.status().code() != StatusCode::kAlreadyExists) {
            other_errors.fetch_add(1);
          }
          continue;
        }
        if (!(*writer)->Append(AsBytes(data)).ok()) {
          other_errors.fetch_add(1);
          continue;
        }
        auto info = (*writer)->Commit();
        if (info.ok()) {
          wins.fetch_add(1);
          std::lock_guard<std::mutex> lock(winner_mu);
          winner[static_cast<size_t>(k)] = data;
        } else if (info.status().code() != StatusCode::kAlreadyExists) {
          other_errors.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(other_errors.load(), 0);
  EXPECT_EQ(wins.load(), kKeys);
  for (int k = 0; k < kKeys; ++k) {
    const std::string& data = winner[static_cast<size_t>(k)];
    auto got = store_->Get("shared/k" + std::to_string(k), crypto::Sha256(AsBytes(data)));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(AsString(*got), data);
  }
}

TEST_P(ObjectStoreConformance, ConcurrentPutsOfDistinctKeys) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const std::string key =
            "dir" + std::to_string(i % 5) + "/t" + std::to_string(t) + "-" + std::to_string(i);
        auto info = store_->Put(key, AsBytes(key));
        EXPECT_TRUE(info.ok()) << info.status().ToString();
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(ListAll("").size(), 100u);
  EXPECT_EQ(ListAll("dir3/").size(), 20u);
}

TEST_P(ObjectStoreConformance, RejectsBadArguments) {
  EXPECT_EQ(store_->BeginPut("../escape").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->BeginPut("a//b").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->BeginPut("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->BeginPut(std::string(513, 'x')).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Open("../escape", Bytes(32)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Delete("/abs").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CommittedAtMs("../x").status().code(), StatusCode::kInvalidArgument);
  ObjectInfo info = MustPut("p/obj", "x");
  EXPECT_EQ(store_->Open("p/obj", Bytes(31)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Open("p/obj", Bytes(33)).status().code(), StatusCode::kInvalidArgument);
  auto reader = store_->Open("p/obj", info.sha256);
  ASSERT_TRUE(reader.ok());
  // A zero-length buffer would make 0 ambiguous with the verified end.
  EXPECT_EQ((*reader)->Read(std::span<uint8_t>()).status().code(), StatusCode::kInvalidArgument);
  // A key prefix is not an object.
  EXPECT_EQ(store_->Open("p", info.sha256).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(ListAll("").size() == 1u);
}

TEST_P(ObjectStoreConformance, ListWalksKeysInOrder) {
  MustPut("b/1", "x");
  MustPut("a/2", "x");
  MustPut("a/1", "x");
  MustPut("ab/1", "x");
  MustPut("a/deep/er", "x");
  MustPut("top", "x");
  EXPECT_EQ(ListAll(""),
            (std::vector<std::string>{"a/1", "a/2", "a/deep/er", "ab/1", "b/1", "top"}));
  EXPECT_EQ(ListAll("a/"), (std::vector<std::string>{"a/1", "a/2", "a/deep/er"}));
  EXPECT_EQ(ListAll("a"), (std::vector<std::string>{"a/1", "a/2", "a/deep/er", "ab/1"}));
  EXPECT_EQ(ListAll("a/deep"), (std::vector<std::string>{"a/deep/er"}));
  EXPECT_TRUE(ListAll("zzz").empty());
}

TEST_P(ObjectStoreConformance, DeleteIsIdempotent) {
  ObjectInfo info = MustPut("p/gone", "bye");
  MustPut("p/kept", "stay");
  EXPECT_TRUE(store_->Delete("p/gone").ok());
  EXPECT_EQ(store_->Open("p/gone", info.sha256).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(NoCommitTime(store_->CommittedAtMs("p/gone")));
  EXPECT_TRUE(store_->Delete("p/gone").ok());
  EXPECT_TRUE(store_->Delete("never/was/there").ok());
  EXPECT_TRUE(store_->Delete("p").ok());  // a key prefix is not an object
  EXPECT_EQ(ListAll(""), std::vector<std::string>{"p/kept"});
  // A deleted key can be written again (erasure, then a new object).
  MustPut("p/gone", "again");
}

// Commit times let the scrubber spare young orphans: when a store records
// them, they are the commit's time; stores that cannot tell say so.
TEST_P(ObjectStoreConformance, CommittedAtIsTheCommitTime) {
  const int64_t before = NowUnixMillis();
  MustPut("p/one", "bytes");
  const int64_t after = NowUnixMillis();
  auto at = store_->CommittedAtMs("p/one");
  if (!at.ok()) {
    EXPECT_EQ(at.status().code(), StatusCode::kFailedPrecondition) << at.status().ToString();
    return;
  }
  EXPECT_GE(*at, before - 2000);  // file systems round times
  EXPECT_LE(*at, after + 2000);
  EXPECT_EQ(store_->CommittedAtMs("p/none").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->CommittedAtMs("p").status().code(), StatusCode::kNotFound);  // a prefix
}

TEST_P(ObjectStoreConformance, DataSurvivesReopen) {
  if (!GetParam().persistent) {
    GTEST_SKIP() << GetParam().name << " keeps nothing across a reopen";
  }
  ObjectInfo info = MustPut("p/keep", "kept");
  Reopen();
  auto got = store_->Get("p/keep", info.sha256);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(AsString(*got), "kept");
  EXPECT_EQ(store_->Put("p/keep", AsBytes("other")).status().code(), StatusCode::kAlreadyExists);
}

// Writers and readers handed out stay usable after the store object is gone.
TEST_P(ObjectStoreConformance, WritersAndReadersOutliveTheStoreObject) {
  ObjectInfo info = MustPut("p/read", "read me");
  auto writer = store_->BeginPut("p/late");
  ASSERT_TRUE(writer.ok());
  auto reader = store_->Open("p/read", info.sha256);
  ASSERT_TRUE(reader.ok());
  store_.reset();
  ASSERT_TRUE((*writer)->Append(AsBytes("late")).ok());
  EXPECT_TRUE((*writer)->Commit().ok());
  std::vector<uint8_t> buf(64);
  auto n = (*reader)->Read(std::span<uint8_t>(buf));
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), *n), "read me");
  n = (*reader)->Read(std::span<uint8_t>(buf));
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, ObjectStoreConformance, ::testing::ValuesIn(kBackends),
                         [](const ::testing::TestParamInfo<ObjectStoreBackend>& param_info) {
                           return param_info.param.name;
                         });

}  // namespace
}  // namespace medvault::store
