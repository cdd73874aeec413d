// SqliteLedger on a real database in a temporary directory: appends, Sync,
// proofs, checkpoints and cosignatures, AppendInTransaction inside another
// store's transaction, and tampering with raw SQL, as an attacker with write
// access to the database file would.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "crypto_test_util.h"
#include "ledger/ledger.h"
#include "store/sqlite_util.h"
#include "store/store.h"
#include "test_util.h"

namespace medvault::ledger {
namespace {

namespace fs = std::filesystem;
using medvault::testing::TempDir;

constexpr std::string_view kOrigin = "medvault.example/ledger";
const std::string kRefA(32, 'a');
const std::string kRefB = "0123456789abcdef0123456789abcdef";

Entry MakeEntry(uint64_t i) {
  Entry e;
  e.time_ms = 1763751600000 + static_cast<int64_t>(i);
  e.request_id = "req-" + std::to_string(i);
  e.actor = "0123456789abcdef0123456789abcdef";
  e.action = std::string(i % 2 == 0 ? kActionSegmentRead : kActionSegmentWrite);
  e.effect = std::string(kEffectPermit);
  e.reasons = {"treating-relationship"};
  e.purpose = "treatment";
  e.resource = {"segment", "internal-medicine/cardiology"};
  e.patient_ref = i % 3 == 0 ? kRefA : (i % 3 == 1 ? kRefB : "");
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

Signer MakeSigner(std::string_view name, uint8_t seed_byte) {
  auto s = Signer::FromSeed(name, Bytes(kSeedSize, seed_byte));
  EXPECT_TRUE(s.ok());
  return std::move(s).value();
}

// Raw SQL on the database file, outside every medvault abstraction.
class RawDb {
 public:
  explicit RawDb(const fs::path& file) {
    EXPECT_EQ(sqlite3_open(file.c_str(), &db_), SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void Exec(const std::string& sql) {
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << sql << ": " << (err ? err : "");
    sqlite3_free(err);
  }
  void SetEntry(uint64_t seq, const Bytes& bytes, bool with_leaf_hash) {
    const char* sql = with_leaf_hash
                          ? "UPDATE ledger_entries SET entry = ?1, leaf_hash = ?2 WHERE seq = ?3"
                          : "UPDATE ledger_entries SET entry = ?1 WHERE seq = ?3";
    sqlite3_stmt* s = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db_, sql, -1, &s, nullptr), SQLITE_OK);
    const Hash leaf = LeafHash(bytes);
    sqlite3_bind_blob(s, 1, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
    if (with_leaf_hash) {
      sqlite3_bind_blob(s, 2, leaf.data(), static_cast<int>(leaf.size()), SQLITE_TRANSIENT);
    }
    sqlite3_bind_int64(s, 3, static_cast<int64_t>(seq));
    EXPECT_EQ(sqlite3_step(s), SQLITE_DONE);
    EXPECT_EQ(sqlite3_changes(db_), 1);
    sqlite3_finalize(s);
  }
  int64_t Count(const std::string& table) {
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, ("SELECT COUNT(*) FROM " + table).c_str(), -1, &s, nullptr),
              SQLITE_OK);
    EXPECT_EQ(sqlite3_step(s), SQLITE_ROW);
    const int64_t n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
  }

 private:
  sqlite3* db_ = nullptr;
};

class SqliteLedgerTest : public ::testing::Test {
 protected:
  SqliteLedgerTest()
      : file_(dir_.path() / "metadata.db"),
        log_signer_(MakeSigner(kOrigin, 1)),
        log_key_(log_signer_.Verifier()) {}

  std::unique_ptr<SqliteLedger> OpenLedger() {
    auto l = SqliteLedger::Open(file_);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    return l.ok() ? std::move(l).value() : nullptr;
  }

  // Appends entries 0..n-1 in batches and mirrors them in `expected_`.
  void AppendEntries(SqliteLedger& ledger, uint64_t n, uint64_t batch = 4) {
    for (uint64_t i = expected_.Size(); i < n;) {
      const uint64_t count = std::min(batch, n - i);
      std::vector<Entry> entries = MakeEntries(i, count);
      for (const Entry& e : entries) {
        expected_.Append(LeafHash(Encode(e)));
      }
      ASSERT_TRUE(ledger.Append(std::move(entries)).ok());
      i += count;
    }
  }

  // VerifyAll on `ledger` and VerifyDatabase on the file.
  VerifyReport Verify(SqliteLedger& ledger, std::span<const VerifierKey> witnesses = {}) {
    auto r = ledger.VerifyAll(log_key_, witnesses);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : VerifyReport{};
  }
  VerifyReport VerifyFile(std::span<const VerifierKey> witnesses = {}) {
    auto r = SqliteLedger::VerifyDatabase(file_, log_key_, witnesses);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : VerifyReport{};
  }

