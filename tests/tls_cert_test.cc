#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>

#include "app/app.h"
#include "test_util.h"

namespace medvault::app {
namespace {

TEST(TlsCertTest, SelfSignedCertificateIsValidForLocalhost) {
  ASSERT_TRUE(crypto::InitCrypto().ok());
  testing::TempDir tmp;
  const auto dir = tmp.path() / "data";
  ASSERT_TRUE(InitDataDir(dir, false).ok());
  // --self-signed-cert on an initialised directory only adds the pair.
  const std::string kek = testing::ReadFileBytes(DataDirLayout(dir).kek);
  ASSERT_TRUE(InitDataDir(dir, true).ok());
  EXPECT_EQ(testing::ReadFileBytes(DataDirLayout(dir).kek), kek);
  DataDirLayout layout(dir);
  struct stat st {};
  ASSERT_EQ(::stat(layout.tls_key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  FILE* f = std::fopen(layout.tls_cert.c_str(), "r");
  ASSERT_NE(f, nullptr);
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(X509_check_host(cert, "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(cert, "127.0.0.1", 0), 1);
  EXPECT_NE(X509_check_host(cert, "example.org", 0, 0, nullptr), 1);
  EVP_PKEY* pub = X509_get_pubkey(cert);
  ASSERT_NE(pub, nullptr);
  EXPECT_EQ(X509_verify(cert, pub), 1);  // self-signed
  EXPECT_EQ(X509_cmp_current_time(X509_get0_notAfter(cert)), 1);
  EVP_PKEY_free(pub);
  X509_free(cert);
}

}  // namespace
}  // namespace medvault::app
