// medvault enforcement: the public interface of src/enforce.
//
// The one place where access is decided, recorded and applied, whatever the
// door a request came in by (HTTP today; the command line; devices and FHIR
// REST later). An ingress builds a RequestContext (who acts, for what
// purpose, from which network zone, under which request id, at what time)
// and opens a Scope for it; every data operation of that request goes
// through the Scope, which
//   - asks the decision point (policy) and keeps each decision,
//   - turns each decision and each recorded event into a ledger entry built
//     by one of the typed builders below (never by hand elsewhere),
//   - applies the obligations of a permit (masking of fields, the expiry the
//     answer reports, masked segments withheld from documents),
//   - makes the entries durable (Commit) before the caller lets any answer
//     leave, and
//   - fails closed: a record write whose scope holds no permit for that
//     patient is refused inside the store's transaction (RecordEventEntry),
//     and RequireDecision() refuses an answer given without any decision.
//
// A Scope binds its Origin to the calling thread for its lifetime, so that
// the services below (records, accounts, consents), which know nothing of
// requests, name the request and the actor in the ledger entries of the
// writes they make (the app wires their audit callbacks to the builders
// here). Outside a Scope those entries are refused, not made up.
//
// Nothing here knows HTTP. A Scope is used by one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "access/access.h"
#include "auth/auth.h"
#include "common/secret.h"
#include "common/status.h"
#include "exchange/exchange.h"
#include "exchange/summary.h"
#include "integrity/integrity.h"
#include "ledger/ledger.h"
#include "policy/policy.h"
#include "record/record.h"

namespace medvault::enforce {

// Which door a request came in by (recorded in the ledger as the route's
// prefix, and used to tell the console from an account).
enum class Channel { kHttp, kCli, kSystem };
std::string_view ChannelName(Channel c);

// Who acts and for which request, as the ledger names them.
struct Origin {
  Channel channel = Channel::kSystem;
  std::string request_id;  // "req-..." / "cli-..."; never empty inside a Scope
  // The account acting; empty for an anonymous request or the console.
  std::string account_id;
  // What the ledger's entry names as the route ("GET /api/v1/...", "cli export").
  std::string route;
  // The console (the operator of the data directory on its own machine, with
  // no account): its actions are recorded as actor "cli" and permitted with
  // reason "console" (docs/architecture.md, "Enforcement").
  bool console = false;

  // "cli" for the console, the account, else "anonymous" (HTTP) or "system".
  std::string Actor() const;
};

// Everything a decision is made on. The subject's strings are views: the
// ingress keeps what they point at (a session, an account) alive for the
// Scope's lifetime.
struct RequestContext {
  Origin origin;
  policy::Subject subject;
  policy::Context context;  // now_ms, purpose, zone
};

// What a Scope needs. The decision point and the key are required; a null
// ledger records nothing (unit tests of code above; never in the app).
struct Deps {
  const policy::DecisionPoint* decisions = nullptr;
  ledger::Log* ledger = nullptr;  // appends only
  const SecretBytes* patient_ref_key = nullptr;
};

class Scope;
// The Origin of the Scope bound to this thread; nullopt outside any.
std::optional<Origin> CurrentOrigin();
// The Scope bound to this thread (the innermost); null outside any.
Scope* CurrentScope();

// Binds `scope` to this thread for the lifetime of the binding, and then
// restores what was bound before: for a scope used on another thread than
// the one that made it (an import planned on one thread and committed on
// another, exchange::ImportInOrder). A Scope is bound to the thread that
// constructs it; its destructor unbinds it only where it is still bound.
class ScopeBinding {
 public:
  explicit ScopeBinding(Scope& scope);
  ~ScopeBinding();
  ScopeBinding(const ScopeBinding&) = delete;
  ScopeBinding& operator=(const ScopeBinding&) = delete;

 private:
  Scope* previous_;
};

class Scope {
 public:
  Scope(const Deps& deps, RequestContext ctx);
  // Restores the previously bound origin. Entries not committed are dropped:
  // callers Commit() before answering.
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

  const RequestContext& context() const { return ctx_; }
  policy::Context& mutable_context() { return ctx_.context; }
  const Origin& origin() const { return ctx_.origin; }

  // Asks the decision point and records the decision. OK on permit (kept:
  // last_decision() gives its obligations); PermissionDenied
  // "reason-code: sentence" on deny. The console is permitted with reason
  // "console" on everything but break-glass (which needs an account).
  Status Decide(policy::Action action, const policy::Resource& resource);
  Status DecideBreakGlass(std::string_view patient_id, std::string_view reason);
  // Decides without failing and without replacing last_decision(): for
  // filtering listings. `decision`, when not null, receives it.
  bool Permits(policy::Action action, const policy::Resource& resource,
               policy::Decision* decision = nullptr);

