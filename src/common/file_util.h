// Durable file writing shared by the modules (key files, checkpoints' keys,
// witness state, scrub reports).
#pragma once

#include <sys/types.h>

#include <filesystem>

#include "common/bytes.h"
#include "common/status.h"

namespace medvault {

// Writes all of `data` to `fd`, retrying on EINTR and short writes.
Status WriteAll(int fd, ByteView data);
// fsyncs a directory (so that a rename or create in it is durable); "" = ".".
Status FsyncDir(const std::filesystem::path& dir);
// Writes `data` to `path` atomically and durably: a temporary file in the
// same directory (created with `mode`, O_EXCL), fsync, rename over `path`,
// fsync of the directory. Nothing is left behind on failure.
Status WriteFileAtomically(const std::filesystem::path& path, ByteView data, mode_t mode = 0600);

}  // namespace medvault
