// AccessService: validation, sealed persistence and the in-memory PolicyData.
//
// Every entry is stored as canonical JSON sealed (XChaCha20-Poly1305) under a
// platform key, with (kind, id, patient) as associated data: the database
// holds no readable consent, relationship or break-glass reason, and a body
// moved to another row fails to open. The store is written first and the
// in-memory data second, under one mutex, so a failed write changes nothing.
#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>

#include "access/access.h"
#include "common/ids.h"

namespace medvault::access {
namespace {

// What a family-proxy link may carry (AddProxy): the patient's own actions on
// their record (docs/policy.md, step 4) minus managing consents (a proxy
// cannot widen what the patient set) and relationships.
bool ProxyMayBeGiven(policy::Action a) {
  using policy::Action;
  switch (a) {
    case Action::kRead:
    case Action::kList:
    case Action::kWrite:
    case Action::kExport:
    case Action::kReadDemographics:
    case Action::kReadAccessHistory:
      return true;
    default:
      return false;
  }
}

using nlohmann::json;
using policy::Action;

constexpr char kKindConsent[] = "consent";
constexpr char kKindRelationship[] = "relationship";
constexpr char kKindDelegation[] = "delegation";
constexpr char kKindProxy[] = "proxy";
constexpr char kKindBreakGlass[] = "break-glass";
constexpr char kKindSettings[] = "settings";
constexpr size_t kMaxReasonBytes = 2000;
constexpr size_t kMaxPrefixes = 32;
constexpr size_t kMaxChangesPerSync = 4096;

uint32_t Bit(Action a) { return 1u << static_cast<unsigned>(a); }
uint32_t Bit(policy::Purpose p) { return 1u << static_cast<unsigned>(p); }

Bytes EntryAad(std::string_view kind, std::string_view id, std::string_view patient) {
  std::string s = "medvault/v1/policy-entry/";
  s.append(kind).append("/").append(id).append("/").append(patient);
  return Bytes(s.begin(), s.end());
}

json ToJson(const policy::Consent& c) {
  return {{"deny", c.deny},
          {"path_prefix", c.path_prefix},
          {"grantee_kind", std::string(policy::GranteeKindName(c.grantee_kind))},
          {"grantee", c.grantee},
          {"actions", c.actions},
          {"purposes", c.purposes},
          {"not_before_ms", c.not_before_ms},
          {"expires_at_ms", c.expires_at_ms},
          {"created_at_ms", c.created_at_ms}};
}
json ToJson(const policy::Relationship& r) {
  return {{"clinician", r.clinician_account_id},
          {"started_at_ms", r.started_at_ms},
          {"ended_at_ms", r.ended_at_ms}};
}
json ToJson(const policy::Delegation& d) {
  return {{"from", d.from_account_id},
          {"to", d.to_account_id},
          {"created_at_ms", d.created_at_ms},
          {"expires_at_ms", d.expires_at_ms},
          {"revoked_at_ms", d.revoked_at_ms}};
}
json ToJson(const policy::ProxyLink& p) {
  return {{"proxy", p.proxy_account_id},
          {"path_prefixes", p.path_prefixes},
          {"actions", p.actions},
          {"expires_at_ms", p.expires_at_ms},
          {"revoked_at_ms", p.revoked_at_ms}};
}
json ToJson(const policy::BreakGlassGrant& g) {
  return {{"account", g.account_id},
          {"reason", g.reason},
          {"started_at_ms", g.started_at_ms},
          {"expires_at_ms", g.expires_at_ms}};
}
json ToJson(const policy::PatientSettings& s) {
  return {{"allow_delegation", s.allow_delegation}, {"never_break_glass", s.never_break_glass}};
}

class AccessServiceImpl final : public AccessService {
 public:
  AccessServiceImpl(PolicyEntryStore* store, SecretBytes key, policy::PolicyData* data,
                    std::shared_ptr<const policy::Policy> pol, AccountLookup accounts,
                    std::function<Status(std::string_view)> validate_path, AccessOptions options)
      : store_(store),
        key_(std::move(key)),
        data_(data),
        policy_(std::move(pol)),
        accounts_(std::move(accounts)),
        validate_path_(std::move(validate_path)),
        options_(std::move(options)) {
    if (!options_.now_ms) {
      options_.now_ms = [] { return NowUnixMillis(); };
    }
  }

