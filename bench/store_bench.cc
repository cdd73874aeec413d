// Storage benchmarks.
//
// BM_RawSqliteInsertPlusFile is the reference floor: what a bare sqlite3
// database (WAL, synchronous=FULL) plus a durably written 1 KiB file cost per
// record, with no abstraction. BM_MetadataInsert and BM_FileObjectPut measure
// the two halves through the store interfaces; their sum should stay close to
// the reference.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "bench_util.h"
#include "store/store.h"

namespace {

namespace fs = std::filesystem;
using medvault::Bytes;
using medvault::store::ContentKind;
using medvault::store::SegmentVersionRecord;

constexpr size_t kObjectSize = 1024;

using medvault::bench::BenchDir;

void Check(bool ok, benchmark::State& state, const char* what) {
  if (!ok) {
    state.SkipWithError(what);
  }
}

void BM_RawSqliteInsertPlusFile(benchmark::State& state) {
  BenchDir dir;
  sqlite3* db = nullptr;
  if (sqlite3_open((dir.path() / "raw.db").c_str(), &db) != SQLITE_OK) {
    state.SkipWithError("open");
    return;
  }
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
               "CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT NOT NULL, h BLOB NOT NULL);",
               nullptr, nullptr, nullptr);
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO t(k, h) VALUES (?1, ?2)", -1, &insert, nullptr);
  fs::create_directories(dir.path() / "objects");
  fs::create_directories(dir.path() / "tmp");
  const int objects_fd = open((dir.path() / "objects").c_str(), O_RDONLY | O_DIRECTORY);
  const std::string data(kObjectSize, 'x');
  const Bytes hash(32, 7);
  int64_t i = 0;
  for (auto _ : state) {
    const std::string name = std::to_string(i++);
    const fs::path tmp = dir.path() / "tmp" / name;
    const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    bool ok = fd >= 0 && write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
    ok = ok && fsync(fd) == 0;
    close(fd);
    ok = ok && rename(tmp.c_str(), (dir.path() / "objects" / name).c_str()) == 0;
    ok = ok && fsync(objects_fd) == 0;
    ok = ok && sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK;
    sqlite3_bind_text(insert, 1, name.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(insert, 2, hash.data(), static_cast<int>(hash.size()), SQLITE_TRANSIENT);
    ok = ok && sqlite3_step(insert) == SQLITE_DONE;
    sqlite3_reset(insert);
    ok = ok && sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK;
    Check(ok, state, "raw insert");
  }
  close(objects_fd);
  sqlite3_finalize(insert);
  sqlite3_close(db);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawSqliteInsertPlusFile)->Unit(benchmark::kMicrosecond)->MinTime(2.0)->UseRealTime();

void BM_MetadataInsert(benchmark::State& state) {
  BenchDir dir;
  auto store = medvault::store::OpenSqliteMetadataStore(dir.path() / "meta.db");
  if (!store.ok()) {
    state.SkipWithError("open");
    return;
  }
  medvault::store::PatientRecord patient;
  patient.patient_id = "0123456789abcdef0123456789abcdef";
  patient.wrapped_root_key = Bytes(72, 1);
  patient.created_at_ms = 1;
  if (!(*store)->CreatePatient(patient).ok()) {
    state.SkipWithError("create patient");
    return;
  }
  SegmentVersionRecord rec;
  rec.patient_id = patient.patient_id;
  rec.path = "vitals/blood-pressure";
  rec.category = "vitals";
  rec.sensitivity = 1;
  rec.kind = ContentKind::kJson;
  rec.media_type = "application/json";
  rec.plaintext_size = 900;
  rec.stored_size = kObjectSize;
  rec.content_sha256 = Bytes(32, 9);
  rec.author = "bench";
  uint64_t version = 0;
  for (auto _ : state) {
    rec.version = ++version;
    rec.object_key = patient.patient_id + "/" + std::to_string(version);
    Check((*store)->InsertSegmentVersion(rec).ok(), state, "insert");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MetadataInsert)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_FileObjectPut(benchmark::State& state) {
  BenchDir dir;
  auto store = medvault::store::OpenFileObjectStore(dir.path() / "objects");
  if (!store.ok()) {
    state.SkipWithError("open");
    return;
  }
  const std::string data(kObjectSize, 'x');
  int64_t i = 0;
  for (auto _ : state) {
    const std::string key = "0123456789abcdef0123456789abcdef/" + std::to_string(i++);
    Check((*store)->Put(key, medvault::AsBytes(data)).ok(), state, "put");
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kObjectSize));
}
BENCHMARK(BM_FileObjectPut)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