  TempDir dir_;
  fs::path file_;
  Signer log_signer_;
  VerifierKey log_key_;
  MerkleTree expected_;  // an independent tree over what was appended
};

std::string Problems(const VerifyReport& r) {
  std::string out;
  for (const std::string& p : r.problems) {
    out += p + "\n";
  }
  return out;
}

// ---------------------------------------------------------------------------
// Happy paths.

TEST_F(SqliteLedgerTest, AppendSyncAndProofs) {
  auto ledger = OpenLedger();
  ASSERT_NE(ledger, nullptr);
  EXPECT_EQ(ledger->Size(), 0u);
  EXPECT_EQ(ledger->Root(), EmptyRoot());
  EXPECT_TRUE(ledger->Append({}).ok());
  AppendEntries(*ledger, 37, 5);
  EXPECT_EQ(ledger->Size(), 37u);
  EXPECT_EQ(ledger->Root(), expected_.Root());
  ASSERT_TRUE(ledger->Sync().ok());
  EXPECT_EQ(ledger->Root(), expected_.Root());

  for (uint64_t size : {1u, 16u, 37u}) {
    const Hash root = *ledger->RootAt(size);
    EXPECT_EQ(root, *expected_.Root(size));
    for (uint64_t i = 0; i < size; i += 3) {
      auto proof = ledger->InclusionProof(i, size);
      ASSERT_TRUE(proof.ok());
      EXPECT_TRUE(VerifyInclusion(LeafHash(Encode(MakeEntry(i))), i, size, *proof, root).ok());
    }
    for (uint64_t old = 1; old <= size; old += 5) {
      auto proof = ledger->ConsistencyProof(old, size);
      ASSERT_TRUE(proof.ok());
      EXPECT_TRUE(VerifyConsistency(old, size, *expected_.Root(old), root, *proof).ok());
    }
  }
  EXPECT_EQ(ledger->InclusionProof(37, 37).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger->InclusionProof(0, 38).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger->ConsistencyProof(5, 38).status().code(), StatusCode::kInvalidArgument);

  auto rec = ledger->GetEntry(12);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(rec->seq, 12u);
  EXPECT_EQ(rec->entry, MakeEntry(12));
  EXPECT_EQ(rec->bytes, Encode(MakeEntry(12)));
  EXPECT_EQ(rec->leaf_hash, *expected_.LeafHashAt(12));
  EXPECT_EQ(ledger->GetEntry(37).status().code(), StatusCode::kNotFound);

  const VerifyReport report = Verify(*ledger);
  EXPECT_TRUE(report.ok) << Problems(report);
  EXPECT_EQ(report.entries, 37u);
  EXPECT_EQ(report.root, expected_.Root());
}

TEST_F(SqliteLedgerTest, InvalidEntriesAreRefusedWhole) {
  auto ledger = OpenLedger();
  std::vector<Entry> batch = MakeEntries(0, 3);
  batch[1].effect = "perhaps";
  const Status st = ledger->Append(batch);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("entry 1 of the batch"), std::string::npos) << st.message();
  ASSERT_TRUE(ledger->Sync().ok());
  EXPECT_EQ(ledger->Size(), 0u);
  RawDb raw(file_);
  EXPECT_EQ(raw.Count("ledger_entries"), 0);
}

// AppendAsync: `done` gets what Append would return, after the entries are
// in the file and in the tree; a bad batch is refused whole; many batches
// from many threads all land, in some order, each once.
TEST_F(SqliteLedgerTest, AppendAsyncReportsAfterTheCommit) {
  auto ledger = OpenLedger();
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Status> outcomes;
  std::vector<uint64_t> sizes_at_done;
  auto done = [&](const Status& st) {
    std::lock_guard<std::mutex> lock(mu);
    outcomes.push_back(st);
    sizes_at_done.push_back(ledger->Size());
    cv.notify_all();
  };
  std::vector<Entry> bad = MakeEntries(0, 2);
  bad[0].effect = "perhaps";
  ledger->AppendAsync(bad, done);
  ledger->AppendAsync({}, done);
  constexpr int kThreads = 4;
  constexpr int kBatches = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        ledger->AppendAsync(MakeEntries(static_cast<uint64_t>(t * kBatches + b) * 2, 2), done);
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] {
    return outcomes.size() == static_cast<size_t>(2 + kThreads * kBatches);
  }));
  EXPECT_EQ(outcomes[0].code(), StatusCode::kInvalidArgument) << outcomes[0].ToString();
  EXPECT_TRUE(outcomes[1].ok());
  for (size_t i = 2; i < outcomes.size(); ++i) {
    EXPECT_TRUE(outcomes[i].ok()) << outcomes[i].ToString();
    EXPECT_GE(sizes_at_done[i], 2u) << "reported before its entries reached the tree";
  }
  lock.unlock();
  EXPECT_EQ(ledger->Size(), static_cast<uint64_t>(2 * kThreads * kBatches));
  RawDb raw(file_);
  EXPECT_EQ(raw.Count("ledger_entries"), 2 * kThreads * kBatches);
  ASSERT_TRUE(ledger->Sync().ok());
  const VerifyReport report = Verify(*ledger);
  EXPECT_TRUE(report.ok) << Problems(report);
}

TEST_F(SqliteLedgerTest, ReopenLoadsTheSameLog) {
  Hash root;
  {
    auto ledger = OpenLedger();
    AppendEntries(*ledger, 100, 7);
    root = ledger->Root();
  }
  // Offline verification of a closed database (no -wal/-shm files left).
  const VerifyReport offline = VerifyFile();
  EXPECT_TRUE(offline.ok) << Problems(offline);
  EXPECT_EQ(offline.entries, 100u);
  EXPECT_EQ(offline.root, root);
  auto ledger = OpenLedger();
  EXPECT_EQ(ledger->Size(), 100u);
  EXPECT_EQ(ledger->Root(), root);
  EXPECT_EQ(root, expected_.Root());
}

TEST_F(SqliteLedgerTest, ConcurrentAppendersAreAllCommitted) {
  auto ledger = OpenLedger();
  constexpr int kThreads = 8;
  constexpr int kCalls = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int c = 0; c < kCalls; ++c) {
        std::vector<Entry> entries;
        for (int k = 0; k < 3; ++k) {
          Entry e = MakeEntry(0);
          e.details = {
              {"thread", std::to_string(t)}, {"call", std::to_string(c)}, {"k", std::to_string(k)}};
          entries.push_back(std::move(e));
        }
        if (!ledger->Append(std::move(entries)).ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE(ledger->Sync().ok());
  EXPECT_EQ(ledger->Size(), uint64_t{kThreads * kCalls * 3});
  // Every call's entries are present, contiguous and in order.
  std::set<std::string> seen;
  for (uint64_t seq = 0; seq < ledger->Size(); seq += 3) {
    std::string call;
    for (uint64_t k = 0; k < 3; ++k) {
      auto rec = ledger->GetEntry(seq + k);
      ASSERT_TRUE(rec.ok());
      EXPECT_EQ(rec->entry.details.at("k"), std::to_string(k));
      const std::string id = rec->entry.details.at("thread") + "/" + rec->entry.details.at("call");
      if (k == 0) {
        call = id;
      }
      EXPECT_EQ(id, call);
    }
    seen.insert(call);
  }
  EXPECT_EQ(seen.size(), size_t{kThreads * kCalls});
  const VerifyReport report = Verify(*ledger);
  EXPECT_TRUE(report.ok) << Problems(report);
}

// Appends from the ledger and from another connection, Syncs, proofs and
// checkpoints all at once: the tree ends up equal to the stored log.
TEST_F(SqliteLedgerTest, ConcurrentAppendsSyncsProofsAndCheckpoints) {
  auto ledger = OpenLedger();
  constexpr int kAppenders = 4;
  constexpr int kCalls = 25;
  constexpr int kForeign = 20;
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kAppenders; ++t) {
    threads.emplace_back([&] {
      for (int c = 0; c < kCalls; ++c) {
        if (!ledger->Append(MakeEntries(0, 2)).ok()) {
          ++failures;
        }
      }
    });
  }
  threads.emplace_back([&] {
    auto conn = store::Connection::Open(file_, /*read_only=*/false, {});
    if (!conn.ok()) {
      ++failures;
      return;
    }
    for (int c = 0; c < kForeign; ++c) {
      store::WriteTxn txn(**conn);
      const std::vector<Entry> entries = MakeEntries(1, 3);
      if (!txn.Begin().ok() || !ledger->AppendInTransaction(txn, entries).ok() ||
          !txn.Commit().ok()) {
        ++failures;
      }
    }
  });
  std::thread observer([&] {
    while (!stop.load()) {
      if (!ledger->Sync().ok()) {
        ++failures;
      }
      const uint64_t n = ledger->Size();
      if (n > 0) {
        auto proof = ledger->InclusionProof(n - 1, n);
        auto root = ledger->RootAt(n);
        auto rec = ledger->GetEntry(n - 1);
        if (!proof.ok() || !root.ok() || !rec.ok() ||
            !VerifyInclusion(rec->leaf_hash, n - 1, n, *proof, *root).ok()) {
          ++failures;
        }
      }
      auto note = ledger->Checkpoint(log_signer_, kOrigin);
      if (!note.ok() || !VerifyCheckpoint(*note, log_key_).ok()) {
        ++failures;
      }
    }
  });
  for (auto& t : threads) {
    t.join();
  }
  stop = true;
  observer.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE(ledger->Sync().ok());
  EXPECT_EQ(ledger->Size(), uint64_t{kAppenders * kCalls * 2 + kForeign * 3});
  const VerifyReport report = Verify(*ledger);
  EXPECT_TRUE(report.ok) << Problems(report);
  EXPECT_EQ(report.root, ledger->Root());
  EXPECT_EQ(report.checkpoints, report.checkpoints_verified);
  auto reopened = OpenLedger();
  EXPECT_EQ(reopened->Root(), ledger->Root());
}

