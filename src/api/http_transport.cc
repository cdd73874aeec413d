// The HTTP/1.1 front door on Boost.Asio and Boost.Beast's parser. Contract
// and the limits it enforces: http_transport.h.
//
// Threads: `io_threads` run the io_context; every connection's handlers run
// on its own strand, so a connection's state needs no lock. Application
// calls run on an asio::thread_pool of `worker_threads`; their results come
// back to the connection's strand. The only state shared with a worker
// while a request is in flight is the streamed-body channel (a mutex and a
// condition variable).
#include "api/http_transport.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <future>
#include <limits>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "api/api.h"
#include "api/conn_guard.h"
#include "common/ids.h"

namespace medvault::api::internal {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

// ---------------------------------------------------------------------------
// Request and Response

namespace {

char Fold(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsFolded(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (Fold(a[i]) != Fold(b[i])) {
      return false;
    }
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  c = Fold(c);
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return -1;
}

std::string DecodeQueryPart(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 &&
               HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

bool CaseInsensitiveLess::operator()(const std::string& a, const std::string& b) const {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                      [](char x, char y) { return Fold(x) < Fold(y); });
}

bool Request::has_header(std::string_view name) const {
  return headers.find(std::string(name)) != headers.end();
}

std::string Request::get_header_value(std::string_view name) const {
  auto it = headers.find(std::string(name));
  return it == headers.end() ? std::string() : it->second;
}

bool Request::has_param(std::string_view name) const {
  return params.find(std::string(name)) != params.end();
}

std::string Request::get_param_value(std::string_view name) const {
  auto it = params.find(std::string(name));
  return it == params.end() ? std::string() : it->second;
}

bool Request::is_multipart_form_data() const {
  const std::string type = get_header_value("Content-Type");
  return type.size() >= 19 &&
         EqualsFolded(std::string_view(type).substr(0, 19), "multipart/form-data");
}

void Response::set_header(std::string_view name, std::string_view value) {
  // CR and LF would split the answer's head: such a value is never sent.
  if (value.find_first_of("\r\n") != std::string_view::npos ||
      name.find_first_of("\r\n: ") != std::string_view::npos) {
    return;
  }
  headers.emplace(std::string(name), std::string(value));
}

bool Response::has_header(std::string_view name) const {
  return headers.find(std::string(name)) != headers.end();
}

std::string Response::get_header_value(std::string_view name) const {
  auto it = headers.find(std::string(name));
  return it == headers.end() ? std::string() : it->second;
}

void Response::set_content(std::string content, std::string_view content_type) {
  body = std::move(content);
  provider = nullptr;
  provider_length = 0;
  headers.erase("Content-Type");
  set_header("Content-Type", content_type);
}

void Response::set_content_provider(uint64_t length, std::string_view content_type,
                                    BodyProvider p) {
  body.clear();
  provider = std::move(p);
  provider_length = length;
  headers.erase("Content-Type");
  set_header("Content-Type", content_type);
}

void Response::clear_content() {
  body.clear();
  provider = nullptr;
  provider_length = 0;
  headers.erase("Content-Type");
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return status < 400 ? "OK" : (status < 500 ? "Bad Request" : "Internal Server Error");
  }
}

Params ParseQuery(std::string_view query) {
  Params out;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) {
      continue;
    }
    const size_t eq = pair.find('=');
    out.emplace(DecodeQueryPart(pair.substr(0, eq)), eq == std::string_view::npos
                                                         ? std::string()
                                                         : DecodeQueryPart(pair.substr(eq + 1)));
  }
  return out;
}

// ---------------------------------------------------------------------------
// The server

namespace {

constexpr std::string_view kHsts = "max-age=31536000";
constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kStreamPiece = 64 * 1024;     // what a streamed body hands a worker at once
constexpr size_t kMaxFramingBytes = 8 * 1024;  // unparsed chunk framing held at once
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr Clock::time_point kNever = Clock::time_point::max();

// A streamed request body between the connection (producer, on its strand)
// and the worker running OnStream (consumer).
struct StreamChannel {
  std::mutex mu;
  std::condition_variable cv;
  std::string piece;
  bool has_piece = false;
  bool end = false;     // the body is complete (after the last piece)
  bool failed = false;  // the client stopped, timed out or sent a bad body
};

class ServerCore;

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void Cancel() = 0;  // any thread
};

class ServerCore {
 public:
  ServerCore(const TransportOptions& options, Application* app)
      : options_(options),
        app_(app),
        gate_(options.max_connections_per_peer),
        pool_(static_cast<size_t>(std::max(1, options.worker_threads))),
        acceptor_(asio::make_strand(ioc_)) {}

