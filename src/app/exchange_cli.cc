// `medvault import` and `medvault export`: documents in and out from the
// console. Imports write through the record service, so every segment
// write is in the ledger (actor "cli"); exports decide every segment for
// the reader named with --as (or record a console export) in the ledger.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "app/app.h"
#include "app/cli_internal.h"
#include "app/command.h"
#include "auth/auth.h"
#include "common/ids.h"
#include "enforce/enforce.h"
#include "exchange/exchange.h"
#include "ledger/ledger.h"
#include "policy/policy.h"

namespace medvault::app {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kImportUsage =
    "usage: medvault import [--data DIR] [--patient ID] [--quiet] FILE|DIR...\n"
    "\n"
    "Imports HL7 C-CDA documents (XML) and FHIR R4 resources or Bundles (JSON). Directories\n"
    "are searched for *.xml and *.json files. Each document is written whole or not at all:\n"
    "one that fails leaves nothing behind and is reported with where and why it failed.\n"
    "The original document is kept, encrypted, under source-documents/<key>/original.\n"
    "Importing the same document again changes nothing.\n"
    "\n"
    "  --data DIR      data directory (env MEDVAULT_DATA)\n"
    "  --patient ID    import into this patient; default: the document's own patient,\n"
    "                  matched by identifier, family name and birth date, or created\n"
    "  --quiet         no progress bar\n"
    "\n"
    "Prints one line per document (file, patient id, created|imported|unchanged, entries,\n"
    "document key), the failures with their reasons, and a summary.\n"
    "Exit status: 0 when every document was imported, 1 when some failed, 2 on usage errors.\n";

constexpr std::string_view kExportUsage =
    "usage: medvault export --patient ID [--format fhir|ccda] [--as ACCOUNT_ID]\n"
    "                       [--purpose PURPOSE] [--out FILE] [--data DIR]\n"
    "\n"
    "Writes the patient's record as a FHIR R4 collection Bundle (default) or a C-CDA CCD.\n"
    "With --as, only the segments that account may export (the decision point decides each,\n"
    "for PURPOSE, default treatment, from the console's loopback zone, second factor taken as\n"
    "given); without it, the whole record (a console export). Every decision is recorded in\n"
    "the ledger. The document goes to FILE (mode 0600) or standard output.\n";

bool IsDocumentFile(const fs::path& p) {
  const std::string ext = p.extension().string();
  return ext == ".xml" || ext == ".json" || ext == ".XML" || ext == ".JSON";
}

// Files named on the command line, and the documents below directories, in
// a stable order.
Result<std::vector<fs::path>> CollectDocuments(const std::vector<std::string>& args) {
  std::vector<fs::path> out;
  for (const std::string& a : args) {
    std::error_code ec;
    const fs::path p(a);
    if (fs::is_directory(p, ec)) {
      std::vector<fs::path> found;
      for (fs::recursive_directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->is_regular_file(ec) && IsDocumentFile(it->path())) {
          found.push_back(it->path());
        }
      }
      if (ec) {
        return Status::IOError(a + ": " + ec.message());
      }
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(p, ec)) {
      out.push_back(p);
    } else {
      return Status::NotFound(a + ": no such file or directory");
    }
  }
  return out;
}

Result<std::string> ReadFileLimited(const fs::path& p, uint64_t limit) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(p, ec);
  if (ec) {
    return Status::IOError(ec.message());
  }
  if (size > limit) {
    return Status::ResourceExhausted("the file is larger than " + std::to_string(limit) + " bytes");
  }
  std::ifstream in(p, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    return Status::IOError("cannot read the file");
  }
  return data;
}

// A one-line progress bar on a terminal; nothing otherwise.
class Progress {
 public:
  Progress(size_t total, bool enabled) : total_(total), enabled_(enabled) {}
  void Update(size_t done, const std::string& name) {
    if (!enabled_) {
      return;
    }
    constexpr size_t kWidth = 30;
    const size_t filled = total_ == 0 ? kWidth : done * kWidth / total_;
    std::string shown = name.size() > 40 ? "..." + name.substr(name.size() - 37) : name;
    std::cerr << "\r[" << std::string(filled, '#') << std::string(kWidth - filled, ' ') << "] "
              << done << "/" << total_ << " " << shown << "\x1b[K" << std::flush;
  }
  void Finish() {
    if (enabled_) {
      std::cerr << "\r\x1b[K" << std::flush;
    }
  }

