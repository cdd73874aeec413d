#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <random>
#include <string>

#include "crypto/crypto.h"
#include "crypto_test_util.h"

namespace medvault::crypto {
namespace {

// A version-2 header with one node-key slot: 14 fixed bytes, the slot list
// (count 1, kind 1, key version 4, size 2, wrapped key 72) and the
// secretstream header (24).
constexpr size_t kHeader = 14 + 1 + 1 + 4 + 2 + 72 + 24;
constexpr size_t kSlotOffset = 14 + 1 + 1 + 4 + 2;
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
                            std::mt19937& rng, uint32_t key_version = 1,
                            const std::vector<KeySlot>* slots = nullptr) {
  if (sealed.size() < kEnvelopeHeaderPrefixSize) {
    return Status::DataLoss("short");
  }
  MV_ASSIGN_OR_RETURN(size_t header, EnvelopeHeaderSize(sealed.first(kEnvelopeHeaderPrefixSize)));
  if (sealed.size() < header) {
    return Status::DataLoss("short");
  }
  MV_ASSIGN_OR_RETURN(auto opener,
                      EnvelopeOpener::Create(key, key_version, aad, sealed.first(header), slots));
  Bytes out;
  Status status;
  ForRandomPieces(sealed.subspan(header), rng, [&](ByteView piece) {
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

// The documented slot AAD (docs/formats.md).
Bytes SlotAadForTest(const Bytes& aad, uint8_t kind, uint32_t key_version) {
  Bytes out = ToBytes("medvault/v2/key-slot");
  PutLengthPrefixed(out, aad);
  PutU8(out, kind);
  PutU32(out, key_version);
  return out;
}

TEST_F(EnvelopeTest, HeaderLayout) {
  auto sealer = EnvelopeSealer::Create(key_, 7, aad_);
  ASSERT_TRUE(sealer.ok());
  const Bytes& h = (*sealer)->header();
  ASSERT_EQ(h.size(), kHeader);
  EXPECT_EQ(EnvelopeHeaderSize(ByteView(h).first(kEnvelopeHeaderPrefixSize)).value(), kHeader);
  EXPECT_EQ(AsString(ByteView(h).first(4)), "MVE1");
  EXPECT_EQ(h[4], kEnvelopeVersion);
  EXPECT_EQ(h[4], 2);
  EXPECT_EQ(h[5], 1);
  EXPECT_EQ(h[6], 0);
  EXPECT_EQ(h[7], 0);
  EXPECT_EQ(Bytes(h.begin() + 8, h.begin() + 12), (Bytes{0x00, 0x00, 0x01, 0x00}));
  EXPECT_EQ(Bytes(h.begin() + 12, h.begin() + 14), (Bytes{80, 0}));  // slots size
  EXPECT_EQ(h[14], 1);                                               // one slot
  EXPECT_EQ(h[15], 1);                                               // kind: node key
  EXPECT_EQ(Bytes(h.begin() + 16, h.begin() + 20), (Bytes{7, 0, 0, 0}));
  EXPECT_EQ(Bytes(h.begin() + 20, h.begin() + 22), (Bytes{72, 0}));
  // The wrapped data key is an AeadSeal under the node key with the slot AAD.
  auto dk = AeadOpenSecret(key_, ByteView(h).subspan(kSlotOffset, 72), SlotAadForTest(aad_, 1, 7));
  ASSERT_TRUE(dk.ok());
  EXPECT_EQ(dk->size(), kKeySize);
  EXPECT_FALSE(AeadOpenSecret(key_, ByteView(h).subspan(kSlotOffset, 72), aad_).ok());
  auto slots = ReadKeySlots(h);
  ASSERT_TRUE(slots.ok());
  ASSERT_EQ(slots->size(), 1u);
  EXPECT_EQ((*slots)[0].kind, 1);
  EXPECT_EQ((*slots)[0].key_version, 7u);
}

TEST_F(EnvelopeTest, EachObjectGetsAFreshDataKey) {
  auto a = SealObject(key_, aad_, AsBytes("same"));
  auto b = SealObject(key_, aad_, AsBytes("same"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  auto dk_a =
      AeadOpenSecret(key_, ByteView(*a).subspan(kSlotOffset, 72), SlotAadForTest(aad_, 1, 1));
  auto dk_b =
      AeadOpenSecret(key_, ByteView(*b).subspan(kSlotOffset, 72), SlotAadForTest(aad_, 1, 1));
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
    positions.push_back(i);  // magic, version, ..., slots size, slot fields, DK, ss header
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
  st = with(4, 3);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("version 3"), std::string::npos);
  st = with(5, 7);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("algorithm 7"), std::string::npos);
  st = with(6, 1);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("reserved"), std::string::npos);
  st = with(9, 0x20);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("chunk size"), std::string::npos);
  st = with(15, 9);  // a slot kind this build does not know: no node-key slot left
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("no key slot"), std::string::npos);
  st = with(16, 2);  // the slot relabelled to key version 2
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("no key slot"), std::string::npos);
  st = with(14, 2);  // two slots announced, one present
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("slot"), std::string::npos);
  st = with(12, 0);  // empty slot list
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
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

