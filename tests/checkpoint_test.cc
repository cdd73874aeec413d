// Keys, signed notes, checkpoints and cosignatures (C2SP signed-note,
// tlog-checkpoint, tlog-cosignature), including the published examples of
// the C2SP specifications and the golang.org/x/mod/sumdb/note test vector.
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "crypto/crypto.h"
#include "crypto_test_util.h"
#include "ledger/ledger.h"
#include "test_util.h"

namespace medvault::ledger {
namespace {

namespace fs = std::filesystem;
using medvault::testing::ReadFileBytes;
using medvault::testing::TempDir;
using medvault::testing::WriteFileBytes;

const std::string kDash = "\xe2\x80\x94 ";  // em dash U+2014 and a space

// golang.org/x/mod/sumdb/note: the signer key, verifier key and signed note
// of its documentation example.
const std::string kGoSignerKey =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const std::string kGoVerifierKey =
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const std::string kGoText =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n";
const std::string kGoNote =
    kGoText + "\n" + kDash +
    "PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE"
    "6RyyBwJnAM=\n";

// c2sp.org/tlog-checkpoint and c2sp.org/tlog-cosignature examples.
const std::string kSpecBody =
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
const std::string kSpecLogLine =
    kDash +
    "example.com/behind-the-sofa "
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGz"
    "Gku9nTo+zyWE+xeMcTOAYQ8=\n";
const std::string kSpecWitnessLine =
    kDash +
    "witness.example.com/w1 "
    "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin"
    "1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n";

// Key id computed here independently: SHA-256(name || "\n" || type || key)[:4].
uint32_t IndependentKeyId(const std::string& name, uint8_t type, const PublicKey& key) {
  Bytes in = ToBytes(name);
  in.push_back('\n');
  in.push_back(type);
  in.insert(in.end(), key.begin(), key.end());
  const Bytes d = crypto::Sha256(in);
  return (uint32_t{d[0]} << 24) | (uint32_t{d[1]} << 16) | (uint32_t{d[2]} << 8) | d[3];
}

uint64_t Be64(const Bytes& b, size_t off) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) {
    v = (v << 8) | b[off + i];
  }
  return v;
}

Signer MakeSigner(const std::string& name, uint8_t seed_byte = 7) {
  const Bytes seed(kSeedSize, seed_byte);
  auto s = Signer::FromSeed(name, seed);
  EXPECT_TRUE(s.ok());
  return std::move(s).value();
}

Checkpoint SampleCheckpoint(uint64_t size = 42) {
  Checkpoint cp;
  cp.origin = "medvault.example/ledger";
  cp.size = size;
  cp.root = LeafHash(ToBytes("root " + std::to_string(size)));
  return cp;
}

// ---------------------------------------------------------------------------
// Published vectors.

TEST(CheckpointVectors, GoSumdbNoteSignerReproducesThePublishedNote) {
  TempDir dir;
  const fs::path key_file = dir.path() / "log.key";
  WriteFileBytes(key_file, kGoSignerKey + "\n");
  ASSERT_EQ(::chmod(key_file.c_str(), 0600), 0);
  auto signer = LoadOrCreateSigner(key_file, "PeterNeumann");
  ASSERT_TRUE(signer.ok()) << signer.status().ToString();
  EXPECT_EQ(signer->Verifier().ToString(), kGoVerifierKey);
  EXPECT_EQ(signer->Verifier().key_id(), 0xc74f20a3u);
  // Ed25519 is deterministic: the same key and text give the same bytes.
  auto note = SignNote(*signer, kGoText);
  ASSERT_TRUE(note.ok());
  EXPECT_EQ(*note, kGoNote);
}

TEST(CheckpointVectors, GoSumdbNoteVerifies) {
  auto key = VerifierKey::Parse(kGoVerifierKey);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->name(), "PeterNeumann");
  EXPECT_EQ(key->type(), KeyType::kEd25519);
  EXPECT_EQ(IndependentKeyId("PeterNeumann", 0x01, key->public_key()), 0xc74f20a3u);
  auto text = VerifyNote(kGoNote, *key);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text, kGoText);
  std::string altered = kGoNote;
  altered.replace(altered.find("cryptography"), 12, "cryptographY");
  EXPECT_EQ(VerifyNote(altered, *key).status().code(), StatusCode::kDataLoss);
}

