// medvault access decisions: the public interface of src/policy.
//
// One decision point answers
//   Decide(subject, action, resource, context) -> permit | deny
// with the reasons and the obligations (audit, notify the patient, flag for
// the privacy officer, mask fields, expire at). Deny by default.
//
// Two inputs:
//  - Policy: roles, role hierarchy, clearances, role permissions per category
//    and action with attribute conditions, break-glass settings. Declarative,
//    loaded from a file at start (see docs/policy.md for the grammar) and
//    immutable afterwards.
//  - PolicyData: the patients' consents, treating relationships, delegations,
//    family-proxy links, break-glass grants and per-patient settings. Loaded
//    from the database at start and kept current by whoever writes them.
//
// The order of precedence is documented in docs/policy.md and in
// decision_point.cc; the table-driven test tests/data/pdp_cases.txt checks it.
//
// Decide() does not allocate and takes a shared lock on PolicyData only: it is
// meant for the hot path of every request (goal: > 1,000,000 decisions/s on
// one core).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "vocab/vocab.h"

namespace medvault::policy {

// ---------------------------------------------------------------------------
// Vocabulary

enum class Action : uint8_t {
  kRead = 0,            // a segment's content or its versions
  kList,                // a patient's tree (paths and metadata, no content)
  kWrite,               // a new segment version
  kExport,              // a whole-record or filtered export
  kErasePatient,        // right to erasure (crypto-shredding)
  kCreatePatient,       // register a patient
  kSearchPatients,      // find patients by name or identifier
  kReadDemographics,    // a patient's name, birth date, identifier
  kManageConsent,       // a patient's consents, settings, proxies
  kManageRelationship,  // start or end a treating relationship
  kDelegate,            // a treating clinician delegates to a partner
  kBreakGlass,          // declare an emergency on a patient
  kReadAccessHistory,   // a patient's access history
  kReadAudit,           // the platform's audit log, break-glass review
  kManageAccounts,      // institutions, departments, accounts, roles
  kReadMetrics,         // platform health and metrics
  kCount
};
inline constexpr size_t kActionCount = static_cast<size_t>(Action::kCount);
std::string_view ActionName(Action action);  // "read", "list", "manage-consent", ...
// InvalidArgument for an unknown name.
Result<Action> ParseAction(std::string_view name);
// Actions that touch health data (content, paths or identities): operators and
// auditors are never permitted these, whatever else says so.
bool IsHealthDataAction(Action action);
// The bit of an action in a mask of actions (Permission, Consent, ProxyLink).
constexpr uint32_t ActionBit(Action action) { return uint32_t{1} << static_cast<unsigned>(action); }
// read, list, write and export: the actions on segments (a path and a category).
bool IsSegmentAction(Action action);
// Whether an action reveals something of the record it names (content, paths,
// metadata, identity or history): what a patient's denial takes away. Deny by
// default: every action reveals unless declared here as one that does not
// (writing a version, creating or erasing a patient, managing consents,
// relationships, delegations and accounts, declaring break-glass, the
// platform's audit log and metrics), so a reading action added later is
// covered by existing denials without a change here.
constexpr bool RevealsContent(Action action) {
  switch (action) {
    case Action::kWrite:
    case Action::kErasePatient:
    case Action::kCreatePatient:
    case Action::kManageConsent:
    case Action::kManageRelationship:
    case Action::kDelegate:
    case Action::kBreakGlass:
    case Action::kReadAudit:
    case Action::kManageAccounts:
    case Action::kReadMetrics:
      return false;
    default:
      return true;
  }
}
// The mask of every action RevealsContent holds for.
constexpr uint32_t RevealingActions() {
  uint32_t mask = 0;
  for (size_t i = 0; i < kActionCount; ++i) {
    if (RevealsContent(static_cast<Action>(i))) {
      mask |= ActionBit(static_cast<Action>(i));
    }
  }
  return mask;
}
// The actions a denial with these action bits takes away: with none (the
// portal's default) every revealing action; with any revealing action, every
// revealing action too (a denied `read` must not come back as an `export` or
// a search of the same content); plus the named ones (e.g. `write`).
constexpr uint32_t DeniedActions(uint32_t named) {
  if (named == 0 || (named & RevealingActions()) != 0) {
    return named | RevealingActions();
  }
  return named;
}

// Purpose of use (HL7 v3 PurposeOfUse, simplified).
enum class Purpose : uint8_t {
  kTreatment = 0,   // TREAT
  kEmergency,       // ETREAT
  kPatientRequest,  // PATRQT: the patient or their proxy
  kFamilyCare,      // FAMRQT
  kPayment,         // HPAYMT
  kOperations,      // HOPERAT
  kResearch,        // HRESCH
  kAudit,           // HSYSADMIN / oversight
  kCount
};
std::string_view PurposeName(Purpose purpose);  // "treatment", "emergency", ...
Result<Purpose> ParsePurpose(std::string_view name);
constexpr uint32_t PurposeBit(Purpose purpose) {
  return uint32_t{1} << static_cast<unsigned>(purpose);
}

enum class NetworkZone : uint8_t { kLoopback = 0, kInternal, kExternal, kCount };
std::string_view NetworkZoneName(NetworkZone zone);  // "loopback", "internal", "external"
Result<NetworkZone> ParseNetworkZone(std::string_view name);
constexpr uint32_t ZoneBit(NetworkZone zone) { return uint32_t{1} << static_cast<unsigned>(zone); }

// True when `path` equals `prefix` or lies below it, by whole components:
// "a/b" is within "a" and "a/b", not within "a/bc"; "" covers everything.
using vocab::PathIsWithin;

// Up to 64 roles per policy; a RoleSet is a bit per role id.
using RoleId = uint8_t;
using RoleSet = uint64_t;
inline constexpr size_t kMaxRoles = 64;

// ---------------------------------------------------------------------------
// The question

struct Subject {
  std::string_view account_id;      // empty: unauthenticated
  RoleSet roles = 0;                // as assigned; the policy expands inheritance
  std::string_view institution_id;  // may be empty
  std::string_view department_id;   // may be empty
  std::string_view patient_id;      // the record this account is (patients)
  bool mfa_verified = false;        // the session passed a second factor
};

struct Resource {
  std::string_view patient_id;  // empty for platform resources
  // A segment path, or a subtree for kList/kExport; "" = the whole record.
  std::string_view path;
  // The top-level category of the path ("clinical", "physical-signs", ...);
  // "" when the resource is not a segment (a patient, the directory, ...).
  std::string_view category;
  int sensitivity = 0;              // 0..4
  std::string_view institution_id;  // kManageAccounts: the target institution
};

struct Context {
  int64_t now_ms = 0;  // Unix time, milliseconds
  Purpose purpose = Purpose::kTreatment;
  NetworkZone zone = NetworkZone::kLoopback;
};

// ---------------------------------------------------------------------------
// The answer

enum class Effect : uint8_t { kDeny = 0, kPermit };

// Why. The first reason of a decision is the deciding one.
enum class Reason : uint8_t {
  kDefaultDeny = 0,          // nothing permitted it
  kUnauthenticated,          // no subject
  kNoHealthDataRole,         // operator/auditor asking for health data
  kMfaRequired,              // the role requires a second factor this session lacks
  kPatientSelf,              // a patient on their own record
  kProxyWithinScope,         // a family proxy within what the patient set
  kProxyOutOfScope,          // a family proxy beyond what the patient set
  kBreakGlass,               // an active emergency access
  kNeverBreakGlass,          // the patient closed this subtree to break-glass
  kBreakGlassReasonMissing,  // kBreakGlass asked without a written reason
  kConsentDenied,            // the patient's explicit denial
  kConsentGranted,           // the patient's grant
  kConsentExpired,           // a grant or denial that matched but has expired
  kRolePermission,           // a role permission that needs nothing else
  kNoRolePermission,         // no role of the subject permits this
  kInsufficientClearance,    // clearance below the segment's sensitivity
  kOutsideTimeWindow,        // attribute condition: hours
  kPurposeNotAllowed,        // attribute condition: purpose of use
  kZoneNotAllowed,           // attribute condition: network zone
  kTreatingRelationship,     // an active treating relationship
  kDelegatedRelationship,    // a delegation from a treating clinician
  kDelegationNotAllowed,     // the patient has not allowed delegation
  kNoRelationship,           // no active treating relationship (never or ended)
  kRelationshipEnded,        // the relationship existed and has ended
  kOtherInstitution,         // an admin acting outside their institution
  kConsole,                  // the data directory's operator at the console (src/enforce)
  kCount
};
std::string_view ReasonCode(Reason reason);  // "consent-denied", ...
std::string_view ReasonText(Reason reason);  // a sentence a person understands

struct Obligations {
  bool audit = true;             // record the decision in the ledger (always)
  bool notify_patient = false;   // tell the patient (break-glass, proxy writes)
  bool flag_for_review = false;  // the privacy officer reviews it (break-glass)
  int64_t expires_at_ms = 0;     // the permission ends then; 0 = no end
  // Field names to mask in the returned content (JSON keys, any depth);
  // points into the Policy, which outlives the decision. Never null.
  const std::vector<std::string>* mask_fields = nullptr;
};

struct Decision {
  Effect effect = Effect::kDeny;
  std::array<Reason, 4> reasons{};
  uint8_t reason_count = 0;
  Obligations obligations;
  // Which consent, relationship or grant decided it (empty otherwise); points
  // into PolicyData and is valid only until PolicyData next changes: copy it
  // if it must be kept.
  std::string_view basis_id;

