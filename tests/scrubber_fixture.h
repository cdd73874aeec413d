// The scrubber tests' fixture: real stores and a record service in a temp dir.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/ids.h"
#include "crypto/crypto.h"
#include "integrity/integrity.h"
#include "record/record.h"
#include "store/store.h"
#include "test_util.h"

namespace medvault::integrity::testing_support {

namespace fs = std::filesystem;
using medvault::testing::ReadFileBytes;
using medvault::testing::TempDir;
using medvault::testing::WriteFileBytes;
using record::ContentKind;
using store::AuditEntries;

// The ledger's segment writes as the scrubber sees them, fed by the metadata
// store's audit hook (so an entry exists exactly when its write reached the
// store's transaction). `hide_from` makes the first read from seq 0 stop
// early, as if those writes had committed after it.
class FakeWriteLog final : public WriteLog, public store::AuditSink {
 public:
  std::string PatientRef(std::string_view patient_id) const override {
    return "ref-" + std::string(patient_id);
  }
  Result<uint64_t> ForEachWrite(uint64_t from_seq,
                                const std::function<Status(const LoggedWrite&)>& fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++reads;
    uint64_t end = writes.size();
    if (from_seq == 0 && hide_from.has_value()) {
      end = std::min<uint64_t>(end, *hide_from);
    }
    for (uint64_t i = from_seq; i < end; ++i) {
      MV_RETURN_IF_ERROR(fn(writes[i]));
    }
    return end;
  }
  // The audit sink's side: entries are "patient\npath\nversion\nsha-hex".
  Status AppendEncodedInTransaction(store::Transaction&, AuditEntries entries) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Bytes& e : entries) {
      std::vector<std::string> parts;
      std::string cur;
      for (uint8_t c : e) {
        if (c == '\n') {
          parts.push_back(cur);
          cur.clear();
        } else {
          cur.push_back(static_cast<char>(c));
        }
      }
      parts.push_back(cur);
      if (parts.size() != 4 || parts[1].empty()) {
        continue;  // not a segment write
      }
      LoggedWrite w;
      w.seq = writes.size();
      w.patient_ref = PatientRef(parts[0]);
      w.path = parts[1];
      w.version = std::stoull(parts[2]);
      w.content_sha256 = parts[3];
      writes.push_back(std::move(w));
    }
    return Status::Ok();
  }

  std::vector<LoggedWrite> writes;
  std::optional<uint64_t> hide_from;
  int reads = 0;

 private:
  std::mutex mu_;
};

// One version written by the fixture, with what it should read back as.
struct Written {
  std::string patient_id;
  std::string path;
  uint64_t version = 0;
  std::string object_key;
  std::string content;
};

class ScrubberTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::InitCrypto().ok());
    ASSERT_TRUE(crypto::CreateKeyFile(dir_.path() / "platform.kek").ok());
    auto keys = crypto::OpenFileKeyProvider(dir_.path() / "platform.kek");
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    keys_ = std::move(*keys);
    store::SqliteOptions sqlite;
    sqlite.audit_sink = &write_log_;
    auto md = store::OpenSqliteMetadataStore(dir_.path() / "metadata.db", sqlite);
    ASSERT_TRUE(md.ok()) << md.status().ToString();
    metadata_ = std::move(*md);
    auto obj = store::OpenFileObjectStore(dir_.path());
    ASSERT_TRUE(obj.ok()) << obj.status().ToString();
    objects_ = std::move(*obj);
    // Most tests tamper with object files: every version is an object
    // unless a test asks for the default (UseInlineStorage).
    OpenService(0);
  }

  void OpenService(uint64_t inline_max) {
    record::RecordServiceOptions options;
    options.inline_storage_max_bytes = inline_max;
    options.audit = [](const record::RecordEvent& e) -> Result<Bytes> {
      return ToBytes(std::string(e.patient_id) + "\n" + std::string(e.path) + "\n" +
                     std::to_string(e.version) + "\n" + e.content_sha256_hex);
    };
    service_.reset();
    auto svc = record::CreateRecordService(keys_.get(), metadata_.get(), objects_.get(), options);
    ASSERT_TRUE(svc.ok()) << svc.status().ToString();
    service_ = std::move(*svc);
  }

  // Small versions in their metadata rows, as in production.
  void UseInlineStorage() { OpenService(record::RecordServiceOptions{}.inline_storage_max_bytes); }

  std::string NewPatient(const std::string& family) {
    record::Demographics d{"Ada", family, "1956-03-14", "female", ""};
    auto p = service_->CreatePatient(d, "tester");
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? p->patient_id : "";
  }

  Written WriteText(const std::string& patient, const std::string& path, const std::string& text) {
    record::SegmentWrite w;
    w.kind = ContentKind::kText;
    w.content = ToBytes(text);
    auto info = service_->WriteSegment(patient, path, w, "tester");
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    Written out;
    out.patient_id = patient;
    out.path = path;
    out.content = text;
    if (info.ok()) {
      out.version = info->version;
      auto rec = metadata_->GetSegmentVersion(patient, path, info->version);
      EXPECT_TRUE(rec.ok());
      if (rec.ok()) {
        out.object_key = rec->object_key;
      }
    }
    written_.push_back(out);
    return out;
  }

  // Two patients, three paths, five versions.
  void WriteSample() {
    alice_ = NewPatient("Fictive");
    bob_ = NewPatient("Imaginary");
    a1_ = WriteText(alice_, "life-record/diet", "diet note version one, alice");
    a2_ = WriteText(alice_, "life-record/diet", "diet note version two, alice");
    a3_ = WriteText(alice_, "life-record/diet", "diet note version three, alice");
    a_ecg_ = WriteText(alice_, "internal-medicine/cardiology/ecg", "ecg narrative of alice");
    b1_ = WriteText(bob_, "patient-narrative/pain", "pain narrative of bob, first");
  }

  fs::path ObjectFile(const std::string& key) const { return dir_.path() / "objects" / key; }

  Result<ScrubReport> RunScrub(bool deep, std::function<Status(const Finding&)> on_finding = {}) {
    ScrubOptions options;
    options.deep = deep;
    options.on_finding = std::move(on_finding);
    options.write_log = scrub_log_;
    options.now_ms = now_ms_;
    return Scrub(*metadata_, *objects_, service_.get(), options);
  }

  ScrubReport MustScrub(bool deep) {
    auto r = RunScrub(deep);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) {
      return {};
    }
    EXPECT_TRUE(r->completed);
    EXPECT_EQ(r->error, "");
    EXPECT_EQ(r->deep, deep);
    EXPECT_LE(r->started_at_ms, r->finished_at_ms);
    return std::move(r).value();
  }

  // Every version not in `broken` still reads back, decrypted, as written:
  // the server keeps serving everything that is intact. Those in `broken`
  // fail with DataLoss.
  void ExpectServing(const std::set<std::string>& broken_keys) {
    for (const Written& w : written_) {
      auto got = service_->ReadSegment(w.patient_id, w.path, w.version);
      if (broken_keys.count(w.object_key) != 0) {
        EXPECT_FALSE(got.ok()) << w.object_key;
        if (!got.ok()) {
          EXPECT_TRUE(got.status().code() == StatusCode::kDataLoss ||
                      got.status().code() == StatusCode::kNotFound)
              << got.status().ToString();
        }
        continue;
      }
      ASSERT_TRUE(got.ok()) << w.object_key << ": " << got.status().ToString();
      EXPECT_EQ(AsString(got->content), w.content);
    }
  }

  static void ExpectFinding(const Finding& f, std::string_view kind, const Written& w) {
    EXPECT_EQ(f.kind, kind);
    EXPECT_EQ(f.patient_id, w.patient_id);
    EXPECT_EQ(f.path, w.path);
    EXPECT_EQ(f.version, w.version);
    EXPECT_EQ(f.object_key, w.object_key);
    EXPECT_FALSE(f.detail.empty());
  }

  // Text the tests wrote must never show up in a finding.
  void ExpectNoHealthData(const ScrubReport& report) {
    const std::string json = ReportJson(report);
    for (const Written& w : written_) {
      EXPECT_EQ(json.find(w.content), std::string::npos);
    }
    EXPECT_EQ(json.find("Fictive"), std::string::npos);
    EXPECT_EQ(json.find("Imaginary"), std::string::npos);
  }

  void ExecSql(const std::string& sql, const Bytes& blob, int64_t size, const Written& w) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_.path() / "metadata.db").c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_bind_blob(st, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, size);
    sqlite3_bind_text(st, 3, w.patient_id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, w.path.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, static_cast<int64_t>(w.version));
    EXPECT_EQ(sqlite3_step(st), SQLITE_DONE) << sqlite3_errmsg(db);
    EXPECT_EQ(sqlite3_changes(db), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
  }

  // Runs a statement on the metadata database, as an attacker would.
  void Sql(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_.path() / "metadata.db").c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << (err != nullptr ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }

  // Deletes a version's row and its object: the record rolled back.
  void DeleteVersion(const Written& w) {
    Sql("DELETE FROM segment_versions WHERE patient_id = '" + w.patient_id + "' AND path = '" +
        w.path + "' AND version = " + std::to_string(w.version));
    ASSERT_TRUE(fs::remove(ObjectFile(w.object_key)));
  }

  // Sets a version's recorded hash and size, as an attacker with database
  // access would.
  void ForgeMetadata(const Written& w, const Bytes& sha256, uint64_t size) {
    ExecSql(
        "UPDATE segment_versions SET content_sha256 = ?1, stored_size = ?2 "
        "WHERE patient_id = ?3 AND path = ?4 AND version = ?5",
        sha256, static_cast<int64_t>(size), w);
  }

  FakeWriteLog write_log_;           // declared before the stores that feed it
  WriteLog* scrub_log_ = nullptr;    // what RunScrub compares with (off by default)
  std::function<int64_t()> now_ms_;  // RunScrub's clock; empty: the system's
  TempDir dir_;
  std::unique_ptr<crypto::KeyProvider> keys_;
  std::unique_ptr<store::MetadataStore> metadata_;
  std::unique_ptr<store::ObjectStore> objects_;
  std::unique_ptr<record::RecordService> service_;
  std::vector<Written> written_;
  std::string alice_, bob_;
  Written a1_, a2_, a3_, a_ecg_, b1_;
};

uint64_t StoredBytes(const fs::path& objects_dir) {
  uint64_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(objects_dir)) {
    if (e.is_regular_file()) {
      total += e.file_size();
    }
  }
  return total;
}

}  // namespace medvault::integrity::testing_support