  const TransportOptions& options() const { return options_; }
  Application& app() { return *app_; }
  asio::thread_pool& pool() { return pool_; }
  bool tls() const { return ssl_.has_value(); }
  asio::ssl::context& ssl() { return *ssl_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

  // A worker for a streamed body, if fewer than max_streams hold one.
  bool AcquireStream() {
    if (streams_.fetch_add(1, std::memory_order_acq_rel) >= options_.max_streams) {
      streams_.fetch_sub(1, std::memory_order_acq_rel);
      return false;
    }
    return true;
  }
  void ReleaseStream() { streams_.fetch_sub(1, std::memory_order_acq_rel); }

  void Register(const std::shared_ptr<SessionBase>& s,
                std::list<std::weak_ptr<SessionBase>>::iterator* it) {
    std::lock_guard<std::mutex> lock(sessions_mu_);
    sessions_.push_front(s);
    *it = sessions_.begin();
  }
  void Unregister(std::list<std::weak_ptr<SessionBase>>::iterator it, const std::string& peer) {
    {
      std::lock_guard<std::mutex> lock(sessions_mu_);
      sessions_.erase(it);
    }
    gate_.Release(peer);
    open_.fetch_sub(1, std::memory_order_acq_rel);
  }

  Status Start();
  void Stop();
  // Returns at once when the server never started.
  void Wait() {
    std::unique_lock<std::mutex> lock(stop_mu_);
    stop_cv_.wait(lock, [this] { return stopped_ || !started_; });
  }
  int port() const { return port_; }

 private:
  void Accept();
  void OnAccept(const error_code& ec, tcp::socket socket);

  const TransportOptions options_;
  Application* app_;
  // Declared before the io_context so that they outlive it: a session that
  // dies with the io_context's last handlers unregisters here.
  PeerGate gate_;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> open_{0};
  std::atomic<size_t> streams_{0};
  std::mutex sessions_mu_;
  std::list<std::weak_ptr<SessionBase>> sessions_;
  asio::io_context ioc_;
  asio::thread_pool pool_;
  tcp::acceptor acceptor_;
  std::optional<asio::ssl::context> ssl_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> io_threads_;
  int port_ = 0;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool started_ = false;
  bool stopped_ = false;
};

template <class Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(ServerCore& core, tcp::socket socket, std::string peer, std::string remote_addr)
      : core_(core),
        opt_(core.options()),
        stream_(MakeStream(core, std::move(socket))),
        timer_(stream_.get_executor()),
        peer_(std::move(peer)),
        remote_addr_(std::move(remote_addr)),
        head_(opt_.max_head_bytes, opt_.max_header_lines) {}

  ~Session() override { core_.Unregister(registry_, peer_); }

  void Start(std::list<std::weak_ptr<SessionBase>>::iterator registry) {
    registry_ = registry;
    auto self = this->shared_from_this();
    asio::dispatch(stream_.get_executor(), [self] { self->Begin(); });
  }

  void Cancel() override {
    auto self = this->shared_from_this();
    asio::post(stream_.get_executor(), [self] { self->Close(); });
  }

 private:
  enum class Phase {
    kHandshake,
    kIdle,     // between requests
    kHead,     // reading a head
    kWorking,  // the application has the request
    kBody,     // reading a body for OnBody
    kStream,   // reading a body for OnStream
    kWriting,
    kLinger,
    kClosed
  };

  static Stream MakeStream(ServerCore& core, tcp::socket socket) {
    if constexpr (std::is_same_v<Stream, tcp::socket>) {
      (void)core;
      return socket;
    } else {
      return Stream(std::move(socket), core.ssl());
    }
  }

  tcp::socket& Socket() {
    if constexpr (std::is_same_v<Stream, tcp::socket>) {
      return stream_;
    } else {
      return stream_.next_layer();
    }
  }

  // -- deadlines ------------------------------------------------------------
  // One timer per connection. It is re-armed only when a deadline moves
  // earlier than the wait in progress; a wait that ends early re-arms.

  void SetDeadline(Clock::time_point d) {
    deadline_ = d;
    if (d == kNever || (armed_ && armed_at_ <= d)) {
      return;
    }
    armed_ = true;
    armed_at_ = d;
    timer_.expires_at(d);
    auto self = this->shared_from_this();
    timer_.async_wait([self, d](const error_code& ec) {
      if (ec == asio::error::operation_aborted || self->armed_at_ != d) {
        return;  // replaced by an earlier wait
      }
      self->armed_ = false;
      self->OnTimer();
    });
  }

  void OnTimer() {
    if (phase_ == Phase::kClosed || deadline_ == kNever) {
      return;
    }
    if (Clock::now() < deadline_) {
      SetDeadline(deadline_);
      return;
    }
    switch (phase_) {
      case Phase::kHandshake:
        core_.app().OnRejected(408, "handshake-timeout");
        Close();
        return;
      case Phase::kIdle:
        core_.app().OnRejected(408, "idle-timeout");
        Close();
        return;
      case Phase::kHead:
        if (head_.bytes() == 0) {
          core_.app().OnRejected(408, "idle-timeout");
          Close();
        } else {
          Refuse(408, "head-timeout", StatusCode::kInvalidArgument,
                 "the request head did not arrive within " +
                     std::to_string(opt_.header_timeout_seconds) + " seconds");
        }
        return;
      case Phase::kBody:
        Refuse(408, "body-timeout", StatusCode::kInvalidArgument,
               "the request body did not arrive in time");
        return;
      case Phase::kStream:
        StreamFailure(408, "body-timeout", StatusCode::kInvalidArgument,
                      "the request body did not arrive in time");
        return;
      case Phase::kWriting:
      case Phase::kLinger:
        Close();
        return;
      case Phase::kWorking:
      case Phase::kClosed:
        return;
    }
  }

  Clock::time_point BodyDeadline() const {
    const auto extension = std::chrono::seconds(
        opt_.min_body_bytes_per_second == 0
            ? 0
            : static_cast<int64_t>(body_bytes_ / opt_.min_body_bytes_per_second));
    return body_start_ + std::chrono::seconds(opt_.body_timeout_seconds) + extension;
  }

  // -- reading --------------------------------------------------------------

