// Integrity scrubber benchmarks.
//
// The data set: 200 attachments of 256 KiB written through the record
// service (so real encrypted objects in the file object store). All runs
// read from the page cache after the first iteration.
//
// BM_RawReadAndHash is the reference: read(2) of every object file in 256 KiB
// pieces and SHA-256 over the bytes (crypto::Sha256Hasher, i.e. OpenSSL), no
// metadata. BM_ScrubFast is the fast scrub of the same objects (metadata
// snapshot, ObjectStore::Open + hash check, orphan listing); the ratio
// BM_ScrubFast / BM_RawReadAndHash (bytes per second) is its overhead.
// BM_ScrubDeep also decrypts every version through the record service.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.h"
#include "crypto/crypto.h"
#include "integrity/integrity.h"
#include "record/record.h"
#include "store/store.h"

namespace {

namespace fs = std::filesystem;
using namespace medvault;

constexpr int kObjects = 200;
constexpr size_t kObjectSize = 256 * 1024;
constexpr size_t kReadChunk = 256 * 1024;

using medvault::bench::BenchDir;

// The stores and the data set, built once for all benchmarks.
struct Fixture {
  BenchDir dir;
  std::unique_ptr<crypto::KeyProvider> keys;
  std::unique_ptr<store::MetadataStore> metadata;
  std::unique_ptr<store::ObjectStore> objects;
  std::unique_ptr<record::RecordService> service;
  std::vector<fs::path> files;
  uint64_t stored_bytes = 0;
  std::string error;

  Fixture() { error = Build(); }

  std::string Build() {
    if (!crypto::InitCrypto().ok() || !crypto::CreateKeyFile(dir.path() / "platform.kek").ok()) {
      return "crypto init";
    }
    auto k = crypto::OpenFileKeyProvider(dir.path() / "platform.kek");
    store::SqliteOptions sqlite;
    sqlite.synchronous_full = false;
    auto md = store::OpenSqliteMetadataStore(dir.path() / "metadata.db", sqlite);
    auto obj = store::OpenFileObjectStore(dir.path());
    if (!k.ok() || !md.ok() || !obj.ok()) {
      return "open stores";
    }
    keys = std::move(*k);
    metadata = std::move(*md);
    objects = std::move(*obj);
    auto svc = record::CreateRecordService(keys.get(), metadata.get(), objects.get(), {});
    if (!svc.ok()) {
      return "record service";
    }
    service = std::move(*svc);
    auto patient =
        service->CreatePatient({"Ada", "Benchmark", "1956-03-14", "female", ""}, "bench");
    if (!patient.ok()) {
      return "create patient";
    }
    Bytes content(kObjectSize);
    crypto::RandomBytes(content);
    for (int i = 0; i < kObjects; ++i) {
      const std::string path = "radiology/scan-" + std::to_string(i % 20);
      auto writer = service->BeginAttachment(patient->patient_id, path, "application/octet-stream",
                                             std::nullopt, "bench");
      if (!writer.ok() || !(*writer)->Append(content).ok() || !(*writer)->Commit().ok()) {
        return "write attachment";
      }
    }
    for (const auto& e : fs::recursive_directory_iterator(dir.path() / "objects")) {
      if (e.is_regular_file()) {
        files.push_back(e.path());
        stored_bytes += e.file_size();
      }
    }
    if (files.size() != static_cast<size_t>(kObjects)) {
      return "unexpected object count";
    }
    return "";
  }
};

Fixture& Data() {
  static Fixture fixture;  // removed at exit
  return fixture;
}

void RunScrub(benchmark::State& state, bool deep) {
  Fixture& f = Data();
  if (!f.error.empty()) {
    state.SkipWithError(f.error.c_str());
    return;
  }
  integrity::ScrubOptions options;
  options.deep = deep;
  for (auto _ : state) {
    auto r = integrity::Scrub(*f.metadata, *f.objects, f.service.get(), options);
    if (!r.ok() || !r->completed || !r->findings.empty() || r->bytes_checked != f.stored_bytes) {
      state.SkipWithError("scrub failed or found something");
      return;
    }
    benchmark::DoNotOptimize(r->objects_checked);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.stored_bytes));
  state.counters["objects"] = static_cast<double>(f.files.size());
}

void BM_ScrubFast(benchmark::State& state) { RunScrub(state, false); }
void BM_ScrubDeep(benchmark::State& state) { RunScrub(state, true); }

void BM_RawReadAndHash(benchmark::State& state) {
  Fixture& f = Data();
  if (!f.error.empty()) {
    state.SkipWithError(f.error.c_str());
    return;
  }
  std::vector<uint8_t> buffer(kReadChunk);
  for (auto _ : state) {
    uint64_t total = 0;
    for (const fs::path& p : f.files) {
      const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        state.SkipWithError("open");
        return;
      }
      crypto::Sha256Hasher hasher;
      while (true) {
        const ssize_t n = ::read(fd, buffer.data(), buffer.size());
        if (n <= 0) {
          break;
        }
        hasher.Update(ByteView(buffer.data(), static_cast<size_t>(n)));
        total += static_cast<uint64_t>(n);
      }
      ::close(fd);
      Bytes digest = hasher.Finish();
      benchmark::DoNotOptimize(digest.data());
    }
    if (total != f.stored_bytes) {
      state.SkipWithError("short read");
      return;
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.stored_bytes));
  state.counters["objects"] = static_cast<double>(f.files.size());
}

BENCHMARK(BM_RawReadAndHash)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ScrubFast)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ScrubDeep)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
