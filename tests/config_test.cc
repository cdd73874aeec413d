#include "app/config.h"

#include <gtest/gtest.h>

namespace medvault::app {
namespace {

TEST(ConfigTest, ParsesListen) {
  std::string host;
  int port = 0;
  ASSERT_TRUE(ParseListen("127.0.0.1:8080", &host, &port).ok());
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 8080);
  ASSERT_TRUE(ParseListen("[::1]:9000", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_FALSE(ParseListen("127.0.0.1", &host, &port).ok());
  EXPECT_FALSE(ParseListen("127.0.0.1:0", &host, &port).ok());
  EXPECT_FALSE(ParseListen("127.0.0.1:65536", &host, &port).ok());
  EXPECT_FALSE(ParseListen(":8080", &host, &port).ok());
  EXPECT_FALSE(ParseListen("h:80x", &host, &port).ok());
}

TEST(ConfigTest, SlowClientBounds) {
  Config c;
  EXPECT_EQ(c.header_timeout_seconds, 5);
  EXPECT_EQ(c.max_connections_per_peer, 64);
  ASSERT_TRUE(ApplyConfigText(c,
                              "header_timeout_seconds = 3\nbody_timeout_seconds = 60\n"
                              "max_connections_per_peer = 32\nmax_connections = 512\n",
                              "m.conf")
                  .ok());
  EXPECT_EQ(c.header_timeout_seconds, 3);
  EXPECT_EQ(c.body_timeout_seconds, 60);
  EXPECT_EQ(c.max_connections_per_peer, 32);
  EXPECT_EQ(c.max_connections, 512);
  EXPECT_EQ(ApplyConfigText(c, "header_timeout_seconds = 0\n", "m.conf").message(),
            "m.conf:1: header_timeout_seconds must be an integer between 1 and 3600");
  EXPECT_EQ(ApplyConfigText(c, "max_connections_per_peer = x\n", "m.conf").message(),
            "m.conf:1: max_connections_per_peer must be an integer between 1 and 65536");
}

TEST(ConfigTest, FileErrorsNameFileAndLine) {
  Config c;
  Status st = ApplyConfigText(c, "# comment\nlisten = 127.0.0.1:9\nbogus = 1\n", "m.conf");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "m.conf:3: unknown setting 'bogus'");
  st = ApplyConfigText(c, "\n\nlisten 127.0.0.1:9\n", "m.conf");
  EXPECT_EQ(st.message(), "m.conf:3: expected 'key = value'");
  st = ApplyConfigText(c, "worker_threads = 1\n", "m.conf");
  EXPECT_EQ(st.message(), "m.conf:1: worker_threads must be an integer between 2 and 1024");
  st = ApplyConfigText(c, "max_attachment_bytes = lots", "m.conf");
  EXPECT_NE(st.message().find("m.conf:1: max_attachment_bytes"), std::string::npos);
  st = ApplyConfigText(c, "log_level = loud", "m.conf");
  EXPECT_FALSE(st.ok());
  st = ApplyConfigText(c, "sqlite_synchronous = off", "m.conf");
  EXPECT_FALSE(st.ok());
}

TEST(ConfigTest, PrecedenceFileThenEnvironment) {
  Config c;
  ASSERT_TRUE(ApplyConfigText(c,
                              "listen = 127.0.0.1:9001\nworker_threads = 8\n"
                              "max_json_bytes = \"2048\"  # quoted\nsqlite_synchronous = normal\n",
                              "f")
                  .ok());
  EXPECT_EQ(c.port, 9001);
  EXPECT_EQ(c.worker_threads, 8);
  EXPECT_EQ(c.max_json_bytes, 2048u);
  EXPECT_FALSE(c.sqlite_synchronous_full);
  ASSERT_TRUE(ApplyEnvironment(c, {{"MEDVAULT_LISTEN", "127.0.0.1:9002"}, {"OTHER", "x"}}).ok());
  EXPECT_EQ(c.port, 9002);
  EXPECT_EQ(c.worker_threads, 8);
  Status st = ApplyEnvironment(c, {{"MEDVAULT_WORKER_THREADS", "zero"}});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind("MEDVAULT_WORKER_THREADS: ", 0), 0u);
  EXPECT_TRUE(ApplySetting(c, "data", "/tmp/x", "--data").ok());
  EXPECT_EQ(c.data_dir, "/tmp/x");
  EXPECT_FALSE(ApplySetting(c, "data", "", "--data").ok());
}

// The settings of accounts, the ledger and the scrubber, with their errors.
TEST(ConfigTest, LedgerAndAccountSettings) {
  Config c;
  ASSERT_TRUE(ApplyConfigText(c,
                              "ledger_synchronous = normal\nwitness_quorum = 2\n"
                              "witness_keys = a+00000000+AQ, b+11111111+AQ\n"
                              "scrub_interval_minutes = 0\nargon2_memory_kib = 8\n"
                              "scrub_orphan_grace_seconds = 900\n"
                              "access_token_minutes = 5\nledger_origin = example.org/log\n",
                              "f")
                  .ok());
  EXPECT_FALSE(c.ledger_synchronous_full);
  EXPECT_EQ(c.witness_quorum, 2);
  ASSERT_EQ(c.witness_keys.size(), 2u);
  EXPECT_EQ(c.witness_keys[1], "b+11111111+AQ");
  EXPECT_EQ(c.scrub_interval_minutes, 0);
  EXPECT_EQ(c.scrub_orphan_grace_seconds, 900);
  EXPECT_EQ(Config().scrub_orphan_grace_seconds, 3600);
  EXPECT_EQ(c.argon2_memory_kib, 8u);
  EXPECT_EQ(c.access_token_minutes, 5);
  EXPECT_EQ(c.ledger_origin, "example.org/log");
  for (const char* bad :
       {"ledger_synchronous = sometimes", "witness_quorum = 0", "scrub_interval_minutes = -1",
        "argon2_memory_kib = 1", "access_token_minutes = 0", "ledger_origin = has space",
        "argon2_iterations = 65", "scrub_orphan_grace_seconds = 599",
        "scrub_orphan_grace_seconds = 2592001"}) {
    Config d;
    Status st = ApplyConfigText(d, bad, "medvault.conf");
    EXPECT_FALSE(st.ok()) << bad;
    EXPECT_EQ(st.message().rfind("medvault.conf:1: ", 0), 0u) << st.message();
  }
}

// Issue 13: every setting of the file can be set by its MEDVAULT_* variable
// (ledger_synchronous, ledger_origin, witness_keys, witness_quorum and
// scrub_interval_minutes were silently ignored from the environment).
TEST(ConfigTest, EverySettingHasItsEnvironmentVariable) {
  ASSERT_FALSE(Settings().empty());
  ASSERT_EQ(ConfigKeys().size(), Settings().size());
  for (const SettingDef& s : Settings()) {
    const std::string name = EnvironmentVariableOf(s.key);
    Config from_file;
    ASSERT_TRUE(
        ApplyConfigText(from_file, std::string(s.key) + " = " + std::string(s.example), "f").ok())
        << s.key;
    EXPECT_NE(from_file, Config()) << s.key << ": its example must differ from the default";
    Config from_env;
    Status st = ApplyEnvironment(from_env, {{name, std::string(s.example)}});
    ASSERT_TRUE(st.ok()) << name << ": " << st.ToString();
    EXPECT_EQ(from_env, from_file) << name << " is not honoured";
    EXPECT_TRUE(UnknownEnvironmentVariables({{name, "x"}}).empty()) << name;
    // A bad value from the environment names the variable.
    Config bad;
    st = ApplyEnvironment(bad, {{name, "\x01not valid\x01"}});
    if (!st.ok()) {
      EXPECT_EQ(st.message().rfind(name + ": ", 0), 0u) << st.message();
    }
  }
  EXPECT_EQ(EnvironmentVariableOf("scrub_interval_minutes"), "MEDVAULT_SCRUB_INTERVAL_MINUTES");
}

TEST(ConfigTest, UnknownVariablesAreReportedWithANearMiss) {
  const auto unknown = UnknownEnvironmentVariables({{"MEDVAULT_LISEN", "127.0.0.1:1"},
                                                    {"MEDVAULT_LISTEN", "127.0.0.1:2"},
                                                    {"MEDVAULT_FROBNICATE", "1"},
                                                    {"MEDVAULT_BIN", "./build/medvault"},
                                                    {"MEDVAULT_DEMO_IMPORTS", "5"},
                                                    {"MEDVAULT_SHARED_TESTDATA", "/x"},
                                                    {"OTHER_LISEN", "x"}});
  ASSERT_EQ(unknown.size(), 2u);
  EXPECT_EQ(unknown[0].name, "MEDVAULT_FROBNICATE");
  EXPECT_EQ(unknown[0].did_you_mean, "");
  EXPECT_EQ(unknown[1].name, "MEDVAULT_LISEN");
  EXPECT_EQ(unknown[1].did_you_mean, "MEDVAULT_LISTEN");
  // Reported, not applied, and not an error.
  Config c;
  ASSERT_TRUE(ApplyEnvironment(c, {{"MEDVAULT_LISEN", "127.0.0.1:1"}}).ok());
  EXPECT_EQ(c, Config());
}

TEST(ConfigTest, MissingFileIsAnError) {
  Config c;
  Status st = ApplyConfigFile(c, "/nonexistent/medvault.conf");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("/nonexistent/medvault.conf"), std::string::npos);
}

}  // namespace
}  // namespace medvault::app