// ---------------------------------------------------------------------------
// Other connections and transactions.

// Encoded entries (what the stores' audit hook carries) are stored byte for
// byte; anything that is not a canonical entry is refused whole.
TEST_F(SqliteLedgerTest, AppendEncodedInTransactionStoresTheGivenBytes) {
  auto ledger = OpenLedger();
  auto conn = store::Connection::Open(file_, /*read_only=*/false, {});
  ASSERT_TRUE(conn.ok());
  const std::vector<Entry> entries = MakeEntries(0, 2);
  const std::vector<Bytes> encoded = {Encode(entries[0]), Encode(entries[1])};
  {
    store::WriteTxn idle(**conn);  // not begun
    EXPECT_EQ(ledger->AppendEncodedInTransaction(idle, encoded).code(),
              StatusCode::kFailedPrecondition)
        << "outside a transaction";
  }
  {
    store::WriteTxn txn(**conn);
    ASSERT_TRUE(txn.Begin().ok());
    std::vector<Bytes> bad = encoded;
    bad[1].insert(bad[1].begin(), ' ');  // not canonical
    EXPECT_EQ(ledger->AppendEncodedInTransaction(txn, bad).code(), StatusCode::kInvalidArgument);
    ASSERT_TRUE(ledger->AppendEncodedInTransaction(txn, encoded).ok());
    ASSERT_TRUE(txn.Commit().ok());
  }
  ASSERT_TRUE(ledger->Sync().ok());
  ASSERT_EQ(ledger->Size(), 2u) << "the refused batch inserted nothing";
  auto rec = ledger->GetEntry(1);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->bytes, encoded[1]);
  EXPECT_EQ(rec->entry, entries[1]);
}

// A log written before format version 2 holds JSON entries; after the
// upgrade new entries are compact. Both kinds verify, sync, prove and read
// back as the same entries, each hashed over its stored bytes.
TEST_F(SqliteLedgerTest, LogOfBothFormatsVerifiesAndProves) {
  auto ledger = OpenLedger();
  std::vector<Bytes> old_bytes;
  {
    auto conn = store::Connection::Open(file_, /*read_only=*/false, {});
    ASSERT_TRUE(conn.ok());
    store::WriteTxn txn(**conn);
    ASSERT_TRUE(txn.Begin().ok());
    for (const Entry& e : MakeEntries(0, 5)) {
      old_bytes.push_back(EncodeJsonV1(e));
      expected_.Append(LeafHash(old_bytes.back()));
    }
    ASSERT_TRUE(ledger->AppendEncodedInTransaction(txn, old_bytes).ok());
    ASSERT_TRUE(txn.Commit().ok());
  }
  ASSERT_TRUE(ledger->Sync().ok());
  ASSERT_TRUE(ledger->Checkpoint(log_signer_, kOrigin).ok());
  AppendEntries(*ledger, 10);  // entries 5..9, compact
  ASSERT_TRUE(ledger->Checkpoint(log_signer_, kOrigin).ok());
  EXPECT_EQ(ledger->Root(), expected_.Root());
  auto old_rec = ledger->GetEntry(2);
  ASSERT_TRUE(old_rec.ok());
  EXPECT_EQ(old_rec->bytes, old_bytes[2]);
  EXPECT_EQ(old_rec->entry, MakeEntry(2));
  auto new_rec = ledger->GetEntry(7);
  ASSERT_TRUE(new_rec.ok());
  EXPECT_EQ(*EntryFormatVersion(new_rec->bytes), kEntryVersion);
  EXPECT_EQ(new_rec->entry, MakeEntry(7));
  EXPECT_LT(new_rec->bytes.size() * 2, EncodeJsonV1(MakeEntry(7)).size());
  auto proof = ledger->InclusionProof(2, 10);
  ASSERT_TRUE(proof.ok());
  EXPECT_TRUE(VerifyInclusion(LeafHash(old_bytes[2]), 2, 10, *proof, ledger->Root()).ok());
  auto history = ledger->EntriesForPatientRef(kRefA, std::nullopt, 100);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 4u);  // seq 0, 3 (JSON), 6, 9 (compact)
  EXPECT_EQ((*history)[1].entry, MakeEntry(3));
  EXPECT_EQ((*history)[2].entry, MakeEntry(6));
  const VerifyReport report = Verify(*ledger);
  EXPECT_TRUE(report.ok) << Problems(report);
  EXPECT_EQ(report.entries, 10u);
  EXPECT_EQ(report.checkpoints_verified, 2u);
  EXPECT_TRUE(VerifyFile().ok);
  ledger.reset();
  auto reopened = OpenLedger();
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->Root(), expected_.Root());
}

