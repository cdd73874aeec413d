// Administration: institutions, departments, accounts. Every route asks the
// decision point for kManageAccounts on the institution concerned, so an
// institution admin manages their own institution only; then the roles
// concerned must be ones the caller's roles may assign (policy `assigns`).
// The answers per route are the authorisation table of docs/api.md.
#include <sodium.h>

#include <algorithm>

#include "api/http_internal.h"
#include "api/json_input.h"
#include "common/ids.h"
#include "ledger/ledger.h"

namespace medvault::api::internal {

nlohmann::json AccountJson(const auth::Account& a);

namespace {

using nlohmann::json;
using policy::Action;

policy::Resource InstitutionResource(const std::string& institution_id) {
  policy::Resource r;
  r.institution_id = institution_id;
  return r;
}

json CreatedJson(const auth::CreatedAccount& c) {
  json j = AccountJson(c.account);
  if (!c.totp_secret_base32.empty()) {
    // Shown once, to the admin enrolling the person.
    j["totp_secret"] = c.totp_secret_base32;
    j["otpauth_uri"] = c.otpauth_uri;
  }
  return j;
}

// Personal accounts (patients, family proxies) belong to the person, not to
// an institution: the institution that registered them (their home) governs
// their administration, and their credentials are replaced only through the
// two-person recovery.
bool IsPersonalRole(std::string_view r) { return r == "patient" || r == "family-proxy"; }

bool PersonalRolesOnly(const std::vector<std::string>& roles) {
  return !roles.empty() && std::all_of(roles.begin(), roles.end(),
                                       [](const std::string& r) { return IsPersonalRole(r); });
}

bool AnyPersonalRole(const std::vector<std::string>& roles) {
  return std::any_of(roles.begin(), roles.end(),
                     [](const std::string& r) { return IsPersonalRole(r); });
}

// The institution whose administrators manage the account.
std::string GoverningInstitution(const auth::Account& a) {
  return PersonalRolesOnly(a.roles) ? a.home_institution_id : a.institution_id;
}

// A refusal of an administrative act the decision point permitted in
// general: recorded as a deny with its reason code, answered 403.
Status Refuse(Call& call, std::string_view action, std::string_view subject, std::string_view code,
              std::string_view sentence, std::string_view patient_id = {}) {
  // An attempt on a patient's own account shows in their access history.
  call.Record(action, ledger::kEffectDeny, "account", {{"subject", std::string(subject)}}, "",
              {std::string(code)}, patient_id);
  return Status::PermissionDenied(std::string(code) + ": " + std::string(sentence));
}

// "Who could this make more powerful than they are?" Nobody gives, takes or
// manages a role their own roles may not assign (`assigns` in the policy).
Status CheckAssignable(Call& call, std::string_view action, std::string_view subject,
                       const std::vector<std::string>& roles, std::string_view patient_id = {}) {
  const policy::Policy& policy = call.services.decisions->policy();
  const policy::RoleSet allowed = policy.AssignableBy(call.subject.roles);
  const policy::RoleSet own = policy.Expand(call.subject.roles);
  for (const std::string& r : roles) {
    auto id = policy.RoleIdOf(r);
    if (!id.ok()) {
      return Status::InvalidArgument("unknown role '" + r.substr(0, 64) + "'");
    }
    const policy::RoleSet bit = policy::RoleSet{1} << *id;
    if ((allowed & bit) == 0) {
      return Refuse(call, action, subject, "role-not-assignable",
                    "your roles may not assign the role '" + r + "'", patient_id);
    }
    // A peer of one's own role is made (or unmade) from above only: an
    // institution admin who could mint admins could also complete a
    // two-person recovery alone with a puppet.
    if ((own & bit) != 0 && !call.subject.institution_id.empty()) {
      return Refuse(call, action, subject, "peer-role",
                    "the role '" + r +
                        "' is one of your own: only an administrator bound to no institution "
                        "assigns it",
                    patient_id);
    }
  }
  return Status::Ok();
}

// Loads the target account and decides on the institution that governs it;
// then requires that every role it holds is one the caller may assign (an
// admin does not manage an account more powerful than what it may make).
Result<auth::Account> TargetAccount(Call& call, std::string_view action) {
  const std::string id = call.req.matches[1].str();
  auto account = call.services.accounts->GetAccount(id);
  // Decide before revealing whether the account exists. An unknown id is
  // decided as an account of no institution: a bound admin is refused as
  // for another institution's account (no 404 vs 403 telling which ids
  // exist elsewhere); a platform admin learns that it is absent.
  MV_RETURN_IF_ERROR(call.Decide(
      Action::kManageAccounts,
      InstitutionResource(account.ok() ? GoverningInstitution(*account) : std::string())));
  MV_RETURN_IF_ERROR(account.status());
  if (account->account_id != call.account_id()) {
    MV_RETURN_IF_ERROR(
        CheckAssignable(call, action, account->account_id, account->roles, account->patient_id));
  }
  return account;
}

// An account that is a patient's record is a way into that record: an
// admin links one only for a patient its institution cares for (an active
// treating relationship of one of its clinicians). Unknown, erased and
// untied patients get one answer, so the route tells nothing about records
// elsewhere (nor whether they already have an account).
Status CheckPatientTie(Call& call, const std::string& patient_id) {
  bool tied = false;
  if (IsValidRandomId(patient_id)) {
    auto p = call.services.records->GetPatient(patient_id);
    if (p.ok() && !p->erased) {
      for (const auto& rel : call.services.access->data().RelationshipsOf(patient_id)) {
        if (rel.ended_at_ms != 0 && rel.ended_at_ms <= call.context.now_ms) {
          continue;
        }
        auto clinician = call.services.accounts->GetAccount(rel.clinician_account_id);
        if (clinician.ok() && !clinician->institution_id.empty() &&
            clinician->institution_id == call.subject.institution_id) {
          tied = true;
          break;
        }
      }
    }
  }
  if (!tied) {
    return Refuse(call, "account.create", "", "no-patient-tie",
                  "patient_id is not a patient your institution treats");
  }
  return Status::Ok();
}

json RecoveryJson(const auth::Recovery& r) {
  return {{"recovery_id", r.recovery_id},
          {"account_id", r.account_id},
          {"requested_by", r.requested_by},
          {"reason", r.reason},
          {"requested_at", FormatRfc3339Millis(r.requested_at_ms)},
          {"not_before", FormatRfc3339Millis(r.not_before_ms)}};
}

}  // namespace

void RegisterAdminRoutes(RouteTable& table) {
  table.RouteWithBody(
      "POST", "/api/v1/institutions", "/api/v1/institutions", RouteAccess::kData,
      [](Call& call, const std::string& body) -> Status {
        // Creating an institution is a platform act: an admin bound to
        // no institution (a bound one is refused: other-institution).
        MV_RETURN_IF_ERROR(call.Decide(Action::kManageAccounts, InstitutionResource("")));
        MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body));
        MV_RETURN_IF_ERROR(CheckObjectFields(j, {"name"}, {"name"}));
        MV_ASSIGN_OR_RETURN(std::string name, GetStringField(j, "name", true, 200));
        MV_ASSIGN_OR_RETURN(auth::Institution inst,
                            call.services.accounts->CreateInstitution(name));
        call.Json(201, json{{"institution_id", inst.institution_id}, {"name", inst.name}});
        return Status::Ok();
      });
  table.Route("GET", "/api/v1/institutions", "/api/v1/institutions", RouteAccess::kData,
              [](Call& call) -> Status {
                MV_RETURN_IF_ERROR(CheckQuery(call.req, {}));
                MV_RETURN_IF_ERROR(
                    call.Decide(Action::kManageAccounts,
                                InstitutionResource(std::string(call.subject.institution_id))));
                MV_ASSIGN_OR_RETURN(auto all, call.services.accounts->ListInstitutions());
                json arr = json::array();
                for (const auto& i : all) {
                  if (call.subject.institution_id.empty() ||
                      i.institution_id == call.subject.institution_id) {
                    arr.push_back({{"institution_id", i.institution_id}, {"name", i.name}});
                  }
                }
                call.Json(200, json{{"institutions", arr}});
                return Status::Ok();
              });
  const std::string inst = "/api/v1/institutions/" + std::string(kIdRe);
  table.RouteWithBody(
      "POST", inst + "/departments", "/api/v1/institutions/{id}/departments", RouteAccess::kData,
      [](Call& call, const std::string& body) -> Status {
        const std::string id = call.req.matches[1].str();
        MV_RETURN_IF_ERROR(call.Decide(Action::kManageAccounts, InstitutionResource(id)));
        MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body));
        MV_RETURN_IF_ERROR(CheckObjectFields(j, {"name"}, {"name"}));
        MV_ASSIGN_OR_RETURN(std::string name, GetStringField(j, "name", true, 200));
        MV_ASSIGN_OR_RETURN(auth::Department d, call.services.accounts->CreateDepartment(id, name));
        call.Json(201, json{{"department_id", d.department_id},
                            {"institution_id", d.institution_id},
                            {"name", d.name}});
        return Status::Ok();
      });
  table.Route("GET", inst + "/departments", "/api/v1/institutions/{id}/departments",
              RouteAccess::kData, [](Call& call) -> Status {
                MV_RETURN_IF_ERROR(CheckQuery(call.req, {}));
                const std::string id = call.req.matches[1].str();
                MV_RETURN_IF_ERROR(call.Decide(Action::kManageAccounts, InstitutionResource(id)));
                MV_ASSIGN_OR_RETURN(auto all, call.services.accounts->ListDepartments(id));
                json arr = json::array();
                for (const auto& d : all) {
                  arr.push_back({{"department_id", d.department_id}, {"name", d.name}});
                }
                call.Json(200, json{{"departments", arr}});
                return Status::Ok();
              });

  table.RouteWithBody(
      "POST", "/api/v1/accounts", "/api/v1/accounts", RouteAccess::kData,
      [](Call& call, const std::string& body) -> Status {
        // Decide first, on the institution the new account would join.
        auto parsed = ParseJsonBody(body);
        // A staff account joins the institution named, else the admin's
        // own (only an admin bound to none makes platform accounts); a
        // personal one (patient, proxy) belongs to none and is registered
        // as an act of the admin's institution, which becomes its home.
        std::string target;
        std::vector<std::string> requested_roles;
        if (parsed.ok() && parsed->is_object()) {
          if (auto it = parsed->find("institution_id"); it != parsed->end() && it->is_string()) {
            target = it->get<std::string>();
          }
          if (auto it = parsed->find("roles"); it != parsed->end() && it->is_array()) {
            for (const json& r : *it) {
              requested_roles.push_back(r.is_string() ? r.get<std::string>() : "");
            }
          }
        }
        const bool personal = PersonalRolesOnly(requested_roles);
        if (target.empty() || personal) {
          target = std::string(call.subject.institution_id);
        }
        MV_RETURN_IF_ERROR(call.Decide(Action::kManageAccounts, InstitutionResource(target)));
        MV_RETURN_IF_ERROR(parsed.status());
        const json& j = *parsed;
        MV_RETURN_IF_ERROR(
            CheckObjectFields(j,
                              {"username", "display_name", "password", "roles", "institution_id",
                               "department_id", "patient_id", "enroll_totp"},
                              {"username", "display_name", "password", "roles"}));
        auth::NewAccount n;
        MV_ASSIGN_OR_RETURN(n.institution_id, GetStringField(j, "institution_id", false, 32));
        MV_ASSIGN_OR_RETURN(n.username, GetStringField(j, "username", true, 64));
        MV_ASSIGN_OR_RETURN(n.display_name, GetStringField(j, "display_name", true, 200));
        MV_ASSIGN_OR_RETURN(n.password, GetStringField(j, "password", true, 1024));
        MV_ASSIGN_OR_RETURN(n.roles, GetStringArrayField(j, "roles", 16, 64));
        MV_ASSIGN_OR_RETURN(n.department_id, GetStringField(j, "department_id", false, 32));
        MV_ASSIGN_OR_RETURN(n.patient_id, GetStringField(j, "patient_id", false, 32));
        if (j.contains("enroll_totp")) {
          if (!j["enroll_totp"].is_boolean()) {
            return Status::InvalidArgument("field 'enroll_totp' must be a boolean");
          }
          n.enroll_totp = j["enroll_totp"].get<bool>();
        }
        if (personal) {
          if (!n.institution_id.empty() || !n.department_id.empty()) {
            return Status::InvalidArgument(
                "a personal account (patient, family-proxy) belongs to no institution or "
                "department");
          }
          n.home_institution_id = target;
        } else {
          if (AnyPersonalRole(n.roles)) {
            return Status::InvalidArgument(
                "the roles patient and family-proxy cannot be combined with staff roles");
          }
          if (!n.patient_id.empty()) {
            return Status::InvalidArgument("only a patient account is a patient's record");
          }
          n.institution_id = target;
        }
        if (!n.patient_id.empty() &&
            std::find(n.roles.begin(), n.roles.end(), "patient") == n.roles.end()) {
          return Status::InvalidArgument("patient_id needs the role patient");
        }
        MV_RETURN_IF_ERROR(CheckAssignable(call, "account.create", "", n.roles));
        if (!n.patient_id.empty()) {
          MV_RETURN_IF_ERROR(CheckPatientTie(call, n.patient_id));
        }
        auto created = call.services.accounts->CreateAccount(n);
        sodium_memzero(n.password.data(), n.password.size());
        MV_RETURN_IF_ERROR(created.status());
        call.res.set_header("Location", "/api/v1/accounts/" + created->account.account_id);
        call.Json(201, CreatedJson(*created));
        return Status::Ok();
      });
  table.Route(
      "GET", "/api/v1/accounts", "/api/v1/accounts", RouteAccess::kData, [](Call& call) -> Status {
        MV_RETURN_IF_ERROR(CheckQuery(call.req, {"institution"}));
        std::string institution = call.req.has_param("institution")
                                      ? call.req.get_param_value("institution")
                                      : std::string(call.subject.institution_id);
        MV_RETURN_IF_ERROR(call.Decide(Action::kManageAccounts, InstitutionResource(institution)));
        MV_ASSIGN_OR_RETURN(auto all, call.services.accounts->ListAccounts(institution));
        json arr = json::array();
        for (const auto& a : all) {
          arr.push_back(AccountJson(a));
        }
        call.Json(200, json{{"accounts", arr}});
        return Status::Ok();
      });
  const std::string acct = "/api/v1/accounts/" + std::string(kIdRe);
  table.Route("GET", acct, "/api/v1/accounts/{id}", RouteAccess::kData, [](Call& call) -> Status {
    MV_RETURN_IF_ERROR(CheckQuery(call.req, {}));
    MV_ASSIGN_OR_RETURN(auth::Account a, TargetAccount(call, "account.read"));
    call.Json(200, AccountJson(a));
    return Status::Ok();
  });
  table.RouteWithBody(
      "PUT", acct + "/roles", "/api/v1/accounts/{id}/roles", RouteAccess::kData,
      [](Call& call, const std::string& body) -> Status {
        MV_ASSIGN_OR_RETURN(auth::Account a, TargetAccount(call, "account.roles"));
        if (a.account_id == call.account_id()) {
          return Refuse(call, "account.roles", a.account_id, "own-roles",
                        "no one changes their own roles");
        }
        if (PersonalRolesOnly(a.roles)) {
          return Refuse(call, "account.roles", a.account_id, "personal-account",
                        "a personal account's roles cannot be changed; make a staff account",
                        a.patient_id);
        }
        MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body));
        MV_RETURN_IF_ERROR(CheckObjectFields(j, {"roles"}, {"roles"}));
        MV_ASSIGN_OR_RETURN(auto roles, GetStringArrayField(j, "roles", 16, 64));
        if (AnyPersonalRole(roles)) {
          return Status::InvalidArgument(
              "the roles patient and family-proxy cannot be given to a staff account");
        }
        // Given and taken alike: removing a role one may not assign (an
        // oversight role, say) is as much beyond one's power as adding it.
        std::vector<std::string> changed;
        for (const std::string& r : roles) {
          if (std::find(a.roles.begin(), a.roles.end(), r) == a.roles.end()) {
            changed.push_back(r);
          }
        }
        for (const std::string& r : a.roles) {
          if (std::find(roles.begin(), roles.end(), r) == roles.end()) {
            changed.push_back(r);
          }
        }
        MV_RETURN_IF_ERROR(CheckAssignable(call, "account.roles", a.account_id, changed));
        MV_RETURN_IF_ERROR(call.services.accounts->SetRoles(a.account_id, roles));
        call.Json(200, json{{"account_id", a.account_id}, {"roles", roles}});
        return Status::Ok();
      });
  table.RouteWithBody(
      "POST", acct + "/(disable|enable|revoke-sessions)",
      "/api/v1/accounts/{id}/{disable|enable|revoke-sessions}", RouteAccess::kData,
      [](Call& call, const std::string& body) -> Status {
        const std::string op = call.req.matches[2].str();
        MV_ASSIGN_OR_RETURN(auth::Account a, TargetAccount(call, "account." + op));
        MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body.empty() ? "{}" : body));
        MV_RETURN_IF_ERROR(CheckObjectFields(j, {}, {}));
        if (op == "revoke-sessions") {
          MV_RETURN_IF_ERROR(call.services.accounts->RevokeAllSessions(a.account_id));
        } else {
          if (a.account_id == call.account_id()) {
            return Refuse(call, "account." + op, a.account_id, "own-account",
                          "no one disables or enables their own account");
          }
          MV_RETURN_IF_ERROR(call.services.accounts->SetDisabled(a.account_id, op == "disable"));
        }
        call.Json(200, json{{"account_id", a.account_id}, {"done", op}});
        return Status::Ok();
      });

  // Account recovery: the only way the API replaces another person's
  // credentials. One administrator of the governing institution opens it with
  // a reason; the person is notified (and a patient sees it in their access
  // history) and may cancel; a second administrator completes it (for a
  // personal account, only after the waiting period) and receives a
  // temporary password and a new second factor, once.
  table.RouteWithBody(
      "POST", acct + "/recovery", "/api/v1/accounts/{id}/recovery", RouteAccess::kData,
      [](Call& call, const std::string& body) -> Status {
        MV_ASSIGN_OR_RETURN(auth::Account a, TargetAccount(call, "account.recovery-request"));
        if (a.account_id == call.account_id()) {
          return Refuse(call, "account.recovery-request", a.account_id, "own-account",
                        "an account cannot recover itself: change the password instead");
        }
        MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body));
        MV_RETURN_IF_ERROR(CheckObjectFields(j, {"reason"}, {"reason"}));
        MV_ASSIGN_OR_RETURN(std::string reason, GetStringField(j, "reason", true, 500));
        MV_ASSIGN_OR_RETURN(auth::Recovery r,
                            call.services.accounts->RequestRecovery(
                                a.account_id, call.account_id(), GoverningInstitution(a), reason));
        call.Json(201, RecoveryJson(r));
        return Status::Ok();
      });
  table.Route("GET", acct + "/recovery", "/api/v1/accounts/{id}/recovery", RouteAccess::kData,
              [](Call& call) -> Status {
                MV_RETURN_IF_ERROR(CheckQuery(call.req, {}));
                MV_ASSIGN_OR_RETURN(auth::Account a, TargetAccount(call, "account.recovery-read"));
                MV_ASSIGN_OR_RETURN(auto r, call.services.accounts->GetRecovery(a.account_id));
                call.Json(200, r.has_value() ? json{{"open", true}, {"recovery", RecoveryJson(*r)}}
                                             : json{{"open", false}});
                return Status::Ok();
              });
  table.Route(
      "DELETE", acct + "/recovery", "/api/v1/accounts/{id}/recovery", RouteAccess::kData,
      [](Call& call) -> Status {
        MV_RETURN_IF_ERROR(CheckQuery(call.req, {}));
        MV_ASSIGN_OR_RETURN(auth::Account a, TargetAccount(call, "account.recovery-cancel"));
        MV_RETURN_IF_ERROR(call.services.accounts->CancelRecovery(a.account_id, call.account_id()));
        call.Json(200, json{{"account_id", a.account_id}, {"cancelled", true}});
        return Status::Ok();
      });
  table.RouteWithBody(
      "POST", acct + "/recovery/approve", "/api/v1/accounts/{id}/recovery/approve",
      RouteAccess::kData, [](Call& call, const std::string& body) -> Status {
        MV_ASSIGN_OR_RETURN(auth::Account a, TargetAccount(call, "account.recovery-complete"));
        MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body.empty() ? "{}" : body));
        MV_RETURN_IF_ERROR(CheckObjectFields(j, {}, {}));
        // The request was opened for the institution that governs the
        // account; the approver must belong to the same one (TargetAccount
        // decided on it).
        MV_ASSIGN_OR_RETURN(auto open, call.services.accounts->GetRecovery(a.account_id));
        if (open.has_value() && open->institution_id != GoverningInstitution(a)) {
          return Refuse(call, "account.recovery-complete", a.account_id, "other-institution",
                        "the recovery was opened for another institution");
        }
        MV_ASSIGN_OR_RETURN(auth::RecoveredCredentials c, call.services.accounts->ApproveRecovery(
                                                              a.account_id, call.account_id()));
        json out{{"account_id", c.account_id}, {"temporary_password", c.temporary_password}};
        if (!c.totp_secret_base32.empty()) {
          out["totp_secret"] = c.totp_secret_base32;
          out["otpauth_uri"] = c.otpauth_uri;
        }
        sodium_memzero(c.temporary_password.data(), c.temporary_password.size());
        call.Json(200, out);
        return Status::Ok();
      });
}

}  // namespace medvault::api::internal
