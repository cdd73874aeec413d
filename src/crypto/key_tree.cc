// Patient key tree: HKDF-SHA-256 from a node key to its children.
#include "crypto/crypto.h"

namespace medvault::crypto {
namespace {

constexpr std::string_view kTreeSalt = "medvault/v1/key-tree";
constexpr std::string_view kPurposeSalt = "medvault/v1/purpose";

Status CheckNodeKey(const SecretBytes& key) {
  if (key.size() != kKeySize) {
    return Status::InvalidArgument("key tree node key must be " + std::to_string(kKeySize) +
                                   " bytes, got " + std::to_string(key.size()));
  }
  return Status::Ok();
}

}  // namespace

// A child name is one path component: non-empty and without '/', so that
// DeriveChildKey(DeriveChildKey(r, "a"), "b") and DeriveKeyForPath(r, "a/b")
// are the only two spellings of the same node.
Result<SecretBytes> DeriveChildKey(const SecretBytes& parent, std::string_view child_name) {
  MV_RETURN_IF_ERROR(CheckNodeKey(parent));
  if (child_name.empty()) {
    return Status::InvalidArgument("key tree child name is empty");
  }
  if (child_name.find('/') != std::string_view::npos) {
    return Status::InvalidArgument("key tree child name contains '/'");
  }
  if (child_name.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("key tree child name contains a NUL byte");
  }
  return HkdfSha256(parent.view(), AsBytes(kTreeSalt), AsBytes(child_name), kKeySize);
}

// Version 1 is the unversioned derivation above, byte for byte, so that data
// written before node keys had versions stays readable. Later versions put
// the version after a NUL, which no child name contains, so no (name,
// version) pair shares its info string with another.
Result<SecretBytes> DeriveChildKey(const SecretBytes& parent, std::string_view child_name,
                                   uint32_t version) {
  if (version == 0 || version > kMaxNodeKeyVersion) {
    return Status::InvalidArgument("node key version must be 1.." +
                                   std::to_string(kMaxNodeKeyVersion));
  }
  if (version == 1) {
    return DeriveChildKey(parent, child_name);
  }
  MV_RETURN_IF_ERROR(CheckNodeKey(parent));
  if (child_name.empty() || child_name.find('/') != std::string_view::npos ||
      child_name.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("key tree child name is empty or contains '/' or NUL");
  }
  Bytes info(child_name.begin(), child_name.end());
  info.push_back(0);
  info.push_back(static_cast<uint8_t>(version >> 24));
  info.push_back(static_cast<uint8_t>(version >> 16));
  info.push_back(static_cast<uint8_t>(version >> 8));
  info.push_back(static_cast<uint8_t>(version));
  return HkdfSha256(parent.view(), AsBytes(kTreeSalt), info, kKeySize);
}

Result<SecretBytes> DeriveKeyForPath(const SecretBytes& root, std::string_view path) {
  return DeriveKeyForPath(root, path, {});
}

Result<SecretBytes> DeriveKeyForPath(const SecretBytes& root, std::string_view path,
                                     std::span<const uint32_t> versions) {
  MV_RETURN_IF_ERROR(CheckNodeKey(root));
  SecretBytes key = SecretBytes::CopyFrom(root.view());
  if (path.empty()) {
    if (!versions.empty()) {
      return Status::InvalidArgument("node key versions given for the empty path");
    }
    return key;
  }
  size_t start = 0;
  size_t depth = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    const std::string_view component = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (component.empty()) {
      return Status::InvalidArgument("key tree path has an empty component");
    }
    const uint32_t version = depth < versions.size() ? versions[depth] : 1;
    ++depth;
    MV_ASSIGN_OR_RETURN(key, DeriveChildKey(key, component, version));
    if (slash == std::string_view::npos) {
      if (versions.size() > depth) {
        return Status::InvalidArgument("more node key versions than path components");
      }
      return key;
    }
    start = slash + 1;
  }
}

Result<SecretBytes> DerivePurposeKey(const SecretBytes& root, std::string_view purpose) {
  MV_RETURN_IF_ERROR(CheckNodeKey(root));
  if (purpose.empty()) {
    return Status::InvalidArgument("key purpose is empty");
  }
  return HkdfSha256(root.view(), AsBytes(kPurposeSalt), AsBytes(purpose), kKeySize);
}

}  // namespace medvault::crypto
