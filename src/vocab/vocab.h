// medvault's clinical vocabulary: the public interface of src/vocab.
//
// One place for the names every module agrees on: the top-level segments of
// a patient's tree with their categories and default sensitivities, the
// segments medvault itself writes below them, the measurement schemas with
// their LOINC codes and UCUM units, the content kinds of a segment version,
// and the semantic fields a mask may name. record validates against these
// tables, interop maps with them, policy checks its file against them, the
// engine masks with them, the API serves them (GET /api/v1/segment-types) and
// the benchmarks build their workloads from them.
//
// The tables are constexpr arrays of structs: adding a row is the whole
// change (src/vocab/vocab.cc checks their consistency at compile time, and
// tests/vocab_test.cc once more at run time). This module depends on nothing
// but the standard library; everything above may depend on it.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace medvault::vocab {

// ---------------------------------------------------------------------------
// Top-level segments and their categories

// Sensitivities run from 0 (public-ish) to kMaxSensitivity (most sensitive).
inline constexpr int kMaxSensitivity = 4;

struct TopLevelSegment {
  std::string_view name;      // first path component
  std::string_view category;  // category recorded with each version (policy rules name it)
  int default_sensitivity;    // 0 .. kMaxSensitivity
  std::string_view description;
};

// The top-level segments of the brief, then the clinical departments under
// which clinical data nests ("internal-medicine/cardiology/ecg"): their
// category is "clinical", their sensitivity their own.
inline constexpr std::array<TopLevelSegment, 25> kTopLevelSegments = {{
    {"personal-information", "personal-information", 3, "identity, contacts, insurance numbers"},
    {"health-status", "health-status", 2, "illnesses and problems"},
    {"physical-signs", "physical-signs", 1, "blood pressure, heart rate, glucose, ..."},
    {"body-measures", "body-measures", 1, "height, weight, BMI"},
    {"family-history", "family-history", 2, "conditions of relatives"},
    {"patient-narrative", "patient-narrative", 2, "emotions, pain, the patient's own words"},
    {"life-record", "life-record", 1, "diet, physical activity, sleep"},
    {"other", "other", 1, "anything else"},
    {"doctor-description", "doctor-description", 2, "notes and medical orders"},
    {"third-party-description", "third-party-description", 2, "reports from third parties"},
    {"source-documents", "source-documents", 3,
     "imported documents kept whole (C-CDA, FHIR) and what the import read from them"},
    // Clinical departments: clinical data nests below them.
    {"internal-medicine", "clinical", 2, "cardiology, endocrinology, nephrology, ..."},
    {"surgery", "clinical", 2, "general, vascular, orthopaedic, ..."},
    {"pediatrics", "clinical", 2, "children's care"},
    {"obstetrics-gynecology", "clinical", 3, "pregnancy and gynaecology"},
    {"neurology", "clinical", 2, "nervous system"},
    {"oncology", "clinical", 3, "cancer care"},
    {"psychiatry", "clinical", 4, "mental health"},
    {"infectious-disease", "clinical", 4, "HIV, hepatitis, sexually transmitted infections"},
    {"radiology", "clinical", 2, "imaging"},
    {"laboratory", "clinical", 2, "laboratory results"},
    {"emergency", "clinical", 2, "emergency care"},
    {"ophthalmology", "clinical", 2, "eyes"},
    {"dermatology", "clinical", 2, "skin"},
    {"genetics", "clinical", 4, "genetic testing"},
}};

// The top-level segment a path falls under when its first component is
// unknown (TopLevelFor); ValidateSegmentPath (src/record) refuses such paths.
inline constexpr std::string_view kFallbackTopLevel = "other";

namespace detail {
constexpr size_t CountCategories() {
  size_t n = 0;
  for (size_t i = 0; i < kTopLevelSegments.size(); ++i) {
    bool seen = false;
    for (size_t j = 0; j < i; ++j) {
      seen = seen || kTopLevelSegments[j].category == kTopLevelSegments[i].category;
    }
    n += seen ? 0 : 1;
  }
  return n;
}
constexpr std::array<std::string_view, CountCategories()> DistinctCategories() {
  std::array<std::string_view, CountCategories()> out{};
  size_t n = 0;
  for (const TopLevelSegment& s : kTopLevelSegments) {
    bool seen = false;
    for (size_t j = 0; j < n; ++j) {
      seen = seen || out[j] == s.category;
    }
    if (!seen) {
      out[n++] = s.category;
    }
  }
  return out;
}
}  // namespace detail