  Status Load() override {
    std::lock_guard<std::mutex> lock(mu_);
    // The change seq first: a change committed while we read is applied
    // again by the next SyncChanges() (reloading is idempotent).
    MV_ASSIGN_OR_RETURN(const int64_t latest, store_->LatestChange());
    entries_per_patient_.clear();
    const Status loaded = store_->ForEach([&](const PolicyEntryRow& row) -> Status {
      MV_RETURN_IF_ERROR(OpenAndApply(*data_, row));
      ++entries_per_patient_[row.patient_id];
      return Status::Ok();
    });
    MV_RETURN_IF_ERROR(loaded);
    seen_change_ = latest;
    return Status::Ok();
  }

  Status SyncChanges() override {
    MV_ASSIGN_OR_RETURN(const int64_t latest, store_->LatestChange());
    std::lock_guard<std::mutex> lock(mu_);  // with the writers: store, then data
    if (latest == seen_change_) {
      return Status::Ok();
    }
    MV_ASSIGN_OR_RETURN(std::vector<store::ChangeRow> rows,
                        store_->ChangesSince(seen_change_, kMaxChangesPerSync));
    int64_t applied = latest;
    if (!store::ChangesComplete(rows, seen_change_, latest, kMaxChangesPerSync)) {
      // Too far behind (or a restored database): everything, in one step.
      policy::PolicyData fresh;
      std::unordered_map<std::string, size_t> counts;
      const Status loaded = store_->ForEach([&](const PolicyEntryRow& row) -> Status {
        MV_RETURN_IF_ERROR(OpenAndApply(fresh, row));
        ++counts[row.patient_id];
        return Status::Ok();
      });
      MV_RETURN_IF_ERROR(loaded);
      data_->ReplaceAllFrom(fresh);
      entries_per_patient_ = std::move(counts);
    } else {
      std::unordered_set<std::string> done;
      for (const store::ChangeRow& c : rows) {
        if (c.domain == store::kChangeDomainPolicy && done.insert(c.subject).second) {
          MV_RETURN_IF_ERROR(ReloadPatientLocked(c.subject));
        }
      }
      if (!rows.empty()) {
        applied = std::max(applied, rows.back().seq);
      }
    }
    seen_change_ = applied;
    return Status::Ok();
  }

  Result<policy::Consent> AddConsent(std::string_view patient_id,
                                     const ConsentRequest& req) override {
    const int64_t now = options_.now_ms();
    MV_RETURN_IF_ERROR(validate_path_(req.path_prefix));
    MV_RETURN_IF_ERROR(CheckExpiry(req.expires_at_ms, now, "consent"));
    if (req.not_before_ms < 0 ||
        (req.expires_at_ms != 0 && req.not_before_ms >= req.expires_at_ms)) {
      return Status::InvalidArgument("consent not_before must be before its expiry");
    }
    MV_RETURN_IF_ERROR(CheckGrantee(req.grantee_kind, req.grantee));
    policy::Consent c;
    c.consent_id = NewRandomId();
    c.patient_id = std::string(patient_id);
    c.deny = req.deny;
    c.path_prefix = req.path_prefix;
    c.grantee_kind = req.grantee_kind;
    c.grantee = req.grantee;
    for (Action a : req.actions) {
      c.actions |= Bit(a);
    }
    for (policy::Purpose p : req.purposes) {
      c.purposes |= Bit(p);
    }
    c.not_before_ms = req.not_before_ms;
    c.expires_at_ms = req.expires_at_ms;
    c.created_at_ms = now;
    std::lock_guard<std::mutex> lock(mu_);
    MV_RETURN_IF_ERROR(CheckQuota(patient_id));
    MV_RETURN_IF_ERROR(Persist(kKindConsent, c.consent_id, patient_id, ToJson(c), now,
                               c.deny ? ledger::kActionConsentDeny : ledger::kActionConsentGrant,
                               c.path_prefix));
    ++entries_per_patient_[c.patient_id];
    data_->UpsertConsent(c);
    return c;
  }

