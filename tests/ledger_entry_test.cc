// Ledger entries: the canonical JSON of format version 1 (still read from
// older logs), strict decoding, validation and the keyed patient reference.
// The compact format version 2 has its own test (entry_compact_test.cc).
#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "crypto/crypto.h"
#include "crypto_test_util.h"
#include "ledger/ledger.h"

namespace medvault::ledger {
namespace {

using medvault::testing::Hex;

SecretBytes TestKey() {
  SecretBytes k(32);
  for (size_t i = 0; i < k.size(); ++i) {
    k.data()[i] = static_cast<uint8_t>(i * 3 + 1);
  }
  return k;
}

Entry Full() {
  Entry e;
  e.time_ms = 1763751600123;
  e.request_id = "req-7f3a";
  e.actor = "0123456789abcdef0123456789abcdef";
  e.action = std::string(kActionSegmentRead);
  e.effect = std::string(kEffectPermit);
  e.reasons = {"treating-relationship", "consent-granted"};
  e.obligations = {"notify-patient"};
  e.purpose = "treatment";
  e.resource = {"segment", "internal-medicine/cardiology"};
  e.patient_ref = PatientRef(TestKey(), "fedcba9876543210fedcba9876543210");
  e.details = {{"version", "3"}, {"content_sha256", std::string(64, 'a')}};
  return e;
}

std::string Str(const Bytes& b) { return std::string(AsString(b)); }

TEST(LedgerEntry, EncodingIsTheDocumentedCanonicalJson) {
  Entry e;
  e.time_ms = 42;
  e.actor = "system";
  e.action = "account.create";
  e.effect = "done";
  e.details = {{"z", "1"}, {"a", "q\"uo\\te"}};
  EXPECT_EQ(Str(EncodeJsonV1(e)),
            R"({"action":"account.create","actor":"system","details":{"a":"q\"uo\\te","z":"1"},)"
            R"("effect":"done","obligations":[],"patient_ref":"","purpose":"","reasons":[],)"
            R"("request_id":"","resource":{"kind":"","path":""},"time_ms":42,"v":1})");
}

TEST(LedgerEntry, RoundTrips) {
  const Entry e = Full();
  ASSERT_TRUE(ValidateEntry(e).ok());
  const Bytes bytes = EncodeJsonV1(e);
  auto back = Decode(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, e);
  EXPECT_EQ(EncodeJsonV1(*back), bytes);
  EXPECT_EQ(EncodeJsonV1(e), bytes);  // deterministic

  // Minimal entry, and non-ASCII UTF-8 passes through raw.
  Entry m;
  m.actor = "cli";
  m.action = "decision";
  m.effect = "deny";
  m.reasons = {"zone-refusée"};
  auto m_back = Decode(EncodeJsonV1(m));
  ASSERT_TRUE(m_back.ok()) << m_back.status().ToString();
  EXPECT_EQ(*m_back, m);
  EXPECT_NE(Str(EncodeJsonV1(m)).find("zone-refusée"), std::string::npos);
}

