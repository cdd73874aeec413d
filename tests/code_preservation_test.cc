// Issue 15: no clinically meaningful code is lost between a vendor's C-CDA
// document and our exports. For every document of the shared corpus the
// reader accepts, the (code system, code) pairs the source states inside its
// entries (every element with a code and a code system, translations
// included, statuses and the act codes that only give C-CDA its structure
// left out) are looked for in our FHIR export and in our C-CDA export of
// what we read. This is an automatic check over the whole corpus, not a list
// of expected codes per file.
//
// Not every cause of loss is fixed yet (issue 15): the test holds the share
// of pairs kept to at least what it is today, so that it can only go up, and
// prints the figure and what is still lost most often, by element and
// section (MEDVAULT_LOST_CODES=1 lists every pair lost, with its document).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "interop/interop.h"

namespace medvault::interop {
namespace {

namespace fs = std::filesystem;
using CodeSet = std::set<std::pair<std::string, std::string>>;  // (system URI, code)

// The floor: the shares the exports keep today (2026-12-08: organizers as
// panels, statements of sections without a kind, sites, methods and
// reasons kept: FHIR 0.7702, C-CDA 0.8161; before: 0.6278, 0.6810). Raise
// them as causes are fixed.
constexpr double kFhirFloor = 0.77;
constexpr double kCcdaFloor = 0.81;

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The value of attribute `name` in a start tag's attribute text, "" when absent.
std::string AttrOf(std::string_view attrs, std::string_view name) {
  size_t pos = 0;
  while ((pos = attrs.find(name, pos)) != std::string_view::npos) {
    const bool starts = pos > 0 && (attrs[pos - 1] == ' ' || attrs[pos - 1] == '\t' ||
                                    attrs[pos - 1] == '\n' || attrs[pos - 1] == '\r');
    size_t eq = pos + name.size();
    while (eq < attrs.size() && attrs[eq] == ' ') ++eq;
    if (starts && eq < attrs.size() && attrs[eq] == '=') {
      size_t q = eq + 1;
      while (q < attrs.size() && attrs[q] == ' ') ++q;
      if (q < attrs.size() && (attrs[q] == '"' || attrs[q] == '\'')) {
        const size_t end = attrs.find(attrs[q], q + 1);
        if (end == std::string_view::npos) return {};
        return std::string(attrs.substr(q + 1, end - q - 1));
      }
    }
    pos += name.size();
  }
  return {};
}

// Codes that only give a C-CDA document its structure (the concern act, the
// "problem" and "assertion" observation codes, the status observation), and
// HL7 v3 structural code systems (act classes and statuses).
bool Structural(const std::string& system, const std::string& code) {
  static const std::set<std::string> kCodes = {"CONC", "ASSERTION", "33999-4", "55607006"};
  if (kCodes.count(code) > 0) return true;
  return system == "urn:oid:2.16.840.1.113883.5.6" ||   // ActClass
         system == "urn:oid:2.16.840.1.113883.5.14" ||  // ActStatus
         system == "urn:oid:2.16.840.1.113883.5.1001";  // ActMood
}

// The pairs a C-CDA document states inside its <entry> elements (or, with
// `everywhere`, anywhere: for our own export, which may place a code
// elsewhere than the source did).
CodeSet CcdaCodes(const std::string& xml, bool everywhere,
                  std::map<std::pair<std::string, std::string>, std::string>* tags = nullptr) {
  CodeSet out;
  int entry_depth = 0;
  std::string section;  // the code of the section being read ("" before its <code>)
  bool want_section_code = false;
  size_t pos = 0;
  while ((pos = xml.find('<', pos)) != std::string::npos) {
    if (xml.compare(pos, 4, "<!--") == 0) {
      pos = xml.find("-->", pos);
      if (pos == std::string::npos) break;
      continue;
    }
    // The tag's end: the first '>' outside a quoted attribute value.
    size_t end = pos + 1;
    char quote = 0;
    while (end < xml.size() && (quote != 0 || xml[end] != '>')) {
      if (quote == 0 && (xml[end] == '"' || xml[end] == '\'')) {
        quote = xml[end];
      } else if (quote != 0 && xml[end] == quote) {
        quote = 0;
      }
      ++end;
    }
    if (end >= xml.size()) break;
    std::string_view tag(xml.data() + pos + 1, end - pos - 1);
    pos = end + 1;
    if (tag.empty() || tag[0] == '?' || tag[0] == '!') continue;
    const bool closing = tag[0] == '/';
    if (closing) tag.remove_prefix(1);
    const size_t name_end = tag.find_first_of(" \t\r\n/");
    std::string_view name = tag.substr(0, name_end);
    if (const size_t colon = name.find(':'); colon != std::string_view::npos) {
      name.remove_prefix(colon + 1);
    }
    const std::string_view attrs =
        name_end == std::string_view::npos ? std::string_view() : tag.substr(name_end);
    const bool self_closing = !tag.empty() && tag.back() == '/';
    if (name == "section" && !closing) {
      want_section_code = true;
      section.clear();
      continue;
    }
    if (want_section_code && name == "code" && !closing) {
      want_section_code = false;
      section = AttrOf(attrs, "code");
      continue;
    }
    if (name == "entry") {
      if (closing) {
        entry_depth = std::max(0, entry_depth - 1);
      } else if (!self_closing) {
        ++entry_depth;
      }
      continue;
    }
    if (closing || (!everywhere && entry_depth == 0) || name == "statusCode" ||
        name == "templateId") {
      continue;
    }
    const std::string code = AttrOf(attrs, "code");
    const std::string system = AttrOf(attrs, "codeSystem");
    if (code.empty() || system.empty()) continue;
    const std::string uri = CodeSystemUri(system);
    if (Structural(uri, code) || Structural("urn:oid:" + system, code)) continue;
    out.emplace(uri, code);
    if (tags != nullptr) (*tags)[{uri, code}] = std::string(name) + " in section " + section;
  }
  return out;
}

void CollectFhirCodes(const nlohmann::json& j, CodeSet& out) {
  if (j.is_object()) {
    const auto s = j.find("system");
    const auto c = j.find("code");
    if (s != j.end() && c != j.end() && s->is_string() && c->is_string()) {
      std::string system = s->get<std::string>();
      if (system.rfind("urn:oid:", 0) == 0) system = CodeSystemUri(system.substr(8));
      out.emplace(system, c->get<std::string>());
    }
    for (const auto& [key, value] : j.items()) CollectFhirCodes(value, out);
  } else if (j.is_array()) {
    for (const auto& v : j) CollectFhirCodes(v, out);
  }
}

struct Tally {
  size_t source = 0;
  size_t in_fhir = 0;
  size_t in_ccda = 0;
  std::map<std::string, size_t> lost_by_system;
  std::map<std::string, size_t> lost_by_element;  // source element; which export lost it
};

TEST(CodePreservation, SharedCcdaCorpusCodesReachBothExports) {
  const fs::path dir = fs::path(MEDVAULT_SHARED_TESTDATA_DIR) / "ccda";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) GTEST_SKIP() << "shared test data not found at " << dir;
  Tally t;
  size_t documents = 0;
  for (const auto& f : fs::recursive_directory_iterator(dir, ec)) {
    if (!f.is_regular_file() || f.path().extension() != ".xml") continue;
    const std::string xml = ReadAll(f.path());
    Result<ClinicalDocument> doc = ParseCcda(xml);
    if (!doc.ok()) continue;  // refused documents are the reader's tests' business
    SCOPED_TRACE(f.path().filename().string());
    ++documents;
    Result<std::string> fhir = WriteFhirBundle(*doc);
    ASSERT_TRUE(fhir.ok()) << fhir.status().ToString();
    Result<std::string> ccda = WriteCcda(*doc);
    ASSERT_TRUE(ccda.ok()) << ccda.status().ToString();
    CodeSet fhir_codes;
    CollectFhirCodes(nlohmann::json::parse(*fhir), fhir_codes);
    const CodeSet ccda_codes = CcdaCodes(*ccda, /*everywhere=*/true);
    std::map<std::pair<std::string, std::string>, std::string> tags;
    for (const auto& pair : CcdaCodes(xml, /*everywhere=*/false, &tags)) {
      ++t.source;
      const bool in_fhir = fhir_codes.count(pair) > 0;
      const bool in_ccda = ccda_codes.count(pair) > 0;
      t.in_fhir += in_fhir ? 1 : 0;
      t.in_ccda += in_ccda ? 1 : 0;
      if (!in_fhir || !in_ccda) {
        ++t.lost_by_system[pair.first];
        ++t.lost_by_element[tags[pair] + (in_fhir ? " (C-CDA)" : in_ccda ? " (FHIR)" : "")];
        if (std::getenv("MEDVAULT_LOST_CODES") != nullptr) {
          std::printf("  lost: <%s> %s|%s in %s\n", tags[pair].c_str(), pair.first.c_str(),
                      pair.second.c_str(), f.path().filename().string().c_str());
        }
      }
    }
  }
  ASSERT_GE(documents, 40u);
  ASSERT_GT(t.source, 1000u) << "the extraction found almost no codes: it is broken";
  const double fhir_share = static_cast<double>(t.in_fhir) / static_cast<double>(t.source);
  const double ccda_share = static_cast<double>(t.in_ccda) / static_cast<double>(t.source);
  std::string lost;
  std::vector<std::pair<size_t, std::string>> by_count;
  for (const auto& [system, n] : t.lost_by_system) by_count.emplace_back(n, system);
  std::sort(by_count.rbegin(), by_count.rend());
  for (size_t i = 0; i < by_count.size() && i < 6; ++i) {
    lost += " " + by_count[i].second + "=" + std::to_string(by_count[i].first);
  }
  for (const auto& [element, n] : t.lost_by_element) {
    std::printf("  lost from <%s>: %zu\n", element.c_str(), n);
  }
  std::printf(
      "codes: %zu documents, %zu distinct (system, code) pairs per document summed; "
      "kept in FHIR %.4f, in C-CDA %.4f; lost most in:%s\n",
      documents, t.source, fhir_share, ccda_share, lost.c_str());
  // At least the floor (the top of this file); it must reach 1.0.
  EXPECT_GE(fhir_share, kFhirFloor);
  EXPECT_GE(ccda_share, kCcdaFloor);
}

// Issue 15: every resource of an imported FHIR bundle is exported back, as a
// resource of the same type. Over the shared Synthea bundles and FHIR
// examples: the resources of each type in the source against our export of
// what we read (the patient and the composition, which become the model's
// header, apart). Prints the share kept per type. The types the model keeps
// as another type are named in kRetyped (issue 15 lists them); every other
// type must be kept one for one.
TEST(ResourcePreservation, EveryResourceOfABundleIsExportedBackAsItsType) {
  const fs::path root(MEDVAULT_SHARED_TESTDATA_DIR);
  std::error_code ec;
  if (!fs::is_directory(root / "synthea", ec)) GTEST_SKIP() << "shared test data not found";
  std::map<std::string, std::pair<size_t, size_t>> per_type;  // type -> (source, exported)
  size_t bundles = 0;
  for (const fs::path& dir : {root / "synthea" / "fhir-r4-bundles", root / "fhir-r4"}) {
    for (const auto& f : fs::recursive_directory_iterator(dir, ec)) {
      if (!f.is_regular_file() || f.path().extension() != ".json") continue;
      const std::string bytes = ReadAll(f.path());
      const nlohmann::json source = nlohmann::json::parse(bytes, nullptr, false);
      if (!source.is_object() || source.value("resourceType", "") != "Bundle" ||
          !source.contains("entry") || !source["entry"].is_array()) {
        continue;
      }
      Result<ClinicalDocument> doc = ParseFhir(bytes);
      if (!doc.ok()) continue;
      Result<std::string> out = WriteFhirBundle(*doc);
      ASSERT_TRUE(out.ok()) << f.path() << ": " << out.status().ToString();
      ++bundles;
      std::map<std::string, size_t> in, back;
      for (const nlohmann::json& e : source["entry"]) {
        if (e.contains("resource") && e["resource"].is_object()) {
          ++in[e["resource"].value("resourceType", "")];
        }
      }
      const nlohmann::json exported = nlohmann::json::parse(*out);
      for (const nlohmann::json& e : exported["entry"]) {
        ++back[e["resource"].value("resourceType", "")];
      }
      for (const auto& [type, n] : in) {
        // The header's resources, and messaging that is no one's health data.
        if (type == "Patient" || type == "Composition" || type == "Bundle" ||
            type == "MessageHeader" || type == "OperationOutcome" || type == "Parameters") {
          continue;
        }
        per_type[type].first += n;
        per_type[type].second += std::min(n, back[type]);
      }
    }
  }
  ASSERT_GE(bundles, 20u);
  // Kept, but as another resource type (none today).
  const std::set<std::string> kRetyped = {};
  size_t total = 0, kept = 0;
  for (const auto& [type, counts] : per_type) {
    total += counts.first;
    kept += counts.second;
    std::printf("  %-28s %5zu of %5zu\n", type.c_str(), counts.second, counts.first);
    if (kRetyped.count(type) == 0) {
      EXPECT_EQ(counts.second, counts.first) << type;
    }
  }
  std::printf("resources: %zu bundles, %zu of %zu exported back as their type (%.4f)\n", bundles,
              kept, total, static_cast<double>(kept) / static_cast<double>(total));
}

}  // namespace
}  // namespace medvault::interop