 private:
  size_t total_;
  bool enabled_;
};

int ImportBody(const Command& cmd) {
  const ParsedArgs* args = &cmd.args();
  if (args->positional.empty()) {
    return cmd.UsageError("name at least one file or directory to import");
  }
  auto files = CollectDocuments(args->positional);
  if (!files.ok()) {
    return Fail(files.status());
  }
  auto runtime = cmd.OpenRuntime();
  if (!runtime.ok()) {
    return Fail(runtime.status());
  }
  Runtime& rt = **runtime;
  exchange::ImportOptions options;
  if (auto it = args->values.find("patient"); it != args->values.end()) {
    options.patient_id = it->second;
  }
  const bool quiet =
      std::find(args->switches.begin(), args->switches.end(), "quiet") != args->switches.end();
  Progress progress(files->size(), !quiet && isatty(STDERR_FILENO) == 1);
  size_t imported = 0, unchanged = 0, entries = 0, created = 0;
  std::vector<std::string> warnings;
  std::vector<std::pair<std::string, Status>> failures;
  std::vector<std::string> patients;
  std::vector<std::string> lines;  // one per imported document, printed at the end
  // One request per document, through the enforcement layer like the API's
  // import: decided (the console), recorded, all or nothing. The next
  // document is read, decided and planned while this one commits
  // (exchange::ImportInOrder); a plan made again keeps its scope, so every
  // decision taken is recorded.
  std::vector<std::unique_ptr<enforce::Scope>> scopes(files->size());
  auto plan = [&](size_t i) -> Result<exchange::ImportPlan> {
    if (scopes[i] == nullptr) {
      scopes[i] =
          std::make_unique<enforce::Scope>(rt.enforce_deps(), enforce::ConsoleContext("import"));
    }
    enforce::ScopeBinding bound(*scopes[i]);  // this thread audits as this document's scope
    MV_ASSIGN_OR_RETURN(std::string bytes,
                        ReadFileLimited((*files)[i], options.limits.max_document_bytes));
    return enforce::PlanImport(*scopes[i], *rt.records, bytes, options.patient_id, options);
  };
  auto commit = [&](size_t i, const exchange::ImportPlan& p) {
    enforce::ScopeBinding bound(*scopes[i]);
    return enforce::CommitImport(*scopes[i], *rt.records, p);
  };
  auto done = [&](size_t i, Result<exchange::ImportOutcome> out) {
    const std::string name = (*files)[i].string();
    progress.Update(i + 1, name);
    if (scopes[i] != nullptr) {
      Status recorded = scopes[i]->Commit();
      scopes[i].reset();
      if (out.ok() && !recorded.ok()) {
        out = recorded;
      }
    }
    if (!out.ok()) {
      failures.emplace_back(name, out.status());
      return;
    }
    if (out->unchanged) {
      ++unchanged;
    } else {
      ++imported;
      entries += out->entries;
    }
    created += out->patient_created ? 1 : 0;
    lines.push_back(
        name + "\t" + out->patient_id + "\t" +
        (out->unchanged ? "unchanged" : (out->patient_created ? "created" : "imported")) + "\t" +
        std::to_string(out->entries) + " entries\t" + out->document_key);
    for (const std::string& w : out->warnings) {
      warnings.push_back(name + ": " + w);
    }
    if (std::find(patients.begin(), patients.end(), out->patient_id) == patients.end()) {
      patients.push_back(out->patient_id);
    }
  };
  exchange::ImportInOrder(files->size(), plan, commit, done);
  progress.Update(files->size(), "");
  progress.Finish();
  for (const std::string& line : lines) {
    std::cout << line << "\n";
  }
  for (const std::string& w : warnings) {
    std::cerr << "medvault: warning: " << w << "\n";
  }
  for (const auto& [name, st] : failures) {
    // A document without its own patient goes into one named on the
    // command line: say how.
    const bool needs_patient = st.code() == StatusCode::kFailedPrecondition &&
                               options.patient_id.empty() &&
                               st.message().find("names no patient") != std::string::npos;
    std::cerr << "medvault: " << name << ": " << st.message()
              << (needs_patient ? " (--patient ID)" : "") << "\n";
  }
  std::cout << "imported " << imported << " of " << files->size() << " documents (" << entries
            << " entries) into " << patients.size() << " patients (" << created << " created); "
            << unchanged << " unchanged; " << failures.size() << " failed\n";
  return failures.empty() ? 0 : 1;
}

