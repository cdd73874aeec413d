// Spreading a ClinicalDocument over segments and gathering it back (see
// mapping.h for the layout).
#include "interop/mapping.h"

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <utility>

#include "common/bytes.h"
#include "crypto/crypto.h"
#include "vocab/vocab.h"

namespace medvault::interop {
namespace {

using nlohmann::json;

bool IsBodyMeasure(const Coding& c) {
  const std::string_view system = c.system;
  if (!system.empty() && system != vocab::kLoincSystem &&
      !(system.starts_with("urn:oid:") && system.substr(8) == vocab::kLoincOid)) {
    return false;
  }
  return vocab::IsBodyMeasureLoinc(c.code);
}

// A JSON number as the decimal text FHIR and C-CDA carry.
std::string NumberText(const json& v) {
  if (v.is_number_integer()) {
    return std::to_string(v.get<int64_t>());
  }
  if (v.is_number_unsigned()) {
    return std::to_string(v.get<uint64_t>());
  }
  return json(v.get<double>()).dump();
}

std::optional<Quantity> NumberQuantity(const json& body, std::string_view field) {
  auto it = body.find(std::string(field));
  if (it == body.end() || !it->is_number()) {
    return std::nullopt;
  }
  Quantity q;
  q.value = NumberText(*it);
  if (auto u = body.find("unit"); u != body.end() && u->is_string()) {
    q.unit = u->get<std::string>();
  }
  return q;
}

// A section's LOINC code, "" when it is not one.
std::string_view SectionLoinc(const Coding& section) {
  return section.system == vocab::kLoincSystem ? std::string_view(section.code)
                                               : std::string_view();
}

Status MalformedPart(const std::string& path, const Status& s) {
  return Status::InvalidArgument("segment " + path + ": " + s.message());
}

}  // namespace

std::string_view SegmentBaseFor(const Entry& e) {
  if (e.kind == EntryKind::kVitalSign && IsBodyMeasure(e.code)) {
    return vocab::kBodyMeasureVitalSignsBase;
  }
  if (e.kind == EntryKind::kStatement) {
    if (const vocab::SectionSegment* s = vocab::SectionSegmentFor(SectionLoinc(e.section))) {
      return s->base;
    }
  }
  if (e.kind == EntryKind::kResource && e.code.system == kResourceTypeSystem) {
    if (const vocab::ResourceSegment* r = vocab::ResourceSegmentFor(e.code.code)) {
      return r->base;
    }
  }
  const auto k = static_cast<size_t>(e.kind);
  return k < vocab::kEntrySegments.size() ? vocab::kEntrySegments[k].base : "other/imported";
}

int SensitivityFloorFor(std::string_view path) {
  for (EntryKind k : {EntryKind::kStatement, EntryKind::kResource}) {
    if (vocab::PathIsWithin(path, vocab::kEntrySegments[static_cast<size_t>(k)].base)) {
      return vocab::kUnclassifiedSensitivity;
    }
  }
  return 0;
}

std::string DocumentKey(const ClinicalDocument& doc, std::string_view original_bytes) {
  Bytes digest;
  if (!doc.header.id.empty()) {
    std::string material(FormatName(doc.source_format));
    material.push_back('\0');
    material += doc.header.id;
    digest = crypto::Sha256(AsBytes(material));
  } else {
    digest = crypto::Sha256(AsBytes(original_bytes));
  }
  return "d" + ToHex(ByteView(digest).first(8));
}

std::string DocumentKeyWithContent(const ClinicalDocument& doc, std::string_view original_bytes) {
  if (doc.header.id.empty()) {
    return DocumentKey(doc, original_bytes);
  }
  std::string material(FormatName(doc.source_format));
  material.push_back('\0');
  material += doc.header.id;
  material.push_back('\0');
  const Bytes content = crypto::Sha256(AsBytes(original_bytes));
  material.append(reinterpret_cast<const char*>(content.data()), content.size());
  return "d" + ToHex(ByteView(crypto::Sha256(AsBytes(material))).first(8));
}

std::vector<SegmentPart> SplitIntoSegments(const ClinicalDocument& doc,
                                           std::string_view document_key,
                                           const OriginalInfo& original, size_t max_body_bytes) {
  const std::string key(document_key);
  std::map<std::string_view, std::vector<json>> groups;  // segment base -> entries
  for (const Entry& e : doc.entries) {
    groups[SegmentBaseFor(e)].push_back(ToJson(e));
  }
  std::vector<SegmentPart> parts;
  parts.reserve(groups.size() + 2);
  for (auto& [base, entries] : groups) {
    // A group larger than a segment may hold continues in "<key>-p2", ...
    size_t chunk = 0;
    size_t i = 0;
    while (i < entries.size()) {
      json list = json::array();
      size_t bytes = 0;
      while (i < entries.size()) {
        const size_t size = entries[i].dump().size() + 1;
        if (!list.empty() && bytes + size > max_body_bytes) {
          break;
        }
        bytes += size;
        list.push_back(std::move(entries[i++]));
      }
      SegmentPart part;
      part.path = std::string(base) + "/" + key;
      if (chunk > 0) {
        part.path += "-p" + std::to_string(chunk + 1);
      }
      ++chunk;
      part.body = json{{"format", kEntriesFormat}, {"document", key}, {"entries", std::move(list)}};
      parts.push_back(std::move(part));
    }
  }
  if (doc.has_patient) {
    SegmentPart part;
    part.path = std::string(kPatientSegmentBase) + "/" + key;
    part.body =
        json{{"format", kPatientFormat}, {"document", key}, {"patient", ToJson(doc.patient)}};
    parts.push_back(std::move(part));
  }
  {
    SegmentPart part;
    part.path = HeaderSegmentPath(key);
    part.body = json{{"format", kDocumentFormat},
                     {"document", key},
                     {"source_format", FormatName(doc.source_format)},
                     {"header", ToJson(doc.header)},
                     {"sha256", original.sha256_hex},
                     {"media_type", original.media_type},
                     {"kept_in_original_only", doc.kept_in_original_only},
                     {"entry_count", doc.entries.size()}};
    parts.push_back(std::move(part));
  }
  std::sort(parts.begin(), parts.end(),
            [](const SegmentPart& a, const SegmentPart& b) { return a.path < b.path; });
  return parts;
}

Result<ClinicalDocument> JoinSegments(std::span<const SegmentPart> parts) {
  ClinicalDocument doc;
  std::set<std::string> seen_entries;
  std::set<std::string> kept;
  for (const SegmentPart& part : parts) {
    const json& body = part.body;
    auto format_it = body.is_object() ? body.find("format") : body.end();
    const bool has_format = body.is_object() && format_it != body.end() && format_it->is_string();
    const std::string format = has_format ? format_it->get<std::string>() : std::string();
    if (format == kEntriesFormat) {
      auto it = body.find("entries");
      if (it == body.end() || !it->is_array()) {
        return MalformedPart(part.path, Status::InvalidArgument("\"entries\" must be an array"));
      }
      for (const json& ej : *it) {
        Result<Entry> e = EntryFromJson(ej);
        if (!e.ok()) {
          return MalformedPart(part.path, e.status());
        }
        std::string fingerprint = ToJson(*e).dump();
        if (seen_entries.insert(std::move(fingerprint)).second) {
          doc.entries.push_back(std::move(*e));
        }
      }
    } else if (format == kPatientFormat) {
      auto it = body.find("patient");
      if (it == body.end()) {
        return MalformedPart(part.path, Status::InvalidArgument("\"patient\" is missing"));
      }
      Result<PatientHeader> p = PatientFromJson(*it);
      if (!p.ok()) {
        return MalformedPart(part.path, p.status());
      }
      doc.patient = std::move(*p);
      doc.has_patient = true;
    } else if (format == kDocumentFormat) {
      auto it = body.find("header");
      if (it == body.end()) {
        return MalformedPart(part.path, Status::InvalidArgument("\"header\" is missing"));
      }
      Result<DocumentHeader> h = DocumentHeaderFromJson(*it);
      if (!h.ok()) {
        return MalformedPart(part.path, h.status());
      }
      doc.header = std::move(*h);
      if (auto f = body.find("source_format"); f != body.end() && f->is_string()) {
        doc.source_format = f->get<std::string>() == "ccda" ? Format::kCcda : Format::kFhir;
      }
      if (auto k = body.find("kept_in_original_only"); k != body.end() && k->is_array()) {
        for (const json& s : *k) {
          if (s.is_string()) {
            kept.insert(s.get<std::string>());
          }
        }
      }
    } else if (!has_format && body.is_object()) {
      std::optional<Entry> e = MeasurementToEntry(part.path, part.version, body);
      if (e && seen_entries.insert(ToJson(*e).dump()).second) {
        doc.entries.push_back(std::move(*e));
      }
    }
  }
  doc.kept_in_original_only.assign(kept.begin(), kept.end());
  return doc;
}

bool IsMeasurementPath(std::string_view path) { return vocab::MeasurementForPath(path) != nullptr; }

bool IsDocumentContentPath(std::string_view path) {
  if (IsMeasurementPath(path)) {
    return true;
  }
  const size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) {
    return false;
  }
  const std::string_view parent = path.substr(0, slash);
  if (parent == kPatientSegmentBase) {
    return true;
  }
  if (path.substr(0, kSourceDocumentsBase.size() + 1) == std::string(kSourceDocumentsBase) + "/") {
    return vocab::LastComponent(path) == "header";
  }
  for (const vocab::EntrySegment& s : vocab::kEntrySegments) {
    if (parent == s.base) {
      return true;
    }
  }
  for (const vocab::SectionSegment& s : vocab::kSectionSegments) {
    if (parent == s.base) {
      return true;
    }
  }
  for (const vocab::ResourceSegment& r : vocab::kResourceSegments) {
    if (parent == r.base) {
      return true;
    }
  }
  return parent == vocab::kBodyMeasureVitalSignsBase;
}

