// Fuzz target for the policy file parser and the access-token and timestamp
// parsers of the API. Invariants: never crash; a policy that parses names
// every role it declares, with clearances in 0..4 and an acyclic hierarchy
// (Expand terminates and contains the role itself); a parsed policy answers
// a decision without crashing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "api/http_internal.h"
#include "app/app.h"
#include "auth/auth.h"
#include "policy/policy.h"

using namespace medvault;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto parsed = policy::Policy::Parse(input, "fuzz.policy");
  if (parsed.ok()) {
    const policy::Policy& p = **parsed;
    for (const policy::RoleDef& r : p.roles()) {
      if (r.clearance < 0 || r.clearance > 4) {
        std::abort();
      }
      const policy::RoleSet self = policy::RoleSet{1} << r.id;
      if ((p.Expand(self) & self) == 0 || !p.RoleIdOf(r.name).ok()) {
        std::abort();
      }
    }
    policy::PolicyData policy_data;
    policy::DecisionPoint pdp(*parsed, &policy_data);
    policy::Subject s;
    s.account_id = "0123456789abcdef0123456789abcdef";
    s.roles = p.roles().empty() ? 0 : 1;
    policy::Resource res;
    res.patient_id = "fedcba9876543210fedcba9876543210";
    res.path = "physical-signs/blood-pressure";
    res.category = "physical-signs";
    (void)pdp.Decide(s, policy::Action::kRead, res, {});
  }
  (void)api::internal::ParseTimestamp(input, "fuzz");
  (void)auth::Base32Decode(input);
  return 0;
}
