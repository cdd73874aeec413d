// Share packages: what they carry, what they refuse, and that nothing left
// out of a share can be found in its bytes.
#include <gtest/gtest.h>

#include <cctype>
#include <functional>
#include <string>
#include <vector>

#include "common/ids.h"
#include "crypto/crypto.h"
#include "engine/engine.h"
#include "interop/interop.h"
#include "interop/mapping.h"

namespace medvault::engine {
namespace {

using nlohmann::json;

constexpr int64_t kCreatedAt = 1767225600123;  // 2026-01-01T00:00:00.123Z
constexpr size_t kDigestLine = 8 + 64 + 1;     // "\nsha256=" hex "\n"

PackageItem JsonItem(const std::string& path, uint64_t version, const json& content) {
  PackageItem item;
  item.path = path;
  item.version = version;
  item.kind = record::ContentKind::kJson;
  item.content = ToBytes(content.dump());
  return item;
}

PackageItem TextItem(const std::string& path, uint64_t version, const std::string& text) {
  PackageItem item;
  item.path = path;
  item.version = version;
  item.kind = record::ContentKind::kText;
  item.content = ToBytes(text);
  return item;
}

PackageItem BinaryItem(const std::string& path, uint64_t version, Bytes content) {
  PackageItem item;
  item.path = path;
  item.version = version;
  item.kind = record::ContentKind::kBinary;
  item.media_type = "application/pdf";
  item.content = std::move(content);
  return item;
}

std::vector<PackageItem> SampleItems() {
  return {
      JsonItem("physical-signs/blood-pressure", 3,
               json::parse(R"({"systolic": 121, "diastolic": 79, "unit": "mm[Hg]",
                               "note": "après l'effort"})")),
      TextItem("patient-narrative/diary", 1, "Slept badly.\nHeadache: 3/10 \xe2\x9c\x93"),
      BinaryItem("radiology/reports/scan", 2, Bytes{0, 1, 2, 0xff, 0xfe, '"', '\\', 0x7f}),
  };
}

PackageOptions Options(const std::string& note = "") {
  PackageOptions o;
  o.note = note;
  o.created_at_ms = kCreatedAt;
  return o;
}

Bytes Build(const std::vector<PackageItem>& items, const PackageOptions& options = Options()) {
  auto b = BuildSharePackage(items, options);
  EXPECT_TRUE(b.ok()) << b.status().ToString();
  return b.ok() ? std::move(*b) : Bytes();
}

bool Contains(ByteView haystack, std::string_view needle) {
  return AsString(haystack).find(needle) != std::string_view::npos;
}

std::string DigestLine(std::string_view prefix) {
  return "\nsha256=" + ToHex(crypto::Sha256(AsBytes(prefix))) + "\n";
}

// Replaces the body text and writes a matching digest line: what someone
// who rewrites a plain package on purpose can do.
Bytes RewriteText(const Bytes& package, const std::function<void(std::string&)>& edit) {
  std::string s(AsString(package));
  const size_t magic = kSharePackageMagic.size();
  std::string body = s.substr(magic, s.size() - magic - kDigestLine);
  edit(body);
  std::string out = std::string(kSharePackageMagic) + body;
  out += DigestLine(out);
  return ToBytes(out);
}

Bytes Rewrite(const Bytes& package, const std::function<void(json&)>& edit) {
  return RewriteText(package, [&](std::string& body) {
    json j = json::parse(body);
    edit(j);
    body = j.dump();
  });
}

Status OpenStatus(const Bytes& bytes, const OpenOptions& options = {}) {
  return OpenSharePackage(bytes, options).status();
}

// ---------------------------------------------------------------------------
// Plain packages: round trip and contents

TEST(SharePackageTest, PlainRoundTrip) {
  const std::vector<PackageItem> items = SampleItems();
  const Bytes bytes = Build(items, Options("Für Dr. Weiß:\n\tbitte ansehen"));
  const std::string_view s = AsString(bytes);
  ASSERT_EQ(s.substr(0, kSharePackageMagic.size()), kSharePackageMagic);
  EXPECT_EQ(s.substr(s.size() - kDigestLine), DigestLine(s.substr(0, s.size() - kDigestLine)));

  auto pkg = OpenSharePackage(bytes);
  ASSERT_TRUE(pkg.ok()) << pkg.status().ToString();
  EXPECT_TRUE(IsValidRandomId(pkg->package_id));
  EXPECT_EQ(pkg->created_at, "2026-01-01T00:00:00.123Z");
  EXPECT_EQ(pkg->note, "Für Dr. Weiß:\n\tbitte ansehen");
  EXPECT_EQ(pkg->sha256_hex, ToHex(crypto::Sha256(AsBytes(s.substr(0, s.size() - kDigestLine)))));
  ASSERT_EQ(pkg->items.size(), 3u);

  const PackageItem& bp = pkg->items[0];
  EXPECT_EQ(bp.path, "physical-signs/blood-pressure");
  EXPECT_EQ(bp.version, 3u);
  EXPECT_EQ(bp.category, "physical-signs");
  EXPECT_EQ(bp.kind, record::ContentKind::kJson);
  EXPECT_EQ(bp.media_type, "application/json");
  EXPECT_EQ(json::parse(AsString(bp.content)), json::parse(AsString(items[0].content)));
  EXPECT_EQ(AsString(bp.content), json::parse(AsString(items[0].content)).dump());  // canonical

  const PackageItem& diary = pkg->items[1];
  EXPECT_EQ(diary.path, "patient-narrative/diary");
  EXPECT_EQ(diary.kind, record::ContentKind::kText);
  EXPECT_EQ(diary.media_type, "text/plain; charset=utf-8");
  EXPECT_EQ(diary.category, "patient-narrative");
  EXPECT_EQ(diary.content, items[1].content);

  PackageItem scan = items[2];
  scan.category = "clinical";
  EXPECT_EQ(pkg->items[2], scan);

  // JSON bodies travel as JSON: readable in the package.
  EXPECT_TRUE(Contains(bytes, R"("systolic":121)"));
  EXPECT_TRUE(Contains(bytes, "après l'effort"));
}

TEST(SharePackageTest, JsonContentAlreadyCanonicalRoundTripsExactly) {
  const std::vector<PackageItem> items = {
      JsonItem("other/x", 1, json::parse(R"({"a": [1, 2.5, "x"], "b": {"c": null}})"))};
  auto pkg = OpenSharePackage(Build(items));
  ASSERT_TRUE(pkg.ok());
  PackageItem expected = items[0];
  expected.category = "other";
  expected.media_type = "application/json";
  EXPECT_EQ(pkg->items[0], expected);
}

TEST(SharePackageTest, CarriesNothingElse) {
  record::SegmentContent seg;
  seg.info.patient_id = "patient-secret-4711";
  seg.info.path = "physical-signs/heart-rate";
  seg.info.version = 7;
  seg.info.category = "physical-signs";
  seg.info.sensitivity = 4;
  seg.info.kind = record::ContentKind::kJson;
  seg.info.media_type = "application/json";
  seg.info.size = 11;
  seg.info.content_sha256_hex = std::string(64, 'c');
  seg.info.author = "author-account-0815";
  seg.info.created_at_ms = 1234567890123;
  seg.content = ToBytes(R"({"bpm": 64})");
  const PackageItem item = ItemFromSegment(seg);
  EXPECT_EQ(item.path, seg.info.path);
  EXPECT_EQ(item.version, 7u);
  EXPECT_EQ(item.category, "physical-signs");
  EXPECT_EQ(item.media_type, "application/json");
  EXPECT_EQ(item.content, seg.content);

  const Bytes bytes = Build({item});
  for (const char* absent : {"patient-secret-4711", "author-account-0815", "cccccccccccccccc",
                             "1234567890123", "2009-02-13", "sensitivity", "patient", "author"}) {
    EXPECT_FALSE(Contains(bytes, absent)) << absent;
  }
  const std::string_view s = AsString(bytes);
  const json body = json::parse(
      s.substr(kSharePackageMagic.size(), s.size() - kSharePackageMagic.size() - kDigestLine));
  std::vector<std::string> keys;
  for (auto it = body.begin(); it != body.end(); ++it) {
    keys.push_back(it.key());
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"created_at", "format", "package_id", "segments"}));
  ASSERT_EQ(body["segments"].size(), 1u);
  keys.clear();
  for (auto it = body["segments"][0].begin(); it != body["segments"][0].end(); ++it) {
    keys.push_back(it.key());
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"category", "content", "kind", "media_type", "path",
                                            "sha256", "version"}));
  EXPECT_EQ(body["segments"][0]["content"], json::parse(R"({"bpm": 64})"));
  EXPECT_EQ(body["segments"][0]["sha256"], ToHex(crypto::Sha256(AsBytes(R"({"bpm":64})"))));
}

