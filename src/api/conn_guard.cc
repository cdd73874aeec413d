#include "api/conn_guard.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <type_traits>
#include <utility>

#include "api/api.h"
#include "common/ids.h"
#include "common/status.h"

namespace medvault::api::internal {

using Clock = std::chrono::steady_clock;

std::string PeerKey(std::string_view address) {
  if (address.find(':') == std::string_view::npos) {
    return std::string(address);
  }
  in6_addr a6{};
  const std::string text(address);
  if (inet_pton(AF_INET6, text.c_str(), &a6) != 1) {
    return text;
  }
  static constexpr std::array<uint8_t, 12> kMapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(kMapped.begin(), kMapped.end(), a6.s6_addr)) {
    char v4[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, a6.s6_addr + 12, v4, sizeof(v4));
    return v4;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string key;
  for (int i = 0; i < 8; ++i) {
    key.push_back(kHex[a6.s6_addr[i] >> 4]);
    key.push_back(kHex[a6.s6_addr[i] & 15]);
    if (i % 2 == 1) {
      key.push_back(':');
    }
  }
  key += ":/64";
  return key;
}

bool PeerGate::Acquire(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t& n = open_[key];
  if (n >= max_) {
    if (n == 0) {
      open_.erase(key);
    }
    return false;
  }
  ++n;
  return true;
}

void PeerGate::Release(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = open_.find(key);
  if (it != open_.end() && --it->second == 0) {
    open_.erase(it);
  }
}

size_t PeerGate::Open(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = open_.find(key);
  return it == open_.end() ? 0 : it->second;
}

// ---------------------------------------------------------------------------
// HeadScanner

namespace {

bool IsTchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
    return true;
  }
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// Headers the server or httplib interprets; httplib hands their values on
// %xx-decoded, so a '%' would make the value read differ from the one sent.
constexpr std::array<std::string_view, 9> kInterpreted = {"content-length",  "transfer-encoding",
                                                          "authorization",   "content-type",
                                                          "connection",      "expect",
                                                          "range",           "host",
                                                          "x-purpose-of-use"};

}  // namespace

HeadScanner::State HeadScanner::Refuse(int status, std::string why) {
  state_ = State::kRefused;
  refusal_status_ = status;
  refusal_ = std::move(why);
  return state_;
}

HeadScanner::State HeadScanner::Feed(char c) {
  if (state_ != State::kMore) {
    return state_;
  }
  if (++bytes_ > max_bytes_) {
    return Refuse(431,
                  "the request line and headers exceed " + std::to_string(max_bytes_) + " bytes");
  }
  if (cr_) {
    cr_ = false;
    if (c != '\n') {
      return Refuse(400, "a carriage return without a line feed in the request head");
    }
    return EndLine();
  }
  if (c == '\r') {
    cr_ = true;
    return state_;
  }
  if (c == '\n') {
    return Refuse(400, "the request head's lines must end with CRLF");
  }
  line_.push_back(c);
  return state_;
}

HeadScanner::State HeadScanner::EndLine() {
  ++lines_;
  if (lines_ == 1) {
    // The request line: httplib parses it; control characters (NUL among
    // them, which would cut C strings short) are refused here.
    for (char c : line_) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) {
        return Refuse(400, "a control character in the request line");
      }
    }
    line_.clear();
    return state_;
  }
  if (line_.empty()) {
    if (content_length_count_ > 0 && transfer_encoding_count_ > 0) {
      return Refuse(400, "Content-Length and Transfer-Encoding together");
    }
    state_ = State::kDone;
    return state_;
  }
  if (lines_ - 1 > max_lines_) {
    return Refuse(431, "more than " + std::to_string(max_lines_) + " header lines");
  }
  if (!CheckHeaderLine(line_)) {
    return state_;
  }
  line_.clear();
  return state_;
}