// ---------------------------------------------------------------------------
// Key versions and slots.

TEST_F(EnvelopeTest, KeyVersionMustMatchASlot) {
  const Bytes pt = RandomData(1000);
  auto sealed = SealObject(key_, aad_, pt, 3);
  ASSERT_TRUE(sealed.ok());
  auto opened = OpenObject(key_, aad_, *sealed, 3);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, pt);
  for (uint32_t v : {1u, 2u, 4u}) {
    auto wrong = OpenObject(key_, aad_, *sealed, v);
    ASSERT_FALSE(wrong.ok());
    EXPECT_EQ(wrong.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(wrong.status().message().find("no key slot for node key version"), std::string::npos);
  }
  EXPECT_EQ(SealObject(key_, aad_, pt, 0).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(EnvelopeTest, RewrapMovesTheDataKeyWithoutTouchingTheBody) {
  const Bytes pt = RandomData(kChunk + 5);
  auto sealed = SealObject(key_, aad_, pt);
  ASSERT_TRUE(sealed.ok());
  auto header_slots = ReadKeySlots(ByteView(*sealed).first(kHeader));
  ASSERT_TRUE(header_slots.ok());
  const SecretBytes new_key = RandomKey();
  auto slot = RewrapKeySlot(*header_slots, key_, 1, new_key, 2, aad_);
  ASSERT_TRUE(slot.ok()) << slot.status().ToString();
  std::vector<KeySlot> slots = {*slot};
  // Stored outside the object and read back, as the record service does.
  auto encoded = EncodeKeySlots(slots);
  ASSERT_TRUE(encoded.ok());
  auto decoded = DecodeKeySlots(*encoded);
  ASSERT_TRUE(decoded.ok());
  auto a = OpenObject(new_key, aad_, *sealed, 2, &*decoded);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(*a, pt);
  auto b = OpenStreaming(new_key, aad_, *sealed, rng_, 2, &*decoded);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(*b, pt);
  // The old key finds no slot of its version in the new list, and the new key
  // cannot open the new slot under another version or object.
  EXPECT_EQ(OpenObject(key_, aad_, *sealed, 1, &*decoded).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(OpenObject(key_, aad_, *sealed, 2, &*decoded).status().code(), StatusCode::kDataLoss);
  const Bytes other = ObjectAad("patient-1", "labs/blood", 3, "obj-2");
  EXPECT_EQ(OpenObject(new_key, other, *sealed, 2, &*decoded).status().code(),
            StatusCode::kDataLoss);
  // Re-wrapping needs the old key.
  EXPECT_EQ(RewrapKeySlot(*header_slots, new_key, 1, new_key, 2, aad_).status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(RewrapKeySlot(*header_slots, key_, 2, new_key, 3, aad_).status().code(),
            StatusCode::kDataLoss);
}

TEST_F(EnvelopeTest, UnknownAndRecipientSlotsAreSkipped) {
  const Bytes pt = RandomData(100);
  auto sealed = SealObject(key_, aad_, pt);
  ASSERT_TRUE(sealed.ok());
  auto header_slots = ReadKeySlots(ByteView(*sealed).first(kHeader));
  ASSERT_TRUE(header_slots.ok());
  std::vector<KeySlot> slots;
  slots.push_back(KeySlot{static_cast<uint8_t>(KeySlotKind::kRecipient), 1, RandomData(80)});
  slots.push_back(KeySlot{200, 1, RandomData(3)});
  slots.push_back((*header_slots)[0]);
  auto encoded = EncodeKeySlots(slots);
  ASSERT_TRUE(encoded.ok());
  auto decoded = DecodeKeySlots(*encoded);
  ASSERT_TRUE(decoded.ok());
  ASSERT_EQ(decoded->size(), 3u);
  EXPECT_EQ((*decoded)[1].kind, 200);
  EXPECT_EQ((*decoded)[1].wrapped, slots[1].wrapped);
  auto opened = OpenObject(key_, aad_, *sealed, 1, &*decoded);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, pt);
}

TEST(KeySlotsTest, EncodingIsCheckedBothWays) {
  const KeySlot good{1, 5, Bytes(72, 0xab)};
  EXPECT_EQ(EncodeKeySlots({}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeKeySlots(std::vector<KeySlot>(kMaxKeySlots + 1, good)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeKeySlots(std::vector<KeySlot>{KeySlot{0, 1, Bytes(72)}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeKeySlots(std::vector<KeySlot>{KeySlot{1, 1, Bytes()}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeKeySlots(std::vector<KeySlot>{KeySlot{1, 1, Bytes(1025)}}).status().code(),
            StatusCode::kInvalidArgument);
  auto encoded = EncodeKeySlots(std::vector<KeySlot>{good});
  ASSERT_TRUE(encoded.ok());
  Bytes expected = {1, 1, 5, 0, 0, 0, 72, 0};
  expected.insert(expected.end(), 72, 0xab);
  EXPECT_EQ(*encoded, expected);
  // Every truncation, a trailing byte, a zero count, a kind-0 slot.
  for (size_t n = 0; n < encoded->size(); ++n) {
    EXPECT_EQ(DecodeKeySlots(ByteView(*encoded).first(n)).status().code(), StatusCode::kDataLoss)
        << n;
  }
  Bytes longer = *encoded;
  longer.push_back(0);
  EXPECT_EQ(DecodeKeySlots(longer).status().code(), StatusCode::kDataLoss);
  Bytes zero = *encoded;
  zero[0] = 0;
  EXPECT_EQ(DecodeKeySlots(zero).status().code(), StatusCode::kDataLoss);
  Bytes kind0 = *encoded;
  kind0[1] = 0;
  EXPECT_EQ(DecodeKeySlots(kind0).status().code(), StatusCode::kDataLoss);
}

// ---------------------------------------------------------------------------
// The version-1 fixture (tests/data/envelope-v1/README.md): an object sealed
// by the code before key slots stays readable, whole and streamed, and can
// be re-wrapped to a rotated key.

Bytes ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Bytes FixturePlaintext() {
  std::string plaintext;
  while (plaintext.size() < 2 * kEnvelopeChunkSize + 1000) {
    plaintext +=
        "{\"synthetic\":\"envelope-v1 fixture\",\"n\":" + std::to_string(plaintext.size()) + "}\n";
  }
  return ToBytes(plaintext);
}

class EnvelopeV1FixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = std::string(MEDVAULT_TESTDATA_DIR) + "/envelope-v1/";
    sealed_ = ReadFile(dir + "object.bin");
    ASSERT_EQ(sealed_.size(), 132243u);
    ASSERT_EQ(ToHex(Sha256(sealed_)),
              "1c0b211237796ebc842951e1622e2a4d0e8d144dbddb3afc78b180cc4589b48d");
    std::string hex(AsString(ReadFile(dir + "node_key.hex")));
    hex.resize(64);
    node_key_ = SecretBytes::CopyFrom(medvault::testing::Hex(hex));
    Bytes root(32);
    for (size_t i = 0; i < root.size(); ++i) root[i] = static_cast<uint8_t>(i);
    root_ = SecretBytes::CopyFrom(root);
  }

  const Bytes aad_ = ObjectAad("0123456789abcdef0123456789abcdef", "internal-medicine/cardiology",
                               3, "fedcba9876543210fedcba9876543210");
  Bytes sealed_;
  SecretBytes node_key_;
  SecretBytes root_;
  std::mt19937 rng_{7};
};

TEST_F(EnvelopeV1FixtureTest, NodeKeyIsTheVersionOneDerivation) {
  const uint32_t ones[] = {1, 1};
  auto plain = DeriveKeyForPath(root_, "internal-medicine/cardiology");
  auto versioned = DeriveKeyForPath(root_, "internal-medicine/cardiology", ones);
  ASSERT_TRUE(plain.ok() && versioned.ok());
  EXPECT_TRUE(plain->Equals(node_key_));
  EXPECT_TRUE(versioned->Equals(node_key_));
}

TEST_F(EnvelopeV1FixtureTest, OpensWholeAndStreamed) {
  EXPECT_EQ(sealed_[4], kEnvelopeVersionV1);
  EXPECT_EQ(EnvelopeHeaderSize(sealed_).value(), 108u);
  auto whole = OpenObject(node_key_, aad_, sealed_);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_EQ(*whole, FixturePlaintext());
  EXPECT_EQ(ToHex(Sha256(*whole)),
            "2aae79b28097074f6b4b76d756a50b1fb4a99b2a576ed306e6082518b597deca");
  auto streamed = OpenStreaming(node_key_, aad_, sealed_, rng_);
  ASSERT_TRUE(streamed.ok()) << streamed.status().ToString();
  EXPECT_EQ(*streamed, *whole);
  // Its one slot is the version-1 kind, node key version 1 only.
  auto slots = ReadKeySlots(ByteView(sealed_).first(108));
  ASSERT_TRUE(slots.ok());
  ASSERT_EQ(slots->size(), 1u);
  EXPECT_EQ((*slots)[0].kind, static_cast<uint8_t>(KeySlotKind::kNodeKeyV1));
  EXPECT_EQ(OpenObject(node_key_, aad_, sealed_, 2).status().code(), StatusCode::kDataLoss);
  Bytes bad = sealed_;
  bad[40] ^= 1;  // inside the wrapped key
  EXPECT_EQ(OpenObject(node_key_, aad_, bad).status().code(), StatusCode::kDataLoss);
}

TEST_F(EnvelopeV1FixtureTest, RewrapsToARotatedKey) {
  auto slots = ReadKeySlots(ByteView(sealed_).first(108));
  ASSERT_TRUE(slots.ok());
  const uint32_t rotated[] = {1, 2};
  auto new_key = DeriveKeyForPath(root_, "internal-medicine/cardiology", rotated);
  ASSERT_TRUE(new_key.ok());
  EXPECT_FALSE(new_key->Equals(node_key_));
  auto slot = RewrapKeySlot(*slots, node_key_, 1, *new_key, 2, aad_);
  ASSERT_TRUE(slot.ok()) << slot.status().ToString();
  const std::vector<KeySlot> rewrapped = {*slot};
  auto opened = OpenObject(*new_key, aad_, sealed_, 2, &rewrapped);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, FixturePlaintext());
  EXPECT_EQ(OpenObject(node_key_, aad_, sealed_, 1, &rewrapped).status().code(),
            StatusCode::kDataLoss);
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
