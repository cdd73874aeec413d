// medvault interoperability: the public interface of src/interop.
//
// HL7 C-CDA R2.1 (XML) and FHIR R4 (JSON) documents are parsed into one
// format-neutral model, ClinicalDocument, and written back from it. The
// model is also what medvault stores: src/interop/mapping.h spreads a
// document over segments of the patient's tree, and gathers segments back.
//
// The *canonical form* (CanonicalJson) of a document is the model with every
// field normalised (dates to FHIR syntax, code systems to URIs, decimals kept
// as written, entries sorted) and the source-specific rest dropped. Two
// documents carry the same clinical content when their canonical forms are
// equal; the round-trip tests (import, export, import again) compare them.
//
// Parsers are hardened against hostile input: no DTDs, no entities, no
// network, size/depth/node limits, strict UTF-8, duplicate JSON keys
// refused. Errors say where: "line 12, column 5: ..." (XML) or
// "at entry[3].resource.valueQuantity.value: ..." (JSON). Error messages
// never quote the document's content (it is health data). Thread-safe.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace medvault::interop {

struct ParseLimits {
  size_t max_document_bytes = 64u * 1024 * 1024;
  size_t max_depth = 128;             // XML element / JSON container nesting
  size_t max_nodes = 4'000'000;       // XML nodes / JSON values
  size_t max_text_bytes = 32u << 20;  // one attribute, text node or JSON string
  size_t max_entries = 200'000;       // entries of one document
  size_t max_attributes = 256;        // attributes of one XML element
  size_t max_object_members = 1024;   // members of one JSON object
};

enum class Format { kCcda, kFhir };
std::string_view FormatName(Format f);  // "ccda", "fhir"

// A code from a code system. `system` is a URI: the FHIR URI for the
// systems listed by CodeSystemUri (LOINC "http://loinc.org", SNOMED CT
// "http://snomed.info/sct", RxNorm, CVX, ICD-10-CM, UCUM, NDC, ...), else
// "urn:oid:<oid>" (C-CDA) or the URI found (FHIR).
//
// `translations` are the same concept in other code systems, as the source
// gave them (C-CDA <translation>, the further codings of a FHIR
// CodeableConcept): ICD-10-CM beside SNOMED CT, RxNorm beside a local code,
// CVX beside NDC. They are kept, in the source's order, and written back by
// both writers; a translation has no translations of its own.
struct Coding {
  // A constructor rather than an aggregate, so that the many
  // {system, code, display} initialisations need no translations.
  Coding() = default;
  Coding(std::string system_, std::string code_, std::string display_,
         std::vector<Coding> translations_ = {})
      : system(std::move(system_)),
        code(std::move(code_)),
        display(std::move(display_)),
        translations(std::move(translations_)) {}

  std::string system;
  std::string code;
  std::string display;
  std::vector<Coding> translations;
  bool empty() const {
    return system.empty() && code.empty() && display.empty() && translations.empty();
  }
  bool operator==(const Coding&) const = default;
};
// At most this many translations are kept per coding, a bound on what one
// code may cost; more stay only in the original document (which the record
// keeps whole).
inline constexpr size_t kMaxTranslations = 32;

// A decimal exactly as written in the source ("120", "5.50", "1E-22"): the
// precision of a FHIR decimal is part of its value, so it is never a double.
struct Quantity {
  std::string value;
  std::string unit;  // UCUM where the source gives one ("mm[Hg]", "kg", "/min")
  bool operator==(const Quantity&) const = default;
};

// The range a result is judged against (C-CDA referenceRange/observationRange,
// FHIR Observation.referenceRange): the first one the source gives. Empty
// (no bound, no text) is the same as none.
struct ReferenceRange {
  std::optional<Quantity> low;
  std::optional<Quantity> high;
  std::string text;  // "4.0-5.6 %", "negative", as the source wrote it
  bool empty() const { return !low && !high && text.empty(); }
  bool operator==(const ReferenceRange&) const = default;
};

struct Identifier {
  std::string system;  // URI or "urn:oid:<oid>"
  std::string value;
  // "MR" (medical record number), "SS" (social security), "SB" (insurance /
  // social beneficiary), "DL", "PPN", ... (HL7 v2 table 0203), or "".
  std::string type;
  bool operator==(const Identifier&) const = default;
};

