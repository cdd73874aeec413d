// Segment writes and reads through the record service (no HTTP), on the
// embedded stores with full durability: a small version commits with its row
// (one WAL fsync per group), a large one fsyncs its object file and
// directory first. Also the disk a small version costs.
#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <random>

#include "app/app.h"

namespace medvault {
namespace {

struct Env {
  Env() {
    (void)crypto::InitCrypto();
    char tmpl[] = "/tmp/medvault-bench-XXXXXX";
    dir = mkdtemp(tmpl);
    data = dir + "/data";
    (void)app::InitDataDir(data, false);
    app::Config config;
    config.data_dir = data;
    runtime = std::move(app::OpenRuntime(config)).value();
    // The benchmark writes as the console (src/enforce refuses writes
    // outside a scope); benchmarks run on this thread.
    console =
        std::make_unique<enforce::Scope>(runtime->enforce_deps(), enforce::ConsoleContext("bench"));
    patient = runtime->records->CreatePatient({"Bench", "Mark", "1960-01-01", "male", ""}, "bench")
                  ->patient_id;
  }
  // The runtime closes (signing its last checkpoint) before its files go.
  ~Env() {
    console.reset();
    runtime.reset();
    std::filesystem::remove_all(dir);
  }
  std::string dir, data, patient;
  std::unique_ptr<app::Runtime> runtime;
  std::unique_ptr<enforce::Scope> console;
};

// Made on first use and closed at the end of main, not among the static
// destructors at exit: by then OpenSSL's own exit handler may have run, and
// the runtime's final checkpoint hashes with it (a crash at exit otherwise).
std::unique_ptr<Env> g_env;

Env& GetEnv() {
  if (!g_env) {
    g_env = std::make_unique<Env>();
  }
  return *g_env;
}

record::SegmentWrite BpWrite(int i) {
  record::SegmentWrite w;
  w.kind = record::ContentKind::kJson;
  w.content = ToBytes(nlohmann::json{{"systolic", 110 + i % 40},
                                     {"diastolic", 70 + i % 20},
                                     {"unit", "mmHg"},
                                     {"time", "2026-11-20T07:30:00Z"}}
                          .dump());
  return w;
}

void BM_SegmentWrite(benchmark::State& state) {
  Env& env = GetEnv();
  int i = 0;
  for (auto _ : state) {
    auto r = env.runtime->records->WriteSegment(env.patient, "physical-signs/blood-pressure",
                                                BpWrite(i++), "bench");
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SegmentWrite)->Unit(benchmark::kMicrosecond)->MinTime(2.0)->UseRealTime();

// Issue 14 part 6 (a size, not a speed): the disk a stored small version
// takes, against its ciphertext. A fresh data directory, N blood-pressure
// readings over 64 paths, then the growth of the whole directory (database,
// WAL after a checkpoint, object files at their allocated size) / N.
uint64_t AllocatedBytes(const std::filesystem::path& dir) {
  uint64_t total = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    struct stat st {};
    if (e.is_regular_file() && ::stat(e.path().c_str(), &st) == 0) {
      total += static_cast<uint64_t>(st.st_blocks) * 512;
    }
  }
  return total;
}

void BM_DiskBytesPerSmallVersion(benchmark::State& state) {
  constexpr int kVersions = 4000;
  for (auto _ : state) {
    state.PauseTiming();
    Env env;
    const uint64_t before = AllocatedBytes(env.data);
    uint64_t ciphertext = 0;
    state.ResumeTiming();
    for (int i = 0; i < kVersions; ++i) {
      auto r = env.runtime->records->WriteSegment(
          env.patient, "physical-signs/reading-" + std::to_string(i % 64), BpWrite(i), "bench");
      if (!r.ok()) {
        state.SkipWithError(r.status().ToString().c_str());
        return;
      }
    }
    // The ciphertext sizes, from the metadata.
    for (int p = 0; p < 64; ++p) {
      auto versions = env.runtime->metadata->ListSegmentVersions(
          env.patient, "physical-signs/reading-" + std::to_string(p));
      for (const auto& v : *versions) {
        ciphertext += v.stored_size;
      }
    }
    state.PauseTiming();
    env.console.reset();
    env.runtime.reset();  // closes the database: checkpoint, WAL removed
    const uint64_t after = AllocatedBytes(env.data);
    // What the versions themselves take: the pages of the segment_versions
    // table and its index (SQLite's dbstat), and the object files. The rest
    // of the growth is their ledger entries (reported by the ledger bench).
    uint64_t table_bytes = 0;
    sqlite3* db = nullptr;
    if (sqlite3_open_v2((env.data + "/metadata.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
        SQLITE_OK) {
      sqlite3_stmt* st = nullptr;
      if (sqlite3_prepare_v2(db,
                             "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name = "
                             "'segment_versions' OR name LIKE 'sqlite_autoindex_segment_versions%'",
                             -1, &st, nullptr) == SQLITE_OK &&
          sqlite3_step(st) == SQLITE_ROW) {
        table_bytes = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
      }
      sqlite3_finalize(st);
    }
    sqlite3_close(db);
    if (table_bytes == 0) {
      state.SkipWithError("dbstat unavailable");
      return;
    }
    const uint64_t object_bytes = AllocatedBytes(std::filesystem::path(env.data) / "objects");
    state.counters["disk_bytes_per_version"] =
        static_cast<double>(table_bytes + object_bytes) / kVersions;
    state.counters["dir_growth_bytes_per_version"] =
        static_cast<double>(after - before) / kVersions;
    state.counters["ciphertext_bytes_per_version"] = static_cast<double>(ciphertext) / kVersions;
    state.counters["versions"] = kVersions;
    state.ResumeTiming();
  }
}
BENCHMARK(BM_DiskBytesPerSmallVersion)->Unit(benchmark::kMillisecond)->Iterations(1);

void BM_SegmentRead(benchmark::State& state) {
  Env& env = GetEnv();
  const std::string path = "physical-signs/heart-rate";
  constexpr int kVersions = 200;
  if (env.runtime->records->ListVersions(env.patient, path).status().ok() == false) {
    for (int i = 0; i < kVersions; ++i) {
      record::SegmentWrite w;
      w.kind = record::ContentKind::kJson;
      w.content = ToBytes(
          nlohmann::json{{"bpm", 60 + i % 50}, {"unit", "/min"}, {"time", "2026-11-20T07:30:00Z"}}
              .dump());
      (void)env.runtime->records->WriteSegment(env.patient, path, w, "bench");
    }
  }
  std::mt19937 rng(7);
  for (auto _ : state) {
    auto r = env.runtime->records->ReadSegment(env.patient, path, 1 + rng() % kVersions);
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(r->content.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SegmentRead)->Unit(benchmark::kMicrosecond)->MinTime(2.0)->UseRealTime();

// Reading the 20 segments of one patient (as an export does), once with a
// root-key unwrap per segment (ReadSegment) and once through PatientKeys
// (one unwrap for the 20). scripts/bench_summary.py reports the ratio
// (many_segment_read_ratio_vs_per_segment_unwrap).
constexpr int kManySegments = 20;

const std::string& ManySegmentsPatient() {
  Env& env = GetEnv();
  static const std::string patient = [&env] {
    const std::string id =
        env.runtime->records->CreatePatient({"Bench", "Many", "1961-01-01", "female", ""}, "bench")
            ->patient_id;
    for (int i = 0; i < kManySegments; ++i) {
      record::SegmentWrite w;
      w.kind = record::ContentKind::kJson;
      w.content = ToBytes(nlohmann::json{{"text", "note " + std::to_string(i)}}.dump());
      (void)env.runtime->records->WriteSegment(id, "health-status/note-" + std::to_string(i), w,
                                               "bench");
    }
    return id;
  }();
  return patient;
}

void BM_ManySegmentsUnwrapEach(benchmark::State& state) {
  Env& env = GetEnv();
  const std::string& patient = ManySegmentsPatient();
  for (auto _ : state) {
    for (int i = 0; i < kManySegments; ++i) {
      auto r =
          env.runtime->records->ReadSegment(patient, "health-status/note-" + std::to_string(i), 0);
      if (!r.ok()) {
        state.SkipWithError(r.status().ToString().c_str());
        return;
      }
      benchmark::DoNotOptimize(r->content.data());
    }
  }
  state.SetItemsProcessed(state.iterations() * kManySegments);
}
BENCHMARK(BM_ManySegmentsUnwrapEach)->Unit(benchmark::kMicrosecond)->MinTime(1.0)->UseRealTime();

void BM_ManySegmentsPatientKeys(benchmark::State& state) {
  Env& env = GetEnv();
  const std::string& patient = ManySegmentsPatient();
  for (auto _ : state) {
    auto keys = env.runtime->records->OpenPatientKeys(patient);
    if (!keys.ok()) {
      state.SkipWithError(keys.status().ToString().c_str());
      return;
    }
    for (int i = 0; i < kManySegments; ++i) {
      auto r = env.runtime->records->ReadSegmentWith(**keys,
                                                     "health-status/note-" + std::to_string(i), 0);
      if (!r.ok()) {
        state.SkipWithError(r.status().ToString().c_str());
        return;
      }
      benchmark::DoNotOptimize(r->content.data());
    }
  }
  state.SetItemsProcessed(state.iterations() * kManySegments);
}
BENCHMARK(BM_ManySegmentsPatientKeys)->Unit(benchmark::kMicrosecond)->MinTime(1.0)->UseRealTime();

}  // namespace
}  // namespace medvault

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  medvault::g_env.reset();
  return 0;
}
