// Import of C-CDA and FHIR documents (issue 5), each against a bare parse of
// the same bytes measured in the same run.
//
// The corpus: the directory named by $MEDVAULT_SHARED_TESTDATA, else
// <source>/../shared/testdata; C-CDA is every *.xml under ccda/ except the
// *-stubs directory (not valid C-CDA), FHIR every Synthea bundle under
// synthea/fhir-r4-bundles. When a format has no files there, the checked-in
// subset under <source>/tests/data/interop is used instead (ccda/ without
// stubs/, fhir/synthea/). Every benchmark's label names the corpus used, and
// its counters say how many documents, resources and bytes it holds
// ("shared_corpus" is 1 for the shared data, 0 for the fallback). All files
// are read into memory before any benchmark runs; a file that ParseCcda /
// ParseFhir refuses would be left out of all three benchmarks of its format
// (counter "excluded"; 0 on the shared data).
//
// Per format:
//   BM_*BareParse  the reference: libxml2 xmlReadMemory(XML_PARSE_NONET) +
//                  xmlFreeDoc (C-CDA), nlohmann::json::parse (FHIR).
//   BM_*ParseMap   what an import computes before it touches storage:
//                  ParseCcda / ParseFhir, DocumentKey, SHA-256 of the
//                  original, SplitIntoSegments, every segment body dumped.
//   BM_*Import     exchange::Importer into a real record service on a temp
//                  dir (file key provider, SQLite metadata store at
//                  synchronous=FULL, file object store: the app's stores,
//                  without the ledger's audit hook), every write durable,
//                  the corpus imported as `medvault import` imports a batch:
//                  in order, each document planned while the previous one
//                  commits (exchange::ImportInOrder; two threads at most).
//                  Each document goes into a fresh patient: the patients
//                  (iterations x documents) are created before the timed
//                  loop, so the figure is the import alone, not the patient's
//                  creation, and no import is a no-op re-import.
// Items are documents (C-CDA) or resources, i.e. Bundle entries (FHIR; counted
// once with a bare nlohmann parse). All times are wall-clock (UseRealTime), so
// items_per_second includes the time spent waiting on fsync.
#include <benchmark/benchmark.h>
#include <libxml/parser.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "bench_util.h"
#include "common/bytes.h"
#include "crypto/crypto.h"
#include "exchange/exchange.h"
#include "interop/interop.h"
#include "interop/mapping.h"
#include "record/record.h"
#include "record_stores.h"
#include "store/store.h"

#ifndef MEDVAULT_SOURCE_DIR
#error "MEDVAULT_SOURCE_DIR must be defined (cmake/interop.cmake)"
#endif

