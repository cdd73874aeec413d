// The scrub report as JSON, and the atomic file write used to publish it.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "common/file_util.h"
#include "common/ids.h"
#include "integrity/integrity.h"

namespace medvault::integrity {
namespace {

constexpr std::array<std::string_view, 8> kKinds = {
    kMissing,       kChanged,        kSwapped,         kRolledBack,
    kUndecryptable, kMissingVersion, kUnloggedVersion, kOrphan};

}  // namespace

bool IsDamage(const Finding& finding) { return finding.kind != kOrphan; }

std::string ReportJson(const ScrubReport& report) {
  nlohmann::ordered_json counts = nlohmann::ordered_json::object();
  for (std::string_view kind : kKinds) {
    counts[std::string(kind)] = 0;
  }
  nlohmann::ordered_json findings = nlohmann::ordered_json::array();
  for (const Finding& f : report.findings) {
    if (counts.contains(f.kind)) {
      counts[f.kind] = counts[f.kind].get<uint64_t>() + 1;
    } else {
      counts[f.kind] = 1;
    }
    nlohmann::ordered_json j;
    j["kind"] = f.kind;
    j["severity"] = IsDamage(f) ? "damage" : "info";
    j["patient_id"] = f.patient_id;
    j["path"] = f.path;
    j["version"] = f.version;
    j["object_key"] = f.object_key;
    j["detail"] = f.detail;
    findings.push_back(std::move(j));
  }
  nlohmann::ordered_json j;
  j["format"] = "medvault-scrub-report/1";
  j["mode"] = report.deep ? "deep" : "fast";
  j["completed"] = report.completed;
  j["error"] = report.error;
  j["started_at"] = FormatRfc3339Millis(report.started_at_ms);
  j["finished_at"] = FormatRfc3339Millis(report.finished_at_ms);
  j["started_at_ms"] = report.started_at_ms;
  j["finished_at_ms"] = report.finished_at_ms;
  j["duration_ms"] = report.finished_at_ms - report.started_at_ms;
  j["versions_checked"] = report.versions_checked;
  j["versions_skipped"] = report.versions_skipped;
  j["writes_logged"] = report.writes_logged;
  j["objects_checked"] = report.objects_checked;
  j["bytes_checked"] = report.bytes_checked;
  j["orphans_reclaimed"] = report.orphans_reclaimed;
  j["findings_count"] = report.findings.size();
  j["damage_count"] = std::count_if(report.findings.begin(), report.findings.end(), IsDamage);
  j["counts"] = std::move(counts);
  j["findings"] = std::move(findings);
  // Replace invalid UTF-8 rather than throw: every field is ASCII in practice.
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents) {
  return ::medvault::WriteFileAtomically(path, AsBytes(contents), 0600);
}

}  // namespace medvault::integrity
