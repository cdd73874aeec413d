// Dates, times and code systems: the normalisations the C-CDA and FHIR
// parsers and writers share (see interop.h).
#include <array>
#include <string>
#include <string_view>

#include "interop/interop.h"

namespace medvault::interop {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool AllDigits(std::string_view s) {
  for (char c : s) {
    if (!IsDigit(c)) {
      return false;
    }
  }
  return !s.empty();
}

int Num(std::string_view s) {
  int v = 0;
  for (char c : s) {
    v = v * 10 + (c - '0');
  }
  return v;
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysIn(int y, int m) {
  static constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return (m == 2 && IsLeap(y)) ? 29 : kDays[static_cast<size_t>(m - 1)];
}

Status Invalid(std::string_view what) {
  return Status::InvalidArgument("not a valid date/time: " + std::string(what));
}

// The parsed pieces of a date/time, each empty when absent.
struct Parts {
  std::string_view year, month, day, hour, minute, second, fraction;
  std::string zone;  // "Z", "+hh:mm", "-hh:mm" or ""
};

Result<std::string> Assemble(const Parts& p) {
  if (p.year.size() != 4 || Num(p.year) < 1) {
    return Invalid("the year must have four digits and not be 0000");
  }
  std::string out(p.year);
  if (p.month.empty()) {
    return out;
  }
  const int y = Num(p.year), m = Num(p.month);
  if (m < 1 || m > 12) {
    return Invalid("month out of range");
  }
  out += '-';
  out += p.month;
  if (p.day.empty()) {
    return out;
  }
  const int d = Num(p.day);
  if (d < 1 || d > DaysIn(y, m)) {
    return Invalid("day out of range");
  }
  out += '-';
  out += p.day;
  if (p.hour.empty()) {
    return out;
  }
  if (Num(p.hour) > 23 || (!p.minute.empty() && Num(p.minute) > 59) ||
      (!p.second.empty() && Num(p.second) > 60)) {
    return Invalid("time of day out of range");
  }
  out += 'T';
  out += p.hour;
  out += ':';
  out += p.minute.empty() ? std::string_view("00") : p.minute;
  out += ':';
  out += p.second.empty() ? std::string_view("00") : p.second;
  if (!p.fraction.empty()) {
    out += '.';
    out += p.fraction;
  }
  out += p.zone;
  return out;
}

// "+hhmm" / "-hhmm" (C-CDA) or "Z" / "+hh:mm" / "-hh:mm" (FHIR) to the
// canonical zone; a zero offset becomes "Z".
Result<std::string> NormalizeZone(std::string_view z) {
  if (z.empty()) {
    return std::string();
  }
  if (z == "Z" || z == "z") {
    return std::string("Z");
  }
  if (z[0] != '+' && z[0] != '-') {
    return Invalid("bad time zone");
  }
  std::string_view hh, mm;
  if (z.size() == 5 && AllDigits(z.substr(1))) {
    hh = z.substr(1, 2);
    mm = z.substr(3, 2);
  } else if (z.size() == 6 && z[3] == ':' && AllDigits(z.substr(1, 2)) &&
             AllDigits(z.substr(4, 2))) {
    hh = z.substr(1, 2);
    mm = z.substr(4, 2);
  } else if (z.size() == 3 && AllDigits(z.substr(1))) {
    hh = z.substr(1, 2);
    mm = "00";
  } else {
    return Invalid("bad time zone");
  }
  if (Num(hh) > 14 || Num(mm) > 59) {
    return Invalid("time zone offset out of range");
  }
  if (Num(hh) == 0 && Num(mm) == 0) {
    return std::string("Z");
  }
  return std::string(1, z[0]) + std::string(hh) + ":" + std::string(mm);
}

Result<std::string> NormalizeHl7(std::string_view s) {
  // YYYY[MM[DD[HH[MM[SS[.ffff]]]]]][+|-ZZZZ]
  size_t zpos = s.find_first_of("+-");
  std::string_view zone_text = zpos == std::string_view::npos ? "" : s.substr(zpos);
  std::string_view body = s.substr(0, zpos);
  std::string_view fraction;
  if (const size_t dot = body.find('.'); dot != std::string_view::npos) {
    fraction = body.substr(dot + 1);
    body = body.substr(0, dot);
    if (!AllDigits(fraction) || body.size() != 14) {
      return Invalid("a fraction of a second needs all of YYYYMMDDHHMMSS");
    }
  }
  if (!AllDigits(body)) {
    return Invalid("unexpected characters");
  }
  static constexpr std::array<size_t, 6> kLengths = {4, 6, 8, 10, 12, 14};
  bool length_ok = false;
  for (size_t l : kLengths) {
    length_ok = length_ok || body.size() == l;
  }
  if (!length_ok) {
    return Invalid("wrong number of digits");
  }
  Parts p;
  p.year = body.substr(0, 4);
  if (body.size() >= 6) p.month = body.substr(4, 2);
  if (body.size() >= 8) p.day = body.substr(6, 2);
  if (body.size() >= 10) p.hour = body.substr(8, 2);
  if (body.size() >= 12) p.minute = body.substr(10, 2);
  if (body.size() >= 14) p.second = body.substr(12, 2);
  p.fraction = fraction;
  Result<std::string> zone = NormalizeZone(zone_text);
  if (!zone.ok()) {
    return zone.status();
  }
  // A date without a time has no zone in the canonical (FHIR date) form.
  p.zone = p.hour.empty() ? "" : *zone;
  return Assemble(p);
}

Result<std::string> NormalizeIso(std::string_view s) {
  // YYYY[-MM[-DD[Thh:mm[:ss[.f+]][Z|+hh:mm|-hh:mm]]]]
  Parts p;
  if (s.size() < 4 || !AllDigits(s.substr(0, 4))) {
    return Invalid("bad year");
  }
  p.year = s.substr(0, 4);
  std::string_view rest = s.substr(4);
  auto take2 = [&rest](char sep, std::string_view& out) -> bool {
    if (rest.empty() || rest[0] != sep) {
      return false;
    }
    if (rest.size() < 3 || !AllDigits(rest.substr(1, 2))) {
      return false;
    }
    out = rest.substr(1, 2);
    rest = rest.substr(3);
    return true;
  };
  if (!rest.empty() && !take2('-', p.month)) return Invalid("bad month");
  if (!rest.empty() && !take2('-', p.day)) return Invalid("bad day");
  if (!rest.empty()) {
    if (p.day.empty() || (rest[0] != 'T' && rest[0] != 't')) {
      return Invalid("unexpected characters after the date");
    }
    if (rest.size() < 3 || !AllDigits(rest.substr(1, 2))) {
      return Invalid("bad hour");
    }
    p.hour = rest.substr(1, 2);
    rest = rest.substr(3);
    if (!take2(':', p.minute)) return Invalid("bad minute");
    if (!rest.empty() && rest[0] == ':' && !take2(':', p.second)) return Invalid("bad second");
    if (!rest.empty() && rest[0] == '.') {
      size_t n = 1;
      while (n < rest.size() && IsDigit(rest[n])) ++n;
      if (n == 1 || p.second.empty()) return Invalid("bad fraction of a second");
      p.fraction = rest.substr(1, n - 1);
      rest = rest.substr(n);
    }
    Result<std::string> zone = NormalizeZone(rest);
    if (!zone.ok()) {
      return zone.status();
    }
    p.zone = *zone;
  }
  return Assemble(p);
}

struct SystemName {
  std::string_view oid;
  std::string_view uri;
};

// Well-known code systems: the OIDs C-CDA uses and the URIs FHIR R4 uses.
constexpr std::array<SystemName, 27> kSystems = {{
    {"2.16.840.1.113883.6.1", "http://loinc.org"},
    {"2.16.840.1.113883.6.96", "http://snomed.info/sct"},
    {"2.16.840.1.113883.6.88", "http://www.nlm.nih.gov/research/umls/rxnorm"},
    {"2.16.840.1.113883.12.292", "http://hl7.org/fhir/sid/cvx"},
    {"2.16.840.1.113883.6.90", "http://hl7.org/fhir/sid/icd-10-cm"},
    {"2.16.840.1.113883.6.103", "http://hl7.org/fhir/sid/icd-9-cm"},
    {"2.16.840.1.113883.6.3", "http://hl7.org/fhir/sid/icd-10"},
    {"2.16.840.1.113883.6.8", "http://unitsofmeasure.org"},
    {"2.16.840.1.113883.6.69", "http://hl7.org/fhir/sid/ndc"},
    {"2.16.840.1.113883.6.12", "http://www.ama-assn.org/go/cpt"},
    {"2.16.840.1.113883.6.285", "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"},
    {"2.16.840.1.113883.4.1", "http://hl7.org/fhir/sid/us-ssn"},
    {"2.16.840.1.113883.4.6", "http://hl7.org/fhir/sid/us-npi"},
    {"2.16.840.1.113883.6.101", "http://nucc.org/provider-taxonomy"},
    {"2.16.840.1.113883.5.1", "http://terminology.hl7.org/CodeSystem/v3-AdministrativeGender"},
    {"2.16.840.1.113883.5.2", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"},
    {"2.16.840.1.113883.5.4", "http://terminology.hl7.org/CodeSystem/v3-ActCode"},
    {"2.16.840.1.113883.5.6", "http://terminology.hl7.org/CodeSystem/v3-ActClass"},
    {"2.16.840.1.113883.5.14", "http://terminology.hl7.org/CodeSystem/v3-ActStatus"},
    {"2.16.840.1.113883.5.25", "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"},
    {"2.16.840.1.113883.5.83",
     "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"},
    {"2.16.840.1.113883.5.111", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"},
    {"2.16.840.1.113883.5.112", "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration"},
    {"2.16.840.1.113883.5.1008", "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"},
    {"2.16.840.1.113883.5.1063", "http://terminology.hl7.org/CodeSystem/v3-SeverityObservation"},
    {"2.16.840.1.113883.3.26.1.1", "http://ncimeta.nci.nih.gov"},
    {"2.16.840.1.113883.6.14", "http://terminology.hl7.org/CodeSystem/HCPCS"},
}};

constexpr std::string_view kOidPrefix = "urn:oid:";

}  // namespace

Result<std::string> NormalizeDateTime(std::string_view s) {
  if (s.empty() || s.size() > 40) {
    return Invalid(s.empty() ? "empty" : "too long");
  }
  // FHIR syntax has '-' after the year; C-CDA TS is digits up to the zone.
  if (s.size() > 4 && s[4] == '-') {
    return NormalizeIso(s);
  }
  if (s.size() == 4) {
    return AllDigits(s) ? NormalizeIso(s) : Invalid("bad year");
  }
  return NormalizeHl7(s);
}

std::string ToHl7Timestamp(std::string_view canonical) {
  std::string out;
  out.reserve(canonical.size());
  size_t i = 0;
  for (; i < canonical.size(); ++i) {
    const char c = canonical[i];
    if (c == 'Z' || ((c == '+' || c == '-') && i >= 10)) {
      break;
    }
    if (IsDigit(c) || c == '.') {
      out += c;
    }
  }
  if (i < canonical.size()) {
    if (canonical[i] == 'Z') {
      out += "+0000";
    } else {
      for (; i < canonical.size(); ++i) {
        if (canonical[i] != ':') {
          out += canonical[i];
        }
      }
    }
  }
  return out;
}

std::string CodeSystemUri(std::string_view oid) {
  if (oid.substr(0, kOidPrefix.size()) == kOidPrefix) {
    oid.remove_prefix(kOidPrefix.size());
  }
  if (oid.empty()) {
    return std::string();
  }
  for (const SystemName& s : kSystems) {
    if (s.oid == oid) {
      return std::string(s.uri);
    }
  }
  // Not an OID (digits and dots): already a URI or a name; keep it.
  for (char c : oid) {
    if (!IsDigit(c) && c != '.') {
      return std::string(oid);
    }
  }
  return std::string(kOidPrefix) + std::string(oid);
}

std::string CodeSystemOid(std::string_view uri) {
  if (uri.substr(0, kOidPrefix.size()) == kOidPrefix) {
    return std::string(uri.substr(kOidPrefix.size()));
  }
  for (const SystemName& s : kSystems) {
    if (s.uri == uri) {
      return std::string(s.oid);
    }
  }
  return std::string();
}

}  // namespace medvault::interop
