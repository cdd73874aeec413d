// The app's real stores on a temp dir (file key provider, SQLite metadata
// store at synchronous=FULL, file object store) and a record service over
// them, for the benchmarks that import and read records.
#pragma once

#include <memory>
#include <string>

#include "bench_util.h"
#include "crypto/crypto.h"
#include "record/record.h"
#include "store/store.h"

namespace medvault::bench {

struct RecordStores {
  BenchDir dir;
  std::unique_ptr<crypto::KeyProvider> keys;
  std::unique_ptr<store::MetadataStore> metadata;
  std::unique_ptr<store::ObjectStore> objects;
  std::unique_ptr<record::RecordService> records;
  std::string error;  // set when the stores could not be opened

  RecordStores() {
    if (!crypto::InitCrypto().ok() || !crypto::CreateKeyFile(dir.path() / "platform.kek").ok()) {
      error = "crypto init";
      return;
    }
    auto k = crypto::OpenFileKeyProvider(dir.path() / "platform.kek");
    auto m = store::OpenSqliteMetadataStore(dir.path() / "metadata.db");
    auto o = store::OpenFileObjectStore(dir.path() / "objects");
    if (!k.ok() || !m.ok() || !o.ok()) {
      error = "opening the stores";
      return;
    }
    keys = std::move(k).value();
    metadata = std::move(m).value();
    objects = std::move(o).value();
    auto r = record::CreateRecordService(keys.get(), metadata.get(), objects.get(), {});
    if (!r.ok()) {
      error = r.status().ToString();
      return;
    }
    records = std::move(r).value();
  }
};

}  // namespace medvault::bench
