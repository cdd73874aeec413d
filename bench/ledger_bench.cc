// Ledger benchmarks.
//
// Appends are durable (WAL, synchronous=FULL): entries/s is items_per_second
// over wall-clock time. BM_LedgerAppendBatched is one caller appending
// batches; BM_LedgerAppendConcurrent is many callers appending small batches
// at once, which the group commit folds into shared transactions.
// BM_RawSqliteInsertBatched is the floor: the same rows through bare sqlite3.
//
// Proofs run on an in-memory MerkleTree of 1,000,000 leaves: producing an
// inclusion or consistency proof (random index / old size, new size 10^6)
// and verifying one (precomputed proofs), each reported per operation.
//
// BM_LedgerBytesPerRead is a size, not a speed: the bytes one read audit
// costs on disk (the encoded entry and its row and index overhead in
// SQLite), as the growth of a fresh ledger file over N read audits / N.
// The reference is the same measurement with format version 1 entries.
#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "ledger/ledger.h"
#include "store/sqlite_util.h"
#include "store/store.h"

namespace {

namespace fs = std::filesystem;
using medvault::Bytes;
using medvault::ledger::Entry;
using medvault::ledger::Hash;
using medvault::ledger::MerkleTree;
using medvault::ledger::SqliteLedger;

constexpr uint64_t kProofTreeSize = 1000000;

using medvault::bench::BenchDir;

// A typical decision entry (about 75 bytes encoded; 330 as format version 1 JSON).
Entry SampleEntry(uint64_t i) {
  Entry e;
  e.time_ms = 1763751600000 + static_cast<int64_t>(i);
  e.request_id = "7f3a9c0e5b2d41c8a6e0f1d2c3b4a596";
  e.actor = "0123456789abcdef0123456789abcdef";
  e.action = "segment.read";
  e.effect = "permit";
  e.reasons = {"treating-relationship"};
  e.obligations = {"audit"};
  e.purpose = "treatment";
  e.resource = {"segment", "internal-medicine/cardiology"};
  e.patient_ref = "00112233445566778899aabbccddeeff";
  e.details = {{"version", std::to_string(i % 17 + 1)}};
  return e;
}

std::vector<Entry> Batch(uint64_t from, size_t n) {
  std::vector<Entry> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(SampleEntry(from + i));
  }
  return out;
}

void BM_LedgerAppendBatched(benchmark::State& state) {
  BenchDir dir;
  auto ledger = SqliteLedger::Open(dir.path() / "metadata.db");
  if (!ledger.ok()) {
    state.SkipWithError("open");
    return;
  }
  const size_t batch = static_cast<size_t>(state.range(0));
  uint64_t next = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<Entry> entries = Batch(next, batch);
    state.ResumeTiming();
    if (!(*ledger)->Append(std::move(entries)).ok()) {
      state.SkipWithError("append");
      return;
    }
    next += batch;
  }
  state.SetItemsProcessed(static_cast<int64_t>(next));
  state.counters["entries"] = static_cast<double>(next);
}
BENCHMARK(BM_LedgerAppendBatched)
    ->Arg(1)
    ->Arg(10)
    ->Arg(100)
    ->Arg(1000)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// Many callers at once, each appending `range(0)` entries per call.
std::unique_ptr<SqliteLedger> g_shared;
std::unique_ptr<BenchDir> g_shared_dir;

void BM_LedgerAppendConcurrent(benchmark::State& state) {
  if (state.thread_index() == 0) {
    g_shared_dir = std::make_unique<BenchDir>();
    auto ledger = SqliteLedger::Open(g_shared_dir->path() / "metadata.db");
    if (!ledger.ok()) {
      std::fprintf(stderr, "open failed\n");
      std::abort();
    }
    g_shared = std::move(ledger).value();
  }
  const size_t batch = static_cast<size_t>(state.range(0));
  int64_t appended = 0;
  for (auto _ : state) {
    if (!g_shared->Append(Batch(static_cast<uint64_t>(appended), batch)).ok()) {
      state.SkipWithError("append");
      break;
    }
    appended += static_cast<int64_t>(batch);
  }
  state.SetItemsProcessed(appended);
  if (state.thread_index() == 0) {
    g_shared.reset();
    g_shared_dir.reset();
  }
}
BENCHMARK(BM_LedgerAppendConcurrent)
    ->Arg(1)
    ->Arg(10)
    ->Threads(16)
    ->Threads(64)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// The floor: the same encoded rows (the layout of schema 3), one transaction per
