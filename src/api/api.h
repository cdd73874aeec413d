// medvault HTTP API: the public interface of src/api.
//
// The only module that knows HTTP. It authenticates the caller (account
// sessions from src/auth), asks the decision point (src/policy) on every data
// route, validates every input (size, JSON shape, types, unknown fields,
// UTF-8, paths), calls the services and maps Status codes to HTTP in one place
// (HttpStatusFor).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/status.h"
#include "ledger/ledger.h"
#include "policy/policy.h"
#include "record/record.h"
#include "store/store.h"

namespace medvault::auth {
class AccountService;
}
namespace medvault::access {
class AccessService;
}

namespace medvault::api {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;            // 0 picks a free port (tests)
  std::string tls_cert_path;  // both set: HTTPS
  std::string tls_key_path;
  uint64_t max_json_bytes = 1024 * 1024;
  uint64_t max_attachment_bytes = 64ull * 1024 * 1024;
  // The web portal's files (build/web); empty: no portal, only the API.
  std::string web_dir;
  // C-CDA / FHIR documents posted for import.
  uint64_t max_document_bytes = 32ull * 1024 * 1024;
  // Connections wait for bytes on `io_threads` (event-driven: a slow client
  // costs a buffer, not a thread); handlers run on `worker_threads`, which
  // they may block (storage, group commit).
  int io_threads = 2;
  int worker_threads = 64;
  int keep_alive_max_requests = 10000;
  int read_timeout_seconds = 30;
  // Slow clients (docs/api.md, "Limits"): the TLS handshake, request line and
  // headers must arrive within header_timeout_seconds; a body within
  // body_timeout_seconds plus one second per 64 KiB received. One peer
  // address (IPv6: its /64) holds at most max_connections_per_peer
  // connections, and the server max_connections in all; more are closed at
  // once.
  int header_timeout_seconds = 5;
  int body_timeout_seconds = 30;
  int max_connections_per_peer = 64;
  int max_connections = 256;
  // The audience the server accepts access tokens for.
  std::string audience = "medvault-api";
  // SHA-256 of the metrics scrape token (the data directory's metrics.token):
  // it opens GET /metrics and nothing else. Empty: only operator sessions.
  Bytes metrics_token_sha256;
};

// The server. Start() binds and serves on a background thread; Stop() shuts
// down and joins. Thread-safe. The service and stores must outlive it.
class Server {
 public:
  virtual ~Server() = default;
  // Binds the listening socket. FailedPrecondition for a non-loopback host
  // without TLS; Unavailable when the address is in use.
  virtual Status Start() = 0;
  virtual void Stop() = 0;
  // Blocks until Stop() is called (from a signal handler thread, for example).
  virtual void Wait() = 0;
  virtual int port() const = 0;
  // "METHOD /template" of every data route (those that must ask the
  // decision point), for the test that enumerates them.
  virtual std::vector<std::string> DataRoutes() const = 0;
};

// What the server serves; everything must outlive it.
struct Services {
  record::RecordService* records = nullptr;
  store::MetadataStore* metadata = nullptr;
  auth::AccountService* accounts = nullptr;
  access::AccessService* access = nullptr;
  const policy::DecisionPoint* decisions = nullptr;
  // The ledger: every decision is appended (durably, before the answer), and
  // checkpoints, proofs and a patient's access history are served from it.
  ledger::SqliteLedger* ledger = nullptr;
  const ledger::Signer* ledger_signer = nullptr;
  std::string ledger_origin;
  std::vector<ledger::VerifierKey> witnesses;
  size_t witness_quorum = 1;
  // Keyed pseudonym of a patient id for ledger entries.
  std::function<std::string(std::string_view patient_id)> patient_ref;
  // The key of those pseudonyms, for the enforcement layer's ledger entries.
  const SecretBytes* patient_ref_key = nullptr;
  // The latest integrity scrub report (JSON), empty when none yet.
  std::function<std::string()> scrub_report;
  // More Prometheus text for /metrics (ledger, scrub), appended as is.
  std::function<std::string()> extra_metrics;
};

Result<std::unique_ptr<Server>> CreateServer(const ServerOptions& options,
                                             const Services& services);

// True for 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackHost(std::string_view host);

// The one mapping from Status codes to HTTP status codes.
int HttpStatusFor(StatusCode code);

// The JSON error body: {"error":{"code":"...","message":"...","request_id":"..."}}.
std::string ErrorBody(const Status& status, std::string_view request_id);

}  // namespace medvault::api