  Status RevokeConsent(std::string_view patient_id, std::string_view consent_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const policy::Consent& c : data_->ConsentsOf(patient_id)) {
      if (c.consent_id == consent_id) {
        // A revoked consent is kept (sealed) as history with "revoked": the
        // ledger is the record of who changed what; the store keeps state.
        json j = ToJson(c);
        j["revoked_at_ms"] = options_.now_ms();
        MV_RETURN_IF_ERROR(Persist(kKindConsent, c.consent_id, patient_id, j, options_.now_ms(),
                                   ledger::kActionConsentRevoke, c.path_prefix));
        data_->RemoveConsent(patient_id, consent_id);
        return Status::Ok();
      }
    }
    return Status::NotFound("no such consent for this patient");
  }

  Result<policy::Relationship> StartRelationship(std::string_view patient_id,
                                                 std::string_view clinician_id) override {
    const int64_t now = options_.now_ms();
    MV_RETURN_IF_ERROR(CheckClinician(clinician_id));
    std::lock_guard<std::mutex> lock(mu_);
    for (const policy::Relationship& r : data_->RelationshipsOf(patient_id)) {
      if (r.clinician_account_id == clinician_id && IsActive(r, now)) {
        return Status::AlreadyExists("a treating relationship with this clinician is active");
      }
    }
    MV_RETURN_IF_ERROR(CheckQuota(patient_id));
    policy::Relationship r;
    r.relationship_id = NewRandomId();
    r.patient_id = std::string(patient_id);
    r.clinician_account_id = std::string(clinician_id);
    r.started_at_ms = now;
    MV_RETURN_IF_ERROR(Persist(kKindRelationship, r.relationship_id, patient_id, ToJson(r), now,
                               ledger::kActionRelationshipStart));
    ++entries_per_patient_[r.patient_id];
    data_->UpsertRelationship(r);
    return r;
  }

  Status EndRelationship(std::string_view patient_id, std::string_view relationship_id) override {
    const int64_t now = options_.now_ms();
    std::lock_guard<std::mutex> lock(mu_);
    for (policy::Relationship r : data_->RelationshipsOf(patient_id)) {
      if (r.relationship_id != relationship_id) {
        continue;
      }
      if (!IsActive(r, now)) {
        return Status::FailedPrecondition("the relationship has already ended");
      }
      r.ended_at_ms = now;
      MV_RETURN_IF_ERROR(Persist(kKindRelationship, r.relationship_id, patient_id, ToJson(r), now,
                                 ledger::kActionRelationshipEnd));
      data_->UpsertRelationship(r);
      return Status::Ok();
    }
    return Status::NotFound("no such relationship for this patient");
  }

