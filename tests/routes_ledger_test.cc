// The tamper-evident ledger end to end, through the real HTTP server: signed
// checkpoints anyone can verify with the log key, inclusion and consistency
// proofs, every decision and every write recorded under a patient pseudonym,
// the patient's own access history (break-glass included), witnesses that
// cosign and refuse a fork, and a log edited on disk that is caught.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/bytes.h"
#include "crypto/crypto.h"
#include "ledger/ledger.h"
#include "server_fixture.h"

namespace medvault {
namespace {

using nlohmann::json;
using testing::ServerFixture;

constexpr char kBp[] = "physical-signs/blood-pressure";

// Raw SQL on the database file, outside every medvault abstraction, as an
// attacker with write access to the file would.
class RawDb {
 public:
  explicit RawDb(const std::filesystem::path& file) {
    EXPECT_EQ(sqlite3_open(file.c_str(), &db_), SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void Exec(const std::string& sql) {
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << sql << ": " << (err ? err : "");
    sqlite3_free(err);
  }

  struct Row {
    int64_t seq = 0;
    Bytes entry;
    Bytes leaf_hash;
    std::optional<Bytes> patient_ref;  // 16 bytes (rows since schema 3)
  };

  std::vector<Row> Rows(const std::string& where) {
    std::vector<Row> rows;
    sqlite3_stmt* s = nullptr;
    const std::string sql =
        "SELECT seq, entry, leaf_hash, patient_ref FROM ledger_entries " + where + " ORDER BY seq";
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr), SQLITE_OK) << sql;
    while (sqlite3_step(s) == SQLITE_ROW) {
      Row r;
      r.seq = sqlite3_column_int64(s, 0);
      r.entry = Blob(s, 1);
      r.leaf_hash = Blob(s, 2);
      if (sqlite3_column_type(s, 3) != SQLITE_NULL) {
        r.patient_ref = Blob(s, 3);
      }
      rows.push_back(std::move(r));
    }
    sqlite3_finalize(s);
    return rows;
  }

  // Overwrites the entry bytes (and, when given, the stored leaf hash).
  void SetEntry(int64_t seq, const Bytes& entry, const Bytes* leaf_hash = nullptr) {
    sqlite3_stmt* s = nullptr;
    const char* sql = leaf_hash != nullptr
                          ? "UPDATE ledger_entries SET entry = ?1, leaf_hash = ?2 WHERE seq = ?3"
                          : "UPDATE ledger_entries SET entry = ?1 WHERE seq = ?3";
    ASSERT_EQ(sqlite3_prepare_v2(db_, sql, -1, &s, nullptr), SQLITE_OK);
    sqlite3_bind_blob(s, 1, entry.data(), static_cast<int>(entry.size()), SQLITE_TRANSIENT);
    if (leaf_hash != nullptr) {
      sqlite3_bind_blob(s, 2, leaf_hash->data(), static_cast<int>(leaf_hash->size()),
                        SQLITE_TRANSIENT);
    }
    sqlite3_bind_int64(s, 3, seq);
    EXPECT_EQ(sqlite3_step(s), SQLITE_DONE);
    EXPECT_EQ(sqlite3_changes(db_), 1);
    sqlite3_finalize(s);
  }

  void Insert(const Row& r) {
    sqlite3_stmt* s = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db_,
                                 "INSERT INTO ledger_entries(seq, entry, leaf_hash, patient_ref) "
                                 "VALUES (?1, ?2, ?3, ?4)",
                                 -1, &s, nullptr),
              SQLITE_OK);
    sqlite3_bind_int64(s, 1, r.seq);
    sqlite3_bind_blob(s, 2, r.entry.data(), static_cast<int>(r.entry.size()), SQLITE_TRANSIENT);
    sqlite3_bind_blob(s, 3, r.leaf_hash.data(), static_cast<int>(r.leaf_hash.size()),
                      SQLITE_TRANSIENT);
    if (r.patient_ref.has_value()) {
      sqlite3_bind_blob(s, 4, r.patient_ref->data(), static_cast<int>(r.patient_ref->size()),
                        SQLITE_TRANSIENT);
    } else {
      sqlite3_bind_null(s, 4);
    }
    EXPECT_EQ(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
  }

 private:
  static Bytes Blob(sqlite3_stmt* s, int col) {
    const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(s, col));
    const int n = sqlite3_column_bytes(s, col);
    return p == nullptr ? Bytes() : Bytes(p, p + n);
  }

  sqlite3* db_ = nullptr;
};

std::string HexOf(const ledger::Hash& h) { return ToHex(ledger::HashView(h)); }

class HttpLedgerTest : public ServerFixture {
 protected:
  // Close our keep-alive connections first, or Stop() waits for their timeout.
  void TearDown() override {
    CloseExtraClients();
    ServerFixture::TearDown();
  }

  void CloseExtraClients() {
    auditor_client_.reset();
    patient_client_.reset();
  }

  // A patient treated by the default clinician, with one blood-pressure reading.
  void SetUpPatient() {
    patient_id_ = CreatePatient("Ledger", "MRN-LEDGER");
    ASSERT_EQ(patient_id_.size(), 32u);
    auto w = Put(Base() + "/segments/" + kBp, json{{"data", Bp(140, 90)}}.dump());
    ASSERT_TRUE(w);
    ASSERT_EQ(w->status, 201) << w->body;
  }

  std::string Base() const { return Base(patient_id_); }
  static std::string Base(const std::string& id) { return "/api/v1/patients/" + id; }
  std::string Ref(const std::string& id) const { return runtime_->services().patient_ref(id); }

  ledger::VerifierKey LogKey() const { return runtime_->ledger_signer->Verifier(); }

  void SignInAuditor() {
    if (!auditor_client_) {
      auditor_client_ = ClientWith(SignIn(MakeAccount("auditor.x", {"auditor"})));
    }
  }

  struct FetchedCheckpoint {
    std::string note;
    std::string size_header;
    std::string witnessed_header;
    std::string quorum_header;
    ledger::Checkpoint cp;
  };

  // GET /api/v1/ledger/checkpoint without a credential; verified with the
  // log key.
  FetchedCheckpoint GetCheckpoint() {
    FetchedCheckpoint out;
    httplib::Client anon("127.0.0.1", server_->port());
    auto res = anon.Get("/api/v1/ledger/checkpoint");
    EXPECT_TRUE(res) << "no response";
    if (!res) {
      return out;
    }
    EXPECT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type").rfind("text/plain", 0), 0u);
    out.note = res->body;
    out.size_header = res->get_header_value("X-Ledger-Size");
    out.witnessed_header = res->get_header_value("X-Ledger-Witnessed");
    out.quorum_header = res->get_header_value("X-Ledger-Witness-Quorum");
    auto cp = ledger::VerifyCheckpoint(out.note, LogKey());
    EXPECT_TRUE(cp.ok()) << cp.status().ToString() << "\n" << out.note;
    if (cp.ok()) {
      out.cp = *cp;
    }
    return out;
  }

