#include <gtest/gtest.h>

#include <random>
#include <string>

#include "crypto/crypto.h"
#include "crypto_test_util.h"

namespace medvault::crypto {
namespace {

constexpr size_t kHeader = 108;
constexpr size_t kChunk = kEnvelopeChunkSize;
constexpr size_t kAbytes = 17;
constexpr size_t kSealedChunk = kChunk + kAbytes;

Bytes RandomData(size_t n) {
  Bytes b(n);
  RandomBytes(b);
  return b;
}

size_t ExpectedSealedSize(size_t n) {
  const size_t chunks = n == 0 ? 1 : (n + kChunk - 1) / kChunk;
  return kHeader + n + chunks * kAbytes;
}

// Splits `data` into pieces of random length (biased to hit small and
// chunk-straddling sizes) and calls `fn` on each.
template <typename Fn>
void ForRandomPieces(ByteView data, std::mt19937& rng, Fn fn) {
  std::uniform_int_distribution<int> kind(0, 3);
  while (!data.empty()) {
    size_t n = 0;
    switch (kind(rng)) {
      case 0:
        n = std::uniform_int_distribution<size_t>(0, 16)(rng);
        break;
      case 1:
        n = std::uniform_int_distribution<size_t>(0, 4096)(rng);
        break;
      case 2:
        n = kChunk + std::uniform_int_distribution<size_t>(0, 40)(rng) - 20;
        break;
      default:
        n = std::uniform_int_distribution<size_t>(0, 3 * kChunk)(rng);
        break;
    }
    n = std::min(n, data.size());
    fn(data.first(n));
    data = data.subspan(n);
  }
}

Bytes SealStreaming(const SecretBytes& key, const Bytes& aad, ByteView pt, std::mt19937& rng) {
  auto sealer = EnvelopeSealer::Create(key, aad);
  EXPECT_TRUE(sealer.ok());
  Bytes out = (*sealer)->header();
  ForRandomPieces(pt, rng, [&](ByteView piece) {
    Status st = (*sealer)->Update(piece, out);
    EXPECT_TRUE(st.ok()) << st.ToString();
  });
  Status st = (*sealer)->Finish(out);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

Result<Bytes> OpenStreaming(const SecretBytes& key, const Bytes& aad, ByteView sealed,
                            std::mt19937& rng) {
  if (sealed.size() < EnvelopeOpener::HeaderSize()) {
    return Status::DataLoss("short");
  }
  MV_ASSIGN_OR_RETURN(auto opener,
                      EnvelopeOpener::Create(key, aad, sealed.first(EnvelopeOpener::HeaderSize())));
  Bytes out;
  Status status;
  ForRandomPieces(sealed.subspan(EnvelopeOpener::HeaderSize()), rng, [&](ByteView piece) {
    if (status.ok()) {
      status = opener->Update(piece, out);
    }
  });
  MV_RETURN_IF_ERROR(status);
  MV_RETURN_IF_ERROR(opener->Finish(out));
  return out;
}

class EnvelopeTest : public ::testing::Test {
 protected:
  EnvelopeTest() : key_(RandomKey()), aad_(ObjectAad("patient-1", "labs/blood", 3, "obj-1")) {}

  // Both open paths must reject `sealed`; returns the whole-buffer status.
  Status ExpectBothFail(ByteView sealed) {
    auto whole = OpenObject(key_, aad_, sealed);
    EXPECT_FALSE(whole.ok());
    auto streamed = OpenStreaming(key_, aad_, sealed, rng_);
    EXPECT_FALSE(streamed.ok());
    return whole.status();
  }

  SecretBytes key_;
  Bytes aad_;
  std::mt19937 rng_{12345};
};

TEST_F(EnvelopeTest, RoundTripAllSizesAndPaths) {
  for (size_t n : {size_t{0}, size_t{1}, kChunk - 1, kChunk, kChunk + 1, 3 * kChunk,
                   size_t{1024 * 1024 + 7}}) {
    SCOPED_TRACE("size " + std::to_string(n));
    const Bytes pt = RandomData(n);
    auto whole = SealObject(key_, aad_, pt);
    ASSERT_TRUE(whole.ok());
    const Bytes streamed = SealStreaming(key_, aad_, pt, rng_);
    EXPECT_EQ(whole->size(), ExpectedSealedSize(n));
    EXPECT_EQ(streamed.size(), ExpectedSealedSize(n));
    for (const Bytes* sealed : std::initializer_list<const Bytes*>{&*whole, &streamed}) {
      auto a = OpenObject(key_, aad_, *sealed);
      ASSERT_TRUE(a.ok()) << a.status().ToString();
      EXPECT_EQ(*a, pt);
      for (int rep = 0; rep < 3; ++rep) {
        auto b = OpenStreaming(key_, aad_, *sealed, rng_);
        ASSERT_TRUE(b.ok()) << b.status().ToString();
        EXPECT_EQ(*b, pt);
      }
    }
  }
}

TEST_F(EnvelopeTest, HeaderLayout) {
  EXPECT_EQ(EnvelopeOpener::HeaderSize(), kHeader);
  auto sealer = EnvelopeSealer::Create(key_, aad_);
  ASSERT_TRUE(sealer.ok());
  const Bytes& h = (*sealer)->header();
  ASSERT_EQ(h.size(), kHeader);
  EXPECT_EQ(AsString(ByteView(h).first(4)), "MVE1");
  EXPECT_EQ(h[4], kEnvelopeVersion);
  EXPECT_EQ(h[5], 1);
  EXPECT_EQ(h[6], 0);
  EXPECT_EQ(h[7], 0);
  EXPECT_EQ(Bytes(h.begin() + 8, h.begin() + 12), (Bytes{0x00, 0x00, 0x01, 0x00}));
  // The wrapped data key is an AeadSeal under the node key with the object AAD.
  auto dk = AeadOpenSecret(key_, ByteView(h).subspan(12, 72), aad_);
  ASSERT_TRUE(dk.ok());
  EXPECT_EQ(dk->size(), kKeySize);
}

TEST_F(EnvelopeTest, EachObjectGetsAFreshDataKey) {
  auto a = SealObject(key_, aad_, AsBytes("same"));
  auto b = SealObject(key_, aad_, AsBytes("same"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  auto dk_a = AeadOpenSecret(key_, ByteView(*a).subspan(12, 72), aad_);
  auto dk_b = AeadOpenSecret(key_, ByteView(*b).subspan(12, 72), aad_);
  ASSERT_TRUE(dk_a.ok() && dk_b.ok());
  EXPECT_FALSE(dk_a->Equals(*dk_b));
}

TEST_F(EnvelopeTest, EmptyPlaintextIsOneEmptyFinalChunk) {
  auto sealed = SealObject(key_, aad_, {});
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->size(), kHeader + kAbytes);
  EXPECT_EQ(ExpectBothFail(ByteView(*sealed).first(kHeader)).code(), StatusCode::kDataLoss);
}

// Every region of the envelope is covered: a flipped bit anywhere fails.
TEST_F(EnvelopeTest, FlippedByteAnywhereFails) {
  const Bytes pt = RandomData(2 * kChunk + 100);
  auto sealed = SealObject(key_, aad_, pt);
  ASSERT_TRUE(sealed.ok());
  std::vector<size_t> positions;
  for (size_t i = 0; i < kHeader; ++i) {
    positions.push_back(i);  // magic, version, algorithm, reserved, chunk size, DK, ss header
  }
  for (size_t c = 0; c < 3; ++c) {
    const size_t start = kHeader + c * kSealedChunk;
    const size_t len = std::min(kSealedChunk, sealed->size() - start);
    for (size_t off : {size_t{0}, size_t{1}, size_t{2}, len / 2, len - 17, len - 16, len - 1}) {
      positions.push_back(start + off);  // encrypted tag byte, body, MAC
    }
  }
  for (size_t pos : positions) {
    SCOPED_TRACE("byte " + std::to_string(pos));
    Bytes bad = *sealed;
    bad[pos] ^= 0x04;
    const Status st = ExpectBothFail(bad);
    EXPECT_EQ(st.code(), StatusCode::kDataLoss) << st.ToString();
  }
}

TEST_F(EnvelopeTest, HeaderFieldErrorsArePrecise) {
  auto sealed = SealObject(key_, aad_, AsBytes("x"));
  ASSERT_TRUE(sealed.ok());
  auto with = [&](size_t pos, uint8_t value) {
    Bytes b = *sealed;
    b[pos] = value;
    return OpenObject(key_, aad_, b).status();
  };
  Status st = with(0, 'X');
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("magic"), std::string::npos);
  st = with(4, 2);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("version 2"), std::string::npos);
  st = with(5, 7);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("algorithm 7"), std::string::npos);
  st = with(6, 1);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("reserved"), std::string::npos);
  st = with(9, 0x20);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("chunk size"), std::string::npos);
}

