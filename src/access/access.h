// medvault access management: the public interface of src/access.
//
// Keeps the patient-controlled and relationship data that the decision point
// reads (consents, treating relationships, delegations, family proxies,
// break-glass grants, per-patient settings): validates each change, persists
// it (sealed, in the policy entry store) and updates the in-memory
// policy::PolicyData in the same call, so the next decision sees it.
//
// Who may make a change is decided by the caller through the decision point
// (src/api asks before calling); this module checks that the change itself is
// well-formed and consistent (known accounts, active relationships, ...).
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "crypto/crypto.h"
#include "ledger/ledger.h"
#include "policy/policy.h"
#include "store/policy_entry_store.h"
#include "store/store.h"

namespace medvault::access {

// Persistence of policy entries: opaque sealed bodies keyed by (kind, id),
// indexed by patient, in src/store with the other stores
// (store/policy_entry_store.h). The service hands each change's ledger
// entries, encoded, to the store, which appends them to its AuditSink (the
// ledger) in the change's transaction.
using PolicyEntryRow = store::PolicyEntryRow;
using PolicyEntryStore = store::PolicyEntryStore;
using store::OpenSqlitePolicyEntryStore;

// Facts about accounts that the access service checks; the API wires them to
// the account service so this module does not depend on it.
struct AccountFacts {
  bool exists = false;
  bool disabled = false;
  std::vector<std::string> roles;  // as assigned
  std::string institution_id;
  std::string department_id;
};
using AccountLookup = std::function<Result<AccountFacts>(std::string_view account_id)>;

struct ConsentRequest {
  bool deny = false;
  std::string path_prefix;  // "" = the whole record
  policy::GranteeKind grantee_kind = policy::GranteeKind::kAccount;
  std::string grantee;
  std::vector<policy::Action> actions;    // empty = read and list
  std::vector<policy::Purpose> purposes;  // empty = any
  int64_t not_before_ms = 0;
  int64_t expires_at_ms = 0;  // 0 = no end
};

struct ProxyRequest {
  std::string proxy_account_id;
  std::vector<std::string> path_prefixes;  // at least one; "" = all
  std::vector<policy::Action> actions;     // at least one
  int64_t expires_at_ms = 0;
};

// A change of a patient's consents, relationships, delegations, proxies,
// settings or break-glass grants, for its ledger entry.
struct AccessEvent {
  std::string_view action;  // ledger::kActionConsentGrant, ...
  std::string_view kind;    // "consent", "relationship", "patient", ...
  std::string_view entry_id;
  std::string_view patient_id;
  std::string_view path;  // the subtree, when the entry has one
  int64_t time_ms = 0;
};

struct AccessOptions {
  // When set, every change is recorded in the ledger in the same transaction
  // (the store must have been opened with the ledger as its audit sink),
  // with the entry this builds (the app wires src/enforce's builder, which
  // names the request and the actor).
  std::function<Result<ledger::Entry>(const AccessEvent&)> audit;
  // Longest consent, delegation or proxy a patient can set (0 = unlimited).
  int64_t max_grant_ms = 0;
  size_t max_entries_per_patient = 1000;
  std::function<int64_t()> now_ms;  // defaults to the wall clock
};

class AccessService {
 public:
  virtual ~AccessService() = default;

  // Reads every stored entry into the PolicyData. Call once at start.
  virtual Status Load() = 0;

  // Applies the changes that other processes (a CLI command, another server)
  // made to the stored entries since Load() or the last call: reloads the
  // patients they touched (everything, when too far behind), each replaced in
  // one step. The server calls it every 200 ms, so that a relationship ended
  // or a consent changed from the CLI is enforced within a second. Cheap when
  // nothing changed (one read of the newest change seq).
  virtual Status SyncChanges() = 0;

  // InvalidArgument for a malformed request (bad path prefix, unknown grantee,
  // expiry in the past, ...). Returns the stored consent.
  virtual Result<policy::Consent> AddConsent(std::string_view patient_id,
                                             const ConsentRequest& request) = 0;
  // NotFound for an unknown consent of this patient.
  virtual Status RevokeConsent(std::string_view patient_id, std::string_view consent_id) = 0;

  // The clinician must exist, be enabled and hold a clinical role that may
  // treat (doctor, nurse, department-head, ...: a role permitted kRead on
  // "clinical" with basis treating). FailedPrecondition when one is active.
  virtual Result<policy::Relationship> StartRelationship(std::string_view patient_id,
                                                         std::string_view clinician_id) = 0;
  virtual Status EndRelationship(std::string_view patient_id, std::string_view relationship_id) = 0;

  // `from` must have an active relationship; `to` must be a clinician too.
  virtual Result<policy::Delegation> Delegate(std::string_view patient_id,
                                              std::string_view from_account_id,
                                              std::string_view to_account_id,
                                              int64_t expires_at_ms) = 0;
  virtual Status RevokeDelegation(std::string_view patient_id, std::string_view delegation_id) = 0;

  virtual Result<policy::ProxyLink> AddProxy(std::string_view patient_id,
                                             const ProxyRequest& request) = 0;
  virtual Status RevokeProxy(std::string_view patient_id, std::string_view proxy_id) = 0;

  virtual Status SetSettings(std::string_view patient_id, bool allow_delegation,
                             const std::vector<std::string>& never_break_glass) = 0;

  // Records an emergency access the decision point permitted (the reason is
  // sealed at rest). `expires_at_ms` comes from the decision's obligations.
  virtual Result<policy::BreakGlassGrant> RecordBreakGlass(std::string_view patient_id,
                                                           std::string_view account_id,
                                                           std::string_view reason,
                                                           int64_t expires_at_ms) = 0;

  // Forgets every entry of a patient (erasure).
  virtual Status ForgetPatient(std::string_view patient_id) = 0;

  virtual const policy::PolicyData& data() const = 0;
};

// Everything must outlive the service. `validate_path_prefix` checks a segment
// path or subtree ("" allowed) and is wired to src/record by the caller.
Result<std::unique_ptr<AccessService>> CreateAccessService(
    PolicyEntryStore* store, crypto::KeyProvider* keys, policy::PolicyData* data,
    std::shared_ptr<const policy::Policy> policy, AccountLookup accounts,
    std::function<Status(std::string_view)> validate_path_prefix, AccessOptions options);

}  // namespace medvault::access
