#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>

#include "app/app.h"
#include "common/file_util.h"
#include "common/ids.h"
#include "common/log.h"

namespace medvault::app {

namespace fs = std::filesystem;

DataDirLayout::DataDirLayout(const fs::path& dir)
    : root(dir),
      kek(dir / "keys" / "platform.kek"),
      metrics_token(dir / "metrics.token"),
      policy_file(dir / "policy.conf"),
      ledger_key(dir / "keys" / "ledger.key"),
      scrub_report(dir / "scrub" / "latest.json"),
      metadata_db(dir / "metadata.db"),
      objects_root(dir),
      config_file(dir / "medvault.conf"),
      tls_cert(dir / "tls" / "cert.pem"),
      tls_key(dir / "tls" / "key.pem") {}

namespace {

// The data directory's parents are the operator's (created as the umask
// says); the data directory and everything in it are owner-only.
Status MakePrivateDir(const fs::path& dir) {
  std::error_code ec;
  if (dir.has_parent_path() && !dir.parent_path().empty()) {
    fs::create_directories(dir.parent_path(), ec);
  }
  return MakePrivateDirectory(dir);
}

Status WriteSecretFile(const fs::path& path, std::string_view content) {
  return WriteNewPrivateFile(path, AsBytes(content));
}

constexpr std::string_view kDefaultConfig =
    "# medvault configuration. Precedence: flags > MEDVAULT_* environment > this file.\n"
    "# listen = 127.0.0.1:8080\n"
    "# tls_cert = /path/to/cert.pem\n"
    "# tls_key = /path/to/key.pem\n"
    "# max_attachment_bytes = 67108864\n"
    "# max_json_bytes = 1048576\n"
    "# io_threads = 2   (connections: event-driven, a slow client costs no thread)\n"
    "# worker_threads = 64   (request handlers)\n"
    "# log_level = info\n"
    "# sqlite_synchronous = full\n"
    "# ledger_synchronous = full   (normal: read audits survive a process crash, not power loss)\n"
    "# ledger_origin = medvault.local/ledger\n"
    "# witness_keys = name+keyid+base64, ...\n"
    "# witness_quorum = 1\n"
    "# witness_urls = http://witness.example:9000, ...   (push checkpoints to witnesses)\n"
    "# ledger_checkpoint_interval_seconds = 10\n"
    "# ledger_checkpoint_every_entries = 1000\n"
    "# scrub_interval_minutes = 60\n"
    "# scrub_orphan_grace_seconds = 3600\n"
    "# policy_file = /path/to/policy.conf   (default: policy.conf in this directory)\n"
    "# argon2_memory_kib = 65536\n"
    "# argon2_iterations = 2\n"
    "# access_token_minutes = 15\n"
    "# account_recovery_wait_minutes = 1440\n"
    "# header_timeout_seconds = 5\n"
    "# body_timeout_seconds = 30\n"
    "# max_connections_per_peer = 64\n"
    "# max_connections = 256\n"
    "# web_dir = /path/to/web   (none = no portal)\n"
    "# Every setting can also be given as MEDVAULT_<KEY>, e.g. MEDVAULT_LISTEN.\n";

}  // namespace

Status InitDataDir(const fs::path& dir, bool self_signed_cert) {
  const DataDirLayout layout(dir);
  const bool already = fs::exists(layout.kek);
  if (already && !self_signed_cert) {
    return Status::FailedPrecondition(dir.string() +
                                      " is already initialised (its platform key exists)");
  }
  MV_RETURN_IF_ERROR(MakePrivateDir(dir));
  if (!already) {
    MV_RETURN_IF_ERROR(MakePrivateDir(dir / "keys"));
    MV_RETURN_IF_ERROR(crypto::CreateKeyFile(layout.kek));
    uint8_t raw[32];
    crypto::RandomBytes(raw);
    const std::string token = "mvm_" + ToBase64Url(ByteView(raw, sizeof raw)) + "\n";
    sodium_memzero(raw, sizeof raw);
    MV_RETURN_IF_ERROR(WriteSecretFile(layout.metrics_token, token));
    // 0600 like everything else in the directory (an ofstream followed the
    // umask: 0644 under the usual 022).
    if (!fs::exists(layout.config_file)) {
      MV_RETURN_IF_ERROR(WriteFileAtomically(layout.config_file, AsBytes(kDefaultConfig)));
    }
    if (!fs::exists(layout.policy_file)) {
      MV_RETURN_IF_ERROR(WriteFileAtomically(layout.policy_file, AsBytes(DefaultPolicyText())));
    }
    MV_ASSIGN_OR_RETURN(auto ledger_db, ledger::SqliteLedger::Open(layout.metadata_db));
    MV_ASSIGN_OR_RETURN(auto db, store::OpenSqliteMetadataStore(layout.metadata_db));
    MV_ASSIGN_OR_RETURN(auto account_db, store::OpenSqliteAccountStore(layout.metadata_db));
    MV_ASSIGN_OR_RETURN(auto policy_db, access::OpenSqlitePolicyEntryStore(layout.metadata_db));
    MV_ASSIGN_OR_RETURN(auto objects, store::OpenFileObjectStore(layout.objects_root));
  }
  if (self_signed_cert) {
    MV_RETURN_IF_ERROR(MakePrivateDir(dir / "tls"));
    MV_RETURN_IF_ERROR(WriteSelfSignedCertificate(layout.tls_cert, layout.tls_key));
  }
  return Status::Ok();
}

Result<Bytes> LoadTokenHash(const fs::path& token_file) {
  struct stat st {};
  if (::stat(token_file.c_str(), &st) != 0) {
    return Status::FailedPrecondition("token file " + token_file.string() +
                                      " is missing: run 'medvault init' first");
  }
  if ((st.st_mode & 077) != 0) {
    return Status::FailedPrecondition("token file " + token_file.string() +
                                      " is readable by group or others: chmod 600 it");
  }
  std::ifstream in(token_file, std::ios::binary);
  std::string token;
  std::getline(in, token);
  if (token.size() < 20 || token.size() > 200) {
    return Status::DataLoss("token file " + token_file.string() + " is malformed");
  }
  Bytes hash = crypto::Sha256(AsBytes(token));
  sodium_memzero(token.data(), token.size());
  return hash;
}

access::AccessOptions AccessOptionsFor(const SecretBytes& patient_ref_key) {
  access::AccessOptions o;
  const SecretBytes* key = &patient_ref_key;
  o.audit = [key](const access::AccessEvent& event) {
    return enforce::AccessEventEntry(event, *key);
  };
  return o;
}

enforce::Deps Runtime::enforce_deps() const {
  enforce::Deps d;
  d.decisions = decisions.get();
  d.ledger = ledger.get();
  d.patient_ref_key = &patient_ref_key;
  return d;
}

api::Services Runtime::services() const {
  api::Services s;
  s.records = records.get();
  s.metadata = metadata.get();
  s.accounts = accounts.get();
  s.access = access.get();
  s.decisions = decisions.get();
  s.ledger = ledger.get();
  s.ledger_signer = ledger_signer.get();
  s.ledger_origin = ledger_origin;
  s.witnesses = witnesses;
  s.witness_quorum = witness_quorum;
  const SecretBytes* key = &patient_ref_key;
  s.patient_ref = [key](std::string_view patient_id) {
    return ledger::PatientRef(*key, patient_id);
  };
  s.patient_ref_key = key;
  return s;
}

Status LogLedgerDamage(ledger::SqliteLedger& ledger, bool include_acknowledged) {
  MV_ASSIGN_OR_RETURN(std::vector<ledger::EpochRecord> epochs, ledger.Epochs());
  for (const ledger::EpochRecord& e : epochs) {
    const long long first_bad =
        e.first_bad_entry.has_value() ? static_cast<long long>(*e.first_bad_entry) : -1;
    if (e.acknowledged_at_ms == 0) {
      Log(LogLevel::kError, "ledger.damaged",
          {{"epoch", static_cast<long long>(e.epoch - 1)},
           {"first_bad_entry", first_bad},
           {"continued_in_epoch", static_cast<long long>(e.epoch)},
           {"damage", e.damage},
           {"acknowledged", "false"},
           {"action", "medvault ledger acknowledge-damage --epoch " + std::to_string(e.epoch)}});
    } else if (include_acknowledged) {
      Log(LogLevel::kWarn, "ledger.damaged",
          {{"epoch", static_cast<long long>(e.epoch - 1)},
           {"first_bad_entry", first_bad},
           {"continued_in_epoch", static_cast<long long>(e.epoch)},
           {"acknowledged", "true"}});
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<Runtime>> OpenRuntime(const Config& config) {
  const DataDirLayout layout(config.data_dir);
  if (!fs::exists(layout.kek)) {
    return Status::FailedPrecondition("data directory " + config.data_dir +
                                      " is not initialised: run 'medvault init --data " +
                                      config.data_dir + "'");
  }
  auto rt = std::make_unique<Runtime>();
  MV_ASSIGN_OR_RETURN(rt->keys, crypto::OpenFileKeyProvider(layout.kek));
  store::SqliteOptions sqlite;
  sqlite.synchronous_full = config.sqlite_synchronous_full;

  // The ledger first: the stores below append to it in their transactions. A
  // damaged log does not take every record offline: the ledger continues in
  // a new epoch whose first entry commits to the damage, which stays
  // reported (logs, /readyz, metrics, `medvault ledger verify`) until and
  // after a privacy officer acknowledges it (docs/ledger.md).
  MV_ASSIGN_OR_RETURN(ledger::Signer signer,
                      ledger::LoadOrCreateSigner(layout.ledger_key, config.ledger_origin));
  store::SqliteOptions ledger_sqlite = sqlite;
  ledger_sqlite.synchronous_full = config.ledger_synchronous_full;
  ledger::LedgerOpenOptions ledger_open;
  ledger_open.new_epoch_on_damage = true;
  ledger_open.log_key = signer.Verifier();
  MV_ASSIGN_OR_RETURN(rt->ledger,
                      ledger::SqliteLedger::Open(layout.metadata_db, ledger_sqlite, ledger_open));
  rt->ledger_signer = std::make_unique<ledger::Signer>(std::move(signer));
  rt->ledger_origin = ledger::EpochOrigin(config.ledger_origin, rt->ledger->Epoch());
  MV_RETURN_IF_ERROR(LogLedgerDamage(*rt->ledger, true));
  for (const std::string& vkey : config.witness_keys) {
    auto key = ledger::VerifierKey::Parse(vkey);
    if (!key.ok()) {
      return Status::InvalidArgument("witness_keys: " + key.status().message());
    }
    rt->witnesses.push_back(std::move(*key));
  }
  rt->witness_quorum = static_cast<size_t>(config.witness_quorum);
  if (!rt->witnesses.empty() && rt->witness_quorum > rt->witnesses.size()) {
    return Status::InvalidArgument("witness_quorum is larger than the number of witness_keys");
  }
  MV_ASSIGN_OR_RETURN(rt->patient_ref_key,
                      rt->keys->DerivePlatformKey(ledger::kPatientRefKeyPurpose));
  sqlite.audit_sink = rt->ledger.get();
  MV_ASSIGN_OR_RETURN(rt->metadata, store::OpenSqliteMetadataStore(layout.metadata_db, sqlite));
  MV_ASSIGN_OR_RETURN(rt->objects, store::OpenFileObjectStore(layout.objects_root));
  record::RecordServiceOptions options;
  options.max_attachment_bytes = config.max_attachment_bytes;
  options.max_inline_bytes = config.max_json_bytes;
  const SecretBytes* ref_key = &rt->patient_ref_key;
  // Every record write is recorded in the store's transaction, and refused
  // when no enforcement scope decided it (src/enforce, fail closed).
  options.audit = [ref_key](const record::RecordEvent& event) {
    return enforce::RecordEventEntry(event, *ref_key);
  };
  options.audit_riders = [] { return enforce::RidersForWrite(); };
  MV_ASSIGN_OR_RETURN(rt->records, record::CreateRecordService(rt->keys.get(), rt->metadata.get(),
                                                               rt->objects.get(), options));

  const fs::path policy_file =
      config.policy_file.empty() ? layout.policy_file : fs::path(config.policy_file);
  if (!fs::exists(policy_file)) {
    return Status::FailedPrecondition("policy file " + policy_file.string() +
                                      " is missing (medvault init writes the default one)");
  }
  MV_ASSIGN_OR_RETURN(rt->policy, policy::Policy::Load(policy_file));
  rt->policy_data = std::make_unique<policy::PolicyData>();
  rt->decisions = std::make_unique<policy::DecisionPoint>(rt->policy, rt->policy_data.get());

  MV_ASSIGN_OR_RETURN(rt->account_store, store::OpenSqliteAccountStore(layout.metadata_db, sqlite));
  auth::AuthOptions auth_options;
  for (const policy::RoleDef& role : rt->policy->roles()) {
    auth_options.known_roles.push_back(role.name);
    if (role.requires_mfa) {
      auth_options.mfa_roles.push_back(role.name);
    }
  }
  auth_options.argon2.mem_limit = static_cast<size_t>(config.argon2_memory_kib) * 1024;
  auth_options.argon2.ops_limit = config.argon2_iterations;
  auth_options.access_ttl_ms = int64_t{config.access_token_minutes} * 60 * 1000;
  auth_options.recovery_wait_ms = int64_t{config.account_recovery_wait_minutes} * 60 * 1000;
  // Account changes carry their ledger entry into the account store's
  // transaction; the actor is the bound enforcement scope's.
  auth_options.audit = [ref_key](const auth::AccountEvent& event) {
    return enforce::AccountEventEntry(event, *ref_key);
  };
  MV_ASSIGN_OR_RETURN(rt->accounts, auth::CreateAccountService(rt->account_store.get(),
                                                               rt->keys.get(), auth_options));

  store::SqliteOptions policy_sqlite;  // synchronous FULL, as before
  policy_sqlite.audit_sink = rt->ledger.get();
  MV_ASSIGN_OR_RETURN(rt->policy_entries,
                      access::OpenSqlitePolicyEntryStore(layout.metadata_db, policy_sqlite));
  MV_ASSIGN_OR_RETURN(rt->changes, store::OpenSqliteChangeFeed(layout.metadata_db, policy_sqlite));
  auth::AccountService* accounts = rt->accounts.get();
  access::AccountLookup lookup = [accounts](std::string_view id) -> Result<access::AccountFacts> {
    access::AccountFacts facts;
    auto a = accounts->GetAccount(id);
    if (!a.ok()) {
      if (a.status().code() == StatusCode::kNotFound) {
        return facts;
      }
      return a.status();
    }
    facts.exists = true;
    facts.disabled = a->disabled;
    facts.roles = a->roles;
    facts.institution_id = a->institution_id;
    facts.department_id = a->department_id;
    return facts;
  };
  auto validate_prefix = [](std::string_view p) -> Status {
    return p.empty() ? Status::Ok() : record::ValidateSegmentPath(p);
  };
  MV_ASSIGN_OR_RETURN(
      rt->access, access::CreateAccessService(
                      rt->policy_entries.get(), rt->keys.get(), rt->policy_data.get(), rt->policy,
                      std::move(lookup), validate_prefix, AccessOptionsFor(rt->patient_ref_key)));
  MV_RETURN_IF_ERROR(rt->access->Load());

  ledger::AutoCheckpointOptions auto_checkpoints;
  auto_checkpoints.interval = std::chrono::seconds(config.ledger_checkpoint_interval_seconds);
  auto_checkpoints.every_entries = config.ledger_checkpoint_every_entries;
  ledger::SqliteLedger* ledger = rt->ledger.get();
  auto_checkpoints.periodic = [ledger] { (void)LogLedgerDamage(*ledger, false); };
  if (!config.witness_urls.empty()) {
    auto_checkpoints.on_checkpoint = MakeWitnessPush(rt.get(), config.witness_urls);
  }
  rt->checkpoints = std::make_unique<ledger::CheckpointScheduler>(
      rt->ledger.get(), rt->ledger_signer.get(), rt->ledger_origin, std::move(auto_checkpoints));
  return rt;
}

}  // namespace medvault::app
