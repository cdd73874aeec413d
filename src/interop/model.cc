// The interop model as JSON (what segments store) and its canonical form.
#include <algorithm>
#include <array>
#include <string>
#include <utility>

#include "common/bytes.h"
#include "interop/interop.h"
#include "vocab/vocab.h"

namespace medvault::interop {
namespace {

using nlohmann::json;

// The entry kinds' names are the vocabulary's, in the order of EntryKind.
constexpr const auto& kKindRows = vocab::kEntrySegments;
static_assert(kKindRows.size() == kEntryKindCount, "one vocabulary row per EntryKind");
static_assert(kKindRows[static_cast<size_t>(EntryKind::kProblem)].entry_kind == "problem" &&
                  kKindRows[static_cast<size_t>(EntryKind::kVitalSign)].entry_kind ==
                      "vital-sign" &&
                  kKindRows[static_cast<size_t>(EntryKind::kNote)].entry_kind == "note",
              "vocab::kEntrySegments in the order of EntryKind");

// Writers: fields are written only when non-empty, so that absent and empty
// are the same value in the stored and canonical forms.
void Put(json& j, const char* key, const std::string& v) {
  if (!v.empty()) {
    j[key] = v;
  }
}

json CodingJson(const Coding& c) {
  json j = json::object();
  Put(j, "system", c.system);
  Put(j, "code", c.code);
  Put(j, "display", c.display);
  if (!c.translations.empty()) {
    json t = json::array();
    for (const Coding& tr : c.translations) {
      t.push_back(CodingJson(tr));
    }
    j["translations"] = std::move(t);
  }
  return j;
}

void PutCoding(json& j, const char* key, const Coding& c) {
  if (!c.empty()) {
    j[key] = CodingJson(c);
  }
}

json QuantityJson(const Quantity& q) {
  json j = json::object();
  Put(j, "value", q.value);
  Put(j, "unit", q.unit);
  return j;
}

void PutStrings(json& j, const char* key, const std::vector<std::string>& v) {
  if (!v.empty()) {
    j[key] = v;
  }
}

// Readers: strict about types and keys, since segment bodies may have been
// written by anyone with write access to the path.
class Reader {
 public:
  Reader(const json& j, std::string where) : j_(j), where_(std::move(where)) {}

  Status CheckObject(std::initializer_list<std::string_view> known) const {
    if (!j_.is_object()) {
      return Status::InvalidArgument(where_ + " must be a JSON object");
    }
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (std::find(known.begin(), known.end(), it.key()) == known.end()) {
        return Status::InvalidArgument(where_ + " has an unknown field \"" + it.key() + "\"");
      }
    }
    return Status::Ok();
  }

  Status String(const char* key, std::string& out) const {
    auto it = j_.find(key);
    if (it == j_.end()) {
      return Status::Ok();
    }
    if (!it->is_string()) {
      return Status::InvalidArgument(where_ + "." + key + " must be a string");
    }
    out = it->get<std::string>();
    return Status::Ok();
  }

  Status Strings(const char* key, std::vector<std::string>& out) const {
    auto it = j_.find(key);
    if (it == j_.end()) {
      return Status::Ok();
    }
    if (!it->is_array()) {
      return Status::InvalidArgument(where_ + "." + key + " must be an array of strings");
    }
    for (const json& s : *it) {
      if (!s.is_string()) {
        return Status::InvalidArgument(where_ + "." + key + " must be an array of strings");
      }
      out.push_back(s.get<std::string>());
    }
    return Status::Ok();
  }

  Status CodingField(const char* key, Coding& out) const {
    auto it = j_.find(key);
    if (it == j_.end()) {
      return Status::Ok();
    }
    return ReadCoding(*it, where_ + "." + key, out);
  }

