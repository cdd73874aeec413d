// Segment path validation (the tree's names are vocab/vocab.h).
#include "record/record.h"

namespace medvault::record {

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
  if (vocab::FindTopLevel(path.substr(0, path.find('/'))) == nullptr) {
    return Status::InvalidArgument(
        "segment path must start with a known top-level segment (see GET /api/v1/segment-types)");
  }
  return Status::Ok();
}

}  // namespace medvault::record
