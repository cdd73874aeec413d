// File-backed key provider: the platform KEK lives in a 0600 file.
//
// File format: the 7 bytes "MVKEK1\n" followed by the 32-byte KEK, nothing else.
// Wrapped key format: version byte (kWrapVersion) || AeadSeal(wrapping key, key, aad),
// where the wrapping key is derived from the KEK (never the KEK itself), with a
// salt distinct from DerivePlatformKey so no platform purpose can equal it.
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/file_util.h"
#include "crypto/crypto.h"

namespace medvault::crypto {
namespace {

constexpr std::string_view kMagic = "MVKEK1\n";
constexpr size_t kFileSize = 7 + kKeySize;
static_assert(kMagic.size() == 7);
constexpr uint8_t kWrapVersion = 1;
constexpr std::string_view kWrapSalt = "medvault/v1/kek-wrap";
constexpr std::string_view kWrapInfo = "wrap";
constexpr std::string_view kPlatformSalt = "medvault/v1/platform";
constexpr std::string_view kKeyIdDomain = "medvault/v1/kek-id";

std::string ErrnoText(int err) { return std::strerror(err); }

// Closes a descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now and reports the error, since close() can report a failed write.
  int Close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

Status FsyncParentDir(const std::filesystem::path& path) {
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) {
    dir = ".";
  }
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    return Status::IOError("cannot open directory " + dir.string() + ": " + ErrnoText(errno));
  }
  if (::fsync(fd.get()) != 0) {
    return Status::IOError("fsync of directory " + dir.string() + " failed: " + ErrnoText(errno));
  }
  return Status::Ok();
}

class FileKeyProvider final : public KeyProvider {
 public:
  FileKeyProvider(SecretBytes wrap_key, SecretBytes kek, std::string key_id)
      : wrap_key_(std::move(wrap_key)), kek_(std::move(kek)), key_id_(std::move(key_id)) {}

  Result<Bytes> WrapKey(const SecretBytes& key, ByteView aad) override {
    MV_ASSIGN_OR_RETURN(Bytes sealed, AeadSeal(wrap_key_, key.view(), aad));
    Bytes out;
    out.reserve(1 + sealed.size());
    out.push_back(kWrapVersion);
    out.insert(out.end(), sealed.begin(), sealed.end());
    return out;
  }

  Result<SecretBytes> UnwrapKey(ByteView wrapped, ByteView aad) override {
    if (wrapped.empty()) {
      return Status::DataLoss("wrapped key is empty");
    }
    if (wrapped[0] != kWrapVersion) {
      return Status::DataLoss("wrapped key has unknown format version " +
                              std::to_string(wrapped[0]));
    }
    auto key = AeadOpenSecret(wrap_key_, wrapped.subspan(1), aad);
    if (!key.ok()) {
      return Status::DataLoss(
          "wrapped key does not open (altered, bound to other data, or made under another KEK)");
    }
    return std::move(key).value();
  }

  Result<SecretBytes> DerivePlatformKey(std::string_view purpose) override {
    if (purpose.empty()) {
      return Status::InvalidArgument("platform key purpose is empty");
    }
    return HkdfSha256(kek_.view(), AsBytes(kPlatformSalt), AsBytes(purpose), kKeySize);
  }

  std::string KeyId() const override { return key_id_; }

 private:
  SecretBytes wrap_key_;
  SecretBytes kek_;
  std::string key_id_;
};

}  // namespace

Status CreateKeyFile(const std::filesystem::path& path) {
  // O_EXCL: never overwrite an existing KEK, which would orphan every wrapped key.
  Fd fd(::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == EEXIST) {
      return Status::AlreadyExists("key file " + path.string() +
                                   " already exists; not overwriting");
    }
    return Status::IOError("cannot create key file " + path.string() + ": " + ErrnoText(err));
  }
  SecretBytes content(kFileSize);
  std::memcpy(content.data(), kMagic.data(), kMagic.size());
  randombytes_buf(content.data() + kMagic.size(), kKeySize);

  // The umask may have removed owner bits; set exactly 0600.
  Status st;
  if (::fchmod(fd.get(), 0600) != 0) {
    st = Status::IOError("chmod of key file " + path.string() + " failed: " + ErrnoText(errno));
  }
  if (st.ok()) {
    st = WriteAll(fd.get(), content.view());
  }
  if (st.ok() && ::fsync(fd.get()) != 0) {
    st = Status::IOError("fsync of key file " + path.string() + " failed: " + ErrnoText(errno));
  }
  if (fd.Close() != 0 && st.ok()) {
    st = Status::IOError("close of key file " + path.string() + " failed: " + ErrnoText(errno));
  }
  if (!st.ok()) {
    // A partial key file would block a retry (AlreadyExists) and hold no usable key.
    ::unlink(path.c_str());
    return st.WithContext("creating key file");
  }
  return FsyncParentDir(path);
}

Result<std::unique_ptr<KeyProvider>> OpenFileKeyProvider(const std::filesystem::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return Status::NotFound("key file " + path.string() + " does not exist");
    }
    return Status::IOError("cannot open key file " + path.string() + ": " + ErrnoText(err));
  }
  // fstat on the open descriptor: the checked file is the one that is read.
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return Status::IOError("cannot stat key file " + path.string() + ": " + ErrnoText(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::FailedPrecondition("key file " + path.string() + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::FailedPrecondition("key file " + path.string() + " has mode " + mode +
                                      " and is accessible by group or others; run: chmod 600 " +
                                      path.string());
  }
  if (st.st_size != static_cast<off_t>(kFileSize)) {
    return Status::DataLoss("key file " + path.string() + " is " + std::to_string(st.st_size) +
                            " bytes, expected " + std::to_string(kFileSize));
  }
  // Read one byte more than expected so a file that grew since fstat is caught.
  SecretBytes content(kFileSize + 1);
  size_t got = 0;
  while (got < content.size()) {
    const ssize_t n = ::read(fd.get(), content.data() + got, content.size() - got);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return Status::IOError("cannot read key file " + path.string() + ": " + ErrnoText(errno));
    }
    if (n == 0) {
      break;
    }
    got += static_cast<size_t>(n);
  }
  if (got != kFileSize) {
    return Status::DataLoss("key file " + path.string() + " changed size while being read");
  }
  if (std::memcmp(content.data(), kMagic.data(), kMagic.size()) != 0) {
    return Status::DataLoss("key file " + path.string() + " does not start with the MVKEK1 magic");
  }
  SecretBytes kek = SecretBytes::CopyFrom(content.view().subspan(kMagic.size(), kKeySize));
  content.Wipe();

  MV_ASSIGN_OR_RETURN(SecretBytes wrap_key,
                      HkdfSha256(kek.view(), AsBytes(kWrapSalt), AsBytes(kWrapInfo), kKeySize));
  Sha256Hasher hasher;
  hasher.Update(AsBytes(kKeyIdDomain));
  hasher.Update(kek.view());
  Bytes digest = hasher.Finish();
  // Public: SHA-256 is one-way, and the domain string keeps it apart from other KEK hashes.
  std::string key_id = ToHex(ByteView(digest).first(8));
  return std::unique_ptr<KeyProvider>(
      std::make_unique<FileKeyProvider>(std::move(wrap_key), std::move(kek), std::move(key_id)));
}

}  // namespace medvault::crypto