bool HeadScanner::CheckHeaderLine(std::string_view line) {
  if (line.front() == ' ' || line.front() == '\t') {
    Refuse(400, "obsolete line folding in a header");
    return false;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    Refuse(400, "a header line without a name and a colon");
    return false;
  }
  const std::string_view name = line.substr(0, colon);
  if (!std::all_of(name.begin(), name.end(), IsTchar)) {
    Refuse(400, "a header name with a character outside the token set (or space before ':')");
    return false;
  }
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
    value.remove_prefix(1);
  }
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
    value.remove_suffix(1);
  }
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) {
      Refuse(400, "a control character in a header value");
      return false;
    }
  }
  const bool interpreted =
      std::any_of(kInterpreted.begin(), kInterpreted.end(),
                  [&](std::string_view known) { return EqualsNoCase(name, known); });
  if (interpreted && value.find('%') != std::string_view::npos) {
    Refuse(400, "'%' in the " + std::string(name) + " header");
    return false;
  }
  if (EqualsNoCase(name, "content-length")) {
    if (++content_length_count_ > 1) {
      Refuse(400, "more than one Content-Length");
      return false;
    }
    if (value.empty() || value.size() > 19 ||
        !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      Refuse(400, "Content-Length must be a decimal number");
      return false;
    }
    uint64_t n = 0;
    for (char c : value) {
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    content_length_ = n;
  } else if (EqualsNoCase(name, "transfer-encoding")) {
    if (++transfer_encoding_count_ > 1) {
      Refuse(400, "more than one Transfer-Encoding");
      return false;
    }
    if (!EqualsNoCase(value, "chunked")) {
      Refuse(400, "the only Transfer-Encoding accepted is chunked");
      return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// ElasticPool

ElasticPool::ElasticPool(size_t ready, size_t max) : max_(std::max(ready, max)) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < ready; ++i) {
    threads_.emplace_back([this] { Work(); });
  }
}

ElasticPool::~ElasticPool() { shutdown(); }

namespace {
// Set while the accept thread runs a connection's task inline because the
// queue is full: the guard then closes the socket at once (ShedThisTask).
thread_local bool t_shed = false;
}  // namespace

bool ShedThisTask() { return t_shed; }

void ElasticPool::enqueue(std::function<void()> fn) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (jobs_.size() >= max_ && !shutdown_) {
      // Every worker busy and as many connections again waiting: shed this
      // one now rather than hold its descriptor in an unbounded queue (the
      // task only closes the socket; see process_and_close_socket).
      lock.unlock();
      t_shed = true;
      fn();
      t_shed = false;
      return;
    }
    jobs_.push_back(std::move(fn));
    if (idle_ < jobs_.size() && threads_.size() < max_ && !shutdown_) {
      threads_.emplace_back([this] { Work(); });
    }
  }
  cv_.notify_one();
}

void ElasticPool::shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (std::thread& t : threads) {
    t.join();
  }
}

void ElasticPool::Work() {
  for (;;) {
    std::function<void()> fn;
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++idle_;
      cv_.wait(lock, [this] { return !jobs_.empty() || shutdown_; });
      --idle_;
      if (jobs_.empty()) {
        return;  // shut down with nothing left to run
      }
      fn = std::move(jobs_.front());
      jobs_.pop_front();
    }
    fn();
  }
}

// ---------------------------------------------------------------------------
// The guarded connection

namespace {

constexpr std::string_view kHsts = "max-age=31536000";
constexpr auto kPollSlice = std::chrono::milliseconds(100);

enum class Io { kOk, kWantRead, kWantWrite, kEof, kError };
enum class Wait { kReady, kTimeout, kStop };

// A connected, non-blocking socket, plain or TLS.
struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;

  ssize_t Read(char* p, size_t n, Io* io) const {
    n = std::min<size_t>(n, INT_MAX);
    if (ssl != nullptr) {
      ERR_clear_error();
      const int r = SSL_read(ssl, p, static_cast<int>(n));
      return r > 0 ? r : (*io = SslIo(r), -1);
    }
    for (;;) {
      const ssize_t r = ::recv(fd, p, n, MSG_DONTWAIT);
      if (r > 0) {
        return r;
      }
      if (r == 0) {
        *io = Io::kEof;
      } else if (errno == EINTR) {
        continue;
      } else {
        *io = (errno == EAGAIN || errno == EWOULDBLOCK) ? Io::kWantRead : Io::kError;
      }
      return -1;
    }
  }