TEST(SharePackageTest, EveryPackageGetsItsOwnId) {
  auto a = OpenSharePackage(Build(SampleItems()));
  auto b = OpenSharePackage(Build(SampleItems()));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->package_id, b->package_id);
}

// ---------------------------------------------------------------------------
// Building: what is refused

TEST(SharePackageTest, BuildRefusesBadItems) {
  struct Case {
    std::string name;
    std::function<void(std::vector<PackageItem>&, PackageOptions&)> edit;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"no items", [](auto& items, auto&) { items.clear(); }, "at least one"},
      {"invalid path", [](auto& items, auto&) { items[0].path = "physical-signs/../x"; }, "item 0"},
      {"unknown top level", [](auto& items, auto&) { items[1].path = "nope/x"; }, "item 1"},
      {"version 0", [](auto& items, auto&) { items[0].version = 0; }, "version 0"},
      {"duplicate path", [](auto& items, auto&) { items[2].path = items[0].path; }, "twice"},
      {"bad category", [](auto& items, auto&) { items[0].category = "Clinical Stuff"; },
       "category"},
      {"binary without media type", [](auto& items, auto&) { items[2].media_type.clear(); },
       "needs a media type"},
      {"media type without slash", [](auto& items, auto&) { items[2].media_type = "pdf"; },
       "media type"},
      {"media type with control", [](auto& items, auto&) { items[2].media_type = "a/b\n"; },
       "media type"},
      {"JSON array", [](auto& items, auto&) { items[0].content = ToBytes("[1,2]"); }, "object"},
      {"JSON invalid", [](auto& items, auto&) { items[0].content = ToBytes("{\"a\":"); },
       "not valid JSON"},
      {"JSON with trailing data", [](auto& items, auto&) { items[0].content = ToBytes("{} {}"); },
       "not valid JSON"},
      {"JSON too deep",
       [](auto& items, auto&) {
         items[0].content =
             ToBytes(std::string(kMaxJsonDepth + 1, '[') + std::string(kMaxJsonDepth + 1, ']'));
       },
       "deeper"},
      {"text not UTF-8",
       [](auto& items, auto&) {
         items[1].content = {'a', 0xc3, 0x28};
       },
       "UTF-8"},
      {"note too long", [](auto&, auto& o) { o.note = std::string(kMaxNoteBytes + 1, 'n'); },
       "note"},
      {"note with control", [](auto&, auto& o) { o.note = "a\x1b[31m"; }, "control"},
      {"note not UTF-8", [](auto&, auto& o) { o.note = "\xff"; }, "UTF-8"},
      {"recipient key size", [](auto&, auto& o) { o.recipient_public_key = Bytes(31, 1); },
       "32 bytes"},
      {"negative time", [](auto&, auto& o) { o.created_at_ms = -1; }, "negative"},
      {"time beyond year 9999", [](auto&, auto& o) { o.created_at_ms = 253402300800000; },
       "out of range"},
  };
  for (const Case& c : cases) {
    std::vector<PackageItem> items = SampleItems();
    PackageOptions options = Options();
    c.edit(items, options);
    auto b = BuildSharePackage(items, options);
    ASSERT_FALSE(b.ok()) << c.name;
    EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(b.status().message().find(c.reason), std::string::npos)
        << c.name << ": " << b.status().message();
  }
  std::vector<PackageItem> many(kMaxPackageSegments + 1, SampleItems()[0]);
  EXPECT_EQ(BuildSharePackage(many, Options()).status().code(), StatusCode::kInvalidArgument);
}

