// The Scope: one request's decisions, their ledger entries and the origin
// bound to its thread (enforce.h).
#include <utility>

#include "common/ids.h"
#include "common/log.h"
#include "enforce/enforce.h"

namespace medvault::enforce {
namespace {

// The origin of the Scope open on this thread. A Scope saves the previous one
// and restores it, so that nested scopes (a CLI command running an import
// inside its own console scope) name the innermost.
thread_local Scope* t_scope = nullptr;

}  // namespace

std::string_view ChannelName(Channel c) {
  switch (c) {
    case Channel::kHttp:
      return "http";
    case Channel::kCli:
      return "cli";
    case Channel::kSystem:
      return "system";
  }
  return "system";
}

std::string Origin::Actor() const {
  if (console) {
    return "cli";
  }
  if (!account_id.empty()) {
    return account_id;
  }
  return channel == Channel::kHttp ? "anonymous" : "system";
}

std::optional<Origin> CurrentOrigin() {
  if (t_scope == nullptr) {
    return std::nullopt;
  }
  return t_scope->origin();
}

Scope* CurrentScope() { return t_scope; }

Scope::Scope(const Deps& deps, RequestContext ctx) : deps_(deps), ctx_(std::move(ctx)) {
  if (ctx_.origin.request_id.empty()) {
    ctx_.origin.request_id =
        std::string(ChannelName(ctx_.origin.channel)) + "-" + NewRandomId().substr(0, 16);
  }
  if (ctx_.context.now_ms == 0) {
    ctx_.context.now_ms = NowUnixMillis();
  }
  previous_ = t_scope;
  t_scope = this;
}

Scope::~Scope() {
  if (t_scope == this) {
    t_scope = previous_;
  }
}

ScopeBinding::ScopeBinding(Scope& scope) : previous_(t_scope) { t_scope = &scope; }

ScopeBinding::~ScopeBinding() { t_scope = previous_; }

void Scope::Note(const policy::Decision& d, policy::Action action,
                 const policy::Resource& resource) {
  last_ = d;
  ++decisions_;
  summary_ = std::string(d.permitted() ? "permit " : "deny ") +
             std::string(policy::ReasonCode(d.reason()));
  if (d.permitted()) {
    if (action == policy::Action::kCreatePatient) {
      may_create_ = true;
    } else if (!resource.patient_id.empty() &&
               (action == policy::Action::kWrite || action == policy::Action::kErasePatient)) {
      write_patients_.emplace(resource.patient_id);
    }
  }
  // Logged with ids and codes only; recorded in the ledger below.
  Log(d.permitted() ? LogLevel::kDebug : LogLevel::kInfo, "access.decision",
      {{"request_id", ctx_.origin.request_id},
       {"account", ctx_.origin.Actor()},
       {"action", policy::ActionName(action)},
       {"effect", d.permitted() ? "permit" : "deny"},
       {"reason", policy::ReasonCode(d.reason())}});
  if (deps_.ledger == nullptr) {
    return;
  }
  Result<ledger::Entry> e =
      DecisionEntry(ctx_.origin, ctx_.context, action, resource, d, deps_.patient_ref_key);
  if (!e.ok()) {
    // A decision that cannot be recorded must not be acted on: keep a deny
    // so that Commit() fails the request rather than answering unrecorded.
    Log(LogLevel::kError, "access.unrecorded",
        {{"request_id", ctx_.origin.request_id}, {"error", e.status().message()}});
    record_failed_ = true;
    return;
  }
  entries_.push_back(std::move(*e));
}

namespace {

policy::Decision ConsoleDecision() {
  policy::Decision d;
  d.effect = policy::Effect::kPermit;
  d.reasons[0] = policy::Reason::kConsole;
  d.reason_count = 1;
  static const std::vector<std::string> kNoMask;
  d.obligations.mask_fields = &kNoMask;
  return d;
}

}  // namespace

Status Scope::Decide(policy::Action action, const policy::Resource& resource) {
  policy::Decision d;
  if (ctx_.origin.console) {
    d = ConsoleDecision();
  } else {
    d = deps_.decisions->Decide(ctx_.subject, action, resource, ctx_.context);
  }
  Note(d, action, resource);
  if (!d.permitted()) {
    return Status::PermissionDenied(policy::DescribeDecision(d));
  }
  return Status::Ok();
}

Status Scope::DecideBreakGlass(std::string_view patient_id, std::string_view reason) {
  policy::Decision d;
  if (ctx_.origin.console) {
    // Break-glass is a clinician's, under their own account.
    d.reasons[0] = policy::Reason::kUnauthenticated;
    d.reason_count = 1;
  } else {
    d = deps_.decisions->DecideBreakGlass(ctx_.subject, patient_id, reason, ctx_.context);
  }
  policy::Resource resource;
  resource.patient_id = patient_id;
  Note(d, policy::Action::kBreakGlass, resource);
  if (!d.permitted()) {
    return Status::PermissionDenied(policy::DescribeDecision(d));
  }
  return Status::Ok();
}

bool Scope::Permits(policy::Action action, const policy::Resource& resource,
                    policy::Decision* decision) {
  const policy::Decision saved = last_;
  const std::string saved_summary = summary_;
  policy::Decision d = ctx_.origin.console
                           ? ConsoleDecision()
                           : deps_.decisions->Decide(ctx_.subject, action, resource, ctx_.context);
  Note(d, action, resource);
  last_ = saved;  // filtering decisions do not replace the request's decision
  summary_ = saved_summary.empty() ? summary_ : saved_summary;
  if (decision != nullptr) {
    *decision = d;
  }
  return d.permitted();
}

bool Scope::CoversWrite(std::string_view patient_id) const {
  if (ctx_.origin.console) {
    return true;
  }
  return write_patients_.find(patient_id) != write_patients_.end();
}

bool Scope::CoversNewPatient(std::string_view patient_id) {
  if (ctx_.origin.console) {
    return true;
  }
  if (!may_create_) {
    return false;
  }
  write_patients_.emplace(patient_id);
  return true;
}

void Scope::Record(ledger::Entry entry) {
  if (entry.request_id.empty()) {
    entry.request_id = ctx_.origin.request_id;
  }
  if (entry.time_ms == 0) {
    entry.time_ms = NowUnixMillis();
  }
  entries_.push_back(std::move(entry));
}

void Scope::RecordAction(std::string_view action, std::string_view effect, std::string_view kind,
                         std::map<std::string, std::string> details, std::string_view actor,
                         std::vector<std::string> reasons, std::string_view patient_id) {
  if (deps_.ledger == nullptr) {
    return;
  }
  Result<ledger::Entry> e =
      ActionEntry(ctx_.origin, action, effect, kind, std::move(details), actor, std::move(reasons));
  if (!e.ok()) {
    Log(LogLevel::kError, "ledger.entry_invalid",
        {{"request_id", ctx_.origin.request_id}, {"action", std::string(action)}});
    record_failed_ = true;
    return;
  }
  if (!patient_id.empty() && deps_.patient_ref_key != nullptr) {
    // An attempt on a patient's own account shows in their access history.
    e->patient_ref = ledger::PatientRef(*deps_.patient_ref_key, patient_id);
  }
  Record(std::move(*e));
}

Status Scope::Commit() {
  if (record_failed_) {
    return Status::Unavailable("the access could not be recorded; nothing was returned");
  }
  if (deps_.ledger == nullptr || entries_.empty()) {
    return Status::Ok();
  }
  std::vector<ledger::Entry> entries = std::move(entries_);
  entries_.clear();
  Status st = deps_.ledger->Append(std::move(entries));
  if (!st.ok()) {
    Log(LogLevel::kError, "ledger.append_failed",
        {{"request_id", ctx_.origin.request_id}, {"route", ctx_.origin.route}});
    return Status::Unavailable("the access could not be recorded; nothing was returned");
  }
  return Status::Ok();
}

void Scope::CommitAsync(std::function<void(const Status&)> done) {
  if (record_failed_) {
    done(Status::Unavailable("the access could not be recorded; nothing was returned"));
    return;
  }
  if (deps_.ledger == nullptr || entries_.empty()) {
    done(Status::Ok());
    return;
  }
  std::vector<ledger::Entry> entries = std::move(entries_);
  entries_.clear();
  auto report = [request_id = ctx_.origin.request_id, route = ctx_.origin.route,
                 done = std::move(done)](const Status& st) {
    if (!st.ok()) {
      Log(LogLevel::kError, "ledger.append_failed", {{"request_id", request_id}, {"route", route}});
      done(Status::Unavailable("the access could not be recorded; nothing was returned"));
      return;
    }
    done(Status::Ok());
  };
  try {
    deps_.ledger->AppendAsync(std::move(entries), report);
  } catch (...) {
    // Not queued (no thread or no memory for it): nothing was recorded, so
    // nothing may be answered.
    report(Status::Unavailable("the ledger could not take the entries"));
  }
}

void Scope::LendToNextWrite() { lending_ = deps_.ledger != nullptr; }

std::vector<Bytes> Scope::TakeLent() {
  std::vector<Bytes> out;
  if (!lending_) {
    return out;
  }
  lending_ = false;
  out.reserve(entries_.size());
  for (const ledger::Entry& e : entries_) {
    if (!ledger::ValidateEntry(e).ok()) {
      return {};  // nothing rides; Commit() appends them (and reports)
    }
    out.push_back(ledger::Encode(e));
  }
  lent_ = std::move(entries_);
  entries_.clear();
  return out;
}

void Scope::SettleLent(bool committed) {
  lending_ = false;
  if (!committed && !lent_.empty()) {
    // Back in front of anything recorded since, in their original order.
    entries_.insert(entries_.begin(), std::make_move_iterator(lent_.begin()),
                    std::make_move_iterator(lent_.end()));
  }
  lent_.clear();
}

Status Scope::RequireDecision() const {
  if (decisions_ == 0 && summary_.empty()) {
    Log(LogLevel::kError, "access.undecided",
        {{"request_id", ctx_.origin.request_id}, {"route", ctx_.origin.route}});
    return Status::Internal("answered without an access decision");
  }
  return Status::Ok();
}

RequestContext ConsoleContext(std::string_view command) {
  RequestContext c;
  c.origin.channel = Channel::kCli;
  c.origin.console = true;
  c.origin.route = "cli " + std::string(command);
  c.context.now_ms = NowUnixMillis();
  c.context.zone = policy::NetworkZone::kLoopback;
  return c;
}

RequestContext AccountContext(const auth::Account& account, policy::RoleSet roles,
                              policy::Purpose purpose, std::string_view command) {
  RequestContext c;
  c.origin.channel = Channel::kCli;
  c.origin.account_id = account.account_id;
  c.origin.route = "cli " + std::string(command);
  c.subject.account_id = account.account_id;
  c.subject.roles = roles;
  c.subject.institution_id = account.institution_id;
  c.subject.department_id = account.department_id;
  c.subject.patient_id = account.patient_id;
  // The console stands for the second factor: whoever runs it holds the
  // data directory's keys (docs/architecture.md, "Enforcement").
  c.subject.mfa_verified = true;
  c.context.now_ms = NowUnixMillis();
  c.context.zone = policy::NetworkZone::kLoopback;
  c.context.purpose = purpose;
  return c;
}

}  // namespace medvault::enforce
