// Ledger entries, format version 2 (src/ledger/entry_compact.cc): the
// documented bytes, the round trip over random entries, strict decoding,
// the frozen word table, and entries of format version 1 (checked-in
// fixtures) that must keep decoding to the same entries and leaf hashes.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "crypto/crypto.h"
#include "ledger/internal.h"
#include "ledger/ledger.h"

namespace medvault::ledger {
namespace {

std::string HexOf(const Bytes& b) { return ToHex(b); }
Bytes B(std::string_view hex) { return *FromHex(hex); }

// A read audit as api::Call::Note writes it for GET .../segments/{path}.
Entry ReadAudit() {
  Entry e;
  e.time_ms = 1763751600000;
  e.request_id = "7f3a9c0e5b2d41c8";
  e.actor = "0123456789abcdef0123456789abcdef";
  e.action = std::string(kActionDecision);
  e.effect = std::string(kEffectPermit);
  e.reasons = {"treating-relationship"};
  e.purpose = "treatment";
  e.resource = {"read", "internal-medicine/cardiology"};
  e.patient_ref = "00112233445566778899aabbccddeeff";
  e.details = {{"route", "/api/v1/patients/{id}/segments/{path}"}};
  return e;
}

Status DecodeStatus(const Bytes& b) { return Decode(b).status(); }

TEST(EntryCompact, DocumentedExample) {
  // docs/ledger.md, "Compact encoding (format version 2)": the bytes of this
  // entry, field by field.
  const Bytes bytes = Encode(ReadAudit());
  EXPECT_EQ(HexOf(bytes),
            "02"            // version
            "80bfa6beaa33"  // time_ms, LEB128
            "21"
            "7f3a9c0e5b2d41c8"  // request_id: hex, 8 bytes
            "41"
            "0123456789abcdef0123456789abcdef"  // actor: hex, 16 bytes
            "0e"                                // action: word 3 "decision"
            "02"                                // effect: word 0 "permit"
            "01"
            "42"  // reasons: 1, word 16
            "00"  // obligations: 0
            "16"  // purpose: word 5 "treatment"
            "1a"  // kind: word 6 "read"
            "0b"
            "d205"
            "28"
            "63617264696f6c6f6779"  // path: 2 parts, word 180, raw 10
            "41"
            "00112233445566778899aabbccddeeff"  // patient_ref: hex, 16 bytes
            "01"
            "22"
            "2a");  // details: 1, word 8 -> word 10
  EXPECT_EQ(bytes.size(), 74u);
  EXPECT_GT(EncodeJsonV1(ReadAudit()).size(), 5 * bytes.size());
  auto back = Decode(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, ReadAudit());
  EXPECT_EQ(*EntryFormatVersion(bytes), kEntryVersion);
}

// Random entries over every string form (words, hex, paths, raw UTF-8,
// empty) and the edges of the integers: Decode(Encode(e)) == e and the
// bytes are a fixed point.
TEST(EntryCompact, RandomEntriesRoundTrip) {
  std::mt19937_64 rng(20261207);
  const auto words = internal::CompactDictionary();
  const std::vector<std::string> raw = {"x",      "zone-refusée", "q\"uo\\te", "{patient}", "a,b",
                                        "ABCDEF", "abc",          "0",         "a b",       "日本"};
  const auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  const auto component = [&]() -> std::string {
    switch (pick(4)) {
      case 0: {
        std::string w(words[pick(words.size())]);
        return w.find('/') == std::string::npos ? w : "w";
      }
      case 1: {
        std::string h;
        const size_t n = 2 * (1 + pick(20));
        for (size_t i = 0; i < n; ++i) {
          h.push_back("0123456789abcdef"[pick(16)]);
        }
        return h;
      }
      case 2:
        return raw[pick(raw.size())];
      default:
        return "";
    }
  };
  const auto str = [&](bool non_empty) -> std::string {
    std::string s;
    switch (pick(3)) {
      case 0:
        s = std::string(words[pick(words.size())]);
        break;
      case 1:
        s = component();
        break;
      default:
        s = component();
        for (size_t n = pick(4); n > 0; --n) {
          s += "/" + component();
        }
    }
    return s.empty() && non_empty ? "x" : s;
  };
  const int64_t times[] = {0,     1,     127,           128,
                           16383, 16384, 1763751600000, std::numeric_limits<int64_t>::max()};
  for (int i = 0; i < 3000; ++i) {
    Entry e;
    e.time_ms = pick(2) ? times[pick(std::size(times))] : static_cast<int64_t>(rng() >> 1);
    e.request_id = str(false);
    e.actor = str(true);
    e.action = std::string(kKnownActions[pick(kKnownActions.size())]);
    e.effect = std::string(pick(3) == 0 ? kEffectDeny : kEffectPermit);
    for (size_t n = pick(4); n > 0; --n) {
      e.reasons.push_back(str(true));
    }
    for (size_t n = pick(3); n > 0; --n) {
      e.obligations.push_back(str(true));
    }
    e.purpose = str(false);
    e.resource = {str(false), str(false)};
    if (pick(2)) {
      e.patient_ref = PatientRef(SecretBytes(32), std::to_string(i));
    }
    for (size_t n = pick(5); n > 0; --n) {
      e.details[str(true)] = str(false);
    }
    ASSERT_TRUE(ValidateEntry(e).ok()) << i << ": " << ValidateEntry(e).ToString();
    const Bytes bytes = Encode(e);
    auto back = Decode(bytes);
    ASSERT_TRUE(back.ok()) << i << ": " << back.status().ToString();
    ASSERT_EQ(*back, e) << i;
    ASSERT_EQ(Encode(*back), bytes) << i;
    // The same entry in format version 1 decodes to the same entry too.
    auto json = Decode(EncodeJsonV1(e));
    ASSERT_TRUE(json.ok()) << i << ": " << json.status().ToString();
    ASSERT_EQ(*json, e) << i;
  }
}

TEST(EntryCompact, EveryPrefixAndEveryTrailingByteIsRefused) {
  Entry e = ReadAudit();
  e.obligations = {"notify-patient", "expires-at:1763751600000"};
  e.details["basis"] = "c0ffee00c0ffee00c0ffee00c0ffee00";
  const Bytes bytes = Encode(e);
  for (size_t n = 0; n < bytes.size(); ++n) {
    const Bytes cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_EQ(DecodeStatus(cut).code(), StatusCode::kInvalidArgument) << n;
  }
  for (int extra : {0x00, 0x02, 0x7b}) {
    Bytes longer = bytes;
    longer.push_back(static_cast<uint8_t>(extra));
    EXPECT_EQ(DecodeStatus(longer).message(), "entry has trailing bytes");
  }
}

// A minimal entry to edit by hand: version, time 5, request_id "", actor
// word "system", action word "decision", effect word "done", no reasons,
// no obligations, purpose "", kind "", path "", patient_ref "", no details.
constexpr std::string_view kMinimal =
    "02"
    "05"
    "00"
    "8201"
    "0e"
    "0a"
    "00"
    "00"
    "00"
    "00"
    "00"
    "00"
    "00";

TEST(EntryCompact, MinimalEntryDecodes) {
  auto e = Decode(B(kMinimal));
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->time_ms, 5);
  EXPECT_EQ(e->actor, "system");
  EXPECT_EQ(e->action, "decision");
  EXPECT_EQ(e->effect, "done");
}

TEST(EntryCompact, NonCanonicalFormsAreRefused) {
  const auto message = [](std::string_view hex) {
    auto r = Decode(B(hex));
    EXPECT_FALSE(r.ok()) << hex;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << hex;
    return std::string(r.status().message());
  };
  // Non-minimal integers: time 5 as two bytes; an empty request id as 0x80 0x00.
  EXPECT_EQ(message("02"
                    "8500"
                    "00"
                    "8201"
                    "0e0a"
                    "00000000000000"),
            "entry time_ms has a non-minimal integer");
  EXPECT_EQ(message("02"
                    "05"
                    "8000"
                    "8201"
                    "0e0a"
                    "00000000000000"),
            "entry request_id has a non-minimal integer");
  // "system" spelled raw instead of as its word.
  EXPECT_EQ(message("02"
                    "05"
                    "00"
                    "18"
                    "73797374656d"
                    "0e0a"
                    "00000000000000"),
            "entry is not in canonical form");
  // "ab" raw instead of packed hex; "AB" raw is fine (not lower-case hex).
  EXPECT_EQ(message("02"
                    "05"
                    "08"
                    "6162"
                    "8201"
                    "0e0a"
                    "00000000000000"),
            "entry is not in canonical form");
  EXPECT_TRUE(Decode(B("02"
                       "05"
                       "08"
                       "4142"
                       "8201"
                       "0e0a"
                       "00000000000000"))
                  .ok());
  // A path where the string has no '/'; a path in a path component.
  EXPECT_EQ(message("02"
                    "05"
                    "00"
                    "8201"
                    "0e0a"
                    "0000"
                    "00"
                    "00"
                    "07"
                    "0400"
                    "00"
                    "00"
                    "00"),
            "entry resource path has a bad path component count");
  EXPECT_EQ(message("02"
                    "05"
                    "00"
                    "8201"
                    "0e0a"
                    "0000"
                    "00"
                    "00"
                    "0b"
                    "0b"
                    "0000"
                    "0000"
                    "00"
                    "00"),
            "entry resource path nests a path in a path");
  // "a/b" raw instead of as a path.
  EXPECT_EQ(message("02"
                    "05"
                    "00"
                    "8201"
                    "0e0a"
                    "0000"
                    "00"
                    "00"
                    "0c"
                    "612f62"
                    "00"
                    "00"),
            "entry is not in canonical form");
  // Empty hex form; unknown word.
  EXPECT_EQ(message("02"
                    "05"
                    "01"
                    "8201"
                    "0e0a"
                    "00000000000000"),
            "entry request_id has an empty hex form");
  EXPECT_EQ(message("02"
                    "05"
                    "00"
                    "fe7f"
                    "0e0a"
                    "00000000000000"),
            "entry actor names an unknown table word");
  // Lengths beyond the input or the limit; counts beyond the limit.
  EXPECT_EQ(message("02"
                    "05"
                    "00"
                    "8201"
                    "0e0a"
                    "0000"
                    "00"
                    "00"
                    "00"
                    "7c61"),
            "entry is truncated in patient_ref");
  EXPECT_EQ(message("02"
                    "05"
                    "00"
                    "8201"
                    "0e0a"
                    "0000"
                    "00"
                    "00"
                    "00"
                    "00"
                    "8000"),
            "entry details has a non-minimal integer");
  EXPECT_EQ(message("02"
                    "05"
                    "00"
                    "8201"
                    "0e0a"
                    "21"
                    "00"
                    "00"
                    "00"
                    "00"
                    "00"
                    "00"),
            "entry field reasons has too many items");
  EXPECT_EQ(message("02"
                    "05"
                    "00"
                    "8201"
                    "0e0a"
                    "0000"
                    "00"
                    "00"
                    "00"
                    "00"
                    "21"),
            "entry field details has too many items");
  EXPECT_EQ(message("02"
                    "05"
                    "00"
                    "84a001"
                    "61"),
            "entry actor is longer than 2048 bytes");
  // Time at 2^63 (nine bytes with a continuation bit).
  EXPECT_EQ(message("02"
                    "ffffffffffffffffff01"
                    "00"
                    "8201"
                    "0e0a"
                    "00000000000000"),
            "entry time_ms integer is out of range");
  // A duplicated or misordered details key.
  EXPECT_EQ(message("02"
                    "05"
                    "00"
                    "8201"
                    "0e0a"
                    "0000"
                    "00"
                    "00"
                    "00"
                    "00"
                    "02"
                    "0461"
                    "00"
                    "0461"
                    "00"),
            "entry field details repeats a key");
  EXPECT_EQ(message("02"
                    "05"
                    "00"
                    "8201"
                    "0e0a"
                    "0000"
                    "00"
                    "00"
                    "00"
                    "00"
                    "02"
                    "0462"
                    "00"
                    "0461"
                    "00"),
            "entry is not in canonical form");
  // Content the field rules refuse: an effect that is not one, invalid UTF-8,
  // a control character, a patient_ref that is not 16 bytes of hex.
  EXPECT_NE(message("02"
                    "05"
                    "00"
                    "8201"
                    "0e"
                    "0e"
                    "00000000000000")
                .find("effect"),
            std::string::npos);
  EXPECT_NE(message("02"
                    "05"
                    "08"
                    "61c3"
                    "8201"
                    "0e0a"
                    "00000000000000")
                .find("UTF-8"),
            std::string::npos);
  EXPECT_NE(message("02"
                    "05"
                    "08"
                    "610a"
                    "8201"
                    "0e0a"
                    "00000000000000")
                .find("control"),
            std::string::npos);
  EXPECT_NE(message("02"
                    "05"
                    "00"
                    "8201"
                    "0e0a"
                    "0000"
                    "00"
                    "00"
                    "00"
                    "05"
                    "ab"
                    "00")
                .find("patient_ref"),
            std::string::npos);
}

TEST(EntryCompact, VersionsAreDetectedFromTheFirstByte) {
  EXPECT_EQ(*EntryFormatVersion(ToBytes("{\"v\":1}")), kEntryVersionJson);
  EXPECT_EQ(*EntryFormatVersion(B("02")), kEntryVersion);
  EXPECT_EQ(DecodeStatus(B("0305")).message(), "unsupported entry version 3");
  EXPECT_EQ(DecodeStatus(B("1f")).message(), "unsupported entry version 31");
  EXPECT_EQ(DecodeStatus(B("01")).message(), "unsupported entry version 1");
  for (std::string_view other : {"ff00", "00", "20", "5b5d", "6e756c6c"}) {  // ..., "[]", "null"
    EXPECT_EQ(DecodeStatus(B(other)).message(), "entry is not in a known format") << other;
  }
  EXPECT_EQ(DecodeStatus(Bytes{}).message(), "entry is empty");
  EXPECT_EQ(DecodeStatus(Bytes(kMaxEntryBytes + 1, 0x02)).message(), "entry is larger than 64 KiB");
}

TEST(EntryCompact, WordTableIsFrozenAndUnambiguous) {
  const auto words = internal::CompactDictionary();
  std::set<std::string_view> seen;
  std::string joined;
  for (std::string_view w : words) {
    EXPECT_TRUE(seen.insert(w).second) << "twice: " << w;
    EXPECT_FALSE(w.empty());
    joined.append(w).push_back('\n');
  }
  // Every action medvault writes has a word.
  for (std::string_view a : kKnownActions) {
    EXPECT_TRUE(seen.count(a)) << a;
  }
  // The table is part of format version 2: an edit would change the meaning
  // of stored entries. Add a format version instead of changing this.
  EXPECT_EQ(words.size(), 196u);
  EXPECT_EQ(ToHex(crypto::Sha256(AsBytes(joined))),
            "79d820ee111d0ae581dec7cd4cc3265a98461dba14f5bcc674a648e875092a45");
}

// Entries of format version 1 as older logs hold them (written by the
// version 1 encoder before version 2 existed), with their leaf hashes.
TEST(EntryCompact, FormatVersion1FixturesStillDecodeAndHashTheSame) {
  std::ifstream in(std::string(MEDVAULT_TESTDATA_DIR) + "/ledger/entries_v1.txt");
  ASSERT_TRUE(in) << "fixture missing";
  std::string line;
  int count = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    const size_t space = line.find(' ');
    ASSERT_NE(space, std::string::npos);
    const std::string leaf_hex = line.substr(0, space);
    const Bytes bytes = ToBytes(line.substr(space + 1));
    auto e = Decode(bytes);
    ASSERT_TRUE(e.ok()) << e.status().ToString() << "\n" << line;
    EXPECT_EQ(EncodeJsonV1(*e), bytes);
    const Hash leaf = LeafHash(bytes);
    EXPECT_EQ(ToHex(HashView(leaf)), leaf_hex);
    // Re-encoded today, the same entry is much smaller, and another leaf.
    EXPECT_LT(Encode(*e).size(), bytes.size() / 2);
    EXPECT_EQ(*Decode(Encode(*e)), *e);
    ++count;
  }
  EXPECT_GE(count, 3);
}

}  // namespace
}  // namespace medvault::ledger
