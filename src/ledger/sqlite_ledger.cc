// The ledger on SQLite, in the shared database file.
//
// Writers: the database's one writer connection (store::SharedWriter), shared
// with the metadata store and the other stores on the file. Append goes
// through its group committer: concurrent callers (read audits, decisions)
// and the segment writes of the metadata store waiting at the same moment
// share one transaction and one WAL fsync. Checkpoints, cosignatures and
// epochs lock the connection for their own transaction. Stores append their
// writes' entries with AppendInTransaction inside their own (grouped) items.
// SQLite serialises writers, and every writer takes seq = MAX(seq) + 1, so
// every snapshot holds a contiguous prefix of the log.
//
// Readers: a small pool of read-only connections. Sync and the verification
// read inside one read transaction, so entries and checkpoints come from one
// snapshot.
//
// The in-memory MerkleTree only grows: Sync appends rows it has not seen
// (checking each stored leaf hash against the entry), and the Append leader
// appends its own rows right after its commit when nothing else was written
// in between (otherwise the next Sync loads them).
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/ids.h"
#include "crypto/crypto.h"
#include "ledger/internal.h"
#include "ledger/ledger.h"
#include "store/group_commit.h"
#include "store/sqlite_util.h"

namespace medvault::ledger {
namespace {

using store::Connection;
using store::Migration;
using store::ReadTxn;
using store::Stmt;
using store::WriteTxn;

constexpr int kReadConnections = 3;
constexpr size_t kMaxProblems = 100;
constexpr std::string_view kMigrationTable = "ledger_migrations";

// ---------------------------------------------------------------------------
// Schema. Migrations are append-only: never edit one that has shipped.

constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE ledger_entries (
  seq         INTEGER PRIMARY KEY NOT NULL CHECK (seq >= 0),
  entry       BLOB NOT NULL,
  leaf_hash   BLOB NOT NULL CHECK (length(leaf_hash) = 32),
  patient_ref TEXT,
  time_ms     INTEGER NOT NULL
) STRICT;
CREATE INDEX ledger_entries_by_patient_ref ON ledger_entries(patient_ref)
  WHERE patient_ref IS NOT NULL;
CREATE TABLE checkpoints (
  size          INTEGER PRIMARY KEY NOT NULL CHECK (size >= 0),
  root          BLOB NOT NULL CHECK (length(root) = 32),
  note          TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL
) STRICT;
CREATE TABLE cosignatures (
  size           INTEGER NOT NULL REFERENCES checkpoints(size),
  witness        TEXT NOT NULL,
  line           TEXT NOT NULL,
  received_at_ms INTEGER NOT NULL,
  PRIMARY KEY (size, witness)
) STRICT, WITHOUT ROWID;
)sql"},
    // Damage and epochs (docs/ledger.md): the rows of a damaged epoch are
    // moved here unchanged, and the epoch that follows is recorded.
    {2, R"sql(
CREATE TABLE ledger_epochs (
  epoch              INTEGER PRIMARY KEY NOT NULL CHECK (epoch >= 1),
  started_at_ms      INTEGER NOT NULL,
  archived_entries   INTEGER NOT NULL,
  first_bad_entry    INTEGER,
  damage             TEXT NOT NULL,
  acknowledged_at_ms INTEGER,
  acknowledged_by    TEXT,
  acknowledgement    TEXT
) STRICT;
CREATE TABLE ledger_archive_entries (
  epoch       INTEGER NOT NULL,
  seq         INTEGER NOT NULL,
  entry       BLOB NOT NULL,
  leaf_hash   BLOB NOT NULL,
  patient_ref TEXT,
  time_ms     INTEGER NOT NULL,
  PRIMARY KEY (epoch, seq)
) STRICT, WITHOUT ROWID;
CREATE TABLE ledger_archive_checkpoints (
  epoch         INTEGER NOT NULL,
  size          INTEGER NOT NULL,
  root          BLOB NOT NULL,
  note          TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  PRIMARY KEY (epoch, size)
) STRICT, WITHOUT ROWID;
CREATE TABLE ledger_archive_cosignatures (
  epoch          INTEGER NOT NULL,
  size           INTEGER NOT NULL,
  witness        TEXT NOT NULL,
  line           TEXT NOT NULL,
  received_at_ms INTEGER NOT NULL,
  PRIMARY KEY (epoch, size, witness)
) STRICT, WITHOUT ROWID;
)sql"},
    // Compact rows (docs/ledger.md, "Storage"): a read audit's row and index
    // cost about 130 bytes besides the entry in layout 1-2. From here on a
    // row stores the first 8 bytes of the leaf hash (the per-row check that
    // names a damaged entry; the Merkle tree and the signed checkpoints still
    // use the full hash, recomputed from the entry), the patient reference as
    // its 16 bytes, and no time column (it was never read). Rows written
    // before keep their bytes (a 32-byte leaf hash, the reference as hex
    // text): the table is rebuilt by copying them unchanged.
    {3, R"sql(
CREATE TABLE ledger_entries_compact (
  seq         INTEGER PRIMARY KEY NOT NULL CHECK (seq >= 0),
  entry       BLOB NOT NULL,
  leaf_hash   BLOB NOT NULL CHECK (length(leaf_hash) IN (8, 32)),
  patient_ref ANY
) STRICT;
INSERT INTO ledger_entries_compact(seq, entry, leaf_hash, patient_ref)
  SELECT seq, entry, leaf_hash, patient_ref FROM ledger_entries;
DROP TABLE ledger_entries;
ALTER TABLE ledger_entries_compact RENAME TO ledger_entries;
CREATE INDEX ledger_entries_by_patient_ref ON ledger_entries(patient_ref)
  WHERE patient_ref IS NOT NULL;
CREATE TABLE ledger_archive_entries_compact (
  epoch       INTEGER NOT NULL,
  seq         INTEGER NOT NULL,
  entry       BLOB NOT NULL,
  leaf_hash   BLOB NOT NULL,
  patient_ref ANY,
  PRIMARY KEY (epoch, seq)
) STRICT, WITHOUT ROWID;
INSERT INTO ledger_archive_entries_compact(epoch, seq, entry, leaf_hash, patient_ref)
  SELECT epoch, seq, entry, leaf_hash, patient_ref FROM ledger_archive_entries;
DROP TABLE ledger_archive_entries;
ALTER TABLE ledger_archive_entries_compact RENAME TO ledger_archive_entries;
)sql"},
};

// The per-row check of rows written since migration 3: the first 8 bytes of
// the leaf hash. Not a security control (whoever can edit a row can
// recompute it; the signed roots over full hashes are the control): it
// finds accidental damage and names the entry, 2^-64 to miss one.
constexpr size_t kStoredLeafBytes = 8;

// The stored check matches: the whole leaf hash (rows before migration 3)
// or its first kStoredLeafBytes.
bool StoredLeafMatches(const Bytes& stored, const Hash& leaf) {
  return (stored.size() == kHashSize || stored.size() == kStoredLeafBytes) &&
         std::equal(stored.begin(), stored.end(), leaf.begin());
}

// ---------------------------------------------------------------------------
// SQL.

constexpr std::string_view kSqlNextSeq = "SELECT COALESCE(MAX(seq), -1) + 1 FROM ledger_entries";
constexpr std::string_view kSqlInsertEntry =
    "INSERT INTO ledger_entries(seq, entry, leaf_hash, patient_ref) VALUES (?1, ?2, ?3, ?4)";
constexpr std::string_view kSqlEntriesFrom =
    "SELECT seq, entry, leaf_hash FROM ledger_entries WHERE seq >= ?1 ORDER BY seq";
