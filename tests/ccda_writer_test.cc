// WriteCcda: well-formed R2.1 CCD output, escaping, refusal of characters
// XML cannot carry, and the round trip ParseCcda(WriteCcda(doc)) == doc in
// canonical form, for every entry kind and field.
#include <gtest/gtest.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "interop/interop.h"

namespace medvault::interop {
namespace {

constexpr EntryKind kAllKinds[] = {
    EntryKind::kProblem,       EntryKind::kAllergy,   EntryKind::kMedication,
    EntryKind::kResult,        EntryKind::kVitalSign, EntryKind::kSocialHistory,
    EntryKind::kFamilyHistory, EntryKind::kProcedure, EntryKind::kImmunization,
    EntryKind::kEncounter,     EntryKind::kPlan,      EntryKind::kDocumentReference,
    EntryKind::kNote,          EntryKind::kStatement, EntryKind::kResource};
static_assert(std::size(kAllKinds) == kEntryKindCount);

std::string MustWrite(const ClinicalDocument& doc) {
  Result<std::string> out = WriteCcda(doc);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return out.ok() ? *out : std::string();
}

// Writes, reads back, and compares the canonical forms; returns the XML.
std::string ExpectRoundTrip(const ClinicalDocument& doc) {
  const std::string xml = MustWrite(doc);
  Result<ClinicalDocument> again = ParseCcda(xml);
  EXPECT_TRUE(again.ok()) << again.status().ToString();
  if (again.ok()) {
    EXPECT_EQ(CanonicalJson(doc).dump(1), CanonicalJson(*again).dump(1));
  }
  return xml;
}

// Strict libxml2 parse (no recovery): the output is well-formed.
struct XmlDoc {
  explicit XmlDoc(const std::string& xml)
      : doc(xmlReadMemory(xml.data(), static_cast<int>(xml.size()), nullptr, "UTF-8",
                          XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)) {}
  ~XmlDoc() { xmlFreeDoc(doc); }
  XmlDoc(const XmlDoc&) = delete;
  XmlDoc& operator=(const XmlDoc&) = delete;
  xmlDoc* doc;
};

ClinicalDocument FullDocument() {
  ClinicalDocument doc;
  doc.header.id = "2.16.840.1.113883.19.5^doc-1";
  doc.header.type = {"http://loinc.org", "11506-3", "Progress note"};
  doc.header.title = "A <title> & \"more\"";
  doc.header.time = "2020-05-06T07:08:09-05:00";
  doc.header.confidentiality = "R";
  doc.header.authors = {{"2.16.840.1.113883.4.6^123", "Henry Seven", "Good Clinic", "2020-05-06"},
                        {"Practitioner/7", "", "Lab & Co", ""}};
  doc.header.custodian = {"1.2.3.4", "", "Custodian Org", ""};
  doc.has_patient = true;
  PatientHeader& p = doc.patient;
  p.id = "Patient/42";
  p.names = {{{"Ann", "Marie"}, "O'Neil <Smith>", "official"}, {{"Annie"}, "", "nickname"}};
  p.birth_date = "1970-02-03";
  p.gender = "female";
  p.identifiers = {{"http://hl7.org/fhir/sid/us-ssn", "999-00-1111", "SS"},
                   {"urn:oid:2.16.840.1.113883.19.5", "MRN7", ""},
                   {"http://hospital.example/mrn", "H-1", "MR"}};
  p.addresses = {{{"1 Main St", "Apt 2"}, "Springfield", "IL", "62701", "US", "home"}};
  p.telecoms = {{"phone", "+1-555-0100", "mobile"},
                {"email", "ann@example.org", "work"},
                {"url", "https://example.org/ann", ""}};
  p.deceased = "2021-01-02T03:04:05Z";
  p.marital_status = {"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "M", "Married"};
  p.race = {"urn:oid:2.16.840.1.113883.6.238", "2106-3", "White"};
  p.ethnicity = {"urn:oid:2.16.840.1.113883.6.238", "2186-5", "Not Hispanic or Latino"};
  p.language = "en-US";
  return doc;
}

// One entry of the kind with every field set: what the kind's C-CDA
// structure does not carry goes through field observations.
Entry Everything(EntryKind kind, int n) {
  Entry e;
  e.kind = kind;
  e.id = "urn:uuid:00000000-0000-0000-0000-00000000000" + std::to_string(n);
  e.code = {"http://snomed.info/sct", "12345" + std::to_string(n), "Display & <name>"};
  e.text = "Free text\nwith two lines & \"quotes\"";
  e.status = "active";
  e.start = "2019-03-04T05:06:07Z";
  e.end = "2019-04";
  e.quantity = Quantity{"5.50", "mg"};
  e.value_code = Coding{"http://loinc.org", "LA1-2", "Yes"};
  e.value_text = "value text";
  e.components = {{{"http://loinc.org", "8480-6", "Systolic"}, Quantity{"120", "mm[Hg]"}, {}, ""},
                  {{"http://loinc.org", "8462-4", ""}, {}, Coding{"", "", "odd"}, "text"}};
  e.category = "some-category";
  e.reactions = {{"http://snomed.info/sct", "39579001", "Anaphylaxis"}};
  e.severity = "severe";
  e.relation = {"http://terminology.hl7.org/CodeSystem/v3-RoleCode", "MTH", "mother"};
  e.route = {"urn:oid:2.16.840.1.113883.3.26.1.1", "C38288", "Oral"};
  e.media_type = "text/plain";
  e.url = "https://example.org/doc/" + std::to_string(n);
  e.body_site = {"http://snomed.info/sct", "368209003", "Right arm"};
  e.method = {"http://snomed.info/sct", "37931006", "Auscultation"};
  e.reasons = {{"http://snomed.info/sct", "38341003", "Hypertension"},
               {"http://hl7.org/fhir/sid/icd-10-cm", "I10", "Essential hypertension"}};
  e.section = {"http://loinc.org", "47420-5", "Functional status"};
  e.members = {"urn:uuid:00000000-0000-0000-0000-00000000000" + std::to_string(n + 1),
               "not-in-this-document"};
  e.mood = "proposal";
  e.data = std::string("%PDF-1.4\0\xff bytes", 16);
  return e;
}

TEST(CcdaWriterTest, EveryKindWithEveryFieldRoundTrips) {
  ClinicalDocument doc = FullDocument();
  int n = 0;
  for (EntryKind k : kAllKinds) doc.entries.push_back(Everything(k, n++));
  const std::string xml = ExpectRoundTrip(doc);
  XmlDoc parsed(xml);
  ASSERT_NE(parsed.doc, nullptr);
}

TEST(CcdaWriterTest, KindSpecificValuesRoundTrip) {
  ClinicalDocument doc;
  const char* statuses[] = {"active", "inactive",   "resolved", "completed",
                            "",       "Mixed-Case", " padded "};
  int n = 0;
  for (EntryKind k : {EntryKind::kProblem, EntryKind::kAllergy}) {
    for (const char* s : statuses) {
      Entry e;
      e.kind = k;
      e.id = "e" + std::to_string(n++);
      e.status = s;
      doc.entries.push_back(e);
    }
  }
  for (const char* category : {"", "medication", "food", "environment", "biologic"}) {
    for (const char* severity : {"", "mild", "moderate", "severe", "fatal"}) {
      Entry e;
      e.kind = EntryKind::kAllergy;
      e.id = "a" + std::to_string(n++);
      e.category = category;
      e.severity = severity;
      e.reactions = {{"", "", "empty-coded reaction"}, {}};  // an empty one: not natural
      doc.entries.push_back(e);
    }
  }
  for (const char* status : {"completed", "not-done", "Not-Done", ""}) {
    Entry e;
    e.kind = EntryKind::kImmunization;
    e.id = "i" + std::to_string(n++);
    e.status = status;
    doc.entries.push_back(e);
  }
  for (EntryKind k : {EntryKind::kResult, EntryKind::kVitalSign, EntryKind::kSocialHistory}) {
    for (const char* category : {"", "laboratory", "vital-signs", "social-history", "imaging"}) {
      Entry e;
      e.kind = k;
      e.id = "c" + std::to_string(n++);
      e.category = category;
      e.quantity = Quantity{"", ""};
      e.value_code = Coding{};
      doc.entries.push_back(e);
    }
  }
  ExpectRoundTrip(doc);
}

TEST(CcdaWriterTest, OutputIsAnR21Ccd) {
  ClinicalDocument doc = FullDocument();
  int n = 0;
  for (EntryKind k : kAllKinds) doc.entries.push_back(Everything(k, n++));
  const std::string xml = MustWrite(doc);
  XmlDoc parsed(xml);
  ASSERT_NE(parsed.doc, nullptr);
  const xmlNode* root = xmlDocGetRootElement(parsed.doc);
  ASSERT_NE(root, nullptr);
  EXPECT_STREQ(reinterpret_cast<const char*>(root->name), "ClinicalDocument");
  ASSERT_NE(root->ns, nullptr);
  EXPECT_STREQ(reinterpret_cast<const char*>(root->ns->href), "urn:hl7-org:v3");
  EXPECT_EQ(xml.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 0), 0u);
  EXPECT_NE(
      xml.find("<templateId root=\"2.16.840.1.113883.10.20.22.1.1\" extension=\"2015-08-01\"/>"),
      std::string::npos);
  EXPECT_NE(
      xml.find("<templateId root=\"2.16.840.1.113883.10.20.22.1.2\" extension=\"2015-08-01\"/>"),
      std::string::npos);
  EXPECT_NE(xml.find("<code code=\"11506-3\" codeSystem=\"2.16.840.1.113883.6.1\""),
            std::string::npos);  // header.type when set
  for (const char* section :
       {"2.16.840.1.113883.10.20.22.2.5.1", "2.16.840.1.113883.10.20.22.2.6.1",
        "2.16.840.1.113883.10.20.22.2.1.1", "2.16.840.1.113883.10.20.22.2.3.1",
        "2.16.840.1.113883.10.20.22.2.4.1", "2.16.840.1.113883.10.20.22.2.17",
        "2.16.840.1.113883.10.20.22.2.15", "2.16.840.1.113883.10.20.22.2.7.1",
        "2.16.840.1.113883.10.20.22.2.2.1", "2.16.840.1.113883.10.20.22.2.22.1",
        "2.16.840.1.113883.10.20.22.2.10"}) {
    EXPECT_NE(xml.find("<templateId root=\"" + std::string(section) + "\" extension="),
              std::string::npos)
        << section;
  }
  for (const char* loinc : {"11450-4", "48765-2", "10160-0", "30954-2", "8716-3", "29762-2",
                            "10157-6", "47519-4", "11369-6", "46240-8", "18776-5"}) {
    EXPECT_NE(
        xml.find("<code code=\"" + std::string(loinc) + "\" codeSystem=\"2.16.840.1.113883.6.1\""),
        std::string::npos)
        << loinc;
  }
  // Entry ids as the header comment of Entry::id says.
  EXPECT_NE(xml.find("<id root=\"2.25.302458611271113451148352563394416437817\" "
                     "extension=\"urn:uuid:00000000-0000-0000-0000-000000000000\"/>"),
            std::string::npos);
  EXPECT_NE(xml.find("<table border=\"1\" width=\"100%\">"), std::string::npos);
}

TEST(CcdaWriterTest, DefaultTypeIsCcdAndAnEmptyTypeSurvives) {
  ClinicalDocument doc;
  const std::string xml = ExpectRoundTrip(doc);
  EXPECT_NE(xml.find("<code code=\"34133-9\" codeSystem=\"2.16.840.1.113883.6.1\""),
            std::string::npos);
  Result<ClinicalDocument> back = ParseCcda(xml);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->header.type.empty());
  EXPECT_FALSE(back->has_patient);
  EXPECT_TRUE(back->entries.empty());
}

TEST(CcdaWriterTest, EmptyDocumentWithPatient) {
  ClinicalDocument doc;
  doc.has_patient = true;
  ExpectRoundTrip(doc);
  doc.patient.identifiers = {{"urn:oid:1.2.3", "x", ""}};  // an id but patient.id empty
  ExpectRoundTrip(doc);
  doc.patient.id = "something else";
  ExpectRoundTrip(doc);
  doc.patient.identifiers.clear();
  ExpectRoundTrip(doc);
}

TEST(CcdaWriterTest, EscapingSurvivesTheRoundTrip) {
  ClinicalDocument doc = FullDocument();
  const std::string nasty = "a<b>c&d\"e'f ]]> &amp; &#x41; <!-- x --> <![CDATA[y]]>";
  doc.header.title = nasty;
  doc.patient.names = {{{nasty}, nasty, ""}};
  doc.header.authors = {{nasty, nasty, nasty, ""}};
  Entry e;
  e.kind = EntryKind::kNote;
  e.id = nasty;
  e.code = {nasty, nasty, nasty};
  e.text = "line1\r\nline2\rline3\n\ttabbed " + nasty;
  e.url = "x\ty\nz\r" + nasty;  // an attribute: tab, LF and CR as character references
  e.media_type = nasty;
  doc.entries.push_back(e);
  Entry r = Everything(EntryKind::kResult, 1);
  r.value_text = nasty + "\r\n";
  r.value_text += "end";
  r.quantity = Quantity{"1\t2", "a\"b"};
  doc.entries.push_back(r);
  const std::string xml = ExpectRoundTrip(doc);
  EXPECT_EQ(xml.find("<b>"), std::string::npos);
  EXPECT_NE(xml.find("a&lt;b&gt;c&amp;d&quot;e&apos;f ]]&gt;"), std::string::npos);
  EXPECT_NE(xml.find("&#13;"), std::string::npos);
  EXPECT_NE(xml.find("x&#9;y&#10;z&#13;"), std::string::npos);
  XmlDoc parsed(xml);
  EXPECT_NE(parsed.doc, nullptr);
}

TEST(CcdaWriterTest, NonAsciiTextSurvives) {
  ClinicalDocument doc = FullDocument();
  doc.patient.names = {{{"Zoë", "Łukasz"}, "Müller-Ñúñez 山田", "official"}};
  Entry e = Everything(EntryKind::kProblem, 1);
  e.text = "Schmerzen — \xF0\x9F\x98\x80 (U+1F600) and \xC2\x85 (NEL) are fine";
  doc.entries.push_back(e);
  ExpectRoundTrip(doc);
}

TEST(CcdaWriterTest, CharactersXmlCannotCarryAreRefused) {
  const std::string secret = "SECRET-PATIENT-TEXT";
  struct Case {
    std::string bad;
    const char* what;
  };
  for (const Case& c :
       {Case{secret + "\x01", "control character"}, Case{secret + std::string("\0", 1), "NUL"},
        Case{secret + "\x1b[31m", "escape"}, Case{secret + "\xEF\xBF\xBF", "U+FFFF"},
        Case{secret + "\xEF\xBF\xBE", "U+FFFE"}, Case{secret + "\xC3\x28", "invalid UTF-8"},
        Case{secret + "\xED\xA0\x80", "surrogate"}, Case{secret + "\xC0\xAF", "overlong"},
        Case{secret + "\xF4\x90\x80\x80", "beyond U+10FFFF"},
        Case{secret + "\xE2\x82", "truncated sequence"}}) {
    SCOPED_TRACE(c.what);
    ClinicalDocument doc;
    doc.entries.push_back(Everything(EntryKind::kMedication, 1));
    doc.entries.push_back(Everything(EntryKind::kNote, 2));
    doc.entries[1].text = c.bad;
    Result<std::string> out = WriteCcda(doc);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(out.status().message().find("entries[1].text"), std::string::npos)
        << out.status().message();
    EXPECT_EQ(out.status().message().find(secret), std::string::npos);
  }
  // Elsewhere in the model, too: the message names the field.
  ClinicalDocument doc;
  doc.has_patient = true;
  doc.patient.names = {{{"ok", "bad\x02"}, "", ""}};
  Result<std::string> out = WriteCcda(doc);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("patient.names[0].given"), std::string::npos);
  doc = ClinicalDocument{};
  doc.header.custodian.organization = "\x7f ok, \x0b not";
  out = WriteCcda(doc);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("header.custodian.organization"), std::string::npos);
  doc = ClinicalDocument{};
  Entry e = Everything(EntryKind::kResult, 1);
  e.components[1].value_code->display = "\x1f";
  doc.entries.push_back(e);
  out = WriteCcda(doc);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("entries[0].components[1].value_code.display"),
            std::string::npos)
      << out.status().message();
}