TEST(LedgerEntry, DecodeAcceptsOnlyWhatEncodeProduces) {
  const std::string good = Str(EncodeJsonV1(Full()));
  ASSERT_TRUE(Decode(ToBytes(good)).ok());

  const auto refused = [](const std::string& text) {
    auto r = Decode(ToBytes(text));
    return !r.ok() && r.status().code() == StatusCode::kInvalidArgument;
  };
  // Extra whitespace anywhere.
  EXPECT_TRUE(refused(" " + good));
  EXPECT_TRUE(refused(good + "\n"));
  std::string spaced = good;
  spaced.insert(spaced.find(':') + 1, " ");
  EXPECT_TRUE(refused(spaced));
  // Reordered keys ("actor" before "action").
  Entry e;
  e.actor = "system";
  e.action = "decision";
  e.effect = "done";
  const std::string minimal = Str(EncodeJsonV1(e));
  ASSERT_TRUE(Decode(ToBytes(minimal)).ok());
  std::string swapped = minimal;
  swapped.replace(swapped.find(R"("action":"decision","actor":"system")"),
                  std::string(R"("action":"decision","actor":"system")").size(),
                  R"("actor":"system","action":"decision")");
  EXPECT_TRUE(refused(swapped));
  // Unnecessary escapes: \u0073 is 's'.
  std::string escaped = minimal;
  escaped.replace(escaped.find("system"), 6, "\\u0073ystem");
  EXPECT_TRUE(refused(escaped));
  // Number forms: leading zero, exponent, fraction, negative zero.
  std::string num = minimal;
  const size_t t = num.find("\"time_ms\":0");
  ASSERT_NE(t, std::string::npos);
  EXPECT_TRUE(refused(std::string(num).replace(t, 11, "\"time_ms\":00")));
  EXPECT_TRUE(refused(std::string(num).replace(t, 11, "\"time_ms\":0e0")));
  EXPECT_TRUE(refused(std::string(num).replace(t, 11, "\"time_ms\":0.0")));
  EXPECT_TRUE(refused(std::string(num).replace(t, 11, "\"time_ms\":-0")));
  EXPECT_TRUE(refused(std::string(num).replace(t, 11, "\"time_ms\":-5")));
  EXPECT_TRUE(refused(std::string(num).replace(t, 11, "\"time_ms\":\"0\"")));
  // Duplicate key.
  EXPECT_TRUE(refused(std::string(minimal).insert(1, R"("v":1,)")));
  // Missing and extra fields.
  std::string missing = minimal;
  missing.replace(missing.find(R"("purpose":"",)"), std::string(R"("purpose":"",)").size(), "");
  EXPECT_TRUE(refused(missing));
  EXPECT_TRUE(refused(std::string(minimal).insert(1, R"("extra":"x",)")));
  std::string extra_resource = minimal;
  extra_resource.replace(extra_resource.find(R"("path":"")"), 9, R"("path":"","zone":"")");
  EXPECT_TRUE(refused(extra_resource));
  // Wrong types.
  std::string wrong = minimal;
  wrong.replace(wrong.find(R"("reasons":[])"), 12, R"("reasons":"x")");
  EXPECT_TRUE(refused(wrong));
  wrong = minimal;
  wrong.replace(wrong.find(R"("reasons":[])"), 12, R"("reasons":[1])");
  EXPECT_TRUE(refused(wrong));
  wrong = minimal;
  wrong.replace(wrong.find(R"("details":{})"), 12, R"("details":{"a":1})");
  EXPECT_TRUE(refused(wrong));
  // Not JSON, not an object, truncated, empty.
  EXPECT_TRUE(refused(""));
  EXPECT_TRUE(refused("[]"));
  EXPECT_TRUE(refused(good.substr(0, good.size() - 1)));
  EXPECT_TRUE(refused("null"));
  // Invalid UTF-8.
  std::string bad_utf8 = minimal;
  bad_utf8.replace(bad_utf8.find("system"), 6, "sys\xc3tem");
  EXPECT_TRUE(refused(bad_utf8));
  // Valid JSON whose content fails validation: control character, bad effect.
  std::string control = minimal;
  control.replace(control.find("system"), 6, "sys\\ntem");
  EXPECT_TRUE(refused(control));
  std::string effect = minimal;
  effect.replace(effect.find(R"("effect":"done")"), 15, R"("effect":"maybe")");
  EXPECT_TRUE(refused(effect));
}

TEST(LedgerEntry, UnknownVersionIsNamed) {
  Entry e;
  e.actor = "system";
  e.action = "decision";
  e.effect = "done";
  std::string text = Str(EncodeJsonV1(e));
  text.replace(text.find(R"("v":1)"), 5, R"("v":2)");
  auto r = Decode(ToBytes(text));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("unsupported entry version 2"), std::string::npos)
      << r.status().message();
  // A future version with other fields is still reported as a version problem.
  auto future = Decode(ToBytes(R"({"v":3,"new":"shape"})"));
  ASSERT_FALSE(future.ok());
  EXPECT_NE(future.status().message().find("version 3"), std::string::npos);
  EXPECT_FALSE(Decode(ToBytes(R"({"action":"x"})")).ok());  // no version at all
}

