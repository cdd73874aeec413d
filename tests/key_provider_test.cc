#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "crypto/crypto.h"
#include "test_util.h"

namespace medvault::crypto {
namespace {

namespace fs = std::filesystem;
using medvault::testing::ReadFileBytes;
using medvault::testing::TempDir;
using medvault::testing::WriteFileBytes;

class CryptoEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { ASSERT_TRUE(InitCrypto().ok()); }
};
[[maybe_unused]] ::testing::Environment* const kEnv =
    ::testing::AddGlobalTestEnvironment(new CryptoEnvironment);

class KeyProviderTest : public ::testing::Test {
 protected:
  fs::path KeyPath(const std::string& name = "kek") { return dir_.path() / name; }

  std::unique_ptr<KeyProvider> CreateAndOpen(const fs::path& path) {
    Status st = CreateKeyFile(path);
    EXPECT_TRUE(st.ok()) << st.ToString();
    auto provider = OpenFileKeyProvider(path);
    EXPECT_TRUE(provider.ok()) << provider.status().ToString();
    return provider.ok() ? std::move(provider).value() : nullptr;
  }

  static unsigned Mode(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0);
    return st.st_mode & 07777;
  }

  TempDir dir_;
};

TEST_F(KeyProviderTest, CreatedFileHasMode0600AndFormat) {
  ASSERT_TRUE(CreateKeyFile(KeyPath()).ok());
  EXPECT_EQ(Mode(KeyPath()), 0600u);
  const std::string content = ReadFileBytes(KeyPath());
  ASSERT_EQ(content.size(), 39u);
  EXPECT_EQ(content.substr(0, 7), "MVKEK1\n");
}

TEST_F(KeyProviderTest, CreatedFileIs0600EvenUnderPermissiveUmask) {
  const mode_t old = ::umask(0);
  Status st = CreateKeyFile(KeyPath());
  ::umask(old);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(Mode(KeyPath()), 0600u);
}