  bool permitted() const { return effect == Effect::kPermit; }
  Reason reason() const { return reasons[0]; }
};

// ---------------------------------------------------------------------------
// The policy file

enum class Basis : uint8_t {
  kAlways = 0,  // the role alone suffices
  kTreating,    // needs an active treating relationship (own or delegated) or a grant
  kConsented,   // needs a matching grant of the patient
};

struct Permission {
  RoleId role = 0;
  uint32_t actions = 0;                 // bit per Action
  std::vector<std::string> categories;  // empty = every category
  Basis basis = Basis::kAlways;
  uint32_t purposes = 0;  // bit per Purpose; 0 = any
  uint32_t zones = 0;     // bit per NetworkZone; 0 = any
  int start_minute = -1;  // local minutes of day [start, end); -1 = any time
  int end_minute = -1;
  std::vector<std::string> mask_fields;
  int line = 0;  // where it was declared
};

struct RoleDef {
  std::string name;
  RoleId id = 0;
  int clearance = 0;  // 0..4, compared with segment sensitivity
  bool requires_mfa = false;
  bool no_health_data = false;  // operators, auditors
  bool may_break_glass = false;
  // Roles an account holding this one may give to others (`assigns`): the
  // answer to "who could make whom more powerful", deny by default.
  RoleSet assigns = 0;
  std::vector<RoleId> inherits;
  RoleSet closure = 0;  // itself and everything it inherits, transitively
  int line = 0;
};

class Policy {
 public:
  // Parses and validates. InvalidArgument "FILE:LINE: what is wrong" for the
  // first error (unknown keyword, unknown role/action/category/purpose/zone,
  // inheritance cycle, duplicate role, value out of range, ...).
  // The categories a rule may name are vocab::kCategories.
  static Result<std::shared_ptr<const Policy>> Parse(std::string_view text,
                                                     std::string_view file_name);
  static Result<std::shared_ptr<const Policy>> Load(const std::filesystem::path& file);

