// What any ledger backend must show, from outside (ledger/ledger.h): appends
// grow the log, the root is the RFC 9162 root of the encoded entries,
// inclusion and consistency proofs verify, entries read back as appended,
// a refused batch leaves no trace, concurrent appends all land once, and a
// reopen keeps everything. Deliberately thin: checkpoints, witnesses, epochs
// and tampering are the SQLite log's own tests (sqlite_ledger_test.cc).
// A backend is a factory; once the log is an interface, `Log` below becomes
// it and a PostgreSQL backend adds one LedgerBackend.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "crypto/crypto.h"
#include "ledger/ledger.h"
#include "test_util.h"

namespace medvault::ledger {
namespace {

namespace fs = std::filesystem;

using Log = SqliteLedger;

struct LedgerBackend {
  std::string name;
  // Opens the log kept under `dir` (a fresh temporary directory per test);
  // opening the same `dir` again is a reopen.
  std::function<Result<std::unique_ptr<Log>>(const fs::path& dir)> open;
};

// GoogleTest prints a parameter by its name (test names stay stable).
void PrintTo(const LedgerBackend& backend, std::ostream* os) { *os << backend.name; }

const LedgerBackend kBackends[] = {
    {"sqlite", [](const fs::path& dir) { return SqliteLedger::Open(dir / "metadata.db"); }},
};

Entry MakeEntry(uint64_t i) {
  Entry e;
  e.time_ms = 1763751600000 + static_cast<int64_t>(i);
  e.request_id = "req-" + std::to_string(i);
  e.actor = "0123456789abcdef0123456789abcdef";
  e.action = std::string(kActionSegmentWrite);
  e.effect = std::string(kEffectDone);
  e.resource = {"segment", "internal-medicine/cardiology"};
  e.details = {{"n", std::to_string(i)}};
  return e;
}

class LedgerConformance : public ::testing::TestWithParam<LedgerBackend> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::InitCrypto().ok());
    Reopen();
  }
  void Reopen() {
    log_.reset();
    auto opened = GetParam().open(dir_.path());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    log_ = std::move(opened).value();
  }
  // Appends entries [from, from + count) in one call and mirrors them in
  // the reference tree.
  void Append(uint64_t from, uint64_t count) {
    std::vector<Entry> batch;
    for (uint64_t i = from; i < from + count; ++i) {
      batch.push_back(MakeEntry(i));
      expected_.Append(LeafHash(Encode(batch.back())));
    }
    Status st = log_->Append(std::move(batch));
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  medvault::testing::TempDir dir_;
  std::unique_ptr<Log> log_;
  MerkleTree expected_;  // what the log must hash to
};

TEST_P(LedgerConformance, AppendGrowsTheLogAndEntriesReadBack) {
  EXPECT_EQ(log_->Size(), 0u);
  EXPECT_EQ(log_->Root(), EmptyRoot());
  EXPECT_TRUE(log_->Append({}).ok());
  EXPECT_EQ(log_->Size(), 0u);
  Append(0, 1);
  Append(1, 9);
  Append(10, 3);
  EXPECT_EQ(log_->Size(), 13u);
  EXPECT_EQ(log_->Root(), expected_.Root());
  for (uint64_t i = 0; i < 13; ++i) {
    auto rec = log_->GetEntry(i);
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    EXPECT_EQ(rec->seq, i);
    EXPECT_EQ(rec->entry, MakeEntry(i));
    EXPECT_EQ(rec->bytes, Encode(MakeEntry(i)));
    EXPECT_EQ(rec->leaf_hash, LeafHash(rec->bytes));
  }
  EXPECT_EQ(log_->GetEntry(13).status().code(), StatusCode::kNotFound);
}

