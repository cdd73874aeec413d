// The decision point. The order of precedence (first step that decides wins):
//
//  1. no subject                                   -> deny unauthenticated
//  2. a no-health-data role and a health-data action -> deny no-health-data-role
//  3. a role requires MFA and the session has none   -> deny mfa-required
//  4. the patient on their own record                -> permit patient-self
//  5. an active family proxy of the patient          -> permit proxy-within-scope
//                                                       or deny proxy-out-of-scope
//  6. break-glass: declaring it (DecideBreakGlass), or an active grant for
//     read/list/export/read-demographics             -> permit break-glass
//     (a path closed by never-break-glass is not opened by the grant: the
//      remaining steps decide, and a deny then says never-break-glass first)
//  7. the patient's explicit denial                  -> deny consent-denied
//  8. role permissions: none -> no-role-permission; attribute conditions
//     (purpose, zone, hours); institution of admins; clearance (lifted by a
//     personal grant); then the basis: always / treating / consented
//  9. otherwise                                      -> deny default-deny
//
// docs/policy.md explains each step with examples; tests/data/pdp_cases.txt
// checks each step and each pair of competing steps.
//
// Decide() allocates nothing: names are compared as string_views, actions,
// purposes, zones and roles as bitmasks, and the permissions of an action are
// precomputed by the parser.
#include <algorithm>
#include <bit>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "policy/policy.h"

namespace medvault::policy {
namespace {

const std::vector<std::string> kNoMask;

constexpr uint32_t kSelfActions =
    ActionBit(Action::kRead) | ActionBit(Action::kList) | ActionBit(Action::kWrite) |
    ActionBit(Action::kExport) | ActionBit(Action::kReadDemographics) |
    ActionBit(Action::kManageConsent) | ActionBit(Action::kReadAccessHistory) |
    ActionBit(Action::kManageRelationship);
constexpr uint32_t kBreakGlassActions = ActionBit(Action::kRead) | ActionBit(Action::kList) |
                                        ActionBit(Action::kExport) |
                                        ActionBit(Action::kReadDemographics);
constexpr uint32_t kReadAndList = ActionBit(Action::kRead) | ActionBit(Action::kList);
// Written only by clinicians: neither the patient nor their proxy writes here.
constexpr std::string_view kClinicianOnlyCategory = "doctor-description";

// The earlier of two ends, where 0 means "no end".
int64_t EarliestEnd(int64_t a, int64_t b) {
  if (a == 0) {
    return b;
  }
  if (b == 0) {
    return a;
  }
  return std::min(a, b);
}

// Whether end a lasts at least as long as end b (0 = no end).
bool LastsLonger(int64_t a, int64_t b) { return a == 0 || (b != 0 && a > b); }

bool RelationshipActive(const Relationship& r, int64_t now_ms) {
  return r.started_at_ms <= now_ms && (r.ended_at_ms == 0 || now_ms < r.ended_at_ms);
}

bool DelegationActive(const Delegation& d, int64_t now_ms) {
  return d.created_at_ms <= now_ms && (d.revoked_at_ms == 0 || now_ms < d.revoked_at_ms) &&
         (d.expires_at_ms == 0 || now_ms < d.expires_at_ms);
}

bool ProxyActive(const ProxyLink& p, int64_t now_ms) {
  return (p.revoked_at_ms == 0 || now_ms < p.revoked_at_ms) &&
         (p.expires_at_ms == 0 || now_ms < p.expires_at_ms);
}

bool ConsentInTime(const Consent& c, int64_t now_ms) {
  return c.not_before_ms <= now_ms && (c.expires_at_ms == 0 || now_ms < c.expires_at_ms);
}

bool IsReasonSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// Characters (UTF-8 code points) of the reason after trimming white space.
size_t TrimmedChars(std::string_view s) {
  while (!s.empty() && IsReasonSpace(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && IsReasonSpace(s.back())) {
    s.remove_suffix(1);
  }
  size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {
      ++n;
    }
  }
  return n;
}

int LocalMinuteOfDay(int64_t now_ms, int utc_offset_minutes) {
  int64_t minutes = now_ms / 60000;
  if (now_ms % 60000 < 0) {
    --minutes;  // floor for times before 1970
  }
  minutes += utc_offset_minutes;
  return static_cast<int>(((minutes % 1440) + 1440) % 1440);
}

bool InWindow(int minute, int start, int end) {
  return start < end ? (minute >= start && minute < end) : (minute >= start || minute < end);
}

Decision Make(Effect effect, Reason reason) {
  Decision d;
  d.effect = effect;
  d.reasons[0] = reason;
  d.reason_count = 1;
  d.obligations.mask_fields = &kNoMask;
  return d;
}

Decision Deny(Reason reason, std::string_view basis_id = {}) {
  Decision d = Make(Effect::kDeny, reason);
  d.basis_id = basis_id;
  return d;
}

Decision Permit(Reason reason, int64_t expires_at_ms, std::string_view basis_id,
                const std::vector<std::string>* mask = &kNoMask) {
  Decision d = Make(Effect::kPermit, reason);
  d.obligations.expires_at_ms = expires_at_ms;
  d.obligations.mask_fields = mask;
  d.basis_id = basis_id;
  return d;
}

// A grant of the patient that matches the request, and the near misses that
// make a precise reason when none does.
struct GrantMatch {
  const Consent* grant = nullptr;
  bool expired = false;        // matched all but time: its end has passed
  bool other_purpose = false;  // matched all but the purpose of use
};

// One evaluation of Decide(): the request and what has been looked up.
class Evaluation {
 public:
  Evaluation(const Policy& policy, const PolicyData::PatientEntry* entry, const Subject& subject,
             Action action, const Resource& resource, const Context& context, RoleSet roles)
      : policy_(policy),
        entry_(entry),
        subject_(subject),
        action_(action),
        action_bit_(ActionBit(action)),
        resource_(resource),
        context_(context),
        roles_(roles) {}