  // A checkpoint that covers at least `min_size` entries (checkpoints are
  // made at most once a second).
  FetchedCheckpoint CheckpointCovering(uint64_t min_size) {
    FetchedCheckpoint f = GetCheckpoint();
    for (int i = 0; i < 3 && f.cp.size < min_size; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1100));
      f = GetCheckpoint();
    }
    EXPECT_GE(f.cp.size, min_size);
    return f;
  }

  // Every entry, through the auditor's paged endpoint.
  json AllEntries(std::string* raw_bodies = nullptr) {
    SignInAuditor();
    json all = json::array();
    uint64_t from = 0;
    while (true) {
      const std::string url = "/api/v1/ledger/entries?from=" + std::to_string(from) + "&limit=7";
      auto res = auditor_client_->Get(url.c_str());
      EXPECT_TRUE(res);
      if (!res || res->status != 200) {
        ADD_FAILURE() << (res ? res->body : "no response");
        return all;
      }
      if (raw_bodies != nullptr) {
        *raw_bodies += res->body;
      }
      json page = json::parse(res->body);
      const uint64_t size = page["size"].get<uint64_t>();
      EXPECT_LE(page["entries"].size(), 7u);
      for (auto& e : page["entries"]) {
        EXPECT_EQ(e["seq"].get<uint64_t>(), from);
        all.push_back(e);
        ++from;
      }
      if (page["entries"].empty() || from >= size) {
        return all;
      }
    }
  }

  static std::vector<json> Find(const json& entries, const std::string& action,
                                const std::string& request_id = "") {
    std::vector<json> out;
    for (const auto& e : entries) {
      if (e["action"] == action && (request_id.empty() || e["request_id"] == request_id)) {
        out.push_back(e);
      }
    }
    return out;
  }

  // The proof endpoints: the body parsed, or nullopt with the status.
  std::optional<std::vector<ledger::Hash>> GetProof(const std::string& url, int* status = nullptr) {
    httplib::Client anon("127.0.0.1", server_->port());
    auto res = anon.Get(url.c_str());
    EXPECT_TRUE(res);
    if (!res) {
      return std::nullopt;
    }
    if (status != nullptr) {
      *status = res->status;
    }
    if (res->status != 200) {
      return std::nullopt;
    }
    EXPECT_EQ(res->get_header_value("Content-Type").rfind("text/plain", 0), 0u);
    auto proof = ledger::ParseProof(res->body);
    EXPECT_TRUE(proof.ok()) << proof.status().ToString() << "\n" << res->body;
    if (!proof.ok()) {
      return std::nullopt;
    }
    return *proof;
  }

  // The leaf hash recomputed from the entry bytes the auditor sees.
  static ledger::Hash LeafOf(const json& entry) {
    auto bytes = FromBase64Url(entry["entry_base64"].get<std::string>());
    EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
    return ledger::LeafHash(bytes.ok() ? ByteView(*bytes) : ByteView());
  }

  // Replaces the fixture's server by one over the same runtime whose
  // services name `witnesses` (the fixture configures none).
  void RestartServerWithWitnesses(std::vector<ledger::VerifierKey> witnesses, size_t quorum) {
    CloseExtraClients();
    client_.reset();
    server_->Stop();
    server_.reset();
    api::ServerOptions options;
    options.port = 0;
    options.max_attachment_bytes = 64ull << 20;
    options.max_json_bytes = 1 << 20;
    options.worker_threads = 8;
    auto hash = app::LoadTokenHash(app::DataDirLayout(data_).metrics_token);
    ASSERT_TRUE(hash.ok());
    options.metrics_token_sha256 = *hash;
    api::Services services = runtime_->services();
    services.witnesses = std::move(witnesses);
    services.witness_quorum = quorum;
    auto server = api::CreateServer(options, services);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    Reconnect();
  }

  httplib::Result PostCosignature(uint64_t size, const std::string& line) {
    httplib::Client anon("127.0.0.1", server_->port());
    return anon.Post("/api/v1/ledger/cosignatures",
                     json{{"size", size}, {"cosignature", line}}.dump(), "application/json");
  }

  app::Config RuntimeConfig() const {
    app::Config config;
    config.data_dir = data_.string();
    config.argon2_memory_kib = 8;
    config.argon2_iterations = 1;
    return config;
  }

  std::string patient_id_;
  std::unique_ptr<httplib::Client> auditor_client_;
  std::unique_ptr<httplib::Client> patient_client_;
};

// ---------------------------------------------------------------------------

TEST_F(HttpLedgerTest, CheckpointVerifiesWithTheLogKey) {
  SetUpPatient();
  auto read = Get(Base() + "/segments/" + kBp);
  ASSERT_TRUE(read);
  ASSERT_EQ(read->status, 200) << read->body;

  const FetchedCheckpoint f = GetCheckpoint();
  const ledger::Checkpoint& cp = f.cp;
  EXPECT_EQ(cp.origin, runtime_->ledger_origin);
  EXPECT_GT(cp.size, 0u);
  EXPECT_TRUE(cp.extensions.empty());
  EXPECT_EQ(f.size_header, std::to_string(cp.size));
  EXPECT_EQ(f.witnessed_header, "false");  // no witnesses configured
  EXPECT_EQ(f.quorum_header, "1 of 0");
  // The signed size and root are the ledger's.
  auto root = runtime_->ledger->RootAt(cp.size);
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(cp.root, *root);
  EXPECT_EQ(cp.size, runtime_->ledger->Size());
  // The note is exactly the body plus the log's one signature line.
  auto note = ledger::ParseSignedNote(f.note);
  ASSERT_TRUE(note.ok());
  EXPECT_EQ(note->text, ledger::FormatCheckpointBody(cp));
  ASSERT_EQ(note->signatures.size(), 1u);
  EXPECT_EQ(note->signatures[0].name, runtime_->ledger_origin);
  EXPECT_EQ(note->signatures[0].key_id, LogKey().key_id());

  // One character of the root line changed: the signature no longer holds.
  std::string tampered = f.note;
  const size_t root_line = tampered.find('\n', tampered.find('\n') + 1) + 1;
  tampered[root_line] = tampered[root_line] == 'A' ? 'B' : 'A';
  ASSERT_TRUE(ledger::ParseCheckpointBody(ledger::ParseSignedNote(tampered)->text).ok())
      << "the tampered note must still be a well-formed checkpoint";
  auto bad = ledger::VerifyCheckpoint(tampered, LogKey());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss) << bad.status().ToString();
  EXPECT_EQ(bad.status().message(), "checkpoint signature invalid");
  // The size changed instead: refused as well.
  std::string bigger = f.note;
  const size_t size_line = bigger.find('\n') + 1;
  bigger.insert(size_line, "1");
  EXPECT_EQ(ledger::VerifyCheckpoint(bigger, LogKey()).status().code(), StatusCode::kDataLoss);
  // Another key of the same name did not sign it.
  auto impostor = ledger::Signer::Generate(runtime_->ledger_origin);
  ASSERT_TRUE(impostor.ok());
  EXPECT_EQ(ledger::VerifyCheckpoint(f.note, impostor->Verifier()).status().code(),
            StatusCode::kFailedPrecondition);

  // Nothing new: the same checkpoint again; an unknown parameter is refused.
  EXPECT_EQ(GetCheckpoint().note, f.note);
  httplib::Client anon("127.0.0.1", server_->port());
  ExpectError(anon.Get("/api/v1/ledger/checkpoint?size=1"), 400, "INVALID_ARGUMENT");
}