  ssize_t Write(const char* p, size_t n, Io* io) const {
    n = std::min<size_t>(n, INT_MAX);
    if (ssl != nullptr) {
      ERR_clear_error();
      const int r = SSL_write(ssl, p, static_cast<int>(n));
      return r > 0 ? r : (*io = SslIo(r), -1);
    }
    for (;;) {
      const ssize_t r = ::send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (r >= 0) {
        return r;
      }
      if (errno == EINTR) {
        continue;
      }
      *io = (errno == EAGAIN || errno == EWOULDBLOCK) ? Io::kWantWrite : Io::kError;
      return -1;
    }
  }

  bool Pending() const { return ssl != nullptr && SSL_pending(ssl) > 0; }

  Io SslIo(int r) const {
    switch (SSL_get_error(ssl, r)) {
      case SSL_ERROR_WANT_READ:
        return Io::kWantRead;
      case SSL_ERROR_WANT_WRITE:
        return Io::kWantWrite;
      case SSL_ERROR_ZERO_RETURN:
        return Io::kEof;
      default:
        return Io::kError;
    }
  }
};

// Waits until fd is readable (or writable) or the deadline passes, in short
// slices so that a stopping server is noticed.
Wait WaitFor(int fd, bool write, Clock::time_point deadline, const std::function<bool()>& stop) {
  for (;;) {
    if (stop()) {
      return Wait::kStop;
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      return Wait::kTimeout;
    }
    const auto slice = std::min<Clock::duration>(deadline - now, kPollSlice);
    pollfd p{fd, static_cast<short>(write ? POLLOUT : POLLIN), 0};
    const int ms = static_cast<int>(
        std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::milliseconds>(slice).count()));
    const int r = ::poll(&p, 1, ms);
    if (r > 0) {
      return Wait::kReady;  // readable, writable, hung up or failed: the next call tells
    }
    if (r < 0 && errno != EINTR) {
      return Wait::kReady;
    }
  }
}

std::string NumericAddress(const sockaddr_storage& ss, socklen_t len, int* port) {
  char host[NI_MAXHOST] = {};
  char serv[NI_MAXSERV] = {};
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&ss), len, host, sizeof(host), serv,
                  sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return "";
  }
  if (port != nullptr) {
    *port = std::atoi(serv);
  }
  return host;
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    default:
      return "Error";
  }
}

// The stream httplib's request parser and handlers read from and write to.
class GuardedStream final : public httplib::Stream {
 public:
  GuardedStream(Conn conn, const GuardOptions& options, const GuardHooks& hooks,
                std::function<bool()> stop)
      : conn_(conn),
        options_(options),
        hooks_(hooks),
        stop_(std::move(stop)),
        head_(options.max_head_bytes, options.max_header_lines) {
    buf_.resize(16 * 1024);
  }

  // Starts a request whose head must be complete by `head_deadline`.
  void BeginRequest(Clock::time_point head_deadline) {
    head_ = HeadScanner(options_.max_head_bytes, options_.max_header_lines);
    head_deadline_ = head_deadline;
    in_body_ = false;
    body_bytes_ = 0;
    response_head_.clear();
    response_head_done_ = false;
    response_closes_ = false;
  }

  // Waits for the next request of a keep-alive connection.
  bool WaitForRequest(Clock::time_point deadline) {
    if (dead_) {
      return false;
    }
    if (off_ < len_ || conn_.Pending()) {
      return true;
    }
    return WaitFor(conn_.fd, false, deadline, stop_) == Wait::kReady;
  }

  // The connection cannot carry another request: broken, the answer said
  // "Connection: close", the head was incomplete, a chunked body (whose end
  // the handler may not have read), or a body the handler left unread.
  bool MustClose() const {
    return dead_ || response_closes_ || !in_body_ || head_.chunked() ||
           (head_.has_content_length() && body_bytes_ < head_.content_length());
  }

  // The client may still be sending this request (a body left unread, or
  // a request refused mid-way): closing at once would make the kernel reset
  // the connection and lose the answer already written.
  bool MayHaveUnread() const {
    return refused_ || (in_body_ && (head_.chunked() || (head_.has_content_length() &&
                                                         body_bytes_ < head_.content_length())));
  }