struct HumanName {
  std::vector<std::string> given;
  std::string family;
  std::string use;  // "official", "usual", "maiden", ... or ""
  bool operator==(const HumanName&) const = default;
};

struct Address {
  std::vector<std::string> lines;
  std::string city, state, postal_code, country;
  std::string use;  // "home", "work", ... or ""
  bool operator==(const Address&) const = default;
};

struct Telecom {
  std::string system;  // "phone", "email", "fax", "url"
  std::string value;   // without the "tel:" / "mailto:" prefix
  std::string use;     // "home", "work", "mobile", ... or ""
  bool operator==(const Telecom&) const = default;
};

struct PatientHeader {
  std::string id;  // source identifier of the patient (see Entry::id)
  std::vector<HumanName> names;
  std::string birth_date;  // "YYYY", "YYYY-MM" or "YYYY-MM-DD"
  std::string gender;      // "male", "female", "other", "unknown" or ""
  std::vector<Identifier> identifiers;
  std::vector<Address> addresses;
  std::vector<Telecom> telecoms;
  std::string deceased;  // a date/dateTime, "true", or "" (not known to be deceased)
  Coding marital_status;
  Coding race;
  Coding ethnicity;
  std::string language;  // BCP 47, e.g. "en-US"
  bool operator==(const PatientHeader&) const = default;
};

// An author or the custodian of a document.
struct Party {
  std::string id;
  std::string name;          // person's name as one string ("Henry Seven"), or ""
  std::string organization;  // organisation's name, or ""
  std::string time;          // authoring time (authors only)
  bool operator==(const Party&) const = default;
};

struct DocumentHeader {
  std::string id;  // ClinicalDocument/id, Bundle.identifier or Bundle.id
  Coding type;     // LOINC document type (34133-9 CCD, 11506-3 progress note, ...)
  std::string title;
  std::string time;             // when the document was made
  std::string confidentiality;  // "N", "R", "V" (HL7 Confidentiality) or ""
  std::vector<Party> authors;
  Party custodian;
  bool operator==(const DocumentHeader&) const = default;
};

// What an entry is; decides its segment (mapping.h) and its C-CDA section
// and FHIR resource type.
enum class EntryKind {
  kProblem,            // C-CDA Problems; FHIR Condition
  kAllergy,            // Allergies; AllergyIntolerance
  kMedication,         // Medications; MedicationRequest / MedicationStatement
  kResult,             // Results; Observation (laboratory, ...) and DiagnosticReport
  kVitalSign,          // Vital Signs; Observation (vital-signs)
  kSocialHistory,      // Social History; Observation (social-history)
  kFamilyHistory,      // Family History; FamilyMemberHistory (one entry per condition)
  kProcedure,          // Procedures; Procedure
  kImmunization,       // Immunizations; Immunization
  kEncounter,          // Encounters; Encounter
  kPlan,               // Plan of Treatment; CarePlan, Goal, ServiceRequest
  kDocumentReference,  // a document referred to, not embedded; DocumentReference
  kNote,               // narrative without coded entries (a section's text, a note)
  // A clinical statement of a section the kinds above do not cover
  // (functional and mental status, nutrition, advance directives, medical
  // equipment, health concerns, goals, payers, ...): Entry::section names
  // the section, which decides its segment (vocab::kSectionSegments) and
  // its C-CDA section; FHIR: Goal (goals), Condition (health concerns),
  // else Observation.
  kStatement,
  // A FHIR resource the model has no kind for (Claim, ExplanationOfBenefit,
  // Organization, Practitioner, ImagingStudy, Device, ...), kept verbatim:
  // `code` is {kResourceTypeSystem, its resource type}, `text` the resource
  // as compact JSON (fhir_json::AppendJson). Its segment follows its type
  // (vocab::kResourceSegments); written back as it is (FHIR), or as a
  // medvault act (C-CDA). Never shown to people as it is.
  kResource,
};
inline constexpr size_t kEntryKindCount = 15;
inline constexpr std::string_view kResourceTypeSystem = "http://hl7.org/fhir/resource-types";
// At most this many reasons and members per entry: the readers keep the
// first ones (the rest stay in the original document), the stored form
// refuses more.
inline constexpr size_t kMaxLinks = 256;
std::string_view EntryKindName(EntryKind k);  // "problem", "allergy", ..., "note"
std::optional<EntryKind> ParseEntryKind(std::string_view name);