  Status OptionalCoding(const char* key, std::optional<Coding>& out) const {
    auto it = j_.find(key);
    if (it == j_.end()) {
      return Status::Ok();
    }
    Coding c;
    Status s = ReadCoding(*it, where_ + "." + key, c);
    if (s.ok()) {
      out = std::move(c);
    }
    return s;
  }

  Status OptionalQuantity(const char* key, std::optional<Quantity>& out) const {
    auto it = j_.find(key);
    if (it == j_.end()) {
      return Status::Ok();
    }
    Reader r(*it, where_ + "." + key);
    Quantity q;
    Status s = r.CheckObject({"value", "unit"});
    if (s.ok()) s = r.String("value", q.value);
    if (s.ok()) s = r.String("unit", q.unit);
    if (s.ok()) out = std::move(q);
    return s;
  }

  // An empty range (no bound, no text) reads as none.
  Status OptionalRange(const char* key, std::optional<ReferenceRange>& out) const {
    auto it = j_.find(key);
    if (it == j_.end()) {
      return Status::Ok();
    }
    Reader r(*it, where_ + "." + key);
    ReferenceRange range;
    Status s = r.CheckObject({"low", "high", "text"});
    if (s.ok()) s = r.OptionalQuantity("low", range.low);
    if (s.ok()) s = r.OptionalQuantity("high", range.high);
    if (s.ok()) s = r.String("text", range.text);
    if (s.ok() && !range.empty()) out = std::move(range);
    return s;
  }

  template <typename T, typename F>
  Status Array(const char* key, std::vector<T>& out, F read_one) const {
    auto it = j_.find(key);
    if (it == j_.end()) {
      return Status::Ok();
    }
    if (!it->is_array()) {
      return Status::InvalidArgument(where_ + "." + key + " must be an array");
    }
    size_t i = 0;
    for (const json& item : *it) {
      T value;
      Status s = read_one(item, where_ + "." + key + "[" + std::to_string(i++) + "]", value);
      if (!s.ok()) {
        return s;
      }
      out.push_back(std::move(value));
    }
    return Status::Ok();
  }

  static Status ReadCoding(const json& j, const std::string& where, Coding& out) {
    Reader r(j, where);
    Status s = r.CheckObject({"system", "code", "display", "translations"});
    if (s.ok()) s = r.String("system", out.system);
    if (s.ok()) s = r.String("code", out.code);
    if (s.ok()) s = r.String("display", out.display);
    if (s.ok()) s = r.Array("translations", out.translations, ReadTranslation);
    if (s.ok() && out.translations.size() > kMaxTranslations) {
      s = Status::InvalidArgument(where + ".translations: more than " +
                                  std::to_string(kMaxTranslations));
    }
    return s;
  }

  // A translation: a coding without translations of its own.
  static Status ReadTranslation(const json& j, const std::string& where, Coding& out) {
    Reader r(j, where);
    Status s = r.CheckObject({"system", "code", "display"});
    if (s.ok()) s = r.String("system", out.system);
    if (s.ok()) s = r.String("code", out.code);
    if (s.ok()) s = r.String("display", out.display);
    return s;
  }