// batch, bare sqlite3.
void BM_RawSqliteInsertBatched(benchmark::State& state) {
  BenchDir dir;
  sqlite3* db = nullptr;
  if (sqlite3_open((dir.path() / "raw.db").c_str(), &db) != SQLITE_OK) {
    state.SkipWithError("open");
    return;
  }
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
               "CREATE TABLE t(seq INTEGER PRIMARY KEY, entry BLOB NOT NULL, leaf BLOB NOT NULL,"
               " ref ANY) STRICT;"
               "CREATE INDEX t_ref ON t(ref) WHERE ref IS NOT NULL;",
               nullptr, nullptr, nullptr);
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?1, ?2, ?3, ?4)", -1, &insert, nullptr);
  const size_t batch = static_cast<size_t>(state.range(0));
  const Bytes row = medvault::ledger::Encode(SampleEntry(0));
  const Hash leaf = medvault::ledger::LeafHash(row);
  int64_t seq = 0;
  for (auto _ : state) {
    sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    for (size_t i = 0; i < batch; ++i) {
      sqlite3_bind_int64(insert, 1, seq++);
      sqlite3_bind_blob(insert, 2, row.data(), static_cast<int>(row.size()), SQLITE_STATIC);
      sqlite3_bind_blob(insert, 3, leaf.data(), 8, SQLITE_STATIC);       // the stored 8-byte check
      sqlite3_bind_blob(insert, 4, leaf.data() + 8, 16, SQLITE_STATIC);  // a 16-byte reference
      if (sqlite3_step(insert) != SQLITE_DONE) {
        state.SkipWithError("insert");
      }
      sqlite3_reset(insert);
    }
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }
  sqlite3_finalize(insert);
  sqlite3_close(db);
  state.SetItemsProcessed(seq);
}
BENCHMARK(BM_RawSqliteInsertBatched)->Arg(100)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Encoding and hashing one entry (the CPU part of an append).
void BM_EntryEncodeAndHash(benchmark::State& state) {
  const Entry e = SampleEntry(7);
  for (auto _ : state) {
    const Bytes b = medvault::ledger::Encode(e);
    benchmark::DoNotOptimize(medvault::ledger::LeafHash(b));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EntryEncodeAndHash);

// ---------------------------------------------------------------------------
// Bytes on disk per read audit.

// Read audits as api::Call::Note writes them for GET .../segments/{path}: a
// random request id, one of 200 accounts, one of 2,000 patients, a segment
// path, the deciding reason and its basis (the relationship or consent id).
class ReadAudits {
 public:
  ReadAudits() : rng_(14) {
    for (int i = 0; i < 200; ++i) {
      actors_.push_back(RandomHex(32));
    }
    for (int i = 0; i < 2000; ++i) {
      patients_.push_back(RandomHex(32));
      bases_.push_back(RandomHex(32));
    }
  }

  Entry Next() {
    static const char* const kPaths[] = {"internal-medicine/cardiology",
                                         "physical-signs",
                                         "physical-signs/blood-pressure",
                                         "laboratory/lipids",
                                         "health-status",
                                         "radiology/chest"};
    const size_t patient = rng_() % patients_.size();
    Entry e;
    e.time_ms = time_ms_ += 1 + static_cast<int64_t>(rng_() % 3);
    e.request_id = RandomHex(16);
    e.actor = actors_[rng_() % actors_.size()];
    e.action = "decision";
    e.effect = "permit";
    e.reasons = {rng_() % 5 == 0 ? "consent-granted" : "treating-relationship"};
    e.purpose = "treatment";
    e.resource = {"read", kPaths[rng_() % std::size(kPaths)]};
    e.patient_ref = patients_[patient];
    e.details = {{"basis", bases_[patient]}, {"route", "/api/v1/patients/{id}/segments/{path}"}};
    return e;
  }

 private:
  std::string RandomHex(size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) {
      s.push_back("0123456789abcdef"[rng_() % 16]);
    }
    return s;
  }
  std::mt19937_64 rng_;
  int64_t time_ms_ = 1763751600000;
  std::vector<std::string> actors_, patients_, bases_;
};

