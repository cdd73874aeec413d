// WriteCcda: the model as a C-CDA R2.1 Continuity of Care Document.
//
// One section per entry kind present (R2.1 templateIds and LOINC codes, a
// narrative table, coded entries). Whatever a kind's C-CDA structure cannot
// carry is written as medvault field observations (see ccda_internal.h), so
// that ParseCcda reads the document back to the same canonical form.
//
// The XML is built as a string with every text and attribute escaped
// (& < > " ' always; tab, line feed and carriage return as character
// references where XML would normalise them). Characters XML 1.0 cannot
// carry (C0 controls other than tab/LF/CR, U+FFFE, U+FFFF) and invalid UTF-8
// are refused with InvalidArgument naming the field, never stripped: a
// silent change would break the round trip without anyone noticing.
//
// Texts are written as they are. ParseCcda trims XML white space at both
// ends of element texts; entry texts with such white space are therefore
// also written as field observations (read exactly), but in the header and
// patient (names, titles, addresses) it does not survive a round trip
// (nothing the reader produces has any).
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/bytes.h"
#include "interop/ccda_internal.h"
#include "interop/interop.h"

namespace medvault::interop {

bool ccda::IsXmlText(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    uint32_t cp = 0;
    const size_t len = DecodeUtf8(s, i, &cp);
    if (len == 0 || (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0xFFFE ||
        cp == 0xFFFF) {
      return false;
    }
    i += len;
  }
  return true;
}

namespace {

using namespace ccda;  // NOLINT(google-build-using-namespace)

// ---------------------------------------------------------------------------
// Validation

class Validator {
 public:
  Status Run(const ClinicalDocument& doc) {
    const DocumentHeader& h = doc.header;
    Check(h.id, "header.id");
    CheckCoding(h.type, "header.type");
    Check(h.title, "header.title");
    Check(h.time, "header.time");
    Check(h.confidentiality, "header.confidentiality");
    for (size_t i = 0; i < h.authors.size(); ++i)
      CheckParty(h.authors[i], Idx("header.authors", i));
    CheckParty(h.custodian, "header.custodian");
    const PatientHeader& p = doc.patient;
    Check(p.id, "patient.id");
    for (size_t i = 0; i < p.names.size(); ++i) {
      const std::string at = Idx("patient.names", i);
      for (const std::string& g : p.names[i].given) Check(g, at + ".given");
      Check(p.names[i].family, at + ".family");
      Check(p.names[i].use, at + ".use");
    }
    Check(p.birth_date, "patient.birth_date");
    Check(p.gender, "patient.gender");
    for (size_t i = 0; i < p.identifiers.size(); ++i) {
      const std::string at = Idx("patient.identifiers", i);
      Check(p.identifiers[i].system, at + ".system");
      Check(p.identifiers[i].value, at + ".value");
      Check(p.identifiers[i].type, at + ".type");
    }
    for (size_t i = 0; i < p.addresses.size(); ++i) {
      const Address& a = p.addresses[i];
      const std::string at = Idx("patient.addresses", i);
      for (const std::string& l : a.lines) Check(l, at + ".lines");
      Check(a.city, at + ".city");
      Check(a.state, at + ".state");
      Check(a.postal_code, at + ".postal_code");
      Check(a.country, at + ".country");
      Check(a.use, at + ".use");
    }
    for (size_t i = 0; i < p.telecoms.size(); ++i) {
      const std::string at = Idx("patient.telecoms", i);
      Check(p.telecoms[i].system, at + ".system");
      Check(p.telecoms[i].value, at + ".value");
      Check(p.telecoms[i].use, at + ".use");
    }
    Check(p.deceased, "patient.deceased");
    CheckCoding(p.marital_status, "patient.marital_status");
    CheckCoding(p.race, "patient.race");
    CheckCoding(p.ethnicity, "patient.ethnicity");
    Check(p.language, "patient.language");
    for (size_t i = 0; i < doc.entries.size() && status_.ok(); ++i) {
      CheckEntry(doc.entries[i], Idx("entries", i));
    }
    return status_;
  }

 private:
  static std::string Idx(std::string_view base, size_t i) {
    return std::string(base) + "[" + std::to_string(i) + "]";
  }

  void Check(std::string_view s, std::string_view where) {
    if (!status_.ok() || IsXmlText(s)) return;
    status_ = Status::InvalidArgument(
        std::string(where) +
        " contains invalid UTF-8 or a character XML cannot carry (a control character, U+FFFE "
        "or U+FFFF)");
  }

  void CheckCoding(const Coding& c, const std::string& where) {
    Check(c.system, where + ".system");
    Check(c.code, where + ".code");
    Check(c.display, where + ".display");
    for (size_t i = 0; i < c.translations.size(); ++i) {
      CheckCoding(c.translations[i], where + ".translations[" + std::to_string(i) + "]");
    }
  }

  void CheckParty(const Party& p, const std::string& where) {
    Check(p.id, where + ".id");
    Check(p.name, where + ".name");
    Check(p.organization, where + ".organization");
    Check(p.time, where + ".time");
  }

  void CheckEntry(const Entry& e, const std::string& at) {
    Check(e.id, at + ".id");
    CheckCoding(e.code, at + ".code");
    Check(e.text, at + ".text");
    Check(e.status, at + ".status");
    Check(e.start, at + ".start");
    Check(e.end, at + ".end");
    if (e.quantity) {
      Check(e.quantity->value, at + ".quantity.value");
      Check(e.quantity->unit, at + ".quantity.unit");
    }
    if (e.value_code) CheckCoding(*e.value_code, at + ".value_code");
    Check(e.value_text, at + ".value_text");
    for (size_t i = 0; i < e.components.size(); ++i) {
      const Component& c = e.components[i];
      const std::string cat = at + Idx(".components", i);
      CheckCoding(c.code, cat + ".code");
      if (c.quantity) {
        Check(c.quantity->value, cat + ".quantity.value");
        Check(c.quantity->unit, cat + ".quantity.unit");
      }
      if (c.value_code) CheckCoding(*c.value_code, cat + ".value_code");
      Check(c.value_text, cat + ".value_text");
    }
    Check(e.category, at + ".category");
    for (size_t i = 0; i < e.reactions.size(); ++i) {
      CheckCoding(e.reactions[i], at + Idx(".reactions", i));
    }
    Check(e.severity, at + ".severity");
    CheckCoding(e.relation, at + ".relation");
    CheckCoding(e.route, at + ".route");
    Check(e.media_type, at + ".media_type");
    Check(e.url, at + ".url");
    CheckCoding(e.body_site, at + ".body_site");
    CheckCoding(e.method, at + ".method");
    for (size_t i = 0; i < e.reasons.size(); ++i) {
      CheckCoding(e.reasons[i], at + Idx(".reasons", i));
    }
    CheckCoding(e.section, at + ".section");
    Check(e.mood, at + ".mood");
    for (size_t i = 0; i < e.members.size(); ++i) Check(e.members[i], at + Idx(".members", i));
  }

  Status status_;
};

// ---------------------------------------------------------------------------
// XML building

class Xml {
 public:
  Xml() { out_.reserve(1 << 16); }