TEST(SharePackageTest, VersionZeroNamesThePath) {
  std::vector<PackageItem> items = SampleItems();
  items[1].version = 0;
  auto b = BuildSharePackage(items, Options());
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("patient-narrative/diary"), std::string::npos);
}

TEST(SharePackageTest, BuildRefusesOversizedOutput) {
  const Bytes plain = Build(SampleItems());
  PackageOptions options = Options();
  options.max_package_bytes = plain.size() - 1;
  auto b = BuildSharePackage(SampleItems(), options);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kResourceExhausted);
  options.max_package_bytes = plain.size();
  EXPECT_TRUE(BuildSharePackage(SampleItems(), options).ok());
  // Content alone above the limit is refused before any work.
  options.max_package_bytes = 16;
  EXPECT_EQ(BuildSharePackage(SampleItems(), options).status().code(),
            StatusCode::kResourceExhausted);
}

// ---------------------------------------------------------------------------
// Opening plain packages: what is refused

TEST(SharePackageTest, OpenRefusesWrongMagicAndVersion) {
  const Bytes good = Build(SampleItems());
  const std::string s(AsString(good));
  const std::string rest = s.substr(kSharePackageMagic.size());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "wrong magic"},
      {"{}", "wrong magic"},
      {"medvault-share-package/1\n" + rest, "wrong magic"},
      {"MEDVAULT-SHARE-PACKAGX/1\n" + rest, "wrong magic"},
      {"MEDVAULT-SHARE-PACKAGE/2\n" + rest, "unsupported format version 2"},
      {"MEDVAULT-SHARE-PACKAGE/0\n" + rest, "unsupported format version 0"},
      {"MEDVAULT-SHARE-PACKAGE/01\n" + rest, "malformed magic line"},
      {"MEDVAULT-SHARE-PACKAGE/10\n" + rest, "unsupported format version 10"},
      {"MEDVAULT-SHARE-PACKAGE/\n" + rest, "malformed magic line"},
      {"MEDVAULT-SHARE-PACKAGE/1" + rest, "malformed magic line"},
      {"MEDVAULT-SHARE-PACKAGE/1\r\n" + rest, "malformed magic line"},
      {"MEDVAULT-SHARE-PACKAGE/99999999999999999999\n" + rest, "malformed magic line"},
  };
  for (const auto& [text, reason] : cases) {
    auto pkg = OpenSharePackage(AsBytes(text));
    ASSERT_FALSE(pkg.ok()) << text.substr(0, 30);
    EXPECT_EQ(pkg.status().code(), StatusCode::kInvalidArgument) << text.substr(0, 30);
    EXPECT_NE(pkg.status().message().find(reason), std::string::npos)
        << text.substr(0, 30) << " -> " << pkg.status().message();
  }
}

TEST(SharePackageTest, OpenRefusesEveryTruncationAndAppendedBytes) {
  const Bytes good = Build(SampleItems());
  for (size_t n = 0; n < good.size(); ++n) {
    const Bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    const Status st = OpenStatus(cut);
    ASSERT_FALSE(st.ok()) << n;
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << n << ": " << st.ToString();
  }
  for (const char* tail : {"\n", " ", "x", "\nsha256=00"}) {
    Bytes longer = good;
    const std::string_view t(tail);
    longer.insert(longer.end(), t.begin(), t.end());
    EXPECT_EQ(OpenStatus(longer).code(), StatusCode::kInvalidArgument) << tail;
  }
}

TEST(SharePackageTest, EditedSegmentIsDataLossNamingThePath) {
  const Bytes good = Build(SampleItems());
  std::string s(AsString(good));
  const size_t at = s.find("\"systolic\":121");
  ASSERT_NE(at, std::string::npos);
  s.replace(at, 14, "\"systolic\":181");
  const Status st = OpenStatus(ToBytes(s));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("physical-signs/blood-pressure"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("SHA-256"), std::string::npos);

  // Text content is base64url: an edit there is caught the same way.
  std::string t(AsString(good));
  const std::string diary_b64 = ToBase64Url(SampleItems()[1].content);
  const size_t bt = t.find(diary_b64);
  ASSERT_NE(bt, std::string::npos);
  t[bt] = t[bt] == 'A' ? 'B' : 'A';
  const Status st2 = OpenStatus(ToBytes(t));
  EXPECT_EQ(st2.code(), StatusCode::kDataLoss);
  EXPECT_NE(st2.message().find("patient-narrative/diary"), std::string::npos);
}

