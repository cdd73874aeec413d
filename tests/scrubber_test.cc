// Integrity scrubber: real stores in a temp dir, real encrypted versions
// written through the record service, tampering done on the files and the
// SQLite database directly, as an attacker or a failing disk would.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
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

namespace medvault::integrity {
namespace {

namespace fs = std::filesystem;
using medvault::testing::ReadFileBytes;
using medvault::testing::TempDir;
using medvault::testing::WriteFileBytes;
using record::ContentKind;

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
    auto md = store::OpenSqliteMetadataStore(dir_.path() / "metadata.db");
    ASSERT_TRUE(md.ok()) << md.status().ToString();
    metadata_ = std::move(*md);
    auto obj = store::OpenFileObjectStore(dir_.path());
    ASSERT_TRUE(obj.ok()) << obj.status().ToString();
    objects_ = std::move(*obj);
    auto svc = record::CreateRecordService(keys_.get(), metadata_.get(), objects_.get(), {});
    ASSERT_TRUE(svc.ok()) << svc.status().ToString();
    service_ = std::move(*svc);
  }

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

  // Sets a version's recorded hash and size, as an attacker with database
  // access would.
  void ForgeMetadata(const Written& w, const Bytes& sha256, uint64_t size) {
    ExecSql(
        "UPDATE segment_versions SET content_sha256 = ?1, stored_size = ?2 "
        "WHERE patient_id = ?3 AND path = ?4 AND version = ?5",
        sha256, static_cast<int64_t>(size), w);
  }

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

TEST_F(ScrubberTest, IntactStoreHasNoFindingsInEitherMode) {
  WriteSample();
  for (bool deep : {false, true}) {
    SCOPED_TRACE(deep ? "deep" : "fast");
    ScrubReport r = MustScrub(deep);
    EXPECT_TRUE(r.findings.empty()) << ReportJson(r);
    EXPECT_EQ(r.versions_checked, 5u);
    EXPECT_EQ(r.versions_skipped, 0u);
    EXPECT_EQ(r.objects_checked, 5u);
    EXPECT_EQ(r.bytes_checked, StoredBytes(dir_.path() / "objects"));
  }
  ExpectServing({});
}

TEST_F(ScrubberTest, EmptyStoreIsFine) {
  ScrubReport r = MustScrub(false);
  EXPECT_TRUE(r.findings.empty());
  EXPECT_EQ(r.versions_checked, 0u);
}

TEST_F(ScrubberTest, FlippedByteIsChanged) {
  WriteSample();
  std::string bytes = ReadFileBytes(ObjectFile(a2_.object_key));
  ASSERT_GT(bytes.size(), 100u);
  bytes[bytes.size() / 2] ^= 0x01;
  WriteFileBytes(ObjectFile(a2_.object_key), bytes);
  for (bool deep : {false, true}) {
    SCOPED_TRACE(deep ? "deep" : "fast");
    ScrubReport r = MustScrub(deep);
    ASSERT_EQ(r.findings.size(), 1u) << ReportJson(r);
    ExpectFinding(r.findings[0], kChanged, a2_);
    EXPECT_NE(r.findings[0].detail.find("hash mismatch"), std::string::npos);
    EXPECT_EQ(r.versions_checked, 5u);
    EXPECT_EQ(r.objects_checked, 5u);
    ExpectNoHealthData(r);
  }
  ExpectServing({a2_.object_key});
}

TEST_F(ScrubberTest, DeletedObjectIsMissing) {
  WriteSample();
  ASSERT_TRUE(fs::remove(ObjectFile(a_ecg_.object_key)));
  for (bool deep : {false, true}) {
    SCOPED_TRACE(deep ? "deep" : "fast");
    ScrubReport r = MustScrub(deep);
    ASSERT_EQ(r.findings.size(), 1u) << ReportJson(r);
    ExpectFinding(r.findings[0], kMissing, a_ecg_);
    EXPECT_EQ(r.objects_checked, 4u);
  }
  ExpectServing({a_ecg_.object_key});
}

TEST_F(ScrubberTest, SwappedObjectsAreBothReportedAndNameEachOther) {
  WriteSample();
  const std::string x = ReadFileBytes(ObjectFile(a_ecg_.object_key));
  const std::string y = ReadFileBytes(ObjectFile(b1_.object_key));
  WriteFileBytes(ObjectFile(a_ecg_.object_key), y);
  WriteFileBytes(ObjectFile(b1_.object_key), x);
  for (bool deep : {false, true}) {
    SCOPED_TRACE(deep ? "deep" : "fast");
    ScrubReport r = MustScrub(deep);
    ASSERT_EQ(r.findings.size(), 2u) << ReportJson(r);
    std::map<std::string, Finding> by_key;
    for (const Finding& f : r.findings) {
      by_key[f.object_key] = f;
    }
    ASSERT_EQ(by_key.count(a_ecg_.object_key), 1u);
    ASSERT_EQ(by_key.count(b1_.object_key), 1u);
    ExpectFinding(by_key[a_ecg_.object_key], kSwapped, a_ecg_);
    ExpectFinding(by_key[b1_.object_key], kSwapped, b1_);
    EXPECT_NE(by_key[a_ecg_.object_key].detail.find(b1_.object_key), std::string::npos);
    EXPECT_NE(by_key[b1_.object_key].detail.find(a_ecg_.object_key), std::string::npos);
    ExpectNoHealthData(r);
  }
  ExpectServing({a_ecg_.object_key, b1_.object_key});
}

TEST_F(ScrubberTest, OldVersionCopiedOverNewerIsRolledBack) {
  WriteSample();
  fs::copy_file(ObjectFile(a1_.object_key), ObjectFile(a2_.object_key),
                fs::copy_options::overwrite_existing);
  for (bool deep : {false, true}) {
    SCOPED_TRACE(deep ? "deep" : "fast");
    ScrubReport r = MustScrub(deep);
    ASSERT_EQ(r.findings.size(), 1u) << ReportJson(r);
    ExpectFinding(r.findings[0], kRolledBack, a2_);
    EXPECT_NE(r.findings[0].detail.find("version 1"), std::string::npos);
    EXPECT_NE(r.findings[0].detail.find(a1_.object_key), std::string::npos);
  }
  ExpectServing({a2_.object_key});
}

TEST_F(ScrubberTest, TruncatedObjectIsChanged) {
  WriteSample();
  const std::string bytes = ReadFileBytes(ObjectFile(b1_.object_key));
  fs::resize_file(ObjectFile(b1_.object_key), bytes.size() - 20);
  ScrubReport r = MustScrub(false);
  ASSERT_EQ(r.findings.size(), 1u) << ReportJson(r);
  ExpectFinding(r.findings[0], kChanged, b1_);
  EXPECT_NE(r.findings[0].detail.find(std::to_string(bytes.size() - 20) + " bytes"),
            std::string::npos)
      << r.findings[0].detail;
  // Emptied entirely.
  fs::resize_file(ObjectFile(b1_.object_key), 0);
  r = MustScrub(true);
  ASSERT_EQ(r.findings.size(), 1u) << ReportJson(r);
  ExpectFinding(r.findings[0], kChanged, b1_);
  ExpectServing({b1_.object_key});
}

TEST_F(ScrubberTest, SymlinkInPlaceOfAnObjectIsChanged) {
  WriteSample();
  // Points at another (intact) object: the store refuses to follow it.
  ASSERT_TRUE(fs::remove(ObjectFile(a3_.object_key)));
  fs::create_symlink(ObjectFile(a2_.object_key), ObjectFile(a3_.object_key));
  ScrubReport r = MustScrub(false);
  ASSERT_EQ(r.findings.size(), 1u) << ReportJson(r);
  ExpectFinding(r.findings[0], kChanged, a3_);
  EXPECT_NE(r.findings[0].detail.find("cannot be read"), std::string::npos);
  ExpectServing({a3_.object_key});
}

TEST_F(ScrubberTest, SizeEditedInMetadataOnlyIsChanged) {
  WriteSample();
  auto rec = metadata_->GetSegmentVersion(alice_, a3_.path, a3_.version);
  ASSERT_TRUE(rec.ok());
  ForgeMetadata(a3_, rec->content_sha256, rec->stored_size + 1);
  ScrubReport r = MustScrub(false);
  ASSERT_EQ(r.findings.size(), 1u) << ReportJson(r);
  ExpectFinding(r.findings[0], kChanged, a3_);
  EXPECT_NE(r.findings[0].detail.find("size"), std::string::npos);
}

TEST_F(ScrubberTest, UnreferencedObjectsAreOrphans) {
  WriteSample();
  // A crash between object write and metadata insert leaves this behind.
  const std::string key = alice_ + "/" + NewRandomId();
  ASSERT_TRUE(objects_->Put(key, AsBytes("ciphertext-like bytes")).ok());
  ASSERT_TRUE(objects_->Put("stray/thing", AsBytes("x")).ok());
  ScrubReport r = MustScrub(false);
  ASSERT_EQ(r.findings.size(), 2u) << ReportJson(r);
  std::map<std::string, Finding> by_key;
  for (const Finding& f : r.findings) {
    EXPECT_EQ(f.kind, kOrphan);
    EXPECT_EQ(f.path, "");
    EXPECT_EQ(f.version, 0u);
    by_key[f.object_key] = f;
  }
  ASSERT_EQ(by_key.count(key), 1u);
  EXPECT_EQ(by_key[key].patient_id, alice_);
  ASSERT_EQ(by_key.count("stray/thing"), 1u);
  EXPECT_EQ(by_key["stray/thing"].patient_id, "");
  EXPECT_EQ(r.objects_checked, 5u);
  ExpectServing({});
}

TEST_F(ScrubberTest, ConsistentMetadataAndObjectEditIsUndecryptableInDeepMode) {
  WriteSample();
  // Give a1 the ciphertext of a_ecg (same patient, another path) and edit
  // a1's row to match, so that hashes and sizes all agree.
  const std::string donor = ReadFileBytes(ObjectFile(a_ecg_.object_key));
  WriteFileBytes(ObjectFile(a1_.object_key), donor);
  ForgeMetadata(a1_, crypto::Sha256(AsBytes(donor)), donor.size());

  // Fast mode cannot decrypt, but two rows recording one hash is impossible
  // for unique ciphertexts: both are pointed out.
  ScrubReport fast = MustScrub(false);
  ASSERT_EQ(fast.findings.size(), 2u) << ReportJson(fast);
  std::set<std::string> keys;
  for (const Finding& f : fast.findings) {
    EXPECT_EQ(f.kind, kSwapped);
    keys.insert(f.object_key);
  }
  EXPECT_EQ(keys, (std::set<std::string>{a1_.object_key, a_ecg_.object_key}));

  // Deep mode tells which one is wrong.
  ScrubReport deep = MustScrub(true);
  ASSERT_EQ(deep.findings.size(), 1u) << ReportJson(deep);
  ExpectFinding(deep.findings[0], kUndecryptable, a1_);
  EXPECT_NE(deep.findings[0].detail.find(a_ecg_.object_key), std::string::npos);
  EXPECT_EQ(deep.objects_checked, 5u);
  ExpectNoHealthData(deep);
  ExpectServing({a1_.object_key});
}

TEST_F(ScrubberTest, MovedCiphertextWithForgedHashIsUndecryptable) {
  WriteSample();
  // Move bob's object into the place of alice's version 3 (another patient),
  // delete the original, and forge the hash: nothing is shared any more.
  const std::string moved = ReadFileBytes(ObjectFile(b1_.object_key));
  WriteFileBytes(ObjectFile(a3_.object_key), moved);
  ASSERT_TRUE(fs::remove(ObjectFile(b1_.object_key)));
  ForgeMetadata(a3_, crypto::Sha256(AsBytes(moved)), moved.size());

  // Fast mode: b1 is missing, and a3 now records b1's hash.
  ScrubReport fast = MustScrub(false);
  ASSERT_EQ(fast.findings.size(), 2u) << ReportJson(fast);
  std::map<std::string, Finding> fast_by_key;
  for (const Finding& f : fast.findings) {
    fast_by_key[f.object_key] = f;
  }
  ExpectFinding(fast_by_key[a3_.object_key], kSwapped, a3_);
  EXPECT_NE(fast_by_key[a3_.object_key].detail.find(b1_.object_key), std::string::npos);
  ExpectFinding(fast_by_key[b1_.object_key], kMissing, b1_);

  ScrubReport deep = MustScrub(true);
  ASSERT_EQ(deep.findings.size(), 2u) << ReportJson(deep);
  std::map<std::string, Finding> by_key;
  for (const Finding& f : deep.findings) {
    by_key[f.object_key] = f;
  }
  ExpectFinding(by_key[a3_.object_key], kUndecryptable, a3_);
  ExpectFinding(by_key[b1_.object_key], kMissing, b1_);
  ExpectServing({a3_.object_key, b1_.object_key});
}

TEST_F(ScrubberTest, ErasedPatientProducesNoFindings) {
  WriteSample();
  ASSERT_TRUE(service_->ErasePatient(alice_).ok());
  for (bool deep : {false, true}) {
    SCOPED_TRACE(deep ? "deep" : "fast");
    ScrubReport r = MustScrub(deep);
    EXPECT_TRUE(r.findings.empty()) << ReportJson(r);
    EXPECT_EQ(r.versions_checked, 1u);
    EXPECT_EQ(r.versions_skipped, 4u);
    EXPECT_EQ(r.objects_checked, 1u);
  }
  auto bob = service_->ReadSegment(bob_, b1_.path, 1);
  ASSERT_TRUE(bob.ok());
  EXPECT_EQ(AsString(bob->content), b1_.content);
}

TEST_F(ScrubberTest, ObjectLeftOverAfterErasureIsAnOrphan) {
  WriteSample();
  const std::string saved = ReadFileBytes(ObjectFile(a1_.object_key));
  ASSERT_TRUE(service_->ErasePatient(alice_).ok());
  ASSERT_FALSE(fs::exists(ObjectFile(a1_.object_key)));
  // As if the deletion had failed.
  ASSERT_TRUE(objects_->Put(a1_.object_key, AsBytes(saved)).ok());
  ScrubReport r = MustScrub(false);
  ASSERT_EQ(r.findings.size(), 1u) << ReportJson(r);
  EXPECT_EQ(r.findings[0].kind, kOrphan);
  EXPECT_EQ(r.findings[0].object_key, a1_.object_key);
  EXPECT_EQ(r.findings[0].patient_id, alice_);
  EXPECT_NE(r.findings[0].detail.find("erased"), std::string::npos);
}

TEST_F(ScrubberTest, OnFindingIsCalledOncePerFindingAsFound) {
  WriteSample();
  ASSERT_TRUE(fs::remove(ObjectFile(a1_.object_key)));
  fs::resize_file(ObjectFile(b1_.object_key), 10);
  ASSERT_TRUE(objects_->Put(bob_ + "/" + NewRandomId(), AsBytes("zz")).ok());
  std::vector<Finding> seen;
  auto r = RunScrub(false, [&seen](const Finding& f) {
    seen.push_back(f);
    return Status::Ok();
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->findings.size(), 3u) << ReportJson(*r);
  ASSERT_EQ(seen.size(), 3u);
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].kind, r->findings[i].kind);
    EXPECT_EQ(seen[i].object_key, r->findings[i].object_key);
  }
  // Versions come in patient order (random ids), orphans last.
  EXPECT_EQ((std::multiset<std::string>{seen[0].kind, seen[1].kind}),
            (std::multiset<std::string>{std::string(kMissing), std::string(kChanged)}));
  EXPECT_EQ(seen[2].kind, kOrphan);
}