// A database of schema 2 (before compact rows): JSON entries, 32-byte leaf
// hashes, hex patient references and a time column, as an older medvault
// wrote them. Opening migrates the tables by copying the rows unchanged; old
// and new rows then verify, prove and page through one patient's history.
TEST_F(SqliteLedgerTest, MigratesASchema2DatabaseKeepingItsRows) {
  std::vector<Bytes> old_bytes;
  {
    RawDb raw(file_);
    raw.Exec(
        "PRAGMA journal_mode=WAL;"
        "CREATE TABLE ledger_migrations(version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT "
        "NULL);"
        "INSERT INTO ledger_migrations VALUES (1, 0), (2, 0);"
        "CREATE TABLE ledger_entries (seq INTEGER PRIMARY KEY NOT NULL CHECK (seq >= 0), entry "
        "BLOB NOT NULL, leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32), patient_ref "
        "TEXT, time_ms INTEGER NOT NULL) STRICT;"
        "CREATE INDEX ledger_entries_by_patient_ref ON ledger_entries(patient_ref) WHERE "
        "patient_ref IS NOT NULL;"
        "CREATE TABLE checkpoints (size INTEGER PRIMARY KEY NOT NULL CHECK (size >= 0), root "
        "BLOB NOT NULL CHECK (length(root) = 32), note TEXT NOT NULL, created_at_ms INTEGER NOT "
        "NULL) STRICT;"
        "CREATE TABLE cosignatures (size INTEGER NOT NULL REFERENCES checkpoints(size), witness "
        "TEXT NOT NULL, line TEXT NOT NULL, received_at_ms INTEGER NOT NULL, PRIMARY KEY (size, "
        "witness)) STRICT, WITHOUT ROWID;"
        "CREATE TABLE ledger_epochs (epoch INTEGER PRIMARY KEY NOT NULL CHECK (epoch >= 1), "
        "started_at_ms INTEGER NOT NULL, archived_entries INTEGER NOT NULL, first_bad_entry "
        "INTEGER, damage TEXT NOT NULL, acknowledged_at_ms INTEGER, acknowledged_by TEXT, "
        "acknowledgement TEXT) STRICT;"
        "CREATE TABLE ledger_archive_entries (epoch INTEGER NOT NULL, seq INTEGER NOT NULL, entry "
        "BLOB NOT NULL, leaf_hash BLOB NOT NULL, patient_ref TEXT, time_ms INTEGER NOT NULL, "
        "PRIMARY KEY (epoch, seq)) STRICT, WITHOUT ROWID;"
        "CREATE TABLE ledger_archive_checkpoints (epoch INTEGER NOT NULL, size INTEGER NOT NULL, "
        "root BLOB NOT NULL, note TEXT NOT NULL, created_at_ms INTEGER NOT NULL, PRIMARY KEY "
        "(epoch, size)) STRICT, WITHOUT ROWID;"
        "CREATE TABLE ledger_archive_cosignatures (epoch INTEGER NOT NULL, size INTEGER NOT NULL, "
        "witness TEXT NOT NULL, line TEXT NOT NULL, received_at_ms INTEGER NOT NULL, PRIMARY KEY "
        "(epoch, size, witness)) STRICT, WITHOUT ROWID;");
    for (uint64_t i = 0; i < 6; ++i) {
      const Entry e = MakeEntry(i);
      old_bytes.push_back(EncodeJsonV1(e));
      const Hash leaf = LeafHash(old_bytes.back());
      expected_.Append(leaf);
      raw.Exec("INSERT INTO ledger_entries VALUES (" + std::to_string(i) + ", x'" +
               ToHex(old_bytes.back()) + "', x'" + ToHex(HashView(leaf)) + "', " +
               (e.patient_ref.empty() ? std::string("NULL") : "'" + e.patient_ref + "'") + ", " +
               std::to_string(e.time_ms) + ")");
    }
  }
  // What `medvault ledger verify` does before anything migrated the file.
  const VerifyReport before = VerifyFile();
  EXPECT_TRUE(before.ok) << Problems(before);
  EXPECT_EQ(before.entries, 6u);

  auto ledger = OpenLedger();
  ASSERT_NE(ledger, nullptr);
  EXPECT_EQ(ledger->Size(), 6u);
  EXPECT_EQ(ledger->Root(), expected_.Root());
  AppendEntries(*ledger, 12);
  ASSERT_TRUE(ledger->Checkpoint(log_signer_, kOrigin).ok());
  {
    RawDb raw(file_);
    EXPECT_EQ(raw.Count("ledger_migrations"), 3);
    EXPECT_EQ(raw.Count("ledger_entries WHERE seq < 6 AND length(leaf_hash) = 32 AND "
                        "(patient_ref IS NULL OR typeof(patient_ref) = 'text')"),
              6)
        << "old rows are copied unchanged";
    EXPECT_EQ(raw.Count("ledger_entries WHERE seq >= 6 AND length(leaf_hash) = 8 AND "
                        "(patient_ref IS NULL OR (typeof(patient_ref) = 'blob' AND "
                        "length(patient_ref) = 16))"),
              6)
        << "new rows are compact";
    EXPECT_EQ(raw.Count("pragma_table_info('ledger_entries') WHERE name = 'time_ms'"), 0);
  }
  EXPECT_EQ(ledger->GetEntry(4)->bytes, old_bytes[4]);
  auto history = ledger->EntriesForPatientRef(kRefA, std::nullopt, 100);
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  ASSERT_EQ(history->size(), 4u);  // 0, 3 (old rows), 6, 9 (new rows)
  EXPECT_EQ((*history)[0].seq, 0u);
  EXPECT_EQ((*history)[3].seq, 9u);
  auto page = ledger->EntriesForPatientRef(kRefA, 3, 1);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].seq, 6u);
  const VerifyReport after = Verify(*ledger);
  EXPECT_TRUE(after.ok) << Problems(after);
  EXPECT_EQ(after.entries, 12u);
  EXPECT_EQ(after.root, expected_.Root());
}

TEST_F(SqliteLedgerTest, AppendInTransactionRollsBackWithTheCallersTransaction) {
  auto ledger = OpenLedger();
  AppendEntries(*ledger, 3);
  auto conn = store::Connection::Open(file_, /*read_only=*/false, {});
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE(
      (*conn)
          ->ExecScript("CREATE TABLE actions (id INTEGER PRIMARY KEY, what TEXT)", "create table")
          .ok());
  const std::vector<Entry> entries = MakeEntries(3, 2);

  // Outside a transaction: refused.
  {
    store::WriteTxn idle(**conn);
    EXPECT_EQ(ledger->AppendInTransaction(idle, entries).code(), StatusCode::kFailedPrecondition);
  }
  {
    store::WriteTxn txn(**conn);
    ASSERT_TRUE(txn.Begin().ok());
    ASSERT_TRUE((*conn)->ExecScript("INSERT INTO actions(what) VALUES ('x')", "insert").ok());
    ASSERT_TRUE(ledger->AppendInTransaction(txn, entries).ok());
    // The action fails afterwards: no commit, the transaction rolls back.
  }
  RawDb raw(file_);
  EXPECT_EQ(raw.Count("actions"), 0);
  EXPECT_EQ(raw.Count("ledger_entries"), 3);
  ASSERT_TRUE(ledger->Sync().ok());
  EXPECT_EQ(ledger->Size(), 3u);

  // An invalid entry fails the call before anything is inserted.
  {
    store::WriteTxn txn(**conn);
    ASSERT_TRUE(txn.Begin().ok());
    std::vector<Entry> bad = entries;
    bad[1].actor.clear();
    EXPECT_EQ(ledger->AppendInTransaction(txn, bad).code(), StatusCode::kInvalidArgument);
    ASSERT_TRUE(txn.Commit().ok());
  }
  EXPECT_EQ(raw.Count("ledger_entries"), 3);

  // Committed: action and entries together.
  {
    store::WriteTxn txn(**conn);
    ASSERT_TRUE(txn.Begin().ok());
    ASSERT_TRUE((*conn)->ExecScript("INSERT INTO actions(what) VALUES ('y')", "insert").ok());
    ASSERT_TRUE(ledger->AppendInTransaction(txn, entries).ok());
    ASSERT_TRUE(txn.Commit().ok());
  }
  for (const Entry& e : entries) {
    expected_.Append(LeafHash(Encode(e)));
  }
  EXPECT_EQ(raw.Count("actions"), 1);
  EXPECT_EQ(ledger->Size(), 3u);  // not seen before Sync
  ASSERT_TRUE(ledger->Sync().ok());
  EXPECT_EQ(ledger->Size(), 5u);
  EXPECT_EQ(ledger->Root(), expected_.Root());
}