TEST(LedgerEntry, ValidationNamesTheField) {
  const auto message = [](const Entry& e) { return ValidateEntry(e).message(); };
  Entry e = Full();
  e.actor.clear();
  EXPECT_NE(message(e).find("actor"), std::string::npos);
  e = Full();
  e.action = "Segment.Read";
  EXPECT_NE(message(e).find("action"), std::string::npos);
  e = Full();
  e.action = std::string(65, 'a');
  EXPECT_FALSE(ValidateEntry(e).ok());
  e = Full();
  e.effect = "allow";
  EXPECT_NE(message(e).find("effect"), std::string::npos);
  e = Full();
  e.time_ms = -1;
  EXPECT_NE(message(e).find("time_ms"), std::string::npos);
  e = Full();
  e.patient_ref = "fedcba9876543210fedcba9876543210";  // looks like an id but is not a ref?
  EXPECT_TRUE(ValidateEntry(e).ok());                  // shape only: 32 lower-case hex
  e.patient_ref = "Patient 12";
  EXPECT_NE(message(e).find("patient_ref"), std::string::npos);
  e = Full();
  e.purpose = "line\nbreak";
  EXPECT_NE(message(e).find("control"), std::string::npos);
  e = Full();
  e.resource.path = "bad\xff";
  EXPECT_NE(message(e).find("UTF-8"), std::string::npos);
  e = Full();
  e.reasons.assign(kMaxEntryListItems + 1, "r");
  EXPECT_FALSE(ValidateEntry(e).ok());
  e = Full();
  e.reasons = {""};
  EXPECT_FALSE(ValidateEntry(e).ok());
  e = Full();
  e.details[""] = "v";
  EXPECT_FALSE(ValidateEntry(e).ok());
  e = Full();
  e.request_id = std::string(kMaxEntryStringBytes + 1, 'x');
  EXPECT_FALSE(ValidateEntry(e).ok());
  e = Full();
  for (int i = 0; i < 30; ++i) {
    e.details["k" + std::to_string(i)] = std::string(kMaxEntryStringBytes, 'x');
  }
  e.request_id = std::string(kMaxEntryStringBytes, 'x');
  e.purpose = std::string(kMaxEntryStringBytes, 'x');
  EXPECT_NE(message(e).find("64 KiB"), std::string::npos);
}

TEST(LedgerEntry, PatientRefIsKeyedAndHidesTheId) {
  const std::string patient_id = "fedcba9876543210fedcba9876543210";
  const SecretBytes key = TestKey();
  const std::string ref = PatientRef(key, patient_id);
  EXPECT_TRUE(IsValidPatientRef(ref));
  EXPECT_EQ(ref.size(), 32u);
  EXPECT_EQ(ref, PatientRef(key, patient_id));  // deterministic
  EXPECT_NE(ref, PatientRef(key, "0123456789abcdef0123456789abcdef"));
  SecretBytes other = TestKey();
  other.data()[0] ^= 1;
  EXPECT_NE(ref, PatientRef(other, patient_id));  // keyed
  // Independent computation: HMAC-SHA-256(key, id)[:16] as hex.
  EXPECT_EQ(ref, ToHex(crypto::HmacSha256(key, AsBytes(patient_id))).substr(0, 32));
  // Neither the id nor its unkeyed hash is in the encoded entry.
  const std::string bytes = Str(EncodeJsonV1(Full()));
  EXPECT_EQ(bytes.find(patient_id), std::string::npos);
  EXPECT_EQ(bytes.find(ToHex(crypto::Sha256(AsBytes(patient_id))).substr(0, 16)),
            std::string::npos);
  EXPECT_NE(bytes.find(ref), std::string::npos);
}

TEST(LedgerEntry, PatientRefShape) {
  EXPECT_TRUE(IsValidPatientRef(std::string(32, 'a')));
  EXPECT_FALSE(IsValidPatientRef(std::string(32, 'A')));
  EXPECT_FALSE(IsValidPatientRef(std::string(31, 'a')));
  EXPECT_FALSE(IsValidPatientRef(std::string(32, 'g')));
  EXPECT_FALSE(IsValidPatientRef(""));
}

TEST(LedgerEntryDeathTest, PatientRefWithoutAKeyAborts) {
  EXPECT_DEATH((void)PatientRef(SecretBytes(), "x"), "32-byte key");
}