  // Steps 4 to 9.
  Decision Run(std::string_view break_glass_reason) {
    const bool self = !subject_.patient_id.empty() && subject_.patient_id == resource_.patient_id;
    if (self && (action_bit_ & kSelfActions) != 0) {
      if (action_ == Action::kWrite && resource_.category == kClinicianOnlyCategory) {
        return Deny(Reason::kNoRolePermission);
      }
      return Permit(Reason::kPatientSelf, 0, {});
    }
    if (entry_ != nullptr) {
      const ProxyLink* active = nullptr;
      const ProxyLink* within = nullptr;
      for (const ProxyLink& p : entry_->proxies) {
        if (p.proxy_account_id != subject_.account_id || !ProxyActive(p, context_.now_ms)) {
          continue;
        }
        active = &p;
        if ((p.actions & kSelfActions & action_bit_) == 0) {
          continue;
        }
        for (const std::string& prefix : p.path_prefixes) {
          if (PathIsWithin(resource_.path, prefix)) {
            within = &p;
            break;
          }
        }
        if (within != nullptr) {
          break;
        }
      }
      if (within != nullptr) {
        if (action_ == Action::kWrite && resource_.category == kClinicianOnlyCategory) {
          return Deny(Reason::kNoRolePermission);
        }
        Decision d =
            Permit(Reason::kProxyWithinScope,
                   EarliestEnd(within->expires_at_ms, within->revoked_at_ms), within->proxy_id);
        d.obligations.notify_patient =
            action_ == Action::kWrite || action_ == Action::kManageConsent;
        return d;
      }
      if (active != nullptr) {
        return Deny(Reason::kProxyOutOfScope, active->proxy_id);
      }
    }
    const bool may_break_glass = (roles_ & policy_.break_glass_roles_) != 0;
    if (action_ == Action::kBreakGlass) {
      return DeclareBreakGlass(may_break_glass, break_glass_reason);
    }
    bool closed_to_break_glass = false;
    if (entry_ != nullptr && may_break_glass && (action_bit_ & kBreakGlassActions) != 0) {
      const BreakGlassGrant* grant = nullptr;
      for (const BreakGlassGrant& g : entry_->break_glass) {
        if (g.account_id == subject_.account_id && g.started_at_ms <= context_.now_ms &&
            context_.now_ms < g.expires_at_ms &&
            (grant == nullptr || g.expires_at_ms > grant->expires_at_ms)) {
          grant = &g;
        }
      }
      if (grant != nullptr) {
        closed_to_break_glass = ClosedToBreakGlass(resource_.path);
        if (!closed_to_break_glass) {
          Decision d = Permit(Reason::kBreakGlass, grant->expires_at_ms, grant->grant_id);
          d.obligations.notify_patient = true;
          d.obligations.flag_for_review = true;
          return d;
        }
      }
    }
    Decision d = AfterBreakGlass();
    if (closed_to_break_glass && !d.permitted()) {
      // The grant would have opened it but for the patient's setting: say so
      // first, and keep the reason of the step that denied.
      d.reasons[1] = d.reasons[0];
      d.reasons[0] = Reason::kNeverBreakGlass;
      d.reason_count = 2;
    }
    return d;
  }