  // InvalidArgument for an unknown role name.
  Result<RoleId> RoleIdOf(std::string_view name) const;
  // RoleSet of the named roles; InvalidArgument for an unknown one.
  Result<RoleSet> RolesOf(const std::vector<std::string>& names) const;
  const std::vector<RoleDef>& roles() const { return roles_; }
  const std::vector<Permission>& permissions() const { return permissions_; }
  // Expanded (inherited) roles of a set.
  RoleSet Expand(RoleSet roles) const;
  // Highest clearance over the expanded roles.
  int ClearanceOf(RoleSet roles) const;
  bool RequiresMfa(RoleSet roles) const;
  // The roles a holder of `roles` may give to another account: the union of
  // the `assigns` of the expanded roles (never inherited by the assigned).
  RoleSet AssignableBy(RoleSet roles) const;
  // Whether any expanded role has the `break-glass` option.
  bool MayBreakGlass(RoleSet roles) const;
  // Whether any expanded role has the `no-health-data` option.
  bool HasNoHealthDataRole(RoleSet roles) const;
  int64_t break_glass_duration_ms() const { return break_glass_duration_ms_; }
  size_t break_glass_min_reason_chars() const { return break_glass_min_reason_chars_; }
  int utc_offset_minutes() const { return utc_offset_minutes_; }  // for hour windows

