#include <nlohmann/json.hpp>

#include "app/app.h"

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

Result<std::vector<std::string>> SeedDemoData(record::RecordService& records) {
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
