#include "app/config.h"

#include <algorithm>
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

namespace {

Status SetUint(uint64_t* out, std::string_view value, std::string_view origin, uint64_t min,
               uint64_t max, std::string_view message) {
  uint64_t v;
  if (!ParseUint(value, max, &v) || v < min) {
    return Bad(origin, message);
  }
  *out = v;
  return Status::Ok();
}

Status SetInt(int* out, std::string_view value, std::string_view origin, uint64_t min, uint64_t max,
              std::string_view message) {
  uint64_t v = 0;
  MV_RETURN_IF_ERROR(SetUint(&v, value, origin, min, max, message));
  *out = static_cast<int>(v);
  return Status::Ok();
}

Status SetSynchronous(bool* full, std::string_view value, std::string_view origin,
                      std::string_view message) {
  if (value == "full") {
    *full = true;
  } else if (value == "normal") {
    *full = false;
  } else {
    return Bad(origin, message);
  }
  return Status::Ok();
}

std::vector<std::string> SplitList(std::string_view value) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= value.size()) {
    const size_t comma = value.find(',', start);
    std::string_view part = Trim(value.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (!part.empty()) {
      out.emplace_back(part);
    }
    if (comma == std::string_view::npos) {
      break;
    }
    start = comma + 1;
  }
  return out;
}