 private:
  Decision DeclareBreakGlass(bool may_break_glass, std::string_view reason) {
    if (resource_.patient_id.empty()) {
      return Deny(Reason::kDefaultDeny);
    }
    if (!may_break_glass) {
      return Deny(Reason::kNoRolePermission);
    }
    if (ClosedToBreakGlass({})) {
      return Deny(Reason::kNeverBreakGlass);
    }
    const size_t min_chars = std::max<size_t>(1, policy_.break_glass_min_reason_chars_);
    if (TrimmedChars(reason) < min_chars) {
      return Deny(Reason::kBreakGlassReasonMissing);
    }
    Decision d =
        Permit(Reason::kBreakGlass, context_.now_ms + policy_.break_glass_duration_ms_, {});
    d.obligations.notify_patient = true;
    d.obligations.flag_for_review = true;
    return d;
  }

  bool ClosedToBreakGlass(std::string_view path) const {
    if (entry_ == nullptr) {
      return false;
    }
    for (const std::string& closed : entry_->settings.never_break_glass) {
      if (PathIsWithin(path, closed)) {
        return true;
      }
    }
    return false;
  }

  bool GranteeMatches(const Consent& c) const {
    switch (c.grantee_kind) {
      case GranteeKind::kAccount:
        return c.grantee == subject_.account_id;
      case GranteeKind::kRole: {
        RoleSet rest = roles_;
        while (rest != 0) {
          const int id = std::countr_zero(rest);
          if (policy_.roles_[static_cast<size_t>(id)].name == c.grantee) {
            return true;
          }
          rest &= rest - 1;
        }
        return false;
      }
      case GranteeKind::kInstitution:
        return !subject_.institution_id.empty() && c.grantee == subject_.institution_id;
      case GranteeKind::kDepartment:
        return !subject_.department_id.empty() && c.grantee == subject_.department_id;
    }
    return false;
  }

  // Subject, path and action; not purpose nor time. A grant without actions
  // opens read and list only (never export or write: those are named); a
  // denial takes away DeniedActions(), i.e. at least every revealing action.
  bool Covers(const Consent& c) const {
    const uint32_t actions =
        c.deny ? DeniedActions(c.actions) : (c.actions == 0 ? kReadAndList : c.actions);
    return (actions & action_bit_) != 0 && PathIsWithin(resource_.path, c.path_prefix) &&
           GranteeMatches(c);
  }

  bool PurposeMatches(const Consent& c) const {
    return c.purposes == 0 || (c.purposes & PurposeBit(context_.purpose)) != 0;
  }

  // Step 7: an explicit denial in force.
  const Consent* Denial() const {
    if (entry_ == nullptr) {
      return nullptr;
    }
    for (const Consent& c : entry_->consents) {
      if (c.deny && ConsentInTime(c, context_.now_ms) && PurposeMatches(c) && Covers(c)) {
        return &c;
      }
    }
    return nullptr;
  }

  GrantMatch FindGrant(bool personal_only) const {
    GrantMatch m;
    if (entry_ == nullptr) {
      return m;
    }
    for (const Consent& c : entry_->consents) {
      if (c.deny || (personal_only && c.grantee_kind != GranteeKind::kAccount) || !Covers(c)) {
        continue;
      }
      const bool purpose = PurposeMatches(c);
      const bool in_time = ConsentInTime(c, context_.now_ms);
      if (purpose && in_time) {
        if (m.grant == nullptr || LastsLonger(c.expires_at_ms, m.grant->expires_at_ms)) {
          m.grant = &c;
        }
      } else if (purpose && c.expires_at_ms != 0 && context_.now_ms >= c.expires_at_ms) {
        m.expired = true;
      } else if (in_time && !purpose) {
        m.other_purpose = true;
      }
    }
    return m;
  }

  bool CategoryMatches(const Permission& p) const {
    if (p.categories.empty()) {
      return true;
    }
    if (resource_.category.empty()) {
      return false;
    }
    for (const std::string& c : p.categories) {
      if (c == resource_.category) {
        return true;
      }
    }
    return false;
  }

  // Reason::kCount when every attribute condition holds.
  Reason FailedCondition(const Permission& p) const {
    if (p.purposes != 0 && (p.purposes & PurposeBit(context_.purpose)) == 0) {
      return Reason::kPurposeNotAllowed;
    }
    if (p.zones != 0 && (p.zones & ZoneBit(context_.zone)) == 0) {
      return Reason::kZoneNotAllowed;
    }
    if (p.start_minute >= 0 &&
        !InWindow(LocalMinuteOfDay(context_.now_ms, policy_.utc_offset_minutes_), p.start_minute,
                  p.end_minute)) {
      return Reason::kOutsideTimeWindow;
    }
    return Reason::kCount;
  }