// One part of a multi-part observation (blood pressure: systolic, diastolic).
struct Component {
  Coding code;
  std::optional<Quantity> quantity;
  std::optional<Coding> value_code;
  std::string value_text;
  bool operator==(const Component&) const = default;
};

// One clinical statement. Fields not used by a kind stay empty.
struct Entry {
  EntryKind kind = EntryKind::kNote;
  // Stable source identifier. C-CDA: root, or root + "^" + extension. FHIR:
  // the fullUrl, else "<ResourceType>/<id>". Entries without one get
  // "gen:<kind>:<n>" (n = ordinal among entries of that kind). Writers emit
  // it so that a re-import finds the same id: C-CDA as
  // <id root="kMedvaultIdRoot" extension="{id}"/> and FHIR as an identifier
  // with system kMedvaultIdSystem; parsers map those back to the bare id.
  std::string id;
  Coding code;         // what: the problem, allergen, drug, test, vaccine, procedure, ...
  std::string text;    // free text (a note's text, a code's original text)
  std::string status;  // lower case: "active", "completed", "resolved", "final", ...
  std::string start;   // effective / onset / authored time (see NormalizeDateTime)
  std::string end;     // abatement / end of period
  std::optional<Quantity> quantity;  // observed value; dose of medications and immunizations
  std::optional<Coding> value_code;  // coded value (smoking status, a result's interpretation)
  std::string value_text;            // string value
  std::optional<ReferenceRange> reference_range;  // never empty when set
  std::vector<Component> components;
  std::string category;           // observation category ("vital-signs", "laboratory",
                                  // "social-history"), allergy category ("medication", "food", ...)
  std::vector<Coding> reactions;  // allergy manifestations
  std::string severity;           // "mild", "moderate", "severe" or ""
  Coding relation;                // family history: the relative (v3 RoleCode FTH, MTH, ...)
  Coding route;                   // medication / immunization route
  std::string media_type;         // document references / embedded notes
  std::string url;                // document references: where it lives; never fetched
  Coding body_site;               // where: C-CDA targetSiteCode, FHIR bodySite
  Coding method;                  // how: C-CDA methodCode, FHIR Observation.method
  // Why: an encounter's diagnoses, a medication's indications, a
  // procedure's reasons (C-CDA encounter diagnosis and RSON observations,
  // FHIR reasonCode).
  std::vector<Coding> reasons;
  // The section a kStatement entry was read from (C-CDA section code, its
  // title as the display); empty for the other kinds.
  Coding section;
  // The ids of the entries this one groups, in the source's order: a
  // result panel's or vital-signs organizer's observations (C-CDA
  // organizer components, FHIR Observation.hasMember or
  // DiagnosticReport.result), a statement's nested statements. An id need
  // not name an entry of the same document (a part held back by an export
  // stays named).
  std::vector<std::string> members;
  // What a medication or plan entry says happens, where that decides its
  // form: for medications "" (an order: FHIR MedicationRequest intent
  // order, C-CDA moodCode RQO), "event" (being taken: MedicationStatement,
  // EVN), or another MedicationRequest intent ("plan": INT, "proposal":
  // PRP, ...); for plans "" (a plan: ServiceRequest intent plan, INT),
  // "goal" (Goal, GOL), "care-plan" (CarePlan, whose activities are its
  // members), or another ServiceRequest intent or C-CDA mood ("order": RQO,
  // "proposal": PRP, "promise": PRMS, "appointment": APT,
  // "appointment-request": ARQ). Unused by the other kinds.
  std::string mood;
  // Bytes embedded in the source, whose kind media_type gives: a PDF or
  // image of a document reference or note (FHIR Attachment.data, a C-CDA
  // base64 ED or nonXMLBody), a report's presentedForm. Text that C-CDA
  // narrative carries is read into `text` instead. Stored as base64.
  std::string data;
  bool operator==(const Entry&) const = default;
};