TEST_P(LedgerConformance, ProofsVerifyAgainstTheRoots) {
  Append(0, 21);
  for (uint64_t size : {1u, 2u, 8u, 13u, 21u}) {
    auto root = log_->RootAt(size);
    ASSERT_TRUE(root.ok()) << root.status().ToString();
    EXPECT_EQ(*root, *expected_.Root(size));
    for (uint64_t i = 0; i < size; ++i) {
      auto proof = log_->InclusionProof(i, size);
      ASSERT_TRUE(proof.ok()) << proof.status().ToString();
      EXPECT_TRUE(VerifyInclusion(LeafHash(Encode(MakeEntry(i))), i, size, *proof, *root).ok());
      // The proof does not prove another entry.
      EXPECT_FALSE(
          VerifyInclusion(LeafHash(Encode(MakeEntry(i + 100))), i, size, *proof, *root).ok());
    }
    for (uint64_t old = 1; old <= size; ++old) {
      auto proof = log_->ConsistencyProof(old, size);
      ASSERT_TRUE(proof.ok()) << proof.status().ToString();
      EXPECT_TRUE(VerifyConsistency(old, size, *expected_.Root(old), *root, *proof).ok());
    }
  }
  EXPECT_EQ(log_->InclusionProof(21, 21).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log_->InclusionProof(0, 22).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log_->ConsistencyProof(5, 22).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log_->ConsistencyProof(6, 5).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(LedgerConformance, AnInvalidEntryRefusesItsWholeBatch) {
  Append(0, 2);
  std::vector<Entry> batch = {MakeEntry(2), MakeEntry(3), MakeEntry(4)};
  batch[1].actor.clear();
  EXPECT_EQ(log_->Append(batch).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(log_->Sync().ok());
  EXPECT_EQ(log_->Size(), 2u);
  EXPECT_EQ(log_->Root(), expected_.Root());
  EXPECT_EQ(log_->GetEntry(2).status().code(), StatusCode::kNotFound);
  Append(2, 1);  // the log goes on where it was
  EXPECT_EQ(log_->Root(), expected_.Root());
}

TEST_P(LedgerConformance, ConcurrentAppendsAllLandOnce) {
  constexpr int kThreads = 4;
  constexpr int kBatches = 10;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        const uint64_t first = static_cast<uint64_t>((t * kBatches + b) * 2);
        Status st = log_->Append({MakeEntry(first), MakeEntry(first + 1)});
        EXPECT_TRUE(st.ok()) << st.ToString();
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  constexpr uint64_t kTotal = kThreads * kBatches * 2;
  ASSERT_TRUE(log_->Sync().ok());
  ASSERT_EQ(log_->Size(), kTotal);
  std::set<std::string> seen;
  MerkleTree tree;
  for (uint64_t i = 0; i < kTotal; ++i) {
    auto rec = log_->GetEntry(i);
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    seen.insert(rec->entry.details.at("n"));
    tree.Append(rec->leaf_hash);
    if (i % 2 == 1) {
      // A batch stays together, in order.
      auto prev = log_->GetEntry(i - 1);
      ASSERT_TRUE(prev.ok());
      EXPECT_EQ(std::stoull(rec->entry.details.at("n")),
                std::stoull(prev->entry.details.at("n")) + 1);
    }
  }
  EXPECT_EQ(seen.size(), kTotal);
  EXPECT_EQ(log_->Root(), tree.Root());
}

TEST_P(LedgerConformance, ReopenKeepsEverythingAndTheLogGoesOn) {
  Append(0, 11);
  const Hash old_root = log_->Root();
  Reopen();
  EXPECT_EQ(log_->Size(), 11u);
  EXPECT_EQ(log_->Root(), old_root);
  auto rec = log_->GetEntry(7);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->entry, MakeEntry(7));
  Append(11, 5);
  EXPECT_EQ(log_->Root(), expected_.Root());
  // What a client saw before the reopen is consistent with what came after.
  auto proof = log_->ConsistencyProof(11, 16);
  ASSERT_TRUE(proof.ok()) << proof.status().ToString();
  EXPECT_TRUE(VerifyConsistency(11, 16, old_root, log_->Root(), *proof).ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, LedgerConformance, ::testing::ValuesIn(kBackends),
                         [](const ::testing::TestParamInfo<LedgerBackend>& param_info) {
                           return param_info.param.name;
                         });

}  // namespace
}  // namespace medvault::ledger