  bool Applies(const Permission& p) const {
    return (roles_ & (RoleSet{1} << p.role)) != 0 && CategoryMatches(p);
  }

  // Step 8b: own relationship, delegation, or a grant.
  Decision Treating() const {
    bool ended = false;
    bool delegation_not_allowed = false;
    if (entry_ != nullptr) {
      const Relationship* own = ActiveRelationship(subject_.account_id, &ended);
      if (own != nullptr) {
        return Permit(Reason::kTreatingRelationship, own->ended_at_ms, own->relationship_id);
      }
      // A delegate may not pass the care on, nor manage relationships.
      if (action_ != Action::kDelegate && action_ != Action::kManageRelationship) {
        for (const Delegation& d : entry_->delegations) {
          if (d.to_account_id != subject_.account_id || d.created_at_ms > context_.now_ms) {
            continue;
          }
          if (!DelegationActive(d, context_.now_ms)) {
            ended = true;  // revoked or expired
            continue;
          }
          bool delegator_ended = false;
          const Relationship* from = ActiveRelationship(d.from_account_id, &delegator_ended);
          if (from == nullptr) {
            ended = ended || delegator_ended;
            continue;
          }
          if (!entry_->settings.allow_delegation) {
            delegation_not_allowed = true;
            continue;
          }
          return Permit(
              Reason::kDelegatedRelationship,
              EarliestEnd(d.expires_at_ms, EarliestEnd(d.revoked_at_ms, from->ended_at_ms)),
              d.delegation_id);
        }
      }
      const GrantMatch g = FindGrant(false);
      if (g.grant != nullptr) {
        return Permit(Reason::kConsentGranted, g.grant->expires_at_ms, g.grant->consent_id);
      }
    }
    if (ended) {
      return Deny(Reason::kRelationshipEnded);
    }
    if (delegation_not_allowed) {
      return Deny(Reason::kDelegationNotAllowed);
    }
    return Deny(Reason::kNoRelationship);
  }

  // The active relationship of an account with the patient that lasts
  // longest; *ended is set when one existed and has ended.
  const Relationship* ActiveRelationship(std::string_view account, bool* ended) const {
    const Relationship* best = nullptr;
    for (const Relationship& r : entry_->relationships) {
      if (r.clinician_account_id != account) {
        continue;
      }
      if (RelationshipActive(r, context_.now_ms)) {
        if (best == nullptr || LastsLonger(r.ended_at_ms, best->ended_at_ms)) {
          best = &r;
        }
      } else if (r.ended_at_ms != 0 && r.started_at_ms <= context_.now_ms &&
                 context_.now_ms >= r.ended_at_ms) {
        *ended = true;
      }
    }
    return best;
  }

  // Step 8c.
  Decision Consented() const {
    const GrantMatch g = FindGrant(false);
    if (g.grant != nullptr) {
      return Permit(Reason::kConsentGranted, g.grant->expires_at_ms, g.grant->consent_id);
    }
    if (g.expired) {
      return Deny(Reason::kConsentExpired);
    }
    if (g.other_purpose) {
      return Deny(Reason::kPurposeNotAllowed);
    }
    return Deny(Reason::kDefaultDeny);
  }

