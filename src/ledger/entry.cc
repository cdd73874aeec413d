// Ledger entries: validation, format detection, the canonical JSON encoding
// of format version 1, strict decoding and the keyed patient reference.
//
// medvault writes format version 2 (entry_compact.cc); version 1 entries
// stay in old logs and must keep decoding to the same entry and the same
// leaf hash, so their encoder and decoder stay here unchanged.
//
// The JSON is written by hand (not by a JSON library) so that the bytes are
// fixed by docs/ledger.md rather than by a library's formatting choices.
// Decoding parses with nlohmann::json, checks every field, and then demands
// that re-encoding gives back exactly the input bytes: anything non-canonical
// (order, whitespace, escapes, duplicates, number forms) is refused.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>

#include "crypto/crypto.h"
#include "ledger/internal.h"
#include "ledger/ledger.h"

namespace medvault::ledger {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxActionBytes = 64;
constexpr size_t kPatientRefBytes = 16;
constexpr size_t kFieldCount = 12;

// No C0 controls or DEL: entries are single-line facts, and this leaves only
// '"' and '\' to escape in the canonical form.
bool HasControlChar(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      return true;
    }
  }
  return false;
}

Status CheckString(std::string_view field, std::string_view value, bool required) {
  if (required && value.empty()) {
    return Status::InvalidArgument("entry " + std::string(field) + " is empty");
  }
  if (value.size() > kMaxEntryStringBytes) {
    return Status::InvalidArgument("entry " + std::string(field) + " is longer than " +
                                   std::to_string(kMaxEntryStringBytes) + " bytes");
  }
  if (!IsValidUtf8(value)) {
    return Status::InvalidArgument("entry " + std::string(field) + " is not valid UTF-8");
  }
  if (HasControlChar(value)) {
    return Status::InvalidArgument("entry " + std::string(field) + " contains a control character");
  }
  return Status::Ok();
}

bool IsActionChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

}  // namespace

Status internal::ValidateFields(const Entry& e) {
  if (e.time_ms < 0) {
    return Status::InvalidArgument("entry time_ms is negative");
  }
  MV_RETURN_IF_ERROR(CheckString("request_id", e.request_id, false));
  MV_RETURN_IF_ERROR(CheckString("actor", e.actor, true));
  MV_RETURN_IF_ERROR(CheckString("action", e.action, true));
  if (e.action.size() > kMaxActionBytes) {
    return Status::InvalidArgument("entry action is longer than 64 bytes");
  }
  for (char c : e.action) {
    if (!IsActionChar(c)) {
      return Status::InvalidArgument("entry action may only hold [a-z0-9._-]");
    }
  }
  if (e.effect != kEffectPermit && e.effect != kEffectDeny && e.effect != kEffectDone) {
    return Status::InvalidArgument("entry effect must be permit, deny or done");
  }
  if (e.reasons.size() > kMaxEntryListItems) {
    return Status::InvalidArgument("entry has too many reasons");
  }
  for (const std::string& r : e.reasons) {
    MV_RETURN_IF_ERROR(CheckString("reason", r, true));
  }
  if (e.obligations.size() > kMaxEntryListItems) {
    return Status::InvalidArgument("entry has too many obligations");
  }
  for (const std::string& o : e.obligations) {
    MV_RETURN_IF_ERROR(CheckString("obligation", o, true));
  }
  MV_RETURN_IF_ERROR(CheckString("purpose", e.purpose, false));
  MV_RETURN_IF_ERROR(CheckString("resource kind", e.resource.kind, false));
  MV_RETURN_IF_ERROR(CheckString("resource path", e.resource.path, false));
  if (!e.patient_ref.empty() && !IsValidPatientRef(e.patient_ref)) {
    return Status::InvalidArgument("entry patient_ref must be 32 lower-case hex characters");
  }
  if (e.details.size() > kMaxEntryListItems) {
    return Status::InvalidArgument("entry has too many details");
  }
  for (const auto& kv : e.details) {
    MV_RETURN_IF_ERROR(CheckString("details key", kv.first, true));
    MV_RETURN_IF_ERROR(CheckString("details value", kv.second, false));
  }
  return Status::Ok();
}

namespace {

// ---------------------------------------------------------------------------
// Canonical writer (version 1).

void PutString(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
    }
    out.push_back(c);
  }
  out.push_back('"');
}

void PutKey(std::string& out, std::string_view key) {
  PutString(out, key);
  out.push_back(':');
}

void PutList(std::string& out, const std::vector<std::string>& items) {
  out.push_back('[');
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) {
      out.push_back(',');
    }
    PutString(out, items[i]);
  }
  out.push_back(']');
}