constexpr std::string_view kSqlAllEntries =
    "SELECT seq, entry, leaf_hash, patient_ref FROM ledger_entries ORDER BY seq";
constexpr std::string_view kSqlGetEntry =
    "SELECT entry, leaf_hash FROM ledger_entries WHERE seq = ?1";
constexpr std::string_view kSqlEntriesForRef =
    "SELECT seq, entry, leaf_hash FROM ledger_entries WHERE patient_ref IN (?1, ?4) AND seq > ?2 "
    "ORDER BY seq LIMIT ?3";
constexpr std::string_view kSqlInsertCheckpoint =
    "INSERT INTO checkpoints(size, root, note, created_at_ms) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT(size) DO NOTHING";
constexpr std::string_view kSqlLatestCheckpoint =
    "SELECT size, root, note, created_at_ms FROM checkpoints ORDER BY size DESC LIMIT 1";
constexpr std::string_view kSqlCheckpointAt =
    "SELECT size, root, note, created_at_ms FROM checkpoints WHERE size = ?1";
constexpr std::string_view kSqlAllCheckpoints =
    "SELECT size, root, note, created_at_ms FROM checkpoints ORDER BY size";
constexpr std::string_view kSqlUpsertCosignature =
    "INSERT INTO cosignatures(size, witness, line, received_at_ms) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT(size, witness) DO UPDATE SET line = excluded.line, "
    "received_at_ms = excluded.received_at_ms";
constexpr std::string_view kSqlCosignaturesAt =
    "SELECT size, witness, line, received_at_ms FROM cosignatures WHERE size = ?1 "
    "ORDER BY witness";
constexpr std::string_view kSqlAllCosignatures =
    "SELECT size, witness, line, received_at_ms FROM cosignatures ORDER BY size, witness";
constexpr std::string_view kSqlHasLedger =
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'ledger_entries'";
constexpr std::string_view kSqlHasEpochs =
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'ledger_epochs'";
constexpr std::string_view kSqlCurrentEpoch = "SELECT COALESCE(MAX(epoch), 0) FROM ledger_epochs";
constexpr std::string_view kSqlEpochs =
    "SELECT epoch, started_at_ms, archived_entries, first_bad_entry, damage, acknowledged_at_ms, "
    "acknowledged_by, acknowledgement FROM ledger_epochs ORDER BY epoch";
constexpr std::string_view kSqlArchivedEpochs =
    "SELECT DISTINCT epoch FROM ledger_archive_entries ORDER BY epoch";
constexpr std::string_view kSqlAcknowledge =
    "UPDATE ledger_epochs SET acknowledged_at_ms = ?2, acknowledged_by = ?3, acknowledgement = ?4 "
    "WHERE epoch = ?1 AND acknowledged_at_ms IS NULL";
constexpr std::string_view kSqlInsertEpoch =
    "INSERT INTO ledger_epochs(epoch, started_at_ms, archived_entries, first_bad_entry, damage) "
    "VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr std::string_view kSqlArchivedEntriesForRef =
    "SELECT seq, entry, leaf_hash FROM ledger_archive_entries WHERE epoch = ?4 AND "
    "patient_ref IN (?1, ?5) AND seq > ?2 ORDER BY seq LIMIT ?3";
constexpr std::string_view kSqlStoredEntryAt =
    "SELECT entry, leaf_hash FROM ledger_entries WHERE seq = ?1";

// The queries the verification reads: the current epoch's tables, or one
// archived epoch's rows (the epoch is an integer formatted by us).
// The statements a verification reads (the current tables, or an archived
// epoch's with the epoch bound as ?1). String literals: the connection's
// statement cache keys on their address and contents, so they must outlive it.
constexpr std::string_view kSqlArchivedEntries =
    "SELECT seq, entry, leaf_hash, patient_ref FROM ledger_archive_entries "
    "WHERE epoch = ?1 ORDER BY seq";
constexpr std::string_view kSqlArchivedCheckpoints =
    "SELECT size, root, note, created_at_ms FROM ledger_archive_checkpoints "
    "WHERE epoch = ?1 ORDER BY size";
constexpr std::string_view kSqlArchivedCosignatures =
    "SELECT size, witness, line, received_at_ms FROM ledger_archive_cosignatures "
    "WHERE epoch = ?1 ORDER BY size, witness";

struct VerifySql {
  std::string_view entries = kSqlAllEntries;
  std::string_view checkpoints = kSqlAllCheckpoints;
  std::string_view cosignatures = kSqlAllCosignatures;
  std::optional<int64_t> epoch;  // archived: bound as ?1

  static VerifySql Archived(uint64_t epoch) {
    VerifySql q;
    q.entries = kSqlArchivedEntries;
    q.checkpoints = kSqlArchivedCheckpoints;
    q.cosignatures = kSqlArchivedCosignatures;
    q.epoch = static_cast<int64_t>(epoch);
    return q;
  }
};

std::string U(uint64_t v) { return std::to_string(v); }

// The SQL arguments of a page of entries: the cursor (-1 = from the start)
// and the row limit, capped at `max_rows`.
Result<std::pair<int64_t, int64_t>> PageArgs(std::optional<uint64_t> after_seq, size_t limit,
                                             int64_t max_rows) {
  int64_t after = -1;
  if (after_seq.has_value()) {
    MV_RETURN_IF_ERROR(store::CheckInt64(*after_seq, "paging cursor"));
    after = static_cast<int64_t>(*after_seq);
  }
  const int64_t capped =
      limit > static_cast<size_t>(max_rows) ? max_rows : static_cast<int64_t>(limit);
  return std::pair<int64_t, int64_t>(after, capped);
}

// An entry ready to insert.
struct Row {
  Bytes bytes;
  Hash leaf;
  Bytes patient_ref;  // the reference's 16 bytes, or empty
};

// The index column's value for a reference: its 16 bytes (since migration
// 3). REQUIRES IsValidPatientRef(ref) or ref empty.
Bytes RefColumn(std::string_view ref) {
  auto raw = FromHex(ref);
  return raw.ok() ? std::move(raw).value() : Bytes();
}

// The index column as the entry's reference would be: lower-case hex of a
// blob (rows since migration 3), text as stored (rows before), "" for NULL.
std::string StoredRef(const Stmt& s, int col) {
  if (s.IsNull(col)) {
    return std::string();
  }
  if (s.IsBlob(col)) {
    return ToHex(s.ColBlob(col));
  }
  return s.ColText(col);
}

Result<std::vector<Row>> PrepareRows(std::span<const Entry> entries) {
  std::vector<Row> rows;
  rows.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    auto bytes = internal::ValidateAndEncode(e);
    if (!bytes.ok()) {
      return entries.size() == 1 ? bytes.status()
                                 : bytes.status().WithContext("entry " + U(i) + " of the batch");
    }
    Row row;
    row.bytes = std::move(bytes).value();
    row.leaf = LeafHash(row.bytes);
    row.patient_ref = RefColumn(e.patient_ref);
    rows.push_back(std::move(row));
  }
  return rows;
}

Result<uint64_t> NextSeq(Connection& conn) {
  MV_STMT(s, conn, kSqlNextSeq);
  MV_ASSIGN_OR_RETURN(bool row, s.Step("read ledger size"));
  if (!row) {
    return Status::Internal("read ledger size: no row");
  }
  return static_cast<uint64_t>(s.ColInt(0));
}