  Result<policy::Delegation> Delegate(std::string_view patient_id, std::string_view from,
                                      std::string_view to, int64_t expires_at_ms) override {
    const int64_t now = options_.now_ms();
    MV_RETURN_IF_ERROR(CheckExpiry(expires_at_ms, now, "delegation"));
    if (from == to) {
      return Status::InvalidArgument("a clinician cannot delegate to themselves");
    }
    MV_RETURN_IF_ERROR(CheckClinician(to));
    std::lock_guard<std::mutex> lock(mu_);
    bool from_treats = false;
    for (const policy::Relationship& r : data_->RelationshipsOf(patient_id)) {
      from_treats = from_treats || (r.clinician_account_id == from && IsActive(r, now));
    }
    if (!from_treats) {
      return Status::FailedPrecondition(
          "only a clinician with an active treating relationship can delegate");
    }
    if (!data_->SettingsOf(patient_id).allow_delegation) {
      return Status::FailedPrecondition("the patient has not allowed delegation");
    }
    MV_RETURN_IF_ERROR(CheckQuota(patient_id));
    policy::Delegation d;
    d.delegation_id = NewRandomId();
    d.patient_id = std::string(patient_id);
    d.from_account_id = std::string(from);
    d.to_account_id = std::string(to);
    d.created_at_ms = now;
    d.expires_at_ms = expires_at_ms;
    MV_RETURN_IF_ERROR(Persist(kKindDelegation, d.delegation_id, patient_id, ToJson(d), now,
                               ledger::kActionDelegationGrant));
    ++entries_per_patient_[d.patient_id];
    data_->UpsertDelegation(d);
    return d;
  }

  Status RevokeDelegation(std::string_view patient_id, std::string_view delegation_id) override {
    const int64_t now = options_.now_ms();
    std::lock_guard<std::mutex> lock(mu_);
    for (policy::Delegation d : data_->DelegationsOf(patient_id)) {
      if (d.delegation_id != delegation_id) {
        continue;
      }
      if (d.revoked_at_ms != 0) {
        return Status::FailedPrecondition("the delegation is already revoked");
      }
      d.revoked_at_ms = now;
      MV_RETURN_IF_ERROR(Persist(kKindDelegation, d.delegation_id, patient_id, ToJson(d), now,
                                 ledger::kActionDelegationRevoke));
      data_->UpsertDelegation(d);
      return Status::Ok();
    }
    return Status::NotFound("no such delegation for this patient");
  }

  Result<policy::ProxyLink> AddProxy(std::string_view patient_id,
                                     const ProxyRequest& req) override {
    const int64_t now = options_.now_ms();
    MV_RETURN_IF_ERROR(CheckExpiry(req.expires_at_ms, now, "proxy"));
    if (req.path_prefixes.empty() || req.path_prefixes.size() > kMaxPrefixes) {
      return Status::InvalidArgument("a proxy needs 1 to 32 path prefixes");
    }
    for (const std::string& p : req.path_prefixes) {
      MV_RETURN_IF_ERROR(validate_path_(p));
    }
    if (req.actions.empty()) {
      return Status::InvalidArgument("a proxy needs at least one action");
    }
    MV_ASSIGN_OR_RETURN(AccountFacts facts, accounts_(req.proxy_account_id));
    if (!facts.exists || facts.disabled) {
      return Status::InvalidArgument("unknown or disabled proxy account");
    }
    if (std::find(facts.roles.begin(), facts.roles.end(), "family-proxy") == facts.roles.end()) {
      return Status::InvalidArgument("the proxy account does not hold the family-proxy role");
    }
    policy::ProxyLink p;
    p.proxy_id = NewRandomId();
    p.patient_id = std::string(patient_id);
    p.proxy_account_id = req.proxy_account_id;
    p.path_prefixes = req.path_prefixes;
    for (Action a : req.actions) {
      // A proxy acts on the patient's record within what the patient set: the
      // record's own reading and writing actions only (deny by default). It
      // cannot widen its scope (consents), erase, break the glass, or act on
      // anything that is not this record.
      if (!ProxyMayBeGiven(a)) {
        return Status::InvalidArgument("a proxy cannot be given " +
                                       std::string(policy::ActionName(a)));
      }
      p.actions |= Bit(a);
    }
    p.expires_at_ms = req.expires_at_ms;
    std::lock_guard<std::mutex> lock(mu_);
    MV_RETURN_IF_ERROR(CheckQuota(patient_id));
    MV_RETURN_IF_ERROR(
        Persist(kKindProxy, p.proxy_id, patient_id, ToJson(p), now, ledger::kActionProxyGrant));
    ++entries_per_patient_[p.patient_id];
    data_->UpsertProxy(p);
    return p;
  }

