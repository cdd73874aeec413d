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
// same directory (created O_EXCL and set to exactly `mode`, whatever the
// umask), fsync, rename over `path`, fsync of the directory. Nothing is left
// behind on failure.
Status WriteFileAtomically(const std::filesystem::path& path, ByteView data, mode_t mode = 0600);
// Creates a new file with exactly mode 0600 (O_EXCL, no symlink followed),
// writes `data` and fsyncs it. AlreadyExists when `path` exists.
Status WriteNewPrivateFile(const std::filesystem::path& path, ByteView data);
// Makes `dir` (its parent must exist) a directory of mode exactly 0700,
// whatever the umask: created when missing, tightened when it exists.
// FailedPrecondition when `dir` is something else (a file, a symlink).
// Every directory medvault creates goes through here (the data directory and
// everything in it; a witness's state directory).
Status MakePrivateDirectory(const std::filesystem::path& dir);

}  // namespace medvault