TEST_F(HttpLedgerTest, EveryDecisionIsInTheLedgerWithInclusionProof) {
  SetUpPatient();
  const std::string path = Base() + "/segments/" + kBp;
  auto read = Get(path);
  ASSERT_TRUE(read);
  ASSERT_EQ(read->status, 200) << read->body;
  const std::string read_id = read->get_header_value("X-Request-Id");
  ASSERT_EQ(read_id.size(), 16u);

  // A doctor without a relationship is refused, and that is recorded too.
  auto stranger = MakeAccount("dr.stranger", {"doctor"});
  std::string denied_id;
  {
    auto c = ClientWith(SignIn(stranger));
    auto denied = c->Get(path.c_str());
    ExpectError(denied, 403, "PERMISSION_DENIED");
    denied_id = denied->get_header_value("X-Request-Id");
    EXPECT_EQ(json::parse(denied->body)["error"]["request_id"], denied_id);
  }

  std::string bodies;
  const json entries = AllEntries(&bodies);
  ASSERT_FALSE(entries.empty());

  // The permitted read: one decision entry with that request id.
  std::vector<json> mine = Find(entries, "decision", read_id);
  ASSERT_EQ(mine.size(), 1u) << entries.dump(1);
  const json& e = mine[0];
  EXPECT_EQ(e["effect"], "permit");
  EXPECT_EQ(e["actor"], clinician_.account_id);
  EXPECT_EQ(e["resource"]["kind"], "read");
  EXPECT_EQ(e["resource"]["path"], kBp);
  EXPECT_EQ(e["purpose"], "treatment");
  ASSERT_FALSE(e["reasons"].empty());
  EXPECT_EQ(e["patient_ref"], Ref(patient_id_));
  EXPECT_TRUE(ledger::IsValidPatientRef(e["patient_ref"].get<std::string>()));
  EXPECT_EQ(e["details"]["route"], "/api/v1/patients/{id}/segments/{path}");

  // The leaf hash, recomputed from the bytes, is the one the log claims, and
  // the bytes are the canonical encoding of what the JSON shows.
  const ledger::Hash leaf = LeafOf(e);
  EXPECT_EQ(HexOf(leaf), e["leaf_hash"]);
  auto decoded = ledger::Decode(*FromBase64Url(e["entry_base64"].get<std::string>()));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->request_id, read_id);
  EXPECT_EQ(decoded->actor, clinician_.account_id);
  EXPECT_EQ(decoded->action, "decision");
  EXPECT_EQ(decoded->effect, "permit");
  EXPECT_EQ(decoded->resource.path, kBp);

  // Its inclusion in the signed tree.
  const uint64_t seq = e["seq"].get<uint64_t>();
  const FetchedCheckpoint f = CheckpointCovering(entries.size());
  const std::string incl = "/api/v1/ledger/proof/inclusion?index=" + std::to_string(seq) +
                           "&size=" + std::to_string(f.cp.size);
  auto proof = GetProof(incl);
  ASSERT_TRUE(proof.has_value());
  Status st = ledger::VerifyInclusion(leaf, seq, f.cp.size, *proof, f.cp.root);
  EXPECT_TRUE(st.ok()) << st.ToString();
  // The same proof does not prove another leaf, another position or another root.
  const ledger::Hash other_leaf = LeafOf(entries[seq == 0 ? 1 : 0]);
  EXPECT_EQ(ledger::VerifyInclusion(other_leaf, seq, f.cp.size, *proof, f.cp.root).code(),
            StatusCode::kDataLoss);
  if (seq + 1 < f.cp.size) {
    EXPECT_FALSE(ledger::VerifyInclusion(leaf, seq + 1, f.cp.size, *proof, f.cp.root).ok());
  }
  EXPECT_EQ(ledger::VerifyInclusion(leaf, seq, f.cp.size, *proof, ledger::EmptyRoot()).code(),
            StatusCode::kDataLoss);
  // Every entry the auditor saw is in the tree (the leaf hashes all check).
  for (const auto& x : entries) {
    if (x["seq"].get<uint64_t>() >= f.cp.size) {
      continue;
    }
    EXPECT_EQ(HexOf(LeafOf(x)), x["leaf_hash"]) << x.dump();
    auto p = GetProof("/api/v1/ledger/proof/inclusion?index=" + x["seq"].dump() +
                      "&size=" + std::to_string(f.cp.size));
    ASSERT_TRUE(p.has_value());
    EXPECT_TRUE(
        ledger::VerifyInclusion(LeafOf(x), x["seq"].get<uint64_t>(), f.cp.size, *p, f.cp.root).ok())
        << x.dump();
  }

  // The denied read: recorded with effect deny and the deciding reason.
  std::vector<json> denied = Find(entries, "decision", denied_id);
  ASSERT_EQ(denied.size(), 1u) << entries.dump(1);
  EXPECT_EQ(denied[0]["effect"], "deny");
  EXPECT_EQ(denied[0]["actor"], stranger.account_id);
  EXPECT_EQ(denied[0]["resource"]["kind"], "read");
  EXPECT_EQ(denied[0]["resource"]["path"], kBp);
  EXPECT_EQ(denied[0]["patient_ref"], Ref(patient_id_));
  ASSERT_FALSE(denied[0]["reasons"].empty());
  EXPECT_NE(denied[0]["reasons"][0], "treating-relationship");

  // No patient id anywhere: neither in the JSON nor in the hashed bytes.
  EXPECT_EQ(bodies.find(patient_id_), std::string::npos);
  for (const auto& x : entries) {
    const Bytes b = *FromBase64Url(x["entry_base64"].get<std::string>());
    EXPECT_EQ(std::string(b.begin(), b.end()).find(patient_id_), std::string::npos) << x.dump();
  }

  // Sad paths of the proof endpoint.
  httplib::Client anon("127.0.0.1", server_->port());
  const std::string n = std::to_string(f.cp.size);
  ExpectError(anon.Get(("/api/v1/ledger/proof/inclusion?index=" + n + "&size=" + n).c_str()), 400,
              "INVALID_ARGUMENT");
  ExpectError(
      anon.Get(("/api/v1/ledger/proof/inclusion?index=0&size=" + std::to_string(f.cp.size + 1000))
                   .c_str()),
      400, "INVALID_ARGUMENT");
  ExpectError(anon.Get("/api/v1/ledger/proof/inclusion?index=0"), 400, "INVALID_ARGUMENT");
  ExpectError(anon.Get("/api/v1/ledger/proof/inclusion?index=-1&size=2"), 400, "INVALID_ARGUMENT");
  ExpectError(anon.Get("/api/v1/ledger/proof/inclusion?index=0&size=2&x=1"), 400,
              "INVALID_ARGUMENT");

  // The entries are for auditors (and privacy officers) only.
  ExpectError(Get("/api/v1/ledger/entries"), 403, "PERMISSION_DENIED");
  ExpectError(anon.Get("/api/v1/ledger/entries"), 401, "UNAUTHENTICATED");
  ExpectError(auditor_client_->Get("/api/v1/ledger/entries?from=x"), 400, "INVALID_ARGUMENT");
  auto officer = ClientWith(SignIn(MakeAccount("privacy.x", {"privacy-officer"})));
  auto seen = officer->Get("/api/v1/ledger/entries?from=0&limit=1");
  ASSERT_TRUE(seen);
  ASSERT_EQ(seen->status, 200) << seen->body;
  EXPECT_EQ(json::parse(seen->body)["entries"].size(), 1u);
}

TEST_F(HttpLedgerTest, WritesAndKeyEventsAreRecorded) {
  patient_id_ = CreatePatient("Writes", "MRN-WRITES");
  ASSERT_EQ(patient_id_.size(), 32u);
  const std::string path = Base() + "/segments/" + kBp;
  auto w1 = Put(path, json{{"data", Bp(140, 90)}}.dump());
  ASSERT_TRUE(w1);
  ASSERT_EQ(w1->status, 201) << w1->body;
  auto w2 = Put(path, json{{"data", Bp(120, 80)}}.dump());
  ASSERT_TRUE(w2);
  ASSERT_EQ(w2->status, 201) << w2->body;
  const json info1 = json::parse(w1->body);
  const json info2 = json::parse(w2->body);
  ASSERT_EQ(info1["version"], 1);
  ASSERT_EQ(info2["version"], 2);
  ASSERT_NE(info1["content_sha256"], info2["content_sha256"]);

  // A refused write leaves no write entry behind (only its decision).
  auto stranger = ClientWith(SignIn(MakeAccount("dr.stranger", {"doctor"})));
  ExpectError(stranger->Put(path.c_str(), json{{"data", Bp(1, 1)}}.dump(), "application/json"), 403,
              "PERMISSION_DENIED");
  stranger.reset();

  const json entries = AllEntries();
  const std::string ref = Ref(patient_id_);

  std::vector<json> created = Find(entries, "key.patient-root-created");
  ASSERT_EQ(created.size(), 1u) << entries.dump(1);
  EXPECT_EQ(created[0]["effect"], "done");
  EXPECT_EQ(created[0]["actor"], clinician_.account_id);
  EXPECT_EQ(created[0]["patient_ref"], ref);
  EXPECT_EQ(created[0]["resource"]["kind"], "patient");
  EXPECT_EQ(HexOf(LeafOf(created[0])), created[0]["leaf_hash"]);

  std::vector<json> writes = Find(entries, "segment.write");
  ASSERT_EQ(writes.size(), 2u) << entries.dump(1);
  for (size_t i = 0; i < 2; ++i) {
    const json& info = i == 0 ? info1 : info2;
    const json& e = writes[i];
    EXPECT_EQ(e["effect"], "done");
    EXPECT_EQ(e["actor"], clinician_.account_id);
    EXPECT_EQ(e["patient_ref"], ref);
    EXPECT_EQ(e["resource"]["kind"], "segment");
    EXPECT_EQ(e["resource"]["path"], kBp);
    EXPECT_EQ(e["details"]["version"], std::to_string(info["version"].get<int>()));
    EXPECT_EQ(e["details"]["content_sha256"], info["content_sha256"]);
    EXPECT_EQ(HexOf(LeafOf(e)), e["leaf_hash"]);
  }
  // The key event comes before the writes, and each write after its permit.
  EXPECT_LT(created[0]["seq"].get<uint64_t>(), writes[0]["seq"].get<uint64_t>());
  EXPECT_LT(writes[0]["seq"].get<uint64_t>(), writes[1]["seq"].get<uint64_t>());
  const std::vector<json> write_decisions =
      Find(entries, "decision", w1->get_header_value("X-Request-Id"));
  ASSERT_EQ(write_decisions.size(), 1u);
  EXPECT_EQ(write_decisions[0]["effect"], "permit");
  EXPECT_EQ(write_decisions[0]["resource"]["kind"], "write");
}

