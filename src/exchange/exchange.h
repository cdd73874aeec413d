// medvault exchange: importing C-CDA and FHIR documents into a patient's
// record and exporting a record (or the part a reader may see) as a
// document. Public interface of src/exchange; built on src/interop (the
// formats and the segment layout) and src/record (the encrypted store).
//
// Access decisions are the caller's: the API and the CLI hand in a
// callback that asks the decision point for every segment an import writes
// or an export reads, and records the decision in the ledger.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "interop/interop.h"
#include "interop/mapping.h"
#include "record/record.h"

namespace medvault::exchange {

struct ImportOptions {
  // Import into this patient. Empty: the document's own patient, matched by
  // identifier, family name and birth date, or created when none matches.
  std::string patient_id;
  interop::ParseLimits limits;
};

// What an import will write, computed before anything is written so that
// the caller can decide on every path first.
struct ImportPlan {
  interop::ClinicalDocument document;
  std::string document_key;
  std::string original_sha256_hex;
  std::string patient_id;                           // empty when the patient is new
  std::optional<record::Demographics> new_patient;  // set when the patient is new
  // The same document (same key, same bytes) is already in this record:
  // committing writes nothing.
  bool unchanged = false;
  // What the importer should hear (never document content), e.g. that
  // another document of this record carries the same document id.
  std::vector<std::string> warnings;
  record::RecordBatch batch;  // the segments, the original document last
};

struct ImportOutcome {
  std::string patient_id;
  bool patient_created = false;
  bool unchanged = false;
  std::string document_key;
  interop::Format format = interop::Format::kFhir;
  size_t entries = 0;
  std::vector<std::string> segments;  // paths written
  std::vector<std::string> kept_in_original_only;
  std::vector<std::string> warnings;  // ImportPlan::warnings
};

class Importer {
 public:
  // `records` must outlive the importer.
  explicit Importer(record::RecordService* records) : records_(records) {}

  // Parses and maps `bytes`; writes nothing. InvalidArgument (with the place
  // in the document) for a document that cannot be imported; NotFound for an
  // unknown patient_id; FailedPrecondition when the document names no
  // patient and none was given, or several patients match.
  Result<ImportPlan> Plan(std::string_view bytes, const ImportOptions& options) const;
  // Writes a plan's segments (and creates its patient) all or nothing.
  Result<ImportOutcome> Commit(const ImportPlan& plan, std::string_view author) const;
  // Plan + Commit.
  Result<ImportOutcome> Import(std::string_view bytes, const ImportOptions& options,
                               std::string_view author) const;

 private:
  // The header segment stored under the plan's document key for its
  // patient: its latest version and the SHA-256 (hex) of the original it
  // describes; nullopt when there is none.
  struct StoredHeader {
    uint64_t version = 0;
    std::string sha256_hex;
  };
  Result<std::optional<StoredHeader>> ReadStoredHeader(const ImportPlan& plan) const;

  record::RecordService* records_;
};

// Imports `count` documents in order, planning document i + 1 (parse, map,
// patient match: Importer::Plan, with whatever the caller decides around
// it) on a second thread while document i commits, so the parse of one
// overlaps the durable write of the other. The outcomes are those of
// importing one by one: a plan made before the previous commit is made
// again after it when that commit could have changed it (the commit created
// a patient and this plan would create one; or it wrote a document with
// this plan's key into this plan's patient). `plan` and `commit` of
// different documents run at the same time; `done` is called on the
// caller's thread, in order, once per document.
using PlanFn = std::function<Result<ImportPlan>(size_t index)>;
using CommitFn = std::function<Result<ImportOutcome>(size_t index, const ImportPlan& plan)>;
using DoneFn = std::function<void(size_t index, Result<ImportOutcome> outcome)>;
void ImportInOrder(size_t count, const PlanFn& plan, const CommitFn& commit, const DoneFn& done);

// What an export asks the caller before it reads: one segment (its path,
// category and stored sensitivity — the highest of the versions it would
// read), or the patient's demographics (demographics = true, no path).
struct ExportQuestion {
  std::string_view path;
  std::string_view category;
  int sensitivity = 0;
  bool demographics = false;
};
// True: include it.
using ExportFilter = std::function<bool(const ExportQuestion&)>;

struct ExportOutcome {
  std::string document;    // the C-CDA XML or FHIR JSON
  std::string media_type;  // "application/xml" or "application/fhir+json"
  size_t entries = 0;
  size_t segments_included = 0;
  size_t segments_withheld = 0;    // refused by the filter
  size_t segments_unreadable = 0;  // permitted, but not a valid body of their format: left out
};

// What a record holds of clinical content, as the filter let through: the
// latest version of every imported segment and every version (reading) of
// the measurement segments, each part with the author and time of the
// version it was read from (parallel vectors). A part may break its format
// (anyone with write access may store JSON there): the consumer leaves
// such parts out and counts them, so that one bad segment cannot stop the
// rest. Shared by Export and the clinical summary (summary.h). NotFound for
// an unknown or erased patient.
struct RecordParts {
  record::PatientInfo patient;
  std::vector<interop::SegmentPart> parts;
  std::vector<std::string> authors;    // account id of each part's version
  std::vector<int64_t> created_at_ms;  // when each part's version was stored
  size_t segments_included = 0;
  size_t segments_withheld = 0;  // refused by the filter
  // With a cap on readings: how many older versions of each measurement
  // segment were left unread (path, count), so that a reader can still
  // count them.
  std::vector<std::pair<std::string, uint64_t>> unread_readings;
};
// `max_readings_per_segment` (0: all): read only the newest that many
// versions of each measurement segment (by version, i.e. in the order they
// were recorded); the decision still covers every version's sensitivity.
Result<RecordParts> ReadRecordParts(record::RecordService& records, std::string_view patient_id,
                                    const ExportFilter& filter,
                                    size_t max_readings_per_segment = 0);

// Exports the latest version of every imported segment and every version of
// the measurement segments (blood pressure, glucose, ...) the filter lets
// through. A segment whose stored body does not follow its format (anyone
// with write access may store JSON there) is left out and counted, so that
// one bad segment cannot stop the export of the rest. The document is new (its own id and time);
// its patient is the latest imported identity, else the record's demographics. NotFound for an
// unknown or erased patient.
Result<ExportOutcome> Export(record::RecordService& records, std::string_view patient_id,
                             interop::Format format, const ExportFilter& filter);

// The demographics a new patient gets from a document's patient header:
// the first name, birth date, gender and the medical record number (or the
// first identifier) when it fits. InvalidArgument naming what is missing.
Result<record::Demographics> DemographicsFromDocument(const interop::PatientHeader& patient);

}  // namespace medvault::exchange
