// ParseFhir: FHIR R4 JSON (one resource or a Bundle) to the interop model.
//
// The JSON is parsed by fhir_json (strict: duplicate keys, limits, exact
// number text) and mapped resource by resource. Mapped fields are
// type-checked: a field of the wrong JSON type is InvalidArgument naming its
// path. Unknown fields are ignored. What the writer puts into medvault
// extensions and tags (fhir_internal.h) is read back over the natural
// mapping. Resource types without a mapping are listed in
// kept_in_original_only.
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/bytes.h"
#include "interop/ccda_internal.h"
#include "interop/fhir_internal.h"
#include "interop/fhir_json.h"
#include "interop/interop.h"

namespace medvault::interop {
namespace {

using fhir_json::Value;
namespace fi = fhir_internal;

// Bundles inside Bundles (a batch-response carrying search results) are read
// to this depth; deeper ones are kept in the original only.
constexpr int kMaxBundleNesting = 4;

constexpr std::string_view kCarePlanCategoryUsCore =
    "http://hl7.org/fhir/us/core/CodeSystem/careplan-category";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// A code system as the model wants it: "urn:oid:" forms of well-known
// systems become their URIs.
std::string NormalizeSystem(std::string_view system) {
  if (StartsWith(system, "urn:oid:")) return CodeSystemUri(system);
  return std::string(system);
}

// A resource type name fit for kept_in_original_only.
std::string KeptName(std::string_view type) {
  return fi::IsResourceTypeName(type) ? std::string(type) : "unknown resource type";
}

// Type-checked access to the fields of JSON objects. The first error is
// kept; after it, accessors keep returning empty values and the caller
// checks failed() at convenient points.
class Fields {
 public:
  bool failed() const { return !error_.ok(); }
  const Status& error() const { return error_; }

  void Fail(const Value& at, std::string_view problem) {
    if (error_.ok()) error_ = Status::InvalidArgument(std::string(problem) + " " + at.Where());
  }
  void Fail(Status st) {
    if (error_.ok()) error_ = std::move(st);
  }
  void WrongType(const Value& v, std::string_view expected) {
    Fail(v, "expected " + std::string(expected) + ", got " +
                std::string(fhir_json::TypeName(v.type())));
  }

  // Checks that `v` is an object (or missing); returns it, or missing.
  Value AsObject(Value v) {
    if (v.missing() || v.is_object()) return v;
    WrongType(v, "an object");
    return {};
  }

  Value Obj(Value obj, std::string_view key) { return AsObject(obj[key]); }

  Value Arr(Value obj, std::string_view key) {
    Value v = obj[key];
    if (v.missing() || v.is_array()) return v;
    WrongType(v, "an array");
    return {};
  }

  std::string_view Str(Value obj, std::string_view key) {
    Value v = obj[key];
    if (v.missing()) return {};
    if (v.is_string()) return v.text();
    WrongType(v, "a string");
    return {};
  }
  std::string S(Value obj, std::string_view key) { return std::string(Str(obj, key)); }

  std::optional<bool> Bool(Value obj, std::string_view key) {
    Value v = obj[key];
    if (v.missing()) return std::nullopt;
    if (v.is_bool()) return v.boolean();
    WrongType(v, "a boolean");
    return std::nullopt;
  }

  // The number text of obj[key], or "".
  std::string_view Number(Value obj, std::string_view key) {
    Value v = obj[key];
    if (v.missing()) return {};
    if (v.is_number()) return v.text();
    WrongType(v, "a number");
    return {};
  }

  // A FHIR date/dateTime/instant field, normalised; "" when absent.
  std::string Date(Value obj, std::string_view key) {
    Value v = obj[key];
    if (v.missing()) return {};
    if (!v.is_string()) {
      WrongType(v, "a string");
      return {};
    }
    if (v.text().empty()) return {};  // not valid FHIR, but no date either
    return NormalizeDate(v, v.text());
  }
  std::string NormalizeDate(const Value& at, std::string_view text) {
    Result<std::string> r = NormalizeDateTime(text);
    if (!r.ok()) {
      // NormalizeDateTime's messages do not quote the input.
      Fail(at, "invalid date/time (" + r.status().message() + ")");
      return {};
    }
    return std::move(r).value();
  }

  // The first element of obj[key] (an array), which must be an object; or missing.
  Value FirstObject(Value obj, std::string_view key) {
    Value arr = Arr(obj, key);
    if (arr.missing() || arr.size() == 0) return {};
    return AsObject(*arr.begin());
  }

  // A Coding datatype object.
  Coding CodingOf(Value c) {
    Coding out;
    if (AsObject(c).missing()) return out;
    out.system = NormalizeSystem(Str(c, "system"));
    out.code = S(c, "code");
    out.display = S(c, "display");
    return out;
  }

  // A CodeableConcept: its first coding (the first LOINC one when
  // prefer_loinc, as the C-CDA reader does for observations), the display
  // falling back to the concept's text. Every other coding with a code is
  // kept as a translation (kMaxTranslations at most), in the source's order.
  Coding Concept(Value cc, bool prefer_loinc = false) {
    Coding out;
    if (AsObject(cc).missing()) return out;
    Value codings = Arr(cc, "coding");
    Value chosen;
    bool chosen_loinc = false;
    for (Value c : codings) {
      if (AsObject(c).missing()) return out;
      if (chosen.missing()) chosen = c;
      if (prefer_loinc && !chosen_loinc && Str(c, "system") == fi::kLoinc) {
        chosen = c;
        chosen_loinc = true;
      }
    }
    if (chosen.present()) out = CodingOf(chosen);
    if (out.display.empty()) out.display = S(cc, "text");
    for (Value c : codings) {
      if (c.index() == chosen.index() || Str(c, "code").empty()) continue;
      Coding tr = CodingOf(c);
      if (tr.system == out.system && tr.code == out.code) continue;  // the same code twice
      if (out.translations.size() == kMaxTranslations) break;
      out.translations.push_back(std::move(tr));
    }
    return out;
  }

  // Just the code of a CodeableConcept's first coding (statuses, categories).
  std::string ConceptCode(Value cc) {
    if (AsObject(cc).missing()) return {};
    Value first = FirstObject(cc, "coding");
    return first.missing() ? std::string() : S(first, "code");
  }

