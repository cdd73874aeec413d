// Decision point throughput and latency on realistic data: the shipped policy,
// 10,000 patients with consents, relationships, delegations, proxies,
// never-break-glass settings and break-glass grants, 1,000 staff, and a mix
// of requests dominated by clinicians reading the records of their patients.
//
//   BM_PdpDecide: items_per_second = decisions/s on one thread; p50_us, p99_us
//   and p999_us from a separate pass that times 200,000 single decisions with
//   a steady clock (the clock's own cost, ~20-30 ns, is included).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "policy/policy.h"
#include "vocab/vocab.h"

namespace medvault::policy {
namespace {

constexpr int64_t kMinute = 60 * 1000;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kNow = 1780308000000;  // 2026-06-01T10:00:00Z

constexpr int kPatients = 10000;
constexpr int kRequests = 1 << 17;

// Paths of the workload; their categories and sensitivities are the
// vocabulary's (vocab::TopLevelFor), so that a new category cannot break the
// benchmark's policy.
constexpr std::string_view kSegments[] = {
    "physical-signs/blood-pressure/2026-05-31",
    "physical-signs/glucose/2026-05-30",
    "body-measures/weight",
    "health-status/hypertension",
    "internal-medicine/cardiology/ecg/2026-05-12",
    "internal-medicine/endocrinology/hba1c",
    "laboratory/lipids/2026-04-02",
    "doctor-description/orders/2026-05-20",
    "life-record/diet/2026-05-31",
    "personal-information/insurance-number",
    "oncology/follow-up",
    "psychiatry/notes/2026-01-10",
};
constexpr int kSegmentCount = sizeof(kSegments) / sizeof(kSegments[0]);

struct Request {
  Subject subject;
  Action action;
  Resource resource;
  Context context;
};

// The world: strings owned here, requests point into them.
struct World {
  std::shared_ptr<const Policy> policy;
  PolicyData data;
  std::vector<std::string> patients;
  std::vector<std::string> patient_accounts;
  std::vector<std::string> proxy_accounts;
  std::vector<std::string> doctors;
  std::vector<std::string> nurses;
  std::vector<std::string> pharmacists;
  std::vector<std::string> researchers;
  std::vector<std::string> heads;
  std::vector<std::string> operators;
  std::vector<std::vector<std::string>> treating;  // per patient: active clinicians
  std::vector<std::string> proxy_of;               // per patient: proxy account or ""
  std::vector<Request> requests;
  RoleSet doctor = 0, nurse = 0, pharmacist = 0, researcher = 0, head = 0, patient = 0, family = 0,
          op = 0;
};

std::vector<std::string> Names(const char* prefix, int n) {
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(n));
  char buf[64];
  for (int i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof(buf), "%s-%05d", prefix, i);
    out.emplace_back(buf);
  }
  return out;
}

