#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "app/app.h"

namespace medvault::app {

namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct FileClose {
  void operator()(FILE* f) const { std::fclose(f); }
};

Result<std::unique_ptr<FILE, FileClose>> OpenForWrite(const std::filesystem::path& path,
                                                      mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    return Status::IOError("cannot create " + path.string());
  }
  if (::fchmod(fd, mode) != 0) {
    ::close(fd);
    return Status::IOError("cannot set the mode of " + path.string());
  }
  FILE* f = ::fdopen(fd, "w");
  if (f == nullptr) {
    ::close(fd);
    return Status::IOError("cannot open " + path.string());
  }
  return std::unique_ptr<FILE, FileClose>(f);
}

}  // namespace

Status WriteSelfSignedCertificate(const std::filesystem::path& cert_path,
                                  const std::filesystem::path& key_path) {
  std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) {
    return Status::Internal("EC key generation failed");
  }
  std::unique_ptr<X509, X509Free> cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) {
    return Status::Internal("X509 allocation failed");
  }
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) {
    return Status::Internal("RAND_bytes failed");
  }
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  ASN1_INTEGER* asn_serial = BN_to_ASN1_INTEGER(bn, nullptr);
  BN_free(bn);
  X509_set_serialNumber(cert.get(), asn_serial);
  ASN1_INTEGER_free(asn_serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -300);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("medvault"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] :
       {std::pair<int, const char*>{NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1"},
        {NID_basic_constraints, "critical,CA:FALSE"},
        {NID_key_usage, "critical,digitalSignature"},
        {NID_ext_key_usage, "serverAuth"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr) {
      return Status::Internal("X509 extension failed");
    }
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) {
    return Status::Internal("certificate signing failed");
  }
  {
    MV_ASSIGN_OR_RETURN(auto kf, OpenForWrite(key_path, 0600));
    if (PEM_write_PrivateKey(kf.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
        std::fflush(kf.get()) != 0 || ::fsync(::fileno(kf.get())) != 0) {
      return Status::IOError("cannot write " + key_path.string());
    }
  }
  // 0600 like every file medvault writes: only the server reads it.
  MV_ASSIGN_OR_RETURN(auto cf, OpenForWrite(cert_path, 0600));
  if (PEM_write_X509(cf.get(), cert.get()) != 1 || std::fflush(cf.get()) != 0 ||
      ::fsync(::fileno(cf.get())) != 0) {
    return Status::IOError("cannot write " + cert_path.string());
  }
  return Status::Ok();
}

}  // namespace medvault::app
