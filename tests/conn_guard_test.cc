// The connection guard's parts: the raw request-head checks, peer keys and
// the per-peer gate. The transport's own behaviour is in
// http_transport_test.cc; against slow and malformed clients end to end, in
// http_server_test.cc.
#include "api/conn_guard.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace medvault::api::internal {
namespace {

struct Scan {
  HeadScanner::State state;
  int status;
  std::string refusal;
  size_t consumed;
};

Scan ScanHead(const std::string& head, size_t max_bytes = 32 * 1024, size_t max_lines = 100) {
  HeadScanner s(max_bytes, max_lines);
  size_t i = 0;
  for (; i < head.size(); ++i) {
    if (s.Feed(head[i]) != HeadScanner::State::kMore) {
      ++i;
      break;
    }
  }
  return {s.state(), s.refusal_status(), s.refusal(), i};
}

TEST(HeadScannerTest, AcceptsAWellFormedHeadAndStopsAtItsEnd) {
  const std::string head =
      "PUT /api/v1/x HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nX-A:b\r\n\r\n";
  Scan r = ScanHead(head + "body-bytes..");
  EXPECT_EQ(r.state, HeadScanner::State::kDone);
  EXPECT_EQ(r.consumed, head.size());
  HeadScanner s(1024, 10);
  for (char c : head) {
    s.Feed(c);
  }
  EXPECT_TRUE(s.has_content_length());
  EXPECT_EQ(s.content_length(), 12u);
  EXPECT_FALSE(s.chunked());
}

TEST(HeadScannerTest, AcceptsChunkedInAnyCase) {
  Scan r = ScanHead("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n");
  EXPECT_EQ(r.state, HeadScanner::State::kDone);
}

TEST(HeadScannerTest, RefusesAmbiguousFraming) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Content-Length: 5\r\nContent-Length: 6\r\n", "more than one Content-Length"},
      {"Content-Length: 5\r\ncontent-length: 5\r\n", "more than one Content-Length"},
      {"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "together"},
      {"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "together"},
      {"Content-Length: %35\r\n", "'%'"},
      {"Content-Length: 5 \t,5\r\n", "decimal"},
      {"Content-Length: -1\r\n", "decimal"},
      {"Content-Length: +5\r\n", "decimal"},
      {"Content-Length: 0x10\r\n", "decimal"},
      {"Content-Length: \r\n", "decimal"},
      {"Content-Length: 12345678901234567890\r\n", "decimal"},
      {"Transfer-Encoding: gzip, chunked\r\n", "chunked"},
      {"Transfer-Encoding: %63hunked\r\n", "'%'"},
      {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "more than one"},
      {"Authorization: Bearer %41\r\n", "'%'"},
      {"Content-Length : 5\r\n", "token"},
      {"Content Length: 5\r\n", "token"},
      {" Content-Length: 5\r\n", "folding"},
      {"X-A: b\r\n\tfolded\r\n", "folding"},
      {"NoColon\r\n", "colon"},
      {": empty-name\r\n", "colon"},
      {"X-A: b\x01\r\n", "control"},
      {std::string("X-A: b\0c\r\n", 10), "control"},
      {"X-A: b\rc\r\n", "carriage return"},
      {"X-A: b\nX-B: c\r\n", "CRLF"},
  };
  for (const auto& [headers, why] : cases) {
    Scan r = ScanHead("POST / HTTP/1.1\r\n" + headers + "\r\n");
    EXPECT_EQ(r.state, HeadScanner::State::kRefused) << headers;
    EXPECT_EQ(r.status, 400) << headers;
    EXPECT_NE(r.refusal.find(why), std::string::npos) << headers << " -> " << r.refusal;
  }
}

TEST(HeadScannerTest, PercentIsFineInHeadersNobodyInterprets) {
  Scan r = ScanHead("GET / HTTP/1.1\r\nReferer: /a%20b\r\nUser-Agent: x%y\r\n\r\n");
  EXPECT_EQ(r.state, HeadScanner::State::kDone);
}

TEST(HeadScannerTest, RefusesControlCharactersInTheRequestLine) {
  Scan r = ScanHead(std::string("GET /a\0b HTTP/1.1\r\n\r\n", 21));
  EXPECT_EQ(r.state, HeadScanner::State::kRefused);
  EXPECT_EQ(r.status, 400);
}

TEST(HeadScannerTest, BoundsTheHeadInBytesAndLines) {
  // One endless request line: refused at the limit, not buffered forever.
  Scan r = ScanHead("GET /" + std::string(10000, 'a'), 4096);
  EXPECT_EQ(r.state, HeadScanner::State::kRefused);
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(r.consumed, 4097u);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 11; ++i) {
    many += "X-H" + std::to_string(i) + ": v\r\n";
  }
  r = ScanHead(many + "\r\n", 32 * 1024, 10);
  EXPECT_EQ(r.state, HeadScanner::State::kRefused);
  EXPECT_EQ(r.status, 431);
  EXPECT_NE(r.refusal.find("10 header lines"), std::string::npos);
}

TEST(PeerKeyTest, GroupsIpv6ByPrefixAndUnmapsIpv4) {
  EXPECT_EQ(PeerKey("192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(PeerKey("::ffff:192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(PeerKey("2001:db8:1:2::1"), PeerKey("2001:db8:1:2:ffff:eeee:dddd:cccc"));
  EXPECT_NE(PeerKey("2001:db8:1:2::1"), PeerKey("2001:db8:1:3::1"));
  EXPECT_EQ(PeerKey("2001:db8:1:2::1"), "2001:0db8:0001:0002::/64");
}

TEST(PeerGateTest, CountsPerPeerAndReleases) {
  PeerGate gate(2);
  EXPECT_TRUE(gate.Acquire("a"));
  EXPECT_TRUE(gate.Acquire("a"));
  EXPECT_FALSE(gate.Acquire("a"));
  EXPECT_TRUE(gate.Acquire("b"));
  gate.Release("a");
  EXPECT_EQ(gate.Open("a"), 1u);
  EXPECT_TRUE(gate.Acquire("a"));
  gate.Release("a");
  gate.Release("a");
  gate.Release("b");
  EXPECT_EQ(gate.Open("a"), 0u);
  EXPECT_EQ(gate.Open("b"), 0u);
}

}  // namespace
}  // namespace medvault::api::internal
