// The clinical vocabulary's look-ups, and its tables checked at compile time:
// a row that breaks a rule below does not build (tests/vocab_test.cc checks
// the same at run time, and the checkers' sad paths).
#include "vocab/vocab.h"

namespace medvault::vocab {
namespace {

constexpr bool LoincCheck(std::string_view code) {
  const size_t dash = code.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash > 7 || dash + 2 != code.size()) {
    return false;
  }
  for (size_t i = 0; i < code.size(); ++i) {
    if (i != dash && (code[i] < '0' || code[i] > '9')) {
      return false;
    }
  }
  // Mod 10: from the rightmost digit of the number, every other digit
  // doubled (its digits summed), the rest as they are.
  int sum = 0;
  bool twice = true;
  for (size_t i = dash; i-- > 0;) {
    int d = code[i] - '0';
    if (twice) {
      d *= 2;
      d = d / 10 + d % 10;
    }
    sum += d;
    twice = !twice;
  }
  return code[dash + 1] - '0' == (10 - sum % 10) % 10;
}

constexpr bool IsPathComponentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

// Components of [a-z0-9-], not empty, not starting or ending with '-'.
constexpr bool IsWellFormedPath(std::string_view path) {
  if (path.empty()) {
    return false;
  }
  size_t start = 0;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      if (i == start || path[start] == '-' || path[i - 1] == '-') {
        return false;
      }
      start = i + 1;
    } else if (!IsPathComponentChar(path[i])) {
      return false;
    }
  }
  return true;
}

constexpr const TopLevelSegment* FindTopLevelIn(std::string_view name) {
  for (const TopLevelSegment& s : kTopLevelSegments) {
    if (s.name == name) {
      return &s;
    }
  }
  return nullptr;
}

constexpr std::string_view FirstComponentOf(std::string_view path) {
  const size_t slash = path.find('/');
  return slash == std::string_view::npos ? path : path.substr(0, slash);
}

constexpr std::string_view LastComponentOf(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// A known path: well formed, under a known top-level segment.
constexpr bool IsKnownPath(std::string_view path) {
  return IsWellFormedPath(path) && FindTopLevelIn(FirstComponentOf(path)) != nullptr;
}

constexpr bool TopLevelSegmentsAreValid() {
  for (size_t i = 0; i < kTopLevelSegments.size(); ++i) {
    const TopLevelSegment& s = kTopLevelSegments[i];
    if (!IsWellFormedPath(s.name) || s.name.find('/') != std::string_view::npos ||
        !IsWellFormedPath(s.category) || s.description.empty() || s.default_sensitivity < 0 ||
        s.default_sensitivity > kMaxSensitivity) {
      return false;
    }
    for (size_t j = 0; j < i; ++j) {
      if (kTopLevelSegments[j].name == s.name) {
        return false;
      }
    }
  }
  return FindTopLevelIn(kFallbackTopLevel) != nullptr;
}

constexpr bool KnownSegmentsAreValid() {
  for (size_t i = 0; i < kEntrySegments.size(); ++i) {
    if (kEntrySegments[i].entry_kind.empty() || !IsKnownPath(kEntrySegments[i].base)) {
      return false;
    }
    for (size_t j = 0; j < i; ++j) {
      if (kEntrySegments[j].entry_kind == kEntrySegments[i].entry_kind) {
        return false;
      }
    }
  }
  for (size_t i = 0; i < kSectionSegments.size(); ++i) {
    const SectionSegment& s = kSectionSegments[i];
    if (!LoincCheck(s.loinc) || !IsKnownPath(s.base) || s.title.empty()) {
      return false;
    }
    for (size_t j = 0; j < i; ++j) {
      if (kSectionSegments[j].loinc == s.loinc) {
        return false;
      }
    }
    for (const EntrySegment& e : kEntrySegments) {
      if (e.base == s.base) {
        return false;  // a section's statements never share a kind's segments
      }
    }
  }
  for (size_t i = 0; i < kResourceSegments.size(); ++i) {
    const ResourceSegment& r = kResourceSegments[i];
    if (r.type.empty() || !IsKnownPath(r.base)) {
      return false;
    }
    for (size_t j = 0; j < i; ++j) {
      if (kResourceSegments[j].type == r.type) {
        return false;
      }
    }
    for (const EntrySegment& e : kEntrySegments) {
      if (e.base == r.base) {
        return false;
      }
    }
    for (const SectionSegment& s : kSectionSegments) {
      if (s.base == r.base) {
        return false;
      }
    }
  }
  if (!IsKnownPath(kBodyMeasureVitalSignsBase) || !IsKnownPath(kIdentitySegmentBase) ||
      !IsKnownPath(kSourceDocumentsBase)) {
    return false;
  }
  for (std::string_view code : kBodyMeasureLoincCodes) {
    if (!LoincCheck(code)) {
      return false;
    }
  }
  return true;
}

constexpr bool MeasurementsAreValid() {
  for (size_t i = 0; i < kMeasurements.size(); ++i) {
    const Measurement& m = kMeasurements[i];
    const TopLevelSegment* top = FindTopLevelIn(FirstComponentOf(m.path));
    if (!IsKnownPath(m.path) || LastComponentOf(m.path) != m.leaf || top == nullptr ||
        top->category != m.category || !LoincCheck(m.loinc) || m.display.empty() ||
        m.fields.empty() || m.units.empty()) {
      return false;
    }
    for (size_t j = 0; j < i; ++j) {
      if (kMeasurements[j].leaf == m.leaf) {
        return false;
      }
    }
    for (const MeasurementField& f : m.fields) {
      // Several fields: each is a component with its own code.
      const bool coded = m.fields.size() > 1;
      if (f.name.empty() || !(f.min < f.max) ||
          (coded ? !LoincCheck(f.loinc) || f.display.empty() : !f.loinc.empty())) {
        return false;
      }
      for (std::string_view common : kMeasurementCommonMembers) {
        if (f.name == common) {
          return false;
        }
      }
    }
    for (const MeasurementUnit& u : m.units) {
      if (u.unit.empty() || u.ucum.empty() || (!u.loinc.empty() && !LoincCheck(u.loinc)) ||
          u.loinc.empty() != u.display.empty()) {
        return false;
      }
    }
  }
  return true;
}

constexpr bool ContentKindsAreValid() {
  for (size_t i = 0; i < kContentKinds.size(); ++i) {
    // In enum order, so that a kind's row is at its value - 1.
    if (static_cast<size_t>(kContentKinds[i].kind) != i + 1 || kContentKinds[i].name.empty()) {
      return false;
    }
  }
  return kContentKinds[static_cast<size_t>(ContentKind::kBinary) - 1].media_type.empty();
}

static_assert(TopLevelSegmentsAreValid(), "kTopLevelSegments: see TopLevelSegmentsAreValid");
static_assert(KnownSegmentsAreValid(), "kEntrySegments and bases: see KnownSegmentsAreValid");
static_assert(MeasurementsAreValid(), "kMeasurements: see MeasurementsAreValid");
static_assert(ContentKindsAreValid(), "kContentKinds: see ContentKindsAreValid");
static_assert(LoincCheck("8480-6") && !LoincCheck("8480-5"), "the LOINC check digit");

const ContentKindInfo* FindKind(ContentKind kind) {
  const auto i = static_cast<size_t>(kind);
  return i >= 1 && i <= kContentKinds.size() ? &kContentKinds[i - 1] : nullptr;
}

}  // namespace