uintmax_t FileBytes(const fs::path& db) {
  uintmax_t n = 0;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::error_code ec;
    const uintmax_t size = fs::file_size(db.string() + suffix, ec);
    n += ec ? 0 : size;
  }
  return n;
}

// Appends `n` read audits to a fresh ledger file in batches of 200 (as the
// group commit writes them), in format version 2 (Append) or 1 (the bytes of
// EncodeJsonV1 through AppendEncodedInTransaction), and returns the file's
// growth per entry once every connection is closed (the WAL checkpointed
// into the file). Also the mean encoded size in *entry_bytes.
double BytesPerRead(size_t n, bool json_v1, double* entry_bytes) {
  BenchDir dir;
  const fs::path db = dir.path() / "metadata.db";
  {
    auto ledger = SqliteLedger::Open(db);
    if (!ledger.ok()) {
      return -1;
    }
  }
  const uintmax_t empty = FileBytes(db);
  ReadAudits audits;
  uint64_t encoded = 0;
  {
    auto ledger = SqliteLedger::Open(db);
    auto conn = medvault::store::Connection::Open(db, /*read_only=*/false, {});
    if (!ledger.ok() || !conn.ok()) {
      return -1;
    }
    for (size_t done = 0; done < n;) {
      std::vector<Entry> batch;
      for (size_t i = 0; i < 200 && done < n; ++i, ++done) {
        batch.push_back(audits.Next());
      }
      if (json_v1) {
        std::vector<Bytes> bytes;
        for (const Entry& e : batch) {
          bytes.push_back(medvault::ledger::EncodeJsonV1(e));
          encoded += bytes.back().size();
        }
        medvault::store::WriteTxn txn(**conn);
        if (!txn.Begin().ok() || !(*ledger)->AppendEncodedInTransaction(txn, bytes).ok() ||
            !txn.Commit().ok()) {
          return -1;
        }
      } else {
        for (const Entry& e : batch) {
          encoded += medvault::ledger::Encode(e).size();
        }
        if (!(*ledger)->Append(std::move(batch)).ok()) {
          return -1;
        }
      }
    }
  }
  *entry_bytes = static_cast<double>(encoded) / static_cast<double>(n);
  return static_cast<double>(FileBytes(db) - empty) / static_cast<double>(n);
}

void BM_LedgerBytesPerRead(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  double per_read = 0;
  double entry_bytes = 0;
  double json_per_read = 0;
  double json_entry_bytes = 0;
  for (auto _ : state) {
    per_read = BytesPerRead(n, /*json_v1=*/false, &entry_bytes);
    json_per_read = BytesPerRead(n, /*json_v1=*/true, &json_entry_bytes);
    if (per_read < 0 || json_per_read < 0) {
      state.SkipWithError("append");
      return;
    }
  }
  state.counters["bytes_per_read"] = per_read;
  state.counters["entry_bytes"] = entry_bytes;
  state.counters["json_v1_bytes_per_read"] = json_per_read;
  state.counters["json_v1_entry_bytes"] = json_entry_bytes;
  state.counters["reads"] = static_cast<double>(n);
}
BENCHMARK(BM_LedgerBytesPerRead)
    ->Arg(20000)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// ---------------------------------------------------------------------------
// Proofs at 1,000,000 entries.

const MerkleTree& BigTree() {
  static const MerkleTree* tree = [] {
    auto* t = new MerkleTree;
    t->Reserve(kProofTreeSize);
    Bytes leaf(8);
    for (uint64_t i = 0; i < kProofTreeSize; ++i) {
      for (int b = 0; b < 8; ++b) {
        leaf[static_cast<size_t>(b)] = static_cast<uint8_t>(i >> (8 * b));
      }
      t->Append(medvault::ledger::LeafHash(leaf));
    }
    return t;
  }();
  return *tree;
}

