// Shared by the C-CDA reader (ccda_reader.cc) and writer (ccda_writer.cc):
// namespaces, template ids, code mappings and the medvault
// markers that let WriteCcda carry model fields C-CDA has no place for.
//
// Round-trip contract: whatever WriteCcda writes, ParseCcda reads back to
// the same canonical form. Fields a kind's C-CDA structure carries are
// written there ("natural" fields); every other non-empty field is written
// as a *field observation* inside the entry's main statement:
//
//   <entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
//     <templateId root="{kMedvaultIdRoot}" extension="field"/>
//     <code code="{field name}" codeSystem="{kFieldCodeSystem}"/>
//     <value xsi:type="ST|PQ|CD" .../>
//   </observation></entryRelationship>
//
// and components (multi-part observations) as observations with the
// template extension "component". The reader applies field observations
// after the natural fields (they override), and never treats them as
// clinical statements of their own.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "interop/interop.h"
#include "vocab/vocab.h"

namespace medvault::interop::ccda {

// True when `s` is valid UTF-8 made only of characters XML 1.0 can carry:
// tab, line feed, carriage return, U+0020..U+D7FF, U+E000..U+FFFD and
// U+10000..U+10FFFF (no other C0 control, U+0000 among them, no U+FFFE or
// U+FFFF). WriteCcda refuses anything else; the FHIR reader refuses it on
// input, so that whatever a reader accepted can be exported as C-CDA.
bool IsXmlText(std::string_view s);

inline constexpr std::string_view kHl7Namespace = "urn:hl7-org:v3";
inline constexpr std::string_view kXsiNamespace = "http://www.w3.org/2001/XMLSchema-instance";
inline constexpr std::string_view kSdtcNamespace = "urn:hl7-org:sdtc";

inline constexpr std::string_view kLoincOid = vocab::kLoincOid;
inline constexpr std::string_view kSnomedOid = "2.16.840.1.113883.6.96";
inline constexpr std::string_view kActCodeOid = "2.16.840.1.113883.5.4";
inline constexpr std::string_view kConfidentialityOid = "2.16.840.1.113883.5.25";
inline constexpr std::string_view kGenderOid = "2.16.840.1.113883.5.1";
inline constexpr std::string_view kSsnOid = "2.16.840.1.113883.4.1";

// medvault markers, all below kMedvaultIdRoot.
// Code system of field observations (the code is the model field's name).
inline constexpr std::string_view kFieldCodeSystem =
    "2.25.302458611271113451148352563394416437817.1";
// codeSystem value meaning "the system is the URI in codeSystemName" (code
// systems that have no OID, e.g. a FHIR system URI).
inline constexpr std::string_view kUriCodeSystem = "2.25.302458611271113451148352563394416437817.2";
// Root of patient identifiers whose system or type has no C-CDA form:
// assigningAuthorityName holds "{type}|{system}", extension the value.
inline constexpr std::string_view kIdentifierRoot =
    "2.25.302458611271113451148352563394416437817.3";
// templateId extensions under root kMedvaultIdRoot.
inline constexpr std::string_view kFieldTemplate = "field";
inline constexpr std::string_view kComponentTemplate = "component";
inline constexpr std::string_view kDocumentsTemplate = "documents";
inline constexpr std::string_view kDocumentTemplate = "document";
// On an organizer WriteCcda writes around one observation that belongs to no
// panel (C-CDA wants results and vital signs in organizers): not a panel.
inline constexpr std::string_view kWrapperTemplate = "wrapper";
// On a section WriteCcda writes for statements (EntryKind::kStatement): its
// narrative is generated from them, so it is not read as a note.
inline constexpr std::string_view kStatementsTemplate = "statements";
// The section WriteCcda writes for FHIR resources kept verbatim
// (EntryKind::kResource), one act each.
inline constexpr std::string_view kResourcesTemplate = "resources";
// The encounter diagnosis act (its problem observations are the encounter's
// reasons) and the indication observation (a reason of a medication,
// procedure or encounter).
inline constexpr std::string_view kEncounterDiagnosisTemplate = "2.16.840.1.113883.10.20.22.4.80";
inline constexpr std::string_view kEncounterDiagnosisLoinc = "29308-4";

// On ClinicalDocument: the model's header.type is empty (the code element
// then says 34133-9 only because C-CDA requires one).
inline constexpr std::string_view kUntypedTemplate = "untyped";

inline constexpr std::string_view kNoteActivityTemplate = "2.16.840.1.113883.10.20.22.4.202";
inline constexpr std::string_view kNoteLoinc = "34109-9";
inline constexpr std::string_view kProblemStatusTemplate = "2.16.840.1.113883.10.20.22.4.6";
inline constexpr std::string_view kAllergyStatusTemplate = "2.16.840.1.113883.10.20.22.4.28";
inline constexpr std::string_view kStatusLoinc = "33999-4";
inline constexpr std::string_view kSeverityTemplate = "2.16.840.1.113883.10.20.22.4.8";
inline constexpr std::string_view kReactionTemplate = "2.16.840.1.113883.10.20.22.4.9";

// Bound of texts taken from narrative (section text, resolved references,
// decoded base64 text/plain).
inline constexpr size_t kMaxNarrativeBytes = 64 * 1024;

// ---------------------------------------------------------------------------
// Small helpers

inline bool IsXmlSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

inline std::string_view TrimXmlSpace(std::string_view s) {
  while (!s.empty() && IsXmlSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsXmlSpace(s.back())) s.remove_suffix(1);
  return s;
}

inline char AsciiLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
inline char AsciiUpper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

inline std::string AsciiLowerCopy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

inline std::string AsciiUpperCopy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = AsciiUpper(c);
  return out;
}