// REQUIRES a write transaction open on conn.
Status InsertRows(Connection& conn, uint64_t first_seq, std::span<const Row> rows) {
  MV_STMT(s, conn, kSqlInsertEntry);
  uint64_t seq = first_seq;
  for (const Row& row : rows) {
    s.Int(1, static_cast<int64_t>(seq++))
        .Blob(2, row.bytes)
        .Blob(3, ByteView(row.leaf.data(), kStoredLeafBytes));
    if (row.patient_ref.empty()) {
      s.Null(4);
    } else {
      s.Blob(4, row.patient_ref);
    }
    MV_RETURN_IF_ERROR(s.Exec("append ledger entry"));
    sqlite3_reset(s_raw);
  }
  return Status::Ok();
}

// A read transaction (one snapshot) on a reader; ends on scope exit.
CheckpointRecord ReadCheckpointRow(const Stmt& s) {
  CheckpointRecord r;
  r.size = static_cast<uint64_t>(s.ColInt(0));
  const Bytes root = s.ColBlob(1);
  if (root.size() == kHashSize) {
    std::copy(root.begin(), root.end(), r.root.begin());
  }
  r.note = s.ColText(2);
  r.created_at_ms = s.ColInt(3);
  return r;
}

CosignatureRecord ReadCosignatureRow(const Stmt& s) {
  CosignatureRecord r;
  r.size = static_cast<uint64_t>(s.ColInt(0));
  r.witness = s.ColText(1);
  r.line = s.ColText(2);
  r.received_at_ms = s.ColInt(3);
  return r;
}

Result<LedgerRecord> ReadRecord(uint64_t seq, const Bytes& bytes, const Bytes& stored_leaf) {
  LedgerRecord rec;
  rec.seq = seq;
  rec.leaf_hash = LeafHash(bytes);
  if (!StoredLeafMatches(stored_leaf, rec.leaf_hash)) {
    return Status::DataLoss("entry " + U(seq) + ": leaf hash does not match its content");
  }
  auto entry = Decode(bytes);
  if (!entry.ok()) {
    return Status::DataLoss("entry " + U(seq) + ": not a canonical entry (" +
                            entry.status().message() + ")");
  }
  rec.entry = std::move(entry).value();
  rec.bytes = bytes;
  return rec;
}

// Collects problems in order, capped.
class Problems {
 public:
  explicit Problems(VerifyReport& report) : report_(report) {}
  void Add(std::string what) {
    report_.ok = false;
    if (report_.problems.size() < kMaxProblems) {
      report_.problems.push_back(std::move(what));
    } else {
      ++dropped_;
    }
  }
  ~Problems() {
    if (dropped_ > 0) {
      report_.problems.push_back("... and " + U(dropped_) + " more problems");
    }
  }
  Problems(const Problems&) = delete;
  Problems& operator=(const Problems&) = delete;

 private:
  VerifyReport& report_;
  uint64_t dropped_ = 0;
};

// What this process loaded before, for VerifyAll's in-place edit check.
struct LoadedView {
  uint64_t size = 0;
  std::function<Hash(uint64_t)> leaf;  // REQUIRES index < size
};

// The verification behind VerifyAll and VerifyDatabase.
// Runs the ledger's migrations (tables ledger_entries, checkpoints,
// cosignatures, the epoch and archive tables; migration table
// ledger_migrations). Outside any transaction. Idempotent.
Status CreateSchema(Connection& conn) {
  return store::RunMigrations(conn, kMigrationTable, kMigrations);
}

Result<VerifyReport> VerifyOn(Connection& conn, const VerifierKey* log_key,
                              std::span<const VerifierKey> witnesses, const LoadedView& loaded,
                              const VerifySql& sql = {}) {
  VerifyReport report;
  MerkleTree tree;
  {
    Problems problems(report);
    ReadTxn txn(conn);
    MV_RETURN_IF_ERROR(txn.Begin());

    // Entries.
    std::optional<uint64_t> gap;  // first missing seq
    {
      MV_STMT(s, conn, sql.entries);
      if (sql.epoch.has_value()) {
        s.Int(1, *sql.epoch);
      }
      uint64_t expected = 0;
      while (true) {
        MV_ASSIGN_OR_RETURN(bool row, s.Step("read ledger entries"));
        if (!row) {
          break;
        }
        const int64_t raw_seq = s.ColInt(0);
        const uint64_t seq = static_cast<uint64_t>(raw_seq);
        if (!gap.has_value() && (raw_seq < 0 || seq != expected)) {
          gap = expected;
          problems.Add("entry " + U(expected) + " is missing (the next stored entry is " +
                       std::to_string(raw_seq) + ")");
          if (!report.first_bad_entry.has_value()) {
            report.first_bad_entry = expected;
          }
        }
        const Bytes bytes = s.ColBlob(1);
        const Bytes stored_leaf = s.ColBlob(2);
        const Hash leaf = LeafHash(bytes);
        const std::string where = "entry " + std::to_string(raw_seq) + ": ";
        bool bad = false;
        if (!StoredLeafMatches(stored_leaf, leaf)) {
          problems.Add(where + "leaf hash does not match its content");
          bad = true;
        }
        auto entry = Decode(bytes);
        if (!entry.ok()) {
          problems.Add(where + "not a canonical entry (" + entry.status().message() + ")");
          bad = true;
        } else {
          if (StoredRef(s, 3) != entry->patient_ref) {
            problems.Add(where + "patient_ref index column does not match the entry");
            bad = true;
          }
        }
        if (!gap.has_value()) {
          if (seq < loaded.size && loaded.leaf(seq) != leaf) {
            problems.Add(where + "differs from the entry this process loaded earlier");
            bad = true;
          }
          tree.Append(leaf);  // the hash of the content, not the stored one
          ++expected;
        }
        if (bad && !report.first_bad_entry.has_value()) {
          report.first_bad_entry = seq;
        }
      }
    }
    report.entries = tree.Size();
    report.root = tree.Root();
    if (!gap.has_value() && loaded.size > tree.Size()) {
      problems.Add("log truncated: this process had loaded " + U(loaded.size) + " entries, only " +
                   U(tree.Size()) + " are stored");
      if (!report.first_bad_entry.has_value()) {
        report.first_bad_entry = tree.Size();
      }
    }

    // Checkpoints.
    std::map<uint64_t, std::string> bodies;  // size -> verified checkpoint body
    {
      MV_STMT(s, conn, sql.checkpoints);
      if (sql.epoch.has_value()) {
        s.Int(1, *sql.epoch);
      }
      std::optional<uint64_t> last_good;
      while (true) {
        MV_ASSIGN_OR_RETURN(bool row, s.Step("read checkpoints"));
        if (!row) {
          break;
        }
        ++report.checkpoints;
        const CheckpointRecord cp = ReadCheckpointRow(s);
        const Bytes root_col = s.ColBlob(1);
        const std::string where = "checkpoint at size " + U(cp.size) + ": ";
        std::vector<std::string> found;
        if (cp.size > tree.Size()) {
          if (gap.has_value()) {
            found.push_back(where + "cannot be checked past the missing entry " + U(*gap));
          } else {
            found.push_back(where + "the log has only " + U(tree.Size()) + " entries (entries " +
                            U(tree.Size()) + ".." + U(cp.size - 1) + " are missing: truncated)");
          }
        } else if (root_col.size() != kHashSize || *tree.Root(cp.size) != cp.root) {
          std::string msg = where + "root does not match the stored entries";
          if (last_good.has_value()) {
            msg += " (the checkpoint at size " + U(*last_good) +
                   " matches: the change lies in entries " + U(*last_good) + ".." + U(cp.size - 1) +
                   ")";
          } else {
            msg += " (the change lies in entries 0.." + U(cp.size - 1) + ")";
          }
          found.push_back(std::move(msg));
        }
        auto signed_cp =
            log_key != nullptr
                ? VerifyCheckpoint(cp.note, *log_key)
                : Result<Checkpoint>(Status::FailedPrecondition("no log key to verify with"));
        if (!signed_cp.ok()) {
          found.push_back(where + signed_cp.status().message());
        } else if (signed_cp->size != cp.size || signed_cp->root != cp.root ||
                   root_col.size() != kHashSize) {
          found.push_back(where + "the signed note does not match the stored size and root");
        } else {
          bodies[cp.size] = FormatCheckpointBody(*signed_cp);
        }
        if (found.empty()) {
          ++report.checkpoints_verified;
          last_good = cp.size;
          report.last_good_checkpoint = cp.size;
        } else {
          for (std::string& f : found) {
            problems.Add(std::move(f));
          }
          if (!report.first_bad_checkpoint.has_value()) {
            report.first_bad_checkpoint = cp.size;
          }
        }
      }
    }

    // Cosignatures.
    {
      MV_STMT(s, conn, sql.cosignatures);
      if (sql.epoch.has_value()) {
        s.Int(1, *sql.epoch);
      }
      while (true) {
        MV_ASSIGN_OR_RETURN(bool row, s.Step("read cosignatures"));
        if (!row) {
          break;
        }
        const CosignatureRecord co = ReadCosignatureRow(s);
        const VerifierKey* key = nullptr;
        for (const VerifierKey& w : witnesses) {
          if (w.name() == co.witness) {
            key = &w;
            break;
          }
        }
        if (key == nullptr) {
          ++report.cosignatures_unchecked;
          continue;
        }
        const std::string where = "cosignature by " + co.witness + " at size " + U(co.size) + ": ";
        auto body = bodies.find(co.size);
        if (body == bodies.end()) {
          problems.Add(where + "no valid checkpoint of that size");
          continue;
        }
        auto ts = VerifyCosignature(body->second, co.line, *key);
        if (!ts.ok()) {
          problems.Add(where + ts.status().message());
          continue;
        }
        ++report.cosignatures_verified;
      }
    }
  }
  return report;
}