int ExportBody(const Command& cmd) {
  auto value = [&cmd](const std::string& k, std::string fallback) {
    return cmd.Has(k) ? cmd.Value(k) : fallback;
  };
  const std::string patient_id = value("patient", "");
  const std::string format_name = value("format", "fhir");
  if (patient_id.empty()) {
    return cmd.UsageError("--patient is required");
  }
  if (format_name != "fhir" && format_name != "ccda") {
    return Fail(Status::InvalidArgument("--format must be fhir or ccda"));
  }
  auto runtime = cmd.OpenRuntime();
  if (!runtime.ok()) {
    return Fail(runtime.status());
  }
  Runtime& rt = **runtime;
  const std::string reader = value("as", "");
  // The reader's account (the subject's fields are views into it), or the
  // console; the enforcement layer decides and records either way.
  std::optional<auth::Account> account;
  enforce::RequestContext ctx = enforce::ConsoleContext("export");
  if (!reader.empty()) {
    auto found = rt.accounts->GetAccount(reader);
    if (!found.ok()) {
      return Fail(found.status().WithContext("--as"));
    }
    account = std::move(*found);
    auto roles = rt.decisions->policy().RolesOf(account->roles);
    if (!roles.ok()) {
      return Fail(roles.status());
    }
    if (account->disabled) {
      return Fail(Status::PermissionDenied("--as: the account is disabled"));
    }
    auto purpose = policy::ParsePurpose(value("purpose", "treatment"));
    if (!purpose.ok()) {
      return Fail(purpose.status().WithContext("--purpose"));
    }
    ctx = enforce::AccountContext(*account, *roles, *purpose, "export");
  }
  const interop::Format format =
      format_name == "ccda" ? interop::Format::kCcda : interop::Format::kFhir;
  enforce::Scope scope(rt.enforce_deps(), std::move(ctx));
  auto result = enforce::ExportRecord(scope, *rt.records, patient_id, format);
  // Decisions are durable before anything leaves, as on the API.
  Status recorded = scope.Commit();
  if (!recorded.ok()) {
    return Fail(recorded.WithContext("recording the export in the ledger"));
  }
  if (!result.ok()) {
    return Fail(result.status());
  }
  const exchange::ExportOutcome* out = &result->outcome;
  if (out->segments_included == 0 && !reader.empty()) {
    return Fail(Status::PermissionDenied("nothing in this record may be exported by that account"));
  }
  const std::string file = value("out", "");
  if (!file.empty()) {
    Status written = WritePrivateFile(file, out->document);
    if (!written.ok()) {
      return Fail(written);
    }
  } else {
    std::cout << out->document;
  }
  std::cerr << "exported " << out->entries << " entries from " << out->segments_included
            << " segments (" << out->segments_withheld << " withheld) as " << format_name << "\n";
  return 0;
}

}  // namespace

int RunExchange(int argc, char** argv) {
  static const CommandSpec import_spec{.usage = kImportUsage,
                                       .values = {"data", "patient", "config"},
                                       .switches = {"quiet"},
                                       .positional = true,
                                       .settings = SettingFlags::kData,
                                       .first = 2};
  static const CommandSpec export_spec{
      .usage = kExportUsage,
      .values = {"data", "patient", "format", "as", "purpose", "out", "config"},
      .switches = {},
      .positional = false,
      .settings = SettingFlags::kData,
      .first = 2};
  const std::string command = argv[1];
  return command == "import" ? RunCommand(import_spec, argc, argv, ImportBody)
                             : RunCommand(export_spec, argc, argv, ExportBody);
}

}  // namespace medvault::app