// An OID: digits and dots, no empty arc ("2.16.840.1").
inline bool IsOid(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  char prev = '.';
  for (char c : s) {
    if (c == '.') {
      if (prev == '.') return false;
    } else if (c < '0' || c > '9') {
      return false;
    }
    prev = c;
  }
  return true;
}

// A UUID in its 8-4-4-4-12 hex form.
inline bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

// The C-CDA II a writer uses for an Entry/Party id (see Entry::id):
// root^extension and bare OIDs/UUIDs as they are, anything else as the
// extension under kMedvaultIdRoot (which the reader maps back to the bare id).
struct IdParts {
  std::string root;
  std::string extension;
  bool has_extension = false;
};

inline IdParts SplitModelId(std::string_view id) {
  IdParts p;
  if (id.empty()) return p;  // no id: the writer writes a nullFlavor
  const size_t caret = id.find('^');
  if (caret != std::string_view::npos) {
    const std::string_view root = id.substr(0, caret);
    const std::string_view ext = id.substr(caret + 1);
    if (!ext.empty() && root != kMedvaultIdRoot && (IsOid(root) || IsUuid(root))) {
      p.root = std::string(root);
      p.extension = std::string(ext);
      p.has_extension = true;
      return p;
    }
  } else if (id != kMedvaultIdRoot && (IsOid(id) || IsUuid(id))) {
    p.root = std::string(id);
    return p;
  }
  p.root = std::string(kMedvaultIdRoot);
  p.extension = std::string(id);
  p.has_extension = true;
  return p;
}

