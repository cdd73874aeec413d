// Helpers shared by the benchmarks.
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace medvault::bench {

// A fresh directory under $TMPDIR for one benchmark, removed with its content.
class BenchDir {
 public:
  BenchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "medvault-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::abort();
    }
    path_ = tmpl;
  }
  ~BenchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  BenchDir(const BenchDir&) = delete;
  BenchDir& operator=(const BenchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace medvault::bench
