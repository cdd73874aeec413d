// RFC 9162 §2.1 Merkle tree: hashing, the in-memory tree, proofs and their
// verification.
//
// The tree keeps every complete subtree hash: levels_[k][i] covers leaves
// [i * 2^k, (i + 1) * 2^k). The RFC's recursive definitions only ever ask for
// MTH(D[start:start+n]) where start is a multiple of the largest power of two
// not above n (by induction from the root), so every complete subtree they
// need is one lookup, and an incomplete one (at most one per proof level, on
// the right edge) folds O(log n) of them.
#include <openssl/evp.h>

#include <bit>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ledger/internal.h"
#include "ledger/ledger.h"

namespace medvault::ledger {
namespace {

constexpr uint8_t kLeafPrefix = 0x00;
constexpr uint8_t kNodePrefix = 0x01;
constexpr size_t kMaxProofHashes = 64;

// Largest power of two strictly below n. REQUIRES n >= 2.
uint64_t SplitPoint(uint64_t n) { return std::bit_floor(n - 1); }

std::string U(uint64_t v) { return std::to_string(v); }

// SHA-256 through OpenSSL (which uses the CPU's SHA extensions where present)
// with one reusable context per thread: proofs and Sync hash a lot of small
// inputs, and a fresh EVP context per hash would cost more than the hash.
// OpenSSL only fails here on allocation failure or a broken provider setup;
// returning a wrong hash would be worse than stopping.
[[noreturn]] void Fatal(const char* what) {
  std::fprintf(stderr, "medvault: fatal OpenSSL failure in %s\n", what);
  std::abort();
}

class Sha256Ctx {
 public:
  Sha256Ctx() : md_(EVP_MD_fetch(nullptr, "SHA256", nullptr)), ctx_(EVP_MD_CTX_new()) {
    if (md_ == nullptr || ctx_ == nullptr) {
      Fatal("SHA-256 context");
    }
  }
  ~Sha256Ctx() {
    EVP_MD_CTX_free(ctx_);
    EVP_MD_free(md_);
  }
  Sha256Ctx(const Sha256Ctx&) = delete;
  Sha256Ctx& operator=(const Sha256Ctx&) = delete;

  Hash Digest(uint8_t prefix, ByteView a, ByteView b = {}) {
    unsigned int len = 0;
    Hash out;
    if (EVP_DigestInit_ex2(ctx_, md_, nullptr) != 1 || EVP_DigestUpdate(ctx_, &prefix, 1) != 1 ||
        (!a.empty() && EVP_DigestUpdate(ctx_, a.data(), a.size()) != 1) ||
        (!b.empty() && EVP_DigestUpdate(ctx_, b.data(), b.size()) != 1) ||
        EVP_DigestFinal_ex(ctx_, out.data(), &len) != 1 || len != kHashSize) {
      Fatal("SHA-256");
    }
    return out;
  }

