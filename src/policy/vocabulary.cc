// Names of the policy vocabulary (actions, purposes, zones, reasons, grantee
// kinds) and their parsing. Names are the ones of the policy file and the API.
#include <array>
#include <string>
#include <string_view>

#include "policy/policy.h"

namespace medvault::policy {
namespace {

constexpr std::array<std::string_view, kActionCount> kActionNames = {
    "read",
    "list",
    "write",
    "export",
    "erase-patient",
    "create-patient",
    "search-patients",
    "read-demographics",
    "manage-consent",
    "manage-relationship",
    "delegate",
    "break-glass",
    "read-access-history",
    "read-audit",
    "manage-accounts",
    "read-metrics",
};

constexpr std::array<std::string_view, static_cast<size_t>(Purpose::kCount)> kPurposeNames = {
    "treatment", "emergency",  "patient-request", "family-care",
    "payment",   "operations", "research",        "audit",
};

constexpr std::array<std::string_view, static_cast<size_t>(NetworkZone::kCount)> kZoneNames = {
    "loopback", "internal", "external"};

constexpr std::array<std::string_view, 4> kGranteeKindNames = {"account", "role", "institution",
                                                               "department"};

static_assert(kActionNames.back() == "read-metrics", "one name per Action");
static_assert(kPurposeNames.back() == "audit", "one name per Purpose");

struct ReasonEntry {
  std::string_view code;
  std::string_view text;
};

constexpr std::array<ReasonEntry, static_cast<size_t>(Reason::kCount)> kReasons = {{
    {"default-deny", "Nothing in the policy or the patient's consents permits this."},
    {"unauthenticated", "The request is not authenticated."},
    {"no-health-data-role", "This account's role may never access health data."},
    {"mfa-required", "This account's role requires a second factor, and this session has none."},
    {"patient-self", "The patient is acting on their own record."},
    {"proxy-within-scope", "A family proxy is acting within what the patient allowed."},
    {"proxy-out-of-scope", "A family proxy is acting beyond what the patient allowed."},
    {"break-glass", "Emergency access (break-glass) is active for this patient."},
    {"never-break-glass", "The patient has closed this part of the record to emergency access."},
    {"break-glass-reason-missing",
     "Emergency access needs a written reason of the required minimum length."},
    {"consent-denied", "The patient has explicitly denied this access."},
    {"consent-granted", "The patient has granted this access."},
    {"consent-expired", "The patient's consent for this access has expired."},
    {"role-permission", "A role of this account permits this."},
    {"no-role-permission", "No role of this account permits this."},
    {"insufficient-clearance",
     "This account's clearance is below the sensitivity of this part of the record."},
    {"outside-time-window", "This access is permitted only at other hours of the day."},
    {"purpose-not-allowed", "This access is not permitted for the stated purpose of use."},
    {"zone-not-allowed", "This access is not permitted from this network."},
    {"treating-relationship", "This account has an active treating relationship with the patient."},
    {"delegated-relationship",
     "A clinician treating the patient has delegated care to this account."},
    {"delegation-not-allowed", "The patient has not allowed delegation of their care."},
    {"no-relationship", "This account has no active treating relationship with the patient."},
    {"relationship-ended", "This account's treating relationship with the patient has ended."},
    {"other-institution", "This account may act only within its own institution."},
    {"console", "The operator of the data directory acted at its console."},
}};
static_assert(kReasons.back().code == "console", "one entry per Reason");

template <size_t N>
int IndexOf(const std::array<std::string_view, N>& names, std::string_view name) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == name) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

template <size_t N>
std::string Choices(const std::array<std::string_view, N>& names) {
  std::string out;
  for (std::string_view n : names) {
    if (!out.empty()) {
      out += ", ";
    }
    out += n;
  }
  return out;
}

// Names in error messages come from policy files or API input: quote them,
// cut to a readable length.
std::string Quoted(std::string_view name) {
  constexpr size_t kMax = 64;
  std::string out = "'";
  out += name.substr(0, kMax);
  if (name.size() > kMax) {
    out += "...";
  }
  out += "'";
  return out;
}

}  // namespace

std::string_view ActionName(Action action) {
  const auto i = static_cast<size_t>(action);
  return i < kActionNames.size() ? kActionNames[i] : std::string_view("unknown");
}

Result<Action> ParseAction(std::string_view name) {
  const int i = IndexOf(kActionNames, name);
  if (i < 0) {
    return Status::InvalidArgument("unknown action " + Quoted(name) + " (" + Choices(kActionNames) +
                                   ")");
  }
  return static_cast<Action>(i);
}

bool IsHealthDataAction(Action action) {
  switch (action) {
    case Action::kRead:
    case Action::kList:
    case Action::kWrite:
    case Action::kExport:
    case Action::kReadDemographics:
    case Action::kSearchPatients:
    case Action::kCreatePatient:
    case Action::kBreakGlass:
    case Action::kReadAccessHistory:
      return true;
    default:
      return false;
  }
}

bool IsSegmentAction(Action action) {
  return action == Action::kRead || action == Action::kList || action == Action::kWrite ||
         action == Action::kExport;
}

std::string_view PurposeName(Purpose purpose) {
  const auto i = static_cast<size_t>(purpose);
  return i < kPurposeNames.size() ? kPurposeNames[i] : std::string_view("unknown");
}

Result<Purpose> ParsePurpose(std::string_view name) {
  const int i = IndexOf(kPurposeNames, name);
  if (i < 0) {
    return Status::InvalidArgument("unknown purpose " + Quoted(name) + " (" +
                                   Choices(kPurposeNames) + ")");
  }
  return static_cast<Purpose>(i);
}

std::string_view NetworkZoneName(NetworkZone zone) {
  const auto i = static_cast<size_t>(zone);
  return i < kZoneNames.size() ? kZoneNames[i] : std::string_view("unknown");
}

Result<NetworkZone> ParseNetworkZone(std::string_view name) {
  const int i = IndexOf(kZoneNames, name);
  if (i < 0) {
    return Status::InvalidArgument("unknown zone " + Quoted(name) + " (" + Choices(kZoneNames) +
                                   ")");
  }
  return static_cast<NetworkZone>(i);
}

std::string_view GranteeKindName(GranteeKind kind) {
  const auto i = static_cast<size_t>(kind);
  return i < kGranteeKindNames.size() ? kGranteeKindNames[i] : std::string_view("unknown");
}

Result<GranteeKind> ParseGranteeKind(std::string_view name) {
  const int i = IndexOf(kGranteeKindNames, name);
  if (i < 0) {
    return Status::InvalidArgument("unknown grantee kind " + Quoted(name) + " (" +
                                   Choices(kGranteeKindNames) + ")");
  }
  return static_cast<GranteeKind>(i);
}

std::string_view ReasonCode(Reason reason) {
  const auto i = static_cast<size_t>(reason);
  return i < kReasons.size() ? kReasons[i].code : std::string_view("unknown");
}

std::string_view ReasonText(Reason reason) {
  const auto i = static_cast<size_t>(reason);
  return i < kReasons.size() ? kReasons[i].text : std::string_view("Unknown reason.");
}

std::string DescribeDecision(const Decision& decision) {
  std::string out(ReasonCode(decision.reason()));
  out += ": ";
  out += ReasonText(decision.reason());
  return out;
}

}  // namespace medvault::policy
