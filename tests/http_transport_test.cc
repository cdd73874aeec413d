// The HTTP transport on its own (src/api/http_transport.h), under a small
// application, over raw sockets: framing, pipelining, 100-continue, chunked
// and streamed bodies, streamed answers, limits, and a stop that does not
// wait for clients. The server's routes over it: http_server_test.cc.
#include "api/http_transport.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace medvault::api::internal {
namespace {

using Clock = std::chrono::steady_clock;

// Routes by path: /echo (GET: the query and a header back), /body (the
// whole body, limit 1000), /stream (a streamed body: its size and a
// checksum; ?stop=N refuses after N bytes), /provide?n=N (N bytes in
// pieces of 1000; ?short=1 ends early), /refuse (answers at the head).
class TestApp final : public Application {
 public:
  Next OnHead(Request& req, Response& res, uint64_t* body_limit) override {
    heads++;
    if (req.path == "/echo") {
      std::string out = "method=" + req.method + ";a=" + req.get_param_value("a") +
                        ";b=" + req.get_param_value("b") + ";x=" + req.get_header_value("x-TEST");
      res.set_content(out, "text/plain");
      return Next::kAnswer;
    }
    if (req.path == "/body") {
      *body_limit = 1000;
      return Next::kBody;
    }
    if (req.path == "/stream") {
      *body_limit = 4 << 20;
      return Next::kStream;
    }
    if (req.path == "/provide") {
      const uint64_t n = std::stoull(req.get_param_value("n"));
      const bool cut = req.has_param("short");
      auto sent = std::make_shared<uint64_t>(0);
      res.set_content_provider(n, "application/octet-stream", [n, cut, sent](std::string& out) {
        if (cut && *sent >= n / 2) {
          return false;
        }
        const uint64_t k = std::min<uint64_t>(1000, n - *sent);
        for (uint64_t i = 0; i < k; ++i) {
          out.push_back(static_cast<char>('a' + (*sent + i) % 26));
        }
        *sent += k;
        return true;
      });
      return Next::kAnswer;
    }
    if (req.path == "/throw") {
      throw std::runtime_error("a handler bug");
    }
    if (req.path == "/throw-body") {
      *body_limit = 100;
      return Next::kBody;
    }
    if (req.path == "/refuse") {
      res.status = 403;
      res.set_content("no", "text/plain");
      return Next::kAnswer;
    }
    res.status = 404;
    res.set_content("none", "text/plain");
    return Next::kAnswer;
  }

  void OnBody(Request& req, Response& res) override {
    if (req.path == "/throw-body") {
      throw std::runtime_error("a handler bug");
    }
    res.set_content("got " + std::to_string(req.body.size()) + ":" + req.body, "text/plain");
  }

  void OnStream(Request& req, Response& res, const BodyReader& reader) override {
    const uint64_t stop = req.has_param("stop") ? std::stoull(req.get_param_value("stop")) : 0;
    uint64_t size = 0;
    uint64_t sum = 0;
    const bool complete = reader([&](const char* p, size_t n) {
      for (size_t i = 0; i < n; ++i) {
        sum = sum * 31 + static_cast<unsigned char>(p[i]);
      }
      size += n;
      return stop == 0 || size < stop;
    });
    res.status = complete ? 200 : 400;
    res.set_content(
        (complete ? "complete " : "incomplete ") + std::to_string(size) + " " + std::to_string(sum),
        "text/plain");
  }

  void OnRejected(int status, std::string_view code) override {
    std::lock_guard<std::mutex> lock(mu);
    rejected.push_back(std::to_string(status) + " " + std::string(code));
  }

  void OnAnswered(const Request&, const Response&) override { answered++; }

  std::vector<std::string> Rejected() {
    std::lock_guard<std::mutex> lock(mu);
    return rejected;
  }

  std::atomic<int> heads{0};
  std::atomic<int> answered{0};
  std::mutex mu;
  std::vector<std::string> rejected;
};

uint64_t Checksum(const std::string& s) {
  uint64_t sum = 0;
  for (char c : s) {
    sum = sum * 31 + static_cast<unsigned char>(c);
  }
  return sum;
}

// A blocking loopback client over a raw socket.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  }
  ~RawClient() { ::close(fd_); }
  bool connected() const { return connected_; }

