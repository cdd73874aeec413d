// The typed ledger builders (enforce.h): every entry the platform writes about
// a request, a decision or a change is shaped here, once.
#include "common/ids.h"
#include "enforce/enforce.h"

namespace medvault::enforce {

Result<ledger::Entry> DecisionEntry(const Origin& origin, const policy::Context& context,
                                    policy::Action action, const policy::Resource& resource,
                                    const policy::Decision& d, const SecretBytes* patient_ref_key) {
  ledger::Entry e;
  e.time_ms = context.now_ms != 0 ? context.now_ms : NowUnixMillis();
  e.request_id = origin.request_id;
  e.actor = origin.Actor();
  e.action = action == policy::Action::kBreakGlass ? std::string(ledger::kActionBreakGlass)
                                                   : std::string(ledger::kActionDecision);
  e.effect = std::string(d.permitted() ? ledger::kEffectPermit : ledger::kEffectDeny);
  for (uint8_t i = 0; i < d.reason_count && i < d.reasons.size(); ++i) {
    e.reasons.emplace_back(policy::ReasonCode(d.reasons[i]));
  }
  if (e.reasons.empty()) {
    e.reasons.emplace_back(policy::ReasonCode(d.reason()));
  }
  if (d.obligations.notify_patient) {
    e.obligations.emplace_back("notify-patient");
  }
  if (d.obligations.flag_for_review) {
    e.obligations.emplace_back("flag-for-review");
  }
  if (d.obligations.mask_fields != nullptr && !d.obligations.mask_fields->empty()) {
    e.obligations.emplace_back("mask-fields");
  }
  if (d.obligations.expires_at_ms != 0) {
    e.obligations.push_back("expires-at:" + std::to_string(d.obligations.expires_at_ms));
  }
  if (!origin.console) {
    e.purpose = std::string(policy::PurposeName(context.purpose));
  }
  e.resource.kind = std::string(policy::ActionName(action));
  e.resource.path = std::string(resource.path);
  e.details["route"] = origin.route;
  if (!d.basis_id.empty()) {
    e.details["basis"] = std::string(d.basis_id);
  }
  if (!resource.patient_id.empty() && patient_ref_key != nullptr) {
    // A decision is recorded whatever the caller asked for: a requested path
    // that spells the patient id is recorded with the id redacted.
    ledger::RedactPatientId(e, resource.patient_id);
    e.patient_ref = ledger::PatientRef(*patient_ref_key, resource.patient_id);
  }
  MV_RETURN_IF_ERROR(ledger::ValidateEntry(e));
  return e;
}

Result<ledger::Entry> ActionEntry(const Origin& origin, std::string_view action,
                                  std::string_view effect, std::string_view kind,
                                  std::map<std::string, std::string> details,
                                  std::string_view actor, std::vector<std::string> reasons) {
  ledger::Entry e;
  e.time_ms = NowUnixMillis();
  e.request_id = origin.request_id;
  e.actor = !actor.empty() ? std::string(actor) : origin.Actor();
  e.action = std::string(action);
  e.effect = std::string(effect);
  e.reasons = std::move(reasons);
  e.resource.kind = std::string(kind);
  e.details = std::move(details);
  MV_RETURN_IF_ERROR(ledger::ValidateEntry(e));
  return e;
}

Result<Bytes> RecordEventEntry(const record::RecordEvent& event,
                               const SecretBytes& patient_ref_key) {
  Scope* scope = CurrentScope();
  if (scope == nullptr) {
    // Fail closed: a record write no enforcement scope decided.
    return Status::FailedPrecondition("a record write outside any request: refused");
  }
  // A new record's root key comes first in its transaction; the records the
  // request may write are then those it decided on, and the one it created.
  const bool covered = event.action == ledger::kActionPatientRootCreated
                           ? scope->CoversNewPatient(event.patient_id)
                           : scope->CoversWrite(event.patient_id);
  if (!covered) {
    return Status::FailedPrecondition("a record write that no permitted decision covers: refused");
  }
  const Origin* origin = &scope->origin();
  ledger::Entry e;
  e.time_ms = event.time_ms != 0 ? event.time_ms : NowUnixMillis();
  e.request_id = origin->request_id;
  e.actor = event.author.empty() ? origin->Actor() : std::string(event.author);
  e.action = std::string(event.action);
  e.effect = std::string(ledger::kEffectDone);
  if (event.action == ledger::kActionSubtreeRotated) {
    // A rotation names the subtree and its new key version (no content).
    e.resource = {"subtree", std::string(event.path)};
    e.details["key_version"] = std::to_string(event.version);
  } else if (!event.path.empty()) {
    e.resource = {"segment", std::string(event.path)};
    e.details["version"] = std::to_string(event.version);
    e.details["content_sha256"] = event.content_sha256_hex;
  } else {
    e.resource = {"patient", ""};
  }
  // A segment path that spells the patient id is refused with the write:
  // the ledger names patients only by their pseudonym.
  MV_RETURN_IF_ERROR(ledger::BindPatient(e, patient_ref_key, event.patient_id));
  MV_RETURN_IF_ERROR(ledger::ValidateEntry(e));
  return ledger::Encode(e);
}

Result<Bytes> AccountEventEntry(const auth::AccountEvent& event,
                                const SecretBytes& patient_ref_key) {
  const std::optional<Origin> origin = CurrentOrigin();
  ledger::Entry e;
  e.time_ms = NowUnixMillis();
  e.request_id = origin.has_value() ? origin->request_id : "";
  e.actor = origin.has_value() ? origin->Actor() : "system";
  e.action = std::string(event.action);
  e.effect = std::string(ledger::kEffectDone);
  e.resource = {"account", ""};
  e.details = event.details;
  e.details["subject"] = std::string(event.subject_id);
  if (!event.patient_id.empty()) {
    // A patient's own account changed: the patient sees it in their access
    // history (by pseudonym, never the id in clear) and is notified.
    e.patient_ref = ledger::PatientRef(patient_ref_key, event.patient_id);
    e.obligations.emplace_back("notify-patient");
  }
  MV_RETURN_IF_ERROR(ledger::ValidateEntry(e));
  return ledger::Encode(e);
}

Result<ledger::Entry> AccessEventEntry(const access::AccessEvent& event,
                                       const SecretBytes& patient_ref_key) {
  const std::optional<Origin> origin = CurrentOrigin();
  ledger::Entry e;
  e.time_ms = event.time_ms != 0 ? event.time_ms : NowUnixMillis();
  e.request_id = origin.has_value() ? origin->request_id : "";
  e.actor = origin.has_value() ? origin->Actor() : "system";
  e.action = std::string(event.action);
  e.effect = std::string(ledger::kEffectDone);
  e.resource = {std::string(event.kind), std::string(event.path)};
  // An entry whose id is the patient's (settings; forgetting a patient's
  // sharing) carries no entry_id: the pseudonym names it. BindPatient
  // refuses any other field that would hold the patient id in clear.
  if (event.entry_id != event.patient_id) {
    e.details["entry_id"] = std::string(event.entry_id);
  }
  MV_RETURN_IF_ERROR(ledger::BindPatient(e, patient_ref_key, event.patient_id));
  MV_RETURN_IF_ERROR(ledger::ValidateEntry(e));
  return e;
}

Result<ledger::Entry> ScrubFindingEntry(const integrity::Finding& f,
                                        const SecretBytes& patient_ref_key) {
  ledger::Entry e;
  e.time_ms = NowUnixMillis();
  e.actor = "system";
  e.action = std::string(ledger::kActionScrubFinding);
  e.effect = std::string(ledger::kEffectDone);
  e.reasons = {f.kind};
  e.resource = {"object", f.path};
  // Object keys are "<patient id>/<object id>": only the object id goes in,
  // the patient is named by the pseudonym.
  const std::string_view key = f.object_key;
  const size_t slash = key.rfind('/');
  const std::string_view object_id = slash == std::string_view::npos ? key : key.substr(slash + 1);
  if (IsValidRandomId(object_id)) {
    e.details["object_id"] = std::string(object_id);
  }
  e.details["version"] = std::to_string(f.version);
  if (IsValidRandomId(f.patient_id)) {
    ledger::RedactPatientId(e, f.patient_id);
    e.patient_ref = ledger::PatientRef(patient_ref_key, f.patient_id);
  }
  MV_RETURN_IF_ERROR(ledger::ValidateEntry(e));
  return e;
}

}  // namespace medvault::enforce
