#include <algorithm>
#include <string>
#include <vector>

#include "record/record.h"

namespace medvault::record {

std::vector<std::string> SegmentCategories() {
  std::vector<std::string> out;
  for (const TopLevelSegment& s : TopLevelSegments()) {
    if (std::find(out.begin(), out.end(), s.category) == out.end()) {
      out.emplace_back(s.category);
    }
  }
  return out;
}

const std::vector<TopLevelSegment>& TopLevelSegments() {
  static const std::vector<TopLevelSegment> kSegments = {
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
  };
  return kSegments;
}

static const TopLevelSegment* FindTopLevel(std::string_view name) {
  for (const TopLevelSegment& s : TopLevelSegments()) {
    if (s.name == name) {
      return &s;
    }
  }
  return nullptr;
}

static std::string_view FirstComponent(std::string_view path) {
  const size_t slash = path.find('/');
  return slash == std::string_view::npos ? path : path.substr(0, slash);
}

Status ValidateSegmentPath(std::string_view path) {
  if (path.empty()) {
    return Status::InvalidArgument("segment path is empty");
  }
  if (path.size() > kMaxPathLength) {
    return Status::InvalidArgument("segment path is longer than 256 characters");
  }
  size_t depth = 0;
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    const std::string_view comp = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    ++depth;
    if (comp.empty()) {
      return Status::InvalidArgument(
          "segment path has an empty component (leading, trailing or "
          "double '/')");
    }
    if (comp.size() > kMaxComponentLength) {
      return Status::InvalidArgument("segment path component is longer than 64 characters");
    }
    for (char c : comp) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
        return Status::InvalidArgument(
            "segment path components may contain only a-z, 0-9 and '-' (no '.', '..', '\\', "
            "upper case, spaces or encoded characters)");
      }
    }
    if (comp.front() == '-' || comp.back() == '-') {
      return Status::InvalidArgument("segment path component may not start or end with '-'");
    }
    if (slash == std::string_view::npos) {
      break;
    }
    start = slash + 1;
  }
  if (depth > kMaxPathDepth) {
    return Status::InvalidArgument("segment path is deeper than 8 components");
  }
  if (FindTopLevel(FirstComponent(path)) == nullptr) {
    return Status::InvalidArgument(
        "segment path must start with a known top-level segment (see GET /api/v1/segment-types)");
  }
  return Status::Ok();
}

const TopLevelSegment& TopLevelFor(std::string_view path) {
  const TopLevelSegment* s = FindTopLevel(FirstComponent(path));
  static const TopLevelSegment kOther = {"other", "other", 1, "anything else"};
  return s != nullptr ? *s : kOther;
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

}  // namespace medvault::record