  // A Quantity datatype: the value's exact text, the unit as UCUM code when
  // the system is UCUM and a code is given, else the human unit, else the code.
  Quantity QuantityOf(Value q) {
    Quantity out;
    if (AsObject(q).missing()) return out;
    out.value = std::string(Number(q, "value"));
    const std::string_view system = Str(q, "system");
    const std::string_view code = Str(q, "code");
    const std::string_view unit = Str(q, "unit");
    if (system == fi::kUcum && !code.empty()) {
      out.unit = std::string(code);
    } else if (!unit.empty()) {
      out.unit = std::string(unit);
    } else {
      out.unit = std::string(code);
    }
    return out;
  }

  // note[0].text
  std::string NoteText(Value res) {
    Value note = FirstObject(res, "note");
    return note.missing() ? std::string() : S(note, "text");
  }

 private:
  Status error_;
};

// The value[x] of an Observation or one of its components.
struct ValueSlots {
  std::optional<Quantity>* quantity;
  std::optional<Coding>* value_code;
  std::string* value_text;
};

class Importer {
 public:
  Importer(const ParseLimits& limits, ClinicalDocument& doc) : limits_(limits), doc_(doc) {}

  Fields& f() { return f_; }

  void ReadTopLevel(Value root) {
    const std::string_view type = root["resourceType"].text();
    if (type == "Bundle") {
      ReadBundleHeader(root);
      ReadBundle(root, 0);
    } else {
      ReadResource(root, "", 0);
    }
    ResolveMembers();
    AssignGeneratedIds();
  }

 private:
  // ---------------------------------------------------------------------
  // Bundles

  void ReadBundleHeader(Value b) {
    Value ident = f_.Obj(b, "identifier");
    if (ident.present()) {
      const std::string_view system = f_.Str(ident, "system");
      const std::string_view value = f_.Str(ident, "value");
      if (system == kMedvaultIdSystem || system.empty()) {
        doc_.header.id = std::string(value);
      } else {
        doc_.header.id = std::string(system) + "|" + std::string(value);
      }
    }
    if (doc_.header.id.empty()) doc_.header.id = f_.S(b, "id");
    doc_.header.time = f_.Date(b, "timestamp");
    if (Value meta = f_.Obj(b, "meta"); meta.present()) {
      for (Value ext : f_.Arr(meta, "extension")) {
        if (f_.AsObject(ext).missing()) return;
        if (ExtName(ext) == fi::kExtHeaderTime) doc_.header.time = f_.S(ext, "valueString");
      }
    }
  }

  void ReadBundle(Value b, int nesting) {
    f_.Str(b, "type");  // type-checked only
    Value entries = f_.Arr(b, "entry");
    if (entries.missing()) return;
    if (entries.size() > limits_.max_entries) {
      f_.Fail(Status::ResourceExhausted(
          "bundle of " + std::to_string(entries.size()) + " entries exceeds the limit of " +
          std::to_string(limits_.max_entries) + " " + entries.Where()));
      return;
    }
    // First pass: check the entries' shape and index what references may
    // point to (Medication, Practitioner, Organization, PractitionerRole).
    for (Value e : entries) {
      if (f_.AsObject(e).missing()) return;
      Value res = f_.Obj(e, "resource");
      const std::string_view full_url = f_.Str(e, "fullUrl");
      if (f_.failed()) return;
      if (res.missing()) continue;
      Value rt = res["resourceType"];
      if (!rt.is_string()) {
        f_.Fail(rt.present() ? rt : res, "expected a string \"resourceType\"");
        return;
      }
      const std::string_view type = rt.text();
      if (type == "Medication" || type == "Practitioner" || type == "Organization" ||
          type == "PractitionerRole") {
        if (!full_url.empty()) index_.emplace(std::string(full_url), res);
        const std::string_view id = f_.Str(res, "id");
        if (!id.empty()) index_.emplace(std::string(type) + "/" + std::string(id), res);
      }
    }
    for (Value e : entries) {
      Value res = e["resource"];
      if (res.missing()) continue;  // batch-response entries and the like
      ReadResource(res, e["fullUrl"].text(), nesting);
      if (f_.failed()) return;
    }
  }

  // ---------------------------------------------------------------------
  // Resources

  void Keep(std::string name) {
    if (kept_set_.insert(name).second) doc_.kept_in_original_only.push_back(std::move(name));
  }

