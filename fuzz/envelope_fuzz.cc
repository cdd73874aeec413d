// Fuzz target for the object envelope.
//
// 1. The input, as a sealed object under a fixed key and AAD, goes through
//    OpenObject and through the streaming opener (split into uneven pieces);
//    neither may crash, and both must agree on success and plaintext.
// 2. The input, as plaintext, must survive SealObject -> OpenObject unchanged.
// Any disagreement aborts, which the fuzzer reports as a crash.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iterator>

#include "crypto/crypto.h"

namespace {

using medvault::Bytes;
using medvault::ByteView;
using medvault::SecretBytes;
namespace crypto = medvault::crypto;

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "envelope_fuzz: %s\n", what);
  std::abort();
}

const SecretBytes& Key() {
  static const SecretBytes key(crypto::kKeySize);  // 32 zero bytes
  return key;
}

// Opens `sealed` with the streaming API, feeding pieces of varying size.
medvault::Result<Bytes> OpenStreaming(const Bytes& aad, ByteView sealed) {
  if (sealed.size() < crypto::kEnvelopeHeaderPrefixSize) {
    return medvault::Status::DataLoss("short");
  }
  MV_ASSIGN_OR_RETURN(size_t header, crypto::EnvelopeHeaderSize(sealed));
  if (sealed.size() < header) {
    return medvault::Status::DataLoss("short");
  }
  MV_ASSIGN_OR_RETURN(auto opener,
                      crypto::EnvelopeOpener::Create(Key(), aad, sealed.first(header)));
  static constexpr size_t kPieces[] = {1, 17, 4096, crypto::kEnvelopeChunkSize + 17, 3, 65535};
  ByteView body = sealed.subspan(header);
  Bytes out;
  for (size_t i = sealed.size(); !body.empty(); ++i) {
    const size_t n = std::min(body.size(), kPieces[i % std::size(kPieces)]);
    MV_RETURN_IF_ERROR(opener->Update(body.first(n), out));
    body = body.subspan(n);
  }
  MV_RETURN_IF_ERROR(opener->Finish(out));
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool initialised = crypto::InitCrypto().ok();
  if (!initialised) {
    Die("InitCrypto failed");
  }
  const Bytes aad = medvault::ToBytes("fuzz");
  const ByteView input(data, size);

  auto whole = crypto::OpenObject(Key(), aad, input);
  auto streamed = OpenStreaming(aad, input);
  if (whole.ok() != streamed.ok()) {
    Die("OpenObject and the streaming opener disagree on success");
  }
  if (whole.ok() && *whole != *streamed) {
    Die("OpenObject and the streaming opener disagree on plaintext");
  }

  auto sealed = crypto::SealObject(Key(), aad, input);
  if (!sealed.ok()) {
    Die("SealObject failed");
  }
  auto opened = crypto::OpenObject(Key(), aad, *sealed);
  if (!opened.ok() || !std::equal(opened->begin(), opened->end(), input.begin(), input.end())) {
    Die("SealObject/OpenObject round trip failed");
  }
  return 0;
}