// The categories of kTopLevelSegments, each once, in table order: the one
// list of categories a policy file may name.
inline constexpr auto kCategories = detail::DistinctCategories();

// nullptr when `name` is not a top-level segment.
const TopLevelSegment* FindTopLevel(std::string_view name);
// The top-level segment of a path's first component; kFallbackTopLevel's
// when unknown (callers validate paths first, see record::ValidateSegmentPath).
const TopLevelSegment& TopLevelFor(std::string_view path);
bool IsCategory(std::string_view name);
// kCategories as strings (the policy parser's list, error messages).
std::vector<std::string> CategoryNames();

// True when `path` equals `prefix` or lies below it (whole components); every
// path is within the empty prefix.
bool PathIsWithin(std::string_view path, std::string_view prefix);
// The last component of a path ("blood-pressure" of
// "physical-signs/blood-pressure"); the path itself when it has no '/'.
std::string_view LastComponent(std::string_view path);

// ---------------------------------------------------------------------------
// Segments medvault writes below the top level (the known segment tree)

// Where an imported document's entries go: one segment per (base, document),
// "<base>/<document key>" (docs/interop.md). In the order of
// interop::EntryKind; entry_kind is interop::EntryKindName.
struct EntrySegment {
  std::string_view entry_kind;
  std::string_view base;
};
inline constexpr std::array<EntrySegment, 15> kEntrySegments = {{
    {"problem", "health-status/problems"},
    {"allergy", "health-status/allergies"},
    {"medication", "health-status/medications"},
    {"result", "laboratory/results"},
    {"vital-sign", "physical-signs/vital-signs"},
    {"social-history", "life-record/social-history"},
    {"family-history", "family-history/conditions"},
    {"procedure", "health-status/procedures"},
    {"immunization", "health-status/immunizations"},
    {"encounter", "doctor-description/encounters"},
    {"plan", "doctor-description/plan-of-treatment"},
    {"document-reference", "third-party-description/document-references"},
    {"note", "doctor-description/notes"},
    // Statements of a section no kind covers: by default here, else the base
    // of their section in kSectionSegments.
    {"statement", "other/sections"},
    // FHIR resources kept verbatim: by default here, else the base of their
    // type in kResourceSegments.
    {"resource", "other/resources"},
}};

// Where FHIR resources kept verbatim (interop::EntryKind::kResource) go, by
// resource type: claims and coverage beside the patient's insurance data,
// imaging studies under radiology, the people and places of care apart.
struct ResourceSegment {
  std::string_view type;
  std::string_view base;
};
inline constexpr std::array<ResourceSegment, 17> kResourceSegments = {{
    {"MolecularSequence", "genetics/sequences"},
    {"Consent", "personal-information/consents"},
    {"RelatedPerson", "personal-information/related-people"},
    {"Claim", "personal-information/claims"},
    {"ExplanationOfBenefit", "personal-information/claims"},
    {"Coverage", "personal-information/coverage"},
    {"Organization", "other/care-directory"},
    {"Practitioner", "other/care-directory"},
    {"PractitionerRole", "other/care-directory"},
    {"Location", "other/care-directory"},
    {"CareTeam", "doctor-description/care-teams"},
    {"ImagingStudy", "radiology/imaging"},
    {"Media", "radiology/media"},
    {"Device", "health-status/devices"},
    {"Medication", "health-status/medication-definitions"},
    {"Provenance", "other/provenance"},
    {"SupplyDelivery", "other/supply"},
}};
// The row of a resource type; nullptr when not listed.
const ResourceSegment* ResourceSegmentFor(std::string_view type);
// What no row classifies (the "statement" and "resource" bases of
// kEntrySegments: a section or resource type nobody listed, perhaps a
// depression questionnaire or a genetic finding) is stored at least this
// sensitive: as sensitive as the original document it came from.
inline constexpr int kUnclassifiedSensitivity = 3;