  const policy::Decision& last_decision() const { return last_; }
  int decisions() const { return decisions_; }
  // "permit reason-code" / "deny reason-code" of the last decision, or what
  // SetSummary set; "" before any.
  const std::string& summary() const { return summary_; }
  void SetSummary(std::string s) { summary_ = std::move(s); }

  // True when this scope may write into `patient_id`'s record: the console,
  // or a permitted write or erasure decision on that patient, or a patient
  // this scope created (CoversNewPatient).
  bool CoversWrite(std::string_view patient_id) const;
  // A record created in this request: allowed after a permitted
  // kCreatePatient, and from then on covered by CoversWrite (that patient
  // only: a create permit covers no existing record).
  bool CoversNewPatient(std::string_view patient_id);

  // Adds an entry built by a builder below (request id and time filled in
  // when empty).
  void Record(ledger::Entry entry);
  // An event of the request that is not a decision (sign-in, sign-out):
  // built by ActionEntry.
  // `patient_id`, when given, names the record concerned (by its pseudonym).
  void RecordAction(std::string_view action, std::string_view effect, std::string_view kind,
                    std::map<std::string, std::string> details = {}, std::string_view actor = "",
                    std::vector<std::string> reasons = {}, std::string_view patient_id = {});
  size_t pending_entries() const { return entries_.size(); }

  // Riders (record::RecordServiceOptions::audit_riders): between
  // LendToNextWrite() and SettleLent(), the next record write of this thread
  // takes the pending entries into its own transaction (TakeLent()), so that
  // the decision and the write commit together, in one group commit.
  // SettleLent(true) once that write returned OK (they are durable with it);
  // SettleLent(false) puts them back to be appended by Commit() (a write that
  // failed, or one whose fate is unknown: the entries may then appear twice
  // in the ledger, never not at all).
  void LendToNextWrite();
  std::vector<Bytes> TakeLent();
  void SettleLent(bool committed);

  // Makes every entry so far durable in the ledger (one group-committed
  // append). Unavailable when it fails: the caller must then answer nothing
  // of what was decided. Idempotent when nothing is pending.
  Status Commit();
  // Commit without waiting: `done` receives what Commit() would return once
  // the entries are durable, on the thread that finished the commit
  // (possibly this one, before CommitAsync returns). It must not block and
  // must not touch this Scope, which may be gone by then. The pending
  // entries leave the Scope at once.
  void CommitAsync(std::function<void(const Status&)> done);
  // Internal when no decision was made (fail closed for data answers).
  Status RequireDecision() const;

 private:
  void Note(const policy::Decision& d, policy::Action action, const policy::Resource& resource);