  Status RevokeProxy(std::string_view patient_id, std::string_view proxy_id) override {
    const int64_t now = options_.now_ms();
    std::lock_guard<std::mutex> lock(mu_);
    for (policy::ProxyLink p : data_->ProxiesOf(patient_id)) {
      if (p.proxy_id != proxy_id) {
        continue;
      }
      if (p.revoked_at_ms != 0) {
        return Status::FailedPrecondition("the proxy is already revoked");
      }
      p.revoked_at_ms = now;
      MV_RETURN_IF_ERROR(
          Persist(kKindProxy, p.proxy_id, patient_id, ToJson(p), now, ledger::kActionProxyRevoke));
      data_->UpsertProxy(p);
      return Status::Ok();
    }
    return Status::NotFound("no such proxy for this patient");
  }

  Status SetSettings(std::string_view patient_id, bool allow_delegation,
                     const std::vector<std::string>& never_break_glass) override {
    if (never_break_glass.size() > kMaxPrefixes) {
      return Status::InvalidArgument("at most 32 never-break-glass subtrees");
    }
    for (const std::string& p : never_break_glass) {
      MV_RETURN_IF_ERROR(validate_path_(p));
    }
    policy::PatientSettings s;
    s.patient_id = std::string(patient_id);
    s.allow_delegation = allow_delegation;
    s.never_break_glass = never_break_glass;
    std::lock_guard<std::mutex> lock(mu_);
    MV_RETURN_IF_ERROR(Persist(kKindSettings, patient_id, patient_id, ToJson(s), options_.now_ms(),
                               ledger::kActionSettingsChange));
    data_->SetPatientSettings(s);
    return Status::Ok();
  }

  Result<policy::BreakGlassGrant> RecordBreakGlass(std::string_view patient_id,
                                                   std::string_view account_id,
                                                   std::string_view reason,
                                                   int64_t expires_at_ms) override {
    const int64_t now = options_.now_ms();
    if (reason.empty() || reason.size() > kMaxReasonBytes || !IsValidUtf8(reason)) {
      return Status::InvalidArgument(
          "a break-glass reason of 1 to 2000 bytes of UTF-8 is required");
    }
    MV_RETURN_IF_ERROR(CheckExpiry(expires_at_ms, now, "break-glass"));
    policy::BreakGlassGrant g;
    g.grant_id = NewRandomId();
    g.patient_id = std::string(patient_id);
    g.account_id = std::string(account_id);
    g.reason = std::string(reason);
    g.started_at_ms = now;
    g.expires_at_ms = expires_at_ms;
    std::lock_guard<std::mutex> lock(mu_);
    MV_RETURN_IF_ERROR(Persist(kKindBreakGlass, g.grant_id, patient_id, ToJson(g), now,
                               ledger::kActionBreakGlassGrant));
    data_->UpsertBreakGlass(g);
    return g;
  }

  Status ForgetPatient(std::string_view patient_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    MV_ASSIGN_OR_RETURN(const std::vector<Bytes> audit,
                        AuditOf(ledger::kActionSharingForget, "patient", patient_id, patient_id, "",
                                options_.now_ms()));
    MV_RETURN_IF_ERROR(store_->DeletePatient(patient_id, audit));
    data_->RemovePatient(patient_id);
    entries_per_patient_.erase(std::string(patient_id));
    return Status::Ok();
  }

  const policy::PolicyData& data() const override { return *data_; }

 private:
  static bool IsActive(const policy::Relationship& r, int64_t now) {
    return r.started_at_ms <= now && (r.ended_at_ms == 0 || now < r.ended_at_ms);
  }