// Where statements (interop::EntryKind::kStatement) of a C-CDA section
// without an entry kind of its own go, by the section's LOINC code: under
// the top-level segment whose sensitivity fits (mental status under
// psychiatry, payers under personal information), so that sharing follows
// the subject. A section not listed goes to kEntrySegments' "statement" base.
struct SectionSegment {
  std::string_view loinc;  // the section's code
  std::string_view base;
  std::string_view title;  // its name for people
};
inline constexpr std::array<SectionSegment, 23> kSectionSegments = {{
    {"47420-5", "health-status/functional-status", "Functional status"},
    {"10190-7", "psychiatry/mental-status", "Mental status"},
    {"61144-2", "life-record/nutrition", "Diet and nutrition"},
    {"42348-3", "personal-information/advance-directives", "Advance directives"},
    {"46264-8", "health-status/medical-equipment", "Medical equipment"},
    {"75310-3", "health-status/health-concerns", "Health concerns"},
    {"61146-7", "doctor-description/goals", "Goals"},
    {"48768-6", "personal-information/insurance", "Payers"},
    {"42349-1", "doctor-description/referrals", "Reason for referral"},
    {"69730-0", "doctor-description/instructions", "Instructions"},
    {"29545-1", "doctor-description/physical-examination", "Physical examination"},
    {"10187-3", "doctor-description/review-of-systems", "Review of systems"},
    {"10164-2", "doctor-description/present-illness", "History of present illness"},
    {"29299-5", "doctor-description/reason-for-visit", "Reason for visit"},
    {"10154-3", "doctor-description/chief-complaint", "Chief complaint"},
    {"46239-0", "doctor-description/reason-for-visit", "Chief complaint and reason for visit"},
    {"8648-8", "doctor-description/hospital-course", "Hospital course"},
    {"59776-5", "doctor-description/procedure-findings", "Procedure findings"},
    {"29554-3", "doctor-description/procedure-description", "Procedure description"},
    {"10218-6", "doctor-description/postoperative-diagnosis", "Postoperative diagnosis"},
    {"10219-4", "doctor-description/preoperative-diagnosis", "Preoperative diagnosis"},
    {"55109-3", "doctor-description/complications", "Complications"},
    {"18748-4", "radiology/imaging-studies", "Diagnostic imaging"},
}};
// The row of a section code; nullptr when not listed.
const SectionSegment* SectionSegmentFor(std::string_view loinc);
// Vital signs whose code is a body measure (kBodyMeasureLoincCodes) go here
// instead of physical-signs, so that sharing "body-measures" shares them.
inline constexpr std::string_view kBodyMeasureVitalSignsBase = "body-measures/vital-signs";
// The patient header of an import: "<base>/<document key>".
inline constexpr std::string_view kIdentitySegmentBase = "personal-information/identity";
// An import's header and original: "<base>/<document key>/{header,original}".
inline constexpr std::string_view kSourceDocumentsBase = "source-documents";

// The LOINC codes of body measures (height, weight, BMI, head circumference).
inline constexpr std::array<std::string_view, 11> kBodyMeasureLoincCodes = {
    "8302-2",   // body height
    "8306-3",   // body height lying
    "8308-9",   // body height standing
    "29463-7",  // body weight
    "3141-9",   // body weight measured
    "39156-5",  // BMI
    "59576-9",  // BMI percentile per age and sex
    "9843-4",   // head occipital-frontal circumference
    "8287-5",   // head circumference by tape
    "8289-1",   // head circumference percentile
    "77606-2",  // weight-for-length percentile
};
bool IsBodyMeasureLoinc(std::string_view code);

// ---------------------------------------------------------------------------
// Measurements

inline constexpr std::string_view kLoincSystem = "http://loinc.org";
inline constexpr std::string_view kLoincOid = "2.16.840.1.113883.6.1";
inline constexpr std::string_view kUcumSystem = "http://unitsofmeasure.org";
// HL7 v3 ObservationInterpretation (high, low, abnormal, ...): C-CDA
// interpretationCode (OID 2.16.840.1.113883.5.83), FHIR Observation.interpretation.
inline constexpr std::string_view kInterpretationSystem =
    "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";

struct MeasurementField {
  std::string_view name;  // member of the segment's JSON body, a number
  double min;             // plausible range, inclusive
  double max;
  std::string_view loinc;  // component code when the measurement has several fields
  std::string_view display;
};

