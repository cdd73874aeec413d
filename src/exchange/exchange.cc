// Import and export of documents against the record service (exchange.h).
#include "exchange/exchange.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <utility>

#include "common/bytes.h"
#include "common/ids.h"
#include "crypto/crypto.h"

namespace medvault::exchange {
namespace {

using interop::ClinicalDocument;
using interop::Format;
using nlohmann::json;

std::string_view MediaTypeFor(Format f) {
  return f == Format::kCcda ? "application/xml" : "application/fhir+json";
}

bool PrintableAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// HL7 confidentiality raises the sensitivity of everything the document
// brings: "R" (restricted) to at least 3, "V" (very restricted) to 4.
// What the import cannot classify is at least as sensitive as its original
// (interop::SensitivityFloorFor).
std::optional<int> SensitivityFor(std::string_view path, std::string_view confidentiality) {
  const int base = record::TopLevelFor(path).default_sensitivity;
  const int floor = interop::SensitivityFloorFor(path);
  if (confidentiality == "V") {
    return 4;
  }
  if (confidentiality == "R") {
    return std::max({base, floor, 3});
  }
  if (floor > base) {
    return floor;
  }
  return std::nullopt;
}

std::string NewUuid() {
  uint8_t b[16];
  crypto::RandomBytes(b);
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);
  const std::string hex = ToHex(ByteView(b, sizeof(b)));
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

interop::PatientHeader PatientFromDemographics(const record::Demographics& d) {
  interop::PatientHeader p;
  interop::HumanName name;
  name.family = d.family_name;
  name.given.push_back(d.given_name);
  name.use = "official";
  p.names.push_back(std::move(name));
  p.birth_date = d.birth_date;
  p.gender = d.sex;
  if (!d.identifier.empty()) {
    p.identifiers.push_back(interop::Identifier{"", d.identifier, "MR"});
  }
  return p;
}

}  // namespace

Result<record::Demographics> DemographicsFromDocument(const interop::PatientHeader& patient) {
  record::Demographics d;
  const interop::HumanName* name = nullptr;
  for (const interop::HumanName& n : patient.names) {
    if (name == nullptr || (n.use == "official" && name->use != "official")) {
      name = &n;
    }
  }
  if (name == nullptr || name->family.empty() || name->given.empty()) {
    return Status::InvalidArgument(
        "the document's patient has no given and family name: import it into an existing "
        "patient instead");
  }
  for (const std::string& g : name->given) {
    d.given_name += d.given_name.empty() ? "" : " ";
    d.given_name += g;
  }
  d.family_name = name->family;
  if (patient.birth_date.size() != 10) {
    return Status::InvalidArgument(
        "the document's patient has no full birth date (YYYY-MM-DD): import it into an existing "
        "patient instead");
  }
  d.birth_date = patient.birth_date;
  d.sex = patient.gender.empty() ? "unknown" : patient.gender;
  const interop::Identifier* chosen = nullptr;
  for (const interop::Identifier& id : patient.identifiers) {
    if (!PrintableAscii(id.value) || id.value.size() > 64) {
      continue;
    }
    if (chosen == nullptr || (id.type == "MR" && chosen->type != "MR")) {
      chosen = &id;
    }
  }
  if (chosen != nullptr) {
    d.identifier = chosen->value;
  }
  MV_RETURN_IF_ERROR(
      record::ValidateDemographics(d).WithContext("the document's patient cannot be created"));
  return d;
}

Result<ImportPlan> Importer::Plan(std::string_view bytes, const ImportOptions& options) const {
  if (bytes.size() > options.limits.max_document_bytes) {
    return Status::ResourceExhausted("the document is larger than " +
                                     std::to_string(options.limits.max_document_bytes) + " bytes");
  }
  ImportPlan plan;
  uint64_t header_seen = 0;
  MV_ASSIGN_OR_RETURN(plan.document, interop::ParseDocument(bytes, options.limits));
  const ClinicalDocument& doc = plan.document;
  plan.document_key = interop::DocumentKey(doc, bytes);
  plan.original_sha256_hex = ToHex(crypto::Sha256(AsBytes(bytes)));

  if (!options.patient_id.empty()) {
    MV_ASSIGN_OR_RETURN(record::PatientInfo p, records_->GetPatient(options.patient_id));
    if (p.erased) {
      return Status::NotFound("patient has been erased");
    }
    plan.patient_id = p.patient_id;
  } else {
    if (!doc.has_patient) {
      return Status::FailedPrecondition(
          doc.source_format == interop::Format::kFhir
              ? "the document names no patient (no Patient resource: a standalone resource such "
                "as an Observation, a Consent or an AuditEvent never has one): import it into an "
                "existing patient by giving that patient's id"
              : "the document names no patient (no recordTarget): import it into an existing "
                "patient by giving that patient's id");
    }
    MV_ASSIGN_OR_RETURN(record::Demographics d, DemographicsFromDocument(doc.patient));
    std::vector<std::string> matches;
    if (!d.identifier.empty()) {
      MV_ASSIGN_OR_RETURN(auto found, records_->FindPatients(d.family_name, d.identifier));
      for (const record::PatientInfo& p : found) {
        if (p.demographics && p.demographics->birth_date == d.birth_date) {
          matches.push_back(p.patient_id);
        }
      }
    }
    if (matches.size() > 1) {
      return Status::FailedPrecondition(
          "several patients match the document's patient: import it into one of them (give its "
          "id)");
    }
    if (matches.size() == 1) {
      plan.patient_id = matches.front();
    } else {
      plan.new_patient = std::move(d);
    }
  }

  if (!plan.patient_id.empty()) {
    // A document's identity is its id and its content: the same document
    // again is unchanged; another document that reuses the id (vendors
    // reuse template ids) goes beside the first, under a key of its id and
    // content, never over it.
    MV_ASSIGN_OR_RETURN(std::optional<StoredHeader> stored, ReadStoredHeader(plan));
    if (stored.has_value() && stored->sha256_hex != plan.original_sha256_hex) {
      plan.document_key = interop::DocumentKeyWithContent(doc, bytes);
      plan.warnings.push_back(
          "another document in this record has the same document id: imported beside it, not "
          "over it");
      MV_ASSIGN_OR_RETURN(stored, ReadStoredHeader(plan));
      if (stored.has_value() && stored->sha256_hex != plan.original_sha256_hex) {
        return Status::Internal("two documents of this record collide on one document key");
      }
    }
    plan.unchanged = stored.has_value();
    // What this plan saw under its key: the commit writes only if that is
    // still so (another process, or another request, may import a document
    // with this id meanwhile; it must not be merged into this one).
    header_seen = stored.has_value() ? stored->version : 0;
  }

  interop::OriginalInfo original{plan.original_sha256_hex,
                                 std::string(MediaTypeFor(doc.source_format))};
  std::vector<interop::SegmentPart> parts =
      interop::SplitIntoSegments(doc, plan.document_key, original);
  plan.batch.patient_id = plan.patient_id;
  plan.batch.new_patient = plan.new_patient;
  plan.batch.segments.reserve(parts.size() + 1);
  for (interop::SegmentPart& part : parts) {
    record::BatchSegmentWrite w;
    w.path = std::move(part.path);
    w.write.kind = record::ContentKind::kJson;
    w.write.sensitivity = SensitivityFor(w.path, doc.header.confidentiality);
    w.write.content = ToBytes(part.body.dump());
    if (w.path == interop::HeaderSegmentPath(plan.document_key)) {
      w.expected_latest = header_seen;
    }
    plan.batch.segments.push_back(std::move(w));
  }
  record::BatchSegmentWrite w;
  w.path = interop::OriginalSegmentPath(plan.document_key);
  w.write.kind = record::ContentKind::kBinary;
  w.write.media_type = original.media_type;
  w.write.sensitivity = SensitivityFor(w.path, doc.header.confidentiality);
  w.write.content.assign(bytes.begin(), bytes.end());
  plan.batch.segments.push_back(std::move(w));
  return plan;
}

Result<std::optional<Importer::StoredHeader>> Importer::ReadStoredHeader(
    const ImportPlan& plan) const {
  auto header =
      records_->ReadSegment(plan.patient_id, interop::HeaderSegmentPath(plan.document_key), 0);
  if (!header.ok()) {
    if (header.status().code() == StatusCode::kNotFound) {
      return std::optional<StoredHeader>();
    }
    return header.status();
  }
  json body = json::parse(AsString(header->content), nullptr, false);
  // A header that does not say its hash is treated as another document's.
  StoredHeader out;
  out.version = header->info.version;
  if (auto it = body.is_object() ? body.find("sha256") : body.end();
      it != body.end() && it->is_string()) {
    out.sha256_hex = it->get<std::string>();  // anything else: no hash, never a throw
  }
  return std::optional<StoredHeader>(std::move(out));
}

Result<ImportOutcome> Importer::Commit(const ImportPlan& plan, std::string_view author) const {
  ImportOutcome out;
  out.document_key = plan.document_key;
  out.format = plan.document.source_format;
  out.entries = plan.document.entries.size();
  out.kept_in_original_only = plan.document.kept_in_original_only;
  out.warnings = plan.warnings;
  out.unchanged = plan.unchanged;
  out.patient_id = plan.patient_id;
  if (plan.unchanged) {
    return out;
  }
  MV_ASSIGN_OR_RETURN(record::BatchResult written, records_->WriteBatch(plan.batch, author));
  out.patient_id = written.patient_id;
  out.patient_created = written.patient_created;
  for (const record::SegmentVersionInfo& v : written.versions) {
    out.segments.push_back(v.path);
  }
  return out;
}

Result<ImportOutcome> Importer::Import(std::string_view bytes, const ImportOptions& options,
                                       std::string_view author) const {
  MV_ASSIGN_OR_RETURN(ImportPlan plan, Plan(bytes, options));
  return Commit(plan, author);
}

namespace {

// Whether `next`, planned while `prev` committed, must be planned again.
bool PlanIsStale(const ImportPlan& next, const ImportPlan& prev,
                 const Result<ImportOutcome>& prev_outcome) {
  if (!prev_outcome.ok() || prev_outcome->unchanged) {
    return false;  // all or nothing: a failed or empty commit changed nothing
  }
  if (prev_outcome->patient_created && next.new_patient.has_value()) {
    return true;  // the new patient may be this document's patient
  }
  return next.patient_id == prev_outcome->patient_id && next.document_key == prev.document_key;
}

}  // namespace

void ImportInOrder(size_t count, const PlanFn& plan, const CommitFn& commit, const DoneFn& done) {
  if (count == 0) {
    return;
  }
  // One planning thread for the whole batch (a thread per document would
  // start every parse in a cold heap).
  std::mutex mu;
  std::condition_variable cv;
  size_t wanted = 0;  // the plan asked for: index + 1; 0 none
  std::optional<Result<ImportPlan>> made;
  bool quit = false;
  std::thread planner([&] {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return wanted != 0 || quit; });
      if (quit) {
        return;
      }
      const size_t index = wanted - 1;
      wanted = 0;
      lock.unlock();
      Result<ImportPlan> p = plan(index);
      lock.lock();
      made.emplace(std::move(p));
      cv.notify_all();
    }
  });
  Result<ImportPlan> current = plan(0);
  for (size_t i = 0; i < count; ++i) {
    if (i + 1 < count) {
      std::lock_guard<std::mutex> lock(mu);
      wanted = i + 2;
      cv.notify_all();
    }
    Result<ImportOutcome> outcome =
        current.ok() ? commit(i, *current) : Result<ImportOutcome>(current.status());
    Result<ImportPlan> following = Status::Internal("no further document");
    if (i + 1 < count) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return made.has_value(); });
      following = std::move(*made);
      made.reset();
    }
    if (i + 1 < count && following.ok() && current.ok() &&
        PlanIsStale(*following, *current, outcome)) {
      following = plan(i + 1);
    }
    done(i, std::move(outcome));
    current = std::move(following);
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    quit = true;
    cv.notify_all();
  }
  planner.join();
}