  void ReadResource(Value res, std::string_view full_url, int nesting) {
    Value rt = res["resourceType"];
    if (!rt.is_string()) {
      f_.Fail(rt.present() ? rt : res, "expected a string \"resourceType\"");
      return;
    }
    const std::string_view type = rt.text();
    if (type == "Bundle") {
      if (nesting + 1 >= kMaxBundleNesting) {
        Keep("Bundle");
      } else {
        ReadBundle(res, nesting + 1);
      }
      return;
    }
    if (type == "Patient") {
      if (doc_.has_patient) {
        Keep("Patient (additional)");
      } else {
        ReadPatient(res, full_url);
      }
      return;
    }
    if (type == "Composition") {
      if (composition_read_) {
        Keep("Composition (additional)");
      } else {
        composition_read_ = true;
        ReadComposition(res);
      }
      return;
    }

    std::optional<EntryKind> kind;
    if (type == "Observation") {
      kind = ObservationKind(res);
    } else if (type == "Condition") {
      kind = EntryKind::kProblem;
    } else if (type == "AllergyIntolerance") {
      kind = EntryKind::kAllergy;
    } else if (type == "MedicationRequest" || type == "MedicationStatement") {
      kind = EntryKind::kMedication;
    } else if (type == "FamilyMemberHistory") {
      kind = EntryKind::kFamilyHistory;
    } else if (type == "Procedure") {
      kind = EntryKind::kProcedure;
    } else if (type == "Immunization") {
      kind = EntryKind::kImmunization;
    } else if (type == "Encounter") {
      kind = EntryKind::kEncounter;
    } else if (type == "CarePlan" || type == "Goal" || type == "ServiceRequest") {
      kind = EntryKind::kPlan;
    } else if (type == "DiagnosticReport") {
      kind = EntryKind::kResult;
    } else if (type == "DocumentReference") {
      kind = EntryKind::kDocumentReference;
    }
    if (!kind) {
      if (KindTag(res) == EntryKind::kResource) {
        // What WriteFhirBundle could not write verbatim: fields in extensions.
        kind = EntryKind::kResource;
      } else if (fi::IsVerbatimResourceType(type)) {
        ReadVerbatim(res, full_url, type);
        return;
      } else {
        Keep(KeptName(type));
        return;
      }
    }
    if (std::optional<EntryKind> tagged = KindTag(res)) kind = tagged;

    Entry e;
    e.kind = *kind;
    e.id = RememberedEntryId(res, full_url, type);
    if (f_.failed()) return;

    if (type == "Observation") {
      ReadObservation(res, e);
    } else if (type == "Condition") {
      ReadCondition(res, e);
    } else if (type == "AllergyIntolerance") {
      ReadAllergy(res, e);
    } else if (type == "MedicationRequest" || type == "MedicationStatement") {
      ReadMedication(res, type == "MedicationRequest", e);
    } else if (type == "FamilyMemberHistory") {
      ReadFamilyHistory(res, e);  // adds its entries itself
      return;
    } else if (type == "Procedure") {
      e.code = f_.Concept(res["code"]);
      e.status = Lower(f_.Str(res, "status"));
      ReadTime(res, "performedDateTime", "performedPeriod", e);
      e.text = f_.NoteText(res);
    } else if (type == "Immunization") {
      e.code = f_.Concept(res["vaccineCode"]);
      e.status = Lower(f_.Str(res, "status"));
      e.start = f_.Date(res, "occurrenceDateTime");
      if (Value dose = f_.Obj(res, "doseQuantity"); dose.present())
        e.quantity = f_.QuantityOf(dose);
      e.route = f_.Concept(res["route"]);
      e.text = f_.NoteText(res);
    } else if (type == "Encounter") {
      ReadEncounter(res, e);
    } else if (type == "CarePlan") {
      ReadCarePlan(res, e);
    } else if (type == "Goal") {
      e.mood = "goal";
      e.code = f_.Concept(res["description"]);
      e.status = Lower(f_.Str(res, "lifecycleStatus"));
      e.start = f_.Date(res, "startDate");
      if (Value target = f_.FirstObject(res, "target"); target.present()) {
        e.end = f_.Date(target, "dueDate");
      }
      e.text = f_.NoteText(res);
    } else if (type == "ServiceRequest") {
      const std::string intent = Lower(f_.Str(res, "intent"));
      e.mood = intent == fi::DefaultIntent(false) ? std::string() : intent;
      e.code = f_.Concept(res["code"]);
      e.status = Lower(f_.Str(res, "status"));
      ReadTime(res, "occurrenceDateTime", "occurrencePeriod", e);
      if (e.start.empty() && e.end.empty()) e.start = f_.Date(res, "authoredOn");
      e.text = f_.NoteText(res);
    } else if (type == "DiagnosticReport") {
      Value category = f_.FirstObject(res, "category");
      e.category = f_.ConceptCode(category);
      e.code = f_.Concept(res["code"], /*prefer_loinc=*/true);
      e.status = Lower(f_.Str(res, "status"));
      ReadTime(res, "effectiveDateTime", "effectivePeriod", e);
      if (e.start.empty() && e.end.empty()) e.start = f_.Date(res, "issued");
      e.text = f_.S(res, "conclusion");
      ReadMemberReferences(res, "result");
      if (Value form = f_.FirstObject(res, "presentedForm"); form.present()) {
        e.media_type = f_.S(form, "contentType");
        e.data = AttachmentData(form);
      }
    } else if (type == "DocumentReference") {
      ReadDocumentReference(res, e);
    } else if (type == "Basic") {
      e.code = f_.Concept(res["code"]);  // a kResource WriteFhirBundle could not keep verbatim
    }
    if (type == "Observation") ReadMemberReferences(res, "hasMember");
    if (type == "Procedure" || type == "Condition")
      e.body_site = f_.Concept(f_.FirstObject(res, "bodySite"));
    if (type == "Procedure" || type == "Encounter" || type == "MedicationRequest" ||
        type == "MedicationStatement" || type == "Immunization" || type == "ServiceRequest") {
      for (Value r : f_.Arr(res, "reasonCode")) {
        if (f_.AsObject(r).missing()) return;
        if (e.reasons.size() < kMaxLinks) e.reasons.push_back(f_.Concept(r));
      }
    }
    ApplyEntryExtensions(res, e);
    if (f_.failed()) {
      // AddEntry will not add it: no members may wait for it either.
      if (!pending_members_.empty() && pending_members_.back().index == doc_.entries.size()) {
        pending_members_.pop_back();
      }
    }
    AddEntry(std::move(e), res);
    for (Entry& a : deferred_) AddEntry(std::move(a), res);
    deferred_.clear();
  }

  // A resource the model has no kind for, kept verbatim (EntryKind::kResource).
  void ReadVerbatim(Value res, std::string_view full_url, std::string_view type) {
    Entry e;
    e.kind = EntryKind::kResource;
    e.id = RememberedEntryId(res, full_url, type);
    if (f_.failed()) return;
    e.code = Coding{std::string(kResourceTypeSystem), std::string(type), ""};
    fhir_json::AppendJson(e.text, res);
    AddEntry(std::move(e), res);
  }

  void AddEntry(Entry e, const Value& at) {
    if (f_.failed()) return;
    if (doc_.entries.size() >= limits_.max_entries) {
      f_.Fail(Status::ResourceExhausted("more than " + std::to_string(limits_.max_entries) +
                                        " entries " + at.Where()));
      return;
    }
    doc_.entries.push_back(std::move(e));
  }

  // The kind tag the writer puts into meta.tag, if any.
  std::optional<EntryKind> KindTag(Value res) {
    Value meta = f_.Obj(res, "meta");
    if (meta.missing()) return std::nullopt;
    Value tags = f_.Arr(meta, "tag");
    for (Value t : tags) {
      if (f_.AsObject(t).missing()) return std::nullopt;
      if (f_.Str(t, "system") == fi::kKindTagSystem) return ParseEntryKind(f_.Str(t, "code"));
    }
    return std::nullopt;
  }

  // Entry::id: a medvault identifier wins, then fullUrl, then Type/id.
  std::string EntryId(Value res, std::string_view full_url, std::string_view type) {
    Value ids = f_.Arr(res, "identifier");
    for (Value id : ids) {
      if (f_.AsObject(id).missing()) return {};
      if (f_.Str(id, "system") == kMedvaultIdSystem) {
        const std::string_view value = f_.Str(id, "value");
        if (!value.empty()) return std::string(value);
      }
    }
    if (!full_url.empty()) return std::string(full_url);
    const std::string_view id = f_.Str(res, "id");
    if (!id.empty()) return std::string(type) + "/" + std::string(id);
    return {};
  }

  struct PendingMembers {
    size_t index = 0;                                // into doc_.entries
    std::vector<std::pair<bool, std::string>> refs;  // (already an id, text)
  };

