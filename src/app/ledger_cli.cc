// `medvault ledger verify|key`, `medvault witness` and `medvault scrub`.
#include <httplib.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "app/app.h"
#include "app/cli_internal.h"
#include "app/command.h"
#include "common/bytes.h"
#include "common/file_util.h"
#include "common/ids.h"
#include "common/log.h"

namespace medvault::app {
namespace {

constexpr std::string_view kLedgerUsage =
    "usage:\n"
    "  medvault ledger verify [--data DIR]\n"
    "      checks the whole log offline: every entry's hash, the order, every checkpoint's root\n"
    "      and signature, and the cosignatures of the configured witnesses; prints where it\n"
    "      first fails (exit 1)\n"
    "  medvault ledger verify --server URL --log-key VKEY [--token ACCESS_TOKEN]\n"
    "      checks the server's checkpoint signature; with an auditor's token also downloads\n"
    "      every entry, recomputes the tree and compares it with the signed root\n"
    "  medvault ledger key [--data DIR]\n"
    "      prints the log's verifier key (give it to witnesses and verifiers)\n"
    "  medvault ledger acknowledge-damage --epoch N --as ACCOUNT_ID --reason TEXT [--data DIR]\n"
    "      a privacy officer accepts the damage that made the log continue in epoch N (the\n"
    "      decision is recorded in the ledger; the damage stays reported)\n";

constexpr std::string_view kWitnessUsage =
    "usage: medvault witness --server URL --log-key VKEY --state DIR --key FILE --name NAME\n"
    "                        [--interval SECONDS] [--once]\n"
    "       medvault witness --listen ADDR --log-key VKEY --state DIR --key FILE --name NAME\n"
    "\n"
    "Runs a witness (another institution would run it): fetches the log's checkpoint, checks its\n"
    "signature and its consistency with the last checkpoint this witness saw, and hands back a\n"
    "cosignature (C2SP tlog-cosignature). With --listen the log pushes instead (C2SP\n"
    "tlog-witness POST /add-checkpoint, the log's witness_urls setting), and the answer carries\n"
    "the cosignature. A fork or a rewritten history is refused with the\n"
    "reason. KEY is created on first use (mode 0600); its cosignature key is printed at start\n"
    "for the log's witness_keys setting.\n";

constexpr std::string_view kScrubUsage =
    "usage: medvault scrub [--deep] [--data DIR]\n"
    "\n"
    "Re-reads every stored object and checks it against its recorded hash (--deep: also\n"
    "decrypts and authenticates it), compares the versions with the writes the ledger logged\n"
    "(rolled-back, missing-version, unlogged-version), and lists orphans: those older than\n"
    "scrub_orphan_grace_seconds are reclaimed. Each finding is recorded in the ledger; the JSON\n"
    "report is printed and written to DIR/scrub/latest.json. Exit 1 on damage (orphans are\n"
    "information only).\n";

bool Has(const ParsedArgs& args, const std::string& sw) {
  return std::find(args.switches.begin(), args.switches.end(), sw) != args.switches.end();
}

std::string Opt(const ParsedArgs& args, const std::string& name) {
  auto it = args.values.find(name);
  return it == args.values.end() ? "" : it->second;
}

void PrintReport(const ledger::VerifyReport& r) {
  std::cout << (r.ok ? "ledger OK" : "ledger FAILED") << ": " << r.entries << " entries, "
            << r.checkpoints_verified << "/" << r.checkpoints << " checkpoints verified, "
            << r.cosignatures_verified << " cosignatures verified";
  if (r.cosignatures_unchecked > 0) {
    std::cout << " (" << r.cosignatures_unchecked << " from unconfigured witnesses)";
  }
  std::cout << "\n";
  if (r.first_bad_entry.has_value()) {
    std::cout << "first bad entry: " << *r.first_bad_entry << "\n";
  }
  if (r.first_bad_checkpoint.has_value()) {
    std::cout << "first bad checkpoint: size " << *r.first_bad_checkpoint << "\n";
  }
  for (const std::string& p : r.problems) {
    std::cout << "  " << p << "\n";
  }
}

Result<std::string> HttpGet(httplib::Client& c, const std::string& path,
                            const httplib::Headers& headers = {}) {
  auto res = c.Get(path.c_str(), headers);
  if (!res) {
    return Status::Unavailable("cannot reach the server: " + httplib::to_string(res.error()));
  }
  if (res->status != 200) {
    return Status::Unavailable("GET " + path + " answered " + std::to_string(res->status) + ": " +
                               res->body.substr(0, 300));
  }
  return res->body;
}

// The log's signature line, without cosignatures (witness input).
Result<ledger::Checkpoint> CheckpointOf(const std::string& note, const ledger::VerifierKey& key) {
  return ledger::VerifyCheckpoint(note, key);
}

int VerifyOnline(const ParsedArgs& args) {
  auto key = ledger::VerifierKey::Parse(Opt(args, "log-key"));
  if (!key.ok()) {
    return Fail(Status::InvalidArgument("--log-key: " + key.status().message()));
  }
  httplib::Client c(Opt(args, "server"));
  c.set_read_timeout(30, 0);
  auto note = HttpGet(c, "/api/v1/ledger/checkpoint");
  if (!note.ok()) {
    return Fail(note.status());
  }
  auto cp = CheckpointOf(*note, *key);
  if (!cp.ok()) {
    std::cout << "checkpoint FAILED: " << cp.status().message() << "\n";
    return 1;
  }
  std::cout << "checkpoint OK: " << cp->origin << " size " << cp->size << "\n";
  const std::string token = Opt(args, "token");
  if (token.empty()) {
    return 0;
  }
  httplib::Headers auth = {{"Authorization", "Bearer " + token}};
  ledger::MerkleTree tree;
  std::vector<ledger::Hash> leaves;
  for (uint64_t from = 0; from < cp->size;) {
    auto body =
        HttpGet(c, "/api/v1/ledger/entries?from=" + std::to_string(from) + "&limit=1000", auth);
    if (!body.ok()) {
      return Fail(body.status());
    }
    auto j = nlohmann::json::parse(*body, nullptr, false);
    if (j.is_discarded() || !j.contains("entries") || j["entries"].empty()) {
      std::cout << "ledger FAILED: the server returned no entries from " << from << "\n";
      return 1;
    }
    for (const auto& e : j["entries"]) {
      if (from >= cp->size) {
        break;
      }
      auto bytes = FromBase64Url(e.value("entry_base64", ""));
      if (!bytes.ok() || e.value("seq", uint64_t{0}) != from || !ledger::Decode(*bytes).ok()) {
        std::cout << "ledger FAILED: entry " << from << " is malformed or out of order\n";
        return 1;
      }
      const ledger::Hash leaf = ledger::LeafHash(*bytes);
      tree.Append(leaf);
      leaves.push_back(leaf);
      ++from;
    }
  }
  auto root = tree.Root(cp->size);
  if (!root.ok() || *root != cp->root) {
    std::cout << "ledger FAILED: the entries do not hash to the signed root at size " << cp->size
              << "\n";
    // Where: the first entry whose inclusion in the signed tree does not verify.
    for (uint64_t i = 0; i < leaves.size(); ++i) {
      auto text = HttpGet(c, "/api/v1/ledger/proof/inclusion?index=" + std::to_string(i) +
                                 "&size=" + std::to_string(cp->size));
      auto proof =
          text.ok() ? ledger::ParseProof(*text) : Result<std::vector<ledger::Hash>>(text.status());
      if (!proof.ok() || !ledger::VerifyInclusion(leaves[i], i, cp->size, *proof, cp->root).ok()) {
        std::cout << "first bad entry: " << i << "\n";
        break;
      }
    }
    return 1;
  }
  std::cout << "ledger OK: " << cp->size << " entries hash to the signed root\n";
  return 0;
}

int AcknowledgeDamage(const ParsedArgs& args, const Config& config) {
  const std::string epoch_text = Opt(args, "epoch");
  const std::string as = Opt(args, "as");
  const std::string reason = Opt(args, "reason");
  if (epoch_text.empty() || as.empty() || reason.empty()) {
    std::cerr << kLedgerUsage;
    return Fail(Status::InvalidArgument("--epoch, --as and --reason are required"));
  }
  char* end = nullptr;
  const unsigned long long epoch = std::strtoull(epoch_text.c_str(), &end, 10);
  if (end == epoch_text.c_str() || *end != '\0' || epoch == 0) {
    return Fail(Status::InvalidArgument("--epoch must be a positive integer"));
  }
  auto rt = OpenRuntime(config);
  if (!rt.ok()) {
    return Fail(rt.status());
  }
  // The decision is the privacy officer's (the console vouches for the
  // person at it; the account says who answers for it).
  auto account = (*rt)->accounts->GetAccount(as);
  if (!account.ok()) {
    return Fail(account.status().WithContext("--as"));
  }
  if (account->disabled || std::find(account->roles.begin(), account->roles.end(),
                                     "privacy-officer") == account->roles.end()) {
    return Fail(
        Status::PermissionDenied("--as: only an enabled privacy officer may accept damage"));
  }
  Status st = (*rt)->ledger->AcknowledgeDamage(epoch, account->account_id, reason);
  if (!st.ok()) {
    return Fail(st);
  }
  std::cout << "damage of epoch " << epoch - 1 << " acknowledged; recorded in epoch " << epoch
            << "\n";
  return 0;
}

int LedgerBody(const std::string& verb, const Command& cmd);

int RunLedger(int argc, char** argv) {
  if (argc < 3 || std::string(argv[2]) == "--help" || std::string(argv[2]) == "-h") {
    std::cout << kLedgerUsage;
    return argc < 3 ? 2 : 0;
  }
  const std::string verb = argv[2];
  // Settings are loaded by the body: `verify --server` needs none.
  static const CommandSpec spec{
      .usage = kLedgerUsage,
      .values = {"data", "config", "server", "log-key", "token", "epoch", "as", "reason"},
      .switches = {},
      .positional = false,
      .settings = SettingFlags::kNone,
      .first = 3};
  return RunCommand(spec, argc, argv,
                    [&verb](const Command& cmd) { return LedgerBody(verb, cmd); });
}

int LedgerBody(const std::string& verb, const Command& cmd) {
  const ParsedArgs* args = &cmd.args();
  if (verb == "verify" && !Opt(*args, "server").empty()) {
    return VerifyOnline(*args);
  }
  auto config = LoadDataConfig(*args);
  if (!config.ok()) {
    return Fail(config.status());
  }
  const DataDirLayout layout(config->data_dir);
  if (!std::filesystem::exists(layout.ledger_key)) {
    return Fail(Status::FailedPrecondition("no ledger key in " + config->data_dir +
                                           " (run 'medvault init' and start the server once)"));
  }
  auto signer = ledger::LoadOrCreateSigner(layout.ledger_key, config->ledger_origin);
  if (!signer.ok()) {
    return Fail(signer.status());
  }
  if (verb == "key") {
    std::cout << signer->Verifier().ToString() << "\n";
    return 0;
  }
  if (verb == "acknowledge-damage") {
    return AcknowledgeDamage(*args, *config);
  }
  if (verb != "verify") {
    return Fail(Status::InvalidArgument("unknown ledger command '" + verb + "'"));
  }
  std::vector<ledger::VerifierKey> witnesses;
  for (const std::string& w : config->witness_keys) {
    auto k = ledger::VerifierKey::Parse(w);
    if (!k.ok()) {
      return Fail(Status::InvalidArgument("witness_keys: " + k.status().message()));
    }
    witnesses.push_back(std::move(*k));
  }
  // Earlier epochs first: the damage is reported every time, never hidden.
  auto archived =
      ledger::SqliteLedger::VerifyArchivedEpochs(layout.metadata_db, signer->Verifier(), witnesses);
  if (!archived.ok()) {
    return Fail(archived.status());
  }
  bool unacknowledged = false;
  if (!archived->empty()) {
    auto epochs = ledger::SqliteLedger::EpochsInDatabase(layout.metadata_db);
    if (!epochs.ok()) {
      return Fail(epochs.status());
    }
    for (const auto& [epoch, rep] : *archived) {
      std::cout << "epoch " << epoch << " (archived): ";
      PrintReport(rep);
    }
    for (const ledger::EpochRecord& e : *epochs) {
      std::cout << "epoch " << e.epoch << " continues a damaged epoch " << e.epoch - 1;
      if (e.first_bad_entry.has_value()) {
        std::cout << " (first bad entry " << *e.first_bad_entry << ")";
      }
      if (e.acknowledged_at_ms != 0) {
        std::cout << ": damage acknowledged by " << e.acknowledged_by << " at "
                  << FormatRfc3339Millis(e.acknowledged_at_ms) << "\n";
      } else {
        std::cout << ": damage NOT acknowledged (medvault ledger acknowledge-damage --epoch "
                  << e.epoch << ")\n";
        unacknowledged = true;
      }
    }
    std::cout << "epoch " << archived->back().first + 1 << " (current): ";
  }
  auto report =
      ledger::SqliteLedger::VerifyDatabase(layout.metadata_db, signer->Verifier(), witnesses);
  if (!report.ok()) {
    return Fail(report.status());
  }
  PrintReport(*report);
  return report->ok && !unacknowledged ? 0 : 1;
}

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

// `medvault witness --listen ADDR`: the log pushes (C2SP tlog-witness
// POST /add-checkpoint); the witness checks and cosigns as Witness::Observe.
int ServeWitness(ledger::Witness& witness, const std::string& listen) {
  std::string host;
  int port = 0;
  Status parsed = ParseListen(listen, &host, &port);
  if (!parsed.ok()) {
    return Fail(parsed.WithContext("--listen"));
  }
  httplib::Server server;
  server.set_payload_max_length(1 << 20);
  server.Post("/add-checkpoint", [&witness](const httplib::Request& req, httplib::Response& res) {
    const ledger::WitnessResponse answer = witness.AddCheckpoint(req.body);
    res.status = answer.http_status;
    res.set_content(answer.body, answer.content_type.c_str());
    if (answer.http_status == 200) {
      std::cout << "cosigned on push: " << witness.size() << std::endl;
    } else {
      std::cout << "refused (" << answer.http_status << "): " << answer.body << std::flush;
    }
  });
  if (!server.bind_to_port(host.c_str(), port)) {
    return Fail(Status::Unavailable("cannot listen on " + listen));
  }
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  std::thread loop([&server] { server.listen_after_bind(); });
  std::cout << "witness listening on " << listen << std::endl;
  while (g_stop == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  server.stop();
  loop.join();
  return 0;
}

int WitnessBody(const Command& cmd);

int RunWitness(int argc, char** argv) {
  static const CommandSpec spec{
      .usage = kWitnessUsage,
      .values = {"server", "log-key", "state", "key", "name", "interval", "listen"},
      .switches = {"once"},
      .positional = false,
      .settings = SettingFlags::kNone,
      .first = 2};
  return RunCommand(spec, argc, argv, [](const Command& cmd) { return WitnessBody(cmd); });
}

int WitnessBody(const Command& cmd) {
  const ParsedArgs* args = &cmd.args();
  const bool listen = !Opt(*args, "listen").empty();
  for (const char* required : {listen ? "listen" : "server", "log-key", "state", "key", "name"}) {
    if (Opt(*args, required).empty()) {
      return cmd.UsageError(std::string("--") + required + " is required");
    }
  }
  auto log_key = ledger::VerifierKey::Parse(Opt(*args, "log-key"));
  if (!log_key.ok()) {
    return Fail(Status::InvalidArgument("--log-key: " + log_key.status().message()));
  }
  auto signer = ledger::LoadOrCreateSigner(Opt(*args, "key"), Opt(*args, "name"));
  if (!signer.ok()) {
    return Fail(signer.status());
  }
  std::cout << "witness cosignature key: " << signer->CosignatureVerifier().ToString() << std::endl;
  {
    const std::filesystem::path state = Opt(*args, "state");
    std::error_code ec;
    if (state.has_parent_path()) {
      std::filesystem::create_directories(state.parent_path(), ec);  // the operator's
    }
    if (Status made = MakePrivateDirectory(state); !made.ok()) {
      return Fail(made);
    }
  }
  auto witness = ledger::Witness::Open(Opt(*args, "state"), *log_key, std::move(*signer));
  if (!witness.ok()) {
    return Fail(witness.status());
  }
  if (listen) {
    return ServeWitness(**witness, Opt(*args, "listen"));
  }
  int interval = 10;
  if (!Opt(*args, "interval").empty()) {
    interval = std::atoi(Opt(*args, "interval").c_str());
    if (interval < 1 || interval > 86400) {
      return Fail(Status::InvalidArgument("--interval must be between 1 and 86400 seconds"));
    }
  }
  const bool once = Has(*args, "once");
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  httplib::Client c(Opt(*args, "server"));
  c.set_read_timeout(30, 0);
  int exit_code = 0;
  while (g_stop == 0) {
    Status st = [&]() -> Status {
      MV_ASSIGN_OR_RETURN(std::string note, HttpGet(c, "/api/v1/ledger/checkpoint"));
      MV_ASSIGN_OR_RETURN(ledger::Checkpoint cp, CheckpointOf(note, *log_key));
      std::vector<ledger::Hash> proof;
      const uint64_t seen = (*witness)->size();
      if (seen > 0 && cp.size > seen) {
        MV_ASSIGN_OR_RETURN(std::string text, HttpGet(c, "/api/v1/ledger/proof/consistency?old=" +
                                                             std::to_string(seen) +
                                                             "&new=" + std::to_string(cp.size)));
        MV_ASSIGN_OR_RETURN(proof, ledger::ParseProof(text));
      }
      MV_ASSIGN_OR_RETURN(std::string line, (*witness)->Observe(note, proof));
      nlohmann::json body = {{"size", cp.size}, {"cosignature", line}};
      auto res = c.Post("/api/v1/ledger/cosignatures", body.dump(), "application/json");
      if (!res || res->status != 201) {
        return Status::Unavailable(
            "the log did not accept the cosignature: " +
            (res ? res->body.substr(0, 300) : httplib::to_string(res.error())));
      }
      std::cout << "cosigned " << cp.origin << " size " << cp.size << std::endl;
      return Status::Ok();
    }();
    if (!st.ok()) {
      // A refusal is the witness doing its job: say why, loudly.
      std::cout << "refused: " << st.message() << std::endl;
      exit_code = 1;
    }
    if (once) {
      break;
    }
    for (int i = 0; i < interval * 10 && g_stop == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  return exit_code;
}

}  // namespace

// Pushes each new checkpoint to every witness URL with C2SP tlog-witness
// add-checkpoint and stores the cosignatures of configured witness keys. The
// old size a witness has seen is kept per URL in memory; a new process
// starts at 0 and learns it from the witness's 409 answer (one retry).
std::function<void(const ledger::CheckpointRecord&)> MakeWitnessPush(
    Runtime* rt, std::vector<std::string> urls) {
  struct Target {
    std::string host;    // scheme://host:port
    std::string prefix;  // path prefix, without the final '/'
    uint64_t old_size = 0;
  };
  auto targets = std::make_shared<std::vector<Target>>();
  for (const std::string& url : urls) {
    Target t;
    const size_t scheme = url.find("://");
    const size_t path = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    t.host = path == std::string::npos ? url : url.substr(0, path);
    t.prefix = path == std::string::npos ? "" : url.substr(path);
    while (!t.prefix.empty() && t.prefix.back() == '/') {
      t.prefix.pop_back();
    }
    targets->push_back(std::move(t));
  }
  return [rt, targets](const ledger::CheckpointRecord& cp) {
    for (Target& t : *targets) {
      Status st = [&]() -> Status {
        for (int attempt = 0; attempt < 2; ++attempt) {
          std::vector<ledger::Hash> proof;
          if (t.old_size > 0 && t.old_size < cp.size) {
            MV_ASSIGN_OR_RETURN(proof, rt->ledger->ConsistencyProof(t.old_size, cp.size));
          }
          const std::string body = "old " + std::to_string(t.old_size) + "\n" +
                                   ledger::FormatProof(proof) + "\n" + cp.note;
          httplib::Client c(t.host);
          c.set_connection_timeout(5, 0);
          c.set_read_timeout(10, 0);
          auto res = c.Post((t.prefix + "/add-checkpoint").c_str(), body, "text/plain");
          if (!res) {
            return Status::Unavailable("cannot reach the witness: " +
                                       httplib::to_string(res.error()));
          }
          if (res->status == 409 &&
              res->get_header_value("Content-Type").rfind("text/x.tlog.size", 0) == 0 &&
              attempt == 0) {
            char* end = nullptr;
            const unsigned long long seen = std::strtoull(res->body.c_str(), &end, 10);
            if (end == res->body.c_str() || *end != '\n') {
              return Status::DataLoss("the witness answered 409 without a size");
            }
            t.old_size = seen;  // learn where the witness is, then retry once
            continue;
          }
          if (res->status != 200) {
            return Status::FailedPrecondition(
                "the witness refused size " + std::to_string(cp.size) + " (" +
                std::to_string(res->status) + "): " + res->body.substr(0, 300));
          }
          size_t stored = 0;
          for (size_t pos = 0; pos < res->body.size();) {
            size_t nl = res->body.find('\n', pos);
            if (nl == std::string::npos) {
              nl = res->body.size();
            }
            const std::string line = res->body.substr(pos, nl - pos) + "\n";
            pos = nl + 1;
            for (const ledger::VerifierKey& key : rt->witnesses) {
              if (rt->ledger->AddCosignature(cp.size, line, key).ok()) {
                ++stored;
                break;
              }
            }
          }
          t.old_size = cp.size;
          if (stored == 0) {
            return Status::FailedPrecondition(
                "the witness's cosignature is from none of the configured witness_keys");
          }
          Log(LogLevel::kInfo, "ledger.witness_cosigned",
              {{"witness", t.host + t.prefix}, {"size", static_cast<long long>(cp.size)}});
          return Status::Ok();
        }
        return Status::Unavailable("the witness kept changing its size");
      }();
      if (!st.ok()) {
        // A refusal is a witness doing its job (a fork, a rollback): loudly.
        Log(LogLevel::kError, "ledger.witness_refused",
            {{"witness", t.host + t.prefix}, {"error", st.message()}});
      }
    }
  };
}

namespace {

// The ledger's segment writes for the scrubber: entries are read one by one
// (a primary-key lookup each) from `from_seq` until the first seq that is not
// stored. Every stored snapshot of the log is a contiguous prefix, so that
// is the end. An entry that does not decode is skipped here (`medvault ledger
// verify` names it); the writes it hid then show up as unlogged versions.
class LedgerWriteLogImpl final : public integrity::WriteLog {
 public:
  LedgerWriteLogImpl(ledger::SqliteLedger* ledger, const SecretBytes* patient_ref_key)
      : ledger_(ledger), key_(patient_ref_key) {}

  std::string PatientRef(std::string_view patient_id) const override {
    return ledger::PatientRef(*key_, patient_id);
  }

  Result<uint64_t> ForEachWrite(
      uint64_t from_seq, const std::function<Status(const integrity::LoggedWrite&)>& fn) override {
    for (uint64_t seq = from_seq;; ++seq) {
      Result<ledger::LedgerRecord> rec = ledger_->GetEntry(seq);
      if (!rec.ok()) {
        if (rec.status().code() == StatusCode::kNotFound) {
          return seq;
        }
        if (rec.status().code() == StatusCode::kDataLoss) {
          continue;
        }
        return rec.status();
      }
      const ledger::Entry& e = rec->entry;
      if (e.action != ledger::kActionSegmentWrite || e.effect != ledger::kEffectDone ||
          e.resource.kind != "segment") {
        continue;
      }
      integrity::LoggedWrite w;
      w.seq = seq;
      w.patient_ref = e.patient_ref;
      w.path = e.resource.path;
      auto version = e.details.find("version");
      auto sha = e.details.find("content_sha256");
      if (version == e.details.end() || sha == e.details.end() || version->second.empty() ||
          version->second.size() > 19 ||
          version->second.find_first_not_of("0123456789") != std::string::npos) {
        continue;
      }
      w.version = std::stoull(version->second);
      w.content_sha256 = sha->second;
      MV_RETURN_IF_ERROR(fn(w));
    }
  }

 private:
  ledger::SqliteLedger* ledger_;
  const SecretBytes* key_;
};

}  // namespace

std::unique_ptr<integrity::WriteLog> LedgerWriteLog(Runtime& runtime) {
  return std::make_unique<LedgerWriteLogImpl>(runtime.ledger.get(), &runtime.patient_ref_key);
}

namespace {

int Scrub(const Command& cmd) {
  const Config* config = &cmd.config();
  auto runtime = cmd.OpenRuntime();
  if (!runtime.ok()) {
    return Fail(runtime.status());
  }
  Runtime& rt = **runtime;
  integrity::ScrubOptions options;
  options.deep = cmd.Switch("deep");
  std::unique_ptr<integrity::WriteLog> write_log = LedgerWriteLog(rt);
  options.write_log = write_log.get();
  options.orphan_grace = std::chrono::seconds(config->scrub_orphan_grace_seconds);
  options.on_finding = [&rt](const integrity::Finding& f) {
    MV_ASSIGN_OR_RETURN(ledger::Entry e, enforce::ScrubFindingEntry(f, rt.patient_ref_key));
    return rt.ledger->Append({std::move(e)});
  };
  auto report = integrity::Scrub(*rt.metadata, *rt.objects, rt.records.get(), options);
  if (!report.ok()) {
    return Fail(report.status());
  }
  const std::string json = integrity::ReportJson(*report);
  Status written = MakePrivateDirectory(DataDirLayout(config->data_dir).scrub_report.parent_path());
  if (written.ok()) {
    written = integrity::WriteFileAtomically(DataDirLayout(config->data_dir).scrub_report, json);
  }
  std::cout << json << "\n";
  if (!written.ok()) {
    return Fail(written);
  }
  // Orphans are information (young ones kept, old ones reclaimed); only
  // damage fails the command.
  const bool damage =
      std::any_of(report->findings.begin(), report->findings.end(), integrity::IsDamage);
  return damage ? 1 : 0;
}

int RunScrub(int argc, char** argv) {
  static const CommandSpec spec{.usage = kScrubUsage,
                                .values = {"data", "config"},
                                .switches = {"deep"},
                                .positional = false,
                                .settings = SettingFlags::kData,
                                .first = 2};
  return RunCommand(spec, argc, argv, [](const Command& cmd) { return Scrub(cmd); });
}

}  // namespace

int RunLedgerCommands(int argc, char** argv) {
  const std::string command = argv[1];
  if (command == "ledger") {
    return RunLedger(argc, argv);
  }
  if (command == "witness") {
    return RunWitness(argc, argv);
  }
  return RunScrub(argc, argv);
}

}  // namespace medvault::app