Result<std::vector<EpochRecord>> ReadEpochRows(Connection& conn);

}  // namespace

// ===========================================================================

struct SqliteLedger::Impl {
  ~Impl() {
    // Appends still queued refer to this Impl (their after_commit updates
    // the tree): wait for them, since the shared writer may outlive us.
    {
      std::unique_lock<std::mutex> lock(async_mu);
      async_cv.wait(lock, [this] { return async_pending == 0; });
    }
    // Readers first: the writer, closing last (when no store on the file
    // holds it), checkpoints and removes the WAL.
    readers.reset();
    shared.reset();
  }

  std::mutex async_mu;
  std::condition_variable async_cv;
  size_t async_pending = 0;  // guarded by async_mu: AppendAsync items not done

  // ---- tree

  uint64_t TreeSize() const {
    std::shared_lock<std::shared_mutex> lock(tree_mu);
    return tree.Size();
  }

  Status Sync() {
    std::lock_guard<std::mutex> sync_lock(sync_mu);
    const uint64_t from = TreeSize();
    std::vector<Hash> loaded;
    std::optional<CheckpointRecord> latest;
    {
      store::ReaderPool::Lease r(*readers);
      ReadTxn txn(r.conn());
      MV_RETURN_IF_ERROR(txn.Begin());
      {
        MV_STMT(s, r.conn(), kSqlEntriesFrom);
        s.Int(1, static_cast<int64_t>(from));
        uint64_t expected = from;
        while (true) {
          MV_ASSIGN_OR_RETURN(bool row, s.Step("read ledger entries"));
          if (!row) {
            break;
          }
          const uint64_t seq = static_cast<uint64_t>(s.ColInt(0));
          if (seq != expected) {
            return Status::DataLoss("entry " + U(expected) +
                                    " is missing (the next stored entry is " + U(seq) + ")");
          }
          const Bytes bytes = s.ColBlob(1);
          const Bytes stored = s.ColBlob(2);
          const Hash leaf = LeafHash(bytes);
          if (!StoredLeafMatches(stored, leaf)) {
            return Status::DataLoss("entry " + U(seq) + ": leaf hash does not match its content");
          }
          loaded.push_back(leaf);
          ++expected;
        }
      }
      if (loaded.empty() && from > 0) {
        MV_ASSIGN_OR_RETURN(uint64_t stored, NextSeq(r.conn()));
        if (stored < from) {
          return Status::DataLoss("log truncated: " + U(from) + " entries were loaded, only " +
                                  U(stored) + " are stored");
        }
      }
      {
        MV_STMT(s, r.conn(), kSqlLatestCheckpoint);
        MV_ASSIGN_OR_RETURN(bool row, s.Step("read latest checkpoint"));
        if (row) {
          latest = ReadCheckpointRow(s);
          if (s.ColBlob(1).size() != kHashSize) {
            return Status::DataLoss("checkpoint at size " + U(latest->size) +
                                    ": stored root is not 32 bytes");
          }
        }
      }
    }
    std::unique_lock<std::shared_mutex> lock(tree_mu);
    // The Append leader may have added some of these rows meanwhile.
    for (size_t i = 0; i < loaded.size(); ++i) {
      const uint64_t seq = from + i;
      if (seq < tree.Size()) {
        if (*tree.LeafHashAt(seq) != loaded[i]) {
          return Status::DataLoss("entry " + U(seq) + ": changed while being loaded");
        }
        continue;
      }
      tree.Append(loaded[i]);
    }
    if (latest.has_value()) {
      if (latest->size > tree.Size()) {
        return Status::DataLoss("checkpoint at size " + U(latest->size) + " is beyond the " +
                                U(tree.Size()) + " stored entries (log truncated)");
      }
      if (*tree.Root(latest->size) != latest->root) {
        return Status::DataLoss("checkpoint at size " + U(latest->size) +
                                ": root does not match the stored entries");
      }
    }
    return Status::Ok();
  }

  Status SyncIfBelow(uint64_t size) {
    if (size > TreeSize()) {
      return Sync();
    }
    return Status::Ok();
  }

  // ---- epochs

  Status LoadEpoch() {
    store::ReaderPool::Lease r(*readers);
    MV_STMT(s, r.conn(), kSqlCurrentEpoch);
    MV_ASSIGN_OR_RETURN(bool row, s.Step("read the ledger epoch"));
    epoch = row ? static_cast<uint64_t>(s.ColInt(0)) : 0;
    return Status::Ok();
  }

  // Moves the current epoch's rows to the archive and starts the next epoch
  // with an entry that commits to what `damage` and the verification found.
  Status StartNewEpoch(const Status& damage, const std::optional<VerifierKey>& log_key) {
    VerifyReport report;
    {
      store::ReaderPool::Lease r(*readers);
      MV_ASSIGN_OR_RETURN(report,
                          VerifyOn(r.conn(), log_key ? &*log_key : nullptr, {}, LoadedView{}));
    }
    const uint64_t old_epoch = epoch.load();
    const uint64_t new_epoch = old_epoch + 1;
    const int64_t now = NowUnixMillis();
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock, shared->Lock(options.synchronous_full));
    WriteTxn txn(shared->conn());
    MV_RETURN_IF_ERROR(txn.Begin());
    MV_ASSIGN_OR_RETURN(const uint64_t stored, NextSeq(shared->conn()));

