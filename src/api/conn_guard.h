// Internal to src/api: what bounds a client before the HTTP parser sees its
// bytes (used by the transport, http_transport.h): the per-peer connection
// gate and the raw-byte check of a request head.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace medvault::api::internal {

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

// Checks a request head as raw bytes, one byte at a time, before Beast's
// parser reads it (a second, stricter opinion on framing: Beast accepts
// folded lines and duplicate identical Content-Length). The head ends at
// the empty line ("\r\n" after a line end). Refuses (status 400, or 431 for
// size): bare CR or LF line ends, obsolete line folding, header names that
// are not tokens, white space before the colon, control characters in
// values, more than one Content-Length or Transfer-Encoding, a
// Content-Length that is not digits, a Transfer-Encoding other than
// "chunked", both of them, and '%' in the headers the server interprets (a
// lenient parser or proxy that decodes %xx would read another value).
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

}  // namespace medvault::api::internal
