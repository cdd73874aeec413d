// Internal to src/app: the one command layer of `medvault` (issue 14, part 7).
//
// Every command declares its flags and its help once (CommandSpec) and runs
// its body through RunCommand, which gives all of them the same behaviour:
//   --help / -h       the usage on stdout, exit 0;
//   a usage error     (unknown flag, missing value, value on a switch,
//                     unexpected argument, or Command::UsageError from the
//                     body): the usage on stderr, then "medvault: <reason>",
//                     exit 2;
//   settings          defaults < file < environment < flags (config.cc),
//                     loaded before the body runs; an error is "medvault:
//                     <reason>", exit 2 for invalid values, else 1;
//   other failures    Command::Fail: "medvault: <reason>", exit 2 for
//                     InvalidArgument, else 1.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "app/app.h"
#include "app/cli_internal.h"
#include "app/config.h"
#include "common/status.h"

namespace medvault::app {

// Which flags of a command are settings of config.cc.
enum class SettingFlags {
  kNone,  // no settings are loaded (the command has no data directory)
  kData,  // --data and --config choose the directory and file; other flags are the command's
  kAll,   // every flag is a setting (--key-with-dashes for key_with_dashes)
};

struct CommandSpec {
  std::string_view usage;
  std::vector<std::string> values;    // flags that take a value, without the dashes
  std::vector<std::string> switches;  // flags without a value
  bool positional = false;            // non-flag arguments allowed
  SettingFlags settings = SettingFlags::kData;
  int first = 2;  // argv index of the first flag: 3 for "medvault NOUN VERB --flag"
};

// What a command's body sees: its parsed flags and the settings.
class Command {
 public:
  Command(const CommandSpec& spec, ParsedArgs args, Config config)
      : spec_(spec), args_(std::move(args)), config_(std::move(config)) {}

  // Defaults when the spec's settings are kNone.
  const Config& config() const { return config_; }
  const ParsedArgs& args() const { return args_; }
  bool Switch(std::string_view name) const;
  // The flag's value; "" when it was not given.
  std::string Value(std::string_view name) const;
  bool Has(std::string_view name) const;
  const std::vector<std::string>& positional() const { return args_.positional; }

  // A usage error the body found (a required flag missing, a malformed
  // value): the usage on stderr, then the message. Returns 2.
  int UsageError(std::string_view message) const;
  // Prints "medvault: <message>"; returns 2 for InvalidArgument, else 1.
  int Fail(const Status& st) const { return app::Fail(st); }
  // OpenRuntime(config()).
  Result<std::unique_ptr<Runtime>> OpenRuntime() const { return app::OpenRuntime(config_); }

 private:
  const CommandSpec& spec_;
  ParsedArgs args_;
  Config config_;
};

// Parses argv[spec.first..] by `spec`, answers --help and usage errors,
// loads the settings, then returns body(command).
int RunCommand(const CommandSpec& spec, int argc, char** argv,
               const std::function<int(const Command&)>& body);

// The flags of every setting of config.cc (--key-with-dashes), for commands
// whose settings are kAll.
std::vector<std::string> SettingFlagNames();

}  // namespace medvault::app