World& GetWorld() {
  static World* world = [] {
    auto* w = new World;
    auto policy =
        Policy::Load(std::filesystem::path(MEDVAULT_SOURCE_DIR) / "config" / "policy.conf");
    if (!policy.ok()) {
      std::fprintf(stderr, "%s\n", policy.status().ToString().c_str());
      std::abort();
    }
    w->policy = *policy;
    const Policy& p = *w->policy;
    w->doctor = *p.RolesOf({"doctor"});
    w->nurse = *p.RolesOf({"nurse"});
    w->pharmacist = *p.RolesOf({"pharmacist"});
    w->researcher = *p.RolesOf({"researcher"});
    w->head = *p.RolesOf({"department-head"});
    w->patient = *p.RolesOf({"patient"});
    w->family = *p.RolesOf({"family-proxy"});
    w->op = *p.RolesOf({"operator"});

    // 1,000 staff.
    w->doctors = Names("dr", 500);
    w->nurses = Names("nurse", 300);
    w->pharmacists = Names("ph", 60);
    w->researchers = Names("rs", 60);
    w->heads = Names("head", 40);
    w->operators = Names("op", 40);
    w->patients = Names("patient", kPatients);
    w->patient_accounts = Names("pat", kPatients);
    w->proxy_accounts = Names("fam", kPatients);
    w->treating.resize(kPatients);
    w->proxy_of.resize(kPatients);

    std::mt19937 rng(42);
    const auto pick = [&rng](const std::vector<std::string>& v) -> const std::string& {
      return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
    };
    const auto chance = [&rng](double prob) { return std::bernoulli_distribution(prob)(rng); };
    int id = 0;
    const auto next_id = [&id](const char* kind) {
      return std::string(kind) + std::to_string(id++);
    };

    for (int i = 0; i < kPatients; ++i) {
      const std::string& pid = w->patients[static_cast<size_t>(i)];
      PatientSettings s;
      s.patient_id = pid;
      s.allow_delegation = chance(0.5);
      if (chance(0.2)) {
        s.never_break_glass = {"psychiatry"};
      }
      w->data.SetPatientSettings(s);
      // 1-3 treating relationships, one in ten of them ended.
      const int rels = std::uniform_int_distribution<int>(1, 3)(rng);
      for (int r = 0; r < rels; ++r) {
        const bool is_nurse = r == 2;
        const std::string& clinician = is_nurse ? pick(w->nurses) : pick(w->doctors);
        const bool ended = chance(0.1);
        w->data.UpsertRelationship(Relationship{next_id("rel-"), pid, clinician, kNow - 90 * kDay,
                                                ended ? kNow - 10 * kDay : 0});
        if (!ended) {
          w->treating[static_cast<size_t>(i)].push_back(clinician);
        }
      }
      if (w->treating[static_cast<size_t>(i)].empty()) {
        const std::string& clinician = pick(w->doctors);
        w->data.UpsertRelationship(Relationship{next_id("rel-"), pid, clinician, kNow - kDay, 0});
        w->treating[static_cast<size_t>(i)].push_back(clinician);
      }
      // A few consents: grants and denials.
      const int consents = std::uniform_int_distribution<int>(2, 4)(rng);
      for (int c = 0; c < consents; ++c) {
        Consent k;
        k.consent_id = next_id("c-");
        k.patient_id = pid;
        k.deny = chance(0.4);
        switch (std::uniform_int_distribution<int>(0, 3)(rng)) {
          case 0:
            k.grantee_kind = GranteeKind::kAccount;
            k.grantee = pick(w->doctors);
            break;
          case 1:
            k.grantee_kind = GranteeKind::kRole;
            k.grantee = k.deny ? "nurse" : "researcher";
            k.purposes = k.deny ? 0 : PurposeBit(Purpose::kResearch);
            break;
          case 2:
            k.grantee_kind = GranteeKind::kInstitution;
            k.grantee = "pharmacy-" + std::to_string(std::uniform_int_distribution<int>(0, 9)(rng));
            break;
          default:
            k.grantee_kind = GranteeKind::kDepartment;
            k.grantee = "dept-" + std::to_string(std::uniform_int_distribution<int>(0, 19)(rng));
            break;
        }
        const std::string path(
            kSegments[std::uniform_int_distribution<int>(0, kSegmentCount - 1)(rng)]);
        k.path_prefix = path.substr(0, path.find('/'));
        k.expires_at_ms = chance(0.3) ? kNow + 30 * kDay : (chance(0.1) ? kNow - kDay : 0);
        w->data.UpsertConsent(std::move(k));
      }
      if (chance(0.2)) {
        w->data.UpsertDelegation(Delegation{next_id("dl-"), pid,
                                            w->treating[static_cast<size_t>(i)][0], pick(w->nurses),
                                            kNow - 5 * kDay, kNow + 30 * kDay, 0});
      }
      if (chance(0.1)) {
        ProxyLink proxy;
        proxy.proxy_id = next_id("px-");
        proxy.patient_id = pid;
        proxy.proxy_account_id = w->proxy_accounts[static_cast<size_t>(i)];
        proxy.path_prefixes = {"physical-signs", "life-record", "body-measures"};
        proxy.actions =
            ActionBit(Action::kRead) | ActionBit(Action::kList) | ActionBit(Action::kWrite);
        w->data.UpsertProxy(std::move(proxy));
        w->proxy_of[static_cast<size_t>(i)] = w->proxy_accounts[static_cast<size_t>(i)];
      }
      if (chance(0.01)) {
        w->data.UpsertBreakGlass(BreakGlassGrant{next_id("bg-"), pid, pick(w->doctors),
                                                 "unconscious in the emergency room",
                                                 kNow - 10 * kMinute, kNow + 50 * kMinute});
      }
    }

    // The request mix.
    w->requests.reserve(kRequests);
    std::uniform_int_distribution<int> any_patient(0, kPatients - 1);
    std::uniform_int_distribution<int> any_segment(0, kSegmentCount - 1);
    std::uniform_int_distribution<int> percent(0, 99);
    for (int n = 0; n < kRequests; ++n) {
      Request r{};
      const int pi = any_patient(rng);
      const std::string& pid = w->patients[static_cast<size_t>(pi)];
      const std::string_view path = kSegments[any_segment(rng)];
      const vocab::TopLevelSegment& top = vocab::TopLevelFor(path);
      r.resource.patient_id = pid;
      r.resource.path = path;
      r.resource.category = top.category;
      r.resource.sensitivity = top.default_sensitivity;
      r.context.now_ms = kNow + std::uniform_int_distribution<int64_t>(0, 8 * kHour)(rng);
      r.context.purpose = Purpose::kTreatment;
      r.context.zone = NetworkZone::kInternal;
      r.action = Action::kRead;
      r.subject.mfa_verified = true;
      r.subject.institution_id = "stmary";
      const int roll = percent(rng);
      if (roll < 60) {  // a treating clinician reads
        const auto& t = w->treating[static_cast<size_t>(pi)];
        r.subject.account_id = t[static_cast<size_t>(n) % t.size()];
        r.subject.roles = r.subject.account_id.starts_with("dr") ? w->doctor : w->nurse;
        r.subject.department_id = "dept-3";
      } else if (roll < 70) {  // a doctor who does not treat this patient
        r.subject.account_id = pick(w->doctors);
        r.subject.roles = w->doctor;
      } else if (roll < 75) {  // a treating doctor lists the record
        r.subject.account_id = w->treating[static_cast<size_t>(pi)][0];
        r.subject.roles = r.subject.account_id.starts_with("dr") ? w->doctor : w->nurse;
        r.action = Action::kList;
        r.resource.path = "";
        r.resource.category = "";
        r.resource.sensitivity = 0;
      } else if (roll < 85) {  // the patient
        r.subject.account_id = w->patient_accounts[static_cast<size_t>(pi)];
        r.subject.patient_id = pid;
        r.subject.roles = w->patient;
        r.subject.mfa_verified = false;
        r.subject.institution_id = "";
      } else if (roll < 90) {  // a researcher
        r.subject.account_id = pick(w->researchers);
        r.subject.roles = w->researcher;
        r.subject.institution_id = "uniresearch";
        r.context.purpose = Purpose::kResearch;
      } else if (roll < 93) {  // a pharmacist
        r.subject.account_id = pick(w->pharmacists);
        r.subject.roles = w->pharmacist;
        r.subject.institution_id = "pharmacy-" + std::to_string(pi % 10);
        r.resource.path = "doctor-description/orders/2026-05-20";
        r.resource.category = "doctor-description";
        r.resource.sensitivity = 2;
      } else if (roll < 96) {  // a family proxy (or someone without a link)
        const std::string& proxy = w->proxy_of[static_cast<size_t>(pi)];
        r.subject.account_id = proxy.empty() ? w->proxy_accounts[0] : proxy;
        r.subject.roles = w->family;
        r.subject.mfa_verified = false;
      } else if (roll < 98) {  // a department head writes
        r.subject.account_id = pick(w->heads);
        r.subject.roles = w->head;
        r.action = Action::kWrite;
      } else {  // an operator asks for health data or metrics
        r.subject.account_id = pick(w->operators);
        r.subject.roles = w->op;
        r.action = n % 2 == 0 ? Action::kRead : Action::kReadMetrics;
      }
      w->requests.push_back(r);
    }
    return w;
  }();
  return *world;
}

