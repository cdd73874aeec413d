// Administration: institutions, departments, accounts. Every route asks the
// decision point for kManageAccounts on the institution concerned, so an
// institution admin manages their own institution only.
#include <sodium.h>

#include <algorithm>

#include "api/http_internal.h"
#include "api/json_input.h"
#include "common/ids.h"

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

// Personal accounts (patients, family proxies) belong to no institution;
// an admin manages them as an act of their own institution.
bool PersonalRolesOnly(const std::vector<std::string>& roles) {
  return !roles.empty() && std::all_of(roles.begin(), roles.end(), [](const std::string& r) {
    return r == "patient" || r == "family-proxy";
  });
}

// Loads the target account and decides on its institution.
Result<auth::Account> TargetAccount(Call& call) {
  const std::string id = call.req.matches[1].str();
  auto account = call.services.accounts->GetAccount(id);
  // Decide before revealing whether the account exists.
  const bool own = !account.ok() || PersonalRolesOnly(account->roles);
  MV_RETURN_IF_ERROR(call.Decide(Action::kManageAccounts,
                                 InstitutionResource(own ? std::string(call.subject.institution_id)
                                                         : account->institution_id)));
  return account;
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
        // as an act of the admin's institution.
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
        if (target.empty()) {
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
        if (n.institution_id.empty() && !personal) {
          n.institution_id = target;
        }
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
        if (!n.patient_id.empty()) {
          auto p = call.services.records->GetPatient(n.patient_id);
          if (!p.ok() || p->erased) {
            return Status::InvalidArgument("patient_id is not a known patient");
          }
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
    MV_ASSIGN_OR_RETURN(auth::Account a, TargetAccount(call));
    call.Json(200, AccountJson(a));
    return Status::Ok();
  });
  table.RouteWithBody("PUT", acct + "/roles", "/api/v1/accounts/{id}/roles", RouteAccess::kData,
                      [](Call& call, const std::string& body) -> Status {
                        MV_ASSIGN_OR_RETURN(auth::Account a, TargetAccount(call));
                        MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body));
                        MV_RETURN_IF_ERROR(CheckObjectFields(j, {"roles"}, {"roles"}));
                        MV_ASSIGN_OR_RETURN(auto roles, GetStringArrayField(j, "roles", 16, 64));
                        MV_RETURN_IF_ERROR(call.services.accounts->SetRoles(a.account_id, roles));
                        call.Json(200, json{{"account_id", a.account_id}, {"roles", roles}});
                        return Status::Ok();
                      });
  table.RouteWithBody(
      "POST", acct + "/(disable|enable|revoke-sessions|reset-totp)",
      "/api/v1/accounts/{id}/{disable|enable|revoke-sessions|reset-totp}", RouteAccess::kData,
      [](Call& call, const std::string& body) -> Status {
        MV_ASSIGN_OR_RETURN(auth::Account a, TargetAccount(call));
        MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body.empty() ? "{}" : body));
        MV_RETURN_IF_ERROR(CheckObjectFields(j, {}, {}));
        const std::string op = call.req.matches[2].str();
        if (op == "reset-totp") {
          MV_ASSIGN_OR_RETURN(auth::CreatedAccount c,
                              call.services.accounts->ResetTotp(a.account_id));
          call.Json(200, CreatedJson(c));
          return Status::Ok();
        }
        if (op == "revoke-sessions") {
          MV_RETURN_IF_ERROR(call.services.accounts->RevokeAllSessions(a.account_id));
        } else {
          MV_RETURN_IF_ERROR(call.services.accounts->SetDisabled(a.account_id, op == "disable"));
        }
        call.Json(200, json{{"account_id", a.account_id}, {"done", op}});
        return Status::Ok();
      });
  table.RouteWithBody(
      "POST", acct + "/reset-password", "/api/v1/accounts/{id}/reset-password", RouteAccess::kData,
      [](Call& call, const std::string& body) -> Status {
        MV_ASSIGN_OR_RETURN(auth::Account a, TargetAccount(call));
        MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body));
        MV_RETURN_IF_ERROR(CheckObjectFields(j, {"password"}, {"password"}));
        MV_ASSIGN_OR_RETURN(std::string pw, GetStringField(j, "password", true, 1024));
        Status st = call.services.accounts->ResetPassword(a.account_id, pw);
        sodium_memzero(pw.data(), pw.size());
        MV_RETURN_IF_ERROR(st);
        call.Json(200, json{{"account_id", a.account_id}, {"done", "reset-password"}});
        return Status::Ok();
      });
}

}  // namespace medvault::api::internal