  // EntryId, remembered under the resource's fullUrl and Type/id so that
  // members pointing at it resolve to it (ResolveMembers).
  std::string RememberedEntryId(Value res, std::string_view full_url, std::string_view type) {
    std::string id = EntryId(res, full_url, type);
    if (f_.failed() || id.empty()) return id;
    if (!full_url.empty()) entry_of_ref_.emplace(std::string(full_url), id);
    if (const std::string_view rid = f_.Str(res, "id"); !rid.empty()) {
      entry_of_ref_.emplace(std::string(type) + "/" + std::string(rid), id);
    }
    return id;
  }

  // Members (Observation.hasMember, DiagnosticReport.result) as the ids of
  // the entries they point at: a reference to a resource read (by fullUrl,
  // Type/id, or an absolute URL ending in Type/id) names its entry; a
  // logical reference by our identifier names that id; anything else stays
  // as the reference written.
  void ResolveMembers() {
    if (f_.failed()) return;  // the document is refused: nothing to resolve
    for (PendingMembers& p : pending_members_) {
      if (p.index >= doc_.entries.size()) continue;  // its entry was never added
      Entry& e = doc_.entries[p.index];
      for (auto& [resolved, ref] : p.refs) {
        if (!resolved) {
          auto it = entry_of_ref_.find(ref);
          if (it == entry_of_ref_.end()) {
            const size_t slash = ref.rfind('/');
            const size_t before = slash == std::string::npos || slash == 0
                                      ? std::string::npos
                                      : ref.rfind('/', slash - 1);
            if (before != std::string::npos) it = entry_of_ref_.find(ref.substr(before + 1));
          }
          if (it != entry_of_ref_.end()) ref = it->second;
        }
        if (e.members.size() < kMaxLinks) e.members.push_back(std::move(ref));
      }
    }
    pending_members_.clear();
  }

  // The references of an array of Reference (hasMember, result).
  void ReadMemberReferences(Value res, std::string_view key) {
    Value refs = f_.Arr(res, key);
    if (refs.missing() || refs.size() == 0) return;
    PendingMembers p;
    p.index = doc_.entries.size();  // the entry AddEntry is about to add
    for (Value r : refs) {
      if (f_.AsObject(r).missing()) return;
      ReadReferenceInto(r, p);
    }
    if (!p.refs.empty()) pending_members_.push_back(std::move(p));
  }

  // One Reference as a member to resolve: its reference, else a logical
  // reference by our identifier; nothing otherwise.
  void ReadReferenceInto(Value r, PendingMembers& p) {
    const std::string_view reference = f_.Str(r, "reference");
    if (!reference.empty()) {
      p.refs.emplace_back(false, std::string(reference));
      return;
    }
    Value ident = f_.Obj(r, "identifier");
    if (ident.present() && f_.Str(ident, "system") == kMedvaultIdSystem &&
        !f_.Str(ident, "value").empty()) {
      p.refs.emplace_back(true, std::string(f_.Str(ident, "value")));
    }
  }

  void AssignGeneratedIds() {
    size_t counts[kEntryKindCount] = {};
    for (Entry& e : doc_.entries) {
      const size_t n = ++counts[static_cast<size_t>(e.kind)];
      if (e.id.empty()) {
        e.id = "gen:" + std::string(EntryKindName(e.kind)) + ":" + std::to_string(n);
      }
    }
  }

  // dateTime / Period pairs (effective[x], performed[x], occurrence[x]).
  void ReadTime(Value res, std::string_view date_key, std::string_view period_key, Entry& e) {
    e.start = f_.Date(res, date_key);
    if (Value period = f_.Obj(res, period_key); period.present()) {
      if (e.start.empty()) e.start = f_.Date(period, "start");
      e.end = f_.Date(period, "end");
    }
  }

  // ---------------------------------------------------------------------
  // Observations

  EntryKind ObservationKind(Value res) {
    bool vital = false, social = false;
    Value categories = f_.Arr(res, "category");
    for (Value cc : categories) {
      if (f_.AsObject(cc).missing()) break;
      for (Value c : f_.Arr(cc, "coding")) {
        if (f_.AsObject(c).missing()) break;
        const std::string_view code = f_.Str(c, "code");
        vital = vital || code == "vital-signs";
        social = social || code == "social-history";
      }
    }
    if (vital) return EntryKind::kVitalSign;
    if (social) return EntryKind::kSocialHistory;
    return EntryKind::kResult;
  }

  void ReadValue(Value obj, ValueSlots slots) {
    if (Value q = f_.Obj(obj, "valueQuantity"); q.present()) {
      *slots.quantity = f_.QuantityOf(q);
    } else if (Value i = obj["valueInteger"]; i.present()) {
      if (!i.is_number()) {
        f_.WrongType(i, "a number");
        return;
      }
      *slots.quantity = Quantity{std::string(i.text()), ""};
    }
    if (Value cc = f_.Obj(obj, "valueCodeableConcept"); cc.present()) {
      *slots.value_code = f_.Concept(cc);
    } else if (Value interp = f_.FirstObject(obj, "interpretation"); interp.present()) {
      *slots.value_code = f_.Concept(interp);
    }
    if (Value s = obj["valueString"]; s.present()) {
      *slots.value_text = f_.S(obj, "valueString");
    } else if (std::optional<bool> b = f_.Bool(obj, "valueBoolean")) {
      *slots.value_text = *b ? "true" : "false";
    } else if (Value dt = obj["valueDateTime"]; dt.present()) {
      *slots.value_text = f_.S(obj, "valueDateTime");
    } else if (Value t = obj["valueTime"]; t.present()) {
      *slots.value_text = f_.S(obj, "valueTime");
    }
    if (slots.value_text->empty() && !slots.quantity->has_value()) {
      if (Value absent = f_.Obj(obj, "dataAbsentReason"); absent.present()) {
        std::string code = f_.ConceptCode(absent);
        if (code.empty()) code = f_.S(absent, "text");
        *slots.value_text = std::string(fi::kDataAbsentPrefix) + code;
      }
    }
  }

  void ReadObservation(Value res, Entry& e) {
    Value category = f_.FirstObject(res, "category");
    e.category = f_.ConceptCode(category);
    e.code = f_.Concept(res["code"], /*prefer_loinc=*/true);
    e.status = Lower(f_.Str(res, "status"));
    ReadTime(res, "effectiveDateTime", "effectivePeriod", e);
    if (e.start.empty()) e.start = f_.Date(res, "effectiveInstant");
    if (e.start.empty() && e.end.empty()) e.start = f_.Date(res, "issued");
    ReadValue(res, {&e.quantity, &e.value_code, &e.value_text});
    e.body_site = f_.Concept(res["bodySite"]);
    e.method = f_.Concept(res["method"]);
    // The first reference range (the one a lab reports for this patient).
    if (Value range = f_.FirstObject(res, "referenceRange"); range.present()) {
      ReferenceRange r;
      if (Value low = f_.Obj(range, "low"); low.present()) r.low = f_.QuantityOf(low);
      if (Value high = f_.Obj(range, "high"); high.present()) r.high = f_.QuantityOf(high);
      r.text = f_.S(range, "text");
      if (!r.empty()) e.reference_range = std::move(r);
    }
    for (Value comp : f_.Arr(res, "component")) {
      if (f_.AsObject(comp).missing()) return;
      Component c;
      c.code = f_.Concept(comp["code"], /*prefer_loinc=*/true);
      ReadValue(comp, {&c.quantity, &c.value_code, &c.value_text});
      ApplyComponentExtensions(comp, c);
      e.components.push_back(std::move(c));
      if (f_.failed()) return;
    }
    e.text = f_.NoteText(res);
  }

