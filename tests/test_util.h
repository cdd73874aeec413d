// Helpers shared by tests: temporary directories and file scanning.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace medvault::testing {

// A fresh directory under $TMPDIR, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "medvault-test-XXXXXX").string();
    char* made = mkdtemp(tmpl.data());
    if (made == nullptr) {
      ADD_FAILURE() << "mkdtemp failed";
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline std::string ReadFileBytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteFileBytes(const std::filesystem::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}

// What `produce` returns, computed in a child process: for reading files
// that may be SQLite databases (or their -wal, -shm) this process has open,
// where opening and closing a descriptor here would drop this process's
// POSIX locks on them (issue 13). `what` names the work in a failure.
inline std::string InChildProcess(const std::function<std::string()>& produce,
                                  const std::string& what) {
  int fds[2];
  if (::pipe(fds) != 0) {
    ADD_FAILURE() << "pipe failed";
    return {};
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    const std::string data = produce();
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::write(fds[1], data.data() + done, data.size() - done);
      if (n <= 0) {
        _exit(1);
      }
      done += static_cast<size_t>(n);
    }
    _exit(0);
  }
  ::close(fds[1]);
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) {
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    ADD_FAILURE() << what << " in a child process failed";
  }
  return out;
}

// The bytes of `p`, read in a child process (see InChildProcess).
inline std::string ReadFileBytesInChild(const std::filesystem::path& p) {
  return InChildProcess([&p] { return ReadFileBytes(p); }, "reading " + p.string());
}

// Every regular file under `root` whose bytes contain `needle`, read in a
// child process (the directory may hold databases this process has open).
inline std::vector<std::string> FilesContaining(const std::filesystem::path& root,
                                                const std::string& needle) {
  const std::string text = InChildProcess(
      [&] {
        std::string out;
        for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
          if (entry.is_regular_file() &&
              ReadFileBytes(entry.path()).find(needle) != std::string::npos) {
            out += entry.path().string() + "\n";
          }
        }
        return out;
      },
      "scanning " + root.string());
  std::vector<std::string> hits;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    hits.push_back(line);
  }
  return hits;
}

}  // namespace medvault::testing
