// Segment writes and reads through the record service (no HTTP), on the
// embedded stores with full durability: every write fsyncs its object file,
// its directory and the SQLite WAL commit.
#include <benchmark/benchmark.h>

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
