// The ledger never holds a patient id in clear (issue 13): every kind of
// entry medvault writes is produced through the real services and the real
// HTTP server, and every stored entry's bytes are scanned for the patients'
// ids in every encoding we know (hex in any case, UUID form, standard and
// URL-safe base64). The set of actions seen must equal the declared set
// (ledger::kKnownActions), so a new kind of entry that this test does not
// produce fails it.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "integrity/integrity.h"
#include "ledger/ledger.h"
#include "server_fixture.h"

namespace medvault {
namespace {

using nlohmann::json;
using testing::ServerFixture;

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return s;
}

// Every stored entry, read with raw SQL (as an outside reader would).
std::vector<std::string> StoredEntries(const std::filesystem::path& db_file,
                                       const std::string& table) {
  std::vector<std::string> out;
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db_file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, ("SELECT entry FROM " + table + " ORDER BY seq").c_str(), -1, &s,
                               nullptr),
            SQLITE_OK);
  while (sqlite3_step(s) == SQLITE_ROW) {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s, 0));
    out.emplace_back(p, p + sqlite3_column_bytes(s, 0));
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

// Where an encoding of `patient_id` occurs in `text` ("" when none). Computed
// here independently of ledger::PatientIdForms.
std::string FindPatientId(const std::string& text, const std::string& patient_id) {
  const std::string folded = Lower(text);
  const std::string hex = Lower(patient_id);
  const std::string uuid = hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) +
                           "-" + hex.substr(16, 4) + "-" + hex.substr(20);
  for (const std::string& form : {hex, uuid}) {
    if (folded.find(form) != std::string::npos) {
      return "hex form " + form;
    }
  }
  auto raw = FromHex(hex);
  EXPECT_TRUE(raw.ok());
  for (const std::string& b64 : {ToBase64(*raw), ToBase64Url(*raw)}) {
    if (text.find(b64.substr(0, 22)) != std::string::npos) {
      return "base64 form " + b64;
    }
  }
  // Format version 2 stores lower-case hex strings as their bytes.
  if (text.find(std::string(AsString(*raw))) != std::string::npos) {
    return "packed hex form";
  }
  return "";
}

class LedgerPrivacyTest : public ServerFixture {
 protected:
  std::string Base(const std::string& pid) const { return "/api/v1/patients/" + pid; }
};

