// Internal to src/api: the HTTP/1.1 front door, event-driven on Boost.Asio
// with Boost.Beast's parser (docs/architecture.md, "Decisions": the HTTP
// layer, chosen by measurement).
//
// Connections live on a few I/O threads: a connection waiting for bytes
// costs a buffer and a timer, not a thread, so slow clients cannot occupy
// the workers. A request goes to the worker pool twice at most: once after
// its head (authentication, routing, limits: the answer may be given before
// any body byte is read) and once after its body. The application's
// handlers run on the workers and may block (storage, group commit).
//
// What one client can hold is bounded here, before the application sees a
// byte:
//  * a gate per peer address (IPv6 by /64) and a total: connections beyond
//    either are closed at once, before any byte is read or TLS handshake;
//  * the TLS handshake and the request head must arrive within a total
//    deadline; the body within a deadline that grows with the bytes
//    received (a minimum average rate, like Apache's mod_reqtimeout); a
//    client that misses one is answered 408 and closed;
//  * the head is limited in bytes and lines (431) and checked as raw bytes
//    (HeadScanner) before Beast parses it: framing must be unambiguous (400);
//  * a body is read only when the application asked for it, up to the
//    limit it gave (413 beyond), and a connection whose body stays unread
//    is closed after the answer (lingering, so the answer is not reset).
// Nothing here logs request content; refusals are reported by code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <string_view>

#include "common/status.h"

namespace medvault::api::internal {

// Header names compare without case (RFC 9110).
struct CaseInsensitiveLess {
  bool operator()(const std::string& a, const std::string& b) const;
};
using Headers = std::multimap<std::string, std::string, CaseInsensitiveLess>;
using Params = std::multimap<std::string, std::string>;

struct Request {
  std::string method;  // as sent: GET, HEAD, POST, ...
  std::string target;  // the request-target as sent
  std::string path;    // the target before '?', not decoded
  Params params;       // the query, %xx and '+' decoded
  Headers headers;
  std::string body;         // the whole body, for routes that read one
  std::string remote_addr;  // numeric
  std::smatch matches;      // the route's pattern matched against `path`
  bool keep_alive = true;   // what the client asked for (version, Connection)
  // The application's own state of this request, kept between its calls.
  std::shared_ptr<void> app_state;

  bool has_header(std::string_view name) const;
  // The first value, or "".
  std::string get_header_value(std::string_view name) const;
  bool has_param(std::string_view name) const;
  std::string get_param_value(std::string_view name) const;
  bool is_multipart_form_data() const;
};

// Produces a streamed body piece by piece on a worker: appends the next
// piece to `out` and returns true, or returns false to cut the connection
// (the head is gone: the client sees a short body). Called until the
// announced length was delivered.
using BodyProvider = std::function<bool(std::string& out)>;

struct Response {
  int status = 200;
  Headers headers;
  std::string body;
  BodyProvider provider;  // when set: the body, of exactly provider_length bytes
  uint64_t provider_length = 0;
  // Set by the application when the answer may leave only later (its audit
  // entries are being made durable, docs/architecture.md "Answers held for
  // their audit"). Instead of writing the answer, the transport then calls
  // `hold` once, on the worker, with this response and a continuation, and
  // leaves the connection waiting (no thread waits). The application may
  // change the response, from any thread, and then calls `resume` exactly
  // once; the transport writes the response after that.
  std::function<void(Response& res, std::function<void()> resume)> hold;

  void set_header(std::string_view name, std::string_view value);
  bool has_header(std::string_view name) const;
  std::string get_header_value(std::string_view name) const;
  void set_content(std::string content, std::string_view content_type);
  void set_content_provider(uint64_t length, std::string_view content_type, BodyProvider provider);
  // Drops any body (an answer that must not leave after all).
  void clear_content();
};

// Reads a streamed request body on a worker: calls `sink` with each piece
// until the body ends (true) or the sink refuses a piece, the client stops
// sending or misses its deadline (false). Blocks the worker between pieces:
// offered only to routes that authenticated first.
using BodyReader = std::function<bool(const std::function<bool(const char*, size_t)>& sink)>;

// What the transport asks of the application. OnHead, OnBody and OnStream
// run on worker threads; one request's calls never overlap.
class Application {
 public:
  virtual ~Application() = default;

  enum class Next {
    kAnswer,  // `res` is the answer; the body (if any) stays unread
    kBody,    // read the whole body (at most `body_limit` bytes), then OnBody
    kStream,  // hand the body to OnStream as it arrives
  };
  // After the head, before any body byte is read.
  virtual Next OnHead(Request& req, Response& res, uint64_t* body_limit) = 0;
  // kBody: `req.body` holds the whole body.
  virtual void OnBody(Request& req, Response& res) = 0;
  // kStream: the body arrives through `reader` (at most body_limit bytes).
  virtual void OnStream(Request& req, Response& res, const BodyReader& reader) = 0;
  // A request the transport refused or cut off itself: status and a short
  // code ("peer-limit", "overloaded", "head-timeout", "body-timeout",
  // "head-too-large", "bad-framing", "body-too-large", "handshake-timeout",
  // "idle-timeout"). Never request content. Any thread.
  virtual void OnRejected(int status, std::string_view code) = 0;
  // After an answer the application made was written (or failed to be).
  // On an I/O thread: it must not block.
  virtual void OnAnswered(const Request& req, const Response& res) = 0;
};

struct TransportOptions {
  std::string host = "127.0.0.1";
  int port = 0;               // 0: any free port
  std::string tls_cert_path;  // both set: TLS
  std::string tls_key_path;
  int io_threads = 2;
  int worker_threads = 16;
  size_t max_connections = 256;
  size_t max_connections_per_peer = 16;
  // Streamed bodies being handed to workers at once (each holds a worker
  // while its client sends); beyond, 503. A worker is taken only when the
  // first piece of the body has arrived.
  size_t max_streams = 4;
  int header_timeout_seconds = 5;                // TLS handshake + request line + headers
  int body_timeout_seconds = 30;                 // the body, before the rate extension
  size_t min_body_bytes_per_second = 64 * 1024;  // each such amount adds a second
  int idle_timeout_seconds = 10;                 // between requests of a keep-alive connection
  int write_timeout_seconds = 30;                // one write without progress
  size_t max_head_bytes = 32 * 1024;             // request line + headers
  size_t max_header_lines = 100;
  size_t keep_alive_max_requests = 10000;
  int listen_backlog = 1024;
};

// The listening server. Start() binds and serves on background threads;
// Stop() closes every connection, waits for running handlers and joins.
class Transport {
 public:
  virtual ~Transport() = default;
  // InvalidArgument for an unusable TLS certificate or key; Unavailable
  // when the address cannot be bound.
  virtual Status Start() = 0;
  virtual void Stop() = 0;
  // Blocks until Stop() was called.
  virtual void Wait() = 0;
  virtual int port() const = 0;
};

// `app` must outlive the transport.
std::unique_ptr<Transport> NewTransport(const TransportOptions& options, Application* app);

// The reason phrase of an HTTP status ("Not Found").
std::string_view ReasonPhrase(int status);

// Splits a query string ("a=1&b=x%20y") into decoded parameters, as HTML
// forms encode them ('+' is a space; an invalid %xx stays as sent).
Params ParseQuery(std::string_view query);

}  // namespace medvault::api::internal
