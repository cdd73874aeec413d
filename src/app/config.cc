#include "app/config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/log.h"

extern char** environ;

namespace medvault::app {

namespace {

Status Bad(std::string_view origin, std::string_view what) {
  return Status::InvalidArgument(std::string(origin) + ": " + std::string(what));
}

bool ParseUint(std::string_view s, uint64_t max, uint64_t* out) {
  if (s.empty() || s.size() > 19) {
    return false;
  }
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return false;
    }
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > max) {
    return false;
  }
  *out = v;
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

const std::vector<std::string_view>& ConfigKeys() {
  static const std::vector<std::string_view> kKeys = {"data",
                                                      "listen",
                                                      "tls_cert",
                                                      "tls_key",
                                                      "max_attachment_bytes",
                                                      "max_json_bytes",
                                                      "worker_threads",
                                                      "log_level",
                                                      "sqlite_synchronous",
                                                      "policy_file",
                                                      "argon2_memory_kib",
                                                      "argon2_iterations",
                                                      "access_token_minutes",
                                                      "web_dir"};
  return kKeys;
}

Status ParseListen(std::string_view text, std::string* host, int* port) {
  std::string_view h;
  std::string_view p;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Status::InvalidArgument("expected [IPv6]:PORT");
    }
    h = text.substr(1, close - 1);
    p = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return Status::InvalidArgument("expected HOST:PORT, e.g. 127.0.0.1:8080");
    }
    h = text.substr(0, colon);
    p = text.substr(colon + 1);
  }
  if (h.empty()) {
    return Status::InvalidArgument("host is empty (use 127.0.0.1 for loopback)");
  }
  uint64_t v = 0;
  if (!ParseUint(p, 65535, &v) || v == 0) {
    return Status::InvalidArgument("port must be an integer between 1 and 65535");
  }
  *host = std::string(h);
  *port = static_cast<int>(v);
  return Status::Ok();
}