// Every setting, once: the file key, the variable (MEDVAULT_ + upper case)
// and the flag (--key-with-dashes) all come from this table, so a new setting
// cannot be forgotten by one of them. `example` is a valid value that differs
// from the default (config_test applies each through every channel).
const std::vector<SettingDef>& SettingTable() {
  using V = std::string_view;
  static const std::vector<SettingDef> kTable = {
      {"data", "/srv/medvault",
       [](Config& c, V v, V o) {
         if (v.empty()) {
           return Bad(o, "data directory is empty");
         }
         c.data_dir = std::string(v);
         return Status::Ok();
       }},
      {"listen", "127.0.0.1:9090",
       [](Config& c, V v, V o) {
         Status st = ParseListen(v, &c.host, &c.port);
         return st.ok() ? st : Bad(o, st.message());
       }},
      {"tls_cert", "/etc/medvault/cert.pem",
       [](Config& c, V v, V) {
         c.tls_cert = std::string(v);
         return Status::Ok();
       }},
      {"tls_key", "/etc/medvault/key.pem",
       [](Config& c, V v, V) {
         c.tls_key = std::string(v);
         return Status::Ok();
       }},
      {"max_attachment_bytes", "2048",
       [](Config& c, V v, V o) {
         return SetUint(&c.max_attachment_bytes, v, o, 1024, 1ull << 34,
                        "max_attachment_bytes must be an integer between 1024 and 17179869184");
       }},
      {"max_json_bytes", "4096",
       [](Config& c, V v, V o) {
         return SetUint(&c.max_json_bytes, v, o, 1024, 64ull << 20,
                        "max_json_bytes must be an integer between 1024 and 67108864");
       }},
      {"io_threads", "3",
       [](Config& c, V v, V o) {
         return SetInt(&c.io_threads, v, o, 1, 64,
                       "io_threads must be an integer between 1 and 64");
       }},
      {"worker_threads", "8",
       [](Config& c, V v, V o) {
         return SetInt(&c.worker_threads, v, o, 2, 1024,
                       "worker_threads must be an integer between 2 and 1024");
       }},
      {"header_timeout_seconds", "7",
       [](Config& c, V v, V o) {
         return SetInt(&c.header_timeout_seconds, v, o, 1, 3600,
                       "header_timeout_seconds must be an integer between 1 and 3600");
       }},
      {"body_timeout_seconds", "45",
       [](Config& c, V v, V o) {
         return SetInt(&c.body_timeout_seconds, v, o, 1, 3600,
                       "body_timeout_seconds must be an integer between 1 and 3600");
       }},
      {"max_connections_per_peer", "32",
       [](Config& c, V v, V o) {
         return SetInt(&c.max_connections_per_peer, v, o, 1, 65536,
                       "max_connections_per_peer must be an integer between 1 and 65536");
       }},
      {"max_connections", "512",
       [](Config& c, V v, V o) {
         return SetInt(&c.max_connections, v, o, 1, 65536,
                       "max_connections must be an integer between 1 and 65536");
       }},
      {"log_level", "debug",
       [](Config& c, V v, V o) {
         LogLevel l;
         if (!ParseLogLevel(v, &l)) {
           return Bad(o, "log_level must be one of debug, info, warn, error");
         }
         c.log_level = std::string(v);
         return Status::Ok();
       }},
      {"sqlite_synchronous", "normal",
       [](Config& c, V v, V o) {
         return SetSynchronous(&c.sqlite_synchronous_full, v, o,
                               "sqlite_synchronous must be 'full' or 'normal'");
       }},
      {"ledger_synchronous", "normal",
       [](Config& c, V v, V o) {
         return SetSynchronous(&c.ledger_synchronous_full, v, o,
                               "ledger_synchronous must be 'full' or 'normal'");
       }},
      {"ledger_origin", "example.org/log",
       [](Config& c, V v, V o) {
         if (v.empty() || v.size() > 128 || v.find_first_of(" \t\n+") != V::npos) {
           return Bad(o, "ledger_origin must be 1..128 characters without spaces or '+'");
         }
         c.ledger_origin = std::string(v);
         return Status::Ok();
       }},
      {"witness_keys", "a+00000000+AQ, b+11111111+AQ",
       [](Config& c, V v, V) {
         c.witness_keys = SplitList(v);
         return Status::Ok();
       }},
      {"witness_urls", "http://127.0.0.1:9001, https://witness.example.org",
       [](Config& c, V v, V o) {
         std::vector<std::string> urls = SplitList(v);
         for (const std::string& u : urls) {
           if (u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0) {
             return Bad(o, "witness_urls must be http:// or https:// URLs");
           }
         }
         c.witness_urls = std::move(urls);
         return Status::Ok();
       }},
      {"ledger_checkpoint_interval_seconds", "30",
       [](Config& c, V v, V o) {
         return SetInt(&c.ledger_checkpoint_interval_seconds, v, o, 0, 24 * 60 * 60,
                       "ledger_checkpoint_interval_seconds must be an integer between 0 and 86400");
       }},
      {"ledger_checkpoint_every_entries", "50",
       [](Config& c, V v, V o) {
         return SetUint(&c.ledger_checkpoint_every_entries, v, o, 0, 1000000000,
                        "ledger_checkpoint_every_entries must be an integer between 0 and "
                        "1000000000");
       }},
      {"witness_quorum", "2",
       [](Config& c, V v, V o) {
         return SetInt(&c.witness_quorum, v, o, 1, 64,
                       "witness_quorum must be an integer between 1 and 64");
       }},
      {"scrub_interval_minutes", "0",
       [](Config& c, V v, V o) {
         return SetInt(&c.scrub_interval_minutes, v, o, 0, 7 * 24 * 60,
                       "scrub_interval_minutes must be an integer between 0 and 10080");
       }},
      {"scrub_orphan_grace_seconds", "7200",
       [](Config& c, V v, V o) {
         // At least 10 minutes: an import stores all its objects before
         // the one transaction that references them.
         return SetInt(&c.scrub_orphan_grace_seconds, v, o, 600, 30 * 24 * 3600,
                       "scrub_orphan_grace_seconds must be an integer between 600 and 2592000");
       }},
      {"account_recovery_wait_minutes", "60",
       [](Config& c, V v, V o) {
         return SetInt(&c.account_recovery_wait_minutes, v, o, 0, 14 * 24 * 60,
                       "account_recovery_wait_minutes must be an integer between 0 and 20160");
       }},
      {"policy_file", "/etc/medvault/policy.conf",
       [](Config& c, V v, V) {
         c.policy_file = std::string(v);
         return Status::Ok();
       }},
      {"argon2_memory_kib", "8",
       [](Config& c, V v, V o) {
         return SetUint(&c.argon2_memory_kib, v, o, 8, 4ull << 20,
                        "argon2_memory_kib must be an integer between 8 and 4194304");
       }},
      {"argon2_iterations", "1",
       [](Config& c, V v, V o) {
         return SetUint(&c.argon2_iterations, v, o, 1, 64,
                        "argon2_iterations must be an integer between 1 and 64");
       }},
      {"access_token_minutes", "5",
       [](Config& c, V v, V o) {
         return SetInt(&c.access_token_minutes, v, o, 1, 24 * 60,
                       "access_token_minutes must be an integer between 1 and 1440");
       }},
      {"web_dir", "none",
       [](Config& c, V v, V) {
         c.web_dir = std::string(v);
         return Status::Ok();
       }},
  };
  return kTable;
}

