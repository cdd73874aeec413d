// Internal to src/app: command-line plumbing shared by the command files.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "app/config.h"
#include "common/status.h"

namespace medvault::app {

struct ParsedArgs {
  std::map<std::string, std::string> values;  // flag name without dashes -> value
  std::vector<std::string> switches;
  std::vector<std::string> positional;  // only when allowed
  bool help = false;
};

// Parses --key value / --key=value from argv[start]. `switch_names` take no value.
Result<ParsedArgs> ParseArgs(int argc, char** argv, int start,
                             const std::vector<std::string>& value_names,
                             const std::vector<std::string>& switch_names,
                             bool allow_positional = false);
std::string FlagToKey(std::string flag);
// Prints "medvault: message" and returns the exit code (2 for usage errors).
int Fail(const Status& st);
// Defaults < file < environment < flags.
Result<Config> LoadConfig(const ParsedArgs& args);
// The same for commands with flags of their own: only --data and --config
// are settings.
Result<Config> LoadDataConfig(const ParsedArgs& args);
// Writes a new file with mode 0600 (replacing an existing one).
Status WritePrivateFile(const std::filesystem::path& path, std::string_view content);

// institution, department, account, relationship, totp-code (admin_cli.cc).
int RunAdmin(int argc, char** argv);
// ledger, witness, scrub (ledger_cli.cc).
int RunLedgerCommands(int argc, char** argv);
// import, export (exchange_cli.cc).
int RunExchange(int argc, char** argv);

}  // namespace medvault::app