TEST(CheckpointVectors, PublishedVerifierKeysParseAndRoundTrip) {
  // Go sumdb/note tests; transparency-dev/formats tests (a '+' inside the
  // base64; a cosignature/v1 key of type 0x04).
  for (const std::string& vkey : std::vector<std::string>{
           kGoVerifierKey,
           std::string("EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"),
           std::string("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"),
           std::string("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2")}) {
    auto key = VerifierKey::Parse(vkey);
    ASSERT_TRUE(key.ok()) << vkey << ": " << key.status().ToString();
    EXPECT_EQ(key->ToString(), vkey);
    EXPECT_EQ(key->key_id(),
              IndependentKeyId(key->name(), static_cast<uint8_t>(key->type()), key->public_key()));
  }
  EXPECT_EQ(
      VerifierKey::Parse("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2")
          ->type(),
      KeyType::kCosignatureV1);
}

TEST(CheckpointVectors, ManglingsOfAVerifierKeyAreRefused) {
  // As in the Go tests: every proper substring, and every byte bumped.
  const std::string& vkey = kGoVerifierKey;
  for (size_t i = 0; i <= vkey.size(); ++i) {
    for (size_t j = i + 1; j <= vkey.size(); ++j) {
      if (i == 0 && j == vkey.size()) {
        continue;
      }
      EXPECT_FALSE(VerifierKey::Parse(vkey.substr(i, j - i)).ok()) << vkey.substr(i, j - i);
    }
  }
  for (size_t i = 0; i < vkey.size(); ++i) {
    std::string bumped = vkey;
    bumped[i] = static_cast<char>(bumped[i] + 1);
    EXPECT_FALSE(VerifierKey::Parse(bumped).ok()) << bumped;
  }
  // Unsupported type byte (0x02 ECDSA) with a matching-looking id.
  EXPECT_FALSE(VerifierKey::Parse("rekor.sigstore.dev+12345678+AwEB").ok());
}

TEST(CheckpointVectors, SpecCheckpointAndCosignatureParse) {
  auto body = ParseCheckpointBody(kSpecBody);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(body->origin, "example.com/behind-the-sofa");
  EXPECT_EQ(body->size, 20852163u);
  EXPECT_EQ(FormatCheckpointBody(*body), kSpecBody);

  auto note = ParseSignedNote(kSpecBody + "\n" + kSpecLogLine + kSpecWitnessLine);
  ASSERT_TRUE(note.ok()) << note.status().ToString();
  EXPECT_EQ(note->text, kSpecBody);
  ASSERT_EQ(note->signatures.size(), 2u);
  EXPECT_EQ(note->signatures[0].name, "example.com/behind-the-sofa");
  EXPECT_EQ(note->signatures[0].signature.size(), kSignatureSize);
  const NoteSignature& co = note->signatures[1];
  EXPECT_EQ(co.name, "witness.example.com/w1");
  EXPECT_EQ(co.key_id, 0x8d66cf3fu);
  ASSERT_EQ(co.signature.size(), 8 + kSignatureSize);
  // The spec's example signed message carries "time 1679315147".
  EXPECT_EQ(Be64(co.signature, 0), 1679315147u);

  // transparency-dev/formats: a cosignature/v1 signature with its timestamp.
  auto tdev = ParseSignatureLine(kDash +
                                 "w "
                                 "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/"
                                 "iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==");
  ASSERT_TRUE(tdev.ok());
  EXPECT_EQ(Be64(tdev->signature, 0), 1727964367u);
}

TEST(CheckpointVectors, SignedNoteSpecExampleKeepsItsBlankLine) {
  const std::string text =
      "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n";
  const std::string note = text + "\n" + kDash +
                           "quasimodo.example/salvatore "
                           "NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0"
                           "xMcXxj99ihAQwaqP3ZekRwNtIc=\n";
  auto parsed = ParseSignedNote(note);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->text, text);
  ASSERT_EQ(parsed->signatures.size(), 1u);
  EXPECT_EQ(parsed->signatures[0].name, "quasimodo.example/salvatore");
}

