// The clinical summary (summary.h): the structured record read part by part,
// so that every item keeps the document it came from, then grouped into the
// sections a person reads.
#include "exchange/summary.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <unordered_map>
#include <utility>

#include "common/bytes.h"
#include "common/ids.h"
#include "common/json_out.h"
#include "interop/mapping.h"
#include "vocab/vocab.h"

namespace medvault::exchange {
namespace {

using interop::Coding;
using interop::Entry;
using interop::EntryKind;
using nlohmann::json;

struct SystemLabel {
  std::string_view uri;
  std::string_view name;
};
// The code systems people meet in a record, by the name they know them by.
constexpr std::array<SystemLabel, 12> kSystemLabels = {{
    {"http://loinc.org", "LOINC"},
    {"http://snomed.info/sct", "SNOMED CT"},
    {"http://www.nlm.nih.gov/research/umls/rxnorm", "RxNorm"},
    {"http://hl7.org/fhir/sid/cvx", "CVX"},
    {"http://hl7.org/fhir/sid/icd-10-cm", "ICD-10-CM"},
    {"http://hl7.org/fhir/sid/icd-9-cm", "ICD-9-CM"},
    {"http://hl7.org/fhir/sid/icd-10", "ICD-10"},
    {"http://hl7.org/fhir/sid/ndc", "NDC"},
    {"http://www.ama-assn.org/go/cpt", "CPT"},
    {"http://terminology.hl7.org/CodeSystem/HCPCS", "HCPCS"},
    {"http://unitsofmeasure.org", "UCUM"},
    {"http://ncimeta.nci.nih.gov", "NCI Metathesaurus"},
}};

std::string_view SystemLabelFor(std::string_view uri) {
  for (const SystemLabel& s : kSystemLabels) {
    if (s.uri == uri) {
      return s.name;
    }
  }
  return {};
}

struct FlagWords {
  std::string_view code;
  std::string_view text;
};
// HL7 v3 ObservationInterpretation, the codes results carry.
constexpr std::array<FlagWords, 14> kFlags = {{
    {"N", "Normal"},
    {"H", "High"},
    {"L", "Low"},
    {"HH", "Critically high"},
    {"LL", "Critically low"},
    {"HU", "Significantly high"},
    {"LU", "Significantly low"},
    {"A", "Abnormal"},
    {"AA", "Critically abnormal"},
    {"POS", "Positive"},
    {"NEG", "Negative"},
    {"DET", "Detected"},
    {"ND", "Not detected"},
    {"IND", "Indeterminate"},
}};

// Statuses after which an entry is history rather than current.
constexpr std::array<std::string_view, 14> kInactiveStatuses = {
    "resolved",  "inactive", "completed", "stopped", "cancelled", "aborted", "entered-in-error",
    "remission", "refuted",  "not-taken", "ended",   "nullified", "revoked", "obsolete"};

void WriteCode(JsonOut& out, const Coding& c, bool with_translations = true) {
  out.BeginObject();
  out.Str("system", c.system);
  out.Str("system_name", SystemLabelFor(c.system));
  out.Str("code", c.code);
  out.Str("display", c.display);
  if (with_translations && !c.translations.empty()) {
    out.Key("translations");
    out.BeginArray();
    for (const Coding& tc : c.translations) {
      WriteCode(out, tc, false);
    }
    out.EndArray();
  }
  out.EndObject();
}

// What a person calls a coded thing: its display, else the display of a
// translation, else the source's text, else the code itself.
std::string NameOf(const Coding& c, std::string_view text = {}) {
  if (!c.display.empty()) {
    return c.display;
  }
  for (const Coding& t : c.translations) {
    if (!t.display.empty()) {
      return t.display;
    }
  }
  if (!text.empty()) {
    return std::string(text);
  }
  if (!c.code.empty()) {
    std::string_view label = SystemLabelFor(c.system);
    return label.empty() ? c.code : std::string(label) + " " + c.code;
  }
  return {};
}

struct UnitWords {
  std::string_view ucum;
  std::string_view text;
};
// UCUM codes as people write them (the rest read well as they are).
constexpr std::array<UnitWords, 12> kUnitWords = {{
    {"mm[Hg]", "mmHg"},
    {"Cel", "\u00b0C"},
    {"[degF]", "\u00b0F"},
    {"[lb_av]", "lb"},
    {"[in_i]", "in"},
    {"[ft_i]", "ft"},
    {"[oz_av]", "oz"},
    {"{beats}/min", "/min"},
    {"{breaths}/min", "/min"},
    {"/min", "/min"},
    {"kg/m2", "kg/m\u00b2"},
    {"10*3/uL", "\u00d710\u00b3/\u00b5L"},
}};

// A unit for people: "mmHg" for "mm[Hg]", nothing for the unity "1".
std::string UnitText(std::string_view unit) {
  if (unit == "1") {
    return {};
  }
  for (const UnitWords& u : kUnitWords) {
    if (u.ucum == unit) {
      return std::string(u.text);
    }
  }
  return std::string(unit);
}

// A quantity for people: "7.2 %", "120 mmHg".
std::string QuantityText(const interop::Quantity& q) {
  std::string unit = UnitText(q.unit);
  return unit.empty() ? q.value : q.value + " " + unit;
}

bool IsInterpretation(const Coding& c) { return c.system == vocab::kInterpretationSystem; }

std::string ValueText(const std::optional<interop::Quantity>& q,
                      const std::optional<Coding>& value_code, std::string_view value_text) {
  if (q) {
    return QuantityText(*q);
  }
  if (value_code && !IsInterpretation(*value_code)) {
    return NameOf(*value_code);
  }
  return std::string(value_text);
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Current (an active problem, a medication being taken, an allergy that
// holds) unless its status says it is over or its end has passed.
bool IsActive(const Entry& e, std::string_view today) {
  const std::string status = Lower(e.status);
  for (std::string_view s : kInactiveStatuses) {
    if (status == s) {
      return false;
    }
  }
  // Dates in FHIR syntax compare as text at the precision they share.
  return e.end.empty() || e.end.substr(0, std::min(e.end.size(), today.size())) >= today;
}

struct Source {
  std::string document;     // document key, or "" for a reading
  std::string recorded_by;  // account id of the version's author (readings)
  int64_t recorded_at_ms = 0;
};

// One entry with every document that brought it.
struct Gathered {
  Entry entry;
  std::vector<Source> sources;
};

// Turns a reading author's account id into a name (empty when unknown).
using NameFn = std::function<std::string(const std::string&)>;

// The documents an item came from, or who recorded it and when (readings).
void WriteSources(JsonOut& out, const std::vector<Source>& sources, const NameFn& name_of) {
  bool any_document = false;
  const Source* reading = nullptr;
  for (const Source& s : sources) {
    any_document = any_document || !s.document.empty();
    if (s.document.empty() && reading == nullptr) {
      reading = &s;
    }
  }
  if (any_document) {
    out.Key("documents");
    out.BeginArray();
    for (const Source& s : sources) {
      if (!s.document.empty()) {
        out.String(s.document);
      }
    }
    out.EndArray();
  }
  if (reading != nullptr) {
    out.Str("recorded_by", reading->recorded_by);
    if (name_of) {
      out.Str("recorded_by_name", name_of(reading->recorded_by));
    }
    out.Str("recorded_at", FormatRfc3339Millis(reading->recorded_at_ms));
  }
}

// What an entry is called: its code's name, else (an allergy recorded by
// type alone, a document by its kind) its value's, else what it is.
std::string EntryName(const Entry& e) {
  std::string name = NameOf(e.code, e.text);
  if (name.empty() && e.value_code && !IsInterpretation(*e.value_code)) {
    name = NameOf(*e.value_code);
  }
  if (!name.empty()) {
    return name;
  }
  switch (e.kind) {
    case EntryKind::kAllergy:
      return "Allergy (substance not recorded)";
    case EntryKind::kProcedure:
      return "Procedure (not named)";
    case EntryKind::kEncounter:
      return "Visit";
    case EntryKind::kDocumentReference:
      return "Document";
    case EntryKind::kNote:
      return "Note";
    default:
      return std::string("Unnamed ") + std::string(interop::EntryKindName(e.kind));
  }
}

// At most this much of an embedded plain-text document is shown.
constexpr size_t kMaxAttachmentText = 64 * 1024;

void WriteItem(JsonOut& out, const Gathered& g, bool active, const NameFn& name_of) {
  const Entry& e = g.entry;
  out.BeginObject();
  out.Str("kind", interop::EntryKindName(e.kind));
  out.Str("name", EntryName(e));
  if (!e.code.empty()) {
    out.Key("code");
    WriteCode(out, e.code);
  }
  out.Str("status", e.status);
  out.Key("active");
  out.Bool(active);
  out.Str("start", e.start);
  out.Str("end", e.end);
  out.Str("value", ValueText(e.quantity, e.value_code, e.value_text));
  out.Str("category", e.category);
  out.Str("severity", e.severity);
  if (!e.reactions.empty()) {
    out.Key("reactions");
    out.BeginArray();
    for (const Coding& c : e.reactions) {
      out.String(NameOf(c));
    }
    out.EndArray();
  }
  if (!e.route.empty()) {
    out.Str("route", NameOf(e.route));
  }
  if (!e.relation.empty()) {
    out.Str("relation", NameOf(e.relation));
  }
  if (!e.body_site.empty()) {
    out.Str("body_site", NameOf(e.body_site));
  }
  if (!e.method.empty()) {
    out.Str("method", NameOf(e.method));
  }
  if (!e.reasons.empty()) {
    out.Key("reasons");
    out.BeginArray();
    for (const Coding& c : e.reasons) {
      out.String(NameOf(c));
    }
    out.EndArray();
  }
  if (e.kind == EntryKind::kStatement) {
    // The vocabulary's name for a known section, else the source's.
    const vocab::SectionSegment* known = e.section.system == vocab::kLoincSystem
                                             ? vocab::SectionSegmentFor(e.section.code)
                                             : nullptr;
    out.Str("section", known != nullptr ? std::string(known->title) : NameOf(e.section));
  }
  if (!e.members.empty()) {
    out.Key("member_count");
    out.Uint(e.members.size());
  }
  if (e.kind == EntryKind::kMedication || e.kind == EntryKind::kPlan) {
    out.Str("mood", e.mood);  // goal, care-plan, event (being taken), order, ...
  }
  if (!e.data.empty()) {
    // An embedded document: its size, and its words when it is plain text
    // (a clinical note), at most kMaxAttachmentText bytes of them.
    out.Key("attachment_bytes");
    out.Uint(e.data.size());
    if (e.media_type.starts_with("text/plain") && IsValidUtf8(e.data)) {
      std::string_view text = e.data;
      if (text.size() > kMaxAttachmentText) {
        text = text.substr(0, kMaxAttachmentText);
        while (!text.empty() && !IsValidUtf8(text)) text.remove_suffix(1);
      }
      out.Str("attachment_text", text);
    }
  }
  // A note's text is its content; elsewhere the text is already the name
  // when the code has no display.
  if (e.kind == EntryKind::kNote || !e.code.display.empty()) {
    out.Str("text", e.text);
  }
  out.Str("media_type", e.media_type);
  if (!e.components.empty()) {
    out.Key("components");
    out.BeginArray();
    for (const interop::Component& c : e.components) {
      out.BeginObject();
      out.Str("name", NameOf(c.code));
      out.Str("value", ValueText(c.quantity, c.value_code, c.value_text));
      out.EndObject();
    }
    out.EndArray();
  }
  WriteSources(out, g.sources, name_of);
  out.EndObject();
}

// A reference range for people: "4.0-5.6 %", "below 200 mg/dL", or the
// source's own text when it gave one.
std::string RangeText(const interop::ReferenceRange& r) {
  if (!r.text.empty()) {
    return r.text;
  }
  auto value = [](const std::optional<interop::Quantity>& q) {
    return q && !q->value.empty() ? std::optional<std::string>(q->value) : std::nullopt;
  };
  const std::optional<std::string> low = value(r.low);
  const std::optional<std::string> high = value(r.high);
  const std::string unit = UnitText(r.high && !r.high->unit.empty() ? r.high->unit
                                    : r.low                         ? r.low->unit
                                                                    : "");
  const std::string suffix = unit.empty() ? "" : " " + unit;
  if (low && high) {
    return *low + "-" + *high + suffix;
  }
  if (high) {
    return "up to " + *high + suffix;
  }
  if (low) {
    return "from " + *low + suffix;
  }
  return {};
}

// The interpretation of an observation (H, L, A, ...) or nullptr.
const Coding* FlagOf(const Entry& e) {
  return e.value_code && IsInterpretation(*e.value_code) ? &*e.value_code : nullptr;
}

bool IsAbnormal(const Entry& e) {
  const Coding* flag = FlagOf(e);
  return flag != nullptr && flag->code != "N" && flag->code != "NEG" && flag->code != "ND";
}

void WritePoint(JsonOut& out, const Gathered& g, std::string_view time, const NameFn& name_of) {
  const Entry& e = g.entry;
  out.BeginObject();
  out.Str("time", time);
  if (e.quantity) {
    out.Str("value", e.quantity->value);
    out.Str("unit", e.quantity->unit);
  }
  std::string text = ValueText(e.quantity, e.value_code, e.value_text);
  if (!e.components.empty()) {
    out.Key("components");
    out.BeginArray();
    std::string joined;
    std::string unit;
    bool all_same_unit = true;
    for (const interop::Component& c : e.components) {
      out.BeginObject();
      out.Key("code");
      WriteCode(out, c.code, false);
      out.Str("name", NameOf(c.code));
      if (c.quantity) {
        out.Str("value", c.quantity->value);
        out.Str("unit", c.quantity->unit);
        joined += (joined.empty() ? "" : "/") + c.quantity->value;
        const std::string people = UnitText(c.quantity->unit);
        if (!unit.empty() && unit != people) {
          all_same_unit = false;
        }
        unit = people;
      } else {
        all_same_unit = false;
      }
      out.Str("text", ValueText(c.quantity, c.value_code, c.value_text));
      out.EndObject();
    }
    out.EndArray();
    if (text.empty() && all_same_unit && !joined.empty()) {
      text = unit.empty() ? joined : joined + " " + unit;  // "120/80 mmHg"
    }
  }
  out.Str("text", text);
  if (const Coding* flag = FlagOf(e)) {
    out.Str("flag", flag->code);
    std::string words = flag->display;
    for (const FlagWords& f : kFlags) {
      if (f.code == flag->code && words.empty()) {
        words = std::string(f.text);
      }
    }
    out.Str("flag_text", words.empty() ? flag->code : words);
  }
  if (e.reference_range) {
    out.Str("reference_range", RangeText(*e.reference_range));
  }
  out.Key("abnormal");
  out.Bool(IsAbnormal(e));
  out.Str("status", e.status);
  WriteSources(out, g.sources, name_of);
  out.EndObject();
}

// The section of an entry kind ("" for the observation groups).
std::string_view SectionOf(EntryKind k) {
  switch (k) {
    case EntryKind::kProblem:
      return "problems";
    case EntryKind::kAllergy:
      return "allergies";
    case EntryKind::kMedication:
      return "medications";
    case EntryKind::kImmunization:
      return "immunizations";
    case EntryKind::kProcedure:
      return "procedures";
    case EntryKind::kEncounter:
      return "encounters";
    case EntryKind::kPlan:
      return "plans";
    case EntryKind::kSocialHistory:
      return "social_history";
    case EntryKind::kFamilyHistory:
      return "family_history";
    case EntryKind::kNote:
      return "notes";
    case EntryKind::kDocumentReference:
      return "document_references";
    case EntryKind::kStatement:
      return "other_sections";
    case EntryKind::kResource:
      return {};
    case EntryKind::kResult:
    case EntryKind::kVitalSign:
      return {};
  }
  return "notes";
}

// A result panel or vital-signs organizer: it groups other observations and
// has no value of its own, so it is listed, not drawn.
bool IsPanel(const Entry& e) {
  return !e.members.empty() && !e.quantity && !e.value_code && e.value_text.empty() &&
         e.components.empty();
}

constexpr std::array<std::string_view, 13> kSectionNames = {
    "problems",       "allergies", "medications",        "immunizations",  "procedures",
    "encounters",     "plans",     "social_history",     "family_history", "panels",
    "other_sections", "notes",     "document_references"};

// Whether a decimal as the source wrote it reads as a number.
bool IsNumber(std::string_view v) {
  if (v.empty()) {
    return false;
  }
  size_t i = (v[0] == '-' || v[0] == '+') ? 1 : 0;
  bool digit = false;
  bool dot = false;
  for (; i < v.size(); ++i) {
    if (v[i] >= '0' && v[i] <= '9') {
      digit = true;
    } else if (v[i] == '.' && !dot) {
      dot = true;
    } else if ((v[i] == 'e' || v[i] == 'E') && digit && i + 1 < v.size()) {
      return IsNumber(v.substr(i + 1).front() == '+' || v.substr(i + 1).front() == '-'
                          ? v.substr(i + 2)
                          : v.substr(i + 1));
    } else {
      return false;
    }
  }
  return digit;
}

// A string member of a stored body, "" when absent or not a string (anyone
// who may write a segment may store any JSON object there).
std::string StringField(const json& body, const char* key) {
  if (!body.is_object()) {
    return {};
  }
  auto it = body.find(key);
  return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The format a part must have, decided by its path (never by its body: a
// body cannot make itself a document header or the patient's identity):
// kDocumentFormat for a source document's header, kPatientFormat for an
// imported identity, "" for a measurement, kEntriesFormat otherwise.
std::string_view ExpectedFormat(std::string_view path) {
  if (interop::IsMeasurementPath(path)) {
    return {};
  }
  if (path.starts_with(std::string(interop::kSourceDocumentsBase) + "/")) {
    return interop::kDocumentFormat;
  }
  if (path.starts_with(std::string(interop::kPatientSegmentBase) + "/")) {
    return interop::kPatientFormat;
  }
  return interop::kEntriesFormat;
}

// The document key a path names: the last component of an entry segment
// (without a "-pN" continuation), the one before "header" for a header.
std::string KeyOfPath(std::string_view path) {
  if (path.ends_with("/header")) {
    path.remove_suffix(7);
  }
  std::string_view key = path.substr(path.rfind('/') + 1);
  if (const size_t dash = key.find('-'); dash != std::string_view::npos) {
    key = key.substr(0, dash);
  }
  return std::string(key);
}

// Newest first; entries without a time last.
bool NewerFirst(const std::string& a, const std::string& b) {
  if (a.empty() != b.empty()) {
    return !a.empty();
  }
  return a > b;
}

json PatientBlock(const RecordParts& read, bool demographics_permitted) {
  // The latest imported identity the caller may read, else the record's
  // own demographics when permitted.
  std::optional<interop::PatientHeader> latest;
  int64_t best_at = -1;
  for (size_t i = 0; i < read.parts.size(); ++i) {
    const json& body = read.parts[i].body;
    if (ExpectedFormat(read.parts[i].path) != interop::kPatientFormat ||
        StringField(body, "format") != interop::kPatientFormat) {
      continue;
    }
    auto it = body.find("patient");
    if (it == body.end()) {
      continue;
    }
    Result<interop::PatientHeader> p = interop::PatientFromJson(*it);
    if (p.ok() && read.created_at_ms[i] >= best_at) {
      latest = std::move(*p);
      best_at = read.created_at_ms[i];
    }
  }
  json j = json::object();
  if (demographics_permitted && read.patient.demographics) {
    // The record's own (registered) identity comes first: an imported
    // document may spell the patient otherwise, or be another system's view.
    const record::Demographics& d = *read.patient.demographics;
    j["name"] = d.given_name + (d.given_name.empty() ? "" : " ") + d.family_name;
    j["birth_date"] = d.birth_date;
    j["gender"] = d.sex;
    if (!d.identifier.empty()) {
      j["medical_record_numbers"] = json::array({d.identifier});
    }
  } else if (latest && demographics_permitted) {
    // Only with read-demographics, as the registered identity: the
    // imported one names the patient just as well.
    const interop::PatientHeader* best = &*latest;
    const interop::HumanName* name = nullptr;
    for (const interop::HumanName& n : best->names) {
      if (name == nullptr || (n.use == "official" && name->use != "official")) {
        name = &n;
      }
    }
    if (name != nullptr) {
      std::string full;
      for (const std::string& g : name->given) {
        full += (full.empty() ? "" : " ") + g;
      }
      full += (full.empty() || name->family.empty() ? "" : " ") + name->family;
      j["name"] = full;
    }
    if (!best->birth_date.empty()) {
      j["birth_date"] = best->birth_date;
    }
    if (!best->gender.empty()) {
      j["gender"] = best->gender;
    }
    if (!best->deceased.empty()) {
      j["deceased"] = best->deceased;
    }
    // Record numbers only: a summary for people has no use for social
    // security or insurance numbers.
    json mrn = json::array();
    for (const interop::Identifier& id : best->identifiers) {
      if (id.type == "MR") {
        mrn.push_back(id.value);
      }
    }
    if (!mrn.empty()) {
      j["medical_record_numbers"] = std::move(mrn);
    }
  }
  return j;
}

}  // namespace

std::string Summarize(RecordParts&& read, bool demographics_permitted,
                      const SummaryOptions& options) {
  const std::string today = FormatRfc3339Millis(NowUnixMillis()).substr(0, 10);
  std::vector<Gathered> gathered;
  // Exact duplicates across documents are one item: found by a cheap key
  // first, then compared whole.
  std::unordered_map<std::string, std::vector<size_t>> by_key;
  json documents = json::array();
  size_t unreadable = 0;
  std::string bad_path;
  // The patient block first: it reads the identity parts, whose bodies the
  // loop below frees.
  json patient = PatientBlock(read, demographics_permitted);
  // Entries are large: room for all of them up front, so none moves twice.
  size_t expected = 0;
  for (const interop::SegmentPart& part : read.parts) {
    if (part.body.is_object()) {
      auto it = part.body.find("entries");
      expected += (it != part.body.end() && it->is_array()) ? it->size() : 1;
    }
  }
  gathered.reserve(expected);
  // Who wrote each document's header, and when: an entry segment is
  // credited to its document only when the same import wrote it (same
  // author, within a minute); a version written there by anyone else is
  // shown as theirs, not as the document's.
  struct HeaderVersion {
    std::string author;
    int64_t at_ms = 0;
  };
  std::unordered_map<std::string, HeaderVersion> headers;
  for (size_t i = 0; i < read.parts.size(); ++i) {
    if (ExpectedFormat(read.parts[i].path) == interop::kDocumentFormat) {
      headers[KeyOfPath(read.parts[i].path)] = {read.authors[i], read.created_at_ms[i]};
    }
  }
  for (size_t i = 0; i < read.parts.size(); ++i) {
    interop::SegmentPart& part = read.parts[i];
    // Each part's parsed body is freed as soon as it has been read, while
    // it is still in the cache, rather than all together at the end.
    struct FreeBody {
      json& body;
      ~FreeBody() { json().swap(body); }
    } free_body{part.body};
    const json& body = part.body;
    const std::string format = StringField(body, "format");
    // Entries are read here rather than through JoinSegments, which
    // fingerprints every entry to drop duplicates (done below, cheaper).
    std::vector<Entry> entries;
    bool readable = true;
    if (format == interop::kEntriesFormat) {
      auto it = body.find("entries");
      readable = it != body.end() && it->is_array();
      if (readable) {
        entries.reserve(it->size());
        for (const json& ej : *it) {
          Result<Entry> e = interop::EntryFromJson(ej);
          if (!e.ok()) {
            readable = false;
            break;
          }
          entries.push_back(std::move(*e));
        }
      }
    } else if (format.empty() && body.is_object()) {
      if (std::optional<Entry> e = interop::MeasurementToEntry(part.path, part.version, body)) {
        entries.push_back(std::move(*e));
      }
    } else if (format != interop::kDocumentFormat && format != interop::kPatientFormat) {
      readable = false;
    }
    if (format != ExpectedFormat(part.path)) {
      readable = false;  // a body claiming another place's format
    }
    if (format == interop::kDocumentFormat) {
      const std::string source_format = StringField(body, "source_format");
      readable = readable && (source_format == "ccda" || source_format == "fhir");
    }
    Result<interop::ClinicalDocument> one = interop::ClinicalDocument{};
    if (readable && format == interop::kDocumentFormat) {
      one = interop::JoinSegments(std::span<const interop::SegmentPart>(&part, 1));
      readable = one.ok();
    }
    if (!readable) {
      if (part.path != bad_path) {
        bad_path = part.path;
        ++unreadable;
      }
      continue;
    }
    Source source;
    if (format == interop::kDocumentFormat) {
      const interop::DocumentHeader& h = one->header;
      json d = {{"key", KeyOfPath(part.path)},
                {"title", h.title},
                {"format", StringField(body, "source_format")}};
      if (!h.type.empty()) {
        JsonOut type;
        WriteCode(type, h.type, false);
        d["type"] = json::parse(type.str());
      }
      if (!h.time.empty()) {
        d["time"] = h.time;
      }
      json authors = json::array();
      for (const interop::Party& a : h.authors) {
        std::string who = !a.name.empty() ? a.name : a.organization;
        if (!who.empty()) {
          authors.push_back(std::move(who));
        }
      }
      d["authors"] = std::move(authors);
      if (!h.custodian.name.empty() || !h.custodian.organization.empty()) {
        d["custodian"] =
            !h.custodian.organization.empty() ? h.custodian.organization : h.custodian.name;
      }
      if (auto n = body.find("entry_count"); n != body.end() && n->is_number_unsigned()) {
        d["entry_count"] = n->get<uint64_t>();
      }
      documents.push_back(std::move(d));
      continue;
    }
    if (format == interop::kPatientFormat) {
      continue;  // the patient block reads it
    }
    const std::string key = KeyOfPath(part.path);
    auto header = headers.find(key);
    if (format == interop::kEntriesFormat && header != headers.end() &&
        header->second.author == read.authors[i] &&
        std::abs(header->second.at_ms - read.created_at_ms[i]) <= 60'000) {
      source.document = key;
    } else {
      // A reading, or entries someone wrote by hand: the version's author.
      source.recorded_by = read.authors[i];
      source.recorded_at_ms = read.created_at_ms[i];
    }
    for (Entry& e : entries) {
      std::string dedupe = std::string(interop::EntryKindName(e.kind)) + '\x1f' + e.id + '\x1f' +
                           e.start + '\x1f' + e.code.code + '\x1f' +
                           (e.quantity ? e.quantity->value : e.value_text);
      std::vector<size_t>& same = by_key[dedupe];
      bool merged = false;
      // Bounded: entries alike in all the key holds but different elsewhere
      // are compared with the last few only (a hostile document of
      // near-duplicates must not make every view quadratic).
      constexpr size_t kMaxCompared = 8;
      for (size_t n = 0; n < same.size() && n < kMaxCompared; ++n) {
        const size_t idx = same[same.size() - 1 - n];
        if (gathered[idx].entry == e) {
          gathered[idx].sources.push_back(source);
          merged = true;
          break;
        }
      }
      if (!merged) {
        same.push_back(gathered.size());
        gathered.push_back(Gathered{std::move(e), {source}});
      }
    }
  }

  // The sections: current first, then newest first, then by name.
  std::map<std::string_view, std::vector<const Gathered*>> sections;
  // The observations: one group per code (system and code; the name when
  // the source gave no code), the groups by their newest point.
  std::map<std::string, std::vector<const Gathered*>> groups;
  size_t resources_kept = 0;
  for (const Gathered& g : gathered) {
    if (g.entry.kind == EntryKind::kResource) {
      ++resources_kept;  // kept verbatim for the exports; nothing a person reads as it is
      continue;
    }
    std::string_view section = SectionOf(g.entry.kind);
    if (section.empty() && IsPanel(g.entry)) {
      section = "panels";
    }
    if (!section.empty()) {
      sections[section].push_back(&g);
      continue;
    }
    const Coding& c = g.entry.code;
    std::string key = !c.code.empty() ? c.system + "|" + c.code : "name|" + EntryName(g.entry);
    groups[key].push_back(&g);
  }
  const NameFn& name_of = options.account_name;
  JsonOut out;
  out.str().reserve(256 + gathered.size() * 320);
  out.BeginObject();
  out.Str("patient_id", options.patient_id);
  out.Key("patient");
  out.Raw(patient.dump());
  out.Key("sections");
  out.BeginObject();
  size_t item_count = 0;
  for (std::string_view name : kSectionNames) {
    std::vector<const Gathered*>& list = sections[name];
    std::vector<std::pair<bool, const Gathered*>> ordered;
    ordered.reserve(list.size());
    for (const Gathered* g : list) {
      ordered.emplace_back(IsActive(g->entry, today), g);
    }
    std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
      if (a.first != b.first) {
        return a.first;
      }
      if (a.second->entry.start != b.second->entry.start) {
        return NewerFirst(a.second->entry.start, b.second->entry.start);
      }
      return EntryName(a.second->entry) < EntryName(b.second->entry);
    });
    out.Key(name);
    out.BeginArray();
    for (const auto& [active, g] : ordered) {
      WriteItem(out, *g, active, name_of);
    }
    out.EndArray();
    item_count += ordered.size();
  }
  out.EndObject();

  // The groups, each with its points newest first; the groups by their
  // newest point, then by name.
  struct Group {
    std::string newest_time;
    std::string name;
    std::vector<std::pair<std::string, const Gathered*>> timed;
    uint64_t unread = 0;  // older readings counted, not read
  };
  // Readings left unread (a cap on readings) count in the group of their
  // measurement's code; those whose group is not here count apart.
  std::unordered_map<std::string, uint64_t> unread_by_group;
  uint64_t unread_elsewhere = 0;
  for (const auto& [path, n] : read.unread_readings) {
    const vocab::Measurement* m = vocab::MeasurementForPath(path);
    const std::string key =
        m != nullptr ? std::string(vocab::kLoincSystem) + "|" + std::string(m->loinc) : "";
    if (!key.empty() && groups.count(key) != 0) {
      unread_by_group[key] += n;
    } else {
      unread_elsewhere += n;
    }
  }
  std::vector<Group> group_list;
  group_list.reserve(groups.size());
  size_t point_count = 0;
  for (auto& [key, list] : groups) {
    Group group;
    group.timed.reserve(list.size());
    for (const Gathered* g : list) {
      group.timed.emplace_back(!g->entry.start.empty() || g->sources.empty()
                                   ? g->entry.start
                                   : FormatRfc3339Millis(g->sources[0].recorded_at_ms),
                               g);
    }
    std::stable_sort(group.timed.begin(), group.timed.end(),
                     [](const auto& a, const auto& b) { return NewerFirst(a.first, b.first); });
    group.newest_time = group.timed.front().first;
    group.name = EntryName(group.timed.front().second->entry);
    if (auto u = unread_by_group.find(key); u != unread_by_group.end()) {
      group.unread = u->second;
    }
    point_count += list.size() + group.unread;
    group_list.push_back(std::move(group));
  }
  std::stable_sort(group_list.begin(), group_list.end(), [](const Group& a, const Group& b) {
    if (a.newest_time != b.newest_time) {
      return NewerFirst(a.newest_time, b.newest_time);
    }
    return a.name < b.name;
  });
  out.Key("observations");
  out.BeginArray();
  for (const Group& group : group_list) {
    const Entry& newest = group.timed.front().second->entry;
    bool numeric = true;
    size_t abnormal = 0;
    std::map<std::string, size_t> units;
    for (const auto& [time, g] : group.timed) {
      const Entry& e = g->entry;
      if (e.quantity) {
        numeric = numeric && IsNumber(e.quantity->value);
        ++units[UnitText(e.quantity->unit)];
      } else if (e.components.empty()) {
        numeric = false;
      } else {
        for (const interop::Component& c : e.components) {
          if (c.quantity) {
            ++units[UnitText(c.quantity->unit)];
          }
        }
      }
      abnormal += IsAbnormal(e) ? 1 : 0;
    }
    out.BeginObject();
    out.Str("name", group.name);
    out.Str("kind", interop::EntryKindName(newest.kind));
    if (!newest.code.empty()) {
      out.Key("code");
      WriteCode(out, newest.code);
    }
    out.Str("category", newest.category);
    if (!units.empty()) {
      out.Str("unit",
              std::max_element(units.begin(), units.end(), [](const auto& a, const auto& b) {
                return a.second < b.second;
              })->first);
    }
    out.Key("numeric");
    out.Bool(numeric);
    out.Key("count");
    out.Uint(group.timed.size() + group.unread);
    out.Key("abnormal_count");
    out.Uint(abnormal);
    out.Key("points");
    out.BeginArray();
    const size_t shown = options.max_points_per_group == 0
                             ? group.timed.size()
                             : std::min(group.timed.size(), options.max_points_per_group);
    for (size_t k = 0; k < shown; ++k) {
      WritePoint(out, *group.timed[k].second, group.timed[k].first, name_of);
    }
    out.EndArray();
    out.EndObject();
  }
  out.EndArray();

  std::stable_sort(documents.begin(), documents.end(), [](const json& a, const json& b) {
    return NewerFirst(a.value("time", ""), b.value("time", ""));
  });
  out.Key("documents");
  out.Raw(documents.dump());
  out.Key("counts");
  out.BeginObject();
  const std::pair<std::string_view, size_t> counts[] = {
      {"items", item_count},
      {"observations", point_count},
      {"documents", documents.size()},
      {"segments_included", read.segments_included - unreadable},
      {"segments_withheld", read.segments_withheld},
      {"segments_unreadable", unreadable},
      {"segments_withheld_masked", options.segments_withheld_masked},
      {"readings_not_summarised", unread_elsewhere},
      {"resources_not_shown", resources_kept}};
  for (const auto& [key, n] : counts) {
    out.Key(key);
    out.Uint(n);
  }
  out.EndObject();
  out.EndObject();
  return std::move(out.str());
}

Result<std::string> SummarizeRecord(record::RecordService& records, std::string_view patient_id,
                                    const ExportFilter& filter, const SummaryOptions& options) {
  MV_ASSIGN_OR_RETURN(RecordParts read,
                      ReadRecordParts(records, patient_id, filter, options.max_points_per_group));
  const bool demographics = filter(ExportQuestion{"", "personal-information", 0, true});
  return Summarize(std::move(read), demographics, options);
}

}  // namespace medvault::exchange