// Edit distance, for "did you mean" (names are short).
size_t Distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

}  // namespace

const std::vector<SettingDef>& Settings() { return SettingTable(); }

const std::vector<std::string_view>& ConfigKeys() {
  static const std::vector<std::string_view> kKeys = [] {
    std::vector<std::string_view> keys;
    for (const SettingDef& s : SettingTable()) {
      keys.push_back(s.key);
    }
    return keys;
  }();
  return kKeys;
}

std::string EnvironmentVariableOf(std::string_view key) {
  std::string name = "MEDVAULT_";
  for (char ch : key) {
    name.push_back(static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 'a' + 'A' : ch));
  }
  return name;
}

const std::vector<std::string_view>& NonSettingEnvironmentVariables() {
  // Read by scripts and tests, never by medvault itself (grep the repository
  // for MEDVAULT_ before adding one): scripts/run-demo.sh (BIN, SYNTHEA_DIR,
  // DEMO_IMPORTS), scripts/e2e.sh and e2e/ (BIN, CHROMIUM, URL, CREDENTIALS,
  // ARTIFACTS), scripts/run-bench.sh (SHARED_TESTDATA).
  static const std::vector<std::string_view> kNames = {
      "MEDVAULT_BIN", "MEDVAULT_SYNTHEA_DIR", "MEDVAULT_DEMO_IMPORTS", "MEDVAULT_CHROMIUM",
      "MEDVAULT_URL", "MEDVAULT_CREDENTIALS", "MEDVAULT_ARTIFACTS",    "MEDVAULT_SHARED_TESTDATA"};
  return kNames;
}

std::vector<UnknownVariable> UnknownEnvironmentVariables(
    const std::map<std::string, std::string>& env) {
  std::vector<UnknownVariable> out;
  const auto& ignored = NonSettingEnvironmentVariables();
  for (const auto& [name, value] : env) {
    if (name.rfind("MEDVAULT_", 0) != 0 ||
        std::find(ignored.begin(), ignored.end(), name) != ignored.end()) {
      continue;
    }
    UnknownVariable u;
    u.name = name;
    size_t best = 3;  // suggest only a near miss
    for (const SettingDef& s : SettingTable()) {
      const std::string known = EnvironmentVariableOf(s.key);
      if (known == name) {
        best = 0;
        u.name.clear();
        break;
      }
      const size_t d = Distance(name, known);
      if (d < best) {
        best = d;
        u.did_you_mean = known;
      }
    }
    if (!u.name.empty()) {
      out.push_back(std::move(u));
    }
  }
  return out;
}

Status ApplySetting(Config& c, std::string_view key, std::string_view value,
                    std::string_view origin) {
  for (const SettingDef& s : SettingTable()) {
    if (s.key == key) {
      return s.apply(c, value, origin);
    }
  }
  return Bad(origin, "unknown setting '" + std::string(key.substr(0, 64)) + "'");
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
  for (const SettingDef& s : SettingTable()) {
    const std::string name = EnvironmentVariableOf(s.key);
    auto it = env.find(name);
    if (it != env.end()) {
      MV_RETURN_IF_ERROR(s.apply(config, it->second, name));
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
