// WriteFhirBundle: the interop model as a FHIR R4 "collection" Bundle.
//
// The JSON text is written directly (not through nlohmann::json) so that
// decimals keep the exact text of the model ("1.00", "1E-22"). How model
// fields without a FHIR element survive the round trip through ParseFhir is
// described in fhir_internal.h: medvault extensions, the kind tag and the
// medvault identifier.
//
// Resource types: one row per entry kind in kResources (below), with the
// function that writes it. kNote is a DocumentReference whose attachment
// data is the note's text (base64, content type = media_type) and whose kind
// tag says "note". The document header's type, title, confidentiality,
// authors and custodian go into a Composition (only when one of them is set).
#include <array>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/bytes.h"
#include "common/json_out.h"
#include "interop/fhir_internal.h"
#include "interop/fhir_json.h"
#include "interop/interop.h"

namespace medvault::interop {
namespace {

namespace fi = fhir_internal;
using fhir_json::AppendJsonString;

constexpr std::string_view kInterpretationSystem = vocab::kInterpretationSystem;

bool OneOf(std::string_view s, std::initializer_list<std::string_view> set) {
  for (std::string_view v : set) {
    if (s == v) return true;
  }
  return false;
}

// A date the reader gives back unchanged (it normalises what it reads).
bool IsCanonicalDate(std::string_view s) {
  Result<std::string> r = NormalizeDateTime(s);
  return r.ok() && *r == s;
}

// FHIR instant: a full date-time with seconds and a zone.
bool IsInstant(std::string_view s) {
  if (!IsCanonicalDate(s) || s.find('T') == std::string_view::npos) return false;
  if (s.back() == 'Z') return true;
  return s.size() > 6 && (s[s.size() - 6] == '+' || s[s.size() - 6] == '-') &&
         s[s.size() - 3] == ':';
}

// A decimal that can be written as a JSON number (and is read back as the
// same text).
bool IsWritableDecimal(std::string_view v) { return v.empty() || fhir_json::IsJsonNumber(v); }

// One Coding datatype (a translation's own translations are not part of it).
void WriteCoding(JsonOut& o, const Coding& c) {
  o.BeginObject();
  o.Str("system", c.system);
  o.Str("code", c.code);
  o.Str("display", c.display);
  o.EndObject();
}

// A CodeableConcept that reads back as `c`: the coding, then its
// translations as further codings, or only the text when there is neither
// system nor code. Written even when empty ({}).
void WriteConceptValue(JsonOut& o, const Coding& c) {
  o.BeginObject();
  if (!c.system.empty() || !c.code.empty()) {
    o.Key("coding");
    o.BeginArray();
    WriteCoding(o, c);
    for (const Coding& tr : c.translations) WriteCoding(o, tr);
    o.EndArray();
  } else {
    o.Str("text", c.display);
  }
  o.EndObject();
}

void Concept(JsonOut& o, std::string_view key, const Coding& c) {
  if (c.empty()) return;
  o.Key(key);
  WriteConceptValue(o, c);
}

// REQUIRES: IsWritableDecimal(q.value).
void WriteQuantityValue(JsonOut& o, const Quantity& q) {
  o.BeginObject();
  if (!q.value.empty()) {
    o.Key("value");
    o.Raw(q.value);
  }
  o.Str("unit", q.unit);
  o.EndObject();
}

void Reference(JsonOut& o, std::string_view key, std::string_view full_url) {
  if (full_url.empty()) return;
  o.Key(key);
  o.BeginObject();
  o.Str("reference", full_url);
  o.EndObject();
}

void Annotation(JsonOut& o, std::string_view text) {
  if (text.empty()) return;
  o.Key("note");
  o.BeginArray();
  o.BeginObject();
  o.Str("text", text);
  o.EndObject();
  o.EndArray();
}

std::string ExtUrl(std::string_view name) {
  return std::string(fi::kExtensionBase) + std::string(name);
}

// Extensions collected while a resource is written, emitted at its end.
class Extensions {
 public:
  bool empty() const { return items_.empty(); }

  void String(std::string_view name, std::string_view value, bool full_url = true) {
    if (value.empty()) return;
    JsonOut o;
    o.BeginObject();
    o.Str("url", full_url ? ExtUrl(name) : std::string(name));
    o.Str("valueString", value);
    o.EndObject();
    items_.push_back(std::move(o.str()));
  }
  void CodingValue(std::string_view name, const Coding& c, bool full_url = true) {
    JsonOut o;
    o.BeginObject();
    o.Str("url", full_url ? ExtUrl(name) : std::string(name));
    // A coding with translations as a CodeableConcept, which carries them.
    if (c.translations.empty()) {
      o.Key("valueCoding");
      WriteCoding(o, c);
    } else {
      o.Key("valueCodeableConcept");
      WriteConceptValue(o, c);
    }
    o.EndObject();
    items_.push_back(std::move(o.str()));
  }
  void Base64(std::string_view name, std::string_view bytes) {
    JsonOut o;
    o.BeginObject();
    o.Str("url", ExtUrl(name));
    o.Str("valueBase64Binary", ToBase64(AsBytes(bytes)));
    o.EndObject();
    items_.push_back(std::move(o.str()));
  }
  void Quantity(std::string_view name, const interop::Quantity& q, bool full_url = true) {
    Extensions sub;
    sub.String(fi::kSubValue, q.value, false);
    sub.String(fi::kSubUnit, q.unit, false);
    Complex(name, sub, full_url);
  }
  void Range(const ReferenceRange& r) {
    Extensions sub;
    if (r.low) sub.Quantity(fi::kSubLow, *r.low, false);
    if (r.high) sub.Quantity(fi::kSubHigh, *r.high, false);
    sub.String(fi::kSubText, r.text, false);
    Complex(fi::kExtReferenceRange, sub, true);
  }
  void Component(const interop::Component& c) {
    Extensions sub;
    if (!c.code.empty()) sub.CodingValue(fi::kSubCode, c.code, false);
    if (c.quantity) sub.Quantity(fi::kSubQuantity, *c.quantity, false);
    if (c.value_code) sub.CodingValue(fi::kSubValueCode, *c.value_code, false);
    sub.String(fi::kSubValueText, c.value_text, false);
    Complex(fi::kExtComponent, sub, true);
  }

  void AppendItemsTo(std::vector<std::string>& out) const {
    out.insert(out.end(), items_.begin(), items_.end());
  }

