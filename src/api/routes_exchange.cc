// Documents in and out: importing a C-CDA or FHIR document into a patient's
// record and exporting the record (the part the caller may see) as one.
// Every segment an import would write is decided before anything is
// written; every segment an export would read is decided, and refused ones
// are left out. All decisions go to the ledger like any other.
#include "api/http_internal.h"
#include "exchange/exchange.h"
#include "exchange/summary.h"
#include "record/record.h"

namespace medvault::api::internal {
namespace {

using nlohmann::json;
using policy::Action;

Status ImportDocument(Call& call, const std::string& body) {
  const std::string id = call.req.matches[1].str();
  MV_RETURN_IF_ERROR(CheckQuery(call.req, {}));
  MV_ASSIGN_OR_RETURN(exchange::ImportOutcome out,
                      enforce::ImportDocument(call.scope(), *call.services.records, body, id));
  json result = {{"patient_id", out.patient_id},
                 {"document_key", out.document_key},
                 {"format", std::string(interop::FormatName(out.format))},
                 {"unchanged", out.unchanged},
                 {"entries", out.entries},
                 {"segments", out.segments},
                 {"kept_in_original_only", out.kept_in_original_only},
                 {"warnings", out.warnings}};
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
  MV_ASSIGN_OR_RETURN(enforce::ExportResult result,
                      enforce::ExportRecord(call.scope(), *call.services.records, id, format));
  const exchange::ExportOutcome& out = result.outcome;
  const size_t masked_withheld = result.masked_withheld;
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

// The clinical summary, decided per segment like every read. `points`
// caps the points of each observation group (the newest; default 500).
Status RecordSummary(Call& call) {
  const std::string id = call.req.matches[1].str();
  MV_RETURN_IF_ERROR(CheckQuery(call.req, {"points"}));
  exchange::SummaryOptions options;
  options.max_points_per_group = 500;
  MV_ASSIGN_OR_RETURN(uint64_t points, UintParam(call.req, "points", false, 500));
  if (points < 1 || points > 100000) {
    return Status::InvalidArgument("points must be an integer between 1 and 100000");
  }
  options.max_points_per_group = points;
  options.patient_id = id;
  // Readings name their authors by account id: the answer names them too,
  // each looked up once (as the access history does).
  std::map<std::string, std::string> names;
  options.account_name = [&names, &call](const std::string& account) {
    auto [it, fresh] = names.try_emplace(account);
    if (fresh) {
      auto a = call.services.accounts->GetAccount(account);
      if (a.ok()) {
        it->second = a->display_name;
      }
    }
    return it->second;
  };
  MV_ASSIGN_OR_RETURN(enforce::SummaryResult result,
                      enforce::SummarizeRecord(call.scope(), *call.services.records, id, options));
  call.scope().SetSummary("permit filtered");
  call.res.status = 200;
  call.res.set_content(std::move(result.summary), "application/json");
  return Status::Ok();
}

}  // namespace

void RegisterExchangeRoutes(RouteTable& table) {
  const std::string patient = std::string("/api/v1/patients/") + std::string(kIdRe);
  table.RouteWithDocument("POST", patient + "/documents", "/api/v1/patients/{id}/documents",
                          RouteAccess::kData, ImportDocument);
  table.Route("GET", patient + "/export", "/api/v1/patients/{id}/export", RouteAccess::kData,
              [](Call& call) { return ExportRecord(call); });
  table.Route("GET", patient + "/summary", "/api/v1/patients/{id}/summary", RouteAccess::kData,
              RecordSummary);
}

}  // namespace medvault::api::internal