 private:
  EVP_MD* md_;
  EVP_MD_CTX* ctx_;
};

Sha256Ctx& ThreadCtx() {
  thread_local Sha256Ctx ctx;
  return ctx;
}

}  // namespace

Hash LeafHash(ByteView entry_bytes) { return ThreadCtx().Digest(kLeafPrefix, entry_bytes); }

Hash NodeHash(const Hash& left, const Hash& right) {
  return ThreadCtx().Digest(kNodePrefix, HashView(left), HashView(right));
}

Hash EmptyRoot() {
  // SHA-256 of the empty string.
  static const Hash kEmpty = {0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
                              0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
                              0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
  return kEmpty;
}

Result<Hash> HashFromBytes(ByteView bytes) {
  if (bytes.size() != kHashSize) {
    return Status::InvalidArgument("hash must be 32 bytes, got " + U(bytes.size()));
  }
  Hash h;
  std::copy(bytes.begin(), bytes.end(), h.begin());
  return h;
}

// ---------------------------------------------------------------------------
// MerkleTree

void MerkleTree::Append(const Hash& leaf_hash) {
  if (levels_.empty()) {
    levels_.emplace_back();
  }
  levels_[0].push_back(leaf_hash);
  // Each level whose count became even completes a subtree one level up.
  for (size_t k = 0; levels_[k].size() % 2 == 0; ++k) {
    if (levels_.size() == k + 1) {
      levels_.emplace_back();
    }
    const std::vector<Hash>& level = levels_[k];
    levels_[k + 1].push_back(NodeHash(level[level.size() - 2], level.back()));
  }
}

void MerkleTree::Reserve(uint64_t leaves) {
  uint64_t n = leaves;
  for (size_t k = 0; n > 0; ++k, n /= 2) {
    if (levels_.size() <= k) {
      levels_.emplace_back();
    }
    levels_[k].reserve(n);
  }
}

Hash MerkleTree::Subtree(uint64_t start, uint64_t n) const {
  if (std::has_single_bit(n)) {
    const int k = std::countr_zero(n);
    return levels_[static_cast<size_t>(k)][start >> k];
  }
  const uint64_t k = SplitPoint(n);
  return NodeHash(Subtree(start, k), Subtree(start + k, n - k));
}

Hash MerkleTree::Root() const {
  const uint64_t n = Size();
  return n == 0 ? EmptyRoot() : Subtree(0, n);
}

Result<Hash> MerkleTree::Root(uint64_t size) const {
  if (size > Size()) {
    return Status::InvalidArgument("tree size " + U(size) + " is beyond the log size " + U(Size()));
  }
  return size == 0 ? EmptyRoot() : Subtree(0, size);
}

Result<Hash> MerkleTree::LeafHashAt(uint64_t index) const {
  if (index >= Size()) {
    return Status::InvalidArgument("leaf index " + U(index) + " is beyond the log size " +
                                   U(Size()));
  }
  return levels_[0][index];
}

// PATH(m, D[start:start+n]) of RFC 9162 §2.1.3.1.
void MerkleTree::Path(uint64_t m, uint64_t start, uint64_t n, std::vector<Hash>& out) const {
  if (n <= 1) {
    return;
  }
  const uint64_t k = SplitPoint(n);
  if (m < k) {
    Path(m, start, k, out);
    out.push_back(Subtree(start + k, n - k));
  } else {
    Path(m - k, start + k, n - k, out);
    out.push_back(Subtree(start, k));
  }
}

Result<std::vector<Hash>> MerkleTree::InclusionProof(uint64_t index, uint64_t size) const {
  if (size > Size()) {
    return Status::InvalidArgument("tree size " + U(size) + " is beyond the log size " + U(Size()));
  }
  if (index >= size) {
    return Status::InvalidArgument("leaf index " + U(index) + " is not below tree size " + U(size));
  }
  std::vector<Hash> proof;
  proof.reserve(64 - static_cast<size_t>(std::countl_zero(size)));
  Path(index, 0, size, proof);
  return proof;
}

// SUBPROOF(m, D[start:start+n], whole) of RFC 9162 §2.1.4.1.
void MerkleTree::SubProof(uint64_t m, uint64_t start, uint64_t n, bool whole,
                          std::vector<Hash>& out) const {
  if (m == n) {
    if (!whole) {
      out.push_back(Subtree(start, m));
    }
    return;
  }
  const uint64_t k = SplitPoint(n);
  if (m <= k) {
    SubProof(m, start, k, whole, out);
    out.push_back(Subtree(start + k, n - k));
  } else {
    SubProof(m - k, start + k, n - k, false, out);
    out.push_back(Subtree(start, k));
  }
}

Result<std::vector<Hash>> MerkleTree::ConsistencyProof(uint64_t old_size, uint64_t new_size) const {
  if (new_size > Size()) {
    return Status::InvalidArgument("tree size " + U(new_size) + " is beyond the log size " +
                                   U(Size()));
  }
  if (old_size > new_size) {
    return Status::InvalidArgument("old size " + U(old_size) + " is above new size " + U(new_size));
  }
  std::vector<Hash> proof;
  if (old_size == 0 || old_size == new_size) {
    return proof;
  }
  proof.reserve(2 * (64 - static_cast<size_t>(std::countl_zero(new_size))));
  SubProof(old_size, 0, new_size, true, proof);
  return proof;
}

// ---------------------------------------------------------------------------
// Verification

Status VerifyInclusion(const Hash& leaf_hash, uint64_t index, uint64_t size,
                       std::span<const Hash> proof, const Hash& root) {
  if (index >= size) {
    return Status::InvalidArgument("leaf index " + U(index) + " is not below tree size " + U(size));
  }
  // RFC 9162 §2.1.3.2.
  uint64_t fn = index;
  uint64_t sn = size - 1;
  Hash r = leaf_hash;
  for (const Hash& p : proof) {
    if (sn == 0) {
      return Status::DataLoss("inclusion proof is longer than a tree of size " + U(size) +
                              " needs");
    }
    if ((fn & 1) == 1 || fn == sn) {
      r = NodeHash(p, r);
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) {
    return Status::DataLoss("inclusion proof is shorter than a tree of size " + U(size) + " needs");
  }
  if (r != root) {
    return Status::DataLoss("inclusion proof of leaf " + U(index) +
                            " does not lead to the root of tree size " + U(size));
  }
  return Status::Ok();
}

Status VerifyConsistency(uint64_t old_size, uint64_t new_size, const Hash& old_root,
                         const Hash& new_root, std::span<const Hash> proof) {
  if (old_size > new_size) {
    return Status::InvalidArgument("old size " + U(old_size) + " is above new size " + U(new_size));
  }
  const std::string sizes = "from " + U(old_size) + " to " + U(new_size);
  if (old_size == new_size) {
    if (!proof.empty()) {
      return Status::DataLoss("consistency proof " + sizes + " must be empty");
    }
    if (old_root != new_root) {
      return Status::DataLoss("roots differ at the same size " + U(old_size));
    }
    return Status::Ok();
  }
  if (old_size == 0) {
    if (!proof.empty()) {
      return Status::DataLoss("consistency proof " + sizes + " must be empty");
    }
    if (old_root != EmptyRoot()) {
      return Status::DataLoss("root of size 0 is not the empty tree hash");
    }
    return Status::Ok();
  }
  // RFC 9162 §2.1.4.2.
  if (proof.empty()) {
    return Status::DataLoss("consistency proof " + sizes + " is empty");
  }
  size_t pos = 0;
  Hash fr;
  if (std::has_single_bit(old_size)) {
    fr = old_root;  // the old tree is a complete subtree: its root is implied
  } else {
    fr = proof[pos++];
  }
  Hash sr = fr;
  uint64_t fn = old_size - 1;
  uint64_t sn = new_size - 1;
  while ((fn & 1) == 1) {
    fn >>= 1;
    sn >>= 1;
  }
  for (; pos < proof.size(); ++pos) {
    const Hash& c = proof[pos];
    if (sn == 0) {
      return Status::DataLoss("consistency proof " + sizes + " is too long");
    }
    if ((fn & 1) == 1 || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) {
    return Status::DataLoss("consistency proof " + sizes + " is too short");
  }
  if (fr != old_root) {
    return Status::DataLoss("consistency proof " + sizes + " does not lead to the old root");
  }
  if (sr != new_root) {
    return Status::DataLoss("consistency proof " + sizes + " does not lead to the new root");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Text form

std::string FormatProof(std::span<const Hash> proof) {
  std::string out;
  out.reserve(proof.size() * 45);
  for (const Hash& h : proof) {
    out += internal::Base64(HashView(h));
    out += '\n';
  }
  return out;
}

Result<std::vector<Hash>> ParseProof(std::string_view text) {
  std::vector<Hash> proof;
  if (text.empty()) {
    return proof;
  }
  if (text.back() != '\n') {
    return Status::InvalidArgument("proof must end with a newline");
  }
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    if (proof.size() == kMaxProofHashes) {
      return Status::InvalidArgument("proof has more than 64 hashes");
    }
    const auto bytes = internal::FromBase64(text.substr(pos, nl - pos));
    if (!bytes.has_value() || bytes->size() != kHashSize) {
      return Status::InvalidArgument("proof line " + U(proof.size() + 1) +
                                     " is not a base64 32-byte hash");
    }
    Hash h;
    std::copy(bytes->begin(), bytes->end(), h.begin());
    proof.push_back(h);
    pos = nl + 1;
  }
  return proof;
}

}  // namespace medvault::ledger