  // "<tag" on a new line (inline: right here, e.g. inside mixed content).
  void Start(std::string_view tag, bool inline_element = false) {
    if (!inline_element) {
      if (!stack_.empty()) stack_.back().has_children = true;
      out_ += '\n';
      out_.append(stack_.size() * 2, ' ');
    }
    out_ += '<';
    out_ += tag;
    pending_ = tag;
  }
  void Attr(std::string_view name, std::string_view value) {
    out_ += ' ';
    out_ += name;
    out_ += "=\"";
    Escape(value, true);
    out_ += '"';
  }
  void AttrIf(std::string_view name, std::string_view value) {
    if (!value.empty()) Attr(name, value);
  }
  // ">" : children or text follow, End() closes.
  void Body() {
    out_ += '>';
    stack_.push_back({pending_, false});
  }
  // "/>"
  void Finish() { out_ += "/>"; }
  void Text(std::string_view text) { Escape(text, false); }
  void End() {
    const Frame f = stack_.back();
    stack_.pop_back();
    if (f.has_children) {
      out_ += '\n';
      out_.append(stack_.size() * 2, ' ');
    }
    out_ += "</";
    out_ += f.tag;
    out_ += '>';
  }
  void Leaf(std::string_view tag, std::string_view text) {
    Start(tag);
    Body();
    Text(text);
    End();
  }
  // <tag nullFlavor="NI"/>
  void Null(std::string_view tag) {
    Start(tag);
    Attr("nullFlavor", "NI");
    Finish();
  }
  void Raw(std::string_view s) { out_ += s; }
  std::string Take() {
    out_ += '\n';
    return std::move(out_);
  }

 private:
  struct Frame {
    std::string_view tag;
    bool has_children;
  };

  void Escape(std::string_view s, bool attribute) {
    for (char c : s) {
      switch (c) {
        case '&':
          out_ += "&amp;";
          break;
        case '<':
          out_ += "&lt;";
          break;
        case '>':
          out_ += "&gt;";
          break;
        case '"':
          out_ += "&quot;";
          break;
        case '\'':
          out_ += "&apos;";
          break;
        case '\r':
          out_ += "&#13;";
          break;
        case '\t':
          if (attribute) {
            out_ += "&#9;";
          } else {
            out_ += c;
          }
          break;
        case '\n':
          if (attribute) {
            out_ += "&#10;";
          } else {
            out_ += c;
          }
          break;
        default:
          out_ += c;
      }
    }
  }

  std::string out_;
  std::vector<Frame> stack_;
  std::string_view pending_;
};

std::string NormTime(std::string_view s) {
  if (s.empty()) return {};
  Result<std::string> r = NormalizeDateTime(s);
  return r.ok() ? std::move(r).value() : std::string();
}

// A model time the reader gets back from the HL7 form unchanged.
bool TimeRoundTrips(std::string_view t) { return t.empty() || NormTime(ToHl7Timestamp(t)) == t; }

// A field observation (see ccda_internal.h).
struct Field {
  enum class Type { kText, kQuantity, kCoding, kCodings, kRange, kTexts };
  std::string_view name;
  Type type = Type::kText;
  std::string_view text;
  const Quantity* quantity = nullptr;
  const Coding* coding = nullptr;
  const std::vector<Coding>* codings = nullptr;
  const ReferenceRange* range = nullptr;
  const std::vector<std::string>* texts = nullptr;
  std::string owned;  // kText made here (base64 of data), used instead of `text`
};

bool NaturalQuantity(EntryKind k) {
  return k == EntryKind::kMedication || k == EntryKind::kImmunization || k == EntryKind::kResult ||
         k == EntryKind::kVitalSign || k == EntryKind::kSocialHistory || k == EntryKind::kStatement;
}
bool NaturalValues(EntryKind k) {
  return k == EntryKind::kResult || k == EntryKind::kVitalSign || k == EntryKind::kSocialHistory ||
         k == EntryKind::kStatement;
}
// A reference range the natural referenceRange element gives back as it is
// (its text is read back trimmed).
bool NaturalRange(EntryKind k, const ReferenceRange& r) {
  return NaturalValues(k) && TrimXmlSpace(r.text).size() == r.text.size();
}
bool NaturalRoute(EntryKind k) {
  return k == EntryKind::kMedication || k == EntryKind::kImmunization;
}
bool NaturalMedia(EntryKind k) {
  return k == EntryKind::kNote || k == EntryKind::kDocumentReference;
}
// Data a note's or document's base64 ED gives back as it is: of a media
// type that is not text (text is read as the narrative), on a note without
// text (an ED holds one or the other).
bool NaturalData(const Entry& e) {
  return NaturalMedia(e.kind) && !e.media_type.empty() && !e.media_type.starts_with("text/") &&
         (e.kind == EntryKind::kDocumentReference || e.text.empty());
}
// Kinds written as an observation or procedure, which have targetSiteCode
// and methodCode (a panel is an organizer, which has neither).
bool NaturalSiteAndMethod(EntryKind k, bool panel) {
  return !panel && (k == EntryKind::kProblem || k == EntryKind::kResult ||
                    k == EntryKind::kVitalSign || k == EntryKind::kSocialHistory ||
                    k == EntryKind::kProcedure || k == EntryKind::kStatement);
}
// Kinds whose reader takes RSON observations and encounter diagnosis acts
// as reasons (ReadQualifiers), when every reason has something to read.
bool NaturalReasons(const Entry& e, bool panel) {
  const EntryKind k = e.kind;
  if (panel || k == EntryKind::kAllergy || k == EntryKind::kFamilyHistory ||
      k == EntryKind::kDocumentReference || k == EntryKind::kNote || k == EntryKind::kStatement) {
    return false;
  }
  for (const Coding& r : e.reasons) {
    if (r.code.empty() && r.translations.empty()) return false;
  }
  return true;
}

// What the entry's C-CDA structure cannot carry. A panel (a result or vital
// sign with members, written as an organizer) carries no value, range or
// qualifier of its own naturally; its members are the writer's business.
std::vector<Field> FieldsOf(const Entry& e, bool panel = false) {
  std::vector<Field> f;
  const EntryKind k = e.kind;
  auto text = [&](std::string_view name, std::string_view value) {
    Field x;
    x.name = name;
    x.text = value;
    f.push_back(x);
  };
  if (!TimeRoundTrips(e.start)) text("start", e.start);
  if (!TimeRoundTrips(e.end)) text("end", e.end);
  // Element texts and references are read back trimmed.
  auto padded = [](std::string_view s) { return TrimXmlSpace(s).size() != s.size(); };
  if (padded(e.text)) text("text", e.text);
  if (NaturalValues(k) && !panel && padded(e.value_text)) text("value_text", e.value_text);
  if (NaturalMedia(k) && padded(e.url)) text("url", e.url);
  // statusCode is read back trimmed and lower-cased.
  if (e.status != AsciiLowerCopy(TrimXmlSpace(e.status))) text("status", e.status);
  if (e.quantity && (!NaturalQuantity(k) || panel)) {
    Field x;
    x.name = "quantity";
    x.type = Field::Type::kQuantity;
    x.quantity = &*e.quantity;
    f.push_back(x);
  }
  // An allergy's coded value is its observation's value (its type).
  if (e.value_code && (!NaturalValues(k) || panel) &&
      (k != EntryKind::kAllergy || !AllergyValueIsNatural(*e.value_code))) {
    Field x;
    x.name = "value_code";
    x.type = Field::Type::kCoding;
    x.coding = &*e.value_code;
    f.push_back(x);
  }
  if (!e.value_text.empty() && (!NaturalValues(k) || panel)) text("value_text", e.value_text);
  if (e.reference_range && !e.reference_range->empty() &&
      (!NaturalRange(k, *e.reference_range) || panel)) {
    Field x;
    x.name = "reference_range";
    x.type = Field::Type::kRange;
    x.range = &*e.reference_range;
    f.push_back(x);
  }
  if (k == EntryKind::kAllergy) {
    // The reader derives the category from the value it finds.
    const std::string_view read_back = e.value_code && AllergyValueIsNatural(*e.value_code)
                                           ? AllergyCategoryFromSnomed(e.value_code->code)
                                           : std::string_view(e.category);
    if (!AllergyCategoryToSnomed(e.category) || read_back != e.category) {
      text("category", e.category);
    }
  } else if (e.category != DerivedCategory(k)) {
    text("category", e.category);
  }
  bool reactions_natural = k == EntryKind::kAllergy;
  for (const Coding& r : e.reactions) reactions_natural = reactions_natural && !r.empty();
  if (!e.reactions.empty() && !reactions_natural) {
    Field x;
    x.name = "reactions";
    x.type = Field::Type::kCodings;
    x.codings = &e.reactions;
    f.push_back(x);
  }
  if (!e.severity.empty() && ((k != EntryKind::kAllergy && k != EntryKind::kStatement) ||
                              SeverityToSnomed(e.severity).empty())) {
    text("severity", e.severity);
  }
  if (!e.relation.empty() && k != EntryKind::kFamilyHistory) {
    Field x;
    x.name = "relation";
    x.type = Field::Type::kCoding;
    x.coding = &e.relation;
    f.push_back(x);
  }
  if (!e.route.empty() && !NaturalRoute(k)) {
    Field x;
    x.name = "route";
    x.type = Field::Type::kCoding;
    x.coding = &e.route;
    f.push_back(x);
  }
  if (!NaturalMedia(k)) {
    if (!e.media_type.empty()) text("media_type", e.media_type);
    if (!e.url.empty()) text("url", e.url);
  }
  auto coding = [&](std::string_view name, const Coding& c) {
    Field x;
    x.name = name;
    x.type = Field::Type::kCoding;
    x.coding = &c;
    f.push_back(x);
  };
  if (!NaturalSiteAndMethod(k, panel)) {
    if (!e.body_site.empty()) coding("body_site", e.body_site);
    if (!e.method.empty()) coding("method", e.method);
  }
  if (!e.reasons.empty() && !NaturalReasons(e, panel)) {
    Field x;
    x.name = "reasons";
    x.type = Field::Type::kCodings;
    x.codings = &e.reasons;
    f.push_back(x);
  }
  // A statement's section is its C-CDA section's code, read back without
  // translations.
  if (!e.mood.empty() && MoodToHl7(k, e.mood).empty()) text("mood", e.mood);
  if (!e.data.empty() && !NaturalData(e)) {
    Field x;
    x.name = "data";
    x.owned = ToBase64(AsBytes(e.data));
    f.push_back(std::move(x));
  }
  if (!e.section.empty() && (k != EntryKind::kStatement || !e.section.translations.empty())) {
    coding("section", e.section);
  }
  // Statements are written side by side, their nesting as this field;
  // panels' members are decided by the writer (Writer::PlanPanels).
  if (!e.members.empty() && !((k == EntryKind::kResult || k == EntryKind::kVitalSign) && panel)) {
    Field x;
    x.name = "members";
    x.type = Field::Type::kTexts;
    x.texts = &e.members;
    f.push_back(x);
  }
  return f;
}

Field MembersField(const Entry& e) {
  Field x;
  x.name = "members";
  x.type = Field::Type::kTexts;
  x.texts = &e.members;
  return x;
}

struct SectionSpec {
  EntryKind kind;
  std::string_view template_root;
  std::string_view template_ext;
  std::string_view code;
  std::string_view code_system;
  std::string_view display;
  std::string_view title;
};

constexpr SectionSpec kSections[] = {
    {EntryKind::kProblem, "2.16.840.1.113883.10.20.22.2.5.1", "2015-08-01", "11450-4", kLoincOid,
     "Problem list - Reported", "Problems"},
    {EntryKind::kAllergy, "2.16.840.1.113883.10.20.22.2.6.1", "2015-08-01", "48765-2", kLoincOid,
     "Allergies and adverse reactions Document", "Allergies and Intolerances"},
    {EntryKind::kMedication, "2.16.840.1.113883.10.20.22.2.1.1", "2014-06-09", "10160-0", kLoincOid,
     "History of Medication use Narrative", "Medications"},
    {EntryKind::kResult, "2.16.840.1.113883.10.20.22.2.3.1", "2015-08-01", "30954-2", kLoincOid,
     "Relevant diagnostic tests/laboratory data Narrative", "Results"},
    {EntryKind::kVitalSign, "2.16.840.1.113883.10.20.22.2.4.1", "2015-08-01", "8716-3", kLoincOid,
     "Vital signs", "Vital Signs"},
    {EntryKind::kSocialHistory, "2.16.840.1.113883.10.20.22.2.17", "2015-08-01", "29762-2",
     kLoincOid, "Social history Narrative", "Social History"},
    {EntryKind::kFamilyHistory, "2.16.840.1.113883.10.20.22.2.15", "2015-08-01", "10157-6",
     kLoincOid, "History of family member diseases Narrative", "Family History"},
    {EntryKind::kProcedure, "2.16.840.1.113883.10.20.22.2.7.1", "2014-06-09", "47519-4", kLoincOid,
     "History of Procedures Document", "Procedures"},
    {EntryKind::kImmunization, "2.16.840.1.113883.10.20.22.2.2.1", "2015-08-01", "11369-6",
     kLoincOid, "History of Immunization Narrative", "Immunizations"},
    {EntryKind::kEncounter, "2.16.840.1.113883.10.20.22.2.22.1", "2015-08-01", "46240-8", kLoincOid,
     "History of Hospitalizations+Outpatient visits Narrative", "Encounters"},
    {EntryKind::kPlan, "2.16.840.1.113883.10.20.22.2.10", "2014-06-09", "18776-5", kLoincOid,
     "Plan of care note", "Plan of Treatment"},
    {EntryKind::kDocumentReference, kMedvaultIdRoot, kDocumentsTemplate, "documents",
     kFieldCodeSystem, "Documents", "Documents"},
    {EntryKind::kNote, "2.16.840.1.113883.10.20.22.2.65", "2016-11-01", "34109-9", kLoincOid,
     "Note", "Notes"},
    {EntryKind::kResource, kMedvaultIdRoot, kResourcesTemplate, "resources", kFieldCodeSystem,
     "Other FHIR resources", "Other FHIR resources"},
};

class Writer {
 public:
  explicit Writer(const ClinicalDocument& doc) : doc_(doc) {}