TEST_F(EnvelopeTest, WrongAadFails) {
  auto sealed = SealObject(key_, aad_, RandomData(1000));
  ASSERT_TRUE(sealed.ok());
  for (const Bytes& other : {ObjectAad("patient-2", "labs/blood", 3, "obj-1"),
                             ObjectAad("patient-1", "labs/urine", 3, "obj-1"),
                             ObjectAad("patient-1", "labs/blood", 4, "obj-1"),
                             ObjectAad("patient-1", "labs/blood", 3, "obj-2"), Bytes()}) {
    auto opened = OpenObject(key_, other, *sealed);
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.status().code(), StatusCode::kDataLoss);
    EXPECT_EQ(EnvelopeOpener::Create(key_, other, ByteView(*sealed).first(kHeader)).status().code(),
              StatusCode::kDataLoss);
  }
}

TEST_F(EnvelopeTest, WrongNodeKeyFails) {
  auto sealed = SealObject(key_, aad_, RandomData(1000));
  ASSERT_TRUE(sealed.ok());
  const SecretBytes other = RandomKey();
  EXPECT_EQ(OpenObject(other, aad_, *sealed).status().code(), StatusCode::kDataLoss);
}

TEST_F(EnvelopeTest, WrongKeySizeIsInvalidArgument) {
  const SecretBytes short_key(16);
  EXPECT_EQ(SealObject(short_key, aad_, {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EnvelopeSealer::Create(short_key, aad_).status().code(), StatusCode::kInvalidArgument);
  auto sealed = SealObject(key_, aad_, {});
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(OpenObject(short_key, aad_, *sealed).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(EnvelopeTest, HeaderOfWrongSizeIsRejected) {
  auto sealed = SealObject(key_, aad_, {});
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(
      EnvelopeOpener::Create(key_, aad_, ByteView(*sealed).first(kHeader - 1)).status().code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(
      EnvelopeOpener::Create(key_, aad_, ByteView(*sealed).first(kHeader + 1)).status().code(),
      StatusCode::kInvalidArgument);
  for (size_t n = 0; n <= kHeader; ++n) {
    EXPECT_EQ(OpenObject(key_, aad_, ByteView(*sealed).first(n)).status().code(),
              StatusCode::kDataLoss)
        << n;
  }
}

TEST_F(EnvelopeTest, TruncationFails) {
  for (size_t n : {kChunk, 3 * kChunk, 3 * kChunk + 5}) {
    SCOPED_TRACE("size " + std::to_string(n));
    auto sealed = SealObject(key_, aad_, RandomData(n));
    ASSERT_TRUE(sealed.ok());
    // At every chunk boundary before the end, including "header only".
    for (size_t cut = kHeader; cut < sealed->size(); cut += kSealedChunk) {
      const Status st = ExpectBothFail(ByteView(*sealed).first(cut));
      EXPECT_EQ(st.code(), StatusCode::kDataLoss);
      EXPECT_NE(st.message().find("truncated"), std::string::npos) << st.ToString();
    }
    // Inside a chunk and inside the last MAC.
    EXPECT_EQ(ExpectBothFail(ByteView(*sealed).first(kHeader + 100)).code(), StatusCode::kDataLoss);
    EXPECT_EQ(ExpectBothFail(ByteView(*sealed).first(sealed->size() - 1)).code(),
              StatusCode::kDataLoss);
  }
}

TEST_F(EnvelopeTest, StreamingTruncationReportedByFinish) {
  auto sealed = SealObject(key_, aad_, RandomData(2 * kChunk));
  ASSERT_TRUE(sealed.ok());
  auto opener = EnvelopeOpener::Create(key_, aad_, ByteView(*sealed).first(kHeader));
  ASSERT_TRUE(opener.ok());
  Bytes out;
  ASSERT_TRUE((*opener)->Update(ByteView(*sealed).subspan(kHeader, kSealedChunk), out).ok());
  // A full chunk is held until it is known whether it is the last one.
  EXPECT_TRUE(out.empty());
  Status st = (*opener)->Finish(out);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  // Once failed, the opener stays failed.
  EXPECT_FALSE((*opener)->Update(ByteView(*sealed).subspan(kHeader + kSealedChunk), out).ok());
  EXPECT_FALSE((*opener)->Finish(out).ok());
}

TEST_F(EnvelopeTest, AlignedFinalChunkIsReleasedByFinish) {
  const Bytes pt = RandomData(kChunk);
  auto sealed = SealObject(key_, aad_, pt);
  ASSERT_TRUE(sealed.ok());
  auto opener = EnvelopeOpener::Create(key_, aad_, ByteView(*sealed).first(kHeader));
  ASSERT_TRUE(opener.ok());
  Bytes out;
  ASSERT_TRUE((*opener)->Update(ByteView(*sealed).subspan(kHeader), out).ok());
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE((*opener)->Finish(out).ok());
  EXPECT_EQ(out, pt);
}

TEST_F(EnvelopeTest, DataAfterFinalFails) {
  for (size_t n : {size_t{0}, size_t{10}, kChunk, kChunk + 10}) {
    SCOPED_TRACE("size " + std::to_string(n));
    auto sealed = SealObject(key_, aad_, RandomData(n));
    ASSERT_TRUE(sealed.ok());
    for (const Bytes& garbage :
         {Bytes{0}, RandomData(17), RandomData(kSealedChunk), RandomData(kSealedChunk + 3)}) {
      Bytes bad = *sealed;
      bad.insert(bad.end(), garbage.begin(), garbage.end());
      const Status st = ExpectBothFail(bad);
      EXPECT_EQ(st.code(), StatusCode::kDataLoss);
    }
    // Streaming: extra Update after the body, in a separate call.
    auto opener = EnvelopeOpener::Create(key_, aad_, ByteView(*sealed).first(kHeader));
    ASSERT_TRUE(opener.ok());
    Bytes out;
    ASSERT_TRUE((*opener)->Update(ByteView(*sealed).subspan(kHeader), out).ok());
    const uint8_t extra[1] = {0};
    const Status st = (*opener)->Update(extra, out);
    const Status fin = (*opener)->Finish(out);
    EXPECT_FALSE(st.ok() && fin.ok());
  }
}

TEST_F(EnvelopeTest, SwappedOrDuplicatedChunksFail) {
  auto sealed = SealObject(key_, aad_, RandomData(3 * kChunk + 9));
  ASSERT_TRUE(sealed.ok());
  auto chunk = [&](size_t i) {
    const size_t start = kHeader + i * kSealedChunk;
    return ByteView(*sealed).subspan(start, std::min(kSealedChunk, sealed->size() - start));
  };
  auto assemble = [&](std::initializer_list<size_t> order) {
    Bytes b(sealed->begin(), sealed->begin() + kHeader);
    for (size_t i : order) {
      b.insert(b.end(), chunk(i).begin(), chunk(i).end());
    }
    return b;
  };
  ASSERT_TRUE(OpenObject(key_, aad_, assemble({0, 1, 2, 3})).ok());
  EXPECT_EQ(ExpectBothFail(assemble({1, 0, 2, 3})).code(), StatusCode::kDataLoss);
  EXPECT_EQ(ExpectBothFail(assemble({0, 2, 1, 3})).code(), StatusCode::kDataLoss);
  EXPECT_EQ(ExpectBothFail(assemble({0, 1, 3})).code(), StatusCode::kDataLoss);
  EXPECT_EQ(ExpectBothFail(assemble({0, 0, 1, 2, 3})).code(), StatusCode::kDataLoss);
}

TEST_F(EnvelopeTest, ChunksFromAnotherObjectFail) {
  auto a = SealObject(key_, aad_, RandomData(kChunk + 1));
  auto b = SealObject(key_, aad_, RandomData(kChunk + 1));
  ASSERT_TRUE(a.ok() && b.ok());
  Bytes mixed(a->begin(), a->begin() + kHeader + kSealedChunk);
  mixed.insert(mixed.end(), b->begin() + kHeader + kSealedChunk, b->end());
  EXPECT_EQ(ExpectBothFail(mixed).code(), StatusCode::kDataLoss);
}

TEST_F(EnvelopeTest, SealerRefusesInputAfterFinish) {
  auto sealer = EnvelopeSealer::Create(key_, aad_);
  ASSERT_TRUE(sealer.ok());
  Bytes out;
  ASSERT_TRUE((*sealer)->Finish(out).ok());
  EXPECT_EQ((*sealer)->Update(AsBytes("more"), out).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ((*sealer)->Finish(out).code(), StatusCode::kFailedPrecondition);
}

TEST_F(EnvelopeTest, SealerHoldsBackAtMostOneChunk) {
  auto sealer = EnvelopeSealer::Create(key_, aad_);
  ASSERT_TRUE(sealer.ok());
  Bytes out;
  const Bytes pt = RandomData(3 * kChunk);
  ASSERT_TRUE((*sealer)->Update(pt, out).ok());
  EXPECT_EQ(out.size(), 2 * kSealedChunk);
  ASSERT_TRUE((*sealer)->Update(AsBytes("x"), out).ok());
  EXPECT_EQ(out.size(), 3 * kSealedChunk);
  ASSERT_TRUE((*sealer)->Finish(out).ok());
  EXPECT_EQ(out.size(), 3 * kSealedChunk + 1 + kAbytes);
}

TEST(ObjectAadTest, CanonicalEncoding) {
  const Bytes aad = ObjectAad("p", "a/b", 0x0102, "o");
  Bytes expected = ToBytes("medvault/v1/object");
  const Bytes fields = {1, 0, 0, 0, 'p', 3, 0, 0, 0, 'a', '/', 'b', 2,
                        1, 0, 0, 0, 0,   0, 0, 1, 0, 0,   0,   'o'};
  expected.insert(expected.end(), fields.begin(), fields.end());
  EXPECT_EQ(aad, expected);
}

TEST(ObjectAadTest, FieldBoundariesAreUnambiguous) {
  EXPECT_NE(ObjectAad("ab", "c", 1, "o"), ObjectAad("a", "bc", 1, "o"));
  EXPECT_NE(ObjectAad("p", "x", 1, ""), ObjectAad("p", "", 1, "x"));
  EXPECT_NE(ObjectAad("p", "x", 1, "o"), ObjectAad("p", "x", 256, "o"));
  EXPECT_EQ(ObjectAad("p", "x", 1, "o"), ObjectAad("p", "x", 1, "o"));
}

}  // namespace
}  // namespace medvault::crypto