TEST_F(HttpLedgerTest, ConsistencyBetweenCheckpoints) {
  SetUpPatient();
  const FetchedCheckpoint a = GetCheckpoint();
  ASSERT_GT(a.cp.size, 0u);
  for (int i = 0; i < 3; ++i) {
    auto w = Put(Base() + "/segments/" + kBp, json{{"data", Bp(130 + i, 85)}}.dump());
    ASSERT_TRUE(w);
    ASSERT_EQ(w->status, 201);
    auto r = Get(Base() + "/segments/" + kBp);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const FetchedCheckpoint b = GetCheckpoint();
  // 3 writes (decision + write entry) and 3 reads (decision) at least.
  ASSERT_GE(b.cp.size, a.cp.size + 9);
  EXPECT_EQ(a.cp.origin, b.cp.origin);
  EXPECT_NE(a.cp.root, b.cp.root);

  const std::string url = "/api/v1/ledger/proof/consistency?old=" + std::to_string(a.cp.size) +
                          "&new=" + std::to_string(b.cp.size);
  auto proof = GetProof(url);
  ASSERT_TRUE(proof.has_value());
  ASSERT_FALSE(proof->empty());
  Status st = ledger::VerifyConsistency(a.cp.size, b.cp.size, a.cp.root, b.cp.root, *proof);
  EXPECT_TRUE(st.ok()) << st.ToString();

  // A proof for other sizes does not prove A -> B.
  auto wrong = GetProof("/api/v1/ledger/proof/consistency?old=" + std::to_string(a.cp.size - 1) +
                        "&new=" + std::to_string(b.cp.size));
  ASSERT_TRUE(wrong.has_value());
  EXPECT_FALSE(ledger::VerifyConsistency(a.cp.size, b.cp.size, a.cp.root, b.cp.root, *wrong).ok());
  auto wrong_new = GetProof("/api/v1/ledger/proof/consistency?old=" + std::to_string(a.cp.size) +
                            "&new=" + std::to_string(b.cp.size - 1));
  ASSERT_TRUE(wrong_new.has_value());
  EXPECT_FALSE(
      ledger::VerifyConsistency(a.cp.size, b.cp.size, a.cp.root, b.cp.root, *wrong_new).ok());
  // Nor the right proof with the wrong claims.
  EXPECT_EQ(
      ledger::VerifyConsistency(a.cp.size - 1, b.cp.size, a.cp.root, b.cp.root, *proof).code(),
      StatusCode::kDataLoss);
  EXPECT_EQ(ledger::VerifyConsistency(a.cp.size, b.cp.size, b.cp.root, b.cp.root, *proof).code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(ledger::VerifyConsistency(a.cp.size, b.cp.size, a.cp.root, a.cp.root, *proof).code(),
            StatusCode::kDataLoss);
  // A proof with one hash missing fails.
  std::vector<ledger::Hash> shorter(proof->begin(), proof->end() - 1);
  EXPECT_FALSE(ledger::VerifyConsistency(a.cp.size, b.cp.size, a.cp.root, b.cp.root, shorter).ok());

  // Trivial and refused requests.
  auto same = GetProof("/api/v1/ledger/proof/consistency?old=" + std::to_string(b.cp.size) +
                       "&new=" + std::to_string(b.cp.size));
  ASSERT_TRUE(same.has_value());
  EXPECT_TRUE(same->empty());
  httplib::Client anon("127.0.0.1", server_->port());
  ExpectError(anon.Get(("/api/v1/ledger/proof/consistency?old=" + std::to_string(b.cp.size) +
                        "&new=" + std::to_string(a.cp.size))
                           .c_str()),
              400, "INVALID_ARGUMENT");
  ExpectError(
      anon.Get(("/api/v1/ledger/proof/consistency?old=1&new=" + std::to_string(b.cp.size + 1000))
                   .c_str()),
      400, "INVALID_ARGUMENT");
  ExpectError(anon.Get("/api/v1/ledger/proof/consistency?old=1"), 400, "INVALID_ARGUMENT");
  ExpectError(anon.Get("/api/v1/ledger/proof/consistency?old=1&new=2&new=3"), 400,
              "INVALID_ARGUMENT");
}

TEST_F(HttpLedgerTest, PatientReadsOwnAccessHistoryIncludingBreakGlass) {
  SetUpPatient();
  auto patient = MakeAccount("pat.x", {"patient"}, patient_id_);
  patient_client_ = ClientWith(SignIn(patient));
  const std::string path = Base() + "/segments/" + kBp;
  auto read = Get(path);
  ASSERT_TRUE(read);
  ASSERT_EQ(read->status, 200);
  const std::string read_id = read->get_header_value("X-Request-Id");

  const std::string history_url = Base() + "/access-history";
  auto h1 = patient_client_->Get(history_url.c_str());
  ASSERT_TRUE(h1);
  ASSERT_EQ(h1->status, 200) << h1->body;
  json body = json::parse(h1->body);
  EXPECT_EQ(body["patient_id"], patient_id_);
  const json& history = body["history"];
  ASSERT_FALSE(history.empty());
  // The doctor's read: who, what, why.
  bool found_read = false;
  uint64_t last_seq = 0;
  for (const auto& item : history) {
    EXPECT_GE(item["seq"].get<uint64_t>(), last_seq);
    last_seq = item["seq"].get<uint64_t>();
    EXPECT_FALSE(item["break_glass"].get<bool>()) << item.dump();
    if (item["action"] == "decision" && item["actor"] == clinician_.account_id &&
        item["what"] == "read" && item["path"] == kBp) {
      found_read = true;
      EXPECT_EQ(item["effect"], "permit");
      EXPECT_EQ(item["actor_name"], "Test dr.test");
      EXPECT_EQ(item["actor_roles"], json::array({"department-head"}));
      EXPECT_EQ(item["purpose"], "treatment");
      ASSERT_FALSE(item["reasons"].empty());
    }
  }
  EXPECT_TRUE(found_read) << history.dump(1);
  // The write and the creation of the record are in it too.
  bool found_write = false;
  for (const auto& item : history) {
    found_write = found_write || (item["action"] == "segment.write" && item["path"] == kBp);
  }
  EXPECT_TRUE(found_write) << history.dump(1);

  // A second doctor breaks the glass and reads.
  auto er = MakeAccount("dr.er", {"doctor"});
  {
    auto er_client = ClientWith(SignIn(er));
    ExpectError(er_client->Get(path.c_str()), 403, "PERMISSION_DENIED");
    auto declared = er_client->Post(
        (Base() + "/break-glass").c_str(),
        json{{"reason", "Unconscious on arrival, allergies unknown"}}.dump(), "application/json");
    ASSERT_TRUE(declared);
    ASSERT_EQ(declared->status, 201) << declared->body;
    auto er_read = er_client->Get(path.c_str());
    ASSERT_TRUE(er_read);
    ASSERT_EQ(er_read->status, 200) << er_read->body;
  }
  auto h2 = patient_client_->Get((history_url + "?after=" + std::to_string(last_seq)).c_str());
  ASSERT_TRUE(h2);
  ASSERT_EQ(h2->status, 200) << h2->body;
  const json later = json::parse(h2->body)["history"];
  bool saw_declaration = false;
  bool saw_emergency_read = false;
  bool saw_denied = false;
  for (const auto& item : later) {
    EXPECT_GT(item["seq"].get<uint64_t>(), last_seq);
    if (item["actor"] != er.account_id) {
      continue;
    }
    EXPECT_EQ(item["actor_name"], "Test dr.er");
    if (item["action"] == "break-glass") {
      saw_declaration = true;
      EXPECT_EQ(item["effect"], "permit");
      EXPECT_TRUE(item["break_glass"].get<bool>());
      EXPECT_EQ(item["purpose"], "emergency");
    } else if (item["action"] == "decision" && item["effect"] == "permit") {
      saw_emergency_read = true;
      EXPECT_EQ(item["what"], "read");
      EXPECT_EQ(item["path"], kBp);
      EXPECT_EQ(item["reasons"][0], "break-glass");
      EXPECT_TRUE(item["break_glass"].get<bool>());
    } else if (item["action"] == "decision" && item["effect"] == "deny") {
      saw_denied = true;  // the refused read before the emergency
      EXPECT_FALSE(item["break_glass"].get<bool>());
    }
  }
  EXPECT_TRUE(saw_declaration) << later.dump(1);
  EXPECT_TRUE(saw_emergency_read) << later.dump(1);
  EXPECT_TRUE(saw_denied) << later.dump(1);
  // Paging: one at a time.
  auto one = patient_client_->Get((history_url + "?limit=1").c_str());
  ASSERT_TRUE(one);
  ASSERT_EQ(one->status, 200);
  EXPECT_EQ(json::parse(one->body)["history"].size(), 1u);
  ExpectError(patient_client_->Get((history_url + "?after=x").c_str()), 400, "INVALID_ARGUMENT");

  // Another patient, an operator and a stranger see nothing of it.
  const std::string other_id = CreatePatient("Other", "MRN-OTHER");
  {
    auto other = ClientWith(SignIn(MakeAccount("pat.other", {"patient"}, other_id)));
    ExpectError(other->Get(history_url.c_str()), 403, "PERMISSION_DENIED");
    auto own = other->Get((Base(other_id) + "/access-history").c_str());
    ASSERT_TRUE(own);
    EXPECT_EQ(own->status, 200) << own->body;
    const json parsed_1 = json::parse(own->body);
    for (const auto& item : parsed_1["history"]) {
      EXPECT_NE(item["actor"], er.account_id) << item.dump();
    }
    auto op = ClientWith(SignIn(MakeAccount("operator.x", {"operator"})));
    ExpectError(op->Get(history_url.c_str()), 403, "PERMISSION_DENIED");
    auto stranger = ClientWith(SignIn(MakeAccount("dr.stranger", {"doctor"})));
    ExpectError(stranger->Get(history_url.c_str()), 403, "PERMISSION_DENIED");
  }
  httplib::Client anon("127.0.0.1", server_->port());
  ExpectError(anon.Get(history_url.c_str()), 401, "UNAUTHENTICATED");
}

TEST_F(HttpLedgerTest, WitnessCosignsAndAForkIsRefused) {
  SetUpPatient();
  // The fixture's server has no witnesses: no cosignature is accepted.
  auto w1_signer = ledger::Signer::Generate("witness.example/w1");
  ASSERT_TRUE(w1_signer.ok());
  const ledger::VerifierKey w1_key = w1_signer->CosignatureVerifier();
  testing::TempDir witness_dir;
  auto witness = ledger::Witness::Open(witness_dir.path(), LogKey(), std::move(*w1_signer));
  ASSERT_TRUE(witness.ok()) << witness.status().ToString();
  ledger::Witness& w = **witness;
  EXPECT_EQ(w.CosignatureVerifier(), w1_key);
  EXPECT_EQ(w.size(), 0u);

  RestartServerWithWitnesses({w1_key}, 1);

  // First sight: trust on first use, an empty proof.
  const FetchedCheckpoint a = GetCheckpoint();
  ASSERT_GT(a.cp.size, 0u);
  EXPECT_EQ(a.witnessed_header, "false");
  EXPECT_EQ(a.quorum_header, "1 of 1");
  auto line = w.Observe(a.note, {});
  ASSERT_TRUE(line.ok()) << line.status().ToString();
  EXPECT_EQ(w.size(), a.cp.size);
  const std::string body_a = ledger::ParseSignedNote(a.note)->text;
  EXPECT_TRUE(ledger::VerifyCosignature(body_a, *line, w1_key).ok());

  auto posted = PostCosignature(a.cp.size, *line);
  ASSERT_TRUE(posted);
  EXPECT_EQ(posted->status, 201) << posted->body;
  EXPECT_EQ(json::parse(posted->body), (json{{"accepted", true}, {"size", a.cp.size}}));

  const FetchedCheckpoint a2 = GetCheckpoint();
  EXPECT_EQ(a2.cp, a.cp);
  EXPECT_EQ(a2.witnessed_header, "true");
  EXPECT_EQ(a2.note, a.note + *line);
  auto cosigned = ledger::ParseSignedNote(a2.note);
  ASSERT_TRUE(cosigned.ok());
  ASSERT_EQ(cosigned->signatures.size(), 2u);
  EXPECT_EQ(cosigned->signatures[1].name, "witness.example/w1");
  EXPECT_EQ(cosigned->signatures[1].key_id, w1_key.key_id());

  // Refused cosignatures: from a witness the server does not follow, over
  // another checkpoint, malformed, for a size without checkpoint.
  auto w2 = ledger::Signer::Generate("witness.example/w2");
  ASSERT_TRUE(w2.ok());
  const auto now = static_cast<uint64_t>(NowUnixMillis() / 1000);
  ExpectError(PostCosignature(a.cp.size, *ledger::Cosign(*w2, body_a, now)), 403,
              "PERMISSION_DENIED");
  ExpectError(PostCosignature(a.cp.size, "— witness.example/w1 AAAA\n"), 400, "INVALID_ARGUMENT");
  ExpectError(PostCosignature(a.cp.size + 1000, *line), 404, "NOT_FOUND");
  httplib::Client anon("127.0.0.1", server_->port());
  ExpectError(anon.Post("/api/v1/ledger/cosignatures", json{{"size", a.cp.size}}.dump(),
                        "application/json"),
              400, "INVALID_ARGUMENT");
  {
    // Another key under w1's name is not the configured witness.
    auto impostor = ledger::Signer::Generate("witness.example/w1");
    ASSERT_TRUE(impostor.ok());
    ExpectError(PostCosignature(a.cp.size, *ledger::Cosign(*impostor, body_a, now)), 403,
                "PERMISSION_DENIED");
    // w1's own line with its signature broken (name, key id and timestamp
    // intact): the caller's error or a forgery, never a server failure.
    // (Regression: this once answered 500 DATA_LOSS and logged an
    // integrity failure that anyone could trigger.)
    std::string broken = *line;
    const size_t sig_at = broken.rfind(' ') + 1 + 16;  // base64 of byte 12: the signature
    broken[sig_at] = broken[sig_at] == 'A' ? 'B' : 'A';
    auto bad_sig = PostCosignature(a.cp.size, broken);
    ASSERT_TRUE(bad_sig);
    EXPECT_EQ(bad_sig->status, 403) << bad_sig->body;
    EXPECT_LT(bad_sig->status, 500) << "a cosignature that does not verify is the client's "
                                       "error, not a server failure: "
                                    << bad_sig->body;
  }
  // Still witnessed by the one good line.
  const FetchedCheckpoint a3 = GetCheckpoint();
  EXPECT_EQ(a3.witnessed_header, "true");
  EXPECT_EQ(a3.note, a.note + *line);

  // The log grows; the witness follows with the log's consistency proof.
  for (int i = 0; i < 2; ++i) {
    auto r = Get(Base() + "/segments/" + kBp);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const FetchedCheckpoint b = GetCheckpoint();
  ASSERT_GT(b.cp.size, a.cp.size);
  EXPECT_EQ(b.witnessed_header, "false");  // the new checkpoint is not cosigned yet
  // Without a proof the witness refuses to move on.
  auto no_proof = w.Observe(b.note, {});
  EXPECT_EQ(no_proof.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(no_proof.status().message().find("consistency"), std::string::npos)
      << no_proof.status().ToString();
  auto proof = GetProof("/api/v1/ledger/proof/consistency?old=" + std::to_string(w.size()) +
                        "&new=" + std::to_string(b.cp.size));
  ASSERT_TRUE(proof.has_value());
  auto line_b = w.Observe(b.note, *proof);
  ASSERT_TRUE(line_b.ok()) << line_b.status().ToString();
  EXPECT_EQ(w.size(), b.cp.size);
  auto posted_b = PostCosignature(b.cp.size, *line_b);
  ASSERT_TRUE(posted_b);
  EXPECT_EQ(posted_b->status, 201) << posted_b->body;
  const FetchedCheckpoint b2 = GetCheckpoint();
  EXPECT_EQ(b2.witnessed_header, "true");
  EXPECT_EQ(b2.note, b.note + *line_b);

  // A fork: the log's own key signs another root at the size the witness
  // has seen. The witness refuses it and keeps its state.
  ledger::Checkpoint fork = b.cp;
  fork.root[0] ^= 0x01;
  auto fork_note = ledger::SignCheckpoint(*runtime_->ledger_signer, fork);
  ASSERT_TRUE(fork_note.ok());
  ASSERT_TRUE(ledger::VerifyCheckpoint(*fork_note, LogKey()).ok());
  auto forked = w.Observe(*fork_note, {});
  EXPECT_EQ(forked.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(forked.status().message().find("fork"), std::string::npos)
      << forked.status().ToString();
  EXPECT_EQ(w.size(), b.cp.size);
  EXPECT_EQ(w.root(), b.cp.root);

  // A larger checkpoint that does not extend the witnessed one.
  ledger::Checkpoint ahead = b.cp;
  ahead.size += 5;
  ahead.root[5] ^= 0x80;
  auto ahead_note = ledger::SignCheckpoint(*runtime_->ledger_signer, ahead);
  ASSERT_TRUE(ahead_note.ok());
  std::vector<ledger::Hash> bogus = {b.cp.root, fork.root};
  auto ahead_res = w.Observe(*ahead_note, bogus);
  EXPECT_EQ(ahead_res.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(ahead_res.status().message().find("consistency"), std::string::npos)
      << ahead_res.status().ToString();
  EXPECT_EQ(w.size(), b.cp.size);

  // Going back, or a checkpoint the log did not sign: refused too.
  auto back = w.Observe(a.note, {});
  EXPECT_EQ(back.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(back.status().message().find("size went backwards"), std::string::npos);
  auto stranger_log = ledger::Signer::Generate(runtime_->ledger_origin);
  ASSERT_TRUE(stranger_log.ok());
  auto unsigned_note = ledger::SignCheckpoint(*stranger_log, ahead);
  ASSERT_TRUE(unsigned_note.ok());
  EXPECT_EQ(w.Observe(*unsigned_note, {}).status().code(), StatusCode::kFailedPrecondition);

  // A witness reopened on its state still remembers (no reset to TOFU).
  const ledger::Hash seen_root = *w.root();
  witness->reset();
  auto w1_reopened_signer = ledger::Signer::Generate("witness.example/w1b");
  ASSERT_TRUE(w1_reopened_signer.ok());
  auto reopened =
      ledger::Witness::Open(witness_dir.path(), LogKey(), std::move(*w1_reopened_signer));
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ((*reopened)->size(), b.cp.size);
  EXPECT_EQ((*reopened)->root(), seen_root);
  EXPECT_NE((*reopened)->Observe(*fork_note, {}).status().message().find("fork"),
            std::string::npos);

  // The stored cosignatures verify offline with the witness key.
  auto report = runtime_->ledger->VerifyAll(LogKey(), std::vector<ledger::VerifierKey>{w1_key});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok);
  EXPECT_EQ(report->cosignatures_verified, 2u);
}

TEST_F(HttpLedgerTest, TamperedLedgerIsCaught) {
  SetUpPatient();
  const FetchedCheckpoint c1 = GetCheckpoint();
  for (int i = 0; i < 3; ++i) {
    auto w = Put(Base() + "/segments/" + kBp, json{{"data", Bp(150 + i, 95)}}.dump());
    ASSERT_TRUE(w);
    ASSERT_EQ(w->status, 201);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const FetchedCheckpoint c2 = GetCheckpoint();
  ASSERT_GE(c2.cp.size, c1.cp.size + 6);
  // Some entries after the last checkpoint too.
  auto r = Get(Base() + "/segments/" + kBp);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  const uint64_t n1 = c1.cp.size;
  const uint64_t n2 = c2.cp.size;
  const uint64_t total = runtime_->ledger->Size();
  ASSERT_GT(total, n2);
  const ledger::VerifierKey log_key = LogKey();
  const std::filesystem::path db = app::DataDirLayout(data_).metadata_db;
  StopServer();

  auto verify = [&]() {
    auto report = ledger::SqliteLedger::VerifyDatabase(db, log_key);
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return report.ok() ? *report : ledger::VerifyReport{};
  };
  auto problems = [](const ledger::VerifyReport& rep) {
    std::string s;
    for (const auto& p : rep.problems) {
      s += p + "\n";
    }
    return s;
  };
  // The strict open refuses (the server itself continues in a new epoch:
  // DamagedRowContinuesInANewEpoch below).
  auto expect_refused = [&](const std::string& what) {
    auto opened = ledger::SqliteLedger::Open(db);
    ASSERT_FALSE(opened.ok()) << "a tampered ledger opened (" << what << ")";
    EXPECT_EQ(opened.status().code(), StatusCode::kDataLoss) << opened.status().ToString();
    EXPECT_NE(opened.status().message().find(what), std::string::npos)
        << opened.status().ToString();
  };

  // Untouched: everything verifies.
  {
    const ledger::VerifyReport rep = verify();
    EXPECT_TRUE(rep.ok) << problems(rep);
    EXPECT_EQ(rep.entries, total);
    // c1, c2, the one signed at shutdown (and any the 10 s scheduler signed
    // on a slow machine).
    EXPECT_GE(rep.checkpoints, 3u);
    EXPECT_EQ(rep.checkpoints_verified, rep.checkpoints);
    EXPECT_FALSE(rep.first_bad_entry.has_value());
  }

  RawDb raw(db);
  const uint64_t edited = n1 + 1;
  const std::vector<RawDb::Row> all = raw.Rows("");
  ASSERT_EQ(all.size(), total);
  const RawDb::Row original = all[edited];
  ASSERT_EQ(original.seq, static_cast<int64_t>(edited));

  // 1. One entry's bytes edited in place: its time moved by a millisecond.
  Bytes changed = original.entry;
  {
    // Format version 2: the time is the LEB128 integer after the version
    // byte; its lowest bit is in the first byte's lowest bit.
    ASSERT_EQ(*ledger::EntryFormatVersion(changed), ledger::kEntryVersion);
    changed[1] ^= 0x01;
    auto moved = ledger::Decode(changed);
    ASSERT_TRUE(moved.ok()) << "still a canonical entry";
    ASSERT_EQ(std::llabs(moved->time_ms - ledger::Decode(original.entry)->time_ms), 1);
  }
  raw.SetEntry(original.seq, changed);
  {
    const ledger::VerifyReport rep = verify();
    EXPECT_FALSE(rep.ok);
    EXPECT_EQ(rep.first_bad_entry, edited) << problems(rep);
    ASSERT_FALSE(rep.problems.empty());
    EXPECT_EQ(rep.problems[0],
              "entry " + std::to_string(edited) + ": leaf hash does not match its content");
    // The tree is rebuilt from the content: the later checkpoint breaks, the
    // earlier one still holds and brackets the change.
    EXPECT_EQ(rep.first_bad_checkpoint, n2) << problems(rep);
    EXPECT_EQ(rep.checkpoints_verified, 1u);
    EXPECT_NE(problems(rep).find("checkpoint at size " + std::to_string(n2) +
                                 ": root does not match the stored entries (the checkpoint at "
                                 "size " +
                                 std::to_string(n1) + " matches: the change lies in entries " +
                                 std::to_string(n1) + ".." + std::to_string(n2 - 1) + ")"),
              std::string::npos)
        << problems(rep);
  }
  expect_refused("entry " + std::to_string(edited) + ": leaf hash does not match its content");

  // 1b. The same edit with the stored leaf hash recomputed: the signed
  // checkpoint still catches it.
  {
    const ledger::Hash h = ledger::LeafHash(changed);
    const Bytes leaf(h.begin(), h.end());
    raw.SetEntry(original.seq, changed, &leaf);
    const ledger::VerifyReport rep = verify();
    EXPECT_FALSE(rep.ok);
    EXPECT_EQ(rep.first_bad_checkpoint, n2) << problems(rep);
    ASSERT_FALSE(rep.problems.empty());
    EXPECT_EQ(rep.problems[0], "checkpoint at size " + std::to_string(n2) +
                                   ": root does not match the stored entries (the checkpoint at "
                                   "size " +
                                   std::to_string(n1) + " matches: the change lies in entries " +
                                   std::to_string(n1) + ".." + std::to_string(n2 - 1) + ")");
    // The newest checkpoint (signed at shutdown) is the one Open checks.
    expect_refused("checkpoint at size " + std::to_string(total) +
                   ": root does not match the stored entries");
  }
  raw.SetEntry(original.seq, original.entry, &original.leaf_hash);
  EXPECT_TRUE(verify().ok);

  // 2. One entry deleted.
  const uint64_t deleted = 3;
  ASSERT_LT(deleted, n1);
  raw.Exec("DELETE FROM ledger_entries WHERE seq = " + std::to_string(deleted));
  {
    const ledger::VerifyReport rep = verify();
    EXPECT_FALSE(rep.ok);
    EXPECT_EQ(rep.first_bad_entry, deleted) << problems(rep);
    EXPECT_EQ(rep.entries, deleted);
    ASSERT_FALSE(rep.problems.empty());
    EXPECT_EQ(rep.problems[0], "entry 3 is missing (the next stored entry is 4)");
    EXPECT_EQ(rep.first_bad_checkpoint, n1) << problems(rep);
    EXPECT_EQ(rep.checkpoints_verified, 0u);
  }
  expect_refused("entry 3 is missing (the next stored entry is 4)");
  raw.Insert(all[deleted]);
  EXPECT_TRUE(verify().ok);

  // 3. The tail cut off, back into the entries a checkpoint covers.
  const uint64_t cut = n1 + 2;
  ASSERT_LT(cut, n2);
  raw.Exec("DELETE FROM ledger_entries WHERE seq >= " + std::to_string(cut));
  {
    const ledger::VerifyReport rep = verify();
    EXPECT_FALSE(rep.ok);
    EXPECT_EQ(rep.entries, cut);
    EXPECT_EQ(rep.first_bad_checkpoint, n2) << problems(rep);
    EXPECT_EQ(rep.checkpoints_verified, 1u);
    ASSERT_FALSE(rep.problems.empty());
    EXPECT_EQ(rep.problems[0], "checkpoint at size " + std::to_string(n2) + ": the log has only " +
                                   std::to_string(cut) + " entries (entries " +
                                   std::to_string(cut) + ".." + std::to_string(n2 - 1) +
                                   " are missing: truncated)");
  }
  expect_refused("checkpoint at size " + std::to_string(total) + " is beyond the " +
                 std::to_string(cut) + " stored entries (log truncated)");
  for (uint64_t s = cut; s < total; ++s) {
    raw.Insert(all[s]);
  }
  EXPECT_TRUE(verify().ok);
  // Restored exactly: the server opens again, in the same epoch.
  auto rt = app::OpenRuntime(RuntimeConfig());
  ASSERT_TRUE(rt.ok()) << rt.status().ToString();
  EXPECT_EQ((*rt)->ledger->Epoch(), 0u);
}

// Issue 13: one damaged row does not take every record offline. The server
// starts, continues in epoch 1 whose first entry commits to the damage,
// reports it (/readyz, /metrics, the epochs), keeps recording, and a privacy
// officer's acknowledgement is recorded; the damage stays reported.
TEST_F(HttpLedgerTest, DamagedRowContinuesInANewEpoch) {
  SetUpPatient();
  const std::string path = Base() + "/segments/" + kBp;
  auto read = Get(path);
  ASSERT_TRUE(read);
  ASSERT_EQ(read->status, 200);
  const ledger::VerifierKey log_key = LogKey();
  const std::filesystem::path db = app::DataDirLayout(data_).metadata_db;
  const std::string officer = MakeAccount("po.epoch", {"privacy-officer"}).account_id;
  const TestAccount patient = MakeAccount("pat.epoch", {"patient"}, patient_id_);
  StopServer();  // signs the shutdown checkpoint

  const uint64_t damaged = 2;
  RawDb::Row original;
  Bytes changed;
  uint64_t stored = 0;
  {
    RawDb raw(db);
    const std::vector<RawDb::Row> all = raw.Rows("");
    stored = all.size();
    ASSERT_GT(stored, damaged);
    original = all[damaged];
    changed = original.entry;
    changed[changed.size() / 2] ^= 0x01;  // one bit: not even canonical any more
    raw.SetEntry(original.seq, changed);
  }

  StartServer();  // no refusal: a new epoch
  ASSERT_EQ(runtime_->ledger->Epoch(), 1u);
  EXPECT_EQ(runtime_->ledger_origin, "medvault.local/ledger/epoch/1");
  // Records are served, writes keep their atomic entries.
  read = Get(path);
  ASSERT_TRUE(read);
  EXPECT_EQ(read->status, 200) << read->body;
  auto w = Put(path, json{{"data", Bp(135, 85)}}.dump());
  ASSERT_TRUE(w);
  ASSERT_EQ(w->status, 201) << w->body;

  // The epoch's first entry commits to what was found.
  auto first = runtime_->ledger->GetEntry(0);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const ledger::Entry& e = first->entry;
  EXPECT_EQ(e.action, ledger::kActionLedgerEpoch);
  EXPECT_EQ(e.details.at("epoch"), "1");
  EXPECT_EQ(e.details.at("previous_epoch"), "0");
  EXPECT_EQ(e.details.at("first_bad_entry"), std::to_string(damaged));
  EXPECT_EQ(e.details.at("previous_stored_entries"), std::to_string(stored));
  EXPECT_EQ(e.details.at("found_entry_sha256"), ToHex(crypto::Sha256(changed)));
  EXPECT_EQ(e.details.at("found_leaf_hash"), ToHex(original.leaf_hash));
  // The first checkpoint past the damaged row (the shutdown one, or one the
  // scheduler signed before it on a slow machine).
  const uint64_t first_bad_checkpoint = std::stoull(e.details.at("first_bad_checkpoint"));
  EXPECT_GT(first_bad_checkpoint, damaged);
  EXPECT_LE(first_bad_checkpoint, stored);
  EXPECT_EQ(e.details.at("damage"),
            "entry " + std::to_string(damaged) + ": leaf hash does not match its content");
  // The read and the write of this epoch are recorded after it.
  bool found_write = false;
  ASSERT_TRUE(runtime_->ledger->Sync().ok());
  for (uint64_t i = 1; i < runtime_->ledger->Size(); ++i) {
    auto rec = runtime_->ledger->GetEntry(i);
    ASSERT_TRUE(rec.ok());
    found_write = found_write || (rec->entry.action == "segment.write" &&
                                  rec->entry.patient_ref == Ref(patient_id_));
  }
  EXPECT_TRUE(found_write);

  // The patient's history before the damage is in epoch 0, after it in 1.
  {
    auto pc = ClientWith(SignIn(patient));
    auto now_history = pc->Get((Base() + "/access-history").c_str());
    ASSERT_TRUE(now_history);
    ASSERT_EQ(now_history->status, 200) << now_history->body;
    const json now_body = json::parse(now_history->body);
    EXPECT_EQ(now_body["epoch"], 1);
    EXPECT_EQ(now_body["current_epoch"], 1);
    auto old_history = pc->Get((Base() + "/access-history?epoch=0").c_str());
    ASSERT_TRUE(old_history);
    ASSERT_EQ(old_history->status, 200) << old_history->body;
    const json old_body = json::parse(old_history->body);
    EXPECT_EQ(old_body["epoch"], 0);
    bool first_write = false;
    for (const auto& item : old_body["history"]) {
      first_write = first_write || (item["action"] == "segment.write" && item["path"] == kBp);
    }
    EXPECT_TRUE(first_write) << old_history->body;
    ExpectError(pc->Get((Base() + "/access-history?epoch=2").c_str()), 400, "INVALID_ARGUMENT");
  }

  // Reported loudly: /readyz (public), /metrics.
  auto ready = httplib::Client("127.0.0.1", server_->port()).Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  json health = json::parse(ready->body)["ledger"];
  EXPECT_EQ(health["epoch"], 1);
  EXPECT_EQ(health["damaged"], true);
  EXPECT_EQ(health["unacknowledged"], 1);
  EXPECT_EQ(health["damage"][0]["first_bad_entry"], damaged);
  EXPECT_EQ(health["damage"][0]["acknowledged"], false);
  auto metrics_text = [&] {
    httplib::Client m("127.0.0.1", server_->port());
    auto res = m.Get("/metrics", {{"Authorization", "Bearer " + metrics_token_}});
    EXPECT_TRUE(res);
    return res ? res->body : std::string();
  };
  EXPECT_NE(metrics_text().find("\nmedvault_ledger_damaged 1\n"), std::string::npos);
  EXPECT_NE(metrics_text().find("\nmedvault_ledger_damage_unacknowledged 1\n"), std::string::npos);

  // The new epoch's checkpoints carry the epoch's origin and verify.
  const FetchedCheckpoint cp = GetCheckpoint();
  EXPECT_EQ(cp.cp.origin, "medvault.local/ledger/epoch/1");
  auto all = runtime_->ledger->VerifyAll(log_key);
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->ok) << (all->problems.empty() ? "" : all->problems[0]);

  // A privacy officer accepts it; sad paths first.
  auto& l = *runtime_->ledger;
  EXPECT_EQ(l.AcknowledgeDamage(1, officer, "too short").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(l.AcknowledgeDamage(7, officer, "Checked against the backup").code(),
            StatusCode::kNotFound);
  ASSERT_TRUE(l.AcknowledgeDamage(1, officer, "Checked against the backup").ok());
  EXPECT_EQ(l.AcknowledgeDamage(1, officer, "Checked against the backup").code(),
            StatusCode::kFailedPrecondition);
  auto ack = l.GetEntry(l.Size() - 1);
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->entry.action, ledger::kActionLedgerDamageAcknowledged);
  EXPECT_EQ(ack->entry.actor, officer);
  EXPECT_EQ(ack->entry.details.at("epoch"), "1");
  EXPECT_EQ(ack->entry.details.at("reason_sha256"),
            ToHex(crypto::Sha256(AsBytes(std::string("Checked against the backup")))));
  auto epochs = l.Epochs();
  ASSERT_TRUE(epochs.ok());
  ASSERT_EQ(epochs->size(), 1u);
  EXPECT_EQ((*epochs)[0].acknowledged_by, officer);
  EXPECT_EQ((*epochs)[0].acknowledgement, "Checked against the backup");
  ready = httplib::Client("127.0.0.1", server_->port()).Get("/readyz");
  ASSERT_TRUE(ready);
  health = json::parse(ready->body)["ledger"];
  EXPECT_EQ(health["damaged"], true) << "never hidden";
  EXPECT_EQ(health["unacknowledged"], 0);
  EXPECT_NE(metrics_text().find("\nmedvault_ledger_damaged 1\n"), std::string::npos);
  EXPECT_NE(metrics_text().find("\nmedvault_ledger_damage_unacknowledged 0\n"), std::string::npos);
  // Auditors see who accepted it and why; a clinician may not.
  ExpectError(Get("/api/v1/ledger/status"), 403, "PERMISSION_DENIED");
  SignInAuditor();
  auto status = auditor_client_->Get("/api/v1/ledger/status");
  ASSERT_TRUE(status);
  ASSERT_EQ(status->status, 200) << status->body;
  const json st = json::parse(status->body);
  EXPECT_EQ(st["epoch"], 1);
  EXPECT_EQ(st["origin"], "medvault.local/ledger/epoch/1");
  EXPECT_EQ(st["damage"][0]["acknowledged_by"], officer);
  EXPECT_EQ(st["damage"][0]["acknowledgement"], "Checked against the backup");
  EXPECT_FALSE(json::parse(ready->body)["ledger"]["damage"][0].contains("acknowledged_by"))
      << "not on the public /readyz";
  CloseExtraClients();
  StopServer();

  // Offline: the archived epoch shows the damage, the current one verifies
  // fully; a restart stays in epoch 1.
  auto archived = ledger::SqliteLedger::VerifyArchivedEpochs(db, log_key);
  ASSERT_TRUE(archived.ok()) << archived.status().ToString();
  ASSERT_EQ(archived->size(), 1u);
  EXPECT_EQ((*archived)[0].first, 0u);
  EXPECT_FALSE((*archived)[0].second.ok);
  EXPECT_EQ((*archived)[0].second.first_bad_entry, damaged);
  auto current = ledger::SqliteLedger::VerifyDatabase(db, log_key);
  ASSERT_TRUE(current.ok());
  EXPECT_TRUE(current->ok) << (current->problems.empty() ? "" : current->problems[0]);
  EXPECT_GE(current->checkpoints_verified, 1u);
  auto rt = app::OpenRuntime(RuntimeConfig());
  ASSERT_TRUE(rt.ok()) << rt.status().ToString();
  EXPECT_EQ((*rt)->ledger->Epoch(), 1u);
}

// Sharing changes are recorded with the change itself (same transaction):
// who granted what, on which subtree, in which request.
TEST_F(HttpLedgerTest, ConsentChangesAreRecordedWithTheirAuthor) {
  const std::string id = CreatePatient();
  auto patient = MakeAccount("pat.consent", {"patient"}, id);
  auto pc = ClientWith(SignIn(patient));
  auto grant = pc->Post((Base(id) + "/consents").c_str(),
                        json{{"effect", "grant"},
                             {"path_prefix", "internal-medicine/cardiology"},
                             {"grantee_kind", "role"},
                             {"grantee", "researcher"}}
                            .dump(),
                        "application/json");
  ASSERT_TRUE(grant);
  ASSERT_EQ(grant->status, 201) << grant->body;
  const std::string request_id = grant->get_header_value("X-Request-Id");
  const std::string consent_id = json::parse(grant->body)["consent_id"];
  auto revoke = pc->Delete((Base(id) + "/consents/" + consent_id).c_str());
  ASSERT_TRUE(revoke);
  ASSERT_EQ(revoke->status, 200);
  pc.reset();
  int grants = 0;
  int revokes = 0;
  for (const auto& e : AllEntries()) {
    if (e["action"] == "consent.grant") {
      ++grants;
      EXPECT_EQ(e["actor"], patient.account_id);
      EXPECT_EQ(e["request_id"], request_id);
      EXPECT_EQ(e["resource"]["path"], "internal-medicine/cardiology");
      EXPECT_EQ(e["patient_ref"], Ref(id));
      EXPECT_EQ(e["details"]["entry_id"], consent_id);
    }
    if (e["action"] == "consent.revoke") {
      ++revokes;
      EXPECT_EQ(e["actor"], patient.account_id);
    }
  }
  EXPECT_EQ(grants, 1);
  EXPECT_EQ(revokes, 1);
}

// Sign-ins and account administration are recorded; a failed sign-in is
// counted without naming the username tried.
TEST_F(HttpLedgerTest, SignInsAndAccountChangesAreRecorded) {
  auto admin = MakeAccount("admin.ledger", {"institution-admin"});
  auto ac = ClientWith(SignIn(admin));
  auto created = ac->Post("/api/v1/accounts",
                          json{{"username", "nurse.ledger"},
                               {"display_name", "Nurse Ledger"},
                               {"password", "Another-Long-Passphrase-7"},
                               {"roles", {"nurse"}},
                               {"institution_id", institution_id_}}
                              .dump(),
                          "application/json");
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  const std::string new_id = json::parse(created->body)["account_id"];
  ac.reset();
  httplib::Client anon("127.0.0.1", server_->port());
  auto failed =
      anon.Post("/api/v1/auth/login",
                json{{"username", "someone.secret"}, {"password", "Wrong-Password-123"}}.dump(),
                "application/json");
  ASSERT_TRUE(failed);
  ASSERT_EQ(failed->status, 401);
  std::string raw;
  const json entries = AllEntries(&raw);
  EXPECT_EQ(raw.find("someone.secret"), std::string::npos) << "usernames never enter the ledger";
  bool saw_create = false;
  bool saw_admin_login = false;
  bool saw_failed_login = false;
  for (const auto& e : entries) {
    if (e["action"] == "account.create" && e["actor"] == admin.account_id) {
      saw_create = true;
      EXPECT_EQ(e["details"].value("subject", ""), new_id);
      EXPECT_EQ(e["details"].value("roles", ""), "nurse");
    }
    if (e["action"] == "account.create" && e["details"].value("subject", "") == admin.account_id) {
      // Made by the test fixture through the service, outside any request
      // (no enforcement scope): named as the system, never as an account.
      EXPECT_EQ(e["actor"], "system");
    }
    if (e["action"] == "auth.login" && e["effect"] == "done" && e["actor"] == admin.account_id) {
      saw_admin_login = true;
    }
    if (e["action"] == "auth.login" && e["effect"] == "deny") {
      saw_failed_login = true;
      EXPECT_EQ(e["actor"], "anonymous");
      EXPECT_EQ(e["reasons"][0], "invalid-credentials");
    }
  }
  EXPECT_TRUE(saw_create);
  EXPECT_TRUE(saw_admin_login);
  EXPECT_TRUE(saw_failed_login);
}

}  // namespace
}  // namespace medvault
