#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "app/app.h"
#include "app/cli_internal.h"
#include "app/command.h"
#include "common/file_util.h"
#include "common/log.h"

namespace medvault::app {

namespace {

constexpr std::string_view kVersion = "0.1.0";

constexpr std::string_view kUsage =
    "medvault: encrypted, patient-centred health records\n"
    "\n"
    "usage: medvault <command> [options]\n"
    "\n"
    "commands:\n"
    "  init          initialise a data directory (platform key, policy, database)\n"
    "  serve         run the HTTP API server\n"
    "  seed-demo     add a demo hospital, accounts, patients and readings\n"
    "  institution   create or list institutions\n"
    "  department    create or list departments of an institution\n"
    "  account       create, list, disable, enable accounts; set roles; reset credentials\n"
    "  relationship  start or end a treating relationship\n"
    "  totp-code     print the current one-time code of a TOTP secret (demo, tests)\n"
    "  ledger        verify the tamper-evident log (offline or against a server); print its key\n"
    "  witness       run a witness that checks and cosigns the log's checkpoints\n"
    "  scrub         check every stored object against its recorded hash\n"
    "  import        import C-CDA and FHIR R4 documents (files or directories)\n"
    "  export        export a patient's record as FHIR R4 or C-CDA\n"
    "  version       print the version\n"
    "\n"
    "Run 'medvault <command> --help' for the options of a command.\n";

constexpr std::string_view kInitUsage =
    "usage: medvault init [--data DIR] [--self-signed-cert]\n"
    "\n"
    "Creates DIR (default ./medvault-data, mode 0700) with the platform key-encryption key\n"
    "(keys/platform.kek, 0600), the metrics scrape token (metrics.token, 0600), the\n"
    "default access policy (policy.conf), the database and a commented medvault.conf.\n"
    "Accounts are made with 'medvault account create' (or 'medvault seed-demo').\n"
    "\n"
    "  --data DIR            data directory (env MEDVAULT_DATA)\n"
    "  --self-signed-cert    also write tls/cert.pem and tls/key.pem (ECDSA P-256, one year,\n"
    "                        for localhost); allowed on an initialised directory\n";

constexpr std::string_view kServeUsage =
    "usage: medvault serve [--data DIR] [--listen HOST:PORT] [options]\n"
    "\n"
    "Serves the JSON API under /api/v1/ plus /healthz, /readyz and /metrics. Binds loopback\n"
    "by default; any other address requires TLS. Settings come from DIR/medvault.conf (or\n"
    "--config FILE), then MEDVAULT_* environment variables, then these flags:\n"
    "\n"
    "  --data DIR                   data directory (default ./medvault-data)\n"
    "  --listen HOST:PORT           address (default 127.0.0.1:8080)\n"
    "  --config FILE                configuration file (default DIR/medvault.conf)\n"
    "  --tls-cert FILE              PEM certificate; with --tls-key enables HTTPS\n"
    "  --tls-key FILE               PEM private key\n"
    "  --max-attachment-bytes N     largest attachment (default 67108864)\n"
    "  --max-json-bytes N           largest JSON body (default 1048576)\n"
    "  --worker-threads N           HTTP workers (default 64)\n"
    "  --log-level LEVEL            debug, info, warn or error (default info)\n"
    "  --sqlite-synchronous MODE    full (default) or normal\n"
    "  --web-dir DIR                the web portal's files served at / (default: the 'web'\n"
    "                               directory beside the binary, made by make build; 'none'\n"
    "                               serves the API only)\n"
    "Every other setting of medvault.conf is a flag too (--ledger-synchronous MODE,\n"
    "--scrub-interval-minutes N, ...) and a variable (MEDVAULT_SCRUB_INTERVAL_MINUTES).\n";

constexpr std::string_view kSeedUsage =
    "usage: medvault seed-demo [--data DIR]\n"
    "\n"
    "Adds a demo hospital with two departments, demo accounts (admin, two doctors, a\n"
    "nurse, a privacy officer, a patient), three fictional patients with blood pressure,\n"
    "glucose, weight, ECG and a narrative note, and treating relationships. Prints the\n"
    "credentials and writes them to DIR/demo-credentials.txt (mode 0600).\n";

}  // namespace

// Parses --key value / --key=value. `switch_names` take no value.
Result<Config> LoadDataConfig(const ParsedArgs& args) {
  ParsedArgs settings;
  for (const char* key : {"data", "config"}) {
    if (auto it = args.values.find(key); it != args.values.end()) {
      settings.values[key] = it->second;
    }
  }
  return LoadConfig(settings);
}

Result<ParsedArgs> ParseArgs(int argc, char** argv, int start,
                             const std::vector<std::string>& value_names,
                             const std::vector<std::string>& switch_names, bool allow_positional) {
  ParsedArgs out;
  for (int i = start; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      out.help = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      if (allow_positional) {
        out.positional.push_back(arg);
        continue;
      }
      return Status::InvalidArgument("unexpected argument '" + arg + "'");
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    const size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (std::find(switch_names.begin(), switch_names.end(), name) != switch_names.end()) {
      if (has_value) {
        return Status::InvalidArgument("--" + name + " takes no value");
      }
      out.switches.push_back(name);
      continue;
    }
    if (std::find(value_names.begin(), value_names.end(), name) == value_names.end()) {
      return Status::InvalidArgument("unknown option --" + name);
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        return Status::InvalidArgument("--" + name + " needs a value");
      }
      value = argv[++i];
    }
    out.values[name] = value;
  }
  return out;
}