// The model id of an II as the reader makes it: root, or root^extension.
inline std::string JoinId(std::string_view root, std::string_view extension) {
  std::string out(root);
  if (!extension.empty()) {
    out += '^';
    out += extension;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Code mappings (reader direction; the writer uses the inverse functions)

// HL7 EntityNameUse / PostalAddressUse / TelecommunicationAddressUse to the
// FHIR-style words of the model (codes compared case-insensitively); unknown
// codes lower-cased.
inline std::string NameUseFromHl7(std::string_view raw) {
  const std::string use = AsciiUpperCopy(raw);
  if (use == "L" || use == "OR") return "official";
  if (use == "P") return "nickname";
  if (use == "ANON") return "anonymous";
  return AsciiLowerCopy(use);
}
inline std::string NameUseToHl7(std::string_view use) {
  if (use == "official") return "L";
  if (use == "nickname") return "P";
  if (use == "anonymous") return "ANON";
  return AsciiUpperCopy(use);
}

inline std::string AddressUseFromHl7(std::string_view raw) {
  const std::string use = AsciiUpperCopy(raw);
  if (use == "H" || use == "HP" || use == "HV") return "home";
  if (use == "WP" || use == "DIR" || use == "PUB") return "work";
  if (use == "TMP") return "temp";
  if (use == "OLD" || use == "BAD") return "old";
  if (use == "MC") return "mobile";
  return AsciiLowerCopy(use);
}
inline std::string AddressUseToHl7(std::string_view use) {
  if (use == "home") return "HP";
  if (use == "work") return "WP";
  if (use == "temp") return "TMP";
  if (use == "old") return "OLD";
  if (use == "mobile") return "MC";
  return AsciiUpperCopy(use);
}

inline std::string GenderFromHl7(std::string_view raw) {
  const std::string code = AsciiUpperCopy(raw);
  if (code == "M") return "male";
  if (code == "F") return "female";
  if (code == "UN") return "other";
  return "unknown";
}

// SNOMED CT values of the problem / allergy status observation.
inline std::string_view StatusFromSnomed(std::string_view code, std::string_view display) {
  if (code == "55561003") return "active";
  if (code == "73425007") return "inactive";
  if (code == "413322009") return "resolved";
  const std::string lower = AsciiLowerCopy(TrimXmlSpace(display));
  if (lower == "active") return "active";
  if (lower == "inactive") return "inactive";
  if (lower == "resolved") return "resolved";
  return "";
}
inline std::string_view StatusToSnomed(std::string_view status) {
  if (status == "active") return "55561003";
  if (status == "inactive") return "73425007";
  if (status == "resolved") return "413322009";
  return "";
}

inline std::string_view SeverityFromSnomed(std::string_view code, std::string_view display) {
  if (code == "255604002") return "mild";
  if (code == "6736007" || code == "371923003") return "moderate";  // moderate, mild to moderate
  if (code == "24484000" || code == "371924009" || code == "399166001") {
    return "severe";  // severe, moderate to severe, fatal
  }
  const std::string lower = AsciiLowerCopy(TrimXmlSpace(display));
  if (lower == "mild") return "mild";
  if (lower == "moderate") return "moderate";
  if (lower == "severe") return "severe";
  return "";
}
inline std::string_view SeverityToSnomed(std::string_view severity) {
  if (severity == "mild") return "255604002";
  if (severity == "moderate") return "6736007";
  if (severity == "severe") return "24484000";
  return "";
}

// Allergy observation value (type of the intolerance) to the category.
inline std::string_view AllergyCategoryFromSnomed(std::string_view code) {
  if (code == "419511003" || code == "416098002" || code == "59037007") return "medication";
  if (code == "418471000" || code == "414285001" || code == "235719002") return "food";
  if (code == "426232007") return "environment";
  return "";
}
struct AllergyType {
  std::string_view code;
  std::string_view display;
};
// The value the writer uses; nullopt when the category has no SNOMED form.
inline std::optional<AllergyType> AllergyCategoryToSnomed(std::string_view category) {
  if (category.empty()) return AllergyType{"420134006", "Propensity to adverse reactions"};
  if (category == "medication") {
    return AllergyType{"419511003", "Propensity to adverse reactions to drug"};
  }
  if (category == "food")
    return AllergyType{"418471000", "Propensity to adverse reactions to food"};
  if (category == "environment") return AllergyType{"426232007", "Environmental allergy"};
  return std::nullopt;
}

// Whether an allergy entry's coded value travels as its observation's value
// and is read back as the same coded value: a code without translations
// that is not the value the writer derives from the category it implies
// (that one the reader leaves implied, so it stays in extras).
inline bool AllergyValueIsNatural(const Coding& v) {
  if (v.code.empty() || !v.translations.empty()) return false;
  const std::optional<AllergyType> implied =
      AllergyCategoryToSnomed(AllergyCategoryFromSnomed(v.code));
  return !(implied.has_value() && implied->code == v.code && v.system == CodeSystemUri(kSnomedOid));
}

// Mood codes of planned statements (Plan of Treatment section).
inline bool IsPlanMood(std::string_view mood) {
  return mood == "INT" || mood == "RQO" || mood == "PRMS" || mood == "PRP" || mood == "APT" ||
         mood == "ARQ" || mood == "GOL";
}

// Entry::mood of a medication or plan from a statement's moodCode, and back
// ("" when the mood has no moodCode of its own: the writer then carries it
// as a field). See Entry::mood.
inline std::string MoodFromHl7(EntryKind kind, std::string_view mood_code) {
  const std::string code = AsciiUpperCopy(mood_code);
  if (kind == EntryKind::kMedication) {
    if (code == "EVN") return "event";
    if (code == "RQO") return "";
    if (code == "INT") return "plan";
    if (code == "PRP") return "proposal";
  } else if (kind == EntryKind::kPlan) {
    if (code == "INT") return "";
    if (code == "RQO") return "order";
    if (code == "PRP") return "proposal";
    if (code == "GOL") return "goal";
    if (code == "PRMS") return "promise";
    if (code == "APT") return "appointment";
    if (code == "ARQ") return "appointment-request";
  }
  return AsciiLowerCopy(code);
}
inline std::string_view MoodToHl7(EntryKind kind, std::string_view mood) {
  for (std::string_view code : {"EVN", "RQO", "INT", "PRP", "GOL", "PRMS", "APT", "ARQ"}) {
    if ((kind == EntryKind::kPlan && code == "EVN") ||
        (kind == EntryKind::kMedication &&
         (code == "GOL" || code == "PRMS" || code == "APT" || code == "ARQ"))) {
      continue;  // not read as that kind's statements
    }
    if (MoodFromHl7(kind, code) == mood) return code;
  }
  return {};
}

// Category the reader gives entries of a kind (the writer writes the field
// only when it differs).
inline std::string_view DerivedCategory(EntryKind kind) {
  switch (kind) {
    case EntryKind::kResult:
      return "laboratory";
    case EntryKind::kVitalSign:
      return "vital-signs";
    case EntryKind::kSocialHistory:
      return "social-history";
    default:
      return "";
  }
}

}  // namespace medvault::interop::ccda
