// Sign-in, tokens and the signed-in account's own view.
#include <sodium.h>

#include "api/http_internal.h"
#include "api/json_input.h"
#include "common/ids.h"

namespace medvault::api::internal {
namespace {

using nlohmann::json;

json TokensJson(const auth::TokenPair& t) {
  return {{"token_type", "Bearer"},
          {"access_token", t.access_token},
          {"access_expires_at", FormatRfc3339Millis(t.access_expires_at_ms)},
          {"refresh_token", t.refresh_token},
          {"refresh_expires_at", FormatRfc3339Millis(t.refresh_expires_at_ms)},
          {"session_id", t.session_id}};
}

}  // namespace

json AccountJson(const auth::Account& a) {
  return {{"account_id", a.account_id},
          {"username", a.username},
          {"display_name", a.display_name},
          {"roles", a.roles},
          {"institution_id", a.institution_id},
          {"department_id", a.department_id},
          {"patient_id", a.patient_id},
          {"home_institution_id", a.home_institution_id},
          {"totp_enabled", a.totp_enabled},
          {"disabled", a.disabled},
          {"created_at", FormatRfc3339Millis(a.created_at_ms)}};
}

void RegisterAuthRoutes(RouteTable& table) {
  table.RouteWithBody(
      "POST", "/api/v1/auth/login", "/api/v1/auth/login", RouteAccess::kPublic,
      [](Call& call, const std::string& body) -> Status {
        MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body));
        MV_RETURN_IF_ERROR(CheckObjectFields(j, {"username", "password", "totp_code", "audience"},
                                             {"username", "password"}));
        MV_ASSIGN_OR_RETURN(std::string username, GetStringField(j, "username", true, 64));
        MV_ASSIGN_OR_RETURN(std::string password, GetStringField(j, "password", true, 1024));
        MV_ASSIGN_OR_RETURN(std::string code, GetStringField(j, "totp_code", false, 10));
        MV_ASSIGN_OR_RETURN(std::string audience, GetStringField(j, "audience", false, 64));
        auth::LoginRequest req;
        req.username = username;
        req.password = password;
        req.totp_code = code;
        req.audience = audience.empty() ? std::string_view("medvault-api") : audience;
        auto tokens = call.services.accounts->Login(req);
        sodium_memzero(password.data(), password.size());
        if (!tokens.ok()) {
          // Recorded without the username: the ledger names no one who
          // failed to sign in, it counts the attempts.
          const StatusCode failure = tokens.status().code();
          call.Record(ledger::kActionAuthLogin, ledger::kEffectDeny, "session", {}, "anonymous",
                      {failure == StatusCode::kResourceExhausted  ? "throttled"
                       : failure == StatusCode::kPermissionDenied ? "account-disabled"
                                                                  : "invalid-credentials"});
        }
        if (!tokens.ok()) {
          if (tokens.status().code() == StatusCode::kResourceExhausted) {
            // Throttled or locked: 429 rather than 413.
            call.res.status = 429;
            call.res.set_header("Retry-After", "60");
            call.res.set_content(
                ErrorBody(tokens.status(), call.res.get_header_value("X-Request-Id")),
                "application/json");
            return Status::Ok();
          }
          return tokens.status();
        }
        auto session = call.services.accounts->Authenticate(tokens->access_token, req.audience);
        call.Record(ledger::kActionAuthLogin, ledger::kEffectDone, "session",
                    {{"session", tokens->session_id}},
                    session.ok() ? std::string_view(session->account.account_id)
                                 : std::string_view("unknown"));
        call.Json(200, TokensJson(*tokens));
        return Status::Ok();
      });

  table.RouteWithBody(
      "POST", "/api/v1/auth/refresh", "/api/v1/auth/refresh", RouteAccess::kPublic,
      [](Call& call, const std::string& body) -> Status {
        MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body));
        MV_RETURN_IF_ERROR(CheckObjectFields(j, {"refresh_token"}, {"refresh_token"}));
        MV_ASSIGN_OR_RETURN(std::string token, GetStringField(j, "refresh_token", true, 256));
        MV_ASSIGN_OR_RETURN(auth::TokenPair t, call.services.accounts->Refresh(token));
        call.Json(200, TokensJson(t));
        return Status::Ok();
      });

  table.RouteWithBody("POST", "/api/v1/auth/logout", "/api/v1/auth/logout", RouteAccess::kSelf,
                      [](Call& call, const std::string& body) -> Status {
                        MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body.empty() ? "{}" : body));
                        MV_RETURN_IF_ERROR(CheckObjectFields(j, {}, {}));
                        const std::string h = call.req.get_header_value("Authorization");
                        MV_RETURN_IF_ERROR(call.services.accounts->Logout(h.substr(7)));
                        call.Record(ledger::kActionAuthLogout, ledger::kEffectDone, "session",
                                    {{"session", call.session->session_id}});
                        call.Json(200, json{{"logged_out", true}});
                        return Status::Ok();
                      });

  table.Route("GET", "/api/v1/me", "/api/v1/me", RouteAccess::kSelf, [](Call& call) -> Status {
    MV_RETURN_IF_ERROR(CheckQuery(call.req, {}));
    const int64_t now = call.context.now_ms;
    const std::string& me = call.account_id();
    json out = AccountJson(call.session->account);
    out["mfa_verified"] = call.session->mfa_verified;
    out["session_expires_at"] = FormatRfc3339Millis(call.session->expires_at_ms);
    out["treating"] = call.services.access->data().PatientsTreatedBy(me, now);
    out["proxy_for"] = call.services.access->data().PatientsProxiedBy(me, now);
    call.Json(200, out);
    return Status::Ok();
  });

  table.RouteWithBody(
      "POST", "/api/v1/me/password", "/api/v1/me/password", RouteAccess::kSelf,
      [](Call& call, const std::string& body) -> Status {
        MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body));
        MV_RETURN_IF_ERROR(CheckObjectFields(j, {"old_password", "new_password"},
                                             {"old_password", "new_password"}));
        MV_ASSIGN_OR_RETURN(std::string old_pw, GetStringField(j, "old_password", true, 1024));
        MV_ASSIGN_OR_RETURN(std::string new_pw, GetStringField(j, "new_password", true, 1024));
        Status st = call.services.accounts->ChangePassword(call.account_id(), old_pw, new_pw);
        sodium_memzero(old_pw.data(), old_pw.size());
        sodium_memzero(new_pw.data(), new_pw.size());
        MV_RETURN_IF_ERROR(st);
        call.Json(200, json{{"changed", true}});
        return Status::Ok();
      });

  // What the person is told: an open recovery of their own account (they
  // may cancel it below), and for a patient the emergency accesses to their
  // record.
  table.Route("GET", "/api/v1/me/notifications", "/api/v1/me/notifications", RouteAccess::kSelf,
              [](Call& call) -> Status {
                MV_RETURN_IF_ERROR(CheckQuery(call.req, {}));
                json arr = json::array();
                MV_ASSIGN_OR_RETURN(auto recovery,
                                    call.services.accounts->GetRecovery(call.account_id()));
                if (recovery.has_value()) {
                  arr.push_back({{"kind", "account-recovery"},
                                 {"recovery_id", recovery->recovery_id},
                                 {"account_id", recovery->requested_by},
                                 {"reason", recovery->reason},
                                 {"at", FormatRfc3339Millis(recovery->requested_at_ms)},
                                 {"until", FormatRfc3339Millis(recovery->not_before_ms)}});
                }
                const std::string& patient = call.session->account.patient_id;
                if (!patient.empty()) {
                  for (const auto& g : call.services.access->data().BreakGlassOf(patient)) {
                    arr.push_back({{"kind", "break-glass"},
                                   {"grant_id", g.grant_id},
                                   {"account_id", g.account_id},
                                   {"reason", g.reason},
                                   {"at", FormatRfc3339Millis(g.started_at_ms)},
                                   {"until", FormatRfc3339Millis(g.expires_at_ms)}});
                  }
                }
                call.Json(200, json{{"notifications", arr}});
                return Status::Ok();
              });

  // The person stops a recovery of their own account they did not ask for.
  table.Route("DELETE", "/api/v1/me/recovery", "/api/v1/me/recovery", RouteAccess::kSelf,
              [](Call& call) -> Status {
                MV_RETURN_IF_ERROR(CheckQuery(call.req, {}));
                MV_RETURN_IF_ERROR(
                    call.services.accounts->CancelRecovery(call.account_id(), call.account_id()));
                call.Json(200, json{{"cancelled", true}});
                return Status::Ok();
              });
}

}  // namespace medvault::api::internal
