// Internal to src/api: the connection layer under cpp-httplib that bounds
// what one client can hold.
//
// httplib 0.11 reads a request with per-read timeouts only (a client sending
// one byte a second holds its worker forever), lets the request line and the
// header block grow without bound, parses header values loosely (it decodes
// %xx in every value, takes the first of two Content-Length headers, and
// treats any Transfer-Encoding but "chunked" as none) and keeps a
// connection open after an answer that said "Connection: close". This layer
// replaces httplib's per-connection loop (Server::process_and_close_socket)
// and stream, keeping its request parser and routing:
//  * a gate per peer address (IPv6 by /64) closes a peer's connections
//    beyond the limit at once, before any byte is read or any TLS handshake;
//  * the TLS handshake and the request head (request line and headers) must
//    arrive within a total deadline; the body within a deadline that grows
//    with the bytes received (a minimum average rate, like Apache's
//    mod_reqtimeout); a client that misses one is answered 408 and closed;
//  * the head is limited in bytes and lines (431) and checked as raw bytes
//    (HeadScanner): framing headers must be unambiguous (400);
//  * the pool grows past its ready workers up to a maximum of connections,
//    so that slow clients of several peers do not starve the others.
#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace medvault::api::internal {

struct GuardOptions {
  int header_timeout_seconds = 5;                // TLS handshake + request line + headers
  int body_timeout_seconds = 30;                 // the body, before the rate extension
  size_t min_body_bytes_per_second = 64 * 1024;  // each such amount adds a second
  int idle_timeout_seconds = 5;                  // between requests of a keep-alive connection
  int read_timeout_seconds = 30;                 // one read of the body without any byte
  int write_timeout_seconds = 30;                // one write without progress
  size_t max_connections_per_peer = 16;
  size_t max_head_bytes = 32 * 1024;  // request line + headers
  size_t max_header_lines = 100;
  bool tls = false;  // answers we write ourselves carry HSTS
};

// The key connections are counted under: the IPv4 address, or the /64
// prefix of an IPv6 address (one subscriber usually holds a whole /64);
// an IPv4-mapped IPv6 address counts as its IPv4 address.
std::string PeerKey(std::string_view address);

// Counts open connections per peer key. Thread-safe.
class PeerGate {
 public:
  explicit PeerGate(size_t max_per_peer) : max_(max_per_peer) {}
  // True (and counted) when the peer is below its limit.
  bool Acquire(const std::string& key);
  void Release(const std::string& key);
  size_t Open(const std::string& key) const;

 private:
  const size_t max_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, size_t> open_;
};

// Checks a request head as raw bytes, one byte at a time, in the order
// httplib reads them. The head ends at the empty line ("\r\n" after a line
// end). Refuses (status 400, or 431 for size): bare CR or LF line ends,
// obsolete line folding, header names that are not tokens, white space
// before the colon, control characters in values, more than one
// Content-Length or Transfer-Encoding, a Content-Length that is not digits
// (httplib would read "%31" as "1"), a Transfer-Encoding other than
// "chunked", both of them, and '%' in the headers the server interprets
// (httplib decodes %xx in header values).
class HeadScanner {
 public:
  HeadScanner(size_t max_bytes, size_t max_lines) : max_bytes_(max_bytes), max_lines_(max_lines) {}
  enum class State { kMore, kDone, kRefused };
  State Feed(char c);
  State state() const { return state_; }
  size_t bytes() const { return bytes_; }
  int refusal_status() const { return refusal_status_; }
  const std::string& refusal() const { return refusal_; }
  // Valid once kDone.
  bool has_content_length() const { return content_length_count_ > 0; }
  uint64_t content_length() const { return content_length_; }
  bool chunked() const { return transfer_encoding_count_ > 0; }

 private:
  State Refuse(int status, std::string why);
  State EndLine();
  bool CheckHeaderLine(std::string_view line);

  size_t max_bytes_;
  size_t max_lines_;
  State state_ = State::kMore;
  size_t bytes_ = 0;
  size_t lines_ = 0;
  std::string line_;  // the current line without its end
  bool cr_ = false;   // the previous byte was CR
  int refusal_status_ = 0;
  std::string refusal_;
  size_t content_length_count_ = 0;
  uint64_t content_length_ = 0;
  size_t transfer_encoding_count_ = 0;
};

// A task queue that keeps `ready` workers and starts more, up to `max`,
// while every worker is busy. At most `max` tasks wait in the queue; a task
// beyond that runs at once on the caller's thread with ShedThisTask() true
// (the connection guard then only closes its socket), so a flood of
// connections cannot hold descriptors without bound.
bool ShedThisTask();
class ElasticPool final : public httplib::TaskQueue {
 public:
  ElasticPool(size_t ready, size_t max);
  ~ElasticPool() override;
  void enqueue(std::function<void()> fn) override;
  void shutdown() override;

 private:
  void Work();

  const size_t max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  bool shutdown_ = false;
};

// What the guarded connection loop reports to the server.
struct GuardHooks {
  // Before each request is read (per-request state of the handling thread).
  std::function<void()> request_start;
  // A request refused or cut off by the guard: status and a short code
  // ("peer-limit", "head-timeout", "body-timeout", "head-too-large",
  // "bad-framing"). Never request content.
  std::function<void(int status, std::string_view code)> rejected;
};

// httplib listens with a backlog of 5: a burst of connections (slow clients
// among them) would have the kernel drop SYNs, and everyone else wait for
// their retransmission. Widens the backlog of a guarded server's bound
// socket (Linux takes a second listen() as a new backlog). REQUIRES: bound.
void WidenListenBacklog(httplib::Server& server, int backlog);

// The httplib server (plain) or TLS server with the guarded connection loop.
// REQUIRES: hooks and options fixed before listen.
std::unique_ptr<httplib::Server> NewGuardedServer(const GuardOptions& options, GuardHooks hooks);
std::unique_ptr<httplib::Server> NewGuardedTlsServer(const GuardOptions& options, GuardHooks hooks,
                                                     const std::string& cert_path,
                                                     const std::string& key_path);

}  // namespace medvault::api::internal