  bool Send(const std::string& s) {
    size_t done = 0;
    while (done < s.size()) {
      const ssize_t n = ::send(fd_, s.data() + done, s.size() - done, MSG_NOSIGNAL);
      if (n <= 0) {
        return false;
      }
      done += static_cast<size_t>(n);
    }
    return true;
  }

  // Reads until `pred(buffer)` or the peer closes or `timeout` passes.
  std::string ReadUntil(const std::function<bool(const std::string&)>& pred,
                        std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto end = Clock::now() + timeout;
    while (!pred(buf_) && !closed_) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count();
      if (left <= 0) {
        break;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) {
        continue;
      }
      char tmp[16384];
      const ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      buf_.append(tmp, static_cast<size_t>(n));
    }
    return buf_;
  }

  // One whole answer (head and Content-Length body), removed from the buffer.
  std::string Response() {
    auto complete = [](const std::string& b) {
      const size_t end = b.find("\r\n\r\n");
      if (end == std::string::npos) {
        return false;
      }
      const size_t cl = b.find("Content-Length: ");
      if (cl == std::string::npos || cl > end) {
        return true;
      }
      const size_t len = std::stoul(b.substr(cl + 16));
      return b.size() >= end + 4 + len;
    };
    ReadUntil(complete);
    if (!complete(buf_)) {
      return "";
    }
    const size_t end = buf_.find("\r\n\r\n");
    const size_t cl = buf_.find("Content-Length: ");
    const size_t len = (cl == std::string::npos || cl > end) ? 0 : std::stoul(buf_.substr(cl + 16));
    std::string out = buf_.substr(0, end + 4 + len);
    buf_.erase(0, end + 4 + len);
    return out;
  }

  bool WaitClosed(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    ReadUntil([](const std::string&) { return false; }, timeout);
    return closed_;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  std::string buf_;
};