TEST(SharePackageTest, EditWithAFreshSegmentHashIsCaughtByTheDigest) {
  const Bytes good = Build(SampleItems());
  std::string s(AsString(good));
  const std::string new_content =
      R"({"diastolic":79,"note":"après l'effort","systolic":181,"unit":"mm[Hg]"})";
  const std::string old_content = json::parse(AsString(SampleItems()[0].content)).dump();
  const std::string old_hash = ToHex(crypto::Sha256(AsBytes(old_content)));
  ASSERT_NE(s.find(old_content), std::string::npos);
  ASSERT_NE(s.find(old_hash), std::string::npos);
  s.replace(s.find(old_content), old_content.size(), new_content);
  s.replace(s.find(old_hash), old_hash.size(), ToHex(crypto::Sha256(AsBytes(new_content))));
  const Status st = OpenStatus(ToBytes(s));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("digest"), std::string::npos) << st.message();

  // Documented limit: a plain package rewritten with every hash recomputed
  // opens (authenticity needs a sealed package or an authenticated channel).
  std::string body =
      s.substr(kSharePackageMagic.size(), s.size() - kSharePackageMagic.size() - kDigestLine);
  std::string rewritten = std::string(kSharePackageMagic) + body;
  rewritten += DigestLine(rewritten);
  auto pkg = OpenSharePackage(ToBytes(rewritten));
  ASSERT_TRUE(pkg.ok()) << pkg.status().ToString();
  EXPECT_EQ(AsString(pkg->items[0].content), new_content);
}

TEST(SharePackageTest, OpenRefusesMalformedBodies) {
  const Bytes good = Build(SampleItems(), Options("note"));
  struct Case {
    std::string name;
    std::function<void(json&)> edit;
    StatusCode code;
    std::string reason;
  };
  const StatusCode kInvalid = StatusCode::kInvalidArgument;
  const std::vector<Case> cases = {
      {"not an object", [](json& b) { b = json::array({1}); }, kInvalid, "not a JSON object"},
      {"unknown top-level field", [](json& b) { b["patient_id"] = "p1"; }, kInvalid,
       "unknown field"},
      {"missing format", [](json& b) { b.erase("format"); }, kInvalid, "lacks \"format\""},
      {"missing package id", [](json& b) { b.erase("package_id"); }, kInvalid, "package_id"},
      {"missing created_at", [](json& b) { b.erase("created_at"); }, kInvalid, "created_at"},
      {"format disagrees", [](json& b) { b["format"] = "medvault-share-package/2"; },
       StatusCode::kDataLoss, "magic line"},
      {"format not a string", [](json& b) { b["format"] = 1; }, kInvalid, "format"},
      {"bad package id", [](json& b) { b["package_id"] = "ABC"; }, kInvalid, "package id"},
      {"bad created_at", [](json& b) { b["created_at"] = "yesterday"; }, kInvalid, "RFC 3339"},
      {"empty note", [](json& b) { b["note"] = ""; }, kInvalid, "note"},
      {"note with control", [](json& b) { b["note"] = "\x07"; }, kInvalid, "control"},
      {"note not a string", [](json& b) { b["note"] = json::array(); }, kInvalid, "note"},
      {"no segments", [](json& b) { b.erase("segments"); }, kInvalid, "no segments"},
      {"empty segments", [](json& b) { b["segments"] = json::array(); }, kInvalid, "no segments"},
      {"segment not an object", [](json& b) { b["segments"][1] = "x"; }, kInvalid,
       "segment 1 is not an object"},
      {"unknown segment field", [](json& b) { b["segments"][0]["author"] = "x"; }, kInvalid,
       "unknown field"},
      {"missing segment field", [](json& b) { b["segments"][0].erase("sha256"); }, kInvalid,
       "lacks \"sha256\""},
      {"path not a string", [](json& b) { b["segments"][0]["path"] = 5; }, kInvalid,
       "not a string"},
      {"invalid path", [](json& b) { b["segments"][0]["path"] = "physical-signs/A"; }, kInvalid,
       "segment 0"},
      {"version 0", [](json& b) { b["segments"][0]["version"] = 0; }, kInvalid, "version"},
      {"negative version", [](json& b) { b["segments"][0]["version"] = -3; }, kInvalid, "version"},
      {"fractional version", [](json& b) { b["segments"][0]["version"] = 1.5; }, kInvalid,
       "version"},
      {"version as string", [](json& b) { b["segments"][0]["version"] = "3"; }, kInvalid,
       "version"},
      {"duplicate path", [](json& b) { b["segments"][2]["path"] = b["segments"][0]["path"]; },
       kInvalid, "twice"},
      {"bad kind", [](json& b) { b["segments"][0]["kind"] = "xml"; }, kInvalid, "kind"},
      {"bad category", [](json& b) { b["segments"][0]["category"] = ""; }, kInvalid, "category"},
      {"bad media type", [](json& b) { b["segments"][0]["media_type"] = "json"; }, kInvalid,
       "media type"},
      {"bad sha256", [](json& b) { b["segments"][0]["sha256"] = "ABC"; }, kInvalid, "sha256"},
      {"upper-case sha256",
       [](json& b) {
         std::string h = b["segments"][0]["sha256"];
         for (char& c : h) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
         b["segments"][0]["sha256"] = h;
       },
       kInvalid, "sha256"},
      {"JSON content not an object", [](json& b) { b["segments"][0]["content"] = "{}"; }, kInvalid,
       "object"},
      {"text content not a string", [](json& b) { b["segments"][1]["content"] = json::object(); },
       kInvalid, "base64url"},
      {"text content not base64url", [](json& b) { b["segments"][1]["content"] = "a+b/"; },
       kInvalid, "base64url"},
      {"text content not UTF-8",
       [](json& b) {
         const Bytes bad = {'a', 0xc3, 0x28};
         b["segments"][1]["content"] = ToBase64Url(bad);
         b["segments"][1]["sha256"] = ToHex(crypto::Sha256(bad));
       },
       kInvalid, "UTF-8"},
      {"kind swapped", [](json& b) { b["segments"][2]["kind"] = "json"; }, kInvalid, "object"},
  };
  for (const Case& c : cases) {
    const Status st = OpenStatus(Rewrite(good, c.edit));
    ASSERT_FALSE(st.ok()) << c.name;
    EXPECT_EQ(st.code(), c.code) << c.name << ": " << st.ToString();
    EXPECT_NE(st.message().find(c.reason), std::string::npos) << c.name << ": " << st.message();
  }
  // The unedited rewrite opens: the harness itself changes nothing.
  EXPECT_TRUE(OpenStatus(Rewrite(good, [](json&) {})).ok());
}