TEST_F(ScrubberTest, OnFindingErrorStopsTheScrubWithThatError) {
  WriteSample();
  ASSERT_TRUE(fs::remove(ObjectFile(a1_.object_key)));
  ASSERT_TRUE(fs::remove(ObjectFile(a2_.object_key)));
  int calls = 0;
  auto r = RunScrub(false, [&calls](const Finding&) {
    ++calls;
    return Status::Unavailable("ledger is down");
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(), "ledger is down");
  EXPECT_EQ(calls, 1);
}

TEST_F(ScrubberTest, DeepNeedsTheRecordService) {
  ScrubOptions options;
  options.deep = true;
  auto r = Scrub(*metadata_, *objects_, nullptr, options);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ScrubberTest, StopRequestedReturnsAnIncompleteReport) {
  WriteSample();
  std::stop_source source;
  source.request_stop();
  ScrubOptions options;
  options.stop = source.get_token();
  auto r = Scrub(*metadata_, *objects_, service_.get(), options);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->completed);
  EXPECT_EQ(r->error, "stopped before completion");
  EXPECT_EQ(r->objects_checked, 0u);
}

TEST_F(ScrubberTest, ThrottleLimitsTheReadRate) {
  WriteSample();
  const uint64_t total = StoredBytes(dir_.path() / "objects");
  ScrubOptions options;
  // The whole store at this rate takes at least half a second.
  options.max_bytes_per_second = total * 2;
  const auto start = std::chrono::steady_clock::now();
  auto r = Scrub(*metadata_, *objects_, service_.get(), options);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->completed);
  EXPECT_EQ(r->bytes_checked, total);
  EXPECT_GE(elapsed, std::chrono::milliseconds(400));
  EXPECT_LT(elapsed, std::chrono::seconds(10));
}