  std::string Run() {
    x_.Raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    x_.Start("ClinicalDocument");
    x_.Attr("xmlns", kHl7Namespace);
    x_.Attr("xmlns:xsi", kXsiNamespace);
    x_.Attr("xmlns:sdtc", kSdtcNamespace);
    x_.Body();
    Header();
    x_.Start("component");
    x_.Body();
    x_.Start("structuredBody");
    x_.Body();
    PlanPanels();
    for (const SectionSpec& spec : kSections) Section(spec);
    StatementSections();
    x_.End();
    x_.End();
    x_.End();
    return x_.Take();
  }

 private:
  // ---- small pieces
  void TemplateId(std::string_view root, std::string_view ext = {}) {
    x_.Start("templateId");
    x_.Attr("root", root);
    x_.AttrIf("extension", ext);
    x_.Finish();
  }

  void Id(std::string_view model_id) {
    const IdParts p = SplitModelId(model_id);
    if (p.root.empty()) {
      x_.Null("id");
      return;
    }
    x_.Start("id");
    x_.Attr("root", p.root);
    if (p.has_extension) x_.Attr("extension", p.extension);
    x_.Finish();
  }

  void SystemAttrs(std::string_view system) {
    if (system.empty()) return;
    const std::string oid = CodeSystemOid(system);
    if (!oid.empty() && CodeSystemUri(oid) == system) {
      x_.Attr("codeSystem", oid);
    } else {
      x_.Attr("codeSystem", kUriCodeSystem);
      x_.Attr("codeSystemName", system);
    }
  }

  // A coded element; `text` as originalText. value elements (xsi_type set)
  // never get a nullFlavor: the reader skips null values.
  void Code(std::string_view tag, const Coding& c, std::string_view text = {},
            std::string_view xsi_type = {}) {
    x_.Start(tag);
    if (!xsi_type.empty()) x_.Attr("xsi:type", xsi_type);
    if (c.code.empty() && xsi_type.empty()) x_.Attr("nullFlavor", "UNK");
    x_.AttrIf("code", c.code);
    SystemAttrs(c.system);
    x_.AttrIf("displayName", c.display);
    if (text.empty() && c.translations.empty()) {
      x_.Finish();
      return;
    }
    x_.Body();
    // CD content order: originalText, then translations.
    if (!text.empty()) x_.Leaf("originalText", text);
    for (const Coding& tr : c.translations) Code("translation", tr);
    x_.End();
  }

