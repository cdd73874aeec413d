// How a ClinicalDocument is spread over segments of a patient's tree, and
// gathered back. Part of the public interface of src/interop.
//
// An imported document gets a document key ("d" + 16 hex digits). Its
// entries go to one JSON segment per (segment base, document):
//
//   health-status/problems/<key>          kProblem
//   health-status/allergies/<key>         kAllergy
//   health-status/medications/<key>       kMedication
//   health-status/procedures/<key>        kProcedure
//   health-status/immunizations/<key>     kImmunization
//   laboratory/results/<key>              kResult
//   physical-signs/vital-signs/<key>      kVitalSign (blood pressure, heart rate, glucose, ...)
//   body-measures/vital-signs/<key>       kVitalSign whose code is a body measure (height,
//                                         weight, BMI, head circumference)
//   life-record/social-history/<key>      kSocialHistory
//   family-history/conditions/<key>       kFamilyHistory
//   doctor-description/encounters/<key>   kEncounter
//   doctor-description/plan-of-treatment/<key>  kPlan
//   doctor-description/notes/<key>        kNote
//   third-party-description/document-references/<key>  kDocumentReference
//   personal-information/identity/<key>   the patient header
//   source-documents/<key>/header         the document header and what the import kept
//   source-documents/<key>/original       the original bytes (binary attachment)
//
// so that a patient shares by subject ("physical-signs", "health-status/
// allergies") and every document stays separable. Segment bodies:
//
//   {"format": "medvault-entries/1", "document": KEY, "entries": [ToJson(Entry)...]}
//   {"format": "medvault-patient/1", "document": KEY, "patient": ToJson(PatientHeader)}
//   {"format": "medvault-document/1", "document": KEY, "source_format": "ccda"|"fhir",
//    "header": ToJson(DocumentHeader), "sha256": HEX of the original,
//    "media_type": ..., "kept_in_original_only": [...], "entry_count": N}
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "interop/interop.h"
#include "vocab/vocab.h"

namespace medvault::interop {

// The segment bases are vocabulary (vocab::kEntrySegments and these two).
inline constexpr std::string_view kPatientSegmentBase = vocab::kIdentitySegmentBase;
inline constexpr std::string_view kSourceDocumentsBase = vocab::kSourceDocumentsBase;
inline constexpr std::string_view kEntriesFormat = "medvault-entries/1";
inline constexpr std::string_view kPatientFormat = "medvault-patient/1";
inline constexpr std::string_view kDocumentFormat = "medvault-document/1";

// The segment base of an entry (the table above, without "/<key>").
std::string_view SegmentBaseFor(const Entry& e);
// The least sensitivity a segment at `path` is stored with, whatever its
// top-level segment says: vocab::kUnclassifiedSensitivity below the bases
// of unclassified statements and resources, else 0.
int SensitivityFloorFor(std::string_view path);

// "d" + the first 16 hex digits of SHA-256(format name, 0, header.id) when
// the document has an id, else of SHA-256 of the original bytes: a re-import
// of the same document lands on the same segments (as new versions).
std::string DocumentKey(const ClinicalDocument& doc, std::string_view original_bytes);
// The key of a document whose id another document in the same record
// already carries (vendors reuse ids): "d" + the first 16 hex digits of
// SHA-256(format name, 0, header.id, 0, SHA-256 of the original bytes), so
// it lands beside the first one, and the same document again lands on the
// same key. Equals DocumentKey for a document without an id (whose key is
// already its content's).
std::string DocumentKeyWithContent(const ClinicalDocument& doc, std::string_view original_bytes);

struct SegmentPart {
  std::string path;      // full segment path, document key included
  uint64_t version = 0;  // the segment version the body was read from (0: not stored yet)
  nlohmann::json body;
};

struct OriginalInfo {
  std::string sha256_hex;  // of the original bytes
  std::string media_type;  // "application/xml" (C-CDA) or "application/fhir+json"
};

// The JSON segments of a document (not the original's attachment), sorted by
// path. Every path passes record::ValidateSegmentPath. A group of entries
// whose JSON exceeds `max_body_bytes` continues in "<base>/<key>-p2", "-p3",
// ... (a single larger entry still gets a part of its own).
inline constexpr size_t kDefaultMaxBodyBytes = 768 * 1024;
std::vector<SegmentPart> SplitIntoSegments(const ClinicalDocument& doc,
                                           std::string_view document_key,
                                           const OriginalInfo& original,
                                           size_t max_body_bytes = kDefaultMaxBodyBytes);
inline std::string OriginalSegmentPath(std::string_view document_key) {
  return std::string(kSourceDocumentsBase) + "/" + std::string(document_key) + "/original";
}
inline std::string HeaderSegmentPath(std::string_view document_key) {
  return std::string(kSourceDocumentsBase) + "/" + std::string(document_key) + "/header";
}

// Joins segment bodies (of one or several documents, in any order) back into
// one document: the entries of every part (an entry present in several
// parts with equal content once), the patient of the last identity part,
// the header of the last header part. Parts whose body is not one of the
// three formats are ignored unless they are measurement segments (below).
// InvalidArgument when a part claims a format but does not follow it.
Result<ClinicalDocument> JoinSegments(std::span<const SegmentPart> parts);

// Whether a segment at `path` can hold document content: below one of the
// segment bases above (or the identity / header of an import), or a
// measurement segment (MeasurementToEntry). Decided on the path alone, so
// that an export asks about a segment before it reads it.
bool IsDocumentContentPath(std::string_view path);
// True for the measurement segments MeasurementToEntry understands.
bool IsMeasurementPath(std::string_view path);

// A version of a measurement segment written by a person or device
// ("physical-signs/blood-pressure", ".../heart-rate", "blood-glucose",
// "weight", "height", "body-temperature", "oxygen-saturation") as a vital
// sign entry with its LOINC code; nullopt for other segments.
std::optional<Entry> MeasurementToEntry(std::string_view path, uint64_t version,
                                        const nlohmann::json& body);

}  // namespace medvault::interop