  void Begin() {
    if (core_.stopping()) {
      Close();
      return;
    }
    const auto head_deadline = Clock::now() + std::chrono::seconds(opt_.header_timeout_seconds);
    if constexpr (std::is_same_v<Stream, tcp::socket>) {
      BeginRequest(true, head_deadline);
    } else {
      phase_ = Phase::kHandshake;
      SetDeadline(head_deadline);
      auto self = this->shared_from_this();
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self, head_deadline](const error_code& ec) {
                                if (ec || self->phase_ == Phase::kClosed) {
                                  self->Close();
                                  return;
                                }
                                self->BeginRequest(true, head_deadline);
                              });
    }
  }

  void BeginRequest(bool first, Clock::time_point head_deadline) {
    if (phase_ == Phase::kClosed) {
      return;  // closed is final (a stop while an answer was being written)
    }
    req_ = Request();
    res_ = Response();
    head_ = HeadScanner(opt_.max_head_bytes, opt_.max_header_lines);
    scan_pos_ = in_off_;
    parser_.reset();
    body_limit_ = 0;
    body_bytes_ = 0;
    close_after_ = false;
    linger_ = false;
    channel_.reset();
    stream_mode_ = false;
    worker_started_ = false;
    stream_failed_ = false;
    write_deferred_ = false;
    wire_bytes_ = 0;
    paused_at_.reset();
    if (in_off_ < in_.size() || first) {
      phase_ = Phase::kHead;
      SetDeadline(first ? head_deadline
                        : Clock::now() + std::chrono::seconds(opt_.header_timeout_seconds));
      ScanHead();
    } else {
      phase_ = Phase::kIdle;
      SetDeadline(Clock::now() + std::chrono::seconds(opt_.idle_timeout_seconds));
      Read();
    }
  }

  void Read() {
    if (reading_ || phase_ == Phase::kClosed) {
      return;
    }
    reading_ = true;
    auto self = this->shared_from_this();
    stream_.async_read_some(asio::buffer(read_buf_),
                            [self](const error_code& ec, size_t n) { self->OnRead(ec, n); });
  }

  void OnRead(const error_code& ec, size_t n) {
    reading_ = false;
    if (phase_ == Phase::kClosed) {
      return;
    }
    if (ec) {
      if (phase_ == Phase::kStream && worker_started_) {
        FailStream();
        peer_gone_ = true;
        return;  // the worker answers (the write will fail) and closes
      }
      Close();
      return;
    }
    if (phase_ == Phase::kLinger) {
      Read();  // dropped
      return;
    }
    if (in_off_ == in_.size()) {
      in_.clear();
      in_off_ = 0;
      scan_pos_ = 0;
    } else if (in_off_ > 64 * 1024) {
      in_.erase(0, in_off_);
      scan_pos_ -= std::min(scan_pos_, in_off_);
      in_off_ = 0;
    }
    in_.append(read_buf_.data(), n);
    switch (phase_) {
      case Phase::kIdle:
        phase_ = Phase::kHead;
        SetDeadline(Clock::now() + std::chrono::seconds(opt_.header_timeout_seconds));
        ScanHead();
        return;
      case Phase::kHead:
        ScanHead();
        return;
      case Phase::kBody:
      case Phase::kStream:
        FeedBody();
        return;
      default:
        return;  // bytes of a next request, kept for later
    }
  }

  void ScanHead() {
    while (scan_pos_ < in_.size()) {
      const HeadScanner::State s = head_.Feed(in_[scan_pos_]);
      ++scan_pos_;
      if (s == HeadScanner::State::kRefused) {
        const bool size = head_.refusal_status() == 431;
        Refuse(head_.refusal_status(), size ? "head-too-large" : "bad-framing",
               size ? StatusCode::kResourceExhausted : StatusCode::kInvalidArgument,
               head_.refusal());
        return;
      }
      if (s == HeadScanner::State::kDone) {
        ParseHead();
        return;
      }
    }
    Read();
  }

  void ParseHead() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(opt_.max_head_bytes + 4));
    // Ours is body_limit_. (Not boost::none: Beast 1.74 compares lengths
    // against the optional itself, and every length exceeds "none".)
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    error_code ec;
    const size_t head_len = scan_pos_ - in_off_;
    const size_t used = parser_->put(asio::buffer(in_.data() + in_off_, head_len), ec);
    if (ec || used != head_len || !parser_->is_header_done()) {
      Refuse(400, "bad-framing", StatusCode::kInvalidArgument, "malformed request head");
      return;
    }
    in_off_ += head_len;
    parser_->eager(true);
    const auto& msg = parser_->get();
    if (msg.version() != 11 && msg.version() != 10) {
      Refuse(505, "bad-framing", StatusCode::kInvalidArgument, "only HTTP/1.0 and 1.1 are served");
      return;
    }
    req_.method = std::string(msg.method_string());
    req_.target = std::string(msg.target());
    const size_t q = req_.target.find('?');
    req_.path = req_.target.substr(0, q);
    if (q != std::string::npos) {
      req_.params = ParseQuery(std::string_view(req_.target).substr(q + 1));
    }
    for (const auto& f : msg) {
      req_.headers.emplace(std::string(f.name_string()), std::string(f.value()));
    }
    req_.remote_addr = remote_addr_;
    req_.keep_alive = msg.keep_alive();
    has_body_ = !parser_->is_done();
    // RFC 9112 3.2: an HTTP/1.1 request has exactly one Host; none has two.
    const size_t hosts = req_.headers.count("Host");
    if (hosts > 1 || (msg.version() == 11 && hosts == 0)) {
      Refuse(400, "bad-framing", StatusCode::kInvalidArgument, "a request names exactly one Host");
      return;
    }
    // RFC 9110 10.1.1: an expectation we cannot meet is refused.
    if (req_.has_header("Expect") &&
        !EqualsFolded(req_.get_header_value("Expect"), "100-continue")) {
      Refuse(417, "bad-framing", StatusCode::kInvalidArgument,
             "the only expectation served is 100-continue");
      return;
    }
    if (msg.version() == 10 && head_.chunked()) {
      close_after_ = true;  // RFC 9112 6.1: chunked from a 1.0 client ends the connection
    }
    ToWorker([](const std::shared_ptr<Session>& self) {
      uint64_t limit = 0;
      Application::Next next = Application::Next::kAnswer;
      if (!self->Contained(
              [&] { next = self->core_.app().OnHead(self->req_, self->res_, &limit); })) {
        next = Application::Next::kAnswer;
      }
      if (next == Application::Next::kBody && self->TakeBufferedBody(limit)) {
        // The whole body came with the head (a small JSON request): no
        // second trip through the connection's strand.
        self->Contained([&] { self->core_.app().OnBody(self->req_, self->res_); });
        self->AfterHold([self] { self->WriteResponse(); });
        return;
      }
      self->AfterHold([self, next, limit] { self->AfterHead(next, limit); });
    });
  }

  // Hands the request to a worker (the strand leaves it alone meanwhile: no
  // read is pending and no deadline runs while in kWorking); `work` gets the
  // session.
  template <class Work>
  void ToWorker(Work work) {
    phase_ = Phase::kWorking;
    SetDeadline(kNever);
    asio::post(core_.pool(),
               [self = this->shared_from_this(), work = std::move(work)] { work(self); });
  }

  // On the worker, after an application call: posts `step` to the
  // connection's strand now, or, when the application holds the answer
  // (Response::hold), once it resumes. The continuation keeps the session
  // alive, so Stop() waits for a held answer like for a running handler.
  template <class Step>
  void AfterHold(Step step) {
    if (!res_.hold) {
      asio::post(stream_.get_executor(), std::move(step));
      return;
    }
    auto hold = std::move(res_.hold);
    res_.hold = nullptr;
    auto self = this->shared_from_this();
    hold(res_, [self, step = std::move(step)]() mutable {
      asio::post(self->stream_.get_executor(), std::move(step));
    });
  }

  // Runs an application call on a worker; one that throws leaves a 500 with
  // the JSON error body (nothing it half-made) and returns false.
  template <class Fn>
  bool Contained(Fn&& fn) {
    try {
      fn();
      return true;
    } catch (...) {
      // An answer the application holds for its audit stays held: even
      // the 500 leaves only once the audit is durable.
      auto hold = std::move(res_.hold);
      res_ = Response();
      res_.hold = std::move(hold);
      res_.status = 500;
      res_.set_content(ErrorBody(Status::Internal("unexpected error"), NewRandomId().substr(0, 16)),
                       "application/json");
      return false;
    }
  }

  // On the worker, while the strand leaves the request alone (no read is
  // pending in kWorking): when a Content-Length body within `limit` is
  // already buffered whole, moves it into req_.body. Chunked bodies and
  // bodies still arriving take the strand's path (FeedBody).
  bool TakeBufferedBody(uint64_t limit) {
    if (!head_.has_content_length() || head_.chunked()) {
      return false;
    }
    const uint64_t length = head_.content_length();
    if (length > limit || in_.size() - in_off_ < length) {
      return false;
    }
    req_.body.assign(in_, in_off_, static_cast<size_t>(length));
    in_off_ += static_cast<size_t>(length);
    return true;
  }

  void AfterHead(Application::Next next, uint64_t limit) {
    if (phase_ == Phase::kClosed) {
      return;
    }
    if (next == Application::Next::kAnswer) {
      if (has_body_) {
        close_after_ = true;  // the body stays unread: never parse it as a request
        linger_ = true;
      }
      WriteResponse();
      return;
    }
    body_limit_ = limit;
    if (head_.has_content_length() && head_.content_length() > limit) {
      // Refused before a byte of it is read (and before any 100 Continue).
      Refuse(413, "body-too-large", StatusCode::kResourceExhausted,
             "request body exceeds the limit of " + std::to_string(limit) + " bytes");
      return;
    }
    body_start_ = Clock::now();
    stream_mode_ = next == Application::Next::kStream;
    if (stream_mode_) {
      // The worker starts with the first piece of the body (HandOver), not
      // before: a client that sends a head and then nothing holds a timer,
      // not a worker.
      channel_ = std::make_shared<StreamChannel>();
      pending_.clear();
      phase_ = Phase::kStream;
    } else {
      phase_ = Phase::kBody;
    }
    SetDeadline(BodyDeadline());
    const std::string expect = req_.get_header_value("Expect");
    if (has_body_ && in_off_ == in_.size() && EqualsFolded(expect, "100-continue") &&
        parser_->get().version() == 11) {
      auto self = this->shared_from_this();
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      writing_ = true;
      asio::async_write(stream_, asio::buffer(kContinue), [self](const error_code& ec, size_t) {
        self->writing_ = false;
        if (self->write_deferred_) {
          self->write_deferred_ = false;
          self->WriteResponse();  // the worker answered meanwhile
          return;
        }
        if (ec) {
          self->OnRead(ec, 0);
          return;
        }
        self->FeedBody();
      });
      return;
    }
    FeedBody();
  }

  // Runs the body through the parser: into req_.body (kBody) or into
  // pieces for the stream worker (kStream).
  void FeedBody() {
    if ((phase_ != Phase::kBody && phase_ != Phase::kStream) || stream_failed_) {
      return;
    }
    if (paused_at_.has_value()) {
      // The worker took its piece: the time it held it is not the client's.
      body_start_ += Clock::now() - *paused_at_;
      paused_at_.reset();
    }
    while (!parser_->is_done()) {
      if (stream_mode_ && pending_.size() >= kStreamPiece) {
        if (!HandOver()) {
          return;  // the worker has a piece: reading resumes when it takes it
        }
      }
      if (in_off_ == in_.size()) {
        if (stream_mode_ && !pending_.empty()) {
          (void)HandOver();  // a slow client's bytes need not wait for a whole piece
          if (phase_ != Phase::kStream || stream_failed_) {
            return;  // refused (no stream slot) or failed meanwhile
          }
        }
        if (!paused_at_.has_value()) {
          SetDeadline(BodyDeadline());
        }
        Read();
        return;
      }
      char out[kReadChunk];
      auto& body = parser_->get().body();
      body.data = out;
      body.size = sizeof(out);
      error_code ec;
      const size_t used =
          parser_->put(asio::buffer(in_.data() + in_off_, in_.size() - in_off_), ec);
      in_off_ += used;
      wire_bytes_ += used;
      const size_t got = sizeof(out) - body.size;
      body.data = nullptr;
      body.size = 0;
      body_bytes_ += got;
      // The decoded body within the route's limit; its framing (chunk
      // sizes, extensions, trailers) within as much again.
      if (body_bytes_ > body_limit_ || wire_bytes_ > 2 * body_limit_ + kMaxFramingBytes) {
        StreamFailure(
            413, "body-too-large", StatusCode::kResourceExhausted,
            "request body exceeds the limit of " + std::to_string(body_limit_) + " bytes");
        return;
      }
      if (stream_mode_) {
        pending_.append(out, got);
      } else {
        req_.body.append(out, got);
      }
      if (ec == http::error::need_more || (!ec && used == 0 && got == 0)) {
        if (in_off_ == in_.size()) {
          continue;  // read more
        }
        if (in_.size() - in_off_ > kMaxFramingBytes) {
          // A chunk-size line or trailer that never ends: Beast waits for
          // its line end, and the bytes would pile up.
          StreamFailure(400, "bad-framing", StatusCode::kInvalidArgument,
                        "a chunk header or trailer of the request body is too long");
          return;
        }
        // An incomplete chunk header or the like: keep the bytes, read more.
        SetDeadline(BodyDeadline());
        Read();
        return;
      }
      if (ec && ec != http::error::need_buffer) {
        StreamFailure(400, "bad-framing", StatusCode::kInvalidArgument, "malformed request body");
        return;
      }
    }
    // The body is complete.
    if (stream_mode_) {
      FinishStream();
      return;
    }
    ToWorker([](const std::shared_ptr<Session>& self) {
      self->Contained([&] { self->core_.app().OnBody(self->req_, self->res_); });
      self->AfterHold([self] { self->WriteResponse(); });
    });
  }

  // -- streamed bodies --------------------------------------------------------

  // Starts the worker that runs OnStream, if a stream slot is free; else
  // answers 503. False when no worker runs.
  bool StartStreamWorker() {
    if (worker_started_) {
      return true;
    }
    if (!core_.AcquireStream()) {
      Refuse(503, "overloaded", StatusCode::kUnavailable,
             "too many uploads in progress: try again shortly");
      return false;
    }
    worker_started_ = true;
    auto self = this->shared_from_this();
    auto channel = channel_;
    asio::post(core_.pool(), [self, channel] {
      BodyReader reader = [self, channel](const std::function<bool(const char*, size_t)>& sink) {
        for (;;) {
          std::string piece;
          {
            std::unique_lock<std::mutex> lock(channel->mu);
            channel->cv.wait(lock,
                             [&] { return channel->has_piece || channel->end || channel->failed; });
            if (channel->has_piece) {
              piece.swap(channel->piece);
              channel->has_piece = false;
            } else {
              return channel->end && !channel->failed;
            }
          }
          asio::post(self->stream_.get_executor(), [self] { self->FeedBody(); });
          if (!sink(piece.data(), piece.size())) {
            std::lock_guard<std::mutex> lock(channel->mu);
            channel->failed = true;  // the worker stopped reading
            return false;
          }
        }
      };
      self->Contained([&] { self->core_.app().OnStream(self->req_, self->res_, reader); });
      self->AfterHold([self] { self->AfterStream(); });
    });
    return true;
  }

  // Gives the pending bytes to the worker when it has none; false when it
  // still has a piece (or stopped reading).
  bool HandOver() {
    if (!StartStreamWorker()) {
      return false;
    }
    std::lock_guard<std::mutex> lock(channel_->mu);
    if (channel_->failed) {
      pending_.clear();
      return false;
    }
    if (channel_->has_piece) {
      if (!paused_at_.has_value()) {
        paused_at_ = Clock::now();
        deadline_ = kNever;
      }
      return false;
    }
    channel_->piece.swap(pending_);
    pending_.clear();
    channel_->has_piece = true;
    channel_->cv.notify_one();
    return true;
  }

  void FinishStream() {
    if (!StartStreamWorker()) {
      return;
    }
    if (!pending_.empty() && !HandOver()) {
      bool failed = false;
      {
        std::lock_guard<std::mutex> lock(channel_->mu);
        failed = channel_->failed;
      }
      if (!failed) {
        return;  // called again when the worker takes its piece
      }
    }
    std::lock_guard<std::mutex> lock(channel_->mu);
    channel_->end = true;
    channel_->cv.notify_one();
    SetDeadline(kNever);
  }

  // A streamed body that cannot go on: answered here while no worker runs,
  // else the worker learns of it and answers.
  void StreamFailure(int status, std::string_view code, StatusCode status_code,
                     const std::string& message) {
    if (!stream_mode_ || !worker_started_) {
      Refuse(status, code, status_code, message);
      return;
    }
    if (!stream_failed_) {
      core_.app().OnRejected(status, code);
    }
    stream_failed_ = true;
    deadline_ = kNever;
    FailStream();
  }

  void FailStream() {
    if (channel_ == nullptr) {
      return;
    }
    std::lock_guard<std::mutex> lock(channel_->mu);
    channel_->failed = true;
    channel_->cv.notify_one();
  }

  void AfterStream() {
    core_.ReleaseStream();
    if (phase_ == Phase::kClosed) {
      return;
    }
    bool complete = false;
    {
      std::lock_guard<std::mutex> lock(channel_->mu);
      complete = channel_->end && !channel_->failed && !channel_->has_piece;
    }
    if (!complete || !parser_->is_done()) {
      close_after_ = true;
      linger_ = !peer_gone_;
    }
    if (peer_gone_) {
      Close();
      return;
    }
    WriteResponse();
  }

  // -- writing ----------------------------------------------------------------

  void WriteResponse() {
    if (phase_ == Phase::kClosed) {
      return;
    }
    if (writing_) {
      write_deferred_ = true;  // after the interim 100 Continue (one write at a time)
      return;
    }
    if (reading_) {
      // A read is still pending from the body phase: its bytes belong to an
      // abandoned body; the connection closes after this answer.
      close_after_ = true;
    }
    ++served_;
    const bool head_method = req_.method == "HEAD";
    const bool close = close_after_ || !req_.keep_alive || core_.stopping() ||
                       served_ >= opt_.keep_alive_max_requests ||
                       EqualsFolded(res_.get_header_value("Connection"), "close");
    closing_ = close;
    const bool no_body = res_.status < 200 || res_.status == 204 || res_.status == 304;
    const uint64_t length = res_.provider ? res_.provider_length : res_.body.size();
    std::string_view connection;
    if (close) {
      connection = "close";
    } else if (req_.keep_alive && parser_.has_value() && parser_->get().version() == 10) {
      connection = "keep-alive";
    }
    out_head_ =
        AnswerHead(res_, no_body ? std::nullopt : std::optional<uint64_t>(length), connection);
    phase_ = Phase::kWriting;
    const bool send_body = !head_method && !no_body;
    SetDeadline(WriteDeadline(out_head_.size() + (send_body && !res_.provider ? length : 0)));
    std::vector<asio::const_buffer> bufs{asio::buffer(out_head_)};
    if (send_body && !res_.provider && !res_.body.empty()) {
      bufs.push_back(asio::buffer(res_.body));
    }
    provided_ = 0;
    auto self = this->shared_from_this();
    asio::async_write(stream_, bufs, [self, send_body](const error_code& ec, size_t) {
      if (ec) {
        self->Answered();
        self->Close();
        return;
      }
      if (send_body && self->res_.provider) {
        self->Provide();
        return;
      }
      self->AfterWrite();
    });
  }

  // Streams a provider's body: a worker makes the next piece, this strand
  // writes it.
  void Provide() {
    if (provided_ >= res_.provider_length) {
      AfterWrite();
      return;
    }
    ToWorker([](const std::shared_ptr<Session>& self) {
      self->piece_.clear();
      bool ok = false;
      try {
        ok = self->res_.provider(self->piece_);
      } catch (...) {
        ok = false;
      }
      asio::post(self->stream_.get_executor(), [self, ok] {
        if (!ok || self->piece_.empty() ||
            self->piece_.size() > self->res_.provider_length - self->provided_) {
          self->Answered();
          self->Close();  // a short or long body: cut, never padded
          return;
        }
        if (self->phase_ == Phase::kClosed) {
          return;
        }
        self->provided_ += self->piece_.size();
        self->phase_ = Phase::kWriting;
        self->SetDeadline(self->WriteDeadline(self->piece_.size()));
        asio::async_write(self->stream_, asio::buffer(self->piece_),
                          [self](const error_code& ec, size_t) {
                            if (ec) {
                              self->Answered();
                              self->Close();
                              return;
                            }
                            self->Provide();
                          });
      });
    });
  }

  // A client must take an answer at the minimum rate too: the write timeout
  // plus a second per min_body_bytes_per_second of it.
  Clock::time_point WriteDeadline(uint64_t bytes) const {
    const int64_t extension = opt_.min_body_bytes_per_second == 0
                                  ? 0
                                  : static_cast<int64_t>(bytes / opt_.min_body_bytes_per_second);
    return Clock::now() + std::chrono::seconds(opt_.write_timeout_seconds + extension);
  }

  void Answered() {
    if (answered_ == served_) {
      return;
    }
    answered_ = served_;
    core_.app().OnAnswered(req_, res_);
  }

  void AfterWrite() {
    Answered();
    if (phase_ == Phase::kClosed) {
      return;
    }
    if (!closing_) {
      BeginRequest(false, Clock::time_point());
      return;
    }
    if (linger_ || in_off_ < in_.size() || reading_) {
      Linger();
      return;
    }
    Close();
  }

  // The status line and headers of `res` (its own Connection and
  // Content-Length dropped): `length` as Content-Length when the status
  // carries a body, `connection` as Connection when not empty, HSTS over
  // TLS. One format for the application's answers and the transport's own.
  std::string AnswerHead(const Response& res, std::optional<uint64_t> length,
                         std::string_view connection) const {
    std::string out = "HTTP/1.1 " + std::to_string(res.status) + " ";
    out += ReasonPhrase(res.status);
    out += "\r\n";
    const auto line = [&out](std::string_view k, std::string_view v) {
      out += k;
      out += ": ";
      out += v;
      out += "\r\n";
    };
    for (const auto& [k, v] : res.headers) {
      if (!EqualsFolded(k, "Connection") && !EqualsFolded(k, "Content-Length")) {
        line(k, v);
      }
    }
    if (length.has_value()) {
      line("Content-Length", std::to_string(*length));
    }
    if (core_.tls()) {
      line("Strict-Transport-Security", kHsts);
    }
    if (!connection.empty()) {
      line("Connection", connection);
    }
    out += "\r\n";
    return out;
  }

  // Lingering close: stop sending, then read and drop what the client still
  // sends for a short while, so that it reads the answer before the end.
  void Linger() {
    if (phase_ == Phase::kClosed) {
      return;
    }
    error_code ignored;
    Socket().shutdown(tcp::socket::shutdown_send, ignored);
    phase_ = Phase::kLinger;
    deadline_ = kNever;
    SetDeadline(Clock::now() + kLingerTime);
    in_.clear();
    in_off_ = 0;
    if (!reading_) {
      Read();
    }
  }

  // Answers with `status` itself and ends the connection.
  void Refuse(int status, std::string_view code, StatusCode status_code,
              const std::string& message) {
    core_.app().OnRejected(status, code);
    if (writing_) {
      Close();  // an interim answer is still being written
      return;
    }
    const std::string id = NewRandomId().substr(0, 16);
    Response refusal;
    refusal.status = status;
    refusal.set_header("Cache-Control", "no-store");
    refusal.set_header("X-Content-Type-Options", "nosniff");
    refusal.set_header("X-Request-Id", id);
    refusal.set_content(ErrorBody(Status(status_code, message), id), "application/json");
    out_head_ = AnswerHead(refusal, refusal.body.size(), "close") + refusal.body;
    FailStream();
    phase_ = Phase::kWriting;
    SetDeadline(Clock::now() + std::chrono::seconds(1));
    auto self = this->shared_from_this();
    asio::async_write(stream_, asio::buffer(out_head_), [self](const error_code& ec, size_t) {
      if (ec) {
        self->Close();
        return;
      }
      self->Linger();
    });
  }

  void Close() {
    if (phase_ == Phase::kClosed) {
      return;
    }
    phase_ = Phase::kClosed;
    FailStream();
    error_code ignored;
    timer_.cancel();
    Socket().shutdown(tcp::socket::shutdown_both, ignored);
    Socket().close(ignored);
  }

  ServerCore& core_;
  const TransportOptions& opt_;
  Stream stream_;
  asio::steady_timer timer_;
  std::string peer_;
  std::string remote_addr_;
  std::list<std::weak_ptr<SessionBase>>::iterator registry_;
  Phase phase_ = Phase::kIdle;
  Clock::time_point deadline_ = kNever;
  bool armed_ = false;
  Clock::time_point armed_at_ = kNever;
  std::array<char, kReadChunk> read_buf_{};
  bool reading_ = false;
  bool writing_ = false;  // the interim 100 Continue
  std::string in_;
  size_t in_off_ = 0;
  size_t scan_pos_ = 0;
  HeadScanner head_;
  std::optional<http::request_parser<http::buffer_body>> parser_;
  bool has_body_ = false;
  uint64_t body_limit_ = 0;
  uint64_t body_bytes_ = 0;
  Clock::time_point body_start_;
  bool stream_mode_ = false;
  bool peer_gone_ = false;
  bool worker_started_ = false;  // a worker runs OnStream (and holds a stream slot)
  bool stream_failed_ = false;
  bool write_deferred_ = false;  // an answer waits for the 100 Continue to be written
  uint64_t wire_bytes_ = 0;      // body bytes as sent (chunk framing included)
  std::optional<Clock::time_point> paused_at_;  // the worker holds a piece: no deadline
  std::shared_ptr<StreamChannel> channel_;
  std::string pending_;
  Request req_;
  Response res_;
  std::string out_head_;
  std::string piece_;
  uint64_t provided_ = 0;
  size_t served_ = 0;
  size_t answered_ = 0;
  bool close_after_ = false;
  bool closing_ = false;
  bool linger_ = false;
};