struct MeasurementUnit {
  std::string_view unit;  // as written in the body's "unit" ("mmHg", "bpm", ...)
  std::string_view ucum;  // its UCUM code ("mm[Hg]", "/min", ...)
  // The observation's code when the reading is in this unit (glucose by
  // mass or by moles); empty: the measurement's own.
  std::string_view loinc;
  std::string_view display;
};

// A structured reading: a JSON segment whose last path component is `leaf`
// holds the fields (numbers within their range), a "unit" from `units`, an
// RFC 3339 "time", and optionally "note" and "device" (strings); nothing else.
struct Measurement {
  std::string_view leaf;
  std::string_view path;      // where the portal and devices write it
  std::string_view category;  // the category of `path`
  std::string_view loinc;     // the observation (a panel when there are several fields)
  std::string_view display;
  std::span<const MeasurementField> fields;
  std::span<const MeasurementUnit> units;
};

// Members every measurement body may carry besides its fields.
inline constexpr std::array<std::string_view, 4> kMeasurementCommonMembers = {"unit", "time",
                                                                              "note", "device"};

namespace detail {
inline constexpr std::array<MeasurementField, 2> kBloodPressureFields = {{
    {"systolic", 40, 300, "8480-6", "Systolic blood pressure"},
    {"diastolic", 20, 200, "8462-4", "Diastolic blood pressure"},
}};
inline constexpr std::array<MeasurementField, 1> kHeartRateFields = {{{"bpm", 20, 300, "", ""}}};
inline constexpr std::array<MeasurementField, 1> kGlucoseFields = {{{"value", 0.5, 1000, "", ""}}};
inline constexpr std::array<MeasurementField, 1> kWeightFields = {{{"value", 0.2, 700, "", ""}}};
inline constexpr std::array<MeasurementField, 1> kHeightFields = {{{"value", 20, 280, "", ""}}};
inline constexpr std::array<MeasurementField, 1> kTemperatureFields = {{{"value", 25, 46, "", ""}}};
inline constexpr std::array<MeasurementField, 1> kSaturationFields = {{{"value", 50, 100, "", ""}}};

inline constexpr std::array<MeasurementUnit, 1> kPressureUnits = {{{"mmHg", "mm[Hg]", "", ""}}};
inline constexpr std::array<MeasurementUnit, 2> kRateUnits = {{
    {"/min", "/min", "", ""},
    {"bpm", "/min", "", ""},
}};
inline constexpr std::array<MeasurementUnit, 2> kGlucoseUnits = {{
    {"mmol/L", "mmol/L", "15074-8", "Glucose [Moles/volume] in Blood"},
    {"mg/dL", "mg/dL", "", ""},
}};
inline constexpr std::array<MeasurementUnit, 2> kMassUnits = {{
    {"kg", "kg", "", ""},
    {"lb", "[lb_av]", "", ""},
}};
inline constexpr std::array<MeasurementUnit, 2> kLengthUnits = {{
    {"cm", "cm", "", ""},
    {"in", "[in_i]", "", ""},
}};
inline constexpr std::array<MeasurementUnit, 2> kTemperatureUnits = {{
    {"Cel", "Cel", "", ""},
    {"[degF]", "[degF]", "", ""},
}};
inline constexpr std::array<MeasurementUnit, 1> kPercentUnits = {{{"%", "%", "", ""}}};
}  // namespace detail

inline constexpr std::array<Measurement, 7> kMeasurements = {{
    {"blood-pressure", "physical-signs/blood-pressure", "physical-signs", "85354-9",
     "Blood pressure panel with all children optional", detail::kBloodPressureFields,
     detail::kPressureUnits},
    {"heart-rate", "physical-signs/heart-rate", "physical-signs", "8867-4", "Heart rate",
     detail::kHeartRateFields, detail::kRateUnits},
    {"blood-glucose", "physical-signs/blood-glucose", "physical-signs", "2339-0",
     "Glucose [Mass/volume] in Blood", detail::kGlucoseFields, detail::kGlucoseUnits},
    {"weight", "body-measures/weight", "body-measures", "29463-7", "Body weight",
     detail::kWeightFields, detail::kMassUnits},
    {"height", "body-measures/height", "body-measures", "8302-2", "Body height",
     detail::kHeightFields, detail::kLengthUnits},
    {"body-temperature", "physical-signs/body-temperature", "physical-signs", "8310-5",
     "Body temperature", detail::kTemperatureFields, detail::kTemperatureUnits},
    {"oxygen-saturation", "physical-signs/oxygen-saturation", "physical-signs", "59408-5",
     "Oxygen saturation in Arterial blood by Pulse oximetry", detail::kSaturationFields,
     detail::kPercentUnits},
}};