  Deps deps_;
  RequestContext ctx_;
  Scope* previous_ = nullptr;  // the scope bound before this one
  policy::Decision last_;
  int decisions_ = 0;
  std::string summary_;
  std::vector<ledger::Entry> entries_;
  std::set<std::string, std::less<>> write_patients_;
  bool may_create_ = false;
  bool record_failed_ = false;  // an entry could not be built: Commit fails
  bool lending_ = false;        // LendToNextWrite() until TakeLent()
  std::vector<ledger::Entry> lent_;
};

// A context for the console (actor "cli", loopback, now): the operator of
// the data directory running `medvault import` and the like.
RequestContext ConsoleContext(std::string_view command);
// The context of an account acting from the console (`medvault export --as`):
// the account's own subject (roles resolved by the caller), loopback, now.
// `account` must outlive the context.
RequestContext AccountContext(const auth::Account& account, policy::RoleSet roles,
                              policy::Purpose purpose, std::string_view command);

// ---------------------------------------------------------------------------
// Typed ledger builders: one per kind of event. Each fills the entry the same
// way for every door, names patients only by their pseudonym (BindPatient or
// RedactPatientId) and validates it.

// A decision (or a break-glass decision) of `origin` on `resource`.
Result<ledger::Entry> DecisionEntry(const Origin& origin, const policy::Context& context,
                                    policy::Action action, const policy::Resource& resource,
                                    const policy::Decision& decision,
                                    const SecretBytes* patient_ref_key);
// An action of a request that is not a decision (auth.login, auth.logout).
Result<ledger::Entry> ActionEntry(const Origin& origin, std::string_view action,
                                  std::string_view effect, std::string_view kind,
                                  std::map<std::string, std::string> details,
                                  std::string_view actor, std::vector<std::string> reasons);
// A record service event (a segment write, a patient root key created or
// destroyed), encoded for the store's transaction. FailedPrecondition outside
// a Scope, or when the bound Scope does not cover a write into that patient
// (fail closed: no write the enforcement layer did not decide).
Result<Bytes> RecordEventEntry(const record::RecordEvent& event,
                               const SecretBytes& patient_ref_key);
// An account change, encoded for the account store's transaction; the actor
// is the bound Scope's ("system" outside one: start-up maintenance).
Result<Bytes> AccountEventEntry(const auth::AccountEvent& event,
                                const SecretBytes& patient_ref_key);
// A change of a patient's consents, relationships, delegations, proxies,
// settings or break-glass grants (src/access); actor as AccountEventEntry.
Result<ledger::Entry> AccessEventEntry(const access::AccessEvent& event,
                                       const SecretBytes& patient_ref_key);
// A finding of the integrity scrubber.
Result<ledger::Entry> ScrubFindingEntry(const integrity::Finding& finding,
                                        const SecretBytes& patient_ref_key);

// ---------------------------------------------------------------------------
// Data operations: each decides through the Scope before it touches data.

// Masks the fields a permit's obligations name in a JSON document; a value
// that cannot be masked field by field is replaced whole (fail closed).
Status ApplyMasking(nlohmann::json& document, const policy::Decision& decision);

// Decides `action` on the path at its default sensitivity first (so nothing
// about the segment is answered to someone not permitted), opens it, and
// decides again on the stored sensitivity when it differs.
Result<std::unique_ptr<record::SegmentReader>> OpenSegment(
    Scope& scope, record::RecordService& records, policy::Action action,
    const std::string& patient_id, const std::string& path, uint64_t version);

// The policy resource of a segment path (or subtree) of a patient; the
// sensitivity is the path's default when `sensitivity` < 0. The strings must
// outlive the resource.
policy::Resource SegmentResource(const std::string& patient_id, const std::string& path,
                                 int sensitivity = -1);

// Writes one segment version under `scope`, the write decision(s) taken
// already: the scope's pending entries ride in the write's transaction (see
// Scope::LendToNextWrite), so the decision and the write are durable
// together, with one group commit.
Result<record::SegmentVersionInfo> WriteSegment(Scope& scope, record::RecordService& records,
                                                const std::string& patient_id,
                                                const std::string& path,
                                                const record::SegmentWrite& write,
                                                std::string_view author);
// The riders of the record write running on this thread
// (record::RecordServiceOptions::audit_riders, wired by the app): the bound
// scope's lent entries, encoded; none outside a lending scope.
std::vector<Bytes> RidersForWrite();

// Imports one document into `patient_id`'s record (empty: match or create
// the patient, which needs kCreatePatient): decides kWrite on the record's
// source documents, plans, decides every segment the plan would write, then
// commits all or nothing.
Result<exchange::ImportOutcome> ImportDocument(Scope& scope, record::RecordService& records,
                                               std::string_view document,
                                               const std::string& patient_id,
                                               const exchange::ImportOptions& base_options = {});
// ImportDocument in its two halves, for exchange::ImportInOrder: every
// decision and the plan; then the commit of a plan PlanImport returned
// (through the same scope).
Result<exchange::ImportPlan> PlanImport(Scope& scope, record::RecordService& records,
                                        std::string_view document, const std::string& patient_id,
                                        const exchange::ImportOptions& base_options = {});
Result<exchange::ImportOutcome> CommitImport(Scope& scope, record::RecordService& records,
                                             const exchange::ImportPlan& plan);

struct ExportResult {
  exchange::ExportOutcome outcome;
  size_t masked_withheld = 0;  // segments permitted only with masking: left out whole
};
// Exports the part of a record the scope may see: kExport on the whole record
// first (an outright deny fails before anything is read), then every segment
// (kExport) and the demographics (kReadDemographics); a permit that asks for
// masking withholds the segment (documents carry whole segments).
Result<ExportResult> ExportRecord(Scope& scope, record::RecordService& records,
                                  const std::string& patient_id, interop::Format format);

struct SummaryResult {
  std::string summary;  // JSON text, exchange::Summarize's shape
};
// The clinical summary of the part of a record the scope may read: every
// segment is decided (kRead, at its stored sensitivity) before it is read
// and refused ones are left out; the demographics only with
// kReadDemographics. A permit that asks for masking withholds the segment
// (the summary is made of whole entries; fail closed). When nothing at all
// is permitted and the record as a whole is not readable, the deny of the
// whole record with its reason (an unknown patient looks the same).
// `options.segments_withheld_masked` is set here.
Result<SummaryResult> SummarizeRecord(Scope& scope, record::RecordService& records,
                                      const std::string& patient_id,
                                      const exchange::SummaryOptions& options = {});

}  // namespace medvault::enforce
