#include "common/file_util.h"

#include <fcntl.h>
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
  Status st = WriteAll(fd, data);
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

}  // namespace medvault
