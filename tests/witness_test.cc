// The witness: growing checkpoints are cosigned; forks, rewritten history,
// shrinking logs and bad signatures are refused with the reason; the state
// survives a restart.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/ids.h"
#include "crypto_test_util.h"
#include "ledger/ledger.h"
#include "test_util.h"

namespace medvault::ledger {
namespace {

namespace fs = std::filesystem;
using medvault::testing::ReadFileBytes;
using medvault::testing::TempDir;
using medvault::testing::WriteFileBytes;

constexpr std::string_view kOrigin = "medvault.example/ledger";

Signer MakeSigner(std::string_view name, uint8_t seed_byte) {
  auto s = Signer::FromSeed(name, Bytes(kSeedSize, seed_byte));
  EXPECT_TRUE(s.ok());
  return std::move(s).value();
}

// A log: a tree over "entry <i>" leaves (with an optional rewritten leaf) and
// its signing key.
class TestLog {
 public:
  explicit TestLog(uint8_t seed = 1) : signer_(MakeSigner(kOrigin, seed)) {}

  void GrowTo(uint64_t n, std::optional<uint64_t> rewritten = std::nullopt) {
    while (tree_.Size() < n) {
      const uint64_t i = tree_.Size();
      std::string leaf = "entry " + std::to_string(i);
      if (rewritten.has_value() && *rewritten == i) {
        leaf += " (rewritten)";
      }
      tree_.Append(LeafHash(ToBytes(leaf)));
    }
  }

  std::string CheckpointAt(uint64_t size) const {
    Checkpoint cp;
    cp.origin = std::string(kOrigin);
    cp.size = size;
    cp.root = *tree_.Root(size);
    return *SignCheckpoint(signer_, cp);
  }

  std::vector<Hash> Proof(uint64_t from, uint64_t to) const {
    return *tree_.ConsistencyProof(from, to);
  }

  Hash RootAt(uint64_t size) const { return *tree_.Root(size); }
  VerifierKey Verifier() const { return signer_.Verifier(); }
  const Signer& signer() const { return signer_; }

 private:
  Signer signer_;
  MerkleTree tree_;
};

class WitnessTest : public ::testing::Test {
 protected:
  std::unique_ptr<Witness> Open(int64_t* clock = nullptr) {
    WitnessOptions options;
    if (clock != nullptr) {
      options.now_unix_seconds = [clock] { return *clock; };
    }
    auto w =
        Witness::Open(dir_.path(), log_.Verifier(), MakeSigner("witness.example/w1", 42), options);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    return w.ok() ? std::move(w).value() : nullptr;
  }

  // Observes `size` of log_ after `from`, expecting success.
  std::string Accept(Witness& w, uint64_t from, uint64_t size) {
    auto line = w.Observe(log_.CheckpointAt(size), log_.Proof(from, size));
    EXPECT_TRUE(line.ok()) << from << "->" << size << ": " << line.status().ToString();
    return line.ok() ? *line : std::string();
  }

  std::string Body(uint64_t size) const { return ParseSignedNote(log_.CheckpointAt(size))->text; }

  TempDir dir_;
  TestLog log_;
};

TEST_F(WitnessTest, CosignsAGrowingLog) {
  int64_t clock = 1700000000;
  auto w = Open(&clock);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->size(), 0u);
  EXPECT_FALSE(w->root().has_value());
  log_.GrowTo(64);
  const VerifierKey cosigner = w->CosignatureVerifier();
  EXPECT_EQ(cosigner.type(), KeyType::kCosignatureV1);