 private:
  const json& j_;
  std::string where_;
};

json ComponentJson(const Component& c) {
  json j = json::object();
  PutCoding(j, "code", c.code);
  if (c.quantity) j["quantity"] = QuantityJson(*c.quantity);
  if (c.value_code) j["value_code"] = CodingJson(*c.value_code);
  Put(j, "value_text", c.value_text);
  return j;
}

Status ReadComponent(const json& j, const std::string& where, Component& out) {
  Reader r(j, where);
  Status s = r.CheckObject({"code", "quantity", "value_code", "value_text"});
  if (s.ok()) s = r.CodingField("code", out.code);
  if (s.ok()) s = r.OptionalQuantity("quantity", out.quantity);
  if (s.ok()) s = r.OptionalCoding("value_code", out.value_code);
  if (s.ok()) s = r.String("value_text", out.value_text);
  return s;
}

Status ReadName(const json& j, const std::string& where, HumanName& out) {
  Reader r(j, where);
  Status s = r.CheckObject({"given", "family", "use"});
  if (s.ok()) s = r.Strings("given", out.given);
  if (s.ok()) s = r.String("family", out.family);
  if (s.ok()) s = r.String("use", out.use);
  return s;
}

Status ReadIdentifier(const json& j, const std::string& where, Identifier& out) {
  Reader r(j, where);
  Status s = r.CheckObject({"system", "value", "type"});
  if (s.ok()) s = r.String("system", out.system);
  if (s.ok()) s = r.String("value", out.value);
  if (s.ok()) s = r.String("type", out.type);
  return s;
}

Status ReadAddress(const json& j, const std::string& where, Address& out) {
  Reader r(j, where);
  Status s = r.CheckObject({"lines", "city", "state", "postal_code", "country", "use"});
  if (s.ok()) s = r.Strings("lines", out.lines);
  if (s.ok()) s = r.String("city", out.city);
  if (s.ok()) s = r.String("state", out.state);
  if (s.ok()) s = r.String("postal_code", out.postal_code);
  if (s.ok()) s = r.String("country", out.country);
  if (s.ok()) s = r.String("use", out.use);
  return s;
}

Status ReadTelecom(const json& j, const std::string& where, Telecom& out) {
  Reader r(j, where);
  Status s = r.CheckObject({"system", "value", "use"});
  if (s.ok()) s = r.String("system", out.system);
  if (s.ok()) s = r.String("value", out.value);
  if (s.ok()) s = r.String("use", out.use);
  return s;
}

json PartyJson(const Party& p) {
  json j = json::object();
  Put(j, "id", p.id);
  Put(j, "name", p.name);
  Put(j, "organization", p.organization);
  Put(j, "time", p.time);
  return j;
}

Status ReadParty(const json& j, const std::string& where, Party& out) {
  Reader r(j, where);
  Status s = r.CheckObject({"id", "name", "organization", "time"});
  if (s.ok()) s = r.String("id", out.id);
  if (s.ok()) s = r.String("name", out.name);
  if (s.ok()) s = r.String("organization", out.organization);
  if (s.ok()) s = r.String("time", out.time);
  return s;
}

// Canonical code systems: "urn:oid:" forms of well-known systems become
// their URIs, so that a C-CDA OID and a FHIR URI compare equal.
void CanonicalizeSystems(json& j) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "system" && it->is_string()) {
        const std::string& s = it->get_ref<const std::string&>();
        if (s.rfind("urn:oid:", 0) == 0) {
          *it = CodeSystemUri(s);
        }
      } else {
        CanonicalizeSystems(*it);
      }
    }
  } else if (j.is_array()) {
    for (json& item : j) {
      CanonicalizeSystems(item);
    }
  }
}

}  // namespace

std::string_view FormatName(Format f) { return f == Format::kCcda ? "ccda" : "fhir"; }

std::string_view EntryKindName(EntryKind k) { return kKindRows[static_cast<size_t>(k)].entry_kind; }

std::optional<EntryKind> ParseEntryKind(std::string_view name) {
  for (size_t i = 0; i < kKindRows.size(); ++i) {
    if (kKindRows[i].entry_kind == name) {
      return static_cast<EntryKind>(i);
    }
  }
  return std::nullopt;
}

