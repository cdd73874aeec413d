// Documents in and out: importing a C-CDA or FHIR document into a patient's
// record and exporting the record (the part the caller may see) as one.
// Every segment an import would write is decided before anything is
// written; every segment an export would read is decided, and refused ones
// are left out. All decisions go to the ledger like any other.
#include "api/http_internal.h"
#include "exchange/exchange.h"
#include "record/record.h"

namespace medvault::api::internal {
namespace {

using nlohmann::json;
using policy::Action;

Status ImportDocument(Call& call, const std::string& body) {
  const std::string id = call.req.matches[1].str();
  MV_RETURN_IF_ERROR(CheckQuery(call.req, {}));
  // The decision on the record comes first, so that nothing about the
  // document or the patient is answered to someone who may not write here.
  MV_RETURN_IF_ERROR(call.Decide(Action::kWrite, SegmentResource(id, "source-documents")));
  exchange::Importer importer(call.services.records);
  exchange::ImportOptions options;
  options.patient_id = id;
  MV_ASSIGN_OR_RETURN(exchange::ImportPlan plan, importer.Plan(body, options));
  for (const record::BatchSegmentWrite& w : plan.batch.segments) {
    const int sensitivity = w.write.sensitivity.value_or(-1);
    Status st = call.Decide(Action::kWrite, SegmentResource(id, w.path, sensitivity));
    if (!st.ok()) {
      return Status(st.code(), w.path + ": " + st.message());
    }
  }
  MV_ASSIGN_OR_RETURN(exchange::ImportOutcome out, importer.Commit(plan, call.account_id()));
  json result = {{"patient_id", out.patient_id},
                 {"document_key", out.document_key},
                 {"format", std::string(interop::FormatName(out.format))},
                 {"unchanged", out.unchanged},
                 {"entries", out.entries},
                 {"segments", out.segments},
                 {"kept_in_original_only", out.kept_in_original_only}};
  call.Json(out.unchanged ? 200 : 201, result);
  return Status::Ok();
}

Status ExportRecord(Call& call) {
  const std::string id = call.req.matches[1].str();
  MV_RETURN_IF_ERROR(CheckQuery(call.req, {"format"}));
  std::string format_name =
      call.req.has_param("format") ? call.req.get_param_value("format") : "fhir";
  if (format_name != "fhir" && format_name != "ccda") {
    return Status::InvalidArgument("format must be fhir or ccda");
  }
  const interop::Format format =
      format_name == "ccda" ? interop::Format::kCcda : interop::Format::kFhir;
  // The whole record first: an outright deny (no relationship, consent
  // denied, ...) answers 403 with its reason before anything is read.
  MV_RETURN_IF_ERROR(call.Decide(Action::kExport, SegmentResource(id, "")));
  size_t masked_withheld = 0;
  auto filter = [&call, &id, &masked_withheld](const exchange::ExportQuestion& q) {
    const std::string path(q.path);
    const policy::Resource r = q.demographics ? policy::Resource{id, "", "", 0, ""}
                                              : SegmentResource(id, path, q.sensitivity);
    const Action action = q.demographics ? Action::kReadDemographics : Action::kExport;
    policy::Decision d;
    if (!call.Permits(action, r, &d)) {
      return false;
    }
    // A permit that asks for masking is not exported: documents carry
    // whole segments (fail closed rather than export unmasked fields).
    if (d.obligations.mask_fields != nullptr && !d.obligations.mask_fields->empty()) {
      ++masked_withheld;
      return false;
    }
    return true;
  };
  MV_ASSIGN_OR_RETURN(exchange::ExportOutcome out,
                      exchange::Export(*call.services.records, id, format, filter));
  call.res.status = 200;
  call.res.set_header("X-Export-Segments", std::to_string(out.segments_included));
  call.res.set_header("X-Export-Withheld", std::to_string(out.segments_withheld));
  call.res.set_header("X-Export-Unreadable", std::to_string(out.segments_unreadable));
  call.res.set_header("Content-Disposition",
                      "attachment; filename=\"record." +
                          std::string(format == interop::Format::kCcda ? "xml" : "json") + "\"");
  call.res.set_header("X-Export-Withheld-Masked", std::to_string(masked_withheld));
  call.res.set_content(out.document, out.media_type);
  return Status::Ok();
}

}  // namespace

void RegisterExchangeRoutes(RouteTable& table) {
  const std::string patient = std::string("/api/v1/patients/") + std::string(kIdRe);
  table.RouteWithDocument("POST", patient + "/documents", "/api/v1/patients/{id}/documents",
                          RouteAccess::kData, ImportDocument);
  table.Route("GET", patient + "/export", "/api/v1/patients/{id}/export", RouteAccess::kData,
              [](Call& call) { return ExportRecord(call); });
}

}  // namespace medvault::api::internal
