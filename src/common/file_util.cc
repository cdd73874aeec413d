#include "common/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/ids.h"

namespace medvault {
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

}  // namespace

Status WriteAll(int fd, ByteView data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return Status::IOError("write failed: " + ErrnoText(errno));
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status FsyncDir(const std::filesystem::path& dir) {
  const std::filesystem::path d = dir.empty() ? std::filesystem::path(".") : dir;
  const int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return Status::IOError("cannot open directory " + d.string() + ": " + ErrnoText(errno));
  }
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) {
    return Status::IOError("fsync of directory " + d.string() + " failed: " + ErrnoText(err));
  }
  return Status::Ok();
}

Status WriteFileAtomically(const std::filesystem::path& path, ByteView data, mode_t mode) {
  if (path.filename().empty()) {
    return Status::InvalidArgument("the path names no file");
  }
  const std::filesystem::path dir = path.parent_path();
  const std::filesystem::path tmp = (dir.empty() ? std::filesystem::path(".") : dir) /
                                    ("." + path.filename().string() + "." + NewRandomId() + ".tmp");
  int fd;
  do {
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    return Status::IOError("cannot create a temporary file for " + path.string() + ": " +
                           ErrnoText(errno));
  }
  // The umask may have taken bits away (or a caller asked for more than it
  // allows): the mode is what the caller said.
  Status st =
      ::fchmod(fd, mode) == 0
          ? Status::Ok()
          : Status::IOError("cannot set the mode of " + tmp.string() + ": " + ErrnoText(errno));
  if (st.ok()) {
    st = WriteAll(fd, data);
  }
  if (st.ok() && ::fsync(fd) != 0) {
    st = Status::IOError("fsync of " + tmp.string() + " failed: " + ErrnoText(errno));
  }
  if (::close(fd) != 0 && st.ok()) {
    st = Status::IOError("close of " + tmp.string() + " failed: " + ErrnoText(errno));
  }
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    st = Status::IOError("rename to " + path.string() + " failed: " + ErrnoText(errno));
  }
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return FsyncDir(dir);
}

Status WriteNewPrivateFile(const std::filesystem::path& path, ByteView data) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    return errno == EEXIST
               ? Status::AlreadyExists(path.string() + " already exists")
               : Status::IOError("cannot create " + path.string() + ": " + ErrnoText(errno));
  }
  Status st =
      ::fchmod(fd, 0600) == 0
          ? WriteAll(fd, data)
          : Status::IOError("cannot set the mode of " + path.string() + ": " + ErrnoText(errno));
  if (st.ok() && ::fsync(fd) != 0) {
    st = Status::IOError("fsync of " + path.string() + " failed: " + ErrnoText(errno));
  }
  if (::close(fd) != 0 && st.ok()) {
    st = Status::IOError("close of " + path.string() + " failed: " + ErrnoText(errno));
  }
  if (!st.ok()) {
    ::unlink(path.c_str());
  }
  return st;
}

Status MakePrivateDirectory(const std::filesystem::path& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::IOError("cannot create directory " + dir.string() + ": " + ErrnoText(errno));
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    return Status::IOError("cannot inspect " + dir.string() + ": " + ErrnoText(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::FailedPrecondition(dir.string() + " is not a directory");
  }
  if ((st.st_mode & 07777) != 0700 && ::chmod(dir.c_str(), 0700) != 0) {
    return Status::IOError("cannot make " + dir.string() + " owner-only: " + ErrnoText(errno));
  }
  return Status::Ok();
}

}  // namespace medvault