// The example of docs/ledger.md, byte for byte (Ed25519 is deterministic).
TEST(CheckpointVectors, DocumentedExampleIsReproduced) {
  const Signer log = MakeSigner("medvault.example/ledger", 1);
  const Signer witness = MakeSigner("witness.example/w1", 2);
  MerkleTree tree;
  for (int i = 0; i < 42; ++i) {
    tree.Append(LeafHash(ToBytes("entry " + std::to_string(i))));
  }
  Checkpoint cp;
  cp.origin = "medvault.example/ledger";
  cp.size = 42;
  cp.root = tree.Root();
  EXPECT_EQ(*SignCheckpoint(log, cp),
            "medvault.example/ledger\n42\nqFVVhqn4UsbzCJ+3Q73MPXM0q9qyyg2HYsVWFiQOaFE=\n\n" +
                kDash +
                "medvault.example/ledger 6Qku/G6X9HeGQWYa3y9NIAMl1Q9BESyj/vZ5C26siFpUEpPwgNNjiJrbu"
                "eJF2nZSPAje07i1ZfcdUPSehVIYuh9L2w0=\n");
  EXPECT_EQ(*Cosign(witness, FormatCheckpointBody(cp), 1763751600),
            kDash +
                "witness.example/w1 3xwKNQAAAABpILawhC4l9J+0y8jvbxgjERQB8r2ULL69a/vKRJx5eTZ9cwlNsc"
                "R+GSqZbRaS7o/bJbZ4QwkDSFrHHMe06IeF9zhrDQ==\n");
  EXPECT_EQ(log.Verifier().ToString(),
            "medvault.example/ledger+e9092efc+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c");
  EXPECT_EQ(witness.CosignatureVerifier().ToString(),
            "witness.example/w1+df1c0a35+BIE5dw6ofRdfVqNUZsNMfszLjYqRtO43ol32D1uPybOU");
}

// ---------------------------------------------------------------------------
// Checkpoints.

TEST(Checkpoint, SignAndVerify) {
  const Signer log = MakeSigner("medvault.example/ledger");
  const Checkpoint cp = SampleCheckpoint();
  auto note = SignCheckpoint(log, cp);
  ASSERT_TRUE(note.ok());
  EXPECT_EQ(note->substr(0, note->find("\n\n") + 1), FormatCheckpointBody(cp));
  char b64[64];
  sodium_bin2base64(b64, sizeof(b64), cp.root.data(), cp.root.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  EXPECT_EQ(FormatCheckpointBody(cp), "medvault.example/ledger\n42\n" + std::string(b64) + "\n");
  auto back = VerifyCheckpoint(*note, log.Verifier());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, cp);
  // The signature line is "— <name> base64(key id || sig)" over the body.
  auto parsed = ParseSignedNote(*note);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->signatures.size(), 1u);
  EXPECT_EQ(parsed->signatures[0].key_id, IndependentKeyId(log.name(), 0x01, log.public_key()));
  EXPECT_EQ(crypto_sign_verify_detached(parsed->signatures[0].signature.data(),
                                        reinterpret_cast<const uint8_t*>(parsed->text.data()),
                                        parsed->text.size(), log.public_key().data()),
            0);
  // Size 0: the empty tree.
  Checkpoint empty = SampleCheckpoint(0);
  empty.root = EmptyRoot();
  auto empty_note = SignCheckpoint(log, empty);
  ASSERT_TRUE(empty_note.ok());
  EXPECT_EQ(VerifyCheckpoint(*empty_note, log.Verifier())->size, 0u);
}