std::string EncodeString(const Entry& e) {
  std::string out;
  out.reserve(256);
  // Keys in byte order; every key is always present.
  out.push_back('{');
  PutKey(out, "action");
  PutString(out, e.action);
  out.push_back(',');
  PutKey(out, "actor");
  PutString(out, e.actor);
  out.push_back(',');
  PutKey(out, "details");
  out.push_back('{');
  bool first = true;
  for (const auto& kv : e.details) {  // std::map: byte order of keys
    if (!first) {
      out.push_back(',');
    }
    first = false;
    PutKey(out, kv.first);
    PutString(out, kv.second);
  }
  out.push_back('}');
  out.push_back(',');
  PutKey(out, "effect");
  PutString(out, e.effect);
  out.push_back(',');
  PutKey(out, "obligations");
  PutList(out, e.obligations);
  out.push_back(',');
  PutKey(out, "patient_ref");
  PutString(out, e.patient_ref);
  out.push_back(',');
  PutKey(out, "purpose");
  PutString(out, e.purpose);
  out.push_back(',');
  PutKey(out, "reasons");
  PutList(out, e.reasons);
  out.push_back(',');
  PutKey(out, "request_id");
  PutString(out, e.request_id);
  out.push_back(',');
  PutKey(out, "resource");
  out.push_back('{');
  PutKey(out, "kind");
  PutString(out, e.resource.kind);
  out.push_back(',');
  PutKey(out, "path");
  PutString(out, e.resource.path);
  out.push_back('}');
  out.push_back(',');
  PutKey(out, "time_ms");
  out += std::to_string(e.time_ms);
  out.push_back(',');
  PutKey(out, "v");
  out += std::to_string(kEntryVersionJson);
  out.push_back('}');
  return out;
}

// ---------------------------------------------------------------------------
// Reader helpers: each names the field that is wrong.

Result<std::string> GetString(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    return Status::InvalidArgument(std::string("entry has no field ") + key);
  }
  if (!it->is_string()) {
    return Status::InvalidArgument(std::string("entry field ") + key + " is not a string");
  }
  return it->get<std::string>();
}

Result<std::vector<std::string>> GetList(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    return Status::InvalidArgument(std::string("entry has no field ") + key);
  }
  if (!it->is_array()) {
    return Status::InvalidArgument(std::string("entry field ") + key + " is not an array");
  }
  if (it->size() > kMaxEntryListItems) {
    return Status::InvalidArgument(std::string("entry field ") + key + " has too many items");
  }
  std::vector<std::string> out;
  for (const Json& item : *it) {
    if (!item.is_string()) {
      return Status::InvalidArgument(std::string("entry field ") + key + " holds a non-string");
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

Result<int64_t> GetInt(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    return Status::InvalidArgument(std::string("entry has no field ") + key);
  }
  if (it->is_number_unsigned()) {
    const uint64_t v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Status::InvalidArgument(std::string("entry field ") + key + " is out of range");
    }
    return static_cast<int64_t>(v);
  }
  if (it->is_number_integer()) {
    return it->get<int64_t>();
  }
  return Status::InvalidArgument(std::string("entry field ") + key + " is not an integer");
}

}  // namespace

namespace internal {

Result<Bytes> ValidateAndEncode(const Entry& entry) {
  MV_RETURN_IF_ERROR(ValidateFields(entry));
  Bytes bytes = Encode(entry);
  if (bytes.size() > kMaxEntryBytes) {
    return Status::InvalidArgument("entry is larger than 64 KiB encoded");
  }
  return bytes;
}

}  // namespace internal

Status ValidateEntry(const Entry& entry) { return internal::ValidateAndEncode(entry).status(); }

Bytes Encode(const Entry& entry) { return internal::EncodeCompact(entry); }

Bytes EncodeJsonV1(const Entry& entry) { return ToBytes(EncodeString(entry)); }