  // ---------------------------------------------------------------------
  // Other clinical resources

  void ReadCondition(Value res, Entry& e) {
    e.code = f_.Concept(res["code"]);
    e.status = Lower(f_.ConceptCode(f_.Obj(res, "clinicalStatus")));
    ReadTime(res, "onsetDateTime", "onsetPeriod", e);
    e.end.clear();  // onsetPeriod.end is not the abatement
    e.end = f_.Date(res, "abatementDateTime");
    if (e.end.empty()) {
      if (Value p = f_.Obj(res, "abatementPeriod"); p.present()) e.end = f_.Date(p, "end");
    }
    e.text = f_.NoteText(res);
  }

  void ReadAllergy(Value res, Entry& e) {
    e.code = f_.Concept(res["code"]);
    e.status = Lower(f_.ConceptCode(f_.Obj(res, "clinicalStatus")));
    if (Value cats = f_.Arr(res, "category"); cats.present() && cats.size() > 0) {
      Value first = *cats.begin();
      if (first.is_string()) {
        e.category = std::string(first.text());
      } else {
        f_.WrongType(first, "a string");
      }
    }
    for (Value reaction : f_.Arr(res, "reaction")) {
      if (f_.AsObject(reaction).missing()) return;
      for (Value m : f_.Arr(reaction, "manifestation")) {
        if (f_.AsObject(m).missing()) return;
        e.reactions.push_back(f_.Concept(m));
      }
      const std::string_view severity = f_.Str(reaction, "severity");
      if (e.severity.empty()) e.severity = Lower(severity);
    }
    e.start = f_.Date(res, "onsetDateTime");
    if (e.start.empty()) e.start = f_.Date(res, "recordedDate");
    e.text = f_.NoteText(res);
  }

  Coding MedicationCode(Value res, Value owner) {
    if (Value cc = f_.Obj(res, "medicationCodeableConcept"); cc.present()) {
      return f_.Concept(cc);
    }
    Value ref = f_.Obj(res, "medicationReference");
    if (ref.missing()) return {};
    const std::string_view target = f_.Str(ref, "reference");
    Value med = Resolve(owner, target, "Medication");
    if (med.present()) return f_.Concept(med["code"]);
    return Coding{"", "", f_.S(ref, "display")};
  }

  // The resource a reference points to: "#id" in owner.contained, or a
  // bundle entry by fullUrl or Type/id. Missing when not found or when it is
  // not of `type` ("" = any of the indexed types).
  Value Resolve(Value owner, std::string_view reference, std::string_view type) {
    if (reference.empty()) return {};
    Value found;
    if (reference[0] == '#') {
      for (Value c : f_.Arr(owner, "contained")) {
        if (f_.AsObject(c).missing()) return {};
        if (f_.Str(c, "id") == reference.substr(1)) {
          found = c;
          break;
        }
      }
    } else if (auto it = index_.find(std::string(reference)); it != index_.end()) {
      found = it->second;
    } else if (const size_t p = reference.rfind('/'); p != std::string_view::npos) {
      // An absolute URL ending in Type/id.
      const size_t q = reference.rfind('/', p == 0 ? 0 : p - 1);
      if (q != std::string_view::npos && q < p) {
        if (auto it2 = index_.find(std::string(reference.substr(q + 1))); it2 != index_.end()) {
          found = it2->second;
        }
      }
    }
    if (found.missing()) return {};
    if (!type.empty() && found["resourceType"].text() != type) return {};
    return found;
  }

  void ReadMedication(Value res, bool request, Entry& e) {
    e.code = MedicationCode(res, res);
    e.status = Lower(f_.Str(res, "status"));
    if (request) {
      const std::string intent = Lower(f_.Str(res, "intent"));
      e.mood = intent == fi::DefaultIntent(true) ? std::string() : intent;
    } else {
      e.mood = "event";
    }
    Value dosage;
    if (request) {
      e.start = f_.Date(res, "authoredOn");
      dosage = f_.FirstObject(res, "dosageInstruction");
    } else {
      ReadTime(res, "effectiveDateTime", "effectivePeriod", e);
      dosage = f_.FirstObject(res, "dosage");
    }
    if (dosage.present()) {
      if (Value rate = f_.FirstObject(dosage, "doseAndRate"); rate.present()) {
        if (Value dose = f_.Obj(rate, "doseQuantity"); dose.present()) {
          e.quantity = f_.QuantityOf(dose);
        }
      }
      e.route = f_.Concept(dosage["route"]);
    }
    e.text = f_.NoteText(res);
  }

  void ReadFamilyHistory(Value res, Entry& base) {
    base.relation = f_.Concept(res["relationship"]);
    base.status = Lower(f_.Str(res, "status"));
    base.start = f_.Date(res, "date");
    base.text = f_.NoteText(res);
    ApplyEntryExtensions(res, base);
    Value conditions = f_.Arr(res, "condition");
    if (f_.failed()) return;
    if (conditions.missing() || conditions.size() == 0) {
      AddEntry(std::move(base), res);
      return;
    }
    const bool several = conditions.size() > 1;
    size_t i = 0;
    for (Value c : conditions) {
      if (f_.AsObject(c).missing()) return;
      Entry e = base;
      e.code = f_.Concept(c["code"]);
      if (several && !e.id.empty()) e.id += "#" + std::to_string(i);
      ++i;
      AddEntry(std::move(e), c);
      if (f_.failed()) return;
    }
  }

  void ReadEncounter(Value res, Entry& e) {
    if (Value type = f_.FirstObject(res, "type"); type.present()) {
      e.code = f_.Concept(type);
    } else if (Value cls = f_.Obj(res, "class"); cls.present()) {
      e.code = f_.CodingOf(cls);
    }
    e.status = Lower(f_.Str(res, "status"));
    if (Value period = f_.Obj(res, "period"); period.present()) {
      e.start = f_.Date(period, "start");
      e.end = f_.Date(period, "end");
    }
  }

