// ObjectStore on a local filesystem.
//
// Layout under the root:
//   objects/<key>   committed objects; the key's own '/' structure is the
//                   directory fan-out ("<patient_id>/<object_id>")
//   .tmp/<id>.tmp   objects being written, each flock()ed by its writer;
//                   the stale ones (unlocked, untouched for a minute) are
//                   removed when a store opens
//
// Every path is resolved one component at a time with openat(O_NOFOLLOW)
// from directory descriptors opened once, so a symlink planted anywhere below
// the root is refused instead of followed, and nothing outside the root is
// ever opened. Several processes may use a root at once (a CLI command beside
// the server): the open-time clean-up of .tmp skips temp files whose writer
// holds their flock (an open file description's lock, so no other close in
// that process drops it) or that changed in the last minute (a writer between
// creating its file and locking it).
//
// Durability: Commit() fsyncs the file, renames it into place without
// replacing anything (renameat2 RENAME_NOREPLACE, or link+unlink where the
// filesystem lacks it), and fsyncs every directory whose entries changed.
// Write and fsync errors are latched: after one, every later write fails with
// IOError until the store is reopened, because after a failed fsync the
// kernel may have dropped dirty pages and a retry could report false success.
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/file_util.h"
#include "common/ids.h"
#include "crypto/crypto.h"
#include "store/store.h"

namespace medvault::store {
namespace {

constexpr size_t kReadBufferSize = 64 * 1024;
constexpr size_t kSha256Size = 32;
constexpr mode_t kDirMode = 0700;
constexpr mode_t kFileMode = 0600;
constexpr const char* kObjectsDir = "objects";
constexpr const char* kTmpDir = ".tmp";
constexpr std::string_view kTmpSuffix = ".tmp";
// A temp file changed this recently is never removed at open (see CleanTmp).
constexpr time_t kTmpGraceSeconds = 60;

std::string ErrnoText(int err) { return std::strerror(err); }

std::string Quoted(std::string_view key) { return "'" + std::string(key) + "'"; }

// Owns one file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Closes and reports the close error (for writers, where it matters).
  int Close() {
    if (fd_ < 0) {
      return 0;
    }
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc == 0 ? 0 : errno;
  }
  void Reset() { (void)Close(); }
  // Gives up ownership (e.g. to fdopendir).
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

int OpenDirAt(int dirfd, const char* name) {
  int fd;
  do {
    fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

int FsyncFd(int fd) {
  int rc;
  do {
    rc = ::fsync(fd);
  } while (rc != 0 && errno == EINTR);
  return rc == 0 ? 0 : errno;
}

// Writes all of `data`; returns 0 or an errno value.
int WriteAll(int fd, ByteView data) {
  const uint8_t* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return 0;
}

// Splits a valid key into its components.
std::vector<std::string> SplitKey(std::string_view key) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t slash = key.find('/', start);
    if (slash == std::string_view::npos) {
      parts.emplace_back(key.substr(start));
      return parts;
    }
    parts.emplace_back(key.substr(start, slash - start));
    start = slash + 1;
  }
}

// State shared by the store and the writers and readers it hands out, so that
// these stay valid if they outlive the store object.
struct Shared {
  Fd root;
  Fd objects;
  Fd tmp;

  std::mutex mu;
  Status latched;  // first write/fsync error; guarded by mu
  std::atomic<bool> has_latched{false};

  Status CheckWritable() {
    if (!has_latched.load(std::memory_order_acquire)) {
      return Status::Ok();
    }
    std::lock_guard<std::mutex> lock(mu);
    return Status::IOError("object store refuses writes after an earlier failure (" +
                           latched.message() + "); reopen it");
  }

