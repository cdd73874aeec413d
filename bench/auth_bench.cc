// Authentication benchmarks.
//
// BM_AuthenticateWarm: the per-request hot path, Authenticate() on a token
// already in the cache (format check, SHA-256, shared-lock lookup, copy out).
// BM_AuthenticateCold: the same token through the store (cache disabled).
// BM_Argon2Verify: one password verification with the default parameters,
// i.e. the floor of a login.
// BM_Login: a whole login (Argon2 with default parameters, failure counter
// read, session and token inserts).
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "auth/auth.h"
#include "bench_util.h"
#include "crypto/crypto.h"
#include "store/account_store.h"

namespace {

namespace fs = std::filesystem;
using namespace medvault;

constexpr char kPassword[] = "Tractor-Rain-Blue-42";
constexpr char kAudience[] = "medvault-api";

using medvault::bench::BenchDir;

template <typename T>
T Must(Result<T> r) {
  if (!r.ok()) {
    std::fprintf(stderr, "bench setup failed: %s\n", r.status().ToString().c_str());
    std::abort();
  }
  return std::move(r).value();
}

// A data dir with one patient account, and a service over it.
struct Fixture {
  explicit Fixture(size_t cache_capacity) {
    if (!crypto::InitCrypto().ok() || !crypto::CreateKeyFile(dir.path() / "kek").ok()) {
      std::abort();
    }
    keys = Must(crypto::OpenFileKeyProvider(dir.path() / "kek"));
    store::SqliteOptions sqlite;
    sqlite.synchronous_full = false;
    store = Must(store::OpenSqliteAccountStore(dir.path() / "metadata.db", sqlite));
    auth::AuthOptions options;
    options.known_roles = {"patient"};
    options.token_cache_capacity = cache_capacity;
    service = Must(auth::CreateAccountService(store.get(), keys.get(), options));
    auth::NewAccount account;
    account.username = "bench.user";
    account.display_name = "Bench User";
    account.password = kPassword;
    account.roles = {"patient"};
    (void)Must(service->CreateAccount(account));
  }
  auth::TokenPair Login() {
    auth::LoginRequest req;
    req.username = "bench.user";
    req.password = kPassword;
    req.audience = kAudience;
    return Must(service->Login(req));
  }

  BenchDir dir;
  std::unique_ptr<crypto::KeyProvider> keys;
  std::unique_ptr<store::AccountStore> store;
  std::unique_ptr<auth::AccountService> service;
};

void BM_AuthenticateWarm(benchmark::State& state) {
  static Fixture* fixture = new Fixture(100000);
  static const auth::TokenPair pair = fixture->Login();
  for (auto _ : state) {
    auto session = fixture->service->Authenticate(pair.access_token, kAudience);
    if (!session.ok()) {
      state.SkipWithError("authenticate failed");
      break;
    }
    benchmark::DoNotOptimize(session);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AuthenticateWarm)->ThreadRange(1, 2)->UseRealTime();

void BM_AuthenticateCold(benchmark::State& state) {
  Fixture fixture(0);
  const auth::TokenPair pair = fixture.Login();
  for (auto _ : state) {
    auto session = fixture.service->Authenticate(pair.access_token, kAudience);
    benchmark::DoNotOptimize(session);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AuthenticateCold);

void BM_Argon2Verify(benchmark::State& state) {
  const std::string hash = Must(auth::HashPassword(kPassword, auth::Argon2Params{}));
  for (auto _ : state) {
    benchmark::DoNotOptimize(auth::VerifyPassword(hash, kPassword));
  }
}
BENCHMARK(BM_Argon2Verify)->Unit(benchmark::kMillisecond);

void BM_Login(benchmark::State& state) {
  Fixture fixture(100000);
  for (auto _ : state) {
    benchmark::DoNotOptimize(fixture.Login());
  }
}
BENCHMARK(BM_Login)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