// The measurement a segment path holds, by its last component; nullptr for
// other segments (wherever in the tree: "internal-medicine/x/weight" too).
const Measurement* MeasurementForPath(std::string_view path);
// nullptr when `unit` is not one of the measurement's.
const MeasurementUnit* FindUnit(const Measurement& m, std::string_view unit);

// A LOINC code: 1..7 digits, '-', the check digit (LOINC's mod 10 algorithm
// over the digits before it). "8480-6" yes, "8480-5" and "8480" no.
bool IsWellFormedLoinc(std::string_view code);

// ---------------------------------------------------------------------------
// Content kinds of a segment version

// The numeric values are stored (the metadata store's `kind` column): never
// renumber.
enum class ContentKind { kJson = 1, kText = 2, kBinary = 3 };

struct ContentKindInfo {
  ContentKind kind;
  std::string_view name;        // in the API and in share packages
  std::string_view media_type;  // fixed for the kind; empty: given with each version
  std::string_view description;
};
inline constexpr std::array<ContentKindInfo, 3> kContentKinds = {{
    {ContentKind::kJson, "json", "application/json", "a JSON object"},
    {ContentKind::kText, "text", "text/plain; charset=utf-8", "UTF-8 text"},
    {ContentKind::kBinary, "binary", "", "an attachment of the media type written with it"},
}};

// "" for a value outside the enum.
std::string_view ContentKindName(ContentKind kind);
std::optional<ContentKind> ParseContentKind(std::string_view name);
// The media type of JSON and text versions; "" for binary (and unknown) kinds.
std::string_view FixedMediaType(ContentKind kind);

// ---------------------------------------------------------------------------
// Semantic fields a mask may name

// Fields of the interop patient JSON (interop::ToJson(PatientHeader)) that
// masking understands beyond a plain key (src/engine FieldMasker); each also
// matches the plain key of its name.
struct SemanticField {
  std::string_view name;
  std::string_view matches;  // what it reaches in the patient JSON
};
inline constexpr std::array<SemanticField, 7> kSemanticFields = {{
    {"given_name", "names[].given"},
    {"family_name", "names[].family"},
    {"birth_date", "the key birth_date only"},
    {"identifier", "identifiers[]"},
    {"insurance_number",
     "identifiers[] of type \"SB\" or of an insurance system (kInsuranceIdentifierSystems)"},
    {"address", "addresses[]"},
    {"telecom", "telecoms[]"},
}};
bool IsSemanticField(std::string_view name);

// Identifier systems that carry insurance / social-beneficiary numbers (the
// URI and the "urn:oid:" form where there is one); identifier type "SB"
// counts as well, whatever the system.
inline constexpr std::array<std::string_view, 13> kInsuranceIdentifierSystems = {
    // US Medicare Beneficiary Identifier and the former HICN.
    "http://hl7.org/fhir/sid/us-mbi",
    "urn:oid:2.16.840.1.113883.4.927",
    "http://hl7.org/fhir/sid/us-medicare",
    "urn:oid:2.16.840.1.113883.4.572",
    // France: INS-NIR / INS-NIA (production and test).
    "urn:oid:1.2.250.1.213.1.4.8",
    "urn:oid:1.2.250.1.213.1.4.9",
    "urn:oid:1.2.250.1.213.1.4.10",
    "urn:oid:1.2.250.1.213.1.4.11",
    // Germany: statutory and private health insurance number (KVNR).
    "http://fhir.de/sid/gkv/kvid-10",
    "http://fhir.de/sid/pkv/kvid-10",
    "urn:oid:1.2.276.0.76.4.8",
    // Switzerland and Austria: social insurance numbers.
    "urn:oid:2.16.756.5.32",
    "urn:oid:1.2.40.0.10.1.4.3.1",
};
bool IsInsuranceIdentifierSystem(std::string_view system);

}  // namespace medvault::vocab