namespace {

Result<Entry> DecodeJsonV1(ByteView bytes) {
  const std::string_view text = AsString(bytes);
  if (!IsValidUtf8(text)) {
    return Status::InvalidArgument("entry is not valid UTF-8");
  }
  const Json doc = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return Status::InvalidArgument("entry is not valid JSON");
  }
  if (!doc.is_object()) {
    return Status::InvalidArgument("entry is not a JSON object");
  }
  // The version first, so that a future format is named as such.
  MV_ASSIGN_OR_RETURN(int64_t version, GetInt(doc, "v"));
  if (version != kEntryVersionJson) {
    return Status::InvalidArgument("unsupported entry version " + std::to_string(version));
  }
  if (doc.size() != kFieldCount) {
    return Status::InvalidArgument("entry has " + std::to_string(doc.size()) + " fields, not " +
                                   std::to_string(kFieldCount));
  }
  Entry e;
  MV_ASSIGN_OR_RETURN(e.time_ms, GetInt(doc, "time_ms"));
  MV_ASSIGN_OR_RETURN(e.request_id, GetString(doc, "request_id"));
  MV_ASSIGN_OR_RETURN(e.actor, GetString(doc, "actor"));
  MV_ASSIGN_OR_RETURN(e.action, GetString(doc, "action"));
  MV_ASSIGN_OR_RETURN(e.effect, GetString(doc, "effect"));
  MV_ASSIGN_OR_RETURN(e.reasons, GetList(doc, "reasons"));
  MV_ASSIGN_OR_RETURN(e.obligations, GetList(doc, "obligations"));
  MV_ASSIGN_OR_RETURN(e.purpose, GetString(doc, "purpose"));
  MV_ASSIGN_OR_RETURN(e.patient_ref, GetString(doc, "patient_ref"));
  {
    auto it = doc.find("resource");
    if (it == doc.end() || !it->is_object()) {
      return Status::InvalidArgument("entry field resource is missing or not an object");
    }
    if (it->size() != 2) {
      return Status::InvalidArgument("entry field resource must have exactly kind and path");
    }
    MV_ASSIGN_OR_RETURN(e.resource.kind, GetString(*it, "kind"));
    MV_ASSIGN_OR_RETURN(e.resource.path, GetString(*it, "path"));
  }
  {
    auto it = doc.find("details");
    if (it == doc.end() || !it->is_object()) {
      return Status::InvalidArgument("entry field details is missing or not an object");
    }
    if (it->size() > kMaxEntryListItems) {
      return Status::InvalidArgument("entry field details has too many items");
    }
    for (auto kv = it->begin(); kv != it->end(); ++kv) {
      if (!kv.value().is_string()) {
        return Status::InvalidArgument("entry field details holds a non-string");
      }
      e.details.emplace(kv.key(), kv.value().get<std::string>());
    }
  }
  MV_RETURN_IF_ERROR(internal::ValidateFields(e));
  if (EncodeString(e) != text) {
    return Status::InvalidArgument("entry is not in canonical form");
  }
  return e;
}

}  // namespace

Result<int> EntryFormatVersion(ByteView bytes) {
  if (bytes.empty()) {
    return Status::InvalidArgument("entry is empty");
  }
  const uint8_t first = bytes[0];
  if (first == '{') {
    return kEntryVersionJson;  // the "v" field inside says which JSON version
  }
  if (first == kEntryVersion) {
    return kEntryVersion;
  }
  if (first >= 0x01 && first <= 0x1f) {  // reserved for binary format versions
    return Status::InvalidArgument("unsupported entry version " + std::to_string(first));
  }
  return Status::InvalidArgument("entry is not in a known format");
}

Result<Entry> Decode(ByteView bytes) {
  if (bytes.size() > kMaxEntryBytes) {
    return Status::InvalidArgument("entry is larger than 64 KiB");
  }
  MV_ASSIGN_OR_RETURN(int version, EntryFormatVersion(bytes));
  if (version == kEntryVersion) {
    return internal::DecodeCompact(bytes);
  }
  return DecodeJsonV1(bytes);
}

std::string PatientRef(const SecretBytes& key, std::string_view patient_id) {
  if (key.size() < crypto::kKeySize) {
    std::fprintf(stderr, "medvault: PatientRef called without a 32-byte key\n");
    std::abort();
  }
  const Bytes mac = crypto::HmacSha256(key, AsBytes(patient_id));
  return ToHex(ByteView(mac.data(), kPatientRefBytes));
}

