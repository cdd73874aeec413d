// Internal to src/app: configuration from defaults, a file, the environment
// and flags (in increasing precedence), validated at start.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace medvault::app {

struct Config {
  std::string data_dir = "./medvault-data";
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string tls_cert;
  std::string tls_key;
  uint64_t max_attachment_bytes = 64ull * 1024 * 1024;
  uint64_t max_json_bytes = 1024 * 1024;
  int io_threads = 2;       // HTTP connections (event-driven)
  int worker_threads = 64;  // HTTP handlers (they may block on storage)
  // Slow-client bounds of the HTTP server (api::ServerOptions).
  int header_timeout_seconds = 5;
  int body_timeout_seconds = 30;
  int max_connections_per_peer = 64;
  int max_connections = 256;
  std::string log_level = "info";
  bool sqlite_synchronous_full = true;
  // The access policy; "" = DATA/policy.conf (written by init).
  std::string policy_file;
  // Argon2id cost of password hashes (libsodium's INTERACTIVE by default).
  uint64_t argon2_memory_kib = 64 * 1024;
  uint64_t argon2_iterations = 2;
  int access_token_minutes = 15;
  // How long a recovery of a patient's or proxy's account stays open before
  // a second administrator can complete it (the person is notified and may
  // stop it meanwhile).
  int account_recovery_wait_minutes = 24 * 60;
  // The ledger's checkpoint origin (and signing key name).
  std::string ledger_origin = "medvault.local/ledger";
  // Witnesses whose cosignatures count (C2SP vkeys, comma-separated) and how
  // many of them make a checkpoint "witnessed".
  std::vector<std::string> witness_keys;
  int witness_quorum = 1;
  // Witnesses the server pushes each new checkpoint to (C2SP tlog-witness
  // add-checkpoint submission prefixes, e.g. http://witness.example:9000),
  // comma-separated; their cosignatures count when their key is in
  // witness_keys.
  std::vector<std::string> witness_urls;
  // Durability of the ledger's own appends (the decisions of reads): full =
  // fsync per group commit (survives power loss), normal = survives a crash
  // of the process, fsynced at WAL checkpoints (much faster reads). Entries
  // of writes always commit with their write at sqlite_synchronous.
  bool ledger_synchronous_full = true;
  // Checkpoints are signed automatically (and at shutdown) when entries are
  // past the newest one and it is this old, or this many entries are past it
  // (0 = that trigger off), so the unsigned tail stays short.
  int ledger_checkpoint_interval_seconds = 10;
  uint64_t ledger_checkpoint_every_entries = 1000;
  // Background integrity scrub every N minutes (0 = off).
  int scrub_interval_minutes = 60;
  // Unreferenced objects younger than this are left alone by the scrubber
  // (their write may be in flight); older ones are reclaimed.
  int scrub_orphan_grace_seconds = 3600;
  // The web portal's files: "" = the "web" directory beside the binary when
  // it exists (make build puts it there), "none" = no portal.
  std::string web_dir;

  bool operator==(const Config&) const = default;
};

// One setting: its file key ("listen"), a valid example value that differs
// from the default, and how it is applied (InvalidArgument naming `origin`).
// The environment variable (MEDVAULT_LISTEN) and the flag (--listen) are
// derived from the key.
struct SettingDef {
  std::string_view key;
  std::string_view example;
  Status (*apply)(Config& config, std::string_view value, std::string_view origin);
};
// Every setting, in the order of the documentation.
const std::vector<SettingDef>& Settings();
// "MEDVAULT_" + the key in upper case.
std::string EnvironmentVariableOf(std::string_view key);
// MEDVAULT_* variables that are not settings (read by scripts and tests):
// never reported as unknown.
const std::vector<std::string_view>& NonSettingEnvironmentVariables();
struct UnknownVariable {
  std::string name;
  std::string did_you_mean;  // the nearest setting's variable, or ""
};
// The MEDVAULT_* names in `env` that are neither settings nor in the list
// above (a typo such as MEDVAULT_LISEN), sorted by name. Start-up warns about
// each; it does not fail.
std::vector<UnknownVariable> UnknownEnvironmentVariables(
    const std::map<std::string, std::string>& env);

// Parses HOST:PORT or [IPv6]:PORT. InvalidArgument with the reason.
Status ParseListen(std::string_view text, std::string* host, int* port);

// Applies one setting by its file key ("listen", "tls_cert", ...). `origin`
// names where it came from for error messages ("medvault.conf:12",
// "MEDVAULT_LISTEN", "--listen").
Status ApplySetting(Config& config, std::string_view key, std::string_view value,
                    std::string_view origin);

// Reads `key = value` lines; '#' starts a comment; blank lines ignored.
// InvalidArgument naming file and line for syntax errors, unknown keys and bad values.
Status ApplyConfigFile(Config& config, const std::string& path);
Status ApplyConfigText(Config& config, std::string_view text, std::string_view file_name);

// Applies MEDVAULT_<KEY> variables from `env` (name -> value).
Status ApplyEnvironment(Config& config, const std::map<std::string, std::string>& env);
std::map<std::string, std::string> CurrentEnvironment();

// Keys understood in files; flags are --key-with-dashes, env MEDVAULT_KEY.
const std::vector<std::string_view>& ConfigKeys();

}  // namespace medvault::app