// A transaction the log cannot join is refused, not written elsewhere: one
// on another database file, and one of another backend (which no backend but
// SQLite can produce yet, hence the stand-in).
TEST_F(SqliteLedgerTest, AppendInTransactionRefusesTransactionsItCannotJoin) {
  auto ledger = OpenLedger();
  const std::vector<Entry> entries = MakeEntries(0, 1);
  auto other = store::Connection::Open(dir_.path() / "other.db", /*read_only=*/false, {});
  ASSERT_TRUE(other.ok());
  {
    store::WriteTxn txn(**other);
    ASSERT_TRUE(txn.Begin().ok());
    Status st = ledger->AppendInTransaction(txn, entries);
    EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(st.message().find("database"), std::string::npos) << st.message();
  }
  class OtherBackend final : public store::Transaction {
   public:
    std::string_view backend() const override { return "postgresql"; }
  } foreign;
  Status st = ledger->AppendInTransaction(foreign, entries);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("postgresql"), std::string::npos) << st.message();
  EXPECT_EQ(
      ledger->AppendEncodedInTransaction(foreign, std::vector<Bytes>{Encode(entries[0])}).code(),
      StatusCode::kFailedPrecondition);
  ASSERT_TRUE(ledger->Sync().ok());
  EXPECT_EQ(ledger->Size(), 0u);
}