TEST_F(ScrubberTest, ReportJsonHasTheDocumentedFields) {
  WriteSample();
  ASSERT_TRUE(fs::remove(ObjectFile(a3_.object_key)));
  ScrubReport r = MustScrub(false);
  const std::string text = ReportJson(r);
  auto j = nlohmann::json::parse(text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << text;
  EXPECT_EQ(j["format"], "medvault-scrub-report/1");
  EXPECT_EQ(j["mode"], "fast");
  EXPECT_EQ(j["completed"], true);
  EXPECT_EQ(j["error"], "");
  EXPECT_TRUE(j["started_at"].is_string());
  EXPECT_TRUE(j["finished_at"].is_string());
  EXPECT_EQ(j["started_at_ms"], r.started_at_ms);
  EXPECT_EQ(j["finished_at_ms"], r.finished_at_ms);
  EXPECT_EQ(j["duration_ms"], r.finished_at_ms - r.started_at_ms);
  EXPECT_EQ(j["versions_checked"], 5);
  EXPECT_EQ(j["versions_skipped"], 0);
  EXPECT_EQ(j["objects_checked"], 4);
  EXPECT_EQ(j["bytes_checked"], r.bytes_checked);
  EXPECT_EQ(j["findings_count"], 1);
  EXPECT_EQ(j["counts"]["missing"], 1);
  EXPECT_EQ(j["counts"]["changed"], 0);
  EXPECT_EQ(j["counts"]["swapped"], 0);
  EXPECT_EQ(j["counts"]["rolled-back"], 0);
  EXPECT_EQ(j["counts"]["undecryptable"], 0);
  EXPECT_EQ(j["counts"]["orphan"], 0);
  ASSERT_EQ(j["findings"].size(), 1u);
  const auto& f = j["findings"][0];
  EXPECT_EQ(f["kind"], "missing");
  EXPECT_EQ(f["patient_id"], alice_);
  EXPECT_EQ(f["path"], a3_.path);
  EXPECT_EQ(f["version"], 3);
  EXPECT_EQ(f["object_key"], a3_.object_key);
  EXPECT_TRUE(f["detail"].is_string());
  // Stable: the same report renders the same text.
  EXPECT_EQ(ReportJson(r), text);
  // Key order is the documented one.
  EXPECT_LT(text.find("\"format\""), text.find("\"mode\""));
  EXPECT_LT(text.find("\"counts\""), text.find("\"findings\": ["));
}

TEST_F(ScrubberTest, WriteFileAtomicallyReplacesTheFile) {
  const fs::path p = dir_.path() / "report.json";
  ASSERT_TRUE(WriteFileAtomically(p, "first").ok());
  ASSERT_TRUE(WriteFileAtomically(p, "second").ok());
  EXPECT_EQ(ReadFileBytes(p), "second");
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir_.path())) {
    files += e.path().filename().string().find("report.json") != std::string::npos ? 1 : 0;
  }
  EXPECT_EQ(files, 1u);  // no temp file left behind
  EXPECT_EQ(WriteFileAtomically(dir_.path() / "no-such-dir" / "r.json", "x").code(),
            StatusCode::kIOError);
}

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

