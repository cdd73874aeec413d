// Helpers shared by the files of src/ledger (internal to the module).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/file_util.h"
#include "common/status.h"

namespace medvault::ledger {
struct Entry;
}  // namespace medvault::ledger

namespace medvault::ledger::internal {

// RFC 4648 §4 standard base64 with padding.
std::string Base64(ByteView data);
// Strict: only the canonical encoding (padding present, unused bits zero,
// no whitespace) is accepted; anything else is nullopt.
std::optional<Bytes> FromBase64(std::string_view text);

// ValidateEntry and Encode in one pass (the append path encodes once).
Result<Bytes> ValidateAndEncode(const Entry& entry);
// The field rules of ValidateEntry, without the size of an encoding.
Status ValidateFields(const Entry& entry);

// Format version 2, the compact binary encoding (entry_compact.cc).
// REQUIRES ValidateFields(entry).ok().
Bytes EncodeCompact(const Entry& entry);
// Strict inverse: InvalidArgument unless `bytes` is exactly what
// EncodeCompact writes for a valid entry.
Result<Entry> DecodeCompact(ByteView bytes);
// The frozen string table of version 2, in code order.
std::span<const std::string_view> CompactDictionary();

// Decimal u64 without sign or leading zeros ("0" itself is fine).
std::optional<uint64_t> ParseDecimalU64(std::string_view text);

// Closes a descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd();
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now and reports the error (close can report a failed write).
  int Close();

 private:
  int fd_;
};

std::string ErrnoText(int err);
using ::medvault::FsyncDir;
using ::medvault::WriteAll;
// Writes `data` to `path` atomically and durably with mode 0600 (see
// common/file_util.h).
inline Status AtomicWriteFile(const std::filesystem::path& path, ByteView data) {
  return ::medvault::WriteFileAtomically(path, data, 0600);
}
// Reads a whole regular file of at most `max_size` bytes. NotFound when it
// does not exist; FailedPrecondition when it is not a regular file or (with
// `owner_only`) when group or others have any permission on it.
Result<std::string> ReadSmallFile(const std::filesystem::path& path, size_t max_size,
                                  bool owner_only);

}  // namespace medvault::ledger::internal