Status ServerCore::Start() {
  const bool tls = !options_.tls_cert_path.empty() || !options_.tls_key_path.empty();
  if (tls) {
    ssl_.emplace(asio::ssl::context::tls_server);
    error_code ec;
    ssl_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                          asio::ssl::context::no_sslv3 | asio::ssl::context::single_dh_use,
                      ec);
    SSL_CTX_set_min_proto_version(ssl_->native_handle(), TLS1_2_VERSION);
    ssl_->use_certificate_chain_file(options_.tls_cert_path, ec);
    if (!ec) {
      ssl_->use_private_key_file(options_.tls_key_path, asio::ssl::context::pem, ec);
    }
    if (ec || SSL_CTX_check_private_key(ssl_->native_handle()) != 1) {
      ssl_.reset();
      return Status::InvalidArgument("TLS certificate or key could not be loaded from " +
                                     options_.tls_cert_path + " / " + options_.tls_key_path);
    }
  }
  error_code ec;
  const auto address = asio::ip::make_address(
      options_.host == "localhost" ? std::string("127.0.0.1") : options_.host, ec);
  if (ec) {
    return Status::InvalidArgument("cannot listen on " + options_.host + ": not a numeric address");
  }
  const tcp::endpoint endpoint(address, static_cast<uint16_t>(options_.port));
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) {
    acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    acceptor_.bind(endpoint, ec);
  }
  if (!ec) {
    acceptor_.listen(options_.listen_backlog, ec);
  }
  if (ec) {
    return Status::Unavailable("could not bind " + options_.host + ":" +
                               std::to_string(options_.port) + " (in use or not permitted)");
  }
  port_ = acceptor_.local_endpoint().port();
  work_.emplace(asio::make_work_guard(ioc_));
  Accept();
  for (int i = 0; i < std::max(1, options_.io_threads); ++i) {
    io_threads_.emplace_back([this] { ioc_.run(); });
  }
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    started_ = true;
  }
  return Status::Ok();
}