json ToJson(const Entry& e) {
  json j = json::object();
  j["kind"] = std::string(EntryKindName(e.kind));
  Put(j, "id", e.id);
  PutCoding(j, "code", e.code);
  Put(j, "text", e.text);
  Put(j, "status", e.status);
  Put(j, "start", e.start);
  Put(j, "end", e.end);
  if (e.quantity) j["quantity"] = QuantityJson(*e.quantity);
  if (e.value_code) j["value_code"] = CodingJson(*e.value_code);
  Put(j, "value_text", e.value_text);
  if (e.reference_range && !e.reference_range->empty()) {
    json rr = json::object();
    if (e.reference_range->low) rr["low"] = QuantityJson(*e.reference_range->low);
    if (e.reference_range->high) rr["high"] = QuantityJson(*e.reference_range->high);
    Put(rr, "text", e.reference_range->text);
    j["reference_range"] = std::move(rr);
  }
  if (!e.components.empty()) {
    json c = json::array();
    for (const Component& comp : e.components) c.push_back(ComponentJson(comp));
    j["components"] = std::move(c);
  }
  Put(j, "category", e.category);
  if (!e.reactions.empty()) {
    json r = json::array();
    for (const Coding& c : e.reactions) r.push_back(CodingJson(c));
    j["reactions"] = std::move(r);
  }
  Put(j, "severity", e.severity);
  PutCoding(j, "relation", e.relation);
  PutCoding(j, "route", e.route);
  Put(j, "media_type", e.media_type);
  Put(j, "url", e.url);
  PutCoding(j, "body_site", e.body_site);
  PutCoding(j, "method", e.method);
  if (!e.reasons.empty()) {
    json r = json::array();
    for (const Coding& c : e.reasons) r.push_back(CodingJson(c));
    j["reasons"] = std::move(r);
  }
  PutCoding(j, "section", e.section);
  PutStrings(j, "members", e.members);
  Put(j, "mood", e.mood);
  if (!e.data.empty()) j["data"] = ToBase64(AsBytes(e.data));
  return j;
}

Result<Entry> EntryFromJson(const json& j) {
  Reader r(j, "entry");
  Entry e;
  Status s = r.CheckObject(
      {"kind",     "id",        "code",       "text",       "status",          "start",
       "end",      "quantity",  "value_code", "value_text", "reference_range", "components",
       "category", "reactions", "severity",   "relation",   "route",           "media_type",
       "url",      "body_site", "method",     "reasons",    "section",         "members",
       "mood",     "data"});
  std::string kind;
  if (s.ok()) s = r.String("kind", kind);
  if (s.ok()) {
    std::optional<EntryKind> k = ParseEntryKind(kind);
    if (!k) {
      return Status::InvalidArgument("entry.kind is missing or unknown");
    }
    e.kind = *k;
  }
  if (s.ok()) s = r.String("id", e.id);
  if (s.ok()) s = r.CodingField("code", e.code);
  if (s.ok()) s = r.String("text", e.text);
  if (s.ok()) s = r.String("status", e.status);
  if (s.ok()) s = r.String("start", e.start);
  if (s.ok()) s = r.String("end", e.end);
  if (s.ok()) s = r.OptionalQuantity("quantity", e.quantity);
  if (s.ok()) s = r.OptionalCoding("value_code", e.value_code);
  if (s.ok()) s = r.String("value_text", e.value_text);
  if (s.ok()) s = r.OptionalRange("reference_range", e.reference_range);
  if (s.ok()) s = r.Array("components", e.components, ReadComponent);
  if (s.ok()) s = r.String("category", e.category);
  if (s.ok()) s = r.Array("reactions", e.reactions, Reader::ReadCoding);
  if (s.ok()) s = r.String("severity", e.severity);
  if (s.ok()) s = r.CodingField("relation", e.relation);
  if (s.ok()) s = r.CodingField("route", e.route);
  if (s.ok()) s = r.String("media_type", e.media_type);
  if (s.ok()) s = r.String("url", e.url);
  if (s.ok()) s = r.CodingField("body_site", e.body_site);
  if (s.ok()) s = r.CodingField("method", e.method);
  if (s.ok()) s = r.Array("reasons", e.reasons, Reader::ReadCoding);
  if (s.ok()) s = r.CodingField("section", e.section);
  if (s.ok()) s = r.Strings("members", e.members);
  if (s.ok() && (e.members.size() > kMaxLinks || e.reasons.size() > kMaxLinks)) {
    return Status::InvalidArgument("entry has more than " + std::to_string(kMaxLinks) +
                                   " members or reasons");
  }
  if (s.ok()) s = r.String("mood", e.mood);
  if (s.ok()) {
    std::string b64;
    s = r.String("data", b64);
    if (s.ok() && !b64.empty()) {
      Result<Bytes> bytes = FromBase64(b64);
      if (!bytes.ok()) return Status::InvalidArgument("entry.data must be base64");
      e.data = std::string(AsString(*bytes));
    }
  }
  if (!s.ok()) {
    return s;
  }
  return e;
}