TEST(SharePackageTest, OpenRefusesNonCanonicalBodies) {
  const Bytes good = Build(SampleItems());
  const std::vector<std::pair<std::string, std::function<void(std::string&)>>> cases = {
      {"whitespace", [](std::string& b) { b.insert(1, " "); }},
      {"trailing newline", [](std::string& b) { b += "\n"; }},
      {"key order",
       [](std::string& b) {
         json j = json::parse(b);
         const std::string segments = j["segments"].dump();
         j.erase("segments");
         b = "{\"segments\":" + segments + "," + j.dump().substr(1);
       }},
      {"duplicate key",
       [](std::string& b) { b.insert(1, "\"created_at\":\"2030-01-01T00:00:00.000Z\","); }},
      {"escaped slash",
       [](std::string& b) {
         const size_t at = b.find("physical-signs/blood-pressure");
         b.replace(at, 29, "physical-signs\\/blood-pressure");
       }},
      {"not JSON", [](std::string& b) { b = "{" + b; }},
  };
  for (const auto& [name, edit] : cases) {
    const Status st = OpenStatus(RewriteText(good, edit));
    ASSERT_FALSE(st.ok()) << name;
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << name << ": " << st.ToString();
  }
}

TEST(SharePackageTest, OpenEnforcesSizeLimits) {
  const Bytes good = Build(SampleItems());
  OpenOptions small;
  small.max_package_bytes = good.size() - 1;
  EXPECT_EQ(OpenStatus(good, small).code(), StatusCode::kResourceExhausted);
  small.max_package_bytes = good.size();
  EXPECT_TRUE(OpenStatus(good, small).ok());

  OpenOptions few;
  few.max_segments = 2;
  EXPECT_EQ(OpenStatus(good, few).code(), StatusCode::kResourceExhausted);
  few.max_segments = 3;
  EXPECT_TRUE(OpenStatus(good, few).ok());

  // A body nested beyond the JSON limit is refused before anything walks it.
  const Bytes deep = RewriteText(good, [](std::string& b) {
    b = std::string(kMaxJsonDepth + 10, '[') + std::string(kMaxJsonDepth + 10, ']');
  });
  const Status st = OpenStatus(deep);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("deeper"), std::string::npos) << st.message();
  const Bytes very_deep = RewriteText(
      good, [](std::string& b) { b = std::string(200000, '[') + std::string(200000, ']'); });
  EXPECT_EQ(OpenStatus(very_deep).code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// Sealed packages

struct Sealed {
  RecipientKeyPair keys;
  Bytes bytes;
};

Sealed BuildSealed(const std::vector<PackageItem>& items, const std::string& note = "") {
  auto keys = GenerateRecipientKeyPair();
  EXPECT_TRUE(keys.ok());
  PackageOptions options = Options(note);
  options.recipient_public_key = keys->public_key;
  Sealed s{std::move(*keys), Build(items, options)};
  return s;
}

OpenOptions WithKey(const SecretBytes& key) {
  OpenOptions o;
  o.recipient_secret_key = &key;
  return o;
}

TEST(SealedPackageTest, RoundTripWithTheRecipientKey) {
  const Sealed sealed = BuildSealed(SampleItems(), "for the cardiologist");
  const std::string_view s = AsString(sealed.bytes);
  ASSERT_EQ(s.substr(0, kSealedSharePackageMagic.size()), kSealedSharePackageMagic);
  for (const char* absent : {"systolic", "blood-pressure", "Slept", "cardiologist", "physical",
                             "medvault-share-package", "MEDVAULT-SHARE-PACKAGE"}) {
    EXPECT_FALSE(Contains(sealed.bytes, absent)) << absent;
  }
  auto pkg = OpenSharePackage(sealed.bytes, WithKey(sealed.keys.secret_key));
  ASSERT_TRUE(pkg.ok()) << pkg.status().ToString();
  EXPECT_EQ(pkg->note, "for the cardiologist");
  ASSERT_EQ(pkg->items.size(), 3u);
  EXPECT_EQ(pkg->items[1].content, SampleItems()[1].content);
  EXPECT_EQ(pkg->items[2].content, SampleItems()[2].content);

  // Unsealing gives the plain package, which opens the same way.
  auto plain = UnsealSharePackage(sealed.bytes, sealed.keys.secret_key);
  ASSERT_TRUE(plain.ok());
  ASSERT_EQ(AsString(*plain).substr(0, kSharePackageMagic.size()), kSharePackageMagic);
  auto again = OpenSharePackage(*plain);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->package_id, pkg->package_id);
  EXPECT_EQ(again->sha256_hex, pkg->sha256_hex);
  EXPECT_EQ(again->items, pkg->items);
}

TEST(SealedPackageTest, SealingIsRandomised) {
  auto keys = GenerateRecipientKeyPair();
  ASSERT_TRUE(keys.ok());
  PackageOptions options = Options();
  options.recipient_public_key = keys->public_key;
  const Bytes a = Build(SampleItems(), options);
  const Bytes b = Build(SampleItems(), options);
  EXPECT_NE(a, b);
  EXPECT_EQ(Bytes(a.begin(), a.begin() + 48), Bytes(b.begin(), b.begin() + 48));  // magic + id
}