  // Implementation detail, public for the parser.
  std::vector<RoleDef> roles_;
  std::vector<Permission> permissions_;
  int64_t break_glass_duration_ms_ = 60 * 60 * 1000;
  size_t break_glass_min_reason_chars_ = 10;
  int utc_offset_minutes_ = 0;
  // Precomputed by the parser for Decide(): the indices into permissions_ of
  // the permissions that include each action, in file order; the roles (bit
  // per id) with each option; every defined role.
  std::array<std::vector<uint16_t>, kActionCount> permissions_by_action_;
  RoleSet mfa_roles_ = 0;
  RoleSet no_health_data_roles_ = 0;
  RoleSet break_glass_roles_ = 0;
  RoleSet defined_roles_ = 0;
};

// ---------------------------------------------------------------------------
// Patient-controlled and relationship data

enum class GranteeKind : uint8_t { kAccount = 0, kRole, kInstitution, kDepartment };
std::string_view GranteeKindName(GranteeKind kind);  // "account", "role", ...
Result<GranteeKind> ParseGranteeKind(std::string_view name);

struct Consent {
  std::string consent_id;
  std::string patient_id;
  bool deny = false;        // an explicit denial; otherwise a grant
  std::string path_prefix;  // the subtree it covers; "" = the whole record
  GranteeKind grantee_kind = GranteeKind::kAccount;
  std::string grantee;    // account id, role name, institution id or department id
  uint32_t actions = 0;   // bit per Action; 0 = read and list
  uint32_t purposes = 0;  // bit per Purpose; 0 = any
  int64_t not_before_ms = 0;
  int64_t expires_at_ms = 0;  // 0 = no end
  int64_t created_at_ms = 0;
};

struct Relationship {
  std::string relationship_id;
  std::string patient_id;
  std::string clinician_account_id;
  int64_t started_at_ms = 0;
  int64_t ended_at_ms = 0;  // 0 = active
};

struct Delegation {
  std::string delegation_id;
  std::string patient_id;
  std::string from_account_id;  // a treating clinician
  std::string to_account_id;    // a partner doctor or nurse
  int64_t created_at_ms = 0;
  int64_t expires_at_ms = 0;  // 0 = as long as the delegator's relationship
  int64_t revoked_at_ms = 0;  // 0 = not revoked
};

struct ProxyLink {
  std::string proxy_id;
  std::string patient_id;
  std::string proxy_account_id;
  std::vector<std::string> path_prefixes;  // what the proxy may act on; "" = all
  uint32_t actions = 0;                    // bit per Action the proxy may take
  int64_t expires_at_ms = 0;               // 0 = no end
  int64_t revoked_at_ms = 0;
};

struct BreakGlassGrant {
  std::string grant_id;
  std::string patient_id;
  std::string account_id;
  std::string reason;  // the clinician's written reason
  int64_t started_at_ms = 0;
  int64_t expires_at_ms = 0;
};

struct PatientSettings {
  std::string patient_id;
  bool allow_delegation = false;
  std::vector<std::string> never_break_glass;  // subtrees closed to break-glass
};

// The in-memory view of everything above, indexed by patient. Thread-safe:
// writers take an exclusive lock, Decide() a shared one. Upserts replace by id.
class PolicyData {
 public:
  void UpsertConsent(Consent consent);
  void RemoveConsent(std::string_view patient_id, std::string_view consent_id);
  void UpsertRelationship(Relationship relationship);
  void UpsertDelegation(Delegation delegation);
  void UpsertProxy(ProxyLink proxy);
  void UpsertBreakGlass(BreakGlassGrant grant);
  void SetPatientSettings(PatientSettings settings);
  // Forgets every entry of a patient (erasure).
  void RemovePatient(std::string_view patient_id);
  // Replace, in one step under the exclusive lock (a decision sees the old
  // entries or the new ones, never none), what is held of one patient, or of
  // every patient, by what `from` holds (moved out of `from`). A patient
  // `from` does not hold is forgotten. For reloading changes that another
  // process made to the stored entries.
  void ReplacePatientFrom(PolicyData& from, std::string_view patient_id);
  void ReplaceAllFrom(PolicyData& from);