TEST_F(ScrubberTest, SchedulerRunsPublishesAndStopsQuickly) {
  WriteSample();
  ASSERT_TRUE(fs::remove(ObjectFile(b1_.object_key)));
  const fs::path report_path = dir_.path() / "scrub-report.json";
  std::atomic<int> ledger{0};
  SchedulerOptions options;
  options.initial_delay = std::chrono::milliseconds(10);
  options.interval = std::chrono::hours(1);
  options.report_path = report_path;
  options.scrub.on_finding = [&ledger](const Finding&) {
    ++ledger;
    return Status::Ok();
  };
  ScrubScheduler scheduler(metadata_.get(), objects_.get(), service_.get(), options);
  ASSERT_TRUE(WaitFor([&] { return scheduler.Stats().runs >= 1; }, std::chrono::seconds(20)));
  ScrubStats stats = scheduler.Stats();
  EXPECT_EQ(stats.runs, 1u);
  EXPECT_EQ(stats.failed_runs, 0u);
  EXPECT_EQ(stats.findings_total, 1u);
  EXPECT_EQ(stats.last_findings, 1u);
  EXPECT_EQ(stats.objects_checked_total, 4u);
  EXPECT_GT(stats.last_finished_ms, 0);
  EXPECT_FALSE(stats.running);
  EXPECT_EQ(ledger.load(), 1);
  auto latest = scheduler.LatestReport();
  ASSERT_TRUE(latest.has_value());
  ASSERT_EQ(latest->findings.size(), 1u);
  ExpectFinding(latest->findings[0], kMissing, b1_);
  EXPECT_TRUE(scheduler.LastWriteStatus().ok());
  auto j = nlohmann::json::parse(ReadFileBytes(report_path), nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["findings_count"], 1);

  // A second run on demand, with one more problem.
  ASSERT_TRUE(objects_->Put("stray/object", AsBytes("x")).ok());
  scheduler.TriggerNow();
  ASSERT_TRUE(WaitFor([&] { return scheduler.Stats().runs >= 2; }, std::chrono::seconds(20)));
  stats = scheduler.Stats();
  EXPECT_EQ(stats.findings_total, 3u);
  EXPECT_EQ(stats.last_findings, 2u);
  j = nlohmann::json::parse(ReadFileBytes(report_path), nullptr, false);
  EXPECT_EQ(j["findings_count"], 2);

  // Waiting for the next run an hour away: Stop() returns at once.
  const auto start = std::chrono::steady_clock::now();
  scheduler.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  scheduler.Stop();  // idempotent
  EXPECT_EQ(scheduler.Stats().runs, 2u);
}