json ToJson(const PatientHeader& p) {
  json j = json::object();
  Put(j, "id", p.id);
  if (!p.names.empty()) {
    json names = json::array();
    for (const HumanName& n : p.names) {
      json nj = json::object();
      PutStrings(nj, "given", n.given);
      Put(nj, "family", n.family);
      Put(nj, "use", n.use);
      names.push_back(std::move(nj));
    }
    j["names"] = std::move(names);
  }
  Put(j, "birth_date", p.birth_date);
  Put(j, "gender", p.gender);
  if (!p.identifiers.empty()) {
    json ids = json::array();
    for (const Identifier& i : p.identifiers) {
      json ij = json::object();
      Put(ij, "system", i.system);
      Put(ij, "value", i.value);
      Put(ij, "type", i.type);
      ids.push_back(std::move(ij));
    }
    j["identifiers"] = std::move(ids);
  }
  if (!p.addresses.empty()) {
    json as = json::array();
    for (const Address& a : p.addresses) {
      json aj = json::object();
      PutStrings(aj, "lines", a.lines);
      Put(aj, "city", a.city);
      Put(aj, "state", a.state);
      Put(aj, "postal_code", a.postal_code);
      Put(aj, "country", a.country);
      Put(aj, "use", a.use);
      as.push_back(std::move(aj));
    }
    j["addresses"] = std::move(as);
  }
  if (!p.telecoms.empty()) {
    json ts = json::array();
    for (const Telecom& t : p.telecoms) {
      json tj = json::object();
      Put(tj, "system", t.system);
      Put(tj, "value", t.value);
      Put(tj, "use", t.use);
      ts.push_back(std::move(tj));
    }
    j["telecoms"] = std::move(ts);
  }
  Put(j, "deceased", p.deceased);
  PutCoding(j, "marital_status", p.marital_status);
  PutCoding(j, "race", p.race);
  PutCoding(j, "ethnicity", p.ethnicity);
  Put(j, "language", p.language);
  return j;
}

Result<PatientHeader> PatientFromJson(const json& j) {
  Reader r(j, "patient");
  PatientHeader p;
  Status s =
      r.CheckObject({"id", "names", "birth_date", "gender", "identifiers", "addresses", "telecoms",
                     "deceased", "marital_status", "race", "ethnicity", "language"});
  if (s.ok()) s = r.String("id", p.id);
  if (s.ok()) s = r.Array("names", p.names, ReadName);
  if (s.ok()) s = r.String("birth_date", p.birth_date);
  if (s.ok()) s = r.String("gender", p.gender);
  if (s.ok()) s = r.Array("identifiers", p.identifiers, ReadIdentifier);
  if (s.ok()) s = r.Array("addresses", p.addresses, ReadAddress);
  if (s.ok()) s = r.Array("telecoms", p.telecoms, ReadTelecom);
  if (s.ok()) s = r.String("deceased", p.deceased);
  if (s.ok()) s = r.CodingField("marital_status", p.marital_status);
  if (s.ok()) s = r.CodingField("race", p.race);
  if (s.ok()) s = r.CodingField("ethnicity", p.ethnicity);
  if (s.ok()) s = r.String("language", p.language);
  if (!s.ok()) {
    return s;
  }
  return p;
}