    Entry e;
    e.time_ms = now;
    e.actor = "system";
    e.action = std::string(kActionLedgerEpoch);
    e.effect = std::string(kEffectDone);
    e.reasons = {"ledger-damaged"};
    e.resource = {"ledger", ""};
    e.details["epoch"] = U(new_epoch);
    e.details["previous_epoch"] = U(old_epoch);
    e.details["previous_stored_entries"] = U(stored);
    e.details["previous_verified_entries"] = U(report.entries);
    e.details["previous_root"] = ToHex(HashView(report.root));
    std::string first_problem = report.problems.empty() ? damage.message() : report.problems[0];
    if (first_problem.size() > 512) {
      first_problem.resize(512);
    }
    e.details["damage"] = first_problem;
    std::optional<uint64_t> first_bad = report.first_bad_entry;
    if (first_bad.has_value()) {
      e.details["first_bad_entry"] = U(*first_bad);
      MV_STMT(s, shared->conn(), kSqlStoredEntryAt);
      s.Int(1, static_cast<int64_t>(*first_bad));
      MV_ASSIGN_OR_RETURN(bool row, s.Step("read the damaged entry"));
      if (row) {
        const Bytes found = s.ColBlob(0);
        e.details["found_entry_sha256"] = ToHex(crypto::Sha256(found));
        e.details["found_leaf_hash"] = ToHex(s.ColBlob(1));
        e.details["found_entry_leaf"] = ToHex(HashView(LeafHash(found)));
      }
    }
    if (report.first_bad_checkpoint.has_value()) {
      e.details["first_bad_checkpoint"] = U(*report.first_bad_checkpoint);
    }
    if (report.last_good_checkpoint.has_value()) {
      e.details["last_good_checkpoint"] = U(*report.last_good_checkpoint);
      MV_STMT(s, shared->conn(), kSqlCheckpointAt);
      s.Int(1, static_cast<int64_t>(*report.last_good_checkpoint));
      MV_ASSIGN_OR_RETURN(bool row, s.Step("read the last good checkpoint"));
      if (row) {
        e.details["last_good_checkpoint_root"] = ToHex(s.ColBlob(1));
      }
    }
    MV_ASSIGN_OR_RETURN(std::vector<Row> rows, PrepareRows(std::span<const Entry>(&e, 1)));

    const std::string n = U(old_epoch);
    const std::string archive =
        "INSERT INTO ledger_archive_entries SELECT " + n +
        ", seq, entry, leaf_hash, patient_ref FROM ledger_entries;"
        "INSERT INTO ledger_archive_checkpoints SELECT " +
        n +
        ", size, root, note, created_at_ms FROM checkpoints;"
        "INSERT INTO ledger_archive_cosignatures SELECT " +
        n +
        ", size, witness, line, received_at_ms FROM cosignatures;"
        "DELETE FROM cosignatures; DELETE FROM checkpoints; DELETE FROM ledger_entries;";
    MV_RETURN_IF_ERROR(
        shared->conn().ExecScript(archive.c_str(), "archive the damaged ledger epoch"));
    {
      MV_STMT(s, shared->conn(), kSqlInsertEpoch);
      s.Int(1, static_cast<int64_t>(new_epoch)).Int(2, now).Int(3, static_cast<int64_t>(stored));
      if (first_bad.has_value()) {
        s.Int(4, static_cast<int64_t>(*first_bad));
      } else {
        s.Null(4);
      }
      s.Text(5, first_problem);
      MV_RETURN_IF_ERROR(s.Exec("record the ledger epoch"));
    }
    MV_RETURN_IF_ERROR(InsertRows(shared->conn(), 0, rows));
    MV_RETURN_IF_ERROR(txn.Commit());
    {
      std::unique_lock<std::shared_mutex> tree_lock(tree_mu);
      tree = MerkleTree();
    }
    epoch = new_epoch;
    return Status::Ok();
  }

  // ---- group commit

  // Appends in the database's group commit (store::SharedWriter): the rows
  // join the transaction of every write waiting at that moment on this file,
  // the segment writes of the metadata store included, and are durable when
  // it returns OK. The tree takes the new leaves at once when they follow
  // its last one (else the next Sync loads them, in order).
  Status Append(std::vector<Row> rows) {
    uint64_t first = 0;
    store::SharedWriter::Work work;
    work.full_sync = options.synchronous_full;
    work.apply = [&](WriteTxn& txn) -> Status {
      MV_ASSIGN_OR_RETURN(first, NextSeq(txn.conn()));
      return InsertRows(txn.conn(), first, rows);
    };
    work.after_commit = [&] {
      std::unique_lock<std::shared_mutex> tree_lock(tree_mu);
      if (tree.Size() == first) {
        for (const Row& row : rows) {
          tree.Append(row.leaf);
        }
      }
    };
    shared->Submit(work);
    return work.result;
  }

  // Append without waiting (Log::AppendAsync): the same item, owned by the
  // group committer until `done` has run.
  void AppendAsync(std::vector<Row> rows, std::function<void(const Status&)> done) {
    struct Batch {
      std::vector<Row> rows;
      uint64_t first = 0;
    };
    auto batch = std::make_shared<Batch>();
    batch->rows = std::move(rows);
    auto work = std::make_shared<store::SharedWriter::Work>();
    work->full_sync = options.synchronous_full;
    work->apply = [batch](WriteTxn& txn) -> Status {
      MV_ASSIGN_OR_RETURN(batch->first, NextSeq(txn.conn()));
      return InsertRows(txn.conn(), batch->first, batch->rows);
    };
    work->after_commit = [this, batch] {
      std::unique_lock<std::shared_mutex> tree_lock(tree_mu);
      if (tree.Size() == batch->first) {
        for (const Row& row : batch->rows) {
          tree.Append(row.leaf);
        }
      }
    };
    {
      std::lock_guard<std::mutex> lock(async_mu);
      ++async_pending;
    }
    auto finished = [this] {
      // Notified under the lock: a destructor waiting for this count may
      // free the Impl as soon as the lock is released.
      std::lock_guard<std::mutex> lock(async_mu);
      --async_pending;
      async_cv.notify_all();
    };
    try {
      shared->SubmitAsync(std::move(work), [finished, done = std::move(done)](const Status& st) {
        done(st);
        finished();
      });
    } catch (...) {
      finished();  // not queued (no thread, no memory): the caller hears of it
      throw;
    }
  }

  // ---- checkpoints

  Result<CheckpointRecord> CheckpointAt(uint64_t size) {
    MV_RETURN_IF_ERROR(store::CheckInt64(size, "checkpoint size"));
    store::ReaderPool::Lease r(*readers);
    MV_STMT(s, r.conn(), kSqlCheckpointAt);
    s.Int(1, static_cast<int64_t>(size));
    MV_ASSIGN_OR_RETURN(bool row, s.Step("read checkpoint"));
    if (!row) {
      return Status::NotFound("no checkpoint of size " + U(size));
    }
    return ReadCheckpointRow(s);
  }

  Result<std::vector<CosignatureRecord>> CosignaturesAt(uint64_t size) {
    MV_RETURN_IF_ERROR(store::CheckInt64(size, "checkpoint size"));
    store::ReaderPool::Lease r(*readers);
    MV_STMT(s, r.conn(), kSqlCosignaturesAt);
    s.Int(1, static_cast<int64_t>(size));
    std::vector<CosignatureRecord> out;
    while (true) {
      MV_ASSIGN_OR_RETURN(bool row, s.Step("read cosignatures"));
      if (!row) {
        return out;
      }
      out.push_back(ReadCosignatureRow(s));
    }
  }

  // REQUIRES nothing (no lock: db_filename is set once at Open).
  Result<Connection*> ConnectionOf(store::Transaction& txn) const;

  std::filesystem::path file;
  // The file as SQLite names it (sqlite3_db_filename of the writer), to tell
  // a transaction on this database from one on another file.
  std::string db_filename;
  store::SqliteOptions options;

  // The database's one writer and group committer, shared with the stores
  // on the same file (store::SharedWriter). Its lock may be held while
  // taking tree_mu, never the reverse.
  std::shared_ptr<store::SharedWriter> shared;

  std::unique_ptr<store::ReaderPool> readers;

  std::atomic<uint64_t> epoch{0};  // the current epoch

  std::mutex sync_mu;         // one Sync at a time
  std::mutex fresh_mu;        // FreshCheckpoint: one signer at a time
  int64_t last_fresh_ms = 0;  // guarded by fresh_mu
  mutable std::shared_mutex tree_mu;
  MerkleTree tree;  // guarded by tree_mu
};

