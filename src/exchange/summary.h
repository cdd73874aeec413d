// The clinical summary of a record: what a patient or a clinician reads,
// built from the structured record (the entries of every imported document
// and every home reading), never from raw segments. Public interface of
// src/exchange, beside exchange.h.
//
// The summary is JSON (the API answers it as is; docs/api.md describes it):
//
//   {"patient_id" (when given), "patient": {"name", "birth_date", "gender", "identifiers": [...]},
//   (when permitted)
//    "sections": {"problems": [ITEM], "allergies": [...], "medications": [...],
//                 "immunizations", "procedures", "encounters", "plans", "social_history",
//                 "family_history", "notes", "document_references"},
//    "observations": [GROUP],     results, vital signs and home readings, grouped by what
//                                 was measured (one group per code), newest first
//    "documents": [DOCUMENT],     the imported documents the items come from
//    "counts": {"items", "observations", "documents", "segments_included",
//               "segments_withheld", "segments_unreadable", "segments_withheld_masked",
//               "readings_not_summarised"}}
//
//   ITEM: {"kind", "name", "code": CODE, "status", "active", "start", "end", "value",
//          "category", "severity", "reactions": [names], "route", "relation", "text",
//          "documents": [document keys], "recorded_by": account id (readings),
//          "recorded_by_name", "recorded_at"}
//   CODE: {"system", "system_name" ("LOINC", "SNOMED CT", ... or ""), "code", "display",
//          "translations": [CODE]}
//   GROUP: {"code": CODE, "name", "kind" ("result" | "vital-sign"),
//           "category", "unit", "numeric", "count", "abnormal_count",
//           "points": [POINT] newest first}
//   POINT: {"time", "value" (decimal text, as the source wrote it), "unit", "text" (value for
//           people: "7.2 %", "Positive", "120/80 mm[Hg]"), "flag" (interpretation code),
//           "flag_text" ("High", ...), "abnormal", "reference_range" ("4.0-5.6 %", the
//           source's text when it gave one), "components": [{"code", "name", "value",
//           "unit", "text"}], "documents", "recorded_by", "recorded_at", "status"}
//   DOCUMENT: {"key", "title", "type": CODE, "time", "format" ("ccda" | "fhir"),
//              "authors": [names], "custodian", "entry_count"}
//
// Items carry names (a code's display, else its original text, else the
// code), never storage paths or hashes; account ids in "recorded_by" are for
// the caller to turn into names (the API does). The same entry brought by
// several documents is one item listing every document.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "exchange/exchange.h"

namespace medvault::exchange {

struct SummaryOptions {
  // Points kept per observation group (the newest); the group's "count"
  // says how many there were. 0: all. Also caps the readings read from each
  // measurement segment (the newest by version; older ones are counted in
  // their group, or in counts.readings_not_summarised when no read point
  // has their code), so a record of years of home readings is not read
  // whole for one page.
  size_t max_points_per_group = 0;
  // The name of the account that recorded a reading, written as
  // "recorded_by_name" ("" or unset: none).
  std::function<std::string(const std::string& account_id)> account_name;
  // Written as "patient_id" when not empty.
  std::string patient_id;
  // Segments the caller's filter left out because their permit asked for
  // masking: written in "counts".
  size_t segments_withheld_masked = 0;
};

// Summarises what ReadRecordParts read, consuming it (each part's parsed
// body is freed once read). `demographics_permitted`: whether the patient
// block may name the patient (the caller's decision).
// The answer is JSON text, written straight out (a summary of thousands of
// observations is too large to build as a DOM first).
std::string Summarize(RecordParts&& read, bool demographics_permitted,
                      const SummaryOptions& options = {});

// ReadRecordParts + Summarize: every segment the filter lets through (asked
// with the same questions as Export, demographics included). NotFound for
// an unknown or erased patient.
Result<std::string> SummarizeRecord(record::RecordService& records, std::string_view patient_id,
                                    const ExportFilter& filter, const SummaryOptions& options = {});

}  // namespace medvault::exchange