TEST(Checkpoint, WrongKeyIsRefused) {
  const Signer log = MakeSigner("medvault.example/ledger");
  const auto note = *SignCheckpoint(log, SampleCheckpoint());
  // Same name, other key: another key id, so not "signed by" that key.
  const Signer impostor = MakeSigner("medvault.example/ledger", 9);
  auto r = VerifyCheckpoint(note, impostor.Verifier());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("not signed by the log key"), std::string::npos);
  // Other name.
  EXPECT_EQ(VerifyCheckpoint(note, MakeSigner("other.example").Verifier()).status().code(),
            StatusCode::kFailedPrecondition);
  // A cosignature key type is not a note key.
  EXPECT_EQ(VerifyCheckpoint(note, log.CosignatureVerifier()).status().code(),
            StatusCode::kInvalidArgument);
  // The right name and key id with the wrong signature bytes: invalid.
  auto parsed = *ParseSignedNote(note);
  Bytes bad_sig = parsed.signatures[0].signature;
  bad_sig[10] ^= 1;
  const std::string forged =
      parsed.text + "\n" + FormatSignatureLine(log.name(), log.Verifier().key_id(), bad_sig);
  r = VerifyCheckpoint(forged, log.Verifier());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(r.status().message(), "checkpoint signature invalid");
}

TEST(Checkpoint, EditedBodyIsRefused) {
  const Signer log = MakeSigner("medvault.example/ledger");
  const std::string note = *SignCheckpoint(log, SampleCheckpoint(42));
  std::string edited = note;
  edited.replace(edited.find("\n42\n"), 4, "\n43\n");
  auto r = VerifyCheckpoint(edited, log.Verifier());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(r.status().message(), "checkpoint signature invalid");
  edited = note;
  edited.replace(0, 8, "Medvault");
  EXPECT_EQ(VerifyCheckpoint(edited, log.Verifier()).status().code(), StatusCode::kDataLoss);
  // Root edited (first base64 character of line 3).
  edited = note;
  const size_t root_at = note.find("\n42\n") + 4;
  edited[root_at] = edited[root_at] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(VerifyCheckpoint(edited, log.Verifier()).ok());
}

TEST(Checkpoint, UnknownSignaturesAreIgnoredButABadKnownOneRejects) {
  const Signer log = MakeSigner("medvault.example/ledger");
  const Signer other = MakeSigner("other.example/log", 3);
  const Checkpoint cp = SampleCheckpoint();
  const std::string body = FormatCheckpointBody(cp);
  const std::string log_line =
      FormatSignatureLine(log.name(), log.Verifier().key_id(), log.Sign(AsBytes(body)));
  const std::string other_line =
      FormatSignatureLine(other.name(), other.Verifier().key_id(), other.Sign(AsBytes(body)));
  EXPECT_TRUE(VerifyCheckpoint(body + "\n" + other_line + log_line, log.Verifier()).ok());
  EXPECT_TRUE(VerifyCheckpoint(body + "\n" + log_line + other_line, log.Verifier()).ok());
  // A second line with the log's name and id that fails: the note is refused.
  Bytes bad = log.Sign(AsBytes(body));
  bad[0] ^= 0x40;
  const std::string bad_line = FormatSignatureLine(log.name(), log.Verifier().key_id(), bad);
  EXPECT_EQ(VerifyCheckpoint(body + "\n" + log_line + bad_line, log.Verifier()).status().code(),
            StatusCode::kDataLoss);
}