  void SimpleCode(std::string_view tag, std::string_view code, std::string_view system,
                  std::string_view display) {
    x_.Start(tag);
    x_.Attr("code", code);
    x_.Attr("codeSystem", system);
    x_.AttrIf("displayName", display);
    x_.Finish();
  }

  void StatusCode(std::string_view status) {
    if (status.empty()) {
      x_.Null("statusCode");
      return;
    }
    x_.Start("statusCode");
    x_.Attr("code", status);
    x_.Finish();
  }

  void TimeBound(std::string_view tag, std::string_view t) {
    x_.Start(tag);
    if (t.empty()) {
      x_.Attr("nullFlavor", "NI");
    } else {
      x_.Attr("value", ToHl7Timestamp(t));
    }
    x_.Finish();
  }

  // effectiveTime as an interval; times that do not round-trip are left to
  // field observations.
  void EffectiveTime(const Entry& e, bool ivl_type = false) {
    const std::string_view start = TimeRoundTrips(e.start) ? e.start : std::string_view();
    const std::string_view end = TimeRoundTrips(e.end) ? e.end : std::string_view();
    x_.Start("effectiveTime");
    if (ivl_type) x_.Attr("xsi:type", "IVL_TS");
    if (start.empty() && end.empty()) {
      x_.Attr("nullFlavor", "NI");
      x_.Finish();
      return;
    }
    x_.Body();
    TimeBound("low", start);
    if (!end.empty()) TimeBound("high", end);
    x_.End();
  }

  void QuantityAttrs(const Quantity& q) {
    x_.AttrIf("value", q.value);
    x_.AttrIf("unit", q.unit);
  }

  void Values(const std::optional<Quantity>& q, const std::optional<Coding>& vc,
              std::string_view vt) {
    if (q) {
      x_.Start("value");
      x_.Attr("xsi:type", "PQ");
      QuantityAttrs(*q);
      x_.Finish();
    }
    // An interpretation beside a quantity is an interpretationCode (after
    // the values, as the schema orders them); any other coded value a value.
    const bool interpretation = q && vc && vc->system == vocab::kInterpretationSystem;
    if (vc && !interpretation) Code("value", *vc, {}, "CD");
    if (!vt.empty()) {
      x_.Start("value");
      x_.Attr("xsi:type", "ST");
      x_.Body();
      x_.Text(vt);
      x_.End();
    }
    if (interpretation) Code("interpretationCode", *vc);
  }

  // <referenceRange><observationRange><text/><value xsi:type="IVL_PQ">
  // <low/><high/></value></observationRange></referenceRange>: last in an
  // observation, as the schema orders it.
  void Range(const ReferenceRange& r) {
    if (r.empty()) return;
    x_.Start("referenceRange");
    x_.Body();
    x_.Start("observationRange");
    x_.Body();
    if (!r.text.empty()) x_.Leaf("text", r.text);
    if (r.low || r.high) {
      x_.Start("value");
      x_.Attr("xsi:type", "IVL_PQ");
      x_.Body();
      for (const auto* bound : {&r.low, &r.high}) {
        if (!*bound) continue;
        x_.Start(bound == &r.low ? "low" : "high");
        QuantityAttrs(**bound);
        x_.Finish();
      }
      x_.End();
    }
    x_.End();
    x_.End();
  }

  void Completed() { StatusCode("completed"); }

  void ObservationOpen(std::string_view mood = "EVN") {
    x_.Start("observation");
    x_.Attr("classCode", "OBS");
    x_.Attr("moodCode", mood);
    x_.Body();
  }

  void EntryRelationshipOpen(std::string_view type_code, bool inversion = false) {
    x_.Start("entryRelationship");
    x_.Attr("typeCode", type_code);
    if (inversion) x_.Attr("inversionInd", "true");
    x_.Body();
  }

  // Components and field observations (ccda_internal.h).
  void Extras(const Entry& e, const std::vector<Field>& fields, bool in_organizer = false) {
    if (!e.reasons.empty() && NaturalReasons(e, in_organizer)) Reasons(e);
    // An organizer has components, not entry relationships.
    auto open = [&]() {
      if (in_organizer) {
        x_.Start("component");
        x_.Body();
      } else {
        EntryRelationshipOpen("COMP");
      }
    };
    for (const Component& c : e.components) {
      open();
      ObservationOpen();
      TemplateId(kMedvaultIdRoot, kComponentTemplate);
      Code("code", c.code);
      Completed();
      Values(c.quantity, c.value_code, c.value_text);
      x_.End();
      x_.End();
    }
    for (const Field& f : fields) {
      open();
      ObservationOpen();
      TemplateId(kMedvaultIdRoot, kFieldTemplate);
      x_.Start("code");
      x_.Attr("code", f.name);
      x_.Attr("codeSystem", kFieldCodeSystem);
      x_.Attr("displayName", "medvault field");
      x_.Finish();
      Completed();
      switch (f.type) {
        case Field::Type::kText:
          x_.Start("value");
          x_.Attr("xsi:type", "ST");
          x_.Body();
          x_.Text(f.owned.empty() ? f.text : std::string_view(f.owned));
          x_.End();
          break;
        case Field::Type::kQuantity:
          x_.Start("value");
          x_.Attr("xsi:type", "PQ");
          QuantityAttrs(*f.quantity);
          x_.Finish();
          break;
        case Field::Type::kCoding:
          Code("value", *f.coding, {}, "CD");
          break;
        case Field::Type::kCodings:
          for (const Coding& c : *f.codings) Code("value", c, {}, "CD");
          break;
        case Field::Type::kRange:
          Range(*f.range);  // as the field observation's own referenceRange
          break;
        case Field::Type::kTexts:
          for (const std::string& t : *f.texts) {
            x_.Start("value");
            x_.Attr("xsi:type", "ST");
            x_.Body();
            x_.Text(t);
            x_.End();
          }
          break;
      }
      x_.End();
      x_.End();
    }
  }

  // Reasons: an encounter's as encounter diagnosis acts, the others' as
  // indication (RSON) observations; ReadQualifiers reads both.
  void Reasons(const Entry& e) {
    for (const Coding& r : e.reasons) {
      if (e.kind == EntryKind::kEncounter) {
        EntryRelationshipOpen("REFR");
        x_.Start("act");
        x_.Attr("classCode", "ACT");
        x_.Attr("moodCode", "EVN");
        x_.Body();
        TemplateId(kEncounterDiagnosisTemplate);
        TemplateId(kEncounterDiagnosisTemplate, "2015-08-01");
        SimpleCode("code", kEncounterDiagnosisLoinc, kLoincOid, "Encounter diagnosis");
        ReasonObservation("SUBJ", "2.16.840.1.113883.10.20.22.4.4", "2015-08-01", "282291009",
                          kSnomedOid, "Diagnosis", r);
        x_.End();  // act
        x_.End();  // entryRelationship
      } else {
        ReasonObservation("RSON", "2.16.840.1.113883.10.20.22.4.19", "2014-06-09", "75321-0",
                          kLoincOid, "Clinical finding", r);
      }
    }
  }

  // One coded reason in its own entry relationship: a problem observation
  // (of an encounter diagnosis) or an indication.
  void ReasonObservation(std::string_view type_code, std::string_view template_root,
                         std::string_view template_ext, std::string_view code,
                         std::string_view code_system, std::string_view display,
                         const Coding& reason) {
    EntryRelationshipOpen(type_code);
    ObservationOpen();
    TemplateId(template_root);
    TemplateId(template_root, template_ext);
    x_.Null("id");
    SimpleCode("code", code, code_system, display);
    Completed();
    Code("value", reason, {}, "CD");
    x_.End();  // observation
    x_.End();  // entryRelationship
  }

