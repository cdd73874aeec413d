// Data operations through a Scope (enforce.h): each decides before it touches
// data, so that every door (HTTP, the command line, later devices and FHIR
// REST) reads, imports and exports the same way.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "enforce/enforce.h"
#include "engine/engine.h"
#include "vocab/vocab.h"

namespace medvault::enforce {

using policy::Action;

policy::Resource SegmentResource(const std::string& patient_id, const std::string& path,
                                 int sensitivity) {
  const record::TopLevelSegment& top = record::TopLevelFor(path);
  policy::Resource r;
  r.patient_id = patient_id;
  r.path = path;
  r.category = top.category;
  r.sensitivity = sensitivity < 0 ? top.default_sensitivity : sensitivity;
  return r;
}

Status ApplyMasking(nlohmann::json& document, const policy::Decision& d) {
  const std::vector<std::string>* fields = d.obligations.mask_fields;
  if (fields == nullptr || fields->empty()) {
    return Status::Ok();
  }
  std::vector<engine::FieldRule> rules;
  for (const std::string& f : *fields) {
    rules.push_back(engine::FieldRule{f, engine::FieldAction::kMask, !vocab::IsSemanticField(f)});
  }
  MV_ASSIGN_OR_RETURN(engine::FieldMasker masker, engine::FieldMasker::Create(rules));
  if (!document.is_object() || !masker.Apply(document).ok()) {
    document = std::string(engine::kMaskedValue);  // fail closed
  }
  return Status::Ok();
}

Result<std::unique_ptr<record::SegmentReader>> OpenSegment(
    Scope& scope, record::RecordService& records, Action action, const std::string& patient_id,
    const std::string& path, uint64_t version) {
  MV_RETURN_IF_ERROR(scope.Decide(action, SegmentResource(patient_id, path)));
  MV_ASSIGN_OR_RETURN(auto reader, records.OpenSegment(patient_id, path, version));
  if (reader->info().sensitivity != record::TopLevelFor(path).default_sensitivity) {
    MV_RETURN_IF_ERROR(
        scope.Decide(action, SegmentResource(patient_id, path, reader->info().sensitivity)));
  }
  return reader;
}

Result<record::SegmentVersionInfo> WriteSegment(Scope& scope, record::RecordService& records,
                                                const std::string& patient_id,
                                                const std::string& path,
                                                const record::SegmentWrite& write,
                                                std::string_view author) {
  scope.LendToNextWrite();
  Result<record::SegmentVersionInfo> written =
      records.WriteSegment(patient_id, path, write, author);
  scope.SettleLent(written.ok());
  return written;
}

std::vector<Bytes> RidersForWrite() {
  Scope* scope = CurrentScope();
  return scope == nullptr ? std::vector<Bytes>{} : scope->TakeLent();
}

Result<exchange::ImportOutcome> ImportDocument(Scope& scope, record::RecordService& records,
                                               std::string_view document,
                                               const std::string& patient_id,
                                               const exchange::ImportOptions& base_options) {
  MV_ASSIGN_OR_RETURN(exchange::ImportPlan plan,
                      PlanImport(scope, records, document, patient_id, base_options));
  return CommitImport(scope, records, plan);
}

Result<exchange::ImportOutcome> CommitImport(Scope& scope, record::RecordService& records,
                                             const exchange::ImportPlan& plan) {
  return exchange::Importer(&records).Commit(plan, scope.origin().Actor());
}

Result<exchange::ImportPlan> PlanImport(Scope& scope, record::RecordService& records,
                                        std::string_view document, const std::string& patient_id,
                                        const exchange::ImportOptions& base_options) {
  exchange::Importer importer(&records);
  exchange::ImportOptions options = base_options;
  options.patient_id = patient_id;
  if (!patient_id.empty()) {
    // The decision on the record comes first, so that nothing about the
    // document or the patient is answered to someone who may not write here.
    MV_RETURN_IF_ERROR(
        scope.Decide(Action::kWrite, SegmentResource(patient_id, "source-documents")));
  } else {
    // Matching the document's patient is a search of the directory.
    MV_RETURN_IF_ERROR(scope.Decide(Action::kSearchPatients, {}));
  }
  MV_ASSIGN_OR_RETURN(exchange::ImportPlan plan, importer.Plan(document, options));
  if (plan.new_patient.has_value()) {
    MV_RETURN_IF_ERROR(scope.Decide(Action::kCreatePatient, {}));
  } else if (patient_id.empty()) {
    MV_RETURN_IF_ERROR(
        scope.Decide(Action::kWrite, SegmentResource(plan.patient_id, "source-documents")));
  }
  for (const record::BatchSegmentWrite& w : plan.batch.segments) {
    const int sensitivity = w.write.sensitivity.value_or(-1);
    // A new patient's id is made at commit: the create decision covers it.
    if (plan.new_patient.has_value()) {
      continue;
    }
    Status st = scope.Decide(Action::kWrite, SegmentResource(plan.patient_id, w.path, sensitivity));
    if (!st.ok()) {
      return Status(st.code(), w.path + ": " + st.message());
    }
  }
  return plan;
}

namespace {

// What a whole-record filter let through and held back.
struct FilterCounts {
  size_t permitted = 0;  // segments
  size_t masked = 0;     // segments permitted only with masking, held back
};

// The filter of a whole-record read (an export, the summary): `action` on
// every segment at its stored sensitivity, read-demographics for the
// demographics. A permit that asks for masking holds the segment back:
// documents and summaries carry whole segments (fail closed rather than
// hand out unmasked fields).
exchange::ExportFilter WholeRecordFilter(Scope& scope, const std::string& patient_id, Action action,
                                         FilterCounts& counts) {
  return [&scope, &patient_id, action, &counts](const exchange::ExportQuestion& q) {
    const std::string path(q.path);  // the Resource views it
    policy::Resource r;
    r.patient_id = patient_id;
    if (!q.demographics) {
      r = SegmentResource(patient_id, path, q.sensitivity);
    }
    policy::Decision d;
    if (!scope.Permits(q.demographics ? Action::kReadDemographics : action, r, &d)) {
      return false;
    }
    const bool masked = d.obligations.mask_fields != nullptr && !d.obligations.mask_fields->empty();
    if (!q.demographics) {
      ++(masked ? counts.masked : counts.permitted);
    }
    return !masked;
  };
}

}  // namespace

Result<ExportResult> ExportRecord(Scope& scope, record::RecordService& records,
                                  const std::string& patient_id, interop::Format format) {
  // The whole record first: an outright deny (no relationship, consent
  // denied, ...) fails with its reason before anything is read.
  MV_RETURN_IF_ERROR(scope.Decide(Action::kExport, SegmentResource(patient_id, "")));
  ExportResult result;
  FilterCounts counts;
  const exchange::ExportFilter filter =
      WholeRecordFilter(scope, patient_id, Action::kExport, counts);
  MV_ASSIGN_OR_RETURN(result.outcome, exchange::Export(records, patient_id, format, filter));
  result.masked_withheld = counts.masked;
  return result;
}

Result<SummaryResult> SummarizeRecord(Scope& scope, record::RecordService& records,
                                      const std::string& patient_id,
                                      const exchange::SummaryOptions& options) {
  policy::Resource whole;
  whole.patient_id = patient_id;
  const bool whole_ok = scope.Permits(Action::kRead, whole);
  FilterCounts counts;
  const exchange::ExportFilter filter = WholeRecordFilter(scope, patient_id, Action::kRead, counts);
  // A series shows its newest points only: older readings are counted, not read.
  Result<exchange::RecordParts> read =
      exchange::ReadRecordParts(records, patient_id, filter, options.max_points_per_group);
  if (!whole_ok && (!read.ok() || counts.permitted == 0)) {
    // Nothing readable: the deny of the record with its reason, the same
    // for a patient who does not exist (whose NotFound would tell).
    MV_RETURN_IF_ERROR(scope.Decide(Action::kRead, whole));
  }
  MV_RETURN_IF_ERROR(read.status());
  const bool demographics = filter(exchange::ExportQuestion{"", "personal-information", 0, true});
  exchange::SummaryOptions with_counts = options;
  with_counts.segments_withheld_masked = counts.masked;
  SummaryResult result;
  result.summary = exchange::Summarize(std::move(read).value(), demographics, with_counts);
  return result;
}

}  // namespace medvault::enforce
