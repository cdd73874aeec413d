// The scrub report as JSON, and the atomic file write used to publish it.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "common/ids.h"
#include "integrity/integrity.h"

namespace medvault::integrity {
namespace {

constexpr std::array<std::string_view, 6> kKinds = {kMissing,    kChanged,       kSwapped,
                                                    kRolledBack, kUndecryptable, kOrphan};

std::string ErrnoText(int err) { return std::strerror(err); }

int FsyncFd(int fd) {
  int rc;
  do {
    rc = ::fsync(fd);
  } while (rc != 0 && errno == EINTR);
  return rc == 0 ? 0 : errno;
}

}  // namespace

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
  j["objects_checked"] = report.objects_checked;
  j["bytes_checked"] = report.bytes_checked;
  j["findings_count"] = report.findings.size();
  j["counts"] = std::move(counts);
  j["findings"] = std::move(findings);
  // Replace invalid UTF-8 rather than throw: every field is ASCII in practice.
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents) {
  if (path.filename().empty()) {
    return Status::InvalidArgument("report path names no file");
  }
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  const std::filesystem::path tmp =
      dir / ("." + path.filename().string() + "." + NewRandomId() + ".tmp");
  int fd;
  do {
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    return Status::IOError("cannot create temp file for the scrub report: " + ErrnoText(errno));
  }
  auto fail = [&](std::string what, int err) {
    if (fd >= 0) {
      ::close(fd);
    }
    ::unlink(tmp.c_str());
    return Status::IOError(what + ": " + ErrnoText(err));
  };
  const char* p = contents.data();
  size_t left = contents.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail("write of the scrub report failed", errno);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (const int err = FsyncFd(fd); err != 0) {
    return fail("fsync of the scrub report failed", err);
  }
  const int rc = ::close(fd);
  fd = -1;
  if (rc != 0) {
    return fail("close of the scrub report failed", errno);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail("rename of the scrub report failed", errno);
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    return Status::IOError("cannot open the scrub report's directory: " + ErrnoText(errno));
  }
  const int err = FsyncFd(dfd);
  ::close(dfd);
  if (err != 0) {
    return Status::IOError("fsync of the scrub report's directory failed: " + ErrnoText(err));
  }
  return Status::Ok();
}

}  // namespace medvault::integrity
