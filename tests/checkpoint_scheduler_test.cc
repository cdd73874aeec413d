// CheckpointScheduler on a real ledger: checkpoints are signed after N
// entries, after T, and at Stop(), so no unsigned tail is left to rewrite
// (issue 13): an entry rewritten after a clean shutdown (leaf hash
// recomputed) is caught at the next Open.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "crypto/crypto.h"
#include "ledger/ledger.h"
#include "test_util.h"

namespace medvault::ledger {
namespace {

namespace fs = std::filesystem;
using medvault::testing::TempDir;
using std::chrono::milliseconds;

constexpr std::string_view kOrigin = "medvault.example/ledger";

Entry MakeEntry(uint64_t i) {
  Entry e;
  e.time_ms = 1763751600000 + static_cast<int64_t>(i);
  e.actor = "system";
  e.action = std::string(kActionDecision);
  e.effect = std::string(kEffectPermit);
  e.details = {{"n", std::to_string(i)}};
  return e;
}

std::vector<Entry> MakeEntries(uint64_t from, uint64_t count) {
  std::vector<Entry> out;
  for (uint64_t i = from; i < from + count; ++i) {
    out.push_back(MakeEntry(i));
  }
  return out;
}

class CheckpointSchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::InitCrypto().ok());
    db_ = dir_.path() / "metadata.db";
    auto l = SqliteLedger::Open(db_);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    ledger_ = std::move(*l);
    auto s = Signer::FromSeed(kOrigin, Bytes(kSeedSize, 7));
    ASSERT_TRUE(s.ok());
    signer_ = std::make_unique<Signer>(std::move(*s));
  }

  uint64_t LatestSize() {
    auto c = ledger_->LatestCheckpoint();
    return c.ok() ? c->size : 0;
  }

  // Waits (bounded, generously) until the newest checkpoint has `size`.
  bool WaitForCheckpoint(uint64_t size) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (LatestSize() == size) {
        return true;
      }
      std::this_thread::sleep_for(milliseconds(5));
    }
    return false;
  }

  TempDir dir_;
  fs::path db_;
  std::unique_ptr<SqliteLedger> ledger_;
  std::unique_ptr<Signer> signer_;
};

TEST_F(CheckpointSchedulerTest, SignsEveryNEntries) {
  AutoCheckpointOptions o;
  o.interval = milliseconds(0);  // count only
  o.every_entries = 5;
  o.poll = milliseconds(5);
  std::vector<uint64_t> pushed;
  std::mutex mu;
  o.on_checkpoint = [&](const CheckpointRecord& r) {
    std::lock_guard<std::mutex> lock(mu);
    pushed.push_back(r.size);
  };
  CheckpointScheduler scheduler(ledger_.get(), signer_.get(), std::string(kOrigin), o);
  ASSERT_TRUE(ledger_->Append(MakeEntries(0, 5)).ok());
  ASSERT_TRUE(WaitForCheckpoint(5));
  // Below the count and without a time trigger: the next one is the
  // shutdown checkpoint.
  ASSERT_TRUE(ledger_->Append(MakeEntries(5, 3)).ok());
  ASSERT_TRUE(scheduler.Stop().ok());
  EXPECT_EQ(LatestSize(), 8u);
  EXPECT_EQ(scheduler.signed_count(), 2u);
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(pushed, (std::vector<uint64_t>{5, 8}));
  }
  auto note = ledger_->LatestCheckpoint();
  ASSERT_TRUE(note.ok());
  auto cp = VerifyCheckpoint(note->note, signer_->Verifier());
  ASSERT_TRUE(cp.ok()) << cp.status().ToString();
  EXPECT_EQ(cp->size, 8u);
  EXPECT_EQ(cp->root, ledger_->Root());
  // Stop is idempotent and signs nothing new.
  EXPECT_TRUE(scheduler.Stop().ok());
  EXPECT_EQ(scheduler.signed_count(), 2u);
}

TEST_F(CheckpointSchedulerTest, SignsAfterTheInterval) {
  AutoCheckpointOptions o;
  o.interval = milliseconds(30);
  o.every_entries = 0;  // time only
  o.poll = milliseconds(5);
  CheckpointScheduler scheduler(ledger_.get(), signer_.get(), std::string(kOrigin), o);
  ASSERT_TRUE(ledger_->Append(MakeEntries(0, 1)).ok());
  EXPECT_TRUE(WaitForCheckpoint(1));
  ASSERT_TRUE(ledger_->Append(MakeEntries(1, 2)).ok());
  EXPECT_TRUE(WaitForCheckpoint(3));
  ASSERT_TRUE(scheduler.Stop().ok());
  EXPECT_EQ(scheduler.signed_count(), 2u) << "nothing appended since: no shutdown checkpoint";
}

TEST_F(CheckpointSchedulerTest, NothingAppendedSignsNothing) {
  AutoCheckpointOptions o;
  o.interval = milliseconds(1);
  o.poll = milliseconds(1);
  CheckpointScheduler scheduler(ledger_.get(), signer_.get(), std::string(kOrigin), o);
  std::this_thread::sleep_for(milliseconds(30));
  ASSERT_TRUE(scheduler.Stop().ok());
  EXPECT_EQ(scheduler.signed_count(), 0u);
  EXPECT_EQ(ledger_->LatestCheckpoint().status().code(), StatusCode::kNotFound);
}

// Without the shutdown checkpoint, the last entries could be rewritten with
// their leaf hash recomputed and the next Open would accept them.
TEST_F(CheckpointSchedulerTest, NoUnsignedTailAfterShutdown) {
  AutoCheckpointOptions o;
  o.interval = std::chrono::hours(1);
  o.every_entries = 1000;
  {
    CheckpointScheduler scheduler(ledger_.get(), signer_.get(), std::string(kOrigin), o);
    ASSERT_TRUE(ledger_->Append(MakeEntries(0, 4)).ok());
  }  // the destructor stops and signs
  EXPECT_EQ(LatestSize(), 4u);
  ledger_.reset();

  Entry forged = MakeEntry(3);
  forged.details["n"] = "forged";
  const Bytes bytes = Encode(forged);
  const Hash leaf = LeafHash(bytes);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(
      sqlite3_prepare_v2(db, "UPDATE ledger_entries SET entry = ?1, leaf_hash = ?2 WHERE seq = 3",
                         -1, &s, nullptr),
      SQLITE_OK);
  sqlite3_bind_blob(s, 1, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
  sqlite3_bind_blob(s, 2, leaf.data(), static_cast<int>(leaf.size()), SQLITE_TRANSIENT);
  EXPECT_EQ(sqlite3_step(s), SQLITE_DONE);
  sqlite3_finalize(s);
  sqlite3_close(db);

  auto reopened = SqliteLedger::Open(db_);
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(reopened.status().message().find("checkpoint at size 4"), std::string::npos)
      << reopened.status().ToString();
}

}  // namespace
}  // namespace medvault::ledger
