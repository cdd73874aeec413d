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
  return HkdfSha256(parent.view(), AsBytes(kTreeSalt), AsBytes(child_name), kKeySize);
}

Result<SecretBytes> DeriveKeyForPath(const SecretBytes& root, std::string_view path) {
  MV_RETURN_IF_ERROR(CheckNodeKey(root));
  SecretBytes key = SecretBytes::CopyFrom(root.view());
  if (path.empty()) {
    return key;
  }
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    const std::string_view component = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (component.empty()) {
      return Status::InvalidArgument("key tree path has an empty component");
    }
    MV_ASSIGN_OR_RETURN(key, DeriveChildKey(key, component));
    if (slash == std::string_view::npos) {
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