Result<RecordParts> ReadRecordParts(record::RecordService& records, std::string_view patient_id,
                                    const ExportFilter& filter, size_t max_readings_per_segment) {
  // The patient's root key is unwrapped once for the whole read, not once
  // per segment (NotFound for an erased patient).
  MV_ASSIGN_OR_RETURN(std::unique_ptr<record::PatientKeys> keys,
                      records.OpenPatientKeys(patient_id));
  RecordParts out;
  MV_ASSIGN_OR_RETURN(out.patient, records.GetPatientWith(*keys));
  MV_ASSIGN_OR_RETURN(std::vector<store::SegmentSummary> tree, records.ListTree(patient_id, ""));
  for (const store::SegmentSummary& s : tree) {
    if (s.kind != record::ContentKind::kJson) {
      continue;  // originals and attachments travel as themselves, not in documents
    }
    if (!interop::IsDocumentContentPath(s.path)) {
      continue;  // not something a clinical document carries
    }
    // Decided before anything is read, at the stored sensitivity: the
    // highest of the versions that would be read (a measurement segment's
    // versions are its readings, and every one goes).
    const bool measurement = interop::IsMeasurementPath(s.path);
    std::vector<record::SegmentVersionInfo> versions;
    int sensitivity = s.sensitivity;
    if (measurement) {
      MV_ASSIGN_OR_RETURN(versions, records.ListVersions(patient_id, s.path));
      for (const record::SegmentVersionInfo& v : versions) {
        sensitivity = std::max(sensitivity, v.sensitivity);
      }
    }
    if (!filter(ExportQuestion{s.path, s.category, sensitivity, false})) {
      ++out.segments_withheld;
      continue;
    }
    ++out.segments_included;
    if (!measurement) {
      versions.push_back(record::SegmentVersionInfo{});  // the latest (version 0)
    } else if (max_readings_per_segment != 0 && versions.size() > max_readings_per_segment) {
      const size_t unread = versions.size() - max_readings_per_segment;
      out.unread_readings.emplace_back(s.path, unread);
      versions.erase(versions.begin(), versions.begin() + static_cast<std::ptrdiff_t>(unread));
    }
    for (const record::SegmentVersionInfo& v : versions) {
      MV_ASSIGN_OR_RETURN(record::SegmentContent c,
                          records.ReadSegmentWith(*keys, s.path, v.version));
      out.parts.push_back(interop::SegmentPart{s.path, c.info.version,
                                               json::parse(AsString(c.content), nullptr, false)});
      out.authors.push_back(std::move(c.info.author));
      out.created_at_ms.push_back(c.info.created_at_ms);
    }
  }
  return out;
}