namespace {

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

// Calls f(field name, string) for every string of the entry, mutable.
template <typename E, typename F>
void ForEachString(E& e, F&& f) {
  f("request_id", e.request_id);
  f("actor", e.actor);
  f("action", e.action);
  f("effect", e.effect);
  for (auto& r : e.reasons) {
    f("reasons", r);
  }
  for (auto& o : e.obligations) {
    f("obligations", o);
  }
  f("purpose", e.purpose);
  f("resource.kind", e.resource.kind);
  f("resource.path", e.resource.path);
  f("patient_ref", e.patient_ref);
  for (auto& [k, v] : e.details) {
    if constexpr (std::is_const_v<E>) {
      f("details key", k);  // keys are redacted by rebuilding the map
    }
    f("details." + k, v);
  }
}

// Where `lower_form` (ASCII lower case) first occurs in `value` compared
// without case; npos when it does not. Allocates nothing: it runs over every
// string of every audited entry.
size_t FindFolded(std::string_view value, std::string_view lower_form) {
  if (lower_form.empty() || value.size() < lower_form.size()) {
    return std::string_view::npos;
  }
  const auto fold = [](char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  };
  for (size_t at = 0; at + lower_form.size() <= value.size(); ++at) {
    size_t i = 0;
    while (i < lower_form.size() && fold(value[at + i]) == lower_form[i]) {
      ++i;
    }
    if (i == lower_form.size()) {
      return at;
    }
  }
  return std::string_view::npos;
}

// The hex forms are compared without case (FindFolded); the base64 forms
// as they are.
struct IdForms {
  std::vector<std::string> folded;
  std::vector<std::string> exact;
};

IdForms FormsOf(std::string_view patient_id) {
  IdForms f;
  if (patient_id.size() == 32 && IsLowerHex(Lower(patient_id))) {
    const std::string hex = Lower(patient_id);
    f.folded.push_back(hex);
    f.folded.push_back(hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
                       hex.substr(16, 4) + "-" + hex.substr(20));
    auto raw = FromHex(hex);
    if (raw.ok()) {
      f.exact.push_back(ToBase64(*raw).substr(0, 22));
      f.exact.push_back(ToBase64Url(*raw).substr(0, 22));
    }
  } else {
    f.exact.emplace_back(patient_id);
  }
  return f;
}

// Whether `value` spells the patient id in one of its forms.
bool NamesPatient(const IdForms& forms, std::string_view value) {
  for (const std::string& form : forms.folded) {
    if (FindFolded(value, form) != std::string_view::npos) {
      return true;
    }
  }
  for (const std::string& form : forms.exact) {
    if (value.find(form) != std::string_view::npos) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::vector<std::string> PatientIdForms(std::string_view patient_id) {
  IdForms f = FormsOf(patient_id);
  std::vector<std::string> out = std::move(f.folded);
  out.insert(out.end(), f.exact.begin(), f.exact.end());
  return out;
}

Status CheckNoPatientId(const Entry& entry, std::string_view patient_id) {
  if (patient_id.empty()) {
    return Status::InvalidArgument("no patient id to check the entry against");
  }
  const IdForms forms = FormsOf(patient_id);
  std::string bad;
  ForEachString(entry, [&](const std::string& field, const std::string& value) {
    if (bad.empty() && value.size() >= 16 && NamesPatient(forms, value)) {
      bad = field;
    }
  });
  if (!bad.empty()) {
    return Status::InvalidArgument("entry " + bad +
                                   " holds the patient id in clear (the ledger names patients "
                                   "only by their pseudonym)");
  }
  return Status::Ok();
}

void RedactPatientId(Entry& entry, std::string_view patient_id) {
  if (patient_id.empty()) {
    return;
  }
  const IdForms forms = FormsOf(patient_id);
  const auto redact = [&](const std::string&, std::string& value) {
    if (!NamesPatient(forms, value)) {
      return;  // nearly always: nothing to rewrite
    }
    for (const std::string& form : forms.folded) {
      for (size_t at = FindFolded(value, form); at != std::string::npos;
           at = FindFolded(value, form)) {
        value.replace(at, form.size(), "{patient}");
      }
    }
    for (const std::string& form : forms.exact) {
      for (size_t at = value.find(form); at != std::string::npos; at = value.find(form)) {
        value.replace(at, form.size(), "{patient}");
      }
    }
  };
  ForEachString(entry, redact);
  // Keys are rebuilt only when one of them names the patient (rare).
  if (std::none_of(entry.details.begin(), entry.details.end(),
                   [&](const auto& kv) { return NamesPatient(forms, kv.first); })) {
    return;
  }
  std::map<std::string, std::string> details;
  for (auto& [k, v] : entry.details) {
    std::string key = k;
    redact("details key", key);
    details[std::move(key)] = std::move(v);
  }
  entry.details = std::move(details);
}

Status BindPatient(Entry& entry, const SecretBytes& key, std::string_view patient_id) {
  if (patient_id.empty()) {
    return Status::InvalidArgument("entry has no patient to bind");
  }
  entry.patient_ref = PatientRef(key, patient_id);
  return CheckNoPatientId(entry, patient_id);
}

bool IsValidPatientRef(std::string_view ref) {
  if (ref.size() != 2 * kPatientRefBytes) {
    return false;
  }
  for (char c : ref) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

void Log::AppendAsync(std::vector<Entry> entries, std::function<void(const Status&)> done) {
  done(Append(std::move(entries)));
}

}  // namespace medvault::ledger
