// Runs the real medvault binary as a user would (shared by the CLI tests).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace medvault::testing {

struct RunResult {
  int exit_code;
  std::string output;  // stdout and stderr
};

inline RunResult RunMedvault(const std::string& args, const std::string& env = "") {
  const std::string cmd = env + " " + std::string(MEDVAULT_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  RunResult r{-1, ""};
  if (p == nullptr) {
    return r;
  }
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) {
    r.output.append(buf.data(), n);
  }
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace medvault::testing