Status ApplySetting(Config& c, std::string_view key, std::string_view value,
                    std::string_view origin) {
  if (key == "data") {
    if (value.empty()) {
      return Bad(origin, "data directory is empty");
    }
    c.data_dir = std::string(value);
  } else if (key == "listen") {
    Status st = ParseListen(value, &c.host, &c.port);
    if (!st.ok()) {
      return Bad(origin, st.message());
    }
  } else if (key == "web_dir") {
    c.web_dir = std::string(value);
  } else if (key == "tls_cert") {
    c.tls_cert = std::string(value);
  } else if (key == "tls_key") {
    c.tls_key = std::string(value);
  } else if (key == "max_attachment_bytes") {
    uint64_t v;
    if (!ParseUint(value, 1ull << 34, &v) || v < 1024) {
      return Bad(origin, "max_attachment_bytes must be an integer between 1024 and 17179869184");
    }
    c.max_attachment_bytes = v;
  } else if (key == "max_json_bytes") {
    uint64_t v;
    if (!ParseUint(value, 64ull << 20, &v) || v < 1024) {
      return Bad(origin, "max_json_bytes must be an integer between 1024 and 67108864");
    }
    c.max_json_bytes = v;
  } else if (key == "worker_threads") {
    uint64_t v;
    if (!ParseUint(value, 1024, &v) || v < 2) {
      return Bad(origin, "worker_threads must be an integer between 2 and 1024");
    }
    c.worker_threads = static_cast<int>(v);
  } else if (key == "log_level") {
    LogLevel l;
    if (!ParseLogLevel(value, &l)) {
      return Bad(origin, "log_level must be one of debug, info, warn, error");
    }
    c.log_level = std::string(value);
  } else if (key == "sqlite_synchronous") {
    if (value == "full") {
      c.sqlite_synchronous_full = true;
    } else if (value == "normal") {
      c.sqlite_synchronous_full = false;
    } else {
      return Bad(origin, "sqlite_synchronous must be 'full' or 'normal'");
    }
  } else if (key == "ledger_synchronous") {
    if (value == "full") {
      c.ledger_synchronous_full = true;
    } else if (value == "normal") {
      c.ledger_synchronous_full = false;
    } else {
      return Bad(origin, "ledger_synchronous must be 'full' or 'normal'");
    }
  } else if (key == "ledger_origin") {
    if (value.empty() || value.size() > 128 ||
        value.find_first_of(" \t\n+") != std::string_view::npos) {
      return Bad(origin, "ledger_origin must be 1..128 characters without spaces or '+'");
    }
    c.ledger_origin = std::string(value);
  } else if (key == "witness_keys") {
    c.witness_keys.clear();
    size_t start = 0;
    while (start <= value.size()) {
      const size_t comma = value.find(',', start);
      std::string_view part = value.substr(
          start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      while (!part.empty() && part.front() == ' ') {
        part.remove_prefix(1);
      }
      while (!part.empty() && part.back() == ' ') {
        part.remove_suffix(1);
      }
      if (!part.empty()) {
        c.witness_keys.emplace_back(part);
      }
      if (comma == std::string_view::npos) {
        break;
      }
      start = comma + 1;
    }
  } else if (key == "witness_urls") {
    c.witness_urls.clear();
    for (size_t start = 0; start <= value.size();) {
      const size_t comma = value.find(',', start);
      const std::string_view part = Trim(value.substr(
          start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
      if (!part.empty()) {
        if (part.substr(0, 7) != "http://" && part.substr(0, 8) != "https://") {
          return Bad(origin, "witness_urls must be http:// or https:// URLs");
        }
        c.witness_urls.emplace_back(part);
      }
      if (comma == std::string_view::npos) {
        break;
      }
      start = comma + 1;
    }
  } else if (key == "witness_quorum") {
    uint64_t v;
    if (!ParseUint(value, 64, &v) || v < 1) {
      return Bad(origin, "witness_quorum must be an integer between 1 and 64");
    }
    c.witness_quorum = static_cast<int>(v);
  } else if (key == "ledger_checkpoint_interval_seconds") {
    uint64_t v;
    if (!ParseUint(value, 24 * 60 * 60, &v)) {
      return Bad(origin,
                 "ledger_checkpoint_interval_seconds must be an integer between 0 and 86400");
    }
    c.ledger_checkpoint_interval_seconds = static_cast<int>(v);
  } else if (key == "ledger_checkpoint_every_entries") {
    uint64_t v;
    if (!ParseUint(value, 1000000000, &v)) {
      return Bad(origin,
                 "ledger_checkpoint_every_entries must be an integer between 0 and 1000000000");
    }
    c.ledger_checkpoint_every_entries = v;
  } else if (key == "scrub_interval_minutes") {
    uint64_t v;
    if (!ParseUint(value, 7 * 24 * 60, &v)) {
      return Bad(origin, "scrub_interval_minutes must be an integer between 0 and 10080");
    }
    c.scrub_interval_minutes = static_cast<int>(v);
  } else if (key == "policy_file") {
    c.policy_file = std::string(value);
  } else if (key == "argon2_memory_kib") {
    uint64_t v;
    if (!ParseUint(value, 4ull << 20, &v) || v < 8) {
      return Bad(origin, "argon2_memory_kib must be an integer between 8 and 4194304");
    }
    c.argon2_memory_kib = v;
  } else if (key == "argon2_iterations") {
    uint64_t v;
    if (!ParseUint(value, 64, &v) || v < 1) {
      return Bad(origin, "argon2_iterations must be an integer between 1 and 64");
    }
    c.argon2_iterations = v;
  } else if (key == "access_token_minutes") {
    uint64_t v;
    if (!ParseUint(value, 24 * 60, &v) || v < 1) {
      return Bad(origin, "access_token_minutes must be an integer between 1 and 1440");
    }
    c.access_token_minutes = static_cast<int>(v);
  } else {
    return Bad(origin, "unknown setting '" + std::string(key.substr(0, 64)) + "'");
  }
  return Status::Ok();
}

Status ApplyConfigText(Config& config, std::string_view text, std::string_view file_name) {
  size_t line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    const size_t hash = line.find('#');
    if (hash != std::string_view::npos) {
      line = line.substr(0, hash);
    }
    line = Trim(line);
    if (line.empty()) {
      if (end == text.size()) {
        break;
      }
      continue;
    }
    const std::string origin = std::string(file_name) + ":" + std::to_string(line_no);
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      return Bad(origin, "expected 'key = value'");
    }
    std::string_view key = Trim(line.substr(0, eq));
    std::string_view value = Trim(line.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    MV_RETURN_IF_ERROR(ApplySetting(config, key, value, origin));
    if (end == text.size()) {
      break;
    }
  }
  return Status::Ok();
}

Status ApplyConfigFile(Config& config, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::InvalidArgument("config file " + path + ": cannot be read");
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  if (text.size() > 64 * 1024) {
    return Status::InvalidArgument("config file " + path + ": larger than 64 KiB");
  }
  return ApplyConfigText(config, text, path);
}

Status ApplyEnvironment(Config& config, const std::map<std::string, std::string>& env) {
  for (std::string_view key : ConfigKeys()) {
    std::string name = "MEDVAULT_";
    for (char ch : key) {
      name.push_back(static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 'a' + 'A' : ch));
    }
    auto it = env.find(name);
    if (it != env.end()) {
      MV_RETURN_IF_ERROR(ApplySetting(config, key, it->second, name));
    }
  }
  return Status::Ok();
}

std::map<std::string, std::string> CurrentEnvironment() {
  std::map<std::string, std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    const size_t eq = kv.find('=');
    if (eq != std::string_view::npos && kv.substr(0, 9) == "MEDVAULT_") {
      out.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
    }
  }
  return out;
}

}  // namespace medvault::app