  void ReadCarePlan(Value res, Entry& e) {
    Value chosen;
    for (Value cc : f_.Arr(res, "category")) {
      if (f_.AsObject(cc).missing()) return;
      if (chosen.missing()) chosen = cc;
      Value first = f_.FirstObject(cc, "coding");
      if (first.present() && f_.Str(first, "system") != kCarePlanCategoryUsCore) {
        chosen = cc;
        break;
      }
    }
    if (chosen.present()) e.code = f_.Concept(chosen);
    e.status = Lower(f_.Str(res, "status"));
    if (Value period = f_.Obj(res, "period"); period.present()) {
      e.start = f_.Date(period, "start");
      e.end = f_.Date(period, "end");
    }
    e.text = f_.S(res, "description");
    if (e.text.empty()) e.text = f_.NoteText(res);
    e.mood = "care-plan";
    // Activities are members: a reference names what it points at; an
    // inline detail becomes a planned entry of its own (added after the
    // care plan, see ReadResource), named "<care plan id>#activity-<n>".
    PendingMembers p;
    p.index = doc_.entries.size();  // the care plan's, AddEntry is about to add it
    size_t n = 0;
    for (Value activity : f_.Arr(res, "activity")) {
      if (f_.AsObject(activity).missing()) return;
      if (Value ref = f_.Obj(activity, "reference"); ref.present()) {
        ReadReferenceInto(ref, p);
        continue;
      }
      Value detail = f_.Obj(activity, "detail");
      if (detail.missing()) continue;
      Entry a;
      a.kind = EntryKind::kPlan;
      a.code = f_.Concept(detail["code"]);
      a.status = Lower(f_.Str(detail, "status"));
      if (Value period = f_.Obj(detail, "scheduledPeriod"); period.present()) {
        a.start = f_.Date(period, "start");
        a.end = f_.Date(period, "end");
      }
      a.text = f_.S(detail, "description");
      if (!e.id.empty()) {
        a.id = e.id + "#activity-" + std::to_string(++n);
        p.refs.emplace_back(true, a.id);
      }
      deferred_.push_back(std::move(a));
      if (f_.failed()) return;
    }
    if (!p.refs.empty()) pending_members_.push_back(std::move(p));
  }

  // An Attachment's data as bytes ("" when absent); invalid base64 fails.
  std::string AttachmentData(Value attachment) {
    Value data = attachment["data"];
    const std::string_view b64 = f_.Str(attachment, "data");
    if (data.missing() || f_.failed()) return {};
    Result<Bytes> bytes = FromBase64(b64);
    if (!bytes.ok()) {
      f_.Fail(data, "invalid base64 (" + bytes.status().message() + ")");
      return {};
    }
    return std::string(AsString(*bytes));
  }

  void ReadDocumentReference(Value res, Entry& e) {
    e.code = f_.Concept(res["type"]);
    e.status = Lower(f_.Str(res, "status"));
    e.start = f_.Date(res, "date");
    e.text = f_.S(res, "description");
    Value content = f_.FirstObject(res, "content");
    Value attachment = content.present() ? f_.Obj(content, "attachment") : Value();
    if (attachment.present()) {
      e.media_type = f_.S(attachment, "contentType");
      e.url = f_.S(attachment, "url");
      if (e.kind != EntryKind::kNote) e.data = AttachmentData(attachment);
      if (e.kind == EntryKind::kNote) {
        // A note written by WriteFhirBundle: the text is the attachment data.
        Value data = attachment["data"];
        const std::string_view b64 = f_.Str(attachment, "data");
        if (data.present() && !f_.failed()) {
          Result<Bytes> text = FromBase64(b64);
          if (!text.ok()) {
            f_.Fail(data, "invalid base64 (" + text.status().message() + ")");
          } else if (!ccda::IsXmlText(AsString(*text))) {
            f_.Fail(data,
                    "note text is not valid UTF-8 or has a character XML cannot carry (U+0000 or "
                    "another control character but tab, line feed and carriage return, U+FFFE "
                    "or U+FFFF)");
          } else {
            e.text = AsString(*text);
          }
        }
      }
    }
  }

  // ---------------------------------------------------------------------
  // medvault extensions (fhir_internal.h)

  // The name after kExtensionBase of a medvault extension, or "".
  std::string_view ExtName(Value ext) {
    const std::string_view url = f_.Str(ext, "url");
    if (!StartsWith(url, fi::kExtensionBase)) return {};
    return url.substr(fi::kExtensionBase.size());
  }

  // The sub-extension `name` of a complex extension, or missing.
  Value SubExtension(Value ext, std::string_view name) {
    for (Value sub : f_.Arr(ext, "extension")) {
      if (f_.AsObject(sub).missing()) return {};
      if (f_.Str(sub, "url") == name) return sub;
    }
    return {};
  }

  Quantity QuantityExtension(Value ext) {
    Quantity q;
    if (Value v = SubExtension(ext, fi::kSubValue); v.present()) q.value = f_.S(v, "valueString");
    if (Value u = SubExtension(ext, fi::kSubUnit); u.present()) q.unit = f_.S(u, "valueString");
    return q;
  }

  Coding CodingExtension(Value ext) {
    if (Value cc = f_.Obj(ext, "valueCodeableConcept"); cc.present()) return f_.Concept(cc);
    return f_.CodingOf(f_.Obj(ext, "valueCoding"));
  }

  // Applies the component-level extensions; true when `name` was one.
  bool ApplyComponentExtension(std::string_view name, Value ext, Component& c) {
    if (name == fi::kExtCode) {
      c.code = CodingExtension(ext);
    } else if (name == fi::kExtQuantity) {
      c.quantity = QuantityExtension(ext);
    } else if (name == fi::kExtValueCode) {
      c.value_code = CodingExtension(ext);
    } else if (name == fi::kExtValueText) {
      c.value_text = f_.S(ext, "valueString");
    } else {
      return false;
    }
    return true;
  }

  void ApplyComponentExtensions(Value comp, Component& c) {
    for (Value ext : f_.Arr(comp, "extension")) {
      if (f_.AsObject(ext).missing()) return;
      ApplyComponentExtension(ExtName(ext), ext, c);
    }
  }