Result<ExportOutcome> Export(record::RecordService& records, std::string_view patient_id,
                             interop::Format format, const ExportFilter& filter) {
  MV_ASSIGN_OR_RETURN(RecordParts read, ReadRecordParts(records, patient_id, filter));
  ExportOutcome out;
  out.segments_included = read.segments_included;
  out.segments_withheld = read.segments_withheld;
  const record::PatientInfo& patient = read.patient;
  Result<ClinicalDocument> joined = interop::JoinSegments(read.parts);
  if (!joined.ok()) {
    // Some part breaks its format: leave those out, part by part.
    std::vector<interop::SegmentPart> good;
    std::string bad_path;
    for (interop::SegmentPart& p : read.parts) {
      if (interop::JoinSegments(std::span<const interop::SegmentPart>(&p, 1)).ok()) {
        good.push_back(std::move(p));
      } else if (p.path != bad_path) {
        bad_path = p.path;
        ++out.segments_unreadable;
        --out.segments_included;
      }
    }
    joined = interop::JoinSegments(good);
  }
  if (!joined.ok()) {
    return joined.status();
  }
  ClinicalDocument doc = std::move(joined).value();
  if (!doc.has_patient && patient.demographics &&
      filter(ExportQuestion{"", "personal-information", 0, true})) {
    doc.patient = PatientFromDemographics(*patient.demographics);
    doc.has_patient = true;
  }
  // The export is a document of its own, not any of the imported ones.
  doc.source_format = format;
  doc.header = interop::DocumentHeader{};
  doc.header.id = "urn:uuid:" + NewUuid();
  doc.header.type = interop::Coding{"http://loinc.org", "34133-9", "Summarization of Episode Note"};
  doc.header.title = "Patient record exported by medvault";
  MV_ASSIGN_OR_RETURN(
      doc.header.time,
      interop::NormalizeDateTime(FormatRfc3339Millis(NowUnixMillis()).substr(0, 19) + "Z"));
  doc.header.custodian.name = "medvault";
  doc.kept_in_original_only.clear();
  out.entries = doc.entries.size();
  out.media_type = std::string(MediaTypeFor(format));
  if (format == Format::kCcda) {
    MV_ASSIGN_OR_RETURN(out.document, interop::WriteCcda(doc));
  } else {
    MV_ASSIGN_OR_RETURN(out.document, interop::WriteFhirBundle(doc));
  }
  return out;
}

}  // namespace medvault::exchange