std::optional<Entry> MeasurementToEntry(std::string_view path, uint64_t version,
                                        const nlohmann::json& body) {
  if (!body.is_object()) {
    return std::nullopt;
  }
  const vocab::Measurement* m = vocab::MeasurementForPath(path);
  if (m == nullptr) {
    return std::nullopt;
  }
  Entry e;
  e.kind = EntryKind::kVitalSign;
  e.category = "vital-signs";
  e.id = "measurement:" + std::string(path) + "@" + std::to_string(version);
  e.status = "final";
  if (auto t = body.find("time"); t != body.end() && t->is_string()) {
    Result<std::string> when = NormalizeDateTime(t->get<std::string>());
    if (when.ok()) {
      e.start = *when;
    }
  }
  if (auto n = body.find("note"); n != body.end() && n->is_string()) {
    e.text = n->get<std::string>();
  }
  const auto loinc = [](std::string_view code, std::string_view display) {
    return Coding{std::string(vocab::kLoincSystem), std::string(code), std::string(display)};
  };
  if (m->fields.size() > 1) {
    // A panel: one component per field, each with its own code.
    for (const vocab::MeasurementField& f : m->fields) {
      std::optional<Quantity> q = NumberQuantity(body, f.name);
      if (!q) {
        return std::nullopt;
      }
      e.components.push_back(Component{loinc(f.loinc, f.display), std::move(q), std::nullopt, ""});
    }
    e.code = loinc(m->loinc, m->display);
    return e;
  }
  std::optional<Quantity> q = NumberQuantity(body, m->fields.front().name);
  if (!q) {
    return std::nullopt;
  }
  // A unit may carry its own code (glucose by moles rather than by mass).
  const vocab::MeasurementUnit* unit = vocab::FindUnit(*m, q->unit);
  e.code = unit != nullptr && !unit->loinc.empty() ? loinc(unit->loinc, unit->display)
                                                   : loinc(m->loinc, m->display);
  e.quantity = std::move(q);
  return e;
}

}  // namespace medvault::interop