SqliteLedger::SqliteLedger(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteLedger::~SqliteLedger() = default;

Result<std::unique_ptr<SqliteLedger>> SqliteLedger::Open(const std::filesystem::path& db_file,
                                                         const store::SqliteOptions& options,
                                                         const LedgerOpenOptions& open) {
  MV_RETURN_IF_ERROR(store::CreatePrivateDatabaseFile(db_file));
  auto impl = std::make_unique<Impl>();
  impl->file = db_file;
  impl->options = options;
  MV_ASSIGN_OR_RETURN(impl->shared, store::SharedWriter::Open(db_file, options));
  {
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock,
                        impl->shared->Lock(options.synchronous_full));
    MV_RETURN_IF_ERROR(CreateSchema(impl->shared->conn()));
    if (const char* name = sqlite3_db_filename(impl->shared->conn().db(), "main");
        name != nullptr) {
      impl->db_filename = name;
    }
  }
  MV_ASSIGN_OR_RETURN(impl->readers, store::ReaderPool::Open(db_file, options, kReadConnections));
  MV_RETURN_IF_ERROR(impl->LoadEpoch());
  Status synced = impl->Sync();
  if (!synced.ok() && synced.code() == StatusCode::kDataLoss && open.new_epoch_on_damage) {
    // Degraded mode: never hidden (the new epoch's first entry and the epoch
    // record say what was found), never silent (the caller reports Epochs()).
    MV_RETURN_IF_ERROR(impl->StartNewEpoch(synced, open.log_key));
    synced = impl->Sync();
  }
  MV_RETURN_IF_ERROR(synced);
  return std::unique_ptr<SqliteLedger>(new SqliteLedger(std::move(impl)));
}

std::string EpochOrigin(std::string_view origin, uint64_t epoch) {
  return epoch == 0 ? std::string(origin) : std::string(origin) + "/epoch/" + U(epoch);
}

uint64_t SqliteLedger::Epoch() const { return impl_->epoch.load(); }

Result<std::vector<LedgerRecord>> SqliteLedger::ArchivedEntriesForPatientRef(
    uint64_t epoch, std::string_view patient_ref, std::optional<uint64_t> after_seq, size_t limit) {
  if (!IsValidPatientRef(patient_ref)) {
    return Status::InvalidArgument("patient reference must be 32 lower-case hex characters");
  }
  if (epoch >= Epoch()) {
    return Status::InvalidArgument("epoch " + U(epoch) + " is not an archived epoch");
  }
  std::vector<LedgerRecord> out;
  if (limit == 0) {
    return out;
  }
  MV_ASSIGN_OR_RETURN(const auto page, PageArgs(after_seq, limit, 100000));
  const auto [after, capped] = page;
  store::ReaderPool::Lease r(*impl_->readers);
  MV_STMT(s, r.conn(), kSqlArchivedEntriesForRef);
  const Bytes ref_bytes = RefColumn(patient_ref);
  s.Text(1, patient_ref)
      .Int(2, after)
      .Int(3, capped)
      .Int(4, static_cast<int64_t>(epoch))
      .Blob(5, ref_bytes);
  while (true) {
    MV_ASSIGN_OR_RETURN(bool row, s.Step("read a patient's archived ledger entries"));
    if (!row) {
      return out;
    }
    auto rec = ReadRecord(static_cast<uint64_t>(s.ColInt(0)), s.ColBlob(1), s.ColBlob(2));
    if (rec.ok() && rec->entry.patient_ref == patient_ref) {
      out.push_back(std::move(rec).value());
    }
  }
}

Result<std::vector<EpochRecord>> SqliteLedger::Epochs() {
  store::ReaderPool::Lease r(*impl_->readers);
  return ReadEpochRows(r.conn());
}

Result<std::vector<EpochRecord>> SqliteLedger::EpochsInDatabase(
    const std::filesystem::path& db_file, const store::SqliteOptions& options) {
  MV_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn,
                      Connection::Open(db_file, /*read_only=*/true, options));
  {
    MV_STMT(s, *conn, kSqlHasEpochs);
    MV_ASSIGN_OR_RETURN(bool row, s.Step("look for the ledger epochs"));
    if (!row || s.ColInt(0) == 0) {
      return std::vector<EpochRecord>();
    }
  }
  return ReadEpochRows(*conn);
}

namespace {

Result<std::vector<EpochRecord>> ReadEpochRows(Connection& conn) {
  MV_STMT(s, conn, kSqlEpochs);
  std::vector<EpochRecord> out;
  while (true) {
    MV_ASSIGN_OR_RETURN(bool row, s.Step("read ledger epochs"));
    if (!row) {
      return out;
    }
    EpochRecord e;
    e.epoch = static_cast<uint64_t>(s.ColInt(0));
    e.started_at_ms = s.ColInt(1);
    e.archived_entries = static_cast<uint64_t>(s.ColInt(2));
    if (!s.IsNull(3)) {
      e.first_bad_entry = static_cast<uint64_t>(s.ColInt(3));
    }
    e.damage = s.ColText(4);
    if (!s.IsNull(5)) {
      e.acknowledged_at_ms = s.ColInt(5);
      e.acknowledged_by = s.ColText(6);
      e.acknowledgement = s.ColText(7);
    }
    out.push_back(std::move(e));
  }
}

}  // namespace

Status SqliteLedger::AcknowledgeDamage(uint64_t epoch, std::string_view actor,
                                       std::string_view reason, std::string_view request_id) {
  if (reason.size() < 10 || reason.size() > 500 || !IsValidUtf8(reason)) {
    return Status::InvalidArgument("the reason must be 10..500 bytes of UTF-8");
  }
  for (unsigned char c : reason) {
    if (c < 0x20 || c == 0x7f) {
      return Status::InvalidArgument("the reason must not contain control characters");
    }
  }
  MV_RETURN_IF_ERROR(store::CheckInt64(epoch, "epoch"));
  Entry e;
  e.time_ms = NowUnixMillis();
  e.request_id = std::string(request_id);
  e.actor = std::string(actor);
  e.action = std::string(kActionLedgerDamageAcknowledged);
  e.effect = std::string(kEffectDone);
  e.resource = {"ledger", ""};
  e.details["epoch"] = U(epoch);
  // The reason is free text: the entry commits to it by hash, the text stays
  // in the epoch record (the ledger holds no prose that could name anyone).
  e.details["reason_sha256"] = ToHex(crypto::Sha256(AsBytes(reason)));
  MV_ASSIGN_OR_RETURN(std::vector<Row> rows, PrepareRows(std::span<const Entry>(&e, 1)));
  {
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock,
                        impl_->shared->Lock(impl_->options.synchronous_full));
    WriteTxn txn(impl_->shared->conn());
    MV_RETURN_IF_ERROR(txn.Begin());
    {
      MV_STMT(s, impl_->shared->conn(), kSqlAcknowledge);
      s.Int(1, static_cast<int64_t>(epoch)).Int(2, e.time_ms).Text(3, actor).Text(4, reason);
      MV_RETURN_IF_ERROR(s.Exec("acknowledge ledger damage"));
    }
    if (sqlite3_changes(impl_->shared->conn().db()) != 1) {
      bool known = false;
      {
        MV_STMT(s, impl_->shared->conn(), kSqlEpochs);
        while (true) {
          MV_ASSIGN_OR_RETURN(bool row, s.Step("read ledger epochs"));
          if (!row) {
            break;
          }
          known = known || static_cast<uint64_t>(s.ColInt(0)) == epoch;
        }
      }
      return known ? Status::FailedPrecondition("the damage of epoch " + U(epoch) +
                                                " was acknowledged already")
                   : Status::NotFound("no ledger epoch " + U(epoch));
    }
    MV_ASSIGN_OR_RETURN(uint64_t first, NextSeq(impl_->shared->conn()));
    MV_RETURN_IF_ERROR(InsertRows(impl_->shared->conn(), first, rows));
    MV_RETURN_IF_ERROR(txn.Commit());
  }
  return impl_->Sync();
}