  Status CheckExpiry(int64_t expires_at_ms, int64_t now, std::string_view what) const {
    if (expires_at_ms < 0 || (expires_at_ms != 0 && expires_at_ms <= now)) {
      return Status::InvalidArgument(std::string(what) + " expiry must be in the future");
    }
    if (options_.max_grant_ms > 0 &&
        (expires_at_ms == 0 || expires_at_ms - now > options_.max_grant_ms)) {
      return Status::InvalidArgument(std::string(what) + " lasts longer than allowed");
    }
    return Status::Ok();
  }

  Status CheckQuota(std::string_view patient_id) const {
    auto it = entries_per_patient_.find(std::string(patient_id));
    if (it != entries_per_patient_.end() && it->second >= options_.max_entries_per_patient) {
      return Status::ResourceExhausted("this patient has too many sharing entries");
    }
    return Status::Ok();
  }

  Status CheckGrantee(policy::GranteeKind kind, const std::string& grantee) const {
    switch (kind) {
      case policy::GranteeKind::kAccount: {
        if (!IsValidRandomId(grantee)) {
          return Status::InvalidArgument("grantee must be an account id");
        }
        MV_ASSIGN_OR_RETURN(AccountFacts facts, accounts_(grantee));
        if (!facts.exists) {
          return Status::InvalidArgument("grantee is not a known account");
        }
        return Status::Ok();
      }
      case policy::GranteeKind::kRole:
        if (!policy_->RoleIdOf(grantee).ok()) {
          return Status::InvalidArgument("grantee is not a known role");
        }
        return Status::Ok();
      case policy::GranteeKind::kInstitution:
      case policy::GranteeKind::kDepartment:
        if (!IsValidRandomId(grantee)) {
          return Status::InvalidArgument("grantee must be an institution or department id");
        }
        return Status::Ok();
    }
    return Status::InvalidArgument("unknown grantee kind");
  }

  // A clinician: an enabled account holding a role that the policy lets read
  // clinical segments on the basis of a treating relationship.
  Status CheckClinician(std::string_view account_id) const {
    if (!IsValidRandomId(account_id)) {
      return Status::InvalidArgument("clinician must be an account id");
    }
    MV_ASSIGN_OR_RETURN(AccountFacts facts, accounts_(account_id));
    if (!facts.exists || facts.disabled) {
      return Status::InvalidArgument("unknown or disabled clinician account");
    }
    auto roles = policy_->RolesOf(facts.roles);
    if (!roles.ok()) {
      return Status::InvalidArgument("the clinician's roles are not in the policy");
    }
    const policy::RoleSet expanded = policy_->Expand(*roles);
    for (const policy::Permission& p : policy_->permissions()) {
      const bool covers_clinical =
          p.categories.empty() ||
          std::find(p.categories.begin(), p.categories.end(), "clinical") != p.categories.end();
      if ((expanded >> p.role & 1u) != 0 && p.basis == policy::Basis::kTreating &&
          (p.actions & Bit(Action::kRead)) != 0 && covers_clinical) {
        return Status::Ok();
      }
    }
    return Status::InvalidArgument("the account holds no role that treats patients");
  }

  // The ledger entry of a change: who (from the request), what kind of entry
  // and which subtree, the patient as a pseudonym. Empty when not auditing.
  // An entry whose id is the patient's (settings; forgetting a patient's
  // sharing) carries no entry_id: the pseudonym names it. BindPatient refuses
  // any other field that would hold the patient id in clear.
  // Encoded for the store's audit sink.
  Result<std::vector<Bytes>> AuditOf(std::string_view action, std::string_view kind,
                                     std::string_view id, std::string_view patient,
                                     std::string_view path, int64_t now) const {
    if (!options_.audit) {
      return std::vector<Bytes>();
    }
    AccessEvent event;
    event.action = action;
    event.kind = kind;
    event.entry_id = id;
    event.patient_id = patient;
    event.path = path;
    event.time_ms = now;
    MV_ASSIGN_OR_RETURN(ledger::Entry e, options_.audit(event));
    MV_RETURN_IF_ERROR(ledger::ValidateEntry(e));
    std::vector<Bytes> out;
    out.push_back(ledger::Encode(e));
    return out;
  }