TEST(SealedPackageTest, WrongKeyIsPermissionDeniedAndNoKeyFailedPrecondition) {
  const Sealed sealed = BuildSealed(SampleItems());
  auto other = GenerateRecipientKeyPair();
  ASSERT_TRUE(other.ok());
  const Status wrong = OpenStatus(sealed.bytes, WithKey(other->secret_key));
  EXPECT_EQ(wrong.code(), StatusCode::kPermissionDenied) << wrong.ToString();
  EXPECT_EQ(UnsealSharePackage(sealed.bytes, other->secret_key).status().code(),
            StatusCode::kPermissionDenied);

  const Status none = OpenStatus(sealed.bytes);
  EXPECT_EQ(none.code(), StatusCode::kFailedPrecondition) << none.ToString();

  const SecretBytes short_key(16);
  EXPECT_EQ(OpenStatus(sealed.bytes, WithKey(short_key)).code(), StatusCode::kInvalidArgument);

  // A plain package ignores a key given.
  EXPECT_TRUE(OpenStatus(Build(SampleItems()), WithKey(sealed.keys.secret_key)).ok());
}

TEST(SealedPackageTest, EveryAlteredByteIsRefused) {
  const Sealed sealed = BuildSealed({SampleItems()[0]});
  const SecretBytes& key = sealed.keys.secret_key;
  const size_t magic = kSealedSharePackageMagic.size();
  for (size_t i = 0; i < sealed.bytes.size(); ++i) {
    Bytes altered = sealed.bytes;
    altered[i] ^= 0x01;
    const Status st = OpenStatus(altered, WithKey(key));
    ASSERT_FALSE(st.ok()) << "byte " << i;
    StatusCode expected = StatusCode::kDataLoss;  // key block and ciphertext
    if (i < magic) {
      expected = StatusCode::kInvalidArgument;  // magic line
    } else if (i < magic + 16) {
      expected = StatusCode::kPermissionDenied;  // recipient id
    }
    EXPECT_EQ(st.code(), expected) << "byte " << i << ": " << st.ToString();
  }
}

TEST(SealedPackageTest, TruncationsAndExtensionsAreRefused) {
  const Sealed sealed = BuildSealed({SampleItems()[0]});
  const SecretBytes& key = sealed.keys.secret_key;
  for (size_t n = 0; n < sealed.bytes.size(); ++n) {
    const Bytes cut(sealed.bytes.begin(), sealed.bytes.begin() + static_cast<std::ptrdiff_t>(n));
    const Status st = OpenStatus(cut, WithKey(key));
    ASSERT_FALSE(st.ok()) << n;
    EXPECT_TRUE(st.code() == StatusCode::kInvalidArgument || st.code() == StatusCode::kDataLoss)
        << n << ": " << st.ToString();
  }
  Bytes longer = sealed.bytes;
  longer.push_back(0);
  EXPECT_EQ(OpenStatus(longer, WithKey(key)).code(), StatusCode::kDataLoss);
}