  Component ComponentExtension(Value ext) {
    Component c;
    if (Value v = SubExtension(ext, fi::kSubCode); v.present()) c.code = CodingExtension(v);
    if (Value v = SubExtension(ext, fi::kSubQuantity); v.present()) {
      c.quantity = QuantityExtension(v);
    }
    if (Value v = SubExtension(ext, fi::kSubValueCode); v.present()) {
      c.value_code = CodingExtension(v);
    }
    if (Value v = SubExtension(ext, fi::kSubValueText); v.present()) {
      c.value_text = f_.S(v, "valueString");
    }
    return c;
  }

  void ApplyEntryExtensions(Value res, Entry& e) {
    for (Value ext : f_.Arr(res, "extension")) {
      if (f_.AsObject(ext).missing()) return;
      const std::string_view name = ExtName(ext);
      if (name.empty()) continue;
      if (name == fi::kExtCode) {
        e.code = CodingExtension(ext);
      } else if (name == fi::kExtQuantity) {
        e.quantity = QuantityExtension(ext);
      } else if (name == fi::kExtValueCode) {
        e.value_code = CodingExtension(ext);
      } else if (name == fi::kExtValueText) {
        e.value_text = f_.S(ext, "valueString");
      } else if (name == fi::kExtText) {
        e.text = f_.S(ext, "valueString");
      } else if (name == fi::kExtStatus) {
        e.status = f_.S(ext, "valueString");
      } else if (name == fi::kExtStart) {
        e.start = f_.S(ext, "valueString");  // as written (see fhir_internal.h)
      } else if (name == fi::kExtEnd) {
        e.end = f_.S(ext, "valueString");
      } else if (name == fi::kExtComponent) {
        e.components.push_back(ComponentExtension(ext));
      } else if (name == fi::kExtCategory) {
        e.category = f_.S(ext, "valueString");
      } else if (name == fi::kExtReaction) {
        e.reactions.push_back(CodingExtension(ext));
      } else if (name == fi::kExtSeverity) {
        e.severity = f_.S(ext, "valueString");
      } else if (name == fi::kExtRelation) {
        e.relation = CodingExtension(ext);
      } else if (name == fi::kExtRoute) {
        e.route = CodingExtension(ext);
      } else if (name == fi::kExtMediaType) {
        e.media_type = f_.S(ext, "valueString");
      } else if (name == fi::kExtUrl) {
        e.url = f_.S(ext, "valueString");
      } else if (name == fi::kExtBodySite) {
        e.body_site = CodingExtension(ext);
      } else if (name == fi::kExtMethod) {
        e.method = CodingExtension(ext);
      } else if (name == fi::kExtReason) {
        if (e.reasons.size() < kMaxLinks) e.reasons.push_back(CodingExtension(ext));
      } else if (name == fi::kExtSection) {
        e.section = CodingExtension(ext);
      } else if (name == fi::kExtMood) {
        e.mood = f_.S(ext, "valueString");
      } else if (name == fi::kExtData) {
        Result<Bytes> bytes = FromBase64(f_.Str(ext, "valueBase64Binary"));
        if (!bytes.ok()) {
          f_.Fail(ext, "invalid base64 (" + bytes.status().message() + ")");
          return;
        }
        e.data = std::string(AsString(*bytes));
      } else if (name == fi::kExtMember) {
        if (e.members.size() < kMaxLinks) e.members.push_back(f_.S(ext, "valueString"));
      } else if (name == fi::kExtReferenceRange) {
        ReferenceRange r;
        if (Value v = SubExtension(ext, fi::kSubLow); v.present()) r.low = QuantityExtension(v);
        if (Value v = SubExtension(ext, fi::kSubHigh); v.present()) r.high = QuantityExtension(v);
        if (Value v = SubExtension(ext, fi::kSubText); v.present()) r.text = f_.S(v, "valueString");
        if (!r.empty()) e.reference_range = std::move(r);
      }
      if (f_.failed()) return;
    }
  }

  // ---------------------------------------------------------------------
  // Patient

  void ReadPatient(Value res, std::string_view full_url) {
    doc_.has_patient = true;
    PatientHeader& p = doc_.patient;
    p.id = EntryId(res, full_url, "Patient");
    for (Value n : f_.Arr(res, "name")) {
      if (f_.AsObject(n).missing()) return;
      HumanName name;
      for (Value g : f_.Arr(n, "given")) {
        if (g.is_null()) continue;  // a place holder for "_given" extensions
        if (!g.is_string()) {
          f_.WrongType(g, "a string");
          return;
        }
        name.given.emplace_back(g.text());
      }
      name.family = f_.S(n, "family");
      name.use = f_.S(n, "use");
      p.names.push_back(std::move(name));
    }
    p.birth_date = f_.Date(res, "birthDate");
    p.gender = f_.S(res, "gender");
    for (Value id : f_.Arr(res, "identifier")) {
      if (f_.AsObject(id).missing()) return;
      const std::string_view system = f_.Str(id, "system");
      if (system == kMedvaultIdSystem) continue;  // the patient's own id (above)
      Identifier ident;
      ident.system = std::string(system);
      ident.value = f_.S(id, "value");
      ident.type = f_.ConceptCode(f_.Obj(id, "type"));
      p.identifiers.push_back(std::move(ident));
    }
    for (Value a : f_.Arr(res, "address")) {
      if (f_.AsObject(a).missing()) return;
      Address addr;
      for (Value l : f_.Arr(a, "line")) {
        if (l.is_null()) continue;
        if (!l.is_string()) {
          f_.WrongType(l, "a string");
          return;
        }
        addr.lines.emplace_back(l.text());
      }
      addr.city = f_.S(a, "city");
      addr.state = f_.S(a, "state");
      addr.postal_code = f_.S(a, "postalCode");
      addr.country = f_.S(a, "country");
      addr.use = f_.S(a, "use");
      p.addresses.push_back(std::move(addr));
    }
    for (Value t : f_.Arr(res, "telecom")) {
      if (f_.AsObject(t).missing()) return;
      Telecom tel;
      tel.system = f_.S(t, "system");
      std::string_view value = f_.Str(t, "value");
      for (bool more = true; more;) {  // all of them, so that a re-import strips none
        more = false;
        if (StartsWith(value, "tel:")) value.remove_prefix(4), more = true;
        if (StartsWith(value, "mailto:")) value.remove_prefix(7), more = true;
      }
      tel.value = std::string(value);
      tel.use = f_.S(t, "use");
      p.telecoms.push_back(std::move(tel));
    }
    if (Value d = res["deceasedDateTime"]; d.present()) {
      p.deceased = f_.Date(res, "deceasedDateTime");
    } else if (std::optional<bool> b = f_.Bool(res, "deceasedBoolean"); b && *b) {
      p.deceased = "true";
    }
    p.marital_status = f_.Concept(res["maritalStatus"]);
    for (Value ext : f_.Arr(res, "extension")) {
      if (f_.AsObject(ext).missing()) return;
      const std::string_view url = f_.Str(ext, "url");
      if (url == fi::kUsCoreRace) {
        p.race = UsCoreCategory(ext);
      } else if (url == fi::kUsCoreEthnicity) {
        p.ethnicity = UsCoreCategory(ext);
      } else if (ExtName(ext) == fi::kExtPatientBirthDate) {
        p.birth_date = f_.S(ext, "valueString");
      } else if (ExtName(ext) == fi::kExtPatientDeceased) {
        p.deceased = f_.S(ext, "valueString");
      }
    }
    if (Value comm = f_.FirstObject(res, "communication"); comm.present()) {
      Value language = f_.Obj(comm, "language");
      if (language.present()) {
        p.language = f_.ConceptCode(language);
        if (p.language.empty()) p.language = f_.S(language, "text");
      }
    }
  }