namespace medvault {
namespace {

namespace fs = std::filesystem;

// Full imports per benchmark run (each imports the whole corpus once).
constexpr int kImportIterations = 2;

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool IsStubDir(const fs::path& p) {
  const std::string name = p.filename().string();
  return name == "stubs" || (name.size() > 6 && name.ends_with("-stubs"));
}

std::vector<fs::path> FilesWithExtension(const fs::path& dir, std::string_view ext) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return out;
  }
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_directory() && IsStubDir(it->path())) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && it->path().extension() == ext) {
      out.push_back(it->path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct FormatCorpus {
  interop::Format format = interop::Format::kCcda;
  std::string dir;  // where the files came from
  bool shared = false;
  std::vector<std::string> docs;  // the bytes of every document
  int64_t bytes = 0;
  int64_t items = 0;  // per pass over the corpus: documents (C-CDA) or resources (FHIR)
  int64_t excluded = 0;
  std::string error;

  std::string Label() const {
    return std::string(shared ? "shared " : "fallback ") + dir + " (" +
           std::to_string(docs.size()) + " docs, " + std::to_string(items) + " items, " +
           std::to_string(bytes) + " bytes)";
  }
  void SetCounters(benchmark::State& state) const {
    state.SetLabel(Label());
    state.counters["shared_corpus"] = shared ? 1 : 0;
    state.counters["documents"] = static_cast<double>(docs.size());
    state.counters["items_per_pass"] = static_cast<double>(items);
    state.counters["corpus_bytes"] = static_cast<double>(bytes);
    state.counters["excluded"] = static_cast<double>(excluded);
  }
};

// Items of one FHIR document: Bundle entries, or 1 for a single resource.
int64_t FhirResources(const std::string& bytes) {
  nlohmann::json j = nlohmann::json::parse(bytes, nullptr, false);
  if (j.is_object() && j.value("resourceType", "") == "Bundle") {
    auto it = j.find("entry");
    return it != j.end() && it->is_array() ? static_cast<int64_t>(it->size()) : 0;
  }
  return j.is_object() ? 1 : 0;
}

FormatCorpus LoadCorpus(interop::Format format) {
  const char* env = std::getenv("MEDVAULT_SHARED_TESTDATA");
  const fs::path shared_root = env != nullptr && *env != '\0'
                                   ? fs::path(env)
                                   : fs::path(MEDVAULT_SOURCE_DIR) / ".." / "shared" / "testdata";
  const fs::path fallback_root = fs::path(MEDVAULT_SOURCE_DIR) / "tests" / "data" / "interop";
  const bool ccda = format == interop::Format::kCcda;
  const std::string_view ext = ccda ? ".xml" : ".json";
  FormatCorpus c;
  c.format = format;
  fs::path dir = ccda ? shared_root / "ccda" : shared_root / "synthea" / "fhir-r4-bundles";
  std::vector<fs::path> files = FilesWithExtension(dir, ext);
  c.shared = !files.empty();
  if (files.empty()) {
    dir = ccda ? fallback_root / "ccda" : fallback_root / "fhir" / "synthea";
    files = FilesWithExtension(dir, ext);
  }
  c.dir = dir.lexically_normal().string();
  for (const fs::path& f : files) {
    std::string bytes = ReadAll(f);
    auto parsed = ccda ? interop::ParseCcda(bytes) : interop::ParseFhir(bytes);
    if (!parsed.ok()) {
      ++c.excluded;
      continue;
    }
    c.bytes += static_cast<int64_t>(bytes.size());
    c.items += ccda ? 1 : FhirResources(bytes);
    c.docs.push_back(std::move(bytes));
  }
  if (c.docs.empty()) {
    c.error = "no " + std::string(interop::FormatName(format)) + " documents under " + c.dir;
  }
  return c;
}

const FormatCorpus& Corpus(interop::Format format) {
  if (format == interop::Format::kCcda) {
    static const FormatCorpus ccda = [] {
      xmlInitParser();
      return LoadCorpus(interop::Format::kCcda);
    }();
    return ccda;
  }
  static const FormatCorpus fhir = LoadCorpus(interop::Format::kFhir);
  return fhir;
}

// The real stores on a temp dir, shared by the import benchmarks.
using Storage = bench::RecordStores;

Storage& GetStorage() {
  static Storage storage;
  return storage;
}

// The import pipeline without storage (what Importer::Plan computes).
size_t ParseAndMap(std::string_view bytes, interop::Format format, std::string* error) {
  auto doc =
      format == interop::Format::kCcda ? interop::ParseCcda(bytes) : interop::ParseFhir(bytes);
  if (!doc.ok()) {
    *error = doc.status().ToString();
    return 0;
  }
  const std::string key = interop::DocumentKey(*doc, bytes);
  interop::OriginalInfo original{
      ToHex(crypto::Sha256(AsBytes(bytes))),
      format == interop::Format::kCcda ? "application/xml" : "application/fhir+json"};
  size_t serialised = 0;
  for (const interop::SegmentPart& part : interop::SplitIntoSegments(*doc, key, original)) {
    std::string body = part.body.dump();
    serialised += body.size();
    benchmark::DoNotOptimize(body.data());
  }
  return serialised;
}

void RunBareParse(benchmark::State& state, interop::Format format) {
  const FormatCorpus& c = Corpus(format);
  if (!c.error.empty()) {
    state.SkipWithError(c.error.c_str());
    return;
  }
  for (auto _ : state) {
    for (const std::string& bytes : c.docs) {
      if (format == interop::Format::kCcda) {
        xmlDocPtr doc = xmlReadMemory(bytes.data(), static_cast<int>(bytes.size()), nullptr,
                                      nullptr, XML_PARSE_NONET);
        if (doc == nullptr) {
          state.SkipWithError("libxml2 refused a document");
          return;
        }
        benchmark::DoNotOptimize(doc);
        xmlFreeDoc(doc);
      } else {
        nlohmann::json j = nlohmann::json::parse(bytes);
        benchmark::DoNotOptimize(j);
      }
    }
  }
  state.SetItemsProcessed(state.iterations() * c.items);
  state.SetBytesProcessed(state.iterations() * c.bytes);
  c.SetCounters(state);
}

void RunParseMap(benchmark::State& state, interop::Format format) {
  const FormatCorpus& c = Corpus(format);
  if (!c.error.empty()) {
    state.SkipWithError(c.error.c_str());
    return;
  }
  std::string error;
  for (auto _ : state) {
    for (const std::string& bytes : c.docs) {
      benchmark::DoNotOptimize(ParseAndMap(bytes, format, &error));
      if (!error.empty()) {
        state.SkipWithError(error.c_str());
        return;
      }
    }
  }
  state.SetItemsProcessed(state.iterations() * c.items);
  state.SetBytesProcessed(state.iterations() * c.bytes);
  c.SetCounters(state);
}

void RunImport(benchmark::State& state, interop::Format format) {
  const FormatCorpus& c = Corpus(format);
  Storage& s = GetStorage();
  if (!c.error.empty() || !s.error.empty()) {
    state.SkipWithError((c.error.empty() ? s.error : c.error).c_str());
    return;
  }
  // One fresh patient per (iteration, document), created outside the timing.
  std::vector<std::string> patients;
  const size_t needed = static_cast<size_t>(state.max_iterations) * c.docs.size();
  patients.reserve(needed);
  for (size_t i = 0; i < needed; ++i) {
    auto p = s.records->CreatePatient({"Bench", "Import", "1970-01-01", "other", ""}, "bench");
    if (!p.ok()) {
      state.SkipWithError(p.status().ToString().c_str());
      return;
    }
    patients.push_back(p->patient_id);
  }
  exchange::Importer importer(s.records.get());
  size_t next = 0;
  int64_t segments = 0;
  std::string error;
  for (auto _ : state) {
    // As `medvault import` runs a batch: in order, the next document planned
    // while this one commits (exchange::ImportInOrder).
    const size_t first = next;
    next += c.docs.size();
    exchange::ImportInOrder(
        c.docs.size(),
        [&](size_t i) {
          exchange::ImportOptions options;
          options.patient_id = patients.at(first + i);
          return importer.Plan(c.docs[i], options);
        },
        [&](size_t, const exchange::ImportPlan& plan) { return importer.Commit(plan, "bench"); },
        [&](size_t, Result<exchange::ImportOutcome> out) {
          if ((!out.ok() || out->unchanged) && error.empty()) {
            error = out.ok() ? "import wrote nothing" : out.status().ToString();
          }
          segments += out.ok() ? static_cast<int64_t>(out->segments.size()) : 0;
        });
    if (!error.empty()) {
      state.SkipWithError(error.c_str());
      return;
    }
  }
  state.counters["segments_per_pass"] = static_cast<double>(segments) / state.iterations();
  state.SetItemsProcessed(state.iterations() * c.items);
  state.SetBytesProcessed(state.iterations() * c.bytes);
  c.SetCounters(state);
}

void BM_CcdaBareParse(benchmark::State& state) { RunBareParse(state, interop::Format::kCcda); }
void BM_CcdaParseMap(benchmark::State& state) { RunParseMap(state, interop::Format::kCcda); }
void BM_CcdaImport(benchmark::State& state) { RunImport(state, interop::Format::kCcda); }
void BM_FhirBareParse(benchmark::State& state) { RunBareParse(state, interop::Format::kFhir); }
void BM_FhirParseMap(benchmark::State& state) { RunParseMap(state, interop::Format::kFhir); }
void BM_FhirImport(benchmark::State& state) { RunImport(state, interop::Format::kFhir); }

BENCHMARK(BM_CcdaBareParse)->Unit(benchmark::kMillisecond)->MinTime(0.5)->UseRealTime();
BENCHMARK(BM_CcdaParseMap)->Unit(benchmark::kMillisecond)->MinTime(0.5)->UseRealTime();
BENCHMARK(BM_CcdaImport)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(kImportIterations)
    ->UseRealTime();
BENCHMARK(BM_FhirBareParse)->Unit(benchmark::kMillisecond)->MinTime(0.5)->UseRealTime();
BENCHMARK(BM_FhirParseMap)->Unit(benchmark::kMillisecond)->MinTime(0.5)->UseRealTime();
BENCHMARK(BM_FhirImport)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(kImportIterations)
    ->UseRealTime();

}  // namespace
}  // namespace medvault

BENCHMARK_MAIN();