TEST_F(KeyProviderTest, CreateOnExistingFileIsAlreadyExistsAndLeavesItUnchanged) {
  ASSERT_TRUE(CreateKeyFile(KeyPath()).ok());
  const std::string before = ReadFileBytes(KeyPath());
  Status st = CreateKeyFile(KeyPath());
  EXPECT_EQ(st.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(ReadFileBytes(KeyPath()), before);

  // Also for a file that is not a key file at all.
  WriteFileBytes(KeyPath("other"), "not a key");
  EXPECT_EQ(CreateKeyFile(KeyPath("other")).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(ReadFileBytes(KeyPath("other")), "not a key");
}

TEST_F(KeyProviderTest, CreateInMissingDirectoryFails) {
  Status st = CreateKeyFile(dir_.path() / "missing" / "kek");
  EXPECT_EQ(st.code(), StatusCode::kIOError);
}

TEST_F(KeyProviderTest, GroupOrWorldReadableFileIsRefused) {
  ASSERT_TRUE(CreateKeyFile(KeyPath()).ok());
  for (fs::perms extra : {fs::perms::group_read, fs::perms::others_read, fs::perms::group_write,
                          fs::perms::others_exec}) {
    fs::permissions(KeyPath(), fs::perms::owner_read | fs::perms::owner_write | extra);
    auto provider = OpenFileKeyProvider(KeyPath());
    ASSERT_FALSE(provider.ok());
    EXPECT_EQ(provider.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(provider.status().message().find(KeyPath().string()), std::string::npos);
    EXPECT_NE(provider.status().message().find("chmod 600"), std::string::npos);
  }
  fs::permissions(KeyPath(), fs::perms(0644));
  EXPECT_EQ(OpenFileKeyProvider(KeyPath()).status().code(), StatusCode::kFailedPrecondition);
  fs::permissions(KeyPath(), fs::perms(0600));
  EXPECT_TRUE(OpenFileKeyProvider(KeyPath()).ok());
  fs::permissions(KeyPath(), fs::perms(0400));
  EXPECT_TRUE(OpenFileKeyProvider(KeyPath()).ok());
}

TEST_F(KeyProviderTest, MalformedFilesAreDataLoss) {
  auto write_0600 = [&](const std::string& name, const std::string& content) {
    WriteFileBytes(KeyPath(name), content);
    fs::permissions(KeyPath(name), fs::perms(0600));
    return KeyPath(name);
  };
  const std::string key(32, 'k');
  EXPECT_EQ(OpenFileKeyProvider(write_0600("magic", "MVKEK2\n" + key)).status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(OpenFileKeyProvider(write_0600("short", "MVKEK1\n" + key.substr(1))).status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(OpenFileKeyProvider(write_0600("long", "MVKEK1\n" + key + "\n")).status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(OpenFileKeyProvider(write_0600("empty", "")).status().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(OpenFileKeyProvider(write_0600("good", "MVKEK1\n" + key)).ok());
}

TEST_F(KeyProviderTest, MissingFileIsNotFound) {
  EXPECT_EQ(OpenFileKeyProvider(KeyPath("nope")).status().code(), StatusCode::kNotFound);
}

TEST_F(KeyProviderTest, WrapUnwrapRoundTrip) {
  auto provider = CreateAndOpen(KeyPath());
  ASSERT_NE(provider, nullptr);
  const SecretBytes key = RandomKey();
  auto wrapped = provider->WrapKey(key, AsBytes("patient-1"));
  ASSERT_TRUE(wrapped.ok());
  EXPECT_EQ(wrapped->size(), 1 + kAeadOverhead + kKeySize);
  EXPECT_EQ((*wrapped)[0], 1);
  auto unwrapped = provider->UnwrapKey(*wrapped, AsBytes("patient-1"));
  ASSERT_TRUE(unwrapped.ok()) << unwrapped.status().ToString();
  EXPECT_TRUE(unwrapped->Equals(key));

  // Survives a reopen of the same file.
  auto reopened = OpenFileKeyProvider(KeyPath());
  ASSERT_TRUE(reopened.ok());
  auto again = (*reopened)->UnwrapKey(*wrapped, AsBytes("patient-1"));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->Equals(key));
}

TEST_F(KeyProviderTest, UnwrapWithOtherAadOrAlteredBytesIsDataLoss) {
  auto provider = CreateAndOpen(KeyPath());
  ASSERT_NE(provider, nullptr);
  const SecretBytes key = RandomKey();
  auto wrapped = provider->WrapKey(key, AsBytes("patient-1"));
  ASSERT_TRUE(wrapped.ok());
  EXPECT_EQ(provider->UnwrapKey(*wrapped, AsBytes("patient-2")).status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(provider->UnwrapKey(*wrapped, {}).status().code(), StatusCode::kDataLoss);
  for (size_t i = 0; i < wrapped->size(); ++i) {
    Bytes bad = *wrapped;
    bad[i] ^= 0x80;
    EXPECT_EQ(provider->UnwrapKey(bad, AsBytes("patient-1")).status().code(), StatusCode::kDataLoss)
        << i;
  }
  EXPECT_EQ(provider->UnwrapKey({}, AsBytes("patient-1")).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(provider->UnwrapKey(ByteView(*wrapped).first(20), AsBytes("patient-1")).status().code(),
            StatusCode::kDataLoss);
}

TEST_F(KeyProviderTest, NewKeyFileHasDifferentKek) {
  auto p1 = CreateAndOpen(KeyPath("one"));
  auto p2 = CreateAndOpen(KeyPath("two"));
  ASSERT_NE(p1, nullptr);
  ASSERT_NE(p2, nullptr);
  EXPECT_NE(ReadFileBytes(KeyPath("one")), ReadFileBytes(KeyPath("two")));
  EXPECT_NE(p1->KeyId(), p2->KeyId());
  const SecretBytes key = RandomKey();
  auto wrapped = p1->WrapKey(key, AsBytes("aad"));
  ASSERT_TRUE(wrapped.ok());
  EXPECT_EQ(p2->UnwrapKey(*wrapped, AsBytes("aad")).status().code(), StatusCode::kDataLoss);
  EXPECT_FALSE(p1->DerivePlatformKey("blind-index")->Equals(*p2->DerivePlatformKey("blind-index")));
}

TEST_F(KeyProviderTest, PlatformKeysAreDeterministicAndSeparated) {
  auto provider = CreateAndOpen(KeyPath());
  ASSERT_NE(provider, nullptr);
  auto a = provider->DerivePlatformKey("blind-index");
  auto b = provider->DerivePlatformKey("blind-index");
  auto c = provider->DerivePlatformKey("audit");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->size(), kKeySize);
  EXPECT_TRUE(a->Equals(*b));
  EXPECT_FALSE(a->Equals(*c));
  auto reopened = OpenFileKeyProvider(KeyPath());
  ASSERT_TRUE(reopened.ok());
  EXPECT_TRUE((*reopened)->DerivePlatformKey("blind-index")->Equals(*a));
  EXPECT_EQ(provider->DerivePlatformKey("").status().code(), StatusCode::kInvalidArgument);

  // The wrapping key is not reachable as a platform key, not even as purpose "wrap".
  const SecretBytes key = RandomKey();
  auto wrapped = provider->WrapKey(key, AsBytes("aad"));
  ASSERT_TRUE(wrapped.ok());
  auto wrap_purpose = provider->DerivePlatformKey("wrap");
  ASSERT_TRUE(wrap_purpose.ok());
  EXPECT_FALSE(AeadOpen(*wrap_purpose, ByteView(*wrapped).subspan(1), AsBytes("aad")).ok());
}

TEST_F(KeyProviderTest, KeyIdIsDocumentedHash) {
  auto provider = CreateAndOpen(KeyPath());
  ASSERT_NE(provider, nullptr);
  const std::string content = ReadFileBytes(KeyPath());
  const std::string expected =
      ToHex(ByteView(Sha256(AsBytes("medvault/v1/kek-id" + content.substr(7)))).first(8));
  EXPECT_EQ(provider->KeyId(), expected);
  EXPECT_EQ(provider->KeyId().size(), 16u);
}

}  // namespace
}  // namespace medvault::crypto