void ServerCore::Accept() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](const error_code& ec, tcp::socket s) {
    OnAccept(ec, std::move(s));
  });
}

void ServerCore::OnAccept(const error_code& ec, tcp::socket socket) {
  if (stopping()) {
    return;
  }
  if (ec) {
    if (ec == asio::error::operation_aborted) {
      return;
    }
    // Out of descriptors and the like: try again shortly.
    auto timer = std::make_shared<asio::steady_timer>(acceptor_.get_executor(),
                                                      std::chrono::milliseconds(20));
    timer->async_wait([this, timer](const error_code&) {
      if (!stopping()) {
        Accept();
      }
    });
    return;
  }
  Accept();
  error_code e;
  const tcp::endpoint remote = socket.remote_endpoint(e);
  std::string addr = e ? std::string() : remote.address().to_string();
  if (remote.address().is_v6() && remote.address().to_v6().is_v4_mapped()) {
    addr = asio::ip::make_address_v4(asio::ip::v4_mapped, remote.address().to_v6()).to_string();
  }
  const std::string peer = PeerKey(addr);
  if (open_.fetch_add(1, std::memory_order_acq_rel) >= options_.max_connections) {
    open_.fetch_sub(1, std::memory_order_acq_rel);
    app_->OnRejected(503, "overloaded");
    socket.close(e);
    return;
  }
  if (!gate_.Acquire(peer)) {
    open_.fetch_sub(1, std::memory_order_acq_rel);
    app_->OnRejected(503, "peer-limit");
    socket.close(e);
    return;
  }
  socket.set_option(tcp::no_delay(true), e);
  std::list<std::weak_ptr<SessionBase>>::iterator it;
  if (ssl_.has_value()) {
    auto s = std::make_shared<Session<asio::ssl::stream<tcp::socket>>>(*this, std::move(socket),
                                                                       peer, addr);
    Register(s, &it);
    s->Start(it);
  } else {
    auto s = std::make_shared<Session<tcp::socket>>(*this, std::move(socket), peer, addr);
    Register(s, &it);
    s->Start(it);
  }
}

