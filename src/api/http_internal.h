// Internal to src/api: what route groups share with the server core.
//
// Every route is registered with an access class:
//  - kPublic: no credential (health checks, login, refresh);
//  - kSelf: an authenticated account acting on itself (me, logout, password);
//  - kData: everything else. A kData handler must ask the decision point
//    (Call::Decide) before it answers; the server turns a successful answer
//    given without any decision into a 500 (fail closed) and DataRoutes()
//    lists these routes for the test that enumerates them.
#pragma once

#include <array>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "access/access.h"
#include "api/api.h"
#include "api/http_transport.h"
#include "auth/auth.h"
#include "common/status.h"
#include "enforce/enforce.h"
#include "ledger/ledger.h"
#include "policy/policy.h"

namespace medvault::api::internal {

enum class RouteAccess { kPublic, kSelf, kData };

// One request being handled, on its worker thread: the HTTP side (request,
// response, session) around the request's enforcement Scope (src/enforce),
// which decides, records and applies; the server commits the Scope's ledger
// entries before any answer leaves.
class Call {
 public:
  Call(const Request& req, Response& res, const Services& services, const enforce::Deps& deps,
       enforce::RequestContext ctx, const auth::AuthenticatedSession* session);

  const Request& req;
  Response& res;
  const Services& services;
  // Null on kPublic routes.
  const auth::AuthenticatedSession* session;

 private:
  enforce::Scope scope_;  // before the references below, which point into it

 public:
  const policy::Subject& subject;
  policy::Context& context;

  enforce::Scope& scope() { return scope_; }

  // Asks the decision point (through the Scope). OK on permit (the decision
  // is kept for the caller: obligations); PermissionDenied
  // "reason-code: sentence" on deny.
  Status Decide(policy::Action action, const policy::Resource& resource) {
    return scope_.Decide(action, resource);
  }
  Status DecideBreakGlass(std::string_view patient_id, std::string_view reason) {
    return scope_.DecideBreakGlass(patient_id, reason);
  }
  // Decides without failing: for filtering listings. `decision`, when not
  // null, receives the decision (its obligations).
  bool Permits(policy::Action action, const policy::Resource& resource,
               policy::Decision* decision = nullptr) {
    return scope_.Permits(action, resource, decision);
  }
  const policy::Decision& last_decision() const { return scope_.last_decision(); }
  int decisions() const { return scope_.decisions(); }

  const std::string& account_id() const;

  void Json(int status, const nlohmann::json& body);

  // Records an action of this request (account changes, sign-ins) with the
  // decisions. `actor` "" = the signed-in account; `patient_id` names the
  // record concerned (by its pseudonym in the ledger).
  void Record(std::string_view action, std::string_view effect, std::string_view kind,
              std::map<std::string, std::string> details = {}, std::string_view actor = "",
              std::vector<std::string> reasons = {}, std::string_view patient_id = {}) {
    scope_.RecordAction(action, effect, kind, std::move(details), actor, std::move(reasons),
                        patient_id);
  }
};

using Handler = std::function<Status(Call&)>;
using BodyHandler = std::function<Status(Call&, const std::string& body)>;

class RouteTable {
 public:
  virtual ~RouteTable() = default;
  // method: GET or DELETE.
  virtual void Route(const std::string& method, const std::string& pattern, const std::string& name,
                     RouteAccess access, Handler handler) = 0;
  // method: POST or PUT; a JSON body bounded by max_json_bytes.
  virtual void RouteWithBody(const std::string& method, const std::string& pattern,
                             const std::string& name, RouteAccess access, BodyHandler handler) = 0;
  // method: POST or PUT; a C-CDA or FHIR document (kDocumentTypes) bounded by
  // max_document_bytes. The pattern must end in "/documents" (the body limit
  // is applied before routing by that suffix).
  virtual void RouteWithDocument(const std::string& method, const std::string& pattern,
                                 const std::string& name, RouteAccess access,
                                 BodyHandler handler) = 0;
};

inline constexpr std::array<std::string_view, 5> kDocumentTypes = {
    "application/xml", "text/xml", "application/hl7-v3+xml", "application/fhir+json",
    "application/json"};

inline constexpr std::string_view kIdRe = "([0-9a-f]{32})";
// No route takes more query parameters than this (each is named in its
// CheckQuery list); more are refused before routing.
inline constexpr size_t kMaxQueryParams = 16;

// Route groups, one file each.
void RegisterAuthRoutes(RouteTable& table);    // routes_auth.cc
void RegisterAdminRoutes(RouteTable& table);   // routes_admin.cc
void RegisterAccessRoutes(RouteTable& table);  // routes_access.cc
void RegisterLedgerRoutes(RouteTable& table);  // routes_ledger.cc
// The ledger's epoch and damage (docs/ledger.md, "Damage and epochs"):
// numbers and the problem found; with `who`, also who acknowledged and why
// (for auditors, not for the public /readyz).
nlohmann::json LedgerHealthJson(ledger::SqliteLedger& ledger, bool who);
void RegisterExchangeRoutes(RouteTable& table);  // routes_exchange.cc

// The portal's static files (portal.cc).
struct PortalFile {
  std::string url;  // "/index.html", "/views/patient.js"
  std::string content_type;
  std::string body;
};
// Every servable file below `dir` (known extensions, safe names, no hidden
// or linked files), read into memory. NotFound when `dir` does not exist;
// ResourceExhausted beyond 500 files or 32 MiB.
Result<std::vector<PortalFile>> LoadPortalFiles(const std::filesystem::path& dir);
// `path` as a regular expression that matches exactly it.
std::string LiteralRegex(std::string_view path);
inline constexpr std::string_view kPortalContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

// The body of GET /api/v1/segment-types, read from the vocabulary
// (vocab/vocab.h): the top-level segments, the categories, the measurement
// schemas (fields with plausible ranges, units with their UCUM codes, LOINC)
// and the content kinds.
nlohmann::json SegmentTypesJson();

// Shared helpers (http_server.cc).
Status CheckQuery(const Request& req, std::initializer_list<std::string_view> allowed);
// A query parameter that is a non-negative integer (at most 19 digits);
// `fallback` when absent and not required. InvalidArgument naming it.
Result<uint64_t> UintParam(const Request& req, const std::string& name, bool required,
                           uint64_t fallback);
// RFC 3339 UTC ("2026-12-31T23:59:59Z", optional fraction) to Unix ms.
Result<int64_t> ParseTimestamp(std::string_view text, std::string_view field);
// Optional timestamp field; 0 when absent or null.
Result<int64_t> GetTimeField(const nlohmann::json& j, std::string_view field);
Result<std::vector<std::string>> GetStringArrayField(const nlohmann::json& j,
                                                     std::string_view field, size_t max_items,
                                                     size_t max_len);
// "" for 0.
std::string TimeOrEmpty(int64_t ms);
using enforce::SegmentResource;

}  // namespace medvault::api::internal