  Status Persist(std::string_view kind, std::string_view id, std::string_view patient,
                 const json& body, int64_t now, std::string_view action,
                 std::string_view path = "") {
    const std::string text = body.dump();
    MV_ASSIGN_OR_RETURN(Bytes sealed,
                        crypto::AeadSeal(key_, AsBytes(text), EntryAad(kind, id, patient)));
    PolicyEntryRow row;
    row.kind = std::string(kind);
    row.entry_id = std::string(id);
    row.patient_id = std::string(patient);
    row.sealed_body = std::move(sealed);
    row.updated_at_ms = now;
    MV_ASSIGN_OR_RETURN(const std::vector<Bytes> audit,
                        AuditOf(action, kind, id, patient, path, now));
    return store_->Upsert(row, audit);
  }

  // Opens a stored entry and applies it to `target`. DataLoss when it was
  // altered, moved or is malformed.
  Status OpenAndApply(policy::PolicyData& target, const PolicyEntryRow& row) {
    auto plain =
        crypto::AeadOpen(key_, row.sealed_body, EntryAad(row.kind, row.entry_id, row.patient_id));
    if (!plain.ok()) {
      return Status::DataLoss("policy entry " + row.kind + "/" + row.entry_id +
                              " failed to open: it was altered or moved");
    }
    json j = json::parse(plain->begin(), plain->end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return Status::DataLoss("policy entry " + row.kind + "/" + row.entry_id + " is malformed");
    }
    try {
      Apply(target, row.kind, row.entry_id, row.patient_id, j);
    } catch (const json::exception&) {
      return Status::DataLoss("policy entry " + row.kind + "/" + row.entry_id +
                              " has a malformed field");
    }
    return Status::Ok();
  }

  // Rebuilds what is held of one patient from the store and swaps it in.
  // REQUIRES: mu_ held.
  Status ReloadPatientLocked(const std::string& patient_id) {
    policy::PolicyData fresh;
    size_t count = 0;
    const Status loaded =
        store_->ForEachOfPatient(patient_id, [&](const PolicyEntryRow& row) -> Status {
          MV_RETURN_IF_ERROR(OpenAndApply(fresh, row));
          ++count;
          return Status::Ok();
        });
    MV_RETURN_IF_ERROR(loaded);
    data_->ReplacePatientFrom(fresh, patient_id);
    if (count == 0) {
      entries_per_patient_.erase(patient_id);
    } else {
      entries_per_patient_[patient_id] = count;
    }
    return Status::Ok();
  }