  void Write(JsonOut& o) const {
    if (items_.empty()) return;
    o.Key("extension");
    o.BeginArray();
    for (const std::string& item : items_) o.Raw(item);
    o.EndArray();
  }

 private:
  void Complex(std::string_view name, const Extensions& sub, bool full_url) {
    JsonOut o;
    o.BeginObject();
    o.Str("url", full_url ? ExtUrl(name) : std::string(name));
    sub.Write(o);
    o.EndObject();
    items_.push_back(std::move(o.str()));
  }

  std::vector<std::string> items_;
};

// Entry fields, for tracking which ones found a natural FHIR element.
enum Field : uint32_t {
  kCode = 1u << 0,
  kText = 1u << 1,
  kStatus = 1u << 2,
  kStart = 1u << 3,
  kEnd = 1u << 4,
  kQuantity = 1u << 5,
  kValueCode = 1u << 6,
  kValueText = 1u << 7,
  kComponents = 1u << 8,
  kCategory = 1u << 9,
  kReactions = 1u << 10,
  kSeverity = 1u << 11,
  kRelation = 1u << 12,
  kRoute = 1u << 13,
  kMediaType = 1u << 14,
  kUrl = 1u << 15,
  kReferenceRange = 1u << 16,
  kBodySite = 1u << 17,
  kMethod = 1u << 18,
  kReasons = 1u << 19,
  kMembers = 1u << 20,  // written by BundleWriter::WriteMembers, never by a resource writer
  kMood = 1u << 21,
  kData = 1u << 22,
};

// The fields of `e` not in `done`, as extensions.
void RemainingToExtensions(const Entry& e, uint32_t done, Extensions& x) {
  if (!(done & kCode) && !e.code.empty()) x.CodingValue(fi::kExtCode, e.code);
  if (!(done & kText)) x.String(fi::kExtText, e.text);
  if (!(done & kStatus)) x.String(fi::kExtStatus, e.status);
  if (!(done & kStart)) x.String(fi::kExtStart, e.start);
  if (!(done & kEnd)) x.String(fi::kExtEnd, e.end);
  if (!(done & kQuantity) && e.quantity) x.Quantity(fi::kExtQuantity, *e.quantity);
  if (!(done & kValueCode) && e.value_code) x.CodingValue(fi::kExtValueCode, *e.value_code);
  if (!(done & kValueText)) x.String(fi::kExtValueText, e.value_text);
  if (!(done & kComponents)) {
    for (const Component& c : e.components) x.Component(c);
  }
  if (!(done & kCategory)) x.String(fi::kExtCategory, e.category);
  if (!(done & kReactions)) {
    for (const Coding& c : e.reactions) x.CodingValue(fi::kExtReaction, c);
  }
  if (!(done & kSeverity)) x.String(fi::kExtSeverity, e.severity);
  if (!(done & kRelation) && !e.relation.empty()) x.CodingValue(fi::kExtRelation, e.relation);
  if (!(done & kRoute) && !e.route.empty()) x.CodingValue(fi::kExtRoute, e.route);
  if (!(done & kMediaType)) x.String(fi::kExtMediaType, e.media_type);
  if (!(done & kUrl)) x.String(fi::kExtUrl, e.url);
  if (!(done & kReferenceRange) && e.reference_range && !e.reference_range->empty()) {
    x.Range(*e.reference_range);
  }
  if (!(done & kBodySite) && !e.body_site.empty()) x.CodingValue(fi::kExtBodySite, e.body_site);
  if (!(done & kMethod) && !e.method.empty()) x.CodingValue(fi::kExtMethod, e.method);
  if (!(done & kReasons)) {
    for (const Coding& c : e.reasons) x.CodingValue(fi::kExtReason, c);
  }
  if (!e.section.empty()) x.CodingValue(fi::kExtSection, e.section);
  if (!(done & kMood)) x.String(fi::kExtMood, e.mood);
  if (!(done & kData) && !e.data.empty()) x.Base64(fi::kExtData, e.data);
  if (!(done & kMembers)) {
    for (const std::string& m : e.members) x.String(fi::kExtMember, m);
  }
}

// Codings a CodeableConcept carries as they are: each has a code or a
// display (an empty one would be "{}", which FHIR refuses).
bool WritableConcepts(const std::vector<Coding>& codings) {
  for (const Coding& c : codings) {
    if (c.code.empty() && c.display.empty() && c.translations.empty()) return false;
  }
  return true;
}

// reasonCode, when every reason can be a CodeableConcept.
uint32_t WriteReasons(JsonOut& o, const Entry& e) {
  if (e.reasons.empty()) return kReasons;
  if (!WritableConcepts(e.reasons)) return 0;
  o.Key("reasonCode");
  o.BeginArray();
  for (const Coding& c : e.reasons) WriteConceptValue(o, c);
  o.EndArray();
  return kReasons;
}

// bodySite: one CodeableConcept (Observation) or an array of them.
uint32_t WriteBodySite(JsonOut& o, const Entry& e, bool array) {
  if (e.body_site.empty()) return kBodySite;
  if (!WritableConcepts({e.body_site})) return 0;
  o.Key("bodySite");
  if (array) o.BeginArray();
  WriteConceptValue(o, e.body_site);
  if (array) o.EndArray();
  return kBodySite;
}

// Which of quantity / value_code / value_text went into natural elements.
struct ValueDone {
  bool quantity = false, value_code = false, value_text = false;
};

// value[x], interpretation and dataAbsentReason of an Observation or a
// component, mirroring the reader: valueQuantity, else valueCodeableConcept;
// the coded value goes to interpretation when there is a quantity or it is
// an interpretation code; the text to valueString (or dataAbsentReason)
// when value[x] is still free.
ValueDone WriteValue(JsonOut& o, const std::optional<Quantity>& quantity,
                     const std::optional<Coding>& value_code, const std::string& value_text) {
  ValueDone done;
  bool value_taken = false;
  if (quantity && IsWritableDecimal(quantity->value)) {
    o.Key("valueQuantity");
    WriteQuantityValue(o, *quantity);
    done.quantity = true;
    value_taken = true;
  }
  if (value_code) {
    if (quantity || value_code->system == kInterpretationSystem) {
      o.Key("interpretation");
      o.BeginArray();
      WriteConceptValue(o, *value_code);
      o.EndArray();
    } else {
      o.Key("valueCodeableConcept");
      WriteConceptValue(o, *value_code);
      value_taken = true;
    }
    done.value_code = true;
  }
  if (!value_text.empty() && !value_taken) {
    const std::string_view absent =
        std::string_view(value_text).substr(0, fi::kDataAbsentPrefix.size()) ==
                fi::kDataAbsentPrefix
            ? std::string_view(value_text).substr(fi::kDataAbsentPrefix.size())
            : std::string_view();
    if (!absent.empty() && !quantity) {
      o.Key("dataAbsentReason");
      o.BeginObject();
      o.Key("coding");
      o.BeginArray();
      o.BeginObject();
      o.Str("system", fi::kDataAbsentReason);
      o.Str("code", absent);
      o.EndObject();
      o.EndArray();
      o.EndObject();
    } else {
      o.Str("valueString", value_text);
    }
    done.value_text = true;
  }
  if (value_text.empty()) done.value_text = true;
  return done;
}

// start/end as a dateTime (start only) or a Period; returns the fields done.
uint32_t WriteTime(JsonOut& o, const Entry& e, std::string_view date_key,
                   std::string_view period_key) {
  const bool start_ok = e.start.empty() || IsCanonicalDate(e.start);
  const bool end_ok = e.end.empty() || IsCanonicalDate(e.end);
  if (!start_ok || !end_ok) {
    // Keep the two together: both go to extensions.
    return 0;
  }
  if (e.end.empty()) {
    o.Str(date_key, e.start);
  } else {
    o.Key(period_key);
    o.BeginObject();
    o.Str("start", e.start);
    o.Str("end", e.end);
    o.EndObject();
  }
  return kStart | kEnd;
}

// start/end as a Period (Encounter.period, CarePlan.period) when both are
// canonical dates (or absent); otherwise nothing, and the extensions keep them.
uint32_t WritePeriod(JsonOut& o, const Entry& e) {
  if (!(e.start.empty() || IsCanonicalDate(e.start)) ||
      !(e.end.empty() || IsCanonicalDate(e.end))) {
    return 0;
  }
  if (!e.start.empty() || !e.end.empty()) {
    o.Key("period");
    o.BeginObject();
    o.Str("start", e.start);
    o.Str("end", e.end);
    o.EndObject();
  }
  return kStart | kEnd;
}

uint32_t WriteDate(JsonOut& o, std::string_view key, const std::string& value, uint32_t field) {
  if (value.empty()) return field;
  if (!IsCanonicalDate(value)) return 0;
  o.Str(key, value);
  return field;
}

uint32_t WriteStatus(JsonOut& o, std::string_view key, const std::string& status,
                     std::initializer_list<std::string_view> allowed) {
  if (status.empty()) return kStatus;
  if (!OneOf(status, allowed)) return 0;
  o.Str(key, status);
  return kStatus;
}

// A CodeableConcept status (Condition / AllergyIntolerance clinicalStatus).
uint32_t WriteConceptStatus(JsonOut& o, std::string_view key, std::string_view system,
                            const std::string& status,
                            std::initializer_list<std::string_view> allowed) {
  if (status.empty()) return kStatus;
  if (!OneOf(status, allowed)) return 0;
  o.Key(key);
  WriteConceptValue(o, Coding{std::string(system), status, ""});
  return kStatus;
}

uint32_t WriteNote(JsonOut& o, const std::string& text) {
  Annotation(o, text);
  return kText;
}

// A dosage (MedicationRequest.dosageInstruction) with route and dose.
uint32_t WriteDosage(JsonOut& o, const Entry& e, std::string_view key = "dosageInstruction") {
  uint32_t done = kRoute;
  const bool dose = e.quantity && IsWritableDecimal(e.quantity->value);
  if (dose) done |= kQuantity;
  if (!dose && e.route.empty()) return done;
  o.Key(key);
  o.BeginArray();
  o.BeginObject();
  Concept(o, "route", e.route);
  if (dose) {
    o.Key("doseAndRate");
    o.BeginArray();
    o.BeginObject();
    o.Key("doseQuantity");
    WriteQuantityValue(o, *e.quantity);
    o.EndObject();
    o.EndArray();
  }
  o.EndObject();
  o.EndArray();
  return done;
}

// ---------------------------------------------------------------------------
// One function per resource: writes the kind-specific elements of `e` (the
// subject reference to `patient_url`), returns the fields written. The
// resource of an entry kind is a row of kResources below; a new resource is
// one function and one row.

uint32_t WriteCondition(JsonOut& o, const Entry& e, std::string_view patient_url) {
  uint32_t done = 0;
  done |= WriteConceptStatus(
      o, "clinicalStatus", "http://terminology.hl7.org/CodeSystem/condition-clinical", e.status,
      {"active", "recurrence", "relapse", "inactive", "remission", "resolved"});
  Concept(o, "code", e.code);
  done |= kCode;
  done |= WriteBodySite(o, e, true);
  Reference(o, "subject", patient_url);
  done |= WriteDate(o, "onsetDateTime", e.start, kStart);
  done |= WriteDate(o, "abatementDateTime", e.end, kEnd);
  done |= WriteNote(o, e.text);
  return done;
}

uint32_t WriteAllergyIntolerance(JsonOut& o, const Entry& e, std::string_view patient_url) {
  uint32_t done = 0;
  done |= WriteConceptStatus(o, "clinicalStatus",
                             "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                             e.status, {"active", "inactive", "resolved"});
  if (e.category.empty()) {
    done |= kCategory;
  } else if (OneOf(e.category, {"food", "medication", "environment", "biologic"})) {
    o.Key("category");
    o.BeginArray();
    o.String(e.category);
    o.EndArray();
    done |= kCategory;
  }
  Concept(o, "code", e.code);
  done |= kCode;
  Reference(o, "patient", patient_url);
  done |= WriteDate(o, "onsetDateTime", e.start, kStart);
  done |= WriteNote(o, e.text);
  done |= kReactions;
  const bool severity = !e.reactions.empty() && OneOf(e.severity, {"mild", "moderate", "severe"});
  if (severity || e.severity.empty()) done |= kSeverity;
  if (!e.reactions.empty()) {
    o.Key("reaction");
    o.BeginArray();
    o.BeginObject();
    o.Key("manifestation");
    o.BeginArray();
    for (const Coding& c : e.reactions) WriteConceptValue(o, c);
    o.EndArray();
    if (severity) o.Str("severity", e.severity);
    o.EndObject();
    o.EndArray();
  }
  return done;
}

// MedicationRequest.intent / ServiceRequest.intent from the mood (see
// fhir_internal.h); the mood is done when the intent carries it.
uint32_t WriteIntent(JsonOut& o, const Entry& e, bool medication) {
  if (e.mood.empty() ||
      (e.mood != fi::DefaultIntent(medication) && fi::IsIntent(medication, e.mood))) {
    o.Str("intent", e.mood.empty() ? fi::DefaultIntent(medication) : std::string_view(e.mood));
    return kMood;
  }
  o.Str("intent", fi::DefaultIntent(medication));
  return 0;
}

uint32_t WriteMedicationRequest(JsonOut& o, const Entry& e, std::string_view patient_url) {
  uint32_t done = 0;
  done |= WriteStatus(o, "status", e.status,
                      {"active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped",
                       "draft", "unknown"});
  done |= WriteIntent(o, e, /*medication=*/true);
  Concept(o, "medicationCodeableConcept", e.code);
  done |= kCode;
  Reference(o, "subject", patient_url);
  done |= WriteDate(o, "authoredOn", e.start, kStart);
  done |= WriteReasons(o, e);
  done |= WriteDosage(o, e);
  done |= WriteNote(o, e.text);
  return done;
}

// A medication being taken (mood "event").
uint32_t WriteMedicationStatement(JsonOut& o, const Entry& e, std::string_view patient_url) {
  uint32_t done = kMood;
  done |= WriteStatus(o, "status", e.status,
                      {"active", "completed", "entered-in-error", "intended", "stopped", "on-hold",
                       "unknown", "not-taken"});
  Concept(o, "medicationCodeableConcept", e.code);
  done |= kCode;
  Reference(o, "subject", patient_url);
  done |= WriteTime(o, e, "effectiveDateTime", "effectivePeriod");
  done |= WriteReasons(o, e);
  done |= WriteDosage(o, e, "dosage");
  done |= WriteNote(o, e.text);
  return done;
}

// A goal (plan of mood "goal").
uint32_t WriteGoal(JsonOut& o, const Entry& e, std::string_view patient_url) {
  uint32_t done = kMood;
  done |= WriteStatus(o, "lifecycleStatus", e.status,
                      {"proposed", "planned", "accepted", "active", "on-hold", "completed",
                       "cancelled", "entered-in-error", "rejected"});
  Concept(o, "description", e.code);
  done |= kCode;
  Reference(o, "subject", patient_url);
  // Goal.startDate and target.dueDate are dates, not dateTimes.
  auto is_date = [](const std::string& d) {
    return IsCanonicalDate(d) && d.find('T') == std::string::npos;
  };
  if (e.start.empty()) {
    done |= kStart;
  } else if (is_date(e.start)) {
    o.Str("startDate", e.start);
    done |= kStart;
  }
  if (e.end.empty()) {
    done |= kEnd;
  } else if (is_date(e.end)) {
    o.Key("target");
    o.BeginArray();
    o.BeginObject();
    o.Str("dueDate", e.end);
    o.EndObject();
    o.EndArray();
    done |= kEnd;
  }
  done |= WriteNote(o, e.text);
  return done;
}

// A care plan (plan of mood "care-plan"); its activities are its members,
// written by BundleWriter as activity references.
uint32_t WriteCarePlan(JsonOut& o, const Entry& e, std::string_view patient_url) {
  uint32_t done = kMood;
  done |= WriteStatus(
      o, "status", e.status,
      {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"});
  o.Str("intent", "plan");
  if (!e.code.empty()) {
    o.Key("category");
    o.BeginArray();
    WriteConceptValue(o, e.code);
    o.EndArray();
  }
  done |= kCode;
  Reference(o, "subject", patient_url);
  done |= WritePeriod(o, e);
  o.Str("description", e.text);
  done |= kText;
  return done;
}

// Results, vital signs and social history.
// A range Observation.referenceRange carries as it is: bounds whose values
// are FHIR decimals (or absent).
bool WritableRange(const ReferenceRange& r) {
  for (const std::optional<Quantity>* q : {&r.low, &r.high}) {
    if (!*q) continue;
    // A bound with neither value nor unit would be "{}", which FHIR refuses.
    if ((*q)->value.empty() ? (*q)->unit.empty() : !IsWritableDecimal((*q)->value)) return false;
  }
  return !r.empty();
}

uint32_t WriteObservation(JsonOut& o, const Entry& e, std::string_view patient_url) {
  uint32_t done = 0;
  done |= WriteStatus(o, "status", e.status,
                      {"registered", "preliminary", "final", "amended", "corrected", "cancelled",
                       "entered-in-error", "unknown"});
  if (!e.category.empty()) {
    const bool known = OneOf(e.category, {"social-history", "vital-signs", "imaging", "laboratory",
                                          "procedure", "survey", "exam", "therapy", "activity"});
    o.Key("category");
    o.BeginArray();
    o.BeginObject();
    o.Key("coding");
    o.BeginArray();
    o.BeginObject();
    if (known) o.Str("system", fi::kObservationCategory);
    o.Str("code", e.category);
    o.EndObject();
    o.EndArray();
    o.EndObject();
    o.EndArray();
  }
  done |= kCategory;
  Concept(o, "code", e.code);
  done |= kCode;
  Reference(o, "subject", patient_url);
  done |= WriteTime(o, e, "effectiveDateTime", "effectivePeriod");
  const ValueDone v = WriteValue(o, e.quantity, e.value_code, e.value_text);
  if (v.quantity || !e.quantity) done |= kQuantity;
  if (v.value_code || !e.value_code) done |= kValueCode;
  if (v.value_text) done |= kValueText;
  done |= WriteNote(o, e.text);
  done |= WriteBodySite(o, e, false);
  if (e.method.empty()) {
    done |= kMethod;
  } else if (WritableConcepts({e.method})) {
    o.Key("method");
    WriteConceptValue(o, e.method);
    done |= kMethod;
  }
  if (e.reference_range && WritableRange(*e.reference_range)) {
    const ReferenceRange& r = *e.reference_range;
    o.Key("referenceRange");
    o.BeginArray();
    o.BeginObject();
    if (r.low) {
      o.Key("low");
      WriteQuantityValue(o, *r.low);
    }
    if (r.high) {
      o.Key("high");
      WriteQuantityValue(o, *r.high);
    }
    o.Str("text", r.text);
    o.EndObject();
    o.EndArray();
    done |= kReferenceRange;
  }
  if (!e.components.empty()) {
    o.Key("component");
    o.BeginArray();
    for (const Component& c : e.components) {
      o.BeginObject();
      Concept(o, "code", c.code);
      const ValueDone cv = WriteValue(o, c.quantity, c.value_code, c.value_text);
      Extensions cx;
      if (c.quantity && !cv.quantity) cx.Quantity(fi::kExtQuantity, *c.quantity);
      if (c.value_code && !cv.value_code) cx.CodingValue(fi::kExtValueCode, *c.value_code);
      if (!cv.value_text) cx.String(fi::kExtValueText, c.value_text);
      cx.Write(o);
      o.EndObject();
    }
    o.EndArray();
  }
  done |= kComponents;
  return done;
}

uint32_t WriteFamilyMemberHistory(JsonOut& o, const Entry& e, std::string_view patient_url) {
  uint32_t done = 0;
  done |= WriteStatus(o, "status", e.status,
                      {"partial", "completed", "entered-in-error", "health-unknown"});
  Reference(o, "patient", patient_url);
  done |= WriteDate(o, "date", e.start, kStart);
  Concept(o, "relationship", e.relation);
  done |= kRelation;
  if (!e.code.empty()) {
    o.Key("condition");
    o.BeginArray();
    o.BeginObject();
    Concept(o, "code", e.code);
    o.EndObject();
    o.EndArray();
  }
  done |= kCode;
  done |= WriteNote(o, e.text);
  return done;
}

uint32_t WriteProcedure(JsonOut& o, const Entry& e, std::string_view patient_url) {
  uint32_t done = 0;
  done |= WriteStatus(o, "status", e.status,
                      {"preparation", "in-progress", "not-done", "on-hold", "stopped", "completed",
                       "entered-in-error", "unknown"});
  Concept(o, "code", e.code);
  done |= kCode;
  Reference(o, "subject", patient_url);
  done |= WriteTime(o, e, "performedDateTime", "performedPeriod");
  done |= WriteReasons(o, e);
  done |= WriteBodySite(o, e, true);
  done |= WriteNote(o, e.text);
  return done;
}

uint32_t WriteImmunization(JsonOut& o, const Entry& e, std::string_view patient_url) {
  uint32_t done = 0;
  done |= WriteStatus(o, "status", e.status, {"completed", "entered-in-error", "not-done"});
  Concept(o, "vaccineCode", e.code);
  done |= kCode;
  Reference(o, "patient", patient_url);
  done |= WriteDate(o, "occurrenceDateTime", e.start, kStart);
  if (!e.quantity) {
    done |= kQuantity;
  } else if (IsWritableDecimal(e.quantity->value)) {
    o.Key("doseQuantity");
    WriteQuantityValue(o, *e.quantity);
    done |= kQuantity;
  }
  Concept(o, "route", e.route);
  done |= kRoute;
  done |= WriteReasons(o, e);
  done |= WriteNote(o, e.text);
  return done;
}

uint32_t WriteEncounter(JsonOut& o, const Entry& e, std::string_view patient_url) {
  uint32_t done = 0;
  // The period first (where earlier versions wrote it), when both ends are
  // canonical dates; otherwise the extensions keep them.
  done |= WritePeriod(o, e);
  done |= WriteStatus(o, "status", e.status,
                      {"planned", "arrived", "triaged", "in-progress", "onleave", "finished",
                       "cancelled", "entered-in-error", "unknown"});
  if (!e.code.empty()) {
    o.Key("type");
    o.BeginArray();
    WriteConceptValue(o, e.code);
    o.EndArray();
  }
  done |= kCode;
  Reference(o, "subject", patient_url);
  done |= WriteReasons(o, e);
  return done;
}

uint32_t WriteServiceRequest(JsonOut& o, const Entry& e, std::string_view patient_url) {
  uint32_t done = 0;
  done |= WriteStatus(
      o, "status", e.status,
      {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"});
  done |= WriteIntent(o, e, /*medication=*/false);
  Concept(o, "code", e.code);
  done |= kCode;
  Reference(o, "subject", patient_url);
  done |= WriteTime(o, e, "occurrenceDateTime", "occurrencePeriod");
  done |= WriteReasons(o, e);
  done |= WriteNote(o, e.text);
  return done;
}

// A result panel (a result with members): its results are written by
// BundleWriter as DiagnosticReport.result.
uint32_t WriteDiagnosticReport(JsonOut& o, const Entry& e, std::string_view patient_url) {
  uint32_t done = 0;
  done |= WriteStatus(o, "status", e.status,
                      {"registered", "partial", "preliminary", "final", "amended", "corrected",
                       "appended", "cancelled", "entered-in-error", "unknown"});
  if (!e.category.empty()) {
    o.Key("category");
    o.BeginArray();
    WriteConceptValue(o, Coding{"", e.category, ""});
    o.EndArray();
  }
  done |= kCategory;
  Concept(o, "code", e.code);
  done |= kCode;
  Reference(o, "subject", patient_url);
  done |= WriteTime(o, e, "effectiveDateTime", "effectivePeriod");
  o.Str("conclusion", e.text);
  done |= kText;
  if (!e.data.empty()) {  // the report itself (presentedForm)
    o.Key("presentedForm");
    o.BeginArray();
    o.BeginObject();
    o.Str("contentType", e.media_type);
    o.Str("data", ToBase64(AsBytes(e.data)));
    o.EndObject();
    o.EndArray();
    done |= kData | kMediaType;
  }
  return done;
}

// Document references, and notes (their text as the attachment's data).
uint32_t WriteDocumentReference(JsonOut& o, const Entry& e, std::string_view patient_url) {
  uint32_t done = 0;
  const bool note = e.kind == EntryKind::kNote;
  done |= WriteStatus(o, "status", e.status, {"current", "superseded", "entered-in-error"});
  Concept(o, "type", e.code);
  done |= kCode;
  Reference(o, "subject", patient_url);
  if (e.start.empty()) {
    done |= kStart;
  } else if (IsInstant(e.start)) {
    o.Str("date", e.start);
    done |= kStart;
  }
  if (!note) {
    o.Str("description", e.text);
    done |= kText;
  }
  // A document's attachment data are its bytes; a note's are its text (its
  // bytes, if any, go to an extension).
  const bool data = !note && !e.data.empty();
  if (!e.media_type.empty() || !e.url.empty() || (note && !e.text.empty()) || data) {
    o.Key("content");
    o.BeginArray();
    o.BeginObject();
    o.Key("attachment");
    o.BeginObject();
    o.Str("contentType", e.media_type);
    if (note) o.Str("data", ToBase64(AsBytes(e.text)));
    if (data) o.Str("data", ToBase64(AsBytes(e.data)));
    o.Str("url", e.url);
    o.EndObject();
    o.EndObject();
    o.EndArray();
  }
  done |= kMediaType | kUrl;
  if (note) done |= kText;
  if (!note) done |= kData;
  return done;
}

// A resource kept verbatim whose entry cannot be written as it is (see
// BundleWriter::PlanVerbatim): a Basic resource with the fields in
// extensions, tagged with its kind.
uint32_t WriteBasic(JsonOut& o, const Entry& e, std::string_view patient_url) {
  Concept(o, "code", e.code);
  Reference(o, "subject", patient_url);
  return kCode;
}

struct ResourceWriter {
  EntryKind kind;
  std::string_view resource_type;
  uint32_t (*write)(JsonOut& o, const Entry& e, std::string_view patient_url);
};

// The resource of each entry kind, in the order of EntryKind.
constexpr std::array<ResourceWriter, kEntryKindCount> kResources = {{
    {EntryKind::kProblem, "Condition", WriteCondition},
    {EntryKind::kAllergy, "AllergyIntolerance", WriteAllergyIntolerance},
    {EntryKind::kMedication, "MedicationRequest", WriteMedicationRequest},
    {EntryKind::kResult, "Observation", WriteObservation},
    {EntryKind::kVitalSign, "Observation", WriteObservation},
    {EntryKind::kSocialHistory, "Observation", WriteObservation},
    {EntryKind::kFamilyHistory, "FamilyMemberHistory", WriteFamilyMemberHistory},
    {EntryKind::kProcedure, "Procedure", WriteProcedure},
    {EntryKind::kImmunization, "Immunization", WriteImmunization},
    {EntryKind::kEncounter, "Encounter", WriteEncounter},
    {EntryKind::kPlan, "ServiceRequest", WriteServiceRequest},
    {EntryKind::kDocumentReference, "DocumentReference", WriteDocumentReference},
    {EntryKind::kNote, "DocumentReference", WriteDocumentReference},
    {EntryKind::kStatement, "Observation", WriteObservation},
    {EntryKind::kResource, "Basic", WriteBasic},
}};

constexpr bool ResourcesInKindOrder() {
  for (size_t i = 0; i < kResources.size(); ++i) {
    if (static_cast<size_t>(kResources[i].kind) != i || kResources[i].write == nullptr) {
      return false;
    }
  }
  return true;
}
static_assert(ResourcesInKindOrder(), "one kResources row per EntryKind, in its order");

class BundleWriter {
 public:
  explicit BundleWriter(const ClinicalDocument& doc) : doc_(doc) {}

  std::string Write() {
    o_.BeginObject();
    o_.Str("resourceType", "Bundle");
    if (!doc_.header.id.empty()) {
      o_.Key("identifier");
      o_.BeginObject();
      o_.Str("system", kMedvaultIdSystem);
      o_.Str("value", doc_.header.id);
      o_.EndObject();
    }
    if (!doc_.header.time.empty() && !IsCanonicalDate(doc_.header.time)) {
      // Bundle is not a DomainResource: the extension goes into meta.
      Extensions x;
      x.String(fi::kExtHeaderTime, doc_.header.time);
      o_.Key("meta");
      o_.BeginObject();
      x.Write(o_);
      o_.EndObject();
    }
    o_.Str("type", "collection");
    if (IsCanonicalDate(doc_.header.time)) o_.Str("timestamp", doc_.header.time);
    o_.Key("entry");
    o_.BeginArray();
    if (doc_.has_patient && !doc_.patient.id.empty()) patient_url_ = NewUuid();
    if (doc_.has_patient) WritePatient();
    WriteComposition();
    // Every entry's fullUrl first, so that members can point at them. A
    // resource kept verbatim keeps its own (or none).
    std::vector<std::string> urls;
    std::vector<std::optional<Verbatim>> verbatim(doc_.entries.size());
    std::set<std::string> used_urls;
    urls.reserve(doc_.entries.size());
    size_t resources = 0;
    for (size_t i = 0; i < doc_.entries.size(); ++i) {
      const Entry& e = doc_.entries[i];
      if (e.kind == EntryKind::kResource) verbatim[i] = PlanVerbatim(e, ++resources, used_urls);
      urls.push_back(verbatim[i] ? verbatim[i]->full_url : NewUuid());
      if (!urls.back().empty()) url_of_.emplace(e.id, urls.back());
    }
    for (size_t i = 0; i < doc_.entries.size(); ++i) {
      if (verbatim[i]) {
        o_.NextLine();
        o_.BeginObject();
        o_.Str("fullUrl", verbatim[i]->full_url);
        o_.Key("resource");
        o_.Raw(doc_.entries[i].text);  // checked by PlanVerbatim: one JSON object, normal form
        o_.EndObject();
      } else {
        WriteEntry(doc_.entries[i], urls[i]);
      }
    }
    o_.Newline();
    o_.EndArray();
    o_.EndObject();
    o_.Newline();
    return std::move(o_.str());
  }

 private:
  struct Verbatim {
    std::string full_url;  // "" when the reader finds the id without one
  };

  // How a kResource entry is written as the resource it holds, or nullopt
  // when it cannot be without changing what a reader gets back: other
  // fields set, a text that is not one JSON object of its type in the normal
  // form of fhir_json::AppendJson, a type the reader models, or an id the
  // reader would not find (its fullUrl, Type/id, or the generated id of the
  // `ordinal`-th resource).
  static std::optional<Verbatim> PlanVerbatim(const Entry& e, size_t ordinal,
                                              std::set<std::string>& used_urls) {
    Entry bare;
    bare.kind = e.kind;
    bare.id = e.id;
    bare.code = e.code;
    bare.text = e.text;
    if (!(bare == e) || e.code.system != kResourceTypeSystem ||
        !fi::IsVerbatimResourceType(e.code.code) || e.text.empty() || e.text.front() != '{') {
      return std::nullopt;
    }
    // Its fullUrl: its id when that is an absolute URI, none otherwise (the
    // reader then finds Type/id, or generates the id). Never one of the
    // URLs this writer makes, nor one already in the bundle.
    const std::string_view id = e.id;
    Verbatim plan;
    if (id.starts_with("urn:uuid:") || id.starts_with("urn:oid:") || id.starts_with("http://") ||
        id.starts_with("https://")) {
      if (id.starts_with(kGeneratedUrlPrefix) || used_urls.count(e.id) > 0) return std::nullopt;
      plan.full_url = e.id;
    }
    // What a reader gets back from it, in a bundle of its own (the same
    // depth as in ours): exactly this entry, or it is not written raw.
    std::string probe = R"({"resourceType":"Bundle","type":"collection","entry":[{)";
    if (!plan.full_url.empty()) {
      probe += R"("fullUrl":)";
      fhir_json::AppendJsonString(probe, plan.full_url);
      probe += ',';
    }
    probe += R"("resource":)";
    probe += e.text;
    probe += "}]}";
    Result<ClinicalDocument> back = ParseFhir(probe);
    if (!back.ok() || back->entries.size() != 1 || back->has_patient ||
        !back->kept_in_original_only.empty()) {
      return std::nullopt;
    }
    Entry& got = back->entries[0];
    // Alone it is the first resource; in the bundle, the ordinal-th.
    if (got.id == "gen:resource:1") got.id = "gen:resource:" + std::to_string(ordinal);
    if (!(got == e)) return std::nullopt;
    if (!plan.full_url.empty()) used_urls.insert(plan.full_url);
    return plan;
  }

  // Deterministic urn:uuid values (version 4 layout), unique in the bundle.
  static constexpr std::string_view kGeneratedUrlPrefix = "urn:uuid:6d656476-6175-4c74-8000-";
  std::string NewUuid() {
    char buf[64];
    std::snprintf(buf, sizeof buf, "urn:uuid:6d656476-6175-4c74-8000-%012llx",
                  static_cast<unsigned long long>(++uuid_counter_));
    return buf;
  }

  // {"fullUrl": url, "resource": {"resourceType": type, "id": ..., ...
  void BeginEntry(std::string_view type, std::string_view full_url) {
    o_.NextLine();
    o_.BeginObject();
    o_.Str("fullUrl", full_url);
    o_.Key("resource");
    o_.BeginObject();
    o_.Str("resourceType", type);
    if (!full_url.empty()) o_.Str("id", full_url.substr(full_url.rfind(':') + 1));
  }
  void EndEntry() {
    o_.EndObject();
    o_.EndObject();
  }

  void MedvaultIdentifier(std::string_view id) {
    if (id.empty()) return;
    o_.Key("identifier");
    o_.BeginArray();
    o_.BeginObject();
    o_.Str("system", kMedvaultIdSystem);
    o_.Str("value", id);
    o_.EndObject();
    o_.EndArray();
  }

  void WritePatient() {
    const PatientHeader& p = doc_.patient;
    BeginEntry("Patient", patient_url_);
    auto us_core = [&](std::string_view url, const Coding& c) {
      if (c.empty()) return;
      Extensions sub;
      if (!c.system.empty() || !c.code.empty()) {
        sub.CodingValue("ombCategory", c, false);
        sub.String("text", c.display.empty() ? c.code : c.display, false);
      } else {
        sub.String("text", c.display, false);
      }
      JsonOut e;
      e.BeginObject();
      e.Str("url", url);
      sub.Write(e);
      e.EndObject();
      race_ethnicity_.push_back(std::move(e.str()));
    };
    race_ethnicity_.clear();
    us_core(fi::kUsCoreRace, p.race);
    us_core(fi::kUsCoreEthnicity, p.ethnicity);
    // Dates the FHIR elements cannot hold as they are.
    Extensions x;
    if (!IsCanonicalDate(p.birth_date)) x.String(fi::kExtPatientBirthDate, p.birth_date);
    if (p.deceased != "true" && !IsCanonicalDate(p.deceased)) {
      x.String(fi::kExtPatientDeceased, p.deceased);
    }
    x.AppendItemsTo(race_ethnicity_);
    if (!race_ethnicity_.empty()) {
      o_.Key("extension");
      o_.BeginArray();
      for (const std::string& item : race_ethnicity_) o_.Raw(item);
      o_.EndArray();
    }
    if (!p.id.empty() || !p.identifiers.empty()) {
      o_.Key("identifier");
      o_.BeginArray();
      if (!p.id.empty()) {
        o_.BeginObject();
        o_.Str("system", kMedvaultIdSystem);
        o_.Str("value", p.id);
        o_.EndObject();
      }
      for (const Identifier& i : p.identifiers) {
        o_.BeginObject();
        if (!i.type.empty()) {
          o_.Key("type");
          WriteConceptValue(o_,
                            Coding{"http://terminology.hl7.org/CodeSystem/v2-0203", i.type, ""});
        }
        o_.Str("system", i.system);
        o_.Str("value", i.value);
        o_.EndObject();
      }
      o_.EndArray();
    }
    if (!p.names.empty()) {
      o_.Key("name");
      o_.BeginArray();
      for (const HumanName& n : p.names) {
        o_.BeginObject();
        o_.Str("use", n.use);
        o_.Str("family", n.family);
        if (!n.given.empty()) {
          o_.Key("given");
          o_.BeginArray();
          for (const std::string& g : n.given) o_.String(g);
          o_.EndArray();
        }
        o_.EndObject();
      }
      o_.EndArray();
    }
    if (!p.telecoms.empty()) {
      o_.Key("telecom");
      o_.BeginArray();
      for (const Telecom& t : p.telecoms) {
        o_.BeginObject();
        o_.Str("system", t.system);
        o_.Str("value", t.value);
        o_.Str("use", t.use);
        o_.EndObject();
      }
      o_.EndArray();
    }
    o_.Str("gender", p.gender);
    if (IsCanonicalDate(p.birth_date)) o_.Str("birthDate", p.birth_date);
    if (p.deceased == "true") {
      o_.Key("deceasedBoolean");
      o_.Bool(true);
    } else if (IsCanonicalDate(p.deceased)) {
      o_.Str("deceasedDateTime", p.deceased);
    }
    if (!p.addresses.empty()) {
      o_.Key("address");
      o_.BeginArray();
      for (const Address& a : p.addresses) {
        o_.BeginObject();
        o_.Str("use", a.use);
        if (!a.lines.empty()) {
          o_.Key("line");
          o_.BeginArray();
          for (const std::string& l : a.lines) o_.String(l);
          o_.EndArray();
        }
        o_.Str("city", a.city);
        o_.Str("state", a.state);
        o_.Str("postalCode", a.postal_code);
        o_.Str("country", a.country);
        o_.EndObject();
      }
      o_.EndArray();
    }
    Concept(o_, "maritalStatus", p.marital_status);
    if (!p.language.empty()) {
      o_.Key("communication");
      o_.BeginArray();
      o_.BeginObject();
      o_.Key("language");
      WriteConceptValue(o_, Coding{"urn:ietf:bcp:47", p.language, ""});
      o_.EndObject();
      o_.EndArray();
    }
    EndEntry();
  }

  // A Reference carrying a Party (see fhir_internal.h).
  void WriteParty(const Party& p, bool custodian) {
    o_.BeginObject();
    Extensions x;
    std::string_view type, display;
    if (custodian) {
      if (!p.organization.empty()) {
        type = "Organization";
        display = p.organization;
        x.String(fi::kExtPartyName, p.name);
      } else if (!p.name.empty()) {
        type = "Practitioner";
        display = p.name;
      }
    } else {
      if (!p.name.empty()) {
        type = "Practitioner";
        display = p.name;
        x.String(fi::kExtPartyOrganization, p.organization);
      } else if (!p.organization.empty()) {
        type = "Organization";
        display = p.organization;
      }
    }
    x.String(fi::kExtPartyTime, p.time);
    x.Write(o_);
    o_.Str("type", type);
    if (!p.id.empty()) {
      o_.Key("identifier");
      o_.BeginObject();
      o_.Str("system", kMedvaultIdSystem);
      o_.Str("value", p.id);
      o_.EndObject();
    }
    o_.Str("display", display);
    o_.EndObject();
  }

  void WriteComposition() {
    const DocumentHeader& h = doc_.header;
    if (h.type.empty() && h.title.empty() && h.confidentiality.empty() && h.authors.empty() &&
        h.custodian == Party{}) {
      return;
    }
    BeginEntry("Composition", NewUuid());
    o_.Str("status", "final");
    Concept(o_, "type", h.type);
    Reference(o_, "subject", patient_url_);
    if (IsCanonicalDate(h.time)) o_.Str("date", h.time);
    if (!h.authors.empty()) {
      o_.Key("author");
      o_.BeginArray();
      for (const Party& a : h.authors) WriteParty(a, false);
      o_.EndArray();
    }
    o_.Str("title", h.title);
    o_.Str("confidentiality", h.confidentiality);
    if (!(h.custodian == Party{})) {
      o_.Key("custodian");
      WriteParty(h.custodian, true);
    }
    EndEntry();
  }

  void WriteEntry(const Entry& e, const std::string& url) {
    ResourceWriter resource = kResources[static_cast<size_t>(e.kind)];
    if (e.kind == EntryKind::kResult && !e.members.empty()) {
      resource = {EntryKind::kResult, "DiagnosticReport", WriteDiagnosticReport};
    } else if (e.kind == EntryKind::kMedication && e.mood == "event") {
      resource = {EntryKind::kMedication, "MedicationStatement", WriteMedicationStatement};
    } else if (e.kind == EntryKind::kPlan && e.mood == "goal") {
      resource = {EntryKind::kPlan, "Goal", WriteGoal};
    } else if (e.kind == EntryKind::kPlan && e.mood == "care-plan") {
      resource = {EntryKind::kPlan, "CarePlan", WriteCarePlan};
    }
    BeginEntry(resource.resource_type, url);
    o_.Key("meta");
    o_.BeginObject();
    o_.Key("tag");
    o_.BeginArray();
    o_.BeginObject();
    o_.Str("system", fi::kKindTagSystem);
    o_.Str("code", EntryKindName(e.kind));
    o_.EndObject();
    o_.EndArray();
    o_.EndObject();
    MedvaultIdentifier(e.id);
    Extensions x;
    uint32_t done = resource.write(o_, e, patient_url_);
    done |= WriteMembers(e, resource.resource_type);
    RemainingToExtensions(e, done, x);
    x.Write(o_);
    EndEntry();
  }

  // Observation.hasMember or DiagnosticReport.result: a member in the
  // bundle by its fullUrl, else by its id (a logical reference).
  uint32_t WriteMembers(const Entry& e, std::string_view resource_type) {
    if (e.members.empty()) return kMembers;
    if (resource_type != "Observation" && resource_type != "DiagnosticReport" &&
        resource_type != "CarePlan") {
      return 0;
    }
    const bool care_plan = resource_type == "CarePlan";
    o_.Key(care_plan ? "activity" : resource_type == "Observation" ? "hasMember" : "result");
    o_.BeginArray();
    for (const std::string& id : e.members) {
      if (care_plan) {
        o_.BeginObject();
        o_.Key("reference");
      }
      o_.BeginObject();
      if (auto it = url_of_.find(id); it != url_of_.end()) {
        o_.Str("reference", it->second);
      } else {
        o_.Key("identifier");
        o_.BeginObject();
        o_.Str("system", kMedvaultIdSystem);
        o_.Str("value", id);
        o_.EndObject();
      }
      o_.EndObject();
      if (care_plan) o_.EndObject();
    }
    o_.EndArray();
    return kMembers;
  }

  const ClinicalDocument& doc_;
  JsonOut o_;
  std::string patient_url_;
  // Entry id -> fullUrl (the first). Ordered: the ids are hostile input.
  std::map<std::string, std::string> url_of_;
  uint64_t uuid_counter_ = 0;
  std::vector<std::string> race_ethnicity_;
};

}  // namespace

Result<std::string> WriteFhirBundle(const ClinicalDocument& doc) {
  try {
    return BundleWriter(doc).Write();
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory while writing a FHIR bundle");
  }
}

}  // namespace medvault::interop
