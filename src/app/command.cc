// The command layer of `medvault` (command.h).
#include "app/command.h"

#include <algorithm>
#include <iostream>

namespace medvault::app {

bool Command::Switch(std::string_view name) const {
  return std::find(args_.switches.begin(), args_.switches.end(), name) != args_.switches.end();
}

std::string Command::Value(std::string_view name) const {
  auto it = args_.values.find(std::string(name));
  return it == args_.values.end() ? std::string() : it->second;
}

bool Command::Has(std::string_view name) const { return args_.values.count(std::string(name)) > 0; }

int Command::UsageError(std::string_view message) const {
  std::cerr << spec_.usage;
  return app::Fail(Status::InvalidArgument(std::string(message)));
}

std::vector<std::string> SettingFlagNames() {
  std::vector<std::string> flags;
  for (const SettingDef& setting : Settings()) {
    std::string flag(setting.key);
    std::replace(flag.begin(), flag.end(), '_', '-');
    flags.push_back(std::move(flag));
  }
  return flags;
}

int RunCommand(const CommandSpec& spec, int argc, char** argv,
               const std::function<int(const Command&)>& body) {
  auto args = ParseArgs(argc, argv, spec.first, spec.values, spec.switches, spec.positional);
  if (!args.ok()) {
    std::cerr << spec.usage;
    return Fail(args.status());
  }
  if (args->help) {
    std::cout << spec.usage;
    return 0;
  }
  Config config;
  if (spec.settings != SettingFlags::kNone) {
    auto loaded = spec.settings == SettingFlags::kAll ? LoadConfig(*args) : LoadDataConfig(*args);
    if (!loaded.ok()) {
      return Fail(loaded.status());
    }
    config = std::move(loaded).value();
  }
  return body(Command(spec, std::move(args).value(), std::move(config)));
}

}  // namespace medvault::app
