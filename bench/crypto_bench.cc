// Crypto benchmarks. The envelope target: SealObject of 64 KiB runs at >= 0.9x
// the throughput of a bare XChaCha20-Poly1305 encryption of the same 64 KiB.
#include <benchmark/benchmark.h>
#include <sodium.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "crypto/crypto.h"

namespace medvault::crypto {
namespace {

constexpr size_t k64k = 64 * 1024;

void Init() {
  if (!InitCrypto().ok()) {
    std::fprintf(stderr, "InitCrypto failed\n");
    std::abort();
  }
}

Bytes RandomData(size_t n) {
  Bytes b(n);
  RandomBytes(b);
  return b;
}

// The primitive alone: one-shot AEAD with a fresh random nonce, into a reused buffer.
void BM_RawXChaCha64k(benchmark::State& state) {
  Init();
  const SecretBytes key = RandomKey();
  const Bytes pt = RandomData(k64k);
  Bytes out(k64k + crypto_aead_xchacha20poly1305_ietf_ABYTES);
  uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
  for (auto _ : state) {
    randombytes_buf(nonce, sizeof(nonce));
    unsigned long long out_len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out.data(), &out_len, pt.data(), pt.size(), nullptr,
                                               0, nullptr, nonce, key.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * k64k));
}
BENCHMARK(BM_RawXChaCha64k);

// As the product does it: a fresh data key per object, wrapped under the node key.
void BM_SealObject64k(benchmark::State& state) {
  Init();
  const SecretBytes node_key = RandomKey();
  const Bytes aad = ObjectAad("patient-0001", "internal-medicine/cardiology/ecg", 1, "obj");
  const Bytes pt = RandomData(k64k);
  for (auto _ : state) {
    auto sealed = SealObject(node_key, aad, pt);
    benchmark::DoNotOptimize(sealed);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * k64k));
}
BENCHMARK(BM_SealObject64k);

void BM_OpenObject64k(benchmark::State& state) {
  Init();
  const SecretBytes node_key = RandomKey();
  const Bytes aad = ObjectAad("patient-0001", "internal-medicine/cardiology/ecg", 1, "obj");
  const Bytes pt = RandomData(k64k);
  auto sealed = SealObject(node_key, aad, pt);
  if (!sealed.ok()) {
    state.SkipWithError("SealObject failed");
    return;
  }
  for (auto _ : state) {
    auto opened = OpenObject(node_key, aad, *sealed);
    if (!opened.ok()) {
      state.SkipWithError("OpenObject failed");
      break;
    }
    benchmark::DoNotOptimize(opened);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * k64k));
}
BENCHMARK(BM_OpenObject64k);

// libsodium secretstream alone: header + one FINAL chunk of 64 KiB.
void BM_RawSecretstream64k(benchmark::State& state) {
  Init();
  const SecretBytes key = RandomKey();
  const Bytes pt = RandomData(k64k);
  Bytes out(k64k + crypto_secretstream_xchacha20poly1305_ABYTES);
  uint8_t header[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
  crypto_secretstream_xchacha20poly1305_state st;
  for (auto _ : state) {
    crypto_secretstream_xchacha20poly1305_init_push(&st, header, key.data());
    crypto_secretstream_xchacha20poly1305_push(&st, out.data(), nullptr, pt.data(), pt.size(),
                                               nullptr, 0,
                                               crypto_secretstream_xchacha20poly1305_TAG_FINAL);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  sodium_memzero(&st, sizeof(st));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * k64k));
}
BENCHMARK(BM_RawSecretstream64k);

void BM_DeriveKeyForPath(benchmark::State& state) {
  Init();
  const SecretBytes root = RandomKey();
  for (auto _ : state) {
    auto key = DeriveKeyForPath(root, "internal-medicine/cardiology/ecg");  // depth 3
    benchmark::DoNotOptimize(key);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kKeySize));
}
BENCHMARK(BM_DeriveKeyForPath);

void BM_WrapUnwrap(benchmark::State& state) {
  Init();
  std::string tmpl = (std::filesystem::temp_directory_path() / "medvault-bench-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    state.SkipWithError("mkdtemp failed");
    return;
  }
  const std::filesystem::path dir(tmpl);
  const std::filesystem::path kek = dir / "kek";
  std::unique_ptr<KeyProvider> provider;
  if (CreateKeyFile(kek).ok()) {
    auto opened = OpenFileKeyProvider(kek);
    if (opened.ok()) {
      provider = std::move(opened).value();
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (provider == nullptr) {
    state.SkipWithError("key provider setup failed");
    return;
  }
  const SecretBytes key = RandomKey();
  const Bytes aad = ToBytes("patient-0001");
  for (auto _ : state) {
    auto wrapped = provider->WrapKey(key, aad);
    if (!wrapped.ok()) {
      state.SkipWithError("WrapKey failed");
      break;
    }
    auto unwrapped = provider->UnwrapKey(*wrapped, aad);
    if (!unwrapped.ok()) {
      state.SkipWithError("UnwrapKey failed");
      break;
    }
    benchmark::DoNotOptimize(unwrapped);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kKeySize));
}
BENCHMARK(BM_WrapUnwrap);

}  // namespace
}  // namespace medvault::crypto

BENCHMARK_MAIN();