  // Records the first failure and returns it as an IOError.
  Status Latch(std::string message) {
    Status st = Status::IOError(std::move(message));
    std::lock_guard<std::mutex> lock(mu);
    if (!has_latched.load(std::memory_order_relaxed)) {
      latched = st;
      has_latched.store(true, std::memory_order_release);
    }
    return st;
  }
};

// The parent directory of a key's object, opened without following symlinks.
struct ResolvedParent {
  Fd dir;                         // directory that holds (or will hold) the object
  std::string basename;           // last key component
  std::vector<Fd> dirs_to_fsync;  // parents whose entries changed (created dirs)
};

// Walks the directory components of `key` below objects/. With `create`,
// missing directories are made (mode 0700) and each created directory's
// parent is queued for fsync. Errors: NotFound when a directory is missing or
// a component is a file (without `create`); FailedPrecondition when a
// component is a symlink, or a file and `create` is set.
Result<ResolvedParent> ResolveParent(Shared& shared, std::string_view key, bool create) {
  std::vector<std::string> parts = SplitKey(key);
  ResolvedParent out;
  out.basename = std::move(parts.back());
  parts.pop_back();

  Fd current;
  int current_fd = shared.objects.get();
  for (const std::string& part : parts) {
    // Open first: the directory usually exists. Create only when missing.
    int fd = OpenDirAt(current_fd, part.c_str());
    bool new_entry = false;
    if (fd < 0 && errno == ENOENT && create) {
      if (::mkdirat(current_fd, part.c_str(), kDirMode) != 0 && errno != EEXIST) {
        return Status::IOError("cannot create directory for object " + Quoted(key) + ": " +
                               ErrnoText(errno));
      }
      // Made by us, or just now by a concurrent writer that may not have
      // fsynced its parent yet: either way this commit fsyncs the parent.
      new_entry = true;
      fd = OpenDirAt(current_fd, part.c_str());
    }
    if (fd < 0) {
      const int err = errno;
      if (err == ENOENT && !create) {
        return Status::NotFound("object " + Quoted(key) + " not found");
      }
      struct stat st;
      const bool is_symlink = (err == ELOOP || err == ENOTDIR) &&
                              ::fstatat(current_fd, part.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                              S_ISLNK(st.st_mode);
      if (err == ENOTDIR && !create && !is_symlink) {
        // A component is a file: no object can live below it.
        return Status::NotFound("object " + Quoted(key) + " not found");
      }
      if (err == ELOOP || err == ENOTDIR) {
        return Status::FailedPrecondition("path of object " + Quoted(key) +
                                          " holds a symlink or non-directory");
      }
      return Status::IOError("cannot open directory for object " + Quoted(key) + ": " +
                             ErrnoText(err));
    }
    if (new_entry) {
      // The new entry lives in the parent; fsync it after the rename. The
      // created directory itself is fsynced as the next one's parent or as
      // the final directory.
      out.dirs_to_fsync.emplace_back(::dup(current_fd));
      if (!out.dirs_to_fsync.back().valid()) {
        return Status::IOError(std::string("dup failed: ") + ErrnoText(errno));
      }
    }
    current = Fd(fd);
    current_fd = fd;
  }
  if (current.valid()) {
    out.dir = std::move(current);
  } else {
    out.dir = Fd(::dup(shared.objects.get()));
    if (!out.dir.valid()) {
      return Status::IOError(std::string("dup failed: ") + ErrnoText(errno));
    }
  }
  return out;
}

class FileObjectWriter final : public ObjectWriter {
 public:
  FileObjectWriter(std::shared_ptr<Shared> shared, std::string key, std::string tmp_name, Fd fd)
      : shared_(std::move(shared)),
        key_(std::move(key)),
        tmp_name_(std::move(tmp_name)),
        fd_(std::move(fd)) {}

  ~FileObjectWriter() override { Discard(); }

  Status Append(ByteView data) override {
    MV_RETURN_IF_ERROR(CheckOpen());
    MV_RETURN_IF_ERROR(shared_->CheckWritable());
    if (const int err = WriteAll(fd_.get(), data); err != 0) {
      Discard();
      return shared_->Latch("write of object " + Quoted(key_) + " failed: " + ErrnoText(err));
    }
    hasher_.Update(data);
    size_ += data.size();
    return Status::Ok();
  }

  Result<ObjectInfo> Commit() override {
    MV_RETURN_IF_ERROR(CheckOpen());
    Status st = CommitImpl();
    if (!st.ok()) {
      Discard();
      return st;
    }
    done_ = true;
    ObjectInfo info;
    info.key = key_;
    info.size = size_;
    info.sha256 = hasher_.Finish();
    return info;
  }

 private:
  Status CheckOpen() const {
    if (done_) {
      return Status::FailedPrecondition("object writer for " + Quoted(key_) +
                                        " is already committed or failed");
    }
    return Status::Ok();
  }

  Status CommitImpl() {
    MV_RETURN_IF_ERROR(shared_->CheckWritable());
    if (const int err = FsyncFd(fd_.get()); err != 0) {
      return shared_->Latch("fsync of object " + Quoted(key_) + " failed: " + ErrnoText(err));
    }
    if (const int err = fd_.Close(); err != 0) {
      return shared_->Latch("close of object " + Quoted(key_) + " failed: " + ErrnoText(err));
    }
    MV_ASSIGN_OR_RETURN(ResolvedParent parent, ResolveParent(*shared_, key_, /*create=*/true));
    MV_RETURN_IF_ERROR(Publish(parent));
    // From here the temp name is gone; the object is visible under its key.
    tmp_name_.clear();
    if (const int err = FsyncFd(parent.dir.get()); err != 0) {
      return shared_->Latch("fsync of directory of object " + Quoted(key_) +
                            " failed: " + ErrnoText(err));
    }
    // Deepest first so that each directory's contents are durable before the
    // entry naming it is.
    for (auto it = parent.dirs_to_fsync.rbegin(); it != parent.dirs_to_fsync.rend(); ++it) {
      if (const int err = FsyncFd(it->get()); err != 0) {
        return shared_->Latch("fsync of directory of object " + Quoted(key_) +
                              " failed: " + ErrnoText(err));
      }
    }
    return Status::Ok();
  }

  // Moves the temp file to its final name, never replacing an existing entry.
  Status Publish(const ResolvedParent& parent) {
    const char* to = parent.basename.c_str();
    if (::renameat2(shared_->tmp.get(), tmp_name_.c_str(), parent.dir.get(), to,
                    RENAME_NOREPLACE) == 0) {
      return Status::Ok();
    }
    int err = errno;
    if (err == EINVAL || err == ENOSYS || err == ENOTSUP) {
      // No RENAME_NOREPLACE here: link() also refuses to replace.
      if (::linkat(shared_->tmp.get(), tmp_name_.c_str(), parent.dir.get(), to, 0) == 0) {
        (void)::unlinkat(shared_->tmp.get(), tmp_name_.c_str(), 0);
        return Status::Ok();
      }
      err = errno;
    }
    if (err == EEXIST) {
      return Status::AlreadyExists("object " + Quoted(key_) + " already exists");
    }
    return Status::IOError("cannot publish object " + Quoted(key_) + ": " + ErrnoText(err));
  }

  // Closes and removes the temp file (if still there). Idempotent.
  void Discard() {
    fd_.Reset();
    if (!tmp_name_.empty()) {
      (void)::unlinkat(shared_->tmp.get(), tmp_name_.c_str(), 0);
      tmp_name_.clear();
    }
    done_ = true;
  }

  std::shared_ptr<Shared> shared_;
  std::string key_;
  std::string tmp_name_;  // empty once published or removed
  Fd fd_;
  crypto::Sha256Hasher hasher_;
  uint64_t size_ = 0;
  bool done_ = false;
};

class FileObjectReader final : public ObjectReader {
 public:
  FileObjectReader(std::string key, Fd fd, uint64_t size, Bytes expected_sha256)
      : key_(std::move(key)),
        fd_(std::move(fd)),
        size_(size),
        expected_(std::move(expected_sha256)),
        buffer_(kReadBufferSize) {}

  // Data handed out before the end is not yet verified: callers must read to
  // the end (0) and only then trust what they read.
  Result<size_t> Read(std::span<uint8_t> out) override {
    if (!final_status_.ok()) {
      return final_status_;
    }
    if (out.empty()) {
      // A zero return would look like the verified end; fail closed instead.
      return Status::InvalidArgument("ObjectReader::Read needs a non-empty buffer");
    }
    if (at_end_) {
      return size_t{0};
    }
    if (pos_ == len_) {
      MV_RETURN_IF_ERROR(Fill());
      if (at_end_) {
        return size_t{0};
      }
    }
    const size_t n = std::min(out.size(), len_ - pos_);
    std::memcpy(out.data(), buffer_.data() + pos_, n);
    pos_ += n;
    return n;
  }

  uint64_t size() const override { return size_; }

 private:
  // Refills the buffer; at end of file runs the size and hash checks.
  Status Fill() {
    ssize_t n;
    do {
      n = ::read(fd_.get(), buffer_.data(), buffer_.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      final_status_ =
          Status::IOError("read of object " + Quoted(key_) + " failed: " + ErrnoText(errno));
      return final_status_;
    }
    if (n > 0) {
      pos_ = 0;
      len_ = static_cast<size_t>(n);
      read_total_ += len_;
      hasher_.Update(ByteView(buffer_.data(), len_));
      return Status::Ok();
    }
    fd_.Reset();
    const Bytes actual = hasher_.Finish();
    if (read_total_ != size_) {
      final_status_ = Status::DataLoss("object " + Quoted(key_) + " changed size while read");
      return final_status_;
    }
    if (actual != expected_) {
      final_status_ = Status::DataLoss("object " + Quoted(key_) +
                                       " failed its integrity check (content hash mismatch)");
      return final_status_;
    }
    at_end_ = true;
    return Status::Ok();
  }

  std::string key_;
  Fd fd_;
  uint64_t size_;
  Bytes expected_;
  Bytes buffer_;
  size_t pos_ = 0;
  size_t len_ = 0;
  uint64_t read_total_ = 0;
  crypto::Sha256Hasher hasher_;
  bool at_end_ = false;
  Status final_status_;
};

class FileObjectStore final : public ObjectStore {
 public:
  explicit FileObjectStore(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}

  Result<std::unique_ptr<ObjectWriter>> BeginPut(std::string_view key) override {
    MV_RETURN_IF_ERROR(ValidateKey(key));
    MV_RETURN_IF_ERROR(shared_->CheckWritable());
    // Fail early for taken keys and unsafe paths; Commit() checks again.
    {
      Result<ResolvedParent> parent = ResolveParent(*shared_, key, /*create=*/false);
      if (parent.ok()) {
        struct stat st;
        if (::fstatat(parent->dir.get(), parent->basename.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
          return Status::AlreadyExists("object " + Quoted(key) + " already exists");
        }
      } else if (parent.status().code() != StatusCode::kNotFound) {
        return parent.status();
      } else {
        // NotFound: a directory is missing (fine, Commit creates it), or a
        // component is a symlink or file, which must fail now.
        MV_RETURN_IF_ERROR(CheckNoUnsafeComponent(key));
      }
    }
    const std::string tmp_name = NewRandomId() + std::string(kTmpSuffix);
    int fd;
    do {
      fd = ::openat(shared_->tmp.get(), tmp_name.c_str(),
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, kFileMode);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
      return Status::IOError("cannot create temp file for object " + Quoted(key) + ": " +
                             ErrnoText(errno));
    }
    // Marks the file as in use for another process's open-time clean-up
    // (CleanTmp). A fresh file: nobody else can hold it; if this failed
    // anyway, the clean-up's age check still spares a file being written.
    (void)::flock(fd, LOCK_EX | LOCK_NB);
    return std::unique_ptr<ObjectWriter>(
        new FileObjectWriter(shared_, std::string(key), tmp_name, Fd(fd)));
  }

  Result<std::unique_ptr<ObjectReader>> Open(std::string_view key,
                                             ByteView expected_sha256) override {
    MV_RETURN_IF_ERROR(ValidateKey(key));
    if (expected_sha256.size() != kSha256Size) {
      return Status::InvalidArgument("expected object hash must be 32 bytes");
    }
    Result<ResolvedParent> resolved = ResolveParent(*shared_, key, /*create=*/false);
    if (!resolved.ok()) {
      if (resolved.status().code() == StatusCode::kFailedPrecondition) {
        // Nothing the store writes is a symlink: someone changed the tree.
        return Status::DataLoss("path of object " + Quoted(key) +
                                " holds a symlink; refusing to follow it");
      }
      return resolved.status();
    }
    ResolvedParent& parent = *resolved;
    int fd;
    do {
      fd = ::openat(parent.dir.get(), parent.basename.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
      const int err = errno;
      if (err == ENOENT) {
        return Status::NotFound("object " + Quoted(key) + " not found");
      }
      if (err == ELOOP) {
        // Nothing the store writes is a symlink: someone changed the tree.
        return Status::DataLoss("object " + Quoted(key) + " is a symlink; refusing to follow it");
      }
      return Status::IOError("cannot open object " + Quoted(key) + ": " + ErrnoText(err));
    }
    Fd file(fd);
    struct stat st;
    if (::fstat(file.get(), &st) != 0) {
      return Status::IOError("cannot stat object " + Quoted(key) + ": " + ErrnoText(errno));
    }
    if (S_ISDIR(st.st_mode)) {
      // A directory is a key prefix, not an object.
      return Status::NotFound("object " + Quoted(key) + " not found");
    }
    if (!S_ISREG(st.st_mode)) {
      return Status::DataLoss("object " + Quoted(key) + " is not a regular file");
    }
    return std::unique_ptr<ObjectReader>(
        new FileObjectReader(std::string(key), std::move(file), static_cast<uint64_t>(st.st_size),
                             Bytes(expected_sha256.begin(), expected_sha256.end())));
  }

  Status Delete(std::string_view key) override {
    MV_RETURN_IF_ERROR(ValidateKey(key));
    MV_RETURN_IF_ERROR(shared_->CheckWritable());
    Result<ResolvedParent> parent = ResolveParent(*shared_, key, /*create=*/false);
    if (!parent.ok()) {
      return parent.status().code() == StatusCode::kNotFound ? Status::Ok() : parent.status();
    }
    // unlinkat never follows a symlink: a planted one is removed, not its target.
    if (::unlinkat(parent->dir.get(), parent->basename.c_str(), 0) != 0) {
      const int err = errno;
      if (err == ENOENT || err == EISDIR) {
        return Status::Ok();  // absent (a directory is a prefix, not an object)
      }
      return Status::IOError("cannot delete object " + Quoted(key) + ": " + ErrnoText(err));
    }
    if (const int err = FsyncFd(parent->dir.get()); err != 0) {
      return shared_->Latch("fsync after deleting object " + Quoted(key) +
                            " failed: " + ErrnoText(err));
    }
    return Status::Ok();
  }

  Result<int64_t> CommittedAtMs(std::string_view key) override {
    MV_RETURN_IF_ERROR(ValidateKey(key));
    Result<ResolvedParent> parent = ResolveParent(*shared_, key, /*create=*/false);
    if (!parent.ok()) {
      return parent.status();
    }
    struct stat st;
    if (::fstatat(parent->dir.get(), parent->basename.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      const int err = errno;
      if (err == ENOENT) {
        return Status::NotFound("object " + Quoted(key) + " not found");
      }
      return Status::IOError("cannot stat object " + Quoted(key) + ": " + ErrnoText(err));
    }
    if (!S_ISREG(st.st_mode)) {
      return Status::NotFound("object " + Quoted(key) + " not found");
    }
    // The temp file is renamed into place at commit: its mtime is the time
    // of the last byte written, just before.
    return int64_t{st.st_mtim.tv_sec} * 1000 + st.st_mtim.tv_nsec / 1000000;
  }

  Status List(std::string_view prefix,
              const std::function<void(const std::string& key)>& fn) override {
    // A fresh open file description: a dup() would share the directory
    // offset with every other listing.
    Fd dir(OpenDirAt(shared_->objects.get(), "."));
    if (!dir.valid()) {
      return Status::IOError("cannot list object directory: " + ErrnoText(errno));
    }
    return Walk(std::move(dir), "", prefix, fn);
  }

 private:
  static Status ValidateKey(std::string_view key) {
    if (!IsValidObjectKey(key)) {
      return Status::InvalidArgument("invalid object key");
    }
    return Status::Ok();
  }

  // FailedPrecondition when some directory component of `key` exists but is
  // not a real directory (a symlink or a file).
  Status CheckNoUnsafeComponent(std::string_view key) {
    std::vector<std::string> parts = SplitKey(key);
    parts.pop_back();
    Fd current;
    int current_fd = shared_->objects.get();
    for (const std::string& part : parts) {
      struct stat st;
      if (::fstatat(current_fd, part.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return Status::Ok();  // missing from here down: Commit creates it
      }
      if (!S_ISDIR(st.st_mode)) {
        return Status::FailedPrecondition("path of object " + Quoted(key) +
                                          " holds a symlink or non-directory");
      }
      const int fd = OpenDirAt(current_fd, part.c_str());
      if (fd < 0) {
        return Status::FailedPrecondition("path of object " + Quoted(key) +
                                          " cannot be opened safely");
      }
      current = Fd(fd);
      current_fd = fd;
    }
    return Status::Ok();
  }

  // Lists `dir` (which is objects/<rel>) in sorted order, recursing into real
  // directories that can contain keys starting with `prefix`.
  Status Walk(Fd dir, const std::string& rel, std::string_view prefix,
              const std::function<void(const std::string& key)>& fn) {
    DIR* d = ::fdopendir(dir.get());
    if (d == nullptr) {
      return Status::IOError(std::string("cannot list object directory: ") + ErrnoText(errno));
    }
    (void)dir.Release();  // owned by `d` now
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
      const std::string_view name = e->d_name;
      if (name != "." && name != "..") {
        names.emplace_back(name);
      }
    }
    const int read_err = errno;
    std::sort(names.begin(), names.end());
    struct Entry {
      std::string name;
      bool is_dir;
    };
    std::vector<Entry> entries;
    for (std::string& name : names) {
      struct stat st;
      if (::fstatat(::dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        continue;  // deleted meanwhile
      }
      // Symlinks and other special files are never objects: skipped.
      if (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)) {
        entries.push_back(Entry{std::move(name), S_ISDIR(st.st_mode)});
      }
    }
    Status status;
    if (read_err != 0) {
      status = Status::IOError(std::string("cannot list object directory: ") + ErrnoText(read_err));
    }
    for (const Entry& entry : entries) {
      if (!status.ok()) {
        break;
      }
      const std::string key = rel.empty() ? entry.name : rel + "/" + entry.name;
      if (entry.is_dir) {
        // Descend only where keys with the prefix can live.
        const std::string sub = key + "/";
        const size_t n = std::min(sub.size(), prefix.size());
        if (sub.compare(0, n, prefix.substr(0, n)) != 0) {
          continue;
        }
        const int fd = OpenDirAt(::dirfd(d), entry.name.c_str());
        if (fd < 0) {
          continue;  // replaced or removed meanwhile
        }
        status = Walk(Fd(fd), key, prefix, fn);
      } else if (key.starts_with(prefix) && IsValidObjectKey(key)) {
        fn(key);
      }
    }
    ::closedir(d);
    return status;
  }

  std::shared_ptr<Shared> shared_;
};

// Opens (creating) `name` under `parent` as a real directory.
Result<Fd> OpenOrCreateSubdir(int parent, const char* name, bool* created) {
  *created = false;
  if (::mkdirat(parent, name, kDirMode) == 0) {
    *created = true;
  } else if (errno != EEXIST) {
    return Status::IOError(std::string("cannot create object store directory ") + name + ": " +
                           ErrnoText(errno));
  }
  const int fd = OpenDirAt(parent, name);
  if (fd < 0) {
    return Status::FailedPrecondition(std::string("object store directory ") + name +
                                      " is not a real directory: " + ErrnoText(errno));
  }
  return Fd(fd);
}

// Removes the stale entries of the temp directory: leftovers of writers that
// never committed (crash or kill). A temp file whose writer (in this process
// or another one) still holds its flock, or that changed within
// kTmpGraceSeconds, is in flight and left alone.
Status CleanTmp(int tmp_fd) {
  const int fd = OpenDirAt(tmp_fd, ".");  // own offset, unlike dup()
  if (fd < 0) {
    return Status::IOError("cannot list temp directory: " + ErrnoText(errno));
  }
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    const int err = errno;
    ::close(fd);
    return Status::IOError("cannot list temp directory: " + ErrnoText(err));
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name != "." && name != "..") {
      names.emplace_back(name);
    }
  }
  ::closedir(d);
  bool removed = false;
  const time_t now = ::time(nullptr);
  for (const std::string& name : names) {
    // Held open (and locked) while deciding, so the lock we test is on the
    // entry we unlink. O_NONBLOCK: a planted FIFO must not hang the open.
    Fd entry(::openat(tmp_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (entry.valid()) {
      struct stat st {};
      if (::fstat(entry.get(), &st) == 0 && S_ISREG(st.st_mode)) {
        if (::flock(entry.get(), LOCK_EX | LOCK_NB) != 0) {
          continue;  // a live writer holds it
        }
        if (st.st_mtime > now - kTmpGraceSeconds && st.st_mtime <= now + kTmpGraceSeconds) {
          continue;  // young: possibly a writer that has not locked it yet
        }
      }
    } else if (errno == ENOENT) {
      continue;
    }
    if (::unlinkat(tmp_fd, name.c_str(), 0) == 0) {
      removed = true;
    } else if (errno != ENOENT) {
      return Status::IOError("cannot remove stale temp file: " + ErrnoText(errno));
    }
  }
  if (removed) {
    if (const int err = FsyncFd(tmp_fd); err != 0) {
      return Status::IOError("fsync of temp directory failed: " + ErrnoText(err));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<ObjectStore>> OpenFileObjectStore(const std::filesystem::path& root) {
  std::error_code ec;
  if (!std::filesystem::exists(root, ec)) {
    // Its parents are the operator's; the root is owner-only (0700), whatever
    // the umask.
    if (root.has_parent_path()) {
      std::filesystem::create_directories(root.parent_path(), ec);
    }
    MV_RETURN_IF_ERROR(MakePrivateDirectory(root));
  }
  auto shared = std::make_shared<Shared>();
  // The root itself may be a symlink chosen by the operator; below it, no.
  shared->root = Fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!shared->root.valid()) {
    return Status::IOError("cannot open object store root: " + ErrnoText(errno));
  }
  bool created_objects = false;
  bool created_tmp = false;
  MV_ASSIGN_OR_RETURN(shared->objects,
                      OpenOrCreateSubdir(shared->root.get(), kObjectsDir, &created_objects));
  MV_ASSIGN_OR_RETURN(shared->tmp, OpenOrCreateSubdir(shared->root.get(), kTmpDir, &created_tmp));
  if (created_objects || created_tmp) {
    if (const int err = FsyncFd(shared->root.get()); err != 0) {
      return Status::IOError("fsync of object store root failed: " + ErrnoText(err));
    }
  }
  MV_RETURN_IF_ERROR(CleanTmp(shared->tmp.get()));
  return std::unique_ptr<ObjectStore>(new FileObjectStore(std::move(shared)));
}

}  // namespace medvault::store
