// The command layer (src/app/command.h): the same --help, usage errors and
// settings layering for every command, in process.
#include "app/command.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>
#include <vector>

namespace medvault::app {
namespace {

constexpr std::string_view kUsage = "usage: medvault thing [--data DIR] [--name N] [--force]\n";

// argv for "medvault thing ARGS...".
class Argv {
 public:
  explicit Argv(std::vector<std::string> args) : strings_(std::move(args)) {
    strings_.insert(strings_.begin(), {"medvault", "thing"});
    for (std::string& s : strings_) {
      pointers_.push_back(s.data());
    }
  }
  int argc() const { return static_cast<int>(pointers_.size()); }
  char** argv() { return pointers_.data(); }

 private:
  std::vector<std::string> strings_;
  std::vector<char*> pointers_;
};

struct Outcome {
  int code = -1;
  bool ran = false;
  std::string out;
  std::string err;
};

Outcome RunIt(
    const CommandSpec& spec, std::vector<std::string> args,
    const std::function<int(const Command&)>& body = [](const Command&) { return 0; }) {
  Argv argv(std::move(args));
  Outcome o;
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  o.code = RunCommand(spec, argv.argc(), argv.argv(), [&](const Command& c) {
    o.ran = true;
    return body(c);
  });
  o.out = ::testing::internal::GetCapturedStdout();
  o.err = ::testing::internal::GetCapturedStderr();
  return o;
}

CommandSpec Spec(SettingFlags settings = SettingFlags::kData) {
  CommandSpec s;
  s.usage = kUsage;
  s.values = {"data", "config", "name"};
  s.switches = {"force"};
  s.settings = settings;
  return s;
}

class CommandTest : public ::testing::Test {
 protected:
  void SetUp() override { unsetenv("MEDVAULT_DATA"); }
  void TearDown() override { unsetenv("MEDVAULT_DATA"); }
};

TEST_F(CommandTest, HelpPrintsTheUsageAndRunsNothing) {
  for (const char* flag : {"--help", "-h"}) {
    const Outcome o = RunIt(Spec(), {"--name", "x", flag});
    EXPECT_EQ(o.code, 0) << flag;
    EXPECT_FALSE(o.ran);
    EXPECT_EQ(o.out, kUsage);
    EXPECT_EQ(o.err, "");
  }
}

TEST_F(CommandTest, UsageErrorsExitTwoWithTheUsage) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--nmae", "x"}, "medvault: unknown option --nmae\n"},
      {{"--name"}, "medvault: --name needs a value\n"},
      {{"--force=yes"}, "medvault: --force takes no value\n"},
      {{"stray"}, "medvault: unexpected argument 'stray'\n"},
  };
  for (const auto& [args, message] : cases) {
    const Outcome o = RunIt(Spec(), args);
    EXPECT_EQ(o.code, 2) << message;
    EXPECT_FALSE(o.ran) << message;
    EXPECT_EQ(o.out, "");
    EXPECT_EQ(o.err, std::string(kUsage) + message);
  }
}

TEST_F(CommandTest, TheBodySeesFlagsSwitchesAndPositionals) {
  CommandSpec spec = Spec();
  spec.positional = true;
  const Outcome o = RunIt(spec, {"a.xml", "--name=n1", "--force", "b.json"}, [](const Command& c) {
    EXPECT_EQ(c.Value("name"), "n1");
    EXPECT_TRUE(c.Has("name"));
    EXPECT_FALSE(c.Has("data"));
    EXPECT_EQ(c.Value("data"), "");
    EXPECT_TRUE(c.Switch("force"));
    EXPECT_EQ(c.positional(), (std::vector<std::string>{"a.xml", "b.json"}));
    return 7;
  });
  EXPECT_TRUE(o.ran);
  EXPECT_EQ(o.code, 7);
}

TEST_F(CommandTest, UsageErrorFromTheBody) {
  const Outcome o =
      RunIt(Spec(), {}, [](const Command& c) { return c.UsageError("--name is required"); });
  EXPECT_EQ(o.code, 2);
  EXPECT_EQ(o.err, std::string(kUsage) + "medvault: --name is required\n");
}

TEST_F(CommandTest, DataSettingsLayerFlagsOverEnvironmentOverDefaults) {
  const Outcome defaults = RunIt(Spec(), {}, [](const Command& c) {
    EXPECT_EQ(c.config().data_dir, Config().data_dir);
    return 0;
  });
  EXPECT_TRUE(defaults.ran);
  setenv("MEDVAULT_DATA", "/tmp/from-env", 1);
  RunIt(Spec(), {"--name", "x"}, [](const Command& c) {
    EXPECT_EQ(c.config().data_dir, "/tmp/from-env");
    return 0;
  });
  const Outcome flag = RunIt(Spec(), {"--data", "/tmp/from-flag"}, [](const Command& c) {
    EXPECT_EQ(c.config().data_dir, "/tmp/from-flag");
    return 0;
  });
  EXPECT_TRUE(flag.ran);
  // A command's own flag is not a setting: --name is no key of config.cc.
  EXPECT_EQ(RunIt(Spec(), {"--name", "x"}).code, 0);
}

TEST_F(CommandTest, AllFlagsAreSettingsForServeLikeCommands) {
  CommandSpec spec = Spec(SettingFlags::kAll);
  spec.values = SettingFlagNames();
  spec.values.push_back("config");
  spec.switches = {};
  const Outcome ok =
      RunIt(spec, {"--worker-threads", "3", "--data", "/tmp/d"}, [](const Command& c) {
        EXPECT_EQ(c.config().worker_threads, 3);
        EXPECT_EQ(c.config().data_dir, "/tmp/d");
        return 0;
      });
  EXPECT_TRUE(ok.ran);
  EXPECT_EQ(ok.code, 0);
  const Outcome bad = RunIt(spec, {"--worker-threads", "lots"});
  EXPECT_FALSE(bad.ran);
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("medvault: "), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("worker_threads"), std::string::npos) << bad.err;
}

TEST_F(CommandTest, NoSettingsMeansDefaultsWhateverTheEnvironment) {
  setenv("MEDVAULT_DATA", "/tmp/from-env", 1);
  const Outcome o = RunIt(Spec(SettingFlags::kNone), {"--data", "/tmp/x"}, [](const Command& c) {
    EXPECT_EQ(c.config().data_dir, Config().data_dir);
    EXPECT_EQ(c.Value("data"), "/tmp/x");
    return 0;
  });
  EXPECT_TRUE(o.ran);
}

TEST_F(CommandTest, FlagsMayStartAfterANounAndAVerb) {
  CommandSpec spec = Spec();
  spec.first = 3;
  std::vector<std::string> args = {"create", "--name", "x"};
  const Outcome o = RunIt(spec, args, [](const Command& c) {
    EXPECT_EQ(c.Value("name"), "x");
    return 0;
  });
  EXPECT_TRUE(o.ran);
  EXPECT_EQ(o.code, 0);
}

}  // namespace
}  // namespace medvault::app
