// What the FHIR reader (fhir_reader.cc) and writer (fhir_writer.cc) agree on
// beyond FHIR R4 itself. Not part of the public interface.
//
// The writer maps every model field to the natural FHIR element where the
// resource type has one and the value fits the element's type and required
// value set (a Condition's status into clinicalStatus when it is one of
// active|recurrence|...). Everything else goes into an extension of the
// resource (or of the component) with a URL kExtensionBase + name below, so
// that any model content, including what the C-CDA reader produces, comes back
// unchanged from ParseFhir(WriteFhirBundle(doc)). Extension values are strings
// (valueString) or codings (valueCoding); quantities and components are
// complex extensions with sub-extensions named after the model fields.
// Dates in extensions are the ones not in NormalizeDateTime's canonical form
// (the natural elements take the others); they are read back as written.
//
// Every written resource carries
//   * identifier [{system: kMedvaultIdSystem, value: Entry::id}], which the
//     reader takes as the entry's id (it wins over fullUrl and Type/id);
//   * meta.tag {system: kKindTagSystem, code: EntryKindName(kind)}, which the
//     reader takes as the entry's kind. This keeps apart what FHIR itself
//     does not: an Observation of kind "result" whose category happens to be
//     "vital-signs", and a note (kNote, written as a DocumentReference whose
//     text is the base64 attachment data) from a document reference.
// The document header's type/title/confidentiality/authors/custodian go into
// a Composition (read back from any Bundle's first Composition); Party
// fields without a FHIR place use party-* extensions on the Reference.
#pragma once

#include <string_view>

#include "vocab/vocab.h"

namespace medvault::interop::fhir_internal {

inline constexpr std::string_view kExtensionBase =
    "http://medvault.invalid/fhir/StructureDefinition/";
inline constexpr std::string_view kKindTagSystem =
    "http://medvault.invalid/fhir/CodeSystem/entry-kind";

// Entry and Component fields (kExtensionBase + name).
inline constexpr std::string_view kExtCode = "entry-code";             // valueCoding
inline constexpr std::string_view kExtText = "entry-text";             // valueString
inline constexpr std::string_view kExtStatus = "entry-status";         // valueString
inline constexpr std::string_view kExtStart = "entry-start";           // valueString
inline constexpr std::string_view kExtEnd = "entry-end";               // valueString
inline constexpr std::string_view kExtQuantity = "entry-quantity";     // value, unit
inline constexpr std::string_view kExtValueCode = "entry-value-code";  // valueCoding
inline constexpr std::string_view kExtValueText = "entry-value-text";  // valueString
inline constexpr std::string_view kExtComponent = "entry-component";   // code, quantity, ...
inline constexpr std::string_view kExtCategory = "entry-category";     // valueString
inline constexpr std::string_view kExtReaction = "entry-reaction";     // valueCoding, repeated
inline constexpr std::string_view kExtSeverity = "entry-severity";     // valueString
inline constexpr std::string_view kExtRelation = "entry-relation";     // valueCoding
inline constexpr std::string_view kExtRoute = "entry-route";           // valueCoding
inline constexpr std::string_view kExtMediaType = "entry-media-type";  // valueString
inline constexpr std::string_view kExtUrl = "entry-url";               // valueString
inline constexpr std::string_view kExtReferenceRange = "entry-reference-range";  // low, high, text
inline constexpr std::string_view kExtBodySite = "entry-body-site";              // valueCoding
inline constexpr std::string_view kExtMethod = "entry-method";                   // valueCoding
inline constexpr std::string_view kExtReason = "entry-reason";    // valueCoding, repeated
inline constexpr std::string_view kExtSection = "entry-section";  // valueCoding
inline constexpr std::string_view kExtMood = "entry-mood";        // valueString
inline constexpr std::string_view kExtData = "entry-data";        // valueBase64Binary
// The members of an entry whose resource has no member element (an
// Observation's are hasMember, a DiagnosticReport's result): valueString,
// repeated, each a member's entry id.
inline constexpr std::string_view kExtMember = "entry-member";
// Sub-extensions of kExtQuantity and kExtComponent.
inline constexpr std::string_view kSubValue = "value";           // valueString
inline constexpr std::string_view kSubUnit = "unit";             // valueString
inline constexpr std::string_view kSubCode = "code";             // valueCoding
inline constexpr std::string_view kSubQuantity = "quantity";     // complex: value, unit
inline constexpr std::string_view kSubValueCode = "value-code";  // valueCoding
inline constexpr std::string_view kSubValueText = "value-text";  // valueString
inline constexpr std::string_view kSubLow = "low";               // complex: value, unit
inline constexpr std::string_view kSubHigh = "high";             // complex: value, unit
inline constexpr std::string_view kSubText = "text";             // valueString
// Party fields on a Reference (Composition.author, Composition.custodian).
inline constexpr std::string_view kExtPartyName = "party-name";                  // valueString
inline constexpr std::string_view kExtPartyOrganization = "party-organization";  // valueString
inline constexpr std::string_view kExtPartyTime = "party-time";                  // valueString
// Dates the FHIR elements cannot hold as they are (not in the canonical form
// of NormalizeDateTime), kept as written: Patient.extension and
// Bundle.meta.extension.
inline constexpr std::string_view kExtPatientBirthDate = "patient-birth-date";  // valueString
inline constexpr std::string_view kExtPatientDeceased = "patient-deceased";     // valueString
inline constexpr std::string_view kExtHeaderTime = "header-time";               // valueString

// A resource type name as FHIR spells them: an upper-case ASCII letter, then
// ASCII letters and digits, at most 64.
inline bool IsResourceTypeName(std::string_view type) {
  if (type.empty() || type.size() > 64 || type[0] < 'A' || type[0] > 'Z') return false;
  for (char c : type) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
      return false;
    }
  }
  return true;
}