TEST_F(LedgerPrivacyTest, NoEntryOfAnyKindHoldsAPatientIdInClear) {
  auto& access = *runtime_->access;
  auto& accounts = *runtime_->accounts;

  // Patients (key.patient-root-created, relationship.start, decisions).
  const std::string pid = CreatePatient("Privacy", "MRN-P1");
  const std::string pid2 = CreatePatient("Erased", "MRN-P2");
  ASSERT_EQ(pid.size(), 32u);
  ASSERT_EQ(pid2.size(), 32u);

  // Record writes and reads, an import and an export.
  auto w = Put(Base(pid) + "/segments/physical-signs/blood-pressure",
               json{{"data", Bp(120, 80)}}.dump());
  ASSERT_TRUE(w);
  ASSERT_EQ(w->status, 201) << w->body;
  auto r = Get(Base(pid) + "/segments/physical-signs/blood-pressure");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  {
    std::ifstream in(std::string(MEDVAULT_TESTDATA_DIR) +
                     "/interop/ccda/Documents_CCD_CCD_1_CCD.xml");
    const std::string ccda((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_FALSE(ccda.empty());
    auto imported = Post(Base(pid) + "/documents", ccda, "application/xml");
    ASSERT_TRUE(imported);
    ASSERT_EQ(imported->status, 201) << imported->body;
    auto exported = Get(Base(pid) + "/export?format=fhir");
    ASSERT_TRUE(exported);
    ASSERT_EQ(exported->status, 200);
  }
  // A subtree key rotation (key.subtree-rotated); the record stays readable.
  {
    // No route rotates yet: the console does, as its own act (src/enforce).
    enforce::Scope console(runtime_->enforce_deps(), enforce::ConsoleContext("rotate-key"));
    auto rotated =
        runtime_->records->RotateSubtreeKey(pid, "physical-signs", clinician_.account_id);
    ASSERT_TRUE(rotated.ok()) << rotated.status().ToString();
    EXPECT_GE(rotated->objects_rewrapped, 1u);
    auto again = Get(Base(pid) + "/segments/physical-signs/blood-pressure");
    ASSERT_TRUE(again);
    ASSERT_EQ(again->status, 200) << again->body;
  }
  // A path that spells the patient id: the write is refused (its entry would
  // name the patient in clear), the decision is recorded with the id
  // redacted.
  for (const std::string& path : {"health-status/" + pid, "health-status/" + Lower(pid) + "-x"}) {
    auto spelled = Put(Base(pid) + "/segments/" + path, json{{"text", "x"}}.dump());
    ASSERT_TRUE(spelled);
    EXPECT_EQ(spelled->status, 400) << spelled->body;
    EXPECT_EQ(spelled->body.find(pid), std::string::npos) << "the error names no id";
  }

  // Accounts (institution.create and account.create came with the fixture).
  auto dept = accounts.CreateDepartment(institution_id_, "Cardiology");
  ASSERT_TRUE(dept.ok()) << dept.status().ToString();
  TestAccount doc2 = MakeAccount("dr.two", {"doctor"});
  TestAccount er = MakeAccount("dr.er", {"doctor"});
  TestAccount patient = MakeAccount("pat.privacy", {"patient"}, pid);
  TestAccount proxy = MakeAccount("proxy.privacy", {"family-proxy"});
  ASSERT_TRUE(accounts.SetRoles(doc2.account_id, {"doctor", "nurse"}).ok());
  ASSERT_TRUE(accounts.SetDisabled(doc2.account_id, true).ok());
  ASSERT_TRUE(accounts.SetDisabled(doc2.account_id, false).ok());
  ASSERT_TRUE(accounts.ResetPassword(doc2.account_id, "Another-Correct-Horse-7").ok());
  ASSERT_TRUE(
      accounts
          .ChangePassword(doc2.account_id, "Another-Correct-Horse-7", "Yet-Another-Correct-Horse-8")
          .ok());
  auto totp = accounts.ResetTotp(doc2.account_id);
  ASSERT_TRUE(totp.ok()) << totp.status().ToString();
  // Account recovery: opened and stopped on the patient's own account (its
  // entries name the patient by pseudonym), opened and completed by two
  // people on a staff account.
  ASSERT_TRUE(
      accounts.RequestRecovery(patient.account_id, er.account_id, "", "lost her phone").ok());
  ASSERT_TRUE(accounts.CancelRecovery(patient.account_id, patient.account_id).ok());
  TestAccount recovered = MakeAccount("dr.recovered", {"doctor"});
  ASSERT_TRUE(
      accounts.RequestRecovery(recovered.account_id, doc2.account_id, "", "forgot the password")
          .ok());
  ASSERT_TRUE(accounts.ApproveRecovery(recovered.account_id, clinician_.account_id).ok());
  // Administrative refusals that name an account: a bound admin may not
  // manage a peer admin (read, revoke, recovery).
  {
    TestAccount admin_a = MakeAccount("admin.pa", {"institution-admin"});
    TestAccount admin_b = MakeAccount("admin.pb", {"institution-admin"});
    auto admin = ClientWith(SignIn(admin_a));
    const std::string acct = "/api/v1/accounts/" + admin_b.account_id;
    std::vector<httplib::Result> results;
    results.push_back(admin->Get(acct.c_str()));
    results.push_back(admin->Get((acct + "/recovery").c_str()));
    results.push_back(admin->Post((acct + "/revoke-sessions").c_str(), "{}", "application/json"));
    for (const auto& res : results) {
      ASSERT_TRUE(res);
      EXPECT_EQ(res->status, 403) << res->body;
    }
    admin.reset();
  }

  // Sign-ins (success and failure) and a sign-out.
  const std::string patient_token = SignIn(patient);
  ASSERT_FALSE(patient_token.empty());
  {
    httplib::Client c("127.0.0.1", server_->port());
    auto bad = c.Post("/api/v1/auth/login",
                      json{{"username", patient.username}, {"password", "wrong-password-1"}}.dump(),
                      "application/json");
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 401);
    auto patient_client = ClientWith(patient_token);
    auto history = patient_client->Get((Base(pid) + "/access-history").c_str());
    ASSERT_TRUE(history);
    EXPECT_EQ(history->status, 200) << history->body;
    auto out = patient_client->Post("/api/v1/auth/logout", "{}", "application/json");
    ASSERT_TRUE(out);
    EXPECT_EQ(out->status, 200) << out->body;
  }

  // Sharing: consents, relationships, settings, delegations, proxies.
  access::ConsentRequest grant;
  grant.grantee = doc2.account_id;
  grant.path_prefix = "physical-signs";
  auto c1 = access.AddConsent(pid, grant);
  ASSERT_TRUE(c1.ok()) << c1.status().ToString();
  access::ConsentRequest deny = grant;
  deny.deny = true;
  deny.path_prefix = "psychiatry";
  auto c2 = access.AddConsent(pid, deny);
  ASSERT_TRUE(c2.ok()) << c2.status().ToString();
  ASSERT_TRUE(access.RevokeConsent(pid, c1->consent_id).ok());
  auto rel = access.StartRelationship(pid, doc2.account_id);
  ASSERT_TRUE(rel.ok()) << rel.status().ToString();
  ASSERT_TRUE(access.EndRelationship(pid, rel->relationship_id).ok());
  ASSERT_TRUE(access.SetSettings(pid, true, {"psychiatry"}).ok());
  auto del = access.Delegate(pid, clinician_.account_id, doc2.account_id, 0);
  ASSERT_TRUE(del.ok()) << del.status().ToString();
  ASSERT_TRUE(access.RevokeDelegation(pid, del->delegation_id).ok());
  access::ProxyRequest pr;
  pr.proxy_account_id = proxy.account_id;
  pr.path_prefixes = {"physical-signs"};
  pr.actions = {policy::Action::kRead};
  auto px = access.AddProxy(pid, pr);
  ASSERT_TRUE(px.ok()) << px.status().ToString();
  ASSERT_TRUE(access.RevokeProxy(pid, px->proxy_id).ok());

  // Break-glass over HTTP: the declaration's decision and its grant.
  {
    auto er_client = ClientWith(SignIn(er));
    auto declared = er_client->Post(
        (Base(pid) + "/break-glass").c_str(),
        json{{"reason", "Unconscious on arrival, allergies unknown"}}.dump(), "application/json");
    ASSERT_TRUE(declared);
    ASSERT_EQ(declared->status, 201) << declared->body;
  }

  // A scrub finding on one of the patient's objects (object keys start with
  // the patient id).
  {
    bool damaged = false;
    for (const auto& f :
         std::filesystem::recursive_directory_iterator(app::DataDirLayout(data_).objects_root)) {
      if (f.is_regular_file() && f.path().string().find(pid) != std::string::npos) {
        std::ofstream(f.path(), std::ios::binary | std::ios::app) << "x";
        damaged = true;
        break;
      }
    }
    ASSERT_TRUE(damaged);
    integrity::ScrubOptions so;
    app::Runtime& rt = *runtime_;
    so.on_finding = [&rt](const integrity::Finding& f) {
      MV_ASSIGN_OR_RETURN(ledger::Entry e, enforce::ScrubFindingEntry(f, rt.patient_ref_key));
      return rt.ledger->Append({std::move(e)});
    };
    auto report = integrity::Scrub(*rt.metadata, *rt.objects, rt.records.get(), so);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    ASSERT_FALSE(report->findings.empty());
  }

  // Erasure of the second patient: the key destroyed, the sharing forgotten.
  ASSERT_TRUE(access.SetSettings(pid2, false, {}).ok());
  {
    enforce::Scope console(runtime_->enforce_deps(), enforce::ConsoleContext("test"));
    Status erased = runtime_->records->ErasePatient(pid2, clinician_.account_id);
    ASSERT_TRUE(erased.ok()) << erased.ToString();
  }
  ASSERT_TRUE(access.ForgetPatient(pid2).ok());

  // A damaged row: the next start continues in a new epoch (ledger.epoch),
  // a privacy officer accepts it (ledger.damage-acknowledged).
  const std::string officer = MakeAccount("po.privacy", {"privacy-officer"}).account_id;
  const std::string ref2_live = ledger::PatientRef(runtime_->patient_ref_key, pid2);
  const std::filesystem::path db = app::DataDirLayout(data_).metadata_db;
  StopServer();
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(
        sqlite3_exec(
            raw,
            "UPDATE ledger_entries SET entry = substr(entry, 1, length(entry) - 1) WHERE seq = 5",
            nullptr, nullptr, nullptr),
        SQLITE_OK);
    sqlite3_close(raw);
  }
  StartServer();
  ASSERT_EQ(runtime_->ledger->Epoch(), 1u);
  ASSERT_TRUE(runtime_->ledger->AcknowledgeDamage(1, officer, "Checked against the backup").ok());
  StopServer();

  // Every stored entry (both epochs): no patient id in any encoding; every
  // action declared and every declared action produced.
  std::vector<std::string> stored = StoredEntries(db, "ledger_entries");
  const std::vector<std::string> archived = StoredEntries(db, "ledger_archive_entries");
  ASSERT_GT(archived.size(), 50u);
  stored.insert(stored.end(), archived.begin(), archived.end());
  std::set<std::string> seen;
  size_t undecodable = 0;
  for (size_t i = 0; i < stored.size(); ++i) {
    for (const std::string& id : {pid, pid2}) {
      const std::string where = FindPatientId(stored[i], id);
      EXPECT_EQ(where, "") << "entry " << i << " holds a patient id (" << where
                           << "): " << stored[i];
    }
    auto e = ledger::Decode(AsBytes(stored[i]));
    if (!e.ok()) {
      ++undecodable;  // the damaged row
      continue;
    }
    // Every string in clear (format version 2 packs words, hex and paths).
    const std::string spelled(AsString(ledger::EncodeJsonV1(*e)));
    for (const std::string& id : {pid, pid2}) {
      const std::string where = FindPatientId(spelled, id);
      EXPECT_EQ(where, "") << "entry " << i << " holds a patient id (" << where << "): " << spelled;
    }
    seen.insert(e->action);
  }
  EXPECT_EQ(undecodable, 1u);
  std::set<std::string> declared(ledger::kKnownActions.begin(), ledger::kKnownActions.end());
  for (const std::string& a : declared) {
    EXPECT_TRUE(seen.count(a)) << "no entry of kind " << a << " was produced: drive it here";
  }
  for (const std::string& a : seen) {
    EXPECT_TRUE(declared.count(a)) << "kind " << a << " is not in ledger::kKnownActions";
  }

  // The entries whose id was the patient's are still the patient's (by
  // pseudonym): settings and forgetting.
  const std::string& ref2 = ref2_live;
  std::set<std::string> pid2_actions;
  for (const std::string& bytes : archived) {
    auto e = ledger::Decode(AsBytes(bytes));
    if (e.ok() && e->patient_ref == ref2) {
      pid2_actions.insert(e->action);
    }
  }
  EXPECT_TRUE(pid2_actions.count(std::string(ledger::kActionSettingsChange)));
  EXPECT_TRUE(pid2_actions.count(std::string(ledger::kActionSharingForget)));
  EXPECT_TRUE(pid2_actions.count(std::string(ledger::kActionPatientRootDestroyed)));
}

}  // namespace
}  // namespace medvault