  // methodCode and targetSiteCode, in the order CDA wants them.
  void SiteAndMethod(const Entry& e) {
    if (!e.method.empty()) Code("methodCode", e.method);
    if (!e.body_site.empty()) Code("targetSiteCode", e.body_site);
  }

  // ---- header
  void Header() {
    const DocumentHeader& h = doc_.header;
    x_.Start("realmCode");
    x_.Attr("code", "US");
    x_.Finish();
    x_.Start("typeId");
    x_.Attr("root", "2.16.840.1.113883.1.3");
    x_.Attr("extension", "POCD_HD000040");
    x_.Finish();
    TemplateId("2.16.840.1.113883.10.20.22.1.1", "2015-08-01");
    TemplateId("2.16.840.1.113883.10.20.22.1.2", "2015-08-01");
    const bool untyped = h.type.empty();
    if (untyped) TemplateId(kMedvaultIdRoot, kUntypedTemplate);
    Id(h.id);
    if (untyped) {
      SimpleCode("code", "34133-9", kLoincOid, "Summary of episode note");
    } else {
      Code("code", h.type);
    }
    if (!h.title.empty()) x_.Leaf("title", h.title);
    if (h.time.empty()) {
      x_.Null("effectiveTime");
    } else {
      x_.Start("effectiveTime");
      x_.Attr("value", ToHl7Timestamp(h.time));
      x_.Finish();
    }
    if (h.confidentiality.empty()) {
      x_.Null("confidentialityCode");
    } else {
      SimpleCode("confidentialityCode", h.confidentiality, kConfidentialityOid, {});
    }
    x_.Start("languageCode");
    x_.Attr("code", "en-US");
    x_.Finish();
    RecordTarget();
    for (const Party& a : h.authors) Author(a);
    Custodian(h.custodian);
  }

  void RecordTarget() {
    x_.Start("recordTarget");
    x_.Body();
    x_.Start("patientRole");
    if (!doc_.has_patient) {
      x_.Attr("nullFlavor", "NI");
      x_.Body();
      x_.Null("id");
      x_.End();
      x_.End();
      return;
    }
    x_.Body();
    const PatientHeader& p = doc_.patient;
    // Identifiers as the reader maps them back; what has no C-CDA form goes
    // under kIdentifierRoot.
    struct Ii {
      std::string root, extension, authority;
    };
    std::vector<Ii> ids;
    for (const Identifier& ident : p.identifiers) {
      const std::string oid = CodeSystemOid(ident.system);
      const bool natural = !oid.empty() && oid != kMedvaultIdRoot && oid != kIdentifierRoot &&
                           CodeSystemUri(oid) == ident.system &&
                           ident.type == (oid == kSsnOid ? "SS" : "");
      if (natural) {
        ids.push_back({oid, ident.value, {}});
      } else {
        ids.push_back({std::string(kIdentifierRoot), ident.value, ident.type + "|" + ident.system});
      }
    }
    const std::string derived = ids.empty() ? std::string() : JoinId(ids[0].root, ids[0].extension);
    if (derived != p.id) {
      x_.Start("id");
      x_.Attr("root", kMedvaultIdRoot);
      x_.AttrIf("extension", p.id);
      x_.Finish();
    }
    for (const Ii& ii : ids) {
      x_.Start("id");
      x_.Attr("root", ii.root);
      x_.AttrIf("extension", ii.extension);
      x_.AttrIf("assigningAuthorityName", ii.authority);
      x_.Finish();
    }
    if (ids.empty() && p.id.empty()) x_.Null("id");
    for (const Address& a : p.addresses) {
      x_.Start("addr");
      if (!a.use.empty()) x_.Attr("use", AddressUseToHl7(a.use));
      x_.Body();
      for (const std::string& line : a.lines) x_.Leaf("streetAddressLine", line);
      if (!a.city.empty()) x_.Leaf("city", a.city);
      if (!a.state.empty()) x_.Leaf("state", a.state);
      if (!a.postal_code.empty()) x_.Leaf("postalCode", a.postal_code);
      if (!a.country.empty()) x_.Leaf("country", a.country);
      x_.End();
    }
    for (const Telecom& t : p.telecoms) {
      x_.Start("telecom");
      if (!t.use.empty()) x_.Attr("use", AddressUseToHl7(t.use));
      std::string value;
      if (t.system == "phone") {
        value = "tel:" + t.value;
      } else if (t.system == "email") {
        value = "mailto:" + t.value;
      } else if (t.system == "fax" || t.system == "sms") {
        value = t.system + ":" + t.value;
      } else {
        value = t.value;
      }
      x_.Attr("value", value);
      x_.Finish();
    }
    x_.Start("patient");
    x_.Body();
    for (const HumanName& n : p.names) {
      x_.Start("name");
      if (!n.use.empty()) x_.Attr("use", NameUseToHl7(n.use));
      if (n.given.empty() && n.family.empty()) {
        x_.Finish();
        continue;
      }
      x_.Body();
      for (const std::string& g : n.given) x_.Leaf("given", g);
      if (!n.family.empty()) x_.Leaf("family", n.family);
      x_.End();
    }
    if (!p.gender.empty()) {
      x_.Start("administrativeGenderCode");
      if (p.gender == "male" || p.gender == "female" || p.gender == "other") {
        x_.Attr("code", p.gender == "male" ? "M" : (p.gender == "female" ? "F" : "UN"));
        x_.Attr("codeSystem", kGenderOid);
      } else {
        x_.Attr("nullFlavor", "UNK");
      }
      x_.Finish();
    }
    if (!p.birth_date.empty()) {
      x_.Start("birthTime");
      x_.Attr("value", ToHl7Timestamp(p.birth_date));
      x_.Finish();
    }
    if (!p.deceased.empty()) {
      x_.Start("sdtc:deceasedInd");
      x_.Attr("value", "true");
      x_.Finish();
      if (p.deceased != "true") {
        x_.Start("sdtc:deceasedTime");
        x_.Attr("value", ToHl7Timestamp(p.deceased));
        x_.Finish();
      }
    }
    if (!p.marital_status.empty()) Code("maritalStatusCode", p.marital_status);
    if (!p.race.empty()) Code("raceCode", p.race);
    if (!p.ethnicity.empty()) Code("ethnicGroupCode", p.ethnicity);
    if (!p.language.empty()) {
      x_.Start("languageCommunication");
      x_.Body();
      x_.Start("languageCode");
      x_.Attr("code", p.language);
      x_.Finish();
      x_.End();
    }
    x_.End();  // patient
    x_.End();  // patientRole
    x_.End();  // recordTarget
  }

  void Author(const Party& a) {
    x_.Start("author");
    x_.Body();
    if (a.time.empty()) {
      x_.Null("time");
    } else {
      x_.Start("time");
      x_.Attr("value", ToHl7Timestamp(a.time));
      x_.Finish();
    }
    x_.Start("assignedAuthor");
    x_.Body();
    Id(a.id);
    if (!a.name.empty()) {
      x_.Start("assignedPerson");
      x_.Body();
      x_.Leaf("name", a.name);
      x_.End();
    }
    if (!a.organization.empty()) {
      x_.Start("representedOrganization");
      x_.Body();
      x_.Leaf("name", a.organization);
      x_.End();
    }
    x_.End();
    x_.End();
  }

  void Custodian(const Party& c) {
    x_.Start("custodian");
    x_.Body();
    x_.Start("assignedCustodian");
    x_.Body();
    x_.Start("representedCustodianOrganization");
    x_.Body();
    Id(c.id);
    if (!c.organization.empty()) x_.Leaf("name", c.organization);
    x_.End();
    x_.End();
    x_.End();
  }