struct ClinicalDocument {
  Format source_format = Format::kFhir;
  DocumentHeader header;
  bool has_patient = false;  // the document names its patient
  PatientHeader patient;
  std::vector<Entry> entries;
  // What was read but has no place in the model, e.g. "AuditEvent" (FHIR
  // resource types) or "section 29762-2" (C-CDA sections without a mapping):
  // kept only in the original document. Not part of the canonical form.
  std::vector<std::string> kept_in_original_only;
};

inline constexpr std::string_view kMedvaultIdRoot = "2.25.302458611271113451148352563394416437817";
inline constexpr std::string_view kMedvaultIdSystem =
    "urn:oid:2.25.302458611271113451148352563394416437817";

// ---------------------------------------------------------------------------
// Parsing and writing

// C-CDA (any document type; structured and unstructured bodies). Refuses
// DOCTYPEs and entity declarations, a root that is not ClinicalDocument in
// the urn:hl7-org:v3 namespace, invalid UTF-8, and input beyond the limits.
Result<ClinicalDocument> ParseCcda(std::string_view xml, const ParseLimits& limits = {});
// A C-CDA R2.1 Continuity of Care Document with one section per entry kind
// present (coded entries and a generated narrative table). Round-trips
// through ParseCcda to the same canonical form.
Result<std::string> WriteCcda(const ClinicalDocument& doc);

// FHIR R4 JSON: a single resource or a Bundle (transaction, batch,
// collection, document, searchset). Refuses duplicate keys, invalid UTF-8,
// numbers that do not fit their type, non-object resources, and input beyond
// the limits.
Result<ClinicalDocument> ParseFhir(std::string_view json, const ParseLimits& limits = {});
// A FHIR R4 "collection" Bundle: Patient first, then one resource per entry.
// Round-trips through ParseFhir to the same canonical form.
Result<std::string> WriteFhirBundle(const ClinicalDocument& doc);

// Sniffs the format: XML (after an optional BOM and whitespace, '<') or JSON
// ('{'). InvalidArgument otherwise.
Result<Format> DetectFormat(std::string_view bytes);
// Parses with the parser of the detected format.
Result<ClinicalDocument> ParseDocument(std::string_view bytes, const ParseLimits& limits = {});

// ---------------------------------------------------------------------------
// Model <-> JSON (what segments store) and the canonical form

nlohmann::json ToJson(const Entry& e);
Result<Entry> EntryFromJson(const nlohmann::json& j);
nlohmann::json ToJson(const PatientHeader& p);
Result<PatientHeader> PatientFromJson(const nlohmann::json& j);
nlohmann::json ToJson(const DocumentHeader& h);
Result<DocumentHeader> DocumentHeaderFromJson(const nlohmann::json& j);

// The canonical form (see the top of this file): header, patient and the
// entries sorted by (kind, id, then the whole entry), exact duplicates once,
// empty fields omitted.
nlohmann::json CanonicalJson(const ClinicalDocument& doc);
// The same, serialised (sorted keys, no whitespace).
std::string CanonicalString(const ClinicalDocument& doc);

// ---------------------------------------------------------------------------
// Normalisation helpers shared by the parsers and writers

// C-CDA TS ("2012", "20120806", "201208061030", "20120806103000.123-0500")
// or FHIR date/dateTime to the canonical form: "YYYY", "YYYY-MM",
// "YYYY-MM-DD" or "YYYY-MM-DDThh:mm:ss[.fff][Z|+hh:mm|-hh:mm]" (seconds
// added when absent; the zone only when the source has one).
// InvalidArgument for anything else (including impossible dates).
Result<std::string> NormalizeDateTime(std::string_view s);
// Canonical form back to a C-CDA TS value.
std::string ToHl7Timestamp(std::string_view canonical);

// OID -> URI for the well-known systems, else "urn:oid:<oid>"; URI -> OID
// for the reverse (without "urn:oid:"), "" when a URI has no OID.
std::string CodeSystemUri(std::string_view oid);
std::string CodeSystemOid(std::string_view uri);

}  // namespace medvault::interop