Result<std::vector<std::pair<uint64_t, VerifyReport>>> SqliteLedger::VerifyArchivedEpochs(
    const std::filesystem::path& db_file, const VerifierKey& log_key,
    std::span<const VerifierKey> witnesses, const store::SqliteOptions& options) {
  MV_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn,
                      Connection::Open(db_file, /*read_only=*/true, options));
  std::vector<std::pair<uint64_t, VerifyReport>> out;
  {
    MV_STMT(s, *conn, kSqlHasEpochs);
    MV_ASSIGN_OR_RETURN(bool row, s.Step("look for the ledger epochs"));
    if (!row || s.ColInt(0) == 0) {
      return out;
    }
  }
  std::vector<uint64_t> epochs;
  {
    MV_STMT(s, *conn, kSqlArchivedEpochs);
    while (true) {
      MV_ASSIGN_OR_RETURN(bool row, s.Step("read archived epochs"));
      if (!row) {
        break;
      }
      epochs.push_back(static_cast<uint64_t>(s.ColInt(0)));
    }
  }
  for (uint64_t epoch : epochs) {
    MV_ASSIGN_OR_RETURN(VerifyReport rep, VerifyOn(*conn, &log_key, witnesses, LoadedView{},
                                                   VerifySql::Archived(epoch)));
    out.emplace_back(epoch, std::move(rep));
  }
  return out;
}

// The connection of `txn` when it is an open transaction of the SQLite
// backend on the ledger's own database file.
Result<Connection*> SqliteLedger::Impl::ConnectionOf(store::Transaction& txn) const {
  auto* sqlite_txn = dynamic_cast<store::WriteTxn*>(&txn);
  if (sqlite_txn == nullptr) {
    return Status::FailedPrecondition("ledger entries cannot join a transaction of the " +
                                      std::string(txn.backend()) + " backend");
  }
  if (!sqlite_txn->open()) {
    return Status::FailedPrecondition(
        "ledger entries must be appended inside the caller's write transaction");
  }
  Connection& conn = sqlite_txn->conn();
  const char* name = sqlite3_db_filename(conn.db(), "main");
  if (name == nullptr || db_filename != name) {
    return Status::FailedPrecondition(
        "ledger entries must be appended in a transaction on the ledger's database");
  }
  return &conn;
}

Status SqliteLedger::AppendInTransaction(store::Transaction& txn, std::span<const Entry> entries) {
  MV_ASSIGN_OR_RETURN(Connection * conn, impl_->ConnectionOf(txn));
  if (entries.empty()) {
    return Status::Ok();
  }
  MV_ASSIGN_OR_RETURN(std::vector<Row> rows, PrepareRows(entries));
  MV_ASSIGN_OR_RETURN(uint64_t first, NextSeq(*conn));
  return InsertRows(*conn, first, rows);
}

Status SqliteLedger::AppendEncodedInTransaction(store::Transaction& txn,
                                                std::span<const Bytes> encoded) {
  MV_ASSIGN_OR_RETURN(Connection * conn, impl_->ConnectionOf(txn));
  std::vector<Row> rows;
  rows.reserve(encoded.size());
  for (const Bytes& b : encoded) {
    // Decode checks the bytes are the canonical encoding of a valid entry;
    // the bytes themselves are what is stored and hashed.
    MV_ASSIGN_OR_RETURN(Entry e, Decode(b));
    Row row;
    row.bytes = b;
    row.leaf = LeafHash(b);
    row.patient_ref = RefColumn(e.patient_ref);
    rows.push_back(std::move(row));
  }
  if (rows.empty()) {
    return Status::Ok();
  }
  MV_ASSIGN_OR_RETURN(uint64_t first, NextSeq(*conn));
  return InsertRows(*conn, first, rows);
}

Status SqliteLedger::Append(std::vector<Entry> entries) {
  if (entries.empty()) {
    return Status::Ok();
  }
  MV_ASSIGN_OR_RETURN(std::vector<Row> rows, PrepareRows(entries));
  return impl_->Append(std::move(rows));
}

void SqliteLedger::AppendAsync(std::vector<Entry> entries,
                               std::function<void(const Status&)> done) {
  if (entries.empty()) {
    done(Status::Ok());
    return;
  }
  Result<std::vector<Row>> rows = PrepareRows(entries);
  if (!rows.ok()) {
    done(rows.status());
    return;
  }
  impl_->AppendAsync(std::move(*rows), std::move(done));
}

Status SqliteLedger::Sync() { return impl_->Sync(); }

uint64_t SqliteLedger::Size() const { return impl_->TreeSize(); }

Hash SqliteLedger::Root() const {
  std::shared_lock<std::shared_mutex> lock(impl_->tree_mu);
  return impl_->tree.Root();
}

Result<Hash> SqliteLedger::RootAt(uint64_t size) {
  MV_RETURN_IF_ERROR(impl_->SyncIfBelow(size));
  std::shared_lock<std::shared_mutex> lock(impl_->tree_mu);
  return impl_->tree.Root(size);
}

Result<std::vector<Hash>> SqliteLedger::InclusionProof(uint64_t index, uint64_t size) {
  MV_RETURN_IF_ERROR(impl_->SyncIfBelow(size));
  std::shared_lock<std::shared_mutex> lock(impl_->tree_mu);
  return impl_->tree.InclusionProof(index, size);
}

Result<std::vector<Hash>> SqliteLedger::ConsistencyProof(uint64_t old_size, uint64_t new_size) {
  MV_RETURN_IF_ERROR(impl_->SyncIfBelow(new_size));
  std::shared_lock<std::shared_mutex> lock(impl_->tree_mu);
  return impl_->tree.ConsistencyProof(old_size, new_size);
}

Result<LedgerRecord> SqliteLedger::GetEntry(uint64_t seq) {
  MV_RETURN_IF_ERROR(store::CheckInt64(seq, "entry number"));
  store::ReaderPool::Lease r(*impl_->readers);
  MV_STMT(s, r.conn(), kSqlGetEntry);
  s.Int(1, static_cast<int64_t>(seq));
  MV_ASSIGN_OR_RETURN(bool row, s.Step("read ledger entry"));
  if (!row) {
    return Status::NotFound("no ledger entry " + U(seq));
  }
  return ReadRecord(seq, s.ColBlob(0), s.ColBlob(1));
}