  // ---- body
  // Panels: a result or vital sign with members is written as an organizer
  // around the member observations of its own kind that are no panels and
  // no other panel's (the first panel naming one gets it); those are then
  // not written on their own. A panel whose members are not all nested so
  // also carries them as a field.
  void PlanPanels() {
    std::map<std::string_view, const Entry*> by_id;  // ordered: ids are hostile input
    for (const Entry& e : doc_.entries) {
      if (e.members.empty()) by_id.emplace(e.id, &e);
    }
    for (const Entry& e : doc_.entries) {
      if (e.members.empty() || (e.kind != EntryKind::kResult && e.kind != EntryKind::kVitalSign)) {
        continue;
      }
      PanelPlan plan;
      plan.natural = true;
      for (const std::string& id : e.members) {
        auto it = by_id.find(id);
        if (it == by_id.end() || it->second->kind != e.kind || nested_.count(it->second) > 0 ||
            it->second == &e) {
          plan.natural = false;
          continue;
        }
        nested_.insert(it->second);
        plan.members.push_back(it->second);
      }
      panels_.emplace(&e, std::move(plan));
    }
  }

  // One section per distinct section of the statements (EntryKind::kStatement),
  // in the order they first appear, marked as medvault's (ccda_internal.h).
  void StatementSections() {
    // One pass (a document may hold many statements of many sections).
    std::vector<std::vector<const Entry*>> sections;
    std::map<std::tuple<std::string_view, std::string_view, std::string_view>, size_t> index;
    for (const Entry& e : doc_.entries) {
      if (e.kind != EntryKind::kStatement) continue;
      // Sections are read back without translations: they are not a key.
      const auto key =
          std::make_tuple(std::string_view(e.section.system), std::string_view(e.section.code),
                          std::string_view(e.section.display));
      auto [it, added] = index.emplace(key, sections.size());
      if (added) sections.emplace_back();
      sections[it->second].push_back(&e);
    }
    for (const std::vector<const Entry*>& entries : sections) {
      Coding section = entries.front()->section;
      section.translations.clear();
      x_.Start("component");
      x_.Body();
      x_.Start("section");
      x_.Body();
      TemplateId(kMedvaultIdRoot, kStatementsTemplate);
      Code("code", section);
      if (!section.display.empty()) x_.Leaf("title", section.display);
      Narrative(entries);
      for (const Entry* e : entries) WriteEntry(*e);
      x_.End();
      x_.End();
    }
  }

  void Section(const SectionSpec& spec) {
    std::vector<const Entry*> entries;
    for (const Entry& e : doc_.entries) {
      if (e.kind == spec.kind && nested_.count(&e) == 0) entries.push_back(&e);
    }
    if (entries.empty()) return;
    x_.Start("component");
    x_.Body();
    x_.Start("section");
    x_.Body();
    TemplateId(spec.template_root);
    TemplateId(spec.template_root, spec.template_ext);
    SimpleCode("code", spec.code, spec.code_system, spec.display);
    x_.Leaf("title", spec.title);
    Narrative(entries);
    for (const Entry* e : entries) WriteEntry(*e);
    x_.End();
    x_.End();
  }

  static std::string ValueString(const Entry& e) {
    if (e.quantity) {
      std::string s = e.quantity->value;
      if (!e.quantity->unit.empty()) s += " " + e.quantity->unit;
      return s;
    }
    if (e.value_code) {
      return e.value_code->display.empty() ? e.value_code->code : e.value_code->display;
    }
    return e.value_text;
  }

  void Narrative(const std::vector<const Entry*>& entries) {
    x_.Start("text");
    x_.Body();
    x_.Start("table");
    x_.Attr("border", "1");
    x_.Attr("width", "100%");
    x_.Body();
    x_.Start("thead");
    x_.Body();
    x_.Start("tr");
    x_.Body();
    for (std::string_view h : {"Item", "Code", "Status", "Date", "Value", "Text"}) x_.Leaf("th", h);
    x_.End();
    x_.End();
    x_.Start("tbody");
    x_.Body();
    for (const Entry* e : entries) {
      x_.Start("tr");
      x_.Body();
      x_.Leaf("td", e->code.display.empty() ? std::string_view(e->code.code)
                                            : std::string_view(e->code.display));
      x_.Leaf("td", e->code.code.empty() ? std::string() : e->code.system + " " + e->code.code);
      x_.Leaf("td", e->status);
      x_.Leaf("td", e->end.empty() ? e->start : e->start + " - " + e->end);
      x_.Leaf("td", ValueString(*e));
      x_.Leaf("td", e->kind == EntryKind::kResource ? std::string_view() : e->text);
      x_.End();
    }
    x_.End();
    x_.End();
    x_.End();
  }

  void WriteEntry(const Entry& e) {
    const auto panel = panels_.find(&e);
    const bool is_panel = panel != panels_.end();
    std::vector<Field> fields = FieldsOf(e, is_panel);
    x_.Start("entry");
    x_.Attr("typeCode", "DRIV");
    x_.Body();
    if (is_panel) {
      if (!panel->second.natural) fields.push_back(MembersField(e));
      Panel(e, fields, panel->second.members);
      x_.End();
      return;
    }
    switch (e.kind) {
      case EntryKind::kProblem:
        Problem(e, fields);
        break;
      case EntryKind::kAllergy:
        Allergy(e, fields);
        break;
      case EntryKind::kMedication:
      case EntryKind::kImmunization:
        Substance(e, fields);
        break;
      case EntryKind::kResult:
      case EntryKind::kVitalSign:
        ResultOrganizer(e, fields);
        break;
      case EntryKind::kSocialHistory:
        ObservationEntry(e, fields, "2.16.840.1.113883.10.20.22.4.38", "2015-08-01");
        break;
      case EntryKind::kFamilyHistory:
        Family(e, fields);
        break;
      case EntryKind::kProcedure:
        Simple(e, fields, "procedure", "PROC", "EVN", "2.16.840.1.113883.10.20.22.4.14",
               "2014-06-09");
        break;
      case EntryKind::kEncounter:
        Simple(e, fields, "encounter", "ENC", "EVN", "2.16.840.1.113883.10.20.22.4.49",
               "2015-08-01");
        break;
      case EntryKind::kPlan: {
        const std::string_view mood = MoodToHl7(e.kind, e.mood);
        Simple(e, fields, "act", "ACT", mood.empty() ? "INT" : mood,
               "2.16.840.1.113883.10.20.22.4.39", "2014-06-09");
        break;
      }
      case EntryKind::kDocumentReference:
        Document(e, fields);
        break;
      case EntryKind::kNote:
        Note(e, fields);
        break;
      case EntryKind::kStatement:
        Statement(e, fields);
        break;
      case EntryKind::kResource:
        ResourceAct(e, fields);
        break;
    }
    x_.End();
  }

  // A statement: an observation (a goal in goal mood) with its values,
  // qualifiers and fields.
  void Statement(const Entry& e, const std::vector<Field>& fields) {
    const bool goal = e.section.system == vocab::kLoincSystem && e.section.code == "61146-7";
    ObservationOpen(goal ? "GOL" : "EVN");
    Id(e.id);
    Code("code", e.code, e.text);
    StatusCode(e.status);
    EffectiveTime(e);
    Values(e.quantity, e.value_code, e.value_text);
    SiteAndMethod(e);
    if (!e.severity.empty() && !SeverityToSnomed(e.severity).empty()) {
      EntryRelationshipOpen("SUBJ", true);
      ObservationOpen();
      TemplateId(kSeverityTemplate);
      SimpleCode("code", "SEV", kActCodeOid, "Severity");
      Completed();
      x_.Start("value");
      x_.Attr("xsi:type", "CD");
      x_.Attr("code", SeverityToSnomed(e.severity));
      x_.Attr("codeSystem", kSnomedOid);
      x_.Finish();
      x_.End();
      x_.End();
    }
    Extras(e, fields);
    if (e.reference_range && NaturalRange(e.kind, *e.reference_range)) Range(*e.reference_range);
    x_.End();
  }

