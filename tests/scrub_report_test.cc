// The scrub report: its JSON and its atomic writing.
#include "scrubber_fixture.h"

namespace medvault::integrity {
namespace {

using testing_support::ScrubberTest;
using namespace testing_support;

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
  EXPECT_EQ(j["counts"]["missing-version"], 0);
  EXPECT_EQ(j["counts"]["unlogged-version"], 0);
  EXPECT_EQ(j["writes_logged"], 0);
  EXPECT_EQ(j["orphans_reclaimed"], 0);
  EXPECT_EQ(j["damage_count"], 1);
  ASSERT_EQ(j["findings"].size(), 1u);
  const auto& f = j["findings"][0];
  EXPECT_EQ(f["kind"], "missing");
  EXPECT_EQ(f["severity"], "damage");
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

// Orphans are information: counted, but not damage.
TEST_F(ScrubberTest, ReportJsonTellsInformationFromDamage) {
  WriteSample();
  ASSERT_TRUE(objects_->Put(alice_ + "/" + NewRandomId(), AsBytes("orphan")).ok());
  ScrubReport r = MustScrub(false);
  auto j = nlohmann::json::parse(ReportJson(r));
  EXPECT_EQ(j["findings_count"], 1);
  EXPECT_EQ(j["damage_count"], 0);
  EXPECT_EQ(j["counts"]["orphan"], 1);
  EXPECT_EQ(j["findings"][0]["severity"], "info");
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

}  // namespace
}  // namespace medvault::integrity