void BM_PdpDecide(benchmark::State& state) {
  World& w = GetWorld();
  const DecisionPoint dp(w.policy, &w.data);
  const std::vector<Request>& requests = w.requests;
  size_t i = 0;
  int64_t permits = 0;
  for (auto _ : state) {
    const Request& r = requests[i];
    const Decision d = dp.Decide(r.subject, r.action, r.resource, r.context);
    benchmark::DoNotOptimize(d);
    permits += d.permitted() ? 1 : 0;
    i = (i + 1) & (kRequests - 1);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["permit_ratio"] =
      static_cast<double>(permits) / static_cast<double>(std::max<int64_t>(1, state.iterations()));

  // Latency: single decisions timed one by one, outside the timed loop.
  constexpr int kSamples = 200000;
  std::vector<int64_t> ns(kSamples);
  for (int n = 0; n < kSamples; ++n) {
    const Request& r = requests[static_cast<size_t>(n) & (kRequests - 1)];
    const auto t0 = std::chrono::steady_clock::now();
    const Decision d = dp.Decide(r.subject, r.action, r.resource, r.context);
    const auto t1 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(d);
    ns[static_cast<size_t>(n)] =
        std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
  }
  std::sort(ns.begin(), ns.end());
  const auto at = [&ns](double q) {
    return static_cast<double>(ns[static_cast<size_t>(q * (ns.size() - 1))]) / 1000.0;
  };
  state.counters["p50_us"] = at(0.50);
  state.counters["p99_us"] = at(0.99);
  state.counters["p999_us"] = at(0.999);
}
BENCHMARK(BM_PdpDecide)->MinTime(2.0);

// The same mix from several threads: the shared lock on PolicyData is the
// only shared write (its reader count).
void BM_PdpDecideThreads(benchmark::State& state) {
  World& w = GetWorld();
  const DecisionPoint dp(w.policy, &w.data);
  size_t i = static_cast<size_t>(state.thread_index()) * 7919;
  for (auto _ : state) {
    const Request& r = w.requests[i & (kRequests - 1)];
    benchmark::DoNotOptimize(dp.Decide(r.subject, r.action, r.resource, r.context));
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PdpDecideThreads)->Threads(2)->MinTime(1.0)->UseRealTime();

}  // namespace
}  // namespace medvault::policy

BENCHMARK_MAIN();
