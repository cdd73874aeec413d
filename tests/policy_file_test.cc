// The policy file: the shipped config/policy.conf parses and says what the
// docs say; every error names FILE:LINE and what is wrong.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "policy/policy.h"
#include "test_util.h"

namespace medvault::policy {
namespace {

std::filesystem::path ShippedPolicy() {
  return std::filesystem::path(MEDVAULT_SOURCE_DIR) / "config" / "policy.conf";
}

std::shared_ptr<const Policy> MustParse(std::string_view text) {
  auto p = Policy::Parse(text, "t.policy");
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? *p : nullptr;
}

// The error message of a policy that must not parse.
std::string ErrorOf(std::string_view text) {
  auto p = Policy::Parse(text, "t.policy");
  if (p.ok()) {
    return "(parsed)";
  }
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  return p.status().message();
}

constexpr std::string_view kHead = "version 1\nrole a clearance 1\n";  // lines 1-2

TEST(PolicyFileTest, ShippedPolicyParses) {
  auto loaded = Policy::Load(ShippedPolicy());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Policy& p = **loaded;

  std::vector<std::string> names;
  for (const RoleDef& r : p.roles()) {
    names.push_back(r.name);
  }
  std::vector<std::string> expected = {
      "patient",         "family-proxy", "doctor",     "department-head",
      "nurse",           "pharmacist",   "researcher", "institution-admin",
      "privacy-officer", "auditor",      "operator"};
  std::sort(names.begin(), names.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(names, expected);

  for (const RoleDef& r : p.roles()) {
    const bool lay = r.name == "patient" || r.name == "family-proxy";
    EXPECT_EQ(r.requires_mfa, !lay) << r.name;
    EXPECT_EQ(p.RequiresMfa(RoleSet{1} << r.id), !lay) << r.name;
    EXPECT_EQ(r.no_health_data, r.name == "auditor" || r.name == "operator") << r.name;
    EXPECT_EQ(r.may_break_glass,
              r.name == "doctor" || r.name == "department-head" || r.name == "nurse")
        << r.name;
  }
  const RoleSet head = *p.RolesOf({"department-head"});
  const RoleSet doctor = *p.RolesOf({"doctor"});
  EXPECT_EQ(p.Expand(head), head | doctor);
  EXPECT_EQ(p.ClearanceOf(head), 4);
  EXPECT_EQ(p.ClearanceOf(doctor), 3);
  EXPECT_EQ(p.ClearanceOf(*p.RolesOf({"nurse"})), 2);
  EXPECT_EQ(p.ClearanceOf(*p.RolesOf({"researcher"})), 1);
  EXPECT_EQ(p.ClearanceOf(*p.RolesOf({"nurse", "researcher"})), 2);
  EXPECT_TRUE(p.MayBreakGlass(head));
  EXPECT_FALSE(p.MayBreakGlass(*p.RolesOf({"pharmacist"})));
  EXPECT_TRUE(p.HasNoHealthDataRole(*p.RolesOf({"doctor", "operator"})));
  // Only the institution admin assigns roles, and every role but none
  // other; nobody else assigns anything (deny by default).
  for (const RoleDef& r : p.roles()) {
    const RoleSet assignable = p.AssignableBy(RoleSet{1} << r.id);
    EXPECT_EQ(assignable != 0, r.name == "institution-admin") << r.name;
  }
  EXPECT_EQ(p.AssignableBy(*p.RolesOf({"institution-admin"})),
            *p.RolesOf({"doctor", "department-head", "nurse", "pharmacist", "researcher",
                        "institution-admin", "privacy-officer", "auditor", "operator", "patient",
                        "family-proxy"}));
  EXPECT_EQ(p.break_glass_duration_ms(), 60 * 60 * 1000);
  EXPECT_EQ(p.break_glass_min_reason_chars(), 10U);
  EXPECT_EQ(p.utc_offset_minutes(), 0);
  EXPECT_FALSE(p.permissions().empty());
  // Every permission of a no-health-data role is outside health data.
  for (const Permission& perm : p.permissions()) {
    if (p.HasNoHealthDataRole(RoleSet{1} << perm.role)) {
      for (size_t a = 0; a < kActionCount; ++a) {
        if ((perm.actions & ActionBit(static_cast<Action>(a))) != 0) {
          EXPECT_FALSE(IsHealthDataAction(static_cast<Action>(a))) << perm.line;
        }
      }
    }
  }
}

TEST(PolicyFileTest, LoadNamesTheFileInErrors) {
  const auto dir = std::filesystem::temp_directory_path() / "mv_policy_file_test";
  std::filesystem::create_directories(dir);
  const auto file = dir / "bad.policy";
  {
    std::ofstream out(file);
    out << "version 1\n\nrole a clearance 9\n";
  }
  auto p = Policy::Load(file);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status().message(), file.string() + ":3: clearance must be 0..4, got '9'");

  auto missing = Policy::Load(dir / "missing.policy");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

TEST(PolicyFileTest, GrammarFeatures) {
  auto p = MustParse(
      "# comment\n"
      "version 1   # trailing comment\n"
      "timezone +05:30\n"
      "break-glass min-reason 3 duration 2h\n"
      "role b inherits a, c clearance 2 mfa\n"  // forward references, list with spaces
      "role a clearance 1 break-glass\n"
      "role c clearance 0\n"
      "\t\r\n"
      "permit a,b read, list on physical-signs,clinical when treating purpose treatment,emergency "
      "zone internal hours 22:00-06:00 mask given_name,x.y\n"
      "permit b export on * when consented\n"
      "permit a create-patient when always\n");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->utc_offset_minutes(), 5 * 60 + 30);
  EXPECT_EQ(p->break_glass_duration_ms(), 2 * 3600 * 1000);
  EXPECT_EQ(p->break_glass_min_reason_chars(), 3U);
  ASSERT_EQ(p->roles().size(), 3U);
  const RoleDef& b = p->roles()[0];
  EXPECT_EQ(b.name, "b");
  EXPECT_EQ(b.line, 5);
  EXPECT_TRUE(b.requires_mfa);
  EXPECT_EQ(b.closure, RoleSet{0b111});
  EXPECT_EQ(p->ClearanceOf(RoleSet{1}), 2);
  EXPECT_TRUE(p->MayBreakGlass(RoleSet{1}));  // inherited from a
  EXPECT_FALSE(p->HasNoHealthDataRole(RoleSet{1}));
  EXPECT_FALSE(p->RequiresMfa(RoleSet{0b010}));
  EXPECT_EQ(p->Expand(RoleSet{0b100} | (RoleSet{1} << 40)), RoleSet{0b100});  // unknown bits

  ASSERT_EQ(p->permissions().size(), 4U);  // one per role of a line
  const Permission& first = p->permissions()[0];
  EXPECT_EQ(first.role, 1);  // a
  EXPECT_EQ(first.line, 9);
  EXPECT_EQ(first.actions, ActionBit(Action::kRead) | ActionBit(Action::kList));
  EXPECT_EQ(first.categories, (std::vector<std::string>{"physical-signs", "clinical"}));
  EXPECT_EQ(first.basis, Basis::kTreating);
  EXPECT_EQ(first.purposes, PurposeBit(Purpose::kTreatment) | PurposeBit(Purpose::kEmergency));
  EXPECT_EQ(first.zones, ZoneBit(NetworkZone::kInternal));
  EXPECT_EQ(first.start_minute, 22 * 60);
  EXPECT_EQ(first.end_minute, 6 * 60);
  EXPECT_EQ(first.mask_fields, (std::vector<std::string>{"given_name", "x.y"}));
  EXPECT_EQ(p->permissions()[1].role, 0);  // b
  const Permission& exp = p->permissions()[2];
  EXPECT_TRUE(exp.categories.empty());
  EXPECT_EQ(exp.basis, Basis::kConsented);
  EXPECT_EQ(exp.start_minute, -1);
  EXPECT_EQ(p->permissions()[3].basis, Basis::kAlways);

  EXPECT_EQ(p->permissions_by_action_[static_cast<size_t>(Action::kRead)],
            (std::vector<uint16_t>{0, 1}));
  EXPECT_EQ(p->permissions_by_action_[static_cast<size_t>(Action::kExport)],
            (std::vector<uint16_t>{2}));
  EXPECT_TRUE(p->permissions_by_action_[static_cast<size_t>(Action::kWrite)].empty());

  EXPECT_EQ(*p->RoleIdOf("c"), 2);
  EXPECT_FALSE(p->RoleIdOf("z").ok());
  EXPECT_EQ(*p->RolesOf({"a", "c"}), RoleSet{0b110});
  auto bad = p->RolesOf({"a", "nobody"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "unknown role 'nobody'");
}

TEST(PolicyFileTest, AssignsIsExplicitAndNotInherited) {
  auto p = MustParse(
      "version 1\n"
      "role clerk assigns nurse,later\n"
      "role boss inherits clerk assigns clerk\n"
      "role nurse\n"
      "role later\n");
  ASSERT_NE(p, nullptr);
  const RoleSet clerk = *p->RolesOf({"clerk"});
  const RoleSet boss = *p->RolesOf({"boss"});
  const RoleSet nurse = *p->RolesOf({"nurse"});
  const RoleSet later = *p->RolesOf({"later"});
  EXPECT_EQ(p->AssignableBy(clerk), nurse | later);
  // A role's assigns come with it when inherited (boss holds clerk's).
  EXPECT_EQ(p->AssignableBy(boss), clerk | nurse | later);
  // Being assignable gives nothing to assign.
  EXPECT_EQ(p->AssignableBy(nurse), RoleSet{0});
  EXPECT_EQ(p->AssignableBy(0), RoleSet{0});
  EXPECT_EQ(ErrorOf("version 1\nrole a assigns ghost\n"),
            "t.policy:2: unknown role 'ghost' in assigns");
  EXPECT_EQ(ErrorOf("version 1\nrole a assigns a assigns a\n"),
            "t.policy:2: 'assigns' given twice");
  EXPECT_EQ(ErrorOf("version 1\nrole a assigns\n"), "t.policy:2: 'assigns' needs a value");
}

TEST(PolicyFileTest, TimezonesAndDefaults) {
  EXPECT_EQ(MustParse("version 1\ntimezone -03:00\n")->utc_offset_minutes(), -180);
  EXPECT_EQ(MustParse("version 1\ntimezone UTC\n")->utc_offset_minutes(), 0);
  EXPECT_EQ(MustParse("version 1\ntimezone +14:00\n")->utc_offset_minutes(), 14 * 60);
  auto p = MustParse("version 1\r\n");  // CRLF
  EXPECT_EQ(p->break_glass_duration_ms(), 3600 * 1000);
  EXPECT_EQ(p->break_glass_min_reason_chars(), 10U);
  EXPECT_EQ(MustParse("version 1\nbreak-glass duration 90s\n")->break_glass_duration_ms(), 90000);
  EXPECT_EQ(MustParse("version 1\nrole a\npermit a read when always hours 00:00-24:00\n")
                ->permissions()[0]
                .end_minute,
            24 * 60);
}

TEST(PolicyFileTest, ExactlySixtyFourRolesParse) {
  std::string text = "version 1\n";
  for (int i = 0; i < 64; ++i) {
    text += "role r" + std::to_string(i) + "\n";
  }
  auto p = MustParse(text);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->roles().size(), 64U);
  EXPECT_EQ(p->Expand(~RoleSet{0}), ~RoleSet{0});
}

// ---------------------------------------------------------------------------
// Errors: one test per kind, with the exact message.

TEST(PolicyFileErrorTest, MissingVersion) {
  EXPECT_EQ(ErrorOf("# only a comment\n\nrole a\nversion 1\n"),
            "t.policy:3: missing 'version 1': it must be the first statement");
  EXPECT_EQ(ErrorOf(""), "t.policy:1: missing 'version 1': the file has no statements");
  EXPECT_EQ(ErrorOf("# nothing\n# at all\n"),
            "t.policy:1: missing 'version 1': the file has no statements");
}

TEST(PolicyFileErrorTest, BadVersion) {
  EXPECT_EQ(ErrorOf("\nversion 2\n"),
            "t.policy:2: unsupported version '2' (this medvault reads version 1)");
  EXPECT_EQ(ErrorOf("version\n"), "t.policy:1: expected 'version 1'");
  EXPECT_EQ(ErrorOf("version 1 2\n"), "t.policy:1: expected 'version 1'");
  EXPECT_EQ(ErrorOf("version 1\nrole a\nversion 1\n"),
            "t.policy:3: 'version' given twice (first at line 1)");
}

TEST(PolicyFileErrorTest, UnknownKeyword) {
  EXPECT_EQ(ErrorOf("version 1\n\nallow a read\n"),
            "t.policy:3: unknown keyword 'allow' (version, timezone, break-glass, role, permit)");
  EXPECT_EQ(ErrorOf("version 1\nrole a clearance 1 admin\n"),
            "t.policy:2: unknown keyword 'admin' in role (inherits, clearance, mfa, "
            "no-health-data, break-glass, assigns)");
  EXPECT_EQ(ErrorOf(std::string(kHead) + "permit a read when always during day\n"),
            "t.policy:3: unknown keyword 'during' in permit (on, when, purpose, zone, hours, "
            "mask)");
  EXPECT_EQ(ErrorOf("version 1\nbreak-glass length 5m\n"),
            "t.policy:2: unknown keyword 'length' in break-glass (duration, min-reason)");
}

TEST(PolicyFileErrorTest, UnknownRole) {
  EXPECT_EQ(ErrorOf(std::string(kHead) + "permit a,ghost read when always\n"),
            "t.policy:3: unknown role 'ghost'");
  EXPECT_EQ(ErrorOf(std::string(kHead) + "role b inherits ghost\n"),
            "t.policy:3: unknown role 'ghost' in inherits");
}

TEST(PolicyFileErrorTest, RoleUsedBeforeDefinition) {
  EXPECT_EQ(ErrorOf(std::string(kHead) + "permit b read when always\n\nrole b\n"),
            "t.policy:3: role 'b' is used before its definition at line 5");
}

TEST(PolicyFileErrorTest, DuplicateRole) {
  EXPECT_EQ(ErrorOf(std::string(kHead) + "role b\nrole a clearance 2\n"),
            "t.policy:4: duplicate role 'a' (first defined at line 2)");
}

TEST(PolicyFileErrorTest, InheritanceCycle) {
  // Reported at the role whose `inherits` closes the cycle (b, line 3).
  EXPECT_EQ(ErrorOf("version 1\nrole a inherits c\nrole b inherits a\nrole c inherits b\n"),
            "t.policy:3: inheritance cycle: a -> c -> b -> a");
  EXPECT_EQ(ErrorOf("version 1\nrole x\nrole a inherits x,a\n"),
            "t.policy:3: inheritance cycle: a -> a");
}

TEST(PolicyFileErrorTest, ClearanceOutOfRange) {
  EXPECT_EQ(ErrorOf("version 1\nrole a clearance 5\n"),
            "t.policy:2: clearance must be 0..4, got '5'");
  EXPECT_EQ(ErrorOf("version 1\nrole a clearance -1\n"),
            "t.policy:2: clearance must be 0..4, got '-1'");
  EXPECT_EQ(ErrorOf("version 1\nrole a clearance high\n"),
            "t.policy:2: clearance must be 0..4, got 'high'");
  EXPECT_EQ(ErrorOf("version 1\nrole a clearance\n"), "t.policy:2: 'clearance' needs a value");
  EXPECT_EQ(ErrorOf("version 1\nrole a clearance 1 clearance 2\n"),
            "t.policy:2: 'clearance' given twice");
  EXPECT_EQ(ErrorOf("version 1\nrole a mfa mfa\n"), "t.policy:2: 'mfa' given twice");
}

TEST(PolicyFileErrorTest, BadHours) {
  const std::string hint =
      " (expected HH:MM-HH:MM from 00:00 to 24:00, e.g. 07:00-19:00; 22:00-06:00 spans "
      "midnight)";
  const std::string pre = std::string(kHead) + "permit a read when always hours ";
  EXPECT_EQ(ErrorOf(pre + "25:00-26:00\n"), "t.policy:3: bad hours '25:00-26:00'" + hint);
  EXPECT_EQ(ErrorOf(pre + "7-19\n"), "t.policy:3: bad hours '7-19'" + hint);
  EXPECT_EQ(ErrorOf(pre + "07:60-08:00\n"), "t.policy:3: bad hours '07:60-08:00'" + hint);
  EXPECT_EQ(ErrorOf(pre + "24:00-06:00\n"), "t.policy:3: bad hours '24:00-06:00'" + hint);
  EXPECT_EQ(ErrorOf(pre + "24:30-06:00\n"), "t.policy:3: bad hours '24:30-06:00'" + hint);
  EXPECT_EQ(ErrorOf(pre + "07:00\n"), "t.policy:3: bad hours '07:00'" + hint);
  EXPECT_EQ(ErrorOf(pre + "07:00-07:00\n"),
            "t.policy:3: bad hours '07:00-07:00': the window is empty");
}

TEST(PolicyFileErrorTest, MoreThan64Roles) {
  std::string text = "version 1\n";
  for (int i = 0; i < 65; ++i) {
    text += "role r" + std::to_string(i) + "\n";
  }
  EXPECT_EQ(ErrorOf(text), "t.policy:66: more than 64 roles");
  // Inheriting the 65th, declared later, is refused where it is named.
  std::string forward = "version 1\nrole first inherits r64\n";
  for (int i = 0; i < 65; ++i) {
    forward += "role r" + std::to_string(i) + "\n";
  }
  EXPECT_EQ(ErrorOf(forward), "t.policy:2: more than 64 roles");
}

TEST(PolicyFileErrorTest, UnknownActionCategoryPurposeZone) {
  EXPECT_EQ(ErrorOf(std::string(kHead) + "permit a read,peek when always\n"),
            "t.policy:3: unknown action 'peek' (read, list, write, export, erase-patient, "
            "create-patient, search-patients, read-demographics, manage-consent, "
            "manage-relationship, delegate, break-glass, read-access-history, read-audit, "
            "manage-accounts, read-metrics)");
  EXPECT_EQ(ErrorOf(std::string(kHead) + "permit a read on clinical,psychiatry when always\n"),
            "t.policy:3: unknown category 'psychiatry' (personal-information, health-status, "
            "physical-signs, body-measures, family-history, patient-narrative, life-record, "
            "other, doctor-description, third-party-description, source-documents, clinical)");
  EXPECT_EQ(ErrorOf(std::string(kHead) + "permit a read when always purpose fun\n"),
            "t.policy:3: unknown purpose 'fun' (treatment, emergency, patient-request, "
            "family-care, payment, operations, research, audit)");
  EXPECT_EQ(ErrorOf(std::string(kHead) + "permit a read when always zone dmz\n"),
            "t.policy:3: unknown zone 'dmz' (loopback, internal, external)");
  EXPECT_EQ(ErrorOf(std::string(kHead) + "permit a read on *,clinical when always\n"),
            "t.policy:3: '*' must stand alone in 'on'");
}

TEST(PolicyFileErrorTest, BadPermit) {
  EXPECT_EQ(ErrorOf(std::string(kHead) + "permit a read on clinical\n"),
            "t.policy:3: permit needs 'when always', 'when treating' or 'when consented'");
  EXPECT_EQ(ErrorOf(std::string(kHead) + "permit a read when sometimes\n"),
            "t.policy:3: unknown basis 'sometimes' (always, treating, consented)");
  EXPECT_EQ(ErrorOf(std::string(kHead) + "permit a\n"),
            "t.policy:3: expected 'permit ROLES ACTIONS [on CATEGORIES] when "
            "always|treating|consented [purpose PURPOSES] [zone ZONES] [hours HH:MM-HH:MM] "
            "[mask FIELDS]'");
  EXPECT_EQ(ErrorOf(std::string(kHead) + "permit a read when always purpose\n"),
            "t.policy:3: 'purpose' needs a value");
  EXPECT_EQ(ErrorOf(std::string(kHead) + "permit a read when always zone internal zone loopback\n"),
            "t.policy:3: 'zone' given twice");
  EXPECT_EQ(ErrorOf(std::string(kHead) + "permit a read,,list when always\n"),
            "t.policy:3: empty item in list 'read,,list'");
  EXPECT_EQ(ErrorOf(std::string(kHead) + "permit a break-glass when always\n"),
            "t.policy:3: 'break-glass' is not granted by permit: give the role the "
            "'break-glass' option");
  EXPECT_EQ(ErrorOf(std::string(kHead) + "permit a read,read-audit on clinical when always\n"),
            "t.policy:3: 'on' applies only to read, list, write and export (the other actions "
            "have no category): split the line or use 'on *'");
  EXPECT_EQ(ErrorOf(std::string(kHead) + "permit a read when always mask given name\n"),
            "t.policy:3: unknown keyword 'name' in permit (on, when, purpose, zone, hours, "
            "mask)");
  EXPECT_EQ(ErrorOf(std::string(kHead) + "permit a read when always mask a/b\n"),
            "t.policy:3: bad field name 'a/b' in mask (1..64 characters of A-Z, a-z, 0-9, _, "
            "-, .)");
}

TEST(PolicyFileErrorTest, BadRoleDefinition) {
  EXPECT_EQ(ErrorOf("version 1\nrole Doctor\n"),
            "t.policy:2: bad role name 'Doctor' (1..64 characters of a-z, 0-9, -)");
  EXPECT_EQ(ErrorOf("version 1\nrole\n"),
            "t.policy:2: expected 'role NAME [inherits ROLES] [clearance 0..4] [mfa] "
            "[no-health-data] [break-glass] [assigns ROLES]'");
  EXPECT_EQ(ErrorOf("version 1\nrole ops no-health-data break-glass\n"),
            "t.policy:2: role 'ops' is no-health-data and cannot break glass");
}

TEST(PolicyFileErrorTest, NoHealthDataRolePermittedHealthData) {
  EXPECT_EQ(ErrorOf("version 1\nrole ops no-health-data\npermit ops read-metrics when always\n"
                    "permit ops read-metrics,search-patients when always\n"),
            "t.policy:4: role 'ops' is no-health-data (or inherits such a role) and cannot be "
            "permitted 'search-patients'");
  // Through inheritance, reported at the permit line.
  EXPECT_EQ(ErrorOf("version 1\nrole ops no-health-data\nrole lead inherits ops\n"
                    "permit lead read on clinical when treating\n"),
            "t.policy:4: role 'lead' is no-health-data (or inherits such a role) and cannot be "
            "permitted 'read'");
}

TEST(PolicyFileErrorTest, BadTimezone) {
  const std::string tail = " (expected UTC, +HH:MM or -HH:MM, at most 14:00 from UTC)";
  EXPECT_EQ(ErrorOf("version 1\ntimezone +15:00\n"), "t.policy:2: bad timezone '+15:00'" + tail);
  EXPECT_EQ(ErrorOf("version 1\ntimezone Europe/Paris\n"),
            "t.policy:2: bad timezone 'Europe/Paris'" + tail);
  EXPECT_EQ(ErrorOf("version 1\ntimezone 01:00\n"), "t.policy:2: bad timezone '01:00'" + tail);
  EXPECT_EQ(ErrorOf("version 1\ntimezone UTC\ntimezone UTC\n"),
            "t.policy:3: 'timezone' given twice (first at line 2)");
  EXPECT_EQ(ErrorOf("version 1\ntimezone\n"),
            "t.policy:2: expected 'timezone UTC', 'timezone +HH:MM' or 'timezone -HH:MM'");
}

TEST(PolicyFileErrorTest, BadBreakGlass) {
  const std::string dur =
      "break-glass duration must be 1m..24h (a number and s, m or h, e.g. 60m), got ";
  EXPECT_EQ(ErrorOf("version 1\nbreak-glass duration 25h\n"), "t.policy:2: " + dur + "'25h'");
  EXPECT_EQ(ErrorOf("version 1\nbreak-glass duration 30s\n"), "t.policy:2: " + dur + "'30s'");
  EXPECT_EQ(ErrorOf("version 1\nbreak-glass duration 60\n"), "t.policy:2: " + dur + "'60'");
  EXPECT_EQ(ErrorOf("version 1\nbreak-glass duration m\n"), "t.policy:2: " + dur + "'m'");
  EXPECT_EQ(ErrorOf("version 1\nbreak-glass min-reason 0\n"),
            "t.policy:2: break-glass min-reason must be 1..1000, got '0'");
  EXPECT_EQ(ErrorOf("version 1\nbreak-glass min-reason\n"),
            "t.policy:2: 'min-reason' needs a value");
  EXPECT_EQ(ErrorOf("version 1\nbreak-glass\n"),
            "t.policy:2: expected 'break-glass [duration DURATION] [min-reason N]'");
  EXPECT_EQ(ErrorOf("version 1\nbreak-glass duration 1h\nbreak-glass min-reason 5\n"),
            "t.policy:3: 'break-glass' given twice (first at line 2)");
}

TEST(PolicyFileErrorTest, FirstErrorInFileOrder) {
  // Two errors: the earlier line is reported.
  EXPECT_EQ(ErrorOf("version 1\nrole a clearance 7\nrole a\n"),
            "t.policy:2: clearance must be 0..4, got '7'");
}

TEST(PolicyFileErrorTest, TooLarge) {
  const std::string text = "version 1\n" + std::string(1 << 20, '#');
  auto p = Policy::Parse(text, "big.policy");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(), "big.policy: policy file is larger than 1 MiB");
}

TEST(VocabularyTest, NamesRoundTrip) {
  for (size_t i = 0; i < kActionCount; ++i) {
    const auto a = static_cast<Action>(i);
    auto parsed = ParseAction(ActionName(a));
    ASSERT_TRUE(parsed.ok()) << i;
    EXPECT_EQ(*parsed, a);
  }
  for (size_t i = 0; i < static_cast<size_t>(Purpose::kCount); ++i) {
    EXPECT_EQ(*ParsePurpose(PurposeName(static_cast<Purpose>(i))), static_cast<Purpose>(i));
  }
  for (size_t i = 0; i < static_cast<size_t>(NetworkZone::kCount); ++i) {
    EXPECT_EQ(*ParseNetworkZone(NetworkZoneName(static_cast<NetworkZone>(i))),
              static_cast<NetworkZone>(i));
  }
  for (GranteeKind k : {GranteeKind::kAccount, GranteeKind::kRole, GranteeKind::kInstitution,
                        GranteeKind::kDepartment}) {
    EXPECT_EQ(*ParseGranteeKind(GranteeKindName(k)), k);
  }
  EXPECT_FALSE(ParseAction("READ").ok());
  EXPECT_FALSE(ParsePurpose("").ok());
  EXPECT_FALSE(ParseNetworkZone("internet").ok());
  EXPECT_FALSE(ParseGranteeKind("group").ok());
  EXPECT_EQ(ActionName(Action::kManageConsent), "manage-consent");
  EXPECT_EQ(PurposeName(Purpose::kPatientRequest), "patient-request");
}

TEST(VocabularyTest, ReasonsHaveDistinctCodesAndText) {
  std::vector<std::string_view> codes;
  for (size_t i = 0; i < static_cast<size_t>(Reason::kCount); ++i) {
    const auto r = static_cast<Reason>(i);
    EXPECT_FALSE(ReasonCode(r).empty());
    EXPECT_NE(ReasonCode(r), "unknown");
    EXPECT_GT(ReasonText(r).size(), 20U) << ReasonCode(r);
    codes.push_back(ReasonCode(r));
  }
  std::sort(codes.begin(), codes.end());
  EXPECT_EQ(std::adjacent_find(codes.begin(), codes.end()), codes.end());
  EXPECT_EQ(ReasonCode(Reason::kConsentDenied), "consent-denied");
  EXPECT_EQ(ReasonCode(Reason::kNoHealthDataRole), "no-health-data-role");
  Decision d;
  d.reasons[0] = Reason::kMfaRequired;
  d.reason_count = 1;
  EXPECT_EQ(DescribeDecision(d),
            "mfa-required: This account's role requires a second factor, and this session has "
            "none.");
}

TEST(VocabularyTest, HealthDataActions) {
  for (Action a : {Action::kRead, Action::kList, Action::kWrite, Action::kExport,
                   Action::kReadDemographics, Action::kSearchPatients, Action::kCreatePatient,
                   Action::kBreakGlass, Action::kReadAccessHistory}) {
    EXPECT_TRUE(IsHealthDataAction(a)) << ActionName(a);
  }
  for (Action a :
       {Action::kErasePatient, Action::kManageConsent, Action::kManageRelationship,
        Action::kDelegate, Action::kReadAudit, Action::kManageAccounts, Action::kReadMetrics}) {
    EXPECT_FALSE(IsHealthDataAction(a)) << ActionName(a);
  }
}

}  // namespace
}  // namespace medvault::policy