  bool is_readable() const override {
    if (dead_) {
      return false;
    }
    return off_ < len_ || conn_.Pending() ||
           WaitFor(conn_.fd, false, ReadDeadline(), stop_) == Wait::kReady;
  }

  bool is_writable() const override { return !dead_; }

  ssize_t read(char* ptr, size_t size) override {
    if (dead_) {
      return -1;
    }
    if (size == 0) {
      return 0;
    }
    if (off_ == len_) {
      const ssize_t n = Fill();
      if (n <= 0) {
        return n;
      }
    }
    size_t give = std::min(size, len_ - off_);
    if (!in_body_) {
      // httplib reads the head byte by byte; stop at its end so that body
      // bytes are counted as body.
      size_t i = 0;
      while (i < give) {
        const HeadScanner::State s = head_.Feed(buf_[off_ + i]);
        ++i;
        if (s == HeadScanner::State::kRefused) {
          Refuse(head_.refusal_status(),
                 head_.refusal_status() == 431 ? "head-too-large" : "bad-framing",
                 head_.refusal_status() == 431 ? StatusCode::kResourceExhausted
                                               : StatusCode::kInvalidArgument,
                 head_.refusal());
          return -1;
        }
        if (s == HeadScanner::State::kDone) {
          in_body_ = true;
          body_start_ = Clock::now();
          break;
        }
      }
      give = i;
    } else {
      body_bytes_ += give;
    }
    std::memcpy(ptr, buf_.data() + off_, give);
    off_ += give;
    return static_cast<ssize_t>(give);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (dead_) {
      return -1;
    }
    NoteResponseHead(ptr, size);
    if (!WriteAll(ptr, size, options_.write_timeout_seconds)) {
      dead_ = true;
      return -1;
    }
    return static_cast<ssize_t>(size);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (getpeername(conn_.fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      ip = NumericAddress(ss, len, &port);
    }
  }

  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (getsockname(conn_.fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      ip = NumericAddress(ss, len, &port);
    }
  }

  socket_t socket() const override { return conn_.fd; }

 private:
  // The deadline of the next read: the head's total one; in the body, the
  // body's (growing with the bytes received) or the per-read one if sooner.
  Clock::time_point ReadDeadline() const {
    if (!in_body_) {
      return head_deadline_;
    }
    const auto extension = std::chrono::seconds(
        options_.min_body_bytes_per_second == 0
            ? 0
            : static_cast<int64_t>(body_bytes_ / options_.min_body_bytes_per_second));
    const auto total =
        body_start_ + std::chrono::seconds(options_.body_timeout_seconds) + extension;
    const auto per_read = Clock::now() + std::chrono::seconds(options_.read_timeout_seconds);
    return std::min(per_read, total);
  }

  ssize_t Fill() {
    off_ = 0;
    len_ = 0;
    for (;;) {
      Io io = Io::kOk;
      const ssize_t n = conn_.Read(buf_.data(), buf_.size(), &io);
      if (n > 0) {
        len_ = static_cast<size_t>(n);
        return n;
      }
      if (io == Io::kEof) {
        return 0;
      }
      if (io == Io::kError) {
        dead_ = true;
        return -1;
      }
      const Wait w = WaitFor(conn_.fd, io == Io::kWantWrite, ReadDeadline(), stop_);
      if (w == Wait::kReady) {
        continue;
      }
      if (w == Wait::kTimeout && (in_body_ || head_.bytes() > 0)) {
        Refuse(408, in_body_ ? "body-timeout" : "head-timeout", StatusCode::kInvalidArgument,
               in_body_ ? std::string("the request body did not arrive in time")
                        : "the request head did not arrive within " +
                              std::to_string(options_.header_timeout_seconds) + " seconds");
      } else if (w == Wait::kTimeout && hooks_.rejected) {
        hooks_.rejected(408, "idle-timeout");
      }
      dead_ = true;
      return -1;
    }
  }

  bool WriteAll(const char* p, size_t n, int timeout_seconds) {
    auto deadline = Clock::now() + std::chrono::seconds(timeout_seconds);
    size_t done = 0;
    while (done < n) {
      Io io = Io::kOk;
      const ssize_t w = conn_.Write(p + done, n - done, &io);
      if (w > 0) {
        done += static_cast<size_t>(w);
        deadline = Clock::now() + std::chrono::seconds(timeout_seconds);
        continue;
      }
      if (w == 0 || io == Io::kError || io == Io::kEof) {
        return false;
      }
      if (WaitFor(conn_.fd, io != Io::kWantRead, deadline, stop_) != Wait::kReady) {
        return false;
      }
    }
    return true;
  }

  // Watches the head of this request's answer for "Connection: close".
  void NoteResponseHead(const char* p, size_t n) {
    if (response_head_done_) {
      return;
    }
    response_head_.append(p, std::min<size_t>(n, 64 * 1024));
    const size_t end = response_head_.find("\r\n\r\n");
    if (end != std::string::npos || response_head_.size() > 64 * 1024) {
      std::string head = response_head_.substr(0, end);
      for (char& c : head) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      const bool interim = head.starts_with("http/1.1 1");  // 100 Continue: the next one
      response_closes_ = !interim && head.find("\r\nconnection: close") != std::string::npos;
      response_head_done_ = !interim;
      response_head_.clear();
    }
  }

  // Answers with `status` ourselves (httplib is still reading) and ends the
  // connection: every later read and write fails.
  void Refuse(int status, std::string_view code, StatusCode status_code,
              const std::string& message) {
    if (dead_) {
      return;
    }
    dead_ = true;
    refused_ = true;
    const std::string id = NewRandomId().substr(0, 16);
    const std::string body = ErrorBody(Status(status_code, message), id);
    std::string out =
        "HTTP/1.1 " + std::to_string(status) + " " + std::string(ReasonPhrase(status)) +
        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\nConnection: close\r\nCache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\nX-Request-Id: " +
        id + "\r\n";
    if (options_.tls) {
      out += "Strict-Transport-Security: " + std::string(kHsts) + "\r\n";
    }
    out += "\r\n" + body;
    (void)WriteAll(out.data(), out.size(), 1);
    if (hooks_.rejected) {
      hooks_.rejected(status, code);
    }
  }

  Conn conn_;
  const GuardOptions& options_;
  const GuardHooks& hooks_;
  std::function<bool()> stop_;
  std::vector<char> buf_;
  size_t off_ = 0;
  size_t len_ = 0;
  bool dead_ = false;
  bool refused_ = false;
  HeadScanner head_;
  Clock::time_point head_deadline_;
  bool in_body_ = false;
  Clock::time_point body_start_;
  uint64_t body_bytes_ = 0;
  std::string response_head_;
  bool response_head_done_ = false;
  bool response_closes_ = false;
};

class Listener {
 public:
  virtual ~Listener() = default;
  virtual void Relisten(int backlog) = 0;
};

template <class Base>
class GuardedServer final : public Base, public Listener {
 public:
  void Relisten(int backlog) override {
    const socket_t s = this->svr_sock_;
    if (s != INVALID_SOCKET) {
      ::listen(s, backlog);
    }
  }

