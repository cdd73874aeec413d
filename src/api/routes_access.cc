// The patient's sharing controls and the clinicians' relationships:
// consents, treating relationships, delegations, family proxies, settings
// and break-glass. Each route decides on the patient concerned; the access
// service then checks the change itself.
#include "api/http_internal.h"
#include "api/json_input.h"
#include "common/ids.h"
#include "common/log.h"
#include "ledger/ledger.h"
#include "record/record.h"

namespace medvault::api::internal {
namespace {

using nlohmann::json;
using policy::Action;

policy::Resource PatientOf(const std::string& patient_id) {
  policy::Resource r;
  r.patient_id = patient_id;
  return r;
}

// Unknown and erased patients answer 404 only after the decision.
Status CheckPatient(Call& call, const std::string& id) {
  MV_ASSIGN_OR_RETURN(record::PatientInfo p, call.services.records->GetPatient(id));
  if (p.erased) {
    return Status::NotFound("the patient's record was erased");
  }
  return Status::Ok();
}

// The patient of the route ({id}), after the decision on `action` and, for
// an existing record, the check that it is not erased.
Result<std::string> DecidedPatient(Call& call, Action action) {
  std::string id = call.req.matches[1].str();
  MV_RETURN_IF_ERROR(call.Decide(action, PatientOf(id)));
  MV_RETURN_IF_ERROR(CheckPatient(call, id));
  return id;
}

std::vector<std::string> Names(uint32_t bits, size_t count, std::string_view (*name)(size_t)) {
  std::vector<std::string> out;
  for (size_t i = 0; i < count; ++i) {
    if ((bits >> i & 1u) != 0) {
      out.emplace_back(name(i));
    }
  }
  return out;
}
std::string_view ActionAt(size_t i) { return policy::ActionName(static_cast<Action>(i)); }
std::string_view PurposeAt(size_t i) {
  return policy::PurposeName(static_cast<policy::Purpose>(i));
}

// The actions a consent covers as the decision point applies them.
std::vector<std::string> ConsentActions(const policy::Consent& c) {
  if (c.deny) {
    return Names(policy::DeniedActions(c.actions), policy::kActionCount, ActionAt);
  }
  return c.actions == 0 ? std::vector<std::string>{"read", "list"}
                        : Names(c.actions, policy::kActionCount, ActionAt);
}

json ConsentJson(const policy::Consent& c) {
  return {{"consent_id", c.consent_id},
          {"effect", c.deny ? "deny" : "grant"},
          {"path_prefix", c.path_prefix},
          {"grantee_kind", std::string(policy::GranteeKindName(c.grantee_kind))},
          {"grantee", c.grantee},
          {"actions", ConsentActions(c)},
          {"purposes", Names(c.purposes, static_cast<size_t>(policy::Purpose::kCount), PurposeAt)},
          {"not_before", TimeOrEmpty(c.not_before_ms)},
          {"expires_at", TimeOrEmpty(c.expires_at_ms)},
          {"created_at", FormatRfc3339Millis(c.created_at_ms)}};
}
json RelationshipJson(const policy::Relationship& r, int64_t now) {
  return {{"relationship_id", r.relationship_id},
          {"clinician_id", r.clinician_account_id},
          {"started_at", FormatRfc3339Millis(r.started_at_ms)},
          {"ended_at", TimeOrEmpty(r.ended_at_ms)},
          {"active", r.started_at_ms <= now && (r.ended_at_ms == 0 || now < r.ended_at_ms)}};
}
json DelegationJson(const policy::Delegation& d) {
  return {{"delegation_id", d.delegation_id},
          {"from", d.from_account_id},
          {"to", d.to_account_id},
          {"created_at", FormatRfc3339Millis(d.created_at_ms)},
          {"expires_at", TimeOrEmpty(d.expires_at_ms)},
          {"revoked_at", TimeOrEmpty(d.revoked_at_ms)}};
}
json ProxyJson(const policy::ProxyLink& p) {
  return {{"proxy_id", p.proxy_id},
          {"proxy_account_id", p.proxy_account_id},
          {"path_prefixes", p.path_prefixes},
          {"actions", Names(p.actions, policy::kActionCount, ActionAt)},
          {"expires_at", TimeOrEmpty(p.expires_at_ms)},
          {"revoked_at", TimeOrEmpty(p.revoked_at_ms)}};
}
json BreakGlassJson(const policy::BreakGlassGrant& g) {
  return {{"grant_id", g.grant_id},
          {"patient_id", g.patient_id},
          {"account_id", g.account_id},
          {"reason", g.reason},
          {"started_at", FormatRfc3339Millis(g.started_at_ms)},
          {"expires_at", FormatRfc3339Millis(g.expires_at_ms)}};
}

Result<std::vector<Action>> ActionsField(const json& j) {
  MV_ASSIGN_OR_RETURN(auto names, GetStringArrayField(j, "actions", 16, 32));
  std::vector<Action> out;
  for (const std::string& n : names) {
    MV_ASSIGN_OR_RETURN(Action a, policy::ParseAction(n));
    out.push_back(a);
  }
  return out;
}

// A segment path or subtree given by a patient; "" is the whole record.
Status ValidatePrefix(const std::string& p) {
  return p.empty() ? Status::Ok() : record::ValidateSegmentPath(p);
}

}  // namespace

void RegisterAccessRoutes(RouteTable& table) {
  const std::string patient = "/api/v1/patients/" + std::string(kIdRe);

  // --- consents ------------------------------------------------------------
  table.Route("GET", patient + "/consents", "/api/v1/patients/{id}/consents", RouteAccess::kData,
              [](Call& call) -> Status {
                MV_RETURN_IF_ERROR(CheckQuery(call.req, {}));
                MV_ASSIGN_OR_RETURN(const std::string id,
                                    DecidedPatient(call, Action::kManageConsent));
                json arr = json::array();
                for (const auto& c : call.services.access->data().ConsentsOf(id)) {
                  arr.push_back(ConsentJson(c));
                }
                call.Json(200, json{{"consents", arr}});
                return Status::Ok();
              });
  table.RouteWithBody(
      "POST", patient + "/consents", "/api/v1/patients/{id}/consents", RouteAccess::kData,
      [](Call& call, const std::string& body) -> Status {
        MV_ASSIGN_OR_RETURN(const std::string id, DecidedPatient(call, Action::kManageConsent));
        MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body));
        MV_RETURN_IF_ERROR(CheckObjectFields(j,
                                             {"effect", "path_prefix", "grantee_kind", "grantee",
                                              "actions", "purposes", "not_before", "expires_at"},
                                             {"effect", "grantee_kind", "grantee"}));
        access::ConsentRequest r;
        MV_ASSIGN_OR_RETURN(std::string effect, GetStringField(j, "effect", true, 8));
        if (effect != "grant" && effect != "deny") {
          return Status::InvalidArgument("field 'effect' must be \"grant\" or \"deny\"");
        }
        r.deny = effect == "deny";
        MV_ASSIGN_OR_RETURN(r.path_prefix, GetStringField(j, "path_prefix", false, 256));
        MV_RETURN_IF_ERROR(ValidatePrefix(r.path_prefix));
        MV_ASSIGN_OR_RETURN(std::string kind, GetStringField(j, "grantee_kind", true, 16));
        MV_ASSIGN_OR_RETURN(r.grantee_kind, policy::ParseGranteeKind(kind));
        MV_ASSIGN_OR_RETURN(r.grantee, GetStringField(j, "grantee", true, 64));
        MV_ASSIGN_OR_RETURN(r.actions, ActionsField(j));
        MV_ASSIGN_OR_RETURN(auto purposes, GetStringArrayField(j, "purposes", 8, 32));
        for (const std::string& p : purposes) {
          MV_ASSIGN_OR_RETURN(policy::Purpose pp, policy::ParsePurpose(p));
          r.purposes.push_back(pp);
        }
        MV_ASSIGN_OR_RETURN(r.not_before_ms, GetTimeField(j, "not_before"));
        MV_ASSIGN_OR_RETURN(r.expires_at_ms, GetTimeField(j, "expires_at"));
        MV_ASSIGN_OR_RETURN(policy::Consent c, call.services.access->AddConsent(id, r));
        call.Json(201, ConsentJson(c));
        return Status::Ok();
      });
  table.Route(
      "DELETE", patient + "/consents/" + std::string(kIdRe),
      "/api/v1/patients/{id}/consents/{consent_id}", RouteAccess::kData, [](Call& call) -> Status {
        MV_RETURN_IF_ERROR(CheckQuery(call.req, {}));
        const std::string id = call.req.matches[1].str();
        MV_RETURN_IF_ERROR(call.Decide(Action::kManageConsent, PatientOf(id)));
        MV_RETURN_IF_ERROR(call.services.access->RevokeConsent(id, call.req.matches[2].str()));
        call.Json(200, json{{"revoked", true}});
        return Status::Ok();
      });

  // --- settings ------------------------------------------------------------
  table.Route("GET", patient + "/settings", "/api/v1/patients/{id}/settings", RouteAccess::kData,
              [](Call& call) -> Status {
                MV_RETURN_IF_ERROR(CheckQuery(call.req, {}));
                MV_ASSIGN_OR_RETURN(const std::string id,
                                    DecidedPatient(call, Action::kManageConsent));
                const policy::PatientSettings s = call.services.access->data().SettingsOf(id);
                call.Json(200, json{{"allow_delegation", s.allow_delegation},
                                    {"never_break_glass", s.never_break_glass}});
                return Status::Ok();
              });
  table.RouteWithBody(
      "PUT", patient + "/settings", "/api/v1/patients/{id}/settings", RouteAccess::kData,
      [](Call& call, const std::string& body) -> Status {
        MV_ASSIGN_OR_RETURN(const std::string id, DecidedPatient(call, Action::kManageConsent));
        MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body));
        MV_RETURN_IF_ERROR(CheckObjectFields(j, {"allow_delegation", "never_break_glass"},
                                             {"allow_delegation", "never_break_glass"}));
        if (!j["allow_delegation"].is_boolean()) {
          return Status::InvalidArgument("field 'allow_delegation' must be a boolean");
        }
        MV_ASSIGN_OR_RETURN(auto never, GetStringArrayField(j, "never_break_glass", 32, 256));
        for (const std::string& p : never) {
          MV_RETURN_IF_ERROR(record::ValidateSegmentPath(p));
        }
        MV_RETURN_IF_ERROR(
            call.services.access->SetSettings(id, j["allow_delegation"].get<bool>(), never));
        call.Json(200,
                  json{{"allow_delegation", j["allow_delegation"]}, {"never_break_glass", never}});
        return Status::Ok();
      });

  // --- relationships ---------------------------------------------------------
  table.Route("GET", patient + "/relationships", "/api/v1/patients/{id}/relationships",
              RouteAccess::kData, [](Call& call) -> Status {
                MV_RETURN_IF_ERROR(CheckQuery(call.req, {}));
                const std::string id = call.req.matches[1].str();
                // The patient, and admins of the clinicians' institution.
                policy::Resource r = PatientOf(id);
                r.institution_id = call.subject.institution_id;
                MV_RETURN_IF_ERROR(call.Decide(Action::kManageRelationship, r));
                MV_RETURN_IF_ERROR(CheckPatient(call, id));
                const int64_t now = call.context.now_ms;
                const auto& data = call.services.access->data();
                json rel = json::array();
                for (const auto& x : data.RelationshipsOf(id)) {
                  rel.push_back(RelationshipJson(x, now));
                }
                json del = json::array();
                for (const auto& x : data.DelegationsOf(id)) {
                  del.push_back(DelegationJson(x));
                }
                call.Json(200, json{{"relationships", rel}, {"delegations", del}});
                return Status::Ok();
              });
  table.RouteWithBody(
      "POST", patient + "/relationships", "/api/v1/patients/{id}/relationships", RouteAccess::kData,
      [](Call& call, const std::string& body) -> Status {
        const std::string id = call.req.matches[1].str();
        // Decide first, on the clinician's institution when one is named.
        auto parsed = ParseJsonBody(body);
        std::string clinician;
        if (parsed.ok() && parsed->is_object() && parsed->contains("clinician_id") &&
            (*parsed)["clinician_id"].is_string()) {
          clinician = (*parsed)["clinician_id"].get<std::string>();
        }
        auto account = IsValidRandomId(clinician) ? call.services.accounts->GetAccount(clinician)
                                                  : Result<auth::Account>(Status::NotFound(""));
        policy::Resource r = PatientOf(id);
        // An unknown clinician is decided on the caller's own institution
        // (and answered afterwards), so that the decision reveals nothing.
        const std::string clinician_institution =
            account.ok() ? account->institution_id : std::string(call.subject.institution_id);
        r.institution_id = clinician_institution;
        MV_RETURN_IF_ERROR(call.Decide(Action::kManageRelationship, r));
        MV_RETURN_IF_ERROR(parsed.status());
        MV_RETURN_IF_ERROR(CheckObjectFields(*parsed, {"clinician_id"}, {"clinician_id"}));
        MV_ASSIGN_OR_RETURN(clinician, GetStringField(*parsed, "clinician_id", true, 32));
        // Nobody makes themselves the treating clinician of a record (a
        // department head could otherwise open any patient's record alone):
        // a second person of the institution records it, or the patient.
        if (clinician == call.account_id() && call.subject.patient_id != id) {
          call.Record("relationship.start", ledger::kEffectDeny, "relationship",
                      {{"clinician", clinician}}, "", {"own-relationship"});
          return Status::PermissionDenied(
              "own-relationship: no one starts a treating relationship with themselves");
        }
        MV_RETURN_IF_ERROR(CheckPatient(call, id));
        MV_ASSIGN_OR_RETURN(policy::Relationship rel,
                            call.services.access->StartRelationship(id, clinician));
        call.Json(201, RelationshipJson(rel, call.context.now_ms));
        return Status::Ok();
      });
  table.Route("DELETE", patient + "/relationships/" + std::string(kIdRe),
              "/api/v1/patients/{id}/relationships/{relationship_id}", RouteAccess::kData,
              [](Call& call) -> Status {
                MV_RETURN_IF_ERROR(CheckQuery(call.req, {}));
                const std::string id = call.req.matches[1].str();
                const std::string rid = call.req.matches[2].str();
                std::string clinician_institution(call.subject.institution_id);
                for (const auto& x : call.services.access->data().RelationshipsOf(id)) {
                  if (x.relationship_id == rid) {
                    auto a = call.services.accounts->GetAccount(x.clinician_account_id);
                    clinician_institution = a.ok() ? a->institution_id : "";
                  }
                }
                policy::Resource r = PatientOf(id);
                r.institution_id = clinician_institution;
                MV_RETURN_IF_ERROR(call.Decide(Action::kManageRelationship, r));
                MV_RETURN_IF_ERROR(call.services.access->EndRelationship(id, rid));
                call.Json(200, json{{"ended", true}});
                return Status::Ok();
              });

  // --- delegations -----------------------------------------------------------
  table.RouteWithBody("POST", patient + "/delegations", "/api/v1/patients/{id}/delegations",
                      RouteAccess::kData, [](Call& call, const std::string& body) -> Status {
                        const std::string id = call.req.matches[1].str();
                        policy::Resource r = PatientOf(id);
                        r.path = "";
                        r.category = "clinical";
                        r.sensitivity = 0;
                        MV_RETURN_IF_ERROR(call.Decide(Action::kDelegate, r));
                        MV_RETURN_IF_ERROR(CheckPatient(call, id));
                        MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body));
                        MV_RETURN_IF_ERROR(CheckObjectFields(j, {"to", "expires_at"}, {"to"}));
                        MV_ASSIGN_OR_RETURN(std::string to, GetStringField(j, "to", true, 32));
                        MV_ASSIGN_OR_RETURN(int64_t until, GetTimeField(j, "expires_at"));
                        MV_ASSIGN_OR_RETURN(
                            policy::Delegation d,
                            call.services.access->Delegate(id, call.account_id(), to, until));
                        call.Json(201, DelegationJson(d));
                        return Status::Ok();
                      });
  table.Route("DELETE", patient + "/delegations/" + std::string(kIdRe),
              "/api/v1/patients/{id}/delegations/{delegation_id}", RouteAccess::kData,
              [](Call& call) -> Status {
                MV_RETURN_IF_ERROR(CheckQuery(call.req, {}));
                const std::string id = call.req.matches[1].str();
                const std::string did = call.req.matches[2].str();
                // The patient (manage-consent) or the delegating clinician.
                bool own = false;
                for (const auto& d : call.services.access->data().DelegationsOf(id)) {
                  own = own || (d.delegation_id == did && d.from_account_id == call.account_id());
                }
                policy::Resource r = PatientOf(id);
                if (own) {
                  r.category = "clinical";
                  MV_RETURN_IF_ERROR(call.Decide(Action::kDelegate, r));
                } else {
                  MV_RETURN_IF_ERROR(call.Decide(Action::kManageConsent, r));
                }
                MV_RETURN_IF_ERROR(call.services.access->RevokeDelegation(id, did));
                call.Json(200, json{{"revoked", true}});
                return Status::Ok();
              });

  // --- family proxies --------------------------------------------------------
  table.Route("GET", patient + "/proxies", "/api/v1/patients/{id}/proxies", RouteAccess::kData,
              [](Call& call) -> Status {
                MV_RETURN_IF_ERROR(CheckQuery(call.req, {}));
                MV_ASSIGN_OR_RETURN(const std::string id,
                                    DecidedPatient(call, Action::kManageConsent));
                json arr = json::array();
                for (const auto& p : call.services.access->data().ProxiesOf(id)) {
                  arr.push_back(ProxyJson(p));
                }
                call.Json(200, json{{"proxies", arr}});
                return Status::Ok();
              });
  table.RouteWithBody(
      "POST", patient + "/proxies", "/api/v1/patients/{id}/proxies", RouteAccess::kData,
      [](Call& call, const std::string& body) -> Status {
        MV_ASSIGN_OR_RETURN(const std::string id, DecidedPatient(call, Action::kManageConsent));
        MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body));
        MV_RETURN_IF_ERROR(
            CheckObjectFields(j, {"proxy_account_id", "path_prefixes", "actions", "expires_at"},
                              {"proxy_account_id", "path_prefixes", "actions"}));
        access::ProxyRequest r;
        MV_ASSIGN_OR_RETURN(r.proxy_account_id, GetStringField(j, "proxy_account_id", true, 32));
        MV_ASSIGN_OR_RETURN(r.path_prefixes, GetStringArrayField(j, "path_prefixes", 32, 256));
        MV_ASSIGN_OR_RETURN(r.actions, ActionsField(j));
        MV_ASSIGN_OR_RETURN(r.expires_at_ms, GetTimeField(j, "expires_at"));
        MV_ASSIGN_OR_RETURN(policy::ProxyLink p, call.services.access->AddProxy(id, r));
        call.Json(201, ProxyJson(p));
        return Status::Ok();
      });
  table.Route(
      "DELETE", patient + "/proxies/" + std::string(kIdRe),
      "/api/v1/patients/{id}/proxies/{proxy_id}", RouteAccess::kData, [](Call& call) -> Status {
        MV_RETURN_IF_ERROR(CheckQuery(call.req, {}));
        const std::string id = call.req.matches[1].str();
        MV_RETURN_IF_ERROR(call.Decide(Action::kManageConsent, PatientOf(id)));
        MV_RETURN_IF_ERROR(call.services.access->RevokeProxy(id, call.req.matches[2].str()));
        call.Json(200, json{{"revoked", true}});
        return Status::Ok();
      });

  // --- break-glass -----------------------------------------------------------
  table.RouteWithBody(
      "POST", patient + "/break-glass", "/api/v1/patients/{id}/break-glass", RouteAccess::kData,
      [](Call& call, const std::string& body) -> Status {
        const std::string id = call.req.matches[1].str();
        // A malformed body is an emergency declared without a reason: the
        // decision point refuses it (and it is recorded as such).
        auto parsed = ParseJsonBody(body);
        std::string reason;
        if (parsed.ok() && parsed->is_object() && CheckObjectFields(*parsed, {"reason"}, {}).ok()) {
          auto r = GetStringField(*parsed, "reason", false, 2000);
          reason = r.ok() ? *r : "";
        }
        call.context.purpose = policy::Purpose::kEmergency;
        MV_RETURN_IF_ERROR(call.DecideBreakGlass(id, reason));
        MV_RETURN_IF_ERROR(parsed.status());
        MV_RETURN_IF_ERROR(CheckPatient(call, id));
        const policy::Decision d = call.last_decision();
        MV_ASSIGN_OR_RETURN(policy::BreakGlassGrant g,
                            call.services.access->RecordBreakGlass(id, call.account_id(), reason,
                                                                   d.obligations.expires_at_ms));
        Log(LogLevel::kWarn, "access.break_glass",
            {{"account", call.account_id()}, {"grant", g.grant_id}});
        json out = BreakGlassJson(g);
        out["notified_patient"] = d.obligations.notify_patient;
        out["flagged_for_review"] = d.obligations.flag_for_review;
        call.Json(201, out);
        return Status::Ok();
      });
  // The privacy officer's review list of emergency accesses.
  table.Route("GET", "/api/v1/break-glass", "/api/v1/break-glass", RouteAccess::kData,
              [](Call& call) -> Status {
                MV_RETURN_IF_ERROR(CheckQuery(call.req, {"since"}));
                MV_RETURN_IF_ERROR(call.Decide(Action::kReadAudit, {}));
                int64_t since = 0;
                if (call.req.has_param("since")) {
                  MV_ASSIGN_OR_RETURN(since,
                                      ParseTimestamp(call.req.get_param_value("since"), "since"));
                }
                json arr = json::array();
                for (const auto& g : call.services.access->data().BreakGlassSince(since)) {
                  arr.push_back(BreakGlassJson(g));
                }
                call.Json(200, json{{"break_glass", arr}});
                return Status::Ok();
              });
  table.Route("GET", patient + "/break-glass", "/api/v1/patients/{id}/break-glass",
              RouteAccess::kData, [](Call& call) -> Status {
                MV_RETURN_IF_ERROR(CheckQuery(call.req, {}));
                const std::string id = call.req.matches[1].str();
                MV_RETURN_IF_ERROR(call.Decide(Action::kReadAccessHistory, PatientOf(id)));
                json arr = json::array();
                for (const auto& g : call.services.access->data().BreakGlassOf(id)) {
                  arr.push_back(BreakGlassJson(g));
                }
                call.Json(200, json{{"break_glass", arr}});
                return Status::Ok();
              });
}

}  // namespace medvault::api::internal