void ServerCore::Stop() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (!started_ || stopped_) {
      return;
    }
  }
  if (stopping_.exchange(true, std::memory_order_acq_rel)) {
    Wait();  // another Stop() is at work
    return;
  }
  // The acceptor closes on its strand; once that ran, no accept completes
  // into a new session (one accepted before it is counted in open_).
  std::promise<void> closed;
  asio::post(acceptor_.get_executor(), [this, &closed] {
    error_code ignored;
    acceptor_.close(ignored);
    closed.set_value();
  });
  closed.get_future().wait();
  // Handlers in flight finish (a streamed body fails at once); every
  // connection is gone before the threads stop, so no session outlives the
  // state it points into. A connection accepted while this runs is closed
  // by the next round.
  for (int round = 0; open_.load(std::memory_order_acquire) > 0; ++round) {
    if (round % 50 == 0) {
      std::vector<std::shared_ptr<SessionBase>> live;
      {
        std::lock_guard<std::mutex> lock(sessions_mu_);
        for (const auto& w : sessions_) {
          if (auto s = w.lock()) {
            live.push_back(std::move(s));
          }
        }
      }
      for (const auto& s : live) {
        s->Cancel();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  pool_.join();
  work_.reset();
  ioc_.stop();
  for (std::thread& t : io_threads_) {
    t.join();
  }
  io_threads_.clear();
  ioc_.restart();
  ioc_.poll();  // handlers left behind (aborted operations) release what they hold
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stopped_ = true;
  }
  stop_cv_.notify_all();
}

class TransportImpl final : public Transport {
 public:
  TransportImpl(const TransportOptions& options, Application* app)
      : core_(std::make_unique<ServerCore>(options, app)) {}
  ~TransportImpl() override { Stop(); }
  Status Start() override { return core_->Start(); }
  void Stop() override { core_->Stop(); }
  void Wait() override { core_->Wait(); }
  int port() const override { return core_->port(); }

 private:
  std::unique_ptr<ServerCore> core_;
};

}  // namespace

std::unique_ptr<Transport> NewTransport(const TransportOptions& options, Application* app) {
  return std::make_unique<TransportImpl>(options, app);
}

}  // namespace medvault::api::internal
