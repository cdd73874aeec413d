#include <arpa/inet.h>
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "access/access.h"
#include "api/api.h"
#include "api/http_internal.h"
#include "api/http_transport.h"
#include "api/json_input.h"
#include "api/metrics.h"
#include "auth/auth.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/secret.h"
#include "crypto/crypto.h"
#include "engine/engine.h"
#include "policy/policy.h"
#include "vocab/vocab.h"

namespace medvault::api {

using nlohmann::json;
using store::ContentKind;

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") {
    return true;
  }
  in_addr addr{};
  const std::string h(host);
  if (inet_pton(AF_INET, h.c_str(), &addr) == 1) {
    return (ntohl(addr.s_addr) >> 24) == 127;
  }
  return false;
}

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kResourceExhausted:
      return 413;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDataLoss:
    case StatusCode::kIOError:
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

std::string ErrorBody(const Status& status, std::string_view request_id) {
  json j = {{"error",
             {{"code", std::string(StatusCodeName(status.code()))},
              {"message", status.message()},
              {"request_id", std::string(request_id)}}}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

using internal::Call;
using internal::RouteAccess;
using policy::Action;

constexpr std::string_view kPatientIdRe = internal::kIdRe;

// Per-request context kept on the handling thread: set before routing, read
// by the handlers and the access log. A request may run on two workers (its
// head, then its body): the context travels with the request
// (PerRequest) and is bound to the thread while a worker runs it.
struct RequestContext {
  std::string request_id;
  std::string route = "unmatched";
  std::chrono::steady_clock::time_point start;
  std::optional<auth::AuthenticatedSession> session;
  bool metrics_token = false;  // the scrape token was presented
  std::string decision;        // "permit reason" / "deny reason" of the last decision
};
thread_local RequestContext t_ctx;

// Binds a request's context to this thread for the scope of one worker call.
class BoundContext {
 public:
  explicit BoundContext(RequestContext& saved) : saved_(saved) { t_ctx = std::move(saved_); }
  ~BoundContext() { saved_ = std::move(t_ctx); }
  BoundContext(const BoundContext&) = delete;
  BoundContext& operator=(const BoundContext&) = delete;

 private:
  RequestContext& saved_;
};

policy::NetworkZone ZoneOf(const std::string& addr) {
  if (IsLoopbackHost(addr)) {
    return policy::NetworkZone::kLoopback;
  }
  in_addr a4{};
  if (inet_pton(AF_INET, addr.c_str(), &a4) == 1) {
    const uint32_t ip = ntohl(a4.s_addr);
    if ((ip >> 24) == 10 || (ip >> 20) == ((172u << 4) | 1u) ||
        (ip >> 16) == ((192u << 8) | 168u)) {
      return policy::NetworkZone::kInternal;
    }
    return policy::NetworkZone::kExternal;
  }
  in6_addr a6{};
  if (inet_pton(AF_INET6, addr.c_str(), &a6) == 1 && (a6.s6_addr[0] & 0xfe) == 0xfc) {
    return policy::NetworkZone::kInternal;  // fc00::/7 unique local
  }
  return policy::NetworkZone::kExternal;
}

json InfoJson(const record::SegmentVersionInfo& i) {
  return json{{"patient_id", i.patient_id},
              {"path", i.path},
              {"version", i.version},
              {"category", i.category},
              {"sensitivity", i.sensitivity},
              {"kind", vocab::ContentKindName(i.kind)},
              {"media_type", i.media_type},
              {"size", i.size},
              {"content_sha256", i.content_sha256_hex},
              {"author", i.author},
              {"created_at", FormatRfc3339Millis(i.created_at_ms)}};
}

json PatientJson(const record::PatientInfo& p) {
  json j = {{"patient_id", p.patient_id},
            {"created_at", FormatRfc3339Millis(p.created_at_ms)},
            {"erased", p.erased}};
  if (p.erased_at_ms.has_value()) {
    j["erased_at"] = FormatRfc3339Millis(*p.erased_at_ms);
  }
  if (p.demographics.has_value()) {
    const record::Demographics& d = *p.demographics;
    j["given_name"] = d.given_name;
    j["family_name"] = d.family_name;
    j["birth_date"] = d.birth_date;
    j["sex"] = d.sex;
    j["identifier"] = d.identifier;
  }
  return j;
}

}  // namespace

// ---------------------------------------------------------------------------
// Call

namespace internal {

Call::Call(const Request& request, Response& response, const Services& svc,
           const enforce::Deps& deps, enforce::RequestContext ctx,
           const auth::AuthenticatedSession* sess)
    : req(request),
      res(response),
      services(svc),
      session(sess),
      scope_(deps, std::move(ctx)),
      subject(scope_.context().subject),
      context(scope_.mutable_context()) {}

const std::string& Call::account_id() const {
  static const std::string kNone;
  return session == nullptr ? kNone : session->account.account_id;
}

void Call::Json(int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json");
}

}  // namespace internal

namespace {

class HttpServer final : public Server, public internal::RouteTable, private internal::Application {
 public:
  HttpServer(const ServerOptions& options, const Services& services)
      : options_(options),
        services_(services),
        records_(services.records),
        metadata_(services.metadata) {
    enforce_deps_.decisions = services.decisions;
    enforce_deps_.ledger = services.ledger;
    enforce_deps_.patient_ref_key = services.patient_ref_key;
  }

  ~HttpServer() override { Stop(); }

  Status Start() override {
    const bool tls = !options_.tls_cert_path.empty() || !options_.tls_key_path.empty();
    if (tls && (options_.tls_cert_path.empty() || options_.tls_key_path.empty())) {
      return Status::InvalidArgument("TLS needs both a certificate and a key path");
    }
    if (!tls && !IsLoopbackHost(options_.host)) {
      return Status::FailedPrecondition(
          "refusing to listen on non-loopback address " + options_.host +
          " without TLS: configure tls_cert and tls_key (medvault init --self-signed-cert makes a "
          "pair) or listen on 127.0.0.1");
    }
    internal::TransportOptions t;
    t.host = options_.host;
    t.port = options_.port;
    t.tls_cert_path = options_.tls_cert_path;
    t.tls_key_path = options_.tls_key_path;
    t.io_threads = options_.io_threads;
    t.worker_threads = options_.worker_threads;
    t.max_connections = static_cast<size_t>(std::max(1, options_.max_connections));
    t.max_connections_per_peer = static_cast<size_t>(options_.max_connections_per_peer);
    t.header_timeout_seconds = options_.header_timeout_seconds;
    t.body_timeout_seconds = options_.body_timeout_seconds;
    t.idle_timeout_seconds = 10;
    t.write_timeout_seconds = options_.read_timeout_seconds;
    t.keep_alive_max_requests = static_cast<size_t>(std::max(1, options_.keep_alive_max_requests));
    // Uploads hold a worker while their clients send: at most a quarter.
    t.max_streams = static_cast<size_t>(std::max(1, options_.worker_threads / 4));
    Configure();
    transport_ = internal::NewTransport(t, this);
    MV_RETURN_IF_ERROR(transport_->Start());
    const int port = transport_->port();
    bound_port_ = port;
    Log(LogLevel::kInfo, "server.listening",
        {{"host", options_.host}, {"port", port}, {"tls", tls ? "on" : "off"}});
    return Status::Ok();
  }

  void Stop() override {
    if (transport_ != nullptr) {
      transport_->Stop();
    }
  }

  void Wait() override {
    if (transport_ != nullptr) {
      transport_->Wait();
    }
  }

  int port() const override { return bound_port_; }

  std::vector<std::string> DataRoutes() const override {
    std::vector<std::string> out;
    for (const auto& e : routes_) {
      if (e->access == RouteAccess::kData) {
        out.push_back(e->method + " " + e->name);
      }
    }
    return out;
  }

 private:
  using Request = internal::Request;
  using Response = internal::Response;
  using BodyReader = internal::BodyReader;
  using Next = internal::Application::Next;

  // One route: its pattern, what it reads and who may call it.
  struct RouteEntry {
    enum class Kind { kPlain, kBody, kStream, kPortal };
    std::string method;  // GET (also HEAD), DELETE, POST, PUT
    std::regex pattern;
    std::string literal_prefix;  // the pattern's text before its first metacharacter
    // A necessary condition checked before the regex (which cost a twentieth
    // of a read's CPU when every route sharing a prefix was tried): the
    // pattern's '/'-separated pieces, literal ones kept ("" for a piece with
    // a metacharacter), up to the first piece that can match across '/'
    // (".+", ".*"); `open_tail` then, and a path needs at least as many
    // pieces, else exactly as many.
    std::vector<std::string> pieces;
    std::vector<bool> piece_literal;
    bool open_tail = false;
    std::string name;
    RouteAccess access = RouteAccess::kData;
    Kind kind = Kind::kPlain;
    internal::Handler handler;           // kPlain
    internal::BodyHandler body_handler;  // kBody
    std::vector<std::string> content_types;
    uint64_t limit = 0;
    std::function<Status(Call&, const BodyReader&)> stream_handler;  // kStream
    const internal::PortalFile* file = nullptr;                      // kPortal
  };

  // The state of one request between its worker calls.
  struct PerRequest {
    RequestContext ctx;
    const RouteEntry* route = nullptr;
  };

  void Configure() {
    Route("GET", "/healthz", "/healthz", RouteAccess::kPublic, [](Call& call) {
      call.Json(200, json{{"status", "ok"}});
      return Status::Ok();
    });
    Route("GET", "/readyz", "/readyz", RouteAccess::kPublic, [this](Call& call) {
      auto v = metadata_->SchemaVersion();
      if (!v.ok()) {
        return Status::Unavailable("metadata store not ready");
      }
      json body{{"status", "ready"}, {"schema_version", *v}};
      if (services_.ledger != nullptr) {
        // Ready (records are served) but loud when the ledger continued in a
        // new epoch after damage (docs/ledger.md, "Damage and epochs").
        body["ledger"] = internal::LedgerHealthJson(*services_.ledger, false);
      }
      call.Json(200, body);
      return Status::Ok();
    });

    Route("GET", "/metrics", "/metrics", RouteAccess::kData, [this](Call& call) {
      if (!t_ctx.metrics_token) {
        MV_RETURN_IF_ERROR(call.Decide(Action::kReadMetrics, {}));
      } else {
        call.scope().SetSummary("permit metrics-token");
      }
      std::string out;
      metrics_.Render(out);
      auto patients = metadata_->CountPatients();
      auto versions = metadata_->CountSegmentVersions();
      if (patients.ok() && versions.ok()) {
        out += "# HELP medvault_patients Patients (including erased).\n";
        out +=
            "# TYPE medvault_patients gauge\nmedvault_patients " + std::to_string(*patients) + "\n";
        out += "# HELP medvault_segment_versions Stored segment versions.\n";
        out += "# TYPE medvault_segment_versions gauge\nmedvault_segment_versions " +
               std::to_string(*versions) + "\n";
      }
      out += "# HELP medvault_access_decisions_total Access decisions by effect.\n";
      out += "# TYPE medvault_access_decisions_total counter\n";
      out += "medvault_access_decisions_total{effect=\"permit\"} " +
             std::to_string(permits_.load()) + "\n";
      out += "medvault_access_decisions_total{effect=\"deny\"} " + std::to_string(denies_.load()) +
             "\n";
      if (services_.ledger != nullptr) {
        out += "# HELP medvault_ledger_entries Entries in the ledger (as last synced).\n";
        out += "# TYPE medvault_ledger_entries gauge\nmedvault_ledger_entries " +
               std::to_string(services_.ledger->Size()) + "\n";
        const json health = internal::LedgerHealthJson(*services_.ledger, false);
        out +=
            "# HELP medvault_ledger_damaged 1 when the ledger continued in a new epoch after "
            "damage (acknowledged or not).\n";
        out += "# TYPE medvault_ledger_damaged gauge\nmedvault_ledger_damaged " +
               std::string(health.value("damaged", false) ? "1" : "0") + "\n";
        out +=
            "# HELP medvault_ledger_damage_unacknowledged Damaged epochs no privacy officer "
            "has acknowledged.\n";
        out +=
            "# TYPE medvault_ledger_damage_unacknowledged gauge\n"
            "medvault_ledger_damage_unacknowledged " +
            std::to_string(health.value("unacknowledged", 0)) + "\n";
        out += "# HELP medvault_ledger_epoch The ledger's current epoch.\n";
        out += "# TYPE medvault_ledger_epoch gauge\nmedvault_ledger_epoch " +
               std::to_string(services_.ledger->Epoch()) + "\n";
      }
      if (services_.extra_metrics) {
        out += services_.extra_metrics();
      }
      call.res.set_content(out, "text/plain; version=0.0.4");
      return Status::Ok();
    });

    // Vocabulary, not data: any signed-in account may read it.
    Route("GET", "/api/v1/segment-types", "/api/v1/segment-types", RouteAccess::kSelf,
          [](Call& call) {
            call.Json(200, internal::SegmentTypesJson());
            return Status::Ok();
          });

    RouteWithBody(
        "POST", "/api/v1/patients", "/api/v1/patients", RouteAccess::kData,
        [this](Call& call, const std::string& body) { return CreatePatient(call, body); });
    RouteWithBody(
        "POST", "/api/v1/patients/search", "/api/v1/patients/search", RouteAccess::kData,
        [this](Call& call, const std::string& body) { return SearchPatients(call, body); });
    Route("GET", "/api/v1/patients", "/api/v1/patients", RouteAccess::kData,
          [this](Call& call) { return ListPatients(call); });
    const std::string patient = "/api/v1/patients/" + std::string(kPatientIdRe);
    Route("GET", patient, "/api/v1/patients/{id}", RouteAccess::kData, [this](Call& call) {
      MV_RETURN_IF_ERROR(internal::CheckQuery(call.req, {}));
      const std::string id = call.req.matches[1].str();
      MV_RETURN_IF_ERROR(call.Decide(Action::kReadDemographics, PatientResource(id)));
      MV_ASSIGN_OR_RETURN(record::PatientInfo p, records_->GetPatient(id));
      json j = PatientJson(p);
      MV_RETURN_IF_ERROR(enforce::ApplyMasking(j, call.last_decision()));
      call.Json(p.erased ? 410 : 200, j);
      return Status::Ok();
    });
    Route("DELETE", patient, "/api/v1/patients/{id}", RouteAccess::kData, [this](Call& call) {
      MV_RETURN_IF_ERROR(internal::CheckQuery(call.req, {}));
      const std::string id = call.req.matches[1].str();
      MV_RETURN_IF_ERROR(call.Decide(Action::kErasePatient, PatientResource(id)));
      MV_RETURN_IF_ERROR(records_->ErasePatient(id, call.account_id()));
      MV_RETURN_IF_ERROR(services_.access->ForgetPatient(id));
      call.Json(200, json{{"patient_id", id}, {"erased", true}});
      return Status::Ok();
    });
    Route("GET", patient + "/segments", "/api/v1/patients/{id}/segments", RouteAccess::kData,
          [this](Call& call) { return ListTree(call); });
    RouteWithBody("PUT", patient + "/segments/(.+)", "/api/v1/patients/{id}/segments/{path}",
                  RouteAccess::kData,
                  [this](Call& call, const std::string& body) { return WriteSegment(call, body); });
    Route("GET", patient + "/segments/(.+)", "/api/v1/patients/{id}/segments/{path}",
          RouteAccess::kData, [this](Call& call) { return ReadSegment(call); });
    Route("GET", patient + "/versions/(.+)", "/api/v1/patients/{id}/versions/{path}",
          RouteAccess::kData, [this](Call& call) { return ListVersions(call); });
    StreamingUpload(patient + "/attachments/(.+)", "/api/v1/patients/{id}/attachments/{path}");
    Route("GET", patient + "/attachments/(.+)", "/api/v1/patients/{id}/attachments/{path}",
          RouteAccess::kData, [this](Call& call) { return DownloadAttachment(call); });

    internal::RegisterAuthRoutes(*this);
    internal::RegisterAdminRoutes(*this);
    internal::RegisterAccessRoutes(*this);
    internal::RegisterLedgerRoutes(*this);
    internal::RegisterExchangeRoutes(*this);
    RegisterPortal();
  }

  // Runs before the route's handler and before any body is read (`route`:
  // what the path matched, null for none). True when it answered.
  bool PreRoute(const Request& req, Response& res, const RouteEntry* route) {
    res.set_header("X-Request-Id", t_ctx.request_id);
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Content-Type-Options", "nosniff");
    // No route takes an encoded path ("segments/a%2Fb", "%2e%2e"): a path
    // with a '%' is refused before anything reads it, so no layer can
    // decode it differently from another.
    const std::string_view raw_path =
        std::string_view(req.target).substr(0, std::min(req.target.size(), req.target.find('?')));
    if (raw_path.find('%') != std::string_view::npos) {
      return Reject(res, 400,
                    Status::InvalidArgument("percent-encoded characters in the path are not "
                                            "accepted"));
    }
    if (req.params.size() > internal::kMaxQueryParams) {
      return Reject(
          res, 400,
          Status::InvalidArgument("more than " + std::to_string(internal::kMaxQueryParams) +
                                  " query parameters"));
    }
    // Ranges would apply to streamed attachments that are read from their
    // start (and multiply small requests into big answers): not served.
    if (req.has_header("Range")) {
      return Reject(res, 416, Status::InvalidArgument("Range requests are not supported"));
    }
    // No route of these methods takes a body.
    if ((req.method == "GET" || req.method == "HEAD" || req.method == "DELETE" ||
         req.method == "OPTIONS") &&
        req.has_header("Transfer-Encoding")) {
      return Reject(res, 400,
                    Status::InvalidArgument("a " + req.method + " request takes no body"));
    }
    // A compressed body would inflate past every size check made on the
    // bytes sent.
    if (req.has_header("Content-Encoding")) {
      return Reject(res, 415,
                    Status::InvalidArgument("compressed request bodies are not accepted"));
    }
    // Deny by default: everything but a public route needs a signed-in
    // account, an unknown path too (a 401 there tells an unauthenticated
    // client nothing about which paths exist). HEAD matched its GET route.
    if (route == nullptr || route->access != RouteAccess::kPublic) {
      Status auth = Authenticate(req);
      if (!auth.ok()) {
        t_ctx.route = "auth";
        res.status = 401;
        res.set_header("WWW-Authenticate", "Bearer realm=\"medvault\"");
        if (req.has_header("Content-Length") || req.has_header("Transfer-Encoding")) {
          res.set_header("Connection", "close");  // the body stays unread
        }
        res.set_content(ErrorBody(auth, t_ctx.request_id), "application/json");
        return true;
      }
    }
    // A declared body beyond the route's limit is refused by the transport
    // before it is read (OnHead gives it the limit).
    return false;
  }

  bool Reject(Response& res, int code, const Status& st) {
    t_ctx.route = "rejected";
    res.status = code;
    res.set_header("Connection", "close");
    res.set_content(ErrorBody(st, t_ctx.request_id), "application/json");
    return true;
  }

  Status Authenticate(const Request& req) const {
    if (!req.has_header("Authorization")) {
      return Status::Unauthenticated("missing bearer token");
    }
    const std::string h = req.get_header_value("Authorization");
    constexpr std::string_view kPrefix = "Bearer ";
    if (h.size() <= kPrefix.size() || h.compare(0, kPrefix.size(), kPrefix) != 0 ||
        h.size() > 512) {
      return Status::Unauthenticated("Authorization must be 'Bearer <token>'");
    }
    const std::string_view token = std::string_view(h).substr(kPrefix.size());
    if (req.path == "/metrics" && options_.metrics_token_sha256.size() == 32 &&
        ConstantTimeEquals(crypto::Sha256(AsBytes(token)), options_.metrics_token_sha256)) {
      t_ctx.metrics_token = true;
      return Status::Ok();
    }
    auto session = services_.accounts->Authenticate(token, options_.audience);
    if (!session.ok()) {
      return session.status();
    }
    t_ctx.session = std::move(*session);
    return Status::Ok();
  }

  using BodyHandler = internal::BodyHandler;
  using Handler = internal::Handler;

  static void Finish(Response& res, const Status& st) {
    if (!st.ok()) {
      res.status = HttpStatusFor(st.code());
      res.set_content(ErrorBody(st, t_ctx.request_id), "application/json");
      if (st.code() == StatusCode::kDataLoss) {
        Log(LogLevel::kError, "integrity.failure",
            {{"request_id", t_ctx.request_id}, {"route", t_ctx.route}});
      }
    }
  }

  // Runs a handler with its Call and enforces the access class: a signed-in
  // session for kSelf and kData, and a decision before any kData answer.
  Status RunHandler(const Request& req, Response& res, RouteAccess access,
                    const std::function<Status(Call&)>& fn) {
    if (access != RouteAccess::kPublic && !t_ctx.session.has_value() && !t_ctx.metrics_token) {
      return Status::Unauthenticated("sign in first");
    }
    if (t_ctx.metrics_token && t_ctx.route != "/metrics") {
      return Status::Unauthenticated("the metrics token opens /metrics only");
    }
    policy::RoleSet roles = 0;
    if (t_ctx.session.has_value()) {
      auto r = services_.decisions->policy().RolesOf(t_ctx.session->account.roles);
      roles = r.ok() ? *r : 0;  // unknown roles grant nothing
    }
    enforce::RequestContext ctx;
    ctx.origin.channel = enforce::Channel::kHttp;
    ctx.origin.request_id = t_ctx.request_id;
    ctx.origin.route = t_ctx.route;
    if (t_ctx.session.has_value()) {
      const auth::Account& a = t_ctx.session->account;
      ctx.origin.account_id = a.account_id;
      ctx.subject.account_id = a.account_id;
      ctx.subject.roles = roles;
      ctx.subject.institution_id = a.institution_id;
      ctx.subject.department_id = a.department_id;
      ctx.subject.patient_id = a.patient_id;
      ctx.subject.mfa_verified = t_ctx.session->mfa_verified;
    }
    ctx.context.now_ms = NowUnixMillis();
    ctx.context.zone = ZoneOf(req.remote_addr);
    ctx.context.purpose = policy::Purpose::kTreatment;
    Call call(req, res, services_, enforce_deps_, std::move(ctx),
              t_ctx.session ? &*t_ctx.session : nullptr);
    MV_RETURN_IF_ERROR(PurposeHeader(call));
    Status st;
    try {
      st = fn(call);
    } catch (const std::exception&) {
      st = Status::Internal("unexpected error");
    }
    if (call.decisions() > 0) {
      (call.last_decision().permitted() ? permits_ : denies_).fetch_add(1);
    }
    t_ctx.decision = call.scope().summary();
    if (!t_ctx.decision.empty()) {
      res.set_header("X-Access-Decision", t_ctx.decision);
    }
    if (access == RouteAccess::kData && st.ok()) {
      // Fail closed: a data route must not answer without a decision.
      Status decided = call.scope().RequireDecision();
      if (!decided.ok()) {
        res.clear_content();
        st = decided;
      }
    }
    // A commit that failed at once (an entry that could not be built or
    // was refused) answers 503 whatever the handler answered.
    Status audited = HoldForAudit(call.scope(), res);
    return audited.ok() ? st : audited;
  }

  // No answer without its ledger entries: the decisions are made durable
  // before the response (or its streamed body) leaves. The entries go to
  // the group committer without this worker waiting for them: the answer is
  // held (Response::hold) and the transport writes it once the commit is
  // durable, or a 503 in its place when the commit failed
  // (docs/architecture.md, "Answers held for their audit").
  struct HeldAnswer {
    std::mutex mu;
    bool committed = false;        // guarded by mu
    Status status;                 // guarded by mu; the commit's outcome
    Response* res = nullptr;       // guarded by mu; set by the hold
    std::function<void()> resume;  // guarded by mu; set by the hold
    std::string request_id;
  };

  // What a failed audit leaves of the answer: nothing but the error. The
  // answer is made anew (no header the handler set about the record:
  // versions, export counts, locations, the decision), keeping only the
  // headers every answer carries.
  static void FailHeld(Response& res, const Status& st, const std::string& request_id) {
    Response fresh;
    for (const char* name :
         {"X-Request-Id", "Cache-Control", "X-Content-Type-Options", "Connection"}) {
      if (res.has_header(name)) fresh.set_header(name, res.get_header_value(name));
    }
    fresh.status = HttpStatusFor(st.code());
    fresh.set_content(ErrorBody(st, request_id), "application/json");
    res = std::move(fresh);
  }

  // FailHeld that cannot throw (it runs where nothing could report it): at
  // worst a bare 503.
  static void FailHeldSafely(Response& res, const Status& st, const std::string& request_id) {
    try {
      FailHeld(res, st, request_id);
    } catch (...) {
      res.clear_content();
      res.headers.clear();
      res.status = 503;
    }
  }

  // The commit's outcome when it is known at once (not OK: `res` is the
  // failure answer already), else OK with `res.hold` set.
  static Status HoldForAudit(enforce::Scope& scope, Response& res) {
    auto held = std::make_shared<HeldAnswer>();
    held->request_id = t_ctx.request_id;
    scope.CommitAsync([held](const Status& st) {
      std::unique_lock<std::mutex> lock(held->mu);
      held->committed = true;
      held->status = st;
      if (!held->resume) {
        return;  // not held yet (or never): the hold sees the outcome
      }
      Response* r = held->res;
      std::function<void()> resume = std::move(held->resume);
      lock.unlock();
      if (!st.ok()) {
        FailHeldSafely(*r, st, held->request_id);
      }
      resume();
    });
    {
      std::lock_guard<std::mutex> lock(held->mu);
      if (held->committed) {  // durable already (or nothing to record)
        if (!held->status.ok()) {
          FailHeld(res, held->status, held->request_id);
        }
        return held->status;
      }
    }
    res.hold = [held](Response& r, std::function<void()> resume) {
      std::unique_lock<std::mutex> lock(held->mu);
      if (!held->committed) {
        held->res = &r;
        held->resume = std::move(resume);
        return;
      }
      lock.unlock();
      if (!held->status.ok()) {
        FailHeldSafely(r, held->status, held->request_id);
      }
      resume();
    };
    return Status::Ok();
  }

  // X-Purpose-Of-Use: the purpose the caller declares (default treatment,
  // patient-request for a patient on their own record is implied by the PDP).
  static Status PurposeHeader(Call& call) {
    if (!call.req.has_header("X-Purpose-Of-Use")) {
      return Status::Ok();
    }
    auto p = policy::ParsePurpose(call.req.get_header_value("X-Purpose-Of-Use"));
    if (!p.ok()) {
      return Status::InvalidArgument("unknown X-Purpose-Of-Use");
    }
    call.context.purpose = *p;
    return Status::Ok();
  }

  // Keeps the tables the pre-routing hook consults: which routes need a
  // session (all but the public ones) and which must decide.
  // The portal's files, public and literal; "/" is index.html.
  void RegisterPortal() {
    for (const internal::PortalFile& f : portal_files_) {
      std::vector<std::string> urls = {f.url};
      if (f.url == "/index.html") {
        urls.push_back("/");
      }
      for (const std::string& url : urls) {
        RouteEntry& e = AddRoute("GET", internal::LiteralRegex(url), "portal", RouteAccess::kPublic,
                                 RouteEntry::Kind::kPortal);
        e.file = &f;
      }
    }
  }

  RouteEntry& AddRoute(const std::string& method, const std::string& pattern,
                       const std::string& name, RouteAccess access, RouteEntry::Kind kind) {
    auto e = std::make_unique<RouteEntry>();
    e->method = method;
    e->pattern = std::regex(pattern, std::regex::ECMAScript | std::regex::optimize);
    e->literal_prefix = pattern.substr(0, pattern.find_first_of("()[]{}*+?.\\^$|"));
    for (std::string_view piece : SplitPath(pattern)) {
      // Conservative: a piece that may match across '/' or whose group
      // spans a '/' ends the checked pieces.
      if (piece.find(".+") != std::string_view::npos ||
          piece.find(".*") != std::string_view::npos ||
          std::count(piece.begin(), piece.end(), '(') !=
              std::count(piece.begin(), piece.end(), ')')) {
        e->open_tail = true;
        break;
      }
      const bool literal = piece.find_first_of("()[]{}*+?.\\^$|") == std::string_view::npos;
      // A piece that could match a '/' (an unescaped '.', a class with
      // "\\s" or "\\S") would make the pre-filter refuse paths the regex
      // takes: a programming error, caught by every test run.
      for (size_t i = 0; i < piece.size(); ++i) {
        if (piece[i] == '\\') {
          if (i + 1 < piece.size() && (piece[i + 1] == 's' || piece[i + 1] == 'S')) std::abort();
          ++i;
        } else if (piece[i] == '.') {
          std::abort();
        }
      }
      e->pieces.emplace_back(literal ? piece : std::string_view());
      e->piece_literal.push_back(literal);
    }
    e->name = name;
    e->access = access;
    e->kind = kind;
    routes_.push_back(std::move(e));
    return *routes_.back();
  }

  void Route(const std::string& method, const std::string& pattern, const std::string& name,
             RouteAccess access, Handler handler) override {
    if (method != "GET" && method != "DELETE") {
      std::abort();  // a programming error, caught by every test run
    }
    AddRoute(method, pattern, name, access, RouteEntry::Kind::kPlain).handler = std::move(handler);
  }

  // Reads a JSON-sized body (bounded with or without a Content-Length).
  void RouteWithBody(const std::string& method, const std::string& pattern, const std::string& name,
                     RouteAccess access, BodyHandler handler) override {
    RouteWithTypedBody(method, pattern, name, access, {"application/json"}, options_.max_json_bytes,
                       std::move(handler));
  }

  void RouteWithDocument(const std::string& method, const std::string& pattern,
                         const std::string& name, RouteAccess access,
                         BodyHandler handler) override {
    RouteWithTypedBody(
        method, pattern, name, access,
        std::vector<std::string>(internal::kDocumentTypes.begin(), internal::kDocumentTypes.end()),
        options_.max_document_bytes, std::move(handler));
  }

  void RouteWithTypedBody(const std::string& method, const std::string& pattern,
                          const std::string& name, RouteAccess access,
                          std::vector<std::string> content_types, uint64_t limit,
                          BodyHandler handler) {
    if (method != "POST" && method != "PUT") {
      std::abort();  // a programming error, caught by every test run
    }
    RouteEntry& e = AddRoute(method, pattern, name, access, RouteEntry::Kind::kBody);
    e.body_handler = std::move(handler);
    e.content_types = std::move(content_types);
    e.limit = limit;
  }

  // "/a/b" -> "", "a", "b" (the pieces between slashes).
  static std::vector<std::string_view> SplitPath(std::string_view path) {
    std::vector<std::string_view> out;
    size_t start = 0;
    while (true) {
      const size_t slash = path.find('/', start);
      out.push_back(path.substr(start, slash - start));
      if (slash == std::string_view::npos) {
        return out;
      }
      start = slash + 1;
    }
  }

  static bool MayMatch(const RouteEntry& e, const std::vector<std::string_view>& pieces) {
    if (e.open_tail ? pieces.size() <= e.pieces.size() : pieces.size() != e.pieces.size()) {
      return false;
    }
    for (size_t i = 0; i < e.pieces.size(); ++i) {
      if (e.piece_literal[i] && pieces[i] != e.pieces[i]) {
        return false;
      }
    }
    return true;
  }

  // The first route of the method (HEAD: GET) whose pattern matches the
  // whole path; sets req.matches.
  const RouteEntry* Match(Request& req) const {
    const std::string& method = req.method == "HEAD" ? kGet : req.method;
    const std::vector<std::string_view> pieces = SplitPath(req.path);
    for (const auto& e : routes_) {
      if (e->method == method && req.path.starts_with(e->literal_prefix) && MayMatch(*e, pieces) &&
          std::regex_match(req.path, req.matches, e->pattern)) {
        return e.get();
      }
    }
    return nullptr;
  }

  // -- internal::Application: the transport calls these on its workers. ----

  Next OnHead(Request& req, Response& res, uint64_t* body_limit) override {
    auto state = std::make_shared<PerRequest>();
    req.app_state = state;
    state->ctx.request_id = NewRandomId().substr(0, 16);
    state->ctx.start = std::chrono::steady_clock::now();
    BoundContext bound(state->ctx);
    const RouteEntry* route = Match(req);
    if (PreRoute(req, res, route)) {
      return Next::kAnswer;
    }
    if (route == nullptr) {
      Finish(res, Status(StatusCode::kNotFound, "no such endpoint"));
      return Next::kAnswer;
    }
    t_ctx.route = route->name;
    state->route = route;
    switch (route->kind) {
      case RouteEntry::Kind::kPortal:
        res.status = 200;
        res.set_header("Content-Security-Policy",
                       std::string(internal::kPortalContentSecurityPolicy));
        // nosniff and no-store come with every answer (PreRoute).
        res.set_header("Referrer-Policy", "no-referrer");
        res.set_content(route->file->body, route->file->content_type);
        return Next::kAnswer;
      case RouteEntry::Kind::kPlain:
        Finish(res, Guarded([&] { return RunHandler(req, res, route->access, route->handler); }));
        return Next::kAnswer;
      case RouteEntry::Kind::kBody:
        // The type is checked before a byte of the body is read.
        if (!HasContentType(req, route->content_types)) {
          std::string names;
          for (const std::string& t : route->content_types) {
            names += names.empty() ? "" : " or ";
            names += t;
          }
          res.set_header("Connection", "close");  // the body stays unread
          Finish(res, Status::InvalidArgument("Content-Type must be " + names));
          return Next::kAnswer;
        }
        *body_limit = route->limit;
        return Next::kBody;
      case RouteEntry::Kind::kStream:
        *body_limit = options_.max_attachment_bytes;
        return Next::kStream;
    }
    return Next::kAnswer;
  }

  void OnBody(Request& req, Response& res) override {
    auto state = std::static_pointer_cast<PerRequest>(req.app_state);
    BoundContext bound(state->ctx);
    const RouteEntry* route = state->route;
    Finish(res, Guarded([&] {
             return RunHandler(req, res, route->access,
                               [&](Call& call) { return route->body_handler(call, req.body); });
           }));
  }

  void OnStream(Request& req, Response& res, const BodyReader& reader) override {
    auto state = std::static_pointer_cast<PerRequest>(req.app_state);
    BoundContext bound(state->ctx);
    const RouteEntry* route = state->route;
    const Status st = Guarded([&] {
      return RunHandler(req, res, route->access,
                        [&](Call& call) { return route->stream_handler(call, reader); });
    });
    if (!st.ok()) {
      res.set_header("Connection", "close");  // the body may be unread
    }
    Finish(res, st);
  }

  void OnRejected(int status, std::string_view code) override {
    metrics_.Record("rejected", status, 0.0);
    Log(LogLevel::kInfo, "http.rejected", {{"status", status}, {"reason", std::string(code)}});
  }

  void OnAnswered(const Request& req, const Response& res) override {
    const auto* state = static_cast<const PerRequest*>(req.app_state.get());
    if (state == nullptr) {
      return;
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - state->ctx.start).count();
    metrics_.Record(state->ctx.route, res.status, secs);
    // Route templates and ids only: never paths with segment names, bodies,
    // query strings or headers.
    Log(res.status >= 500 ? LogLevel::kWarn : LogLevel::kDebug, "http.request",
        {{"request_id", state->ctx.request_id},
         {"method", req.method},
         {"route", state->ctx.route},
         {"status", res.status},
         {"ms", secs * 1000.0}});
  }

  // A handler that throws answers 500 (and nothing it half-made leaves).
  template <class Fn>
  static Status Guarded(Fn&& fn) {
    try {
      return fn();
    } catch (const std::exception&) {
      return Status::Internal("unexpected error");
    }
  }

  // The media type of the request (before any ';' parameters) is one of `types`.
  static bool HasContentType(const Request& req, const std::vector<std::string>& types) {
    if (!req.has_header("Content-Type")) {
      return false;
    }
    std::string type = req.get_header_value("Content-Type");
    type = type.substr(0, type.find(';'));
    while (!type.empty() && type.back() == ' ') {
      type.pop_back();
    }
    for (char& c : type) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return std::find(types.begin(), types.end(), type) != types.end();
  }

  static Result<uint64_t> VersionParam(const Request& req) {
    if (!req.has_param("version")) {
      return uint64_t{0};
    }
    const std::string v = req.get_param_value("version");
    if (v.empty() || v.size() > 15 || v[0] == '0') {
      return Status::InvalidArgument("version must be a positive integer");
    }
    uint64_t n = 0;
    for (char c : v) {
      if (c < '0' || c > '9') {
        return Status::InvalidArgument("version must be a positive integer");
      }
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    return n;
  }

  static Result<std::string> SegmentPathParam(const Request& req) {
    std::string path = req.matches[2].str();
    MV_RETURN_IF_ERROR(record::ValidateSegmentPath(path));
    return path;
  }

  static policy::Resource PatientResource(const std::string& id) {
    policy::Resource r;
    r.patient_id = id;
    return r;
  }

  // The resource of a segment path; the sensitivity is the top-level
  // default until the stored version says otherwise.
  static policy::Resource SegmentResource(const std::string& id, const std::string& path,
                                          int sensitivity = -1) {
    return internal::SegmentResource(id, path, sensitivity);
  }

  // Applies the decision's mask obligation to JSON content: each name is a
  // semantic field of the record engine when it is one ("insurance_number"
  // also masks the insurance identifiers of imported identity segments,
  // "given_name" the given names, ...), else a key masked at any depth.
  // Content that cannot be masked field by field is masked whole.
  Status CreatePatient(Call& call, const std::string& body) {
    MV_RETURN_IF_ERROR(call.Decide(Action::kCreatePatient, {}));
    MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body));
    MV_RETURN_IF_ERROR(
        CheckObjectFields(j, {"given_name", "family_name", "birth_date", "sex", "identifier"},
                          {"given_name", "family_name", "birth_date", "sex"}));
    record::Demographics d;
    MV_ASSIGN_OR_RETURN(d.given_name, GetStringField(j, "given_name", true, 200));
    MV_ASSIGN_OR_RETURN(d.family_name, GetStringField(j, "family_name", true, 200));
    MV_ASSIGN_OR_RETURN(d.birth_date, GetStringField(j, "birth_date", true, 10));
    MV_ASSIGN_OR_RETURN(d.sex, GetStringField(j, "sex", true, 16));
    MV_ASSIGN_OR_RETURN(d.identifier, GetStringField(j, "identifier", false, 64));
    MV_ASSIGN_OR_RETURN(record::PatientInfo p, records_->CreatePatient(d, call.account_id()));
    call.res.set_header("Location", "/api/v1/patients/" + p.patient_id);
    call.Json(201, PatientJson(p));
    return Status::Ok();
  }

  Status SearchPatients(Call& call, const std::string& body) {
    MV_RETURN_IF_ERROR(call.Decide(Action::kSearchPatients, {}));
    MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body));
    MV_RETURN_IF_ERROR(CheckObjectFields(j, {"family_name", "identifier"}, {}));
    MV_ASSIGN_OR_RETURN(std::string family, GetStringField(j, "family_name", false, 200));
    MV_ASSIGN_OR_RETURN(std::string ident, GetStringField(j, "identifier", false, 64));
    MV_ASSIGN_OR_RETURN(auto found, records_->FindPatients(family, ident));
    json arr = json::array();
    for (const auto& p : found) {
      // Each hit is a patient's identity: decided one by one.
      if (call.Permits(Action::kReadDemographics, PatientResource(p.patient_id))) {
        arr.push_back(PatientJson(p));
      }
    }
    call.Json(200, json{{"patients", arr}});
    return Status::Ok();
  }

  Status ListPatients(Call& call) {
    MV_RETURN_IF_ERROR(call.Decide(Action::kSearchPatients, {}));
    MV_RETURN_IF_ERROR(internal::CheckQuery(call.req, {"after", "limit"}));
    const Request& req = call.req;
    std::string after = req.has_param("after") ? req.get_param_value("after") : "";
    if (!after.empty() && !IsValidRandomId(after)) {
      return Status::InvalidArgument("after must be a patient id");
    }
    size_t limit = 100;
    if (req.has_param("limit")) {
      const std::string l = req.get_param_value("limit");
      if (l.empty() || l.size() > 4 || l.find_first_not_of("0123456789") != std::string::npos ||
          std::stoul(l) == 0 || std::stoul(l) > 1000) {
        return Status::InvalidArgument("limit must be an integer between 1 and 1000");
      }
      limit = std::stoul(l);
    }
    MV_ASSIGN_OR_RETURN(auto ids, records_->ListPatientIds(after, limit));
    json out = {{"patient_ids", ids}};
    if (ids.size() == limit) {
      out["next_after"] = ids.back();
    }
    call.Json(200, out);
    return Status::Ok();
  }

  Status ListTree(Call& call) {
    MV_RETURN_IF_ERROR(internal::CheckQuery(call.req, {"prefix"}));
    const std::string id = call.req.matches[1].str();
    const std::string prefix =
        call.req.has_param("prefix") ? call.req.get_param_value("prefix") : "";
    if (!prefix.empty()) {
      MV_RETURN_IF_ERROR(record::ValidateSegmentPath(prefix));
    }
    // Gate on the record as a whole first, so an unknown patient and a
    // forbidden one look the same; then each path is decided on its own.
    policy::Resource gate = PatientResource(id);
    gate.path = prefix;
    if (!prefix.empty()) {
      gate = SegmentResource(id, prefix);
    }
    const bool gate_ok = call.Permits(Action::kList, gate);
    auto listed = records_->ListTree(id, prefix);
    if (!listed.ok() && !gate_ok && listed.status().code() == StatusCode::kNotFound) {
      // Not permitted on the record: an unknown patient gets the same deny
      // as a forbidden one (the tree's 404 would tell them apart).
      return call.Decide(Action::kList, gate);
    }
    MV_ASSIGN_OR_RETURN(auto tree, std::move(listed));
    json arr = json::array();
    for (const auto& s : tree) {
      if (!call.Permits(Action::kList, SegmentResource(id, s.path, s.sensitivity))) {
        continue;
      }
      arr.push_back({{"path", s.path},
                     {"category", s.category},
                     {"sensitivity", s.sensitivity},
                     {"kind", vocab::ContentKindName(s.kind)},
                     {"media_type", s.media_type},
                     {"latest_version", s.latest_version},
                     {"version_count", s.version_count},
                     {"updated_at", FormatRfc3339Millis(s.updated_at_ms)}});
    }
    if (arr.empty() && !gate_ok) {
      return call.Decide(Action::kList, gate);  // the deny with its reason
    }
    call.scope().SetSummary("permit filtered");
    call.Json(200, json{{"patient_id", id}, {"segments", arr}});
    return Status::Ok();
  }

  Status WriteSegment(Call& call, const std::string& body) {
    MV_RETURN_IF_ERROR(internal::CheckQuery(call.req, {}));
    MV_ASSIGN_OR_RETURN(std::string path, SegmentPathParam(call.req));
    const std::string id = call.req.matches[1].str();
    // Decide on the path first; a declared sensitivity is decided again.
    MV_RETURN_IF_ERROR(call.Decide(Action::kWrite, SegmentResource(id, path)));
    MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body));
    MV_RETURN_IF_ERROR(CheckObjectFields(j, {"data", "text", "sensitivity"}, {}));
    MV_ASSIGN_OR_RETURN(auto sens, GetIntField(j, "sensitivity", 0, record::kMaxSensitivity));
    if (sens.has_value()) {
      MV_RETURN_IF_ERROR(
          call.Decide(Action::kWrite, SegmentResource(id, path, static_cast<int>(*sens))));
    }
    const bool has_data = j.contains("data");
    const bool has_text = j.contains("text");
    if (has_data == has_text) {
      return Status::InvalidArgument("give exactly one of 'data' (a JSON object) or 'text'");
    }
    record::SegmentWrite w;
    if (sens.has_value()) {
      w.sensitivity = static_cast<int>(*sens);
    }
    if (has_data) {
      if (!j["data"].is_object()) {
        return Status::InvalidArgument("field 'data' must be a JSON object");
      }
      w.kind = ContentKind::kJson;
      w.content = ToBytes(j["data"].dump());
    } else {
      MV_ASSIGN_OR_RETURN(std::string text,
                          GetStringField(j, "text", true, options_.max_json_bytes));
      w.kind = ContentKind::kText;
      w.content = ToBytes(text);
    }
    MV_ASSIGN_OR_RETURN(
        auto info, enforce::WriteSegment(call.scope(), *records_, id, path, w, call.account_id()));
    call.Json(201, InfoJson(info));
    return Status::Ok();
  }

  Status ReadSegment(Call& call) {
    MV_RETURN_IF_ERROR(internal::CheckQuery(call.req, {"version"}));
    MV_ASSIGN_OR_RETURN(std::string path, SegmentPathParam(call.req));
    MV_ASSIGN_OR_RETURN(uint64_t version, VersionParam(call.req));
    const std::string id = call.req.matches[1].str();
    MV_ASSIGN_OR_RETURN(auto reader, enforce::OpenSegment(call.scope(), *records_, Action::kRead,
                                                          id, path, version));
    json out = InfoJson(reader->info());
    if (call.last_decision().obligations.expires_at_ms != 0) {
      out["access_expires_at"] =
          FormatRfc3339Millis(call.last_decision().obligations.expires_at_ms);
    }
    if (reader->info().kind == ContentKind::kBinary) {
      out["attachment_url"] = "/api/v1/patients/" + id + "/attachments/" + path +
                              "?version=" + std::to_string(reader->info().version);
    } else {
      if (reader->info().size > options_.max_json_bytes) {
        return Status::ResourceExhausted("segment too large to inline");
      }
      Bytes content;
      while (true) {
        const size_t before = content.size();
        MV_RETURN_IF_ERROR(reader->ReadSome(crypto::kEnvelopeChunkSize, content));
        if (content.size() == before) {
          break;
        }
      }
      if (reader->info().kind == ContentKind::kJson) {
        json data = json::parse(content.begin(), content.end(), nullptr, false);
        if (data.is_discarded()) {
          return Status::DataLoss("stored JSON segment does not parse");
        }
        MV_RETURN_IF_ERROR(enforce::ApplyMasking(data, call.last_decision()));
        out["data"] = std::move(data);
      } else {
        out["text"] = std::string(AsString(content));
      }
      sodium_memzero(content.data(), content.size());
    }
    call.Json(200, out);
    return Status::Ok();
  }

  Status ListVersions(Call& call) {
    MV_RETURN_IF_ERROR(internal::CheckQuery(call.req, {}));
    MV_ASSIGN_OR_RETURN(std::string path, SegmentPathParam(call.req));
    const std::string id = call.req.matches[1].str();
    MV_RETURN_IF_ERROR(call.Decide(Action::kRead, SegmentResource(id, path)));
    MV_ASSIGN_OR_RETURN(auto versions, records_->ListVersions(id, path));
    json arr = json::array();
    for (const auto& v : versions) {
      if (call.Permits(Action::kRead, SegmentResource(id, path, v.sensitivity))) {
        arr.push_back(InfoJson(v));
      }
    }
    call.Json(200, json{{"path", path}, {"versions", arr}});
    return Status::Ok();
  }

  void StreamingUpload(const std::string& pattern, const std::string& name) {
    AddRoute("PUT", pattern, name, RouteAccess::kData, RouteEntry::Kind::kStream).stream_handler =
        [this](Call& call, const BodyReader& reader) { return Upload(call, reader); };
  }

  Status Upload(Call& call, const BodyReader& reader) {
    const Request& req = call.req;
    MV_RETURN_IF_ERROR(internal::CheckQuery(req, {"sensitivity"}));
    MV_ASSIGN_OR_RETURN(std::string path, SegmentPathParam(req));
    std::optional<int> sensitivity;
    if (req.has_param("sensitivity")) {
      const std::string s = req.get_param_value("sensitivity");
      if (s.size() != 1 || s[0] < '0' || s[0] > '4') {
        return Status::InvalidArgument("sensitivity must be an integer between 0 and 4");
      }
      sensitivity = s[0] - '0';
    }
    const std::string id = req.matches[1].str();
    MV_RETURN_IF_ERROR(
        call.Decide(Action::kWrite, SegmentResource(id, path, sensitivity.value_or(-1))));
    if (!req.has_header("Content-Type")) {
      return Status::InvalidArgument("attachment upload needs a Content-Type");
    }
    if (req.is_multipart_form_data()) {
      return Status::InvalidArgument("send the attachment as the raw request body, not multipart");
    }
    MV_ASSIGN_OR_RETURN(auto writer,
                        records_->BeginAttachment(id, path, req.get_header_value("Content-Type"),
                                                  sensitivity, call.account_id()));
    Status write_status;
    const bool complete = reader([&](const char* data, size_t len) {
      write_status = writer->Append(ByteView(reinterpret_cast<const uint8_t*>(data), len));
      return write_status.ok();
    });
    MV_RETURN_IF_ERROR(write_status);
    if (!complete) {
      // Never commit the prefix of an upload the client did not finish.
      return Status::InvalidArgument("the request body is incomplete");
    }
    MV_ASSIGN_OR_RETURN(auto info, writer->Commit());
    call.Json(201, InfoJson(info));
    return Status::Ok();
  }

  Status DownloadAttachment(Call& call) {
    MV_RETURN_IF_ERROR(internal::CheckQuery(call.req, {"version"}));
    MV_ASSIGN_OR_RETURN(std::string path, SegmentPathParam(call.req));
    MV_ASSIGN_OR_RETURN(uint64_t version, VersionParam(call.req));
    MV_ASSIGN_OR_RETURN(auto reader_owned,
                        enforce::OpenSegment(call.scope(), *records_, Action::kRead,
                                             call.req.matches[1].str(), path, version));
    std::shared_ptr<record::SegmentReader> reader(std::move(reader_owned));
    const auto info = reader->info();
    call.res.set_header("X-Segment-Version", std::to_string(info.version));
    call.res.set_header("Content-Disposition", "attachment");
    call.res.set_content_provider(info.size, info.media_type, [reader](std::string& out) {
      Bytes piece;
      Status st = reader->ReadSome(crypto::kEnvelopeChunkSize, piece);
      if (!st.ok()) {
        // Headers are gone; the transport cuts the connection so the client
        // sees a short body instead of unauthenticated bytes.
        Log(LogLevel::kError, "integrity.failure.stream", {{"route", "attachments"}});
        return false;
      }
      if (piece.empty()) {
        return false;  // shorter than its metadata says: cut
      }
      out.append(reinterpret_cast<const char*>(piece.data()), piece.size());
      sodium_memzero(piece.data(), piece.size());
      return true;
    });
    return Status::Ok();
  }

  ServerOptions options_;
  Services services_;
  enforce::Deps enforce_deps_;
  record::RecordService* records_;
  store::MetadataStore* metadata_;
  std::unique_ptr<internal::Transport> transport_;
  std::vector<std::unique_ptr<RouteEntry>> routes_;  // fixed after Configure()
  static inline const std::string kGet = "GET";
  int bound_port_ = 0;
  RequestMetrics metrics_;

 public:
  std::vector<internal::PortalFile> portal_files_;  // loaded by CreateServer, fixed after
  std::atomic<uint64_t> permits_{0};
  std::atomic<uint64_t> denies_{0};
};

}  // namespace

Result<std::unique_ptr<Server>> CreateServer(const ServerOptions& options,
                                             const Services& services) {
  if (services.records == nullptr || services.metadata == nullptr || services.accounts == nullptr ||
      services.access == nullptr || services.decisions == nullptr) {
    return Status::Internal("server needs every service");
  }
  if (options.worker_threads < 2 || options.worker_threads > 1024) {
    return Status::InvalidArgument("worker_threads must be between 2 and 1024");
  }
  auto server = std::make_unique<HttpServer>(options, services);
  if (!options.web_dir.empty()) {
    MV_ASSIGN_OR_RETURN(server->portal_files_, internal::LoadPortalFiles(options.web_dir));
  }
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace medvault::api