const TopLevelSegment* FindTopLevel(std::string_view name) { return FindTopLevelIn(name); }

const TopLevelSegment& TopLevelFor(std::string_view path) {
  const TopLevelSegment* s = FindTopLevelIn(FirstComponentOf(path));
  return s != nullptr ? *s : *FindTopLevelIn(kFallbackTopLevel);
}

bool IsCategory(std::string_view name) {
  for (std::string_view c : kCategories) {
    if (c == name) {
      return true;
    }
  }
  return false;
}

std::vector<std::string> CategoryNames() {
  return std::vector<std::string>(kCategories.begin(), kCategories.end());
}

bool PathIsWithin(std::string_view path, std::string_view prefix) {
  if (prefix.empty()) {
    return true;
  }
  if (path.size() < prefix.size() || path.substr(0, prefix.size()) != prefix) {
    return false;
  }
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

std::string_view LastComponent(std::string_view path) { return LastComponentOf(path); }

bool IsBodyMeasureLoinc(std::string_view code) {
  for (std::string_view c : kBodyMeasureLoincCodes) {
    if (c == code) {
      return true;
    }
  }
  return false;
}

const Measurement* MeasurementForPath(std::string_view path) {
  const std::string_view leaf = LastComponentOf(path);
  for (const Measurement& m : kMeasurements) {
    if (m.leaf == leaf) {
      return &m;
    }
  }
  return nullptr;
}

const MeasurementUnit* FindUnit(const Measurement& m, std::string_view unit) {
  for (const MeasurementUnit& u : m.units) {
    if (u.unit == unit) {
      return &u;
    }
  }
  return nullptr;
}

bool IsWellFormedLoinc(std::string_view code) { return LoincCheck(code); }

const ResourceSegment* ResourceSegmentFor(std::string_view type) {
  for (const ResourceSegment& r : kResourceSegments) {
    if (r.type == type) {
      return &r;
    }
  }
  return nullptr;
}

const SectionSegment* SectionSegmentFor(std::string_view loinc) {
  for (const SectionSegment& s : kSectionSegments) {
    if (s.loinc == loinc) {
      return &s;
    }
  }
  return nullptr;
}

std::string_view ContentKindName(ContentKind kind) {
  const ContentKindInfo* k = FindKind(kind);
  return k != nullptr ? k->name : std::string_view();
}

std::optional<ContentKind> ParseContentKind(std::string_view name) {
  for (const ContentKindInfo& k : kContentKinds) {
    if (k.name == name) {
      return k.kind;
    }
  }
  return std::nullopt;
}

std::string_view FixedMediaType(ContentKind kind) {
  const ContentKindInfo* k = FindKind(kind);
  return k != nullptr ? k->media_type : std::string_view();
}

bool IsSemanticField(std::string_view name) {
  for (const SemanticField& f : kSemanticFields) {
    if (f.name == name) {
      return true;
    }
  }
  return false;
}

bool IsInsuranceIdentifierSystem(std::string_view system) {
  for (std::string_view s : kInsuranceIdentifierSystems) {
    if (s == system) {
      return true;
    }
  }
  return false;
}

}  // namespace medvault::vocab