  template <class... Args>
  GuardedServer(const GuardOptions& options, GuardHooks hooks, Args&&... args)
      : Base(std::forward<Args>(args)...),
        options_(options),
        hooks_(std::move(hooks)),
        gate_(options.max_connections_per_peer) {
    if (options_.tls) {
      httplib::Headers hsts;
      hsts.emplace("Strict-Transport-Security", std::string(kHsts));
      this->set_default_headers(std::move(hsts));
    }
  }

 private:
  bool process_and_close_socket(socket_t sock) override {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    std::string key;
    if (ShedThisTask()) {
      if (hooks_.rejected) {
        hooks_.rejected(503, "overloaded");
      }
      ::close(sock);
      return false;
    }
    if (getpeername(sock, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      key = PeerKey(NumericAddress(ss, len, nullptr));
    }
    if (!gate_.Acquire(key)) {
      if (hooks_.rejected) {
        hooks_.rejected(503, "peer-limit");
      }
      ::close(sock);
      return false;
    }
    const int flags = ::fcntl(sock, F_GETFL, 0);
    ::fcntl(sock, F_SETFL, flags | O_NONBLOCK);
    const auto head_deadline = Clock::now() + std::chrono::seconds(options_.header_timeout_seconds);
    auto stop = [this] { return this->svr_sock_ == INVALID_SOCKET; };
    Conn conn{sock, nullptr};
    bool ok = true;
    if constexpr (std::is_same_v<Base, httplib::SSLServer>) {
      conn.ssl = SSL_new(this->ssl_context());
      ok = conn.ssl != nullptr && SSL_set_fd(conn.ssl, sock) == 1 &&
           Handshake(conn, head_deadline, stop);
    }
    bool linger = false;
    if (ok) {
      linger = Serve(conn, head_deadline, stop);
    }
    if (conn.ssl != nullptr) {
      if (ok) {
        ERR_clear_error();
        SSL_shutdown(conn.ssl);  // best effort, non-blocking
      }
      SSL_free(conn.ssl);
    }
    if (linger) {
      // Lingering close: stop sending, then read and drop what the client
      // still sends for a short while, so that it reads our answer before
      // the connection ends.
      ::shutdown(sock, SHUT_WR);
      const auto until = Clock::now() + std::chrono::seconds(2);
      std::array<char, 16 * 1024> sink{};
      while (WaitFor(sock, false, until, stop) == Wait::kReady) {
        const ssize_t n = ::recv(sock, sink.data(), sink.size(), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
          break;
        }
      }
    }
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    gate_.Release(key);
    return ok;
  }

  bool Handshake(Conn& conn, Clock::time_point deadline, const std::function<bool()>& stop) {
    for (;;) {
      ERR_clear_error();
      const int r = SSL_accept(conn.ssl);
      if (r == 1) {
        return true;
      }
      const Io io = conn.SslIo(r);
      if (io != Io::kWantRead && io != Io::kWantWrite) {
        return false;
      }
      const Wait w = WaitFor(conn.fd, io == Io::kWantWrite, deadline, stop);
      if (w != Wait::kReady) {
        if (w == Wait::kTimeout && hooks_.rejected) {
          hooks_.rejected(408, "handshake-timeout");
        }
        return false;
      }
    }
  }

  // Serves the connection's requests; true when it ends with request bytes
  // possibly unread.
  bool Serve(const Conn& conn, Clock::time_point first_deadline,
             const std::function<bool()>& stop) {
    GuardedStream strm(conn, options_, hooks_, stop);
    size_t count = this->keep_alive_max_count_;
    bool first = true;
    while (count > 0 && !stop()) {
      if (!first) {
        const auto idle = Clock::now() + std::chrono::seconds(options_.idle_timeout_seconds);
        if (!strm.WaitForRequest(idle)) {
          break;
        }
      }
      strm.BeginRequest(first
                            ? first_deadline
                            : Clock::now() + std::chrono::seconds(options_.header_timeout_seconds));
      first = false;
      if (hooks_.request_start) {
        hooks_.request_start();
      }
      bool closed = false;
      const bool ok = this->process_request(strm, count == 1, closed, nullptr);
      if (!ok || closed || strm.MustClose()) {
        return strm.MayHaveUnread();
      }
      --count;
    }
    return false;
  }

  const GuardOptions options_;
  const GuardHooks hooks_;
  PeerGate gate_;
};

}  // namespace

void WidenListenBacklog(httplib::Server& server, int backlog) {
  if (auto* l = dynamic_cast<Listener*>(&server)) {
    l->Relisten(backlog);
  }
}

std::unique_ptr<httplib::Server> NewGuardedServer(const GuardOptions& options, GuardHooks hooks) {
  return std::make_unique<GuardedServer<httplib::Server>>(options, std::move(hooks));
}

std::unique_ptr<httplib::Server> NewGuardedTlsServer(const GuardOptions& options, GuardHooks hooks,
                                                     const std::string& cert_path,
                                                     const std::string& key_path) {
  return std::make_unique<GuardedServer<httplib::SSLServer>>(options, std::move(hooks),
                                                             cert_path.c_str(), key_path.c_str());
}

}  // namespace medvault::api::internal