std::string BodyOf(const std::string& response) {
  const size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

class HttpTransportTest : public ::testing::Test {
 protected:
  // (Re)starts the transport with `o` on a free loopback port.
  void StartWith(TransportOptions o) {
    if (transport_ != nullptr) {
      transport_->Stop();
    }
    o.host = "127.0.0.1";
    o.port = 0;
    transport_ = NewTransport(o, &app_);
    ASSERT_TRUE(transport_->Start().ok());
  }
  void SetUp() override {
    TransportOptions o;
    o.worker_threads = 4;
    StartWith(o);
  }
  void TearDown() override { transport_->Stop(); }
  int port() const { return transport_->port(); }

  TestApp app_;
  std::unique_ptr<Transport> transport_;
};

TEST(HttpTransportUnitTest, QueriesDecodeLikeForms) {
  const Params p = ParseQuery("a=1&b=x%20y+z&c&=&d=%zz&e=%4&a=2");
  ASSERT_EQ(p.count("a"), 2u);
  EXPECT_EQ(p.find("b")->second, "x y z");
  EXPECT_EQ(p.find("c")->second, "");
  EXPECT_EQ(p.find("d")->second, "%zz");  // not hex: kept as sent
  EXPECT_EQ(p.find("e")->second, "%4");   // cut short: kept as sent
  EXPECT_TRUE(ParseQuery("").empty());
  EXPECT_TRUE(ParseQuery("&&").empty());
}

TEST(HttpTransportUnitTest, HeadersCompareWithoutCaseAndRefuseLineBreaks) {
  Request req;
  req.headers.emplace("Content-Type", "text/plain");
  EXPECT_TRUE(req.has_header("content-type"));
  EXPECT_EQ(req.get_header_value("CONTENT-TYPE"), "text/plain");
  EXPECT_FALSE(req.is_multipart_form_data());
  req.headers.emplace("Content-Type", "x");  // the first value wins
  EXPECT_EQ(req.get_header_value("content-type"), "text/plain");

  Response res;
  res.set_header("X-Ok", "fine");
  res.set_header("X-Bad", "a\r\nSet-Cookie: evil=1");
  res.set_header("X-Bad2", "a\nb");
  res.set_header("X:Bad", "v");
  EXPECT_TRUE(res.has_header("x-ok"));
  EXPECT_FALSE(res.has_header("X-Bad"));
  EXPECT_FALSE(res.has_header("X-Bad2"));
  EXPECT_FALSE(res.has_header("X:Bad"));
  res.set_content("abc", "text/plain");
  res.set_content("abcd", "application/json");
  EXPECT_EQ(res.headers.count("Content-Type"), 1u);
  EXPECT_EQ(res.get_header_value("content-type"), "application/json");
  res.clear_content();
  EXPECT_FALSE(res.has_header("Content-Type"));
  EXPECT_TRUE(res.body.empty());
}

TEST_F(HttpTransportTest, PipelinedRequestsAreAnsweredInOrder) {
  RawClient c(port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(
      c.Send("GET /echo?a=1 HTTP/1.1\r\nHost: x\r\nX-Test: one\r\n\r\n"
             "GET /echo?a=2&b=%41+B HTTP/1.1\r\nHost: x\r\nx-test: two\r\n\r\n"
             "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"));
  const std::string r1 = c.Response();
  const std::string r2 = c.Response();
  const std::string r3 = c.Response();
  EXPECT_NE(r1.find("HTTP/1.1 200 OK"), std::string::npos) << r1;
  EXPECT_EQ(BodyOf(r1), "method=GET;a=1;b=;x=one");
  EXPECT_EQ(BodyOf(r2), "method=GET;a=2;b=A B;x=two");
  EXPECT_EQ(BodyOf(r3), "got 5:hello");
  EXPECT_EQ(r1.find("Connection: close"), std::string::npos);
}

TEST_F(HttpTransportTest, ChunkedBodiesAreAssembledAndBounded) {
  RawClient c(port());
  ASSERT_TRUE(
      c.Send("POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\n"));
  EXPECT_EQ(BodyOf(c.Response()), "got 7:abcdefg");

  // Over the route's limit of 1000 bytes, without a Content-Length: 413,
  // and the connection ends (the rest of the body is never parsed).
  RawClient d(port());
  std::string big = "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) {
    big += "190\r\n" + std::string(400, 'z') + "\r\n";
  }
  ASSERT_TRUE(d.Send(big));
  const std::string r = d.Response();
  EXPECT_NE(r.find("HTTP/1.1 413"), std::string::npos) << r;
  EXPECT_NE(r.find("Connection: close"), std::string::npos) << r;
  EXPECT_TRUE(d.WaitClosed());

  // A malformed chunk size: 400.
  RawClient e(port());
  ASSERT_TRUE(
      e.Send("POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n"));
  EXPECT_NE(e.Response().find("HTTP/1.1 400"), std::string::npos);
}

TEST_F(HttpTransportTest, ExpectContinueIsAnsweredBeforeTheBody) {
  RawClient c(port());
  ASSERT_TRUE(c.Send(
      "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"));
  const std::string interim =
      c.ReadUntil([](const std::string& b) { return b.find("\r\n\r\n") != std::string::npos; });
  EXPECT_EQ(interim.rfind("HTTP/1.1 100 Continue\r\n\r\n", 0), 0u) << interim;
  c.Response();  // consumes the interim answer (no length)
  ASSERT_TRUE(c.Send("xyz"));
  EXPECT_EQ(BodyOf(c.Response()), "got 3:xyz");

  // Refused at the head: no 100, the answer, and the connection closes.
  RawClient d(port());
  ASSERT_TRUE(d.Send(
      "POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"));
  const std::string r = d.Response();
  EXPECT_NE(r.find("HTTP/1.1 403"), std::string::npos) << r;
  EXPECT_NE(r.find("Connection: close"), std::string::npos) << r;
}

TEST_F(HttpTransportTest, StreamedBodiesReachTheWorkerWholeAndInOrder) {
  std::string body;
  for (int i = 0; i < (1 << 20) + 12345; ++i) {
    body.push_back(static_cast<char>(i * 7 + i / 1000));
  }
  RawClient c(port());
  ASSERT_TRUE(c.Send("PUT /stream HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n"));
  // In slices, as a real client on a slow link would.
  for (size_t at = 0; at < body.size(); at += 100000) {
    ASSERT_TRUE(c.Send(body.substr(at, 100000)));
  }
  EXPECT_EQ(BodyOf(c.Response()),
            "complete " + std::to_string(body.size()) + " " + std::to_string(Checksum(body)));

  // The worker stops reading after 200000 bytes: it answers, and the
  // connection closes (the rest of the body is never taken as a request).
  RawClient d(port());
  ASSERT_TRUE(d.Send("PUT /stream?stop=200000 HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n"));
  std::thread sender([&] { d.Send(body); });
  const std::string r = d.Response();
  sender.join();
  EXPECT_NE(r.find("HTTP/1.1 400"), std::string::npos) << r;
  EXPECT_NE(BodyOf(r).find("incomplete"), std::string::npos);
  EXPECT_NE(r.find("Connection: close"), std::string::npos);
}

TEST_F(HttpTransportTest, StreamedAnswersAreExactOrCut) {
  RawClient c(port());
  ASSERT_TRUE(c.Send("GET /provide?n=25500 HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::string body = BodyOf(c.Response());
  ASSERT_EQ(body.size(), 25500u);
  for (size_t i = 0; i < body.size(); ++i) {
    ASSERT_EQ(body[i], static_cast<char>('a' + i % 26)) << i;
  }
  // HEAD: the length, no body; the connection stays usable.
  ASSERT_TRUE(
      c.Send("HEAD /provide?n=25500 HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /echo?a=after HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::string head =
      c.ReadUntil([](const std::string& b) { return b.find("\r\n\r\n") != std::string::npos; });
  EXPECT_NE(head.find("Content-Length: 25500"), std::string::npos) << head;
  const std::string rest = c.ReadUntil(
      [](const std::string& b) { return b.find("method=GET;a=after") != std::string::npos; });
  EXPECT_NE(rest.find("method=GET;a=after"), std::string::npos);
  EXPECT_EQ(rest.find("abcdefghij"), std::string::npos) << "no body after HEAD";

  // A provider that fails half way: the client gets fewer bytes than
  // announced and the connection ends; nothing pads the body.
  RawClient d(port());
  ASSERT_TRUE(d.Send("GET /provide?n=20000&short=1 HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(d.WaitClosed());
  const std::string cut = d.ReadUntil([](const std::string&) { return true; });
  EXPECT_NE(cut.find("Content-Length: 20000"), std::string::npos);
  EXPECT_LT(BodyOf(cut).size(), 20000u);
}

TEST_F(HttpTransportTest, OldClientsAndCloseRequestsEndTheConnection) {
  RawClient c(port());
  ASSERT_TRUE(c.Send("GET /echo HTTP/1.0\r\n\r\n"));
  const std::string r = c.Response();
  EXPECT_NE(r.find("Connection: close"), std::string::npos) << r;
  EXPECT_TRUE(c.WaitClosed());

  RawClient d(port());
  ASSERT_TRUE(d.Send("GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  d.Response();
  EXPECT_TRUE(d.WaitClosed());

  RawClient e(port());
  ASSERT_TRUE(e.Send("GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  const std::string k = e.Response();
  EXPECT_NE(k.find("Connection: keep-alive"), std::string::npos) << k;
  ASSERT_TRUE(e.Send("GET /echo?a=again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  EXPECT_NE(e.Response().find("a=again"), std::string::npos);
}

TEST_F(HttpTransportTest, AGetWithABodyIsAnsweredAndTheConnectionCloses) {
  RawClient c(port());
  ASSERT_TRUE(
      c.Send("GET /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n"
             "GET /refuse HTTP/1.1\r\n\r\n1234"));
  const std::string r = c.Response();
  EXPECT_NE(r.find("method=GET"), std::string::npos);
  EXPECT_NE(r.find("Connection: close"), std::string::npos);
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_EQ(app_.heads.load(), 1) << "a body is never parsed as a request";
}

TEST_F(HttpTransportTest, ConnectionsBeyondTheLimitAreClosedAtOnce) {
  TransportOptions o;
  o.max_connections = 2;
  o.max_connections_per_peer = 16;
  StartWith(o);
  RawClient a(port());
  RawClient b(port());
  ASSERT_TRUE(a.Send("GET /echo?a=a HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(b.Send("GET /echo?a=b HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_NE(a.Response().find("a=a"), std::string::npos);
  EXPECT_NE(b.Response().find("a=b"), std::string::npos);
  RawClient c(port());
  EXPECT_TRUE(c.WaitClosed(std::chrono::seconds(5)));
  const auto rejected = app_.Rejected();
  EXPECT_NE(std::find(rejected.begin(), rejected.end(), "503 overloaded"), rejected.end());
  // The two still work.
  ASSERT_TRUE(a.Send("GET /echo?a=again HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_NE(a.Response().find("a=again"), std::string::npos);
}

TEST_F(HttpTransportTest, ALateHeadIsAnswered408AndAnIdleConnectionCloses) {
  TransportOptions o;
  o.header_timeout_seconds = 1;
  o.idle_timeout_seconds = 1;
  StartWith(o);
  RawClient c(port());
  ASSERT_TRUE(c.Send("GET /echo HTTP/1.1\r\nHo"));
  const auto start = Clock::now();
  const std::string r = c.Response();
  EXPECT_NE(r.find("HTTP/1.1 408"), std::string::npos) << r;
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));

  RawClient d(port());
  ASSERT_TRUE(d.Send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"));
  d.Response();
  EXPECT_TRUE(d.WaitClosed(std::chrono::seconds(5)));  // idle after its answer
}

// Review of issue 14: a chunk-size line or trailer that never ends is
// refused once it passes 8 KiB, instead of piling up in memory.
TEST_F(HttpTransportTest, EndlessChunkFramingIsRefused) {
  for (const std::string& tail :
       {"1;" + std::string(64 * 1024, 'a'), "0\r\nX-T: " + std::string(64 * 1024, 'b')}) {
    RawClient c(port());
    ASSERT_TRUE(
        c.Send("POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + tail));
    const std::string r = c.Response();
    EXPECT_NE(r.find("HTTP/1.1 400"), std::string::npos) << r.substr(0, 80);
    EXPECT_TRUE(c.WaitClosed());
  }
  // The same on a streamed body.
  RawClient d(port());
  ASSERT_TRUE(d.Send("PUT /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;" +
                     std::string(64 * 1024, 'c')));
  EXPECT_NE(d.Response().find("HTTP/1.1 400"), std::string::npos);
}

// A streamed upload takes a worker only once its body arrives, and at most
// max_streams do at once: heads that send nothing more hold no worker.
TEST_F(HttpTransportTest, StalledUploadsHoldNoWorker) {
  TransportOptions o;
  o.worker_threads = 2;
  o.max_streams = 1;
  StartWith(o);
  std::vector<std::unique_ptr<RawClient>> stalled;
  for (int i = 0; i < 6; ++i) {
    stalled.push_back(std::make_unique<RawClient>(port()));
    ASSERT_TRUE(
        stalled.back()->Send("PUT /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // Both workers are free: plain requests and an upload that sends its
  // body are served.
  RawClient a(port());
  ASSERT_TRUE(a.Send("GET /echo?a=free HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_NE(a.Response().find("a=free"), std::string::npos);
  RawClient b(port());
  ASSERT_TRUE(b.Send("PUT /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"));
  EXPECT_EQ(BodyOf(b.Response()), "complete 5 " + std::to_string(Checksum("hello")));
}

// With the only stream slot taken by an upload in progress, another upload
// is answered 503 at its first piece, and the first one completes.
TEST_F(HttpTransportTest, UploadsBeyondTheStreamSlotsAre503) {
  TransportOptions o;
  o.worker_threads = 4;
  o.max_streams = 1;
  StartWith(o);
  RawClient first(port());
  ASSERT_TRUE(first.Send("PUT /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // its worker is reading
  RawClient second(port());
  ASSERT_TRUE(second.Send("PUT /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabcde"));
  const std::string busy = second.Response();
  EXPECT_NE(busy.find("HTTP/1.1 503"), std::string::npos) << busy;
  ASSERT_TRUE(first.Send("67890"));
  EXPECT_EQ(BodyOf(first.Response()), "complete 10 " + std::to_string(Checksum("1234567890")));
  // The slot is free again.
  RawClient third(port());
  ASSERT_TRUE(third.Send("PUT /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok"));
  EXPECT_NE(BodyOf(third.Response()).find("complete 2"), std::string::npos);
}

// An answer made while the interim 100 Continue is still being written
// waits for it: one write at a time, the 100 first.
TEST_F(HttpTransportTest, AnEarlyAnswerFollowsTheInterimOne) {
  RawClient c(port());
  ASSERT_TRUE(
      c.Send("PUT /stream?stop=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\nExpect: "
             "100-continue\r\n\r\n"));
  const std::string interim =
      c.ReadUntil([](const std::string& b) { return b.find("\r\n\r\n") != std::string::npos; });
  EXPECT_EQ(interim.rfind("HTTP/1.1 100 Continue\r\n\r\n", 0), 0u) << interim;
  c.Response();
  ASSERT_TRUE(c.Send("xy"));  // the worker stops after one byte and answers
  const std::string r = c.Response();
  EXPECT_NE(r.find("HTTP/1.1 400"), std::string::npos) << r;
  EXPECT_NE(r.find("Connection: close"), std::string::npos);
}

TEST_F(HttpTransportTest, HostAndExpectationsAreChecked) {
  {
    RawClient c(port());
    ASSERT_TRUE(c.Send("GET /echo HTTP/1.1\r\n\r\n"));
    EXPECT_NE(c.Response().find("HTTP/1.1 400"), std::string::npos) << "no Host";
  }
  {
    RawClient c(port());
    ASSERT_TRUE(c.Send("GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"));
    EXPECT_NE(c.Response().find("HTTP/1.1 400"), std::string::npos) << "two Hosts";
  }
  {
    RawClient c(port());
    ASSERT_TRUE(c.Send("GET /echo HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n"));
    EXPECT_NE(c.Response().find("HTTP/1.1 417"), std::string::npos);
  }
  EXPECT_EQ(app_.heads.load(), 0) << "refused before the application saw them";
}

// A handler that throws answers a 500 with the JSON error body, and the
// connection goes on serving.
TEST_F(HttpTransportTest, AThrowingHandlerIsA500AndTheConnectionGoesOn) {
  RawClient c(port());
  ASSERT_TRUE(
      c.Send("GET /throw HTTP/1.1\r\nHost: x\r\n\r\n"
             "POST /throw-body HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
             "GET /echo?a=still HTTP/1.1\r\nHost: x\r\n\r\n"));
  for (int i = 0; i < 2; ++i) {
    const std::string r = c.Response();
    EXPECT_NE(r.find("HTTP/1.1 500"), std::string::npos) << r;
    EXPECT_NE(BodyOf(r).find("\"INTERNAL\""), std::string::npos) << r;
    EXPECT_EQ(r.find("a handler bug"), std::string::npos) << "no detail leaks";
  }
  EXPECT_NE(c.Response().find("a=still"), std::string::npos);
}

TEST_F(HttpTransportTest, StopEndsConnectionsAndAWorkerWaitingForABody) {
  RawClient idle(port());
  ASSERT_TRUE(idle.Send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"));
  idle.Response();
  RawClient stalled(port());
  ASSERT_TRUE(stalled.Send("PUT /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nab"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the worker is reading
  const auto start = Clock::now();
  transport_->Stop();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  EXPECT_TRUE(idle.WaitClosed(std::chrono::seconds(2)));
  EXPECT_TRUE(stalled.WaitClosed(std::chrono::seconds(2)));
  transport_->Stop();  // twice is fine
}

}  // namespace
}  // namespace medvault::api::internal