Result<std::vector<LedgerRecord>> SqliteLedger::EntriesForPatientRef(
    std::string_view patient_ref, std::optional<uint64_t> after_seq, size_t limit) {
  if (!IsValidPatientRef(patient_ref)) {
    return Status::InvalidArgument("patient reference must be 32 lower-case hex characters");
  }
  std::vector<LedgerRecord> out;
  if (limit == 0) {
    return out;
  }
  MV_ASSIGN_OR_RETURN(const auto page,
                      PageArgs(after_seq, limit, std::numeric_limits<int64_t>::max()));
  const auto [after, capped] = page;
  store::ReaderPool::Lease r(*impl_->readers);
  MV_STMT(s, r.conn(), kSqlEntriesForRef);
  const Bytes ref_bytes = RefColumn(patient_ref);
  s.Text(1, patient_ref).Int(2, after).Int(3, capped).Blob(4, ref_bytes);
  while (true) {
    MV_ASSIGN_OR_RETURN(bool row, s.Step("read a patient's ledger entries"));
    if (!row) {
      return out;
    }
    const uint64_t seq = static_cast<uint64_t>(s.ColInt(0));
    MV_ASSIGN_OR_RETURN(LedgerRecord rec, ReadRecord(seq, s.ColBlob(1), s.ColBlob(2)));
    if (rec.entry.patient_ref != patient_ref) {
      return Status::DataLoss("entry " + U(seq) +
                              ": patient_ref index column does not match the entry");
    }
    out.push_back(std::move(rec));
  }
}

Result<CheckpointRecord> SqliteLedger::FreshCheckpoint(const Signer& signer,
                                                       std::string_view origin,
                                                       int64_t min_interval_ms) {
  std::lock_guard<std::mutex> lock(impl_->fresh_mu);
  auto latest = LatestCheckpoint();
  const int64_t now = NowUnixMillis();
  if (latest.ok() && now - impl_->last_fresh_ms < min_interval_ms) {
    return latest;
  }
  impl_->last_fresh_ms = now;
  MV_RETURN_IF_ERROR(impl_->Sync());
  if (latest.ok() && Size() == latest->size) {
    return latest;
  }
  MV_RETURN_IF_ERROR(Checkpoint(signer, origin).status());
  return LatestCheckpoint();
}

Result<std::string> SqliteLedger::Checkpoint(const Signer& signer, std::string_view origin) {
  MV_RETURN_IF_ERROR(impl_->Sync());
  ledger::Checkpoint cp;
  cp.origin = std::string(origin);
  {
    std::shared_lock<std::shared_mutex> lock(impl_->tree_mu);
    cp.size = impl_->tree.Size();
    cp.root = impl_->tree.Root();
  }
  MV_RETURN_IF_ERROR(store::CheckInt64(cp.size, "checkpoint size"));
  MV_ASSIGN_OR_RETURN(std::string note, SignCheckpoint(signer, cp));
  {
    MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock,
                        impl_->shared->Lock(impl_->options.synchronous_full));
    MV_STMT(s, impl_->shared->conn(), kSqlInsertCheckpoint);
    s.Int(1, static_cast<int64_t>(cp.size))
        .Blob(2, HashView(cp.root))
        .Text(3, note)
        .Int(4, NowUnixMillis());
    MV_RETURN_IF_ERROR(s.Exec("store checkpoint"));
  }
  // A checkpoint of this size may have existed: return the stored one.
  MV_ASSIGN_OR_RETURN(CheckpointRecord stored, impl_->CheckpointAt(cp.size));
  if (stored.root != cp.root) {
    return Status::DataLoss("checkpoint at size " + U(cp.size) +
                            ": stored root differs from the log's root");
  }
  return stored.note;
}

Result<CheckpointRecord> SqliteLedger::LatestCheckpoint() {
  store::ReaderPool::Lease r(*impl_->readers);
  MV_STMT(s, r.conn(), kSqlLatestCheckpoint);
  MV_ASSIGN_OR_RETURN(bool row, s.Step("read latest checkpoint"));
  if (!row) {
    return Status::NotFound("no checkpoint has been made");
  }
  return ReadCheckpointRow(s);
}

Result<CheckpointRecord> SqliteLedger::CheckpointAt(uint64_t size) {
  return impl_->CheckpointAt(size);
}

Status SqliteLedger::AddCosignature(uint64_t size, std::string_view line,
                                    const VerifierKey& witness) {
  MV_ASSIGN_OR_RETURN(CheckpointRecord cp, impl_->CheckpointAt(size));
  MV_ASSIGN_OR_RETURN(SignedNote note, ParseSignedNote(cp.note));
  MV_RETURN_IF_ERROR(VerifyCosignature(note.text, line, witness).status());
  std::string normalized(line);
  if (normalized.empty() || normalized.back() != '\n') {
    normalized += '\n';
  }
  MV_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock,
                      impl_->shared->Lock(impl_->options.synchronous_full));
  MV_STMT(s, impl_->shared->conn(), kSqlUpsertCosignature);
  s.Int(1, static_cast<int64_t>(size))
      .Text(2, witness.name())
      .Text(3, normalized)
      .Int(4, NowUnixMillis());
  return s.Exec("store cosignature");
}

Result<std::vector<CosignatureRecord>> SqliteLedger::WitnessedBy(uint64_t size) {
  return impl_->CosignaturesAt(size);
}

bool SqliteLedger::IsWitnessed(uint64_t size, size_t k, std::span<const VerifierKey> witnesses) {
  if (k == 0) {
    return true;
  }
  auto cp = impl_->CheckpointAt(size);
  if (!cp.ok()) {
    return false;
  }
  auto note = ParseSignedNote(cp->note);
  auto lines = impl_->CosignaturesAt(size);
  if (!note.ok() || !lines.ok()) {
    return false;
  }
  std::set<std::pair<std::string, uint32_t>> counted;
  for (const VerifierKey& w : witnesses) {
    if (counted.count({w.name(), w.key_id()}) != 0) {
      continue;
    }
    for (const CosignatureRecord& rec : *lines) {
      if (rec.witness == w.name() && VerifyCosignature(note->text, rec.line, w).ok()) {
        counted.insert({w.name(), w.key_id()});
        break;
      }
    }
  }
  return counted.size() >= k;
}

Result<VerifyReport> SqliteLedger::VerifyAll(const VerifierKey& log_key,
                                             std::span<const VerifierKey> witnesses) {
  LoadedView loaded;
  loaded.size = impl_->TreeSize();
  loaded.leaf = [this](uint64_t i) {
    std::shared_lock<std::shared_mutex> lock(impl_->tree_mu);
    return *impl_->tree.LeafHashAt(i);
  };
  store::ReaderPool::Lease r(*impl_->readers);
  return VerifyOn(r.conn(), &log_key, witnesses, loaded);
}

Result<VerifyReport> SqliteLedger::VerifyDatabase(const std::filesystem::path& db_file,
                                                  const VerifierKey& log_key,
                                                  std::span<const VerifierKey> witnesses,
                                                  const store::SqliteOptions& options) {
  MV_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn,
                      Connection::Open(db_file, /*read_only=*/true, options));
  {
    MV_STMT(s, *conn, kSqlHasLedger);
    MV_ASSIGN_OR_RETURN(bool row, s.Step("look for the ledger tables"));
    if (!row || s.ColInt(0) == 0) {
      return Status::NotFound("the database has no ledger");
    }
  }
  return VerifyOn(*conn, &log_key, witnesses, LoadedView{});
}

}  // namespace medvault::ledger
