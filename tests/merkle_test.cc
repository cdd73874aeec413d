// MerkleTree and proof verification against an independent reference: the
// recursive definitions of RFC 9162 §2.1 (MTH, PATH, PROOF, SUBPROOF)
// written out straight from the RFC text over the leaf data, hashed with
// libsodium's SHA-256 (the implementation uses OpenSSL's), plus the published
// RFC 6962 test vectors of the Certificate Transparency reference code.
#include <gtest/gtest.h>
#include <sodium.h>

#include <string>
#include <vector>

#include "crypto/crypto.h"
#include "crypto_test_util.h"
#include "ledger/ledger.h"

namespace medvault::ledger {
namespace {

using medvault::testing::Hex;

// ---------------------------------------------------------------------------
// Reference implementation (RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1).

Bytes RefHash(const Bytes& data) {
  Bytes out(crypto_hash_sha256_BYTES);
  crypto_hash_sha256(out.data(), data.data(), data.size());
  return out;
}

Bytes Cat(uint8_t prefix, const Bytes& a, const Bytes& b = {}) {
  Bytes out{prefix};
  out.insert(out.end(), a.begin(), a.end());
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

// "k is the largest power of two smaller than n".
size_t K(size_t n) {
  size_t k = 1;
  while (k * 2 < n) {
    k *= 2;
  }
  return k;
}

class Reference {
 public:
  explicit Reference(std::vector<Bytes> d) : d_(std::move(d)) {}

  // MTH(D[lo:hi]).
  Bytes Mth(size_t lo, size_t hi) const {
    const size_t n = hi - lo;
    if (n == 0) {
      return RefHash({});
    }
    if (n == 1) {
      return RefHash(Cat(0x00, d_[lo]));
    }
    const size_t k = K(n);
    return RefHash(Cat(0x01, Mth(lo, lo + k), Mth(lo + k, hi)));
  }

  // PATH(m, D[lo:hi]).
  std::vector<Bytes> Path(size_t m, size_t lo, size_t hi) const {
    const size_t n = hi - lo;
    if (n == 1) {
      return {};
    }
    const size_t k = K(n);
    std::vector<Bytes> out;
    if (m < k) {
      out = Path(m, lo, lo + k);
      out.push_back(Mth(lo + k, hi));
    } else {
      out = Path(m - k, lo + k, hi);
      out.push_back(Mth(lo, lo + k));
    }
    return out;
  }

  // PROOF(m, D[0:n]) = SUBPROOF(m, D[0:n], true).
  std::vector<Bytes> Proof(size_t m, size_t n) const { return SubProof(m, 0, n, true); }

  Bytes LeafHashAt(size_t i) const { return RefHash(Cat(0x00, d_[i])); }

 private:
  std::vector<Bytes> SubProof(size_t m, size_t lo, size_t hi, bool b) const {
    const size_t n = hi - lo;
    if (m == n) {
      if (b) {
        return {};
      }
      return {Mth(lo, hi)};
    }
    const size_t k = K(n);
    std::vector<Bytes> out;
    if (m <= k) {
      out = SubProof(m, lo, lo + k, b);
      out.push_back(Mth(lo + k, hi));
    } else {
      out = SubProof(m - k, lo + k, hi, false);
      out.push_back(Mth(lo, lo + k));
    }
    return out;
  }

  std::vector<Bytes> d_;
};

Hash H(const Bytes& b) {
  auto h = HashFromBytes(b);
  EXPECT_TRUE(h.ok());
  return h.ok() ? *h : Hash{};
}

std::vector<Hash> Hs(const std::vector<Bytes>& v) {
  std::vector<Hash> out;
  for (const Bytes& b : v) {
    out.push_back(H(b));
  }
  return out;
}

std::vector<Bytes> MakeLeaves(size_t n) {
  std::vector<Bytes> out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(ToBytes("leaf " + std::to_string(i)));
  }
  return out;
}

MerkleTree TreeOf(const std::vector<Bytes>& leaves) {
  MerkleTree t;
  for (const Bytes& l : leaves) {
    t.Append(LeafHash(l));
  }
  return t;
}

// ---------------------------------------------------------------------------
// Published vectors (RFC 6962 reference implementations: the CT C++/Go/Python
// test suites share these leaves, roots and proofs).

const std::vector<std::string> kCtLeaves = {"",
                                            "00",
                                            "10",
                                            "2021",
                                            "3031",
                                            "40414243",
                                            "5051525354555657",
                                            "606162636465666768696a6b6c6d6e6f"};
const std::vector<std::string> kCtRoots = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};

std::vector<Hash> HexHashes(const std::vector<std::string>& hex) {
  std::vector<Hash> out;
  for (const std::string& h : hex) {
    out.push_back(H(Hex(h)));
  }
  return out;
}

MerkleTree CtTree() {
  MerkleTree t;
  for (const std::string& l : kCtLeaves) {
    t.Append(LeafHash(Hex(l)));
  }
  return t;
}

TEST(MerkleVectors, EmptyTreeIsSha256OfNothing) {
  EXPECT_EQ(ToHex(HashView(EmptyRoot())),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  MerkleTree t;
  EXPECT_EQ(t.Root(), EmptyRoot());
  EXPECT_EQ(*t.Root(0), EmptyRoot());
}

TEST(MerkleVectors, CtRootsForOneToEightLeaves) {
  const MerkleTree t = CtTree();
  for (size_t n = 1; n <= 8; ++n) {
    EXPECT_EQ(ToHex(HashView(*t.Root(n))), kCtRoots[n - 1]) << n;
  }
  EXPECT_EQ(ToHex(HashView(t.Root())), kCtRoots[7]);
}

TEST(MerkleVectors, CtInclusionProofs) {
  const MerkleTree t = CtTree();
  struct Case {
    uint64_t index, size;
    std::vector<std::string> proof;
  };
  const std::vector<Case> cases = {
      {0,
       8,
       {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {5,
       8,
       {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      {2, 3, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
      {1,
       5,
       {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
      {0, 1, {}},
  };
  for (const Case& c : cases) {
    const std::vector<Hash> want = HexHashes(c.proof);
    auto got = t.InclusionProof(c.index, c.size);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, want) << c.index << "/" << c.size;
    const Hash leaf = LeafHash(Hex(kCtLeaves[c.index]));
    const Hash root = H(Hex(kCtRoots[c.size - 1]));
    EXPECT_TRUE(VerifyInclusion(leaf, c.index, c.size, want, root).ok());
  }
}

TEST(MerkleVectors, CtConsistencyProofs) {
  const MerkleTree t = CtTree();
  struct Case {
    uint64_t old_size, new_size;
    std::vector<std::string> proof;
  };
  const std::vector<Case> cases = {
      {1, 1, {}},
      {1,
       8,
       {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {6,
       8,
       {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      {2,
       5,
       {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
  };
  for (const Case& c : cases) {
    const std::vector<Hash> want = HexHashes(c.proof);
    auto got = t.ConsistencyProof(c.old_size, c.new_size);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, want) << c.old_size << "->" << c.new_size;
    EXPECT_TRUE(VerifyConsistency(c.old_size, c.new_size, H(Hex(kCtRoots[c.old_size - 1])),
                                  H(Hex(kCtRoots[c.new_size - 1])), want)
                    .ok());
  }
}

// ---------------------------------------------------------------------------
// Exhaustive comparison with the reference, sizes 1..64.

constexpr size_t kMax = 64;

class MerkleReferenceTest : public ::testing::Test {
 protected:
  MerkleReferenceTest() : leaves_(MakeLeaves(kMax)), ref_(leaves_), tree_(TreeOf(leaves_)) {}
  std::vector<Bytes> leaves_;
  Reference ref_;
  MerkleTree tree_;
};

TEST_F(MerkleReferenceTest, LeafHashAndNodeHashFollowRfc) {
  for (size_t i = 0; i < kMax; ++i) {
    EXPECT_EQ(LeafHash(leaves_[i]), H(ref_.LeafHashAt(i)));
  }
  const Hash a = LeafHash(leaves_[0]);
  const Hash b = LeafHash(leaves_[1]);
  Bytes cat{0x01};
  cat.insert(cat.end(), a.begin(), a.end());
  cat.insert(cat.end(), b.begin(), b.end());
  EXPECT_EQ(NodeHash(a, b), H(RefHash(cat)));
  EXPECT_EQ(EmptyRoot(), H(RefHash({})));
}

TEST_F(MerkleReferenceTest, RootsAtEverySize) {
  MerkleTree growing;
  for (size_t n = 1; n <= kMax; ++n) {
    growing.Append(LeafHash(leaves_[n - 1]));
    const Hash want = H(ref_.Mth(0, n));
    EXPECT_EQ(growing.Root(), want) << n;
    EXPECT_EQ(*tree_.Root(n), want) << n;
    EXPECT_EQ(growing.Size(), n);
  }
}

TEST_F(MerkleReferenceTest, InclusionProofsAtEverySizeAndIndex) {
  for (size_t n = 1; n <= kMax; ++n) {
    const Hash root = H(ref_.Mth(0, n));
    for (size_t i = 0; i < n; ++i) {
      const std::vector<Hash> want = Hs(ref_.Path(i, 0, n));
      auto got = tree_.InclusionProof(i, n);
      ASSERT_TRUE(got.ok());
      ASSERT_EQ(*got, want) << i << "/" << n;
      EXPECT_TRUE(VerifyInclusion(LeafHash(leaves_[i]), i, n, want, root).ok()) << i << "/" << n;
    }
  }
}

TEST_F(MerkleReferenceTest, ConsistencyProofsAtEveryPairOfSizes) {
  for (size_t n = 1; n <= kMax; ++n) {
    const Hash new_root = H(ref_.Mth(0, n));
    for (size_t m = 1; m <= n; ++m) {
      const std::vector<Hash> want = m == n ? std::vector<Hash>{} : Hs(ref_.Proof(m, n));
      auto got = tree_.ConsistencyProof(m, n);
      ASSERT_TRUE(got.ok());
      ASSERT_EQ(*got, want) << m << "->" << n;
      EXPECT_TRUE(VerifyConsistency(m, n, H(ref_.Mth(0, m)), new_root, want).ok())
          << m << "->" << n;
    }
    // From the empty tree: the empty proof.
    auto from_zero = tree_.ConsistencyProof(0, n);
    ASSERT_TRUE(from_zero.ok());
    EXPECT_TRUE(from_zero->empty());
    EXPECT_TRUE(VerifyConsistency(0, n, EmptyRoot(), new_root, {}).ok());
  }
}

// Every way of breaking an inclusion proof is refused.
TEST_F(MerkleReferenceTest, InclusionRejectsAlteredProofs) {
  for (size_t n = 1; n <= kMax; ++n) {
    const Hash root = H(ref_.Mth(0, n));
    for (size_t i = 0; i < n; ++i) {
      const Hash leaf = LeafHash(leaves_[i]);
      const std::vector<Hash> proof = Hs(ref_.Path(i, 0, n));
      const auto rejects = [&](uint64_t idx, uint64_t size, const std::vector<Hash>& p,
                               const Hash& r,
                               const Hash& l) { return !VerifyInclusion(l, idx, size, p, r).ok(); };
      // Flipped bits in each element.
      for (size_t j = 0; j < proof.size(); ++j) {
        for (size_t byte : {size_t{0}, size_t{31}}) {
          std::vector<Hash> bad = proof;
          bad[j][byte] ^= 0x01;
          EXPECT_TRUE(rejects(i, n, bad, root, leaf)) << i << "/" << n << " elem " << j;
        }
      }
      // Wrong leaf, wrong root.
      Hash other_leaf = leaf;
      other_leaf[5] ^= 0x80;
      EXPECT_TRUE(rejects(i, n, proof, root, other_leaf));
      EXPECT_TRUE(rejects(i, n, proof, EmptyRoot(), leaf));
      // Truncated, extended at either end.
      if (!proof.empty()) {
        EXPECT_TRUE(rejects(i, n, std::vector<Hash>(proof.begin(), proof.end() - 1), root, leaf));
        EXPECT_TRUE(rejects(i, n, std::vector<Hash>(proof.begin() + 1, proof.end()), root, leaf));
      }
      std::vector<Hash> longer = proof;
      longer.push_back(root);
      EXPECT_TRUE(rejects(i, n, longer, root, leaf));
      longer = proof;
      longer.push_back(Hash{});
      EXPECT_TRUE(rejects(i, n, longer, root, leaf));
      longer = proof;
      longer.insert(longer.begin(), leaf);
      EXPECT_TRUE(rejects(i, n, longer, root, leaf));
      // Another index in the same tree (the claim is false: leaves differ).
      for (uint64_t other : {i - 1, i + 1, i ^ 2}) {
        if (other < n && other != i) {
          EXPECT_TRUE(rejects(other, n, proof, root, leaf)) << i << "->" << other << "/" << n;
        }
      }
      // Another size, with that size's true root: refused unless the proof
      // happens to be that size's true proof too.
      for (uint64_t size : {n - 1, n + 1, n * 2, n / 2}) {
        if (size == n || size == 0 || size > kMax || i >= size) {
          continue;
        }
        if (Hs(ref_.Path(i, 0, size)) == proof) {
          continue;
        }
        EXPECT_TRUE(rejects(i, size, proof, H(ref_.Mth(0, size)), leaf))
            << i << "/" << n << " as size " << size;
      }
    }
  }
}

TEST_F(MerkleReferenceTest, ConsistencyRejectsAlteredProofs) {
  for (size_t n = 2; n <= kMax; ++n) {
    const Hash new_root = H(ref_.Mth(0, n));
    for (size_t m = 1; m < n; ++m) {
      const Hash old_root = H(ref_.Mth(0, m));
      const std::vector<Hash> proof = Hs(ref_.Proof(m, n));
      const auto rejects = [&](uint64_t a, uint64_t b, const Hash& ra, const Hash& rb,
                               const std::vector<Hash>& p) {
        return !VerifyConsistency(a, b, ra, rb, p).ok();
      };
      for (size_t j = 0; j < proof.size(); ++j) {
        std::vector<Hash> bad = proof;
        bad[j][17] ^= 0x04;
        EXPECT_TRUE(rejects(m, n, old_root, new_root, bad)) << m << "->" << n << " elem " << j;
      }
      EXPECT_TRUE(rejects(m, n, old_root, new_root, {}));
      EXPECT_TRUE(rejects(m, n, new_root, old_root, proof));
      EXPECT_TRUE(rejects(m, n, EmptyRoot(), new_root, proof));
      EXPECT_TRUE(rejects(m, n, old_root, EmptyRoot(), proof));
      EXPECT_TRUE(
          rejects(m, n, old_root, new_root, std::vector<Hash>(proof.begin(), proof.end() - 1)));
      EXPECT_TRUE(
          rejects(m, n, old_root, new_root, std::vector<Hash>(proof.begin() + 1, proof.end())));
      std::vector<Hash> longer = proof;
      longer.push_back(new_root);
      EXPECT_TRUE(rejects(m, n, old_root, new_root, longer));
      longer = proof;
      longer.insert(longer.begin(), proof[0]);
      EXPECT_TRUE(rejects(m, n, old_root, new_root, longer));
      // Other sizes with their true roots: refused unless the proof is also
      // the true proof for them.
      for (uint64_t a : {m - 1, m + 1, m * 2, m / 2}) {
        if (a == m || a == 0 || a >= n) {
          continue;
        }
        if (Hs(ref_.Proof(a, n)) == proof) {
          continue;
        }
        EXPECT_TRUE(rejects(a, n, H(ref_.Mth(0, a)), new_root, proof))
            << m << "->" << n << " as old size " << a;
      }
      for (uint64_t b : {n - 1, n + 1, n * 2}) {
        if (b == n || b <= m || b > kMax) {
          continue;
        }
        if (Hs(ref_.Proof(m, b)) == proof) {
          continue;
        }
        EXPECT_TRUE(rejects(m, b, old_root, H(ref_.Mth(0, b)), proof))
            << m << "->" << n << " as new size " << b;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Edge cases and argument errors.

TEST(MerkleEdges, TrivialConsistency) {
  const Hash a = LeafHash(ToBytes("a"));
  EXPECT_TRUE(VerifyConsistency(1, 1, a, a, {}).ok());
  EXPECT_EQ(VerifyConsistency(1, 1, a, EmptyRoot(), {}).code(), StatusCode::kDataLoss);
  EXPECT_EQ(VerifyConsistency(1, 1, a, a, std::vector<Hash>{a}).code(), StatusCode::kDataLoss);
  EXPECT_TRUE(VerifyConsistency(0, 0, EmptyRoot(), EmptyRoot(), {}).ok());
  EXPECT_TRUE(VerifyConsistency(0, 5, EmptyRoot(), a, {}).ok());
  EXPECT_EQ(VerifyConsistency(0, 5, a, a, {}).code(), StatusCode::kDataLoss);
  EXPECT_EQ(VerifyConsistency(0, 5, EmptyRoot(), a, std::vector<Hash>{a}).code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(VerifyConsistency(5, 4, a, a, {}).code(), StatusCode::kInvalidArgument);
}

TEST(MerkleEdges, ImpossibleInclusionArguments) {
  const Hash a = LeafHash(ToBytes("a"));
  EXPECT_EQ(VerifyInclusion(a, 0, 0, {}, EmptyRoot()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyInclusion(a, 3, 3, {}, a).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(VerifyInclusion(a, 0, 1, {}, a).ok());
  EXPECT_EQ(VerifyInclusion(a, 0, 1, std::vector<Hash>{a}, a).code(), StatusCode::kDataLoss);
  const Status st = VerifyInclusion(a, 0, 2, {}, a);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("shorter"), std::string::npos) << st.message();
}

TEST(MerkleEdges, TreeRefusesOutOfRangeArguments) {
  const MerkleTree t = TreeOf(MakeLeaves(5));
  EXPECT_EQ(t.Root(6).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t.InclusionProof(5, 5).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t.InclusionProof(0, 6).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t.ConsistencyProof(3, 6).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t.ConsistencyProof(4, 3).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t.LeafHashAt(5).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*t.LeafHashAt(4), LeafHash(ToBytes("leaf 4")));
}

// A larger tree: spot checks against the reference at sizes that are not
// powers of two, including old sizes deep inside.
TEST(MerkleLarge, SpotChecksAtAThousandLeaves) {
  const std::vector<Bytes> leaves = MakeLeaves(1000);
  const Reference ref(leaves);
  MerkleTree t;
  t.Reserve(1000);
  for (const Bytes& l : leaves) {
    t.Append(LeafHash(l));
  }
  for (uint64_t n : {1000u, 999u, 513u, 512u, 777u}) {
    const Hash root = H(ref.Mth(0, n));
    EXPECT_EQ(*t.Root(n), root);
    for (uint64_t i : {uint64_t{0}, n / 3, n / 2, n - 1}) {
      auto p = t.InclusionProof(i, n);
      ASSERT_TRUE(p.ok());
      EXPECT_EQ(*p, Hs(ref.Path(i, 0, n)));
      EXPECT_TRUE(VerifyInclusion(LeafHash(leaves[i]), i, n, *p, root).ok());
    }
    for (uint64_t m : {uint64_t{1}, uint64_t{7}, n / 2, n - 1}) {
      auto p = t.ConsistencyProof(m, n);
      ASSERT_TRUE(p.ok());
      EXPECT_EQ(*p, Hs(ref.Proof(m, n)));
      EXPECT_TRUE(VerifyConsistency(m, n, H(ref.Mth(0, m)), root, *p).ok());
    }
  }
}

TEST(MerkleText, ProofRoundTripAndRejects) {
  const MerkleTree t = TreeOf(MakeLeaves(11));
  const std::vector<Hash> proof = *t.InclusionProof(3, 11);
  const std::string text = FormatProof(proof);
  auto back = ParseProof(text);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, proof);
  EXPECT_TRUE(ParseProof("")->empty());
  EXPECT_FALSE(ParseProof(text.substr(0, text.size() - 1)).ok());  // no final newline
  EXPECT_FALSE(ParseProof("AAAA\n").ok());                         // 3 bytes, not 32
  EXPECT_FALSE(ParseProof(text + "\n").ok());                      // empty line
  std::string spaced = text;
  spaced.insert(0, " ");
  EXPECT_FALSE(ParseProof(spaced).ok());
  std::string many;
  for (int i = 0; i < 65; ++i) {
    many += FormatProof(std::vector<Hash>{EmptyRoot()});
  }
  EXPECT_FALSE(ParseProof(many).ok());
}

}  // namespace
}  // namespace medvault::ledger
