#include <arpa/inet.h>
#include <httplib.h>
#include <sodium.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "api/api.h"
#include "api/json_input.h"
#include "api/metrics.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/secret.h"
#include "crypto/crypto.h"

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

constexpr std::string_view kPatientIdRe = "([0-9a-f]{32})";

// Per-request context kept on the handling thread: set in the pre-routing
// handler, read by the logger. httplib runs both on the same worker thread.
struct RequestContext {
  std::string request_id;
  std::string route = "unmatched";
  std::chrono::steady_clock::time_point start;
};
thread_local RequestContext t_ctx;

std::string KindName(ContentKind k) {
  switch (k) {
    case ContentKind::kJson:
      return "json";
    case ContentKind::kText:
      return "text";
    case ContentKind::kBinary:
      return "binary";
  }
  return "binary";
}

json InfoJson(const record::SegmentVersionInfo& i) {
  return json{{"patient_id", i.patient_id},
              {"path", i.path},
              {"version", i.version},
              {"category", i.category},
              {"sensitivity", i.sensitivity},
              {"kind", KindName(i.kind)},
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

class HttpServer final : public Server {
 public:
  HttpServer(const ServerOptions& options, record::RecordService* records,
             store::MetadataStore* metadata)
      : options_(options), records_(records), metadata_(metadata) {}

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
    if (options_.bootstrap_token_sha256.size() != 32) {
      return Status::FailedPrecondition("no bootstrap token configured");
    }
    if (tls) {
      auto ssl = std::make_unique<httplib::SSLServer>(options_.tls_cert_path.c_str(),
                                                      options_.tls_key_path.c_str());
      if (!ssl->is_valid()) {
        return Status::InvalidArgument("TLS certificate or key could not be loaded from " +
                                       options_.tls_cert_path + " / " + options_.tls_key_path);
      }
      server_ = std::move(ssl);
    } else {
      server_ = std::make_unique<httplib::Server>();
    }
    Configure();
    int port = options_.port;
    if (port == 0) {
      port = server_->bind_to_any_port(options_.host);
      if (port <= 0) {
        return Status::Unavailable("could not bind " + options_.host);
      }
    } else if (!server_->bind_to_port(options_.host, port)) {
      return Status::Unavailable("could not bind " + options_.host + ":" + std::to_string(port) +
                                 " (in use or not permitted)");
    }
    bound_port_ = port;
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    // stop() is a no-op until the accept loop runs; wait for it so that a
    // Stop() right after Start() cannot be lost.
    for (int i = 0; i < 5000 && !server_->is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    Log(LogLevel::kInfo, "server.listening",
        {{"host", options_.host}, {"port", port}, {"tls", tls ? "on" : "off"}});
    return Status::Ok();
  }

  void Stop() override {
    if (server_ != nullptr) {
      server_->stop();
    }
    if (thread_.joinable()) {
      thread_.join();
    }
  }

  void Wait() override {
    if (thread_.joinable()) {
      thread_.join();
    }
  }

  int port() const override { return bound_port_; }

  std::vector<std::string> DataRoutes() const override { return data_routes_; }

 private:
  using Request = httplib::Request;
  using Response = httplib::Response;
  using ContentReader = httplib::ContentReader;

  void Configure() {
    httplib::Server& s = *server_;
    const int threads = options_.worker_threads;
    s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    s.set_keep_alive_max_count(static_cast<size_t>(options_.keep_alive_max_requests));
    s.set_keep_alive_timeout(10);
    s.set_read_timeout(options_.read_timeout_seconds, 0);
    s.set_write_timeout(options_.read_timeout_seconds, 0);
    s.set_payload_max_length(options_.max_attachment_bytes + 1);
    s.set_tcp_nodelay(true);

    s.set_pre_routing_handler(
        [this](const Request& req, Response& res) { return PreRoute(req, res); });
    s.set_error_handler([](const Request&, Response& res) {
      // Errors httplib raises itself (404 for no route, 413, 400 for bad
      // framing) get the JSON body too.
      if (res.body.empty()) {
        Status st(StatusCode::kNotFound, "no such endpoint");
        if (res.status == 413) {
          st = Status::ResourceExhausted("request body too large");
        } else if (res.status == 400) {
          st = Status::InvalidArgument("malformed HTTP request");
        } else if (res.status == 405) {
          st = Status::InvalidArgument("method not allowed");
        } else if (res.status != 404) {
          st = Status(StatusCode::kInternal, "request failed");
        }
        res.set_content(ErrorBody(st, t_ctx.request_id), "application/json");
      }
    });
    s.set_exception_handler([](const Request&, Response& res, std::exception_ptr) {
      res.status = 500;
      res.set_content(ErrorBody(Status::Internal("unexpected error"), t_ctx.request_id),
                      "application/json");
    });
    s.set_logger([this](const Request& req, const Response& res) {
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t_ctx.start).count();
      metrics_.Record(t_ctx.route, res.status, secs);
      // Route templates and ids only: never paths with segment names, bodies,
      // query strings or headers.
      Log(res.status >= 500 ? LogLevel::kWarn : LogLevel::kDebug, "http.request",
          {{"request_id", t_ctx.request_id},
           {"method", req.method},
           {"route", t_ctx.route},
           {"status", res.status},
           {"ms", secs * 1000.0}});
    });

    s.Get("/healthz", [](const Request&, Response& res) {
      t_ctx.route = "/healthz";
      res.set_content(R"({"status":"ok"})", "application/json");
    });
    s.Get("/readyz", [this](const Request&, Response& res) {
      t_ctx.route = "/readyz";
      auto v = metadata_->SchemaVersion();
      if (!v.ok()) {
        res.status = 503;
        res.set_content(
            ErrorBody(Status::Unavailable("metadata store not ready"), t_ctx.request_id),
            "application/json");
        return;
      }
      res.set_content(json{{"status", "ready"}, {"schema_version", *v}}.dump(), "application/json");
    });

    Route("GET", "/metrics", "/metrics", [this](const Request& req, Response& res) {
      (void)req;
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
      res.set_content(out, "text/plain; version=0.0.4");
      return Status::Ok();
    });

    Route("GET", "/api/v1/segment-types", "/api/v1/segment-types",
          [](const Request&, Response& res) {
            json arr = json::array();
            for (const auto& seg : record::TopLevelSegments()) {
              arr.push_back({{"name", seg.name},
                             {"category", seg.category},
                             {"default_sensitivity", seg.default_sensitivity},
                             {"description", seg.description}});
            }
            res.set_content(json{{"segment_types", arr}}.dump(), "application/json");
            return Status::Ok();
          });

    RouteWithBody("POST", "/api/v1/patients", "/api/v1/patients",
                  [this](const Request&, Response& res, const std::string& body) {
                    return CreatePatient(body, res);
                  });
    RouteWithBody("POST", "/api/v1/patients/search", "/api/v1/patients/search",
                  [this](const Request&, Response& res, const std::string& body) {
                    return SearchPatients(body, res);
                  });
    Route("GET", "/api/v1/patients", "/api/v1/patients",
          [this](const Request& req, Response& res) { return ListPatients(req, res); });
    const std::string patient = "/api/v1/patients/" + std::string(kPatientIdRe);
    Route("GET", patient, "/api/v1/patients/{id}", [this](const Request& req, Response& res) {
      MV_RETURN_IF_ERROR(CheckQuery(req, {}));
      MV_ASSIGN_OR_RETURN(record::PatientInfo p, records_->GetPatient(req.matches[1].str()));
      if (p.erased) {
        res.status = 410;
      }
      res.set_content(PatientJson(p).dump(), "application/json");
      return Status::Ok();
    });
    Route("DELETE", patient, "/api/v1/patients/{id}", [this](const Request& req, Response& res) {
      MV_RETURN_IF_ERROR(CheckQuery(req, {}));
      MV_RETURN_IF_ERROR(records_->ErasePatient(req.matches[1].str()));
      res.set_content(json{{"patient_id", req.matches[1].str()}, {"erased", true}}.dump(),
                      "application/json");
      return Status::Ok();
    });
    Route("GET", patient + "/segments", "/api/v1/patients/{id}/segments",
          [this](const Request& req, Response& res) { return ListTree(req, res); });
    RouteWithBody("PUT", patient + "/segments/(.+)", "/api/v1/patients/{id}/segments/{path}",
                  [this](const Request& req, Response& res, const std::string& body) {
                    return WriteSegment(req, res, body);
                  });
    Route("GET", patient + "/segments/(.+)", "/api/v1/patients/{id}/segments/{path}",
          [this](const Request& req, Response& res) { return ReadSegment(req, res); });
    Route("GET", patient + "/versions/(.+)", "/api/v1/patients/{id}/versions/{path}",
          [this](const Request& req, Response& res) { return ListVersions(req, res); });
    StreamingUpload(patient + "/attachments/(.+)", "/api/v1/patients/{id}/attachments/{path}");
    Route("GET", patient + "/attachments/(.+)", "/api/v1/patients/{id}/attachments/{path}",
          [this](const Request& req, Response& res) { return DownloadAttachment(req, res); });
  }

  // Runs before routing and before any body is read.
  httplib::Server::HandlerResponse PreRoute(const Request& req, Response& res) {
    t_ctx.request_id = NewRandomId().substr(0, 16);
    t_ctx.route = "unmatched";
    t_ctx.start = std::chrono::steady_clock::now();
    res.set_header("X-Request-Id", t_ctx.request_id);
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Content-Type-Options", "nosniff");
    if (req.path == "/healthz" || req.path == "/readyz") {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    // Deny by default: everything else needs the bootstrap token.
    Status auth = Authenticate(req);
    if (!auth.ok()) {
      t_ctx.route = "auth";
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer realm=\"medvault\"");
      res.set_content(ErrorBody(auth, t_ctx.request_id), "application/json");
      return httplib::Server::HandlerResponse::Handled;
    }
    // Bodies beyond the JSON limit are refused before they are read, except
    // on attachment uploads, which stream up to their own limit.
    const bool upload = req.method == "PUT" && req.path.find("/attachments/") != std::string::npos;
    const uint64_t limit = upload ? options_.max_attachment_bytes : options_.max_json_bytes;
    if (req.has_header("Content-Length")) {
      const std::string cl = req.get_header_value("Content-Length");
      uint64_t n = 0;
      bool valid = !cl.empty() && cl.size() <= 19;
      for (char c : cl) {
        valid = valid && c >= '0' && c <= '9';
        n = valid ? n * 10 + static_cast<uint64_t>(c - '0') : 0;
      }
      if (!valid) {
        return Reject(res, 400, Status::InvalidArgument("invalid Content-Length"));
      }
      if (n > limit) {
        return Reject(res, 413,
                      Status::ResourceExhausted("request body exceeds the limit of " +
                                                std::to_string(limit) + " bytes"));
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  }

  httplib::Server::HandlerResponse Reject(Response& res, int code, const Status& st) {
    t_ctx.route = "rejected";
    res.status = code;
    res.set_header("Connection", "close");
    res.set_content(ErrorBody(st, t_ctx.request_id), "application/json");
    return httplib::Server::HandlerResponse::Handled;
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
    const Bytes presented = crypto::Sha256(AsBytes(std::string_view(h).substr(kPrefix.size())));
    if (!ConstantTimeEquals(presented, options_.bootstrap_token_sha256)) {
      return Status::Unauthenticated("invalid token");
    }
    return Status::Ok();
  }

  using Handler = std::function<Status(const Request&, Response&)>;
  using BodyHandler = std::function<Status(const Request&, Response&, const std::string&)>;

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

  void Route(const std::string& method, const std::string& pattern, const std::string& name,
             Handler handler) {
    data_routes_.push_back(method + " " + name);
    auto wrapped = [name, handler](const Request& req, Response& res) {
      t_ctx.route = name;
      Status st;
      try {
        st = handler(req, res);
      } catch (const std::exception&) {
        st = Status::Internal("unexpected error");
      }
      Finish(res, st);
    };
    if (method == "GET") {
      server_->Get(pattern, wrapped);
    } else if (method == "DELETE") {
      server_->Delete(pattern, wrapped);
    }
  }

  // Reads a JSON-sized body through a content reader so its size is bounded
  // even without a Content-Length (chunked transfer encoding).
  void RouteWithBody(const std::string& method, const std::string& pattern, const std::string& name,
                     BodyHandler handler) {
    data_routes_.push_back(method + " " + name);
    const uint64_t limit = options_.max_json_bytes;
    auto wrapped = [name, handler, limit](const Request& req, Response& res,
                                          const ContentReader& reader) {
      t_ctx.route = name;
      std::string body;
      bool too_large = false;
      reader([&](const char* data, size_t len) {
        if (body.size() + len > limit) {
          too_large = true;
          return false;
        }
        body.append(data, len);
        return true;
      });
      Status st;
      if (too_large) {
        st = Status::ResourceExhausted("request body exceeds the limit of " +
                                       std::to_string(limit) + " bytes");
        res.set_header("Connection", "close");
      } else if (!req.has_header("Content-Type") ||
                 req.get_header_value("Content-Type").rfind("application/json", 0) != 0) {
        st = Status::InvalidArgument("Content-Type must be application/json");
      } else {
        try {
          st = handler(req, res, body);
        } catch (const std::exception&) {
          st = Status::Internal("unexpected error");
        }
      }
      Finish(res, st);
    };
    if (method == "POST") {
      server_->Post(pattern, wrapped);
    } else {
      server_->Put(pattern, wrapped);
    }
  }

  static Status CheckQuery(const Request& req, std::initializer_list<std::string_view> allowed) {
    for (const auto& [k, v] : req.params) {
      bool ok = false;
      for (std::string_view a : allowed) {
        ok = ok || k == a;
      }
      if (!ok) {
        return Status::InvalidArgument("unknown query parameter '" + k.substr(0, 64) + "'");
      }
      if (req.params.count(k) > 1) {
        return Status::InvalidArgument("query parameter '" + k + "' given twice");
      }
    }
    return Status::Ok();
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

  Status CreatePatient(const std::string& body, Response& res) {
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
    MV_ASSIGN_OR_RETURN(record::PatientInfo p, records_->CreatePatient(d, "bootstrap-admin"));
    res.status = 201;
    res.set_header("Location", "/api/v1/patients/" + p.patient_id);
    res.set_content(PatientJson(p).dump(), "application/json");
    return Status::Ok();
  }

  Status SearchPatients(const std::string& body, Response& res) {
    MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body));
    MV_RETURN_IF_ERROR(CheckObjectFields(j, {"family_name", "identifier"}, {}));
    MV_ASSIGN_OR_RETURN(std::string family, GetStringField(j, "family_name", false, 200));
    MV_ASSIGN_OR_RETURN(std::string ident, GetStringField(j, "identifier", false, 64));
    MV_ASSIGN_OR_RETURN(auto found, records_->FindPatients(family, ident));
    json arr = json::array();
    for (const auto& p : found) {
      arr.push_back(PatientJson(p));
    }
    res.set_content(json{{"patients", arr}}.dump(), "application/json");
    return Status::Ok();
  }

  Status ListPatients(const Request& req, Response& res) {
    MV_RETURN_IF_ERROR(CheckQuery(req, {"after", "limit"}));
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
    res.set_content(out.dump(), "application/json");
    return Status::Ok();
  }

  Status ListTree(const Request& req, Response& res) {
    MV_RETURN_IF_ERROR(CheckQuery(req, {"prefix"}));
    const std::string prefix = req.has_param("prefix") ? req.get_param_value("prefix") : "";
    MV_ASSIGN_OR_RETURN(auto tree, records_->ListTree(req.matches[1].str(), prefix));
    json arr = json::array();
    for (const auto& s : tree) {
      arr.push_back({{"path", s.path},
                     {"category", s.category},
                     {"sensitivity", s.sensitivity},
                     {"kind", KindName(s.kind)},
                     {"media_type", s.media_type},
                     {"latest_version", s.latest_version},
                     {"version_count", s.version_count},
                     {"updated_at", FormatRfc3339Millis(s.updated_at_ms)}});
    }
    res.set_content(json{{"patient_id", req.matches[1].str()}, {"segments", arr}}.dump(),
                    "application/json");
    return Status::Ok();
  }

  Status WriteSegment(const Request& req, Response& res, const std::string& body) {
    MV_RETURN_IF_ERROR(CheckQuery(req, {}));
    MV_ASSIGN_OR_RETURN(std::string path, SegmentPathParam(req));
    MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body));
    MV_RETURN_IF_ERROR(CheckObjectFields(j, {"data", "text", "sensitivity"}, {}));
    const bool has_data = j.contains("data");
    const bool has_text = j.contains("text");
    if (has_data == has_text) {
      return Status::InvalidArgument("give exactly one of 'data' (a JSON object) or 'text'");
    }
    record::SegmentWrite w;
    MV_ASSIGN_OR_RETURN(auto sens, GetIntField(j, "sensitivity", 0, record::kMaxSensitivity));
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
    MV_ASSIGN_OR_RETURN(auto info,
                        records_->WriteSegment(req.matches[1].str(), path, w, "bootstrap-admin"));
    res.status = 201;
    res.set_content(InfoJson(info).dump(), "application/json");
    return Status::Ok();
  }

  Status ReadSegment(const Request& req, Response& res) {
    MV_RETURN_IF_ERROR(CheckQuery(req, {"version"}));
    MV_ASSIGN_OR_RETURN(std::string path, SegmentPathParam(req));
    MV_ASSIGN_OR_RETURN(uint64_t version, VersionParam(req));
    const std::string id = req.matches[1].str();
    MV_ASSIGN_OR_RETURN(auto reader, records_->OpenSegment(id, path, version));
    json out = InfoJson(reader->info());
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
        out["data"] = std::move(data);
      } else {
        out["text"] = std::string(AsString(content));
      }
      sodium_memzero(content.data(), content.size());
    }
    res.set_content(out.dump(), "application/json");
    return Status::Ok();
  }

  Status ListVersions(const Request& req, Response& res) {
    MV_RETURN_IF_ERROR(CheckQuery(req, {}));
    MV_ASSIGN_OR_RETURN(std::string path, SegmentPathParam(req));
    MV_ASSIGN_OR_RETURN(auto versions, records_->ListVersions(req.matches[1].str(), path));
    json arr = json::array();
    for (const auto& v : versions) {
      arr.push_back(InfoJson(v));
    }
    res.set_content(json{{"path", path}, {"versions", arr}}.dump(), "application/json");
    return Status::Ok();
  }

  void StreamingUpload(const std::string& pattern, const std::string& name) {
    data_routes_.push_back("PUT " + name);
    server_->Put(pattern,
                 [this, name](const Request& req, Response& res, const ContentReader& reader) {
                   t_ctx.route = name;
                   Status st = Upload(req, res, reader);
                   if (!st.ok()) {  // body may be unread: never parse it as a request
                     res.set_header("Connection", "close");
                   }
                   Finish(res, st);
                 });
  }

  Status Upload(const Request& req, Response& res, const ContentReader& reader) {
    MV_RETURN_IF_ERROR(CheckQuery(req, {"sensitivity"}));
    MV_ASSIGN_OR_RETURN(std::string path, SegmentPathParam(req));
    std::optional<int> sensitivity;
    if (req.has_param("sensitivity")) {
      const std::string s = req.get_param_value("sensitivity");
      if (s.size() != 1 || s[0] < '0' || s[0] > '4') {
        return Status::InvalidArgument("sensitivity must be an integer between 0 and 4");
      }
      sensitivity = s[0] - '0';
    }
    if (!req.has_header("Content-Type")) {
      return Status::InvalidArgument("attachment upload needs a Content-Type");
    }
    if (req.is_multipart_form_data()) {
      return Status::InvalidArgument("send the attachment as the raw request body, not multipart");
    }
    MV_ASSIGN_OR_RETURN(auto writer, records_->BeginAttachment(req.matches[1].str(), path,
                                                               req.get_header_value("Content-Type"),
                                                               sensitivity, "bootstrap-admin"));
    Status write_status;
    reader([&](const char* data, size_t len) {
      write_status = writer->Append(ByteView(reinterpret_cast<const uint8_t*>(data), len));
      return write_status.ok();
    });
    MV_RETURN_IF_ERROR(write_status);
    MV_ASSIGN_OR_RETURN(auto info, writer->Commit());
    res.status = 201;
    res.set_content(InfoJson(info).dump(), "application/json");
    return Status::Ok();
  }

  Status DownloadAttachment(const Request& req, Response& res) {
    MV_RETURN_IF_ERROR(CheckQuery(req, {"version"}));
    MV_ASSIGN_OR_RETURN(std::string path, SegmentPathParam(req));
    MV_ASSIGN_OR_RETURN(uint64_t version, VersionParam(req));
    MV_ASSIGN_OR_RETURN(auto reader_owned,
                        records_->OpenSegment(req.matches[1].str(), path, version));
    std::shared_ptr<record::SegmentReader> reader(std::move(reader_owned));
    const auto info = reader->info();
    res.set_header("X-Segment-Version", std::to_string(info.version));
    res.set_header("Content-Disposition", "attachment");
    auto pending = std::make_shared<Bytes>();
    res.set_content_provider(
        info.size, info.media_type,
        [reader, pending](size_t offset, size_t length, httplib::DataSink& sink) {
          (void)offset;
          (void)length;
          pending->clear();
          Status st = reader->ReadSome(crypto::kEnvelopeChunkSize, *pending);
          if (!st.ok()) {
            // Headers are gone; abort the connection so the client sees a
            // short body instead of unauthenticated bytes.
            Log(LogLevel::kError, "integrity.failure.stream", {{"route", "attachments"}});
            return false;
          }
          if (pending->empty()) {
            return false;  // shorter than its metadata says: abort
          }
          return sink.write(reinterpret_cast<const char*>(pending->data()), pending->size());
        });
    return Status::Ok();
  }

  ServerOptions options_;
  record::RecordService* records_;
  store::MetadataStore* metadata_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int bound_port_ = 0;
  RequestMetrics metrics_;
  std::vector<std::string> data_routes_;
};

}  // namespace

Result<std::unique_ptr<Server>> CreateServer(const ServerOptions& options,
                                             record::RecordService* records,
                                             store::MetadataStore* metadata) {
  if (records == nullptr || metadata == nullptr) {
    return Status::Internal("server needs the record service and the metadata store");
  }
  if (options.worker_threads < 2 || options.worker_threads > 1024) {
    return Status::InvalidArgument("worker_threads must be between 2 and 1024");
  }
  return std::unique_ptr<Server>(std::make_unique<HttpServer>(options, records, metadata));
}

}  // namespace medvault::api