// The seam end to end: a store given the log as its AuditSink commits a
// write and its entries together, and a refused write leaves no entry.
TEST_F(SqliteLedgerTest, AStoreWriteAndItsEntriesCommitTogetherThroughTheSink) {
  auto ledger = OpenLedger();
  store::SqliteOptions options;
  options.audit_sink = ledger.get();
  auto md = store::OpenSqliteMetadataStore(file_, options);
  ASSERT_TRUE(md.ok()) << md.status().ToString();
  store::PatientRecord p;
  p.patient_id = std::string(32, 'c');
  p.created_at_ms = 1;
  const std::vector<Bytes> audit = {Encode(MakeEntry(0))};
  ASSERT_TRUE((*md)->CreatePatient(p, audit).ok());
  // The same id again: refused, and its entry with it.
  EXPECT_EQ((*md)->CreatePatient(p, std::vector<Bytes>{Encode(MakeEntry(1))}).code(),
            StatusCode::kAlreadyExists);
  // A valid row whose entry is not canonical: the row rolls back too.
  store::SegmentVersionRecord rec;
  rec.patient_id = p.patient_id;
  rec.path = "other/a";
  rec.version = 1;
  rec.category = "other";
  rec.media_type = "application/json";
  rec.object_key = "k1";
  rec.content_sha256 = Bytes(32, 7);
  EXPECT_EQ((*md)->InsertSegmentVersion(rec, std::vector<Bytes>{Bytes{'{'}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(*(*md)->CountSegmentVersions(), 0);
  ASSERT_TRUE((*md)->InsertSegmentVersion(rec, std::vector<Bytes>{Encode(MakeEntry(2))}).ok());
  ASSERT_TRUE(ledger->Sync().ok());
  ASSERT_EQ(ledger->Size(), 2u);
  EXPECT_EQ(ledger->GetEntry(0)->bytes, audit[0]);
  EXPECT_EQ(ledger->GetEntry(1)->entry, MakeEntry(2));
}

TEST_F(SqliteLedgerTest, EntriesFromAnotherConnectionArePickedUpInSeqOrder) {
  auto ledger = OpenLedger();
  auto conn = store::Connection::Open(file_, /*read_only=*/false, {});
  ASSERT_TRUE(conn.ok());
  uint64_t next = 0;
  for (int round = 0; round < 5; ++round) {
    AppendEntries(*ledger, next + 2);
    next += 2;
    store::WriteTxn txn(**conn);
    ASSERT_TRUE(txn.Begin().ok());
    const std::vector<Entry> entries = MakeEntries(next, 3);
    ASSERT_TRUE(ledger->AppendInTransaction(txn, entries).ok());
    ASSERT_TRUE(txn.Commit().ok());
    for (const Entry& e : entries) {
      expected_.Append(LeafHash(Encode(e)));
    }
    next += 3;
  }
  // The ledger's own appends after the foreign rows wait for Sync, and proofs
  // at a larger size Sync by themselves.
  auto proof = ledger->InclusionProof(next - 1, next);
  ASSERT_TRUE(proof.ok()) << proof.status().ToString();
  EXPECT_EQ(ledger->Size(), next);
  EXPECT_EQ(ledger->Root(), expected_.Root());
  EXPECT_TRUE(VerifyInclusion(LeafHash(Encode(MakeEntry(next - 1))), next - 1, next, *proof,
                              expected_.Root())
                  .ok());
  const VerifyReport report = Verify(*ledger);
  EXPECT_TRUE(report.ok) << Problems(report);
}

TEST_F(SqliteLedgerTest, SharesTheFileWithTheMetadataStore) {
  auto meta = store::OpenSqliteMetadataStore(file_);
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  auto ledger = OpenLedger();
  ASSERT_NE(ledger, nullptr);
  AppendEntries(*ledger, 3);
  RawDb raw(file_);
  EXPECT_EQ(raw.Count("ledger_migrations"), 3);  // 2: damage and epochs; 3: compact rows
  EXPECT_EQ(raw.Count("schema_migrations"), 3);  // 2: key versions and slots; 3: inline
  EXPECT_TRUE((*meta)->SchemaVersion().ok());
}

// ---------------------------------------------------------------------------
// Patient history.

TEST_F(SqliteLedgerTest, EntriesForPatientRefPagesThroughOneHistory) {
  auto ledger = OpenLedger();
  AppendEntries(*ledger, 30);
  std::vector<uint64_t> seqs;
  std::optional<uint64_t> after;
  while (true) {
    auto page = ledger->EntriesForPatientRef(kRefA, after, 4);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    if (page->empty()) {
      break;
    }
    EXPECT_LE(page->size(), 4u);
    for (const LedgerRecord& r : *page) {
      EXPECT_EQ(r.entry.patient_ref, kRefA);
      EXPECT_EQ(r.entry, MakeEntry(r.seq));
      seqs.push_back(r.seq);
    }
    after = page->back().seq;
  }
  std::vector<uint64_t> want;
  for (uint64_t i = 0; i < 30; i += 3) {
    want.push_back(i);
  }
  EXPECT_EQ(seqs, want);
  EXPECT_TRUE(ledger->EntriesForPatientRef(kRefA, std::nullopt, 0)->empty());
  EXPECT_TRUE(ledger->EntriesForPatientRef(std::string(32, 'c'), std::nullopt, 10)->empty());
  EXPECT_EQ(ledger->EntriesForPatientRef("patient-42", std::nullopt, 10).status().code(),
            StatusCode::kInvalidArgument);
  // The index column is not hashed, but a row moved into a patient's history
  // is caught when read.
  RawDb raw(file_);
  raw.Exec("UPDATE ledger_entries SET patient_ref = '" + kRefA + "' WHERE seq = 1");
  auto tampered = ledger->EntriesForPatientRef(kRefA, std::nullopt, 100);
  EXPECT_EQ(tampered.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(tampered.status().message().find("entry 1"), std::string::npos);
  const VerifyReport report = Verify(*ledger);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_entry, 1u);
  ASSERT_FALSE(report.problems.empty());
  EXPECT_EQ(report.problems[0], "entry 1: patient_ref index column does not match the entry");
}

// ---------------------------------------------------------------------------
// Checkpoints and cosignatures.

TEST_F(SqliteLedgerTest, CheckpointsAreSignedStoredAndStable) {
  auto ledger = OpenLedger();
  EXPECT_EQ(ledger->LatestCheckpoint().status().code(), StatusCode::kNotFound);
  AppendEntries(*ledger, 10);
  auto note = ledger->Checkpoint(log_signer_, kOrigin);
  ASSERT_TRUE(note.ok()) << note.status().ToString();
  auto cp = VerifyCheckpoint(*note, log_key_);
  ASSERT_TRUE(cp.ok());
  EXPECT_EQ(cp->size, 10u);
  EXPECT_EQ(cp->root, expected_.Root());
  EXPECT_EQ(cp->origin, kOrigin);
  // Nothing new: the same note comes back.
  EXPECT_EQ(*ledger->Checkpoint(log_signer_, kOrigin), *note);
  AppendEntries(*ledger, 15);
  auto note2 = ledger->Checkpoint(log_signer_, kOrigin);
  ASSERT_TRUE(note2.ok());
  auto latest = ledger->LatestCheckpoint();
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->size, 15u);
  EXPECT_EQ(latest->note, *note2);
  EXPECT_EQ(ledger->CheckpointAt(10)->note, *note);
  EXPECT_EQ(ledger->CheckpointAt(11).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ledger->Checkpoint(log_signer_, "bad\norigin").status().code(),
            StatusCode::kInvalidArgument);
  // A witness can follow with the ledger's consistency proof.
  auto proof = ledger->ConsistencyProof(10, 15);
  ASSERT_TRUE(proof.ok());
  EXPECT_TRUE(VerifyConsistency(10, 15, cp->root, latest->root, *proof).ok());
  const VerifyReport report = Verify(*ledger);
  EXPECT_TRUE(report.ok) << Problems(report);
  EXPECT_EQ(report.checkpoints, 2u);
  EXPECT_EQ(report.checkpoints_verified, 2u);
}

TEST_F(SqliteLedgerTest, CosignaturesAreVerifiedStoredAndCounted) {
  auto ledger = OpenLedger();
  AppendEntries(*ledger, 12);
  const std::string note = *ledger->Checkpoint(log_signer_, kOrigin);
  const std::string body = ParseSignedNote(note)->text;
  const Signer w1 = MakeSigner("w1.example", 11);
  const Signer w2 = MakeSigner("w2.example", 12);
  const Signer w3 = MakeSigner("w3.example", 13);
  const std::vector<VerifierKey> all = {w1.CosignatureVerifier(), w2.CosignatureVerifier(),
                                        w3.CosignatureVerifier()};

  EXPECT_FALSE(ledger->IsWitnessed(12, 1, all));
  EXPECT_TRUE(ledger->IsWitnessed(12, 0, all));
  ASSERT_TRUE(ledger->AddCosignature(12, *Cosign(w1, body, 1700000000), all[0]).ok());
  // Without the final newline is fine too; a newer line replaces the older.
  std::string line2 = *Cosign(w2, body, 1700000001);
  line2.pop_back();
  ASSERT_TRUE(ledger->AddCosignature(12, line2, all[1]).ok());
  ASSERT_TRUE(ledger->AddCosignature(12, *Cosign(w2, body, 1700000002), all[1]).ok());

  auto lines = ledger->WitnessedBy(12);
  ASSERT_TRUE(lines.ok());
  ASSERT_EQ(lines->size(), 2u);
  EXPECT_EQ((*lines)[0].witness, "w1.example");
  EXPECT_EQ((*lines)[1].witness, "w2.example");
  EXPECT_EQ(*VerifyCosignature(body, (*lines)[1].line, all[1]), 1700000002u);
  EXPECT_EQ((*lines)[1].line.back(), '\n');

  EXPECT_TRUE(ledger->IsWitnessed(12, 2, all));
  EXPECT_FALSE(ledger->IsWitnessed(12, 3, all));
  // The same witness listed twice counts once.
  const std::vector<VerifierKey> twice = {all[0], all[0]};
  EXPECT_FALSE(ledger->IsWitnessed(12, 2, twice));
  EXPECT_FALSE(ledger->IsWitnessed(13, 1, all));  // no such checkpoint

  // Refused: a line by another key, over another checkpoint, for a size
  // without checkpoint.
  EXPECT_EQ(ledger->AddCosignature(12, *Cosign(w3, body, 1), all[1]).code(),
            StatusCode::kFailedPrecondition);
  Checkpoint other = *ParseCheckpointBody(body);
  other.size = 11;
  EXPECT_EQ(ledger->AddCosignature(12, *Cosign(w3, FormatCheckpointBody(other), 1), all[2]).code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(ledger->AddCosignature(99, *Cosign(w3, body, 1), all[2]).code(), StatusCode::kNotFound);
  EXPECT_EQ(ledger->WitnessedBy(12)->size(), 2u);

  VerifyReport report = Verify(*ledger, std::span<const VerifierKey>(all.data(), 1));
  EXPECT_TRUE(report.ok) << Problems(report);
  EXPECT_EQ(report.cosignatures_verified, 1u);
  EXPECT_EQ(report.cosignatures_unchecked, 1u);

  // A stored line altered in the database no longer counts and is reported.
  RawDb raw(file_);
  raw.Exec(
      "UPDATE cosignatures SET line = replace(line, substr(line, -10, 4), 'AAAA') "
      "WHERE witness = 'w1.example'");
  EXPECT_FALSE(ledger->IsWitnessed(12, 2, all));
  EXPECT_TRUE(ledger->IsWitnessed(12, 1, all));
  report = Verify(*ledger, all);
  EXPECT_FALSE(report.ok);
  ASSERT_FALSE(report.problems.empty());
  EXPECT_EQ(report.problems[0].rfind("cosignature by w1.example at size 12: ", 0), 0u)
      << Problems(report);
}

// ---------------------------------------------------------------------------
// Tampering.

class TamperTest : public SqliteLedgerTest {
 protected:
  void SetUp() override {
    ledger_ = OpenLedger();
    ASSERT_NE(ledger_, nullptr);
    AppendEntries(*ledger_, 4);
    ASSERT_TRUE(ledger_->Checkpoint(log_signer_, kOrigin).ok());
    AppendEntries(*ledger_, 10);
    ASSERT_TRUE(ledger_->Checkpoint(log_signer_, kOrigin).ok());
    const VerifyReport clean = Verify(*ledger_);
    ASSERT_TRUE(clean.ok) << Problems(clean);
  }

  // A fresh open refuses the log; the message names the place.
  std::string FreshOpenError() {
    auto l = SqliteLedger::Open(file_);
    EXPECT_FALSE(l.ok());
    if (l.ok()) {
      return "";
    }
    EXPECT_EQ(l.status().code(), StatusCode::kDataLoss) << l.status().ToString();
    return l.status().message();
  }

  std::unique_ptr<SqliteLedger> ledger_;
  RawDb raw_{file_};
};

TEST_F(TamperTest, EditedEntryBytes) {
  Entry edited = MakeEntry(5);
  edited.effect = std::string(kEffectDeny);
  raw_.SetEntry(5, Encode(edited), /*with_leaf_hash=*/false);

  const VerifyReport r = Verify(*ledger_);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_entry, 5u);
  ASSERT_FALSE(r.problems.empty());
  EXPECT_EQ(r.problems[0], "entry 5: leaf hash does not match its content") << Problems(r);
  EXPECT_EQ(r.first_bad_checkpoint, 10u);
  EXPECT_EQ(FreshOpenError(), "entry 5: leaf hash does not match its content");
  EXPECT_EQ(ledger_->GetEntry(5).status().code(), StatusCode::kDataLoss);

  const VerifyReport offline = VerifyFile();
  EXPECT_FALSE(offline.ok);
  EXPECT_EQ(offline.problems.at(0), "entry 5: leaf hash does not match its content");
  // The checkpoint at 4 still holds; the one at 10 pins the change to 4..9.
  EXPECT_EQ(offline.first_bad_checkpoint, 10u);
  EXPECT_NE(Problems(offline).find("checkpoint at size 10: root does not match the stored "
                                   "entries (the checkpoint at size 4 matches: the change lies "
                                   "in entries 4..9)"),
            std::string::npos)
      << Problems(offline);
}

TEST_F(TamperTest, EditedEntryWithRecomputedLeafHash) {
  Entry edited = MakeEntry(2);
  edited.actor = "someone-else";
  raw_.SetEntry(2, Encode(edited), /*with_leaf_hash=*/true);

  // The process that loaded the log names the entry exactly.
  const VerifyReport r = Verify(*ledger_);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_entry, 2u);
  EXPECT_EQ(r.problems.at(0), "entry 2: differs from the entry this process loaded earlier");
  EXPECT_EQ(r.first_bad_checkpoint, 4u);
  // Offline, the signed checkpoints pin it down to entries 0..3.
  const VerifyReport offline = VerifyFile();
  EXPECT_FALSE(offline.ok);
  EXPECT_FALSE(offline.first_bad_entry.has_value());
  EXPECT_EQ(offline.first_bad_checkpoint, 4u);
  EXPECT_EQ(offline.problems.at(0),
            "checkpoint at size 4: root does not match the stored entries (the change lies in "
            "entries 0..3)");
  EXPECT_EQ(FreshOpenError(), "checkpoint at size 10: root does not match the stored entries");
}

TEST_F(TamperTest, DeletedEntry) {
  raw_.Exec("DELETE FROM ledger_entries WHERE seq = 6");
  const VerifyReport r = Verify(*ledger_);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_entry, 6u);
  EXPECT_EQ(r.problems.at(0), "entry 6 is missing (the next stored entry is 7)");
  EXPECT_EQ(r.entries, 6u);
  EXPECT_NE(Problems(r).find("checkpoint at size 10: cannot be checked past the missing entry 6"),
            std::string::npos)
      << Problems(r);
  EXPECT_EQ(r.checkpoints_verified, 1u);  // size 4 still verifies
  EXPECT_EQ(FreshOpenError(), "entry 6 is missing (the next stored entry is 7)");
  EXPECT_EQ(VerifyFile().problems.at(0), "entry 6 is missing (the next stored entry is 7)");
}

