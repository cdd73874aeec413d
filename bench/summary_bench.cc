// The clinical summary of a large record (issue 15): a patient with 5,000
// observations (laboratory results over 25 LOINC codes, a fifth flagged
// high, and blood-pressure panels; the same shape as
// scripts/gen-observations.py, which `make bench` imports through the API
// for the HTTP figure), imported into the real stores on a temp dir.
//
//   BM_SummaryReadParts  the reference: what every reading of the whole
//                        record costs (ReadRecordParts: list, decrypt and
//                        parse every segment), as an export pays it too.
//   BM_Summary           ReadRecordParts + Summarize + the answer's dump,
//                        what GET /summary computes besides its decisions.
//   BM_ExportFhir        exchange::Export of the same record as FHIR.
// Real time per iteration; each runs as 40 repetitions of one iteration so
// that the p99 statistic is over single summaries.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_util.h"
#include "crypto/crypto.h"
#include "exchange/exchange.h"
#include "exchange/summary.h"
#include "record/record.h"
#include "record_stores.h"
#include "store/store.h"

namespace medvault {
namespace {

using nlohmann::json;

constexpr int kObservations = 5000;

std::string Bundle() {
  static const char* const kLabs[][3] = {
      {"4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%"},
      {"2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL"},
      {"2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL"},
      {"2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL"},
      {"2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL"},
      {"2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL"},
      {"3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "mg/dL"},
      {"2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L"},
      {"2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L"},
      {"718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL"},
      {"777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL"},
      {"1742-6", "Alanine aminotransferase [Enzymatic activity/volume]", "U/L"},
      {"1751-7", "Albumin [Mass/volume] in Serum or Plasma", "g/dL"}};
  json entries = json::array();
  entries.push_back({{"fullUrl", "urn:uuid:bench-patient"},
                     {"resource",
                      {{"resourceType", "Patient"},
                       {"id", "bench-patient"},
                       {"name", {{{"family", "Summary"}, {"given", {"Bench"}}}}},
                       {"gender", "female"},
                       {"birthDate", "1950-01-01"}}}});
  for (int i = 0; i < kObservations; ++i) {
    const int day = 1 + i / 4;
    char when[32];
    std::snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:00:00Z", 2026 - day / 336,
                  1 + (day % 336) / 28, 1 + (day % 336) % 28, 6 + (i % 4) * 3);
    json obs = {{"resourceType", "Observation"},
                {"id", "o" + std::to_string(i)},
                {"status", "final"},
                {"subject", {{"reference", "urn:uuid:bench-patient"}}},
                {"effectiveDateTime", when}};
    if (i % 10 == 9) {
      obs["category"] = {{{"coding", {{{"code", "vital-signs"}}}}}};
      obs["code"] = {{"coding", {{{"system", "http://loinc.org"}, {"code", "85354-9"}}}}};
      obs["component"] = {
          {{"code", {{"coding", {{{"system", "http://loinc.org"}, {"code", "8480-6"}}}}}},
           {"valueQuantity", {{"value", 110 + i % 50}, {"unit", "mm[Hg]"}}}},
          {{"code", {{"coding", {{{"system", "http://loinc.org"}, {"code", "8462-4"}}}}}},
           {"valueQuantity", {{"value", 70 + i % 25}, {"unit", "mm[Hg]"}}}}};
    } else {
      const auto& lab = kLabs[static_cast<size_t>(i) % std::size(kLabs)];
      obs["category"] = {{{"coding", {{{"code", "laboratory"}}}}}};
      obs["code"] = {
          {"coding", {{{"system", "http://loinc.org"}, {"code", lab[0]}, {"display", lab[1]}}}}};
      obs["valueQuantity"] = {{"value", 1 + (i * 37) % 100},
                              {"unit", lab[2]},
                              {"system", "http://unitsofmeasure.org"},
                              {"code", lab[2]}};
      if (i % 5 == 0) {
        obs["interpretation"] = {
            {{"coding",
              {{{"system", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"},
                {"code", "H"}}}}}};
      }
    }
    entries.push_back({{"fullUrl", "urn:uuid:o" + std::to_string(i)}, {"resource", obs}});
  }
  return json{{"resourceType", "Bundle"},
              {"type", "collection"},
              {"id", "bench-summary"},
              {"entry", entries}}
      .dump();
}

// The real stores with the 5,000-observation patient imported.
struct Record : bench::RecordStores {
  std::string patient_id;

  Record() {
    if (!error.empty()) {
      return;
    }
    auto in = exchange::Importer(records.get()).Import(Bundle(), {}, "bench");
    if (!in.ok()) {
      error = in.status().ToString();
      return;
    }
    patient_id = in->patient_id;
  }
};

Record& GetRecord() {
  static Record record;
  return record;
}

bool AllowAll(const exchange::ExportQuestion&) { return true; }

void BM_SummaryReadParts(benchmark::State& state) {
  Record& r = GetRecord();
  if (!r.error.empty()) {
    state.SkipWithError(r.error.c_str());
    return;
  }
  for (auto _ : state) {
    auto parts = exchange::ReadRecordParts(*r.records, r.patient_id, AllowAll);
    if (!parts.ok()) {
      state.SkipWithError(parts.status().ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(parts->parts.size());
  }
}

void BM_Summary(benchmark::State& state) {
  Record& r = GetRecord();
  if (!r.error.empty()) {
    state.SkipWithError(r.error.c_str());
    return;
  }
  exchange::SummaryOptions options;
  options.max_points_per_group = 500;  // the API's default
  size_t bytes = 0;
  size_t observations = 0;
  for (auto _ : state) {
    auto s = exchange::SummarizeRecord(*r.records, r.patient_id, AllowAll, options);
    if (!s.ok()) {
      state.SkipWithError(s.status().ToString().c_str());
      return;
    }
    bytes = s->size();
    observations = static_cast<size_t>(kObservations);
  }
  state.counters["observations"] = static_cast<double>(observations);
  state.counters["answer_bytes"] = static_cast<double>(bytes);
}

void BM_ExportFhir(benchmark::State& state) {
  Record& r = GetRecord();
  if (!r.error.empty()) {
    state.SkipWithError(r.error.c_str());
    return;
  }
  for (auto _ : state) {
    auto out = exchange::Export(*r.records, r.patient_id, interop::Format::kFhir, AllowAll);
    if (!out.ok()) {
      state.SkipWithError(out.status().ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(out->document.size());
  }
}

double P99(const std::vector<double>& v) {
  std::vector<double> s = v;
  std::sort(s.begin(), s.end());
  const size_t i = static_cast<size_t>(std::ceil(0.99 * static_cast<double>(s.size()))) - 1;
  return s.at(std::min(i, s.size() - 1));
}

BENCHMARK(BM_SummaryReadParts)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->Repetitions(40)
    ->ComputeStatistics("p99", P99)
    ->UseRealTime();
BENCHMARK(BM_Summary)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->Repetitions(40)
    ->ComputeStatistics("p99", P99)
    ->UseRealTime();
BENCHMARK(BM_ExportFhir)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->Repetitions(40)
    ->ComputeStatistics("p99", P99)
    ->UseRealTime();

}  // namespace
}  // namespace medvault

BENCHMARK_MAIN();