// The resource types the reader reads into the model (or handles itself:
// bundles, the patient, the composition). Any other well-named type is kept
// verbatim as an EntryKind::kResource entry.
inline bool IsModelledResourceType(std::string_view type) {
  for (std::string_view t :
       {"Bundle", "Patient", "Composition", "Observation", "Condition", "AllergyIntolerance",
        "MedicationRequest", "MedicationStatement", "FamilyMemberHistory", "Procedure",
        "Immunization", "Encounter", "CarePlan", "Goal", "ServiceRequest", "DiagnosticReport",
        "DocumentReference"}) {
    if (t == type) return true;
  }
  return false;
}

// Resource types that are no one's health data (messaging, outcomes of
// operations, definitions and conformance): never kept as entries, only in
// the original document.
inline bool IsInfrastructureResourceType(std::string_view type) {
  for (std::string_view t :
       {"MessageHeader",       "OperationOutcome",    "Parameters",
        "Subscription",        "CapabilityStatement", "TerminologyCapabilities",
        "StructureDefinition", "StructureMap",        "ValueSet",
        "CodeSystem",          "ConceptMap",          "NamingSystem",
        "SearchParameter",     "OperationDefinition", "CompartmentDefinition",
        "ImplementationGuide", "GraphDefinition",     "MessageDefinition",
        "TestScript",          "TestReport",          "ExampleScenario"}) {
    if (t == type) return true;
  }
  return false;
}

// A type the reader keeps verbatim (EntryKind::kResource).
inline bool IsVerbatimResourceType(std::string_view type) {
  return IsResourceTypeName(type) && !IsModelledResourceType(type) &&
         !IsInfrastructureResourceType(type);
}

// Entry::mood <-> MedicationRequest.intent / ServiceRequest.intent: the
// model's "" is the kind's usual intent ("order" for medications, "plan"
// for plans); the other intents are moods of the same name.
inline std::string_view DefaultIntent(bool medication) { return medication ? "order" : "plan"; }
inline bool IsIntent(bool medication, std::string_view intent) {
  for (std::string_view i : {"proposal", "plan", "order", "original-order", "reflex-order",
                             "filler-order", "instance-order", "option"}) {
    if (i == intent) return true;
  }
  return !medication && intent == "directive";
}

inline constexpr std::string_view kUcum = vocab::kUcumSystem;
inline constexpr std::string_view kLoinc = vocab::kLoincSystem;
inline constexpr std::string_view kUsCoreRace =
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race";
inline constexpr std::string_view kUsCoreEthnicity =
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity";
inline constexpr std::string_view kObservationCategory =
    "http://terminology.hl7.org/CodeSystem/observation-category";
inline constexpr std::string_view kDataAbsentReason =
    "http://terminology.hl7.org/CodeSystem/data-absent-reason";
inline constexpr std::string_view kDataAbsentPrefix = "data-absent: ";

}  // namespace medvault::interop::fhir_internal