TEST_F(TamperTest, ReorderedEntries) {
  // Swap entries 5 and 7 with their leaf hashes: each row is self-consistent.
  raw_.Exec("UPDATE ledger_entries SET seq = 1000 WHERE seq = 5");
  raw_.Exec("UPDATE ledger_entries SET seq = 5 WHERE seq = 7");
  raw_.Exec("UPDATE ledger_entries SET seq = 7 WHERE seq = 1000");

  const VerifyReport r = Verify(*ledger_);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_entry, 5u);
  EXPECT_EQ(r.problems.at(0), "entry 5: differs from the entry this process loaded earlier");
  EXPECT_EQ(r.problems.at(1), "entry 7: differs from the entry this process loaded earlier");
  const VerifyReport offline = VerifyFile();
  EXPECT_FALSE(offline.ok);
  EXPECT_EQ(offline.problems.at(0),
            "checkpoint at size 10: root does not match the stored entries (the checkpoint at "
            "size 4 matches: the change lies in entries 4..9)");
  EXPECT_EQ(FreshOpenError(), "checkpoint at size 10: root does not match the stored entries");
}

TEST_F(TamperTest, TruncatedAfterACheckpoint) {
  AppendEntries(*ledger_, 15);
  raw_.Exec("DELETE FROM ledger_entries WHERE seq >= 8");

  const Status sync = ledger_->Sync();
  EXPECT_EQ(sync.code(), StatusCode::kDataLoss);
  EXPECT_EQ(sync.message(), "log truncated: 15 entries were loaded, only 8 are stored");
  // Proofs and checkpoints that need a Sync are refused, never signed.
  EXPECT_EQ(ledger_->Checkpoint(log_signer_, kOrigin).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(ledger_->LatestCheckpoint()->size, 10u);

  const VerifyReport r = Verify(*ledger_);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.problems.at(0),
            "log truncated: this process had loaded 15 entries, only 8 are "
            "stored");
  EXPECT_EQ(r.problems.at(1),
            "checkpoint at size 10: the log has only 8 entries (entries 8..9 "
            "are missing: truncated)");
  EXPECT_EQ(r.first_bad_entry, 8u);
  EXPECT_EQ(r.first_bad_checkpoint, 10u);
  EXPECT_EQ(FreshOpenError(),
            "checkpoint at size 10 is beyond the 8 stored entries (log "
            "truncated)");
  EXPECT_EQ(VerifyFile().problems.at(0),
            "checkpoint at size 10: the log has only 8 entries (entries 8..9 are missing: "
            "truncated)");
}