json ToJson(const DocumentHeader& h) {
  json j = json::object();
  Put(j, "id", h.id);
  PutCoding(j, "type", h.type);
  Put(j, "title", h.title);
  Put(j, "time", h.time);
  Put(j, "confidentiality", h.confidentiality);
  if (!h.authors.empty()) {
    json as = json::array();
    for (const Party& p : h.authors) as.push_back(PartyJson(p));
    j["authors"] = std::move(as);
  }
  json custodian = PartyJson(h.custodian);
  if (!custodian.empty()) {
    j["custodian"] = std::move(custodian);
  }
  return j;
}

Result<DocumentHeader> DocumentHeaderFromJson(const json& j) {
  Reader r(j, "header");
  DocumentHeader h;
  Status s =
      r.CheckObject({"id", "type", "title", "time", "confidentiality", "authors", "custodian"});
  if (s.ok()) s = r.String("id", h.id);
  if (s.ok()) s = r.CodingField("type", h.type);
  if (s.ok()) s = r.String("title", h.title);
  if (s.ok()) s = r.String("time", h.time);
  if (s.ok()) s = r.String("confidentiality", h.confidentiality);
  if (s.ok()) s = r.Array("authors", h.authors, ReadParty);
  if (s.ok() && j.contains("custodian"))
    s = ReadParty(j["custodian"], "header.custodian", h.custodian);
  if (!s.ok()) {
    return s;
  }
  return h;
}

json CanonicalJson(const ClinicalDocument& doc) {
  json out = json::object();
  out["header"] = ToJson(doc.header);
  if (doc.has_patient) {
    out["patient"] = ToJson(doc.patient);
  }
  std::vector<std::pair<std::string, json>> entries;
  entries.reserve(doc.entries.size());
  for (const Entry& e : doc.entries) {
    json j = ToJson(e);
    CanonicalizeSystems(j);
    std::string key = std::string(EntryKindName(e.kind)) + '\x1f' + e.id + '\x1f' + j.dump();
    entries.emplace_back(std::move(key), std::move(j));
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  // An entry repeated with every field equal, id included, states the same
  // thing once: vendors repeat entries, and joining segments of several
  // documents keeps one copy.
  entries.erase(std::unique(entries.begin(), entries.end(),
                            [](const auto& a, const auto& b) { return a.first == b.first; }),
                entries.end());
  json list = json::array();
  for (auto& [key, j] : entries) {
    list.push_back(std::move(j));
  }
  out["entries"] = std::move(list);
  CanonicalizeSystems(out["header"]);
  if (out.contains("patient")) {
    CanonicalizeSystems(out["patient"]);
  }
  return out;
}

std::string CanonicalString(const ClinicalDocument& doc) { return CanonicalJson(doc).dump(); }

Result<Format> DetectFormat(std::string_view bytes) {
  if (bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xEF &&
      static_cast<unsigned char>(bytes[1]) == 0xBB &&
      static_cast<unsigned char>(bytes[2]) == 0xBF) {
    bytes.remove_prefix(3);
  }
  size_t i = 0;
  while (i < bytes.size() &&
         (bytes[i] == ' ' || bytes[i] == '\t' || bytes[i] == '\r' || bytes[i] == '\n')) {
    ++i;
  }
  if (i < bytes.size() && bytes[i] == '<') {
    return Format::kCcda;
  }
  if (i < bytes.size() && bytes[i] == '{') {
    return Format::kFhir;
  }
  return Status::InvalidArgument(
      "neither a C-CDA (XML) nor a FHIR (JSON) document: the first character must be '<' or '{'");
}

Result<ClinicalDocument> ParseDocument(std::string_view bytes, const ParseLimits& limits) {
  Result<Format> format = DetectFormat(bytes);
  if (!format.ok()) {
    return format.status();
  }
  return *format == Format::kCcda ? ParseCcda(bytes, limits) : ParseFhir(bytes, limits);
}

}  // namespace medvault::interop
