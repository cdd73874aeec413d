// Persistence of src/access's policy entries (consents, treating
// relationships, delegations, family proxies, break-glass grants, settings):
// opaque sealed bodies keyed by (kind, id), indexed by patient. Declared here,
// beside the other stores, so that every SQLite table lives in src/store
// behind an interface (docs/architecture.md, "Persistence seam"); src/access
// uses it under its own names. A PostgreSQL implementation can follow.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "store/store.h"

namespace medvault::store {

struct PolicyEntryRow {
  std::string kind;      // "consent", "relationship", "delegation", "proxy", ...
  std::string entry_id;  // random id
  std::string patient_id;
  Bytes sealed_body;
  int64_t updated_at_ms = 0;
};

// Thread-safe.
class PolicyEntryStore {
 public:
  virtual ~PolicyEntryStore() = default;
  // Inserts or replaces, and hands `audit` (encoded ledger entries) to the
  // store's AuditSink in the same transaction. FailedPrecondition when the
  // entry exists for another patient, or when `audit` is not empty and the
  // store has no sink. Durable when it returns OK.
  virtual Status Upsert(const PolicyEntryRow& row, AuditEntries audit = {}) = 0;
  // Every entry, in insertion order (for loading at start).
  virtual Status ForEach(const std::function<Status(const PolicyEntryRow&)>& fn) = 0;
  // Deletes every entry of a patient (erasure), with `audit` as Upsert. OK
  // when there are none.
  virtual Status DeletePatient(std::string_view patient_id, AuditEntries audit = {}) = 0;
  virtual Result<int64_t> Count() = 0;

  // The entries of one patient, in insertion order.
  virtual Status ForEachOfPatient(std::string_view patient_id,
                                  const std::function<Status(const PolicyEntryRow&)>& fn) = 0;
  // The change log (ChangeRow): Upsert and DeletePatient record a change of
  // domain "policy" (subject: the patient) in their transaction, so that a
  // server learns of changes a CLI command made. The newest seq (any domain;
  // 0 = none) and the changes after `after`, oldest first.
  virtual Result<int64_t> LatestChange() = 0;
  virtual Result<std::vector<ChangeRow>> ChangesSince(int64_t after, size_t limit) = 0;
};

// Its own connection and migrations ("policy_migrations") on the database file
// shared with the other SQLite stores. Entries of a write go to
// options.audit_sink inside its transaction.
Result<std::unique_ptr<PolicyEntryStore>> OpenSqlitePolicyEntryStore(
    const std::filesystem::path& file, const SqliteOptions& options = {});

}  // namespace medvault::store