  // Copies, for listings in the API.
  std::vector<Consent> ConsentsOf(std::string_view patient_id) const;
  std::vector<Relationship> RelationshipsOf(std::string_view patient_id) const;
  std::vector<Delegation> DelegationsOf(std::string_view patient_id) const;
  std::vector<ProxyLink> ProxiesOf(std::string_view patient_id) const;
  std::vector<BreakGlassGrant> BreakGlassOf(std::string_view patient_id) const;
  // Every break-glass grant started at or after `since_ms`, newest first (the
  // privacy officer's review list).
  std::vector<BreakGlassGrant> BreakGlassSince(int64_t since_ms) const;
  PatientSettings SettingsOf(std::string_view patient_id) const;
  // Patients with an active treating relationship or delegation to the account.
  std::vector<std::string> PatientsTreatedBy(std::string_view account_id, int64_t now_ms) const;
  // Patients for whom the account is an active proxy.
  std::vector<std::string> PatientsProxiedBy(std::string_view account_id, int64_t now_ms) const;

  // Implementation detail, used by the decision point.
  struct PatientEntry {
    PatientSettings settings;
    std::vector<Consent> consents;
    std::vector<Relationship> relationships;
    std::vector<Delegation> delegations;
    std::vector<ProxyLink> proxies;
    std::vector<BreakGlassGrant> break_glass;
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, PatientEntry, StringHash, std::equal_to<>> patients_;
};

// ---------------------------------------------------------------------------
// The decision point

class DecisionPoint {
 public:
  // Both must outlive the decision point.
  DecisionPoint(std::shared_ptr<const Policy> policy, const PolicyData* data);

  Decision Decide(const Subject& subject, Action action, const Resource& resource,
                  const Context& context) const;

  // kBreakGlass with its reason: checks the reason (non-empty after trimming,
  // at least the policy's minimum length) on top of Decide(); on permit the
  // obligations carry expires_at_ms = now + the policy's duration.
  Decision DecideBreakGlass(const Subject& subject, std::string_view patient_id,
                            std::string_view reason, const Context& context) const;

  const Policy& policy() const { return *policy_; }

 private:
  std::shared_ptr<const Policy> policy_;
  const PolicyData* data_;
};

// "reason-code: text" for logs and error bodies.
std::string DescribeDecision(const Decision& decision);

}  // namespace medvault::policy