TEST(CcdaWriterTest, PaddedEntryTextsSurvive) {
  ClinicalDocument doc;
  for (EntryKind k : kAllKinds) {
    Entry e = Everything(k, static_cast<int>(doc.entries.size()));
    e.text = "  padded text\n";
    e.value_text = "\tpadded value ";
    e.url = " https://example.org/padded ";
    e.category = " padded category ";
    e.status = " active";
    doc.entries.push_back(e);
  }
  ExpectRoundTrip(doc);
}

TEST(CcdaWriterTest, TabLineFeedAndCarriageReturnAreAllowed) {
  ClinicalDocument doc;
  Entry e = Everything(EntryKind::kNote, 1);
  e.text = "a\tb\nc\rd\r\ne";
  doc.entries.push_back(e);
  ExpectRoundTrip(doc);
}

TEST(CcdaWriterTest, SystemsWithoutOidsAndOddTimesRoundTrip) {
  ClinicalDocument doc;
  doc.has_patient = true;
  doc.patient.identifiers = {{"http://hospital.example/mrn", "1", ""},
                             {"LOINC", "2", "DL"},
                             {"urn:oid:2.16.840.1.113883.4.1", "3", ""},
                             {"", "4", ""},
                             {"urn:oid:2.25.302458611271113451148352563394416437817", "5", ""}};
  doc.patient.id = "";
  Entry e;
  e.kind = EntryKind::kEncounter;
  e.id = "2.25.302458611271113451148352563394416437817";
  e.code = {"http://example.org/fhir/CodeSystem/x", "c1", ""};
  e.route = {"urn:uuid:7e4a0b6c-0000-4000-8000-000000000001", "r", ""};
  e.start = "last Tuesday";  // not a date: kept as written
  e.end = "2019-02-29";      // impossible date: kept as written
  doc.entries.push_back(e);
  Entry f = e;
  f.id = "1.2.3^";
  f.start = "2020-01-01T00:00:00.5+14:00";
  f.end = "2020-01-01T00:00:00Z";
  doc.entries.push_back(f);
  ExpectRoundTrip(doc);
}