TEST(Checkpoint, BodyParseErrors) {
  const std::string root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
  for (const std::string& bad : std::vector<std::string>{
           "",
           "o\n1\n" + root,                                         // no final newline
           "o\n1\n",                                                // two lines
           "\n1\n" + root + "\n",                                   // empty origin
           "o\n01\n" + root + "\n",                                 // leading zero
           "o\n+1\n" + root + "\n",                                 // sign
           "o\n1.0\n" + root + "\n",                                // not decimal
           "o\n18446744073709551616\n" + root + "\n",               // 2^64
           "o\n1\nAAAA\n",                                          // not 32 bytes
           "o\n1\n" + root.substr(0, 43) + "\n",                    // missing padding
           "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n",  // non-canonical bits
           "o\n1\n" + root + "\n\n",                                // empty extension line
           "o\t\n1\n" + root + "\n",                                // control character
       }) {
    EXPECT_EQ(ParseCheckpointBody(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  auto ok = ParseCheckpointBody("o\n0\n" + root + "\next one\n");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->extensions, std::vector<std::string>{"ext one"});
  EXPECT_EQ(ParseCheckpointBody("o\n18446744073709551615\n" + root + "\n")->size,
            18446744073709551615u);
}

TEST(Checkpoint, NoteParseErrors) {
  const Signer log = MakeSigner("medvault.example/ledger");
  const std::string note = *SignCheckpoint(log, SampleCheckpoint());
  const std::string body = note.substr(0, note.find("\n\n") + 1);
  const std::string line = note.substr(note.find("\n\n") + 2);
  const std::string b64 = line.substr(line.rfind(' ') + 1);
  const auto malformed = [](const std::string& n) {
    return ParseSignedNote(n).status().code() == StatusCode::kInvalidArgument;
  };
  EXPECT_TRUE(malformed(note.substr(0, note.size() - 1)));             // no final newline
  EXPECT_TRUE(malformed(body));                                        // no signatures
  EXPECT_TRUE(malformed(body + "\n"));                                 // blank line, no signatures
  EXPECT_TRUE(malformed(body + line));                                 // no blank line
  EXPECT_TRUE(malformed(body + "\n-- " + line.substr(kDash.size())));  // ASCII dashes
  EXPECT_TRUE(malformed(body + "\n\xe2\x80\x93 " + line.substr(kDash.size())));  // en dash
  EXPECT_TRUE(malformed(body + "\n" + kDash + "name\n"));                        // no signature
  EXPECT_TRUE(malformed(body + "\n" + kDash + "na me " + b64));                  // space in name
  EXPECT_TRUE(malformed(body + "\n" + kDash + "na+me " + b64));                  // plus in name
  EXPECT_TRUE(malformed(body + "\n" + kDash + "na\xc2\xa0me " + b64));           // no-break space
  EXPECT_TRUE(malformed(body + "\n" + kDash + " " + b64));                       // empty name
  EXPECT_TRUE(malformed(body + "\n" + kDash + "name AAAA\n"));                   // 3 bytes < 5
  EXPECT_TRUE(malformed(body + "\n" + kDash + "name !!!!\n"));                   // not base64
  EXPECT_TRUE(malformed(body + "\n" + kDash + "name " + b64.substr(0, b64.size() - 2) + "\n"));
  EXPECT_TRUE(malformed(body + "\n" + line + "\n"));               // trailing blank line
  EXPECT_TRUE(malformed("o\r\n" + body.substr(1) + "\n" + line));  // control character
  EXPECT_TRUE(malformed("\xff" + body + "\n" + line));             // invalid UTF-8
  std::string many = body + "\n";
  for (int i = 0; i < 101; ++i) {
    many += line;
  }
  EXPECT_TRUE(malformed(many));
  std::string sixteen = body + "\n";
  for (int i = 0; i < 16; ++i) {
    sixteen += line;
  }
  EXPECT_TRUE(ParseSignedNote(sixteen).ok());
  EXPECT_TRUE(malformed(std::string(1 << 20, 'a') + "\n\n" + line));  // too large
}

TEST(Checkpoint, SigningRefusesBadInput) {
  const Signer log = MakeSigner("medvault.example/ledger");
  Checkpoint cp = SampleCheckpoint();
  cp.origin = "";
  EXPECT_EQ(SignCheckpoint(log, cp).status().code(), StatusCode::kInvalidArgument);
  cp.origin = "two\nlines";
  EXPECT_EQ(SignCheckpoint(log, cp).status().code(), StatusCode::kInvalidArgument);
  cp = SampleCheckpoint();
  cp.extensions = {""};
  EXPECT_EQ(SignCheckpoint(log, cp).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SignNote(log, "no newline").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SignNote(log, "ends blank\n\n").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SignNote(log, "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(Signer::FromSeed("bad name", Bytes(32, 1)).ok());
  EXPECT_FALSE(Signer::FromSeed("name", Bytes(31, 1)).ok());
  EXPECT_FALSE(VerifierKey::Create("a+b", KeyType::kEd25519, PublicKey{}).ok());
}

TEST(Checkpoint, KeyNames) {
  EXPECT_TRUE(IsValidKeyName("example.com/log42"));
  EXPECT_TRUE(IsValidKeyName("oid/1.3.6.1.4.1"));
  EXPECT_TRUE(IsValidKeyName("zürich.example"));
  EXPECT_FALSE(IsValidKeyName(""));
  EXPECT_FALSE(IsValidKeyName("a b"));
  EXPECT_FALSE(IsValidKeyName("a+b"));
  EXPECT_FALSE(IsValidKeyName("a\tb"));
  EXPECT_FALSE(
      IsValidKeyName("a\xe3\x80\x80"
                     "b"));  // ideographic space
  EXPECT_FALSE(
      IsValidKeyName("a\xe2\x80\xa8"
                     "b"));  // line separator
  EXPECT_FALSE(IsValidKeyName("\xc3"));
  EXPECT_FALSE(IsValidKeyName(std::string(256, 'a')));
}

// ---------------------------------------------------------------------------
// Cosignatures.

TEST(Cosignature, CosignAndVerify) {
  const Signer witness = MakeSigner("witness.example/w1", 11);
  const std::string body = FormatCheckpointBody(SampleCheckpoint());
  auto line = Cosign(witness, body, 1679315147);
  ASSERT_TRUE(line.ok()) << line.status().ToString();
  EXPECT_EQ(line->back(), '\n');
  auto ts = VerifyCosignature(body, *line, witness.CosignatureVerifier());
  ASSERT_TRUE(ts.ok()) << ts.status().ToString();
  EXPECT_EQ(*ts, 1679315147u);
  // Without the final newline too.
  EXPECT_TRUE(
      VerifyCosignature(body, line->substr(0, line->size() - 1), witness.CosignatureVerifier())
          .ok());

  // Independent check of the layout: key id with type 0x04, big-endian
  // timestamp, and an Ed25519 signature over the documented message.
  auto sig = ParseSignatureLine(*line);
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(sig->name, "witness.example/w1");
  EXPECT_EQ(sig->key_id, IndependentKeyId(witness.name(), 0x04, witness.public_key()));
  ASSERT_EQ(sig->signature.size(), 72u);
  EXPECT_EQ(Be64(sig->signature, 0), 1679315147u);
  const std::string msg = "cosignature/v1\ntime 1679315147\n" + body;
  EXPECT_EQ(CosignatureMessage(body, 1679315147), msg);
  EXPECT_EQ(crypto_sign_verify_detached(sig->signature.data() + 8,
                                        reinterpret_cast<const uint8_t*>(msg.data()), msg.size(),
                                        witness.public_key().data()),
            0);
  // The cosignature key id differs from the note key id of the same key.
  EXPECT_NE(witness.CosignatureVerifier().key_id(), witness.Verifier().key_id());
  // The vkey text form of a witness key carries type 0x04 and parses back.
  auto vkey = VerifierKey::Parse(witness.CosignatureVerifier().ToString());
  ASSERT_TRUE(vkey.ok());
  EXPECT_EQ(*vkey, witness.CosignatureVerifier());
}

TEST(Cosignature, RefusesWrongKeyEditedBodyAndEditedTimestamp) {
  const Signer witness = MakeSigner("witness.example/w1", 11);
  const std::string body = FormatCheckpointBody(SampleCheckpoint());
  const std::string line = *Cosign(witness, body, 1700000000);

  const Signer other = MakeSigner("witness.example/w1", 12);
  EXPECT_EQ(VerifyCosignature(body, line, other.CosignatureVerifier()).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(VerifyCosignature(body, line, witness.Verifier()).status().code(),
            StatusCode::kInvalidArgument);  // a note key is not a cosignature key

  const std::string other_body = FormatCheckpointBody(SampleCheckpoint(43));
  auto r = VerifyCosignature(other_body, line, witness.CosignatureVerifier());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);

  auto sig = *ParseSignatureLine(line);
  Bytes later = sig.signature;
  later[7] ^= 1;  // the timestamp's last byte
  const std::string retimed = FormatSignatureLine(sig.name, sig.key_id, later);
  EXPECT_EQ(VerifyCosignature(body, retimed, witness.CosignatureVerifier()).status().code(),
            StatusCode::kDataLoss);
  // A note-style (untimestamped) signature line under the cosignature key id.
  const std::string short_line =
      FormatSignatureLine(sig.name, sig.key_id, witness.Sign(AsBytes(body)));
  EXPECT_EQ(VerifyCosignature(body, short_line, witness.CosignatureVerifier()).status().code(),
            StatusCode::kInvalidArgument);
  // Timestamp at or above 2^63.
  Bytes huge = sig.signature;
  huge[0] = 0x80;
  EXPECT_EQ(VerifyCosignature(body, FormatSignatureLine(sig.name, sig.key_id, huge),
                              witness.CosignatureVerifier())
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(VerifyCosignature(body, "garbage", witness.CosignatureVerifier()).ok());
  EXPECT_FALSE(VerifyCosignature(body, line + line, witness.CosignatureVerifier()).ok());
}

TEST(Cosignature, CosignRefusesNonCheckpointsAndHugeTimestamps) {
  const Signer witness = MakeSigner("witness.example/w1", 11);
  EXPECT_EQ(Cosign(witness, "not a checkpoint\n", 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(
      Cosign(witness, FormatCheckpointBody(SampleCheckpoint()), uint64_t{1} << 63).status().code(),
      StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// The signing key file.

TEST(SigningKeyFile, CreatesOwnerOnlyAndReloadsTheSameKey) {
  TempDir dir;
  const fs::path path = dir.path() / "ledger.key";
  auto first = LoadOrCreateSigner(path, "medvault.example/ledger");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string content = ReadFileBytes(path);
  EXPECT_EQ(content.rfind("PRIVATE+KEY+medvault.example/ledger+", 0), 0u);
  EXPECT_EQ(content.back(), '\n');
  auto again = LoadOrCreateSigner(path, "medvault.example/ledger");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->public_key(), first->public_key());
  EXPECT_EQ(again->Sign(ToBytes("x")), first->Sign(ToBytes("x")));
  // No temporary files left behind.
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) {
    ++files;
  }
  EXPECT_EQ(files, 1u);
}

TEST(SigningKeyFile, RefusesLooseModesOtherNamesAndDamage) {
  TempDir dir;
  const fs::path path = dir.path() / "ledger.key";
  ASSERT_TRUE(LoadOrCreateSigner(path, "log.example").ok());
  const std::string good = ReadFileBytes(path);

  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  auto r = LoadOrCreateSigner(path, "log.example");
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("group or others"), std::string::npos);
  ASSERT_EQ(::chmod(path.c_str(), 0604), 0);
  EXPECT_EQ(LoadOrCreateSigner(path, "log.example").status().code(),
            StatusCode::kFailedPrecondition);
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);

  r = LoadOrCreateSigner(path, "other.example");
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("log.example"), std::string::npos);

  // The message never carries key material.
  std::string damaged = good;
  damaged[damaged.size() - 5] = damaged[damaged.size() - 5] == 'A' ? 'B' : 'A';
  WriteFileBytes(path, damaged);
  r = LoadOrCreateSigner(path, "log.example");
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  const std::string secret_part = good.substr(good.rfind('+') + 1, 20);
  EXPECT_EQ(r.status().message().find(secret_part), std::string::npos);

  WriteFileBytes(path, "garbage\n");
  EXPECT_EQ(LoadOrCreateSigner(path, "log.example").status().code(), StatusCode::kDataLoss);
  // Key id that does not match the key.
  std::string wrong_id = good;
  const size_t id_at = std::string("PRIVATE+KEY+log.example+").size();
  wrong_id.replace(id_at, 8, "00000000");
  WriteFileBytes(path, wrong_id);
  r = LoadOrCreateSigner(path, "log.example");
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("key id"), std::string::npos);

  // A symbolic link is refused rather than followed.
  const fs::path target = dir.path() / "target.key";
  WriteFileBytes(target, good);
  ASSERT_EQ(::chmod(target.c_str(), 0600), 0);
  fs::remove(path);
  fs::create_symlink(target, path);
  EXPECT_EQ(LoadOrCreateSigner(path, "log.example").status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(LoadOrCreateSigner(dir.path() / "x.key", "bad name").status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace medvault::ledger