  // US Core race / ethnicity: the first ombCategory, else the first
  // detailed, else the text.
  Coding UsCoreCategory(Value ext) {
    Value omb, detailed, text;
    for (Value sub : f_.Arr(ext, "extension")) {
      if (f_.AsObject(sub).missing()) return {};
      const std::string_view url = f_.Str(sub, "url");
      if (url == "ombCategory" && omb.missing()) omb = sub;
      if (url == "detailed" && detailed.missing()) detailed = sub;
      if (url == "text" && text.missing()) text = sub;
    }
    if (omb.present()) return f_.CodingOf(f_.Obj(omb, "valueCoding"));
    if (detailed.present()) return f_.CodingOf(f_.Obj(detailed, "valueCoding"));
    if (text.present()) return Coding{"", "", f_.S(text, "valueString")};
    return {};
  }

  // ---------------------------------------------------------------------
  // Composition: the document header

  void ReadComposition(Value res) {
    DocumentHeader& h = doc_.header;
    h.type = f_.Concept(res["type"]);
    h.title = f_.S(res, "title");
    h.confidentiality = f_.S(res, "confidentiality");
    if (h.time.empty()) h.time = f_.Date(res, "date");
    for (Value a : f_.Arr(res, "author")) {
      if (f_.AsObject(a).missing()) return;
      h.authors.push_back(ReadParty(res, a, /*organization_by_default=*/false));
    }
    if (Value c = f_.Obj(res, "custodian"); c.present()) {
      h.custodian = ReadParty(res, c, /*organization_by_default=*/true);
    }
  }

  std::string PersonName(Value person) {
    Value name = f_.FirstObject(person, "name");
    if (name.missing()) return {};
    std::string text = f_.S(name, "text");
    if (!text.empty()) return text;
    for (Value g : f_.Arr(name, "given")) {
      if (!g.is_string()) continue;
      if (!text.empty()) text += ' ';
      text += g.text();
    }
    const std::string_view family = f_.Str(name, "family");
    if (!family.empty()) {
      if (!text.empty()) text += ' ';
      text += family;
    }
    return text;
  }

  Party ReadParty(Value owner, Value ref, bool organization_by_default) {
    Party p;
    const std::string_view reference = f_.Str(ref, "reference");
    p.id = std::string(reference);
    if (Value ident = f_.Obj(ref, "identifier"); ident.present()) {
      if (f_.Str(ident, "system") == kMedvaultIdSystem) p.id = f_.S(ident, "value");
    }
    const std::string_view type = f_.Str(ref, "type");
    const std::string_view display = f_.Str(ref, "display");
    Value target = Resolve(owner, reference, "");
    const std::string_view target_type = target.present() ? target["resourceType"].text() : "";
    if (target_type == "Practitioner" || target_type == "Patient" ||
        target_type == "RelatedPerson") {
      p.name = PersonName(target);
    } else if (target_type == "Organization") {
      p.organization = f_.S(target, "name");
    } else if (target_type == "PractitionerRole") {
      Value who = f_.Obj(target, "practitioner");
      Value org = f_.Obj(target, "organization");
      if (who.present()) {
        Value person = Resolve(target, f_.Str(who, "reference"), "Practitioner");
        p.name = person.present() ? PersonName(person) : f_.S(who, "display");
      }
      if (org.present()) {
        Value o = Resolve(target, f_.Str(org, "reference"), "Organization");
        p.organization = o.present() ? f_.S(o, "name") : f_.S(org, "display");
      }
    } else if (type == "Organization" || (type.empty() && organization_by_default)) {
      p.organization = std::string(display);
    } else {
      p.name = std::string(display);
    }
    for (Value ext : f_.Arr(ref, "extension")) {
      if (f_.AsObject(ext).missing()) break;
      const std::string_view name = ExtName(ext);
      if (name == fi::kExtPartyName) {
        p.name = f_.S(ext, "valueString");
      } else if (name == fi::kExtPartyOrganization) {
        p.organization = f_.S(ext, "valueString");
      } else if (name == fi::kExtPartyTime) {
        p.time = f_.S(ext, "valueString");
      }
    }
    return p;
  }

  const ParseLimits& limits_;
  ClinicalDocument& doc_;
  Fields f_;
  std::unordered_map<std::string, Value> index_;
  std::unordered_set<std::string> kept_set_;
  // fullUrl and Type/id of every resource read as an entry -> its entry id.
  std::map<std::string, std::string> entry_of_ref_;  // ordered: hostile keys
  std::vector<PendingMembers> pending_members_;
  std::vector<Entry> deferred_;  // a care plan's inline activities, added after it
  bool composition_read_ = false;
};

}  // namespace

Result<ClinicalDocument> ParseFhir(std::string_view json, const ParseLimits& limits) {
  Result<fhir_json::Document> parsed = fhir_json::Document::Parse(json, limits);
  if (!parsed.ok()) return parsed.status();
  const Value root = parsed->root();
  if (!root.is_object()) {
    return Status::InvalidArgument(
        "expected a FHIR resource (a JSON object) at the top level, got " +
        std::string(fhir_json::TypeName(root.type())));
  }
  Value rt = root["resourceType"];
  if (!rt.is_string()) {
    return Status::InvalidArgument(rt.missing()
                                       ? "no \"resourceType\" at the top level"
                                       : "expected a string \"resourceType\" at the top level");
  }
  ClinicalDocument doc;
  doc.source_format = Format::kFhir;
  try {
    Importer importer(limits, doc);
    importer.ReadTopLevel(root);
    if (importer.f().failed()) return importer.f().error();
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory while reading a FHIR document");
  }
  return doc;
}

}  // namespace medvault::interop