std::string FlagToKey(std::string flag) {
  for (char& c : flag) {
    if (c == '-') {
      c = '_';
    }
  }
  return flag;
}

int Fail(const Status& st) {
  std::cerr << "medvault: " << st.message() << "\n";
  return st.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

// Defaults < file < environment < flags. The data directory is resolved
// first (flags, then environment) because the default file lives in it.
Result<Config> LoadConfig(const ParsedArgs& args) {
  Config config;
  const auto env = CurrentEnvironment();
  // A mistyped variable would otherwise be ignored without a word.
  for (const UnknownVariable& u : UnknownEnvironmentVariables(env)) {
    Log(LogLevel::kWarn, "config.unknown_variable",
        {{"name", u.name},
         {"hint", u.did_you_mean.empty() ? std::string("not a medvault setting; ignored")
                                         : "ignored; did you mean " + u.did_you_mean + "?"}});
  }
  if (auto it = env.find("MEDVAULT_DATA"); it != env.end()) {
    MV_RETURN_IF_ERROR(ApplySetting(config, "data", it->second, "MEDVAULT_DATA"));
  }
  if (auto it = args.values.find("data"); it != args.values.end()) {
    MV_RETURN_IF_ERROR(ApplySetting(config, "data", it->second, "--data"));
  }
  std::string file;
  if (auto it = args.values.find("config"); it != args.values.end()) {
    file = it->second;
  } else if (std::filesystem::exists(DataDirLayout(config.data_dir).config_file)) {
    file = DataDirLayout(config.data_dir).config_file.string();
  }
  if (!file.empty()) {
    MV_RETURN_IF_ERROR(ApplyConfigFile(config, file));
  }
  MV_RETURN_IF_ERROR(ApplyEnvironment(config, env));
  for (const auto& [flag, value] : args.values) {
    if (flag == "config") {
      continue;
    }
    MV_RETURN_IF_ERROR(ApplySetting(config, FlagToKey(flag), value, "--" + flag));
  }
  if (config.tls_cert.empty() != config.tls_key.empty()) {
    return Status::InvalidArgument("tls_cert and tls_key must be given together");
  }
  return config;
}

namespace {

int Init(const Command& cmd);
int Serve(const Command& cmd);
int Seed(const Command& cmd);

int RunInit(int argc, char** argv) {
  static const CommandSpec spec{.usage = kInitUsage,
                                .values = {"data"},
                                .switches = {"self-signed-cert"},
                                .positional = false,
                                .settings = SettingFlags::kAll,
                                .first = 2};
  return RunCommand(spec, argc, argv, [](const Command& cmd) { return Init(cmd); });
}

int Init(const Command& cmd) {
  const Config* config = &cmd.config();
  const bool cert = cmd.Switch("self-signed-cert");
  Status st = InitDataDir(config->data_dir, cert);
  if (!st.ok()) {
    return Fail(st);
  }
  const DataDirLayout layout(config->data_dir);
  std::cout << "initialised " << config->data_dir << "\n"
            << "  platform key:    " << layout.kek.string() << " (mode 0600; back it up apart "
            << "from the data)\n"
            << "  metrics token:   " << layout.metrics_token.string() << " (mode 0600)\n"
            << "  access policy:   " << layout.policy_file.string() << "\n";
  if (cert) {
    std::cout << "  TLS certificate: " << layout.tls_cert.string() << "\n"
              << "  TLS key:         " << layout.tls_key.string() << "\n";
  }
  std::cout << "next: medvault account create --data " << config->data_dir
            << " --username NAME --display-name NAME --role institution-admin\n"
            << "      medvault serve --data " << config->data_dir << "\n";
  return 0;
}

// The portal directory to serve: the setting, or "web" beside the binary
// (where `make build` copies web/) when it exists; "" for none.
std::string PortalDirectory(const std::string& setting) {
  if (setting == "none") {
    return "";
  }
  if (!setting.empty()) {
    return setting;
  }
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) {
    return "";
  }
  const std::filesystem::path dir = exe.parent_path() / "web";
  return std::filesystem::is_directory(dir, ec) ? dir.string() : "";
}

int RunServe(int argc, char** argv) {
  // Every setting is a flag (--key-with-dashes), from the one table.
  static const CommandSpec spec{.usage = kServeUsage,
                                .values =
                                    [] {
                                      std::vector<std::string> flags = SettingFlagNames();
                                      flags.push_back("config");
                                      return flags;
                                    }(),
                                .switches = {},
                                .positional = false,
                                .settings = SettingFlags::kAll,
                                .first = 2};
  return RunCommand(spec, argc, argv, [](const Command& cmd) { return Serve(cmd); });
}

int Serve(const Command& cmd) {
  const Config* config = &cmd.config();
  LogLevel level = LogLevel::kInfo;
  ParseLogLevel(config->log_level, &level);
  SetLogLevel(level);
  if (config->tls_cert.empty() && !api::IsLoopbackHost(config->host)) {
    return Fail(Status::FailedPrecondition(
        "refusing to listen on " + config->host +
        " without TLS. Either listen on 127.0.0.1, or give --tls-cert and --tls-key "
        "(medvault init --self-signed-cert --data DIR makes a pair in DIR/tls/)"));
  }
  auto token_hash = LoadTokenHash(DataDirLayout(config->data_dir).metrics_token);
  if (!token_hash.ok()) {
    return Fail(token_hash.status());
  }
  auto runtime = OpenRuntime(*config);
  if (!runtime.ok()) {
    return Fail(runtime.status());
  }
  api::ServerOptions options;
  options.host = config->host;
  options.port = config->port;
  options.tls_cert_path = config->tls_cert;
  options.tls_key_path = config->tls_key;
  options.max_json_bytes = config->max_json_bytes;
  options.max_attachment_bytes = config->max_attachment_bytes;
  options.io_threads = config->io_threads;
  options.worker_threads = config->worker_threads;
  options.header_timeout_seconds = config->header_timeout_seconds;
  options.body_timeout_seconds = config->body_timeout_seconds;
  options.max_connections_per_peer = config->max_connections_per_peer;
  options.max_connections = config->max_connections;
  options.metrics_token_sha256 = std::move(*token_hash);
  options.web_dir = PortalDirectory(config->web_dir);
  Runtime& rt = **runtime;
  api::Services services = rt.services();
  std::unique_ptr<integrity::WriteLog> write_log = LedgerWriteLog(rt);  // outlives the scrubber
  std::unique_ptr<integrity::ScrubScheduler> scrubber;
  if (config->scrub_interval_minutes > 0) {
    integrity::SchedulerOptions so;
    so.scrub.write_log = write_log.get();
    so.scrub.orphan_grace = std::chrono::seconds(config->scrub_orphan_grace_seconds);
    so.initial_delay = std::chrono::minutes(1);
    so.interval = std::chrono::minutes(config->scrub_interval_minutes);
    so.report_path = DataDirLayout(config->data_dir).scrub_report;
    if (Status made = MakePrivateDirectory(so.report_path.parent_path()); !made.ok()) {
      return Fail(made);
    }
    so.scrub.max_bytes_per_second = 64ull << 20;  // leave the disk to the users
    so.scrub.on_finding = [&rt](const integrity::Finding& f) {
      MV_ASSIGN_OR_RETURN(ledger::Entry e, enforce::ScrubFindingEntry(f, rt.patient_ref_key));
      return rt.ledger->Append({std::move(e)});
    };
    scrubber = std::make_unique<integrity::ScrubScheduler>(rt.metadata.get(), rt.objects.get(),
                                                           rt.records.get(), so);
    integrity::ScrubScheduler* sched = scrubber.get();
    services.scrub_report = [sched]() -> std::string {
      auto report = sched->LatestReport();
      return report.has_value() ? integrity::ReportJson(*report) : std::string();
    };
    services.extra_metrics = [sched]() {
      const integrity::ScrubStats st = sched->Stats();
      std::string out;
      out += "# HELP medvault_scrub_runs_total Integrity scrubs finished.\n";
      out += "# TYPE medvault_scrub_runs_total counter\nmedvault_scrub_runs_total " +
             std::to_string(st.runs) + "\n";
      out += "# HELP medvault_scrub_findings_total Integrity findings (changed, missing, ...).\n";
      out += "# TYPE medvault_scrub_findings_total counter\nmedvault_scrub_findings_total " +
             std::to_string(st.findings_total) + "\n";
      out += "# HELP medvault_scrub_last_findings Findings of the last scrub.\n";
      out += "# TYPE medvault_scrub_last_findings gauge\nmedvault_scrub_last_findings " +
             std::to_string(st.last_findings) + "\n";
      out +=
          "# HELP medvault_scrub_damage_findings_total Integrity findings that are damage "
          "(all but orphans).\n";
      out +=
          "# TYPE medvault_scrub_damage_findings_total counter\n"
          "medvault_scrub_damage_findings_total " +
          std::to_string(st.damage_findings_total) + "\n";
      out += "# HELP medvault_scrub_last_damage_findings Damage findings of the last scrub.\n";
      out +=
          "# TYPE medvault_scrub_last_damage_findings gauge\n"
          "medvault_scrub_last_damage_findings " +
          std::to_string(st.last_damage_findings) + "\n";
      return out;
    };
  }
  auto server = api::CreateServer(options, services);
  if (!server.ok()) {
    return Fail(server.status());
  }
  // Signals are handled by sigwait on this thread; block them before the
  // server starts its threads so they inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // Keys live in this process's memory: no core files, no ptrace by others.
  struct rlimit no_core {
    0, 0
  };
  setrlimit(RLIMIT_CORE, &no_core);
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  // Changes made by CLI commands (or another server) on this data directory
  // reach this server within one period (docs/architecture.md).
  ChangeWatcher watcher(rt.accounts.get(), rt.access.get(), std::chrono::milliseconds(200),
                        rt.changes.get());
  Status st = (*server)->Start();
  if (!st.ok()) {
    return Fail(st);
  }
  const std::string scheme = config->tls_cert.empty() ? "http" : "https";
  std::cout << "medvault listening on " << scheme << "://" << config->host << ":"
            << (*server)->port() << std::endl;
  int sig = 0;
  sigwait(&signals, &sig);
  Log(LogLevel::kInfo, "server.stopping", {{"signal", sig}});
  (*server)->Stop();
  if (scrubber) {
    scrubber->Stop();
  }
  return 0;
}

int RunSeed(int argc, char** argv) {
  static const CommandSpec spec{.usage = kSeedUsage,
                                .values = {"data"},
                                .switches = {},
                                .positional = false,
                                .settings = SettingFlags::kAll,
                                .first = 2};
  return RunCommand(spec, argc, argv, [](const Command& cmd) { return Seed(cmd); });
}

int Seed(const Command& cmd) {
  const Config* config = &cmd.config();
  auto runtime = cmd.OpenRuntime();
  if (!runtime.ok()) {
    return Fail(runtime.status());
  }
  auto demo = SeedDemoData(**runtime);
  if (!demo.ok()) {
    return Fail(demo.status());
  }
  // Printed once and kept in DATA/demo-credentials.txt (0600): demo only.
  std::string text =
      "# medvault demo accounts (fictional). Sign in with username and password;\n"
      "# accounts with a TOTP secret also need: medvault totp-code SECRET\n";
  for (const DemoAccount& a : demo->accounts) {
    text += a.role + "\t" + a.username + "\t" + a.password + "\t" +
            (a.totp_secret.empty() ? "-" : a.totp_secret) + "\t" + a.account_id + "\n";
  }
  text += "# demo patients\n";
  for (const std::string& id : demo->patient_ids) {
    text += "patient-record\t" + id + "\n";
  }
  Status written =
      WritePrivateFile(DataDirLayout(config->data_dir).root / "demo-credentials.txt", text);
  if (!written.ok()) {
    return Fail(written);
  }
  std::cout << "role\tusername\tpassword\ttotp-secret\taccount-id\n" << text;
  return 0;
}

}  // namespace

int Main(int argc, char** argv) {
  Status init = crypto::InitCrypto();
  if (!init.ok()) {
    return Fail(init);
  }
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kUsage;
    return 0;
  }
  if (command == "version" || command == "--version") {
    std::cout << "medvault " << kVersion << "\n";
    return 0;
  }
  if (command == "init") {
    return RunInit(argc, argv);
  }
  if (command == "serve") {
    return RunServe(argc, argv);
  }
  if (command == "seed-demo") {
    return RunSeed(argc, argv);
  }
  if (command == "import" || command == "export") {
    return RunExchange(argc, argv);
  }
  if (command == "ledger" || command == "witness" || command == "scrub") {
    return RunLedgerCommands(argc, argv);
  }
  if (command == "institution" || command == "department" || command == "account" ||
      command == "relationship" || command == "totp-code") {
    return RunAdmin(argc, argv);
  }
  std::cerr << "medvault: unknown command '" << command << "'\n\n" << kUsage;
  return 2;
}

}  // namespace medvault::app