TEST_F(ScrubberTest, SchedulerStopsAThrottledScrubPromptly) {
  WriteSample();
  SchedulerOptions options;
  options.initial_delay = std::chrono::milliseconds(0);
  options.interval = std::chrono::hours(1);
  options.scrub.max_bytes_per_second = 1;  // would take hours
  options.scrub.deep = true;
  auto scheduler =
      std::make_unique<ScrubScheduler>(metadata_.get(), objects_.get(), service_.get(), options);
  ASSERT_TRUE(WaitFor([&] { return scheduler->Stats().running; }, std::chrono::seconds(20)));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // into the throttle wait
  const auto start = std::chrono::steady_clock::now();
  scheduler.reset();  // destruction stops it
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
}

TEST_F(ScrubberTest, SchedulerDestroyedBeforeTheFirstRun) {
  SchedulerOptions options;
  options.initial_delay = std::chrono::hours(1);
  const auto start = std::chrono::steady_clock::now();
  {
    ScrubScheduler scheduler(metadata_.get(), objects_.get(), nullptr, options);
    EXPECT_EQ(scheduler.Stats().runs, 0u);
    EXPECT_FALSE(scheduler.LatestReport().has_value());
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
}

TEST_F(ScrubberTest, SchedulerRecordsAFailedRun) {
  WriteSample();
  SchedulerOptions options;
  options.initial_delay = std::chrono::milliseconds(0);
  options.interval = std::chrono::hours(1);
  options.scrub.deep = true;  // without a record service: InvalidArgument
  ScrubScheduler scheduler(metadata_.get(), objects_.get(), nullptr, options);
  ASSERT_TRUE(WaitFor([&] { return scheduler.Stats().runs >= 1; }, std::chrono::seconds(20)));
  EXPECT_EQ(scheduler.Stats().failed_runs, 1u);
  auto latest = scheduler.LatestReport();
  ASSERT_TRUE(latest.has_value());
  EXPECT_FALSE(latest->completed);
  EXPECT_NE(latest->error.find("INVALID_ARGUMENT"), std::string::npos) << latest->error;
}

}  // namespace
}  // namespace medvault::integrity
