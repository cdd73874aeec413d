#include "api/conn_guard.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>

#include "common/status.h"

namespace medvault::api::internal {

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

// Headers the server interprets. A '%' in one of them has no use, and a
// lenient parser or proxy that %xx-decodes header values would read another
// value than the one checked here.
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
    // The request line: Beast parses it; control characters (NUL among
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

}  // namespace medvault::api::internal