TEST_F(TamperTest, TruncatedWithItsCheckpoints) {
  // The attacker also deletes the checkpoints past the cut: the database
  // alone is consistent again, which is what witnesses are for; the process
  // that had loaded the log still notices.
  raw_.Exec("DELETE FROM ledger_entries WHERE seq >= 6");
  raw_.Exec("DELETE FROM checkpoints WHERE size > 6");
  EXPECT_EQ(ledger_->Sync().code(), StatusCode::kDataLoss);
  const VerifyReport r = Verify(*ledger_);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.problems.at(0),
            "log truncated: this process had loaded 10 entries, only 6 are "
            "stored");
  EXPECT_TRUE(VerifyFile().ok);
}

TEST_F(TamperTest, EditedCheckpointRoot) {
  raw_.Exec("UPDATE checkpoints SET root = zeroblob(32) WHERE size = 10");
  const VerifyReport r = Verify(*ledger_);
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(r.first_bad_entry.has_value());
  EXPECT_EQ(r.first_bad_checkpoint, 10u);
  EXPECT_EQ(r.problems.at(0),
            "checkpoint at size 10: root does not match the stored entries "
            "(the checkpoint at size 4 matches: the change lies in entries "
            "4..9)");
  EXPECT_EQ(r.problems.at(1),
            "checkpoint at size 10: the signed note does not match the stored "
            "size and root");
  EXPECT_EQ(FreshOpenError(), "checkpoint at size 10: root does not match the stored entries");
}

TEST_F(TamperTest, EditedCheckpointNote) {
  raw_.Exec(
      "UPDATE checkpoints SET note = replace(note, char(10) || '4' || char(10), "
      "char(10) || '5' || char(10)) WHERE size = 4");
  const VerifyReport r = Verify(*ledger_);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_checkpoint, 4u);
  EXPECT_EQ(r.problems.at(0), "checkpoint at size 4: checkpoint signature invalid");
  // A note signed by another key.
  const Signer other = MakeSigner(kOrigin, 2);
  Checkpoint cp = *ParseCheckpointBody(ParseSignedNote(ledger_->CheckpointAt(10)->note)->text);
  const std::string forged = *SignCheckpoint(other, cp);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(
      sqlite3_prepare_v2(db, "UPDATE checkpoints SET note = ?1 WHERE size = 10", -1, &s, nullptr),
      SQLITE_OK);
  sqlite3_bind_text(s, 1, forged.data(), static_cast<int>(forged.size()), SQLITE_TRANSIENT);
  EXPECT_EQ(sqlite3_step(s), SQLITE_DONE);
  sqlite3_finalize(s);
  sqlite3_close(db);
  const VerifyReport r2 = VerifyFile();
  EXPECT_NE(Problems(r2).find("checkpoint at size 10: checkpoint is not signed by the log key"),
            std::string::npos)
      << Problems(r2);
}

TEST_F(TamperTest, AppendedRowWithABadLeafHashIsRefusedBySync) {
  raw_.Exec(
      "INSERT INTO ledger_entries(seq, entry, leaf_hash, patient_ref) "
      "SELECT 10, entry, zeroblob(8), NULL FROM ledger_entries WHERE seq = 9");
  const Status st = ledger_->Sync();
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_EQ(st.message(), "entry 10: leaf hash does not match its content");
  EXPECT_EQ(ledger_->Size(), 10u);  // nothing from the bad batch was loaded
}

TEST_F(TamperTest, NonCanonicalEntryIsReported) {
  // Same meaning, other bytes, with a matching leaf hash: in format version 2
  // the time as a non-minimal LEB128 integer (a continuation into a zero
  // byte); in format version 1, valid JSON with a space.
  Bytes binary = Encode(MakeEntry(3));
  ASSERT_EQ(binary[6] & 0x80, 0) << "the last byte of the 6-byte time";
  binary[6] |= 0x80;
  binary.insert(binary.begin() + 7, 0x00);
  raw_.SetEntry(3, binary, /*with_leaf_hash=*/true);
  std::string text(AsString(EncodeJsonV1(MakeEntry(5))));
  text.insert(1, " ");
  raw_.SetEntry(5, ToBytes(text), /*with_leaf_hash=*/true);
  const VerifyReport r = VerifyFile();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_entry, 3u);
  ASSERT_GE(r.problems.size(), 2u);
  EXPECT_EQ(r.problems.at(0),
            "entry 3: not a canonical entry (entry time_ms has a non-minimal integer)");
  EXPECT_EQ(r.problems.at(1), "entry 5: not a canonical entry (entry is not in canonical form)");
}

TEST(SqliteLedgerFile, VerifyDatabaseWithoutALedger) {
  TempDir dir;
  const fs::path file = dir.path() / "other.db";
  {
    RawDb raw(file);
    raw.Exec("CREATE TABLE t(x)");
  }
  const Signer s = MakeSigner("log.example", 1);
  EXPECT_EQ(SqliteLedger::VerifyDatabase(file, s.Verifier()).status().code(),
            StatusCode::kNotFound);
  EXPECT_FALSE(SqliteLedger::VerifyDatabase(dir.path() / "missing.db", s.Verifier()).ok());
}

}  // namespace
}  // namespace medvault::ledger