// ---------------------------------------------------------------------------
// Random documents

class Gen {
 public:
  explicit Gen(uint32_t seed) : rng_(seed) {}

  bool Coin() { return Pick(2) == 0; }
  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

  template <typename T, size_t N>
  T From(const T (&options)[N]) {
    return options[Pick(N)];
  }

  // Texts: no leading or trailing XML white space (the reader trims it).
  std::string Text() {
    static const char* kTokens[] = {"a",
                                    "Zz",
                                    "0.5",
                                    " ",
                                    "<",
                                    ">",
                                    "&",
                                    "\"",
                                    "'",
                                    "]]>",
                                    "\n",
                                    "\t",
                                    "\r",
                                    "é",
                                    "\xE2\x82\xAC",
                                    "\xF0\x9F\x98\x80",
                                    "^",
                                    "|",
                                    ":",
                                    "#x",
                                    "&amp;",
                                    "tel:",
                                    "--",
                                    "?>"};
    std::string s;
    const size_t n = Pick(6);
    for (size_t i = 0; i < n; ++i) s += From(kTokens);
    const size_t b = s.find_first_not_of(" \t\n\r");
    if (b == std::string::npos) return "";
    s = s.substr(b);
    return s.substr(0, s.find_last_not_of(" \t\n\r") + 1);
  }
  std::string MaybeText() { return Coin() ? Text() : std::string(); }