TEST(SealedPackageTest, RefusesOtherVersionsBadKeysAndOversizedInput) {
  const Sealed sealed = BuildSealed({SampleItems()[0]});
  const SecretBytes& key = sealed.keys.secret_key;
  std::string s(AsString(sealed.bytes));
  std::string v2 = s;
  v2.replace(kSealedSharePackageMagic.size() - 2, 1, "2");
  const Status st = OpenStatus(ToBytes(v2), WithKey(key));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("unsupported format version 2"), std::string::npos) << st.message();

  OpenOptions small = WithKey(key);
  small.max_package_bytes = sealed.bytes.size() - 1;
  EXPECT_EQ(OpenStatus(sealed.bytes, small).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(UnsealSharePackage(sealed.bytes, key, sealed.bytes.size() - 1).status().code(),
            StatusCode::kResourceExhausted);

  // Unseal wants a sealed package.
  EXPECT_EQ(UnsealSharePackage(Build(SampleItems()), key).status().code(),
            StatusCode::kInvalidArgument);

  // A low-order point is no usable recipient key.
  PackageOptions options = Options();
  options.recipient_public_key = Bytes(kRecipientKeySize, 0);
  EXPECT_EQ(BuildSharePackage(SampleItems(), options).status().code(),
            StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// Parts and items

TEST(PackageItemTest, PartsBecomeItemsAndBack) {
  interop::SegmentPart part;
  part.path = "health-status/allergies/d0123456789abcdef";
  part.version = 4;
  part.body = {{"format", "medvault-entries/1"}, {"entries", json::array()}};
  auto item = ItemFromPart(part);
  ASSERT_TRUE(item.ok());
  EXPECT_EQ(item->kind, record::ContentKind::kJson);
  EXPECT_EQ(item->version, 4u);
  EXPECT_EQ(item->media_type, "application/json");
  auto back = PartFromItem(*item);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->path, part.path);
  EXPECT_EQ(back->version, 4u);
  EXPECT_EQ(back->body, part.body);

  interop::SegmentPart unstored = part;
  unstored.version = 0;
  auto unstored_item = ItemFromPart(unstored);
  ASSERT_TRUE(unstored_item.ok());
  EXPECT_EQ(BuildSharePackage(std::vector<PackageItem>{*unstored_item}, Options()).status().code(),
            StatusCode::kInvalidArgument);

  interop::SegmentPart bad_utf8 = part;
  bad_utf8.body["x"] = std::string("\xff");
  EXPECT_EQ(ItemFromPart(bad_utf8).status().code(), StatusCode::kInvalidArgument);
}

TEST(PackageItemTest, PartFromItemRefusesNonJson) {
  EXPECT_EQ(PartFromItem(SampleItems()[1]).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(PartFromItem(SampleItems()[2]).status().code(), StatusCode::kFailedPrecondition);
  PackageItem array = JsonItem("other/x", 1, json::array());
  EXPECT_EQ(PartFromItem(array).status().code(), StatusCode::kInvalidArgument);
  PackageItem broken = JsonItem("other/x", 1, json::object());
  broken.content = ToBytes("{");
  EXPECT_EQ(PartFromItem(broken).status().code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// The key test: nothing hidden is in the package

interop::Coding Loinc(const std::string& code, const std::string& display) {
  return {"http://loinc.org", code, display};
}

interop::ClinicalDocument PatientDocument() {
  interop::ClinicalDocument doc;
  doc.source_format = interop::Format::kCcda;
  doc.header.id = "2.16.840.1.113883.19.5^frobnitz-77";
  doc.header.title = "Discharge Summary Frobnitz";
  doc.header.type = Loinc("34133-9", "Summary of episode note");
  doc.header.time = "2026-03-01T10:00:00Z";
  doc.header.authors.push_back({"npi-1", "Dr Hortensia Quillfeather", "Mercy Clinic Xanadu", ""});
  doc.has_patient = true;
  doc.patient.id = "Patient/p-4711-zq";
  doc.patient.names.push_back({{"Zebulon", "Ignatius"}, "Quixotefield", "official"});
  doc.patient.birth_date = "1970-04-02";
  doc.patient.gender = "male";
  doc.patient.identifiers.push_back({"http://hl7.org/fhir/sid/us-ssn", "987-65-4329", "SS"});
  doc.patient.identifiers.push_back({"http://example.org/insurer", "INSURANCE-7731-QX", "SB"});
  doc.patient.addresses.push_back({{"12 Wobblestone Lane"}, "Gnarlsburg", "", "", "", "home"});
  doc.patient.telecoms.push_back({"phone", "+1-555-0199-77", "mobile"});

  interop::Entry allergy;
  allergy.kind = interop::EntryKind::kAllergy;
  allergy.id = "allergy-1";
  allergy.code = {"http://snomed.info/sct", "ZX-91935009", "Peanut-Xyzzy allergy"};
  allergy.reactions.push_back({"http://snomed.info/sct", "247472004", "Hives-Plugh"});
  doc.entries.push_back(allergy);

  interop::Entry problem;
  problem.kind = interop::EntryKind::kProblem;
  problem.id = "problem-1";
  problem.code = {"http://snomed.info/sct", "ZX-44054006", "Quuxitis mellitus"};
  problem.status = "active";
  doc.entries.push_back(problem);

  interop::Entry bp;
  bp.kind = interop::EntryKind::kVitalSign;
  bp.id = "vitals-bp-1";
  bp.category = "vital-signs";
  bp.status = "final";
  bp.start = "2026-03-01T09:30:00Z";
  bp.code = Loinc("85354-9", "Blood pressure panel");
  bp.components.push_back({Loinc("8480-6", "Systolic blood pressure"),
                           interop::Quantity{"137", "mm[Hg]"}, std::nullopt, ""});
  bp.components.push_back({Loinc("8462-4", "Diastolic blood pressure"),
                           interop::Quantity{"86", "mm[Hg]"}, std::nullopt, ""});
  doc.entries.push_back(bp);

  interop::Entry pulse;
  pulse.kind = interop::EntryKind::kVitalSign;
  pulse.id = "vitals-hr-1";
  pulse.category = "vital-signs";
  pulse.code = Loinc("8867-4", "Heart rate");
  pulse.quantity = interop::Quantity{"72", "/min"};
  doc.entries.push_back(pulse);

  interop::Entry weight;
  weight.kind = interop::EntryKind::kVitalSign;
  weight.id = "vitals-weight-1";
  weight.category = "vital-signs";
  weight.code = Loinc("29463-7", "Body weight");
  weight.quantity = interop::Quantity{"83.7", "kg"};
  doc.entries.push_back(weight);

  interop::Entry note;
  note.kind = interop::EntryKind::kNote;
  note.id = "note-1";
  note.text = "Patient Zebulon reports Quuxitis flare";
  doc.entries.push_back(note);
  return doc;
}

// What the patient did not choose to share.
std::vector<std::string> HiddenValues(const interop::ClinicalDocument& doc,
                                      const std::string& key) {
  return {
      "987-65-4329",        // SSN
      "INSURANCE-7731-QX",  // insurance number
      "Zebulon",            // given names
      "Ignatius",
      "Quixotefield",  // family name
      "ZX-91935009",   // allergen code and display, reaction
      "Peanut-Xyzzy",
      "Hives-Plugh",
      "ZX-44054006",  // problem code and display
      "Quuxitis",
      "83.7",                        // a body measure (not under physical-signs)
      "Discharge Summary Frobnitz",  // document header title, author, custodian
      "Quillfeather",
      "Xanadu",
      doc.patient.id,  // patient id
      "1970-04-02",    // birth date
      "Wobblestone",   // address, telecom
      "555-0199",
      "health-status/allergies/" + key,  // paths of segments left out
      "health-status/problems/" + key,
      "body-measures/vital-signs/" + key,
      "personal-information/identity/" + key,
      "doctor-description/notes/" + key,
      "source-documents/" + key,
      "health-status",
      "personal-information",
      "allerg",
      "problem",
      "entry_count",
  };
}

void ExpectNoneIn(ByteView bytes, const std::vector<std::string>& hidden, const char* what) {
  for (const std::string& h : hidden) {
    EXPECT_FALSE(Contains(bytes, h)) << what << " contains \"" << h << "\"";
  }
}

TEST(ShareOnlyChosenTest, PhysicalSignsWithNamesMasked) {
  const interop::ClinicalDocument doc = PatientDocument();
  const std::string key = interop::DocumentKey(doc, "");
  auto selection = Selection::Create({"physical-signs/**"});
  auto masker = FieldMasker::Create({{"given_name"}, {"family_name"}});
  ASSERT_TRUE(selection.ok() && masker.ok());
  auto parts = SplitForSharing(doc, *selection, *masker);
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  ASSERT_EQ(parts->size(), 1u);
  std::vector<PackageItem> items;
  for (interop::SegmentPart& p : *parts) {
    p.version = 1;
    auto item = ItemFromPart(p);
    ASSERT_TRUE(item.ok());
    items.push_back(*item);
  }

  const Bytes plain = Build(items, Options());
  const Sealed sealed = BuildSealed(items);
  auto decrypted = UnsealSharePackage(sealed.bytes, sealed.keys.secret_key);
  ASSERT_TRUE(decrypted.ok()) << decrypted.status().ToString();

  const std::vector<std::string> hidden = HiddenValues(doc, key);
  const std::vector<std::string> chosen = {"physical-signs/vital-signs/" + key,
                                           "8480-6",
                                           "Systolic blood pressure",
                                           "\"value\":\"137\"",
                                           "mm[Hg]",
                                           "8867-4",
                                           "\"value\":\"72\"",
                                           "2026-03-01T09:30:00Z"};
  for (const auto& [bytes, what] : {std::pair<ByteView, const char*>{plain, "plain package"},
                                    {*decrypted, "decrypted package"}}) {
    ExpectNoneIn(bytes, hidden, what);
    for (const std::string& c : chosen) {
      EXPECT_TRUE(Contains(bytes, c)) << what << " lacks \"" << c << "\"";
    }
  }
  ExpectNoneIn(sealed.bytes, chosen, "sealed package");

  // And what arrives joins into a document of exactly the chosen entries.
  for (const auto& [bytes, open] : {std::pair<ByteView, OpenOptions>{plain, OpenOptions()},
                                    {sealed.bytes, WithKey(sealed.keys.secret_key)}}) {
    auto pkg = OpenSharePackage(bytes, open);
    ASSERT_TRUE(pkg.ok()) << pkg.status().ToString();
    std::vector<interop::SegmentPart> received;
    for (const PackageItem& item : pkg->items) {
      auto part = PartFromItem(item);
      ASSERT_TRUE(part.ok());
      received.push_back(*part);
    }
    auto joined = JoinParts(received);
    ASSERT_TRUE(joined.ok()) << joined.status().ToString();
    EXPECT_FALSE(joined->has_patient);
    ASSERT_EQ(joined->entries.size(), 2u);
    EXPECT_EQ(joined->entries[0], doc.entries[2]);
    EXPECT_EQ(joined->entries[1], doc.entries[3]);
  }
}

TEST(ShareOnlyChosenTest, IdentityWithEveryIdentifyingFieldMasked) {
  const interop::ClinicalDocument doc = PatientDocument();
  const std::string key = interop::DocumentKey(doc, "");
  auto selection = Selection::Create({"physical-signs/**", "personal-information/**"});
  auto masker = FieldMasker::Create({{"given_name"},
                                     {"family_name"},
                                     {"birth_date"},
                                     {"identifier"},
                                     {"insurance_number", FieldAction::kHide},
                                     {"address", FieldAction::kHide},
                                     {"telecom"}});
  ASSERT_TRUE(selection.ok() && masker.ok());
  auto parts = SplitForSharing(doc, *selection, *masker);
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  ASSERT_EQ(parts->size(), 2u);
  std::vector<PackageItem> items;
  for (interop::SegmentPart& p : *parts) {
    p.version = 2;
    auto item = ItemFromPart(p);
    ASSERT_TRUE(item.ok());
    items.push_back(*item);
  }
  const Bytes plain = Build(items, Options("identity masked"));
  const Sealed sealed = BuildSealed(items);
  auto decrypted = UnsealSharePackage(sealed.bytes, sealed.keys.secret_key);
  ASSERT_TRUE(decrypted.ok());

  std::vector<std::string> hidden = HiddenValues(doc, key);
  // The identity segment is chosen now: its path and the patient id may appear.
  std::erase(hidden, "personal-information/identity/" + key);
  std::erase(hidden, "personal-information");
  std::erase(hidden, doc.patient.id);
  for (const auto& [bytes, what] : {std::pair<ByteView, const char*>{plain, "plain package"},
                                    {*decrypted, "decrypted package"}}) {
    ExpectNoneIn(bytes, hidden, what);
    for (const std::string& c :
         {"personal-information/identity/" + key, std::string("\"type\":\"SS\""),
          std::string("[masked]"), std::string("mobile"), std::string("8480-6")}) {
      EXPECT_TRUE(Contains(bytes, c)) << what << " lacks \"" << c << "\"";
    }
  }
  auto pkg = OpenSharePackage(plain);
  ASSERT_TRUE(pkg.ok());
  std::vector<interop::SegmentPart> received;
  for (const PackageItem& item : pkg->items) {
    received.push_back(*PartFromItem(item));
  }
  auto joined = JoinParts(received);
  ASSERT_TRUE(joined.ok()) << joined.status().ToString();
  ASSERT_TRUE(joined->has_patient);
  EXPECT_EQ(joined->patient.gender, "male");
  ASSERT_EQ(joined->patient.identifiers.size(), 1u);
  EXPECT_EQ(joined->patient.identifiers[0].type, "SS");
  EXPECT_EQ(joined->patient.identifiers[0].value, "[masked]");
  EXPECT_TRUE(joined->patient.addresses.empty());
  EXPECT_EQ(joined->patient.telecoms[0].value, "[masked]");
}

}  // namespace
}  // namespace medvault::engine