void BM_InclusionProof(benchmark::State& state) {
  const MerkleTree& tree = BigTree();
  std::mt19937_64 rng(1);
  for (auto _ : state) {
    const uint64_t index = rng() % kProofTreeSize;
    auto proof = tree.InclusionProof(index, kProofTreeSize);
    benchmark::DoNotOptimize(proof);
  }
}
BENCHMARK(BM_InclusionProof)->Unit(benchmark::kMicrosecond);

void BM_ConsistencyProof(benchmark::State& state) {
  const MerkleTree& tree = BigTree();
  std::mt19937_64 rng(2);
  for (auto _ : state) {
    const uint64_t old_size = 1 + rng() % (kProofTreeSize - 1);
    auto proof = tree.ConsistencyProof(old_size, kProofTreeSize);
    benchmark::DoNotOptimize(proof);
  }
}
BENCHMARK(BM_ConsistencyProof)->Unit(benchmark::kMicrosecond);

void BM_RootAtEarlierSize(benchmark::State& state) {
  const MerkleTree& tree = BigTree();
  std::mt19937_64 rng(3);
  for (auto _ : state) {
    auto root = tree.Root(1 + rng() % kProofTreeSize);
    benchmark::DoNotOptimize(root);
  }
}
BENCHMARK(BM_RootAtEarlierSize)->Unit(benchmark::kMicrosecond);

constexpr size_t kPrecomputed = 1024;

void BM_VerifyInclusion(benchmark::State& state) {
  const MerkleTree& tree = BigTree();
  const Hash root = tree.Root();
  std::mt19937_64 rng(4);
  struct Case {
    uint64_t index;
    Hash leaf;
    std::vector<Hash> proof;
  };
  std::vector<Case> cases;
  for (size_t i = 0; i < kPrecomputed; ++i) {
    const uint64_t index = rng() % kProofTreeSize;
    cases.push_back({index, *tree.LeafHashAt(index), *tree.InclusionProof(index, kProofTreeSize)});
  }
  size_t i = 0;
  for (auto _ : state) {
    const Case& c = cases[i++ % kPrecomputed];
    if (!medvault::ledger::VerifyInclusion(c.leaf, c.index, kProofTreeSize, c.proof, root).ok()) {
      state.SkipWithError("verify");
      break;
    }
  }
}
BENCHMARK(BM_VerifyInclusion)->Unit(benchmark::kMicrosecond);

void BM_VerifyConsistency(benchmark::State& state) {
  const MerkleTree& tree = BigTree();
  const Hash root = tree.Root();
  std::mt19937_64 rng(5);
  struct Case {
    uint64_t old_size;
    Hash old_root;
    std::vector<Hash> proof;
  };
  std::vector<Case> cases;
  for (size_t i = 0; i < kPrecomputed; ++i) {
    const uint64_t old_size = 1 + rng() % (kProofTreeSize - 1);
    cases.push_back(
        {old_size, *tree.Root(old_size), *tree.ConsistencyProof(old_size, kProofTreeSize)});
  }
  size_t i = 0;
  for (auto _ : state) {
    const Case& c = cases[i++ % kPrecomputed];
    if (!medvault::ledger::VerifyConsistency(c.old_size, kProofTreeSize, c.old_root, root, c.proof)
             .ok()) {
      state.SkipWithError("verify");
      break;
    }
  }
}
BENCHMARK(BM_VerifyConsistency)->Unit(benchmark::kMicrosecond);

// Opening (Sync from scratch: read, hash and check every row) a ledger of
// range(0) entries.
void BM_LedgerOpen(benchmark::State& state) {
  BenchDir dir;
  const fs::path file = dir.path() / "metadata.db";
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  {
    auto ledger = SqliteLedger::Open(file);
    if (!ledger.ok()) {
      state.SkipWithError("open");
      return;
    }
    for (uint64_t i = 0; i < n; i += 1000) {
      if (!(*ledger)->Append(Batch(i, 1000)).ok()) {
        state.SkipWithError("append");
        return;
      }
    }
  }
  for (auto _ : state) {
    auto ledger = SqliteLedger::Open(file);
    if (!ledger.ok() || (*ledger)->Size() != n) {
      state.SkipWithError("reopen");
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(n));
}
BENCHMARK(BM_LedgerOpen)->Arg(100000)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