  // The start of a result organizer (BATTERY) or vital-signs organizer
  // (CLUSTER) with its templates.
  void OrganizerOpen(bool vital) {
    x_.Start("organizer");
    x_.Attr("classCode", vital ? "CLUSTER" : "BATTERY");
    x_.Attr("moodCode", "EVN");
    x_.Body();
    const std::string_view org =
        vital ? "2.16.840.1.113883.10.20.22.4.26" : "2.16.840.1.113883.10.20.22.4.1";
    TemplateId(org);
    TemplateId(org, "2015-08-01");
  }

  // A resource kept verbatim: an act named by its type; the resource itself
  // only as a field, never where a person reads (originalText, narrative).
  void ResourceAct(const Entry& e, std::vector<Field> fields) {
    if (!e.text.empty() && TrimXmlSpace(e.text).size() == e.text.size()) {
      Field x;
      x.name = "text";
      x.text = e.text;
      fields.push_back(x);  // (a padded text is a field already)
    }
    Entry named = e;
    named.text.clear();
    Simple(named, fields, "act", "ACT", "EVN", kMedvaultIdRoot, kResourcesTemplate);
  }

  // A result panel or vital-signs organizer around its nested members.
  void Panel(const Entry& e, const std::vector<Field>& fields,
             const std::vector<const Entry*>& members) {
    const bool vital = e.kind == EntryKind::kVitalSign;
    OrganizerOpen(vital);
    Id(e.id);
    Code("code", e.code, e.text);
    StatusCode(e.status);
    EffectiveTime(e);
    const bool has_time = !e.start.empty() || !e.end.empty();
    for (const Entry* m : members) {
      std::vector<Field> member_fields = FieldsOf(*m);
      // A member without a time would take the organizer's when read.
      if (has_time && m->start.empty() && m->end.empty()) {
        Field empty_start;
        empty_start.name = "start";
        member_fields.push_back(empty_start);
      }
      x_.Start("component");
      x_.Body();
      ResultObservation(
          *m, member_fields,
          vital ? "2.16.840.1.113883.10.20.22.4.27" : "2.16.840.1.113883.10.20.22.4.2",
          "2015-08-01");
      x_.End();
    }
    Extras(e, fields, /*in_organizer=*/true);
    x_.End();
  }

  // Concern act around a problem or allergy observation.
  void ConcernOpen(std::string_view template_root, std::string_view template_ext,
                   std::string_view status) {
    x_.Start("act");
    x_.Attr("classCode", "ACT");
    x_.Attr("moodCode", "EVN");
    x_.Body();
    TemplateId(template_root);
    TemplateId(template_root, template_ext);
    x_.Null("id");
    SimpleCode("code", "CONC", "2.16.840.1.113883.5.6", "Concern");
    // With a status observation the concern says active/completed; else it
    // carries the status itself.
    if (status == "active") {
      StatusCode("active");
    } else if (status == "inactive" || status == "resolved") {
      StatusCode("completed");
    } else {
      StatusCode(status);
    }
    x_.Start("effectiveTime");
    x_.Body();
    x_.Null("low");
    x_.End();
    EntryRelationshipOpen("SUBJ");
  }

  void StatusObservation(std::string_view status, std::string_view template_root) {
    const std::string_view snomed = StatusToSnomed(status);
    if (snomed.empty()) return;
    EntryRelationshipOpen("REFR");
    ObservationOpen();
    TemplateId(template_root);
    SimpleCode("code", kStatusLoinc, kLoincOid, "Status");
    Completed();
    x_.Start("value");
    x_.Attr("xsi:type", "CD");
    x_.Attr("code", snomed);
    x_.Attr("codeSystem", kSnomedOid);
    x_.Attr("displayName", status);
    x_.Finish();
    x_.End();
    x_.End();
  }

  void Problem(const Entry& e, const std::vector<Field>& fields) {
    ConcernOpen("2.16.840.1.113883.10.20.22.4.3", "2015-08-01", e.status);
    ObservationOpen();
    TemplateId("2.16.840.1.113883.10.20.22.4.4");
    TemplateId("2.16.840.1.113883.10.20.22.4.4", "2015-08-01");
    Id(e.id);
    SimpleCode("code", "55607006", kSnomedOid, "Problem");
    Completed();
    EffectiveTime(e);
    Code("value", e.code, e.text, "CD");
    SiteAndMethod(e);
    StatusObservation(e.status, kProblemStatusTemplate);
    Extras(e, fields);
    x_.End();  // observation
    x_.End();  // entryRelationship
    x_.End();  // act
  }

  void Allergy(const Entry& e, const std::vector<Field>& fields) {
    ConcernOpen("2.16.840.1.113883.10.20.22.4.30", "2015-08-01", e.status);
    ObservationOpen();
    TemplateId("2.16.840.1.113883.10.20.22.4.7");
    TemplateId("2.16.840.1.113883.10.20.22.4.7", "2014-06-09");
    Id(e.id);
    SimpleCode("code", "ASSERTION", kActCodeOid, {});
    Completed();
    EffectiveTime(e);
    if (e.value_code && AllergyValueIsNatural(*e.value_code)) {
      Code("value", *e.value_code, {}, "CD");
    } else {
      const std::optional<AllergyType> type = AllergyCategoryToSnomed(e.category);
      const AllergyType t = type.value_or(*AllergyCategoryToSnomed(""));
      x_.Start("value");
      x_.Attr("xsi:type", "CD");
      x_.Attr("code", t.code);
      x_.Attr("codeSystem", kSnomedOid);
      x_.Attr("displayName", t.display);
      x_.Finish();
    }
    x_.Start("participant");
    x_.Attr("typeCode", "CSM");
    x_.Body();
    x_.Start("participantRole");
    x_.Attr("classCode", "MANU");
    x_.Body();
    x_.Start("playingEntity");
    x_.Attr("classCode", "MMAT");
    x_.Body();
    Code("code", e.code, e.text);
    x_.End();
    x_.End();
    x_.End();
    StatusObservation(e.status, kAllergyStatusTemplate);
    bool reactions_natural = true;
    for (const Coding& r : e.reactions) reactions_natural = reactions_natural && !r.empty();
    if (reactions_natural) {
      for (const Coding& r : e.reactions) {
        EntryRelationshipOpen("MFST", true);
        ObservationOpen();
        TemplateId(kReactionTemplate);
        TemplateId(kReactionTemplate, "2014-06-09");
        x_.Null("id");
        SimpleCode("code", "ASSERTION", kActCodeOid, {});
        Completed();
        Code("value", r, {}, "CD");
        x_.End();
        x_.End();
      }
    }
    const std::string_view severity = SeverityToSnomed(e.severity);
    if (!severity.empty()) {
      EntryRelationshipOpen("SUBJ", true);
      ObservationOpen();
      TemplateId(kSeverityTemplate);
      TemplateId(kSeverityTemplate, "2014-06-09");
      SimpleCode("code", "SEV", kActCodeOid, "Severity Observation");
      Completed();
      x_.Start("value");
      x_.Attr("xsi:type", "CD");
      x_.Attr("code", severity);
      x_.Attr("codeSystem", kSnomedOid);
      x_.Attr("displayName", e.severity);
      x_.Finish();
      x_.End();
      x_.End();
    }
    Extras(e, fields);
    x_.End();  // observation
    x_.End();  // entryRelationship
    x_.End();  // act
  }