  // Steps 7 to 9.
  Decision AfterBreakGlass() const {
    if (const Consent* denial = Denial(); denial != nullptr) {
      return Deny(Reason::kConsentDenied, denial->consent_id);
    }
    const std::vector<uint16_t>& indices =
        policy_.permissions_by_action_[static_cast<size_t>(action_)];
    const std::vector<Permission>& perms = policy_.permissions_;
    bool any = false;
    bool any_passing = false;
    Reason first_failed = Reason::kCount;
    for (uint16_t i : indices) {
      const Permission& p = perms[i];
      if (!Applies(p)) {
        continue;
      }
      any = true;
      const Reason failed = FailedCondition(p);
      if (failed == Reason::kCount) {
        any_passing = true;
        break;
      }
      if (first_failed == Reason::kCount) {
        first_failed = failed;
      }
    }
    if (!any) {
      return Deny(Reason::kNoRolePermission);
    }
    if (!any_passing) {
      return Deny(first_failed);
    }
    // Administration stays within the subject's institution; what belongs to
    // no institution (the institutions themselves, platform accounts) is
    // managed only by accounts bound to none.
    if ((action_ == Action::kManageAccounts || action_ == Action::kManageRelationship) &&
        resource_.institution_id != subject_.institution_id) {
      return Deny(Reason::kOtherInstitution);
    }
    // The patient's personal grant lifts the clearance ceiling.
    const Consent* lift = nullptr;
    if (!resource_.category.empty() && policy_.ClearanceOf(roles_) < resource_.sensitivity) {
      lift = FindGrant(true).grant;
      if (lift == nullptr) {
        return Deny(Reason::kInsufficientClearance);
      }
    }
    // Bases in file order: the first permission that permits decides (its
    // masks apply); if none does, the first one's reason is given.
    bool treating_done = false;
    bool consented_done = false;
    Decision treating;
    Decision consented;
    const Decision* first_deny = nullptr;
    for (uint16_t i : indices) {
      const Permission& p = perms[i];
      if (!Applies(p) || FailedCondition(p) != Reason::kCount) {
        continue;
      }
      Decision* d = nullptr;
      Decision always;
      switch (p.basis) {
        case Basis::kAlways:
          always = Permit(Reason::kRolePermission, 0, {});
          d = &always;
          break;
        case Basis::kTreating:
          if (!treating_done) {
            treating = Treating();
            treating_done = true;
          }
          d = &treating;
          break;
        case Basis::kConsented:
          if (!consented_done) {
            consented = Consented();
            consented_done = true;
          }
          d = &consented;
          break;
      }
      if (d->permitted()) {
        Decision out = *d;
        out.obligations.mask_fields = &p.mask_fields;
        if (lift != nullptr) {
          out.obligations.expires_at_ms =
              EarliestEnd(out.obligations.expires_at_ms, lift->expires_at_ms);
          // A grant that both permits and lifts the ceiling is named by
          // the one that lifted it: without it, the answer was no.
          if (out.basis_id.empty() || out.reason() == Reason::kConsentGranted) {
            out.basis_id = lift->consent_id;
          }
        }
        return out;
      }
      if (first_deny == nullptr) {
        first_deny = d;
      }
    }
    return first_deny != nullptr ? *first_deny : Deny(Reason::kDefaultDeny);
  }

  const Policy& policy_;
  const PolicyData::PatientEntry* entry_;
  const Subject& subject_;
  const Action action_;
  const uint32_t action_bit_;
  const Resource& resource_;
  const Context& context_;
  const RoleSet roles_;
};

Decision DecideImpl(const Policy& policy, const PolicyData* data, const Subject& subject,
                    Action action, const Resource& resource, const Context& context,
                    std::string_view break_glass_reason) {
  if (subject.account_id.empty()) {
    return Deny(Reason::kUnauthenticated);
  }
  if (static_cast<size_t>(action) >= kActionCount) {
    return Deny(Reason::kDefaultDeny);
  }
  const RoleSet roles = policy.Expand(subject.roles);
  if ((roles & policy.no_health_data_roles_) != 0 && IsHealthDataAction(action)) {
    return Deny(Reason::kNoHealthDataRole);
  }
  if ((roles & policy.mfa_roles_) != 0 && !subject.mfa_verified) {
    return Deny(Reason::kMfaRequired);
  }
  if (data == nullptr || resource.patient_id.empty()) {
    return Evaluation(policy, nullptr, subject, action, resource, context, roles)
        .Run(break_glass_reason);
  }
  std::shared_lock lock(data->mu_);
  const auto it = data->patients_.find(resource.patient_id);
  const PolicyData::PatientEntry* entry = it == data->patients_.end() ? nullptr : &it->second;
  return Evaluation(policy, entry, subject, action, resource, context, roles)
      .Run(break_glass_reason);
}

}  // namespace

DecisionPoint::DecisionPoint(std::shared_ptr<const Policy> policy, const PolicyData* data)
    : policy_(std::move(policy)), data_(data) {}

Decision DecisionPoint::Decide(const Subject& subject, Action action, const Resource& resource,
                               const Context& context) const {
  // kBreakGlass without a reason: DecideBreakGlass() is the way to declare it.
  return DecideImpl(*policy_, data_, subject, action, resource, context, {});
}

Decision DecisionPoint::DecideBreakGlass(const Subject& subject, std::string_view patient_id,
                                         std::string_view reason, const Context& context) const {
  Resource resource;
  resource.patient_id = patient_id;
  Context emergency = context;
  emergency.purpose = Purpose::kEmergency;
  return DecideImpl(*policy_, data_, subject, Action::kBreakGlass, resource, emergency, reason);
}

}  // namespace medvault::policy