  Coding Code() {
    static const char* kSystems[] = {"",
                                     "http://loinc.org",
                                     "http://snomed.info/sct",
                                     "urn:oid:1.2.3.4",
                                     "urn:oid:2.16.840.1.113883.6.1",
                                     "http://example.org/codes",
                                     "LOINC"};
    if (Pick(4) == 0) return {};
    return {From(kSystems), MaybeText(), MaybeText()};
  }
  std::string Time() {
    static const char* kTimes[] = {"",
                                   "2020",
                                   "2020-05",
                                   "2020-05-06",
                                   "2020-05-06T07:08:09Z",
                                   "2020-05-06T07:08:09.123-05:00",
                                   "not a time",
                                   "2020-13"};
    return From(kTimes);
  }
  std::string CanonicalTime() {
    static const char* kTimes[] = {"", "1999", "1999-12", "1999-12-31",
                                   "1999-12-31T23:59:59+01:00"};
    return From(kTimes);
  }
  std::string Id() {
    static const char* kIds[] = {"1.2.3",
                                 "1.2.3^x",
                                 "Observation/1",
                                 "urn:uuid:abc",
                                 "2.25.302458611271113451148352563394416437817",
                                 "a^b^c",
                                 "AAAAAAAA-1111-2222-3333-444444444444^9",
                                 "1..2^x",
                                 "x^"};
    return std::string(From(kIds)) + std::to_string(Pick(1000));
  }

