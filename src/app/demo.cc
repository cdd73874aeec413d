#include <cctype>
#include <nlohmann/json.hpp>
#include <string_view>

#include "app/app.h"
#include "common/ids.h"

namespace medvault::app {

namespace {

Status WriteJson(record::RecordService& records, const std::string& id, const std::string& path,
                 const nlohmann::json& data) {
  record::SegmentWrite w;
  w.kind = record::ContentKind::kJson;
  w.content = ToBytes(data.dump());
  return records.WriteSegment(id, path, w, "demo-seed").status();
}

}  // namespace

namespace {

// A random password that passes the strength policy: 20 base64url characters
// plus a fixed tail that guarantees the character classes, drawn again in
// the rare case that it contains the username without case (the policy
// refuses that: "ada" turns up in about one draw in two thousand).
std::string DemoPassword(std::string_view username) {
  const auto lower = [](std::string t) {
    for (char& c : t) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return t;
  };
  for (;;) {
    uint8_t raw[15];
    crypto::RandomBytes(raw);
    std::string password = ToBase64Url(ByteView(raw, sizeof raw)) + "-Aa1";
    if (lower(password).find(lower(std::string(username))) == std::string::npos) {
      return password;
    }
  }
}

}  // namespace

Result<std::vector<std::string>> SeedDemoPatients(record::RecordService& records) {
  struct DemoPatient {
    record::Demographics d;
    int systolic;
    int diastolic;
    double glucose;
    double weight;
    const char* narrative;
  };
  // Fictional people; any resemblance is coincidental.
  const std::vector<DemoPatient> patients = {
      {{"Ada", "Fictive", "1956-03-14", "female", "DEMO-0001"},
       148,
       92,
       6.1,
       71.5,
       "Headaches in the morning, better after a walk."},
      {{"Bruno", "Example", "1961-11-02", "male", "DEMO-0002"},
       132,
       84,
       9.4,
       96.0,
       "Thirsty at night; trying to cut down on bread."},
      {{"Chloe", "Sample", "1979-07-23", "female", "DEMO-0003"},
       118,
       76,
       5.2,
       58.3,
       "Feeling well. Swimming twice a week."},
  };
  std::vector<std::string> ids;
  for (const DemoPatient& p : patients) {
    MV_ASSIGN_OR_RETURN(record::PatientInfo info, records.CreatePatient(p.d, "demo-seed"));
    const std::string& id = info.patient_id;
    for (int day = 0; day < 5; ++day) {
      MV_RETURN_IF_ERROR(WriteJson(records, id, "physical-signs/blood-pressure",
                                   {{"systolic", p.systolic + 3 * (day % 3) - 2},
                                    {"diastolic", p.diastolic + (day % 2)},
                                    {"unit", "mmHg"},
                                    {"time", "2026-11-1" + std::to_string(day) + "T07:30:00Z"},
                                    {"device", "home-cuff"}}));
    }
    MV_RETURN_IF_ERROR(
        WriteJson(records, id, "physical-signs/blood-glucose",
                  {{"value", p.glucose}, {"unit", "mmol/L"}, {"time", "2026-11-15T08:00:00Z"}}));
    MV_RETURN_IF_ERROR(
        WriteJson(records, id, "body-measures/weight",
                  {{"value", p.weight}, {"unit", "kg"}, {"time", "2026-11-15T08:05:00Z"}}));
    MV_RETURN_IF_ERROR(WriteJson(records, id, "internal-medicine/cardiology/electrocardiogram",
                                 {{"rhythm", "sinus"},
                                  {"rate_bpm", 72},
                                  {"qtc_ms", 410},
                                  {"interpretation", "normal ECG"}}));
    record::SegmentWrite note;
    note.kind = record::ContentKind::kText;
    note.content = ToBytes(p.narrative);
    MV_RETURN_IF_ERROR(
        records.WriteSegment(id, "patient-narrative/pain", note, "demo-seed").status());
    ids.push_back(id);
  }
  return ids;
}

}  // namespace medvault::app

namespace medvault::app {

Result<DemoData> SeedDemoData(Runtime& rt) {
  DemoData demo;
  // The seeding is the console's act, recorded as such (src/enforce).
  enforce::Scope scope(rt.enforce_deps(), enforce::ConsoleContext("demo"));
  MV_ASSIGN_OR_RETURN(demo.patient_ids, SeedDemoPatients(*rt.records));
  MV_ASSIGN_OR_RETURN(auth::Institution hospital,
                      rt.accounts->CreateInstitution("Demo General Hospital"));
  MV_ASSIGN_OR_RETURN(auth::Department cardiology,
                      rt.accounts->CreateDepartment(hospital.institution_id, "Cardiology"));
  MV_ASSIGN_OR_RETURN(auth::Department endocrinology,
                      rt.accounts->CreateDepartment(hospital.institution_id, "Endocrinology"));
  struct Spec {
    const char* role;
    const char* username;
    const char* display;
    std::string department;
    std::string patient;
  };
  const std::vector<Spec> specs = {
      {"institution-admin", "admin", "Demo Administrator", "", ""},
      {"doctor", "dr.heart", "Dr. Demo Heart (cardiology)", cardiology.department_id, ""},
      {"doctor", "dr.sugar", "Dr. Demo Sugar (endocrinology)", endocrinology.department_id, ""},
      {"nurse", "nurse.ward", "Nurse Demo Ward", cardiology.department_id, ""},
      {"privacy-officer", "privacy", "Demo Privacy Officer", "", ""},
      {"patient", "ada", "Ada (demo patient)", "", demo.patient_ids.front()},
  };
  for (const Spec& spec : specs) {
    auth::NewAccount n;
    n.username = spec.username;
    n.display_name = spec.display;
    n.password = DemoPassword(n.username);
    n.roles = {spec.role};
    if (std::string(spec.role) != "patient") {
      n.institution_id = hospital.institution_id;
    } else {
      // Registered at the demo hospital: its administrators govern the
      // account (recovery, disabling), no other institution's.
      n.home_institution_id = hospital.institution_id;
    }
    n.department_id = spec.department;
    n.patient_id = spec.patient;
    MV_ASSIGN_OR_RETURN(auth::CreatedAccount created, rt.accounts->CreateAccount(n));
    demo.accounts.push_back({spec.role, n.username, n.password, created.totp_secret_base32,
                             created.account.account_id});
  }
  // Dr. Heart treats Ada and Bruno; Dr. Sugar treats Bruno; the cardiology
  // nurse cares for Bruno on the ward. Dr. Sugar does not treat Ada: she must
  // ask (or break glass).
  const std::string& heart = demo.accounts[1].account_id;
  const std::string& sugar = demo.accounts[2].account_id;
  const std::string& nurse = demo.accounts[3].account_id;
  MV_RETURN_IF_ERROR(rt.access->StartRelationship(demo.patient_ids[0], heart).status());
  MV_RETURN_IF_ERROR(rt.access->StartRelationship(demo.patient_ids[1], heart).status());
  MV_RETURN_IF_ERROR(rt.access->StartRelationship(demo.patient_ids[1], sugar).status());
  MV_RETURN_IF_ERROR(rt.access->StartRelationship(demo.patient_ids[1], nurse).status());
  return demo;
}

}  // namespace medvault::app
