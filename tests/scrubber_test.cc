// Integrity scrubber: real stores in a temp dir, real encrypted versions
// written through the record service, tampering done on the files and the
// SQLite database directly, as an attacker or a failing disk would.
#include "scrubber_fixture.h"

namespace medvault::integrity {
namespace {

using testing_support::ScrubberTest;
using namespace testing_support;

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

// ---- the ledger against the metadata -------------------------------------

TEST_F(ScrubberTest, WithTheLedgerAnIntactStoreHasNoFindings) {
  WriteSample();
  scrub_log_ = &write_log_;
  for (bool deep : {false, true}) {
    SCOPED_TRACE(deep ? "deep" : "fast");
    ScrubReport r = MustScrub(deep);
    EXPECT_TRUE(r.findings.empty()) << ReportJson(r);
    EXPECT_EQ(r.writes_logged, 5u);
  }
  // An erased patient's rows stay as tombstones with their hashes: still
  // what the ledger logged.
  ASSERT_TRUE(service_->ErasePatient(alice_).ok());
  ScrubReport r = MustScrub(false);
  EXPECT_TRUE(r.findings.empty()) << ReportJson(r);
}

// The audit's attack: the newest version's row and object deleted. Every
// object left is intact, so the object checks alone see nothing, and the
// older version is served as the latest.
TEST_F(ScrubberTest, DeletedNewestVersionIsRolledBack) {
  WriteSample();
  DeleteVersion(a3_);
  auto latest = service_->ReadSegment(alice_, a3_.path, 0);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(AsString(latest->content), a2_.content);
  for (bool deep : {false, true}) {
    SCOPED_TRACE(deep ? "deep" : "fast");
    scrub_log_ = nullptr;
    EXPECT_TRUE(MustScrub(deep).findings.empty()) << "the hole the ledger check closes";
    scrub_log_ = &write_log_;
    ScrubReport r = MustScrub(deep);
    ASSERT_EQ(r.findings.size(), 1u) << ReportJson(r);
    const Finding& f = r.findings[0];
    EXPECT_EQ(f.kind, kRolledBack);
    EXPECT_TRUE(IsDamage(f));
    EXPECT_EQ(f.patient_id, alice_);
    EXPECT_EQ(f.path, a3_.path);
    EXPECT_EQ(f.version, 3u);
    EXPECT_NE(f.detail.find("newest version there is 2"), std::string::npos) << f.detail;
    ExpectNoHealthData(r);
  }
}

TEST_F(ScrubberTest, DeletedMiddleVersionIsMissingVersion) {
  WriteSample();
  DeleteVersion(a2_);
  scrub_log_ = &write_log_;
  ScrubReport r = MustScrub(false);
  ASSERT_EQ(r.findings.size(), 1u) << ReportJson(r);
  EXPECT_EQ(r.findings[0].kind, kMissingVersion);
  EXPECT_EQ(r.findings[0].patient_id, alice_);
  EXPECT_EQ(r.findings[0].version, 2u);
}

TEST_F(ScrubberTest, VersionInsertedWithoutAnEntryIsUnlogged) {
  WriteSample();
  auto rec = metadata_->GetSegmentVersion(alice_, a3_.path, 3);
  ASSERT_TRUE(rec.ok());
  store::SegmentVersionRecord forged = *rec;
  forged.version = 4;
  forged.object_key = alice_ + "/" + NewRandomId();
  auto put = objects_->Put(forged.object_key, AsBytes("forged ciphertext-like bytes"));
  ASSERT_TRUE(put.ok());
  forged.content_sha256 = put->sha256;
  forged.stored_size = put->size;
  ASSERT_TRUE(metadata_->InsertSegmentVersion(forged).ok());  // no ledger entry
  scrub_log_ = &write_log_;
  ScrubReport r = MustScrub(false);
  ASSERT_EQ(r.findings.size(), 1u) << ReportJson(r);
  EXPECT_EQ(r.findings[0].kind, kUnloggedVersion);
  EXPECT_EQ(r.findings[0].patient_id, alice_);
  EXPECT_EQ(r.findings[0].path, a3_.path);
  EXPECT_EQ(r.findings[0].version, 4u);
  EXPECT_EQ(r.findings[0].object_key, forged.object_key);
}

// A consistent edit of object and hash used to pass the fast scrub; the
// ledger logged the original hash.
TEST_F(ScrubberTest, ReplacedContentWithForgedHashIsUnloggedInFastMode) {
  WriteSample();
  const std::string other = "some other ciphertext of the same length or not";
  WriteFileBytes(ObjectFile(a1_.object_key), other);
  ForgeMetadata(a1_, crypto::Sha256(AsBytes(other)), other.size());
  scrub_log_ = &write_log_;
  ScrubReport r = MustScrub(false);
  ASSERT_EQ(r.findings.size(), 1u) << ReportJson(r);
  ExpectFinding(r.findings[0], kUnloggedVersion, a1_);
}

TEST_F(ScrubberTest, PatientWhoseRowsAreAllGoneIsMissingVersions) {
  WriteSample();
  Sql("DELETE FROM segment_versions WHERE patient_id = '" + bob_ + "'");
  Sql("DELETE FROM patients WHERE patient_id = '" + bob_ + "'");
  scrub_log_ = &write_log_;
  ScrubReport r = MustScrub(false);
  std::vector<Finding> missing;
  for (const Finding& f : r.findings) {
    if (f.kind == kMissingVersion) {
      missing.push_back(f);
    } else {
      EXPECT_EQ(f.kind, kOrphan) << ReportJson(r);  // bob's object, now unreferenced
    }
  }
  ASSERT_EQ(missing.size(), 1u) << ReportJson(r);
  EXPECT_EQ(missing[0].patient_id, "");
  EXPECT_EQ(missing[0].path, b1_.path);
  EXPECT_NE(missing[0].detail.find("ref-" + bob_), std::string::npos);
}

// A write that committed after the first read of the ledger (its row in the
// snapshot, its entry not yet read) is not reported: the entries appended
// since are read once more.
TEST_F(ScrubberTest, WriteLoggedAfterTheFirstReadIsNotUnlogged) {
  WriteSample();
  write_log_.hide_from = 3;  // a3, a_ecg and b1 "committed" after the first read
  scrub_log_ = &write_log_;
  ScrubReport r = MustScrub(false);
  EXPECT_TRUE(r.findings.empty()) << ReportJson(r);
  EXPECT_EQ(write_log_.reads, 2);
  EXPECT_EQ(r.writes_logged, 3u);
}

// ---- orphans: information, reclaimed after the grace period ----------------

TEST_F(ScrubberTest, OrphansAreKeptWhileYoungAndReclaimedOnceOld) {
  WriteSample();
  // What a crash between object write and metadata insert leaves behind.
  const std::string key = alice_ + "/" + NewRandomId();
  ASSERT_TRUE(objects_->Put(key, AsBytes("ciphertext-like bytes")).ok());

  ScrubReport young = MustScrub(false);
  ASSERT_EQ(young.findings.size(), 1u) << ReportJson(young);
  EXPECT_EQ(young.findings[0].kind, kOrphan);
  EXPECT_FALSE(IsDamage(young.findings[0]));
  EXPECT_NE(young.findings[0].detail.find("left alone"), std::string::npos);
  EXPECT_EQ(young.orphans_reclaimed, 0u);
  EXPECT_TRUE(fs::exists(ObjectFile(key)));

  // Just before the grace period ends: still kept.
  const int64_t committed = *objects_->CommittedAtMs(key);
  now_ms_ = [committed] { return committed + 3600 * 1000 - 1; };
  EXPECT_EQ(MustScrub(false).orphans_reclaimed, 0u);
  EXPECT_TRUE(fs::exists(ObjectFile(key)));

  now_ms_ = [committed] { return committed + 3600 * 1000; };
  ScrubReport old = MustScrub(false);
  ASSERT_EQ(old.findings.size(), 1u) << ReportJson(old);
  EXPECT_EQ(old.findings[0].kind, kOrphan);
  EXPECT_FALSE(IsDamage(old.findings[0]));
  EXPECT_NE(old.findings[0].detail.find("reclaimed"), std::string::npos);
  EXPECT_EQ(old.orphans_reclaimed, 1u);
  EXPECT_FALSE(fs::exists(ObjectFile(key)));

  ScrubReport after = MustScrub(false);
  EXPECT_TRUE(after.findings.empty()) << ReportJson(after);
  ExpectServing({});
}

TEST_F(ScrubberTest, ErasedPatientsLeftoverIsReclaimedAtOnce) {
  WriteSample();
  const std::string saved = ReadFileBytes(ObjectFile(a1_.object_key));
  ASSERT_TRUE(service_->ErasePatient(alice_).ok());
  ASSERT_TRUE(objects_->Put(a1_.object_key, AsBytes(saved)).ok());
  ScrubReport r = MustScrub(false);
  ASSERT_EQ(r.findings.size(), 1u) << ReportJson(r);
  EXPECT_FALSE(IsDamage(r.findings[0]));
  EXPECT_EQ(r.orphans_reclaimed, 1u);
  EXPECT_FALSE(fs::exists(ObjectFile(a1_.object_key)));
  EXPECT_TRUE(MustScrub(false).findings.empty());
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

// ---- small versions inline (their ciphertext in the metadata row) ----------

TEST_F(ScrubberTest, InlineVersionsAreCheckedLikeObjects) {
  UseInlineStorage();
  WriteSample();
  for (bool deep : {false, true}) {
    SCOPED_TRACE(deep ? "deep" : "fast");
    ScrubReport r = MustScrub(deep);
    EXPECT_TRUE(r.findings.empty()) << ReportJson(r);
    EXPECT_EQ(r.versions_checked, 5u);
    EXPECT_EQ(r.objects_checked, 5u);
    EXPECT_GT(r.bytes_checked, 0u);
  }
  EXPECT_EQ(StoredBytes(dir_.path() / "objects"), 0u) << "no object file was written";

  // An older version's ciphertext copied over a newer one: rolled back.
  Sql("UPDATE segment_versions SET inline_content = (SELECT inline_content FROM "
      "segment_versions WHERE patient_id = '" +
      alice_ +
      "' AND path = 'life-record/diet' AND "
      "version = 1) WHERE patient_id = '" +
      alice_ +
      "' AND path = 'life-record/diet' AND "
      "version = 2");
  // Random bytes in place of another: changed.
  Sql("UPDATE segment_versions SET inline_content = randomblob(length(inline_content)) WHERE "
      "patient_id = '" +
      bob_ + "'");
  for (bool deep : {false, true}) {
    SCOPED_TRACE(deep ? "deep" : "fast");
    ScrubReport r = MustScrub(deep);
    ASSERT_EQ(r.findings.size(), 2u) << ReportJson(r);
    std::map<std::string, Finding> by_key;
    for (const Finding& f : r.findings) {
      by_key[f.object_key] = f;
    }
    ExpectFinding(by_key[a2_.object_key], kRolledBack, a2_);
    ExpectFinding(by_key[b1_.object_key], kChanged, b1_);
    ExpectNoHealthData(r);
  }
  ExpectServing({a2_.object_key, b1_.object_key});

  // Content removed from its row: missing.
  Sql("UPDATE segment_versions SET inline_content = NULL WHERE patient_id = '" + alice_ +
      "' AND path = 'internal-medicine/cardiology/ecg'");
  ScrubReport r = MustScrub(false);
  bool missing = false;
  for (const Finding& f : r.findings) {
    missing = missing || (f.kind == kMissing && f.object_key == a_ecg_.object_key);
  }
  EXPECT_TRUE(missing) << ReportJson(r);
}

// A file planted under the key of an inline version is not its content: an
// unreferenced object, kept while young and reclaimed once old.
TEST_F(ScrubberTest, FileUnderAnInlineVersionsKeyIsAnOrphan) {
  UseInlineStorage();
  WriteSample();
  ASSERT_TRUE(objects_->Put(a1_.object_key, AsBytes("planted bytes")).ok());
  ScrubReport young = MustScrub(false);
  ASSERT_EQ(young.findings.size(), 1u) << ReportJson(young);
  EXPECT_EQ(young.findings[0].kind, kOrphan);
  EXPECT_EQ(young.findings[0].object_key, a1_.object_key);
  const int64_t committed = *objects_->CommittedAtMs(a1_.object_key);
  now_ms_ = [committed] { return committed + 3600 * 1000; };
  ScrubReport old = MustScrub(false);
  EXPECT_EQ(old.orphans_reclaimed, 1u) << ReportJson(old);
  EXPECT_FALSE(fs::exists(ObjectFile(a1_.object_key)));
  ExpectServing({});
}

// Erasure removes the inline ciphertexts with the key: nothing to check,
// nothing found.
TEST_F(ScrubberTest, ErasedPatientsInlineVersionsAreSkipped) {
  UseInlineStorage();
  WriteSample();
  ASSERT_TRUE(service_->ErasePatient(alice_).ok());
  auto row = metadata_->GetSegmentVersion(alice_, "life-record/diet", 1);
  ASSERT_TRUE(row.ok());
  EXPECT_TRUE(row->inline_content.empty());
  for (bool deep : {false, true}) {
    ScrubReport r = MustScrub(deep);
    EXPECT_TRUE(r.findings.empty()) << ReportJson(r);
    EXPECT_EQ(r.versions_checked, 1u);
    EXPECT_EQ(r.versions_skipped, 4u);
  }
}

}  // namespace
}  // namespace medvault::integrity