  Entry RandomEntry() {
    Entry e;
    e.kind = From(kAllKinds);
    e.id = Id();
    e.code = Code();
    e.text = MaybeText();
    static const char* kStatuses[] = {"",          "active",   "inactive", "resolved",
                                      "completed", "not-done", "Final",    "entered-in-error"};
    e.status = From(kStatuses);
    e.start = Time();
    e.end = Time();
    if (Coin()) e.quantity = Quantity{MaybeText(), MaybeText()};
    if (Coin()) e.value_code = Code();
    e.value_text = MaybeText();
    for (size_t i = Pick(3); i > 0; --i) {
      Component c;
      c.code = Code();
      if (Coin()) c.quantity = Quantity{MaybeText(), MaybeText()};
      if (Coin()) c.value_code = Code();
      c.value_text = MaybeText();
      e.components.push_back(c);
    }
    static const char* kCategories[] = {"",     "laboratory", "vital-signs", "social-history",
                                        "food", "medication", "environment", "biologic"};
    e.category = From(kCategories);
    for (size_t i = Pick(3); i > 0; --i) e.reactions.push_back(Code());
    static const char* kSeverities[] = {"", "mild", "moderate", "severe", "fatal"};
    e.severity = From(kSeverities);
    e.relation = Code();
    e.route = Code();
    e.media_type = Coin() ? "text/plain" : MaybeText();
    e.url = MaybeText();
    e.body_site = Code();
    e.method = Code();
    for (size_t i = Pick(3); i > 0; --i) e.reasons.push_back(Code());
    e.section = Code();
    for (size_t i = Pick(3); i > 0; --i) e.members.push_back(Id());
    static const char* kMoods[] = {"",      "event",    "goal",    "care-plan",
                                   "order", "proposal", "promise", "odd mood"};
    e.mood = From(kMoods);
    if (Coin()) e.data = MaybeText() + std::string(1, '\0');
    return e;
  }