  // Rebuilds one entry from its stored JSON into `target` (at Load and when
  // reloading). Throws json::exception on a missing or mistyped field;
  // OpenAndApply turns that into DataLoss.
  void Apply(policy::PolicyData& target, const std::string& kind, const std::string& id,
             const std::string& patient, const json& j) {
    if (kind == kKindConsent) {
      if (j.contains("revoked_at_ms")) {
        return;  // kept as history only
      }
      policy::Consent c;
      c.consent_id = id;
      c.patient_id = patient;
      c.deny = j.at("deny").get<bool>();
      c.path_prefix = j.at("path_prefix").get<std::string>();
      auto gk = policy::ParseGranteeKind(j.at("grantee_kind").get<std::string>());
      if (!gk.ok()) {
        throw json::other_error::create(501, "grantee kind", nullptr);
      }
      c.grantee_kind = *gk;
      c.grantee = j.at("grantee").get<std::string>();
      c.actions = j.at("actions").get<uint32_t>();
      c.purposes = j.at("purposes").get<uint32_t>();
      c.not_before_ms = j.at("not_before_ms").get<int64_t>();
      c.expires_at_ms = j.at("expires_at_ms").get<int64_t>();
      c.created_at_ms = j.at("created_at_ms").get<int64_t>();
      target.UpsertConsent(std::move(c));
    } else if (kind == kKindRelationship) {
      policy::Relationship r;
      r.relationship_id = id;
      r.patient_id = patient;
      r.clinician_account_id = j.at("clinician").get<std::string>();
      r.started_at_ms = j.at("started_at_ms").get<int64_t>();
      r.ended_at_ms = j.at("ended_at_ms").get<int64_t>();
      target.UpsertRelationship(std::move(r));
    } else if (kind == kKindDelegation) {
      policy::Delegation d;
      d.delegation_id = id;
      d.patient_id = patient;
      d.from_account_id = j.at("from").get<std::string>();
      d.to_account_id = j.at("to").get<std::string>();
      d.created_at_ms = j.at("created_at_ms").get<int64_t>();
      d.expires_at_ms = j.at("expires_at_ms").get<int64_t>();
      d.revoked_at_ms = j.at("revoked_at_ms").get<int64_t>();
      target.UpsertDelegation(std::move(d));
    } else if (kind == kKindProxy) {
      policy::ProxyLink p;
      p.proxy_id = id;
      p.patient_id = patient;
      p.proxy_account_id = j.at("proxy").get<std::string>();
      p.path_prefixes = j.at("path_prefixes").get<std::vector<std::string>>();
      p.actions = j.at("actions").get<uint32_t>();
      p.expires_at_ms = j.at("expires_at_ms").get<int64_t>();
      p.revoked_at_ms = j.at("revoked_at_ms").get<int64_t>();
      target.UpsertProxy(std::move(p));
    } else if (kind == kKindBreakGlass) {
      policy::BreakGlassGrant g;
      g.grant_id = id;
      g.patient_id = patient;
      g.account_id = j.at("account").get<std::string>();
      g.reason = j.at("reason").get<std::string>();
      g.started_at_ms = j.at("started_at_ms").get<int64_t>();
      g.expires_at_ms = j.at("expires_at_ms").get<int64_t>();
      target.UpsertBreakGlass(std::move(g));
    } else if (kind == kKindSettings) {
      policy::PatientSettings s;
      s.patient_id = patient;
      s.allow_delegation = j.at("allow_delegation").get<bool>();
      s.never_break_glass = j.at("never_break_glass").get<std::vector<std::string>>();
      target.SetPatientSettings(std::move(s));
    }
    // Unknown kinds come from a newer medvault: ignored, not lost.
  }

  PolicyEntryStore* store_;
  SecretBytes key_;
  policy::PolicyData* data_;
  std::shared_ptr<const policy::Policy> policy_;
  AccountLookup accounts_;
  std::function<Status(std::string_view)> validate_path_;
  AccessOptions options_;
  std::mutex mu_;  // serialises writers: store, then PolicyData
  std::unordered_map<std::string, size_t> entries_per_patient_;  // guarded by mu_
  int64_t seen_change_ = 0;  // the newest change-log seq applied; guarded by mu_
};

}  // namespace

Result<std::unique_ptr<AccessService>> CreateAccessService(
    PolicyEntryStore* store, crypto::KeyProvider* keys, policy::PolicyData* data,
    std::shared_ptr<const policy::Policy> pol, AccountLookup accounts,
    std::function<Status(std::string_view)> validate_path_prefix, AccessOptions options) {
  MV_ASSIGN_OR_RETURN(SecretBytes key, keys->DerivePlatformKey("policy-entries"));
  return std::unique_ptr<AccessService>(
      new AccessServiceImpl(store, std::move(key), data, std::move(pol), std::move(accounts),
                            std::move(validate_path_prefix), std::move(options)));
}

}  // namespace medvault::access