TEST(LedgerEntry, LeafHashCoversEveryField) {
  const Hash base = LeafHash(Encode(Full()));
  std::vector<Entry> variants(11, Full());
  variants[0].time_ms += 1;
  variants[1].request_id += "x";
  variants[2].actor = "system";
  variants[3].action = "segment.write";
  variants[4].effect = "deny";
  variants[5].reasons.pop_back();
  variants[6].obligations.clear();
  variants[7].purpose = "research";
  variants[8].resource.path = "internal-medicine";
  variants[9].patient_ref = std::string(32, '0');
  variants[10].details["version"] = "4";
  for (size_t i = 0; i < variants.size(); ++i) {
    EXPECT_NE(LeafHash(Encode(variants[i])), base) << i;
  }
  // List boundaries are unambiguous: ["a,b"] differs from ["a","b"].
  Entry a = Full();
  a.reasons = {"a,b"};
  Entry b = Full();
  b.reasons = {"a", "b"};
  EXPECT_NE(Encode(a), Encode(b));
}

// Issue 13: a patient id must never reach an entry in clear.
constexpr char kPatient[] = "fedcba9876543210fedcba9876543210";

TEST(LedgerEntryPatient, BindPatientSetsThePseudonym) {
  Entry e = Full();
  e.patient_ref.clear();
  ASSERT_TRUE(BindPatient(e, TestKey(), kPatient).ok());
  EXPECT_EQ(e.patient_ref, PatientRef(TestKey(), kPatient));
  EXPECT_EQ(BindPatient(e, TestKey(), "").code(), StatusCode::kInvalidArgument);
}

TEST(LedgerEntryPatient, EveryFieldAndEncodingOfTheIdIsRefused) {
  const std::string upper = "FEDCBA9876543210FEDCBA9876543210";
  const std::string uuid = "FedCBA98-7654-3210-fedc-ba9876543210";
  auto raw = FromHex(kPatient);
  ASSERT_TRUE(raw.ok());
  const std::string b64 = ToBase64(*raw);        // padded
  const std::string b64url = ToBase64Url(*raw);  // unpadded
  for (const std::string& form :
       {std::string(kPatient), upper, uuid, b64, b64url, "x/" + std::string(kPatient) + "/y"}) {
    const std::vector<std::pair<std::string, std::function<void(Entry&)>>> places = {
        {"request_id", [&](Entry& e) { e.request_id = form; }},
        {"actor", [&](Entry& e) { e.actor = form; }},
        {"purpose", [&](Entry& e) { e.purpose = form; }},
        {"reasons", [&](Entry& e) { e.reasons.push_back(form); }},
        {"obligations", [&](Entry& e) { e.obligations.push_back(form); }},
        {"resource.path", [&](Entry& e) { e.resource.path = "notes/" + form; }},
        {"resource.kind", [&](Entry& e) { e.resource.kind = form; }},
        {"details.entry_id", [&](Entry& e) { e.details["entry_id"] = form; }},
        {"details key", [&](Entry& e) { e.details[form] = "1"; }},
    };
    for (const auto& [field, put] : places) {
      Entry e = Full();
      put(e);
      Status st = BindPatient(e, TestKey(), kPatient);
      EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << field << " " << form;
      EXPECT_NE(st.message().find(field), std::string::npos) << st.message();
      EXPECT_EQ(st.message().find(kPatient), std::string::npos) << "the message names no id";
      EXPECT_EQ(CheckNoPatientId(e, kPatient).code(), StatusCode::kInvalidArgument);
      RedactPatientId(e, kPatient);
      EXPECT_TRUE(CheckNoPatientId(e, kPatient).ok()) << field << " " << form;
      EXPECT_NE(Str(EncodeJsonV1(e)).find("{patient}"), std::string::npos) << Str(EncodeJsonV1(e));
    }
  }
  // Other ids (an account, a consent) and hashes pass.
  Entry e = Full();
  e.details["entry_id"] = "0123456789abcdef0123456789abcdef";
  EXPECT_TRUE(BindPatient(e, TestKey(), kPatient).ok());
  EXPECT_EQ(CheckNoPatientId(e, "").code(), StatusCode::kInvalidArgument);
}

TEST(LedgerEntryPatient, EveryProducerActionIsDeclaredOnce) {
  std::set<std::string_view> unique(kKnownActions.begin(), kKnownActions.end());
  EXPECT_EQ(unique.size(), kKnownActions.size());
  for (std::string_view a : kKnownActions) {
    Entry e = Full();
    e.action = std::string(a);
    EXPECT_TRUE(ValidateEntry(e).ok()) << a;
  }
}

}  // namespace
}  // namespace medvault::ledger