  uint64_t last = 0;
  for (uint64_t size : {1u, 5u, 5u, 17u, 32u, 33u, 64u}) {
    clock += 10;
    const std::string line = Accept(*w, last, size);
    auto ts = VerifyCosignature(Body(size), line, cosigner);
    ASSERT_TRUE(ts.ok()) << ts.status().ToString();
    EXPECT_EQ(*ts, static_cast<uint64_t>(clock));
    EXPECT_EQ(w->size(), size);
    EXPECT_EQ(*w->root(), log_.RootAt(size));
    last = size;
  }
  // The cosigned note is a valid checkpoint note with two signatures.
  const std::string cosigned = log_.CheckpointAt(64) + Accept(*w, 64, 64);
  auto note = ParseSignedNote(cosigned);
  ASSERT_TRUE(note.ok());
  EXPECT_EQ(note->signatures.size(), 2u);
  EXPECT_TRUE(VerifyCheckpoint(cosigned, log_.Verifier()).ok());
}

TEST_F(WitnessTest, FirstCheckpointMayBeAnySizeAndSizeZeroWorks) {
  auto w = Open();
  log_.GrowTo(10);
  Accept(*w, 0, 0);
  EXPECT_EQ(w->size(), 0u);
  EXPECT_EQ(*w->root(), EmptyRoot());
  Accept(*w, 0, 10);
  EXPECT_EQ(w->size(), 10u);
}

TEST_F(WitnessTest, ForkAtTheSameSizeIsRefusedWithTheReason) {
  int64_t clock = 1700000000;
  auto w = Open(&clock);
  log_.GrowTo(42);
  Accept(*w, 0, 42);
  const std::string state_before = ReadFileBytes(dir_.path() / "witness-state");

  TestLog fork;  // same key, different history
  fork.GrowTo(42, /*rewritten=*/7);
  ASSERT_NE(fork.RootAt(42), log_.RootAt(42));
  clock += 100;
  auto r = w->Observe(fork.CheckpointAt(42), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(r.status().message(), "fork: size 42 root differs from the one witnessed at " +
                                      FormatRfc3339Millis(int64_t{1700000000} * 1000));
  // Nothing changed.
  EXPECT_EQ(*w->root(), log_.RootAt(42));
  EXPECT_EQ(ReadFileBytes(dir_.path() / "witness-state"), state_before);
  // The honest checkpoint at the same size is still cosigned.
  Accept(*w, 42, 42);
}

TEST_F(WitnessTest, RewrittenHistoryFailsTheConsistencyProof) {
  auto w = Open();
  log_.GrowTo(40);
  Accept(*w, 0, 40);

  // The log rewrites entry 3 and grows: its own proof 40 -> 42 is internally
  // consistent, but not with the root the witness saw at 40.
  TestLog rewritten;
  rewritten.GrowTo(42, /*rewritten=*/3);
  auto r = w->Observe(rewritten.CheckpointAt(42), rewritten.Proof(40, 42));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(r.status().message().rfind("consistency proof from 40 to 42 does not verify", 0), 0u)
      << r.status().message();
  EXPECT_EQ(w->size(), 40u);

  // An honest checkpoint with a wrong, truncated or missing proof is refused too.
  log_.GrowTo(42);
  std::vector<Hash> proof = log_.Proof(40, 42);
  std::vector<Hash> flipped = proof;
  flipped[0][0] ^= 1;
  EXPECT_EQ(w->Observe(log_.CheckpointAt(42), flipped).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(w->Observe(log_.CheckpointAt(42), {}).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(w->Observe(log_.CheckpointAt(42), std::vector<Hash>(proof.begin(), proof.end() - 1))
                .status()
                .code(),
            StatusCode::kDataLoss);
  // A proof between other sizes.
  EXPECT_FALSE(w->Observe(log_.CheckpointAt(42), log_.Proof(39, 42)).ok());
  EXPECT_EQ(w->size(), 40u);
  Accept(*w, 40, 42);
}

TEST_F(WitnessTest, SizeGoingBackwardsIsRefused) {
  auto w = Open();
  log_.GrowTo(42);
  Accept(*w, 0, 42);
  auto r = w->Observe(log_.CheckpointAt(40), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status().message(), "size went backwards 42 -> 40");
  EXPECT_EQ(w->size(), 42u);
}

TEST_F(WitnessTest, BadLogSignaturesAndOriginsAreRefused) {
  auto w = Open();
  log_.GrowTo(10);
  Accept(*w, 0, 5);

  // Signed by another key under the log's name.
  TestLog impostor(/*seed=*/99);
  impostor.GrowTo(10);
  auto r = w->Observe(impostor.CheckpointAt(10), log_.Proof(5, 10));
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("not signed by the log key"), std::string::npos);

  // The log's signature over another body.
  std::string edited = log_.CheckpointAt(10);
  edited.replace(edited.find("\n10\n"), 4, "\n11\n");
  r = w->Observe(edited, log_.Proof(5, 10));
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(r.status().message(), "checkpoint signature invalid");

  // Malformed.
  r = w->Observe("not a note", {});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("checkpoint is malformed"), std::string::npos);

  // Another origin, properly signed by the log key.
  Checkpoint cp;
  cp.origin = "other.example/log";
  cp.size = 10;
  cp.root = log_.RootAt(10);
  r = w->Observe(*SignCheckpoint(log_.signer(), cp), log_.Proof(5, 10));
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("origin other.example/log"), std::string::npos);
  EXPECT_EQ(w->size(), 5u);
}

TEST_F(WitnessTest, StateSurvivesRestart) {
  int64_t clock = 1700000000;
  log_.GrowTo(30);
  {
    auto w = Open(&clock);
    Accept(*w, 0, 20);
  }
  const fs::path state = dir_.path() / "witness-state";
  struct stat st {};
  ASSERT_EQ(::stat(state.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string text = ReadFileBytes(state);
  EXPECT_EQ(text.rfind("medvault-witness-state v1\norigin medvault.example/ledger\nsize 20\n", 0),
            0u)
      << text;

  clock = 1600000000;  // the clock went backwards
  auto w = Open(&clock);
  EXPECT_EQ(w->size(), 20u);
  EXPECT_EQ(*w->root(), log_.RootAt(20));
  // After the restart, a fork at 20 and a shrink are still refused...
  TestLog fork;
  fork.GrowTo(20, 0);
  EXPECT_EQ(w->Observe(fork.CheckpointAt(20), {}).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(w->Observe(log_.CheckpointAt(19), {}).status().code(), StatusCode::kFailedPrecondition);
  // ...and growth is cosigned, never with a timestamp older than the last one.
  const std::string line = Accept(*w, 20, 30);
  EXPECT_EQ(*VerifyCosignature(Body(30), line, w->CosignatureVerifier()), 1700000000u);
  // No temporary files left.
  for (const auto& e : fs::directory_iterator(dir_.path())) {
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos);
  }
}

TEST_F(WitnessTest, OneWitnessPerStateDirectory) {
  auto first = Open();
  ASSERT_NE(first, nullptr);
  auto second = Witness::Open(dir_.path(), log_.Verifier(), MakeSigner("witness.example/w1", 42));
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  first.reset();
  EXPECT_TRUE(
      Witness::Open(dir_.path(), log_.Verifier(), MakeSigner("witness.example/w1", 42)).ok());
}

TEST_F(WitnessTest, DamagedOrForeignStateStopsTheWitness) {
  log_.GrowTo(5);
  {
    auto w = Open();
    Accept(*w, 0, 5);
  }
  const fs::path state = dir_.path() / "witness-state";
  const std::string good = ReadFileBytes(state);

  WriteFileBytes(state, good.substr(0, good.size() - 3));
  auto r = Witness::Open(dir_.path(), log_.Verifier(), MakeSigner("witness.example/w1", 42));
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  WriteFileBytes(state, "");
  EXPECT_EQ(Witness::Open(dir_.path(), log_.Verifier(), MakeSigner("w", 42)).status().code(),
            StatusCode::kDataLoss);
  std::string bad_size = good;
  bad_size.replace(bad_size.find("size 5"), 6, "size 05");
  WriteFileBytes(state, bad_size);
  EXPECT_EQ(Witness::Open(dir_.path(), log_.Verifier(), MakeSigner("w", 42)).status().code(),
            StatusCode::kDataLoss);

  WriteFileBytes(state, good);
  WitnessOptions other;
  other.origin = "other.example/log";
  r = Witness::Open(dir_.path(), log_.Verifier(), MakeSigner("w", 42), other);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Witness::Open(dir_.path(), log_.Verifier(), MakeSigner("w", 42)).ok());

  // The log key must be a note (0x01) key.
  EXPECT_EQ(Witness::Open(dir_.path(), log_.signer().CosignatureVerifier(), MakeSigner("w", 42))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

// Issue 13: the push interface, C2SP tlog-witness add-checkpoint, with the
// status codes the spec assigns.
TEST_F(WitnessTest, AddCheckpointAnswersAsTheC2spWitnessProtocol) {
  auto w = Open();
  ASSERT_NE(w, nullptr);
  log_.GrowTo(10);
  auto request = [&](uint64_t old_size, uint64_t size, const TestLog& log) {
    return "old " + std::to_string(old_size) + "\n" +
           FormatProof(old_size == 0 ? std::vector<Hash>{} : log.Proof(old_size, size)) + "\n" +
           log.CheckpointAt(size);
  };
  // First sight (old 0, no proof): cosigned.
  WitnessResponse r = w->AddCheckpoint(request(0, 4, log_));
  ASSERT_EQ(r.http_status, 200) << r.body;
  const std::string body4 = FormatCheckpointBody({std::string(kOrigin), 4, log_.RootAt(4), {}});
  EXPECT_TRUE(VerifyCosignature(body4, r.body, w->CosignatureVerifier()).ok()) << r.body;
  EXPECT_EQ(w->size(), 4u);
  // A stale old size: 409 with the witnessed size, as text/x.tlog.size.
  r = w->AddCheckpoint(request(0, 10, log_));
  EXPECT_EQ(r.http_status, 409);
  EXPECT_EQ(r.body, "4\n");
  EXPECT_EQ(r.content_type, "text/x.tlog.size");
  // The right old size and proof: cosigned.
  r = w->AddCheckpoint(request(4, 10, log_));
  ASSERT_EQ(r.http_status, 200) << r.body;
  EXPECT_EQ(w->size(), 10u);
  // A bad proof: 422, nothing changes.
  log_.GrowTo(12);
  std::vector<Hash> wrong = log_.Proof(10, 12);
  wrong[0][0] ^= 1;
  r = w->AddCheckpoint("old 10\n" + FormatProof(wrong) + "\n" + log_.CheckpointAt(12));
  EXPECT_EQ(r.http_status, 422) << r.body;
  EXPECT_EQ(w->size(), 10u);
  // A fork at the same size: 409 with the reason.
  TestLog forked;
  forked.GrowTo(10, 3);
  r = w->AddCheckpoint(request(10, 10, forked));
  EXPECT_EQ(r.http_status, 409);
  EXPECT_NE(r.body.find("fork"), std::string::npos) << r.body;
  // A rollback (old size beyond the checkpoint): 400.
  r = w->AddCheckpoint(request(10, 10, log_).replace(0, 7, "old 12\n"));
  EXPECT_EQ(r.http_status, 400) << r.body;
  // Another log's key: 403; another origin: 404; malformed: 400.
  TestLog other(9);
  other.GrowTo(12);
  r = w->AddCheckpoint(request(10, 12, other));
  EXPECT_EQ(r.http_status, 403) << r.body;
  Checkpoint elsewhere{"elsewhere.example/log", 12, log_.RootAt(12), {}};
  r = w->AddCheckpoint("old 10\n" + FormatProof(log_.Proof(10, 12)) + "\n" +
                       *SignCheckpoint(log_.signer(), elsewhere));
  EXPECT_EQ(r.http_status, 404) << r.body;
  for (const std::string& bad :
       std::vector<std::string>{"", "old\n\n", "old 01\n\n", "old 10\nnot base64\n\nx",
                                "new 10\n\n" + log_.CheckpointAt(12)}) {
    EXPECT_EQ(w->AddCheckpoint(bad).http_status, 400) << bad;
  }
  EXPECT_EQ(w->size(), 10u) << "no refused request changed the state";
  r = w->AddCheckpoint(request(10, 12, log_));
  EXPECT_EQ(r.http_status, 200) << r.body;
}

}  // namespace
}  // namespace medvault::ledger