  ClinicalDocument RandomDocument() {
    ClinicalDocument doc;
    doc.header.id = Coin() ? Id() : "";
    doc.header.type = Code();
    doc.header.title = MaybeText();
    doc.header.time = CanonicalTime();
    doc.header.confidentiality = Coin() ? "N" : MaybeText();
    for (size_t i = Pick(3); i > 0; --i) {
      doc.header.authors.push_back({Coin() ? Id() : "", MaybeText(), MaybeText(), CanonicalTime()});
    }
    doc.header.custodian = {Coin() ? Id() : "", "", MaybeText(), ""};
    doc.has_patient = Coin();
    if (doc.has_patient) {
      PatientHeader& p = doc.patient;
      p.id = Coin() ? Id() : "";
      static const char* kNameUses[] = {"", "official", "nickname", "usual", "maiden", "old"};
      for (size_t i = Pick(3); i > 0; --i) {
        HumanName n;
        for (size_t g = Pick(3); g > 0; --g) n.given.push_back(MaybeText());
        n.family = MaybeText();
        n.use = From(kNameUses);
        p.names.push_back(n);
      }
      static const char* kBirth[] = {"", "1950", "1950-06", "1950-06-07"};
      p.birth_date = From(kBirth);
      static const char* kGenders[] = {"", "male", "female", "other", "unknown"};
      p.gender = From(kGenders);
      static const char* kIdSystems[] = {"http://hl7.org/fhir/sid/us-ssn", "urn:oid:1.2.3",
                                         "http://hospital.example/mrn", "", "LOINC"};
      static const char* kIdTypes[] = {"", "SS", "MR", "DL"};
      for (size_t i = Pick(3); i > 0; --i) {
        p.identifiers.push_back({From(kIdSystems), MaybeText(), From(kIdTypes)});
      }
      static const char* kAddressUses[] = {"", "home", "work", "temp", "old", "billing"};
      for (size_t i = Pick(2); i > 0; --i) {
        Address a;
        for (size_t l = Pick(3); l > 0; --l) a.lines.push_back(MaybeText());
        a.city = MaybeText();
        a.state = MaybeText();
        a.postal_code = MaybeText();
        a.country = MaybeText();
        a.use = From(kAddressUses);
        p.addresses.push_back(a);
      }
      static const char* kTelecomUses[] = {"", "home", "work", "mobile", "temp"};
      for (size_t i = Pick(3); i > 0; --i) {
        Telecom t;
        switch (Pick(6)) {
          case 0:
            t.system = "phone";
            break;
          case 1:
            t.system = "email";
            break;
          case 2:
            t.system = "fax";
            break;
          case 3:
            t.system = "sms";
            break;
          case 4:
            t.system = "url";
            break;
          default:
            break;
        }
        std::string v = MaybeText();
        v.erase(std::remove(v.begin(), v.end(), ':'), v.end());  // no scheme of its own
        if (t.system == "url") v = "https://example.org/" + v;
        t.value = std::string(v.substr(0, v.find_last_not_of(" \t\n\r") + 1));
        const size_t b = t.value.find_first_not_of(" \t\n\r");
        t.value = b == std::string::npos ? "" : t.value.substr(b);
        t.use = From(kTelecomUses);
        p.telecoms.push_back(t);
      }
      static const char* kDeceased[] = {"", "true", "2001-02-03", "2001-02-03T04:05:06Z"};
      p.deceased = From(kDeceased);
      p.marital_status = Code();
      p.race = Code();
      p.ethnicity = Code();
      p.language = Coin() ? "en-US" : "";
    }
    for (size_t i = Pick(12); i > 0; --i) doc.entries.push_back(RandomEntry());
    return doc;
  }

 private:
  std::mt19937 rng_;
};

TEST(CcdaWriterTest, RandomDocumentsRoundTrip) {
  Gen gen(20240601);
  for (int i = 0; i < 300; ++i) {
    SCOPED_TRACE("document " + std::to_string(i));
    const ClinicalDocument doc = gen.RandomDocument();
    const std::string xml = MustWrite(doc);
    Result<ClinicalDocument> again = ParseCcda(xml);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    ASSERT_EQ(CanonicalJson(doc).dump(1), CanonicalJson(*again).dump(1)) << xml;
  }
}

TEST(CcdaWriterTest, WritingIsDeterministic) {
  Gen gen(7);
  const ClinicalDocument doc = gen.RandomDocument();
  EXPECT_EQ(MustWrite(doc), MustWrite(doc));
}

}  // namespace
}  // namespace medvault::interop