  void Substance(const Entry& e, const std::vector<Field>& fields) {
    const bool immunization = e.kind == EntryKind::kImmunization;
    const bool not_done = immunization && e.status == "not-done";
    x_.Start("substanceAdministration");
    x_.Attr("classCode", "SBADM");
    const std::string_view mood = immunization ? "EVN" : MoodToHl7(e.kind, e.mood);
    x_.Attr("moodCode", mood.empty() ? "INT" : mood);  // else the mood is a field
    if (immunization) x_.Attr("negationInd", not_done ? "true" : "false");
    x_.Body();
    if (immunization) {
      TemplateId("2.16.840.1.113883.10.20.22.4.52");
      TemplateId("2.16.840.1.113883.10.20.22.4.52", "2015-08-01");
    } else {
      TemplateId("2.16.840.1.113883.10.20.22.4.16");
      TemplateId("2.16.840.1.113883.10.20.22.4.16", "2014-06-09");
    }
    Id(e.id);
    StatusCode(not_done ? std::string_view("completed") : std::string_view(e.status));
    EffectiveTime(e, true);
    if (!e.route.empty()) Code("routeCode", e.route);
    if (e.quantity) {
      x_.Start("doseQuantity");
      QuantityAttrs(*e.quantity);
      x_.Finish();
    }
    x_.Start("consumable");
    x_.Body();
    x_.Start("manufacturedProduct");
    x_.Attr("classCode", "MANU");
    x_.Body();
    if (immunization) {
      TemplateId("2.16.840.1.113883.10.20.22.4.54");
      TemplateId("2.16.840.1.113883.10.20.22.4.54", "2014-06-09");
    } else {
      TemplateId("2.16.840.1.113883.10.20.22.4.23");
      TemplateId("2.16.840.1.113883.10.20.22.4.23", "2014-06-09");
    }
    x_.Start("manufacturedMaterial");
    x_.Body();
    Code("code", e.code, e.text);
    x_.End();
    x_.End();
    x_.End();
    Extras(e, fields);
    x_.End();
  }

  void ResultObservation(const Entry& e, const std::vector<Field>& fields,
                         std::string_view template_root, std::string_view template_ext) {
    ObservationOpen();
    TemplateId(template_root);
    TemplateId(template_root, template_ext);
    Id(e.id);
    Code("code", e.code, e.text);
    StatusCode(e.status);
    EffectiveTime(e);
    Values(e.quantity, e.value_code, e.value_text);
    SiteAndMethod(e);
    Extras(e, fields);
    if (e.reference_range && NaturalRange(e.kind, *e.reference_range)) Range(*e.reference_range);
    x_.End();
  }

  void ResultOrganizer(const Entry& e, const std::vector<Field>& fields) {
    const bool vital = e.kind == EntryKind::kVitalSign;
    OrganizerOpen(vital);
    TemplateId(kMedvaultIdRoot, kWrapperTemplate);
    x_.Null("id");
    if (vital) {
      SimpleCode("code", "74728-7", kLoincOid, "Vital signs panel");
    } else {
      x_.Start("code");
      x_.Attr("nullFlavor", "UNK");
      x_.Finish();
    }
    Completed();
    x_.Start("component");
    x_.Body();
    ResultObservation(e, fields,
                      vital ? "2.16.840.1.113883.10.20.22.4.27" : "2.16.840.1.113883.10.20.22.4.2",
                      "2015-08-01");
    x_.End();
    x_.End();
  }

  void ObservationEntry(const Entry& e, const std::vector<Field>& fields,
                        std::string_view template_root, std::string_view template_ext) {
    ResultObservation(e, fields, template_root, template_ext);
  }

  void Family(const Entry& e, const std::vector<Field>& fields) {
    x_.Start("organizer");
    x_.Attr("classCode", "CLUSTER");
    x_.Attr("moodCode", "EVN");
    x_.Body();
    TemplateId("2.16.840.1.113883.10.20.22.4.45");
    TemplateId("2.16.840.1.113883.10.20.22.4.45", "2015-08-01");
    x_.Null("id");
    Completed();
    x_.Start("subject");
    x_.Body();
    x_.Start("relatedSubject");
    x_.Attr("classCode", "PRS");
    x_.Body();
    Code("code", e.relation);
    x_.End();
    x_.End();
    x_.Start("component");
    x_.Body();
    ObservationOpen();
    TemplateId("2.16.840.1.113883.10.20.22.4.46");
    TemplateId("2.16.840.1.113883.10.20.22.4.46", "2015-08-01");
    Id(e.id);
    SimpleCode("code", "64572001", kSnomedOid, "Condition");
    StatusCode(e.status);
    EffectiveTime(e);
    Code("value", e.code, e.text, "CD");
    Extras(e, fields);
    x_.End();
    x_.End();
    x_.End();
  }

  void Simple(const Entry& e, const std::vector<Field>& fields, std::string_view element,
              std::string_view class_code, std::string_view mood, std::string_view template_root,
              std::string_view template_ext) {
    x_.Start(element);
    x_.Attr("classCode", class_code);
    x_.Attr("moodCode", mood);
    x_.Body();
    TemplateId(template_root);
    TemplateId(template_root, template_ext);
    Id(e.id);
    Code("code", e.code, e.text);
    StatusCode(e.status);
    EffectiveTime(e);
    if (e.kind == EntryKind::kProcedure) SiteAndMethod(e);
    Extras(e, fields);
    x_.End();
  }

  // ED with the text as literal content and the url as reference.
  void Ed(std::string_view media_type, std::string_view text, std::string_view url,
          std::string_view data = {}) {
    x_.Start("text");
    x_.AttrIf("mediaType", media_type);
    if (!data.empty()) {
      x_.Attr("representation", "B64");
      x_.Body();
      if (!url.empty()) {
        x_.Start("reference", true);
        x_.Attr("value", url);
        x_.Finish();
      }
      x_.Text(ToBase64(AsBytes(data)));
      x_.End();
      return;
    }
    if (text.empty() && url.empty()) {
      x_.Finish();
      return;
    }
    x_.Body();
    if (!url.empty()) {
      x_.Start("reference", true);
      x_.Attr("value", url);
      x_.Finish();
    }
    x_.Text(text);
    x_.End();
  }

  void Note(const Entry& e, const std::vector<Field>& fields) {
    x_.Start("act");
    x_.Attr("classCode", "ACT");
    x_.Attr("moodCode", "EVN");
    x_.Body();
    TemplateId(kNoteActivityTemplate);
    TemplateId(kNoteActivityTemplate, "2016-11-01");
    Id(e.id);
    x_.Start("code");
    x_.Attr("code", kNoteLoinc);
    x_.Attr("codeSystem", kLoincOid);
    x_.Attr("displayName", "Note");
    if (e.code.empty()) {
      x_.Finish();
    } else {
      x_.Body();
      Code("translation", e.code);
      x_.End();
    }
    Ed(e.media_type, e.text, e.url, NaturalData(e) ? std::string_view(e.data) : std::string_view());
    StatusCode(e.status);
    EffectiveTime(e);
    Extras(e, fields);
    x_.End();
  }

  void Document(const Entry& e, const std::vector<Field>& fields) {
    x_.Start("act");
    x_.Attr("classCode", "ACT");
    x_.Attr("moodCode", "EVN");
    x_.Body();
    TemplateId(kMedvaultIdRoot, kDocumentTemplate);
    Id(e.id);
    Code("code", e.code, e.text);
    StatusCode(e.status);
    EffectiveTime(e);
    Extras(e, fields);
    x_.Start("reference");
    x_.Attr("typeCode", "REFR");
    x_.Body();
    x_.Start("externalDocument");
    x_.Attr("classCode", "DOC");
    x_.Attr("moodCode", "EVN");
    x_.Body();
    Id(e.id);
    if (!e.code.empty()) Code("code", e.code);
    Ed(e.media_type, {}, e.url, NaturalData(e) ? std::string_view(e.data) : std::string_view());
    x_.End();
    x_.End();
    x_.End();
  }

  struct PanelPlan {
    bool natural = false;               // every member is nested
    std::vector<const Entry*> members;  // the ones nested, in order
  };
  const ClinicalDocument& doc_;
  Xml x_;
  std::unordered_map<const Entry*, PanelPlan> panels_;
  std::unordered_set<const Entry*> nested_;
};

}  // namespace

Result<std::string> WriteCcda(const ClinicalDocument& doc) {
  Validator v;
  MV_RETURN_IF_ERROR(v.Run(doc));
  Writer w(doc);
  return w.Run();
}

}  // namespace medvault::interop
