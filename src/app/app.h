// Internal to src/app: wiring of the modules and the data directory.
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "access/access.h"
#include "api/api.h"
#include "app/config.h"
#include "auth/auth.h"
#include "common/status.h"
#include "crypto/crypto.h"
#include "enforce/enforce.h"
#include "integrity/integrity.h"
#include "ledger/ledger.h"
#include "policy/policy.h"
#include "record/record.h"
#include "store/account_store.h"
#include "store/change_feed.h"
#include "store/store.h"

namespace medvault::app {

// The embedded default: one directory (mode 0700) holding everything.
struct DataDirLayout {
  explicit DataDirLayout(const std::filesystem::path& root);
  std::filesystem::path root;
  std::filesystem::path kek;            // keys/platform.kek, 0600
  std::filesystem::path metrics_token;  // metrics.token, 0600: opens /metrics only
  std::filesystem::path policy_file;    // policy.conf (the default policy)
  std::filesystem::path ledger_key;     // keys/ledger.key, 0600: signs checkpoints
  std::filesystem::path scrub_report;   // scrub/latest.json
  std::filesystem::path metadata_db;    // metadata.db (+ -wal, -shm)
  std::filesystem::path objects_root;   // objects live under objects/
  std::filesystem::path config_file;    // medvault.conf
  std::filesystem::path tls_cert;       // tls/cert.pem
  std::filesystem::path tls_key;        // tls/key.pem, 0600
};

// Creates the data directory, the platform key file, the bootstrap token, the
// database (migrated) and a commented medvault.conf. FailedPrecondition when
// the directory is already initialised (the key is never overwritten).
// With `self_signed_cert`, also makes tls/cert.pem + tls/key.pem (also on an
// already initialised directory, where it is the only thing done).
Status InitDataDir(const std::filesystem::path& dir, bool self_signed_cert);

// Writes a self-signed certificate (ECDSA P-256, SHA-256, one year, SAN
// localhost and 127.0.0.1) and its key (mode 0600).
Status WriteSelfSignedCertificate(const std::filesystem::path& cert_path,
                                  const std::filesystem::path& key_path);

// Keeps a server in step with changes that other processes make to its data
// directory's database (a CLI command disabling an account, ending a
// relationship, changing a consent): every `period` it applies the change log
// to the access service (reloads the touched patients' policy data) and to the
// account service (drops cached tokens of changed accounts; Authenticate also
// does this before every lookup). A failure is logged once, then retried each
// period. The services must outlive the watcher; the destructor stops it.
class ChangeWatcher {
 public:
  // With `feed`, a round also starts as soon as the feed reports a change
  // (SQLite: within its poll; PostgreSQL: at the notification), and the
  // period is only the longest wait.
  ChangeWatcher(auth::AccountService* accounts, access::AccessService* access,
                std::chrono::milliseconds period = std::chrono::milliseconds(200),
                store::ChangeFeed* feed = nullptr);
  ~ChangeWatcher();
  ChangeWatcher(const ChangeWatcher&) = delete;
  ChangeWatcher& operator=(const ChangeWatcher&) = delete;
  // One round now (what the thread does each period).
  Status SyncOnce();

 private:
  void Run();
  // Waits for the next round (see the constructor). True when stopping.
  // REQUIRES: `lock` holds mu_.
  bool WaitForRound(std::unique_lock<std::mutex>& lock, int64_t seen);
  auth::AccountService* const accounts_;
  access::AccessService* const access_;
  const std::chrono::milliseconds period_;
  store::ChangeFeed* const feed_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

// Opened stores and services of one data directory.
struct Runtime {
  std::unique_ptr<crypto::KeyProvider> keys;
  // Opened first: the other stores append to it inside their own
  // transactions (it is their store::AuditSink).
  std::unique_ptr<ledger::SqliteLedger> ledger;
  std::unique_ptr<ledger::Signer> ledger_signer;
  std::vector<ledger::VerifierKey> witnesses;
  size_t witness_quorum = 1;
  std::string ledger_origin;
  SecretBytes patient_ref_key;
  std::unique_ptr<store::MetadataStore> metadata;
  std::unique_ptr<store::ObjectStore> objects;
  std::unique_ptr<record::RecordService> records;
  std::shared_ptr<const policy::Policy> policy;
  std::unique_ptr<policy::PolicyData> policy_data;
  std::unique_ptr<policy::DecisionPoint> decisions;
  std::unique_ptr<store::AccountStore> account_store;
  std::unique_ptr<auth::AccountService> accounts;
  std::unique_ptr<access::PolicyEntryStore> policy_entries;
  // Changes made by other processes (the server's ChangeWatcher waits on it).
  std::unique_ptr<store::ChangeFeed> changes;
  std::unique_ptr<access::AccessService> access;
  // Signs checkpoints in the background and when the runtime closes (server
  // or CLI command), so no unsigned tail is left to rewrite. Last member:
  // destroyed (stopped, final checkpoint signed) before the ledger.
  std::unique_ptr<ledger::CheckpointScheduler> checkpoints;

  api::Services services() const;
  // What an enforcement scope (src/enforce) needs from this runtime.
  enforce::Deps enforce_deps() const;
};

// The default policy shipped with medvault (config/policy.conf, embedded).
std::string_view DefaultPolicyText();

// FailedPrecondition with the `medvault init` hint when not initialised.
Result<std::unique_ptr<Runtime>> OpenRuntime(const Config& config);
// The witness push (issue 13): POSTs each checkpoint the scheduler signs to
// every URL (C2SP tlog-witness add-checkpoint with a consistency proof from
// the size the witness last cosigned) and stores the cosignatures of the
// configured witness_keys. Refusals are logged at error level.
std::function<void(const ledger::CheckpointRecord&)> MakeWitnessPush(Runtime* rt,
                                                                     std::vector<std::string> urls);
// Logs every epoch that follows a damaged one: at error level while nobody
// has acknowledged the damage, at warning level after when
// `include_acknowledged` (at start; the periodic call logs only what still
// waits for a privacy officer).
Status LogLedgerDamage(ledger::SqliteLedger& ledger, bool include_acknowledged);

// SHA-256 of the token in the token file; refuses a file readable by others.
Result<Bytes> LoadTokenHash(const std::filesystem::path& token_file);

// Demo institution, departments, accounts, patients with readings, and the
// relationships between them; what to sign in with.
struct DemoAccount {
  std::string role;
  std::string username;
  std::string password;
  std::string totp_secret;  // base32; empty when no second factor
  std::string account_id;
};
struct DemoData {
  std::vector<std::string> patient_ids;
  std::vector<DemoAccount> accounts;
};
Result<DemoData> SeedDemoData(Runtime& runtime);

// The ledger's segment writes as the scrubber reads them (the runtime must
// outlive it).
std::unique_ptr<integrity::WriteLog> LedgerWriteLog(Runtime& runtime);

// The command-line entry point (tests call it in-process too).
int Main(int argc, char** argv);

}  // namespace medvault::app
