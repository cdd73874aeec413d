// Child process for crash_test: writes versions as fast as it can and prints
// one line per acknowledged write: "ACK <path> <version> <seq>".
// usage: crash_writer DATA_DIR PATIENT_ID START_SEQ
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "app/app.h"

using namespace medvault;

// Deterministic attachment bytes for a sequence number.
static Bytes AttachmentFor(uint64_t seq) {
  Bytes b(70000 + seq % 5000);
  for (size_t i = 0; i < b.size(); ++i) {
    b[i] = static_cast<uint8_t>((seq * 2654435761u + i * 40503u) >> 7);
  }
  return b;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: crash_writer DATA_DIR PATIENT_ID START_SEQ\n");
    return 2;
  }
  if (!crypto::InitCrypto().ok()) {
    return 1;
  }
  app::Config config;
  config.data_dir = argv[1];
  auto rt = app::OpenRuntime(config);
  if (!rt.ok()) {
    std::fprintf(stderr, "open: %s\n", rt.status().ToString().c_str());
    return 1;
  }
  // The writes are the console's (src/enforce refuses writes outside a scope).
  enforce::Scope console((*rt)->enforce_deps(), enforce::ConsoleContext("crash-writer"));
  // The kill timer starts here, so that slow start-up (sanitizers, the
  // ledger's sync) does not eat the window in which writes happen.
  std::printf("READY\n");
  std::fflush(stdout);
  const std::string id = argv[2];
  uint64_t seq = std::strtoull(argv[3], nullptr, 10);
  const char* paths[] = {"other/crash-a", "life-record/crash-b", "radiology/scan"};
  for (;; ++seq) {
    const std::string path = paths[seq % 3];
    Result<record::SegmentVersionInfo> info = Status::Internal("unset");
    if (seq % 3 == 2) {
      auto w = (*rt)->records->BeginAttachment(id, path, "application/octet-stream", std::nullopt,
                                               "crash-writer");
      if (!w.ok()) {
        info = w.status();
      } else {
        Bytes data = AttachmentFor(seq);
        Status st = (*w)->Append(data);
        info = st.ok() ? (*w)->Commit() : Result<record::SegmentVersionInfo>(st);
      }
    } else {
      record::SegmentWrite write;
      write.kind = record::ContentKind::kJson;
      write.content = ToBytes(nlohmann::json{{"seq", seq}}.dump());
      info = (*rt)->records->WriteSegment(id, path, write, "crash-writer");
    }
    if (!info.ok()) {
      std::fprintf(stderr, "write: %s\n", info.status().ToString().c_str());
      return 1;
    }
    std::printf("ACK %s %llu %llu\n", path.c_str(), static_cast<unsigned long long>(info->version),
                static_cast<unsigned long long>(seq));
    std::fflush(stdout);
  }
}
